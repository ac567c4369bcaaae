/*
 * pipeline_overlap.c - the overlapped hand-over of the diagonal pipeline (docs/DESIGN.md, "Pipeline across
 * devices"). Stage p runs diagonal d at tick d + p, so a segment that leaves stage p at tick t is needed by
 * stage p + 1 only at tick t + 2, and its rows travel during tick t + 1, while both devices compute:
 *
 *   tick t      sender, main queue:    the tick, then slot -> dout[k] (a device copy)
 *               sender, second queue:  dout[k] -> host[k]
 *   tick t + 1  (both compute) the host waits for host[k], then (MPI: sends it, the receiving rank gets
 *               rhost[k]) receiver, second queue: host -> din[k]
 *   tick t + 2  receiver, main queue:  din[k] -> its slot (waiting for that write), then the tick
 *
 * k is the segment's parity: the next segment on a boundary uses the other buffers, and a buffer is reused
 * two segments later only once its last use is over (events; across contexts the host waits).
 */
#include "config.h"

#include "compute/pipeline.h"

#include <stdlib.h>

static void drop(cl_event *ev) {
    if (*ev) clReleaseEvent(*ev);
    *ev = NULL;
}

/* Waits for an event and releases it; its failure, recorded. */
static armt_status settle(cl_event *ev, const char *what, armt_err *err) {
    if (!*ev) return ARMT_OK;
    cl_int e = clWaitForEvents(1, ev);
    cl_int status = CL_COMPLETE;
    if (e == CL_SUCCESS)
        e = clGetEventInfo(*ev, CL_EVENT_COMMAND_EXECUTION_STATUS, sizeof status, &status, NULL);
    drop(ev);
    if (e == CL_SUCCESS && status < 0) e = status; /* the command itself failed */
    return e == CL_SUCCESS ? ARMT_OK : armt_err_cl(err, what, e);
}

/* Segment s's slot: element offset and floats (the whole padded slot of the diagonal ring). */
static void slot_of(const armt_stage *g, int s, size_t *off, size_t *floats) {
    const size_t d = (size_t)g->F.d;
    *off = (size_t)(s % g->cap) * (size_t)g->T * d;
    *floats = (size_t)g->T * d;
}

armt_status armt_xfer_prepare(armt_stage *g) {
    armt_stage_xfer *x = &g->x;
    armt_err *err = &g->ctx->err;
    cl_int e;
    if (!x->q) {
        x->q = clCreateCommandQueue(g->rt->context, g->rt->device, 0, &e);
        if (e != CL_SUCCESS) {
            x->q = NULL;
            return armt_err_cl(err, "clCreateCommandQueue (pipeline transfers)", e);
        }
    }
    const size_t bytes = (size_t)g->T * (size_t)g->F.d * sizeof(float);
    if (bytes <= x->bytes) return ARMT_OK;
    for (int k = 0; k < 2; k++) {
        armt_buffer_release(g->rt, &x->dout[k], x->bytes);
        armt_buffer_release(g->rt, &x->din[k], x->bytes);
        free(x->host[k]);
        free(x->rhost[k]);
        x->host[k] = x->rhost[k] = NULL;
    }
    x->bytes = 0;
    for (int k = 0; k < 2; k++) {
        ARMT_TRY(armt_buffer_create(g->rt, bytes, &x->dout[k], "pipeline rows out", err));
        ARMT_TRY(armt_buffer_create(g->rt, bytes, &x->din[k], "pipeline rows in", err));
        x->host[k] = malloc(bytes);
        x->rhost[k] = malloc(bytes);
        if (!x->host[k] || !x->rhost[k])
            return armt_err_set(err, ARMT_STATUS_OUT_OF_HOST_MEMORY, "pipeline: out of host memory");
    }
    x->bytes = bytes;
    return ARMT_OK;
}

armt_status armt_xfer_send(armt_stage *g, int s) {
    armt_stage_xfer *x = &g->x;
    armt_err *err = &g->ctx->err;
    const int k = s & 1;
    size_t off, floats;
    slot_of(g, s, &off, &floats);
    /* host[k] is free once the receiver's write of the segment before last has read it */
    ARMT_TRY(settle(&x->host_busy[k], "pipeline: the previous hand-over", err));
    ARMT_TRY(settle(&x->d2h[k], "pipeline: the previous read-back", err));
    drop(&x->out_copy[k]);
    ARMT_CL_TRY(clEnqueueCopyBuffer(g->ctx->queue, g->ctx->x, x->dout[k], off * sizeof(float), 0,
                                    floats * sizeof(float), 0, NULL, &x->out_copy[k]));
    ARMT_CL_TRY(clFlush(g->ctx->queue));
    ARMT_CL_TRY(clEnqueueReadBuffer(x->q, x->dout[k], CL_FALSE, 0, floats * sizeof(float), x->host[k], 1,
                                    &x->out_copy[k], &x->d2h[k]));
    ARMT_CL_TRY(clFlush(x->q));
    x->floats[k] = floats;
    g->bytes_sent += floats * sizeof(float);
    return ARMT_OK;
}

