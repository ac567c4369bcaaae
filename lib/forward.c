/*
 * forward.c - the three schedules over the same kernels and weights.
 *
 *   sequential  for s: for l: cell (l, s)                                S * Lyr steps of one cell
 *   diagonal    for d: all cells (l, s) with l + s = d                   S + Lyr - 1 steps of G <= min(S, Lyr) cells
 *   full        the base LLaMA over all n tokens (no memory, no segments) Lyr steps of one cell of n rows
 *
 * One step (run_step) is: all memory reads, then the decoder layer for every cell, then all memory writes
 * (ARMT.md 7.2 and 12.4). Every linear operation of a step is one CLBlast batched GEMM over the step's
 * cells, each entry addressing its own layer's weights by offset in the role's buffer; the other operations
 * are one launch per step over all cells (the kernels find a cell's layer and residual slot from
 * l0, s0 and cap, see cl/common.cl).
 */
#include "config.h"

#include "forward_internal.h"

#include <clblast_c.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* Rows of final-normed output produced per emission block (bounds the logits scratch). */
#define OUT_BLOCK_ROWS 512

armt_forward_params armt_forward_default_params(void) {
    armt_forward_params p;
    memset(&p, 0, sizeof p);
    p.schedule = ARMT_SCHEDULE_DIAGONAL;
    p.output = ARMT_OUTPUT_NONE;
    return p;
}

size_t armt_output_count(const armt_model *m, armt_output o, size_t n) {
    if (!m) return 0;
    switch (o) {
    case ARMT_OUTPUT_LOGITS_ALL: return n * (size_t)m->cfg.vocab_size;
    case ARMT_OUTPUT_LOGITS_LAST: return (size_t)m->cfg.vocab_size;
    case ARMT_OUTPUT_HIDDEN: return n * (size_t)m->cfg.hidden_size;
    default: return 0;
    }
}

/* ======================================================================================================= */
/* Scratch                                                                                                 */
/* ======================================================================================================= */

/* The k of the memory update's bf16 GEMM (mem_update): M padded to a multiple of 8, three times. */
static size_t mem_update_k(const armt_config *c) { return 3 * (((size_t)c->num_mem_tokens + 7) / 8 * 8); }

/* Bytes of ctx->abf for `cells` cells of `rows` rows: bf16 models whose GEMMs have the bf16-A tensor-core
 * kernel (else none). It holds one bf16 GEMM operand of the widest rows, or both of the memory update. */
static size_t abf_bytes(const armt_ctx *ctx, size_t cells, size_t rows) {
    const armt_config *c = &ctx->model->cfg;
    if (ctx->model->precision != ARMT_PRECISION_BF16 || !ctx->k[ARMT_K_GEMM_BF16BF16_MMA]) return 0;
    size_t w = (size_t)c->hidden_size, qd = (size_t)c->n_heads * c->head_dim, f = (size_t)c->intermediate_size;
    size_t dk = (size_t)armt_config_d_key(c);
    if (qd > w) w = qd;
    if (f > w) w = f;
    if (dk > w) w = dk;
    size_t rows_bytes = cells * rows * w * 2, update_bytes = cells * mem_update_k(c) * (dk + (size_t)c->hidden_size) * 2;
    return rows_bytes > update_bytes ? rows_bytes : update_bytes;
}

/* GEMM operands may be passed in bf16 (ctx->abf holds them): bf16 models on tensor cores. */
static int bf16_operands(const armt_ctx *ctx) { return abf_bytes(ctx, 1, 1) > 0 && ctx->abf; }

/* RoPE in the q and k GEMMs' epilogue: the bf16 x bf16 tensor-core kernel with the product's rows already
 * staged in bf16, a head dimension the epilogue has (16, 32, 64, 128) that divides both the columns each
 * thread holds (the 256-wide Hopper tiles; 64 per warp with mma.sync) and the q and k widths. */
static int rope_fused(const fwd *F) {
    const armt_ctx *ctx = F->ctx;
    const armt_device_tuning *t = &ctx->rt->tune;
    int span = t->mma_wgmma ? t->mma_bn : t->mma_bn / t->mma_warps_n;
    int hd = F->hd;
    return bf16_operands(ctx) && F->abf_src == ctx->h && (hd == 16 || hd == 32 || hd == 64 || hd == 128) &&
           span % hd == 0 && F->d % 8 == 0;
}

/* Two weights in one GEMM (epi_dual): the Hopper tiles (256 wide: 128 columns of each, each thread holding
 * both of an element) and bf16 weights of both roles chunked alike, so that a layer's offsets agree. */
static int paired_weights(const armt_ctx *ctx, armt_role a, armt_role b) {
    const armt_device_tuning *t = &ctx->rt->tune;
    const armt_weight *wa = &ctx->model->w[a], *wb = &ctx->model->w[b];
    return t->mma_wgmma && t->mma_bn == 256 && ctx->k[ARMT_K_GEMM_BF16BF16_MMA] && wa->bf16 && wb->bf16 &&
           wa->layers_per_chunk == wb->layers_per_chunk;
}

/* 1: a launch of wgs work-groups on the main tiles gives at most one to two compute units; the narrow tiles
 * (16x as many work-groups) fill more of the GPU there (see gemm_bf16_entries). */
static int few_workgroups(const armt_ctx *ctx, size_t wgs) {
    return 2 * wgs <= (size_t)ctx->rt->info.compute_units;
}

/* Gate and up in one GEMM (epi_dual 1). */
static int gate_up_dual(const armt_ctx *ctx) { return paired_weights(ctx, ARMT_ROLE_WG, ARMT_ROLE_WU); }

/* k and v in one GEMM (epi_dual 2), unless the launch has few work-groups: then the narrow tiles serve k and
 * v better, one GEMM each. */
static int kv_dual_ok(const armt_ctx *ctx, size_t kvd, size_t G, size_t T) {
    const armt_device_tuning *t = &ctx->rt->tune;
    const size_t half = (size_t)t->mma_bn / 2, bm = (size_t)(t->mma_bm > 0 ? t->mma_bm : 1);
    const size_t wgs = (kvd + half - 1) / half * G * ((T + bm - 1) / bm);
    return t->kv_dual && paired_weights(ctx, ARMT_ROLE_WK, ARMT_ROLE_WV) && !few_workgroups(ctx, wgs);
}

void armt_ctx_release_scratch(armt_ctx *ctx) {
    /* sizes are recomputed from the capacity they were made with */
    const armt_config *c = &ctx->model->cfg;
    size_t R = ctx->cap_cells * ctx->cap_rows, C = ctx->cap_cells, M = (size_t)c->num_mem_tokens;
    size_t d = (size_t)c->hidden_size, qd = (size_t)c->n_heads * c->head_dim, kvd = (size_t)c->n_kv_heads * c->head_dim;
    size_t f = (size_t)c->intermediate_size, dk = (size_t)armt_config_d_key(c), dm = (size_t)c->d_mem;
    size_t mrows = C * M > R ? C * M : R; /* mq / phi also hold the write's G*M rows */
    armt_buffer_release(ctx->rt, &ctx->x, R * d * 4);
    armt_buffer_release(ctx->rt, &ctx->h, R * d * 4);
    armt_buffer_release(ctx->rt, &ctx->q, R * qd * 4);
    armt_buffer_release(ctx->rt, &ctx->kk, R * kvd * 4);
    armt_buffer_release(ctx->rt, &ctx->vv, R * kvd * 4);
    armt_buffer_release(ctx->rt, &ctx->att, R * qd * 4);
    armt_buffer_release(ctx->rt, &ctx->f1, R * f * 4);
    armt_buffer_release(ctx->rt, &ctx->f2, R * f * 4);
    armt_buffer_release(ctx->rt, &ctx->mq, mrows * dm * 4);
    armt_buffer_release(ctx->rt, &ctx->phi, mrows * dk * 4);
    armt_buffer_release(ctx->rt, &ctx->mrows, C * M * d * 4);
    armt_buffer_release(ctx->rt, &ctx->vnew, C * M * d * 4);
    armt_buffer_release(ctx->rt, &ctx->vprev, C * M * d * 4);
    armt_buffer_release(ctx->rt, &ctx->wstat, C * M * 4 * 4);
    armt_buffer_release(ctx->rt, &ctx->rope, ctx->rope_rows * (size_t)c->head_dim * 4);
    armt_buffer_release(ctx->rt, &ctx->ids, ctx->ids_cap * 4);
    armt_buffer_release(ctx->rt, &ctx->out_rows, ctx->out_rows_cap * d * 4);
    armt_buffer_release(ctx->rt, &ctx->logits, ctx->out_rows_cap * (size_t)c->vocab_size * 4);
    armt_buffer_release(ctx->rt, &ctx->abf, abf_bytes(ctx, ctx->cap_cells, ctx->cap_rows));
    ctx->cap_cells = ctx->cap_rows = ctx->rope_rows = ctx->ids_cap = ctx->out_rows_cap = 0;
    ctx->scratch_bytes = 0;
}

/* Makes the scratch hold `cells` cells of `rows` rows (and the other per-call buffers). Growing releases
 * and re-allocates everything; the memory state is not touched. */
