/*
 * programs.c - the kernel table, the programs (each a list of .cl files, from kernel_dir or embedded),
 * their build with the tuning's options, and the Hopper GEMM's sm_90a rebuild with its check at load.
 */
#include "config.h"

#include "device/kernel_args.h"
#include "device/internal.h"
#include "device/nv_ptx.h"
#include "common/util.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ======================================================================================================= */
/* Kernel table                                                                                            */
/* ======================================================================================================= */

static const struct {
    const char *name;
    armt_program_id program;
    int optional;      /* present only with some build options */
    const char *label; /* name in profiles and messages when not the kernel's (NULL: name) */
} kernel_table[ARMT_K_COUNT] = {
    [ARMT_K_EMBED] = {"armt_embed", ARMT_P_EMBED},
    [ARMT_K_FILL_UNIFORM] = {"armt_fill_uniform", ARMT_P_INIT},
    [ARMT_K_RMSNORM] = {"armt_rmsnorm", ARMT_P_NORM},
    [ARMT_K_RMSNORM_ROWS] = {"armt_rmsnorm_rows", ARMT_P_NORM},
    [ARMT_K_ROPE] = {"armt_rope", ARMT_P_ROPE},
    [ARMT_K_ATTENTION] = {"armt_attention", ARMT_P_ATTENTION},
    [ARMT_K_SWIGLU] = {"armt_swiglu", ARMT_P_ELEMENTWISE},
    [ARMT_K_DPFP] = {"armt_dpfp", ARMT_P_MEMORY},
    [ARMT_K_MEM_READ] = {"armt_mem_read", ARMT_P_MEMORY},
    [ARMT_K_MEM_READ_SCALE] = {"armt_mem_read_scale", ARMT_P_MEMORY},
    [ARMT_K_DPFP_READ_SCALE] = {"armt_dpfp_read_scale", ARMT_P_MEMORY},
    [ARMT_K_MEM_GATHER] = {"armt_mem_gather", ARMT_P_MEMORY},
    [ARMT_K_MEM_WRITE_PREP] = {"armt_mem_write_prep", ARMT_P_MEMORY},
    [ARMT_K_MEM_DELTA] = {"armt_mem_delta", ARMT_P_MEMORY},
    [ARMT_K_MEM_Z_UPDATE] = {"armt_mem_z_update", ARMT_P_MEMORY},
    [ARMT_K_EMBED_BF16] = {"armt_embed_bf16", ARMT_P_EMBED},
    [ARMT_K_FILL_UNIFORM_BF16] = {"armt_fill_uniform_bf16", ARMT_P_INIT},
    [ARMT_K_GEMM_BF16] = {"armt_gemm_bf16", ARMT_P_GEMM_BF16},
    [ARMT_K_GEMM_BF16_MMA] = {"armt_gemm_bf16_mma", ARMT_P_GEMM_BF16, 1},
    [ARMT_K_ATTENTION_MMA] = {"armt_attention_mma", ARMT_P_ATTENTION, 1},
    [ARMT_K_MEM_BF16_T] = {"armt_mem_bf16_t", ARMT_P_MEMORY},
    [ARMT_K_F32_TO_BF16] = {"armt_f32_to_bf16", ARMT_P_GEMM_BF16, 1},
    [ARMT_K_GEMM_BF16BF16_MMA] = {"armt_gemm_bf16bf16_mma", ARMT_P_GEMM_BF16, 1},
    [ARMT_K_GEMM_BF16_MMA_NARROW] = {"armt_gemm_bf16_mma", ARMT_P_GEMM_NARROW, 1,
                                     "armt_gemm_bf16_mma/narrow"},
    [ARMT_K_GEMM_BF16BF16_MMA_NARROW] = {"armt_gemm_bf16bf16_mma", ARMT_P_GEMM_NARROW, 1,
                                         "armt_gemm_bf16bf16_mma/narrow"},
    [ARMT_K_ATTENTION_MMA_KVBF16] = {"armt_attention_mma_kvbf16", ARMT_P_ATTENTION, 1},
    [ARMT_K_PHI_NORMALIZE] = {"armt_phi_normalize", ARMT_P_MEMORY},
    [ARMT_K_MEM_BLOCK_MASK] = {"armt_mem_block_mask", ARMT_P_MEMORY},
    [ARMT_K_WINDOW_GATHER] = {"armt_window_gather", ARMT_P_ATTENTION},
    [ARMT_K_WINDOW_STORE] = {"armt_window_store", ARMT_P_ATTENTION},
    [ARMT_K_GEMM_TF32] = {"armt_gemm_tf32", ARMT_P_GEMM_TF32, 1},
    [ARMT_K_GEMM_TF32_WG] = {"armt_gemm_tf32_wg", ARMT_P_GEMM_TF32, 1},
    [ARMT_K_GEMV_BF16] = {"armt_gemv_bf16", ARMT_P_GEMM_BF16},
    [ARMT_K_GEMV_BF16BF16] = {"armt_gemv_bf16bf16", ARMT_P_GEMM_BF16},
    [ARMT_K_GEMV1_BF16] = {"armt_gemv1_bf16", ARMT_P_GEMM_BF16},
    [ARMT_K_GEMV1_BF16BF16] = {"armt_gemv1_bf16bf16", ARMT_P_GEMM_BF16},
    [ARMT_K_ATTENTION_DECODE] = {"armt_attention_decode", ARMT_P_ATTENTION},
    [ARMT_K_ATTENTION_DECODE_COMBINE] = {"armt_attention_decode_combine", ARMT_P_ATTENTION},
    [ARMT_K_ROWS_ROPE_TABLE] = {"armt_rows_rope_table", ARMT_P_MEMORY},
    [ARMT_K_ROWS_KV_APPEND] = {"armt_rows_kv_append", ARMT_P_MEMORY},
    [ARMT_K_KV_TO_BF16] = {"armt_kv_to_bf16", ARMT_P_MEMORY},
    [ARMT_K_ROWS_MEM_READ] = {"armt_rows_mem_read", ARMT_P_MEMORY},
    [ARMT_K_ROWS_MEM_READ_SCALE] = {"armt_rows_mem_read_scale", ARMT_P_MEMORY},
    [ARMT_K_ROWS_ATTENTION] = {"armt_rows_attention", ARMT_P_ATTENTION},
    [ARMT_K_CELLS_RMSNORM] = {"armt_cells_rmsnorm", ARMT_P_MEMORY},
    [ARMT_K_CELLS_MEM_GATHER] = {"armt_cells_mem_gather", ARMT_P_MEMORY},
    [ARMT_K_ROWS_SPLITK_SUM] = {"armt_rows_splitk_sum", ARMT_P_MEMORY},
    [ARMT_K_ROWS_ARGMAX] = {"armt_rows_argmax", ARMT_P_MEMORY},
    [ARMT_K_ROWS_ATTENTION_DECODE] = {"armt_rows_attention_decode", ARMT_P_ATTENTION},
    [ARMT_K_ROWS_ATTENTION_COMBINE] = {"armt_rows_attention_combine", ARMT_P_ATTENTION},
    [ARMT_K_GEMV1_BF16_DPFP] = {"armt_gemv1_bf16_dpfp", ARMT_P_GEMM_BF16},
    [ARMT_K_ROWS_ARGMAX_PART] = {"armt_rows_argmax_part", ARMT_P_MEMORY},
    [ARMT_K_ROWS_ARGMAX_FINAL] = {"armt_rows_argmax_final", ARMT_P_MEMORY},
}; /* (ARMT_P_ATTENTION: the model's attention program, ARMT_P_ATTENTION or ARMT_P_ATTENTION_MMA) */

