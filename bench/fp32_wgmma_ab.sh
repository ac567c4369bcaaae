#!/usr/bin/env bash
# fp32_wgmma_ab.sh - fp32 on tensor cores (the wgmma 3xTF32 GEMM, cl/gemm_tf32_wg.cl, and the 3xTF32
# attention, attention_mma.cl's AM_TF32) on the GPU, in one device call: the tests on real tensor cores, the
# GEMM sites against the mma.sync kernel and CLBlast (gemm_fp32_bench), the fp32 1B forward at 32,768 tokens
# (diagonal, sequential, then full attention), this tree's bundle against a baseline bundle (alternating),
# then a profile.
#   bash bench/fp32_wgmma_ab.sh        (on the GPU machine, from the project root; $OUT gets the log)
# Bundles (../shared/tools/gpu-bundle.sh's layout): NEW (default .gpu-tf) and OLD (default .gpu); carry both.
set -u
out=${OUT:-/tmp}
cd "$(dirname "$0")/.." || exit 2
exec > >(tee "$out/fp32_wgmma_ab.log") 2>&1
N=${NEW:-.gpu-tf}/run.sh O=${OLD:-.gpu}/run.sh
M="--preset llama-3.2-1b --precision fp32 --fp32-gemm tf32x3"
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader
echo "## tests on the GPU (new)"
bash bench/gpu_fp32_tests.sh "$N" "$out" 150 check_tf32 check_gemm_plan check_attention
echo "## the runtime's choice (new)"
timeout 60 bash $N clbench $M --tokens 1024 --schedule diagonal -r 1 -w 0 -v 2>&1 | grep -E "fp32 GEMM|wgmma" | head -5
echo "## gemm_fp32_bench, 16 cells of 1152 rows (new): CLBlast, 3xTF32 (wgmma), 3xTF32 (mma.sync)"
timeout 200 bash $N gemm_fp32_bench --reps 5 --paths clblast,tf32x3,mma 2>&1 | grep -E "^\|"
echo "## fp32, 32768 tokens, diagonal and sequential, -r 2: new / old alternating"
for r in 1 2; do
    for b in $N $O; do
        printf '%-10s\n' "${b%/run.sh}"
        timeout 100 bash $b clbench $M --tokens 32768 --schedule diagonal,sequential -r 2 -q 2>&1 |
            grep -E "^\| (diagonal|sequential) " | tr -s ' '
    done
done
echo "## fp32, 32768 tokens, full attention, -r 1: new / old"
for b in $N $O; do
    printf '%-10s\n' "${b%/run.sh}"
    timeout 60 bash $b clbench $M --tokens 32768 --schedule full -r 1 -q 2>&1 | grep -E "^\| full " | tr -s ' '
done
echo "## fp32, 32768 tokens, diagonal: profile (new)"
timeout 100 bash $N clbench $M --tokens 32768 --schedule diagonal -r 1 -q --profile 2>&1 |
    grep -E "device total" | head -3
echo "## end"
