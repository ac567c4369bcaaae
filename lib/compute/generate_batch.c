/*
 * generate_batch.c - armt_generate_batch: B documents generating together (docs/DESIGN.md, "Batches").
 *
 * 1. The prompts' earlier segments: armt_forward_batch (it snapshots every state and puts them back when it
 *    fails); the documents whose prompt is one segment take their snapshot here.
 * 2. The batch's copy of what the tails and the new tokens read, which nothing changes until the call ends:
 *    each document's W_mem (its bf16 W_mem^T for bf16 models), z and written flags at its slot b, and a KV
 *    cache per document and layer (its sliding window first). So one GEMM per step multiplies every
 *    document's memory read (entries at a constant stride), and one kernel attends for all of them.
 * 3. Rows steps: the rows of several documents one after another (the tails, then one new token per active
 *    document), with a table of each row's slot and position (cl/rows.cl). Each layer runs as step.c's read
 *    and layer do for one cell of those rows: every linear operation one GEMM of m = the step's rows against
 *    the layer's weights (with the staged bf16 operands and the fused epilogues of tensor cores), RMSNorm,
 *    SwiGLU and DPFP once over all rows, RoPE from a table gathered per row, the memory read on each row's
 *    own z and W_mem, attention on each row's own KV cache.
 * The arithmetic of every row is that of armt_generate's on its document alone: the same kernels, or (the
 * rows kernels) the same sums in the same order; the sampler is armt_generate's (sample.h).
 */
#include "config.h"

#include "compute/ops.h"
#include "compute/sample.h"
#include "common/util.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* One document of the call. */
typedef struct gdoc {
    armt_generate_doc *d;
    size_t cut, R;   /* prompt tokens before the tail; tail tokens                          */
    int S;           /* rows its sliding window holds at the tail                           */
    int active;      /* takes part in the current rows step                                 */
    int saved;       /* its state has a snapshot of before the call (rolled back on failure) */
    uint64_t rng;    /* its sampler                                                          */
    size_t row0, nr; /* its rows in the current step                                         */
} gdoc;

/* The call. */
typedef struct gbatch {
    armt_ctx *ctx; /* the runner */
    armt_err *err;
    const armt_config *cfg;
    armt_call F; /* the runner's call (sizes, scratch, staged operands) */
    gdoc *docs;
    size_t B;
    int Lyr, ns, win, per; /* layers, sink rows, window rows, KV-cache rows per document and layer */
    size_t kvd, rows_cap;
    /* the batch's state copy and tables (see the top); their bytes */
    cl_mem kc, vc, wm, z, wr, rt, ws, rtab;
    size_t kc_b, wm_b, z_b, wr_b, rt_b, ws_b, rtab_b;
    int wm_bf16; /* wm holds bf16 W_mem^T (n_layers, d, dk) per slot, else fp32 W_mem (n_layers, dk, d) */
    int kv_bf16; /* kc and vc hold bf16 (ushort at the same element offsets: armt_kv_cache_bf16) */
    uint8_t *written; /* (B, n_layers) host mirror */
    /* the current step: rows, the documents in row order */
    size_t rows, n_act;
    size_t *act;  /* (B) document indices */
    int *rt_host; /* (rows_cap, 2) slot, position */
    int32_t *ids; /* (rows_cap) */
    size_t *a_off, *w_off, *c_off;
    size_t *blk_off; /* armt_gemm_weights_rows's scratch: 3 (B / ARMT_GEMV_ROWS + 1) */
    /* a decode round's split-k slices (armt_gemm_weights_splitk): (16, B, max(d, nh hd)) floats, on tensor
     * cores with more than ARMT_GEMV_ROWS documents where the runtime may split (else none) */
    cl_mem sk;
    size_t sk_b, sk_off[48];
    float *logits;   /* (B, vocab) */
    int32_t *greedy; /* (B) the device's argmax of each row, when every active document is greedy */
    int all_greedy;  /*   (then only those are read back, not the logits)                        */
    cl_mem gtok;     /* (B) int */
    size_t gtok_b;
    /* a decode round's attention (one row per document, split into chunks of ARMT_ATTN_DCHUNK keys): the
     * chunks' partial softmaxes (B, nh, nchmax, head_dim + 2) floats; rows steps of the tails use
     * armt_rows_attention instead */
    cl_mem part;
    size_t part_b;
    int nchmax, decode; /* chunks of the longest cache; 1 in a decode round */
    void *work;         /* the sampler's */
} gbatch;

/* ======================================================================================================= */
/* A rows step                                                                                             */
/* ======================================================================================================= */

/* One "cell" of all the step's rows at layer l (the geometry the row-wise kernels of ops.c take). */
static armt_step rows_cell(const gbatch *g, int l) {
    armt_step st = {.l0 = l, .G = 1, .s0 = 0, .cap = 1, .T = (int)g->rows, .s_short = -1};
    return st;
}

/* A GEMM over all the step's rows: C (rows x ?) = A W^T (+ C), A read from its staged bf16 copy if any; the
 * GEMV kernel where there are at most ARMT_GEMV_ROWS rows (as generation's one document). */
static armt_gemm_op rows_op(gbatch *g, cl_mem a, size_t lda, cl_mem c, size_t ldc, float beta) {
    g->a_off[0] = g->c_off[0] = 0;
    armt_gemm_op op = {.m = g->rows,
                       .a = a,
                       .lda = lda,
                       .a_off = g->a_off,
                       .c = c,
                       .ldc = ldc,
                       .c_off = g->c_off,
                       .beta = beta,
                       .site = -1,
                       .gemv = 1};
    armt_op_staged_a(&g->F, &op);
    return op;
}

static armt_status role_gemm(gbatch *g, armt_gemm_op op, armt_role role, int pair, int l) {
    return armt_gemm_weights(g->ctx, op, role, pair, l, 1, g->w_off, g->err);
}

/* A decode round's product of more than ARMT_GEMV_ROWS rows (op: plain, beta 1, or a RoPE epilogue) with k
 * split where that pays (armt_gemm_weights_splitk), the slices then added into op's C in order
 * (armt_rows_splitk_sum); else role_gemm. A split product drops the RoPE epilogue (the caller then runs
 * rows_rope). *split (NULL: not asked): whether it split. */