/* The source files of each program, in build order; tc = 1: tensor-core files, built only with tensor cores
 * (real or emulated). Every program starts with common.cl. */
typedef struct program_file {
    const char *name;
    int tc;
} program_file;
#define PROGRAM_FILES_MAX 12
#define GEMM_FILES                                                                            \
    {"common.cl", 0}, {"mma.cl", 1}, {"gemm_args.h", 0}, {"gemm_bf16.cl", 0}, {"dpfp.cl", 0}, \
        {"gemv_bf16.cl", 0}, {"gemm_mma_params.cl", 1}, {"gemm_mma_warp.cl", 1},              \
        {"gemm_mma_epilogue.cl", 1}, {"gemm_mma.cl", 1}, {                                    \
        "gemm_mma_entries.cl", 1                                                              \
    }
static const program_file program_files[ARMT_P_COUNT][PROGRAM_FILES_MAX] = {
    [ARMT_P_EMBED] = {{"common.cl"}, {"embed.cl"}},
    [ARMT_P_INIT] = {{"common.cl"}, {"init.cl"}},
    [ARMT_P_NORM] = {{"common.cl"}, {"norm.cl"}},
    [ARMT_P_ROPE] = {{"common.cl"}, {"rope.cl"}},
    [ARMT_P_ATTENTION] = {{"common.cl"}, {"attention.cl"}, {"rows_attention.cl"}},
    [ARMT_P_ELEMENTWISE] = {{"common.cl"}, {"elementwise.cl"}},
    [ARMT_P_MEMORY] = {{"common.cl"}, {"dpfp.cl"}, {"memory.cl"}, {"rows.cl"}},
    [ARMT_P_GEMM_BF16] = {GEMM_FILES},
    [ARMT_P_GEMM_NARROW] = {GEMM_FILES},
    [ARMT_P_ATTENTION_MMA] =
        {{"common.cl"}, {"mma.cl", 1}, {"attention.cl"}, {"attention_mma.cl", 1}, {"rows_attention.cl"}},
    [ARMT_P_GEMM_TF32] = {{"common.cl"},
                          {"mma.cl", 1},
                          {"gemm_args.h"},
                          {"gemm_bf16.cl"},
                          {"gemm_tf32.cl", 1},
                          {"gemm_tf32_wg.cl", 1}},
};

