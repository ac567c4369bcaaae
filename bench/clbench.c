/*
 * clbench.c - the libarmt benchmark: diagonal vs sequential ARMT vs full-attention LLaMA, by sequence length.
 *
 * For every requested schedule (one armt_ctx each, created when the schedule starts and freed after it) and
 * every token count, it runs armt_forward on the same random ids: `warmup` calls, then `repetitions` timed
 * calls, resetting the memory state before each call of an ARMT schedule so every call does the same work.
 * A row that does not fit the device is reported as such and the run goes on. With --verify a second pass
 * compares the final hidden states of the diagonal schedule against the sequential one.
 *
 * Timing: wall time (CLOCK_MONOTONIC) around armt_forward, which returns after the queue has finished; it
 * covers the ids upload, the schedule and the output copy-out. Model loading and kernel compilation happen
 * before and are excluded; CLBlast compiles its kernels at a routine's first call, which lands in the
 * "first call" column (the first warm-up call), never in the repetitions.
 *
 * The FLOP count (docs/MATH.md §9) is the useful GEMM-like work only: linear layers, causal
 * attention, the ARMT memory read/write and the lm_head when the output needs it; elementwise work (norms,
 * RoPE, SwiGLU, DPFP) and the padding rows of a short last segment are not counted.
 *
 * Only the public API (armt.h) is used.
 */
#include "config.h"

#include "armt.h"
#include "cli_common.h"
#include "clbench_batch.h"
#include "clbench_pipeline.h"

#include <getopt.h>
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* Version of the csv/json/jsonl schema; bump it when a key changes meaning or disappears. */
#define CLBENCH_FORMAT_VERSION 1

/* ======================================================================================================= */
/* Options                                                                                                 */
/* ======================================================================================================= */

typedef enum out_format { FMT_MD, FMT_CSV, FMT_JSON, FMT_JSONL } out_format;

#define MAX_SCHEDULES 3

typedef struct bench_opts {
    cli_common common;
    int64_t *tokens; /* token counts, in the order given              */
    size_t n_tokens; /* 0: defaults (4 and 16 segments)               */
    armt_schedule schedules[MAX_SCHEDULES];
    size_t n_schedules;
    armt_output output; /* --outputs none|last|all                       */
    int repetitions;
    int warmup;
    int verify;
    double verify_tol; /* max relative difference accepted by --verify  */
    out_format format;
    int verbosity;
    armt_precision precisions[2]; /* --precision fp32,bf16: the benchmark runs once per entry */
    int profile;                  /* --profile: device time per kernel (OpenCL events)  */
    int all_rows;                 /* --all-rows: armt_forward_params.all_rows           */
    size_t n_precisions;
    int fp32_gemm[3]; /* --fp32-gemm auto,clblast,tf32x3: one runtime and run of everything per entry */
    size_t n_fp32_gemm;
    int fp32_given;         /* --fp32-gemm was given: the tables name the path */
    int batch;              /* --batch B (clbench_batch.c)                        */
    int64_t *batch_lengths; /* --batch-lengths LIST                               */
    size_t n_batch_lengths;
    int decode;        /* --decode N */
    cli_pipeline pipe; /* --devices, --mpi, --split: bench/clbench_pipeline.c */
} bench_opts;

static const char *const fp32_gemm_names[] = {"auto", "clblast", "tf32x3"};

static void usage(FILE *out) {
    fprintf(
        out,
        "Usage: %s [OPTIONS]\n"
        "\n"
        "Benchmarks libarmt's schedules on one OpenCL device: diagonal ARMT (Diagonal Batching), sequential\n"
        "ARMT (segment by segment, layer by layer) and the full-attention base LLaMA over the whole input,\n"
        "on the same random token ids. Without arguments it runs the 'tiny' preset at 64 and 256 tokens\n"
        "with all three schedules on the best device and prints a Markdown table.\n"
        "\n"
        "Workload:\n"
        "      --tokens LIST      comma-separated token counts (default: 4 and 16 segments, i.e. 64,256\n"
        "                         for tiny; 4096,16384 for the presets with segment 1024)\n"
        "      --schedule LIST    comma-separated subset of diagonal,sequential,full (default: all three,\n"
        "                         run in the order given)\n"
        "      --profile          after the timed calls, one more call per row with OpenCL profiling events\n"
        "                         (not timed: an event per launch costs host time): device time per kernel\n"
        "                         (CLBlast GEMMs counted by their main kernel's event), then the GEMMs by\n"
        "                         weight with their TFLOP/s\n"
        "      --precision LIST   weight precision(s), comma-separated: fp32 (default; GEMMs on 3xTF32\n"
        "                         tensor cores where there are, else CLBlast: --fp32-gemm, a list here),\n"
        "                         bf16 (bf16 weights, our own GEMM; on NVIDIA sm_80+ GEMMs, attention and "
        "the\n"
        "                         memory read run on tensor cores, wgmma on sm_90); the whole benchmark "
        "runs\n"
        "                         once per entry, one table each\n"
        "      --outputs WHAT     none (default: hidden states stay on the device, no lm_head), last "
        "(logits\n"
        "                         of the last token) or logits (also 'all': logits of every token; needs\n"
        "                         tokens x vocab floats of host memory). With none or last the last layer\n"
        "                         computes only the rows something reads (memory tokens, the last token);\n"
        "                         FLOPs count that\n"
        "      --all-rows         the last layer computes every row anyway (comparisons)\n"
        "      --batch B          B documents of each --tokens count as one batch (armt_forward_batch),\n"
        "                         against the same documents one at a time (armt_forward, the same\n"
        "                         schedule): seconds, tokens/s, speedup, memory per document\n"
        "      --batch-lengths LIST  one ragged batch, a document per length (comma-separated)\n"
        "      --decode N         time N new tokens (greedy, armt_generate) after a prompt of each --tokens\n"
        "                         count: prefill and decode seconds, ms and tokens/s of the tokens after\n"
        "                         the first; with --batch B also B documents of each count generating N\n"
        "                         tokens each as one batch (armt_generate_batch): decode tokens/s of all\n"
        "                         documents together, ms and kernel launches per step (a new token of\n"
        "                         every document). --batch, --batch-lengths and --decode print their own\n"
        "                         Markdown tables (the first --schedule; diagonal or sequential)\n"
        "  -r, --repetitions N    timed calls per row (default 3)\n"
        "  -w, --warmup N         untimed calls before them (default 1); the first one is reported as\n"
        "                         'first call' and includes CLBlast's kernel compilation\n"
        "      --verify           also run every ARMT schedule once more with hidden-state output and "
        "report\n"
        "                         the max abs and max relative difference (|a-b| max over the elements,\n"
        "                         divided by max |reference|) of diagonal vs sequential; full attention is\n"
        "                         another model (no memory) and is not compared\n"
        "      --verify-tol X     largest relative difference --verify accepts (default 1e-4)\n"
        "\n",
        cli_progname());
    cli_common_help(out, 1);
    cli_pipeline_help(out);
    fprintf(
        out,
        "\n"
        "Output:\n"
        "  -o, --format FMT       md (default: table, speedups, notes), csv, json, or jsonl (one object per\n"
        "                         row); csv, json and jsonl share one schema with a format_version\n"
        "  -q, --quiet            no progress or library warnings on stderr\n"
        "  -v, --verbose          library info messages on stderr (-vv: debug)\n"
        "  -h, --help             this help\n"
        "\n"
        "Columns: schedule, tokens, segments, status (ok | does not fit | error) and reason, first-call\n"
        "seconds, median/min/max/mean/stddev seconds over the repetitions, tokens/s, achieved TFLOP/s\n"
        "(docs/MATH.md section 9: linear layers, causal attention, memory read/write, lm_head when an\n"
        "output needs it), schedule steps, (layer, segment) cells, kernel launches, GEMM calls and the peak\n"
        "of model + context device bytes (from armt_ctx_stats). Times are wall time of armt_forward with\n"
        "the queue finished (ids upload, schedule, output copy-out); model load and kernel builds excluded.\n"
        "\n"
        "Exit status: 0 when every row ran (rows that do not fit the device do not count as failures),\n"
        "1 when a row failed or --verify found a mismatch, 2 on a usage error.\n"
        "\n"
        "Examples:\n"
        "  %s                                      quick run: tiny preset, all schedules\n"
        "  %s --list-devices\n"
        "  %s --preset llama-160m --tokens 4096,16384 --schedule diagonal,sequential\n"
        "  %s --preset llama-3.2-1b --segment 1024 --mem 128 --tokens 4096,32768,131072 -r 5 --verify\n"
        "  %s --model ./armt-checkpoint --tokens 8192 -o json > run.json\n"
        "  %s --platform nvidia --device 0 -o csv --tokens 1024,2048,4096\n",
        cli_progname(), cli_progname(), cli_progname(), cli_progname(), cli_progname(), cli_progname());
}

