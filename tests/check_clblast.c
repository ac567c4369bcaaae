/*
 * check_clblast.c - the CLBlast kernel parameters (lib/device/clblast.c): tuner JSON files named by
 * $ARMT_CLBLAST_TUNING reach CLBlast (parameters it cannot compile make the fp32 GEMMs fail; parameters it
 * can leave the results as they were, to rounding), the fastest file of a kernel wins, and every broken file
 * is refused when the runtime is created, with a message naming it.
 *
 * CLBlast keeps overrides per process: Check runs each test in a child of its own.
 */
#include "config.h"

#include "testutil.h"

#include "device/internal.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* XgemmDirect, which CLBlast takes for the tiny model's GEMMs: valid parameters (not its defaults), and a
 * vector width OpenCL has no type for. */
#define DIRECT_OK "KWID=2 MDIMAD=8 MDIMCD=8 NDIMBD=8 NDIMCD=8 PADA=1 PADB=0 PRECISION=32 VWMD=2 VWND=1 WGD=16"
#define DIRECT_BAD \
    "KWID=2 MDIMAD=8 MDIMCD=8 NDIMBD=8 NDIMCD=8 PADA=1 PADB=0 PRECISION=32 VWMD=3 VWND=1 WGD=24"
/* Xgemm (the indirect kernel, for large GEMMs) */
#define XGEMM_OK                                                                                        \
    "GEMMK=0 KREG=1 KWG=16 KWI=2 MDIMA=8 MDIMC=8 MWG=32 NDIMB=8 NDIMC=8 NWG=32 PRECISION=32 SA=0 SB=0 " \
    "STRM=0 "                                                                                           \
    "STRN=0 VWM=1 VWN=1"

static void write_tuner(const char *dir, const char *file, const char *family, const char *precision,
                        const char *params, const char *time) {
    char path[512];
    snprintf(path, sizeof path, "%s/%s", dir, file);
    FILE *f = fopen(path, "w");
    ck_assert_ptr_nonnull(f);
    /* the layout CLBlast's tuners write (metadata strings, then every result tried) */
    fprintf(f,
            "{\n  \"kernel_family\": \"%s\",\n  \"precision\": \"%s\",\n  \"best_kernel\": \"K\",\n"
            "  \"best_time\": \"%s\",\n  \"best_parameters\": \"%s\",\n  \"arg_m\": \"256\",\n"
            "  \"clblast_device_name\": \"test\",\n  \"results\": [\n    {\n      \"kernel\": \"K\",\n"
            "      \"time\": 0.5,\n      \"parameters\": {\"KWID\": 2}\n    }\n  ]\n}\n",
            family, precision, time, params);
    fclose(f);
}

