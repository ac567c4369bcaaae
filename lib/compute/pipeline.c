/*
 * pipeline.c - armt_pipeline: a model split into layer stages over several devices, in one process or one
 * stage per MPI rank; the tick loop, the in-process hand-over, the status agreement, memory state in the
 * whole model's layout (docs/DESIGN.md, "Pipeline across devices").
 */
#include "config.h"

#include "compute/pipeline.h"
#include "io/armt_config.h"
#include "io/checkpoint.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

armt_pipeline_params armt_pipeline_default_params(void) {
    armt_pipeline_params p;
    memset(&p, 0, sizeof p);
    p.runtime = armt_runtime_default_params();
    p.model = armt_model_default_params();
    return p;
}

int armt_pipeline_have_mpi(void) {
#ifdef ARMT_HAVE_MPI
    return 1;
#else
    return 0;
#endif
}

const char *armt_pipeline_last_error(const armt_pipeline *pp) {
    return pp ? armt_err_msg(&pp->err) : armt_last_error();
}

const armt_config *armt_pipeline_config(const armt_pipeline *pp) { return pp ? &pp->cfg : NULL; }

void armt_pipeline_free(armt_pipeline *pp) {
    if (!pp) return;
    for (int i = 0; pp->stage && i < pp->n_local; i++)
        armt_stage_free(&pp->stage[i]);
    if (pp->recv_ev) clReleaseEvent(pp->recv_ev);
    free(pp->stage);
    free(pp->firsts);
    free(pp->recv);
    free(pp->info);
    armt_err_free(&pp->err);
    free(pp);
}

