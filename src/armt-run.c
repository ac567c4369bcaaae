/*
 * armt-run.c - the command-line face of libarmt: load a model (checkpoint or random preset), then either
 *   - forward mode: run token ids through one schedule, print a short summary and optionally save the
 *     outputs and the memory state; or
 *   - generation mode (--generate / --max-new / --prompt): read a prompt (token ids, or text through a HF
 *     tokenizer.json) and print new tokens as armt_generate produces them, then the timing on stderr.
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

/* Most --stop-id plus --stop options accepted. */
#define CLI_MAX_STOPS 16

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
    /* generation mode */
    int           generate;       /* --generate, --max-new, --prompt or --prompt-file given              */
    const char   *prompt_text;    /* --prompt TEXT                                                       */
    const char   *prompt_file;    /* --prompt-file FILE ("-": stdin)                                     */
    const char   *tokenizer_path; /* --tokenizer tokenizer.json                                          */
    int           max_new;        /* --max-new N (default 32)                                            */
    double        temperature;    /* --temperature T (default 0: greedy)                                 */
    int           top_k;          /* --top-k K (default 0: all)                                          */
    double        top_p;          /* --top-p P (default 1: all)                                          */
    int           sampling_given; /* --top-k or --top-p given                                            */
    uint64_t      sample_seed;    /* --sample-seed N (default 0)                                         */
    int32_t       stop_ids[CLI_MAX_STOPS];
    size_t        n_stop_ids;
    const char   *stop_texts[CLI_MAX_STOPS];
    size_t        n_stop_texts;
    int           bos;            /* --bos 1, --no-bos 0, -1: not given (text: BOS added; ids: none)     */
    int           print_ids;      /* --print-ids: ids even with a tokenizer                               */
    int           skip_special;   /* --skip-special: special tokens are not printed as text              */
    const char   *gen_only_opt;   /* first generation-only option seen (for the message in forward mode) */
    const char   *fwd_only_opt;   /* first forward-only option seen (for the message in generation mode) */
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
    const char *p = cli_progname();
    fprintf(out,
            "Usage: %s (--model PATH | --preset NAME [--seed N]) (--ids FILE | --random-ids N) [OPTIONS]\n"
            "       %s (--model PATH | --preset NAME [--seed N]) --generate|--max-new N\n"
            "           (--prompt TEXT | --prompt-file FILE | --prompt-ids FILE | --random-ids N)\n"
            "           [--tokenizer tokenizer.json] [GENERATION OPTIONS]\n"
            "\n"
            "Runs an Associative Recurrent Memory Transformer on an OpenCL device.\n"
            "\n"
            "Forward mode (the default) runs token ids through the model and prints the argmax token of the\n"
            "last position and the timing. The ids are cut into segments of the segment size; each segment gets\n"
            "the memory tokens appended and reads/writes the associative memory (W_mem, z) of every layer.\n"
            "\n"
            "Generation mode (--generate, --max-new, --prompt or --prompt-file) reads a prompt and produces new\n"
            "tokens: every segment of the prompt but the last goes through the normal forward (memory read and\n"
            "written); the last segment, full or partial, runs without memory tokens and without writes, reading\n"
            "the memory on every token, and new tokens follow one at a time with a KV cache. The new tokens are\n"
            "printed on stdout as they come: as text with --tokenizer, else as ids separated by blanks (always\n"
            "followed by a newline); the model, device and timing go to stderr.\n"
            "\n"
            "Input:\n"
            "      --ids FILE         token ids: integers separated by blanks and/or commas, '#' starts a\n"
            "                         comment; every id in [0, vocab); FILE '-' reads stdin. In generation mode\n"
            "                         they are the prompt\n"
            "      --prompt-ids FILE  the same as --ids (reads better in generation mode)\n"
            "      --random-ids N     N uniform random ids from --seed instead\n"
            "      --prompt TEXT      generation prompt as UTF-8 text, encoded with --tokenizer (implies\n"
            "                         --generate); special tokens written literally, e.g. <|eot_id|>, become\n"
            "                         their ids\n"
            "      --prompt-file FILE the prompt text read from FILE ('-': stdin), e.g. a long document (implies\n"
            "                         --generate)\n"
            "      --tokenizer FILE   a HF tokenizer.json (byte-level BPE, LLaMA-3 family): encodes --prompt and\n"
            "                         decodes the new tokens to text. With --preset, a preset vocabulary smaller\n"
            "                         than the tokenizer's is enlarged to it (said on stderr)\n"
            "\n"
            "Weights (both modes):\n"
            "      --precision P      fp32 (default, the reference) or bf16 (half the memory; our own GEMM,\n"
            "                         tensor cores on NVIDIA)\n"
            "\n"
            "Forward mode:\n"
            "      --schedule S       diagonal (default: Diagonal Batching, S + layers - 1 steps), sequential\n"
            "                         (segment by segment, layer by layer) or full (the base LLaMA over the\n"
            "                         whole input: no memory, no segments; the memory state is not touched).\n"
            "                         Generation accepts diagonal and sequential (for the prompt's earlier\n"
            "                         segments)\n"
            "      --output WHAT      logits (every position), last (logits of the last position, the default),\n"
            "                         hidden (final hidden states, after the final RMSNorm) or none\n"
            "      --load-memory FILE start from a memory state saved by --save-memory (refused when it was\n"
            "                         saved for another model); also in generation mode\n"
            "      --save-memory FILE save the memory state after the run (armt_ctx_memory_save format); in\n"
            "                         generation mode: the state after the prompt's earlier segments\n"
            "      --save-outputs FILE.safetensors\n"
            "                         save the results as a safetensors file (see below)\n"
            "      --stats            print the counters of the forward call: steps, cells, kernel launches,\n"
            "                         GEMM calls, device bytes (model, context, peak), seconds\n"
            "\n"
            "Generation mode:\n"
            "      --generate         generation mode with the default --max-new 32\n"
            "      --max-new N        produce at most N new tokens (implies --generate; 0: prefill only)\n"
            "      --temperature T    0 (default): greedy, ties to the lowest id; > 0: sample from softmax(l/T)\n"
            "      --top-k K          sample among the K most likely tokens only (default 0: all)\n"
            "      --top-p P          nucleus: the smallest set of tokens with probability >= P, in (0, 1]\n"
            "                         (default 1: all); top-k applies first\n"
            "      --sample-seed N    seed of the sampling draws (default 0); the same seed, model and prompt\n"
            "                         give the same tokens\n"
            "      --stop-id N        stop after producing token N (it is printed); repeatable\n"
            "      --stop TEXT        the same for a token given by its text, e.g. '<|eot_id|>' (needs\n"
            "                         --tokenizer; the text must be one token); repeatable\n"
            "      --bos, --no-bos    prepend the tokenizer's BOS token, e.g. <|begin_of_text|>, to the prompt.\n"
            "                         Default: on for --prompt/--prompt-file, off for ids (--bos with ids needs\n"
            "                         --tokenizer)\n"
            "      --print-ids        print the new tokens as ids even with --tokenizer\n"
            "      --skip-special     do not print special tokens as text (e.g. a final <|eot_id|>)\n"
            "Timing on stderr: prompt tokens (earlier segments + the generation segment), prefill seconds and\n"
            "tokens/s (the prompt's earlier segments plus the generation segment's prefill, up to the logits\n"
            "of the first new token), decode tokens/s (the new tokens after the first one), the stop reason.\n"
            "Text is printed as soon as it is whole: bytes of a character split across tokens are held back\n"
            "until the character is complete (no U+FFFD for them); an id the tokenizer does not know is printed\n"
            "as [id].\n"
            "\n",
            p, p);
    cli_common_help(out, 1);
    fprintf(out,
            "\n"
            "Other:\n"
            "  -q, --quiet            only errors on stderr (no model, device or timing lines)\n"
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
            "num_mem_tokens, d_key, precision.\n"
            "\n"
            "Exit status: 0 on success, 1 when a step failed, 2 on a usage error.\n"
            "\n"
            "Examples (forward):\n"
            "  %s --preset tiny --seed 1 --random-ids 100\n"
            "  %s --preset tiny --seed 1 --wmv-std 0.02 --ids ids.txt --schedule sequential --stats\n"
            "  %s --model ./armt-checkpoint --segment 1024 --mem 128 --ids ids.txt --save-outputs out.safetensors\n"
            "  %s --model ./ckpt --ids part1.txt --save-memory state.bin && \\\n"
            "      %s --model ./ckpt --ids part2.txt --load-memory state.bin\n"
            "  %s --list-devices\n"
            "Examples (generation):\n"
            "  %s --preset tiny --tokenizer tests/data/tokenizer/tokenizer.json --prompt \"Hello world\" --max-new 16\n"
            "  %s --model ./ckpt --tokenizer ./ckpt/tokenizer.json --prompt-file story.txt --max-new 64 \\\n"
            "      --stop '<|eot_id|>' --skip-special\n"
            "  %s --model ./ckpt --tokenizer ./ckpt/tokenizer.json --prompt \"Once upon a time\" --max-new 100 \\\n"
            "      --temperature 0.8 --top-k 40 --top-p 0.95 --sample-seed 7\n"
            "  %s --preset tiny --seed 1 --wmv-std 0.02 --prompt-ids ids.txt --max-new 8 --stop-id 2\n",
            p, p, p, p, p, p, p, p, p, p);
}

