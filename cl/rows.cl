/*
 * rows.cl - kernels over rows of several documents at once (batch generation, lib/compute/generate_batch.c).
 * Built into the memory program, after dpfp.cl (armt_read_den) and memory.cl.
 *
 * A rows step holds rows of several documents one after another (a generation's tail, or one new token per
 * document); rt (rows, 2) int gives each row's document slot and position. Each document's state in the
 * batch sits at its slot: z (slots, n_layers, dk), written (slots, n_layers), KV caches (slots, n_layers,
 * per, kvd), fp32 or (a bf16 model on tensor cores) bf16 as ushort at the same element offsets. The arithmetic
 * of every kernel is that of its one-document counterpart, row by row.
 */

/* The RoPE table of the step's rows: out row r = tab row (position of row r); the GEMM epilogue and
 * armt_rope then take row r at "position" r. Global (hd, rows). */
__kernel void armt_rows_rope_table(__global const float *tab, __global const int *rt, __global float *out,
                                   const int hd, const int rows) {
    const int c = get_global_id(0), r = get_global_id(1);
    if (c >= hd || r >= rows) return;
    out[(ulong)r * hd + c] = tab[(ulong)rt[2 * r + 1] * hd + c];
}

/* The rows' keys and values (rows, kvd) into their documents' KV caches of layer l: row r at cache row
 * win + position (the first win rows of a cache hold the sliding window). Global (kvd, rows). */
__kernel void armt_rows_kv_append(__global const float *k, __global const float *v, __global float *kc,
                                  __global float *vc, __global const int *rt, const int kvd, const int rows,
                                  const int l, const int n_layers, const int per, const int win,
                                  const int kvb) {
    const int c = get_global_id(0), r = get_global_id(1);
    if (c >= kvd || r >= rows) return;
    const ulong dst = (((ulong)rt[2 * r] * n_layers + l) * per + (ulong)(win + rt[2 * r + 1])) * kvd + c;
    const float xk = k[(ulong)r * kvd + c], xv = v[(ulong)r * kvd + c];
    if (kvb) { /* (bf16 caches: ushort at the same element offsets) */
        ((__global ushort *)kc)[dst] = armt_to_bf16(xk);
        ((__global ushort *)vc)[dst] = armt_to_bf16(xv);
    } else {
        kc[dst] = xk;
        vc[dst] = xv;
    }
}

/* n floats of src from element src_off into a bf16 KV cache (ushort at the same element offsets) from
 * element dst_off, rounded as the k and v projections' bf16 epilogue rounds: a window, or rows of keys and
 * values the projections wrote in fp32. Global (n). */
__kernel void armt_kv_to_bf16(__global const float *src, const ulong src_off, __global ushort *dst,
                              const ulong dst_off, const ulong n) {
    const ulong i = get_global_id(0);
    if (i < n) dst[dst_off + i] = armt_to_bf16(src[src_off + i]);
}

/* armt_mem_read per row: x[r] += num[r] / (phi[r] . z[slot][l] + 1e-5) where the document's layer l has
 * written. x, num: (rows, d); phi: (rows, dk). Global (ARMT_ROW_WG, rows). */
__kernel void armt_rows_mem_read(__global float *x, __global const float *num, __global const float *phi,
                                 __global const float *z, __global const int *written, const int dk,
                                 const int d, const int dkh, const int dvh, const int no_denom,
                                 __global const int *rt, const int l, const int n_layers) {
    __local float scratch[ARMT_ROW_WG];
    const int lid = get_local_id(0), r = get_group_id(1);
    const ulong sl = (ulong)rt[2 * r] * n_layers + l;
    const int wr = written[sl];
    __global const float *pr = phi + (ulong)r * dk;
    __global float *xr = x + (ulong)r * d;
    __global const float *nr = num + (ulong)r * d;
    for (int h = 0; h * dkh < dk; h++) {
        const float den =
            no_denom ? 1.0f : armt_read_den(pr + (ulong)h * dkh, z + sl * dk + (ulong)h * dkh, dkh, scratch);
        if (wr)
            for (int c = h * dvh + lid; c < (h + 1) * dvh; c += ARMT_ROW_WG)
                xr[c] += nr[c] / den;
    }
}

