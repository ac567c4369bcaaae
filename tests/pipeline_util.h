/*
 * pipeline_util.h - what check_pipeline (stages in one process) and check_pipeline_mpi (stages as MPI
 * ranks) share: the single-device run a pipeline must equal bit for bit, and the cases they run.
 */
#ifndef ARMT_PIPELINE_UTIL_H
#define ARMT_PIPELINE_UTIL_H

#include "armt.h"

#include <stddef.h>
#include <stdint.h>

/* The outputs of consecutive calls and the memory state after them. */
typedef struct pu_result {
    float *logits; /* (sum of the calls' n, vocab) */
    float *w, *z;  /* whole model */
    uint8_t *written;
    size_t n_logits, nw, nz, nl;
} pu_result;

/* One case: a model (tiny preset with changes), a precision, a schedule, calls of n[0], n[1], ... tokens. */
typedef struct pu_case {
    const char *name;
    armt_config cfg;
    armt_model_params mp;
    armt_schedule schedule;
    armt_output output;
    size_t n[3];
    int calls;
} pu_case;

/* The cases both tests run (count in *n_cases): fp32 and bf16, both schedules, a partial last segment,
 * more segments than layers and fewer, the sink with the sliding window, last-token logits. */
const pu_case *pu_cases(size_t *n_cases);
/* The ids of a case's calls, one after the other. */
void pu_ids(const pu_case *c, int32_t *ids, size_t *total);
/* Runs the case on one device (the default runtime's); fills r (pu_result_free releases it). */
void pu_single(const pu_case *c, pu_result *r);
/* Runs the case on a pipeline; every rank calls it with MPI, rank 0's r is filled. */
armt_status pu_pipeline(armt_pipeline *pipe, const pu_case *c, pu_result *r, int rank);
/* The pipeline parameters of a case (devices, split may be set by the caller afterwards). */
armt_pipeline_params pu_params(const pu_case *c);
/* 1 if the two results are equal bit for bit; else 0 with what differs in why. */
int pu_equal(const pu_result *a, const pu_result *b, char *why, size_t n);
void pu_result_free(pu_result *r);

#endif
