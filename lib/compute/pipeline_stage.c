/*
 * pipeline_stage.c - one stage's part of a pipelined forward: the cells of its layers tick by tick, as
 * ordinary steps (step.c) on its local layers 0 .. count - 1, and the residual rows it takes from the stage
 * before and hands to the stage after (docs/DESIGN.md, "Pipeline across devices").
 *
 *   diagonal    tick d: cells (l, s) with l + s = d and first <= l < first + count     S + Lyr - 1 ticks
 *   sequential  tick t: segment t / P through the layers of stage t % P                S * P ticks
 */
#include "config.h"

#include "compute/pipeline.h"

#include <stdlib.h>
#include <string.h>

uint64_t armt_stage_ticks(int diagonal, int S, int n_layers, int P, int lag) {
    return diagonal ? (uint64_t)S + (uint64_t)n_layers - 1 + (uint64_t)lag * (uint64_t)(P - 1)
                    : (uint64_t)S * (uint64_t)P;
}

int armt_stage_boundary_segment(int diagonal, int S, int P, int b, int first_next, int lag, int64_t t) {
    if (t < 0) return -1;
    if (!diagonal) return t % P == b ? (int)(t / P) : -1;
    /* the segment on the last layer of stage b, first_next - 1, at its diagonal t - lag * b */
    int64_t s = t - (int64_t)lag * b - (int64_t)(first_next - 1);
    return s >= 0 && s < S ? (int)s : -1;
}

/* Tokens of segment s of the call. */
static int segment_tokens(const armt_stage *g, int s) {
    const size_t L = (size_t)g->F.cfg->segment_size, rest = g->F.n - (size_t)s * L;
    return (int)(rest < L ? rest : L);
}

/* Rows of the model's last layer that nothing reads (forward.c's rule): only the last stage skips them. */
static int unread_rows(const armt_stage *g, int Ls, int last_segment) {
    const armt_forward_params *p = &g->fp;
    if (!g->last || p->all_rows) return 0;
    if (p->output == ARMT_OUTPUT_NONE) return g->F.ns + Ls;
    if (p->output == ARMT_OUTPUT_LOGITS_LAST) return g->F.ns + (last_segment ? Ls - 1 : Ls);
    return 0;
}

armt_status armt_stage_begin(armt_stage *g, int P, const int32_t *ids, size_t n,
                             const armt_forward_params *p) {
    (void)P;
    armt_ctx *ctx = g->ctx;
    armt_err *err = &ctx->err;
    g->fp = *p;
    if (!g->last) {
        g->fp.output = ARMT_OUTPUT_NONE;
        g->fp.out = NULL;
        g->fp.out_count = 0;
    }
    g->fp.progress = NULL; /* the pipeline reports progress per tick */
    g->diagonal = p->schedule == ARMT_SCHEDULE_DIAGONAL;
    g->busy = 0.0;
    g->bytes_sent = 0;
    memset(&ctx->stats, 0, sizeof ctx->stats);
    armt_ctx_prof_drop(ctx);
    ctx->prof_on = 0; /* the queue profiles for the busy markers only */
    ARMT_TRY(armt_call_begin(&g->F, ctx, &g->fp, ids, n));
    armt_call *F = &g->F;
    armt_status st;
    const size_t L = (size_t)F->cfg->segment_size;
    g->S = (int)((n + L - 1) / L);
    g->Ls_last = (int)(n - (size_t)(g->S - 1) * L);
    g->T = (g->S == 1 ? g->Ls_last + F->M : (int)L + F->M) + F->ns;
    g->cap = g->diagonal ? (g->S < g->count ? g->S : g->count) : 1;
    size_t out_rows = g->fp.output == ARMT_OUTPUT_NONE ? 0 : (L < 512 ? L : 512);
    size_t need = (size_t)g->T * (size_t)F->d;
    if (g->host_floats < need) {
        float *h = realloc(g->host, need * sizeof(float));
        if (!h) {
            armt_call_end(F);
            return armt_err_set(err, ARMT_STATUS_OUT_OF_HOST_MEMORY, "pipeline: out of host memory");
        }
        g->host = h;
        g->host_floats = need;
    }
    ARMT_TRY_GOTO(armt_state_copy(ctx, 1, err), fail_call);
    ARMT_TRY_GOTO(armt_scratch_grow(F, (size_t)g->cap, (size_t)g->T, (size_t)g->T, n, out_rows, 0), fail);
    if (g->first == 0) ARMT_TRY_GOTO(armt_step_upload_ids(F, 0, n), fail);
    g->in_call = 1;
    return ARMT_OK;
fail:
    armt_state_rollback(ctx, st, err);
fail_call:
    armt_call_end(F);
    return st;
}

