/*
 * check_limits.c - device limits, bad arguments and concurrency: a model or a forward that does not fit
 * returns ARMT_STATUS_OUT_OF_DEVICE_MEMORY with the bytes needed, having allocated nothing and leaving the
 * memory state as it was; two contexts on one model used from two threads agree with sequential use.
 */
#include "config.h"

#include "testutil.h"

#include "device/internal.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static uint64_t rt_bytes(armt_runtime *rt) { return rt->device_bytes; }

/* The 1B preset does not fit PoCL's memory (a few GiB here; 1 GiB with POCL_MEMORY_LIMIT=1): the model
 * create fails before allocating anything, and the runtime still works afterwards. */
START_TEST(test_model_too_large) {
    setenv("POCL_MEMORY_LIMIT", "1", 1);
    armt_runtime *rt = test_runtime();
    armt_device_info info;
    ck_assert_int_eq(armt_runtime_device_info(rt, &info), ARMT_OK);
    armt_config c;
    ck_assert_int_eq(armt_config_preset("llama-3.2-1b", &c), ARMT_OK);
    armt_model *m = (armt_model *)0x1;
    uint64_t before = rt_bytes(rt);
    armt_status st = armt_model_create_random(rt, &c, NULL, &m);
    if (info.global_mem_bytes >= 8ULL << 30) {
        /* a device this large holds the model: nothing to provoke here */
        ck_assert_int_eq(st, ARMT_OK);
        armt_model_free(m);
    } else {
        ck_assert_int_eq(st, ARMT_STATUS_OUT_OF_DEVICE_MEMORY);
        ck_assert_ptr_null(m);
        const char *msg = armt_last_error();
        ck_assert_msg(strstr(msg, "bytes") != NULL, "message without sizes: %s", msg);
        ck_assert_uint_eq(rt_bytes(rt), before);
    }
    /* still usable */
    ck_assert_int_eq(armt_config_preset("tiny", &c), ARMT_OK);
    ck_assert_msg(armt_model_create_random(rt, &c, NULL, &m) == ARMT_OK, "%s", armt_last_error());
    armt_model_free(m);
    ck_assert_uint_eq(rt_bytes(rt), before);
    armt_runtime_free(rt);
}
END_TEST

/* A forward whose scratch cannot fit: the status says so with the sizes, the state is unchanged, and a
 * smaller call on the same context then works. */
START_TEST(test_forward_too_large) {
    setenv("POCL_MEMORY_LIMIT", "1", 1);
    armt_runtime *rt = test_runtime();
    armt_config c;
    ck_assert_int_eq(armt_config_preset("tiny", &c), ARMT_OK);
    c.intermediate_size = 4096; /* wide MLP: scratch rows cost 2 * 16 KiB each */
    armt_model_params p = armt_model_default_params();
    p.wmv_std = 0.05f;
    p.segment_size = 1 << 20; /* one segment of a million tokens */
    armt_model *m = NULL;
    ck_assert_msg(armt_model_create_random(rt, &c, &p, &m) == ARMT_OK, "%s", armt_last_error());
    armt_ctx *ctx = NULL;
    ck_assert_int_eq(armt_ctx_create(m, NULL, &ctx), ARMT_OK);
    int32_t small[40];
    test_random_ids(small, 40, c.vocab_size, 1);
    armt_forward_params fp = armt_forward_default_params();
    ck_assert_int_eq(armt_forward(ctx, small, 40, &fp), ARMT_OK);
    size_t nw = armt_ctx_memory_w_count(ctx);
    float *w0 = malloc(nw * 4), *w1 = malloc(nw * 4);
    ck_assert_int_eq(armt_ctx_memory_get(ctx, w0, NULL, NULL), ARMT_OK);
    uint64_t before = rt_bytes(rt);

    size_t n = (size_t)1 << 20;
    int32_t *ids = calloc(n, sizeof *ids);
    armt_status st = armt_forward(ctx, ids, n, &fp);
    ck_assert_int_eq(st, ARMT_STATUS_OUT_OF_DEVICE_MEMORY);
    ck_assert_msg(strstr(armt_ctx_last_error(ctx), "bytes") != NULL, "%s", armt_ctx_last_error(ctx));
    ck_assert_int_eq(armt_ctx_memory_get(ctx, w1, NULL, NULL), ARMT_OK);
    ck_assert(memcmp(w0, w1, nw * 4) == 0);
    ck_assert_uint_le(rt_bytes(rt), before);
    ck_assert_int_eq(armt_forward(ctx, small, 40, &fp), ARMT_OK);
    free(ids);
    free(w0);
    free(w1);
    armt_ctx_free(ctx);
    armt_model_free(m);
    armt_runtime_free(rt);
}
END_TEST