/* armt_mem_read_scale per row (the fused read): scale[r] = 1 / (phi[r] . z[slot][l] + 1e-5), 0 where the
 * document's layer l has not written. Global (ARMT_ROW_WG, rows). */
__kernel void armt_rows_mem_read_scale(__global float *scale, __global const float *phi,
                                       __global const float *z, __global const int *written, const int dk,
                                       const int no_denom, __global const int *rt, const int l,
                                       const int n_layers) {
    __local float scratch[ARMT_ROW_WG];
    const int lid = get_local_id(0), r = get_group_id(1);
    const ulong sl = (ulong)rt[2 * r] * n_layers + l;
    const float den = no_denom ? 1.0f : armt_read_den(phi + (ulong)r * dk, z + sl * dk, dk, scratch);
    if (lid == 0) scale[r] = written[sl] ? 1.0f / den : 0.0f;
}

/* Cells given by a table instead of a step's geometry (armt_forward_batch: the cells of every document in
 * one launch), CELL_TAB ulongs per cell: its rows' element offset in x (its residual slot), in h (its
 * temporaries), its layer, its memory rows' offset in mrows, its valid rows (T, or fewer for a partial
 * segment). */
#define CELL_TAB 5

/* armt_rmsnorm (norm.cl) over the cells of a table: cell e reads rows from x + its slot, writes y + its
 * temporaries' offset (or yb at the same element offset, as bf16), with the weight of its layer. The
 * arithmetic is armt_rmsnorm's, row for row. Global (ARMT_ROW_WG, T, cells). */
__kernel void armt_cells_rmsnorm(__global const float *x, __global float *y, __global const float *w,
                                 const ulong w_off, const int d, const float eps, __global const ulong *tab,
                                 __global ushort *yb) {
    __local float scratch[ARMT_ROW_WG];
    const int lid = get_local_id(0), r = get_group_id(1), e = get_group_id(2);
    __global const float *xr = x + tab[CELL_TAB * e] + (ulong)r * d;
    __global float *yr = y + tab[CELL_TAB * e + 1] + (ulong)r * d;
    __global const float *wl = w + w_off + tab[CELL_TAB * e + 2] * (ulong)d;
    const int vec = d % 4 == 0 && d <= 16 * ARMT_ROW_WG, n4 = d / 4;
    float4 v[4];
    float ss = 0.0f;
    if (vec) {
#pragma unroll
        for (int u = 0; u < 4; u++) {
            const int c4 = lid + u * ARMT_ROW_WG;
            v[u] = (float4)(0.0f);
            if (c4 < n4) v[u] = vload4(c4, xr);
            ss += dot(v[u], v[u]);
        }
    } else {
        for (int c = lid; c < d; c += ARMT_ROW_WG)
            ss += xr[c] * xr[c];
    }
    ss = armt_wg_sum(ss, scratch);
    const float inv = 1.0f / sqrt(ss / (float)d + eps);
    __global ushort *br = yb + tab[CELL_TAB * e + 1] + (ulong)r * d; /* (used only when yb is set) */
    if (vec) {
#pragma unroll
        for (int u = 0; u < 4; u++) {
            const int c4 = lid + u * ARMT_ROW_WG;
            if (c4 >= n4) continue;
            const float4 o = v[u] * inv * vload4(c4, wl);
            if (yb)
                vstore4((ushort4)(armt_to_bf16(o.x), armt_to_bf16(o.y), armt_to_bf16(o.z), armt_to_bf16(o.w)),
                        c4, br);
            else
                vstore4(o, c4, yr);
        }
    } else if (yb) {
        for (int c = lid; c < d; c += ARMT_ROW_WG)
            br[c] = armt_to_bf16(xr[c] * inv * wl[c]);
    } else {
        for (int c = lid; c < d; c += ARMT_ROW_WG)
            yr[c] = xr[c] * inv * wl[c];
    }
}

