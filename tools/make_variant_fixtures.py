#!/usr/bin/env python3
"""make_variant_fixtures.py - writes tests/data/variants/ (see tests/data/variants/README.md).

Reference fixtures for the newer ARMT variants of the public repository
RodkinIvan/associative-recurrent-memory-transformer. Their code is imported at run time from --ref and is never
copied into this repository.

Command that made the committed files (run from the repository root):

    python3 tools/make_variant_fixtures.py --ref /work/ref-armt --out tests/data/variants

--ref is a directory laid out like the repository, holding these files at these versions:
    src/armt.py, src/armt_sw.py            commit 3da7f482215aed7cc2236335cc688ed9c4b5b1b9   (generation 3)
    modeling_amt/model.py                  commit 05b553817d749acc190846d56b61f97396c76a09   (generation 2)
    modeling_amt/language_modeling.py      commit 042b2e4b48d7b38002d2190afaf4b59a079d2af6
    modeling_amt/act_utils.py              commit 1dcfb39d1f10047125bdeb9b3647258595d48b2c
    modeling_amt/inner_loop.py             commit 08bcdd26fe2de21dc915a4991f3903d0d5f32b01   (inner loop)
(empty __init__.py files are not needed: the packages are created here). Requirements: torch 2.x (CPU),
transformers 5.x, safetensors, numpy. Tested with torch 2.15.0, transformers 5.25.0, safetensors 0.8.0.
Everything is seeded; torch.set_num_threads(1) for deterministic reductions.

Run-time patches (their files are not modified; nothing touches their read/write math):
  Generation 3 (src/armt.py, src/armt_sw.py): one. transformers 5.25 renamed the decoder layer's cache argument
     from past_key_values to cache (past_key_values is still accepted but ignored with a FutureWarning when cache
     is also given, and LlamaModel always passes cache=None to its layers). AssociativeLayer passes its cache as
     past_key_values (it inspects the signature for layer_past only), so the sliding-window layer's
     DynamicCache never reached attention and armt_sw.py failed with "IndexError: list index out of range" at
     `cache.layers[self.layer_index]`. A forward pre-hook on each inner LlamaDecoderLayer moves a non-None
     past_key_values= into cache= (a no-op for src/armt.py, which passes None). src/ is imported as the package `armt_ref_src` so that
     armt_sw.py's relative import `from .armt import ...` works. The final memory is captured by wrapping each
     AssociativeLayer instance's `_write` (instance attribute) and keeping what the last call returned (the
     horizontal forward keeps it only in a local variable and resets the layers afterwards).
  Generation 2 (modeling_amt/):
  1. `wandb` and `munch` (imported at the top of language_modeling.py; wandb is only used in a commented-out line,
     munch.Munch only on the RWKV path, which is off) get empty stand-in modules if they are not installed.
  2. language_modeling.py@042b2e4 is executed with compile(..., optimize=1), i.e. with its `assert` statements
     stripped (as `python -O` would): AssociativeRecurrentWrapper.forward asserts
     `segment.get('prev_attn_mask') is not None or seg_num == 0`, but prev_attn_mask is only set when
     sliding_window or attend_to_previous_input is on, so every plain multi-segment forward fails with a bare
     AssertionError. No other assert exists in that file.
  3. model.py@05b5538 does not match language_modeling.py@042b2e4 in three places: it imports the module-level
     names attn_mask_to_4d and invert_attn_mask (042b2e4 has neither; model.py never uses them): we put None
     stand-ins into the module before importing model.py; it passes constant_depth=, act_format=, noisy_halting=
     to AssociativeMemoryCell (042b2e4 does not accept them): we wrap AssociativeMemoryCell.__init__ to drop
     exactly these three keywords (all ACT-only; ACT is not run); and ARMTForCausalLM.forward passes
     num_items_in_batch= to AssociativeRecurrentWrapper.forward, which does not accept it: we call the wrapper
     `model.armt(...)` directly, which is all ARMTForCausalLM.forward does.
  4. AssociativeRecurrentWrapper.process_outputs@042b2e4 subscripts labels and labels_mask unconditionally, so
     the forward is called with labels=ids and labels_mask=all-true (they only feed the loss).
  5. transformers 5.x decoder layers return a tensor, transformers 4.x a tuple; AssociativeLayerWrapper reads
     `out[0][:, -M:]`. As in tools/make_fixtures.py: (a) each wrapped LlamaDecoderLayer instance returns a
     1-tuple, (b) each AssociativeLayerWrapper instance unwraps it again for LlamaModel, (c) a forward pre-hook
     moves a hidden_states= keyword into the positional slot. The associate/update_mem math runs unchanged.
  6. ARMTForCausalLM.save_pretrained fails for generation 2 (transformers 5.x refuses the shared tensors that the
     duplicated layer registration armt.memory_cell.layers.N == armt.memory_cell.model.model.layers.N creates),
     so model.safetensors is written by safetensors.torch.save_model (one name per shared tensor) and
     config.json by the config's own save_pretrained.
  The final W_mem/z of generation 2 are read from the layer wrappers after the forward (the wrapper zeroes them
  at the start of a forward, not at the end).
  Inner loop (modeling_amt/inner_loop.py, InnerLoopARMTForCausalLM, on top of the generation-2 imports above):
  7. inner_loop.py@08bcdd2 imports attn_mask_to_4d(mask, upper, query_len) and invert_attn_mask(mask, dtype) from
     language_modeling.py, which 042b2e4 does not have (patch 3 put None there). Later versions of that file define
     them as: a lower (upper=False) or upper triangle of ones [query_len, n] times the 2-D mask, with a head
     axis; and (1 - mask) * finfo(dtype).min. We put these two definitions (written here) into the module.
  8. InnerLoopARMTForCausalLM.__init__ evaluates `'llama' not in config.base_model_name` before it looks at
     base_model_config, a TypeError when the base is given as base_model_config (base_model_name None, which
     __init__ itself requires two lines later). The file is executed with that one expression changed to
     `'llama' not in (bm_name or '')`: it only decides whether liger_kernel may patch LLaMA (not installed here).
  9. Not a patch, a setting: the base config has use_cache false. With transformers 5.25's default (true),
     LlamaModel hands every layer a DynamicCache, the wrapper's layer call appends each block's keys to it, and
     the second block fails in sdpa ("The size of tensor a (26) must match ... (13)"): the horizontal forward
     only runs with the base model's cache off. use_cache has no effect on the math.
  The final W_mem/z of the inner loop are captured by wrapping each layer wrapper's _update_mem_with_mem
  (instance attribute) and keeping what its last call returned (the forward zeroes the state at its end).

Outputs, per case (tests/data/variants/<case>/): config.json, model.safetensors, expected.safetensors; the case
`armt` also has sharded/ (save_pretrained with a small max_shard_size) and bf16/ (weights in BF16).
"""

