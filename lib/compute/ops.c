/*
 * ops.c - the small kernels of a step (see ops.h). Each wrapper sets its kernel's arguments in the order of
 * the kernel's signature in cl/, then launches.
 */
#include "config.h"

#include "compute/ops.h"

#include <math.h>
#include <stdlib.h>

size_t armt_round_up(size_t v, size_t m) { return (v + m - 1) / m * m; }

armt_status armt_op_launch(armt_call *F, armt_kernel_id id, cl_uint dims, size_t g0, size_t g1, size_t g2,
                           size_t l0) {
    size_t gws[3] = {g0, g1, g2}, lws[3] = {l0, 1, 1};
    cl_event ev = NULL;
    armt_status st =
        armt_enqueue(F->ctx->queue, F->ctx->k[id], dims, gws, l0 ? lws : NULL, &F->ctx->stats.kernel_launches,
                     armt_kernel_name(id), F->ctx->prof_on ? &ev : NULL, F->err);
    armt_ctx_prof_add(F->ctx, id, ev);
    return st;
}

armt_status armt_set_kargs(cl_kernel k, cl_uint first, const armt_karg *a, size_t n, armt_err *err) {
    for (size_t i = 0; i < n; i++)
        ARMT_CL_TRY(clSetKernelArg(k, first + (cl_uint)i, a[i].size, a[i].value));
    return ARMT_OK;
}

/* The trailing CELL_ARGS of a kernel, from argument index i on. */
static armt_status set_cell_args(armt_call *F, cl_kernel k, cl_uint i, const armt_step *st) {
    armt_err *err = F->err;
    return ARMT_KARGS(k, i, err, ARMT_KA(st->l0), ARMT_KA(st->s0), ARMT_KA(st->cap), ARMT_KA(st->T),
                      ARMT_KA(st->s_short), ARMT_KA(st->T_short));
}

/* A row-wise kernel (one work-group of row_wg items per row) over `rows` rows of each of the step's cells,
 * its CELL_ARGS from argument cell_arg on (none when negative). */
static armt_status cell_rows(armt_call *F, armt_kernel_id id, int cell_arg, const armt_step *st,
                             size_t rows) {
    if (cell_arg >= 0) ARMT_TRY(set_cell_args(F, F->ctx->k[id], (cl_uint)cell_arg, st));
    const size_t wg = (size_t)F->ctx->rt->tune.row_wg;
    return armt_op_launch(F, id, 3, wg, rows, (size_t)st->G, wg);
}

/* ======================================================================================================= */
/* bf16 operands                                                                                           */
/* ======================================================================================================= */

armt_status armt_op_stage_bf16(armt_call *F, cl_mem src, size_t rows, size_t width) {
    armt_err *err = F->err;
    armt_ctx *ctx = F->ctx;
    armt_op_unstage(F);
    if (!armt_gemm_bf16_operands(ctx)) return ARMT_OK;
    cl_kernel k = ctx->k[ARMT_K_F32_TO_BF16];
    /* strided mode, one entry at offset 0 */
    ARMT_CL_TRY(armt_f32_to_bf16_set_args(k, (int)rows, (int)width, src, (int)width, ctx->abf, NULL, 0, 0));
    ARMT_TRY(armt_op_launch(F, ARMT_K_F32_TO_BF16, 3, armt_round_up((width + 7) / 8, 64), rows, 1, 0));
    F->abf_src = src;
    F->abf_buf = ctx->abf;
    return ARMT_OK;
}

void armt_op_unstage(armt_call *F) {
    F->abf_src = NULL;
    F->abf_only = 0;
}

void armt_op_staged_a(const armt_call *F, armt_gemm_op *op) {
    const int staged = F->abf_src && op->a == F->abf_src;
    op->a_bf16 = staged ? F->abf_buf : NULL;
    op->a_bf16_only = staged && F->abf_only;
}

/* ======================================================================================================= */
/* Rows                                                                                                    */
/* ======================================================================================================= */

