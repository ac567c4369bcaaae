/*
 * check_pipeline_mpi.c - the layer pipeline with one stage per MPI rank (./configure --enable-mpi; run by
 * tests/pipeline_mpi.sh as `mpirun -np 2`, PoCL with two CPU devices, rank r on device r): outputs and
 * memory states on rank 0 bit-identical to one device for every case of pipeline_util.c; a device error
 * injected on either rank gives the same clean error on every rank, with no rank left waiting, and every
 * rank's state as before the call; the state gathered on rank 0 and scattered back, also through a state
 * file.
 *
 * Check runs without fork here (MPI and fork do not mix): every rank runs every test, and the pipeline
 * calls are collective, so a test asserts on statuses (which every rank shares) before it compares on rank
 * 0. mpirun runs under a timeout in tests/pipeline_mpi.sh, so a hang fails the test instead of the job.
 */
#include "config.h"

#include "pipeline_util.h"
#include "testutil.h"

#include "device/internal.h"

#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static int rank, ranks;

/* A check that one rank makes between collective calls is recorded and asserted at the test's end, so that
 * a failing rank does not leave the others waiting in the next collective call. */
static char later[512];
#define LATER(cond, ...)                                                      \
    do {                                                                      \
        if (!(cond) && !later[0]) snprintf(later, sizeof later, __VA_ARGS__); \
    } while (0)
#define LATER_ASSERT()                                \
    do {                                              \
        char copy_[sizeof later];                     \
        memcpy(copy_, later, sizeof later);           \
        later[0] = '\0';                              \
        ck_assert_msg(copy_[0] == '\0', "%s", copy_); \
    } while (0)

static int no_overlap; /* armt_pipeline_params.no_overlap of the pipelines make_pipeline makes */

static armt_pipeline *make_pipeline(const pu_case *c) {
    armt_pipeline_params p = pu_params(c);
    p.no_overlap = no_overlap;
    p.mpi = 1; /* rank r takes device r of the platform */
    armt_pipeline *pipe = NULL;
    armt_status st = armt_pipeline_create(&p, &pipe);
    ck_assert_msg(st == ARMT_OK, "rank %d: armt_pipeline_create: %s", rank, armt_last_error());
    return pipe;
}

START_TEST(test_bit_identical) {
    size_t nc;
    const pu_case *c = &pu_cases(&nc)[_i % 6];
    no_overlap = _i >= 6; /* the second half: hand-overs after each tick */
    armt_pipeline *pipe = make_pipeline(c);
    pu_result two;
    armt_status st = pu_pipeline(pipe, c, &two, rank);
    ck_assert_msg(st == ARMT_OK, "rank %d, %s: %s", rank, c->name, armt_pipeline_last_error(pipe));
    armt_pipeline_stats ps;
    ck_assert_int_eq(armt_pipeline_stats_get(pipe, &ps), ARMT_OK);
    armt_pipeline_free(pipe);
    if (rank == 0) {
        pu_result one;
        char why[256];
        pu_single(c, &one);
        ck_assert_msg(pu_equal(&two, &one, why, sizeof why), "%s, %d ranks: %s", c->name, ranks, why);
        ck_assert(ps.n_stages == ranks && ps.bytes_moved > 0 && ps.seconds > 0.0);
        pu_result_free(&one);
    }
    pu_result_free(&two);
    LATER_ASSERT();
}
END_TEST

/* A device error on one rank (_i: which rank, and the schedule): every rank returns it, rank 0's message
 * names the failing rank, the gathered state is as before, and the pipeline goes on. */
