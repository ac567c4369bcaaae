/*
 * check_attention.c - the attention kernels against a double-precision CPU reference, kernel by kernel:
 * armt_attention (fp32, every device) and armt_attention_mma (tensor cores on NVIDIA; elsewhere its OpenCL C
 * stand-ins, -DARMT_MMA_EMULATE=1, which run the same fragment layouts, masks and online softmax).
 * Cases: partial query blocks and key tiles, GQA and MQA, head dims 16..128, one new row against a KV cache
 * whose unwritten rows hold NaN (they must be masked, never multiplied by a zero weight), every output
 * element written (outputs start as NaN). Then a whole bf16 forward on the tensor-core kernels (attention,
 * the bf16-A GEMM and its staging pass; emulated off NVIDIA) against the fp32 model.
 */
#include "config.h"

#include "internal.h"
#include "testutil.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define TOL_FP32 1e-5 /* fp32 kernel: max |out - ref| / max |ref| */
#define TOL_MMA 1e-2  /* bf16 operands (q, k, v, p rounded to 8 bits of mantissa) */

typedef struct acase {
    int hd, nh, nkv, G, T, Tk, q0, kv_off, warps, rt;
} acase;

static const acase cases[] = {
    {64, 4, 2, 2, 130, 130, 0, 0, 4, 1},  /* 3 query blocks (the last partial), 3 key tiles (the last partial) */
    {32, 2, 1, 1, 3, 101, 70, 8, 4, 1},   /* 3 new rows against a KV cache at offset 8; rows >= 73 unwritten */
    {16, 2, 2, 1, 1, 1, 0, 0, 2, 1},      /* one row, one key */
    {128, 2, 1, 1, 77, 77, 0, 0, 4, 1},   /* the largest head the mma kernel takes */
    {64, 4, 1, 1, 200, 200, 0, 0, 2, 1},  /* MQA, 2 warps per work-group */
    {64, 4, 2, 2, 130, 130, 0, 0, 2, 2}, /* two row tiles per warp: 3 query blocks of 64 */
    {32, 2, 1, 1, 3, 101, 70, 8, 2, 2},  /* the same against a KV cache */
};

static uint64_t rng = 88172645463325252ull;
static float urand(void) {
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return (float)((rng >> 11) * (1.0 / 9007199254740992.0)) * 2.0f - 1.0f;
}

/* out[g, r, h*hd + c] = sum_t softmax_t(q . k_t * scale) v_t over keys t <= q0 + r (and t < Tk) */
static void reference(const acase *c, const float *q, const float *k, const float *v, double *out) {
    size_t qd = (size_t)c->nh * c->hd, kvd = (size_t)c->nkv * c->hd;
    double scale = 1.0 / sqrt((double)c->hd);
    double *s = malloc((size_t)c->Tk * sizeof *s);
    for (int g = 0; g < c->G; g++)
        for (int r = 0; r < c->T; r++)
            for (int h = 0; h < c->nh; h++) {
                const float *qr = q + ((size_t)g * c->T + r) * qd + (size_t)h * c->hd;
                size_t kvh = (size_t)(h / (c->nh / c->nkv));
                int last = c->q0 + r < c->Tk - 1 ? c->q0 + r : c->Tk - 1;
                double mx = -INFINITY, sum = 0;
                for (int t = 0; t <= last; t++) {
                    const float *kr = k + c->kv_off + ((size_t)g * c->Tk + t) * kvd + kvh * c->hd;
                    double d = 0;
                    for (int e = 0; e < c->hd; e++) d += (double)qr[e] * kr[e];
                    s[t] = d * scale;
                    mx = fmax(mx, s[t]);
                }
                for (int t = 0; t <= last; t++) sum += (s[t] = exp(s[t] - mx));
                double *o = out + ((size_t)g * c->T + r) * qd + (size_t)h * c->hd;
                for (int e = 0; e < c->hd; e++) {
                    double a = 0;
                    for (int t = 0; t <= last; t++)
                        a += s[t] * v[c->kv_off + ((size_t)g * c->Tk + t) * kvd + kvh * c->hd + e];
                    o[e] = a / sum;
                }
            }
    free(s);
}

