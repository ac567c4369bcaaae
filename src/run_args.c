/*
 * run_args.c - armt-run's command line: the help text and the option parser, which also checks that the
 * options fit the mode (forward or generation) they select. See run.h.
 */
#include "config.h"

#include "run.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void usage(FILE *out) {
    const char *p = cli_progname();
    fprintf(
        out,
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
        "written); the last segment, full or partial, runs without memory tokens and without writes, "
        "reading\n"
        "the memory on every token, and new tokens follow one at a time with a KV cache. The new tokens are\n"
        "printed on stdout as they come: as text with --tokenizer, else as ids separated by blanks (always\n"
        "followed by a newline); the model, device and timing go to stderr.\n"
        "\n"
        "Input:\n"
        "      --ids FILE         token ids: integers separated by blanks and/or commas, '#' starts a\n"
        "                         comment; every id in [0, vocab); FILE '-' reads stdin. In generation mode\n"
        "                         they are the prompt. Several --ids run as one batch:\n"
        "                         each file a document with its own memory, in one schedule (see below);\n"
        "                         in generation mode (armt_generate_batch) each prints its new tokens as\n"
        "                         one line 'N: ids' (N from 0, in the order given; --stop-id ends each)\n"
        "      --prompt-ids FILE  the same as --ids (reads better in generation mode)\n"
        "      --random-ids N     N uniform random ids from --seed instead\n"
        "      --prompt TEXT      generation prompt as UTF-8 text, encoded with --tokenizer (implies\n"
        "                         --generate); special tokens written literally, e.g. <|eot_id|>, become\n"
        "                         their ids\n"
        "      --prompt-file FILE the prompt text read from FILE ('-': stdin), e.g. a long document "
        "(implies\n"
        "                         --generate)\n"
        "      --tokenizer FILE   a HF tokenizer.json (byte-level BPE, LLaMA-3 family): encodes --prompt "
        "and\n"
        "                         decodes the new tokens to text. With --preset, a preset vocabulary "
        "smaller\n"
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
        "      --profile          device time per kernel and per GEMM site (OpenCL profiling events) on\n"
        "                         stderr: of the forward call, or in generation mode of the decode (the new\n"
        "                         tokens after the first, also per token; with several --prompt-ids per\n"
        "                         round of one token for each document). Events cost host time: the\n"
        "                         call's own timing is then a little longer\n"
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
    cli_pipeline_help(out);
    fprintf(out, "                         (forward mode with --save-memory/--load-memory; generation\n"
                 "                         is not supported there yet)\n");
    fprintf(
        out,
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
        "  memory.W_mem    [layers, d_key, hidden]  memory state after the call (ARMT schedules only);\n"
        "                  with H > 1 memory heads (amt variant) [layers, H, d_key/H, hidden/H]; only the\n"
        "                  layers that have a memory, in order (wrap_layers = false layers have no block)\n"
        "  memory.z        [layers, d_key]       normaliser after the call (ARMT schedules; [layers, H,\n"
        "                  d_key/H] with H > 1; absent when the model has use_denom = false)\n"
        "  input_ids       [n] (I32)             the ids that were run\n"
        "With several --ids (a batch), the tensors of document N (from 0, in the order given) are named\n"
        "docN.logits, docN.logits_last, docN.hidden, docN.W_mem, docN.z and docN.input_ids.\n"
        "Without an explicit --output, --save-outputs saves both logits and hidden: the input is then run\n"
        "twice (logits, then hidden states) from the same starting memory, which ends in the same state.\n"
        "__metadata__ holds generator, libarmt_version, model, schedule, n_tokens, segment_size,\n"
        "num_mem_tokens, d_key, precision (and variant, memory_heads for the amt and armt variants).\n"
        "\n"
        "Exit status: 0 on success, 1 when a step failed, 2 on a usage error.\n"
        "\n"
        "Examples (forward):\n"
        "  %s --preset tiny --seed 1 --random-ids 100\n"
        "  %s --preset tiny --seed 1 --wmv-std 0.02 --ids ids.txt --schedule sequential --stats\n"
        "  %s --model ./armt-checkpoint --segment 1024 --mem 128 --ids ids.txt --save-outputs "
        "out.safetensors\n"
        "  %s --model ./ckpt --ids part1.txt --save-memory state.bin && \\\n"
        "      %s --model ./ckpt --ids part2.txt --load-memory state.bin\n"
        "  %s --list-devices\n"
        "Examples (generation):\n"
        "  %s --preset tiny --tokenizer tests/data/tokenizer/tokenizer.json --prompt \"Hello world\" "
        "--max-new 16\n"
        "  %s --model ./ckpt --tokenizer ./ckpt/tokenizer.json --prompt-file story.txt --max-new 64 \\\n"
        "      --stop '<|eot_id|>' --skip-special\n"
        "  %s --model ./ckpt --tokenizer ./ckpt/tokenizer.json --prompt \"Once upon a time\" --max-new 100 "
        "\\\n"
        "      --temperature 0.8 --top-k 40 --top-p 0.95 --sample-seed 7\n"
        "  %s --preset tiny --seed 1 --wmv-std 0.02 --prompt-ids ids.txt --max-new 8 --stop-id 2\n",
        p, p, p, p, p, p, p, p, p, p);
}

