/*
 * forward_internal.h - the pieces of a schedule step, shared by forward.c (the schedules) and generate.c.
 */
#ifndef ARMT_FORWARD_INTERNAL_H
#define ARMT_FORWARD_INTERNAL_H

#include "internal.h"

/* Per-forward host bookkeeping (GEMM offset arrays, the host mirror of the written flags). */
typedef struct fwd {
    armt_ctx    *ctx;
    armt_err    *err;
    const armt_config *cfg;
    int          d, dk, dm, M, hd, nh, nkv, ffn, V;
    size_t      *a_off, *b_off, *c_off; /* (n_layers) each */
    float       *alphas, *betas;        /* (n_layers) each */
    uint8_t     *written;               /* (n_layers) host mirror of ctx->written during the schedule */
    const armt_forward_params *p;
    const int32_t *ids;                 /* the caller's ids */
    size_t       n;                     /* tokens of this call */
    cl_mem       abf_src;               /* the buffer whose leading rows abf_buf holds in bf16, or NULL */
    cl_mem       abf_buf;               /*   where: ctx->abf, or ctx->f2 after the SwiGLU epilogue      */
    int          abf_only;              /*   1: and abf_src's own (fp32) contents are stale             */
    cl_mem       epi_gate;              /* set: the next bf16 GEMMs end in the SwiGLU epilogue: gate    */
                                        /*   values read at C's offsets, bf16 results into epi_out      */
    cl_mem       epi_out;
    int          epi_dual;              /* 1: the next gate GEMM also multiplies the up weights (W2)   */
                                        /*   and writes bf16 silu(gate) * up into epi_out; 2: the next */
                                        /*   k GEMM also the v weights, bf16 k into epi_out, v into     */
                                        /*   epi_out2                                                   */
    cl_mem       epi_w2;                /*   the second weights' buffer for the chunk being multiplied  */
    cl_mem       epi_out2;              /*   (2 only; NULL otherwise)                                   */
    int          epi_rope;              /* 1: the next bf16 GEMMs apply RoPE to their product (q, k):  */
    int          rope_T, rope_pos0;     /*   rows per cell and the first position (see rope.cl)         */
    cl_mem       epi_rowscale;          /* set: the next bf16 GEMM adds rowscale[row of A] * A W^T to C */
    int          epi_bf16;              /* 1: the next bf16 GEMMs write their product rounded to bf16   */
                                        /*   into epi_out (at C's element offsets) instead of C         */
    size_t       skip_last;             /* > 0: the next GEMMs' last cell needs only rows >= skip_last  */
} fwd;

/* Geometry of a step (see cl/common.cl). */
typedef struct step {
    int l0, G, s0, cap, T, s_short, T_short;
    /* > 0: rows [0, skip) of the step's cell on the model's last layer feed nothing (no output reads them):
     * that cell computes q, attention, o and the MLP only for the rows from skip on (its memory tokens',
     * which the memory write reads, and the last token's when its logits are asked for). 0: every row. */
    int skip;
    /* generation only (zero otherwise): rows have positions pos0 + r and keys/values go to a KV cache of
     * cache_rows rows starting at element cache_off of kcache / vcache */
    int    pos0;
    cl_mem kcache, vcache;
    size_t cache_off;
    int    cache_rows;
} step;

/* Host arrays of a call (offsets, alphas, written mirror) read from the context; armt_fwd_end frees them. */
armt_status armt_fwd_begin(fwd *F, armt_ctx *ctx, const armt_forward_params *p, const int32_t *ids, size_t n);
void armt_fwd_end(fwd *F);
/* Scratch for `cells` cells of `rows` rows, a RoPE table of rope_rows positions, n_ids ids, out_rows rows of
 * final output (grows, never shrinks). */
armt_status armt_fwd_scratch(fwd *F, size_t cells, size_t rows, size_t rope_rows, size_t n_ids, size_t out_rows);
/* Writes ids[first, first + count) of the call to the device ids buffer (blocking). */
armt_status armt_fwd_upload_ids(fwd *F, size_t first, size_t count);
armt_status armt_fwd_embed(fwd *F, const step *st, size_t first, int Ls, int M);
armt_status armt_fwd_read(fwd *F, const step *st);
armt_status armt_fwd_layer(fwd *F, const step *st);
armt_status armt_fwd_write(fwd *F, const step *st);
/* Copies the memory state to (to_snapshot = 1) or back from (0) the context's snapshot buffers. Every ARMT
 * forward takes a snapshot first, so a failed call (or a failed generation) can put the state back. */
armt_status armt_fwd_copy_state(armt_ctx *ctx, int to_snapshot, armt_err *err);
/* Logits of one row of the residual stream (element offset x_off): final RMSNorm + lm_head, copied to dst
 * (vocab floats) before returning. */
armt_status armt_fwd_row_logits(fwd *F, size_t x_off, float *dst);

#endif
