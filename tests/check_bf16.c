/*
 * check_bf16.c - the bf16-weight path (our own batched GEMM) against the fp32 reference path: logits of the
 * same random model in both precisions, diagonal against sequential in bf16, half the weight memory, and
 * bf16 values surviving a save/load round trip.
 */
#include "config.h"

#include "testutil.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define TOL_BF16 2e-2 /* max |bf16 - fp32| / max |fp32| on logits (issue 8) */

static armt_model *make(armt_runtime *rt, const armt_config *c, armt_precision prec) {
    armt_model_params p = armt_model_default_params();
    p.seed = 123;
    p.wmv_std = 0.02f;
    p.precision = prec;
    armt_model *m = NULL;
    armt_status st = armt_model_create_random(rt, c, &p, &m);
    ck_assert_msg(st == ARMT_OK, "%s", armt_last_error());
    ck_assert_int_eq(armt_model_precision(m), prec);
    return m;
}

static float *logits(armt_model *m, armt_schedule sch, const int32_t *ids, size_t n) {
    armt_ctx *ctx = NULL;
    ck_assert_int_eq(armt_ctx_create(m, NULL, &ctx), ARMT_OK);
    size_t V = (size_t)armt_model_config(m)->vocab_size;
    float *out = malloc(n * V * sizeof *out);
    armt_forward_params fp = armt_forward_default_params();
    fp.schedule = sch;
    fp.output = ARMT_OUTPUT_LOGITS_ALL;
    fp.out = out;
    fp.out_count = n * V;
    ck_assert_msg(armt_forward(ctx, ids, n, &fp) == ARMT_OK, "%s", armt_ctx_last_error(ctx));
    armt_ctx_free(ctx);
    return out;
}

/* tiny and llama-160m shapes (160m with short segments so a CPU runs it in seconds) */
START_TEST(test_bf16_vs_fp32) {
    static const char *const presets[2] = {"tiny", "llama-160m"};
    armt_runtime *rt = test_runtime();
    armt_config c;
    ck_assert_int_eq(armt_config_preset(presets[_i], &c), ARMT_OK);
    size_t n;
    if (_i == 1) {
        c.segment_size = 40;
        c.num_mem_tokens = 8;
        n = 100; /* 2 full segments and a partial one */
    } else {
        n = 45;
    }
    armt_model *m32 = make(rt, &c, ARMT_PRECISION_FP32);
    armt_model *m16 = make(rt, &c, ARMT_PRECISION_BF16);
    ck_assert_msg(armt_model_device_bytes(m16) * 10 < armt_model_device_bytes(m32) * 6,
                  "bf16 weights take %llu bytes, fp32 %llu", (unsigned long long)armt_model_device_bytes(m16),
                  (unsigned long long)armt_model_device_bytes(m32));
    int32_t *ids = malloc(n * sizeof *ids);
    test_random_ids(ids, n, c.vocab_size, 5);
    size_t V = (size_t)c.vocab_size;
    float *ref = logits(m32, ARMT_SCHEDULE_SEQUENTIAL, ids, n);
    float *seq = logits(m16, ARMT_SCHEDULE_SEQUENTIAL, ids, n);
    float *diag = logits(m16, ARMT_SCHEDULE_DIAGONAL, ids, n);
    double e_seq = test_rel_err(seq, ref, n * V), e_diag = test_rel_err(diag, ref, n * V),
           e_sd = test_rel_err(diag, seq, n * V);
    fprintf(stderr, "%s: bf16 vs fp32: sequential %.3g, diagonal %.3g; bf16 diagonal vs sequential %.3g\n",
            presets[_i], e_seq, e_diag, e_sd);
    ck_assert_msg(e_seq <= TOL_BF16 && e_diag <= TOL_BF16, "%s: bf16 vs fp32 %.3g / %.3g", presets[_i], e_seq,
                  e_diag);
    ck_assert_msg(e_sd <= TOL_BF16, "%s: bf16 diagonal vs sequential %.3g", presets[_i], e_sd);
    /* it is really another precision: not bit-identical to fp32 */
    ck_assert_msg(e_seq > 1e-7, "bf16 logits equal the fp32 ones: the bf16 path is not in use");
    float *full32 = logits(m32, ARMT_SCHEDULE_FULL, ids, n),
          *full16 = logits(m16, ARMT_SCHEDULE_FULL, ids, n);
    ck_assert_msg(test_rel_err(full16, full32, n * V) <= TOL_BF16, "full: %.3g",
                  test_rel_err(full16, full32, n * V));
    free(full32);
    free(full16);
    free(ref);
    free(seq);
    free(diag);
    free(ids);
    armt_model_free(m32);
    armt_model_free(m16);
    armt_runtime_free(rt);
}
END_TEST

