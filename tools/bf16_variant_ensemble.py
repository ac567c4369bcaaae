#!/usr/bin/env python3
"""bf16_variant_ensemble.py - our bf16 path against the reference's own bf16 run over many random fixtures of one
inner-loop configuration of tests/data/variants (issue 19; docs/VARIANTS.md, "bf16 accuracy", "The inner variant").

tools/bf16_ensemble.py does this for the 2024 (paper) construction; this does it for an inner-loop case of
tools/make_variant_fixtures.py's CASES (inner, inner_h4_sink, inner_all) with the seed replaced: per seed the same
construction as make_variant_fixtures.make_case (torch.manual_seed(seed), a generator seeded the same, the reference's
model, init_weights, the ids), and per fixture the reference's fp32 run, its bf16 run (model.to(torch.bfloat16), as
make_case) and its float64 run on the weights rounded as a bf16 libarmt model holds them (ref_w16_*,
make_bf16_fixtures.round_bf16). Then tests/check_bf16_accuracy runs them (ARMT_BF16_FIXTURES) and the counts and
geometric means are printed as by tools/bf16_ensemble.py (whose parser this uses), plus the geomean w16 / ref:

  ours<=ref    our bf16 error (from fp32) no larger than the reference's bf16 error
  w16<=ref     the exact evaluation of the bf16 weights no farther from fp32 than the reference's bf16 run
  ours<=max    the test's criterion (1)
  noise        the test's criterion (2): ours no farther from the w16 result than the reference's bf16 run
  geomean ours/ref and (ours-w16)/(ref-w16)

--check first rebuilds the committed case itself (seed 1000 + its index in CASES) through this script's own code
and requires every tensor to equal tests/data/variants/<case>/expected.safetensors and
tests/data/bf16/variants/<case>.safetensors bit for bit, so that the ensemble is made the way the fixture was.

Commands (from the repository root, after `make tests/check_bf16_accuracy`; /work/ref-armt as for
tools/make_variant_fixtures.py; only modeling_amt/ is needed):

    python3 tools/bf16_variant_ensemble.py --ref /work/ref-armt --case inner_h4_sink --seeds 1-12 --check \
        --out /tmp/ens
    python3 tools/bf16_variant_ensemble.py --ref /work/ref-armt --case inner_all --seeds 1-12 --check --out /tmp/ens

With --out the fixtures are kept (and reused when the script runs again on the same directory: only the test is
run again, e.g. with --test naming another build of tests/check_bf16_accuracy). Requirements as
tools/make_variant_fixtures.py (torch, transformers, safetensors; CPU, one thread; everything seeded).
"""

import argparse
import os
import subprocess
import sys
import tempfile

import torch
from safetensors.torch import load_file, save_file

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bf16_ensemble as be  # noqa: E402  (parse, gmean, seeds_of)
import make_bf16_fixtures as mb  # noqa: E402  (round_bf16)
import make_variant_fixtures as mv  # noqa: E402  (CASES, the builders, forwards and run-time patches)


def build(case, seed, g2, il):
    """make_variant_fixtures.make_case's model and ids for this seed (an inner-loop case)."""
    name, generation, kind, cfg_kw, base, n = case
    torch.manual_seed(seed)
    rng = torch.Generator().manual_seed(seed)
    model = mv.inner_build(il, g2, cfg_kw, base)
    mv.init_weights(model, rng)
    ids = torch.randint(0, base["vocab_size"], (n,), generator=rng)
    return model, ids


def runs(case, seed, g2, il):
    """fp32, bf16 and w16 results ({name: tensor}). The w16 run gets a model built afresh: model.to(torch.bfloat16)
    also rounds buffers that are not in the state dict (the rotary inv_freq), which a float64 run must not see."""
    fwd = mv.inner_forward
    for run in ("fp32", "w16"):
        model, ids = build(case, seed, g2, il)
        if run == "fp32":
            logits, W, z = fwd(model, ids)
            model.to(torch.bfloat16)
            lb, Wb, zb = fwd(model, ids)
        else:
            assert mb.round_bf16(model) > 0
            model.to(torch.float64)
            lw, Ww, zw = fwd(model, ids)
    t = {"ids": mv.f32(ids.float()), "logits": logits, "W_mem": W, "ref_bf16_logits": lb, "ref_bf16_W_mem": Wb,
         "ref_w16_logits": lw, "ref_w16_W_mem": Ww}
    if z is not None:
        t.update(z=z, ref_bf16_z=zb, ref_w16_z=zw)
    return t


def check_committed(case, idx, g2, il, data):
    name = case[0]
    t = runs(case, 1000 + idx, g2, il)
    exp = load_file(os.path.join(data, "variants", name, "expected.safetensors"))
    exp.update(load_file(os.path.join(data, "bf16", "variants", name + ".safetensors")))
    bad = [k for k in t if k not in exp or not torch.equal(t[k], exp[k])]
    if bad:
        raise SystemExit(f"{name}: the rebuilt fixture differs from the committed one in {bad}")
    print(f"{name}: rebuilt with seed {1000 + idx}: {len(t)} tensors equal the committed ones bit for bit")


def make(case, seeds, g2, il, out):
    dirs = []
    for seed in seeds:
        d = os.path.join(out, f"{case[0]}_s{seed}")
        dirs.append(d)
        if os.path.exists(os.path.join(d, "expected.safetensors")):
            continue
        os.makedirs(d, exist_ok=True)
        build(case, seed, g2, il)[0].save_pretrained(d)
        mv.keep_only(d, {"config.json", "model.safetensors"})
        t = runs(case, seed, g2, il)
        save_file(t, os.path.join(d, "expected.safetensors"), metadata={"format": "pt"})
    return dirs


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--ref", required=True, help="directory with modeling_amt/ (tools/make_variant_fixtures.py)")
    ap.add_argument("--case", required=True, help="a case of tools/make_variant_fixtures.py's CASES")
    ap.add_argument("--seeds", default="1-12", help="e.g. 1-12 or 1,5,9-12")
    ap.add_argument("--check", action="store_true", help="first rebuild the committed case and compare")
    ap.add_argument("--data", default="tests/data")
    ap.add_argument("--out", help="keep (and reuse) the fixtures here (default: a temporary directory)")
    ap.add_argument("--test", default="tests/check_bf16_accuracy")
    args = ap.parse_args()
    torch.set_num_threads(1)
    mv.transformers.logging.set_verbosity_error()
    names = [c[0] for c in mv.CASES]
    if args.case not in names or mv.CASES[names.index(args.case)][1] != 4:
        raise SystemExit(f"{args.case}: not an inner-loop case of tools/make_variant_fixtures.py")
    idx = names.index(args.case)
    case = mv.CASES[idx]
    g2 = mv.import_gen2(args.ref)
    il = mv.import_inner(args.ref, g2)
    if args.check:
        check_committed(case, idx, g2, il, args.data)
    with tempfile.TemporaryDirectory() as tmp:
        dirs = make(case, be.seeds_of(args.seeds), g2, il, args.out or tmp)
        env = dict(os.environ, ARMT_BF16_FIXTURES=":".join(os.path.abspath(d) for d in dirs))
        res = subprocess.run([args.test], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    rows = be.parse(res.stdout)
    if not rows:
        sys.stdout.write(res.stdout)
        raise SystemExit("no results from the test")
    be.report(rows, width=20)


if __name__ == "__main__":
    main()
