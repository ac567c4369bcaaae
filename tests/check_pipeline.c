/*
 * check_pipeline.c - the layer pipeline with its stages in one process (lib/compute/pipeline*.c): on two
 * devices (PoCL: POCL_DEVICES="pthread pthread", set here when unset) and on three stages, outputs and
 * memory states bit-identical to one device in both schedules and precisions, with a partial last segment,
 * the sink and the sliding window; the fp32 outputs also against the double-precision reference; a device
 * error injected in any stage leaves every stage's state as it was; the FLOP-balanced split; bad arguments.
 */
#include "config.h"

#include "pipeline_util.h"
#include "testutil.h"

#include "compute/pipeline.h"
#include "device/internal.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* "0,1" where the platform has two devices, else "0,0" (two stages on one device run the same code). */
static const char *two_devices(void) {
    armt_device_info *list = NULL;
    size_t n = 0;
    ck_assert_int_eq(armt_device_list(&list, &n), ARMT_OK);
    int same_platform = n >= 2 && list[0].platform_index == list[1].platform_index;
    armt_device_list_free(list);
    return same_platform ? "0,1" : "0,0";
}

static int no_overlap; /* armt_pipeline_params.no_overlap of the pipelines make_pipeline makes */

static armt_pipeline *make_pipeline(const pu_case *c, const char *devices, const int *split, int n_split) {
    armt_pipeline_params p = pu_params(c);
    p.no_overlap = no_overlap;
    p.devices = devices;
    p.split = split;
    p.n_split = n_split;
    armt_pipeline *pipe = NULL;
    armt_status st = armt_pipeline_create(&p, &pipe);
    ck_assert_msg(st == ARMT_OK, "armt_pipeline_create: %s", armt_last_error());
    return pipe;
}

/* Every case on two stages (the balanced split) and on three (1 + 2 + 1 layers: a middle stage that both
 * takes and hands over rows), bit for bit against one device; the second half of the loop hands the rows
 * over after each tick instead of overlapping them with the next (no_overlap). */
START_TEST(test_bit_identical) {
    size_t nc;
    const pu_case *cases = pu_cases(&nc);
    const pu_case *c = &cases[_i % (int)nc];
    no_overlap = _i >= (int)nc;
    pu_result one, two, three;
    pu_single(c, &one);
    armt_pipeline *pipe = make_pipeline(c, two_devices(), NULL, 0);
    armt_pipeline_stage_info a, b;
    ck_assert_int_eq(armt_pipeline_stage(pipe, 0, &a), ARMT_OK);
    ck_assert_int_eq(armt_pipeline_stage(pipe, 1, &b), ARMT_OK);
    ck_assert_int_eq(a.first_layer, 0);
    ck_assert_int_eq(a.n_layers, 2); /* equal layers cost the same */
    ck_assert_int_eq(b.first_layer, 2);
    ck_assert_int_eq(b.n_layers, 2);
    armt_status st = pu_pipeline(pipe, c, &two, 0);
    ck_assert_msg(st == ARMT_OK, "%s: %s", c->name, armt_pipeline_last_error(pipe));
    char why[256];
    ck_assert_msg(pu_equal(&two, &one, why, sizeof why), "%s, 2 stages: %s", c->name, why);
    armt_pipeline_stats ps;
    ck_assert_int_eq(armt_pipeline_stats_get(pipe, &ps), ARMT_OK);
    ck_assert_int_eq(ps.n_stages, 2);
    ck_assert(ps.bytes_moved > 0 && ps.seconds > 0.0 && ps.bubble >= 0.0 && ps.bubble < 1.0);
    armt_pipeline_free(pipe);

    const int split[3] = {1, 2, 1};
    pipe = make_pipeline(c, "0,1,0", split, 3);
    /* each stage holds the global weights it uses: the embedding on the first (and on the last, as the tied
     * lm_head), memory tokens on the first, the final norm on the last, none of them in the middle */
    const armt_weight *w0 = pipe->stage[0].model->w, *w1 = pipe->stage[1].model->w,
                      *w2 = pipe->stage[2].model->w;
    ck_assert(c->cfg.tie_word_embeddings);
    ck_assert(w0[ARMT_ROLE_EMBED].n_chunks == 1 && w0[ARMT_ROLE_MEM].n_chunks == 1 &&
              w0[ARMT_ROLE_NORM_FINAL].n_chunks == 0);
    ck_assert(w1[ARMT_ROLE_EMBED].n_chunks == 0 && w1[ARMT_ROLE_MEM].n_chunks == 0 &&
              w1[ARMT_ROLE_NORM_FINAL].n_chunks == 0);
    ck_assert(w2[ARMT_ROLE_EMBED].n_chunks == 1 && w2[ARMT_ROLE_MEM].n_chunks == 0 &&
              w2[ARMT_ROLE_NORM_FINAL].n_chunks == 1);
    st = pu_pipeline(pipe, c, &three, 0);
    ck_assert_msg(st == ARMT_OK, "%s: %s", c->name, armt_pipeline_last_error(pipe));
    ck_assert_msg(pu_equal(&three, &one, why, sizeof why), "%s, 3 stages: %s", c->name, why);
    armt_pipeline_free(pipe);
    pu_result_free(&one);
    pu_result_free(&two);
    pu_result_free(&three);
}
END_TEST

