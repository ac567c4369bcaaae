/*
 * check_status.c - status strings and error-name tables (no device needed).
 */
#include "config.h"

#include "testutil.h"

#include <stdio.h>
#include <string.h>

#define CL_TARGET_OPENCL_VERSION 120
#include <CL/cl.h>
#include <clblast_c.h>

/* Every pinned status value has its own non-generic string, distinct from the others. */
START_TEST(test_status_strings) {
    const armt_status all[] = {ARMT_OK,
                               ARMT_STATUS_INVALID_ARGUMENT,
                               ARMT_STATUS_NO_DEVICE,
                               ARMT_STATUS_OPENCL_ERROR,
                               ARMT_STATUS_CLBLAST_ERROR,
                               ARMT_STATUS_KERNEL_BUILD_FAILED,
                               ARMT_STATUS_OUT_OF_HOST_MEMORY,
                               ARMT_STATUS_OUT_OF_DEVICE_MEMORY,
                               ARMT_STATUS_IO_ERROR,
                               ARMT_STATUS_BAD_FILE,
                               ARMT_STATUS_BAD_CONFIG,
                               ARMT_STATUS_MISSING_TENSOR,
                               ARMT_STATUS_SHAPE_MISMATCH,
                               ARMT_STATUS_UNSUPPORTED,
                               ARMT_STATUS_TOKEN_OUT_OF_RANGE,
                               ARMT_STATUS_MODEL_MISMATCH,
                               ARMT_STATUS_EMPTY_INPUT,
                               ARMT_STATUS_CANCELLED};
    const size_t n = sizeof all / sizeof all[0];
    const char *unknown = armt_status_str((armt_status)-9999);
    ck_assert_str_eq(unknown, "unknown status");
    for (size_t i = 0; i < n; i++) {
        const char *s = armt_status_str(all[i]);
        ck_assert_ptr_nonnull(s);
        ck_assert_msg(strlen(s) > 3, "status %d has a too short string", all[i]);
        ck_assert_msg(strcmp(s, unknown) != 0, "status %d has no string", all[i]);
        for (size_t j = 0; j < i; j++)
            ck_assert_msg(strcmp(s, armt_status_str(all[j])) != 0, "duplicate string %s", s);
    }
    /* pinned values: part of the ABI */
    ck_assert_int_eq(ARMT_OK, 0);
    ck_assert_int_eq(ARMT_STATUS_INVALID_ARGUMENT, -1);
    ck_assert_int_eq(ARMT_STATUS_NO_DEVICE, -2);
    ck_assert_int_eq(ARMT_STATUS_OUT_OF_DEVICE_MEMORY, -7);
    ck_assert_int_eq(ARMT_STATUS_EMPTY_INPUT, -16);
    ck_assert_int_eq(ARMT_STATUS_CANCELLED, -17);
}
END_TEST

START_TEST(test_cl_error_names) {
    ck_assert_str_eq(armt_cl_error_str(CL_OUT_OF_RESOURCES), "CL_OUT_OF_RESOURCES");
    ck_assert_str_eq(armt_cl_error_str(CL_BUILD_PROGRAM_FAILURE), "CL_BUILD_PROGRAM_FAILURE");
    ck_assert_str_eq(armt_cl_error_str(CL_INVALID_BUFFER_SIZE), "CL_INVALID_BUFFER_SIZE");
    ck_assert_str_eq(armt_cl_error_str(-1001), "CL_PLATFORM_NOT_FOUND_KHR");
    ck_assert_str_eq(armt_cl_error_str(12345), "CL_UNKNOWN_ERROR");
    /* every code from -1 to -68 that OpenCL 1.2 defines has a name */
    for (int e = -1; e >= -68; e--) {
        if ((e <= -20 && e >= -29) || e == -20) continue; /* unassigned range */
        ck_assert_msg(strcmp(armt_cl_error_str(e), "CL_UNKNOWN_ERROR") != 0, "no name for %d", e);
    }
}
END_TEST

START_TEST(test_clblast_names) {
    ck_assert_str_eq(armt_clblast_error_str(CLBlastNoHalfPrecision), "CLBlastNoHalfPrecision");
    ck_assert_str_eq(armt_clblast_error_str(CLBlastInsufficientMemoryC), "CLBlastInsufficientMemoryC");
    ck_assert_str_eq(armt_clblast_error_str(CLBlastSuccess), "CLBlastSuccess");
    ck_assert_str_eq(armt_clblast_error_str(-77777), "CLBlastUnknownError");
}
END_TEST

static int log_calls;
static char log_last[512];
static void logger(armt_log_level lvl, const char *msg, void *user) {
    (void)lvl;
    log_calls += *(int *)user;
    snprintf(log_last, sizeof log_last, "%s", msg);
}

