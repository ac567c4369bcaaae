/*
 * batch.c - armt_forward_batch: B documents, each with its own memory state (its own armt_ctx), in one
 * schedule (docs/DESIGN.md, "Batches").
 *
 * The runner context's scratch holds every document's cells: document b owns one region of each scratch
 * buffer (its residual ring of `cap` slots and its temporaries of `cap` cells), at an offset the device
 * allows a sub-buffer to start at. A step:
 *   - every linear operation is one armt_gemm_op over the step's cells of all documents, ordered by layer
 *     and then document, so that documents in phase make runs of constant stride (one launch each for our
 *     kernels; CLBlast's batched call takes any offsets);
 *   - RMSNorm and the memory rows' gather run in one launch over a table of the step's cells (cl/rows.cl);
 *     SwiGLU, RoPE and DPFP in one launch over every document's regions where those hold whole cells alike;
 *   - the products with W_mem and the other small kernels (attention, the memory kernels) run once per
 *     document, on a view: a copy of the runner context whose scratch buffers are sub-buffers of the
 *     document's regions and whose state is the document's own, so that the kernels and their wrappers
 *     (ops.c) are the single-document ones, unchanged.
 * With tensor cores, bf16 operands are staged for every document at once in the runner's abf at the fp32
 * operands' offsets, and the fused epilogues are those of a document alone (docs/DESIGN.md).
 */
#include "config.h"

#include "compute/ops.h"
#include "io/armt_config.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

/* Output rows per emission block (the logits scratch), as forward.c's. */
#define CELL_TAB       5 /* values per cell in the cells kernels' table (cl/rows.cl) */
#define BATCH_OUT_ROWS 512

/* ---- The scratch buffers a document has a region of ---- */
enum {
    V_X,
    V_H,
    V_Q,
    V_KK,
    V_VV,
    V_ATT,
    V_F1,
    V_F2,
    V_MQ,
    V_PHI,
    V_MROWS,
    V_VNEW,
    V_VPREV,
    V_WSTAT,
    V_MBETA,
    V_CK,
    V_CV,
    N_VIEWS
};

/* Bytes per cell of each buffer for cells of T rows (0: the buffer is not split; the views share it). The
 * same sizes as scratch.c's table, per cell. */
static void cell_bytes(const armt_config *c, size_t T, size_t *b) {
    const size_t d = (size_t)c->hidden_size, qd = (size_t)c->n_heads * c->head_dim;
    const size_t kvd = (size_t)c->n_kv_heads * c->head_dim, f = (size_t)c->intermediate_size;
    const size_t dk = (size_t)armt_config_d_key(c), dm = (size_t)c->d_mem, M = (size_t)c->num_mem_tokens;
    const size_t H = (size_t)armt_config_mem_heads(c), mr = T > M ? T : M;
    const size_t win = c->sliding_window ? (size_t)c->segment_size : 0;
    b[V_X] = b[V_H] = T * d * 4;
    b[V_Q] = b[V_ATT] = T * qd * 4;
    b[V_KK] = b[V_VV] = T * kvd * 4;
    b[V_F1] = b[V_F2] = T * f * 4;
    b[V_MQ] = mr * dm * 4;
    b[V_PHI] = mr * dk * 4;
    b[V_MROWS] = b[V_VNEW] = b[V_VPREV] = M * d * 4;
    b[V_WSTAT] = M * H * 4 * 4;
    b[V_MBETA] = c->gating ? M * d * 4 : 0;
    b[V_CK] = b[V_CV] = win ? (win + T) * kvd * 4 : 0;
}

static cl_mem *view_field(armt_ctx *v, int i) {
    cl_mem *f[N_VIEWS] = {&v->x,     &v->h,     &v->q,     &v->kk,  &v->vv,    &v->att,
                          &v->f1,    &v->f2,    &v->mq,    &v->phi, &v->mrows, &v->vnew,
                          &v->vprev, &v->wstat, &v->mbeta, &v->ck,  &v->cv};
    return f[i];
}

/* One document of the call. */
typedef struct bdoc {
    armt_ctx *ctx;         /* its own context (its state)                                          */
    armt_ctx view;         /* the runner's context on its regions, with its state (see the top)    */
    armt_call F;           /* its call, on the view                                                */
    armt_forward_params p; /* its output                                                           */
    cl_mem sub[N_VIEWS];   /* the view's sub-buffers (NULL: the runner's whole buffer)             */
    int S, start, begun, saved;
    size_t id0;   /* its first id in the runner's ids buffer */
    armt_step st; /* its cells in the current step (G = 0: none) */
} bdoc;

/* The call. */
typedef struct batch {
    armt_ctx *rt_ctx; /* the runner */
    armt_err *err;
    const armt_config *cfg;
    armt_call F; /* the runner's call (sizes, scratch growth) */
    bdoc *docs;
    size_t B;
    int T, cap, diagonal;
    int split_rows;         /* a full cell's rows, which the 3xTF32 split-k rule counts (armt_step)  */
    size_t region[N_VIEWS]; /* element (float) stride between documents' regions of each buffer */
    /* the step's GEMM entries: (document, cell) pairs in layer order, and their offsets */
    size_t n_ent;
    int *ent_doc, *ent_j;
    size_t *a_off, *w_off, *c_off;
    /* bf16 operands (tensor cores, tc = 1): abf_src's regions have a bf16 copy in abf_buf at the same
     * element offsets (the runner's abf, or f2 after the SwiGLU epilogue); abf_only: abf_src is stale */
    int tc;
    cl_mem abf_src, abf_buf;
    int abf_only;
    /* the step's cells for the cells kernels (cl/rows.cl): CELL_TAB values per GEMM entry */
    cl_mem cell_tab;
    size_t cell_tab_bytes;
    cl_ulong *cell_host;
} batch;

/* ======================================================================================================= */
/* Layout                                                                                                  */
/* ======================================================================================================= */

static size_t round_up_z(size_t v, size_t m) { return (v + m - 1) / m * m; }

/* Regions of every buffer and the cells the runner's scratch needs for them. */
static armt_status layout(batch *bt, size_t *cells_total) {
    armt_err *err = bt->err;
    cl_uint align_bits = 0;
    ARMT_CL_TRY(clGetDeviceInfo(bt->rt_ctx->rt->device, CL_DEVICE_MEM_BASE_ADDR_ALIGN, sizeof align_bits,
                                &align_bits, NULL));
    const size_t align = align_bits >= 32 ? align_bits / 8 : 4;
    size_t cb[N_VIEWS];
    cell_bytes(bt->cfg, (size_t)bt->T, cb);
    size_t cells = (size_t)bt->cap * bt->B;
    for (int i = 0; i < N_VIEWS; i++) {
        if (!cb[i]) continue;
        size_t bytes = round_up_z((size_t)bt->cap * cb[i], align);
        bt->region[i] = bytes / 4;
        size_t need = (bytes * bt->B + cb[i] - 1) / cb[i];
        if (need > cells) cells = need;
    }
    *cells_total = cells;
    return ARMT_OK;
}