/* Weights read back from a bf16 model are bf16 values (low 16 bits zero) equal to the fp32 model's values
 * rounded to nearest even; saving and loading the bf16 model as fp32 keeps them exactly. */
START_TEST(test_bf16_storage) {
    armt_runtime *rt = test_runtime();
    armt_config c;
    ck_assert_int_eq(armt_config_preset("tiny", &c), ARMT_OK);
    armt_model *m32 = make(rt, &c, ARMT_PRECISION_FP32), *m16 = make(rt, &c, ARMT_PRECISION_BF16);
    test_host_model *h32 = test_host_model_read(m32), *h16 = test_host_model_read(m16);
    size_t nq = (size_t)armt_role_numel(&c, ARMT_ROLE_WQ) * (size_t)c.n_layers;
    for (size_t i = 0; i < nq; i++) {
        uint32_t a, b;
        memcpy(&a, &h32->role[ARMT_ROLE_WQ][i], 4);
        memcpy(&b, &h16->role[ARMT_ROLE_WQ][i], 4);
        uint32_t rne = ((a + 0x7fffu + ((a >> 16) & 1u)) >> 16) << 16;
        ck_assert_msg(b == rne, "wq[%zu]: bf16 %08x, expected %08x from %08x", i, b, rne, a);
    }
    /* norms stay fp32 */
    ck_assert(memcmp(h32->role[ARMT_ROLE_NORM_IN], h16->role[ARMT_ROLE_NORM_IN],
                     (size_t)c.hidden_size * c.n_layers * 4) == 0);
    char path[] = "/tmp/armt-bf16-XXXXXX.safetensors";
    int fd = mkstemps(path, 12);
    ck_assert_int_ge(fd, 0);
    close(fd);
    ck_assert_int_eq(armt_model_save(m16, path), ARMT_OK);
    armt_model *back = NULL;
    ck_assert_msg(armt_model_load(rt, path, NULL, &back) == ARMT_OK, "%s", armt_last_error());
    test_host_model *hb = test_host_model_read(back);
    ck_assert(memcmp(hb->role[ARMT_ROLE_WQ], h16->role[ARMT_ROLE_WQ], nq * 4) == 0);
    remove(path);
    test_host_model_free(h32);
    test_host_model_free(h16);
    test_host_model_free(hb);
    armt_model_free(back);
    armt_model_free(m32);
    armt_model_free(m16);
    armt_runtime_free(rt);
}
END_TEST

/* The bf16 read products use a bf16 copy of W_mem that the library derives from the state: a state carried
 * across calls, and one set from outside (armt_ctx_memory_set), must both be what the next call reads. With
 * the first call ending on a segment boundary, two calls equal one call over all the tokens, bit for bit. */
