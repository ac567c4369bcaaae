#!/usr/bin/env python3
"""make_bf16_fixtures.py - the ARMT reference run in bf16, and in float64 on bf16-rounded weights, on fixture weights
(issue 19): writes tests/data/bf16/ (see tests/data/README.md).

Command that made the committed files (run from the repository root):

    # $G/language_modeling.py: git blob 9805263 (modeling_amt/language_modeling.py at commit 98ea91b) of the public
    # repository RodkinIvan/associative-recurrent-memory-transformer, as for tools/make_fixtures.py;
    # /work/ref-armt: the later files, as for tools/make_variant_fixtures.py
    python3 tools/make_bf16_fixtures.py --ref2024 "$G/language_modeling.py" --ref /work/ref-armt --out tests/data/bf16

The reference is imported at run time (never copied here), with the run-time patches of tools/make_fixtures.py and
tools/make_variant_fixtures.py, whose helpers this script imports. What it writes:

  paper_l3s4/expected.safetensors   the armt_ref fixture's wrapper (2024 code: 3 layers, d_mem 8) and ids (3 full
        segments of 8 and one of 6), rebuilt from the same seed and checked to equal
        tests/data/armt_ref/model_saved.safetensors and its ids tensor for tensor (the test loads that file);
  paper_l6s7/   the same construction with 6 layers (seed 4322), every W_mv re-drawn from N(0, 0.05^2), 53 ids (6
        full segments and one of 5): config.json, armt_config.json, model_saved.safetensors, expected.safetensors;
  variants/<case>.safetensors   for every case of tests/data/variants that has an expected.safetensors: the
        reference in float64 on that checkpoint's weights rounded to bf16 (ref_w16_*, below), the model rebuilt by
        tools/make_variant_fixtures.py's own seeded construction and checked against the fixture's fp32 logits.

expected.safetensors of the paper cases (all F32; metadata segment_size, num_mem_tokens, d_mem):
  ids                                       [n]
  logits, W_mem, z                          the reference in fp32: logits [n, 96], W_mem [layers, 48, 32], z [layers, 48]
  logits64, W_mem64, z64                    the same in float64 (wrapper.double(), default dtype float64)
  ref_bf16_logits, ref_bf16_W_mem, ref_bf16_z
        the reference in bf16 on the same weights: wrapper.to(torch.bfloat16) with the default dtype bfloat16, so
        that W_mem and z (made with the default dtype by zero_mem) are bf16 too, as in the paper's runs
  ref_w16_logits, ref_w16_W_mem, ref_w16_z
        the reference in float64 on the weights that a bf16 libarmt model holds: the GEMM weights (q, k, v, o,
        gate, up, down, W_mq, W_mk, W_mv) and the embedding rounded to bf16 (nearest even), everything else
        (norms, W_mb, the memory tokens) as it is. No computation is rounded: this is the best any engine that
        multiplies by these bf16 weights can get, and its distance from the fp32 outputs is the part of a bf16
        error that no arithmetic removes.
variants/<case>.safetensors: ref_w16_logits, ref_w16_W_mem, ref_w16_z (absent without use_denom), shaped like that
case's logits, W_mem, z; generation 3 in float64 through its own model_dtype "float64", generation 2 and the inner
loop through model.to(torch.float64), as tools/make_variant_fixtures.py makes its fp64 numbers.

Requirements: torch 2.x, transformers 5.x, safetensors (CPU). Tested with torch 2.15, transformers 5.25.
Everything is seeded and runs on one thread; a re-run writes the same tensors.
"""

import argparse
import os
import sys

import torch
from safetensors.torch import load_file, save_file, save_model

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import make_fixtures as mf  # noqa: E402  (the 2024 reference's helpers and run-time patches)
import make_variant_fixtures as mv  # noqa: E402  (the later generations' helpers and patches)

M, D_MEM, L = 4, 8, 8