/* The view of document b: the runner's context, its regions as sub-buffers, the document's state. */
static armt_status make_view(batch *bt, size_t b) {
    armt_err *err = bt->err;
    bdoc *D = &bt->docs[b];
    armt_ctx *v = &D->view, *own = D->ctx;
    *v = *bt->rt_ctx;
    armt_err_init(&v->err);
    memset(&v->stats, 0, sizeof v->stats);
    v->prof = NULL;
    v->prof_n = v->prof_cap = 0;
    v->prof_on = 0;
    v->abf = NULL;                /* no staged bf16 operands (see the top) */
    v->splitk_owner = bt->rt_ctx; /* split-k GEMMs in the runner's slices */
    /* the document's state */
    v->w_mem = own->w_mem;
    v->z = own->z;
    v->written = own->written;
    v->w_mem_prev = own->w_mem_prev;
    v->z_prev = own->z_prev;
    v->written_prev = own->written_prev;
    memcpy(v->state_bytes, own->state_bytes, sizeof v->state_bytes);
    v->w_mem_bf = own->w_mem_bf;
    v->win_k = own->win_k;
    v->win_v = own->win_v;
    v->win_k_prev = own->win_k_prev;
    v->win_v_prev = own->win_v_prev;
    v->win_bytes = own->win_bytes;
    v->win_len = own->win_len;
    v->win_len_prev = own->win_len_prev;
    for (int i = 0; i < N_VIEWS; i++) {
        if (!bt->region[i]) continue;
        cl_buffer_region r = {.origin = b * bt->region[i] * 4, .size = bt->region[i] * 4};
        cl_int e = CL_SUCCESS;
        cl_mem parent = *view_field(bt->rt_ctx, i);
        D->sub[i] = clCreateSubBuffer(parent, CL_MEM_READ_WRITE, CL_BUFFER_CREATE_TYPE_REGION, &r, &e);
        if (e != CL_SUCCESS) {
            D->sub[i] = NULL;
            return armt_err_cl(err, "clCreateSubBuffer (batch view)", e);
        }
        *view_field(v, i) = D->sub[i];
    }
    return ARMT_OK;
}

/* ======================================================================================================= */
/* The step's cells and its batched GEMMs                                                                  */
/* ======================================================================================================= */

/* Segment s's tokens of document D. */
static int seg_tokens(const batch *bt, const bdoc *D, int s) {
    const size_t L = (size_t)bt->cfg->segment_size, rest = D->F.n - (size_t)s * L;
    return (int)(rest < L ? rest : L);
}

/* Steps document D takes alone. */
static int doc_steps(const batch *bt, const bdoc *D) {
    const int Lyr = bt->cfg->n_layers;
    return bt->diagonal ? D->S + Lyr - 1 : D->S * Lyr;
}

/* Document D's cells in batch step t (G = 0: none). */
static void doc_cells(const batch *bt, bdoc *D, int t) {
    const int Lyr = bt->cfg->n_layers, u = t - D->start;
    armt_step *st = &D->st;
    const int Ls_last = seg_tokens(bt, D, D->S - 1);
    memset(st, 0, sizeof *st);
    st->cap = bt->cap;
    st->T = bt->T;
    st->split_rows = bt->split_rows;
    st->s_short = bt->F.ns + Ls_last + bt->F.M < bt->T ? D->S - 1 : -1;
    st->T_short = bt->F.ns + Ls_last + bt->F.M;
    if (u < 0 || u >= doc_steps(bt, D)) return;
    if (bt->diagonal) {
        const int lo = u - D->S + 1 > 0 ? u - D->S + 1 : 0, hi = u < Lyr - 1 ? u : Lyr - 1;
        st->l0 = lo;
        st->G = hi - lo + 1;
        st->s0 = u - lo;
    } else {
        st->l0 = u % Lyr;
        st->G = 1;
        st->s0 = u / Lyr;
    }
}

/* The step's GEMM entries, by layer and then document; with `reading`, only the documents that read the
 * memory this step (a layer of theirs has written). */
static int doc_reads(const bdoc *D) {
    for (int j = 0; j < D->st.G; j++)
        if (D->F.written[D->st.l0 + j]) return 1;
    return 0;
}

static void entries(batch *bt, int reading) {
    bt->n_ent = 0;
    for (int l = 0; l < bt->cfg->n_layers; l++)
        for (size_t b = 0; b < bt->B; b++) {
            const bdoc *D = &bt->docs[b];
            if (D->st.G == 0 || l < D->st.l0 || l >= D->st.l0 + D->st.G || (reading && !doc_reads(D)))
                continue;
            bt->ent_doc[bt->n_ent] = (int)b;
            bt->ent_j[bt->n_ent] = l - D->st.l0;
            bt->n_ent++;
        }
}

/* Element offset of entry e in buffer i: a temporary of `rows` x `width` per cell, or (V_X) its slot. */
static size_t ent_off(const batch *bt, size_t e, int i, size_t rows, size_t width) {
    const bdoc *D = &bt->docs[bt->ent_doc[e]];
    const int j = bt->ent_j[e];
    const size_t base = (size_t)bt->ent_doc[e] * bt->region[i];
    if (i == V_X) return base + (size_t)((D->st.s0 - j) % D->st.cap) * (size_t)bt->T * (size_t)bt->F.d;
    return base + (size_t)j * rows * width;
}

/* C = A W^T (+ C) over the step's entries: A rows x (its width) of buffer ia, C of buffer ic, W a weight
 * role of each entry's layer; cut where the role's chunk changes. */
static armt_status gemm_role_epi(batch *bt, armt_role role, int pair, int ia, size_t rows, size_t a_w, int ic,
                                 size_t c_w, float beta, const armt_gemm_epi *epi);
static armt_status gemm_role(batch *bt, armt_role role, int ia, size_t rows, size_t a_w, int ic, size_t c_w,
                             float beta) {
    return gemm_role_epi(bt, role, -1, ia, rows, a_w, ic, c_w, beta, NULL);
}

/* The same with an epilogue (NULL: none) and a paired role's weights in the same GEMM (pair >= 0: epi->w2,
 * the same layers' chunks and offsets); A from its staged bf16 copy where there is one. */
