/*
 * ops.h - the small kernels of a step (everything but the GEMMs): each wrapper sets its kernel's arguments
 * once, in order, and launches it over the step's cells (cl/common.cl's CELL_ARGS find a cell's layer
 * and residual slot).
 */
#ifndef ARMT_OPS_H
#define ARMT_OPS_H

#include "compute/step.h"

size_t armt_round_up(size_t v, size_t m);

/* One kernel argument: its size and the address of its value. */
typedef struct armt_karg {
    size_t size;
    const void *value;
} armt_karg;
#define ARMT_KA(v) ((armt_karg){sizeof(v), &(v)})
/* Sets arguments first, first + 1, ... of k from a list of ARMT_KA(value). */
armt_status armt_set_kargs(cl_kernel k, cl_uint first, const armt_karg *a, size_t n, armt_err *err);
#define ARMT_KARGS(k, first, err, ...)                             \
    armt_set_kargs((k), (first), (const armt_karg[]){__VA_ARGS__}, \
                   sizeof((const armt_karg[]){__VA_ARGS__}) / sizeof(armt_karg), (err))
/* Enqueues kernel id over a 1-3D range (l0: work-group size along dimension 0, 0 = the driver's choice). */
armt_status armt_op_launch(armt_call *F, armt_kernel_id id, cl_uint dims, size_t g0, size_t g1, size_t g2,
                           size_t l0);

/* Rounds the leading rows x width floats of src (the step's cells, contiguous) into ctx->abf once; the
 * GEMMs that follow with A = src read that copy (armt_call.abf_*) until armt_op_unstage. Nothing happens
 * without the bf16-A kernel. */
armt_status armt_op_stage_bf16(armt_call *F, cl_mem src, size_t rows, size_t width);
void armt_op_unstage(armt_call *F);
/* The staged copy of op->a, where there is one (fills a_bf16, a_bf16_only). */
void armt_op_staged_a(const armt_call *F, armt_gemm_op *op);

/* RMSNorm of the step's cells from x into h, with the weight of role; bf16 models on tensor cores (d % 8
 * == 0): straight into ctx->abf as bf16 (h not written, recorded as a staged operand). */
armt_status armt_op_rmsnorm(armt_call *F, const armt_step *st, armt_role role);
/* The final RMSNorm of `rows` rows of the residual stream from element x_off, into out_rows. */
armt_status armt_op_final_norm(armt_call *F, size_t x_off, size_t rows);
/* The greedy token of each of rows rows of ctx->logits (the largest logit, the lowest id among equal ones)
 * into out (int each): part NULL, one work-group a
 * row (armt_rows_argmax); else armt_argmax_parts(ctx, V) work-groups a row, their pairs in part (rows x
 * ARMT_ARGMAX_PARTS_MAX x 8 bytes at most), picked from by the row's last work-group (cnt: a zeroed counter
 * a row, the fused decode's fence) or by a second launch (cnt NULL). The same ids every way. */
#define ARMT_ARGMAX_PARTS_MAX 64
int armt_argmax_parts(const armt_ctx *ctx, int V);
armt_status armt_op_rows_argmax(armt_call *F, size_t rows, cl_mem out, cl_mem part, cl_mem cnt);
/* DPFP features of `rows` rows of mq into phi. */
armt_status armt_op_dpfp(armt_call *F, size_t rows);
/* RoPE of the step's q and k rows in place (where the GEMMs did not apply it); skip > 0: the last cell's q
 * rows below it are left alone (the q projection skipped them). */
armt_status armt_op_rope(armt_call *F, const armt_step *st, int skip);
/* silu(f1) * f2 into f1 over n elements, except elements [skip0, skip1) (rows the projections skipped). */
armt_status armt_op_swiglu(armt_call *F, size_t n, size_t skip0, size_t skip1);
/* The sink row (ns = 1), token gather and memory tokens of a segment into its residual slot. */
armt_status armt_op_embed(armt_call *F, const armt_step *st, size_t first, int Ls, int M, int ns,
                          size_t x_off);