armt_status armt_op_rmsnorm(armt_call *F, const armt_step *st, armt_role role) {
    armt_err *err = F->err;
    armt_ctx *ctx = F->ctx;
    int bf = armt_gemm_bf16_operands(ctx) && F->d % 8 == 0;
    cl_kernel k = ctx->k[ARMT_K_RMSNORM];
    size_t off;
    cl_mem w = armt_weight_at(&ctx->model->w[role], 0, &off);
    cl_ulong woff = off;
    float eps = F->cfg->rms_norm_eps;
    ARMT_TRY(ARMT_KARGS(k, 0, err, ARMT_KA(ctx->x), ARMT_KA(ctx->h), ARMT_KA(w), ARMT_KA(woff), ARMT_KA(F->d),
                        ARMT_KA(eps)));
    ARMT_TRY(set_cell_args(F, k, 6, st));
    cl_mem out_bf = bf ? ctx->abf : NULL; /* NULL: no bf16 output */
    ARMT_CL_TRY(ARMT_ARG(k, 12, out_bf));
    ARMT_TRY(cell_rows(F, ARMT_K_RMSNORM, -1, st, (size_t)st->T));
    F->abf_src = bf ? ctx->h : NULL;
    F->abf_buf = ctx->abf;
    F->abf_only = bf;
    return ARMT_OK;
}

armt_status armt_op_final_norm(armt_call *F, size_t x_off, size_t rows) {
    armt_err *err = F->err;
    armt_ctx *ctx = F->ctx;
    size_t fo;
    cl_mem wf = armt_weight_at(&ctx->model->w[ARMT_ROLE_NORM_FINAL], 0, &fo);
    cl_kernel k = ctx->k[ARMT_K_RMSNORM_ROWS];
    cl_ulong xo = x_off, y_off = 0, w_off = fo;
    float eps = F->cfg->rms_norm_eps;
    ARMT_TRY(ARMT_KARGS(k, 0, err, ARMT_KA(ctx->x), ARMT_KA(xo), ARMT_KA(ctx->out_rows), ARMT_KA(y_off),
                        ARMT_KA(wf), ARMT_KA(w_off), ARMT_KA(F->d), ARMT_KA(eps)));
    size_t wg = (size_t)ctx->rt->tune.row_wg;
    return armt_op_launch(F, ARMT_K_RMSNORM_ROWS, 2, wg, rows, 1, wg);
}

int armt_argmax_parts(const armt_ctx *ctx, int V) {
    const int per = 4 * ctx->rt->tune.row_wg; /* (one round of an item's loads) */
    const int P = V / per;
    return P < 1 ? 1 : P > ARMT_ARGMAX_PARTS_MAX ? ARMT_ARGMAX_PARTS_MAX : P;
}

armt_status armt_op_rows_argmax(armt_call *F, size_t rows, cl_mem out, cl_mem part, cl_mem cnt) {
    armt_err *err = F->err;
    armt_ctx *ctx = F->ctx;
    const size_t wg = (size_t)ctx->rt->tune.row_wg;
    if (!part) {
        ARMT_TRY(ARMT_KARGS(ctx->k[ARMT_K_ROWS_ARGMAX], 0, err, ARMT_KA(ctx->logits), ARMT_KA(F->V),
                            ARMT_KA(out)));
        return armt_op_launch(F, ARMT_K_ROWS_ARGMAX, 2, wg, rows, 1, wg);
    }
    const int P = armt_argmax_parts(ctx, F->V);
    ARMT_TRY(ARMT_KARGS(ctx->k[ARMT_K_ROWS_ARGMAX_PART], 0, err, ARMT_KA(ctx->logits), ARMT_KA(F->V),
                        ARMT_KA(part), ARMT_KA(cnt), ARMT_KA(out)));
    ARMT_TRY(armt_op_launch(F, ARMT_K_ROWS_ARGMAX_PART, 2, wg * (size_t)P, rows, 1, wg));
    if (cnt) return ARMT_OK;
    ARMT_TRY(ARMT_KARGS(ctx->k[ARMT_K_ROWS_ARGMAX_FINAL], 0, err, ARMT_KA(ctx->logits), ARMT_KA(F->V),
                        ARMT_KA(part), ARMT_KA(P), ARMT_KA(out)));
    return armt_op_launch(F, ARMT_K_ROWS_ARGMAX_FINAL, 2, wg, rows, 1, wg);
}

