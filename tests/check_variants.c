/*
 * check_variants.c - the later ARMT variants (docs/VARIANTS.md) on OpenCL against the double-precision C
 * reference (tests/ref_armt.c, written head by head): L2-normalised features, memory heads, gating,
 * use_denom = false, correction on and off, wrap_layers, the inner loop's memory rows that attend to their whole
 * segment (a partial last segment among them); both schedules, the memory state in the host layout
 * [layers, H, d_key/H, d/H], diagonal = sequential bit for bit, and state files that refuse another variant.
 *
 * Models are tiny random ones with a non-zero W_mv (the memory path active).
 */
#include "config.h"

#include "testutil.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define TOL_LOGITS 1e-4 /* |ours - ref| <= TOL_LOGITS * max(1, max |ref| of the row) */
#define TOL_STATE  1e-4 /* |ours - ref| <= TOL_STATE * max |ref| over the tensor */

typedef struct vcase {
    const char *what;
    armt_variant variant;
    int heads, gating, no_denom, correction;
    uint64_t off; /* memory_off bits */
    int wide;     /* 1: hidden 120, 15 query / 5 KV heads of 8 (SmolLM2's ratio) */
    int segment, mem, n;
} vcase;

static const vcase cases[] = {
    {"armt, defaults", ARMT_VARIANT_ARMT, 1, 0, 0, 1, 0, 0, 8, 4, 36},
    {"armt, no correction", ARMT_VARIANT_ARMT, 1, 0, 0, 0, 0, 0, 8, 4, 36},
    {"armt, use_denom false", ARMT_VARIANT_ARMT, 1, 0, 1, 1, 0, 0, 8, 4, 36},
    {"armt, wrap_layers [1,0,1]", ARMT_VARIANT_ARMT, 1, 0, 0, 1, 0x2, 0, 8, 4, 36},
    {"amt, 4 heads", ARMT_VARIANT_AMT, 4, 0, 0, 1, 0, 0, 8, 4, 36},
    {"amt, 2 heads, gating", ARMT_VARIANT_AMT, 2, 1, 0, 1, 0, 0, 8, 4, 36},
    {"amt, 4 heads, use_denom false", ARMT_VARIANT_AMT, 4, 0, 1, 1, 0, 0, 8, 4, 30},
    {"amt, 4 heads + gating, 15/5 heads", ARMT_VARIANT_AMT, 4, 1, 0, 1, 0, 1, 8, 4, 41},
    {"inner, 2 heads", ARMT_VARIANT_INNER, 2, 0, 0, 1, 0, 0, 8, 4, 36},
    {"inner, 4 heads + gating, 15/5 heads, partial", ARMT_VARIANT_INNER, 4, 1, 0, 0, 0, 1, 8, 4, 43},
};
#define N_CASES (int)(sizeof cases / sizeof cases[0])

static armt_config make_cfg(const vcase *v) {
    armt_config c;
    ck_assert_int_eq(armt_config_preset("tiny", &c), ARMT_OK);
    c.hidden_size = 32;
    c.intermediate_size = 64;
    c.n_heads = 4;
    c.n_kv_heads = 2;
    c.head_dim = 8;
    c.vocab_size = 96;
    if (v->wide) {
        c.hidden_size = 120;
        c.n_heads = 15;
        c.n_kv_heads = 5;
        c.n_layers = 2;
    }
    c.d_mem = 16;
    c.segment_size = v->segment;
    c.num_mem_tokens = v->mem;
    c.variant = v->variant;
    c.mem_heads = v->heads;
    c.gating = v->gating;
    c.no_denom = v->no_denom;
    c.correction = v->correction;
    c.memory_off[0] = v->off;
    char why[256];
    ck_assert_msg(armt_config_validate(&c, why, sizeof why) == ARMT_OK, "%s: %s", v->what, why);
    return c;
}

static armt_model *make_model(armt_runtime *rt, const armt_config *c, uint64_t seed) {
    armt_model_params p = armt_model_default_params();
    p.seed = seed;
    p.wmv_std = 0.3f;
    armt_model *m = NULL;
    ck_assert_msg(armt_model_create_random(rt, c, &p, &m) == ARMT_OK, "create_random: %s", armt_last_error());
    return m;
}

