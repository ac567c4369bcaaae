#!/usr/bin/env python3
"""pipeline_model.py - a time model of libarmt's layer pipeline (docs/DESIGN.md, "Pipeline across devices").

The diagonal schedule over P stages runs S + Lyr - 1 ticks; at tick d stage p runs the G_p(d) cells
(l, s) with l + s = d and l in its layers, as one step. A step of G cells on one device takes

    t(G) = a + b * G

(a: the step's fixed cost, the launches and the part of the device a small step leaves idle; b: one more
cell), fitted from one device's diagonal and sequential times of the same input:

    sequential: S * Lyr * (a + b)          diagonal: (S + Lyr - 1) * a + S * Lyr * b

A tick lasts as long as its slowest stage plus the hand-over of one segment's residual rows (T x d fp32)
across each active boundary: after the compute as implemented (host-staged copies: device to host, the
link if it is a network, host to device), or hidden under the compute with a direct path and a second
queue (max of the two). The sequential schedule is the pipeline with one segment in flight: S * P ticks,
each one stage's layers of one segment (a + b per cell), then its hand-over.

    bench/pipeline_model.py check FILE_1STAGE FILE_PIPELINE  # the model against measured clbench tables
    bench/pipeline_model.py tables                            # 1B / 3B / 8B, 131k-1M tokens, 1-64 GPUs

`check` reads clbench's pipeline tables (bench/clbench --devices / --mpi; Markdown): a and b from the 1-stage
rows, the split from the pipeline run's "- stage i: layers a-b" lines, and predicts each pipeline row.
Plain Python 3, no packages.
"""
import math
import re
import sys

# ---------------------------------------------------------------------------------------------------------
# Models: the presets' shapes (lib/io/armt_config.c) with segments of 1024 + 128 memory tokens


def preset(d, layers, heads, kv, hd, ffn, vocab):
    return dict(d=d, layers=layers, heads=heads, kv=kv, hd=hd, ffn=ffn, vocab=vocab, M=128, L=1024, dm=64)


MODELS = {
    "llama-3.2-1b": preset(2048, 16, 32, 8, 64, 8192, 128256),
    "llama-3.2-3b": preset(3072, 28, 24, 8, 128, 8192, 128256),
    "llama-3.1-8b": preset(4096, 32, 32, 8, 128, 14336, 128256),
}


def layer_flops(m, T=None):
    """FLOPs of one layer on one segment (lib/compute/pipeline_split.c's count)."""
    T = T or m["L"] + m["M"]
    d, qd, kvd, ffn, M, dm = m["d"], m["heads"] * m["hd"], m["kv"] * m["hd"], m["ffn"], m["M"], m["dm"]
    dk = 6 * dm
    f = 2.0 * T * (d * qd + 2 * d * kvd + qd * d + 3 * d * ffn) + 2.0 * T * T * qd
    f += 2.0 * T * (d * dm + dk * d) + 2.0 * M * (d * dm + d * d + dk * d) + 2.0 * M * dk * d
    return f


def fit(t_seq, t_diag, S, Lyr):
    """a, b of t(G) = a + b G from one device's sequential and diagonal times."""
    n = S * Lyr
    a = (t_seq - t_diag) / (n - (S + Lyr - 1))
    b = t_seq / n - a
    return a, b


def a_from_ratio(b, R, S, Lyr):
    """a for a given b and a measured diagonal-over-sequential ratio R."""
    n = S * Lyr
    return n * b * (R - 1.0) / (n - R * (S + Lyr - 1))


