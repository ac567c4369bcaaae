/*
 * check_runtime.c - device listing and choice, kernel build at load (and its failure with the build log),
 * no-device behaviour. Every OpenCL object is created inside a test (Check forks per test).
 */
#include "config.h"

#include "testutil.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

START_TEST(test_list_devices) {
    armt_device_info *list = NULL;
    size_t n = 0;
    ck_assert_int_eq(armt_device_list(&list, &n), ARMT_OK);
    ck_assert_uint_gt(n, 0);
    for (size_t i = 0; i < n; i++) {
        ck_assert_msg(list[i].name[0] != '\0', "device %zu has no name", i);
        ck_assert_uint_gt(list[i].global_mem_bytes, 0);
        ck_assert_uint_gt(list[i].max_alloc_bytes, 0);
        ck_assert_uint_le(list[i].max_alloc_bytes, list[i].global_mem_bytes);
        ck_assert_uint_gt(list[i].local_mem_bytes, 0);
        ck_assert_msg(strncmp(list[i].opencl_c_version, "OpenCL C", 8) == 0, "OpenCL C version '%s'",
                      list[i].opencl_c_version);
        ck_assert_int_eq(list[i].is_gpu + list[i].is_cpu <= 1, 1);
    }
    armt_device_list_free(list);
    ck_assert_int_eq(armt_device_list(NULL, &n), ARMT_STATUS_INVALID_ARGUMENT);
}
END_TEST

/* Index "P"/"D" and a case-changed name substring select the same device. */
START_TEST(test_select_by_index_and_name) {
    armt_device_info *list = NULL;
    size_t n = 0;
    ck_assert_int_eq(armt_device_list(&list, &n), ARMT_OK);
    ck_assert_uint_gt(n, 0);
    armt_device_info want = list[n - 1];
    armt_device_list_free(list);

    char pidx[16], didx[16], sub[64];
    snprintf(pidx, sizeof pidx, "%d", want.platform_index);
    snprintf(didx, sizeof didx, "%d", want.device_index);
    /* a substring of the name, upper-cased: matching is case-insensitive */
    size_t len = strlen(want.name);
    size_t take = len > 6 ? 6 : len;
    for (size_t i = 0; i < take; i++) sub[i] = (char)toupper((unsigned char)want.name[i]);
    sub[take] = '\0';

    armt_runtime_params p = armt_runtime_default_params();
    p.platform = pidx;
    p.device = didx;
    armt_runtime *rt = NULL;
    ck_assert_msg(armt_runtime_create(&p, &rt) == ARMT_OK, "%s", armt_last_error());
    armt_device_info got;
    ck_assert_int_eq(armt_runtime_device_info(rt, &got), ARMT_OK);
    ck_assert_str_eq(got.name, want.name);
    ck_assert_int_eq(got.platform_index, want.platform_index);
    ck_assert_ptr_nonnull(strstr(armt_runtime_build_options(rt), "-DATTN_BQ="));
    armt_runtime_free(rt);

    p.device = sub;
    ck_assert_msg(armt_runtime_create(&p, &rt) == ARMT_OK, "%s", armt_last_error());
    ck_assert_int_eq(armt_runtime_device_info(rt, &got), ARMT_OK);
    ck_assert_str_eq(got.name, want.name);
    armt_runtime_free(rt);
}
END_TEST

START_TEST(test_select_no_match) {
    armt_runtime_params p = armt_runtime_default_params();
    p.device = "no-such-device-name";
    armt_runtime *rt = (armt_runtime *)0x1;
    ck_assert_int_eq(armt_runtime_create(&p, &rt), ARMT_STATUS_NO_DEVICE);
    ck_assert_ptr_null(rt);
    ck_assert_ptr_nonnull(strstr(armt_last_error(), "no-such-device-name"));
    p.device = NULL;
    p.platform = "99";
    ck_assert_int_eq(armt_runtime_create(&p, &rt), ARMT_STATUS_NO_DEVICE);
    ck_assert_ptr_nonnull(strstr(armt_last_error(), "\"99\""));
}
END_TEST

/* ARMT_DEVICE / ARMT_PLATFORM are used when the params leave them NULL, and params win over them. */
START_TEST(test_select_by_env) {
    setenv("ARMT_DEVICE", "no-such-device-name", 1);
    armt_runtime *rt = NULL;
    ck_assert_int_eq(armt_runtime_create(NULL, &rt), ARMT_STATUS_NO_DEVICE);
    armt_runtime_params p = armt_runtime_default_params();
    p.device = "0";
    ck_assert_msg(armt_runtime_create(&p, &rt) == ARMT_OK, "%s", armt_last_error());
    armt_runtime_free(rt);
    unsetenv("ARMT_DEVICE");
    setenv("ARMT_PLATFORM", "no-such-platform", 1);
    ck_assert_int_eq(armt_runtime_create(NULL, &rt), ARMT_STATUS_NO_DEVICE);
    unsetenv("ARMT_PLATFORM");
    ck_assert_msg(armt_runtime_create(NULL, &rt) == ARMT_OK, "%s", armt_last_error());
    armt_runtime_free(rt);
}
END_TEST

