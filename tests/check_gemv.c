/*
 * check_gemv.c - the GEMV kernel of generation (cl/gemv_bf16.cl) through the GEMM door: every epilogue
 * (beta 0 and 1, row scales, bf16 output, SwiGLU with a gate buffer, gate and up in one pass, k and v in one
 * pass, RoPE alone and on k of k and v), fp32 and bf16 A, one and three rows, two entries at irregular
 * offsets (two launches) and a skipped first row of the last entry, against a double-precision product of the
 * same bf16-rounded inputs. C starts as NaN where it is only written and as random values where beta = 1;
 * everything outside the blocks must come back unchanged. Also the plan's routing: only ops marked gemv,
 * with m <= ARMT_GEMV_ROWS, take the kernel. The RMSNorm prologue (bit for bit armt_rmsnorm's output) and k and v
 * into fp32 C and C2.
 */
#include "config.h"

#include "testutil.h"

#include "compute/gemm.h"
#include "device/internal.h"

#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

enum mode { PLAIN, BETA, ROWSCALE, BF16_OUT, GATE, GATE_UP, KV, ROPE, ROPE_KV, KV32, ROPE_KV32, N_MODES };
static const char *const mode_name[N_MODES] = {"plain",    "beta",     "rowscale",     "bf16_out",
                                               "gate",     "gate+up",  "k+v",          "rope",
                                               "rope k+v", "k+v fp32", "rope k+v fp32"};

#define HD 8 /* RoPE head size */

static float bf(float x) { /* round to bf16 (nearest even), as the kernels do */
    uint32_t u;
    memcpy(&u, &x, 4);
    u = (u + 0x7fffu + ((u >> 16) & 1u)) & 0xffff0000u;
    memcpy(&x, &u, 4);
    return x;
}
static uint16_t bf_bits(float x) {
    uint32_t u;
    x = bf(x);
    memcpy(&u, &x, 4);
    return (uint16_t)(u >> 16);
}
static float from_bits(uint16_t h) {
    uint32_t u = (uint32_t)h << 16;
    float x;
    memcpy(&x, &u, 4);
    return x;
}
static float urand(uint64_t *s) {
    *s = *s * 6364136223846793005ULL + 1442695040888963407ULL;
    return (float)((*s >> 40) & 0xffffff) / 8388608.0f - 1.0f;
}
static double silu(double g) { return g / (1.0 + exp(-g)); }

static cl_mem buffer(armt_ctx *ctx, size_t bytes, const void *host) {
    cl_int e;
    cl_mem b =
        clCreateBuffer(ctx->rt->context, CL_MEM_READ_WRITE | CL_MEM_COPY_HOST_PTR, bytes, (void *)host, &e);
    ck_assert_int_eq(e, CL_SUCCESS);
    return b;
}

static void release(cl_mem *b, size_t n) {
    for (size_t i = 0; i < n; i++)
        clReleaseMemObject(b[i]);
}

/* RoPE's table for positions 0 .. npos - 1 (head size HD, base 100): cos then sin of each position */
static void rope_table(float *tab, int npos) {
    for (int p = 0; p < npos; p++)
        for (int i = 0; i < HD / 2; i++) {
            const double f = p * pow(100.0, -2.0 * i / HD);
            tab[p * HD + i] = (float)cos(f);
            tab[p * HD + HD / 2 + i] = (float)sin(f);
        }
}

