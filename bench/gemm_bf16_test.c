/*
 * gemm_bf16_test.c - standalone correctness test and benchmark of the bf16 GEMM kernels (own OpenCL host
 * code): cl/gemm_bf16.cl, and for the tensor-core kernels cl/mma.cl and cl/gemm_mma_*.cl in the library's
 * order (lib/device/programs.c).
 *
 *   gcc -std=gnu11 -O2 -Wall -Wextra bench/gemm_bf16_test.c -o gemm_bf16_test -lOpenCL -lm
 *   ./gemm_bf16_test [--kernel-dir cl] [--platform N --device N] [--list] [--bench] [--big] [--emulate]
 *                    [--mma-tiles LIST] [--portable-tiles LIST] [--cells 16] [--rows 1152] [--reps 10] [--opts "-D..."] [--seed N]
 *                    [--verbose]
 *
 * Tests (always): every kernel on small and medium odd shapes against an fp64 CPU reference computed from the
 * same bf16-rounded inputs: batch entries with non-monotonic per-entry offsets (table mode) and uniform ones
 * (strided mode, offs = NULL), beta = 0 and 1, lda > k and ldc > n. C is poisoned with NaN (every element of
 * every block must be written; with beta = 0 it is never read), unused A regions / W layers / padding are NaN
 * too (reading them would show), and everything outside the C blocks must come back bit-identical. Failure:
 * relative error max|C - ref| / max|ref| > 5e-3, or any element with |C - ref| > 5e-3 * max(|ref|, rms(ref));
 * the first bad index and its values are printed. On an NVIDIA device (or with --big) the 1B-like odd case m
 * = 1152+37, n = 8192+8, k = 2048+16 runs too; its values are checked on a sample of rows (first and last
 * tiles, tile boundaries, random), its poison/outside checks on every element.
 *
 * Kernels: armt_gemm_bf16 (portable) always, once per --portable-tiles entry TMxTN:RMxRN (default
 * 64x64:4x4,128x64:8x4,128x128:8x8; in --bench the first is the reference and the others must give the same bits); on a device with cl_nv_device_attribute_query and compute
 * capability >= 8.0 (or elsewhere with --emulate: -DARMT_MMA_EMULATE=1, PTX replaced by OpenCL C, small cases
 * only; PoCL needs minutes per variant to JIT it, hence opt-in) one mma kernel per --mma-tiles entry:
 *   [b]BMxBNxBK:WMxWN[sN][rN][wN][gN][mN]   comma-separated
 *   b: armt_gemm_bf16bf16_mma fed by the armt_f32_to_bf16 pre-pass (else armt_gemm_bf16_mma, fp32 A);
 *   sN MMA_STAGES, rN -cl-nv-maxrregcount=N,
 *   wN Hopper wgmma with m64 x N x k16 instructions (N = 64, 128 or 256; whole warpgroups, e.g. 2x2 or 2x4
 *   warps, and 3+ stages; with b and BN 256 the gate-and-up mode is checked too),
 *   gN MMA_SMEM_MAX = N KiB, mN MMA_RASTER
 *   (unset: the files' defaults). Default list:
 *   128x128x32:2x2,128x256x32:2x4s2,b128x128x32:2x2,b128x128x32:2x4
 * The bf16 x bf16 kernel needs lda % 8 and a_off % 8 (cases that break it are counted as skipped); the
 * pre-pass writes into a bf16 buffer poisoned with NaN, so a GEMM read outside what it wrote shows.
 * On NVIDIA, -cl-nv-verbose is added and the ptxas line of the mma entry (registers, spills, local memory)
 * is printed with the build. Output is compact (a line per case; per-kernel lines for failures, or all with
 * --verbose), so that the end of a GPU run (tail -80) holds the whole result.
 *
 * --bench: the LLaMA-3.2-1B cell shapes, --cells (16) cells x --rows (1152) rows, (n, k) in q/o (2048, 2048),
 * k/v (512, 2048), gate/up (8192, 2048), down (2048, 8192); 2 warm-up runs, median of --reps (10) runs timed
 * with profiling events (kernel execution only: no compile, no transfers); TFLOP/s = 2 * cells * m * n * k /
 * time. Every mma result is compared with the portable kernel's on the same shape. For b kernels the
 * pre-pass is timed too (its own events) and a TFLOP/s counting it is printed; last, the best per shape.
 * --beta 1 benchmarks C += A W^T (the residual GEMMs of the forward: o and down projections) instead.
 * --shapes NAME:NxK,... (up to 8) replaces the four shapes, e.g. the memory projections:
 * "wmq:64x2048,read:2048x384" (W_mq on every row; the read phi(Q) W_mem, k = 384).
 *
 * Exit: 0 all passed, 1 a correctness failure (or a kernel that failed to build/run), 2 usage, 77 no OpenCL
 * device.
 */
#define CL_TARGET_OPENCL_VERSION 120
#include <CL/cl.h>

#include "device/nv_ptx.h"
#include "compute/gemm.h"
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define CL_DEVICE_COMPUTE_CAPABILITY_MAJOR_NV 0x4000
#define CL_DEVICE_COMPUTE_CAPABILITY_MINOR_NV 0x4001

#define TOL 5e-3

/* ----------------------------------------------------------------------------------------------------------
 */
/* small helpers */
/* ----------------------------------------------------------------------------------------------------------
 */

static const char *cl_err(cl_int e) {
    switch (e) {
    case CL_SUCCESS: return "CL_SUCCESS";
    case CL_DEVICE_NOT_FOUND: return "CL_DEVICE_NOT_FOUND";
    case CL_MEM_OBJECT_ALLOCATION_FAILURE: return "CL_MEM_OBJECT_ALLOCATION_FAILURE";
    case CL_OUT_OF_RESOURCES: return "CL_OUT_OF_RESOURCES";
    case CL_OUT_OF_HOST_MEMORY: return "CL_OUT_OF_HOST_MEMORY";
    case CL_BUILD_PROGRAM_FAILURE: return "CL_BUILD_PROGRAM_FAILURE";
    case CL_INVALID_VALUE: return "CL_INVALID_VALUE";
    case CL_INVALID_BUFFER_SIZE: return "CL_INVALID_BUFFER_SIZE";
    case CL_INVALID_PROGRAM_EXECUTABLE: return "CL_INVALID_PROGRAM_EXECUTABLE";
    case CL_INVALID_KERNEL_NAME: return "CL_INVALID_KERNEL_NAME";
    case CL_INVALID_ARG_INDEX: return "CL_INVALID_ARG_INDEX";
    case CL_INVALID_ARG_VALUE: return "CL_INVALID_ARG_VALUE";
    case CL_INVALID_ARG_SIZE: return "CL_INVALID_ARG_SIZE";
    case CL_INVALID_KERNEL_ARGS: return "CL_INVALID_KERNEL_ARGS";
    case CL_INVALID_WORK_GROUP_SIZE: return "CL_INVALID_WORK_GROUP_SIZE";
    case CL_INVALID_GLOBAL_WORK_SIZE: return "CL_INVALID_GLOBAL_WORK_SIZE";
    case CL_INVALID_BUILD_OPTIONS: return "CL_INVALID_BUILD_OPTIONS";
    case -1001: return "CL_PLATFORM_NOT_FOUND_KHR";
    default: return "?";
    }
}
#define CL_TRY(expr)                                                                                   \
    do {                                                                                               \
        cl_int e_ = (expr);                                                                            \
        if (e_ != CL_SUCCESS) {                                                                        \
            fprintf(stderr, "%s:%d: %s -> %d (%s)\n", __FILE__, __LINE__, #expr, (int)e_, cl_err(e_)); \
            return e_;                                                                                 \
        }                                                                                              \
    } while (0)

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + 1e-9 * ts.tv_nsec;
}

static uint64_t rng_state = 0x9e3779b97f4a7c15ull;
static uint64_t rng_next(void) {
    uint64_t x = rng_state;
    x ^= x >> 12, x ^= x << 25, x ^= x >> 27;
    rng_state = x;
    return x * 0x2545f4914f6cdd1dull;
}
/* uniform in (-1, 1), never exactly 0 */
static float rng_unif(void) { return (float)(((double)(rng_next() >> 40) + 0.5) / 8388608.0 - 1.0); }

static uint16_t f2bf(float x) { /* round to nearest even, same formula as the kernels */
    uint32_t u;
    memcpy(&u, &x, 4);
    return (uint16_t)((u + 0x7fffu + ((u >> 16) & 1u)) >> 16);
}
static float bf2f(uint16_t h) {
    uint32_t u = (uint32_t)h << 16;
    float f;
    memcpy(&f, &u, 4);
    return f;
}
static float fnan(void) { return nanf(""); }

static char *read_file(const char *path, size_t *len) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *s = malloc((size_t)n + 1);
    if (s && fread(s, 1, (size_t)n, f) != (size_t)n) {
        free(s);
        s = NULL;
    }
    fclose(f);
    if (s) s[n] = 0, *len = (size_t)n;
    return s;
}

/* The files of dir concatenated in order (one source text, as clCreateProgramWithSource joins them). */
static char *read_files(const char *dir, const char *const *files, size_t n, size_t *len) {
    char *out = NULL;
    size_t total = 0;
    for (size_t i = 0; i < n; i++) {
        char path[1024];
        size_t l = 0;
        snprintf(path, sizeof path, "%s/%s", dir, files[i]);
        char *t = read_file(path, &l), *grown = t ? realloc(out, total + l + 1) : NULL;
        if (!grown) {
            free(t), free(out);
            return NULL;
        }
        out = grown;
        memcpy(out + total, t, l);
        total += l;
        out[total] = 0;
        free(t);
    }
    *len = total;
    return out;
}

/* ----------------------------------------------------------------------------------------------------------
 */
/* device and kernels */
/* ----------------------------------------------------------------------------------------------------------
 */

typedef struct {
    cl_platform_id platform;
    cl_device_id device;
    cl_context ctx;
    cl_command_queue q;
    int nv_cc; /* 10 * major + minor, 0 if not NVIDIA / unknown */
    cl_ulong max_alloc;
} dev_t_;

typedef struct {
    char name[96];
    cl_program prog;
    cl_kernel kern;
    int mma;             /* 1: armt_gemm_bf16_mma (needs the alignment rules) */
    int bm, bn, threads; /* tile and work-group size */
    int tm, tn, rm, rn;  /* the portable kernel's tile (GEMM_TM, GEMM_TN, GEMM_RM, GEMM_RN) */
    int small_only;      /* emulation: only the small cases */
    int wgmma;           /* built with MMA_WGMMA=1: the sm_90a rebuild on NVIDIA */
    int dual; /* wgmma with 256-wide tiles and a bf16 A: the gate-and-up mode exists (W2, arg 18) */
    int span; /* output columns each thread's accumulators cover (the RoPE epilogue's limit) */
    int failed;
    int abf;             /* 1: armt_gemm_bf16bf16_mma (bf16 A made by the armt_f32_to_bf16 pre-pass) */
    cl_kernel prep;      /* armt_f32_to_bf16 of the same program (abf only) */
    char info[160];      /* NVIDIA: registers, spills, local memory of the mma entry */
    armt_gemm_args args; /* the GEMM kernel's arguments as last set (set_args) */
} kern_t;

