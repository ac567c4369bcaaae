#!/usr/bin/env python3
"""make_fixtures.py - writes the small reference fixtures under tests/data/ (see tests/data/README.md).

Command that made the committed files (run from the repository root):

    # $G/armt: a clone of the public repository RodkinIvan/associative-recurrent-memory-transformer
    git -C "$G/armt" show 98ea91b:modeling_amt/language_modeling.py > "$G/language_modeling.py"
    python3 tools/make_fixtures.py --ref "$G/language_modeling.py" --out tests/data

--ref is the ARMT authors' modeling_amt/language_modeling.py (git blob 9805263 at commit 98ea91b, the file the
paper's group_amt.patch applies to; the patch only adds the grouped path, so the plain math is the same), or a
checkout directory containing modeling_amt/language_modeling.py. Their code is imported from there at run time
and is never copied into this repository.

Requirements (CPU is enough): torch 2.x, transformers 5.x, safetensors, peft. Tested with torch 2.15,
transformers 5.24, safetensors 0.8, peft 0.21. Runs in a few seconds; everything is seeded, so a re-run with
the same package versions reproduces the files (up to float rounding differences between torch builds).

Run-time patches applied to the reference code (their file is not modified), needed with transformers 5.x:
  1. `import wandb` at the top of their module: if wandb is not installed, an empty stand-in module is put into
     sys.modules (their module only references wandb in a commented-out line).
  2. transformers 5.x decoder layers return the hidden-state tensor, whereas transformers 4.x returned a tuple and
     AssociativeLayerWrapper.forward reads the memory-token rows as `out[0][:, -M:]`. With a bare tensor, `out[0]`
     would be batch item 0 and `[:, -M:]` the last M *features*. We therefore (a) make each wrapped
     LlamaDecoderLayer instance return a 1-tuple (instance-level `forward` override, so no module or state_dict
     key changes), and (b) make each AssociativeLayerWrapper instance unwrap the tuple again before returning to
     LlamaModel. The reference calls the inner layer with hidden_states= as a keyword, while the transformers-5
     output-capturing hook (output_hidden_states=True is always set by the cell) reads the layer input as args[0];
     (c) a forward pre-hook on each inner layer moves that keyword into the positional slot.
     The reference's associate/update_mem math runs unchanged.
  3. The wrapper's forward calls `memory_cell.zero_mem()` at the end; to capture W_mem/z after the last segment
     we wrap the cell instance's zero_mem to snapshot the per-layer state before it is cleared.
  Nothing else. armt_ref/generate.safetensors calls the authors' AssociativeRecurrentWrapper.generate as is (it
  returns the HF generate output of the last segment).

Outputs (F32 unless noted; integer ids are stored as exact F32 values because the library's safetensors reader
accepts F32/F16/BF16 only):
  hf_llama/  config.json, model.safetensors (save_pretrained), memory.safetensors, expected.safetensors
  armt_ref/  config.json, armt_config.json, model_saved.safetensors, model_modelform.safetensors,
             expected.safetensors, generate.safetensors (greedy AssociativeRecurrentWrapper.generate)
  lora/      config.json, adapter_config.json, model.safetensors, expected.safetensors
"""

import argparse
import importlib.util
import json
import os
import sys
import types

import torch
from safetensors.torch import save_file, save_model

import transformers
from transformers import LlamaConfig, LlamaForCausalLM


def log(*a):
    print(*a, flush=True)


# --------------------------------------------------------------------------------------------------------------
# Reference import + run-time patches
# --------------------------------------------------------------------------------------------------------------