/* One case: m rows, n outputs, k inputs, two entries (the second's first row skipped when skip). */
static void run_case(armt_ctx *ctx, enum mode md, int a_bf16, int m, int n, int k, int skip, uint64_t seed) {
    const int kv32 = md == KV32 || md == ROPE_KV32; /* k and v into fp32 C and C2 */
    const int count = 2, lda = k + 8, ldc = n + 3, dual = md == GATE_UP || md == KV || md == ROPE_KV || kv32;
    const int rope = md == ROPE || md == ROPE_KV || md == ROPE_KV32;
    const int bout = md == BF16_OUT || md == GATE || (dual && !kv32);
    /* entry offsets: A and C apart and not in order (two runs of one entry each); W of two "layers" */
    const size_t a_off[2] = {(size_t)(m + 1) * lda, 0}, w_off[2] = {(size_t)n * k, 0};
    const size_t c_off[2] = {(size_t)(m + 2) * ldc, 5};
    const size_t na = (size_t)(2 * m + 2) * lda, nw = 2 * (size_t)n * k, nc = (size_t)(2 * m + 3) * ldc;
    float *a = malloc(na * 4), *c0 = malloc(nc * 4), *gate = malloc(nc * 4), *c = malloc(nc * 4),
          *c2 = malloc(nc * 4);
    float *rs = malloc(na / lda * 4 + 4), *tab = malloc((size_t)(16 + m) * HD * 4);
    uint16_t *ab = malloc(na * 2), *w = malloc(nw * 2), *w2 = malloc(nw * 2), *o1 = malloc(nc * 2),
             *o2 = malloc(nc * 2);
    double *ref = calloc(nc, sizeof(double)), *ref2 = calloc(nc, sizeof(double));
    ck_assert(a && c0 && gate && c && c2 && rs && tab && ab && w && w2 && o1 && o2 && ref && ref2);
    for (size_t i = 0; i < na; i++) {
        a[i] = urand(&seed);
        ab[i] = bf_bits(a[i]);
    }
    for (size_t i = 0; i < nw; i++) {
        w[i] = bf_bits(urand(&seed));
        w2[i] = bf_bits(urand(&seed));
    }
    for (size_t i = 0; i < nc; i++) {
        c0[i] = md == BETA || md == ROWSCALE ? urand(&seed) : NAN;
        gate[i] = 2.0f * urand(&seed);
        o1[i] = o2[i] = 0x7fc0; /* NaN */
    }
    for (size_t i = 0; i < na / lda + 1; i++)
        rs[i] = 0.5f + urand(&seed);
    const int pos0 = 3; /* the table's positions 0 .. 16 + m */
    rope_table(tab, 16 + m);
    /* the reference */
    for (int j = 0; j < count; j++)
        for (int r = 0; r < m; r++) {
            if (j == count - 1 && r < skip) continue;
            double *p = malloc((size_t)n * sizeof(double)), *q = malloc((size_t)n * sizeof(double));
            for (int col = 0; col < n; col++) {
                double s = 0, s2 = 0;
                for (int i = 0; i < k; i++) {
                    const double x = bf(a[a_off[j] + (size_t)r * lda + i]);
                    s += x * from_bits(w[w_off[j] + (size_t)col * k + i]);
                    s2 += x * from_bits(w2[w_off[j] + (size_t)col * k + i]);
                }
                p[col] = s;
                q[col] = s2;
            }
            if (rope)
                for (int col = 0; col < n; col++) {
                    const int i = col % HD;
                    if (i >= HD / 2) continue;
                    const float *cs = tab + (size_t)(pos0 + r) * HD;
                    const double x = p[col], y = p[col + HD / 2];
                    p[col] = x * cs[i] - y * cs[HD / 2 + i];
                    p[col + HD / 2] = y * cs[i] + x * cs[HD / 2 + i];
                }
            for (int col = 0; col < n; col++) {
                const size_t o = c_off[j] + (size_t)r * ldc + col;
                switch (md) {
                case BETA: ref[o] = c0[o] + p[col]; break;
                case ROWSCALE: ref[o] = c0[o] + rs[a_off[j] / lda + r] * p[col]; break;
                case GATE: ref[o] = silu(gate[o]) * p[col]; break;
                case GATE_UP: ref[o] = silu(p[col]) * q[col]; break;
                case KV:
                case ROPE_KV:
                case KV32:
                case ROPE_KV32:
                    ref[o] = p[col];
                    ref2[o] = q[col];
                    break;
                default: ref[o] = p[col];
                }
            }
            free(p);
            free(q);
        }

    cl_mem ba = buffer(ctx, na * 4, a), bab = buffer(ctx, na * 2, ab), bw = buffer(ctx, nw * 2, w),
           bw2 = buffer(ctx, nw * 2, w2), bc = buffer(ctx, nc * 4, c0), bg = buffer(ctx, nc * 4, gate),
           bo1 = buffer(ctx, nc * 2, o1), bo2 = buffer(ctx, nc * 2, o2),
           brs = buffer(ctx, (na / lda + 1) * 4, rs), btab = buffer(ctx, (size_t)(16 + m) * HD * 4, tab),
           bc2 = buffer(ctx, nc * 4, c0);
    armt_gemm_op op = {.m = (size_t)m,
                       .n = (size_t)n,
                       .k = (size_t)k,
                       .count = (size_t)count,
                       .a = ba,
                       .lda = (size_t)lda,
                       .a_off = a_off,
                       .a_bf16 = a_bf16 ? bab : NULL,
                       .a_bf16_only = a_bf16,
                       .w = bw,
                       .ldw = (size_t)k,
                       .w_off = w_off,
                       .w_bf16 = 1,
                       .c = md == GATE ? bg : bc,
                       .ldc = (size_t)ldc,
                       .c_off = c_off,
                       .beta = md == BETA || md == ROWSCALE ? 1.0f : 0.0f,
                       .skip_last = (size_t)skip,
                       .site = -1,
                       .gemv = 1};
    if (md == ROWSCALE) op.epi.rowscale = brs;
    if (bout) op.epi.out = bo1;
    if (md == BF16_OUT) op.epi.bf16_out = 1;
    if (md == GATE) op.epi.gate = bg;
    if (dual) op.epi.w2 = bw2;
    if (md == KV || md == ROPE_KV) op.epi.out2 = bo2;
    if (kv32) op.epi.c2 = bc2;
    if (rope) {
        op.epi.rope = btab;
        op.epi.rope_hd = HD;
        op.epi.rope_T = 1000;
        op.epi.rope_pos0 = pos0;
    }
    armt_gemm_env env = armt_gemm_env_of(ctx);
    armt_gemm_plan plan;
    ck_assert_ptr_null(armt_gemm_plan_make(&env, &op, &plan));
    /* (one row an entry: the kernels of one row) */
    const armt_kernel_id want = m == 1 ? (a_bf16 ? ARMT_K_GEMV1_BF16BF16 : ARMT_K_GEMV1_BF16)
                                       : (a_bf16 ? ARMT_K_GEMV_BF16BF16 : ARMT_K_GEMV_BF16);
    ck_assert_msg(plan.gemv && plan.kernel == want, "%s: not the GEMV", mode_name[md]);
    ck_assert_int_eq(plan.gv_lanes, ctx->rt->tune.gemv_lanes); /* (the lanes the test forces) */
    ck_assert_int_eq((int)plan.tile[0], 2 * 128 / plan.gv_lanes);
    armt_err err;
    armt_err_init(&err);
    armt_status st = armt_gemm(ctx, &op, &err);
    ck_assert_msg(st == ARMT_OK, "%s: %s", mode_name[md], armt_err_msg(&err));
    armt_err_free(&err);
    ck_assert_int_eq(clEnqueueReadBuffer(ctx->queue, bc, CL_TRUE, 0, nc * 4, c, 0, NULL, NULL), CL_SUCCESS);
    ck_assert_int_eq(clEnqueueReadBuffer(ctx->queue, bo1, CL_TRUE, 0, nc * 2, o1, 0, NULL, NULL), CL_SUCCESS);
    ck_assert_int_eq(clEnqueueReadBuffer(ctx->queue, bo2, CL_TRUE, 0, nc * 2, o2, 0, NULL, NULL), CL_SUCCESS);
    ck_assert_int_eq(clEnqueueReadBuffer(ctx->queue, bc2, CL_TRUE, 0, nc * 4, c2, 0, NULL, NULL), CL_SUCCESS);

    double scale = 0;
    for (size_t i = 0; i < nc; i++)
        scale = fmax(scale, fmax(fabs(ref[i]), fabs(ref2[i])));
    for (int j = 0; j < count; j++)
        for (int r = 0; r < m; r++)
            for (int col = 0; col < ldc; col++) {
                const size_t o = c_off[j] + (size_t)r * ldc + col;
                const int in = col < n && !(j == count - 1 && r < skip);
                /* fp32 C: the product where it is written, else as it was (NaN stays NaN) */
                if (!bout && in)
                    ck_assert_msg(fabs(c[o] - ref[o]) <= 1e-5 * scale,
                                  "%s a_bf16 %d m %d k %d lanes %d: C[%d][%d][%d] %g, want %g", mode_name[md],
                                  a_bf16, m, k, plan.gv_lanes, j, r, col, c[o], ref[o]);
                else
                    ck_assert_msg(memcmp(&c[o], &c0[o], 4) == 0, "%s: C[%d][%d][%d] changed", mode_name[md],
                                  j, r, col);
                /* bf16 outputs: within bf16's rounding (2^-8 relative) */
                if (bout && in) {
                    ck_assert_msg(fabs(from_bits(o1[o]) - ref[o]) <= 4e-3 * fabs(ref[o]) + 1e-5 * scale,
                                  "%s a_bf16 %d m %d: out[%d][%d][%d] %g, want %g", mode_name[md], a_bf16, m,
                                  j, r, col, from_bits(o1[o]), ref[o]);
                } else {
                    ck_assert_msg(o1[o] == 0x7fc0, "%s: out[%d][%d][%d] written", mode_name[md], j, r, col);
                }
                if (kv32 && in)
                    ck_assert_msg(fabs(c2[o] - ref2[o]) <= 1e-5 * scale, "%s: C2[%d][%d][%d] %g, want %g",
                                  mode_name[md], j, r, col, c2[o], ref2[o]);
                else
                    ck_assert_msg(memcmp(&c2[o], &c0[o], 4) == 0, "%s: C2[%d][%d][%d] changed", mode_name[md],
                                  j, r, col);
                if ((md == KV || md == ROPE_KV) && in)
                    ck_assert_msg(fabs(from_bits(o2[o]) - ref2[o]) <= 4e-3 * fabs(ref2[o]) + 1e-5 * scale,
                                  "%s: out2[%d][%d][%d] %g, want %g", mode_name[md], j, r, col,
                                  from_bits(o2[o]), ref2[o]);
                else
                    ck_assert_msg(o2[o] == 0x7fc0, "%s: out2[%d][%d][%d] written", mode_name[md], j, r, col);
            }
    cl_mem all[] = {ba, bab, bw, bw2, bc, bg, bo1, bo2, brs, btab, bc2};
    release(all, sizeof all / sizeof all[0]);
    free(a), free(c0), free(gate), free(c), free(c2), free(rs), free(tab), free(ab), free(w), free(w2),
        free(o1), free(o2);
    free(ref), free(ref2);
}

/* A context of a random bf16 "tiny" model on rt */
static armt_ctx *tiny_ctx_on(armt_runtime *rt, armt_model **m) {
    armt_config c;
    ck_assert_int_eq(armt_config_preset("tiny", &c), ARMT_OK);
    armt_model_params mp = armt_model_default_params();
    mp.precision = ARMT_PRECISION_BF16;
    ck_assert_msg(armt_model_create_random(rt, &c, &mp, m) == ARMT_OK, "%s", armt_last_error());
    armt_ctx *ctx = NULL;
    ck_assert_int_eq(armt_ctx_create(*m, NULL, &ctx), ARMT_OK);
    return ctx;
}

static armt_ctx *tiny_ctx(armt_runtime **rt, armt_model **m) {
    *rt = test_runtime();
    return tiny_ctx_on(*rt, m);
}

/* Layer l's weight of a role (n x k bf16) into w */
static void read_weight(armt_ctx *ctx, armt_model *m, armt_role role, int l, size_t n, size_t k,
                        uint16_t *w) {
    size_t off;
    cl_mem b = armt_weight_at(&m->w[role], l, &off);
    ck_assert(m->w[role].bf16);
    ck_assert_int_eq(clEnqueueReadBuffer(ctx->queue, b, CL_TRUE, off * 2, n * k * 2, w, 0, NULL, NULL),
                     CL_SUCCESS);
}