/* Runs one kernel of the case on the device; returns max |out - ref| / max |ref| (INFINITY on a NaN).
 * mode 0: armt_attention; 1: armt_attention_mma; 2: armt_attention_mma with the bf16 output (outb), which
 * must leave the fp32 output untouched; 3: armt_attention_mma_kvbf16 on K and V rounded to bf16 here. The
 * output goes to keep when not NULL. last_row0 > 0: rows of the last cell below it are not needed; rows the
 * kernel left alone (still NaN) are then not compared, and row 0 must be one of them. */
static double run_kernel(armt_runtime *rt, const acase *c, int mode, const float *q, const float *k, const float *v,
                         const double *ref, float *keep, int last_row0) {
    const int mma = mode > 0;
    armt_err err;
    armt_err_init(&err);
    char opt[160];
    const int rtiles = c->rt;
    snprintf(opt, sizeof opt, "-DATTN_HD=%d -DATTN_BK=16 -DATTN_MMA=%d -DAM_WARPS=%d -DAM_RT=%d", c->hd, mma,
             c->warps, rtiles);
    cl_program prog = NULL;
    armt_status st = armt_program_build(rt, ARMT_P_ATTENTION, opt, &prog, &err);
    ck_assert_msg(st == ARMT_OK, "%s", armt_err_msg(&err));
    armt_err_free(&err);
    cl_int e;
    cl_kernel kern = clCreateKernel(prog, mode == 3 ? "armt_attention_mma_kvbf16" : mma ? "armt_attention_mma"
                                                                                  : "armt_attention", &e);
    ck_assert_int_eq(e, CL_SUCCESS);
    size_t qn = (size_t)c->G * c->T * c->nh * c->hd, kn = (size_t)c->kv_off + (size_t)c->G * c->Tk * c->nkv * c->hd;
    cl_mem bq = clCreateBuffer(rt->context, CL_MEM_READ_ONLY | CL_MEM_COPY_HOST_PTR, qn * 4, (void *)q, &e);
    ck_assert_int_eq(e, CL_SUCCESS);
    cl_mem bk, bv;
    if (mode == 3) { /* bf16 K and V (round to nearest even; the quiet NaN of unwritten rows stays a NaN) */
        uint16_t *k16 = malloc(kn * 2), *v16 = malloc(kn * 2);
        for (size_t i = 0; i < kn; i++) {
            k16[i] = armt_bf16_bits(k[i]);
            v16[i] = armt_bf16_bits(v[i]);
        }
        bk = clCreateBuffer(rt->context, CL_MEM_READ_ONLY | CL_MEM_COPY_HOST_PTR, kn * 2, k16, &e);
        ck_assert_int_eq(e, CL_SUCCESS);
        bv = clCreateBuffer(rt->context, CL_MEM_READ_ONLY | CL_MEM_COPY_HOST_PTR, kn * 2, v16, &e);
        ck_assert_int_eq(e, CL_SUCCESS);
        free(k16);
        free(v16);
    } else {
        bk = clCreateBuffer(rt->context, CL_MEM_READ_ONLY | CL_MEM_COPY_HOST_PTR, kn * 4, (void *)k, &e);
        ck_assert_int_eq(e, CL_SUCCESS);
        bv = clCreateBuffer(rt->context, CL_MEM_READ_ONLY | CL_MEM_COPY_HOST_PTR, kn * 4, (void *)v, &e);
        ck_assert_int_eq(e, CL_SUCCESS);
    }
    float *out = malloc(qn * sizeof *out);
    for (size_t i = 0; i < qn; i++) out[i] = NAN;
    cl_mem bo = clCreateBuffer(rt->context, CL_MEM_READ_WRITE | CL_MEM_COPY_HOST_PTR, qn * 4, out, &e);
    ck_assert_int_eq(e, CL_SUCCESS);
    float scale = (float)(1.0 / sqrt((double)c->hd));
    cl_ulong kv_off = (cl_ulong)c->kv_off;
    ck_assert_int_eq(clSetKernelArg(kern, 0, sizeof bq, &bq), CL_SUCCESS);
    ck_assert_int_eq(clSetKernelArg(kern, 1, sizeof bk, &bk), CL_SUCCESS);
    ck_assert_int_eq(clSetKernelArg(kern, 2, sizeof bv, &bv), CL_SUCCESS);
    ck_assert_int_eq(clSetKernelArg(kern, 3, sizeof bo, &bo), CL_SUCCESS);
    ck_assert_int_eq(clSetKernelArg(kern, 4, sizeof c->T, &c->T), CL_SUCCESS);
    ck_assert_int_eq(clSetKernelArg(kern, 5, sizeof c->nh, &c->nh), CL_SUCCESS);
    ck_assert_int_eq(clSetKernelArg(kern, 6, sizeof c->nkv, &c->nkv), CL_SUCCESS);
    ck_assert_int_eq(clSetKernelArg(kern, 7, sizeof scale, &scale), CL_SUCCESS);
    ck_assert_int_eq(clSetKernelArg(kern, 8, sizeof kv_off, &kv_off), CL_SUCCESS);
    ck_assert_int_eq(clSetKernelArg(kern, 9, sizeof c->Tk, &c->Tk), CL_SUCCESS);
    ck_assert_int_eq(clSetKernelArg(kern, 10, sizeof c->q0, &c->q0), CL_SUCCESS);
    uint16_t *outb = NULL;
    cl_mem bob = NULL;
    if (mode == 2) {
        outb = malloc(qn * sizeof *outb);
        for (size_t i = 0; i < qn; i++) outb[i] = 0x7fc1; /* a bf16 NaN: every element must be written */
        bob = clCreateBuffer(rt->context, CL_MEM_READ_WRITE | CL_MEM_COPY_HOST_PTR, qn * 2, outb, &e);
        ck_assert_int_eq(e, CL_SUCCESS);
    }
    if (mma) ck_assert_int_eq(clSetKernelArg(kern, 11, sizeof bob, &bob), CL_SUCCESS);
    ck_assert_int_eq(clSetKernelArg(kern, mma ? 12 : 11, sizeof last_row0, &last_row0), CL_SUCCESS);
    size_t gws[3], lws[3] = {1, 1, 1};
    if (mma) {
        size_t bqr = 16 * (size_t)c->warps * (size_t)rtiles;
        lws[0] = 32 * (size_t)c->warps;
        gws[0] = ((size_t)c->T + bqr - 1) / bqr * lws[0];
    } else { /* the fp32 kernel's work-group size is the runtime's ATTN_BQ */
        lws[0] = (size_t)rt->tune.attn_bq;
        gws[0] = ((size_t)c->T + lws[0] - 1) / lws[0] * lws[0];
    }
    gws[1] = (size_t)c->nh;
    gws[2] = (size_t)c->G;
    e = clEnqueueNDRangeKernel(rt->queue, kern, 3, NULL, gws, lws, 0, NULL, NULL);
    ck_assert_msg(e == CL_SUCCESS, "enqueue: %d", e);
    ck_assert_int_eq(clEnqueueReadBuffer(rt->queue, bo, CL_TRUE, 0, qn * 4, out, 0, NULL, NULL), CL_SUCCESS);
    if (mode == 2) {
        for (size_t i = 0; i < qn; i++) ck_assert_msg(isnan(out[i]), "bf16 output: fp32 element %zu written", i);
        ck_assert_int_eq(clEnqueueReadBuffer(rt->queue, bob, CL_TRUE, 0, qn * 2, outb, 0, NULL, NULL), CL_SUCCESS);
        for (size_t i = 0; i < qn; i++) {
            uint32_t bits = (uint32_t)outb[i] << 16;
            memcpy(&out[i], &bits, 4);
        }
        clReleaseMemObject(bob);
        free(outb);
    }
    if (last_row0 > 0) { /* the last cell's rows left alone: skipped, not compared */
        const size_t qd = (size_t)c->nh * c->hd;
        int left = 0, row0_left = 0;
        for (int r = 0; r < last_row0 && r < c->T; r++) {
            float *row = out + ((size_t)(c->G - 1) * c->T + r) * qd;
            int all_nan = 1;
            for (size_t x = 0; x < qd && all_nan; x++) all_nan = isnan(row[x]);
            if (!all_nan) continue;
            for (size_t x = 0; x < qd; x++) row[x] = (float)ref[((size_t)(c->G - 1) * c->T + r) * qd + x];
            left += 1;
            row0_left |= r == 0;
        }
        ck_assert_msg(row0_left, "mode %d, last_row0 %d: row 0 of the last cell computed", mode, last_row0);
        ck_assert_msg(left <= last_row0, "mode %d: rows from last_row0 on skipped", mode);
    }
    if (keep) memcpy(keep, out, qn * sizeof *out);
    double d = 0, m = 0;
    for (size_t i = 0; i < qn; i++) {
        if (!isfinite(out[i])) {
            d = INFINITY;
            break;
        }
        d = fmax(d, fabs(out[i] - ref[i]));
        m = fmax(m, fabs(ref[i]));
    }
    clReleaseMemObject(bq);
    clReleaseMemObject(bk);
    clReleaseMemObject(bv);
    clReleaseMemObject(bo);
    clReleaseKernel(kern);
    clReleaseProgram(prog);
    free(out);
    return d / m;
}