armt_status armt_fwd_scratch(fwd *F, size_t cells, size_t rows, size_t rope_rows, size_t n_ids,
                                  size_t out_rows) {
    armt_ctx *ctx = F->ctx;
    armt_err *err = F->err;
    if (cells <= ctx->cap_cells && rows <= ctx->cap_rows && rope_rows <= ctx->rope_rows && n_ids <= ctx->ids_cap &&
        out_rows <= ctx->out_rows_cap)
        return ARMT_OK;
    if (cells < ctx->cap_cells) cells = ctx->cap_cells;
    if (rows < ctx->cap_rows) rows = ctx->cap_rows;
    if (rope_rows < ctx->rope_rows) rope_rows = ctx->rope_rows;
    if (n_ids < ctx->ids_cap) n_ids = ctx->ids_cap;
    if (out_rows < ctx->out_rows_cap) out_rows = ctx->out_rows_cap;
    armt_ctx_release_scratch(ctx);
    const armt_config *c = F->cfg;
    /* the largest products below must not wrap (absurd lengths or widths are "does not fit", not a crash) */
    size_t widest = (size_t)F->ffn > (size_t)F->V ? (size_t)F->ffn : (size_t)F->V, probe;
    if ((size_t)F->dk > widest) widest = (size_t)F->dk;
    if ((size_t)F->nh * (size_t)F->hd > widest) widest = (size_t)F->nh * (size_t)F->hd;
    if ((size_t)F->d > widest) widest = (size_t)F->d;
    size_t mem_rows;
    if (__builtin_mul_overflow(cells, (size_t)F->M, &mem_rows) || __builtin_mul_overflow(cells, rows, &probe) ||
        __builtin_add_overflow(probe, mem_rows + out_rows + rope_rows + n_ids, &probe) ||
        __builtin_mul_overflow(probe, widest, &probe) ||
        __builtin_mul_overflow(probe, (size_t)16, &probe))
        return armt_err_set(err, ARMT_STATUS_OUT_OF_DEVICE_MEMORY,
                            "forward scratch: %zu cells of %zu rows are too large to address", cells, rows);
    size_t R = cells * rows, C = cells, M = (size_t)c->num_mem_tokens;
    size_t d = (size_t)F->d, qd = (size_t)F->nh * F->hd, kvd = (size_t)F->nkv * F->hd, f = (size_t)F->ffn;
    size_t dk = (size_t)F->dk, dm = (size_t)F->dm;
    size_t mrows = C * M > R ? C * M : R;
    size_t sizes[] = {R * d * 4, R * d * 4, R * qd * 4, R * kvd * 4, R * kvd * 4, R * qd * 4, R * f * 4, R * f * 4,
                      mrows * dm * 4, mrows * dk * 4, C * M * d * 4, C * M * d * 4, C * M * d * 4, C * M * 16,
                      rope_rows * (size_t)F->hd * 4, n_ids * 4, out_rows * d * 4, out_rows * (size_t)F->V * 4,
                      abf_bytes(ctx, cells, rows)};
    size_t nsz = sizeof sizes / sizeof sizes[0];
    ARMT_TRY(armt_device_fits(ctx->rt, sizes, nsz, "forward scratch", err));
    cl_mem *bufs[] = {&ctx->x, &ctx->h, &ctx->q, &ctx->kk, &ctx->vv, &ctx->att, &ctx->f1, &ctx->f2, &ctx->mq,
                      &ctx->phi, &ctx->mrows, &ctx->vnew, &ctx->vprev, &ctx->wstat, &ctx->rope, &ctx->ids,
                      &ctx->out_rows, &ctx->logits, &ctx->abf};
    /* record the capacity first so a partial failure releases what was made */
    ctx->cap_cells = cells;
    ctx->cap_rows = rows;
    ctx->rope_rows = rope_rows;
    ctx->ids_cap = n_ids;
    ctx->out_rows_cap = out_rows;
    for (size_t i = 0; i < nsz; i++) {
        armt_status st = armt_buffer_create(ctx->rt, sizes[i], bufs[i], "forward scratch", err);
        if (st != ARMT_OK) {
            armt_ctx_release_scratch(ctx);
            return st;
        }
        ctx->scratch_bytes += sizes[i] ? sizes[i] : 4;
    }
    /* RoPE table: per position, cos then sin of the head_dim/2 frequencies (llama3 scaling when set) */
    float *tab = malloc(rope_rows * (size_t)F->hd * sizeof *tab);
    if (!tab) {
        armt_ctx_release_scratch(ctx);
        return armt_err_set(err, ARMT_STATUS_OUT_OF_HOST_MEMORY, "forward: out of host memory");
    }
    int half = F->hd / 2;
    double *inv = malloc((size_t)half * sizeof *inv);
    if (!inv) {
        free(tab);
        armt_ctx_release_scratch(ctx);
        return armt_err_set(err, ARMT_STATUS_OUT_OF_HOST_MEMORY, "forward: out of host memory");
    }
    for (int i = 0; i < half; i++) {
        double f0 = pow(c->rope_theta, -2.0 * i / (double)F->hd);
        if (c->rope_type == ARMT_ROPE_LLAMA3) {
            double lo_wl = c->rope_original_max_pos / c->rope_low_freq_factor;
            double hi_wl = c->rope_original_max_pos / c->rope_high_freq_factor;
            double wl = 2.0 * M_PI / f0;
            if (wl < hi_wl) {
                /* high frequency: unchanged */
            } else if (wl > lo_wl) {
                f0 = f0 / c->rope_factor;
            } else {
                double s = (c->rope_original_max_pos / wl - c->rope_low_freq_factor) /
                           (c->rope_high_freq_factor - c->rope_low_freq_factor);
                f0 = (1.0 - s) * f0 / c->rope_factor + s * f0;
            }
        }
        inv[i] = f0;
    }
    for (size_t p = 0; p < rope_rows; p++)
        for (int i = 0; i < half; i++) {
            double a = (double)p * inv[i];
            tab[p * (size_t)F->hd + (size_t)i] = (float)cos(a);
            tab[p * (size_t)F->hd + (size_t)half + (size_t)i] = (float)sin(a);
        }
    free(inv);
    cl_int e = clEnqueueWriteBuffer(ctx->queue, ctx->rope, CL_TRUE, 0, rope_rows * (size_t)F->hd * 4, tab, 0, NULL, NULL);
    free(tab);
    if (e != CL_SUCCESS) {
        armt_ctx_release_scratch(ctx);
        return armt_err_cl(err, "clEnqueueWriteBuffer(rope table)", e);
    }
    return ARMT_OK;
}

/* The ids of the call: a blocking write, so the caller's array may go away as soon as forward returns. */
armt_status armt_fwd_upload_ids(fwd *F, size_t first, size_t count) {
    armt_err *err = F->err;
    ARMT_CL_TRY(clEnqueueWriteBuffer(F->ctx->queue, F->ctx->ids, CL_TRUE, first * sizeof(int32_t),
                                     count * sizeof(int32_t), F->ids + first, 0, NULL, NULL));
    return ARMT_OK;
}

/* ======================================================================================================= */
/* GEMM                                                                                                    */
/* ======================================================================================================= */

/* Equal steps between consecutive entries (stride >= 0)? */
static int uniform(const size_t *off, size_t count, size_t *stride) {
    *stride = count > 1 && off[1] >= off[0] ? off[1] - off[0] : 0;
    for (size_t j = 1; j < count; j++)
        if (off[j] < off[j - 1] || off[j] - off[j - 1] != *stride) return 0;
    return 1;
}

/* One batched GEMM: C_j = A_j op(B_j) + beta C_j for j < count (row-major, offsets in elements).
 * One entry goes to CLBlast's plain GEMM (the sequential schedule's calls are ordinary GEMMs); equally
 * spaced entries to the strided batched routine; the rest (the residual stream's ring of slots) to the
 * batched routine with per-entry offsets. Each counts as one GEMM call. skip_last > 0 (A not transposed):
 * the last entry's rows from skip_last on only, in a call of its own. */
static armt_status gemm_batched(fwd *F, int trans_a, int trans_b, size_t m, size_t n, size_t k, cl_mem a,
                                size_t lda, cl_mem b, size_t ldb, cl_mem c, size_t ldc, float beta, size_t count,
                                const size_t *a_off, const size_t *b_off, const size_t *c_off, size_t skip_last) {
    if (count == 0 || m == 0 || n == 0) return ARMT_OK;
    if (skip_last > 0 && skip_last < m && !trans_a) {
        ARMT_TRY(gemm_batched(F, trans_a, trans_b, m, n, k, a, lda, b, ldb, c, ldc, beta, count - 1, a_off, b_off,
                              c_off, 0));
        const size_t ao = a_off[count - 1] + skip_last * lda, co = c_off[count - 1] + skip_last * ldc;
        return gemm_batched(F, trans_a, trans_b, m - skip_last, n, k, a, lda, b, ldb, c, ldc, beta, 1, &ao,
                            b_off + count - 1, &co, 0);
    }
    CLBlastTranspose ta = trans_a ? CLBlastTransposeYes : CLBlastTransposeNo;
    CLBlastTranspose tb = trans_b ? CLBlastTransposeYes : CLBlastTransposeNo;
    cl_command_queue *q = &F->ctx->queue;
    cl_event ev = NULL, *evp = F->ctx->prof_on ? &ev : NULL;
    size_t sa, sb, sc;
    CLBlastStatusCode s;
    const char *what;
    if (count == 1) {
        what = "CLBlastSgemm";
        s = CLBlastSgemm(CLBlastLayoutRowMajor, ta, tb, m, n, k, 1.0f, a, a_off[0], lda, b, b_off[0], ldb, beta, c,
                         c_off[0], ldc, q, evp);
    } else if (uniform(a_off, count, &sa) && uniform(b_off, count, &sb) && uniform(c_off, count, &sc)) {
        what = "CLBlastSgemmStridedBatched";
        s = CLBlastSgemmStridedBatched(CLBlastLayoutRowMajor, ta, tb, m, n, k, 1.0f, a, a_off[0], lda, sa, b,
                                       b_off[0], ldb, sb, beta, c, c_off[0], ldc, sc, count, q, evp);
    } else {
        what = "CLBlastSgemmBatched";
        for (size_t j = 0; j < count; j++) {
            F->alphas[j] = 1.0f;
            F->betas[j] = beta;
        }
        s = CLBlastSgemmBatched(CLBlastLayoutRowMajor, ta, tb, m, n, k, F->alphas, a, a_off, lda, b, b_off, ldb,
                                F->betas, c, c_off, ldc, count, q, evp);
    }
    if (s != CLBlastSuccess) return armt_err_clblast(F->err, what, s);
    armt_ctx_prof_add_gemm(F->ctx, ARMT_PROF_CLBLAST, ev, 2.0 * (double)m * (double)n * (double)k * (double)count);
    F->ctx->stats.gemm_calls++;
    return ARMT_OK;
}

/* ======================================================================================================= */
/* bf16 weights: our own batched GEMM (cl/gemm_bf16.cl)                                                    */
/* ======================================================================================================= */

/* C_j = A_j W_j^T (+ C_j) over `count` entries with element offsets a_off/w_off/c_off, W a bf16 buffer. The
 * kernel addresses entry j at base + j * stride; entries are cut into runs with constant steps (a step may
 * be negative: the offsets are ulong and wrap, which is what the residual stream's ring of slots needs),
 * one launch per run. The tensor-core kernel runs when the device has it and the alignment allows.
 * skip_last > 0: the last entry needs only its rows from skip_last on (the kernels' last_row0: whole tiles
 * of rows below it are skipped in the same launch). */
