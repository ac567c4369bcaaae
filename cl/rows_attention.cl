/*
 * rows_attention.cl - attention of rows of several documents, each against its own document's KV cache
 * (batch generation; see rows.cl for the row table rt and the cache layout). Built into the attention
 * programs, after attention.cl.
 *
 * Row r (document slot b, position p) attends as armt_attention's row of a generation's KV-cache step does:
 * q0 + r = win + p, keys 0 .. win + p of its cache of layer l, with the sliding window's first visible key
 * (S = wS[b] cached rows: the window rows below win - S are not read; the sink sees no cached key, text row
 * i the cached rows from win - S + i). The tiles of ATTN_BK keys, the online softmax and every sum run in
 * the same order as there, so the results are the same. One work-group per (qpg query heads of a KV head,
 * row; qpg divides nh / nkv), a work-item per (query head, channel): global (nh * ATTN_HD, rows), local
 * (qpg * ATTN_HD); the KV tile in local memory serves the group's query heads; qs (qpg * ATTN_HD floats)
 * and sc (qpg * ATTN_BK floats) are local scratch.
 */
/* The keys row (document slot b, position p) reads in its cache: kfirst, the first row loaded (the window rows
 * below win - S are not cached); lo, the first it sees (the sink sees no cached key, text row i the cached
 * rows from win - S + i); the last is win + p. */
inline void armt_rows_keys(const int win, const int ns, __global const int *wS, const int b, const int p,
                           int *kfirst, int *lo) {
    const int S = win > 0 ? wS[b] : 0;
    *kfirst = win > 0 ? win - S : 0;
    *lo = win <= 0 ? 0 : p < ns ? win : min(win, win - S + (p - ns));
}

__kernel void armt_rows_attention(__global const float *q, __global const float *kc, __global const float *vc,
                                  __global float *out, const int nh, const int nkv, const float scale,
                                  __global const int *rt, __global const int *wS, const int rows, const int l,
                                  const int n_layers, const int per, const int win, const int ns,
                                  const int qpg, const int kvb, __local float *qs, __local float *sc) {
    __local float ks[ATTN_BK * ATTN_HD];
    __local float vs[ATTN_BK * ATTN_HD];
    const int lid = get_local_id(0), g = get_group_id(0), r = get_group_id(1);
    const int nq = nh / nkv, groups = nq / qpg, kvh = g / groups, items = qpg * ATTN_HD;
    const int hq = lid / ATTN_HD, c = lid % ATTN_HD, h = kvh * nq + (g % groups) * qpg + hq;
    const int b = rt[2 * r], p = rt[2 * r + 1];
    const ulong qstride = (ulong)nh * ATTN_HD, kstride = (ulong)nkv * ATTN_HD;
    const ulong base = ((ulong)b * n_layers + l) * (ulong)per * kstride + (ulong)kvh * ATTN_HD;
    qs[lid] = q[(ulong)r * qstride + (ulong)h * ATTN_HD + c] * scale;
    float m = -INFINITY, sum = 0.0f, acc = 0.0f;
    const int lim = win + p;
    int kfirst, lo;
    armt_rows_keys(win, ns, wS, b, p, &kfirst, &lo);
    for (int kb = kfirst / ATTN_BK * ATTN_BK; kb <= lim; kb += ATTN_BK) {
        for (int e = lid; e < ATTN_BK * ATTN_HD; e += items) {
            const int kr = kb + e / ATTN_HD, cc = e % ATTN_HD;
            const int in = kr <= lim && kr >= kfirst;
            ks[e] = in ? armt_kv_load(kc, base + (ulong)kr * kstride + cc, kvb) : 0.0f;
            vs[e] = in ? armt_kv_load(vc, base + (ulong)kr * kstride + cc, kvb) : 0.0f;
        }
        barrier(CLK_LOCAL_MEM_FENCE);
        /* the scores: one key of one query head per work-item at a time, summed over the head's channels in
         * order */
        for (int i = lid; i < qpg * ATTN_BK; i += items) {
            const int hh = i / ATTN_BK, t = i % ATTN_BK, kr = kb + t;
            float dot = 0.0f;
            for (int cc = 0; cc < ATTN_HD; cc++)
                dot += qs[hh * ATTN_HD + cc] * ks[t * ATTN_HD + cc];
            sc[i] = (kr <= lim && kr >= lo) ? dot : -INFINITY;
        }
        barrier(CLK_LOCAL_MEM_FENCE);
        /* the online softmax of head hq, channel c: every work-item of the head keeps the same m and sum */
        float tmax = -INFINITY;
        for (int t = 0; t < ATTN_BK; t++)
            tmax = fmax(tmax, sc[hq * ATTN_BK + t]);
        if (tmax > -INFINITY) {
            const float mnew = fmax(m, tmax);
            const float corr = exp(m - mnew);
            sum *= corr;
            acc *= corr;
            for (int t = 0; t < ATTN_BK; t++) {
                const float pw = exp(sc[hq * ATTN_BK + t] - mnew);
                sum += pw;
                acc += pw * vs[t * ATTN_HD + c];
            }
            m = mnew;
        }
        barrier(CLK_LOCAL_MEM_FENCE);
    }
    const float inv = 1.0f / sum;
    out[(ulong)r * qstride + (ulong)h * ATTN_HD + c] = acc * inv;
}

