/*
 * scratch.c - a context's per-call device buffers: one table of (buffer, size at a capacity) serves both
 * growing and releasing, so the two can never disagree.
 */
#include "config.h"

#include "compute/ops.h"
#include "io/armt_config.h"

/* The capacity the scratch is made for. */
typedef struct scratch_cap {
    size_t cells, rows, rope_rows, ids, out_rows, mlp_rows;
} scratch_cap;

/* The k of the memory update's bf16 GEMM (step.c): M padded to a multiple of 8, three times. */
size_t armt_mem_update_k(const armt_config *c) { return 3 * (((size_t)c->num_mem_tokens + 7) / 8 * 8); }

/* Bytes of ctx->abf: bf16 models whose GEMMs have the bf16-A tensor-core kernel (else none). It holds one
 * bf16 GEMM operand of the widest rows it stages (the norms' outputs, the attention's, the features, the
 * memory rows: the down projection's operand, ffn wide, is f2's bf16 copy of SwiGLU), or both operands of
 * the memory update. */
static size_t abf_bytes(const armt_ctx *ctx, size_t cells, size_t rows) {
    const armt_config *c = &ctx->model->cfg;
    if (ctx->model->precision != ARMT_PRECISION_BF16 || !ctx->k[ARMT_K_GEMM_BF16BF16_MMA]) return 0;
    size_t w = (size_t)c->hidden_size, qd = (size_t)c->n_heads * c->head_dim;
    size_t dk = (size_t)armt_config_d_key(c);
    if (qd > w) w = qd;
    if (dk > w) w = dk;
    size_t rows_bytes = cells * rows * w * 2;
    size_t update_bytes = cells * armt_mem_update_k(c) * (dk + (size_t)c->hidden_size) * 2;
    return rows_bytes > update_bytes ? rows_bytes : update_bytes;
}

enum { N_SCRATCH = 22 };

/* Every scratch buffer of ctx and its bytes at capacity k (see the shapes in internal.h). */
static void scratch_table(armt_ctx *ctx, const scratch_cap *k, cl_mem **bufs, size_t *bytes) {
    const armt_config *c = &ctx->model->cfg;
    const size_t R = k->cells * k->rows, C = k->cells, M = (size_t)c->num_mem_tokens;
    const size_t d = (size_t)c->hidden_size, qd = (size_t)c->n_heads * c->head_dim;
    const size_t kvd = (size_t)c->n_kv_heads * c->head_dim, f = (size_t)c->intermediate_size;
    const size_t dk = (size_t)armt_config_d_key(c), dm = (size_t)c->d_mem;
    const size_t mrows = C * M > R ? C * M : R; /* mq and phi also hold the write's G M rows */
    size_t i = 0;
#define ROW(buf, n)          \
    do {                     \
        bufs[i] = &ctx->buf; \
        bytes[i++] = (n);    \
    } while (0)
    ROW(x, R * d * 4);
    ROW(h, R * d * 4);
    ROW(q, R * qd * 4);
    ROW(kk, R * kvd * 4);
    ROW(vv, R * kvd * 4);
    ROW(att, R * qd * 4);
    ROW(f1, k->mlp_rows * f * 4);
    ROW(f2, k->mlp_rows * f * 4);
    ROW(mq, mrows * dm * 4);
    ROW(phi, mrows * dk * 4);
    ROW(mrows, C * M * d * 4);
    ROW(vnew, C * M * d * 4);
    ROW(vprev, C * M * d * 4);
    const size_t H = (size_t)armt_config_mem_heads(c);
    ROW(wstat, C * M * H * 4 * 4);
    ROW(mbeta, c->gating ? C * M * d * 4 : 4);
    const size_t win = c->sliding_window ? (size_t)c->segment_size : 0;
    ROW(ck, win ? C * (win + k->rows) * kvd * 4 : 4);
    ROW(cv, win ? C * (win + k->rows) * kvd * 4 : 4);
    ROW(rope, k->rope_rows * (size_t)c->head_dim * 4);
    ROW(ids, k->ids * 4);
    ROW(out_rows, k->out_rows * d * 4);
    ROW(logits, k->out_rows * (size_t)c->vocab_size * 4);
    ROW(abf, abf_bytes(ctx, k->cells, k->rows));
#undef ROW
}

