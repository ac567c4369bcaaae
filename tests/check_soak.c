/*
 * check_soak.c - a soak run (issue 26): SOAK_CALLS (default 2,000) forward calls on one tiny model shared
 * by two contexts on two threads, each thread drawing at random: the input length (1 .. 3 segments and a
 * bit), the schedule, the output, and between calls resets, saves and loads of its state. Every call is
 * checked against a context that did not live through the run: the pre-call state is put into a reference
 * context (every 25th call a brand-new one) and the same call must give the same output, bit for bit, and
 * the same state afterwards. Saves and loads must round-trip the state exactly. The device memory the
 * runtime holds must be flat once each context's scratch has reached its size (the first calls of each
 * thread use the longest input with every schedule), and leaks are LeakSanitizer's part in the ASan build.
 *
 * $SOAK_CALLS changes the number of calls (make check-soak SOAK_CALLS=20000 for a longer run).
 */
#include "config.h"

#include "testutil.h"

#include "common/util.h"
#include "device/internal.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define MAX_TOKENS 28 /* segment 8: up to 4 segments, the last one partial */

typedef struct worker {
    armt_model *m;
    armt_runtime *rt;
    pthread_barrier_t *warm; /* both threads past their warm-ups (waited on once, on every path) */
    int index, waited;
    long calls;
    uint64_t seed;
    char dir[256];
    /* results */
    char fail[512];
    long forwards, resets, saves, loads, fresh_checks;
    uint64_t bytes_after_warmup, bytes_max_after; /* the runtime's (both threads, the model) */
    uint64_t ctx_bytes_warm, ctx_bytes_max;       /* the soaked context's (armt_ctx_stats)     */
} worker;

static uint64_t rnd(uint64_t *s) {
    uint64_t z = (*s += 0x9E3779B97F4A7C15ULL);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    return z ^ (z >> 31);
}

static int failf(worker *w, const char *fmt, ...) {
    if (w->fail[0]) return -1;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(w->fail, sizeof w->fail, fmt, ap);
    va_end(ap);
    return -1;
}

typedef struct st_copy {
    float *w, *z;
    uint8_t *wr;
} st_copy;

static uint64_t rt_bytes(armt_runtime *rt) {
    pthread_mutex_lock(&rt->lock);
    uint64_t b = rt->device_bytes;
    pthread_mutex_unlock(&rt->lock);
    return b;
}

/* One forward on ctx, and the same on ref set to the same pre-call state: outputs and states must agree. */
static int checked_forward(worker *w, armt_ctx *ctx, armt_ctx *ref, const int32_t *ids, size_t n,
                           armt_schedule s, armt_output o, st_copy *pre, st_copy *post, st_copy *post_ref,
                           float *out, float *out_ref) {
    size_t nw = armt_ctx_memory_w_count(ctx), nz = armt_ctx_memory_z_count(ctx);
    size_t nl = (size_t)armt_model_config(w->m)->n_layers;
    if (armt_ctx_memory_get(ctx, pre->w, pre->z, pre->wr) != ARMT_OK)
        return failf(w, "memory_get: %s", armt_ctx_last_error(ctx));
    if (armt_ctx_memory_set(ref, pre->w, pre->z, pre->wr) != ARMT_OK)
        return failf(w, "memory_set (ref): %s", armt_ctx_last_error(ref));
    size_t count = armt_output_count(w->m, o, n);
    armt_forward_params fp = armt_forward_default_params();
    fp.schedule = s;
    fp.output = o;
    fp.out = out;
    fp.out_count = count;
    fp.no_profile = 1;
    armt_status st = armt_forward(ctx, ids, n, &fp);
    if (st != ARMT_OK) return failf(w, "forward: %s: %s", armt_status_str(st), armt_ctx_last_error(ctx));
    fp.out = out_ref;
    st = armt_forward(ref, ids, n, &fp);
    if (st != ARMT_OK)
        return failf(w, "forward (ref): %s: %s", armt_status_str(st), armt_ctx_last_error(ref));
    if (count && memcmp(out, out_ref, count * sizeof *out) != 0)
        return failf(w, "%s %s of %zu tokens: the output differs from a fresh context's",
                     armt_schedule_name(s), armt_output_name(o), n);
    if (armt_ctx_memory_get(ctx, post->w, post->z, post->wr) != ARMT_OK ||
        armt_ctx_memory_get(ref, post_ref->w, post_ref->z, post_ref->wr) != ARMT_OK)
        return failf(w, "memory_get after the forward");
    if (memcmp(post->w, post_ref->w, nw * 4) || memcmp(post->z, post_ref->z, nz * 4) ||
        memcmp(post->wr, post_ref->wr, nl))
        return failf(w, "%s of %zu tokens: the state differs from a fresh context's", armt_schedule_name(s),
                     n);
    return 0;
}