static char *g_source, *g_source_mma; /* the portable program's sources; the tensor-core one's */
static size_t g_source_len, g_source_mma_len;

static void print_build_log(cl_program p, cl_device_id d, int only_info, const char *entry, char *info,
                            size_t info_len) {
    char *log = armt_build_log(p, d);
    if (!log) return;
    if (!only_info) {
        fprintf(stderr, "---- build log ----\n%s\n-------------------\n", log);
    } else { /* NVIDIA -cl-nv-verbose: registers, spills, local memory of `entry`, in one line */
        int in_entry = 0;
        char spill[96] = "";
        info[0] = 0;
        for (char *line = strtok(log, "\n"); line; line = strtok(NULL, "\n")) {
            const char *q;
            if (strstr(line, "Compiling entry function")) {
                char want[128];
                snprintf(want, sizeof want, "'%s'", entry);
                in_entry = strstr(line, want) != NULL;
            } else if (in_entry && (q = strstr(line, "bytes stack frame"))) {
                while (q > line && q[-1] != '.' && q[-1] != ':')
                    q--;
                while (*q == ' ')
                    q++;
                snprintf(spill, sizeof spill, "%s", q);
            } else if (in_entry && (q = strstr(line, "Used "))) {
                snprintf(info, info_len, "%s | %s", q, spill);
                in_entry = 0;
            }
        }
    }
    free(log);
}

static int build_kernel(dev_t_ *D, kern_t *K, const char *kname, const char *opts) {
    cl_int e;
    const char *src = K->mma ? g_source_mma : g_source;
    const size_t len = K->mma ? g_source_mma_len : g_source_len;
    double t0 = now_s();
    K->prog = clCreateProgramWithSource(D->ctx, 1, &src, &len, &e);
    if (e != CL_SUCCESS) return fprintf(stderr, "clCreateProgramWithSource: %d\n", e), -1;
    e = clBuildProgram(K->prog, 1, &D->device, opts, NULL, NULL);
    if (e != CL_SUCCESS) {
        fprintf(stderr, "[%s] clBuildProgram(\"%s\") -> %d (%s)\n", K->name, opts, e, cl_err(e));
        print_build_log(K->prog, D->device, 0, NULL, NULL, 0);
        return -1;
    }
    if (D->nv_cc && K->wgmma) {
        /* wgmma: the built PTX, marked comments made instructions, rebuilt for sm_90a
         * (lib/device/nv_ptx.c) */
        cl_program p2 = NULL;
        e = armt_nv_rebuild_sm90a(D->ctx, D->device, K->prog, opts, &p2);
        if (e != CL_SUCCESS) {
            fprintf(stderr, "[%s] sm_90a rebuild -> %d (%s)\n", K->name, e, cl_err(e));
            if (p2) {
                print_build_log(p2, D->device, 0, NULL, NULL, 0);
                clReleaseProgram(p2);
            }
            return -1;
        }
        clReleaseProgram(K->prog);
        K->prog = p2;
    }
    K->kern = clCreateKernel(K->prog, kname, &e);
    if (e != CL_SUCCESS)
        return fprintf(stderr, "[%s] clCreateKernel(%s) -> %d (%s)\n", K->name, kname, e, cl_err(e)), -1;
    if (K->abf) {
        K->prep = clCreateKernel(K->prog, "armt_f32_to_bf16", &e);
        if (e != CL_SUCCESS)
            return fprintf(stderr, "[%s] clCreateKernel(armt_f32_to_bf16) -> %d (%s)\n", K->name, e,
                           cl_err(e)),
                   -1;
    }
    if (D->nv_cc) print_build_log(K->prog, D->device, 1, kname, K->info, sizeof K->info);
    printf("  built %-34s %5.2f s  %s\n", K->name, now_s() - t0, K->info[0] ? K->info : opts);
    return 0;
}

/* The last argument of every GEMM kernel: rows of the launch's last entry that need not be computed. */
static cl_int set_last_row0(kern_t *K, int last_row0) {
    K->args.last_row0 = last_row0;
    return armt_gemm_set_args(K->kern, &K->args);
}

/* The plain product's arguments (no epilogue, every row) through the library's setter; a mode's own
 * arguments are then changed in K->args and set again the same way. */
static cl_int set_args(kern_t *K, int m, int n, int k, cl_mem A, int lda, cl_mem W, cl_mem C, int ldc,
                       int beta, cl_mem offs, const cl_ulong strides[6]) {
    armt_gemm_args a = {.m = m,
                        .n = n,
                        .k = k,
                        .a = A,
                        .lda = lda,
                        .w = W,
                        .c = C,
                        .ldc = ldc,
                        .beta = beta,
                        .offs = offs,
                        .a_base = strides[0],
                        .a_stride = strides[1],
                        .w_base = strides[2],
                        .w_stride = strides[3],
                        .c_base = strides[4],
                        .c_stride = strides[5],
                        .rope_hd = 64,
                        .rope_t = 1};
    K->args = a;
    return armt_gemm_set_args(K->kern, &K->args);
}

static cl_int launch(dev_t_ *D, kern_t *K, int m, int n, int count, cl_event *ev) {
    size_t gws[3], lws[3];
    if (K->mma) {
        gws[0] = (size_t)((n + K->bn - 1) / K->bn) * K->threads, gws[1] = (size_t)((m + K->bm - 1) / K->bm);
        lws[0] = K->threads, lws[1] = 1;
    } else {
        lws[0] = (size_t)(K->tn / K->rn), lws[1] = (size_t)(K->tm / K->rm);
        gws[0] = (size_t)((n + K->tn - 1) / K->tn) * lws[0],
        gws[1] = (size_t)((m + K->tm - 1) / K->tm) * lws[1];
    }
    gws[2] = (size_t)count, lws[2] = 1;
    CL_TRY(clEnqueueNDRangeKernel(D->q, K->kern, 3, NULL, gws, lws, 0, NULL, ev));
    return CL_SUCCESS;
}

/* armt_f32_to_bf16: Ab (same element offsets as A) = bf16(A) over the count entries' m x k blocks */
static cl_int launch_prep(dev_t_ *D, kern_t *K, int m, int k, cl_mem A, int lda, cl_mem Ab, cl_mem offs,
                          const cl_ulong strides[6], int count, cl_event *ev) {
    cl_kernel kr = K->prep;
    CL_TRY(armt_f32_to_bf16_set_args(kr, m, k, A, lda, Ab, offs, strides[0], strides[1]));
    size_t lws[3] = {64, 4, 1};
    size_t gws[3] = {(size_t)((k + 8 * 64 - 1) / (8 * 64)) * 64, (size_t)((m + 3) / 4) * 4, (size_t)count};
    CL_TRY(clEnqueueNDRangeKernel(D->q, kr, 3, NULL, gws, lws, 0, NULL, ev));
    return CL_SUCCESS;
}

/* ----------------------------------------------------------------------------------------------------------
 */
/* correctness */
/* ----------------------------------------------------------------------------------------------------------
 */

typedef struct {
    int m, n, k, count, lda, ldc, beta, table, sample, big;
} case_t;

/* the mma kernel's requirements (see cl/gemm_bf16.cl): the host refuses to launch otherwise */
static int mma_shape_ok(int k, int lda, const cl_ulong *a_off, const cl_ulong *w_off, int count, int abf) {
    const int aal = abf ? 8 : 4; /* bf16 A: 16-byte chunks of 8 elements, like W */
    if (k % 8 || lda % aal) return 0;
    for (int j = 0; j < count; j++)
        if (a_off[j] % aal || w_off[j] % 8) return 0;
    return 1;
}

static int g_verbose = 0; /* --verbose: one line per kernel and case (default: failures and a summary) */
static double g_case_rel; /* largest rel_err of the passing kernels in the current case */
static int g_case_ok, g_case_skip, g_line_open;

static int same_bits(float a, float b) { return memcmp(&a, &b, 4) == 0; }

/* rows whose values are checked: all, or a sample (first/last tiles, tile boundaries, random) */
static int pick_rows(const case_t *c, int *rows) {
    if (!c->sample) {
        for (int r = 0; r < c->m; r++)
            rows[r] = r;
        return c->m;
    }
    int nr = 0;
    char *used = calloc((size_t)c->m, 1);
    int cand[] = {0, 1, 2, 7, 8, 15, 16, 17, 31, 63, 64, 65, 127, 128, 129, 255, 256};
    for (size_t i = 0; i < sizeof cand / sizeof *cand; i++)
        if (cand[i] < c->m && !used[cand[i]]) used[cand[i]] = 1, rows[nr++] = cand[i];
    for (int r = c->m - 40; r < c->m; r++)
        if (r >= 0 && !used[r]) used[r] = 1, rows[nr++] = r;
    for (int i = 0; i < 24; i++) {
        int r = (int)(rng_next() % (uint64_t)c->m);
        if (!used[r]) used[r] = 1, rows[nr++] = r;
    }
    free(used);
    return nr;
}

/* One case: inputs, poisoned C and fp64 reference, built once and shared by every kernel. */
typedef struct {
    case_t c;
    cl_ulong a_off[8], w_off[8], c_off[8], strides[6];
    size_t a_len, w_len, c_len;
    float *A, *C0, *C1;
    float *Cp[2]; /* the first portable tile's C (without, with last_row0): every other tile must match it */
    uint16_t *W;
    int *rows, nrows; /* rows whose values are checked */
    double *refs;     /* (entry, checked row, n) */
    double rms, max_ref;
    cl_mem bA, bW, bC, bO, bAb; /* bAb: bf16 copy of A (pre-pass output), poisoned outside the blocks */
} case_data;

static void case_free(case_data *d) {
    if (d->bA) clReleaseMemObject(d->bA);
    if (d->bW) clReleaseMemObject(d->bW);
    if (d->bC) clReleaseMemObject(d->bC);
    if (d->bO) clReleaseMemObject(d->bO);
    if (d->bAb) clReleaseMemObject(d->bAb);
    free(d->A), free(d->C0), free(d->C1), free(d->W), free(d->rows), free(d->refs);
    free(d->Cp[0]), free(d->Cp[1]);
    memset(d, 0, sizeof *d);
}

