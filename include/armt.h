/*
 * armt.h - libarmt public API.
 *
 * libarmt runs Associative Recurrent Memory Transformers (ARMT) on any OpenCL device and schedules the
 * cells (layer l, segment s) along anti-diagonals l + s = d (Diagonal Batching), which gives exactly the
 * same result as the sequential order in S + Lyr - 1 steps instead of S * Lyr.
 *
 * Three handles, split by lifetime:
 *   armt_runtime  platform, device, OpenCL context and the compiled kernels.      One per device.
 *   armt_model    weights resident on the device; read-only after load.          Shareable by contexts.
 *   armt_ctx      the associative memory state (W_mem, z), scratch, a queue.     One per stream/thread.
 *
 * Errors: every fallible function returns armt_status (ARMT_OK = 0, errors negative, values pinned).
 * The message of the last error is kept per handle (armt_*_last_error) and per thread
 * (armt_last_error), so a failed create can be explained too. The library never prints and never exits;
 * diagnostics go to the callback set with armt_log_set.
 *
 * Misuse (tests/check_reliability.c has a test per case): a NULL handle or a NULL required pointer gives
 * ARMT_STATUS_INVALID_ARGUMENT (functions returning a count or a pointer give 0 or NULL, *_last_error a
 * string, every *_free accepts NULL); a create that fails sets *out to NULL, also on a NULL argument, so
 * the handle of a failed create is NULL and using it gives INVALID_ARGUMENT; an output buffer too small
 * (out_count, out_cap, cap) gives INVALID_ARGUMENT with the size needed; zero tokens give
 * ARMT_STATUS_EMPTY_INPUT. A call that fails leaves the memory state and the handle usable as before.
 *
 * Thread safety: a runtime and a model may be used from several threads at once: models can be created
 * and contexts made concurrently (each model and each context has its own kernel objects; the device
 * memory accounting is locked). One armt_ctx must be used by one thread at a time; two contexts on the
 * same model may run forward passes concurrently from two threads (tests/check_limits.c checks that the
 * results equal those of sequential use). The log callback may be called from any thread.
 *
 * Parameter structs (armt_*_params) and ABI: there is no ABI stability before 1.0; a program is rebuilt
 * against the header of the library it runs with (ARMT_VERSION_NUMBER == armt_version_number() checks it).
 * Fields are only ever appended to a params struct, never reordered, retyped or removed, and a field's zero
 * keeps the old behaviour where that is possible; so always start from the struct that *_default_params()
 * returns (or pass NULL where that is allowed) and set only the fields you need: source code written that
 * way keeps its meaning when a field is added. armt_ctx_params keeps reserved space for growth.
 */
#ifndef ARMT_H
#define ARMT_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(ARMT_BUILDING_LIBRARY) && defined(ARMT_HAVE_VISIBILITY)
#define ARMT_API __attribute__((visibility("default")))
#else
#define ARMT_API
#endif

#if defined(__GNUC__)
#define ARMT_NODISCARD __attribute__((warn_unused_result))
#else
#define ARMT_NODISCARD
#endif

/* ======================================================================================================= */
/* Status                                                                                                  */
/* ======================================================================================================= */

/* Values are pinned: they never change between releases. */
typedef enum armt_status {
    ARMT_OK = 0,
    ARMT_STATUS_INVALID_ARGUMENT = -1,    /* NULL pointer, bad size, bad option                  */
    ARMT_STATUS_NO_DEVICE = -2,           /* no OpenCL platform/device, or none matches          */
    ARMT_STATUS_OPENCL_ERROR = -3,        /* an OpenCL call failed (name in the message)         */
    ARMT_STATUS_CLBLAST_ERROR = -4,       /* a CLBlast call failed (name in the message)         */
    ARMT_STATUS_KERNEL_BUILD_FAILED = -5, /* clBuildProgram failed; message holds the build log  */
    ARMT_STATUS_OUT_OF_HOST_MEMORY = -6,
    ARMT_STATUS_OUT_OF_DEVICE_MEMORY = -7, /* does not fit the device; nothing was allocated     */
    ARMT_STATUS_IO_ERROR = -8,             /* open/read/write failed                              */
    ARMT_STATUS_BAD_FILE = -9,             /* malformed safetensors / state file                  */
    ARMT_STATUS_BAD_CONFIG = -10,          /* configuration invalid or inconsistent with tensors  */
    ARMT_STATUS_MISSING_TENSOR = -11,
    ARMT_STATUS_SHAPE_MISMATCH = -12,
    ARMT_STATUS_UNSUPPORTED = -13,        /* dtype, feature or option not supported              */
    ARMT_STATUS_TOKEN_OUT_OF_RANGE = -14, /* a token id < 0 or >= vocab_size                     */
    ARMT_STATUS_MODEL_MISMATCH = -15,     /* state or context belongs to another model           */
    ARMT_STATUS_EMPTY_INPUT = -16,        /* zero tokens                                         */
    ARMT_STATUS_CANCELLED = -17,          /* a progress callback returned non-zero; state unchanged */
} armt_status;

/* Always a static string, also for unknown values. */
ARMT_API const char *armt_status_str(armt_status status);
/* Name of an OpenCL error code ("CL_OUT_OF_RESOURCES"), or "CL_UNKNOWN_ERROR". */
ARMT_API const char *armt_cl_error_str(int cl_error);
/* Name of a CLBlast status code ("CLBlastInsufficientMemoryC"), or "CLBlastUnknownError". */
ARMT_API const char *armt_clblast_error_str(int clblast_status);
/* Message of the last error raised on this thread by any libarmt call ("" if none). */
ARMT_API const char *armt_last_error(void);

/* Diagnostics. The library never prints: messages go to this callback (none by default). */
typedef enum armt_log_level {
    ARMT_LOG_ERROR = 0,
    ARMT_LOG_WARN = 1,
    ARMT_LOG_INFO = 2,
    ARMT_LOG_DEBUG = 3,
} armt_log_level;
typedef void (*armt_log_fn)(armt_log_level level, const char *message, void *user_data);
ARMT_API void armt_log_set(armt_log_fn fn, void *user_data);

