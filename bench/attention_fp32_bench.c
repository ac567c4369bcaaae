/*
 * attention_fp32_bench.c - the attention of fp32 models at long context: the fp32 kernel (cl/attention.cl,
 * armt_attention) against the 3xTF32 tensor-core kernel (cl/attention_mma.cl built with AM_TF32) and its
 * variants, timed and checked against an fp64 reference on the same data. It answers whether the 3xTF32
 * attention is as accurate as the fp32 kernel over the keys of a whole document (the full-attention
 * baseline) and of an ARMT cell (1,152 keys), which decides what AUTO runs for fp32 models.
 *
 *   attention_fp32_bench [--platform P] [--device D] [--tokens 1152,8192,32768] [--heads 32] [--kv-heads 8]
 *                        [--head-dim 64] [--q-scale 1,4] [--check-rows 64] [--reps 3]
 *                        [--paths fp32,tf32x3,acc,tf32x1] [--emulate] [--seed N]
 *
 * One causal attention over N = --tokens rows and keys (one cell, no window, no memory rows): Q, K, V uniform
 * in [-1, 1], Q times --q-scale (1: logits of standard deviation about 0.3, a flat softmax; 4: about 1.3).
 * Paths (one program each, the options a model's armt_tune_attention gives, plus the variant's):
 *   fp32    armt_attention, the fp32 kernel (what AUTO runs for fp32 models today)
 *   tf32x3  armt_attention_mma with AM_TF32 (3xTF32; AM_SPLIT=1, the kernel's default: hi hi per k8 step
 *           into registers of its own, added by fp32 adds; the small products apart)
 *   acc     the same with AM_SPLIT=0: every product straight into S and O (the kernel before AM_SPLIT)
 *   tf32x1  TF32_PRODUCTS=1: hi hi alone, a plain TF32 attention (shows what the split buys)
 * Each (N, scale, path): one warm-up launch, then --reps launches, each waited for; the median time with
 * TFLOP/s = 4 nh hd sum_r (r + 1) / time (the causal products, QK^T and PV). Accuracy on --check-rows rows
 * (the last half of them, the others spread evenly), every head and column, against fp64: "max rel" =
 * max |o - ref| / max |ref|, "rms rel" = sqrt(sum (o - ref)^2 / sum ref^2).
 * --emulate runs the tensor-core paths on mma.cl's OpenCL C stand-ins (any device; slow: --tokens 200).
 *
 * Output: a Markdown table. Exit 0, 1 on a failure, 2 on usage.
 */
#include "config.h"

#include "armt.h"
#include "common/util.h"
#include "device/internal.h"

#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

typedef struct path {
    const char *name, *kernel, *extra; /* extra: options after the model's (NULL: no AM_TF32 build) */
} path;

static const path paths[] = {
    {"fp32", "armt_attention", NULL},
    {"tf32x3", "armt_attention_mma", ""},
    {"acc", "armt_attention_mma", " -DAM_SPLIT=0"},
    {"tf32x1", "armt_attention_mma", " -DTF32_PRODUCTS=1"},
};
#define N_PATHS  (sizeof paths / sizeof paths[0])
#define MAX_LIST 16

typedef struct opts {
    const char *platform, *device;
    int tokens[MAX_LIST], ntokens;
    double qscale[MAX_LIST];
    int nqscale;
    int heads, kv_heads, head_dim, check_rows, reps, emulate;
    uint64_t seed;
    int path_on[N_PATHS];
} opts;

