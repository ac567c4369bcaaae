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
#include <time.h>
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

/* Timeouts of the test cases made by test_tcase, by name, for the time report. */
enum { MAX_TCASES = 16 };
static struct {
    char name[64];
    double timeout;
} tcases[MAX_TCASES];
static int n_tcases;

static double env_seconds(const char *name, double dflt) {
    const char *e = getenv(name);
    char *end = NULL;
    double v = e ? strtod(e, &end) : 0.0;
    return e && end != e && v > 0.0 ? v : dflt;
}

TCase *test_tcase(Suite *s, const char *name, double timeout_s) {
    TCase *tc = tcase_create(name);
    tcase_set_timeout(tc, timeout_s);
    suite_add_tcase(s, tc);
    if (n_tcases < MAX_TCASES) {
        snprintf(tcases[n_tcases].name, sizeof tcases[n_tcases].name, "%s", name);
        tcases[n_tcases++].timeout = timeout_s;
    }
    return tc;
}

/* The timeout Check applies to a test of test case `name` (its default: CK_DEFAULT_TIMEOUT, else 4 s). */
static double tcase_timeout(const char *name) {
    double t = env_seconds("CK_DEFAULT_TIMEOUT", 4.0);
    for (int i = 0; i < n_tcases; i++)
        if (strcmp(tcases[i].name, name) == 0) t = tcases[i].timeout;
    return t * env_seconds("CK_TIMEOUT_MULTIPLIER", 1.0);
}

/* The text of the first <tag>text</tag> in [p, end), or "" */
static void xml_text(const char *p, const char *end, const char *tag, char *out, size_t n) {
    char open[32];
    snprintf(open, sizeof open, "<%s>", tag);
    const char *a = strstr(p, open), *b = NULL;
    out[0] = '\0';
    if (a && a < end) b = strchr(a += strlen(open), '<');
    if (b && b < end) snprintf(out, n, "%.*s", (int)(b - a), a);
}

/* One line per test of Check's XML log: seconds, share of its timeout, test case/test[loop index], result
 * (marked when over 30% of the timeout); then the suite's wall time. */
static void print_times(const char *xml, double wall_s) {
    FILE *f = fopen(xml, "rb");
    char *x = NULL;
    if (f) {
        fseek(f, 0, SEEK_END);
        long sz = ftell(f);
        fseek(f, 0, SEEK_SET);
        x = sz > 0 ? malloc((size_t)sz + 1) : NULL;
        if (x) x[fread(x, 1, (size_t)sz, f)] = '\0';
        fclose(f);
    }
    printf("test times (s, share of the test's timeout):\n");
    int n = 0, over = 0;
    for (const char *p = x ? strstr(x, "<test ") : NULL; p; p = strstr(p + 1, "<test ")) {
        const char *end = strstr(p, "</test>");
        if (!end) break;
        char result[32] = "", id[128], iter[16], dur[32], tc[64];
        sscanf(p, "<test result=\"%31[^\"]", result);
        xml_text(p, end, "id", id, sizeof id);
        xml_text(p, end, "iteration", iter, sizeof iter);
        xml_text(p, end, "duration", dur, sizeof dur);
        xml_text(p, end, "description", tc, sizeof tc);
        /* the loop index of a loop test (an id that occurs more than once) */
        char tag[160], name[256];
        snprintf(tag, sizeof tag, "<id>%s</id>", id);
        const char *first = strstr(x, tag);
        const int loop = first && strstr(first + 1, tag);
        snprintf(name, sizeof name, "%s/%s%s%s%s", tc, id, loop ? "[" : "", loop ? iter : "",
                 loop ? "]" : "");
        const double d = atof(dur), t = tcase_timeout(tc), share = d >= 0.0 ? 100.0 * d / t : 0.0;
        over += share > 30.0;
        if (d >= 0.0)
            printf("  %8.2f %4.0f%%  %s %s%s\n", d, share, name, result, share > 30.0 ? "  OVER 30%" : "");
        else /* no duration: it did not finish (a timeout, a crash) */
            printf("  %8s %5s  %s %s\n", "-", "-", name, result);
        n++;
    }
    printf("%d tests in %.1f s%s\n", n, wall_s, over ? "; some took over 30% of their timeout" : "");
    free(x);
}

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

int test_run_suite(Suite *s, int needs_device) {
    if (needs_device && !test_have_device()) {
        fprintf(stderr, "no OpenCL device: skipping this suite\n");
        return 77;
    }
    SRunner *sr = srunner_create(s);
    const char *env_xml = getenv("CK_XML_LOG_FILE_NAME");
    char tmp[] = "/tmp/armt-check-XXXXXX.xml";
    const char *xml = env_xml && *env_xml ? env_xml : NULL;
    if (!xml) {
        int fd = mkstemps(tmp, 4);
        if (fd >= 0) close(fd), xml = tmp;
    }
    if (xml) srunner_set_xml(sr, xml);
    const double t0 = now_s();
    srunner_run_all(sr, CK_NORMAL);
    const double wall = now_s() - t0;
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    fflush(stdout);
    if (xml) print_times(xml, wall);
    if (xml == tmp) remove(tmp);
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
    for (size_t i = 0; i < n; i++)
        ids[i] = (int32_t)(splitmix(&s) % (uint64_t)vocab);
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
        if (r == ARMT_ROLE_SINK && !c->use_sink) continue;
        int layers = armt_role_is_layer((armt_role)r) ? c->n_layers : 1;
        uint64_t per = armt_role_numel(c, (armt_role)r);
        h->role[r] = malloc((size_t)(per * (uint64_t)layers) * sizeof(float));
        ck_assert_ptr_nonnull(h->role[r]);
        for (int l = 0; l < layers; l++) {
            armt_status st =
                armt_model_read_role(m, (armt_role)r, l, 0, per, h->role[r] + (size_t)l * per, &err);
            ck_assert_msg(st == ARMT_OK, "read_role: %s", armt_err_msg(&err));
        }
    }
    armt_err_free(&err);
    ref_model_set_stacked(&h->ref, c, (const float *const *)h->role);
    return h;
}

void test_host_model_free(test_host_model *h) {
    if (!h) return;
    for (int r = 0; r < ARMT_ROLE_COUNT; r++)
        free(h->role[r]);
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

double test_max_abs_diff_ff(const float *a, const float *b, size_t n) {
    double m = 0.0;
    for (size_t i = 0; i < n; i++) {
        double d = fabs((double)a[i] - b[i]);
        if (!(d <= m)) m = d; /* NaN propagates as a failure */
    }
    return m;
}

double test_frob_rel(const float *a, const float *b, size_t n) {
    double num = 0, den = 0;
    for (size_t i = 0; i < n; i++) {
        double d = (double)a[i] - b[i];
        num += d * d;
        den += (double)b[i] * b[i];
    }
    return den > 0 ? sqrt(num / den) : sqrt(num);
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