/* A deliberately broken kernel through ARMT_KERNEL_DIR: the status says so and the message carries the
 * compiler's build log (which names the undeclared identifier). */
START_TEST(test_kernel_build_failure) {
    char dir[] = "/tmp/armt-kernels-XXXXXX";
    ck_assert_ptr_nonnull(mkdtemp(dir));
    static const char *const files[] = {"common.cl", "embed.cl", "init.cl", "norm.cl", "rope.cl",
                                        "attention.cl", "elementwise.cl", "memory.cl", "gemm_bf16.cl"};
    char cmd[8192];
    for (size_t i = 0; i < sizeof files / sizeof files[0]; i++) {
        snprintf(cmd, sizeof cmd, "cp '%s/%s' '%s/'", ARMT_TEST_KERNEL_DIR, files[i], dir);
        ck_assert_int_eq(system(cmd), 0);
    }
    /* the unmodified copies build */
    setenv("ARMT_KERNEL_DIR", dir, 1);
    armt_runtime *rt = NULL;
    ck_assert_msg(armt_runtime_create(NULL, &rt) == ARMT_OK, "%s", armt_last_error());
    armt_runtime_free(rt);
    /* break norm.cl */
    char path[4096];
    snprintf(path, sizeof path, "%s/norm.cl", dir);
    FILE *f = fopen(path, "a");
    ck_assert_ptr_nonnull(f);
    fputs("\n__kernel void armt_broken(__global float *x) { x[0] = armt_no_such_symbol_42; }\n", f);
    fclose(f);
    armt_status st = armt_runtime_create(NULL, &rt);
    ck_assert_int_eq(st, ARMT_STATUS_KERNEL_BUILD_FAILED);
    ck_assert_ptr_null(rt);
    const char *msg = armt_last_error();
    ck_assert_msg(strstr(msg, "norm.cl") != NULL, "message does not name the file: %s", msg);
    ck_assert_msg(strstr(msg, "CL_BUILD_PROGRAM_FAILURE") != NULL, "message: %s", msg);
    ck_assert_msg(strstr(msg, "armt_no_such_symbol_42") != NULL, "build log missing: %s", msg);
    /* a missing directory is an I/O error naming the path */
    setenv("ARMT_KERNEL_DIR", "/nonexistent/armt-kernels", 1);
    ck_assert_int_eq(armt_runtime_create(NULL, &rt), ARMT_STATUS_IO_ERROR);
    ck_assert_ptr_nonnull(strstr(armt_last_error(), "/nonexistent/armt-kernels/common.cl"));
    unsetenv("ARMT_KERNEL_DIR");
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    ck_assert_int_eq(system(cmd), 0);
}
END_TEST

/* No ICD at all: an empty vendors directory. The list is empty and create says "no device". */
START_TEST(test_no_device) {
    char dir[] = "/tmp/armt-noicd-XXXXXX";
    ck_assert_ptr_nonnull(mkdtemp(dir));
    setenv("OCL_ICD_VENDORS", dir, 1);
    unsetenv("OCL_ICD_FILENAMES");
    armt_device_info *list = (armt_device_info *)0x1;
    size_t n = 99;
    ck_assert_int_eq(armt_device_list(&list, &n), ARMT_OK);
    ck_assert_uint_eq(n, 0);
    ck_assert_ptr_null(list);
    armt_runtime *rt = NULL;
    ck_assert_int_eq(armt_runtime_create(NULL, &rt), ARMT_STATUS_NO_DEVICE);
    ck_assert_ptr_null(rt);
    ck_assert_ptr_nonnull(strstr(armt_last_error(), "no OpenCL platform"));
    rmdir(dir);
}
END_TEST

START_TEST(test_null_args) {
    ck_assert_int_eq(armt_runtime_create(NULL, NULL), ARMT_STATUS_INVALID_ARGUMENT);
    armt_runtime_free(NULL);
    armt_model_free(NULL);
    armt_ctx_free(NULL);
    ck_assert_int_eq(armt_runtime_device_info(NULL, NULL), ARMT_STATUS_INVALID_ARGUMENT);
}
END_TEST

static Suite *suite(void) {
    Suite *s = suite_create("runtime");
    TCase *tc = test_tcase(s, "runtime", 300);
    tcase_add_test(tc, test_list_devices);
    tcase_add_test(tc, test_select_by_index_and_name);
    tcase_add_test(tc, test_select_no_match);
    tcase_add_test(tc, test_select_by_env);
    tcase_add_test(tc, test_kernel_build_failure);
    tcase_add_test(tc, test_no_device);
    tcase_add_test(tc, test_null_args);
    return s;
}

int main(void) {
    /* test_no_device needs no device; the rest do */
    if (!test_have_device()) {
        Suite *s = suite_create("runtime-nodevice");
        TCase *tc = tcase_create("nodevice");
        tcase_add_test(tc, test_no_device);
        tcase_add_test(tc, test_null_args);
        suite_add_tcase(s, tc);
        return test_run_suite(s, 0);
    }
    return test_run_suite(suite(), 1);
}