import argparse
import importlib.util
import json
import os
import shutil
import sys
import types

import torch
from safetensors import safe_open
from safetensors.torch import save_file, save_model

import transformers

SEG, MEM, D_MEM = 8, 4, 16
N_DEFAULT, N_WIDE = 36, 41
GEN_NEW = 4

BASE = dict(model_type="llama", vocab_size=96, hidden_size=32, intermediate_size=64, num_hidden_layers=3,
            num_attention_heads=4, num_key_value_heads=2, head_dim=8, rms_norm_eps=1e-5, rope_theta=10000.0,
            tie_word_embeddings=True, max_position_embeddings=128)
BASE_WIDE = dict(BASE, hidden_size=120, num_attention_heads=15, num_key_value_heads=5, num_hidden_layers=2)
BASE_IL, BASE_WIDE_IL = dict(BASE, use_cache=False), dict(BASE_WIDE, use_cache=False)  # inner loop: patch 9

# name, generation, kind ("armt" | "armt_sw" | "amt"), config keywords, base, n
CASES = [
    ("armt", 3, "armt", {}, BASE, N_DEFAULT),
    ("armt_nodenom", 3, "armt", {"use_denom": False}, BASE, N_DEFAULT),
    ("armt_nocorr", 3, "armt", {"correction": False}, BASE, N_DEFAULT),
    ("armt_wrap", 3, "armt", {"wrap_layers": [True, False, True]}, BASE, N_DEFAULT),
    ("armt_gqa15", 3, "armt", {}, BASE_WIDE, N_WIDE),
    ("armt_sw", 3, "armt_sw", {"use_sink": False}, BASE, N_DEFAULT),
    ("armt_sw_sink", 3, "armt_sw", {"use_sink": True}, BASE, N_DEFAULT),
    ("amt_h4", 2, "amt", {"n_heads": 4}, BASE, N_DEFAULT),
    ("amt_gating", 2, "amt", {"n_heads": 2, "gating": True}, BASE, N_DEFAULT),
    ("amt_sink", 2, "amt", {"use_sink": True}, BASE, N_DEFAULT),
    ("amt_nodenom", 2, "amt", {"use_denom": False, "correction": True}, BASE, N_DEFAULT),
    ("amt_nocorr", 2, "amt", {"correction": False}, BASE, N_DEFAULT),
    ("amt_all", 2, "amt", {"n_heads": 4, "gating": True, "use_sink": True, "correction": True, "use_denom": True},
     BASE_WIDE, N_WIDE),
    ("amt_sw", 2, "amt", {"sliding_window": True, "n_heads": 1}, BASE, N_DEFAULT),
    ("amt_sw_sink", 2, "amt", {"sliding_window": True, "use_sink": True}, BASE, N_DEFAULT),
    ("amt_act", 2, "amt", {"act_on": True}, BASE, N_DEFAULT),
    # inner loop (modeling_amt/inner_loop.py): "generation" 4 in this script; generation-2 config keys
    ("inner", 4, "inner", {}, BASE_IL, N_DEFAULT),
    ("inner_h4_sink", 4, "inner", {"n_heads": 4, "use_sink": True, "correction": False}, BASE_IL, N_DEFAULT),
    ("inner_all", 4, "inner", {"n_heads": 2, "gating": True, "use_sink": True}, BASE_WIDE_IL, N_WIDE),
    ("inner_sw", 4, "inner", {"sliding_window": True}, BASE_IL, N_DEFAULT),
]