/* Returns 0 to run, 1 to exit successfully (--help), -1 on a usage error. */
static int parse_args(int argc, char **argv, run_opts *o) {
    enum {
        OPT_IDS = 0x2000,
        OPT_PROMPT_IDS,
        OPT_RANDOM_IDS,
        OPT_SCHEDULE,
        OPT_OUTPUT,
        OPT_SAVE_OUTPUTS,
        OPT_SAVE_MEMORY,
        OPT_LOAD_MEMORY,
        OPT_STATS,
        OPT_PRECISION,
        OPT_GENERATE,
        OPT_MAX_NEW,
        OPT_PROMPT,
        OPT_PROMPT_FILE,
        OPT_TOKENIZER,
        OPT_TEMPERATURE,
        OPT_TOP_K,
        OPT_TOP_P,
        OPT_SAMPLE_SEED,
        OPT_STOP_ID,
        OPT_STOP,
        OPT_BOS,
        OPT_NO_BOS,
        OPT_PRINT_IDS,
        OPT_SKIP_SPECIAL
    };
    static const struct option longopts[] = {
        CLI_COMMON_LONG_OPTIONS,
        {"ids", required_argument, NULL, OPT_IDS},
        {"prompt-ids", required_argument, NULL, OPT_PROMPT_IDS},
        {"random-ids", required_argument, NULL, OPT_RANDOM_IDS},
        {"schedule", required_argument, NULL, OPT_SCHEDULE},
        {"output", required_argument, NULL, OPT_OUTPUT},
        {"save-outputs", required_argument, NULL, OPT_SAVE_OUTPUTS},
        {"save-memory", required_argument, NULL, OPT_SAVE_MEMORY},
        {"load-memory", required_argument, NULL, OPT_LOAD_MEMORY},
        {"stats", no_argument, NULL, OPT_STATS},
        {"precision", required_argument, NULL, OPT_PRECISION},
        {"generate", no_argument, NULL, OPT_GENERATE},
        {"max-new", required_argument, NULL, OPT_MAX_NEW},
        {"prompt", required_argument, NULL, OPT_PROMPT},
        {"prompt-file", required_argument, NULL, OPT_PROMPT_FILE},
        {"tokenizer", required_argument, NULL, OPT_TOKENIZER},
        {"temperature", required_argument, NULL, OPT_TEMPERATURE},
        {"top-k", required_argument, NULL, OPT_TOP_K},
        {"top-p", required_argument, NULL, OPT_TOP_P},
        {"sample-seed", required_argument, NULL, OPT_SAMPLE_SEED},
        {"stop-id", required_argument, NULL, OPT_STOP_ID},
        {"stop", required_argument, NULL, OPT_STOP},
        {"bos", no_argument, NULL, OPT_BOS},
        {"no-bos", no_argument, NULL, OPT_NO_BOS},
        {"print-ids", no_argument, NULL, OPT_PRINT_IDS},
        {"skip-special", no_argument, NULL, OPT_SKIP_SPECIAL},
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
    o->max_new = 32;
    o->temperature = 0.0;
    o->top_k = 0;
    o->top_p = 1.0;
    o->bos = -1;

    int opt, li = -1;
    opterr = 0;
    while ((opt = getopt_long(argc, argv, ":qvh", longopts, &li)) != -1) {
        int common = cli_common_option(&o->common, opt, optarg);
        if (common < 0) return -1;
        if (common > 0) continue;
        /* the option's long name, for messages about modes (every such option is long-only) */
        const char *name = li >= 0 ? longopts[li].name : "?";
        li = -1;
        if (opt >= OPT_GENERATE && opt <= OPT_SKIP_SPECIAL && !o->gen_only_opt) o->gen_only_opt = name;
        if ((opt == OPT_OUTPUT || opt == OPT_SAVE_OUTPUTS || opt == OPT_STATS) && !o->fwd_only_opt)
            o->fwd_only_opt = name;
        switch (opt) {
        case OPT_IDS:
        case OPT_PROMPT_IDS:
            if (o->ids_path) {
                cli_error("--ids / --prompt-ids given twice");
                return -1;
            }
            o->ids_path = optarg;
            break;
        case OPT_RANDOM_IDS:
            if (cli_parse_i64("--random-ids", optarg, 1, INT32_MAX, &o->random_ids) != 0) return -1;
            break;
        case OPT_PRECISION:
            if (strcmp(optarg, "fp32") == 0)
                o->common.precision = ARMT_PRECISION_FP32;
            else if (strcmp(optarg, "bf16") == 0)
                o->common.precision = ARMT_PRECISION_BF16;
            else {
                cli_error("--precision: '%s' is not one of fp32, bf16", optarg);
                return -1;
            }
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
        case OPT_GENERATE: o->generate = 1; break;
        case OPT_MAX_NEW:
            if (cli_parse_int("--max-new", optarg, 0, 1 << 24, &o->max_new) != 0) return -1;
            o->generate = 1;
            break;
        case OPT_PROMPT:
            if (o->prompt_text) {
                cli_error("--prompt given twice");
                return -1;
            }
            o->prompt_text = optarg;
            o->generate = 1;
            break;
        case OPT_PROMPT_FILE:
            o->prompt_file = optarg;
            o->generate = 1;
            break;
        case OPT_TOKENIZER:
            o->tokenizer_path = optarg;
            /* a tokenizer alone does not select generation mode, but forward mode has no use for it */
            break;
        case OPT_TEMPERATURE:
            if (cli_parse_double("--temperature", optarg, 0.0, 1e4, &o->temperature) != 0) return -1;
            break;
        case OPT_TOP_K:
            if (cli_parse_int("--top-k", optarg, 0, INT32_MAX, &o->top_k) != 0) return -1;
            o->sampling_given = 1;
            break;
        case OPT_TOP_P:
            if (cli_parse_double("--top-p", optarg, 0.0, 1.0, &o->top_p) != 0) return -1;
            if (!(o->top_p > 0.0)) {
                cli_error("--top-p: must be in (0, 1] (1 keeps every token)");
                return -1;
            }
            o->sampling_given = 1;
            break;
        case OPT_SAMPLE_SEED:
            if (cli_parse_u64("--sample-seed", optarg, &o->sample_seed) != 0) return -1;
            break;
        case OPT_STOP_ID: {
            int id;
            if (cli_parse_int("--stop-id", optarg, 0, INT32_MAX, &id) != 0) return -1;
            if (o->n_stop_ids + o->n_stop_texts >= CLI_MAX_STOPS) {
                cli_error("at most %d --stop-id / --stop options", CLI_MAX_STOPS);
                return -1;
            }
            o->stop_ids[o->n_stop_ids++] = id;
            break;
        }
        case OPT_STOP:
            if (!*optarg) {
                cli_error("--stop: empty token text");
                return -1;
            }
            if (o->n_stop_ids + o->n_stop_texts >= CLI_MAX_STOPS) {
                cli_error("at most %d --stop-id / --stop options", CLI_MAX_STOPS);
                return -1;
            }
            o->stop_texts[o->n_stop_texts++] = optarg;
            break;
        case OPT_BOS: o->bos = 1; break;
        case OPT_NO_BOS: o->bos = 0; break;
        case OPT_PRINT_IDS: o->print_ids = 1; break;
        case OPT_SKIP_SPECIAL: o->skip_special = 1; break;
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

    if (!o->generate) {
        /* forward mode */
        if (o->gen_only_opt) {
            cli_error("--%s is a generation option: add --generate or --max-new N (see --help)", o->gen_only_opt);
            return -1;
        }
        if (o->tokenizer_path) {
            cli_error("--tokenizer is used in generation mode only: add --generate or --max-new N, and --prompt");
            return -1;
        }
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

    /* generation mode */
    if (o->fwd_only_opt) {
        cli_error("--%s applies to forward mode only, not to generation (see --help)", o->fwd_only_opt);
        return -1;
    }
    if (o->schedule == ARMT_SCHEDULE_FULL) {
        cli_error("--schedule full: generation runs the ARMT schedules only (diagonal or sequential)");
        return -1;
    }
    int inputs = (o->prompt_text != NULL) + (o->prompt_file != NULL) + (o->ids_path != NULL) + (o->random_ids > 0);
    if (inputs != 1) {
        cli_error(inputs ? "give one prompt: --prompt, --prompt-file, --prompt-ids/--ids and --random-ids exclude "
                           "each other"
                         : "no prompt: give --prompt TEXT (with --tokenizer), --prompt-file FILE, --prompt-ids FILE "
                           "or --random-ids N (see --help)");
        return -1;
    }
    if ((o->prompt_text || o->prompt_file) && !o->tokenizer_path) {
        cli_error("%s needs --tokenizer tokenizer.json to turn the text into token ids",
                  o->prompt_text ? "--prompt" : "--prompt-file");
        return -1;
    }
    if (o->n_stop_texts > 0 && !o->tokenizer_path) {
        cli_error("--stop '%s' needs --tokenizer to find the token's id (or use --stop-id N)", o->stop_texts[0]);
        return -1;
    }
    if (o->bos == 1 && !o->tokenizer_path) {
        cli_error("--bos needs --tokenizer (it defines the BOS token)");
        return -1;
    }
    if (o->skip_special && (!o->tokenizer_path || o->print_ids)) {
        cli_error("--skip-special applies to text output: it needs --tokenizer and no --print-ids");
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

/* ======================================================================================================= */
/* Generation                                                                                              */
/* ======================================================================================================= */

/* Reads a whole file ("-": stdin) as bytes; *text is malloc'ed and NUL-terminated (the text may hold NULs:
 * *len counts them). */
static int read_text_file(const char *path, char **text, size_t *len) {
    *text = NULL;
    *len = 0;
    FILE *f = strcmp(path, "-") == 0 ? stdin : fopen(path, "rb");
    if (!f) {
        cli_error("%s: %s", path, strerror(errno));
        return -1;
    }
    size_t n = 0, cap = 4096;
    char *buf = malloc(cap);
    int rc = -1;
    if (!buf) goto oom;
    for (;;) {
        if (cap - n < 2) {
            char *grown = cap > SIZE_MAX / 2 ? NULL : realloc(buf, cap * 2);
            if (!grown) goto oom;
            buf = grown;
            cap *= 2;
        }
        size_t got = fread(buf + n, 1, cap - n - 1, f);
        n += got;
        if (got == 0) break;
    }
    if (ferror(f)) {
        cli_error("%s: read error", path);
        goto done;
    }
    buf[n] = '\0';
    *text = buf;
    *len = n;
    buf = NULL;
    rc = 0;
    goto done;
oom:
    cli_error("%s: out of host memory", path);
done:
    free(buf);
    if (f != stdin) fclose(f);
    return rc;
}

/* Decodes ids into *buf (grown as needed). Returns the status of armt_tokenizer_decode. */
static armt_status decode_grow(armt_tokenizer *tok, const int32_t *ids, size_t n, int skip_special, char **buf,
                               size_t *cap, size_t *len) {
    for (;;) {
        size_t need = 0;
        armt_status st = armt_tokenizer_decode(tok, ids, n, skip_special, *buf, *cap, &need);
        if (st == ARMT_OK) {
            *len = need;
            return ARMT_OK;
        }
        if (st != ARMT_STATUS_INVALID_ARGUMENT || need <= *cap) return st;
        size_t grown_cap = need + 64;
        char *grown = realloc(*buf, grown_cap);
        if (!grown) return ARMT_STATUS_OUT_OF_HOST_MEMORY;
        *buf = grown;
        *cap = grown_cap;
    }
}

/* What the token callback needs: the output mode, the tokens so far, the stop ids. */
typedef struct gen_stream {
    armt_tokenizer *tok;          /* NULL: print ids                                                      */
    int             skip_special;
    int32_t        *ids;          /* the new tokens so far (capacity max_new)                            */
    size_t          n;
    size_t          win;          /* text mode: first token not printed yet; ids[0..win) end on a whole
                                   * character, so ids[win..n) decode on their own to the rest of the text */
    char           *buf;
    size_t          buf_cap;
    const int32_t  *stops;
    size_t          n_stops;
    int32_t         stop_hit;     /* the stop id that ended generation, -1 if none                       */
    armt_status     failed;       /* a decode error (the callback then stops generation)                 */
} gen_stream;

static int ends_with_replacement(const char *s, size_t len) {
    return len >= 3 && (unsigned char)s[len - 3] == 0xEF && (unsigned char)s[len - 2] == 0xBF &&
           (unsigned char)s[len - 1] == 0xBD;
}

/* Text mode: prints the text of ids[win..upto) when it ends on a whole character, or when force is set
 * (end of generation: an incomplete character then shows as U+FFFD, as the tokenizer decodes it). */
static armt_status stream_flush(gen_stream *g, size_t upto, int force) {
    if (upto <= g->win) return ARMT_OK;
    size_t len = 0;
    armt_status st = decode_grow(g->tok, g->ids + g->win, upto - g->win, g->skip_special, &g->buf, &g->buf_cap, &len);
    if (st != ARMT_OK) return st;
    /* A character split across tokens decodes to a trailing U+FFFD until its last byte arrives: hold the
     * text back until then. (A real U+FFFD in the output is only delayed by one token.) */
    if (!force && ends_with_replacement(g->buf, len)) return ARMT_OK;
    fwrite(g->buf, 1, len, stdout);
    g->win = upto;
    return ARMT_OK;
}

static int on_token(int32_t token, void *user_data) {
    gen_stream *g = user_data;
    g->ids[g->n++] = token;
    if (!g->tok) {
        printf("%s%" PRId32, g->n > 1 ? " " : "", token);
    } else {
        armt_status st = stream_flush(g, g->n, 0);
        if (st == ARMT_STATUS_TOKEN_OUT_OF_RANGE) {
            /* the model's vocabulary is larger than the tokenizer's: print the text before it, then [id] */
            st = stream_flush(g, g->n - 1, 1);
            if (st == ARMT_OK) {
                printf("[%" PRId32 "]", token);
                g->win = g->n;
            }
        }
        if (st != ARMT_OK) {
            g->failed = st;
            return 1;
        }
    }
    fflush(stdout);
    for (size_t i = 0; i < g->n_stops; i++)
        if (token == g->stops[i]) {
            g->stop_hit = token;
            return 1;
        }
    return 0;
}

/* The id of a --stop text: a token's text (armt_tokenizer_token_id), else text that encodes to one token. */
static int resolve_stop_text(armt_tokenizer *tok, const char *text, int32_t *id) {
    int32_t found = armt_tokenizer_token_id(tok, text);
    if (found >= 0) {
        *id = found;
        return 0;
    }
    int32_t ids[2];
    size_t n = 0;
    armt_status st = armt_tokenizer_encode(tok, text, strlen(text), 0, 1, ids, 2, &n);
    if (st == ARMT_OK && n == 1) {
        *id = ids[0];
        return 0;
    }
    if (st == ARMT_OK || st == ARMT_STATUS_INVALID_ARGUMENT)
        cli_error("--stop '%s': not one token of the tokenizer (it encodes to %zu tokens); use --stop-id N", text,
                  n);
    else
        cli_report_status("--stop: encoding the text", st, armt_tokenizer_last_error(tok));
    return -1;
}

/* The prompt: text through the tokenizer, or ids from a file or random. *ids is malloc'ed. */
static int read_prompt(const run_opts *o, armt_tokenizer *tok, int vocab, int32_t **ids, size_t *n) {
    *ids = NULL;
    *n = 0;
    if (o->prompt_text || o->prompt_file) {
        char *owned = NULL;
        const char *text = o->prompt_text;
        size_t len = text ? strlen(text) : 0;
        if (o->prompt_file) {
            if (read_text_file(o->prompt_file, &owned, &len) != 0) return -1;
            text = owned;
        }
        int add_bos = o->bos != 0;
        size_t need = 0;
        armt_status st = armt_tokenizer_encode(tok, text, len, add_bos, 1, NULL, 0, &need);
        if (st == ARMT_STATUS_INVALID_ARGUMENT && need > 0) {
            *ids = malloc(need * sizeof **ids);
            if (!*ids) {
                free(owned);
                cli_error("out of host memory for %zu prompt tokens", need);
                return -1;
            }
            st = armt_tokenizer_encode(tok, text, len, add_bos, 1, *ids, need, n);
        } else if (st == ARMT_OK) {
            *n = need; /* nothing to hold: an empty text without BOS */
        }
        free(owned);
        if (st != ARMT_OK) {
            cli_report_status("encoding the prompt", st, armt_tokenizer_last_error(tok));
            free(*ids);
            *ids = NULL;
            return -1;
        }
        if (*n == 0) {
            cli_error("the prompt is empty (no tokens; the tokenizer defines no BOS or --no-bos was given)");
            return -1;
        }
        for (size_t i = 0; i < *n; i++)
            if ((*ids)[i] >= vocab) {
                cli_error("prompt token %zu has id %" PRId32 ", outside the model's vocabulary [0, %d): the "
                          "tokenizer does not belong to this model",
                          i, (*ids)[i], vocab);
                free(*ids);
                *ids = NULL;
                return -1;
            }
        return 0;
    }

    /* ids, with the BOS prepended on request (--bos: the ids the tokenizer's add_bos produces) */
    int32_t bos[8];
    size_t n_bos = 0;
    if (o->bos == 1) {
        armt_status st = armt_tokenizer_encode(tok, "", 0, 1, 0, bos, sizeof bos / sizeof bos[0], &n_bos);
        if (st != ARMT_OK) {
            cli_report_status("--bos: finding the BOS token", st, armt_tokenizer_last_error(tok));
            return -1;
        }
        if (n_bos == 0) {
            cli_error("--bos: the tokenizer defines no BOS token");
            return -1;
        }
    }
    int32_t *v = NULL;
    size_t count = 0;
    if (o->ids_path) {
        if (cli_read_ids_file(o->ids_path, vocab, &v, &count) != 0) return -1;
    } else {
        count = (size_t)o->random_ids;
        v = malloc(count * sizeof *v);
        if (!v) {
            cli_error("out of host memory for %zu ids", count);
            return -1;
        }
        cli_random_ids(o->common.seed, vocab, v, count);
    }
    if (n_bos > 0) {
        int32_t *all = malloc((count + n_bos) * sizeof *all);
        if (!all) {
            free(v);
            cli_error("out of host memory for %zu ids", count + n_bos);
            return -1;
        }
        memcpy(all, bos, n_bos * sizeof *all);
        memcpy(all + n_bos, v, count * sizeof *all);
        free(v);
        v = all;
        count += n_bos;
        for (size_t i = 0; i < n_bos; i++)
            if (bos[i] >= vocab) {
                cli_error("--bos: the BOS id %" PRId32 " is outside the model's vocabulary [0, %d)", bos[i], vocab);
                free(v);
                return -1;
            }
    }
    *ids = v;
    *n = count;
    return 0;
}

static const char *stop_reason(const armt_generate_result *r, const gen_stream *g, char *buf, size_t len) {
    if (g->stop_hit >= 0)
        snprintf(buf, len, "stop token %" PRId32, g->stop_hit);
    else if (r->stopped == 1)
        snprintf(buf, len, "stop token");
    else
        snprintf(buf, len, "--max-new reached");
    return buf;
}

/* Generation mode after the model and context exist. Returns 0 or -1 (message printed). */
static int run_generate(const run_opts *o, armt_ctx *ctx, armt_tokenizer *tok) {
    armt_model *model = armt_ctx_model(ctx);
    const armt_config *cfg = armt_model_config(model);
    int32_t *prompt = NULL, stops[CLI_MAX_STOPS];
    size_t n = 0, n_stops = 0;
    gen_stream g;
    memset(&g, 0, sizeof g);
    g.stop_hit = -1;
    int rc = -1;
    armt_status st;

    /* stops, checked against the model's vocabulary */
    for (size_t i = 0; i < o->n_stop_ids; i++) stops[n_stops++] = o->stop_ids[i];
    for (size_t i = 0; i < o->n_stop_texts; i++)
        if (resolve_stop_text(tok, o->stop_texts[i], &stops[n_stops++]) != 0) goto done;
    for (size_t i = 0; i < n_stops; i++)
        if (stops[i] >= cfg->vocab_size) {
            cli_error("stop id %" PRId32 " is outside the model's vocabulary [0, %d)", stops[i], cfg->vocab_size);
            goto done;
        }

    if (read_prompt(o, tok, cfg->vocab_size, &prompt, &n) != 0) goto done;

    if (o->load_memory) {
        st = armt_ctx_memory_load(ctx, o->load_memory);
        if (st != ARMT_OK) {
            char what[600];
            snprintf(what, sizeof what, "loading the memory state '%s'", o->load_memory);
            cli_report_status(what, st, armt_ctx_last_error(ctx));
            goto done;
        }
    }
    if (o->verbosity > CLI_QUIET && o->temperature <= 0.0 && o->sampling_given)
        cli_error("note: --top-k/--top-p have no effect with greedy decoding (give --temperature T > 0)");

    g.tok = o->print_ids ? NULL : tok;
    g.skip_special = o->skip_special;
    g.stops = stops;
    g.n_stops = n_stops;
    g.ids = malloc(((size_t)o->max_new + 1) * sizeof *g.ids);
    if (!g.ids) {
        cli_error("out of host memory for %d tokens", o->max_new);
        goto done;
    }

    armt_generate_params gp = armt_generate_default_params();
    gp.schedule = o->schedule;
    gp.max_new_tokens = o->max_new;
    gp.stop_id = -1; /* every stop id is checked by the callback, so several can be given */
    gp.temperature = (float)o->temperature;
    gp.top_k = o->top_k;
    gp.top_p = (float)o->top_p;
    gp.seed = o->sample_seed;
    gp.on_token = on_token;
    gp.user_data = &g;
    armt_generate_result res;
    memset(&res, 0, sizeof res);
    st = armt_generate(ctx, prompt, n, &gp, NULL, 0, &res);
    /* whatever came before an error is on stdout already: end it (and the held-back text) properly */
    if (g.tok && g.failed == ARMT_OK) {
        armt_status fs = stream_flush(&g, g.n, 1);
        if (fs != ARMT_OK && g.failed == ARMT_OK) g.failed = fs;
    }
    if (g.n > 0 || o->max_new > 0) putchar('\n');
    fflush(stdout);
    if (st != ARMT_OK) {
        cli_report_status("generation", st, armt_ctx_last_error(ctx));
        goto done;
    }
    if (g.failed != ARMT_OK) {
        cli_report_status("decoding the new tokens", g.failed, armt_tokenizer_last_error(tok));
        goto done;
    }
    if (ferror(stdout)) {
        cli_error("writing to stdout failed");
        goto done;
    }

    if (o->verbosity > CLI_QUIET) {
        size_t earlier = res.prompt_tokens - res.tail_tokens;
        uint64_t L = (uint64_t)cfg->segment_size;
        char why[64];
        if (earlier == 0)
            fprintf(stderr, "prompt:   %zu tokens, all in the generation segment (segment size %d)\n",
                    res.prompt_tokens, cfg->segment_size);
        else
            fprintf(stderr,
                    "prompt:   %zu tokens: %zu in %" PRIu64 " earlier segment%s (%s schedule) + %zu in the "
                    "generation segment\n",
                    res.prompt_tokens, earlier, earlier / L, earlier / L == 1 ? "" : "s", schedule_name(o->schedule),
                    res.tail_tokens);
        fprintf(stderr, "prefill:  %.4f s (%.1f tokens/s)\n", res.prefill_seconds,
                res.prefill_seconds > 0 ? (double)res.prompt_tokens / res.prefill_seconds : 0.0);
        if (res.n_tokens > 1)
            fprintf(stderr, "decode:   %zu tokens after the first in %.4f s (%.1f tokens/s)\n", res.n_tokens - 1,
                    res.decode_seconds,
                    res.decode_seconds > 0 ? (double)(res.n_tokens - 1) / res.decode_seconds : 0.0);
        else
            fprintf(stderr, "decode:   no tokens after the first (nothing to time)\n");
        fprintf(stderr, "generated: %zu token%s (%s)\n", res.n_tokens, res.n_tokens == 1 ? "" : "s",
                stop_reason(&res, &g, why, sizeof why));
    }

    if (o->save_memory) {
        st = armt_ctx_memory_save(ctx, o->save_memory);
        if (st != ARMT_OK) {
            char what[600];
            snprintf(what, sizeof what, "saving the memory state to '%s'", o->save_memory);
            cli_report_status(what, st, armt_ctx_last_error(ctx));
            goto done;
        }
        if (o->verbosity > CLI_QUIET) fprintf(stderr, "saved:    memory state to %s\n", o->save_memory);
    }
    rc = 0;
done:
    free(prompt);
    free(g.ids);
    free(g.buf);
    return rc;
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
    armt_tokenizer *tok = NULL;
    int32_t *ids = NULL;
    size_t n = 0;
    float *logits = NULL, *hidden = NULL, *w_mem = NULL, *z = NULL, *w_snap = NULL, *z_snap = NULL;
    uint8_t *written_snap = NULL;
    armt_status st;
    armt_device_info dev;
    char label[600], b1[32], b2[32], b3[32];

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
        cli_error("note: the model's vocabulary (%d) is larger than the tokenizer's (%d): ids the tokenizer does "
                  "not know are printed as [id]",
                  cfg->vocab_size, tok_vocab);
    st = armt_ctx_create(model, NULL, &ctx);
    if (st != ARMT_OK) {
        cli_report_status("creating the context", st, armt_last_error());
        goto done;
    }

    if (o.generate) {
        if (o.verbosity > CLI_QUIET) {
            cli_model_label(&o.common, label, sizeof label);
            fprintf(stderr,
                    "model:    %s: %d layers, hidden %d, heads %d/%d, vocab %d; segment %d + %d memory tokens; %s\n",
                    label, cfg->n_layers, cfg->hidden_size, cfg->n_heads, cfg->n_kv_heads, cfg->vocab_size,
                    cfg->segment_size, cfg->num_mem_tokens,
                    o.common.precision == ARMT_PRECISION_BF16 ? "bf16" : "fp32");
            fprintf(stderr, "device:   %s (%s)%s%s\n", dev.name, dev.platform_name, dev.device_version[0] ? ", " : "",
                    dev.device_version);
        }
        rc = run_generate(&o, ctx, tok) == 0 ? 0 : 1;
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
    printf("model:    %s: %d layers, hidden %d, heads %d/%d, vocab %d; segment %d + %d memory tokens; %s\n",
           label, cfg->n_layers, cfg->hidden_size, cfg->n_heads, cfg->n_kv_heads, cfg->vocab_size,
           cfg->segment_size, cfg->num_mem_tokens, o.common.precision == ARMT_PRECISION_BF16 ? "bf16" : "fp32");
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
                                        "precision", o.common.precision == ARMT_PRECISION_BF16 ? "bf16" : "fp32",
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
    armt_tokenizer_free(tok);
    armt_ctx_free(ctx);
    armt_model_free(model);
    armt_runtime_free(rt);
    return rc;
}
