/*
 * oclgrind_driver.c - launches every kernel of cl/ (and CLBlast's) on tiny models, for `make check-oclgrind`,
 * which runs it under Oclgrind (an OpenCL device simulator that reports data races, out-of-bounds and
 * uninitialised accesses, and API errors; tests/oclgrind.sh).
 *
 *   oclgrind_driver SET [N]    SET: fp32, bf16, bf16-mma, bf16-wgmma, fp32-tf32 (the table `sets` below
 *                              says what each runs); N: only the first N forward calls (debugging)
 *
 * The sets with a generation also run a batch generation of two documents (armt_generate_batch; five in
 * bf16-mma, whose decode round then splits k).
 * Every model has d 32, GQA, 2 memory tokens and segments of 4 tokens, and gets 5 tokens: a full segment and
 * a partial one, so a diagonal step holds two cells (with two layers) and the second segment reads the memory
 * the first wrote. Sizes are no tile's multiple. Oclgrind's time decides the rest: a forward of the
 * tensor-core emulation costs minutes under it, so those sets run one forward each.
 * The driver prints the kernels that ran ("kernel: NAME": every kernel launched, and the profile's names,
 * which tell the narrow tiles apart; tests/oclgrind.sh checks that the sets together ran all of
 * lib/device/internal.h's), each call's time and each kernel's device time ("profile:", where Oclgrind's
 * time goes), and exits 0 when every call succeeded with finite outputs. It is linked with
 * tests/oclgrind_hostops.c (buffer fills, writes and copies that Oclgrind's uninitialised-value tracking
 * can follow; the list of launched kernels).
 */
#include "config.h"

#include "armt.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* segment 4: a full segment and a partial one of a single token */
#define SEGMENT   4
#define N_TOKENS  5
#define WIDE_DOCS 5 /* a batch generation's documents in the wide set: more than the GEMV's rows */

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
/* The forward calls; each set runs those of its mask, in this order (Oclgrind's time: a forward of the
 * tensor-core emulation costs minutes under it, so those sets run one). A set's first call writes every
 * layer's memory for the first time and its second segment reads it; later calls read it and correct z. */
static const struct {
    armt_schedule schedule;
    armt_output output;
    int all_rows; /* the last layer computes every row */
} calls[] = {
    {ARMT_SCHEDULE_DIAGONAL, ARMT_OUTPUT_LOGITS_ALL, 1},
    {ARMT_SCHEDULE_SEQUENTIAL, ARMT_OUTPUT_LOGITS_LAST, 0}, /* the last layer's unread rows skipped */
    {ARMT_SCHEDULE_FULL, ARMT_OUTPUT_HIDDEN, 0},
    {ARMT_SCHEDULE_DIAGONAL, ARMT_OUTPUT_LOGITS_LAST, 0},
};

/* The sets: each a model of its own (d 32, GQA, 2 memory tokens, segments of 4 tokens) with a variant of
 * its own, so that between them every kernel and every variant's memory path runs. */
