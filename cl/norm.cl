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
    float ss = 0.0f;
    for (int c = lid; c < d; c += ARMT_ROW_WG) ss += xr[c] * xr[c];
    ss = armt_wg_sum(ss, scratch);
    const float inv = 1.0f / sqrt(ss / (float)d + eps);
    if (yb) {
        __global ushort *br = yb + ((ulong)j * T + r) * (ulong)d;
        for (int c = lid; c < d; c += ARMT_ROW_WG) br[c] = armt_to_bf16(xr[c] * inv * wl[c]);
    } else {
        for (int c = lid; c < d; c += ARMT_ROW_WG) yr[c] = xr[c] * inv * wl[c];
    }
}

/* Plain rows: y[r] = rmsnorm(x[x_off + r*d]) for r < rows. Global (ARMT_ROW_WG, rows). */
__kernel void armt_rmsnorm_rows(__global const float *x, const ulong x_off, __global float *y,
                                const ulong y_off, __global const float *w, const ulong w_off,
                                const int d, const float eps) {
    __local float scratch[ARMT_ROW_WG];
    const int lid = get_local_id(0), r = get_group_id(1);
    __global const float *xr = x + x_off + (ulong)r * (ulong)d;
    __global float *yr = y + y_off + (ulong)r * (ulong)d;
    float ss = 0.0f;
    for (int c = lid; c < d; c += ARMT_ROW_WG) ss += xr[c] * xr[c];
    ss = armt_wg_sum(ss, scratch);
    const float inv = 1.0f / sqrt(ss / (float)d + eps);
    for (int c = lid; c < d; c += ARMT_ROW_WG) yr[c] = xr[c] * inv * w[w_off + c];
}