/* Attention of the step's cells (kernel aid) from q and the keys/values kbuf/vbuf (element offset kv_off,
 * Tk rows, queries from position q0) into att, or into ctx->abf as bf16 (out_bf16, tensor-core kernels);
 * rows [0, skip) of the last cell are not computed. */
/* Keys per chunk of the decode attention (ATTN_DCHUNK in cl/attention.cl). */
#define ARMT_ATTN_DCHUNK 64
/* 1: generation's KV caches hold bf16 (ushort at the same element offsets): a bf16 model whose attention
 * runs on tensor cores, which round K and V to bf16 anyway (the forward's bf16 K/V kernel then reads a
 * cache), whose k and v projections write bf16, with heads of whole 8-element pieces. Half the bytes for
 * every decode step to read. */
int armt_kv_cache_bf16(const armt_ctx *ctx, int head_dim);
/* n floats of keys k and values v from element src_off into the KV caches kc and vc from element dst_off:
 * copied, or (bf16: the caches hold bf16) rounded (armt_kv_to_bf16). */
armt_status armt_op_kv_put(armt_call *F, cl_mem k, cl_mem v, size_t src_off, cl_mem kc, cl_mem vc,
                           size_t dst_off, size_t n, int bf16);
/* One row (generation's decode, st->T = 1) against a KV cache (bf16 where st->cache_bf16): the split-K kernel
 * into st->part, then the combine into ctx->att (and, out_bf16, its bf16 copy into ctx->abf). */
armt_status armt_op_attention_decode(armt_call *F, const armt_step *st, cl_mem kbuf, cl_mem vbuf,
                                     cl_ulong kv_off, int Tk, int q0, int out_bf16);
armt_status armt_op_attention(armt_call *F, const armt_step *st, armt_kernel_id aid, cl_mem kbuf, cl_mem vbuf,
                              cl_ulong kv_off, int Tk, int q0, int skip, int out_bf16);
/* Sliding window: the keys and values of the step's cells with their layers' windows (ctx->ck, ctx->cv),
 * and the windows after the step (cl/attention.cl). kvb: ck/cv hold bf16, the step's own rows written
 * there by the k and v projections (only the windows are gathered). */
armt_status armt_op_window_gather(armt_call *F, const armt_step *st, int kvb);
armt_status armt_op_window_store(armt_call *F, const armt_step *st, int kvb);
/* src (G, rows, cols) fp32 -> dst + dst_off (G, cols, nseg * kseg) bf16 transposed (see memory.cl). */
armt_status armt_op_bf16_transpose(armt_call *F, cl_mem src, cl_mem dst, size_t dst_off, int rows, int cols,
                                   int l0, int G, int kseg, int nseg, int pat);

/* The memory kernels (memory.cl). */
armt_status armt_op_mem_read_scale(armt_call *F, const armt_step *st);
/* Generation's one-row steps (one cell, T = 1): armt_op_dpfp and armt_op_mem_read_scale in one launch. */
armt_status armt_op_dpfp_read_scale(armt_call *F, const armt_step *st);
armt_status armt_op_mem_read(armt_call *F, const armt_step *st);
armt_status armt_op_mem_gather(armt_call *F, const armt_step *st);
armt_status armt_op_mem_write_prep(armt_call *F, const armt_step *st);
armt_status armt_op_mem_delta(armt_call *F, const armt_step *st);
armt_status armt_op_mem_z_update(armt_call *F, const armt_step *st);
/* Several memory heads: W_mem's off-head blocks back to zero after an update (nothing with one head). */
armt_status armt_op_mem_block_mask(armt_call *F, const armt_step *st);

/* Fills ctx->rope with rope_rows positions: cos then sin of the head_dim / 2 frequencies (llama3 scaling
 * when the config has it). */
armt_status armt_op_rope_table(armt_call *F, size_t rope_rows);

#endif