static void tiny_free(armt_ctx *ctx, armt_model *m, armt_runtime *rt) {
    armt_ctx_free(ctx);
    armt_model_free(m);
    armt_runtime_free(rt);
}

/* _i: the mode */
START_TEST(test_gemv_modes) {
    armt_runtime *rt;
    armt_model *m;
    armt_ctx *ctx = tiny_ctx(&rt, &m);
    const enum mode md = (enum mode)_i;
    /* every lanes value (32, 64, 128 work-items per column pair): n whole RoPE heads, else odd (a last
     * work-group with one column of a pair); k 296: 37 chunks of 8 (two rounds of a lane at 32 lanes, part of
     * one at 128), 2056: 257 (a last round of one chunk at 128 lanes) */
    for (int lanes = 32; lanes <= 128; lanes *= 2) {
        ctx->rt->tune.gemv_lanes = lanes;
        for (int a_bf16 = 0; a_bf16 < 2; a_bf16++) {
            const int n = md == ROPE || md == ROPE_KV || md == ROPE_KV32 ? 5 * HD : 37;
            run_case(ctx, md, a_bf16, 1, n, 296, 0, 11 + (uint64_t)_i);
            run_case(ctx, md, a_bf16, 3, n, 296, 1, 23 + (uint64_t)_i);
            if (lanes == 128) run_case(ctx, md, a_bf16, 1, n, 2056, 0, 31 + (uint64_t)_i);
        }
    }
    tiny_free(ctx, m, rt);
}
END_TEST

/* The RMSNorm prologue (generation's one-row steps leave the norm to the GEMV): the GEMV on fp32 x with
 * norm_w equals, bit for bit, armt_rmsnorm (its bf16 output, the kernel every layer runs) followed by the GEMV
 * on that bf16 A, for m rows of d = k; and both are within bf16 rounding of a double-precision norm and
 * product. _i: 0, k = 296 (armt_rmsnorm's float4 path), 1, k = 1096 on PoCL (past 16 ARMT_ROW_WG floats: its
 * scalar path; a GPU's wider work-groups keep the float4 path). */
START_TEST(test_gemv_norm) {
    armt_runtime *rt;
    armt_model *mdl;
    armt_ctx *ctx = tiny_ctx(&rt, &mdl);
    const int k = _i ? 1096 : 296, n = 40, goff = 8;
    for (int m = 1; m <= 3; m += 2)
        for (int lanes = 32; lanes <= 128; lanes *= 2) {
            ctx->rt->tune.gemv_lanes = lanes;
            uint64_t seed = 77 + (uint64_t)m + (uint64_t)_i;
            const size_t nx = (size_t)m * k, nwt = (size_t)n * k, nc = (size_t)m * n;
            float *x = malloc(nx * 4), *g = malloc((size_t)(goff + k) * 4), *c1 = malloc(nc * 4),
                  *c2 = malloc(nc * 4);
            uint16_t *w = malloc(nwt * 2), *yb = malloc(nx * 2);
            ck_assert(x && g && c1 && c2 && w && yb);
            for (size_t i = 0; i < nx; i++)
                x[i] = 3.0f * urand(&seed) + (i % 7 == 0 ? 10.0f : 0.0f);
            for (int i = 0; i < goff + k; i++)
                g[i] = 0.5f + urand(&seed);
            for (size_t i = 0; i < nwt; i++)
                w[i] = bf_bits(urand(&seed));
            for (size_t i = 0; i < nc; i++)
                c1[i] = c2[i] = NAN;
            for (size_t i = 0; i < nx; i++)
                yb[i] = 0x7fc0;
            cl_mem bx = buffer(ctx, nx * 4, x), by = buffer(ctx, nx * 4, x),
                   bg = buffer(ctx, (size_t)(goff + k) * 4, g), bw = buffer(ctx, nwt * 2, w),
                   byb = buffer(ctx, nx * 2, yb), bc1 = buffer(ctx, nc * 4, c1),
                   bc2 = buffer(ctx, nc * 4, c2);
            /* armt_rmsnorm over one cell of m rows: layer 0, slot 0, weight at goff */
            cl_kernel kn = ctx->k[ARMT_K_RMSNORM];
            const cl_ulong wo = (cl_ulong)goff;
            const float eps = 1e-5f;
            const int zero = 0, one = 1, none = -1;
            int e = 0;
            e |= clSetKernelArg(kn, 0, sizeof bx, &bx);
            e |= clSetKernelArg(kn, 1, sizeof by, &by);
            e |= clSetKernelArg(kn, 2, sizeof bg, &bg);
            e |= clSetKernelArg(kn, 3, sizeof wo, &wo);
            e |= clSetKernelArg(kn, 4, sizeof k, &k);
            e |= clSetKernelArg(kn, 5, sizeof eps, &eps);
            e |= clSetKernelArg(kn, 6, sizeof zero, &zero);  /* l0 */
            e |= clSetKernelArg(kn, 7, sizeof zero, &zero);  /* s0 */
            e |= clSetKernelArg(kn, 8, sizeof one, &one);    /* cap */
            e |= clSetKernelArg(kn, 9, sizeof m, &m);        /* T */
            e |= clSetKernelArg(kn, 10, sizeof none, &none); /* s_short */
            e |= clSetKernelArg(kn, 11, sizeof zero, &zero); /* T_short */
            e |= clSetKernelArg(kn, 12, sizeof byb, &byb);
            ck_assert_int_eq(e, CL_SUCCESS);
            const size_t wg = (size_t)ctx->rt->tune.row_wg, gws[3] = {wg, (size_t)m, 1}, lws[3] = {wg, 1, 1};
            ck_assert_int_eq(clEnqueueNDRangeKernel(ctx->queue, kn, 3, NULL, gws, lws, 0, NULL, NULL),
                             CL_SUCCESS);
            const size_t off0[1] = {0};
            armt_gemm_op op = {.m = (size_t)m,
                               .n = (size_t)n,
                               .k = (size_t)k,
                               .count = 1,
                               .a = bx,
                               .lda = (size_t)k,
                               .a_off = off0,
                               .a_bf16 = byb,
                               .a_bf16_only = 1,
                               .w = bw,
                               .ldw = (size_t)k,
                               .w_off = off0,
                               .w_bf16 = 1,
                               .c = bc1,
                               .ldc = (size_t)n,
                               .c_off = off0,
                               .site = -1,
                               .gemv = 1};
            armt_err err;
            armt_err_init(&err);
            ck_assert_msg(armt_gemm(ctx, &op, &err) == ARMT_OK, "%s", armt_err_msg(&err));
            op.a_bf16 = NULL; /* the same product, the norm in the GEMV */
            op.a_bf16_only = 0;
            op.c = bc2;
            op.epi.norm_w = bg;
            op.epi.norm_off = (size_t)goff;
            op.epi.norm_eps = eps;
            armt_gemm_env env = armt_gemm_env_of(ctx);
            armt_gemm_plan plan;
            ck_assert_ptr_null(armt_gemm_plan_make(&env, &op, &plan));
            ck_assert(plan.gemv && plan.kernel == (m == 1 ? ARMT_K_GEMV1_BF16 : ARMT_K_GEMV_BF16));
            ck_assert_msg(armt_gemm(ctx, &op, &err) == ARMT_OK, "%s", armt_err_msg(&err));
            armt_err_free(&err);
            ck_assert_int_eq(clEnqueueReadBuffer(ctx->queue, bc1, CL_TRUE, 0, nc * 4, c1, 0, NULL, NULL),
                             CL_SUCCESS);
            ck_assert_int_eq(clEnqueueReadBuffer(ctx->queue, bc2, CL_TRUE, 0, nc * 4, c2, 0, NULL, NULL),
                             CL_SUCCESS);
            ck_assert_int_eq(clEnqueueReadBuffer(ctx->queue, byb, CL_TRUE, 0, nx * 2, yb, 0, NULL, NULL),
                             CL_SUCCESS);
            double scale = 0;
            for (int r = 0; r < m; r++) {
                double ss = 0;
                for (int i = 0; i < k; i++)
                    ss += (double)x[(size_t)r * k + i] * x[(size_t)r * k + i];
                const double inv = 1.0 / sqrt(ss / k + eps);
                for (int col = 0; col < n; col++) {
                    double p = 0;
                    for (int i = 0; i < k; i++) {
                        const size_t a = (size_t)r * k + i;
                        /* the norm's bf16 output within its rounding of the exact value */
                        if (col == 0)
                            ck_assert_msg(fabs(from_bits(yb[a]) - x[a] * inv * g[goff + i]) <=
                                              4e-3 * fabs(x[a] * inv * g[goff + i]) + 1e-30,
                                          "norm[%d][%d] %g", r, i, from_bits(yb[a]));
                        p += (double)from_bits(yb[a]) * from_bits(w[(size_t)col * k + i]);
                    }
                    scale = fmax(scale, fabs(p));
                    const size_t o = (size_t)r * n + col;
                    ck_assert_msg(fabs(c1[o] - p) <= 1e-5 * fmax(scale, 1.0), "m %d: C[%d][%d] %g, want %g",
                                  m, r, col, c1[o], p);
                    ck_assert_msg(
                        memcmp(&c1[o], &c2[o], 4) == 0,
                        "k %d m %d lanes %d: C[%d][%d] with the norm in the GEMV %.9g, after armt_rmsnorm "
                        "%.9g",
                        k, m, lanes, r, col, c2[o], c1[o]);
                }
            }
            cl_mem all[] = {bx, by, bg, bw, byb, bc1, bc2};
            release(all, sizeof all / sizeof all[0]);
            free(x), free(g), free(c1), free(c2), free(w), free(yb);
        }
    tiny_free(ctx, mdl, rt);
}
END_TEST

