#!/usr/bin/env bash
# bench/clblast_tune.sh OUTDIR [PLATFORM] [DEVICE] - runs CLBlast's own tuners (Debian package clblast-utils) for
# the single-precision kernels libarmt's fp32 GEMMs use (XgemmDirect for small products, Xgemm for large ones),
# leaving their JSON files in OUTDIR; ARMT_CLBLAST_TUNING=OUTDIR then applies them (lib/device/clblast.c), and
# lib/device/clblast_tuning.c keeps the ones measured on our GPUs.
#
#   CLBLAST_TUNERS     directory of the clblast_tuner_* programs (default /usr/bin)
#   TUNE_FRACTION      explore 1/N of each tuner's configurations (default 16; CLBlast's -fraction)
#   TUNE_SECONDS       time limit per tuner (default 240); a tuner writes one JSON file per search it finishes
#   TUNE_SIZE          m = n = k of the tuning product (default 2048: the 1B model's hidden size)
set -u
out=${1:?usage: bench/clblast_tune.sh OUTDIR [PLATFORM] [DEVICE]}
plat=${2:-0}
dev=${3:-0}
tuners=${CLBLAST_TUNERS:-/usr/bin}
frac=${TUNE_FRACTION:-16}
secs=${TUNE_SECONDS:-240}
size=${TUNE_SIZE:-2048}
mkdir -p "$out"
cd "$out" || exit 1
for t in xgemm_direct xgemm; do
  start=$(date +%s)
  timeout "$secs" "$tuners/clblast_tuner_$t" -platform "$plat" -device "$dev" -precision 32 -m "$size" -n "$size" \
    -k "$size" -fraction "$frac" > "tuner_$t.log" 2>&1
  rc=$?
  echo "clblast_tuner_$t: exit $rc after $(( $(date +%s) - start )) s (124: stopped at the time limit)"
  grep -E "^\* (Found|Got|Best parameters|Writing)" "tuner_$t.log" | sed 's/\x1b\[[0-9;]*m//g'
done
ls -l ./*.json 2>/dev/null || echo "no JSON written"
