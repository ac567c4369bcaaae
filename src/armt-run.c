/*
 * armt-run.c - the command-line face of libarmt: load a model (checkpoint or random preset), run token ids
 * through one schedule, print a short summary and optionally save the outputs and the memory state.
 *
 * --save-outputs writes a safetensors file itself (the library's writer is internal):
 *     8 bytes      little-endian u64: length of the JSON header
 *     header       {"__metadata__": {...}, "NAME": {"dtype": "F32", "shape": [...], "data_offsets": [a, b]}, ...}
 *                  padded with spaces to a multiple of 8 bytes
 *     data         the tensors back to back, little-endian, offsets relative to the end of the header
 *
 * Only the public API (armt.h) is used.
 */
#include "config.h"

#include "armt.h"
#include "cli_common.h"

#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ======================================================================================================= */
/* Options                                                                                                 */
/* ======================================================================================================= */

typedef struct run_opts {
    cli_common    common;
    const char   *ids_path;       /* --ids FILE ("-": stdin)                             */
    int64_t       random_ids;     /* --random-ids N; 0: not given                        */
    armt_schedule schedule;
    armt_output   output;
    int           output_given;
    const char   *save_outputs;
    const char   *save_memory;
    const char   *load_memory;
    int           stats;
    int           verbosity;
} run_opts;

static const char *schedule_name(armt_schedule s) {
    switch (s) {
    case ARMT_SCHEDULE_DIAGONAL: return "diagonal";
    case ARMT_SCHEDULE_SEQUENTIAL: return "sequential";
    case ARMT_SCHEDULE_FULL: return "full";
    }
    return "?";
}

static const char *output_name(armt_output o) {
    switch (o) {
    case ARMT_OUTPUT_LOGITS_ALL: return "logits";
    case ARMT_OUTPUT_LOGITS_LAST: return "last";
    case ARMT_OUTPUT_HIDDEN: return "hidden";
    case ARMT_OUTPUT_NONE: return "none";
    }
    return "?";
}

static void usage(FILE *out) {
    fprintf(out,
            "Usage: %s (--model PATH | --preset NAME [--seed N]) (--ids FILE | --random-ids N) [OPTIONS]\n"
            "\n"
            "Runs token ids through an Associative Recurrent Memory Transformer on an OpenCL device and prints\n"
            "the argmax token of the last position and the timing. The ids are cut into segments of the\n"
            "segment size; each segment gets the memory tokens appended and reads/writes the associative\n"
            "memory (W_mem, z) of every layer.\n"
            "\n"
            "Input:\n"
            "      --ids FILE         token ids: integers separated by blanks and/or commas, '#' starts a\n"
            "                         comment; every id in [0, vocab); FILE '-' reads stdin\n"
            "      --random-ids N     N uniform random ids from --seed instead\n"
            "\n"
            "Run:\n"
            "      --schedule S       diagonal (default: Diagonal Batching, S + layers - 1 steps), sequential\n"
            "                         (segment by segment, layer by layer) or full (the base LLaMA over the\n"
            "                         whole input: no memory, no segments; the memory state is not touched)\n"
            "      --output WHAT      logits (every position), last (logits of the last position, the default),\n"
            "                         hidden (final hidden states, after the final RMSNorm) or none\n"
            "      --load-memory FILE start from a memory state saved by --save-memory (refused when it was\n"
            "                         saved for another model)\n"
            "      --save-memory FILE save the memory state after the run (armt_ctx_memory_save format)\n"
            "      --save-outputs FILE.safetensors\n"
            "                         save the results as a safetensors file (see below)\n"
            "      --stats            print the counters of the forward call: steps, cells, kernel launches,\n"
            "                         GEMM calls, device bytes (model, context, peak), seconds\n"
            "\n",
            cli_progname());
    cli_common_help(out, 1);
    fprintf(out,
            "\n"
            "Other:\n"
            "  -q, --quiet            only errors on stderr\n"
            "  -v, --verbose          library info messages on stderr (-vv: debug)\n"
            "  -h, --help             this help\n"
            "\n"
            "Tensors written by --save-outputs (all F32 little-endian except input_ids, row-major):\n"
            "  logits          [n, vocab]            logits of every position (--output logits)\n"
            "  logits_last     [1, vocab]            logits of the last position (--output last)\n"
            "  hidden          [n, hidden]           final hidden states (--output hidden)\n"
            "  memory.W_mem    [layers, d_key, hidden]  memory state after the call (ARMT schedules only)\n"
            "  memory.z        [layers, d_key]       normaliser after the call (ARMT schedules only)\n"
            "  input_ids       [n] (I32)             the ids that were run\n"
            "Without an explicit --output, --save-outputs saves both logits and hidden: the input is then run\n"
            "twice (logits, then hidden states) from the same starting memory, which ends in the same state.\n"
            "__metadata__ holds generator, libarmt_version, model, schedule, n_tokens, segment_size,\n"
            "num_mem_tokens, d_key.\n"
            "\n"
            "Exit status: 0 on success, 1 when a step failed, 2 on a usage error.\n"
            "\n"
            "Examples:\n"
            "  %s --preset tiny --seed 1 --random-ids 100\n"
            "  %s --preset tiny --seed 1 --wmv-std 0.02 --ids ids.txt --schedule sequential --stats\n"
            "  %s --model ./armt-checkpoint --segment 1024 --mem 128 --ids ids.txt --save-outputs out.safetensors\n"
            "  %s --model ./ckpt --ids part1.txt --save-memory state.bin && \\\n"
            "      %s --model ./ckpt --ids part2.txt --load-memory state.bin\n"
            "  %s --list-devices\n",
            cli_progname(), cli_progname(), cli_progname(), cli_progname(), cli_progname(), cli_progname());
}

