/*
 * check_gemv.c - the GEMV kernel of generation (cl/gemv_bf16.cl) through the GEMM door: every epilogue
 * (beta 0 and 1, row scales, bf16 output, SwiGLU with a gate buffer, gate and up in one pass, k and v in one
 * pass, RoPE alone and on k of k and v), fp32 and bf16 A, one and three rows, two entries at irregular
 * offsets (two launches) and a skipped first row of the last entry, against a double-precision product of the
 * same bf16-rounded inputs. C starts as NaN where it is only written and as random values where beta = 1;
 * everything outside the blocks must come back unchanged. Also the plan's routing: only ops marked gemv,
 * with m <= ARMT_GEMV_ROWS, take the kernel.
 */
#include "config.h"

#include "testutil.h"

#include "compute/gemm.h"
#include "device/internal.h"

#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

enum mode { PLAIN, BETA, ROWSCALE, BF16_OUT, GATE, GATE_UP, KV, ROPE, ROPE_KV, N_MODES };
static const char *const mode_name[N_MODES] = {"plain",   "beta", "rowscale", "bf16_out", "gate",
                                               "gate+up", "k+v",  "rope",     "rope k+v"};

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

/* One case: m rows, n outputs, k inputs, two entries (the second's first row skipped when skip). */
static void run_case(armt_ctx *ctx, enum mode md, int a_bf16, int m, int n, int k, int skip, uint64_t seed) {
    const int count = 2, lda = k + 8, ldc = n + 3, dual = md == GATE_UP || md == KV || md == ROPE_KV;
    const int rope = md == ROPE || md == ROPE_KV, bout = md == BF16_OUT || md == GATE || dual;
    /* entry offsets: A and C apart and not in order (two runs of one entry each); W of two "layers" */
    const size_t a_off[2] = {(size_t)(m + 1) * lda, 0}, w_off[2] = {(size_t)n * k, 0};
    const size_t c_off[2] = {(size_t)(m + 2) * ldc, 5};
    const size_t na = (size_t)(2 * m + 2) * lda, nw = 2 * (size_t)n * k, nc = (size_t)(2 * m + 3) * ldc;
    float *a = malloc(na * 4), *c0 = malloc(nc * 4), *gate = malloc(nc * 4), *c = malloc(nc * 4);
    float *rs = malloc(na / lda * 4 + 4), *tab = malloc((size_t)(16 + m) * HD * 4);
    uint16_t *ab = malloc(na * 2), *w = malloc(nw * 2), *w2 = malloc(nw * 2), *o1 = malloc(nc * 2),
             *o2 = malloc(nc * 2);
    double *ref = calloc(nc, sizeof(double)), *ref2 = calloc(nc, sizeof(double));
    ck_assert(a && c0 && gate && c && rs && tab && ab && w && w2 && o1 && o2 && ref && ref2);
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
    for (int p = 0; p < 16 + m; p++)
        for (int i = 0; i < HD / 2; i++) {
            const double f = p * pow(100.0, -2.0 * i / HD);
            tab[p * HD + i] = (float)cos(f);
            tab[p * HD + HD / 2 + i] = (float)sin(f);
        }
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
           brs = buffer(ctx, (na / lda + 1) * 4, rs), btab = buffer(ctx, (size_t)(16 + m) * HD * 4, tab);
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
    if (rope) {
        op.epi.rope = btab;
        op.epi.rope_hd = HD;
        op.epi.rope_T = 1000;
        op.epi.rope_pos0 = pos0;
    }
    armt_gemm_env env = armt_gemm_env_of(ctx);
    armt_gemm_plan plan;
    ck_assert_ptr_null(armt_gemm_plan_make(&env, &op, &plan));
    ck_assert_msg(plan.gemv && plan.kernel == (a_bf16 ? ARMT_K_GEMV_BF16BF16 : ARMT_K_GEMV_BF16),
                  "%s: not the GEMV", mode_name[md]);
    armt_err err;
    armt_err_init(&err);
    armt_status st = armt_gemm(ctx, &op, &err);
    ck_assert_msg(st == ARMT_OK, "%s: %s", mode_name[md], armt_err_msg(&err));
    armt_err_free(&err);
    ck_assert_int_eq(clEnqueueReadBuffer(ctx->queue, bc, CL_TRUE, 0, nc * 4, c, 0, NULL, NULL), CL_SUCCESS);
    ck_assert_int_eq(clEnqueueReadBuffer(ctx->queue, bo1, CL_TRUE, 0, nc * 2, o1, 0, NULL, NULL), CL_SUCCESS);
    ck_assert_int_eq(clEnqueueReadBuffer(ctx->queue, bo2, CL_TRUE, 0, nc * 2, o2, 0, NULL, NULL), CL_SUCCESS);

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
                                  "%s a_bf16 %d m %d: C[%d][%d][%d] %g, want %g", mode_name[md], a_bf16, m, j,
                                  r, col, c[o], ref[o]);
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
                if ((md == KV || md == ROPE_KV) && in)
                    ck_assert_msg(fabs(from_bits(o2[o]) - ref2[o]) <= 4e-3 * fabs(ref2[o]) + 1e-5 * scale,
                                  "%s: out2[%d][%d][%d] %g, want %g", mode_name[md], j, r, col,
                                  from_bits(o2[o]), ref2[o]);
                else
                    ck_assert_msg(o2[o] == 0x7fc0, "%s: out2[%d][%d][%d] written", mode_name[md], j, r, col);
            }
    cl_mem all[] = {ba, bab, bw, bw2, bc, bg, bo1, bo2, brs, btab};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++)
        clReleaseMemObject(all[i]);
    free(a), free(c0), free(gate), free(c), free(rs), free(tab), free(ab), free(w), free(w2), free(o1),
        free(o2);
    free(ref), free(ref2);
}