/* A third product in the launch (epi.w3: generation's q next to k and v into fp32 C and C2): q equals, bit for
 * bit, the GEMV of q alone, and k and v those of k and v alone; all within rounding of a double-precision
 * product (RoPE on q and k). m 1 and 3 rows, fp32 and bf16 A, every lanes value; C3 has its own row stride. */
START_TEST(test_gemv_third) {
    armt_runtime *rt;
    armt_model *mdl;
    armt_ctx *ctx = tiny_ctx(&rt, &mdl);
    const int k = 296, n = 3 * HD, n3 = 5 * HD, lda = k + 8, ldc = n + 4, ldc3 = n3 + 8, pos0 = 2;
    const size_t w_off = 16, w3_off = 8 * (size_t)k, c_off = 3, c3_off = 5;
    for (int lanes = 32; lanes <= 128; lanes *= 2)
        for (int a_bf16 = 0; a_bf16 < 2; a_bf16++)
            for (int m = 1; m <= 3; m += 2) {
                ctx->rt->tune.gemv_lanes = lanes;
                uint64_t seed = 101 + (uint64_t)(m + 4 * a_bf16 + lanes);
                const size_t na = (size_t)m * lda, nw = w3_off + (size_t)n3 * k, nc = c_off + (size_t)m * ldc,
                             nc3 = c3_off + (size_t)m * ldc3;
                float *a = malloc(na * 4), *tab = malloc((size_t)(pos0 + m) * HD * 4),
                      *nanv = malloc(nc3 * 4);
                uint16_t *ab = malloc(na * 2), *w = malloc(nw * 2), *w2 = malloc(nw * 2);
                float *got[6];
                ck_assert(a && tab && nanv && ab && w && w2);
                for (size_t i = 0; i < na; i++) {
                    a[i] = urand(&seed);
                    ab[i] = bf_bits(a[i]);
                }
                for (size_t i = 0; i < nw; i++) {
                    w[i] = bf_bits(urand(&seed));
                    w2[i] = bf_bits(urand(&seed));
                }
                for (size_t i = 0; i < nc3; i++)
                    nanv[i] = NAN;
                rope_table(tab, pos0 + m);
                cl_mem ba = buffer(ctx, na * 4, a), bab = buffer(ctx, na * 2, ab),
                       bw = buffer(ctx, nw * 2, w), bw2 = buffer(ctx, nw * 2, w2),
                       btab = buffer(ctx, (size_t)(pos0 + m) * HD * 4, tab);
                cl_mem out[6]; /* fused: k, v, q; alone: k, v, q */
                for (int i = 0; i < 6; i++)
                    out[i] = buffer(ctx, (i % 3 == 2 ? nc3 : nc) * 4, nanv);
                const size_t zero = 0;
                armt_gemm_op op = {.m = (size_t)m,
                                   .n = (size_t)n,
                                   .k = (size_t)k,
                                   .count = 1,
                                   .a = ba,
                                   .lda = (size_t)lda,
                                   .a_off = &zero,
                                   .a_bf16 = a_bf16 ? bab : NULL,
                                   .a_bf16_only = a_bf16,
                                   .w = bw,
                                   .ldw = (size_t)k,
                                   .w_off = &w_off,
                                   .w_bf16 = 1,
                                   .c = out[0],
                                   .ldc = (size_t)ldc,
                                   .c_off = &c_off,
                                   .site = -1,
                                   .gemv = 1};
                op.epi.rope = btab;
                op.epi.rope_hd = HD;
                op.epi.rope_T = 1000;
                op.epi.rope_pos0 = pos0;
                armt_gemm_op kv = op, q = op;
                kv.epi.w2 = bw2;
                kv.epi.c2 = out[1];
                op = kv;
                op.epi.w3 = bw;
                op.epi.w3_off = w3_off;
                op.epi.n3 = (size_t)n3;
                op.epi.c3 = out[2];
                op.epi.c3_off = c3_off;
                op.epi.ldc3 = (size_t)ldc3;
                kv.c = out[3];
                kv.epi.c2 = out[4];
                q.n = (size_t)n3;
                q.w_off = &w3_off;
                q.c = out[5];
                q.ldc = (size_t)ldc3;
                q.c_off = &c3_off;
                armt_gemm_env env = armt_gemm_env_of(ctx);
                armt_gemm_plan plan;
                ck_assert_ptr_null(armt_gemm_plan_make(&env, &op, &plan));
                ck_assert(plan.gemv && plan.gv_lanes == lanes);
                armt_err err;
                armt_err_init(&err);
                ck_assert_msg(armt_gemm(ctx, &op, &err) == ARMT_OK, "%s", armt_err_msg(&err));
                ck_assert_msg(armt_gemm(ctx, &kv, &err) == ARMT_OK, "%s", armt_err_msg(&err));
                ck_assert_msg(armt_gemm(ctx, &q, &err) == ARMT_OK, "%s", armt_err_msg(&err));
                armt_err_free(&err);
                for (int i = 0; i < 6; i++) {
                    const size_t bytes = (i % 3 == 2 ? nc3 : nc) * 4;
                    got[i] = malloc(bytes);
                    ck_assert(got[i]);
                    ck_assert_int_eq(
                        clEnqueueReadBuffer(ctx->queue, out[i], CL_TRUE, 0, bytes, got[i], 0, NULL, NULL),
                        CL_SUCCESS);
                }
                /* the reference: P = A W^T per output (k at w_off, v from W2 at w_off, q at w3_off), RoPE'd */
                for (int r = 0; r < m; r++)
                    for (int which = 0; which < 3; which++) {
                        const int nn = which == 2 ? n3 : n, ld = which == 2 ? ldc3 : ldc;
                        const size_t wo = which == 2 ? w3_off : w_off, co = which == 2 ? c3_off : c_off;
                        const uint16_t *ww = which == 1 ? w2 : w;
                        double *p = malloc((size_t)nn * sizeof(double));
                        ck_assert(p);
                        for (int col = 0; col < nn; col++) {
                            double sum = 0;
                            for (int i = 0; i < k; i++)
                                sum += (double)bf(a[(size_t)r * lda + i]) *
                                       from_bits(ww[wo + (size_t)col * k + i]);
                            p[col] = sum;
                        }
                        if (which != 1)
                            for (int col = 0; col < nn; col++) {
                                const int i = col % HD;
                                if (i >= HD / 2) continue;
                                const float *cs = tab + (size_t)(pos0 + r) * HD;
                                const double x = p[col], y = p[col + HD / 2];
                                p[col] = x * cs[i] - y * cs[HD / 2 + i];
                                p[col + HD / 2] = y * cs[i] + x * cs[HD / 2 + i];
                            }
                        for (int col = 0; col < ld; col++) {
                            const size_t o = co + (size_t)r * ld + col;
                            const float f = got[which][o], alone = got[3 + which][o];
                            if (col >= nn) { /* outside the block: untouched */
                                ck_assert_msg(isnan(f), "lanes %d m %d: out %d [%d][%d] written", lanes, m,
                                              which, r, col);
                                continue;
                            }
                            ck_assert_msg(fabs(f - p[col]) <= 1e-5 * (1.0 + fabs(p[col])),
                                          "lanes %d a_bf16 %d m %d: out %d [%d][%d] %g, want %g", lanes,
                                          a_bf16, m, which, r, col, f, p[col]);
                            ck_assert_msg(memcmp(&f, &alone, 4) == 0,
                                          "lanes %d m %d: out %d [%d][%d] %.9g in one launch, %.9g alone",
                                          lanes, m, which, r, col, f, alone);
                        }
                        free(p);
                    }
                for (int i = 0; i < 6; i++) {
                    clReleaseMemObject(out[i]);
                    free(got[i]);
                }
                cl_mem all[] = {ba, bab, bw, bw2, btab};
                release(all, sizeof all / sizeof all[0]);
                free(a), free(tab), free(nanv), free(ab), free(w), free(w2);
            }
    tiny_free(ctx, mdl, rt);
}
END_TEST

