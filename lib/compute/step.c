/*
 * step.c - one schedule step as a recipe: embed, memory read, decoder layer, memory write, output. Every
 * linear operation is one armt_gemm_op over the step's cells (each entry addressing its own layer's weights
 * by offset); the other operations are one launch each over all cells (ops.c).
 */
#include "config.h"

#include "compute/ops.h"

static size_t slot_of(const armt_step *st, int j) { return (size_t)((st->s0 - j) % st->cap); }

/* Offsets of the residual stream (x, slot-addressed) and of a per-cell temporary of `width` columns. */
static void offsets_x(const armt_call *F, const armt_step *st, size_t *dst) {
    for (int j = 0; j < st->G; j++)
        dst[j] = slot_of(st, j) * (size_t)st->T * (size_t)F->d;
}
static void offsets_tmp(const armt_step *st, size_t rows, size_t width, size_t *dst) {
    for (int j = 0; j < st->G; j++)
        dst[j] = (size_t)j * rows * width;
}

static int any_written(const armt_call *F, const armt_step *st) {
    for (int j = 0; j < st->G; j++)
        if (F->written[st->l0 + j]) return 1;
    return 0;
}

/* An op C_j (m x ?) = A_j W^T (+ beta C_j) over the step's cells at the call's a_off / c_off arrays, A read
 * from its staged bf16 copy where there is one. */
static armt_gemm_op cells_op(const armt_call *F, size_t m, cl_mem a, size_t lda, cl_mem c, size_t ldc,
                             float beta) {
    armt_gemm_op op = {.m = m,
                       .a = a,
                       .lda = lda,
                       .a_off = F->a_off,
                       .c = c,
                       .ldc = ldc,
                       .c_off = F->c_off,
                       .beta = beta,
                       .site = -1,
                       .gemv = F->gemv};
    armt_op_staged_a(F, &op);
    return op;
}

/* W of an op that is not a weight role: bf16 (n x k rows, our kernels) or fp32 k x n rows (CLBlast). */
static void set_w(armt_gemm_op *op, cl_mem w, size_t ldw, int bf16) {
    op->w = w;
    op->ldw = ldw;
    op->w_bf16 = bf16;
    op->w_kn = !bf16;
}

/* The op over a weight role (pair >= 0: that role's weights in the same GEMM, epi.w2). */
static armt_status gemm_role(armt_call *F, const armt_step *st, armt_gemm_op op, armt_role role, int pair) {
    return armt_gemm_weights(F->ctx, op, role, pair, st->l0, st->G, F->b_off, F->err);
}

/* Generation's one-row steps: the RMSNorm before q, k, v and before gate and up has no launch of its own;
 * the GEMVs that read its rows norm x themselves (armt_gemm_epi.norm_w, in armt_rmsnorm's order: the same
 * bits). A GEMM whose plan is not the GEMV gets the norm run first, as always. */
static int norm_in_gemv(const armt_call *F, const armt_step *st) {
    return F->gemv && st->G == 1 && st->T <= ARMT_GEMV_ROWS;
}

/* op on x with the pending norm in the GEMV (x_off: storage for its one A offset) */
static armt_gemm_op on_x(armt_call *F, const armt_step *st, armt_gemm_op op, size_t *x_off) {
    armt_ctx *ctx = F->ctx;
    size_t n_off;
    *x_off = slot_of(st, 0) * (size_t)st->T * (size_t)F->d;
    op.a = ctx->x;
    op.a_off = x_off;
    op.a_bf16 = NULL;
    op.a_bf16_only = 0;
    op.epi.norm_w = armt_weight_at(&ctx->model->w[F->norm_role], 0, &n_off);
    op.epi.norm_off = n_off + (size_t)st->l0 * (size_t)F->d;
    op.epi.norm_eps = F->cfg->rms_norm_eps;
    return op;
}

/* 1: op over role (and pair) runs on the GEMV as normed_role would run it */
static int normed_role_gemv(armt_call *F, const armt_step *st, armt_gemm_op op, armt_role role, int pair) {
    size_t x_off;
    return armt_gemm_weights_gemv(F->ctx, F->norm_pend ? on_x(F, st, op, &x_off) : op, role, pair, st->l0);
}

/* The op over a role whose A is the pending norm's output (ctx->h at the temporaries' offsets): on x with the
 * norm in the GEMV where it takes it, else after the norm. */