/* Version of this header: MAJOR.MINOR.PATCH, the same as configure.ac's (tests/check_status.c checks
 * both). ARMT_VERSION_NUMBER is MAJOR * 10000 + MINOR * 100 + PATCH, e.g. 10203 for 1.2.3. */
#define ARMT_VERSION_MAJOR  0
#define ARMT_VERSION_MINOR  2
#define ARMT_VERSION_PATCH  0
#define ARMT_VERSION_NUMBER (ARMT_VERSION_MAJOR * 10000 + ARMT_VERSION_MINOR * 100 + ARMT_VERSION_PATCH)

/* The library's version, as a number (ARMT_VERSION_NUMBER when it was built) and as "MAJOR.MINOR.PATCH". */
ARMT_API unsigned armt_version_number(void);
ARMT_API const char *armt_version_string(void);
/* "libarmt 0.1.0 (commit abc1234), CLBlast 1.5.3": the versions the library was built with. */
ARMT_API const char *armt_build_info(void);

/* ======================================================================================================= */
/* Devices and runtime                                                                                     */
/* ======================================================================================================= */

typedef struct armt_device_info {
    int platform_index; /* index in clGetPlatformIDs order                      */
    int device_index;   /* index inside that platform                            */
    char platform_name[128];
    char name[128];
    char vendor[128];
    char driver_version[128];
    char device_version[128]; /* "OpenCL 3.0 ..." (cut to fit)                          */
    char opencl_c_version[128];
    int is_gpu;
    int is_cpu;
    unsigned compute_units;
    uint64_t global_mem_bytes;
    uint64_t max_alloc_bytes;
    uint64_t local_mem_bytes;
    int has_fp16;
    int has_fp64;
    int nv_compute_capability; /* NVIDIA: major * 10 + minor (cl_nv_device_attribute_query); else 0 */
} armt_device_info;

/* Lists every device of every platform. *out is malloc'ed (free with armt_device_list_free).
 * No platform at all gives ARMT_OK with count 0. */
ARMT_API ARMT_NODISCARD armt_status armt_device_list(armt_device_info **out, size_t *count);
ARMT_API void armt_device_list_free(armt_device_info *list);

typedef struct armt_runtime armt_runtime;

/* Tensor cores for bf16 models (the bf16 GEMM and attention): the fallbacks a user may need. */
typedef enum armt_tensor_cores {
    ARMT_TC_AUTO = 0, /* where the device has them (NVIDIA compute capability >= 8.0)               */
    ARMT_TC_OFF,      /* not used: the portable kernels                                           */
    ARMT_TC_ON,       /* required: armt_runtime_create fails with ARMT_STATUS_UNSUPPORTED without  */
    ARMT_TC_EMULATE   /* tests only: every tensor-core kernel as OpenCL C stand-ins on any device  */
                      /*   (the same fragment layouts and tilings; slow, for tiny models)           */
} armt_tensor_cores;

/* fp32 GEMMs (fp32 models: the linear layers, lm_head and the memory products): CLBlast's SGEMM on CUDA
 * cores, or our tensor-core kernels at fp32 accuracy (3xTF32: each operand split into a TF32 high and low
 * part, three TF32 products per tile, each k step's sums added in fp32; on Hopper with wgmma unless it is
 * OFF; about 2.3x faster than CLBlast on an H100 and more accurate at every GEMM site of the 1B model:
 * docs/DESIGN.md). */
typedef enum armt_fp32_gemm {
    ARMT_FP32_GEMM_AUTO = 0, /* 3xTF32 GEMMs where the device has tensor cores (NVIDIA compute capability   */
    /*   >= 8.0, tensor_cores not OFF), and the attention where a model's load-time  */
    /*   check finds it at least as accurate as the fp32 kernel (else that kernel);  */
    /*   CLBlast elsewhere (and under ARMT_TC_EMULATE)                               */
    ARMT_FP32_GEMM_CLBLAST, /* CLBlast everywhere                                                          */
    ARMT_FP32_GEMM_TF32X3   /* 3xTF32 required, the attention of fp32 models on it too (unless attention   */
                            /*   is OFF): armt_runtime_create fails with ARMT_STATUS_UNSUPPORTED without   */
                            /*   tensor cores (with ARMT_TC_EMULATE: the emulated kernels, tests)          */
} armt_fp32_gemm;