static int case_prepare(dev_t_ *D, case_data *d, const case_t *c) {
    memset(d, 0, sizeof *d);
    d->c = *c;
    const int m = c->m, n = c->n, k = c->k, cnt = c->count, lda = c->lda, ldc = c->ldc;
    const int layers = cnt + 2;
    const size_t a_blk = (size_t)m * lda, c_blk = (size_t)m * ldc, w_blk = (size_t)n * k;
    const size_t gap = 24; /* elements between regions: a multiple of 8 keeps the mma alignment */
    if (c->table) {
        /* non-monotonic: entry j sits in A region aslot[j], C region cslot[j], W layer (3j + 1) % layers */
        static const int aslot[3][3] = {{0}, {1, 0}, {2, 0, 1}}, cslot[3][3] = {{0}, {1, 0}, {1, 2, 0}};
        for (int j = 0; j < cnt; j++) {
            d->a_off[j] = gap + aslot[cnt - 1][j] * (a_blk + gap);
            d->c_off[j] = gap + cslot[cnt - 1][j] * (c_blk + gap);
            d->w_off[j] = (cl_ulong)((j * 3 + 1) % layers) * w_blk; /* 3 entries of 5 layers: 1, 4, 2 */
        }
    } else {
        cl_ulong *s = d->strides;
        s[0] = 8, s[1] = a_blk + gap;     /* a_base, a_stride */
        s[2] = w_blk, s[3] = w_blk;       /* w_base, w_stride: layers 1 .. cnt */
        s[4] = 5, s[5] = c_blk + gap + 3; /* c_base, c_stride (odd: fine for C) */
        for (int j = 0; j < cnt; j++)
            d->a_off[j] = s[0] + j * s[1], d->w_off[j] = s[2] + j * s[3], d->c_off[j] = s[4] + j * s[5];
    }
    d->a_len = gap + cnt * (a_blk + gap) + 8;
    d->c_len = 8 + cnt * (c_blk + gap + 3) + gap;
    d->w_len = (size_t)layers * w_blk;
    d->A = malloc(d->a_len * 4), d->C0 = malloc(d->c_len * 4), d->C1 = malloc(d->c_len * 4);
    d->W = malloc(d->w_len * 2);
    d->rows = malloc(sizeof(int) * (size_t)m);
    if (!d->A || !d->C0 || !d->C1 || !d->W || !d->rows)
        return fprintf(stderr, "host allocation failed\n"), -1;
    /* poison everything (NaN), then fill the parts that are read: reading a gap, a padding column or an
     * unused layer would put a NaN into the result */
    for (size_t i = 0; i < d->a_len; i++)
        d->A[i] = fnan();
    for (size_t i = 0; i < d->w_len; i++)
        d->W[i] = 0x7fc0; /* bf16 NaN */
    for (size_t i = 0; i < d->c_len; i++)
        d->C0[i] = fnan();
    for (int j = 0; j < cnt; j++) {
        for (int r = 0; r < m; r++)
            for (int q = 0; q < k; q++)
                d->A[d->a_off[j] + (size_t)r * lda + q] = rng_unif();
        for (size_t i = 0; i < w_blk; i++)
            d->W[d->w_off[j] + i] = f2bf(rng_unif());
        if (c->beta)
            for (int r = 0; r < m; r++)
                for (int q = 0; q < n; q++)
                    d->C0[d->c_off[j] + (size_t)r * ldc + q] = rng_unif();
    }
    /* fp64 reference on the bf16-rounded inputs */
    d->nrows = pick_rows(c, d->rows);
    d->refs = malloc(sizeof(double) * (size_t)d->nrows * n * cnt);
    double *arow = malloc(sizeof(double) * (size_t)k);
    float *wf = malloc(sizeof(float) * w_blk);
    if (!d->refs || !arow || !wf)
        return free(arow), free(wf), fprintf(stderr, "host allocation failed\n"), -1;
    double sum_sq = 0;
    for (int j = 0; j < cnt; j++) {
        for (size_t i = 0; i < w_blk; i++)
            wf[i] = bf2f(d->W[d->w_off[j] + i]);
        for (int ri = 0; ri < d->nrows; ri++) {
            const int r = d->rows[ri];
            double *ref = d->refs + ((size_t)j * d->nrows + ri) * n;
            for (int q = 0; q < k; q++)
                arow[q] = bf2f(f2bf(d->A[d->a_off[j] + (size_t)r * lda + q]));
            for (int q = 0; q < n; q++) {
                const float *w = wf + (size_t)q * k;
                double s0 = 0, s1 = 0, s2 = 0, s3 = 0;
                int kk = 0;
                for (; kk + 4 <= k; kk += 4)
                    s0 += arow[kk] * w[kk], s1 += arow[kk + 1] * w[kk + 1], s2 += arow[kk + 2] * w[kk + 2],
                        s3 += arow[kk + 3] * w[kk + 3];
                for (; kk < k; kk++)
                    s0 += arow[kk] * w[kk];
                double v = (s0 + s1) + (s2 + s3);
                if (c->beta) v += d->C0[d->c_off[j] + (size_t)r * ldc + q];
                ref[q] = v;
                sum_sq += v * v;
                if (fabs(v) > d->max_ref) d->max_ref = fabs(v);
            }
        }
    }
    free(arow), free(wf);
    d->rms = sqrt(sum_sq / ((double)d->nrows * n * cnt));

    cl_int e;
    cl_ulong tab[24];
    for (int j = 0; j < cnt; j++)
        tab[3 * j] = d->a_off[j], tab[3 * j + 1] = d->w_off[j], tab[3 * j + 2] = d->c_off[j];
    d->bA = clCreateBuffer(D->ctx, CL_MEM_READ_ONLY | CL_MEM_COPY_HOST_PTR, d->a_len * 4, d->A, &e);
    d->bW = clCreateBuffer(D->ctx, CL_MEM_READ_ONLY | CL_MEM_COPY_HOST_PTR, d->w_len * 2, d->W, &e);
    d->bC = clCreateBuffer(D->ctx, CL_MEM_READ_WRITE, d->c_len * 4, NULL, &e);
    d->bO =
        clCreateBuffer(D->ctx, CL_MEM_READ_ONLY | CL_MEM_COPY_HOST_PTR, sizeof(cl_ulong) * 3 * cnt, tab, &e);
    if (!d->bA || !d->bW || !d->bC || !d->bO) return fprintf(stderr, "device allocation failed: %d\n", e), -1;
    {
        uint16_t *pz = malloc(d->a_len * 2);
        if (!pz) return fprintf(stderr, "host allocation failed\n"), -1;
        for (size_t i = 0; i < d->a_len; i++)
            pz[i] = 0x7fc0; /* bf16 NaN: the GEMM must read only what the
                                                                 pre-pass wrote */
        d->bAb = clCreateBuffer(D->ctx, CL_MEM_READ_WRITE | CL_MEM_COPY_HOST_PTR, d->a_len * 2, pz, &e);
        free(pz);
        if (!d->bAb) return fprintf(stderr, "device allocation failed: %d\n", e), -1;
    }
    return 0;
}

/* one kernel on a prepared case; returns 0 pass, 1 fail, 2 skipped. last_row0 > 0: the kernel is told that
 * rows below it of the last entry are not needed; each such row must then be untouched (bit for bit) or
 * right, and row 0 (whose tile lies wholly below last_row0 for every tile height <= last_row0) untouched */
static int case_check(dev_t_ *D, kern_t *K, case_data *d, int last_row0) {
    const case_t *c = &d->c;
    const int m = c->m, n = c->n, cnt = c->count, ldc = c->ldc;
    if (K->mma && !mma_shape_ok(c->k, c->lda, d->a_off, d->w_off, cnt, K->abf)) {
        if (g_verbose) printf("    %-34s SKIP (shape breaks the mma alignment rules)\n", K->name);
        g_case_skip++;
        return 2;
    }
    double t0 = now_s();
    /* fresh poisoned C for every kernel */
    cl_int e = clEnqueueWriteBuffer(D->q, d->bC, CL_TRUE, 0, d->c_len * 4, d->C0, 0, NULL, NULL);
    if (e == CL_SUCCESS && K->abf)
        e = launch_prep(D, K, m, c->k, d->bA, c->lda, d->bAb, c->table ? d->bO : NULL, d->strides, cnt, NULL);
    if (e == CL_SUCCESS)
        e = set_args(K, m, n, c->k, K->abf ? d->bAb : d->bA, c->lda, d->bW, d->bC, ldc, c->beta,
                     c->table ? d->bO : NULL, d->strides);
    if (e == CL_SUCCESS) e = set_last_row0(K, last_row0);
    if (e == CL_SUCCESS) e = launch(D, K, m, n, cnt, NULL);
    if (e == CL_SUCCESS) e = clFinish(D->q);
    if (e == CL_SUCCESS) e = clEnqueueReadBuffer(D->q, d->bC, CL_TRUE, 0, d->c_len * 4, d->C1, 0, NULL, NULL);
    const double t_dev = now_s() - t0;
    if (e != CL_SUCCESS) {
        if (g_line_open) printf("\n"), g_line_open = 0;
        printf("    %-34s FAIL launch/read: %d (%s)\n", K->name, e, cl_err(e));
        return 1;
    }
    const float *C0 = d->C0, *C1 = d->C1;
    /* 1. outside every block (gaps, ldc padding): untouched, bit for bit */
    char *inblk = calloc(d->c_len, 1);
    for (int j = 0; j < cnt; j++)
        for (int r = 0; r < m; r++)
            memset(inblk + d->c_off[j] + (size_t)r * ldc, 1, (size_t)n);
    size_t bad_out = 0, first_out = 0;
    for (size_t i = 0; i < d->c_len; i++)
        if (!inblk[i] && !same_bits(C0[i], C1[i]) && !bad_out++) first_out = i;
    free(inblk);
    /* rows of the last entry below last_row0 that the kernel left alone */
    char *kept = calloc((size_t)(m > 0 ? m : 1), 1);
    for (int r = 0; r < m && r < last_row0; r++) {
        const float *c0 = C0 + d->c_off[cnt - 1] + (size_t)r * ldc,
                    *c1 = C1 + d->c_off[cnt - 1] + (size_t)r * ldc;
        kept[r] = 1;
        for (int q = 0; q < n && kept[r]; q++)
            kept[r] = same_bits(c0[q], c1[q]);
    }
    const int skip_failed = last_row0 > 0 && !kept[0];
    /* 2. inside: every element finite (written: the poison is gone; no NaN read from outside) */
    size_t bad_nan = 0;
    int nan_j = 0, nan_r = 0, nan_q = 0;
    for (int j = 0; j < cnt; j++)
        for (int r = 0; r < m; r++)
            for (int q = 0; q < n; q++)
                if (!(j == cnt - 1 && kept[r]) && !isfinite(C1[d->c_off[j] + (size_t)r * ldc + q]) &&
                    !bad_nan++)
                    nan_j = j, nan_r = r, nan_q = q;
    /* 3. values */
    double max_err = 0, bgot = 0, bwant = 0;
    size_t nchk = 0, bad_val = 0;
    int bj = 0, br = 0, bri = 0, bq = 0;
    for (int j = 0; j < cnt; j++)
        for (int ri = 0; ri < d->nrows; ri++)
            for (int q = 0; q < n; q++) {
                const int r = d->rows[ri];
                if (j == cnt - 1 && kept[r]) continue;
                const double want = d->refs[((size_t)j * d->nrows + ri) * n + q];
                const double got = C1[d->c_off[j] + (size_t)r * ldc + q];
                double err = fabs(got - want);
                if (!(err == err)) err = INFINITY;
                if (err > max_err) max_err = err;
                nchk++;
                if (err > TOL * fmax(fabs(want), d->rms) && !bad_val++)
                    bj = j, br = r, bri = ri, bq = q, bgot = got, bwant = want;
            }
    const double rel = d->max_ref > 0 ? max_err / d->max_ref : max_err;
    size_t nkept = 0;
    for (int r = 0; r < m; r++)
        nkept += kept[r];
    free(kept);
    /* 4. the portable kernel's tiles: each element the same fma chain, so the same bits as the first tile */
    size_t bad_tile = 0;
    float **cp = &d->Cp[last_row0 > 0];
    if (!K->mma && !*cp && (*cp = malloc(d->c_len * 4))) {
        memcpy(*cp, C1, d->c_len * 4);
    } else if (!K->mma &&
               *cp) { /* the blocks' rows that must be written (those below last_row0 may not be) */
        for (int j = 0; j < cnt; j++)
            for (int r = j == cnt - 1 ? last_row0 : 0; r < m; r++)
                for (int q = 0; q < n; q++)
                    bad_tile += !same_bits((*cp)[d->c_off[j] + (size_t)r * ldc + q],
                                           C1[d->c_off[j] + (size_t)r * ldc + q]);
    }
    const int fail = bad_out || bad_nan || bad_val || !(rel <= TOL) || skip_failed || bad_tile;
    if (fail && g_line_open) printf("\n"), g_line_open = 0;
    if (fail || g_verbose)
        printf("    %-34s %s rel_err %.3e  (max|err| %.3e, max|ref| %.3e; %zu values%s)  %.2f s\n", K->name,
               fail ? "FAIL" : "ok  ", rel, max_err, d->max_ref, nchk, c->sample ? ", sampled rows" : "",
               t_dev);
    if (!fail) {
        g_case_ok++;
        if (rel > g_case_rel) g_case_rel = rel;
    }
    if (last_row0 > 0 && (fail || g_verbose))
        printf("      last_row0 %d: %zu rows of the last entry left alone%s\n", last_row0, nkept,
               skip_failed ? " - but row 0 was written: FAIL" : "");
    if (bad_tile) printf("      %zu elements differ from the first portable tile's\n", bad_tile);
    if (bad_out)
        printf("      %zu elements OUTSIDE the C blocks changed; first at C[%zu]: was %g now %g\n", bad_out,
               first_out, C0[first_out], C1[first_out]);
    if (bad_nan)
        printf("      %zu elements not finite (not written, or NaN read); first: entry %d row %d col %d = %g "
               "(c_off %llu)\n",
               bad_nan, nan_j, nan_r, nan_q, C1[d->c_off[nan_j] + (size_t)nan_r * ldc + nan_q],
               (unsigned long long)d->c_off[nan_j]);
    if (bad_val) {
        printf("      %zu values off; first: entry %d row %d col %d: got %.7g want %.7g (beta %d)\n", bad_val,
               bj, br, bq, bgot, bwant, c->beta);
        /* neighbours help to tell a fragment-layout error (a pattern mod 8 / 16) from an edge error */
        printf("      row %d cols %d..%d got/want:", br, bq, bq + 7 < n ? bq + 7 : n - 1);
        for (int q = bq; q < bq + 8 && q < n; q++)
            printf(" %.4g/%.4g", C1[d->c_off[bj] + (size_t)br * ldc + q],
                   d->refs[((size_t)bj * d->nrows + bri) * n + q]);
        printf("\n");
        size_t rows_bad = 0;
        for (int ri = 0; ri < d->nrows; ri++) {
            int any = 0;
            for (int q = 0; q < n && !any; q++) {
                const double want = d->refs[((size_t)bj * d->nrows + ri) * n + q];
                any = !(fabs(C1[d->c_off[bj] + (size_t)d->rows[ri] * ldc + q] - want) <=
                        TOL * fmax(fabs(want), d->rms));
            }
            rows_bad += any;
        }
        printf("      entry %d: %zu of %d checked rows have a bad value\n", bj, rows_bad, d->nrows);
    }
    return fail;
}