/* Errors reach the log callback and the thread-local last error; the library prints nothing itself. */
START_TEST(test_last_error_and_log) {
    int one = 1;
    armt_log_set(logger, &one);
    armt_status st = armt_forward(NULL, NULL, 0, NULL);
    ck_assert_int_eq(st, ARMT_STATUS_INVALID_ARGUMENT);
    ck_assert_msg(strstr(armt_last_error(), "ctx is NULL") != NULL, "last error: %s", armt_last_error());
    ck_assert_int_eq(log_calls, 1);
    ck_assert_ptr_nonnull(strstr(log_last, "ctx is NULL"));
    armt_log_set(NULL, NULL);
    st = armt_ctx_reset(NULL);
    ck_assert_int_eq(st, ARMT_STATUS_INVALID_ARGUMENT);
    ck_assert_int_eq(log_calls, 1);
    ck_assert_ptr_nonnull(armt_version_string());
    ck_assert_str_eq(armt_version_string(), PACKAGE_VERSION);
    /* build info names both versions */
    ck_assert_ptr_nonnull(strstr(armt_build_info(), PACKAGE_VERSION));
    ck_assert_ptr_nonnull(strstr(armt_build_info(), "CLBlast 1."));
}
END_TEST

/* The version macros, the number and the string agree with each other and with configure.ac's version
 * (PACKAGE_VERSION in config.h). */
START_TEST(test_version) {
    char want[64];
    snprintf(want, sizeof want, "%d.%d.%d", ARMT_VERSION_MAJOR, ARMT_VERSION_MINOR, ARMT_VERSION_PATCH);
    ck_assert_str_eq(want, PACKAGE_VERSION);
    ck_assert_str_eq(armt_version_string(), PACKAGE_VERSION);
    ck_assert_uint_eq(armt_version_number(), ARMT_VERSION_NUMBER);
    ck_assert_uint_eq(ARMT_VERSION_NUMBER,
                      ARMT_VERSION_MAJOR * 10000u + ARMT_VERSION_MINOR * 100u + ARMT_VERSION_PATCH);
    /* the number decodes to the string */
    unsigned v = armt_version_number();
    snprintf(want, sizeof want, "%u.%u.%u", v / 10000, v / 100 % 100, v % 100);
    ck_assert_str_eq(want, armt_version_string());
    ck_assert_ptr_nonnull(strstr(armt_build_info(), armt_version_string()));
    ck_assert(ARMT_VERSION_MINOR < 100 && ARMT_VERSION_PATCH < 100);
}
END_TEST

/* Every value of the three enums has its own name, spelled as armt-run's options; bad values give
 * "unknown". */
START_TEST(test_enum_names) {
    ck_assert_str_eq(armt_schedule_name(ARMT_SCHEDULE_SEQUENTIAL), "sequential");
    ck_assert_str_eq(armt_schedule_name(ARMT_SCHEDULE_DIAGONAL), "diagonal");
    ck_assert_str_eq(armt_schedule_name(ARMT_SCHEDULE_FULL), "full");
    ck_assert_str_eq(armt_schedule_name((armt_schedule)3), "unknown");
    ck_assert_str_eq(armt_schedule_name((armt_schedule)-1), "unknown");
    ck_assert_str_eq(armt_output_name(ARMT_OUTPUT_NONE), "none");
    ck_assert_str_eq(armt_output_name(ARMT_OUTPUT_LOGITS_ALL), "logits");
    ck_assert_str_eq(armt_output_name(ARMT_OUTPUT_LOGITS_LAST), "last");
    ck_assert_str_eq(armt_output_name(ARMT_OUTPUT_HIDDEN), "hidden");
    ck_assert_str_eq(armt_output_name((armt_output)4), "unknown");
    ck_assert_str_eq(armt_output_name((armt_output)-1), "unknown");
    ck_assert_str_eq(armt_precision_name(ARMT_PRECISION_FP32), "fp32");
    ck_assert_str_eq(armt_precision_name(ARMT_PRECISION_BF16), "bf16");
    ck_assert_str_eq(armt_precision_name((armt_precision)2), "unknown");
    ck_assert_str_eq(armt_precision_name((armt_precision)-1), "unknown");
}
END_TEST

/* armt_ctx_params: the default profiles as the runtime says (0) and leaves the reserved room zero. */
START_TEST(test_ctx_params_default) {
    armt_ctx_params p = armt_ctx_default_params();
    ck_assert_int_eq(p.profile, 0);
    for (size_t i = 0; i < sizeof p.reserved / sizeof p.reserved[0]; i++)
        ck_assert_int_eq(p.reserved[i], 0);
    ck_assert_uint_ge(sizeof p.reserved / sizeof p.reserved[0], 4);
}
END_TEST

static Suite *suite(void) {
    Suite *s = suite_create("status");
    TCase *tc = tcase_create("status");
    tcase_add_test(tc, test_status_strings);
    tcase_add_test(tc, test_cl_error_names);
    tcase_add_test(tc, test_clblast_names);
    tcase_add_test(tc, test_last_error_and_log);
    tcase_add_test(tc, test_version);
    tcase_add_test(tc, test_enum_names);
    tcase_add_test(tc, test_ctx_params_default);
    suite_add_tcase(s, tc);
    return s;
}

int main(void) { return test_run_suite(suite(), 0); }
