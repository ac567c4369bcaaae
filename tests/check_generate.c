/*
 * check_generate.c - generation against the double-precision reference (greedy tokens = argmax of tail
 * re-runs under the reference semantics), against the ARMT authors' own generate() (fixture), and the
 * sampling, stop and state rules.
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

static armt_model *tiny_model(armt_runtime *rt, int layers, int segment, uint64_t seed) {
    armt_config c;
    ck_assert_int_eq(armt_config_preset("tiny", &c), ARMT_OK);
    c.n_layers = layers;
    c.segment_size = segment;
    c.num_mem_tokens = 3;
    armt_model_params p = armt_model_default_params();
    p.seed = seed;
    p.wmv_std = 0.05f;
    armt_model *m = NULL;
    ck_assert_msg(armt_model_create_random(rt, &c, &p, &m) == ARMT_OK, "%s", armt_last_error());
    return m;
}

/* Greedy tokens equal the reference's greedy decoding (each token the argmax of a re-run of the whole
 * tail under the same semantics), for a partial and a full last segment, both prefix schedules; the second
 * with the queue flushed after every decode layer ($ARMT_DECODE_FLUSH=1) and the decode attention's combine
 * in the attention's launch ($ARMT_DECODE_FUSE=1). */
START_TEST(test_greedy_vs_reference) {
    armt_runtime *rt = test_runtime();
    armt_model *m = tiny_model(rt, 3, 8, 500);
    const armt_config *c = armt_model_config(m);
    test_host_model *h = test_host_model_read(m);
    const size_t lens[2] = {21, 24}; /* tail of 5, and a full last segment of 8 */
    const int max_new = 10;
    for (int li = 0; li < 2; li++) {
        size_t n = lens[li];
        int32_t prompt[24], ref_tok[16], tok[16];
        test_random_ids(prompt, n, c->vocab_size, 40 + (uint64_t)li);
        ref_state *rs = ref_state_new(c);
        int nref = ref_armt_generate_greedy(&h->ref, rs, prompt, n, max_new, -1, ref_tok);
        ck_assert_int_eq(nref, max_new);
        rt->tune.decode_flush = li; /* ($ARMT_DECODE_FLUSH; 0 the default) */
        rt->tune.decode_fuse = li;  /* ($ARMT_DECODE_FUSE: the attention's combine in its launch) */
        for (int sch = ARMT_SCHEDULE_SEQUENTIAL; sch <= ARMT_SCHEDULE_DIAGONAL; sch++) {
            armt_ctx *ctx = NULL;
            ck_assert_int_eq(armt_ctx_create(m, NULL, &ctx), ARMT_OK);
            armt_generate_params gp = armt_generate_default_params();
            gp.schedule = (armt_schedule)sch;
            gp.max_new_tokens = max_new;
            armt_generate_result res;
            armt_status st = armt_generate(ctx, prompt, n, &gp, tok, 16, &res);
            ck_assert_msg(st == ARMT_OK, "generate: %s", armt_ctx_last_error(ctx));
            ck_assert_uint_eq(res.n_tokens, (size_t)max_new);
            ck_assert_uint_eq(res.tail_tokens, li == 0 ? 5 : 8);
            for (int i = 0; i < max_new; i++)
                ck_assert_msg(tok[i] == ref_tok[i], "prompt %zu, schedule %d: token %d is %d, reference %d",
                              n, sch, i, tok[i], ref_tok[i]);
            /* the memory state is the one after the prompt's earlier segments */
            size_t nw = armt_ctx_memory_w_count(ctx);
            float *w = malloc(nw * 4);
            ck_assert_int_eq(armt_ctx_memory_get(ctx, w, NULL, NULL), ARMT_OK);
            double worst = 0, mx = 0;
            for (size_t i = 0; i < nw; i++) {
                worst = fmax(worst, fabs(w[i] - rs->w_mem[i]));
                mx = fmax(mx, fabs(rs->w_mem[i]));
            }
            ck_assert_msg(mx > 0 && worst <= 1e-4 * mx, "state after generate: %g of %g", worst, mx);
            free(w);
            armt_ctx_free(ctx);
        }
        ref_state_free(rs);
    }
    test_host_model_free(h);
    armt_model_free(m);
    armt_runtime_free(rt);
}
END_TEST

