/*
 * check_fixtures.c - end to end against outputs of real libraries (tests/data, made by
 * tools/make_fixtures.py):
 * HF transformers' LlamaForCausalLM (llama3 RoPE scaling, GQA), the ARMT authors' reference wrapper (both
 * naming forms of a saved file, memory path active, partial last segment) and a PEFT LoRA checkpoint.
 */
#include "config.h"

#include "testutil.h"

#include "common/error.h"
#include "io/safetensors.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define TOL_ABS 2e-4 /* max |ours - reference fp32| on logits and memory state (issue 4) */

typedef struct expected {
    st_archive *a;
    char path[4096];
} expected;

static void expected_open(expected *e, const char *sub) {
    snprintf(e->path, sizeof e->path, "%s/%s/expected.safetensors", test_data_dir(), sub);
    armt_err err;
    armt_err_init(&err);
    ck_assert_msg(st_open(e->path, &e->a, &err) == ARMT_OK, "%s", armt_err_msg(&err));
    armt_err_free(&err);
}

/* A whole tensor as floats; *n receives its element count. */
static float *expected_get(expected *e, const char *name, size_t *n) {
    const st_tensor *t = st_find(e->a, name);
    ck_assert_msg(t != NULL, "%s: no tensor %s", e->path, name);
    float *v = malloc((size_t)t->numel * sizeof *v);
    armt_err err;
    armt_err_init(&err);
    ck_assert_msg(st_read_f32(e->a, t, 0, t->numel, v, &err) == ARMT_OK, "%s", armt_err_msg(&err));
    armt_err_free(&err);
    *n = (size_t)t->numel;
    return v;
}

static int32_t *to_ids(const float *v, size_t n) {
    int32_t *ids = malloc(n * sizeof *ids);
    for (size_t i = 0; i < n; i++)
        ids[i] = (int32_t)v[i];
    return ids;
}

static double max_diff(const float *a, const float *b, size_t n) {
    double m = 0;
    for (size_t i = 0; i < n; i++) {
        double d = fabs((double)a[i] - (double)b[i]);
        if (!(d <= m)) m = d;
    }
    return m;
}

static armt_model *load(armt_runtime *rt, const char *sub, armt_model_params *p) {
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", test_data_dir(), sub);
    armt_model *m = NULL;
    armt_status st = armt_model_load(rt, path, p, &m);
    ck_assert_msg(st == ARMT_OK, "load %s: %s: %s", path, armt_status_str(st), armt_last_error());
    return m;
}

static float *forward(armt_model *m, armt_schedule sch, const int32_t *ids, size_t n) {
    armt_ctx *ctx = NULL;
    ck_assert_msg(armt_ctx_create(m, NULL, &ctx) == ARMT_OK, "%s", armt_last_error());
    size_t V = (size_t)armt_model_config(m)->vocab_size;
    float *out = malloc(n * V * sizeof *out);
    armt_forward_params p = armt_forward_default_params();
    p.schedule = sch;
    p.output = ARMT_OUTPUT_LOGITS_ALL;
    p.out = out;
    p.out_count = n * V;
    armt_status st = armt_forward(ctx, ids, n, &p);
    ck_assert_msg(st == ARMT_OK, "forward: %s", armt_ctx_last_error(ctx));
    armt_ctx_free(ctx);
    return out;
}