START_TEST(test_fault_on_one_rank) {
    size_t nc;
    const pu_case *c = &pu_cases(&nc)[_i / 2 ? 0 : 1]; /* fp32 diagonal, then sequential */
    const int bad = _i % 2;
    no_overlap = _i >= 4; /* the last two: the diagonal with hand-overs after each tick */
    if (_i >= 4) c = &pu_cases(&nc)[1];
    armt_pipeline *pipe = make_pipeline(c);
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
    if (rank == bad) armt_fault_inject(30);
    armt_status st = armt_pipeline_forward(pipe, ids + c->n[0], c->n[1], &fp);
    armt_fault_inject(-1);
    ck_assert_msg(st == ARMT_STATUS_OUT_OF_DEVICE_MEMORY, "rank %d: %s", rank,
                  armt_pipeline_last_error(pipe));
    const char *msg = armt_pipeline_last_error(pipe);
    ck_assert_msg(strstr(msg, "CL_OUT_OF_RESOURCES") && strstr(msg, "pipeline stage"), "rank %d: %s", rank,
                  msg);
    if (rank != bad) {
        char want[32];
        snprintf(want, sizeof want, "rank %d", bad);
        LATER(strstr(msg, want) != NULL, "rank %d: %s", rank, msg);
    }
    ck_assert_int_eq(armt_pipeline_memory_get(pipe, w1, z1, r1), ARMT_OK);
    if (rank == 0)
        LATER(memcmp(w0, w1, nw * 4) == 0 && memcmp(z0, z1, nl * dk * 4) == 0 && memcmp(r0, r1, nl) == 0,
              "the state changed after a failed call");
    ck_assert_int_eq(armt_pipeline_forward(pipe, ids + c->n[0], c->n[1], &fp), ARMT_OK);
    ck_assert_int_eq(armt_pipeline_memory_get(pipe, w1, z1, r1), ARMT_OK);
    if (rank == 0) {
        pu_result one;
        pu_single(c, &one);
        ck_assert(memcmp(w1, one.w, nw * 4) == 0 && memcmp(z1, one.z, nl * dk * 4) == 0);
        pu_result_free(&one);
    }
    free(w0);
    free(z0);
    free(w1);
    free(z1);
    armt_pipeline_free(pipe);
    LATER_ASSERT();
}
END_TEST

/* The state set from rank 0 lands on the ranks' layers and comes back the same; a reset empties it. */
START_TEST(test_state_round_trip) {
    no_overlap = 0;
    size_t nc;
    const pu_case *c = &pu_cases(&nc)[1];
    armt_pipeline *pipe = make_pipeline(c);
    const size_t dk = (size_t)armt_config_d_key(&c->cfg), nl = (size_t)c->cfg.n_layers,
                 nw = nl * dk * (size_t)c->cfg.hidden_size;
    float *w = malloc(nw * 4), *z = malloc(nl * dk * 4), *w1 = calloc(nw, 4), *z1 = calloc(nl * dk, 4);
    uint8_t r[8] = {1, 0, 1, 1}, r1[8] = {0};
    for (size_t i = 0; i < nw; i++)
        w[i] = (float)i * 0.001f;
    for (size_t i = 0; i < nl * dk; i++)
        z[i] = (float)i;
    ck_assert_int_eq(armt_pipeline_memory_set(pipe, w, z, r), ARMT_OK);
    ck_assert_int_eq(armt_pipeline_memory_get(pipe, w1, z1, r1), ARMT_OK);
    if (rank == 0)
        LATER(memcmp(w, w1, nw * 4) == 0 && memcmp(z, z1, nl * dk * 4) == 0 && memcmp(r, r1, nl) == 0,
              "memory_set then memory_get differ");
    /* through a state file: rank 0 writes what the ranks hold, reads it back and sends it out */
    char path[64];
    snprintf(path, sizeof path, "/tmp/check_pipeline_mpi.%d.state", (int)getppid());
    ck_assert_int_eq(armt_pipeline_memory_save(pipe, path), ARMT_OK);
    ck_assert_int_eq(armt_pipeline_reset(pipe), ARMT_OK);
    ck_assert_int_eq(armt_pipeline_memory_load(pipe, path), ARMT_OK);
    memset(w1, 0, nw * 4);
    ck_assert_int_eq(armt_pipeline_memory_get(pipe, w1, z1, r1), ARMT_OK);
    if (rank == 0) {
        LATER(memcmp(w, w1, nw * 4) == 0 && memcmp(z, z1, nl * dk * 4) == 0 && memcmp(r, r1, nl) == 0,
              "the state differs after a save and a load");
        unlink(path);
    }
    ck_assert_int_eq(armt_pipeline_reset(pipe), ARMT_OK);
    ck_assert_int_eq(armt_pipeline_memory_get(pipe, w1, z1, r1), ARMT_OK);
    if (rank == 0)
        for (size_t l = 0; l < nl; l++)
            LATER(r1[l] == 0, "layer %zu still written after a reset", l);
    free(w);
    free(z);
    free(w1);
    free(z1);
    armt_pipeline_free(pipe);
    LATER_ASSERT();
}
END_TEST

