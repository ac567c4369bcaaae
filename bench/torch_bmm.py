#!/usr/bin/env python3
"""torch_bmm.py - PyTorch's bf16 batched GEMM on the 1B cell shapes, the anchor for bench/gemm_bf16_test.

Times torch.bmm(A, W^T) with A (cells, rows, k) and W (cells, n, k), bf16 operands with fp32 accumulation
(cuBLAS), for the four LLaMA-3.2-1B linear shapes: q/o (n 2048, k 2048), k/v (512, 2048), gate/up
(8192, 2048), down (2048, 8192); 16 cells x 1152 rows by default. Median of CUDA-event timings after
warm-up, random inputs; prints a Markdown table in the same units as gemm_bf16_test --bench.

    python3 bench/torch_bmm.py [--cells 16] [--rows 1152] [--reps 10]
Run it right after `gemm_bf16_test --kernel-dir cl --platform 1 --device 0 --bench` on the same GPU
(bench/compare_gemm.sh does both). Without a GPU it runs a tiny CPU check only (--cpu-check).
"""
import argparse
import statistics
import sys

SHAPES = [("q/o", 2048, 2048), ("k/v", 512, 2048), ("gate/up", 8192, 2048), ("down", 2048, 8192)]


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--cells", type=int, default=16)
    ap.add_argument("--rows", type=int, default=1152)
    ap.add_argument("--reps", type=int, default=10)
    ap.add_argument("--cpu-check", action="store_true", help="tiny shapes on the CPU (no timing)")
    a = ap.parse_args()
    try:
        import torch
    except ImportError:
        print("torch_bmm.py: PyTorch is needed", file=sys.stderr)
        return 3
    if a.cpu_check or not torch.cuda.is_available():
        x = torch.randn(2, 5, 8, dtype=torch.bfloat16)
        w = torch.randn(2, 3, 8, dtype=torch.bfloat16)
        got = torch.bmm(x, w.transpose(1, 2)).float()
        ref = torch.bmm(x.double(), w.double().transpose(1, 2))
        err = ((got.double() - ref).abs().max() / ref.abs().max()).item()
        print(f"cpu check: bf16 bmm relative error {err:.3g}")
        return 0 if err < 1e-2 else 1
    torch.backends.cuda.matmul.allow_tf32 = False
    dev = torch.device("cuda")
    print(f"device: {torch.cuda.get_device_name(0)}, torch {torch.__version__}")
    print(f"\n| shape | cells x m x n x k | median ms | min ms | TFLOP/s |\n|---|---|---|---|---|")
    for name, n, k in SHAPES:
        A = torch.randn(a.cells, a.rows, k, device=dev, dtype=torch.bfloat16)
        W = torch.randn(a.cells, n, k, device=dev, dtype=torch.bfloat16)
        Wt = W.transpose(1, 2)
        for _ in range(3):
            torch.bmm(A, Wt)
        torch.cuda.synchronize()
        times = []
        for _ in range(a.reps):
            s, e = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            s.record()
            torch.bmm(A, Wt)
            e.record()
            torch.cuda.synchronize()
            times.append(s.elapsed_time(e))
        med = statistics.median(times)
        flop = 2.0 * a.cells * a.rows * n * k
        print(f"| {name} | {a.cells} x {a.rows} x {n} x {k} | {med:.3f} | {min(times):.3f} | {flop / med / 1e9:.1f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
