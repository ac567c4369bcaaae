/*
 * check_tf32.c - fp32 GEMMs on tensor cores at fp32 accuracy (3xTF32, cl/gemm_tf32.cl; emulated off NVIDIA
 * with ARMT_TC_EMULATE): the kernel through the GEMM door on the model's GEMM sites scaled down, against an
 * fp64 reference next to CLBlast on the same data and next to a plain TF32 build (one product per tile) that
 * must be clearly worse; the fp32 forward on it against the fp64 C reference, the diagonal schedule equal to
 * the sequential one bit for bit; and the runtime option (armt_runtime_params.fp32_gemm) routing the GEMMs.
 */
#include "config.h"

#include "testutil.h"

#include "compute/gemm.h"
#include "device/internal.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* A runtime whose fp32 GEMMs take `mode`, with tensor cores: real on an NVIDIA GPU that has them, emulated
 * elsewhere. wg = 0: wgmma off (the mma.sync kernel, cl/gemm_tf32.cl); 1: wgmma where the GPU has it, or its
 * stand-ins (cl/gemm_tf32_wg.cl; rt->tune.tf_wgmma says whether it is there). No bf16 GEMM runs here. */
static armt_runtime *tc_runtime_att(armt_fp32_gemm mode, int profile, int wg, armt_tensor_cores attention) {
    armt_runtime *rt = test_runtime();
    const int real = rt->tune.nv_mma && !rt->tune.mma_emulate;
    armt_runtime_free(rt);
    armt_runtime_params p = armt_runtime_default_params();
    p.profile = profile;
    p.tensor_cores = real ? ARMT_TC_AUTO : ARMT_TC_EMULATE;
    p.wgmma = !wg ? ARMT_TC_OFF : real ? ARMT_TC_AUTO : ARMT_TC_EMULATE;
    p.fp32_gemm = mode;
    p.attention = attention;
    rt = NULL;
    ck_assert_msg(armt_runtime_create(&p, &rt) == ARMT_OK, "%s", armt_last_error());
    return rt;
}
static armt_runtime *tc_runtime_wg(armt_fp32_gemm mode, int profile, int wg) {
    return tc_runtime_att(mode, profile, wg, ARMT_TC_AUTO);
}
static armt_runtime *tc_runtime(armt_fp32_gemm mode, int profile) { return tc_runtime_wg(mode, profile, 0); }

static armt_model *tiny_fp32(armt_runtime *rt, armt_config *c, uint64_t seed) {
    ck_assert_int_eq(armt_config_preset("tiny", c), ARMT_OK);
    armt_model_params mp = armt_model_default_params();
    mp.seed = seed;
    mp.wmv_std = 0.05f;
    mp.precision = ARMT_PRECISION_FP32;
    armt_model *m = NULL;
    ck_assert_msg(armt_model_create_random(rt, c, &mp, &m) == ARMT_OK, "%s", armt_last_error());
    return m;
}

/* Whether the context's last forward ran a kernel of that name (profiled). */
static int ran(const armt_ctx *ctx, const char *name) {
    const char *names[64];
    double secs[64];
    size_t n = armt_ctx_profile(ctx, names, secs, 64);
    for (size_t i = 0; i < n && i < 64; i++)
        if (strcmp(names[i], name) == 0) return 1;
    return 0;
}

/* ======================================================================================================= */
/* The kernel on the model's GEMM sites                                                                    */
/* ======================================================================================================= */

/* One GEMM op as a site of the model makes it, on LLaMA-3.2-1B's shapes scaled down: 3 cells of 40 rows (32
 * tokens + 8 memory tokens), hidden 76, SwiGLU 196, k and v 20, d_mem 8 (d_key 48), vocabulary 300; none a
 * multiple of the tiles (64 x 32 x 16 emulated). */
typedef struct gcase {
    const char *site;
    int m, n, k, count;
    int trans_a, w_kn, beta;
    int ring; /* C entries on a ring of count + 1 slots, from slot 1 down (wrapping): the residual stream */
    int skip; /* skip_last: the last entry's rows from here on only */
} gcase;

static const gcase gcases[] = {
    {"wq, wo: x W^T", 40, 76, 76, 3, 0, 0, 0, 0, 0},
    {"wk, wv", 40, 20, 76, 3, 0, 0, 0, 0, 0},
    {"wo + residual (ring, skip)", 40, 76, 76, 3, 0, 0, 1, 1, 24},
    {"wg, wu", 40, 196, 76, 3, 0, 0, 0, 0, 0},
    {"wd + residual (ring)", 40, 76, 196, 3, 0, 0, 1, 1, 0},
    {"W_mq, W_mk", 40, 8, 76, 3, 0, 0, 0, 0, 0},
    {"memory read phi W_mem", 40, 76, 48, 3, 0, 1, 0, 0, 0},
    {"memory write phi(k) W_mem", 8, 76, 48, 3, 0, 1, 0, 0, 0},
    {"memory update phi^T delta", 48, 76, 8, 3, 1, 1, 1, 0, 0},
    {"lm_head", 40, 300, 76, 1, 0, 0, 0, 0, 0},
    {"k = 70, padded rows", 40, 36, 70, 2, 0, 0, 0, 0, 0},
};
#define N_GCASES (sizeof gcases / sizeof gcases[0])

static size_t up4(size_t x) { return (x + 3) / 4 * 4; }

/* A case's host data: operands with NaN in every gap (a kernel that reads outside its blocks shows), C's
 * blocks NaN for beta = 0 (never read) or random for beta = 1, a sentinel everywhere else in C. */
typedef struct gdata {
    size_t lda, ldw, ldc, na, nw, nc;
    size_t a_off[3], w_off[3], c_off[3];
    float *a, *w, *c0;
} gdata;

static const float SENTINEL = 12345.0f;

static float urand(uint64_t *s) {
    *s = *s * 6364136223846793005ull + 1442695040888963407ull;
    return (float)((double)(*s >> 11) * 0x1.0p-53 * 2.0 - 1.0);
}