/* A batch's decode rounds (one row per document): each row as generation's decode attention runs it alone
 * (armt_decode_chunk and armt_decode_combine, the same chunks of ATTN_DCHUNK keys and the same sums), on its
 * document's cache (the row table, window and sink as armt_rows_attention reads them). A work-group is one
 * chunk of one row for qpg query heads of a KV head, a sub-group of ATTN_HD work-items each, so that the
 * heads that share keys and values read them together; chunks past the row's keys return at once.
 * armt_rows_attention_decode: global (nchmax qpg ATTN_HD, nh / qpg, rows), local (qpg ATTN_HD); part:
 * (rows, nh, nchmax, ATTN_HD + 2). armt_rows_attention_combine: global (nh ATTN_HD, rows), local (ATTN_HD):
 * out (rows, nh ATTN_HD). */
#define ROWS_DEC_QPG (ATTN_HD >= 256 ? 1 : 256 / ATTN_HD) /* most query heads per work-group */

__kernel void armt_rows_attention_decode(__global const float *q, __global const float *kc,
                                         __global const float *vc, __global float *part, const int nh,
                                         const int nkv, const float scale, __global const int *rt,
                                         __global const int *wS, const int l, const int n_layers,
                                         const int per, const int win, const int ns, const int qpg,
                                         const int nchmax, const int kvb) {
    __local float qs[ROWS_DEC_QPG * ATTN_HD], red[ROWS_DEC_QPG * ATTN_HD];
    __local float ps[ROWS_DEC_QPG * ATTN_DCHUNK];
    __local float4 ks[ATTN_DCHUNK * ATTN_DKS / 4], vs[ATTN_DVS / 4]; /* the chunk's, for all qpg heads */
    const int lid = get_local_id(0), sub = lid / ATTN_HD, t = lid % ATTN_HD;
    const int c = get_group_id(0), h = get_group_id(1) * qpg + sub, r = get_group_id(2);
    const int kvh = h / (nh / nkv), b = rt[2 * r], p = rt[2 * r + 1];
    const int hi = win + p;
    int kfirst, lo;
    armt_rows_keys(win, ns, wS, b, p, &kfirst, &lo);
    lo = max(kfirst, lo);
    if (c > hi / ATTN_DCHUNK) return; /* (the whole work-group: one row, one chunk) */
    const ulong kstride = (ulong)nkv * ATTN_HD;
    const ulong base = ((ulong)b * n_layers + l) * (ulong)per * kstride + (ulong)kvh * ATTN_HD;
    armt_decode_stage(kc, vc, base, kstride, lo, hi, c, (__local float *)ks, (__local float *)vs, lid,
                      qpg * ATTN_HD, kvb);
    armt_decode_chunk(q + ((ulong)r * nh + h) * ATTN_HD, scale, (__local const float *)ks,
                      (__local const float *)vs, vc, base, kstride, lo, hi, c,
                      part + (((ulong)r * nh + h) * nchmax + c) * (ATTN_HD + 2), t, qs + sub * ATTN_HD,
                      ps + sub * ATTN_DCHUNK, red + sub * ATTN_HD, kvb);
}

__kernel __attribute__((reqd_work_group_size(ATTN_HD, 1, 1))) void
armt_rows_attention_combine(__global const float *part, __global float *out, __global const int *rt,
                            const int nh, const int win, const int nchmax) {
    __local float red[ATTN_HD], cw[ATTN_HD], cl[ATTN_HD];
    const int t = get_local_id(0), h = get_group_id(0), r = get_group_id(1);
    const int nch = (win + rt[2 * r + 1]) / ATTN_DCHUNK + 1;
    out[((ulong)r * nh + h) * ATTN_HD + t] =
        armt_decode_combine(part + ((ulong)r * nh + h) * nchmax * (ATTN_HD + 2), nch, t, red, cw, cl);
}