static armt_status normed_role(armt_call *F, const armt_step *st, armt_gemm_op op, armt_role role, int pair) {
    armt_ctx *ctx = F->ctx;
    if (F->norm_pend) {
        size_t x_off;
        armt_gemm_op xo = on_x(F, st, op, &x_off);
        if (armt_gemm_weights_gemv(ctx, xo, role, pair, st->l0)) return gemm_role(F, st, xo, role, pair);
        F->norm_pend = 0;
        ARMT_TRY(armt_op_rmsnorm(F, st, F->norm_role));
        armt_op_staged_a(F, &op);
    }
    return gemm_role(F, st, op, role, pair);
}

/* The RMSNorm of x into the h rows for the ops that follow: now, or left to their GEMVs (norm_in_gemv). */
static armt_status norm_rows(armt_call *F, const armt_step *st, armt_role role) {
    F->norm_pend = 0;
    if (!norm_in_gemv(F, st)) return armt_op_rmsnorm(F, st, role);
    armt_op_unstage(F);
    F->norm_pend = 1;
    F->norm_role = role;
    return ARMT_OK;
}

/* ======================================================================================================= */
/* Input and output                                                                                        */
/* ======================================================================================================= */

armt_status armt_step_upload_ids(armt_call *F, size_t first, size_t count) {
    armt_err *err = F->err;
    ARMT_CL_TRY(clEnqueueWriteBuffer(F->ctx->queue, F->ctx->ids, CL_TRUE, first * sizeof(int32_t),
                                     count * sizeof(int32_t), F->ids + first, 0, NULL, NULL));
    return ARMT_OK;
}

armt_status armt_step_embed(armt_call *F, const armt_step *st, size_t first, int Ls, int M, int ns) {
    return armt_op_embed(F, st, first, Ls, M, ns, slot_of(st, 0) * (size_t)st->T * (size_t)F->d);
}

/* logits (rows x vocab) = out_rows (rows x d) lm_head^T, in the lm_head's precision. */
static armt_status lm_head(armt_call *F, size_t rows) {
    armt_ctx *ctx = F->ctx;
    const armt_weight *w = armt_model_lm_head(ctx->model);
    size_t lo, d = (size_t)F->d, zero = 0;
    armt_gemm_op op = {.m = rows,
                       .n = (size_t)F->V,
                       .k = d,
                       .count = 1,
                       .a = ctx->out_rows,
                       .lda = d,
                       .a_off = &zero,
                       .w_bf16 = w->bf16,
                       .ldw = d,
                       .w_off = &lo,
                       .c = ctx->logits,
                       .ldc = (size_t)F->V,
                       .c_off = &zero,
                       .site = ARMT_ROLE_LM_HEAD,
                       .gemv = F->gemv};
    op.w = armt_weight_at(w, 0, &lo);
    return armt_gemm(ctx, &op, F->err);
}

armt_status armt_step_emit(armt_call *F, size_t slot, size_t T, size_t first, size_t Ls) {
    armt_err *err = F->err;
    armt_ctx *ctx = F->ctx;
    const armt_forward_params *p = F->p;
    if (p->output == ARMT_OUTPUT_NONE) return ARMT_OK;
    size_t r0 = 0, r1 = Ls;
    if (p->output == ARMT_OUTPUT_LOGITS_LAST) {
        if (first + Ls != F->n) return ARMT_OK; /* only the segment holding the last token */
        r0 = Ls - 1;
    }
    size_t d = (size_t)F->d, V = (size_t)F->V;
    for (size_t b = r0; b < r1; b += ctx->out_rows_cap) {
        size_t rows = r1 - b < ctx->out_rows_cap ? r1 - b : ctx->out_rows_cap;
        ARMT_TRY(armt_op_final_norm(F, (slot * T + (size_t)F->ns + b) * d, rows));
        if (p->output == ARMT_OUTPUT_HIDDEN) {
            ARMT_CL_TRY(clEnqueueReadBuffer(ctx->queue, ctx->out_rows, CL_FALSE, 0, rows * d * 4,
                                            p->out + (first + b) * d, 0, NULL, NULL));
            continue;
        }
        ARMT_TRY(lm_head(F, rows));
        float *dst = p->output == ARMT_OUTPUT_LOGITS_LAST ? p->out : p->out + (first + b) * V;
        ARMT_CL_TRY(
            clEnqueueReadBuffer(ctx->queue, ctx->logits, CL_FALSE, 0, rows * V * 4, dst, 0, NULL, NULL));
    }
    return ARMT_OK;
}

armt_status armt_step_row_logits(armt_call *F, size_t x_off, float *dst) {
    armt_err *err = F->err;
    armt_ctx *ctx = F->ctx;
    ARMT_TRY(armt_op_final_norm(F, x_off, 1));
    ARMT_TRY(lm_head(F, 1));
    if (!dst) return ARMT_OK; /* (armt_step_row_token: the logits stay on the device) */
    ARMT_CL_TRY(
        clEnqueueReadBuffer(ctx->queue, ctx->logits, CL_TRUE, 0, (size_t)F->V * 4, dst, 0, NULL, NULL));
    return ARMT_OK;
}