def log(*a):
    print(*a, flush=True)


# --------------------------------------------------------------------------------------------------------------
# Reference import + run-time patches
# --------------------------------------------------------------------------------------------------------------

def _package(name, path):
    pkg = types.ModuleType(name)
    pkg.__path__ = [path]
    sys.modules[name] = pkg
    return pkg


def _load(name, path, optimize=-1):
    spec = importlib.util.spec_from_file_location(name, path)
    mod = importlib.util.module_from_spec(spec)
    sys.modules[name] = mod
    with open(path) as f:
        src = f.read()
    exec(compile(src, path, "exec", optimize=optimize), mod.__dict__)
    return mod


def import_gen3(ref):
    _package("armt_ref_src", os.path.join(ref, "src"))
    armt = _load("armt_ref_src.armt", os.path.join(ref, "src", "armt.py"))
    armt_sw = _load("armt_ref_src.armt_sw", os.path.join(ref, "src", "armt_sw.py"))
    return armt, armt_sw


def import_gen2(ref):
    for name in ("wandb", "munch"):  # patch 1
        try:
            __import__(name)
        except ImportError:
            stub = types.ModuleType(name)
            if name == "munch":
                stub.Munch = dict
            sys.modules[name] = stub
    _package("modeling_amt", os.path.join(ref, "modeling_amt"))
    lm = _load("modeling_amt.language_modeling", os.path.join(ref, "modeling_amt", "language_modeling.py"),
               optimize=1)  # patch 2
    lm.attn_mask_to_4d = None  # patch 3
    lm.invert_attn_mask = None
    cell_init = lm.AssociativeMemoryCell.__init__

    def init(self, *a, constant_depth=False, act_format="linear", noisy_halting=False, **kw):
        cell_init(self, *a, **kw)

    lm.AssociativeMemoryCell.__init__ = init
    model = _load("modeling_amt.model", os.path.join(ref, "modeling_amt", "model.py"))
    return lm, model


def _attn_mask_to_4d(attn_mask, upper, query_len):
    """Patch 7: [b, n] 0/1 mask -> [b, 1, query_len, n], times a lower (upper=False) or upper triangle of ones."""
    if attn_mask is None:
        return None
    ones = torch.ones(query_len, attn_mask.size(-1), dtype=attn_mask.dtype, device=attn_mask.device)
    tri = torch.triu(ones) if upper else torch.tril(ones)
    return (attn_mask[:, None, :] * tri[None]).unsqueeze(1)


def _invert_attn_mask(attn_mask, dtype):
    """Patch 7: 0/1 -> additive (0 where 1, finfo(dtype).min where 0)."""
    return (1.0 - attn_mask) * torch.finfo(dtype).min


def import_inner(ref, g2):
    lm, _ = g2
    lm.attn_mask_to_4d = _attn_mask_to_4d  # patch 7
    lm.invert_attn_mask = _invert_attn_mask
    path = os.path.join(ref, "modeling_amt", "inner_loop.py")
    with open(path) as f:
        src = f.read()
    old = "if 'llama' not in bm_name:"  # patch 8
    assert src.count(old) == 1, "inner_loop.py is not the pinned version"
    src = src.replace(old, "if 'llama' not in (bm_name or ''):")
    mod = types.ModuleType("modeling_amt.inner_loop")
    mod.__file__ = path
    sys.modules[mod.__name__] = mod
    exec(compile(src, path, "exec"), mod.__dict__)
    return mod


def patch_tuple_outputs(lm, cell):
    """Generation-2 patch 5 (see the module docstring)."""
    for w in cell.layers:
        assert isinstance(w, lm.AssociativeLayerWrapper)
        inner = w.layer
        inner_forward = inner.forward

        def tuple_forward(*args, _f=inner_forward, **kwargs):
            out = _f(*args, **kwargs)
            return out if isinstance(out, tuple) else (out,)

        inner.forward = tuple_forward
        wrapper_forward = w.forward

        def tensor_forward(*args, _f=wrapper_forward, **kwargs):
            out = _f(*args, **kwargs)
            return out[0] if isinstance(out, tuple) else out

        w.forward = tensor_forward

        def positional_hidden(module, args, kwargs):
            if not args and "hidden_states" in kwargs:
                kwargs = dict(kwargs)
                args = (kwargs.pop("hidden_states"),)
            return args, kwargs

        inner.register_forward_pre_hook(positional_hidden, with_kwargs=True)


# --------------------------------------------------------------------------------------------------------------
# Helpers
# --------------------------------------------------------------------------------------------------------------

def f32(t):
    return t.detach().to(torch.float32).contiguous()


def write_json(path, obj):
    with open(path, "w") as f:
        json.dump(obj, f, indent=2, sort_keys=True)
        f.write("\n")


