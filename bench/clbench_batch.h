/*
 * clbench_batch.h - clbench's batch (--batch, --batch-lengths) and decode (--decode) modes; see
 * clbench_batch.c.
 */
#ifndef CLBENCH_BATCH_H
#define CLBENCH_BATCH_H

#include "armt.h"
#include "cli_common.h"

#include <stdint.h>
#include <stdio.h>

typedef struct clbench_batch_opts {
    int batch;              /* --batch B: B documents of each token count (0: none)        */
    const int64_t *lengths; /* --batch-lengths LIST: one ragged batch of these lengths     */
    size_t n_lengths;
    int decode;            /* --decode N: N new tokens after each token count's prompt    */
    const int64_t *tokens; /* the token counts (--tokens)                                 */
    size_t n_tokens;
    armt_schedule schedule; /* the first --schedule (diagonal or sequential)               */
    int warmup, repetitions;
    uint64_t seed;
} clbench_batch_opts;

/* Runs the modes asked for on model m and writes Markdown tables to out. 0, or -1 when a row failed. */
int clbench_batch_run(const clbench_batch_opts *o, armt_model *m, FILE *out);

#endif
