/*
 * check_batch.c - armt_forward_batch (issue 24): a ragged batch of the fixture documents (the ids of
 * tests/data/variants/armt, variants/amt_all and hf_llama: 36, 41 and 12 tokens) on one model equals each
 * document run alone through armt_forward, in its outputs and its final memory state; the document whose
 * fixture belongs to the model also matches the reference library's logits (an independent check);
 * diagonal = sequential; documents joining later (continuous batching); a bad document fails before any
 * state changes; a failure or a cancel mid-batch puts every state back.
 *
 * "Equal": bit for bit where the same kernels run (the portable bf16 GEMM, whose result per element does not
 * depend on the batch), else within TOL_REL (CLBlast picks its kernels, and so its summation order, by the
 * GEMM's sizes and batch; the tensor-core emulation's alone-run stages bf16 operands the batch does not).
 */
#include "config.h"

#include "testutil.h"

#include "common/error.h"
#include "device/internal.h"
#include "io/safetensors.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define TOL_REL    1e-6 /* max |batch - alone| / max |alone| of fp32 outputs and states (issue 24)     */
#define TOL_TC     3e-2 /* the emulated tensor cores against the portable kernels (bf16 operands staged)   */
#define TOL_FIXREF 2e-4 /* max |ours - reference library| of logits (check_variant_fixtures' bound)    */
#define N_DOCS     3

/* The fixture documents, cut to the model's vocabulary (hf_llama's ids go up to 127). */
typedef struct docset {
    int32_t *ids[N_DOCS];
    size_t n[N_DOCS];
} docset;

static float *fixture_tensor(const char *sub, const char *name, size_t *n) {
    char path[4096];
    snprintf(path, sizeof path, "%s/%s/expected.safetensors", test_data_dir(), sub);
    armt_err err;
    armt_err_init(&err);
    st_archive *a = NULL;
    ck_assert_msg(st_open(path, &a, &err) == ARMT_OK, "%s", armt_err_msg(&err));
    const st_tensor *t = st_find(a, name);
    ck_assert_msg(t != NULL, "%s: no %s", path, name);
    float *v = malloc((size_t)t->numel * sizeof *v);
    ck_assert_msg(st_read_f32(a, t, 0, t->numel, v, &err) == ARMT_OK, "%s", armt_err_msg(&err));
    *n = (size_t)t->numel;
    armt_err_free(&err);
    st_close(a);
    return v;
}

static void docs_load(docset *s, int vocab) {
    static const char *const subs[N_DOCS] = {"variants/armt", "variants/amt_all", "hf_llama"};
    for (int i = 0; i < N_DOCS; i++) {
        float *v = fixture_tensor(subs[i], "ids", &s->n[i]);
        s->ids[i] = malloc(s->n[i] * sizeof(int32_t));
        for (size_t t = 0; t < s->n[i]; t++)
            s->ids[i][t] = (int32_t)v[t] % vocab;
        free(v);
    }
    ck_assert_uint_eq(s->n[0], 36);
    ck_assert_uint_eq(s->n[1], 41);
    ck_assert_uint_eq(s->n[2], 12);
}

static void docs_free(docset *s) {
    for (int i = 0; i < N_DOCS; i++)
        free(s->ids[i]);
}

/* What a document leaves: its logits and its memory state. */
typedef struct result {
    float *logits, *w, *z;
    uint8_t written[64];
    size_t nl, nw, nz;
} result;

static void result_alloc(result *r, armt_ctx *ctx, size_t n) {
    const armt_config *c = armt_model_config(armt_ctx_model(ctx));
    r->nl = n * (size_t)c->vocab_size;
    r->nw = armt_ctx_memory_w_count(ctx);
    r->nz = armt_ctx_memory_z_count(ctx);
    r->logits = calloc(r->nl, 4);
    r->w = malloc(r->nw * 4);
    r->z = malloc(r->nz * 4);
}

static void result_state(result *r, armt_ctx *ctx) {
    ck_assert_msg(armt_ctx_memory_get(ctx, r->w, r->z, r->written) == ARMT_OK, "%s",
                  armt_ctx_last_error(ctx));
}

