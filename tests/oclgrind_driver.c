/*
 * oclgrind_driver.c - launches every kernel of cl/ on tiny shapes, for `make check-oclgrind`, which runs it
 * under Oclgrind (an OpenCL device simulator that reports data races, out-of-bounds and uninitialised
 * accesses, and API errors; tests/oclgrind.sh).
 *
 *   oclgrind_driver SET [N]   SET: fp32        the fp32 model: embed, norms, RoPE, attention, SwiGLU, the
 *                                              memory kernels, CLBlast's GEMMs; every schedule and output,
 *                                              a state round trip and a generation (KV-cache steps)
 *                                  bf16        a bf16 model on the portable kernels (tensor cores off), amt
 *                                              variant: normalised features, two memory heads, gating
 *                                  bf16-mma    the tensor-core kernels through their emulation (mma.sync
 *                                              tiles), armt variant, RoPE and attention on fp32 K and V
 *                                  bf16-wgmma  the same with the wgmma tiles' emulation, inner-loop variant
 *                                              without denominator, RoPE in the GEMMs, bf16 K and V
 *                                  fp32-tf32   the fp32 model's GEMMs on the 3xTF32 kernel's emulation
 *                             N: only the first N forward calls (debugging)
 *
 * Shapes (tiny_config): d 32, 2 layers, GQA, 2 memory tokens, segments of 4 tokens; 5 tokens make a full
 * segment and a partial one, so a diagonal step holds two cells and the second segment reads the memory the
 * first wrote. The driver prints the kernels the profile saw ("kernel: NAME"; tests/oclgrind.sh checks that
 * the sets together ran all of lib/device/internal.h's), each call's time and each kernel's device time
 * ("profile:", where Oclgrind's time goes), and exits 0 when every call succeeded with finite outputs. It is
 * linked with tests/oclgrind_hostops.c (buffer fills, writes and copies Oclgrind's uninitialised-value
 * tracking can follow).
 */
#include "config.h"

#include "armt.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* segment 4: a full segment and a partial one of a single token */
#define SEGMENT  4
#define N_TOKENS 5

static int fail(const char *what, armt_status st, const char *msg) {
    fprintf(stderr, "oclgrind_driver: %s: %s: %s\n", what, armt_status_str(st), msg);
    return 1;
}

/* The kernels of the last forward's profile added to seen[] (their device time to secs[]: under Oclgrind,
 * where the simulation's time goes). */
static void seen_kernels(armt_ctx *ctx, char seen[][64], double *seen_s, int *n_seen) {
    const char *names[128];
    double secs[128];
    size_t n = armt_ctx_profile(ctx, names, secs, 128);
    for (size_t i = 0; i < n && i < 128; i++) {
        int j = 0;
        while (j < *n_seen && strcmp(seen[j], names[i]) != 0)
            j++;
        if (j == *n_seen) {
            if (*n_seen == 128) continue;
            snprintf(seen[j], 64, "%s", names[i]);
            seen_s[j] = 0.0;
            (*n_seen)++;
        }
        seen_s[j] += secs[i];
    }
}

/* The set's model: tiny, so that Oclgrind runs every kernel within minutes, yet each kernel meets its edge
 * cases: partial tiles (no size is a multiple of a tile), GQA (two query heads per KV head), a partial last
 * segment, a diagonal step of two cells, and between the sets every variant's memory kernels (the paper's
 * DPFP with z, the normalised features, two memory heads with gating, no denominator, the memory tokens
 * attending to their whole segment). The tensor-core sets need head_dim % 16 == 0 (attention) and sizes
 * that are multiples of 8 (GEMM operands). */
static void tiny_config(const char *set, armt_config *c) {
    c->hidden_size = 32;
    c->n_layers = 2;
    c->n_heads = 4;
    c->n_kv_heads = 2;
    c->head_dim = 8;
    c->intermediate_size = 48;
    c->vocab_size = 40;
    c->num_mem_tokens = 2;
    c->d_mem = 4; /* d_key 24 */
    c->segment_size = SEGMENT;
    if (strcmp(set, "fp32") == 0) return; /* the paper's math, tied embeddings */
    c->tie_word_embeddings = 0;           /* a bf16 lm_head of its own */
    if (strcmp(set, "bf16") == 0) {       /* amt: two memory heads, beta per channel */
        c->variant = ARMT_VARIANT_AMT;
        c->mem_heads = 2;
        c->gating = 1;
        return;
    }
    c->n_heads = 2; /* the tensor-core attention wants head_dim % 16 == 0; still GQA */
    c->n_kv_heads = 1;
    c->head_dim = 16;
    if (strcmp(set, "bf16-mma") == 0) { /* armt: normalised features, one head */
        c->variant = ARMT_VARIANT_ARMT;
        /* head_dim 32 is wider than a warp's columns of the emulated mma.sync tiles: RoPE then runs as its
         * own kernel and the attention reads fp32 K and V (armt_attention_mma, which the other sets meet
         * only in generation, whose kernels the profile does not show) */
        c->head_dim = 32;
        return;
    }
    c->variant = ARMT_VARIANT_INNER; /* bf16-wgmma: memory tokens see their whole segment, no z */
    c->no_denom = 1;
}

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* The forward calls, in order; each set runs those of its mask (Oclgrind's time: the tensor-core sets'
 * emulated kernels cost minutes per forward under it, so they run one). The first call of a set writes
 * every layer's memory for the first time (and its second segment reads it), later calls read it and correct
 * z. */
