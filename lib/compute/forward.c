/*
 * forward.c - armt_forward: the three schedules over the same steps (step.c), and the memory-state snapshot
 * that a failed call puts back.
 *
 *   sequential  for s: for l: cell (l, s)                                S * Lyr steps of one cell
 *   diagonal    for d: all cells (l, s) with l + s = d                   S + Lyr - 1 steps of G <= min(S,
 * Lyr) cells full        the base LLaMA over all n tokens (no memory, no segments) Lyr steps of one cell of n
 * rows
 *
 * One step is: all memory reads, then the decoder layer for every cell, then all memory writes
 * (docs/MATH.md §7.2); see step.c.
 */
#include "config.h"

#include "compute/step.h"
#include "io/armt_config.h"

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
/* Schedules                                                                                               */
/* ======================================================================================================= */

/* The caller's progress callback; its non-zero return cancels the call (the caller rolls the state back). */
static armt_status progress(armt_call *F, uint64_t done, uint64_t total) {
    if (F->p->progress && F->p->progress(done, total, F->p->progress_user_data) != 0)
        return armt_err_set(F->err, ARMT_STATUS_CANCELLED,
                            "armt_forward: cancelled by the progress callback after step %llu of %llu",
                            (unsigned long long)done, (unsigned long long)total);
    return ARMT_OK;
}

/* Rows [0, skip) of a cell on the last layer that nothing reads, for a segment of Ls tokens (last: it holds
 * the call's last token): the sink row and all Ls token rows when no output is asked for (only the memory
 * tokens go on, to the memory write), all but the last token's when only its logits are; none for hidden
 * states, for all logits, or when the caller asks for every row (all_rows). armt_step_layer computes such
 * a cell's q and o projections, attention and MLP only for its rows from skip on. */
static int unread_rows(const armt_call *F, int Ls, int last) {
    if (F->p->all_rows) return 0;
    if (F->p->output == ARMT_OUTPUT_NONE) return F->ns + Ls;
    if (F->p->output == ARMT_OUTPUT_LOGITS_LAST) return F->ns + (last ? Ls - 1 : Ls);
    return 0;
}

/* Tokens of segment s of the call (segment_size, or fewer for the last). */
static int segment_tokens(const armt_call *F, int s) {
    const size_t L = (size_t)F->cfg->segment_size, rest = F->n - (size_t)s * L;
    return (int)(rest < L ? rest : L);
}

/* The sliding window's rows after the call's segments: the last W of what it held and every text row. */
static int window_after(const armt_call *F) {
    const size_t rows = (size_t)F->win_first + F->n;
    return F->win == 0 ? 0 : rows < (size_t)F->win ? (int)rows : F->win;
}

static armt_status run_armt(armt_call *F, int diagonal) {
    armt_ctx *ctx = F->ctx;
    const int Lyr = F->cfg->n_layers, M = F->M, ns = F->ns;
    const size_t L = (size_t)F->cfg->segment_size, n = F->n;
    const int S = (int)((n + L - 1) / L);
    const int Ls_last = (int)(n - (size_t)(S - 1) * L);
    const int short_last = Ls_last < (int)L;
    /* rows per cell (the sink, the tokens, the memory tokens): every segment is padded to 1 + L + M rows,
     * except when there is only one segment */
    const int T = (S == 1 ? Ls_last + M : (int)L + M) + ns;
    const int cap = diagonal ? (S < Lyr ? S : Lyr) : 1;
    size_t out_rows = F->p->output == ARMT_OUTPUT_NONE ? 0 : (L < OUT_BLOCK_ROWS ? L : OUT_BLOCK_ROWS);
    ARMT_TRY(armt_scratch_grow(F, (size_t)cap, (size_t)T, (size_t)T, n, out_rows, 0));
    ARMT_TRY(armt_step_upload_ids(F, 0, F->n));
    uint64_t total = diagonal ? (uint64_t)(S + Lyr - 1) : (uint64_t)S * (uint64_t)Lyr;
    uint64_t done = 0;
    if (!diagonal) {
        for (int s = 0; s < S; s++) {
            int Ls = segment_tokens(F, s);
            armt_step st = {.l0 = 0,
                            .G = 1,
                            .s0 = s,
                            .cap = 1,
                            .T = ns + Ls + M,
                            .s_short = -1,
                            .skip = unread_rows(F, Ls, s == S - 1),
                            .split_rows = ns + (int)L + M};
            ARMT_TRY(armt_step_embed(F, &st, (size_t)s * L, Ls, M, ns));
            for (int l = 0; l < Lyr; l++) {
                st.l0 = l;
                ARMT_TRY(armt_step_read(F, &st));
                ARMT_TRY(armt_step_layer(F, &st));
                ARMT_TRY(armt_step_write(F, &st));
                ctx->stats.steps++;
                ctx->stats.cells++;
                ARMT_TRY(progress(F, ++done, total));
            }
            ARMT_TRY(armt_step_emit(F, 0, (size_t)st.T, (size_t)s * L, (size_t)Ls));
        }
        ctx->win_len = window_after(F);
        return ARMT_OK;
    }
    for (int d = 0; d < S + Lyr - 1; d++) {
        int lo = d - S + 1 > 0 ? d - S + 1 : 0, hi = d < Lyr - 1 ? d : Lyr - 1;
        armt_step st = {.l0 = lo,
                        .G = hi - lo + 1,
                        .s0 = d - lo,
                        .cap = cap,
                        .T = T,
                        .s_short = short_last ? S - 1 : -1,
                        .T_short = ns + Ls_last + M,
                        .split_rows = ns + (int)L + M};
        if (hi == Lyr - 1) { /* the cell of segment d - hi leaves the last layer */
            const int s = d - hi;
            st.skip = unread_rows(F, segment_tokens(F, s), s == S - 1);
        }
        if (lo == 0) {
            /* the newest segment enters layer 0 */
            int s = d;
            ARMT_TRY(armt_step_embed(F, &st, (size_t)s * L, segment_tokens(F, s), M, ns));
        }
        ARMT_TRY(armt_step_read(F, &st));
        ARMT_TRY(armt_step_layer(F, &st));
        ARMT_TRY(armt_step_write(F, &st));
        if (hi == Lyr - 1) {
            int j = hi - lo, s = d - hi;
            ARMT_TRY(armt_step_emit(F, (size_t)((st.s0 - j) % st.cap), (size_t)T, (size_t)s * L,
                                    (size_t)segment_tokens(F, s)));
        }
        ctx->stats.steps++;
        ctx->stats.cells += (uint64_t)st.G;
        ARMT_TRY(progress(F, ++done, total));
    }
    ctx->win_len = window_after(F);
    return ARMT_OK;
}

