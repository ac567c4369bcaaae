/*
 * cli_common.c - helpers shared by armt-run and clbench. See cli_common.h.
 */
#include "config.h"

#include "cli_common.h"

#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

/* ======================================================================================================= */
/* Program name, logging                                                                                   */
/* ======================================================================================================= */

static const char *progname = "armt";

void cli_init(const char *argv0) {
    if (!argv0 || !*argv0) return;
    const char *slash = strrchr(argv0, '/');
    progname = slash ? slash + 1 : argv0;
    /* libtool wrappers run the real binary as "lt-NAME" */
    if (strncmp(progname, "lt-", 3) == 0 && progname[3]) progname += 3;
}

const char *cli_progname(void) { return progname; }

void cli_error(const char *fmt, ...) {
    va_list ap;
    fprintf(stderr, "%s: ", progname);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
}

/* The threshold lives in a static: the callback's user_data points at it. */
static int log_threshold = ARMT_LOG_WARN;

static void log_to_stderr(armt_log_level level, const char *message, void *user_data) {
    static const char *const names[] = {"error", "warning", "info", "debug"};
    int threshold = *(const int *)user_data;
    if ((int)level > threshold) return;
    /* Every failing call also returns its message, which the programs print themselves: show the
     * library's own error lines only from -v on, to avoid saying everything twice. */
    if (level == ARMT_LOG_ERROR && threshold < ARMT_LOG_INFO) return;
    const char *name = (int)level >= 0 && (int)level <= 3 ? names[level] : "log";
    fprintf(stderr, "%s: libarmt %s: %s\n", progname, name, message ? message : "");
}

void cli_log_install(int verbosity) {
    if (verbosity <= CLI_QUIET)
        log_threshold = ARMT_LOG_ERROR; /* and errors are left to the programs' own messages */
    else if (verbosity == CLI_NORMAL)
        log_threshold = ARMT_LOG_WARN;
    else if (verbosity == CLI_VERBOSE)
        log_threshold = ARMT_LOG_INFO;
    else
        log_threshold = ARMT_LOG_DEBUG;
    armt_log_set(log_to_stderr, &log_threshold);
}

void cli_report_status(const char *what, armt_status status, const char *detail) {
    if (detail && *detail)
        cli_error("%s: %s: %s", what, armt_status_str(status), detail);
    else
        cli_error("%s: %s", what, armt_status_str(status));
}

/* ======================================================================================================= */
/* Strict number parsing                                                                                   */
/* ======================================================================================================= */

int cli_parse_i64(const char *opt, const char *text, int64_t min, int64_t max, int64_t *out) {
    /* strtoll skips leading blanks and accepts a lone sign; insist on [-]digits and nothing else. */
    const char *p = text ? text : "";
    if (*p == '-' || *p == '+') p++;
    if (!isdigit((unsigned char)*p)) {
        cli_error("%s: '%s' is not an integer", opt, text ? text : "");
        return -1;
    }
    errno = 0;
    char *end = NULL;
    long long v = strtoll(text, &end, 10);
    if (*end != '\0') {
        cli_error("%s: '%s' is not an integer (unexpected '%s')", opt, text, end);
        return -1;
    }
    if (errno == ERANGE || v < min || v > max) {
        if (min == 0 && text[0] == '-')
            cli_error("%s: '%s' must not be negative", opt, text);
        else
            cli_error("%s: %s is out of range [%" PRId64 ", %" PRId64 "]", opt, text, min, max);
        return -1;
    }
    *out = (int64_t)v;
    return 0;
}

int cli_parse_int(const char *opt, const char *text, int min, int max, int *out) {
    int64_t v;
    if (cli_parse_i64(opt, text, min, max, &v) != 0) return -1;
    *out = (int)v;
    return 0;
}

int cli_parse_u64(const char *opt, const char *text, uint64_t *out) {
    const char *p = text ? text : "";
    int base = 10;
    if (p[0] == '0' && (p[1] == 'x' || p[1] == 'X')) {
        base = 16;
        p += 2;
    }
    if (!isxdigit((unsigned char)*p) || (base == 10 && !isdigit((unsigned char)*p))) {
        if (*p == '-')
            cli_error("%s: '%s' must not be negative", opt, text);
        else
            cli_error("%s: '%s' is not a non-negative integer", opt, text ? text : "");
        return -1;
    }
    errno = 0;
    char *end = NULL;
    unsigned long long v = strtoull(p, &end, base);
    if (*end != '\0') {
        cli_error("%s: '%s' is not an integer (unexpected '%s')", opt, text, end);
        return -1;
    }
    if (errno == ERANGE) {
        cli_error("%s: %s does not fit 64 bits", opt, text);
        return -1;
    }
    *out = (uint64_t)v;
    return 0;
}

