/*
 * check_attention.c - the attention kernels against a double-precision CPU reference, kernel by kernel:
 * armt_attention (fp32, every device) and armt_attention_mma (tensor cores on NVIDIA; elsewhere its OpenCL C
 * stand-ins, ARMT_TC_EMULATE, which run the same fragment layouts, masks and online softmax), in its bf16
 * build and its fp32 models' build (AM_TF32: 3xTF32, at fp32 level; its one-product build far off).
 * Cases: partial query blocks and key tiles, GQA and MQA, head dims 16..128, one new row against a KV cache
 * whose unwritten rows hold NaN (they must be masked, never multiplied by a zero weight), every output
 * element written (outputs start as NaN), the inner loop's memory rows that see their whole cell (a cell with
 * fewer rows among them), and src/armt_sw.py's sliding window (WIN_ARGS of attention.cl: each cell's window
 * rows before its own, the rows below its cached ones NaN, the sink row, text rows and memory rows with
 * their own first keys, a short cell, a generation row). The whole forward on the tensor-core kernels:
 * check_tensor_cores.c.
 */
#include "config.h"

#include "compute/ops.h"
#include "device/internal.h"
#include "testutil.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define TOL_FP32 1e-5 /* fp32 kernel: max |out - ref| / max |ref| */
#define TOL_MMA  1e-2 /* bf16 operands (q, k, v, p rounded to 8 bits of mantissa) */
#define TOL_TF32 2e-5 /* 3xTF32 (AM_TF32): fp32 level, within twice TOL_FP32 */

typedef struct acase {
    int hd, nh, nkv, G, T, Tk, q0, kv_off, warps, rt;
    int mem_all, j_short, T_short; /* memory rows that see their whole cell; cell j_short has T_short rows */
    /* sliding window (win 0: none): rows cached by cell j_first (the others: win), sink rows, memory rows */
    int win, win_first, j_first, ns, nmem;
} acase;

/* Four programs (each compiled once per test binary from PoCL's kernel cache, the emulated ones in seconds
 * to a minute): the paths of the mma kernel are one or two m16 row tiles per warp (AM_RT) and K/V tiles
 * staged by (emulated) cp.async (heads up to 64) or through registers (128); head dim 16 on 4 warps of one
 * row tile is the emulation's own pick for the tiny model (the program test_tensor_core_forward builds). */
