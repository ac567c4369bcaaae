/*
 * check_generate_batch.c - armt_generate_batch (issue 24): the fixture documents (the ids of
 * tests/data/variants/armt, variants/amt_all and hf_llama: 36, 41 and 12 tokens) generating together, each
 * with its own sampling and stop, give each document the tokens armt_generate gives it alone (greedy, and
 * sampling with the same seed; one document stops early and drops out while the others go on) and leave its
 * memory state as armt_generate does (fp32 with the sliding window and sink, several memory heads, the inner
 * loop, gating; the portable bf16 kernels; the emulated tensor cores on both tile sets); greedy tokens also
 * equal the double-precision reference's
 * (ref_armt_generate_greedy, while its margins are clear). A bad prompt fails before any state changes; a
 * device error or a cancel puts every state back.
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

#define TOL_REL    1e-6 /* memory state: batch (armt_forward_batch) against alone, fp32 (check_batch's)   */
#define MARGIN_REF 1e-3 /* compare with the reference while its winning margin is at least this          */
#define N_DOCS     3
#define MAX_NEW    10

typedef struct docset {
    int32_t *ids[N_DOCS];
    size_t n[N_DOCS];
} docset;

static void docs_load(docset *s, int vocab) {
    static const char *const subs[N_DOCS] = {"variants/armt", "variants/amt_all", "hf_llama"};
    for (int i = 0; i < N_DOCS; i++) {
        char path[4096];
        snprintf(path, sizeof path, "%s/%s/expected.safetensors", test_data_dir(), subs[i]);
        armt_err err;
        armt_err_init(&err);
        st_archive *a = NULL;
        ck_assert_msg(st_open(path, &a, &err) == ARMT_OK, "%s", armt_err_msg(&err));
        const st_tensor *t = st_find(a, "ids");
        ck_assert(t != NULL);
        float *v = malloc((size_t)t->numel * sizeof *v);
        ck_assert(st_read_f32(a, t, 0, t->numel, v, &err) == ARMT_OK);
        s->n[i] = (size_t)t->numel;
        s->ids[i] = malloc(s->n[i] * sizeof(int32_t));
        for (size_t k = 0; k < s->n[i]; k++)
            s->ids[i][k] = (int32_t)v[k] % vocab;
        free(v);
        st_close(a);
        armt_err_free(&err);
    }
    ck_assert_uint_eq(s->n[0], 36);
    ck_assert_uint_eq(s->n[1], 41);
    ck_assert_uint_eq(s->n[2], 12);
}

static void docs_free(docset *s) {
    for (int i = 0; i < N_DOCS; i++)
        free(s->ids[i]);
}

static armt_model *load_variant(armt_runtime *rt, const char *sub, armt_precision prec) {
    char path[4096];
    snprintf(path, sizeof path, "%s/variants/%s", test_data_dir(), sub);
    armt_model_params p = armt_model_default_params();
    p.precision = prec;
    armt_model *m = NULL;
    ck_assert_msg(armt_model_load(rt, path, &p, &m) == ARMT_OK, "load %s: %s", path, armt_last_error());
    return m;
}

/* What a generation leaves: its tokens, result and memory state. */
typedef struct gen {
    int32_t tok[MAX_NEW];
    armt_generate_result res;
    float *w, *z;
    size_t nw, nz;
} gen;

static void gen_state(gen *g, armt_ctx *ctx) {
    g->nw = armt_ctx_memory_w_count(ctx);
    g->nz = armt_ctx_memory_z_count(ctx);
    if (!g->w) g->w = malloc(g->nw * 4);
    if (!g->z) g->z = malloc(g->nz * 4);
    ck_assert_msg(armt_ctx_memory_get(ctx, g->w, g->z, NULL) == ARMT_OK, "%s", armt_ctx_last_error(ctx));
}

static void gen_free(gen *g) {
    free(g->w);
    free(g->z);
}

/* Each document's parameters: greedy; sampling; sampling with a stop id (set from its run alone). */
static armt_generate_params doc_params(int i) {
    armt_generate_params p = armt_generate_default_params();
    p.max_new_tokens = MAX_NEW;
    if (i == 2) {
        p.temperature = 1.0f;
        p.seed = 3;
    }
    if (i == 1) {
        p.max_new_tokens = 7;
        p.temperature = 0.9f;
        p.top_k = 8;
        p.top_p = 0.95f;
        p.seed = 11;
    }
    return p;
}