static void result_free(result *r) {
    free(r->logits);
    free(r->w);
    free(r->z);
}

/* Document i alone on a fresh context. */
static void run_alone(armt_model *m, const docset *s, int i, armt_schedule sch, result *r) {
    armt_ctx *ctx = NULL;
    ck_assert_int_eq(armt_ctx_create(m, NULL, &ctx), ARMT_OK);
    result_alloc(r, ctx, s->n[i]);
    armt_forward_params p = armt_forward_default_params();
    p.schedule = sch;
    p.output = ARMT_OUTPUT_LOGITS_ALL;
    p.out = r->logits;
    p.out_count = r->nl;
    ck_assert_msg(armt_forward(ctx, s->ids[i], s->n[i], &p) == ARMT_OK, "%s", armt_ctx_last_error(ctx));
    result_state(r, ctx);
    armt_ctx_free(ctx);
}

/* max |a - b| / max |b| over a result. */
static double result_diff(const result *a, const result *b, int n_layers) {
    ck_assert(memcmp(a->written, b->written, (size_t)n_layers) == 0);
    double e = test_rel_err(a->logits, b->logits, b->nl);
    double ew = test_rel_err(a->w, b->w, b->nw), ez = test_rel_err(a->z, b->z, b->nz);
    if (ew > e) e = ew;
    if (ez > e) e = ez;
    return e;
}

static int result_same(const result *a, const result *b) {
    return memcmp(a->logits, b->logits, b->nl * 4) == 0 && memcmp(a->w, b->w, b->nw * 4) == 0 &&
           memcmp(a->z, b->z, b->nz * 4) == 0;
}

/* The batch on fresh contexts (runner: one of them, or -1 for a context of its own); starts[i]: when
 * document i joins. */
static void run_batch(armt_model *m, const docset *s, armt_schedule sch, int runner, const int *starts,
                      result *r) {
    armt_ctx *ctx[N_DOCS], *own = NULL;
    armt_batch_doc d[N_DOCS];
    for (int i = 0; i < N_DOCS; i++) {
        ck_assert_int_eq(armt_ctx_create(m, NULL, &ctx[i]), ARMT_OK);
        result_alloc(&r[i], ctx[i], s->n[i]);
        d[i] = (armt_batch_doc){.ctx = ctx[i],
                                .ids = s->ids[i],
                                .n = s->n[i],
                                .out = r[i].logits,
                                .out_count = r[i].nl,
                                .start = starts ? starts[i] : 0};
    }
    if (runner < 0) ck_assert_int_eq(armt_ctx_create(m, NULL, &own), ARMT_OK);
    armt_ctx *run = runner < 0 ? own : ctx[runner];
    armt_forward_params p = armt_forward_default_params();
    p.schedule = sch;
    p.output = ARMT_OUTPUT_LOGITS_ALL;
    ck_assert_msg(armt_forward_batch(run, d, N_DOCS, &p) == ARMT_OK, "%s", armt_ctx_last_error(run));
    armt_stats stats;
    ck_assert_int_eq(armt_ctx_stats(run, &stats), ARMT_OK);
    ck_assert_uint_gt(stats.gemm_calls, 0);
    for (int i = 0; i < N_DOCS; i++) {
        result_state(&r[i], ctx[i]);
        armt_ctx_free(ctx[i]);
    }
    armt_ctx_free(own);
}

static armt_model *load_variant(armt_runtime *rt, const char *sub, armt_precision prec) {
    char path[4096];
    snprintf(path, sizeof path, "%s/variants/%s", test_data_dir(), sub);
    armt_model_params p = armt_model_default_params();
    p.precision = prec;
    armt_model *m = NULL;
    armt_status st = armt_model_load(rt, path, &p, &m);
    ck_assert_msg(st == ARMT_OK, "load %s: %s", path, armt_last_error());
    return m;
}

/* ======================================================================================================= */
/* Equal to each document alone                                                                            */
/* ======================================================================================================= */

/* (model, precision, tensor cores): fp32 with CLBlast; the portable bf16 GEMM; the sliding window; the
 * emulated tensor cores (bf16). */
