#!/bin/sh
# tests/test_armt_run.sh - end-to-end checks of the armt-run program (POSIX sh, no Python).
#
#   (a) forward: the ARMT reference checkpoint tests/data/armt_ref/model_saved.safetensors run on the 30 ids of
#       tests/data/armt_ref/expected.safetensors (extracted with tests/st_compare --print) with
#       --output logits --save-outputs; the saved "logits" must match the reference's fp32 "logits" to
#       2e-4 max abs (issue 4), compared by the C helper tests/st_compare; the memory state W_mem/z too, and
#       input_ids (I32) must be the ids exactly. Both ARMT schedules. The file's layout (header bytes,
#       padding, data size) is checked byte for byte.
#   (b) generation: the README quick start, `armt-run --preset tiny --tokenizer tests/data/tokenizer/tokenizer.json
#       --prompt "Hello world" --max-new 16`, exits 0, prints text, reports 16 new tokens and the enlarged
#       vocabulary; with --print-ids it prints exactly 16 ids, the same on a second run (greedy); --stop-id
#       stops after that token; --prompt-ids on the ARMT reference checkpoint gives the tokens of the authors'
#       generate() (tests/data/armt_ref/generate.safetensors, both prompts).
#   (c) --help exits 0 and documents the generation options; an unknown option and a bad combination exit 2
#       with a message on stderr.
#   (d) --devices: forward mode on a layer pipeline of two stages equals one device bit for bit (the ARMT
#       reference checkpoint; both schedules; bf16).
#
# Run by `make check` (automake sets $srcdir; the programs are taken from the build tree, the current
# directory). Exits 77 (skip) when armt-run finds no OpenCL device. Environment overrides: ARMT_RUN,
# ST_COMPARE (the programs), ARMT_TEST_DATA (the fixtures directory).
set -u

if [ -z "${srcdir:-}" ]; then
  srcdir=$(dirname "$0")/..
fi
data=${ARMT_TEST_DATA:-$srcdir/tests/data}
run=${ARMT_RUN:-./src/armt-run}
cmp=${ST_COMPARE:-./tests/st_compare}

for prog in "$run" "$cmp"; do
  if [ ! -x "$prog" ]; then
    echo "test_armt_run: $prog is missing (build it first: make check builds both)" >&2
    exit 99
  fi
done
if [ ! -f "$data/armt_ref/expected.safetensors" ]; then
  echo "test_armt_run: fixtures not found under $data (set srcdir or ARMT_TEST_DATA)" >&2
  exit 99
fi

# ---- skip without a device ----
devices=$("$run" --list-devices 2>&1)
if [ $? -ne 0 ] || ! printf '%s\n' "$devices" | grep -q '^Select with'; then
  printf '%s\n' "$devices"
  echo "test_armt_run: SKIP: no OpenCL device"
  exit 77
fi

tmp=$(mktemp -d "${TMPDIR:-/tmp}/test_armt_run.XXXXXX") || exit 99
trap 'rm -rf "$tmp"' 0
trap 'exit 1' HUP INT TERM

failures=0
pass() { echo "PASS: $1"; }
fail() {
  echo "FAIL: $1"
  failures=$((failures + 1))
}
# show a log file, indented, after a failure
show() {
  sed 's/^/    /' "$1"
}

# ======================================================================================================
# (a) forward against the ARMT reference's fp32 logits
# ======================================================================================================
ref="$data/armt_ref/expected.safetensors"
if "$cmp" --print "$ref" ids > "$tmp/ids.txt" 2> "$tmp/ids.err"; then
  n_ids=$(wc -w < "$tmp/ids.txt" | tr -d ' ')
  if [ "$n_ids" -eq 30 ]; then pass "ids extracted from expected.safetensors (30)"; else fail "ids: $n_ids, not 30"; fi
else
  show "$tmp/ids.err"
  fail "st_compare --print ids"
fi

