/*
 * gemm.h - the one door to the library's GEMMs: armt_gemm(ctx, op).
 *
 * An op says everything about one batched product C_j = epi(A_j W_j^T (+ C_j)), j < count: operands with
 * per-entry offsets, the epilogue, the rows to skip. A pure planning function (armt_gemm_plan_make) picks
 * the kernel and its launch geometry from the op and the device's tuning; armt_gemm then sets the kernel's
 * arguments by their names (cl/gemm_args.h) and enqueues, or calls CLBlast (fp32 weights, unless the device
 * runs them on tensor cores: 3xTF32, cl/gemm_tf32.cl).
 */
#ifndef ARMT_GEMM_H
#define ARMT_GEMM_H

#include "device/internal.h"
#include "device/kernel_args.h"

/* The GEMV's DPFP tail (generation's W_mq product of one row, fp32 A, one entry: cl/gemv_bf16.cl
 * armt_gemv1_bf16_dpfp): after the product (mq, C's row) the launch's last work-group writes phi (6 dm
 * floats) and the read's row scale into C's first element, as armt_dpfp_read_scale would (the same bits). */
typedef struct armt_gemv_dpfp {
    cl_mem phi, z, written; /* phi (1, 6 dm); z (layers, dk); written (layers) */
    cl_mem cnt;             /* one counter, zero before the launch (and after it) */
    int dm, dh, dkh, normalized, no_denom, l;
} armt_gemv_dpfp;

/* What happens to the product P = A_j W_j^T before it is stored (tensor-core kernels only, except none). */
typedef struct armt_gemm_epi {
    cl_mem gate;  /* SwiGLU: out = bf16(silu(gate) * P), gate read at C's offsets; C is not written */
    cl_mem w2;    /* a second weight at W's offsets: P2 = A_j W2_j^T in the same GEMM (Hopper tiles) */
                  /*   out2 NULL: gate and up, out = bf16(silu(P) * P2); else k and v, see out2 */
    cl_mem out;   /* bf16 output at C's element offsets (with gate, w2 or bf16_out) */
    cl_mem out2;  /* with w2: bf16(P2) here and bf16(P) into out (k and v) */
    int bf16_out; /* 1: out = bf16(P) instead of C */
    cl_mem rope;  /* RoPE table: P's heads rotated (rope_hd per head, rope_T rows a cell, pos0 first) */
    int rope_hd, rope_T, rope_pos0;
    cl_mem rowscale; /* C += rowscale[row of A] * P (beta 1) */
    /* the GEMV only (generation's one-row steps): */
    cl_mem norm_w; /* A's rows RMS-normed first (fp32 A; weight at norm_w + norm_off, epsilon norm_eps) */
    size_t norm_off;
    float norm_eps;
    cl_mem c2; /* with w2 and no out: k and v in fp32, P into C and P2 into c2 (at C's offsets) */
    cl_mem w3; /* a third product in the same launch (one entry, no rows skipped): c3 (m x n3 fp32 at
                * c3_off, row stride ldc3) = A W3^T with W3 at w3_off, RoPE'd as P is (generation's q with
                * k and v) */
    size_t w3_off, n3;
    cl_mem c3;
    size_t c3_off, ldc3;
    const armt_gemv_dpfp *dpfp; /* the DPFP tail (one row, one entry, fp32 A; NULL: none) */
} armt_gemm_epi;

typedef struct armt_gemm_op {
    size_t m, n, k, count; /* C_j is m x n, the inner dimension k, j < count */
    cl_mem a;              /* A_j: m x k at a_off[j], row stride lda (trans_a: k x m, fp32 W only) */
    size_t lda;
    const size_t *a_off;
    int trans_a;
    cl_mem a_bf16;   /* NULL, or the bf16 copy of A at the same offsets (a staged operand) */
    int a_bf16_only; /* 1: only a_bf16 holds A's values (a itself is stale) */
    cl_mem w;        /* W_j: n x k at w_off[j], row stride ldw (w_kn: k x n, fp32 only) */
    size_t ldw;
    const size_t *w_off;
    int w_bf16; /* 1: W is bf16 (our kernels); 0: fp32 (CLBlast, or 3xTF32 on tensor cores) */
    int w_kn;
    cl_mem c; /* C_j: m x n at c_off[j], row stride ldc */
    size_t ldc;
    const size_t *c_off;
    float beta;       /* 0 or 1 (residual add) */
    size_t skip_last; /* > 0: the last entry needs only its rows from skip_last on */
    armt_gemm_epi epi;
    size_t split_rows; /* > 0: the rows the 3xTF32 split-k rule counts for an entry instead of m (a cell's
                        * GEMMs: a full cell's rows, armt_step.split_rows, so that a short cell splits as in
                        * every schedule); 0: m */
    int site;          /* profile site (a weight role or ARMT_GSITE_*), -1: none */
    int gemv; /* 1: generation's rows (one new token per sequence): with m <= ARMT_GEMV_ROWS and bf16 W the
               * GEMV kernel (cl/gemv_bf16.cl) takes it, every epilogue included. Only generation sets it:
               * the forward's cells keep one kernel per shape, so that the schedules agree bit for bit. */
} armt_gemm_op;

/* Most rows per entry of the GEMV kernel (GV_ROWS in cl/gemv_bf16.cl). */
#define ARMT_GEMV_ROWS 4