static void gdata_make(const gcase *g, uint64_t seed, gdata *d) {
    const size_t m = (size_t)g->m, n = (size_t)g->n, k = (size_t)g->k, cnt = (size_t)g->count;
    d->lda = up4(g->trans_a ? m : k) + 4;
    d->ldw = up4(g->w_kn ? n : k);
    d->ldc = n + (size_t)g->ring; /* odd pads where the ring is: 8-byte pairs on some entries only */
    const size_t asz = (g->trans_a ? k : m) * d->lda + 8, wsz = (g->w_kn ? k : n) * d->ldw + 4;
    const size_t csz = m * d->ldc + 3;
    const size_t cap = cnt + 1;
    for (size_t j = 0; j < cnt; j++) {
        d->a_off[j] = j * asz;
        d->w_off[j] = (j + 1) * wsz;                                           /* layers 1 .. count */
        d->c_off[j] = g->ring ? (1 + cap - j) % cap * csz + (j & 1) : j * csz; /* ring: odd offsets too */
    }
    d->na = cnt * asz;
    d->nw = (cnt + 1) * wsz;
    d->nc = cap * csz + 1;
    d->a = malloc(d->na * 4);
    d->w = malloc(d->nw * 4);
    d->c0 = malloc(d->nc * 4);
    for (size_t i = 0; i < d->na; i++)
        d->a[i] = NAN;
    for (size_t i = 0; i < d->nw; i++)
        d->w[i] = NAN;
    for (size_t i = 0; i < d->nc; i++)
        d->c0[i] = SENTINEL;
    uint64_t s = seed;
    for (size_t j = 0; j < cnt; j++) {
        for (size_t r = 0; r < m; r++)
            for (size_t kk = 0; kk < k; kk++)
                d->a[d->a_off[j] + (g->trans_a ? kk * d->lda + r : r * d->lda + kk)] = urand(&s);
        for (size_t c = 0; c < n; c++)
            for (size_t kk = 0; kk < k; kk++)
                d->w[d->w_off[j] + (g->w_kn ? kk * d->ldw + c : c * d->ldw + kk)] = 0.1f * urand(&s);
        for (size_t r = 0; r < m; r++)
            for (size_t c = 0; c < n; c++)
                d->c0[d->c_off[j] + r * d->ldc + c] = g->beta ? urand(&s) : NAN;
    }
}

static void gdata_free(gdata *d) {
    free(d->a);
    free(d->w);
    free(d->c0);
}

/* Is element i of C inside entry j's block, at (r, c)? */
static int in_block(const gcase *g, const gdata *d, size_t i, size_t *j, size_t *r, size_t *c) {
    for (size_t e = 0; e < (size_t)g->count; e++) {
        if (i < d->c_off[e]) continue;
        const size_t o = i - d->c_off[e], rr = o / d->ldc, cc = o % d->ldc;
        if (rr < (size_t)g->m && cc < (size_t)g->n) {
            *j = e, *r = rr, *c = cc;
            return 1;
        }
    }
    return 0;
}

/* The errors of a result against the fp64 reference, over the rows that must be computed: normwise
 * max |c - ref| / max |ref|, and componentwise max |c - ref| / (beta |c0| + sum |a w|), the scale of the
 * classical error bound (about k 2^-24 for an fp32 GEMM). Fails the test on a touched element outside. */
typedef struct gerr {
    double norm, comp;
} gerr;

static gerr gerr_of(const gcase *g, const gdata *d, const float *c, const char *what) {
    double num = 0.0, den = 0.0, comp = 0.0;
    for (size_t i = 0; i < d->nc; i++) {
        size_t j, r, col;
        if (!in_block(g, d, i, &j, &r, &col)) {
            ck_assert_msg(c[i] == SENTINEL, "%s, %s: element %zu outside the blocks written (%g)", g->site,
                          what, i, (double)c[i]);
            continue;
        }
        if (j + 1 == (size_t)g->count && r < (size_t)g->skip) continue; /* may be written or not */
        double s = g->beta ? (double)d->c0[i] : 0.0, b = fabs(s);
        for (size_t kk = 0; kk < (size_t)g->k; kk++) {
            const double a = d->a[d->a_off[j] + (g->trans_a ? kk * d->lda + r : r * d->lda + kk)];
            const double w = d->w[d->w_off[j] + (g->w_kn ? kk * d->ldw + col : col * d->ldw + kk)];
            s += a * w;
            b += fabs(a * w);
        }
        const double e = fabs((double)c[i] - s);
        ck_assert_msg(e == e, "%s, %s: NaN at entry %zu (%zu, %zu)", g->site, what, j, r, col);
        num = fmax(num, e);
        den = fmax(den, fabs(s));
        comp = fmax(comp, e / b);
    }
    return (gerr){num / den, comp};
}

/* The case's entries j0 .. j0 + cnt - 1 on a context (through armt_gemm, or a program's kernels in place of
 * the 3xTF32 ones): C read back. */
static void gemm_run_entries(armt_ctx *ctx, const gcase *g, const gdata *d, cl_kernel const *variant,
                             size_t j0, size_t cnt, float *c) {
    cl_int e;
    cl_context cx = ctx->rt->context;
    cl_mem ba = clCreateBuffer(cx, CL_MEM_READ_ONLY | CL_MEM_COPY_HOST_PTR, d->na * 4, d->a, &e);
    ck_assert_int_eq(e, CL_SUCCESS);
    cl_mem bw = clCreateBuffer(cx, CL_MEM_READ_ONLY | CL_MEM_COPY_HOST_PTR, d->nw * 4, d->w, &e);
    ck_assert_int_eq(e, CL_SUCCESS);
    cl_mem bc = clCreateBuffer(cx, CL_MEM_READ_WRITE | CL_MEM_COPY_HOST_PTR, d->nc * 4, d->c0, &e);
    ck_assert_int_eq(e, CL_SUCCESS);
    armt_gemm_op op = {.m = (size_t)g->m,
                       .n = (size_t)g->n,
                       .k = (size_t)g->k,
                       .count = cnt,
                       .a = ba,
                       .lda = d->lda,
                       .a_off = d->a_off + j0,
                       .trans_a = g->trans_a,
                       .w = bw,
                       .ldw = d->ldw,
                       .w_off = d->w_off + j0,
                       .w_kn = g->w_kn,
                       .c = bc,
                       .ldc = d->ldc,
                       .c_off = d->c_off + j0,
                       .beta = (float)g->beta,
                       .skip_last = j0 + cnt == (size_t)g->count ? (size_t)g->skip : 0,
                       .site = -1};
    cl_kernel saved = ctx->k[ARMT_K_GEMM_TF32], saved_wg = ctx->k[ARMT_K_GEMM_TF32_WG];
    if (variant) {
        ctx->k[ARMT_K_GEMM_TF32] = variant[0];
        ctx->k[ARMT_K_GEMM_TF32_WG] = variant[1]; /* (NULL: the plan takes the mma.sync kernel) */
    }
    armt_err err;
    armt_err_init(&err);
    armt_status st = armt_gemm(ctx, &op, &err);
    ctx->k[ARMT_K_GEMM_TF32] = saved;
    ctx->k[ARMT_K_GEMM_TF32_WG] = saved_wg;
    ck_assert_msg(st == ARMT_OK, "%s: %s", g->site, armt_err_msg(&err));
    armt_err_free(&err);
    ck_assert_int_eq(clEnqueueReadBuffer(ctx->queue, bc, CL_TRUE, 0, d->nc * 4, c, 0, NULL, NULL),
                     CL_SUCCESS);
    clReleaseMemObject(ba);
    clReleaseMemObject(bw);
    clReleaseMemObject(bc);
}
static void gemm_run(armt_ctx *ctx, const gcase *g, const gdata *d, cl_kernel const *variant, float *c) {
    gemm_run_entries(ctx, g, d, variant, 0, (size_t)g->count, c);
}