int run_parse_args(int argc, char **argv, run_opts *o) {
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
        OPT_PROFILE,
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
        CLI_PIPELINE_LONG_OPTIONS,
        {"ids", required_argument, NULL, OPT_IDS},
        {"prompt-ids", required_argument, NULL, OPT_PROMPT_IDS},
        {"random-ids", required_argument, NULL, OPT_RANDOM_IDS},
        {"schedule", required_argument, NULL, OPT_SCHEDULE},
        {"output", required_argument, NULL, OPT_OUTPUT},
        {"save-outputs", required_argument, NULL, OPT_SAVE_OUTPUTS},
        {"save-memory", required_argument, NULL, OPT_SAVE_MEMORY},
        {"load-memory", required_argument, NULL, OPT_LOAD_MEMORY},
        {"stats", no_argument, NULL, OPT_STATS},
        {"profile", no_argument, NULL, OPT_PROFILE},
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
        if (common == 0) common = cli_pipeline_option(&o->pipe, opt, optarg);
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
            if (o->n_ids_paths == CLI_MAX_DOCS) {
                cli_error("more than %d --ids files", CLI_MAX_DOCS);
                return -1;
            }
            if (!o->ids_path) o->ids_path = optarg;
            o->ids_paths[o->n_ids_paths++] = optarg;
            break;
        case OPT_RANDOM_IDS:
            if (cli_parse_i64("--random-ids", optarg, 1, INT32_MAX, &o->random_ids) != 0) return -1;
            break;
        case OPT_PRECISION: {
            static const char *const names[] = {"fp32", "bf16"};
            static const int values[] = {ARMT_PRECISION_FP32, ARMT_PRECISION_BF16};
            int v;
            if (cli_parse_choice("--precision", optarg, names, values, 2, &v) != 0) return -1;
            o->common.precision = (armt_precision)v;
            break;
        }
        case OPT_SCHEDULE: {
            static const char *const names[] = {"diagonal", "sequential", "full"};
            static const int values[] = {ARMT_SCHEDULE_DIAGONAL, ARMT_SCHEDULE_SEQUENTIAL,
                                         ARMT_SCHEDULE_FULL};
            int v;
            if (cli_parse_choice("--schedule", optarg, names, values, 3, &v) != 0) return -1;
            o->schedule = (armt_schedule)v;
            break;
        }
        case OPT_OUTPUT: {
            static const char *const names[] = {"logits", "last", "hidden", "none"};
            static const int values[] = {ARMT_OUTPUT_LOGITS_ALL, ARMT_OUTPUT_LOGITS_LAST, ARMT_OUTPUT_HIDDEN,
                                         ARMT_OUTPUT_NONE};
            int v;
            if (cli_parse_choice("--output", optarg, names, values, 4, &v) != 0) return -1;
            o->output = (armt_output)v;
            o->output_given = 1;
            break;
        }
        case OPT_SAVE_OUTPUTS: o->save_outputs = optarg; break;
        case OPT_SAVE_MEMORY: o->save_memory = optarg; break;
        case OPT_LOAD_MEMORY: o->load_memory = optarg; break;
        case OPT_STATS: o->stats = 1; break;
        case OPT_PROFILE: o->profile = 1; break;
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
        default: {
            const int r = cli_standard_option(opt, argv, &o->verbosity, usage);
            if (r != 0) return r;
        }
        }
    }
    if (cli_no_operands(argc, argv) != 0) return -1;
    if (cli_common_finish(&o->common, NULL) != 0) return -1;
    if (o->common.list_devices) return 0;

    if (!o->generate) {
        /* forward mode */
        if (o->gen_only_opt) {
            cli_error("--%s is a generation option: add --generate or --max-new N (see --help)",
                      o->gen_only_opt);
            return -1;
        }
        if (o->tokenizer_path) {
            cli_error(
                "--tokenizer is used in generation mode only: add --generate or --max-new N, and --prompt");
            return -1;
        }
        if (!o->ids_path == !o->random_ids) {
            cli_error(o->ids_path ? "--ids and --random-ids exclude each other"
                                  : "no input: give --ids FILE or --random-ids N (see --help)");
            return -1;
        }
        if (o->n_ids_paths > 1 && o->schedule == ARMT_SCHEDULE_FULL) {
            cli_error("several --ids run as one batch of ARMT documents: --schedule diagonal or sequential");
            return -1;
        }
        if (o->n_ids_paths > 1 && (o->load_memory || o->save_memory)) {
            cli_error("--%s-memory takes one document: give one --ids file",
                      o->load_memory ? "load" : "save");
            return -1;
        }
        if (o->n_ids_paths > 1 && o->profile) {
            cli_error(
                "--profile: a batch's forward call records no profile (give one --ids file; in generation "
                "mode --profile covers a batch's decode)");
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
    int inputs =
        (o->prompt_text != NULL) + (o->prompt_file != NULL) + (o->n_ids_paths > 0) + (o->random_ids > 0);
    if (inputs != 1) {
        cli_error(
            inputs
                ? "give one prompt: --prompt, --prompt-file, --prompt-ids/--ids and --random-ids exclude "
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
        cli_error("--stop '%s' needs --tokenizer to find the token's id (or use --stop-id N)",
                  o->stop_texts[0]);
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
    if (o->n_ids_paths > 1 && (o->load_memory || o->save_memory || o->n_stop_texts)) {
        cli_error(
            "several --prompt-ids generate as one batch (ids out): --load-memory, --save-memory and --stop "
            "TEXT take one document");
        return -1;
    }
    return 0;
}
