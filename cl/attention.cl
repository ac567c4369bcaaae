/*
 * attention.cl - causal softmax attention with grouped KV heads, tiled with an online softmax: no T x T
 * matrix is ever stored; key/value tiles of ATTN_BK rows pass through local memory, so T is bounded
 * only by global memory.
 *
 * q: (G, T, nh*HD)   k, v: kv_off + (G, Tk, nkv*HD)   out: (G, T, nh*HD); query head h reads KV head
 * h / (nh/nkv). Query row r has position q0 + r and sees keys 0 .. q0 + r (q0 = 0 and Tk = T for a whole
 * segment; q0 > 0 when one new token attends to a KV cache of Tk rows).
 * One work-group of ATTN_BQ work-items per (block of ATTN_BQ query rows, head, cell); each work-item owns
 * one query row. Global (ceil(T/ATTN_BQ)*ATTN_BQ, nh, G), local (ATTN_BQ, 1, 1).
 * Every kernel's argument last_row0: 0, or query rows of the last cell (G - 1) below it are not needed
 * (armt_rows_unneeded in common.cl): blocks of rows wholly below it are skipped.
 * mem_all > 0 (the inner-loop variant): the last mem_all rows of every cell are its memory tokens, and they
 * see every row of their cell, later ones too; a cell holds T rows, except cell j_short (-1: none), which
 * holds T_short (a partial last segment, padded). armt_attention_limit gives a row's last visible key.
 * ATTN_HD (the head dimension) is fixed at build time so the per-row accumulators stay in registers.
 */
#ifndef ATTN_HD
#define ATTN_HD 64 /* head dimension */
#endif
#ifndef ATTN_BQ
#define ATTN_BQ 32 /* query rows per work-group */
#endif
#ifndef ATTN_BK
#define ATTN_BK 32 /* key rows per local-memory tile */
#endif

/* The last key row r of cell j sees: q0 + r (causal), or the cell's last row for a memory row with mem_all. */
inline int armt_attention_limit(const int r, const int j, const int T, const int q0, const int mem_all,
                                const int j_short, const int T_short) {
    const int Tj = j == j_short ? T_short : T;
    return mem_all > 0 && r >= Tj - mem_all ? max(q0 + r, Tj - 1) : q0 + r;
}

__kernel __attribute__((reqd_work_group_size(ATTN_BQ, 1, 1))) void
armt_attention(__global const float *q, __global const float *k, __global const float *v, __global float *out,
               const int T, const int nh, const int nkv, const float scale, const ulong kv_off, const int Tk,
               const int q0, const int last_row0, const int mem_all, const int j_short, const int T_short) {
    __local float ks[ATTN_BK * ATTN_HD];
    __local float vs[ATTN_BK * ATTN_HD];
    const int lid = get_local_id(0), qb = get_group_id(0), h = get_group_id(1), j = get_group_id(2);
    if (armt_rows_unneeded(last_row0, qb * ATTN_BQ, ATTN_BQ)) return;
    const int r = qb * ATTN_BQ + lid;
    const int valid = r < T;
    const int kvh = h / (nh / nkv);
    const ulong qstride = (ulong)nh * ATTN_HD, kstride = (ulong)nkv * ATTN_HD;
    __global const float *kbase = k + kv_off + (ulong)j * Tk * kstride + (ulong)kvh * ATTN_HD;
    __global const float *vbase = v + kv_off + (ulong)j * Tk * kstride + (ulong)kvh * ATTN_HD;

    float qr[ATTN_HD], acc[ATTN_HD];
    for (int c = 0; c < ATTN_HD; c++) {
        qr[c] = valid ? q[((ulong)j * T + r) * qstride + (ulong)h * ATTN_HD + c] * scale : 0.0f;
        acc[c] = 0.0f;
    }
    float m = -INFINITY, l = 0.0f;
    /* the last key any row of this block sees; rows past it are loaded as zeros (a KV cache holds
     * unwritten rows there, and 0 * NaN would poison the sum even with a zero weight) */
    const int lim = armt_attention_limit(r, j, T, q0, mem_all, j_short, T_short);
    const int last = min(Tk - 1, armt_attention_limit(min(T - 1, qb * ATTN_BQ + ATTN_BQ - 1), j, T, q0,
                                                      mem_all, j_short, T_short));
    for (int kb = 0; kb <= last; kb += ATTN_BK) {
        for (int e = lid; e < ATTN_BK * ATTN_HD; e += ATTN_BQ) {
            const int kr = kb + e / ATTN_HD, c = e % ATTN_HD;
            const int in = kr <= last;
            ks[e] = in ? kbase[(ulong)kr * kstride + c] : 0.0f;
            vs[e] = in ? vbase[(ulong)kr * kstride + c] : 0.0f;
        }
        barrier(CLK_LOCAL_MEM_FENCE);
        float s[ATTN_BK];
        float tmax = -INFINITY;
        for (int t = 0; t < ATTN_BK; t++) {
            float dot = 0.0f;
            for (int c = 0; c < ATTN_HD; c++)
                dot += qr[c] * ks[t * ATTN_HD + c];
            s[t] = (valid && kb + t <= lim) ? dot : -INFINITY;
            tmax = fmax(tmax, s[t]);
        }
        if (tmax > -INFINITY) {
            const float mnew = fmax(m, tmax);
            const float corr = exp(m - mnew);
            l *= corr;
            for (int c = 0; c < ATTN_HD; c++)
                acc[c] *= corr;
            for (int t = 0; t < ATTN_BK; t++) {
                const float p = exp(s[t] - mnew);
                l += p;
                for (int c = 0; c < ATTN_HD; c++)
                    acc[c] += p * vs[t * ATTN_HD + c];
            }
            m = mnew;
        }
        barrier(CLK_LOCAL_MEM_FENCE);
    }
    if (valid) {
        const float inv = 1.0f / l;
        __global float *o = out + ((ulong)j * T + r) * qstride + (ulong)h * ATTN_HD;
        for (int c = 0; c < ATTN_HD; c++)
            o[c] = acc[c] * inv;
    }
}