for schedule in diagonal sequential; do
  out="$tmp/out-$schedule.safetensors"
  if "$run" --model "$data/armt_ref/model_saved.safetensors" --ids "$tmp/ids.txt" --schedule "$schedule" \
       --output logits --save-outputs "$out" > "$tmp/fwd.log" 2>&1; then
    pass "forward ($schedule) with --save-outputs"
    # logits: the issue's acceptance tolerance; W_mem and z: the same bound
    for pair in "logits logits" "memory.W_mem W_mem" "memory.z z"; do
      set -- $pair
      if "$cmp" "$out" "$1" "$ref" "$2" 2e-4 > "$tmp/cmp.log" 2>&1; then
        pass "$schedule: $1 vs reference $2: $(sed 's/.*max abs diff \([^ ]*\).*/max abs diff \1/' "$tmp/cmp.log")"
      else
        show "$tmp/cmp.log"
        fail "$schedule: $1 vs reference $2 (max abs diff > 2e-4)"
      fi
    done
    if "$cmp" "$out" input_ids "$ref" ids 0 > "$tmp/cmp.log" 2>&1; then
      pass "$schedule: input_ids (I32) are the ids"
    else
      show "$tmp/cmp.log"
      fail "$schedule: input_ids differ from the ids"
    fi
  else
    show "$tmp/fwd.log"
    fail "forward ($schedule) with --save-outputs"
  fi
done

