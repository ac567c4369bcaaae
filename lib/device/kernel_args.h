/*
 * kernel_args.h - the argument lists of the GEMM kernels as the host sets them (kernel_args.c): every bf16
 * GEMM kernel takes the list of cl/gemm_args.h, set by name in one place.
 */
#ifndef ARMT_KERNEL_ARGS_H
#define ARMT_KERNEL_ARGS_H

#define CL_TARGET_OPENCL_VERSION 120
#include <CL/cl.h>

/* The argument values of one launch of a bf16 GEMM kernel (every kernel takes the same list). */
typedef struct armt_gemm_args {
    int m, n, k, lda, ldc, beta;
    cl_mem a, w, c, offs;
    cl_ulong a_base, a_stride, w_base, w_stride, c_base, c_stride;
    cl_mem gate, out, w2;
    cl_ulong w2_shift;
    cl_mem rope;
    int rope_hd, rope_t, rope_pos0;
    cl_mem rowscale, out2;
    int ldw, trans_a, w_kn; /* W's row stride (0: k; the bf16 tensor-core kernels and fp32 W's), and for
                               fp32 W (armt_gemm_tf32): A stored k x m, W stored k x n */
    cl_mem norm_w;          /* the GEMV: A's rows RMS-normed first, weight at norm_w + norm_off */
    cl_ulong norm_off;
    float norm_eps;
    cl_mem c2;     /* the GEMV: with w2 and no out, the second product (fp32) */
    int gv_lanes;  /* the GEMV: work-items per output column pair (0: 32) */
    cl_mem w3, c3; /* the GEMV: a third product (n3 columns) into fp32 c3, its work-groups first */
    cl_ulong w3_off, c3_off;
    int n3, ldc3;
    int last_row0;
} armt_gemm_args;
/* Sets every argument of a bf16 GEMM kernel (the one place that knows their indices). */
cl_int armt_gemm_set_args(cl_kernel k, const armt_gemm_args *a);
/* The index after the list: a kernel's own arguments follow it (the GEMV's DPFP tail). */
cl_uint armt_gemm_args_end(void);

/* The bf16 copy of a GEMM operand (armt_f32_to_bf16): Ab = bf16(A) over m x width blocks at the same element
 * offsets, entry j at offs[3 j] (offs set) or a_base + j a_stride. */
cl_int armt_f32_to_bf16_set_args(cl_kernel k, int m, int width, cl_mem a, int lda, cl_mem ab, cl_mem offs,
                                 cl_ulong a_base, cl_ulong a_stride);

/* A split-k GEMM's slices summed into C (armt_rows_splitk_sum, cl/rows.cl): entry e's slice s at
 * p + p_off + s p_slice + e rows n, its C block at c + c_off + e c_stride (row stride ldc); C = (beta ? C : 0)
 * + the S slices in order; the launch's last entry keeps its rows below last_row0. */
cl_int armt_splitk_sum_set_args(cl_kernel k, cl_mem p, cl_ulong p_off, cl_ulong p_slice, cl_mem c,
                                cl_ulong c_off, cl_ulong c_stride, int ldc, int n, int rows, int S, int beta,
                                int last_row0);

#endif
