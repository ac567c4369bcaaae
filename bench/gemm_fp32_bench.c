/*
 * gemm_fp32_bench.c - the fp32 GEMMs of an fp32 model through the library's GEMM door (armt_gemm): CLBlast
 * against the 3xTF32 tensor-core kernel (cl/gemm_tf32.cl) on the GEMM sites of LLaMA-3.2-1B ARMT, timed and
 * checked against an fp64 reference on the same data.
 *
 *   gemm_fp32_bench [--platform P] [--device D] [--cells 16] [--rows 1152] [--mem 128] [--reps 10]
 *                   [--sites wq,wkv,...] [--paths clblast,tf32x3,...] [--tiles BMxBNxBK:WMxWN:S]
 *                   [--emulate] [--cap-m N] [--cap-n N] [--cap-k N] [--cap-count N] [--check-rows 8] [--seed N]
 *
 * Sites (G = --cells cells of T = --rows rows, M = --mem memory rows; d 2048, ffn 8192, kv 512, d_mem 64,
 * d_key 384, vocabulary 128256; every op as lib/compute/step.c lays it out):
 *   wq     T x 2048 x 2048   (q and o without the residual)   wkv    T x 512 x 2048  (k, v)
 *   wo     T x 2048 x 2048, C += (residual stream: a ring of slots, one wrap)
 *   wgu    T x 8192 x 2048   (gate, up)                       wd     T x 2048 x 8192, C += (ring)
 *   wmq    T x 64 x 2048     (W_mq, W_mk)                     wmv    M x 2048 x 2048 (memory rows)
 *   read   T x 2048 x 384, W k x n (phi(q) W_mem)             prev   M x 2048 x 384, W k x n (phi(k) W_mem)
 *   update 384 x 2048 x M, A and W k-major, C += (W_mem += phi(k)^T delta)
 *   lmhead 1024 x 128256 x 2048, one entry (logits)
 * Paths: clblast (a runtime with fp32_gemm = CLBLAST), tf32x3 (fp32_gemm = TF32X3: the library's kernels and
 * tiles, wgmma's (cl/gemm_tf32_wg.cl) where the device has it), mma (the same with wgmma off: cl/gemm_tf32.cl
 * alone), and variants of the mma.sync program built with extra options in place of its kernel:
 * tf32x1 (TF32_PRODUCTS=1: a_hi b_hi alone, plain TF32), o0 .. o3 (TF32_ORDER: where the split's small
 * products are added; cl/gemm_tf32.cl), kp (TF_KPAIR=1: each lane's k pair as one 8-byte local load) and
 * kpo3 (both TF_KPAIR=1 and TF32_ORDER=3). --tiles replaces the library's 3xTF32 tiles (e.g. 128x128x16:2x4:3),
 * for every tf32 path; --wg-tiles 2x128:3 the wgmma kernel's (warpgroups along m, n, stages). --emulate runs the tensor-core paths on mma.cl's OpenCL C stand-ins (any device; slow:
 * use --cap-m 128 --cap-n 64 --cap-count 2 --reps 1, which keep every k; caps in multiples of 4, since the
 * update's A^T has rows m wide and the kernel needs 16-byte aligned rows). The "kernel" column says which
 * ran: an op the kernel cannot take goes to CLBlast on every path. --cap-k too (quick checks, e.g. under
 * Oclgrind) changes what the errors say: k sets them.
 *
 * Each (site, path): one warm-up call (CLBlast compiles its routine there), then --reps calls, each waited for
 * (clFinish) and timed on the monotonic clock; the median is reported with TFLOP/s = 2 m n k count / time.
 * Accuracy: the result of the last call on --check-rows rows of the first and last entries (every column),
 * against fp64: "max rel" = max |c - ref| / max |ref|, "rms rel" = sqrt(sum (c - ref)^2 / sum ref^2) (the
 * steadier of the two: a maximum over some 10^4 elements moves by 30% from one draw to the next), "comp" =
 * max |c - ref| / (beta |c0| + sum_k |a w|) (the scale of the classical bound, about k 2^-24 for an fp32
 * GEMM's worst case). Inputs are uniform in [-1, 1] (W scaled by 0.02, C0 by 1), random in every mantissa
 * bit.
 *
 * Output: a Markdown table, then per site the 3xTF32 time and error over CLBlast's. Exit 0, 1 on a failure,
 * 2 on usage.
 */