static void run(armt_ctx *ctx, armt_schedule sch, const int32_t *ids, size_t n, float *dst, size_t count) {
    armt_forward_params p = armt_forward_default_params();
    p.schedule = sch;
    p.output = dst ? ARMT_OUTPUT_LOGITS_ALL : ARMT_OUTPUT_NONE;
    p.out = dst;
    p.out_count = count;
    armt_status st = armt_forward(ctx, ids, n, &p);
    ck_assert_msg(st == ARMT_OK, "forward: %s: %s", armt_status_str(st), armt_ctx_last_error(ctx));
}

/* Worst |ours - ref| / (tol * scale) over rows of `width` values, the scale being max(1, max |ref| of the
 * row) (logits: an error matters relative to the row's spread; these random models reach |logit| ~ 70) or,
 * with width = n, max |ref| over the tensor (memory state). */
static double violation(const float *ours, const double *ref, size_t n, size_t width, double tol) {
    double worst = 0;
    for (size_t r0 = 0; r0 < n; r0 += width) {
        double m = width == n ? 1e-30 : 1.0;
        for (size_t i = r0; i < r0 + width; i++)
            m = fmax(m, fabs(ref[i]));
        for (size_t i = r0; i < r0 + width; i++) {
            double v = fabs((double)ours[i] - ref[i]) / (tol * m);
            if (!(v <= worst)) worst = v;
        }
    }
    return worst;
}

/* The reference's (dk, d) block matrices in the host layout [layers, H, dk/H, d/H]. */
static void ref_heads(const armt_config *c, const double *full, double *out) {
    const int H = c->mem_heads > 1 ? c->mem_heads : 1, dk = armt_config_d_key(c), d = c->hidden_size;
    const int dkh = dk / H, dvh = d / H;
    for (int l = 0; l < c->n_layers; l++)
        for (int h = 0; h < H; h++)
            for (int a = 0; a < dkh; a++)
                for (int i = 0; i < dvh; i++)
                    out[(((size_t)l * H + h) * dkh + a) * dvh + i] =
                        full[((size_t)l * dk + (size_t)(h * dkh + a)) * d + (size_t)(h * dvh + i)];
}