typedef struct armt_runtime_params {
    /* Platform: an index ("1") or a case-insensitive name substring ("nvidia"). NULL: $ARMT_PLATFORM,
     * then every platform. */
    const char *platform;
    /* Device inside the chosen platform(s): index or name substring. NULL: $ARMT_DEVICE, then the best
     * device (GPUs before accelerators before CPUs, then the most global memory). */
    const char *device;
    /* Directory holding the kernel sources (*.cl). NULL: $ARMT_KERNEL_DIR, then the embedded copies. */
    const char *kernel_dir;
    /* Appended to the kernel build options (after $ARMT_CL_BUILD_OPTIONS): for developers, to try kernel
     * tunables (#ifndef defaults in the .cl files) the host does not launch by. The library never reads it;
     * work-group shapes (ATTN_BQ, AM_WARPS, AM_RT, MMA_* tiles) come from its tuning, not from here. */
    const char *build_options;
    /* Record per-kernel times with OpenCL profiling events (see armt_ctx_profile): the default of every
     * context of this runtime ($ARMT_PROFILE=1 does the same); a context can choose for itself with
     * armt_ctx_params.profile. */
    int profile;
    /* Tensor cores (default AUTO; $ARMT_TENSOR_CORES = auto, off, on or emulate when AUTO here). */
    armt_tensor_cores tensor_cores;
    /* Hopper wgmma for the GEMM, within tensor_cores: AUTO on compute capability 9.0, OFF: mma.sync there,
     * ON: required (with tensor_cores = ARMT_TC_EMULATE: the wgmma tiles' stand-ins, which AUTO leaves out).
     * $ARMT_WGMMA = auto, off or on when AUTO here. */
    armt_tensor_cores wgmma;
    /* Attention on tensor cores: AUTO for bf16 models wherever the GEMM has them, and for fp32 models (at
     * fp32 accuracy: 3xTF32 products) wherever their GEMMs run 3xTF32 (fp32_gemm); OFF: the fp32 kernel. */
    armt_tensor_cores attention;
    /* The fp32 GEMMs (default AUTO; $ARMT_FP32_GEMM = auto, clblast or tf32x3 when AUTO here). A GEMM whose
     * operands the tensor-core kernel cannot take (row strides or offsets not multiples of 4 floats) goes to
     * CLBlast in every mode. On the tensor cores a product may run k in slices summed in a fixed order,
     * decided by one entry's shape alone, so that every schedule gives the same bits: $ARMT_SPLITK = 2, 4, 8
     * or 16 forces that many slices where k allows, 1 never; auto (the default) splits by the rule
     * $ARMT_SPLITK_RULE names (0, the default: none; 1: by the estimated time; 2: one wave of the compute
     * units); docs/DESIGN.md, "Split-k". */
    armt_fp32_gemm fp32_gemm;
} armt_runtime_params;

ARMT_API armt_runtime_params armt_runtime_default_params(void);
/* Chooses a device, creates the OpenCL context and compiles every kernel. */
ARMT_API ARMT_NODISCARD armt_status armt_runtime_create(const armt_runtime_params *params,
                                                        armt_runtime **out);
ARMT_API void armt_runtime_free(armt_runtime *rt); /* accepts NULL */
ARMT_API ARMT_NODISCARD armt_status armt_runtime_device_info(const armt_runtime *rt, armt_device_info *out);
/* The OpenCL build options the tuning gives every program (device features decided at load; for logs). The
 * developer pass-through (build_options, $ARMT_CL_BUILD_OPTIONS) follows them on each build. */
ARMT_API const char *armt_runtime_build_options(const armt_runtime *rt);
ARMT_API const char *armt_runtime_last_error(const armt_runtime *rt);

/* ======================================================================================================= */
/* Model                                                                                                   */
/* ======================================================================================================= */

typedef enum armt_rope_type {
    ARMT_ROPE_DEFAULT = 0, /* plain RoPE, inv_freq = theta^(-2i/head_dim) */
    ARMT_ROPE_LLAMA3 = 1,  /* llama3 frequency scaling                    */
} armt_rope_type;

/* Shapes of a LLaMA base model plus the ARMT parameters. */
/* The generations of the ARMT reference (github RodkinIvan/associative-recurrent-memory-transformer) whose
 * math libarmt implements; docs/VARIANTS.md pins the commits. */
typedef enum armt_variant {
    ARMT_VARIANT_PAPER = 0, /* the 2024 paper code: DPFP features as they are, |phi|^2 + 1e-5 in gamma     */
    ARMT_VARIANT_AMT = 1,   /* modeling_amt/ (ARMTForCausalLM, model_type "armt" with n_heads, ...):       */
                            /*   L2-normalised features, heads, gating, use_denom                          */
    ARMT_VARIANT_ARMT = 2,  /* src/armt.py (model_type "armt", 2026): normalised features, one head,       */
                            /*   wrap_layers, use_denom                                                    */
    ARMT_VARIANT_INNER = 3, /* modeling_amt/inner_loop.py (InnerLoopARMTForCausalLM): amt's math, and the  */
                            /*   memory tokens attend to every row of their segment (later ones too)      */
} armt_variant;

/* "paper", "amt", "armt", "inner" ("unknown" outside the enum). */
ARMT_API const char *armt_variant_name(armt_variant variant);

typedef struct armt_config {
    /* base model (HF config.json) */
    int hidden_size;       /* d                                  */
    int n_layers;          /* Lyr                                */
    int n_heads;           /* query heads                        */
    int n_kv_heads;        /* key/value heads (GQA)              */
    int head_dim;          /* usually hidden_size / n_heads      */
    int intermediate_size; /* SwiGLU width                       */
    int vocab_size;
    float rms_norm_eps;
    double rope_theta;
    armt_rope_type rope_type;
    double rope_factor;           /* llama3: 32      */
    double rope_low_freq_factor;  /* llama3: 1       */
    double rope_high_freq_factor; /* llama3: 4       */
    int rope_original_max_pos;    /* llama3: 8192    */
    int tie_word_embeddings;
    /* ARMT */
    int num_mem_tokens; /* M                                  */
    int d_mem;          /* 64; d_key = 2 * 3 * d_mem          */
    int segment_size;   /* L: input tokens per segment        */
    int correction;     /* 1: gamma correction on z (paper)   */
    /* ARMT variant (docs/VARIANTS.md). Every field's zero is the 2024 paper's math, so a config that
     * predates these fields keeps its meaning. */
    armt_variant variant;   /* which generation of the reference the math follows                     */
    int mem_heads;          /* H: per-head memory, W_mem [H, d_key/H, d/H] per layer (0 or 1: one     */
                            /*   head); d_mem and hidden_size must be multiples of H                   */
    int no_denom;           /* 1: use_denom = false (no z, no division in the read and the write)     */
    int gating;             /* 1: beta per channel (W_mb: d -> d) instead of one per head (d -> H)    */
    int use_sink;           /* 1: a learned sink row (weight "sink", (1, d)) before every segment's    */
                            /*   tokens, position 0 (amt and armt variants)                            */
    int sliding_window;     /* 1: src/armt_sw.py's window: the text rows also attend to the previous   */
                            /*   segment's text rows (armt variant only; docs/VARIANTS.md)             */
    uint64_t memory_off[4]; /* wrap_layers: bit l (word l / 64) set = layer l has no associative     */
                            /*   memory (read, write and W_m* absent); layers < 256                  */
} armt_config;

