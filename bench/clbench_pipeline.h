/*
 * clbench_pipeline.h - clbench --devices LIST / --mpi: the schedules on a layer pipeline (bench/clbench_pipeline.c).
 */
#ifndef ARMT_CLBENCH_PIPELINE_H
#define ARMT_CLBENCH_PIPELINE_H

#include "cli_pipeline.h"

typedef struct clbench_pipeline_opts {
    cli_common *common;
    const cli_pipeline *pipe;
    const int64_t *tokens;
    size_t n_tokens;
    const armt_schedule *schedules;
    size_t n_schedules;
    const armt_precision *precisions;
    size_t n_precisions;
    armt_output output;
    int repetitions, warmup, verbosity;
} clbench_pipeline_opts;

/* Runs every (precision, schedule, tokens) row on the pipeline, and in one process also on one stage (the
 * first listed device) for comparison; prints a Markdown table on rank 0. Returns the exit status. */
int clbench_pipeline(const clbench_pipeline_opts *o);

#endif