int cli_parse_choice(const char *opt, const char *text, const char *const *names, const int *values, size_t n,
                     int *out) {
    char list[256] = "";
    for (size_t i = 0; i < n; i++) {
        if (text && strcmp(text, names[i]) == 0) {
            *out = values[i];
            return 0;
        }
        snprintf(list + strlen(list), sizeof list - strlen(list), "%s%s", i ? ", " : "", names[i]);
    }
    cli_error("%s: '%s' is not one of %s", opt, text ? text : "", list);
    return -1;
}

int cli_standard_option(int opt, char **argv, int *verbosity, void (*usage)(FILE *)) {
    switch (opt) {
    case 'q': *verbosity = CLI_QUIET; return 0;
    case 'v':
        if (*verbosity < CLI_DEBUG) *verbosity = *verbosity < CLI_NORMAL ? CLI_VERBOSE : *verbosity + 1;
        return 0;
    case 'h': usage(stdout); return 1;
    case ':': cli_error("option '%s' needs an argument (see --help)", argv[optind - 1]); return -1;
    default: cli_error("unknown option '%s' (see --help)", argv[optind - 1]); return -1;
    }
}

int cli_no_operands(int argc, char **argv) {
    if (optind >= argc) return 0;
    cli_error("unexpected argument '%s' (see --help)", argv[optind]);
    return -1;
}

void cli_print_profile(const armt_ctx *ctx, const char *what, double per, const char *unit) {
    enum { CAP = 64 };
    const char *names[CAP];
    double sec[CAP], flop[CAP], total = 0.0;
    size_t n = armt_ctx_profile(ctx, names, sec, CAP);
    if (n > CAP) n = CAP;
    for (size_t i = 0; i < n; i++)
        total += sec[i];
    if (n == 0 || total <= 0.0) {
        fprintf(stderr, "profile:  %s: no device time recorded\n", what);
        return;
    }
    if (per > 0)
        fprintf(stderr, "profile:  %s: device time per kernel, %.4f s in all (ms/%s: per %s)\n", what, total,
                unit, strcmp(unit, "token") == 0 ? "new token" : unit);
    else
        fprintf(stderr, "profile:  %s: device time per kernel, %.4f s in all\n", what, total);
    for (size_t i = 0; i < n; i++) {
        fprintf(stderr, "  %-36s %10.6f s %5.1f%%", names[i], sec[i], 100.0 * sec[i] / total);
        if (per > 0) fprintf(stderr, " %9.4f ms/%s", 1e3 * sec[i] / per, unit);
        fputc('\n', stderr);
    }
    size_t ng = armt_ctx_profile_gemm(ctx, names, sec, flop, CAP);
    if (ng > CAP) ng = CAP;
    if (ng > 0) fprintf(stderr, "profile:  GEMMs by site\n");
    for (size_t i = 0; i < ng; i++) {
        fprintf(stderr, "  %-36s %10.6f s %8.2f TFLOP/s", names[i], sec[i],
                sec[i] > 0 ? 1e-12 * flop[i] / sec[i] : 0.0);
        if (per > 0) fprintf(stderr, " %9.4f ms/%s", 1e3 * sec[i] / per, unit);
        fputc('\n', stderr);
    }
}

int cli_memory_file(armt_ctx *ctx, const char *path, int save) {
    armt_status st = save ? armt_ctx_memory_save(ctx, path) : armt_ctx_memory_load(ctx, path);
    if (st == ARMT_OK) return 0;
    char what[600];
    snprintf(what, sizeof what, save ? "saving the memory state to '%s'" : "loading the memory state '%s'",
             path);
    cli_report_status(what, st, armt_ctx_last_error(ctx));
    return -1;
}

