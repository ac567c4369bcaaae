#!/bin/sh
# make check-oclgrind: every kernel of cl/ on tiny shapes (tests/oclgrind_driver) under Oclgrind, with API
# checks, data-race detection and uninitialised-value tracking; fails on any Oclgrind report, on a driver
# failure, or when a kernel of lib/device/internal.h's list ran in no set. Logs: oclgrind-SET.log.
# Oclgrind's uninitialised-value plugin stops on LLVM's `freeze` instruction ("Unsupported instruction:
# freeze", Debian's oclgrind 21.10 on LLVM 14), which the optimiser emits: the kernels are built with
# -cl-opt-disable here.
set -u
driver=${1:-./tests/oclgrind_driver}
command -v oclgrind >/dev/null 2>&1 || { echo "check-oclgrind: oclgrind not installed (apt-get install oclgrind)"; exit 77; }
rc=0
seen=""
for set in fp32 bf16 bf16-mma bf16-wgmma fp32-tf32; do
  log=oclgrind-$set.log
  rm -f "$log"
  timeout 1200 oclgrind --check-api --data-races --uninitialized --build-options -cl-opt-disable \
    --max-errors 50 --log "$log" "$driver" "$set" > "oclgrind-$set.out" 2>&1
  drc=$?
  reports=$( [ -s "$log" ] && grep -c -E 'error|Error|race|Uninitialized|Invalid|FATAL' "$log" || echo 0)
  echo "check-oclgrind: $set: driver exit $drc, $reports report lines (log $log)"
  [ "$drc" = 0 ] || { tail -n 20 "oclgrind-$set.out"; rc=1; }
  [ "$reports" = 0 ] || { head -n 40 "$log"; rc=1; }
  seen="$seen $(sed -n 's/^kernel: //p' "oclgrind-$set.out" | sed 's,/.*,,')"
done
missing=""
for k in $(sed -n 's/^ *ARMT_K_\([A-Z0-9_]*\),.*/\1/p' "$(dirname "$0")/../lib/device/internal.h" | tr 'A-Z' 'a-z'); do
  echo "$seen" | tr ' ' '\n' | grep -qx "armt_$k" || missing="$missing armt_$k"
done
[ -z "$missing" ] || { echo "check-oclgrind: kernels no set ran:$missing"; rc=1; }
[ $rc = 0 ] && echo "check-oclgrind: clean"
exit $rc
