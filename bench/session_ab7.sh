#!/usr/bin/env bash
# session_ab7.sh - 2026-12-07 (third session), device call B: NEW (call A's code with split-k's slices in one
# launch and the lm_head norm fold reverted) against BASE (4221414): the 3xTF32 tests on the GPU; the fp32
# 1B at 32,768 tokens (BASE, NEW rule 0 = default, NEW rule 1), alternating; NEW's fp32 sequential profile;
# one document's decode after 4,096 tokens, alternating; then the authors' code beside NEW, fp32 sequential at
# 32,768 and 131,072 tokens (bench/reference_side_by_side.sh); steps skipped past DEADLINE_S (default 540).
#   BASE=.gpu-base NEW=.gpu-s38b bash bench/session_ab7.sh    (carry both and .ref; $OUT gets the logs)
set -u
out=${OUT:-/tmp}
cd "$(dirname "$0")/.." || exit 2
exec > >(tee "$out/session_ab7.log") 2>&1
O=${BASE:-.gpu-base}/run.sh N=${NEW:-.gpu-s38b}/run.sh
B="--preset llama-3.2-1b --precision bf16" F="--preset llama-3.2-1b --precision fp32"
t0=$(date +%s) deadline=${DEADLINE_S:-540}
stamp() { echo "## [$(($(date +%s) - t0)) s] $*"; }
left() { [ $(($(date +%s) - t0 + $1)) -le "$deadline" ] || { echo "(skipped: $2, deadline)"; return 1; }; }
command -v nvidia-smi >/dev/null && nvidia-smi --query-gpu=name,driver_version --format=csv,noheader
echo "BASE $(cat ${BASE:-.gpu-base}/COMMIT) NEW $(cat ${NEW:-.gpu-s38b}/COMMIT)"
export ARMT_TEST_DATA=$PWD/tests/data
for t in check_tf32; do
    stamp "$t on the GPU (NEW)"
    left 30 "$t" && timeout 120 bash $N $t 2>&1 | grep -E "Checks|:F:|:E:" | head -5
done
stamp "fp32 32768 (3xTF32 GEMMs, the default; x3: --fp32-gemm tf32x3, the attention too), diagonal + sequential -r 2"
for v in "$O|" "$N|" "$N|rule1" "$O|x3" "$N|x3" "$N|x3rule1"; do
    b=${v%|*} f=${v#*|}
    left 30 "fp32 32768" || break
    case $f in *rule1) e="ARMT_SPLITK_RULE=1" ;; *) e="ARMT_NONE=" ;; esac
    case $f in x3*) x="--fp32-gemm tf32x3" ;; *) x="" ;; esac
    printf '%-11s %-20s %s\n' "${b%/run.sh}" "$e" "$x"
    env $e timeout 60 bash $b clbench $F $x --tokens 32768 --schedule diagonal,sequential -r 2 -q 2>&1 |
        grep -E "^\| (diagonal|sequential) " | tr -s ' '
done
stamp "fp32 32768 sequential, profile (NEW)"
left 40 "profile" && timeout 60 bash $N clbench $F --tokens 32768 --schedule sequential -r 1 -q --profile 2>&1 |
    grep -E "device total" | head -2
stamp "one document's decode after 4096, 127 timed: BASE, NEW (three rounds)"
for r in 1 2; do
    for b in "$O" "$N"; do
        left 20 "decode" || break
        timeout 40 bash $b armt-run $B --print-ids --random-ids 4096 --max-new 128 >/tmp/ids.txt 2>/tmp/err.txt
        printf '%-11s ids %s  %s\n' "${b%/run.sh}" "$(md5sum </tmp/ids.txt | cut -c1-8)" \
            "$(grep -E '^decode' /tmp/err.txt)"
    done
done
stamp "the authors' code beside NEW: fp32 sequential 32768 and 131072"
left 200 "reference" && ROUNDS=1 REPS=2 WARMUP=1 GROUP=precision STEP_TIMEOUT=200 \
    DEADLINE_S=$((deadline - $(date +%s) + t0)) CLBENCH="bash $N clbench" \
    bash bench/reference_side_by_side.sh fp32:32768:sequential,fp32:131072:sequential
stamp "fp32 131072 sequential + diagonal -r 1: NEW, BASE"
for b in "$N" "$O"; do
    left 45 "fp32 131072" || break
    echo "${b%/run.sh}"
    timeout 90 bash $b clbench $F --tokens 131072 --schedule sequential,diagonal -r 1 -q 2>&1 |
        grep -E "^\| (diagonal|sequential) " | tr -s ' '
done
stamp end