armt_status armt_step_row_token(armt_call *F, size_t x_off, cl_mem tok, cl_mem part, cl_mem cnt,
                                int32_t *dst) {
    armt_err *err = F->err;
    ARMT_TRY(armt_step_row_logits(F, x_off, NULL));
    ARMT_TRY(armt_op_rows_argmax(F, 1, tok, part, cnt));
    ARMT_CL_TRY(clEnqueueReadBuffer(F->ctx->queue, tok, CL_TRUE, 0, sizeof *dst, dst, 0, NULL, NULL));
    return ARMT_OK;
}

/* ======================================================================================================= */
/* Memory read and the products with W_mem                                                                 */
/* ======================================================================================================= */

armt_status armt_step_mem_bf16_refresh(armt_call *F, int l0, int G) {
    armt_ctx *ctx = F->ctx;
    if (!ctx->w_mem_bf) return ARMT_OK;
    return armt_op_bf16_transpose(F, ctx->w_mem, ctx->w_mem_bf, 0, F->dk, F->d, l0, G, F->dk, 1, 0);
}

/* phi (rows x dk) W_mem[l] over the G cells of a step into c (rows x d), A and C offsets set by the caller:
 * fp32 W_mem through CLBlast, or its bf16 copy (W_mem^T) through our GEMM (bf16 models). rowscale: the fused
 * read, C += rowscale[row] * product. */
static armt_status mem_product(armt_call *F, const armt_step *st, size_t rows, cl_mem c, int site,
                               cl_mem rowscale) {
    armt_ctx *ctx = F->ctx;
    size_t dk = (size_t)F->dk, d = (size_t)F->d;
    for (int j = 0; j < st->G; j++)
        F->b_off[j] = (size_t)(st->l0 + j) * dk * d;
    armt_gemm_op op = cells_op(F, rows, ctx->phi, dk, c, d, rowscale ? 1.0f : 0.0f);
    op.n = d;
    op.k = dk;
    op.count = (size_t)st->G;
    op.w_off = F->b_off;
    op.site = site;
    if (rows == (size_t)st->T) op.split_rows = (size_t)st->split_rows; /* (the read's; the write's: M rows) */
    op.epi.rowscale = rowscale;
    if (ctx->w_mem_bf)
        set_w(&op, ctx->w_mem_bf, dk, 1);
    else
        set_w(&op, ctx->w_mem, d, 0);
    return armt_gemm(ctx, &op, F->err);
}

/* x += phi(x W_mq^T) W_mem[l] / (phi(x W_mq^T) . z[l] + 1e-5) for every cell (docs/MATH.md). */
armt_status armt_step_read(armt_call *F, const armt_step *st) {
    armt_ctx *ctx = F->ctx;
    size_t T = (size_t)st->T;
    if (!any_written(F, st)) return ARMT_OK; /* every cell is a first segment: the read is skipped */
    offsets_x(F, st, F->a_off);
    offsets_tmp(st, T, (size_t)F->dm, F->c_off);
    /* generation's one-row steps: the GEMV reads fp32 phi itself, with the row scales (no staging launch);
     * DPFP and the row scale of one row in one launch, or (with the fused decode, tune.decode_fuse: st->dcnt)
     * in the W_mq GEMV's last work-group (the same bits: its 128 items walk the row_wg = ARMT_ROW_WG lanes) */
    const int gemv = F->gemv && T <= ARMT_GEMV_ROWS;
    const int fused = ctx->w_mem_bf && F->dk % 8 == 0 && F->H == 1;
    const int one_row = fused && gemv && T == 1 && st->G == 1;
    const armt_gemv_dpfp tail = {.phi = ctx->phi,
                                 .z = ctx->z,
                                 .written = ctx->written,
                                 .cnt = st->dcnt,
                                 .dm = F->dm,
                                 .dh = F->dm / F->H,
                                 .dkh = F->dkh,
                                 .normalized = F->normalized,
                                 .no_denom = F->no_denom,
                                 .l = st->l0};
    armt_gemm_op mq = cells_op(F, T, ctx->x, (size_t)F->d, ctx->mq, (size_t)F->dm, 0.0f);
    mq.split_rows = (size_t)st->split_rows;
    int tailed = 0;
    if (one_row && st->dcnt) {
        mq.epi.dpfp = &tail;
        tailed = armt_gemm_weights_gemv(ctx, mq, ARMT_ROLE_WMQ, -1, st->l0);
        if (!tailed) mq.epi.dpfp = NULL;
    }
    ARMT_TRY(gemm_role(F, st, mq, ARMT_ROLE_WMQ, -1));
    if (!one_row) ARMT_TRY(armt_op_dpfp(F, (size_t)st->G * T));
    if (!gemv) ARMT_TRY(armt_op_stage_bf16(F, ctx->phi, (size_t)st->G * T, (size_t)F->dk));
    if (fused && (F->abf_src == ctx->phi || gemv)) {
        /* fused (bf16 models on tensor cores): x += (1/den) phi W_mem in the GEMM's epilogue; the row scales
         * go into ctx->mq, whose projections dpfp has consumed (it holds at least G T d_mem floats) */
        if (!tailed) ARMT_TRY(one_row ? armt_op_dpfp_read_scale(F, st) : armt_op_mem_read_scale(F, st));
        offsets_tmp(st, T, (size_t)F->dk, F->a_off);
        offsets_x(F, st, F->c_off);
        armt_status s = mem_product(F, st, T, ctx->x, ARMT_GSITE_MEM_READ, ctx->mq);
        armt_op_unstage(F);
        return s;
    }
    offsets_tmp(st, T, (size_t)F->dk, F->a_off);
    offsets_tmp(st, T, (size_t)F->d, F->c_off);
    ARMT_TRY(mem_product(F, st, T, ctx->h, ARMT_GSITE_MEM_READ, NULL));
    armt_op_unstage(F);
    return armt_op_mem_read(F, st);
}