static armt_status gemm_role_epi(batch *bt, armt_role role, int pair, int ia, size_t rows, size_t a_w, int ic,
                                 size_t c_w, float beta, const armt_gemm_epi *epi) {
    armt_ctx *ctx = bt->rt_ctx;
    const armt_weight *w = &ctx->model->w[role];
    uint64_t out, in;
    armt_role_shape(bt->cfg, role, &out, &in, NULL);
    cl_mem *wbuf = malloc(bt->n_ent * sizeof *wbuf);
    if (!wbuf && bt->n_ent)
        return armt_err_set(bt->err, ARMT_STATUS_OUT_OF_HOST_MEMORY,
                            "armt_forward_batch: out of host memory");
    for (size_t e = 0; e < bt->n_ent; e++) {
        bt->a_off[e] = ent_off(bt, e, ia, rows, a_w);
        bt->c_off[e] = ent_off(bt, e, ic, rows, c_w);
        const bdoc *D = &bt->docs[bt->ent_doc[e]];
        wbuf[e] = armt_weight_at(w, D->st.l0 + bt->ent_j[e], &bt->w_off[e]);
    }
    armt_status st = ARMT_OK;
    for (size_t e = 0; e < bt->n_ent && st == ARMT_OK;) {
        size_t end = e + 1;
        while (end < bt->n_ent && wbuf[end] == wbuf[e])
            end++;
        armt_gemm_op op = {.m = rows,
                           .n = (size_t)out,
                           .k = (size_t)in,
                           .count = end - e,
                           .a = *view_field(ctx, ia),
                           .lda = a_w,
                           .a_off = bt->a_off + e,
                           .w = wbuf[e],
                           .ldw = (size_t)in,
                           .w_off = bt->w_off + e,
                           .w_bf16 = w->bf16,
                           .c = *view_field(ctx, ic),
                           .ldc = c_w,
                           .c_off = bt->c_off + e,
                           .beta = beta,
                           .split_rows = rows == (size_t)bt->T ? (size_t)bt->split_rows : 0,
                           .site = (int)role};
        if (epi) op.epi = *epi;
        if (pair >= 0) {
            size_t off2;
            op.epi.w2 =
                armt_weight_at(&ctx->model->w[pair], bt->docs[bt->ent_doc[e]].st.l0 + bt->ent_j[e], &off2);
            op.site = role == ARMT_ROLE_WG ? ARMT_GSITE_GATE_UP : ARMT_GSITE_KV;
        }
        if (bt->abf_src && op.a == bt->abf_src) {
            op.a_bf16 = bt->abf_buf;
            op.a_bf16_only = bt->abf_only;
        }
        st = armt_gemm(ctx, &op, bt->err);
        e = end;
    }
    free(wbuf);
    return st;
}

/* phi (rows x dk) W_mem[l] into buffer ic (rows x d) for document D's cells, on its own W_mem (bf16 models:
 * its bf16 copy of W_mem^T). A and C in the document's regions. */
static armt_status mem_product(batch *bt, size_t b, size_t rows, int ic, int site) {
    bdoc *D = &bt->docs[b];
    armt_ctx *own = D->ctx;
    const size_t dk = (size_t)bt->F.dk, d = (size_t)bt->F.d, G = (size_t)D->st.G;
    for (size_t j = 0; j < G; j++) {
        bt->a_off[j] = b * bt->region[V_PHI] + j * rows * dk;
        bt->c_off[j] = b * bt->region[ic] + j * rows * d;
        bt->w_off[j] = ((size_t)D->st.l0 + j) * dk * d;
    }
    armt_gemm_op op = {.m = rows,
                       .n = d,
                       .k = dk,
                       .count = G,
                       .a = bt->rt_ctx->phi,
                       .lda = dk,
                       .a_off = bt->a_off,
                       .w_off = bt->w_off,
                       .c = *view_field(bt->rt_ctx, ic),
                       .ldc = d,
                       .c_off = bt->c_off,
                       .split_rows = rows == (size_t)bt->T ? (size_t)bt->split_rows : 0,
                       .site = site};
    if (own->w_mem_bf) {
        op.w = own->w_mem_bf;
        op.ldw = dk;
        op.w_bf16 = 1;
    } else {
        op.w = own->w_mem;
        op.ldw = d;
        op.w_kn = 1;
    }
    return armt_gemm(bt->rt_ctx, &op, bt->err);
}

/* W_mem[l] += phi(k)^T delta for document D's cells: fp32 operands (CLBlast, or 3xTF32 on tensor cores). */
static armt_status mem_update(batch *bt, size_t b) {
    bdoc *D = &bt->docs[b];
    const size_t dk = (size_t)bt->F.dk, d = (size_t)bt->F.d, M = (size_t)bt->F.M, G = (size_t)D->st.G;
    for (size_t j = 0; j < G; j++) {
        bt->a_off[j] = b * bt->region[V_PHI] + j * M * dk;
        bt->w_off[j] = b * bt->region[V_VNEW] + j * M * d;
        bt->c_off[j] = ((size_t)D->st.l0 + j) * dk * d;
    }
    armt_gemm_op op = {.m = dk,
                       .n = d,
                       .k = M,
                       .count = G,
                       .a = bt->rt_ctx->phi,
                       .lda = dk,
                       .a_off = bt->a_off,
                       .trans_a = 1,
                       .w = bt->rt_ctx->vnew,
                       .ldw = d,
                       .w_off = bt->w_off,
                       .w_kn = 1,
                       .c = D->ctx->w_mem,
                       .ldc = d,
                       .c_off = bt->c_off,
                       .beta = 1.0f,
                       .site = ARMT_GSITE_MEM_UPDATE};
    return armt_gemm(bt->rt_ctx, &op, bt->err);
}

/* ======================================================================================================= */
/* One step                                                                                                */
/* ======================================================================================================= */

#define EACH_DOC(bt, b, D)               \
    for (size_t b = 0; b < (bt)->B; b++) \
        for (bdoc *D = &(bt)->docs[b]; D && D->st.G > 0; D = NULL)

/* ---- bf16 operands (tensor cores) ---- */

/* The bf16 copy of buffer i's regions, every document's at once (padding and cells outside the step
 * included: elementwise, so each value is the one a document alone stages), into the runner's abf at the
 * same element offsets. One launch. */
static armt_status stage_flat(batch *bt, int i, size_t width) {
    armt_ctx *ctx = bt->rt_ctx;
    armt_err *err = bt->err;
    bt->abf_src = NULL;
    bt->abf_only = 0;
    if (!bt->tc) return ARMT_OK;
    const size_t rows = bt->B * bt->region[i] / width;
    cl_mem src = *view_field(ctx, i);
    cl_kernel k = ctx->k[ARMT_K_F32_TO_BF16];
    ARMT_CL_TRY(armt_f32_to_bf16_set_args(k, (int)rows, (int)width, src, (int)width, ctx->abf, NULL, 0, 0));
    ARMT_TRY(armt_op_launch(&bt->F, ARMT_K_F32_TO_BF16, 3, armt_round_up((width + 7) / 8, 64), rows, 1, 0));
    bt->abf_src = src;
    bt->abf_buf = ctx->abf;
    return ARMT_OK;
}

static void unstage(batch *bt) {
    bt->abf_src = NULL;
    bt->abf_only = 0;
}

/* 1 when every document's region of buffer i is exactly its step's cells of `rows` rows of `width` (a
 * document without cells in the step, or with fewer than its region holds, leaves part of its region
 * unwritten: a launch over all regions would read that part). */
