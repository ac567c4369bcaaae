/*
 * check_forward.c - the ARMT forward on OpenCL against the double-precision C reference (tests/ref_armt.c),
 * diagonal against sequential, the full-attention schedule against the reference LLaMA, persistence of the
 * memory state across calls, and the schedule counters.
 *
 * Models are tiny random ones with a non-zero W_mv (the memory path active) and few segments (random
 * memories grow quickly, docs/MATH.md §10).
 */
#include "config.h"

#include "testutil.h"

#include "device/internal.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Tolerances: fp32 kernels against the fp64 reference. */
#define TOL_LOGITS   1e-4 /* |ours - ref| <= TOL_LOGITS * max(1, |ref|)                    */
#define TOL_STATE    1e-4 /* |ours - ref| <= TOL_STATE * max |ref| over the tensor          */
#define TOL_SCHEDULE 1e-5 /* diagonal vs sequential: max |a - b| / max |b|               */

typedef struct shape {
    int layers, heads, kv_heads, head_dim, tied, segment, mem;
} shape;

static armt_config make_cfg(shape s) {
    armt_config c;
    ck_assert_int_eq(armt_config_preset("tiny", &c), ARMT_OK);
    c.n_layers = s.layers;
    if (s.heads) {
        c.n_heads = s.heads;
        c.n_kv_heads = s.kv_heads;
        c.head_dim = s.head_dim;
    }
    c.tie_word_embeddings = s.tied;
    c.segment_size = s.segment;
    c.num_mem_tokens = s.mem;
    return c;
}

static armt_model *make_model(armt_runtime *rt, armt_config c, uint64_t seed, float wmv_std) {
    armt_model_params p = armt_model_default_params();
    p.seed = seed;
    p.wmv_std = wmv_std;
    armt_model *m = NULL;
    armt_status st = armt_model_create_random(rt, &c, &p, &m);
    ck_assert_msg(st == ARMT_OK, "create_random: %s", armt_last_error());
    return m;
}

static armt_ctx *make_ctx(armt_model *m) {
    armt_ctx *ctx = NULL;
    ck_assert_msg(armt_ctx_create(m, NULL, &ctx) == ARMT_OK, "ctx_create: %s", armt_last_error());
    return ctx;
}

static void run(armt_ctx *ctx, armt_schedule sch, armt_output out, const int32_t *ids, size_t n, float *dst,
                size_t count) {
    armt_forward_params p = armt_forward_default_params();
    p.schedule = sch;
    p.output = out;
    p.out = dst;
    p.out_count = count;
    armt_status st = armt_forward(ctx, ids, n, &p);
    ck_assert_msg(st == ARMT_OK, "forward: %s: %s", armt_status_str(st), armt_ctx_last_error(ctx));
}

static double max_abs(const float *a, size_t n) {
    double m = 0;
    for (size_t i = 0; i < n; i++)
        m = fmax(m, fabs(a[i]));
    return m;
}

/* Worst violation of |ours - ref| <= tol * max(1, |ref|), as a multiple of the allowance (<= 1 passes). */
static double logits_violation(const float *ours, const double *ref, size_t n, double tol) {
    double worst = 0;
    for (size_t i = 0; i < n; i++) {
        double allow = tol * fmax(1.0, fabs(ref[i]));
        double v = fabs((double)ours[i] - ref[i]) / allow;
        if (!(v <= worst)) worst = v;
    }
    return worst;
}

static double state_violation(const float *ours, const double *ref, size_t n, double tol) {
    double m = 0;
    for (size_t i = 0; i < n; i++)
        m = fmax(m, fabs(ref[i]));
    double allow = tol * fmax(m, 1e-30), worst = 0;
    for (size_t i = 0; i < n; i++) {
        double v = fabs((double)ours[i] - ref[i]) / allow;
        if (!(v <= worst)) worst = v;
    }
    return worst;
}

/* ======================================================================================================= */
/* Against the reference                                                                                   */
/* ======================================================================================================= */

typedef struct ref_case {
    const char *what;
    shape s;
    size_t n;
} ref_case;

static const ref_case ref_cases[] = {
    {"one partial segment", {3, 0, 0, 0, 1, 16, 4}, 10},
    {"one full segment", {3, 0, 0, 0, 1, 16, 4}, 16},
    {"three segments", {3, 0, 0, 0, 1, 16, 4}, 48},
    {"partial last segment", {3, 0, 0, 0, 1, 16, 4}, 45},
    {"S > layers, untied", {2, 0, 0, 0, 0, 8, 3}, 8 * 5 + 3},
    {"plain multi-head, untied", {2, 4, 4, 16, 0, 12, 4}, 30},
    {"GQA 8/2, head_dim 8", {3, 8, 2, 8, 1, 10, 2}, 27},
};

/* Logits of both ARMT schedules and the final memory state against the reference. */
START_TEST(test_vs_reference) {
    const ref_case *rc = &ref_cases[_i];
    armt_runtime *rt = test_runtime();
    armt_config c = make_cfg(rc->s);
    armt_model *m = make_model(rt, c, 1000 + (uint64_t)_i, 0.05f);
    test_host_model *h = test_host_model_read(m);
    size_t n = rc->n, V = (size_t)c.vocab_size;
    int32_t *ids = malloc(n * sizeof *ids);
    test_random_ids(ids, n, c.vocab_size, 7 + (uint64_t)_i);

    double *ref_logits = malloc(n * V * sizeof *ref_logits);
    ref_state *rs = ref_state_new(&c);
    ck_assert_int_eq(ref_armt_forward(&h->ref, rs, ids, n, ref_logits, NULL), 0);

    armt_ctx *ctx = make_ctx(m);
    size_t nw = armt_ctx_memory_w_count(ctx), nz = armt_ctx_memory_z_count(ctx);
    float *logits = malloc(n * V * sizeof *logits);
    float *w = malloc(nw * sizeof *w), *z = malloc(nz * sizeof *z);
    double *rw = malloc(nw * sizeof *rw);
    for (int sch = ARMT_SCHEDULE_SEQUENTIAL; sch <= ARMT_SCHEDULE_DIAGONAL; sch++) {
        ck_assert_int_eq(armt_ctx_reset(ctx), ARMT_OK);
        run(ctx, (armt_schedule)sch, ARMT_OUTPUT_LOGITS_ALL, ids, n, logits, n * V);
        double v = logits_violation(logits, ref_logits, n * V, TOL_LOGITS);
        ck_assert_msg(v <= 1.0, "%s, %s: logits off by %.3g x the tolerance", rc->what,
                      sch ? "diagonal" : "sequential", v);
        ck_assert_int_eq(armt_ctx_memory_get(ctx, w, z, NULL), ARMT_OK);
        for (size_t i = 0; i < nw; i++)
            rw[i] = rs->w_mem[i];
        ck_assert_msg(max_abs(w, nw) > 0, "%s: W_mem stayed zero: the memory path is inert", rc->what);
        double vw = state_violation(w, rw, nw, TOL_STATE), vz = state_violation(z, rs->z, nz, TOL_STATE);
        ck_assert_msg(vw <= 1.0 && vz <= 1.0, "%s, %s: memory state off (W %.3g, z %.3g x tolerance)",
                      rc->what, sch ? "diagonal" : "sequential", vw, vz);
    }
    free(rw);
    free(w);
    free(z);
    free(logits);
    armt_ctx_free(ctx);
    ref_state_free(rs);
    free(ref_logits);
    free(ids);
    test_host_model_free(h);
    armt_model_free(m);
    armt_runtime_free(rt);
}
END_TEST

