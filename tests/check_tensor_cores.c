/*
 * check_tensor_cores.c - a bf16 model on the tensor-core kernels (attention, the GEMMs on a bf16-staged A and
 * their staging pass, the narrow tiles, the fused RoPE, SwiGLU and dual epilogues; emulated off NVIDIA with
 * ARMT_TC_EMULATE) against the fp32 model and the double-precision reference, on both tile sets: mma.sync
 * and Hopper wgmma. The attention kernels alone: check_attention.c.
 */
#include "config.h"

#include "device/internal.h"
#include "testutil.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Through the library: a bf16 model's forward runs on the tensor-core kernels (profiled: attention, the
 * GEMM on a bf16-staged A, the staging pass), and its logits stay within the bf16 tolerance of the fp32
 * model's in both schedules. */
static const char *const tc_kernels[3] = {"armt_attention_mma_kvbf16", "armt_gemm_bf16bf16_mma",
                                          "armt_f32_to_bf16"};

/* The FLOPs of one GEMM site of the profile (0 when absent). */
static double site_flop(const char **names, const double *flop, size_t n, const char *name) {
    for (size_t i = 0; i < n; i++)
        if (strcmp(names[i], name) == 0) return flop[i];
    return 0.0;
}

static int close_to(double a, double b) { return fabs(a - b) <= 1e-9 * fabs(b); }

/* The GEMM profile (armt_ctx_profile_gemm) books every GEMM kernel's time to a site, and each site's FLOPs
 * follow from the weight shapes: wo as wq, wk and wv as wq * kv/q, wd as wq * ffn/q, gate and up each as
 * wd (or both in "wg+wu" when they are one GEMM). Returns the FLOPs booked to "wk+wv". */
static double check_gemm_profile(const armt_ctx *ctx, const armt_config *c, const char **knames,
                                 const double *ksecs, size_t nk, int dual) {
    double kernel_s = 0.0, site_s = 0.0;
    for (size_t i = 0; i < nk && i < 64; i++)
        if (strncmp(knames[i], "armt_gemm", 9) == 0 || strcmp(knames[i], "clblast_sgemm") == 0)
            kernel_s += ksecs[i];
    const char *gn[32];
    double gs[32], gf[32];
    size_t ng = armt_ctx_profile_gemm(ctx, gn, gs, gf, 32);
    ck_assert_uint_gt(ng, 0);
    ck_assert_uint_le(ng, 32);
    for (size_t i = 0; i < ng; i++)
        site_s += gs[i];
    ck_assert_msg(fabs(site_s - kernel_s) <= 1e-6 * kernel_s, "GEMM sites %.9g s, GEMM kernels %.9g s",
                  site_s, kernel_s);
    double q = (double)c->n_heads * c->head_dim, kv = (double)c->n_kv_heads * c->head_dim,
           f = c->intermediate_size;
    double fq = site_flop(gn, gf, ng, "wq"), fd = site_flop(gn, gf, ng, "wd");
    ck_assert(fq > 0.0);
    ck_assert(close_to(site_flop(gn, gf, ng, "wo"), fq));
    /* k and v: one GEMM each, or (Hopper tiles, launches of several work-groups per compute unit pair) one
     * for both, booked as wk+wv */
    const double fkv = site_flop(gn, gf, ng, "wk+wv");
    ck_assert(close_to(site_flop(gn, gf, ng, "wk") + fkv / 2.0, fq * kv / q));
    ck_assert(close_to(site_flop(gn, gf, ng, "wv") + fkv / 2.0, fq * kv / q));
    if (!dual) ck_assert(fkv == 0.0);
    ck_assert(close_to(fd, fq * f / q));
    if (dual) {
        ck_assert(close_to(site_flop(gn, gf, ng, "wg+wu"), 2.0 * fd));
        ck_assert(site_flop(gn, gf, ng, "wg") == 0.0);
    } else {
        ck_assert(close_to(site_flop(gn, gf, ng, "wg"), fd));
        ck_assert(close_to(site_flop(gn, gf, ng, "wu"), fd));
    }
    /* every row of every cell: wq's FLOPs are 2 * rows * q * d with at least one row per token */
    ck_assert(fq / (2.0 * q * c->hidden_size) >= 45.0);
    return fkv;
}