/* The W_mq GEMV with the read's DPFP and row scale in its last work-group (epi.dpfp, generation's fused
 * decode): mq's products, phi and the row scale equal, bit for bit, the plain GEMV followed by the launch
 * armt_dpfp_read_scale, and the fp64 reference within rounding; the counter is back at zero after each of
 * two launches. One and two memory heads (dh = dm / H), normalised features or not, with and without the
 * denominator, a layer that has written and one that has not, every lanes value (1 to 5 work-groups). */
static double dpfp_ref(const double *x, int o, int dh) {
    const int n2 = 2 * dh, dkh = 3 * n2, h = o / dkh, oh = o % dkh, p = oh / n2 + 1, i = oh % n2;
    const int i2 = (i - p + n2) % n2;
    const double *xh = x + (size_t)h * dh;
    const double a = i < dh ? fmax(xh[i], 0.0) : fmax(-xh[i - dh], 0.0);
    const double b = i2 < dh ? fmax(xh[i2], 0.0) : fmax(-xh[i2 - dh], 0.0);
    return a * b;
}

static void dpfp_cases(armt_ctx *ctx) {
    const int dm = 10, dk = 6 * dm, k = 264, L = 2;
    const size_t w_off = 8, a_off = 4;
    uint64_t seed = 777;
    float a[4 + 264], z[2 * 60], nanv[64];
    uint16_t w[8 + 10 * 264];
    int written[2] = {1, 0};
    for (size_t i = 0; i < sizeof a / sizeof a[0]; i++)
        a[i] = urand(&seed);
    for (size_t i = 0; i < sizeof w / sizeof w[0]; i++)
        w[i] = bf_bits(urand(&seed));
    for (int i = 0; i < L * dk; i++)
        z[i] = 0.5f + 0.5f * urand(&seed); /* (positive, as the state's z: den well away from zero) */
    for (int i = 0; i < 64; i++)
        nanv[i] = NAN;
    cl_mem ba = buffer(ctx, sizeof a, a), bw = buffer(ctx, sizeof w, w), bz = buffer(ctx, sizeof z, z),
           bwr = buffer(ctx, sizeof written, written);
    const cl_uint zero_u = 0;
    cl_mem cnt = buffer(ctx, sizeof zero_u, &zero_u);
    /* mq's products in double (the GEMV rounds A to bf16) */
    double mq[10];
    for (int c = 0; c < dm; c++) {
        double sum = 0;
        for (int i = 0; i < k; i++)
            sum += (double)bf(a[a_off + i]) * from_bits(w[w_off + (size_t)c * k + i]);
        mq[c] = sum;
    }
    int cases = 0;
    for (int lanes = 32; lanes <= 128; lanes *= 2)
        for (int H = 1; H <= 2; H++)
            for (int normalized = 0; normalized < 2; normalized++)
                for (int no_denom = 0; no_denom < 2; no_denom++)
                    for (int l = 0; l < L; l++) {
                        ctx->rt->tune.gemv_lanes = lanes;
                        const int dh = dm / H, dkh = dk / H;
                        cl_mem out[4]; /* tail: mq, phi; alone: mq, phi */
                        for (int i = 0; i < 4; i++)
                            out[i] = buffer(ctx, 64 * 4, nanv);
                        const size_t zero = 0;
                        armt_gemm_op op = {.m = 1,
                                           .n = (size_t)dm,
                                           .k = (size_t)k,
                                           .count = 1,
                                           .a = ba,
                                           .lda = (size_t)k,
                                           .a_off = &a_off,
                                           .w = bw,
                                           .ldw = (size_t)k,
                                           .w_off = &w_off,
                                           .w_bf16 = 1,
                                           .c = out[2],
                                           .ldc = (size_t)dm,
                                           .c_off = &zero,
                                           .site = -1,
                                           .gemv = 1};
                        armt_gemm_op tailed = op;
                        const armt_gemv_dpfp tail = {.phi = out[1],
                                                     .z = bz,
                                                     .written = bwr,
                                                     .cnt = cnt,
                                                     .dm = dm,
                                                     .dh = dh,
                                                     .dkh = dkh,
                                                     .normalized = normalized,
                                                     .no_denom = no_denom,
                                                     .l = l};
                        tailed.c = out[0];
                        tailed.epi.dpfp = &tail;
                        armt_gemm_env env = armt_gemm_env_of(ctx);
                        armt_gemm_plan plan;
                        ck_assert_ptr_null(armt_gemm_plan_make(&env, &tailed, &plan));
                        ck_assert_int_eq(plan.kernel, ARMT_K_GEMV1_BF16_DPFP);
                        armt_err err;
                        armt_err_init(&err);
                        for (int rep = 0; rep < 2; rep++) { /* (twice: the counter is reset) */
                            ck_assert_msg(armt_gemm(ctx, &tailed, &err) == ARMT_OK, "%s", armt_err_msg(&err));
                            cl_uint cv = 1;
                            ck_assert_int_eq(
                                clEnqueueReadBuffer(ctx->queue, cnt, CL_TRUE, 0, 4, &cv, 0, NULL, NULL),
                                CL_SUCCESS);
                            ck_assert_msg(cv == 0, "lanes %d: counter left at %u", lanes, cv);
                        }
                        ck_assert_msg(armt_gemm(ctx, &op, &err) == ARMT_OK, "%s", armt_err_msg(&err));
                        armt_err_free(&err);
                        cl_kernel kk = ctx->k[ARMT_K_DPFP_READ_SCALE];
                        ck_assert_ptr_nonnull(kk);
                        int e = clSetKernelArg(kk, 0, sizeof(cl_mem), &out[2]);
                        e |= clSetKernelArg(kk, 1, sizeof(cl_mem), &out[3]);
                        e |= clSetKernelArg(kk, 2, sizeof(cl_mem), &bz);
                        e |= clSetKernelArg(kk, 3, sizeof(cl_mem), &bwr);
                        const int iv[6] = {dm, dh, dkh, normalized, no_denom, l};
                        for (int v = 0; v < 6; v++)
                            e |= clSetKernelArg(kk, 4 + (cl_uint)v, sizeof(int), &iv[v]);
                        ck_assert_int_eq(e, CL_SUCCESS);
                        const size_t wg = (size_t)ctx->rt->tune.row_wg;
                        ck_assert_int_eq(
                            clEnqueueNDRangeKernel(ctx->queue, kk, 1, NULL, &wg, &wg, 0, NULL, NULL),
                            CL_SUCCESS);
                        float got[4][64];
                        for (int i = 0; i < 4; i++)
                            ck_assert_int_eq(clEnqueueReadBuffer(ctx->queue, out[i], CL_TRUE, 0,
                                                                 sizeof got[i], got[i], 0, NULL, NULL),
                                             CL_SUCCESS);
                        ck_assert_msg(memcmp(got[0], got[2], sizeof got[0]) == 0 &&
                                          memcmp(got[1], got[3], sizeof got[1]) == 0,
                                      "lanes %d H %d normalized %d no_denom %d l %d: not the bits of two "
                                      "launches (scale %.9g / %.9g)",
                                      lanes, H, normalized, no_denom, l, got[0][0], got[2][0]);
                        /* the fp64 reference: phi, normalised per head, then the scale */
                        double phi[60], den = 0;
                        for (int o = 0; o < dk; o++)
                            phi[o] = dpfp_ref(mq, o, dh);
                        if (normalized)
                            for (int h = 0; h < H; h++) {
                                double ss = 0;
                                for (int o = h * dkh; o < (h + 1) * dkh; o++)
                                    ss += phi[o] * phi[o];
                                const double nrm = fmax(sqrt(ss), 1e-12);
                                for (int o = h * dkh; o < (h + 1) * dkh; o++)
                                    phi[o] /= nrm;
                            }
                        for (int o = 0; o < dk; o++) {
                            den += phi[o] * z[l * dk + o];
                            ck_assert_msg(fabs(got[1][o] - phi[o]) <= 1e-5 * (1.0 + fabs(phi[o])),
                                          "phi[%d] %g, want %g", o, got[1][o], phi[o]);
                        }
                        for (int o = dk; o < 64; o++)
                            ck_assert_msg(isnan(got[1][o]), "phi[%d] written past 6 dm", o);
                        const double scale = !written[l] ? 0.0 : no_denom ? 1.0 : 1.0 / (den + 1e-5);
                        ck_assert_msg(fabs(got[0][0] - scale) <= 1e-5 * (1.0 + fabs(scale)),
                                      "scale %.9g, want %.9g (written %d, no_denom %d)", got[0][0], scale,
                                      written[l], no_denom);
                        for (int c = 1; c < dm; c++)
                            ck_assert_msg(fabs(got[0][c] - mq[c]) <= 1e-5 * (1.0 + fabs(mq[c])),
                                          "mq[%d] %g, want %g", c, got[0][c], mq[c]);
                        for (int i = 0; i < 4; i++)
                            clReleaseMemObject(out[i]);
                        cases++;
                    }
    ck_assert_int_eq(cases, 3 * 2 * 2 * 2 * 2);
    cl_mem all[] = {ba, bw, bz, bwr, cnt};
    release(all, sizeof all / sizeof all[0]);
}