#define ALL_CALLS 0x3f
static const struct {
    armt_schedule schedule;
    armt_output output;
    int all_rows; /* the last layer computes every row */
    int n;        /* tokens */
} calls[] = {
    {ARMT_SCHEDULE_DIAGONAL, ARMT_OUTPUT_LOGITS_ALL, 1, N_TOKENS},
    {ARMT_SCHEDULE_SEQUENTIAL, ARMT_OUTPUT_LOGITS_LAST, 0, N_TOKENS},
    {ARMT_SCHEDULE_DIAGONAL, ARMT_OUTPUT_LOGITS_LAST, 0, 1}, /* one token: a cell of one input row */
    {ARMT_SCHEDULE_DIAGONAL, ARMT_OUTPUT_HIDDEN, 0, N_TOKENS},
    {ARMT_SCHEDULE_SEQUENTIAL, ARMT_OUTPUT_NONE, 0, N_TOKENS},
    {ARMT_SCHEDULE_FULL, ARMT_OUTPUT_LOGITS_ALL, 0, N_TOKENS},
    {ARMT_SCHEDULE_DIAGONAL, ARMT_OUTPUT_LOGITS_LAST, 0, N_TOKENS},
};

static const struct {
    const char *name;
    armt_precision precision;
    armt_tensor_cores tensor_cores, wgmma;
    armt_fp32_gemm fp32_gemm;
    unsigned calls; /* bit i: calls[i] */
    int generate;   /* new tokens of a generation after the calls (its KV-cache steps), 0: none */
} sets[] = {
    {"fp32", ARMT_PRECISION_FP32, ARMT_TC_OFF, ARMT_TC_AUTO, ARMT_FP32_GEMM_CLBLAST, ALL_CALLS, 2},
    {"bf16", ARMT_PRECISION_BF16, ARMT_TC_OFF, ARMT_TC_AUTO, ARMT_FP32_GEMM_AUTO, 0x7, 0},
    {"bf16-mma", ARMT_PRECISION_BF16, ARMT_TC_EMULATE, ARMT_TC_OFF, ARMT_FP32_GEMM_AUTO, 0x40, 0},
    {"bf16-wgmma", ARMT_PRECISION_BF16, ARMT_TC_EMULATE, ARMT_TC_ON, ARMT_FP32_GEMM_AUTO, 0x40, 0},
    {"fp32-tf32", ARMT_PRECISION_FP32, ARMT_TC_EMULATE, ARMT_TC_OFF, ARMT_FP32_GEMM_TF32X3, 0x40, 0},
};

