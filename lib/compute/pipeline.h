/*
 * pipeline.h - the layer pipeline's pieces (docs/DESIGN.md, "Pipeline across devices"):
 *   pipeline_split.c  the split of the layers into stages, balanced by FLOPs
 *   pipeline_stage.c  one stage's part of a forward, tick by tick, and its hand-over rows
 *   pipeline.c        the public API, the tick loop and the in-process hand-over
 *   pipeline_state.c  the memory state of every stage in one state file
 *   pipeline_mpi.c    the same stages as MPI ranks (ARMT_HAVE_MPI)
 */
#ifndef ARMT_PIPELINE_H
#define ARMT_PIPELINE_H

#include "compute/step.h"

/* The overlapped hand-over of one stage (pipeline_overlap.c): a second queue, and ping-pong buffers by the
 * segment's parity, so that a segment's rows travel during the next tick's compute. */
typedef struct armt_stage_xfer {
    cl_command_queue q;     /* the second queue (transfers)                                         */
    cl_mem dout[2], din[2]; /* (T, d) device copies of the rows sent / received                     */
    size_t bytes;           /*   of each                                                            */
    float *host[2];         /* (T, d) the rows sent, on the host                                    */
    float *rhost[2];        /* (T, d) the rows received from another rank (MPI)                     */
    size_t floats[2];       /* rows x d of the segment in flight on each buffer                     */
    cl_event out_copy[2];   /* main queue: slot -> dout                                             */
    cl_event d2h[2];        /* second queue: dout -> host                                           */
    cl_event h2d[2];        /* second queue: host -> din (as receiver)                              */
    cl_event in_copy[2];    /* main queue: din -> slot (as receiver)                                */
    cl_event host_busy[2];  /* the receiver's h2d still reading host (another context: host wait) */
} armt_stage_xfer;

/* One stage: a device, its layers' model part, a context (their memory states, scratch, queue). */
typedef struct armt_stage {
    int index;        /* global stage index (= MPI rank under MPI)                                      */
    int first, count; /* layers [first, first + count) of the whole model                                */
    int last;         /* 1: the model's last stage (emits)                                               */
    armt_runtime *rt;
    armt_model *model;
    armt_ctx *ctx;
    char device[128];

    /* the current call */
    armt_call F;
    armt_forward_params fp; /* the caller's, with output NONE on every stage but the last                */
    int in_call;            /* F begun and the snapshot taken                                            */
    int diagonal, S, T, cap, Ls_last;
    float *host;        /* (T, d) hand-over rows: sent from here, or received into here                   */
    size_t host_floats; /*   its size                                                                    */
    cl_event write_ev;  /* the pending write of `host` into the next stage (in-process)                   */
    cl_event mark;      /* a marker at the current tick's start (busy time)                               */
    double busy;        /* device seconds of the last forward's ticks                                    */
    uint64_t bytes_sent;
    int lag;           /* 1: overlapped hand-overs: stage p runs diagonal d at tick d + p (0: at d)   */
    armt_stage_xfer x; /* their buffers                                                              */
} armt_stage;

/* ---- pipeline_split.c ---- */
/* Layer counts of P stages (counts[P]) for a model: the contiguous split whose most expensive stage costs
 * least, each layer costed by its FLOPs on one segment. P must be between 1 and n_layers. */
void armt_pipeline_split_balanced(const armt_config *cfg, int P, int *counts);
/* FLOPs of one layer on one full segment (linear, attention, memory read and write). */
double armt_pipeline_layer_flops(const armt_config *cfg, int layer);

/* ---- pipeline_stage.c ---- */
/* Ticks of a call of S segments over P stages (lag: see armt_stage.lag). */
uint64_t armt_stage_ticks(int diagonal, int S, int n_layers, int P, int lag);
/* The segment crossing the boundary after stage `b` (to stage b + 1) at the end of tick t, or -1. first_next is
 * the first layer of stage b + 1. */
int armt_stage_boundary_segment(int diagonal, int S, int P, int b, int first_next, int lag, int64_t t);
/* Begins a stage's part of a call: checks nothing the caller checked (ids, sizes), takes the snapshot, grows
 * the scratch, uploads the ids (stage 0). On failure the stage is as before. */
armt_status armt_stage_begin(armt_stage *g, int P, const int32_t *ids, size_t n,
                             const armt_forward_params *p);