/* ======================================================================================================= */
/* The decoder layer                                                                                       */
/* ======================================================================================================= */

/* q, k and v of the step's cells (RoPE in the GEMMs' epilogue where it fits; k and v straight to bf16 for
 * the attention kernel that reads them so). Returns whether RoPE was applied; *kv_bf16 whether K/V are bf16.
 */
static armt_status qkv(armt_call *F, const armt_step *st, int skip, int *fused_rope, int *kv_bf16) {
    armt_ctx *ctx = F->ctx;
    const size_t T = (size_t)st->T, G = (size_t)st->G, d = (size_t)F->d;
    const size_t qd = (size_t)F->nh * F->hd, kvd = (size_t)F->nkv * F->hd;
    const int rope =
        (F->abf_src == ctx->h || (F->norm_pend && F->d % 8 == 0)) && armt_gemm_rope_fits(ctx, F->hd, F->d);
    /* K and V in bf16 where the GEMMs run the bf16 x bf16 kernel (as RoPE fused implies) and the rows do not
     * go to a KV cache (fp32); with a sliding window straight into their place behind the window in ck / cv
     * (G, win + T, kvd), which armt_window_gather then completes with the windows */
    const int kvb = rope && ctx->k[ARMT_K_ATTENTION_MMA_KVBF16] && !st->kcache;
    *fused_rope = rope;
    *kv_bf16 = kvb;
    armt_gemm_epi epi = {
        .rope = rope ? ctx->rope : NULL, .rope_hd = F->hd, .rope_T = st->T, .rope_pos0 = st->pos0};
    offsets_tmp(st, T, d, F->a_off);
    offsets_tmp(st, T, qd, F->c_off);
    /* generation's one cell with RoPE in the epilogue: q, k and v in one GEMV launch (q first, k and v
     * straight into the KV cache), where the GEMV takes all three */
    if (st->kcache && rope && G == 1 && skip == 0 && ctx->model->w[ARMT_ROLE_WQ].bf16) {
        const size_t q_off = F->c_off[0];
        size_t w3_off;
        armt_gemm_op kv = cells_op(F, T, ctx->h, d, st->kcache, kvd, 0.0f);
        kv.epi = epi;
        if (st->cache_bf16) { /* k and v rounded to bf16 into the caches */
            kv.epi.bf16_out = 1;
            kv.epi.out = st->kcache;
            kv.epi.out2 = st->vcache;
        } else {
            kv.epi.c2 = st->vcache;
        }
        kv.epi.w3 = armt_weight_at(&ctx->model->w[ARMT_ROLE_WQ], st->l0, &w3_off);
        kv.epi.w3_off = w3_off;
        kv.epi.n3 = qd;
        kv.epi.c3 = ctx->q;
        kv.epi.c3_off = q_off;
        kv.epi.ldc3 = qd;
        F->c_off[0] = st->cache_off + ((size_t)F->win + (size_t)st->pos0) * kvd;
        if (normed_role_gemv(F, st, kv, ARMT_ROLE_WK, ARMT_ROLE_WV)) {
            ARMT_TRY(normed_role(F, st, kv, ARMT_ROLE_WK, ARMT_ROLE_WV));
            armt_op_unstage(F);
            return ARMT_OK;
        }
        F->c_off[0] = q_off;
    }
    armt_gemm_op op = cells_op(F, T, ctx->h, d, ctx->q, qd, 0.0f);
    op.epi = epi;
    op.split_rows = (size_t)st->split_rows;
    /* the last layer's cell only for the rows something reads, from q on: its k and v cover every row,
     * since its memory tokens attend to all of them */
    op.skip_last = (size_t)skip;
    ARMT_TRY(normed_role(F, st, op, ARMT_ROLE_WQ, -1));
    const int in_win = kvb && F->win;
    /* generation with RoPE in the epilogue: k and v straight into the KV cache (one cell) */
    const int in_cache = st->kcache && rope && G == 1;
    cl_mem kdst = in_win ? ctx->ck : in_cache ? st->kcache : ctx->kk;
    cl_mem vdst = in_win ? ctx->cv : in_cache ? st->vcache : ctx->vv;
    if (in_win)
        for (size_t j = 0; j < G; j++)
            F->c_off[j] = (j * ((size_t)F->win + T) + (size_t)F->win) * kvd;
    else if (in_cache)
        F->c_off[0] = st->cache_off + ((size_t)F->win + (size_t)st->pos0) * kvd;
    else
        offsets_tmp(st, T, kvd, F->c_off);
    op = cells_op(F, T, ctx->h, d, kdst, kvd, 0.0f);
    op.epi = epi;
    op.split_rows = (size_t)st->split_rows;
    /* k and v in one GEMM where the tiles pair their weights, unless the launch is small enough for the
     * narrow tiles (one cell: the sequential schedule); in generation's KV cache (fp32) where the GEMV takes
     * both */
    armt_gemm_op kv = op;
    const int cb = in_cache && st->cache_bf16; /* into a bf16 KV cache */
    if (cb) {
        kv.epi.bf16_out = 1;
        kv.epi.out = kdst;
        kv.epi.out2 = vdst;
    } else {
        kv.epi.c2 = vdst;
    }
    const int pair = (kvb && armt_gemm_kv_pair_pays(ctx, kvd, G, T)) ||
                     (in_cache && armt_gemm_weights_gemv(ctx, kv, ARMT_ROLE_WK, ARMT_ROLE_WV, st->l0));
    if (pair && in_cache) {
        ARMT_TRY(normed_role(F, st, kv, ARMT_ROLE_WK, ARMT_ROLE_WV));
        armt_op_unstage(F);
        return ARMT_OK;
    }
    op.epi.bf16_out = kvb || cb;
    op.epi.out = kdst; /* (bf16 in the first half of its own memory) */
    op.epi.out2 = pair ? vdst : NULL;
    ARMT_TRY(normed_role(F, st, op, ARMT_ROLE_WK, pair ? ARMT_ROLE_WV : -1));
    if (!pair) {
        op.c = vdst;
        op.epi.rope = NULL;
        op.epi.out = vdst;
        ARMT_TRY(normed_role(F, st, op, ARMT_ROLE_WV, -1));
    }
    armt_op_unstage(F);
    return ARMT_OK;
}