/* A device error in the middle of a forward (a launch failing with CL_OUT_OF_RESOURCES, as when memory runs
 * out at enqueue time): the call reports it, the memory state is exactly as before, and the context then
 * runs normally, giving the same result as a context that never failed. */
START_TEST(test_device_error_mid_forward) {
    armt_runtime *rt = test_runtime();
    armt_config c;
    ck_assert_int_eq(armt_config_preset("tiny", &c), ARMT_OK);
    armt_model_params p = armt_model_default_params();
    p.wmv_std = 0.05f;
    armt_model *m = NULL;
    ck_assert_int_eq(armt_model_create_random(rt, &c, &p, &m), ARMT_OK);
    armt_ctx *ctx = NULL, *clean = NULL;
    ck_assert_int_eq(armt_ctx_create(m, NULL, &ctx), ARMT_OK);
    ck_assert_int_eq(armt_ctx_create(m, NULL, &clean), ARMT_OK);
    size_t n = 64, V = (size_t)c.vocab_size, nw = armt_ctx_memory_w_count(ctx),
           nz = armt_ctx_memory_z_count(ctx);
    int32_t ids[64];
    test_random_ids(ids, n, c.vocab_size, 8);
    armt_forward_params fp = armt_forward_default_params();
    /* some state first */
    ck_assert_int_eq(armt_forward(ctx, ids, 32, &fp), ARMT_OK);
    ck_assert_int_eq(armt_forward(clean, ids, 32, &fp), ARMT_OK);
    float *w0 = malloc(nw * 4), *z0 = malloc(nz * 4), *w1 = malloc(nw * 4), *z1 = malloc(nz * 4);
    uint8_t wr0[8], wr1[8];
    ck_assert_int_eq(armt_ctx_memory_get(ctx, w0, z0, wr0), ARMT_OK);
    for (int sch = ARMT_SCHEDULE_SEQUENTIAL; sch <= ARMT_SCHEDULE_DIAGONAL; sch++) {
        fp.schedule = (armt_schedule)sch;
        armt_fault_inject(25); /* well inside the call: after some memory writes */
        armt_status st = armt_forward(ctx, ids + 32, n - 32, &fp);
        armt_fault_inject(-1);
        ck_assert_int_eq(st, ARMT_STATUS_OUT_OF_DEVICE_MEMORY);
        ck_assert_msg(strstr(armt_ctx_last_error(ctx), "CL_OUT_OF_RESOURCES") != NULL, "%s",
                      armt_ctx_last_error(ctx));
        ck_assert_int_eq(armt_ctx_memory_get(ctx, w1, z1, wr1), ARMT_OK);
        ck_assert(memcmp(w0, w1, nw * 4) == 0 && memcmp(z0, z1, nz * 4) == 0 &&
                  memcmp(wr0, wr1, (size_t)c.n_layers) == 0);
    }
    /* the context goes on as if nothing happened */
    float *la = malloc(32 * V * 4), *lb = malloc(32 * V * 4);
    fp.output = ARMT_OUTPUT_LOGITS_ALL;
    fp.out_count = 32 * V;
    fp.out = la;
    ck_assert_int_eq(armt_forward(ctx, ids + 32, 32, &fp), ARMT_OK);
    fp.out = lb;
    ck_assert_int_eq(armt_forward(clean, ids + 32, 32, &fp), ARMT_OK);
    ck_assert(memcmp(la, lb, 32 * V * 4) == 0);
    free(la);
    free(lb);
    free(w0);
    free(z0);
    free(w1);
    free(z1);
    armt_ctx_free(ctx);
    armt_ctx_free(clean);
    armt_model_free(m);
    armt_runtime_free(rt);
}
END_TEST