/* ----------------------------------------------------------------------------------------------------------
 */
/* benchmark */
/* ----------------------------------------------------------------------------------------------------------
 */

static int cmp_d(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* a benchmark shape: C (cells x rows x n) = A (rows x k) W^T */
typedef struct bshape {
    char name[16];
    int n, k;
} bshape;
#define MAX_SHAPES 8

/* "--shapes NAME:NxK,...", e.g. "wmq:64x2048,read:2048x384"; returns the count, 0 on a malformed list */
static int parse_shapes(const char *list, bshape *out) {
    int ns = 0;
    for (const char *p = list; *p && ns < MAX_SHAPES;) {
        const char *colon = strchr(p, ':');
        if (!colon || colon == p || colon - p >= (long)sizeof out[ns].name) return 0;
        memcpy(out[ns].name, p, (size_t)(colon - p));
        out[ns].name[colon - p] = '\0';
        char *end;
        long n = strtol(colon + 1, &end, 10);
        if (*end != 'x') return 0;
        long k = strtol(end + 1, &end, 10);
        if (n < 1 || n > 65536 || k < 8 || k > 65536 || k % 8 || (*end && *end != ',')) return 0;
        out[ns].n = (int)n, out[ns].k = (int)k, ns++;
        p = *end ? end + 1 : end;
    }
    return ns;
}

static int bench(dev_t_ *D, kern_t *ks, int nk, int cells, int rows, int reps, int beta, const bshape *shapes,
                 int nshapes) {
    size_t max_nk = 0, max_ak = 0, max_cn = 0;
    for (int s = 0; s < nshapes; s++) {
        size_t nkk = (size_t)shapes[s].n * shapes[s].k;
        if (nkk > max_nk) max_nk = nkk;
        if ((size_t)shapes[s].k > max_ak) max_ak = shapes[s].k;
        if ((size_t)shapes[s].n > max_cn) max_cn = shapes[s].n;
    }
    const size_t a_len = (size_t)cells * rows * max_ak, w_len = (size_t)cells * max_nk,
                 c_len = (size_t)cells * rows * max_cn;
    printf("\n## benchmark: %d cells x %d rows, median of %d (after 2 warm-up runs), kernel time from "
           "events%s\n\n",
           cells, rows, reps, beta ? "; beta = 1 (C += A W^T, C zeroed before each kernel's runs)" : "");
    float *hA = malloc(a_len * 4), *hC = malloc(c_len * 4), *hR = malloc(c_len * 4);
    uint16_t *hW = malloc(w_len * 2);
    if (!hA || !hC || !hR || !hW) return fprintf(stderr, "host allocation failed\n"), 1;
    for (size_t i = 0; i < a_len; i++)
        hA[i] = rng_unif();
    for (size_t i = 0; i < w_len; i++)
        hW[i] = f2bf(rng_unif() * 0.05f);
    cl_int e;
    cl_mem bA = clCreateBuffer(D->ctx, CL_MEM_READ_ONLY | CL_MEM_COPY_HOST_PTR, a_len * 4, hA, &e);
    cl_mem bW = clCreateBuffer(D->ctx, CL_MEM_READ_ONLY | CL_MEM_COPY_HOST_PTR, w_len * 2, hW, &e);
    cl_mem bC = clCreateBuffer(D->ctx, CL_MEM_READ_WRITE, c_len * 4, NULL, &e);
    if (!bA || !bW || !bC) return fprintf(stderr, "device allocation failed (%d %s)\n", e, cl_err(e)), 1;
    cl_mem bO = clCreateBuffer(D->ctx, CL_MEM_READ_ONLY, sizeof(cl_ulong) * 3 * cells, NULL, &e);
    cl_mem bAb = clCreateBuffer(D->ctx, CL_MEM_READ_WRITE, a_len * 2, NULL, &e); /* bf16 copy of A */
    if (!bO || !bAb) return fprintf(stderr, "device allocation failed (%d %s)\n", e, cl_err(e)), 1;
    int fail = 0;
    double best[MAX_SHAPES] = {0}, best_p[MAX_SHAPES] = {0};
    const char *best_k[MAX_SHAPES], *best_kp[MAX_SHAPES];
    for (int s = 0; s < MAX_SHAPES; s++)
        best_k[s] = best_kp[s] = "";
    printf(
        "bb = armt_gemm_bf16bf16_mma on bf16 A from the armt_f32_to_bf16 pre-pass: its TFLOP/s is the GEMM "
        "alone; 'with pre-pass' adds the pre-pass's median time\n");
    printf("| kernel | shape | cells x m x n x k | median ms | min ms | max ms | TFLOP/s | pre-pass ms | "
           "TFLOP/s "
           "with pre-pass | max rel diff vs portable |\n");
    printf("|---|---|---|---|---|---|---|---|---|---|\n");
    for (int s = 0; s < nshapes; s++) {
        const int n = shapes[s].n, k = shapes[s].k, m = rows;
        cl_ulong tab[3 * 64], strides[6] = {0, 0, 0, 0, 0, 0};
        for (int j = 0; j < cells && j < 64; j++)
            tab[3 * j] = (cl_ulong)j * m * k, tab[3 * j + 1] = (cl_ulong)j * n * k,
                    tab[3 * j + 2] = (cl_ulong)j * m * n;
        clEnqueueWriteBuffer(D->q, bO, CL_TRUE, 0, sizeof(cl_ulong) * 3 * cells, tab, 0, NULL, NULL);
        const double flop = 2.0 * cells * m * (double)n * k;
        int have_ref = 0;
        for (int ki = 0; ki < nk; ki++) {
            kern_t *K = &ks[ki];
            if (!K->kern || K->failed || K->small_only) continue;
            double t[64], tp[64];
            int nt = 0;
            e = set_args(K, m, n, k, K->abf ? bAb : bA, k, bW, bC, n, beta, bO, strides);
            if (beta && e == CL_SUCCESS) { /* every kernel adds reps + 2 products to zeros: comparable sums */
                const float zero = 0.0f;
                e = clEnqueueFillBuffer(D->q, bC, &zero, sizeof zero, 0, (size_t)cells * m * n * 4, 0, NULL,
                                        NULL);
            }
            for (int it = 0; it < reps + 2 && e == CL_SUCCESS; it++) {
                cl_event ev, evp = NULL;
                if (K->abf) {
                    e = launch_prep(D, K, m, k, bA, k, bAb, bO, strides, cells, &evp);
                    if (e != CL_SUCCESS) break;
                }
                e = launch(D, K, m, n, cells, &ev);
                if (e != CL_SUCCESS) break;
                clWaitForEvents(1, &ev);
                cl_ulong a = 0, b = 0, pa = 0, pb = 0;
                clGetEventProfilingInfo(ev, CL_PROFILING_COMMAND_START, sizeof a, &a, NULL);
                clGetEventProfilingInfo(ev, CL_PROFILING_COMMAND_END, sizeof b, &b, NULL);
                clReleaseEvent(ev);
                if (evp) {
                    clGetEventProfilingInfo(evp, CL_PROFILING_COMMAND_START, sizeof pa, &pa, NULL);
                    clGetEventProfilingInfo(evp, CL_PROFILING_COMMAND_END, sizeof pb, &pb, NULL);
                    clReleaseEvent(evp);
                }
                if (it >= 2 && nt < 64) tp[nt] = (double)(pb - pa) * 1e-9, t[nt++] = (double)(b - a) * 1e-9;
            }
            if (e != CL_SUCCESS) {
                printf("| %s | %s | launch failed: %d %s |\n", K->name, shapes[s].name, e, cl_err(e));
                fail = 1;
                continue;
            }
            qsort(t, (size_t)nt, sizeof *t, cmp_d);
            qsort(tp, (size_t)nt, sizeof *tp, cmp_d);
            const double med = nt % 2 ? t[nt / 2] : 0.5 * (t[nt / 2 - 1] + t[nt / 2]);
            const double medp = nt % 2 ? tp[nt / 2] : 0.5 * (tp[nt / 2 - 1] + tp[nt / 2]);
            const size_t clen = (size_t)cells * m * n;
            const int is_ref = !K->mma && !have_ref; /* the first portable tile */
            clEnqueueReadBuffer(D->q, bC, CL_TRUE, 0, clen * 4, is_ref ? hR : hC, 0, NULL, NULL);
            char diff[64] = "(reference)";
            if (is_ref) {
                have_ref = 1;
            } else if (!K->mma) { /* every portable tile sums each element in the same order: same bits */
                size_t nd = 0;
                for (size_t i = 0; i < clen; i++)
                    nd += memcmp(&hC[i], &hR[i], sizeof *hC) != 0;
                snprintf(diff, sizeof diff, "%zu differ%s", nd, nd ? " FAIL" : "");
                if (nd) fail = 1;
            } else if (have_ref) {
                double md = 0, mr = 0;
                for (size_t i = 0; i < clen; i++) {
                    double d = fabs((double)hC[i] - hR[i]);
                    if (!(d == d)) d = INFINITY;
                    if (d > md) md = d;
                    if (fabs(hR[i]) > mr) mr = fabs(hR[i]);
                }
                snprintf(diff, sizeof diff, "%.2e%s", md / mr, md / mr > TOL ? " FAIL" : "");
                if (!(md / mr <= TOL)) fail = 1;
            } else {
                snprintf(diff, sizeof diff, "-");
            }
            char pre[64] = "-", prt[64] = "-";
            const double tf = flop / med * 1e-12, tfp = flop / (med + medp) * 1e-12;
            if (K->abf) snprintf(pre, sizeof pre, "%.3f", medp * 1e3), snprintf(prt, sizeof prt, "%.1f", tfp);
            printf("| %s | %s | %d x %d x %d x %d | %.3f | %.3f | %.3f | %.1f | %s | %s | %s |\n", K->name,
                   shapes[s].name, cells, m, n, k, med * 1e3, t[0] * 1e3, t[nt - 1] * 1e3, tf, pre, prt,
                   diff);
            if (K->mma && tf > best[s]) best[s] = tf, best_k[s] = K->name;
            if (K->mma && (K->abf ? tfp : tf) > best_p[s])
                best_p[s] = K->abf ? tfp : tf, best_kp[s] = K->name;
            fflush(stdout);
        }
    }
    printf("\nbest per shape (TFLOP/s; GEMM alone | counting the pre-pass for bb):\n");
    for (int s = 0; s < nshapes; s++)
        if (best[s] > 0)
            printf("  %-8s %6.1f  %-34s | %6.1f  %s\n", shapes[s].name, best[s], best_k[s], best_p[s],
                   best_kp[s]);
    clReleaseMemObject(bA), clReleaseMemObject(bW), clReleaseMemObject(bC), clReleaseMemObject(bO);
    clReleaseMemObject(bAb);
    free(hA), free(hC), free(hR), free(hW);
    return fail;
}

/* ----------------------------------------------------------------------------------------------------------
 */
/* main */
/* ----------------------------------------------------------------------------------------------------------
 */

/* The RoPE epilogue of the bf16 x bf16 entry (rope, rope_hd, rope_T, rope_pos0: args 20-23), for each head
 * dimension the kernel has that divides the columns a thread holds: C = rope(A W^T) with row r at position
 * pos0 + r % T, checked against fp64 on the bf16 inputs and the same float table (cos then sin of the hd/2
 * frequencies per position, as lib/compute/forward.c fills it); C is poisoned with NaN and every element
 * outside the
 * blocks must keep it. Returns 1 on failure. */
static int rope_check(dev_t_ *D, kern_t *K) {
    static const int hds[4] = {16, 32, 64, 128};
    int fail = 0;
    for (int hi = 0; hi < 4 && !fail; hi++) {
        const int hd = hds[hi];
        if (K->span % hd) continue;
        const int n = 4 * hd, m = 150, k = 48, cnt = 2, lda = 56, ldc = n + 6, T = 70, pos0 = 3;
        const int positions = pos0 + T;
        const size_t a_blk = (size_t)m * lda, c_blk = (size_t)m * ldc, w_blk = (size_t)n * k;
        const cl_ulong strides[6] = {8, a_blk + 16, 0, w_blk, 2, c_blk + 4};
        const size_t a_len = 8 + cnt * (a_blk + 16), w_len = cnt * w_blk, c_len = 2 + cnt * (c_blk + 4);
        uint16_t *A = malloc(a_len * 2), *W = malloc(w_len * 2);
        float *C = malloc(c_len * 4), *tab = malloc((size_t)positions * hd * 4);
        char *mark = calloc(c_len, 1);
        if (!A || !W || !C || !tab || !mark) {
            free(A), free(W), free(C), free(tab), free(mark);
            printf("    %-34s rope: host allocation failed\n", K->name);
            return 1;
        }
        for (size_t i = 0; i < a_len; i++)
            A[i] = 0x7fc0;
        for (size_t i = 0; i < w_len; i++)
            W[i] = f2bf(rng_unif());
        for (size_t i = 0; i < c_len; i++)
            C[i] = NAN;
        for (int j = 0; j < cnt; j++)
            for (int r = 0; r < m; r++)
                for (int q = 0; q < k; q++)
                    A[strides[0] + j * strides[1] + (size_t)r * lda + q] = f2bf(rng_unif());
        for (int p = 0; p < positions; p++)
            for (int i = 0; i < hd / 2; i++) {
                const double f = pow(10000.0, -2.0 * i / hd) * p;
                tab[(size_t)p * hd + i] = (float)cos(f);
                tab[(size_t)p * hd + hd / 2 + i] = (float)sin(f);
            }
        cl_int e;
        cl_mem bA = clCreateBuffer(D->ctx, CL_MEM_READ_ONLY | CL_MEM_COPY_HOST_PTR, a_len * 2, A, &e);
        cl_mem bW = clCreateBuffer(D->ctx, CL_MEM_READ_ONLY | CL_MEM_COPY_HOST_PTR, w_len * 2, W, &e);
        cl_mem bC = clCreateBuffer(D->ctx, CL_MEM_READ_WRITE | CL_MEM_COPY_HOST_PTR, c_len * 4, C, &e);
        cl_mem bT = clCreateBuffer(D->ctx, CL_MEM_READ_ONLY | CL_MEM_COPY_HOST_PTR,
                                   (size_t)positions * hd * 4, tab, &e);
        if (!bA || !bW || !bC || !bT) e = CL_MEM_OBJECT_ALLOCATION_FAILURE;
        if (e == CL_SUCCESS) e = set_args(K, m, n, k, bA, lda, bW, bC, ldc, 0, NULL, strides);
        K->args.rope = bT;
        K->args.rope_hd = hd;
        K->args.rope_t = T;
        K->args.rope_pos0 = pos0;
        if (e == CL_SUCCESS) e = armt_gemm_set_args(K->kern, &K->args);
        if (e == CL_SUCCESS) e = launch(D, K, m, n, cnt, NULL);
        if (e == CL_SUCCESS) e = clEnqueueReadBuffer(D->q, bC, CL_TRUE, 0, c_len * 4, C, 0, NULL, NULL);
        double max_ref = 0, max_err = 0;
        size_t outside = 0;
        if (e != CL_SUCCESS) {
            printf("    %-34s rope hd %d: launch/read failed (%d %s)\n", K->name, hd, e, cl_err(e));
            fail = 1;
        }
        double *prod = malloc((size_t)n * sizeof *prod);
        for (int j = 0; !fail && prod && j < cnt; j++)
            for (int r = 0; r < m; r++) {
                for (int q = 0; q < n; q++) {
                    double acc = 0;
                    for (int t = 0; t < k; t++)
                        acc += bf2f(A[strides[0] + j * strides[1] + (size_t)r * lda + t]) *
                               bf2f(W[j * strides[3] + (size_t)q * k + t]);
                    prod[q] = acc;
                }
                const float *cs = tab + (size_t)(pos0 + r % T) * hd;
                for (int q = 0; q < n; q++) {
                    const int i = q % hd, base = q - i;
                    const double ref = i < hd / 2
                                           ? prod[q] * cs[i] - prod[base + i + hd / 2] * cs[hd / 2 + i]
                                           : prod[q] * cs[i - hd / 2] + prod[base + i - hd / 2] * cs[i];
                    const size_t o = strides[4] + j * strides[5] + (size_t)r * ldc + q;
                    mark[o] = 1;
                    double d = fabs((double)C[o] - ref);
                    if (!(d == d)) d = INFINITY;
                    if (d > max_err) max_err = d;
                    if (fabs(ref) > max_ref) max_ref = fabs(ref);
                }
            }
        for (size_t i = 0; !fail && i < c_len; i++)
            if (!mark[i] && !isnan(C[i])) outside++;
        const double rel = max_ref > 0 ? max_err / max_ref : INFINITY;
        if (!fail && (!(rel <= TOL) || outside || !prod)) fail = 1;
        if (e == CL_SUCCESS)
            printf("    %-34s rope hd %d: %d x %d rows, max rel err %.2e (bound %.0e), %zu written outside: "
                   "%s\n",
                   K->name, hd, cnt, m, rel, TOL, outside, fail ? "FAIL" : "ok");
        free(prod), free(A), free(W), free(C), free(tab), free(mark);
        if (bA) clReleaseMemObject(bA);
        if (bW) clReleaseMemObject(bW);
        if (bC) clReleaseMemObject(bC);
        if (bT) clReleaseMemObject(bT);
    }
    return fail;
}

/* Two weights in one GEMM (the bf16 x bf16 entry with W2), in strided mode with the second weights at
 * w_off(j) + w2_shift in their own buffer. kv = 0, gate and up: Cb (bf16) = silu(A W^T) * (A W2^T) per entry;
 * kv = 1, k and v (Cb2 set): Cb = A W^T and Cb2 = A W2^T, each rounded to bf16. Checked against fp64 on the
 * bf16-rounded inputs (then rounded like the kernel's output: 2^-8 relative per element, plus the fp32
 * accumulation); every element of Cb (and Cb2) outside the blocks must keep its NaN poison. Returns 1 on
 * failure. */
static int dual_check(dev_t_ *D, kern_t *K, int kv) {
    const int m = 300, n = 264, k = 160, cnt = 3, lda = 168, ldc = 270;
    const size_t a_blk = (size_t)m * lda, c_blk = (size_t)m * ldc, w_blk = (size_t)n * k;
    const cl_ulong strides[6] = {8, a_blk + 16, w_blk, w_blk, 6, c_blk + 10};
    const cl_ulong w2_shift = 2 * w_blk; /* the up weights: W2's layers 3 .. 5 where W's are 1 .. 3 */
    const size_t a_len = 8 + cnt * (a_blk + 16), c_len = 6 + cnt * (c_blk + 10) + 8, w_len = 6 * w_blk;
    uint16_t *A = malloc(a_len * 2), *W = malloc(w_len * 2), *W2 = malloc(w_len * 2), *Cb = malloc(c_len * 2);
    uint16_t *Cb2 = malloc(c_len * 2);
    int fail = 0;
    if (!A || !W || !W2 || !Cb || !Cb2)
        return free(A), free(W), free(W2), free(Cb), free(Cb2), fprintf(stderr, "out of memory\n"), 1;
    for (size_t i = 0; i < a_len; i++)
        A[i] = 0x7fc0;
    for (size_t i = 0; i < w_len; i++)
        W[i] = 0x7fc0, W2[i] = 0x7fc0;
    for (size_t i = 0; i < c_len; i++)
        Cb[i] = Cb2[i] = 0x7fc0;
    for (int j = 0; j < cnt; j++) {
        for (int r = 0; r < m; r++)
            for (int q = 0; q < k; q++)
                A[strides[0] + j * strides[1] + (size_t)r * lda + q] = f2bf(rng_unif());
        for (size_t i = 0; i < w_blk; i++) {
            W[strides[2] + j * strides[3] + i] = f2bf(rng_unif());
            W2[strides[2] + j * strides[3] + w2_shift + i] = f2bf(rng_unif());
        }
    }
    cl_int e;
    cl_mem bA = clCreateBuffer(D->ctx, CL_MEM_READ_ONLY | CL_MEM_COPY_HOST_PTR, a_len * 2, A, &e);
    cl_mem bW = clCreateBuffer(D->ctx, CL_MEM_READ_ONLY | CL_MEM_COPY_HOST_PTR, w_len * 2, W, &e);
    cl_mem bW2 = clCreateBuffer(D->ctx, CL_MEM_READ_ONLY | CL_MEM_COPY_HOST_PTR, w_len * 2, W2, &e);
    cl_mem bCb = clCreateBuffer(D->ctx, CL_MEM_READ_WRITE | CL_MEM_COPY_HOST_PTR, c_len * 2, Cb, &e);
    cl_mem bCb2 = clCreateBuffer(D->ctx, CL_MEM_READ_WRITE | CL_MEM_COPY_HOST_PTR, c_len * 2, Cb2, &e);
    cl_mem bC = clCreateBuffer(D->ctx, CL_MEM_READ_WRITE, 16, NULL, &e);
    if (!bA || !bW || !bW2 || !bCb || !bCb2 || !bC) e = CL_MEM_OBJECT_ALLOCATION_FAILURE;
    /* the plain arguments, then the mode's own: Cb, W2, w2_shift, Cb2 (C is not used in these modes) */
    if (e == CL_SUCCESS) e = set_args(K, m, n, k, bA, lda, bW, bC, ldc, 0, NULL, strides);
    cl_kernel kr = K->kern;
    K->args.out = bCb;
    K->args.w2 = bW2;
    K->args.w2_shift = w2_shift;
    K->args.out2 = kv ? bCb2 : NULL;
    if (e == CL_SUCCESS) e = armt_gemm_set_args(kr, &K->args);
    size_t gws[3] = {(size_t)((n + K->bn / 2 - 1) / (K->bn / 2)) * K->threads,
                     (size_t)((m + K->bm - 1) / K->bm), cnt};
    size_t lws[3] = {(size_t)K->threads, 1, 1};
    if (e == CL_SUCCESS) e = clEnqueueNDRangeKernel(D->q, kr, 3, NULL, gws, lws, 0, NULL, NULL);
    if (e == CL_SUCCESS) e = clEnqueueReadBuffer(D->q, bCb, CL_TRUE, 0, c_len * 2, Cb, 0, NULL, NULL);
    if (e == CL_SUCCESS) e = clEnqueueReadBuffer(D->q, bCb2, CL_TRUE, 0, c_len * 2, Cb2, 0, NULL, NULL);
    const char *mode = kv ? "k-and-v (W2, Cb2)" : "gate-and-up (W2)";
    if (e != CL_SUCCESS) {
        printf("    %-34s %s: launch/read failed (%d %s)\n", K->name, mode, e, cl_err(e));
        fail = 1;
    }
    double max_ref = 0, max_err = 0;
    size_t outside = 0, inside = 0;
    char *mark = calloc(c_len, 1);
    for (int j = 0; !fail && mark && j < cnt; j++)
        for (int r = 0; r < m; r++)
            for (int q = 0; q < n; q++) {
                const size_t o = strides[4] + j * strides[5] + (size_t)r * ldc + q;
                mark[o] = 1;
                double g = 0, u = 0;
                for (int t = 0; t < k; t++) {
                    const double a = bf2f(A[strides[0] + j * strides[1] + (size_t)r * lda + t]);
                    g += a * bf2f(W[strides[2] + j * strides[3] + (size_t)q * k + t]);
                    u += a * bf2f(W2[strides[2] + j * strides[3] + w2_shift + (size_t)q * k + t]);
                }
                /* (gate and up: one value into Cb; k and v: g into Cb, u into Cb2) */
                const double ref[2] = {kv ? g : g / (1.0 + exp(-g)) * u, u};
                const double got[2] = {bf2f(Cb[o]), bf2f(Cb2[o])};
                for (int b = 0; b < 1 + kv; b++) {
                    double d = fabs(got[b] - ref[b]);
                    if (!(d == d)) d = INFINITY;
                    if (d > max_err) max_err = d;
                    if (fabs(ref[b]) > max_ref) max_ref = fabs(ref[b]);
                    inside++;
                }
            }
    for (size_t i = 0; !fail && mark && i < c_len; i++) /* (gate and up: Cb2 is not written at all) */
        outside += (!mark[i] && Cb[i] != 0x7fc0) + ((!mark[i] || !kv) && Cb2[i] != 0x7fc0);
    const double rel = max_ref > 0 ? max_err / max_ref : INFINITY;
    if (!fail && (!(rel <= 8e-3) || outside || !mark)) fail = 1;
    if (!fail || e == CL_SUCCESS)
        printf("    %-34s %s: %zu elements, max rel err %.2e (bound 8e-3), %zu written outside: %s\n",
               K->name, mode, inside, rel, outside, fail ? "FAIL" : "ok");
    free(mark), free(A), free(W), free(W2), free(Cb), free(Cb2);
    clReleaseMemObject(bA), clReleaseMemObject(bW), clReleaseMemObject(bW2), clReleaseMemObject(bCb);
    clReleaseMemObject(bCb2), clReleaseMemObject(bC);
    return fail;
}

/* The bf16 output (Cb alone: the attention's K and V): Cb = bf16(A W^T) at C's element offsets, C untouched.
 * Two layouts: C blocks at even offsets with an even ldc (pairs stored as one word) and at odd ones (element
 * by element). Checked against fp64 on the bf16-rounded inputs (2^-8 relative for the output's rounding, plus
 * the fp32 accumulation); C keeps its NaN poison everywhere and Cb outside the blocks. Returns 1 on
 * failure. */
static int bf16out_check(dev_t_ *D, kern_t *K) {
    int fail = 0;
    for (int odd = 0; odd < 2 && !fail; odd++) {
        const int m = 150, n = 264, k = 96, cnt = 2, lda = 104, ldc = odd ? 271 : 270;
        const size_t a_blk = (size_t)m * lda, c_blk = (size_t)m * ldc, w_blk = (size_t)n * k;
        const cl_ulong strides[6] = {8, a_blk + 16, w_blk, w_blk, odd ? 5 : 6, c_blk + 10};
        const size_t a_len = 8 + cnt * (a_blk + 16), c_len = 6 + cnt * (c_blk + 10) + 8, w_len = 3 * w_blk;
        uint16_t *A = malloc(a_len * 2), *W = malloc(w_len * 2), *Cb = malloc(c_len * 2);
        float *C = malloc(c_len * 4);
        char *mark = calloc(c_len, 1);
        if (!A || !W || !Cb || !C || !mark) {
            free(A), free(W), free(Cb), free(C), free(mark);
            fprintf(stderr, "out of memory\n");
            return 1;
        }
        for (size_t i = 0; i < a_len; i++)
            A[i] = 0x7fc0;
        for (size_t i = 0; i < w_len; i++)
            W[i] = 0x7fc0;
        for (size_t i = 0; i < c_len; i++)
            Cb[i] = 0x7fc0, C[i] = NAN;
        for (int j = 0; j < cnt; j++) {
            for (int r = 0; r < m; r++)
                for (int q = 0; q < k; q++)
                    A[strides[0] + j * strides[1] + (size_t)r * lda + q] = f2bf(rng_unif());
            for (size_t i = 0; i < w_blk; i++)
                W[strides[2] + j * strides[3] + i] = f2bf(rng_unif());
        }
        cl_int e;
        cl_mem bA = clCreateBuffer(D->ctx, CL_MEM_READ_ONLY | CL_MEM_COPY_HOST_PTR, a_len * 2, A, &e);
        cl_mem bW = clCreateBuffer(D->ctx, CL_MEM_READ_ONLY | CL_MEM_COPY_HOST_PTR, w_len * 2, W, &e);
        cl_mem bCb = clCreateBuffer(D->ctx, CL_MEM_READ_WRITE | CL_MEM_COPY_HOST_PTR, c_len * 2, Cb, &e);
        cl_mem bC = clCreateBuffer(D->ctx, CL_MEM_READ_WRITE | CL_MEM_COPY_HOST_PTR, c_len * 4, C, &e);
        if (!bA || !bW || !bCb || !bC) e = CL_MEM_OBJECT_ALLOCATION_FAILURE;
        if (e == CL_SUCCESS) e = set_args(K, m, n, k, bA, lda, bW, bC, ldc, 0, NULL, strides);
        K->args.out = bCb;
        if (e == CL_SUCCESS) e = armt_gemm_set_args(K->kern, &K->args);
        if (e == CL_SUCCESS) e = launch(D, K, m, n, cnt, NULL);
        if (e == CL_SUCCESS) e = clEnqueueReadBuffer(D->q, bCb, CL_TRUE, 0, c_len * 2, Cb, 0, NULL, NULL);
        if (e == CL_SUCCESS) e = clEnqueueReadBuffer(D->q, bC, CL_TRUE, 0, c_len * 4, C, 0, NULL, NULL);
        double max_ref = 0, max_err = 0;
        size_t outside = 0, c_written = 0;
        for (int j = 0; e == CL_SUCCESS && j < cnt; j++)
            for (int r = 0; r < m; r++)
                for (int q = 0; q < n; q++) {
                    const size_t o = strides[4] + j * strides[5] + (size_t)r * ldc + q;
                    mark[o] = 1;
                    double ref = 0;
                    for (int t = 0; t < k; t++)
                        ref += bf2f(A[strides[0] + j * strides[1] + (size_t)r * lda + t]) *
                               bf2f(W[strides[2] + j * strides[3] + (size_t)q * k + t]);
                    double d = fabs(bf2f(Cb[o]) - ref);
                    if (!(d == d)) d = INFINITY;
                    if (d > max_err) max_err = d;
                    if (fabs(ref) > max_ref) max_ref = fabs(ref);
                }
        for (size_t i = 0; e == CL_SUCCESS && i < c_len; i++) {
            if (!mark[i] && Cb[i] != 0x7fc0) outside++;
            if (!isnan(C[i])) c_written++;
        }
        const double rel = max_ref > 0 ? max_err / max_ref : INFINITY;
        fail = e != CL_SUCCESS || !(rel <= 8e-3) || outside || c_written;
        printf("    %-34s bf16 output (%s offsets): max rel err %.2e (bound 8e-3), %zu written outside, "
               "%zu of C written%s%s: %s\n",
               K->name, odd ? "odd" : "even", rel, outside, c_written,
               e == CL_SUCCESS ? "" : ", launch/read failed ", e == CL_SUCCESS ? "" : cl_err(e),
               fail ? "FAIL" : "ok");
        free(A), free(W), free(Cb), free(C), free(mark);
        if (bA) clReleaseMemObject(bA);
        if (bW) clReleaseMemObject(bW);
        if (bCb) clReleaseMemObject(bCb);
        if (bC) clReleaseMemObject(bC);
    }
    return fail;
}

static int list_devices(void) {
    cl_uint np = 0;
    cl_platform_id ps[16];
    cl_int e = clGetPlatformIDs(16, ps, &np);
    if (e != CL_SUCCESS || np == 0) return printf("no OpenCL platform (%d %s)\n", e, cl_err(e)), 77;
    for (cl_uint p = 0; p < np; p++) {
        char name[256] = "";
        clGetPlatformInfo(ps[p], CL_PLATFORM_NAME, sizeof name, name, NULL);
        printf("platform %u: %s\n", p, name);
        cl_uint nd = 0;
        cl_device_id ds[16];
        if (clGetDeviceIDs(ps[p], CL_DEVICE_TYPE_ALL, 16, ds, &nd) != CL_SUCCESS) continue;
        for (cl_uint d = 0; d < nd; d++) {
            char dn[256] = "", dv[128] = "";
            clGetDeviceInfo(ds[d], CL_DEVICE_NAME, sizeof dn, dn, NULL);
            clGetDeviceInfo(ds[d], CL_DRIVER_VERSION, sizeof dv, dv, NULL);
            printf("  device %u: %s (driver %s)\n", d, dn, dv);
        }
    }
    return 0;
}

/* --platform/--device given: those; otherwise the first GPU of any platform, else the first device */
static int open_device(dev_t_ *D, int pi, int di) {
    cl_uint np = 0;
    cl_platform_id ps[16];
    cl_int e = clGetPlatformIDs(16, ps, &np);
    if (e != CL_SUCCESS || np == 0) return fprintf(stderr, "no OpenCL platform (%d %s)\n", e, cl_err(e)), 77;
    int found = 0;
    for (cl_uint p = 0; p < np && !found; p++) {
        if (pi >= 0 && (cl_uint)pi != p) continue;
        cl_uint nd = 0;
        cl_device_id ds[16];
        if (clGetDeviceIDs(ps[p], CL_DEVICE_TYPE_ALL, 16, ds, &nd) != CL_SUCCESS) continue;
        for (cl_uint d = 0; d < nd && !found; d++) {
            cl_device_type t;
            clGetDeviceInfo(ds[d], CL_DEVICE_TYPE, sizeof t, &t, NULL);
            if ((di >= 0 && (cl_uint)di == d) || (di < 0 && pi >= 0 && d == 0) ||
                (di < 0 && pi < 0 && (t & CL_DEVICE_TYPE_GPU)))
                D->platform = ps[p], D->device = ds[d], found = 1;
        }
    }
    if (!found && pi < 0 && di < 0) { /* no GPU: first device anywhere */
        for (cl_uint p = 0; p < np && !found; p++) {
            cl_uint nd = 0;
            cl_device_id ds[16];
            if (clGetDeviceIDs(ps[p], CL_DEVICE_TYPE_ALL, 16, ds, &nd) == CL_SUCCESS && nd)
                D->platform = ps[p], D->device = ds[0], found = 1;
        }
    }
    if (!found) return fprintf(stderr, "no such OpenCL device (platform %d device %d)\n", pi, di), 77;
    D->ctx = clCreateContext(NULL, 1, &D->device, NULL, NULL, &e);
    if (e != CL_SUCCESS) return fprintf(stderr, "clCreateContext: %d %s\n", e, cl_err(e)), 1;
    D->q = clCreateCommandQueue(D->ctx, D->device, CL_QUEUE_PROFILING_ENABLE, &e);
    if (e != CL_SUCCESS) return fprintf(stderr, "clCreateCommandQueue: %d %s\n", e, cl_err(e)), 1;
    clGetDeviceInfo(D->device, CL_DEVICE_MAX_MEM_ALLOC_SIZE, sizeof D->max_alloc, &D->max_alloc, NULL);
    size_t n = 0;
    clGetDeviceInfo(D->device, CL_DEVICE_EXTENSIONS, 0, NULL, &n);
    char *ext = malloc(n + 1);
    clGetDeviceInfo(D->device, CL_DEVICE_EXTENSIONS, n, ext, NULL);
    ext[n] = 0;
    if (strstr(ext, "cl_nv_device_attribute_query")) {
        cl_uint ma = 0, mi = 0;
        if (clGetDeviceInfo(D->device, CL_DEVICE_COMPUTE_CAPABILITY_MAJOR_NV, sizeof ma, &ma, NULL) ==
                CL_SUCCESS &&
            clGetDeviceInfo(D->device, CL_DEVICE_COMPUTE_CAPABILITY_MINOR_NV, sizeof mi, &mi, NULL) ==
                CL_SUCCESS)
            D->nv_cc = (int)(10 * ma + mi);
    }
    free(ext);
    char dn[256] = "", dv[128] = "", pn[256] = "", cv[128] = "";
    clGetDeviceInfo(D->device, CL_DEVICE_NAME, sizeof dn, dn, NULL);
    clGetDeviceInfo(D->device, CL_DRIVER_VERSION, sizeof dv, dv, NULL);
    clGetDeviceInfo(D->device, CL_DEVICE_OPENCL_C_VERSION, sizeof cv, cv, NULL);
    clGetPlatformInfo(D->platform, CL_PLATFORM_NAME, sizeof pn, pn, NULL);
    printf("device: %s | platform: %s | driver %s | %s | NV compute capability: %s%d.%d\n", dn, pn, dv, cv,
           D->nv_cc ? "" : "none ", D->nv_cc / 10, D->nv_cc % 10);
    return 0;
}

static void usage(void) {
    printf(
        "usage: gemm_bf16_test [--kernel-dir DIR] [--platform N] [--device N] [--list] [--bench] [--big]\n"
        "                      [--emulate] [--no-emulate] [--mma-tiles [b]BMxBNxBK:WMxWN[FLAGS][,...]] "
        "[--cells N]\n"
        "                      [--rows N]"
        " [--reps 1..60] [--beta 0|1] [--opts \"-D...\"] [--seed N] [--shapes NAME:NxK[,...]]\n"
        "  tile FLAGS: sN stages, rN register cap, wN wgmma n (64/128/256), gN local memory KiB,\n"
        "  mN row tiles first in launch order (MMA_RASTER; the library's Hopper tiles: m1)\n"
        "  --portable-tiles TMxTN:RMxRN[,...]  the portable kernel's tiles (default "
        "64x64:4x4,128x64:8x4,128x128:8x8;\n"
        "  RM and RN multiples of 4); the first is the others' reference in --bench (same bits expected)\n");
}

int main(int argc, char **argv) {
    const char *dir = "cl", *extra = "";
    int pi = -1, di = -1, do_bench = 0, big = 0, emulate = -1, cells = 16, rows = 1152, reps = 10, beta = 0;
    const char *tiles = "128x128x32:2x2,128x256x32:2x4s2,b128x128x32:2x2,b128x128x32:2x4";
    const char *ptiles = "64x64:4x4,128x64:8x4,128x128:8x8";
    bshape shapes[MAX_SHAPES] = {
        {"q/o", 2048, 2048}, {"k/v", 512, 2048}, {"gate/up", 8192, 2048}, {"down", 2048, 8192}};
    int nshapes = 4;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "--kernel-dir") && v)
            dir = v, i++;
        else if (!strcmp(a, "--platform") && v)
            pi = atoi(v), i++;
        else if (!strcmp(a, "--device") && v)
            di = atoi(v), i++;
        else if (!strcmp(a, "--help") || !strcmp(a, "-h"))
            return usage(), 0;
        else if (!strcmp(a, "--list"))
            return list_devices();
        else if (!strcmp(a, "--bench"))
            do_bench = 1;
        else if (!strcmp(a, "--big"))
            big = 1;
        else if (!strcmp(a, "--emulate"))
            emulate = 1;
        else if (!strcmp(a, "--no-emulate"))
            emulate = 0;
        else if (!strcmp(a, "--cells") && v)
            cells = atoi(v), i++;
        else if (!strcmp(a, "--rows") && v)
            rows = atoi(v), i++;
        else if (!strcmp(a, "--reps") && v)
            reps = atoi(v), i++;
        else if (!strcmp(a, "--beta") && v && (!strcmp(v, "0") || !strcmp(v, "1")))
            beta = atoi(v), i++;
        else if (!strcmp(a, "--opts") && v)
            extra = v, i++;
        else if (!strcmp(a, "--seed") && v)
            rng_state ^= strtoull(v, NULL, 0) * 0x9e3779b97f4a7c15ull, i++;
        else if (!strcmp(a, "--verbose"))
            g_verbose = 1;
        else if (!strcmp(a, "--mma-tiles") && v)
            tiles = v, i++;
        else if (!strcmp(a, "--portable-tiles") && v)
            ptiles = v, i++;
        else if (!strcmp(a, "--shapes") && v) {
            if (!(nshapes = parse_shapes(v, shapes))) return usage(), 2;
            i++;
        } else
            return usage(), 2;
    }
    if (cells < 1 || cells > 64 || reps < 1 || reps > 60 || rows < 1) return usage(), 2;

    /* the library's file lists (lib/device/programs.c): the portable program, and with the tensor-core
     * files */
    static const char *const portable_files[] = {"common.cl", "gemm_args.h", "gemm_bf16.cl"};
    static const char *const mma_files[] = {
        "common.cl",          "mma.cl",           "gemm_args.h",          "gemm_bf16.cl",
        "gemm_mma_params.cl", "gemm_mma_warp.cl", "gemm_mma_epilogue.cl", "gemm_mma.cl",
        "gemm_mma_entries.cl"};
    g_source = read_files(dir, portable_files, sizeof portable_files / sizeof *portable_files, &g_source_len);
    g_source_mma = read_files(dir, mma_files, sizeof mma_files / sizeof *mma_files, &g_source_mma_len);
    if (!g_source || !g_source_mma) return fprintf(stderr, "cannot read the kernel sources in %s\n", dir), 2;

    dev_t_ D = {0};
    int rc = open_device(&D, pi, di);
    if (rc) return rc;
    const int nv_mma = D.nv_cc >= 80;
    if (emulate < 0) emulate = 0; /* opt-in: PoCL needs ~75 s to JIT the emulated kernel */

    /* kernels: portable + 4 mma variants (real on NVIDIA sm_80+, emulated elsewhere when asked) */
    kern_t ks[24];
    int nk = 0, fail = 0;
    memset(ks, 0, sizeof ks);
    char opts[1024];
    for (const char *tp = ptiles; *tp && nk < 8;) {
        kern_t *K = &ks[nk];
        int used = 0;
        if (sscanf(tp, "%dx%d:%dx%d%n", &K->tm, &K->tn, &K->rm, &K->rn, &used) != 4 || K->tm < 1 ||
            K->tn < 1 || K->rm < 1 || K->rn < 1 || K->tm % K->rm || K->tn % K->rn) {
            fprintf(stderr, "bad --portable-tiles entry at \"%s\" (want TMxTN:RMxRN)\n", tp);
            return 2;
        }
        tp += used;
        if (*tp == ',') tp++;
        snprintf(K->name, sizeof K->name, "portable %dx%d:%dx%d", K->tm, K->tn, K->rm, K->rn);
        snprintf(opts, sizeof opts, "-DGEMM_TM=%d -DGEMM_TN=%d -DGEMM_RM=%d -DGEMM_RN=%d %s", K->tm, K->tn,
                 K->rm, K->rn, extra);
        if (build_kernel(&D, K, "armt_gemm_bf16", opts)) K->failed = 1, fail = 1;
        cl_ulong need = 0, have = 0; /* a tile the device's local memory cannot hold is left out (the library
                                      * picks its tile by the same measure, lib/device/tune.c) */
        if (K->kern &&
            !clGetKernelWorkGroupInfo(K->kern, D.device, CL_KERNEL_LOCAL_MEM_SIZE, sizeof need, &need,
                                      NULL) &&
            !clGetDeviceInfo(D.device, CL_DEVICE_LOCAL_MEM_SIZE, sizeof have, &have, NULL) && need > have) {
            printf("  %s left out: %llu bytes of local memory, the device has %llu\n", K->name,
                   (unsigned long long)need, (unsigned long long)have);
            clReleaseKernel(K->kern), clReleaseProgram(K->prog);
            memset(K, 0, sizeof *K);
            continue;
        }
        nk++;
    }
    if (nv_mma || emulate) {
        /* --mma-tiles entries: see the header. rN (-cl-nv-maxrregcount=N) is NVIDIA only; the 2026-11-28 H200
         * run suggests the driver ignored it where the kernel wanted more registers. */
        const char *tp = tiles;
        while (*tp && nk < 24) {
            int bm, bn, bk, wm, wn, used = 0, abf = 0, st = 0, rr = 0, wg = 0, smem_kib = 0, raster = 0;
            if (*tp == 'b') abf = 1, tp++;
            if (sscanf(tp, "%dx%dx%d:%dx%d%n", &bm, &bn, &bk, &wm, &wn, &used) != 5) {
                fprintf(stderr,
                        "bad --mma-tiles entry at \"%s\" (want [b]BMxBNxBK:WMxWN[sN][rN][wN][gN][mN])\n", tp);
                return 2;
            }
            tp += used;
            char flags[32] = "";
            for (int fl = 0; *tp && *tp != ',';) {
                char f = *tp++;
                int v = (int)strtol(tp, (char **)&tp, 10);
                if (f == 's')
                    st = v;
                else if (f == 'r')
                    rr = v;
                else if (f == 'w')
                    wg = v;
                else if (f == 'g')
                    smem_kib = v;
                else if (f == 'm')
                    raster = v;
                else
                    return fprintf(stderr, "bad --mma-tiles flag '%c'\n", f), 2;
                fl += snprintf(flags + fl, sizeof flags - (size_t)fl, "%c%d", f, v);
            }
            if (*tp == ',') tp++;
            kern_t *K = &ks[nk++];
            K->mma = 1, K->abf = abf, K->bm = bm, K->bn = bn, K->threads = 32 * wm * wn,
            K->small_only = !nv_mma;
            K->wgmma = wg != 0;
            K->dual = wg && abf && bn == 256;
            K->span = wg ? bn : bn / wn;
            snprintf(K->name, sizeof K->name, "%s%s %dx%dx%d:%dx%d%s", abf ? "bb" : "mma",
                     nv_mma ? "" : "-emu", bm, bn, bk, wm, wn, flags);
            char sopt[256] = "";
            if (st) snprintf(sopt, sizeof sopt, " -DMMA_STAGES=%d", st);
            if (wg) /* Hopper wgmma, m64 x wg x k16 per instruction (one warpgroup: 2x2 warps) */
                snprintf(sopt + strlen(sopt), sizeof sopt - strlen(sopt), " -DMMA_WGMMA=1 -DMMA_WG_N=%d", wg);
            if (smem_kib) /* static local memory over OpenCL's reported 48 KiB (bench/nv_probe) */
                snprintf(sopt + strlen(sopt), sizeof sopt - strlen(sopt), " -DMMA_SMEM_MAX=%d",
                         smem_kib * 1024);
            if (raster) /* row tiles first in launch order (the library's Hopper tiles) */
                snprintf(sopt + strlen(sopt), sizeof sopt - strlen(sopt), " -DMMA_RASTER=%d", raster);
            if (rr && nv_mma) /* register cap (NVIDIA only), e.g. 128 for 2 work-groups of 256 per SM */
                snprintf(sopt + strlen(sopt), sizeof sopt - strlen(sopt), " -cl-nv-maxrregcount=%d", rr);
            snprintf(opts, sizeof opts,
                     "%s -DMMA_BM=%d -DMMA_BN=%d -DMMA_BK=%d -DMMA_WARPS_M=%d -DMMA_WARPS_N=%d%s%s %s",
                     nv_mma ? "-DARMT_NV_MMA=1" : "-DARMT_MMA_EMULATE=1", bm, bn, bk, wm, wn, sopt,
                     nv_mma ? " -cl-nv-verbose" : "", extra);
            if (build_kernel(&D, K, abf ? "armt_gemm_bf16bf16_mma" : "armt_gemm_bf16_mma", opts))
                K->failed = 1, fail = 1;
        }
    } else {
        printf("  mma kernel: not built (needs cl_nv_device_attribute_query with compute capability >= 8.0; "
               "--emulate builds the emulated version)\n");
    }

    /* correctness cases */
    case_t cases[] = {
        /*  m     n     k   cnt  lda   ldc beta table sample big */
        {100, 72, 48, 3, 56, 75, 0, 1, 0, 0},
        {100, 72, 48, 3, 48, 72, 1, 1, 0, 0},
        {67, 136, 80, 2, 84, 139, 0, 0, 0, 0},
        {5, 3, 8, 1, 8, 3, 1, 1, 0, 0},
        {1, 1, 16, 2, 16, 1, 0, 0, 0, 0},
        {300, 264, 160, 3, 168, 270, 1, 1, 0, 0},
        {129, 200, 72, 3, 76, 203, 0, 0, 0, 0},
        {70, 45, 37, 2, 41, 47, 1, 1, 0, 0},    /* odd k and lda: the portable kernel's element loads */
        {131, 130, 40, 2, 44, 130, 0, 0, 0, 0}, /* a partial k tile, one row and two columns past 128 */
        {1152 + 37, 8192 + 8, 2048 + 16, 3, 2048 + 16, 8192 + 8, 0, 1, 1, 1},
        {1152 + 37, 2048 + 40, 2048 + 16, 3, 2048 + 24, 2048 + 41, 1, 0, 1, 1},
    };
    const int run_big = big || D.nv_cc > 0;
    printf("\n## correctness (relative error bound %.0e; fp64 reference on bf16-rounded inputs)\n", TOL);
    for (size_t ci = 0; ci < sizeof cases / sizeof *cases; ci++) {
        const case_t *c = &cases[ci];
        if (c->big && !run_big) continue;
        printf("  case m=%d n=%d k=%d count=%d lda=%d ldc=%d beta=%d %s", c->m, c->n, c->k, c->count, c->lda,
               c->ldc, c->beta, c->table ? "offsets table" : "strided (offs = NULL)");
        if (g_verbose) printf("\n");
        g_line_open = !g_verbose;
        case_data cd;
        if (case_prepare(&D, &cd, c)) {
            fail = 1;
            case_free(&cd);
            continue;
        }
        g_case_rel = 0, g_case_ok = 0, g_case_skip = 0;
        /* multi-entry cases of 2+ tiles of rows run again with rows of the last entry not needed: from
         * row 128 (a tile boundary for 64 and 128 rows) or from inside the last tile (300 - 7) */
        const int last_row0 = c->count < 2 || c->m < 129 || c->big ? 0 : c->m >= 256 ? c->m - 7 : 128;
        for (int pass = 0; pass < (last_row0 ? 2 : 1); pass++)
            for (int ki = 0; ki < nk; ki++) {
                kern_t *K = &ks[ki];
                if (K->failed || (K->small_only && c->big)) continue;
                if (case_check(&D, K, &cd, pass ? last_row0 : 0) == 1) fail = 1;
                fflush(stdout);
            }
        if (last_row0) printf(" (and with last_row0 %d)", last_row0);
        printf("%s-> %d ok (max rel_err %.1e)", g_line_open ? ": " : "    ", g_case_ok, g_case_rel);
        if (g_case_skip) printf(", %d skipped (alignment)", g_case_skip);
        printf("\n");
        case_free(&cd);
    }
    for (int ki = 0; ki < nk; ki++)
        if (ks[ki].dual && !ks[ki].failed && (dual_check(&D, &ks[ki], 0) | dual_check(&D, &ks[ki], 1)))
            fail = 1;
    for (int ki = 0; ki < nk; ki++)
        if (ks[ki].abf && !ks[ki].failed && rope_check(&D, &ks[ki])) fail = 1;
    for (int ki = 0; ki < nk; ki++)
        if (ks[ki].abf && !ks[ki].failed && bf16out_check(&D, &ks[ki])) fail = 1;
    printf("correctness: %s\n", fail ? "FAILED" : "all passed");

    if (do_bench && bench(&D, ks, nk, cells, rows, reps, beta, shapes, nshapes)) fail = 1;

    for (int ki = 0; ki < nk; ki++) {
        if (ks[ki].kern) clReleaseKernel(ks[ki].kern);
        if (ks[ki].prog) clReleaseProgram(ks[ki].prog);
    }
    clReleaseCommandQueue(D.q);
    clReleaseContext(D.ctx);
    free(g_source), free(g_source_mma);
    return fail ? 1 : 0;
}