int cli_parse_double(const char *opt, const char *text, double min, double max, double *out) {
    const char *p = text ? text : "";
    if (!*p || isspace((unsigned char)*p)) {
        cli_error("%s: '%s' is not a number", opt, p);
        return -1;
    }
    errno = 0;
    char *end = NULL;
    double v = strtod(p, &end);
    if (*end != '\0') {
        cli_error("%s: '%s' is not a number (unexpected '%s')", opt, p, end);
        return -1;
    }
    if (errno == ERANGE || !isfinite(v)) {
        cli_error("%s: '%s' is not a finite number", opt, p);
        return -1;
    }
    if (v < min || v > max) {
        cli_error("%s: %s is out of range [%g, %g]", opt, p, min, max);
        return -1;
    }
    *out = v;
    return 0;
}

int cli_parse_i64_list(const char *opt, const char *text, int64_t min, int64_t max, int64_t **out,
                       size_t *count) {
    *out = NULL;
    *count = 0;
    size_t cap = 1;
    for (const char *p = text; *p; p++)
        cap += *p == ',';
    int64_t *v = malloc(cap * sizeof *v);
    char *copy = strdup(text);
    if (!v || !copy) {
        free(v);
        free(copy);
        cli_error("%s: out of memory", opt);
        return -1;
    }
    size_t n = 0;
    char *item = copy;
    for (;;) {
        char *comma = strchr(item, ',');
        if (comma) *comma = '\0';
        if (!*item) {
            cli_error("%s: empty item in the list '%s'", opt, text);
            goto fail;
        }
        if (cli_parse_i64(opt, item, min, max, &v[n]) != 0) goto fail;
        n++;
        if (!comma) break;
        item = comma + 1;
    }
    free(copy);
    *out = v;
    *count = n;
    return 0;
fail:
    free(copy);
    free(v);
    return -1;
}

/* ======================================================================================================= */
/* Options shared by the programs                                                                          */
/* ======================================================================================================= */

void cli_common_init(cli_common *c) {
    memset(c, 0, sizeof *c);
    c->wmv_std = 0.0;
    c->variant = -1;
    c->precision = ARMT_PRECISION_FP32;
}

int cli_common_option(cli_common *c, int opt, const char *arg) {
    switch (opt) {
    case CLI_OPT_PLATFORM: c->platform = arg; return 1;
    case CLI_OPT_DEVICE: c->device = arg; return 1;
    case CLI_OPT_LIST_DEVICES: c->list_devices = 1; return 1;
    case CLI_OPT_PRESET: c->preset = arg; return 1;
    case CLI_OPT_MODEL: c->model_path = arg; return 1;
    case CLI_OPT_SEED:
        if (cli_parse_u64("--seed", arg, &c->seed) != 0) return -1;
        c->seed_given = 1;
        return 1;
    case CLI_OPT_WMV_STD: return cli_parse_double("--wmv-std", arg, 0.0, 1e3, &c->wmv_std) == 0 ? 1 : -1;
    case CLI_OPT_SEGMENT: return cli_parse_int("--segment", arg, 1, 1 << 24, &c->segment) == 0 ? 1 : -1;
    case CLI_OPT_MEM: return cli_parse_int("--mem", arg, 1, 1 << 20, &c->mem) == 0 ? 1 : -1;
    case CLI_OPT_BASE_MODEL: c->base_model = arg; return 1;
    case CLI_OPT_VARIANT: {
        static const char *const names[] = {"paper", "amt", "armt", "inner"};
        static const int values[] = {ARMT_VARIANT_PAPER, ARMT_VARIANT_AMT, ARMT_VARIANT_ARMT,
                                     ARMT_VARIANT_INNER};
        return cli_parse_choice("--variant", arg, names, values, 4, &c->variant) == 0 ? 1 : -1;
    }
    case CLI_OPT_MEM_HEADS: return cli_parse_int("--mem-heads", arg, 1, 1 << 16, &c->mem_heads) == 0 ? 1 : -1;
    case CLI_OPT_SINK: c->sink = 1; return 1;
    case CLI_OPT_SLIDING_WINDOW: c->sliding_window = 1; return 1;
    case CLI_OPT_FP32_GEMM: {
        static const char *const names[] = {"auto", "clblast", "tf32x3"};
        static const int values[] = {ARMT_FP32_GEMM_AUTO, ARMT_FP32_GEMM_CLBLAST, ARMT_FP32_GEMM_TF32X3};
        return cli_parse_choice("--fp32-gemm", arg, names, values, 3, &c->fp32_gemm) == 0 ? 1 : -1;
    }
    default: return 0;
    }
}