size_t armt_program_files(armt_program_id pid, int nv_mma, const char **files, size_t cap) {
    size_t n = 0;
    for (int i = 0; i < PROGRAM_FILES_MAX && program_files[pid][i].name; i++)
        if (nv_mma || !program_files[pid][i].tc) {
            if (n < cap) files[n] = program_files[pid][i].name;
            n++;
        }
    return n;
}

const char *armt_kernel_name(armt_kernel_id id) {
    if (id < 0 || id >= ARMT_K_COUNT) return "?";
    return kernel_table[id].label ? kernel_table[id].label : kernel_table[id].name;
}

/* ======================================================================================================= */
/* Programs                                                                                                */
/* ======================================================================================================= */

/* Source text of a kernel file: from kernel_dir when given, else the embedded copy. */
static armt_status kernel_source(const char *dir, const char *file, char **text, size_t *len, armt_err *err) {
    if (dir) {
        char path[4096];
        snprintf(path, sizeof path, "%s/%s", dir, file);
        return armt_read_file(path, "kernel source", 0, 0, text, len, err);
    }
    for (size_t i = 0; i < armt_kernel_source_count; i++) {
        if (strcmp(armt_kernel_sources[i].name, file) == 0) {
            *text = malloc(armt_kernel_sources[i].size + 1);
            if (!*text) return armt_err_set(err, ARMT_STATUS_OUT_OF_HOST_MEMORY, "out of host memory");
            memcpy(*text, armt_kernel_sources[i].data, armt_kernel_sources[i].size);
            (*text)[armt_kernel_sources[i].size] = '\0';
            *len = armt_kernel_sources[i].size;
            return ARMT_OK;
        }
    }
    return armt_err_set(err, ARMT_STATUS_KERNEL_BUILD_FAILED, "kernel source %s is not embedded", file);
}

