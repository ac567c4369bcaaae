#!/bin/sh
# The layer pipeline as MPI ranks (tests/check_pipeline_mpi.c): `mpirun -np 2` on this machine, PoCL with two
# CPU devices (rank r on device r), under a timeout so that a hang fails instead of blocking the suite.
# Built with ./configure --enable-mpi only; skipped (77) without mpirun.
set -u
bin=${1:-tests/check_pipeline_mpi}
MPIRUN=${MPIRUN:-mpirun}
command -v "$MPIRUN" >/dev/null 2>&1 || { echo "no mpirun: skipped"; exit 77; }
export POCL_DEVICES="${POCL_DEVICES:-pthread pthread}"
# Open MPI refuses root without these (CI containers run as root); oversubscribe: a 2-core machine
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
export OMPI_MCA_rmaps_base_oversubscribe=1
timeout "${ARMT_MPI_TIMEOUT:-600}" "$MPIRUN" -np 2 "$bin"
rc=$?
[ $rc = 124 ] && echo "pipeline_mpi: mpirun timed out (a rank hung)"
exit $rc