def import_reference(path):
    if os.path.isdir(path):
        path = os.path.join(path, "modeling_amt", "language_modeling.py")
    if not os.path.isfile(path):
        sys.exit(f"reference file not found: {path}")
    try:
        import wandb  # noqa: F401
    except ImportError:  # patch 1
        sys.modules["wandb"] = types.ModuleType("wandb")
    spec = importlib.util.spec_from_file_location("armt_reference_lm", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def patch_tuple_outputs(ref, cell):
    """Patch 2: see the module docstring."""
    for w in cell.layers:
        assert isinstance(w, ref.AssociativeLayerWrapper)
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

        # The reference calls self.layer(hidden_states=..., **kw) by keyword; the transformers-5 output-capturing
        # forward hook on LlamaDecoderLayer reads the layer input as args[0]. Move it to the positional slot.
        def positional_hidden(module, args, kwargs):
            if not args and "hidden_states" in kwargs:
                kwargs = dict(kwargs)
                args = (kwargs.pop("hidden_states"),)
            return args, kwargs

        inner.register_forward_pre_hook(positional_hidden, with_kwargs=True)


def capture_memory_on_zero(cell, store):
    """Patch 3: snapshot (W_mem, z) of every layer each time zero_mem is called, before it clears them."""
    orig = cell.zero_mem

    def zero_mem():
        store["W_mem"] = torch.stack([l.W_mem[0].detach().clone() for l in cell.layers])
        store["z"] = torch.stack([l.z[0].detach().clone() for l in cell.layers])
        store["first_seg"] = [bool(l.first_seg) for l in cell.layers]
        orig()

    cell.zero_mem = zero_mem


# --------------------------------------------------------------------------------------------------------------
# Helpers
# --------------------------------------------------------------------------------------------------------------

def perturb_norms(model, gen):
    """RMSNorm weights are ones at init; perturb them so a test notices a swapped or missing norm weight."""
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.endswith("norm.weight"):
                p.copy_(1.0 + 0.1 * torch.randn(p.shape, generator=gen))


def f32(t):
    return t.detach().to(torch.float32).contiguous()


def write_json(path, obj):
    with open(path, "w") as f:
        json.dump(obj, f, indent=2, sort_keys=True)
        f.write("\n")


def hub_style_config(cfg):
    """config.json in the transformers 4.x / hub style (rope_theta + rope_scaling at top level), as in the published
    meta-llama/Llama-3.2-1B config.json. transformers 5.x itself writes "rope_parameters" instead."""
    d = json.loads(cfg.to_json_string())
    rp = d.pop("rope_parameters")
    d["rope_theta"] = rp.pop("rope_theta")
    d["rope_scaling"] = rp
    d.pop("transformers_version", None)
    return d


def rope_llama3(factor, orig):
    return {"rope_type": "llama3", "factor": factor, "low_freq_factor": 1.0, "high_freq_factor": 4.0,
            "original_max_position_embeddings": orig}


# --------------------------------------------------------------------------------------------------------------
# a) plain HF LLaMA
# --------------------------------------------------------------------------------------------------------------

def make_hf_llama(out):
    d = os.path.join(out, "hf_llama")
    os.makedirs(d, exist_ok=True)
    torch.manual_seed(1234)
    gen = torch.Generator().manual_seed(1234)
    cfg = LlamaConfig(hidden_size=64, num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2,
                      head_dim=16, intermediate_size=96, vocab_size=128, rms_norm_eps=1e-5, rope_theta=10000.0,
                      rope_scaling=rope_llama3(8.0, 64), tie_word_embeddings=False, max_position_embeddings=256,
                      initializer_range=0.08, attn_implementation="eager")
    model = LlamaForCausalLM(cfg).eval()
    perturb_norms(model, gen)
    model.save_pretrained(d)  # transformers-5 config.json (rope_parameters) + model.safetensors
    for extra in ("generation_config.json",):
        p = os.path.join(d, extra)
        if os.path.exists(p):
            os.remove(p)

    M, L = 4, 12
    E = model.get_input_embeddings().weight
    mem = torch.randn(M, cfg.hidden_size, generator=gen) * E.detach().std()
    save_file({"memory_cell.memory": f32(mem)}, os.path.join(d, "memory.safetensors"), metadata={"format": "pt"})

    ids = torch.randint(0, cfg.vocab_size, (L,), generator=gen)
    with torch.no_grad():
        x = torch.cat([E[ids], mem], dim=0)[None]
        logits = model(inputs_embeds=x).logits[0]
        m64 = LlamaForCausalLM(cfg).eval()
        m64.load_state_dict(model.state_dict())
        m64 = m64.double()
        logits64 = m64(inputs_embeds=x.double()).logits[0]
    log(f"hf_llama: logits {tuple(logits.shape)}, max|fp32-fp64| = {(logits.double() - logits64).abs().max():.3e}, "
        f"max|logit| = {logits64.abs().max():.3f}")
    save_file({"ids": f32(ids.float()), "logits": f32(logits), "logits64": f32(logits64)},
              os.path.join(d, "expected.safetensors"), metadata={"format": "pt", "segment_size": str(L)})


# --------------------------------------------------------------------------------------------------------------
# b) ARMT reference wrapper
# --------------------------------------------------------------------------------------------------------------

ARMT_BASE = dict(hidden_size=32, num_hidden_layers=3, num_attention_heads=4, num_key_value_heads=2, head_dim=8,
                 intermediate_size=64, vocab_size=96, rms_norm_eps=1e-5, rope_theta=10000.0,
                 rope_scaling=rope_llama3(8.0, 16), tie_word_embeddings=True, max_position_embeddings=64,
                 initializer_range=0.1, attn_implementation="eager")


def tiny_base(seed):
    torch.manual_seed(seed)
    gen = torch.Generator().manual_seed(seed)
    cfg = LlamaConfig(**ARMT_BASE)
    model = LlamaForCausalLM(cfg).eval()
    perturb_norms(model, gen)
    return cfg, model, gen


def run_reference(ref, wrapper, cell, ids):
    store = {}
    capture_memory_on_zero(cell, store)
    with torch.no_grad():
        out = wrapper(input_ids=ids[None])
    cell.zero_mem = type(cell).zero_mem.__get__(cell)  # undo patch 3 for this instance
    return out.logits[0], store


def run_generate(wrapper, cell, ids, max_new):
    """The authors' AssociativeRecurrentWrapper.generate, greedy: the prompt's segments but the last go through
    the cell's forward (memory read + written), the last (full or partial) through memory_cell.generate (no memory
    tokens, generate_mode: read only) = HF generate on inputs_embeds with a KV cache. eos_token_id=None overrides
    the base's generation_config (eos 2), so it always runs max_new steps."""
    with torch.no_grad():
        g = wrapper.generate(ids[None], torch.ones(1, ids.numel(), dtype=torch.long), max_new_tokens=max_new,
                             do_sample=False, eos_token_id=None, pad_token_id=0, output_logits=True,
                             return_dict_in_generate=True)
    tokens = g.sequences[0]  # generating from inputs_embeds: only the new tokens come back
    logits = torch.cat(g.logits, dim=0)  # raw logits of each step, [max_new, vocab]
    assert tokens.shape == (max_new,) and logits.shape[0] == max_new
    assert torch.equal(logits.argmax(dim=-1), tokens)  # greedy, no logits processors
    return tokens, logits


def run_tail_without_memory(cell, ids, seg, max_new):
    """The same tail through the cell's generate on a zeroed memory (first_seg everywhere: no read), i.e. plain
    LLaMA greedy decoding of the tail alone. Only to show that the memory changes the generated tokens."""
    tail = ids[(ids.numel() - 1) // seg * seg:]
    cell.zero_mem()
    with torch.no_grad():
        g = cell.generate(tail[None], torch.ones(1, tail.numel(), dtype=torch.long), zero_mem=True,
                          max_new_tokens=max_new, do_sample=False, eos_token_id=None, pad_token_id=0)
    cell.zero_mem()
    return g[0]


GEN_PROMPT_SEED = 28  # chosen (seeds 0..39 scanned) so that the memory changes the greedy tokens of both prompts
GEN_MAX_NEW = 6


def make_armt_generate(wrapper, cell, cfg, d, L):
    gen = torch.Generator().manual_seed(GEN_PROMPT_SEED)
    prompts = {"a": torch.randint(0, cfg.vocab_size, (2 * L + 4,), generator=gen),  # 2 full segments + 4
               "b": torch.randint(0, cfg.vocab_size, (2 * L,), generator=gen)}      # exact multiple of L
    res = {}
    for k, ids in prompts.items():
        res[k] = run_generate(wrapper, cell, ids, GEN_MAX_NEW)
        res[k + "_nomem"] = run_tail_without_memory(cell, ids, L, GEN_MAX_NEW)

    prev = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    try:
        wrapper.double()
        for k, ids in prompts.items():
            res[k + "64"] = run_generate(wrapper, cell, ids, GEN_MAX_NEW)
    finally:
        torch.set_default_dtype(prev)
        wrapper.float()
        cell.zero_mem()

    tensors = {}
    for k, ids in prompts.items():
        tok, lg = res[k]
        tok64, lg64 = res[k + "64"]
        assert torch.equal(tok, tok64), "fp32 and fp64 greedy tokens differ"
        top2 = lg64.topk(2, dim=-1).values
        margin = (top2[:, 0] - top2[:, 1]).min().item()
        log(f"armt_ref generate {k}: prompt {ids.numel()} tokens, tail {ids.numel() - (ids.numel() - 1) // L * L}; "
            f"tokens {tok.tolist()}; without memory {res[k + '_nomem'].tolist()}; max|logits fp32-fp64| "
            f"{(lg.double() - lg64).abs().max():.3e}; min top1-top2 margin {margin:.3e}")
        tensors.update({f"prompt_{k}": f32(ids.float()), f"tokens_{k}": f32(tok.float()),
                        f"logits_{k}": f32(lg), f"logits64_{k}": f32(lg64),
                        f"tokens_nomem_{k}": f32(res[k + "_nomem"].float())})
    save_file(tensors, os.path.join(d, "generate.safetensors"),
              metadata={"format": "pt", "segment_size": str(L), "max_new_tokens": str(GEN_MAX_NEW)})


def make_armt_ref(ref, out):
    d = os.path.join(out, "armt_ref")
    os.makedirs(d, exist_ok=True)
    M, D_MEM, L = 4, 8, 8
    cfg, base, gen = tiny_base(4321)
    cell = ref.AssociativeMemoryCell(base, num_mem_tokens=M, d_mem=D_MEM, layers_attr="model.layers",
                                     wrap_pos=False, correction=True)
    wrapper = ref.AssociativeRecurrentWrapper(cell, segment_size=L, k2=-1).eval()
    with torch.no_grad():
        for w in cell.layers:
            torch.nn.init.normal_(w.W_mv.weight, mean=0.0, std=0.05, generator=gen)
    patch_tuple_outputs(ref, cell)

    # save_model keeps one name per shared tensor (memory_cell.layers.*, lm_head only): see docs/MATH.md §5.1.
    save_model(wrapper, os.path.join(d, "model_saved.safetensors"), metadata={"format": "pt"})
    sd = wrapper.state_dict()
    modelform = {k: f32(v).clone() for k, v in sd.items()
                 if not k.startswith("memory_cell.layers.") and k != "memory_cell.model.lm_head.weight"}
    assert "memory_cell.model.model.embed_tokens.weight" in modelform
    save_file(modelform, os.path.join(d, "model_modelform.safetensors"), metadata={"format": "pt"})

    write_json(os.path.join(d, "config.json"), hub_style_config(cfg))
    write_json(os.path.join(d, "armt_config.json"),
               {"num_mem_tokens": M, "d_mem": D_MEM, "segment_size": L, "correction": True})

    ids = torch.randint(0, cfg.vocab_size, (3 * L + 6,), generator=gen)
    logits, st = run_reference(ref, wrapper, cell, ids)
    assert not any(st["first_seg"]), "memory was not written"

    # float64 run of the same reference code (the memory state is created with the default dtype).
    prev = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    try:
        wrapper.double()
        cell.zero_mem()
        logits64, st64 = run_reference(ref, wrapper, cell, ids)
    finally:
        torch.set_default_dtype(prev)
        wrapper.float()
    assert st64["W_mem"].dtype == torch.float64

    diff = (logits.double() - logits64).abs().max().item()
    scale = logits64.abs().max().item()
    wd = (st["W_mem"].double() - st64["W_mem"]).abs().max().item()
    zd = (st["z"].double() - st64["z"]).abs().max().item()
    log(f"armt_ref: logits {tuple(logits.shape)}, max|fp32-fp64| = {diff:.3e} (max|logit| {scale:.3f}); "
        f"W_mem max|diff| {wd:.3e} (max {st64['W_mem'].abs().max():.3e}); z max|diff| {zd:.3e} "
        f"(max {st64['z'].abs().max():.3e})")
    save_file({"ids": f32(ids.float()), "logits": f32(logits), "logits64": f32(logits64),
               "W_mem": f32(st["W_mem"]), "z": f32(st["z"]), "W_mem64": f32(st64["W_mem"]), "z64": f32(st64["z"])},
              os.path.join(d, "expected.safetensors"),
              metadata={"format": "pt", "segment_size": str(L), "num_mem_tokens": str(M), "d_mem": str(D_MEM)})

    make_armt_generate(wrapper, cell, cfg, d, L)


# --------------------------------------------------------------------------------------------------------------
# c) PEFT LoRA
# --------------------------------------------------------------------------------------------------------------

def make_lora(out):
    from peft import LoraConfig, get_peft_model

    d = os.path.join(out, "lora")
    os.makedirs(d, exist_ok=True)
    R, ALPHA = 4, 16
    cfg, base, gen = tiny_base(4321)  # the same base LLaMA as armt_ref (before wrapping)
    lcfg = LoraConfig(r=R, lora_alpha=ALPHA, target_modules=["q_proj", "v_proj"], lora_dropout=0.0, bias="none")
    pm = get_peft_model(base, lcfg).eval()
    with torch.no_grad():
        for name, p in pm.named_parameters():
            if "lora_B" in name:
                p.copy_(0.1 * torch.randn(p.shape, generator=gen))
    save_model(pm, os.path.join(d, "model.safetensors"), metadata={"format": "pt"})
    write_json(os.path.join(d, "config.json"), json.loads(cfg.to_json_string()))
    write_json(os.path.join(d, "adapter_config.json"),
               {"peft_type": "LORA", "r": R, "lora_alpha": ALPHA, "target_modules": ["q_proj", "v_proj"],
                "lora_dropout": 0.0, "bias": "none", "fan_in_fan_out": False, "use_rslora": False})

    ids = torch.randint(0, cfg.vocab_size, (10,), generator=gen)
    with torch.no_grad():
        logits_peft = pm(input_ids=ids[None]).logits[0]
        merged = pm.merge_and_unload().eval()
        logits = merged(input_ids=ids[None]).logits[0]
    exp = {"ids": f32(ids.float()), "logits": f32(logits)}
    for l in range(2):
        a = merged.model.layers[l].self_attn
        exp[f"layers.{l}.q_proj"] = f32(a.q_proj.weight)
        exp[f"layers.{l}.v_proj"] = f32(a.v_proj.weight)
    log(f"lora: merged logits {tuple(logits.shape)}, max|merged - unmerged peft| = "
        f"{(logits - logits_peft).abs().max():.3e}")
    save_file(exp, os.path.join(d, "expected.safetensors"),
              metadata={"format": "pt", "scale": str(ALPHA / R)})


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--ref", required=True, help="language_modeling.py of the ARMT reference, or its checkout")
    ap.add_argument("--out", default="tests/data", help="output directory (default tests/data)")
    args = ap.parse_args()
    torch.set_num_threads(1)  # deterministic reductions
    log(f"torch {torch.__version__}, transformers {transformers.__version__}")
    ref = import_reference(args.ref)
    make_hf_llama(args.out)
    make_armt_ref(ref, args.out)
    make_lora(args.out)
    for root, _, files in os.walk(args.out):  # safetensors writes 0600; make the fixtures world-readable
        for f in files:
            os.chmod(os.path.join(root, f), 0o644)


if __name__ == "__main__":
    main()
