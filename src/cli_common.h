/*
 * cli_common.h - helpers shared by the command-line programs (src/armt-run.c, bench/clbench.c).
 *
 * Everything here sits on the public API (include/armt.h) only. The helpers print their own diagnostics on
 * stderr, prefixed with the program name given to cli_init(), and return 0 on success and -1 on failure, so
 * that a program's main() can stay a flat sequence of "if (helper(...) != 0) goto done;".
 *
 * Options common to both programs are parsed by cli_common_option(): a program adds CLI_COMMON_LONG_OPTIONS
 * to its getopt_long table and hands every option it does not know itself to that function.
 */
#ifndef ARMT_CLI_COMMON_H
#define ARMT_CLI_COMMON_H

#include <getopt.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "armt.h"

/* printf-style argument checking where the compiler has it. */
#if defined(__GNUC__)
#define CLI_PRINTF(fmt_index, first_arg) __attribute__((format(printf, fmt_index, first_arg)))
#else
#define CLI_PRINTF(fmt_index, first_arg)
#endif

/* ======================================================================================================= */
/* Program name, logging                                                                                   */
/* ======================================================================================================= */

/* Records the program name used as the prefix of every message (basename of argv0). */
void cli_init(const char *argv0);
const char *cli_progname(void);

/* printf-style message on stderr: "prog: message\n". */
void cli_error(const char *fmt, ...) CLI_PRINTF(1, 2);

/* Verbosity of the programs: what the library log callback lets through. The library's error messages
 * are also returned by the failing call and printed by the programs, so its log shows them only from -v.
 *   0 (-q)   nothing              1 (default)  warnings
 *   2 (-v)   + errors, info       3 (-vv)      + debug                                                     */
enum { CLI_QUIET = 0, CLI_NORMAL = 1, CLI_VERBOSE = 2, CLI_DEBUG = 3 };

/* Installs a stderr logger for the library (armt_log_set) at the given verbosity. */
void cli_log_install(int verbosity);

/* Prints "prog: what: STATUS_NAME: detail" for a failed library call. detail is the library's message
 * (armt_*_last_error); an empty or NULL detail is left out. */
void cli_report_status(const char *what, armt_status status, const char *detail);

/* ======================================================================================================= */
/* Strict number parsing                                                                                   */
/* ======================================================================================================= */

/* Each parser accepts the whole string or nothing: "12x", "", " 12", "1e3" (for integers) are rejected, as
 * are values outside [min, max] and overflow. opt names the option in the message ("--tokens"). */
int cli_parse_i64(const char *opt, const char *text, int64_t min, int64_t max, int64_t *out);
int cli_parse_int(const char *opt, const char *text, int min, int max, int *out);
/* Unsigned 64-bit (seeds): decimal or 0x-prefixed hexadecimal; a minus sign is rejected. */
int cli_parse_u64(const char *opt, const char *text, uint64_t *out);
/* A finite double in [min, max]. */
int cli_parse_double(const char *opt, const char *text, double min, double max, double *out);
/* text one of names[0 .. n-1]: *out = values[i]; otherwise an error naming opt and the choices, -1. */
int cli_parse_choice(const char *opt, const char *text, const char *const *names, const int *values, size_t n,
                     int *out);
/* The options every program handles alike: -q, -v (more each time), -h (usage to stdout), a missing argument
 * and an unknown option. Returns 1 for -h, -1 for an error (reported), 0 otherwise. */
int cli_standard_option(int opt, char **argv, int *verbosity, void (*usage)(FILE *));
/* After getopt: -1 (reported) when a non-option argument is left. */
int cli_no_operands(int argc, char **argv);
/* Loads (save = 0) or saves (1) the context's memory state at path; a failure is reported, -1. */
int cli_memory_file(armt_ctx *ctx, const char *path, int save);
/* Prints the context's profile (armt_ctx_profile, armt_ctx_profile_gemm) on stderr under the heading what:
 * each kernel's device time and share, then each GEMM site's time and TFLOP/s; with per > 0 also the
 * milliseconds per unit (per of them, e.g. the decode's new tokens, unit "token"; or the rounds of a batch's
 * decode, "round"). Nothing recorded: one line says so. */