/* The comparison above can fail: one weight changed by 1e-2 in the reference is detected. */
START_TEST(test_perturbation_detected) {
    armt_runtime *rt = test_runtime();
    shape s = {2, 0, 0, 0, 1, 8, 2};
    armt_config c = make_cfg(s);
    armt_model *m = make_model(rt, c, 5, 0.05f);
    test_host_model *h = test_host_model_read(m);
    size_t n = 20, V = (size_t)c.vocab_size;
    int32_t ids[20];
    test_random_ids(ids, n, c.vocab_size, 3);
    double *ref = malloc(n * V * sizeof *ref);
    float *ours = malloc(n * V * sizeof *ours);
    armt_ctx *ctx = make_ctx(m);
    run(ctx, ARMT_SCHEDULE_DIAGONAL, ARMT_OUTPUT_LOGITS_ALL, ids, n, ours, n * V);
    const armt_role roles[] = {ARMT_ROLE_WQ, ARMT_ROLE_WD, ARMT_ROLE_WMV, ARMT_ROLE_WMQ, ARMT_ROLE_NORM_IN};
    for (size_t r = 0; r < sizeof roles / sizeof roles[0]; r++) {
        float *wgt = h->role[roles[r]] + armt_role_numel(&c, roles[r]) + 3; /* layer 1, element 3 */
        float saved = *wgt;
        *wgt += 1e-2f;
        ref_state *rs = ref_state_new(&c);
        ck_assert_int_eq(ref_armt_forward(&h->ref, rs, ids, n, ref, NULL), 0);
        ck_assert_msg(logits_violation(ours, ref, n * V, TOL_LOGITS) > 1.0, "perturbing %s went unnoticed",
                      armt_role_name(roles[r]));
        ref_state_free(rs);
        *wgt = saved;
    }
    /* and unperturbed it passes */
    ref_state *rs = ref_state_new(&c);
    ck_assert_int_eq(ref_armt_forward(&h->ref, rs, ids, n, ref, NULL), 0);
    ck_assert(logits_violation(ours, ref, n * V, TOL_LOGITS) <= 1.0);
    ref_state_free(rs);
    armt_ctx_free(ctx);
    free(ref);
    free(ours);
    test_host_model_free(h);
    armt_model_free(m);
    armt_runtime_free(rt);
}
END_TEST

/* Final hidden states, last-token logits, and the full-attention schedule against the reference LLaMA. */
START_TEST(test_outputs_and_full) {
    armt_runtime *rt = test_runtime();
    shape s = {3, 0, 0, 0, 0, 8, 3};
    armt_config c = make_cfg(s);
    armt_model *m = make_model(rt, c, 11, 0.05f);
    test_host_model *h = test_host_model_read(m);
    size_t n = 21, V = (size_t)c.vocab_size, d = (size_t)c.hidden_size;
    int32_t ids[21];
    test_random_ids(ids, n, c.vocab_size, 4);
    double *rl = malloc(n * V * sizeof *rl), *rh = malloc(n * d * sizeof *rh);
    float *hid = malloc(n * d * sizeof *hid), *last = malloc(V * sizeof *last),
          *lg = malloc(n * V * sizeof *lg);
    ref_state *rs = ref_state_new(&c);
    ck_assert_int_eq(ref_armt_forward(&h->ref, rs, ids, n, rl, rh), 0);
    armt_ctx *ctx = make_ctx(m);
    run(ctx, ARMT_SCHEDULE_DIAGONAL, ARMT_OUTPUT_HIDDEN, ids, n, hid, n * d);
    ck_assert_msg(logits_violation(hid, rh, n * d, TOL_LOGITS) <= 1.0, "hidden states differ");
    ck_assert_int_eq(armt_ctx_reset(ctx), ARMT_OK);
    run(ctx, ARMT_SCHEDULE_SEQUENTIAL, ARMT_OUTPUT_LOGITS_LAST, ids, n, last, V);
    ck_assert_msg(logits_violation(last, rl + (n - 1) * V, V, TOL_LOGITS) <= 1.0, "last-token logits differ");

    /* full attention: the base LLaMA over all n positions; it leaves the memory state alone */
    float *w_before = malloc(armt_ctx_memory_w_count(ctx) * sizeof(float));
    float *w_after = malloc(armt_ctx_memory_w_count(ctx) * sizeof(float));
    ck_assert_int_eq(armt_ctx_memory_get(ctx, w_before, NULL, NULL), ARMT_OK);
    ck_assert_int_eq(ref_llama_forward(&h->ref, ids, n, rl, NULL), 0);
    run(ctx, ARMT_SCHEDULE_FULL, ARMT_OUTPUT_LOGITS_ALL, ids, n, lg, n * V);
    ck_assert_msg(logits_violation(lg, rl, n * V, TOL_LOGITS) <= 1.0, "full-attention logits differ");
    ck_assert_int_eq(armt_ctx_memory_get(ctx, w_after, NULL, NULL), ARMT_OK);
    ck_assert(memcmp(w_before, w_after, armt_ctx_memory_w_count(ctx) * sizeof(float)) == 0);
    free(w_before);
    free(w_after);
    armt_ctx_free(ctx);
    ref_state_free(rs);
    free(rl);
    free(rh);
    free(hid);
    free(last);
    free(lg);
    test_host_model_free(h);
    armt_model_free(m);
    armt_runtime_free(rt);
}
END_TEST

/* A runtime with the full schedule's MLP in blocks of mlp_rows rows ($ARMT_MLP_ROWS; NULL: the default),
 * tensor cores emulated or not; fp32 GEMMs on CLBlast. */
