/*
 * check_variant_fixtures.c - end to end against the current ARMT reference itself (tests/data/variants, made
 * by tools/make_variant_fixtures.py from src/armt.py and modeling_amt/ at the pinned commits): each
 * checkpoint directory as the reference saved it, logits of both schedules, the final memory of every layer
 * that has one, greedy generation, the sharded and bf16 copies, and the refusal of what is not implemented.
 * The double-precision C reference (tests/ref_armt.c, which check_variants.c holds the OpenCL paths to) is
 * held to the reference's logits here too, so its rules are the reference's.
 */
#include "config.h"

#include "testutil.h"

#include "common/error.h"
#include "io/armt_config.h"
#include "io/safetensors.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define TOL_LOGITS 2e-4 /* max |ours - reference fp32| (issue 19)                                  */
#define TOL_STATE  5e-5 /* Frobenius |ours - reference| / |reference| of W_mem and z (issue 19)    */
#define TOL_REF64 \
    1e-4 /* max |tests/ref_armt.c (fp64) - reference fp32| on logits: the reference's own
                         * fp32 is within 6e-5 of fp64 (tests/data/variants/README.md) */

typedef struct fcase {
    const char *dir;
    double tol_state; /* 0: TOL_STATE */
} fcase;

/* amt_h4: four heads of 4 projections each make the least well-conditioned memory: the reference's own
 * fp32 run is 8e-4 (relative) from an fp64 evaluation of the same rules (tests/data/variants/README.md), so
 * no fp32 engine can be held to 5e-5 there. amt_all (four heads again, with gating and a sink): the
 * reference's fp32 W_mem is 4.5e-5 from fp64, the bound itself; ours is 5.8e-5 from the reference's. */
static const fcase cases[] = {
    {"armt", 0},       {"armt_nodenom", 0}, {"armt_nocorr", 0},   {"armt_wrap", 0},
    {"armt_gqa15", 0}, {"amt_h4", 2e-3},    {"amt_gating", 0},    {"amt_nodenom", 0},
    {"amt_nocorr", 0}, {"armt_sw", 0},      {"armt_sw_sink", 0},  {"amt_sink", 0},
    {"amt_all", 2e-4}, {"inner", 0},        {"inner_h4_sink", 0}, {"inner_all", 0},
};
#define N_CASES (int)(sizeof cases / sizeof cases[0])

static float *get(st_archive *a, const char *path, const char *name, size_t *n, int required) {
    const st_tensor *t = st_find(a, name);
    if (!t && !required) return NULL;
    ck_assert_msg(t != NULL, "%s: no tensor %s", path, name);
    float *v = malloc((size_t)t->numel * sizeof *v);
    armt_err err;
    armt_err_init(&err);
    ck_assert_msg(st_read_f32(a, t, 0, t->numel, v, &err) == ARMT_OK, "%s", armt_err_msg(&err));
    armt_err_free(&err);
    *n = (size_t)t->numel;
    return v;
}

static armt_model *load(armt_runtime *rt, const char *sub) {
    char path[4096];
    snprintf(path, sizeof path, "%s/variants/%s", test_data_dir(), sub);
    armt_model *m = NULL;
    armt_status st = armt_model_load(rt, path, NULL, &m);
    ck_assert_msg(st == ARMT_OK, "load %s: %s: %s", path, armt_status_str(st), armt_last_error());
    return m;
}

static void logits_of(armt_ctx *ctx, armt_schedule sch, const int32_t *ids, size_t n, float *out,
                      size_t cnt) {
    armt_forward_params p = armt_forward_default_params();
    p.schedule = sch;
    p.output = ARMT_OUTPUT_LOGITS_ALL;
    p.out = out;
    p.out_count = cnt;
    ck_assert_int_eq(armt_ctx_reset(ctx), ARMT_OK);
    armt_status st = armt_forward(ctx, ids, n, &p);
    ck_assert_msg(st == ARMT_OK, "forward: %s", armt_ctx_last_error(ctx));
}

