#!/bin/sh
# Quick start, step 1: install what is missing (Debian packages), build with
# meson, and run the main job (kapprox reproduce all --quick).
#   ./setup.sh            everything
#   ./setup.sh --deps     only install missing packages
#   ./setup.sh --build    install + build, no main job
set -eu
cd "$(dirname "$0")"

packages="gcc meson ninja-build pkg-config libgsl-dev libfftw3-dev libhdf5-dev
libopenblas-dev check gnuplot-nox bible-kjv python3-torch python3-h5py python3-numpy
python3-pandas python3-scipy libopenmpi-dev openmpi-bin"

missing=""
for p in $packages; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
if [ -n "$missing" ]; then
  echo "installing:$missing"
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends $missing
fi
[ "${1:-}" = "--deps" ] && exit 0

[ -d build ] || meson setup build
ninja -C build
[ "${1:-}" = "--build" ] && exit 0

# The main job: every table and figure of the toolkit at small sizes (kernel
# tables, every scheme's error, error vs m and vs norm, attention maps,
# sampler points, Figure 4, Tables 1 and 2, Figures 2 and 3) into
# results/all-quick/, linked from results/all-quick/index.md.  Resumable:
# rerun after an interruption.  The full-size run: ./build/kapprox reproduce all
./build/kapprox reproduce all --quick