# the parameters a bf16 libarmt model stores in bf16 (lib/compute/model.c, role_bf16): the GEMM weights and the
# embedding (tied to lm_head in every fixture); norms, W_mb, the memory tokens stay fp32
BF16_PARAMS = ("q_proj.", "k_proj.", "v_proj.", "o_proj.", "gate_proj.", "up_proj.", "down_proj.", "W_mq.", "W_mk.",
               "W_mv.", "embed_tokens.", "lm_head.")


def is_bf16_param(name):
    return name.endswith("weight") and any(p in name for p in BF16_PARAMS)


def round_bf16(model):
    """Rounds the parameters a bf16 libarmt model holds in bf16 (nearest even), in place; returns how many."""
    n = 0
    with torch.no_grad():
        for name, p in model.named_parameters():
            if is_bf16_param(name):
                p.copy_(p.to(torch.bfloat16).to(p.dtype))
                n += 1
    return n


def rel(a, b):
    a, b = a.double(), b.double()
    return ((a - b).norm() / b.norm()).item()


# ---------------------------------------------------------------------------------------------------------------
# The 2024 (paper) reference
# ---------------------------------------------------------------------------------------------------------------

def build_paper(ref, seed, layers, hidden=32, wmv_std=0.05):
    """tools/make_fixtures.py's armt_ref construction (same draws in the same order) with `layers` layers (and, for
    tools/bf16_ensemble.py, another width: hidden / 8 query heads, hidden / 16 KV heads, FFN 2 hidden)."""
    saved = dict(mf.ARMT_BASE)
    mf.ARMT_BASE.update(num_hidden_layers=layers, hidden_size=hidden, num_attention_heads=hidden // 8,
                        num_key_value_heads=hidden // 16, intermediate_size=2 * hidden)
    try:
        cfg, base, gen = mf.tiny_base(seed)
    finally:
        mf.ARMT_BASE.clear()
        mf.ARMT_BASE.update(saved)
    cell = ref.AssociativeMemoryCell(base, num_mem_tokens=M, d_mem=D_MEM, layers_attr="model.layers",
                                     wrap_pos=False, correction=True)
    wrapper = ref.AssociativeRecurrentWrapper(cell, segment_size=L, k2=-1).eval()
    with torch.no_grad():
        for w in cell.layers:
            torch.nn.init.normal_(w.W_mv.weight, mean=0.0, std=wmv_std, generator=gen)
    mf.patch_tuple_outputs(ref, cell)
    return cfg, wrapper, cell, gen


def write_paper_checkpoint(wrapper, cfg, d):
    save_model(wrapper, os.path.join(d, "model_saved.safetensors"), metadata={"format": "pt"})
    mf.write_json(os.path.join(d, "config.json"), mf.hub_style_config(cfg))
    mf.write_json(os.path.join(d, "armt_config.json"),
                  {"num_mem_tokens": M, "d_mem": D_MEM, "segment_size": L, "correction": True})


def run_paper_dtype(ref, wrapper, cell, ids, dtype):
    """The 2024 reference's forward with every parameter and buffer and the default dtype (so W_mem and z) in
    dtype. Converting to bf16 and back rounds the parameters and the rotary inv_freq buffer for good: callers run
    it last, or on a copy."""
    prev = torch.get_default_dtype()
    torch.set_default_dtype(dtype)
    try:
        wrapper.to(dtype)
        cell.zero_mem()
        logits, st = mf.run_reference(ref, wrapper, cell, ids)
    finally:
        torch.set_default_dtype(prev)
        wrapper.float()
        cell.zero_mem()
    assert st["W_mem"].dtype == dtype and not any(st["first_seg"])
    return logits, st


def paper_case(ref, name, wrapper, cell, ids, out_dir):
    f32 = mf.f32
    logits, st = mf.run_reference(ref, wrapper, cell, ids)
    l64, st64 = run_paper_dtype(ref, wrapper, cell, ids, torch.float64)  # fp32 -> fp64 -> fp32: lossless
    saved = {k: v.clone() for k, v in wrapper.state_dict().items()}
    assert round_bf16(wrapper) > 0
    lw, stw = run_paper_dtype(ref, wrapper, cell, ids, torch.float64)
    wrapper.load_state_dict(saved)
    lb, stb = run_paper_dtype(ref, wrapper, cell, ids, torch.bfloat16)  # last: it rounds the wrapper for good
    mf.log(f"{name}: n {ids.numel()}, max|logit| {logits.abs().max():.3f}; fp32 vs fp64: logits "
           f"{(logits.double() - l64).abs().max():.2e}, W_mem {rel(st['W_mem'], st64['W_mem']):.2e}, z "
           f"{rel(st['z'], st64['z']):.2e}; bf16 vs fp32: logits {(lb.double() - logits).abs().max():.3e}, W_mem "
           f"{rel(stb['W_mem'], st['W_mem']):.3e}, z {rel(stb['z'], st['z']):.3e}; bf16 weights exact vs fp32: "
           f"logits {(lw - logits.double()).abs().max():.3e}, W_mem {rel(stw['W_mem'], st['W_mem']):.3e}, z "
           f"{rel(stw['z'], st['z']):.3e}")
    save_file({"ids": f32(ids.float()), "logits": f32(logits), "W_mem": f32(st["W_mem"]), "z": f32(st["z"]),
               "logits64": f32(l64), "W_mem64": f32(st64["W_mem"]), "z64": f32(st64["z"]),
               "ref_bf16_logits": f32(lb), "ref_bf16_W_mem": f32(stb["W_mem"]), "ref_bf16_z": f32(stb["z"]),
               "ref_w16_logits": f32(lw), "ref_w16_W_mem": f32(stw["W_mem"]), "ref_w16_z": f32(stw["z"])},
              os.path.join(out_dir, "expected.safetensors"),
              metadata={"format": "pt", "segment_size": str(L), "num_mem_tokens": str(M), "d_mem": str(D_MEM)})


def make_paper(ref, out, armt_ref):
    # paper_l3s4: armt_ref itself (make_fixtures.make_armt_ref's draws: the weights, then the ids)
    d = os.path.join(out, "paper_l3s4")
    os.makedirs(d, exist_ok=True)
    cfg, wrapper, cell, gen = build_paper(ref, 4321, 3)
    ids = torch.randint(0, cfg.vocab_size, (3 * L + 6,), generator=gen)
    committed = load_file(os.path.join(armt_ref, "model_saved.safetensors"))
    tmp = os.path.join(d, "model_check.safetensors")
    save_model(wrapper, tmp, metadata={"format": "pt"})
    mine = load_file(tmp)
    os.remove(tmp)
    assert mine.keys() == committed.keys() and all(torch.equal(mine[k], committed[k]) for k in mine), \
        "the rebuilt wrapper differs from tests/data/armt_ref/model_saved.safetensors"
    assert torch.equal(load_file(os.path.join(armt_ref, "expected.safetensors"))["ids"], ids.float()), \
        "ids differ from tests/data/armt_ref/expected.safetensors"
    paper_case(ref, "paper_l3s4", wrapper, cell, ids, d)

    # paper_l6s7: 6 layers, 6 full segments and a partial one
    d = os.path.join(out, "paper_l6s7")
    os.makedirs(d, exist_ok=True)
    cfg, wrapper, cell, gen = build_paper(ref, 4322, 6)
    write_paper_checkpoint(wrapper, cfg, d)
    ids = torch.randint(0, cfg.vocab_size, (6 * L + 5,), generator=gen)
    paper_case(ref, "paper_l6s7", wrapper, cell, ids, d)


# ---------------------------------------------------------------------------------------------------------------
# The later generations (tests/data/variants)
# ---------------------------------------------------------------------------------------------------------------

def variant_model(idx, case, g3, g2, il):
    """The model of make_variant_fixtures.make_case, rebuilt with the same seed and draws; returns it, the ids and
    the forward function."""
    name, generation, kind, cfg_kw, base, n = case
    seed = 1000 + idx
    torch.manual_seed(seed)
    rng = torch.Generator().manual_seed(seed)
    if generation == 3:
        model = mv.gen3_build(g3, kind, cfg_kw, base)
    elif generation == 4:
        model = mv.inner_build(il, g2, cfg_kw, base)
    else:
        model = mv.gen2_build(g2, cfg_kw, base)
    mv.init_weights(model, rng)
    ids = torch.randint(0, base["vocab_size"], (n,), generator=rng)
    if generation == 2:
        mv.patch_tuple_outputs(g2[0], model.armt.memory_cell)
    fwd = {3: mv.gen3_forward, 4: mv.inner_forward, 2: mv.gen2_forward}[generation]
    return model, ids, fwd


def make_variants(g3, g2, il, fixtures, out):
    d = os.path.join(out, "variants")
    os.makedirs(d, exist_ok=True)
    for idx, case in enumerate(mv.CASES):
        name, generation, kind, cfg_kw, base, n = case
        exp_path = os.path.join(fixtures, name, "expected.safetensors")
        if not os.path.exists(exp_path):
            continue  # the reference cannot run this case
        exp = load_file(exp_path)
        model, ids, fwd = variant_model(idx, case, g3, g2, il)
        assert torch.equal(ids.float(), exp["ids"]), f"{name}: ids differ from the fixture's"
        logits, W, z = fwd(model, ids)
        assert torch.equal(logits, exp["logits"]), f"{name}: the rebuilt model's logits differ from the fixture's"
        assert round_bf16(model) > 0
        if generation == 3:  # as make_case's fp64 run: a float64 model given the (rounded) state dict
            sd = {k: v.detach().clone() for k, v in model.state_dict().items()}
            model = mv.gen3_build(g3, kind, cfg_kw, base, dtype="float64")
            model.load_state_dict(sd)
        else:
            model.to(torch.float64)
        lw, Ww, zw = fwd(model, ids)
        t = {"ref_w16_logits": lw, "ref_w16_W_mem": Ww}
        if zw is not None:
            t["ref_w16_z"] = zw
        save_file(t, os.path.join(d, name + ".safetensors"), metadata={"format": "pt"})
        mf.log(f"variants/{name}: bf16 weights exact vs fp32: logits {(lw - logits).abs().max():.3e}, W_mem "
               f"{rel(Ww, W):.3e}" + ("" if zw is None else f", z {rel(zw, z):.3e}") +
               f"; the reference's bf16 run: logits {(exp['ref_bf16_logits'] - logits).abs().max():.3e}, W_mem "
               f"{rel(exp['ref_bf16_W_mem'], W):.3e}" +
               ("" if zw is None else f", z {rel(exp['ref_bf16_z'], z):.3e}"))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--ref2024", required=True, help="language_modeling.py of the 2024 reference (98ea91b)")
    ap.add_argument("--ref", required=True, help="directory with src/ and modeling_amt/ (make_variant_fixtures.py)")
    ap.add_argument("--out", default="tests/data/bf16")
    ap.add_argument("--data", default="tests/data", help="the committed fixtures (armt_ref, variants)")
    args = ap.parse_args()
    torch.set_num_threads(1)
    mv.transformers.logging.set_verbosity_error()
    make_paper(mf.import_reference(args.ref2024), args.out, os.path.join(args.data, "armt_ref"))
    g3 = mv.import_gen3(args.ref)
    g2 = mv.import_gen2(args.ref)
    il = mv.import_inner(args.ref, g2)
    make_variants(g3, g2, il, os.path.join(args.data, "variants"), args.out)
    for root, _, files in os.walk(args.out):  # safetensors writes 0600
        for f in files:
            os.chmod(os.path.join(root, f), 0o644)


if __name__ == "__main__":
    main()