#include "config.h"

#include "armt.h"
#include "compute/gemm.h"
#include "common/util.h"
#include "device/internal.h"

#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ======================================================================================================= */
/* Sites and paths                                                                                         */
/* ======================================================================================================= */

enum { T_ROWS = -1, M_ROWS = -2 }; /* m given by --rows or --mem */

typedef struct site {
    const char *name;
    int m, n, k; /* T_ROWS, M_ROWS or a size; k = M_ROWS: the memory rows */
    int trans_a, w_kn, beta, ring, one_entry;
} site;

static const site sites[] = {
    {"wq", T_ROWS, 2048, 2048, 0, 0, 0, 0, 0},     {"wkv", T_ROWS, 512, 2048, 0, 0, 0, 0, 0},
    {"wo", T_ROWS, 2048, 2048, 0, 0, 1, 1, 0},     {"wgu", T_ROWS, 8192, 2048, 0, 0, 0, 0, 0},
    {"wd", T_ROWS, 2048, 8192, 0, 0, 1, 1, 0},     {"wmq", T_ROWS, 64, 2048, 0, 0, 0, 0, 0},
    {"wmv", M_ROWS, 2048, 2048, 0, 0, 0, 0, 0},    {"read", T_ROWS, 2048, 384, 0, 1, 0, 0, 0},
    {"prev", M_ROWS, 2048, 384, 0, 1, 0, 0, 0},    {"update", 384, 2048, M_ROWS, 1, 1, 1, 0, 0},
    {"lmhead", 1024, 128256, 2048, 0, 0, 0, 0, 1},
};
#define N_SITES (sizeof sites / sizeof sites[0])

enum {
    RT_CLBLAST,
    RT_TF32,
    RT_MMA,
    RT_COUNT
}; /* the runtimes: CLBlast; 3xTF32 (wgmma where the device has
                                                it); 3xTF32 with wgmma off (the mma.sync kernel alone) */
typedef struct path {
    const char *name;
    int rt;            /* RT_* */
    const char *extra; /* options of a variant 3xTF32 build (NULL: the library's kernel) */
} path;

static const path paths[] = {
    {"clblast", RT_CLBLAST, NULL},
    {"tf32x3", RT_TF32, NULL},
    {"mma", RT_MMA, NULL},
    {"tf32x1", RT_MMA, "-DTF32_PRODUCTS=1"},
    {"o0", RT_MMA, "-DTF32_ORDER=0"},
    {"o1", RT_MMA, "-DTF32_ORDER=1"},
    {"o2", RT_MMA, "-DTF32_ORDER=2"},
    {"o3", RT_MMA, "-DTF32_ORDER=3"},
    {"kp", RT_MMA, "-DTF_KPAIR=1"},
    {"kpo3", RT_MMA, "-DTF_KPAIR=1 -DTF32_ORDER=3"},
};
#define N_PATHS (sizeof paths / sizeof paths[0])

typedef struct opts {
    const char *platform, *device;
    int cells, rows, mem, reps, check_rows, emulate;
    long cap_m, cap_n, cap_k, cap_count;
    uint64_t seed;
    int site_on[N_SITES], path_on[N_PATHS];
    int tiles[6];    /* bm, bn, bk, warps_m, warps_n, stages; 0: the library's */
    int wg_tiles[3]; /* the wgmma kernel's warpgroups along m, n, stages; 0: the library's */
} opts;

/* ======================================================================================================= */
/* Host data and the reference                                                                             */
/* ======================================================================================================= */

typedef struct shape {
    size_t m, n, k, count, lda, ldw, ldc;
    size_t a_off[64], w_off[64], c_off[64];
    size_t na, nw, nc;
    int trans_a, w_kn, beta;
} shape;

static float urand(uint64_t *s) {
    *s = *s * 6364136223846793005ull + 1442695040888963407ull;
    return (float)((double)(*s >> 11) * 0x1.0p-53 * 2.0 - 1.0);
}