/* With the sliding window: the ranks' state file is one context's byte for byte, and loading one context's
 * file lets the ranks continue as that context does (the windows gathered and scattered by layer). */
START_TEST(test_window_state_file) {
    no_overlap = 0;
    size_t nc;
    const pu_case *c = &pu_cases(&nc)[4];
    ck_assert(c->cfg.sliding_window);
    int32_t ids[512];
    size_t total;
    pu_ids(c, ids, &total);
    char one_path[96], pipe_path[96];
    snprintf(one_path, sizeof one_path, "/tmp/check_pipeline_mpi.%d.one", (int)getppid());
    snprintf(pipe_path, sizeof pipe_path, "/tmp/check_pipeline_mpi.%d.pipe", (int)getppid());
    armt_forward_params fp = armt_forward_default_params();
    fp.schedule = c->schedule;
    armt_runtime *rt = NULL;
    armt_model *m = NULL;
    armt_ctx *ctx = NULL;
    if (rank == 0) { /* one context's file */
        rt = test_runtime();
        ck_assert_int_eq(armt_model_create_random(rt, &c->cfg, &c->mp, &m), ARMT_OK);
        ck_assert_int_eq(armt_ctx_create(m, NULL, &ctx), ARMT_OK);
        ck_assert_int_eq(armt_forward(ctx, ids, c->n[0], &fp), ARMT_OK);
        ck_assert_int_eq(armt_ctx_memory_save(ctx, one_path), ARMT_OK);
    }
    armt_pipeline *pipe = make_pipeline(c);
    ck_assert_int_eq(armt_pipeline_forward(pipe, ids, c->n[0], &fp), ARMT_OK);
    ck_assert_int_eq(armt_pipeline_memory_save(pipe, pipe_path), ARMT_OK);
    if (rank == 0) {
        char cmd[256];
        snprintf(cmd, sizeof cmd, "cmp -s %s %s", one_path, pipe_path);
        LATER(system(cmd) == 0, "the ranks' state file differs from one context's");
    }
    ck_assert_int_eq(armt_pipeline_reset(pipe), ARMT_OK);
    ck_assert_int_eq(armt_pipeline_memory_load(pipe, one_path), ARMT_OK);
    const size_t V = (size_t)c->cfg.vocab_size;
    float *lp = malloc(c->n[1] * V * 4), *lo = malloc(c->n[1] * V * 4);
    fp.output = ARMT_OUTPUT_LOGITS_ALL;
    fp.out_count = c->n[1] * V;
    fp.out = lp;
    ck_assert_int_eq(armt_pipeline_forward(pipe, ids + c->n[0], c->n[1], &fp), ARMT_OK);
    if (rank == 0) {
        fp.out = lo;
        ck_assert_int_eq(armt_forward(ctx, ids + c->n[0], c->n[1], &fp), ARMT_OK);
        ck_assert_msg(memcmp(lo, lp, fp.out_count * 4) == 0, "outputs after a load differ");
        unlink(one_path);
        unlink(pipe_path);
    }
    free(lp);
    free(lo);
    armt_pipeline_free(pipe);
    armt_ctx_free(ctx);
    armt_model_free(m);
    armt_runtime_free(rt);
    LATER_ASSERT();
}
END_TEST

int main(int argc, char **argv) {
    setenv("POCL_DEVICES", "pthread pthread", 0);
    setenv("CK_FORK", "no", 1);
    MPI_Init(&argc, &argv);
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    MPI_Comm_size(MPI_COMM_WORLD, &ranks);
    Suite *s = suite_create("pipeline_mpi");
    size_t nc;
    pu_cases(&nc);
    TCase *tc = test_tcase(s, "pipeline_mpi", 600);
    tcase_add_loop_test(tc, test_bit_identical, 0, 2 * (int)nc);
    tcase_add_loop_test(tc, test_fault_on_one_rank, 0, 6);
    tcase_add_test(tc, test_state_round_trip);
    tcase_add_test(tc, test_window_state_file);
    int rc = test_run_suite(s, 0); /* no device probe: it forks */
    /* every rank's verdict: one failing rank fails the run */
    int worst = rc;
    MPI_Allreduce(&rc, &worst, 1, MPI_INT, MPI_MAX, MPI_COMM_WORLD);
    MPI_Finalize();
    return worst;
}