/* The pipeline's fp32 logits against the double-precision reference on the same weights (an independent
 * check: the bit-identity above compares the library with itself). */
START_TEST(test_against_reference) {
    no_overlap = 0;
    size_t nc;
    const pu_case *c = &pu_cases(&nc)[1]; /* fp32 diagonal */
    armt_pipeline *pipe = make_pipeline(c, two_devices(), NULL, 0);
    pu_result r;
    ck_assert_msg(pu_pipeline(pipe, c, &r, 0) == ARMT_OK, "%s", armt_pipeline_last_error(pipe));
    armt_pipeline_free(pipe);
    /* the reference's weights: the whole model on one device, read back */
    armt_runtime *rt = test_runtime();
    armt_model *m = NULL;
    ck_assert_int_eq(armt_model_create_random(rt, &c->cfg, &c->mp, &m), ARMT_OK);
    test_host_model *h = test_host_model_read(m);
    ref_state *rs = ref_state_new(&c->cfg);
    int32_t ids[512];
    size_t total;
    pu_ids(c, ids, &total);
    double *ref = malloc(r.n_logits * sizeof(double));
    ck_assert_int_eq(ref_armt_forward(&h->ref, rs, ids, c->n[0], ref, NULL), 0);
    ck_assert_int_eq(
        ref_armt_forward(&h->ref, rs, ids + c->n[0], c->n[1], ref + c->n[0] * c->cfg.vocab_size, NULL), 0);
    double e = test_max_abs_diff_fd(r.logits, ref, r.n_logits);
    ck_assert_msg(e < 2e-3, "pipeline logits vs reference: max |diff| %g", e);
    free(ref);
    ref_state_free(rs);
    test_host_model_free(h);
    armt_model_free(m);
    armt_runtime_free(rt);
    pu_result_free(&r);
}
END_TEST

/* A device error in the middle of a call, in either stage: a clean error naming the stage, every stage's
 * state as before the call, and the pipeline then goes on as if nothing happened. */
START_TEST(test_fault_leaves_state) {
    size_t nc;
    const pu_case *c = &pu_cases(&nc)[_i < 3 ? 1 : 0]; /* fp32 diagonal, then sequential */
    no_overlap = _i >= 6;                              /* the diagonal with hand-overs after each tick */
    if (_i >= 6) c = &pu_cases(&nc)[1];
    armt_pipeline *pipe = make_pipeline(c, two_devices(), NULL, 0);
    int32_t ids[512];
    size_t total;
    pu_ids(c, ids, &total);
    armt_forward_params fp = armt_forward_default_params();
    fp.schedule = c->schedule;
    ck_assert_int_eq(armt_pipeline_forward(pipe, ids, c->n[0], &fp), ARMT_OK);
    const size_t dk = (size_t)armt_config_d_key(&c->cfg), nl = (size_t)c->cfg.n_layers,
                 nw = nl * dk * (size_t)c->cfg.hidden_size;
    float *w0 = malloc(nw * 4), *z0 = malloc(nl * dk * 4), *w1 = malloc(nw * 4), *z1 = malloc(nl * dk * 4);
    uint8_t r0[8], r1[8];
    ck_assert_int_eq(armt_pipeline_memory_get(pipe, w0, z0, r0), ARMT_OK);
    /* early (stage 0's first launches), in the middle, late (the last stage's) */
    const long at[3] = {3, 40, 150};
    armt_fault_inject(at[_i % 3]);
    armt_status st = armt_pipeline_forward(pipe, ids + c->n[0], c->n[1], &fp);
    armt_fault_inject(-1);
    ck_assert_int_eq(st, ARMT_STATUS_OUT_OF_DEVICE_MEMORY);
    const char *msg = armt_pipeline_last_error(pipe);
    ck_assert_msg(strstr(msg, "pipeline stage") && strstr(msg, "CL_OUT_OF_RESOURCES"), "%s", msg);
    ck_assert_int_eq(armt_pipeline_memory_get(pipe, w1, z1, r1), ARMT_OK);
    ck_assert(memcmp(w0, w1, nw * 4) == 0 && memcmp(z0, z1, nl * dk * 4) == 0 && memcmp(r0, r1, nl) == 0);
    /* it goes on: the two calls equal one device's two calls */
    fp.output = c->output;
    pu_result one;
    pu_single(c, &one);
    float *out = malloc(c->n[1] * (size_t)c->cfg.vocab_size * 4);
    fp.out = out;
    fp.out_count = c->n[1] * (size_t)c->cfg.vocab_size;
    ck_assert_int_eq(armt_pipeline_forward(pipe, ids + c->n[0], c->n[1], &fp), ARMT_OK);
    ck_assert(memcmp(out, one.logits + c->n[0] * (size_t)c->cfg.vocab_size, fp.out_count * 4) == 0);
    ck_assert_int_eq(armt_pipeline_memory_get(pipe, w1, z1, r1), ARMT_OK);
    ck_assert(memcmp(w1, one.w, nw * 4) == 0 && memcmp(z1, one.z, nl * dk * 4) == 0);
    free(out);
    pu_result_free(&one);
    free(w0);
    free(z0);
    free(w1);
    free(z1);
    armt_pipeline_free(pipe);
}
END_TEST

