/*
 * internal.h - the three handle structs and the helpers shared by the library's modules.
 */
#ifndef ARMT_INTERNAL_H
#define ARMT_INTERNAL_H

#define CL_TARGET_OPENCL_VERSION 120
#include <CL/cl.h>
#include <pthread.h>
#include <stdint.h>
#include <string.h>

#include "armt.h"
#include "common/error.h"
#include "common/roles.h"

/* ======================================================================================================= */
/* Kernels                                                                                                 */
/* ======================================================================================================= */

/* One entry per kernel the library launches; the table in programs.c maps each to its program. */
typedef enum armt_kernel_id {
    ARMT_K_EMBED = 0,                /* embed.cl      token gather + memory tokens                 */
    ARMT_K_FILL_UNIFORM,             /* init.cl       deterministic random weights                 */
    ARMT_K_RMSNORM,                  /* norm.cl       RMSNorm of the residual stream               */
    ARMT_K_RMSNORM_ROWS,             /* norm.cl       final RMSNorm of a block of rows             */
    ARMT_K_ROPE,                     /* rope.cl       rotary embedding of q and k, in place        */
    ARMT_K_ATTENTION,                /* attention.cl  tiled causal GQA attention, online softmax  */
    ARMT_K_SWIGLU,                   /* elementwise.cl silu(gate) * up                             */
    ARMT_K_DPFP,                     /* memory.cl     DPFP feature map (nu = 3)                    */
    ARMT_K_MEM_READ,                 /* memory.cl     x += num / (phi(q).z + 1e-5)                 */
    ARMT_K_MEM_READ_SCALE,           /* memory.cl     1 / (phi(q).z + 1e-5) per row (fused read)  */
    ARMT_K_DPFP_READ_SCALE,          /* memory.cl     DPFP + norm + row scale of one row (decode)  */
    ARMT_K_MEM_GATHER,               /* memory.cl     copy the memory-token rows of each cell      */
    ARMT_K_MEM_WRITE_PREP,           /* memory.cl     beta, gamma, den of each memory row          */
    ARMT_K_MEM_DELTA,                /* memory.cl     beta * (vnew - vprev / den)                  */
    ARMT_K_MEM_Z_UPDATE,             /* memory.cl     z += sum gamma * phi(k); mark layer written  */
    ARMT_K_EMBED_BF16,               /* embed.cl      the same with a bf16 embedding table         */
    ARMT_K_FILL_UNIFORM_BF16,        /* init.cl    random weights rounded to bf16               */
    ARMT_K_GEMM_BF16,                /* gemm_bf16.cl  batched GEMM, bf16 weights (portable)        */
    ARMT_K_GEMM_BF16_MMA,            /* gemm_mma_*.cl the same on NVIDIA tensor cores (optional)   */
    ARMT_K_ATTENTION_MMA,            /* attention_mma.cl attention on tensor cores, bf16 models (optional) */
    ARMT_K_MEM_BF16_T,               /* memory.cl     bf16 transposed copy of W_mem (bf16 models)  */
    ARMT_K_F32_TO_BF16,              /* gemm_bf16.cl  bf16 copy of a GEMM operand (tensor cores only) */
    ARMT_K_GEMM_BF16BF16_MMA,        /* gemm_mma_*.cl tensor-core GEMM with a bf16 A (optional)     */
    ARMT_K_GEMM_BF16_MMA_NARROW,     /* the fp32-A one with the narrow tiles (optional)              */
    ARMT_K_GEMM_BF16BF16_MMA_NARROW, /* the bf16-A one with the narrow tiles (optional)              */
    ARMT_K_ATTENTION_MMA_KVBF16,     /* attention_mma.cl on bf16 K and V (optional)                  */
    ARMT_K_PHI_NORMALIZE,            /* memory.cl     L2-normalised features (amt, armt variants)    */
    ARMT_K_MEM_BLOCK_MASK,           /* memory.cl     zero W_mem's off-head blocks (memory heads)    */
    ARMT_K_WINDOW_GATHER,            /* attention.cl  sliding window: the keys of a step's cells      */
    ARMT_K_WINDOW_STORE,             /* attention.cl  sliding window: the window after a step         */
    ARMT_K_GEMM_TF32,                /* gemm_tf32.cl  fp32 GEMM on tensor cores, 3xTF32 (optional)    */
    ARMT_K_GEMM_TF32_WG,             /* gemm_tf32_wg.cl  the same on Hopper wgmma (optional)          */
    ARMT_K_GEMV_BF16,                /* gemv_bf16.cl  few rows (generation) x bf16 weights           */
    ARMT_K_GEMV_BF16BF16,            /* gemv_bf16.cl  the same with a bf16 A                         */
    ARMT_K_GEMV1_BF16,               /* gemv_bf16.cl  the same, entries of one row                   */
    ARMT_K_GEMV1_BF16BF16,           /* gemv_bf16.cl  the same, entries of one row, bf16 A           */
    ARMT_K_ATTENTION_DECODE,         /* attention.cl  one row against a KV cache, split into chunks  */
    ARMT_K_ATTENTION_DECODE_COMBINE, /* attention.cl  the chunks' partial softmaxes combined        */
    ARMT_K_ROWS_ROPE_TABLE,          /* rows.cl       batch generation: the RoPE table of a step's rows */
    ARMT_K_ROWS_KV_APPEND,           /* rows.cl       the rows' keys and values into their KV caches  */
    ARMT_K_KV_TO_BF16,               /* rows.cl       fp32 rows into a bf16 KV cache                  */
    ARMT_K_ROWS_MEM_READ,            /* rows.cl       the memory read, each row on its document's z   */
    ARMT_K_ROWS_MEM_READ_SCALE,      /* rows.cl       its row scales (the fused read)                 */
    ARMT_K_ROWS_ATTENTION,           /* rows_attention.cl each row on its document's KV cache         */
    ARMT_K_CELLS_RMSNORM,            /* rows.cl       RMSNorm of cells listed in a table (batches)      */
    ARMT_K_CELLS_MEM_GATHER,         /* rows.cl       their memory-token rows                            */
    ARMT_K_ROWS_SPLITK_SUM,          /* rows.cl       a split-k GEMM's slices summed into C             */
    ARMT_K_ROWS_ARGMAX,              /* rows.cl       the greedy token of rows of logits                 */
    ARMT_K_ROWS_ATTENTION_DECODE,    /* rows_attention.cl a decode round's rows, split into chunks    */
    ARMT_K_ROWS_ATTENTION_COMBINE,   /* rows_attention.cl their chunks combined                       */
    ARMT_K_GEMV1_BF16_DPFP,          /* gemv_bf16.cl  W_mq of one row, the read's row scale in its tail */
    ARMT_K_ROWS_ARGMAX_PART,         /* rows.cl       the greedy token by several work-groups a row    */
    ARMT_K_ROWS_ARGMAX_FINAL,        /* rows.cl       their pairs' choice (without the fused decode)   */
    ARMT_K_COUNT
} armt_kernel_id;