START_TEST(test_gemv_dpfp) {
    /* the row-wise kernels' 64 lanes (this device's), then the GPUs' 256: more lanes than the GEMV's 128
     * work-items, which then walk two lanes each */
    for (int b = 0; b < 2; b++) {
        armt_runtime_params rp = armt_runtime_default_params();
        rp.build_options = b ? "-DARMT_ROW_WG=256" : NULL;
        armt_runtime *rt = NULL;
        ck_assert_msg(armt_runtime_create(&rp, &rt) == ARMT_OK, "%s", armt_last_error());
        if (b) rt->tune.row_wg = 256; /* (the standalone launch's work-group) */
        armt_model *mdl = NULL;
        armt_ctx *ctx = tiny_ctx_on(rt, &mdl);
        dpfp_cases(ctx);
        tiny_free(ctx, mdl, rt);
    }
}
END_TEST

/* Only generation's ops (gemv = 1) of at most ARMT_GEMV_ROWS rows take the kernel; alignment it cannot serve
 * goes elsewhere. */
START_TEST(test_gemv_routing) {
    armt_device_tuning t;
    memset(&t, 0, sizeof t);
    t.gemm_tm = t.gemm_tn = 64;
    t.gemm_rm = t.gemm_rn = 4;
    armt_gemm_env env = {.tune = &t, .compute_units = 8};
    const size_t off[1] = {0};
    armt_gemm_op op = {.m = 1,
                       .n = 64,
                       .k = 64,
                       .count = 1,
                       .lda = 64,
                       .a_off = off,
                       .w_bf16 = 1,
                       .ldw = 64,
                       .w_off = off,
                       .ldc = 64,
                       .c_off = off,
                       .site = -1,
                       .gemv = 1};
    armt_gemm_plan plan;
    ck_assert_ptr_null(armt_gemm_plan_make(&env, &op, &plan));
    ck_assert(plan.gemv && plan.kernel == ARMT_K_GEMV1_BF16); /* one row: the kernel of one row */
    op.m = ARMT_GEMV_ROWS;
    ck_assert_ptr_null(armt_gemm_plan_make(&env, &op, &plan));
    ck_assert(plan.gemv && plan.kernel == ARMT_K_GEMV_BF16);
    op.m = ARMT_GEMV_ROWS + 1;
    ck_assert_ptr_null(armt_gemm_plan_make(&env, &op, &plan));
    ck_assert(!plan.gemv && plan.kernel == ARMT_K_GEMM_BF16);
    op.m = 1;
    op.gemv = 0; /* the forward's cells */
    ck_assert_ptr_null(armt_gemm_plan_make(&env, &op, &plan));
    ck_assert(!plan.gemv);
    op.gemv = 1;
    op.k = 60; /* not whole 16-byte chunks */
    op.lda = op.ldw = 60;
    ck_assert_ptr_null(armt_gemm_plan_make(&env, &op, &plan));
    ck_assert(!plan.gemv);
    op.k = op.lda = op.ldw = 64;
    op.epi.norm_w = (cl_mem)&t; /* (never dereferenced) the RMSNorm prologue: the GEMV's only */
    ck_assert_ptr_null(armt_gemm_plan_make(&env, &op, &plan));
    ck_assert(plan.gemv && plan.kernel == ARMT_K_GEMV1_BF16);
    op.m = ARMT_GEMV_ROWS + 1;
    ck_assert_ptr_nonnull(armt_gemm_plan_make(&env, &op, &plan));
    op.m = 1;
    op.epi.norm_w = NULL;
    /* the lanes: 32, doubled up to 128 while the launch has fewer work-groups (2 x 128 / lanes columns each)
     * than compute units (128 here) and one round of loads (16 elements a lane) does not cover k; or what the
     * tuning forces */
    const size_t lanes_k[][3] = {{64, 64, 32},    {2048, 2048, 32},   {8192, 2048, 32},
                                 {1024, 512, 64}, {2048, 64, 128},    {2048, 300, 128},
                                 {384, 64, 32},   {2048, 128256, 32}, {2048, 1000, 64}};
    for (size_t i = 0; i < sizeof lanes_k / sizeof lanes_k[0]; i++) {
        op.k = op.lda = op.ldw = lanes_k[i][0];
        op.n = op.ldc = lanes_k[i][1];
        env.compute_units = 128;
        ck_assert_ptr_null(armt_gemm_plan_make(&env, &op, &plan));
        ck_assert_msg(plan.gemv && plan.gv_lanes == (int)lanes_k[i][2], "k %zu n %zu: %d lanes", op.k, op.n,
                      plan.gv_lanes);
        ck_assert_int_eq((int)plan.tile[0], 2 * 128 / plan.gv_lanes);
    }
    /* aiming at more work-groups per compute unit (128 of them): k 8192 n 2048 has 256 at 32 lanes, 512 at
     * 64, 1024 at 128 */
    op.k = op.lda = op.ldw = 8192;
    op.n = op.ldc = 2048;
    const int wgs_lanes[][2] = {{2, 32}, {4, 64}, {8, 128}, {64, 128}};
    for (size_t i = 0; i < sizeof wgs_lanes / sizeof wgs_lanes[0]; i++) {
        t.gemv_wgs = wgs_lanes[i][0];
        ck_assert_ptr_null(armt_gemm_plan_make(&env, &op, &plan));
        ck_assert_msg(plan.gv_lanes == wgs_lanes[i][1], "%d work-groups per unit: %d lanes", t.gemv_wgs,
                      plan.gv_lanes);
    }
    t.gemv_wgs = 0;
    t.gemv_lanes = 64;
    ck_assert_ptr_null(armt_gemm_plan_make(&env, &op, &plan));
    ck_assert_int_eq(plan.gv_lanes, 64);
    t.gemv_lanes = 0;
    op.k = op.lda = op.ldw = 64;
    op.n = op.ldc = 64;
    /* a third product: the GEMV's, one entry, every row */
    op.epi.w3 = op.epi.c3 = (cl_mem)&t;
    op.epi.n3 = 64;
    ck_assert_ptr_null(armt_gemm_plan_make(&env, &op, &plan));
    ck_assert(plan.gemv);
    op.skip_last = 1;
    ck_assert_ptr_nonnull(armt_gemm_plan_make(&env, &op, &plan));
    op.skip_last = 0;
    op.epi.w3_off = 4; /* not a whole 16-byte chunk */
    ck_assert_ptr_nonnull(armt_gemm_plan_make(&env, &op, &plan));
    op.epi.w3_off = 0;
    op.gemv = 0;
    ck_assert_ptr_nonnull(armt_gemm_plan_make(&env, &op, &plan));
    op.gemv = 1;
    op.epi.w3 = op.epi.c3 = NULL;
    op.epi.n3 = 0;
    op.w_bf16 = 0; /* fp32 weights: CLBlast */
    ck_assert_ptr_null(armt_gemm_plan_make(&env, &op, &plan));
    ck_assert(plan.clblast);
}
END_TEST

