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
 * (armt_rows_unneeded in common.cl): blocks of rows wholly below it are skipped, and in the block that holds
 * last_row0 the rows below it read no query (the q projection skipped them: armt_row_unneeded) and attend
 * with a zero one, giving defined outputs nobody reads.
 * mem_all > 0 (the inner-loop variant): the last mem_all rows of every cell are its memory tokens, and they
 * see every row of their cell, later ones too; a cell holds T rows, except cell j_short (-1: none), which
 * holds T_short (a partial last segment, padded). armt_attention_limit gives a row's last visible key.
 * ATTN_HD (the head dimension) is fixed at build time so the per-row accumulators stay in registers.
 *
 * Sliding window (src/armt_sw.py; WIN_ARGS, win > 0): each cell's first win key rows are the window, the
 * previous segment's text rows (keys after RoPE at their own positions) right-aligned: a cell holding S
 * cached rows has them at win - S .. win - 1 (rows below are not read: loaded as zeros), its own rows from
 * win on, so q0 = win (+ the position of the first row when generating). S is win_first for cell j_first
 * (the call's first segment: what the context carried in; -1: none in the step) and win for the others (a
 * whole previous segment). A query row at p (its row in the segment block [ns sink rows, text, nmem memory
 * rows]) sees keys lo .. its last, lo = armt_attn_lo: the sink row no cached key, text row i the cached
 * rows i .. S - 1 (the reference's triu mask), the memory rows every cached row. win = 0: lo = 0.
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
    return mem_all > 0 && r >= Tj - mem_all ? max(q0 + r, q0 + Tj - 1) : q0 + r;
}

#define WIN_ARGS const int win, const int win_first, const int j_first, const int ns, const int nmem

/* Rows of cell j held in the window (see above). */
inline int armt_attn_cached(const int j, const int win, const int win_first, const int j_first) {
    return j == j_first ? win_first : win;
}

/* The first key a query at key position kp of cell j sees (0 without a window). */
inline int armt_attn_lo(const int kp, const int j, const int T, const int j_short, const int T_short,
                        WIN_ARGS) {
    if (win <= 0) return 0;
    const int S = armt_attn_cached(j, win, win_first, j_first), p = kp - win;
    const int rows = j == j_short ? T_short : T;
    if (p < ns) return win;                           /* the sink: no cached key */
    if (nmem > 0 && p >= rows - nmem) return win - S; /* memory rows: every cached key */
    return min(win, win - S + (p - ns));              /* text row i: cached keys i .. S - 1 */
}

/* A lower bound of armt_attn_lo over the query rows a .. b (a <= b) of cell j: its tiles of keys below it
 * are masked for every one of those rows, so a work-group (or warp) that owns them skips those tiles (a
 * tile masked for every row changes no row's sums: adding it is exact, so skipping it is too). Over the
 * segment block the first key is the sink's win, then the text rows' nondecreasing lo, then the memory rows'
 * smallest one (win - S): the minimum is at a, at the first text row from a on, or at b. */
inline int armt_attn_block_lo(const int a, const int b, const int q0, const int j, const int T,
                              const int j_short, const int T_short, WIN_ARGS) {
    if (win <= 0) return 0;
    const int pa = q0 + a - win, t = pa < ns ? min(b, a + ns - pa) : a; /* the first text row from a on */
    return min(min(armt_attn_lo(q0 + a, j, T, j_short, T_short, win, win_first, j_first, ns, nmem),
                   armt_attn_lo(q0 + t, j, T, j_short, T_short, win, win_first, j_first, ns, nmem)),
               armt_attn_lo(q0 + b, j, T, j_short, T_short, win, win_first, j_first, ns, nmem));
}

