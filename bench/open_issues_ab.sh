#!/usr/bin/env bash
# open_issues_ab.sh - this tree's GPU bundle (.gpu) against a baseline bundle (.gpu-old, e.g. main's last stop)
# on the workloads the open issues measure, in one device call (LLaMA-3.2-1B shapes, random weights):
#   issue 19  131,072 tokens, bf16, diagonal: the paper variant against armt + sink + sliding window and amt
#             with 4 memory heads + sink (the ratio to the paper row of the same bundle is the criterion)
#   issue 24  64 documents x 4,096 tokens decoding 32 tokens each (tokens/s together), and one document's
#             decode after 4,096 tokens (armt-run's decode line)
#   issue 21  full attention at 131,072 tokens, bf16 (time and peak device memory); the fp32 GEMM sites on
#             CLBlast, 3xTF32 and the TF_KPAIR build (gemm_fp32_bench), on 16 cells and on one
#   bash bench/open_issues_ab.sh            (on the GPU machine, from the project root; $OUT gets the log)
# Bundles: ../shared/tools/gpu-bundle.sh's layout (bin/ and run.sh); carry both. Rounds alternate new and old
# so that both see the same machine start. REPS (default 2) rounds of each A/B.
set -u
out=${OUT:-/tmp}
cd "$(dirname "$0")/.." || exit 2
exec > >(tee "$out/open_issues_ab.log") 2>&1
M="--preset llama-3.2-1b --precision bf16"
N=.gpu/run.sh O=.gpu-old/run.sh
REPS=${REPS:-2}
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader
echo "## issue 19: 131072 bf16 diagonal, -r 3"
for cfg in "--variant paper" "--variant armt --sink --sliding-window" "--variant amt --mem-heads 4 --sink"; do
    for r in $(seq "$REPS"); do
        for b in $N $O; do
            printf '%-8s %-40s ' "${b%/run.sh}" "$cfg"
            timeout 60 bash $b clbench $M $cfg --tokens 131072 --schedule diagonal -r 3 -q 2>&1 |
                grep -E "^\| diagonal" | tr -s ' '
        done
    done
done
echo "## issue 24: 64 documents x 4096, 32 new each"
for r in $(seq "$REPS"); do
    for b in $N $O; do
        printf '%-8s ' "${b%/run.sh}"
        timeout 60 bash $b clbench $M --tokens 4096 --batch 64 --decode 32 -r 1 -q 2>&1 | tail -1
    done
done
echo "## issue 24: one document decoding 127 timed tokens after 4096"
for r in $(seq "$REPS"); do
    for b in $N $O; do
        printf '%-8s ' "${b%/run.sh}"
        timeout 40 bash $b armt-run $M --print-ids --random-ids 4096 --max-new 128 2>&1 | grep -E "^decode"
    done
done
echo "## issue 21: full attention, bf16, 131072 tokens (time, peak device memory)"
for b in $O $N; do
    printf '%-8s ' "${b%/run.sh}"
    timeout 90 bash $b clbench $M --tokens 131072 --schedule full -r 2 -q 2>&1 | grep -E "^\| full" | tr -s ' '
done
echo "## issue 21: fp32 GEMM sites (gemm_fp32_bench, new bundle): 16 cells of 1152 rows, then one cell"
timeout 90 bash $N gemm_fp32_bench --reps 5 --paths clblast,tf32x3,kp,kpo3 2>&1 | grep -E "\| (clblast|tf32x3|kp|kpo3) \|"
for t in "" 64x128x16:2x4:3 64x64x32:2x2:2; do
    echo "one cell, tiles ${t:-default}"
    timeout 60 bash $N gemm_fp32_bench --cells 1 --reps 5 --paths tf32x3,kp --sites wq,wkv,wgu,wd ${t:+--tiles $t} 2>&1 |
        grep -E "\| (tf32x3|kp) \|"
done
echo "## end"
