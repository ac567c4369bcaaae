/*
 * rows_attention.cl - attention of rows of several documents, each against its own document's KV cache
 * (batch generation; see rows.cl for the row table rt and the cache layout). Built into the attention
 * programs, after attention.cl.
 *
 * Row r (document slot b, position p) attends as armt_attention's row of a generation's KV-cache step does:
 * q0 + r = win + p, keys 0 .. win + p of its cache of layer l, with the sliding window's first visible key
 * (S = wS[b] cached rows: the window rows below win - S are not read; the sink sees no cached key, text row
 * i the cached rows from win - S + i). The tiles of ATTN_BK keys, the online softmax and every sum run in
 * the same order as there, so the results are the same. One work-item per (row, head): global (rows * nh).
 */
__kernel void armt_rows_attention(__global const float *q, __global const float *kc, __global const float *vc,
                                  __global float *out, const int nh, const int nkv, const float scale,
                                  __global const int *rt, __global const int *wS, const int rows, const int l,
                                  const int n_layers, const int per, const int win, const int ns) {
    const int gid = get_global_id(0);
    if (gid >= rows * nh) return;
    const int r = gid / nh, h = gid % nh, b = rt[2 * r], p = rt[2 * r + 1];
    const int kvh = h / (nh / nkv);
    const ulong qstride = (ulong)nh * ATTN_HD, kstride = (ulong)nkv * ATTN_HD;
    const ulong base = ((ulong)b * n_layers + l) * (ulong)per * kstride + (ulong)kvh * ATTN_HD;
    __global const float *kbase = kc + base;
    __global const float *vbase = vc + base;
    float qr[ATTN_HD], acc[ATTN_HD];
    for (int c = 0; c < ATTN_HD; c++) {
        qr[c] = q[(ulong)r * qstride + (ulong)h * ATTN_HD + c] * scale;
        acc[c] = 0.0f;
    }
    float m = -INFINITY, sum = 0.0f;
    const int S = win > 0 ? wS[b] : 0;
    const int lim = win + p, kfirst = win > 0 ? win - S : 0;
    const int lo = win <= 0 ? 0 : p < ns ? win : min(win, win - S + (p - ns));
    for (int kb = kfirst / ATTN_BK * ATTN_BK; kb <= lim; kb += ATTN_BK) {
        float s[ATTN_BK];
        float tmax = -INFINITY;
        for (int t = 0; t < ATTN_BK; t++) {
            const int kr = kb + t, in = kr <= lim && kr >= kfirst;
            float dot = 0.0f;
            for (int c = 0; c < ATTN_HD; c++)
                dot += qr[c] * (in ? kbase[(ulong)kr * kstride + c] : 0.0f);
            s[t] = (kr <= lim && kr >= lo) ? dot : -INFINITY;
            tmax = fmax(tmax, s[t]);
        }
        if (tmax > -INFINITY) {
            const float mnew = fmax(m, tmax);
            const float corr = exp(m - mnew);
            sum *= corr;
            for (int c = 0; c < ATTN_HD; c++)
                acc[c] *= corr;
            for (int t = 0; t < ATTN_BK; t++) {
                const int kr = kb + t, in = kr <= lim && kr >= kfirst;
                const float pw = exp(s[t] - mnew);
                sum += pw;
                for (int c = 0; c < ATTN_HD; c++)
                    acc[c] += pw * (in ? vbase[(ulong)kr * kstride + c] : 0.0f);
            }
            m = mnew;
        }
    }
    const float inv = 1.0f / sum;
    __global float *o = out + (ulong)r * qstride + (ulong)h * ATTN_HD;
    for (int c = 0; c < ATTN_HD; c++)
        o[c] = acc[c] * inv;
}