typedef enum armt_program_id {
    ARMT_P_EMBED = 0,
    ARMT_P_INIT,
    ARMT_P_NORM,
    ARMT_P_ROPE,
    ARMT_P_ATTENTION,
    ARMT_P_ELEMENTWISE,
    ARMT_P_MEMORY,
    ARMT_P_GEMM_BF16,
    ARMT_P_GEMM_NARROW,   /* the GEMM again, with narrow tiles (tensor cores only; NULL elsewhere) */
    ARMT_P_ATTENTION_MMA, /* attention with its tensor-core kernels (per model, like ARMT_P_ATTENTION) */
    ARMT_P_GEMM_TF32,     /* the fp32 tensor-core GEMM (built where tune.tf32; NULL elsewhere) */
    ARMT_P_COUNT
} armt_program_id;

/* Embedded kernel sources (generated lib/kernels_gen.c). */
typedef struct armt_kernel_source {
    const char *name; /* file name, e.g. "norm.cl" */
    const unsigned char *data;
    size_t size;
} armt_kernel_source;
extern const armt_kernel_source armt_kernel_sources[];
extern const size_t armt_kernel_source_count;

/* ======================================================================================================= */
/* Runtime                                                                                                 */
/* ======================================================================================================= */

/* Device limits and tunables, decided once per device by tune.c (the one place for device quirks). */
typedef struct armt_device_tuning {
    int attn_bq;        /* query rows per attention work-group            */
    int attn_bk;        /* key rows per local-memory tile (clamped per model to local memory) */
    uint64_t local_mem; /* bytes of local memory per work-group           */
    int row_wg;         /* work-group size of row-wise kernels            */
    int gemm_tm, gemm_tn, gemm_rm, gemm_rn; /* portable bf16 GEMM tile      */
    int nv_mma;                             /* 1: tensor-core bf16 GEMM (NVIDIA, cc >= 8.0, or emulated) */
    int mma_emulate; /* 1: the tensor-core kernels run as OpenCL C stand-ins (ARMT_TC_EMULATE, tests) */
    int mma_bm, mma_bn, mma_threads;     /* its tile and work-group size */
    int mma_bk, mma_warps_n, mma_stages; /* k per stage, warps along n (2 along m), stages (0: default) */
    int mma_wgmma;                       /* 1: its multiplies are Hopper wgmma (compute capability 9.0) */
    int mma_wg_n;                        /* wgmma: n per instruction                                */
    int mma_raster;                      /* 1: row tiles fastest in launch order (MMA_RASTER)       */
    int mma_smem_max; /* local memory the tiles may declare (0: the kernel's 48 KiB default) */
    int nar_bm, nar_bn, nar_warps_m, nar_warps_n, nar_threads; /* narrow tiles, for GEMMs of n <= nar_bn
                                                                  (W_mq, W_mk) and launches of few work-groups
                                                                  (forward.c); nar_bn 0: none */
    int attn_mma;       /* 1: bf16 models run attention on tensor cores (or their stand-ins) */
    int attn_tf32;      /* 1: fp32 models too, 3xTF32 (where fp32 GEMMs run on tensor cores: tune.tf32) */
    int attn_tf32_gate; /* 1: AUTO chose attn_tf32: a model keeps it only where its load-time check finds it
                           at least as accurate as the fp32 kernel against fp64 (attention_check.c) */
    int am_warps_small, am_rt_small; /* its tiles for heads up to 64: warps per work-group, m16 row tiles per
                                        warp */
    int am_warps_large, am_rt_large; /* and for larger heads                                             */
    int tf32;                        /* 1: fp32 weights' GEMMs on tensor cores, 3xTF32 (gemm_tf32.cl)     */
    int tf_bm, tf_bn, tf_bk, tf_warps_m, tf_warps_n, tf_stages, tf_threads; /* its tiles                 */
    int tf_wgmma;                /* 1: and on wgmma where the operands are row-major (gemm_tf32_wg.cl) */
    int tw_wgm, tw_n, tw_stages; /* its tiles: 64 tw_wgm x tw_n, 128 tw_wgm work-items; stages        */
    int gemv_lanes;  /* the GEMV's work-items per column pair: 32, 64 or 128; 0: by the weight's shape
                       (lib/compute/gemm.c) */
    int gemv_wgs;    /* ... by the shape: lanes doubled while a launch has fewer than gemv_wgs work-groups
                       per compute unit */
    int splitk;      /* slices of k of a batch's decode-round GEMMs (lib/compute/generate_batch.c) and of the
                       3xTF32 GEMMs (lib/compute/gemm.c): 1 none, 2..16 forced where a slice keeps whole k
                       stages; 0: auto, by the launch's work-groups (decode) or one entry's tiles (3xTF32) */
    int splitk_rule; /* the 3xTF32 GEMMs' auto split-k: 0 none (the default until a GPU measures the rules), 1
                        by the estimated time (the slices' rounds of the compute units and their sums'
                        traffic), 2 one wave (S doubled while S x tiles fits the compute units) */
    int mlp_rows;    /* rows of a one-cell step's MLP per block (the full schedule: its gate, up and down
                       products in row blocks, so f1 and f2 hold a block, not the input; step.c) */
    /* generation's one-token steps: the queue is flushed after every decode_flush layers, so that the device
     * starts on a token's first kernels while the host still enqueues the rest (generate.c); 0: no flush
     * until the token is read */
    int decode_flush;
    /* 1: a decode token's attention combines its chunks in the same launch (the head's last work-group:
     * cl/attention.cl), the W_mq GEMV's last work-group computes the read's DPFP and row scale
     * (armt_gemv1_bf16_dpfp) and the greedy token's last work-group picks it (armt_rows_argmax_part): a
     * cross-work-group fence OpenCL 1.2 does not promise, so NVIDIA's PTX only unless $ARMT_DECODE_FUSE says
     * otherwise; 0: launches of their own */
    int decode_fuse;
} armt_device_tuning;