def init_weights(model, rng):
    """Seeded weights. Base LLaMA: every matrix N(0, 0.1^2), RMSNorm weights 1 + 0.1 N(0,1). Memory path: W_mq/W_mk
    keep the reference's own (seeded) init, W_mv ~ N(0, 0.3^2) (the reference zero-initialises it), W_mb bias
    ~ N(0, 1) (generation 3 initialises it to 1). memory / sink keep the reference's own seeded init."""
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.endswith("norm.weight"):
                p.copy_(1.0 + 0.1 * torch.randn(p.shape, generator=rng))
            elif name.endswith("W_mv.weight"):
                p.copy_(0.3 * torch.randn(p.shape, generator=rng))
            elif name.endswith("W_mb.bias"):
                p.copy_(torch.randn(p.shape, generator=rng))
            elif ".W_m" in name or name.endswith("memory") or name.endswith("sink"):
                pass
            elif p.ndim == 2:
                p.copy_(0.1 * torch.randn(p.shape, generator=rng))
            elif ".act." not in name:  # ACT halting unit bias (act.p.bias) keeps the reference's 1.0
                raise RuntimeError(f"unexpected parameter {name}")


def wmv_effect(model, forward, ids, logits):
    """max |logits - logits with every W_mv zeroed| (shows that the memory path matters); weights restored."""
    saved = {n: p.detach().clone() for n, p in model.named_parameters() if n.endswith("W_mv.weight")}
    with torch.no_grad():
        for n, p in model.named_parameters():
            if n in saved:
                p.zero_()
        l0 = forward(model, ids)[0]
        for n, p in model.named_parameters():
            if n in saved:
                p.copy_(saved[n])
    return (l0 - logits).abs().max().item()


def rel(a, b):
    a, b = a.double(), b.double()
    return ((a - b).norm() / b.norm().clamp_min(1e-30)).item()


# --------------------------------------------------------------------------------------------------------------
# Generation 3
# --------------------------------------------------------------------------------------------------------------

def _cache_kwarg(module, args, kwargs):
    """Generation-3 patch (see the module docstring): past_key_values= -> cache= for transformers 5.25."""
    if kwargs.get("past_key_values") is not None and kwargs.get("cache") is None:
        kwargs = dict(kwargs)
        kwargs["cache"] = kwargs.pop("past_key_values")
    return args, kwargs


def gen3_build(mods, kind, cfg_kw, base, dtype="float32"):
    armt, armt_sw = mods
    if kind == "armt":
        cfg = armt.ARMTConfig(base_model_config=dict(base), num_mem_tokens=MEM, d_mem=D_MEM, segment_size=SEG,
                              model_dtype=dtype, **cfg_kw)
        model = armt.ARMTForCausalLM(cfg).eval()
    else:
        cfg = armt_sw.ARMTSlidingWindowConfig(base_model_config=dict(base), num_mem_tokens=MEM, d_mem=D_MEM,
                                              segment_size=SEG, model_dtype=dtype, **cfg_kw)
        model = armt_sw.ARMTSlidingWindowForCausalLM(cfg).eval()
    for layer in model.get_layers():
        layer.layer.register_forward_pre_hook(_cache_kwarg, with_kwargs=True)
    return model


def forward_capturing(model, ids, layers, method):
    """model(input_ids=ids) with each layer's `method` wrapped (an instance attribute, removed afterwards) so that
    what its last call returned is kept: (logits of the one sequence, {layer index: last return value})."""
    last = {}
    for i, l in enumerate(layers):
        orig = getattr(l, method)

        def wrapped(*a, _f=orig, _i=i, **kw):
            res = _f(*a, **kw)
            last[_i] = res
            return res

        setattr(l, method, wrapped)
    try:
        with torch.no_grad():
            logits = model(input_ids=ids[None]).logits[0]
    finally:
        for l in layers:
            delattr(l, method)
    return logits, last


def gen3_forward(model, ids):
    """One horizontal forward over all ids; returns logits and the last (memory, denominator) of every associative
    layer (the write of the last, partial segment included)."""
    layers = [l for l in model.get_layers() if l.associative]
    logits, last = forward_capturing(model, ids, layers, "_write")
    W = torch.stack([f32(last[i][0][0])[None] for i in range(len(layers))])  # [Lm, 1, dk, d]
    z = None
    if last[0][1] is not None:
        z = torch.stack([f32(last[i][1][0])[None] for i in range(len(layers))])  # [Lm, 1, dk]
    return f32(logits), W, z


def gen3_generate(model, prompt):
    with torch.no_grad():
        return model.generate(prompt[None], max_new_tokens=GEN_NEW)[0]


# --------------------------------------------------------------------------------------------------------------
# Generation 2
# --------------------------------------------------------------------------------------------------------------

def gen2_build(mods, cfg_kw, base):
    lm, model_mod = mods
    cfg = model_mod.ARMTConfig(base_model_config=dict(base), num_mem_tokens=MEM, d_mem=D_MEM, segment_size=SEG,
                               **cfg_kw)
    model = model_mod.ARMTForCausalLM(cfg).eval()
    return model