static const struct {
    const char *name;
    armt_precision precision;
    armt_tensor_cores tensor_cores, wgmma, attention;
    int n_layers, n_heads, head_dim; /* (n_heads / 2 KV heads) */
    armt_variant variant;
    int mem_heads, gating, no_denom, use_sink, sliding_window;
    unsigned calls; /* bit i: calls[i] */
    int n_tokens;   /* tokens per call: 5 = a full segment and a partial one, 1 = a partial one */
    int generate;   /* a generation from a three-token prompt with this many new tokens (0: none): its
                               * tail of three rows on the tiled attention (the fp32-K/V kernel on tensor
                               * cores), then one-row steps on the GEMV and the decode attention */
    armt_fp32_gemm fp32_gemm; /* fp32 GEMMs: AUTO (CLBlast without tensor cores) or the 3xTF32 kernel */
} sets[] = {
    /* CLBlast's GEMMs, every schedule, tied embeddings; amt: normalised features, two memory heads, beta
     * per channel */
    {"fp32", ARMT_PRECISION_FP32, ARMT_TC_OFF, ARMT_TC_AUTO, ARMT_TC_AUTO, 2, 4, 8, ARMT_VARIANT_AMT, 2, 1, 0,
     0, 0, 0x7, N_TOKENS, 2, ARMT_FP32_GEMM_AUTO},
    /* the portable bf16 kernels; armt: normalised features, a sink row and the sliding window */
    {"bf16", ARMT_PRECISION_BF16, ARMT_TC_OFF, ARMT_TC_AUTO, ARMT_TC_AUTO, 2, 4, 8, ARMT_VARIANT_ARMT, 0, 0,
     0, 1, 1, 0x8, N_TOKENS, 3, ARMT_FP32_GEMM_AUTO},
    /* mma.sync tiles and the tensor-core attention (bf16 K and V in the forward and in the generation's
     * caches), RoPE in the GEMMs; armt: normalised features, one memory head (the read in the GEMM's
     * epilogue), a sink row and the sliding window (its windows rounded into bf16 caches:
     * armt_kv_to_bf16); a one-row decode step (the GEMV on bf16 operands), and a batch of WIDE_DOCS
     * documents whose decode round splits k in two ($ARMT_SPLITK) */
    {"bf16-mma", ARMT_PRECISION_BF16, ARMT_TC_EMULATE, ARMT_TC_OFF, ARMT_TC_AUTO, 2, 2, 16, ARMT_VARIANT_ARMT,
     0, 0, 0, 1, 1, 0x8, N_TOKENS, 2, ARMT_FP32_GEMM_AUTO},
    /* the wgmma tiles on one cell (the costliest to simulate: one layer, one partial segment), RoPE in the
     * main tiles (k) and in the narrow ones (q: 6 heads are wider than a narrow tile), the attention on the
     * portable kernel (the tensor-core one ran in bf16-mma); the inner loop without denominator */
    {"bf16-wgmma", ARMT_PRECISION_BF16, ARMT_TC_EMULATE, ARMT_TC_ON, ARMT_TC_OFF, 1, 6, 16,
     ARMT_VARIANT_INNER, 0, 0, 1, 0, 0, 0x8, 1, 0, ARMT_FP32_GEMM_AUTO},
    /* the fp32 model's GEMMs on the 3xTF32 kernels' emulation: the wgmma one for the row-major operands, the
     * mma.sync one for the memory update's transposed ones (the rest, as in the fp32 set, on CLBlast); the
     * attention's 3xTF32 build (head dim 16); the paper's math */
    {"fp32-tf32", ARMT_PRECISION_FP32, ARMT_TC_EMULATE, ARMT_TC_ON, ARMT_TC_AUTO, 2, 4, 16,
     ARMT_VARIANT_PAPER, 0, 0, 0, 0, 0, 0x8, N_TOKENS, 0, ARMT_FP32_GEMM_TF32X3},
};

