#!/usr/bin/env bash
# A/B of two builds of libarmt on one machine start: outputs bit for bit, then times alternating.
#
#   bench/ab_compare.sh OLD_BIN NEW_BIN OUTDIR [TOKENS [PRESET]]
#
# OLD_BIN and NEW_BIN are folders holding armt-run and clbench (each build's programs; set
# LD_LIBRARY_PATH / ARMT_PLATFORM as the machine needs). For fp32 and bf16, the diagonal and the
# sequential schedule, and two outputs (hidden states: every row; the last token's logits: the last
# layer's unread rows skipped), both builds run the same random model (W_mv active) on the same ids and
# save their outputs and the final memory state; every tensor must be bit-identical. Then clbench times
# both schedules, old / new / old / new, per precision. Everything goes to OUTDIR (ab.log: the whole log).
# AB_PART=outputs or AB_PART=times runs one half (two device calls of a few minutes each).
set -u
old=$1 new=$2 out=$3 n=${4:-32768} preset=${5:-llama-3.2-1b}
mkdir -p "$out"
log=$out/ab.log
exec > >(tee -a "$log") 2>&1
echo "# ab_compare: old=$old new=$new tokens=$n preset=$preset  $(date -u +%FT%TZ)"
common=(--preset "$preset" --seed 7 --wmv-std 0.02 --random-ids "$n" -q)
fail=0
part=${AB_PART:-all}

# same tensors, same bytes? (safetensors: 8-byte header length, JSON header, data; stdlib only)
same_tensors() {
    python3 - "$1" "$2" <<'PY'
import json, struct, sys
def load(p):
    b = open(p, "rb").read()
    h = struct.unpack("<Q", b[:8])[0]
    meta = json.loads(b[8:8 + h])
    base = 8 + h
    return {k: b[base + v["data_offsets"][0]: base + v["data_offsets"][1]] for k, v in meta.items()
            if k != "__metadata__"}
a, b = load(sys.argv[1]), load(sys.argv[2])
bad = [k for k in sorted(set(a) | set(b)) if a.get(k) != b.get(k)]
print("  tensors %s: %s" % (",".join(sorted(a)), "bit-identical" if not bad else "DIFFER: " + ",".join(bad)))
sys.exit(1 if bad else 0)
PY
}

echo "## outputs, bit for bit"
[ "$part" = times ] || for p in fp32 bf16; do
    for s in diagonal sequential; do
        for o in hidden last; do
            for v in old new; do
                bin=$old
                [ "$v" = new ] && bin=$new
                "$bin/armt-run" "${common[@]}" --precision "$p" --schedule "$s" --output "$o" \
                    --save-outputs "$out/$v-$p-$s-$o.safetensors" || { echo "  $v $p $s $o: armt-run failed"; fail=1; }
            done
            printf '%s %s %s:' "$p" "$s" "$o"
            same_tensors "$out/old-$p-$s-$o.safetensors" "$out/new-$p-$s-$o.safetensors" || fail=1
            rm -f "$out/old-$p-$s-$o.safetensors" "$out/new-$p-$s-$o.safetensors"
        done
    done
done

echo "## times, alternating (median seconds of 3 calls after 1 warm-up)"
[ "$part" = outputs ] || for p in fp32 bf16; do
    for round in 1 2; do
        for v in old new; do
            bin=$old
            [ "$v" = new ] && bin=$new
            echo "### $p round $round: $v"
            "$bin/clbench" --preset "$preset" --tokens "$n" --schedule diagonal,sequential --precision "$p" \
                --wmv-std 0.02 -r 3 -w 1 -q -o csv | tee "$out/times-$p-$round-$v.csv"
        done
    done
done
echo "# ab_compare done: $([ $fail = 0 ] && echo 'all outputs bit-identical' || echo 'FAILURES above')"
exit $fail