/* What the user chose (armt_runtime_params, environment), as tune.c reads it. */
typedef struct armt_tune_options {
    armt_tensor_cores tensor_cores, wgmma, attention;
    armt_fp32_gemm fp32_gemm;
    int gemv_lanes; /* $ARMT_GEMV_LANES: 0 (auto), 32, 64 or 128 */
    int gemv_wgs;   /* $ARMT_GEMV_WGS: 0 (the default, 1) or 1 .. 64 */
    int splitk;     /* $ARMT_SPLITK: 0 (auto, the default), 1 (none), 2, 4, 8 or 16 */
    int mlp_rows;   /* $ARMT_MLP_ROWS: 0 (the default, ARMT_MLP_ROWS_DEFAULT) or >= 1 */
    /* $ARMT_DECODE_FLUSH: -1 (the default, ARMT_DECODE_FLUSH_DEFAULT), 0 (none) or >= 1 */
    int decode_flush;
    int decode_fuse; /* $ARMT_DECODE_FUSE: -1 (the default: on with NVIDIA's PTX), 0 or 1 */
    int splitk_rule; /* $ARMT_SPLITK_RULE: 0 (the default: none), 1 (the estimated time) or 2 (one wave) */
} armt_tune_options;

/* Rows of the full schedule's MLP blocks unless $ARMT_MLP_ROWS says otherwise: 16,384 rows of LLaMA-3.2-1B's
 * gate and up (8,192 wide) hold 1 GiB in f1 and f2 together, against 8 GiB for 131,072 tokens at once. */