static armt_status role_gemm_split(gbatch *g, armt_gemm_op op, armt_role role, int l, int *split) {
    if (split) *split = 0;
    if (g->decode && g->sk && g->rows > ARMT_GEMV_ROWS) {
        armt_gemm_op plain = op;
        plain.epi.rope = NULL;
        armt_status st = ARMT_OK;
        const int S =
            armt_gemm_weights_splitk(g->ctx, plain, role, l, g->sk, g->sk_b / 4, g->sk_off, &st, g->err);
        if (S) {
            ARMT_TRY(st);
            if (split) *split = 1;
            uint64_t out, in;
            armt_role_shape(&g->ctx->model->cfg, role, &out, &in, NULL);
            const int n = (int)out, rows = (int)op.m;
            armt_err *err = g->err;
            ARMT_CL_TRY(armt_splitk_sum_set_args(g->ctx->k[ARMT_K_ROWS_SPLITK_SUM], g->sk, 0,
                                                 (cl_ulong)rows * (cl_ulong)n, op.c, op.c_off[0], 0,
                                                 (int)op.ldc, n, rows, S, op.beta != 0.0f, 0));
            return armt_op_launch(&g->F, ARMT_K_ROWS_SPLITK_SUM, 2, armt_round_up((size_t)n, 64),
                                  (size_t)rows, 1, 64);
        }
    }
    return role_gemm(g, op, role, -1, l);
}

/* phi (rows x dk) W_mem[l] of each row's own document into c (rows x d): one batched GEMM per run of
 * documents with the same number of rows (every run, in a decode step). rowscale: the fused read. */
static armt_status mem_products(gbatch *g, int l, cl_mem c, float beta, cl_mem rowscale) {
    armt_ctx *ctx = g->ctx;
    const size_t dk = (size_t)g->F.dk, d = (size_t)g->F.d;
    for (size_t i = 0; i < g->n_act;) {
        const gdoc *D = &g->docs[g->act[i]];
        size_t end = i;
        while (end < g->n_act && g->docs[g->act[end]].nr == D->nr) {
            const gdoc *E = &g->docs[g->act[end]];
            g->a_off[end - i] = E->row0 * dk;
            g->c_off[end - i] = E->row0 * d;
            g->w_off[end - i] = ((size_t)g->act[end] * (size_t)g->Lyr + (size_t)l) * dk * d;
            end++;
        }
        armt_gemm_op op = {.m = D->nr,
                           .n = d,
                           .k = dk,
                           .count = end - i,
                           .a = ctx->phi,
                           .lda = dk,
                           .a_off = g->a_off,
                           .w = g->wm,
                           .ldw = g->wm_bf16 ? dk : d,
                           .w_off = g->w_off,
                           .w_bf16 = g->wm_bf16,
                           .w_kn = !g->wm_bf16,
                           .c = c,
                           .ldc = d,
                           .c_off = g->c_off,
                           .beta = beta,
                           .site = ARMT_GSITE_MEM_READ};
        op.epi.rowscale = rowscale;
        armt_op_staged_a(&g->F, &op);
        ARMT_TRY(armt_gemm(ctx, &op, g->err));
        i = end;
    }
    return ARMT_OK;
}

/* The memory read of layer l on every row (step.c's armt_step_read on the rows' own documents). */
static armt_status rows_read(gbatch *g, int l) {
    armt_call *F = &g->F;
    armt_ctx *ctx = g->ctx;
    armt_err *err = g->err;
    int any = 0;
    for (size_t i = 0; i < g->n_act; i++)
        any |= g->written[g->act[i] * (size_t)g->Lyr + (size_t)l];
    if (!any) return ARMT_OK; /* no document has written this layer: the read is skipped */
    /* W_mq (d_mem outputs): in a decode round the GEMV in blocks of rows, which the tensor-core tiles would
     * give one work-group */
    const armt_gemm_op mq = rows_op(g, ctx->x, (size_t)F->d, ctx->mq, (size_t)F->dm, 0.0f);
    armt_status sq = ARMT_OK;
    if (!(g->decode && armt_gemm_weights_rows(ctx, mq, ARMT_ROLE_WMQ, l, g->blk_off, &sq, err)))
        sq = role_gemm(g, mq, ARMT_ROLE_WMQ, -1, l);
    ARMT_TRY(sq);
    ARMT_TRY(armt_op_dpfp(F, g->rows));
    ARMT_TRY(armt_op_stage_bf16(F, ctx->phi, g->rows, (size_t)F->dk));
    const int rows = (int)g->rows, Lyr = g->Lyr;
    const size_t wg = (size_t)ctx->rt->tune.row_wg;
    if (g->wm_bf16 && F->abf_src == ctx->phi && F->dk % 8 == 0 && F->H == 1) {
        /* fused: x += (1/den) phi W_mem in the GEMM's epilogue, the row scales in ctx->mq */
        cl_kernel k = ctx->k[ARMT_K_ROWS_MEM_READ_SCALE];
        ARMT_TRY(ARMT_KARGS(k, 0, err, ARMT_KA(ctx->mq), ARMT_KA(ctx->phi), ARMT_KA(g->z), ARMT_KA(g->wr),
                            ARMT_KA(F->dk), ARMT_KA(F->no_denom), ARMT_KA(g->rt), ARMT_KA(l), ARMT_KA(Lyr)));
        ARMT_TRY(armt_op_launch(F, ARMT_K_ROWS_MEM_READ_SCALE, 2, wg, (size_t)rows, 1, wg));
        armt_status s = mem_products(g, l, ctx->x, 1.0f, ctx->mq);
        armt_op_unstage(F);
        return s;
    }
    ARMT_TRY(mem_products(g, l, ctx->h, 0.0f, NULL));
    armt_op_unstage(F);
    cl_kernel k = ctx->k[ARMT_K_ROWS_MEM_READ];
    ARMT_TRY(ARMT_KARGS(k, 0, err, ARMT_KA(ctx->x), ARMT_KA(ctx->h), ARMT_KA(ctx->phi), ARMT_KA(g->z),
                        ARMT_KA(g->wr), ARMT_KA(F->dk), ARMT_KA(F->d), ARMT_KA(F->dkh), ARMT_KA(F->dvh),
                        ARMT_KA(F->no_denom), ARMT_KA(g->rt), ARMT_KA(l), ARMT_KA(Lyr)));
    return armt_op_launch(F, ARMT_K_ROWS_MEM_READ, 2, wg, (size_t)rows, 1, wg);
}

