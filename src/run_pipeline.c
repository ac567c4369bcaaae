/*
 * run_pipeline.c - armt-run's forward mode on a layer pipeline (--devices LIST, --mpi): the ids (a file or
 * random; every rank reads or draws the same), one forward call, the summary on stdout and --save-outputs
 * (the requested output and the memory state, in the forward mode's layout) from rank 0; --load-memory and
 * --save-memory through the pipeline's state files (the format of one context's). Generation is refused
 * here for now.
 */
#include "config.h"

#include "run.h"
#include "io/armt_config.h"

#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The whole model's memory state in the reference's layout (layers with memory only), as run_forward.c
 * saves it: tensors appended to t. */
static int memory_tensors(armt_pipeline *pipe, const armt_config *cfg, float **w_out, float **z_out,
                          out_tensor *t, size_t *nt, int root) {
    const uint64_t H = (uint64_t)armt_config_mem_heads(cfg), dk = (uint64_t)armt_config_d_key(cfg),
                   d = (uint64_t)cfg->hidden_size, L = (uint64_t)cfg->n_layers;
    float *w = malloc(L * dk * d * sizeof *w), *z = malloc(L * dk * sizeof *z);
    uint8_t *written = malloc(L);
    *w_out = w;
    *z_out = z;
    if (!w || !z || !written) {
        free(written);
        cli_error("out of host memory for the memory state");
        return -1;
    }
    armt_status st = armt_pipeline_memory_get(pipe, w, z, written);
    free(written);
    if (st != ARMT_OK) {
        cli_report_status("reading the memory state", st, armt_pipeline_last_error(pipe));
        return -1;
    }
    if (!root) return 0;
    const uint64_t dkh = dk / H, dvh = d / H;
    uint64_t layers = 0;
    for (int l = 0; l < cfg->n_layers; l++) {
        if (armt_config_memory_off(cfg, l)) continue;
        memmove(w + layers * H * dkh * dvh, w + (uint64_t)l * H * dkh * dvh, H * dkh * dvh * sizeof *w);
        memmove(z + layers * H * dkh, z + (uint64_t)l * H * dkh, H * dkh * sizeof *z);
        layers++;
    }
    if (H == 1) {
        t[(*nt)++] = (out_tensor){"memory.W_mem", ST_F32, 3, {layers, dkh, dvh}, w};
        if (!cfg->no_denom) t[(*nt)++] = (out_tensor){"memory.z", ST_F32, 2, {layers, dkh}, z};
    } else {
        t[(*nt)++] = (out_tensor){"memory.W_mem", ST_F32, 4, {layers, H, dkh, dvh}, w};
        if (!cfg->no_denom) t[(*nt)++] = (out_tensor){"memory.z", ST_F32, 3, {layers, H, dkh}, z};
    }
    return 0;
}

