/*
 * run_forward.c - armt-run's forward mode: the ids (a file or random), one forward call (two when
 * --save-outputs saves both logits and hidden states, the second from the same starting memory), the
 * summary on stdout, and the files: --save-outputs through the library's safetensors writer
 * (lib/io/safetensors.h, which this program can use because it links the internal library) and --save-memory.
 *
 * --save-outputs file: the safetensors layout (8-byte little-endian header length, the JSON header padded
 * with spaces to a multiple of 8, then the tensors back to back, little-endian); tensors and metadata as
 * listed by --help.
 */
#include "config.h"

#include "run.h"
#include "io/armt_config.h"

#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static uint64_t tensor_elems(const out_tensor *t) {
    uint64_t n = 1;
    for (int i = 0; i < t->ndim; i++)
        n *= t->shape[i];
    return n;
}

/* Writes the tensors in order, and the metadata (key and value strings, NULL-terminated pairs); the file
 * appears under path only once it is complete. */
int run_save_safetensors(const char *path, const out_tensor *t, size_t n, const char *const *metadata) {
    armt_err err;
    armt_err_init(&err);
    st_writer *w = NULL;
    armt_status st = st_writer_open(path, &w, &err);
    for (size_t i = 0; st == ARMT_OK && metadata[i] && metadata[i + 1]; i += 2)
        st = st_writer_meta(w, metadata[i], metadata[i + 1], &err);
    for (size_t i = 0; st == ARMT_OK && i < n; i++)
        st = st_writer_add_typed(w, t[i].name, t[i].dtype, t[i].ndim, t[i].shape, &err);
    for (size_t i = 0; st == ARMT_OK && i < n; i++)
        st = t[i].dtype == ST_I32 ? st_writer_write_i32(w, t[i].data, tensor_elems(&t[i]), &err)
                                  : st_writer_write(w, t[i].data, tensor_elems(&t[i]), &err);
    if (st == ARMT_OK) {
        st = st_writer_close(w, &err); /* frees w */
        w = NULL;
    }
    st_writer_abort(w);
    if (st != ARMT_OK) {
        char what[600];
        snprintf(what, sizeof what, "saving the outputs to '%s'", path);
        cli_report_status(what, st, armt_err_msg(&err));
    }
    armt_err_free(&err);
    return st == ARMT_OK ? 0 : -1;
}

/* The memory state of ctx as tensors w_name and z_name appended to t (*nt grows; z left out without a
 * denominator), in the reference's layout: [layers with memory, H, d_key/H, d/H] ([layers, d_key, d] with one
 * head); wrap_layers = false layers have no block. *w_mem and *z are allocated here (the caller frees). */
int run_memory_tensors(armt_ctx *ctx, const char *w_name, const char *z_name, float **w_out, float **z_out,
                       out_tensor *t, size_t *nt) {
    const armt_config *cfg = armt_model_config(armt_ctx_model(ctx));
    size_t wc = armt_ctx_memory_w_count(ctx), zc = armt_ctx_memory_z_count(ctx);
    float *w_mem = *w_out = malloc(wc * sizeof *w_mem), *z = *z_out = malloc(zc * sizeof *z);
    if (!w_mem || !z) {
        cli_error("out of host memory for the memory state");
        return -1;
    }
    armt_status st = armt_ctx_memory_get(ctx, w_mem, z, NULL);
    if (st != ARMT_OK) {
        cli_report_status("reading the memory state", st, armt_ctx_last_error(ctx));
        return -1;
    }
    /* the host layout holds every layer: keep those with a memory, in order */
    uint64_t H = (uint64_t)armt_config_mem_heads(cfg);
    uint64_t dkh = (uint64_t)armt_config_d_key(cfg) / H, dvh = (uint64_t)cfg->hidden_size / H;
    uint64_t layers = 0;
    for (int l = 0; l < cfg->n_layers; l++) {
        if (armt_config_memory_off(cfg, l)) continue;
        memmove(w_mem + layers * H * dkh * dvh, w_mem + (uint64_t)l * H * dkh * dvh,
                H * dkh * dvh * sizeof *w_mem);
        memmove(z + layers * H * dkh, z + (uint64_t)l * H * dkh, H * dkh * sizeof *z);
        layers++;
    }
    if (H == 1) { /* one head: [layers, d_key, d] and [layers, d_key] */
        t[(*nt)++] = (out_tensor){w_name, ST_F32, 3, {layers, dkh, dvh}, w_mem};
        if (!cfg->no_denom) t[(*nt)++] = (out_tensor){z_name, ST_F32, 2, {layers, dkh}, z};
    } else {
        t[(*nt)++] = (out_tensor){w_name, ST_F32, 4, {layers, H, dkh, dvh}, w_mem};
        if (!cfg->no_denom) t[(*nt)++] = (out_tensor){z_name, ST_F32, 3, {layers, H, dkh}, z};
    }
    return 0;
}

