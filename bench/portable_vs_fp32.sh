#!/usr/bin/env bash
# portable_vs_fp32.sh - what a GPU without NVIDIA tensor cores gets (issue 21, item 6), measured on an NVIDIA GPU
# with the tensor cores switched off as a stand-in for another vendor's: bf16 weights on the portable GEMM
# kernel (cl/gemm_bf16.cl) against fp32 weights on CLBlast, per GEMM site and end to end, in one device call.
#   1. the portable kernel's tiles on the 1B cell shapes (bench/gemm_bf16_test --bench, no tensor-core kernels;
#      16 cells x 1152 rows; every tile checked bit for bit against the first, 64 x 64, the one before)
#   2. CLBlast's SGEMM on the same sites (bench/gemm_fp32_bench --paths clblast)
#   3. clbench, 1B shapes, 32,768 tokens, diagonal: bf16 with ARMT_TENSOR_CORES=off (this bundle, and OLD's
#      portable kernel if OLD is set) against fp32 with --fp32-gemm clblast, alternating, -r 2
#   bash bench/portable_vs_fp32.sh     (on the GPU machine, from the project root; $OUT gets the log)
# Environment: BUNDLE (default .gpu: clbench and gemm_fp32_bench, ../shared/tools/gpu-bundle.sh), OLD (a
# baseline bundle, optional), GEMM_TEST (default $BUNDLE/bin/gemm_bf16_test), TOKENS (32768), ROUNDS (2).
# The fp32 FMA ceiling to divide by: 60.7 TFLOP/s measured from OpenCL on an H200 (PERFORMANCE.md).
set -u
out=${OUT:-/tmp}
cd "$(dirname "$0")/.." || exit 2
exec > >(tee "$out/portable_vs_fp32.log") 2>&1
B=${BUNDLE:-.gpu}
R="$B/run.sh" GT=${GEMM_TEST:-$B/bin/gemm_bf16_test}
M="--preset llama-3.2-1b" T=${TOKENS:-32768}
t0=$(date +%s)
stamp() { echo "## [$(($(date +%s) - t0)) s] $*"; }
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader 2>/dev/null
stamp "portable bf16 GEMM per site: bash $R $GT --kernel-dir cl --bench --reps 5 --mma-tiles '' --portable-tiles 64x64:4x4,128x128:8x8,128x64:8x4"
timeout 150 bash "$R" "$GT" --kernel-dir cl --bench --reps 5 --mma-tiles '' \
    --portable-tiles 64x64:4x4,128x128:8x8,128x64:8x4 2>&1 | grep -E "^\||^correctness|FAIL|built"
stamp "CLBlast fp32 per site: bash $R gemm_fp32_bench --reps 5 --sites wq,wkv,wo,wgu,wd --paths clblast"
timeout 120 bash "$R" gemm_fp32_bench --reps 5 --sites wq,wkv,wo,wgu,wd --paths clblast 2>&1 | grep -E "^\|"
for r in $(seq "${ROUNDS:-2}"); do
    stamp "round $r: clbench $M --tokens $T --schedule diagonal -r 2"
    printf '%-34s ' "bf16, tensor cores off ($B)"
    ARMT_TENSOR_CORES=off timeout 120 bash "$R" clbench $M --precision bf16 --tokens "$T" --schedule diagonal \
        -r 2 -q 2>&1 | grep -E "^\| diagonal" | tr -s ' '
    if [ -n "${OLD:-}" ]; then
        printf '%-34s ' "bf16, tensor cores off ($OLD)"
        ARMT_TENSOR_CORES=off timeout 120 bash "$OLD/run.sh" clbench $M --precision bf16 --tokens "$T" \
            --schedule diagonal -r 2 -q 2>&1 | grep -E "^\| diagonal" | tr -s ' '
    fi
    printf '%-34s ' "fp32, CLBlast ($B)"
    timeout 120 bash "$R" clbench $M --precision fp32 --fp32-gemm clblast --tokens "$T" --schedule diagonal \
        -r 2 -q 2>&1 | grep -E "^\| diagonal" | tr -s ' '
done
stamp end
