/*
 * ctx.c - a context: its queue and kernels, the resident memory state (W_mem, z, written flags, and the
 * sliding window's keys and values), its scratch (grown on demand, see forward.c), and state save / restore.
 */
#include "config.h"

#include "common/util.h"
#include "compute/step.h"
#include "device/internal.h"
#include "io/armt_config.h"
#include "io/state_file.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

armt_ctx_params armt_ctx_default_params(void) {
    armt_ctx_params p;
    memset(&p, 0, sizeof p);
    return p;
}

const char *armt_ctx_last_error(const armt_ctx *ctx) {
    return ctx ? armt_err_msg(&ctx->err) : armt_last_error();
}
armt_model *armt_ctx_model(const armt_ctx *ctx) { return ctx ? ctx->model : NULL; }

/* The device keeps W_mem[l] as one (d_key, d) matrix, block-diagonal with several memory heads; the host
 * interface holds only the heads' blocks, [layers, H, d_key/H, d/H] (the reference's layout; the same as
 * the device's with one head). */
static size_t device_w_floats(const armt_config *c) {
    return (size_t)c->n_layers * (size_t)armt_config_d_key(c) * (size_t)c->hidden_size;
}

size_t armt_ctx_memory_w_count(const armt_ctx *ctx) {
    if (!ctx) return 0;
    const armt_config *c = &ctx->model->cfg;
    return device_w_floats(c) / (size_t)armt_config_mem_heads(c);
}

/* Between the device's block-diagonal W_mem and the host's heads (to_heads = 1: device -> host). */
static void heads_convert(const armt_config *c, float *dev, float *host, int to_heads) {
    const size_t H = (size_t)armt_config_mem_heads(c), dk = (size_t)armt_config_d_key(c),
                 d = (size_t)c->hidden_size, dkh = dk / H, dvh = d / H;
    for (size_t l = 0; l < (size_t)c->n_layers; l++)
        for (size_t h = 0; h < H; h++)
            for (size_t a = 0; a < dkh; a++) {
                float *dv = dev + (l * dk + h * dkh + a) * d + h * dvh;
                float *hv = host + ((l * H + h) * dkh + a) * dvh;
                if (to_heads)
                    memcpy(hv, dv, dvh * sizeof *hv);
                else
                    memcpy(dv, hv, dvh * sizeof *hv);
            }
}

size_t armt_ctx_memory_z_count(const armt_ctx *ctx) {
    if (!ctx) return 0;
    const armt_config *c = &ctx->model->cfg;
    return (size_t)c->n_layers * (size_t)armt_config_d_key(c);
}

void armt_ctx_free(armt_ctx *ctx) {
    if (!ctx) return;
    if (ctx->queue) clFinish(ctx->queue);
    armt_ctx_release_scratch(ctx);
    armt_buffer_release(ctx->rt, &ctx->w_mem, ctx->state_bytes[0]);
    armt_buffer_release(ctx->rt, &ctx->z, ctx->state_bytes[1]);
    armt_buffer_release(ctx->rt, &ctx->written, ctx->state_bytes[2]);
    armt_buffer_release(ctx->rt, &ctx->w_mem_prev, ctx->state_bytes[0]);
    armt_buffer_release(ctx->rt, &ctx->z_prev, ctx->state_bytes[1]);
    armt_buffer_release(ctx->rt, &ctx->written_prev, ctx->state_bytes[2]);
    armt_buffer_release(ctx->rt, &ctx->w_mem_bf, ctx->state_bytes[0] / 2);
    armt_buffer_release(ctx->rt, &ctx->win_k, ctx->win_bytes);
    armt_buffer_release(ctx->rt, &ctx->win_v, ctx->win_bytes);
    armt_buffer_release(ctx->rt, &ctx->win_k_prev, ctx->win_bytes);
    armt_buffer_release(ctx->rt, &ctx->win_v_prev, ctx->win_bytes);
    armt_kernels_release(ctx->k);
    armt_ctx_prof_collect(ctx);
    free(ctx->prof);
    if (ctx->queue) clReleaseCommandQueue(ctx->queue);
    armt_err_free(&ctx->err);
    free(ctx);
}

armt_status armt_ctx_zero_buffer(armt_ctx *ctx, cl_mem b, size_t bytes, armt_err *err) {
    cl_uint zero = 0;
    ARMT_CL_TRY(clEnqueueFillBuffer(ctx->queue, b, &zero, sizeof zero, 0, bytes, 0, NULL, NULL));
    return ARMT_OK;
}