/* A cancel from the progress callback goes through the same path. */
static int cancel_at_3(uint64_t done, uint64_t total, void *u) {
    (void)total;
    (void)u;
    return done == 3;
}

START_TEST(test_cancel_and_arguments) {
    no_overlap = 0;
    size_t nc;
    const pu_case *c = &pu_cases(&nc)[1];
    armt_pipeline *pipe = make_pipeline(c, two_devices(), NULL, 0);
    int32_t ids[512];
    size_t total;
    pu_ids(c, ids, &total);
    armt_forward_params fp = armt_forward_default_params();
    fp.progress = cancel_at_3;
    ck_assert_int_eq(armt_pipeline_forward(pipe, ids, c->n[0], &fp), ARMT_STATUS_CANCELLED);
    uint8_t wr[8];
    const size_t dk = (size_t)armt_config_d_key(&c->cfg), nl = (size_t)c->cfg.n_layers;
    float *w = malloc(nl * dk * (size_t)c->cfg.hidden_size * 4), *z = malloc(nl * dk * 4);
    ck_assert_int_eq(armt_pipeline_memory_get(pipe, w, z, wr), ARMT_OK);
    for (size_t l = 0; l < nl; l++)
        ck_assert_int_eq(wr[l], 0); /* nothing written: as after creation */
    fp.progress = NULL;
    fp.schedule = ARMT_SCHEDULE_FULL;
    ck_assert_int_eq(armt_pipeline_forward(pipe, ids, 8, &fp), ARMT_STATUS_UNSUPPORTED);
    fp.schedule = ARMT_SCHEDULE_DIAGONAL;
    ck_assert_int_eq(armt_pipeline_forward(pipe, ids, 0, &fp), ARMT_STATUS_EMPTY_INPUT);
    ids[3] = 100000;
    ck_assert_int_eq(armt_pipeline_forward(pipe, ids, 8, &fp), ARMT_STATUS_TOKEN_OUT_OF_RANGE);
    fp.output = ARMT_OUTPUT_LOGITS_ALL;
    ids[3] = 1;
    ck_assert_int_eq(armt_pipeline_forward(pipe, ids, 8, &fp), ARMT_STATUS_INVALID_ARGUMENT);
    ck_assert_int_eq(armt_pipeline_reset(pipe), ARMT_OK);
    armt_pipeline_free(pipe);
    free(w);
    free(z);

    /* creation: splits that do not add up, no devices, MPI without MPI */
    armt_pipeline_params p = pu_params(c);
    armt_pipeline *bad = (armt_pipeline *)0x1;
    p.devices = "0,0";
    const int split[2] = {3, 2};
    p.split = split;
    p.n_split = 2;
    ck_assert_int_eq(armt_pipeline_create(&p, &bad), ARMT_STATUS_INVALID_ARGUMENT);
    ck_assert_ptr_null(bad);
    ck_assert_ptr_nonnull(strstr(armt_last_error(), "split"));
    p.split = NULL;
    p.devices = "0,0,0,0,0";
    ck_assert_int_eq(armt_pipeline_create(&p, &bad), ARMT_STATUS_INVALID_ARGUMENT);
    p.devices = "0,no-such-device";
    ck_assert_int_eq(armt_pipeline_create(&p, &bad), ARMT_STATUS_NO_DEVICE);
    ck_assert_ptr_nonnull(strstr(armt_last_error(), "pipeline stage 1"));
    p.devices = "";
    unsetenv("ARMT_DEVICES");
    ck_assert_int_eq(armt_pipeline_create(&p, &bad), ARMT_STATUS_INVALID_ARGUMENT);
    if (!armt_pipeline_have_mpi()) {
        p.mpi = 1;
        ck_assert_int_eq(armt_pipeline_create(&p, &bad), ARMT_STATUS_UNSUPPORTED);
    }
    ck_assert_int_eq(armt_pipeline_forward(NULL, ids, 8, &fp), ARMT_STATUS_INVALID_ARGUMENT);
    armt_pipeline_free(NULL);
}
END_TEST

