/*
 * attention_check.c - the fp32 models' tensor-core attention (attention_mma.cl built with AM_TF32: 3xTF32)
 * checked against the fp32 kernel of the same program and an fp64 reference on one cell when a model builds
 * it (lib/compute/model.c): a driver or a GPU on which the fragments come out otherwise costs a warning and
 * the fp32 kernel, never wrong attention; and where AUTO chose it (tune.attn_tf32_gate), the model keeps it
 * only if its rms error against fp64 is at most the fp32 kernel's on this device (the fp32 default must be
 * at least as accurate as the fp32 kernel it replaces). On a GPU the cell is a full ARMT cell of the 1B
 * shapes' size (1,152 rows and keys, causal, two heads of the model's head dimension; with the gate, the
 * reference on every 16th row and the last 16: some 2e7 multiply-adds on the host), on the tensor cores'
 * stand-ins (tests, Oclgrind) 150 rows.
 */
#include "config.h"

#include "device/internal.h"

#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

cl_int armt_attention_cell_launch(armt_runtime *rt, cl_kernel k, int mma, const armt_attention_tuning *at,
                                  cl_mem bq, cl_mem bk, cl_mem bv, cl_mem bo, int T, int nh, int nkv) {
    const int q0 = 0, zero = 0, none = -1;
    const float scale = (float)(1.0 / sqrt((double)at->head_dim));
    const cl_ulong kv_off = 0;
    const cl_mem outb = NULL;
    cl_uint a = 0;
    cl_int e = CL_SUCCESS;
    e |= clSetKernelArg(k, a++, sizeof bq, &bq);
    e |= clSetKernelArg(k, a++, sizeof bk, &bk);
    e |= clSetKernelArg(k, a++, sizeof bv, &bv);
    e |= clSetKernelArg(k, a++, sizeof bo, &bo);
    e |= clSetKernelArg(k, a++, sizeof T, &T);
    e |= clSetKernelArg(k, a++, sizeof nh, &nh);
    e |= clSetKernelArg(k, a++, sizeof nkv, &nkv);
    e |= clSetKernelArg(k, a++, sizeof scale, &scale);
    e |= clSetKernelArg(k, a++, sizeof kv_off, &kv_off);
    e |= clSetKernelArg(k, a++, sizeof T, &T); /* Tk */
    e |= clSetKernelArg(k, a++, sizeof q0, &q0);
    if (mma) e |= clSetKernelArg(k, a++, sizeof outb, &outb);
    e |= clSetKernelArg(k, a++, sizeof zero, &zero); /* last_row0 */
    e |= clSetKernelArg(k, a++, sizeof zero, &zero); /* mem_all */
    e |= clSetKernelArg(k, a++, sizeof none, &none); /* j_short */
    e |= clSetKernelArg(k, a++, sizeof T, &T);       /* T_short */
    e |= clSetKernelArg(k, a++, sizeof zero, &zero); /* win */
    e |= clSetKernelArg(k, a++, sizeof zero, &zero); /* win_first */
    e |= clSetKernelArg(k, a++, sizeof none, &none); /* j_first */
    e |= clSetKernelArg(k, a++, sizeof zero, &zero); /* ns */
    e |= clSetKernelArg(k, a++, sizeof zero, &zero); /* nmem */
    size_t lws[3] = {1, 1, 1}, gws[3] = {0, (size_t)nh, 1};
    if (mma) {
        const size_t bqr = 16 * (size_t)at->warps * (size_t)at->rtiles;
        lws[0] = 32 * (size_t)at->warps;
        gws[0] = ((size_t)T + bqr - 1) / bqr * lws[0];
    } else {
        lws[0] = (size_t)rt->tune.attn_bq;
        gws[0] = ((size_t)T + lws[0] - 1) / lws[0] * lws[0];
    }
    if (e == CL_SUCCESS) e = clEnqueueNDRangeKernel(rt->queue, k, 3, NULL, gws, lws, 0, NULL, NULL);
    return e;
}

/* Runs one attention kernel of p over one cell of T rows (nh heads on one KV head); 0 on success, out holds
 * its output. */
static cl_int run(armt_runtime *rt, cl_program p, const char *name, int mma, const armt_attention_tuning *at,
                  cl_mem bq, cl_mem bk, cl_mem bv, cl_mem bo, int T, int nh, float *out, size_t n) {
    cl_int e;
    cl_kernel k = clCreateKernel(p, name, &e);
    if (e != CL_SUCCESS) return e;
    e = armt_attention_cell_launch(rt, k, mma, at, bq, bk, bv, bo, T, nh, 1);
    if (e == CL_SUCCESS) e = clEnqueueReadBuffer(rt->queue, bo, CL_TRUE, 0, n * 4, out, 0, NULL, NULL);
    clReleaseKernel(k);
    return e;
}

/* The rows the reference checks: every 16th (15, 31, ...) and the last 16. */
static int checked(int T, int r) { return r % 16 == 15 || r >= T - 16; }

void armt_attention_ref_row(const float *q, const float *k, const float *v, int r, int nh, int nkv, int hd,
                            double *s, double *o) {
    const double scale = 1.0 / sqrt((double)hd);
    for (int h = 0; h < nh; h++) {
        const float *qr = q + ((size_t)r * nh + (size_t)h) * (size_t)hd;
        const size_t kvh = (size_t)(h / (nh / nkv)), kstride = (size_t)nkv * hd;
        double mx = -INFINITY, sum = 0.0;
        for (int t = 0; t <= r; t++) {
            const float *kr = k + (size_t)t * kstride + kvh * hd;
            double d = 0.0;
            for (int e = 0; e < hd; e++)
                d += (double)qr[e] * kr[e];
            s[t] = d * scale;
            mx = fmax(mx, s[t]);
        }
        for (int t = 0; t <= r; t++)
            sum += (s[t] = exp(s[t] - mx));
        double *oh = o + (size_t)h * hd;
        for (int e = 0; e < hd; e++)
            oh[e] = 0.0;
        for (int t = 0; t <= r; t++) {
            const float *vr = v + (size_t)t * kstride + kvh * hd;
            for (int e = 0; e < hd; e++)
                oh[e] += s[t] * vr[e];
        }
        for (int e = 0; e < hd; e++)
            oh[e] /= sum;
    }
}