static size_t capped(long v, long cap) { return (size_t)(cap > 0 && v > cap ? cap : v); }

static void shape_of(const site *s, const opts *o, shape *sh) {
    const long T = o->rows, M = o->mem;
    const long m = s->m == T_ROWS ? T : s->m == M_ROWS ? M : s->m, k = s->k == M_ROWS ? M : s->k;
    memset(sh, 0, sizeof *sh);
    sh->m = capped(m, o->cap_m);
    sh->n = capped(s->n, o->cap_n);
    sh->k = capped(k, o->cap_k);
    sh->count = s->one_entry ? 1 : capped(o->cells, o->cap_count);
    sh->trans_a = s->trans_a, sh->w_kn = s->w_kn, sh->beta = s->beta;
    /* the model's layouts: rows of A (or of A^T) k (m) wide, W n x k (or k x n), C's rows n wide */
    sh->lda = sh->trans_a ? sh->m : sh->k;
    sh->ldw = sh->w_kn ? sh->n : sh->k;
    sh->ldc = sh->n;
    const size_t asz = sh->m * sh->k, wsz = sh->n * sh->k, csz = sh->m * sh->n, cnt = sh->count;
    /* C: the residual stream's ring of count + 2 slots, entry j in slot (s0 - j) mod cap with s0 in the
     * middle (one wrap: two runs of constant steps); else consecutive blocks */
    const size_t cap = cnt + 2, s0 = cnt / 2;
    for (size_t j = 0; j < cnt; j++) {
        sh->a_off[j] = j * asz;
        sh->w_off[j] = j * wsz;
        sh->c_off[j] = (s->ring ? (s0 + cap - j) % cap : j) * csz;
    }
    sh->na = cnt * asz;
    sh->nw = cnt * wsz;
    sh->nc = (s->ring ? cap : cnt) * csz;
}

static float elem_a(const shape *sh, const float *a, size_t j, size_t r, size_t kk) {
    return a[sh->a_off[j] + (sh->trans_a ? kk * sh->lda + r : r * sh->lda + kk)];
}
static float elem_w(const shape *sh, const float *w, size_t j, size_t c, size_t kk) {
    return w[sh->w_off[j] + (sh->w_kn ? kk * sh->ldw + c : c * sh->ldw + kk)];
}

/* The checked rows of entry j: rows 0 .. R/2 - 1 and the last R - R/2 (all when m <= R). */
static size_t checked_row(const shape *sh, size_t R, size_t i) {
    if (sh->m <= R) return i;
    return i < R / 2 ? i : sh->m - (R - i);
}

/* fp64 reference and bound scale of the checked elements (first and last entry, R rows each, every column) */
static void reference(const shape *sh, const float *a, const float *w, const float *c0, size_t R, double *ref,
                      double *bound) {
    const size_t rows = sh->m < R ? sh->m : R, ents = sh->count > 1 ? 2 : 1;
    double *wcol = malloc(sh->k * sizeof *wcol), *arow = malloc(sh->k * sizeof *arow);
    size_t o = 0;
    for (size_t e = 0; e < ents; e++) {
        const size_t j = e ? sh->count - 1 : 0;
        for (size_t i = 0; i < rows; i++) {
            const size_t r = checked_row(sh, R, i);
            for (size_t kk = 0; kk < sh->k; kk++)
                arow[kk] = elem_a(sh, a, j, r, kk);
            for (size_t c = 0; c < sh->n; c++, o++) {
                double s = 0.0, b = 0.0;
                for (size_t kk = 0; kk < sh->k; kk++)
                    wcol[kk] = elem_w(sh, w, j, c, kk);
                for (size_t kk = 0; kk < sh->k; kk++) {
                    s += arow[kk] * wcol[kk];
                    b += fabs(arow[kk] * wcol[kk]);
                }
                const double c0v = sh->beta ? c0[sh->c_off[j] + r * sh->ldc + c] : 0.0;
                ref[o] = s + c0v;
                bound[o] = b + fabs(c0v);
            }
        }
    }
    free(wcol);
    free(arow);
}