/* q, k and v of the rows, RoPE in the GEMMs' epilogue where it fits (as step.c's; K and V stay fp32, for
 * the caches), k split in a decode round where that pays (role_gemm_split). Says whether RoPE was applied to
 * q and to k. */
static armt_status rows_qkv(gbatch *g, int l, int *rope_q, int *rope_k) {
    armt_call *F = &g->F;
    armt_ctx *ctx = g->ctx;
    const size_t d = (size_t)F->d, qd = (size_t)F->nh * F->hd;
    const int rope = F->abf_src == ctx->h && armt_gemm_rope_fits(ctx, F->hd, F->d);
    armt_gemm_epi epi = {.rope = rope ? g->rtab : NULL, .rope_hd = F->hd, .rope_T = (int)g->rows};
    int split;
    armt_gemm_op op = rows_op(g, ctx->h, d, ctx->q, qd, 0.0f);
    op.epi = epi;
    ARMT_TRY(role_gemm_split(g, op, ARMT_ROLE_WQ, l, &split));
    *rope_q = rope && !split;
    op = rows_op(g, ctx->h, d, ctx->kk, g->kvd, 0.0f);
    op.epi = epi;
    ARMT_TRY(role_gemm_split(g, op, ARMT_ROLE_WK, l, &split));
    *rope_k = rope && !split;
    ARMT_TRY(role_gemm_split(g, rows_op(g, ctx->h, d, ctx->vv, g->kvd, 0.0f), ARMT_ROLE_WV, l, NULL));
    armt_op_unstage(F);
    return ARMT_OK;
}

/* RoPE of the rows' q (with_q) and k (with_k) (armt_rope on the gathered table: row r at "position" r). */
static armt_status rows_rope(gbatch *g, int with_q, int with_k) {
    armt_call *F = &g->F;
    armt_ctx *ctx = g->ctx;
    armt_err *err = g->err;
    cl_kernel k = ctx->k[ARMT_K_ROPE];
    const int T = (int)g->rows, pos0 = 0, none = 0, nh = with_q ? F->nh : 0, nkv = with_k ? F->nkv : 0;
    cl_ulong n = (cl_ulong)g->rows * (cl_ulong)(nh + nkv) * (cl_ulong)(F->hd / 2);
    ARMT_TRY(ARMT_KARGS(k, 0, err, ARMT_KA(ctx->q), ARMT_KA(ctx->kk), ARMT_KA(g->rtab), ARMT_KA(T),
                        ARMT_KA(nh), ARMT_KA(nkv), ARMT_KA(F->hd), ARMT_KA(pos0), ARMT_KA(n), ARMT_KA(none)));
    const size_t wg = (size_t)ctx->rt->tune.row_wg;
    return armt_op_launch(F, ARMT_K_ROPE, 1, armt_round_up((size_t)n, wg), 1, 1, wg);
}

/* The rows' keys and values into their caches, then each row's attention on its own cache into att. */
static armt_status rows_attention(gbatch *g, int l) {
    armt_call *F = &g->F;
    armt_ctx *ctx = g->ctx;
    armt_err *err = g->err;
    const int rows = (int)g->rows, Lyr = g->Lyr, kvd = (int)g->kvd;
    cl_kernel k = ctx->k[ARMT_K_ROWS_KV_APPEND];
    ARMT_TRY(ARMT_KARGS(k, 0, err, ARMT_KA(ctx->kk), ARMT_KA(ctx->vv), ARMT_KA(g->kc), ARMT_KA(g->vc),
                        ARMT_KA(g->rt), ARMT_KA(kvd), ARMT_KA(rows), ARMT_KA(l), ARMT_KA(Lyr),
                        ARMT_KA(g->per), ARMT_KA(g->win), ARMT_KA(g->kv_bf16)));
    ARMT_TRY(armt_op_launch(F, ARMT_K_ROWS_KV_APPEND, 2, g->kvd, g->rows, 1, 0));
    const float scale = (float)(1.0 / sqrt((double)F->hd));
    /* qpg: the most query heads of a KV head per work-group within 256 work-items (a divisor of nh / nkv;
     * armt_rows_attention_decode's local arrays hold 256 / head_dim heads) */
    const int nq = F->nh / F->nkv;
    int qpg = 1;
    for (int q = 1; q <= nq; q++)
        if (nq % q == 0 && q * F->hd <= 256) qpg = q;
    const size_t items = (size_t)qpg * (size_t)F->hd;
    if (g->decode) { /* one row per document: split-K, as generation's decode */
        k = ctx->k[ARMT_K_ROWS_ATTENTION_DECODE];
        ARMT_TRY(ARMT_KARGS(k, 0, err, ARMT_KA(ctx->q), ARMT_KA(g->kc), ARMT_KA(g->vc), ARMT_KA(g->part),
                            ARMT_KA(F->nh), ARMT_KA(F->nkv), ARMT_KA(scale), ARMT_KA(g->rt), ARMT_KA(g->ws),
                            ARMT_KA(l), ARMT_KA(Lyr), ARMT_KA(g->per), ARMT_KA(g->win), ARMT_KA(g->ns),
                            ARMT_KA(qpg), ARMT_KA(g->nchmax), ARMT_KA(g->kv_bf16)));
        ARMT_TRY(armt_op_launch(F, ARMT_K_ROWS_ATTENTION_DECODE, 3, (size_t)g->nchmax * items,
                                (size_t)(F->nh / qpg), g->rows, items));
        k = ctx->k[ARMT_K_ROWS_ATTENTION_COMBINE];
        ARMT_TRY(ARMT_KARGS(k, 0, err, ARMT_KA(g->part), ARMT_KA(ctx->att), ARMT_KA(g->rt), ARMT_KA(F->nh),
                            ARMT_KA(g->win), ARMT_KA(g->nchmax)));
        return armt_op_launch(F, ARMT_K_ROWS_ATTENTION_COMBINE, 2, (size_t)F->nh * (size_t)F->hd, g->rows, 1,
                              (size_t)F->hd);
    }
    k = ctx->k[ARMT_K_ROWS_ATTENTION];
    /* a work-group per (query heads of a KV head, row): their channels; local scratch for their scaled queries
     * and one tile's scores (the tile of the model's attention build) */
    armt_attention_tuning at;
    armt_tune_attention(&ctx->rt->tune, F->hd, ctx->model->precision == ARMT_PRECISION_BF16, &at);
    const armt_karg qs = {items * sizeof(float), NULL},
                    sc = {(size_t)qpg * (size_t)at.bk * sizeof(float), NULL};
    ARMT_TRY(ARMT_KARGS(k, 0, err, ARMT_KA(ctx->q), ARMT_KA(g->kc), ARMT_KA(g->vc), ARMT_KA(ctx->att),
                        ARMT_KA(F->nh), ARMT_KA(F->nkv), ARMT_KA(scale), ARMT_KA(g->rt), ARMT_KA(g->ws),
                        ARMT_KA(rows), ARMT_KA(l), ARMT_KA(Lyr), ARMT_KA(g->per), ARMT_KA(g->win),
                        ARMT_KA(g->ns), ARMT_KA(qpg), ARMT_KA(g->kv_bf16), qs, sc));
    return armt_op_launch(F, ARMT_K_ROWS_ATTENTION, 2, (size_t)F->nh * (size_t)F->hd, g->rows, 1, items);
}