armt_status armt_op_dpfp(armt_call *F, size_t rows) {
    armt_err *err = F->err;
    armt_ctx *ctx = F->ctx;
    cl_kernel k = ctx->k[ARMT_K_DPFP];
    const int dh = F->dm / F->H;
    ARMT_TRY(ARMT_KARGS(k, 0, err, ARMT_KA(ctx->mq), ARMT_KA(ctx->phi), ARMT_KA(F->dm), ARMT_KA(dh)));
    ARMT_TRY(armt_op_launch(F, ARMT_K_DPFP, 2, (size_t)F->dk, rows, 1, 0));
    if (!F->normalized) return ARMT_OK;
    k = ctx->k[ARMT_K_PHI_NORMALIZE];
    ARMT_TRY(ARMT_KARGS(k, 0, err, ARMT_KA(ctx->phi), ARMT_KA(F->dk), ARMT_KA(F->dkh)));
    const size_t wg = (size_t)ctx->rt->tune.row_wg;
    return armt_op_launch(F, ARMT_K_PHI_NORMALIZE, 2, wg, rows, 1, wg);
}

armt_status armt_op_rope(armt_call *F, const armt_step *st, int skip) {
    armt_err *err = F->err;
    armt_ctx *ctx = F->ctx;
    cl_kernel k = ctx->k[ARMT_K_ROPE];
    cl_ulong rope_n = (cl_ulong)st->G * (cl_ulong)st->T * (cl_ulong)(F->nh + F->nkv) * (cl_ulong)(F->hd / 2);
    ARMT_TRY(ARMT_KARGS(k, 0, err, ARMT_KA(ctx->q), ARMT_KA(ctx->kk), ARMT_KA(ctx->rope), ARMT_KA(st->T),
                        ARMT_KA(F->nh), ARMT_KA(F->nkv), ARMT_KA(F->hd), ARMT_KA(st->pos0), ARMT_KA(rope_n),
                        ARMT_KA(skip)));
    size_t rwg = (size_t)ctx->rt->tune.row_wg;
    return armt_op_launch(F, ARMT_K_ROPE, 1, armt_round_up((size_t)rope_n, rwg), 1, 1, rwg);
}

armt_status armt_op_swiglu(armt_call *F, size_t n, size_t skip0, size_t skip1) {
    armt_err *err = F->err;
    cl_kernel k = F->ctx->k[ARMT_K_SWIGLU];
    cl_ulong nl = n, s0 = skip0, s1 = skip1;
    ARMT_TRY(ARMT_KARGS(k, 0, err, ARMT_KA(F->ctx->f1), ARMT_KA(F->ctx->f2), ARMT_KA(nl), ARMT_KA(s0),
                        ARMT_KA(s1)));
    return armt_op_launch(F, ARMT_K_SWIGLU, 1, armt_round_up(n, 256), 1, 1, 0);
}

armt_status armt_op_embed(armt_call *F, const armt_step *st, size_t first, int Ls, int M, int ns,
                          size_t x_off) {
    armt_err *err = F->err;
    armt_ctx *ctx = F->ctx;
    armt_kernel_id kid = ctx->model->w[ARMT_ROLE_EMBED].bf16 ? ARMT_K_EMBED_BF16 : ARMT_K_EMBED;
    cl_kernel k = ctx->k[kid];
    size_t eo, mo, so = 0;
    cl_mem E = armt_weight_at(&ctx->model->w[ARMT_ROLE_EMBED], 0, &eo);
    cl_mem mem = armt_weight_at(&ctx->model->w[ARMT_ROLE_MEM], 0, &mo);
    /* without a sink the kernel reads none (ns = 0): any buffer serves as the argument */
    cl_mem sink = F->cfg->use_sink ? armt_weight_at(&ctx->model->w[ARMT_ROLE_SINK], 0, &so) : mem;
    cl_ulong e_off = eo, m_off = mo, s_off = so, xo = x_off;
    int fi = (int)first;
    ARMT_TRY(ARMT_KARGS(k, 0, err, ARMT_KA(ctx->ids), ARMT_KA(fi), ARMT_KA(Ls), ARMT_KA(E), ARMT_KA(e_off),
                        ARMT_KA(mem), ARMT_KA(m_off), ARMT_KA(M), ARMT_KA(ctx->x), ARMT_KA(xo), ARMT_KA(F->d),
                        ARMT_KA(sink), ARMT_KA(s_off), ARMT_KA(ns)));
    return armt_op_launch(F, kid, 2, (size_t)F->d, (size_t)st->T, 1, 0);
}