armt_status armt_ctx_create(armt_model *model, const armt_ctx_params *params, armt_ctx **out) {
    if (out) *out = NULL; /* also when model is NULL (a failed create before): never a stale handle */
    if (!model || !out)
        return armt_err_set(model ? &model->err : NULL, ARMT_STATUS_INVALID_ARGUMENT,
                            "armt_ctx_create: model and out must not be NULL");
    *out = NULL;
    armt_ctx_params p = params ? *params : armt_ctx_default_params();
    if (p.profile < -1 || p.profile > 1)
        return armt_err_set(&model->err, ARMT_STATUS_INVALID_ARGUMENT,
                            "armt_ctx_create: profile is %d, not -1 (off), 0 (the runtime's) or 1 (on)",
                            p.profile);
    armt_ctx *ctx = calloc(1, sizeof *ctx);
    if (!ctx)
        return armt_err_set(&model->err, ARMT_STATUS_OUT_OF_HOST_MEMORY,
                            "armt_ctx_create: out of host memory");
    armt_err_init(&ctx->err);
    ctx->model = model;
    ctx->rt = model->rt;
    ctx->profile = p.profile == 0 ? ctx->rt->profile : p.profile > 0;
    ctx->prof_on = ctx->profile;
    armt_err *err = &ctx->err;
    armt_status st;
    cl_int e;
    cl_command_queue_properties qp = ctx->profile ? CL_QUEUE_PROFILING_ENABLE : 0;
    ctx->queue = clCreateCommandQueue(ctx->rt->context, ctx->rt->device, qp, &e);
    if (e != CL_SUCCESS) {
        st = armt_err_cl(err, "clCreateCommandQueue", e);
        goto fail;
    }
    ARMT_TRY_GOTO(armt_kernels_create(ctx->rt, model->attention, ctx->k, err), fail);
    ctx->state_bytes[0] = device_w_floats(&model->cfg) * sizeof(float);
    ctx->state_bytes[1] = armt_ctx_memory_z_count(ctx) * sizeof(float);
    ctx->state_bytes[2] = (size_t)model->cfg.n_layers * sizeof(cl_int);
    if (model->cfg.sliding_window) /* (n_layers, segment_size, n_kv_heads * head_dim) floats */
        ctx->win_bytes = (size_t)model->cfg.n_layers * (size_t)model->cfg.segment_size *
                         (size_t)model->cfg.n_kv_heads * (size_t)model->cfg.head_dim * sizeof(float);
    int bf = model->precision == ARMT_PRECISION_BF16;
    {
        size_t sizes[11] = {ctx->state_bytes[0],
                            ctx->state_bytes[1],
                            ctx->state_bytes[2],
                            ctx->state_bytes[0],
                            ctx->state_bytes[1],
                            ctx->state_bytes[2],
                            bf ? ctx->state_bytes[0] / 2 : 0,
                            ctx->win_bytes,
                            ctx->win_bytes,
                            ctx->win_bytes,
                            ctx->win_bytes};
        ARMT_TRY_GOTO(armt_device_fits(ctx->rt, sizes, ctx->win_bytes ? 11 : 7, "context memory state", err),
                      fail);
    }
    ARMT_TRY_GOTO(armt_buffer_create(ctx->rt, ctx->state_bytes[0], &ctx->w_mem, "W_mem", err), fail);
    ARMT_TRY_GOTO(armt_buffer_create(ctx->rt, ctx->state_bytes[1], &ctx->z, "z", err), fail);
    ARMT_TRY_GOTO(armt_buffer_create(ctx->rt, ctx->state_bytes[2], &ctx->written, "written", err), fail);
    ARMT_TRY_GOTO(armt_buffer_create(ctx->rt, ctx->state_bytes[0], &ctx->w_mem_prev, "W_mem snapshot", err),
                  fail);
    ARMT_TRY_GOTO(armt_buffer_create(ctx->rt, ctx->state_bytes[1], &ctx->z_prev, "z snapshot", err), fail);
    ARMT_TRY_GOTO(
        armt_buffer_create(ctx->rt, ctx->state_bytes[2], &ctx->written_prev, "written snapshot", err), fail);
    if (bf)
        ARMT_TRY_GOTO(armt_buffer_create(ctx->rt, ctx->state_bytes[0] / 2, &ctx->w_mem_bf, "W_mem bf16", err),
                      fail);
    if (ctx->win_bytes) {
        cl_mem *w[4] = {&ctx->win_k, &ctx->win_v, &ctx->win_k_prev, &ctx->win_v_prev};
        for (int i = 0; i < 4; i++)
            ARMT_TRY_GOTO(armt_buffer_create(ctx->rt, ctx->win_bytes, w[i], "sliding window", err), fail);
    }
    ARMT_TRY_GOTO(armt_ctx_reset(ctx), fail);
    *out = ctx;
    return ARMT_OK;
fail:
    armt_err_copy(&model->err, err);
    armt_ctx_free(ctx);
    return st;
}

