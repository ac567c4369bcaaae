/*
 * step.h - the per-call state of a forward and one schedule step as a recipe (step.c), over the small
 * kernel wrappers (ops.c), the GEMM door (gemm.c) and the scratch buffers (scratch.c). Shared by the
 * schedules (forward.c) and generation (generate.c).
 */
#ifndef ARMT_STEP_H
#define ARMT_STEP_H

#include "compute/gemm.h"
#include "device/internal.h"

/* Per-call host bookkeeping: model sizes, GEMM offset arrays, the host mirror of the written flags, and
 * which fp32 buffer currently has a bf16 copy (a staged GEMM operand). */
typedef struct armt_call {
    armt_ctx *ctx;
    armt_err *err;
    const armt_config *cfg;
    int d, dk, dm, M, hd, nh, nkv, ffn, V;
    int H, dkh, dvh;                  /* memory heads; features and channels per head                */
    int normalized, no_denom, gating; /* the variant's memory math (docs/VARIANTS.md)                */
    int ns;                           /* sink rows before each segment's tokens (use_sink: 1, else 0) */
    int win;                          /* sliding window: its rows W = segment_size (0: none)          */
    int win_first;                    /*   rows the context's window holds at the call's start       */
    int mem_all;                      /* > 0 (inner loop): a cell's last mem_all rows, its memory     */
                                      /*   tokens, attend to all its rows (0 with no memory tokens)   */
    size_t *a_off, *b_off, *c_off;    /* (n_layers) each */
    uint8_t *written;                 /* (n_layers) host mirror of ctx->written */
    const armt_forward_params *p;
    const int32_t *ids; /* the caller's ids */
    size_t n;           /* tokens of this call */
    cl_mem abf_src;     /* the buffer whose leading rows abf_buf holds in bf16 */
    cl_mem abf_buf;     /*   where: ctx->abf, or ctx->f2 after the SwiGLU epilogue */
    int abf_only;       /*   1: abf_src's own (fp32) contents are stale */
    int gemv;           /* 1: generation: GEMMs of few rows may take the GEMV kernel (armt_gemm_op.gemv) */
    int norm_pend;      /* 1: the RMSNorm norm_role of x is left to the GEMVs that read its rows (step.c) */
    armt_role norm_role;
} armt_call;

/* Geometry of a step (see cl/common.cl). */
typedef struct armt_step {
    int l0, G, s0, cap, T, s_short, T_short;
    /* > 0: rows [0, skip) of the step's cell on the model's last layer feed nothing (no output reads them):
     * that cell computes q, attention, o and the MLP only for the rows from skip on (its memory tokens',
     * which the memory write reads, and the last token's when its logits are asked for). 0: every row. */
    int skip;
    /* > 0: the rows of a full cell (sink, segment_size tokens, memory tokens; the full schedule: n), which
     * the 3xTF32 split-k rule counts for the GEMMs over the step's cells whatever their own rows
     * (armt_gemm_op.split_rows): a short last cell has its own rows in the sequential schedule and the
     * longest cell's in the diagonal one and in a batch, and each must split as the others do. 0: the ops'
     * own rows (generation's tail and decode steps, which no other schedule repeats). */
    int split_rows;
    /* generation only (zero otherwise): rows have positions pos0 + r and keys/values go to a KV cache of
     * cache_rows rows starting at element cache_off of kcache / vcache (with a sliding window, the first
     * F->win of them hold the window, and the row at position p sits at F->win + p) */
    int pos0;
    cl_mem kcache, vcache;
    size_t cache_off;
    int cache_rows;
    int cache_bf16; /* 1: the caches hold bf16, ushort at the same element offsets (armt_kv_cache_bf16) */
    cl_mem part; /* generation: the decode attention's partial results (nh x cache_rows / 256 chunks x hd + 2
                  * floats), NULL: the tiled attention kernels */
    cl_mem dcnt; /* with part: nh counters, zero between launches, for the combine in the attention's launch
                  * (tune.decode_fuse); NULL: a launch of its own */
} armt_step;