static int regions_full(const batch *bt, int i, size_t rows, size_t width) {
    for (size_t b = 0; b < bt->B; b++)
        if ((size_t)bt->docs[b].st.G * rows * width != bt->region[i]) return 0;
    return 1;
}

/* ---- memory read ---- */

/* DPFP (and the normalisation) of every document's mq regions into phi in one launch, when their regions
 * hold the same rows (no padding); else 0 and each document's own. */
static int dpfp_one_launch(const batch *bt) {
    const size_t dm = (size_t)bt->F.dm, dk = (size_t)bt->F.dk;
    return bt->region[V_MQ] % dm == 0 && bt->region[V_PHI] == bt->region[V_MQ] / dm * dk;
}

/* phi (rows x dk) W_mem[l] of document D's cells on its view (view-relative offsets): A from the view's
 * staged bf16 copy if any (at the runner's abf from 0), C its x slots (with_x: the fused read, C +=
 * rowscale[row] * product) or its temporaries of c. */
static armt_status view_mem_product(batch *bt, bdoc *D, size_t rows, cl_mem c, int with_x, int site,
                                    cl_mem rowscale) {
    armt_ctx *v = &D->view, *own = D->ctx;
    const size_t dk = (size_t)bt->F.dk, d = (size_t)bt->F.d, G = (size_t)D->st.G;
    for (size_t j = 0; j < G; j++) {
        bt->a_off[j] = j * rows * dk;
        bt->c_off[j] = with_x ? (size_t)((D->st.s0 - (int)j) % D->st.cap) * (size_t)bt->T * d : j * rows * d;
        bt->w_off[j] = ((size_t)D->st.l0 + j) * dk * d;
    }
    armt_gemm_op op = {.m = rows,
                       .n = d,
                       .k = dk,
                       .count = G,
                       .a = v->phi,
                       .lda = dk,
                       .a_off = bt->a_off,
                       .w_off = bt->w_off,
                       .c = c,
                       .ldc = d,
                       .c_off = bt->c_off,
                       .beta = rowscale ? 1.0f : 0.0f,
                       .split_rows = rows == (size_t)bt->T ? (size_t)bt->split_rows : 0,
                       .site = site};
    op.epi.rowscale = rowscale;
    armt_op_staged_a(&D->F, &op);
    if (own->w_mem_bf) {
        op.w = own->w_mem_bf;
        op.ldw = dk;
        op.w_bf16 = 1;
    } else {
        op.w = own->w_mem;
        op.ldw = d;
        op.w_kn = 1;
    }
    return armt_gemm(bt->rt_ctx, &op, bt->err);
}

/* The read of document D's cells after the batched W_mq GEMM, as step.c's armt_step_read does it: with
 * tensor cores phi staged in bf16 (into the runner's abf from 0: the documents take turns on the in-order
 * queue) and, with one memory head, the fused read (x += (1/den) phi W_mem in the GEMM's epilogue). */
static armt_status doc_read(batch *bt, bdoc *D, int dpfp_done) {
    armt_call *F = &D->F;
    armt_ctx *v = &D->view;
    const size_t T = (size_t)bt->T, rows = (size_t)D->st.G * T;
    if (!dpfp_done) ARMT_TRY(armt_op_dpfp(F, rows));
    v->abf = bt->tc ? bt->rt_ctx->abf : NULL;
    armt_status st = armt_op_stage_bf16(F, v->phi, rows, (size_t)F->dk);
    if (st == ARMT_OK && v->w_mem_bf && F->abf_src == v->phi && F->dk % 8 == 0 && F->H == 1) {
        st = armt_op_mem_read_scale(F, &D->st);
        if (st == ARMT_OK) st = view_mem_product(bt, D, T, v->x, 1, ARMT_GSITE_MEM_READ, v->mq);
        armt_op_unstage(F);
        v->abf = NULL;
        return st;
    }
    if (st == ARMT_OK) st = view_mem_product(bt, D, T, v->h, 0, ARMT_GSITE_MEM_READ, NULL);
    armt_op_unstage(F);
    v->abf = NULL;
    ARMT_TRY(st);
    return armt_op_mem_read(F, &D->st);
}

static armt_status step_read(batch *bt) {
    const size_t T = (size_t)bt->T, d = (size_t)bt->F.d, dm = (size_t)bt->F.dm;
    entries(bt, 1);
    if (bt->n_ent == 0) return ARMT_OK;
    ARMT_TRY(gemm_role(bt, ARMT_ROLE_WMQ, V_X, T, d, V_MQ, dm, 0.0f));
    const int flat = dpfp_one_launch(bt) && regions_full(bt, V_MQ, (size_t)bt->T, (size_t)bt->F.dm);
    if (flat) ARMT_TRY(armt_op_dpfp(&bt->F, bt->B * bt->region[V_MQ] / dm));
    EACH_DOC(bt, b, D) {
        if (doc_reads(D)) ARMT_TRY(doc_read(bt, D, flat));
    }
    return ARMT_OK;
}

/* ---- the decoder layer ---- */

/* Attention of document D's cells (as step.c's, on fp32 keys and values: with tensor cores the kernel
 * rounds them to bf16 in registers as the one on bf16 K and V reads them). */
static armt_status doc_attention(bdoc *D) {
    armt_call *F = &D->F;
    armt_ctx *v = &D->view;
    cl_mem kbuf = v->kk, vbuf = v->vv;
    int Tk = D->st.T, q0 = 0;
    if (F->win) {
        ARMT_TRY(armt_op_window_gather(F, &D->st, 0)); /* fp32 K/V */
        kbuf = v->ck;
        vbuf = v->cv;
        Tk = F->win + D->st.T;
        q0 = F->win;
    }
    const armt_kernel_id aid = v->k[ARMT_K_ATTENTION_MMA] ? ARMT_K_ATTENTION_MMA : ARMT_K_ATTENTION;
    ARMT_TRY(armt_op_attention(F, &D->st, aid, kbuf, vbuf, 0, Tk, q0, 0, 0));
    if (F->win) ARMT_TRY(armt_op_window_store(F, &D->st, 0));
    return ARMT_OK;
}

/* silu(f1) * f2 into f1 over every document's regions at once (elementwise: one launch). */
static armt_status swiglu_flat(batch *bt) {
    armt_ctx *ctx = bt->rt_ctx;
    armt_err *err = bt->err;
    cl_kernel k = ctx->k[ARMT_K_SWIGLU];
    const cl_ulong n = (cl_ulong)(bt->B * bt->region[V_F1]), zero = 0;
    ARMT_TRY(
        ARMT_KARGS(k, 0, err, ARMT_KA(ctx->f1), ARMT_KA(ctx->f2), ARMT_KA(n), ARMT_KA(zero), ARMT_KA(zero)));
    return armt_op_launch(&bt->F, ARMT_K_SWIGLU, 1, armt_round_up((size_t)n, 256), 1, 1, 0);
}