static armt_runtime *mlp_runtime(const char *mlp_rows, int emulate) {
    if (mlp_rows) setenv("ARMT_MLP_ROWS", mlp_rows, 1);
    armt_runtime_params p = armt_runtime_default_params();
    p.fp32_gemm = ARMT_FP32_GEMM_CLBLAST;
    if (emulate) p.tensor_cores = ARMT_TC_EMULATE;
    armt_runtime *rt = NULL;
    armt_status st = armt_runtime_create(&p, &rt);
    unsetenv("ARMT_MLP_ROWS");
    ck_assert_msg(st == ARMT_OK, "runtime: %s", armt_last_error());
    return rt;
}

/* The full schedule's MLP in row blocks (8 rows for 45 tokens: five whole blocks and one of 5) gives the
 * bits of the MLP in one piece, for every output (the last token's logits leave the blocks below it out),
 * in fp32, bf16 and bf16 on the (emulated) tensor cores, whose SwiGLU epilogue and staged norm output the
 * blocks reuse; and it takes less device memory. _i: 0 fp32, 1 bf16, 2 bf16 on emulated tensor cores. */
START_TEST(test_full_mlp_blocks) {
    const int emulate = _i == 2;
    armt_runtime *rt[2] = {mlp_runtime(NULL, emulate), mlp_runtime("8", emulate)};
    ck_assert_int_eq(rt[0]->tune.mlp_rows, ARMT_MLP_ROWS_DEFAULT);
    ck_assert_int_eq(rt[1]->tune.mlp_rows, 8);
    armt_config c;
    ck_assert_int_eq(armt_config_preset("tiny", &c), ARMT_OK);
    const size_t n = 45, V = (size_t)c.vocab_size, d = (size_t)c.hidden_size;
    int32_t ids[45];
    test_random_ids(ids, n, c.vocab_size, 31);
    const armt_output outs[3] = {ARMT_OUTPUT_LOGITS_ALL, ARMT_OUTPUT_LOGITS_LAST, ARMT_OUTPUT_HIDDEN};
    const size_t counts[3] = {n * V, V, n * d};
    float *o[2][3];
    uint64_t peak[2];
    for (int b = 0; b < 2; b++) {
        armt_model_params mp = armt_model_default_params();
        mp.seed = 44;
        mp.precision = _i == 0 ? ARMT_PRECISION_FP32 : ARMT_PRECISION_BF16;
        armt_model *m = NULL;
        ck_assert_msg(armt_model_create_random(rt[b], &c, &mp, &m) == ARMT_OK, "%s", armt_last_error());
        armt_ctx *ctx = make_ctx(m);
        peak[b] = 0;
        for (int k = 0; k < 3; k++) {
            o[b][k] = malloc(counts[k] * sizeof(float));
            run(ctx, ARMT_SCHEDULE_FULL, outs[k], ids, n, o[b][k], counts[k]);
            armt_stats stats;
            ck_assert_int_eq(armt_ctx_stats(ctx, &stats), ARMT_OK);
            if (stats.peak_device_bytes > peak[b]) peak[b] = stats.peak_device_bytes;
        }
        armt_ctx_free(ctx);
        armt_model_free(m);
    }
    for (int k = 0; k < 3; k++) {
        ck_assert_msg(memcmp(o[0][k], o[1][k], counts[k] * sizeof(float)) == 0,
                      "kind %d output %d: blocks differ by %g", _i, (int)outs[k],
                      test_rel_err(o[1][k], o[0][k], counts[k]));
        ck_assert(max_abs(o[0][k], counts[k]) > 0.0);
        free(o[0][k]);
        free(o[1][k]);
    }
    ck_assert_msg(peak[1] < peak[0], "peak device bytes: %llu in blocks, %llu whole",
                  (unsigned long long)peak[1], (unsigned long long)peak[0]);
    armt_runtime_free(rt[0]);
    armt_runtime_free(rt[1]);
}
END_TEST

/* A context that ran the full schedule (one cell of all n rows) and then a diagonal call whose cells of n
 * rows would not fit holds the diagonal's scratch, not its cells times n rows, and gives the diagonal's
 * bits; the full schedule runs again after. (The device is made as small as the runtime's bytes after the
 * full call: the diagonal's own scratch fits in the full call's, both shapes at once do not.) */
START_TEST(test_scratch_after_full) {
    armt_runtime *rt = test_runtime();
    shape s = {3, 0, 0, 0, 1, 8, 3};
    armt_config c = make_cfg(s);
    armt_model *m = make_model(rt, c, 23, 0.05f);
    const size_t n_full = 300, n = 60, d = (size_t)c.hidden_size;
    int32_t ids[300];
    test_random_ids(ids, n_full, c.vocab_size, 8);
    float *a = malloc(n * d * 4), *b = malloc(n * d * 4), *f = malloc(n_full * d * 4);
    armt_stats sa, sb;
    armt_ctx *ca = make_ctx(m), *cb = make_ctx(m);
    run(ca, ARMT_SCHEDULE_DIAGONAL, ARMT_OUTPUT_HIDDEN, ids, n, a, n * d);
    ck_assert_int_eq(armt_ctx_stats(ca, &sa), ARMT_OK);
    armt_stats sf;
    run(cb, ARMT_SCHEDULE_FULL, ARMT_OUTPUT_HIDDEN, ids, n_full, f, n_full * d);
    ck_assert_int_eq(armt_ctx_stats(cb, &sf), ARMT_OK);
    const uint64_t mem = rt->info.global_mem_bytes;
    rt->info.global_mem_bytes = rt->device_bytes; /* (one thread: no other allocation now) */
    run(cb, ARMT_SCHEDULE_DIAGONAL, ARMT_OUTPUT_HIDDEN, ids, n, b, n * d);
    rt->info.global_mem_bytes = mem;
    ck_assert_int_eq(armt_ctx_stats(cb, &sb), ARMT_OK);
    ck_assert(memcmp(a, b, n * d * 4) == 0);
    /* at most the two calls' scratch side by side (the ids, the RoPE table and the output rows keep the
     * full call's sizes), where both shapes at once would be 3 cells of n_full rows */
    ck_assert_msg(sb.device_bytes <= sa.device_bytes + sf.device_bytes,
                  "after a full call (%llu bytes) the diagonal holds %llu bytes, alone %llu",
                  (unsigned long long)sf.device_bytes, (unsigned long long)sb.device_bytes,
                  (unsigned long long)sa.device_bytes);
    float *f2 = malloc(n_full * d * 4);
    run(cb, ARMT_SCHEDULE_FULL, ARMT_OUTPUT_HIDDEN, ids, n_full, f2, n_full * d);
    ck_assert(memcmp(f, f2, n_full * d * 4) == 0);
    armt_ctx_free(ca);
    armt_ctx_free(cb);
    free(a), free(b), free(f), free(f2);
    armt_model_free(m);
    armt_runtime_free(rt);
}
END_TEST