/* Builds one program from its files (armt_program_files); a failure carries the full build log. */
armt_status armt_program_build(armt_runtime *rt, armt_program_id pid, const char *extra_options,
                               cl_program *out, armt_err *err) {
    const char *dir = rt->kernel_dir;
    const char *files[PROGRAM_FILES_MAX];
    const size_t nf = armt_program_files(pid, rt->tune.nv_mma, files, PROGRAM_FILES_MAX);
    char *srcs[PROGRAM_FILES_MAX] = {NULL};
    size_t lens[PROGRAM_FILES_MAX] = {0};
    armt_status st = ARMT_OK;
    for (size_t i = 0; i < nf && st == ARMT_OK; i++)
        st = kernel_source(dir, files[i], &srcs[i], &lens[i], err);
    cl_int e = CL_SUCCESS;
    cl_program p = NULL;
    if (st == ARMT_OK) p = clCreateProgramWithSource(rt->context, (cl_uint)nf, (const char **)srcs, lens, &e);
    for (size_t i = 0; i < nf; i++)
        free(srcs[i]);
    if (st != ARMT_OK) return st;
    if (e != CL_SUCCESS) return armt_err_cl(err, "clCreateProgramWithSource", e);
    /* the tuning's options, the program's own, then the developer pass-through (last: it may override) */
    const char *pass = rt->cl_passthrough ? rt->cl_passthrough : "",
               *own = extra_options ? extra_options : "";
    size_t optlen = strlen(rt->build_options) + strlen(own) + strlen(pass) + 3;
    char *opts = malloc(optlen);
    if (!opts) {
        clReleaseProgram(p);
        return armt_err_set(err, ARMT_STATUS_OUT_OF_HOST_MEMORY, "out of host memory");
    }
    snprintf(opts, optlen, "%s%s%s%s%s", rt->build_options, *own ? " " : "", own, *pass ? " " : "", pass);
    e = clBuildProgram(p, 1, &rt->device, opts, NULL, NULL);
    if (e != CL_SUCCESS) {
        char *log = armt_build_log(p, rt->device);
        armt_err_set(err, ARMT_STATUS_KERNEL_BUILD_FAILED,
                     "clBuildProgram of %s%s%s failed: %s (%d)\noptions: %s\nbuild log:\n%s", dir ? dir : "",
                     dir ? "/" : "(embedded) ", files[nf - 1], armt_cl_error_str(e), e, opts,
                     log ? log : "(no log)");
        free(log);
        free(opts);
        clReleaseProgram(p);
        return ARMT_STATUS_KERNEL_BUILD_FAILED;
    }
    free(opts);
    *out = p;
    return ARMT_OK;
}

/* The GEMM program, with its tile options (armt_tune_gemm_options) after the common ones; narrow = 1: the
 * narrow tiles' program. */
static armt_status gemm_program_build(armt_runtime *rt, int narrow, cl_program *out, armt_err *err) {
    char opts[512];
    armt_tune_gemm_options(&rt->tune, narrow, opts, sizeof opts);
    return armt_program_build(rt, narrow ? ARMT_P_GEMM_NARROW : ARMT_P_GEMM_BF16, opts, out, err);
}

/* One tile of the wgmma GEMM on tiny buffers: C = A W^T for m = n = 1, k = 200 (small integers, so every
 * product and sum is exact in bf16 and fp32), compared with the exact value. A driver that refused the
 * tiles' local memory at launch, or a rewrite gone wrong, shows here; 0 = it ran and is right. */