static armt_status gemm_bf16_entries(fwd *F, size_t m, size_t n, size_t k, cl_mem a, size_t lda, cl_mem w, cl_mem c,
                                     size_t ldc, float beta, size_t count, const size_t *a_off,
                                     const size_t *w_off, const size_t *c_off, size_t skip_last) {
    armt_err *err = F->err;
    armt_ctx *ctx = F->ctx;
    const armt_device_tuning *t = &ctx->rt->tune;
    int mma = ctx->k[ARMT_K_GEMM_BF16_MMA] != NULL && k % 8 == 0 && lda % 4 == 0;
    for (size_t j = 0; mma && j < count; j++) mma = a_off[j] % 4 == 0 && w_off[j] % 8 == 0;
    /* A staged in bf16 (stage_bf16): the bf16 x bf16 kernel reads ctx->abf at the same offsets */
    int bb = mma && a == F->abf_src && ctx->k[ARMT_K_GEMM_BF16BF16_MMA] != NULL && lda % 8 == 0;
    for (size_t j = 0; bb && j < count; j++) bb = a_off[j] % 8 == 0;
    /* an operand that exists only in bf16 (SwiGLU's output) or an epilogue only the mma kernels have: the
     * callers make sure the conditions above hold, so this is a guard against a change breaking that */
    if ((a == F->abf_src && F->abf_only && !bb) || ((F->epi_gate || F->epi_bf16) && !mma) ||
        ((F->epi_w2 || F->epi_rope || F->epi_rowscale) && !bb))
        return armt_err_set(err, ARMT_STATUS_UNSUPPORTED, "bf16 GEMM: operand layout not supported by the "
                            "tensor-core kernels (m %zu, n %zu, k %zu, lda %zu)", m, n, k, lda);
    if (bb) a = F->abf_buf;
    armt_kernel_id id = bb ? ARMT_K_GEMM_BF16BF16_MMA : mma ? ARMT_K_GEMM_BF16_MMA : ARMT_K_GEMM_BF16;
    /* The narrow tiles (where built): for narrow outputs (W_mq, W_mk: n = d_mem), and for launches that
     * would give the main tiles at most one work-group per two compute units (one cell of few rows or
     * columns: the sequential schedule's k and v, the last layer's cell with its unread rows skipped,
     * generation), where their 16x as many work-groups fill more of the GPU: on the H200, k/v on one
     * cell of 1152 rows 0.038 -> 0.021 ms, o and down on 128 rows 0.041 -> 0.019 and 0.127 -> 0.056 ms
     * (bench/results/2026-11-28-h200-narrow-for-small-launches.txt). Not for the SwiGLU epilogues and the
     * row scales (main tiles only), nor RoPE where a thread's columns do not hold whole heads. */
    armt_kernel_id nid = bb ? ARMT_K_GEMM_BF16BF16_MMA_NARROW : ARMT_K_GEMM_BF16_MMA_NARROW;
    const size_t main_wgs = (n + (size_t)t->mma_bn - 1) / (size_t)t->mma_bn *
                            (count * ((m + (size_t)t->mma_bm - 1) / (size_t)t->mma_bm) - skip_last / (size_t)t->mma_bm);
    const int nar_span = t->mma_wgmma ? t->nar_bn : t->nar_bn / (t->nar_warps_n ? t->nar_warps_n : 1);
    const int narrow = mma && ctx->k[nid] && !F->epi_gate && !F->epi_w2 && !F->epi_rowscale &&
                       (n <= (size_t)t->nar_bn ? !F->epi_rope && !F->epi_bf16
                                               : few_workgroups(ctx, main_wgs) &&
                                                     (!F->epi_rope || (nar_span > 0 && nar_span % F->hd == 0)));
    if (narrow) id = nid;
    cl_kernel kk = ctx->k[id];
    int mi = (int)m, ni = (int)n, ki = (int)k, ldai = (int)lda, ldci = (int)ldc, betai = beta != 0.0f;
    ARMT_CL_TRY(ARMT_ARG(kk, 0, mi));
    ARMT_CL_TRY(ARMT_ARG(kk, 1, ni));
    ARMT_CL_TRY(ARMT_ARG(kk, 2, ki));
    ARMT_CL_TRY(ARMT_ARG(kk, 3, a));
    ARMT_CL_TRY(ARMT_ARG(kk, 4, ldai));
    ARMT_CL_TRY(ARMT_ARG(kk, 5, w));
    ARMT_CL_TRY(ARMT_ARG(kk, 6, c));
    ARMT_CL_TRY(ARMT_ARG(kk, 7, ldci));
    ARMT_CL_TRY(ARMT_ARG(kk, 8, betai));
    ARMT_CL_TRY(clSetKernelArg(kk, 9, sizeof(cl_mem), NULL)); /* strided mode */
    if (mma) { /* the SwiGLU epilogues, or none (a NULL cl_mem value passes NULL: OpenCL 1.2, 5.7.2) */
        cl_mem out = F->epi_gate || F->epi_w2 || F->epi_bf16 ? F->epi_out : NULL;
        ARMT_CL_TRY(ARMT_ARG(kk, 16, F->epi_gate));
        ARMT_CL_TRY(ARMT_ARG(kk, 17, out));
        if (bb) { /* gate and up in one GEMM: the up weights (same offsets), or none; RoPE, or none */
            cl_ulong shift = 0;
            cl_mem tab = F->epi_rope ? ctx->rope : NULL;
            ARMT_CL_TRY(ARMT_ARG(kk, 18, F->epi_w2));
            ARMT_CL_TRY(ARMT_ARG(kk, 19, shift));
            ARMT_CL_TRY(ARMT_ARG(kk, 20, tab));
            ARMT_CL_TRY(ARMT_ARG(kk, 21, F->hd));
            ARMT_CL_TRY(ARMT_ARG(kk, 22, F->rope_T));
            ARMT_CL_TRY(ARMT_ARG(kk, 23, F->rope_pos0));
            ARMT_CL_TRY(ARMT_ARG(kk, 24, F->epi_rowscale));
            ARMT_CL_TRY(ARMT_ARG(kk, 25, F->epi_out2)); /* k and v in one GEMM: v's output, or none */
        }
    }
    size_t j = 0;
    while (j < count) {
        /* the longest run from j with constant steps */
        size_t e = j + 1;
        cl_ulong sa = 0, sw = 0, sc = 0;
        if (e < count) {
            sa = (cl_ulong)a_off[e] - (cl_ulong)a_off[j];
            sw = (cl_ulong)w_off[e] - (cl_ulong)w_off[j];
            sc = (cl_ulong)c_off[e] - (cl_ulong)c_off[j];
            e++;
            while (e < count && (cl_ulong)a_off[e] - (cl_ulong)a_off[e - 1] == sa &&
                   (cl_ulong)w_off[e] - (cl_ulong)w_off[e - 1] == sw &&
                   (cl_ulong)c_off[e] - (cl_ulong)c_off[e - 1] == sc)
                e++;
        }
        cl_ulong ab = a_off[j], wb = w_off[j], cb = c_off[j];
        ARMT_CL_TRY(ARMT_ARG(kk, 10, ab));
        ARMT_CL_TRY(ARMT_ARG(kk, 11, sa));
        ARMT_CL_TRY(ARMT_ARG(kk, 12, wb));
        ARMT_CL_TRY(ARMT_ARG(kk, 13, sw));
        ARMT_CL_TRY(ARMT_ARG(kk, 14, cb));
        ARMT_CL_TRY(ARMT_ARG(kk, 15, sc));
        /* the launch that holds the last entry skips its unneeded rows (their FLOPs are not counted) */
        const int last_row0 = e == count && skip_last < m ? (int)skip_last : 0;
        ARMT_CL_TRY(ARMT_ARG(kk, bb ? 26 : mma ? 18 : 16, last_row0));
        size_t gws[3], lws[3];
        if (mma) {
            /* output columns per tile, rows per tile, work-group size */
            const size_t cols = narrow ? (size_t)t->nar_bn : F->epi_w2 ? (size_t)t->mma_bn / 2 : (size_t)t->mma_bn;
            const size_t rows = (size_t)(narrow ? t->nar_bm : t->mma_bm);
            const size_t threads = (size_t)(narrow ? t->nar_threads : t->mma_threads);
            gws[0] = (n + cols - 1) / cols * threads;
            gws[1] = (m + rows - 1) / rows;
            lws[0] = threads;
            lws[1] = 1;
        } else {
            size_t lx = (size_t)(t->gemm_tn / t->gemm_rn), ly = (size_t)(t->gemm_tm / t->gemm_rm);
            gws[0] = (n + (size_t)t->gemm_tn - 1) / (size_t)t->gemm_tn * lx;
            gws[1] = (m + (size_t)t->gemm_tm - 1) / (size_t)t->gemm_tm * ly;
            lws[0] = lx;
            lws[1] = ly;
        }
        gws[2] = e - j;
        lws[2] = 1;
        cl_event ev = NULL;
        armt_status st = armt_enqueue(ctx->queue, kk, 3, gws, lws, &ctx->stats.kernel_launches, armt_kernel_name(id),
                                      ctx->prof_on ? &ev : NULL, err);
        const double rows = (double)m * (double)(e - j) - (double)last_row0;
        armt_ctx_prof_add_gemm(ctx, id, ev, (F->epi_w2 ? 4.0 : 2.0) * rows * (double)n * (double)k);
        if (st != ARMT_OK) return st;
        ctx->stats.gemm_calls++;
        j = e;
    }
    return ARMT_OK;
}

/* C_j (m x out) = A_j (m x in) W[l0 + j]^T + beta C_j over the G cells of a step, W a per-layer role.
 * A_j and C_j start at a_off[j] and c_off[j] (filled by the caller). Cells whose layers sit in different
 * chunks of the role go in separate calls (one call when the role is a single buffer). F->skip_last > 0:
 * cell G - 1 needs only its rows from F->skip_last on. */
static armt_status gemm_weight(fwd *F, armt_role role, int l0, int G, size_t m, cl_mem a, size_t lda, cl_mem c,
                               size_t ldc, float beta) {
    const armt_weight *w = &F->ctx->model->w[role];
    uint64_t out, in;
    armt_role_shape(F->cfg, role, &out, &in, NULL);
    F->ctx->gemm_site = F->epi_dual == 1 ? ARMT_GSITE_GATE_UP : F->epi_dual == 2 ? ARMT_GSITE_KV : (int)role;
    armt_status s = ARMT_OK;
    int j = 0;
    while (j < G && s == ARMT_OK) {
        int chunk = (l0 + j) / w->layers_per_chunk;
        int j_end = j;
        size_t off;
        cl_mem buf = NULL;
        while (j_end < G && (l0 + j_end) / w->layers_per_chunk == chunk) {
            buf = armt_weight_at(w, l0 + j_end, &off);
            F->b_off[j_end] = off;
            j_end++;
        }
        if (F->epi_dual) { /* the up (v) weights of the same layers: same chunking, so the same offsets */
            size_t off2;
            F->epi_w2 = armt_weight_at(&F->ctx->model->w[F->epi_dual == 2 ? ARMT_ROLE_WV : ARMT_ROLE_WU], l0 + j,
                                       &off2);
            if (off2 != F->b_off[j]) {
                F->epi_w2 = NULL;
                s = armt_err_set(F->err, ARMT_STATUS_UNSUPPORTED, "bf16 GEMM: paired weights laid out apart");
                break;
            }
        }
        const size_t skip = j_end == G ? F->skip_last : 0;
        if (w->bf16)
            s = gemm_bf16_entries(F, m, (size_t)out, (size_t)in, a, lda, buf, c, ldc, beta, (size_t)(j_end - j),
                                  F->a_off + j, F->b_off + j, F->c_off + j, skip);
        else
            s = gemm_batched(F, 0, 1, m, (size_t)out, (size_t)in, a, lda, buf, (size_t)in, c, ldc, beta,
                             (size_t)(j_end - j), F->a_off + j, F->b_off + j, F->c_off + j, skip);
        F->epi_w2 = NULL;
        j = j_end;
    }
    F->ctx->gemm_site = -1;
    return s;
}