def gen2_forward(model, ids):
    cell = model.armt.memory_cell
    n = ids.numel()
    with torch.no_grad():
        out = model.armt(input_ids=ids[None], attention_mask=torch.ones(1, n, dtype=torch.long),
                         labels=ids[None], labels_mask=torch.ones(1, n, dtype=torch.bool))  # patches 3, 4
    W = torch.stack([f32(l.W_mem[0]) for l in cell.layers])  # [L, H, dk/H, d/H]
    z = torch.stack([f32(l.z[0]) for l in cell.layers]) if cell.layers[0].use_denom else None
    assert not any(l.first_seg for l in cell.layers)
    return f32(out.logits[0]), W, z


def gen2_generate(model, prompt):
    with torch.no_grad():
        g = model.generate(prompt[None], torch.ones(1, prompt.numel(), dtype=torch.long), max_new_tokens=GEN_NEW,
                           do_sample=False, eos_token_id=None, pad_token_id=0)
    return g[0]


# --------------------------------------------------------------------------------------------------------------
# Inner loop
# --------------------------------------------------------------------------------------------------------------

def inner_build(il, g2, cfg_kw, base):
    cfg = g2[1].ARMTConfig(base_model_config=dict(base), num_mem_tokens=MEM, d_mem=D_MEM, segment_size=SEG,
                           **cfg_kw)
    return il.InnerLoopARMTForCausalLM(cfg).eval()


def inner_forward(model, ids):
    """One horizontal forward (model(input_ids)); the state after the last block's write, per layer."""
    layers = list(model.get_layers())
    logits, last = forward_capturing(model, ids, layers, "_update_mem_with_mem")
    W = torch.stack([f32(last[i][0][0]) for i in range(len(layers))])  # [L, H, dk/H, d/H]
    z = torch.stack([f32(last[i][1][0]) for i in range(len(layers))]) if last[0][1] is not None else None
    return f32(logits), W, z


def inner_generate(model, prompt):
    with torch.no_grad():
        return model.generate(prompt[None], torch.ones(1, prompt.numel(), dtype=torch.long),
                              max_new_tokens=GEN_NEW)[0]


# --------------------------------------------------------------------------------------------------------------
# Cases
# --------------------------------------------------------------------------------------------------------------

def keep_only(d, names):
    for f in os.listdir(d):
        if f not in names:
            p = os.path.join(d, f)
            shutil.rmtree(p) if os.path.isdir(p) else os.remove(p)