/* At most this many layers may have memory_off bits. */
#define ARMT_MAX_WRAP_LAYERS 256

/* Fills *out with a named preset: "tiny", "tiny-gqa", "llama-160m", "llama-3.2-1b", "llama-3.2-3b",
 * "llama-3.1-8b", "smollm2-360m-armt" (the base shapes of the published configs; the ARMT settings of
 * the 1B's: 128 memory tokens, d_mem 64, segments of 1024). */
ARMT_API ARMT_NODISCARD armt_status armt_config_preset(const char *name, armt_config *out);
/* Names of the presets, NULL-terminated. */
ARMT_API const char *const *armt_config_preset_names(void);
/* Checks every field for consistency (heads divide, positive sizes, ...). */
ARMT_API ARMT_NODISCARD armt_status armt_config_validate(const armt_config *cfg, char *why, size_t why_len);
/* d_key = 2 * nu * d_mem with nu = 3. */
ARMT_API int armt_config_d_key(const armt_config *cfg);

typedef struct armt_model armt_model;

/* Storage precision of the linear-layer weights (and the embedding). Activations, the memory state and all
 * accumulation stay fp32 in every mode. */
typedef enum armt_precision {
    ARMT_PRECISION_FP32 = 0, /* the reference; GEMMs through CLBlast                                        */
    ARMT_PRECISION_BF16 = 1, /* weights bf16 on the device (half the memory), converted at load; GEMM
                              * operands rounded to bf16 when staged, fp32 accumulation; our own batched
                              * GEMM (tensor cores on NVIDIA compute capability >= 8.0, portable elsewhere) */
} armt_precision;

typedef struct armt_model_params {
    /* ARMT parameters that override (or supply what is missing from) the files. 0 / negative: keep. */
    int segment_size;
    int num_mem_tokens;
    int d_mem;
    int correction; /* -1: keep (default 1) */
    /* Seed for tensors the files lack (ARMT tensors of a plain LLaMA checkpoint) and for random models. */
    uint64_t seed;
    /* Standard deviation of W_mv when it must be initialised: 0 follows the reference (zeros, the memory
     * path is then inert); > 0 draws N(0, std^2) so the memory path is active. */
    float wmv_std;
    /* Weight storage precision (default ARMT_PRECISION_FP32). */
    armt_precision precision;
    /* A local directory holding the base model's config.json, for an ARMT checkpoint whose config names
     * its base by base_model_name instead of nesting base_model_config (NULL: such a checkpoint is
     * refused with a message naming base_model_name). Nothing is ever downloaded. */
    const char *base_model_dir;
} armt_model_params;

ARMT_API armt_model_params armt_model_default_params(void);

/* A model with random weights from a configuration and params->seed (deterministic for a given seed,
 * independent of the device). Weights are generated in chunks, never the whole model in host memory. */
ARMT_API ARMT_NODISCARD armt_status armt_model_create_random(armt_runtime *rt, const armt_config *cfg,
                                                             const armt_model_params *params,
                                                             armt_model **out);
/* Loads a checkpoint: a directory (config.json + model.safetensors or a sharded index), or one
 * .safetensors file. Key layouts: HF LLaMA, the ARMT reference wrapper (both naming forms), PEFT LoRA. */
ARMT_API ARMT_NODISCARD armt_status armt_model_load(armt_runtime *rt, const char *path,
                                                    const armt_model_params *params, armt_model **out);
/* Saves weights and configuration into one safetensors file (config in its __metadata__). */
ARMT_API ARMT_NODISCARD armt_status armt_model_save(armt_model *model, const char *path);
ARMT_API void armt_model_free(armt_model *model); /* accepts NULL */
ARMT_API const armt_config *armt_model_config(const armt_model *model);
ARMT_API armt_precision armt_model_precision(const armt_model *model);
/* Device bytes held by the weights. */
ARMT_API uint64_t armt_model_device_bytes(const armt_model *model);
/* A 64-bit fingerprint of configuration and weights, recorded in saved memory states. */
ARMT_API uint64_t armt_model_fingerprint(const armt_model *model);
ARMT_API const char *armt_model_last_error(const armt_model *model);

/* ======================================================================================================= */
/* Context: memory state and forward                                                                       */
/* ======================================================================================================= */

typedef struct armt_ctx armt_ctx;

typedef struct armt_ctx_params {
    /* Profiling (armt_ctx_profile, armt_ctx_profile_gemm) needs a queue created for it, so it is chosen
     * here: 1 profiles this context's forward calls, -1 does not, 0 (default) follows the runtime
     * (armt_runtime_params.profile or $ARMT_PROFILE), as before this field existed. A forward call can
     * still opt out with armt_forward_params.no_profile. */
    int profile;
    int reserved[7]; /* room for later fields; keep zero */
} armt_ctx_params;

ARMT_API armt_ctx_params armt_ctx_default_params(void);
ARMT_API ARMT_NODISCARD armt_status armt_ctx_create(armt_model *model, const armt_ctx_params *params,
                                                    armt_ctx **out);
ARMT_API void armt_ctx_free(armt_ctx *ctx); /* accepts NULL */
ARMT_API const char *armt_ctx_last_error(const armt_ctx *ctx);
ARMT_API armt_model *armt_ctx_model(const armt_ctx *ctx);

/* Memory state: W_mem [n_layers, d_key, d], z [n_layers, d_key] and per-layer "written" flags
 * (a layer not yet written since the last reset treats its next segment as the first one); with a sliding
 * window (armt_config.sliding_window) also each layer's window: the keys and values of the last
 * segment_size text rows the context has seen, which the next segment's text rows attend to, so calls cut
 * anywhere continue it (docs/VARIANTS.md). Reset empties all of it. */