/* logits (rows x vocab) = out_rows (rows x d) lm_head^T, in the lm_head's precision. */
static armt_status gemm_lm_head(fwd *F, size_t rows) {
    armt_ctx *ctx = F->ctx;
    const armt_weight *w = armt_model_lm_head(ctx->model);
    size_t lo, d = (size_t)F->d, V = (size_t)F->V;
    cl_mem lm = armt_weight_at(w, 0, &lo);
    F->a_off[0] = 0;
    F->b_off[0] = lo;
    F->c_off[0] = 0;
    armt_status s;
    ctx->gemm_site = ARMT_ROLE_LM_HEAD;
    if (w->bf16)
        s = gemm_bf16_entries(F, rows, V, d, ctx->out_rows, d, lm, ctx->logits, V, 0.0f, 1, F->a_off, F->b_off,
                              F->c_off, 0);
    else
        s = gemm_batched(F, 0, 1, rows, V, d, ctx->out_rows, d, lm, d, ctx->logits, V, 0.0f, 1, F->a_off, F->b_off,
                         F->c_off, 0);
    ctx->gemm_site = -1;
    return s;
}

/* ======================================================================================================= */
/* Launch helpers                                                                                          */
/* ======================================================================================================= */

static armt_status launch(fwd *F, armt_kernel_id id, cl_uint dims, size_t g0, size_t g1, size_t g2, size_t l0) {
    size_t gws[3] = {g0, g1, g2}, lws[3] = {l0, 1, 1};
    cl_event ev = NULL;
    armt_status st = armt_enqueue(F->ctx->queue, F->ctx->k[id], dims, gws, l0 ? lws : NULL,
                                  &F->ctx->stats.kernel_launches, armt_kernel_name(id),
                                  F->ctx->prof_on ? &ev : NULL, F->err);
    armt_ctx_prof_add(F->ctx, id, ev);
    return st;
}

static size_t round_up(size_t v, size_t m) { return (v + m - 1) / m * m; }

/* Tensor cores read bf16 operands faster than fp32 ones they must round themselves (bench/results: 1.2-1.8x
 * with wgmma): the leading rows x width floats of src (the step's cells, contiguous) are rounded once into
 * ctx->abf, and the bf16 GEMMs that follow with A = src read that instead, until unstage_bf16. Nothing
 * happens without the bf16-A kernel. */
static armt_status stage_bf16(fwd *F, cl_mem src, size_t rows, size_t width) {
    armt_err *err = F->err;
    armt_ctx *ctx = F->ctx;
    F->abf_src = NULL;
    F->abf_only = 0;
    if (!bf16_operands(ctx)) return ARMT_OK;
    cl_kernel k = ctx->k[ARMT_K_F32_TO_BF16];
    int m = (int)rows, w = (int)width;
    cl_ulong zero = 0;
    ARMT_CL_TRY(ARMT_ARG(k, 0, m));
    ARMT_CL_TRY(ARMT_ARG(k, 1, w));
    ARMT_CL_TRY(ARMT_ARG(k, 2, src));
    ARMT_CL_TRY(ARMT_ARG(k, 3, w));
    ARMT_CL_TRY(ARMT_ARG(k, 4, ctx->abf));
    ARMT_CL_TRY(clSetKernelArg(k, 5, sizeof(cl_mem), NULL)); /* strided mode, one entry at offset 0 */
    ARMT_CL_TRY(ARMT_ARG(k, 6, zero));
    ARMT_CL_TRY(ARMT_ARG(k, 7, zero));
    ARMT_TRY(launch(F, ARMT_K_F32_TO_BF16, 3, round_up((width + 7) / 8, 64), rows, 1, 0));
    F->abf_src = src;
    F->abf_buf = ctx->abf;
    return ARMT_OK;
}
static void unstage_bf16(fwd *F) {
    F->abf_src = NULL;
    F->abf_only = 0;
}

/* Sets the trailing CELL_ARGS of a kernel starting at argument index i. */
static armt_status set_cell_args(fwd *F, cl_kernel k, cl_uint i, const step *st) {
    armt_err *err = F->err;
    ARMT_CL_TRY(ARMT_ARG(k, i + 0, st->l0));
    ARMT_CL_TRY(ARMT_ARG(k, i + 1, st->s0));
    ARMT_CL_TRY(ARMT_ARG(k, i + 2, st->cap));
    ARMT_CL_TRY(ARMT_ARG(k, i + 3, st->T));
    ARMT_CL_TRY(ARMT_ARG(k, i + 4, st->s_short));
    ARMT_CL_TRY(ARMT_ARG(k, i + 5, st->T_short));
    return ARMT_OK;
}

static size_t slot_of(const step *st, int j) { return (size_t)((st->s0 - j) % st->cap); }

/* Offsets of the residual stream (x, slot-addressed) and of a per-cell temporary of `width` columns. */
static void offsets_x(fwd *F, const step *st, size_t *dst) {
    for (int j = 0; j < st->G; j++) dst[j] = slot_of(st, j) * (size_t)st->T * (size_t)F->d;
}
static void offsets_tmp(const step *st, size_t rows, size_t width, size_t *dst) {
    for (int j = 0; j < st->G; j++) dst[j] = (size_t)j * rows * width;
}

/* RMSNorm of the step's cells into ctx->h. bf16 models on tensor cores (and d % 8 == 0, which makes every
 * GEMM that reads h take the bf16-A kernel): straight into ctx->abf as bf16, h itself is not written. */
static armt_status rmsnorm_cells(fwd *F, const step *st, armt_role role) {
    armt_err *err = F->err;
    armt_ctx *ctx = F->ctx;
    int bf = bf16_operands(ctx) && F->d % 8 == 0;
    cl_kernel k = ctx->k[ARMT_K_RMSNORM];
    size_t off;
    cl_mem w = armt_weight_at(&ctx->model->w[role], 0, &off);
    cl_ulong woff = off;
    float eps = F->cfg->rms_norm_eps;
    ARMT_CL_TRY(ARMT_ARG(k, 0, ctx->x));
    ARMT_CL_TRY(ARMT_ARG(k, 1, ctx->h));
    ARMT_CL_TRY(ARMT_ARG(k, 2, w));
    ARMT_CL_TRY(ARMT_ARG(k, 3, woff));
    ARMT_CL_TRY(ARMT_ARG(k, 4, F->d));
    ARMT_CL_TRY(ARMT_ARG(k, 5, eps));
    ARMT_TRY(set_cell_args(F, k, 6, st));
    cl_mem out_bf = bf ? ctx->abf : NULL; /* NULL: no bf16 output */
    ARMT_CL_TRY(ARMT_ARG(k, 12, out_bf));
    size_t wg = (size_t)ctx->rt->tune.row_wg;
    ARMT_TRY(launch(F, ARMT_K_RMSNORM, 3, wg, (size_t)st->T, (size_t)st->G, wg));
    F->abf_src = bf ? ctx->h : NULL;
    F->abf_buf = ctx->abf;
    F->abf_only = bf;
    return ARMT_OK;
}

/* DPFP of `rows` rows of mq into phi. */
static armt_status dpfp(fwd *F, size_t rows) {
    armt_err *err = F->err;
    armt_ctx *ctx = F->ctx;
    cl_kernel k = ctx->k[ARMT_K_DPFP];
    ARMT_CL_TRY(ARMT_ARG(k, 0, ctx->mq));
    ARMT_CL_TRY(ARMT_ARG(k, 1, ctx->phi));
    ARMT_CL_TRY(ARMT_ARG(k, 2, F->dm));
    return launch(F, ARMT_K_DPFP, 2, (size_t)F->dk, rows, 1, 0);
}

static int any_written(fwd *F, const step *st) {
    for (int j = 0; j < st->G; j++)
        if (F->written[st->l0 + j]) return 1;
    return 0;
}

/* ======================================================================================================= */
/* One step                                                                                                */
/* ======================================================================================================= */

/* src (G, rows, cols) fp32 -> dst + dst_off (G, cols, nseg * kseg) bf16 transposed, from cell (or layer)
 * l0 on: nseg segments of kseg >= rows columns, segment s the high bf16 part of each value or, where bit s
 * of pat is set, the low part (value - high), zeros past rows (armt_mem_bf16_t). */
static armt_status bf16_transpose(fwd *F, cl_mem src, cl_mem dst, size_t dst_off, int rows, int cols, int l0, int G,
                                  int kseg, int nseg, int pat) {
    armt_err *err = F->err;
    cl_kernel k = F->ctx->k[ARMT_K_MEM_BF16_T];
    cl_ulong t_off = dst_off;
    int ld = kseg * nseg;
    ARMT_CL_TRY(ARMT_ARG(k, 0, src));
    ARMT_CL_TRY(ARMT_ARG(k, 1, dst));
    ARMT_CL_TRY(ARMT_ARG(k, 2, rows));
    ARMT_CL_TRY(ARMT_ARG(k, 3, cols));
    ARMT_CL_TRY(ARMT_ARG(k, 4, l0));
    ARMT_CL_TRY(ARMT_ARG(k, 5, kseg));
    ARMT_CL_TRY(ARMT_ARG(k, 6, ld));
    ARMT_CL_TRY(ARMT_ARG(k, 7, t_off));
    ARMT_CL_TRY(ARMT_ARG(k, 8, pat));
    return launch(F, ARMT_K_MEM_BF16_T, 3, round_up((size_t)cols, 32) * 8, round_up((size_t)kseg, 32) / 32,
                  (size_t)G, 256);
}

/* bf16 models: refresh the bf16 copy of W_mem[l]^T (the read products' W operand) for layers l0..l0+G-1. */
static armt_status mem_bf16_refresh(fwd *F, int l0, int G) {
    if (!F->ctx->w_mem_bf) return ARMT_OK;
    return bf16_transpose(F, F->ctx->w_mem, F->ctx->w_mem_bf, 0, F->dk, F->d, l0, G, F->dk, 1, 0);
}

/* phi (rows x dk) W_mem[l] over the G cells of a step into c (rows x d), A and C offsets set by the caller:
 * fp32 W_mem through CLBlast, or its bf16 copy through our GEMM (bf16 models). */
static armt_status mem_product(fwd *F, const step *st, size_t rows, cl_mem c, int site) {
    armt_ctx *ctx = F->ctx;
    size_t dk = (size_t)F->dk, d = (size_t)F->d;
    for (int j = 0; j < st->G; j++) F->b_off[j] = (size_t)(st->l0 + j) * dk * d;
    armt_status s;
    ctx->gemm_site = site;
    if (ctx->w_mem_bf) /* (the fused read adds into x: beta = 1) */
        s = gemm_bf16_entries(F, rows, d, dk, ctx->phi, dk, ctx->w_mem_bf, c, d, F->epi_rowscale ? 1.0f : 0.0f,
                              (size_t)st->G, F->a_off, F->b_off, F->c_off, 0);
    else
        s = gemm_batched(F, 0, 0, rows, d, dk, ctx->phi, dk, ctx->w_mem, d, c, d, 0.0f, (size_t)st->G, F->a_off,
                         F->b_off, F->c_off, 0);
    ctx->gemm_site = -1;
    return s;
}