def make_case(idx, case, g3, g2, il, out):
    name, generation, kind, cfg_kw, base, n = case
    d = os.path.join(out, name)
    if os.path.isdir(d):
        shutil.rmtree(d)
    os.makedirs(d)
    seed = 1000 + idx
    torch.manual_seed(seed)
    rng = torch.Generator().manual_seed(seed)
    info = {"name": name, "gen": generation, "kind": kind, "flags": cfg_kw, "n": n, "hidden": base["hidden_size"],
            "heads": f'{base["num_attention_heads"]}/{base["num_key_value_heads"]}',
            "layers": base["num_hidden_layers"], "seed": seed}
    if generation == 3:
        model = gen3_build(g3, kind, cfg_kw, base)
    elif generation == 4:
        model = inner_build(il, g2, cfg_kw, base)
    else:
        model = gen2_build(g2, cfg_kw, base)
    init_weights(model, rng)
    ids = torch.randint(0, base["vocab_size"], (n,), generator=rng)
    prompt = torch.randint(0, base["vocab_size"], (SEG + 3,), generator=rng)

    if generation in (3, 4):
        model.save_pretrained(d)
        keep_only(d, {"config.json", "model.safetensors"})
    else:
        save_model(model, os.path.join(d, "model.safetensors"), metadata={"format": "pt"})  # patch 6
        model.config.architectures = [type(model).__name__]  # what save_pretrained would have added
        model.config.dtype = "float32"
        model.config.save_pretrained(d)
        keep_only(d, {"config.json", "model.safetensors"})
        patch_tuple_outputs(g2[0], model.armt.memory_cell)

    try:
        if generation == 3:
            logits, W, z = gen3_forward(model, ids)
            toks = gen3_generate(model, prompt)
            wmv = wmv_effect(model, gen3_forward, ids, logits)
            sd = {k: v.detach().clone() for k, v in model.state_dict().items()}
            m64 = gen3_build(g3, kind, cfg_kw, base, dtype="float64")
            m64.load_state_dict(sd)
            l64, W64, z64 = gen3_forward(m64, ids)
            mb = gen3_build(g3, kind, cfg_kw, base, dtype="bfloat16")
            mb.load_state_dict(sd)
            lb, Wb, zb = gen3_forward(mb, ids)
        elif generation == 4:
            logits, W, z = inner_forward(model, ids)
            toks = inner_generate(model, prompt)
            wmv = wmv_effect(model, inner_forward, ids, logits)
            model.to(torch.float64)
            l64, W64, z64 = inner_forward(model, ids)
            model.to(torch.bfloat16)
            lb, Wb, zb = inner_forward(model, ids)
        else:
            logits, W, z = gen2_forward(model, ids)
            toks = gen2_generate(model, prompt)
            wmv = wmv_effect(model, gen2_forward, ids, logits)
            model.to(torch.float64)
            l64, W64, z64 = gen2_forward(model, ids)
            model.to(torch.bfloat16)
            lb, Wb, zb = gen2_forward(model, ids)
    except Exception as e:  # a failure inside the reference: recorded, case kept as config + weights only
        info["error"] = f"{type(e).__name__}: {e}".splitlines()[0][:300]
        log(f"{name}: reference failed: {info['error']}")
        return info

    assert toks.numel() == GEN_NEW
    exp = {"ids": f32(ids.float()), "logits": logits, "W_mem": W, "gen_prompt": f32(prompt.float()),
           "gen_tokens": f32(toks.float()), "ref_bf16_logits": lb, "ref_bf16_W_mem": Wb}
    if z is not None:
        exp["z"] = z
        exp["ref_bf16_z"] = zb
    meta = {"format": "pt", "segment_size": str(SEG), "num_mem_tokens": str(MEM), "d_mem": str(D_MEM)}
    save_file(exp, os.path.join(d, "expected.safetensors"), metadata=meta)
    info.update(max_logit=logits.abs().max().item(), bf16_logit_maxabs=(lb - logits).abs().max().item(),
                bf16_W_rel=rel(Wb, W), bf16_z_rel=None if z is None else rel(zb, z),
                fp64_logit_maxabs=(l64 - logits).abs().max().item(), fp64_W_rel=rel(W, W64),
                fp64_z_rel=None if z is None else rel(z, z64),
                W_shape=list(W.shape), W_mv_effect=wmv, gen_tokens=toks.tolist())
    log(f"{name}: logits {tuple(logits.shape)} max|logit| {info['max_logit']:.3f}; W_mem {tuple(W.shape)}; "
        f"bf16: logits max-abs {info['bf16_logit_maxabs']:.3e}, W rel {info['bf16_W_rel']:.3e}, "
        f"z rel {info['bf16_z_rel']}; fp32 vs fp64: logits {info['fp64_logit_maxabs']:.2e}, W rel "
        f"{info['fp64_W_rel']:.2e}, z rel {info['fp64_z_rel']}; W_mv=0 changes logits by {wmv:.3f}; "
        f"gen {toks.tolist()}")

    if name == "armt":  # the extra copies: sharded fp32 and bf16 (save_pretrained of the reference)
        model.save_pretrained(os.path.join(d, "sharded"), max_shard_size="60KB")
        sh = os.path.join(d, "sharded")
        keep_only(sh, {"config.json", "model.safetensors.index.json"} |
                  {f for f in os.listdir(sh) if f.endswith(".safetensors")})
        assert len([f for f in os.listdir(sh) if f.endswith(".safetensors")]) >= 2
        mb.save_pretrained(os.path.join(d, "bf16"))
        keep_only(os.path.join(d, "bf16"), {"config.json", "model.safetensors"})
        with safe_open(os.path.join(d, "bf16", "model.safetensors"), "pt") as f:
            assert all(f.get_slice(k).get_dtype() == "BF16" for k in f.keys())
    return info


def _segs(n):
    full, rest = divmod(n, SEG)
    return f"{full}x{SEG}" + (f" + {rest}" if rest else "")


def _flags(info):
    return ", ".join(f"{k}={json.dumps(v)}" for k, v in info["flags"].items()) or "(defaults)"


def _e(x):
    return "-" if x is None else f"{x:.2e}"