/* After the pipeline exists: ids, the call, the summary and the file. */
static int run_on(const run_opts *o, armt_pipeline *pipe, int root) {
    const armt_config *cfg = armt_pipeline_config(pipe);
    int rc = -1;
    int32_t *ids = NULL;
    float *out = NULL, *w = NULL, *z = NULL;
    size_t n = 0;
    if (o->ids_path) {
        if (cli_read_ids_file(o->ids_path, cfg->vocab_size, &ids, &n) != 0) return -1;
    } else {
        n = (size_t)o->random_ids;
        ids = malloc(n * sizeof *ids);
        if (!ids) {
            cli_error("out of host memory for %zu ids", n);
            return -1;
        }
        cli_random_ids(o->common.seed, cfg->vocab_size, ids, n);
    }
    /* --save-outputs without --output: the logits (the hidden states take a call of their own on one
     * device; here ask for them with --output hidden) */
    const armt_output what = o->save_outputs && !o->output_given ? ARMT_OUTPUT_LOGITS_ALL : o->output;
    const size_t count = what == ARMT_OUTPUT_LOGITS_ALL    ? n * (size_t)cfg->vocab_size
                         : what == ARMT_OUTPUT_LOGITS_LAST ? (size_t)cfg->vocab_size
                         : what == ARMT_OUTPUT_HIDDEN      ? n * (size_t)cfg->hidden_size
                                                           : 0;
    if (count && !(out = malloc(count * sizeof *out))) {
        cli_error("out of host memory for the output");
        goto done;
    }
    if (o->load_memory) {
        armt_status ls = armt_pipeline_memory_load(pipe, o->load_memory);
        if (ls != ARMT_OK) {
            char what_[600];
            snprintf(what_, sizeof what_, "loading the memory state '%s'", o->load_memory);
            cli_report_status(what_, ls, armt_pipeline_last_error(pipe));
            goto done;
        }
    }
    armt_forward_params fp = armt_forward_default_params();
    fp.schedule = o->schedule;
    fp.output = what;
    fp.out = out;
    fp.out_count = count;
    fp.progress = run_cancel_progress;
    armt_status st = armt_pipeline_forward(pipe, ids, n, &fp);
    if (st != ARMT_OK) {
        run_report_status("forward", st, armt_pipeline_last_error(pipe));
        goto done;
    }
    armt_pipeline_stats ps;
    if (armt_pipeline_stats_get(pipe, &ps) != ARMT_OK) memset(&ps, 0, sizeof ps);
    out_tensor t[6];
    size_t nt = 0;
    if (o->save_outputs && memory_tensors(pipe, cfg, &w, &z, t, &nt, root) != 0) goto done;
    if (o->save_memory) {
        armt_status ss = armt_pipeline_memory_save(pipe, o->save_memory);
        if (ss != ARMT_OK) {
            char w2[600];
            snprintf(w2, sizeof w2, "saving the memory state to '%s'", o->save_memory);
            cli_report_status(w2, ss, armt_pipeline_last_error(pipe));
            goto done;
        }
    }
    if (!root) {
        rc = 0;
        goto done;
    }
    char label[600], moved[32];
    cli_model_label(&o->common, label, sizeof label);
    const uint64_t segments = cli_div_up(n, (uint64_t)cfg->segment_size);
    printf("model:    %s: %d layers, hidden %d, heads %d/%d, vocab %d; segment %d + %d memory tokens; %s; "
           "%s variant\n",
           label, cfg->n_layers, cfg->hidden_size, cfg->n_heads, cfg->n_kv_heads, cfg->vocab_size,
           cfg->segment_size, cfg->num_mem_tokens, armt_precision_name(o->common.precision),
           armt_variant_name(cfg->variant));
    printf("pipeline: %d stages%s\n", ps.n_stages, o->pipe.mpi ? " (MPI ranks)" : "");
    cli_pipeline_describe(stdout, pipe);
    printf("input:    %zu tokens (%s), %" PRIu64 " segment%s\n", n, o->ids_path ? o->ids_path : "random ids",
           segments, segments == 1 ? "" : "s");
    printf(
        "schedule: %s, %" PRIu64 " ticks, %.4f s (%.0f tokens/s); %s handed between stages, bubble %.1f%%\n",
        armt_schedule_name(o->schedule), ps.ticks, ps.seconds, ps.seconds > 0 ? (double)n / ps.seconds : 0.0,
        cli_format_bytes(ps.bytes_moved, moved, sizeof moved), 100.0 * ps.bubble);
    if (what == ARMT_OUTPUT_LOGITS_ALL || what == ARMT_OUTPUT_LOGITS_LAST) {
        const float *last = what == ARMT_OUTPUT_LOGITS_ALL ? out + (n - 1) * (size_t)cfg->vocab_size : out;
        size_t best = 0;
        for (size_t i = 1; i < (size_t)cfg->vocab_size; i++)
            if (last[i] > last[best] || isnan(last[best])) best = i;
        printf("last:     argmax token %zu (logit %.6g) at position %zu\n", best, (double)last[best], n - 1);
    } else {
        printf("last:     argmax not computed (--output %s)\n", armt_output_name(what));
    }
    if (o->stats)
        for (int i = 0; i < ps.n_stages; i++) {
            armt_pipeline_stage_info in;
            if (armt_pipeline_stage(pipe, i, &in) == ARMT_OK)
                printf("stats:    stage %d: busy %.6f s, sent %" PRIu64 " bytes\n", i, in.busy_seconds,
                       in.bytes_sent);
        }
    if (o->save_outputs) {
        if (what == ARMT_OUTPUT_LOGITS_ALL)
            t[nt++] = (out_tensor){"logits", ST_F32, 2, {n, (uint64_t)cfg->vocab_size, 0}, out};
        if (what == ARMT_OUTPUT_LOGITS_LAST)
            t[nt++] = (out_tensor){"logits_last", ST_F32, 2, {1, (uint64_t)cfg->vocab_size, 0}, out};
        if (what == ARMT_OUTPUT_HIDDEN)
            t[nt++] = (out_tensor){"hidden", ST_F32, 2, {n, (uint64_t)cfg->hidden_size, 0}, out};
        t[nt++] = (out_tensor){"input_ids", ST_I32, 1, {n, 0, 0}, ids};
        char n_text[32], stages[16];
        snprintf(n_text, sizeof n_text, "%zu", n);
        snprintf(stages, sizeof stages, "%d", ps.n_stages);
        const char *const metadata[] = {"generator",
                                        "armt-run",
                                        "libarmt_version",
                                        armt_version_string(),
                                        "model",
                                        label,
                                        "schedule",
                                        armt_schedule_name(o->schedule),
                                        "n_tokens",
                                        n_text,
                                        "precision",
                                        armt_precision_name(o->common.precision),
                                        "pipeline_stages",
                                        stages,
                                        NULL,
                                        NULL};
        if (run_save_safetensors(o->save_outputs, t, nt, metadata) != 0) goto done;
        printf("saved:    %s\n", o->save_outputs);
    }
    if (o->save_memory) printf("saved:    memory state to %s\n", o->save_memory);
    fflush(stdout);
    rc = ferror(stdout) ? -1 : 0;
done:
    free(ids);
    free(out);
    free(w);
    free(z);
    return rc;
}

int run_pipeline(run_opts *o, int *argc, char ***argv) {
    if (o->generate) {
        cli_error("generation: not supported with --devices / --mpi yet (forward mode only)");
        return -1;
    }
    if (o->schedule == ARMT_SCHEDULE_FULL) {
        cli_error("--schedule full does not run as a pipeline (diagonal or sequential)");
        return -1;
    }
    if (cli_pipeline_mpi_init(&o->pipe, argc, argv) != 0) return -1;
    if (o->pipe.rank != 0) cli_log_install(CLI_QUIET); /* rank 0 speaks for all */
    armt_pipeline *pipe = NULL;
    int rc = -1;
    if (o->verbosity > CLI_QUIET && o->pipe.rank == 0)
        fprintf(stderr, "%s: creating the pipeline...\n", cli_progname());
    if (cli_open_pipeline(&o->common, &o->pipe, &pipe) == 0) rc = run_on(o, pipe, o->pipe.rank == 0);
    armt_pipeline_free(pipe);
    cli_pipeline_mpi_finalize(&o->pipe);
    return rc;
}