/* Memory read of every cell: x += phi(x W_mq^T) W_mem[l] / (phi(x W_mq^T) . z[l] + 1e-5). */
armt_status armt_fwd_read(fwd *F, const step *st) {
    armt_err *err = F->err;
    armt_ctx *ctx = F->ctx;
    size_t T = (size_t)st->T;
    if (!any_written(F, st)) return ARMT_OK; /* every cell is a first segment: the read is skipped */
    offsets_x(F, st, F->a_off);
    offsets_tmp(st, T, (size_t)F->dm, F->c_off);
    ARMT_TRY(gemm_weight(F, ARMT_ROLE_WMQ, st->l0, st->G, T, ctx->x, (size_t)F->d, ctx->mq, (size_t)F->dm, 0.0f));
    ARMT_TRY(dpfp(F, (size_t)st->G * T));
    ARMT_TRY(stage_bf16(F, ctx->phi, (size_t)st->G * T, (size_t)F->dk));
    size_t wg = (size_t)ctx->rt->tune.row_wg;
    if (ctx->w_mem_bf && F->abf_src == ctx->phi && F->dk % 8 == 0) {
        /* fused (bf16 models on tensor cores): x += (1/den) phi W_mem in the GEMM's epilogue; the row scales go
         * into ctx->mq, whose projections dpfp has consumed (it holds at least G T d_mem floats) */
        cl_kernel k = ctx->k[ARMT_K_MEM_READ_SCALE];
        ARMT_CL_TRY(ARMT_ARG(k, 0, ctx->mq));
        ARMT_CL_TRY(ARMT_ARG(k, 1, ctx->phi));
        ARMT_CL_TRY(ARMT_ARG(k, 2, ctx->z));
        ARMT_CL_TRY(ARMT_ARG(k, 3, ctx->written));
        ARMT_CL_TRY(ARMT_ARG(k, 4, F->dk));
        ARMT_TRY(set_cell_args(F, k, 5, st));
        ARMT_TRY(launch(F, ARMT_K_MEM_READ_SCALE, 3, wg, T, (size_t)st->G, wg));
        offsets_tmp(st, T, (size_t)F->dk, F->a_off);
        offsets_x(F, st, F->c_off);
        F->epi_rowscale = ctx->mq;
        armt_status s = mem_product(F, st, T, ctx->x, ARMT_GSITE_MEM_READ);
        F->epi_rowscale = NULL;
        unstage_bf16(F);
        return s;
    }
    offsets_tmp(st, T, (size_t)F->dk, F->a_off);
    offsets_tmp(st, T, (size_t)F->d, F->c_off);
    ARMT_TRY(mem_product(F, st, T, ctx->h, ARMT_GSITE_MEM_READ));
    unstage_bf16(F);
    cl_kernel k = ctx->k[ARMT_K_MEM_READ];
    ARMT_CL_TRY(ARMT_ARG(k, 0, ctx->x));
    ARMT_CL_TRY(ARMT_ARG(k, 1, ctx->h));
    ARMT_CL_TRY(ARMT_ARG(k, 2, ctx->phi));
    ARMT_CL_TRY(ARMT_ARG(k, 3, ctx->z));
    ARMT_CL_TRY(ARMT_ARG(k, 4, ctx->written));
    ARMT_CL_TRY(ARMT_ARG(k, 5, F->dk));
    ARMT_CL_TRY(ARMT_ARG(k, 6, F->d));
    ARMT_TRY(set_cell_args(F, k, 7, st));
    return launch(F, ARMT_K_MEM_READ, 3, wg, T, (size_t)st->G, wg);
}

/* RoPE of the step's q and k rows in place (rope.cl), where the GEMMs did not apply it. */
static armt_status rope_cells(fwd *F, const step *st) {
    armt_err *err = F->err;
    armt_ctx *ctx = F->ctx;
    cl_kernel k = ctx->k[ARMT_K_ROPE];
    int Ti = st->T;
    ARMT_CL_TRY(ARMT_ARG(k, 0, ctx->q));
    ARMT_CL_TRY(ARMT_ARG(k, 1, ctx->kk));
    ARMT_CL_TRY(ARMT_ARG(k, 2, ctx->rope));
    ARMT_CL_TRY(ARMT_ARG(k, 3, Ti));
    ARMT_CL_TRY(ARMT_ARG(k, 4, F->nh));
    ARMT_CL_TRY(ARMT_ARG(k, 5, F->nkv));
    ARMT_CL_TRY(ARMT_ARG(k, 6, F->hd));
    ARMT_CL_TRY(ARMT_ARG(k, 7, st->pos0));
    cl_ulong rope_n = (cl_ulong)st->G * (cl_ulong)st->T * (cl_ulong)(F->nh + F->nkv) * (cl_ulong)(F->hd / 2);
    ARMT_CL_TRY(ARMT_ARG(k, 8, rope_n));
    size_t rwg = (size_t)ctx->rt->tune.row_wg;
    return launch(F, ARMT_K_ROPE, 1, round_up((size_t)rope_n, rwg), 1, 1, rwg);
}

/* The LLaMA decoder layer of every cell. */
armt_status armt_fwd_layer(fwd *F, const step *st) {
    armt_err *err = F->err;
    armt_ctx *ctx = F->ctx;
    size_t T = (size_t)st->T, G = (size_t)st->G;
    size_t qd = (size_t)F->nh * F->hd, kvd = (size_t)F->nkv * F->hd;

    F->skip_last = 0;
    ARMT_TRY(rmsnorm_cells(F, st, ARMT_ROLE_NORM_IN)); /* (possibly straight to bf16: see there) */
    /* RoPE in the q and k GEMMs where the kernel can (else the rope kernel below) */
    const int fuse_rope = rope_fused(F);
    F->rope_T = st->T;
    F->rope_pos0 = st->pos0;
    offsets_tmp(st, T, (size_t)F->d, F->a_off);
    offsets_tmp(st, T, qd, F->c_off);
    /* K and V straight to bf16 for the attention kernel that reads them so: where the GEMMs run the bf16 x
     * bf16 tensor-core kernel (as RoPE fused implies) and the rows do not go to a KV cache (that is fp32) */
    const int kv_bf16 = fuse_rope && ctx->k[ARMT_K_ATTENTION_MMA_KVBF16] && !st->kcache;
    F->epi_rope = fuse_rope;
    /* the last layer's cell only for the rows something reads (st->skip), from q on: its k and v cover
     * every row, since its memory tokens attend to all of them */
    const int skip = st->skip > 0 && st->skip < st->T && st->l0 + st->G == F->cfg->n_layers ? st->skip : 0;
    F->skip_last = (size_t)skip;
    armt_status qks = gemm_weight(F, ARMT_ROLE_WQ, st->l0, st->G, T, ctx->h, (size_t)F->d, ctx->q, qd, 0.0f);
    F->skip_last = 0;
    /* k and v in one GEMM where the Hopper tiles pair their weights, unless the launch is small enough for
     * the narrow tiles (one cell: the sequential schedule) */
    const int kv_dual = kv_bf16 && kv_dual_ok(ctx, kvd, G, T);
    if (qks == ARMT_OK) {
        offsets_tmp(st, T, (size_t)F->d, F->a_off);
        offsets_tmp(st, T, kvd, F->c_off);
        F->epi_bf16 = kv_bf16;
        F->epi_out = ctx->kk; /* (bf16 in the first half of its own memory) */
        F->epi_out2 = kv_dual ? ctx->vv : NULL;
        F->epi_dual = kv_dual ? 2 : 0;
        qks = gemm_weight(F, ARMT_ROLE_WK, st->l0, st->G, T, ctx->h, (size_t)F->d, ctx->kk, kvd, 0.0f);
        F->epi_dual = 0;
        F->epi_out2 = NULL;
    }
    F->epi_rope = 0;
    if (qks == ARMT_OK && !kv_dual) {
        offsets_tmp(st, T, kvd, F->c_off);
        F->epi_out = ctx->vv;
        qks = gemm_weight(F, ARMT_ROLE_WV, st->l0, st->G, T, ctx->h, (size_t)F->d, ctx->vv, kvd, 0.0f);
    }
    F->epi_bf16 = 0;
    F->epi_out = NULL;
    ARMT_TRY(qks);
    unstage_bf16(F);

    if (!fuse_rope) ARMT_TRY(rope_cells(F, st));
    int Ti = st->T;
    cl_kernel k;

    /* keys and values: this step's rows, or (generation) a KV cache the rows are appended to */
    cl_mem kbuf = ctx->kk, vbuf = ctx->vv;
    cl_ulong kv_off = 0;
    int Tk = st->T, q0 = 0;
    if (st->kcache) {
        size_t at = (st->cache_off + (size_t)st->pos0 * kvd) * 4, bytes = T * kvd * 4;
        ARMT_CL_TRY(clEnqueueCopyBuffer(ctx->queue, ctx->kk, st->kcache, 0, at, bytes, 0, NULL, NULL));
        ARMT_CL_TRY(clEnqueueCopyBuffer(ctx->queue, ctx->vv, st->vcache, 0, at, bytes, 0, NULL, NULL));
        kbuf = st->kcache;
        vbuf = st->vcache;
        kv_off = st->cache_off;
        Tk = st->cache_rows;
        q0 = st->pos0;
    }

    /* tensor cores where the model's attention program has them (bf16) and float4 loads of K/V are aligned */
    armt_kernel_id aid = kv_bf16                                           ? ARMT_K_ATTENTION_MMA_KVBF16
                         : ctx->k[ARMT_K_ATTENTION_MMA] && kv_off % 4 == 0 ? ARMT_K_ATTENTION_MMA
                                                                           : ARMT_K_ATTENTION;
    k = ctx->k[aid];
    float scale = (float)(1.0 / sqrt((double)F->hd));
    ARMT_CL_TRY(ARMT_ARG(k, 0, ctx->q));
    ARMT_CL_TRY(ARMT_ARG(k, 1, kbuf));
    ARMT_CL_TRY(ARMT_ARG(k, 2, vbuf));
    ARMT_CL_TRY(ARMT_ARG(k, 3, ctx->att));
    ARMT_CL_TRY(ARMT_ARG(k, 4, Ti));
    ARMT_CL_TRY(ARMT_ARG(k, 5, F->nh));
    ARMT_CL_TRY(ARMT_ARG(k, 6, F->nkv));
    ARMT_CL_TRY(ARMT_ARG(k, 7, scale));
    ARMT_CL_TRY(ARMT_ARG(k, 8, kv_off));
    ARMT_CL_TRY(ARMT_ARG(k, 9, Tk));
    ARMT_CL_TRY(ARMT_ARG(k, 10, q0));
    /* the tensor-core kernel writes the o projection's bf16 operand itself (into ctx->abf, where
     * stage_bf16 would put it; att is not written) */
    const int att_mma = aid == ARMT_K_ATTENTION_MMA || aid == ARMT_K_ATTENTION_MMA_KVBF16;
    int att_bf16 = att_mma && bf16_operands(ctx);
    ARMT_CL_TRY(ARMT_ARG(k, att_mma ? 12 : 11, skip));
    if (att_mma) {
        cl_mem outb = att_bf16 ? ctx->abf : NULL;
        ARMT_CL_TRY(ARMT_ARG(k, 11, outb));
        size_t warps = (size_t)ctx->model->attn_warps, bq = 16 * warps * (size_t)ctx->model->attn_rt;
        ARMT_TRY(launch(F, aid, 3, (T + bq - 1) / bq * 32 * warps, (size_t)F->nh, G, 32 * warps));
    } else {
        size_t bq = (size_t)ctx->rt->tune.attn_bq;
        ARMT_TRY(launch(F, aid, 3, round_up(T, bq), (size_t)F->nh, G, bq));
    }

    /* x += att Wo^T (beta = 1 adds the residual in the GEMM) */
    if (att_bf16) {
        F->abf_src = ctx->att;
        F->abf_buf = ctx->abf;
        F->abf_only = 1;
    } else {
        ARMT_TRY(stage_bf16(F, ctx->att, G * T, qd));
    }
    offsets_tmp(st, T, qd, F->a_off);
    offsets_x(F, st, F->c_off);
    F->skip_last = (size_t)skip;
    ARMT_TRY(gemm_weight(F, ARMT_ROLE_WO, st->l0, st->G, T, ctx->att, qd, ctx->x, (size_t)F->d, 1.0f));

    ARMT_TRY(rmsnorm_cells(F, st, ARMT_ROLE_NORM_POST));
    offsets_tmp(st, T, (size_t)F->d, F->a_off);
    offsets_tmp(st, T, (size_t)F->ffn, F->c_off);
    /* bf16 on tensor cores: SwiGLU happens in a GEMM epilogue that writes the down projection's bf16 operand
     * into f2's memory (ctx->abf still holds the normed rows). The down GEMM then surely runs the bf16-A
     * kernel: ffn % 8 == 0 makes every offset fit. With the Hopper tiles one GEMM multiplies gate and up
     * together (gate_up_dual); otherwise the gate GEMM writes fp32 into f1 and the up GEMM's epilogue reads it. */
    int fused = bf16_operands(ctx) && F->ffn % 8 == 0;
    armt_status gs;
    F->epi_out = ctx->f2;
    if (fused && gate_up_dual(ctx)) {
        F->epi_dual = 1;
        gs = gemm_weight(F, ARMT_ROLE_WG, st->l0, st->G, T, ctx->h, (size_t)F->d, ctx->f2, (size_t)F->ffn, 0.0f);
        F->epi_dual = 0;
    } else {
        ARMT_TRY(gemm_weight(F, ARMT_ROLE_WG, st->l0, st->G, T, ctx->h, (size_t)F->d, ctx->f1, (size_t)F->ffn, 0.0f));
        F->epi_gate = fused ? ctx->f1 : NULL;
        gs = gemm_weight(F, ARMT_ROLE_WU, st->l0, st->G, T, ctx->h, (size_t)F->d, ctx->f2, (size_t)F->ffn, 0.0f);
        F->epi_gate = NULL;
    }
    ARMT_TRY(gs);
    unstage_bf16(F);
    if (fused) {
        F->abf_src = ctx->f1; /* its fp32 rows hold the gate values: only the bf16 copy is SwiGLU's output */
        F->abf_buf = ctx->f2;
        F->abf_only = 1;
    } else {
        k = ctx->k[ARMT_K_SWIGLU];
        cl_ulong n = (cl_ulong)G * T * (cl_ulong)F->ffn;
        ARMT_CL_TRY(ARMT_ARG(k, 0, ctx->f1));
        ARMT_CL_TRY(ARMT_ARG(k, 1, ctx->f2));
        ARMT_CL_TRY(ARMT_ARG(k, 2, n));
        ARMT_TRY(launch(F, ARMT_K_SWIGLU, 1, round_up((size_t)n, 256), 1, 1, 0));
    }
    offsets_tmp(st, T, (size_t)F->ffn, F->a_off);
    offsets_x(F, st, F->c_off);
    ARMT_TRY(gemm_weight(F, ARMT_ROLE_WD, st->l0, st->G, T, ctx->f1, (size_t)F->ffn, ctx->x, (size_t)F->d, 1.0f));
    F->skip_last = 0;
    unstage_bf16(F);
    return ARMT_OK;
}