/* ======================================================================================================= */
/* Diagonal equals sequential                                                                              */
/* ======================================================================================================= */

/* Lyr in {1, 2, 3, 5}; S in {1, 2, Lyr-1, Lyr, Lyr+3}; with and without a partial last segment. */
START_TEST(test_diagonal_equals_sequential) {
    static const int layer_counts[] = {1, 2, 3, 5};
    const int Lyr = layer_counts[_i];
    armt_runtime *rt = test_runtime();
    shape s = {Lyr, 0, 0, 0, 1, 6, 2};
    armt_config c = make_cfg(s);
    armt_model *m = make_model(rt, c, 100 + (uint64_t)Lyr, 0.03f);
    armt_ctx *a = make_ctx(m), *b = make_ctx(m);
    size_t V = (size_t)c.vocab_size, L = (size_t)c.segment_size;
    const int seg_counts[] = {1, 2, Lyr - 1, Lyr, Lyr + 3};
    size_t nw = armt_ctx_memory_w_count(a), nz = armt_ctx_memory_z_count(a);
    float *wa = malloc(nw * 4), *wb = malloc(nw * 4), *za = malloc(nz * 4), *zb = malloc(nz * 4);
    for (size_t si = 0; si < sizeof seg_counts / sizeof seg_counts[0]; si++) {
        int S = seg_counts[si];
        if (S < 1) continue;
        for (int partial = 0; partial <= 1; partial++) {
            size_t n = (size_t)S * L - (partial ? 2 : 0);
            int32_t *ids = malloc(n * sizeof *ids);
            test_random_ids(ids, n, c.vocab_size, (uint64_t)(S * 10 + partial));
            float *la = malloc(n * V * 4), *lb = malloc(n * V * 4);
            ck_assert_int_eq(armt_ctx_reset(a), ARMT_OK);
            ck_assert_int_eq(armt_ctx_reset(b), ARMT_OK);
            run(a, ARMT_SCHEDULE_SEQUENTIAL, ARMT_OUTPUT_LOGITS_ALL, ids, n, la, n * V);
            armt_stats sa, sb;
            ck_assert_int_eq(armt_ctx_stats(a, &sa), ARMT_OK);
            run(b, ARMT_SCHEDULE_DIAGONAL, ARMT_OUTPUT_LOGITS_ALL, ids, n, lb, n * V);
            ck_assert_int_eq(armt_ctx_stats(b, &sb), ARMT_OK);
            double e = test_rel_err(lb, la, n * V);
            ck_assert_msg(e <= TOL_SCHEDULE, "Lyr %d S %d partial %d: logits rel err %.3g", Lyr, S, partial,
                          e);
            ck_assert_int_eq(armt_ctx_memory_get(a, wa, za, NULL), ARMT_OK);
            ck_assert_int_eq(armt_ctx_memory_get(b, wb, zb, NULL), ARMT_OK);
            ck_assert_msg(max_abs(wa, nw) > 0, "W_mem is zero: memory path inert");
            double ew = test_rel_err(wb, wa, nw), ez = test_rel_err(zb, za, nz);
            ck_assert_msg(ew <= TOL_SCHEDULE && ez <= TOL_SCHEDULE,
                          "Lyr %d S %d partial %d: state rel err %.3g %.3g", Lyr, S, partial, ew, ez);
            /* the schedule's shape */
            ck_assert_uint_eq(sa.steps, (uint64_t)S * (uint64_t)Lyr);
            ck_assert_uint_eq(sb.steps, (uint64_t)(S + Lyr - 1));
            ck_assert_uint_eq(sa.cells, (uint64_t)S * (uint64_t)Lyr);
            ck_assert_uint_eq(sb.cells, (uint64_t)S * (uint64_t)Lyr);
            free(la);
            free(lb);
            free(ids);
        }
    }
    free(wa);
    free(wb);
    free(za);
    free(zb);
    armt_ctx_free(a);
    armt_ctx_free(b);
    armt_model_free(m);
    armt_runtime_free(rt);
}
END_TEST

/* GEMM calls grow with S + Lyr for the diagonal schedule and with S * Lyr for the sequential one. */
START_TEST(test_gemm_calls_scale) {
    armt_runtime *rt = test_runtime();
    shape s = {4, 0, 0, 0, 1, 4, 2};
    armt_config c = make_cfg(s);
    armt_model *m = make_model(rt, c, 9, 0.02f);
    armt_ctx *ctx = make_ctx(m);
    uint64_t diag[2], seq[2];
    const int S_list[2] = {4, 12};
    for (int k = 0; k < 2; k++) {
        size_t n = (size_t)S_list[k] * 4;
        int32_t *ids = malloc(n * sizeof *ids);
        test_random_ids(ids, n, c.vocab_size, 1);
        armt_stats st;
        /* every row (with no output, CLBlast would multiply the last layer's memory rows in calls of their
         * own: test_unread_rows) */
        armt_forward_params fp = armt_forward_default_params();
        fp.all_rows = 1;
        ck_assert_int_eq(armt_ctx_reset(ctx), ARMT_OK);
        ck_assert_msg(armt_forward(ctx, ids, n, &fp) == ARMT_OK, "%s", armt_ctx_last_error(ctx));
        ck_assert_int_eq(armt_ctx_stats(ctx, &st), ARMT_OK);
        diag[k] = st.gemm_calls;
        ck_assert_uint_gt(st.kernel_launches, 0);
        ck_assert_uint_gt(st.device_bytes, 0);
        ck_assert_uint_gt(st.peak_device_bytes, armt_model_device_bytes(m));
        fp.schedule = ARMT_SCHEDULE_SEQUENTIAL;
        ck_assert_int_eq(armt_ctx_reset(ctx), ARMT_OK);
        ck_assert_msg(armt_forward(ctx, ids, n, &fp) == ARMT_OK, "%s", armt_ctx_last_error(ctx));
        ck_assert_int_eq(armt_ctx_stats(ctx, &st), ARMT_OK);
        seq[k] = st.gemm_calls;
        free(ids);
    }
    /* per step at most 15 GEMM calls (q k v o gate up down, W_mq, read, W_mk, W_mv, vprev, update) */
    ck_assert_uint_le(diag[1], 15u * (12 + 4 - 1));
    ck_assert_uint_ge(seq[1], 11u * 12 * 4);
    /* tripling S: sequential calls ~triple, diagonal calls grow by (S + Lyr - 1) ratio 15/7 at most */
    ck_assert_msg(seq[1] * 7 >= seq[0] * 20, "sequential %llu -> %llu", (unsigned long long)seq[0],
                  (unsigned long long)seq[1]);
    ck_assert_msg(diag[1] * 7 <= diag[0] * 16, "diagonal %llu -> %llu", (unsigned long long)diag[0],
                  (unsigned long long)diag[1]);
    armt_ctx_free(ctx);
    armt_model_free(m);
    armt_runtime_free(rt);
}
END_TEST