/* The MLP's gate and up projections and SwiGLU (step.c's mlp_in on the rows). */
static armt_status rows_mlp_in(gbatch *g, int l) {
    armt_call *F = &g->F;
    armt_ctx *ctx = g->ctx;
    const size_t d = (size_t)F->d, ffn = (size_t)F->ffn;
    const int fused = armt_gemm_bf16_operands(ctx) && F->ffn % 8 == 0;
    armt_gemm_op op = rows_op(g, ctx->h, d, ctx->f2, ffn, 0.0f);
    op.epi.out = ctx->f2;
    if (fused && armt_gemm_pairs(ctx, ARMT_ROLE_WG, ARMT_ROLE_WU)) {
        ARMT_TRY(role_gemm(g, op, ARMT_ROLE_WG, ARMT_ROLE_WU, l));
    } else {
        armt_gemm_op gate = op;
        gate.c = ctx->f1;
        gate.epi.out = NULL;
        ARMT_TRY(role_gemm(g, gate, ARMT_ROLE_WG, -1, l));
        op.epi.gate = fused ? ctx->f1 : NULL;
        ARMT_TRY(role_gemm(g, op, ARMT_ROLE_WU, -1, l));
    }
    armt_op_unstage(F);
    if (!fused) return armt_op_swiglu(F, g->rows * ffn, 0, 0);
    F->abf_src = ctx->f1; /* only the bf16 copy holds SwiGLU's output (as in step.c) */
    F->abf_buf = ctx->f2;
    F->abf_only = 1;
    return ARMT_OK;
}

/* The decoder layer l on every row (step.c's armt_step_layer with the rows' own caches). */
static armt_status rows_layer(gbatch *g, int l) {
    armt_call *F = &g->F;
    armt_ctx *ctx = g->ctx;
    const size_t d = (size_t)F->d, qd = (size_t)F->nh * F->hd, ffn = (size_t)F->ffn;
    const armt_step st = rows_cell(g, l);
    int rope_q, rope_k;
    ARMT_TRY(armt_op_rmsnorm(F, &st, ARMT_ROLE_NORM_IN));
    ARMT_TRY(rows_qkv(g, l, &rope_q, &rope_k));
    if (!rope_q || !rope_k) ARMT_TRY(rows_rope(g, !rope_q, !rope_k));
    ARMT_TRY(rows_attention(g, l));
    ARMT_TRY(armt_op_stage_bf16(F, ctx->att, g->rows, qd));
    ARMT_TRY(role_gemm_split(g, rows_op(g, ctx->att, qd, ctx->x, d, 1.0f), ARMT_ROLE_WO, l, NULL));
    ARMT_TRY(armt_op_rmsnorm(F, &st, ARMT_ROLE_NORM_POST));
    ARMT_TRY(rows_mlp_in(g, l));
    ARMT_TRY(role_gemm_split(g, rows_op(g, ctx->f1, ffn, ctx->x, d, 1.0f), ARMT_ROLE_WD, l, NULL));
    armt_op_unstage(F);
    return ARMT_OK;
}

/* Logits of each active document's last row of the step (final RMSNorm into out_rows row i, one lm_head
 * GEMM for all), read into g->logits (n_act x vocab). */
static armt_status rows_logits(gbatch *g) {
    armt_call *F = &g->F;
    armt_ctx *ctx = g->ctx;
    armt_err *err = g->err;
    const size_t d = (size_t)F->d, V = (size_t)F->V;
    size_t fo;
    cl_mem wf = armt_weight_at(&ctx->model->w[ARMT_ROLE_NORM_FINAL], 0, &fo);
    cl_kernel k = ctx->k[ARMT_K_RMSNORM_ROWS];
    const cl_ulong w_off = fo;
    const float eps = g->cfg->rms_norm_eps;
    const size_t wg = (size_t)ctx->rt->tune.row_wg;
    /* one launch when every document has one row (a decode step), else one per document */
    const int one_each = g->rows == g->n_act;
    for (size_t i = 0; i < (one_each ? 1 : g->n_act); i++) {
        const gdoc *D = &g->docs[g->act[i]];
        cl_ulong xo = one_each ? 0 : (D->row0 + D->nr - 1) * d, yo = i * d;
        ARMT_TRY(ARMT_KARGS(k, 0, err, ARMT_KA(ctx->x), ARMT_KA(xo), ARMT_KA(ctx->out_rows), ARMT_KA(yo),
                            ARMT_KA(wf), ARMT_KA(w_off), ARMT_KA(F->d), ARMT_KA(eps)));
        ARMT_TRY(armt_op_launch(F, ARMT_K_RMSNORM_ROWS, 2, wg, one_each ? g->n_act : 1, 1, wg));
    }
    const armt_weight *w = armt_model_lm_head(ctx->model);
    size_t lo, zero = 0;
    armt_gemm_op op = {.m = g->n_act,
                       .n = V,
                       .k = d,
                       .count = 1,
                       .a = ctx->out_rows,
                       .lda = d,
                       .a_off = &zero,
                       .w_bf16 = w->bf16,
                       .ldw = d,
                       .w_off = &lo,
                       .c = ctx->logits,
                       .ldc = V,
                       .c_off = &zero,
                       .site = ARMT_ROLE_LM_HEAD};
    op.w = armt_weight_at(w, 0, &lo);
    ARMT_TRY(armt_gemm(ctx, &op, err));
    /* greedy documents only: their tokens picked on the device, n_act ints read back instead of the logits */
    g->all_greedy = 1;
    for (size_t i = 0; i < g->n_act; i++)
        g->all_greedy &= g->docs[g->act[i]].d->params.temperature <= 0.0f;
    if (g->all_greedy) {
        ARMT_TRY(armt_op_rows_argmax(F, g->n_act, g->gtok, NULL, NULL));
        ARMT_CL_TRY(clEnqueueReadBuffer(ctx->queue, g->gtok, CL_TRUE, 0, g->n_act * sizeof(int32_t),
                                        g->greedy, 0, NULL, NULL));
        return ARMT_OK;
    }
    ARMT_CL_TRY(
        clEnqueueReadBuffer(ctx->queue, ctx->logits, CL_TRUE, 0, g->n_act * V * 4, g->logits, 0, NULL, NULL));
    return ARMT_OK;
}