/* The base LLaMA over all n tokens: positions 0..n-1, no memory tokens, no memory ops. */
static armt_status run_full(armt_call *F) {
    armt_ctx *ctx = F->ctx;
    const int Lyr = F->cfg->n_layers;
    const size_t n = F->n;
    F->ns = 0; /* the base model alone: no sink, no sliding window */
    F->win = 0;
    size_t out_rows = F->p->output == ARMT_OUTPUT_NONE ? 0 : (n < OUT_BLOCK_ROWS ? n : OUT_BLOCK_ROWS);
    ARMT_TRY(armt_scratch_grow(F, 1, n, n, n, out_rows, (size_t)ctx->rt->tune.mlp_rows));
    ARMT_TRY(armt_step_upload_ids(F, 0, F->n));
    /* last-token logits: the last layer for that row only (with no output at all, skip = n is no skip:
     * armt_step_layer keeps at least one row, and without memory tokens nothing else is read) */
    armt_step st = {.l0 = 0,
                    .G = 1,
                    .s0 = 0,
                    .cap = 1,
                    .T = (int)n,
                    .s_short = -1,
                    .skip = unread_rows(F, (int)n, 1),
                    .split_rows = (int)n};
    ARMT_TRY(armt_step_embed(F, &st, 0, (int)n, 0, 0));
    for (int l = 0; l < Lyr; l++) {
        st.l0 = l;
        ARMT_TRY(armt_step_layer(F, &st));
        ctx->stats.steps++;
        ctx->stats.cells++;
        ARMT_TRY(progress(F, (uint64_t)l + 1, (uint64_t)Lyr));
    }
    return armt_step_emit(F, 0, n, 0, n);
}

/* ======================================================================================================= */
/* Entry point                                                                                             */
/* ======================================================================================================= */