static unsigned char *read_all(const char *path, size_t *n) {
    FILE *f = fopen(path, "rb");
    ck_assert_ptr_nonnull(f);
    fseek(f, 0, SEEK_END);
    *n = (size_t)ftell(f);
    fseek(f, 0, SEEK_SET);
    unsigned char *b = malloc(*n ? *n : 1);
    ck_assert_uint_eq(fread(b, 1, *n, f), *n);
    fclose(f);
    return b;
}

/* State files: the pipeline writes the very bytes one context writes after the same call (the sliding
 * window included), a pipeline that loads one context's file then continues exactly as that context does,
 * and a damaged file is refused with the state unchanged. */
START_TEST(test_state_files) {
    no_overlap = 0;
    size_t nc;
    const pu_case *c = &pu_cases(&nc)[4]; /* the armt variant with the sink and the sliding window */
    ck_assert(c->cfg.sliding_window);
    char one_path[] = "/tmp/check_pipeline_one.XXXXXX", pipe_path[] = "/tmp/check_pipeline_pipe.XXXXXX";
    close(mkstemp(one_path));
    close(mkstemp(pipe_path));
    int32_t ids[512];
    size_t total;
    pu_ids(c, ids, &total);
    armt_runtime *rt = test_runtime();
    armt_model *m = NULL;
    armt_ctx *ctx = NULL;
    ck_assert_int_eq(armt_model_create_random(rt, &c->cfg, &c->mp, &m), ARMT_OK);
    ck_assert_int_eq(armt_ctx_create(m, NULL, &ctx), ARMT_OK);
    armt_forward_params fp = armt_forward_default_params();
    fp.schedule = c->schedule;
    ck_assert_int_eq(armt_forward(ctx, ids, c->n[0], &fp), ARMT_OK);
    ck_assert_int_eq(armt_ctx_memory_save(ctx, one_path), ARMT_OK);
    armt_pipeline *pipe = make_pipeline(c, two_devices(), NULL, 0);
    ck_assert_int_eq(armt_pipeline_forward(pipe, ids, c->n[0], &fp), ARMT_OK);
    ck_assert_msg(armt_pipeline_memory_save(pipe, pipe_path) == ARMT_OK, "%s",
                  armt_pipeline_last_error(pipe));
    size_t na, nb;
    unsigned char *a = read_all(one_path, &na), *b = read_all(pipe_path, &nb);
    ck_assert_uint_eq(na, nb);
    ck_assert_msg(memcmp(a, b, na) == 0, "the pipeline's state file differs from one context's");
    armt_pipeline_free(pipe);

    /* a fresh pipeline (three stages) loads the context's file and continues as the context does */
    const int split[3] = {1, 2, 1};
    pipe = make_pipeline(c, "0,1,0", split, 3);
    ck_assert_msg(armt_pipeline_memory_load(pipe, one_path) == ARMT_OK, "%s", armt_pipeline_last_error(pipe));
    const size_t V = (size_t)c->cfg.vocab_size;
    float *lo = malloc(c->n[1] * V * 4), *lp = malloc(c->n[1] * V * 4);
    fp.output = ARMT_OUTPUT_LOGITS_ALL;
    fp.out_count = c->n[1] * V;
    fp.out = lo;
    ck_assert_int_eq(armt_forward(ctx, ids + c->n[0], c->n[1], &fp), ARMT_OK);
    fp.out = lp;
    ck_assert_int_eq(armt_pipeline_forward(pipe, ids + c->n[0], c->n[1], &fp), ARMT_OK);
    ck_assert_msg(memcmp(lo, lp, fp.out_count * 4) == 0, "outputs after a load differ");

    /* a damaged file: refused, the state as it was */
    const size_t nw =
        (size_t)c->cfg.n_layers * (size_t)armt_config_d_key(&c->cfg) * (size_t)c->cfg.hidden_size;
    float *w0 = malloc(nw * 4), *w1 = malloc(nw * 4), *z0 = malloc(nw * 4), *z1 = malloc(nw * 4);
    uint8_t r0[8], r1[8];
    ck_assert_int_eq(armt_pipeline_memory_get(pipe, w0, z0, r0), ARMT_OK);
    a[na - 1] ^= 0x55;
    FILE *f = fopen(pipe_path, "wb");
    fwrite(a, 1, na, f);
    fclose(f);
    ck_assert_int_eq(armt_pipeline_memory_load(pipe, pipe_path), ARMT_STATUS_BAD_FILE);
    ck_assert_int_eq(armt_pipeline_memory_get(pipe, w1, z1, r1), ARMT_OK);
    ck_assert(memcmp(w0, w1, nw * 4) == 0 && memcmp(r0, r1, (size_t)c->cfg.n_layers) == 0);
    free(w0);
    free(w1);
    free(z0);
    free(z1);
    free(lo);
    free(lp);
    free(a);
    free(b);
    unlink(one_path);
    unlink(pipe_path);
    armt_pipeline_free(pipe);
    armt_ctx_free(ctx);
    armt_model_free(m);
    armt_runtime_free(rt);
}
END_TEST

