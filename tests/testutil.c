/*
 * testutil.c - see testutil.h.
 */
#include "config.h"

#include "testutil.h"

#include "common/error.h"
#include "device/internal.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

int test_have_device(void) {
    pid_t pid = fork();
    if (pid < 0) return 1; /* cannot tell: let the tests run and report */
    if (pid == 0) {
        armt_device_info *list = NULL;
        size_t n = 0;
        armt_status st = armt_device_list(&list, &n);
        armt_device_list_free(list);
        _exit(st == ARMT_OK && n > 0 ? 0 : 3);
    }
    int status = 0;
    if (waitpid(pid, &status, 0) < 0) return 1;
    return WIFEXITED(status) && WEXITSTATUS(status) == 0;
}

int test_run_suite(Suite *s, int needs_device) {
    if (needs_device && !test_have_device()) {
        fprintf(stderr, "no OpenCL device: skipping this suite\n");
        return 77;
    }
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? 0 : 1;
}

armt_runtime *test_runtime(void) {
    armt_runtime *rt = NULL;
    armt_status st = armt_runtime_create(NULL, &rt);
    ck_assert_msg(st == ARMT_OK, "armt_runtime_create: %s: %s", armt_status_str(st), armt_last_error());
    return rt;
}

static uint64_t splitmix(uint64_t *s) {
    uint64_t z = (*s += 0x9E3779B97F4A7C15ULL);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    return z ^ (z >> 31);
}

void test_random_ids(int32_t *ids, size_t n, int vocab, uint64_t seed) {
    uint64_t s = seed;
    for (size_t i = 0; i < n; i++) ids[i] = (int32_t)(splitmix(&s) % (uint64_t)vocab);
}

const char *test_data_dir(void) {
    const char *e = getenv("ARMT_TEST_DATA");
    if (e && *e) return e;
#ifdef ARMT_TEST_DATA_DIR
    return ARMT_TEST_DATA_DIR;
#else
    return "tests/data";
#endif
}

test_host_model *test_host_model_read(armt_model *m) {
    const armt_config *c = armt_model_config(m);
    test_host_model *h = calloc(1, sizeof *h);
    ck_assert_ptr_nonnull(h);
    armt_err err;
    armt_err_init(&err);
    for (int r = 0; r < ARMT_ROLE_COUNT; r++) {
        if (r == ARMT_ROLE_LM_HEAD && c->tie_word_embeddings) continue;
        int layers = armt_role_is_layer((armt_role)r) ? c->n_layers : 1;
        uint64_t per = armt_role_numel(c, (armt_role)r);
        h->role[r] = malloc((size_t)(per * (uint64_t)layers) * sizeof(float));
        ck_assert_ptr_nonnull(h->role[r]);
        for (int l = 0; l < layers; l++) {
            armt_status st = armt_model_read_role(m, (armt_role)r, l, 0, per, h->role[r] + (size_t)l * per, &err);
            ck_assert_msg(st == ARMT_OK, "read_role: %s", armt_err_msg(&err));
        }
    }
    armt_err_free(&err);
    ref_model_set_stacked(&h->ref, c, (const float *const *)h->role);
    return h;
}

void test_host_model_free(test_host_model *h) {
    if (!h) return;
    for (int r = 0; r < ARMT_ROLE_COUNT; r++) free(h->role[r]);
    free(h);
}

double test_max_abs_diff_fd(const float *a, const double *b, size_t n) {
    double m = 0.0;
    for (size_t i = 0; i < n; i++) {
        double d = fabs((double)a[i] - b[i]);
        if (!(d <= m)) m = d; /* NaN propagates as a failure */
    }
    return m;
}

double test_rel_err(const float *a, const float *b, size_t n) {
    double d = 0, m = 0;
    for (size_t i = 0; i < n; i++) {
        if (isnan(a[i]) || isnan(b[i])) return INFINITY;
        d = fmax(d, fabs((double)a[i] - (double)b[i]));
        m = fmax(m, fabs((double)b[i]));
    }
    return m > 0 ? d / m : d;
}

double test_max_rel_diff_ff(const float *a, const float *b, size_t n, double floor) {
    double m = 0.0;
    for (size_t i = 0; i < n; i++) {
        double den = fabs((double)b[i]) > floor ? fabs((double)b[i]) : floor;
        double d = fabs((double)a[i] - (double)b[i]) / den;
        if (!(d <= m)) m = d;
    }
    return m;
}
