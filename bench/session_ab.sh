#!/usr/bin/env bash
# session_ab.sh - one short device call (under 8 minutes) covering what this round's open issues measure,
# this tree's bundle against a baseline bundle, in order of importance so that a call cut short keeps the
# first results: fp32 1B at 32,768 tokens (diagonal, sequential; new), the issue-19 ratios (131,072 tokens,
# bf16, diagonal: paper, armt + sink + window, amt with 4 heads + sink; new), 64 documents x 4,096 decoding
# 32 (issue 24; new / old), bf16 full attention at 131,072 (issue 21: time, peak device memory; new), the
# fp32 GEMM sites (gemm_fp32_bench; new), fp32 full attention at 32,768 (new), the portable bf16 GEMM's
# tiles with tensor cores off (gemm_bf16_test), and last the fp32 tensor-core kernels' tests (check_tf32,
# check_attention: passed on an H100 on 2026-12-07, docs/perf/results/2026-12-07-h100-tf32-wgmma-first.md).
#   bash bench/session_ab.sh     (on the GPU machine, from the project root; $OUT gets session_ab.log)
# Bundles: NEW (default .gpu-new, built with the test programs) and OLD (default .gpu-old); carry both.
set -u
out=${OUT:-/tmp}
cd "$(dirname "$0")/.." || exit 2
exec > >(tee "$out/session_ab.log") 2>&1
N=${NEW:-.gpu-new}/run.sh O=${OLD:-.gpu-old}/run.sh
B="--preset llama-3.2-1b --precision bf16" F="--preset llama-3.2-1b --precision fp32 --fp32-gemm tf32x3"
t0=$(date +%s)
stamp() { echo "## [$(($(date +%s) - t0)) s] $*"; }
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader
stamp "fp32, 32768 tokens, diagonal + sequential, -r 2 (new)"
timeout 110 bash $N clbench $F --tokens 32768 --schedule diagonal,sequential -r 2 -q 2>&1 |
    grep -E "^\| (diagonal|sequential) " | tr -s ' '
stamp "issue 19: bf16 131072 diagonal -r 2 (new)"
for cfg in "--variant paper" "--variant armt --sink --sliding-window" "--variant amt --mem-heads 4 --sink"; do
    printf '%-40s ' "$cfg"
    timeout 50 bash $N clbench $B $cfg --tokens 131072 --schedule diagonal -r 2 -q 2>&1 | grep -E "^\| diagonal" | tr -s ' '
done
stamp "issue 24: 64 documents x 4096, 32 new each (new, old)"
for b in $N $O; do
    printf '%-10s ' "${b%/run.sh}"
    timeout 60 bash $b clbench $B --tokens 4096 --batch 64 --decode 32 -r 1 -q 2>&1 | tail -1
done
stamp "issue 21: bf16 full attention 131072, -r 1 (new)"
timeout 60 bash $N clbench $B --tokens 131072 --schedule full -r 1 -q 2>&1 | grep -E "^\| full" | tr -s ' '
stamp "issue 21: gemm_fp32_bench, 16 cells (new)"
timeout 80 bash $N gemm_fp32_bench --reps 3 --sites wq,wkv,wo,wgu,wd,read --paths clblast,tf32x3,mma 2>&1 | grep -E "^\|"
stamp "issue 21: fp32 full attention 32768, -r 1 (new)"
timeout 60 bash $N clbench $F --tokens 32768 --schedule full -r 1 -q 2>&1 | grep -E "^\| full" | tr -s ' '
stamp "issue 21: the portable bf16 GEMM's tiles, tensor cores off (new)"
timeout 90 bash $N gemm_bf16_test --kernel-dir cl --bench --reps 3 --mma-tiles '' \
    --portable-tiles 64x64:4x4,128x64:8x4,128x128:8x8 2>&1 | grep -E "^\||^correctness|FAIL"
stamp "tests on the GPU (new)"
bash bench/gpu_fp32_tests.sh "$N" "$out" 120 check_tf32 check_attention
timeout 60 bash $N clbench $F --tokens 1024 --schedule diagonal -r 1 -w 0 -v 2>&1 | grep -E "fp32 GEMM|wgmma|warn" | head -4
stamp "end"
