#!/usr/bin/env bash
# session_ab3.sh - the next short device call (under 8 minutes), after 2026-12-07's: is 3xTF32 with each k
# tile's sums added by fp32 adds (-DTW_SPLIT=1, cl/gemm_tf32_wg.cl) as accurate as CLBlast at the model's
# shapes, and how fast (the GEMM sites, then the fp32 1B at 32,768 tokens, diagonal and sequential, on
# tensor cores with and without it); one document's decode (this tree against the baseline: the argmax with
# four loads in flight); profiles for what is left (bf16 131,072 armt + sink + sliding window, issue 19; fp32
# sequential 32,768 on 3xTF32, issue 21).
#   bash bench/session_ab3.sh     (on the GPU machine, from the project root; $OUT gets session_ab3.log)
# Bundles: NEW (default .gpu-dev: this tree, with the test programs) and OLD (default .gpu-new, the
# baseline: trimmed to clbench and armt-run is enough); carry both.
set -u
out=${OUT:-/tmp}
cd "$(dirname "$0")/.." || exit 2
exec > >(tee "$out/session_ab3.log") 2>&1
N=${NEW:-.gpu-dev}/run.sh O=${OLD:-.gpu-new}/run.sh
F="--preset llama-3.2-1b --precision fp32" B="--preset llama-3.2-1b --precision bf16"
t0=$(date +%s)
stamp() { echo "## [$(($(date +%s) - t0)) s] $*"; }
command -v nvidia-smi >/dev/null && nvidia-smi --query-gpu=name,driver_version --format=csv,noheader
for v in "|2x128:3" "-DTW_SPLIT=1|2x128:3" "-DTW_SPLIT=1|2x64:3"; do
    opt=${v%|*} tiles=${v#*|}
    stamp "gemm_fp32_bench, 16 cells, wgmma tiles $tiles, ARMT_CL_BUILD_OPTIONS='$opt' (new)"
    ARMT_CL_BUILD_OPTIONS="$opt" timeout 80 bash $N gemm_fp32_bench --reps 3 --sites wq,wkv,wo,wgu,wd,read \
        --paths clblast,tf32x3 --wg-tiles "$tiles" 2>&1 | grep -E "^\|"
done
for opt in "" "-DTW_SPLIT=1"; do
    stamp "fp32 32768 tf32x3, diagonal + sequential -r 2, ARMT_CL_BUILD_OPTIONS='$opt' (new)"
    ARMT_CL_BUILD_OPTIONS="$opt" timeout 100 bash $N clbench $F --fp32-gemm tf32x3 --tokens 32768 \
        --schedule diagonal,sequential -r 2 -q 2>&1 | grep -E "^\| (diagonal|sequential) " | tr -s ' '
done
stamp "one document's decode after 4096, 127 timed (new, old, new, old)"
for b in $N $O $N $O; do
    printf '%-14s ' "${b%/run.sh}"
    timeout 60 bash $b armt-run $B --random-ids 4096 --max-new 128 2>&1 | grep -E "^decode"
done
stamp "profile: bf16 131072 armt + sink + sliding window, diagonal (new)"
timeout 60 bash $N clbench $B --variant armt --sink --sliding-window --tokens 131072 --schedule diagonal \
    -r 1 --profile 2>&1 | grep -E "^- diagonal"
stamp "profile: fp32 32768 tf32x3 sequential (new)"
timeout 60 bash $N clbench $F --fp32-gemm tf32x3 --tokens 32768 --schedule sequential -r 1 --profile 2>&1 |
    grep -E "^- sequential"
stamp end
