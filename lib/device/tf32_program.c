/*
 * tf32_program.c - the fp32 tensor-core GEMM's program (cl/gemm_tf32.cl, and with tune.tf_wgmma
 * cl/gemm_tf32_wg.cl): its build, the wgmma kernel's sm_90a rebuild on a GPU, and the check of that kernel on
 * a product it knows before the library uses it (a driver or a tile layout the kernel does not meet shows
 * there, and costs a warning and the mma.sync kernel, never a wrong result).
 */
#include "config.h"

#include "device/internal.h"
#include "device/kernel_args.h"
#include "device/nv_ptx.h"

#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* cvt.rna.tf32.f32 on the host (finite x): to nearest, ties away from zero, the low 13 bits cleared */
static float tf32_rna(float x) {
    uint32_t u;
    memcpy(&u, &x, 4);
    u = (u + 0x1000u) & 0xffffe000u;
    memcpy(&x, &u, 4);
    return x;
}

/* Operand values of the check: an integer in {-3, -2, -1, 1, 2, 3} plus -1, 0 or 1 times 2^-12. The TF32
 * split takes the integer as the high part and the 2^-12 as the low one, so a kernel that drops a small
 * product, or reads a part from the wrong place, is off by a multiple of 2^-12; every product and every
 * partial sum of the check (|C| <= 9 k, k < 2^8) is exact in fp32, whatever the order of the additions. */
static float check_value(int i, int kk, int a, int b) {
    const int v = (i * a + kk * b) % 6, s = (i + 2 * kk) % 3 - 1;
    return (float)(v < 3 ? v - 3 : v - 2) + (float)s * 0x1.0p-12f;
}

/* C = A W^T on one entry of m = 2 TW_BM - 3 rows (a partial row tile), n = TW_N + 8 (a partial column
 * tile), k = 32 (stages + 1) + 4 (every stage reused, a partial k-tile), with row strides other than k and
 * NaN in every gap of A and W; compared exactly with the 3xTF32 sum computed here, and C's gaps untouched.
 * 0: the kernel ran and is right. */
