/*
 * check_runtime.c - device listing and choice, kernel build at load (and its failure with the build log),
 * no-device behaviour. Every OpenCL object is created inside a test (Check forks per test).
 */
#define _GNU_SOURCE /* RTLD_NEXT */
#include "config.h"

#include "device/internal.h"
#include "testutil.h"

#include <ctype.h>
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <stddef.h>
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
    for (size_t i = 0; i < take; i++)
        sub[i] = (char)toupper((unsigned char)want.name[i]);
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
    /* the tensor-core switches are words, checked before anything is built */
    setenv("ARMT_TENSOR_CORES", "maybe", 1);
    ck_assert_int_eq(armt_runtime_create(NULL, &rt), ARMT_STATUS_INVALID_ARGUMENT);
    ck_assert_ptr_nonnull(strstr(armt_last_error(), "ARMT_TENSOR_CORES"));
    unsetenv("ARMT_TENSOR_CORES");
    setenv("ARMT_GEMV_LANES", "96", 1);
    ck_assert_int_eq(armt_runtime_create(NULL, &rt), ARMT_STATUS_INVALID_ARGUMENT);
    ck_assert_ptr_nonnull(strstr(armt_last_error(), "ARMT_GEMV_LANES"));
    setenv("ARMT_GEMV_LANES", "128", 1);
    ck_assert_msg(armt_runtime_create(NULL, &rt) == ARMT_OK, "%s", armt_last_error());
    ck_assert_int_eq(rt->tune.gemv_lanes, 128);
    armt_runtime_free(rt);
    unsetenv("ARMT_GEMV_LANES");
    /* the split of k: auto (0) by default, none (1), or 2 .. 16 */
    ck_assert_msg(armt_runtime_create(NULL, &rt) == ARMT_OK, "%s", armt_last_error());
    ck_assert_int_eq(rt->tune.splitk, 0);
    armt_runtime_free(rt);
    setenv("ARMT_SPLITK", "1", 1);
    ck_assert_msg(armt_runtime_create(NULL, &rt) == ARMT_OK, "%s", armt_last_error());
    ck_assert_int_eq(rt->tune.splitk, 1);
    armt_runtime_free(rt);
    setenv("ARMT_SPLITK", "3", 1);
    ck_assert_int_eq(armt_runtime_create(NULL, &rt), ARMT_STATUS_INVALID_ARGUMENT);
    ck_assert_ptr_nonnull(strstr(armt_last_error(), "ARMT_SPLITK"));
    setenv("ARMT_SPLITK", "auto", 1);
    ck_assert_msg(armt_runtime_create(NULL, &rt) == ARMT_OK, "%s", armt_last_error());
    ck_assert_int_eq(rt->tune.splitk, 0);
    armt_runtime_free(rt);
    setenv("ARMT_SPLITK", "8", 1);
    ck_assert_msg(armt_runtime_create(NULL, &rt) == ARMT_OK, "%s", armt_last_error());
    ck_assert_int_eq(rt->tune.splitk, 8);
    armt_runtime_free(rt);
    unsetenv("ARMT_SPLITK");
    /* the integer knobs: the default unset, an error naming the variable for each bad value, else the value
     * (the full schedule's MLP rows; the GEMV lanes heuristic's work-groups per compute unit; the layers
     * between the decode's queue flushes; the decode attention's combine in its launch) */
    static const struct {
        const char *name, *bad[4], *good;
        int dflt, want;
        size_t off;
    } knobs[] = {
        {"ARMT_MLP_ROWS",
         {"0", "-5", "12x", "99999999999"},
         "4096",
         ARMT_MLP_ROWS_DEFAULT,
         4096,
         offsetof(armt_device_tuning, mlp_rows)},
        {"ARMT_GEMV_WGS", {"0", "65", "2x", ""}, "8", 1, 8, offsetof(armt_device_tuning, gemv_wgs)},
        {"ARMT_DECODE_FLUSH",
         {"-1", "x", "4097", "2 "},
         "3",
         ARMT_DECODE_FLUSH_DEFAULT,
         3,
         offsetof(armt_device_tuning, decode_flush)},
        /* (the combine in the attention's launch: by default on NVIDIA's PTX only, off on PoCL) */
        {"ARMT_DECODE_FUSE", {"2", "-1", "yes", ""}, "1", 0, 1, offsetof(armt_device_tuning, decode_fuse)},
        /* (the 3xTF32 GEMMs' auto split-k: 0 none, 1 the estimated time, 2 one wave) */
        {"ARMT_SPLITK_RULE", {"3", "-1", "wave", ""}, "2", 0, 2, offsetof(armt_device_tuning, splitk_rule)},
    };
    for (size_t n = 0; n < sizeof knobs / sizeof knobs[0]; n++) {
        ck_assert_msg(armt_runtime_create(NULL, &rt) == ARMT_OK, "%s", armt_last_error());
        ck_assert_int_eq(*(const int *)((const char *)&rt->tune + knobs[n].off), knobs[n].dflt);
        armt_runtime_free(rt);
        for (size_t i = 0; i < 4 && knobs[n].bad[i][0]; i++) {
            setenv(knobs[n].name, knobs[n].bad[i], 1);
            ck_assert_int_eq(armt_runtime_create(NULL, &rt), ARMT_STATUS_INVALID_ARGUMENT);
            ck_assert_msg(strstr(armt_last_error(), knobs[n].name), "%s", armt_last_error());
        }
        setenv(knobs[n].name, knobs[n].good, 1);
        ck_assert_msg(armt_runtime_create(NULL, &rt) == ARMT_OK, "%s", armt_last_error());
        ck_assert_int_eq(*(const int *)((const char *)&rt->tune + knobs[n].off), knobs[n].want);
        armt_runtime_free(rt);
        unsetenv(knobs[n].name);
    }
}
END_TEST