__kernel __attribute__((reqd_work_group_size(ATTN_BQ, 1, 1))) void
armt_attention(__global const float *q, __global const float *k, __global const float *v, __global float *out,
               const int T, const int nh, const int nkv, const float scale, const ulong kv_off, const int Tk,
               const int q0, const int last_row0, const int mem_all, const int j_short, const int T_short,
               WIN_ARGS) {
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

    const int q_in = valid && !armt_row_unneeded(last_row0, r);
    float qr[ATTN_HD], acc[ATTN_HD];
    for (int c = 0; c < ATTN_HD; c++) {
        qr[c] = q_in ? q[((ulong)j * T + r) * qstride + (ulong)h * ATTN_HD + c] * scale : 0.0f;
        acc[c] = 0.0f;
    }
    float m = -INFINITY, l = 0.0f;
    /* the last key any row of this block sees; rows past it are loaded as zeros (a KV cache holds
     * unwritten rows there, and 0 * NaN would poison the sum even with a zero weight); so are the window's
     * rows below its cached ones (kfirst), and tiles wholly below them are not visited */
    const int lim = armt_attention_limit(r, j, T, q0, mem_all, j_short, T_short);
    const int last = min(Tk - 1, armt_attention_limit(min(T - 1, qb * ATTN_BQ + ATTN_BQ - 1), j, T, q0,
                                                      mem_all, j_short, T_short));
    const int kfirst = win > 0 ? win - armt_attn_cached(j, win, win_first, j_first) : 0;
    const int lo = armt_attn_lo(q0 + r, j, T, j_short, T_short, win, win_first, j_first, ns, nmem);
    /* the block's first visible key: tiles below it are masked for all its rows */
    const int blo = armt_attn_block_lo(qb * ATTN_BQ, min(T, qb * ATTN_BQ + ATTN_BQ) - 1, q0, j, T, j_short,
                                       T_short, win, win_first, j_first, ns, nmem);
    for (int kb = max(kfirst, blo) / ATTN_BK * ATTN_BK; kb <= last; kb += ATTN_BK) {
        for (int e = lid; e < ATTN_BK * ATTN_HD; e += ATTN_BQ) {
            const int kr = kb + e / ATTN_HD, c = e % ATTN_HD;
            const int in = kr <= last && kr >= kfirst;
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
            s[t] = (valid && kb + t <= lim && kb + t >= lo) ? dot : -INFINITY;
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

/* ======================================================================================================= */
/* The sliding window's keys and values (src/armt_sw.py)                                                   */
/* ======================================================================================================= */

/* The attention's keys of each cell of a step: ck/cv (G, win + T, kvd) = [the window of the cell's layer,
 * wk/wv (n_layers, win, kvd) right-aligned, rows below its cached ones zeros; the step's own k/v (G, T,
 * kvd)]. Global (kvd, win + T, G). kvb = 1: ck/cv hold bf16 (ushort at the same element offsets; the
 * attention's bf16-K/V kernel), the window's rows are rounded as the k and v projections' bf16 epilogue
 * rounds, and the own rows are not copied: that epilogue wrote them in place (global (kvd, win, G)). */
__kernel void armt_window_gather(__global const float *wk, __global const float *wv, __global const float *k,
                                 __global const float *v, __global float *ck, __global float *cv,
                                 const int kvd, const int win, const int win_first, const int kvb,
                                 CELL_ARGS) {
    const int c = get_global_id(0), r = get_global_id(1), j = get_global_id(2);
    if (c >= kvd || r >= win + T) return;
    const ulong dst = ((ulong)j * (ulong)(win + T) + (ulong)r) * (ulong)kvd + (ulong)c;
    if (r < win) {
        const int keep = r >= win - armt_attn_cached(j, win, win_first, s0);
        const ulong src = ((ulong)CELL_LAYER(j) * (ulong)win + (ulong)r) * (ulong)kvd + (ulong)c;
        const float xk = keep ? wk[src] : 0.0f, xv = keep ? wv[src] : 0.0f;
        if (kvb) {
            ((__global ushort *)ck)[dst] = armt_to_bf16(xk);
            ((__global ushort *)cv)[dst] = armt_to_bf16(xv);
        } else {
            ck[dst] = xk;
            cv[dst] = xv;
        }
    } else if (!kvb) {
        const ulong src = ((ulong)j * (ulong)T + (ulong)(r - win)) * (ulong)kvd + (ulong)c;
        ck[dst] = k[src];
        cv[dst] = v[src];
    }
}

/* The window after each cell: the last min(win, S + n) of [its S cached rows, its n text rows] (n = the
 * cell's rows - ns - nmem), from the combined ck/cv of armt_window_gather (the cached rows at win - S ..,
 * the text rows at win + ns ..; bf16 with kvb, stored back exactly as fp32), right-aligned into wk/wv of the
 * cell's layer, zeros below. Global (kvd, win, G). */
__kernel void armt_window_store(__global const float *ck, __global const float *cv, __global float *wk,
                                __global float *wv, const int kvd, const int win, const int win_first,
                                const int ns, const int nmem, const int kvb, CELL_ARGS) {
    const int c = get_global_id(0), r = get_global_id(1), j = get_global_id(2);
    if (c >= kvd || r >= win) return;
    const int S = armt_attn_cached(j, win, win_first, s0), n = CELL_ROWS(j) - ns - nmem;
    const int total = S + n, len = min(win, total);
    const ulong dst = ((ulong)CELL_LAYER(j) * (ulong)win + (ulong)r) * (ulong)kvd + (ulong)c;
    if (r < win - len) {
        wk[dst] = 0.0f;
        wv[dst] = 0.0f;
        return;
    }
    const int idx = total - win + r; /* in [cached rows, text rows] */
    const int row = idx < S ? win - S + idx : win + ns + (idx - S);
    const ulong src = ((ulong)j * (ulong)(win + T) + (ulong)row) * (ulong)kvd + (ulong)c;
    wk[dst] = kvb ? armt_from_bf16(((__global const ushort *)ck)[src]) : ck[src];
    wv[dst] = kvb ? armt_from_bf16(((__global const ushort *)cv)[src]) : cv[src];
}

/* ======================================================================================================= */
/* One new token against a KV cache (generation's decode)                                                  */
/* ======================================================================================================= */

/* A decode step has one query row per head (position q0, T = 1) and up to a KV cache of keys: the tiled
 * kernels above would compute whole row tiles of padding and give one work-group per head. Here the keys
 * are cut into chunks of ATTN_DCHUNK, a work-group of ATTN_HD items per (head, chunk) - split-K, so that a
 * step has heads x chunks work-groups - and a second kernel combines the chunks' partial softmaxes.
 *
 * armt_attention_decode: global (chunks * ATTN_HD, nh, 1), local (ATTN_HD). Chunk c covers keys
 * c ATTN_DCHUNK .. +ATTN_DCHUNK - 1 of those the row sees (armt_attention_limit, armt_attn_lo and the
 * window's cached rows, as armt_attention on its row 0 of cell 0). It writes part[(h chunks + c) (HD + 2)
 * + ...] = (m, l, acc[HD]): the chunk's largest score, sum of exp(s - m) and the sum of exp(s - m) v; an
 * empty chunk m = -INFINITY, l = 0. Work-item t scores keys t, t + HD, ... of the chunk (q . k scaled), then
 * owns output element t.
 * armt_attention_decode_combine: global (nh * ATTN_HD), local (ATTN_HD): out = sum_c e^(m_c - M) acc_c /
 * sum_c e^(m_c - M) l_c, M = max_c m_c, as fp32 into out and (outb != NULL) bf16 into outb, both at the
 * row's offsets.
 * With cnt != NULL (nh counters, zero before the launch) armt_attention_decode combines too, in one launch:
 * each work-group counts itself done on its head's counter after its part is written, and the head's last
 * one runs the combine's arithmetic (the same bits) and puts the counter back to zero. That needs a fence
 * that orders the part's writes before the count across work-groups (ARMT_GL_FENCE, common.cl: membar.gl on NVIDIA)
 * and reads of the part past any stale L1 line (volatile loads), which OpenCL 1.2 promises nowhere: the host
 * takes it on NVIDIA only (lib/device/tune.c, decode_fuse), the tests everywhere. */
#ifndef ATTN_DCHUNK
#define ATTN_DCHUNK 64 /* (lib/compute/ops.h: ARMT_ATTN_DCHUNK) */
#endif
#ifndef ATTN_DUNROLL
#define ATTN_DUNROLL 16 /* value loads in flight per work-item (a multiple of 4; a build option) */
#endif

/* Row stride, in floats, of a chunk's keys staged in local memory (armt_decode_stage): ATTN_HD + 4, so that
 * the float4 reads of eight work-items, each of its own key, fall in different banks. */
#define ATTN_DKS (ATTN_HD + 4)
/* -DATTN_DSTAGE_V=1 (a build option, off by default: not yet timed on a GPU): the chunk's values are staged
 * too (ATTN_HD floats a row), where both fit 40 KB of local memory (head dims up to 64); else the value loop
 * reads them from global memory. The bits do not depend on it. */
#ifndef ATTN_DSTAGE_V
#define ATTN_DSTAGE_V 0
#endif
#define ATTN_DSTAGE_VF (ATTN_DSTAGE_V && ATTN_DCHUNK * (ATTN_DKS + ATTN_HD) * 4 <= 40 * 1024)
/* float4 loads of keys (and of values, with ATTN_DSTAGE_VF) in flight per work-item while a chunk is staged
 * (a build option: a chunk of 64 keys of 64 channels is 16 float4s a work-item, so 16 stages it in one round
 * of loads instead of four; the bits do not depend on it) */
#ifndef ATTN_DSTAGE_U
#define ATTN_DSTAGE_U 4
#endif
/* the combine's acc loads in flight per work-item (chunks read at once; a build option, the sums' order and
 * so the bits do not depend on it) */
#ifndef ATTN_DCOMB_U
#define ATTN_DCOMB_U 8
#endif
#define ATTN_DVS (ATTN_DSTAGE_VF ? ATTN_DCHUNK * ATTN_HD : 4) /* floats of the values' local array */

/* A KV cache's elements: fp32, or (kvb = 1, a bf16 model's cache on tensor cores) bf16 as ushort at the same
 * element offsets. armt_kv_load4: elements e .. e + 3 (e % 4 == 0). */
inline float4 armt_kv_load4(__global const float *buf, const ulong e, const int kvb) {
    if (!kvb) return *(__global const float4 *)(buf + e);
    const uint2 w = *(__global const uint2 *)((__global const ushort *)buf + e);
    return (float4)(as_float(w.x << 16), as_float(w.x & 0xffff0000u), as_float(w.y << 16),
                    as_float(w.y & 0xffff0000u));
}
inline float armt_kv_load(__global const float *buf, const ulong e, const int kvb) {
    return kvb ? armt_from_bf16(((__global const ushort *)buf)[e]) : buf[e];
}

/* The visible keys of chunk c (lo .. hi of the row's cache: element (key, channel) of K at kb[base + key
 * kstride + channel], fp32 or bf16 by kvb; as armt_decode_chunk bounds them) into ks (ATTN_DCHUNK rows of
 * ATTN_DKS floats), and with ATTN_DSTAGE_VF their values (vb) into vs (ATTN_DCHUNK rows of ATTN_HD); rows of
 * keys the row does not see are not written. By the n work-items of the work-group (this one: lid), the loads
 * of ATTN_DSTAGE_U float4s of keys and as many of values in flight each. Consecutive work-items load consecutive float4s
 * of a row, so that a warp's loads are whole rows: the scores' loads, one key per work-item, took one cache
 * line per work-item per load, and the query heads of a KV head each read the keys and values again
 * (armt_rows_attention_decode). Every work-item calls it; the barrier after it is armt_decode_chunk's first. */
inline void armt_decode_stage(__global const float *kb, __global const float *vb, const ulong base,
                              const ulong kstride, const int lo, const int hi, const int c, __local float *ks,
                              __local float *vs, const int lid, const int n, const int kvb) {
    const int k0 = c * ATTN_DCHUNK, kmin = max(lo, k0), k1 = min(hi, k0 + ATTN_DCHUNK - 1);
    const int q4 = ATTN_HD / 4, cnt = (k1 - kmin + 1) * q4;
    for (int i0 = lid; i0 < cnt; i0 += ATTN_DSTAGE_U * n) {
        float4 kv[ATTN_DSTAGE_U], vv[ATTN_DSTAGE_U];
#pragma unroll
        for (int u = 0; u < ATTN_DSTAGE_U; u++) {
            const int i = i0 + u * n;
            const ulong e = base + (ulong)(kmin + i / q4) * kstride + 4 * (ulong)(i % q4);
            kv[u] = i < cnt ? armt_kv_load4(kb, e, kvb) : (float4)(0.0f);
            vv[u] = ATTN_DSTAGE_VF && i < cnt ? armt_kv_load4(vb, e, kvb) : (float4)(0.0f);
        }
#pragma unroll
        for (int u = 0; u < ATTN_DSTAGE_U; u++) {
            const int i = i0 + u * n, r = kmin + i / q4 - k0;
            if (i >= cnt) continue;
            ((__local float4 *)(ks + r * ATTN_DKS))[i % q4] = kv[u];
            if (ATTN_DSTAGE_VF) ((__local float4 *)(vs + r * ATTN_HD))[i % q4] = vv[u];
        }
    }
}

/* One (query head, chunk) of a decode row, work-item t of ATTN_HD (a work-group, or a sub-group of one: every
 * work-item of the work-group calls it, the barriers are the work-group's): keys lo .. hi of the row's cache
 * (chunk c's keys staged in ks and, with ATTN_DSTAGE_VF, its values in vs by armt_decode_stage; else the
 * values from vb at base + key kstride + channel, fp32 or bf16 by kvb) into pc = (m, l, acc[HD]). qs, ps,
 * red: this sub-group's local scratch (ATTN_HD, ATTN_DCHUNK, ATTN_HD floats). */
inline void armt_decode_chunk(__global const float *qh, const float scale, __local const float *ks,
                              __local const float *vs, __global const float *vb, const ulong base,
                              const ulong kstride, const int lo, const int hi, const int c,
                              __global float *pc, const int t, __local float *qs, __local float *ps,
                              __local float *red, const int kvb) {
    qs[t] = qh[t] * scale;
    barrier(CLK_LOCAL_MEM_FENCE); /* (also: the staged keys) */
    const int k0 = c * ATTN_DCHUNK, k1 = min(hi, k0 + ATTN_DCHUNK - 1);
    /* scores of the chunk's keys, -INFINITY outside what the row sees */
    float mloc = -INFINITY;
    for (int i = t; i < ATTN_DCHUNK; i += ATTN_HD) {
        const int kr = k0 + i;
        float s = -INFINITY;
        if (kr >= lo && kr <= k1) {
            __local const float4 *kp = (__local const float4 *)(ks + i * ATTN_DKS);
            float dot = 0.0f;
            for (int e = 0; e < ATTN_HD / 4; e++) {
                const float4 kv4 = kp[e];
                dot +=
                    qs[4 * e] * kv4.x + qs[4 * e + 1] * kv4.y + qs[4 * e + 2] * kv4.z + qs[4 * e + 3] * kv4.w;
            }
            s = dot;
        }
        ps[i] = s;
        mloc = fmax(mloc, s);
    }
    /* the chunk's largest score */
    red[t] = mloc;
    barrier(CLK_LOCAL_MEM_FENCE);
    for (int w = ATTN_HD / 2; w > 0; w >>= 1) {
        if (t < w) red[t] = fmax(red[t], red[t + w]);
        barrier(CLK_LOCAL_MEM_FENCE);
    }
    const float m = red[0];
    barrier(CLK_LOCAL_MEM_FENCE);
    /* (a chunk with nothing visible: every p is 0, and m stays -INFINITY for the combine to skip) */
    float lsum = 0.0f;
    for (int i = t; i < ATTN_DCHUNK; i += ATTN_HD) {
        const float p = ps[i] == -INFINITY ? 0.0f : exp(ps[i] - m);
        ps[i] = p;
        lsum += p;
    }
    red[t] = lsum;
    barrier(CLK_LOCAL_MEM_FENCE); /* (also: every p is in ps) */
    for (int w = ATTN_HD / 2; w > 0; w >>= 1) {
        if (t < w) red[t] += red[t + w];
        barrier(CLK_LOCAL_MEM_FENCE);
    }
    /* element t of sum p v over the chunk's visible keys (rows past them are not read: a KV cache's
     * unwritten rows) */
    const int kmin = max(lo, k0);
    float a4[4] = {0.0f, 0.0f, 0.0f, 0.0f}; /* four chains of sums */
    int kr = kmin;
    /* ATTN_DUNROLL loads in flight, then their sums; key kr + u goes to chain (kr + u - kmin) % 4 whatever
     * the unroll (a multiple of 4), so it does not change the bits */
#if ATTN_DSTAGE_VF
#define ATTN_DV(kr) vs[((kr)-k0) * ATTN_HD + t]
#else
#define ATTN_DV(kr) armt_kv_load(vb, base + (ulong)(kr)*kstride + t, kvb)
#endif
    for (; kr + ATTN_DUNROLL - 1 <= k1; kr += ATTN_DUNROLL) {
        float vv[ATTN_DUNROLL];
#pragma unroll
        for (int u = 0; u < ATTN_DUNROLL; u++)
            vv[u] = ATTN_DV(kr + u);
#pragma unroll
        for (int u = 0; u < ATTN_DUNROLL; u++)
            a4[u % 4] += ps[kr + u - k0] * vv[u];
    }
    for (; kr + 3 <= k1; kr += 4)
        for (int u = 0; u < 4; u++)
            a4[u] += ps[kr + u - k0] * ATTN_DV(kr + u);
    for (; kr <= k1; kr++)
        a4[0] += ps[kr - k0] * ATTN_DV(kr);
#undef ATTN_DV
    const float acc = (a4[0] + a4[1]) + (a4[2] + a4[3]);
    if (t == 0) {
        pc[0] = m;
        pc[1] = red[0];
    }
    pc[2 + t] = acc;
}

/* Element t of a head's output from its nch chunks p = (m, l, acc[HD]) each (see the kernel below); red,
 * cw, cl: local scratch of ATTN_HD floats each. Every work-item of the work-group calls it. */
inline float armt_decode_combine(volatile __global const float *p, const int nch, const int t,
                                 __local float *red, __local float *cw, __local float *cl) {
    /* The chunks' (m, l) are read in parallel (chunk c0 + t by work-item t) and their weights kept in local
     * memory, and each work-item's acc values are loaded ATTN_DCOMB_U (8) at a time before they are summed: a loop that
     * read m, then l and acc, chunk after chunk, was two memory latencies per chunk. The sums keep the chunk
     * order. */
    float M = -INFINITY;
    for (int c = t; c < nch; c += ATTN_HD)
        M = fmax(M, p[(ulong)c * (ATTN_HD + 2)]);
    red[t] = M;
    barrier(CLK_LOCAL_MEM_FENCE);
    for (int w = ATTN_HD / 2; w > 0; w >>= 1) {
        if (t < w) red[t] = fmax(red[t], red[t + w]);
        barrier(CLK_LOCAL_MEM_FENCE);
    }
    M = red[0];
    float L = 0.0f, acc = 0.0f;
    for (int c0 = 0; c0 < nch; c0 += ATTN_HD) {
        const int nb = min(ATTN_HD, nch - c0);
        if (t < nb) {
            volatile __global const float *pc = p + (ulong)(c0 + t) * (ATTN_HD + 2);
            const float mc = pc[0];
            cw[t] = mc == -INFINITY ? -1.0f : exp(mc - M); /* (-1: an empty chunk, skipped) */
            cl[t] = pc[1];
        }
        barrier(CLK_LOCAL_MEM_FENCE);
        for (int i0 = 0; i0 < nb; i0 += ATTN_DCOMB_U) {
            float a[ATTN_DCOMB_U];
#pragma unroll
            for (int u = 0; u < ATTN_DCOMB_U; u++)
                a[u] = i0 + u < nb ? p[(ulong)(c0 + i0 + u) * (ATTN_HD + 2) + 2 + t] : 0.0f;
#pragma unroll
            for (int u = 0; u < ATTN_DCOMB_U; u++) {
                const int i = i0 + u;
                if (i >= nb || cw[i] < 0.0f) continue;
                L += cw[i] * cl[i];
                acc += cw[i] * a[u];
            }
        }
        barrier(CLK_LOCAL_MEM_FENCE);
    }
    return acc / L;
}

__kernel __attribute__((reqd_work_group_size(ATTN_HD, 1, 1))) void
armt_attention_decode(__global const float *q, __global const float *k, __global const float *v,
                      __global float *part, const int nh, const int nkv, const float scale,
                      const ulong kv_off, const int Tk, const int q0, WIN_ARGS, const int kvb,
                      __global float *out, __global ushort *outb, __global uint *cnt) {
    __local float qs[ATTN_HD];
    __local float ps[ATTN_DCHUNK];
    __local float red[ATTN_HD], cw[ATTN_HD], cl[ATTN_HD];
    __local int last_one;
    __local float4 ks[ATTN_DCHUNK * ATTN_DKS / 4], vs[ATTN_DVS / 4];
    const int t = get_local_id(0), c = get_group_id(0), h = get_group_id(1), nch = get_num_groups(0);
    const int kvh = h / (nh / nkv);
    const ulong kstride = (ulong)nkv * ATTN_HD;
    const ulong base = kv_off + (ulong)kvh * ATTN_HD;
    const int kfirst = win > 0 ? win - armt_attn_cached(0, win, win_first, j_first) : 0;
    const int lo = max(kfirst, armt_attn_lo(q0, 0, 1, -1, 1, win, win_first, j_first, ns, nmem));
    const int hi = min(Tk - 1, armt_attention_limit(0, 0, 1, q0, 0, -1, 1));
    armt_decode_stage(k, v, base, kstride, lo, hi, c, (__local float *)ks, (__local float *)vs, t, ATTN_HD,
                      kvb);
    armt_decode_chunk(q + (ulong)h * ATTN_HD, scale, (__local const float *)ks, (__local const float *)vs, v,
                      base, kstride, lo, hi, c, part + ((ulong)h * nch + c) * (ATTN_HD + 2), t, qs, ps, red,
                      kvb);
    if (!cnt) return;
    /* the fused combine (see the top): the head's last work-group to finish */
    if (!armt_last_group(cnt + h, (uint)nch, &last_one)) return;
    const float o = armt_decode_combine(part + (ulong)h * nch * (ATTN_HD + 2), nch, t, red, cw, cl);
    const ulong at = (ulong)h * ATTN_HD + t;
    out[at] = o;
    if (outb) outb[at] = armt_to_bf16(o);
    if (t == 0) cnt[h] = 0u; /* (every work-group of the head has counted) */
}

__kernel __attribute__((reqd_work_group_size(ATTN_HD, 1, 1))) void
armt_attention_decode_combine(__global const float *part, __global float *out, __global ushort *outb,
                              const int nch) {
    __local float red[ATTN_HD], cw[ATTN_HD], cl[ATTN_HD];
    const int t = get_local_id(0), h = get_group_id(0);
    const float o = armt_decode_combine(part + (ulong)h * nch * (ATTN_HD + 2), nch, t, red, cw, cl);
    const ulong at = (ulong)h * ATTN_HD + t;
    out[at] = o;
    if (outb) outb[at] = armt_to_bf16(o);
}