/* Marks the start (end = 0) or the end of a tick's work on the stage's queue and adds the device time
 * between the two to busy (waiting for the end marker only once the tick is over: the host then blocks on
 * work that is done or about to be). */
static armt_status busy_mark(armt_stage *g, int end) {
    armt_err *err = &g->ctx->err;
    if (!g->ctx->profile) return ARMT_OK;
    cl_event ev;
    ARMT_CL_TRY(clEnqueueMarkerWithWaitList(g->ctx->queue, 0, NULL, &ev));
    if (!end) {
        if (g->mark) clReleaseEvent(g->mark);
        g->mark = ev;
        return ARMT_OK;
    }
    cl_ulong a = 0, b = 0;
    cl_int e = clWaitForEvents(1, &ev);
    if (e == CL_SUCCESS && g->mark)
        e = clGetEventProfilingInfo(g->mark, CL_PROFILING_COMMAND_END, sizeof a, &a, NULL);
    if (e == CL_SUCCESS) e = clGetEventProfilingInfo(ev, CL_PROFILING_COMMAND_END, sizeof b, &b, NULL);
    clReleaseEvent(ev);
    if (g->mark) clReleaseEvent(g->mark);
    g->mark = NULL;
    if (e != CL_SUCCESS) return armt_err_cl(err, "clGetEventProfilingInfo (pipeline busy time)", e);
    if (b > a) g->busy += 1e-9 * (double)(b - a);
    return ARMT_OK;
}

/* The diagonal tick d: cells of global layers lo .. hi. */
static armt_status tick_diagonal(armt_stage *g, int d) {
    armt_call *F = &g->F;
    const int S = g->S, Lyr_all = g->first + g->count; /* layers up to this stage's end */
    int lo = d - S + 1 > g->first ? d - S + 1 : g->first, hi = d < Lyr_all - 1 ? d : Lyr_all - 1;
    if (lo > hi) return ARMT_OK;
    const int short_last = g->Ls_last < F->cfg->segment_size;
    armt_step st = {.l0 = lo - g->first,
                    .G = hi - lo + 1,
                    .s0 = d - lo,
                    .cap = g->cap,
                    .T = g->T,
                    .s_short = short_last ? S - 1 : -1,
                    .T_short = F->ns + g->Ls_last + F->M,
                    .split_rows = F->ns + F->cfg->segment_size + F->M};
    const int leaves = g->last && hi == Lyr_all - 1; /* a segment leaves the model's last layer */
    if (leaves) st.skip = unread_rows(g, segment_tokens(g, d - hi), d - hi == S - 1);
    ARMT_TRY(busy_mark(g, 0));
    if (lo == 0)
        ARMT_TRY(
            armt_step_embed(F, &st, (size_t)d * F->cfg->segment_size, segment_tokens(g, d), F->M, F->ns));
    ARMT_TRY(armt_step_read(F, &st));
    ARMT_TRY(armt_step_layer(F, &st));
    ARMT_TRY(armt_step_write(F, &st));
    if (leaves) {
        const int s = d - hi;
        ARMT_TRY(armt_step_emit(F, (size_t)(s % g->cap), (size_t)g->T, (size_t)s * F->cfg->segment_size,
                                (size_t)segment_tokens(g, s)));
    }
    g->ctx->stats.steps++;
    g->ctx->stats.cells += (uint64_t)st.G;
    return busy_mark(g, 1);
}

/* The sequential tick of segment s: all of the stage's layers. */
static armt_status tick_sequential(armt_stage *g, int s) {
    armt_call *F = &g->F;
    const int Ls = segment_tokens(g, s);
    armt_step st = {.l0 = 0,
                    .G = 1,
                    .s0 = s,
                    .cap = 1,
                    .T = F->ns + Ls + F->M,
                    .s_short = -1,
                    .skip = unread_rows(g, Ls, s == g->S - 1),
                    .split_rows = F->ns + F->cfg->segment_size + F->M};
    ARMT_TRY(busy_mark(g, 0));
    if (g->first == 0) ARMT_TRY(armt_step_embed(F, &st, (size_t)s * F->cfg->segment_size, Ls, F->M, F->ns));
    for (int l = 0; l < g->count; l++) {
        st.l0 = l;
        ARMT_TRY(armt_step_read(F, &st));
        ARMT_TRY(armt_step_layer(F, &st));
        ARMT_TRY(armt_step_write(F, &st));
        g->ctx->stats.steps++;
        g->ctx->stats.cells++;
    }
    if (g->last) ARMT_TRY(armt_step_emit(F, 0, (size_t)st.T, (size_t)s * F->cfg->segment_size, (size_t)Ls));
    return busy_mark(g, 1);
}