/* Bad arguments to every public entry point: a specific status, never a crash. */
START_TEST(test_null_and_bad_arguments) {
    armt_runtime *rt = test_runtime();
    armt_config c;
    ck_assert_int_eq(armt_config_preset("tiny", &c), ARMT_OK);
    ck_assert_int_eq(armt_config_preset("no-such-preset", &c), ARMT_STATUS_INVALID_ARGUMENT);
    ck_assert_int_eq(armt_config_preset(NULL, &c), ARMT_STATUS_INVALID_ARGUMENT);
    armt_model *m = NULL;
    ck_assert_int_eq(armt_model_create_random(NULL, &c, NULL, &m), ARMT_STATUS_INVALID_ARGUMENT);
    ck_assert_int_eq(armt_model_create_random(rt, NULL, NULL, &m), ARMT_STATUS_INVALID_ARGUMENT);
    ck_assert_int_eq(armt_model_create_random(rt, &c, NULL, NULL), ARMT_STATUS_INVALID_ARGUMENT);
    armt_config bad = c;
    bad.n_kv_heads = 3; /* does not divide 4 heads */
    ck_assert_int_eq(armt_model_create_random(rt, &bad, NULL, &m), ARMT_STATUS_BAD_CONFIG);
    ck_assert_ptr_null(m);
    ck_assert_int_eq(armt_model_load(rt, "/nonexistent/model-dir", NULL, &m), ARMT_STATUS_IO_ERROR);
    ck_assert_ptr_null(m);
    ck_assert_int_eq(armt_model_load(rt, NULL, NULL, &m), ARMT_STATUS_INVALID_ARGUMENT);
    ck_assert_int_eq(armt_model_create_random(rt, &c, NULL, &m), ARMT_OK);
    armt_ctx *ctx = NULL;
    ck_assert_int_eq(armt_ctx_create(NULL, NULL, &ctx), ARMT_STATUS_INVALID_ARGUMENT);
    ck_assert_int_eq(armt_ctx_create(m, NULL, NULL), ARMT_STATUS_INVALID_ARGUMENT);
    ck_assert_int_eq(armt_ctx_create(m, NULL, &ctx), ARMT_OK);
    ck_assert_int_eq(armt_ctx_memory_set(ctx, NULL, NULL, NULL), ARMT_STATUS_INVALID_ARGUMENT);
    ck_assert_int_eq(armt_ctx_memory_get(NULL, NULL, NULL, NULL), ARMT_STATUS_INVALID_ARGUMENT);
    ck_assert_int_eq(armt_ctx_memory_load(ctx, "/nonexistent/state"), ARMT_STATUS_IO_ERROR);
    ck_assert_int_eq(armt_ctx_stats(ctx, NULL), ARMT_STATUS_INVALID_ARGUMENT);
    ck_assert_int_eq(armt_model_save(NULL, "/tmp/x"), ARMT_STATUS_INVALID_ARGUMENT);
    ck_assert_int_eq(armt_model_save(m, "/nonexistent/dir/model.safetensors"), ARMT_STATUS_IO_ERROR);
    /* a state file that is not one */
    char path[] = "/tmp/armt-notstate-XXXXXX";
    int fd = mkstemp(path);
    ck_assert_int_ge(fd, 0);
    ck_assert_int_eq(write(fd, "hello, world, this is not a state file at all, no no no no no no no", 64),
                     64);
    close(fd);
    ck_assert_int_eq(armt_ctx_memory_load(ctx, path), ARMT_STATUS_BAD_FILE);
    remove(path);
    int32_t ids[3] = {1, 2, 3};
    armt_generate_params gp = armt_generate_default_params();
    int32_t out[4];
    ck_assert_int_eq(armt_generate(NULL, ids, 3, &gp, out, 4, NULL), ARMT_STATUS_INVALID_ARGUMENT);
    ck_assert_int_eq(armt_generate(ctx, ids, 0, &gp, out, 4, NULL), ARMT_STATUS_EMPTY_INPUT);
    gp.max_new_tokens = 8;
    ck_assert_int_eq(armt_generate(ctx, ids, 3, &gp, out, 4, NULL), ARMT_STATUS_INVALID_ARGUMENT);
    gp.max_new_tokens = 4;
    gp.temperature = -1.0f;
    ck_assert_int_eq(armt_generate(ctx, ids, 3, &gp, out, 4, NULL), ARMT_STATUS_INVALID_ARGUMENT);
    gp.temperature = 0.0f;
    ids[1] = c.vocab_size + 5;
    ck_assert_int_eq(armt_generate(ctx, ids, 3, &gp, out, 4, NULL), ARMT_STATUS_TOKEN_OUT_OF_RANGE);
    armt_ctx_free(ctx);
    armt_model_free(m);
    armt_runtime_free(rt);
}
END_TEST