#define ARMT_MLP_ROWS_DEFAULT 16384
/* Layers of a decode token between queue flushes unless $ARMT_DECODE_FLUSH says otherwise: none (flushes
 * every layer or every 4 changed nothing on an H100: docs/perf/results/2026-12-07-h100-reference-and-decode.md;
 * a knob for other drivers) */
#define ARMT_DECODE_FLUSH_DEFAULT 0

/* One model's attention build (armt_tune_attention). */
typedef struct armt_attention_tuning {
    int head_dim;
    int bk;            /* fp32 kernel: key rows per local-memory tile, clamped to local memory      */
    int mma;           /* 1: the tensor-core kernels too (program ARMT_P_ATTENTION_MMA)              */
    int tf32;          /* 1: they take fp32 operands with 3xTF32 products (AM_TF32: fp32 models)     */
    int am_bk;         /* their keys per tile (0: the kernel's default)                              */
    int warps, rtiles; /* their warps per work-group and m16 row tiles per warp                      */
} armt_attention_tuning;

struct armt_runtime {
    armt_err err;
    pthread_mutex_t lock; /* guards allocation accounting                   */
    cl_platform_id platform;
    cl_device_id device;
    cl_context context;
    cl_command_queue queue; /* uploads and model initialisation               */
    armt_device_info info;
    armt_device_tuning tune;
    int clblast_tuned;    /* kernels whose CLBlast parameters the library set (device/clblast.h) */
    char *build_options;  /* every program's options from the tuning (tune.c)        */
    char *cl_passthrough; /* developer options, last on every build (NULL: none)    */
    char *kernel_dir;     /* NULL: embedded sources                         */
    cl_program programs[ARMT_P_COUNT]; /* ATTENTION is NULL: built per model    */
    int profile;
    uint64_t device_bytes; /* all buffers of models and contexts now         */
    uint64_t peak_bytes;
};

/* Compiled-in checks of a buffer against the device's limits; on success allocates and accounts. */
armt_status armt_buffer_create(armt_runtime *rt, size_t bytes, cl_mem *out, const char *what, armt_err *err);
void armt_buffer_release(armt_runtime *rt, cl_mem *buf, size_t bytes);
/* Would `bytes` more fit (per-buffer max and total)?  Records ARMT_STATUS_OUT_OF_DEVICE_MEMORY if not. */
armt_status armt_device_fits(armt_runtime *rt, const size_t *sizes, size_t n, const char *what,
                             armt_err *err);

