#!/bin/sh
# One-command set-up for Debian 12 / Ubuntu 24.04 (as root, or with sudo available):
#   tools/quickstart.sh run     install what is missing, build, run clbench on the best OpenCL device
#   tools/quickstart.sh test    install what is missing, build, run the test suite (make check)
# WITH_MPI=1 tools/quickstart.sh ...  also Open MPI, and ./configure --enable-mpi (the pipeline as MPI ranks:
#   mpirun -np N clbench --mpi; make check then runs tests/pipeline_mpi.sh)
# Extra arguments after `run` go to clbench, e.g. tools/quickstart.sh run --preset llama-160m
set -eu
mode=${1:-run}
[ $# -gt 0 ] && shift
cd "$(dirname "$0")/.."

PACKAGES="build-essential autoconf automake libtool pkg-config autoconf-archive ocl-icd-opencl-dev
opencl-c-headers pocl-opencl-icd libclblast-dev clinfo check libstb-dev libjansson-dev libpcre2-dev"
# only with --enable-mpi
MPI_PACKAGES="openmpi-bin libopenmpi-dev"
WITH_MPI=${WITH_MPI:-0}
[ "$WITH_MPI" = 1 ] && PACKAGES="$PACKAGES $MPI_PACKAGES"

missing=""
for p in $PACKAGES; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
if [ -n "$missing" ]; then
  echo "quickstart: installing:$missing"
  SUDO=""
  [ "$(id -u)" -ne 0 ] && SUDO=sudo
  $SUDO apt-get update
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y --no-install-recommends $missing
fi

jobs=$(nproc 2>/dev/null || echo 2)
if [ ! -f Makefile ]; then
  autoreconf -fi
  if [ "$WITH_MPI" = 1 ]; then ./configure --enable-mpi; else ./configure; fi
fi
make -j"$jobs"

case "$mode" in
  run)  exec ./bench/clbench "$@" ;;
  test) exec make -j"$jobs" check ;;
  *) echo "usage: tools/quickstart.sh run|test [clbench arguments]" >&2; exit 2 ;;
esac