/* W_mem[l] += phi(k)^T delta over the step's cells. bf16 models on tensor cores: our GEMM with beta = 1 into
 * the fp32 W_mem, on operands split into bf16 high and low parts so that the update keeps (nearly) fp32
 * precision: phi^T delta = hi hi + hi lo + lo hi (+ lo lo, 2^-16 relative, left out) is one product along
 * k = 3 Mp of A = [hi(phi) hi(phi) lo(phi)]^T (dk x 3Mp) and W = [hi(delta) lo(delta) hi(delta)]^T (d x 3Mp),
 * both in ctx->abf (M padded with zeros to Mp, a multiple of 8, for the kernel's alignment). Plain bf16
 * operands made the tiny model's bf16 logits 6x further from fp32 (0.0127 against 0.0021). Otherwise
 * CLBlast multiplies the fp32 rows. */
static armt_status mem_update(fwd *F, const step *st) {
    armt_ctx *ctx = F->ctx;
    size_t M = (size_t)F->M, G = (size_t)st->G, dk = (size_t)F->dk, d = (size_t)F->d;
    size_t K = mem_update_k(F->cfg), Mp = K / 3;
    int tc = bf16_operands(ctx) && dk % 8 == 0 && d % 8 == 0; /* ctx->abf has room (abf_bytes) */
    for (size_t j = 0; j < G; j++) F->c_off[j] = (st->l0 + j) * dk * d;
    armt_status s;
    if (tc) {
        size_t w0 = G * dk * K; /* the A blocks, then the W blocks */
        ARMT_TRY(bf16_transpose(F, ctx->phi, ctx->abf, 0, (int)M, (int)dk, 0, (int)G, (int)Mp, 3, 4));
        ARMT_TRY(bf16_transpose(F, ctx->vnew, ctx->abf, w0, (int)M, (int)d, 0, (int)G, (int)Mp, 3, 2));
        for (size_t j = 0; j < G; j++) {
            F->a_off[j] = j * dk * K;
            F->b_off[j] = w0 + j * d * K;
        }
        F->abf_src = ctx->phi; /* A: the bf16 rows in ctx->abf at a_off */
        F->abf_buf = ctx->abf;
        F->abf_only = 1;
        ctx->gemm_site = ARMT_GSITE_MEM_UPDATE;
        s = gemm_bf16_entries(F, dk, d, K, ctx->phi, K, ctx->abf, ctx->w_mem, d, 1.0f, G, F->a_off, F->b_off,
                              F->c_off, 0);
        unstage_bf16(F);
    } else {
        offsets_tmp(st, M, dk, F->a_off);
        offsets_tmp(st, M, d, F->b_off);
        ctx->gemm_site = ARMT_GSITE_MEM_UPDATE;
        s = gemm_batched(F, 1, 0, dk, d, M, ctx->phi, dk, ctx->vnew, d, ctx->w_mem, d, 1.0f, G, F->a_off, F->b_off,
                         F->c_off, 0);
    }
    ctx->gemm_site = -1;
    return s;
}

/* Memory write of every cell on its M memory-token rows (ARMT.md 3.5, exact first-segment rule). */
armt_status armt_fwd_write(fwd *F, const step *st) {
    armt_err *err = F->err;
    armt_ctx *ctx = F->ctx;
    size_t M = (size_t)F->M, G = (size_t)st->G;
    int Mi = F->M;

    cl_kernel k = ctx->k[ARMT_K_MEM_GATHER];
    ARMT_CL_TRY(ARMT_ARG(k, 0, ctx->x));
    ARMT_CL_TRY(ARMT_ARG(k, 1, ctx->mrows));
    ARMT_CL_TRY(ARMT_ARG(k, 2, Mi));
    ARMT_CL_TRY(ARMT_ARG(k, 3, F->d));
    ARMT_TRY(set_cell_args(F, k, 4, st));
    ARMT_TRY(launch(F, ARMT_K_MEM_GATHER, 3, (size_t)F->d, M, G, 0));

    /* the memory rows rounded to bf16 once for both projections (the bf16 x bf16 kernel, where there is one) */
    ARMT_TRY(stage_bf16(F, ctx->mrows, G * M, (size_t)F->d));
    offsets_tmp(st, M, (size_t)F->d, F->a_off);
    offsets_tmp(st, M, (size_t)F->dm, F->c_off);
    ARMT_TRY(gemm_weight(F, ARMT_ROLE_WMK, st->l0, st->G, M, ctx->mrows, (size_t)F->d, ctx->mq, (size_t)F->dm, 0.0f));
    ARMT_TRY(dpfp(F, G * M));
    offsets_tmp(st, M, (size_t)F->d, F->a_off);
    offsets_tmp(st, M, (size_t)F->d, F->c_off);
    ARMT_TRY(gemm_weight(F, ARMT_ROLE_WMV, st->l0, st->G, M, ctx->mrows, (size_t)F->d, ctx->vnew, (size_t)F->d, 0.0f));
    unstage_bf16(F);

    k = ctx->k[ARMT_K_MEM_WRITE_PREP];
    size_t off_wmb, off_bmb;
    cl_mem wmb = armt_weight_at(&ctx->model->w[ARMT_ROLE_WMB], 0, &off_wmb);
    cl_mem bmb = armt_weight_at(&ctx->model->w[ARMT_ROLE_BMB], 0, &off_bmb);
    cl_ulong owmb = off_wmb, obmb = off_bmb;
    int corr = F->cfg->correction;
    ARMT_CL_TRY(ARMT_ARG(k, 0, ctx->phi));
    ARMT_CL_TRY(ARMT_ARG(k, 1, ctx->mrows));
    ARMT_CL_TRY(ARMT_ARG(k, 2, ctx->z));
    ARMT_CL_TRY(ARMT_ARG(k, 3, ctx->written));
    ARMT_CL_TRY(ARMT_ARG(k, 4, wmb));
    ARMT_CL_TRY(ARMT_ARG(k, 5, owmb));
    ARMT_CL_TRY(ARMT_ARG(k, 6, bmb));
    ARMT_CL_TRY(ARMT_ARG(k, 7, obmb));
    ARMT_CL_TRY(ARMT_ARG(k, 8, ctx->wstat));
    ARMT_CL_TRY(ARMT_ARG(k, 9, Mi));
    ARMT_CL_TRY(ARMT_ARG(k, 10, F->dk));
    ARMT_CL_TRY(ARMT_ARG(k, 11, F->d));
    ARMT_CL_TRY(ARMT_ARG(k, 12, st->l0));
    ARMT_CL_TRY(ARMT_ARG(k, 13, corr));
    size_t wg = (size_t)ctx->rt->tune.row_wg;
    ARMT_TRY(launch(F, ARMT_K_MEM_WRITE_PREP, 3, wg, M, G, wg));

    if (any_written(F, st)) {
        /* vprev = phi(k) W_mem[l] (divided by den in the delta kernel) */
        offsets_tmp(st, M, (size_t)F->dk, F->a_off);
        offsets_tmp(st, M, (size_t)F->d, F->c_off);
        ARMT_TRY(mem_product(F, st, M, ctx->vprev, ARMT_GSITE_MEM_PREV));
    }
    k = ctx->k[ARMT_K_MEM_DELTA];
    ARMT_CL_TRY(ARMT_ARG(k, 0, ctx->vnew));
    ARMT_CL_TRY(ARMT_ARG(k, 1, ctx->vprev));
    ARMT_CL_TRY(ARMT_ARG(k, 2, ctx->wstat));
    ARMT_CL_TRY(ARMT_ARG(k, 3, Mi));
    ARMT_CL_TRY(ARMT_ARG(k, 4, F->d));
    ARMT_TRY(launch(F, ARMT_K_MEM_DELTA, 3, (size_t)F->d, M, G, 0));

    ARMT_TRY(mem_update(F, st));

    k = ctx->k[ARMT_K_MEM_Z_UPDATE];
    ARMT_CL_TRY(ARMT_ARG(k, 0, ctx->z));
    ARMT_CL_TRY(ARMT_ARG(k, 1, ctx->written));
    ARMT_CL_TRY(ARMT_ARG(k, 2, ctx->phi));
    ARMT_CL_TRY(ARMT_ARG(k, 3, ctx->wstat));
    ARMT_CL_TRY(ARMT_ARG(k, 4, Mi));
    ARMT_CL_TRY(ARMT_ARG(k, 5, F->dk));
    ARMT_CL_TRY(ARMT_ARG(k, 6, st->l0));
    ARMT_TRY(launch(F, ARMT_K_MEM_Z_UPDATE, 2, (size_t)F->dk, G, 1, 0));
    ARMT_TRY(mem_bf16_refresh(F, st->l0, st->G));
    for (int j = 0; j < st->G; j++) F->written[st->l0 + j] = 1;
    return ARMT_OK;
}