void cli_print_profile(const armt_ctx *ctx, const char *what, double per, const char *unit);
/* A comma-separated list of integers in [min, max] ("64,256,1024"); *out is malloc'ed. Empty items and
 * a trailing comma are rejected. */
int cli_parse_i64_list(const char *opt, const char *text, int64_t min, int64_t max, int64_t **out,
                       size_t *count);

/* ======================================================================================================= */
/* Options shared by the programs                                                                          */
/* ======================================================================================================= */

/* Long-option codes, outside the range of any short option character. */
enum {
    CLI_OPT_PLATFORM = 0x1000,
    CLI_OPT_DEVICE,
    CLI_OPT_LIST_DEVICES,
    CLI_OPT_PRESET,
    CLI_OPT_MODEL,
    CLI_OPT_SEED,
    CLI_OPT_WMV_STD,
    CLI_OPT_SEGMENT,
    CLI_OPT_MEM,
    CLI_OPT_BASE_MODEL,
    CLI_OPT_VARIANT,
    CLI_OPT_MEM_HEADS,
    CLI_OPT_SINK,
    CLI_OPT_SLIDING_WINDOW,
    CLI_OPT_FP32_GEMM,
};

/* Entries for a getopt_long table (put them before the terminating zero entry). */
#define CLI_COMMON_LONG_OPTIONS                                                                             \
    {"platform", required_argument, NULL, CLI_OPT_PLATFORM},                                                \
        {"device", required_argument, NULL, CLI_OPT_DEVICE},                                                \
        {"list-devices", no_argument, NULL, CLI_OPT_LIST_DEVICES},                                          \
        {"preset", required_argument, NULL, CLI_OPT_PRESET},                                                \
        {"model", required_argument, NULL, CLI_OPT_MODEL}, {"seed", required_argument, NULL, CLI_OPT_SEED}, \
        {"wmv-std", required_argument, NULL, CLI_OPT_WMV_STD},                                              \
        {"segment", required_argument, NULL, CLI_OPT_SEGMENT},                                              \
        {"mem", required_argument, NULL, CLI_OPT_MEM},                                                      \
        {"base-model", required_argument, NULL, CLI_OPT_BASE_MODEL},                                        \
        {"variant", required_argument, NULL, CLI_OPT_VARIANT},                                              \
        {"mem-heads", required_argument, NULL, CLI_OPT_MEM_HEADS},                                          \
        {"sink", no_argument, NULL, CLI_OPT_SINK},                                                          \
        {"sliding-window", no_argument, NULL, CLI_OPT_SLIDING_WINDOW}, {                                    \
        "fp32-gemm", required_argument, NULL, CLI_OPT_FP32_GEMM                                             \
    }

/* What the shared options select: the device, and the model (a preset with random weights, or files). */
typedef struct cli_common {
    const char *platform;   /* --platform: index or name substring; NULL: library default          */
    const char *device;     /* --device:   index or name substring; NULL: library default          */
    int list_devices;       /* --list-devices given                                                 */
    const char *preset;     /* --preset NAME; NULL when --model is given                            */
    const char *model_path; /* --model DIR (or one .safetensors file)                               */
    uint64_t seed;          /* --seed: random weights (and the programs' random ids); default 0     */
    int seed_given;
    double wmv_std;           /* --wmv-std: std of W_mv when it is initialised; default 0 (reference) */
    int segment;              /* --segment L; 0: keep the preset's / checkpoint's value               */
    int mem;                  /* --mem M;     0: keep                                                  */
    armt_precision precision; /* weight precision of the model (clbench: one per --precision entry)    */
    const char *base_model;   /* --base-model DIR: the base config of a checkpoint naming base_model_name */
    int variant;              /* --variant (presets): -1 keep the preset's, else an armt_variant         */
    int mem_heads;            /* --mem-heads H (presets): 0 keep                                          */
    int sink;                 /* --sink (presets): a sink row before every segment (use_sink)             */
    int sliding_window;       /* --sliding-window (presets): src/armt_sw.py's window                      */
    int fp32_gemm;            /* --fp32-gemm: an armt_fp32_gemm (default AUTO: the library decides)       */
} cli_common;

