/*
 * run_generate_batch.c - armt-run's generation mode with several --ids/--prompt-ids files: one
 * armt_generate_batch over them (a context per document, the first one the runner). Each document's new
 * tokens are printed on stdout as one line "N: id id ..." (N from 0, in the order given), then a summary on
 * stderr.
 */
#include "config.h"

#include "run.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* A document's stop ids (every --stop-id; a stop id is included in its output). */
typedef struct doc_stops {
    const int32_t *ids;
    size_t n;
} doc_stops;

static int stop_on(int32_t token, void *user_data) {
    const doc_stops *s = user_data;
    for (size_t i = 0; i < s->n; i++)
        if (token == s->ids[i]) return 1;
    return run_interrupted != 0;
}

int run_generate_batch(const run_opts *o, armt_ctx *ctx0) {
    armt_model *model = armt_ctx_model(ctx0);
    const armt_config *cfg = armt_model_config(model);
    const size_t B = o->n_ids_paths;
    int rc = -1;
    armt_ctx **ctx = calloc(B, sizeof *ctx);
    int32_t **ids = calloc(B, sizeof *ids);
    size_t *n = calloc(B, sizeof *n);
    armt_generate_doc *d = calloc(B, sizeof *d);
    int32_t *out = calloc(B * (size_t)(o->max_new > 0 ? o->max_new : 1), sizeof *out);
    doc_stops stops = {o->stop_ids, o->n_stop_ids};
    if (!ctx || !ids || !n || !d || !out) {
        cli_error("out of host memory for %zu documents", B);
        goto done;
    }
    for (size_t i = 0; i < o->n_stop_ids; i++)
        if (o->stop_ids[i] >= cfg->vocab_size) {
            cli_error("stop id %" PRId32 " is outside the model's vocabulary [0, %d)", o->stop_ids[i],
                      cfg->vocab_size);
            goto done;
        }
    size_t total = 0;
    for (size_t b = 0; b < B; b++) {
        if (cli_read_ids_file(o->ids_paths[b], cfg->vocab_size, &ids[b], &n[b]) != 0) goto done;
        total += n[b];
        if (b == 0) {
            ctx[b] = ctx0;
        } else {
            armt_status st = armt_ctx_create(model, NULL, &ctx[b]);
            if (st != ARMT_OK) {
                cli_report_status("creating a document's context", st, armt_last_error());
                goto done;
            }
        }
        armt_generate_params p = armt_generate_default_params();
        p.max_new_tokens = o->max_new;
        p.temperature = (float)o->temperature;
        p.top_k = o->top_k;
        p.top_p = (float)o->top_p;
        p.seed = o->sample_seed;
        p.on_token = stop_on;
        p.user_data = &stops;
        d[b] = (armt_generate_doc){.ctx = ctx[b],
                                   .prompt = ids[b],
                                   .n = n[b],
                                   .params = p,
                                   .out = out + b * (size_t)o->max_new,
                                   .out_cap = (size_t)o->max_new};
    }
    armt_generate_params bp = armt_generate_default_params();
    bp.schedule = o->schedule;
    bp.progress = run_cancel_progress; /* Ctrl-C */
    armt_status st = armt_generate_batch(ctx0, d, B, &bp);
    if (st != ARMT_OK) {
        run_report_status("batch generation", st, armt_ctx_last_error(ctx0));
        goto done;
    }
    size_t produced = 0;
    double prefill = 0, decode = 0;
    for (size_t b = 0; b < B; b++) {
        printf("%zu:", b);
        for (size_t k = 0; k < d[b].result.n_tokens; k++)
            printf(" %" PRId32, d[b].out[k]);
        printf("\n");
        produced += d[b].result.n_tokens;
        prefill = d[b].result.prefill_seconds;
        if (d[b].result.decode_seconds > decode) decode = d[b].result.decode_seconds;
    }
    fflush(stdout);
    if (ferror(stdout)) {
        cli_error("writing to stdout failed");
        goto done;
    }
    if (o->verbosity > CLI_QUIET) {
        fprintf(stderr,
                "batch:    %zu documents, %zu prompt tokens in all (%s schedule for the earlier segments)\n",
                B, total, armt_schedule_name(o->schedule));
        for (size_t b = 0; b < B; b++)
            fprintf(stderr, "doc %zu:    %zu prompt tokens (%s), %zu new, %s\n", b, n[b], o->ids_paths[b],
                    d[b].result.n_tokens,
                    d[b].result.stopped == 2   ? "stop token"
                    : d[b].result.stopped == 1 ? "stop id"
                                               : "--max-new reached");
        const size_t first = B; /* the first token of each document comes from the prefill */
        fprintf(stderr, "prefill:  %.4f s (%.0f tokens/s)\n", prefill,
                prefill > 0 ? (double)total / prefill : 0.0);
        if (produced > first && decode > 0)
            fprintf(stderr,
                    "decode:   %zu tokens after the first of each document in %.4f s (%.0f tokens/s of all "
                    "documents)\n",
                    produced - first, decode, (double)(produced - first) / decode);
        if (o->profile) { /* per round: one new token of each document still going */
            size_t rounds = 0;
            for (size_t b = 0; b < B; b++)
                if (d[b].result.n_tokens > rounds + 1) rounds = d[b].result.n_tokens - 1;
            cli_print_profile(ctx0, "batch decode", (double)rounds, "round");
        }
    }
    rc = 0;
done:
    for (size_t b = 1; ctx && b < B; b++)
        armt_ctx_free(ctx[b]);
    for (size_t b = 0; ids && b < B; b++)
        free(ids[b]);
    free(ctx);
    free(ids);
    free(n);
    free(d);
    free(out);
    return rc;
}
