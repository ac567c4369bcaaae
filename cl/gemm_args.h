/*
 * gemm_args.h - the argument list of every GEMM kernel of ours, in order: one list for the kernels (OpenCL C,
 * where it builds their signatures) and the host (C, lib/device/kernel_args.c, where it names the argument
 * indices).
 *
 *   ARMT_GEMM_ARGS(X, A_T): X(NAME, declaration) for every argument but the last, which is
 *   ARMT_GEMM_LAST_ARG (last_row0). A_T is A's element type: float, or ushort for the bf16-A kernels. W is
 *   declared bf16 (ushort); the fp32-weight kernel (gemm_tf32.cl) reads it as float.
 *
 * Meaning (every offset and leading dimension in elements; see gemm_bf16.cl for the layouts):
 *   m, n, k, A, lda, W, C, ldc, beta   C_j (m x n) = A_j (m x k) W_j^T (n x k) (+ C_j when beta = 1)
 *   offs                               NULL: entry j at base + j * stride; else ulong[3 count] offsets
 *   a_base .. c_stride                 the strided mode's bases and steps
 *   Gt, Cb                             SwiGLU gate values at C's offsets / bf16 output at C's offsets
 *   W2, w2_shift                       a second weight at W's offsets (+ shift): gate+up or k+v in one GEMM
 *   rope, rope_hd, rope_T, rope_pos0   RoPE of the product (table, head size, rows per cell, first position)
 *   rowscale                           C += rowscale[row] * product
 *   Cb2                                the second product's bf16 output (k+v)
 *   ldw, trans_a, w_kn                 fp32 W (gemm_tf32.cl): W's row stride, A stored k x m, W stored k x n
 *   norm_w, norm_off, norm_eps         the GEMV only: A's rows RMS-normed first (weight at norm_w + norm_off)
 *   C2                                 the GEMV only: with W2 and no Cb, the second product into C2 (fp32)
 *   gv_lanes                           the GEMV only: work-items per output column pair (32, 64 or 128)
 *   W3, w3_off, n3, C3, c3_off, ldc3   the GEMV only: a third product in the same launch, its work-groups
 *                                      first: C3 (rows x n3, fp32) = A W3^T, RoPE'd like C (one entry)
 *   last_row0                          the last entry's rows below it are not needed
 * A kernel that has no use for an argument ignores it; the host passes NULL or 0 there.
 */
#ifndef ARMT_GEMM_ARGS_H
#define ARMT_GEMM_ARGS_H

#define ARMT_GEMM_ARGS(X, A_T)                  \
    X(M, const int m)                           \
    X(N, const int n)                           \
    X(K, const int k)                           \
    X(A, __global const A_T *A)                 \
    X(LDA, const int lda)                       \
    X(W, __global const ushort *W)              \
    X(C, __global float *C)                     \
    X(LDC, const int ldc)                       \
    X(BETA, const int beta)                     \
    X(OFFS, __global const ulong *offs)         \
    X(A_BASE, const ulong a_base)               \
    X(A_STRIDE, const ulong a_stride)           \
    X(W_BASE, const ulong w_base)               \
    X(W_STRIDE, const ulong w_stride)           \
    X(C_BASE, const ulong c_base)               \
    X(C_STRIDE, const ulong c_stride)           \
    X(GT, __global const float *Gt)             \
    X(CB, __global ushort *Cb)                  \
    X(W2, __global const ushort *W2)            \
    X(W2_SHIFT, const ulong w2_shift)           \
    X(ROPE, __global const float *rope)         \
    X(ROPE_HD, const int rope_hd)               \
    X(ROPE_T, const int rope_T)                 \
    X(ROPE_POS0, const int rope_pos0)           \
    X(ROWSCALE, __global const float *rowscale) \
    X(CB2, __global ushort *Cb2)                \
    X(LDW, const int ldw)                       \
    X(TRANS_A, const int trans_a)               \
    X(W_KN, const int w_kn)                     \
    X(NORM_W, __global const float *norm_w)     \
    X(NORM_OFF, const ulong norm_off)           \
    X(NORM_EPS, const float norm_eps)           \
    X(C2, __global float *C2)                   \
    X(GV_LANES, const int gv_lanes)             \
    X(W3, __global const ushort *W3)            \
    X(W3_OFF, const ulong w3_off)               \
    X(N3, const int n3)                         \
    X(C3, __global float *C3)                   \
    X(C3_OFF, const ulong c3_off)               \
    X(LDC3, const int ldc3)

#define ARMT_GEMM_LAST_ARG const int last_row0

#ifdef __OPENCL_VERSION__
/* the kernels' parameter list: ARMT_GEMM_PARAMS(float) or ARMT_GEMM_PARAMS(ushort) */
#define ARMT_GEMM_DECL_(name, decl) decl,
#define ARMT_GEMM_PARAMS(A_T)       ARMT_GEMM_ARGS(ARMT_GEMM_DECL_, A_T) ARMT_GEMM_LAST_ARG
#else
/* the host's argument indices: ARMT_GA_M = 0 ... ARMT_GA_LAST_ROW0 */
#define ARMT_GEMM_ENUM_(name, decl) ARMT_GA_##name,
enum armt_gemm_arg { ARMT_GEMM_ARGS(ARMT_GEMM_ENUM_, float) ARMT_GA_LAST_ROW0, ARMT_GA_COUNT };
#endif

#endif