armt_status armt_op_attention(armt_call *F, const armt_step *st, armt_kernel_id aid, cl_mem kbuf, cl_mem vbuf,
                              cl_ulong kv_off, int Tk, int q0, int skip, int out_bf16) {
    armt_err *err = F->err;
    armt_ctx *ctx = F->ctx;
    cl_kernel k = ctx->k[aid];
    const size_t T = (size_t)st->T, G = (size_t)st->G;
    int Ti = st->T;
    float scale = (float)(1.0 / sqrt((double)F->hd));
    ARMT_TRY(ARMT_KARGS(k, 0, err, ARMT_KA(ctx->q), ARMT_KA(kbuf), ARMT_KA(vbuf), ARMT_KA(ctx->att),
                        ARMT_KA(Ti), ARMT_KA(F->nh), ARMT_KA(F->nkv), ARMT_KA(scale), ARMT_KA(kv_off),
                        ARMT_KA(Tk), ARMT_KA(q0)));
    /* the memory tokens' rows (inner loop): a step's cells hold them last; a KV-cache step (generation's
     * tail) has none */
    const int mem_all = st->kcache ? 0 : F->mem_all;
    const int j_short = st->s_short >= 0 && st->s0 - st->s_short >= 0 && st->s0 - st->s_short < st->G
                            ? st->s0 - st->s_short
                            : -1;
    const int T_short = j_short >= 0 ? st->T_short : st->T;
    /* WIN_ARGS (cl/attention.cl): the cell of the call's first segment (-1: none in the step); a generation
     * tail has no memory rows */
    const int j_first = st->s0 < st->G ? st->s0 : -1, nmem = st->kcache ? 0 : F->M;
    const cl_uint wa = aid == ARMT_K_ATTENTION ? 15 : 16;
    ARMT_TRY(ARMT_KARGS(k, wa, err, ARMT_KA(F->win), ARMT_KA(F->win_first), ARMT_KA(j_first), ARMT_KA(F->ns),
                        ARMT_KA(nmem)));
    if (aid == ARMT_K_ATTENTION) {
        ARMT_TRY(ARMT_KARGS(k, 11, err, ARMT_KA(skip), ARMT_KA(mem_all), ARMT_KA(j_short), ARMT_KA(T_short)));
        size_t bq = (size_t)ctx->rt->tune.attn_bq;
        return armt_op_launch(F, aid, 3, armt_round_up(T, bq), (size_t)F->nh, G, bq);
    }
    /* the tensor-core kernels write the o projection's bf16 operand themselves (att is then not written) */
    cl_mem outb = out_bf16 ? ctx->abf : NULL;
    ARMT_TRY(ARMT_KARGS(k, 11, err, ARMT_KA(outb), ARMT_KA(skip), ARMT_KA(mem_all), ARMT_KA(j_short),
                        ARMT_KA(T_short)));
    size_t warps = (size_t)ctx->model->attn_warps, bq = 16 * warps * (size_t)ctx->model->attn_rt;
    return armt_op_launch(F, aid, 3, (T + bq - 1) / bq * 32 * warps, (size_t)F->nh, G, 32 * warps);
}

int armt_kv_cache_bf16(const armt_ctx *ctx, int head_dim) {
    return ctx->model->precision == ARMT_PRECISION_BF16 && ctx->k[ARMT_K_ATTENTION_MMA_KVBF16] != NULL &&
           armt_gemm_bf16_operands(ctx) && head_dim % 8 == 0;
}

