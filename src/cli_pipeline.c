/*
 * cli_pipeline.c - the layer pipeline's command-line options and set-up (see cli_pipeline.h).
 */
#include "config.h"

#include "cli_pipeline.h"

#include <stdlib.h>
#include <string.h>

#ifdef ARMT_HAVE_MPI
#include <mpi.h>
#endif

int cli_pipeline_option(cli_pipeline *p, int opt, const char *arg) {
    switch (opt) {
    case CLI_OPT_DEVICES:
        if (!arg[0]) {
            cli_error("--devices: empty list");
            return -1;
        }
        p->devices = arg;
        return 1;
    case CLI_OPT_MPI: p->mpi = 1; return 1;
    case CLI_OPT_NO_OVERLAP: p->no_overlap = 1; return 1;
    case CLI_OPT_SPLIT: {
        int64_t *v = NULL;
        size_t n = 0;
        if (cli_parse_i64_list("--split", arg, 1, 1 << 20, &v, &n) != 0) return -1;
        if (n > sizeof p->split / sizeof p->split[0]) {
            cli_error("--split: %zu stages is too many", n);
            free(v);
            return -1;
        }
        for (size_t i = 0; i < n; i++)
            p->split[i] = (int)v[i];
        p->n_split = (int)n;
        free(v);
        return 1;
    }
    default: return 0;
    }
}

int cli_pipeline_wanted(const cli_pipeline *p) { return p->devices != NULL || p->mpi; }

int cli_pipeline_mpi_init(cli_pipeline *p, int *argc, char ***argv) {
    p->rank = 0;
    p->ranks = 1;
    if (!p->mpi) return 0;
#ifdef ARMT_HAVE_MPI
    if (MPI_Init(argc, argv) != MPI_SUCCESS) {
        cli_error("--mpi: MPI_Init failed");
        return -1;
    }
    MPI_Comm_rank(MPI_COMM_WORLD, &p->rank);
    MPI_Comm_size(MPI_COMM_WORLD, &p->ranks);
    return 0;
#else
    (void)argc;
    (void)argv;
    cli_error("--mpi: this libarmt was built without MPI (./configure --enable-mpi)");
    return -1;
#endif
}

void cli_pipeline_mpi_finalize(const cli_pipeline *p) {
#ifdef ARMT_HAVE_MPI
    if (p->mpi) MPI_Finalize();
#else
    (void)p;
#endif
}

int cli_open_pipeline(const cli_common *c, const cli_pipeline *p, armt_pipeline **out) {
    armt_pipeline_params pp = armt_pipeline_default_params();
    pp.runtime.platform = c->platform;
    pp.runtime.fp32_gemm = (armt_fp32_gemm)c->fp32_gemm;
    pp.devices = p->devices;
    pp.mpi = p->mpi;
    pp.no_overlap = p->no_overlap;
    pp.split = p->n_split ? p->split : NULL;
    pp.n_split = p->n_split;
    pp.model.seed = c->seed;
    pp.model.wmv_std = (float)c->wmv_std;
    pp.model.precision = c->precision;
    if (c->segment > 0) pp.model.segment_size = c->segment;
    if (c->mem > 0) pp.model.num_mem_tokens = c->mem;
    pp.model.base_model_dir = c->base_model;
    armt_config cfg;
    if (c->model_path) {
        pp.path = c->model_path;
    } else {
        armt_status st = armt_config_preset(c->preset, &cfg);
        if (st != ARMT_OK) {
            cli_report_status("--preset", st, armt_last_error());
            return -1;
        }
        if (c->variant >= 0) cfg.variant = (armt_variant)c->variant;
        if (c->mem_heads > 0) cfg.mem_heads = c->mem_heads;
        if (c->sink) cfg.use_sink = 1;
        if (c->sliding_window) cfg.sliding_window = 1;
        pp.config = &cfg;
    }
    armt_status st = armt_pipeline_create(&pp, out);
    if (st != ARMT_OK) {
        cli_report_status("creating the pipeline", st, armt_last_error());
        if (st == ARMT_STATUS_NO_DEVICE) cli_error("hint: --list-devices shows what is available");
        return -1;
    }
    return 0;
}

void cli_pipeline_help(FILE *out) {
    fprintf(
        out,
        "Pipeline (the model's layers split over several devices; docs/DESIGN.md):\n"
        "      --devices LIST     one stage per listed device of the platform, in this process:\n"
        "                         selectors as --device takes them, comma-separated (\"0,1\"; one device\n"
        "                         may be listed twice). With --mpi: rank r's device is entry r\n"
        "      --mpi              one stage per MPI rank (mpirun -np N ...; a library built with\n"
        "                         ./configure --enable-mpi); rank r takes device r unless --devices\n"
        "      --split LIST       layers per stage, e.g. 6,10 (default: balanced by FLOPs)\n");
}

void cli_pipeline_describe(FILE *out, armt_pipeline *pipe) {
    armt_pipeline_stats s;
    if (armt_pipeline_stats_get(pipe, &s) != ARMT_OK) return;
    for (int i = 0; i < s.n_stages; i++) {
        armt_pipeline_stage_info in;
        if (armt_pipeline_stage(pipe, i, &in) != ARMT_OK) continue;
        fprintf(out, "- stage %d: layers %d-%d on %s%s", i, in.first_layer, in.first_layer + in.n_layers - 1,
                in.device[0] ? in.device : "(another rank's device)", "");
        if (s.n_stages > 1 && in.rank > 0) fprintf(out, " (rank %d)", in.rank);
        fprintf(out, "\n");
    }
}