static int tf32_wg_check(armt_runtime *rt, cl_program p) {
    const armt_device_tuning *t = &rt->tune;
    const int bm = 64 * t->tw_wgm, bn = t->tw_n, threads = 128 * t->tw_wgm;
    const int m = 2 * bm - 3, n = bn + 8, k = 32 * (t->tw_stages + 1) + 4;
    const int lda = k + 4, ldw = k + 8, ldc = n + 2;
    const float sentinel = 12345.0f;
    float *a = malloc((size_t)m * lda * 4), *w = malloc((size_t)n * ldw * 4),
          *c = malloc((size_t)m * ldc * 4);
    int bad = -1;
    cl_kernel kern = NULL;
    cl_mem ba = NULL, bw = NULL, bc = NULL;
    if (!a || !w || !c) goto out;
    for (int i = 0; i < m; i++)
        for (int kk = 0; kk < lda; kk++)
            a[(size_t)i * lda + kk] = kk < k ? check_value(i, kk, 7, 3) : NAN;
    for (int j = 0; j < n; j++)
        for (int kk = 0; kk < ldw; kk++)
            w[(size_t)j * ldw + kk] = kk < k ? check_value(j, kk, 5, 1) : NAN;
    for (size_t i = 0; i < (size_t)m * ldc; i++)
        c[i] = sentinel;
    cl_int e;
    kern = clCreateKernel(p, "armt_gemm_tf32_wg", &e);
    if (e == CL_SUCCESS)
        ba = clCreateBuffer(rt->context, CL_MEM_READ_ONLY | CL_MEM_COPY_HOST_PTR, (size_t)m * lda * 4, a, &e);
    if (e == CL_SUCCESS)
        bw = clCreateBuffer(rt->context, CL_MEM_READ_ONLY | CL_MEM_COPY_HOST_PTR, (size_t)n * ldw * 4, w, &e);
    if (e == CL_SUCCESS)
        bc =
            clCreateBuffer(rt->context, CL_MEM_READ_WRITE | CL_MEM_COPY_HOST_PTR, (size_t)m * ldc * 4, c, &e);
    if (e == CL_SUCCESS) {
        const armt_gemm_args ga = {.m = m,
                                   .n = n,
                                   .k = k,
                                   .a = ba,
                                   .lda = lda,
                                   .w = bw,
                                   .ldw = ldw,
                                   .c = bc,
                                   .ldc = ldc,
                                   .rope_t = 1}; /* strided mode, one entry at offset 0 */
        e = armt_gemm_set_args(kern, &ga);
    }
    if (e == CL_SUCCESS) {
        size_t gws[3] = {(size_t)((n + bn - 1) / bn * threads), (size_t)((m + bm - 1) / bm), 1};
        size_t lws[3] = {(size_t)threads, 1, 1};
        e = clEnqueueNDRangeKernel(rt->queue, kern, 3, NULL, gws, lws, 0, NULL, NULL);
    }
    if (e == CL_SUCCESS)
        e = clEnqueueReadBuffer(rt->queue, bc, CL_TRUE, 0, (size_t)m * ldc * 4, c, 0, NULL, NULL);
    if (e != CL_SUCCESS) {
        armt_log(ARMT_LOG_WARN, "fp32 GEMM: the wgmma check did not run: %s (%d)", armt_cl_error_str(e), e);
        goto out;
    }
    bad = 0;
    for (int i = 0; i < m && !bad; i++)
        for (int j = 0; j < ldc && !bad; j++) {
            double want = sentinel;
            if (j < n) {
                want = 0.0;
                for (int kk = 0; kk < k; kk++) {
                    const float x = a[(size_t)i * lda + kk], y = w[(size_t)j * ldw + kk];
                    const float xh = tf32_rna(x), xl = tf32_rna(x - xh), yh = tf32_rna(y),
                                yl = tf32_rna(y - yh);
                    want += (double)xh * yh + (double)xl * yh + (double)xh * yl;
                }
            }
            const float got = c[(size_t)i * ldc + j];
            if (got != (float)want) {
                armt_log(ARMT_LOG_WARN, "fp32 GEMM: the wgmma check computed C[%d][%d] = %.9g, want %.9g", i,
                         j, (double)got, want);
                bad = -1;
            }
        }
out:
    if (bc) clReleaseMemObject(bc);
    if (bw) clReleaseMemObject(bw);
    if (ba) clReleaseMemObject(ba);
    if (kern) clReleaseKernel(kern);
    free(a);
    free(w);
    free(c);
    return bad;
}

armt_status armt_tf32_program_build(armt_runtime *rt, cl_program *out, armt_err *err) {
    char opts[256];
    armt_tune_tf32_options(&rt->tune, opts, sizeof opts);
    cl_program p = NULL;
    ARMT_TRY(armt_program_build(rt, ARMT_P_GEMM_TF32, opts, &p, err));
    if (!rt->tune.tf_wgmma) {
        *out = p;
        return ARMT_OK;
    }
    const char *why = NULL;
    if (!rt->tune.mma_emulate) { /* the wgmma lines are PTX comments until the sm_90a rebuild */
        cl_program p2 = NULL;
        const cl_int e = armt_nv_rebuild_sm90a(rt->context, rt->device, p, "", &p2);
        if (e == CL_SUCCESS) {
            clReleaseProgram(p);
            p = p2;
        } else {
            if (p2) clReleaseProgram(p2);
            armt_log(ARMT_LOG_WARN, "fp32 GEMM: the sm_90a rebuild of the wgmma kernel failed: %s (%d)",
                     armt_cl_error_str(e), e);
            why = "its sm_90a rebuild failed";
        }
    }
    if (!why && tf32_wg_check(rt, p) != 0) why = "it failed its check";
    if (!why) {
        *out = p;
        return ARMT_OK;
    }
    armt_log(ARMT_LOG_WARN, "fp32 GEMM: the wgmma 3xTF32 kernel is not used (%s); the mma.sync one instead",
             why);
    clReleaseProgram(p);
    armt_tune_tf32_wgmma_failed(&rt->tune);
    armt_tune_tf32_options(&rt->tune, opts, sizeof opts);
    return armt_program_build(rt, ARMT_P_GEMM_TF32, opts, out, err);
}