armt_status armt_stage_tick(armt_stage *g, int P, uint64_t t) {
    armt_status st = ARMT_OK;
    const int64_t d = (int64_t)t - (int64_t)g->lag * g->index; /* this stage's diagonal */
    if (g->diagonal)
        st = d >= 0 ? tick_diagonal(g, (int)d) : ARMT_OK;
    else if (t % (uint64_t)P == (uint64_t)g->index)
        st = tick_sequential(g, (int)(t / (uint64_t)P));
    /* submitted now: a driver may hold enqueued work until a flush, and the stages' devices are to
     * compute at the same time while the host waits on another stage's rows */
    armt_err *err = &g->ctx->err;
    if (st == ARMT_OK) ARMT_CL_TRY(clFlush(g->ctx->queue));
    return st;
}

/* Segment s's slot: element offset and rows (the whole padded slot in the diagonal ring). */
static void slot_of(const armt_stage *g, int s, size_t *off, size_t *rows) {
    const size_t d = (size_t)g->F.d;
    if (g->diagonal) {
        *off = (size_t)(s % g->cap) * (size_t)g->T * d;
        *rows = (size_t)g->T;
    } else {
        *off = 0;
        *rows = (size_t)(g->F.ns + segment_tokens(g, s) + g->F.M);
    }
}

armt_status armt_stage_rows_out(armt_stage *g, int s, size_t *floats) {
    armt_err *err = &g->ctx->err;
    size_t off, rows;
    slot_of(g, s, &off, &rows);
    *floats = rows * (size_t)g->F.d;
    if (g->write_ev) { /* the last hand-over's write still reads the host rows */
        cl_int e = clWaitForEvents(1, &g->write_ev);
        clReleaseEvent(g->write_ev);
        g->write_ev = NULL;
        if (e != CL_SUCCESS) return armt_err_cl(err, "clWaitForEvents (pipeline hand-over)", e);
    }
    ARMT_CL_TRY(clEnqueueReadBuffer(g->ctx->queue, g->ctx->x, CL_TRUE, off * sizeof(float),
                                    *floats * sizeof(float), g->host, 0, NULL, NULL));
    g->bytes_sent += *floats * sizeof(float);
    return ARMT_OK;
}

armt_status armt_stage_rows_in(armt_stage *g, int s, const float *src, size_t floats, cl_event *ev) {
    armt_err *err = &g->ctx->err;
    size_t off, rows;
    slot_of(g, s, &off, &rows);
    ARMT_RETURN_IF(floats != rows * (size_t)g->F.d, ARMT_STATUS_INVALID_ARGUMENT,
                   "pipeline: stage %d expected %zu rows of segment %d, got %zu floats", g->index, rows, s,
                   floats);
    ARMT_CL_TRY(clEnqueueWriteBuffer(g->ctx->queue, g->ctx->x, ev ? CL_FALSE : CL_TRUE, off * sizeof(float),
                                     floats * sizeof(float), src, 0, NULL, ev));
    return ARMT_OK;
}

armt_status armt_stage_finish(armt_stage *g) {
    if (!g->in_call) return ARMT_OK;
    armt_err *err = &g->ctx->err;
    ARMT_TRY(armt_xfer_end(g));
    if (g->write_ev) {
        cl_int e = clWaitForEvents(1, &g->write_ev);
        clReleaseEvent(g->write_ev);
        g->write_ev = NULL;
        if (e != CL_SUCCESS) return armt_err_cl(err, "clWaitForEvents (pipeline hand-over)", e);
    }
    ARMT_CL_TRY(clFinish(g->ctx->queue));
    return ARMT_OK;
}

armt_status armt_stage_end(armt_stage *g, armt_status st) {
    if (!g->in_call) return st;
    armt_ctx *ctx = g->ctx;
    (void)armt_xfer_end(g); /* nothing in flight may touch the state or the rows after this */
    if (g->write_ev) {
        clWaitForEvents(1, &g->write_ev);
        clReleaseEvent(g->write_ev);
        g->write_ev = NULL;
    }
    if (g->mark) {
        clReleaseEvent(g->mark);
        g->mark = NULL;
    }
    if (st == ARMT_OK) {
        const armt_call *F = &g->F;
        const size_t rows = (size_t)F->win_first + F->n;
        ctx->win_len = F->win == 0 ? 0 : rows < (size_t)F->win ? (int)rows : F->win;
    } else {
        armt_state_rollback(ctx, st, &ctx->err);
    }
    ctx->prof_on = ctx->profile;
    armt_call_end(&g->F);
    g->in_call = 0;
    return st;
}

void armt_stage_free(armt_stage *g) {
    if (!g) return;
    if (g->write_ev) clReleaseEvent(g->write_ev);
    if (g->mark) clReleaseEvent(g->mark);
    armt_xfer_free(g);
    armt_ctx_free(g->ctx);
    armt_model_free(g->model);
    armt_runtime_free(g->rt);
    free(g->host);
    memset(g, 0, sizeof *g);
}
