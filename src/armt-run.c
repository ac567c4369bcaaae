/*
 * armt-run.c - the command-line face of libarmt: load a model (checkpoint or random preset), then either
 *   - forward mode (run_forward.c): run token ids through one schedule, print a short summary and
 *     optionally save the outputs and the memory state; or
 *   - generation mode (run_generate.c; --generate / --max-new / --prompt): read a prompt (token ids, or
 *     text through a HF tokenizer.json) and print new tokens as armt_generate produces them, then the
 *     timing on stderr.
 * The options are parsed in run_args.c. This file opens the tokenizer, device, model and context, and
 * hands over to the mode.
 *
 * The model is driven through the public API (armt.h) only. The program links the internal library
 * (libarmt_core, like the tests) for two helpers the public API does not offer: the safetensors writer
 * (lib/io/safetensors.h) and the whole-file reader (lib/common/util.h).
 */
#include "config.h"

#include "run.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

volatile sig_atomic_t run_interrupted = 0;

static void on_sigint(int sig) {
    (void)sig;
    run_interrupted = 1; /* SA_RESETHAND: a second Ctrl-C ends the program at once */
}

int run_cancel_progress(uint64_t done, uint64_t total, void *user_data) {
    (void)done;
    (void)total;
    (void)user_data;
    return run_interrupted != 0;
}

void run_report_status(const char *what, armt_status st, const char *detail) {
    if (st == ARMT_STATUS_CANCELLED && run_interrupted)
        cli_error("interrupted (Ctrl-C) during the %s: stopped cleanly, the memory state is unchanged", what);
    else
        cli_report_status(what, st, detail);
}

int main(int argc, char **argv) {
    cli_init(argv[0]);
    run_opts o;
    int pr = run_parse_args(argc, argv, &o);
    if (pr != 0) return pr > 0 ? 0 : 2;
    cli_log_install(o.verbosity);
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_sigint;
    sa.sa_flags = SA_RESETHAND;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    if (o.common.list_devices) return cli_list_devices(stdout) == 0 ? 0 : 1;
    if (cli_pipeline_wanted(&o.pipe)) return run_pipeline(&o, &argc, &argv) == 0 ? 0 : 1;

    int rc = 1;
    armt_runtime *rt = NULL;
    armt_model *model = NULL;
    armt_ctx *ctx = NULL;
    armt_tokenizer *tok = NULL;
    armt_status st;
    armt_device_info dev;
    char label[600];

    /* the tokenizer first: a bad file fails before the device is opened */
    int tok_vocab = 0;
    if (o.tokenizer_path) {
        st = armt_tokenizer_load(o.tokenizer_path, &tok);
        if (st != ARMT_OK) {
            char what[600];
            snprintf(what, sizeof what, "loading the tokenizer '%s'", o.tokenizer_path);
            cli_report_status(what, st, armt_last_error());
            goto done;
        }
        tok_vocab = (int)armt_tokenizer_vocab_size(tok);
    }

    if (cli_open_runtime(&o.common, &rt) != 0) goto done;
    st = armt_runtime_device_info(rt, &dev);
    if (st != ARMT_OK) {
        cli_report_status("reading the device information", st, armt_runtime_last_error(rt));
        goto done;
    }
    int raised_from = 0;
    if (cli_open_model_ex(&o.common, rt, tok_vocab, &model, &raised_from) != 0) goto done;
    const armt_config *cfg = armt_model_config(model);
    if (raised_from > 0 && o.verbosity > CLI_QUIET)
        cli_error("note: preset '%s' has a vocabulary of %d tokens, the tokenizer %d: the random model's "
                  "vocab_size is set to %d",
                  o.common.preset, raised_from, tok_vocab, cfg->vocab_size);
    if (tok && cfg->vocab_size > tok_vocab && o.verbosity > CLI_QUIET && !o.print_ids)
        cli_error(
            "note: the model's vocabulary (%d) is larger than the tokenizer's (%d): ids the tokenizer does "
            "not know are printed as [id]",
            cfg->vocab_size, tok_vocab);
    armt_ctx_params cp = armt_ctx_default_params();
    cp.profile = o.profile ? 1 : 0;
    st = armt_ctx_create(model, &cp, &ctx);
    if (st != ARMT_OK) {
        cli_report_status("creating the context", st, armt_last_error());
        goto done;
    }

    if (o.generate) {
        if (o.verbosity > CLI_QUIET) {
            cli_model_label(&o.common, label, sizeof label);
            fprintf(stderr,
                    "model:    %s: %d layers, hidden %d, heads %d/%d, vocab %d; segment %d + %d memory "
                    "tokens; %s\n",
                    label, cfg->n_layers, cfg->hidden_size, cfg->n_heads, cfg->n_kv_heads, cfg->vocab_size,
                    cfg->segment_size, cfg->num_mem_tokens, armt_precision_name(o.common.precision));
            fprintf(stderr, "device:   %s (%s)%s%s\n", dev.name, dev.platform_name,
                    dev.device_version[0] ? ", " : "", dev.device_version);
        }
        rc = (o.n_ids_paths > 1 ? run_generate_batch(&o, ctx) : run_generate(&o, ctx, tok)) == 0 ? 0 : 1;
    } else {
        rc = (o.n_ids_paths > 1 ? run_forward_batch(&o, ctx, &dev) : run_forward(&o, ctx, &dev)) == 0 ? 0 : 1;
    }

done:
    if (run_interrupted) {
        if (rc == 0) cli_error("interrupted (Ctrl-C)");
        rc = 130; /* 128 + SIGINT, as a shell reports a program killed by Ctrl-C */
    }
    armt_tokenizer_free(tok);
    armt_ctx_free(ctx);
    armt_model_free(model);
    armt_runtime_free(rt);
    return rc;
}
