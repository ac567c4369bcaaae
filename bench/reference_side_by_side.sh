#!/usr/bin/env bash
# reference_side_by_side.sh - the ARMT authors' PyTorch code (bench/reference_bench.py) and libarmt (clbench) on the
# same workloads in one device call: for each workload the reference row, then clbench's row, the whole list
# ROUNDS times (default 2), so that both see the same machine state and drift shows up as round-to-round change.
#
#   bash bench/reference_side_by_side.sh [WORKLOADS]
#
# WORKLOADS: comma-separated PRECISION:TOKENS:SCHEDULE (bf16|fp32, diagonal|sequential|full); default
#   bf16:131072:{diagonal,sequential,full} and fp32:32768:{diagonal,sequential,full} (fp32 at 131072 would
#   take the reference minutes per row).
# Needs, in the project root: .gpu/ (../shared/tools/gpu-bundle.sh; clbench and its runtime libraries) and .ref/
# (bench/fetch_reference.sh; the authors' code), both git-ignored, so a device call must carry them, e.g.
#   run(command="bash bench/reference_side_by_side.sh", carry=[".gpu", ".ref"])
# plus python3 with torch and transformers on the GPU machine.
#
# Each step's full output goes to $OUT/reference_side_by_side/rROUND-PRECISION-TOKENS-SCHEDULE.{ref,clbench}.txt
# (SCHEDULES joined by _ with GROUP=precision; first lines: '#' and the exact command); stdout gets the table rows as they come and a summary at the end
# (also in summary.md there). clbench is matched to the reference's workload: the llama-3.2-1b preset (segment
# 1024 + 128 memory tokens, d_mem 64), the same precision (bf16 weights; fp32 through clbench's default fp32 path,
# 3xTF32 GEMMs on NVIDIA sm_80+ tensor cores with the fp32 attention kernel: CLBENCH_OPTS="--fp32-gemm tf32x3"
# puts the attention on 3xTF32 too, "--fp32-gemm clblast" takes CLBlast's SIMT SGEMM like the reference's
# TF32-off cuBLAS), hidden states left on the device (--outputs none) with every row of the last
# layer computed (--all-rows: the reference computes them all), the same warm-up and repetitions.
#
# Environment: OUT (default /tmp), ROUNDS (2), REPS (3), WARMUP (1), PYTHON (python3), CLBENCH ("bash .gpu/run.sh
# clbench"), PRESET (llama-3.2-1b), REF_OPTS (extra reference_bench.py options), CLBENCH_OPTS (extra clbench
# options), GROUP (workload: one process per workload and side, as above; precision: one reference process and
# one clbench call for all the schedules of a PRECISION:TOKENS pair, alternating by pair - saves the process
# start, model build and kernel builds of the other schedules), STEP_TIMEOUT (seconds per step, 300),
# DEADLINE_S (540: a step is skipped, and said so, when the time used so far plus that step's time in the
# previous round, or 30 s in the first, would pass it; device calls stop at 600 s). Exit status 1 when a step
# failed (a row the reference or clbench could not run), 2 on a bad workload.
#
# A CPU-only trial of the mechanics (PoCL for clbench, the tiny shapes on both sides):
#   OUT=/tmp/sbs PRESET=tiny REF_OPTS="--device cpu --tiny" CLBENCH=./bench/clbench \
#       bash bench/reference_side_by_side.sh fp32:128:diagonal,fp32:128:full
set -u

root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root" || exit 1

workloads=${1:-bf16:131072:diagonal,bf16:131072:sequential,bf16:131072:full,fp32:32768:diagonal,fp32:32768:sequential,fp32:32768:full}
case "${1:-}" in -h|--help) awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"; exit 0 ;; esac
ROUNDS=${ROUNDS:-2}
REPS=${REPS:-3}
WARMUP=${WARMUP:-1}
PYTHON=${PYTHON:-python3}
CLBENCH=${CLBENCH:-bash .gpu/run.sh clbench}
PRESET=${PRESET:-llama-3.2-1b}
REF_OPTS=${REF_OPTS:-}
CLBENCH_OPTS=${CLBENCH_OPTS:-}
STEP_TIMEOUT=${STEP_TIMEOUT:-300}
DEADLINE_S=${DEADLINE_S:-540}
dir="${OUT:-/tmp}/reference_side_by_side"
mkdir -p "$dir"

