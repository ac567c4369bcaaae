#!/usr/bin/env python3
"""check_variant_fixtures.py - independent float64 re-implementation of the ARMT variants (docs/VARIANTS-reference.md)
checked against tests/data/variants/.

It reads only the fixture files (config.json, model.safetensors, expected.safetensors) and recomputes, with plain
tensor ops (RMSNorm, RoPE, GQA softmax attention, SwiGLU; no transformers, no reference code): the logits and the
final W_mem / z of the fp32 forward, and the greedy gen_tokens. Run from the repository root:

    python3 tools/check_variant_fixtures.py armt armt_sw amt_h4 ...      (case names; default: every case with
                                                                          an expected.safetensors)
    python3 tools/check_variant_fixtures.py --dir OUT [case ...]          (fixtures written elsewhere by
                                                                          make_variant_fixtures.py --out OUT)

Inner-loop cases (config `architectures` InnerLoopARMTForCausalLM): generation-2 memory math and keys, the
generation-3 tensor names; memory rows attend to every row of their block (later memory rows too), and positions
count the whole augmented sequence (which changes nothing without a sliding window: only differences of
positions inside one block reach attention).

Expected: logits max|diff| <= 1e-4 and W_mem relative error <= 1e-3 (amt_h4 is the least well-conditioned case:
its own fp32-vs-fp64 spread is 8e-4 on W_mem), gen tokens OK.
"""
import json, sys, torch
from safetensors.torch import load_file
torch.set_default_dtype(torch.float64)
D = (sys.argv.pop(1) + '/') if len(sys.argv) > 2 and sys.argv[1] == '--dir' and sys.argv.pop(1) else 'tests/data/variants/'

def relu(x): return torch.clamp(x, min=0)
def dpfp(x, nu=3):
    x = torch.cat([relu(x), relu(-x)], -1)
    return torch.cat([x]*nu, -1) * torch.cat([torch.roll(x, j, -1) for j in range(1, nu+1)], -1)
def nrm(x): return x / torch.clamp(x.norm(dim=-1, keepdim=True), min=1e-12)
def rms(x, w, eps): return x / torch.sqrt((x*x).mean(-1, keepdim=True) + eps) * w
def rope(pos, hd, theta):
    inv = 1.0 / theta ** (torch.arange(0, hd, 2).double() / hd)
    a = pos.double()[:, None] * inv[None]
    e = torch.cat([a, a], -1); return e.cos(), e.sin()
def rot(x):
    h = x.shape[-1]//2; return torch.cat([-x[..., h:], x[..., :h]], -1)

class Base:
    def __init__(s, sd, cfg, pre):
        s.sd, s.c, s.p = sd, cfg, pre
    def W(s, k): return s.sd[s.p + k].double()
def layer(P, l, x, pos, mask, past=None):
    """x [T,d]; mask [T, S+T] additive (S = cached); past = (Krot[nkv,S,hd], V) or None. Returns out, (Krot,V) of x."""
    c = P.c; hd, nh, nkv, eps = c['head_dim'], c['num_attention_heads'], c['num_key_value_heads'], c['rms_norm_eps']
    w = lambda n: P.L(l, n)
    h = rms(x, w('input_layernorm.weight'), eps)
    T = x.shape[0]
    q = (h @ w('self_attn.q_proj.weight').T).view(T, nh, hd).transpose(0, 1)
    k = (h @ w('self_attn.k_proj.weight').T).view(T, nkv, hd).transpose(0, 1)
    v = (h @ w('self_attn.v_proj.weight').T).view(T, nkv, hd).transpose(0, 1)
    cos, sin = rope(pos, hd, c['rope_theta'])
    q = q*cos + rot(q)*sin; k = k*cos + rot(k)*sin
    K, V = k, v
    if past is not None: K, V = torch.cat([past[0], k], 1), torch.cat([past[1], v], 1)
    rep = nh // nkv
    K2, V2 = K.repeat_interleave(rep, 0), V.repeat_interleave(rep, 0)
    s = q @ K2.transpose(1, 2) / hd**0.5 + mask
    a = torch.softmax(s, -1) @ V2
    x = x + a.transpose(0, 1).reshape(T, nh*hd) @ w('self_attn.o_proj.weight').T
    h = rms(x, w('post_attention_layernorm.weight'), eps)
    g = h @ w('mlp.gate_proj.weight').T; u = h @ w('mlp.up_proj.weight').T
    x = x + (torch.nn.functional.silu(g) * u) @ w('mlp.down_proj.weight').T
    return x, (k, v)

