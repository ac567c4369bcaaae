/*
 * kernel_args.c - the one place that sets the bf16 GEMM kernels' arguments, by the names of cl/gemm_args.h
 * (the kernels build their signatures from the same list). Used by the library (gemm.c, the wgmma
 * self-test) and by bench/gemm_bf16_test.
 */
#include "config.h"

#include "device/kernel_args.h"

#include "gemm_args.h"

#define SET(name, v) (e = e != CL_SUCCESS ? e : clSetKernelArg(k, ARMT_GA_##name, sizeof(v), &(v)))

cl_int armt_gemm_set_args(cl_kernel k, const armt_gemm_args *a) {
    cl_int e = CL_SUCCESS;
    SET(M, a->m);
    SET(N, a->n);
    SET(K, a->k);
    SET(A, a->a);
    SET(LDA, a->lda);
    SET(W, a->w);
    SET(C, a->c);
    SET(LDC, a->ldc);
    SET(BETA, a->beta);
    SET(OFFS, a->offs); /* a NULL cl_mem value passes NULL (OpenCL 1.2, 5.7.2): the strided mode */
    SET(A_BASE, a->a_base);
    SET(A_STRIDE, a->a_stride);
    SET(W_BASE, a->w_base);
    SET(W_STRIDE, a->w_stride);
    SET(C_BASE, a->c_base);
    SET(C_STRIDE, a->c_stride);
    SET(GT, a->gate);
    SET(CB, a->out);
    SET(W2, a->w2);
    SET(W2_SHIFT, a->w2_shift);
    SET(ROPE, a->rope);
    SET(ROPE_HD, a->rope_hd);
    SET(ROPE_T, a->rope_t);
    SET(ROPE_POS0, a->rope_pos0);
    SET(ROWSCALE, a->rowscale);
    SET(CB2, a->out2);
    const int ldw = a->ldw ? a->ldw : a->k; /* (0: W's rows are k long) */
    SET(LDW, ldw);
    SET(TRANS_A, a->trans_a);
    SET(W_KN, a->w_kn);
    SET(NORM_W, a->norm_w);
    SET(NORM_OFF, a->norm_off);
    SET(NORM_EPS, a->norm_eps);
    SET(C2, a->c2);
    SET(GV_LANES, a->gv_lanes);
    SET(W3, a->w3);
    SET(W3_OFF, a->w3_off);
    SET(N3, a->n3);
    SET(C3, a->c3);
    SET(C3_OFF, a->c3_off);
    SET(LDC3, a->ldc3);
    SET(LAST_ROW0, a->last_row0);
    return e;
}

#undef SET

cl_int armt_f32_to_bf16_set_args(cl_kernel k, int m, int width, cl_mem a, int lda, cl_mem ab, cl_mem offs,
                                 cl_ulong a_base, cl_ulong a_stride) {
    cl_int e = CL_SUCCESS;
    cl_uint i = 0;
#define SETI(v) (e = e != CL_SUCCESS ? e : clSetKernelArg(k, i++, sizeof(v), &(v)))
    SETI(m);
    SETI(width);
    SETI(a);
    SETI(lda);
    SETI(ab);
    SETI(offs);
    SETI(a_base);
    SETI(a_stride);
#undef SETI
    return e;
}

cl_uint armt_gemm_args_end(void) { return ARMT_GA_COUNT; }

cl_int armt_splitk_sum_set_args(cl_kernel k, cl_mem p, cl_ulong p_off, cl_ulong p_slice, cl_mem c,
                                cl_ulong c_off, cl_ulong c_stride, int ldc, int n, int rows, int S, int beta,
                                int last_row0) {
    cl_int e = CL_SUCCESS;
    cl_uint i = 0;
#define SETI(v) (e = e != CL_SUCCESS ? e : clSetKernelArg(k, i++, sizeof(v), &(v)))
    SETI(p);
    SETI(p_off);
    SETI(p_slice);
    SETI(c);
    SETI(c_off);
    SETI(c_stride);
    SETI(ldc);
    SETI(n);
    SETI(rows);
    SETI(S);
    SETI(beta);
    SETI(last_row0);
#undef SETI
    return e;
}