void cli_common_init(cli_common *c);

/* Handles one option returned by getopt_long. Returns 1 when the option was one of the shared ones and
 * was valid, 0 when it is not a shared option (the caller handles it), -1 when its argument is invalid
 * (the message is printed). */
int cli_common_option(cli_common *c, int opt, const char *arg);

/* Checks the combination after parsing (--preset and --model exclusive, --wmv-std only with a preset...).
 * default_preset is used when neither --preset nor --model is given (NULL: one of them is required). */
int cli_common_finish(cli_common *c, const char *default_preset);

/* Help text of the shared options, indented like the programs' own help. seed_also_ids: say that --seed
 * also seeds the program's random token ids. */
void cli_common_help(FILE *out, int seed_also_ids);

/* ======================================================================================================= */
/* Devices, runtime, model                                                                                 */
/* ======================================================================================================= */

/* Prints every OpenCL device as a table (platform idx, device idx, type, name, vendor, driver, OpenCL C,
 * global mem, max alloc, local mem, fp16/fp64). Returns 0, or -1 when the listing failed. */
int cli_list_devices(FILE *out);

/* "GPU", "CPU", "ACC" or "?" */
const char *cli_device_type(const armt_device_info *info);

/* Creates the runtime on the selected device. */
int cli_open_runtime(const cli_common *c, armt_runtime **rt);

/* Loads the selected model (random preset weights or files) with the --segment/--mem overrides. */
int cli_open_model(const cli_common *c, armt_runtime *rt, armt_model **model);

/* The same, and for a preset whose vocab_size is below min_vocab (e.g. the vocabulary of a tokenizer the
 * program will use), creates the random model with vocab_size = min_vocab instead. *raised_from (may be
 * NULL) receives the preset's own vocab_size when it was raised, else 0. min_vocab <= 0 and checkpoints
 * (--model) are left alone: a checkpoint's vocabulary is fixed by its tensors. */
int cli_open_model_ex(const cli_common *c, armt_runtime *rt, int min_vocab, armt_model **model,
                      int *raised_from);

/* A short description of the model source: "preset tiny (seed 0)" or the path. */
void cli_model_label(const cli_common *c, char *buf, size_t len);

/* ======================================================================================================= */
/* Token ids                                                                                               */
/* ======================================================================================================= */

/* Reads token ids from a text file: integers separated by whitespace and/or commas; '#' starts a comment
 * that runs to the end of the line. Every id must lie in [0, vocab_size). Errors name the file, line and
 * column ("ids.txt:3:7: 'abc' is not a token id"). *ids is malloc'ed. */
int cli_read_ids_file(const char *path, int vocab_size, int32_t **ids, size_t *count);

/* Fills ids[0..n) with uniform ids in [0, vocab_size), deterministic for a seed. */
void cli_random_ids(uint64_t seed, int vocab_size, int32_t *ids, size_t n);

/* ======================================================================================================= */
/* Small utilities                                                                                         */
/* ======================================================================================================= */

/* Monotonic clock in seconds (CLOCK_MONOTONIC; never jumps). */
double cli_now(void);

/* Human-readable bytes with binary units: "812 B", "1.50 KiB", "3.25 GiB". Returns buf. */
const char *cli_format_bytes(uint64_t bytes, char *buf, size_t len);

/* Ceil(a / b) for positive sizes. */
static inline uint64_t cli_div_up(uint64_t a, uint64_t b) { return (a + b - 1) / b; }

#endif /* ARMT_CLI_COMMON_H */