/* Enqueues the stage's cells of tick t (nothing if it has none). */
armt_status armt_stage_tick(armt_stage *g, int P, uint64_t t);
/* Reads segment s's residual rows (the hand-over) into g->host, blocking; returns their float count. */
armt_status armt_stage_rows_out(armt_stage *g, int s, size_t *floats);
/* Writes rows (floats of them, from src) into segment s's slot, without blocking (*ev: its event). */
armt_status armt_stage_rows_in(armt_stage *g, int s, const float *src, size_t floats, cl_event *ev);
/* ---- pipeline_overlap.c: the overlapped hand-over (diagonal schedule, lag 1) ---- */
/* Grows the buffers to the call's rows (after armt_stage_begin). */
armt_status armt_xfer_prepare(armt_stage *g);
/* After the tick that finished segment s here: its rows to dout, then to host on the second queue. */
armt_status armt_xfer_send(armt_stage *g, int s);
/* The host rows of segment s once they have arrived (waits for the copy), and their float count. */
armt_status armt_xfer_sent(armt_stage *g, int s, const float **rows, size_t *floats);
/* Receiver: rows of segment s from the host to din on the second queue; *busy (may be NULL) receives an
 * event the sender waits for before it reuses src. */
armt_status armt_xfer_put(armt_stage *g, int s, const float *src, size_t floats, cl_event *busy);
/* Receiver, before the tick that takes segment s: din into its slot on the main queue. */
armt_status armt_xfer_take(armt_stage *g, int s);
/* Waits for every transfer in flight (a failure there is returned) and forgets them. */
armt_status armt_xfer_end(armt_stage *g);
void armt_xfer_free(armt_stage *g);

/* Waits for the stage's queue (the call's last work); a failure there is the stage's. */
armt_status armt_stage_finish(armt_stage *g);
/* Ends the call with the pipeline's status st: ARMT_OK keeps the new state, anything else puts the snapshot
 * back. Returns st. */
armt_status armt_stage_end(armt_stage *g, armt_status st);
void armt_stage_free(armt_stage *g);

/* ---- pipeline.c ---- */
struct armt_pipeline {
    armt_err err;
    armt_config cfg;   /* the whole model's                                                   */
    int P;             /* stages in all (ranks under MPI)                                     */
    int *firsts;       /* (P + 1) first layer of each stage, then n_layers                     */
    armt_stage *stage; /* (n_local) the stages of this process                                */
    int n_local;
    int mpi, rank, ranks; /* rank 0 of 1 without MPI                                             */
    int overlap;          /* 1: hand-overs overlapped with compute (diagonal; params.no_overlap = 0) */
    float *recv;          /* (T, d) rows received from the rank before (MPI)                     */
    size_t recv_floats;
    cl_event recv_ev; /* the pending write of recv into the local stage                       */
    armt_pipeline_stats stats;
    armt_pipeline_stage_info *info; /* (P) complete on rank 0                                 */
};

/* The local stages' statuses as the pipeline's (under MPI: agreed over the ranks; pipeline.c). */
armt_status armt_pipeline_agree(armt_pipeline *pp, armt_status mine);

#ifdef ARMT_HAVE_MPI
/* ---- pipeline_mpi.c: every function is collective over MPI_COMM_WORLD ---- */
/* This process's rank and the number of ranks; ARMT_STATUS_UNSUPPORTED when MPI is not initialised. */
armt_status armt_pmpi_world(int *rank, int *ranks, armt_err *err);
/* The pipeline's status after each rank's `mine`: ARMT_OK when every rank's is, else the lowest failing
 * rank's status, with its message (prefixed with its rank on the other ranks) in err. */
armt_status armt_pmpi_agree(armt_pipeline *pp, armt_status mine, armt_err *err);
/* Exchange of tick t: floats_out floats from out to the next rank (out NULL: none) and floats_in into in
 * from the rank before (in NULL: none). */
armt_status armt_pmpi_exchange(armt_pipeline *pp, uint64_t t, const float *out, size_t floats_out, float *in,
                               size_t floats_in, armt_err *err);
/* Sends n floats from the last rank to rank 0 (buf on both). */
armt_status armt_pmpi_to_root(armt_pipeline *pp, float *buf, size_t n, armt_err *err);
/* Gathers each rank's bytes (count[r] at displacement disp[r] of all, on rank 0). */
armt_status armt_pmpi_gather(armt_pipeline *pp, const void *mine, size_t bytes, void *all,
                             const size_t *count, const size_t *disp, armt_err *err);
/* The reverse: rank r gets count[r] bytes from disp[r] of rank 0's all. */
armt_status armt_pmpi_scatter(armt_pipeline *pp, const void *all, const size_t *count, const size_t *disp,
                              void *mine, size_t bytes, armt_err *err);
/* A status from rank 0 to every rank (with its message). */
armt_status armt_pmpi_bcast_status(armt_pipeline *pp, armt_status st, armt_err *err);
#endif

#endif