static char *tmpdir(void) {
    static char dir[64];
    snprintf(dir, sizeof dir, "/tmp/armt-clblast-XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(dir));
    return dir;
}

static void rmdir_all(const char *dir) {
    char cmd[256];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    ck_assert_int_eq(system(cmd), 0);
}

/* Logits of a fixed input on a tiny fp32 model (its GEMMs are CLBlast's); ARMT_OK or the forward's status
 * (the message then in msg). */
static armt_status tiny_logits(armt_runtime *rt, float *out, size_t cap, char *msg, size_t msg_len) {
    armt_config c;
    ck_assert_int_eq(armt_config_preset("tiny", &c), ARMT_OK);
    armt_model_params p = armt_model_default_params();
    p.wmv_std = 0.05f;
    armt_model *m = NULL;
    ck_assert_msg(armt_model_create_random(rt, &c, &p, &m) == ARMT_OK, "%s", armt_last_error());
    armt_ctx *ctx = NULL;
    ck_assert_int_eq(armt_ctx_create(m, NULL, &ctx), ARMT_OK);
    int32_t ids[40];
    test_random_ids(ids, 40, c.vocab_size, 7);
    armt_forward_params fp = armt_forward_default_params();
    fp.output = ARMT_OUTPUT_LOGITS_ALL;
    fp.out = out;
    fp.out_count = cap;
    armt_status st = armt_forward(ctx, ids, 40, &fp);
    snprintf(msg, msg_len, "%s", st == ARMT_OK ? "" : armt_ctx_last_error(ctx));
    armt_ctx_free(ctx);
    armt_model_free(m);
    return st;
}

static size_t logits_count(void) {
    armt_config c;
    ck_assert_int_eq(armt_config_preset("tiny", &c), ARMT_OK);
    return (size_t)40 * (size_t)c.vocab_size;
}

/* a runtime with $ARMT_CLBLAST_TUNING = where (NULL: unset); the status of armt_runtime_create */
static armt_status runtime_with(const char *where, armt_runtime **rt) {
    if (where)
        setenv("ARMT_CLBLAST_TUNING", where, 1);
    else
        unsetenv("ARMT_CLBLAST_TUNING");
    *rt = NULL;
    return armt_runtime_create(NULL, rt);
}

START_TEST(test_tuning_applied) {
    const size_t n = logits_count();
    float *base = malloc(n * 4), *tuned = malloc(n * 4);
    char msg[512];
    armt_runtime *rt = NULL;
    ck_assert_int_eq(runtime_with(NULL, &rt), ARMT_OK);
    ck_assert_int_eq(rt->clblast_tuned, 0); /* PoCL is in no built-in entry */
    ck_assert_msg(tiny_logits(rt, base, n, msg, sizeof msg) == ARMT_OK, "%s", msg);
    armt_runtime_free(rt);

    /* two files for XgemmDirect: the faster one (valid) wins over the slower one (that CLBlast cannot
     * compile); one for Xgemm */
    char *dir = tmpdir();
    write_tuner(dir, "clblast_xgemm_direct_1_32.json", "xgemm_direct_1", "32", DIRECT_OK, "0.50");
    write_tuner(dir, "clblast_xgemm_direct_2_32.json", "xgemm_direct_2", "32", DIRECT_BAD, "0.90");
    write_tuner(dir, "clblast_xgemm_1_32.json", "xgemm_1", "32", XGEMM_OK, "1.25");
    ck_assert_msg(runtime_with(dir, &rt) == ARMT_OK, "%s", armt_last_error());
    ck_assert_int_eq(rt->clblast_tuned, 2);
    ck_assert_msg(tiny_logits(rt, tuned, n, msg, sizeof msg) == ARMT_OK, "%s", msg);
    double d = 0, m = 0;
    for (size_t i = 0; i < n; i++) {
        d = fmax(d, fabs((double)tuned[i] - base[i]));
        m = fmax(m, fabs((double)base[i]));
    }
    fprintf(stderr, "CLBlast tuning from files: logits %.3g from the untuned run (max |logit| %.3g)\n", d, m);
    ck_assert_msg(d <= 1e-5 * fmax(1.0, m), "tuned CLBlast: logits %.3g from the untuned run", d);
    armt_runtime_free(rt);
    rmdir_all(dir);
    free(base);
    free(tuned);
}
END_TEST

/* The override reaches CLBlast: with the slower file now the faster, the GEMMs fail to compile. */
START_TEST(test_tuning_reaches_clblast) {
    const size_t n = logits_count();
    float *out = malloc(n * 4);
    char msg[512];
    char *dir = tmpdir();
    write_tuner(dir, "a.json", "xgemm_direct_1", "32", DIRECT_OK, "0.90");
    write_tuner(dir, "b.json", "xgemm_direct_2", "32", DIRECT_BAD, "0.50");
    armt_runtime *rt = NULL;
    ck_assert_msg(runtime_with(dir, &rt) == ARMT_OK, "%s", armt_last_error());
    armt_status st = tiny_logits(rt, out, n, msg, sizeof msg);
    ck_assert_msg(st != ARMT_OK && strstr(msg, "CLBlast"), "a GEMM with VWMD=3: %s (%s)", armt_status_str(st),
                  msg);
    armt_runtime_free(rt);
    rmdir_all(dir);
    free(out);
}
END_TEST

START_TEST(test_tuning_files_refused) {
    static const struct {
        const char *family, *precision, *params, *time, *want;
    } bad[] = {
        {"xgemm_direct_1", "32", "WGD=16", "0.5", "refused"},      /* not every tunable */
        {"xgemm_direct_1", "64", DIRECT_OK, "0.5", "precision"},   /* double precision */
        {"conv_magic", "32", DIRECT_OK, "0.5", "kernel_family"},   /* no such tuner */
        {"xgemm_direct_1", "32", "KWID=two", "0.5", "NAME=VALUE"}, /* not a number */
        {"xgemm_direct_1", "32", DIRECT_OK, "fast", "best_time"},  /* not a time */
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char *dir = tmpdir();
        write_tuner(dir, "t.json", bad[i].family, bad[i].precision, bad[i].params, bad[i].time);
        armt_runtime *rt = NULL;
        armt_status st = runtime_with(dir, &rt);
        ck_assert_msg(st == ARMT_STATUS_BAD_FILE, "case %zu: %s", i, armt_status_str(st));
        ck_assert_ptr_null(rt);
        ck_assert_msg(strstr(armt_last_error(), "t.json") && strstr(armt_last_error(), bad[i].want),
                      "case %zu: '%s' names neither the file nor %s", i, armt_last_error(), bad[i].want);
        rmdir_all(dir);
    }
    /* not JSON; a path that does not exist */
    char *dir = tmpdir();
    char path[512];
    snprintf(path, sizeof path, "%s/x.json", dir);
    FILE *f = fopen(path, "w");
    ck_assert_ptr_nonnull(f);
    fputs("{\"kernel_family\": ", f);
    fclose(f);
    armt_runtime *rt = NULL;
    ck_assert_int_eq(runtime_with(path, &rt), ARMT_STATUS_BAD_FILE);
    ck_assert_ptr_null(rt);
    ck_assert_msg(strstr(armt_last_error(), "x.json"), "%s", armt_last_error());
    ck_assert_int_eq(runtime_with("/nonexistent/armt-tuning", &rt), ARMT_STATUS_IO_ERROR);
    ck_assert_msg(strstr(armt_last_error(), "ARMT_CLBLAST_TUNING"), "%s", armt_last_error());
    rmdir_all(dir);
    unsetenv("ARMT_CLBLAST_TUNING");
}
END_TEST

static Suite *suite(void) {
    Suite *s = suite_create("clblast");
    TCase *tc = test_tcase(s, "tuning", 240);
    tcase_add_test(tc, test_tuning_applied);
    tcase_add_test(tc, test_tuning_reaches_clblast);
    tcase_add_test(tc, test_tuning_files_refused);
    return s;
}

int main(void) { return test_run_suite(suite(), 1); }