/* Many rows against a small weight (a batch's decode round, W_mq): armt_gemm_weights_rows runs them on the
 * GEMV in blocks of ARMT_GEMV_ROWS plus the rows left over; each row as the double-precision product, bit
 * for bit what the row alone gives, and nothing outside the rows written. _i: A in bf16. */
START_TEST(test_gemv_rows) {
    armt_runtime *rt;
    armt_model *mdl;
    armt_ctx *ctx = tiny_ctx(&rt, &mdl);
    const armt_config *cfg = armt_model_config(mdl);
    const int l = cfg->n_layers - 1, k = cfg->hidden_size, n = cfg->d_mem, lda = k + 8, ldc = n + 4;
    const int m = 2 * ARMT_GEMV_ROWS + 3;
    const size_t a0 = (size_t)lda, c0 = 3, na = a0 + (size_t)m * lda, nc = c0 + (size_t)m * ldc + 5;
    uint64_t seed = 77 + (uint64_t)_i;
    float *a = malloc(na * 4), *nanv = malloc(nc * 4), *got = malloc(nc * 4), *alone = malloc(nc * 4);
    uint16_t *ab = malloc(na * 2), *w = malloc((size_t)n * k * 2);
    ck_assert(a && nanv && got && alone && ab && w);
    for (size_t i = 0; i < na; i++) {
        a[i] = urand(&seed);
        ab[i] = bf_bits(a[i]);
    }
    for (size_t i = 0; i < nc; i++)
        nanv[i] = NAN;
    read_weight(ctx, mdl, ARMT_ROLE_WMQ, l, (size_t)n, (size_t)k, w);
    cl_mem ba = buffer(ctx, na * 4, a), bab = buffer(ctx, na * 2, ab), bc = buffer(ctx, nc * 4, nanv),
           bc1 = buffer(ctx, nc * 4, nanv);
    armt_gemm_op op = {.m = (size_t)m,
                       .a = ba,
                       .lda = (size_t)lda,
                       .a_off = &a0,
                       .a_bf16 = _i ? bab : NULL,
                       .a_bf16_only = _i,
                       .c = bc,
                       .ldc = (size_t)ldc,
                       .c_off = &c0,
                       .site = -1,
                       .gemv = 1};
    size_t offs[3 * ((2 * ARMT_GEMV_ROWS + 3) / ARMT_GEMV_ROWS + 1)], wo1[1]; /* (m / ARMT_GEMV_ROWS + 1) */
    armt_err err;
    armt_err_init(&err);
    armt_status st = ARMT_STATUS_UNSUPPORTED;
    ck_assert_int_eq(armt_gemm_weights_rows(ctx, op, ARMT_ROLE_WMQ, l, offs, &st, &err), 1);
    ck_assert_msg(st == ARMT_OK, "%s", armt_err_msg(&err));
    for (int r = 0; r < m; r++) { /* each row alone */
        armt_gemm_op one = op;
        const size_t ar = a0 + (size_t)r * lda, cr = c0 + (size_t)r * ldc;
        one.m = 1;
        one.a_off = &ar;
        one.c_off = &cr;
        one.c = bc1;
        ck_assert_msg(armt_gemm_weights(ctx, one, ARMT_ROLE_WMQ, -1, l, 1, wo1, &err) == ARMT_OK, "%s",
                      armt_err_msg(&err));
    }
    armt_err_free(&err);
    ck_assert_int_eq(clEnqueueReadBuffer(ctx->queue, bc, CL_TRUE, 0, nc * 4, got, 0, NULL, NULL), CL_SUCCESS);
    ck_assert_int_eq(clEnqueueReadBuffer(ctx->queue, bc1, CL_TRUE, 0, nc * 4, alone, 0, NULL, NULL),
                     CL_SUCCESS);
    for (size_t o = 0; o < nc; o++) {
        const int in = o >= c0 && (o - c0) / ldc < (size_t)m && (int)((o - c0) % ldc) < n;
        if (!in) {
            ck_assert_msg(isnan(got[o]), "element %zu outside the rows written", o);
            continue;
        }
        const size_t r = (o - c0) / ldc, col = (o - c0) % ldc;
        double sum = 0;
        for (int i = 0; i < k; i++)
            sum += (double)bf(a[a0 + r * lda + i]) * from_bits(w[col * k + i]);
        ck_assert_msg(fabs(got[o] - sum) <= 1e-5 * (1.0 + fabs(sum)), "row %zu col %zu: %g, want %g", r, col,
                      got[o], sum);
        ck_assert_msg(memcmp(&got[o], &alone[o], 4) == 0, "row %zu col %zu: %.9g in blocks, %.9g alone", r,
                      col, got[o], alone[o]);
    }
    cl_mem all[] = {ba, bab, bc, bc1};
    release(all, sizeof all / sizeof all[0]);
    free(a), free(nanv), free(got), free(alone), free(ab), free(w);
    tiny_free(ctx, mdl, rt);
}
END_TEST

/* The reduction's last five levels by warp exchanges (GV_SHFL=1: shfl.sync.bfly on NVIDIA, here its
 * emulation through local memory) give the local-memory tree's sums bit for bit, and so does the RMSNorm
 * prologue's (armt_gv_inv_rms): one product, gate and up fused (dual) and plain, each with and without the
 * norm, on every lanes value and 1 to 4 rows, built both ways. */