declare -A last_s   # step name -> seconds the step took in the previous round
declare -A file_of  # "round workload" -> the step's output file (without .ref.txt / .clbench.txt)
failed=0
t0=$SECONDS

for w in ${workloads//,/ }; do
    case "$w" in
        bf16:[0-9]*:diagonal|bf16:[0-9]*:sequential|bf16:[0-9]*:full) ;;
        fp32:[0-9]*:diagonal|fp32:[0-9]*:sequential|fp32:[0-9]*:full) ;;
        *) echo "reference_side_by_side.sh: bad workload '$w' (PRECISION:TOKENS:SCHEDULE)" >&2; exit 2 ;;
    esac
done

# The steps' units: one workload each, or (GROUP=precision) the workloads of one PRECISION:TOKENS pair.
units=()
case "${GROUP:-workload}" in
    workload) IFS=, read -r -a units <<< "$workloads" ;;
    precision)
        for w in ${workloads//,/ }; do
            found=0
            for i in "${!units[@]}"; do
                first=${units[i]%%,*}
                if [ "${first%:*}" = "${w%:*}" ]; then units[i]+=",$w"; found=1; fi
            done
            [ $found = 1 ] || units+=("$w")
        done ;;
    *) echo "reference_side_by_side.sh: GROUP is workload or precision" >&2; exit 2 ;;
esac