/* ======================================================================================================= */
/* Profiling chosen per context                                                                            */
/* ======================================================================================================= */

/* Kernel categories with time after one forward of ctx (0: no profile). */
static size_t profile_after_forward(armt_ctx *ctx, int no_profile) {
    int32_t ids[40];
    test_random_ids(ids, 40, armt_model_config(armt_ctx_model(ctx))->vocab_size, 5);
    armt_forward_params p = armt_forward_default_params();
    p.no_profile = no_profile;
    armt_status st = armt_forward(ctx, ids, 40, &p);
    ck_assert_msg(st == ARMT_OK, "forward: %s: %s", armt_status_str(st), armt_ctx_last_error(ctx));
    const char *names[64];
    double secs[64];
    size_t np = armt_ctx_profile(ctx, names, secs, 64);
    for (size_t i = 0; i < np && i < 64; i++) {
        ck_assert_msg(secs[i] > 0.0, "%s: %g s", names[i], secs[i]);
        ck_assert_msg(strcmp(names[i], "copies") != 0, "the profile has no copies category");
    }
    return np;
}

static armt_ctx *ctx_with_profile(armt_model *m, int profile) {
    armt_ctx_params cp = armt_ctx_default_params();
    ck_assert_int_eq(cp.profile, 0);
    cp.profile = profile;
    armt_ctx *ctx = NULL;
    ck_assert_msg(armt_ctx_create(m, &cp, &ctx) == ARMT_OK, "ctx_create: %s", armt_last_error());
    return ctx;
}

/* armt_ctx_params.profile = 1 gives a context a profile on a runtime that does not profile, -1 takes it
 * away on one that does, 0 follows the runtime; other values are refused. */
START_TEST(test_ctx_profile) {
    unsetenv("ARMT_PROFILE");
    armt_config c = make_cfg((shape){2, 0, 0, 0, 0, 16, 4});
    for (int rt_profile = 0; rt_profile < 2; rt_profile++) {
        armt_runtime_params rp = armt_runtime_default_params();
        rp.profile = rt_profile;
        armt_runtime *rt = NULL;
        ck_assert_msg(armt_runtime_create(&rp, &rt) == ARMT_OK, "%s", armt_last_error());
        armt_model_params mp = armt_model_default_params();
        mp.seed = 3;
        armt_model *m = NULL;
        ck_assert_msg(armt_model_create_random(rt, &c, &mp, &m) == ARMT_OK, "%s", armt_last_error());
        for (int want = -1; want <= 1; want++) {
            armt_ctx *ctx = ctx_with_profile(m, want);
            const int on = want == 0 ? rt_profile : want > 0;
            size_t np = profile_after_forward(ctx, 0);
            ck_assert_msg(on ? np > 0 : np == 0, "runtime profile %d, ctx profile %d: %zu categories",
                          rt_profile, want, np);
            /* no_profile still opts one call out: it records nothing and keeps the last profile */
            if (on) ck_assert_uint_eq(profile_after_forward(ctx, 1), np);
            armt_ctx_free(ctx);
        }
        /* NULL params: the runtime's choice */
        armt_ctx *ctx = make_ctx(m);
        ck_assert_uint_eq(profile_after_forward(ctx, 0) > 0, (size_t)rt_profile);
        armt_ctx_free(ctx);
        armt_ctx_params cp = armt_ctx_default_params();
        cp.profile = 2;
        ctx = (armt_ctx *)&cp;
        ck_assert_int_eq(armt_ctx_create(m, &cp, &ctx), ARMT_STATUS_INVALID_ARGUMENT);
        ck_assert_ptr_null(ctx);
        ck_assert_ptr_nonnull(strstr(armt_model_last_error(m), "profile"));
        armt_model_free(m);
        armt_runtime_free(rt);
    }
}
END_TEST

/* ======================================================================================================= */
/* Rows nobody reads                                                                                       */
/* ======================================================================================================= */

/* The GEMM FLOPs booked to weight `name` in the last profiled forward (0 when absent). */
static double gemm_site_flop(const armt_ctx *ctx, const char *name) {
    const char *names[32];
    double secs[32], flop[32];
    size_t ng = armt_ctx_profile_gemm(ctx, names, secs, flop, 32);
    for (size_t i = 0; i < ng && i < 32; i++)
        if (strcmp(names[i], name) == 0) return flop[i];
    return 0.0;
}

/* With no output (or only the last token's logits) the last layer runs its q and o projections, attention
 * and MLP only for the rows something reads: the memory state (and those logits) must stay those of the fp64
 * reference, equal to a run that computes every row (all_rows), in both schedules and in fp32 (CLBlast) and
 * bf16 (our GEMM); the o projection's FLOPs show how many rows were left out. S > Lyr, a partial last
 * segment, and cells of 75 rows, so that the kernels' tiles of 64 rows (GEMM) and blocks of 32 query rows
 * (attention, on a CPU) below the memory rows are really skipped. */