/* The 3xTF32 program again with extra options (TF32_PRODUCTS=1, TF32_ORDER=...): its kernels, the mma.sync
 * one and (where the runtime has it) the wgmma one. */
static void variant_kernels(armt_runtime *rt, const char *extra, cl_program *prog, cl_kernel *kern) {
    char opts[512];
    armt_tune_tf32_options(&rt->tune, opts, sizeof opts);
    snprintf(opts + strlen(opts), sizeof opts - strlen(opts), " %s", extra);
    armt_err err;
    armt_err_init(&err);
    ck_assert_msg(armt_program_build(rt, ARMT_P_GEMM_TF32, opts, prog, &err) == ARMT_OK, "%s",
                  armt_err_msg(&err));
    armt_err_free(&err);
    cl_int e;
    kern[0] = clCreateKernel(*prog, "armt_gemm_tf32", &e);
    ck_assert_int_eq(e, CL_SUCCESS);
    kern[1] = NULL;
    if (rt->tune.tf_wgmma && rt->tune.mma_emulate) { /* (on a GPU it would need the sm_90a rebuild) */
        kern[1] = clCreateKernel(*prog, "armt_gemm_tf32_wg", &e);
        ck_assert_int_eq(e, CL_SUCCESS);
    }
}

/* The runs of a case: CLBlast, the library's 3xTF32 kernels, builds of their program with other options in
 * place of them; with mma.sync alone (wgmma off) and, where the runtime has it, with the wgmma kernel. */
static const struct {
    const char *name, *options; /* options NULL: CLBlast (first) or the library's kernels */
    int wg;                     /* the runtime with the wgmma kernel */
} runs[] = {
    {"CLBlast", NULL, 0},
    {"3xTF32", NULL, 0},
    {"1xTF32", "-DTF32_PRODUCTS=1", 0},
    {"3xTF32 wgmma", NULL, 1},
    {"1xTF32 wgmma", "-DTF32_PRODUCTS=1", 1},
    /* (the kernels' defaults add each k8 step's (mma.sync) or k-tile's (wgmma) sums by fp32 adds: without) */
    {"3xTF32 unsplit", "-DTF_SPLIT=0", 0},
    {"1xTF32 unsplit", "-DTF_SPLIT=0 -DTF32_PRODUCTS=1", 0},
    {"3xTF32 wgmma unsplit", "-DTW_SPLIT=0", 1},
    {"1xTF32 wgmma unsplit", "-DTW_SPLIT=0 -DTF32_PRODUCTS=1", 1},
};
#define N_RUNS (sizeof runs / sizeof runs[0])

/* Every site: 3xTF32 at fp32 level (within twice CLBlast's error on the same data), plain TF32 far worse (the
 * split is done); nothing outside the blocks touched. The wgmma runtime plans its kernel for every site with
 * row-major operands (the mma.sync one for the memory update's transposed ones). */