/* A deliberately broken kernel through ARMT_KERNEL_DIR: the status says so and the message carries the
 * compiler's build log (which names the undeclared identifier). */
START_TEST(test_kernel_build_failure) {
    char dir[] = "/tmp/armt-kernels-XXXXXX";
    ck_assert_ptr_nonnull(mkdtemp(dir));
    static const char *const files[] = {"common.cl",
                                        "mma.cl",
                                        "embed.cl",
                                        "init.cl",
                                        "norm.cl",
                                        "rope.cl",
                                        "attention.cl",
                                        "attention_mma.cl",
                                        "elementwise.cl",
                                        "memory.cl",
                                        "dpfp.cl",
                                        "gemm_args.h",
                                        "gemm_bf16.cl",
                                        "gemv_bf16.cl",
                                        "gemm_mma_params.cl",
                                        "gemm_mma_warp.cl",
                                        "gemm_mma_epilogue.cl",
                                        "gemm_mma.cl",
                                        "gemm_mma_entries.cl",
                                        "rows.cl",
                                        "rows_attention.cl"};
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

/* clCreateKernel for this process (the library's calls included): the real one, counting its failures. */
static int kernel_create_failures;
cl_kernel clCreateKernel(cl_program program, const char *name, cl_int *errcode_ret) {
    cl_kernel (*real)(cl_program, const char *, cl_int *) =
        (cl_kernel(*)(cl_program, const char *, cl_int *))dlsym(RTLD_NEXT, "clCreateKernel");
    cl_int e = CL_INVALID_OPERATION;
    cl_kernel k = real ? real(program, name, &e) : NULL;
    if (e != CL_SUCCESS) kernel_create_failures++;
    if (errcode_ret) *errcode_ret = e;
    return k;
}

/* The optional kernels (tensor cores) of a program built without them are not asked for: no clCreateKernel
 * fails (a failed one is an API error to checkers such as Oclgrind's --check-api, make check-oclgrind). */
START_TEST(test_optional_kernels_not_created) {
    armt_runtime_params rp = armt_runtime_default_params();
    rp.tensor_cores = ARMT_TC_OFF;
    armt_runtime *rt = NULL;
    ck_assert_msg(armt_runtime_create(&rp, &rt) == ARMT_OK, "%s", armt_last_error());
    armt_config c;
    ck_assert_int_eq(armt_config_preset("tiny", &c), ARMT_OK);
    c.n_layers = 1;
    armt_model_params mp = armt_model_default_params();
    mp.precision = ARMT_PRECISION_BF16; /* its attention program has no tensor-core kernels here */
    armt_model *m = NULL;
    ck_assert_msg(armt_model_create_random(rt, &c, &mp, &m) == ARMT_OK, "%s", armt_last_error());
    armt_ctx *ctx = NULL;
    ck_assert_msg(armt_ctx_create(m, NULL, &ctx) == ARMT_OK, "%s", armt_model_last_error(m));
    ck_assert_int_eq(kernel_create_failures, 0);
    ck_assert_ptr_nonnull(ctx->k[ARMT_K_ATTENTION]);
    ck_assert_ptr_null(ctx->k[ARMT_K_ATTENTION_MMA]);
    ck_assert_ptr_null(ctx->k[ARMT_K_ATTENTION_MMA_KVBF16]);
    ck_assert_ptr_null(ctx->k[ARMT_K_GEMM_BF16_MMA]);
    ck_assert_ptr_nonnull(ctx->k[ARMT_K_GEMM_BF16]);
    armt_ctx_free(ctx);
    armt_model_free(m);
    armt_runtime_free(rt);
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

/* The tuning under the typed options, for an H200-like, an A100-like and a CPU device (no device needed). */
START_TEST(test_tune_options) {
    armt_device_info h200 = {0}, a100, cpu = {0};
    h200.is_gpu = 1, h200.local_mem_bytes = 49152, h200.nv_compute_capability = 90;
    snprintf(h200.name, sizeof h200.name, "H200");
    a100 = h200, a100.nv_compute_capability = 80;
    cpu.is_cpu = 1, cpu.local_mem_bytes = 65536;
    snprintf(cpu.name, sizeof cpu.name, "cpu");
    armt_device_tuning t;
    armt_err err;
    armt_err_init(&err);
    armt_tune_options o = {
        ARMT_TC_AUTO, ARMT_TC_AUTO, ARMT_TC_AUTO, ARMT_FP32_GEMM_AUTO, 0, 0, 0, 0, -1, -1, 0};
    ck_assert_int_eq(armt_tune_device(&h200, &o, &t, &err), ARMT_OK);
    ck_assert(t.nv_mma && t.mma_wgmma && !t.mma_emulate && t.attn_mma);
    ck_assert_int_eq(t.decode_fuse, 1); /* (NVIDIA's PTX: the decode combine in the attention's launch) */
    ck_assert_int_eq(t.mma_bn, 256);
    ck_assert_int_eq(t.nar_bn, 64);
    armt_tune_wgmma_failed(&t); /* the check at load failed: mma.sync tiles, narrow ones kept */
    ck_assert(!t.mma_wgmma && t.mma_bn == 128 && t.nar_bn == 64 && t.nar_threads == 128);
    o.wgmma = ARMT_TC_OFF;
    ck_assert_int_eq(armt_tune_device(&h200, &o, &t, &err), ARMT_OK);
    ck_assert(t.nv_mma && !t.mma_wgmma);
    ck_assert_int_eq(armt_tune_device(&a100, &o, &t, &err), ARMT_OK);
    ck_assert(t.nv_mma && !t.mma_wgmma && t.mma_bn == 128);
    o.wgmma = ARMT_TC_ON; /* no wgmma before or after Hopper */
    ck_assert_int_eq(armt_tune_device(&a100, &o, &t, &err), ARMT_STATUS_UNSUPPORTED);
    o.wgmma = ARMT_TC_AUTO;
    o.attention = ARMT_TC_OFF;
    ck_assert_int_eq(armt_tune_device(&a100, &o, &t, &err), ARMT_OK);
    ck_assert(t.nv_mma && !t.attn_mma);
    o.attention = ARMT_TC_AUTO;
    o.tensor_cores = ARMT_TC_OFF;
    ck_assert_int_eq(armt_tune_device(&h200, &o, &t, &err), ARMT_OK);
    ck_assert(!t.nv_mma && !t.mma_wgmma && !t.attn_mma);
    char opts[256];
    armt_tune_common_options(&t, opts, sizeof opts);
    ck_assert_ptr_null(strstr(opts, "MMA"));
    /* the portable bf16 GEMM's tile: 128 x 64, 8 x 4 per work-item where the local memory holds its two
     * buffers (25 KiB), else 64 x 64, 4 x 4; the build options carry it */
    ck_assert(t.gemm_tm == 128 && t.gemm_tn == 64 && t.gemm_rm == 8 && t.gemm_rn == 4);
    ck_assert_ptr_nonnull(strstr(opts, "-DGEMM_TM=128 -DGEMM_TN=64 -DGEMM_RM=8 -DGEMM_RN=4"));
    armt_device_info small = h200;
    small.local_mem_bytes = 32768; /* (Oclgrind's) */
    ck_assert_int_eq(armt_tune_device(&small, &o, &t, &err), ARMT_OK);
    ck_assert(t.gemm_tm == 128 && t.gemm_tn == 64 && t.gemm_rm == 8 && t.gemm_rn == 4);
    small.local_mem_bytes = 24576;
    ck_assert_int_eq(armt_tune_device(&small, &o, &t, &err), ARMT_OK);
    ck_assert(t.gemm_tm == 64 && t.gemm_tn == 64 && t.gemm_rm == 4 && t.gemm_rn == 4);
    ck_assert_int_eq(armt_tune_device(&cpu, &o, &t, &err), ARMT_OK);
    ck_assert(t.gemm_tm == 64 && t.gemm_rm == 4);
    o.tensor_cores = ARMT_TC_ON;
    ck_assert_int_eq(armt_tune_device(&cpu, &o, &t, &err), ARMT_STATUS_UNSUPPORTED);
    o.tensor_cores = ARMT_TC_EMULATE; /* the stand-ins, mma.sync tiles unless wgmma is asked for */
    ck_assert_int_eq(armt_tune_device(&cpu, &o, &t, &err), ARMT_OK);
    ck_assert(t.nv_mma && t.mma_emulate && !t.mma_wgmma && t.attn_mma);
    ck_assert_int_eq(t.decode_fuse, 0); /* (no PTX fence: two launches unless asked) */
    armt_tune_common_options(&t, opts, sizeof opts);
    ck_assert_ptr_nonnull(strstr(opts, "-DARMT_MMA_EMULATE=1"));
    ck_assert_ptr_null(strstr(opts, "ARMT_NV_MMA"));
    o.wgmma = ARMT_TC_ON;
    ck_assert_int_eq(armt_tune_device(&cpu, &o, &t, &err), ARMT_OK);
    ck_assert(t.mma_emulate && t.mma_wgmma && t.mma_bn == 256);
    /* attention tiles by head dimension: GPUs 4 x 2 up to 64, 8 x 1 above; the emulation 4 x 1 */
    armt_attention_tuning at;
    armt_tune_attention(&t, 64, 1, &at);
    ck_assert(at.mma && at.warps == 4 && at.rtiles == 1);
    o = (armt_tune_options){
        ARMT_TC_AUTO, ARMT_TC_AUTO, ARMT_TC_AUTO, ARMT_FP32_GEMM_TF32X3, 0, 0, 0, 0, -1, -1, 0};
    ck_assert_int_eq(armt_tune_device(&h200, &o, &t, &err), ARMT_OK);
    armt_tune_attention(&t, 64, 1, &at);
    ck_assert(at.mma && at.warps == 4 && at.rtiles == 2 && at.bk == 16);
    armt_tune_attention(&t, 128, 1, &at);
    ck_assert(at.mma && at.warps == 8 && at.rtiles == 1);
    armt_tune_attention(&t, 64, 0, &at); /* fp32 models (3xTF32 GEMMs here): the 3xTF32 build, one row tile */
    ck_assert(at.mma && at.tf32 && at.rtiles == 1 && at.am_bk == 64);
    armt_tune_attention_options(&at, opts, sizeof opts);
    ck_assert_ptr_nonnull(strstr(opts, "-DAM_TF32=1 -DAM_BK=64"));
    armt_tune_attention(&t, 128, 0, &at);
    ck_assert(at.tf32 && at.am_bk == 32);
    armt_tune_attention(&t, 64, 1, &at); /* (bf16: no AM_TF32) */
    armt_tune_attention_options(&at, opts, sizeof opts);
    ck_assert_ptr_null(strstr(opts, "AM_TF32"));
    o.fp32_gemm = ARMT_FP32_GEMM_CLBLAST; /* fp32 GEMMs on CLBlast: the fp32 attention kernel */
    ck_assert_int_eq(armt_tune_device(&h200, &o, &t, &err), ARMT_OK);
    armt_tune_attention(&t, 64, 0, &at);
    ck_assert(!at.mma && !at.tf32);
    o.fp32_gemm = ARMT_FP32_GEMM_AUTO; /* (the default: 3xTF32 GEMMs, the attention too under the load-time
                                          accuracy gate) */
    ck_assert_int_eq(armt_tune_device(&h200, &o, &t, &err), ARMT_OK);
    armt_tune_attention(&t, 64, 0, &at);
    ck_assert(at.mma && at.tf32 && t.attn_tf32_gate);
    o.fp32_gemm = ARMT_FP32_GEMM_TF32X3;
    o.attention = ARMT_TC_OFF; /* attention off tensor cores: both precisions on the portable kernels */
    ck_assert_int_eq(armt_tune_device(&h200, &o, &t, &err), ARMT_OK);
    armt_tune_attention(&t, 64, 0, &at);
    ck_assert(!at.mma && !at.tf32);
    o.attention = ARMT_TC_AUTO;
    ck_assert_int_eq(armt_tune_device(&h200, &o, &t, &err), ARMT_OK);
    armt_tune_attention(&t, 72, 1, &at); /* not a multiple of 16 */
    ck_assert(!at.mma);
    /* the GEMV's lanes: by shape (0) unless forced to 32, 64 or 128 */
    ck_assert_int_eq(t.gemv_lanes, 0);
    o.gemv_lanes = 64;
    ck_assert_int_eq(armt_tune_device(&h200, &o, &t, &err), ARMT_OK);
    ck_assert_int_eq(t.gemv_lanes, 64);
    o.gemv_lanes = 48;
    ck_assert_int_eq(armt_tune_device(&h200, &o, &t, &err), ARMT_STATUS_INVALID_ARGUMENT);
    ck_assert_ptr_nonnull(strstr(armt_err_msg(&err), "48"));
    armt_err_free(&err);
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
    tcase_add_test(tc, test_optional_kernels_not_created);
    tcase_add_test(tc, test_no_device);
    tcase_add_test(tc, test_null_args);
    tcase_add_test(tc, test_tune_options);
    return s;
}

int main(void) {
    /* test_no_device needs no device; the rest do */
    if (!test_have_device()) {
        Suite *s = suite_create("runtime-nodevice");
        TCase *tc = tcase_create("nodevice");
        tcase_add_test(tc, test_no_device);
        tcase_add_test(tc, test_null_args);
        tcase_add_test(tc, test_tune_options);
        suite_add_tcase(s, tc);
        return test_run_suite(s, 0);
    }
    return test_run_suite(suite(), 1);
}