/* The step's cells (its GEMM entries) for armt_cells_rmsnorm: each one's residual slot, its h temporary and
 * its layer, uploaded once per step. */
static armt_status cells_table(batch *bt) {
    armt_err *err = bt->err;
    const size_t T = (size_t)bt->T, d = (size_t)bt->F.d, M = (size_t)bt->F.M;
    for (size_t e = 0; e < bt->n_ent; e++) {
        const bdoc *D = &bt->docs[bt->ent_doc[e]];
        const int s = D->st.s0 - bt->ent_j[e];
        cl_ulong *row = bt->cell_host + CELL_TAB * e;
        row[0] = ent_off(bt, e, V_X, T, d);
        row[1] = ent_off(bt, e, V_H, T, d);
        row[2] = (cl_ulong)(D->st.l0 + bt->ent_j[e]);
        row[3] = ent_off(bt, e, V_MROWS, M, d);
        row[4] = (cl_ulong)(s == D->st.s_short ? D->st.T_short : D->st.T);
    }
    if (bt->n_ent == 0) return ARMT_OK;
    ARMT_CL_TRY(clEnqueueWriteBuffer(bt->rt_ctx->queue, bt->cell_tab, CL_TRUE, 0,
                                     bt->n_ent * CELL_TAB * sizeof(cl_ulong), bt->cell_host, 0, NULL, NULL));
    return ARMT_OK;
}

/* RMSNorm of every cell of the step from x into h in one launch (armt_rmsnorm's arithmetic); with tensor
 * cores straight into the runner's abf as bf16 at h's offsets (a staged operand, as step.c's). */
static armt_status cells_rmsnorm(batch *bt, armt_role role) {
    armt_ctx *ctx = bt->rt_ctx;
    armt_err *err = bt->err;
    unstage(bt);
    if (bt->n_ent == 0) return ARMT_OK;
    const int bf = bt->tc && bt->F.d % 8 == 0;
    cl_kernel k = ctx->k[ARMT_K_CELLS_RMSNORM];
    size_t off;
    cl_mem w = armt_weight_at(&ctx->model->w[role], 0, &off);
    const cl_ulong woff = off;
    const float eps = bt->cfg->rms_norm_eps;
    cl_mem yb = bf ? ctx->abf : NULL;
    ARMT_TRY(ARMT_KARGS(k, 0, err, ARMT_KA(ctx->x), ARMT_KA(ctx->h), ARMT_KA(w), ARMT_KA(woff),
                        ARMT_KA(bt->F.d), ARMT_KA(eps), ARMT_KA(bt->cell_tab), ARMT_KA(yb)));
    const size_t wg = (size_t)ctx->rt->tune.row_wg;
    ARMT_TRY(armt_op_launch(&bt->F, ARMT_K_CELLS_RMSNORM, 3, wg, (size_t)bt->T, bt->n_ent, wg));
    if (bf) {
        bt->abf_src = ctx->h;
        bt->abf_buf = ctx->abf;
        bt->abf_only = 1;
    }
    return ARMT_OK;
}

/* RoPE over every document's regions of q and k in one launch: when their regions hold whole cells of T
 * rows, alike in both (no padding), row r of the flat range has position r % T as in its own cell. */
static int rope_one_launch(const batch *bt) {
    const size_t T = (size_t)bt->T, qd = (size_t)bt->F.nh * bt->F.hd, kvd = (size_t)bt->F.nkv * bt->F.hd;
    return bt->region[V_Q] % (T * qd) == 0 && bt->region[V_KK] == bt->region[V_Q] / qd * kvd;
}

static armt_status rope_all(batch *bt) {
    const size_t qd = (size_t)bt->F.nh * bt->F.hd;
    armt_step st = {
        .G = (int)(bt->B * bt->region[V_Q] / ((size_t)bt->T * qd)), .cap = 1, .T = bt->T, .s_short = -1};
    return armt_op_rope(&bt->F, &st, 0);
}

static armt_status step_layer(batch *bt) {
    armt_ctx *ctx = bt->rt_ctx;
    const size_t T = (size_t)bt->T, d = (size_t)bt->F.d, ffn = (size_t)bt->F.ffn;
    const size_t qd = (size_t)bt->F.nh * bt->F.hd, kvd = (size_t)bt->F.nkv * bt->F.hd;
    entries(bt, 0);
    ARMT_TRY(cells_table(bt));
    ARMT_TRY(cells_rmsnorm(bt, ARMT_ROLE_NORM_IN));
    /* RoPE in the q and k GEMMs' epilogue where it fits (bf16 A; as step.c's qkv) */
    const int rope = bt->abf_src == ctx->h && armt_gemm_rope_fits(ctx, bt->F.hd, bt->F.d);
    armt_gemm_epi epi = {.rope = rope ? ctx->rope : NULL, .rope_hd = bt->F.hd, .rope_T = bt->T};
    ARMT_TRY(gemm_role_epi(bt, ARMT_ROLE_WQ, -1, V_H, T, d, V_Q, qd, 0.0f, &epi));
    ARMT_TRY(gemm_role_epi(bt, ARMT_ROLE_WK, -1, V_H, T, d, V_KK, kvd, 0.0f, &epi));
    ARMT_TRY(gemm_role(bt, ARMT_ROLE_WV, V_H, T, d, V_VV, kvd, 0.0f));
    unstage(bt);
    const int rope_flat =
        !rope && rope_one_launch(bt) && regions_full(bt, V_Q, T, (size_t)bt->F.nh * bt->F.hd);
    if (rope_flat) ARMT_TRY(rope_all(bt));
    EACH_DOC(bt, b, D) {
        if (!rope && !rope_flat) ARMT_TRY(armt_op_rope(&D->F, &D->st, 0));
        ARMT_TRY(doc_attention(D));
    }
    /* x += att Wo^T, the residual added by the GEMM (beta = 1) */
    ARMT_TRY(stage_flat(bt, V_ATT, qd));
    ARMT_TRY(gemm_role(bt, ARMT_ROLE_WO, V_ATT, T, qd, V_X, d, 1.0f));
    ARMT_TRY(cells_rmsnorm(bt, ARMT_ROLE_NORM_POST));
    /* gate, up and SwiGLU: with tensor cores in the GEMM's epilogue, writing the down projection's bf16
     * operand into f2's memory at f1's offsets (their regions are alike); else the SwiGLU kernel once */
    if (bt->tc && bt->F.ffn % 8 == 0) {
        armt_gemm_epi e2 = {.out = ctx->f2};
        if (armt_gemm_pairs(ctx, ARMT_ROLE_WG, ARMT_ROLE_WU)) {
            ARMT_TRY(gemm_role_epi(bt, ARMT_ROLE_WG, ARMT_ROLE_WU, V_H, T, d, V_F2, ffn, 0.0f, &e2));
        } else {
            ARMT_TRY(gemm_role(bt, ARMT_ROLE_WG, V_H, T, d, V_F1, ffn, 0.0f));
            e2.gate = ctx->f1;
            ARMT_TRY(gemm_role_epi(bt, ARMT_ROLE_WU, -1, V_H, T, d, V_F2, ffn, 0.0f, &e2));
        }
        bt->abf_src = ctx->f1;
        bt->abf_buf = ctx->f2;
        bt->abf_only = 1;
    } else {
        ARMT_TRY(gemm_role(bt, ARMT_ROLE_WG, V_H, T, d, V_F1, ffn, 0.0f));
        ARMT_TRY(gemm_role(bt, ARMT_ROLE_WU, V_H, T, d, V_F2, ffn, 0.0f));
        unstage(bt);
        /* one launch over every document's region where each is filled by this step's cells; else per
         * document over its cells' rows only (the rest of a region holds nothing written) */
        if (regions_full(bt, V_F1, T, ffn)) {
            ARMT_TRY(swiglu_flat(bt));
        } else {
            EACH_DOC(bt, b, D) ARMT_TRY(armt_op_swiglu(&D->F, (size_t)D->st.G * T * ffn, 0, 0));
        }
    }
    armt_status st = gemm_role(bt, ARMT_ROLE_WD, V_F1, T, ffn, V_X, d, 1.0f);
    unstage(bt);
    return st;
}