START_TEST(test_sites) {
    armt_runtime *rt3 = tc_runtime(ARMT_FP32_GEMM_TF32X3, 0), *rtc = tc_runtime(ARMT_FP32_GEMM_CLBLAST, 0),
                 *rtw = tc_runtime_wg(ARMT_FP32_GEMM_TF32X3, 0, 1);
    ck_assert_int_eq(rt3->tune.tf32, 1);
    ck_assert_int_eq(rt3->tune.tf_wgmma, 0);
    ck_assert_int_eq(rtc->tune.tf32, 0);
    const int have_wg = rtw->tune.tf_wgmma; /* (a GPU before Hopper has none) */
    if (rtw->tune.mma_emulate) ck_assert_int_eq(have_wg, 1);
    armt_config cfg;
    armt_model *m3 = tiny_fp32(rt3, &cfg, 5), *mc = tiny_fp32(rtc, &cfg, 5), *mw = tiny_fp32(rtw, &cfg, 5);
    armt_ctx *x3 = NULL, *xc = NULL, *xw = NULL;
    ck_assert_int_eq(armt_ctx_create(m3, NULL, &x3), ARMT_OK);
    ck_assert_int_eq(armt_ctx_create(mc, NULL, &xc), ARMT_OK);
    ck_assert_int_eq(armt_ctx_create(mw, NULL, &xw), ARMT_OK);
    ck_assert_ptr_nonnull(x3->k[ARMT_K_GEMM_TF32]);
    ck_assert_ptr_null(x3->k[ARMT_K_GEMM_TF32_WG]);
    ck_assert_ptr_null(xc->k[ARMT_K_GEMM_TF32]);
    ck_assert_int_eq(xw->k[ARMT_K_GEMM_TF32_WG] != NULL, have_wg);
    cl_program prog[N_RUNS] = {NULL};
    cl_kernel kern[N_RUNS][2] = {{NULL}};
    for (size_t v = 0; v < N_RUNS; v++)
        if (runs[v].options) variant_kernels(runs[v].wg ? rtw : rt3, runs[v].options, &prog[v], kern[v]);
    const armt_gemm_env env3 = armt_gemm_env_of(x3), envc = armt_gemm_env_of(xc), envw = armt_gemm_env_of(xw);
    fprintf(stderr,
            "max |c - ref| / max |ref|, max |c - ref| / (beta |c0| + sum |a w|) against fp64:\n%-28s %14s",
            "site", "m x n x k, count");
    for (size_t v = 0; v < N_RUNS; v++)
        fprintf(stderr, "  %-19s", runs[v].name);
    fprintf(stderr, "\n");
    for (size_t ci = 0; ci < N_GCASES; ci++) {
        const gcase *g = &gcases[ci];
        gdata d;
        gdata_make(g, 100 + ci, &d);
        float *c = malloc(d.nc * 4);
        /* the plans: the 3xTF32 kernels on two runtimes, CLBlast on the third */
        armt_gemm_op op = {.m = (size_t)g->m,
                           .n = (size_t)g->n,
                           .k = (size_t)g->k,
                           .count = (size_t)g->count,
                           .a = (cl_mem)&d,
                           .lda = d.lda,
                           .a_off = d.a_off,
                           .trans_a = g->trans_a,
                           .w = (cl_mem)&d,
                           .ldw = d.ldw,
                           .w_off = d.w_off,
                           .w_kn = g->w_kn};
        armt_gemm_plan p3, pc, pw;
        ck_assert_ptr_null(armt_gemm_plan_make(&env3, &op, &p3));
        ck_assert_ptr_null(armt_gemm_plan_make(&envc, &op, &pc));
        ck_assert_ptr_null(armt_gemm_plan_make(&envw, &op, &pw));
        ck_assert_int_eq(p3.kernel, ARMT_K_GEMM_TF32);
        ck_assert_int_eq(pc.clblast, 1);
        ck_assert_int_eq(pw.kernel,
                         have_wg && !g->trans_a && !g->w_kn ? ARMT_K_GEMM_TF32_WG : ARMT_K_GEMM_TF32);
        gerr e[N_RUNS];
        for (size_t v = 0; v < N_RUNS; v++) {
            gemm_run(v == 0 ? xc : runs[v].wg ? xw : x3, g, &d, runs[v].options ? kern[v] : NULL, c);
            e[v] = gerr_of(g, &d, c, runs[v].name);
        }
        char shape[40];
        snprintf(shape, sizeof shape, "%dx%dx%d,%d", g->m, g->n, g->k, g->count);
        fprintf(stderr, "%-28s %14s", g->site, shape);
        for (size_t v = 0; v < N_RUNS; v++)
            fprintf(stderr, "  %.2e / %.2e", e[v].norm, e[v].comp);
        fprintf(stderr, "\n");
        for (size_t v = 1; v < N_RUNS; v += 2) { /* 3xTF32, then its 1xTF32 build */
            /* fp32 level: within twice CLBlast's error (or a few units of 2^-24 where CLBlast's is smaller) */
            ck_assert_msg(e[v].comp <= fmax(2.0 * e[0].comp, 4.0 * 0x1.0p-24) &&
                              e[v].norm <= fmax(2.0 * e[0].norm, 4.0 * 0x1.0p-24),
                          "%s, %s: error %.3g / %.3g, CLBlast %.3g / %.3g", g->site, runs[v].name, e[v].norm,
                          e[v].comp, e[0].norm, e[0].comp);
            /* plain TF32 (2^-11 per operand) far off: the split really happens (on a GPU the wgmma build
             * needs its sm_90a rebuild: its 1xTF32 run is the mma.sync one's again) */
            ck_assert_msg(e[v + 1].comp >= 30.0 * e[v].comp, "%s: %s error %.3g, %s %.3g", g->site,
                          runs[v + 1].name, e[v + 1].comp, runs[v].name, e[v].comp);
        }
        free(c);
        gdata_free(&d);
    }
    for (size_t v = 0; v < N_RUNS; v++) {
        for (int i = 0; i < 2; i++)
            if (kern[v][i]) clReleaseKernel(kern[v][i]);
        if (prog[v]) clReleaseProgram(prog[v]);
    }
    armt_ctx_free(x3);
    armt_ctx_free(xc);
    armt_ctx_free(xw);
    armt_model_free(m3);
    armt_model_free(mc);
    armt_model_free(mw);
    armt_runtime_free(rt3);
    armt_runtime_free(rtc);
    armt_runtime_free(rtw);
}
END_TEST

/* ======================================================================================================= */
/* Split-k                                                                                                 */
/* ======================================================================================================= */

/* Sites with k in whole stages of both kernels (16 and 32), split into S slices. */
static const gcase split_cases[] = {
    {"x W^T", 40, 76, 256, 3, 0, 0, 0, 0, 0},
    {"+ residual (ring, skip)", 40, 76, 256, 3, 0, 0, 1, 1, 24},
    {"phi W_mem (W k x n)", 40, 76, 128, 3, 0, 1, 0, 0, 0},
    {"phi^T delta + W_mem (trans_a)", 48, 76, 128, 3, 1, 1, 1, 0, 0},
};
#define N_SPLIT_CASES (sizeof split_cases / sizeof split_cases[0])

/* C's blocks of entry j (the rows that must be computed) equal in a and b, bit for bit */
static int entry_equal(const gcase *g, const gdata *d, size_t j, const float *a, const float *b) {
    const size_t r0 = j + 1 == (size_t)g->count ? (size_t)g->skip : 0;
    for (size_t r = r0; r < (size_t)g->m; r++)
        if (memcmp(a + d->c_off[j] + r * d->ldc, b + d->c_off[j] + r * d->ldc, (size_t)g->n * 4)) return 0;
    return 1;
}

/* Split-k on both 3xTF32 kernels (armt_gemm_plan.splitk; $ARMT_SPLITK's tuning field forced to S, or auto on
 * a device of 64 compute units): the sum of S slices, for beta 0 and 1, per-entry offsets (the residual's
 * ring), transposed operands and skipped rows, within the unsplit kernel's bound against fp64 (twice
 * CLBlast's error on the same data); each entry of three equal bit for bit to the same entry alone, whatever
 * the entries beside it (the rule that keeps the diagonal schedule equal to the sequential one). */