/* Layer-0 input of segment s into its slot: tokens [first, first + Ls), then M memory tokens (M = 0 for
 * the full schedule), zero rows up to T. */
armt_status armt_fwd_embed(fwd *F, const step *st, size_t first, int Ls, int M) {
    armt_err *err = F->err;
    armt_ctx *ctx = F->ctx;
    armt_kernel_id kid = ctx->model->w[ARMT_ROLE_EMBED].bf16 ? ARMT_K_EMBED_BF16 : ARMT_K_EMBED;
    cl_kernel k = ctx->k[kid];
    size_t eo, mo;
    cl_mem E = armt_weight_at(&ctx->model->w[ARMT_ROLE_EMBED], 0, &eo);
    cl_mem mem = armt_weight_at(&ctx->model->w[ARMT_ROLE_MEM], 0, &mo);
    cl_ulong e_off = eo, m_off = mo, x_off = slot_of(st, 0) * (cl_ulong)st->T * (cl_ulong)F->d;
    int fi = (int)first;
    ARMT_CL_TRY(ARMT_ARG(k, 0, ctx->ids));
    ARMT_CL_TRY(ARMT_ARG(k, 1, fi));
    ARMT_CL_TRY(ARMT_ARG(k, 2, Ls));
    ARMT_CL_TRY(ARMT_ARG(k, 3, E));
    ARMT_CL_TRY(ARMT_ARG(k, 4, e_off));
    ARMT_CL_TRY(ARMT_ARG(k, 5, mem));
    ARMT_CL_TRY(ARMT_ARG(k, 6, m_off));
    ARMT_CL_TRY(ARMT_ARG(k, 7, M));
    ARMT_CL_TRY(ARMT_ARG(k, 8, ctx->x));
    ARMT_CL_TRY(ARMT_ARG(k, 9, x_off));
    ARMT_CL_TRY(ARMT_ARG(k, 10, F->d));
    return launch(F, kid, 2, (size_t)F->d, (size_t)st->T, 1, 0);
}

/* The final RMSNorm of `rows` rows of the residual stream starting at element x_off, into out_rows. */
static armt_status final_norm(fwd *F, size_t x_off, size_t rows) {
    armt_err *err = F->err;
    armt_ctx *ctx = F->ctx;
    size_t fo;
    cl_mem wf = armt_weight_at(&ctx->model->w[ARMT_ROLE_NORM_FINAL], 0, &fo);
    cl_kernel k = ctx->k[ARMT_K_RMSNORM_ROWS];
    cl_ulong xo = x_off, y_off = 0, w_off = fo;
    float eps = F->cfg->rms_norm_eps;
    ARMT_CL_TRY(ARMT_ARG(k, 0, ctx->x));
    ARMT_CL_TRY(ARMT_ARG(k, 1, xo));
    ARMT_CL_TRY(ARMT_ARG(k, 2, ctx->out_rows));
    ARMT_CL_TRY(ARMT_ARG(k, 3, y_off));
    ARMT_CL_TRY(ARMT_ARG(k, 4, wf));
    ARMT_CL_TRY(ARMT_ARG(k, 5, w_off));
    ARMT_CL_TRY(ARMT_ARG(k, 6, F->d));
    ARMT_CL_TRY(ARMT_ARG(k, 7, eps));
    size_t wg = (size_t)ctx->rt->tune.row_wg;
    return launch(F, ARMT_K_RMSNORM_ROWS, 2, wg, rows, 1, wg);
}

/* Output of a segment that has left the last layer: rows [0, Ls) of the residual slot `slot` (row stride
 * T), tokens starting at `first` of the call. Final RMSNorm, then the lm_head when logits are asked for;
 * the copies to the caller's memory are queued (non-blocking, in order) and complete by the call's end. */
static armt_status emit(fwd *F, size_t slot, size_t T, size_t first, size_t Ls) {
    armt_err *err = F->err;
    armt_ctx *ctx = F->ctx;
    const armt_forward_params *p = F->p;
    if (p->output == ARMT_OUTPUT_NONE) return ARMT_OK;
    size_t r0 = 0, r1 = Ls;
    if (p->output == ARMT_OUTPUT_LOGITS_LAST) {
        if (first + Ls != F->n) return ARMT_OK; /* only the segment holding the last token */
        r0 = Ls - 1;
    }
    size_t d = (size_t)F->d, V = (size_t)F->V;
    for (size_t b = r0; b < r1; b += ctx->out_rows_cap) {
        size_t rows = r1 - b < ctx->out_rows_cap ? r1 - b : ctx->out_rows_cap;
        ARMT_TRY(final_norm(F, (slot * T + b) * d, rows));
        if (p->output == ARMT_OUTPUT_HIDDEN) {
            ARMT_CL_TRY(clEnqueueReadBuffer(ctx->queue, ctx->out_rows, CL_FALSE, 0, rows * d * 4,
                                            p->out + (first + b) * d, 0, NULL, NULL));
            continue;
        }
        ARMT_TRY(gemm_lm_head(F, rows));
        float *dst = p->output == ARMT_OUTPUT_LOGITS_LAST ? p->out : p->out + (first + b) * V;
        ARMT_CL_TRY(clEnqueueReadBuffer(ctx->queue, ctx->logits, CL_FALSE, 0, rows * V * 4, dst, 0, NULL, NULL));
    }
    return ARMT_OK;
}

armt_status armt_fwd_row_logits(fwd *F, size_t x_off, float *dst) {
    armt_err *err = F->err;
    armt_ctx *ctx = F->ctx;
    size_t V = (size_t)F->V;
    ARMT_TRY(final_norm(F, x_off, 1));
    ARMT_TRY(gemm_lm_head(F, 1));
    ARMT_CL_TRY(clEnqueueReadBuffer(ctx->queue, ctx->logits, CL_TRUE, 0, V * 4, dst, 0, NULL, NULL));
    return ARMT_OK;
}

/* ======================================================================================================= */
/* Schedules                                                                                               */
/* ======================================================================================================= */

static void progress(fwd *F, uint64_t done, uint64_t total) {
    if (F->p->progress) F->p->progress(done, total, F->p->progress_user_data);
}

/* Rows [0, skip) of a cell on the last layer that nothing reads, for a segment of Ls tokens (last: it holds
 * the call's last token): all Ls token rows when no output is asked for (only the memory tokens go on, to
 * the memory write), all but the last token's when only its logits are; none for hidden states, for all
 * logits, or when the caller asks for every row (all_rows). armt_fwd_layer computes such a cell's
 * q and o projections, attention and MLP only for its rows from skip on. */
static int unread_rows(const fwd *F, int Ls, int last) {
    if (F->p->all_rows) return 0;
    if (F->p->output == ARMT_OUTPUT_NONE) return Ls;
    if (F->p->output == ARMT_OUTPUT_LOGITS_LAST) return last ? Ls - 1 : Ls;
    return 0;
}

/* Tokens of segment s of the call (segment_size, or fewer for the last). */
static int segment_tokens(const fwd *F, int s) {
    const size_t L = (size_t)F->cfg->segment_size, rest = F->n - (size_t)s * L;
    return (int)(rest < L ? rest : L);
}