START_TEST(test_fixture) {
    const fcase *fc = &cases[_i];
    armt_runtime *rt = test_runtime();
    armt_model *m = load(rt, fc->dir);
    const armt_config *c = armt_model_config(m);
    char path[4096];
    snprintf(path, sizeof path, "%s/variants/%s/expected.safetensors", test_data_dir(), fc->dir);
    armt_err err;
    armt_err_init(&err);
    st_archive *a = NULL;
    ck_assert_msg(st_open(path, &a, &err) == ARMT_OK, "%s", armt_err_msg(&err));
    size_t n, nl, nw, nz = 0, np, ng;
    float *idf = get(a, path, "ids", &n, 1), *ref_logits = get(a, path, "logits", &nl, 1);
    float *ref_w = get(a, path, "W_mem", &nw, 1), *ref_z = get(a, path, "z", &nz, 0);
    float *pf = get(a, path, "gen_prompt", &np, 1), *gf = get(a, path, "gen_tokens", &ng, 1);
    int32_t *ids = malloc(n * sizeof *ids), *prompt = malloc(np * sizeof *prompt);
    for (size_t i = 0; i < n; i++)
        ids[i] = (int32_t)idf[i];
    for (size_t i = 0; i < np; i++)
        prompt[i] = (int32_t)pf[i];
    const size_t V = (size_t)c->vocab_size;
    ck_assert_uint_eq(nl, n * V);
    ck_assert_msg((ref_z == NULL) == (c->no_denom != 0), "%s: z present iff use_denom", fc->dir);

    armt_ctx *ctx = NULL;
    ck_assert_int_eq(armt_ctx_create(m, NULL, &ctx), ARMT_OK);
    size_t cw = armt_ctx_memory_w_count(ctx), cz = armt_ctx_memory_z_count(ctx);
    float *logits[2], *w = malloc(cw * sizeof *w), *z = malloc(cz * sizeof *z);
    const double tol_state = fc->tol_state > 0 ? fc->tol_state : TOL_STATE;
    for (int s = 0; s < 2; s++) {
        logits[s] = malloc(nl * sizeof(float));
        logits_of(ctx, s ? ARMT_SCHEDULE_DIAGONAL : ARMT_SCHEDULE_SEQUENTIAL, ids, n, logits[s], nl);
        double dl = test_max_abs_diff_ff(logits[s], ref_logits, nl);
        printf("%s (%s): logits max |diff| %.3g", fc->dir, s ? "diagonal" : "sequential", dl);
        ck_assert_msg(dl <= TOL_LOGITS, "%s: logits %.3g from the reference", fc->dir, dl);
        ck_assert_int_eq(armt_ctx_memory_get(ctx, w, z, NULL), ARMT_OK);
        /* the reference's blocks: the layers that have a memory, in order */
        const size_t per_w = cw / (size_t)c->n_layers, per_z = cz / (size_t)c->n_layers;
        size_t kept = 0;
        for (int l = 0; l < c->n_layers; l++) {
            if (armt_config_memory_off(c, l)) continue;
            memmove(w + kept * per_w, w + (size_t)l * per_w, per_w * sizeof *w);
            memmove(z + kept * per_z, z + (size_t)l * per_z, per_z * sizeof *z);
            kept++;
        }
        ck_assert_uint_eq(kept * per_w, nw);
        double ew = test_frob_rel(w, ref_w, nw), ez = ref_z ? test_frob_rel(z, ref_z, nz) : 0;
        printf(", W_mem %.3g, z %.3g (relative)\n", ew, ez);
        ck_assert_msg(ew <= tol_state && ez <= tol_state,
                      "%s: memory %.3g / %.3g (relative) from the reference", fc->dir, ew, ez);
    }
    ck_assert_msg(memcmp(logits[0], logits[1], nl * sizeof(float)) == 0, "%s: diagonal != sequential",
                  fc->dir);

    /* the fp64 C reference on the same weights */
    test_host_model *h = test_host_model_read(m);
    ref_state *rs = ref_state_new(c);
    double *l64 = malloc(nl * sizeof *l64);
    ck_assert_int_eq(ref_armt_forward(&h->ref, rs, ids, n, l64, NULL), 0);
    double d64 = 0;
    for (size_t i = 0; i < nl; i++)
        d64 = fmax(d64, fabs(l64[i] - ref_logits[i]));
    printf("%s: tests/ref_armt.c (fp64) logits max |diff| %.3g\n", fc->dir, d64);
    ck_assert_msg(d64 <= TOL_REF64, "%s: the fp64 C reference is %.3g from the reference", fc->dir, d64);
    free(l64);
    ref_state_free(rs);
    test_host_model_free(h);

    /* greedy generation: the reference's generate (inside one segment, where all generations agree) */
    armt_generate_params gp = armt_generate_default_params();
    gp.max_new_tokens = (int)ng;
    int32_t *out = malloc(ng * sizeof *out);
    armt_generate_result res;
    ck_assert_int_eq(armt_ctx_reset(ctx), ARMT_OK);
    ck_assert_msg(armt_generate(ctx, prompt, np, &gp, out, ng, &res) == ARMT_OK, "%s",
                  armt_ctx_last_error(ctx));
    ck_assert_uint_eq(res.n_tokens, ng);
    for (size_t i = 0; i < ng; i++)
        ck_assert_msg(out[i] == (int32_t)gf[i], "%s: token %zu is %d, the reference's %d", fc->dir, i, out[i],
                      (int)gf[i]);

    free(out);
    free(logits[0]);
    free(logits[1]);
    free(w);
    free(z);
    free(ids);
    free(prompt);
    free(idf);
    free(ref_logits);
    free(ref_w);
    free(ref_z);
    free(pf);
    free(gf);
    st_close(a);
    armt_err_free(&err);
    armt_ctx_free(ctx);
    armt_model_free(m);
    armt_runtime_free(rt);
}
END_TEST