static int known_preset(const char *name) {
    for (const char *const *p = armt_config_preset_names(); p && *p; p++)
        if (strcmp(*p, name) == 0) return 1;
    return 0;
}

static void print_preset_names(FILE *out) {
    const char *sep = "";
    for (const char *const *p = armt_config_preset_names(); p && *p; p++) {
        fprintf(out, "%s%s", sep, *p);
        sep = ", ";
    }
}

int cli_common_finish(cli_common *c, const char *default_preset) {
    if (c->list_devices) return 0; /* nothing else is needed */
    if (c->preset && c->model_path) {
        cli_error("--preset and --model exclude each other");
        return -1;
    }
    if (!c->preset && !c->model_path) {
        if (!default_preset) {
            cli_error("one of --model DIR or --preset NAME is required (see --help)");
            return -1;
        }
        c->preset = default_preset;
    }
    if (c->preset && !known_preset(c->preset)) {
        fprintf(stderr, "%s: --preset: unknown preset '%s' (known: ", progname, c->preset);
        print_preset_names(stderr);
        fprintf(stderr, ")\n");
        return -1;
    }
    if (c->model_path && (c->variant >= 0 || c->mem_heads > 0 || c->sink || c->sliding_window)) {
        cli_error("--variant, --mem-heads, --sink and --sliding-window shape a preset's random model; a "
                  "checkpoint's config.json says its own");
        return -1;
    }
    if (c->preset && c->base_model) {
        cli_error("--base-model applies to --model (an ARMT checkpoint naming its base by base_model_name)");
        return -1;
    }
    /* With a checkpoint, --seed and --wmv-std still apply to the ARMT tensors the files lack. */
    return 0;
}

void cli_common_help(FILE *out, int seed_also_ids) {
    fprintf(out, "Model (random weights from a preset, or a checkpoint):\n"
                 "      --preset NAME      random weights of a named configuration: ");
    print_preset_names(out);
    fprintf(
        out,
        "\n"
        "      --model PATH       a checkpoint directory (config.json + model.safetensors or a sharded "
        "index)\n"
        "                         or one .safetensors file (HF LLaMA, ARMT reference wrapper, PEFT LoRA);\n"
        "                         PyTorch .bin checkpoints: convert them first with tools/convert_bin.py\n"
        "      --seed N           seed of the random weights (and of tensors a checkpoint lacks); decimal "
        "or\n"
        "                         0x hex, default 0%s\n"
        "      --wmv-std X        standard deviation of W_mv when it is initialised (default 0, as the\n"
        "                         reference: the memory path is then inert; e.g. 0.02 makes it active)\n"
        "      --segment L        override the segment size (input tokens per segment)\n"
        "      --mem M            override the number of memory tokens per segment\n"
        "      --base-model DIR   with --model: a local directory holding the base model's config.json,\n"
        "                         for an ARMT checkpoint whose config names it by base_model_name\n"
        "      --variant V        with --preset: the ARMT math, paper (2024, default of the presets but\n"
        "                         smollm2-360m-armt), amt (modeling_amt), armt (src/armt.py) or inner\n"
        "                         (modeling_amt/inner_loop.py); see docs/VARIANTS.md\n"
        "      --mem-heads H      with --preset and --variant amt or inner: H associative memory heads\n"
        "      --sink             with --preset and --variant amt, armt or inner: a learned sink row before\n"
        "                         every segment's tokens (use_sink)\n"
        "      --sliding-window   with --preset and --variant armt: src/armt_sw.py's sliding window (the\n"
        "                         text rows also attend to the previous segment's; model_type armt_sw)\n"
        "\n"
        "Device:\n"
        "      --platform P       OpenCL platform: index or case-insensitive name substring\n"
        "                         (default: $ARMT_PLATFORM, then every platform)\n"
        "      --device D         device inside the platform(s): index or name substring (default:\n"
        "                         $ARMT_DEVICE, then the best device: GPUs first, then the most memory)\n"
        "      --list-devices     print every OpenCL device as a table and exit\n"
        "      --fp32-gemm MODE   the GEMMs of fp32 models: auto (default: 3xTF32 on NVIDIA tensor\n"
        "                         cores, compute capability >= 8.0, where the device has them: about\n"
        "                         2.3x faster than CLBlast and more accurate; else CLBlast), clblast,\n"
        "                         or tf32x3 (required, the attention on it too; fails without them). With\n"
        "                         auto the attention goes there too where it checks at least as accurate\n"
        "                         as the fp32 kernel when the model loads\n"
        "\n"
        "Environment: ARMT_PLATFORM, ARMT_DEVICE (defaults of --platform, --device), ARMT_KERNEL_DIR\n"
        "(kernel sources instead of the embedded copies), ARMT_TENSOR_CORES and ARMT_WGMMA (auto, off, on;\n"
        "tensor cores also emulate), ARMT_FP32_GEMM (auto, clblast, tf32x3: the default of --fp32-gemm),\n"
        "ARMT_CL_BUILD_OPTIONS (extra kernel build options, for developers).\n",
        seed_also_ids ? "; it also seeds the random token ids" : "");
}