/* Attention of the step's cells: on this step's keys and values, or (generation) a KV cache the rows are
 * appended to. Tensor cores where the model's attention program has them (bf16) and float4 loads of K/V are
 * aligned; they also write the o projection's bf16 operand (staged as att). With a sliding window the keys
 * of each cell follow its layer's window (ctx->ck / ctx->cv, or the KV cache's first F->win rows), and the
 * step's text rows become the windows of its layers after the attention. */
static armt_status attention(armt_call *F, const armt_step *st, int skip, int kv_bf16, int in_cache) {
    armt_ctx *ctx = F->ctx;
    const size_t kvd = (size_t)F->nkv * F->hd;
    cl_mem kbuf = ctx->kk, vbuf = ctx->vv;
    cl_ulong kv_off = 0;
    int Tk = st->T, q0 = 0;
    if (st->kcache) {
        const size_t at = st->cache_off + ((size_t)F->win + (size_t)st->pos0) * kvd, n = (size_t)st->T * kvd;
        if (!in_cache) /* (qkv wrote them there itself otherwise) */
            ARMT_TRY(armt_op_kv_put(F, ctx->kk, ctx->vv, 0, st->kcache, st->vcache, at, n, st->cache_bf16));
        kv_bf16 = st->cache_bf16;
        kbuf = st->kcache;
        vbuf = st->vcache;
        kv_off = st->cache_off;
        Tk = st->cache_rows;
        q0 = F->win + st->pos0;
    } else if (F->win) {
        ARMT_TRY(armt_op_window_gather(F, st, kv_bf16));
        kbuf = ctx->ck;
        vbuf = ctx->cv;
        Tk = F->win + st->T;
        q0 = F->win;
    }
    if (st->kcache && st->part && st->T == 1 && F->hd % 4 == 0 && kv_off % 4 == 0) {
        /* one new token: the split-K decode kernels, writing the o projection's bf16 operand too */
        const int ob = armt_gemm_bf16_operands(ctx);
        ARMT_TRY(armt_op_attention_decode(F, st, kbuf, vbuf, kv_off, Tk, q0, ob));
        F->abf_src = ctx->att;
        F->abf_buf = ctx->abf;
        F->abf_only = 0;
        if (!ob) armt_op_unstage(F);
        return ARMT_OK;
    }
    const armt_kernel_id aid = kv_bf16                                           ? ARMT_K_ATTENTION_MMA_KVBF16
                               : ctx->k[ARMT_K_ATTENTION_MMA] && kv_off % 4 == 0 ? ARMT_K_ATTENTION_MMA
                                                                                 : ARMT_K_ATTENTION;
    const int out_bf16 = aid != ARMT_K_ATTENTION && armt_gemm_bf16_operands(ctx);
    ARMT_TRY(armt_op_attention(F, st, aid, kbuf, vbuf, kv_off, Tk, q0, skip, out_bf16));
    if (F->win && !st->kcache) ARMT_TRY(armt_op_window_store(F, st, kv_bf16));
    if (out_bf16) {
        F->abf_src = ctx->att;
        F->abf_buf = ctx->abf;
        F->abf_only = 1;
        return ARMT_OK;
    }
    return armt_op_stage_bf16(F, ctx->att, (size_t)st->G * (size_t)st->T, (size_t)F->nh * (size_t)F->hd);
}

