/*
 * run_batch.c - armt-run's forward mode with several --ids files: the documents as one batch
 * (armt_forward_batch), each on a context of its own, the first one (main's) running the batch; the
 * summary per document, and --save-outputs as one safetensors file whose tensors carry the document's
 * prefix (doc0.logits, doc0.hidden, doc0.W_mem, doc0.z, doc0.input_ids, doc1.logits, ...).
 */
#include "config.h"

#include "run.h"
#include "io/safetensors.h"

#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* One batch call with output o into outs[b] (allocated here); every document starts from a reset memory. */
static int batch_once(const run_opts *o, armt_ctx **ctx, size_t B, int32_t **ids, const size_t *n,
                      armt_output out, float **outs, double *seconds) {
    armt_model *model = armt_ctx_model(ctx[0]);
    armt_batch_doc *docs = calloc(B, sizeof *docs);
    if (!docs) {
        cli_error("out of host memory for %zu documents", B);
        return -1;
    }
    int rc = -1;
    for (size_t b = 0; b < B; b++) {
        armt_status st = armt_ctx_reset(ctx[b]);
        if (st != ARMT_OK) {
            cli_report_status("resetting a document's memory", st, armt_ctx_last_error(ctx[b]));
            goto done;
        }
        size_t count = armt_output_count(model, out, n[b]);
        outs[b] = count ? malloc(count * sizeof(float)) : NULL;
        if (count && !outs[b]) {
            cli_error("out of host memory for document %zu's %s output", b, armt_output_name(out));
            goto done;
        }
        docs[b] =
            (armt_batch_doc){.ctx = ctx[b], .ids = ids[b], .n = n[b], .out = outs[b], .out_count = count};
    }
    armt_forward_params fp = armt_forward_default_params();
    fp.schedule = o->schedule;
    fp.output = out;
    fp.progress = run_cancel_progress; /* Ctrl-C */
    double t0 = cli_now();
    armt_status st = armt_forward_batch(ctx[0], docs, B, &fp);
    *seconds = cli_now() - t0;
    if (st != ARMT_OK) {
        run_report_status("batch forward", st, armt_ctx_last_error(ctx[0]));
        goto done;
    }
    rc = 0;
done:
    free(docs);
    return rc;
}

/* Index of the largest of v[0..n) (the first on ties; NaN never wins). */
static size_t argmax_of(const float *v, size_t n) {
    size_t best = 0;
    for (size_t i = 1; i < n; i++)
        if (v[i] > v[best] || isnan(v[best])) best = i;
    return best;
}