static const struct {
    const char *model;
    armt_precision prec;
    int emulate;
    int fixture; /* the document whose fixture is this model's (its reference logits), or -1 */
} cases[] = {
    {"amt_all", ARMT_PRECISION_FP32, 0, 1}, {"armt_sw_sink", ARMT_PRECISION_FP32, 0, -1},
    {"armt", ARMT_PRECISION_BF16, 0, -1},   {"armt", ARMT_PRECISION_BF16, 1, -1},
    {"armt", ARMT_PRECISION_BF16, 2, -1}, /* the Hopper wgmma tiles: gate and up in one GEMM */
};

static armt_runtime *case_runtime(int emulate) {
    if (!emulate) return test_runtime();
    armt_runtime_params rp = armt_runtime_default_params();
    rp.tensor_cores = ARMT_TC_EMULATE;
    rp.wgmma = emulate == 2 ? ARMT_TC_ON : ARMT_TC_OFF;
    armt_runtime *rt = NULL;
    ck_assert_msg(armt_runtime_create(&rp, &rt) == ARMT_OK, "%s", armt_last_error());
    return rt;
}

START_TEST(test_batch_equals_alone) {
    armt_runtime *rt = case_runtime(cases[_i].emulate);
    armt_model *m = load_variant(rt, cases[_i].model, cases[_i].prec);
    const armt_config *c = armt_model_config(m);
    docset s;
    docs_load(&s, c->vocab_size);
    /* with the emulated tensor cores the batch stages bf16 operands as a document alone does and takes the
     * same fused epilogues (docs/DESIGN.md, "Batches"): its results are those of the tensor-core path alone,
     * bit for bit, and differ from the portable path (fp32 operands) by that rounding */
    armt_runtime *rt_alone = rt;
    armt_model *m_alone = m;
    const int exact = cases[_i].prec == ARMT_PRECISION_BF16;
    result alone[N_DOCS], seq[N_DOCS], batch[N_DOCS], bseq[N_DOCS];
    for (int i = 0; i < N_DOCS; i++) {
        run_alone(m_alone, &s, i, ARMT_SCHEDULE_DIAGONAL, &alone[i]);
        run_alone(m_alone, &s, i, ARMT_SCHEDULE_SEQUENTIAL, &seq[i]);
    }
    run_batch(m, &s, ARMT_SCHEDULE_DIAGONAL, -1, NULL, batch);
    run_batch(m, &s, ARMT_SCHEDULE_SEQUENTIAL, 1, NULL, bseq);
    for (int i = 0; i < N_DOCS; i++) {
        double e = result_diff(&batch[i], &alone[i], c->n_layers);
        double es = result_diff(&batch[i], &seq[i], c->n_layers);
        double ebs = result_diff(&bseq[i], &alone[i], c->n_layers);
        printf("%s %s%s document %d (%zu tokens): batch - alone %.3g, batch - sequential alone %.3g, "
               "sequential batch - alone %.3g%s\n",
               cases[_i].model, armt_precision_name(cases[_i].prec),
               cases[_i].emulate == 2 ? " (emulated TC, wgmma)"
               : cases[_i].emulate    ? " (emulated TC)"
                                      : "",
               i, s.n[i], e, es, ebs, result_same(&batch[i], &alone[i]) ? " (bit for bit)" : "");
        if (exact)
            ck_assert_msg(result_same(&batch[i], &alone[i]), "document %d: not bit for bit (%.3g)", i, e);
        ck_assert_msg(e <= TOL_REL, "document %d: batch %.3g from alone", i, e);
        ck_assert_msg(es <= TOL_REL, "document %d: batch %.3g from sequential alone", i, es);
        ck_assert_msg(ebs <= TOL_REL, "document %d: sequential batch %.3g from alone", i, ebs);
        if (cases[_i].emulate) {
            armt_runtime *rt_p = test_runtime();
            armt_model *m_p = load_variant(rt_p, cases[_i].model, cases[_i].prec);
            result portable;
            run_alone(m_p, &s, i, ARMT_SCHEDULE_DIAGONAL, &portable);
            double et = result_diff(&batch[i], &portable, c->n_layers);
            printf("  batch - alone on the portable kernels %.3g\n", et);
            ck_assert_msg(et <= TOL_TC, "document %d: batch %.3g from alone on the portable kernels", i, et);
            result_free(&portable);
            armt_model_free(m_p);
            armt_runtime_free(rt_p);
        }
    }
    if (cases[_i].fixture >= 0) { /* the reference library's own logits of that document */
        size_t nl;
        char sub[64];
        snprintf(sub, sizeof sub, "variants/%s", cases[_i].model);
        float *ref = fixture_tensor(sub, "logits", &nl);
        ck_assert_uint_eq(nl, batch[cases[_i].fixture].nl);
        double d = test_max_abs_diff_ff(batch[cases[_i].fixture].logits, ref, nl);
        ck_assert_msg(d <= TOL_FIXREF, "batch against the reference library: %g", d);
        free(ref);
    }
    for (int i = 0; i < N_DOCS; i++) {
        result_free(&alone[i]);
        result_free(&seq[i]);
        result_free(&batch[i]);
        result_free(&bseq[i]);
    }
    docs_free(&s);
    if (m_alone != m) armt_model_free(m_alone);
    if (rt_alone != rt) armt_runtime_free(rt_alone);
    armt_model_free(m);
    armt_runtime_free(rt);
}
END_TEST

