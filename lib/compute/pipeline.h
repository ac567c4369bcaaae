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
} armt_stage;

/* ---- pipeline_split.c ---- */
/* Layer counts of P stages (counts[P]) for a model: the contiguous split whose most expensive stage costs
 * least, each layer costed by its FLOPs on one segment. P must be between 1 and n_layers. */
void armt_pipeline_split_balanced(const armt_config *cfg, int P, int *counts);
/* FLOPs of one layer on one full segment (linear, attention, memory read and write). */
double armt_pipeline_layer_flops(const armt_config *cfg, int layer);

/* ---- pipeline_stage.c ---- */
/* Ticks of a call of S segments over P stages. */
uint64_t armt_stage_ticks(int diagonal, int S, int n_layers, int P);
/* The segment crossing the boundary after stage `b` (to stage b + 1) at the end of tick t, or -1. first_next is
 * the first layer of stage b + 1. */
int armt_stage_boundary_segment(int diagonal, int S, int P, int b, int first_next, uint64_t t);
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
/* Exchange of tick t: the local stage sends segment s_out's rows (g->host, floats_out; s_out < 0: none) to
 * the next rank and receives s_in's (s_in < 0: none) from the one before into pp->recv (*floats_in). */
armt_status armt_pmpi_exchange(armt_pipeline *pp, uint64_t t, int s_out, size_t floats_out, int s_in,
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
