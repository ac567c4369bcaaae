#!/usr/bin/env bash
# session_ab4.sh - 2026-12-07 (second session), device call A: session_ab3.sh (3xTF32 with per-k-tile sums,
# decode, profiles), then the 64-document decode round's sensitivity to the GEMV's lanes and its profile.
#   NEW=.gpu-ab3 OLD=.gpu-new bash bench/session_ab4.sh    ($OUT gets session_ab3.log and session_ab4.log)
set -u
out=${OUT:-/tmp}
cd "$(dirname "$0")/.." || exit 2
NEW=${NEW:-.gpu-ab3} OLD=${OLD:-.gpu-new} timeout 420 bash bench/session_ab3.sh
exec > >(tee "$out/session_ab4.log") 2>&1
B="--preset llama-3.2-1b --precision bf16"
for l in "" 64 "" 64; do
    printf 'ARMT_GEMV_LANES=%-4s ' "$l"
    ARMT_GEMV_LANES=$l timeout 60 bash ${NEW:-.gpu-ab3}/run.sh clbench $B --tokens 4096 --batch 64 --decode 32 -r 1 -q 2>&1 | tail -1
done
echo "## batch decode profile (new)"
ids=""; for i in $(seq 0 63); do shuf -i 0-128255 -n 4096 -r --random-source=<(yes $i) > /tmp/ids$i.txt; ids="$ids --prompt-ids /tmp/ids$i.txt"; done
timeout 60 bash ${NEW:-.gpu-ab3}/run.sh armt-run $B $ids --max-new 16 --profile 2>&1 | grep -A40 "profile:  batch decode" | head -45