/* The step whose rows g->act, row0, nr, rt_host and ids describe: its ids and table, the layer-0 input
 * (tail: each document's sink row and tokens; decode: one token per document, one launch), every layer, the
 * logits. */
static armt_status rows_step(gbatch *g, int tail) {
    armt_call *F = &g->F;
    armt_ctx *ctx = g->ctx;
    armt_err *err = g->err;
    const size_t rows = g->rows;
    g->decode = !tail;
    /* (not blocking: the host arrays stay as they are until the step's logits have been read, which waits
     * for the in-order queue; a failure waits for the queue before they are freed) */
    ARMT_CL_TRY(clEnqueueWriteBuffer(ctx->queue, ctx->ids, CL_FALSE, 0, rows * sizeof(int32_t), g->ids, 0,
                                     NULL, NULL));
    ARMT_CL_TRY(clEnqueueWriteBuffer(ctx->queue, g->rt, CL_FALSE, 0, rows * 2 * sizeof(int), g->rt_host, 0,
                                     NULL, NULL));
    const size_t d = (size_t)F->d;
    if (tail) {
        for (size_t i = 0; i < g->n_act; i++) {
            const gdoc *D = &g->docs[g->act[i]];
            armt_step st = {.G = 1, .cap = 1, .T = (int)D->nr, .s_short = -1};
            /* ids[row0 .. row0 + nr) hold the sink's slot (unused) and the tokens */
            ARMT_TRY(armt_op_embed(F, &st, D->row0 + (size_t)g->ns, (int)D->R, 0, g->ns, D->row0 * d));
        }
    } else {
        armt_step st = {.G = 1, .cap = 1, .T = (int)rows, .s_short = -1};
        ARMT_TRY(armt_op_embed(F, &st, 0, (int)rows, 0, 0, 0));
    }
    cl_kernel k = ctx->k[ARMT_K_ROWS_ROPE_TABLE];
    const int hd = F->hd, nrows = (int)rows;
    ARMT_TRY(ARMT_KARGS(k, 0, err, ARMT_KA(ctx->rope), ARMT_KA(g->rt), ARMT_KA(g->rtab), ARMT_KA(hd),
                        ARMT_KA(nrows)));
    ARMT_TRY(armt_op_launch(F, ARMT_K_ROWS_ROPE_TABLE, 2, (size_t)hd, rows, 1, 0));
    for (int l = 0; l < g->Lyr; l++) {
        ARMT_TRY(rows_read(g, l));
        ARMT_TRY(rows_layer(g, l));
    }
    return rows_logits(g);
}

/* ======================================================================================================= */
/* Setup                                                                                                   */
/* ======================================================================================================= */

static armt_status check_args(armt_ctx *runner, const armt_generate_doc *docs, size_t B,
                              const armt_generate_params *gp) {
    armt_err *err = &runner->err;
    const armt_config *cfg = &runner->model->cfg;
    ARMT_RETURN_IF(B == 0, ARMT_STATUS_EMPTY_INPUT, "armt_generate_batch: no documents");
    ARMT_RETURN_IF(!docs, ARMT_STATUS_INVALID_ARGUMENT, "armt_generate_batch: docs is NULL");
    ARMT_RETURN_IF(gp->schedule != ARMT_SCHEDULE_DIAGONAL && gp->schedule != ARMT_SCHEDULE_SEQUENTIAL,
                   ARMT_STATUS_INVALID_ARGUMENT,
                   "armt_generate_batch: the schedule must be diagonal or sequential");
    for (size_t b = 0; b < B; b++) {
        const armt_generate_doc *D = &docs[b];
        const armt_generate_params *p = &D->params;
        ARMT_RETURN_IF(!D->ctx, ARMT_STATUS_INVALID_ARGUMENT,
                       "armt_generate_batch: document %zu: ctx is NULL", b);
        ARMT_RETURN_IF(D->ctx->model != runner->model, ARMT_STATUS_MODEL_MISMATCH,
                       "armt_generate_batch: document %zu: its context belongs to another model", b);
        for (size_t a = 0; a < b; a++)
            ARMT_RETURN_IF(docs[a].ctx == D->ctx, ARMT_STATUS_INVALID_ARGUMENT,
                           "armt_generate_batch: documents %zu and %zu share a context", a, b);
        ARMT_RETURN_IF(D->n == 0, ARMT_STATUS_EMPTY_INPUT, "armt_generate_batch: document %zu: empty prompt",
                       b);
        ARMT_RETURN_IF(!D->prompt, ARMT_STATUS_INVALID_ARGUMENT,
                       "armt_generate_batch: document %zu: prompt is NULL", b);
        ARMT_RETURN_IF(D->n > (size_t)INT32_MAX / 2, ARMT_STATUS_INVALID_ARGUMENT,
                       "armt_generate_batch: document %zu: too many tokens", b);
        ARMT_RETURN_IF(p->max_new_tokens < 0, ARMT_STATUS_INVALID_ARGUMENT,
                       "armt_generate_batch: document %zu: max_new_tokens < 0", b);
        ARMT_RETURN_IF(D->out && D->out_cap < (size_t)p->max_new_tokens, ARMT_STATUS_INVALID_ARGUMENT,
                       "armt_generate_batch: document %zu: out holds %zu tokens, max_new_tokens is %d", b,
                       D->out_cap, p->max_new_tokens);
        ARMT_RETURN_IF(!D->out && !p->on_token && p->max_new_tokens > 0, ARMT_STATUS_INVALID_ARGUMENT,
                       "armt_generate_batch: document %zu: give out or on_token", b);
        ARMT_RETURN_IF(
            p->temperature < 0.0f || !(p->top_p >= 0.0f && p->top_p <= 1.0f) || p->top_k < 0,
            ARMT_STATUS_INVALID_ARGUMENT,
            "armt_generate_batch: document %zu: temperature must be >= 0, top_p in [0, 1], top_k >= 0", b);
        for (size_t i = 0; i < D->n; i++)
            ARMT_RETURN_IF(D->prompt[i] < 0 || D->prompt[i] >= cfg->vocab_size,
                           ARMT_STATUS_TOKEN_OUT_OF_RANGE,
                           "armt_generate_batch: document %zu: prompt token %zu has id %d, outside [0, %d)",
                           b, i, (int)D->prompt[i], cfg->vocab_size);
    }
    return ARMT_OK;
}

