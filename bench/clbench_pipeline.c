/*
 * clbench_pipeline.c - clbench's pipeline mode (--devices LIST, --mpi): each row's median wall time on the
 * pipeline with its ticks, the bytes handed between stages, the bubble fraction (the stages' idle share)
 * and each stage's busy time; in one process also the same row on one stage (the first device) and the
 * speed-up. The full schedule does not run as a pipeline and is left out.
 */
#include "config.h"

#include "clbench_pipeline.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

typedef struct prow {
    double seconds; /* median */
    armt_pipeline_stats stats;
    double busy[64];
    int ok;
} prow;

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* warmup + repetitions calls from a reset state each; the median time and the last call's stats. */
static int run_row(const clbench_pipeline_opts *o, armt_pipeline *pipe, armt_schedule sch, const int32_t *ids,
                   size_t n, prow *r) {
    armt_forward_params fp = armt_forward_default_params();
    fp.schedule = sch;
    fp.output = o->output;
    const armt_config *c = armt_pipeline_config(pipe);
    size_t need = o->output == ARMT_OUTPUT_LOGITS_ALL    ? n * (size_t)c->vocab_size
                  : o->output == ARMT_OUTPUT_LOGITS_LAST ? (size_t)c->vocab_size
                                                         : 0;
    float *out = need ? malloc(need * sizeof(float)) : NULL;
    double *t = malloc((size_t)o->repetitions * sizeof(double));
    fp.out = out;
    fp.out_count = need;
    memset(r, 0, sizeof *r);
    for (int k = 0; k < o->warmup + o->repetitions; k++) {
        armt_status st = armt_pipeline_reset(pipe);
        if (st == ARMT_OK) st = armt_pipeline_forward(pipe, ids, n, &fp);
        if (st != ARMT_OK) {
            cli_report_status("armt_pipeline_forward", st, armt_pipeline_last_error(pipe));
            free(out);
            free(t);
            return -1;
        }
        if (k >= o->warmup) {
            if (armt_pipeline_stats_get(pipe, &r->stats) != ARMT_OK) memset(&r->stats, 0, sizeof r->stats);
            t[k - o->warmup] = r->stats.seconds;
        }
    }
    qsort(t, (size_t)o->repetitions, sizeof *t, cmp_double);
    r->seconds = t[o->repetitions / 2];
    for (int i = 0; i < r->stats.n_stages && i < 64; i++) {
        armt_pipeline_stage_info in;
        if (armt_pipeline_stage(pipe, i, &in) == ARMT_OK) r->busy[i] = in.busy_seconds;
    }
    r->ok = 1;
    free(out);
    free(t);
    return 0;
}

static void print_row(const armt_precision prec, armt_schedule sch, int64_t n, const prow *r,
                      const prow *base) {
    char moved[32];
    printf("| %s | %s | %" PRId64 " | %d | %.4f | %.0f | ", armt_precision_name(prec),
           armt_schedule_name(sch), n, r->stats.n_stages, r->seconds, (double)n / r->seconds);
    if (base && base->ok && base != r)
        printf("%.2fx", base->seconds / r->seconds);
    else
        printf("-");
    printf(" | %" PRIu64 " | %s | %.1f%% | ", r->stats.ticks,
           cli_format_bytes(r->stats.bytes_moved, moved, sizeof moved), 100.0 * r->stats.bubble);
    for (int i = 0; i < r->stats.n_stages && i < 64; i++)
        printf("%s%.4f", i ? ", " : "", r->busy[i]);
    printf(" |\n");
}

int clbench_pipeline(const clbench_pipeline_opts *o) {
    const cli_pipeline *p = o->pipe;
    const int root = p->rank == 0;
    int rc = 0;
    for (size_t pi = 0; pi < o->n_precisions; pi++) {
        o->common->precision = o->precisions[pi];
        if (root && o->verbosity > CLI_QUIET)
            fprintf(stderr, "%s: creating the pipeline (%s)...\n", cli_progname(),
                    armt_precision_name(o->precisions[pi]));
        armt_pipeline *pipe = NULL, *one = NULL;
        if (cli_open_pipeline(o->common, p, &pipe) != 0) return 1;
        armt_pipeline_stats ps0;
        const int several = armt_pipeline_stats_get(pipe, &ps0) == ARMT_OK && ps0.n_stages > 1;
        if (!p->mpi && several) { /* the comparison: one stage on the first listed device */
            cli_pipeline single = *p;
            char first[128];
            snprintf(first, sizeof first, "%s", p->devices);
            char *comma = strchr(first, ',');
            if (comma) *comma = '\0';
            single.devices = first;
            single.n_split = 0;
            if (cli_open_pipeline(o->common, &single, &one) != 0) {
                armt_pipeline_free(pipe);
                return 1;
            }
        }
        const armt_config *c = armt_pipeline_config(pipe);
        char label[600];
        cli_model_label(o->common, label, sizeof label);
        if (root)
            printf("\n## clbench pipeline: %s, %s, %d layers, segments of %d + %d memory tokens\n\n", label,
                   armt_precision_name(o->precisions[pi]), c->n_layers, c->segment_size, c->num_mem_tokens);
        int described = 0;
        const int64_t four_sixteen[2] = {4 * (int64_t)c->segment_size, 16 * (int64_t)c->segment_size};
        const int64_t *tokens = o->n_tokens ? o->tokens : four_sixteen;
        for (size_t ti = 0; ti < (o->n_tokens ? o->n_tokens : 2); ti++) {
            const size_t n = (size_t)tokens[ti];
            int32_t *ids = malloc(n * sizeof *ids);
            if (!ids) return 1;
            cli_random_ids(o->common->seed, c->vocab_size, ids, n);
            for (size_t si = 0; si < o->n_schedules; si++) {
                const armt_schedule sch = o->schedules[si];
                if (sch == ARMT_SCHEDULE_FULL) continue;
                prow r, base;
                memset(&base, 0, sizeof base);
                if (one && run_row(o, one, sch, ids, n, &base) != 0) rc = 1;
                if (run_row(o, pipe, sch, ids, n, &r) != 0) {
                    rc = 1;
                    continue;
                }
                if (!root) continue;
                if (!described) {
                    cli_pipeline_describe(stdout, pipe);
                    printf("\n| precision | schedule | tokens | stages | time (s) | tokens/s | vs 1 stage | "
                           "ticks "
                           "| moved | bubble | busy per stage (s) |\n"
                           "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---|\n");
                    described = 1;
                }
                if (one) print_row(o->precisions[pi], sch, (int64_t)n, &base, NULL);
                print_row(o->precisions[pi], sch, (int64_t)n, &r, one ? &base : NULL);
            }
            free(ids);
        }
        if (root && described)
            printf(
                "\nTimes: median of %d calls after %d warm-up, each from a reset state. Bubble: 1 - sum of "
                "the "
                "stages' busy time / (stages x wall time); busy time is device time between markers at each "
                "tick's start and end.\n",
                o->repetitions, o->warmup);
        armt_pipeline_free(one);
        armt_pipeline_free(pipe);
    }
    return rc;
}