START_TEST(test_gemv_shfl_bits) {
    const int k = 2056, n = 70, lda = k + 8;
    float *got[2][4][3][4] = {{{{0}}}};
    for (int b = 0; b < 2; b++) {
        armt_runtime_params rp = armt_runtime_default_params();
        /* (256 virtual lanes in the norm, as on GPUs: its levels inside a work-item run too) */
        rp.build_options = b ? "-DGV_SHFL=1 -DARMT_ROW_WG=256" : "-DGV_SHFL=0 -DARMT_ROW_WG=256";
        armt_runtime *rt = NULL;
        ck_assert_msg(armt_runtime_create(&rp, &rt) == ARMT_OK, "%s", armt_last_error());
        armt_model *mdl = NULL;
        armt_ctx *ctx = tiny_ctx_on(rt, &mdl);
        uint64_t seed = 7;
        const size_t na = (size_t)ARMT_GEMV_ROWS * lda, nw = (size_t)n * k, nc = (size_t)ARMT_GEMV_ROWS * n;
        float *a = malloc(na * 4), *zero = calloc(nc, 4), *g = malloc((size_t)k * 4);
        uint16_t *w = malloc(nw * 2), *w2 = malloc(nw * 2), *cb = malloc(nc * 2);
        ck_assert(a && zero && g && w && w2 && cb);
        for (int i = 0; i < k; i++)
            g[i] = 0.5f + urand(&seed);
        for (size_t i = 0; i < na; i++)
            a[i] = urand(&seed);
        for (size_t i = 0; i < nw; i++) {
            w[i] = bf_bits(urand(&seed));
            w2[i] = bf_bits(urand(&seed));
        }
        cl_mem ba = buffer(ctx, na * 4, a), bw = buffer(ctx, nw * 2, w), bw2 = buffer(ctx, nw * 2, w2),
               bc = buffer(ctx, nc * 4, zero), bcb = buffer(ctx, nc * 2, zero),
               bg = buffer(ctx, (size_t)k * 4, g);
        const size_t z = 0;
        for (int mode = 0; mode < 4; mode++) /* plain, gate and up, each with the RMSNorm prologue */
            for (int li = 0; li < 3; li++)
                for (int m = 1; m <= ARMT_GEMV_ROWS; m++) {
                    ctx->rt->tune.gemv_lanes = 32 << li;
                    armt_gemm_op op = {.m = (size_t)m,
                                       .n = (size_t)n,
                                       .k = (size_t)k,
                                       .count = 1,
                                       .a = ba,
                                       .lda = (size_t)lda,
                                       .a_off = &z,
                                       .w = bw,
                                       .ldw = (size_t)k,
                                       .w_off = &z,
                                       .w_bf16 = 1,
                                       .c = bc,
                                       .ldc = (size_t)n,
                                       .c_off = &z,
                                       .site = -1,
                                       .gemv = 1};
                    const int dual = mode & 1;
                    if (mode & 2) {
                        op.epi.norm_w = bg;
                        op.epi.norm_eps = 1e-5f;
                    }
                    if (dual) { /* gate and up: bf16(silu(P) P2) into Cb */
                        op.epi.w2 = bw2;
                        op.epi.out = bcb;
                    }
                    armt_err err;
                    armt_err_init(&err);
                    ck_assert_msg(armt_gemm(ctx, &op, &err) == ARMT_OK, "%s", armt_err_msg(&err));
                    const size_t cnt = (size_t)m * n, bytes = cnt * (dual ? 2 : 4);
                    float *o = malloc(bytes);
                    ck_assert(o);
                    ck_assert_int_eq(
                        clEnqueueReadBuffer(ctx->queue, dual ? bcb : bc, CL_TRUE, 0, bytes, o, 0, NULL, NULL),
                        CL_SUCCESS);
                    got[b][mode][li][m - 1] = o;
                    if (b == 1)
                        ck_assert_msg(memcmp(o, got[0][mode][li][m - 1], bytes) == 0,
                                      "mode %d lanes %d rows %d: the exchanges' sums differ from the tree's",
                                      mode, 32 << li, m);
                }
        cl_mem all[] = {ba, bw, bw2, bc, bcb, bg};
        release(all, sizeof all / sizeof all[0]);
        free(a), free(zero), free(g), free(w), free(w2), free(cb);
        tiny_free(ctx, mdl, rt);
    }
    for (int b = 0; b < 2; b++)
        for (int mode = 0; mode < 4; mode++)
            for (int li = 0; li < 3; li++)
                for (int m = 0; m < ARMT_GEMV_ROWS; m++)
                    free(got[b][mode][li][m]);
}
END_TEST

/* Split-k (a batch's decode rounds, armt_gemm_weights_splitk) on the emulated tensor-core tiles: the S
 * slices of W_q's product, summed on the host, equal the double-precision product. _i: 0 the mma.sync tiles,
 * 1 the wgmma tiles. */
START_TEST(test_splitk) {
    armt_runtime_params rp = armt_runtime_default_params();
    rp.tensor_cores = ARMT_TC_EMULATE;
    rp.wgmma = _i ? ARMT_TC_ON : ARMT_TC_OFF;
    ck_assert_int_eq(setenv("ARMT_SPLITK", "4", 1), 0);
    armt_runtime *rt = NULL;
    ck_assert_msg(armt_runtime_create(&rp, &rt) == ARMT_OK, "%s", armt_last_error());
    unsetenv("ARMT_SPLITK");
    armt_model *mdl = NULL;
    armt_ctx *ctx = tiny_ctx_on(rt, &mdl);
    const armt_config cfg = *armt_model_config(mdl);
    const int l = cfg.n_layers - 1, k = cfg.hidden_size, n = cfg.n_heads * cfg.head_dim,
              m = 2 * ARMT_GEMV_ROWS + 3;
    const int S = 4, lda = k + 8;
    const size_t a0 = (size_t)lda, c0 = 0, na = a0 + (size_t)m * lda, np = (size_t)S * m * n;
    uint64_t seed = 91 + (uint64_t)_i;
    float *a = malloc(na * 4), *got = malloc(np * 4), *zero = calloc(np, 4);
    uint16_t *ab = malloc(na * 2), *w = malloc((size_t)n * k * 2);
    ck_assert(a && got && zero && ab && w);
    for (size_t i = 0; i < na; i++) {
        a[i] = urand(&seed);
        ab[i] = bf_bits(a[i]);
    }
    read_weight(ctx, mdl, ARMT_ROLE_WQ, l, (size_t)n, (size_t)k, w);
    cl_mem ba = buffer(ctx, na * 4, a), bab = buffer(ctx, na * 2, ab), bp = buffer(ctx, np * 4, zero),
           bc = buffer(ctx, 4, zero);
    armt_gemm_op op = {.m = (size_t)m,
                       .a = ba,
                       .lda = (size_t)lda,
                       .a_off = &a0,
                       .a_bf16 = bab,
                       .c = bc,
                       .ldc = (size_t)n,
                       .c_off = &c0,
                       .site = -1,
                       .gemv = 1};
    size_t offs[48];
    armt_err err;
    armt_err_init(&err);
    armt_status st = ARMT_STATUS_UNSUPPORTED;
    ck_assert_int_eq(armt_gemm_weights_splitk(ctx, op, ARMT_ROLE_WQ, l, bp, np, offs, &st, &err), S);
    ck_assert_msg(st == ARMT_OK, "%s", armt_err_msg(&err));
    ck_assert_int_eq(armt_gemm_weights_splitk(ctx, op, ARMT_ROLE_WQ, l, bp, np - 1, offs, &st, &err), 0);
    armt_err_free(&err);
    ck_assert_int_eq(clEnqueueReadBuffer(ctx->queue, bp, CL_TRUE, 0, np * 4, got, 0, NULL, NULL), CL_SUCCESS);
    for (int r = 0; r < m; r++)
        for (int col = 0; col < n; col++) {
            double want = 0, sum = 0;
            for (int i = 0; i < k; i++)
                want += (double)bf(a[a0 + (size_t)r * lda + i]) * from_bits(w[(size_t)col * k + i]);
            for (int j = 0; j < S; j++)
                sum += got[((size_t)j * m + r) * n + col];
            ck_assert_msg(fabs(sum - want) <= 1e-5 * (1.0 + fabs(want)), "row %d col %d: %g, want %g", r, col,
                          sum, want);
        }
    cl_mem all[] = {ba, bab, bp, bc};
    release(all, sizeof all / sizeof all[0]);
    free(a), free(got), free(zero), free(ab), free(w);
    tiny_free(ctx, mdl, rt);
}
END_TEST

static Suite *suite(void) {
    Suite *s = suite_create("gemv");
    TCase *tc = test_tcase(s, "gemv", 120);
    tcase_add_loop_test(tc, test_gemv_modes, 0, N_MODES);
    tcase_add_loop_test(tc, test_gemv_norm, 0, 2);
    tcase_add_test(tc, test_gemv_third);
    tcase_add_test(tc, test_gemv_dpfp);
    tcase_add_test(tc, test_gemv_shfl_bits);
    tcase_add_test(tc, test_gemv_routing);
    tcase_add_loop_test(tc, test_gemv_rows, 0, 2);
    tcase_add_loop_test(tc, test_splitk, 0, 2);
    return s;
}

int main(void) { return test_run_suite(suite(), 1); }