/* The sharded copy equals the single file bit for bit; the bf16 copy (Hub checkpoints are bf16) loads and
 * stays within bf16 rounding of the fp32 logits. */
START_TEST(test_sharded_and_bf16) {
    armt_runtime *rt = test_runtime();
    armt_model *one = load(rt, "armt"), *sh = load(rt, "armt/sharded"), *b16 = load(rt, "armt/bf16");
    const size_t n = 36, V = (size_t)armt_model_config(one)->vocab_size;
    int32_t ids[36];
    test_random_ids(ids, n, (int)V, 4);
    float *l1 = malloc(n * V * 4), *l2 = malloc(n * V * 4), *l3 = malloc(n * V * 4);
    armt_ctx *c1 = NULL, *c2 = NULL, *c3 = NULL;
    ck_assert_int_eq(armt_ctx_create(one, NULL, &c1), ARMT_OK);
    ck_assert_int_eq(armt_ctx_create(sh, NULL, &c2), ARMT_OK);
    ck_assert_int_eq(armt_ctx_create(b16, NULL, &c3), ARMT_OK);
    logits_of(c1, ARMT_SCHEDULE_DIAGONAL, ids, n, l1, n * V);
    logits_of(c2, ARMT_SCHEDULE_DIAGONAL, ids, n, l2, n * V);
    logits_of(c3, ARMT_SCHEDULE_DIAGONAL, ids, n, l3, n * V);
    ck_assert(memcmp(l1, l2, n * V * 4) == 0);
    double d = test_max_abs_diff_ff(l3, l1, n * V);
    ck_assert_msg(d > 0 && d < 0.1, "bf16 weights: logits %.3g from fp32", d);
    free(l1);
    free(l2);
    free(l3);
    armt_ctx_free(c1);
    armt_ctx_free(c2);
    armt_ctx_free(c3);
    armt_model_free(one);
    armt_model_free(sh);
    armt_model_free(b16);
    armt_runtime_free(rt);
}
END_TEST

/* What is not implemented is refused with UNSUPPORTED and a message naming the key, never run otherwise. */
START_TEST(test_refused) {
    static const struct {
        const char *dir, *key;
    } refused[] = {{"amt_act", "act_on"},
                   {"amt_sw", "sliding_window"},
                   {"amt_sw_sink", "sliding_window"},
                   {"inner_sw", "sliding_window"}};
    armt_runtime *rt = test_runtime();
    for (size_t i = 0; i < sizeof refused / sizeof refused[0]; i++) {
        char path[4096];
        snprintf(path, sizeof path, "%s/variants/%s", test_data_dir(), refused[i].dir);
        armt_model *m = NULL;
        ck_assert_int_eq(armt_model_load(rt, path, NULL, &m), ARMT_STATUS_UNSUPPORTED);
        ck_assert_ptr_null(m);
        ck_assert_msg(strstr(armt_last_error(), refused[i].key) != NULL, "%s: '%s' does not name %s",
                      refused[i].dir, armt_last_error(), refused[i].key);
    }
    armt_runtime_free(rt);
}
END_TEST