/* HF LlamaForCausalLM over concat(E[ids], memory): the token rows of one ARMT segment. */
START_TEST(test_hf_llama_segment) {
    expected e;
    expected_open(&e, "hf_llama");
    size_t n, nl;
    float *idv = expected_get(&e, "ids", &n);
    float *ref = expected_get(&e, "logits", &nl);
    int32_t *ids = to_ids(idv, n);
    armt_runtime *rt = test_runtime();
    armt_model_params p = armt_model_default_params();
    p.segment_size = (int)n; /* the memory tokens come from memory.safetensors (M = 4) */
    armt_model *m = load(rt, "hf_llama", &p);
    const armt_config *c = armt_model_config(m);
    ck_assert_int_eq(c->num_mem_tokens, 4);
    ck_assert_int_eq(c->rope_type, ARMT_ROPE_LLAMA3);
    ck_assert_int_eq(c->n_kv_heads, 2);
    size_t V = (size_t)c->vocab_size;
    ck_assert_uint_eq(nl, (n + 4) * V);
    for (int sch = ARMT_SCHEDULE_SEQUENTIAL; sch <= ARMT_SCHEDULE_DIAGONAL; sch++) {
        float *ours = forward(m, (armt_schedule)sch, ids, n);
        double d = max_diff(ours, ref, n * V); /* first n of the T = n + 4 rows */
        ck_assert_msg(d <= TOL_ABS, "schedule %d: max |ours - HF| = %g", sch, d);
        free(ours);
    }
    /* full attention over the same ids is the plain LLaMA: the same token rows */
    float *ours = forward(m, ARMT_SCHEDULE_FULL, ids, n);
    ck_assert_msg(max_diff(ours, ref, n * V) <= TOL_ABS, "full: %g", max_diff(ours, ref, n * V));
    free(ours);
    armt_model_free(m);
    armt_runtime_free(rt);
    free(idv);
    free(ref);
    free(ids);
    st_close(e.a);
}
END_TEST

/* The ARMT reference wrapper: 3 full segments and a partial one, memory active. Both naming forms. */
START_TEST(test_armt_reference) {
    static const char *const files[2] = {"armt_ref/model_saved.safetensors",
                                         "armt_ref/model_modelform.safetensors"};
    expected e;
    expected_open(&e, "armt_ref");
    size_t n, nl, nw, nz;
    float *idv = expected_get(&e, "ids", &n);
    float *ref = expected_get(&e, "logits", &nl);
    float *rw = expected_get(&e, "W_mem", &nw);
    float *rz = expected_get(&e, "z", &nz);
    int32_t *ids = to_ids(idv, n);
    armt_runtime *rt = test_runtime();
    armt_model *m = load(rt, files[_i], NULL);
    const armt_config *c = armt_model_config(m);
    ck_assert_int_eq(c->segment_size, 8);
    ck_assert_int_eq(c->num_mem_tokens, 4);
    ck_assert_int_eq(c->d_mem, 8);
    ck_assert_int_eq(c->tie_word_embeddings, 1);
    size_t V = (size_t)c->vocab_size;
    ck_assert_uint_eq(nl, n * V);
    for (int sch = ARMT_SCHEDULE_SEQUENTIAL; sch <= ARMT_SCHEDULE_DIAGONAL; sch++) {
        armt_ctx *ctx = NULL;
        ck_assert_int_eq(armt_ctx_create(m, NULL, &ctx), ARMT_OK);
        ck_assert_uint_eq(armt_ctx_memory_w_count(ctx), nw);
        ck_assert_uint_eq(armt_ctx_memory_z_count(ctx), nz);
        float *ours = malloc(n * V * sizeof *ours), *w = malloc(nw * 4), *z = malloc(nz * 4);
        armt_forward_params p = armt_forward_default_params();
        p.schedule = (armt_schedule)sch;
        p.output = ARMT_OUTPUT_LOGITS_ALL;
        p.out = ours;
        p.out_count = n * V;
        ck_assert_msg(armt_forward(ctx, ids, n, &p) == ARMT_OK, "%s", armt_ctx_last_error(ctx));
        double d = max_diff(ours, ref, n * V);
        ck_assert_msg(d <= TOL_ABS, "%s, schedule %d: max |logits - reference| = %g", files[_i], sch, d);
        ck_assert_int_eq(armt_ctx_memory_get(ctx, w, z, NULL), ARMT_OK);
        double dw = max_diff(w, rw, nw), dz = max_diff(z, rz, nz);
        ck_assert_msg(dw <= TOL_ABS && dz <= TOL_ABS, "%s, schedule %d: W_mem %g, z %g", files[_i], sch, dw,
                      dz);
        free(ours);
        free(w);
        free(z);
        armt_ctx_free(ctx);
    }
    armt_model_free(m);
    armt_runtime_free(rt);
    free(idv);
    free(ref);
    free(rw);
    free(rz);
    free(ids);
    st_close(e.a);
}
END_TEST