/* The ARMT authors' AssociativeRecurrentWrapper.generate on their own checkpoint (fixture). */
START_TEST(test_generate_fixture) {
    char path[4096];
    snprintf(path, sizeof path, "%s/armt_ref/generate.safetensors", test_data_dir());
    armt_err err;
    armt_err_init(&err);
    st_archive *a = NULL;
    ck_assert_msg(st_open(path, &a, &err) == ARMT_OK, "%s", armt_err_msg(&err));
    armt_runtime *rt = test_runtime();
    snprintf(path, sizeof path, "%s/armt_ref/model_saved.safetensors", test_data_dir());
    armt_model *m = NULL;
    ck_assert_msg(armt_model_load(rt, path, NULL, &m) == ARMT_OK, "%s", armt_last_error());
    static const char *const names[2][2] = {{"prompt_a", "tokens_a"}, {"prompt_b", "tokens_b"}};
    for (int k = 0; k < 2; k++) {
        const st_tensor *tp = st_find(a, names[k][0]), *tt = st_find(a, names[k][1]);
        ck_assert(tp && tt);
        float pv[64], tv[64];
        ck_assert_int_eq(st_read_f32(a, tp, 0, tp->numel, pv, &err), ARMT_OK);
        ck_assert_int_eq(st_read_f32(a, tt, 0, tt->numel, tv, &err), ARMT_OK);
        int32_t prompt[64], tok[64];
        for (uint64_t i = 0; i < tp->numel; i++)
            prompt[i] = (int32_t)pv[i];
        armt_ctx *ctx = NULL;
        ck_assert_int_eq(armt_ctx_create(m, NULL, &ctx), ARMT_OK);
        armt_generate_params gp = armt_generate_default_params();
        gp.max_new_tokens = (int)tt->numel;
        ck_assert_msg(armt_generate(ctx, prompt, (size_t)tp->numel, &gp, tok, 64, NULL) == ARMT_OK, "%s",
                      armt_ctx_last_error(ctx));
        for (uint64_t i = 0; i < tt->numel; i++)
            ck_assert_msg(tok[i] == (int32_t)tv[i], "%s: token %llu is %d, reference %d", names[k][1],
                          (unsigned long long)i, tok[i], (int32_t)tv[i]);
        armt_ctx_free(ctx);
    }
    armt_model_free(m);
    armt_runtime_free(rt);
    st_close(a);
    armt_err_free(&err);
}
END_TEST

/* The host's greedy choice (armt_generate's sample at temperature 0): the largest logit, the first id on
 * ties; a NaN never wins, and a NaN at id 0 is never replaced */
static int host_argmax(const float *l, int V) {
    int best = 0;
    for (int i = 1; i < V; i++)
        if (l[i] > l[best]) best = i;
    return best;
}

/* armt_rows_argmax, the device's greedy choice, against host_argmax on rows made to trip it: the maximum
 * twice (first id wins), at the last id of a length that is no multiple of the kernel's stride, a NaN at
 * id 0, NaNs elsewhere, every logit -inf, ties in every work-item's share. */