/* ---- memory write ---- */

/* W_mem[l] += phi(k)^T delta for document D's cells (step.c's mem_update): with tensor cores on operands
 * split into bf16 high and low parts (in the runner's abf from 0, documents taking turns), else fp32
 * operands (CLBlast, or 3xTF32 on tensor cores). */
static armt_status mem_update_split(batch *bt, bdoc *D) {
    armt_call *F = &D->F;
    armt_ctx *v = &D->view, *ctx = bt->rt_ctx;
    const size_t M = (size_t)bt->F.M, G = (size_t)D->st.G, dk = (size_t)bt->F.dk, d = (size_t)bt->F.d;
    const size_t K = armt_mem_update_k(bt->cfg), Mp = K / 3, w0 = G * dk * K;
    ARMT_TRY(armt_op_bf16_transpose(F, v->phi, ctx->abf, 0, (int)M, (int)dk, 0, (int)G, (int)Mp, 3, 4));
    ARMT_TRY(armt_op_bf16_transpose(F, v->vnew, ctx->abf, w0, (int)M, (int)d, 0, (int)G, (int)Mp, 3, 2));
    for (size_t j = 0; j < G; j++) {
        bt->a_off[j] = j * dk * K;
        bt->w_off[j] = w0 + j * d * K;
        bt->c_off[j] = ((size_t)D->st.l0 + j) * dk * d;
    }
    armt_gemm_op op = {.m = dk,
                       .n = d,
                       .k = K,
                       .count = G,
                       .a = v->phi,
                       .lda = K,
                       .a_off = bt->a_off,
                       .a_bf16 = ctx->abf,
                       .a_bf16_only = 1,
                       .w = ctx->abf,
                       .ldw = K,
                       .w_off = bt->w_off,
                       .w_bf16 = 1,
                       .c = D->ctx->w_mem,
                       .ldc = d,
                       .c_off = bt->c_off,
                       .beta = 1.0f,
                       .site = ARMT_GSITE_MEM_UPDATE};
    return armt_gemm(ctx, &op, bt->err);
}

static armt_status step_write(batch *bt) {
    const size_t M = (size_t)bt->F.M, d = (size_t)bt->F.d, dm = (size_t)bt->F.dm;
    entries(bt, 0); /* (the cells of the layer's table) */
    if (bt->n_ent > 0) {
        armt_ctx *ctx = bt->rt_ctx;
        armt_err *err = bt->err;
        cl_kernel k = ctx->k[ARMT_K_CELLS_MEM_GATHER];
        ARMT_TRY(ARMT_KARGS(k, 0, err, ARMT_KA(ctx->x), ARMT_KA(ctx->mrows), ARMT_KA(bt->F.M),
                            ARMT_KA(bt->F.d), ARMT_KA(bt->cell_tab)));
        ARMT_TRY(armt_op_launch(&bt->F, ARMT_K_CELLS_MEM_GATHER, 3, d, M, bt->n_ent, 0));
    }
    /* the memory rows rounded to bf16 once for the projections (as step.c's write) */
    ARMT_TRY(stage_flat(bt, V_MROWS, d));
    ARMT_TRY(gemm_role(bt, ARMT_ROLE_WMK, V_MROWS, M, d, V_MQ, dm, 0.0f));
    if (dpfp_one_launch(bt) && regions_full(bt, V_MQ, M, dm))
        ARMT_TRY(armt_op_dpfp(&bt->F, bt->B * bt->region[V_MQ] / dm));
    else
        EACH_DOC(bt, b, D) ARMT_TRY(armt_op_dpfp(&D->F, (size_t)D->st.G * M));
    ARMT_TRY(gemm_role(bt, ARMT_ROLE_WMV, V_MROWS, M, d, V_VNEW, d, 0.0f));
    if (bt->F.gating) ARMT_TRY(gemm_role(bt, ARMT_ROLE_WMB, V_MROWS, M, d, V_MBETA, d, 0.0f));
    unstage(bt);
    const int split = bt->tc && bt->F.dk % 8 == 0 && bt->F.d % 8 == 0;
    EACH_DOC(bt, b, D) {
        ARMT_TRY(armt_op_mem_write_prep(&D->F, &D->st));
        if (doc_reads(D)) ARMT_TRY(mem_product(bt, b, M, V_VPREV, ARMT_GSITE_MEM_PREV));
        ARMT_TRY(armt_op_mem_delta(&D->F, &D->st));
        ARMT_TRY(split ? mem_update_split(bt, D) : mem_update(bt, b));
        ARMT_TRY(armt_op_mem_block_mask(&D->F, &D->st));
        ARMT_TRY(armt_op_mem_z_update(&D->F, &D->st));
        ARMT_TRY(armt_step_mem_bf16_refresh(&D->F, D->st.l0, D->st.G));
        for (int j = 0; j < D->st.G; j++)
            D->F.written[D->st.l0 + j] = 1;
    }
    return ARMT_OK;
}

/* Layer 0's input of the documents whose newest segment enters, and the output of those whose oldest cell
 * left the last layer. */
static armt_status step_embed(batch *bt) {
    const size_t L = (size_t)bt->cfg->segment_size;
    EACH_DOC(bt, b, D) {
        if (D->st.l0 != 0) continue;
        const int s = D->st.s0;
        ARMT_TRY(
            armt_step_embed(&D->F, &D->st, D->id0 + (size_t)s * L, seg_tokens(bt, D, s), bt->F.M, bt->F.ns));
    }
    return ARMT_OK;
}

