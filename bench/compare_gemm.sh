#!/bin/sh
# Our bf16 batched GEMM, then PyTorch's torch.bmm on the same shapes, on the same GPU, one right after the
# other (GPU speed drifts between machine starts, so an anchor is measured next to what it anchors).
# From the repository root, after `make bench/gemm_bf16_test`:
#   sh bench/compare_gemm.sh [PLATFORM DEVICE]     (indices, default 1 0; bench/gemm_bf16_test --list)
# GEMM_BF16_TEST names another binary.
set -eu
p=${1:-1}
d=${2:-0}
bin=${GEMM_BF16_TEST:-./bench/gemm_bf16_test}
"$bin" --kernel-dir cl --platform "$p" --device "$d" --bench
python3 bench/torch_bmm.py