/* implemented by tests/oclgrind_hostops.c */
size_t oclgrind_hostops_launched(const char **names, size_t cap);

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* The set's model: sizes that are no tile's multiple, a full segment and a partial one. */
static armt_config tiny_config(size_t si) {
    armt_config c;
    memset(&c, 0, sizeof c);
    c.hidden_size = 32;
    c.n_layers = sets[si].n_layers;
    c.head_dim = sets[si].head_dim;
    c.n_heads = sets[si].n_heads;
    c.n_kv_heads = c.n_heads / 2; /* GQA: two query heads per KV head */
    c.intermediate_size = 48;
    c.vocab_size = 40;
    c.rms_norm_eps = 1e-5f;
    c.rope_theta = 10000.0;
    c.rope_type = ARMT_ROPE_DEFAULT;
    c.tie_word_embeddings = sets[si].precision == ARMT_PRECISION_FP32; /* else an lm_head of its own */
    c.num_mem_tokens = 2;
    c.d_mem = 4; /* d_key 24 */
    c.segment_size = SEGMENT;
    c.correction = 1;
    c.variant = sets[si].variant;
    c.mem_heads = sets[si].mem_heads;
    c.gating = sets[si].gating;
    c.no_denom = sets[si].no_denom;
    c.use_sink = sets[si].use_sink;
    c.sliding_window = sets[si].sliding_window;
    return c;
}

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
    rp.attention = sets[si].attention;
    rp.fp32_gemm = sets[si].fp32_gemm;
    armt_model_params mp = armt_model_default_params();
    mp.wmv_std = 0.05f;
    mp.seed = 7;
    mp.precision = sets[si].precision;
    /* a tensor-core set with decode steps: its batch generation has more documents than the GEMV takes
     * rows, and the round's products split k */
    const int wide = sets[si].tensor_cores == ARMT_TC_EMULATE && sets[si].generate > 1;
    if (wide) setenv("ARMT_SPLITK", "2", 1);
    armt_runtime *rt = NULL;
    armt_status st = armt_runtime_create(&rp, &rt);
    unsetenv("ARMT_SPLITK");
    if (st != ARMT_OK) return fail("runtime", st, armt_last_error());
    armt_device_info info;
    if (armt_runtime_device_info(rt, &info) == ARMT_OK)
        printf("device: %s (%s)\n", info.name, info.platform_name);
    const armt_config c = tiny_config(si);
    armt_model *m = NULL;
    st = armt_model_create_random(rt, &c, &mp, &m);
    if (st != ARMT_OK) return fail("model", st, armt_last_error());
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
        fp.out_count = armt_output_count(m, fp.output, (size_t)sets[si].n_tokens);
        fp.all_rows = calls[i].all_rows;
        st = armt_forward(ctx, ids, (size_t)sets[si].n_tokens, &fp);
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
        printf("time: forward %s %s %.1f s (output sum %.6g)\n", armt_schedule_name(fp.schedule),
               armt_output_name(fp.output), t1 - t, sum);
        t = t1;
    }
    if (!rc && sets[si].generate > 0 && n_run < max_calls) {
        /* the state out and back in around a reset, then the generation */
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
        if (!rc) st = armt_generate(ctx, ids, 3, &gp, gen, 8, NULL);
        if (!rc && st != ARMT_OK) rc = fail("generate", st, armt_ctx_last_error(ctx));
        printf("time: state and generation %.1f s\n", now() - t);
        /* a batch generation (armt_generate_batch: the rows kernels, and with a prompt of more than a
         * segment armt_forward_batch's cells kernels): this context's state and a fresh context */
        armt_ctx *more[WIDE_DOCS - 1] = {0};
        int32_t gen2[WIDE_DOCS][8];
        armt_generate_doc docs[WIDE_DOCS];
        const size_t n_docs = wide ? WIDE_DOCS : 2;
        docs[0] = (armt_generate_doc){
            .ctx = ctx, .prompt = ids, .n = 1, .params = gp, .out = gen2[0], .out_cap = 8};
        for (size_t b = 1; b < n_docs && !rc; b++) {
            if ((st = armt_ctx_create(m, NULL, &more[b - 1])) != ARMT_OK)
                rc = fail("ctx", st, armt_last_error());
            /* (the second document: a prompt of a full segment and a partial one; the others: one token) */
            docs[b] = (armt_generate_doc){.ctx = more[b - 1],
                                          .prompt = ids,
                                          .n = b == 1 ? (size_t)sets[si].n_tokens : 1,
                                          .params = gp,
                                          .out = gen2[b],
                                          .out_cap = 8};
        }
        t = now();
        if (!rc && (st = armt_generate_batch(ctx, docs, n_docs, NULL)) != ARMT_OK)
            rc = fail("generate_batch", st, armt_ctx_last_error(ctx));
        printf("time: batch generation of %zu documents %.1f s\n", n_docs, now() - t);
        for (size_t b = 0; b < WIDE_DOCS - 1; b++)
            armt_ctx_free(more[b]);
    }
    /* the kernels: the profile's names (the narrow tiles told apart), and every kernel launched */
    const char *names[64];
    const size_t n_launched = oclgrind_hostops_launched(names, 64);
    for (size_t i = 0; i < n_launched && i < 64; i++)
        printf("kernel: %s\n", names[i]);
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
