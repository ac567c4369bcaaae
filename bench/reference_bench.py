#!/usr/bin/env python3
"""reference_bench.py - times the ARMT authors' PyTorch code on the shapes of libarmt's llama-3.2-1b preset, for
side-by-side runs with bench/clbench (bench/reference_side_by_side.sh).

Usage (from the project root; bench/fetch_reference.sh puts the authors' code into .ref/ first):

    python3 bench/reference_bench.py                                # default workloads on CUDA
    python3 bench/reference_bench.py --workloads bf16:131072:diagonal,fp32:32768:sequential --reps 3
    python3 bench/reference_bench.py --device cpu --tiny --check    # harness check (CPU, seconds)
    python3 bench/reference_bench.py --device cpu --tiny            # tiny timing run
    python3 bench/reference_bench.py --help

A workload is PRECISION:TOKENS:SCHEDULE, comma-separated:
  diagonal    the paper's executor, svtdanny/diagonal-batching v0.0.1-paper: fast_executor.FastGroupedArmtExecutor
              on the grouped layer of llama1b_grouping.make_grouped_sliced_layer_from_single_layer ("fast latency
              version" of usage_llama1b.ipynb). TOKENS must be a multiple of the segment (their executor stacks
              equal segments).
  sequential  the authors' ARMT: AssociativeRecurrentWrapper(AssociativeMemoryCell) of
              RodkinIvan/associative-recurrent-memory-transformer modeling_amt/language_modeling.py (blob 9805263)
              with the paper's group_amt.patch, built by their llama1b_grouping.wrap_model_with_armt.
  full        transformers' LlamaModel (attn_implementation="sdpa") over all TOKENS: the base model alone.
PRECISION bf16 or fp32 sets the weights, the activations and the default dtype (the authors' code creates its
memory state W_mem, z with the default dtype: bf16 in the paper's runs, fp32 here for fp32 rows).

Model: random weights (no downloads) with the LLaMA-3.2-1B configuration (hidden 2048, 16 layers, 32 heads,
8 KV heads, head_dim 64, intermediate 8192, vocab 128256, rms eps 1e-5, rope_theta 500000 with llama3 scaling
factor 32 / low 1 / high 4 / original 8192, tied embeddings) and libarmt's preset ARMT settings (segment 1024
input tokens + 128 memory tokens, d_mem 64, nu 3 - hard-coded in their DPFP -, correction on). --tiny uses
libarmt's `tiny` preset instead (hidden 64, 3 layers, 4 heads, 2 KV heads, head_dim 16, intermediate 128,
vocab 256, segment 16 + 4 memory tokens, d_mem 8). The output of every row is the final-normed hidden states
(lm_head replaced by Identity as in the authors' usage_llama1b.ipynb; no logits). The sequential wrapper also
returns every layer's hidden states concatenated over segments (their AssociativeMemoryCell always asks the
model for output_hidden_states); that is their code's cost and is timed with it.

Timing: one warm-up call, then --reps calls (default 3), each between torch.cuda.synchronize() and
time.perf_counter(); median, min, max, tokens/s. TF32 off (cuBLAS and cuDNN), torch.no_grad(). Peak memory:
torch.cuda.max_memory_allocated over warm-up and timed calls, reset after the model is built (so weights count).
Models are built once per row and freed after it.

Run-time patches of the authors' code (their files in .ref/ are not modified; nothing of theirs is in bench/):
  1. CUTLASS grouped GEMM -> torch.bmm. Their linear_grouped_forward.group_gemm_jit JIT-compiles a CUTLASS
     grouped GEMM (nvidia-cutlass 3.6) that the grouped layer's q/k/v/o, gate/up/down, W_mq/W_mk/W_mv
     projections call as gemm_fn.run(As, Bs) -> one (G, M, N) tensor. We replace group_gemm_jit and the cached
     gemm_fn with BmmGroupedGemm below: the same product, X_j @ W_{start+j} for every group element j, as one
     torch.bmm (fp32 accumulation; bf16 output for bf16 rows, like CUTLASS's kernel). The per-layer transposed
     weights that get_grouped_states makes are re-seated as views of one (layers, K, N) tensor per projection,
     so a sliced call is a view, not a copy. `import cutlass` and their cutlass_emit_pytorch_mocked module get
     empty stand-ins when nvidia-cutlass is not installed; nothing calls them.
  2. `modeling_amt.language_modeling_old` (what llama1b_grouping imports; not published, ARMT.md U1) is an alias
     of the patched modeling_amt/language_modeling.py.
  3. `import wandb` in their module: an empty stand-in module when wandb is not installed (only a commented
     line uses it).
  4. transformers 5.x decoder layers return a tensor; the ARMT code reads `out[0][:, -M:]` (4.x returned a
     tuple). For the sequential wrapper each wrapped LlamaDecoderLayer instance returns a 1-tuple, each
     AssociativeLayerWrapper instance unwraps it again, and a forward pre-hook passes hidden_states
     positionally (transformers 5's output capture reads args[0]). Same as tools/make_fixtures.py. The diagonal
     executor runs its grouped layer with generate_mode on and needs none of this.

--check (tiny shapes, CPU, fp32): the diagonal executor and the sequential wrapper, built with the same seed
(same weights) and a non-zero W_mv (--wmv-std, so the memory path is active), must give the same hidden states
within --check-tol (default 1e-5) relative to max|sequential|, and the memory must change the outputs (against
the same model with W_mv = 0); exit status 1 otherwise. The tiny model uses initializer_range 0.2 so that
|phi(k)|^2 >> 1e-5 (about 1e2 here): the paper's executor writes the first-segment cell of the last layer with
gamma = clip(1 - 1e-5/(|phi(k)|^2 + 1e-5)) instead of 1 (ARMT.md §7.3, U6). With 0.1, |phi(k)|^2 is 5e-3 and
that approximation alone makes the schedules differ by 2e-5 (W_mv std 0.05); with 0.2 they agree bit for bit
on this CPU.

Exit status: 0 when every row ran (rows that run out of device memory count as "does not fit"), 1 when a row
failed or --check found a mismatch, 2 on a usage error.
"""