def causal(T, S=0):
    m = torch.full((T, S+T), float('-inf')); m[:, S:] = torch.triu(torch.full((T, T), float('-inf')), 1); m[:, :S] = 0
    return m

def mem_read(x, Wm, z, H, pre, P, l):
    T = x.shape[0]
    q = (x @ P.M(l, 'W_mq.weight').T).view(T, H, -1).transpose(0, 1)
    q = nrm(dpfp(q))                                   # [H,T,dk/H]
    num = q @ Wm                                       # [H,T,d/H]
    if z is not None: num = num / ((q @ z[:, :, None]) + 1e-5)
    return num.transpose(0, 1).reshape(T, -1)

def mem_write(t, Wm, z, first, H, gating, correction, P, l):
    M = t.shape[0]
    k = nrm(dpfp((t @ P.M(l, 'W_mk.weight').T).view(M, H, -1).transpose(0, 1)))    # [H,M,dk/H]
    v = (t @ P.M(l, 'W_mv.weight').T).view(M, H, -1).transpose(0, 1)              # [H,M,d/H]
    b = torch.sigmoid(t @ P.M(l, 'W_mb.weight').T + P.M(l, 'W_mb.bias'))          # [M, H] or [M, d]
    b = b.view(M, H, -1).transpose(0, 1)                                            # [H,M,1] or [H,M,d/H]
    coef = torch.ones(H, M, 1)
    if first: prev = torch.zeros_like(v)
    else:
        prev = k @ Wm
        if z is not None:
            den = (k @ z[:, :, None]) + 1e-5                                        # [H,M,1]
            prev = prev / den
            if correction: coef = torch.clamp(1 - den / (k.norm(dim=-1, keepdim=True)**2), 0, 1)
    Wm = Wm + k.transpose(1, 2) @ ((v - prev) * b)
    if z is not None: z = z + (coef * k).sum(1)
    return Wm, z