static void errors(const shape *sh, const float *c, size_t R, const double *ref, const double *bound,
                   double *rel, double *rms, double *comp) {
    const size_t rows = sh->m < R ? sh->m : R, ents = sh->count > 1 ? 2 : 1;
    double num = 0.0, den = 0.0, cmp = 0.0, sq = 0.0, sqref = 0.0;
    size_t o = 0;
    for (size_t e = 0; e < ents; e++) {
        const size_t j = e ? sh->count - 1 : 0;
        for (size_t i = 0; i < rows; i++) {
            const size_t r = checked_row(sh, R, i);
            for (size_t col = 0; col < sh->n; col++, o++) {
                const double d = fabs((double)c[sh->c_off[j] + r * sh->ldc + col] - ref[o]);
                num = d > num || d != d ? d : num;
                den = fmax(den, fabs(ref[o]));
                cmp = fmax(cmp, d / bound[o]);
                sq += d * d;
                sqref += ref[o] * ref[o];
            }
        }
    }
    *rel = num / den;
    *rms = sqrt(sq / sqref);
    *comp = cmp;
}

/* ======================================================================================================= */
/* A runtime, a context, and one path on one site                                                          */
/* ======================================================================================================= */

typedef struct env {
    armt_runtime *rt;
    armt_model *model;
    armt_ctx *ctx;
} env;

static void env_free(env *e) {
    armt_ctx_free(e->ctx);
    armt_model_free(e->model);
    armt_runtime_free(e->rt);
    memset(e, 0, sizeof *e);
}

static int env_open(const opts *o, int kind, env *e) {
    static const char *const kind_name[RT_COUNT] = {"clblast", "tf32x3", "mma"};
    memset(e, 0, sizeof *e);
    armt_runtime_params p = armt_runtime_default_params();
    p.platform = o->platform;
    p.device = o->device;
    p.fp32_gemm = kind == RT_CLBLAST ? ARMT_FP32_GEMM_CLBLAST : ARMT_FP32_GEMM_TF32X3;
    if (o->emulate)
        p.tensor_cores = ARMT_TC_EMULATE, p.wgmma = kind == RT_TF32 ? ARMT_TC_EMULATE : ARMT_TC_OFF;
    if (kind == RT_MMA) p.wgmma = ARMT_TC_OFF;
    armt_status st = armt_runtime_create(&p, &e->rt);
    if (st != ARMT_OK) {
        fprintf(stderr, "gemm_fp32_bench: runtime (%s): %s\n", kind_name[kind], armt_last_error());
        return -1;
    }
    armt_device_tuning *t = &e->rt->tune;
    if (kind != RT_CLBLAST && (o->tiles[0] || (o->wg_tiles[0] && t->tf_wgmma))) {
        /* other tiles: the program again (with the wgmma kernel's rebuild and check), before any kernel of
         * it is made */
        if (o->tiles[0]) {
            t->tf_bm = o->tiles[0], t->tf_bn = o->tiles[1], t->tf_bk = o->tiles[2];
            t->tf_warps_m = o->tiles[3], t->tf_warps_n = o->tiles[4], t->tf_stages = o->tiles[5];
            t->tf_threads = 32 * t->tf_warps_m * t->tf_warps_n;
        }
        if (o->wg_tiles[0] && t->tf_wgmma)
            t->tw_wgm = o->wg_tiles[0], t->tw_n = o->wg_tiles[1], t->tw_stages = o->wg_tiles[2];
        clReleaseProgram(e->rt->programs[ARMT_P_GEMM_TF32]);
        e->rt->programs[ARMT_P_GEMM_TF32] = NULL;
        armt_err err;
        armt_err_init(&err);
        st = armt_tf32_program_build(e->rt, &e->rt->programs[ARMT_P_GEMM_TF32], &err);
        if (st != ARMT_OK) fprintf(stderr, "gemm_fp32_bench: tiles: %s\n", armt_err_msg(&err));
        armt_err_free(&err);
        if (st != ARMT_OK) return -1;
    }
    armt_config c;
    armt_model_params mp = armt_model_default_params();
    mp.precision = ARMT_PRECISION_FP32;
    if (armt_config_preset("tiny", &c) != ARMT_OK ||
        armt_model_create_random(e->rt, &c, &mp, &e->model) != ARMT_OK ||
        armt_ctx_create(e->model, NULL, &e->ctx) != ARMT_OK) {
        fprintf(stderr, "gemm_fp32_bench: context: %s\n", armt_last_error());
        return -1;
    }
    return 0;
}

