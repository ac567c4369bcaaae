/*
 * testutil.h - shared helpers of the Check suites: device detection without touching OpenCL in the parent
 * (Check forks per test; an OpenCL context created before fork hangs the child), a runner with the skip
 * convention, random ids, and host copies of a device model for the CPU reference.
 */
#ifndef ARMT_TESTUTIL_H
#define ARMT_TESTUTIL_H

#include <check.h>
#include <stddef.h>
#include <stdint.h>

#include "armt.h"
#include "ref_armt.h"
#include "common/roles.h"

/* 1 if at least one OpenCL device exists (asked in a forked child). */
int test_have_device(void);
/* A test case of s with its timeout in seconds (Check scales it by CK_TIMEOUT_MULTIPLIER): each test of it
 * should take at most 30% of that with an empty PoCL kernel cache on a loaded 2-core machine. */
TCase *test_tcase(Suite *s, const char *name, double timeout_s);
/* Runs the suite, then prints each test's time and its share of its timeout (from Check's XML log, in a
 * temporary file unless CK_XML_LOG_FILE_NAME names one); returns 77 when needs_device and there is none,
 * else 0 (all passed) or 1. */
int test_run_suite(Suite *s, int needs_device);
/* A runtime on the default device (fails the test on error). */
armt_runtime *test_runtime(void);
/* Deterministic ids in [0, vocab). */
void test_random_ids(int32_t *ids, size_t n, int vocab, uint64_t seed);
/* The tests' directory of fixtures ($ARMT_TEST_DATA or the build-time default). */
const char *test_data_dir(void);

/* Host copy of every weight of a device model, and a ref_model pointing into it. */
typedef struct test_host_model {
    float *role[ARMT_ROLE_COUNT]; /* [layers, out, in] per role (lm_head NULL when tied) */
    ref_model ref;
} test_host_model;
test_host_model *test_host_model_read(armt_model *m);
void test_host_model_free(test_host_model *h);

/* max |a - b| and max |a - b| / max(|b|, floor). */
double test_max_abs_diff_fd(const float *a, const double *b, size_t n);
double test_max_abs_diff_ff(const float *a, const float *b, size_t n); /* NaN propagates */
/* Frobenius |a - b| / |b| (|a - b| when b is all zeros). */
double test_frob_rel(const float *a, const float *b, size_t n);
double test_max_rel_diff_ff(const float *a, const float *b, size_t n, double floor);
/* max |a - b| / max |b| (b the reference of a; max |a - b| when b is all zeros); INFINITY on a NaN. */
double test_rel_err(const float *a, const float *b, size_t n);

#endif