/* A runtime with the tensor-core tiles of set `tiles` (0: mma.sync, 1: Hopper wgmma), real on an NVIDIA
 * GPU that has them, emulated anywhere else; NULL for the wgmma set on a real GPU without wgmma. */
static armt_runtime *tile_runtime(int tiles, int profile) {
    armt_runtime *rt = test_runtime();
    const int real = rt->tune.nv_mma, hopper = rt->info.nv_compute_capability == 90;
    armt_runtime_free(rt);
    if (tiles == 1 && real && !hopper) return NULL;
    armt_runtime_params p = armt_runtime_default_params();
    p.profile = profile;
    p.fp32_gemm =
        ARMT_FP32_GEMM_CLBLAST; /* the fp32 model, the reference, on CLBlast (AUTO: 3xTF32 on GPUs) */
    if (!real) p.tensor_cores = ARMT_TC_EMULATE;
    p.wgmma = tiles == 0 ? ARMT_TC_OFF : real ? ARMT_TC_AUTO : ARMT_TC_ON;
    rt = NULL;
    ck_assert_msg(armt_runtime_create(&p, &rt) == ARMT_OK, "%s", armt_last_error());
    return rt;
}

/* _i = 0: the mma.sync GEMM tiles; 1: the Hopper wgmma tiles (128 x 256 x 64, two warpgroups, 192 KiB of
 * local memory), emulated where the device has no wgmma (on the emulation's smaller tiles, 64 x 256 x 64 on
 * one warpgroup: lib/device/tune.c) */