/* ======================================================================================================= */
/* Devices, runtime, model                                                                                 */
/* ======================================================================================================= */

const char *cli_device_type(const armt_device_info *info) {
    if (info->is_gpu) return "GPU";
    if (info->is_cpu) return "CPU";
    return "ACC";
}

/* Copies s into buf, cut to at most width characters (with "~" as the last one when cut). */
static const char *fit(const char *s, size_t width, char *buf, size_t len) {
    if (width >= len) width = len - 1;
    size_t n = strlen(s);
    if (n <= width) {
        memcpy(buf, s, n + 1);
    } else {
        memcpy(buf, s, width - 1);
        buf[width - 1] = '~';
        buf[width] = '\0';
    }
    return buf;
}

int cli_list_devices(FILE *out) {
    armt_device_info *list = NULL;
    size_t count = 0;
    armt_status st = armt_device_list(&list, &count);
    if (st != ARMT_OK) {
        cli_report_status("listing OpenCL devices", st, armt_last_error());
        return -1;
    }
    if (count == 0) {
        fprintf(out, "No OpenCL platform or device found (is an ICD installed? see /etc/OpenCL/vendors).\n");
        armt_device_list_free(list);
        return 0;
    }
    fprintf(out, "%-4s %-4s %-4s %-32s %-20s %-16s %-16s %10s %10s %9s %-9s\n", "plat", "dev", "type", "name",
            "vendor", "driver", "OpenCL C", "global", "max alloc", "local", "fp16/fp64");
    int last_platform = -1;
    for (size_t i = 0; i < count; i++) {
        const armt_device_info *d = &list[i];
        char name[40], vendor[28], driver[24], clc[24], g[16], a[16], l[16];
        if (d->platform_index != last_platform) {
            fprintf(out, "# platform %d: %s\n", d->platform_index, d->platform_name);
            last_platform = d->platform_index;
        }
        /* "OpenCL C 1.2 pocl" -> "1.2 pocl": the column title already says OpenCL C */
        const char *clc_text = d->opencl_c_version;
        if (strncmp(clc_text, "OpenCL C ", 9) == 0) clc_text += 9;
        fprintf(out, "%-4d %-4d %-4s %-32s %-20s %-16s %-16s %10s %10s %9s %s/%s\n", d->platform_index,
                d->device_index, cli_device_type(d), fit(d->name, 32, name, sizeof name),
                fit(d->vendor, 20, vendor, sizeof vendor), fit(d->driver_version, 16, driver, sizeof driver),
                fit(clc_text, 16, clc, sizeof clc), cli_format_bytes(d->global_mem_bytes, g, sizeof g),
                cli_format_bytes(d->max_alloc_bytes, a, sizeof a),
                cli_format_bytes(d->local_mem_bytes, l, sizeof l), d->has_fp16 ? "yes" : "no",
                d->has_fp64 ? "yes" : "no");
    }
    fprintf(out, "Select with --platform P --device D (index or name substring).\n");
    armt_device_list_free(list);
    return 0;
}

int cli_open_runtime(const cli_common *c, armt_runtime **rt) {
    armt_runtime_params rp = armt_runtime_default_params();
    rp.platform = c->platform;
    rp.device = c->device;
    rp.fp32_gemm = (armt_fp32_gemm)c->fp32_gemm;
    armt_status st = armt_runtime_create(&rp, rt);
    if (st != ARMT_OK) {
        cli_report_status("opening the OpenCL device", st, armt_last_error());
        if (st == ARMT_STATUS_NO_DEVICE) cli_error("hint: --list-devices shows what is available");
        return -1;
    }
    return 0;
}

