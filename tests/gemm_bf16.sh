#!/bin/sh
# GEMM-level check of the bf16 kernels (portable everywhere, tensor cores where the device has them):
# relative error against an fp64 reference, poisoned outputs, odd sizes, non-monotonic batch offsets.
srcdir=${srcdir:-$(dirname "$0")/..}
exec ./bench/gemm_bf16_test --kernel-dir "$srcdir/cl"