static armt_status step_emit(batch *bt) {
    const size_t L = (size_t)bt->cfg->segment_size;
    EACH_DOC(bt, b, D) {
        const int j = D->st.G - 1;
        if (D->st.l0 + j != bt->cfg->n_layers - 1) continue;
        const int s = D->st.s0 - j;
        ARMT_TRY(armt_step_emit(&D->F, (size_t)(s % D->st.cap), (size_t)bt->T, (size_t)s * L,
                                (size_t)seg_tokens(bt, D, s)));
    }
    return ARMT_OK;
}

/* ======================================================================================================= */
/* The call                                                                                                */
/* ======================================================================================================= */

static armt_status check_args(armt_ctx *runner, const armt_batch_doc *docs, size_t B,
                              const armt_forward_params *p) {
    armt_err *err = &runner->err;
    ARMT_RETURN_IF(!p, ARMT_STATUS_INVALID_ARGUMENT, "armt_forward_batch: params is NULL");
    ARMT_RETURN_IF(B == 0, ARMT_STATUS_EMPTY_INPUT, "armt_forward_batch: no documents");
    ARMT_RETURN_IF(!docs, ARMT_STATUS_INVALID_ARGUMENT, "armt_forward_batch: docs is NULL");
    ARMT_RETURN_IF(p->schedule != ARMT_SCHEDULE_DIAGONAL && p->schedule != ARMT_SCHEDULE_SEQUENTIAL,
                   p->schedule == ARMT_SCHEDULE_FULL ? ARMT_STATUS_UNSUPPORTED : ARMT_STATUS_INVALID_ARGUMENT,
                   "armt_forward_batch: schedule %d (diagonal or sequential only)", (int)p->schedule);
    ARMT_RETURN_IF(p->output < ARMT_OUTPUT_NONE || p->output > ARMT_OUTPUT_HIDDEN,
                   ARMT_STATUS_INVALID_ARGUMENT, "armt_forward_batch: unknown output %d", (int)p->output);
    const armt_config *cfg = &runner->model->cfg;
    for (size_t b = 0; b < B; b++) {
        const armt_batch_doc *D = &docs[b];
        ARMT_RETURN_IF(!D->ctx, ARMT_STATUS_INVALID_ARGUMENT, "armt_forward_batch: document %zu: ctx is NULL",
                       b);
        ARMT_RETURN_IF(D->ctx->model != runner->model, ARMT_STATUS_MODEL_MISMATCH,
                       "armt_forward_batch: document %zu: its context belongs to another model", b);
        for (size_t a = 0; a < b; a++)
            ARMT_RETURN_IF(docs[a].ctx == D->ctx, ARMT_STATUS_INVALID_ARGUMENT,
                           "armt_forward_batch: documents %zu and %zu share a context", a, b);
        ARMT_RETURN_IF(D->n == 0, ARMT_STATUS_EMPTY_INPUT, "armt_forward_batch: document %zu has no tokens",
                       b);
        ARMT_RETURN_IF(!D->ids, ARMT_STATUS_INVALID_ARGUMENT, "armt_forward_batch: document %zu: ids is NULL",
                       b);
        ARMT_RETURN_IF(D->n > (size_t)INT32_MAX, ARMT_STATUS_INVALID_ARGUMENT,
                       "armt_forward_batch: document %zu: %zu tokens is too many", b, D->n);
        ARMT_RETURN_IF(D->start < 0, ARMT_STATUS_INVALID_ARGUMENT,
                       "armt_forward_batch: document %zu: start %d < 0", b, D->start);
        size_t need = armt_output_count(runner->model, p->output, D->n);
        ARMT_RETURN_IF(need > 0 && !D->out, ARMT_STATUS_INVALID_ARGUMENT,
                       "armt_forward_batch: document %zu: output requested but out is NULL", b);
        ARMT_RETURN_IF(need > D->out_count, ARMT_STATUS_INVALID_ARGUMENT,
                       "armt_forward_batch: document %zu: out holds %zu floats, the output needs %zu", b,
                       D->out_count, need);
        for (size_t i = 0; i < D->n; i++)
            ARMT_RETURN_IF(D->ids[i] < 0 || D->ids[i] >= cfg->vocab_size, ARMT_STATUS_TOKEN_OUT_OF_RANGE,
                           "armt_forward_batch: document %zu: token %zu has id %d, outside [0, %d)", b, i,
                           (int)D->ids[i], cfg->vocab_size);
    }
    return ARMT_OK;
}

/* Device bytes of a context's memory state and its snapshot (as armt_stats.device_bytes counts them). */
static uint64_t state_bytes(const armt_ctx *c) {
    return 2 * (c->state_bytes[0] + c->state_bytes[1] + c->state_bytes[2] + 2 * c->win_bytes);
}

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* Every document's call (on its own context, then moved to its view), the shared scratch, the views and
 * the snapshots; then the steps. */