def run(case, ids_override=None, gen_mode=False):
    cfg = json.load(open(D+case+'/config.json')); sd = load_file(D+case+'/model.safetensors'); ex = load_file(D+case+'/expected.safetensors')
    inner = 'InnerLoopARMTForCausalLM' in (cfg.get('architectures') or [])  # generation-2 keys, gen-3 layout
    g2 = 'n_heads' in cfg and not inner
    base = cfg['base_model_config']; base.setdefault('rope_theta', (base.get('rope_parameters') or {}).get('rope_theta', 10000.0))
    if g2:
        pre = 'armt.memory_cell.'; P = Base(sd, base, pre)
        P.L = lambda l, n: sd[f'{pre}layers.{l}.layer.{n}'].double(); P.M = lambda l, n: sd[f'{pre}layers.{l}.{n}'].double()
        E = sd[pre+'model.lm_head.weight'].double(); norm = sd[pre+'model.model.norm.weight'].double(); mem = sd[pre+'memory'].double()
        sink = sd.get(pre+'sink'); H = cfg['n_heads']; gating = cfg['gating']; use_sink = cfg['use_sink']; sw = False
        wrap = [True]*base['num_hidden_layers']
    else:
        P = Base(sd, base, '')
        P.L = lambda l, n: sd[f'model.model.layers.{l}.layer.{n}'].double(); P.M = lambda l, n: sd[f'model.model.layers.{l}.{n}'].double()
        E = sd['model.model.embed_tokens.weight'].double(); norm = sd['model.model.norm.weight'].double(); mem = sd['memory'].double()
        sink = sd.get('sink'); H = 1; gating = False; use_sink = bool(cfg.get('use_sink')); sw = cfg['model_type'] == 'armt_sw'
        wrap = cfg.get('wrap_layers') or [True]*base['num_hidden_layers']
        if inner: H = cfg['n_heads']; gating = cfg['gating']
    if sink is not None: sink = sink.double()
    use_denom, corr = cfg['use_denom'], cfg['correction']
    ids = ex['ids'].long() if ids_override is None else ids_override; L = cfg['segment_size']; Mn = cfg['num_mem_tokens']; d = base['hidden_size']; dk = 6*cfg['d_mem']
    nl = base['num_hidden_layers']
    Wm = [torch.zeros(H, dk//H, d//H) for _ in range(nl)]; z = [torch.zeros(H, dk//H) if use_denom else None for _ in range(nl)]
    first = [True]*nl; cache = [None]*nl; logits = []
    starts = list(range(0, len(ids), L))
    if gen_mode: starts = list(range(0, len(ids) - 1, L))  # gen 2: last prompt segment + new tokens = one tail
    for si, s0 in enumerate(starts):
        tail = gen_mode and si == len(starts) - 1
        seg = ids[s0:] if tail else ids[s0:s0+L]; n = len(seg)
        rows = [E[seg]] if tail else [E[seg], mem]
        if use_sink: rows = [sink] + rows
        x = torch.cat(rows); T = x.shape[0]; pos = torch.arange(T)
        ns = int(use_sink)
        if inner: pos = pos + si * (L + Mn + ns)  # positions in the whole augmented sequence
        for l in range(nl):
            if wrap[l] and not first[l]: x = x + mem_read(x, Wm[l], z[l], H, '', P, l)
            if sw and cache[l] is not None:
                S = cache[l][0].shape[1]
                m = causal(T, S)
                pm = torch.full((T, S), float('-inf'))
                for i in range(n):      # text row i sees cached column j iff j >= i
                    pm[ns+i, i:] = 0
                pm[T-Mn:, :] = 0        # memory rows see every cached column; sink row none
                m[:, :S] = pm
                x, kv = layer(P, l, x, pos, m, cache[l])
            elif inner:  # memory rows see every row of the block, later memory rows included
                m = causal(T); m[T-Mn:, :] = 0
                x, kv = layer(P, l, x, pos, m)
            else:
                x, kv = layer(P, l, x, pos, causal(T))
            if sw:  # cache: previous cached + this segment's text rows (post-RoPE keys), last L kept
                k_t, v_t = kv[0][:, ns:ns+n], kv[1][:, ns:ns+n]
                if cache[l] is not None: k_t, v_t = torch.cat([cache[l][0], k_t], 1), torch.cat([cache[l][1], v_t], 1)
                cache[l] = (k_t[:, -L:], v_t[:, -L:])
            if wrap[l] and not tail:
                Wm[l], z[l] = mem_write(x[T-Mn:], Wm[l], z[l], first[l], H, gating, corr, P, l)
                first[l] = False
        h = rms(x, norm, base['rms_norm_eps'])
        logits.append((h @ E.T)[ns:ns+n])
    lg = torch.cat(logits)
    if ids_override is not None: return lg
    Wst = torch.stack([Wm[l] for l in range(nl) if wrap[l]])
    r = lambda a, b: ((a.double()-b.double()).norm()/b.double().norm()).item()
    out = f"{case}: logits max|diff| {(lg - ex['logits'].double()).abs().max():.2e}; W_mem rel {r(Wst, ex['W_mem']):.2e}"
    if use_denom: out += f"; z rel {r(torch.stack([z[l] for l in range(nl) if wrap[l]]), ex['z']):.2e}"
    print(out)

def gencheck(case):
    cfg = json.load(open(D+case+'/config.json')); ex = load_file(D+case+'/expected.safetensors')
    g2 = 'n_heads' in cfg and 'InnerLoopARMTForCausalLM' not in (cfg.get('architectures') or [])
    seq = ex['gen_prompt'].long(); toks = []
    for _ in range(4):
        t = run(case, seq, gen_mode=g2)[-1].argmax().item(); toks.append(t); seq = torch.cat([seq, torch.tensor([t])])
    print(case, 'gen', toks, ex['gen_tokens'].long().tolist(), 'OK' if toks == ex['gen_tokens'].long().tolist() else 'MISMATCH')

if __name__ == "__main__":
    import os
    cases = sys.argv[1:] or sorted(c for c in os.listdir(D) if os.path.exists(os.path.join(D, c, 'expected.safetensors')))
    for c in cases:
        run(c)
        gencheck(c)
