/*
 * cli_pipeline.h - the layer pipeline's options, shared by clbench and armt-run: --devices LIST (stages in
 * one process, one per listed device of the platform), --mpi (one stage per MPI rank; rank r on device r
 * unless --devices lists them), --split LIST (layers per stage; default: balanced by FLOPs).
 */
#ifndef ARMT_CLI_PIPELINE_H
#define ARMT_CLI_PIPELINE_H

#include "cli_common.h"

enum { CLI_OPT_DEVICES = 0x1800, CLI_OPT_MPI, CLI_OPT_SPLIT, CLI_OPT_NO_OVERLAP };

#define CLI_PIPELINE_LONG_OPTIONS                                                                   \
    {"devices", required_argument, NULL, CLI_OPT_DEVICES}, {"mpi", no_argument, NULL, CLI_OPT_MPI}, \
        {"no-overlap", no_argument, NULL, CLI_OPT_NO_OVERLAP}, {                                    \
        "split", required_argument, NULL, CLI_OPT_SPLIT                                             \
    }

typedef struct cli_pipeline {
    const char *devices; /* --devices LIST                                    */
    int mpi;             /* --mpi                                             */
    int split[256];      /* --split LIST                                      */
    int n_split;
    int no_overlap;  /* --no-overlap: hand-overs after each tick                          */
    int rank, ranks; /* after cli_pipeline_mpi_init: this process's rank (0 without MPI) */
} cli_pipeline;

/* Handles one option (1), or says it is not one of these (0), or reports a bad argument (-1). */
int cli_pipeline_option(cli_pipeline *p, int opt, const char *arg);
/* 1 when the options ask for a pipeline. */
int cli_pipeline_wanted(const cli_pipeline *p);
/* MPI_Init when --mpi was given (an error when the library was built without MPI); -1 on failure. */
int cli_pipeline_mpi_init(cli_pipeline *p, int *argc, char ***argv);
void cli_pipeline_mpi_finalize(const cli_pipeline *p);
/* Creates the pipeline of the shared options' model (precision c->precision). */
int cli_open_pipeline(const cli_common *c, const cli_pipeline *p, armt_pipeline **out);
/* Help text of the options. */
void cli_pipeline_help(FILE *out);
/* Prints the stages (layers, device, rank) as Markdown list lines. */
void cli_pipeline_describe(FILE *out, armt_pipeline *pipe);

#endif