/* "diagonal,sequential" -> schedules; names may be abbreviated to diag / seq. */
static int parse_schedules(const char *text, bench_opts *o) {
    o->n_schedules = 0;
    char *copy = strdup(text);
    if (!copy) return -1;
    int rc = 0;
    char *save = NULL;
    for (char *item = strtok_r(copy, ",", &save); item; item = strtok_r(NULL, ",", &save)) {
        armt_schedule s;
        if (strcmp(item, "diagonal") == 0 || strcmp(item, "diag") == 0)
            s = ARMT_SCHEDULE_DIAGONAL;
        else if (strcmp(item, "sequential") == 0 || strcmp(item, "seq") == 0)
            s = ARMT_SCHEDULE_SEQUENTIAL;
        else if (strcmp(item, "full") == 0)
            s = ARMT_SCHEDULE_FULL;
        else {
            cli_error("--schedule: unknown schedule '%s' (diagonal, sequential, full)", item);
            rc = -1;
            break;
        }
        for (size_t i = 0; i < o->n_schedules; i++)
            if (o->schedules[i] == s) {
                cli_error("--schedule: '%s' is listed twice", item);
                rc = -1;
            }
        if (rc != 0) break;
        o->schedules[o->n_schedules++] = s;
    }
    if (rc == 0 && o->n_schedules == 0) {
        cli_error("--schedule: no schedule in '%s'", text);
        rc = -1;
    }
    free(copy);
    return rc;
}

