#!/usr/bin/env bash
# session_ab6.sh - 2026-12-07 (third session), device call A: NEW (this session: the read's DPFP in the W_mq
# GEMV's tail, the argmax by many work-groups, the final norm in lm_head's GEMV, 3xTF32 split-k by shape)
# against BASE (4221414, the session's start): the changed kernels' tests on the GPU; one document's decode
# after 4,096 tokens, alternating; both after a 131,072-token prompt; the fp32 1B at 32,768 tokens by split-k
# rule (BASE, NEW rule 0 = default, NEW rule 1, NEW without split-k); the fp32 sequential profile per GEMM
# site; the fp32 1B at 131,072 tokens, BASE and NEW; 64 documents' decode. Steps are skipped past DEADLINE_S
# (default 540) seconds.
#   BASE=.gpu-base NEW=.gpu-s38 bash bench/session_ab6.sh    ($OUT gets session_ab6.log)
set -u
out=${OUT:-/tmp}
cd "$(dirname "$0")/.." || exit 2
exec > >(tee "$out/session_ab6.log") 2>&1
O=${BASE:-.gpu-base}/run.sh N=${NEW:-.gpu-s38}/run.sh
B="--preset llama-3.2-1b --precision bf16" F="--preset llama-3.2-1b --precision fp32"
t0=$(date +%s) deadline=${DEADLINE_S:-540}
stamp() { echo "## [$(($(date +%s) - t0)) s] $*"; }
left() { [ $(($(date +%s) - t0 + $1)) -le "$deadline" ] || { echo "(skipped: $2, deadline)"; return 1; }; }
command -v nvidia-smi >/dev/null && nvidia-smi --query-gpu=name,driver_version --format=csv,noheader
echo "BASE $(cat ${BASE:-.gpu-base}/COMMIT) NEW $(cat ${NEW:-.gpu-s38}/COMMIT)"
export ARMT_TEST_DATA=$PWD/tests/data
for t in check_gemv check_generate check_gemm_plan check_tf32; do
    stamp "$t on the GPU (NEW)"
    left 30 "$t" && timeout 120 bash $N $t 2>&1 | grep -E "Checks|:F:|:E:" | head -5
done
stamp "one document's decode after 4096, 127 timed: BASE, NEW (three rounds)"
for r in 1 2 3; do
    for b in "$O" "$N"; do
        left 20 "decode" || break
        timeout 40 bash $b armt-run $B --print-ids --random-ids 4096 --max-new 128 >/tmp/ids.txt 2>/tmp/err.txt
        printf '%-10s ids %s  %s\n' "${b%/run.sh}" "$(md5sum </tmp/ids.txt | cut -c1-8)" \
            "$(grep -E '^decode' /tmp/err.txt)"
    done
done
stamp "decode profile after 4096 (NEW)"
left 30 "decode profile" && timeout 40 bash $N armt-run $B --random-ids 4096 --max-new 64 --profile 2>&1 |
    grep -E "^profile|^  [a-z]" | head -30
stamp "after a 131072-token prompt: NEW, BASE"
for b in "$N" "$O"; do
    left 30 "131072 decode" && timeout 60 bash $b armt-run $B --random-ids 131072 --max-new 128 2>&1 |
        grep -E "^(decode|prefill)" | sed "s|^|${b%/run.sh} |"
done
stamp "fp32 32768 (3xTF32, the default), diagonal + sequential -r 2: BASE, NEW, NEW rule 1, NEW split-k off"
for v in "$O|" "$N|" "$N|rule1" "$N|off" "$O|" "$N|"; do
    b=${v%|*} f=${v#*|}
    left 30 "fp32 32768" || break
    case $f in rule1) e="ARMT_SPLITK_RULE=1" ;; off) e="ARMT_SPLITK=1" ;; *) e="ARMT_NONE=" ;; esac
    printf '%-10s %-20s\n' "${b%/run.sh}" "$e"
    env $e timeout 60 bash $b clbench $F --tokens 32768 --schedule diagonal,sequential -r 2 -q 2>&1 |
        grep -E "^\| (diagonal|sequential) " | tr -s ' '
done
stamp "fp32 32768 sequential, profile (NEW)"
left 40 "profile" && timeout 60 bash $N clbench $F --tokens 32768 --schedule sequential -r 1 -q --profile 2>&1 |
    grep -E "GEMMs by weight|device total" | head -4
stamp "fp32 131072, diagonal + sequential -r 1: NEW, BASE"
for b in "$N" "$O"; do
    left 60 "fp32 131072" || break
    echo "${b%/run.sh}"
    timeout 90 bash $b clbench $F --tokens 131072 --schedule diagonal,sequential -r 1 -q 2>&1 |
        grep -E "^\| (diagonal|sequential) " | tr -s ' '
done
stamp "64 documents x 4096, 32 new each: NEW, BASE"
for b in "$N" "$O"; do
    left 30 "batch" || break
    printf '%-10s ' "${b%/run.sh}"
    timeout 40 bash $b clbench $B --tokens 4096 --batch 64 --decode 32 -r 1 -q 2>&1 | tail -1
done
stamp end
