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
timeout "${ARMT_MPI_TIMEOUT:-300}" "$MPIRUN" -np 2 "$bin"
rc=$?
[ $rc = 124 ] && echo "pipeline_mpi: mpirun timed out (a rank hung)"

# armt-run --mpi end to end: the ARMT reference checkpoint's logits and memory state on 2 ranks equal one
# device's bit for bit (tests/st_compare with tolerance 0)
run=${ARMT_RUN:-./src/armt-run}
cmp=${ST_COMPARE:-./tests/st_compare}
data=${ARMT_TEST_DATA:-${srcdir:-.}/tests/data}
if [ -x "$run" ] && [ -x "$cmp" ] && [ -f "$data/armt_ref/model_saved.safetensors" ]; then
  tmp=$(mktemp -d "${TMPDIR:-/tmp}/pipeline_mpi.XXXXXX") || exit 99
  trap 'rm -rf "$tmp"' 0
  model=$data/armt_ref/model_saved.safetensors
  if "$run" --model "$model" --random-ids 70 --output logits --save-outputs "$tmp/one.safetensors" >"$tmp/one.out" 2>&1 \
     && timeout 300 "$MPIRUN" -np 2 "$run" --mpi --model "$model" --random-ids 70 --output logits \
          --save-outputs "$tmp/mpi.safetensors" >"$tmp/mpi.out" 2>&1 \
     && "$cmp" "$tmp/one.safetensors" logits "$tmp/mpi.safetensors" logits 0 \
     && "$cmp" "$tmp/one.safetensors" memory.W_mem "$tmp/mpi.safetensors" memory.W_mem 0 \
     && "$cmp" "$tmp/one.safetensors" memory.z "$tmp/mpi.safetensors" memory.z 0; then
    echo "PASS: mpirun -np 2 armt-run --mpi equals one device bit for bit"
  else
    cat "$tmp/mpi.out"
    echo "FAIL: mpirun -np 2 armt-run --mpi"
    rc=1
  fi
fi
exit $rc