static armt_ctx *tiny_ctx(armt_runtime **rt, armt_model **m) {
    *rt = test_runtime();
    armt_config c;
    ck_assert_int_eq(armt_config_preset("tiny", &c), ARMT_OK);
    armt_model_params mp = armt_model_default_params();
    mp.precision = ARMT_PRECISION_BF16;
    ck_assert_msg(armt_model_create_random(*rt, &c, &mp, m) == ARMT_OK, "%s", armt_last_error());
    armt_ctx *ctx = NULL;
    ck_assert_int_eq(armt_ctx_create(*m, NULL, &ctx), ARMT_OK);
    return ctx;
}

/* _i: the mode */
START_TEST(test_gemv_modes) {
    armt_runtime *rt;
    armt_model *m;
    armt_ctx *ctx = tiny_ctx(&rt, &m);
    const enum mode md = (enum mode)_i;
    for (int a_bf16 = 0; a_bf16 < 2; a_bf16++) {
        /* n: whole RoPE heads, else odd (a last work-group with one column of a pair); k: 5 chunks of a lane */
        const int n = md == ROPE || md == ROPE_KV ? 5 * HD : 37, k = 296;
        run_case(ctx, md, a_bf16, 1, n, k, 0, 11 + (uint64_t)_i);
        run_case(ctx, md, a_bf16, 3, n, k, 1, 23 + (uint64_t)_i);
    }
    armt_ctx_free(ctx);
    armt_model_free(m);
    armt_runtime_free(rt);
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
    op.w_bf16 = 0; /* fp32 weights: CLBlast */
    ck_assert_ptr_null(armt_gemm_plan_make(&env, &op, &plan));
    ck_assert(plan.clblast);
}
END_TEST

static Suite *suite(void) {
    Suite *s = suite_create("gemv");
    TCase *tc = test_tcase(s, "gemv", 120);
    tcase_add_loop_test(tc, test_gemv_modes, 0, N_MODES);
    tcase_add_test(tc, test_gemv_routing);
    return s;
}

int main(void) { return test_run_suite(suite(), 1); }