/* Progress of the whole call: the prompts' schedule, then one per round of new tokens. */
typedef struct gb_progress {
    const armt_generate_params *gp;
    uint64_t offset, total;
} gb_progress;

static int forward_progress(uint64_t done, uint64_t total, void *user_data) {
    const gb_progress *p = user_data;
    (void)total;
    return p->gp->progress(done, p->total, p->gp->progress_user_data);
}

/* 1. the earlier segments of every prompt (one armt_forward_batch), and the snapshots of the others */
static armt_status prompts(gbatch *g, const armt_generate_params *gp, gb_progress *prog) {
    armt_batch_doc *fd = calloc(g->B, sizeof *fd);
    if (!fd)
        return armt_err_set(g->err, ARMT_STATUS_OUT_OF_HOST_MEMORY,
                            "armt_generate_batch: out of host memory");
    size_t k = 0;
    for (size_t b = 0; b < g->B; b++) {
        gdoc *D = &g->docs[b];
        if (D->cut == 0) continue;
        fd[k].ctx = D->d->ctx;
        fd[k].ids = D->d->prompt;
        fd[k].n = D->cut;
        k++;
    }
    armt_status st = ARMT_OK;
    if (k > 0) {
        armt_forward_params fp = armt_forward_default_params();
        fp.schedule = gp->schedule;
        fp.no_profile = 1;
        if (gp->progress) {
            fp.progress = forward_progress;
            fp.progress_user_data = prog;
        }
        st = armt_forward_batch(g->ctx, fd, k, &fp);
        if (st == ARMT_STATUS_CANCELLED)
            armt_err_set(g->err, st,
                         "armt_generate_batch: cancelled by the progress callback in the prompts");
    }
    free(fd);
    ARMT_TRY(st);
    for (size_t b = 0; b < g->B; b++) {
        gdoc *D = &g->docs[b];
        if (D->cut > 0) {
            D->saved = 1; /* (armt_forward_batch's snapshot: the state before the call) */
            continue;
        }
        ARMT_TRY(armt_state_copy(D->d->ctx, 1, g->err));
        D->saved = 1;
    }
    return ARMT_OK;
}

static armt_status buffer(gbatch *g, size_t bytes, cl_mem *buf, size_t *kept) {
    *kept = bytes;
    return armt_buffer_create(g->ctx->rt, bytes, buf, "batch generation", g->err);
}

/* 2. the batch's copy of every document's memory, its window in its KV caches, the tables */
static armt_status batch_state(gbatch *g) {
    armt_ctx *ctx = g->ctx;
    armt_err *err = g->err;
    const size_t Lyr = (size_t)g->Lyr, dk = (size_t)g->F.dk, d = (size_t)g->F.d, B = g->B;
    const size_t kv = B * Lyr * (size_t)g->per * g->kvd * (g->kv_bf16 ? 2 : 4),
                 wm = B * Lyr * dk * d * (g->wm_bf16 ? 2 : 4);
    g->nchmax = (g->per - 1) / ARMT_ATTN_DCHUNK + 1;
    {
        size_t sizes[10] = {kv,
                            kv,
                            wm,
                            B * Lyr * dk * 4,
                            B * Lyr * 4,
                            g->rows_cap * 2 * sizeof(int),
                            B * sizeof(int),
                            g->rows_cap * (size_t)g->F.hd * 4,
                            B * (size_t)g->F.nh * (size_t)g->nchmax * ((size_t)g->F.hd + 2) * 4,
                            0};
        const size_t qd = (size_t)g->F.nh * (size_t)g->F.hd;
        if (armt_gemm_bf16_operands(ctx) && B > ARMT_GEMV_ROWS && ctx->rt->tune.splitk != 1)
            sizes[9] = 16 * B * (d > qd ? d : qd) * 4;
        ARMT_TRY(armt_device_fits(ctx->rt, sizes, 10, "batch generation", err));
        ARMT_TRY(buffer(g, sizes[0], &g->kc, &g->kc_b));
        ARMT_TRY(buffer(g, sizes[0], &g->vc, &g->kc_b));
        ARMT_TRY(buffer(g, sizes[2], &g->wm, &g->wm_b));
        ARMT_TRY(buffer(g, sizes[3], &g->z, &g->z_b));
        ARMT_TRY(buffer(g, sizes[4], &g->wr, &g->wr_b));
        ARMT_TRY(buffer(g, sizes[5], &g->rt, &g->rt_b));
        ARMT_TRY(buffer(g, sizes[6], &g->ws, &g->ws_b));
        ARMT_TRY(buffer(g, sizes[7], &g->rtab, &g->rtab_b));
        ARMT_TRY(buffer(g, B * sizeof(int32_t), &g->gtok, &g->gtok_b));
        ARMT_TRY(buffer(g, sizes[8], &g->part, &g->part_b));
        if (sizes[9]) ARMT_TRY(buffer(g, sizes[9], &g->sk, &g->sk_b));
    }
    int *ws = calloc(B, sizeof *ws);
    if (!ws)
        return armt_err_set(err, ARMT_STATUS_OUT_OF_HOST_MEMORY, "armt_generate_batch: out of host memory");
    const size_t wmd = wm / B, zd = Lyr * dk * 4, wrd = Lyr * 4, W = (size_t)g->win;
    armt_status st = ARMT_OK;
    for (size_t b = 0; b < B && st == ARMT_OK; b++) {
        armt_ctx *own = g->docs[b].d->ctx;
        ws[b] = g->docs[b].S;
        cl_mem src[3] = {g->wm_bf16 ? own->w_mem_bf : own->w_mem, own->z, own->written};
        cl_mem dst[3] = {g->wm, g->z, g->wr};
        const size_t bytes[3] = {wmd, zd, wrd};
        for (int i = 0; i < 3 && st == ARMT_OK; i++) {
            cl_int e =
                clEnqueueCopyBuffer(ctx->queue, src[i], dst[i], 0, b * bytes[i], bytes[i], 0, NULL, NULL);
            if (e != CL_SUCCESS) st = armt_err_cl(err, "clEnqueueCopyBuffer (batch state)", e);
        }
        /* the window: each layer's in the first W rows of its cache */
        for (size_t l = 0; W && l < Lyr && st == ARMT_OK; l++) {
            const size_t at = ((b * Lyr + l) * (size_t)g->per) * g->kvd, n = W * g->kvd; /* (elements) */
            st = armt_op_kv_put(&g->F, own->win_k, own->win_v, l * n, g->kc, g->vc, at, n, g->kv_bf16);
        }
    }
    if (st == ARMT_OK) {
        cl_int e = clEnqueueWriteBuffer(ctx->queue, g->ws, CL_TRUE, 0, B * sizeof(int), ws, 0, NULL, NULL);
        if (e != CL_SUCCESS) st = armt_err_cl(err, "clEnqueueWriteBuffer (batch window rows)", e);
    }
    free(ws);
    return st;
}