/* The sink's tensor and use_sink must agree: armt_sw's config with armt_sw_sink's weights (a sink nothing
 * uses) is BAD_CONFIG, the reverse (use_sink without a sink) MISSING_TENSOR, each naming the sink. And a
 * sink + window model saved by armt_model_save loads back with the same logits. */
START_TEST(test_sink_files) {
    static const struct {
        const char *config, *weights;
        armt_status want;
    } mix[] = {{"armt_sw", "armt_sw_sink", ARMT_STATUS_BAD_CONFIG},
               {"armt_sw_sink", "armt_sw", ARMT_STATUS_MISSING_TENSOR}};
    armt_runtime *rt = test_runtime();
    for (size_t i = 0; i < sizeof mix / sizeof mix[0]; i++) {
        char dir[] = "/tmp/armt-sink-XXXXXX", src[4096], dst[4200];
        ck_assert_ptr_nonnull(mkdtemp(dir));
        snprintf(src, sizeof src, "%s/variants/%s/config.json", test_data_dir(), mix[i].config);
        snprintf(dst, sizeof dst, "%s/config.json", dir);
        ck_assert_int_eq(symlink(src, dst), 0);
        snprintf(src, sizeof src, "%s/variants/%s/model.safetensors", test_data_dir(), mix[i].weights);
        snprintf(dst, sizeof dst, "%s/model.safetensors", dir);
        ck_assert_int_eq(symlink(src, dst), 0);
        armt_model *m = NULL;
        ck_assert_int_eq(armt_model_load(rt, dir, NULL, &m), mix[i].want);
        ck_assert_ptr_null(m);
        ck_assert_msg(strstr(armt_last_error(), "sink") != NULL, "'%s' does not name the sink",
                      armt_last_error());
        remove(dst);
        snprintf(dst, sizeof dst, "%s/config.json", dir);
        remove(dst);
        rmdir(dir);
    }
    /* armt_model_save and back */
    armt_model *a = load(rt, "armt_sw_sink"), *b = NULL;
    char path[] = "/tmp/armt-sink-model-XXXXXX";
    int fd = mkstemp(path);
    ck_assert_int_ge(fd, 0);
    close(fd);
    ck_assert_msg(armt_model_save(a, path) == ARMT_OK, "%s", armt_model_last_error(a));
    ck_assert_msg(armt_model_load(rt, path, NULL, &b) == ARMT_OK, "%s", armt_last_error());
    remove(path);
    ck_assert(armt_model_config(b)->use_sink && armt_model_config(b)->sliding_window);
    const size_t n = 20, V = (size_t)armt_model_config(a)->vocab_size;
    int32_t ids[20];
    test_random_ids(ids, n, (int)V, 6);
    float *la = malloc(n * V * 4), *lb = malloc(n * V * 4);
    armt_ctx *ca = NULL, *cb = NULL;
    ck_assert_int_eq(armt_ctx_create(a, NULL, &ca), ARMT_OK);
    ck_assert_int_eq(armt_ctx_create(b, NULL, &cb), ARMT_OK);
    logits_of(ca, ARMT_SCHEDULE_DIAGONAL, ids, n, la, n * V);
    logits_of(cb, ARMT_SCHEDULE_DIAGONAL, ids, n, lb, n * V);
    ck_assert(memcmp(la, lb, n * V * 4) == 0);
    free(la);
    free(lb);
    armt_ctx_free(ca);
    armt_ctx_free(cb);
    armt_model_free(a);
    armt_model_free(b);
    armt_runtime_free(rt);
}
END_TEST

static Suite *suite(void) {
    Suite *s = suite_create("variant_fixtures");
    TCase *tc = test_tcase(s, "reference", 60);
    tcase_add_loop_test(tc, test_fixture, 0, N_CASES);
    tc = test_tcase(s, "files", 60);
    tcase_add_test(tc, test_sharded_and_bf16);
    tcase_add_test(tc, test_refused);
    tcase_add_test(tc, test_sink_files);
    return s;
}

int main(void) { return test_run_suite(suite(), 1); }