/* float -> bf16 bits, round to nearest even (as the kernels do). */
static inline uint16_t armt_bf16_bits(float f) {
    uint32_t u;
    memcpy(&u, &f, sizeof u);
    return (uint16_t)((u + 0x7fffu + ((u >> 16) & 1u)) >> 16);
}

/* Tuning (tune.c). The tuning of a device under the user's options; ARMT_STATUS_UNSUPPORTED where an option
 * requires what the device lacks. */
armt_status armt_tune_device(const armt_device_info *info, const armt_tune_options *opt,
                             armt_device_tuning *tune, armt_err *err);
/* The wgmma tiles failed their check at load: the mma.sync tiles instead (narrow tiles kept if there). */
void armt_tune_wgmma_failed(armt_device_tuning *tune);
/* The narrow tiles' program failed: every GEMM on the main tiles. */
void armt_tune_narrow_failed(armt_device_tuning *tune);
/* The -D options of every program, written into buf (256 bytes hold them). */
void armt_tune_common_options(const armt_device_tuning *tune, char *buf, size_t n);
/* The GEMM program's tile options (empty without tensor cores) into buf; narrow = 1: those of the narrow
 * tiles (empty without them). */
void armt_tune_gemm_options(const armt_device_tuning *tune, int narrow, char *buf, size_t n);
/* The fp32 tensor-core GEMM program's tile options into buf (empty without tune->tf32). */
void armt_tune_tf32_options(const armt_device_tuning *tune, char *buf, size_t n);
/* The fp32 tensor-core GEMM's program (lib/device/tf32_program.c): built with the tuning's tiles; with the
 * wgmma kernel (tune->tf_wgmma) rebuilt for sm_90a on a GPU and checked on a product it knows, or built again
 * without that kernel (a warning) where either fails. */
armt_status armt_tf32_program_build(armt_runtime *rt, cl_program *out, armt_err *err);
/* The fp32 models' 3xTF32 attention (program p, built with at's AM_TF32 options) against the fp32 kernel of
 * the same program and an fp64 reference on one cell (lib/device/attention_check.c): 0 when it ran, agrees
 * with the fp32 kernel at fp32 level and, with gate (tune.attn_tf32_gate), its rms error against fp64 is at
 * most the fp32 kernel's; 1 when only the gate failed (an info message); -1 otherwise (a warning says why). */
int armt_attention_tf32_check(armt_runtime *rt, cl_program p, const armt_attention_tuning *at, int gate);
/* One causal cell of T rows and keys (nh query heads on nkv KV heads, no window, no memory rows, scale
 * 1/sqrt(head dim)) through attention kernel k of a program of tuning at: its arguments set and one launch
 * enqueued on rt's queue (mma: armt_attention_mma's list and work-groups, else armt_attention's). */
cl_int armt_attention_cell_launch(armt_runtime *rt, cl_kernel k, int mma, const armt_attention_tuning *at,
                                  cl_mem q, cl_mem kb, cl_mem vb, cl_mem o, int T, int nh, int nkv);
/* The fp64 attention of row r of such a cell (q [T, nh, hd], k and v [T, nkv, hd]) into o[nh hd]; s: r + 1
 * doubles of scratch. */
void armt_attention_ref_row(const float *q, const float *k, const float *v, int r, int nh, int nkv, int hd,
                            double *s, double *o);
/* The wgmma 3xTF32 kernel failed its check (lib/device/tf32_program.c): the program goes without it. */
void armt_tune_tf32_wgmma_failed(armt_device_tuning *tune);
/* One model's attention: tiles for its head dimension and precision (bf16 = 1), and their -D options. */
void armt_tune_attention(const armt_device_tuning *tune, int head_dim, int bf16, armt_attention_tuning *out);
void armt_tune_attention_options(const armt_attention_tuning *at, char *buf, size_t n);
/* Fills a device info record. */
void armt_fill_device_info(cl_platform_id p, cl_device_id d, int pi, int di, armt_device_info *out);

/* Programs (programs.c). The source files of a program, in build order (the tensor-core files only when
 * nv_mma): up to cap names into files; returns their count. */