/* A runtime whose attention_mma is real (NVIDIA, cc >= 8.0) or emulated (anywhere else). */
static armt_runtime *mma_runtime(void) {
    armt_runtime *rt = test_runtime();
    if (rt->tune.nv_mma) return rt;
    armt_runtime_free(rt);
    armt_runtime_params p = armt_runtime_default_params();
    p.build_options = "-DARMT_MMA_EMULATE=1";
    rt = NULL;
    ck_assert_msg(armt_runtime_create(&p, &rt) == ARMT_OK, "%s", armt_last_error());
    ck_assert(rt->tune.attn_mma);
    return rt;
}

START_TEST(test_attention_kernels) {
    const acase *c = &cases[_i];
    armt_runtime *rt = mma_runtime();
    size_t qn = (size_t)c->G * c->T * c->nh * c->hd, kvd = (size_t)c->nkv * c->hd;
    size_t kn = (size_t)c->kv_off + (size_t)c->G * c->Tk * kvd;
    float *q = malloc(qn * 4), *k = malloc(kn * 4), *v = malloc(kn * 4);
    double *ref = malloc(qn * sizeof *ref);
    for (size_t i = 0; i < qn; i++) q[i] = 2.0f * urand();
    for (size_t i = 0; i < kn; i++) {
        k[i] = 2.0f * urand();
        v[i] = urand();
    }
    /* a KV cache: rows past q0 + T are not written yet */
    for (int g = 0; g < c->G; g++)
        for (int t = c->q0 + c->T; t < c->Tk; t++)
            for (size_t e = 0; e < kvd; e++) {
                k[c->kv_off + ((size_t)g * c->Tk + t) * kvd + e] = NAN;
                v[c->kv_off + ((size_t)g * c->Tk + t) * kvd + e] = NAN;
            }
    for (int i = 0; i < c->kv_off; i++) k[i] = v[i] = NAN;
    reference(c, q, k, v, ref);
    float *o16 = malloc(qn * 4), *okv = malloc(qn * 4);
    double e32 = run_kernel(rt, c, 0, q, k, v, ref, NULL, 0);
    double e16 = run_kernel(rt, c, 1, q, k, v, ref, o16, 0);
    double eb = run_kernel(rt, c, 2, q, k, v, ref, NULL, 0);
    double ekv = run_kernel(rt, c, 3, q, k, v, ref, okv, 0);
    if (c->T > 128 && c->q0 == 0) { /* only the last row of the last cell needed: blocks below it skipped */
        double s32 = run_kernel(rt, c, 0, q, k, v, ref, NULL, c->T - 1);
        double skv = run_kernel(rt, c, 3, q, k, v, ref, NULL, c->T - 1);
        ck_assert_msg(s32 <= TOL_FP32 && skv <= TOL_MMA, "with rows skipped: fp32 %.3g, bf16 K/V %.3g", s32, skv);
    }
    /* bf16 K and V give the same bits as fp32 ones the kernel rounds itself (round to nearest even both) */
    size_t differ = 0;
    for (size_t i = 0; i < qn; i++) differ += memcmp(&o16[i], &okv[i], 4) != 0;
    fprintf(stderr, "attention hd %d nh %d/%d G %d T %d Tk %d q0 %d warps %d x %d rows: fp32 %.3g, mma (%s) %.3g, "
            "bf16 output %.3g, bf16 K/V %.3g\n", c->hd, c->nh, c->nkv, c->G, c->T, c->Tk, c->q0, c->warps, 16 * c->rt,
            e32, strstr(rt->build_options, "ARMT_MMA_EMULATE=1") ? "emulated" : "tensor cores", e16, eb, ekv);
    ck_assert_msg(e32 <= TOL_FP32, "fp32 attention: %.3g", e32);
    ck_assert_msg(e16 <= TOL_MMA, "mma attention: %.3g", e16);
    ck_assert_msg(eb <= TOL_MMA, "mma attention, bf16 output: %.3g", eb);
    ck_assert_msg(ekv <= TOL_MMA, "mma attention, bf16 K and V: %.3g", ekv);
    ck_assert_msg(differ == 0, "mma attention: bf16 K and V change %zu of %zu outputs", differ, qn);
    /* it is really bf16 arithmetic, not a copy of the fp32 path */
    ck_assert_msg(e16 > 1e-5, "mma attention equals the reference to %.3g: bf16 rounding missing?", e16);
    free(o16);
    free(okv);
    free(q);
    free(k);
    free(v);
    free(ref);
    armt_runtime_free(rt);
}
END_TEST