START_TEST(test_device_argmax) {
    armt_runtime *rt = test_runtime();
    armt_model *m = tiny_model(rt, 1, 8, 700);
    armt_ctx *ctx = NULL;
    ck_assert_int_eq(armt_ctx_create(m, NULL, &ctx), ARMT_OK);
    const int V = 5003, rows = 7;
    float *l = malloc((size_t)V * rows * 4);
    int got[7];
    ck_assert(l);
    uint64_t seed = 5;
    for (int i = 0; i < V * rows; i++) {
        seed = seed * 6364136223846793005ULL + 1442695040888963407ULL;
        l[i] = (float)((seed >> 40) % 1000) / 100.0f; /* many equal values: ties everywhere */
    }
    l[0 * V + 4000] = 50.0f, l[0 * V + 17] = 50.0f; /* twice: 17 */
    l[1 * V + V - 1] = 60.0f;                       /* the last id */
    l[2 * V + 0] = NAN, l[2 * V + 9] = 70.0f;       /* NaN at 0: 0 */
    l[3 * V + 3] = NAN, l[3 * V + 2500] = NAN;      /* NaNs skipped */
    l[3 * V + 1024] = 80.0f;                        /* (one work-item's later round) */
    for (int i = 0; i < V; i++)
        l[4 * V + i] = -INFINITY; /* all -inf: 0 */
    for (int i = 0; i < V; i++)
        l[5 * V + i] = 1.0f;                        /* all equal: 0 */
    l[6 * V + 256] = 90.0f, l[6 * V + 512] = 90.0f; /* the same work-item, two rounds: 256 */
    cl_int e;
    cl_mem bl = clCreateBuffer(ctx->rt->context, CL_MEM_READ_ONLY | CL_MEM_COPY_HOST_PTR,
                               (size_t)V * rows * 4, l, &e);
    ck_assert_int_eq(e, CL_SUCCESS);
    cl_mem bo = clCreateBuffer(ctx->rt->context, CL_MEM_READ_WRITE, sizeof got, NULL, &e);
    ck_assert_int_eq(e, CL_SUCCESS);
    cl_kernel k = ctx->k[ARMT_K_ROWS_ARGMAX];
    ck_assert_int_eq(clSetKernelArg(k, 0, sizeof bl, &bl), CL_SUCCESS);
    ck_assert_int_eq(clSetKernelArg(k, 1, sizeof V, &V), CL_SUCCESS);
    ck_assert_int_eq(clSetKernelArg(k, 2, sizeof bo, &bo), CL_SUCCESS);
    const size_t wg = (size_t)ctx->rt->tune.row_wg, gws[2] = {wg, (size_t)rows}, lws[2] = {wg, 1};
    ck_assert_int_eq(clEnqueueNDRangeKernel(ctx->queue, k, 2, NULL, gws, lws, 0, NULL, NULL), CL_SUCCESS);
    ck_assert_int_eq(clEnqueueReadBuffer(ctx->queue, bo, CL_TRUE, 0, sizeof got, got, 0, NULL, NULL),
                     CL_SUCCESS);
    const int want_fixed[7] = {17, V - 1, 0, 1024, 0, 0, 256};
    for (int r = 0; r < rows; r++) {
        ck_assert_int_eq(host_argmax(l + (size_t)r * V, V), want_fixed[r]);
        ck_assert_msg(got[r] == want_fixed[r], "row %d: the device picked %d, the host %d", r, got[r],
                      want_fixed[r]);
    }
    /* by P work-groups a row (armt_rows_argmax_part; ranges that split the ties, the NaNs and the maxima
     * apart, and empty ones at P = 64 > V / 78), the pairs picked from by a second launch
     * (armt_rows_argmax_final) or by each row's last work-group (counters, which come back to zero) */
    const cl_uint zeros[7] = {0};
    cl_mem bp = clCreateBuffer(ctx->rt->context, CL_MEM_READ_WRITE, (size_t)rows * 64 * 8, NULL, &e);
    ck_assert_int_eq(e, CL_SUCCESS);
    cl_mem bc = clCreateBuffer(ctx->rt->context, CL_MEM_READ_WRITE | CL_MEM_COPY_HOST_PTR, sizeof zeros,
                               (void *)zeros, &e);
    ck_assert_int_eq(e, CL_SUCCESS);
    const int parts[4] = {1, 3, 7, 64};
    for (int pi = 0; pi < 4; pi++)
        for (int fused = 0; fused < 2; fused++) {
            const int P = parts[pi];
            cl_mem none = NULL, cnt = fused ? bc : none;
            k = ctx->k[ARMT_K_ROWS_ARGMAX_PART];
            e = clSetKernelArg(k, 0, sizeof bl, &bl);
            e |= clSetKernelArg(k, 1, sizeof V, &V);
            e |= clSetKernelArg(k, 2, sizeof bp, &bp);
            e |= clSetKernelArg(k, 3, sizeof cnt, &cnt);
            e |= clSetKernelArg(k, 4, sizeof bo, &bo);
            ck_assert_int_eq(e, CL_SUCCESS);
            const size_t gp[2] = {wg * (size_t)P, (size_t)rows};
            memset(got, 0x7f, sizeof got);
            ck_assert_int_eq(clEnqueueWriteBuffer(ctx->queue, bo, CL_TRUE, 0, sizeof got, got, 0, NULL, NULL),
                             CL_SUCCESS);
            ck_assert_int_eq(clEnqueueNDRangeKernel(ctx->queue, k, 2, NULL, gp, lws, 0, NULL, NULL),
                             CL_SUCCESS);
            if (!fused) {
                k = ctx->k[ARMT_K_ROWS_ARGMAX_FINAL];
                e = clSetKernelArg(k, 0, sizeof bl, &bl);
                e |= clSetKernelArg(k, 1, sizeof V, &V);
                e |= clSetKernelArg(k, 2, sizeof bp, &bp);
                e |= clSetKernelArg(k, 3, sizeof P, &P);
                e |= clSetKernelArg(k, 4, sizeof bo, &bo);
                ck_assert_int_eq(e, CL_SUCCESS);
                ck_assert_int_eq(clEnqueueNDRangeKernel(ctx->queue, k, 2, NULL, gws, lws, 0, NULL, NULL),
                                 CL_SUCCESS);
            }
            ck_assert_int_eq(clEnqueueReadBuffer(ctx->queue, bo, CL_TRUE, 0, sizeof got, got, 0, NULL, NULL),
                             CL_SUCCESS);
            cl_uint cv[7];
            ck_assert_int_eq(clEnqueueReadBuffer(ctx->queue, bc, CL_TRUE, 0, sizeof cv, cv, 0, NULL, NULL),
                             CL_SUCCESS);
            for (int r = 0; r < rows; r++) {
                ck_assert_msg(got[r] == want_fixed[r],
                              "P %d, fused %d, row %d: the device picked %d, the host %d", P, fused, r,
                              got[r], want_fixed[r]);
                ck_assert_msg(cv[r] == 0, "P %d: row %d's counter left at %u", P, r, cv[r]);
            }
        }
    clReleaseMemObject(bp);
    clReleaseMemObject(bc);
    clReleaseMemObject(bl);
    clReleaseMemObject(bo);
    free(l);
    armt_ctx_free(ctx);
    armt_model_free(m);
    armt_runtime_free(rt);
}
END_TEST