START_TEST(test_splitk) {
    armt_runtime *rtc = tc_runtime(ARMT_FP32_GEMM_CLBLAST, 0), *rt3 = tc_runtime(ARMT_FP32_GEMM_TF32X3, 0),
                 *rtw = tc_runtime_wg(ARMT_FP32_GEMM_TF32X3, 0, 1);
    armt_config cfg;
    armt_model *mc = tiny_fp32(rtc, &cfg, 5), *m3 = tiny_fp32(rt3, &cfg, 5), *mw = tiny_fp32(rtw, &cfg, 5);
    armt_ctx *xc = NULL, *x3 = NULL, *xw = NULL;
    ck_assert_int_eq(armt_ctx_create(mc, NULL, &xc), ARMT_OK);
    ck_assert_int_eq(armt_ctx_create(m3, NULL, &x3), ARMT_OK);
    ck_assert_int_eq(armt_ctx_create(mw, NULL, &xw), ARMT_OK);
    armt_ctx *const xs[2] = {x3, xw};
    const int have_wg = xw->k[ARMT_K_GEMM_TF32_WG] != NULL; /* (not on a GPU before Hopper) */
    static const int Ss[] = {0, 2, 4, 8};                   /* (0: auto) */
    int splits[2] = {0, 0};                                 /* runs split on mma.sync, on wgmma */
    fprintf(stderr, "split-k: max |c - ref| / max |ref|, max |c - ref| / (beta |c0| + sum |a w|)\n");
    for (size_t ci = 0; ci < N_SPLIT_CASES; ci++) {
        const gcase *g = &split_cases[ci];
        gdata d;
        gdata_make(g, 300 + ci, &d);
        float *c = malloc(d.nc * 4), *c1 = malloc(d.nc * 4);
        gemm_run(xc, g, &d, NULL, c);
        const gerr e0 = gerr_of(g, &d, c, "CLBlast");
        fprintf(stderr, "  %-30s CLBlast %.2e / %.2e\n", g->site, e0.norm, e0.comp);
        for (int x = 0; x < 2; x++) {
            armt_ctx *ctx = xs[x];
            if (x == 1 && !have_wg) continue;
            armt_device_tuning *t = &ctx->rt->tune;
            const unsigned cus = ctx->rt->info.compute_units;
            for (size_t si = 0; si < sizeof Ss / sizeof Ss[0]; si++) {
                t->splitk = Ss[si];
                t->splitk_rule = 1; /* (auto: the estimated time; the default, 0, never splits) */
                ctx->rt->info.compute_units = 64;
                const armt_gemm_env env = armt_gemm_env_of(ctx);
                armt_gemm_op op = {.m = (size_t)g->m,
                                   .n = (size_t)g->n,
                                   .k = (size_t)g->k,
                                   .count = (size_t)g->count,
                                   .a = (cl_mem)&d,
                                   .lda = d.lda,
                                   .a_off = d.a_off,
                                   .trans_a = g->trans_a,
                                   .w = (cl_mem)&d,
                                   .ldw = d.ldw,
                                   .w_off = d.w_off,
                                   .w_kn = g->w_kn};
                armt_gemm_plan plan;
                ck_assert_ptr_null(armt_gemm_plan_make(&env, &op, &plan));
                const int wg = plan.kernel == ARMT_K_GEMM_TF32_WG, S = plan.splitk, kt = wg ? 32 : t->tf_bk;
                const char *kname = wg ? "wgmma" : "mma.sync";
                ck_assert_int_eq(wg, x == 1 && !g->trans_a && !g->w_kn);
                /* forced: that S where a slice keeps whole k stages; auto: slices of at least 128 */
                ck_assert_int_eq(S, Ss[si] ? (g->k % (Ss[si] * kt) ? 1 : Ss[si]) : g->k >= 256 ? 2 : 1);
                if (S == 1) {
                    ctx->rt->info.compute_units = cus;
                    continue;
                }
                splits[wg]++;
                gemm_run(ctx, g, &d, NULL, c);
                const gerr e = gerr_of(g, &d, c, kname);
                fprintf(stderr, "    %-8s S %2d%s %.2e / %.2e\n", kname, S, Ss[si] ? "        " : " (auto) ",
                        e.norm, e.comp);
                ck_assert_msg(e.comp <= fmax(2.0 * e0.comp, 4.0 * 0x1.0p-24) &&
                                  e.norm <= fmax(2.0 * e0.norm, 4.0 * 0x1.0p-24),
                              "%s, %s, S %d: error %.3g / %.3g, CLBlast %.3g / %.3g", g->site, kname, S,
                              e.norm, e.comp, e0.norm, e0.comp);
                /* the slices lie in the context's scratch, grown to hold them */
                ck_assert_uint_ge(ctx->splitk_bytes, (size_t)S * (size_t)g->count * g->m * g->n * 4);
                if (Ss[si] == 0 || Ss[si] == 8)
                    for (size_t j = 0; j < (size_t)g->count; j++) {
                        gemm_run_entries(ctx, g, &d, NULL, j, 1, c1);
                        ck_assert_msg(entry_equal(g, &d, j, c, c1), "%s, %s, S %d: entry %zu alone differs",
                                      g->site, kname, S, j);
                    }
                ctx->rt->info.compute_units = cus;
            }
            t->splitk = 0;
            t->splitk_rule = 0;
        }
        free(c);
        free(c1);
        gdata_free(&d);
    }
    /* every case split by every S on mma.sync (auto only where k is 256), the row-major ones on wgmma too
     * (the wgmma runtime's transposed ones on mma.sync) */
    ck_assert_int_eq(splits[0], have_wg ? 20 : 14);
    ck_assert_int_eq(splits[1], have_wg ? 8 : 0);
    armt_ctx_free(xc);
    armt_ctx_free(x3);
    armt_ctx_free(xw);
    armt_model_free(mc);
    armt_model_free(m3);
    armt_model_free(mw);
    armt_runtime_free(rtc);
    armt_runtime_free(rt3);
    armt_runtime_free(rtw);
}
END_TEST

/* ======================================================================================================= */
/* The fp32 forward                                                                                        */
/* ======================================================================================================= */

#define TOL_LOGITS 1e-4 /* |ours - ref| <= TOL_LOGITS * max(1, |ref|), as check_forward.c */
#define TOL_STATE  1e-4 /* |ours - ref| <= TOL_STATE * max |ref| over the tensor            */

/* The tiny fp32 model with every GEMM and the attention on 3xTF32 (exact_attention: the attention on the fp32
 * kernel, as AUTO has it): logits and memory state of both schedules against the fp64 reference within
 * check_forward.c's fp32 tolerances, the diagonal schedule equal to the sequential one bit for bit, and no
 * GEMM left to CLBlast. Split-k: splitk (the tuning's: 0 auto, 1 none, S forced), on the device's compute
 * units or `cus`; wide: segments of 64 tokens and an MLP of 512 (the down projection's k splits by the shape
 * rule on 8 compute units, twice for a full cell of 68 rows (2 x 2 tiles) but four times for the short last
 * cell's 17 rows counted alone), 141 tokens. */