ARMT_API ARMT_NODISCARD armt_status armt_ctx_reset(armt_ctx *ctx);
ARMT_API size_t armt_ctx_memory_w_count(const armt_ctx *ctx); /* n_layers * d_key * d */
ARMT_API size_t armt_ctx_memory_z_count(const armt_ctx *ctx); /* n_layers * d_key     */
/* Copies the state to the host. Any pointer may be NULL. written: n_layers bytes. */
ARMT_API ARMT_NODISCARD armt_status armt_ctx_memory_get(armt_ctx *ctx, float *w_mem, float *z,
                                                        uint8_t *written);
/* Restores a state; all three pointers required. A layer marked not written is treated as after a reset
 * (its next segment skips the read and writes with Vprev = 0, gamma = 1), so its W_mem and z rows should
 * be zero, as armt_ctx_memory_get returns them. The sliding window is not part of these two calls: a set
 * leaves it empty, as after a reset (the state files below carry it). */
ARMT_API ARMT_NODISCARD armt_status armt_ctx_memory_set(armt_ctx *ctx, const float *w_mem, const float *z,
                                                        const uint8_t *written);
/* Saves / loads the whole state (the sliding window included) to a file whose header records the model's
 * fingerprint; loading refuses a state saved for another model (ARMT_STATUS_MODEL_MISMATCH) and leaves the
 * current state unchanged. */
ARMT_API ARMT_NODISCARD armt_status armt_ctx_memory_save(armt_ctx *ctx, const char *path);
ARMT_API ARMT_NODISCARD armt_status armt_ctx_memory_load(armt_ctx *ctx, const char *path);

typedef enum armt_schedule {
    ARMT_SCHEDULE_SEQUENTIAL = 0, /* segment by segment, layer by layer: S * Lyr steps                 */
    ARMT_SCHEDULE_DIAGONAL = 1,   /* anti-diagonals l + s = d, batched GEMMs: S + Lyr - 1 steps       */
    ARMT_SCHEDULE_FULL = 2,       /* the base LLaMA over the whole input: no memory, no segments      */
} armt_schedule;

typedef enum armt_output {
    ARMT_OUTPUT_NONE = 0,        /* nothing copied (benchmarks)                                       */
    ARMT_OUTPUT_LOGITS_ALL = 1,  /* logits of every input token: n * vocab floats                     */
    ARMT_OUTPUT_LOGITS_LAST = 2, /* logits of the last input token: vocab floats                      */
    ARMT_OUTPUT_HIDDEN = 3,      /* final hidden states (after the final RMSNorm): n * d floats       */
} armt_output;

/* Names of the enum values, as armt-run's options spell them: "sequential", "diagonal", "full"; "none",
 * "logits" (ARMT_OUTPUT_LOGITS_ALL), "last", "hidden"; "fp32", "bf16". Static strings; a value outside its
 * enum gives "unknown" (never NULL, so the result can always be printed). */
ARMT_API const char *armt_schedule_name(armt_schedule schedule);
ARMT_API const char *armt_output_name(armt_output output);
ARMT_API const char *armt_precision_name(armt_precision precision);

/* Called after each step with (steps done, steps total). Return 0 to go on; a non-zero return cancels the
 * call: armt_forward / armt_generate then return ARMT_STATUS_CANCELLED and the context's memory state is
 * exactly as it was before the call (the output buffers hold unspecified values). The steps already
 * enqueued finish first, so a cancel takes effect within about one step. Since 0.2.0 (it returned void
 * before). */
typedef int (*armt_progress_fn)(uint64_t done, uint64_t total, void *user_data);

typedef struct armt_forward_params {
    armt_schedule schedule;
    armt_output output;
    float *out;                /* caller-owned destination of the requested output               */
    size_t out_count;          /* its size in floats; must be at least what the output needs     */
    armt_progress_fn progress; /* optional; non-zero return: cancel (ARMT_STATUS_CANCELLED)       */
    void *progress_user_data;
    int no_profile; /* 1: no profiling events for this call even when the context     */
                    /*   profiles (an event per launch costs host time: time calls    */
                    /*   with 1, then profile one call with 0; armt_ctx_profile keeps */
                    /*   the last profiled call's times)                              */
    int all_rows;   /* 1: the last layer computes every row. 0 (default): with output */
                    /*   NONE or LOGITS_LAST, its q and o projections, attention and  */
                    /*   MLP run only for the rows something reads (the memory        */
                    /*   tokens, which the memory write needs, and the last token     */
                    /*   when its logits are asked for); outputs and memory state are */
                    /*   the same                                                     */
} armt_forward_params;

ARMT_API armt_forward_params armt_forward_default_params(void);
/* Floats needed by an output for n tokens. */
ARMT_API size_t armt_output_count(const armt_model *model, armt_output output, size_t n_tokens);

/* Runs ids[0..n) through the model. ARMT schedules cut the ids into segments of segment_size tokens
 * (the last may be shorter), append the memory tokens, and read/write the context's memory state, which
 * persists across calls. On any error the memory state is left exactly as it was before the call.
 * ARMT_SCHEDULE_FULL neither reads nor changes the memory state. */
ARMT_API ARMT_NODISCARD armt_status armt_forward(armt_ctx *ctx, const int32_t *ids, size_t n,
                                                 const armt_forward_params *params);

/* ---- Many documents in one schedule (since 0.2.0) ----
 * A batch runs B documents, each with its own memory state (its own armt_ctx: reset, get, set, save and
 * load it as usual), its own ids (ragged lengths, partial last segments) and its own output buffer. Step t
 * runs every document's cells of that step side by side: one batched GEMM per linear operation over the
 * cells of all documents and layers. A document may join later (`start`: the step at which its first
 * segment enters layer 0), so a server can start a new document while others are in flight. Each
 * document's outputs and final memory state equal those of armt_forward on its context alone (bit for bit
 * where the same kernels run; docs/DESIGN.md, "Batches"). */