/* Each document's written flags (host mirror), its bf16 W_mem^T brought up to date (as every call does) and
 * the rows its window holds. */
static armt_status doc_state(gbatch *g) {
    armt_forward_params none = armt_forward_default_params();
    for (size_t b = 0; b < g->B; b++) {
        gdoc *D = &g->docs[b];
        armt_ctx *own = D->d->ctx;
        armt_call Fd;
        armt_status st = armt_call_begin(&Fd, own, &none, D->d->prompt, D->d->n);
        if (st != ARMT_OK)
            return armt_err_set(g->err, st, "armt_generate_batch: document %zu: %s", b,
                                armt_err_msg(&own->err));
        memcpy(g->written + b * (size_t)g->Lyr, Fd.written, (size_t)g->Lyr);
        D->S = Fd.win_first;
        armt_call_end(&Fd);
        cl_int e = clFinish(own->queue);
        if (e != CL_SUCCESS) return armt_err_cl(g->err, "clFinish (batch document)", e);
    }
    return ARMT_OK;
}

/* ======================================================================================================= */
/* The call                                                                                                */
/* ======================================================================================================= */

/* Picks the next token of every active document (rows of g->logits in act order), hands it over, and lays
 * out the next decode step's rows for those that go on. Returns the number of documents that go on. */
static size_t next_tokens(gbatch *g, int round, double t_dec0) {
    size_t n = 0;
    const int V = g->F.V;
    for (size_t i = 0; i < g->n_act; i++) {
        const size_t b = g->act[i];
        gdoc *D = &g->docs[b];
        armt_generate_doc *d = D->d;
        armt_generate_result *res = &d->result;
        const int32_t tok =
            g->all_greedy ? g->greedy[i]
                          : armt_sample_token(g->logits + i * (size_t)V, V, &d->params, &D->rng, g->work);
        if (d->out) d->out[round] = tok;
        res->n_tokens++;
        if (d->params.on_token && d->params.on_token(tok, d->params.user_data)) res->stopped = 2;
        if (tok == d->params.stop_id) res->stopped = 1;
        if (res->stopped || round + 1 == d->params.max_new_tokens) {
            res->decode_seconds = armt_now() - t_dec0;
            continue;
        }
        g->act[n] = b;
        D->row0 = n;
        D->nr = 1;
        g->ids[n] = tok;
        g->rt_host[2 * n] = (int)b;
        g->rt_host[2 * n + 1] = g->ns + (int)D->R + round;
        n++;
    }
    g->n_act = g->rows = n;
    return n;
}