/* The MLP input's gate and up projections, then SwiGLU: bf16 on tensor cores in a GEMM epilogue that writes
 * the down projection's bf16 operand into f2's memory (staged as f1; ffn % 8 == 0 makes every offset fit the
 * bf16-A kernel), with gate and up in one GEMM where the tiles pair them; otherwise the gate into f1, the up
 * into f2 (its epilogue reading the gate) or the SwiGLU kernel. Rows r0 .. r0 + rows - 1 of each cell (r0 > 0
 * only in a one-cell step's row blocks), at row 0 of f1 and f2; skip: as the o projection's, from r0. */
static armt_status mlp_in(armt_call *F, const armt_step *st, size_t r0, size_t rows, int skip) {
    armt_ctx *ctx = F->ctx;
    const size_t T = (size_t)st->T, d = (size_t)F->d, ffn = (size_t)F->ffn;
    const int fused = armt_gemm_bf16_operands(ctx) && F->ffn % 8 == 0;
    offsets_tmp(st, T, d, F->a_off);
    F->a_off[0] += r0 * d;
    offsets_tmp(st, rows, ffn, F->c_off);
    armt_gemm_op op = cells_op(F, rows, ctx->h, d, ctx->f2, ffn, 0.0f);
    op.epi.out = ctx->f2;
    op.skip_last = (size_t)skip;
    op.split_rows = (size_t)st->split_rows; /* (a row block's too: its bits are the whole cell's) */
    if (fused && armt_gemm_pairs(ctx, ARMT_ROLE_WG, ARMT_ROLE_WU)) {
        ARMT_TRY(normed_role(F, st, op, ARMT_ROLE_WG, ARMT_ROLE_WU));
    } else {
        armt_gemm_op gate = op;
        gate.c = ctx->f1;
        gate.epi.out = NULL;
        ARMT_TRY(normed_role(F, st, gate, ARMT_ROLE_WG, -1));
        op.epi.gate = fused ? ctx->f1 : NULL;
        ARMT_TRY(normed_role(F, st, op, ARMT_ROLE_WU, -1));
    }
    armt_op_unstage(F);
    if (!fused) /* (not on the last cell's rows below skip: the gate and up projections left them out) */
        return armt_op_swiglu(F, (size_t)st->G * rows * ffn, ((size_t)st->G - 1) * rows * ffn,
                              (((size_t)st->G - 1) * rows + (size_t)skip) * ffn);
    F->abf_src = ctx->f1; /* its fp32 rows hold the gate values: only the bf16 copy is SwiGLU's output */
    F->abf_buf = ctx->f2;
    F->abf_only = 1;
    return ARMT_OK;
}

/* x += the MLP of the step's cells, after their RMSNorm. f1 and f2 hold ctx->cap_mlp_rows rows: a step of
 * one cell with more rows (the full schedule) runs the gate, up and down projections in blocks of that many
 * rows, each block's bits those of the whole (every row's products are its own); blocks wholly below skip
 * feed nothing and are left out. The norm's bf16 copy of h (abf, when staged) outlives the blocks: the MLP
 * stages nothing there. */