START_TEST(test_tensor_core_forward) {
    armt_runtime *rt = tile_runtime(_i, 1);
    if (!rt) return; /* a real GPU without wgmma */
    ck_assert_int_eq(rt->tune.mma_wgmma, _i);
    if (_i) ck_assert_int_eq(rt->tune.mma_bn, 256); /* the dual epilogues' tiles */
    armt_config c;
    ck_assert_int_eq(armt_config_preset("tiny", &c), ARMT_OK);
    size_t n = 45, V = (size_t)c.vocab_size;
    int32_t *ids = malloc(n * sizeof *ids);
    test_random_ids(ids, n, c.vocab_size, 9);
    float *out[3];
    int used[3][3] = {{0}}, rope_kernel[3] = {0}, clblast[3] = {0}, mem_read[3] = {0}, narrow[3] = {0};
    armt_stats stats[3];
    for (int run = 0; run < 3; run++) {
        armt_model_params mp = armt_model_default_params();
        mp.seed = 321;
        mp.wmv_std = 0.02f;
        mp.precision = run == 0 ? ARMT_PRECISION_FP32 : ARMT_PRECISION_BF16;
        armt_model *m = NULL;
        ck_assert_msg(armt_model_create_random(rt, &c, &mp, &m) == ARMT_OK, "%s", armt_last_error());
        armt_ctx *ctx = NULL;
        ck_assert_int_eq(armt_ctx_create(m, NULL, &ctx), ARMT_OK);
        out[run] = malloc(n * V * sizeof(float));
        armt_forward_params fp = armt_forward_default_params();
        fp.schedule = run == 2 ? ARMT_SCHEDULE_DIAGONAL : ARMT_SCHEDULE_SEQUENTIAL;
        fp.output = ARMT_OUTPUT_LOGITS_ALL;
        fp.out = out[run];
        fp.out_count = n * V;
        ck_assert_msg(armt_forward(ctx, ids, n, &fp) == ARMT_OK, "%s", armt_ctx_last_error(ctx));
        ck_assert_int_eq(armt_ctx_stats(ctx, &stats[run]), ARMT_OK);
        const char *names[64];
        double secs[64];
        size_t np = armt_ctx_profile(ctx, names, secs, 64);
        for (size_t i = 0; i < np && i < 64; i++) {
            for (int q = 0; q < 3; q++)
                if (strcmp(names[i], tc_kernels[q]) == 0) used[run][q] = 1;
            if (strcmp(names[i], "armt_rope") == 0) rope_kernel[run] = 1;
            if (strcmp(names[i], "clblast_sgemm") == 0) clblast[run] = 1;
            if (strcmp(names[i], "armt_mem_read") == 0) mem_read[run] = 1;
            if (strstr(names[i], "/narrow")) narrow[run] = 1;
        }
        const double fkv = check_gemm_profile(ctx, &c, names, secs, np, run > 0 && _i == 1);
        /* a diagonal step of two or more cells gives the Hopper tiles more than one work-group per two
         * compute units here: k and v run as one GEMM (kv_dual_ok in forward.c) */
        if (run == 2 && _i == 1 && rt->info.compute_units < 4)
            ck_assert_msg(fkv > 0.0, "the diagonal did not multiply k and v together");
        /* a call with no_profile records nothing and keeps the last profiled call's times */
        if (run == 1) {
            fp.no_profile = 1;
            ck_assert_int_eq(armt_ctx_reset(ctx), ARMT_OK);
            ck_assert_msg(armt_forward(ctx, ids, n, &fp) == ARMT_OK, "%s", armt_ctx_last_error(ctx));
            const char *names2[64];
            double secs2[64];
            size_t np2 = armt_ctx_profile(ctx, names2, secs2, 64);
            ck_assert_uint_eq(np2, np);
            for (size_t i = 0; i < np && i < 64; i++) {
                ck_assert_str_eq(names2[i], names[i]);
                ck_assert(secs2[i] == secs[i]);
            }
        }
        if (run > 0) { /* no output: the last layer for its memory rows only, the same memory state */
            const size_t nw = armt_ctx_memory_w_count(ctx), nz = armt_ctx_memory_z_count(ctx);
            float *w1 = malloc(nw * 4), *z1 = malloc(nz * 4), *w2 = malloc(nw * 4), *z2 = malloc(nz * 4);
            ck_assert_int_eq(armt_ctx_memory_get(ctx, w1, z1, NULL), ARMT_OK);
            armt_forward_params fn = armt_forward_default_params();
            fn.schedule = fp.schedule;
            ck_assert_int_eq(armt_ctx_reset(ctx), ARMT_OK);
            ck_assert_msg(armt_forward(ctx, ids, n, &fn) == ARMT_OK, "%s", armt_ctx_last_error(ctx));
            ck_assert_int_eq(armt_ctx_memory_get(ctx, w2, z2, NULL), ARMT_OK);
            ck_assert_msg(memcmp(w1, w2, nw * 4) == 0 && memcmp(z1, z2, nz * 4) == 0,
                          "bf16 %s: memory state with no output differs from the all-logits run's",
                          run == 2 ? "diagonal" : "sequential");
            free(w1), free(z1), free(w2), free(z2);
        }
        armt_ctx_free(ctx);
        armt_model_free(m);
    }
    for (int q = 0; q < 3; q++) {
        ck_assert_msg(!used[0][q], "the fp32 model ran %s", tc_kernels[q]);
        ck_assert_msg(used[1][q] && used[2][q], "the bf16 model did not run %s (seq %d, diag %d)",
                      tc_kernels[q], used[1][q], used[2][q]);
    }
    /* RoPE: the rope kernel in fp32; in bf16 the q and k GEMMs apply it (head dim 16 divides both tiles'
     * columns per thread) */
    ck_assert_msg(rope_kernel[0] && !rope_kernel[1] && !rope_kernel[2], "rope kernel: fp32 %d, bf16 %d / %d",
                  rope_kernel[0], rope_kernel[1], rope_kernel[2]);
    /* the memory read: its own kernel in fp32; in bf16 the read product's GEMM adds into x */
    ck_assert_msg(mem_read[0] && !mem_read[1] && !mem_read[2], "mem_read kernel: fp32 %d, bf16 %d / %d",
                  mem_read[0], mem_read[1], mem_read[2]);
    /* both sets have narrow tiles (64 x 64; the emulation's mma.sync ones 32 x 32), which the memory
     * projections W_mq and W_mk (n = d_mem = 8) run on */
    ck_assert_int_ge(rt->tune.nar_bn, 32);
    ck_assert_msg(!narrow[0] && narrow[1] && narrow[2], "narrow tiles: fp32 %d, bf16 %d / %d", narrow[0],
                  narrow[1], narrow[2]);
    /* every GEMM of a bf16 model on tensor cores is ours, the memory update's too (split into bf16 parts) */
    ck_assert_msg(clblast[0] && !clblast[1] && !clblast[2], "CLBlast: fp32 %d, bf16 %d / %d", clblast[0],
                  clblast[1], clblast[2]);
    /* the sequential schedule makes the same GEMM calls in fp32 and bf16, except that the wgmma tiles
     * multiply gate and up in one call: one call fewer per step */
    ck_assert_uint_eq(stats[1].gemm_calls, stats[0].gemm_calls - (_i ? stats[1].steps : 0));
    double e1 = test_rel_err(out[1], out[0], n * V), e2 = test_rel_err(out[2], out[0], n * V);
    fprintf(stderr, "tiny on tensor cores (%s tiles): bf16 vs fp32 sequential %.3g, diagonal %.3g\n",
            _i ? "wgmma" : "mma.sync", e1, e2);
    for (int run = 0; run < 3; run++)
        free(out[run]);
    free(ids);
    armt_runtime_free(rt);
    ck_assert_msg(e1 <= 2e-2 && e2 <= 2e-2, "bf16 vs fp32: %.3g / %.3g", e1, e2);
}
END_TEST

