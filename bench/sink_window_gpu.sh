#!/usr/bin/env bash
# sink_window_gpu.sh - issue 19's GPU check of the sink and the sliding window (LLaMA-3.2-1B shapes, bf16):
# the changed kernels on real tensor cores, diagonal = sequential, then clbench at 131,072 tokens (diagonal),
# this tree's bundle (.gpu) alternating with a baseline bundle (.gpu-old, main's build) per configuration,
# and one profiled call of the sink + window model. Bundles: ../shared/tools/gpu-bundle.sh's layout.
#   bash bench/sink_window_gpu.sh            (on the GPU machine, from the project root; $OUT gets the profile)
set -u
out=${OUT:-/tmp}
cd "$(dirname "$0")/.."
new=.gpu/run.sh old=.gpu-old/run.sh
echo "## correctness"
bash $new gemm_bf16_test --kernel-dir cl --mma-tiles "b128x256x64:2x4s4w256g227m1,128x256x64:2x4s4w256g227m1" \
    > "$out/gemm_bf16_test.txt" 2>&1
echo "gemm_bf16_test rc=$?"; grep -E "1152|1189|correctness|FAIL" "$out/gemm_bf16_test.txt" | tail -8
for t in check_attention check_tensor_cores; do bash $new $t 2>&1 | grep -E "Checks|window" ; done
bash $new clbench --preset llama-3.2-1b --variant armt --sink --sliding-window --precision bf16 --tokens 16384 \
    --schedule diagonal,sequential --verify -r 1 -q 2>&1 | grep -E "^\| (diagonal|sequential) "
echo "## 131072 tokens, bf16, diagonal, median of 3"
for cfg in "--variant paper" "--variant armt" "--variant armt --sink" "--variant armt --sliding-window" \
    "--variant armt --sink --sliding-window" "--variant amt --mem-heads 4 --sink"; do
    for b in $old $new; do
        printf '%-16s %-42s ' "${b%/run.sh}" "$cfg"
        bash $b clbench --preset llama-3.2-1b $cfg --precision bf16 --tokens 131072 --schedule diagonal -r 3 -q \
            2>&1 | grep -E "^\| diagonal" | tr -s ' '
    done
done
bash $new clbench --preset llama-3.2-1b --variant armt --sink --sliding-window --precision bf16 --tokens 131072 \
    --schedule diagonal -r 1 --profile -q > "$out/profile_sink_window.txt" 2>&1
bash $old clbench --preset llama-3.2-1b --variant armt --sink --sliding-window --precision bf16 --tokens 131072 \
    --schedule diagonal -r 1 --profile -q > "$out/profile_sink_window_old.txt" 2>&1
echo "profiles: rc=$?"
