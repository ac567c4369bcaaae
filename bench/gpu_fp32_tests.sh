#!/usr/bin/env bash
# gpu_fp32_tests.sh - the fp32 tensor-core kernels' tests on a GPU bundle, with their tables: each test's
# Check summary, check_tf32's per-site errors and tiny-forward line, check_attention's per-case errors.
# Used by bench/session_ab.sh and bench/fp32_wgmma_ab.sh.
#   bash bench/gpu_fp32_tests.sh RUN_SH OUTDIR TIMEOUT TEST...     e.g. .gpu-new/run.sh /tmp 120 check_tf32
set -u
run=$1 out=$2 limit=$3
shift 3
for t in "$@"; do
    printf '%-16s ' "$t"
    timeout "$limit" bash "$run" "$t" > "$out/$t.txt" 2>&1
    grep -E "^[0-9]+%: Checks" "$out/$t.txt" || tail -5 "$out/$t.txt"
done
[ -f "$out/check_tf32.txt" ] && sed -n '/^site /,/^tiny fp32/p' "$out/check_tf32.txt" &&
    grep -E "^tiny fp32" "$out/check_tf32.txt"
[ -f "$out/check_attention.txt" ] && grep -E "^attention hd" "$out/check_attention.txt" | sed 's/.*window [0-9]*: //'
exit 0