START_TEST(test_vs_reference) {
    const vcase *v = &cases[_i];
    armt_runtime *rt = test_runtime();
    armt_config c = make_cfg(v);
    armt_model *m = make_model(rt, &c, 500 + (uint64_t)_i);
    test_host_model *h = test_host_model_read(m);
    const size_t n = (size_t)v->n, V = (size_t)c.vocab_size;
    int32_t *ids = malloc(n * sizeof *ids);
    test_random_ids(ids, n, c.vocab_size, 70 + (uint64_t)_i);

    double *ref_logits = malloc(n * V * sizeof *ref_logits);
    ref_state *rs = ref_state_new(&c);
    ck_assert_int_eq(ref_armt_forward(&h->ref, rs, ids, n, ref_logits, NULL), 0);

    armt_ctx *ctx = NULL;
    ck_assert_int_eq(armt_ctx_create(m, NULL, &ctx), ARMT_OK);
    const size_t nw = armt_ctx_memory_w_count(ctx), nz = armt_ctx_memory_z_count(ctx);
    const int H = c.mem_heads > 1 ? c.mem_heads : 1;
    ck_assert_uint_eq(nw,
                      (size_t)c.n_layers * (size_t)armt_config_d_key(&c) * (size_t)c.hidden_size / (size_t)H);
    double *rw = malloc(nw * sizeof *rw);
    ref_heads(&c, rs->w_mem, rw);
    float *logits[2], *w[2], *z[2];
    for (int sch = 0; sch < 2; sch++) {
        logits[sch] = malloc(n * V * sizeof(float));
        w[sch] = malloc(nw * sizeof(float));
        z[sch] = malloc(nz * sizeof(float));
        ck_assert_int_eq(armt_ctx_reset(ctx), ARMT_OK);
        run(ctx, sch ? ARMT_SCHEDULE_DIAGONAL : ARMT_SCHEDULE_SEQUENTIAL, ids, n, logits[sch], n * V);
        const char *name = sch ? "diagonal" : "sequential";
        double vl = violation(logits[sch], ref_logits, n * V, V, TOL_LOGITS);
        ck_assert_msg(vl <= 1.0, "%s, %s: logits off by %.3g x the tolerance", v->what, name, vl);
        ck_assert_int_eq(armt_ctx_memory_get(ctx, w[sch], z[sch], NULL), ARMT_OK);
        double wmax = 0;
        for (size_t i = 0; i < nw; i++)
            wmax = fmax(wmax, fabs(w[sch][i]));
        ck_assert_msg(wmax > 1e-3, "%s: W_mem stayed (near) zero: the memory path is inert", v->what);
        double vw = violation(w[sch], rw, nw, nw, TOL_STATE),
               vz = violation(z[sch], rs->z, nz, nz, TOL_STATE);
        ck_assert_msg(vw <= 1.0 && vz <= 1.0, "%s, %s: memory state off (W %.3g, z %.3g x tolerance)",
                      v->what, name, vw, vz);
    }
    /* the two schedules run the same kernels on the same rows: bit for bit */
    ck_assert_msg(memcmp(logits[0], logits[1], n * V * sizeof(float)) == 0, "%s: diagonal != sequential",
                  v->what);
    ck_assert(memcmp(w[0], w[1], nw * sizeof(float)) == 0 && memcmp(z[0], z[1], nz * sizeof(float)) == 0);
    /* a layer without memory keeps an all-zero state; use_denom = false keeps z zero */
    const size_t per_w = nw / (size_t)c.n_layers, per_z = nz / (size_t)c.n_layers;
    for (int l = 0; l < c.n_layers; l++) {
        double ml = 0;
        for (size_t i = 0; i < per_w; i++)
            ml = fmax(ml, fabs(w[1][(size_t)l * per_w + i]));
        if ((v->off >> l) & 1u)
            ck_assert_msg(ml == 0, "%s: layer %d has no memory but W_mem != 0", v->what, l);
        for (size_t i = 0; i < per_z && v->no_denom; i++)
            ck_assert(z[1][(size_t)l * per_z + i] == 0.0f);
    }
    for (int sch = 0; sch < 2; sch++) {
        free(logits[sch]);
        free(w[sch]);
        free(z[sch]);
    }
    free(rw);
    armt_ctx_free(ctx);
    ref_state_free(rs);
    free(ref_logits);
    free(ids);
    test_host_model_free(h);
    armt_model_free(m);
    armt_runtime_free(rt);
}
END_TEST

/* The variant changes the answer: the same weights read as the paper's math give other logits (so the
 * comparison above is not satisfied by the paper's path), and the state file of one variant is refused by
 * a model of another, leaving the state as it was. */