# the file's layout byte for byte: the 8-byte little-endian header length, the compact JSON header (metadata
# first, tensors in order) padded with spaces to a multiple of 8, then 30648 data bytes (logits 30x96,
# W_mem 3x48x32, z 3x48 as F32, 30 I32 ids). armt-run's files must not change when its writer does.
out="$tmp/out-diagonal.safetensors"
if [ -f "$out" ]; then
  len=$(od -An -tu1 -N8 "$out" | awk '{ v = 0; for (i = NF; i >= 1; i--) v = v * 256 + $i; print v }')
  hdr=$(dd if="$out" bs=1 skip=8 count="$len" 2> /dev/null)
  version=$(printf '%s' "$hdr" | sed -n 's/.*"libarmt_version":"\([0-9][0-9.]*\)".*/\1/p')
  want='{"__metadata__":{"generator":"armt-run","libarmt_version":"'"$version"'","model":"'"$data"'/armt_ref/model_saved.safetensors","schedule":"diagonal","n_tokens":"30","segment_size":"8","num_mem_tokens":"4","d_key":"48","precision":"fp32"},"logits":{"dtype":"F32","shape":[30,96],"data_offsets":[0,11520]},"memory.W_mem":{"dtype":"F32","shape":[3,48,32],"data_offsets":[11520,29952]},"memory.z":{"dtype":"F32","shape":[3,48],"data_offsets":[29952,30528]},"input_ids":{"dtype":"I32","shape":[30],"data_offsets":[30528,30648]}}'
  while [ $((${#want} % 8)) -ne 0 ]; do want="$want "; done
  size=$(wc -c < "$out" | tr -d ' ')
  # $(...) drops trailing newlines only, and the header has none: compare the padded text and the sizes
  if [ -n "$version" ] && [ "$hdr" = "$want" ] && [ "$len" -eq ${#want} ] && [ "$size" -eq $((8 + len + 30648)) ]; then
    pass "--save-outputs file layout (header bytes, padding, data size)"
  else
    printf '    got  (%s bytes, file %s): %s\n    want (%s bytes): %s\n' "$len" "$size" "$hdr" "${#want}" "$want"
    fail "--save-outputs file layout"
  fi
fi

# the comparer itself must notice a difference (a test that cannot fail proves nothing)
if [ -f "$tmp/out-diagonal.safetensors" ]; then
  "$cmp" "$tmp/out-diagonal.safetensors" logits "$ref" logits64 1e-12 > "$tmp/cmp2.log" 2>&1
  rc2=$?
  "$cmp" "$tmp/out-diagonal.safetensors" logits "$ref" W_mem 1 > "$tmp/cmp3.log" 2>&1
  rc3=$?
  if [ $rc2 -eq 1 ] && [ $rc3 -eq 1 ]; then
    pass "st_compare fails on a tolerance too tight and on a shape mismatch"
  else
    show "$tmp/cmp2.log"
    show "$tmp/cmp3.log"
    fail "st_compare does not report differences (rc $rc2, $rc3)"
  fi
fi

# ======================================================================================================
# (a1) several --ids: one batch (issue 24). Document 0 (the reference's 30 ids) against the reference, the
# others (the first 12 and the first 21 of them) against armt-run on each alone; the tensors named docN.*
# ======================================================================================================
if [ -f "$tmp/ids.txt" ]; then
  tr -s ' \n' '\n\n' < "$tmp/ids.txt" | grep . | head -12 | tr '\n' ' ' > "$tmp/ids12.txt"
  tr -s ' \n' '\n\n' < "$tmp/ids.txt" | grep . | head -21 | tr '\n' ' ' > "$tmp/ids21.txt"
  model="$data/armt_ref/model_saved.safetensors"
  if "$run" --model "$model" --ids "$tmp/ids.txt" --ids "$tmp/ids12.txt" --ids "$tmp/ids21.txt" \
       --save-outputs "$tmp/batch.safetensors" > "$tmp/batch.log" 2>&1 &&
     grep -q '^input:    3 documents, 63 tokens' "$tmp/batch.log"; then
    pass "a batch of 3 --ids files with --save-outputs"
    ok=1
    for pair in "doc0.logits logits" "doc0.W_mem W_mem" "doc0.z z"; do
      set -- $pair
      "$cmp" "$tmp/batch.safetensors" "$1" "$ref" "$2" 2e-4 > "$tmp/cmp.log" 2>&1 || { show "$tmp/cmp.log"; ok=0; }
    done
    for k in 12 21; do
      d=$([ $k = 12 ] && echo doc1 || echo doc2)
      if "$run" --model "$model" --ids "$tmp/ids$k.txt" --save-outputs "$tmp/alone$k.safetensors" > "$tmp/alone.log" 2>&1; then
        for pair in "logits logits" "hidden hidden" "W_mem memory.W_mem" "z memory.z" "input_ids input_ids"; do
          set -- $pair
          "$cmp" "$tmp/batch.safetensors" "$d.$1" "$tmp/alone$k.safetensors" "$2" 1e-6 > "$tmp/cmp.log" 2>&1 || { show "$tmp/cmp.log"; ok=0; }
        done
      else
        show "$tmp/alone.log"
        ok=0
      fi
    done
    if [ $ok = 1 ]; then pass "batch: doc0 = reference, doc1 and doc2 = each alone (logits, hidden, W_mem, z)"; else fail "batch outputs"; fi
  else
    show "$tmp/batch.log"
    fail "a batch of 3 --ids files with --save-outputs"
  fi
  if "$run" --model "$data/armt_ref/model_saved.safetensors" --ids "$tmp/ids.txt" --ids "$tmp/ids12.txt" \
       --save-memory "$tmp/m.bin" > "$tmp/batch2.log" 2>&1; then
    fail "several --ids with --save-memory accepted"
  else
    pass "several --ids with --save-memory refused"
  fi
fi

# ======================================================================================================
# (a2) bf16 weights: within the bf16 tolerance of the reference (2e-2 of its largest logit, 2.09), really
# rounded (not within the fp32 one), and with only the last token's logits (the last layer then skips its
# other rows) the same memory state as with every row's
# ======================================================================================================
b16="$tmp/out-bf16.safetensors"
if "$run" --model "$data/armt_ref/model_saved.safetensors" --ids "$tmp/ids.txt" --precision bf16 \
     --output logits --save-outputs "$b16" > "$tmp/b16.log" 2>&1 && grep -q 'memory tokens; bf16' "$tmp/b16.log"; then
  if "$cmp" "$b16" logits "$ref" logits 0.042 > "$tmp/cmp.log" 2>&1; then
    pass "bf16: logits vs reference: $(sed 's/.*max abs diff \([^ ]*\).*/max abs diff \1/' "$tmp/cmp.log")"
  else
    show "$tmp/cmp.log"
    fail "bf16: logits vs reference (max abs diff > 0.042)"
  fi
  if "$cmp" "$b16" logits "$ref" logits 2e-4 > "$tmp/cmp.log" 2>&1; then
    show "$tmp/cmp.log"
    fail "bf16: logits within the fp32 tolerance: --precision bf16 not applied?"
  else
    pass "bf16: logits differ from fp32 by more than 2e-4 (bf16 rounding)"
  fi
  b16l="$tmp/out-bf16-last.safetensors"
  if "$run" --model "$data/armt_ref/model_saved.safetensors" --ids "$tmp/ids.txt" --precision bf16 \
       --output last --save-outputs "$b16l" > "$tmp/b16l.log" 2>&1 &&
     "$cmp" "$b16l" memory.W_mem "$b16" memory.W_mem 0 > "$tmp/cmp.log" 2>&1 &&
     "$cmp" "$b16l" memory.z "$b16" memory.z 0 >> "$tmp/cmp.log" 2>&1; then
    pass "bf16: memory state with --output last equals the one with --output logits"
  else
    show "$tmp/b16l.log"
    show "$tmp/cmp.log"
    fail "bf16: memory state with --output last differs"
  fi
else
  show "$tmp/b16.log"
  fail "forward with --precision bf16"
fi

# ======================================================================================================
# (b) generation: the quick start example
# ======================================================================================================
tok="$data/tokenizer/tokenizer.json"
if "$run" --preset tiny --tokenizer "$tok" --prompt "Hello world" --max-new 16 > "$tmp/gen.out" 2> "$tmp/gen.err"
then
  pass "generation quick start exits 0"
  if grep -q '^generated: 16 tokens' "$tmp/gen.err"; then pass "16 new tokens reported"; else
    show "$tmp/gen.err"; fail "no 'generated: 16 tokens' on stderr"; fi
  if grep -q 'vocab_size is set to 2004' "$tmp/gen.err"; then pass "preset vocabulary enlarged to the tokenizer's"
  else show "$tmp/gen.err"; fail "no note about the enlarged vocabulary"; fi
  if grep -q '^prefill: .*tokens/s' "$tmp/gen.err" && grep -q '^decode: .*tokens/s' "$tmp/gen.err"; then
    pass "prefill and decode timing on stderr"
  else show "$tmp/gen.err"; fail "timing lines missing"; fi
  if [ -s "$tmp/gen.out" ] && [ "$(wc -l < "$tmp/gen.out" | tr -d ' ')" -ge 1 ]; then pass "text on stdout"; else
    fail "no text on stdout"; fi
else
  show "$tmp/gen.err"
  fail "generation quick start"
fi

ids_count() {
  # prints the number of words if every word is a non-negative integer, else "bad"
  tr -s ' \n' '\n\n' < "$1" | grep -v '^$' > "$1.words"
  if grep -qv '^[0-9][0-9]*$' "$1.words"; then echo bad; else wc -l < "$1.words" | tr -d ' '; fi
}
for i in 1 2; do
  if "$run" --preset tiny --tokenizer "$tok" --prompt "Hello world" --max-new 16 --print-ids -q \
       > "$tmp/ids$i.out" 2> "$tmp/ids$i.err"; then
    c=$(ids_count "$tmp/ids$i.out")
    if [ "$c" = 16 ]; then pass "--print-ids run $i: 16 ids"; else show "$tmp/ids$i.out"; fail "--print-ids run $i: $c ids"; fi
  else
    show "$tmp/ids$i.err"
    fail "--print-ids run $i"
  fi
done
if cmp -s "$tmp/ids1.out" "$tmp/ids2.out"; then pass "greedy generation is deterministic"; else
  fail "two greedy runs differ"; fi

first=$(tr -s ' ' '\n' < "$tmp/ids1.out" | head -n 1)
if [ -n "$first" ] && "$run" --preset tiny --tokenizer "$tok" --prompt "Hello world" --max-new 16 --print-ids \
     --stop-id "$first" > "$tmp/stop.out" 2> "$tmp/stop.err"; then
  c=$(ids_count "$tmp/stop.out")
  if [ "$c" = 1 ] && grep -q "^generated: 1 token (stop token $first)" "$tmp/stop.err"; then
    pass "--stop-id $first stops after one token"
  else
    show "$tmp/stop.out"; show "$tmp/stop.err"; fail "--stop-id: $c tokens"
  fi
else
  show "$tmp/stop.err"
  fail "--stop-id run"
fi

# the reference's own generate() (tests/data/armt_ref/generate.safetensors): prompt a has 2 earlier segments
# and a partial tail, prompt b a full last segment as the tail; greedy tokens must be the reference's
gen="$data/armt_ref/generate.safetensors"
for x in a b; do
  if "$cmp" --print "$gen" "prompt_$x" > "$tmp/prompt_$x.txt" && "$cmp" --print "$gen" "tokens_$x" > "$tmp/want_$x.txt" &&
     "$run" --model "$data/armt_ref/model_saved.safetensors" --prompt-ids "$tmp/prompt_$x.txt" --max-new 6 -q \
       > "$tmp/got_$x.txt" 2> "$tmp/got_$x.err"; then
    want=$(tr -s ' \n' '  ' < "$tmp/want_$x.txt" | sed 's/ *$//')
    got=$(tr -s ' \n' '  ' < "$tmp/got_$x.txt" | sed 's/ *$//')
    if [ "$want" = "$got" ]; then pass "reference generate(), prompt $x: $got"; else
      fail "reference generate(), prompt $x: got '$got', want '$want'"; fi
  else
    show "$tmp/got_$x.err"
    fail "generation from prompt_$x"
  fi
done

# both prompts (and prompt a again, with --max-new 6 as well) as one batch (armt_generate_batch): each
# document's line must be the reference's tokens
if [ -s "$tmp/want_a.txt" ] && [ -s "$tmp/want_b.txt" ] &&
   "$run" --model "$data/armt_ref/model_saved.safetensors" --prompt-ids "$tmp/prompt_a.txt" \
     --prompt-ids "$tmp/prompt_b.txt" --prompt-ids "$tmp/prompt_a.txt" --max-new 6 -q \
     > "$tmp/gen_batch.txt" 2> "$tmp/gen_batch.err"; then
  ok=1
  for k in 0 1 2; do
    x=a; [ $k = 1 ] && x=b
    want=$(tr -s ' \n' '  ' < "$tmp/want_$x.txt" | sed 's/ *$//')
    got=$(sed -n "s/^$k: //p" "$tmp/gen_batch.txt")
    [ "$want" = "$got" ] || { echo "document $k: got '$got', want '$want'"; ok=0; }
  done
  if [ $ok = 1 ]; then pass "batch generation (3 --prompt-ids): each document = the reference's generate()"; else
    show "$tmp/gen_batch.txt"; fail "batch generation tokens"; fi
else
  show "$tmp/gen_batch.err"
  fail "batch generation run"
fi

# ======================================================================================================
# (c) help and usage errors
# ======================================================================================================
if "$run" --help > "$tmp/help.out" 2>&1; then
  missing=""
  for opt in --prompt --prompt-ids --ids --tokenizer --generate --max-new --temperature --top-k --top-p \
             --sample-seed --stop-id --stop --bos --no-bos --save-outputs --model --preset --precision Examples; do
    grep -q -e "$opt" "$tmp/help.out" || missing="$missing $opt"
  done
  if [ -z "$missing" ]; then pass "--help exits 0 and documents the options"; else
    fail "--help does not mention:$missing"; fi
else
  fail "--help exit status is not 0"
fi

# usage_error WHAT PATTERN ARGS...: armt-run ARGS must exit 2 with PATTERN in its message
usage_error() {
  what=$1
  pattern=$2
  shift 2
  "$run" "$@" > "$tmp/bad.out" 2> "$tmp/bad.err"
  rc=$?
  if [ $rc -eq 2 ] && grep -q -e "$pattern" "$tmp/bad.err"; then
    pass "$what exits 2 with a message"
  else
    show "$tmp/bad.err"
    fail "$what: exit $rc"
  fi
}
usage_error "an unknown option" "unknown option '--no-such-option'" --no-such-option
usage_error "--prompt without --tokenizer" "--tokenizer" --preset tiny --prompt "Hello" --max-new 4
usage_error "--precision bf17" "--precision" --preset tiny --precision bf17 --random-ids 3
usage_error "--profile with a batch's forward" "records no profile" --preset tiny --ids "$tmp/ids.txt" \
  --ids "$tmp/ids.txt" --profile

# a batch's decode profiled: every kernel's time per round, the GEMM sites (the lm_head among them)
if "$run" --preset tiny --precision bf16 --prompt-ids "$tmp/prompt_a.txt" --prompt-ids "$tmp/prompt_b.txt" \
     --max-new 4 --profile > "$tmp/bprof.out" 2> "$tmp/bprof.err" \
   && grep -q "^profile:  batch decode: device time per kernel, .* (ms/round: per round)" "$tmp/bprof.err" \
   && grep -q "^  armt_rows_attention_decode .* ms/round" "$tmp/bprof.err" \
   && grep -q "^  lm_head .* ms/round" "$tmp/bprof.err"; then
  pass "--profile with several --prompt-ids: the batch decode's profile per round"
else
  show "$tmp/bprof.err"
  fail "batch decode profile"
fi

# ---- (d) --devices: the layer pipeline in one process (two PoCL devices, or one listed twice) gives the
# single device's logits and memory state exactly, on the ARMT reference checkpoint (a checkpoint's stages
# read their layers' tensors), both schedules and bf16 ----
pdev=$(POCL_DEVICES="${POCL_DEVICES:-pthread pthread}" "$run" --list-devices 2>/dev/null | grep -c '^ *0 *1 ')
[ "$pdev" -ge 1 ] && pdevices=0,1 || pdevices=0,0
for args in "--schedule diagonal" "--schedule sequential" "--schedule diagonal --precision bf16"; do
  # shellcheck disable=SC2086
  if POCL_DEVICES="${POCL_DEVICES:-pthread pthread}" "$run" --model "$data/armt_ref/model_saved.safetensors" \
        --ids "$tmp/ids.txt" --output logits $args --save-outputs "$tmp/one.safetensors" > "$tmp/one.out" 2>&1 \
     && POCL_DEVICES="${POCL_DEVICES:-pthread pthread}" "$run" --model "$data/armt_ref/model_saved.safetensors" \
        --ids "$tmp/ids.txt" --output logits $args --devices $pdevices \
        --save-outputs "$tmp/pipe.safetensors" > "$tmp/pipe.out" 2>&1 \
     && "$cmp" "$tmp/one.safetensors" logits "$tmp/pipe.safetensors" logits 0 > /dev/null \
     && "$cmp" "$tmp/one.safetensors" memory.W_mem "$tmp/pipe.safetensors" memory.W_mem 0 > /dev/null \
     && "$cmp" "$tmp/one.safetensors" memory.z "$tmp/pipe.safetensors" memory.z 0 > /dev/null \
     && grep -q "^pipeline: 2 stages" "$tmp/pipe.out"; then
    pass "--devices $pdevices ($args): logits and memory state equal one device's bit for bit"
  else
    show "$tmp/pipe.out"
    fail "--devices $pdevices ($args)"
  fi
done

if [ $failures -ne 0 ]; then
  echo "test_armt_run: $failures check(s) failed"
  exit 1
fi
echo "test_armt_run: all checks passed"
exit 0