static int count_calls(int32_t tok, void *user) {
    (void)tok;
    int *n = user;
    return ++*n >= 3; /* stop after the third token */
}

/* Seeded sampling is reproducible; stop id and callback stops; a failure leaves the state unchanged. */
START_TEST(test_sampling_and_stops) {
    armt_runtime *rt = test_runtime();
    armt_model *m = tiny_model(rt, 2, 8, 600);
    const armt_config *c = armt_model_config(m);
    armt_ctx *ctx = NULL;
    ck_assert_int_eq(armt_ctx_create(m, NULL, &ctx), ARMT_OK);
    int32_t prompt[19], a[12], b[12], g[12];
    test_random_ids(prompt, 19, c->vocab_size, 7);
    armt_generate_params gp = armt_generate_default_params();
    gp.max_new_tokens = 12;
    gp.temperature = 30.0f; /* tiny random models have very peaked logits */
    gp.top_k = 40;
    gp.top_p = 0.95f;
    gp.seed = 1;
    ck_assert_int_eq(armt_generate(ctx, prompt, 19, &gp, a, 12, NULL), ARMT_OK);
    ck_assert_int_eq(armt_ctx_reset(ctx), ARMT_OK);
    ck_assert_int_eq(armt_generate(ctx, prompt, 19, &gp, b, 12, NULL), ARMT_OK);
    ck_assert(memcmp(a, b, sizeof a) == 0);
    /* another seed gives another sequence (12 draws at temperature 30 over 40 candidates) */
    gp.seed = 2;
    ck_assert_int_eq(armt_ctx_reset(ctx), ARMT_OK);
    ck_assert_int_eq(armt_generate(ctx, prompt, 19, &gp, b, 12, NULL), ARMT_OK);
    ck_assert(memcmp(a, b, sizeof a) != 0);
    /* top_k = 1 is greedy */
    gp.top_k = 1;
    ck_assert_int_eq(armt_ctx_reset(ctx), ARMT_OK);
    ck_assert_int_eq(armt_generate(ctx, prompt, 19, &gp, a, 12, NULL), ARMT_OK);
    armt_generate_params greedy = armt_generate_default_params();
    greedy.max_new_tokens = 12;
    ck_assert_int_eq(armt_ctx_reset(ctx), ARMT_OK);
    ck_assert_int_eq(armt_generate(ctx, prompt, 19, &greedy, g, 12, NULL), ARMT_OK);
    ck_assert(memcmp(a, g, sizeof a) == 0);
    /* stop id: the greedy sequence's 4th token */
    greedy.stop_id = g[3];
    int first = 0;
    while (g[first] != g[3])
        first++;
    armt_generate_result res;
    ck_assert_int_eq(armt_ctx_reset(ctx), ARMT_OK);
    ck_assert_int_eq(armt_generate(ctx, prompt, 19, &greedy, a, 12, &res), ARMT_OK);
    ck_assert_uint_eq(res.n_tokens, (size_t)first + 1);
    ck_assert_int_eq(res.stopped, 1);
    /* callback stop */
    int calls = 0;
    greedy.stop_id = -1;
    greedy.on_token = count_calls;
    greedy.user_data = &calls;
    ck_assert_int_eq(armt_ctx_reset(ctx), ARMT_OK);
    ck_assert_int_eq(armt_generate(ctx, prompt, 19, &greedy, NULL, 0, &res), ARMT_OK);
    ck_assert_uint_eq(res.n_tokens, 3);
    ck_assert_int_eq(res.stopped, 2);
    ck_assert(res.prefill_seconds > 0);
    /* a bad prompt: nothing changes */
    size_t nw = armt_ctx_memory_w_count(ctx);
    float *w0 = malloc(nw * 4), *w1 = malloc(nw * 4);
    ck_assert_int_eq(armt_ctx_memory_get(ctx, w0, NULL, NULL), ARMT_OK);
    prompt[17] = -3;
    ck_assert_int_eq(armt_generate(ctx, prompt, 19, &greedy, NULL, 0, NULL), ARMT_STATUS_TOKEN_OUT_OF_RANGE);
    ck_assert_int_eq(armt_ctx_memory_get(ctx, w1, NULL, NULL), ARMT_OK);
    ck_assert(memcmp(w0, w1, nw * 4) == 0);
    free(w0);
    free(w1);
    armt_ctx_free(ctx);
    armt_model_free(m);
    armt_runtime_free(rt);
}
END_TEST

static Suite *suite(void) {
    Suite *s = suite_create("generate");
    TCase *tc = test_tcase(s, "generate", 600);
    tcase_add_test(tc, test_greedy_vs_reference);
    tcase_add_test(tc, test_device_argmax);
    tcase_add_test(tc, test_generate_fixture);
    tcase_add_test(tc, test_sampling_and_stops);
    return s;
}

int main(void) { return test_run_suite(suite(), 1); }