def write_readme(path, infos):
    import numpy
    import safetensors
    src = {3: "src/armt.py", "armt_sw": "src/armt_sw.py", 2: "modeling_amt/model.py", 4: "modeling_amt/inner_loop.py"}
    gen = {2: "2", 3: "3", 4: "inner"}
    rows = []
    for i in infos:
        file = src["armt_sw"] if i["kind"] == "armt_sw" else src[i["gen"]]
        shape = f'hidden {i["hidden"]}, heads {i["heads"]}, {i["layers"]} layers'
        if "error" in i:
            rows.append(f'| `{i["name"]}` | {gen[i["gen"]]} | `{file}` | {_flags(i)} | {shape} | {i["n"]} ({_segs(i["n"])}) '
                        f'| not written: the reference fails (below) | | | | | | | |')
            continue
        rows.append(f'| `{i["name"]}` | {gen[i["gen"]]} | `{file}` | {_flags(i)} | {shape} | {i["n"]} ({_segs(i["n"])}) '
                    f'| {i["W_shape"]} | {i["max_logit"]:.3f} | {_e(i["bf16_logit_maxabs"])} | {_e(i["bf16_W_rel"])} '
                    f'| {_e(i["bf16_z_rel"])} | {_e(i["fp64_logit_maxabs"])} / {_e(i["fp64_W_rel"])} '
                    f'| {i["W_mv_effect"]:.2f} | {i["gen_tokens"]} |')
    errors = [f'- `{i["name"]}`: `{i["error"]}`' for i in infos if "error" in i]
    text = f"""# ARMT variant fixtures

Written by `tools/make_variant_fixtures.py` (do not edit by hand; this README is written by the script too).
Each case is a tiny random LLaMA-based ARMT checkpoint, saved by the reference code, plus what the reference
computes from it. The reference is the public repository RodkinIvan/associative-recurrent-memory-transformer,
imported at run time from a directory outside this repository and never copied here:

| file | commit | what |
|---|---|---|
| `src/armt.py` | 3da7f482215aed7cc2236335cc688ed9c4b5b1b9 | generation 3, `ARMTForCausalLM`, model_type `armt` |
| `src/armt_sw.py` | 3da7f482215aed7cc2236335cc688ed9c4b5b1b9 | generation 3 sliding window, `ARMTSlidingWindowForCausalLM`, model_type `armt_sw` |
| `modeling_amt/model.py` | 05b553817d749acc190846d56b61f97396c76a09 | generation 2, `ARMTForCausalLM`, model_type `armt` |
| `modeling_amt/language_modeling.py` | 042b2e4b48d7b38002d2190afaf4b59a079d2af6 | generation 2 cell and wrapper |
| `modeling_amt/act_utils.py` | 1dcfb39d1f10047125bdeb9b3647258595d48b2c | ACT helpers (imported by the above) |
| `modeling_amt/inner_loop.py` | 08bcdd26fe2de21dc915a4991f3903d0d5f32b01 | inner loop, `InnerLoopARMTForCausalLM` (generation-2 config, model_type `armt`) |

Command (from the repository root; /work/ref-armt holds the six files above under the same paths):

    python3 tools/make_variant_fixtures.py --ref /work/ref-armt --out tests/data/variants

Made with torch {torch.__version__} (CPU, one thread), transformers {transformers.__version__},
safetensors {safetensors.__version__}, numpy {numpy.__version__}. Seeded (seed 1000 + case index); a re-run
writes the same tensors (only the order of `__metadata__` entries may differ). The script's docstring lists the
run-time patches (transformers 5.x compatibility and mismatches between the pinned generation-2 files; none
touches the memory math). See docs/VARIANTS-reference.md for the math each generation implements;
`python3 tools/check_variant_fixtures.py` re-computes every expected.safetensors with an independent float64
implementation of those rules (no reference code, no transformers).

## Model

LLaMA base (`base_model_config` with model_type "llama"): vocab 96, hidden 32, intermediate 64, 3 layers, 4 query
/ 2 KV heads, head_dim 8, rms_norm_eps 1e-5, rope_theta 10000 (default rope), tied embeddings. The wide cases
(`armt_gqa15`, `amt_all`, `inner_all`) use hidden 120, 15 query / 5 KV heads, head_dim 8, 2 layers. ARMT: num_mem_tokens
M = 4, d_mem 16 (d_key = 6 d_mem = 96), segment_size 8. Weights: every base matrix N(0, 0.1²), every RMSNorm
weight 1 + 0.1 N(0,1); W_mq, W_mk and the W_mb weight keep the reference's own (seeded) init; W_mv ~ N(0, 0.3²)
(the reference zero-initialises it); W_mb bias ~ N(0, 1); `memory` (and `sink`) keep the reference's own init
(gen 3: N(0, 0.02²); gen 2: randn · std(embed_tokens) for memory, randn for sink). Generation 2 builds its base
with the default attention implementation (sdpa), generation 3 with eager. The inner-loop cases' base has
`use_cache: false` (the script's patch 9: the reference's horizontal forward fails with the cache on); their
memory is N(0, 0.02²) and sink randn, the reference's own init.

## Files per case

| file | content |
|---|---|
| `config.json` | gen 3: `save_pretrained` output. gen 2: `config.save_pretrained` output plus `architectures` and `dtype`, the two keys `save_pretrained` adds (gen-2 `save_pretrained` itself fails, see the script's patch 6) |
| `model.safetensors` | F32. gen 3: `save_pretrained` (keys `memory`, `[sink]`, `model.model.embed_tokens.weight`, `model.model.layers.N.{{W_mq,W_mk,W_mv,W_mb}}.*`, `model.model.layers.N.layer.<llama layer>`, `model.model.norm.weight`; tied lm_head not stored). gen 2: `safetensors.torch.save_model` (keys `armt.memory_cell.memory`, `[armt.memory_cell.sink]`, `armt.memory_cell.layers.N.{{W_m*, layer.<llama layer>}}`, `armt.memory_cell.model.model.norm.weight`, `armt.memory_cell.model.lm_head.weight` = the tied embedding; `__metadata__` maps every dropped alias to the kept name). inner: `save_pretrained` (the generation-3 key layout, plus `sink`) |
| `expected.safetensors` | all F32, see below |
| `armt/sharded/` | the `armt` case again, `save_pretrained(max_shard_size="60KB")`: 3 shards + `model.safetensors.index.json` |
| `armt/bf16/` | the `armt` case again from the reference's BF16 model (model_dtype "bfloat16"): every tensor BF16 |

`expected.safetensors` (metadata: segment_size, num_mem_tokens, d_mem):

| tensor | shape | meaning |
|---|---|---|
| `ids` | [n] | token ids (exact F32 values) |
| `logits` | [n, 96] | reference fp32 forward over all n ids in one call, memory starting at zero (gen 3 and inner: `model(input_ids)`, horizontal mode; gen 2: `model.armt(input_ids, ...)`) |
| `W_mem` | [Lm, H, 96/H, d/H] | the associative memory after that forward, for the Lm layers that have one, in layer order; it includes the write of the last (partial) segment. gen 3 has no heads (H = 1, d_key x d_model). |
| `z` | [Lm, H, 96/H] | the normaliser; absent when use_denom is false |
| `gen_prompt` | [11] | one full segment + 3 tokens |
| `gen_tokens` | [4] | greedy tokens of the reference's own `generate` (gen 3: `model.generate(prompt, max_new_tokens=4)`; gen 2: `model.generate(prompt, mask, max_new_tokens=4, do_sample=False, eos_token_id=None, pad_token_id=0)`; inner: `model.generate(prompt, mask, max_new_tokens=4)`, a full forward over prompt + new tokens per token), which stays inside the second segment |
| `ref_bf16_logits`, `ref_bf16_W_mem`, `ref_bf16_z` | as above | the same forward run by the reference in bf16 on the same weights (gen 3: a model built with model_dtype "bfloat16", memory_dtype left default = bf16, loaded with the fp32 state_dict; gen 2 and inner: `model.to(torch.bfloat16)`), stored as F32 |

## Cases

Columns: max|logit| of the fp32 run; the reference's own bf16 run against its fp32 run (logits max-abs, W_mem
and z relative Frobenius error); fp32 against an fp64 run of the same reference (logits max-abs / W_mem relative,
not stored: it shows how well-conditioned the fp32 numbers are); max |logit change| when every W_mv is zeroed
(how much the memory path matters); the greedy tokens.

| case | gen | file | flags | base | n (segments) | W_mem shape | max\|logit\| | bf16 logits | bf16 W_mem | bf16 z | fp64: logits / W_mem | W_mv=0 | gen_tokens |
|---|---|---|---|---|---|---|---|---|---|---|---|---|---|
{chr(10).join(rows)}

Cases the reference cannot run (config.json + model.safetensors only, no expected.safetensors):
{chr(10).join(errors) if errors else "none"}

`amt_sw`, `amt_sw_sink`: generation 2's sliding-window path builds a 4-D int64 0/1 mask and hands it to the
LLaMA model; transformers 5.x passes a 4-D mask through unchanged, and sdpa (the default implementation the
generation-2 base gets) rejects an integer mask. With eager attention it would be *added* to the scores (+1/+0,
no masking at all); language_modeling.py@042b2e4 has no `invert_attn_mask` yet. `amt_act`: the ACT unit
allocates with `.cuda()` (act_utils.py), so it cannot run on CPU; the checkpoint is there so that the library
can be tested to refuse it (config `act_on: true`, extra keys `armt.memory_cell.layers.N.act.p.{{weight,bias}}`).
`inner_sw`: inner_loop.py's sliding-window path hands its DynamicCache to the decoder layer as past_key_values,
which transformers 5.25 ignores (the layer's argument is now `cache`), so the keys are not extended while the
mask is. Moving it to `cache=` (the generation-3 patch) only gets one step further: `update_past_key_values_sw`
then fails with an UnboundLocalError (`legacy`: transformers 5's DynamicCache has no `to_legacy_cache`). The
library refuses this configuration.

Sizes: the mandated shapes make every case larger than 150 KB (the 3-layer model alone is about 150 KB in
F32, `W_mem` + `ref_bf16_W_mem` another 74 KB; the wide cases are about 0.9 MB).
"""
    with open(path, "w") as f:
        f.write(text)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--ref", required=True, help="directory with src/armt.py, src/armt_sw.py, modeling_amt/*.py")
    ap.add_argument("--out", default="tests/data/variants", help="output directory (default tests/data/variants)")
    ap.add_argument("--only", nargs="*", help="case names (default: all)")
    ap.add_argument("--summary", help="write the per-case numbers as JSON here")
    args = ap.parse_args()
    torch.set_num_threads(1)
    transformers.logging.set_verbosity_error()
    log(f"torch {torch.__version__}, transformers {transformers.__version__}")
    g3 = import_gen3(args.ref)
    g2 = import_gen2(args.ref)
    il = import_inner(args.ref, g2)
    os.makedirs(args.out, exist_ok=True)
    infos = []
    for idx, case in enumerate(CASES):
        if args.only and case[0] not in args.only:
            continue
        infos.append(make_case(idx, case, g3, g2, il, args.out))
    for root, _, files in os.walk(args.out):  # safetensors writes 0600
        for f in files:
            os.chmod(os.path.join(root, f), 0o644)
    if args.summary:
        write_json(args.summary, infos)
    if not args.only:
        write_readme(os.path.join(args.out, "README.md"), infos)


if __name__ == "__main__":
    main()