/* Through the library: a bf16 model's forward runs on the tensor-core kernels (profiled: attention, the
 * GEMM on a bf16-staged A, the staging pass), and its logits stay within the bf16 tolerance of the fp32
 * model's in both schedules. */
static const char *const tc_kernels[3] = {"armt_attention_mma_kvbf16", "armt_gemm_bf16bf16_mma", "armt_f32_to_bf16"};

/* The FLOPs of one GEMM site of the profile (0 when absent). */
static double site_flop(const char **names, const double *flop, size_t n, const char *name) {
    for (size_t i = 0; i < n; i++)
        if (strcmp(names[i], name) == 0) return flop[i];
    return 0.0;
}

static int close_to(double a, double b) { return fabs(a - b) <= 1e-9 * fabs(b); }

/* The GEMM profile (armt_ctx_profile_gemm) books every GEMM kernel's time to a site, and each site's FLOPs
 * follow from the weight shapes: wo as wq, wk and wv as wq * kv/q, wd as wq * ffn/q, gate and up each as
 * wd (or both in "wg+wu" when they are one GEMM). Returns the FLOPs booked to "wk+wv". */
static double check_gemm_profile(const armt_ctx *ctx, const armt_config *c, const char **knames, const double *ksecs,
                               size_t nk, int dual) {
    double kernel_s = 0.0, site_s = 0.0;
    for (size_t i = 0; i < nk && i < 64; i++)
        if (strncmp(knames[i], "armt_gemm", 9) == 0 || strcmp(knames[i], "clblast_sgemm") == 0) kernel_s += ksecs[i];
    const char *gn[32];
    double gs[32], gf[32];
    size_t ng = armt_ctx_profile_gemm(ctx, gn, gs, gf, 32);
    ck_assert_uint_gt(ng, 0);
    ck_assert_uint_le(ng, 32);
    for (size_t i = 0; i < ng; i++) site_s += gs[i];
    ck_assert_msg(fabs(site_s - kernel_s) <= 1e-6 * kernel_s, "GEMM sites %.9g s, GEMM kernels %.9g s", site_s,
                  kernel_s);
    double q = (double)c->n_heads * c->head_dim, kv = (double)c->n_kv_heads * c->head_dim, f = c->intermediate_size;
    double fq = site_flop(gn, gf, ng, "wq"), fd = site_flop(gn, gf, ng, "wd");
    ck_assert(fq > 0.0);
    ck_assert(close_to(site_flop(gn, gf, ng, "wo"), fq));
    /* k and v: one GEMM each, or (Hopper tiles, launches of several work-groups per compute unit pair) one
     * for both, booked as wk+wv */
    const double fkv = site_flop(gn, gf, ng, "wk+wv");
    ck_assert(close_to(site_flop(gn, gf, ng, "wk") + fkv / 2.0, fq * kv / q));
    ck_assert(close_to(site_flop(gn, gf, ng, "wv") + fkv / 2.0, fq * kv / q));
    if (!dual) ck_assert(fkv == 0.0);
    ck_assert(close_to(fd, fq * f / q));
    if (dual) {
        ck_assert(close_to(site_flop(gn, gf, ng, "wg+wu"), 2.0 * fd));
        ck_assert(site_flop(gn, gf, ng, "wg") == 0.0);
    } else {
        ck_assert(close_to(site_flop(gn, gf, ng, "wg"), fd));
        ck_assert(close_to(site_flop(gn, gf, ng, "wu"), fd));
    }
    /* every row of every cell: wq's FLOPs are 2 * rows * q * d with at least one row per token */
    ck_assert(fq / (2.0 * q * c->hidden_size) >= 45.0);
    return fkv;
}

