#!/usr/bin/env bash
# decode_variants.sh - build-option variants of the decode kernels on the GPU, interleaved (issue 24): one
# document's decode after a 4,096-token prompt (bf16, LLaMA-3.2-1B shapes, random weights), REPS rounds of
# every variant in turn, then the median per variant; a batch of 64 documents for the attention's variants; the
# per-site profile of the variants; the batch also with k split ($ARMT_SPLITK). (-DGV_ROWS=1, measured in
# docs/perf/results/2026-12-06-h100-decode-7.md, is now the GEMV's kernels of one row.)
#   bash bench/decode_variants.sh        (on the GPU machine, from the project root, bundle in .gpu)
set -u
out=${OUT:-/tmp}
cd "$(dirname "$0")/.."
exec > >(tee "$out/decode_variants.log") 2>&1
new=.gpu/run.sh
M="--preset llama-3.2-1b --precision bf16"
REPS=${REPS:-5}
variants=("" "-DGV_UNROLL=4" "-DATTN_DSTAGE_V=1" "-DATTN_DUNROLL=32")
echo "## one document, 127 timed tokens after 4096, $REPS rounds of every variant"
for r in $(seq "$REPS"); do
    for v in "${variants[@]}"; do
        t=$(ARMT_CL_BUILD_OPTIONS="$v" bash $new armt-run $M --print-ids --random-ids 4096 --max-new 128 2>&1 |
            sed -n 's/^decode: .*(\([0-9.]*\) tokens\/s)/\1/p')
        printf '%-28s %s\n' "${v:-default}" "$t"
    done
done | tee "$out/variants_raw.txt"
echo "## medians"
for v in "${variants[@]}"; do
    grep -F -- "$(printf '%-28s ' "${v:-default}")" "$out/variants_raw.txt" | awk '{print $NF}' | sort -n |
        awk -v name="${v:-default}" '{a[NR]=$1} END {m = NR % 2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2;
            printf "%-28s median %.1f tokens/s of %d (min %.1f, max %.1f)\n", name, m, NR, a[1], a[NR]}'
done
echo "## batch decode, 64 documents x 4096, 32 new tokens each: build options, then the split of k"
for r in 1 2; do
    for v in "" "-DATTN_DSTAGE_V=1"; do
        printf '%-28s ' "${v:-default}"
        ARMT_CL_BUILD_OPTIONS="$v" bash $new clbench $M --tokens 4096 --batch 64 --decode 32 -r 1 -q 2>&1 | tail -1
    done
    for sk in auto 4 8 16; do
        printf '%-28s ' "ARMT_SPLITK=$sk"
        ARMT_SPLITK=$sk bash $new clbench $M --tokens 4096 --batch 64 --decode 32 -r 1 -q 2>&1 | tail -1
    done
done
echo "## profiles (GEMM sites): default, -DATTN_DSTAGE_V=1"
for v in "" "-DATTN_DSTAGE_V=1"; do
    echo "${v:-default}"
    ARMT_CL_BUILD_OPTIONS="$v" bash $new armt-run $M --random-ids 4096 --max-new 64 --profile 2>&1 |
        grep -A30 "^profile:  decode" | grep -E "gemv|attention|profile|  w|lm_head|mem_read"
done