import argparse
import copy
import gc
import importlib
import importlib.machinery
import math
import os
import platform
import statistics
import sys
import time
import types

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

LLAMA3_ROPE = dict(rope_type="llama3", factor=32.0, low_freq_factor=1.0, high_freq_factor=4.0,
                   original_max_position_embeddings=8192)

# meta-llama/Llama-3.2-1B (ARMT.md §1) and libarmt's llama-3.2-1b preset's ARMT settings (lib/io/armt_config.c).
LLAMA_1B = dict(hidden_size=2048, intermediate_size=8192, num_hidden_layers=16, num_attention_heads=32,
                num_key_value_heads=8, head_dim=64, vocab_size=128256, rms_norm_eps=1e-5, rope_theta=500000.0,
                rope_scaling=LLAMA3_ROPE, tie_word_embeddings=True, max_position_embeddings=131072,
                hidden_act="silu", attention_bias=False, mlp_bias=False)
ARMT_1B = dict(segment_size=1024, num_mem_tokens=128, d_mem=64)

# libarmt's `tiny` preset (3 layers, so the diagonal schedule fills, runs full and drains).
LLAMA_TINY = dict(hidden_size=64, intermediate_size=128, num_hidden_layers=3, num_attention_heads=4,
                  num_key_value_heads=2, head_dim=16, vocab_size=256, rms_norm_eps=1e-5, rope_theta=500000.0,
                  rope_scaling=LLAMA3_ROPE, tie_word_embeddings=True, max_position_embeddings=131072,
                  hidden_act="silu", attention_bias=False, mlp_bias=False, initializer_range=0.2)
ARMT_TINY = dict(segment_size=16, num_mem_tokens=4, d_mem=8)

SCHEDULES = ("diagonal", "sequential", "full")
PRECISIONS = ("bf16", "fp32")
DEFAULT_WORKLOADS = ("bf16:131072:diagonal,bf16:131072:sequential,bf16:131072:full,"
                     "fp32:32768:diagonal,fp32:32768:sequential,fp32:32768:full")
DEFAULT_TINY_WORKLOADS = ("fp32:128:diagonal,fp32:128:sequential,fp32:128:full,"
                          "bf16:128:diagonal,bf16:128:sequential,bf16:128:full")

torch = None  # imported in main() so that --help works without torch


def log(args, *msg):
    if not args.quiet:
        print(*msg, file=sys.stderr, flush=True)


# ------------------------------------------------------------------------------------------------------------
# Command line
# ------------------------------------------------------------------------------------------------------------