/* Generation on tensor cores (the decode steps' KV cache, RoPE in the q/k GEMMs at positions pos0 > 0, the
 * fused memory read on every new row, with the fused decode and without): greedy tokens of a bf16 model against the double-precision
 * reference on the same bf16 weights. bf16 operands move the logits a little, so a token is compared while
 * the reference's choice is clear (margin over 2% of the step's largest |logit|); the first token that
 * differs on a closer call ends the comparison of that run. _i as in test_tensor_core_forward.
 * Limit: the tiny random model's greedy tokens follow its residual path (tied embeddings) more than its
 * attention, so a wrong decode position in the fused RoPE (pos0 forced to 0) still passes here; that
 * arithmetic is checked by gemm_bf16_test's RoPE cases (pos0 + r % T against fp64). */
START_TEST(test_tensor_core_generate) {
    armt_runtime *rt = tile_runtime(_i, 0);
    if (!rt) return;
    armt_config c;
    ck_assert_int_eq(armt_config_preset("tiny", &c), ARMT_OK);
    c.segment_size = 8;
    c.num_mem_tokens = 3;
    armt_model_params mp = armt_model_default_params();
    mp.seed = 500;
    mp.wmv_std = 0.05f;
    mp.precision = ARMT_PRECISION_BF16;
    armt_model *m = NULL;
    ck_assert_msg(armt_model_create_random(rt, &c, &mp, &m) == ARMT_OK, "%s", armt_last_error());
    test_host_model *h = test_host_model_read(m);
    const size_t lens[2] = {21, 24};
    const int max_new = 10;
    int compared = 0;
    for (int li = 0; li < 2; li++) {
        size_t n = lens[li];
        int32_t prompt[24], ref_tok[16], tok[16];
        double margin[16];
        test_random_ids(prompt, n, c.vocab_size, 40 + (uint64_t)li);
        ref_state *rs = ref_state_new(&c);
        ck_assert_int_eq(
            ref_armt_generate_greedy_margins(&h->ref, rs, prompt, n, max_new, -1, ref_tok, margin), max_new);
        ref_state_free(rs);
        for (int sch = ARMT_SCHEDULE_SEQUENTIAL; sch <= ARMT_SCHEDULE_DIAGONAL; sch++) {
            armt_ctx *ctx = NULL;
            ck_assert_int_eq(armt_ctx_create(m, NULL, &ctx), ARMT_OK);
            armt_generate_params gp = armt_generate_default_params();
            gp.schedule = (armt_schedule)sch;
            gp.max_new_tokens = max_new;
            ck_assert_msg(armt_generate(ctx, prompt, n, &gp, tok, 16, NULL) == ARMT_OK, "%s",
                          armt_ctx_last_error(ctx));
            for (int i = 0; i < max_new; i++) {
                if (tok[i] != ref_tok[i]) {
                    ck_assert_msg(margin[i] < 0.02,
                                  "prompt %zu, schedule %d: token %d is %d, reference %d by a "
                                  "margin of %.3g",
                                  n, sch, i, tok[i], ref_tok[i], margin[i]);
                    break;
                }
                compared++;
            }
            /* the fused decode the other way round (tune.decode_fuse: the decode attention's combine in its
             * launch, the read's DPFP and row scale in the W_mq GEMV's last work-group): the same tokens */
            int32_t tok2[16];
            rt->tune.decode_fuse = !rt->tune.decode_fuse;
            ck_assert_int_eq(armt_ctx_reset(ctx), ARMT_OK);
            armt_status st = armt_generate(ctx, prompt, n, &gp, tok2, 16, NULL);
            rt->tune.decode_fuse = !rt->tune.decode_fuse;
            ck_assert_msg(st == ARMT_OK, "%s", armt_ctx_last_error(ctx));
            for (int i = 0; i < max_new; i++)
                ck_assert_msg(tok2[i] == tok[i],
                              "prompt %zu, schedule %d: token %d is %d with decode_fuse %d, %d "
                              "with %d",
                              n, sch, i, tok2[i], !rt->tune.decode_fuse, tok[i], rt->tune.decode_fuse);
            armt_ctx_free(ctx);
        }
    }
    fprintf(stderr, "tiny generation on tensor cores (%s tiles): %d of %d tokens equal the reference's\n",
            _i ? "wgmma" : "mma.sync", compared, 4 * max_new);
    /* most tokens are compared, or the test would say little */
    ck_assert_int_ge(compared, 2 * max_new);
    test_host_model_free(h);
    armt_model_free(m);
    armt_runtime_free(rt);
}
END_TEST

