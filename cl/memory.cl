/*
 * memory.cl - each layer's associative memory (docs/MATH.md section 3): DPFP features, the read, and the
 * pieces of the delta-rule write that are not GEMMs. State: w_mem [layers, dk, d], z [layers, dk],
 * written [layers] (a layer that has not written yet treats its segment as the first one: no read,
 * Vprev = 0, gamma = 1).
 */

/* DPFP, nu = 3: x' = [relu(x), relu(-x)] (2*dm); phi[(p-1)*2dm + i] = x'[i] * x'[(i - p) mod 2dm].
 * in: (rows, dm), out: (rows, 6*dm). Global (6*dm, rows). */
__kernel void armt_dpfp(__global const float *in, __global float *out, const int dm) {
    const int o = get_global_id(0), row = get_global_id(1);
    const int n2 = 2 * dm, dk = 3 * n2;
    if (o >= dk) return;
    const int p = o / n2 + 1, i = o % n2;
    const int i2 = (i - p + n2) % n2;
    __global const float *x = in + (ulong)row * dm;
    const float a = i < dm ? fmax(x[i], 0.0f) : fmax(-x[i - dm], 0.0f);
    const float b = i2 < dm ? fmax(x[i2], 0.0f) : fmax(-x[i2 - dm], 0.0f);
    out[(ulong)row * dk + o] = a * b;
}

/* The read's denominator of one row, phi . z + 1e-5, summed by the work-group (ARMT_ROW_WG items). */
inline float armt_read_den(__global const float *phi_row, __global const float *zl, const int dk,
                           __local float *scratch) {
    float s = 0.0f;
    for (int c = get_local_id(0); c < dk; c += ARMT_ROW_WG)
        s += phi_row[c] * zl[c];
    return armt_wg_sum(s, scratch) + 1e-5f;
}

/* Read: x[r] += num[r] / (phi[r] . z[l] + 1e-5) for cells whose layer has written.
 * num: (G, T, d), phi: (G, T, dk). Global (ARMT_ROW_WG, T, G). */
__kernel void armt_mem_read(__global float *x, __global const float *num, __global const float *phi,
                            __global const float *z, __global const int *written, const int dk, const int d,
                            CELL_ARGS) {
    __local float scratch[ARMT_ROW_WG];
    const int lid = get_local_id(0), r = get_group_id(1), j = get_group_id(2);
    const int l = CELL_LAYER(j);
    const int wr = written[l]; /* no early return: every work-item must reach the barriers */
    const float den = armt_read_den(phi + ((ulong)j * T + r) * (ulong)dk, z + (ulong)l * dk, dk, scratch);
    __global float *xr = x + ((ulong)CELL_SLOT(j) * T + r) * (ulong)d;
    __global const float *nr = num + ((ulong)j * T + r) * (ulong)d;
    if (wr)
        for (int c = lid; c < d; c += ARMT_ROW_WG)
            xr[c] += nr[c] / den;
}

/* The read's row scales for the fused form (bf16 models on tensor cores, where the GEMM's epilogue adds
 * scale[r] * (phi W_mem)[r] to x): scale[r] = 1 / (phi[r] . z[l] + 1e-5), or 0 where the layer has not
 * written. scale: (G, T). Global (ARMT_ROW_WG, T, G). */
__kernel void armt_mem_read_scale(__global float *scale, __global const float *phi, __global const float *z,
                                  __global const int *written, const int dk, CELL_ARGS) {
    __local float scratch[ARMT_ROW_WG];
    const int lid = get_local_id(0), r = get_group_id(1), j = get_group_id(2);
    const int l = CELL_LAYER(j);
    const float den = armt_read_den(phi + ((ulong)j * T + r) * (ulong)dk, z + (ulong)l * dk, dk, scratch);
    if (lid == 0) scale[(ulong)j * T + r] = written[l] ? 1.0f / den : 0.0f;
}

/* The M memory-token rows of each cell (the last M of its valid rows): mrows (G, M, d).
 * Global (d, M, G). */
__kernel void armt_mem_gather(__global const float *x, __global float *mrows, const int M, const int d,
                              CELL_ARGS) {
    const int c = get_global_id(0), r = get_global_id(1), j = get_global_id(2);
    if (c >= d) return;
    const int row = CELL_ROWS(j) - M + r;
    mrows[((ulong)j * M + r) * (ulong)d + c] = x[((ulong)CELL_SLOT(j) * T + row) * (ulong)d + c];
}

/* Per memory row: den = phi(k).z[l] + 1e-5, gamma = clip(1 - den / (|phi(k)|^2 + 1e-5), 0, 1) (1 without
 * correction or for a first write), beta = sigmoid(m . wmb[l] + bmb[l]). wstat (G, M, 4) = (den, gamma,
 * beta, written). Global (ARMT_ROW_WG, M, G). */