static armt_status run(gbatch *g, const armt_generate_params *gp) {
    armt_ctx *ctx = g->ctx;
    armt_err *err = g->err;
    const armt_config *cfg = g->cfg;
    const size_t L = (size_t)cfg->segment_size, B = g->B;
    double t0 = armt_now();
    /* sizes, progress */
    size_t tail_rows = 0, tmax = 1;
    int max_new = 0;
    uint64_t fwd_steps = 0;
    for (size_t b = 0; b < B; b++) {
        gdoc *D = &g->docs[b];
        const size_t n = D->d->n;
        D->cut = ((n + L - 1) / L - 1) * L;
        D->R = n - D->cut;
        D->rng = armt_sample_rng_init(D->d->params.seed);
        const int mn = D->d->params.max_new_tokens;
        if (mn > max_new) max_new = mn;
        if (mn > 0) tail_rows += (size_t)g->ns + D->R;
        const size_t t = (size_t)g->ns + D->R + (size_t)mn;
        if (t > tmax) tmax = t;
        if (D->cut > 0) {
            const uint64_t S1 = D->cut / L, Lyr = (uint64_t)g->Lyr,
                           s = gp->schedule == ARMT_SCHEDULE_DIAGONAL ? S1 + Lyr - 1 : S1 * Lyr;
            if (s > fwd_steps) fwd_steps = s;
        }
        memset(&D->d->result, 0, sizeof D->d->result);
        D->d->result.prompt_tokens = n;
        D->d->result.tail_tokens = D->R;
    }
    ARMT_RETURN_IF(tmax + (size_t)g->win > (size_t)INT32_MAX / 2, ARMT_STATUS_INVALID_ARGUMENT,
                   "armt_generate_batch: too many tokens");
    gb_progress prog = {gp, fwd_steps, fwd_steps + (uint64_t)max_new};
    g->per = g->win + (int)tmax;
    g->rows_cap = tail_rows > B ? tail_rows : B;

    ARMT_TRY(prompts(g, gp, &prog));
    g->written = malloc(B * (size_t)g->Lyr);
    g->act = malloc(B * sizeof *g->act);
    g->rt_host = malloc(g->rows_cap * 2 * sizeof *g->rt_host);
    g->ids = malloc(g->rows_cap * sizeof *g->ids);
    g->a_off = malloc(B * sizeof *g->a_off);
    g->w_off = malloc(B * sizeof *g->w_off);
    g->c_off = malloc(B * sizeof *g->c_off);
    g->blk_off = malloc(3 * (B / ARMT_GEMV_ROWS + 1) * sizeof *g->blk_off);
    g->logits = malloc(B * (size_t)cfg->vocab_size * sizeof *g->logits);
    g->work = malloc(armt_sample_work_bytes(cfg->vocab_size));
    g->greedy = malloc(B * sizeof *g->greedy);
    if (!g->written || !g->act || !g->rt_host || !g->ids || !g->a_off || !g->w_off || !g->c_off ||
        !g->blk_off || !g->logits || !g->work || !g->greedy)
        return armt_err_set(err, ARMT_STATUS_OUT_OF_HOST_MEMORY, "armt_generate_batch: out of host memory");
    ARMT_TRY(doc_state(g));
    if (max_new == 0) return ARMT_OK;

    /* the runner's scratch for the tails' rows and positions up to tmax, as cells of a full segment's rows:
     * the scratch grows per dimension (cells, rows), so rows_cap rows as one cell would multiply with the
     * cells of a forward (armt_forward_batch's are many) */
    armt_forward_params none = armt_forward_default_params();
    ARMT_TRY(armt_call_begin(&g->F, ctx, &none, g->ids, g->rows_cap));
    g->F.err = err;
    const size_t Tn = (size_t)g->ns + L + (size_t)cfg->num_mem_tokens;
    ARMT_TRY(armt_scratch_grow(&g->F, (g->rows_cap + Tn - 1) / Tn, Tn, tmax, g->rows_cap, B, 0));
    g->wm_bf16 = ctx->w_mem_bf != NULL;
    g->kv_bf16 = armt_kv_cache_bf16(ctx, g->F.hd);
    ARMT_TRY(batch_state(g));

    /* the tails: every document's rows (sink, tokens) one after another */
    size_t r = 0;
    g->n_act = 0;
    for (size_t b = 0; b < B; b++) {
        gdoc *D = &g->docs[b];
        if (D->d->params.max_new_tokens == 0) continue;
        g->act[g->n_act++] = b;
        D->row0 = r;
        D->nr = (size_t)g->ns + D->R;
        for (size_t i = 0; i < D->nr; i++, r++) {
            g->ids[r] = i < (size_t)g->ns ? 0 : D->d->prompt[D->cut + i - (size_t)g->ns];
            g->rt_host[2 * r] = (int)b;
            g->rt_host[2 * r + 1] = (int)i;
        }
    }
    g->rows = r;
    ARMT_TRY(rows_step(g, 1));
    const double t1 = armt_now();
    for (size_t b = 0; b < B; b++)
        g->docs[b].d->result.prefill_seconds = t1 - t0;

    /* one token per active document at a time (a profiling runner's profile is then these rounds') */
    if (ctx->prof_on) armt_ctx_prof_restart(ctx);
    for (int round = 0; round < max_new; round++) {
        const size_t go_on = next_tokens(g, round, t1);
        if (gp->progress &&
            gp->progress(prog.offset + (uint64_t)round + 1, prog.total, gp->progress_user_data))
            return armt_err_set(
                err, ARMT_STATUS_CANCELLED,
                "armt_generate_batch: cancelled by the progress callback after step %llu of %llu",
                (unsigned long long)(prog.offset + (uint64_t)round + 1), (unsigned long long)prog.total);
        if (go_on == 0) break;
        ARMT_TRY(rows_step(g, 0));
        ctx->stats.steps++;
    }
    if (ctx->prof_on) armt_ctx_prof_collect(ctx);
    return ARMT_OK;
}

armt_status armt_generate_batch(armt_ctx *runner, armt_generate_doc *docs, size_t n_docs,
                                const armt_generate_params *params) {
    if (!runner)
        return armt_err_set(NULL, ARMT_STATUS_INVALID_ARGUMENT, "armt_generate_batch: runner is NULL");
    const armt_generate_params gp = params ? *params : armt_generate_default_params();
    ARMT_TRY(check_args(runner, docs, n_docs, &gp));
    memset(&runner->stats, 0, sizeof runner->stats);
    gbatch g;
    memset(&g, 0, sizeof g);
    g.ctx = runner;
    g.err = &runner->err;
    g.cfg = &runner->model->cfg;
    g.B = n_docs;
    g.Lyr = g.cfg->n_layers;
    g.ns = g.cfg->use_sink ? 1 : 0;
    g.win = g.cfg->sliding_window ? g.cfg->segment_size : 0;
    g.kvd = (size_t)g.cfg->n_kv_heads * (size_t)g.cfg->head_dim;
    const double t0 = armt_now();
    g.docs = calloc(n_docs, sizeof *g.docs);
    armt_status st = ARMT_STATUS_OUT_OF_HOST_MEMORY;
    if (g.docs) {
        for (size_t b = 0; b < n_docs; b++)
            g.docs[b].d = &docs[b];
        st = run(&g, &gp);
    } else {
        armt_err_set(g.err, st, "armt_generate_batch: out of host memory");
    }
    if (st == ARMT_OK) {
        cl_int e = clFinish(runner->queue);
        if (e != CL_SUCCESS) st = armt_err_cl(g.err, "clFinish (batch generation)", e);
    }
    if (st != ARMT_OK) {
        clFinish(runner->queue);
        for (size_t b = 0; g.docs && b < n_docs; b++)
            if (g.docs[b].saved) armt_state_rollback(docs[b].ctx, st, g.err);
    }
    armt_call_end(&g.F);
    armt_buffer_release(runner->rt, &g.kc, g.kc_b);
    armt_buffer_release(runner->rt, &g.vc, g.kc_b);
    armt_buffer_release(runner->rt, &g.wm, g.wm_b);
    armt_buffer_release(runner->rt, &g.z, g.z_b);
    armt_buffer_release(runner->rt, &g.wr, g.wr_b);
    armt_buffer_release(runner->rt, &g.rt, g.rt_b);
    armt_buffer_release(runner->rt, &g.ws, g.ws_b);
    armt_buffer_release(runner->rt, &g.rtab, g.rtab_b);
    armt_buffer_release(runner->rt, &g.gtok, g.gtok_b);
    armt_buffer_release(runner->rt, &g.part, g.part_b);
    armt_buffer_release(runner->rt, &g.sk, g.sk_b);
    free(g.docs);
    free(g.written);
    free(g.act);
    free(g.rt_host);
    free(g.ids);
    free(g.a_off);
    free(g.w_off);
    free(g.c_off);
    free(g.blk_off);
    free(g.logits);
    free(g.work);
    free(g.greedy);
    armt_ctx_prof_drop(runner); /* (a failed call's events; a finished one collected them) */
    runner->stats.seconds = armt_now() - t0;
    runner->stats.device_bytes = runner->scratch_bytes;
    return st;
}
