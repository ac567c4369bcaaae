/*
 * pipeline_util.c - shared cases and runs of check_pipeline and check_pipeline_mpi (see pipeline_util.h).
 */
#include "config.h"

#include "pipeline_util.h"
#include "testutil.h"

#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static armt_config tiny(int layers) {
    armt_config c;
    if (armt_config_preset("tiny", &c) != ARMT_OK) abort(); /* also called outside tests (the case count) */
    c.n_layers = layers;
    return c;
}

const pu_case *pu_cases(size_t *n_cases) {
    static pu_case cases[8];
    static int made = 0;
    if (!made) {
        armt_model_params mp = armt_model_default_params();
        mp.seed = 11;
        mp.wmv_std = 0.05f; /* an active memory path */
        size_t k = 0;
        for (int bf = 0; bf < 2; bf++)
            for (int sch = ARMT_SCHEDULE_SEQUENTIAL; sch <= ARMT_SCHEDULE_DIAGONAL; sch++) {
                pu_case *c = &cases[k++];
                c->name = bf ? (sch ? "bf16 diagonal" : "bf16 sequential")
                             : (sch ? "fp32 diagonal" : "fp32 sequential");
                c->cfg = tiny(4);
                c->mp = mp;
                c->mp.precision = bf ? ARMT_PRECISION_BF16 : ARMT_PRECISION_FP32;
                c->schedule = (armt_schedule)sch;
                c->output = ARMT_OUTPUT_LOGITS_ALL;
                /* 2.5 segments (fewer than the layers, a partial last one), then 7 more (more than the
                 * layers; the state carried over from the first call) */
                c->n[0] = 40;
                c->n[1] = 112;
                c->calls = 2;
            }
        pu_case *c = &cases[k++]; /* the armt variant with the sink and the sliding window */
        c->name = "armt sink + window";
        c->cfg = tiny(4);
        c->cfg.variant = ARMT_VARIANT_ARMT;
        c->cfg.use_sink = 1;
        c->cfg.sliding_window = 1;
        c->mp = mp;
        c->schedule = ARMT_SCHEDULE_DIAGONAL;
        c->output = ARMT_OUTPUT_LOGITS_ALL;
        c->n[0] = 37;
        c->n[1] = 70;
        c->calls = 2;
        c = &cases[k++]; /* the last token's logits: the last layer skips the rows nobody reads */
        c->name = "last-token logits";
        c->cfg = tiny(4);
        c->mp = mp;
        c->schedule = ARMT_SCHEDULE_DIAGONAL;
        c->output = ARMT_OUTPUT_LOGITS_LAST;
        c->n[0] = 75;
        c->calls = 1;
        made = (int)k;
    }
    *n_cases = (size_t)made;
    return cases;
}

void pu_ids(const pu_case *c, int32_t *ids, size_t *total) {
    size_t t = 0;
    for (int i = 0; i < c->calls; i++)
        t += c->n[i];
    test_random_ids(ids, t, c->cfg.vocab_size, 1234);
    *total = t;
}

static size_t out_floats(const pu_case *c, size_t n) {
    return c->output == ARMT_OUTPUT_LOGITS_LAST ? (size_t)c->cfg.vocab_size : n * (size_t)c->cfg.vocab_size;
}

static void result_alloc(const pu_case *c, pu_result *r) {
    memset(r, 0, sizeof r[0]);
    for (int i = 0; i < c->calls; i++)
        r->n_logits += out_floats(c, c->n[i]);
    const size_t dk = (size_t)armt_config_d_key(&c->cfg);
    r->nw = (size_t)c->cfg.n_layers * dk * (size_t)c->cfg.hidden_size;
    r->nz = (size_t)c->cfg.n_layers * dk;
    r->nl = (size_t)c->cfg.n_layers;
    r->logits = malloc(r->n_logits * sizeof(float));
    r->w = malloc(r->nw * sizeof(float));
    r->z = malloc(r->nz * sizeof(float));
    r->written = malloc((size_t)c->cfg.n_layers);
    ck_assert(r->logits && r->w && r->z && r->written);
}

void pu_single(const pu_case *c, pu_result *r) {
    result_alloc(c, r);
    int32_t ids[512];
    size_t total;
    pu_ids(c, ids, &total);
    armt_runtime *rt = test_runtime();
    armt_model *m = NULL;
    armt_ctx *ctx = NULL;
    ck_assert_msg(armt_model_create_random(rt, &c->cfg, &c->mp, &m) == ARMT_OK, "%s", armt_last_error());
    ck_assert_int_eq(armt_ctx_create(m, NULL, &ctx), ARMT_OK);
    armt_forward_params fp = armt_forward_default_params();
    fp.schedule = c->schedule;
    fp.output = c->output;
    size_t at = 0, id0 = 0;
    for (int i = 0; i < c->calls; i++) {
        fp.out = r->logits + at;
        fp.out_count = out_floats(c, c->n[i]);
        ck_assert_msg(armt_forward(ctx, ids + id0, c->n[i], &fp) == ARMT_OK, "%s", armt_ctx_last_error(ctx));
        at += fp.out_count;
        id0 += c->n[i];
    }
    ck_assert_int_eq(armt_ctx_memory_get(ctx, r->w, r->z, r->written), ARMT_OK);
    armt_ctx_free(ctx);
    armt_model_free(m);
    armt_runtime_free(rt);
}

armt_pipeline_params pu_params(const pu_case *c) {
    armt_pipeline_params p = armt_pipeline_default_params();
    p.config = &c->cfg;
    p.model = c->mp;
    return p;
}

armt_status pu_pipeline(armt_pipeline *pipe, const pu_case *c, pu_result *r, int rank) {
    result_alloc(c, r);
    int32_t ids[512];
    size_t total;
    pu_ids(c, ids, &total);
    armt_forward_params fp = armt_forward_default_params();
    fp.schedule = c->schedule;
    fp.output = c->output;
    size_t at = 0, id0 = 0;
    armt_status st = ARMT_OK;
    for (int i = 0; i < c->calls && st == ARMT_OK; i++) {
        fp.out = rank == 0 ? r->logits + at : NULL;
        fp.out_count = rank == 0 ? out_floats(c, c->n[i]) : 0;
        st = armt_pipeline_forward(pipe, ids + id0, c->n[i], &fp);
        at += out_floats(c, c->n[i]);
        id0 += c->n[i];
    }
    if (st == ARMT_OK) st = armt_pipeline_memory_get(pipe, r->w, r->z, r->written);
    return st;
}

int pu_equal(const pu_result *a, const pu_result *b, char *why, size_t n) {
    const char *what = NULL;
    if (a->n_logits != b->n_logits || memcmp(a->logits, b->logits, a->n_logits * sizeof(float)) != 0)
        what = "outputs";
    else if (memcmp(a->w, b->w, a->nw * sizeof(float)) != 0)
        what = "W_mem";
    else if (memcmp(a->z, b->z, a->nz * sizeof(float)) != 0)
        what = "z";
    else if (memcmp(a->written, b->written, a->nl) != 0)
        what = "written";
    if (!what) return 1;
    snprintf(why, n, "%s differ (outputs max |a - b| %g)", what,
             a->n_logits == b->n_logits ? test_max_abs_diff_ff(a->logits, b->logits, a->n_logits) : -1.0);
    return 0;
}

void pu_result_free(pu_result *r) {
    free(r->logits);
    free(r->w);
    free(r->z);
    free(r->written);
    memset(r, 0, sizeof r[0]);
}