/* ---- forward.c: the call ---- */
/* Host arrays of a call (offsets, written mirror) read from the context; armt_call_end frees them. */
armt_status armt_call_begin(armt_call *F, armt_ctx *ctx, const armt_forward_params *p, const int32_t *ids,
                            size_t n);
void armt_call_end(armt_call *F);
/* Copies the memory state to (to_snapshot = 1) or back from (0) the context's snapshot buffers. Every ARMT
 * forward takes a snapshot first, so a failed call (or a failed generation) can put the state back. */
armt_status armt_state_copy(armt_ctx *ctx, int to_snapshot, armt_err *err);
/* After a failure with status st: waits for the queue and puts the snapshot back, keeping the error
 * message (and adding to it when the restore fails too). Returns st. */
armt_status armt_state_rollback(armt_ctx *ctx, armt_status st, armt_err *err);
/* (ctx.c) bytes of b set to zero, on the context's queue */
armt_status armt_ctx_zero_buffer(armt_ctx *ctx, cl_mem b, size_t bytes, armt_err *err);

/* ---- scratch.c ---- */
/* Scratch for `cells` cells of `rows` rows, a RoPE table of rope_rows positions, n_ids ids, out_rows rows of
 * final output, and the MLP's f1 and f2 for mlp_rows rows (0: cells * rows; fewer only for a one-cell step,
 * whose MLP then runs in blocks of that many rows) (grows, never shrinks; growing releases and re-allocates
 * everything but the state). */
armt_status armt_scratch_grow(armt_call *F, size_t cells, size_t rows, size_t rope_rows, size_t n_ids,
                              size_t out_rows, size_t mlp_rows);

/* The k of the memory update's bf16 GEMM: M padded to a multiple of 8, three times. */
size_t armt_mem_update_k(const armt_config *c);

/* ---- step.c: one step ---- */
/* Writes ids[first, first + count) of the call to the device ids buffer (blocking). */
armt_status armt_step_upload_ids(armt_call *F, size_t first, size_t count);
/* Layer-0 input of a segment into its slot: ns sink rows (0 or 1), tokens [first, first + Ls), then M memory
 * tokens. */
armt_status armt_step_embed(armt_call *F, const armt_step *st, size_t first, int Ls, int M, int ns);
/* Memory read of every cell of the step. */
armt_status armt_step_read(armt_call *F, const armt_step *st);
/* The decoder layer of every cell of the step. */
armt_status armt_step_layer(armt_call *F, const armt_step *st);
/* Memory write of every cell of the step. */
armt_status armt_step_write(armt_call *F, const armt_step *st);
/* Output of a segment that has left the last layer: its token rows [ns, ns + Ls) of residual slot `slot`
 * (row stride T), tokens from `first` of the call (final RMSNorm, lm_head for logits, queued copies to the
 * caller). */
armt_status armt_step_emit(armt_call *F, size_t slot, size_t T, size_t first, size_t Ls);
/* Logits of one row of the residual stream (element offset x_off), copied to dst (vocab floats; NULL: left
 * in ctx->logits). */
armt_status armt_step_row_logits(armt_call *F, size_t x_off, float *dst);
/* Greedy generation: as armt_step_row_logits, then the row's argmax on the device (the lowest id among equal
 * logits, as the host's scan) into tok (one int), and only that int read back into *dst. part and cnt:
 * armt_op_rows_argmax's (NULL: one work-group). */
armt_status armt_step_row_token(armt_call *F, size_t x_off, cl_mem tok, cl_mem part, cl_mem cnt,
                                int32_t *dst);
/* The bf16 copy of W_mem^T for layers l0 .. l0 + G - 1 (bf16 models; nothing otherwise). */
armt_status armt_step_mem_bf16_refresh(armt_call *F, int l0, int G);

#endif