armt_status armt_ctx_reset(armt_ctx *ctx) {
    if (!ctx) return armt_err_set(NULL, ARMT_STATUS_INVALID_ARGUMENT, "armt_ctx_reset: ctx is NULL");
    armt_err *err = &ctx->err;
    ARMT_TRY(armt_ctx_zero_buffer(ctx, ctx->w_mem, ctx->state_bytes[0], err));
    ARMT_TRY(armt_ctx_zero_buffer(ctx, ctx->z, ctx->state_bytes[1], err));
    ARMT_TRY(armt_ctx_zero_buffer(ctx, ctx->written, ctx->state_bytes[2], err));
    if (ctx->win_k) {
        ARMT_TRY(armt_ctx_zero_buffer(ctx, ctx->win_k, ctx->win_bytes, err));
        ARMT_TRY(armt_ctx_zero_buffer(ctx, ctx->win_v, ctx->win_bytes, err));
    }
    ARMT_CL_TRY(clFinish(ctx->queue));
    ctx->win_len = 0;
    return ARMT_OK;
}

armt_status armt_ctx_memory_get(armt_ctx *ctx, float *w_mem, float *z, uint8_t *written) {
    if (!ctx) return armt_err_set(NULL, ARMT_STATUS_INVALID_ARGUMENT, "armt_ctx_memory_get: ctx is NULL");
    armt_err *err = &ctx->err;
    const armt_config *c = &ctx->model->cfg;
    if (w_mem && armt_config_mem_heads(c) == 1)
        ARMT_CL_TRY(clEnqueueReadBuffer(ctx->queue, ctx->w_mem, CL_TRUE, 0, ctx->state_bytes[0], w_mem, 0,
                                        NULL, NULL));
    if (w_mem && armt_config_mem_heads(c) > 1) {
        float *full = malloc(ctx->state_bytes[0]);
        if (!full)
            return armt_err_set(err, ARMT_STATUS_OUT_OF_HOST_MEMORY,
                                "armt_ctx_memory_get: out of host memory");
        cl_int e =
            clEnqueueReadBuffer(ctx->queue, ctx->w_mem, CL_TRUE, 0, ctx->state_bytes[0], full, 0, NULL, NULL);
        if (e == CL_SUCCESS) heads_convert(c, full, w_mem, 1);
        free(full);
        if (e != CL_SUCCESS) return armt_err_cl(err, "clEnqueueReadBuffer(W_mem)", e);
    }
    if (z)
        ARMT_CL_TRY(
            clEnqueueReadBuffer(ctx->queue, ctx->z, CL_TRUE, 0, ctx->state_bytes[1], z, 0, NULL, NULL));
    if (written) {
        int n = ctx->model->cfg.n_layers;
        cl_int *tmp = malloc((size_t)n * sizeof *tmp);
        if (!tmp)
            return armt_err_set(err, ARMT_STATUS_OUT_OF_HOST_MEMORY,
                                "armt_ctx_memory_get: out of host memory");
        cl_int e = clEnqueueReadBuffer(ctx->queue, ctx->written, CL_TRUE, 0, ctx->state_bytes[2], tmp, 0,
                                       NULL, NULL);
        if (e == CL_SUCCESS)
            for (int i = 0; i < n; i++)
                written[i] = tmp[i] ? 1 : 0;
        free(tmp);
        if (e != CL_SUCCESS) return armt_err_cl(err, "clEnqueueReadBuffer(written)", e);
    }
    return ARMT_OK;
}