static double now_seconds(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* ======================================================================================================= */
/* Creation                                                                                                */
/* ======================================================================================================= */

/* Entry i of a comma-separated list into buf ("" when the list is shorter); returns the entry count. */
static int list_entry(const char *list, int i, char *buf, size_t n) {
    int count = 0;
    buf[0] = '\0';
    for (const char *p = list; p && *p;) {
        const char *e = strchr(p, ',');
        size_t len = e ? (size_t)(e - p) : strlen(p);
        if (count == i) snprintf(buf, n, "%.*s", (int)len, p);
        count++;
        if (!e) break;
        p = e + 1;
    }
    return count;
}

/* The stage's message, named by stage, layers and device, into the pipeline's error. */
static armt_status stage_failed(armt_pipeline *pp, const armt_stage *g, armt_status st, const char *what) {
    return armt_err_set(&pp->err, st, "pipeline stage %d (layers %d-%d, %s): %s", g->index, g->first,
                        g->first + g->count - 1, g->device[0] ? g->device : "no device", what);
}

/* Runtime, model part and context of one stage on device `sel`. */
static armt_status stage_create(armt_pipeline *pp, const armt_pipeline_params *p, armt_stage *g,
                                const char *sel) {
    armt_runtime_params rp = p->runtime;
    rp.device = sel[0] ? sel : NULL;
    armt_status st = armt_runtime_create(&rp, &g->rt);
    if (st != ARMT_OK) return stage_failed(pp, g, st, armt_last_error());
    armt_device_info info;
    if (armt_runtime_device_info(g->rt, &info) == ARMT_OK)
        snprintf(g->device, sizeof g->device, "%s", info.name);
    armt_err err;
    armt_err_init(&err);
    st = armt_model_create_part(g->rt, p->config, p->path, &p->model, g->first, g->count, &g->model, &err);
    if (st != ARMT_OK) {
        stage_failed(pp, g, st, armt_err_msg(&err));
        armt_err_free(&err);
        return st;
    }
    armt_err_free(&err);
    armt_ctx_params cp = armt_ctx_default_params();
    cp.profile = 1; /* busy-time markers; no per-launch events (pipeline_stage.c) */
    st = armt_ctx_create(g->model, &cp, &g->ctx);
    if (st != ARMT_OK) return stage_failed(pp, g, st, armt_model_last_error(g->model));
    return ARMT_OK;
}

/* The whole model's configuration: the checkpoint's (read through a stage-less open) or the caller's. */
static armt_status whole_config(armt_pipeline *pp, const armt_pipeline_params *p) {
    armt_err *err = &pp->err;
    if (!p->path) {
        ARMT_RETURN_IF(!p->config, ARMT_STATUS_INVALID_ARGUMENT,
                       "armt_pipeline_create: neither a checkpoint path nor a config");
        pp->cfg = *p->config;
        const armt_model_params *mp = &p->model;
        if (mp->segment_size > 0) pp->cfg.segment_size = mp->segment_size;
        if (mp->num_mem_tokens > 0) pp->cfg.num_mem_tokens = mp->num_mem_tokens;
        if (mp->d_mem > 0) pp->cfg.d_mem = mp->d_mem;
        if (mp->correction >= 0) pp->cfg.correction = mp->correction ? 1 : 0;
        return armt_config_check(&pp->cfg, err);
    }
    armt_ckpt *ck = NULL;
    ARMT_TRY(armt_ckpt_open(p->path, &p->model, &ck, err));
    pp->cfg = *armt_ckpt_config(ck);
    armt_ckpt_close(ck);
    return ARMT_OK;
}

/* Layer ranges: the caller's split or the balanced one. */
static armt_status plan_split(armt_pipeline *pp, const armt_pipeline_params *p) {
    armt_err *err = &pp->err;
    const int n = pp->cfg.n_layers, P = pp->P;
    ARMT_RETURN_IF(P < 1 || P > n, ARMT_STATUS_INVALID_ARGUMENT,
                   "armt_pipeline_create: %d stages for a model of %d layers", P, n);
    int *counts = calloc((size_t)P, sizeof *counts);
    pp->firsts = calloc((size_t)P + 1, sizeof *pp->firsts);
    if (!counts || !pp->firsts) {
        free(counts);
        return armt_err_set(err, ARMT_STATUS_OUT_OF_HOST_MEMORY, "armt_pipeline_create: out of host memory");
    }
    if (p->split) {
        int sum = 0, bad = p->n_split != P;
        for (int i = 0; i < P && !bad; i++) {
            counts[i] = p->split[i];
            bad = counts[i] < 1;
            sum += counts[i];
        }
        if (bad || sum != n) {
            free(counts);
            return armt_err_set(
                err, ARMT_STATUS_INVALID_ARGUMENT,
                "armt_pipeline_create: the split must give each of the %d stages at least one "
                "layer and %d in all (%d entries given)",
                P, n, p->n_split);
        }
    } else {
        armt_pipeline_split_balanced(&pp->cfg, P, counts);
    }
    for (int i = 0; i < P; i++)
        pp->firsts[i + 1] = pp->firsts[i] + counts[i];
    free(counts);
    return ARMT_OK;
}

armt_status armt_pipeline_create(const armt_pipeline_params *params, armt_pipeline **out) {
    if (out) *out = NULL;
    if (!params || !out)
        return armt_err_set(NULL, ARMT_STATUS_INVALID_ARGUMENT, "armt_pipeline_create: NULL argument");
    armt_pipeline *pp = calloc(1, sizeof *pp);
    if (!pp)
        return armt_err_set(NULL, ARMT_STATUS_OUT_OF_HOST_MEMORY, "armt_pipeline_create: out of host memory");
    armt_err_init(&pp->err);
    armt_err *err = &pp->err;
    armt_status st;
    const char *devices = params->devices ? params->devices : getenv("ARMT_DEVICES");
    char sel[128];
    pp->ranks = 1;
    pp->mpi = params->mpi != 0;
    pp->overlap = params->no_overlap == 0;
    if (pp->mpi) {
#ifdef ARMT_HAVE_MPI
        ARMT_TRY_GOTO(armt_pmpi_world(&pp->rank, &pp->ranks, err), fail);
        pp->P = pp->ranks;
        pp->n_local = 1;
#else
        st = armt_err_set(
            err, ARMT_STATUS_UNSUPPORTED,
            "armt_pipeline_create: this libarmt was built without MPI (./configure --enable-mpi)");
        goto fail;
#endif
    } else {
        pp->P = list_entry(devices, 0, sel, sizeof sel);
        if (pp->P == 0) {
            st = armt_err_set(err, ARMT_STATUS_INVALID_ARGUMENT,
                              "armt_pipeline_create: no devices (a list such as \"0,1\", or $ARMT_DEVICES)");
            goto fail;
        }
        pp->n_local = pp->P;
    }
    /* from here on every rank reaches the agreement below, whatever fails on it (no rank waits alone) */
    st = whole_config(pp, params);
    if (st == ARMT_OK) st = plan_split(pp, params);
    if (st == ARMT_OK) {
        pp->stage = calloc((size_t)pp->n_local, sizeof *pp->stage);
        pp->info = calloc((size_t)pp->P, sizeof *pp->info);
        if (!pp->stage || !pp->info)
            st =
                armt_err_set(err, ARMT_STATUS_OUT_OF_HOST_MEMORY, "armt_pipeline_create: out of host memory");
    }
    for (int i = 0; pp->stage && i < pp->n_local && st == ARMT_OK; i++) {
        armt_stage *g = &pp->stage[i];
        g->index = pp->mpi ? pp->rank : i;
        g->first = pp->firsts[g->index];
        g->count = pp->firsts[g->index + 1] - g->first;
        g->last = g->index == pp->P - 1;
        if (list_entry(devices, g->index, sel, sizeof sel) == 0 && pp->mpi)
            snprintf(sel, sizeof sel, "%d", g->index); /* rank r: device r of the platform */
        st = stage_create(pp, params, g, sel);
    }
#ifdef ARMT_HAVE_MPI
    if (pp->mpi) st = armt_pmpi_agree(pp, st, err);
#endif
    if (st != ARMT_OK) goto fail;
    for (int i = 0; i < pp->P; i++) {
        pp->info[i].first_layer = pp->firsts[i];
        pp->info[i].n_layers = pp->firsts[i + 1] - pp->firsts[i];
        pp->info[i].rank = pp->mpi ? i : 0;
    }
    for (int i = 0; i < pp->n_local; i++)
        snprintf(pp->info[pp->stage[i].index].device, sizeof pp->info[0].device, "%s", pp->stage[i].device);
    pp->stats.n_stages = pp->P;
    *out = pp;
    return ARMT_OK;
fail:
    armt_err_set(NULL, st, "%s", armt_err_msg(err)); /* the thread's last error explains the failed create */
    armt_pipeline_free(pp);
    return st;
}

/* ======================================================================================================= */
/* Forward                                                                                                 */
/* ======================================================================================================= */

/* The local stages' statuses as the pipeline's: the first failure (its message in pp->err), agreed over
 * the ranks under MPI. */
static armt_status agree(armt_pipeline *pp, armt_status mine) {
#ifdef ARMT_HAVE_MPI
    if (pp->mpi) return armt_pmpi_agree(pp, mine, &pp->err);
#endif
    return mine;
}

armt_status armt_pipeline_agree(armt_pipeline *pp, armt_status mine) { return agree(pp, mine); }

/* Records a local stage's failure: its context's message, named, into the pipeline's error. */
static armt_status local_failed(armt_pipeline *pp, armt_stage *g, armt_status st) {
    if (st == ARMT_STATUS_CANCELLED) return st; /* the message is already the pipeline's */
    return stage_failed(pp, g, st, armt_ctx_last_error(g->ctx));
}

/* The hand-overs of tick t inside this process, and with MPI the ranks' exchange. */
static armt_status hand_over(armt_pipeline *pp, uint64_t t, const int *s_out, const size_t *floats) {
    armt_status st = ARMT_OK;
    for (int i = 0; i < pp->n_local && st == ARMT_OK; i++) {
        armt_stage *g = &pp->stage[i];
        if (g->last || s_out[i] < 0 || i + 1 >= pp->n_local) continue;
        armt_stage *next = &pp->stage[i + 1];
        st = armt_stage_rows_in(next, s_out[i], g->host, floats[i], &g->write_ev);
        if (st != ARMT_OK) st = local_failed(pp, next, st);
    }
#ifdef ARMT_HAVE_MPI
    if (pp->mpi && st == ARMT_OK) {
        armt_stage *g = &pp->stage[0];
        const int s_in = g->index == 0 ? -1
                                       : armt_stage_boundary_segment(g->diagonal, g->S, pp->P, g->index - 1,
                                                                     g->first, 0, (int64_t)t);
        size_t in_floats = 0;
        if (s_in >= 0) { /* the rows' count as the receiving stage's slot has them */
            const size_t L = (size_t)pp->cfg.segment_size, rest = g->F.n - (size_t)s_in * L;
            const size_t Ls = rest < L ? rest : L;
            in_floats = (g->diagonal ? (size_t)g->T : (size_t)g->F.ns + Ls + (size_t)g->F.M) * (size_t)g->F.d;
            if (pp->recv_ev) {
                clWaitForEvents(1, &pp->recv_ev);
                clReleaseEvent(pp->recv_ev);
                pp->recv_ev = NULL;
            }
        }
        const int send = !g->last && s_out[0] >= 0;
        st = armt_pmpi_exchange(pp, t, send ? g->host : NULL, send ? floats[0] : 0,
                                s_in >= 0 ? pp->recv : NULL, in_floats, &pp->err);
        if (st == ARMT_OK && s_in >= 0) {
            st = armt_stage_rows_in(g, s_in, pp->recv, in_floats, &pp->recv_ev);
            if (st != ARMT_OK) st = local_failed(pp, g, st);
        }
    }
#else
    (void)t;
#endif
    return st;
}

/* The pipeline's checks of a call (those armt_forward makes), before any stage begins. */
static armt_status check_call(armt_pipeline *pp, const int32_t *ids, size_t n, const armt_forward_params *p) {
    armt_err *err = &pp->err;
    ARMT_RETURN_IF(!p, ARMT_STATUS_INVALID_ARGUMENT, "armt_pipeline_forward: params is NULL");
    ARMT_RETURN_IF(n == 0, ARMT_STATUS_EMPTY_INPUT, "armt_pipeline_forward: no tokens (n = 0)");
    ARMT_RETURN_IF(!ids, ARMT_STATUS_INVALID_ARGUMENT, "armt_pipeline_forward: ids is NULL");
    ARMT_RETURN_IF(n > (size_t)INT32_MAX, ARMT_STATUS_INVALID_ARGUMENT,
                   "armt_pipeline_forward: %zu tokens is too many", n);
    ARMT_RETURN_IF(p->schedule == ARMT_SCHEDULE_FULL, ARMT_STATUS_UNSUPPORTED,
                   "armt_pipeline_forward: the full schedule does not run as a pipeline");
    ARMT_RETURN_IF(p->schedule != ARMT_SCHEDULE_SEQUENTIAL && p->schedule != ARMT_SCHEDULE_DIAGONAL,
                   ARMT_STATUS_INVALID_ARGUMENT, "armt_pipeline_forward: unknown schedule %d",
                   (int)p->schedule);
    ARMT_RETURN_IF(p->output < ARMT_OUTPUT_NONE || p->output > ARMT_OUTPUT_HIDDEN,
                   ARMT_STATUS_INVALID_ARGUMENT, "armt_pipeline_forward: unknown output %d", (int)p->output);
    const armt_config *c = &pp->cfg;
    size_t need = p->output == ARMT_OUTPUT_LOGITS_ALL    ? n * (size_t)c->vocab_size
                  : p->output == ARMT_OUTPUT_LOGITS_LAST ? (size_t)c->vocab_size
                  : p->output == ARMT_OUTPUT_HIDDEN      ? n * (size_t)c->hidden_size
                                                         : 0;
    if (pp->rank == 0) {
        ARMT_RETURN_IF(need > 0 && !p->out, ARMT_STATUS_INVALID_ARGUMENT,
                       "armt_pipeline_forward: output requested but out is NULL");
        ARMT_RETURN_IF(need > p->out_count, ARMT_STATUS_INVALID_ARGUMENT,
                       "armt_pipeline_forward: out holds %zu floats, the output needs %zu", p->out_count,
                       need);
    }
    for (size_t i = 0; i < n; i++)
        ARMT_RETURN_IF(ids[i] < 0 || ids[i] >= c->vocab_size, ARMT_STATUS_TOKEN_OUT_OF_RANGE,
                       "armt_pipeline_forward: token %zu has id %d, outside [0, %d)", i, (int)ids[i],
                       c->vocab_size);
    return ARMT_OK;
}

/* The ticks of a call whose stages have all begun; the call's status (agreed). */
static armt_status run_ticks(armt_pipeline *pp, const armt_forward_params *p, uint64_t ticks, int *s_out,
                             size_t *floats) {
    armt_status st = ARMT_OK;
    for (uint64_t t = 0; t < ticks; t++) {
        armt_status mine = ARMT_OK;
        for (int i = 0; i < pp->n_local && mine == ARMT_OK; i++) {
            mine = armt_stage_tick(&pp->stage[i], pp->P, t);
            if (mine != ARMT_OK) mine = local_failed(pp, &pp->stage[i], mine);
        }
        /* every stage's tick is queued before any hand-over waits: the devices compute together */
        for (int i = 0; i < pp->n_local; i++) {
            armt_stage *g = &pp->stage[i];
            s_out[i] = g->last ? -1
                               : armt_stage_boundary_segment(g->diagonal, g->S, pp->P, g->index,
                                                             pp->firsts[g->index + 1], 0, (int64_t)t);
            floats[i] = 0;
            if (mine == ARMT_OK && s_out[i] >= 0) {
                mine = armt_stage_rows_out(g, s_out[i], &floats[i]);
                if (mine != ARMT_OK) mine = local_failed(pp, g, mine);
            }
        }
        if (mine == ARMT_OK && p->progress && p->progress(t + 1, ticks, p->progress_user_data) != 0)
            mine =
                armt_err_set(&pp->err, ARMT_STATUS_CANCELLED,
                             "armt_pipeline_forward: cancelled by the progress callback after tick %llu of "
                             "%llu",
                             (unsigned long long)(t + 1), (unsigned long long)ticks);
        st = agree(pp, mine);
        if (st != ARMT_OK) return st;
        st = agree(pp, hand_over(pp, t, s_out, floats));
        if (st != ARMT_OK) return st;
    }
    return ARMT_OK;
}

/* The segment crossing boundary b at the end of tick t with overlapped hand-overs (lag 1), or -1. */
static int lag_segment(const armt_pipeline *pp, int b, int64_t t) {
    if (b < 0 || b >= pp->P - 1) return -1;
    return armt_stage_boundary_segment(1, pp->stage[0].S, pp->P, b, pp->firsts[b + 1], 1, t);
}

/* The diagonal schedule with overlapped hand-overs (pipeline_overlap.c): stage p runs diagonal d at tick
 * d + p; a segment sent at the end of tick t travels during tick t + 1 and is taken at tick t + 2. */
static armt_status run_ticks_overlap(armt_pipeline *pp, const armt_forward_params *p, uint64_t ticks) {
    armt_status st = ARMT_OK;
    for (uint64_t t = 0; t < ticks; t++) {
        const int64_t ti = (int64_t)t;
        armt_status mine = ARMT_OK;
        for (int i = 0; i < pp->n_local && mine == ARMT_OK; i++) { /* arrivals, then the tick */
            armt_stage *g = &pp->stage[i];
            const int s_in = lag_segment(pp, g->index - 1, ti - 2);
            if (s_in >= 0) mine = armt_xfer_take(g, s_in);
            if (mine == ARMT_OK) mine = armt_stage_tick(g, pp->P, t);
            if (mine != ARMT_OK) mine = local_failed(pp, g, mine);
        }
        for (int i = 0; i < pp->n_local && mine == ARMT_OK; i++) { /* this tick's rows on their way */
            armt_stage *g = &pp->stage[i];
            const int s_out = lag_segment(pp, g->index, ti);
            if (s_out >= 0) mine = armt_xfer_send(g, s_out);
            if (mine != ARMT_OK) mine = local_failed(pp, g, mine);
        }
        if (mine == ARMT_OK && p->progress && p->progress(t + 1, ticks, p->progress_user_data) != 0)
            mine =
                armt_err_set(&pp->err, ARMT_STATUS_CANCELLED,
                             "armt_pipeline_forward: cancelled by the progress callback after tick %llu of "
                             "%llu",
                             (unsigned long long)(t + 1), (unsigned long long)ticks);
        st = agree(pp, mine);
        if (st != ARMT_OK) return st;
        /* the rows sent at the end of the last tick, while this one computes: to the next stage's device */
        for (int i = 0; i < pp->n_local && mine == ARMT_OK; i++) {
            armt_stage *g = &pp->stage[i];
            const int s = lag_segment(pp, g->index, ti - 1);
            if (s < 0 || i + 1 >= pp->n_local) continue;
            const float *rows;
            size_t floats;
            mine = armt_xfer_sent(g, s, &rows, &floats);
            if (mine != ARMT_OK) {
                mine = local_failed(pp, g, mine);
                break;
            }
            mine = armt_xfer_put(&pp->stage[i + 1], s, rows, floats, &g->x.host_busy[s & 1]);
            if (mine != ARMT_OK) mine = local_failed(pp, &pp->stage[i + 1], mine);
        }
#ifdef ARMT_HAVE_MPI
        if (pp->mpi && mine == ARMT_OK) {
            armt_stage *g = &pp->stage[0];
            const int s_out = lag_segment(pp, g->index, ti - 1), s_in = lag_segment(pp, g->index - 1, ti - 1);
            const float *out = NULL;
            size_t out_floats = 0, in_floats = (size_t)g->T * (size_t)g->F.d;
            float *in = NULL;
            if (s_out >= 0) mine = armt_xfer_sent(g, s_out, &out, &out_floats);
            if (mine == ARMT_OK && s_in >= 0) { /* rhost[k] is free once its last write has read it */
                cl_event *h = &g->x.h2d[s_in & 1];
                if (*h && clWaitForEvents(1, h) != CL_SUCCESS)
                    mine = armt_err_set(&g->ctx->err, ARMT_STATUS_OPENCL_ERROR, "pipeline: a write failed");
                in = g->x.rhost[s_in & 1];
            }
            if (mine != ARMT_OK) mine = local_failed(pp, g, mine);
            if (mine == ARMT_OK) mine = armt_pmpi_exchange(pp, t, out, out_floats, in, in_floats, &pp->err);
            if (mine == ARMT_OK && s_in >= 0) {
                mine = armt_xfer_put(g, s_in, in, in_floats, NULL);
                if (mine != ARMT_OK) mine = local_failed(pp, g, mine);
            }
        }
#endif
        st = agree(pp, mine);
        if (st != ARMT_OK) return st;
    }
    return ARMT_OK;
}

/* Busy times and bytes of the local stages into info; under MPI gathered on rank 0. */
static armt_status collect_stats(armt_pipeline *pp, double seconds, uint64_t ticks) {
    for (int i = 0; i < pp->n_local; i++) {
        armt_pipeline_stage_info *in = &pp->info[pp->stage[i].index];
        in->busy_seconds = pp->stage[i].busy;
        in->bytes_sent = pp->stage[i].bytes_sent;
    }
#ifdef ARMT_HAVE_MPI
    if (pp->mpi) {
        size_t *count = calloc((size_t)pp->P, sizeof *count), *disp = calloc((size_t)pp->P, sizeof *disp);
        armt_status st = ARMT_OK;
        if (!count || !disp)
            st = armt_err_set(&pp->err, ARMT_STATUS_OUT_OF_HOST_MEMORY, "pipeline: out of host memory");
        for (int r = 0; st == ARMT_OK && r < pp->P; r++) {
            count[r] = sizeof *pp->info;
            disp[r] = (size_t)r * sizeof *pp->info;
        }
        armt_pipeline_stage_info mine = pp->info[pp->rank];
        if (st == ARMT_OK) st = armt_pmpi_gather(pp, &mine, sizeof mine, pp->info, count, disp, &pp->err);
        free(count);
        free(disp);
        if (st != ARMT_OK) return st;
    }
#endif
    double busy = 0.0;
    pp->stats.bytes_moved = 0;
    for (int i = 0; i < pp->P; i++) {
        busy += pp->info[i].busy_seconds;
        pp->stats.bytes_moved += pp->info[i].bytes_sent;
    }
    pp->stats.ticks = ticks;
    pp->stats.seconds = seconds;
    pp->stats.bubble = seconds > 0.0 ? 1.0 - busy / ((double)pp->P * seconds) : 0.0;
    if (pp->stats.bubble < 0.0) pp->stats.bubble = 0.0;
    return ARMT_OK;
}

armt_status armt_pipeline_forward(armt_pipeline *pp, const int32_t *ids, size_t n,
                                  const armt_forward_params *p) {
    if (!pp)
        return armt_err_set(NULL, ARMT_STATUS_INVALID_ARGUMENT, "armt_pipeline_forward: pipeline is NULL");
    armt_err_clear(&pp->err);
    ARMT_TRY(agree(pp, check_call(pp, ids, n, p)));
    const double t0 = now_seconds();
    armt_forward_params fp = *p;
    float *last_out = NULL; /* the last rank's output, sent to rank 0 at the end */
    const size_t out_floats =
        p->output == ARMT_OUTPUT_NONE ? 0 : armt_output_count(pp->stage[0].model, p->output, n);
    int *s_out = calloc((size_t)pp->n_local, sizeof *s_out);
    size_t *floats = calloc((size_t)pp->n_local, sizeof *floats);
    armt_status mine = ARMT_OK, st;
    if (!s_out || !floats)
        mine = armt_err_set(&pp->err, ARMT_STATUS_OUT_OF_HOST_MEMORY, "pipeline: out of host memory");
    if (mine == ARMT_OK && pp->mpi && pp->rank != 0 && pp->stage[0].last && out_floats) {
        last_out = malloc(out_floats * sizeof(float));
        if (!last_out)
            mine = armt_err_set(&pp->err, ARMT_STATUS_OUT_OF_HOST_MEMORY, "pipeline: out of host memory");
        fp.out = last_out;
        fp.out_count = out_floats;
    }
    if (mine == ARMT_OK && pp->mpi && pp->rank == 0 && !pp->stage[0].last) fp.out = NULL, fp.out_count = 0;
    for (int i = 0; i < pp->n_local && mine == ARMT_OK; i++) {
        armt_stage *g = &pp->stage[i];
        mine = armt_stage_begin(g, pp->P, ids, n, &fp);
        g->lag = pp->overlap && g->diagonal && pp->P > 1;
        if (mine == ARMT_OK && g->lag) mine = armt_xfer_prepare(g);
        if (mine != ARMT_OK) mine = local_failed(pp, g, mine);
    }
    if (mine == ARMT_OK && pp->mpi && pp->stage[0].index > 0) { /* room for the rows from the rank before */
        size_t need = pp->stage[0].host_floats;
        if (pp->recv_floats < need) {
            float *r = realloc(pp->recv, need * sizeof(float));
            if (r) {
                pp->recv = r;
                pp->recv_floats = need;
            } else {
                mine = armt_err_set(&pp->err, ARMT_STATUS_OUT_OF_HOST_MEMORY, "pipeline: out of host memory");
            }
        }
    }
    st = agree(pp, mine);
    const armt_stage *g0 = &pp->stage[0];
    const uint64_t ticks =
        st == ARMT_OK ? armt_stage_ticks(g0->diagonal, g0->S, pp->cfg.n_layers, pp->P, g0->lag) : 0;
    if (st == ARMT_OK)
        st = g0->lag ? run_ticks_overlap(pp, p, ticks) : run_ticks(pp, p, ticks, s_out, floats);
    /* every stage's last work done (or failed) before anyone keeps or drops the new state */
    mine = ARMT_OK;
    if (pp->recv_ev) {
        cl_int e = clWaitForEvents(1, &pp->recv_ev);
        clReleaseEvent(pp->recv_ev);
        pp->recv_ev = NULL;
        if (e != CL_SUCCESS && st == ARMT_OK)
            mine = armt_err_cl(&pp->err, "clWaitForEvents (pipeline rows)", e);
    }
    for (int i = 0; i < pp->n_local && st == ARMT_OK && mine == ARMT_OK; i++) {
        mine = armt_stage_finish(&pp->stage[i]);
        if (mine != ARMT_OK) mine = local_failed(pp, &pp->stage[i], mine);
    }
    if (st == ARMT_OK) st = agree(pp, mine);
#ifdef ARMT_HAVE_MPI
    if (st == ARMT_OK && pp->mpi && out_floats && pp->P > 1)
        st = agree(pp, armt_pmpi_to_root(pp, pp->rank == 0 ? p->out : last_out, out_floats, &pp->err));
#endif
    for (int i = 0; i < pp->n_local; i++)
        armt_stage_end(&pp->stage[i], st);
    if (st == ARMT_OK) st = collect_stats(pp, now_seconds() - t0, ticks);
    free(last_out);
    free(s_out);
    free(floats);
    return st;
}

/* ======================================================================================================= */
/* Memory state in the whole model's layout                                                                */
/* ======================================================================================================= */

/* Floats of W_mem (the host's layout: d_key * d / H with H memory heads) and z per layer. */
static void per_layer(const armt_pipeline *pp, size_t *w, size_t *z) {
    const size_t dk = (size_t)armt_config_d_key(&pp->cfg);
    *w = dk * (size_t)pp->cfg.hidden_size / (size_t)armt_config_mem_heads(&pp->cfg);
    *z = dk;
}

/* Gets (get = 1) or sets the state of the local stages at their layers of w / z / written, which hold the
 * whole model (in one process) or this rank's layers only (MPI: base = the rank's first layer). */
static armt_status local_state(armt_pipeline *pp, int get, float *w, float *z, uint8_t *written, int base) {
    size_t wl, zl;
    per_layer(pp, &wl, &zl);
    for (int i = 0; i < pp->n_local; i++) {
        armt_stage *g = &pp->stage[i];
        const size_t l = (size_t)(g->first - base);
        armt_status st = get ? armt_ctx_memory_get(g->ctx, w + l * wl, z + l * zl, written + l)
                             : armt_ctx_memory_set(g->ctx, w + l * wl, z + l * zl, written + l);
        if (st != ARMT_OK) return local_failed(pp, g, st);
    }
    return ARMT_OK;
}

#ifdef ARMT_HAVE_MPI
/* The state between rank 0's whole-model arrays and each rank's layers (get = 1: gathered on rank 0). */
static armt_status mpi_state(armt_pipeline *pp, int get, float *w, float *z, uint8_t *written) {
    size_t wl, zl;
    per_layer(pp, &wl, &zl);
    const armt_stage *g = &pp->stage[0];
    const size_t nl = (size_t)g->count;
    float *mw = malloc(nl * wl * sizeof(float)), *mz = malloc(nl * zl * sizeof(float));
    uint8_t *mr = malloc(nl);
    size_t *cnt = calloc((size_t)pp->P * 6, sizeof *cnt);
    armt_status st = ARMT_OK;
    if (!mw || !mz || !mr || !cnt)
        st = armt_err_set(&pp->err, ARMT_STATUS_OUT_OF_HOST_MEMORY, "pipeline: out of host memory");
    st = agree(pp, st);
    if (st != ARMT_OK) goto done;
    size_t *cw = cnt, *dw = cnt + pp->P, *cz = cnt + 2 * pp->P, *dz = cnt + 3 * pp->P, *cr = cnt + 4 * pp->P,
           *dr = cnt + 5 * pp->P;
    for (int r = 0; r < pp->P; r++) {
        size_t f = (size_t)pp->firsts[r], c = (size_t)(pp->firsts[r + 1] - pp->firsts[r]);
        cw[r] = c * wl * sizeof(float), dw[r] = f * wl * sizeof(float);
        cz[r] = c * zl * sizeof(float), dz[r] = f * zl * sizeof(float);
        cr[r] = c, dr[r] = f;
    }
    if (get) {
        st = agree(pp, local_state(pp, 1, mw, mz, mr, g->first));
        if (st == ARMT_OK) st = armt_pmpi_gather(pp, mw, cw[pp->rank], w, cw, dw, &pp->err);
        if (st == ARMT_OK) st = armt_pmpi_gather(pp, mz, cz[pp->rank], z, cz, dz, &pp->err);
        if (st == ARMT_OK) st = armt_pmpi_gather(pp, mr, cr[pp->rank], written, cr, dr, &pp->err);
    } else {
        st = armt_pmpi_scatter(pp, w, cw, dw, mw, cw[pp->rank], &pp->err);
        if (st == ARMT_OK) st = armt_pmpi_scatter(pp, z, cz, dz, mz, cz[pp->rank], &pp->err);
        if (st == ARMT_OK) st = armt_pmpi_scatter(pp, written, cr, dr, mr, cr[pp->rank], &pp->err);
        if (st == ARMT_OK) st = agree(pp, local_state(pp, 0, mw, mz, mr, g->first));
    }
done:
    free(mw);
    free(mz);
    free(mr);
    free(cnt);
    return st;
}
#endif

armt_status armt_pipeline_memory_get(armt_pipeline *pp, float *w, float *z, uint8_t *written) {
    if (!pp)
        return armt_err_set(NULL, ARMT_STATUS_INVALID_ARGUMENT, "armt_pipeline_memory_get: pipeline is NULL");
    armt_err *err = &pp->err;
#ifdef ARMT_HAVE_MPI
    if (pp->mpi) {
        ARMT_TRY(agree(pp, pp->rank == 0 && (!w || !z || !written)
                               ? armt_err_set(err, ARMT_STATUS_INVALID_ARGUMENT,
                                              "armt_pipeline_memory_get: NULL array on rank 0")
                               : ARMT_OK));
        return mpi_state(pp, 1, w, z, written);
    }
#endif
    ARMT_RETURN_IF(!w || !z || !written, ARMT_STATUS_INVALID_ARGUMENT,
                   "armt_pipeline_memory_get: NULL array");
    return local_state(pp, 1, w, z, written, 0);
}

armt_status armt_pipeline_memory_set(armt_pipeline *pp, const float *w, const float *z,
                                     const uint8_t *written) {
    if (!pp)
        return armt_err_set(NULL, ARMT_STATUS_INVALID_ARGUMENT, "armt_pipeline_memory_set: pipeline is NULL");
    armt_err *err = &pp->err;
#ifdef ARMT_HAVE_MPI
    if (pp->mpi) {
        ARMT_TRY(agree(pp, pp->rank == 0 && (!w || !z || !written)
                               ? armt_err_set(err, ARMT_STATUS_INVALID_ARGUMENT,
                                              "armt_pipeline_memory_set: NULL array on rank 0")
                               : ARMT_OK));
        return mpi_state(pp, 0, (float *)(uintptr_t)w, (float *)(uintptr_t)z, (uint8_t *)(uintptr_t)written);
    }
#endif
    ARMT_RETURN_IF(!w || !z || !written, ARMT_STATUS_INVALID_ARGUMENT,
                   "armt_pipeline_memory_set: NULL array");
    return local_state(pp, 0, (float *)(uintptr_t)w, (float *)(uintptr_t)z, (uint8_t *)(uintptr_t)written, 0);
}

armt_status armt_pipeline_reset(armt_pipeline *pp) {
    if (!pp) return armt_err_set(NULL, ARMT_STATUS_INVALID_ARGUMENT, "armt_pipeline_reset: pipeline is NULL");
    armt_status st = ARMT_OK;
    for (int i = 0; i < pp->n_local && st == ARMT_OK; i++) {
        st = armt_ctx_reset(pp->stage[i].ctx);
        if (st != ARMT_OK) st = local_failed(pp, &pp->stage[i], st);
    }
    return agree(pp, st);
}

armt_status armt_pipeline_stats_get(const armt_pipeline *pp, armt_pipeline_stats *out) {
    if (!pp || !out)
        return armt_err_set(NULL, ARMT_STATUS_INVALID_ARGUMENT, "armt_pipeline_stats_get: NULL argument");
    *out = pp->stats;
    return ARMT_OK;
}

armt_status armt_pipeline_stage(const armt_pipeline *pp, int stage, armt_pipeline_stage_info *out) {
    if (!pp || !out || stage < 0 || stage >= pp->P)
        return armt_err_set(NULL, ARMT_STATUS_INVALID_ARGUMENT, "armt_pipeline_stage: no stage %d", stage);
    *out = pp->info[stage];
    return ARMT_OK;
}