static void forward_check_split(int wg, int exact_attention, int splitk, unsigned cus, int wide) {
    armt_runtime *rt =
        tc_runtime_att(ARMT_FP32_GEMM_TF32X3, 1, wg, exact_attention ? ARMT_TC_OFF : ARMT_TC_AUTO);
    rt->tune.splitk = splitk;
    if (cus) rt->info.compute_units = cus;
    if (splitk == 0) rt->tune.splitk_rule = 1; /* (auto by the estimated time; the default never splits) */
    ck_assert_int_eq(rt->tune.attn_tf32, !exact_attention);
    if (wg && !rt->tune.tf_wgmma) { /* a GPU before Hopper */
        ck_assert_int_eq(rt->tune.mma_emulate, 0);
        armt_runtime_free(rt);
        return;
    }
    const char *kname = wg ? "armt_gemm_tf32_wg" : "armt_gemm_tf32";
    armt_config c;
    armt_model *m = NULL;
    if (wide) {
        ck_assert_int_eq(armt_config_preset("tiny", &c), ARMT_OK);
        c.segment_size = 64;
        c.intermediate_size = 512;
        armt_model_params mp = armt_model_default_params();
        mp.seed = 77;
        mp.wmv_std = 0.05f;
        mp.precision = ARMT_PRECISION_FP32;
        ck_assert_msg(armt_model_create_random(rt, &c, &mp, &m) == ARMT_OK, "%s", armt_last_error());
    } else {
        m = tiny_fp32(rt, &c, 77);
    }
    test_host_model *h = test_host_model_read(m);
    const size_t n = wide ? 141 : 45, V = (size_t)c.vocab_size;
    int32_t ids[141];
    test_random_ids(ids, n, c.vocab_size, 3);
    double *ref = malloc(n * V * sizeof *ref);
    ref_state *rs = ref_state_new(&c);
    ck_assert_int_eq(ref_armt_forward(&h->ref, rs, ids, n, ref, NULL), 0);
    armt_ctx *ctx = NULL;
    ck_assert_int_eq(armt_ctx_create(m, NULL, &ctx), ARMT_OK);
    const size_t nw = armt_ctx_memory_w_count(ctx), nz = armt_ctx_memory_z_count(ctx);
    float *out[2], *w[2], *z[2];
    double worst_l = 0.0, worst_w = 0.0, worst_z = 0.0, wmax = 0.0, zmax = 0.0;
    for (size_t i = 0; i < nw; i++)
        wmax = fmax(wmax, fabs(rs->w_mem[i]));
    for (size_t i = 0; i < nz; i++)
        zmax = fmax(zmax, fabs(rs->z[i]));
    for (int sch = 0; sch < 2; sch++) {
        out[sch] = malloc(n * V * 4);
        w[sch] = malloc(nw * 4);
        z[sch] = malloc(nz * 4);
        ck_assert_int_eq(armt_ctx_reset(ctx), ARMT_OK);
        armt_forward_params fp = armt_forward_default_params();
        fp.schedule = sch ? ARMT_SCHEDULE_DIAGONAL : ARMT_SCHEDULE_SEQUENTIAL;
        fp.output = ARMT_OUTPUT_LOGITS_ALL;
        fp.out = out[sch];
        fp.out_count = n * V;
        ck_assert_msg(armt_forward(ctx, ids, n, &fp) == ARMT_OK, "%s", armt_ctx_last_error(ctx));
        ck_assert_msg(ran(ctx, kname) && !ran(ctx, "clblast_sgemm"), "schedule %d: %s %d, CLBlast %d", sch,
                      kname, ran(ctx, kname), ran(ctx, "clblast_sgemm"));
        /* split-k where asked (PoCL's few compute units split no tiny GEMM by the shape rule) */
        if (splitk > 1 || cus)
            ck_assert_msg(ran(ctx, "armt_rows_splitk_sum"), "schedule %d: no GEMM split", sch);
        /* the attention on tensor cores too (attention_mma.cl's 3xTF32 build), or the fp32 kernel as asked */
        ck_assert_msg(ran(ctx, "armt_attention_mma") == !exact_attention &&
                          ran(ctx, "armt_attention") == exact_attention,
                      "schedule %d, exact attention %d: 3xTF32 attention %d, fp32 attention %d", sch,
                      exact_attention, ran(ctx, "armt_attention_mma"), ran(ctx, "armt_attention"));
        ck_assert_int_eq(armt_ctx_memory_get(ctx, w[sch], z[sch], NULL), ARMT_OK);
        for (size_t i = 0; i < n * V; i++)
            worst_l = fmax(worst_l, fabs(out[sch][i] - ref[i]) / (TOL_LOGITS * fmax(1.0, fabs(ref[i]))));
        for (size_t i = 0; i < nw; i++)
            worst_w = fmax(worst_w, fabs(w[sch][i] - rs->w_mem[i]) / (TOL_STATE * wmax));
        for (size_t i = 0; i < nz; i++)
            worst_z = fmax(worst_z, fabs(z[sch][i] - rs->z[i]) / (TOL_STATE * zmax));
    }
    fprintf(stderr,
            "%s fp32 on 3xTF32 (%s, %s attention, split-k %d, %u compute units): logits, W_mem, z at %.3g, "
            "%.3g, %.3g of the fp32 tolerance\n",
            wide ? "wide tiny" : "tiny", kname, exact_attention ? "fp32" : "3xTF32", splitk,
            rt->info.compute_units, worst_l, worst_w, worst_z);
    ck_assert(wmax > 0.0);
    ck_assert_msg(worst_l <= 1.0 && worst_w <= 1.0 && worst_z <= 1.0, "off the reference: %.3g %.3g %.3g",
                  worst_l, worst_w, worst_z);
    ck_assert_msg(memcmp(out[0], out[1], n * V * 4) == 0, "logits: diagonal differs from sequential");
    ck_assert_msg(memcmp(w[0], w[1], nw * 4) == 0 && memcmp(z[0], z[1], nz * 4) == 0,
                  "memory state: diagonal differs from sequential");
    for (int sch = 0; sch < 2; sch++)
        free(out[sch]), free(w[sch]), free(z[sch]);
    armt_ctx_free(ctx);
    ref_state_free(rs);
    free(ref);
    test_host_model_free(h);
    armt_model_free(m);
    armt_runtime_free(rt);
}

static void forward_check(int wg, int exact_attention) { forward_check_split(wg, exact_attention, 0, 0, 0); }

START_TEST(test_forward) {
    forward_check(0, 0);
    forward_check(0, 1);
}
END_TEST

/* The same with GEMMs split: forced in two on both kernels, and by the shape rule on a device of 8 compute
 * units, where only the cells' rows of a full cell keep the short last cell's split as the diagonal's */
START_TEST(test_forward_splitk) {
    forward_check_split(0, 1, 2, 0, 0);
    forward_check_split(1, 0, 2, 0, 0);
    forward_check_split(0, 1, 0, 8, 1);
}
END_TEST

