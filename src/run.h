/*
 * run.h - the parts of armt-run: options (run_args.c), forward mode (run_forward.c), generation mode
 * (run_generate.c); main() in armt-run.c opens the tokenizer, device, model and context and hands over.
 * Each part prints its own messages (cli_common.h) and returns 0 or -1.
 */
#ifndef ARMT_RUN_H
#define ARMT_RUN_H

#include "armt.h"
#include "cli_common.h"
#include "cli_pipeline.h"
#include "io/safetensors.h"

#include <signal.h>

#include <stddef.h>
#include <stdint.h>

/* Most --stop-id plus --stop options accepted. */
#define CLI_MAX_STOPS 16
/* Most --ids files in one batch. */
#define CLI_MAX_DOCS 256

typedef struct run_opts {
    cli_common common;
    const char *ids_path;                /* --ids FILE ("-": stdin): the first one                */
    const char *ids_paths[CLI_MAX_DOCS]; /* every --ids FILE, in order (several: one batch)   */
    size_t n_ids_paths;
    int64_t random_ids; /* --random-ids N; 0: not given                        */
    armt_schedule schedule;
    armt_output output;
    int output_given;
    const char *save_outputs;
    const char *save_memory;
    const char *load_memory;
    int stats;
    int profile; /* --profile: per-kernel device time of the forward, or of the decode */
    int verbosity;
    /* generation mode */
    int generate;               /* --generate, --max-new, --prompt or --prompt-file given              */
    const char *prompt_text;    /* --prompt TEXT                                                       */
    const char *prompt_file;    /* --prompt-file FILE ("-": stdin)                                     */
    const char *tokenizer_path; /* --tokenizer tokenizer.json                                          */
    int max_new;                /* --max-new N (default 32)                                            */
    double temperature;         /* --temperature T (default 0: greedy)                                 */
    int top_k;                  /* --top-k K (default 0: all)                                          */
    double top_p;               /* --top-p P (default 1: all)                                          */
    int sampling_given;         /* --top-k or --top-p given                                            */
    uint64_t sample_seed;       /* --sample-seed N (default 0)                                         */
    int32_t stop_ids[CLI_MAX_STOPS];
    size_t n_stop_ids;
    const char *stop_texts[CLI_MAX_STOPS];
    size_t n_stop_texts;
    int bos;                  /* --bos 1, --no-bos 0, -1: not given (text: BOS added; ids: none)     */
    int print_ids;            /* --print-ids: ids even with a tokenizer                               */
    int skip_special;         /* --skip-special: special tokens are not printed as text              */
    const char *gen_only_opt; /* first generation-only option seen (for the message in forward mode) */
    const char *fwd_only_opt; /* first forward-only option seen (for the message in generation mode) */
    cli_pipeline pipe;        /* --devices, --mpi, --split: forward mode on a layer pipeline          */
} run_opts;

/* One tensor of --save-outputs: 4-byte elements, F32 or I32, host order. */
typedef struct out_tensor {
    const char *name;
    st_dtype dtype;
    int ndim;
    uint64_t shape[4];
    const void *data;
} out_tensor;

/* Writes the tensors in order, and the metadata (key and value strings, NULL-terminated pairs); the file
 * appears under path only once it is complete. */
int run_save_safetensors(const char *path, const out_tensor *t, size_t n, const char *const *metadata);

/* Ctrl-C: the first SIGINT sets run_interrupted (the default action comes back for a second one); the
 * progress and token callbacks see it and stop the library call, which returns ARMT_STATUS_CANCELLED with
 * the memory state unchanged; armt-run then prints one line and exits with 130. */
extern volatile sig_atomic_t run_interrupted;
/* A progress callback (armt_progress_fn) that cancels once run_interrupted is set. */
int run_cancel_progress(uint64_t done, uint64_t total, void *user_data);
/* Reports a failed library call, or one line for a Ctrl-C (status CANCELLED after SIGINT). */
void run_report_status(const char *what, armt_status st, const char *detail);

/* Parses the command line into *o. Returns 0 to run, 1 to exit successfully (--help), -1 on a usage
 * error (the message is printed). */
int run_parse_args(int argc, char **argv, run_opts *o);

/* Forward mode after the model and context exist: reads or draws the ids, runs them, prints the summary
 * on stdout and writes the files asked for. dev: the device, for the summary. */
int run_forward(const run_opts *o, armt_ctx *ctx, const armt_device_info *dev);

/* Forward mode with several --ids files: one armt_forward_batch over them, ctx the first document's
 * context and the batch's runner (run_batch.c). */
int run_forward_batch(const run_opts *o, armt_ctx *ctx, const armt_device_info *dev);

/* The memory state of ctx as tensors w_name and z_name appended to t (*nt grows); see run_forward.c. */
int run_memory_tensors(armt_ctx *ctx, const char *w_name, const char *z_name, float **w_mem, float **z,
                       out_tensor *t, size_t *nt);
/* Forward mode on a layer pipeline (--devices, --mpi; run_pipeline.c): the pipeline is made here. */
int run_pipeline(run_opts *o, int *argc, char ***argv);

/* Generation mode after the model and context exist. tok may be NULL (ids in, ids out). */
int run_generate(const run_opts *o, armt_ctx *ctx, armt_tokenizer *tok);

/* Generation mode with several --ids/--prompt-ids files: one armt_generate_batch, ctx the first document's
 * context and the runner; each document's tokens on stdout as a line "N: ids" (run_generate_batch.c). */
int run_generate_batch(const run_opts *o, armt_ctx *ctx);

#endif /* ARMT_RUN_H */