# step KIND ROUND UNIT FILE CMD...: run CMD into FILE unless the deadline forbids; prints the unit's table rows
step() {
    local kind=$1 round=$2 unit=$3 file=$4
    shift 4
    local used=$((SECONDS - t0)) guess=${last_s["$kind $unit"]:-30} s=$SECONDS rc w
    if [ $((used + guess)) -gt "$DEADLINE_S" ]; then
        echo "skipped: $kind $unit round $round (${used} s used, about ${guess} s needed, deadline ${DEADLINE_S} s)" |
            tee "$file"
        return
    fi
    {
        echo "# $(date -u +%Y-%m-%dT%H:%M:%SZ) round $round, $kind, $unit"
        echo "# command: $*"
    } > "$file"
    timeout "$STEP_TIMEOUT" "$@" >> "$file" 2>&1
    rc=$?
    last_s["$kind $unit"]=$((SECONDS - s))
    [ $rc -eq 0 ] || { failed=1; echo "# exit status $rc" >> "$file"; }
    for w in ${unit//,/ }; do
        printf '%-8s r%s %-24s %4ss rc=%s  ' "$kind" "$round" "$w" "$((SECONDS - s))" "$rc"
        row "$kind" "$w" "$file"
    done
}

# row KIND WORKLOAD FILE: the workload's table row of a step's output, or its last line
row() {
    local kind=$1 w=$2 file=$3 prec tokens sched line
    IFS=: read -r prec tokens sched <<< "$w"
    if [ "$kind" = ref ]; then
        line=$(grep -E "^\| $w \|" "$file" | head -1)
    else
        line=$(grep -E "^\| $sched \| $tokens \|" "$file" | head -1)
    fi
    echo "${line:-$(tail -1 "$file")}" | tr -s ' '
}

# field FILE KIND WORKLOAD N: column N (awk -F'|' numbering) of the workload's row; '-' when there is none
field() {
    local v
    v=$(field_raw "$@")
    echo "${v:--}"
}

field_raw() {
    local file=$1 kind=$2 w=$3 n=$4 prec tokens sched
    IFS=: read -r prec tokens sched <<< "$w"
    [ -f "$file" ] || return 0
    if grep -q '^skipped:' "$file"; then
        [ "$n" = 3 ] || [ "$n" = 5 ] && echo skipped
        return 0
    fi
    if [ "$kind" = ref ]; then
        awk -F'|' -v w="$w" -v n="$n" '{k=$2; gsub(/ /,"",k)} k==w {v=$n; gsub(/^ +| +$/,"",v); print v; exit}' "$file"
    else
        awk -F'|' -v s="$sched" -v t="$tokens" -v n="$n" '{a=$2; b=$3; gsub(/[ ,]/,"",a); gsub(/[ ,]/,"",b)}
            a==s && b==t {v=$n; gsub(/^ +| +$/,"",v); print v; exit}' "$file"
    fi
}

summary() {
    echo "| workload | round | reference median s | libarmt median s | reference / libarmt | reference peak GiB | libarmt peak device | reference status | libarmt status |"
    echo "|---|---:|---:|---:|---:|---:|---:|---|---|"
    local r w base rm cm ratio
    for r in $(seq 1 "$ROUNDS"); do
        for w in ${workloads//,/ }; do
            base=${file_of["$r $w"]}
            rm=$(field "$base.ref.txt" ref "$w" 4)
            cm=$(field "$base.clbench.txt" clbench "$w" 7)
            ratio=$(awk -v a="$rm" -v b="$cm" 'BEGIN { if (a+0 > 0 && b+0 > 0) printf "%.2f", a/b; else print "-" }')
            echo "| $w | $r | $rm | $cm | $ratio | $(field "$base.ref.txt" ref "$w" 9) |" \
                 "$(field "$base.clbench.txt" clbench "$w" 17) | $(field "$base.ref.txt" ref "$w" 3) |" \
                 "$(field "$base.clbench.txt" clbench "$w" 5) |"
        done
    done
}

{
    echo "# reference_side_by_side.sh $workloads: rounds $ROUNDS, reps $REPS, warm-up $WARMUP, preset $PRESET," \
         "group ${GROUP:-workload}"
    echo "# $(date -u +%Y-%m-%dT%H:%M:%SZ); tree $(git rev-parse --short HEAD 2>/dev/null || echo '(no git)')" \
         "$(git status --porcelain 2>/dev/null | grep -q . && echo '(with local changes)')"
    command -v nvidia-smi > /dev/null &&
        echo "# $(nvidia-smi --query-gpu=name,driver_version,clocks.max.sm,power.limit --format=csv,noheader | head -1)"
    [ -f .ref/COMMITS.txt ] && grep -E '\.(ref|commit|blob_patched)=' .ref/COMMITS.txt | sed 's/^/# /'
} | tee "$dir/header.txt"

for r in $(seq 1 "$ROUNDS"); do
    for unit in "${units[@]}"; do
        IFS=: read -r prec tokens _ <<< "${unit%%,*}"
        scheds=$(echo "$unit" | tr ',' '\n' | cut -d: -f3 | paste -sd, -)
        base="$dir/r$r-$prec-$tokens-${scheds//,/_}"
        for w in ${unit//,/ }; do file_of["$r $w"]=$base; done
        # shellcheck disable=SC2086  # the *_OPTS and CLBENCH are word lists
        step ref "$r" "$unit" "$base.ref.txt" \
            $PYTHON bench/reference_bench.py --workloads "$unit" --reps "$REPS" --warmup "$WARMUP" $REF_OPTS
        # shellcheck disable=SC2086
        step clbench "$r" "$unit" "$base.clbench.txt" \
            $CLBENCH --preset "$PRESET" --precision "$prec" --tokens "$tokens" --schedule "$scheds" \
            -r "$REPS" -w "$WARMUP" --outputs none --all-rows -q $CLBENCH_OPTS
    done
done

echo
summary | tee "$dir/summary.md"
echo
echo "total $((SECONDS - t0)) s; every step's output in $dir"
exit $failed