/* The balanced split, worked by hand: equal layers split evenly; layers without memory cost less, so a
 * stage takes more of them. */
START_TEST(test_split) {
    armt_config c;
    ck_assert_int_eq(armt_config_preset("llama-3.2-1b", &c), ARMT_OK);
    int counts[16];
    armt_pipeline_split_balanced(&c, 4, counts);
    for (int i = 0; i < 4; i++)
        ck_assert_int_eq(counts[i], 4);
    armt_pipeline_split_balanced(&c, 3, counts); /* 16 = 6 + 5 + 5 or a permutation: the largest is 6 */
    ck_assert_int_eq(counts[0] + counts[1] + counts[2], 16);
    ck_assert(counts[0] <= 6 && counts[1] <= 6 && counts[2] <= 6);
    /* the first 8 layers without memory: one memory layer costs mem / base more than a plain one */
    for (int l = 0; l < 8; l++)
        c.memory_off[0] |= 1ull << l;
    const double plain = armt_pipeline_layer_flops(&c, 0), mem = armt_pipeline_layer_flops(&c, 8);
    ck_assert(mem > plain);
    /* by hand: T = 1152, d = 2048, q 2048, kv 512, ffn 8192: linear 2 T (d q + 2 d kv + q d + 3 d ffn) */
    const double T = 1152, d = 2048, lin = 2 * T * (d * 2048 + 2 * d * 512 + 2048 * d + 3 * d * 8192),
                 att = 2 * T * T * 2048;
    ck_assert(fabs(plain - (lin + att)) < 1e-6 * plain);
    armt_pipeline_split_balanced(&c, 2, counts);
    ck_assert_int_eq(counts[0] + counts[1], 16);
    ck_assert_int_ge(counts[0], 8); /* the cheap layers go together */
    armt_pipeline_split_balanced(&c, 16, counts);
    for (int i = 0; i < 16; i++)
        ck_assert_int_eq(counts[i], 1);
}
END_TEST

static Suite *suite(void) {
    Suite *s = suite_create("pipeline");
    size_t nc;
    pu_cases(&nc);
    TCase *tc = test_tcase(s, "pipeline", 600);
    tcase_add_loop_test(tc, test_bit_identical, 0, 2 * (int)nc);
    tcase_add_test(tc, test_against_reference);
    tcase_add_loop_test(tc, test_fault_leaves_state, 0, 9);
    tcase_add_test(tc, test_cancel_and_arguments);
    tcase_add_test(tc, test_state_files);
    tcase_add_test(tc, test_split);
    return s;
}

int main(void) {
    setenv("POCL_DEVICES", "pthread pthread", 0); /* two CPU devices on PoCL's platform */
    return test_run_suite(suite(), 1);
}
