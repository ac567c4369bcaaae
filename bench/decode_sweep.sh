#!/usr/bin/env bash
# decode_sweep.sh - one document's decode (issue 24) on the GPU: a baseline bundle against this tree's bundle
# and the decode knobs of this tree, interleaved, REPS rounds; then the medians, whether every variant that
# keeps the GEMV's lanes produced the same tokens as the baseline (they must: the same sums in the same
# order), and this tree's per-kernel profile. bf16, LLaMA-3.2-1B shapes, random weights, a 4,096-token
# prompt, 128 new tokens (127 timed), greedy; last, 64 documents decoding together (both bundles).
#   bash bench/decode_sweep.sh     (on the GPU machine, from the project root; $OUT gets decode_sweep.log)
# MODEL, PROMPT, LONG, REPS: the model options (default the bf16 1B preset), the prompt (4096), the long
# prompt (131072), the rounds (3); a CPU trial: MODEL="--preset tiny" PROMPT=64 LONG=128 REPS=1.
# Bundles: NEW (default .gpu-dev, this tree) and OLD (default .gpu-new, the baseline); carry both.
# Knobs (docs/DESIGN.md): ARMT_DECODE_FLUSH (layers between queue flushes; 0 none), the build option
# -DGV_SHFL=0 (the GEMV's reduction all in local memory), -DGV_UNROLL (chunks in flight per lane),
# ARMT_GEMV_WGS (work-groups per compute unit the lanes heuristic aims at), ARMT_GEMV_LANES (forced lanes).
set -u
out=${OUT:-/tmp}
cd "$(dirname "$0")/.." || exit 2
exec > >(tee "$out/decode_sweep.log") 2>&1
N=${NEW:-.gpu-dev}/run.sh O=${OLD:-.gpu-new}/run.sh
M=${MODEL:---preset llama-3.2-1b --precision bf16}
P=${PROMPT:-4096} LONG=${LONG:-131072}
REPS=${REPS:-3}
# label|bundle|environment (same lanes as the baseline: S; other lanes: L)
variants=(
    "base|$O|"
    "new|$N|"
    "flush4|$N|ARMT_DECODE_FLUSH=4"
    "flush1|$N|ARMT_DECODE_FLUSH=1"
    "noshfl|$N|ARMT_CL_BUILD_OPTIONS=-DGV_SHFL=0"
    "unroll4|$N|ARMT_CL_BUILD_OPTIONS=-DGV_UNROLL=4"
    "wgs4|$N|ARMT_GEMV_WGS=4"
    "wgs8|$N|ARMT_GEMV_WGS=8"
    "lanes128|$N|ARMT_GEMV_LANES=128"
    "wgs8-unroll4|$N|ARMT_GEMV_WGS=8 ARMT_CL_BUILD_OPTIONS=-DGV_UNROLL=4"
)
same_lanes="base new flush4 flush1 noshfl unroll4"
t0=$(date +%s)
command -v nvidia-smi >/dev/null && nvidia-smi --query-gpu=name,driver_version --format=csv,noheader
echo "## one document, 127 timed tokens after $P, $REPS rounds of every variant"
for r in $(seq "$REPS"); do
    for v in "${variants[@]}"; do
        IFS='|' read -r name b envs <<< "$v"
        res=$(env $envs timeout 60 bash $b armt-run $M --print-ids --random-ids $P --max-new 128 2>&1)
        t=$(sed -n 's/^decode: .*(\([0-9.]*\) tokens\/s)/\1/p' <<< "$res")
        ids=$(grep -E '^[0-9]+( [0-9]+)*$' <<< "$res" | tail -1 | md5sum | cut -c1-8)
        printf '%-14s %-8s ids %s  [%s s]\n' "$name" "${t:-FAIL}" "$ids" "$(($(date +%s) - t0))"
        [ -n "$t" ] || grep -iE "error|fail" <<< "$res" | head -3
    done
done | tee "$out/decode_sweep_raw.txt"
echo "## medians"
for v in "${variants[@]}"; do
    name=${v%%|*}
    grep -E "^$name +[0-9]" "$out/decode_sweep_raw.txt" | awk '{print $2}' | sort -n |
        awk -v name="$name" '{a[NR]=$1} END {if (!NR) {printf "%-14s no runs\n", name; exit}
            m = NR % 2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2;
            printf "%-14s median %.1f tokens/s of %d (min %.1f, max %.1f)\n", name, m, NR, a[1], a[NR]}'
done
echo "## tokens (ids md5) of the variants with the baseline's lanes: one value expected"
for name in $same_lanes; do grep -E "^$name " "$out/decode_sweep_raw.txt" | awk '{print $4}'; done | sort | uniq -c
echo "## profile (new)"
timeout 60 bash $N armt-run $M --random-ids $P --max-new 64 --profile 2>&1 | grep -A14 "^profile:  decode"
echo "## $LONG-token prompt (new, old)"
for b in $N $O; do
    printf '%-14s ' "${b%/run.sh}"
    timeout 90 bash $b armt-run $M --random-ids $LONG --max-new 128 2>&1 | grep -E "^decode"
done
echo "## 64 documents x $P decoding 32 each (new, old, new, old)"
for b in $N $O $N $O; do
    printf '%-14s ' "${b%/run.sh}"
    timeout 60 bash $b clbench $M --tokens $P --batch 64 --decode 32 -r 1 -q 2>&1 | tail -1
done
echo "## [$(($(date +%s) - t0)) s] end"