/* A runtime with the tensor-core tiles of set `tiles` (0: mma.sync, 1: Hopper wgmma), real on an NVIDIA
 * GPU that has them, emulated anywhere else; NULL for the wgmma set on a real GPU without wgmma. */
static armt_runtime *tile_runtime(int tiles, int profile) {
    armt_runtime *rt = test_runtime();
    const int real = rt->tune.nv_mma, hopper = rt->info.nv_compute_capability == 90;
    armt_runtime_free(rt);
    if (tiles == 1 && real && !hopper) return NULL;
    armt_runtime_params p = armt_runtime_default_params();
    p.profile = profile;
    if (real)
        p.build_options = tiles == 0 ? "-DMMA_WGMMA=0" : NULL;
    else
        p.build_options = tiles == 0 ? "-DARMT_MMA_EMULATE=1" : "-DARMT_MMA_EMULATE=1 -DMMA_WGMMA=1";
    rt = NULL;
    ck_assert_msg(armt_runtime_create(&p, &rt) == ARMT_OK, "%s", armt_last_error());
    return rt;
}

/* _i = 0: the mma.sync GEMM tiles; 1: the Hopper wgmma tiles (128 x 256 x 64, two warpgroups, 192 KiB of
 * local memory), emulated where the device has no wgmma */