armt_status armt_xfer_sent(armt_stage *g, int s, const float **rows, size_t *floats) {
    armt_stage_xfer *x = &g->x;
    const int k = s & 1;
    ARMT_TRY(settle(&x->d2h[k], "pipeline: reading the rows back", &g->ctx->err));
    *rows = x->host[k];
    *floats = x->floats[k];
    return ARMT_OK;
}

armt_status armt_xfer_put(armt_stage *g, int s, const float *src, size_t floats, cl_event *busy) {
    armt_stage_xfer *x = &g->x;
    armt_err *err = &g->ctx->err;
    const int k = s & 1;
    size_t off, want;
    slot_of(g, s, &off, &want);
    ARMT_RETURN_IF(floats != want, ARMT_STATUS_INVALID_ARGUMENT,
                   "pipeline: stage %d expected %zu floats of segment %d, got %zu", g->index, want, s,
                   floats);
    ARMT_TRY(settle(&x->h2d[k], "pipeline: the previous write", err));
    /* din[k] is free once the main queue has copied the segment before last out of it */
    const cl_uint nw = x->in_copy[k] ? 1 : 0;
    ARMT_CL_TRY(clEnqueueWriteBuffer(x->q, x->din[k], CL_FALSE, 0, floats * sizeof(float), src, nw,
                                     nw ? &x->in_copy[k] : NULL, &x->h2d[k]));
    ARMT_CL_TRY(clFlush(x->q));
    if (busy) {
        drop(busy);
        clRetainEvent(x->h2d[k]);
        *busy = x->h2d[k];
    }
    return ARMT_OK;
}

armt_status armt_xfer_take(armt_stage *g, int s) {
    armt_stage_xfer *x = &g->x;
    armt_err *err = &g->ctx->err;
    const int k = s & 1;
    size_t off, floats;
    slot_of(g, s, &off, &floats);
    ARMT_RETURN_IF(!x->h2d[k], ARMT_STATUS_INVALID_ARGUMENT, "pipeline: stage %d has no rows of segment %d",
                   g->index, s);
    drop(&x->in_copy[k]);
    ARMT_CL_TRY(clEnqueueCopyBuffer(g->ctx->queue, x->din[k], g->ctx->x, 0, off * sizeof(float),
                                    floats * sizeof(float), 1, &x->h2d[k], &x->in_copy[k]));
    return ARMT_OK;
}

armt_status armt_xfer_end(armt_stage *g) {
    armt_stage_xfer *x = &g->x;
    armt_err *err = &g->ctx->err;
    armt_status st = ARMT_OK, e;
    for (int k = 0; k < 2; k++) {
        cl_event *evs[5] = {&x->out_copy[k], &x->d2h[k], &x->h2d[k], &x->in_copy[k], &x->host_busy[k]};
        for (int i = 0; i < 5; i++)
            if ((e = settle(evs[i], "pipeline: a transfer", err)) != ARMT_OK && st == ARMT_OK) st = e;
    }
    if (x->q && clFinish(x->q) != CL_SUCCESS && st == ARMT_OK)
        st = armt_err_set(err, ARMT_STATUS_OPENCL_ERROR, "pipeline: the transfer queue failed");
    return st;
}

void armt_xfer_free(armt_stage *g) {
    armt_stage_xfer *x = &g->x;
    for (int k = 0; k < 2; k++) {
        drop(&x->out_copy[k]);
        drop(&x->d2h[k]);
        drop(&x->h2d[k]);
        drop(&x->in_copy[k]);
        drop(&x->host_busy[k]);
        if (g->rt) {
            armt_buffer_release(g->rt, &x->dout[k], x->bytes);
            armt_buffer_release(g->rt, &x->din[k], x->bytes);
        }
        free(x->host[k]);
        free(x->rhost[k]);
    }
    if (x->q) clReleaseCommandQueue(x->q);
    *x = (armt_stage_xfer){0};
}