/* One forward call with one output; *out is allocated here (NULL for ARMT_OUTPUT_NONE). */
static int forward_once(armt_ctx *ctx, const int32_t *ids, size_t n, armt_schedule s, armt_output o,
                        float **out, double *seconds) {
    armt_model *model = armt_ctx_model(ctx);
    size_t count = armt_output_count(model, o, n);
    *out = NULL;
    if (count > 0) {
        *out = malloc(count * sizeof **out);
        if (!*out) {
            char b[32];
            cli_error("out of host memory for the %s output (%s)", armt_output_name(o),
                      cli_format_bytes((uint64_t)count * sizeof(float), b, sizeof b));
            return -1;
        }
    }
    armt_forward_params fp = armt_forward_default_params();
    fp.schedule = s;
    fp.output = o;
    fp.out = *out;
    fp.out_count = count;
    fp.progress = run_cancel_progress; /* Ctrl-C */
    double t0 = cli_now();
    armt_status st = armt_forward(ctx, ids, n, &fp);
    *seconds = cli_now() - t0;
    if (st != ARMT_OK) {
        run_report_status("forward", st, armt_ctx_last_error(ctx));
        free(*out);
        *out = NULL;
        return -1;
    }
    return 0;
}

/* Index of the largest of v[0..n) (the first one on ties; NaN never wins). */
static size_t argmax(const float *v, size_t n) {
    size_t best = 0;
    for (size_t i = 1; i < n; i++)
        if (v[i] > v[best] || isnan(v[best])) best = i;
    return best;
}