armt_status armt_op_kv_put(armt_call *F, cl_mem k, cl_mem v, size_t src_off, cl_mem kc, cl_mem vc,
                           size_t dst_off, size_t n, int bf16) {
    armt_err *err = F->err;
    const cl_mem src[2] = {k, v}, dst[2] = {kc, vc};
    for (int i = 0; i < 2; i++) {
        if (!bf16) {
            ARMT_CL_TRY(clEnqueueCopyBuffer(F->ctx->queue, src[i], dst[i], src_off * 4, dst_off * 4, n * 4, 0,
                                            NULL, NULL));
            continue;
        }
        cl_kernel kk = F->ctx->k[ARMT_K_KV_TO_BF16];
        const cl_ulong so = src_off, dof = dst_off, nn = n;
        ARMT_TRY(
            ARMT_KARGS(kk, 0, err, ARMT_KA(src[i]), ARMT_KA(so), ARMT_KA(dst[i]), ARMT_KA(dof), ARMT_KA(nn)));
        ARMT_TRY(armt_op_launch(F, ARMT_K_KV_TO_BF16, 1, armt_round_up(n, 256), 1, 1, 0));
    }
    return ARMT_OK;
}

armt_status armt_op_attention_decode(armt_call *F, const armt_step *st, cl_mem kbuf, cl_mem vbuf,
                                     cl_ulong kv_off, int Tk, int q0, int out_bf16) {
    armt_err *err = F->err;
    armt_ctx *ctx = F->ctx;
    cl_kernel k = ctx->k[ARMT_K_ATTENTION_DECODE], kc = ctx->k[ARMT_K_ATTENTION_DECODE_COMBINE];
    const float scale = (float)(1.0 / sqrt((double)F->hd));
    const int last = q0 < Tk - 1 ? q0 : Tk - 1, nch = last / ARMT_ATTN_DCHUNK + 1;
    const int j_first = 0, nmem = 0; /* one cell, the call's first; a generation tail has no memory rows */
    ARMT_TRY(ARMT_KARGS(k, 0, err, ARMT_KA(ctx->q), ARMT_KA(kbuf), ARMT_KA(vbuf), ARMT_KA(st->part),
                        ARMT_KA(F->nh), ARMT_KA(F->nkv), ARMT_KA(scale), ARMT_KA(kv_off), ARMT_KA(Tk),
                        ARMT_KA(q0), ARMT_KA(F->win), ARMT_KA(F->win_first), ARMT_KA(j_first), ARMT_KA(F->ns),
                        ARMT_KA(nmem), ARMT_KA(st->cache_bf16)));
    cl_mem outb = out_bf16 ? ctx->abf : NULL, cnt = st->dcnt; /* (cnt: the combine in this launch) */
    ARMT_TRY(ARMT_KARGS(k, 16, err, ARMT_KA(ctx->att), ARMT_KA(outb), ARMT_KA(cnt)));
    ARMT_TRY(armt_op_launch(F, ARMT_K_ATTENTION_DECODE, 2, (size_t)nch * (size_t)F->hd, (size_t)F->nh, 1,
                            (size_t)F->hd));
    if (cnt) return ARMT_OK;
    ARMT_TRY(ARMT_KARGS(kc, 0, err, ARMT_KA(st->part), ARMT_KA(ctx->att), ARMT_KA(outb), ARMT_KA(nch)));
    return armt_op_launch(F, ARMT_K_ATTENTION_DECODE_COMBINE, 1, (size_t)F->nh * (size_t)F->hd, 1, 1,
                          (size_t)F->hd);
}