typedef struct armt_batch_doc {
    armt_ctx *ctx;      /* the document's memory state: read, and written as armt_forward writes it        */
    const int32_t *ids; /* its tokens, n of them (n > 0)                                                   */
    size_t n;
    float *out;       /* its output (armt_forward_params.output for n tokens: armt_output_count floats) */
    size_t out_count; /*   the size of out in floats                                                  */
    int start;        /* the batch step at which the document joins (0: the first step; >= 0)         */
} armt_batch_doc;

/* Runs docs[0..n_docs) as one schedule on runner's queue, kernels and scratch (the scratch grows to hold
 * every document's cells; runner may be one of the documents' contexts). params: schedule DIAGONAL (cells
 * l + s = d of each document per step) or SEQUENTIAL (one cell of each document per step); output, progress
 * (steps of the whole batch) and no_profile as for armt_forward (the batch records no profile); out,
 * out_count and all_rows are not used (each document has its own out; every row is computed). Every
 * context must belong to runner's model (ARMT_STATUS_MODEL_MISMATCH) and appear once. Everything is checked
 * before any state changes: a bad document (a token id out of range, a missing or short out) fails the
 * whole call with the document's index in the message, and a failure later (device error, cancel) puts
 * every document's state back as it was. Errors are recorded on runner (armt_ctx_last_error). */
ARMT_API ARMT_NODISCARD armt_status armt_forward_batch(armt_ctx *runner, const armt_batch_doc *docs,
                                                       size_t n_docs, const armt_forward_params *params);

/* Counters of the last forward call, and the device memory accounting of the context. */
typedef struct armt_stats {
    uint64_t steps;             /* schedule steps (diagonals, or cells for sequential)     */
    uint64_t cells;             /* (layer, segment) cells executed                         */
    uint64_t kernel_launches;   /* own kernels enqueued                                    */
    uint64_t gemm_calls;        /* CLBlast / GEMM calls (a batched call counts once)       */
    uint64_t device_bytes;      /* bytes the context holds on the device now               */
    uint64_t peak_device_bytes; /* peak of model + context bytes during the last forward   */
    double seconds;             /* wall time of the last forward (queue finished)          */
} armt_stats;

ARMT_API ARMT_NODISCARD armt_status armt_ctx_stats(const armt_ctx *ctx, armt_stats *out);

/* Device time per kernel of the last profiled forward (a context that profiles: armt_ctx_params.profile,
 * or the runtime's default), or after armt_generate of its decode (the new tokens after the first), or
 * after armt_generate_batch on the runner of its new-token rounds (every document's tokens): fills up
 * to cap (name, seconds) pairs (names are static strings: kernel names, and "clblast_sgemm" for CLBlast's
 * GEMMs); returns how many categories have time. */
ARMT_API size_t armt_ctx_profile(const armt_ctx *ctx, const char **names, double *seconds, size_t cap);

/* The GEMMs of the same profile, by what they multiply: up to cap (name, seconds, FLOPs) triples, names
 * being weight roles ("wq", "wk", ..., "lm_head"), "wg+wu" (gate and up in one GEMM), "wk+wv" (k and v in
 * one), "wq+wk+wv" (q, k and v in one launch: generation's one-row steps), "mem_read" and
 * "mem_prev" (phi W_mem of the memory read and write) and "mem_update" (W_mem += phi^T delta); FLOPs are
 * 2 m n k per multiplied matrix. Any of the arrays may be NULL. Returns how many sites have time. */
ARMT_API size_t armt_ctx_profile_gemm(const armt_ctx *ctx, const char **names, double *seconds, double *flop,
                                      size_t cap);

/* ======================================================================================================= */
/* Pipeline across devices                                                                                 */
/* ======================================================================================================= */
/* One model split into contiguous layer ranges (stages), each on a device of its own with its weights, its
 * layers' memory states and its queue; the diagonal schedule runs every stage's cells of a step at once and
 * hands a segment's residual rows from stage to stage between steps (docs/DESIGN.md, "Pipeline across
 * devices"). Outputs and memory states are bit-identical to one device. The stages live in one process
 * (a device list), or one per MPI rank (a library built with ./configure --enable-mpi). */
typedef struct armt_pipeline armt_pipeline;

typedef struct armt_pipeline_params {
    /* Every stage's runtime; its `device` is replaced by the stage's entry of `devices`. */
    armt_runtime_params runtime;
    /* Devices, one per stage, comma-separated selectors as armt_runtime_params.device takes them (index or
     * name substring, on the platform runtime.platform chooses): "0,1". The same device may appear twice.
     * With mpi: entry r is rank r's (NULL: rank r takes device r of the platform). */
    const char *devices;
    /* The model: a checkpoint (path, as armt_model_load takes it) or, with path NULL, random weights of
     * config (armt_model_create_random). */
    const char *path;
    const armt_config *config;
    armt_model_params model;
    /* Layer counts of the stages (n_split entries summing to n_layers), or NULL: balanced by FLOPs. */
    const int *split;
    int n_split;
    /* 1: one stage per MPI rank of MPI_COMM_WORLD (MPI initialised by the caller; ARMT_STATUS_UNSUPPORTED
     * when the library was built without MPI). Every pipeline call is then collective. */
    int mpi;
    /* 0 (default): in the diagonal schedule a segment's rows travel to the next stage while both compute
     * (stage p runs one tick behind stage p - 1: P - 1 more ticks, no waiting on the transfer); 1: they are
     * handed over after each tick, the next one waiting for them (the same outputs either way). */
    int no_overlap;
} armt_pipeline_params;

ARMT_API armt_pipeline_params armt_pipeline_default_params(void);
ARMT_API ARMT_NODISCARD armt_status armt_pipeline_create(const armt_pipeline_params *params,
                                                         armt_pipeline **out);