START_TEST(test_bf16_state_across_calls) {
    armt_runtime *rt = test_runtime();
    armt_config c;
    ck_assert_int_eq(armt_config_preset("tiny", &c), ARMT_OK);
    armt_model *m32 = make(rt, &c, ARMT_PRECISION_FP32), *m16 = make(rt, &c, ARMT_PRECISION_BF16);
    size_t n1 = 3 * (size_t)c.segment_size, n2 = 30, V = (size_t)c.vocab_size;
    int32_t ids[128];
    ck_assert_int_le(n1 + n2, 128);
    test_random_ids(ids, n1 + n2, c.vocab_size, 17);
    armt_forward_params fp = armt_forward_default_params();
    fp.schedule = ARMT_SCHEDULE_DIAGONAL;
    armt_ctx *r32 = NULL, *a16 = NULL, *b16 = NULL;
    ck_assert_int_eq(armt_ctx_create(m32, NULL, &r32), ARMT_OK);
    ck_assert_int_eq(armt_ctx_create(m16, NULL, &a16), ARMT_OK);
    ck_assert_int_eq(armt_ctx_create(m16, NULL, &b16), ARMT_OK);
    ck_assert_int_eq(armt_forward(r32, ids, n1, &fp), ARMT_OK);
    ck_assert_int_eq(armt_forward(a16, ids, n1, &fp), ARMT_OK);
    size_t nw = armt_ctx_memory_w_count(a16), nz = armt_ctx_memory_z_count(a16);
    float *w = malloc(nw * sizeof *w), *z = malloc(nz * sizeof *z);
    uint8_t written[64];
    ck_assert_int_le(c.n_layers, 64);
    ck_assert_int_eq(armt_ctx_memory_get(a16, w, z, written), ARMT_OK);
    ck_assert_int_eq(armt_ctx_memory_set(b16, w, z, written), ARMT_OK);
    float *ref = malloc(n2 * V * sizeof *ref), *ca = malloc(n2 * V * sizeof *ca),
          *cb = malloc(n2 * V * sizeof *cb);
    fp.output = ARMT_OUTPUT_LOGITS_ALL;
    fp.out_count = n2 * V;
    fp.out = ref;
    ck_assert_int_eq(armt_forward(r32, ids + n1, n2, &fp), ARMT_OK);
    fp.out = ca;
    ck_assert_int_eq(armt_forward(a16, ids + n1, n2, &fp), ARMT_OK);
    fp.out = cb;
    ck_assert_int_eq(armt_forward(b16, ids + n1, n2, &fp), ARMT_OK);
    /* one call over everything, in a fresh context */
    float *all = malloc((n1 + n2) * V * sizeof *all);
    armt_ctx *o16 = NULL;
    ck_assert_int_eq(armt_ctx_create(m16, NULL, &o16), ARMT_OK);
    fp.out = all;
    fp.out_count = (n1 + n2) * V;
    ck_assert_int_eq(armt_forward(o16, ids, n1 + n2, &fp), ARMT_OK);
    armt_ctx_free(o16);
    double ea = test_rel_err(ca, ref, n2 * V), eab = test_rel_err(cb, ca, n2 * V),
           eone = test_rel_err(ca, all + n1 * V, n2 * V);
    fprintf(stderr, "second call: carried vs fp32 %.3g; set vs carried %.3g; two calls vs one %.3g\n", ea,
            eab, eone);
    ck_assert_msg(eab == 0, "a state set from outside reads differently from the same state carried: %.3g",
                  eab);
    ck_assert_msg(eone == 0, "two bf16 calls differ from one call over the same tokens: %.3g", eone);
    /* a sanity bound only: bf16 differences compound through the memory over five segments */
    ck_assert_msg(ea <= 5e-2, "second call vs fp32: %.3g", ea);
    free(all);
    free(w);
    free(z);
    free(ref);
    free(ca);
    free(cb);
    armt_ctx_free(r32);
    armt_ctx_free(a16);
    armt_ctx_free(b16);
    armt_model_free(m32);
    armt_model_free(m16);
    armt_runtime_free(rt);
}
END_TEST

static Suite *suite(void) {
    Suite *s = suite_create("bf16");
    TCase *tc = test_tcase(s, "bf16", 600);
    tcase_add_loop_test(tc, test_bf16_vs_fp32, 0, 2);
    tcase_add_test(tc, test_bf16_storage);
    tcase_add_test(tc, test_bf16_state_across_calls);
    return s;
}

int main(void) { return test_run_suite(suite(), 1); }
