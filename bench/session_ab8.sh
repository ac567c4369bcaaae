#!/usr/bin/env bash
# session_ab8.sh - 2026-12-07 (third session), device call C, short (the session's device time was nearly
# spent): NEW = .gpu-s38b (4fe9d33: split-k's slices of one entry in one launch; in that build
# $ARMT_SPLITK_RULE unset is the estimated-time rule and 1 the one-wave rule) against BASE (4221414): the fp32
# 1B at 32,768 tokens with the 3xTF32 attention (--fp32-gemm tf32x3), diagonal + sequential, BASE / NEW time
# rule / NEW one-wave rule / NEW split-k off; one document's decode after 4,096 tokens, BASE and NEW
# alternating. Steps skipped past DEADLINE_S (default 200).
#   BASE=.gpu-base NEW=.gpu-s38b bash bench/session_ab8.sh    ($OUT gets session_ab8.log)
set -u
out=${OUT:-/tmp}
cd "$(dirname "$0")/.." || exit 2
exec > >(tee "$out/session_ab8.log") 2>&1
O=${BASE:-.gpu-base}/run.sh N=${NEW:-.gpu-s38b}/run.sh
B="--preset llama-3.2-1b --precision bf16" F="--preset llama-3.2-1b --precision fp32 --fp32-gemm tf32x3"
t0=$(date +%s) deadline=${DEADLINE_S:-200}
stamp() { echo "## [$(($(date +%s) - t0)) s] $*"; }
left() { [ $(($(date +%s) - t0 + $1)) -le "$deadline" ] || { echo "(skipped: $2, deadline)"; return 1; }; }
command -v nvidia-smi >/dev/null && nvidia-smi --query-gpu=name,driver_version --format=csv,noheader
echo "BASE $(cat ${BASE:-.gpu-base}/COMMIT) NEW $(cat ${NEW:-.gpu-s38b}/COMMIT)"
stamp "fp32 32768, --fp32-gemm tf32x3, diagonal + sequential -r 1"
for v in "$O|" "$N|" "$N|1" "$N|off"; do
    b=${v%|*} f=${v#*|}
    left 25 "fp32 32768" || break
    case $f in 1) e="ARMT_SPLITK_RULE=1" ;; off) e="ARMT_SPLITK=1" ;; *) e="ARMT_NONE=" ;; esac
    printf '%-11s %-20s\n' "${b%/run.sh}" "$e"
    env $e timeout 50 bash $b clbench $F --tokens 32768 --schedule diagonal,sequential -r 1 -q 2>&1 |
        grep -E "^\| (diagonal|sequential) " | tr -s ' '
done
stamp "one document's decode after 4096, 127 timed: BASE, NEW (two rounds)"
for r in 1 2; do
    for b in "$O" "$N"; do
        left 20 "decode" || break
        timeout 40 bash $b armt-run $B --print-ids --random-ids 4096 --max-new 128 >/tmp/ids.txt 2>/tmp/err.txt
        printf '%-11s ids %s  %s\n' "${b%/run.sh}" "$(md5sum </tmp/ids.txt | cut -c1-8)" \
            "$(grep -E '^decode' /tmp/err.txt)"
    done
done
stamp end