armt_status armt_op_window_gather(armt_call *F, const armt_step *st, int kvb) {
    armt_err *err = F->err;
    armt_ctx *ctx = F->ctx;
    cl_kernel k = ctx->k[ARMT_K_WINDOW_GATHER];
    const int kvd = F->nkv * F->hd;
    ARMT_TRY(ARMT_KARGS(k, 0, err, ARMT_KA(ctx->win_k), ARMT_KA(ctx->win_v), ARMT_KA(ctx->kk),
                        ARMT_KA(ctx->vv), ARMT_KA(ctx->ck), ARMT_KA(ctx->cv), ARMT_KA(kvd), ARMT_KA(F->win),
                        ARMT_KA(F->win_first), ARMT_KA(kvb)));
    ARMT_TRY(set_cell_args(F, k, 10, st));
    /* (bf16: the own rows are in place already, only the window's are gathered) */
    const size_t rows = (size_t)F->win + (kvb ? 0 : (size_t)st->T);
    return armt_op_launch(F, ARMT_K_WINDOW_GATHER, 3, (size_t)kvd, rows, (size_t)st->G, 0);
}

armt_status armt_op_window_store(armt_call *F, const armt_step *st, int kvb) {
    armt_err *err = F->err;
    armt_ctx *ctx = F->ctx;
    cl_kernel k = ctx->k[ARMT_K_WINDOW_STORE];
    const int kvd = F->nkv * F->hd;
    ARMT_TRY(ARMT_KARGS(k, 0, err, ARMT_KA(ctx->ck), ARMT_KA(ctx->cv), ARMT_KA(ctx->win_k),
                        ARMT_KA(ctx->win_v), ARMT_KA(kvd), ARMT_KA(F->win), ARMT_KA(F->win_first),
                        ARMT_KA(F->ns), ARMT_KA(F->M), ARMT_KA(kvb)));
    ARMT_TRY(set_cell_args(F, k, 10, st));
    return armt_op_launch(F, ARMT_K_WINDOW_STORE, 3, (size_t)kvd, (size_t)F->win, (size_t)st->G, 0);
}

armt_status armt_op_bf16_transpose(armt_call *F, cl_mem src, cl_mem dst, size_t dst_off, int rows, int cols,
                                   int l0, int G, int kseg, int nseg, int pat) {
    armt_err *err = F->err;
    cl_kernel k = F->ctx->k[ARMT_K_MEM_BF16_T];
    cl_ulong t_off = dst_off;
    int ld = kseg * nseg;
    ARMT_TRY(ARMT_KARGS(k, 0, err, ARMT_KA(src), ARMT_KA(dst), ARMT_KA(rows), ARMT_KA(cols), ARMT_KA(l0),
                        ARMT_KA(kseg), ARMT_KA(ld), ARMT_KA(t_off), ARMT_KA(pat)));
    return armt_op_launch(F, ARMT_K_MEM_BF16_T, 3, armt_round_up((size_t)cols, 32) * 8,
                          armt_round_up((size_t)kseg, 32) / 32, (size_t)G, 256);
}

/* ======================================================================================================= */
/* Memory kernels                                                                                          */
/* ======================================================================================================= */

armt_status armt_op_mem_read_scale(armt_call *F, const armt_step *st) {
    armt_err *err = F->err;
    armt_ctx *ctx = F->ctx;
    cl_kernel k = ctx->k[ARMT_K_MEM_READ_SCALE];
    ARMT_TRY(ARMT_KARGS(k, 0, err, ARMT_KA(ctx->mq), ARMT_KA(ctx->phi), ARMT_KA(ctx->z),
                        ARMT_KA(ctx->written), ARMT_KA(F->dk), ARMT_KA(F->no_denom)));
    return cell_rows(F, ARMT_K_MEM_READ_SCALE, 6, st, (size_t)st->T);
}

armt_status armt_op_dpfp_read_scale(armt_call *F, const armt_step *st) {
    armt_err *err = F->err;
    armt_ctx *ctx = F->ctx;
    cl_kernel k = ctx->k[ARMT_K_DPFP_READ_SCALE];
    const int dh = F->dm / F->H;
    ARMT_TRY(ARMT_KARGS(k, 0, err, ARMT_KA(ctx->mq), ARMT_KA(ctx->phi), ARMT_KA(ctx->z),
                        ARMT_KA(ctx->written), ARMT_KA(F->dm), ARMT_KA(dh), ARMT_KA(F->dkh),
                        ARMT_KA(F->normalized), ARMT_KA(F->no_denom), ARMT_KA(st->l0)));
    const size_t wg = (size_t)ctx->rt->tune.row_wg;
    return armt_op_launch(F, ARMT_K_DPFP_READ_SCALE, 1, wg, 1, 1, wg);
}