armt_status armt_ctx_memory_set(armt_ctx *ctx, const float *w_mem, const float *z, const uint8_t *written) {
    if (!ctx) return armt_err_set(NULL, ARMT_STATUS_INVALID_ARGUMENT, "armt_ctx_memory_set: ctx is NULL");
    armt_err *err = &ctx->err;
    ARMT_RETURN_IF(!w_mem || !z || !written, ARMT_STATUS_INVALID_ARGUMENT,
                   "armt_ctx_memory_set: w_mem, z and written are all required");
    int n = ctx->model->cfg.n_layers;
    cl_int *tmp = malloc((size_t)n * sizeof *tmp);
    if (!tmp)
        return armt_err_set(err, ARMT_STATUS_OUT_OF_HOST_MEMORY, "armt_ctx_memory_set: out of host memory");
    for (int i = 0; i < n; i++)
        tmp[i] = written[i] ? 1 : 0;
    const armt_config *c = &ctx->model->cfg;
    float *full = NULL;
    if (armt_config_mem_heads(c) > 1) { /* the heads' blocks on the diagonal, zeros elsewhere */
        full = calloc(1, ctx->state_bytes[0]);
        if (!full) {
            free(tmp);
            return armt_err_set(err, ARMT_STATUS_OUT_OF_HOST_MEMORY,
                                "armt_ctx_memory_set: out of host memory");
        }
        heads_convert(c, full, (float *)(uintptr_t)w_mem, 0);
    }
    cl_int e = clEnqueueWriteBuffer(ctx->queue, ctx->w_mem, CL_TRUE, 0, ctx->state_bytes[0],
                                    full ? full : w_mem, 0, NULL, NULL);
    free(full);
    if (e == CL_SUCCESS)
        e = clEnqueueWriteBuffer(ctx->queue, ctx->z, CL_TRUE, 0, ctx->state_bytes[1], z, 0, NULL, NULL);
    if (e == CL_SUCCESS)
        e = clEnqueueWriteBuffer(ctx->queue, ctx->written, CL_TRUE, 0, ctx->state_bytes[2], tmp, 0, NULL,
                                 NULL);
    free(tmp);
    if (e != CL_SUCCESS) return armt_err_cl(err, "clEnqueueWriteBuffer(memory state)", e);
    ctx->win_len = 0; /* the sliding window is not part of this interface: empty, as after a reset */
    return ARMT_OK;
}

/* ======================================================================================================= */
/* State files                                                                                             */
/* ======================================================================================================= */

/* The format is in io/state_file.c. Saving is durable and atomic (armt_write_file_durable: a temporary file
 * in the same directory, fsync, rename, fsync of the directory); loading reads the whole file without
 * blocking (a FIFO or a directory is refused), checks all of it, and only then changes the state. */
static armt_state_shape state_shape(const armt_ctx *ctx) {
    const armt_config *c = &ctx->model->cfg;
    armt_state_shape s = {(uint32_t)c->n_layers,
                          (uint32_t)armt_config_d_key(c),
                          (uint32_t)c->hidden_size,
                          ctx->model->fingerprint,
                          (uint32_t)c->variant,
                          (uint32_t)armt_config_mem_heads(c),
                          c->sliding_window ? (uint32_t)c->segment_size : 0,
                          c->sliding_window ? (uint32_t)(c->n_kv_heads * c->head_dim) : 0};
    return s;
}

/* The sliding window to the host (the rows below the held ones as zeros: a saved file does not depend on
 * what a reset left there), or from the host. */
armt_status armt_ctx_window_get(armt_ctx *ctx, armt_state_window *x) {
    armt_err *err = &ctx->err;
    const armt_config *c = &ctx->model->cfg;
    ARMT_CL_TRY(clEnqueueReadBuffer(ctx->queue, ctx->win_k, CL_TRUE, 0, ctx->win_bytes, x->k, 0, NULL, NULL));
    ARMT_CL_TRY(clEnqueueReadBuffer(ctx->queue, ctx->win_v, CL_TRUE, 0, ctx->win_bytes, x->v, 0, NULL, NULL));
    const size_t W = (size_t)c->segment_size, width = (size_t)c->n_kv_heads * (size_t)c->head_dim;
    const size_t empty = (W - (size_t)ctx->win_len) * width;
    for (size_t l = 0; l < (size_t)c->n_layers; l++) {
        memset(x->k + l * W * width, 0, empty * sizeof(float));
        memset(x->v + l * W * width, 0, empty * sizeof(float));
    }
    x->len = (uint32_t)ctx->win_len;
    return ARMT_OK;
}

armt_status armt_ctx_window_set(armt_ctx *ctx, const armt_state_window *x) {
    armt_err *err = &ctx->err;
    ARMT_CL_TRY(
        clEnqueueWriteBuffer(ctx->queue, ctx->win_k, CL_TRUE, 0, ctx->win_bytes, x->k, 0, NULL, NULL));
    ARMT_CL_TRY(
        clEnqueueWriteBuffer(ctx->queue, ctx->win_v, CL_TRUE, 0, ctx->win_bytes, x->v, 0, NULL, NULL));
    ctx->win_len = (int)x->len;
    return ARMT_OK;
}