START_TEST(test_unread_rows) {
    armt_runtime_params rp = armt_runtime_default_params();
    rp.profile = 1;
    armt_runtime *rt = NULL;
    ck_assert_msg(armt_runtime_create(&rp, &rt) == ARMT_OK, "%s", armt_last_error());
    shape s = {3, 0, 0, 0, 0, 72, 3};
    armt_config c = make_cfg(s);
    const size_t n = 72 * 4 + 5, V = (size_t)c.vocab_size;
    int32_t ids[72 * 4 + 5];
    test_random_ids(ids, n, c.vocab_size, 77);
    double *rl = malloc(n * V * sizeof *rl);
    float *last = malloc(V * sizeof *last), *last_all = malloc(V * sizeof *last_all);
    const double q = (double)c.n_heads * c.head_dim, d = c.hidden_size;
    for (int prec = 0; prec < 2; prec++) {
        armt_model_params mp = armt_model_default_params();
        mp.seed = 55;
        mp.wmv_std = 0.05f;
        mp.precision = prec ? ARMT_PRECISION_BF16 : ARMT_PRECISION_FP32;
        armt_model *m = NULL;
        ck_assert_msg(armt_model_create_random(rt, &c, &mp, &m) == ARMT_OK, "%s", armt_last_error());
        test_host_model *h = test_host_model_read(m);
        ref_state *rs = ref_state_new(&c);
        ck_assert_int_eq(ref_armt_forward(&h->ref, rs, ids, n, rl, NULL), 0);
        armt_ctx *ctx = make_ctx(m);
        size_t nw = armt_ctx_memory_w_count(ctx), nz = armt_ctx_memory_z_count(ctx);
        float *w_all = malloc(nw * 4), *z_all = malloc(nz * 4), *w = malloc(nw * 4), *z = malloc(nz * 4);
        double *rw = malloc(nw * sizeof *rw);
        for (size_t i = 0; i < nw; i++)
            rw[i] = rs->w_mem[i];
        /* fp32: against the fp64 reference; bf16: its own all-rows run (the bf16 tolerance is the model's) */
        const double tol = prec ? 0.0 : TOL_STATE;
        for (int sch = ARMT_SCHEDULE_SEQUENTIAL; sch <= ARMT_SCHEDULE_DIAGONAL; sch++) {
            const char *what = sch ? "diagonal" : "sequential";
            double wo_all = 0;
            /* mode 0: every row, and the last token's logits from them; 1: no output; 2: the last token's
             * logits, its other rows of the last layer skipped */
            for (int mode = 0; mode < 3; mode++) {
                armt_forward_params fp = armt_forward_default_params();
                fp.schedule = (armt_schedule)sch;
                fp.all_rows = mode == 0;
                fp.output = mode == 1 ? ARMT_OUTPUT_NONE : ARMT_OUTPUT_LOGITS_LAST;
                fp.out = mode == 1 ? NULL : mode == 0 ? last_all : last;
                fp.out_count = mode == 1 ? 0 : V;
                ck_assert_int_eq(armt_ctx_reset(ctx), ARMT_OK);
                ck_assert_msg(armt_forward(ctx, ids, n, &fp) == ARMT_OK, "%s", armt_ctx_last_error(ctx));
                float *wd = mode == 0 ? w_all : w, *zd = mode == 0 ? z_all : z;
                ck_assert_int_eq(armt_ctx_memory_get(ctx, wd, zd, NULL), ARMT_OK);
                ck_assert_msg(max_abs(wd, nw) > 0, "W_mem is zero: memory path inert");
                const double wo = gemm_site_flop(ctx, "wo"), wq = gemm_site_flop(ctx, "wq");
                ck_assert(wo > 0);
                ck_assert(wq == wo); /* (q and o: the same shape, and the same rows) */
                if (mode == 0) {
                    wo_all = wo;
                    if (!prec) {
                        double vw = state_violation(w_all, rw, nw, TOL_STATE),
                               vz = state_violation(z_all, rs->z, nz, TOL_STATE);
                        ck_assert_msg(vw <= 1.0 && vz <= 1.0, "%s, all rows: state off (%.3g, %.3g)", what,
                                      vw, vz);
                    }
                    continue;
                }
                /* rows left out of the last layer's o projection: every token's, or all but the last one */
                const double rows_out = mode == 1 ? (double)n : (double)n - 1;
                ck_assert_msg(fabs(wo - (wo_all - 2.0 * q * d * rows_out)) <= 1e-9 * wo_all,
                              "%s %s mode %d: wo %.6g FLOP, all rows %.6g", prec ? "bf16" : "fp32", what,
                              mode, wo, wo_all);
                double ew = test_rel_err(w, w_all, nw), ez = test_rel_err(z, z_all, nz);
                ck_assert_msg(ew <= tol && ez <= tol, "%s %s mode %d: state vs all rows %.3g %.3g",
                              prec ? "bf16" : "fp32", what, mode, ew, ez);
                if (mode == 2) {
                    double el = test_rel_err(last, last_all, V);
                    ck_assert_msg(el <= (prec ? 0.0 : TOL_SCHEDULE), "%s %s: last logits vs all rows %.3g",
                                  prec ? "bf16" : "fp32", what, el);
                    if (!prec) {
                        double v = logits_violation(last, rl + (n - 1) * V, V, TOL_LOGITS);
                        ck_assert_msg(v <= 1.0, "%s: last logits off the reference (%.3g)", what, v);
                    }
                }
            }
        }
        free(w_all), free(z_all), free(w), free(z), free(rw);
        armt_ctx_free(ctx);
        ref_state_free(rs);
        test_host_model_free(h);
        armt_model_free(m);
    }
    free(rl), free(last), free(last_all);
    armt_runtime_free(rt);
}
END_TEST

/* ======================================================================================================= */
/* State across calls                                                                                      */
/* ======================================================================================================= */

/* One call or two calls split at a segment boundary: the same logits and memory state. */
START_TEST(test_split_calls) {
    armt_runtime *rt = test_runtime();
    shape s = {3, 0, 0, 0, 1, 8, 3};
    armt_config c = make_cfg(s);
    armt_model *m = make_model(rt, c, 21, 0.05f);
    armt_ctx *a = make_ctx(m), *b = make_ctx(m);
    size_t n = 37, cut = 16, V = (size_t)c.vocab_size;
    int32_t ids[37];
    test_random_ids(ids, n, c.vocab_size, 99);
    float *la = malloc(n * V * 4), *lb = malloc(n * V * 4);
    size_t nw = armt_ctx_memory_w_count(a), nz = armt_ctx_memory_z_count(a);
    float *wa = malloc(nw * 4), *wb = malloc(nw * 4), *za = malloc(nz * 4), *zb = malloc(nz * 4);
    for (int sch = ARMT_SCHEDULE_SEQUENTIAL; sch <= ARMT_SCHEDULE_DIAGONAL; sch++) {
        ck_assert_int_eq(armt_ctx_reset(a), ARMT_OK);
        ck_assert_int_eq(armt_ctx_reset(b), ARMT_OK);
        run(a, (armt_schedule)sch, ARMT_OUTPUT_LOGITS_ALL, ids, n, la, n * V);
        run(b, (armt_schedule)sch, ARMT_OUTPUT_LOGITS_ALL, ids, cut, lb, cut * V);
        run(b, (armt_schedule)sch, ARMT_OUTPUT_LOGITS_ALL, ids + cut, n - cut, lb + cut * V, (n - cut) * V);
        ck_assert_msg(test_rel_err(lb, la, n * V) <= 1e-6, "split logits differ: %g",
                      test_rel_err(lb, la, n * V));
        ck_assert_int_eq(armt_ctx_memory_get(a, wa, za, NULL), ARMT_OK);
        ck_assert_int_eq(armt_ctx_memory_get(b, wb, zb, NULL), ARMT_OK);
        ck_assert(test_rel_err(wb, wa, nw) <= 1e-6 && test_rel_err(zb, za, nz) <= 1e-6);
    }
    /* a split that is not at a segment boundary changes the segmentation, hence the result */
    ck_assert_int_eq(armt_ctx_reset(b), ARMT_OK);
    run(b, ARMT_SCHEDULE_DIAGONAL, ARMT_OUTPUT_LOGITS_ALL, ids, 5, lb, 5 * V);
    run(b, ARMT_SCHEDULE_DIAGONAL, ARMT_OUTPUT_LOGITS_ALL, ids + 5, n - 5, lb + 5 * V, (n - 5) * V);
    ck_assert(test_rel_err(lb, la, n * V) > 1e-4);
    free(la);
    free(lb);
    free(wa);
    free(wb);
    free(za);
    free(zb);
    armt_ctx_free(a);
    armt_ctx_free(b);
    armt_model_free(m);
    armt_runtime_free(rt);
}
END_TEST

