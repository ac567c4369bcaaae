#!/usr/bin/env bash
# session_ab2.sh - the second short device call of a session (under 8 minutes), after session_ab.sh: what the
# tensor-cores-off table needs (bench/portable_vs_fp32.sh, one round), the 3xTF32 wgmma tiles on one cell of
# 1,152 rows (the sequential schedule's launches: 128 x 128 tiles give 1.1 waves of work-groups on an H100)
# and fp32 at 131,072 tokens (issue 21's second length), diagonal and sequential.
#   bash bench/session_ab2.sh     (on the GPU machine, from the project root; $OUT gets session_ab2.log)
# Bundle: NEW (default .gpu-new; built with the test programs: gemm_bf16_test is used from it); carry it.
set -u
out=${OUT:-/tmp}
cd "$(dirname "$0")/.." || exit 2
exec > >(tee "$out/session_ab2.log") 2>&1
N=${NEW:-.gpu-new}
F="--preset llama-3.2-1b --precision fp32 --fp32-gemm tf32x3"
t0=$(date +%s)
stamp() { echo "## [$(($(date +%s) - t0)) s] $*"; }
stamp "portable_vs_fp32.sh (BUNDLE=$N ROUNDS=1)"
BUNDLE=$N ROUNDS=1 OUT=$out timeout 300 bash bench/portable_vs_fp32.sh > /dev/null 2>&1
cat "$out/portable_vs_fp32.log"
for tiles in 2x128:3 2x64:3 1x128:3; do
    stamp "3xTF32 wgmma tiles $tiles, one cell: gemm_fp32_bench --cells 1 --reps 5 --paths tf32x3 --wg-tiles $tiles"
    timeout 60 bash $N/run.sh gemm_fp32_bench --cells 1 --reps 5 --sites wq,wkv,wo,wgu,wd --paths tf32x3 \
        --wg-tiles "$tiles" 2>&1 | grep -E "^\|"
done
stamp "fp32 131072 tokens, diagonal + sequential, -r 1"
timeout 150 bash $N/run.sh clbench $F --tokens 131072 --schedule diagonal,sequential -r 1 -q 2>&1 |
    grep -E "^\| (diagonal|sequential) " | tr -s ' '
stamp end