ARMT_API void armt_pipeline_free(armt_pipeline *pipe); /* accepts NULL */
ARMT_API const char *armt_pipeline_last_error(const armt_pipeline *pipe);
/* 1 if this library was built with MPI (./configure --enable-mpi). */
ARMT_API int armt_pipeline_have_mpi(void);

/* armt_forward over the stages (schedules SEQUENTIAL and DIAGONAL; FULL gives ARMT_STATUS_UNSUPPORTED).
 * With mpi the output arrives on rank 0 only (other ranks may pass out = NULL). On any error, on any
 * stage, every stage's memory state is left as it was and every rank returns the error. */
ARMT_API ARMT_NODISCARD armt_status armt_pipeline_forward(armt_pipeline *pipe, const int32_t *ids, size_t n,
                                                          const armt_forward_params *params);
/* The whole model's state in armt_ctx_memory_get's layout (all layers); with mpi gathered on rank 0 (other
 * ranks' pointers are not written and may be NULL). Counts as armt_ctx_memory_w_count / _z_count give them
 * for the whole model. */
ARMT_API ARMT_NODISCARD armt_status armt_pipeline_memory_get(armt_pipeline *pipe, float *w_mem, float *z,
                                                             uint8_t *written);
/* Sets it (with mpi: from rank 0's arrays). The sliding window is emptied, as armt_ctx_memory_set does. */
ARMT_API ARMT_NODISCARD armt_status armt_pipeline_memory_set(armt_pipeline *pipe, const float *w_mem,
                                                             const float *z, const uint8_t *written);
/* The whole state (every stage's layers, the sliding window included) in one file of armt_ctx_memory_save's
 * format (with mpi: gathered on rank 0, which writes it; load: read by rank 0 and sent to the ranks). The
 * file's fingerprint is the whole model's for random weights, so a single context of the same model and
 * the pipeline read each other's files; for a checkpoint it is that of this split. A failed load leaves
 * W_mem and z as they were. */
ARMT_API ARMT_NODISCARD armt_status armt_pipeline_memory_save(armt_pipeline *pipe, const char *path);
ARMT_API ARMT_NODISCARD armt_status armt_pipeline_memory_load(armt_pipeline *pipe, const char *path);
ARMT_API ARMT_NODISCARD armt_status armt_pipeline_reset(armt_pipeline *pipe);
ARMT_API const armt_config *armt_pipeline_config(const armt_pipeline *pipe); /* the whole model's */

typedef struct armt_pipeline_stage_info {
    int first_layer, n_layers; /* the stage's layers                                            */
    int rank;                  /* its MPI rank (0 in one process)                               */
    char device[128];          /* the device's name                                             */
    double busy_seconds;       /* device time of its ticks in the last forward                  */
    uint64_t bytes_sent;       /* residual rows handed to the next stage in the last forward    */
} armt_pipeline_stage_info;

typedef struct armt_pipeline_stats {
    int n_stages;
    uint64_t ticks;       /* pipeline steps of the last forward                               */
    double seconds;       /* its wall time                                                    */
    uint64_t bytes_moved; /* all hand-overs                                                   */
    double bubble;        /* 1 - sum(busy) / (n_stages * seconds): the stages' idle share     */
} armt_pipeline_stats;

/* Stats of the last forward; with mpi complete on rank 0. */
ARMT_API ARMT_NODISCARD armt_status armt_pipeline_stats_get(const armt_pipeline *pipe,
                                                            armt_pipeline_stats *out);
ARMT_API ARMT_NODISCARD armt_status armt_pipeline_stage(const armt_pipeline *pipe, int stage,
                                                        armt_pipeline_stage_info *out);

/* ======================================================================================================= */
/* Tokenizer                                                                                               */
/* ======================================================================================================= */
/* Byte-level BPE tokenizer read from a HF tokenizer.json (LLaMA-3 family: Split regex + ByteLevel
 * pre-tokenizer, BPE model with merges, added/special tokens, ByteLevel decoder). Other model types,
 * normalizers, pre-tokenizers or decoders are refused with ARMT_STATUS_UNSUPPORTED naming them. After load,
 * encode/decode write to the tokenizer only to record an error (and to clear it on the next call), so
 * threads may share one tokenizer as long as their calls succeed. */
typedef struct armt_tokenizer armt_tokenizer;

ARMT_API ARMT_NODISCARD armt_status armt_tokenizer_load(const char *tokenizer_json_path,
                                                        armt_tokenizer **out);
ARMT_API void armt_tokenizer_free(armt_tokenizer *tok); /* accepts NULL */
ARMT_API const char *armt_tokenizer_last_error(const armt_tokenizer *tok);

/* Encodes UTF-8 text. Special tokens written literally in the text (e.g. "<|begin_of_text|>") become their
 * ids when parse_special != 0. ids: caller array of capacity cap; *n_out receives the count; if cap is too
 * small returns ARMT_STATUS_INVALID_ARGUMENT with *n_out = needed count (ids may be NULL when cap is 0).
 * add_bos: prepend the BOS token if the tokenizer defines one (post_processor / bos in added_tokens).
 * Text that is not valid UTF-8 does not fail: each invalid byte sequence is encoded through its byte
 * tokens. */
ARMT_API ARMT_NODISCARD armt_status armt_tokenizer_encode(armt_tokenizer *tok, const char *text, size_t len,
                                                          int add_bos, int parse_special, int32_t *ids,
                                                          size_t cap, size_t *n_out);
/* Decodes ids to UTF-8 (byte-level decoding; special tokens rendered as their text unless skip_special).
 * Same capacity convention (bytes, NUL terminator included): on success *len_out = bytes before the NUL
 * (the text may hold NUL bytes); when cap is too small, ARMT_STATUS_INVALID_ARGUMENT with *len_out = the
 * capacity needed, NUL included. Bytes that are not valid UTF-8 (ids cut inside a character) come out as
 * U+FFFD, as in HF. An id that is no token gives ARMT_STATUS_TOKEN_OUT_OF_RANGE. */
