#!/usr/bin/env python3
"""bf16_ensemble.py - our bf16 path against the 2024 reference's own bf16 run over many random fixtures (issue 19;
docs/VARIANTS.md, "bf16 accuracy").

One fixture says little where the memory recurrence amplifies rounding: which of two bf16 runs lands nearer the
fp32 result is then partly chance. This makes N fixtures of the 2024 reference (tools/make_bf16_fixtures.py's
paper construction with the given width, depth, W_mv scale and seeds: fp32, fp64, bf16 and the exact evaluation
of the bf16 weights, ref_w16), runs tests/check_bf16_accuracy on them (ARMT_BF16_FIXTURES) and counts, per
quantity and path:

  ours<=ref    our bf16 error (from fp32) no larger than the reference's bf16 error
  w16<=ref     the exact evaluation of the bf16 weights no farther from fp32 than the reference's bf16 run
  ours<=max    the test's criterion (1): ours no larger than the larger of the two
  noise        the test's criterion (2): ours no farther from the w16 result than the reference's bf16 run
  and the geometric means of ours / ref and of (ours - w16) / (ref - w16).

Run from the repository root after `make tests/check_bf16_accuracy` ($G/language_modeling.py as for
tools/make_fixtures.py):

    python3 tools/bf16_ensemble.py --ref2024 "$G/language_modeling.py" --hidden 64 --wmv-std 0.05 --seeds 11-22
    python3 tools/bf16_ensemble.py --ref2024 "$G/language_modeling.py" --hidden 32 --wmv-std 0.1 --seeds 31-42

Each fixture: 6 layers (--layers), 7 segments (--segments: segments-1 full ones of 8 tokens and one of 5), d_mem
8, 4 memory tokens. Requirements as tools/make_bf16_fixtures.py.
"""

import argparse
import math
import os
import re
import subprocess
import sys
import tempfile

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import make_bf16_fixtures as mb  # noqa: E402
import make_fixtures as mf  # noqa: E402

QTY = ("logits", "W_mem", "z")
NUM = r"([0-9.e+-]+|nan|inf)"
CELL = re.compile(rf"\s*{NUM} / {NUM} / {NUM} \({NUM} / {NUM}\)")


def seeds_of(spec):
    out = []
    for part in spec.split(","):
        a, _, b = part.partition("-")
        out += list(range(int(a), int(b or a) + 1))
    return out


def make(ref, out, seeds, hidden, layers, segments, wmv_std):
    dirs = []
    for seed in seeds:
        d = os.path.join(out, f"h{hidden}_s{seed}")
        os.makedirs(d, exist_ok=True)
        cfg, wrapper, cell, gen = mb.build_paper(ref, seed, layers, hidden, wmv_std)
        mb.write_paper_checkpoint(wrapper, cfg, d)
        ids = torch.randint(0, cfg.vocab_size, ((segments - 1) * mb.L + 5,), generator=gen)
        mb.paper_case(ref, os.path.basename(d), wrapper, cell, ids, d)
        dirs.append(d)
    return dirs


def parse(text):
    """{(case, path): {qty: (ours, ref, w16, ours-w16, ref-w16)}} from the test's sequential rows"""
    rows = {}
    for line in text.splitlines():
        cols = [c for c in line.split("|")]
        if len(cols) < 8 or cols[2].strip() != "sequential":
            continue
        vals = {}
        for q, c in zip(QTY, cols[4:7]):
            m = CELL.match(c)
            if m:
                vals[q] = tuple(float(m.group(i)) for i in range(1, 6))
        rows[(cols[1].strip(), cols[3].strip())] = vals
    return rows


def gmean(xs):
    xs = [x for x in xs if x > 0 and math.isfinite(x)]
    return math.exp(sum(math.log(x) for x in xs) / len(xs)) if xs else float("nan")


def report(rows, width=12):
    """Prints each fixture's errors and, per path and quantity, the counts and geometric means (the docstring's
    columns); rows as parse() returns them. Shared with tools/bf16_variant_ensemble.py."""
    for (case, path), vals in sorted(rows.items()):
        print(f"{case:{width}s} {path:22s} " + "  ".join(
            f"{q} {v[0]:.3g}/{v[1]:.3g}/{v[2]:.3g} ({v[3]:.3g}/{v[4]:.3g})" for q, v in vals.items()))
    for path in sorted({p for _, p in rows}):
        for q in QTY:
            vs = [v[q] for (_, p), v in rows.items() if p == path and q in v]
            if not vs:
                continue
            n = len(vs)
            print(f"{path}, {q}: ours<=ref {sum(v[0] <= v[1] for v in vs)}/{n}, w16<=ref "
                  f"{sum(v[2] <= v[1] for v in vs)}/{n}, ours<=max {sum(v[0] <= max(v[1], v[2]) for v in vs)}/{n}, "
                  f"noise {sum(v[3] <= v[4] for v in vs)}/{n}; geomean ours/ref {gmean([v[0] / v[1] for v in vs]):.3f}, "
                  f"w16/ref {gmean([v[2] / v[1] for v in vs]):.3f}, "
                  f"(ours-w16)/(ref-w16) {gmean([v[3] / v[4] for v in vs]):.3f}")
    print("(ours / ref / w16 are errors from fp32; in brackets ours and ref from the w16 result)")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--ref2024", required=True, help="language_modeling.py of the 2024 reference (98ea91b)")
    ap.add_argument("--seeds", default="11-22", help="e.g. 11-22 or 1,5,9-12")
    ap.add_argument("--hidden", type=int, default=64)
    ap.add_argument("--layers", type=int, default=6)
    ap.add_argument("--segments", type=int, default=7)
    ap.add_argument("--wmv-std", type=float, default=0.05)
    ap.add_argument("--out", help="keep the fixtures here (default: a temporary directory)")
    ap.add_argument("--test", default="tests/check_bf16_accuracy")
    args = ap.parse_args()
    torch.set_num_threads(1)
    ref = mf.import_reference(args.ref2024)
    with tempfile.TemporaryDirectory() as tmp:
        out = args.out or tmp
        dirs = make(ref, out, seeds_of(args.seeds), args.hidden, args.layers, args.segments, args.wmv_std)
        env = dict(os.environ, ARMT_BF16_FIXTURES=":".join(os.path.abspath(d) for d in dirs))
        res = subprocess.run([args.test], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    report(parse(res.stdout))


if __name__ == "__main__":
    main()