/* A variant build of the 3xTF32 program: its kernel (NULL on failure, reported). */
static cl_kernel variant_kernel(armt_runtime *rt, const char *extra, cl_program *prog) {
    char to[512];
    armt_tune_tf32_options(&rt->tune, to, sizeof to);
    snprintf(to + strlen(to), sizeof to - strlen(to), " %s", extra);
    armt_err err;
    armt_err_init(&err);
    armt_status st = armt_program_build(rt, ARMT_P_GEMM_TF32, to, prog, &err);
    if (st != ARMT_OK) fprintf(stderr, "gemm_fp32_bench: build %s: %s\n", to, armt_err_msg(&err));
    armt_err_free(&err);
    if (st != ARMT_OK) return NULL;
    cl_int e;
    cl_kernel k = clCreateKernel(*prog, "armt_gemm_tf32", &e);
    return e == CL_SUCCESS ? k : NULL;
}

static int cmp_double(const void *a, const void *b) {
    const double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* Runs the site on env's context (with `variant` in place of the 3xTF32 kernel when set): median seconds,
 * and C of the last call into c. -1 on failure (reported). */
static int run_path(env *e, const shape *sh, const float *a, const float *w, const float *c0,
                    cl_kernel variant, int reps, float *c, double *secs, const char **kernel) {
    cl_int ce;
    cl_context cx = e->rt->context;
    cl_mem ba = clCreateBuffer(cx, CL_MEM_READ_ONLY | CL_MEM_COPY_HOST_PTR, sh->na * 4, (void *)a, &ce);
    cl_mem bw = ce == CL_SUCCESS
                    ? clCreateBuffer(cx, CL_MEM_READ_ONLY | CL_MEM_COPY_HOST_PTR, sh->nw * 4, (void *)w, &ce)
                    : NULL;
    cl_mem bc = ce == CL_SUCCESS ? clCreateBuffer(cx, CL_MEM_READ_WRITE, sh->nc * 4, NULL, &ce) : NULL;
    int rc = -1;
    double *t = malloc((size_t)(reps + 1) * sizeof *t);
    if (ce != CL_SUCCESS) {
        fprintf(stderr, "gemm_fp32_bench: buffers: %s\n", armt_cl_error_str(ce));
        goto done;
    }
    armt_gemm_op op = {.m = sh->m,
                       .n = sh->n,
                       .k = sh->k,
                       .count = sh->count,
                       .a = ba,
                       .lda = sh->lda,
                       .a_off = sh->a_off,
                       .trans_a = sh->trans_a,
                       .w = bw,
                       .ldw = sh->ldw,
                       .w_off = sh->w_off,
                       .w_kn = sh->w_kn,
                       .c = bc,
                       .ldc = sh->ldc,
                       .c_off = sh->c_off,
                       .beta = (float)sh->beta,
                       .site = -1};
    armt_gemm_plan plan;
    const armt_gemm_env genv = armt_gemm_env_of(e->ctx);
    if (armt_gemm_plan_make(&genv, &op, &plan) == NULL)
        *kernel = plan.clblast ? "CLBlast" : armt_kernel_name(plan.kernel);
    cl_kernel saved = e->ctx->k[ARMT_K_GEMM_TF32];
    if (variant) e->ctx->k[ARMT_K_GEMM_TF32] = variant;
    armt_err err;
    armt_err_init(&err);
    for (int r = 0; r <= reps; r++) {
        /* C0 again before every call (beta = 1 adds into it); not timed */
        ce = clEnqueueWriteBuffer(e->ctx->queue, bc, CL_TRUE, 0, sh->nc * 4, c0, 0, NULL, NULL);
        if (ce != CL_SUCCESS) break;
        const double t0 = armt_now();
        armt_status st = armt_gemm(e->ctx, &op, &err);
        ce = clFinish(e->ctx->queue);
        t[r] = armt_now() - t0;
        if (st != ARMT_OK) {
            fprintf(stderr, "gemm_fp32_bench: %s\n", armt_err_msg(&err));
            ce = CL_INVALID_OPERATION;
            break;
        }
    }
    e->ctx->k[ARMT_K_GEMM_TF32] = saved;
    armt_err_free(&err);
    if (ce == CL_SUCCESS)
        ce = clEnqueueReadBuffer(e->ctx->queue, bc, CL_TRUE, 0, sh->nc * 4, c, 0, NULL, NULL);
    if (ce != CL_SUCCESS) {
        fprintf(stderr, "gemm_fp32_bench: run: %s\n", armt_cl_error_str(ce));
        goto done;
    }
    qsort(t + 1, (size_t)reps, sizeof *t, cmp_double); /* t[0]: the warm-up */
    *secs = t[1 + reps / 2];
    rc = 0;
done:
    free(t);
    if (bc) clReleaseMemObject(bc);
    if (bw) clReleaseMemObject(bw);
    if (ba) clReleaseMemObject(ba);
    return rc;
}

/* ======================================================================================================= */
/* Options and main                                                                                        */
/* ======================================================================================================= */

static void usage(FILE *f) {
    fprintf(f, "usage: gemm_fp32_bench [--platform P] [--device D] [--cells 16] [--rows 1152] [--mem 128]\n"
               "         [--reps 10] [--sites LIST] [--paths LIST] [--tiles BMxBNxBK:WMxWN:S]\n"
               "         [--wg-tiles WGMxN:S] [--emulate]\n"
               "         [--cap-m N] [--cap-n N] [--cap-k N] [--cap-count N] [--check-rows 8] [--seed N]\n"
               "sites: wq wkv wo wgu wd wmq wmv read prev update lmhead (default: all but lmhead)\n"
               "paths: clblast tf32x3 mma tf32x1 o0 o1 o2 o3 kp kpo3 (default: clblast,tf32x3,mma)\n");
}

/* A comma-separated list of names into flags; -1 on an unknown name. */
static int pick(const char *list, const char *const *names, size_t n, int *on) {
    memset(on, 0, n * sizeof *on);
    char *copy = strdup(list), *save = NULL;
    int rc = 0;
    for (char *t = strtok_r(copy, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
        size_t i = 0;
        while (i < n && strcmp(names[i], t) != 0)
            i++;
        if (i == n) {
            fprintf(stderr, "gemm_fp32_bench: unknown name '%s'\n", t);
            rc = -1;
        } else {
            on[i] = 1;
        }
    }
    free(copy);
    return rc;
}

static int parse(int argc, char **argv, opts *o) {
    memset(o, 0, sizeof *o);
    o->cells = 16, o->rows = 1152, o->mem = 128, o->reps = 10, o->check_rows = 8, o->seed = 1;
    for (size_t i = 0; i + 1 < N_SITES; i++)
        o->site_on[i] = 1; /* all but lmhead */
    o->path_on[0] = o->path_on[1] = o->path_on[2] = 1;
    const char *site_names[N_SITES], *path_names[N_PATHS];
    for (size_t i = 0; i < N_SITES; i++)
        site_names[i] = sites[i].name;
    for (size_t i = 0; i < N_PATHS; i++)
        path_names[i] = paths[i].name;
    static const struct option lo[] = {{"platform", required_argument, NULL, 'P'},
                                       {"device", required_argument, NULL, 'D'},
                                       {"cells", required_argument, NULL, 'g'},
                                       {"rows", required_argument, NULL, 'T'},
                                       {"mem", required_argument, NULL, 'M'},
                                       {"reps", required_argument, NULL, 'r'},
                                       {"sites", required_argument, NULL, 's'},
                                       {"paths", required_argument, NULL, 'p'},
                                       {"tiles", required_argument, NULL, 't'},
                                       {"wg-tiles", required_argument, NULL, 'W'},
                                       {"emulate", no_argument, NULL, 'e'},
                                       {"cap-m", required_argument, NULL, 'm'},
                                       {"cap-n", required_argument, NULL, 'n'},
                                       {"cap-count", required_argument, NULL, 'c'},
                                       {"cap-k", required_argument, NULL, 'k'},
                                       {"check-rows", required_argument, NULL, 'R'},
                                       {"seed", required_argument, NULL, 'S'},
                                       {"help", no_argument, NULL, 'h'},
                                       {NULL, 0, NULL, 0}};
    int c;
    while ((c = getopt_long(argc, argv, "h", lo, NULL)) != -1) {
        switch (c) {
        case 'P': o->platform = optarg; break;
        case 'D': o->device = optarg; break;
        case 'g': o->cells = atoi(optarg); break;
        case 'T': o->rows = atoi(optarg); break;
        case 'M': o->mem = atoi(optarg); break;
        case 'r': o->reps = atoi(optarg); break;
        case 's':
            if (pick(optarg, site_names, N_SITES, o->site_on)) return -1;
            break;
        case 'p':
            if (pick(optarg, path_names, N_PATHS, o->path_on)) return -1;
            break;
        case 't':
            if (sscanf(optarg, "%dx%dx%d:%dx%d:%d", &o->tiles[0], &o->tiles[1], &o->tiles[2], &o->tiles[3],
                       &o->tiles[4], &o->tiles[5]) != 6) {
                fprintf(stderr, "gemm_fp32_bench: --tiles BMxBNxBK:WMxWN:STAGES, e.g. 128x128x16:2x4:3\n");
                return -1;
            }
            break;
        case 'W':
            if (sscanf(optarg, "%dx%d:%d", &o->wg_tiles[0], &o->wg_tiles[1], &o->wg_tiles[2]) != 3) {
                fprintf(stderr, "gemm_fp32_bench: --wg-tiles WARPGROUPSxN:STAGES, e.g. 2x128:3\n");
                return -1;
            }
            break;
        case 'e': o->emulate = 1; break;
        case 'm': o->cap_m = atol(optarg); break;
        case 'n': o->cap_n = atol(optarg); break;
        case 'c': o->cap_count = atol(optarg); break;
        case 'k': o->cap_k = atol(optarg); break;
        case 'R': o->check_rows = atoi(optarg); break;
        case 'S': o->seed = strtoull(optarg, NULL, 0); break;
        case 'h': usage(stdout); exit(0);
        default: usage(stderr); return -1;
        }
    }
    if (o->cells < 1 || o->cells > 64 || o->rows < 1 || o->mem < 1 || o->reps < 1 || o->check_rows < 1) {
        fprintf(stderr, "gemm_fp32_bench: --cells 1..64, --rows, --mem, --reps, --check-rows >= 1\n");
        return -1;
    }
    return optind == argc ? 0 : -1;
}

int main(int argc, char **argv) {
    opts o;
    if (parse(argc, argv, &o) != 0) {
        usage(stderr);
        return 2;
    }
    env envs[RT_COUNT] = {{0}};
    int rc = 0, need[RT_COUNT] = {0};
    for (size_t p = 0; p < N_PATHS; p++)
        need[paths[p].rt] |= o.path_on[p];
    for (int r = 0; r < RT_COUNT && !rc; r++)
        if (need[r] && env_open(&o, r, &envs[r]) != 0) rc = 1;
    if (rc) {
        for (int r = 0; r < RT_COUNT; r++)
            env_free(&envs[r]);
        return 1;
    }
    /* the variant kernels, built once */
    cl_program vprog[N_PATHS] = {NULL};
    cl_kernel vker[N_PATHS] = {NULL};
    for (size_t p = 0; p < N_PATHS; p++)
        if (o.path_on[p] && paths[p].extra &&
            !(vker[p] = variant_kernel(envs[paths[p].rt].rt, paths[p].extra, &vprog[p])))
            rc = 1;
    armt_device_info info;
    armt_runtime *any = NULL;
    for (int r = RT_COUNT - 1; r >= 0; r--)
        if (envs[r].rt) any = envs[r].rt;
    if (!rc && armt_runtime_device_info(any, &info) == ARMT_OK) {
        char to[256];
        armt_tune_tf32_options(envs[RT_TF32].rt ? &envs[RT_TF32].rt->tune : &any->tune, to, sizeof to);
        printf(
            "# gemm_fp32_bench: %s (%s, driver %s), %s; %s%s; %d cells x %d rows, %d memory rows; median of "
            "%d\n",
            info.name, info.platform_name, info.driver_version, armt_build_info(),
            o.emulate ? "emulated tensor cores, " : "", to[0] ? to : "no 3xTF32", o.cells, o.rows, o.mem,
            o.reps);
        printf("\n| site | m x n x k, count | path | kernel | ms | TFLOP/s | max rel | rms rel | comp |\n"
               "|---|---|---|---|---:|---:|---:|---:|---:|\n");
    }
    double best[N_SITES][3] = {{0}}; /* (clblast, tf32x3, mma): ms, then rel error (below) */
    double errs[N_SITES][3] = {{0}};
    for (size_t si = 0; si < N_SITES && !rc; si++) {
        if (!o.site_on[si]) continue;
        shape sh;
        shape_of(&sites[si], &o, &sh);
        float *a = malloc(sh.na * 4), *w = malloc(sh.nw * 4), *c0 = malloc(sh.nc * 4), *c = malloc(sh.nc * 4);
        const size_t R = (size_t)o.check_rows, nref = (sh.count > 1 ? 2 : 1) * (sh.m < R ? sh.m : R) * sh.n;
        double *ref = malloc(nref * sizeof *ref), *bound = malloc(nref * sizeof *bound);
        if (!a || !w || !c0 || !c || !ref || !bound) {
            fprintf(stderr, "gemm_fp32_bench: out of host memory\n");
            rc = 1;
        }
        uint64_t s = o.seed * 1000003u + si;
        for (size_t i = 0; !rc && i < sh.na; i++)
            a[i] = urand(&s);
        for (size_t i = 0; !rc && i < sh.nw; i++)
            w[i] = 0.02f * urand(&s);
        for (size_t i = 0; !rc && i < sh.nc; i++)
            c0[i] = sh.beta ? urand(&s) : 0.0f;
        if (!rc) reference(&sh, a, w, c0, R, ref, bound);
        const double flop = 2.0 * (double)sh.m * (double)sh.n * (double)sh.k * (double)sh.count;
        for (size_t p = 0; p < N_PATHS && !rc; p++) {
            if (!o.path_on[p]) continue;
            double secs = 0.0, rel = 0.0, rms = 0.0, comp = 0.0;
            const char *kname = "?";
            if (run_path(&envs[paths[p].rt], &sh, a, w, c0, vker[p], o.reps, c, &secs, &kname) != 0) {
                rc = 1;
                break;
            }
            errors(&sh, c, R, ref, bound, &rel, &rms, &comp);
            printf("| %s | %zu x %zu x %zu, %zu | %s | %s | %.3f | %.2f | %.2e | %.2e | %.2e |\n",
                   sites[si].name, sh.m, sh.n, sh.k, sh.count, paths[p].name, kname, secs * 1e3,
                   flop / secs * 1e-12, rel, rms, comp);
            fflush(stdout);
            if (p < 3) best[si][p] = secs * 1e3, errs[si][p] = rms;
        }
        free(a), free(w), free(c0), free(c), free(ref), free(bound);
    }
    if (!rc && o.path_on[0] && o.path_on[1]) {
        const int mma = o.path_on[2];
        printf("\n| site | CLBlast ms | 3xTF32 ms | speed-up | rms error 3xTF32 / CLBlast |%s\n"
               "|---|---:|---:|---:|---:|%s\n",
               mma ? " mma.sync ms | 3xTF32 / mma.sync speed-up |" : "", mma ? "---:|---:|" : "");
        for (size_t si = 0; si < N_SITES; si++) {
            if (!o.site_on[si]) continue;
            printf("| %s | %.3f | %.3f | %.2fx | %.2f |", sites[si].name, best[si][0], best[si][1],
                   best[si][0] / best[si][1], errs[si][1] / errs[si][0]);
            if (mma) printf(" %.3f | %.2fx |", best[si][2], best[si][2] / best[si][1]);
            printf("\n");
        }
    }
    for (size_t p = 0; p < N_PATHS; p++) {
        if (vker[p]) clReleaseKernel(vker[p]);
        if (vprog[p]) clReleaseProgram(vprog[p]);
    }
    for (int r = 0; r < RT_COUNT; r++)
        env_free(&envs[r]);
    return rc;
}