ARMT_API ARMT_NODISCARD armt_status armt_tokenizer_decode(armt_tokenizer *tok, const int32_t *ids, size_t n,
                                                          int skip_special, char *text, size_t cap,
                                                          size_t *len_out);
/* Max id + 1 over the vocab and the added tokens (HF get_vocab_size(with_added_tokens=True)). */
ARMT_API int32_t armt_tokenizer_vocab_size(const armt_tokenizer *tok);
/* -1 if absent; e.g. "<|eot_id|>". Added tokens first, then the vocab (whose keys are byte-level text). */
ARMT_API int32_t armt_tokenizer_token_id(const armt_tokenizer *tok, const char *token_text);

/* ======================================================================================================= */
/* Generation                                                                                              */
/* ======================================================================================================= */
/* Reads a prompt and produces new tokens as the reference does (docs/MATH.md §3.6): every segment of the
 * prompt but the last goes through armt_forward (memory read and written, `schedule`); the last segment
 * (1 .. segment_size tokens; a full one when the prompt length is a multiple of segment_size) runs WITHOUT
 * memory tokens and writes nothing, positions restarting at 0, every layer reading the memory on every
 * token (after the sink row with use_sink; with a sliding window its text rows attend to the window the
 * earlier segments left, as the forward's do, however far the new tokens run); new tokens follow one at a
 * time with a KV cache for that segment. The context's memory state ends as after the prompt's earlier
 * segments; on error it is left as before the call. */
typedef int (*armt_token_fn)(int32_t token, void *user_data); /* return non-zero to stop */

typedef struct armt_generate_params {
    armt_schedule schedule; /* for the prompt's earlier segments: DIAGONAL (default) or SEQUENTIAL */
    int max_new_tokens;     /* default 32                                                          */
    int32_t stop_id;        /* stop after producing this id (included in the output); -1: none   */
    float temperature;      /* 0 (default): greedy, ties to the lowest id                          */
    int top_k;              /* keep the k most likely (0: all)                                     */
    float top_p;            /* nucleus: keep the smallest set with probability >= top_p (1: all)   */
    uint64_t seed;          /* sampling seed                                                       */
    armt_token_fn on_token; /* optional: each token as it is produced; non-zero return: stop       */
    void *user_data;        /*   (a normal end: ARMT_OK, stopped = 2, the tokens so far kept)     */
    /* Optional progress (since 0.2.0): (done, total) with total = the schedule steps of the prompt's
     * earlier segments + max_new_tokens; called after each step of the prompt and after each new token.
     * A non-zero return cancels: ARMT_STATUS_CANCELLED, the memory state as before the call, out and
     * result unspecified. */
    armt_progress_fn progress;
    void *progress_user_data;
} armt_generate_params;

typedef struct armt_generate_result {
    size_t n_tokens; /* tokens produced                                        */
    size_t prompt_tokens;
    size_t tail_tokens;     /* prompt tokens in the generation segment                */
    double prefill_seconds; /* prompt (earlier segments + the tail's prefill)         */
    double decode_seconds;  /* producing the new tokens after the first one           */
    int stopped;            /* 1: stop id, 2: callback, 0: max_new_tokens reached     */
} armt_generate_result;

ARMT_API armt_generate_params armt_generate_default_params(void);
/* out (capacity out_cap >= max_new_tokens) receives the new tokens; it may be NULL when on_token is set.
 * result may be NULL. */
ARMT_API ARMT_NODISCARD armt_status armt_generate(armt_ctx *ctx, const int32_t *prompt, size_t n,
                                                  const armt_generate_params *params, int32_t *out,
                                                  size_t out_cap, armt_generate_result *result);

/* ---- Generation for a batch (since 0.2.0) ----
 * B documents, each with its own context (memory state), prompt, sampling, stop and continuation, as
 * armt_generate runs each alone: the prompts' earlier segments through armt_forward_batch (one schedule),
 * then the tails of all documents as one rows step and one new token per document at a time, every linear
 * layer one GEMM over the rows of all documents (the weights read once per step for all of them); each row
 * attends to its own document's KV cache and reads its own document's memory. A document that stops (its
 * stop id, its on_token, its max_new_tokens) drops out; the others go on. Each document's tokens equal those
 * of armt_generate on it alone (greedy, and sampling with the same seed; docs/DESIGN.md, "Batches"). */
typedef struct armt_generate_doc {
    armt_ctx *ctx;         /* the document's memory state (as after armt_generate when the call succeeds) */
    const int32_t *prompt; /* its prompt, n tokens (n > 0)                                                */
    size_t n;
    /* its max_new_tokens, stop_id, temperature, top_k, top_p, seed, on_token and user_data; schedule and
     * progress are the batch's (armt_generate_batch's params) */
    armt_generate_params params;
    int32_t *out; /* its new tokens (out_cap >= max_new_tokens; NULL allowed with on_token) */
    size_t out_cap;
    armt_generate_result result; /* filled by the call (decode_seconds: until the document stopped)      */
} armt_generate_doc;

/* Runs docs[0..n_docs) on runner's queue, kernels and scratch (runner may be one of the documents' contexts;
 * every context must belong to its model and appear once). params (NULL: the defaults): schedule of the
 * earlier segments, progress (steps of the prompts' schedule, then one per new-token round) and
 * progress_user_data; its other fields are not used. Everything is checked before any state changes (a bad
 * document fails the call with its index in the message); a failure later (device error, cancel) puts every
 * document's state back as before the call. Errors are recorded on runner. A profiling runner's profile is
 * then that of the new-token rounds after the prompts (armt_ctx_profile). */
ARMT_API ARMT_NODISCARD armt_status armt_generate_batch(armt_ctx *runner, armt_generate_doc *docs,
                                                        size_t n_docs, const armt_generate_params *params);

#ifdef __cplusplus
}
#endif
#endif /* ARMT_H */