__kernel void armt_mem_write_prep(__global const float *phi, __global const float *mrows,
                                  __global const float *z, __global const int *written,
                                  __global const float *wmb, const ulong wmb_off, __global const float *bmb,
                                  const ulong bmb_off, __global float *wstat, const int M, const int dk,
                                  const int d, const int l0, const int correction) {
    __local float scratch[ARMT_ROW_WG];
    const int lid = get_local_id(0), r = get_group_id(1), j = get_group_id(2);
    const int l = l0 + j;
    const int wr = written[l];
    __global const float *kr = phi + ((ulong)j * M + r) * (ulong)dk;
    __global const float *zl = z + (ulong)l * dk;
    float kz = 0.0f, kk = 0.0f;
    for (int c = lid; c < dk; c += ARMT_ROW_WG) {
        kz += kr[c] * zl[c];
        kk += kr[c] * kr[c];
    }
    kz = armt_wg_sum(kz, scratch);
    kk = armt_wg_sum(kk, scratch);
    __global const float *mr = mrows + ((ulong)j * M + r) * (ulong)d;
    __global const float *wb = wmb + wmb_off + (ulong)l * d;
    float mb = 0.0f;
    for (int c = lid; c < d; c += ARMT_ROW_WG)
        mb += mr[c] * wb[c];
    mb = armt_wg_sum(mb, scratch);
    if (lid == 0) {
        const float den = kz + 1e-5f;
        float gamma = 1.0f;
        if (wr && correction) gamma = clamp(1.0f - den / (kk + 1e-5f), 0.0f, 1.0f);
        const float beta = 1.0f / (1.0f + exp(-(mb + bmb[bmb_off + l])));
        __global float *ws = wstat + ((ulong)j * M + r) * 4;
        ws[0] = den;
        ws[1] = gamma;
        ws[2] = beta;
        ws[3] = (float)wr;
    }
}

/* delta = beta * (vnew - vprev / den), or beta * vnew for a first write; in place in vnew.
 * Global (d, M, G). */
__kernel void armt_mem_delta(__global float *vnew, __global const float *vprev, __global const float *wstat,
                             const int M, const int d) {
    const int c = get_global_id(0), r = get_global_id(1), j = get_global_id(2);
    if (c >= d) return;
    __global const float *ws = wstat + ((ulong)j * M + r) * 4;
    const ulong i = ((ulong)j * M + r) * (ulong)d + c;
    const float prev = ws[3] != 0.0f ? vprev[i] / ws[0] : 0.0f;
    vnew[i] = ws[2] * (vnew[i] - prev);
}

/* z[l] += sum_r gamma_r phi(k_r), then mark the layer written. Global (dk, G). */
__kernel void armt_mem_z_update(__global float *z, __global int *written, __global const float *phi,
                                __global const float *wstat, const int M, const int dk, const int l0) {
    const int c = get_global_id(0), j = get_global_id(1);
    if (c >= dk) return;
    const int l = l0 + j;
    float s = 0.0f;
    for (int r = 0; r < M; r++)
        s += wstat[((ulong)j * M + r) * 4 + 1] * phi[((ulong)j * M + r) * (ulong)dk + c];
    z[(ulong)l * dk + c] += s;
    if (c == 0) written[l] = 1;
}

/* bf16 copy of W_mem for the bf16 read products (the GEMM's W operand is (n, k) = (d, dk) bf16):
 * wt[l][c][k] = bf16(w[l][k][c]) for layers l0 .. l0 + G - 1, through a 32 x 32 local tile so that both the
 * reads and the writes are coalesced (kseg = ldt = dk, pat = 0).
 * Also the transposed operands of the memory update (phi and delta of each cell: l0 = 0, dk = M), split
 * into bf16 high and low parts: row c of wt[l] (ldt long) is ldt / kseg segments of kseg columns, segment s
 * holding hi(x) = bf16(x) or, where bit s of pat is set, lo(x) = bf16(x - hi(x)); columns [dk, kseg) of each
 * segment are zeros. wt[l] starts at t_off + l * ldt * d. Global (ceil(d/32)*256, ceil(kseg/32), G),
 * local (256). */
__kernel __attribute__((reqd_work_group_size(256, 1, 1))) void
armt_mem_bf16_t(__global const float *w, __global ushort *wt, const int dk, const int d, const int l0,
                const int kseg, const int ldt, const ulong t_off, const int pat) {
    __local float tile[32][33];
    const int tx = get_local_id(0) % 32, ty = get_local_id(0) / 32;
    const int c0 = get_group_id(0) * 32, k0 = get_group_id(1) * 32;
    const ulong base = (ulong)(l0 + get_group_id(2)) * dk * d,
                tbase = t_off + (ulong)(l0 + get_group_id(2)) * ldt * d;
    for (int i = ty; i < 32; i += 8) {
        const int kk = k0 + i, c = c0 + tx;
        tile[i][tx] = kk < dk && c < d ? w[base + (ulong)kk * d + c] : 0.0f;
    }
    barrier(CLK_LOCAL_MEM_FENCE);
    for (int i = ty; i < 32; i += 8) {
        const int c = c0 + i, kk = k0 + tx;
        if (c >= d || kk >= kseg) continue;
        const float v = tile[tx][i];
        const ushort hi = armt_to_bf16(v), lo = armt_to_bf16(v - armt_from_bf16(hi));
        for (int s = 0; s * kseg < ldt; s++)
            wt[tbase + (ulong)c * ldt + s * kseg + kk] = (pat >> s) & 1 ? lo : hi;
    }
}