size_t armt_program_files(armt_program_id pid, int nv_mma, const char **files, size_t cap);
/* Builds the runtime's programs (all but the attention ones, which belong to models), the sm_90a rebuild of
 * the wgmma GEMM with its check included, and checks that every kernel of the table exists. */
armt_status armt_programs_build(armt_runtime *rt, armt_err *err);
/* Creates kernel objects of every table entry from the runtime's programs (one set per user: they carry
 * arguments, so they are not shared between threads). */
armt_status armt_kernels_create(armt_runtime *rt, cl_program attention, cl_kernel *k, armt_err *err);
/* Builds the program's files with the runtime's options plus extra_options. */
armt_status armt_program_build(armt_runtime *rt, armt_program_id pid, const char *extra_options,
                               cl_program *out, armt_err *err);
void armt_kernels_release(cl_kernel *k);
const char *armt_kernel_name(armt_kernel_id id);

/* Launch helper (launch.c): sets nothing, enqueues a 1-3D range, counts the launch. lws may be NULL. When ev
 * is not
 * NULL it receives the launch's event (profiling). */
armt_status armt_enqueue(cl_command_queue q, cl_kernel k, cl_uint dims, const size_t *gws, const size_t *lws,
                         uint64_t *counter, const char *what, cl_event *ev, armt_err *err);

/* Tests only: make the launch after `launches` more launches fail with CL_OUT_OF_RESOURCES (-1: off). */
void armt_fault_inject(long launches);

/* Profiling categories: every kernel of the table, then CLBlast's GEMMs. */
#define ARMT_PROF_CLBLAST ARMT_K_COUNT
#define ARMT_PROF_COUNT   (ARMT_K_COUNT + 1)
/* GEMM sites of the profile (armt_ctx_profile_gemm): the weight roles, then the GEMMs without a weight. */
#define ARMT_GSITE_GATE_UP    ARMT_ROLE_COUNT       /* gate and up in one GEMM (Hopper tiles) */
#define ARMT_GSITE_MEM_READ   (ARMT_ROLE_COUNT + 1) /* phi(q) W_mem of the memory read        */
#define ARMT_GSITE_MEM_PREV   (ARMT_ROLE_COUNT + 2) /* phi(k) W_mem of the memory write       */
#define ARMT_GSITE_MEM_UPDATE (ARMT_ROLE_COUNT + 3) /* W_mem += phi(k)^T delta               */
#define ARMT_GSITE_KV         (ARMT_ROLE_COUNT + 4) /* k and v in one GEMM (Hopper tiles)     */
#define ARMT_GSITE_QKV        (ARMT_ROLE_COUNT + 5) /* q, k and v in one launch (the GEMV)    */
#define ARMT_GSITE_COUNT      (ARMT_ROLE_COUNT + 6)
/* Kernel argument helpers. */
#define ARMT_ARG(k, i, v) clSetKernelArg((k), (i), sizeof(v), &(v))

/* ======================================================================================================= */
/* Model                                                                                                   */
/* ======================================================================================================= */

/* One role's weights for all layers; split into chunks of whole layers when one buffer would exceed the
 * device's maximum allocation. Layer l lives in chunk l / layers_per_chunk at element
 * (l % layers_per_chunk) * per_layer. */
typedef struct armt_weight {
    int bf16;       /* elements are bf16 (ushort) instead of float      */
    cl_mem *chunks; /* n_chunks buffers                                 */
    int n_chunks;
    int layers_per_chunk;
    uint64_t per_layer; /* elements of one layer (or of a global tensor)    */
    size_t *chunk_bytes;
} armt_weight;

struct armt_model {
    armt_err err;
    armt_runtime *rt;
    armt_config cfg;
    armt_precision precision;
    armt_weight w[ARMT_ROLE_COUNT]; /* LM_HEAD has no chunks when tied (EMBED serves) */
    uint64_t bytes;
    uint64_t fingerprint;
    cl_program attention;      /* ARMT_P_ATTENTION(_MMA) built for its head_dim     */
    int attn_warps, attn_rt;   /* its tensor-core tiles (armt_tune_attention)      */
    cl_kernel k[ARMT_K_COUNT]; /* used while loading                               */
    int layer_first;     /* a pipeline stage's part: cfg holds layers [layer_first, layer_first + n_layers) of
                      *   the whole model (random values and checkpoint tensors by their global index) */
    unsigned skip_roles; /* a part: bit r set = global role r is not held (the embedding, memory tokens and
                          *   sink live on the first stage, the final norm and lm_head on the last)     */
};