/* Documents joining at steps 0, 3 and 5 (the first still in flight), the runner one of them; and a batch
 * that continues the states a first batch left (each document cut in two calls). */
START_TEST(test_continuous) {
    armt_runtime *rt = test_runtime();
    armt_model *m = load_variant(rt, "amt_all", ARMT_PRECISION_FP32);
    const armt_config *c = armt_model_config(m);
    docset s;
    docs_load(&s, c->vocab_size);
    result alone[N_DOCS], joined[N_DOCS];
    for (int i = 0; i < N_DOCS; i++)
        run_alone(m, &s, i, ARMT_SCHEDULE_DIAGONAL, &alone[i]);
    static const int starts[N_DOCS] = {0, 3, 5};
    run_batch(m, &s, ARMT_SCHEDULE_DIAGONAL, 2, starts, joined);
    for (int i = 0; i < N_DOCS; i++) {
        double e = result_diff(&joined[i], &alone[i], c->n_layers);
        ck_assert_msg(e <= TOL_REL, "document %d joining at step %d: %.3g from alone", i, starts[i], e);
    }
    /* two calls: the first 20 / 17 / 5 tokens, then the rest, the states carried by the contexts */
    armt_ctx *ctx[N_DOCS];
    result two[N_DOCS];
    static const size_t cut[N_DOCS] = {20, 17, 5};
    armt_forward_params p = armt_forward_default_params();
    p.output = ARMT_OUTPUT_LOGITS_ALL;
    for (int half = 0; half < 2; half++) {
        armt_batch_doc d[N_DOCS];
        for (int i = 0; i < N_DOCS; i++) {
            if (half == 0) {
                ck_assert_int_eq(armt_ctx_create(m, NULL, &ctx[i]), ARMT_OK);
                result_alloc(&two[i], ctx[i], s.n[i]);
            }
            size_t first = half ? cut[i] : 0, n = half ? s.n[i] - cut[i] : cut[i];
            d[i] = (armt_batch_doc){.ctx = ctx[i],
                                    .ids = s.ids[i] + first,
                                    .n = n,
                                    .out = two[i].logits + first * (size_t)c->vocab_size,
                                    .out_count = n * (size_t)c->vocab_size};
        }
        ck_assert_msg(armt_forward_batch(ctx[0], d, N_DOCS, &p) == ARMT_OK, "%s",
                      armt_ctx_last_error(ctx[0]));
    }
    for (int i = 0; i < N_DOCS; i++) {
        result_state(&two[i], ctx[i]);
        /* alone in the same two calls */
        result a2;
        armt_ctx *one = NULL;
        ck_assert_int_eq(armt_ctx_create(m, NULL, &one), ARMT_OK);
        result_alloc(&a2, one, s.n[i]);
        for (int half = 0; half < 2; half++) {
            size_t first = half ? cut[i] : 0, n = half ? s.n[i] - cut[i] : cut[i];
            p.out = a2.logits + first * (size_t)c->vocab_size;
            p.out_count = n * (size_t)c->vocab_size;
            ck_assert_int_eq(armt_forward(one, s.ids[i] + first, n, &p), ARMT_OK);
        }
        result_state(&a2, one);
        double e = result_diff(&two[i], &a2, c->n_layers);
        ck_assert_msg(e <= TOL_REL, "document %d in two batches: %.3g from alone in two calls", i, e);
        result_free(&a2);
        result_free(&two[i]);
        result_free(&alone[i]);
        result_free(&joined[i]);
        armt_ctx_free(one);
        armt_ctx_free(ctx[i]);
    }
    docs_free(&s);
    armt_model_free(m);
    armt_runtime_free(rt);
}
END_TEST