int run_forward_batch(const run_opts *o, armt_ctx *ctx0, const armt_device_info *dev) {
    armt_model *model = armt_ctx_model(ctx0);
    const armt_config *cfg = armt_model_config(model);
    const size_t B = o->n_ids_paths, V = (size_t)cfg->vocab_size;
    int rc = -1;
    armt_ctx **ctx = calloc(B, sizeof *ctx);
    int32_t **ids = calloc(B, sizeof *ids);
    size_t *n = calloc(B, sizeof *n);
    float **logits = calloc(B, sizeof *logits), **hidden = calloc(B, sizeof *hidden);
    float **w_mem = calloc(B, sizeof *w_mem), **z = calloc(B, sizeof *z);
    char(*names)[6][32] = calloc(B, sizeof *names);
    out_tensor *t = calloc(6 * B, sizeof *t);
    char label[600], b1[32], b2[32], b3[32], b4[32];
    if (!ctx || !ids || !n || !logits || !hidden || !w_mem || !z || !names || !t) {
        cli_error("out of host memory for %zu documents", B);
        goto done;
    }
    size_t total = 0;
    for (size_t b = 0; b < B; b++) {
        if (cli_read_ids_file(o->ids_paths[b], cfg->vocab_size, &ids[b], &n[b]) != 0) goto done;
        total += n[b];
        if (b == 0) {
            ctx[b] = ctx0;
            continue;
        }
        armt_status st = armt_ctx_create(model, NULL, &ctx[b]);
        if (st != ARMT_OK) {
            cli_report_status("creating a document's context", st, armt_last_error());
            goto done;
        }
    }
    /* --save-outputs without --output saves logits and hidden states: two calls from a reset memory */
    const int both = o->save_outputs && !o->output_given;
    const armt_output first = both ? ARMT_OUTPUT_LOGITS_ALL : o->output;
    double seconds = 0, seconds2 = 0;
    if (batch_once(o, ctx, B, ids, n, first, first == ARMT_OUTPUT_HIDDEN ? hidden : logits, &seconds) != 0)
        goto done;
    armt_stats stats;
    if (armt_ctx_stats(ctx0, &stats) != ARMT_OK) goto done;
    if (both && batch_once(o, ctx, B, ids, n, ARMT_OUTPUT_HIDDEN, hidden, &seconds2) != 0) goto done;

    /* ---- summary ---- */
    cli_model_label(&o->common, label, sizeof label);
    printf("model:    %s: %d layers, hidden %d, heads %d/%d, vocab %d; segment %d + %d memory tokens; %s; "
           "%s variant\n",
           label, cfg->n_layers, cfg->hidden_size, cfg->n_heads, cfg->n_kv_heads, cfg->vocab_size,
           cfg->segment_size, cfg->num_mem_tokens, armt_precision_name(o->common.precision),
           armt_variant_name(cfg->variant));
    printf("device:   %s (%s)%s%s\n", dev->name, dev->platform_name, dev->device_version[0] ? ", " : "",
           dev->device_version);
    printf("input:    %zu documents, %zu tokens in all (one batch)\n", B, total);
    printf("schedule: %s, %" PRIu64 " steps, %" PRIu64 " cells, %.4f s (%.0f tokens/s)%s\n",
           armt_schedule_name(o->schedule), stats.steps, stats.cells, seconds,
           seconds > 0 ? (double)total / seconds : 0.0, both ? " [logits call]" : "");
    if (both) printf("          %.4f s for the second call (hidden states)\n", seconds2);
    for (size_t b = 0; b < B; b++) {
        printf("doc %zu:    %zu tokens (%s)", b, n[b], o->ids_paths[b]);
        if (logits[b]) {
            const float *last = first == ARMT_OUTPUT_LOGITS_ALL ? logits[b] + (n[b] - 1) * V : logits[b];
            size_t best = argmax_of(last, V);
            printf(", last: argmax token %zu (logit %.6g)", best, (double)last[best]);
        }
        printf("\n");
    }
    if (o->stats) {
        armt_stats ds;
        if (armt_ctx_stats(ctx[B > 1 ? 1 : 0], &ds) != ARMT_OK) goto done;
        printf("stats:    steps %" PRIu64 ", cells %" PRIu64 ", kernel launches %" PRIu64
               ", GEMM calls %" PRIu64 "\n",
               stats.steps, stats.cells, stats.kernel_launches, stats.gemm_calls);
        printf("          device bytes: model %s, runner (scratch of every document + its state) %s, a "
               "document's state %s, peak %s\n",
               cli_format_bytes(armt_model_device_bytes(model), b1, sizeof b1),
               cli_format_bytes(stats.device_bytes, b2, sizeof b2),
               cli_format_bytes(ds.device_bytes, b3, sizeof b3),
               cli_format_bytes(stats.peak_device_bytes, b4, sizeof b4));
    }

    /* ---- file ---- */
    if (o->save_outputs) {
        size_t nt = 0;
        for (size_t b = 0; b < B; b++) {
            static const char *const what[6] = {"logits", "logits_last", "hidden", "W_mem", "z", "input_ids"};
            for (int i = 0; i < 6; i++)
                snprintf(names[b][i], sizeof names[b][i], "doc%zu.%s", b, what[i]);
            if (logits[b] && first == ARMT_OUTPUT_LOGITS_ALL)
                t[nt++] = (out_tensor){names[b][0], ST_F32, 2, {n[b], V, 0}, logits[b]};
            if (logits[b] && first == ARMT_OUTPUT_LOGITS_LAST)
                t[nt++] = (out_tensor){names[b][1], ST_F32, 2, {1, V, 0}, logits[b]};
            if (hidden[b])
                t[nt++] =
                    (out_tensor){names[b][2], ST_F32, 2, {n[b], (uint64_t)cfg->hidden_size, 0}, hidden[b]};
            if (run_memory_tensors(ctx[b], names[b][3], names[b][4], &w_mem[b], &z[b], t, &nt) != 0)
                goto done;
            t[nt++] = (out_tensor){names[b][5], ST_I32, 1, {n[b], 0, 0}, ids[b]};
        }
        char docs_text[16];
        snprintf(docs_text, sizeof docs_text, "%zu", B);
        cli_model_label(&o->common, label, sizeof label);
        const char *const metadata[] = {
            "generator", "armt-run", "libarmt_version", armt_version_string(),
            "model",     label,      "schedule",        armt_schedule_name(o->schedule),
            "documents", docs_text,  "precision",       armt_precision_name(o->common.precision),
            NULL,        NULL};
        if (run_save_safetensors(o->save_outputs, t, nt, metadata) != 0) goto done;
        printf("saved:    %s: %zu tensors of %zu documents (docN.*)\n", o->save_outputs, nt, B);
    }
    fflush(stdout);
    if (ferror(stdout)) {
        cli_error("writing to stdout failed");
        goto done;
    }
    rc = 0;
done:
    for (size_t b = 0; ctx && ids && logits && hidden && w_mem && z && b < B; b++) {
        if (b > 0) armt_ctx_free(ctx[b]);
        free(ids[b]);
        free(logits[b]);
        free(hidden[b]);
        free(w_mem[b]);
        free(z[b]);
    }
    free(ctx);
    free(ids);
    free(n);
    free(logits);
    free(hidden);
    free(w_mem);
    free(z);
    free(names);
    free(t);
    return rc;
}