/* Buffer and element offset of layer l of a role (l = 0 for global roles). */
static inline cl_mem armt_weight_at(const armt_weight *w, int layer, size_t *elem_off) {
    int c = layer / w->layers_per_chunk;
    *elem_off = (size_t)(layer % w->layers_per_chunk) * (size_t)w->per_layer;
    return w->chunks[c];
}
/* A pipeline stage's model (lib/compute/pipeline_stage.c): layers [first, first + count) of the model that
 * `path` (a checkpoint) or, with path NULL, cfg (random weights) describes, every global role included.
 * Its configuration has n_layers = count (memory_off shifted to match); a random part holds exactly the
 * values the whole model holds for those layers, and its fingerprint is the whole model's; a checkpoint's
 * part hashes its own tensors and its layer range. Of the global roles a part holds only those its stage
 * uses: the embedding, memory tokens and sink on the first, the final norm and lm_head (the embedding when
 * tied) on the last. */
armt_status armt_model_create_part(armt_runtime *rt, const armt_config *cfg, const char *path,
                                   const armt_model_params *params, int first, int count, armt_model **out,
                                   armt_err *err);
/* The lm_head weight (EMBED when tied). */
const armt_weight *armt_model_lm_head(const armt_model *m);
/* Reads a role's elements back to the host (tests, save). */
armt_status armt_model_read_role(armt_model *m, armt_role role, int layer, uint64_t first, uint64_t count,
                                 float *dst, armt_err *err);

/* ======================================================================================================= */
/* Context                                                                                                 */
/* ======================================================================================================= */

struct armt_ctx {
    armt_err err;
    armt_model *model;
    armt_runtime *rt;
    cl_command_queue queue;
    cl_kernel k[ARMT_K_COUNT];

    /* memory state (resident) */
    cl_mem w_mem;      /* (n_layers, d_key, d)                                   */
    cl_mem z;          /* (n_layers, d_key)                                      */
    cl_mem written;    /* (n_layers) int: 1 once the layer has written memory    */
    cl_mem w_mem_prev; /* snapshots taken at the start of a forward, restored    */
    cl_mem z_prev;     /*   if it fails, so an error leaves the state unchanged  */
    cl_mem written_prev;
    size_t state_bytes[3];
    cl_mem w_mem_bf; /* (n_layers, d, d_key) bf16 copy of W_mem^T, bf16 models only: the W operand
                           *   of the read products; derived from w_mem at the start of every forward
                           *   and after every write, never part of the state */
    /* sliding window (cfg.sliding_window; NULL otherwise), part of the state: the previous segment's text
     * keys (after RoPE) and values of every layer, right-aligned in W = segment_size rows */
    cl_mem win_k, win_v;           /* (n_layers, W, nkv*hd): rows W - win_len .. W - 1 hold the keys   */
    cl_mem win_k_prev, win_v_prev; /* their snapshots (with win_len_prev)                              */
    size_t win_bytes;              /* of each of the four                                              */
    int win_len, win_len_prev;     /* cached rows, the same in every layer (0: none, as after reset)   */