/* A bf16 model with a sink and src/armt_sw.py's sliding window on the tensor-core kernels (mma.sync tiles):
 * the forward's attention on bf16 keys with the window's bounds (armt_attention_mma_kvbf16: the k and v
 * projections write bf16 K/V behind the windows, which the gather rounds to bf16), diagonal = sequential bit
 * for bit, logits within bf16 rounding of the double-precision reference on the same bf16 weights, and
 * greedy generation (the tail attending to the window in an fp32 KV cache: armt_attention_mma) equal to the
 * reference's while its choice is clear. */
START_TEST(test_tensor_core_window) {
    armt_runtime *rt = tile_runtime(0, 1);
    armt_config c;
    ck_assert_int_eq(armt_config_preset("tiny", &c), ARMT_OK);
    c.variant = ARMT_VARIANT_ARMT;
    c.use_sink = 1;
    c.sliding_window = 1;
    c.segment_size = 8;
    c.num_mem_tokens = 3;
    armt_model_params mp = armt_model_default_params();
    mp.seed = 510;
    mp.wmv_std = 0.05f;
    mp.precision = ARMT_PRECISION_BF16;
    armt_model *m = NULL;
    ck_assert_msg(armt_model_create_random(rt, &c, &mp, &m) == ARMT_OK, "%s", armt_last_error());
    test_host_model *h = test_host_model_read(m);
    const size_t n = 29, V = (size_t)c.vocab_size;
    int32_t ids[29];
    test_random_ids(ids, n, c.vocab_size, 11);
    double *ref = malloc(n * V * sizeof *ref);
    ref_state *rs = ref_state_new(&c);
    ck_assert_int_eq(ref_armt_forward(&h->ref, rs, ids, n, ref, NULL), 0);
    float *out[2];
    armt_ctx *ctx = NULL;
    ck_assert_int_eq(armt_ctx_create(m, NULL, &ctx), ARMT_OK);
    for (int sch = 0; sch < 2; sch++) {
        out[sch] = malloc(n * V * sizeof(float));
        armt_forward_params fp = armt_forward_default_params();
        fp.schedule = sch ? ARMT_SCHEDULE_DIAGONAL : ARMT_SCHEDULE_SEQUENTIAL;
        fp.output = ARMT_OUTPUT_LOGITS_ALL;
        fp.out = out[sch];
        fp.out_count = n * V;
        ck_assert_int_eq(armt_ctx_reset(ctx), ARMT_OK);
        ck_assert_msg(armt_forward(ctx, ids, n, &fp) == ARMT_OK, "%s", armt_ctx_last_error(ctx));
        const char *names[64];
        double secs[64];
        size_t np = armt_ctx_profile(ctx, names, secs, 64);
        int mma = 0, kvbf16 = 0;
        for (size_t i = 0; i < np && i < 64; i++) {
            mma |= strcmp(names[i], "armt_attention_mma") == 0;
            kvbf16 |= strcmp(names[i], "armt_attention_mma_kvbf16") == 0;
        }
        ck_assert_msg(!mma && kvbf16, "window attention: armt_attention_mma %d, _kvbf16 %d", mma, kvbf16);
        double d = 0, mx = 0;
        for (size_t i = 0; i < n * V; i++) {
            d = fmax(d, fabs(out[sch][i] - ref[i]));
            mx = fmax(mx, fabs(ref[i]));
        }
        ck_assert_msg(d <= 2e-2 * mx, "bf16 window on tensor cores: %.3g of %.3g from the reference", d, mx);
    }
    ck_assert_msg(memcmp(out[0], out[1], n * V * sizeof(float)) == 0, "window: diagonal != sequential");
    /* generation: prompt of two segments and 5, 10 new tokens (past the segment) */
    int32_t tok[10], want[10];
    double margin[10];
    ref_state_reset(rs);
    ck_assert_int_eq(ref_armt_generate_greedy_margins(&h->ref, rs, ids, 21, 10, -1, want, margin), 10);
    armt_generate_params gp = armt_generate_default_params();
    gp.max_new_tokens = 10;
    ck_assert_int_eq(armt_ctx_reset(ctx), ARMT_OK);
    ck_assert_msg(armt_generate(ctx, ids, 21, &gp, tok, 10, NULL) == ARMT_OK, "%s", armt_ctx_last_error(ctx));
    int compared = 0;
    for (int i = 0; i < 10 && (tok[i] == want[i] || margin[i] >= 0.02); i++, compared++)
        ck_assert_msg(tok[i] == want[i], "window generation: token %d is %d, reference %d by %.3g", i, tok[i],
                      want[i], margin[i]);
    fprintf(stderr, "window generation on tensor cores: %d of 10 tokens equal the reference's\n", compared);
    ck_assert_int_ge(compared, 5);
    free(out[0]);
    free(out[1]);
    free(ref);
    ref_state_free(rs);
    armt_ctx_free(ctx);
    test_host_model_free(h);
    armt_model_free(m);
    armt_runtime_free(rt);
}
END_TEST

static Suite *suite(void) {
    Suite *s = suite_create("tensor_cores");
    TCase *tc = test_tcase(s, "tensor_cores", 600);
    tcase_add_loop_test(tc, test_tensor_core_forward, 0, 2);
    tcase_add_loop_test(tc, test_tensor_core_generate, 0, 2);
    tcase_add_test(tc, test_tensor_core_window);
    return s;
}

int main(void) { return test_run_suite(suite(), 1); }
