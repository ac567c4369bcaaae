#!/bin/sh
# make check-oclgrind: every kernel of cl/ on tiny shapes (tests/oclgrind_driver) under Oclgrind, with API
# checks, data-race detection and uninitialised-value tracking. Fails on any Oclgrind report (the log's and
# the API errors Oclgrind prints on stderr), on a driver failure, or when a kernel of lib/device/internal.h's
# list ran in no set. Five sets (fp32, bf16, bf16-mma, bf16-wgmma, fp32-tf32: tests/oclgrind_driver.c), OCLGRIND_JOBS
# (default 2) at a time; logs oclgrind-SET.log (reports) and oclgrind-SET.out (the driver's output).
#
# Notes on the tool (Debian's Oclgrind 21.10 on LLVM 14):
#  - The kernels are built with -cl-opt-disable: the uninitialised-value plugin stops on LLVM's `freeze`
#    instruction ("Unsupported instruction: freeze"), which the optimiser emits (upstream added it after
#    21.10). It makes the simulation about twice as slow.
#  - The simulated device has 256 KiB of local memory (32 KiB by default): the tensor-core emulation runs
#    the GPUs' tiles, up to the wgmma tiles' 163 KiB, as the NVIDIA devices that run them allow. It has 64
#    compute units (1 by default), as a large GPU: the GEMM plan then takes the narrow tiles wherever they
#    may serve, which are several times cheaper to simulate; the main tiles still run for the GEMMs only
#    they can do (SwiGLU and row-scale epilogues, paired weights).
#  - The plugin loses track of buffers the host fills, writes in part or copies in part, and hands a freed
#    buffer's state to the next one created; the driver links tests/oclgrind_hostops.c, which does those
#    operations in a way the plugin follows exactly (see that file). CLBlast's kernels run under every
#    check like ours.
set -u
driver=${1:-./tests/oclgrind_driver}
jobs=${OCLGRIND_JOBS:-2}
command -v oclgrind >/dev/null 2>&1 || { echo "check-oclgrind: oclgrind not installed (apt-get install oclgrind)"; exit 77; }

# one set: its report count and time in oclgrind-SET.result (a set's limit, 1,800 s: the longest, fp32-tf32,
# took 1,153 s in CI on 2 cores beside the other lane, 1,005 s alone, 2026-12-08)
run_set() {
  set=$1
  log=oclgrind-$set.log
  rm -f "$log" "oclgrind-$set.result"
  t0=$(date +%s)
  timeout 1800 oclgrind --check-api --data-races --uninitialized --build-options -cl-opt-disable \
    --local-mem-size 262144 --compute-units 64 --max-errors 100 --log "$log" "$driver" "$set" \
    > "oclgrind-$set.out" 2>&1
  drc=$?
  t1=$(date +%s)
  # a report is a block in the log starting at column 0; API errors go to stderr
  n_log=$( [ -s "$log" ] && grep -c -E '^[^[:space:]]' "$log" || echo 0)
  n_api=$(grep -c -E '^Oclgrind - |^Oclgrind: |^OCLGRIND' "oclgrind-$set.out")
  echo "$drc $((n_log + n_api)) $((t1 - t0))" > "oclgrind-$set.result"
}

# the sets in `jobs` lanes, the slowest first
lane() {
  for s in "$@"; do run_set "$s"; done
}
if [ "$jobs" -ge 2 ]; then
  # (measured on the CI machine kind: fp32-tf32 1,153 s + fp32 139 against bf16-mma 486 + bf16 329 +
  # bf16-wgmma 302)
  lane fp32-tf32 fp32 & p1=$!
  lane bf16-mma bf16 bf16-wgmma & p2=$!
  wait $p1 $p2
else
  lane fp32-tf32 bf16-mma bf16-wgmma bf16 fp32
fi

rc=0
seen=""
for set in fp32 bf16 bf16-mma bf16-wgmma fp32-tf32; do
  read -r drc reports secs < "oclgrind-$set.result" || { drc=99; reports=?; secs=?; }
  echo "check-oclgrind: $set: $secs s, driver exit $drc, $reports reports (oclgrind-$set.log, oclgrind-$set.out)"
  [ "$drc" = 0 ] || { tail -n 20 "oclgrind-$set.out"; rc=1; }
  [ "$reports" = 0 ] || { head -n 40 "oclgrind-$set.log"; grep -A4 -E '^Oclgrind - |^OCLGRIND' "oclgrind-$set.out" | head -n 20; rc=1; }
  seen="$seen $(sed -n 's/^kernel: //p' "oclgrind-$set.out" | tr / _)"
done
missing=""
# (not required: armt_gemv1_bf16_dpfp, the W_mq GEMV whose last work-group reads what the others wrote in the
# same launch, runs only with the fused decode (tune.decode_fuse: NVIDIA's PTX fence), an order between
# work-groups that OpenCL 1.2, and so Oclgrind, does not know; check_gemv compares its bits with the two
# launches on PoCL and on the GPU. The fused forms of armt_attention_decode and armt_rows_argmax_part are
# the same kernels, run here unfused.)
for k in $(sed -n 's/^ *ARMT_K_\([A-Z0-9_]*\),.*/\1/p' "$(dirname "$0")/../lib/device/internal.h" | tr 'A-Z' 'a-z'); do
  [ "$k" = gemv1_bf16_dpfp ] && continue
  echo "$seen" | tr ' ' '\n' | grep -qx "armt_$k" || missing="$missing armt_$k"
done
[ -z "$missing" ] || { echo "check-oclgrind: kernels no set ran:$missing"; rc=1; }
[ $rc = 0 ] && echo "check-oclgrind: clean"
exit $rc
