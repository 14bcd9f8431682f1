#!/bin/sh
# Quick start, step 1: install what is missing (Debian packages), build with
# meson, and run the main job on built-in synthetic data.
#   ./setup.sh            everything
#   ./setup.sh --deps     only install missing packages
#   ./setup.sh --build    install + build, no main job
set -eu
cd "$(dirname "$0")"

packages="gcc meson ninja-build pkg-config libgsl-dev libfftw3-dev libhdf5-dev
libopenblas-dev check gnuplot-nox bible-kjv python3-torch python3-h5py python3-numpy
python3-pandas"

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

mkdir -p results
# The main job: every scheme's kernel error and attention fidelity at d = 64,
# m = 16..1024, 10 seeds, on synthetic Q/K (256 tokens, norms 1), then its
# figures (error vs m, attention maps of one head, sampler points).
./build/kapprox compare --out results/compare.csv
./build/kapprox plot --results results/compare.csv --outdir results/figures