static const acase cases[] = {
    /* 5 query blocks (the last partial), 3 key tiles (the last partial) */
    {64, 4, 2, 2, 130, 130, 0, 0, 2, 1, 0, -1, 0, 0, 0, 0, 0, 0},
    /* MQA */
    {64, 4, 1, 1, 200, 200, 0, 0, 2, 1, 0, -1, 0, 0, 0, 0, 0, 0},
    /* two row tiles per warp: 3 query blocks of 64 */
    {32, 4, 2, 2, 130, 130, 0, 0, 2, 2, 0, -1, 0, 0, 0, 0, 0, 0},
    /* 3 new rows against a KV cache at offset 8; rows >= 73 unwritten */
    {32, 2, 1, 1, 3, 101, 70, 8, 2, 2, 0, -1, 0, 0, 0, 0, 0, 0},
    /* the largest head the mma kernel takes (K/V through registers) */
    {128, 2, 1, 1, 77, 77, 0, 0, 2, 1, 0, -1, 0, 0, 0, 0, 0, 0},
    /* one row, one key */
    {16, 2, 2, 1, 1, 1, 0, 0, 4, 1, 0, -1, 0, 0, 0, 0, 0, 0},
    /* the last 20 rows of each cell see the whole cell; cell 1 holds 50 rows (memory rows 30..49) */
    {64, 4, 2, 3, 130, 130, 0, 0, 2, 1, 20, 1, 50, 0, 0, 0, 0, 0},
    {32, 2, 1, 2, 75, 75, 0, 0, 2, 2, 9, 0, 75, 0, 0, 0, 0, 0},
    /* sliding window: 3 cells (segments 2, 1, 0) of [sink, 8 text, 4 memory] rows after an 8-row window,
     * segment 0's (cell 2) holding 5, segment 2's (cell 0) short (5 text rows) */
    {32, 4, 2, 3, 13, 21, 8, 0, 2, 2, 0, 0, 10, 8, 5, 2, 1, 4},
    /* the cp.async tiles across a 64-row window holding 20 rows in segment 0's cell (cell 1) */
    {64, 4, 2, 2, 75, 139, 64, 0, 2, 1, 0, -1, 0, 64, 20, 1, 1, 10},
    /* a 128-row window (two key tiles) before [sink, 160 text, 8 memory] rows: blocks of later text rows
     * start past the window's first tiles (armt_attn_block_lo); cell 0 short (141 text rows), cell 1 holding
     * 100 cached rows; then full windows on two row tiles per warp and four warps */
    {64, 4, 2, 2, 169, 297, 128, 0, 2, 1, 0, 0, 150, 128, 100, 1, 1, 8},
    {32, 2, 1, 2, 169, 297, 128, 0, 4, 2, 0, -1, 0, 128, 128, -1, 1, 8},
    /* generation: one row at tail position 40 after a 70-row window of 30 (a KV cache at offset 8) */
    {64, 4, 1, 1, 1, 160, 110, 8, 2, 1, 0, -1, 0, 70, 30, 0, 1, 0},
    /* decode over chunks of ARMT_ATTN_DCHUNK keys (eleven of 64), the first ones with no key the row sees (a
     * 300-row window holding 10, none visible to a text row this far on) */
    {64, 4, 2, 1, 1, 700, 600, 8, 2, 1, 0, -1, 0, 300, 10, 0, 1, 0},
    /* decode with more chunks (21) than the combine's work-items (head dim 16): two blocks of chunks */
    {16, 2, 1, 1, 1, 1400, 1300, 0, 4, 1, 0, -1, 0, 0, 0, 0, 0, 0},
};

/* The last key row r of cell g sees (the kernels' armt_attention_limit, written again here). */
static int limit(const acase *c, int g, int r) {
    const int Tg = g == c->j_short ? c->T_short : c->T;
    int last = c->q0 + r;
    if (c->mem_all > 0 && r >= Tg - c->mem_all && c->q0 + Tg - 1 > last) last = c->q0 + Tg - 1;
    return last < c->Tk - 1 ? last : c->Tk - 1;
}

/* Rows cached by cell g with a sliding window. */
static int cached(const acase *c, int g) { return g == c->j_first ? c->win_first : c->win; }

/* Key t of cell g seen by the query at key position kp (<= its limit): every one without a window; with
 * one, the cell's own rows (t >= win), and of its cached rows (win - S .. win - 1, index u from the oldest)
 * none for the sink row, all for a memory row, u >= i for text row i. */
static int visible(const acase *c, int g, int kp, int t) {
    if (c->win == 0 || t >= c->win) return 1;
    int S = cached(c, g), u = t - (c->win - S), p = kp - c->win;
    int rows = g == c->j_short ? c->T_short : c->T;
    if (u < 0 || p < c->ns) return 0;
    if (c->nmem > 0 && p >= rows - c->nmem) return 1;
    return u >= p - c->ns;
}

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
                int last = limit(c, g, r);
                double mx = -INFINITY, sum = 0;
                for (int t = 0; t <= last; t++) {
                    s[t] = -INFINITY;
                    if (!visible(c, g, c->q0 + r, t)) continue;
                    const float *kr = k + c->kv_off + ((size_t)g * c->Tk + t) * kvd + kvh * c->hd;
                    double d = 0;
                    for (int e = 0; e < c->hd; e++)
                        d += (double)qr[e] * kr[e];
                    s[t] = d * scale;
                    mx = fmax(mx, s[t]);
                }
                for (int t = 0; t <= last; t++)
                    sum += (s[t] = s[t] == -INFINITY ? 0.0 : exp(s[t] - mx));
                double *o = out + ((size_t)g * c->T + r) * qd + (size_t)h * c->hd;
                for (int e = 0; e < c->hd; e++) {
                    double a = 0;
                    for (int t = 0; t <= last; t++)
                        if (s[t] != 0.0)
                            a += s[t] * v[c->kv_off + ((size_t)g * c->Tk + t) * kvd + kvh * c->hd + e];
                    o[e] = a / sum;
                }
            }
    free(s);
}