static armt_status mlp(armt_call *F, const armt_step *st, int skip) {
    armt_ctx *ctx = F->ctx;
    const size_t T = (size_t)st->T, d = (size_t)F->d, ffn = (size_t)F->ffn;
    size_t blk = T;
    if ((size_t)st->G * T > ctx->cap_mlp_rows) {
        if (st->G != 1 || F->norm_pend || ctx->cap_mlp_rows == 0)
            return armt_err_set(F->err, ARMT_STATUS_UNSUPPORTED, "MLP: %d cells of %zu rows, scratch for %zu",
                                st->G, T, ctx->cap_mlp_rows);
        blk = ctx->cap_mlp_rows;
    }
    const cl_mem src = F->abf_src, buf = F->abf_buf;
    const int only = F->abf_only;
    for (size_t r0 = 0; r0 < T; r0 += blk) {
        const size_t rows = T - r0 < blk ? T - r0 : blk;
        if ((size_t)skip >= r0 + rows) continue;
        const int bskip = (size_t)skip > r0 ? (int)((size_t)skip - r0) : 0;
        F->abf_src = src; /* h's staging, as the norm left it */
        F->abf_buf = buf;
        F->abf_only = only;
        ARMT_TRY(mlp_in(F, st, r0, rows, bskip));
        F->norm_pend = 0;
        offsets_tmp(st, rows, ffn, F->a_off);
        offsets_x(F, st, F->c_off);
        F->c_off[0] += r0 * d;
        armt_gemm_op op = cells_op(F, rows, ctx->f1, ffn, ctx->x, d, 1.0f);
        op.skip_last = (size_t)bskip;
        op.split_rows = (size_t)st->split_rows;
        ARMT_TRY(gemm_role(F, st, op, ARMT_ROLE_WD, -1));
    }
    armt_op_unstage(F);
    return ARMT_OK;
}

armt_status armt_step_layer(armt_call *F, const armt_step *st) {
    armt_ctx *ctx = F->ctx;
    const size_t T = (size_t)st->T, d = (size_t)F->d, qd = (size_t)F->nh * F->hd;
    /* the last layer's cell only for the rows something reads (st->skip) */
    const int skip = st->skip > 0 && st->skip < st->T && st->l0 + st->G == F->cfg->n_layers ? st->skip : 0;
    int rope_done, kv_bf16;
    ARMT_TRY(norm_rows(F, st, ARMT_ROLE_NORM_IN)); /* (possibly straight to bf16: see there) */
    ARMT_TRY(qkv(F, st, skip, &rope_done, &kv_bf16));
    F->norm_pend = 0;
    if (!rope_done) ARMT_TRY(armt_op_rope(F, st, skip));
    /* (generation: qkv put k and v into the KV cache itself where RoPE was in its epilogue) */
    ARMT_TRY(attention(F, st, skip, kv_bf16, st->kcache && rope_done && st->G == 1));
    /* x += att Wo^T (beta = 1 adds the residual in the GEMM) */
    offsets_tmp(st, T, qd, F->a_off);
    offsets_x(F, st, F->c_off);
    armt_gemm_op op = cells_op(F, T, ctx->att, qd, ctx->x, d, 1.0f);
    op.skip_last = (size_t)skip;
    op.split_rows = (size_t)st->split_rows;
    ARMT_TRY(gemm_role(F, st, op, ARMT_ROLE_WO, -1));

    ARMT_TRY(norm_rows(F, st, ARMT_ROLE_NORM_POST));
    return mlp(F, st, skip);
}

/* ======================================================================================================= */
/* Memory write                                                                                            */
/* ======================================================================================================= */

/* W_mem[l] += phi(k)^T delta over the step's cells. bf16 models on tensor cores: our GEMM with beta = 1 into
 * the fp32 W_mem, on operands split into bf16 high and low parts so that the update keeps (nearly) fp32
 * precision: phi^T delta = hi hi + hi lo + lo hi (+ lo lo, 2^-16 relative, left out) is one product along
 * k = 3 Mp of A = [hi(phi) hi(phi) lo(phi)]^T (dk x 3Mp) and W = [hi(delta) lo(delta) hi(delta)]^T (d x 3Mp),
 * both in ctx->abf (M padded with zeros to Mp, a multiple of 8, for the kernel's alignment); plain bf16
 * operands lose most of the state's precision. Otherwise CLBlast multiplies the fp32 rows. */