/* Returns 0 to run, 1 to exit successfully (--help), -1 on a usage error. */
static int parse_args(int argc, char **argv, run_opts *o) {
    enum {
        OPT_IDS = 0x2000,
        OPT_RANDOM_IDS,
        OPT_SCHEDULE,
        OPT_OUTPUT,
        OPT_SAVE_OUTPUTS,
        OPT_SAVE_MEMORY,
        OPT_LOAD_MEMORY,
        OPT_STATS
    };
    static const struct option longopts[] = {
        CLI_COMMON_LONG_OPTIONS,
        {"ids", required_argument, NULL, OPT_IDS},
        {"random-ids", required_argument, NULL, OPT_RANDOM_IDS},
        {"schedule", required_argument, NULL, OPT_SCHEDULE},
        {"output", required_argument, NULL, OPT_OUTPUT},
        {"save-outputs", required_argument, NULL, OPT_SAVE_OUTPUTS},
        {"save-memory", required_argument, NULL, OPT_SAVE_MEMORY},
        {"load-memory", required_argument, NULL, OPT_LOAD_MEMORY},
        {"stats", no_argument, NULL, OPT_STATS},
        {"quiet", no_argument, NULL, 'q'},
        {"verbose", no_argument, NULL, 'v'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    memset(o, 0, sizeof *o);
    cli_common_init(&o->common);
    o->schedule = ARMT_SCHEDULE_DIAGONAL;
    o->output = ARMT_OUTPUT_LOGITS_LAST;
    o->verbosity = CLI_NORMAL;

    int opt;
    opterr = 0;
    while ((opt = getopt_long(argc, argv, ":qvh", longopts, NULL)) != -1) {
        int common = cli_common_option(&o->common, opt, optarg);
        if (common < 0) return -1;
        if (common > 0) continue;
        switch (opt) {
        case OPT_IDS: o->ids_path = optarg; break;
        case OPT_RANDOM_IDS:
            if (cli_parse_i64("--random-ids", optarg, 1, INT32_MAX, &o->random_ids) != 0) return -1;
            break;
        case OPT_SCHEDULE:
            if (strcmp(optarg, "diagonal") == 0)
                o->schedule = ARMT_SCHEDULE_DIAGONAL;
            else if (strcmp(optarg, "sequential") == 0)
                o->schedule = ARMT_SCHEDULE_SEQUENTIAL;
            else if (strcmp(optarg, "full") == 0)
                o->schedule = ARMT_SCHEDULE_FULL;
            else {
                cli_error("--schedule: '%s' is not one of diagonal, sequential, full", optarg);
                return -1;
            }
            break;
        case OPT_OUTPUT:
            if (strcmp(optarg, "logits") == 0)
                o->output = ARMT_OUTPUT_LOGITS_ALL;
            else if (strcmp(optarg, "last") == 0)
                o->output = ARMT_OUTPUT_LOGITS_LAST;
            else if (strcmp(optarg, "hidden") == 0)
                o->output = ARMT_OUTPUT_HIDDEN;
            else if (strcmp(optarg, "none") == 0)
                o->output = ARMT_OUTPUT_NONE;
            else {
                cli_error("--output: '%s' is not one of logits, last, hidden, none", optarg);
                return -1;
            }
            o->output_given = 1;
            break;
        case OPT_SAVE_OUTPUTS: o->save_outputs = optarg; break;
        case OPT_SAVE_MEMORY: o->save_memory = optarg; break;
        case OPT_LOAD_MEMORY: o->load_memory = optarg; break;
        case OPT_STATS: o->stats = 1; break;
        case 'q': o->verbosity = CLI_QUIET; break;
        case 'v':
            if (o->verbosity < CLI_DEBUG) o->verbosity = o->verbosity < CLI_NORMAL ? CLI_VERBOSE : o->verbosity + 1;
            break;
        case 'h': usage(stdout); return 1;
        case ':': cli_error("option '%s' needs an argument (see --help)", argv[optind - 1]); return -1;
        default: cli_error("unknown option '%s' (see --help)", argv[optind - 1]); return -1;
        }
    }
    if (optind < argc) {
        cli_error("unexpected argument '%s' (see --help)", argv[optind]);
        return -1;
    }
    if (cli_common_finish(&o->common, NULL) != 0) return -1;
    if (o->common.list_devices) return 0;
    if (!o->ids_path == !o->random_ids) {
        cli_error(o->ids_path ? "--ids and --random-ids exclude each other"
                              : "no input: give --ids FILE or --random-ids N (see --help)");
        return -1;
    }
    if (o->save_outputs && o->output_given && o->output == ARMT_OUTPUT_NONE) {
        cli_error("--save-outputs with --output none would save no outputs; drop --output or choose one");
        return -1;
    }
    return 0;
}

/* ======================================================================================================= */
/* A small growable string (for the safetensors header)                                                    */
/* ======================================================================================================= */

typedef struct strbuf {
    char  *data;
    size_t len, cap;
    int    failed;
} strbuf;

static void sb_printf(strbuf *sb, const char *fmt, ...) CLI_PRINTF(2, 3);
static void sb_printf(strbuf *sb, const char *fmt, ...) {
    if (sb->failed) return;
    for (;;) {
        size_t room = sb->cap - sb->len;
        va_list ap;
        va_start(ap, fmt);
        int w = vsnprintf(sb->data ? sb->data + sb->len : NULL, room, fmt, ap);
        va_end(ap);
        if (w < 0) {
            sb->failed = 1;
            return;
        }
        if ((size_t)w < room) {
            sb->len += (size_t)w;
            return;
        }
        size_t cap = sb->cap ? sb->cap : 256;
        while (cap - sb->len <= (size_t)w) cap *= 2;
        char *grown = realloc(sb->data, cap);
        if (!grown) {
            sb->failed = 1;
            return;
        }
        sb->data = grown;
        sb->cap = cap;
    }
}

/* A JSON string literal. */
static void sb_json_string(strbuf *sb, const char *s) {
    sb_printf(sb, "\"");
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (*p == '"' || *p == '\\')
            sb_printf(sb, "\\%c", *p);
        else if (*p < 0x20)
            sb_printf(sb, "\\u%04x", *p);
        else
            sb_printf(sb, "%c", *p);
    }
    sb_printf(sb, "\"");
}

/* ======================================================================================================= */
/* safetensors writer                                                                                      */
/* ======================================================================================================= */

typedef struct st_tensor {
    const char *name;
    const char *dtype;     /* "F32" or "I32": 4-byte elements */
    int         ndim;
    uint64_t    shape[3];
    const void *data;      /* host-endian 4-byte elements */
} st_tensor;

static uint64_t tensor_elems(const st_tensor *t) {
    uint64_t n = 1;
    for (int i = 0; i < t->ndim; i++) n *= t->shape[i];
    return n;
}

static int host_is_little_endian(void) {
    const uint16_t one = 1;
    return *(const uint8_t *)&one == 1;
}

/* Writes 4-byte elements in little-endian order, swapping through a bounce buffer on big-endian hosts. */
static int write_le32(FILE *f, const void *data, uint64_t count) {
    if (host_is_little_endian()) return fwrite(data, 4, (size_t)count, f) == (size_t)count ? 0 : -1;
    uint8_t chunk[4096];
    const uint8_t *src = data;
    while (count > 0) {
        size_t k = count < sizeof chunk / 4 ? (size_t)count : sizeof chunk / 4;
        for (size_t i = 0; i < k; i++)
            for (int j = 0; j < 4; j++) chunk[4 * i + (size_t)j] = src[4 * i + 3 - (size_t)j];
        if (fwrite(chunk, 4, k, f) != k) return -1;
        src += 4 * k;
        count -= k;
    }
    return 0;
}

/* metadata: pairs of key and value strings, NULL-terminated. Written to path.tmp, then renamed. */
static int write_safetensors(const char *path, const st_tensor *t, size_t n, const char *const *metadata) {
    strbuf sb = {0};
    sb_printf(&sb, "{\"__metadata__\":{");
    for (size_t i = 0; metadata[i] && metadata[i + 1]; i += 2) {
        if (i) sb_printf(&sb, ",");
        sb_json_string(&sb, metadata[i]);
        sb_printf(&sb, ":");
        sb_json_string(&sb, metadata[i + 1]);
    }
    sb_printf(&sb, "}");
    uint64_t offset = 0;
    for (size_t i = 0; i < n; i++) {
        uint64_t bytes = 4 * tensor_elems(&t[i]);
        sb_printf(&sb, ",");
        sb_json_string(&sb, t[i].name);
        sb_printf(&sb, ":{\"dtype\":\"%s\",\"shape\":[", t[i].dtype);
        for (int d = 0; d < t[i].ndim; d++) sb_printf(&sb, "%s%" PRIu64, d ? "," : "", t[i].shape[d]);
        sb_printf(&sb, "],\"data_offsets\":[%" PRIu64 ",%" PRIu64 "]}", offset, offset + bytes);
        offset += bytes;
    }
    sb_printf(&sb, "}");
    while (!sb.failed && sb.len % 8 != 0) sb_printf(&sb, " "); /* keeps the data 8-byte aligned */
    if (sb.failed) {
        free(sb.data);
        cli_error("%s: out of memory for the header", path);
        return -1;
    }

    size_t tmp_len = strlen(path) + 5;
    char *tmp = malloc(tmp_len);
    if (!tmp) {
        free(sb.data);
        cli_error("%s: out of memory", path);
        return -1;
    }
    snprintf(tmp, tmp_len, "%s.tmp", path);
    FILE *f = fopen(tmp, "wb");
    int rc = -1;
    if (!f) {
        cli_error("%s: %s", tmp, strerror(errno));
        goto done;
    }
    uint8_t len_le[8];
    for (int i = 0; i < 8; i++) len_le[i] = (uint8_t)((uint64_t)sb.len >> (8 * i));
    int ok = fwrite(len_le, 1, 8, f) == 8 && fwrite(sb.data, 1, sb.len, f) == sb.len;
    for (size_t i = 0; ok && i < n; i++) ok = write_le32(f, t[i].data, tensor_elems(&t[i])) == 0;
    int write_errno = errno;
    if (fclose(f) != 0 && ok) {
        ok = 0;
        write_errno = errno;
    }
    if (!ok) {
        cli_error("%s: write failed: %s", tmp, strerror(write_errno));
        remove(tmp);
        goto done;
    }
    if (rename(tmp, path) != 0) {
        cli_error("renaming %s to %s: %s", tmp, path, strerror(errno));
        remove(tmp);
        goto done;
    }
    rc = 0;
done:
    free(tmp);
    free(sb.data);
    return rc;
}

/* ======================================================================================================= */
/* Running                                                                                                 */
/* ======================================================================================================= */

/* One forward call with one output; *out is allocated here (NULL for ARMT_OUTPUT_NONE). */
static int forward_once(armt_ctx *ctx, const int32_t *ids, size_t n, armt_schedule s, armt_output o, float **out,
                        double *seconds) {
    armt_model *model = armt_ctx_model(ctx);
    size_t count = armt_output_count(model, o, n);
    *out = NULL;
    if (count > 0) {
        *out = malloc(count * sizeof **out);
        if (!*out) {
            char b[32];
            cli_error("out of host memory for the %s output (%s)", output_name(o),
                      cli_format_bytes((uint64_t)count * sizeof(float), b, sizeof b));
            return -1;
        }
    }
    armt_forward_params fp = armt_forward_default_params();
    fp.schedule = s;
    fp.output = o;
    fp.out = *out;
    fp.out_count = count;
    double t0 = cli_now();
    armt_status st = armt_forward(ctx, ids, n, &fp);
    *seconds = cli_now() - t0;
    if (st != ARMT_OK) {
        cli_report_status("forward", st, armt_ctx_last_error(ctx));
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

int main(int argc, char **argv) {
    cli_init(argv[0]);
    run_opts o;
    int pr = parse_args(argc, argv, &o);
    if (pr != 0) return pr > 0 ? 0 : 2;
    cli_log_install(o.verbosity);
    if (o.common.list_devices) return cli_list_devices(stdout) == 0 ? 0 : 1;

    int rc = 1;
    armt_runtime *rt = NULL;
    armt_model *model = NULL;
    armt_ctx *ctx = NULL;
    int32_t *ids = NULL;
    size_t n = 0;
    float *logits = NULL, *hidden = NULL, *w_mem = NULL, *z = NULL, *w_snap = NULL, *z_snap = NULL;
    uint8_t *written_snap = NULL;
    armt_status st;
    armt_device_info dev;
    char label[600], b1[32], b2[32], b3[32];

    if (cli_open_runtime(&o.common, &rt) != 0) goto done;
    st = armt_runtime_device_info(rt, &dev);
    if (st != ARMT_OK) {
        cli_report_status("reading the device information", st, armt_runtime_last_error(rt));
        goto done;
    }
    if (cli_open_model(&o.common, rt, &model) != 0) goto done;
    const armt_config *cfg = armt_model_config(model);
    st = armt_ctx_create(model, NULL, &ctx);
    if (st != ARMT_OK) {
        cli_report_status("creating the context", st, armt_last_error());
        goto done;
    }

    /* Input ids: checked against the vocabulary here, so errors carry file positions. */
    if (o.ids_path) {
        if (cli_read_ids_file(o.ids_path, cfg->vocab_size, &ids, &n) != 0) goto done;
    } else {
        n = (size_t)o.random_ids;
        ids = malloc(n * sizeof *ids);
        if (!ids) {
            cli_error("out of host memory for %zu ids", n);
            goto done;
        }
        cli_random_ids(o.common.seed, cfg->vocab_size, ids, n);
    }

    int armt = o.schedule != ARMT_SCHEDULE_FULL;
    if (o.load_memory) {
        if (!armt && o.verbosity > CLI_QUIET)
            cli_error("note: --load-memory has no effect on the full schedule (it does not use the memory)");
        st = armt_ctx_memory_load(ctx, o.load_memory);
        if (st != ARMT_OK) {
            char what[600];
            snprintf(what, sizeof what, "loading the memory state '%s'", o.load_memory);
            cli_report_status(what, st, armt_ctx_last_error(ctx));
            goto done;
        }
    }

    /* Which outputs: --save-outputs without --output saves logits and hidden, which takes two calls. */
    int both = o.save_outputs && !o.output_given;
    armt_output first = both ? ARMT_OUTPUT_LOGITS_ALL : o.output;
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
    if (forward_once(ctx, ids, n, o.schedule, first, &first_out, &seconds) != 0) goto done;
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
                cli_report_status("restoring the memory state for the second call", st, armt_ctx_last_error(ctx));
                goto done;
            }
        }
        if (forward_once(ctx, ids, n, o.schedule, ARMT_OUTPUT_HIDDEN, &hidden, &seconds2) != 0) goto done;
    }

    /* ---- summary on stdout ---- */
    cli_model_label(&o.common, label, sizeof label);
    uint64_t segments = cli_div_up(n, (uint64_t)cfg->segment_size);
    printf("model:    %s: %d layers, hidden %d, heads %d/%d, vocab %d; segment %d + %d memory tokens\n", label,
           cfg->n_layers, cfg->hidden_size, cfg->n_heads, cfg->n_kv_heads, cfg->vocab_size, cfg->segment_size,
           cfg->num_mem_tokens);
    printf("device:   %s (%s)%s%s\n", dev.name, dev.platform_name, dev.device_version[0] ? ", " : "",
           dev.device_version);
    if (armt)
        printf("input:    %zu tokens (%s), %" PRIu64 " segment%s\n", n, o.ids_path ? o.ids_path : "random ids",
               segments, segments == 1 ? "" : "s");
    else
        printf("input:    %zu tokens (%s), one sequence (full attention: no segments, no memory)\n", n,
               o.ids_path ? o.ids_path : "random ids");
    printf("schedule: %s, %" PRIu64 " steps, %.4f s (%.0f tokens/s)%s\n", schedule_name(o.schedule), stats.steps,
           seconds, seconds > 0 ? (double)n / seconds : 0.0, both ? " [logits call]" : "");
    if (both) printf("          %.4f s for the second call (hidden states)\n", seconds2);
    if (logits) {
        const float *last = first == ARMT_OUTPUT_LOGITS_ALL ? logits + (n - 1) * (size_t)cfg->vocab_size : logits;
        size_t best = argmax(last, (size_t)cfg->vocab_size);
        printf("last:     argmax token %zu (logit %.6g) at position %zu\n", best, (double)last[best], n - 1);
    } else {
        printf("last:     argmax not computed (--output %s)\n", output_name(o.output));
    }

    if (o.stats) {
        printf("stats:    steps %" PRIu64 ", cells %" PRIu64 ", kernel launches %" PRIu64 ", GEMM calls %" PRIu64 "\n",
               stats.steps, stats.cells, stats.kernel_launches, stats.gemm_calls);
        printf("          device bytes: model %s, context %s, peak (model + contexts) %s\n",
               cli_format_bytes(armt_model_device_bytes(model), b1, sizeof b1),
               cli_format_bytes(stats.device_bytes, b2, sizeof b2),
               cli_format_bytes(stats.peak_device_bytes, b3, sizeof b3));
        printf("          seconds %.6f (library, queue finished), %.6f (wall around armt_forward)\n", stats.seconds,
               seconds);
    }

    /* ---- files ---- */
    if (o.save_outputs) {
        st_tensor t[6];
        size_t nt = 0;
        if (logits && first == ARMT_OUTPUT_LOGITS_ALL)
            t[nt++] = (st_tensor){"logits", "F32", 2, {n, (uint64_t)cfg->vocab_size, 0}, logits};
        if (logits && first == ARMT_OUTPUT_LOGITS_LAST)
            t[nt++] = (st_tensor){"logits_last", "F32", 2, {1, (uint64_t)cfg->vocab_size, 0}, logits};
        if (hidden) t[nt++] = (st_tensor){"hidden", "F32", 2, {n, (uint64_t)cfg->hidden_size, 0}, hidden};
        if (armt) {
            w_mem = malloc(wc * sizeof *w_mem);
            z = malloc(zc * sizeof *z);
            if (!w_mem || !z) {
                cli_error("out of host memory for the memory state");
                goto done;
            }
            st = armt_ctx_memory_get(ctx, w_mem, z, NULL);
            if (st != ARMT_OK) {
                cli_report_status("reading the memory state", st, armt_ctx_last_error(ctx));
                goto done;
            }
            uint64_t layers = (uint64_t)cfg->n_layers, dk = (uint64_t)armt_config_d_key(cfg);
            t[nt++] = (st_tensor){"memory.W_mem", "F32", 3, {layers, dk, (uint64_t)cfg->hidden_size}, w_mem};
            t[nt++] = (st_tensor){"memory.z", "F32", 2, {layers, dk, 0}, z};
        }
        t[nt++] = (st_tensor){"input_ids", "I32", 1, {n, 0, 0}, ids};
        char n_text[32], seg_text[16], mem_text[16], dk_text[16];
        snprintf(n_text, sizeof n_text, "%zu", n);
        snprintf(seg_text, sizeof seg_text, "%d", cfg->segment_size);
        snprintf(mem_text, sizeof mem_text, "%d", cfg->num_mem_tokens);
        snprintf(dk_text, sizeof dk_text, "%d", armt_config_d_key(cfg));
        const char *const metadata[] = {"generator", "armt-run", "libarmt_version", armt_version_string(), "model",
                                        label, "schedule", schedule_name(o.schedule), "n_tokens", n_text,
                                        "segment_size", seg_text, "num_mem_tokens", mem_text, "d_key", dk_text,
                                        NULL, NULL};
        if (write_safetensors(o.save_outputs, t, nt, metadata) != 0) goto done;
        printf("saved:    %s:", o.save_outputs);
        for (size_t i = 0; i < nt; i++) {
            printf("%s %s [", i ? "," : "", t[i].name);
            for (int d = 0; d < t[i].ndim; d++) printf("%s%" PRIu64, d ? ", " : "", t[i].shape[d]);
            printf("]");
        }
        printf("\n");
    }
    if (o.save_memory) {
        st = armt_ctx_memory_save(ctx, o.save_memory);
        if (st != ARMT_OK) {
            char what[600];
            snprintf(what, sizeof what, "saving the memory state to '%s'", o.save_memory);
            cli_report_status(what, st, armt_ctx_last_error(ctx));
            goto done;
        }
        printf("saved:    memory state to %s\n", o.save_memory);
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
    armt_ctx_free(ctx);
    armt_model_free(model);
    armt_runtime_free(rt);
    return rc;
}