armt_status armt_ctx_memory_save(armt_ctx *ctx, const char *path) {
    if (!ctx || !path)
        return armt_err_set(ctx ? &ctx->err : NULL, ARMT_STATUS_INVALID_ARGUMENT,
                            "armt_ctx_memory_save: NULL argument");
    armt_err *err = &ctx->err;
    armt_state_shape shape = state_shape(ctx);
    size_t nw = armt_ctx_memory_w_count(ctx), nz = armt_ctx_memory_z_count(ctx), nl = shape.n_layers;
    size_t bytes = armt_state_file_bytes(&shape);
    float *w = malloc(nw * sizeof *w), *z = malloc(nz * sizeof *z);
    uint8_t *wr = malloc(nl);
    unsigned char *buf = bytes ? malloc(bytes) : NULL;
    armt_state_window x = {NULL, NULL, 0};
    if (ctx->win_k) {
        x.k = malloc(ctx->win_bytes);
        x.v = malloc(ctx->win_bytes);
    }
    armt_status st = ARMT_OK;
    if (!w || !z || !wr || !buf || (ctx->win_k && (!x.k || !x.v))) {
        st = armt_err_set(err, ARMT_STATUS_OUT_OF_HOST_MEMORY, "armt_ctx_memory_save: out of host memory");
        goto done;
    }
    ARMT_TRY_GOTO(armt_ctx_memory_get(ctx, w, z, wr), done);
    if (ctx->win_k) ARMT_TRY_GOTO(armt_ctx_window_get(ctx, &x), done);
    armt_state_encode(&shape, w, z, wr, &x, buf);
    st = armt_write_file_durable(path, "armt_ctx_memory_save", buf, bytes, err);
done:
    free(buf);
    free(w);
    free(z);
    free(wr);
    free(x.k);
    free(x.v);
    return st;
}

armt_status armt_ctx_memory_load(armt_ctx *ctx, const char *path) {
    if (!ctx || !path)
        return armt_err_set(ctx ? &ctx->err : NULL, ARMT_STATUS_INVALID_ARGUMENT,
                            "armt_ctx_memory_load: NULL argument");
    armt_err *err = &ctx->err;
    armt_state_shape shape = state_shape(ctx);
    size_t nw = armt_ctx_memory_w_count(ctx), nz = armt_ctx_memory_z_count(ctx), nl = shape.n_layers;
    size_t bytes = armt_state_file_bytes(&shape);
    char *data = NULL;
    size_t len = 0;
    /* a longer file is read only up to one byte past the expected size: enough to call it too long */
    ARMT_TRY(armt_read_regular_file(path, "armt_ctx_memory_load", bytes, &data, &len, err));
    float *w = malloc(nw * sizeof *w), *z = malloc(nz * sizeof *z);
    uint8_t *wr = malloc(nl);
    armt_state_window x = {NULL, NULL, 0};
    if (ctx->win_k) {
        x.k = malloc(ctx->win_bytes);
        x.v = malloc(ctx->win_bytes);
    }
    armt_status st = ARMT_OK;
    if (!w || !z || !wr || (ctx->win_k && (!x.k || !x.v))) {
        st = armt_err_set(err, ARMT_STATUS_OUT_OF_HOST_MEMORY, "armt_ctx_memory_load: out of host memory");
        goto done;
    }
    ARMT_TRY_GOTO(armt_state_decode((const unsigned char *)data, len, &shape, path, w, z, wr, &x, err), done);
    /* the window first: a failure there leaves W_mem and z as they were; one in memory_set (which empties
     * the window) puts the window's length back */
    {
        const int len_before = ctx->win_len;
        if (ctx->win_k) ARMT_TRY_GOTO(armt_ctx_window_set(ctx, &x), done);
        st = armt_ctx_memory_set(ctx, w, z, wr);
        if (ctx->win_k) ctx->win_len = st == ARMT_OK ? (int)x.len : len_before;
    }
done:
    free(data);
    free(w);
    free(z);
    free(wr);
    free(x.k);
    free(x.v);
    return st;
}

armt_status armt_ctx_stats(const armt_ctx *ctx, armt_stats *out) {
    if (!ctx || !out)
        return armt_err_set(NULL, ARMT_STATUS_INVALID_ARGUMENT, "armt_ctx_stats: NULL argument");
    *out = ctx->stats;
    return ARMT_OK;
}