static int gemm_wgmma_selftest(armt_runtime *rt, cl_program p, size_t threads) {
    enum { K = 200 };
    uint16_t a[K], w[K];
    float want = 0.0f, got = -1.0f;
    for (int i = 0; i < K; i++) {
        const float x = (float)(i % 7 - 3), y = (float)(i % 5 - 2);
        a[i] = armt_bf16_bits(x), w[i] = armt_bf16_bits(y);
        want += x * y;
    }
    cl_int e;
    cl_kernel k = clCreateKernel(p, "armt_gemm_bf16bf16_mma", &e);
    if (e != CL_SUCCESS) return -1;
    cl_mem ba = clCreateBuffer(rt->context, CL_MEM_READ_ONLY | CL_MEM_COPY_HOST_PTR, sizeof a, a, &e);
    cl_mem bw = e == CL_SUCCESS
                    ? clCreateBuffer(rt->context, CL_MEM_READ_ONLY | CL_MEM_COPY_HOST_PTR, sizeof w, w, &e)
                    : NULL;
    cl_mem bc = e == CL_SUCCESS
                    ? clCreateBuffer(rt->context, CL_MEM_READ_WRITE | CL_MEM_COPY_HOST_PTR, 4, &got, &e)
                    : NULL;
    if (e == CL_SUCCESS) {
        const armt_gemm_args ga = {.m = 1,
                                   .n = 1,
                                   .k = K,
                                   .a = ba,
                                   .lda = K,
                                   .w = bw,
                                   .c = bc,
                                   .ldc = 1,
                                   .rope_hd = K,
                                   .rope_t = 1}; /* strided mode, one entry, every row */
        e = armt_gemm_set_args(k, &ga);
        size_t gws[3] = {threads, 1, 1}, lws[3] = {threads, 1, 1};
        if (e == CL_SUCCESS) e = clEnqueueNDRangeKernel(rt->queue, k, 3, NULL, gws, lws, 0, NULL, NULL);
        if (e == CL_SUCCESS) e = clEnqueueReadBuffer(rt->queue, bc, CL_TRUE, 0, 4, &got, 0, NULL, NULL);
    }
    if (bc) clReleaseMemObject(bc);
    if (bw) clReleaseMemObject(bw);
    if (ba) clReleaseMemObject(ba);
    clReleaseKernel(k);
    if (e != CL_SUCCESS) {
        armt_log(ARMT_LOG_WARN, "bf16 GEMM: the wgmma check did not run: %s (%d)", armt_cl_error_str(e), e);
        return -1;
    }
    if (got != want) {
        armt_log(ARMT_LOG_WARN, "bf16 GEMM: the wgmma check computed %g, want %g", (double)got, (double)want);
        return -1;
    }
    return 0;
}

/* Hopper: a GEMM program's wgmma lines are PTX comments until its PTX is rewritten for sm_90a and rebuilt
 * (lib/device/nv_ptx.c), and its tiles use more local memory than OpenCL reports; one tile (`threads`
 * work-items)
 * is then checked. 0: *p is the rewritten program (the original released). Otherwise *p is unchanged and a
 * warning names the cause for the `tiles` and what happens `instead`. */
static int gemm_sm90a_checked(armt_runtime *rt, cl_program *p, size_t threads, const char *tiles,
                              const char *instead) {
    cl_program p2 = NULL;
    cl_int e = armt_nv_rebuild_sm90a(rt->context, rt->device, *p, "", &p2);
    if (e == CL_SUCCESS && gemm_wgmma_selftest(rt, p2, threads) == 0) {
        clReleaseProgram(*p);
        *p = p2;
        return 0;
    }
    if (p2) clReleaseProgram(p2);
    if (e != CL_SUCCESS)
        armt_log(ARMT_LOG_WARN, "bf16 GEMM: the sm_90a rebuild of the %s failed: %s (%d); %s", tiles,
                 armt_cl_error_str(e), e, instead);
    else
        armt_log(ARMT_LOG_WARN, "bf16 GEMM: %s unusable on this driver; %s", tiles, instead);
    return -1;
}

/* The main tiles on Hopper (gemm_sm90a_checked); should that fail, the program is built again with the
 * mma.sync tiles. */