START_TEST(test_variant_matters) {
    armt_runtime *rt = test_runtime();
    armt_config a = make_cfg(&cases[0]), p = a;
    p.variant = ARMT_VARIANT_PAPER;
    armt_model *ma = make_model(rt, &a, 9), *mp = make_model(rt, &p, 9);
    armt_ctx *ca = NULL, *cp = NULL;
    ck_assert_int_eq(armt_ctx_create(ma, NULL, &ca), ARMT_OK);
    ck_assert_int_eq(armt_ctx_create(mp, NULL, &cp), ARMT_OK);
    const size_t n = 36, V = (size_t)a.vocab_size;
    int32_t ids[36];
    test_random_ids(ids, n, a.vocab_size, 3);
    float *la = malloc(n * V * sizeof(float)), *lp = malloc(n * V * sizeof(float));
    run(ca, ARMT_SCHEDULE_DIAGONAL, ids, n, la, n * V);
    run(cp, ARMT_SCHEDULE_DIAGONAL, ids, n, lp, n * V);
    /* segment 0 has no read: identical; later segments differ */
    ck_assert(memcmp(la, lp, 8 * V * sizeof(float)) == 0);
    double diff = 0;
    for (size_t i = 8 * V; i < n * V; i++)
        diff = fmax(diff, fabs((double)la[i] - lp[i]));
    ck_assert_msg(diff > 1e-3, "normalised features made no difference (%.3g)", diff);

    char path[] = "/tmp/armt-variant-XXXXXX";
    int fd = mkstemp(path);
    ck_assert_int_ge(fd, 0);
    close(fd);
    ck_assert_msg(armt_ctx_memory_save(ca, path) == ARMT_OK, "%s", armt_ctx_last_error(ca));
    size_t nw = armt_ctx_memory_w_count(cp);
    float *before = malloc(nw * sizeof(float)), *after = malloc(nw * sizeof(float));
    ck_assert_int_eq(armt_ctx_memory_get(cp, before, NULL, NULL), ARMT_OK);
    ck_assert_int_eq(armt_ctx_memory_load(cp, path), ARMT_STATUS_MODEL_MISMATCH);
    ck_assert_msg(strstr(armt_ctx_last_error(cp), "armt-variant") != NULL, "%s", armt_ctx_last_error(cp));
    ck_assert_int_eq(armt_ctx_memory_get(cp, after, NULL, NULL), ARMT_OK);
    ck_assert(memcmp(before, after, nw * sizeof(float)) == 0);
    /* and the file loads back into its own model */
    ck_assert_int_eq(armt_ctx_reset(ca), ARMT_OK);
    ck_assert_msg(armt_ctx_memory_load(ca, path) == ARMT_OK, "%s", armt_ctx_last_error(ca));
    remove(path);
    free(before);
    free(after);
    free(la);
    free(lp);
    armt_ctx_free(ca);
    armt_ctx_free(cp);
    armt_model_free(ma);
    armt_model_free(mp);
    armt_runtime_free(rt);
}
END_TEST

/* Host layout with several heads: set then get returns the same blocks, and what is set is what the next
 * forward reads (a state set from a run continues exactly like that run). */
START_TEST(test_heads_state_roundtrip) {
    armt_runtime *rt = test_runtime();
    armt_config c = make_cfg(&cases[4]);
    armt_model *m = make_model(rt, &c, 77);
    armt_ctx *a = NULL, *b = NULL;
    ck_assert_int_eq(armt_ctx_create(m, NULL, &a), ARMT_OK);
    ck_assert_int_eq(armt_ctx_create(m, NULL, &b), ARMT_OK);
    int32_t ids[32];
    test_random_ids(ids, 32, c.vocab_size, 8);
    run(a, ARMT_SCHEDULE_DIAGONAL, ids, 24, NULL, 0);
    size_t nw = armt_ctx_memory_w_count(a), nz = armt_ctx_memory_z_count(a), V = (size_t)c.vocab_size;
    float *w = malloc(nw * 4), *z = malloc(nz * 4), *w2 = malloc(nw * 4);
    uint8_t wr[3];
    ck_assert_int_eq(armt_ctx_memory_get(a, w, z, wr), ARMT_OK);
    ck_assert_int_eq(armt_ctx_memory_set(b, w, z, wr), ARMT_OK);
    ck_assert_int_eq(armt_ctx_memory_get(b, w2, NULL, NULL), ARMT_OK);
    ck_assert(memcmp(w, w2, nw * 4) == 0);
    float *la = malloc(8 * V * 4), *lb = malloc(8 * V * 4);
    run(a, ARMT_SCHEDULE_DIAGONAL, ids + 24, 8, la, 8 * V);
    run(b, ARMT_SCHEDULE_DIAGONAL, ids + 24, 8, lb, 8 * V);
    ck_assert(memcmp(la, lb, 8 * V * 4) == 0);
    free(w);
    free(z);
    free(w2);
    free(la);
    free(lb);
    armt_ctx_free(a);
    armt_ctx_free(b);
    armt_model_free(m);
    armt_runtime_free(rt);
}
END_TEST

static Suite *suite(void) {
    Suite *s = suite_create("variants");
    TCase *tc = test_tcase(s, "reference", 60);
    tcase_add_loop_test(tc, test_vs_reference, 0, N_CASES);
    tc = test_tcase(s, "state", 30);
    tcase_add_test(tc, test_variant_matters);
    tcase_add_test(tc, test_heads_state_roundtrip);
    return s;
}

int main(void) { return test_run_suite(suite(), 1); }