static double now_seconds(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

armt_status armt_state_copy(armt_ctx *ctx, int to_snapshot, armt_err *err) {
    cl_mem src[5] = {ctx->w_mem, ctx->z, ctx->written, ctx->win_k, ctx->win_v},
           dst[5] = {ctx->w_mem_prev, ctx->z_prev, ctx->written_prev, ctx->win_k_prev, ctx->win_v_prev};
    const size_t bytes[5] = {ctx->state_bytes[0], ctx->state_bytes[1], ctx->state_bytes[2], ctx->win_bytes,
                             ctx->win_bytes};
    for (int i = 0; i < (ctx->win_k ? 5 : 3); i++)
        ARMT_CL_TRY(clEnqueueCopyBuffer(ctx->queue, to_snapshot ? src[i] : dst[i],
                                        to_snapshot ? dst[i] : src[i], 0, 0, bytes[i], 0, NULL, NULL));
    if (to_snapshot)
        ctx->win_len_prev = ctx->win_len;
    else
        ctx->win_len = ctx->win_len_prev;
    return ARMT_OK;
}

armt_status armt_state_rollback(armt_ctx *ctx, armt_status st, armt_err *err) {
    clFinish(ctx->queue);
    armt_err saved;
    armt_err_init(&saved);
    armt_err_copy(&saved, err);
    if (armt_state_copy(ctx, 0, err) == ARMT_OK && clFinish(ctx->queue) == CL_SUCCESS)
        armt_err_copy(err, &saved);
    else
        armt_err_set(err, st, "%s (and restoring the memory state failed: %s)", armt_err_msg(&saved),
                     armt_err_msg(err));
    armt_err_free(&saved);
    return st;
}

armt_status armt_call_begin(armt_call *F, armt_ctx *ctx, const armt_forward_params *p, const int32_t *ids,
                            size_t n) {
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
    F->H = armt_config_mem_heads(cfg);
    F->dkh = F->dk / F->H;
    F->dvh = F->d / F->H;
    F->normalized = cfg->variant != ARMT_VARIANT_PAPER;
    F->no_denom = cfg->no_denom;
    F->gating = cfg->gating;
    F->ns = cfg->use_sink ? 1 : 0;
    F->win = cfg->sliding_window ? cfg->segment_size : 0;
    F->win_first = F->win ? ctx->win_len : 0;
    F->mem_all = cfg->variant == ARMT_VARIANT_INNER && p->schedule != ARMT_SCHEDULE_FULL ? F->M : 0;
    size_t nl = (size_t)cfg->n_layers;
    F->a_off = calloc(nl, sizeof(size_t));
    F->b_off = calloc(nl, sizeof(size_t));
    F->c_off = calloc(nl, sizeof(size_t));
    F->written = calloc(nl, 1);
    if (!F->a_off || !F->b_off || !F->c_off || !F->written) {
        armt_call_end(F);
        return armt_err_set(F->err, ARMT_STATUS_OUT_OF_HOST_MEMORY, "forward: out of host memory");
    }
    armt_status st = armt_ctx_memory_get(ctx, NULL, NULL, F->written);
    /* the bf16 copy of W_mem follows whatever the state became since the last call (set, load, reset) */
    if (st == ARMT_OK) st = armt_step_mem_bf16_refresh(F, 0, cfg->n_layers);
    if (st != ARMT_OK) armt_call_end(F);
    return st;
}

void armt_call_end(armt_call *F) {
    free(F->a_off);
    free(F->b_off);
    free(F->c_off);
    free(F->written);
    F->a_off = F->b_off = F->c_off = NULL;
    F->written = NULL;
}

armt_status armt_forward(armt_ctx *ctx, const int32_t *ids, size_t n, const armt_forward_params *params) {
    if (!ctx) return armt_err_set(NULL, ARMT_STATUS_INVALID_ARGUMENT, "armt_forward: ctx is NULL");
    armt_err *err = &ctx->err;
    ARMT_RETURN_IF(!params, ARMT_STATUS_INVALID_ARGUMENT, "armt_forward: params is NULL");
    ARMT_RETURN_IF(n == 0, ARMT_STATUS_EMPTY_INPUT, "armt_forward: no tokens (n = 0)");
    ARMT_RETURN_IF(!ids, ARMT_STATUS_INVALID_ARGUMENT, "armt_forward: ids is NULL");
    ARMT_RETURN_IF(n > (size_t)INT32_MAX, ARMT_STATUS_INVALID_ARGUMENT,
                   "armt_forward: %zu tokens is too many", n);
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
    if (profiled) armt_ctx_prof_restart(ctx);
    double t0 = now_seconds();
    pthread_mutex_lock(&ctx->rt->lock);
    ctx->rt->peak_bytes = ctx->rt->device_bytes;
    pthread_mutex_unlock(&ctx->rt->lock);

    armt_call F;
    ctx->prof_on = profiled;
    armt_status st = armt_call_begin(&F, ctx, params, ids, n);
    if (st != ARMT_OK) {
        ctx->prof_on = ctx->profile;
        return st;
    }
    int armt = params->schedule != ARMT_SCHEDULE_FULL;
    if (armt) ARMT_TRY_GOTO(armt_state_copy(ctx, 1, err), done);
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
    if (armt)
        armt_state_rollback(ctx, st, err);
    else
        clFinish(ctx->queue);
done:
    ctx->prof_on = ctx->profile;
    pthread_mutex_lock(&ctx->rt->lock);
    ctx->stats.peak_device_bytes = ctx->rt->peak_bytes;
    pthread_mutex_unlock(&ctx->rt->lock);
    ctx->stats.device_bytes = ctx->scratch_bytes + 2 * (ctx->state_bytes[0] + ctx->state_bytes[1] +
                                                        ctx->state_bytes[2] + 2 * ctx->win_bytes);
    armt_call_end(&F);
    return st;
}