armt_status armt_op_mem_read(armt_call *F, const armt_step *st) {
    armt_err *err = F->err;
    armt_ctx *ctx = F->ctx;
    cl_kernel k = ctx->k[ARMT_K_MEM_READ];
    ARMT_TRY(ARMT_KARGS(k, 0, err, ARMT_KA(ctx->x), ARMT_KA(ctx->h), ARMT_KA(ctx->phi), ARMT_KA(ctx->z),
                        ARMT_KA(ctx->written), ARMT_KA(F->dk), ARMT_KA(F->d), ARMT_KA(F->dkh),
                        ARMT_KA(F->dvh), ARMT_KA(F->no_denom)));
    return cell_rows(F, ARMT_K_MEM_READ, 10, st, (size_t)st->T);
}

armt_status armt_op_mem_gather(armt_call *F, const armt_step *st) {
    armt_err *err = F->err;
    armt_ctx *ctx = F->ctx;
    cl_kernel k = ctx->k[ARMT_K_MEM_GATHER];
    ARMT_TRY(ARMT_KARGS(k, 0, err, ARMT_KA(ctx->x), ARMT_KA(ctx->mrows), ARMT_KA(F->M), ARMT_KA(F->d)));
    ARMT_TRY(set_cell_args(F, k, 4, st));
    return armt_op_launch(F, ARMT_K_MEM_GATHER, 3, (size_t)F->d, (size_t)F->M, (size_t)st->G, 0);
}

armt_status armt_op_mem_write_prep(armt_call *F, const armt_step *st) {
    armt_err *err = F->err;
    armt_ctx *ctx = F->ctx;
    cl_kernel k = ctx->k[ARMT_K_MEM_WRITE_PREP];
    size_t off_wmb, off_bmb;
    cl_mem wmb = armt_weight_at(&ctx->model->w[ARMT_ROLE_WMB], 0, &off_wmb);
    cl_mem bmb = armt_weight_at(&ctx->model->w[ARMT_ROLE_BMB], 0, &off_bmb);
    cl_ulong owmb = off_wmb, obmb = off_bmb;
    int corr = F->cfg->correction;
    ARMT_TRY(ARMT_KARGS(k, 0, err, ARMT_KA(ctx->phi), ARMT_KA(ctx->mrows), ARMT_KA(ctx->z),
                        ARMT_KA(ctx->written), ARMT_KA(wmb), ARMT_KA(owmb), ARMT_KA(bmb), ARMT_KA(obmb),
                        ARMT_KA(ctx->wstat), ARMT_KA(F->M), ARMT_KA(F->dk), ARMT_KA(F->d), ARMT_KA(st->l0),
                        ARMT_KA(corr), ARMT_KA(F->dkh), ARMT_KA(F->normalized), ARMT_KA(F->no_denom),
                        ARMT_KA(F->gating)));
    return cell_rows(F, ARMT_K_MEM_WRITE_PREP, -1, st, (size_t)F->M);
}

armt_status armt_op_mem_delta(armt_call *F, const armt_step *st) {
    armt_err *err = F->err;
    armt_ctx *ctx = F->ctx;
    cl_kernel k = ctx->k[ARMT_K_MEM_DELTA];
    size_t off_bmb;
    cl_mem bmb = armt_weight_at(&ctx->model->w[ARMT_ROLE_BMB], 0, &off_bmb);
    cl_ulong obmb = off_bmb;
    ARMT_TRY(ARMT_KARGS(k, 0, err, ARMT_KA(ctx->vnew), ARMT_KA(ctx->vprev), ARMT_KA(ctx->wstat),
                        ARMT_KA(F->M), ARMT_KA(F->d), ARMT_KA(F->dvh), ARMT_KA(F->gating),
                        ARMT_KA(ctx->mbeta), ARMT_KA(bmb), ARMT_KA(obmb), ARMT_KA(st->l0)));
    return armt_op_launch(F, ARMT_K_MEM_DELTA, 3, (size_t)F->d, (size_t)F->M, (size_t)st->G, 0);
}

