/*
 * clbench_batch.c - clbench's batch and decode modes (issue 24), over the public API:
 *   --batch B [--tokens LIST]   B documents of each token count as one armt_forward_batch, against the same
 *   --batch-lengths LIST        documents one at a time through armt_forward (the same schedule); a ragged
 *                               batch takes its lengths from the list
 *   --decode N                  N new tokens after a prompt of each token count (armt_generate, greedy, no
 *                               stop): decode tokens/s of the tokens after the first
 *   --batch B --decode N        also B documents of each token count generating N tokens each as one
 *                               armt_generate_batch: decode tokens/s of all documents together, ms per
 *                               step (one new token of every document), kernel launches per step
 * Each is timed as the median of the repetitions after the warm-up calls, every call from reset memory
 * states; the times are the library's wall times with the queue finished. Memory per document: the
 * runner's scratch (every document's cells) divided by the documents, plus a document's own state and its
 * snapshot.
 */
#include "config.h"

#include "clbench_batch.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

static int cmp_d(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double median(double *t, int n) {
    qsort(t, (size_t)n, sizeof *t, cmp_d);
    return n % 2 ? t[n / 2] : 0.5 * (t[n / 2 - 1] + t[n / 2]);
}

static int reset_all(armt_ctx **ctx, size_t B) {
    for (size_t b = 0; b < B; b++) {
        armt_status st = armt_ctx_reset(ctx[b]);
        if (st != ARMT_OK) {
            cli_report_status("resetting a context", st, armt_ctx_last_error(ctx[b]));
            return -1;
        }
    }
    return 0;
}

/* One batch of B documents with lengths len[]: the batch's and one-at-a-time's median seconds, and the
 * memory per document. */
static int batch_row(const clbench_batch_opts *o, armt_model *m, size_t B, const int64_t *len, FILE *out) {
    const armt_config *cfg = armt_model_config(m);
    int rc = -1;
    armt_ctx **ctx = calloc(B, sizeof *ctx);
    int32_t **ids = calloc(B, sizeof *ids);
    armt_batch_doc *docs = calloc(B, sizeof *docs);
    const int calls = o->warmup + o->repetitions;
    double *tb = calloc((size_t)calls, sizeof *tb), *ta = calloc((size_t)calls, sizeof *ta);
    if (!ctx || !ids || !docs || !tb || !ta) {
        cli_error("out of host memory for %zu documents", B);
        goto done;
    }
    uint64_t total = 0;
    for (size_t b = 0; b < B; b++) {
        ids[b] = malloc((size_t)len[b] * sizeof **ids);
        if (!ids[b]) {
            cli_error("out of host memory for %" PRId64 " ids", len[b]);
            goto done;
        }
        cli_random_ids(o->seed + b, cfg->vocab_size, ids[b], (size_t)len[b]);
        armt_status st = armt_ctx_create(m, NULL, &ctx[b]);
        if (st != ARMT_OK) {
            cli_report_status("creating a context", st, armt_last_error());
            goto done;
        }
        docs[b] = (armt_batch_doc){.ctx = ctx[b], .ids = ids[b], .n = (size_t)len[b]};
        total += (uint64_t)len[b];
    }
    armt_forward_params fp = armt_forward_default_params();
    fp.schedule = o->schedule;
    fp.no_profile = 1;
    armt_stats rs, ds;
    for (int k = 0; k < calls; k++) {
        if (reset_all(ctx, B) != 0) goto done;
        armt_status st = armt_forward_batch(ctx[0], docs, B, &fp);
        if (st != ARMT_OK) {
            cli_report_status("the batch", st, armt_ctx_last_error(ctx[0]));
            goto done;
        }
        if (armt_ctx_stats(ctx[0], &rs) != ARMT_OK) goto done;
        tb[k] = rs.seconds;
        if (reset_all(ctx, B) != 0) goto done;
        ta[k] = 0;
        for (size_t b = 0; b < B; b++) {
            st = armt_forward(ctx[b], ids[b], (size_t)len[b], &fp);
            if (st != ARMT_OK) {
                cli_report_status("a document alone", st, armt_ctx_last_error(ctx[b]));
                goto done;
            }
            if (armt_ctx_stats(ctx[b], &ds) != ARMT_OK) goto done;
            ta[k] += ds.seconds;
        }
    }
    /* the batch's memory: the runner's scratch (rs.device_bytes holds its state too) */
    if (reset_all(ctx, B) != 0 || armt_forward_batch(ctx[0], docs, B, &fp) != ARMT_OK ||
        armt_ctx_stats(ctx[0], &rs) != ARMT_OK || armt_ctx_stats(ctx[B > 1 ? 1 : 0], &ds) != ARMT_OK)
        goto done;
    const double state = B > 1 ? (double)ds.device_bytes : 0.0;
    const double per_doc =
        B > 1 ? ((double)rs.device_bytes - state) / (double)B + state : (double)rs.device_bytes;
    double mb = median(tb + o->warmup, o->repetitions), ma = median(ta + o->warmup, o->repetitions);
    char lens[64], mem[32];
    if (B > 1 && len[0] == len[B - 1] && len[0] == len[B / 2])
        snprintf(lens, sizeof lens, "%zu x %" PRId64, B, len[0]);
    else
        snprintf(lens, sizeof lens, "%zu docs, %" PRIu64 " in all", B, total);
    fprintf(out, "| %s | %s | %.4f | %.0f | %.4f | %.0f | %.2fx | %s | %" PRIu64 " |\n", lens,
            armt_schedule_name(o->schedule), mb, (double)total / mb, ma, (double)total / ma, ma / mb,
            cli_format_bytes((uint64_t)per_doc, mem, sizeof mem), rs.steps);
    rc = 0;
done:
    for (size_t b = 0; ctx && ids && b < B; b++) {
        armt_ctx_free(ctx[b]);
        free(ids[b]);
    }
    free(ctx);
    free(ids);
    free(docs);
    free(tb);
    free(ta);
    return rc;
}

/* N new tokens after a prompt of n tokens. */
static int decode_row(const clbench_batch_opts *o, armt_model *m, int64_t n, FILE *out) {
    const armt_config *cfg = armt_model_config(m);
    int rc = -1;
    armt_ctx *ctx = NULL;
    int32_t *ids = malloc((size_t)n * sizeof *ids), *gen = malloc((size_t)o->decode * sizeof *gen);
    const int calls = o->warmup + o->repetitions;
    double *tp = calloc((size_t)calls, sizeof *tp), *td = calloc((size_t)calls, sizeof *td);
    if (!ids || !gen || !tp || !td) {
        cli_error("out of host memory");
        goto done;
    }
    cli_random_ids(o->seed, cfg->vocab_size, ids, (size_t)n);
    armt_status st = armt_ctx_create(m, NULL, &ctx);
    if (st != ARMT_OK) {
        cli_report_status("creating a context", st, armt_last_error());
        goto done;
    }
    armt_generate_params gp = armt_generate_default_params();
    gp.schedule = o->schedule;
    gp.max_new_tokens = o->decode;
    gp.stop_id = -1;
    armt_generate_result res;
    for (int k = 0; k < calls; k++) {
        if (reset_all(&ctx, 1) != 0) goto done;
        st = armt_generate(ctx, ids, (size_t)n, &gp, gen, (size_t)o->decode, &res);
        if (st != ARMT_OK) {
            cli_report_status("generation", st, armt_ctx_last_error(ctx));
            goto done;
        }
        tp[k] = res.prefill_seconds;
        td[k] = res.decode_seconds;
    }
    double mp = median(tp + o->warmup, o->repetitions), md = median(td + o->warmup, o->repetitions);
    const double after_first = (double)(res.n_tokens > 1 ? res.n_tokens - 1 : 0);
    fprintf(out, "| %" PRId64 " | %s | %d | %.4f | %.4f | %.2f | %.0f |\n", n,
            armt_schedule_name(o->schedule), o->decode, mp, md,
            after_first > 0 ? 1e3 * md / after_first : 0.0, md > 0 ? after_first / md : 0.0);
    rc = 0;
done:
    armt_ctx_free(ctx);
    free(ids);
    free(gen);
    free(tp);
    free(td);
    return rc;
}

/* B documents of n tokens each generating N new tokens each (armt_generate_batch, greedy, no stop). */
static armt_status gen_batch_once(armt_ctx **ctx, armt_generate_doc *d, size_t B, armt_schedule sch,
                                  int max_new, armt_stats *stats) {
    for (size_t b = 0; b < B; b++)
        d[b].params.max_new_tokens = max_new;
    if (reset_all(ctx, B) != 0) return ARMT_STATUS_INVALID_ARGUMENT;
    armt_generate_params bp = armt_generate_default_params();
    bp.schedule = sch;
    armt_status st = armt_generate_batch(ctx[0], d, B, &bp);
    if (st != ARMT_OK) {
        cli_report_status("batch generation", st, armt_ctx_last_error(ctx[0]));
        return st;
    }
    return armt_ctx_stats(ctx[0], stats);
}

static int decode_batch_row(const clbench_batch_opts *o, armt_model *m, size_t B, int64_t n, FILE *out) {
    const armt_config *cfg = armt_model_config(m);
    int rc = -1;
    armt_ctx **ctx = calloc(B, sizeof *ctx);
    int32_t **ids = calloc(B, sizeof *ids);
    armt_generate_doc *d = calloc(B, sizeof *d);
    int32_t *gen = malloc(B * (size_t)o->decode * sizeof *gen);
    const int calls = o->warmup + o->repetitions;
    double *tp = calloc((size_t)calls, sizeof *tp), *td = calloc((size_t)calls, sizeof *td);
    if (!ctx || !ids || !d || !gen || !tp || !td) {
        cli_error("out of host memory for %zu documents", B);
        goto done;
    }
    for (size_t b = 0; b < B; b++) {
        ids[b] = malloc((size_t)n * sizeof **ids);
        if (!ids[b]) {
            cli_error("out of host memory for %" PRId64 " ids", n);
            goto done;
        }
        cli_random_ids(o->seed + b, cfg->vocab_size, ids[b], (size_t)n);
        armt_status st = armt_ctx_create(m, NULL, &ctx[b]);
        if (st != ARMT_OK) {
            cli_report_status("creating a context", st, armt_last_error());
            goto done;
        }
        d[b] = (armt_generate_doc){.ctx = ctx[b],
                                   .prompt = ids[b],
                                   .n = (size_t)n,
                                   .params = armt_generate_default_params(),
                                   .out = gen + b * (size_t)o->decode,
                                   .out_cap = (size_t)o->decode};
    }
    /* launches per step: a call without decode steps (one token each) against one with N - 1 */
    armt_stats s1, sn;
    if (gen_batch_once(ctx, d, B, o->schedule, 1, &s1) != ARMT_OK) goto done;
    for (int k = 0; k < calls; k++) {
        if (gen_batch_once(ctx, d, B, o->schedule, o->decode, &sn) != ARMT_OK) goto done;
        tp[k] = d[0].result.prefill_seconds;
        td[k] = 0;
        for (size_t b = 0; b < B; b++)
            if (d[b].result.decode_seconds > td[k]) td[k] = d[b].result.decode_seconds;
    }
    double mp = median(tp + o->warmup, o->repetitions), md = median(td + o->warmup, o->repetitions);
    const int steps = o->decode - 1; /* the first token of each document comes from the prefill */
    const double launches = steps > 0 ? (double)(sn.kernel_launches - s1.kernel_launches) / steps : 0.0;
    const double gemms = steps > 0 ? (double)(sn.gemm_calls - s1.gemm_calls) / steps : 0.0;
    fprintf(out, "| %zu | %" PRId64 " | %s | %d | %.4f | %.4f | %.2f | %.0f | %.0f + %.0f GEMM calls |\n", B,
            n, armt_schedule_name(o->schedule), o->decode, mp, md, steps > 0 ? 1e3 * md / steps : 0.0,
            md > 0 ? (double)B * steps / md : 0.0, launches, gemms);
    rc = 0;
done:
    for (size_t b = 0; ctx && b < B; b++)
        armt_ctx_free(ctx[b]);
    for (size_t b = 0; ids && b < B; b++)
        free(ids[b]);
    free(ctx);
    free(ids);
    free(d);
    free(gen);
    free(tp);
    free(td);
    return rc;
}

int clbench_batch_run(const clbench_batch_opts *o, armt_model *m, FILE *out) {
    int failed = 0;
    if (o->batch > 0 || o->n_lengths > 0) {
        fprintf(out,
                "| documents | schedule | batch s | tokens/s | one at a time s | tokens/s | speedup | memory "
                "per document | steps |\n|---|---|---|---|---|---|---|---|---|\n");
        if (o->n_lengths > 0) {
            failed |= batch_row(o, m, o->n_lengths, o->lengths, out) != 0;
        } else {
            for (size_t i = 0; i < o->n_tokens; i++) {
                int64_t *len = malloc((size_t)o->batch * sizeof *len);
                if (!len) return -1;
                for (int b = 0; b < o->batch; b++)
                    len[b] = o->tokens[i];
                failed |= batch_row(o, m, (size_t)o->batch, len, out) != 0;
                free(len);
            }
        }
    }
    if (o->decode > 0) {
        if (o->batch > 0 || o->n_lengths > 0) fputs("\n", out);
        fprintf(out,
                "| prompt tokens | schedule | new tokens | prefill s | decode s | ms/token | tokens/s |\n"
                "|---|---|---|---|---|---|---|\n");
        for (size_t i = 0; i < o->n_tokens; i++)
            failed |= decode_row(o, m, o->tokens[i], out) != 0;
    }
    if (o->decode > 0 && o->batch > 0) {
        fprintf(
            out,
            "\n| documents | prompt tokens each | schedule | new tokens each | prefill s | decode s | "
            "ms/step | tokens/s (all documents) | launches/step |\n|---|---|---|---|---|---|---|---|---|\n");
        for (size_t i = 0; i < o->n_tokens; i++)
            failed |= decode_batch_row(o, m, (size_t)o->batch, o->tokens[i], out) != 0;
    }
    fflush(out);
    return failed ? -1 : 0;
}