int run_forward(const run_opts *o, armt_ctx *ctx, const armt_device_info *dev) {
    armt_model *model = armt_ctx_model(ctx);
    const armt_config *cfg = armt_model_config(model);
    int rc = -1;
    int32_t *ids = NULL;
    size_t n = 0;
    float *logits = NULL, *hidden = NULL, *w_mem = NULL, *z = NULL, *w_snap = NULL, *z_snap = NULL;
    uint8_t *written_snap = NULL;
    armt_status st;
    char label[600], b1[32], b2[32], b3[32];

    /* Input ids: checked against the vocabulary here, so errors carry file positions. */
    if (o->ids_path) {
        if (cli_read_ids_file(o->ids_path, cfg->vocab_size, &ids, &n) != 0) goto done;
    } else {
        n = (size_t)o->random_ids;
        ids = malloc(n * sizeof *ids);
        if (!ids) {
            cli_error("out of host memory for %zu ids", n);
            goto done;
        }
        cli_random_ids(o->common.seed, cfg->vocab_size, ids, n);
    }

    int armt = o->schedule != ARMT_SCHEDULE_FULL;
    if (o->load_memory) {
        if (!armt && o->verbosity > CLI_QUIET)
            cli_error("note: --load-memory has no effect on the full schedule (it does not use the memory)");
        if (cli_memory_file(ctx, o->load_memory, 0) != 0) goto done;
    }

    /* Which outputs: --save-outputs without --output saves logits and hidden, which takes two calls. */
    int both = o->save_outputs && !o->output_given;
    armt_output first = both ? ARMT_OUTPUT_LOGITS_ALL : o->output;
    size_t wc = armt_ctx_memory_w_count(ctx), zc = armt_ctx_memory_z_count(ctx);
    if (both && armt) {
        /* snapshot the starting state, so the second call starts where the first one did */
        w_snap = malloc(wc * sizeof *w_snap);
        z_snap = malloc(zc * sizeof *z_snap);
        written_snap = malloc((size_t)cfg->n_layers);
        if (!w_snap || !z_snap || !written_snap) {
            cli_error("out of host memory for a copy of the memory state");
            goto done;
        }
        st = armt_ctx_memory_get(ctx, w_snap, z_snap, written_snap);
        if (st != ARMT_OK) {
            cli_report_status("reading the memory state", st, armt_ctx_last_error(ctx));
            goto done;
        }
    }

    double seconds = 0.0, seconds2 = 0.0;
    float *first_out = NULL;
    if (forward_once(ctx, ids, n, o->schedule, first, &first_out, &seconds) != 0) goto done;
    if (first == ARMT_OUTPUT_HIDDEN)
        hidden = first_out;
    else
        logits = first_out; /* all, last, or NULL for none */
    armt_stats stats;
    st = armt_ctx_stats(ctx, &stats);
    if (st != ARMT_OK) {
        cli_report_status("reading the statistics", st, armt_ctx_last_error(ctx));
        goto done;
    }
    if (both) {
        if (armt) {
            st = armt_ctx_memory_set(ctx, w_snap, z_snap, written_snap);
            if (st != ARMT_OK) {
                cli_report_status("restoring the memory state for the second call", st,
                                  armt_ctx_last_error(ctx));
                goto done;
            }
        }
        if (forward_once(ctx, ids, n, o->schedule, ARMT_OUTPUT_HIDDEN, &hidden, &seconds2) != 0) goto done;
    }

    /* ---- summary on stdout ---- */
    cli_model_label(&o->common, label, sizeof label);
    uint64_t segments = cli_div_up(n, (uint64_t)cfg->segment_size);
    printf("model:    %s: %d layers, hidden %d, heads %d/%d, vocab %d; segment %d + %d memory tokens; %s; "
           "%s variant",
           label, cfg->n_layers, cfg->hidden_size, cfg->n_heads, cfg->n_kv_heads, cfg->vocab_size,
           cfg->segment_size, cfg->num_mem_tokens, armt_precision_name(o->common.precision),
           armt_variant_name(cfg->variant));
    if (cfg->mem_heads > 1) printf(", %d memory heads", cfg->mem_heads);
    if (cfg->gating) printf(", gating");
    if (cfg->no_denom) printf(", no denominator");
    if (cfg->use_sink) printf(", sink");
    if (cfg->sliding_window) printf(", sliding window");
    int no_mem = cfg->n_layers - armt_config_memory_layers(cfg);
    if (no_mem) printf(", %d layer%s without memory", no_mem, no_mem == 1 ? "" : "s");
    printf("\n");
    printf("device:   %s (%s)%s%s\n", dev->name, dev->platform_name, dev->device_version[0] ? ", " : "",
           dev->device_version);
    if (armt)
        printf("input:    %zu tokens (%s), %" PRIu64 " segment%s\n", n,
               o->ids_path ? o->ids_path : "random ids", segments, segments == 1 ? "" : "s");
    else
        printf("input:    %zu tokens (%s), one sequence (full attention: no segments, no memory)\n", n,
               o->ids_path ? o->ids_path : "random ids");
    printf("schedule: %s, %" PRIu64 " steps, %.4f s (%.0f tokens/s)%s\n", armt_schedule_name(o->schedule),
           stats.steps, seconds, seconds > 0 ? (double)n / seconds : 0.0, both ? " [logits call]" : "");
    if (both) printf("          %.4f s for the second call (hidden states)\n", seconds2);
    if (logits) {
        const float *last =
            first == ARMT_OUTPUT_LOGITS_ALL ? logits + (n - 1) * (size_t)cfg->vocab_size : logits;
        size_t best = argmax(last, (size_t)cfg->vocab_size);
        printf("last:     argmax token %zu (logit %.6g) at position %zu\n", best, (double)last[best], n - 1);
    } else {
        printf("last:     argmax not computed (--output %s)\n", armt_output_name(o->output));
    }

    if (o->stats) {
        printf("stats:    steps %" PRIu64 ", cells %" PRIu64 ", kernel launches %" PRIu64
               ", GEMM calls %" PRIu64 "\n",
               stats.steps, stats.cells, stats.kernel_launches, stats.gemm_calls);
        printf("          device bytes: model %s, context %s, peak (model + contexts) %s\n",
               cli_format_bytes(armt_model_device_bytes(model), b1, sizeof b1),
               cli_format_bytes(stats.device_bytes, b2, sizeof b2),
               cli_format_bytes(stats.peak_device_bytes, b3, sizeof b3));
        printf("          seconds %.6f (library, queue finished), %.6f (wall around armt_forward)\n",
               stats.seconds, seconds);
    }

    if (o->profile) cli_print_profile(ctx, "forward", 0.0, "");

    /* ---- files ---- */
    if (o->save_outputs) {
        out_tensor t[6];
        size_t nt = 0;
        if (logits && first == ARMT_OUTPUT_LOGITS_ALL)
            t[nt++] = (out_tensor){"logits", ST_F32, 2, {n, (uint64_t)cfg->vocab_size, 0}, logits};
        if (logits && first == ARMT_OUTPUT_LOGITS_LAST)
            t[nt++] = (out_tensor){"logits_last", ST_F32, 2, {1, (uint64_t)cfg->vocab_size, 0}, logits};
        if (hidden) t[nt++] = (out_tensor){"hidden", ST_F32, 2, {n, (uint64_t)cfg->hidden_size, 0}, hidden};
        if (armt && run_memory_tensors(ctx, "memory.W_mem", "memory.z", &w_mem, &z, t, &nt) != 0) goto done;
        t[nt++] = (out_tensor){"input_ids", ST_I32, 1, {n, 0, 0}, ids};
        char n_text[32], seg_text[16], mem_text[16], dk_text[16];
        snprintf(n_text, sizeof n_text, "%zu", n);
        snprintf(seg_text, sizeof seg_text, "%d", cfg->segment_size);
        snprintf(mem_text, sizeof mem_text, "%d", cfg->num_mem_tokens);
        snprintf(dk_text, sizeof dk_text, "%d", armt_config_d_key(cfg));
        char heads_text[16];
        snprintf(heads_text, sizeof heads_text, "%d", armt_config_mem_heads(cfg));
        const char *const metadata[] = {
            "generator", "armt-run", "libarmt_version", armt_version_string(), "model", label, "schedule",
            armt_schedule_name(o->schedule), "n_tokens", n_text, "segment_size", seg_text, "num_mem_tokens",
            mem_text, "d_key", dk_text, "precision", armt_precision_name(o->common.precision),
            /* the later variants only: a paper model's file stays as it was */
            cfg->variant ? "variant" : NULL, armt_variant_name(cfg->variant), "memory_heads", heads_text,
            NULL, NULL};
        if (run_save_safetensors(o->save_outputs, t, nt, metadata) != 0) goto done;
        printf("saved:    %s:", o->save_outputs);
        for (size_t i = 0; i < nt; i++) {
            printf("%s %s [", i ? "," : "", t[i].name);
            for (int d = 0; d < t[i].ndim; d++)
                printf("%s%" PRIu64, d ? ", " : "", t[i].shape[d]);
            printf("]");
        }
        printf("\n");
    }
    if (o->save_memory) {
        if (cli_memory_file(ctx, o->save_memory, 1) != 0) goto done;
        printf("saved:    memory state to %s\n", o->save_memory);
    }
    fflush(stdout);
    if (ferror(stdout)) {
        cli_error("writing to stdout failed");
        goto done;
    }
    rc = 0;

done:
    free(logits);
    free(hidden);
    free(w_mem);
    free(z);
    free(w_snap);
    free(z_snap);
    free(written_snap);
    free(ids);
    return rc;
}