    /* scratch for `cap_cells` cells of `cap_rows` rows each (grown on demand); f1 and f2 for cap_mlp_rows
     * rows: cap_cells * cap_rows, or fewer where a one-cell step runs its MLP in row blocks (step.c) */
    size_t cap_cells, cap_rows, cap_mlp_rows;
    cl_mem x;        /* (cap_cells, rows, d)      residual stream, slot = s % cap_cells */
    cl_mem h;        /* (cap_cells, rows, d)      normed input / read numerator         */
    cl_mem q;        /* (cap_cells, rows, nh*hd)                                         */
    cl_mem kk;       /* (cap_cells, rows, nkv*hd)                                        */
    cl_mem vv;       /* (cap_cells, rows, nkv*hd)                                        */
    cl_mem att;      /* (cap_cells, rows, nh*hd)  attention output                       */
    cl_mem f1, f2;   /* (cap_mlp_rows, ffn)       gate / up, then silu(gate)*up in f1    */
    cl_mem mq;       /* (cap_cells, rows, d_mem)  W_mq / W_mk projections                */
    cl_mem phi;      /* (cap_cells, rows, d_key)  DPFP features                          */
    cl_mem mrows;    /* (cap_cells, M, d)         memory-token rows of each cell         */
    cl_mem vnew;     /* (cap_cells, M, d)         W_mv projection, then the delta        */
    cl_mem vprev;    /* (cap_cells, M, d)         phi(k) W_mem                           */
    cl_mem wstat;    /* (cap_cells, M, H, 4)      den, gamma, beta, written per head     */
    cl_mem mbeta;    /* (cap_cells, M, d)         W_mb products with gating (else tiny)  */
    cl_mem ck, cv;   /* (cap_cells, W + rows, nkv*hd) sliding window: the keys / values a cell
                           *   attends to, the window then its own rows (else tiny)              */
    cl_mem rope;     /* (rope_rows, head_dim)     cos | sin halves per position          */
    cl_mem ids;      /* (ids_cap) int             token ids of the current call          */
    cl_mem out_rows; /* (out_rows_cap, d)         final-normed rows                      */
    cl_mem logits;   /* (out_rows_cap, vocab)                                            */
    cl_mem abf;      /* (cap_cells, rows, max(d, nh*hd, d_key)) bf16: the A operand of the
                           *   next GEMMs, rounded once (bf16 models on tensor cores; else 4 bytes) */
    size_t rope_rows, ids_cap, out_rows_cap;
    /* the 3xTF32 GEMMs' split-k slices (lib/compute/gemm.c), grown on demand, released with the scratch;
     * a batch's document view (a copy of its runner) uses its runner's: splitk_owner */
    cl_mem splitk;
    size_t splitk_bytes;
    struct armt_ctx *splitk_owner; /* NULL: this context's own */
    size_t scratch_bytes;          /* every scratch buffer's bytes, the split-k slices' included */

    armt_stats stats;

    /* profiling (profile set): events of the current forward, summed at its end */
    struct armt_prof_event {
        cl_event ev;
        int cat;     /* category                                    */
        int site;    /* GEMM site, or -1                            */
        double flop; /* the GEMM's FLOPs (2 m n k count), or 0      */
    } * prof;        /* (prof_cap) events kept for the profile      */
    size_t prof_n, prof_cap;
    double prof_s[ARMT_PROF_COUNT];                              /* seconds per category, last forward */
    double prof_gs[ARMT_GSITE_COUNT], prof_gf[ARMT_GSITE_COUNT]; /* seconds and FLOPs per GEMM site */
    int profile; /* the queue profiles: armt_ctx_params.profile, else rt->profile     */
    int prof_on; /* record events now: profile, off for a forward with no_profile     */
};

/* The sliding window of a context (cfg.sliding_window) to the host (the rows it does not hold as zeros) or
 * from it, with the rows held (ctx.c; the state files and the pipeline's, pipeline_state.c). */
struct armt_state_window;
armt_status armt_ctx_window_get(armt_ctx *ctx, struct armt_state_window *x);
armt_status armt_ctx_window_set(armt_ctx *ctx, const struct armt_state_window *x);
/* Releases every scratch buffer of a context (forward.c grows them; ctx.c frees them). */
void armt_ctx_release_scratch(armt_ctx *ctx);

/* Keeps an event for the profile (takes ownership); no-op when profiling is off or ev is NULL. */
void armt_ctx_prof_add(armt_ctx *ctx, int category, cl_event ev);
/* The same for a GEMM launch: also booked to its site (a weight role or ARMT_GSITE_*; -1: none) with its
 * FLOPs. */
void armt_ctx_prof_add_gemm(armt_ctx *ctx, int category, cl_event ev, int site, double flop);
/* Waits for the queue and releases the kept events without summing them (work outside a forward). */
void armt_ctx_prof_drop(armt_ctx *ctx);
/* Waits for the queue, sums the kept events into prof_s and releases them. */
void armt_ctx_prof_collect(armt_ctx *ctx);
/* Drops the kept events and zeroes the sums: the profile starts anew (a forward, a generation's decode). */
void armt_ctx_prof_restart(armt_ctx *ctx);

#endif