/* armt_mem_gather over the cells of a table: the last M of each cell's valid rows into its memory rows.
 * Global (d, M, cells). */
__kernel void armt_cells_mem_gather(__global const float *x, __global float *mrows, const int M, const int d,
                                    __global const ulong *tab) {
    const int c = get_global_id(0), r = get_global_id(1), e = get_global_id(2);
    if (c >= d) return;
    const ulong row = tab[CELL_TAB * e + 4] - (ulong)M + (ulong)r;
    mrows[tab[CELL_TAB * e + 3] + (ulong)r * d + c] = x[tab[CELL_TAB * e] + row * d + c];
}

/* A split-k GEMM's slices summed in order into C (lib/compute/gemm.c; the batch's decode rounds,
 * generate_batch.c): entry e's slice s is the rows x n block at P + p_off + s p_slice + e rows n, its C block
 * at C + c_off + e c_stride with row stride ldc (the step wraps as the GEMM kernels' do):
 * C = (beta ? C : 0) + ((P_0 + P_1) + ...). The launch's last entry leaves its rows below last_row0
 * untouched (unneeded, and their slices may be unwritten). global (n, rows, entries). */
__kernel void armt_rows_splitk_sum(__global const float *P, const ulong p_off, const ulong p_slice,
                                   __global float *C, const ulong c_off, const ulong c_stride, const int ldc,
                                   const int n, const int rows, const int S, const int beta,
                                   const int last_row0) {
    const int c = get_global_id(0), r = get_global_id(1), e = get_global_id(2);
    if (c >= n || r >= rows || (r < last_row0 && e == get_global_size(2) - 1)) return;
    const ulong at = p_off + ((ulong)e * (ulong)rows + (ulong)r) * (ulong)n + (ulong)c;
    float sum = P[at];
    for (int s = 1; s < S; s++)
        sum += P[at + (ulong)s * p_slice];
    __global float *o = C + (c_off + (ulong)e * c_stride + (ulong)r * (ulong)ldc + (ulong)c);
    *o = beta ? *o + sum : sum;
}

/* Argmax pieces: (value, id) pairs, id < 0 for none; the larger value wins, the lower id among equal ones. */
inline void armt_argmax_take(float *bv, int *bi, const float v, const int i) {
    if (i >= 0 && (*bi < 0 || v > *bv || (v == *bv && i < *bi))) {
        *bv = v;
        *bi = i;
    }
}

/* The work-group's best pair (every item brings its own; sv, si: ARMT_ROW_WG each), into item 0's. */
inline void armt_argmax_wg(float *bv, int *bi, __local float *sv, __local int *si) {
    const int lid = get_local_id(0);
    sv[lid] = *bv;
    si[lid] = *bi;
    barrier(CLK_LOCAL_MEM_FENCE);
    for (int s = ARMT_ROW_WG / 2; s > 0; s >>= 1) {
        if (lid < s) {
            float v = sv[lid];
            int i = si[lid];
            armt_argmax_take(&v, &i, sv[lid + s], si[lid + s]);
            sv[lid] = v;
            si[lid] = i;
        }
        barrier(CLK_LOCAL_MEM_FENCE);
    }
    *bv = sv[0];
    *bi = si[0];
    barrier(CLK_LOCAL_MEM_FENCE);
}

/* The first largest non-NaN logit of ids [lo, hi) of a row (lr) by the work-group: four loads in flight
 * per item, then compared in id order (the same choice as one at a time: one load at a time was a memory
 * latency per 256 logits, 30 us for 128,256 on an H100) */