/* PEFT LoRA merged at load: the merged model's logits (plain LLaMA, no memory). */
START_TEST(test_lora_merged) {
    expected e;
    expected_open(&e, "lora");
    size_t n, nl;
    float *idv = expected_get(&e, "ids", &n);
    float *ref = expected_get(&e, "logits", &nl);
    int32_t *ids = to_ids(idv, n);
    armt_runtime *rt = test_runtime();
    armt_model_params p = armt_model_default_params();
    p.segment_size = 16;
    p.num_mem_tokens = 2;
    p.d_mem = 8;
    armt_model *m = load(rt, "lora", &p);
    size_t V = (size_t)armt_model_config(m)->vocab_size;
    float *ours = forward(m, ARMT_SCHEDULE_FULL, ids, n);
    ck_assert_msg(max_diff(ours, ref, n * V) <= TOL_ABS, "full: %g", max_diff(ours, ref, n * V));
    free(ours);
    /* one ARMT segment of 16 >= n tokens: the token rows equal the plain model */
    ours = forward(m, ARMT_SCHEDULE_DIAGONAL, ids, n);
    ck_assert_msg(max_diff(ours, ref, n * V) <= TOL_ABS, "diagonal: %g", max_diff(ours, ref, n * V));
    free(ours);
    armt_model_free(m);
    armt_runtime_free(rt);
    free(idv);
    free(ref);
    free(ids);
    st_close(e.a);
}
END_TEST

/* Save a model, load it back: identical weights on the device, identical outputs. */
START_TEST(test_save_load_roundtrip) {
    armt_runtime *rt = test_runtime();
    armt_config c;
    ck_assert_int_eq(armt_config_preset("tiny", &c), ARMT_OK);
    c.tie_word_embeddings = 0;
    armt_model_params p = armt_model_default_params();
    p.seed = 77;
    p.wmv_std = 0.05f;
    armt_model *m = NULL;
    ck_assert_int_eq(armt_model_create_random(rt, &c, &p, &m), ARMT_OK);
    char path[] = "/tmp/armt-model-XXXXXX.safetensors";
    int fd = mkstemps(path, 12);
    ck_assert_int_ge(fd, 0);
    close(fd);
    ck_assert_msg(armt_model_save(m, path) == ARMT_OK, "%s", armt_model_last_error(m));
    armt_model *m2 = NULL;
    ck_assert_msg(armt_model_load(rt, path, NULL, &m2) == ARMT_OK, "%s", armt_last_error());
    ck_assert(memcmp(armt_model_config(m), armt_model_config(m2), sizeof c) == 0);
    test_host_model *h1 = test_host_model_read(m), *h2 = test_host_model_read(m2);
    for (int r = 0; r < ARMT_ROLE_COUNT; r++) {
        if (!h1->role[r]) continue;
        size_t cnt = (size_t)armt_role_numel(&c, (armt_role)r) *
                     (armt_role_is_layer((armt_role)r) ? (size_t)c.n_layers : 1);
        ck_assert_msg(memcmp(h1->role[r], h2->role[r], cnt * 4) == 0, "role %s differs",
                      armt_role_name((armt_role)r));
    }
    test_host_model_free(h1);
    test_host_model_free(h2);
    remove(path);
    armt_model_free(m2);
    armt_model_free(m);
    armt_runtime_free(rt);
}
END_TEST

static Suite *suite(void) {
    Suite *s = suite_create("fixtures");
    TCase *tc = test_tcase(s, "fixtures", 600);
    tcase_add_test(tc, test_hf_llama_segment);
    tcase_add_loop_test(tc, test_armt_reference, 0, 2);
    tcase_add_test(tc, test_lora_merged);
    tcase_add_test(tc, test_save_load_roundtrip);
    return s;
}

int main(void) { return test_run_suite(suite(), 1); }
