#!/usr/bin/env bash
# session_ab5.sh - 2026-12-07 (second session), the session's last device call (calls C and D in one): NEW2
# (.gpu-ab5 = 1bea4f1: the decode combine in the attention's launch, greedy decode pipelined with queued id
# uploads, 3xTF32 with split sums in both kernels by default) against NEW (.gpu-ab3 = 4b8173d): tests on the
# GPU; 3xTF32's error and speed per GEMM site (both kernels) next to CLBlast; the fp32 1B at 32,768 tokens
# on 3xTF32; the 64-document decode rounds by $ARMT_SPLITK (1 = off, the default; auto); one document's
# decode: NEW, NEW2, NEW2 with ARMT_DECODE_FUSE=0 (pipelined only), alternating; NEW2 after a 131,072-token
# prompt; steps skipped past DEADLINE_S (default 240) seconds (the session's device time was nearly spent).
#   NEW=.gpu-ab3 NEW2=.gpu-ab5 bash bench/session_ab5.sh    ($OUT gets session_ab5.log)
set -u
out=${OUT:-/tmp}
cd "$(dirname "$0")/.." || exit 2
exec > >(tee "$out/session_ab5.log") 2>&1
N=${NEW:-.gpu-ab3}/run.sh N2=${NEW2:-.gpu-ab5}/run.sh
B="--preset llama-3.2-1b --precision bf16" F="--preset llama-3.2-1b --precision fp32"
t0=$(date +%s) deadline=${DEADLINE_S:-240}
stamp() { echo "## [$(($(date +%s) - t0)) s] $*"; }
left() { [ $(($(date +%s) - t0 + $1)) -le "$deadline" ] || { echo "(skipped: $2, deadline)"; return 1; }; }
command -v nvidia-smi >/dev/null && nvidia-smi --query-gpu=name,driver_version --format=csv,noheader
cat ${NEW2:-.gpu-ab5}/COMMIT ${NEW:-.gpu-ab3}/COMMIT
stamp "check_attention on the GPU (NEW2: the fused combine's bits against two launches)"
export ARMT_TEST_DATA=$PWD/tests/data
timeout 60 bash $N2 check_attention 2>&1 | grep -E "Checks|:F:|:E:" | head -5
stamp "one document's decode after 4096, 127 timed: NEW, NEW2, NEW2 with ARMT_DECODE_FUSE=0 (two rounds)"
for r in 1 2; do
    for v in "$N|" "$N2|" "$N2|0"; do
        b=${v%|*} f=${v#*|}
        ARMT_DECODE_FUSE=$f timeout 40 bash $b armt-run $B --print-ids --random-ids 4096 --max-new 128 >/tmp/ids.txt 2>/tmp/err.txt
        printf '%-10s fuse=%-3s ids %s  %s\n' "${b%/run.sh}" "${f:-def}" "$(md5sum </tmp/ids.txt | cut -c1-8)" \
            "$(grep -E '^decode' /tmp/err.txt)"
    done
done
stamp "64 documents x 4096, 32 new each, by ARMT_SPLITK (NEW2)"
for sk in 1 auto 1 auto; do
    left 15 "batch" || break
    printf 'ARMT_SPLITK=%-5s ' "$sk"
    ARMT_SPLITK=$sk timeout 40 bash $N2 clbench $B --tokens 4096 --batch 64 --decode 32 -r 1 -q 2>&1 | tail -1
done
stamp "gemm_fp32_bench, 16 cells (NEW2: split sums by default in both 3xTF32 kernels)"
left 30 "gemm_fp32_bench" && timeout 60 bash $N2 gemm_fp32_bench --reps 1 --sites wq,wkv,wo,wgu,wd,read --paths clblast,tf32x3,mma 2>&1 | grep -E "^\|"
stamp "NEW2 after a 131072-token prompt: armt-run"
left 25 "131072 decode" && timeout 60 bash $N2 armt-run $B --random-ids 131072 --max-new 128 2>&1 | grep -E "^(decode|prefill)"
stamp "fp32 32768 tf32x3, diagonal + sequential -r 1 (NEW2)"
left 15 "fp32 32768" && timeout 60 bash $N2 clbench $F --fp32-gemm tf32x3 --tokens 32768 --schedule diagonal,sequential -r 1 -q 2>&1 |
    grep -E "^\| (diagonal|sequential) " | tr -s ' '
stamp "check_generate on the GPU (NEW2)"
left 20 "check_generate" && timeout 60 bash $N2 check_generate 2>&1 | grep -E "Checks|:F:|:E:" | head -5
stamp end