/* A .bin file, or a directory holding pytorch_model.bin or its sharded index (and so, presumably, no
 * safetensors): the model must be converted with tools/convert_bin.py. */
static int looks_like_pytorch_bin(const char *path) {
    size_t n = strlen(path);
    if (n >= 4 && strcmp(path + n - 4, ".bin") == 0) return 1;
    static const char *const names[] = {"pytorch_model.bin", "pytorch_model.bin.index.json"};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        char buf[4096];
        if ((size_t)snprintf(buf, sizeof buf, "%s/%s", path, names[i]) >= sizeof buf) continue;
        FILE *f = fopen(buf, "rb");
        if (f) {
            fclose(f);
            return 1;
        }
    }
    return 0;
}

int cli_open_model(const cli_common *c, armt_runtime *rt, armt_model **model) {
    return cli_open_model_ex(c, rt, 0, model, NULL);
}

int cli_open_model_ex(const cli_common *c, armt_runtime *rt, int min_vocab, armt_model **model,
                      int *raised_from) {
    if (raised_from) *raised_from = 0;
    armt_model_params mp = armt_model_default_params();
    mp.seed = c->seed;
    mp.wmv_std = (float)c->wmv_std;
    mp.precision = c->precision;
    if (c->segment > 0) mp.segment_size = c->segment;
    if (c->mem > 0) mp.num_mem_tokens = c->mem;
    mp.base_model_dir = c->base_model;
    armt_status st;
    char what[600];
    if (c->model_path) {
        snprintf(what, sizeof what, "loading model '%s'", c->model_path);
        st = armt_model_load(rt, c->model_path, &mp, model);
    } else {
        armt_config cfg;
        snprintf(what, sizeof what, "creating preset model '%s'", c->preset);
        st = armt_config_preset(c->preset, &cfg);
        if (st == ARMT_OK && min_vocab > 0 && cfg.vocab_size < min_vocab) {
            if (raised_from) *raised_from = cfg.vocab_size;
            cfg.vocab_size = min_vocab;
        }
        if (st == ARMT_OK && c->variant >= 0) cfg.variant = (armt_variant)c->variant;
        if (st == ARMT_OK && c->mem_heads > 0) cfg.mem_heads = c->mem_heads;
        if (st == ARMT_OK && c->sink) cfg.use_sink = 1;
        if (st == ARMT_OK && c->sliding_window) cfg.sliding_window = 1;
        if (st == ARMT_OK) st = armt_model_create_random(rt, &cfg, &mp, model);
    }
    if (st != ARMT_OK) {
        cli_report_status(what, st, armt_last_error());
        if (c->model_path && looks_like_pytorch_bin(c->model_path))
            cli_error("hint: PyTorch .bin checkpoints must be converted first: tools/convert_bin.py %s",
                      c->model_path);
        return -1;
    }
    return 0;
}

void cli_model_label(const cli_common *c, char *buf, size_t len) {
    if (c->model_path)
        snprintf(buf, len, "%s", c->model_path);
    else if (c->wmv_std > 0)
        snprintf(buf, len, "preset %s (seed %" PRIu64 ", W_mv std %g)", c->preset, c->seed, c->wmv_std);
    else
        snprintf(buf, len, "preset %s (seed %" PRIu64 ")", c->preset, c->seed);
}

/* ======================================================================================================= */
/* Token ids                                                                                               */
/* ======================================================================================================= */

