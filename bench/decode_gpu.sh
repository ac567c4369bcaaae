#!/usr/bin/env bash
# decode_gpu.sh - issue 24's decode check on the GPU (LLaMA-3.2-1B shapes, bf16, random weights): the decode
# kernels' tests, the bf16-accuracy and the variant-fixture tests on real tensor cores, then one document's
# decode after a 4,096-token prompt, this tree's bundle (.gpu) alternating with a baseline bundle (.gpu-old),
# the GEMV's lanes forced, the new bundle's profile per kernel, and (DECODE_LONG)
# a 131,072-token prompt and a batch of 64 documents decoding together, old and new.
#   bash bench/decode_gpu.sh            (on the GPU machine, from the project root; $OUT gets the logs)
# Bundles: ../shared/tools/gpu-bundle.sh's layout, the new one with the test programs (how both were made:
# docs/perf/results/2026-12-06-h100-decode-4.md).
set -u
out=${OUT:-/tmp}
cd "$(dirname "$0")/.."
# everything printed also goes to $OUT/decode_gpu.log as it comes (a call cut off at its limit keeps it)
exec > >(tee "$out/decode_gpu.log") 2>&1
new=.gpu/run.sh old=.gpu-old/run.sh
export ARMT_TEST_DATA=$PWD/tests/data
M="--preset llama-3.2-1b --precision bf16"
echo "## tests"
for t in check_gemv check_attention check_generate check_generate_batch check_tensor_cores \
         check_variant_fixtures ${DECODE_TESTS_MORE:-}; do
    printf '%-22s ' $t; timeout 300 bash $new $t > "$out/$t.txt" 2>&1; grep -E "Checks" "$out/$t.txt" || tail -3 "$out/$t.txt"
done
echo "## decode, 4096-token prompt, 127 timed tokens (old / new alternating)"
for i in 1 2; do
    for b in $old $new; do
        printf '%-10s ' "${b%/run.sh}"
        bash $b armt-run $M --print-ids --random-ids 4096 --max-new 128 2>&1 | grep -E "^decode"
    done
done
# the GEMV's lanes per column pair forced (the default picks them per weight shape)
for lanes in 32 64 128; do
    printf 'ARMT_GEMV_LANES=%-12s ' $lanes
    ARMT_GEMV_LANES=$lanes bash $new armt-run $M --print-ids --random-ids 4096 --max-new 128 2>&1 | grep -E "^decode"
done
echo "## profile (new, default lanes)"
bash $new armt-run $M --random-ids 4096 --max-new 64 --profile > "$out/profile_decode.txt" 2>&1
grep -A32 "profile:" "$out/profile_decode.txt"
echo "## GEMM sites at 32 lanes (new)"
ARMT_GEMV_LANES=32 bash $new armt-run $M --random-ids 4096 --max-new 64 --profile \
    > "$out/profile_decode_lanes32.txt" 2>&1
grep -A9 "GEMMs by site" "$out/profile_decode_lanes32.txt"
if [ -n "${DECODE_LONG:-}" ]; then
echo "## 131072-token prompt (new)"
bash $new armt-run $M --random-ids 131072 --max-new 128 2>&1 | grep -E "^(decode|prefill)"
echo "## batch decode, 64 documents (old, new)"
for b in $old $new; do
    echo "${b%/run.sh}"
    bash $b clbench $M --tokens 4096 --batch 64 --decode 32 -r 1 -q 2>&1 | tail -4
done
echo "## batch decode profile, 64 documents of 4096 random ids (new)"
ids=""
for i in $(seq 0 63); do
    shuf -i 0-128255 -n 4096 -r --random-source=<(yes $i) > "$out/ids$i.txt"; ids="$ids --prompt-ids $out/ids$i.txt"
done
# shellcheck disable=SC2086
bash $new armt-run $M $ids --max-new 16 --profile > "$out/profile_batch_decode.txt" 2>&1
grep -E "^(decode|profile)|^  " "$out/profile_batch_decode.txt" | head -60
rm -f "$out"/ids*.txt
fi