inline void armt_argmax_range(__global const float *lr, const int lo, const int hi, float *bv, int *bi,
                              __local float *sv, __local int *si) {
    const int lid = get_local_id(0);
    *bv = -INFINITY;
    *bi = -1;
    for (int i0 = lo + lid; i0 < hi; i0 += 4 * ARMT_ROW_WG) {
        float x[4];
#pragma unroll
        for (int u = 0; u < 4; u++) {
            const int i = i0 + u * ARMT_ROW_WG;
            x[u] = i < hi ? lr[i] : NAN;
        }
#pragma unroll
        for (int u = 0; u < 4; u++)
            if (!isnan(x[u]) && (*bi < 0 || x[u] > *bv)) {
                *bv = x[u];
                *bi = i0 + u * ARMT_ROW_WG;
            }
    }
    armt_argmax_wg(bv, bi, sv, si);
}

/* The greedy token of each of `rows` rows of logits (rows, V): the largest logit, the lowest id among equal
 * ones (armt_generate's choice: a NaN never wins, but one at id 0 is never replaced). One work-group
 * (ARMT_ROW_WG items) per row: global (ARMT_ROW_WG, rows). */
__kernel void armt_rows_argmax(__global const float *logits, const int V, __global int *out) {
    __local float sv[ARMT_ROW_WG];
    __local int si[ARMT_ROW_WG];
    const int r = get_group_id(1);
    __global const float *lr = logits + (ulong)r * V;
    float bv;
    int bi;
    armt_argmax_range(lr, 0, V, &bv, &bi, sv, si);
    if (get_local_id(0) == 0) out[r] = isnan(lr[0]) || bi < 0 ? 0 : bi;
}

/* The same choice by P work-groups a row (a vocabulary of 128,256 is 30 us for one work-group on an H100):
 * armt_rows_argmax_part, global (ARMT_ROW_WG P, rows): work-group p takes ids [p C, (p + 1) C), C =
 * ceil(V / P), its best pair into part[r P + p] (value bits, id). With cnt (one counter a row, zero before
 * the launch) the row's last work-group to finish also picks from the row's P pairs into out[r] and puts the
 * counter back (the fence as in armt_attention_decode: NVIDIA only, tune.decode_fuse); else
 * armt_rows_argmax_final does, global (ARMT_ROW_WG, rows). */
inline void armt_argmax_pairs(volatile __global const uint2 *pr, const int P, __global const float *lr,
                              __global int *out, __local float *sv, __local int *si) {
    float bv = -INFINITY;
    int bi = -1;
    for (int p = get_local_id(0); p < P; p += ARMT_ROW_WG) {
        const uint2 q = pr[p];
        armt_argmax_take(&bv, &bi, as_float(q.x), (int)q.y);
    }
    armt_argmax_wg(&bv, &bi, sv, si);
    if (get_local_id(0) == 0) *out = isnan(lr[0]) || bi < 0 ? 0 : bi;
}

__kernel void armt_rows_argmax_part(__global const float *logits, const int V, __global uint2 *part,
                                    __global uint *cnt, __global int *out) {
    __local float sv[ARMT_ROW_WG];
    __local int si[ARMT_ROW_WG];
    __local int last_one;
    const int p = get_group_id(0), P = get_num_groups(0), r = get_group_id(1);
    const int C = (V + P - 1) / P;
    __global const float *lr = logits + (ulong)r * V;
    float bv;
    int bi;
    armt_argmax_range(lr, min(p * C, V), min((p + 1) * C, V), &bv, &bi, sv, si);
    __global uint2 *pr = part + (ulong)r * P;
    if (get_local_id(0) == 0) pr[p] = (uint2)(as_uint(bv), (uint)bi);
    if (!cnt || !armt_last_group(cnt + r, (uint)P, &last_one)) return;
    armt_argmax_pairs(pr, P, lr, out + r, sv, si);
    if (get_local_id(0) == 0) cnt[r] = 0u;
}

__kernel void armt_rows_argmax_final(__global const float *logits, const int V, __global const uint2 *part,
                                     const int P, __global int *out) {
    __local float sv[ARMT_ROW_WG];
    __local int si[ARMT_ROW_WG];
    const int r = get_group_id(1);
    armt_argmax_pairs(part + (ulong)r * P, P, logits + (ulong)r * V, out + r, sv, si);
}