/* Returns 0 to run, 1 to exit successfully (--help), -1 on a usage error. */
static int parse_args(int argc, char **argv, bench_opts *o) {
    enum {
        OPT_TOKENS = 0x2000,
        OPT_SCHEDULE,
        OPT_OUTPUTS,
        OPT_VERIFY,
        OPT_VERIFY_TOL,
        OPT_PRECISION,
        OPT_PROFILE,
        OPT_ALL_ROWS,
        OPT_BATCH,
        OPT_BATCH_LENGTHS,
        OPT_DECODE
    };
    static const struct option longopts[] = {
        CLI_COMMON_LONG_OPTIONS,
        CLI_PIPELINE_LONG_OPTIONS,
        {"tokens", required_argument, NULL, OPT_TOKENS},
        {"schedule", required_argument, NULL, OPT_SCHEDULE},
        {"outputs", required_argument, NULL, OPT_OUTPUTS},
        {"precision", required_argument, NULL, OPT_PRECISION},
        {"profile", no_argument, NULL, OPT_PROFILE},
        {"all-rows", no_argument, NULL, OPT_ALL_ROWS},
        {"batch", required_argument, NULL, OPT_BATCH},
        {"batch-lengths", required_argument, NULL, OPT_BATCH_LENGTHS},
        {"decode", required_argument, NULL, OPT_DECODE},
        {"repetitions", required_argument, NULL, 'r'},
        {"warmup", required_argument, NULL, 'w'},
        {"verify", no_argument, NULL, OPT_VERIFY},
        {"verify-tol", required_argument, NULL, OPT_VERIFY_TOL},
        {"format", required_argument, NULL, 'o'},
        {"quiet", no_argument, NULL, 'q'},
        {"verbose", no_argument, NULL, 'v'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    memset(o, 0, sizeof *o);
    cli_common_init(&o->common);
    o->schedules[0] = ARMT_SCHEDULE_DIAGONAL;
    o->schedules[1] = ARMT_SCHEDULE_SEQUENTIAL;
    o->schedules[2] = ARMT_SCHEDULE_FULL;
    o->n_schedules = 3;
    o->output = ARMT_OUTPUT_NONE;
    o->repetitions = 3;
    o->warmup = 1;
    o->verify_tol = 1e-4;
    o->format = FMT_MD;
    o->verbosity = CLI_NORMAL;
    o->precisions[0] = ARMT_PRECISION_FP32;
    o->n_precisions = 1;
    o->fp32_gemm[0] = ARMT_FP32_GEMM_AUTO;
    o->n_fp32_gemm = 1;

    int opt;
    opterr = 0; /* our own messages */
    while ((opt = getopt_long(argc, argv, ":r:w:o:qvh", longopts, NULL)) != -1) {
        if (opt == CLI_OPT_FP32_GEMM) {
            /* clbench takes a list: the whole benchmark runs once per entry, each on a runtime of its own */
            o->n_fp32_gemm = 0;
            o->fp32_given = 1;
            char *copy = strdup(optarg), *save = NULL;
            if (!copy) return -1;
            for (char *t = strtok_r(copy, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
                int v;
                if (cli_parse_choice("--fp32-gemm", t, fp32_gemm_names, (const int[]){0, 1, 2}, 3, &v) != 0) {
                    free(copy);
                    return -1;
                }
                if (o->n_fp32_gemm < 3) o->fp32_gemm[o->n_fp32_gemm++] = v;
            }
            free(copy);
            if (o->n_fp32_gemm == 0) {
                cli_error("--fp32-gemm: empty list");
                return -1;
            }
            continue;
        }
        int common = cli_common_option(&o->common, opt, optarg);
        if (common == 0) common = cli_pipeline_option(&o->pipe, opt, optarg);
        if (common < 0) return -1;
        if (common > 0) continue;
        switch (opt) {
        case OPT_TOKENS:
            free(o->tokens);
            if (cli_parse_i64_list("--tokens", optarg, 1, INT32_MAX, &o->tokens, &o->n_tokens) != 0)
                return -1;
            break;
        case OPT_SCHEDULE:
            if (parse_schedules(optarg, o) != 0) return -1;
            break;
        case OPT_PRECISION: {
            /* comma-separated list of fp32, bf16: the whole benchmark runs once per entry */
            o->n_precisions = 0;
            char *copy = strdup(optarg), *save = NULL;
            if (!copy) return -1;
            for (char *t = strtok_r(copy, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
                armt_precision pr;
                if (strcmp(t, "fp32") == 0)
                    pr = ARMT_PRECISION_FP32;
                else if (strcmp(t, "bf16") == 0)
                    pr = ARMT_PRECISION_BF16;
                else {
                    cli_error("--precision: '%s' is not one of fp32, bf16", t);
                    free(copy);
                    return -1;
                }
                if (o->n_precisions < 2) o->precisions[o->n_precisions++] = pr;
            }
            free(copy);
            if (o->n_precisions == 0) {
                cli_error("--precision: empty list");
                return -1;
            }
            break;
        }
        case OPT_OUTPUTS:
            if (strcmp(optarg, "none") == 0)
                o->output = ARMT_OUTPUT_NONE;
            else if (strcmp(optarg, "last") == 0)
                o->output = ARMT_OUTPUT_LOGITS_LAST;
            else if (strcmp(optarg, "logits") == 0 || strcmp(optarg, "all") == 0)
                o->output = ARMT_OUTPUT_LOGITS_ALL;
            else {
                cli_error("--outputs: '%s' is not one of none, last, logits (or all)", optarg);
                return -1;
            }
            break;
        case 'r':
            if (cli_parse_int("--repetitions", optarg, 1, 1000000, &o->repetitions) != 0) return -1;
            break;
        case 'w':
            if (cli_parse_int("--warmup", optarg, 0, 1000000, &o->warmup) != 0) return -1;
            break;
        case OPT_VERIFY: o->verify = 1; break;
        case OPT_PROFILE: o->profile = 1; break;
        case OPT_ALL_ROWS: o->all_rows = 1; break;
        case OPT_BATCH: {
            int64_t v;
            if (cli_parse_i64("--batch", optarg, 1, 65536, &v) != 0) return -1;
            o->batch = (int)v;
            break;
        }
        case OPT_BATCH_LENGTHS:
            free(o->batch_lengths);
            if (cli_parse_i64_list("--batch-lengths", optarg, 1, INT32_MAX, &o->batch_lengths,
                                   &o->n_batch_lengths) != 0)
                return -1;
            break;
        case OPT_DECODE: {
            int64_t v;
            if (cli_parse_i64("--decode", optarg, 1, 1 << 20, &v) != 0) return -1;
            o->decode = (int)v;
            break;
        }
        case OPT_VERIFY_TOL:
            if (cli_parse_double("--verify-tol", optarg, 0.0, 1e30, &o->verify_tol) != 0) return -1;
            break;
        case 'o': {
            static const char *const names[] = {"md", "csv", "json", "jsonl"};
            static const int values[] = {FMT_MD, FMT_CSV, FMT_JSON, FMT_JSONL};
            int v;
            if (cli_parse_choice("-o", optarg, names, values, 4, &v) != 0) return -1;
            o->format = (out_format)v;
            break;
        }
        default: {
            const int r = cli_standard_option(opt, argv, &o->verbosity, usage);
            if (r != 0) return r;
        }
        }
    }
    if (cli_no_operands(argc, argv) != 0) return -1;
    return cli_common_finish(&o->common, "tiny");
}

/* ======================================================================================================= */
/* FLOP count (docs/MATH.md §9)                                                                            */
/* ======================================================================================================= */

/* Parameters of the linear layers of one decoder layer: q, k, v, o and gate, up, down. */
static double linear_params_per_layer(const armt_config *c) {
    double d = c->hidden_size, q = (double)c->n_heads * c->head_dim, kv = (double)c->n_kv_heads * c->head_dim;
    return d * q + 2.0 * d * kv + q * d + 3.0 * d * c->intermediate_size;
}

/* One decoder layer over T rows: the linear layers and causal attention (QK^T and PV, half of T x T). */
static double layer_flop(const armt_config *c, double T) {
    return 2.0 * linear_params_per_layer(c) * T + 2.0 * 2.0 * T * T * c->n_heads * c->head_dim / 2.0;
}

/* ARMT memory of one cell of T rows (M memory rows); first: the layer's first segment (no read, no Vprev). */
static double memory_flop(const armt_config *c, double T, int first) {
    double d = c->hidden_size, dm = c->d_mem, dk = armt_config_d_key(c), M = c->num_mem_tokens;
    double f = 0.0;
    if (!first) /* read: W_mq, Q W_mem, Q z, divide and add */
        f += 2.0 * T * d * dm + 2.0 * T * dk * d + 2.0 * T * dk + 2.0 * T * d;
    /* write: W_mk, W_mv, W_mb, then the update of W_mem and z */
    f += 2.0 * M * d * dm + 2.0 * M * d * d + 2.0 * M * d;
    if (!first) f += 2.0 * M * dk * d + 2.0 * M * dk; /* Vprev = K W_mem / (K z) */
    f += 2.0 * M * dk * d + 2.0 * M * dk;             /* W_mem += K^T beta (V - Vprev), z += gamma K */
    return f;
}

static double lm_head_flop(const armt_config *c, armt_output o, double n) {
    double per_row = 2.0 * c->hidden_size * (double)c->vocab_size;
    if (o == ARMT_OUTPUT_LOGITS_ALL) return per_row * n;
    if (o == ARMT_OUTPUT_LOGITS_LAST) return per_row;
    return 0.0;
}

/* The last layer's work left out for the first `skip` rows of a cell (armt_forward_params.all_rows = 0):
 * the q and o projections, the MLP and those rows' causal attention. */
static double unread_flop(const armt_config *c, double skip) {
    double d = c->hidden_size, q = (double)c->n_heads * c->head_dim;
    return 2.0 * (2.0 * q * d + 3.0 * d * c->intermediate_size) * skip + 2.0 * 2.0 * skip * skip * q / 2.0;
}

/* Rows of a cell on the last layer that no output reads (the library's rule, lib/compute/forward.c
 * unread_rows). */
static double unread_rows(armt_output o, int all_rows, double tokens, int last) {
    if (all_rows) return 0.0;
    if (o == ARMT_OUTPUT_NONE) return tokens;
    if (o == ARMT_OUTPUT_LOGITS_LAST) return last ? tokens - 1.0 : tokens;
    return 0.0;
}

/* The work of one forward call of n tokens, starting from a reset memory state. */
static double forward_flop(const armt_config *c, armt_schedule s, uint64_t n, armt_output o, int all_rows) {
    double f = 0.0;
    if (s == ARMT_SCHEDULE_FULL) {
        f = (double)c->n_layers * layer_flop(c, (double)n);
        double skip = unread_rows(o, all_rows, (double)n, 1);
        if (skip < (double)n) f -= unread_flop(c, skip); /* (no output at all: every row, see the library) */
    } else {
        uint64_t L = (uint64_t)c->segment_size, S = cli_div_up(n, L);
        for (uint64_t seg = 0; seg < S; seg++) {
            double Ls = (double)(seg + 1 < S ? L : n - (S - 1) * L), rows = Ls + c->num_mem_tokens;
            f += (double)c->n_layers * (layer_flop(c, rows) + memory_flop(c, rows, seg == 0));
            double skip = unread_rows(o, all_rows, Ls, seg + 1 == S);
            if (skip < rows) f -= unread_flop(c, skip);
        }
    }
    return f + lm_head_flop(c, o, (double)n);
}

/* ======================================================================================================= */
/* Rows                                                                                                    */
/* ======================================================================================================= */

typedef struct bench_row {
    armt_schedule schedule;
    int64_t tokens;
    uint64_t segments;
    const char *status;  /* "ok", "does not fit", "error"; NULL: not run               */
    char *reason;        /* malloc'ed library message, or NULL                          */
    double first_call_s; /* NAN when unknown                                            */
    double median_s, min_s, max_s, mean_s, stddev_s;
    int repetitions; /* timed calls that completed                                  */
    double flop;
    armt_stats stats; /* of the last call; peak_device_bytes: max over all calls     */
    /* --verify */
    const char *verify_vs; /* "sequential", or NULL                                       */
    double verify_max_abs, verify_max_rel;
    const char *verify_result; /* "ok", "mismatch", "reference", "not compared", "skipped", "error" */
    char *verify_note;         /* malloc'ed, or NULL                                          */
    char *profile;             /* --profile: device time per kernel of the last call, or NULL  */
} bench_row;

static char *dup_message(const char *m) { return strdup(m && *m ? m : "(no message)"); }

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* Median, min, max, mean and sample standard deviation of t[0..n). Sorts t. */
static void summarize(bench_row *r, double *t, int n) {
    r->repetitions = n;
    if (n == 0) return;
    qsort(t, (size_t)n, sizeof *t, cmp_double);
    r->median_s = n % 2 ? t[n / 2] : 0.5 * (t[n / 2 - 1] + t[n / 2]);
    r->min_s = t[0];
    r->max_s = t[n - 1];
    double sum = 0.0;
    for (int i = 0; i < n; i++)
        sum += t[i];
    r->mean_s = sum / n;
    double ss = 0.0;
    for (int i = 0; i < n; i++)
        ss += (t[i] - r->mean_s) * (t[i] - r->mean_s);
    r->stddev_s = n > 1 ? sqrt(ss / (n - 1)) : 0.0;
}

/* ======================================================================================================= */
/* Progress on stderr                                                                                      */
/* ======================================================================================================= */

/* At most one update per second on a terminal (rewritten in place with \r), one line per 5 s otherwise,
 * and nothing for calls shorter than a second. */
typedef struct progress_state {
    int enabled;
    int tty;
    char label[96];
    double start, last;
    int printed; /* characters of the line now on screen (tty), 0: none */
} progress_state;

static int progress_cb(uint64_t done, uint64_t total, void *user_data) {
    progress_state *p = user_data;
    if (!p->enabled) return 0;
    double now = cli_now();
    if (now - p->start < 1.0 || now - p->last < (p->tty ? 1.0 : 5.0)) return 0;
    p->last = now;
    double pct = total ? 100.0 * (double)done / (double)total : 0.0;
    if (p->tty) {
        int w = fprintf(stderr, "\r%s: %s: step %" PRIu64 "/%" PRIu64 " (%.0f%%), %.0f s   ", cli_progname(),
                        p->label, done, total, pct, now - p->start);
        if (w > p->printed) p->printed = w;
    } else {
        fprintf(stderr, "%s: %s: step %" PRIu64 "/%" PRIu64 " (%.0f%%), %.0f s\n", cli_progname(), p->label,
                done, total, pct, now - p->start);
    }
    fflush(stderr);
    return 0;
}

static void progress_begin(progress_state *p, const char *fmt, ...) CLI_PRINTF(2, 3);
static void progress_begin(progress_state *p, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(p->label, sizeof p->label, fmt, ap);
    va_end(ap);
    p->start = p->last = cli_now();
    p->printed = 0;
}

static void progress_end(progress_state *p) {
    if (p->printed) fprintf(stderr, "\r%*s\r", p->printed, "");
    p->printed = 0;
}

/* ======================================================================================================= */
/* Running                                                                                                 */
/* ======================================================================================================= */

typedef struct bench {
    bench_opts *o;
    armt_model *model;
    const armt_config *cfg;
    const int32_t *ids; /* random ids, as many as the largest token count */
    bench_row *rows;    /* [schedule index][token index] */
    progress_state progress;
    int failed; /* a row errored or --verify mismatched */
} bench;

static bench_row *row_at(bench *b, size_t si, size_t ti) { return &b->rows[si * b->o->n_tokens + ti]; }

/* Frees the rows (schedules x token counts) and what they hold; b->rows is NULL after. */
static void rows_free(bench *b) {
    if (b->rows)
        for (size_t i = 0; i < b->o->n_schedules * b->o->n_tokens; i++) {
            free(b->rows[i].reason);
            free(b->rows[i].verify_note);
            free(b->rows[i].profile);
        }
    free(b->rows);
    b->rows = NULL;
}

static int is_armt(armt_schedule s) { return s != ARMT_SCHEDULE_FULL; }

/* Records a failed library call on the row: "does not fit" for device memory, "error" otherwise. */
static void row_fail(bench *b, bench_row *r, armt_status st, const char *message) {
    free(r->reason);
    if (st == ARMT_STATUS_OUT_OF_DEVICE_MEMORY) {
        r->status = "does not fit";
        r->reason = dup_message(message);
        if (b->o->verbosity > CLI_QUIET)
            cli_error("%s, %" PRId64 " tokens: does not fit the device: %s", armt_schedule_name(r->schedule),
                      r->tokens, r->reason);
    } else {
        size_t len = strlen(armt_status_str(st)) + strlen(message ? message : "") + 4;
        r->status = "error";
        r->reason = malloc(len);
        if (r->reason) snprintf(r->reason, len, "%s: %s", armt_status_str(st), message ? message : "");
        b->failed = 1;
        cli_error("%s, %" PRId64 " tokens: %s", armt_schedule_name(r->schedule), r->tokens,
                  r->reason ? r->reason : armt_status_str(st));
    }
}

/* Warm-up and timed calls of one (schedule, tokens) row on ctx. */
static void run_row(bench *b, armt_ctx *ctx, bench_row *r) {
    const bench_opts *o = b->o;
    size_t n = (size_t)r->tokens;
    size_t out_count = armt_output_count(b->model, o->output, n);
    float *out = NULL;
    double *times = calloc((size_t)o->repetitions, sizeof *times);
    if (out_count > 0) out = malloc(out_count * sizeof *out);
    if (!times || (out_count > 0 && !out)) {
        char bytes[32], msg[160];
        snprintf(msg, sizeof msg, "host memory for the outputs not available (%s)",
                 cli_format_bytes((uint64_t)out_count * sizeof(float), bytes, sizeof bytes));
        row_fail(b, r, ARMT_STATUS_OUT_OF_HOST_MEMORY, msg);
        goto done;
    }
    armt_forward_params fp = armt_forward_default_params();
    fp.schedule = r->schedule;
    fp.output = o->output;
    fp.out = out;
    fp.out_count = out_count;
    fp.progress = progress_cb;
    fp.progress_user_data = &b->progress;
    fp.all_rows = o->all_rows;

    /* --profile: the timed calls record no events (an event per launch costs host time: it made the
     * sequential schedule's 55,000 launches 15% slower on an H200); one more call after them is profiled */
    int calls = o->warmup + o->repetitions + (o->profile ? 1 : 0), timed = 0;
    for (int k = 0; k < calls; k++) {
        const int profile_call = o->profile && k == calls - 1;
        fp.no_profile = !profile_call;
        armt_status st = ARMT_OK;
        /* every ARMT call starts from an empty memory, so all calls do the same work */
        if (is_armt(r->schedule)) st = armt_ctx_reset(ctx);
        if (st == ARMT_OK) {
            if (k < o->warmup)
                progress_begin(&b->progress, "%s, %" PRId64 " tokens, warm-up %d/%d",
                               armt_schedule_name(r->schedule), r->tokens, k + 1, o->warmup);
            else if (profile_call)
                progress_begin(&b->progress, "%s, %" PRId64 " tokens, profiled call",
                               armt_schedule_name(r->schedule), r->tokens);
            else
                progress_begin(&b->progress, "%s, %" PRId64 " tokens, repetition %d/%d",
                               armt_schedule_name(r->schedule), r->tokens, k - o->warmup + 1, o->repetitions);
            double t0 = cli_now();
            st = armt_forward(ctx, b->ids, n, &fp);
            double t = cli_now() - t0;
            progress_end(&b->progress);
            if (st == ARMT_OK) {
                if (k == 0) r->first_call_s = t;
                if (k >= o->warmup && !profile_call) times[timed++] = t;
            }
        }
        if (st != ARMT_OK) {
            row_fail(b, r, st, armt_ctx_last_error(ctx));
            goto done;
        }
        armt_stats s;
        if (!profile_call && armt_ctx_stats(ctx, &s) == ARMT_OK) {
            uint64_t peak = r->stats.peak_device_bytes > s.peak_device_bytes ? r->stats.peak_device_bytes
                                                                             : s.peak_device_bytes;
            r->stats = s;
            r->stats.peak_device_bytes = peak;
        }
        if (profile_call) {
            const char *names[64];
            double secs[64], total = 0;
            size_t np = armt_ctx_profile(ctx, names, secs, 64);
            if (np > 64) np = 64;
            for (size_t i = 0; i < np; i++)
                total += secs[i];
            /* largest first */
            for (size_t i = 0; i < np; i++)
                for (size_t j = i + 1; j < np; j++)
                    if (secs[j] > secs[i]) {
                        double t = secs[i];
                        secs[i] = secs[j];
                        secs[j] = t;
                        const char *nm = names[i];
                        names[i] = names[j];
                        names[j] = nm;
                    }
            char buf[4096];
            size_t len = (size_t)snprintf(buf, sizeof buf, "device total %.4g s:", total);
            for (size_t i = 0; i < np && len < sizeof buf; i++)
                len +=
                    (size_t)snprintf(buf + len, sizeof buf - len, " %s %.4g s (%.1f%%)%s", names[i], secs[i],
                                     total > 0 ? 100.0 * secs[i] / total : 0.0, i + 1 < np ? "," : "");
            /* the GEMMs by what they multiply, with their rate */
            double gsec[64], gflop[64];
            size_t ng = armt_ctx_profile_gemm(ctx, names, gsec, gflop, 64);
            if (ng > 64) ng = 64;
            if (ng > 0 && len < sizeof buf)
                len += (size_t)snprintf(buf + len, sizeof buf - len, "; GEMMs by weight:");
            for (size_t i = 0; i < ng && len < sizeof buf; i++)
                len += (size_t)snprintf(buf + len, sizeof buf - len, " %s %.4g s (%.0f TFLOP/s)%s", names[i],
                                        gsec[i], gsec[i] > 0 ? 1e-12 * gflop[i] / gsec[i] : 0.0,
                                        i + 1 < ng ? "," : "");
            free(r->profile);
            r->profile = strdup(buf);
        }
    }
    summarize(r, times, timed);
    r->status = "ok";
    if (o->verbosity > CLI_QUIET)
        fprintf(stderr, "%s: %-10s %8" PRId64 " tokens: median %.4g s, first call %.4g s\n", cli_progname(),
                armt_schedule_name(r->schedule), r->tokens, r->median_s, r->first_call_s);
done:
    free(out);
    free(times);
}

static void run_schedule(bench *b, size_t si) {
    armt_ctx *ctx = NULL;
    armt_status st = armt_ctx_create(b->model, NULL, &ctx);
    if (st != ARMT_OK) {
        const char *msg = armt_last_error();
        for (size_t ti = 0; ti < b->o->n_tokens; ti++)
            row_fail(b, row_at(b, si, ti), st, msg);
        return;
    }
    for (size_t ti = 0; ti < b->o->n_tokens; ti++)
        run_row(b, ctx, row_at(b, si, ti));
    armt_ctx_free(ctx);
}

/* ======================================================================================================= */
/* --verify                                                                                                */
/* ======================================================================================================= */

static void set_verify(bench_row *r, const char *result, const char *note) {
    r->verify_result = result;
    free(r->verify_note);
    r->verify_note = note ? strdup(note) : NULL;
}

/* One call with hidden-state output from an empty memory. */
static armt_status hidden_call(bench *b, armt_ctx *ctx, armt_schedule s, size_t n, float *out) {
    armt_status st = armt_ctx_reset(ctx);
    if (st != ARMT_OK) return st;
    armt_forward_params fp = armt_forward_default_params();
    fp.schedule = s;
    fp.output = ARMT_OUTPUT_HIDDEN;
    fp.out = out;
    fp.out_count = armt_output_count(b->model, ARMT_OUTPUT_HIDDEN, n);
    fp.progress = progress_cb;
    fp.progress_user_data = &b->progress;
    progress_begin(&b->progress, "verify %s, %zu tokens", armt_schedule_name(s), n);
    st = armt_forward(ctx, b->ids, n, &fp);
    progress_end(&b->progress);
    return st;
}

static void verify_tokens(bench *b, size_t ti, armt_ctx *seq_ctx, armt_ctx *diag_ctx, int seq_si,
                          int diag_si) {
    size_t n = (size_t)b->o->tokens[ti];
    bench_row *seq_row = seq_si >= 0 ? row_at(b, (size_t)seq_si, ti) : NULL;
    bench_row *diag_row = diag_si >= 0 ? row_at(b, (size_t)diag_si, ti) : NULL;
    if (seq_row) set_verify(seq_row, "reference", NULL);
    if (!diag_row) return; /* nothing to compare against the reference */
    diag_row->verify_vs = "sequential";
    size_t count = armt_output_count(b->model, ARMT_OUTPUT_HIDDEN, n);
    float *ref = malloc(count * sizeof *ref), *got = malloc(count * sizeof *got);
    char note[512];
    if (!ref || !got) {
        set_verify(diag_row, "error", "host memory for two copies of the hidden states not available");
        b->failed = 1;
        goto done;
    }
    armt_status st = hidden_call(b, seq_ctx, ARMT_SCHEDULE_SEQUENTIAL, n, ref);
    if (st != ARMT_OK) {
        snprintf(note, sizeof note, "sequential: %s: %s", armt_status_str(st), armt_ctx_last_error(seq_ctx));
        set_verify(diag_row, st == ARMT_STATUS_OUT_OF_DEVICE_MEMORY ? "skipped" : "error", note);
        if (st != ARMT_STATUS_OUT_OF_DEVICE_MEMORY) b->failed = 1;
        goto done;
    }
    st = hidden_call(b, diag_ctx, ARMT_SCHEDULE_DIAGONAL, n, got);
    if (st != ARMT_OK) {
        snprintf(note, sizeof note, "diagonal: %s: %s", armt_status_str(st), armt_ctx_last_error(diag_ctx));
        set_verify(diag_row, st == ARMT_STATUS_OUT_OF_DEVICE_MEMORY ? "skipped" : "error", note);
        if (st != ARMT_STATUS_OUT_OF_DEVICE_MEMORY) b->failed = 1;
        goto done;
    }
    double max_abs = 0.0, max_ref = 0.0;
    size_t nonfinite = 0;
    for (size_t i = 0; i < count; i++) {
        double x = got[i], y = ref[i];
        if (!isfinite(x) || !isfinite(y)) {
            nonfinite++;
            continue;
        }
        double diff = fabs(x - y);
        if (diff > max_abs) max_abs = diff;
        if (fabs(y) > max_ref) max_ref = fabs(y);
    }
    diag_row->verify_max_abs = max_abs;
    diag_row->verify_max_rel = max_ref > 0 ? max_abs / max_ref : (max_abs > 0 ? INFINITY : 0.0);
    if (nonfinite > 0) {
        snprintf(note, sizeof note, "%zu of %zu values are not finite", nonfinite, count);
        set_verify(diag_row, "mismatch", note);
        b->failed = 1;
    } else if (diag_row->verify_max_rel > b->o->verify_tol) {
        snprintf(note, sizeof note, "max relative difference %.3g above the tolerance %.3g",
                 diag_row->verify_max_rel, b->o->verify_tol);
        set_verify(diag_row, "mismatch", note);
        b->failed = 1;
    } else {
        set_verify(diag_row, "ok", NULL);
    }
    if (b->o->verbosity > CLI_QUIET)
        fprintf(stderr, "%s: verify %8zu tokens: diagonal vs sequential max abs %.3g, max rel %.3g: %s\n",
                cli_progname(), n, max_abs, diag_row->verify_max_rel, diag_row->verify_result);
done:
    free(ref);
    free(got);
}

static void run_verify(bench *b) {
    int seq_si = -1, diag_si = -1;
    for (size_t si = 0; si < b->o->n_schedules; si++) {
        if (b->o->schedules[si] == ARMT_SCHEDULE_SEQUENTIAL) seq_si = (int)si;
        if (b->o->schedules[si] == ARMT_SCHEDULE_DIAGONAL) diag_si = (int)si;
        if (b->o->schedules[si] == ARMT_SCHEDULE_FULL)
            for (size_t ti = 0; ti < b->o->n_tokens; ti++)
                set_verify(row_at(b, si, ti), "not compared", "full attention is another model (no memory)");
    }
    if (diag_si < 0) return; /* the reference alone: nothing to compare */
    /* The reference runs even when sequential is not a requested schedule. */
    armt_ctx *seq_ctx = NULL, *diag_ctx = NULL;
    armt_status st = armt_ctx_create(b->model, NULL, &seq_ctx);
    if (st == ARMT_OK) st = armt_ctx_create(b->model, NULL, &diag_ctx);
    if (st != ARMT_OK) {
        char note[512];
        snprintf(note, sizeof note, "creating the contexts: %s: %s", armt_status_str(st), armt_last_error());
        for (size_t ti = 0; ti < b->o->n_tokens; ti++)
            set_verify(row_at(b, (size_t)diag_si, ti), "error", note);
        b->failed = 1;
    } else {
        for (size_t ti = 0; ti < b->o->n_tokens; ti++) {
            bench_row *r = row_at(b, (size_t)diag_si, ti);
            if (r->status && strcmp(r->status, "does not fit") == 0) {
                r->verify_vs = "sequential";
                set_verify(r, "skipped", "the diagonal run does not fit the device");
                continue;
            }
            verify_tokens(b, ti, seq_ctx, diag_ctx, seq_si, diag_si);
        }
    }
    armt_ctx_free(diag_ctx);
    armt_ctx_free(seq_ctx);
}

/* ======================================================================================================= */
/* Reporting                                                                                               */
/* ======================================================================================================= */

/* What the csv/json/jsonl schema is made of: named fields, the same for every format. */
typedef enum field_type { F_STR, F_INT, F_NUM } field_type;
typedef struct field {
    const char *key;
    field_type type;
    const char *s; /* F_STR; NULL is written as null / empty */
    int64_t i;     /* F_INT */
    double d;      /* F_NUM; NaN is written as null / empty */
} field;

#define MAX_FIELDS 40

typedef struct run_info {
    armt_device_info dev;
    char model[600];
    char command[2048];
    char date[32];
    double wmv_std;
    uint64_t seed;
} run_info;

static field fstr(const char *key, const char *s) { return (field){key, F_STR, s, 0, 0.0}; }
static field fint(const char *key, int64_t i) { return (field){key, F_INT, NULL, i, 0.0}; }
static field fnum(const char *key, double d) { return (field){key, F_NUM, NULL, 0, d}; }

static size_t header_fields(const bench *b, const run_info *ri, field *f) {
    const armt_config *c = b->cfg;
    size_t n = 0;
    f[n++] = fint("format_version", CLBENCH_FORMAT_VERSION);
    f[n++] = fstr("date", ri->date);
    f[n++] = fstr("command", ri->command);
    f[n++] = fstr("device", ri->dev.name);
    f[n++] = fstr("device_type", cli_device_type(&ri->dev));
    f[n++] = fstr("vendor", ri->dev.vendor);
    f[n++] = fstr("driver", ri->dev.driver_version);
    f[n++] = fstr("opencl_version", ri->dev.device_version);
    f[n++] = fstr("platform", ri->dev.platform_name);
    f[n++] = fstr("libarmt_version", armt_version_string());
    f[n++] = fstr("build", armt_build_info());
    f[n++] = fstr("model", ri->model);
    f[n++] = fint("layers", c->n_layers);
    f[n++] = fint("hidden", c->hidden_size);
    f[n++] = fint("heads", c->n_heads);
    f[n++] = fint("kv_heads", c->n_kv_heads);
    f[n++] = fint("head_dim", c->head_dim);
    f[n++] = fint("ffn", c->intermediate_size);
    f[n++] = fint("vocab", c->vocab_size);
    f[n++] = fint("segment", c->segment_size);
    f[n++] = fint("mem", c->num_mem_tokens);
    f[n++] = fint("d_key", armt_config_d_key(c));
    f[n++] = fstr("precision", armt_precision_name(b->o->common.precision));
    f[n++] = fstr("outputs", armt_output_name(b->o->output));
    f[n++] = fint("all_rows", b->o->all_rows);
    f[n++] = fint("warmup", b->o->warmup);
    f[n++] = fint("seed", (int64_t)ri->seed);
    f[n++] = fnum("wmv_std", ri->wmv_std);
    f[n++] = fstr("fp32_gemm", fp32_gemm_names[b->o->common.fp32_gemm]);
    return n;
}

/* Whether --verify produced numbers for the row. */
static int verify_compared(const bench_row *r) {
    return r->verify_result &&
           (strcmp(r->verify_result, "ok") == 0 || strcmp(r->verify_result, "mismatch") == 0);
}

static size_t row_fields(const bench_row *r, field *f) {
    int ok = r->status && strcmp(r->status, "ok") == 0;
    double med = ok ? r->median_s : NAN;
    size_t n = 0;
    f[n++] = fstr("schedule", armt_schedule_name(r->schedule));
    f[n++] = fint("tokens", r->tokens);
    f[n++] = fint("segments", (int64_t)r->segments);
    f[n++] = fstr("status", r->status ? r->status : "error");
    f[n++] = fstr("reason", r->reason);
    f[n++] = fnum("first_call_s", r->first_call_s);
    f[n++] = fnum("median_s", med);
    f[n++] = fnum("min_s", ok ? r->min_s : NAN);
    f[n++] = fnum("max_s", ok ? r->max_s : NAN);
    f[n++] = fnum("mean_s", ok ? r->mean_s : NAN);
    f[n++] = fnum("stddev_s", ok ? r->stddev_s : NAN);
    f[n++] = fint("repetitions", r->repetitions);
    f[n++] = fnum("tokens_per_s", ok && med > 0 ? (double)r->tokens / med : NAN);
    f[n++] = fnum("flop", r->flop);
    f[n++] = fnum("tflops", ok && med > 0 ? r->flop / med / 1e12 : NAN);
    f[n++] = fint("steps", ok ? (int64_t)r->stats.steps : -1);
    f[n++] = fint("cells", ok ? (int64_t)r->stats.cells : -1);
    f[n++] = fint("kernel_launches", ok ? (int64_t)r->stats.kernel_launches : -1);
    f[n++] = fint("gemm_calls", ok ? (int64_t)r->stats.gemm_calls : -1);
    f[n++] = fint("peak_device_bytes", ok ? (int64_t)r->stats.peak_device_bytes : -1);
    f[n++] = fstr("verify_vs", r->verify_vs);
    f[n++] = fnum("verify_max_abs", verify_compared(r) ? r->verify_max_abs : NAN);
    f[n++] = fnum("verify_max_rel", verify_compared(r) ? r->verify_max_rel : NAN);
    f[n++] = fstr("verify_result", r->verify_result);
    f[n++] = fstr("verify_note", r->verify_note);
    return n;
}

static void json_string(FILE *out, const char *s) {
    fputc('"', out);
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        switch (*p) {
        case '"': fputs("\\\"", out); break;
        case '\\': fputs("\\\\", out); break;
        case '\n': fputs("\\n", out); break;
        case '\r': fputs("\\r", out); break;
        case '\t': fputs("\\t", out); break;
        default:
            if (*p < 0x20)
                fprintf(out, "\\u%04x", *p);
            else
                fputc(*p, out);
        }
    }
    fputc('"', out);
}

static void json_fields(FILE *out, const field *f, size_t n, const char *indent, const char *sep) {
    for (size_t i = 0; i < n; i++) {
        fprintf(out, "%s%s", i ? sep : "", indent);
        json_string(out, f[i].key);
        fputs(": ", out);
        if (f[i].type == F_STR) {
            if (f[i].s)
                json_string(out, f[i].s);
            else
                fputs("null", out);
        } else if (f[i].type == F_INT) {
            fprintf(out, "%" PRId64, f[i].i);
        } else if (isfinite(f[i].d)) {
            fprintf(out, "%.9g", f[i].d);
        } else {
            fputs("null", out);
        }
    }
}

static void csv_value(FILE *out, const field *f) {
    if (f->type == F_INT) {
        fprintf(out, "%" PRId64, f->i);
    } else if (f->type == F_NUM) {
        if (isfinite(f->d)) fprintf(out, "%.9g", f->d);
    } else if (f->s) {
        if (strpbrk(f->s, ",\"\n\r")) {
            fputc('"', out);
            for (const char *p = f->s; *p; p++) {
                if (*p == '"') fputc('"', out);
                fputc(*p, out);
            }
            fputc('"', out);
        } else {
            fputs(f->s, out);
        }
    }
}

/* Rows in report order: by token count, then schedule in the order given (k in [0, schedules x tokens)). */
static const bench_row *report_row(const bench *b, size_t k) {
    size_t ns = b->o->n_schedules;
    return &b->rows[(k % ns) * b->o->n_tokens + k / ns];
}

static void write_machine(const bench *b, const run_info *ri, FILE *out) {
    field hf[MAX_FIELDS], rf[MAX_FIELDS];
    size_t nh = header_fields(b, ri, hf), nr = 0;
    size_t n_rows = b->o->n_schedules * b->o->n_tokens;
    if (b->o->format == FMT_JSON) {
        fputs("{\n", out);
        json_fields(out, hf, nh, "  ", ",\n");
        fputs(",\n  \"rows\": [", out);
        for (size_t i = 0; i < n_rows; i++) {
            nr = row_fields(report_row(b, i), rf);
            fprintf(out, "%s\n    {", i ? "," : "");
            json_fields(out, rf, nr, "", ", ");
            fputs("}", out);
        }
        fputs("\n  ]\n}\n", out);
    } else if (b->o->format == FMT_JSONL) {
        for (size_t i = 0; i < n_rows; i++) {
            nr = row_fields(report_row(b, i), rf);
            fputc('{', out);
            json_fields(out, hf, nh, "", ", ");
            fputs(", ", out);
            json_fields(out, rf, nr, "", ", ");
            fputs("}\n", out);
        }
    } else { /* csv: the header fields repeated on every row */
        nr = row_fields(report_row(b, 0), rf);
        for (size_t i = 0; i < nh + nr; i++)
            fprintf(out, "%s%s", i ? "," : "", i < nh ? hf[i].key : rf[i - nh].key);
        fputc('\n', out);
        for (size_t r = 0; r < n_rows; r++) {
            nr = row_fields(report_row(b, r), rf);
            for (size_t i = 0; i < nh + nr; i++) {
                if (i) fputc(',', out);
                csv_value(out, i < nh ? &hf[i] : &rf[i - nh]);
            }
            fputc('\n', out);
        }
    }
}

/* A compact number for the Markdown table: "-" for missing values. */
static const char *md_num(double v, const char *fmt, char *buf, size_t len) {
    if (!isfinite(v)) return "-";
    snprintf(buf, len, fmt, v);
    return buf;
}

static const bench_row *find_row(const bench *b, armt_schedule s, size_t ti) {
    for (size_t si = 0; si < b->o->n_schedules; si++)
        if (b->o->schedules[si] == s) {
            const bench_row *r = &b->rows[si * b->o->n_tokens + ti];
            return r->status && strcmp(r->status, "ok") == 0 ? r : NULL;
        }
    return NULL;
}

static void write_md(const bench *b, const run_info *ri, FILE *out) {
    const armt_config *c = b->cfg;
    const bench_opts *o = b->o;
    char b1[32], b2[32], b3[32], b4[32], b5[32], b6[32], b7[32], b8[32];
    fprintf(out, "## clbench: %s\n\n", ri->model);
    fprintf(out, "- device: %s (%s, %s), driver %s%s%s; platform %s\n", ri->dev.name, ri->dev.vendor,
            cli_device_type(&ri->dev), ri->dev.driver_version, ri->dev.device_version[0] ? ", " : "",
            ri->dev.device_version, ri->dev.platform_name);
    fprintf(out,
            "- model: layers %d, hidden %d, heads %d (kv %d, head dim %d), ffn %d, vocab %d; ARMT segment %d "
            "+ %d "
            "memory tokens, d_key %d; %s weights%s%s\n",
            c->n_layers, c->hidden_size, c->n_heads, c->n_kv_heads, c->head_dim, c->intermediate_size,
            c->vocab_size, c->segment_size, c->num_mem_tokens, armt_config_d_key(c),
            armt_precision_name(o->common.precision), o->fp32_given ? ", fp32 GEMMs " : "",
            o->fp32_given ? fp32_gemm_names[o->common.fp32_gemm] : "");
    fprintf(out, "- %s; outputs %s%s; %d repetition%s after %d warm-up call%s; %s\n", armt_build_info(),
            armt_output_name(o->output),
            o->all_rows ? " (every row of the last layer computed: --all-rows)"
            : o->output == ARMT_OUTPUT_NONE || o->output == ARMT_OUTPUT_LOGITS_LAST
                ? " (the last layer only for the rows read: memory tokens, last token)"
                : "",
            o->repetitions, o->repetitions == 1 ? "" : "s", o->warmup, o->warmup == 1 ? "" : "s", ri->date);
    fprintf(
        out,
        "- times: wall time of armt_forward (queue finished; ids upload and output copy-out included, model "
        "load and kernel builds excluded); first call = the row's first call (a warm-up call unless -w 0), "
        "includes "
        "CLBlast's compile when it is the schedule's first\n");
    fprintf(out, "- command: `%s`\n\n", ri->command);

    fprintf(out,
            "| schedule | tokens | segments | status | first call s | median s | min s | max s | stddev s "
            "| tokens/s | TFLOP/s | steps | cells | launches | GEMMs | peak device |\n");
    fprintf(out, "|---|---:|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n");
    size_t n_rows = o->n_schedules * o->n_tokens;
    int notes = 0;
    for (size_t i = 0; i < n_rows; i++) {
        const bench_row *r = report_row(b, i);
        int ok = r->status && strcmp(r->status, "ok") == 0;
        notes += r->reason != NULL || r->verify_note != NULL;
        fprintf(out, "| %s | %" PRId64 " | %" PRIu64 " | %s | %s |", armt_schedule_name(r->schedule),
                r->tokens, r->segments, r->status ? r->status : "error",
                md_num(r->first_call_s, "%.4g", b1, sizeof b1));
        if (!ok) {
            fprintf(out, " - | - | - | - | - | - | - | - | - | - | - |\n");
            continue;
        }
        fprintf(out,
                " %s | %s | %s | %s | %s | %s | %" PRIu64 " | %" PRIu64 " | %" PRIu64 " | %" PRIu64
                " | %s |\n",
                md_num(r->median_s, "%.4g", b2, sizeof b2), md_num(r->min_s, "%.4g", b3, sizeof b3),
                md_num(r->max_s, "%.4g", b4, sizeof b4), md_num(r->stddev_s, "%.2g", b5, sizeof b5),
                md_num(r->median_s > 0 ? (double)r->tokens / r->median_s : NAN, "%.0f", b6, sizeof b6),
                md_num(r->median_s > 0 ? r->flop / r->median_s / 1e12 : NAN, "%.3g", b7, sizeof b7),
                r->stats.steps, r->stats.cells, r->stats.kernel_launches, r->stats.gemm_calls,
                cli_format_bytes(r->stats.peak_device_bytes, b8, sizeof b8));
    }

    /* Speedups: ratios of median times measured in this run. */
    int have_diag = 0, have_other = 0;
    for (size_t si = 0; si < o->n_schedules; si++) {
        have_diag |= o->schedules[si] == ARMT_SCHEDULE_DIAGONAL;
        have_other |= o->schedules[si] != ARMT_SCHEDULE_DIAGONAL;
    }
    if (have_diag && have_other) {
        fprintf(out, "\nSpeedup of the diagonal schedule (ratio of median times):\n\n");
        fprintf(out, "| tokens | diagonal vs sequential | diagonal vs full attention |\n|---:|---:|---:|\n");
        for (size_t ti = 0; ti < o->n_tokens; ti++) {
            const bench_row *d = find_row(b, ARMT_SCHEDULE_DIAGONAL, ti);
            const bench_row *s = find_row(b, ARMT_SCHEDULE_SEQUENTIAL, ti);
            const bench_row *f = find_row(b, ARMT_SCHEDULE_FULL, ti);
            double rs = d && s && d->median_s > 0 ? s->median_s / d->median_s : NAN;
            double rf = d && f && d->median_s > 0 ? f->median_s / d->median_s : NAN;
            fprintf(out, "| %" PRId64 " | %s%s | %s%s |\n", o->tokens[ti], md_num(rs, "%.2f", b1, sizeof b1),
                    isfinite(rs) ? "x" : "", md_num(rf, "%.2f", b2, sizeof b2), isfinite(rf) ? "x" : "");
        }
    }

    if (o->verify) {
        fprintf(out,
                "\nVerification (final hidden states; relative = max |a-b| / max |reference|, tolerance "
                "%.3g):\n\n",
                o->verify_tol);
        fprintf(out,
                "| schedule | tokens | vs | max abs | max rel | result |\n|---|---:|---|---:|---:|---|\n");
        for (size_t i = 0; i < n_rows; i++) {
            const bench_row *r = report_row(b, i);
            if (!r->verify_result) continue;
            int cmp = verify_compared(r);
            fprintf(out, "| %s | %" PRId64 " | %s | %s | %s | %s |\n", armt_schedule_name(r->schedule),
                    r->tokens, r->verify_vs ? r->verify_vs : "-",
                    cmp ? md_num(r->verify_max_abs, "%.3g", b1, sizeof b1) : "-",
                    cmp ? md_num(r->verify_max_rel, "%.3g", b2, sizeof b2) : "-", r->verify_result);
        }
    }

    if (o->profile) {
        fprintf(out, "\nProfile (device time per kernel, then the GEMMs by weight with their rate; one extra "
                     "call per row after the timed ones, with OpenCL events):\n\n");
        for (size_t i = 0; i < n_rows; i++) {
            const bench_row *r = report_row(b, i);
            if (r->profile)
                fprintf(out, "- %s, %" PRId64 " tokens: %s\n", armt_schedule_name(r->schedule), r->tokens,
                        r->profile);
        }
    }

    if (notes) {
        fprintf(out, "\nNotes:\n\n");
        for (size_t i = 0; i < n_rows; i++) {
            const bench_row *r = report_row(b, i);
            if (r->reason)
                fprintf(out, "- %s, %" PRId64 " tokens: %s: %s\n", armt_schedule_name(r->schedule), r->tokens,
                        r->status, r->reason);
            if (r->verify_note)
                fprintf(out, "- %s, %" PRId64 " tokens, verify %s: %s\n", armt_schedule_name(r->schedule),
                        r->tokens, r->verify_result, r->verify_note);
        }
    }
}

/* The command line, with arguments quoted where a shell would need it. */
static void join_command(int argc, char **argv, char *buf, size_t len) {
    size_t used = 0;
    buf[0] = '\0';
    for (int i = 0; i < argc && used + 1 < len; i++) {
        const char *a = i == 0 ? cli_progname() : argv[i];
        int quote = *a == '\0' || strpbrk(a, " \t\"'$`\\|&;<>()*?[]{}!") != NULL;
        int w =
            snprintf(buf + used, len - used, "%s%s%s%s", i ? " " : "", quote ? "'" : "", a, quote ? "'" : "");
        if (w < 0) break;
        used += (size_t)w < len - used ? (size_t)w : len - used - 1;
    }
}

/* ======================================================================================================= */
/* main                                                                                                    */
/* ======================================================================================================= */

/* --devices / --mpi: the rows on a layer pipeline (bench/clbench_pipeline.c). */
static int clbench_pipeline_main(bench_opts *o, int *argc, char ***argv) {
    if (cli_pipeline_mpi_init(&o->pipe, argc, argv) != 0) {
        free(o->tokens);
        return 1;
    }
    if (o->pipe.rank != 0 && o->verbosity == CLI_NORMAL) cli_log_install(CLI_QUIET); /* rank 0 speaks */
    clbench_pipeline_opts po = {.common = &o->common,
                                .pipe = &o->pipe,
                                .tokens = o->tokens,
                                .n_tokens = o->n_tokens, /* 0: 4 and 16 segments */
                                .schedules = o->schedules,
                                .n_schedules = o->n_schedules,
                                .precisions = o->precisions,
                                .n_precisions = o->n_precisions,
                                .output = o->output,
                                .repetitions = o->repetitions,
                                .warmup = o->warmup,
                                .verbosity = o->pipe.rank == 0 ? o->verbosity : CLI_QUIET};
    int rc = clbench_pipeline(&po);
    cli_pipeline_mpi_finalize(&o->pipe);
    free(o->tokens);
    return rc;
}

int main(int argc, char **argv) {
    cli_init(argv[0]);
    bench_opts o;
    int pr = parse_args(argc, argv, &o);
    if (pr != 0) {
        free(o.tokens);
        return pr > 0 ? 0 : 2;
    }
    cli_log_install(o.verbosity);
    if (o.common.list_devices) {
        free(o.tokens);
        return cli_list_devices(stdout) == 0 ? 0 : 1;
    }
    if (cli_pipeline_wanted(&o.pipe)) return clbench_pipeline_main(&o, &argc, &argv);

    int rc = 1;
    armt_runtime *rt = NULL;
    armt_model *model = NULL;
    int32_t *ids = NULL;
    bench b;
    memset(&b, 0, sizeof b);
    b.o = &o;
    run_info ri;
    memset(&ri, 0, sizeof ri);

    if (o.verbosity > CLI_QUIET)
        fprintf(stderr, "%s: opening the device and compiling the kernels...\n", cli_progname());
    if (o.profile) setenv("ARMT_PROFILE", "1", 1); /* the runtime enables profiling queues */
    int any_failed = 0;
    /* one block per (fp32 GEMM path, precision): a runtime per path, a model per block */
    for (size_t bi = 0; bi < o.n_fp32_gemm * o.n_precisions; bi++) {
        const size_t fi = bi / o.n_precisions, pi = bi % o.n_precisions;
        o.common.precision = o.precisions[pi];
        if (bi > 0) {
            /* the next block: a fresh model, fresh rows (the token list stays) */
            rows_free(&b);
            free(ids);
            ids = NULL;
            armt_model_free(model);
            model = NULL;
            any_failed |= b.failed;
            b.failed = 0;
            if (o.format == FMT_MD) fputs("\n", stdout);
        }
        if (pi == 0) { /* the next path: its own runtime */
            armt_runtime_free(rt);
            rt = NULL;
            o.common.fp32_gemm = o.fp32_gemm[fi];
            if (cli_open_runtime(&o.common, &rt) != 0) goto done;
            armt_status st = armt_runtime_device_info(rt, &ri.dev);
            if (st != ARMT_OK) {
                cli_report_status("reading the device information", st, armt_runtime_last_error(rt));
                goto done;
            }
        }
        if (cli_open_model(&o.common, rt, &model) != 0) goto done;
        b.model = model;
        b.cfg = armt_model_config(model);
        cli_model_label(&o.common, ri.model, sizeof ri.model);
        ri.seed = o.common.seed;
        ri.wmv_std = o.common.wmv_std;
        join_command(argc, argv, ri.command, sizeof ri.command);
        {
            time_t now = time(NULL);
            struct tm tm;
            if (gmtime_r(&now, &tm)) strftime(ri.date, sizeof ri.date, "%Y-%m-%dT%H:%M:%SZ", &tm);
        }

        /* Default token counts: 4 and 16 segments of the model's segment size. */
        if (o.n_tokens == 0) {
            o.tokens = malloc(2 * sizeof *o.tokens);
            if (!o.tokens) goto done;
            o.tokens[0] = 4 * (int64_t)b.cfg->segment_size;
            o.tokens[1] = 16 * (int64_t)b.cfg->segment_size;
            o.n_tokens = 2;
        }
        if (o.batch > 0 || o.n_batch_lengths > 0 || o.decode > 0) {
            clbench_batch_opts bo = {.batch = o.batch,
                                     .lengths = o.batch_lengths,
                                     .n_lengths = o.n_batch_lengths,
                                     .decode = o.decode,
                                     .tokens = o.tokens,
                                     .n_tokens = o.n_tokens,
                                     .schedule = o.schedules[0],
                                     .warmup = o.warmup,
                                     .repetitions = o.repetitions,
                                     .seed = o.common.seed};
            if (bo.schedule == ARMT_SCHEDULE_FULL) {
                cli_error("--batch, --batch-lengths and --decode run the ARMT schedules: --schedule diagonal "
                          "or sequential");
                goto done;
            }
            fprintf(stdout, "%s: %s on %s (%s)\n\n", cli_progname(), ri.model, ri.dev.name,
                    armt_precision_name(o.common.precision));
            any_failed |= clbench_batch_run(&bo, model, stdout) != 0;
            continue;
        }
        int64_t max_tokens = 0;
        for (size_t i = 0; i < o.n_tokens; i++)
            if (o.tokens[i] > max_tokens) max_tokens = o.tokens[i];
        ids = malloc((size_t)max_tokens * sizeof *ids);
        b.rows = calloc(o.n_schedules * o.n_tokens, sizeof *b.rows);
        if (!ids || !b.rows) {
            cli_error("out of host memory for %" PRId64 " token ids", max_tokens);
            goto done;
        }
        /* the same ids for every schedule; a prefix of them for the smaller counts */
        cli_random_ids(o.common.seed, b.cfg->vocab_size, ids, (size_t)max_tokens);
        b.ids = ids;
        for (size_t si = 0; si < o.n_schedules; si++)
            for (size_t ti = 0; ti < o.n_tokens; ti++) {
                bench_row *r = row_at(&b, si, ti);
                r->schedule = o.schedules[si];
                r->tokens = o.tokens[ti];
                r->segments =
                    is_armt(r->schedule) ? cli_div_up((uint64_t)r->tokens, (uint64_t)b.cfg->segment_size) : 1;
                r->flop = forward_flop(b.cfg, r->schedule, (uint64_t)r->tokens, o.output, o.all_rows);
                r->first_call_s = r->median_s = r->min_s = r->max_s = r->mean_s = r->stddev_s = NAN;
                r->verify_max_abs = r->verify_max_rel = NAN;
            }

        b.progress.enabled = o.verbosity > CLI_QUIET;
        b.progress.tty = isatty(fileno(stderr));
        if (o.verbosity > CLI_QUIET) {
            char mb[32];
            fprintf(stderr, "%s: device %s (%s); model %s, %s on the device\n", cli_progname(), ri.dev.name,
                    ri.dev.platform_name, ri.model,
                    cli_format_bytes(armt_model_device_bytes(model), mb, sizeof mb));
            fprintf(
                stderr,
                "%s: the first call of a schedule includes CLBlast's kernel compilation (~15 s on a CPU)\n",
                cli_progname());
        }
        for (size_t si = 0; si < o.n_schedules; si++)
            run_schedule(&b, si);
        if (o.verify) run_verify(&b);

        if (o.format == FMT_MD)
            write_md(&b, &ri, stdout);
        else
            write_machine(&b, &ri, stdout);
        fflush(stdout);
        if (ferror(stdout)) {
            cli_error("writing the results to stdout failed");
            goto done;
        }
    }
    any_failed |= b.failed;

    rc = any_failed ? 1 : 0;

done:
    rows_free(&b);
    free(ids);
    free(o.tokens);
    free(o.batch_lengths);
    armt_model_free(model);
    armt_runtime_free(rt);
    return rc;
}