/* Reset, read-back and restore round-trip exactly; a restored state continues exactly like the original;
 * a state file round-trips bit-exactly and is refused by another model. */
START_TEST(test_state_roundtrip) {
    armt_runtime *rt = test_runtime();
    shape s = {2, 0, 0, 0, 1, 8, 2};
    armt_config c = make_cfg(s);
    armt_model *m = make_model(rt, c, 31, 0.05f);
    armt_ctx *ctx = make_ctx(m);
    size_t nw = armt_ctx_memory_w_count(ctx), nz = armt_ctx_memory_z_count(ctx), V = (size_t)c.vocab_size;
    float *w0 = malloc(nw * 4), *z0 = malloc(nz * 4), *w1 = malloc(nw * 4), *z1 = malloc(nz * 4);
    uint8_t wr0[2], wr1[2];
    int32_t ids[24];
    test_random_ids(ids, 24, c.vocab_size, 5);
    run(ctx, ARMT_SCHEDULE_DIAGONAL, ARMT_OUTPUT_NONE, ids, 16, NULL, 0);
    ck_assert_int_eq(armt_ctx_memory_get(ctx, w0, z0, wr0), ARMT_OK);
    ck_assert(wr0[0] == 1 && wr0[1] == 1);
    ck_assert(max_abs(w0, nw) > 0 && max_abs(z0, nz) > 0);

    ck_assert_int_eq(armt_ctx_reset(ctx), ARMT_OK);
    ck_assert_int_eq(armt_ctx_memory_get(ctx, w1, z1, wr1), ARMT_OK);
    ck_assert(max_abs(w1, nw) == 0 && max_abs(z1, nz) == 0 && wr1[0] == 0 && wr1[1] == 0);

    ck_assert_int_eq(armt_ctx_memory_set(ctx, w0, z0, wr0), ARMT_OK);
    ck_assert_int_eq(armt_ctx_memory_get(ctx, w1, z1, wr1), ARMT_OK);
    ck_assert(memcmp(w0, w1, nw * 4) == 0 && memcmp(z0, z1, nz * 4) == 0 && memcmp(wr0, wr1, 2) == 0);

    /* continuing from the restored state == continuing from the original one */
    float *la = malloc(8 * V * 4), *lb = malloc(8 * V * 4);
    armt_ctx *other = make_ctx(m);
    run(other, ARMT_SCHEDULE_DIAGONAL, ARMT_OUTPUT_NONE, ids, 16, NULL, 0);
    run(other, ARMT_SCHEDULE_DIAGONAL, ARMT_OUTPUT_LOGITS_ALL, ids + 16, 8, la, 8 * V);
    run(ctx, ARMT_SCHEDULE_DIAGONAL, ARMT_OUTPUT_LOGITS_ALL, ids + 16, 8, lb, 8 * V);
    ck_assert(memcmp(la, lb, 8 * V * 4) == 0);

    /* file round trip */
    char path[] = "/tmp/armt-state-XXXXXX";
    int fd = mkstemp(path);
    ck_assert_int_ge(fd, 0);
    close(fd);
    ck_assert_int_eq(armt_ctx_memory_set(ctx, w0, z0, wr0), ARMT_OK);
    ck_assert_msg(armt_ctx_memory_save(ctx, path) == ARMT_OK, "%s", armt_ctx_last_error(ctx));
    ck_assert_int_eq(armt_ctx_reset(ctx), ARMT_OK);
    ck_assert_msg(armt_ctx_memory_load(ctx, path) == ARMT_OK, "%s", armt_ctx_last_error(ctx));
    ck_assert_int_eq(armt_ctx_memory_get(ctx, w1, z1, wr1), ARMT_OK);
    ck_assert(memcmp(w0, w1, nw * 4) == 0 && memcmp(z0, z1, nz * 4) == 0 && memcmp(wr0, wr1, 2) == 0);

    /* another model (same shapes, other seed) refuses it and keeps its state */
    armt_model *m2 = make_model(rt, c, 32, 0.05f);
    armt_ctx *c2 = make_ctx(m2);
    ck_assert_int_eq(armt_ctx_memory_load(c2, path), ARMT_STATUS_MODEL_MISMATCH);
    ck_assert_ptr_nonnull(strstr(armt_ctx_last_error(c2), "another model"));
    ck_assert_int_eq(armt_ctx_memory_get(c2, w1, NULL, wr1), ARMT_OK);
    ck_assert(max_abs(w1, nw) == 0 && wr1[0] == 0);
    remove(path);
    free(la);
    free(lb);
    free(w0);
    free(z0);
    free(w1);
    free(z1);
    armt_ctx_free(c2);
    armt_model_free(m2);
    armt_ctx_free(other);
    armt_ctx_free(ctx);
    armt_model_free(m);
    armt_runtime_free(rt);
}
END_TEST