int armt_attention_tf32_check(armt_runtime *rt, cl_program p, const armt_attention_tuning *at, int gate) {
    /* (the stand-ins: three query blocks of 64 rows, the first partial) */
    const int T = rt->tune.mma_emulate ? 150 : 1152, nh = 2, hd = at->head_dim;
    const size_t nq = (size_t)T * nh * hd, nk = (size_t)T * hd;
    float *q = malloc(nq * 4), *kv = malloc(2 * nk * 4), *o32 = malloc(nq * 4), *otf = malloc(nq * 4);
    double *s = malloc((size_t)T * sizeof *s), *ref = malloc((size_t)nh * hd * sizeof *ref);
    int bad = -1;
    cl_mem bq = NULL, bk = NULL, bv = NULL, bo = NULL;
    cl_int e = CL_OUT_OF_HOST_MEMORY;
    if (q && kv && o32 && otf && s && ref) {
        uint64_t x = 0x9e3779b97f4a7c15ull;
        for (size_t i = 0; i < nq + 2 * nk; i++) {
            x = x * 6364136223846793005ull + 1442695040888963407ull;
            const float u = (float)((double)(x >> 40) / (double)(1ull << 24)) * 2.0f - 1.0f; /* [-1, 1) */
            if (i < nq)
                q[i] = 2.0f * u;
            else
                kv[i - nq] = (i - nq < nk ? 2.0f : 1.0f) * u;
        }
        bq = clCreateBuffer(rt->context, CL_MEM_READ_ONLY | CL_MEM_COPY_HOST_PTR, nq * 4, q, &e);
        if (e == CL_SUCCESS)
            bk = clCreateBuffer(rt->context, CL_MEM_READ_ONLY | CL_MEM_COPY_HOST_PTR, nk * 4, kv, &e);
        if (e == CL_SUCCESS)
            bv = clCreateBuffer(rt->context, CL_MEM_READ_ONLY | CL_MEM_COPY_HOST_PTR, nk * 4, kv + nk, &e);
        if (e == CL_SUCCESS) bo = clCreateBuffer(rt->context, CL_MEM_READ_WRITE, nq * 4, NULL, &e);
    }
    if (e == CL_SUCCESS) e = run(rt, p, "armt_attention", 0, at, bq, bk, bv, bo, T, nh, o32, nq);
    if (e == CL_SUCCESS) e = run(rt, p, "armt_attention_mma", 1, at, bq, bk, bv, bo, T, nh, otf, nq);
    if (e != CL_SUCCESS) {
        armt_log(ARMT_LOG_WARN, "fp32 attention: the 3xTF32 check did not run: %s (%d)", armt_cl_error_str(e),
                 e);
    } else {
        /* both at fp32 level (each about 1e-6 of a double reference in tests/check_attention.c); a plain
         * TF32 product is 5e-4 off, a wrong fragment far more */
        double d = 0.0, m = 0.0, d32 = 0.0, dtf = 0.0, r2 = 0.0;
        for (size_t i = 0; i < nq; i++) {
            d = isfinite(otf[i]) ? fmax(d, fabs((double)otf[i] - o32[i])) : INFINITY;
            m = fmax(m, fabs((double)o32[i]));
        }
        bad = d <= 1e-4 * m ? 0 : -1;
        if (bad)
            armt_log(ARMT_LOG_WARN, "fp32 attention: the 3xTF32 kernel is %.3g (relative) off the fp32 one",
                     d / m);
        /* with the gate: rms errors of both against fp64 on the checked rows */
        for (int r = 0; gate && !bad && r < T; r++) {
            if (!checked(T, r)) continue;
            armt_attention_ref_row(q, kv, kv + nk, r, nh, 1, hd, s, ref);
            for (size_t x = 0; x < (size_t)nh * hd; x++) {
                const size_t i = (size_t)r * nh * hd + x;
                d32 += (o32[i] - ref[x]) * (o32[i] - ref[x]);
                dtf += (otf[i] - ref[x]) * (otf[i] - ref[x]);
                r2 += ref[x] * ref[x];
            }
        }
        if (gate && !bad) {
            const double e32 = sqrt(d32 / r2), etf = sqrt(dtf / r2);
            armt_log(ARMT_LOG_DEBUG,
                     "fp32 attention: rms error against fp64 on %d rows: 3xTF32 %.3g, fp32 kernel %.3g", T,
                     etf, e32);
            if (etf > e32) {
                armt_log(ARMT_LOG_INFO,
                         "fp32 attention: the fp32 kernel, more accurate here than 3xTF32 (rms error against "
                         "fp64 %.3g against %.3g)",
                         e32, etf);
                bad = 1;
            }
        }
    }
    if (bo) clReleaseMemObject(bo);
    if (bv) clReleaseMemObject(bv);
    if (bk) clReleaseMemObject(bk);
    if (bq) clReleaseMemObject(bq);
    free(q);
    free(kv);
    free(o32);
    free(otf);
    free(s);
    free(ref);
    return bad;
}