static armt_status gemm_to_sm90a(armt_runtime *rt, armt_err *err) {
    cl_program *gp = &rt->programs[ARMT_P_GEMM_BF16];
    if (gemm_sm90a_checked(rt, gp, (size_t)rt->tune.mma_threads, "wgmma tiles", "using mma.sync") == 0)
        return ARMT_OK;
    armt_tune_wgmma_failed(&rt->tune);
    clReleaseProgram(*gp);
    *gp = NULL;
    return gemm_program_build(rt, 0, gp, err);
}

/* Hopper: the wgmma tiles are PTX comments until the sm_90a rebuild (not with the stand-ins) */
static int needs_sm90a(const armt_device_tuning *t) { return t->mma_wgmma && !t->mma_emulate; }

/* The narrow tiles' program: built, and with the wgmma tiles rewritten and checked like the main one.
 * They are an optimisation only: any failure logs a warning and leaves them out (nar_bn = 0). */
static void gemm_narrow_build(armt_runtime *rt) {
    static const char instead[] = "using the main tiles for every GEMM";
    cl_program p = NULL;
    armt_err e2;
    armt_err_init(&e2);
    if (gemm_program_build(rt, 1, &p, &e2) != ARMT_OK) {
        armt_log(ARMT_LOG_WARN, "bf16 GEMM: narrow tiles not built (%s); %s", armt_err_msg(&e2), instead);
    } else if (needs_sm90a(&rt->tune) &&
               gemm_sm90a_checked(rt, &p, (size_t)rt->tune.nar_threads, "narrow tiles", instead) != 0) {
        clReleaseProgram(p);
        p = NULL;
    }
    armt_err_free(&e2);
    if (!p) armt_tune_narrow_failed(&rt->tune);
    rt->programs[ARMT_P_GEMM_NARROW] = p;
}

/* The kernel names a built program holds (CL_PROGRAM_KERNEL_NAMES: "a;b;c"), malloc'ed; NULL when the
 * driver does not say (the caller then tries clCreateKernel, as before OpenCL 1.2). */
static char *program_kernel_names(cl_program p) {
    size_t n = 0;
    if (clGetProgramInfo(p, CL_PROGRAM_KERNEL_NAMES, 0, NULL, &n) != CL_SUCCESS || n == 0) return NULL;
    char *names = malloc(n + 1);
    if (names && clGetProgramInfo(p, CL_PROGRAM_KERNEL_NAMES, n, names, NULL) != CL_SUCCESS) {
        free(names);
        return NULL;
    }
    if (names) names[n] = '\0';
    return names;
}

/* 1: name is one of the ';'-separated names */
static int names_have(const char *names, const char *name) {
    const size_t len = strlen(name);
    for (const char *s = names; *s;) {
        const char *e = strchr(s, ';');
        const size_t n = e ? (size_t)(e - s) : strlen(s);
        if (n == len && strncmp(s, name, len) == 0) return 1;
        if (!e) break;
        s = e + 1;
    }
    return 0;
}