START_TEST(test_tensor_core_forward) {
    armt_runtime *rt = tile_runtime(_i, 1);
    if (!rt) return; /* a real GPU without wgmma */
    ck_assert_int_eq(rt->tune.mma_wgmma, _i);
    if (_i) ck_assert_int_eq(rt->tune.mma_bn, 256); /* the dual epilogues' tiles */
    armt_config c;
    ck_assert_int_eq(armt_config_preset("tiny", &c), ARMT_OK);
    size_t n = 45, V = (size_t)c.vocab_size;
    int32_t *ids = malloc(n * sizeof *ids);
    test_random_ids(ids, n, c.vocab_size, 9);
    float *out[3];
    int used[3][3] = {{0}}, rope_kernel[3] = {0}, clblast[3] = {0}, mem_read[3] = {0}, narrow[3] = {0};
    armt_stats stats[3];
    for (int run = 0; run < 3; run++) {
        armt_model_params mp = armt_model_default_params();
        mp.seed = 321;
        mp.wmv_std = 0.02f;
        mp.precision = run == 0 ? ARMT_PRECISION_FP32 : ARMT_PRECISION_BF16;
        armt_model *m = NULL;
        ck_assert_msg(armt_model_create_random(rt, &c, &mp, &m) == ARMT_OK, "%s", armt_last_error());
        armt_ctx *ctx = NULL;
        ck_assert_int_eq(armt_ctx_create(m, NULL, &ctx), ARMT_OK);
        out[run] = malloc(n * V * sizeof(float));
        armt_forward_params fp = armt_forward_default_params();
        fp.schedule = run == 2 ? ARMT_SCHEDULE_DIAGONAL : ARMT_SCHEDULE_SEQUENTIAL;
        fp.output = ARMT_OUTPUT_LOGITS_ALL;
        fp.out = out[run];
        fp.out_count = n * V;
        ck_assert_msg(armt_forward(ctx, ids, n, &fp) == ARMT_OK, "%s", armt_ctx_last_error(ctx));
        ck_assert_int_eq(armt_ctx_stats(ctx, &stats[run]), ARMT_OK);
        const char *names[64];
        double secs[64];
        size_t np = armt_ctx_profile(ctx, names, secs, 64);
        for (size_t i = 0; i < np && i < 64; i++) {
            for (int q = 0; q < 3; q++)
                if (strcmp(names[i], tc_kernels[q]) == 0) used[run][q] = 1;
            if (strcmp(names[i], "armt_rope") == 0) rope_kernel[run] = 1;
            if (strcmp(names[i], "clblast_sgemm") == 0) clblast[run] = 1;
            if (strcmp(names[i], "armt_mem_read") == 0) mem_read[run] = 1;
            if (strstr(names[i], "/narrow")) narrow[run] = 1;
        }
        const double fkv = check_gemm_profile(ctx, &c, names, secs, np, run > 0 && _i == 1);
        /* a diagonal step of two or more cells gives the Hopper tiles more than one work-group per two
         * compute units here: k and v run as one GEMM (kv_dual_ok in forward.c) */
        if (run == 2 && _i == 1 && rt->info.compute_units < 4)
            ck_assert_msg(fkv > 0.0, "the diagonal did not multiply k and v together");
        /* a call with no_profile records nothing and keeps the last profiled call's times */
        if (run == 1) {
            fp.no_profile = 1;
            ck_assert_int_eq(armt_ctx_reset(ctx), ARMT_OK);
            ck_assert_msg(armt_forward(ctx, ids, n, &fp) == ARMT_OK, "%s", armt_ctx_last_error(ctx));
            const char *names2[64];
            double secs2[64];
            size_t np2 = armt_ctx_profile(ctx, names2, secs2, 64);
            ck_assert_uint_eq(np2, np);
            for (size_t i = 0; i < np && i < 64; i++) {
                ck_assert_str_eq(names2[i], names[i]);
                ck_assert(secs2[i] == secs[i]);
            }
        }
        if (run > 0) { /* no output: the last layer for its memory rows only, the same memory state */
            const size_t nw = armt_ctx_memory_w_count(ctx), nz = armt_ctx_memory_z_count(ctx);
            float *w1 = malloc(nw * 4), *z1 = malloc(nz * 4), *w2 = malloc(nw * 4), *z2 = malloc(nz * 4);
            ck_assert_int_eq(armt_ctx_memory_get(ctx, w1, z1, NULL), ARMT_OK);
            armt_forward_params fn = armt_forward_default_params();
            fn.schedule = fp.schedule;
            ck_assert_int_eq(armt_ctx_reset(ctx), ARMT_OK);
            ck_assert_msg(armt_forward(ctx, ids, n, &fn) == ARMT_OK, "%s", armt_ctx_last_error(ctx));
            ck_assert_int_eq(armt_ctx_memory_get(ctx, w2, z2, NULL), ARMT_OK);
            ck_assert_msg(memcmp(w1, w2, nw * 4) == 0 && memcmp(z1, z2, nz * 4) == 0,
                          "bf16 %s: memory state with no output differs from the all-logits run's",
                          run == 2 ? "diagonal" : "sequential");
            free(w1), free(z1), free(w2), free(z2);
        }
        armt_ctx_free(ctx);
        armt_model_free(m);
    }
    for (int q = 0; q < 3; q++) {
        ck_assert_msg(!used[0][q], "the fp32 model ran %s", tc_kernels[q]);
        ck_assert_msg(used[1][q] && used[2][q], "the bf16 model did not run %s (seq %d, diag %d)", tc_kernels[q],
                      used[1][q], used[2][q]);
    }
    /* RoPE: the rope kernel in fp32; in bf16 the q and k GEMMs apply it (head dim 16 divides both tiles'
     * columns per thread) */
    ck_assert_msg(rope_kernel[0] && !rope_kernel[1] && !rope_kernel[2], "rope kernel: fp32 %d, bf16 %d / %d",
                  rope_kernel[0], rope_kernel[1], rope_kernel[2]);
    /* the memory read: its own kernel in fp32; in bf16 the read product's GEMM adds into x */
    ck_assert_msg(mem_read[0] && !mem_read[1] && !mem_read[2], "mem_read kernel: fp32 %d, bf16 %d / %d", mem_read[0],
                  mem_read[1], mem_read[2]);
    /* both sets have narrow tiles (64 x 64), which the memory projections W_mq and W_mk (n = d_mem = 8) run on */
    ck_assert_int_gt(rt->tune.nar_bn, 8);
    ck_assert_msg(!narrow[0] && narrow[1] && narrow[2], "narrow tiles: fp32 %d, bf16 %d / %d", narrow[0], narrow[1],
                  narrow[2]);
    /* every GEMM of a bf16 model on tensor cores is ours, the memory update's too (split into bf16 parts) */
    ck_assert_msg(clblast[0] && !clblast[1] && !clblast[2], "CLBlast: fp32 %d, bf16 %d / %d", clblast[0], clblast[1],
                  clblast[2]);
    /* the sequential schedule makes the same GEMM calls in fp32 and bf16, except that the wgmma tiles
     * multiply gate and up in one call: one call fewer per step */
    ck_assert_uint_eq(stats[1].gemm_calls, stats[0].gemm_calls - (_i ? stats[1].steps : 0));
    double e1 = test_rel_err(out[1], out[0], n * V), e2 = test_rel_err(out[2], out[0], n * V);
    fprintf(stderr, "tiny on tensor cores (%s tiles): bf16 vs fp32 sequential %.3g, diagonal %.3g\n",
            _i ? "wgmma" : "mma.sync", e1, e2);
    for (int run = 0; run < 3; run++) free(out[run]);
    free(ids);
    armt_runtime_free(rt);
    ck_assert_msg(e1 <= 2e-2 && e2 <= 2e-2, "bf16 vs fp32: %.3g / %.3g", e1, e2);
}
END_TEST