def balanced_split(n_layers, P):
    """Equal layers cost the same: the balanced split gives counts differing by at most one."""
    return [n_layers // P + (1 if p < n_layers % P else 0) for p in range(P)]


def firsts_of(counts):
    f = [0]
    for c in counts:
        f.append(f[-1] + c)
    return f


# ---------------------------------------------------------------------------------------------------------
# Time of a call


def stage_cells(f, p, d, S):
    """Cells of stage p (layers f[p] .. f[p+1]-1) on diagonal d."""
    lo, hi = max(f[p], d - S + 1), min(f[p + 1] - 1, d)
    return hi - lo + 1 if lo <= hi else 0


def pipeline_time(S, counts, a, b, comm=lambda boundary: 0.0, overlap=False, schedule="diagonal"):
    """Seconds of one call of S segments over stages with counts[p] layers; comm(boundary) is a hand-over's
    time across that boundary. overlap: the library's default (stage p runs diagonal d at tick d + p, and the
    rows sent at the end of a tick travel during the next one); else each tick's hand-overs follow it."""
    P, Lyr = len(counts), sum(counts)
    f = firsts_of(counts)
    total = 0.0
    if schedule == "sequential":
        for s in range(S):
            for p in range(P):
                total += counts[p] * (a + b) + (comm(p) if p < P - 1 else 0.0)
        return total
    lag = 1 if overlap and P > 1 else 0
    for t in range(S + Lyr - 1 + lag * (P - 1)):
        work = 0.0
        for p in range(P):
            g = stage_cells(f, p, t - lag * p, S)
            if g:
                work = max(work, a + b * g)
        moved = 0.0
        for p in range(P - 1):  # the segment on stage p's last layer crosses boundary p after tick t - lag
            s = (t - lag) - lag * p - (f[p + 1] - 1)
            if 0 <= s < S:
                moved = max(moved, comm(p))
        total += max(work, moved) if lag else work + moved
    return total


# ---------------------------------------------------------------------------------------------------------
# Links: bandwidth (bytes/s achieved) and latency (s) per direction

LINKS = {
    "nvlink": (370e9, 10e-6),  # H100 NVLink 4: 450 GB/s per direction, ~370 achieved
    "pcie": (50e9, 15e-6),  # PCIe 5.0 x16: 64 GB/s, ~50 achieved (device <-> host)
    "net100": (11.5e9, 5e-6),  # 100 Gb/s (InfiniBand EDR / 100 GbE RoCE): 12.5 GB/s, ~11.5 achieved
}


def link_time(nbytes, link):
    bw, lat = LINKS[link]
    return lat + nbytes / bw


def scenario_comm(scenario, nbytes, host_staged, gpus_per_node=8):
    """A hand-over's time across boundary p under a scenario.

    scenario: "nvlink" (nodes of 8 GPUs on NVLink, nodes on 100 Gb/s), "pcie" (nodes of 8 GPUs on PCIe,
    nodes on 100 Gb/s) or "net100" (one GPU per node). host_staged: the library's copies today (device to
    host over PCIe, the network between nodes, host to device; no direct NVLink path); else a direct path
    (NVLink peer copies, PCIe peer-to-peer, GPUDirect RDMA)."""

    def comm(p):
        inter = scenario == "net100" or (p + 1) % gpus_per_node == 0
        if host_staged:
            t = 2 * link_time(nbytes, "pcie")
            return t + (link_time(nbytes, "net100") if inter else 0.0)
        if inter:
            return link_time(nbytes, "net100")
        return link_time(nbytes, "nvlink" if scenario == "nvlink" else "pcie")

    return comm


# ---------------------------------------------------------------------------------------------------------
# check: against measured clbench tables

ROW = re.compile(r"^\| (fp32|bf16) \| (diagonal|sequential) \|")
STAGE = re.compile(r"^- stage (\d+): layers (\d+)-(\d+)")
HEAD = re.compile(r"(\d+) layers, segments of (\d+) \+ (\d+) memory tokens")


def read_tables(path):
    rows, stages, shape = {}, [], None
    with open(path) as f:
        for line in f:
            if ROW.match(line):
                c = [x.strip() for x in line.strip().strip("|").split("|")]
                prec, sch, n, P, t, ticks = c[0], c[1], int(c[2]), int(c[3]), float(c[4]), int(c[7])
                busy = [float(x) for x in c[10].split(",")]
                rows[(prec, sch, n, P)] = (t, busy, ticks)
            m = STAGE.match(line)
            if m and int(m.group(1)) == len(stages):
                stages.append(int(m.group(3)) - int(m.group(2)) + 1)
            m = HEAD.search(line)
            if m:
                shape = tuple(int(x) for x in m.groups())
    return rows, stages, shape


def check(one_path, pipe_path, link_lat=20e-6):
    """Two predictions per pipeline row: (1) a and b from one device's rows (the whole model: per-cell
    costs as on one device); (2) each stage's own per-cell cost from its busy time in that run (b_p = busy /
    cells), which checks the tick structure (fill, drain, the slowest stage) apart from how fast a device
    computes next to another one (on a CPU the two share caches, memory bandwidth and cores)."""
    one, _, shape = read_tables(one_path)
    pipe, counts, shape2 = read_tables(pipe_path)
    shape = shape or shape2
    if not shape or not counts:
        sys.exit("check: no model header or stage lines found")
    Lyr, L, M = shape
    f = firsts_of(counts)
    print("| precision | schedule | tokens | S | stages | measured (s) | model, 1-device a b (s) | ratio "
          "| model, per-stage busy (s) | ratio |")
    print("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    worst = [0.0, 0.0]
    for (prec, sch, n, P), (t, busy, ticks) in sorted(pipe.items()):
        if P == 1 or (prec, "diagonal", n, 1) not in one or (prec, "sequential", n, 1) not in one:
            continue
        S = -(-n // L)
        t_seq, t_diag = one[(prec, "sequential", n, 1)][0], one[(prec, "diagonal", n, 1)][0]
        a, b = fit(t_seq, t_diag, S, Lyr)
        if a < 0.0:  # a CPU leaves no part of itself idle on a small step: a is noise around 0
            a, b = 0.0, (t_seq + t_diag) / (2 * S * Lyr)
        comm = lambda p: link_lat  # noqa: E731  (shared memory: rows of a few hundred KiB)
        lag = 1 if sch == "diagonal" and ticks > S + Lyr - 1 else 0  # the run's mode, from its tick count
        pred1 = pipeline_time(S, counts, a, b, comm, overlap=bool(lag), schedule=sch)
        # per stage: busy = cells * b_p; the tick's time is its slowest stage's work
        bp = [busy[p] / (S * counts[p]) for p in range(P)]
        pred2 = 0.0
        if sch == "sequential":
            pred2 = sum(S * counts[p] * bp[p] for p in range(P))
        else:
            for t2 in range(ticks):
                pred2 += max(bp[p] * stage_cells(f, p, t2 - lag * p, S) for p in range(P))
        worst = [max(worst[0], abs(pred1 / t - 1)), max(worst[1], abs(pred2 / t - 1))]
        print(f"| {prec} | {sch} | {n} | {S} | {P} | {t:.3f} | {pred1:.3f} | {pred1 / t:.3f} | {pred2:.3f} | "
              f"{pred2 / t:.3f} |")
    print(f"\nlargest |model / measured - 1|: {100 * worst[0]:.1f}% (one device's a, b), "
          f"{100 * worst[1]:.1f}% (per-stage busy)")


# ---------------------------------------------------------------------------------------------------------
# tables: 1B / 3B / 8B on 1-64 GPUs

# one H200's 1B bf16 times at 131,072 tokens (docs/perf/results/2026-11-28-h200-clbench-1b-bf16-all-lengths-v23.md)
H200_1B = dict(diag=0.7474, seq=1.266, tokens=131072)
# the authors' diagonal-over-sequential ratios at 131,072 tokens (A100) for the larger models (issue 22)
RATIO = {"llama-3.2-3b": 1.34, "llama-3.1-8b": 1.14}
TOKENS = [131072, 262144, 524288, 1048576]
GPUS = [1, 2, 4, 8, 16, 32, 64]


def device_params(name):
    m1 = MODELS["llama-3.2-1b"]
    S = H200_1B["tokens"] // m1["L"]
    a1, b1 = fit(H200_1B["seq"], H200_1B["diag"], S, m1["layers"])
    if name == "llama-3.2-1b":
        return a1, b1
    m = MODELS[name]
    b = b1 * layer_flops(m) / layer_flops(m1)
    return a_from_ratio(b, RATIO[name], S, m["layers"]), b


def tables():
    print("# bench/pipeline_model.py tables\n")
    print("Per-step costs t(G) = a + b G: the 1B's from one H200 (diagonal 0.7474 s, sequential 1.266 s at 131,072")
    print("tokens), the 3B's and 8B's b scaled by their FLOPs per cell and a from the authors' diagonal-over-")
    print("sequential ratios (1.34x, 1.14x). Hand-overs: T x d fp32 rows per segment per boundary. Times in")
    print("seconds of one call (diagonal schedule), then the speed-up over one GPU; '-' where the GPUs")
    print("outnumber the layers (a stage holds at least one layer).\n")
    for name, m in MODELS.items():
        a, b = device_params(name)
        nbytes = (m["L"] + m["M"]) * m["d"] * 4
        print(f"## {name}: a = {1e3 * a:.3f} ms, b = {1e3 * b:.3f} ms per cell, {nbytes / 1e6:.1f} MB per hand-over\n")
        variants = (
            (True, False, "host-staged copies (PCIe both ways, the network between nodes), after each tick "
             "(--no-overlap)"),
            (True, True, "host-staged copies, overlapped with the next tick (the library's default)"),
            (False, True, "a direct path (NVLink / PCIe peer / GPUDirect RDMA), overlapped (not implemented)"),
        )
        for host_staged, overlap, what in variants:
            print(f"### {name}, {what}\n")
            head = "| GPUs |"
            for sc in ("nvlink", "pcie", "net100"):
                for n in TOKENS:
                    head += f" {sc} {n // 1024}k |"
            print(head)
            print("|---:|" + "---:|" * (3 * len(TOKENS)))
            base = {n: pipeline_time(n // m["L"], [m["layers"]], a, b) for n in TOKENS}
            for P in GPUS:
                line = f"| {P} |"
                for sc in ("nvlink", "pcie", "net100"):
                    for n in TOKENS:
                        if P > m["layers"]:
                            line += " - |"
                            continue
                        t = pipeline_time(n // m["L"], balanced_split(m["layers"], P), a, b,
                                          scenario_comm(sc, nbytes, host_staged), overlap=overlap)
                        line += f" {t:.3g} ({base[n] / t:.1f}x) |"
                print(line)
            print()


if __name__ == "__main__":
    if len(sys.argv) >= 2 and sys.argv[1] == "tables":
        tables()
    elif len(sys.argv) == 4 and sys.argv[1] == "check":
        check(sys.argv[2], sys.argv[3])
    else:
        sys.exit(__doc__)