/* the end of the warm-up, on success and failure alike: the other thread waits for it. Twice: between the
 * two waits neither thread allocates, so the runtime's bytes then are what both warm contexts hold */
static void warm_barrier(worker *w) {
    if (w->waited) return;
    w->waited = 1;
    pthread_barrier_wait(w->warm);
    w->bytes_after_warmup = rt_bytes(w->rt);
    pthread_barrier_wait(w->warm);
}

static void *soak(void *arg) {
    worker *w = arg;
    armt_ctx *ctx = NULL, *ref = NULL;
    const armt_config *cfg = armt_model_config(w->m);
    size_t nw = 0, nz = 0, nl = (size_t)cfg->n_layers, V = (size_t)cfg->vocab_size,
           d = (size_t)cfg->hidden_size;
    size_t out_cap = MAX_TOKENS * (V > d ? V : d);
    float *out = malloc(out_cap * 4), *out_ref = malloc(out_cap * 4);
    st_copy c[3] = {{0}};
    char path[400];
    snprintf(path, sizeof path, "%s/state-%d", w->dir, w->index);
    if (armt_ctx_create(w->m, NULL, &ctx) != ARMT_OK || armt_ctx_create(w->m, NULL, &ref) != ARMT_OK) {
        failf(w, "ctx_create: %s", armt_last_error());
        goto out;
    }
    nw = armt_ctx_memory_w_count(ctx);
    nz = armt_ctx_memory_z_count(ctx);
    for (int i = 0; i < 3; i++) {
        c[i].w = malloc(nw * 4);
        c[i].z = malloc(nz * 4);
        c[i].wr = malloc(nl);
    }
    if (!out || !out_ref) {
        failf(w, "out of host memory");
        goto out;
    }
    uint64_t seed = w->seed;
    int32_t ids[MAX_TOKENS];
    /* warm-up: the longest input with every schedule and output, so that every scratch has its size */
    for (int s = 0; s < 3 && !w->fail[0]; s++)
        for (int o = 0; o < 4 && !w->fail[0]; o++) {
            test_random_ids(ids, MAX_TOKENS, (int)V, rnd(&seed));
            checked_forward(w, ctx, ref, ids, MAX_TOKENS, (armt_schedule)s, (armt_output)o, &c[0], &c[1],
                            &c[2], out, out_ref);
        }
    armt_stats stats;
    if (armt_ctx_stats(ctx, &stats) == ARMT_OK) w->ctx_bytes_warm = stats.device_bytes;
    warm_barrier(w);
    for (long i = 0; i < w->calls && !w->fail[0]; i++) {
        uint64_t r = rnd(&seed);
        uint64_t b = rt_bytes(w->rt);
        if (b > w->bytes_max_after) w->bytes_max_after = b;
        /* between calls: a reset (1 in 20), a save + load round trip (1 in 10) */
        if (r % 20 == 0) {
            if (armt_ctx_reset(ctx) != ARMT_OK) failf(w, "reset: %s", armt_ctx_last_error(ctx));
            w->resets++;
        } else if (r % 10 == 1) {
            if (armt_ctx_memory_get(ctx, c[0].w, c[0].z, c[0].wr) != ARMT_OK ||
                armt_ctx_memory_save(ctx, path) != ARMT_OK) {
                failf(w, "save: %s", armt_ctx_last_error(ctx));
                break;
            }
            w->saves++;
            /* load into the reference context: the state must arrive whole */
            if (armt_ctx_memory_load(ref, path) != ARMT_OK ||
                armt_ctx_memory_get(ref, c[1].w, c[1].z, c[1].wr) != ARMT_OK) {
                failf(w, "load: %s", armt_ctx_last_error(ref));
                break;
            }
            w->loads++;
            if (memcmp(c[0].w, c[1].w, nw * 4) || memcmp(c[0].z, c[1].z, nz * 4) ||
                memcmp(c[0].wr, c[1].wr, nl)) {
                failf(w, "call %ld: the loaded state differs from the saved one", i);
                break;
            }
            /* and back into the soaked context (a load over a different state) */
            if (armt_ctx_reset(ctx) != ARMT_OK || armt_ctx_memory_load(ctx, path) != ARMT_OK) {
                failf(w, "load: %s", armt_ctx_last_error(ctx));
                break;
            }
        }
        size_t n = 1 + (size_t)((r >> 8) % MAX_TOKENS);
        armt_schedule s = (armt_schedule)((r >> 16) % 3);
        armt_output o = (armt_output)((r >> 20) % 4);
        test_random_ids(ids, n, (int)V, rnd(&seed));
        armt_ctx *check = ref, *fresh = NULL;
        if (i % 25 == 24) { /* a brand-new context now and then */
            if (armt_ctx_create(w->m, NULL, &fresh) != ARMT_OK) {
                failf(w, "ctx_create: %s", armt_last_error());
                break;
            }
            check = fresh;
            w->fresh_checks++;
        }
        checked_forward(w, ctx, check, ids, n, s, o, &c[0], &c[1], &c[2], out, out_ref);
        armt_ctx_free(fresh);
        w->forwards++;
        if (armt_ctx_stats(ctx, &stats) == ARMT_OK && stats.device_bytes > w->ctx_bytes_max)
            w->ctx_bytes_max = stats.device_bytes;
    }
out:
    warm_barrier(w);
    for (int i = 0; i < 3; i++) {
        free(c[i].w);
        free(c[i].z);
        free(c[i].wr);
    }
    free(out);
    free(out_ref);
    armt_ctx_free(ctx);
    armt_ctx_free(ref);
    unlink(path);
    return NULL;
}