/* Generation on tensor cores (the decode steps' KV cache, RoPE in the q/k GEMMs at positions pos0 > 0, the
 * fused memory read on every new row): greedy tokens of a bf16 model against the double-precision
 * reference on the same bf16 weights. bf16 operands move the logits a little, so a token is compared while
 * the reference's choice is clear (margin over 2% of the step's largest |logit|); the first token that
 * differs on a closer call ends the comparison of that run. _i as in test_tensor_core_forward.
 * Limit: the tiny random model's greedy tokens follow its residual path (tied embeddings) more than its
 * attention, so a wrong decode position in the fused RoPE (pos0 forced to 0) still passes here; that
 * arithmetic is checked by gemm_bf16_test's RoPE cases (pos0 + r % T against fp64). */
START_TEST(test_tensor_core_generate) {
    armt_runtime *rt = tile_runtime(_i, 0);
    if (!rt) return;
    armt_config c;
    ck_assert_int_eq(armt_config_preset("tiny", &c), ARMT_OK);
    c.segment_size = 8;
    c.num_mem_tokens = 3;
    armt_model_params mp = armt_model_default_params();
    mp.seed = 500;
    mp.wmv_std = 0.05f;
    mp.precision = ARMT_PRECISION_BF16;
    armt_model *m = NULL;
    ck_assert_msg(armt_model_create_random(rt, &c, &mp, &m) == ARMT_OK, "%s", armt_last_error());
    test_host_model *h = test_host_model_read(m);
    const size_t lens[2] = {21, 24};
    const int max_new = 10;
    int compared = 0;
    for (int li = 0; li < 2; li++) {
        size_t n = lens[li];
        int32_t prompt[24], ref_tok[16], tok[16];
        double margin[16];
        test_random_ids(prompt, n, c.vocab_size, 40 + (uint64_t)li);
        ref_state *rs = ref_state_new(&c);
        ck_assert_int_eq(ref_armt_generate_greedy_margins(&h->ref, rs, prompt, n, max_new, -1, ref_tok, margin),
                         max_new);
        ref_state_free(rs);
        for (int sch = ARMT_SCHEDULE_SEQUENTIAL; sch <= ARMT_SCHEDULE_DIAGONAL; sch++) {
            armt_ctx *ctx = NULL;
            ck_assert_int_eq(armt_ctx_create(m, NULL, &ctx), ARMT_OK);
            armt_generate_params gp = armt_generate_default_params();
            gp.schedule = (armt_schedule)sch;
            gp.max_new_tokens = max_new;
            ck_assert_msg(armt_generate(ctx, prompt, n, &gp, tok, 16, NULL) == ARMT_OK, "%s",
                          armt_ctx_last_error(ctx));
            for (int i = 0; i < max_new; i++) {
                if (tok[i] != ref_tok[i]) {
                    ck_assert_msg(margin[i] < 0.02, "prompt %zu, schedule %d: token %d is %d, reference %d by a "
                                  "margin of %.3g", n, sch, i, tok[i], ref_tok[i], margin[i]);
                    break;
                }
                compared++;
            }
            armt_ctx_free(ctx);
        }
    }
    fprintf(stderr, "tiny generation on tensor cores (%s tiles): %d of %d tokens equal the reference's\n",
            _i ? "wgmma" : "mma.sync", compared, 4 * max_new);
    /* most tokens are compared, or the test would say little */
    ck_assert_int_ge(compared, 2 * max_new);
    test_host_model_free(h);
    armt_model_free(m);
    armt_runtime_free(rt);
}
END_TEST

static Suite *suite(void) {
    Suite *s = suite_create("attention");
    TCase *tc = tcase_create("attention");
    tcase_set_timeout(tc, 1200);
    tcase_add_loop_test(tc, test_attention_kernels, 0, (int)(sizeof cases / sizeof cases[0]));
    tcase_add_loop_test(tc, test_tensor_core_forward, 0, 2);
    tcase_add_loop_test(tc, test_tensor_core_generate, 0, 2);
    suite_add_tcase(s, tc);
    return s;
}

int main(void) { return test_run_suite(suite(), 1); }