/* ======================================================================================================= */
/* Two threads                                                                                             */
/* ======================================================================================================= */

typedef struct job {
    armt_model *m;
    const int32_t *ids;
    size_t n;
    float *logits;
    armt_status st;
} job;

static void *run_job(void *arg) {
    job *j = arg;
    armt_ctx *ctx = NULL;
    j->st = armt_ctx_create(j->m, NULL, &ctx);
    if (j->st != ARMT_OK) return NULL;
    armt_forward_params fp = armt_forward_default_params();
    fp.output = ARMT_OUTPUT_LOGITS_ALL;
    fp.out = j->logits;
    fp.out_count = j->n * (size_t)armt_model_config(j->m)->vocab_size;
    for (int rep = 0; rep < 3 && j->st == ARMT_OK; rep++) {
        j->st = armt_ctx_reset(ctx);
        if (j->st == ARMT_OK) j->st = armt_forward(ctx, j->ids, j->n, &fp);
    }
    armt_ctx_free(ctx);
    return NULL;
}

START_TEST(test_two_threads) {
    armt_runtime *rt = test_runtime();
    armt_config c;
    ck_assert_int_eq(armt_config_preset("tiny", &c), ARMT_OK);
    armt_model_params p = armt_model_default_params();
    p.wmv_std = 0.05f;
    armt_model *m = NULL;
    ck_assert_int_eq(armt_model_create_random(rt, &c, &p, &m), ARMT_OK);
    size_t n = 50, V = (size_t)c.vocab_size;
    int32_t a_ids[50], b_ids[50];
    test_random_ids(a_ids, n, c.vocab_size, 1);
    test_random_ids(b_ids, n, c.vocab_size, 2);
    job seq[2] = {{m, a_ids, n, malloc(n * V * 4), ARMT_OK}, {m, b_ids, n, malloc(n * V * 4), ARMT_OK}};
    job par[2] = {{m, a_ids, n, malloc(n * V * 4), ARMT_OK}, {m, b_ids, n, malloc(n * V * 4), ARMT_OK}};
    run_job(&seq[0]);
    run_job(&seq[1]);
    ck_assert_int_eq(seq[0].st, ARMT_OK);
    ck_assert_int_eq(seq[1].st, ARMT_OK);
    pthread_t t[2];
    for (int i = 0; i < 2; i++)
        ck_assert_int_eq(pthread_create(&t[i], NULL, run_job, &par[i]), 0);
    for (int i = 0; i < 2; i++)
        ck_assert_int_eq(pthread_join(t[i], NULL), 0);
    for (int i = 0; i < 2; i++) {
        ck_assert_int_eq(par[i].st, ARMT_OK);
        ck_assert_msg(memcmp(seq[i].logits, par[i].logits, n * V * 4) == 0, "thread %d differs", i);
        free(seq[i].logits);
        free(par[i].logits);
    }
    armt_model_free(m);
    armt_runtime_free(rt);
}
END_TEST

static Suite *suite(void) {
    Suite *s = suite_create("limits");
    TCase *tc = test_tcase(s, "limits", 600);
    tcase_add_test(tc, test_model_too_large);
    tcase_add_test(tc, test_forward_too_large);
    tcase_add_test(tc, test_null_and_bad_arguments);
    tcase_add_test(tc, test_device_error_mid_forward);
    tcase_add_test(tc, test_two_threads);
    return s;
}

int main(void) { return test_run_suite(suite(), 1); }