START_TEST(test_soak) {
    long total = 2000;
    const char *e = getenv("SOAK_CALLS");
    if (e && atol(e) > 0) total = atol(e);
    armt_runtime *rt = test_runtime();
    armt_config c;
    ck_assert_int_eq(armt_config_preset("tiny", &c), ARMT_OK);
    c.n_layers = 2;
    c.vocab_size = 128;
    armt_model_params p = armt_model_default_params();
    p.wmv_std = 0.05f;
    p.segment_size = 8;
    armt_model *m = NULL;
    ck_assert_msg(armt_model_create_random(rt, &c, &p, &m) == ARMT_OK, "%s", armt_last_error());
    uint64_t model_bytes = rt->device_bytes;
    char dir[] = "/tmp/armt-soak-XXXXXX";
    ck_assert_ptr_nonnull(mkdtemp(dir));
    worker w[2];
    memset(w, 0, sizeof w);
    pthread_t t[2];
    pthread_barrier_t warm;
    ck_assert_int_eq(pthread_barrier_init(&warm, NULL, 2), 0);
    double t0 = armt_now();
    for (int i = 0; i < 2; i++) {
        w[i].m = m;
        w[i].warm = &warm;
        w[i].rt = rt;
        w[i].index = i;
        w[i].calls = total / 2;
        w[i].seed = 1000 + (uint64_t)i;
        snprintf(w[i].dir, sizeof w[i].dir, "%s", dir);
        ck_assert_int_eq(pthread_create(&t[i], NULL, soak, &w[i]), 0);
    }
    for (int i = 0; i < 2; i++)
        ck_assert_int_eq(pthread_join(t[i], NULL), 0);
    pthread_barrier_destroy(&warm);
    double secs = armt_now() - t0;
    rmdir(dir);
    for (int i = 0; i < 2; i++) {
        fprintf(
            stderr,
            "soak thread %d: %ld forward calls (each checked; %ld against a brand-new context), %ld resets, "
            "%ld saves, %ld loads; context device bytes after warm-up %llu, max later %llu; runtime "
            "%llu, max later %llu\n",
            i, w[i].forwards, w[i].fresh_checks, w[i].resets, w[i].saves, w[i].loads,
            (unsigned long long)w[i].ctx_bytes_warm, (unsigned long long)w[i].ctx_bytes_max,
            (unsigned long long)w[i].bytes_after_warmup, (unsigned long long)w[i].bytes_max_after);
        ck_assert_msg(w[i].ctx_bytes_max == w[i].ctx_bytes_warm,
                      "thread %d: the context's device memory grew", i);
        ck_assert_msg(w[i].fail[0] == '\0', "thread %d: %s", i, w[i].fail);
        ck_assert_int_eq(w[i].forwards, total / 2);
    }
    fprintf(stderr, "soak: %ld forward calls in %.1f s\n", w[0].forwards + w[1].forwards, secs);
    /* device memory flat: never above what both contexts held once warm (brand-new contexts aside, which
     * add one context's bytes at most per thread), and back to the model's alone at the end */
    for (int i = 0; i < 2; i++)
        ck_assert_msg(w[i].bytes_max_after <=
                          w[i].bytes_after_warmup + 2 * (w[i].bytes_after_warmup - model_bytes),
                      "device memory grew: %llu after warm-up, %llu later",
                      (unsigned long long)w[i].bytes_after_warmup, (unsigned long long)w[i].bytes_max_after);
    ck_assert_uint_eq(rt->device_bytes, model_bytes);
    armt_model_free(m);
    ck_assert_uint_eq(rt->device_bytes, 0);
    armt_runtime_free(rt);
}
END_TEST

static Suite *suite(void) {
    Suite *s = suite_create("soak");
    TCase *tc = test_tcase(s, "soak", 1800);
    tcase_add_test(tc, test_soak);
    return s;
}

int main(void) { return test_run_suite(suite(), 1); }
