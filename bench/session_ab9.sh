#!/usr/bin/env bash
# session_ab9.sh - 2026-12-08, device call A: the 3xTF32 attention with its products split like the GEMM's
# (AM_SPLIT, cl/attention_mma.cl) in NEW against BASE (f88bcc3, the kernel before): its error at long context
# against fp64 beside the fp32 kernel's (bench/attention_fp32_bench: 1,152, 8,192 and 32,768 keys), which
# decides whether AUTO takes it for fp32 models; check_attention on the real tensor cores; the fp32 1B at
# 32,768 tokens (default, --fp32-gemm tf32x3, the one-launch split-k one-wave rule), alternating; the
# authors' fp32 sequential beside NEW at 32,768 tokens; one document's decode after 4,096 tokens (BASE, NEW,
# NEW with the decode attention's values staged, ATTN_DSTAGE_V=1, and more loads in flight, ATTN_DSTAGE_U,
# ATTN_DCOMB_U); fp32 131,072 tokens. Steps skipped past DEADLINE_S (default 560).
#   BASE=.gpu-s39base NEW=.gpu-s39c bash bench/session_ab9.sh    (carry both and .ref; $OUT gets the logs)
set -u
out=${OUT:-/tmp}
cd "$(dirname "$0")/.." || exit 2
exec > >(tee "$out/session_ab9.log") 2>&1
O=${BASE:-.gpu-s39base}/run.sh N=${NEW:-.gpu-s39c}/run.sh
B="--preset llama-3.2-1b --precision bf16" F="--preset llama-3.2-1b --precision fp32"
t0=$(date +%s) deadline=${DEADLINE_S:-560}
stamp() { echo "## [$(($(date +%s) - t0)) s] $*"; }
left() { [ $(($(date +%s) - t0 + $1)) -le "$deadline" ] || { echo "(skipped: $2, deadline)"; return 1; }; }
command -v nvidia-smi >/dev/null && nvidia-smi --query-gpu=name,driver_version --format=csv,noheader
echo "BASE $(cat ${BASE:-.gpu-s39base}/COMMIT) NEW $(cat ${NEW:-.gpu-s39c}/COMMIT)"
export ARMT_TEST_DATA=$PWD/tests/data
stamp "the fp32 models' attention against fp64 (NEW: fp32 kernel, 3xTF32 split, acc = unsplit, 1xTF32)"
left 150 "attention_fp32_bench" &&
    timeout 200 bash $N attention_fp32_bench --tokens 1152,8192,32768 --q-scale 1,4 --reps 3 2>&1 | tail -30
stamp "what AUTO's gate decides when the fp32 model loads (NEW; -vv: the check's rms errors against fp64)"
left 40 "gate" && timeout 60 bash $N clbench $F --tokens 2048 --schedule sequential -r 1 -vv 2>&1 |
    grep -E "fp32 attention" | head -5
stamp "check_attention on the GPU (NEW)"
left 60 "check_attention" && timeout 90 bash $N check_attention 2>&1 | grep -E "Checks|:F:|:E:|3xTF32" | head -20
stamp "check_tf32 on the GPU (NEW: the gate keeps the split build, refuses the unsplit one)"
left 60 "check_tf32" && timeout 120 bash $N check_tf32 2>&1 | grep -E "Checks|:F:|:E:" | head -8
stamp "fp32 32768 diagonal + sequential -r 2 (default = exact attention; x3 = --fp32-gemm tf32x3, 3xTF32 attention)"
for v in "$O|" "$N|" "$O|x3" "$N|x3" "$N|x3rule2"; do
    b=${v%|*} f=${v#*|}
    left 30 "fp32 32768" || break
    case $f in *rule1) e="ARMT_SPLITK_RULE=1" ;; *rule2) e="ARMT_SPLITK_RULE=2" ;; *) e="ARMT_NONE=" ;; esac
    case $f in x3*) x="--fp32-gemm tf32x3" ;; *) x="" ;; esac
    printf '%-14s %-20s %s\n' "${b%/run.sh}" "$e" "$x"
    env $e timeout 60 bash $b clbench $F $x --tokens 32768 --schedule diagonal,sequential -r 2 -q 2>&1 |
        grep -E "^\| (diagonal|sequential) " | tr -s ' '
done
stamp "the authors' code beside NEW (tf32x3): fp32 sequential 32768"
left 150 "reference 32768" && ROUNDS=1 REPS=2 WARMUP=1 GROUP=precision STEP_TIMEOUT=150 \
    DEADLINE_S=$((deadline - $(date +%s) + t0)) CLBENCH="bash $N clbench --fp32-gemm tf32x3" \
    bash bench/reference_side_by_side.sh fp32:32768:sequential
stamp "one document's decode after 4096, 127 timed: BASE, NEW, NEW with decode-attention build options (two rounds)"
for r in 1 2; do
    for v in "$O|" "$N|" "$N|-DATTN_DSTAGE_V=1" "$N|-DATTN_DSTAGE_V=1 -DATTN_DSTAGE_U=16 -DATTN_DCOMB_U=32"; do
        b=${v%|*} f=${v#*|}
        left 20 "decode" || break
        ARMT_CL_BUILD_OPTIONS="$f" timeout 40 bash $b armt-run $B --print-ids --random-ids 4096 --max-new 128 \
            >/tmp/ids.txt 2>/tmp/err.txt
        printf '%-14s %-52s ids %s  %s\n' "${b%/run.sh}" "$f" "$(md5sum </tmp/ids.txt | cut -c1-8)" \
            "$(grep -E '^decode' /tmp/err.txt)"
    done
done
stamp "fp32 131072 sequential + diagonal -r 1, tf32x3: NEW, BASE"
for b in "$N" "$O"; do
    left 45 "fp32 131072" || break
    echo "${b%/run.sh}"
    timeout 90 bash $b clbench $F --fp32-gemm tf32x3 --tokens 131072 --schedule sequential,diagonal -r 1 -q 2>&1 |
        grep -E "^\| (diagonal|sequential) " | tr -s ' '
done
stamp end