int main(int argc, char **argv) {
    const double t0 = now();
    setvbuf(stdout, NULL, _IOLBF, 0); /* progress shows in the log while Oclgrind runs */
    const char *set = argc > 1 ? argv[1] : "fp32";
    size_t si = 0;
    while (si < sizeof sets / sizeof sets[0] && strcmp(sets[si].name, set) != 0)
        si++;
    if (si == sizeof sets / sizeof sets[0]) {
        fprintf(stderr, "usage: oclgrind_driver fp32|bf16|bf16-mma|bf16-wgmma|fp32-tf32 [N]\n");
        return 2;
    }
    const int max_calls = argc > 2 ? atoi(argv[2]) : 1000;
    armt_runtime_params rp = armt_runtime_default_params();
    rp.profile = 1;
    rp.tensor_cores = sets[si].tensor_cores;
    rp.wgmma = sets[si].wgmma;
    rp.fp32_gemm = sets[si].fp32_gemm;
    armt_model_params mp = armt_model_default_params();
    mp.wmv_std = 0.05f;
    mp.seed = 7;
    mp.segment_size = SEGMENT;
    mp.precision = sets[si].precision;
    armt_runtime *rt = NULL;
    armt_status st = armt_runtime_create(&rp, &rt);
    if (st != ARMT_OK) return fail("runtime", st, armt_last_error());
    armt_device_info info;
    if (armt_runtime_device_info(rt, &info) == ARMT_OK)
        printf("device: %s (%s)\n", info.name, info.platform_name);
    armt_config c;
    st = armt_config_preset("tiny", &c);
    if (st != ARMT_OK) return fail("preset", st, armt_last_error());
    tiny_config(set, &c);
    armt_model *m = NULL;
    st = armt_model_create_random(rt, &c, &mp, &m);
    if (st != ARMT_OK) return fail("model", st, armt_last_error());
    printf("kernel: %s\n",
           mp.precision == ARMT_PRECISION_BF16 ? "armt_fill_uniform_bf16" : "armt_fill_uniform");
    armt_ctx *ctx = NULL;
    st = armt_ctx_create(m, NULL, &ctx);
    if (st != ARMT_OK) return fail("ctx", st, armt_last_error());
    int32_t ids[N_TOKENS];
    for (int i = 0; i < N_TOKENS; i++)
        ids[i] = (int32_t)((i * 37 + 11) % c.vocab_size);
    float *out = malloc(armt_output_count(m, ARMT_OUTPUT_LOGITS_ALL, N_TOKENS) * sizeof(float) +
                        armt_output_count(m, ARMT_OUTPUT_HIDDEN, N_TOKENS) * sizeof(float));
    char seen[128][64];
    double seen_s[128];
    int n_seen = 0, rc = 0, n_run = 0;
    double t = now();
    printf("time: runtime and model %.1f s\n", t - t0);
    for (size_t i = 0; i < sizeof calls / sizeof calls[0] && !rc && n_run < max_calls; i++) {
        if (!(sets[si].calls >> i & 1u)) continue;
        n_run++;
        armt_forward_params fp = armt_forward_default_params();
        fp.schedule = calls[i].schedule;
        fp.output = calls[i].output;
        fp.out = out;
        fp.out_count = armt_output_count(m, fp.output, (size_t)calls[i].n);
        fp.all_rows = calls[i].all_rows;
        st = armt_forward(ctx, ids, (size_t)calls[i].n, &fp);
        if (st != ARMT_OK) rc = fail("forward", st, armt_ctx_last_error(ctx));
        seen_kernels(ctx, seen, seen_s, &n_seen);
        double sum = 0.0; /* the outputs are finite; their sum tells runs apart */
        for (size_t j = 0; j < fp.out_count && !rc; j++) {
            if (!isfinite(out[j])) {
                fprintf(stderr, "oclgrind_driver: forward: output %zu is not finite\n", j);
                rc = 1;
            }
            sum += out[j];
        }
        const double t1 = now();
        printf("time: forward %s %s n=%d %.1f s (output sum %.6g)\n", armt_schedule_name(fp.schedule),
               armt_output_name(fp.output), calls[i].n, t1 - t, sum);
        t = t1;
    }
    if (!rc && sets[si].generate > 0 && n_run < max_calls) {
        /* the state out and back in around a reset, then a generation (the tail's KV-cache steps) */
        size_t nw = armt_ctx_memory_w_count(ctx), nz = armt_ctx_memory_z_count(ctx);
        float *w = malloc(nw * 4), *z = malloc(nz * 4);
        uint8_t wr[16];
        st = armt_ctx_memory_get(ctx, w, z, wr);
        if (st == ARMT_OK) st = armt_ctx_reset(ctx);
        if (st == ARMT_OK) st = armt_ctx_memory_set(ctx, w, z, wr);
        if (st != ARMT_OK) rc = fail("state", st, armt_ctx_last_error(ctx));
        free(w);
        free(z);
        armt_generate_params gp = armt_generate_default_params();
        gp.max_new_tokens = sets[si].generate;
        int32_t gen[8];
        if (!rc) st = armt_generate(ctx, ids, N_TOKENS, &gp, gen, 8, NULL);
        if (!rc && st != ARMT_OK) rc = fail("generate", st, armt_ctx_last_error(ctx));
        printf("time: state and generation %.1f s\n", now() - t);
    }
    for (int i = 0; i < n_seen; i++)
        printf("kernel: %s\n", seen[i]);
    for (int i = 0; i < n_seen; i++)
        printf("profile: %-32s %8.1f s\n", seen[i], seen_s[i]);
    free(out);
    armt_ctx_free(ctx);
    armt_model_free(m);
    armt_runtime_free(rt);
    if (!rc) printf("oclgrind_driver %s: done\n", set);
    return rc;
}