def parse_args(argv):
    p = argparse.ArgumentParser(
        description="Time the ARMT authors' PyTorch code (diagonal executor, sequential wrapper) and HF "
                    "full-attention LLaMA on libarmt's llama-3.2-1b shapes; prints a Markdown table.",
        epilog="Workloads: PRECISION:TOKENS:SCHEDULE with PRECISION bf16|fp32 and SCHEDULE "
               "diagonal|sequential|full, e.g. bf16:131072:diagonal,fp32:32768:full. The module docstring "
               "(head -60 bench/reference_bench.py) describes the rows, the timing and the run-time patches.",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--workloads", help="comma-separated PRECISION:TOKENS:SCHEDULE (default: bf16 131072 and "
                   "fp32 32768, each diagonal,sequential,full; with --tiny: fp32 and bf16 at 128 tokens)")
    p.add_argument("--reps", type=int, default=3, help="timed calls per row (default 3)")
    p.add_argument("--warmup", type=int, default=1, help="untimed calls before them (default 1)")
    p.add_argument("--device", default=None, help="torch device (default: cuda when available)")
    p.add_argument("--tiny", action="store_true", help="libarmt's tiny preset shapes instead of LLaMA-3.2-1B")
    p.add_argument("--segment", type=int, help="override the segment size (input tokens per segment)")
    p.add_argument("--mem", type=int, help="override the number of memory tokens")
    p.add_argument("--seed", type=int, default=0, help="seed of weights and token ids (default 0)")
    p.add_argument("--wmv-std", type=float, default=None,
                   help="std of W_mv (default 0 as the reference: the memory path is inert; --check: 0.05)")
    p.add_argument("--ref", default=os.path.join(ROOT, ".ref"),
                   help="directory of the fetched reference code (default: .ref in the project root)")
    p.add_argument("--check", action="store_true",
                   help="check that the diagonal executor equals the sequential wrapper (tiny fp32), then exit")
    p.add_argument("--check-tokens", type=int, default=128, help="tokens of --check (default 128: 8 segments)")
    p.add_argument("--check-tol", type=float, default=1e-5,
                   help="largest max|diag-seq|/max|seq| --check accepts (default 1e-5)")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress on stderr")
    args = p.parse_args(argv)
    if args.reps < 1 or args.warmup < 0:
        p.error("--reps must be >= 1 and --warmup >= 0")
    try:
        args.workloads = parse_workloads(args.workloads or (DEFAULT_TINY_WORKLOADS if args.tiny
                                                            else DEFAULT_WORKLOADS))
    except ValueError as e:
        p.error(str(e))
    return args


def parse_workloads(text):
    """'bf16:131072:diagonal,...' -> [(precision, tokens, schedule), ...]"""
    out = []
    for item in filter(None, (s.strip() for s in text.split(","))):
        parts = item.split(":")
        if len(parts) != 3 or parts[0] not in PRECISIONS or parts[2] not in SCHEDULES or not parts[1].isdigit():
            raise ValueError(f"bad workload '{item}': want PRECISION:TOKENS:SCHEDULE, PRECISION in "
                             f"{'|'.join(PRECISIONS)}, SCHEDULE in {'|'.join(SCHEDULES)}")
        out.append((parts[0], int(parts[1]), parts[2]))
    if not out:
        raise ValueError("no workloads")
    return out


def shapes(args):
    """(LlamaConfig kwargs, ARMT kwargs) for this run."""
    dims, armt = (dict(LLAMA_TINY), dict(ARMT_TINY)) if args.tiny else (dict(LLAMA_1B), dict(ARMT_1B))
    if args.segment:
        armt["segment_size"] = args.segment
    if args.mem:
        armt["num_mem_tokens"] = args.mem
    return dims, armt


# ------------------------------------------------------------------------------------------------------------
# torch settings
# ------------------------------------------------------------------------------------------------------------

def set_precision_flags():
    """TF32 off for cuBLAS and cuDNN, through whichever API this torch has (2.9+ has fp32_precision)."""
    m = torch.backends.cuda.matmul
    if hasattr(m, "fp32_precision"):
        m.fp32_precision = "ieee"
        torch.backends.cudnn.fp32_precision = "ieee"
    else:
        m.allow_tf32 = False
        torch.backends.cudnn.allow_tf32 = False
    torch.set_grad_enabled(False)


def precision_flags_text():
    m = torch.backends.cuda.matmul
    if hasattr(m, "fp32_precision"):
        tf32 = f"cuda.matmul.fp32_precision={m.fp32_precision}, cudnn.fp32_precision=" \
               f"{torch.backends.cudnn.fp32_precision}"
    else:
        tf32 = f"cuda.matmul.allow_tf32={m.allow_tf32}, cudnn.allow_tf32={torch.backends.cudnn.allow_tf32}"
    bf16 = getattr(m, "allow_bf16_reduced_precision_reduction", "n/a")
    return f"{tf32}, allow_bf16_reduced_precision_reduction={bf16}"


def quiet_library_warnings():
    """transformers 5 warns that the ARMT code passes past_key_values (renamed cache) on every segment."""
    import warnings
    warnings.filterwarnings("ignore", message=".*past_key_values.*")
    try:
        import transformers.utils.logging as tlog
        tlog.set_verbosity_error()
    except ImportError:
        pass


def dtype_of(precision):
    return {"bf16": torch.bfloat16, "fp32": torch.float32}[precision]


def sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def free_memory(device):
    gc.collect()
    if device.type == "cuda":
        torch.cuda.empty_cache()


# ------------------------------------------------------------------------------------------------------------
# The authors' code: import with stand-ins, and the grouped-GEMM patch
# ------------------------------------------------------------------------------------------------------------

class BmmGroupedGemm:
    """Stands in for the JIT-compiled CUTLASS grouped GEMM of linear_grouped_forward.group_gemm_jit:
    run(As, Bs) returns one (G, M, N) tensor with [j] = As[j] @ Bs[j], computed as one torch.bmm."""

    def __init__(self):
        self.where = {}  # data_ptr of a registered weight -> (stacked weights, index)
        self.calls = 0
        self.copies = 0  # calls whose operands were not views of one tensor (stacked on the fly)

    def register(self, weights):
        """weights: the per-layer (K, N) list one grouped projection closes over. Re-seat each entry as a view
        of one (layers, K, N) tensor (same values), so that the slice a call receives is a view of it."""
        stack = torch.stack([w.data for w in weights])
        for i, w in enumerate(weights):
            w.data = stack[i]
            self.where[w.data_ptr()] = (stack, i)

    def run(self, As, Bs):
        self.calls += 1
        a = self._batched_a(As)
        b = self._batched_b(Bs)
        return torch.bmm(a, b)

    def _batched_a(self, As):
        """As are the unbind(0) views of one contiguous tensor: view them as (G, M, K) without a copy."""
        a0 = As[0]
        step = a0.numel()
        if a0.is_contiguous() and all(a.shape == a0.shape and a.is_contiguous() and
                                      a.data_ptr() == a0.data_ptr() + i * step * a0.element_size()
                                      for i, a in enumerate(As)):
            return a0.as_strided((len(As),) + tuple(a0.shape), (step,) + tuple(a0.stride()),
                                 a0.storage_offset())
        self.copies += 1
        return torch.stack(As)

    def _batched_b(self, Bs):
        """Bs are consecutive entries of a registered list: their slice of the stacked tensor, no copy."""
        hits = [self.where.get(b.data_ptr()) for b in Bs]
        if hits[0] is not None:
            stack, i0 = hits[0]
            if all(h is not None and h[0] is stack and h[1] == i0 + j for j, h in enumerate(hits)):
                return stack[i0:i0 + len(Bs)]
        self.copies += 1
        return torch.stack(list(Bs))

    def reset(self):
        """Forget the registered weights (a new model is being built)."""
        self.where = {}


def read_commits(ref):
    """key=value lines of .ref/COMMITS.txt (written by bench/fetch_reference.sh)."""
    path = os.path.join(ref, "COMMITS.txt")
    out = {}
    if os.path.isfile(path):
        with open(path) as f:
            for line in f:
                if "=" in line and not line.startswith("#"):
                    k, v = line.rstrip("\n").split("=", 1)
                    out[k] = v
    return out


def install_stand_ins():
    """Empty modules for wandb and (when not installed) cutlass; the mocked CUTLASS emitter is never used.
    accelerate (imported by transformers' generation code) asks importlib whether wandb exists: it is imported
    first, while wandb is truly absent, and each stand-in carries a module spec, so that a later find_spec
    on it answers instead of raising 'wandb.__spec__ is None' (seen on the GPU image of 2026-12-07)."""
    for pre in ("accelerate", "transformers.generation.utils"):
        try:
            importlib.import_module(pre)
        except ImportError:
            pass
    for name in ("wandb", "cutlass"):
        try:
            __import__(name)
        except ImportError:
            mod = types.ModuleType(name)
            mod.__spec__ = importlib.machinery.ModuleSpec(name, None)
            sys.modules[name] = mod
    sys.modules["grouped_batching.cutlass_emit_pytorch_mocked"] = types.ModuleType(
        "grouped_batching.cutlass_emit_pytorch_mocked")


def import_reference(ref):
    """Import the authors' modules from REF (see bench/fetch_reference.sh for the layout); returns a namespace
    with lm (their language_modeling), grouping (llama1b_grouping), fe (fast_executor), lgf
    (linear_grouped_forward) and gemm (the BmmGroupedGemm that replaced CUTLASS)."""
    db = os.path.join(ref, "diagonal-batching")
    armt = os.path.join(ref, "armt")
    need = [os.path.join(db, "grouped_batching", "fast_executor.py"),
            os.path.join(armt, "modeling_amt", "language_modeling.py")]
    missing = [p for p in need if not os.path.isfile(p)]
    if missing:
        sys.exit(f"reference code missing ({', '.join(missing)}): run bench/fetch_reference.sh, or pass --ref")
    for d in (armt, db):
        if d not in sys.path:
            sys.path.insert(0, d)
    install_stand_ins()
    import importlib
    lm = importlib.import_module("modeling_amt.language_modeling")
    sys.modules["modeling_amt.language_modeling_old"] = lm  # patch 2
    lgf = importlib.import_module("grouped_batching.linear_grouped_forward")
    gemm = BmmGroupedGemm()
    lgf.group_gemm_jit = lambda As, Bs, *a, **k: gemm  # patch 1: no CUTLASS JIT ...
    lgf.gemm_fn = gemm                                  # ... and the cached kernel is ours from the start
    grouping = importlib.import_module("grouped_batching.llama1b_grouping")
    fe = importlib.import_module("grouped_batching.fast_executor")
    return types.SimpleNamespace(lm=lm, lgf=lgf, gemm=gemm, grouping=grouping, fe=fe)


# ------------------------------------------------------------------------------------------------------------
# Models
# ------------------------------------------------------------------------------------------------------------

def llama3_inv_freq(dims):
    """llama3 inv_freq (transformers' _compute_llama3_parameters, ARMT.md §4), float64, for a self-check."""
    r = dims["rope_scaling"]
    hd = dims["head_dim"]
    inv = [dims["rope_theta"] ** (-2.0 * i / hd) for i in range(hd // 2)]
    lo = r["original_max_position_embeddings"] / r["low_freq_factor"]
    hi = r["original_max_position_embeddings"] / r["high_freq_factor"]
    out = []
    for f in inv:
        wl = 2 * math.pi / f
        if wl < hi:
            out.append(f)
        elif wl > lo:
            out.append(f / r["factor"])
        else:
            s = (r["original_max_position_embeddings"] / wl - r["low_freq_factor"]) / \
                (r["high_freq_factor"] - r["low_freq_factor"])
            out.append((1 - s) * f / r["factor"] + s * f)
    return torch.tensor(out, dtype=torch.float64)


def make_config(dims):
    """LlamaConfig from a dict, sdpa attention. transformers 4.x takes rope_theta + rope_scaling; 5.x maps them
    to rope_parameters. If the llama3 scaling did not arrive either way, the 5.x form is passed directly."""
    from transformers import LlamaConfig

    def llama3(cfg):
        rope = getattr(cfg, "rope_parameters", None) or getattr(cfg, "rope_scaling", None) or {}
        return isinstance(rope, dict) and rope.get("rope_type", rope.get("type")) == "llama3"

    try:
        cfg = LlamaConfig(**dims, attn_implementation="sdpa")
    except (TypeError, ValueError):
        cfg = None
    if cfg is None or not llama3(cfg):
        d = dict(dims)
        rope = dict(d.pop("rope_scaling"), rope_theta=d.pop("rope_theta"))
        cfg = LlamaConfig(**d, rope_parameters=rope, attn_implementation="sdpa")
    cfg._attn_implementation = "sdpa"
    return cfg


def check_rope(model, dims):
    """The model's rotary inv_freq must be llama3's (guards against a transformers version ignoring the
    scaling dict)."""
    rot = getattr(getattr(model, "model", model), "rotary_emb", None)
    inv = getattr(rot, "inv_freq", None)
    if inv is None:
        return
    want = llama3_inv_freq(dims)
    got = inv.detach().double().cpu()
    tol = 1e-6 if inv.dtype == torch.float32 else 1e-2
    if got.shape != want.shape or not torch.allclose(got, want, rtol=tol, atol=0):
        raise RuntimeError("the model's RoPE inv_freq is not llama3's: this transformers version did not take "
                           "the rope scaling from the config")


def build_base(dims, dtype, device, causal_lm):
    """Random-weight LlamaForCausalLM (lm_head = Identity, as the authors' benchmarks) or LlamaModel, built on
    DEVICE with DTYPE parameters (the rotary inv_freq buffer stays float32)."""
    from transformers import LlamaForCausalLM, LlamaModel
    cfg = make_config(dims)
    with torch.device(device):
        model = (LlamaForCausalLM if causal_lm else LlamaModel)(cfg)
    for p in model.parameters():
        if p.dtype != dtype:
            p.data = p.data.to(dtype)
    if causal_lm:
        model.lm_head = torch.nn.Identity()
    check_rope(model, dims)
    return model.eval()


def build_armt(ref, dims, armt, dtype, device, seed, wmv_std):
    """The authors' ARMT wrapper (llama1b_grouping.wrap_model_with_armt) on a random base; torch.manual_seed
    before the base and before the wrap, as usage_llama1b.ipynb."""
    torch.manual_seed(seed)
    base = build_base(dims, dtype, device, causal_lm=True)
    torch.manual_seed(seed)
    with torch.device(device):
        wrapper = ref.grouping.wrap_model_with_armt(base, **armt)
    wrapper.to(device)
    if wmv_std:
        gen = torch.Generator(device="cpu").manual_seed(seed + 1)
        for layer in wrapper.memory_cell.layers:
            w = layer.W_mv.weight
            w.data.copy_((torch.randn(w.shape, generator=gen, dtype=torch.float32) * wmv_std).to(w.dtype))
    return wrapper.eval()


def patch_tuple_outputs(ref, cell):
    """Patch 4 (module docstring): transformers-5 decoder layers under the 4.x-era AssociativeLayerWrapper."""
    for w in cell.layers:
        assert isinstance(w, ref.lm.AssociativeLayerWrapper)
        inner = w.layer
        inner_forward, wrapper_forward = inner.forward, w.forward

        seen = {}  # did the decoder layer return a bare tensor (transformers 5)? then LlamaModel wants one

        def tuple_forward(*a, _f=inner_forward, _seen=seen, **k):
            out = _f(*a, **k)
            _seen["tensor"] = not isinstance(out, tuple)
            return (out,) if _seen["tensor"] else out

        def tensor_forward(*a, _f=wrapper_forward, _seen=seen, **k):
            out = _f(*a, **k)
            return out[0] if _seen.get("tensor") and isinstance(out, tuple) else out

        def positional_hidden(module, a, k):
            if not a and "hidden_states" in k:
                k = dict(k)
                a = (k.pop("hidden_states"),)
            return a, k

        inner.forward = tuple_forward
        w.forward = tensor_forward
        inner.register_forward_pre_hook(positional_hidden, with_kwargs=True)


def build_sequential(ref, dims, armt, dtype, device, seed, wmv_std):
    wrapper = build_armt(ref, dims, armt, dtype, device, seed, wmv_std)
    patch_tuple_outputs(ref, wrapper.memory_cell)
    wrapper.memory_cell.generate_mode(False)

    def run(ids):
        return wrapper(input_ids=ids).logits[0]  # (N, d): final-normed hidden states (lm_head = Identity)

    return run, wrapper


def build_diagonal(ref, dims, armt, dtype, device, seed, wmv_std):
    """The fast-latency executor exactly as usage_llama1b.ipynb builds it, grouped GEMMs on BmmGroupedGemm."""
    wrapper = build_armt(ref, dims, armt, dtype, device, seed, wmv_std)
    g, fe = ref.grouping, ref.fe
    ref.gemm.reset()
    context = fe.GroupedLayerContext()
    states = g.get_grouped_states(wrapper)
    for i in (0, 1, 2, 7, 8, 9, 10, 11, 12, 13):  # W_mq/mk/mv and q/k/v/o, gate/up/down: the grouped GEMMs
        ref.gemm.register(states[i])
    layer = g.make_grouped_sliced_layer_from_single_layer(
        context, copy.deepcopy(wrapper.memory_cell.model.model.layers[0]), *states, device=device)
    model, _ = g.make_grouped_model_from_naive(wrapper, layer)
    executor = fe.FastGroupedArmtExecutor(model, layer, context, dims["num_hidden_layers"])

    def run(ids):
        return executor.forward(ids).logits  # (N, d), no batch dimension

    return run, executor


def build_full(ref, dims, armt, dtype, device, seed, wmv_std):
    torch.manual_seed(seed)
    model = build_base(dims, dtype, device, causal_lm=False)

    def run(ids):
        return model(input_ids=ids, use_cache=False).last_hidden_state[0]

    return run, model


BUILDERS = {"diagonal": build_diagonal, "sequential": build_sequential, "full": build_full}


# ------------------------------------------------------------------------------------------------------------
# Rows
# ------------------------------------------------------------------------------------------------------------

def token_ids(vocab, n, seed, device):
    gen = torch.Generator(device="cpu").manual_seed(seed)
    return torch.randint(0, vocab, (1, n), generator=gen).to(device)


def time_calls(run, ids, reps, warmup, device):
    """(first-call seconds or None, [seconds of each timed call])"""
    first = None
    for i in range(warmup):
        sync(device)
        t0 = time.perf_counter()
        out = run(ids)
        sync(device)
        if i == 0:
            first = time.perf_counter() - t0
        del out
    times = []
    for _ in range(reps):
        sync(device)
        t0 = time.perf_counter()
        out = run(ids)
        sync(device)
        times.append(time.perf_counter() - t0)
        del out
    return first, times


def is_oom(e):
    return isinstance(e, getattr(torch, "OutOfMemoryError", ())) or "out of memory" in str(e).lower()


def run_row(args, ref, workload, device):
    precision, tokens, schedule = workload
    dims, armt = shapes(args)
    row = dict(workload=f"{precision}:{tokens}:{schedule}", tokens=tokens, status="ok")
    if schedule == "diagonal" and tokens % armt["segment_size"]:
        return dict(row, status="error", reason=f"diagonal needs a multiple of the segment "
                                                f"({armt['segment_size']})")
    dtype = dtype_of(precision)
    torch.set_default_dtype(dtype)  # the authors' code creates W_mem and z with it
    run = objs = ids = None
    try:
        t0 = time.perf_counter()
        run, objs = BUILDERS[schedule](ref, dims, armt, dtype, device, args.seed, args.wmv_std or 0.0)
        ids = token_ids(dims["vocab_size"], tokens, args.seed, device)
        row["build_s"] = time.perf_counter() - t0
        free_memory(device)
        if device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(device)
        row["first_s"], row["times"] = time_calls(run, ids, args.reps, args.warmup, device)
        if device.type == "cuda":
            row["peak_gib"] = torch.cuda.max_memory_allocated(device) / 2**30
    except Exception as e:  # noqa: BLE001 - a row's failure is reported in the table
        row.update(status="does not fit" if is_oom(e) else "error", reason=f"{type(e).__name__}: {e}"[:200])
    finally:
        run = objs = ids = None  # the model goes before the next row is built (and before its peak is reset)
        ref.gemm.reset()
        torch.set_default_dtype(torch.float32)
        free_memory(device)
    return row


# ------------------------------------------------------------------------------------------------------------
# Report
# ------------------------------------------------------------------------------------------------------------

def fmt(x, spec):
    return "-" if x is None else format(x, spec)


def table(rows):
    lines = ["| workload | status | seconds (median) | min | max | first call s | tokens/s | peak GiB |",
             "|---|---|---:|---:|---:|---:|---:|---:|"]
    for r in rows:
        t = r.get("times")
        med = statistics.median(t) if t else None
        status = r["status"] if r["status"] == "ok" else f"{r['status']}: {r.get('reason', '')}"
        lines.append(f"| {r['workload']} | {status} | {fmt(med, '.4f')} | {fmt(min(t) if t else None, '.4f')} | "
                     f"{fmt(max(t) if t else None, '.4f')} | {fmt(r.get('first_s'), '.4f')} | "
                     f"{fmt(r['tokens'] / med if med else None, ',.0f')} | {fmt(r.get('peak_gib'), '.2f')} |")
    return "\n".join(lines)


def environment(args, ref_dir, device, gemm):
    import transformers
    dims, armt = shapes(args)
    dev = torch.cuda.get_device_name(device) if device.type == "cuda" else platform.processor() or "cpu"
    lines = [f"- device: {device} ({dev}); python {platform.python_version()}, torch {torch.__version__} "
             f"(CUDA {torch.version.cuda}), transformers {transformers.__version__}",
             f"- model: {'tiny' if args.tiny else 'LLaMA-3.2-1B'} shapes, random weights (seed {args.seed}), "
             f"layers {dims['num_hidden_layers']}, hidden {dims['hidden_size']}, heads {dims['num_attention_heads']}"
             f"/{dims['num_key_value_heads']}, vocab {dims['vocab_size']}; ARMT segment {armt['segment_size']} + "
             f"{armt['num_mem_tokens']} memory tokens, d_mem {armt['d_mem']}, nu 3, W_mv std {args.wmv_std or 0}",
             f"- timing: {args.warmup} warm-up + {args.reps} timed calls, synchronize + perf_counter; "
             f"{precision_flags_text()}; outputs: final-normed hidden states (no lm_head)",
             f"- grouped GEMM (diagonal rows): torch.bmm in place of CUTLASS ({gemm.calls} calls in all, "
             f"{gemm.copies} of them with stacked operands)"]
    c = read_commits(ref_dir)
    for name in ("diagonal-batching", "armt"):
        if f"{name}.commit" in c:
            extra = f", {c['armt.file']} blob {c['armt.blob'][:7]} + {c['armt.patch']} -> blob " \
                    f"{c['armt.blob_patched'][:7]}" if name == "armt" else ""
            lines.append(f"- {c[f'{name}.url']} {c[f'{name}.ref']} = {c[f'{name}.commit']}{extra}")
        else:
            lines.append(f"- {name}: no COMMITS.txt entry in {ref_dir}")
    return "\n".join(lines)


# ------------------------------------------------------------------------------------------------------------
# --check
# ------------------------------------------------------------------------------------------------------------

def run_check(args, ref, device):
    """Diagonal executor vs sequential wrapper on the same weights, fp32; returns the exit status."""
    if not args.tiny:
        print("--check uses the tiny shapes: add --tiny", file=sys.stderr)
        return 2
    dims, armt = shapes(args)
    if args.check_tokens % armt["segment_size"]:
        print(f"--check-tokens must be a multiple of the segment ({armt['segment_size']}): the diagonal "
              f"executor stacks equal segments", file=sys.stderr)
        return 2
    wmv = 0.05 if args.wmv_std is None else args.wmv_std
    torch.set_default_dtype(torch.float32)
    ids = token_ids(dims["vocab_size"], args.check_tokens, args.seed, device)
    seq, _ = build_sequential(ref, dims, armt, torch.float32, device, args.seed, wmv)
    diag, executor = build_diagonal(ref, dims, armt, torch.float32, device, args.seed, wmv)
    inert, _ = build_sequential(ref, dims, armt, torch.float32, device, args.seed, 0.0)
    full, _ = build_full(ref, dims, armt, torch.float32, device, args.seed, 0.0)
    a, b, a0, f = (fn(ids).double() for fn in (seq, diag, inert, full))
    want = (args.check_tokens, dims["hidden_size"])
    if not a.shape == b.shape == a0.shape == f.shape == want:
        print(f"check: FAILED: shapes sequential {tuple(a.shape)}, diagonal {tuple(b.shape)}, W_mv=0 "
              f"{tuple(a0.shape)}, full {tuple(f.shape)}; want {want}")
        return 1
    rel = ((a - b).abs().max() / a.abs().max()).item()
    fro = (torch.linalg.norm(a - b) / torch.linalg.norm(a)).item()
    effect = ((a - a0).abs().max() / a0.abs().max()).item()
    n_seg = math.ceil(args.check_tokens / armt["segment_size"])
    print(f"check: {args.check_tokens} tokens ({n_seg} segments of {armt['segment_size']} + "
          f"{armt['num_mem_tokens']} memory tokens), {dims['num_hidden_layers']} layers, fp32, W_mv std {wmv}")
    print(f"check: diagonal vs sequential: max|diff|/max|seq| = {rel:.3e}, Frobenius {fro:.3e} "
          f"(tolerance {args.check_tol:g})")
    print(f"check: the memory changes the outputs by {effect:.3e} (max, relative, against W_mv = 0); "
          f"max|W_mem| after the diagonal run {executor.grouped_layer.W_mem.abs().max().item():.3e}")
    print(f"check: full attention ran, output {tuple(f.shape)}; grouped GEMM calls {ref.gemm.calls} "
          f"({ref.gemm.copies} with stacked operands)")
    if not rel <= args.check_tol:
        print("check: FAILED: the diagonal executor's hidden states differ from the sequential wrapper's")
        return 1
    if not effect > 1e-3:
        print("check: FAILED: the memory path is inert (W_mv std 0?), so the check proves little")
        return 1
    print("check: OK")
    return 0


# ------------------------------------------------------------------------------------------------------------

def main(argv=None):
    global torch
    args = parse_args(sys.argv[1:] if argv is None else argv)
    import torch as _torch
    torch = _torch
    if args.device is None:
        args.device = "cuda" if torch.cuda.is_available() else None
        if args.device is None:
            print("no CUDA device: pass --device cpu (with --tiny)", file=sys.stderr)
            return 2
    device = torch.device(args.device)
    if device.type == "cuda" and device.index is None:
        device = torch.device("cuda", torch.cuda.current_device())
    set_precision_flags()
    ref_dir = os.path.abspath(args.ref)
    ref = import_reference(ref_dir)
    quiet_library_warnings()
    if args.check:
        return run_check(args, ref, device)
    rows = []
    for w in args.workloads:
        log(args, f"reference_bench: {w[0]}:{w[1]}:{w[2]} ...")
        rows.append(run_row(args, ref, w, device))
        r = rows[-1]
        log(args, f"reference_bench:   {r['status']}"
                  + (f", median {statistics.median(r['times']):.4f} s, build {r['build_s']:.1f} s"
                     if r.get("times") else f" ({r.get('reason', '')})"))
    print(table(rows))
    print()
    print(environment(args, ref_dir, device, ref.gemm))
    return 1 if any(r["status"] == "error" for r in rows) else 0


if __name__ == "__main__":
    sys.exit(main())