static armt_status run(batch *bt, const armt_batch_doc *docs, const armt_forward_params *params) {
    armt_ctx *runner = bt->rt_ctx;
    armt_err *err = bt->err;
    const armt_config *cfg = bt->cfg;
    const int Lyr = cfg->n_layers, M = cfg->num_mem_tokens, ns = cfg->use_sink ? 1 : 0;
    const size_t L = (size_t)cfg->segment_size;
    size_t n_ids = 0, max_len = 0;
    int max_S = 0;
    for (size_t b = 0; b < bt->B; b++) {
        bdoc *D = &bt->docs[b];
        D->ctx = docs[b].ctx;
        D->start = docs[b].start;
        D->p = *params;
        D->p.out = docs[b].out;
        D->p.out_count = docs[b].out_count;
        D->p.all_rows = 1;
        D->S = (int)((docs[b].n + L - 1) / L);
        D->id0 = n_ids;
        n_ids += docs[b].n;
        /* rows of a cell: a full segment's, or one shorter segment's when no document has more */
        size_t len = D->S > 1 ? L : docs[b].n;
        if (len > max_len) max_len = len;
        if (D->S > max_S) max_S = D->S;
        clFinish(D->ctx->queue);
        ARMT_TRY(armt_call_begin(&D->F, D->ctx, &D->p, docs[b].ids, docs[b].n));
        D->begun = 1;
        cl_int e = clFinish(D->ctx->queue); /* (its bf16 copy of W_mem, on its own queue) */
        if (e != CL_SUCCESS) return armt_err_cl(err, "clFinish (batch document)", e);
    }
    bt->T = ns + (int)max_len + M;
    bt->split_rows = ns + (int)L + M; /* (as a document's own forward counts its cells) */
    bt->cap = bt->diagonal ? (max_S < Lyr ? max_S : Lyr) : 1;
    size_t cells = 0,
           out_rows = params->output == ARMT_OUTPUT_NONE ? 0 : (L < BATCH_OUT_ROWS ? L : BATCH_OUT_ROWS);
    ARMT_TRY(layout(bt, &cells));
    bt->F = bt->docs[0].F; /* sizes only; the runner's own call for the scratch */
    bt->F.ctx = runner;
    bt->F.err = err;
    ARMT_TRY(armt_scratch_grow(&bt->F, cells, (size_t)bt->T, (size_t)bt->T, n_ids, out_rows, 0));
    bt->tc = armt_gemm_bf16_operands(runner); /* (the runner's abf exists now) */
    /* every document's ids, one after another */
    for (size_t b = 0; b < bt->B; b++)
        ARMT_CL_TRY(clEnqueueWriteBuffer(runner->queue, runner->ids, CL_TRUE,
                                         bt->docs[b].id0 * sizeof(int32_t), docs[b].n * sizeof(int32_t),
                                         docs[b].ids, 0, NULL, NULL));
    size_t max_ent = (size_t)bt->cap * bt->B;
    bt->ent_doc = malloc(max_ent * sizeof *bt->ent_doc);
    bt->ent_j = malloc(max_ent * sizeof *bt->ent_j);
    bt->a_off = malloc(max_ent * sizeof *bt->a_off);
    bt->w_off = malloc(max_ent * sizeof *bt->w_off);
    bt->c_off = malloc(max_ent * sizeof *bt->c_off);
    bt->cell_host = malloc(max_ent * CELL_TAB * sizeof *bt->cell_host);
    if (!bt->ent_doc || !bt->ent_j || !bt->a_off || !bt->w_off || !bt->c_off || !bt->cell_host)
        return armt_err_set(err, ARMT_STATUS_OUT_OF_HOST_MEMORY, "armt_forward_batch: out of host memory");
    bt->cell_tab_bytes = max_ent * CELL_TAB * sizeof(cl_ulong);
    ARMT_TRY(armt_buffer_create(runner->rt, bt->cell_tab_bytes, &bt->cell_tab, "batch cell table", err));
    for (size_t b = 0; b < bt->B; b++) {
        bdoc *D = &bt->docs[b];
        ARMT_TRY(make_view(bt, b));
        D->F.ctx = &D->view;
        D->F.err = err;
        ARMT_TRY(armt_state_copy(&D->view, 1, err));
        D->saved = 1;
    }
    int total = 0;
    for (size_t b = 0; b < bt->B; b++) {
        int end = bt->docs[b].start + doc_steps(bt, &bt->docs[b]);
        if (end > total) total = end;
    }
    for (int t = 0; t < total; t++) {
        for (size_t b = 0; b < bt->B; b++)
            doc_cells(bt, &bt->docs[b], t);
        ARMT_TRY(step_embed(bt));
        ARMT_TRY(step_read(bt));
        ARMT_TRY(step_layer(bt));
        ARMT_TRY(step_write(bt));
        ARMT_TRY(step_emit(bt));
        runner->stats.steps++;
        EACH_DOC(bt, b, D) runner->stats.cells += (uint64_t)D->st.G;
        if (params->progress &&
            params->progress((uint64_t)t + 1, (uint64_t)total, params->progress_user_data))
            return armt_err_set(err, ARMT_STATUS_CANCELLED,
                                "armt_forward_batch: cancelled by the progress callback after step %d of %d",
                                t + 1, total);
    }
    cl_int e = clFinish(runner->queue);
    if (e != CL_SUCCESS) return armt_err_cl(err, "clFinish (batch)", e);
    return ARMT_OK;
}

armt_status armt_forward_batch(armt_ctx *runner, const armt_batch_doc *docs, size_t n_docs,
                               const armt_forward_params *params) {
    if (!runner)
        return armt_err_set(NULL, ARMT_STATUS_INVALID_ARGUMENT, "armt_forward_batch: runner is NULL");
    ARMT_TRY(check_args(runner, docs, n_docs, params));
    armt_ctx_prof_drop(runner);
    memset(&runner->stats, 0, sizeof runner->stats);
    const double t0 = now_s();
    pthread_mutex_lock(&runner->rt->lock);
    runner->rt->peak_bytes = runner->rt->device_bytes;
    pthread_mutex_unlock(&runner->rt->lock);
    batch bt;
    memset(&bt, 0, sizeof bt);
    bt.rt_ctx = runner;
    bt.err = &runner->err;
    bt.cfg = &runner->model->cfg;
    bt.B = n_docs;
    bt.diagonal = params->schedule == ARMT_SCHEDULE_DIAGONAL;
    bt.docs = calloc(n_docs, sizeof *bt.docs);
    armt_status st = bt.docs ? run(&bt, docs, params)
                             : armt_err_set(bt.err, ARMT_STATUS_OUT_OF_HOST_MEMORY,
                                            "armt_forward_batch: out of host memory");
    if (st != ARMT_OK) {
        for (size_t b = 0; bt.docs && b < n_docs; b++)
            if (bt.docs[b].saved) armt_state_rollback(&bt.docs[b].view, st, bt.err);
    }
    clFinish(runner->queue);
    for (size_t b = 0; bt.docs && b < n_docs; b++) {
        bdoc *D = &bt.docs[b];
        if (st == ARMT_OK) {
            /* the sliding window after the call: the last W rows of what it held and the document's rows */
            const size_t rows = (size_t)D->F.win_first + D->F.n;
            D->ctx->win_len = D->F.win == 0 ? 0 : rows < (size_t)D->F.win ? (int)rows : D->F.win;
            D->ctx->win_len_prev = D->view.win_len_prev;
            if (D->ctx != runner) { /* (the runner's are the batch's) */
                memset(&D->ctx->stats, 0, sizeof D->ctx->stats);
                D->ctx->stats.steps = (uint64_t)doc_steps(&bt, D);
                D->ctx->stats.cells = (uint64_t)D->S * (uint64_t)bt.cfg->n_layers;
                D->ctx->stats.device_bytes = state_bytes(D->ctx);
            }
        }
        runner->stats.kernel_launches += D->view.stats.kernel_launches;
        runner->stats.gemm_calls += D->view.stats.gemm_calls;
        for (int i = 0; i < N_VIEWS; i++)
            if (D->sub[i]) clReleaseMemObject(D->sub[i]);
        armt_err_free(&D->view.err);
        if (D->begun) armt_call_end(&D->F);
    }
    free(bt.docs);
    free(bt.ent_doc);
    free(bt.ent_j);
    free(bt.a_off);
    free(bt.w_off);
    free(bt.c_off);
    free(bt.cell_host);
    armt_buffer_release(runner->rt, &bt.cell_tab, bt.cell_tab_bytes);
    runner->stats.seconds = now_s() - t0;
    runner->stats.device_bytes = runner->scratch_bytes + state_bytes(runner);
    pthread_mutex_lock(&runner->rt->lock);
    runner->stats.peak_device_bytes = runner->rt->peak_bytes;
    pthread_mutex_unlock(&runner->rt->lock);
    for (size_t b = 0; st == ARMT_OK && b < n_docs; b++)
        if (docs[b].ctx != runner) docs[b].ctx->stats.seconds = runner->stats.seconds;
    return st;
}