static float urand(uint64_t *s) {
    *s = *s * 6364136223846793005ull + 1442695040888963407ull;
    return (float)((double)(*s >> 11) * 0x1.0p-53 * 2.0 - 1.0);
}

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static int cmp_double(const void *a, const void *b) {
    const double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* The checked rows: the last R/2, the others spread evenly over the first N - R/2 (all when N <= R). */
static int checked_row(int N, int R, int i) {
    if (N <= R) return i;
    const int tail = R / 2, head = R - tail;
    return i < head ? (int)((long)i * (N - tail) / head) : N - R + i;
}

static int run_case(armt_runtime *rt, const opts *o, const armt_attention_tuning *at, cl_program *progs,
                    int N, double qs, uint64_t seed) {
    const int nh = o->heads, nkv = o->kv_heads, hd = o->head_dim;
    const size_t nq = (size_t)N * nh * hd, nk = (size_t)N * nkv * hd;
    const int R = N < o->check_rows ? N : o->check_rows;
    float *q = malloc(nq * 4), *k = malloc(nk * 4), *v = malloc(nk * 4), *out = malloc(nq * 4);
    double *ref = malloc((size_t)R * nh * hd * sizeof *ref), *s = malloc((size_t)N * sizeof *s);
    int rc = 0;
    cl_mem bq = NULL, bk = NULL, bv = NULL, bo = NULL;
    cl_int e = CL_OUT_OF_HOST_MEMORY;
    if (!q || !k || !v || !out || !ref || !s) goto done;
    for (size_t i = 0; i < nq; i++)
        q[i] = (float)qs * urand(&seed);
    for (size_t i = 0; i < nk; i++) {
        k[i] = urand(&seed);
        v[i] = urand(&seed);
    }
    for (int i = 0; i < R; i++)
        armt_attention_ref_row(q, k, v, checked_row(N, R, i), nh, nkv, hd, s, ref + (size_t)i * nh * hd);
    bq = clCreateBuffer(rt->context, CL_MEM_READ_ONLY | CL_MEM_COPY_HOST_PTR, nq * 4, q, &e);
    if (e == CL_SUCCESS)
        bk = clCreateBuffer(rt->context, CL_MEM_READ_ONLY | CL_MEM_COPY_HOST_PTR, nk * 4, k, &e);
    if (e == CL_SUCCESS)
        bv = clCreateBuffer(rt->context, CL_MEM_READ_ONLY | CL_MEM_COPY_HOST_PTR, nk * 4, v, &e);
    if (e == CL_SUCCESS) bo = clCreateBuffer(rt->context, CL_MEM_READ_WRITE, nq * 4, NULL, &e);
    if (e != CL_SUCCESS) goto done;
    double pairs = 0.0; /* sum over rows of the keys each sees */
    for (int r = 0; r < N; r++)
        pairs += r + 1;
    const double flop = 4.0 * nh * hd * pairs;
    for (size_t p = 0; p < N_PATHS; p++) {
        if (!o->path_on[p] || !progs[p]) continue;
        const int mma = paths[p].extra != NULL;
        cl_kernel kern = clCreateKernel(progs[p], paths[p].kernel, &e);
        if (e != CL_SUCCESS) {
            fprintf(stderr, "attention_fp32_bench: %s: kernel %s: %d\n", paths[p].name, paths[p].kernel, e);
            rc = 1;
            continue;
        }
        double *t = calloc((size_t)o->reps + 1, sizeof *t);
        for (int i = 0; e == CL_SUCCESS && t && i <= o->reps; i++) {
            const double t0 = now();
            e = armt_attention_cell_launch(rt, kern, mma, at, bq, bk, bv, bo, N, nh, nkv);
            if (e == CL_SUCCESS) e = clFinish(rt->queue);
            t[i] = now() - t0;
        }
        if (e == CL_SUCCESS) e = clEnqueueReadBuffer(rt->queue, bo, CL_TRUE, 0, nq * 4, out, 0, NULL, NULL);
        clReleaseKernel(kern);
        if (e != CL_SUCCESS || !t) {
            fprintf(stderr, "attention_fp32_bench: %s, %d tokens: %d\n", paths[p].name, N, e);
            free(t);
            rc = 1;
            e = CL_SUCCESS;
            continue;
        }
        qsort(t + 1, (size_t)o->reps, sizeof *t, cmp_double);
        const double med = o->reps > 0 ? t[1 + o->reps / 2] : t[0];
        free(t);
        double d = 0.0, m = 0.0, d2 = 0.0, r2 = 0.0;
        for (int i = 0; i < R; i++) {
            const float *orow = out + (size_t)checked_row(N, R, i) * nh * hd;
            const double *rrow = ref + (size_t)i * nh * hd;
            for (size_t x = 0; x < (size_t)nh * hd; x++) {
                const double dx = isfinite(orow[x]) ? fabs((double)orow[x] - rrow[x]) : INFINITY;
                d = fmax(d, dx);
                d2 += dx * dx;
                m = fmax(m, fabs(rrow[x]));
                r2 += rrow[x] * rrow[x];
            }
        }
        printf("| %d | %g | %s | %.3f | %.1f | %.3g | %.3g |\n", N, qs, paths[p].name, 1e3 * med,
               flop / med * 1e-12, d / m, sqrt(d2 / r2));
        fflush(stdout);
        if (!isfinite(d)) rc = 1;
    }
done:
    if (e != CL_SUCCESS) {
        fprintf(stderr, "attention_fp32_bench: %d tokens: buffers: %d\n", N, e);
        rc = 1;
    }
    if (bo) clReleaseMemObject(bo);
    if (bv) clReleaseMemObject(bv);
    if (bk) clReleaseMemObject(bk);
    if (bq) clReleaseMemObject(bq);
    free(q), free(k), free(v), free(out), free(ref), free(s);
    return rc;
}

static int parse_list(const char *arg, int is_int, int *iv, double *dv, int *n) {
    char *end;
    const char *p = arg;
    *n = 0;
    while (*p) {
        if (*n == MAX_LIST) return -1;
        if (is_int) {
            const long x = strtol(p, &end, 10);
            if (end == p || x < 1 || x > 1 << 20) return -1;
            iv[(*n)++] = (int)x;
        } else {
            const double x = strtod(p, &end);
            if (end == p || !(x > 0.0) || x > 1e3) return -1;
            dv[(*n)++] = x;
        }
        if (*end == ',')
            end++;
        else if (*end)
            return -1;
        p = end;
    }
    return *n > 0 ? 0 : -1;
}

static void usage(FILE *f) {
    fprintf(f, "usage: attention_fp32_bench [--platform P] [--device D] [--tokens 1152,8192,32768]\n"
               "         [--heads 32] [--kv-heads 8] [--head-dim 64] [--q-scale 1,4] [--check-rows 64]\n"
               "         [--reps 3] [--paths fp32,tf32x3,acc,tf32x1] [--emulate] [--seed N]\n"
               "The fp32 models' attention kernels over one causal cell of N tokens: time, TFLOP/s and the\n"
               "error against fp64 (see the comment at the top of bench/attention_fp32_bench.c).\n");
}

static int parse(int argc, char **argv, opts *o) {
    static const struct option lo[] = {
        {"platform", required_argument, NULL, 'P'}, {"device", required_argument, NULL, 'D'},
        {"tokens", required_argument, NULL, 'N'},   {"heads", required_argument, NULL, 'H'},
        {"kv-heads", required_argument, NULL, 'K'}, {"head-dim", required_argument, NULL, 'd'},
        {"q-scale", required_argument, NULL, 'q'},  {"check-rows", required_argument, NULL, 'c'},
        {"reps", required_argument, NULL, 'r'},     {"paths", required_argument, NULL, 'p'},
        {"emulate", no_argument, NULL, 'e'},        {"seed", required_argument, NULL, 's'},
        {"help", no_argument, NULL, 'h'},           {NULL, 0, NULL, 0}};
    memset(o, 0, sizeof *o);
    o->tokens[0] = 1152, o->tokens[1] = 8192, o->tokens[2] = 32768, o->ntokens = 3;
    o->qscale[0] = 1.0, o->qscale[1] = 4.0, o->nqscale = 2;
    o->heads = 32, o->kv_heads = 8, o->head_dim = 64, o->check_rows = 64, o->reps = 3;
    o->seed = 12345;
    for (size_t p = 0; p < N_PATHS; p++)
        o->path_on[p] = 1;
    int c;
    while ((c = getopt_long(argc, argv, "h", lo, NULL)) != -1) {
        char *end = NULL;
        long x = 0;
        switch (c) {
        case 'P': o->platform = optarg; break;
        case 'D': o->device = optarg; break;
        case 'N':
            if (parse_list(optarg, 1, o->tokens, NULL, &o->ntokens)) goto bad;
            break;
        case 'q':
            if (parse_list(optarg, 0, NULL, o->qscale, &o->nqscale)) goto bad;
            break;
        case 'H':
        case 'K':
        case 'd':
        case 'c':
        case 'r':
            x = strtol(optarg, &end, 10);
            if (*end || x < (c == 'r' ? 0 : 1) || x > 4096) goto bad;
            if (c == 'H') o->heads = (int)x;
            if (c == 'K') o->kv_heads = (int)x;
            if (c == 'd') o->head_dim = (int)x;
            if (c == 'c') o->check_rows = (int)x;
            if (c == 'r') o->reps = (int)x;
            break;
        case 'p': {
            for (size_t p = 0; p < N_PATHS; p++)
                o->path_on[p] = 0;
            const char *s = optarg;
            while (*s) {
                const size_t n = strcspn(s, ",");
                size_t p = 0;
                while (p < N_PATHS && !(strlen(paths[p].name) == n && !strncmp(paths[p].name, s, n)))
                    p++;
                if (p == N_PATHS) goto bad;
                o->path_on[p] = 1;
                s += n + (s[n] == ',');
            }
            break;
        }
        case 'e': o->emulate = 1; break;
        case 's': o->seed = strtoull(optarg, NULL, 0); break;
        case 'h': usage(stdout); exit(0);
        default: goto bad;
        }
    }
    if (optind != argc || o->heads % o->kv_heads || o->head_dim % 16) goto bad;
    return 0;
bad:
    usage(stderr);
    return -1;
}

int main(int argc, char **argv) {
    opts o;
    if (parse(argc, argv, &o)) return 2;
    armt_runtime_params p = armt_runtime_default_params();
    p.platform = o.platform;
    p.device = o.device;
    p.fp32_gemm = ARMT_FP32_GEMM_TF32X3;
    if (o.emulate) p.tensor_cores = ARMT_TC_EMULATE, p.wgmma = ARMT_TC_OFF;
    armt_runtime *rt = NULL;
    if (armt_runtime_create(&p, &rt) != ARMT_OK) {
        fprintf(stderr, "attention_fp32_bench: runtime: %s\n", armt_last_error());
        return 1;
    }
    armt_attention_tuning at;
    armt_tune_attention(&rt->tune, o.head_dim, 0, &at);
    if (!at.tf32) {
        fprintf(stderr, "attention_fp32_bench: no 3xTF32 attention on %s (head dim %d)\n", rt->info.name,
                o.head_dim);
        armt_runtime_free(rt);
        return 1;
    }
    char base[256];
    armt_tune_attention_options(&at, base, sizeof base);
    cl_program progs[N_PATHS] = {NULL};
    int rc = 0;
    for (size_t i = 0; i < N_PATHS; i++) {
        if (!o.path_on[i]) continue;
        char opt[384];
        snprintf(opt, sizeof opt, "%s%s", base, paths[i].extra ? paths[i].extra : "");
        armt_err err;
        armt_err_init(&err);
        if (armt_program_build(rt, ARMT_P_ATTENTION_MMA, opt, &progs[i], &err) != ARMT_OK) {
            fprintf(stderr, "attention_fp32_bench: %s: %s\n", paths[i].name, armt_err_msg(&err));
            rc = 1;
        }
        armt_err_free(&err);
    }
    printf("device: %s; heads %d/%d, head dim %d; 3xTF32 build: %s (%d warps, %d row tiles); fp32 kernel's "
           "work-group %d\n\n",
           rt->info.name, o.heads, o.kv_heads, o.head_dim, base, at.warps, at.rtiles, rt->tune.attn_bq);
    printf("| tokens | q scale | path | ms | TFLOP/s | max rel | rms rel "
           "|\n|---:|---:|---|---:|---:|---:|---:|\n");
    for (int i = 0; i < o.ntokens; i++)
        for (int j = 0; j < o.nqscale; j++)
            rc |= run_case(rt, &o, &at, progs, o.tokens[i], o.qscale[j],
                           o.seed + 7919u * (uint64_t)i + (uint64_t)j);
    for (size_t i = 0; i < N_PATHS; i++)
        if (progs[i]) clReleaseProgram(progs[i]);
    armt_runtime_free(rt);
    return rc;
}