static armt_status mem_update(armt_call *F, const armt_step *st) {
    armt_ctx *ctx = F->ctx;
    const size_t M = (size_t)F->M, G = (size_t)st->G, dk = (size_t)F->dk, d = (size_t)F->d;
    const size_t K = armt_mem_update_k(F->cfg), Mp = K / 3;
    const int tc = armt_gemm_bf16_operands(ctx) && dk % 8 == 0 && d % 8 == 0; /* ctx->abf has room */
    for (size_t j = 0; j < G; j++)
        F->c_off[j] = (st->l0 + j) * dk * d;
    armt_gemm_op op = {.m = dk,
                       .n = d,
                       .count = G,
                       .a_off = F->a_off,
                       .w_off = F->b_off,
                       .c = ctx->w_mem,
                       .ldc = d,
                       .c_off = F->c_off,
                       .beta = 1.0f,
                       .site = ARMT_GSITE_MEM_UPDATE};
    if (tc) {
        const size_t w0 = G * dk * K; /* the A blocks, then the W blocks */
        ARMT_TRY(armt_op_bf16_transpose(F, ctx->phi, ctx->abf, 0, (int)M, (int)dk, 0, (int)G, (int)Mp, 3, 4));
        ARMT_TRY(
            armt_op_bf16_transpose(F, ctx->vnew, ctx->abf, w0, (int)M, (int)d, 0, (int)G, (int)Mp, 3, 2));
        for (size_t j = 0; j < G; j++) {
            F->a_off[j] = j * dk * K;
            F->b_off[j] = w0 + j * d * K;
        }
        op.k = K;
        op.a = ctx->phi; /* A: only the bf16 rows in ctx->abf at a_off */
        op.lda = K;
        op.a_bf16 = ctx->abf;
        op.a_bf16_only = 1;
        set_w(&op, ctx->abf, K, 1);
    } else {
        offsets_tmp(st, M, dk, F->a_off);
        offsets_tmp(st, M, d, F->b_off);
        op.k = M;
        op.a = ctx->phi;
        op.lda = dk;
        op.trans_a = 1;
        set_w(&op, ctx->vnew, d, 0);
    }
    return armt_gemm(ctx, &op, F->err);
}

/* The memory write of every cell on its M memory-token rows (docs/MATH.md, the exact first-segment rule). */
armt_status armt_step_write(armt_call *F, const armt_step *st) {
    armt_ctx *ctx = F->ctx;
    const size_t M = (size_t)F->M, G = (size_t)st->G, d = (size_t)F->d, dm = (size_t)F->dm;
    ARMT_TRY(armt_op_mem_gather(F, st));
    /* the memory rows rounded to bf16 once for both projections (the bf16 x bf16 kernel, where there is one)
 */
    ARMT_TRY(armt_op_stage_bf16(F, ctx->mrows, G * M, d));
    offsets_tmp(st, M, d, F->a_off);
    offsets_tmp(st, M, dm, F->c_off);
    ARMT_TRY(gemm_role(F, st, cells_op(F, M, ctx->mrows, d, ctx->mq, dm, 0.0f), ARMT_ROLE_WMK, -1));
    ARMT_TRY(armt_op_dpfp(F, G * M));
    offsets_tmp(st, M, d, F->a_off);
    offsets_tmp(st, M, d, F->c_off);
    ARMT_TRY(gemm_role(F, st, cells_op(F, M, ctx->mrows, d, ctx->vnew, d, 0.0f), ARMT_ROLE_WMV, -1));
    if (F->gating) /* beta per channel: m W_mb^T (the bias and the sigmoid are applied in the delta kernel) */
        ARMT_TRY(gemm_role(F, st, cells_op(F, M, ctx->mrows, d, ctx->mbeta, d, 0.0f), ARMT_ROLE_WMB, -1));
    armt_op_unstage(F);
    ARMT_TRY(armt_op_mem_write_prep(F, st));
    if (any_written(F, st)) {
        /* vprev = phi(k) W_mem[l] (divided by den in the delta kernel) */
        offsets_tmp(st, M, (size_t)F->dk, F->a_off);
        offsets_tmp(st, M, d, F->c_off);
        ARMT_TRY(mem_product(F, st, M, ctx->vprev, ARMT_GSITE_MEM_PREV, NULL));
    }
    ARMT_TRY(armt_op_mem_delta(F, st));
    ARMT_TRY(mem_update(F, st));
    ARMT_TRY(armt_op_mem_block_mask(F, st));
    ARMT_TRY(armt_op_mem_z_update(F, st));
    ARMT_TRY(armt_step_mem_bf16_refresh(F, st->l0, st->G));
    for (int j = 0; j < st->G; j++)
        F->written[st->l0 + j] = 1;
    return ARMT_OK;
}