/* ======================================================================================================= */
/* Profiling                                                                                               */
/* ======================================================================================================= */

/* Keeps one event with its category, GEMM site (-1: none) and FLOPs; drops it when out of memory. */
static void prof_keep(armt_ctx *ctx, int category, cl_event ev, int site, double flop) {
    if (!ev) return;
    if (ctx->prof_n == ctx->prof_cap) {
        size_t cap = ctx->prof_cap ? 2 * ctx->prof_cap : 4096;
        struct armt_prof_event *p = realloc(ctx->prof, cap * sizeof *p);
        if (!p) { /* out of memory: drop this sample */
            clReleaseEvent(ev);
            return;
        }
        ctx->prof = p;
        ctx->prof_cap = cap;
    }
    ctx->prof[ctx->prof_n++] = (struct armt_prof_event){ev, category, site, flop};
}

void armt_ctx_prof_add_gemm(armt_ctx *ctx, int category, cl_event ev, int site, double flop) {
    prof_keep(ctx, category, ev, site >= 0 && site < ARMT_GSITE_COUNT ? site : -1, flop);
}

void armt_ctx_prof_add(armt_ctx *ctx, int category, cl_event ev) { prof_keep(ctx, category, ev, -1, 0.0); }

void armt_ctx_prof_drop(armt_ctx *ctx) {
    if (ctx->prof_n && ctx->queue) clFinish(ctx->queue);
    for (size_t i = 0; i < ctx->prof_n; i++)
        clReleaseEvent(ctx->prof[i].ev);
    ctx->prof_n = 0;
}

void armt_ctx_prof_restart(armt_ctx *ctx) {
    armt_ctx_prof_drop(ctx);
    memset(ctx->prof_s, 0, sizeof ctx->prof_s);
    memset(ctx->prof_gs, 0, sizeof ctx->prof_gs);
    memset(ctx->prof_gf, 0, sizeof ctx->prof_gf);
}

void armt_ctx_prof_collect(armt_ctx *ctx) {
    if (ctx->prof_n == 0) return;
    if (ctx->queue) clFinish(ctx->queue);
    for (size_t i = 0; i < ctx->prof_n; i++) {
        const struct armt_prof_event *p = &ctx->prof[i];
        cl_ulong t0 = 0, t1 = 0;
        if (clGetEventProfilingInfo(p->ev, CL_PROFILING_COMMAND_START, sizeof t0, &t0, NULL) == CL_SUCCESS &&
            clGetEventProfilingInfo(p->ev, CL_PROFILING_COMMAND_END, sizeof t1, &t1, NULL) == CL_SUCCESS &&
            t1 >= t0) {
            double sec = 1e-9 * (double)(t1 - t0);
            ctx->prof_s[p->cat] += sec;
            if (p->site >= 0) {
                ctx->prof_gs[p->site] += sec;
                ctx->prof_gf[p->site] += p->flop;
            }
        }
        clReleaseEvent(p->ev);
    }
    ctx->prof_n = 0;
}

size_t armt_ctx_profile(const armt_ctx *ctx, const char **names, double *seconds, size_t cap) {
    if (!ctx) return 0;
    size_t n = 0;
    for (int c = 0; c < ARMT_PROF_COUNT; c++) {
        if (ctx->prof_s[c] <= 0.0) continue;
        if (n < cap) {
            if (names)
                names[n] = c == ARMT_PROF_CLBLAST ? "clblast_sgemm" : armt_kernel_name((armt_kernel_id)c);
            if (seconds) seconds[n] = ctx->prof_s[c];
        }
        n++;
    }
    return n;
}

size_t armt_ctx_profile_gemm(const armt_ctx *ctx, const char **names, double *seconds, double *flop,
                             size_t cap) {
    if (!ctx) return 0;
    static const char *const extra[] = {"wg+wu", "mem_read", "mem_prev", "mem_update", "wk+wv", "wq+wk+wv"};
    size_t n = 0;
    for (int c = 0; c < ARMT_GSITE_COUNT; c++) {
        if (ctx->prof_gs[c] <= 0.0) continue;
        if (n < cap) {
            if (names)
                names[n] = c < ARMT_ROLE_COUNT ? armt_role_name((armt_role)c) : extra[c - ARMT_ROLE_COUNT];
            if (seconds) seconds[n] = ctx->prof_gs[c];
            if (flop) flop[n] = ctx->prof_gf[c];
        }
        n++;
    }
    return n;
}