void armt_ctx_release_scratch(armt_ctx *ctx) {
    const scratch_cap k = {ctx->cap_cells, ctx->cap_rows,     ctx->rope_rows,
                           ctx->ids_cap,   ctx->out_rows_cap, ctx->cap_mlp_rows};
    cl_mem *bufs[N_SCRATCH];
    size_t bytes[N_SCRATCH];
    scratch_table(ctx, &k, bufs, bytes);
    for (size_t i = 0; i < N_SCRATCH; i++)
        armt_buffer_release(ctx->rt, bufs[i], bytes[i]);
    armt_buffer_release(ctx->rt, &ctx->splitk, ctx->splitk_bytes); /* (gemm.c grows it again) */
    ctx->splitk_bytes = 0;
    ctx->cap_cells = ctx->cap_rows = ctx->cap_mlp_rows = ctx->rope_rows = ctx->ids_cap = ctx->out_rows_cap =
        0;
    ctx->scratch_bytes = 0;
}

static size_t max_z(size_t a, size_t b) { return a > b ? a : b; }

/* 1: the scratch at capacity k would not be addressable (absurd lengths or widths are "does not fit", not a
 * crash: the largest products of scratch_table must not wrap) */
static int too_large(const armt_call *F, const scratch_cap *k) {
    size_t widest = max_z(max_z((size_t)F->ffn, (size_t)F->V), max_z((size_t)F->dk, (size_t)F->d));
    widest = max_z(widest, (size_t)F->nh * (size_t)F->hd);
    size_t mem_rows, probe;
    return __builtin_mul_overflow(k->cells, (size_t)F->M, &mem_rows) ||
           __builtin_mul_overflow(k->cells, k->rows, &probe) ||
           __builtin_add_overflow(probe, mem_rows + k->out_rows + k->rope_rows + k->ids, &probe) ||
           __builtin_mul_overflow(probe, widest, &probe) || __builtin_mul_overflow(probe, (size_t)16, &probe);
}

armt_status armt_scratch_grow(armt_call *F, size_t cells, size_t rows, size_t rope_rows, size_t n_ids,
                              size_t out_rows, size_t mlp_rows) {
    armt_ctx *ctx = F->ctx;
    armt_err *err = F->err;
    if (!mlp_rows || mlp_rows > cells * rows) mlp_rows = cells * rows;
    if (cells <= ctx->cap_cells && rows <= ctx->cap_rows && rope_rows <= ctx->rope_rows &&
        n_ids <= ctx->ids_cap && out_rows <= ctx->out_rows_cap && mlp_rows <= ctx->cap_mlp_rows)
        return ARMT_OK;
    scratch_cap k = {max_z(cells, ctx->cap_cells),       max_z(rows, ctx->cap_rows),
                     max_z(rope_rows, ctx->rope_rows),   max_z(n_ids, ctx->ids_cap),
                     max_z(out_rows, ctx->out_rows_cap), max_z(mlp_rows, ctx->cap_mlp_rows)};
    armt_ctx_release_scratch(ctx);
    cl_mem *bufs[N_SCRATCH];
    size_t bytes[N_SCRATCH];
    /* Both shapes at once can need far more than either: after a full-attention call (one cell of n rows)
     * a diagonal call's 16 cells would take 16 x n rows. Where they do not fit together, the new shape
     * alone (a later call of the other shape grows the scratch back). */
    int alone = 0;
    if (k.cells != cells || k.rows != rows || k.mlp_rows != mlp_rows) {
        alone = too_large(F, &k);
        if (!alone) {
            armt_err both;
            armt_err_init(&both);
            scratch_table(ctx, &k, bufs, bytes);
            alone = armt_device_fits(ctx->rt, bytes, N_SCRATCH, "forward scratch", &both) != ARMT_OK;
            armt_err_free(&both);
        }
    }
    if (alone) {
        k.cells = cells;
        k.rows = rows;
        k.mlp_rows = mlp_rows;
    }
    if (too_large(F, &k))
        return armt_err_set(err, ARMT_STATUS_OUT_OF_DEVICE_MEMORY,
                            "forward scratch: %zu cells of %zu rows are too large to address", k.cells,
                            k.rows);
    scratch_table(ctx, &k, bufs, bytes);
    ARMT_TRY(armt_device_fits(ctx->rt, bytes, N_SCRATCH, "forward scratch", err));
    /* record the capacity first, so that a partial failure releases what was made */
    ctx->cap_cells = k.cells;
    ctx->cap_rows = k.rows;
    ctx->rope_rows = k.rope_rows;
    ctx->ids_cap = k.ids;
    ctx->out_rows_cap = k.out_rows;
    ctx->cap_mlp_rows = k.mlp_rows;
    armt_status st = ARMT_OK;
    for (size_t i = 0; i < N_SCRATCH && st == ARMT_OK; i++) {
        st = armt_buffer_create(ctx->rt, bytes[i], bufs[i], "forward scratch", err);
        ctx->scratch_bytes += bytes[i] ? bytes[i] : 4;
    }
    if (st == ARMT_OK) st = armt_op_rope_table(F, k.rope_rows);
    if (st != ARMT_OK) armt_ctx_release_scratch(ctx);
    return st;
}