/* Runs one kernel of the case on the device; returns max |out - ref| / max |ref| (INFINITY on a NaN).
 * mode 0: armt_attention; 1: armt_attention_mma; 2: armt_attention_mma with the bf16 output (outb), which
 * must leave the fp32 output untouched; 3: armt_attention_mma_kvbf16 on K and V rounded to bf16 here. The
 * output goes to keep when not NULL. last_row0 > 0: rows of the last cell below it are not needed, and their
 * q rows hold NaN (the q projection skips them); such a row is either left alone (still the SENTINEL NaN),
 * or written with finite values (the kernels read a zero q there), and is not compared; row 0 must be left
 * alone. */
static double run_kernel(armt_runtime *rt, cl_program prog, const acase *c, int mode, const float *q,
                         const float *k, const float *v, const double *ref, float *keep, int last_row0) {
    const int mma = mode > 0;
    const int rtiles = c->rt;
    cl_int e;
    cl_kernel kern = clCreateKernel(prog,
                                    mode == 3 ? "armt_attention_mma_kvbf16"
                                    : mma     ? "armt_attention_mma"
                                              : "armt_attention",
                                    &e);
    ck_assert_int_eq(e, CL_SUCCESS);
    size_t qn = (size_t)c->G * c->T * c->nh * c->hd,
           kn = (size_t)c->kv_off + (size_t)c->G * c->Tk * c->nkv * c->hd;
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
    const uint32_t sentinel = 0x7fa5a5a5u; /* a NaN no arithmetic produces */
    for (size_t i = 0; i < qn; i++)
        memcpy(&out[i], &sentinel, 4);
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
        for (size_t i = 0; i < qn; i++)
            outb[i] = 0x7fc1; /* a bf16 NaN: every element must be written */
        bob = clCreateBuffer(rt->context, CL_MEM_READ_WRITE | CL_MEM_COPY_HOST_PTR, qn * 2, outb, &e);
        ck_assert_int_eq(e, CL_SUCCESS);
    }
    if (mma) ck_assert_int_eq(clSetKernelArg(kern, 11, sizeof bob, &bob), CL_SUCCESS);
    ck_assert_int_eq(clSetKernelArg(kern, mma ? 12 : 11, sizeof last_row0, &last_row0), CL_SUCCESS);
    ck_assert_int_eq(clSetKernelArg(kern, mma ? 13 : 12, sizeof c->mem_all, &c->mem_all), CL_SUCCESS);
    int j_short = c->mem_all || c->win ? c->j_short : -1, T_short = c->mem_all || c->win ? c->T_short : c->T;
    ck_assert_int_eq(clSetKernelArg(kern, mma ? 14 : 13, sizeof j_short, &j_short), CL_SUCCESS);
    ck_assert_int_eq(clSetKernelArg(kern, mma ? 15 : 14, sizeof T_short, &T_short), CL_SUCCESS);
    const int win_args[5] = {c->win, c->win_first, c->win ? c->j_first : -1, c->ns, c->nmem};
    for (int a = 0; a < 5; a++)
        ck_assert_int_eq(clSetKernelArg(kern, (cl_uint)((mma ? 16 : 15) + a), sizeof(int), &win_args[a]),
                         CL_SUCCESS);
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
        for (size_t i = 0; i < qn; i++)
            ck_assert_msg(isnan(out[i]), "bf16 output: fp32 element %zu written", i);
        ck_assert_int_eq(clEnqueueReadBuffer(rt->queue, bob, CL_TRUE, 0, qn * 2, outb, 0, NULL, NULL),
                         CL_SUCCESS);
        for (size_t i = 0; i < qn; i++) {
            uint32_t bits = (uint32_t)outb[i] << 16;
            memcpy(&out[i], &bits, 4);
        }
        clReleaseMemObject(bob);
        free(outb);
    }
    if (last_row0 > 0) { /* the last cell's rows below last_row0: left alone or finite, not compared */
        const size_t qd = (size_t)c->nh * c->hd;
        int left = 0, row0_left = 0;
        for (int r = 0; r < last_row0 && r < c->T; r++) {
            float *row = out + ((size_t)(c->G - 1) * c->T + r) * qd;
            int alone = 1;
            for (size_t x = 0; x < qd && alone; x++)
                alone = memcmp(&row[x], &sentinel, 4) == 0;
            for (size_t x = 0; x < qd && !alone; x++)
                ck_assert_msg(isfinite(row[x]), "mode %d, last_row0 %d: unneeded row %d written as %g", mode,
                              last_row0, r, (double)row[x]);
            for (size_t x = 0; x < qd; x++)
                row[x] = (float)ref[((size_t)(c->G - 1) * c->T + r) * qd + x];
            left += alone;
            row0_left |= alone && r == 0;
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
    free(out);
    return d / m;
}

/* bf16 bits of x, rounded to nearest even (as armt_to_bf16; NaN stays NaN) */
static uint16_t bf16_bits(float x) {
    uint32_t u;
    memcpy(&u, &x, 4);
    if ((u & 0x7fffffffu) > 0x7f800000u) return (uint16_t)((u >> 16) | 0x40u);
    u += 0x7fffu + ((u >> 16) & 1u);
    return (uint16_t)(u >> 16);
}

/* The decode kernels (armt_attention_decode, then armt_attention_decode_combine) on a case of one row
 * (G = T = 1): max |out - ref| / max |ref| of the fp32 output, and of the bf16 copy in *eb. kvb: K and V go
 * to the kernel as bf16 (a bf16 model's KV cache; ref must then be on the rounded K and V). Then twice the
 * combine in the attention's launch (counters: the head's last work-group combines; tune.decode_fuse): the
 * same bits in out and outb both times, and every counter back at zero (the second launch relies on it). */
static double run_decode(armt_runtime *rt, cl_program prog, const acase *c, const float *q, const float *k,
                         const float *v, const double *ref, double *eb, int kvb) {
    cl_int e;
    cl_kernel kd = clCreateKernel(prog, "armt_attention_decode", &e);
    ck_assert_int_eq(e, CL_SUCCESS);
    cl_kernel kc = clCreateKernel(prog, "armt_attention_decode_combine", &e);
    ck_assert_int_eq(e, CL_SUCCESS);
    const size_t qn = (size_t)c->nh * c->hd, kn = (size_t)c->kv_off + (size_t)c->Tk * c->nkv * c->hd;
    const int last = c->q0 < c->Tk - 1 ? c->q0 : c->Tk - 1, nch = last / ARMT_ATTN_DCHUNK + 1;
    const size_t pn = (size_t)c->nh * nch * (c->hd + 2);
    float *out = malloc(qn * 4), *part = malloc(pn * 4);
    uint16_t *outb = malloc(qn * 2);
    for (size_t i = 0; i < qn; i++) {
        out[i] = NAN;
        outb[i] = 0x7fc1;
    }
    for (size_t i = 0; i < pn; i++)
        part[i] = NAN; /* every partial result is written before it is read */
    cl_mem bq = clCreateBuffer(rt->context, CL_MEM_READ_ONLY | CL_MEM_COPY_HOST_PTR, qn * 4, (void *)q, &e);
    uint16_t *kb = malloc(kn * 2), *vb = malloc(kn * 2);
    for (size_t x = 0; x < kn; x++) {
        kb[x] = bf16_bits(k[x]);
        vb[x] = bf16_bits(v[x]);
    }
    cl_mem bk = clCreateBuffer(rt->context, CL_MEM_READ_ONLY | CL_MEM_COPY_HOST_PTR, kn * (kvb ? 2 : 4),
                               kvb ? (void *)kb : (void *)k, &e);
    cl_mem bv = clCreateBuffer(rt->context, CL_MEM_READ_ONLY | CL_MEM_COPY_HOST_PTR, kn * (kvb ? 2 : 4),
                               kvb ? (void *)vb : (void *)v, &e);
    free(kb), free(vb);
    cl_mem bp = clCreateBuffer(rt->context, CL_MEM_READ_WRITE | CL_MEM_COPY_HOST_PTR, pn * 4, part, &e);
    cl_mem bo = clCreateBuffer(rt->context, CL_MEM_READ_WRITE | CL_MEM_COPY_HOST_PTR, qn * 4, out, &e);
    cl_mem bob = clCreateBuffer(rt->context, CL_MEM_READ_WRITE | CL_MEM_COPY_HOST_PTR, qn * 2, outb, &e);
    ck_assert_int_eq(e, CL_SUCCESS);
    const float scale = (float)(1.0 / sqrt((double)c->hd));
    const cl_ulong kv_off = (cl_ulong)c->kv_off;
    const int wa[5] = {c->win, c->win_first, c->win ? c->j_first : -1, c->ns, c->nmem};
    cl_uint i = 0;
#define DARG(v) ck_assert_int_eq(clSetKernelArg(kd, i++, sizeof(v), &(v)), CL_SUCCESS)
    DARG(bq);
    DARG(bk);
    DARG(bv);
    DARG(bp);
    DARG(c->nh);
    DARG(c->nkv);
    DARG(scale);
    DARG(kv_off);
    DARG(c->Tk);
    DARG(c->q0);
    for (int a = 0; a < 5; a++)
        DARG(wa[a]);
    DARG(kvb);
    cl_mem none = NULL;
    DARG(none); /* out, outb, cnt: NULL, the combine in a launch of its own */
    DARG(none);
    DARG(none);
#undef DARG
    size_t gws[2] = {(size_t)nch * (size_t)c->hd, (size_t)c->nh}, lws[2] = {(size_t)c->hd, 1};
    ck_assert_int_eq(clEnqueueNDRangeKernel(rt->queue, kd, 2, NULL, gws, lws, 0, NULL, NULL), CL_SUCCESS);
    ck_assert_int_eq(clSetKernelArg(kc, 0, sizeof bp, &bp), CL_SUCCESS);
    ck_assert_int_eq(clSetKernelArg(kc, 1, sizeof bo, &bo), CL_SUCCESS);
    ck_assert_int_eq(clSetKernelArg(kc, 2, sizeof bob, &bob), CL_SUCCESS);
    ck_assert_int_eq(clSetKernelArg(kc, 3, sizeof nch, &nch), CL_SUCCESS);
    size_t g1 = qn, l1 = (size_t)c->hd;
    ck_assert_int_eq(clEnqueueNDRangeKernel(rt->queue, kc, 1, NULL, &g1, &l1, 0, NULL, NULL), CL_SUCCESS);
    ck_assert_int_eq(clEnqueueReadBuffer(rt->queue, bo, CL_TRUE, 0, qn * 4, out, 0, NULL, NULL), CL_SUCCESS);
    ck_assert_int_eq(clEnqueueReadBuffer(rt->queue, bob, CL_TRUE, 0, qn * 2, outb, 0, NULL, NULL),
                     CL_SUCCESS);
    /* the fused combine, twice, into fresh outputs */
    const int nh = c->nh;
    cl_uint *cnt0 = calloc((size_t)nh, sizeof *cnt0);
    cl_mem bcnt =
        clCreateBuffer(rt->context, CL_MEM_READ_WRITE | CL_MEM_COPY_HOST_PTR, (size_t)nh * 4, cnt0, &e);
    ck_assert_int_eq(e, CL_SUCCESS);
    float *out2 = malloc(qn * 4);
    uint16_t *outb2 = malloc(qn * 2);
    for (int rep = 0; rep < 2; rep++) {
        for (size_t x = 0; x < qn; x++) {
            out2[x] = NAN;
            outb2[x] = 0x7fc1;
        }
        cl_mem bo2 = clCreateBuffer(rt->context, CL_MEM_READ_WRITE | CL_MEM_COPY_HOST_PTR, qn * 4, out2, &e);
        cl_mem bob2 =
            clCreateBuffer(rt->context, CL_MEM_READ_WRITE | CL_MEM_COPY_HOST_PTR, qn * 2, outb2, &e);
        ck_assert_int_eq(e, CL_SUCCESS);
        ck_assert_int_eq(clSetKernelArg(kd, 16, sizeof bo2, &bo2), CL_SUCCESS);
        ck_assert_int_eq(clSetKernelArg(kd, 17, sizeof bob2, &bob2), CL_SUCCESS);
        ck_assert_int_eq(clSetKernelArg(kd, 18, sizeof bcnt, &bcnt), CL_SUCCESS);
        ck_assert_int_eq(clEnqueueNDRangeKernel(rt->queue, kd, 2, NULL, gws, lws, 0, NULL, NULL), CL_SUCCESS);
        ck_assert_int_eq(clEnqueueReadBuffer(rt->queue, bo2, CL_TRUE, 0, qn * 4, out2, 0, NULL, NULL),
                         CL_SUCCESS);
        ck_assert_int_eq(clEnqueueReadBuffer(rt->queue, bob2, CL_TRUE, 0, qn * 2, outb2, 0, NULL, NULL),
                         CL_SUCCESS);
        ck_assert_int_eq(
            clEnqueueReadBuffer(rt->queue, bcnt, CL_TRUE, 0, (size_t)nh * 4, cnt0, 0, NULL, NULL),
            CL_SUCCESS);
        for (size_t x = 0; x < qn; x++)
            ck_assert_msg(memcmp(&out2[x], &out[x], 4) == 0 && outb2[x] == outb[x],
                          "fused combine, launch %d: element %zu %.9g (bf16 %04x), two launches %.9g (%04x)",
                          rep, x, out2[x], outb2[x], out[x], outb[x]);
        for (int h = 0; h < nh; h++)
            ck_assert_msg(cnt0[h] == 0, "fused combine, launch %d: head %d's counter left at %u", rep, h,
                          cnt0[h]);
        clReleaseMemObject(bo2);
        clReleaseMemObject(bob2);
    }
    clReleaseMemObject(bcnt);
    free(cnt0), free(out2), free(outb2);
    double d = 0, db = 0, m = 0;
    for (size_t x = 0; x < qn; x++) {
        uint32_t bits = (uint32_t)outb[x] << 16;
        float b;
        memcpy(&b, &bits, 4);
        d = isfinite(out[x]) ? fmax(d, fabs(out[x] - ref[x])) : INFINITY;
        db = isfinite(b) ? fmax(db, fabs(b - ref[x])) : INFINITY;
        m = fmax(m, fabs(ref[x]));
    }
    cl_mem all[] = {bq, bk, bv, bp, bo, bob};
    for (size_t x = 0; x < 6; x++)
        clReleaseMemObject(all[x]);
    clReleaseKernel(kd);
    clReleaseKernel(kc);
    free(out), free(outb), free(part);
    *eb = db / m;
    return d / m;
}

/* A runtime whose attention_mma is real (NVIDIA, cc >= 8.0) or emulated (anywhere else). */
static armt_runtime *mma_runtime(void) {
    armt_runtime *rt = test_runtime();
    if (rt->tune.nv_mma) return rt;
    armt_runtime_free(rt);
    armt_runtime_params p = armt_runtime_default_params();
    p.tensor_cores = ARMT_TC_EMULATE;
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
    for (size_t i = 0; i < qn; i++)
        q[i] = 2.0f * urand();
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
    for (int i = 0; i < c->kv_off; i++)
        k[i] = v[i] = NAN;
    /* the window's rows below its cached ones are never read either */
    for (int g = 0; c->win && g < c->G; g++)
        for (int t = 0; t < c->win - cached(c, g); t++)
            for (size_t e = 0; e < kvd; e++) {
                k[c->kv_off + ((size_t)g * c->Tk + t) * kvd + e] = NAN;
                v[c->kv_off + ((size_t)g * c->Tk + t) * kvd + e] = NAN;
            }
    reference(c, q, k, v, ref);
    /* one program for the case (attention.cl and attention_mma.cl: the fp32 kernel and the mma ones), with
     * the key tiles of the
     * fp32 kernel that the runtime gives models, as armt_model_create builds it */
    char opt[160];
    snprintf(opt, sizeof opt, "-DATTN_HD=%d -DATTN_BK=%d -DAM_WARPS=%d -DAM_RT=%d", c->hd, rt->tune.attn_bk,
             c->warps, c->rt);
    cl_program prog = NULL;
    armt_err err;
    armt_err_init(&err);
    ck_assert_msg(armt_program_build(rt, ARMT_P_ATTENTION_MMA, opt, &prog, &err) == ARMT_OK, "%s",
                  armt_err_msg(&err));
    armt_err_free(&err);
    /* the fp32 models' build (AM_TF32: 3xTF32 products on fp32 operands; heads over 64 in 32-key tiles), and
     * the same with one product (plain TF32), which must be far worse */
    cl_program ptf[2] = {NULL, NULL};
    for (int v1 = 0; v1 < 2; v1++) {
        char topt[256];
        snprintf(topt, sizeof topt, "%s -DAM_TF32=1 -DAM_BK=%d%s", opt, c->hd > 64 ? 32 : 64,
                 v1 ? " -DTF32_PRODUCTS=1" : "");
        armt_err_init(&err);
        ck_assert_msg(armt_program_build(rt, ARMT_P_ATTENTION_MMA, topt, &ptf[v1], &err) == ARMT_OK, "%s",
                      armt_err_msg(&err));
        armt_err_free(&err);
    }
    const double etf = run_kernel(rt, ptf[0], c, 1, q, k, v, ref, NULL, 0);
    const double etf1 = run_kernel(rt, ptf[1], c, 1, q, k, v, ref, NULL, 0);
    float *o16 = malloc(qn * 4), *okv = malloc(qn * 4);
    double e32 = run_kernel(rt, prog, c, 0, q, k, v, ref, NULL, 0);
    double e16 = run_kernel(rt, prog, c, 1, q, k, v, ref, o16, 0);
    double eb = run_kernel(rt, prog, c, 2, q, k, v, ref, NULL, 0);
    double ekv = run_kernel(rt, prog, c, 3, q, k, v, ref, okv, 0);
    if (c->G == 1 && c->T == 1 && c->mem_all == 0 && c->nmem == 0) { /* generation's decode kernels */
        double edb, ed = run_decode(rt, prog, c, q, k, v, ref, &edb, 0);
        ck_assert_msg(ed <= TOL_FP32 && edb <= 8e-3, "case %d, decode: fp32 %.3g, its bf16 copy %.3g", _i, ed,
                      edb);
        /* a bf16 KV cache: the same arithmetic on the rounded keys and values */
        float *kr = malloc(kn * 4), *vr = malloc(kn * 4);
        double *refb = malloc(qn * sizeof *refb);
        for (size_t x = 0; x < kn; x++) {
            uint32_t bk = (uint32_t)bf16_bits(k[x]) << 16, bv = (uint32_t)bf16_bits(v[x]) << 16;
            memcpy(&kr[x], &bk, 4);
            memcpy(&vr[x], &bv, 4);
        }
        reference(c, q, kr, vr, refb);
        double edbb, edb16 = run_decode(rt, prog, c, q, k, v, refb, &edbb, 1);
        ck_assert_msg(edb16 <= TOL_FP32, "case %d, decode on a bf16 cache: %.3g", _i, edb16);
        /* and the rounding shows: against the unrounded reference it is no longer fp32-close */
        double moved = 0, mref = 0;
        for (size_t x = 0; x < qn; x++) {
            moved = fmax(moved, fabs(refb[x] - ref[x]));
            mref = fmax(mref, fabs(ref[x]));
        }
        ck_assert_msg(moved / mref > 10 * TOL_FP32, "case %d: bf16 K/V move the reference by %.3g only", _i,
                      moved / mref);
        free(kr), free(vr), free(refb);
    }
    if (c->T > 128 && c->q0 == 0) { /* only the last row of the last cell needed: blocks below it skipped */
        /* the q projection leaves the rows below it out: NaN here, which no needed row may see */
        float *qs = malloc(qn * 4);
        memcpy(qs, q, qn * 4);
        for (size_t i = (size_t)(c->G - 1) * c->T * c->nh * c->hd;
             i < ((size_t)(c->G - 1) * c->T + (size_t)c->T - 1) * c->nh * c->hd; i++)
            qs[i] = NAN;
        double s32 = run_kernel(rt, prog, c, 0, qs, k, v, ref, NULL, c->T - 1);
        double skv = run_kernel(rt, prog, c, 3, qs, k, v, ref, NULL, c->T - 1);
        double stf = run_kernel(rt, ptf[0], c, 1, qs, k, v, ref, NULL, c->T - 1);
        free(qs);
        ck_assert_msg(s32 <= TOL_FP32 && skv <= TOL_MMA && stf <= TOL_TF32,
                      "with rows skipped: fp32 %.3g, bf16 K/V %.3g, 3xTF32 %.3g", s32, skv, stf);
    }
    /* bf16 K and V give the same bits as fp32 ones the kernel rounds itself (round to nearest even both) */
    size_t differ = 0;
    for (size_t i = 0; i < qn; i++)
        differ += memcmp(&o16[i], &okv[i], 4) != 0;
    fprintf(stderr,
            "attention hd %d nh %d/%d G %d T %d Tk %d q0 %d warps %d x %d rows, memory rows %d, window %d: "
            "fp32 %.3g, mma (%s) %.3g, bf16 output %.3g, bf16 K/V %.3g, 3xTF32 %.3g (1xTF32 %.3g)\n",
            c->hd, c->nh, c->nkv, c->G, c->T, c->Tk, c->q0, c->warps, 16 * c->rt, c->mem_all, c->win, e32,
            rt->tune.mma_emulate ? "emulated" : "tensor cores", e16, eb, ekv, etf, etf1);
    ck_assert_msg(etf <= TOL_TF32, "3xTF32 attention: %.3g", etf);
    ck_assert_msg(etf1 >= 30.0 * etf && etf1 > TOL_TF32,
                  "1xTF32 attention %.3g against 3xTF32 %.3g: no split?", etf1, etf);
    ck_assert_msg(e32 <= TOL_FP32, "fp32 attention: %.3g", e32);
    ck_assert_msg(e16 <= TOL_MMA, "mma attention: %.3g", e16);
    ck_assert_msg(eb <= TOL_MMA, "mma attention, bf16 output: %.3g", eb);
    ck_assert_msg(ekv <= TOL_MMA, "mma attention, bf16 K and V: %.3g", ekv);
    ck_assert_msg(differ == 0, "mma attention: bf16 K and V change %zu of %zu outputs", differ, qn);
    /* it is really bf16 arithmetic, not a copy of the fp32 path */
    ck_assert_msg(e16 > 1e-5, "mma attention equals the reference to %.3g: bf16 rounding missing?", e16);
    clReleaseProgram(prog);
    clReleaseProgram(ptf[0]);
    clReleaseProgram(ptf[1]);
    free(o16);
    free(okv);
    free(q);
    free(k);
    free(v);
    free(ref);
    armt_runtime_free(rt);
}
END_TEST

static Suite *suite(void) {
    Suite *s = suite_create("attention");
    TCase *tc = test_tcase(s, "kernels", 400);
    tcase_add_loop_test(tc, test_attention_kernels, 0, (int)(sizeof cases / sizeof cases[0]));
    return s;
}

int main(void) { return test_run_suite(suite(), 1); }
