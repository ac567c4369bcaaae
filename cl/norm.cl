/*
 * norm.cl - RMSNorm: y = x / sqrt(mean(x^2) + eps) * w.
 */

/* Per cell of a step: x is the residual stream (slot-addressed), y is (cell, T, d), w is [layers, d].
 * yb not NULL (bf16 models on tensor cores): the result goes to yb as bf16 instead of y (the GEMMs that
 * read it take bf16). One work-group (ARMT_ROW_WG) per (row, cell): global (ARMT_ROW_WG, T, G). */
__kernel void armt_rmsnorm(__global const float *x, __global float *y, __global const float *w,
                           const ulong w_off, const int d, const float eps, CELL_ARGS, __global ushort *yb) {
    __local float scratch[ARMT_ROW_WG];
    const int lid = get_local_id(0), r = get_group_id(1), j = get_group_id(2);
    __global const float *xr = x + ((ulong)CELL_SLOT(j) * T + r) * (ulong)d;
    __global float *yr = y + ((ulong)j * T + r) * (ulong)d;
    __global const float *wl = w + w_off + (ulong)CELL_LAYER(j) * (ulong)d;
    /* rows of up to 16 ARMT_ROW_WG floats (d % 4 == 0) stay in registers: one read of x, vector loads and
     * stores (the barrier of the sum stays outside the branches) */
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
    __global ushort *br = yb + ((ulong)j * T + r) * (ulong)d; /* (used only when yb is set) */
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

/* Plain rows: y[r] = rmsnorm(x[x_off + r*d]) for r < rows. Global (ARMT_ROW_WG, rows). */
__kernel void armt_rmsnorm_rows(__global const float *x, const ulong x_off, __global float *y,
                                const ulong y_off, __global const float *w, const ulong w_off, const int d,
                                const float eps) {
    __local float scratch[ARMT_ROW_WG];
    const int lid = get_local_id(0), r = get_group_id(1);
    __global const float *xr = x + x_off + (ulong)r * (ulong)d;
    __global float *yr = y + y_off + (ulong)r * (ulong)d;
    float ss = 0.0f;
    for (int c = lid; c < d; c += ARMT_ROW_WG)
        ss += xr[c] * xr[c];
    ss = armt_wg_sum(ss, scratch);
    const float inv = 1.0f / sqrt(ss / (float)d + eps);
    for (int c = lid; c < d; c += ARMT_ROW_WG)
        yr[c] = xr[c] * inv * w[w_off + c];
}