armt_status armt_op_mem_z_update(armt_call *F, const armt_step *st) {
    armt_err *err = F->err;
    armt_ctx *ctx = F->ctx;
    cl_kernel k = ctx->k[ARMT_K_MEM_Z_UPDATE];
    ARMT_TRY(ARMT_KARGS(k, 0, err, ARMT_KA(ctx->z), ARMT_KA(ctx->written), ARMT_KA(ctx->phi),
                        ARMT_KA(ctx->wstat), ARMT_KA(F->M), ARMT_KA(F->dk), ARMT_KA(st->l0), ARMT_KA(F->dkh),
                        ARMT_KA(F->no_denom)));
    return armt_op_launch(F, ARMT_K_MEM_Z_UPDATE, 2, (size_t)F->dk, (size_t)st->G, 1, 0);
}

armt_status armt_op_mem_block_mask(armt_call *F, const armt_step *st) {
    armt_err *err = F->err;
    armt_ctx *ctx = F->ctx;
    if (F->H == 1) return ARMT_OK;
    cl_kernel k = ctx->k[ARMT_K_MEM_BLOCK_MASK];
    ARMT_TRY(ARMT_KARGS(k, 0, err, ARMT_KA(ctx->w_mem), ARMT_KA(F->dk), ARMT_KA(F->d), ARMT_KA(F->dkh),
                        ARMT_KA(F->dvh), ARMT_KA(st->l0)));
    return armt_op_launch(F, ARMT_K_MEM_BLOCK_MASK, 3, (size_t)F->d, (size_t)F->dk, (size_t)st->G, 0);
}

/* ======================================================================================================= */
/* RoPE table                                                                                              */
/* ======================================================================================================= */

armt_status armt_op_rope_table(armt_call *F, size_t rope_rows) {
    const armt_config *c = F->cfg;
    const int hd = F->hd, half = hd / 2;
    float *tab = malloc(rope_rows * (size_t)hd * sizeof *tab);
    double *inv = malloc((size_t)(half > 0 ? half : 1) * sizeof *inv);
    if (!tab || !inv) {
        free(tab);
        free(inv);
        return armt_err_set(F->err, ARMT_STATUS_OUT_OF_HOST_MEMORY, "forward: out of host memory");
    }
    for (int i = 0; i < half; i++) {
        double f0 = pow(c->rope_theta, -2.0 * i / (double)hd);
        if (c->rope_type == ARMT_ROPE_LLAMA3) {
            double lo_wl = c->rope_original_max_pos / c->rope_low_freq_factor;
            double hi_wl = c->rope_original_max_pos / c->rope_high_freq_factor;
            double wl = 2.0 * M_PI / f0;
            if (wl < hi_wl) {
                /* high frequency: unchanged */
            } else if (wl > lo_wl) {
                f0 = f0 / c->rope_factor;
            } else {
                double s = (c->rope_original_max_pos / wl - c->rope_low_freq_factor) /
                           (c->rope_high_freq_factor - c->rope_low_freq_factor);
                f0 = (1.0 - s) * f0 / c->rope_factor + s * f0;
            }
        }
        inv[i] = f0;
    }
    for (size_t p = 0; p < rope_rows; p++)
        for (int i = 0; i < half; i++) {
            double a = (double)p * inv[i];
            tab[p * (size_t)hd + (size_t)i] = (float)cos(a);
            tab[p * (size_t)hd + (size_t)half + (size_t)i] = (float)sin(a);
        }
    free(inv);
    cl_int e = clEnqueueWriteBuffer(F->ctx->queue, F->ctx->rope, CL_TRUE, 0, rope_rows * (size_t)hd * 4, tab,
                                    0, NULL, NULL);
    free(tab);
    if (e != CL_SUCCESS) return armt_err_cl(F->err, "clEnqueueWriteBuffer(rope table)", e);
    return ARMT_OK;
}