/* Bad input returns a specific status and leaves the memory state exactly as it was. */
START_TEST(test_bad_input_keeps_state) {
    armt_runtime *rt = test_runtime();
    shape s = {2, 0, 0, 0, 1, 8, 2};
    armt_config c = make_cfg(s);
    armt_model *m = make_model(rt, c, 41, 0.05f);
    armt_ctx *ctx = make_ctx(m);
    size_t nw = armt_ctx_memory_w_count(ctx);
    float *w0 = malloc(nw * 4), *w1 = malloc(nw * 4);
    int32_t ids[16];
    test_random_ids(ids, 16, c.vocab_size, 6);
    run(ctx, ARMT_SCHEDULE_DIAGONAL, ARMT_OUTPUT_NONE, ids, 16, NULL, 0);
    ck_assert_int_eq(armt_ctx_memory_get(ctx, w0, NULL, NULL), ARMT_OK);

    armt_forward_params p = armt_forward_default_params();
    ids[9] = c.vocab_size; /* out of range */
    ck_assert_int_eq(armt_forward(ctx, ids, 16, &p), ARMT_STATUS_TOKEN_OUT_OF_RANGE);
    ck_assert_ptr_nonnull(strstr(armt_ctx_last_error(ctx), "token 9"));
    ids[9] = -1;
    ck_assert_int_eq(armt_forward(ctx, ids, 16, &p), ARMT_STATUS_TOKEN_OUT_OF_RANGE);
    ids[9] = 0;
    ck_assert_int_eq(armt_forward(ctx, ids, 0, &p), ARMT_STATUS_EMPTY_INPUT);
    ck_assert_int_eq(armt_forward(ctx, NULL, 4, &p), ARMT_STATUS_INVALID_ARGUMENT);
    ck_assert_int_eq(armt_forward(ctx, ids, 4, NULL), ARMT_STATUS_INVALID_ARGUMENT);
    p.output = ARMT_OUTPUT_LOGITS_ALL;
    float small[4];
    p.out = small;
    p.out_count = 4;
    ck_assert_int_eq(armt_forward(ctx, ids, 4, &p), ARMT_STATUS_INVALID_ARGUMENT);
    ck_assert_ptr_nonnull(strstr(armt_ctx_last_error(ctx), "needs"));
    p.out = NULL;
    ck_assert_int_eq(armt_forward(ctx, ids, 4, &p), ARMT_STATUS_INVALID_ARGUMENT);
    p.output = (armt_output)42;
    ck_assert_int_eq(armt_forward(ctx, ids, 4, &p), ARMT_STATUS_INVALID_ARGUMENT);
    p.output = ARMT_OUTPUT_NONE;
    p.schedule = (armt_schedule)7;
    ck_assert_int_eq(armt_forward(ctx, ids, 4, &p), ARMT_STATUS_INVALID_ARGUMENT);
    ck_assert_int_eq(armt_ctx_memory_get(ctx, w1, NULL, NULL), ARMT_OK);
    ck_assert(memcmp(w0, w1, nw * 4) == 0);
    /* and the context still works */
    p.schedule = ARMT_SCHEDULE_DIAGONAL;
    ck_assert_int_eq(armt_forward(ctx, ids, 16, &p), ARMT_OK);
    free(w0);
    free(w1);
    armt_ctx_free(ctx);
    armt_model_free(m);
    armt_runtime_free(rt);
}
END_TEST

/* Weights split over several buffers (as when one role exceeds the device's maximum allocation) give the
 * same results as one buffer per role; both precisions. */
START_TEST(test_chunked_weights) {
    armt_runtime *rt = test_runtime();
    shape s = {5, 0, 0, 0, 1, 8, 2};
    armt_config c = make_cfg(s);
    size_t n = 45, V = (size_t)c.vocab_size;
    int32_t ids[45];
    test_random_ids(ids, n, c.vocab_size, 12);
    float *a = malloc(n * V * 4), *b = malloc(n * V * 4);
    for (int prec = ARMT_PRECISION_FP32; prec <= ARMT_PRECISION_BF16; prec++) {
        armt_model_params p = armt_model_default_params();
        p.seed = 77;
        p.wmv_std = 0.05f;
        p.precision = (armt_precision)prec;
        armt_model *whole = NULL, *split = NULL;
        ck_assert_int_eq(armt_model_create_random(rt, &c, &p, &whole), ARMT_OK);
        /* 2 layers of W_q (64 x 64 floats) per buffer: 3 chunks for 5 layers */
        setenv("ARMT_WEIGHT_CHUNK_BYTES", prec == ARMT_PRECISION_FP32 ? "40000" : "20000", 1);
        ck_assert_msg(armt_model_create_random(rt, &c, &p, &split) == ARMT_OK, "%s", armt_last_error());
        unsetenv("ARMT_WEIGHT_CHUNK_BYTES");
        ck_assert_int_eq(split->w[ARMT_ROLE_WQ].n_chunks, 3);
        ck_assert_int_eq(whole->w[ARMT_ROLE_WQ].n_chunks, 1);
        for (int sch = ARMT_SCHEDULE_SEQUENTIAL; sch <= ARMT_SCHEDULE_DIAGONAL; sch++) {
            armt_ctx *ca = make_ctx(whole), *cb = make_ctx(split);
            run(ca, (armt_schedule)sch, ARMT_OUTPUT_LOGITS_ALL, ids, n, a, n * V);
            run(cb, (armt_schedule)sch, ARMT_OUTPUT_LOGITS_ALL, ids, n, b, n * V);
            ck_assert_msg(test_rel_err(b, a, n * V) <= 1e-6,
                          "precision %d schedule %d: chunked differs by %g", prec, sch,
                          test_rel_err(b, a, n * V));
            armt_ctx_free(ca);
            armt_ctx_free(cb);
        }
        armt_model_free(whole);
        armt_model_free(split);
    }
    free(a);
    free(b);
    armt_runtime_free(rt);
}
END_TEST

static Suite *suite(void) {
    Suite *s = suite_create("forward");
    TCase *tc = test_tcase(s, "reference", 900);
    tcase_add_loop_test(tc, test_vs_reference, 0, (int)(sizeof ref_cases / sizeof ref_cases[0]));
    tcase_add_test(tc, test_perturbation_detected);
    tcase_add_test(tc, test_outputs_and_full);
    tcase_add_loop_test(tc, test_full_mlp_blocks, 0, 3);
    tcase_add_test(tc, test_scratch_after_full);
    tc = test_tcase(s, "schedules", 600);
    tcase_add_loop_test(tc, test_diagonal_equals_sequential, 0, 4);
    tcase_add_test(tc, test_gemm_calls_scale);
    tcase_add_test(tc, test_unread_rows);
    tcase_add_test(tc, test_ctx_profile);
    tcase_add_test(tc, test_chunked_weights);
    tc = test_tcase(s, "state", 600);
    tcase_add_test(tc, test_split_calls);
    tcase_add_test(tc, test_state_roundtrip);
    tcase_add_test(tc, test_bad_input_keeps_state);
    return s;
}

int main(void) { return test_run_suite(suite(), 1); }