/* The attention's check when a model builds it: a 3xTF32 attention that is off (here one built with one
 * product, 5e-4 off the fp32 kernel) is replaced by the fp32 kernel, and the model still runs. With the gate
 * of AUTO (set by hand: under the stand-ins AUTO takes no 3xTF32), the model keeps the 3xTF32 kernel only
 * where it is at least as accurate against fp64 as the fp32 kernel: the split build is (in
 * tests/check_attention.c's cases 1.8e-7 to 2.8e-7 of the double reference against the fp32 kernel's 2.4e-7
 * to 6.3e-7), the build that adds every product into S and O (AM_SPLIT=0) is not. Cases: 0 the kernel, 1 one
 * product, 2 the kernel gated, 3 AM_SPLIT=0 gated. */
START_TEST(test_attention_check) {
    static const char *const opts[] = {NULL, "-DTF32_PRODUCTS=1", NULL, "-DAM_SPLIT=0"};
    for (int v = 0; v < 4; v++) {
        const int broken = v == 1 || v == 3, gate = v >= 2;
        armt_runtime *rt = test_runtime();
        const int real = rt->tune.nv_mma && !rt->tune.mma_emulate;
        armt_runtime_free(rt);
        armt_runtime_params p = armt_runtime_default_params();
        p.profile = 1;
        p.tensor_cores = real ? ARMT_TC_AUTO : ARMT_TC_EMULATE;
        p.wgmma = ARMT_TC_OFF;
        p.fp32_gemm = ARMT_FP32_GEMM_TF32X3;
        p.build_options = opts[v];
        rt = NULL;
        ck_assert_msg(armt_runtime_create(&p, &rt) == ARMT_OK, "%s", armt_last_error());
        ck_assert_int_eq(rt->tune.attn_tf32, 1);
        ck_assert_int_eq(rt->tune.attn_tf32_gate, 0); /* (TF32X3 asked) */
        rt->tune.attn_tf32_gate = gate;
        armt_config c;
        armt_model *m = tiny_fp32(rt, &c, 13);
        armt_ctx *ctx = NULL;
        ck_assert_int_eq(armt_ctx_create(m, NULL, &ctx), ARMT_OK);
        int32_t ids[20];
        test_random_ids(ids, 20, c.vocab_size, 2);
        armt_forward_params fp = armt_forward_default_params();
        ck_assert_msg(armt_forward(ctx, ids, 20, &fp) == ARMT_OK, "%s", armt_ctx_last_error(ctx));
        ck_assert_msg(ran(ctx, "armt_attention_mma") == !broken && ran(ctx, "armt_attention") == broken,
                      "case %d: 3xTF32 attention %d, fp32 attention %d", v, ran(ctx, "armt_attention_mma"),
                      ran(ctx, "armt_attention"));
        armt_ctx_free(ctx);
        armt_model_free(m);
        armt_runtime_free(rt);
    }
}
END_TEST

/* The same with the wgmma kernel (where the runtime has it) */
START_TEST(test_forward_wgmma) { forward_check(1, 0); }
END_TEST

/* ======================================================================================================= */
/* The option                                                                                              */
/* ======================================================================================================= */

/* CLBLAST on a runtime with tensor cores: no 3xTF32 kernel, every fp32 GEMM through CLBlast. TF32X3 without
 * tensor cores, from the params or $ARMT_FP32_GEMM: UNSUPPORTED; a bad value: INVALID_ARGUMENT. */
START_TEST(test_option) {
    armt_runtime *rt = tc_runtime(ARMT_FP32_GEMM_CLBLAST, 1);
    ck_assert_int_eq(rt->tune.nv_mma, 1);
    ck_assert_int_eq(rt->tune.tf32, 0);
    ck_assert_ptr_null(rt->programs[ARMT_P_GEMM_TF32]);
    armt_config c;
    armt_model *m = tiny_fp32(rt, &c, 9);
    armt_ctx *ctx = NULL;
    ck_assert_int_eq(armt_ctx_create(m, NULL, &ctx), ARMT_OK);
    int32_t ids[20];
    test_random_ids(ids, 20, c.vocab_size, 1);
    armt_forward_params fp = armt_forward_default_params();
    ck_assert_msg(armt_forward(ctx, ids, 20, &fp) == ARMT_OK, "%s", armt_ctx_last_error(ctx));
    ck_assert(ran(ctx, "clblast_sgemm") && !ran(ctx, "armt_gemm_tf32"));
    armt_ctx_free(ctx);
    armt_model_free(m);
    armt_runtime_free(rt);

    armt_runtime_params p = armt_runtime_default_params();
    p.tensor_cores = ARMT_TC_OFF;
    p.fp32_gemm = ARMT_FP32_GEMM_TF32X3;
    rt = NULL;
    ck_assert_int_eq(armt_runtime_create(&p, &rt), ARMT_STATUS_UNSUPPORTED);
    ck_assert_ptr_null(rt);
    ck_assert_ptr_nonnull(strstr(armt_last_error(), "3xTF32"));
    p.fp32_gemm = (armt_fp32_gemm)7;
    ck_assert_int_eq(armt_runtime_create(&p, &rt), ARMT_STATUS_INVALID_ARGUMENT);
    p.fp32_gemm = ARMT_FP32_GEMM_AUTO; /* then the environment decides */
    setenv("ARMT_FP32_GEMM", "tf32x3", 1);
    ck_assert_int_eq(armt_runtime_create(&p, &rt), ARMT_STATUS_UNSUPPORTED);
    setenv("ARMT_FP32_GEMM", "fast", 1);
    ck_assert_int_eq(armt_runtime_create(&p, &rt), ARMT_STATUS_INVALID_ARGUMENT);
    ck_assert_ptr_nonnull(strstr(armt_last_error(), "ARMT_FP32_GEMM"));
    setenv("ARMT_FP32_GEMM", "clblast", 1);
    ck_assert_int_eq(armt_runtime_create(&p, &rt), ARMT_OK);
    ck_assert_int_eq(rt->tune.tf32, 0);
    armt_runtime_free(rt);
    unsetenv("ARMT_FP32_GEMM");
}
END_TEST

/* The choice in the tuning (no device needed): AUTO takes 3xTF32 for the GEMMs wherever mma.sync is (compute
 * capability 8.0 and 9.0; the more accurate with the split sums, lib/device/tune.c), not with tensor cores
 * off nor under the emulation, and for the attention too, gated by the load-time accuracy check unless
 * attention is ON; CLBLAST never; TF32X3 everywhere tensor cores are, the emulation included, ungated, and
 * fails elsewhere. */
