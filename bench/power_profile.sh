#!/usr/bin/env bash
# power_profile.sh - SM clock and board power of an NVIDIA GPU while clbench runs each schedule on its own.
#
#   bench/power_profile.sh [-i MS] [-s SCHEDULES] [-o RAW.csv] -- CLBENCH [CLBENCH ARGS...]
#
# Runs `CLBENCH ARGS --schedule S` once per schedule S of SCHEDULES (default diagonal,sequential), a few
# seconds apart, while nvidia-smi samples clocks.sm, power.draw, temperature and the power-cap throttle
# flag every MS milliseconds (default 100). Prints clbench's table rows, then per schedule the mean, min
# and max SM clock and power over the samples above IDLE_W watts (default 200: the GPU busy) and how many
# of them had the software power cap active. A schedule that runs at the power cap is slowed by its
# clock, not by its kernels: compare schedules at their clocks (docs/perf/results/*power-cap*).
# Needs nvidia-smi (the NVIDIA driver); the GPU's settings are only read, never changed.
set -euo pipefail

interval=100
schedules=diagonal,sequential
raw=
idle_w=${IDLE_W:-200}

usage() {
    sed -n '2,13p' "$0" | sed 's/^# \{0,1\}//'
}

while [ $# -gt 0 ]; do
    case "$1" in
    -i) interval=$2; shift 2 ;;
    -s) schedules=$2; shift 2 ;;
    -o) raw=$2; shift 2 ;;
    -h | --help) usage; exit 0 ;;
    --) shift; break ;;
    *) echo "power_profile.sh: unknown option '$1' (see --help)" >&2; exit 2 ;;
    esac
done
[ $# -gt 0 ] || { echo "power_profile.sh: no clbench command after '--' (see --help)" >&2; exit 2; }
command -v nvidia-smi >/dev/null || { echo "power_profile.sh: nvidia-smi not found (NVIDIA GPUs only)" >&2; exit 1; }
case "$interval" in '' | *[!0-9]*) echo "power_profile.sh: -i wants milliseconds" >&2; exit 2 ;; esac

tmp=$(mktemp -d)
trap 'kill "$smi" 2>/dev/null || true; rm -rf "$tmp"' EXIT
nvidia-smi --query-gpu=timestamp,clocks.sm,power.draw,temperature.gpu,clocks_throttle_reasons.sw_power_cap \
    --format=csv,noheader,nounits -lms "$interval" >"$tmp/smi.csv" &
smi=$!
now() { date '+%Y/%m/%d %H:%M:%S.%N' | cut -c1-23; }
IFS=, read -ra list <<<"$schedules"
sleep 1
for s in "${list[@]}"; do
    start=$(now)
    "$@" --schedule "$s" | grep -E '^\| [a-z]' || echo "power_profile.sh: clbench printed no row for $s" >&2
    echo "$s,$start,$(now)" >>"$tmp/phases"
    sleep 3
done
kill "$smi" 2>/dev/null || true
wait "$smi" 2>/dev/null || true
[ -z "$raw" ] || cp "$tmp/smi.csv" "$raw"

echo
echo "| schedule | samples | SM clock mean MHz | min | max | power mean W | max W | power cap active |"
echo "|---|---:|---:|---:|---:|---:|---:|---:|"
while IFS=, read -r s a b; do
    # timestamps compare as strings (same fixed-width format)
    awk -F', ' -v a="$a" -v b="$b" -v s="$s" -v idle="$idle_w" '
        $1 >= a && $1 <= b && $3 + 0 > idle {
            n++; c = $2 + 0; p = $3 + 0; sc += c; sp += p
            if (n == 1 || c < cmin) cmin = c; if (c > cmax) cmax = c; if (p > pmax) pmax = p
            if ($5 ~ /^Active/) cap++
        }
        END {
            if (n) printf "| %s | %d | %.0f | %d | %d | %.0f | %.0f | %d |\n", s, n, sc / n, cmin, cmax, sp / n, pmax, cap
            else printf "| %s | 0 | - | - | - | - | - | - |\n", s
        }' "$tmp/smi.csv"
done <"$tmp/phases"