/* What the plan depends on besides the op. */
typedef struct armt_gemm_env {
    const armt_device_tuning *tune;
    unsigned compute_units;
    int have_mma, have_bb, have_mma_narrow, have_bb_narrow; /* which tensor-core kernels exist */
    int have_tf32;    /* fp32 weights go to the 3xTF32 tensor-core kernel where their layout allows */
    int have_tf32_wg; /* and to its wgmma kernel where both operands are row-major */
} armt_gemm_env;

typedef struct armt_gemm_plan {
    int clblast; /* 1: CLBlast (fp32 weights); the rest does not apply */
    /* else the kernel: bf16 weights' (portable or tensor cores), or fp32 weights' on tensor cores (3xTF32) */
    armt_kernel_id kernel;
    int tensor_cores; /* the kernel is one of the tensor-core ones */
    int narrow;       /* ... on the narrow tiles */
    int gemv;         /* the GEMV kernel (every epilogue argument is passed) */
    int a_bf16;       /* it reads A from op->a_bf16 */
    int gv_lanes;     /* the GEMV: work-items per output column pair (32, 64 or 128) */
    size_t lws[2];    /* work-group size */
    size_t tile[2];   /* output columns and rows per work-group */
    int splitk;       /* S: the 3xTF32 kernels run k in S slices into the context's scratch, then a sum kernel
                       * adds them in order into C (1: no split; gemm.c's tf32_splitk has the rule: one
                       * entry's shape, the kernel and the device, never the number of entries) */
} armt_gemm_plan;

/* The environment of a context (its kernels and its runtime's tuning). */
armt_gemm_env armt_gemm_env_of(const armt_ctx *ctx);
/* Picks the kernel for op: a pure function of its arguments. Returns NULL, or why the op cannot run. */
const char *armt_gemm_plan_make(const armt_gemm_env *env, const armt_gemm_op *op, armt_gemm_plan *plan);
/* Runs op on the context's queue (stats and profile booked to the context). */
armt_status armt_gemm(armt_ctx *ctx, const armt_gemm_op *op, armt_err *err);

/* Capabilities the step asks of the GEMM before it lays out an operation. */
/* bf16 operands may be staged (the bf16-A tensor-core kernel exists for a bf16 model) */
int armt_gemm_bf16_operands(const armt_ctx *ctx);
/* RoPE fits the epilogue for this head size and width (and A is staged in bf16) */
int armt_gemm_rope_fits(const armt_ctx *ctx, int head_dim, int width);
/* two weight roles can go through one GEMM (epi.w2) */
int armt_gemm_pairs(const armt_ctx *ctx, armt_role a, armt_role b);
/* k and v in one GEMM pays for G cells of T rows of kv_width outputs */
int armt_gemm_kv_pair_pays(const armt_ctx *ctx, size_t kv_width, size_t G, size_t T);

/* C_j (m x out) = A_j (m x in) W[l0 + j]^T (+ C_j) for the G cells of a step, W a per-layer weight role (op:
 * everything but w, ldw, w_off, w_bf16, n, k, count and site; with pair >= 0, epi.w2 is set to that role's
 * weights of the same layers). Layers in different chunks of the role go in separate calls. w_off: scratch
 * of at least G entries. */
armt_status armt_gemm_weights(armt_ctx *ctx, armt_gemm_op op, armt_role role, int pair, int l0, int G,
                              size_t *w_off, armt_err *err);
/* 1 when armt_gemm_weights would run op over the one layer l0 on the GEMV kernel (whose epilogue alone has
 * the RMSNorm prologue and fp32 k and v: a caller asks before it hands the GEMV work it cannot give back). */
int armt_gemm_weights_gemv(armt_ctx *ctx, armt_gemm_op op, armt_role role, int pair, int l0);
/* Generation's product of many rows (op: one entry of op.m rows at a_off[0] / c_off[0], everything but the
 * weight fields, as armt_gemm_weights) with layer l's weight of a role, on the GEMV kernel: the rows in blocks
 * of ARMT_GEMV_ROWS, the entries of one launch that each read the same weight, and a second launch for the
 * rows left over. For a small weight in a batch's decode rounds (W_mq: 64 outputs), which the tensor-core
 * tiles give one work-group. Returns 0 without running anything where the GEMV kernel cannot take the op
 * (the caller then runs armt_gemm_weights); offs: scratch of 3 (op.m / ARMT_GEMV_ROWS + 1) entries. */
int armt_gemm_weights_rows(armt_ctx *ctx, armt_gemm_op op, armt_role role, int l, size_t *offs,
                           armt_status *st, armt_err *err);

/* Split-k for a product whose tensor-core launch has few work-groups (a batch's decode rounds: 64 rows
 * against q's, o's, k's, v's and down's weights gave the narrow tiles 8 to 32 work-groups): op (one entry of
 * op.m rows, no epilogue, as armt_gemm_weights) with layer l's weight of a role, k cut into S slices that run
 * as the S entries of one GEMM into P (S x m x n fp32; the caller adds them into C: armt_rows_splitk_sum).
 * S: tune.splitk ($ARMT_SPLITK; 1 never splits), or with 0 (auto, the default) doubled while the launch
 * stays within two work-groups a compute unit. Returns S, or 0
 * without running anything (no split pays, or P holds fewer than p_floats needs); the GEMM's status in *st.
 * offs: scratch of 48 entries. */
int armt_gemm_weights_splitk(armt_ctx *ctx, armt_gemm_op op, armt_role role, int l, cl_mem P, size_t p_floats,
                             size_t *offs, armt_status *st, armt_err *err);

#endif