int cli_read_ids_file(const char *path, int vocab_size, int32_t **ids, size_t *count) {
    *ids = NULL;
    *count = 0;
    FILE *f = strcmp(path, "-") == 0 ? stdin : fopen(path, "r");
    if (!f) {
        cli_error("%s: %s", path, strerror(errno));
        return -1;
    }
    size_t n = 0, cap = 1024;
    int32_t *v = malloc(cap * sizeof *v);
    if (!v) {
        cli_error("%s: out of memory", path);
        goto fail;
    }
    long line = 1, col = 0;
    int ch = fgetc(f);
    col = 1;
    for (;;) {
        /* skip separators and comments */
        while (ch != EOF && (isspace(ch) || ch == ',' || ch == '#')) {
            if (ch == '#') {
                while (ch != EOF && ch != '\n')
                    ch = fgetc(f);
                continue;
            }
            if (ch == '\n') {
                line++;
                col = 0;
            }
            ch = fgetc(f);
            col++;
        }
        if (ch == EOF) break;
        /* one token: everything up to the next separator. Only a sign and digits make a token id; leading
         * zeros are skipped, so that a long word is still read whole (fuzz/regress/ids: a NUL byte or the
         * 64th character of a word used to end the word silently, so "4<NUL>99" read as 4). */
        char word[64], raw[48];
        size_t wl = 0, nd = 0, rl = 0, rtotal = 0;
        long tok_col = col;
        int digits = 1, sign = 0, lead = 1;
        while (ch != EOF && !isspace(ch) && ch != ',' && ch != '#') {
            if (rl + 1 < sizeof raw) raw[rl++] = isprint(ch) ? (char)ch : '?';
            if (rtotal++ == 0 && (ch == '-' || ch == '+')) {
                sign = ch;
            } else if (!isdigit(ch)) {
                digits = 0;
            } else if (lead && ch == '0') {
                nd++; /* a leading zero: counted, not kept */
            } else {
                lead = 0;
                nd++;
                if (wl + 1 < sizeof word)
                    word[wl++] = (char)ch;
                else
                    digits = 0; /* more than 62 significant digits: no id is that long */
            }
            ch = fgetc(f);
            col++;
        }
        if (digits && nd > 0 && wl == 0) word[wl++] = '0';
        word[wl] = '\0';
        raw[rl] = '\0';
        if (nd == 0) digits = 0;
        if (sign == '-' && digits && strcmp(word, "0") != 0) {
            cli_error("%s:%ld:%ld: token id -%s is outside the vocabulary [0, %d)", path, line, tok_col, word,
                      vocab_size);
            goto fail;
        }
        if (!digits) {
            cli_error(
                "%s:%ld:%ld: '%s%s' is not a token id (expected integers separated by blanks or commas)",
                path, line, tok_col, raw, rtotal > rl ? "..." : "");
            goto fail;
        }
        errno = 0;
        long long value = strtoll(word, NULL, 10);
        if (errno == ERANGE || value < 0 || value >= vocab_size) {
            cli_error("%s:%ld:%ld: token id %s is outside the vocabulary [0, %d)", path, line, tok_col, word,
                      vocab_size);
            goto fail;
        }
        if (n == cap) {
            cap *= 2;
            int32_t *grown = realloc(v, cap * sizeof *v);
            if (!grown) {
                cli_error("%s: out of memory", path);
                goto fail;
            }
            v = grown;
        }
        v[n++] = (int32_t)value;
    }
    if (ferror(f)) {
        cli_error("%s: read error", path);
        goto fail;
    }
    if (n == 0) {
        cli_error("%s: no token ids in the file", path);
        goto fail;
    }
    if (f != stdin) fclose(f);
    *ids = v;
    *count = n;
    return 0;
fail:
    if (f != stdin) fclose(f);
    free(v);
    return -1;
}

/* splitmix64: small, good enough for random token ids, and the same on every platform. */
static uint64_t splitmix64(uint64_t *state) {
    uint64_t z = (*state += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

void cli_random_ids(uint64_t seed, int vocab_size, int32_t *ids, size_t n) {
    /* a fixed offset keeps the id stream apart from anything else seeded with the same number */
    uint64_t state = seed ^ 0x1D5EEDull;
    for (size_t i = 0; i < n; i++)
        ids[i] = (int32_t)(splitmix64(&state) % (uint64_t)(vocab_size > 0 ? vocab_size : 1));
}

/* ======================================================================================================= */
/* Small utilities                                                                                         */
/* ======================================================================================================= */

double cli_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

const char *cli_format_bytes(uint64_t bytes, char *buf, size_t len) {
    static const char *const units[] = {"B", "KiB", "MiB", "GiB", "TiB", "PiB"};
    if (bytes < 1024) {
        snprintf(buf, len, "%" PRIu64 " B", bytes);
        return buf;
    }
    double v = (double)bytes;
    int u = 0;
    while (v >= 1024.0 && u < 5) {
        v /= 1024.0;
        u++;
    }
    snprintf(buf, len, v < 10 ? "%.2f %s" : v < 100 ? "%.1f %s" : "%.0f %s", v, units[u]);
    return buf;
}