static void run_alone(armt_model *m, const docset *s, int i, const armt_generate_params *p, gen *g) {
    armt_ctx *ctx = NULL;
    ck_assert_int_eq(armt_ctx_create(m, NULL, &ctx), ARMT_OK);
    memset(g, 0, sizeof *g);
    ck_assert_msg(armt_generate(ctx, s->ids[i], s->n[i], p, g->tok, MAX_NEW, &g->res) == ARMT_OK, "%s",
                  armt_ctx_last_error(ctx));
    gen_state(g, ctx);
    armt_ctx_free(ctx);
}

static const struct {
    const char *model;
    armt_precision prec;
    int emulate;
} cases[] = {
    {"amt_all", ARMT_PRECISION_FP32, 0},
    {"armt_sw_sink", ARMT_PRECISION_FP32, 0},  /* sliding window and sink */
    {"amt_h4", ARMT_PRECISION_FP32, 0},        /* four memory heads         */
    {"inner_h4_sink", ARMT_PRECISION_FP32, 0}, /* the inner loop's memory tokens, heads, sink */
    {"amt_gating", ARMT_PRECISION_FP32, 0},    /* beta per channel            */
    {"armt", ARMT_PRECISION_BF16, 0},
    {"armt", ARMT_PRECISION_BF16, 1}, /* emulated tensor cores: staged operands, fused epilogues */
    {"armt", ARMT_PRECISION_BF16, 2}, /* ... on the Hopper wgmma tiles: gate and up in one GEMM  */
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

/* What a case holds at its end: the documents' runs alone, the prompts, the model, the runtime. */
static void case_free(gen *alone, docset *s, armt_model *m, armt_runtime *rt) {
    for (int i = 0; i < N_DOCS; i++)
        gen_free(&alone[i]);
    docs_free(s);
    armt_model_free(m);
    armt_runtime_free(rt);
}

START_TEST(test_equals_alone) {
    armt_runtime *rt = case_runtime(cases[_i].emulate);
    armt_model *m = load_variant(rt, cases[_i].model, cases[_i].prec);
    const armt_config *c = armt_model_config(m);
    docset s;
    docs_load(&s, c->vocab_size);
    armt_generate_params p[N_DOCS];
    gen alone[N_DOCS];
    for (int i = 0; i < N_DOCS; i++) {
        p[i] = doc_params(i);
        run_alone(m, &s, i, &p[i], &alone[i]);
        ck_assert_int_eq((int)alone[i].res.n_tokens, p[i].max_new_tokens);
    }
    /* document 2 stops at the first new token it has not produced before, from its third on (and drops out
     * of the batch while the others go on) */
    int k_stop = 2;
    for (; k_stop < MAX_NEW; k_stop++) {
        int seen = 0;
        for (int k = 0; k < k_stop; k++)
            seen |= alone[2].tok[k] == alone[2].tok[k_stop];
        if (!seen) break;
    }
    ck_assert_int_lt(k_stop, MAX_NEW - 1);
    p[2].stop_id = alone[2].tok[k_stop];
    gen_free(&alone[2]);
    run_alone(m, &s, 2, &p[2], &alone[2]);
    ck_assert_int_eq(alone[2].res.stopped, 1);
    ck_assert_int_eq((int)alone[2].res.n_tokens, k_stop + 1);
    /* the batch: a runner of its own (the first run) or document 1's context */
    for (int run = 0; run < 2; run++) {
        armt_ctx *ctx[N_DOCS], *own = NULL;
        armt_generate_doc d[N_DOCS];
        gen b[N_DOCS];
        memset(b, 0, sizeof b);
        for (int i = 0; i < N_DOCS; i++) {
            ck_assert_int_eq(armt_ctx_create(m, NULL, &ctx[i]), ARMT_OK);
            d[i] = (armt_generate_doc){.ctx = ctx[i],
                                       .prompt = s.ids[i],
                                       .n = s.n[i],
                                       .params = p[i],
                                       .out = b[i].tok,
                                       .out_cap = MAX_NEW};
        }
        if (run == 0) ck_assert_int_eq(armt_ctx_create(m, NULL, &own), ARMT_OK);
        armt_ctx *runner = run == 0 ? own : ctx[1];
        armt_generate_params bp = armt_generate_default_params();
        bp.schedule = run == 0 ? ARMT_SCHEDULE_DIAGONAL : ARMT_SCHEDULE_SEQUENTIAL;
        ck_assert_msg(armt_generate_batch(runner, d, N_DOCS, &bp) == ARMT_OK, "%s",
                      armt_ctx_last_error(runner));
        for (int i = 0; i < N_DOCS; i++) {
            gen_state(&b[i], ctx[i]);
            const armt_generate_result *r = &d[i].result;
            ck_assert_uint_eq(r->n_tokens, alone[i].res.n_tokens);
            ck_assert_int_eq(r->stopped, alone[i].res.stopped);
            ck_assert_uint_eq(r->tail_tokens, alone[i].res.tail_tokens);
            ck_assert_uint_eq(r->prompt_tokens, s.n[i]);
            for (size_t k = 0; k < r->n_tokens; k++)
                ck_assert_msg(b[i].tok[k] == alone[i].tok[k],
                              "%s run %d document %d: token %zu is %d, alone %d", cases[_i].model, run, i, k,
                              b[i].tok[k], alone[i].tok[k]);
            double ew = test_rel_err(b[i].w, alone[i].w, alone[i].nw),
                   ez = test_rel_err(b[i].z, alone[i].z, alone[i].nz);
            printf("%s %s%s run %d document %d: %zu tokens equal, state %.3g %.3g from alone\n",
                   cases[_i].model, armt_precision_name(cases[_i].prec),
                   cases[_i].emulate == 2 ? " (emulated TC, wgmma)"
                   : cases[_i].emulate    ? " (emulated TC)"
                                          : "",
                   run, i, r->n_tokens, ew, ez);
            /* (bf16: the same kernels as alone, also on the emulated tensor cores) */
            const double tol = cases[_i].prec == ARMT_PRECISION_BF16 ? 0.0 : TOL_REL;
            ck_assert_msg(ew <= tol && ez <= tol, "document %d: state %.3g %.3g from alone", i, ew, ez);
            gen_free(&b[i]);
            armt_ctx_free(ctx[i]);
        }
        armt_ctx_free(own);
    }
    /* greedy document 0 against the double-precision reference, while its margins are clear */
    if (cases[_i].prec == ARMT_PRECISION_FP32) {
        test_host_model *h = test_host_model_read(m);
        ref_state *rs = ref_state_new(c);
        int32_t ref_tok[MAX_NEW];
        double margin[MAX_NEW];
        int nref =
            ref_armt_generate_greedy_margins(&h->ref, rs, s.ids[0], s.n[0], MAX_NEW, -1, ref_tok, margin);
        ck_assert_int_eq(nref, MAX_NEW);
        int k = 0;
        for (; k < MAX_NEW && margin[k] >= MARGIN_REF; k++)
            ck_assert_msg(alone[0].tok[k] == ref_tok[k], "token %d is %d, reference %d", k, alone[0].tok[k],
                          ref_tok[k]);
        printf("  document 0: %d tokens equal the reference's\n", k);
        ck_assert_int_ge(k, 3);
        ref_state_free(rs);
        test_host_model_free(h);
    }
    case_free(alone, &s, m, rt);
}
END_TEST

/* More documents than the GEMV takes rows (a decode round on the tensor-core tiles), k split in four
 * ($ARMT_SPLITK, read when the runtime is made) and not (1): every document's greedy tokens equal its own
 * generation's, and the split's sums ran only where asked (the runner's profile). _i: 0 the mma.sync tiles,
 * 1 the wgmma tiles (emulated). */
#define N_WIDE 6
START_TEST(test_wide_rounds) {
    for (int split = 0; split < 2; split++) {
        ck_assert_int_eq(setenv("ARMT_SPLITK", split ? "4" : "1", 1), 0); /* (auto, the default, may split) */
        armt_runtime *rt = case_runtime(1 + _i);
        unsetenv("ARMT_SPLITK");
        armt_model *m = load_variant(rt, "armt", ARMT_PRECISION_BF16);
        docset s;
        docs_load(&s, armt_model_config(m)->vocab_size);
        armt_generate_params p = armt_generate_default_params();
        p.max_new_tokens = MAX_NEW;
        gen alone[N_DOCS];
        for (int i = 0; i < N_DOCS; i++)
            run_alone(m, &s, i, &p, &alone[i]);
        armt_ctx *ctx[N_WIDE], *runner = NULL;
        armt_generate_doc d[N_WIDE];
        int32_t tok[N_WIDE][MAX_NEW];
        for (int i = 0; i < N_WIDE; i++) {
            ck_assert_int_eq(armt_ctx_create(m, NULL, &ctx[i]), ARMT_OK);
            d[i] = (armt_generate_doc){.ctx = ctx[i],
                                       .prompt = s.ids[i % N_DOCS],
                                       .n = s.n[i % N_DOCS],
                                       .params = p,
                                       .out = tok[i],
                                       .out_cap = MAX_NEW};
        }
        armt_ctx_params cp = armt_ctx_default_params();
        cp.profile = 1;
        ck_assert_int_eq(armt_ctx_create(m, &cp, &runner), ARMT_OK);
        armt_generate_params bp = armt_generate_default_params();
        ck_assert_msg(armt_generate_batch(runner, d, N_WIDE, &bp) == ARMT_OK, "%s",
                      armt_ctx_last_error(runner));
        for (int i = 0; i < N_WIDE; i++) {
            ck_assert_uint_eq(d[i].result.n_tokens, alone[i % N_DOCS].res.n_tokens);
            for (size_t k = 0; k < d[i].result.n_tokens; k++)
                ck_assert_msg(tok[i][k] == alone[i % N_DOCS].tok[k],
                              "split %d document %d: token %zu is %d, alone %d", split, i, k, tok[i][k],
                              alone[i % N_DOCS].tok[k]);
            armt_ctx_free(ctx[i]);
        }
        const char *names[64];
        double sec[64];
        const size_t n = armt_ctx_profile(runner, names, sec, 64);
        int sums = 0;
        for (size_t i = 0; i < n && i < 64; i++)
            sums |= strcmp(names[i], "armt_rows_splitk_sum") == 0;
        ck_assert_msg(sums == split, "split %d: the split's sums %s", split, sums ? "ran" : "did not run");
        printf("wide rounds (%s, split %d): %d documents' tokens equal their own\n",
               _i ? "wgmma" : "mma.sync", split, N_WIDE);
        armt_ctx_free(runner);
        case_free(alone, &s, m, rt);
    }
}
END_TEST

/* ======================================================================================================= */
/* Failures leave every state as it was                                                                    */
/* ======================================================================================================= */

static uint64_t cancel_step;
static int cancel_at(uint64_t done, uint64_t total, void *u) {
    (void)total;
    (void)u;
    return done >= cancel_step;
}

START_TEST(test_errors_leave_state) {
    armt_runtime *rt = test_runtime();
    armt_model *m = load_variant(rt, "armt_sw_sink", ARMT_PRECISION_FP32);
    const armt_config *c = armt_model_config(m);
    docset s;
    docs_load(&s, c->vocab_size);
    armt_ctx *ctx[N_DOCS];
    gen before[N_DOCS], after[N_DOCS];
    armt_generate_doc d[N_DOCS];
    int32_t out[N_DOCS][MAX_NEW];
    memset(before, 0, sizeof before);
    memset(after, 0, sizeof after);
    armt_forward_params fp = armt_forward_default_params();
    for (int i = 0; i < N_DOCS; i++) {
        ck_assert_int_eq(armt_ctx_create(m, NULL, &ctx[i]), ARMT_OK);
        ck_assert_int_eq(armt_forward(ctx[i], s.ids[i], 10, &fp), ARMT_OK); /* some state, a window */
        gen_state(&before[i], ctx[i]);
        d[i] = (armt_generate_doc){.ctx = ctx[i],
                                   .prompt = s.ids[i],
                                   .n = s.n[i],
                                   .params = doc_params(i),
                                   .out = out[i],
                                   .out_cap = MAX_NEW};
    }
#define STATES_UNCHANGED(what)                                                    \
    for (int i = 0; i < N_DOCS; i++) {                                            \
        gen_state(&after[i], ctx[i]);                                             \
        ck_assert_msg(memcmp(before[i].w, after[i].w, before[i].nw * 4) == 0 &&   \
                          memcmp(before[i].z, after[i].z, before[i].nz * 4) == 0, \
                      "%s: document %d's state changed", what, i);                \
    }
    /* a bad prompt */
    int32_t *bad = malloc(s.n[1] * sizeof *bad);
    memcpy(bad, s.ids[1], s.n[1] * sizeof *bad);
    bad[30] = c->vocab_size;
    d[1].prompt = bad;
    ck_assert_int_eq(armt_generate_batch(ctx[0], d, N_DOCS, NULL), ARMT_STATUS_TOKEN_OUT_OF_RANGE);
    ck_assert_msg(strstr(armt_ctx_last_error(ctx[0]), "document 1: prompt token 30") != NULL, "%s",
                  armt_ctx_last_error(ctx[0]));
    STATES_UNCHANGED("bad id");
    d[1].prompt = s.ids[1];
    /* misuse */
    armt_generate_doc twice[2] = {d[0], d[0]};
    ck_assert_int_eq(armt_generate_batch(ctx[0], twice, 2, NULL), ARMT_STATUS_INVALID_ARGUMENT);
    ck_assert_int_eq(armt_generate_batch(ctx[0], d, 0, NULL), ARMT_STATUS_EMPTY_INPUT);
    ck_assert_int_eq(armt_generate_batch(NULL, d, N_DOCS, NULL), ARMT_STATUS_INVALID_ARGUMENT);
    d[2].out = NULL;
    ck_assert_int_eq(armt_generate_batch(ctx[0], d, N_DOCS, NULL), ARMT_STATUS_INVALID_ARGUMENT);
    d[2].out = out[2];
    d[2].params.temperature = -1.0f;
    ck_assert_int_eq(armt_generate_batch(ctx[0], d, N_DOCS, NULL), ARMT_STATUS_INVALID_ARGUMENT);
    d[2].params.temperature = 0.0f;
    STATES_UNCHANGED("misuse");
    /* device errors in the prompts' forward, in the tails and in the decode (the launches of a whole call
     * counted on copies of the contexts); then cancels in the prompts and after the second new token */
    uint64_t launches;
    {
        armt_ctx *copy[N_DOCS];
        armt_generate_doc dc[N_DOCS];
        for (int i = 0; i < N_DOCS; i++) {
            ck_assert_int_eq(armt_ctx_create(m, NULL, &copy[i]), ARMT_OK);
            ck_assert_int_eq(armt_forward(copy[i], s.ids[i], 10, &fp), ARMT_OK);
            dc[i] = d[i];
            dc[i].ctx = copy[i];
        }
        ck_assert_int_eq(armt_generate_batch(copy[0], dc, N_DOCS, NULL), ARMT_OK);
        armt_stats stats;
        ck_assert_int_eq(armt_ctx_stats(copy[0], &stats), ARMT_OK);
        launches = stats.kernel_launches;
        for (int i = 0; i < N_DOCS; i++)
            armt_ctx_free(copy[i]);
    }
    const long faults[3] = {40, (long)launches / 2, (long)launches - 3};
    for (int f = 0; f < 3; f++) {
        const long at = faults[f];
        armt_fault_inject(at);
        armt_status st = armt_generate_batch(ctx[0], d, N_DOCS, NULL);
        armt_fault_inject(-1);
        ck_assert_msg(st == ARMT_STATUS_OUT_OF_DEVICE_MEMORY, "fault at %ld: %s", at, armt_status_str(st));
        STATES_UNCHANGED("device error");
    }
    armt_generate_params bp = armt_generate_default_params();
    bp.progress = cancel_at;
    for (cancel_step = 2; cancel_step <= 12; cancel_step += 10) {
        ck_assert_int_eq(armt_generate_batch(ctx[0], d, N_DOCS, &bp), ARMT_STATUS_CANCELLED);
        STATES_UNCHANGED("cancel");
    }
    /* and the contexts go on: the batch then equals each document's generation alone (after the same state) */
    ck_assert_msg(armt_generate_batch(ctx[0], d, N_DOCS, NULL) == ARMT_OK, "%s", armt_ctx_last_error(ctx[0]));
    for (int i = 0; i < N_DOCS; i++) {
        armt_ctx *one = NULL;
        ck_assert_int_eq(armt_ctx_create(m, NULL, &one), ARMT_OK);
        ck_assert_int_eq(armt_forward(one, s.ids[i], 10, &fp), ARMT_OK);
        int32_t tok[MAX_NEW];
        armt_generate_result r;
        ck_assert_int_eq(armt_generate(one, s.ids[i], s.n[i], &d[i].params, tok, MAX_NEW, &r), ARMT_OK);
        ck_assert_uint_eq(r.n_tokens, d[i].result.n_tokens);
        for (size_t k = 0; k < r.n_tokens; k++)
            ck_assert_msg(tok[k] == out[i][k], "document %d after the failures: token %zu", i, k);
        armt_ctx_free(one);
    }
#undef STATES_UNCHANGED
    for (int i = 0; i < N_DOCS; i++) {
        gen_free(&before[i]);
        gen_free(&after[i]);
        armt_ctx_free(ctx[i]);
    }
    free(bad);
    docs_free(&s);
    armt_model_free(m);
    armt_runtime_free(rt);
}
END_TEST

/* Documents whose prompt is one segment (no armt_forward_batch), one with max_new_tokens 0, one stopped by
 * its on_token: as alone. */
static int stop_after_2(int32_t tok, void *u) {
    (void)tok;
    return ++*(int *)u >= 2;
}

START_TEST(test_short_prompts) {
    armt_runtime *rt = test_runtime();
    armt_model *m = load_variant(rt, "amt_all", ARMT_PRECISION_FP32);
    const armt_config *c = armt_model_config(m);
    docset s;
    docs_load(&s, c->vocab_size);
    const size_t n[N_DOCS] = {3, (size_t)c->segment_size, 5};
    armt_ctx *ctx[N_DOCS];
    armt_generate_doc d[N_DOCS];
    int32_t out[N_DOCS][MAX_NEW];
    int calls = 0, calls_alone = 0;
    for (int i = 0; i < N_DOCS; i++) {
        ck_assert_int_eq(armt_ctx_create(m, NULL, &ctx[i]), ARMT_OK);
        d[i] = (armt_generate_doc){.ctx = ctx[i],
                                   .prompt = s.ids[1],
                                   .n = n[i],
                                   .params = doc_params(0),
                                   .out = out[i],
                                   .out_cap = MAX_NEW};
    }
    d[1].params.max_new_tokens = 0;
    d[2].params.on_token = stop_after_2;
    d[2].params.user_data = &calls;
    ck_assert_msg(armt_generate_batch(ctx[0], d, N_DOCS, NULL) == ARMT_OK, "%s", armt_ctx_last_error(ctx[0]));
    ck_assert_uint_eq(d[1].result.n_tokens, 0);
    ck_assert_int_eq(d[2].result.stopped, 2);
    for (int i = 0; i < N_DOCS; i++) {
        armt_ctx *one = NULL;
        ck_assert_int_eq(armt_ctx_create(m, NULL, &one), ARMT_OK);
        armt_generate_params p = d[i].params;
        if (i == 2) p.user_data = &calls_alone;
        int32_t tok[MAX_NEW];
        armt_generate_result r;
        ck_assert_int_eq(armt_generate(one, d[i].prompt, n[i], &p, tok, MAX_NEW, &r), ARMT_OK);
        ck_assert_uint_eq(r.n_tokens, d[i].result.n_tokens);
        ck_assert_int_eq(r.stopped, d[i].result.stopped);
        for (size_t k = 0; k < r.n_tokens; k++)
            ck_assert_msg(tok[k] == out[i][k], "document %d: token %zu is %d, alone %d", i, k, out[i][k],
                          tok[k]);
        armt_ctx_free(one);
        armt_ctx_free(ctx[i]);
    }
    docs_free(&s);
    armt_model_free(m);
    armt_runtime_free(rt);
}
END_TEST

static Suite *suite(void) {
    Suite *s = suite_create("generate_batch");
    TCase *tc = test_tcase(s, "generate_batch", 600);
    tcase_add_loop_test(tc, test_equals_alone, 0, (int)(sizeof cases / sizeof cases[0]));
    tcase_add_test(tc, test_short_prompts);
    tcase_add_loop_test(tc, test_wide_rounds, 0, 2);
    tcase_add_test(tc, test_errors_leave_state);
    return s;
}

int main(void) { return test_run_suite(suite(), 1); }
