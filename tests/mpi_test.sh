# Sourced after cli_test.sh by the MPI tests, each run as
#   TEST.sh /path/to/kapprox /path/to/ckpt_same yes|no (built with MPI):
# skips the test (exit 77, saying why) in a build without MPI or without
# mpirun, else enters $dir and sets
# same    tests/ckpt_same, absolute
# mpirun  the mpirun program
# mpi N ARGS...: mpirun --oversubscribe -np N ARGS, at most 300 s (a hang
# fails as exit 124).  One OpenMP thread per rank; a rank waiting in a
# collective yields its core (the ranks outnumber the cores).
same="$(cd "$(dirname "$2")" && pwd)/$(basename "$2")"
if [ "$3" != yes ]; then
  echo "skipped: kapprox was built without MPI (apt-get install libopenmpi-dev openmpi-bin; meson setup)"
  exit 77
fi
mpirun=$(command -v mpirun) || { echo "skipped: mpirun not found (apt-get install openmpi-bin)"; exit 77; }
cd "$dir" || exit 1
# OpenMPI refuses to start as root unless told; the test may run in a container as root
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMP_NUM_THREADS=1 OMPI_MCA_mpi_yield_when_idle=1
mpi() { n=$1; shift; timeout 300 "$mpirun" --oversubscribe -np "$n" "$@"; }