armt_status armt_kernels_create(armt_runtime *rt, cl_program attention, cl_kernel *k, armt_err *err) {
    for (int i = 0; i < ARMT_K_COUNT; i++)
        k[i] = NULL;
    /* An optional kernel is created only where its program holds it (asked once per program): calling
     * clCreateKernel for a kernel that is not there fails with CL_INVALID_KERNEL_NAME, which API checkers
     * (Oclgrind's --check-api, make check-oclgrind) rightly report, and some drivers log. */
    struct {
        cl_program p; /* the program asked (NULL: not yet) */
        char *names;
    } listed[ARMT_P_COUNT + 1] = {{NULL, NULL}};
    armt_status st = ARMT_OK;
    for (int i = 0; i < ARMT_K_COUNT && st == ARMT_OK; i++) {
        cl_int e;
        const armt_program_id pid = kernel_table[i].program;
        cl_program p = pid == ARMT_P_ATTENTION ? attention : rt->programs[pid];
        if (!p) continue; /* the attention program belongs to a model (head_dim is fixed at its build) */
        if ((i == ARMT_K_GEMM_BF16_MMA || i == ARMT_K_GEMM_BF16BF16_MMA || i == ARMT_K_F32_TO_BF16) &&
            !rt->tune.nv_mma)
            continue;
        if (kernel_table[i].optional) {
            const int slot = pid == ARMT_P_ATTENTION ? ARMT_P_COUNT : (int)pid;
            if (listed[slot].p != p) {
                free(listed[slot].names);
                listed[slot].p = p;
                listed[slot].names = program_kernel_names(p);
            }
            if (listed[slot].names && !names_have(listed[slot].names, kernel_table[i].name)) continue;
        }
        k[i] = clCreateKernel(p, kernel_table[i].name, &e);
        if (e != CL_SUCCESS && kernel_table[i].optional) {
            k[i] = NULL;
            continue;
        }
        if (e != CL_SUCCESS) {
            armt_kernels_release(k);
            st = armt_err_set(err, ARMT_STATUS_KERNEL_BUILD_FAILED, "clCreateKernel(%s) failed: %s (%d)",
                              kernel_table[i].name, armt_cl_error_str(e), e);
        }
    }
    for (int i = 0; i <= ARMT_P_COUNT; i++)
        free(listed[i].names);
    return st;
}

void armt_kernels_release(cl_kernel *k) {
    for (int i = 0; i < ARMT_K_COUNT; i++) {
        if (k[i]) clReleaseKernel(k[i]);
        k[i] = NULL;
    }
}

armt_status armt_programs_build(armt_runtime *rt, armt_err *err) {
    for (int i = 0; i < ARMT_P_COUNT; i++) {
        if (i == ARMT_P_ATTENTION || i == ARMT_P_ATTENTION_MMA) continue; /* built per model (model.c) */
        if (i == ARMT_P_GEMM_BF16) {
            ARMT_TRY(gemm_program_build(rt, 0, &rt->programs[i], err));
            if (needs_sm90a(&rt->tune)) ARMT_TRY(gemm_to_sm90a(rt, err));
            continue;
        }
        if (i == ARMT_P_GEMM_NARROW) { /* after the main program: its fallback may have dropped the tiles */
            if (rt->tune.nv_mma && rt->tune.nar_bn) gemm_narrow_build(rt);
            continue;
        }
        if (i == ARMT_P_GEMM_TF32) { /* only where fp32 GEMMs go to tensor cores */
            if (rt->tune.tf32) ARMT_TRY(armt_tf32_program_build(rt, &rt->programs[i], err));
            continue;
        }
        ARMT_TRY(armt_program_build(rt, (armt_program_id)i, NULL, &rt->programs[i], err));
    }
    /* every kernel of the table must exist: create and drop one set now */
    cl_kernel k[ARMT_K_COUNT];
    ARMT_TRY(armt_kernels_create(rt, NULL, k, err));
    armt_kernels_release(k);
    char gopts[512], nopts[512];
    armt_tune_gemm_options(&rt->tune, 0, gopts, sizeof gopts);
    armt_tune_gemm_options(&rt->tune, 1, nopts, sizeof nopts);
    char topts[256];
    armt_tune_tf32_options(&rt->tune, topts, sizeof topts);
    armt_log(ARMT_LOG_INFO,
             "runtime: %s / %s, options: %s%s%s; bf16 GEMM tiles: %s; narrow tiles: %s; fp32 GEMM: %s%s",
             rt->info.platform_name, rt->info.name, rt->build_options, rt->cl_passthrough ? " + " : "",
             rt->cl_passthrough ? rt->cl_passthrough : "", gopts[0] ? gopts : "portable",
             nopts[0] ? nopts : "none", topts[0] ? "3xTF32 " : "CLBlast", topts);
    return ARMT_OK;
}
