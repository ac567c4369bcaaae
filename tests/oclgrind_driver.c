/*
 * oclgrind_driver.c - launches every kernel of cl/ once or a few times on tiny shapes, for `make
 * check-oclgrind`, which runs it under Oclgrind (an OpenCL device simulator that reports data races,
 * out-of-bounds and uninitialised accesses, and API errors; tests/oclgrind.sh).
 *
 *   oclgrind_driver SET     SET: fp32      the fp32 model: embed, norms, RoPE, attention, SwiGLU, every
 *                                          memory kernel, CLBlast's GEMMs, random weights
 *                                bf16      a bf16 model on the portable kernels (tensor cores off)
 *                                bf16-mma  the tensor-core kernels through their emulation (mma.sync tiles)
 *                                bf16-wgmma  the same with the wgmma tiles' emulation
 *                                fp32-tf32   the fp32 model with its GEMMs on the 3xTF32 kernel's emulation
 *
 * Each set runs its model through every schedule with every output (two segments and a partial one, so that
 * a diagonal step holds several cells), a generation, a state save/restore and a reset, with profiling on;
 * it prints the kernels the profile saw ("kernel: NAME") and exits 0 when every call succeeded. The
 * kernels no set saw are reported by tests/oclgrind.sh (the union over the sets must be all of them).
 */
#include "config.h"

#include "armt.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define N_TOKENS 13 /* segment 6: two full segments and one of a single token */

static int fail(const char *what, armt_status st, const char *msg) {
    fprintf(stderr, "oclgrind_driver: %s: %s: %s\n", what, armt_status_str(st), msg);
    return 1;
}

static void seen_kernels(armt_ctx *ctx, char seen[][64], int *n_seen) {
    const char *names[128];
    double secs[128];
    size_t n = armt_ctx_profile(ctx, names, secs, 128);
    for (size_t i = 0; i < n && i < 128; i++) {
        int found = 0;
        for (int j = 0; j < *n_seen; j++)
            found |= strcmp(seen[j], names[i]) == 0;
        if (!found && *n_seen < 128) snprintf(seen[(*n_seen)++], 64, "%s", names[i]);
    }
}

int main(int argc, char **argv) {
    const char *set = argc > 1 ? argv[1] : "fp32";
    armt_runtime_params rp = armt_runtime_default_params();
    rp.profile = 1;
    armt_model_params mp = armt_model_default_params();
    mp.wmv_std = 0.05f;
    mp.seed = 7;
    mp.segment_size = 6;
    if (strcmp(set, "fp32") == 0) {
        mp.precision = ARMT_PRECISION_FP32;
        rp.tensor_cores = ARMT_TC_OFF;
    } else if (strcmp(set, "bf16") == 0) {
        mp.precision = ARMT_PRECISION_BF16;
        rp.tensor_cores = ARMT_TC_OFF;
    } else if (strcmp(set, "bf16-mma") == 0) {
        mp.precision = ARMT_PRECISION_BF16;
        rp.tensor_cores = ARMT_TC_EMULATE;
        rp.wgmma = ARMT_TC_OFF;
    } else if (strcmp(set, "bf16-wgmma") == 0) {
        mp.precision = ARMT_PRECISION_BF16;
        rp.tensor_cores = ARMT_TC_EMULATE;
        rp.wgmma = ARMT_TC_ON;
    } else if (strcmp(set, "fp32-tf32") == 0) {
        mp.precision = ARMT_PRECISION_FP32;
        rp.tensor_cores = ARMT_TC_EMULATE;
        rp.wgmma = ARMT_TC_OFF;
        rp.fp32_gemm = ARMT_FP32_GEMM_TF32X3;
    } else {
        fprintf(stderr, "usage: oclgrind_driver fp32|bf16|bf16-mma|bf16-wgmma|fp32-tf32\n");
        return 2;
    }
    armt_runtime *rt = NULL;
    armt_status st = armt_runtime_create(&rp, &rt);
    if (st != ARMT_OK) return fail("runtime", st, armt_last_error());
    armt_device_info info;
    if (armt_runtime_device_info(rt, &info) == ARMT_OK)
        printf("device: %s (%s)\n", info.name, info.platform_name);
    armt_config c;
    (void)armt_config_preset("tiny", &c);
    c.n_layers = 2;
    c.vocab_size = 96;
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
    int n_seen = 0, rc = 0;
    for (int s = 0; s < 3 && !rc; s++)
        for (int o = 0; o < 4 && !rc; o++) {
            armt_forward_params fp = armt_forward_default_params();
            fp.schedule = (armt_schedule)s;
            fp.output = (armt_output)o;
            fp.out = out;
            fp.out_count = armt_output_count(m, fp.output, N_TOKENS);
            fp.all_rows = o == 0 && s == 1; /* once with every row of the last layer */
            st = armt_forward(ctx, ids, N_TOKENS, &fp);
            if (st != ARMT_OK) rc = fail("forward", st, armt_ctx_last_error(ctx));
            seen_kernels(ctx, seen, &n_seen);
            /* one call of a single token too (a one-row cell) */
            if (!rc && o == 2) {
                st = armt_forward(ctx, ids, 1, &fp);
                if (st != ARMT_OK) rc = fail("forward", st, armt_ctx_last_error(ctx));
                seen_kernels(ctx, seen, &n_seen);
            }
        }
    if (!rc) {
        size_t nw = armt_ctx_memory_w_count(ctx), nz = armt_ctx_memory_z_count(ctx);
        float *w = malloc(nw * 4), *z = malloc(nz * 4);
        uint8_t wr[16];
        st = armt_ctx_memory_get(ctx, w, z, wr);
        if (st == ARMT_OK) st = armt_ctx_reset(ctx);
        if (st == ARMT_OK) st = armt_ctx_memory_set(ctx, w, z, wr);
        if (st != ARMT_OK) rc = fail("state", st, armt_ctx_last_error(ctx));
        free(w);
        free(z);
    }
    if (!rc) {
        armt_generate_params gp = armt_generate_default_params();
        gp.max_new_tokens = 3;
        int32_t gen[3];
        st = armt_generate(ctx, ids, N_TOKENS, &gp, gen, 3, NULL);
        if (st != ARMT_OK) rc = fail("generate", st, armt_ctx_last_error(ctx));
    }
    for (int i = 0; i < n_seen; i++)
        printf("kernel: %s\n", seen[i]);
    free(out);
    armt_ctx_free(ctx);
    armt_model_free(m);
    armt_runtime_free(rt);
    if (!rc) printf("oclgrind_driver %s: done\n", set);
    return rc;
}
