#!/bin/sh
# Our bf16 batched GEMM, then PyTorch's torch.bmm on the same shapes, on the same GPU, one right after the
# other (issue 8's "run right after it"). On the device machine, from the repository root:
#   sh bench/compare_gemm.sh [PLATFORM DEVICE]        (defaults 1 0: NVIDIA on the H200 machines)
# gemm_bf16_test is built with: cc -std=gnu11 -O2 bench/gemm_bf16_test.c lib/nv_ptx.c -o .gpu/bin/gemm_bf16_test -lOpenCL -lm
set -eu
p=${1:-1}
d=${2:-0}
bin=${GEMM_BF16_TEST:-.gpu/bin/gemm_bf16_test}
"$bin" --kernel-dir cl --platform "$p" --device "$d" --bench
python3 bench/torch_bmm.py