START_TEST(test_tune) {
    armt_device_info h200 = {0}, a100, cpu = {0};
    h200.is_gpu = 1, h200.local_mem_bytes = 49152, h200.nv_compute_capability = 90;
    a100 = h200, a100.nv_compute_capability = 80;
    cpu.is_cpu = 1, cpu.local_mem_bytes = 65536;
    armt_device_tuning t;
    armt_err err;
    armt_err_init(&err);
    armt_tune_options o = {
        ARMT_TC_AUTO, ARMT_TC_AUTO, ARMT_TC_AUTO, ARMT_FP32_GEMM_AUTO, 0, 0, 0, 0, -1, -1, 0};
    /* AUTO takes 3xTF32 for the GEMMs (more accurate than CLBlast with the split sums: lib/device/tune.c)
     * and for the attention where the load-time check finds it as accurate as the fp32 kernel (the gate),
     * without the gate when attention is ON, not when it is OFF; TF32X3 both, ungated */
    ck_assert_int_eq(armt_tune_device(&h200, &o, &t, &err), ARMT_OK);
    ck_assert(t.tf32 && t.nv_mma && t.attn_tf32 && t.attn_tf32_gate);
    o.attention = ARMT_TC_ON;
    ck_assert_int_eq(armt_tune_device(&h200, &o, &t, &err), ARMT_OK);
    ck_assert(t.tf32 && t.attn_tf32 && !t.attn_tf32_gate);
    o.attention = ARMT_TC_OFF;
    ck_assert_int_eq(armt_tune_device(&h200, &o, &t, &err), ARMT_OK);
    ck_assert(t.tf32 && !t.attn_tf32 && !t.attn_tf32_gate);
    o.attention = ARMT_TC_AUTO;
    ck_assert_int_eq(armt_tune_device(&a100, &o, &t, &err), ARMT_OK);
    ck_assert(t.tf32 && t.attn_tf32 && t.attn_tf32_gate);
    o.fp32_gemm = ARMT_FP32_GEMM_TF32X3;
    ck_assert_int_eq(armt_tune_device(&h200, &o, &t, &err), ARMT_OK);
    ck_assert(t.attn_tf32 && !t.attn_tf32_gate);
    ck_assert(t.tf32 && t.tf_bm == 128 && t.tf_bn == 128 && t.tf_threads == 256);
    ck_assert(t.tf_wgmma && t.tw_wgm == 2 && t.tw_n == 128 && t.tw_stages == 3);
    char opts[256];
    armt_tune_tf32_options(&t, opts, sizeof opts);
    ck_assert_str_eq(opts, "-DTF_BM=128 -DTF_BN=128 -DTF_BK=16 -DTF_WARPS_M=2 -DTF_WARPS_N=4 -DTF_STAGES=2 "
                           "-DTF_WGMMA=1 -DTW_WGM=2 -DTW_N=128 -DTW_STAGES=3");
    armt_tune_tf32_wgmma_failed(&t);
    armt_tune_tf32_options(&t, opts, sizeof opts);
    ck_assert_str_eq(opts, "-DTF_BM=128 -DTF_BN=128 -DTF_BK=16 -DTF_WARPS_M=2 -DTF_WARPS_N=4 -DTF_STAGES=2");
    o.wgmma = ARMT_TC_OFF; /* wgmma off: the mma.sync kernel alone */
    ck_assert_int_eq(armt_tune_device(&h200, &o, &t, &err), ARMT_OK);
    ck_assert(t.tf32 && !t.tf_wgmma);
    o.wgmma = ARMT_TC_AUTO;
    ck_assert_int_eq(armt_tune_device(&a100, &o, &t, &err), ARMT_OK);
    ck_assert(t.tf32 && !t.tf_wgmma);
    ck_assert_int_eq(armt_tune_device(&cpu, &o, &t, &err), ARMT_STATUS_UNSUPPORTED);
    o.fp32_gemm = ARMT_FP32_GEMM_AUTO;
    ck_assert_int_eq(armt_tune_device(&cpu, &o, &t, &err), ARMT_OK);
    ck_assert(!t.tf32);
    armt_tune_tf32_options(&t, opts, sizeof opts);
    ck_assert_str_eq(opts, "");
    o.fp32_gemm = ARMT_FP32_GEMM_CLBLAST;
    ck_assert_int_eq(armt_tune_device(&h200, &o, &t, &err), ARMT_OK);
    ck_assert(!t.tf32 && t.nv_mma);
    o.fp32_gemm = ARMT_FP32_GEMM_TF32X3;
    ck_assert_int_eq(armt_tune_device(&a100, &o, &t, &err), ARMT_OK);
    ck_assert(t.tf32);
    ck_assert_int_eq(armt_tune_device(&cpu, &o, &t, &err), ARMT_STATUS_UNSUPPORTED);
    o.tensor_cores = ARMT_TC_OFF;
    ck_assert_int_eq(armt_tune_device(&h200, &o, &t, &err), ARMT_STATUS_UNSUPPORTED);
    o.fp32_gemm = ARMT_FP32_GEMM_AUTO; /* (tensor cores off: CLBlast) */
    ck_assert_int_eq(armt_tune_device(&h200, &o, &t, &err), ARMT_OK);
    ck_assert(!t.tf32 && !t.attn_tf32 && !t.attn_tf32_gate);
    o.fp32_gemm = ARMT_FP32_GEMM_TF32X3;
    o.tensor_cores = ARMT_TC_EMULATE;
    ck_assert_int_eq(armt_tune_device(&cpu, &o, &t, &err), ARMT_OK);
    ck_assert(t.tf32 && t.mma_emulate && t.tf_bm == 64 && t.tf_bn == 32 && t.tf_threads == 128);
    o.fp32_gemm = ARMT_FP32_GEMM_AUTO;
    ck_assert_int_eq(armt_tune_device(&cpu, &o, &t, &err), ARMT_OK);
    ck_assert(!t.tf32 && t.mma_emulate);
    armt_err_free(&err);
}
END_TEST

static Suite *suite(void) {
    Suite *s = suite_create("tf32");
    TCase *tc = test_tcase(s, "tf32", 300);
    tcase_add_test(tc, test_sites);
    tcase_add_test(tc, test_splitk);
    tcase_add_test(tc, test_forward);
    tcase_add_test(tc, test_forward_wgmma);
    tcase_add_test(tc, test_forward_splitk);
    tcase_add_test(tc, test_attention_check);
    tcase_add_test(tc, test_option);
    tcase_add_test(tc, test_tune);
    return s;
}

int main(void) { return test_run_suite(suite(), 1); }