static armt_status run_armt(fwd *F, int diagonal) {
    armt_ctx *ctx = F->ctx;
    const int Lyr = F->cfg->n_layers, M = F->M;
    const size_t L = (size_t)F->cfg->segment_size, n = F->n;
    const int S = (int)((n + L - 1) / L);
    const int Ls_last = (int)(n - (size_t)(S - 1) * L);
    const int short_last = Ls_last < (int)L;
    /* rows per cell: every segment is padded to L + M rows, except when there is only one segment */
    const int T = S == 1 ? Ls_last + M : (int)L + M;
    const int cap = diagonal ? (S < Lyr ? S : Lyr) : 1;
    size_t out_rows = F->p->output == ARMT_OUTPUT_NONE ? 0 : (L < OUT_BLOCK_ROWS ? L : OUT_BLOCK_ROWS);
    ARMT_TRY(armt_fwd_scratch(F, (size_t)cap, (size_t)T, (size_t)T, n, out_rows));
    ARMT_TRY(armt_fwd_upload_ids(F, 0, F->n));
    uint64_t total = diagonal ? (uint64_t)(S + Lyr - 1) : (uint64_t)S * (uint64_t)Lyr;
    uint64_t done = 0;
    if (!diagonal) {
        for (int s = 0; s < S; s++) {
            int Ls = segment_tokens(F, s);
            step st = {.l0 = 0, .G = 1, .s0 = s, .cap = 1, .T = Ls + M, .s_short = -1,
                       .skip = unread_rows(F, Ls, s == S - 1)};
            ARMT_TRY(armt_fwd_embed(F, &st, (size_t)s * L, Ls, M));
            for (int l = 0; l < Lyr; l++) {
                st.l0 = l;
                ARMT_TRY(armt_fwd_read(F, &st));
                ARMT_TRY(armt_fwd_layer(F, &st));
                ARMT_TRY(armt_fwd_write(F, &st));
                ctx->stats.steps++;
                ctx->stats.cells++;
                progress(F, ++done, total);
            }
            ARMT_TRY(emit(F, 0, (size_t)st.T, (size_t)s * L, (size_t)Ls));
        }
        return ARMT_OK;
    }
    for (int d = 0; d < S + Lyr - 1; d++) {
        int lo = d - S + 1 > 0 ? d - S + 1 : 0, hi = d < Lyr - 1 ? d : Lyr - 1;
        step st = {.l0 = lo, .G = hi - lo + 1, .s0 = d - lo, .cap = cap, .T = T, .s_short = short_last ? S - 1 : -1,
                   .T_short = Ls_last + M};
        if (hi == Lyr - 1) { /* the cell of segment d - hi leaves the last layer */
            const int s = d - hi;
            st.skip = unread_rows(F, segment_tokens(F, s), s == S - 1);
        }
        if (lo == 0) {
            /* the newest segment enters layer 0 */
            int s = d;
            ARMT_TRY(armt_fwd_embed(F, &st, (size_t)s * L, segment_tokens(F, s), M));
        }
        ARMT_TRY(armt_fwd_read(F, &st));
        ARMT_TRY(armt_fwd_layer(F, &st));
        ARMT_TRY(armt_fwd_write(F, &st));
        if (hi == Lyr - 1) {
            int j = hi - lo, s = d - hi;
            ARMT_TRY(emit(F, slot_of(&st, j), (size_t)T, (size_t)s * L, (size_t)segment_tokens(F, s)));
        }
        ctx->stats.steps++;
        ctx->stats.cells += (uint64_t)st.G;
        progress(F, ++done, total);
    }
    return ARMT_OK;
}

/* The base LLaMA over all n tokens: positions 0..n-1, no memory tokens, no memory ops. */
static armt_status run_full(fwd *F) {
    armt_ctx *ctx = F->ctx;
    const int Lyr = F->cfg->n_layers;
    const size_t n = F->n;
    size_t out_rows = F->p->output == ARMT_OUTPUT_NONE ? 0 : (n < OUT_BLOCK_ROWS ? n : OUT_BLOCK_ROWS);
    ARMT_TRY(armt_fwd_scratch(F, 1, n, n, n, out_rows));
    ARMT_TRY(armt_fwd_upload_ids(F, 0, F->n));
    /* last-token logits: the last layer for that row only (with no output at all, skip = n is no skip:
     * armt_fwd_layer keeps at least one row, and without memory tokens nothing else is read) */
    step st = {.l0 = 0, .G = 1, .s0 = 0, .cap = 1, .T = (int)n, .s_short = -1, .skip = unread_rows(F, (int)n, 1)};
    ARMT_TRY(armt_fwd_embed(F, &st, 0, (int)n, 0));
    for (int l = 0; l < Lyr; l++) {
        st.l0 = l;
        ARMT_TRY(armt_fwd_layer(F, &st));
        ctx->stats.steps++;
        ctx->stats.cells++;
        progress(F, (uint64_t)l + 1, (uint64_t)Lyr);
    }
    return emit(F, 0, n, 0, n);
}

/* ======================================================================================================= */
/* Entry point                                                                                             */
/* ======================================================================================================= */

static double now_seconds(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

armt_status armt_fwd_copy_state(armt_ctx *ctx, int to_snapshot, armt_err *err) {
    cl_mem src[3] = {ctx->w_mem, ctx->z, ctx->written}, dst[3] = {ctx->w_mem_prev, ctx->z_prev, ctx->written_prev};
    for (int i = 0; i < 3; i++)
        ARMT_CL_TRY(clEnqueueCopyBuffer(ctx->queue, to_snapshot ? src[i] : dst[i], to_snapshot ? dst[i] : src[i], 0, 0,
                                        ctx->state_bytes[i], 0, NULL, NULL));
    return ARMT_OK;
}

armt_status armt_fwd_begin(fwd *F, armt_ctx *ctx, const armt_forward_params *p, const int32_t *ids, size_t n) {
    const armt_config *cfg = &ctx->model->cfg;
    memset(F, 0, sizeof *F);
    F->ctx = ctx;
    F->err = &ctx->err;
    F->cfg = cfg;
    F->p = p;
    F->ids = ids;
    F->n = n;
    F->d = cfg->hidden_size;
    F->dk = armt_config_d_key(cfg);
    F->dm = cfg->d_mem;
    F->M = cfg->num_mem_tokens;
    F->hd = cfg->head_dim;
    F->nh = cfg->n_heads;
    F->nkv = cfg->n_kv_heads;
    F->ffn = cfg->intermediate_size;
    F->V = cfg->vocab_size;
    size_t nl = (size_t)cfg->n_layers;
    F->a_off = calloc(nl, sizeof(size_t));
    F->b_off = calloc(nl, sizeof(size_t));
    F->c_off = calloc(nl, sizeof(size_t));
    F->alphas = calloc(nl, sizeof(float));
    F->betas = calloc(nl, sizeof(float));
    F->written = calloc(nl, 1);
    if (!F->a_off || !F->b_off || !F->c_off || !F->alphas || !F->betas || !F->written) {
        armt_fwd_end(F);
        return armt_err_set(F->err, ARMT_STATUS_OUT_OF_HOST_MEMORY, "forward: out of host memory");
    }
    armt_status st = armt_ctx_memory_get(ctx, NULL, NULL, F->written);
    /* the bf16 copy of W_mem follows whatever the state became since the last call (set, load, reset) */
    if (st == ARMT_OK) st = mem_bf16_refresh(F, 0, cfg->n_layers);
    if (st != ARMT_OK) armt_fwd_end(F);
    return st;
}

void armt_fwd_end(fwd *F) {
    free(F->a_off);
    free(F->b_off);
    free(F->c_off);
    free(F->alphas);
    free(F->betas);
    free(F->written);
    F->a_off = F->b_off = F->c_off = NULL;
    F->alphas = F->betas = NULL;
    F->written = NULL;
}

armt_status armt_forward(armt_ctx *ctx, const int32_t *ids, size_t n, const armt_forward_params *params) {
    if (!ctx) return armt_err_set(NULL, ARMT_STATUS_INVALID_ARGUMENT, "armt_forward: ctx is NULL");
    armt_err *err = &ctx->err;
    ARMT_RETURN_IF(!params, ARMT_STATUS_INVALID_ARGUMENT, "armt_forward: params is NULL");
    ARMT_RETURN_IF(n == 0, ARMT_STATUS_EMPTY_INPUT, "armt_forward: no tokens (n = 0)");
    ARMT_RETURN_IF(!ids, ARMT_STATUS_INVALID_ARGUMENT, "armt_forward: ids is NULL");
    ARMT_RETURN_IF(n > (size_t)INT32_MAX, ARMT_STATUS_INVALID_ARGUMENT, "armt_forward: %zu tokens is too many", n);
    const armt_config *cfg = &ctx->model->cfg;
    ARMT_RETURN_IF(params->schedule < ARMT_SCHEDULE_SEQUENTIAL || params->schedule > ARMT_SCHEDULE_FULL,
                   ARMT_STATUS_INVALID_ARGUMENT, "armt_forward: unknown schedule %d", (int)params->schedule);
    ARMT_RETURN_IF(params->output < ARMT_OUTPUT_NONE || params->output > ARMT_OUTPUT_HIDDEN,
                   ARMT_STATUS_INVALID_ARGUMENT, "armt_forward: unknown output %d", (int)params->output);
    size_t need = armt_output_count(ctx->model, params->output, n);
    ARMT_RETURN_IF(need > 0 && !params->out, ARMT_STATUS_INVALID_ARGUMENT,
                   "armt_forward: output requested but out is NULL");
    ARMT_RETURN_IF(need > params->out_count, ARMT_STATUS_INVALID_ARGUMENT,
                   "armt_forward: out holds %zu floats, the output needs %zu", params->out_count, need);
    for (size_t i = 0; i < n; i++)
        ARMT_RETURN_IF(ids[i] < 0 || ids[i] >= cfg->vocab_size, ARMT_STATUS_TOKEN_OUT_OF_RANGE,
                       "armt_forward: token %zu has id %d, outside [0, %d)", i, (int)ids[i], cfg->vocab_size);

    memset(&ctx->stats, 0, sizeof ctx->stats);
    armt_ctx_prof_drop(ctx); /* events of work outside a forward (a reset, a state upload) */
    /* a call with no_profile records no events and leaves the last profiled call's times */
    const int profiled = ctx->profile && !params->no_profile;
    if (profiled) {
        memset(ctx->prof_s, 0, sizeof ctx->prof_s);
        memset(ctx->prof_gs, 0, sizeof ctx->prof_gs);
        memset(ctx->prof_gf, 0, sizeof ctx->prof_gf);
    }
    double t0 = now_seconds();
    pthread_mutex_lock(&ctx->rt->lock);
    ctx->rt->peak_bytes = ctx->rt->device_bytes;
    pthread_mutex_unlock(&ctx->rt->lock);

    fwd F;
    ctx->prof_on = profiled;
    armt_status st = armt_fwd_begin(&F, ctx, params, ids, n);
    if (st != ARMT_OK) {
        ctx->prof_on = ctx->profile;
        return st;
    }
    int armt = params->schedule != ARMT_SCHEDULE_FULL;
    if (armt) ARMT_TRY_GOTO(armt_fwd_copy_state(ctx, 1, err), done);
    ARMT_TRY_GOTO(armt ? run_armt(&F, params->schedule == ARMT_SCHEDULE_DIAGONAL) : run_full(&F), fail);
    {
        cl_int e = clFinish(ctx->queue);
        if (e != CL_SUCCESS) {
            st = armt_err_cl(err, "clFinish (forward)", e);
            goto fail;
        }
    }
    ctx->stats.seconds = now_seconds() - t0;
    armt_ctx_prof_collect(ctx);
    goto done;
fail:
    clFinish(ctx->queue);
    if (armt) {
        armt_err saved;
        armt_err_init(&saved);
        armt_err_copy(&saved, err);
        if (armt_fwd_copy_state(ctx, 0, err) == ARMT_OK && clFinish(ctx->queue) == CL_SUCCESS)
            armt_err_copy(err, &saved);
        else
            armt_err_set(err, st, "%s (and restoring the memory state failed: %s)", armt_err_msg(&saved),
                         armt_err_msg(err));
        armt_err_free(&saved);
    }
done:
    ctx->prof_on = ctx->profile;
    pthread_mutex_lock(&ctx->rt->lock);
    ctx->stats.peak_device_bytes = ctx->rt->peak_bytes;
    pthread_mutex_unlock(&ctx->rt->lock);
    ctx->stats.device_bytes = ctx->scratch_bytes + 2 * (ctx->state_bytes[0] + ctx->state_bytes[1] + ctx->state_bytes[2]);
    armt_fwd_end(&F);
    return st;
}