/* ======================================================================================================= */
/* Failures leave every state as it was                                                                    */
/* ======================================================================================================= */

static int cancel_at_3(uint64_t done, uint64_t total, void *u) {
    (void)total;
    (void)u;
    return done >= 3;
}

START_TEST(test_errors_leave_state) {
    armt_runtime *rt = test_runtime();
    armt_model *m = load_variant(rt, "armt_sw_sink", ARMT_PRECISION_FP32);
    const armt_config *c = armt_model_config(m);
    docset s;
    docs_load(&s, c->vocab_size);
    armt_ctx *ctx[N_DOCS];
    result before[N_DOCS], after[N_DOCS];
    armt_batch_doc d[N_DOCS];
    armt_forward_params p = armt_forward_default_params();
    for (int i = 0; i < N_DOCS; i++) {
        ck_assert_int_eq(armt_ctx_create(m, NULL, &ctx[i]), ARMT_OK);
        /* some state first (and a sliding window) */
        ck_assert_int_eq(armt_forward(ctx[i], s.ids[i], 10, &p), ARMT_OK);
        result_alloc(&before[i], ctx[i], s.n[i]);
        result_alloc(&after[i], ctx[i], s.n[i]);
        result_state(&before[i], ctx[i]);
        d[i] = (armt_batch_doc){.ctx = ctx[i], .ids = s.ids[i], .n = s.n[i]};
    }
#define STATES_UNCHANGED(what)                                                                   \
    for (int i = 0; i < N_DOCS; i++) {                                                           \
        result_state(&after[i], ctx[i]);                                                         \
        ck_assert_msg(memcmp(before[i].w, after[i].w, before[i].nw * 4) == 0 &&                  \
                          memcmp(before[i].z, after[i].z, before[i].nz * 4) == 0 &&              \
                          memcmp(before[i].written, after[i].written, (size_t)c->n_layers) == 0, \
                      "%s: document %d's state changed", what, i);                               \
    }
    /* a bad document: a token id out of range */
    int32_t *bad = malloc(s.n[1] * sizeof *bad);
    memcpy(bad, s.ids[1], s.n[1] * sizeof *bad);
    bad[30] = c->vocab_size;
    d[1].ids = bad;
    ck_assert_int_eq(armt_forward_batch(ctx[0], d, N_DOCS, &p), ARMT_STATUS_TOKEN_OUT_OF_RANGE);
    ck_assert_msg(strstr(armt_ctx_last_error(ctx[0]), "document 1: token 30") != NULL, "%s",
                  armt_ctx_last_error(ctx[0]));
    STATES_UNCHANGED("bad id");
    d[1].ids = s.ids[1];
    /* misuse */
    armt_batch_doc twice[2] = {d[0], d[0]};
    ck_assert_int_eq(armt_forward_batch(ctx[0], twice, 2, &p), ARMT_STATUS_INVALID_ARGUMENT);
    ck_assert_int_eq(armt_forward_batch(ctx[0], d, 0, &p), ARMT_STATUS_EMPTY_INPUT);
    ck_assert_int_eq(armt_forward_batch(NULL, d, N_DOCS, &p), ARMT_STATUS_INVALID_ARGUMENT);
    ck_assert_int_eq(armt_forward_batch(ctx[0], d, N_DOCS, NULL), ARMT_STATUS_INVALID_ARGUMENT);
    p.schedule = ARMT_SCHEDULE_FULL;
    ck_assert_int_eq(armt_forward_batch(ctx[0], d, N_DOCS, &p), ARMT_STATUS_UNSUPPORTED);
    p.schedule = ARMT_SCHEDULE_DIAGONAL;
    p.output = ARMT_OUTPUT_LOGITS_LAST; /* no out */
    ck_assert_int_eq(armt_forward_batch(ctx[0], d, N_DOCS, &p), ARMT_STATUS_INVALID_ARGUMENT);
    p.output = ARMT_OUTPUT_NONE;
    d[2].start = -1;
    ck_assert_int_eq(armt_forward_batch(ctx[0], d, N_DOCS, &p), ARMT_STATUS_INVALID_ARGUMENT);
    d[2].start = 2;
    armt_model *other = load_variant(rt, "armt", ARMT_PRECISION_FP32);
    armt_ctx *stranger = NULL;
    ck_assert_int_eq(armt_ctx_create(other, NULL, &stranger), ARMT_OK);
    armt_batch_doc mixed[2] = {d[0], {.ctx = stranger, .ids = s.ids[0], .n = 4}};
    ck_assert_int_eq(armt_forward_batch(ctx[0], mixed, 2, &p), ARMT_STATUS_MODEL_MISMATCH);
    STATES_UNCHANGED("misuse");
    /* a device error mid-batch, then a cancel: every state put back */
    for (long at = 30; at <= 200; at += 170) {
        armt_fault_inject(at);
        armt_status st = armt_forward_batch(ctx[0], d, N_DOCS, &p);
        armt_fault_inject(-1);
        ck_assert_int_eq(st, ARMT_STATUS_OUT_OF_DEVICE_MEMORY);
        STATES_UNCHANGED("device error");
    }
    p.progress = cancel_at_3;
    ck_assert_int_eq(armt_forward_batch(ctx[0], d, N_DOCS, &p), ARMT_STATUS_CANCELLED);
    STATES_UNCHANGED("cancel");
    p.progress = NULL;
    /* and the contexts go on as if nothing had happened: the batch equals each context's forward */
    ck_assert_msg(armt_forward_batch(ctx[0], d, N_DOCS, &p) == ARMT_OK, "%s", armt_ctx_last_error(ctx[0]));
    for (int i = 0; i < N_DOCS; i++) {
        armt_ctx *one = NULL;
        ck_assert_int_eq(armt_ctx_create(m, NULL, &one), ARMT_OK);
        ck_assert_int_eq(armt_forward(one, s.ids[i], 10, &p), ARMT_OK);
        ck_assert_int_eq(armt_forward(one, s.ids[i], s.n[i], &p), ARMT_OK);
        result_state(&before[i], one);
        result_state(&after[i], ctx[i]);
        double e = test_rel_err(after[i].w, before[i].w, before[i].nw);
        ck_assert_msg(e <= TOL_REL, "document %d after the failures: W_mem %.3g from alone", i, e);
        armt_ctx_free(one);
    }
#undef STATES_UNCHANGED
    for (int i = 0; i < N_DOCS; i++) {
        result_free(&before[i]);
        result_free(&after[i]);
        armt_ctx_free(ctx[i]);
    }
    free(bad);
    armt_ctx_free(stranger);
    armt_model_free(other);
    docs_free(&s);
    armt_model_free(m);
    armt_runtime_free(rt);
}
END_TEST

static Suite *suite(void) {
    Suite *s = suite_create("batch");
    TCase *tc = test_tcase(s, "batch", 600);
    tcase_add_loop_test(tc, test_batch_equals_alone, 0, (int)(sizeof cases / sizeof cases[0]));
    tcase_add_test(tc, test_continuous);
    tcase_add_test(tc, test_errors_leave_state);
    return s;
}

int main(void) { return test_run_suite(suite(), 1); }
