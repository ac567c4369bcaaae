/*
 * memory.cl - each layer's associative memory (docs/MATH.md section 3): DPFP features, the read, and the
 * pieces of the delta-rule write that are not GEMMs. State: w_mem [layers, dk, d], z [layers, dk],
 * written [layers] (a layer that has not written yet treats its segment as the first one: no read,
 * Vprev = 0, gamma = 1).
 */

/* DPFP features of rows (armt_dpfp_feature, dpfp.cl). in: (rows, dm), out: (rows, 6*dm). Global (6*dm, rows). */
__kernel void armt_dpfp(__global const float *in, __global float *out, const int dm, const int dh) {
    const int o = get_global_id(0), row = get_global_id(1);
    const int dk = 6 * dm;
    if (o >= dk) return;
    out[(ulong)row * dk + o] = armt_dpfp_feature(in + (ulong)row * dm, o, dh);
}

/* The amt and armt variants: each head's features L2-normalised, phi / max(|phi|, 1e-12) (torch's
 * F.normalize). phi: (rows, dk), heads of dkh features. Global (ARMT_ROW_WG, rows). */
__kernel void armt_phi_normalize(__global float *phi, const int dk, const int dkh) {
    __local float scratch[ARMT_ROW_WG];
    armt_phi_normalize_row(phi + (ulong)get_group_id(1) * dk, dk, dkh, scratch);
}

/* Read: x[r] += num[r] / (phi[r] . z[l] + 1e-5) for cells whose layer has written, per memory head (head h:
 * features [h*dkh, (h+1)*dkh), channels [h*dvh, (h+1)*dvh)); no_denom: x[r] += num[r].
 * num: (G, T, d), phi: (G, T, dk). Global (ARMT_ROW_WG, T, G). */
__kernel void armt_mem_read(__global float *x, __global const float *num, __global const float *phi,
                            __global const float *z, __global const int *written, const int dk, const int d,
                            const int dkh, const int dvh, const int no_denom, CELL_ARGS) {
    __local float scratch[ARMT_ROW_WG];
    const int lid = get_local_id(0), r = get_group_id(1), j = get_group_id(2);
    const int l = CELL_LAYER(j);
    const int wr = written[l]; /* no early return: every work-item must reach the barriers */
    __global const float *pr = phi + ((ulong)j * T + r) * (ulong)dk;
    __global float *xr = x + ((ulong)CELL_SLOT(j) * T + r) * (ulong)d;
    __global const float *nr = num + ((ulong)j * T + r) * (ulong)d;
    for (int h = 0; h * dkh < dk; h++) {
        const float den =
            no_denom ? 1.0f
                     : armt_read_den(pr + (ulong)h * dkh, z + (ulong)l * dk + (ulong)h * dkh, dkh, scratch);
        if (wr)
            for (int c = h * dvh + lid; c < (h + 1) * dvh; c += ARMT_ROW_WG)
                xr[c] += nr[c] / den;
    }
}

/* The read's row scales for the fused form (bf16 models on tensor cores, one memory head, where the GEMM's
 * epilogue adds scale[r] * (phi W_mem)[r] to x): scale[r] = 1 / (phi[r] . z[l] + 1e-5) (1 with no_denom), or
 * 0 where the layer has not written. scale: (G, T). Global (ARMT_ROW_WG, T, G). */
__kernel void armt_mem_read_scale(__global float *scale, __global const float *phi, __global const float *z,
                                  __global const int *written, const int dk, const int no_denom, CELL_ARGS) {
    __local float scratch[ARMT_ROW_WG];
    const int lid = get_local_id(0), r = get_group_id(1), j = get_group_id(2);
    const int l = CELL_LAYER(j);
    const float den =
        no_denom ? 1.0f : armt_read_den(phi + ((ulong)j * T + r) * (ulong)dk, z + (ulong)l * dk, dk, scratch);
    if (lid == 0) scale[(ulong)j * T + r] = written[l] ? 1.0f / den : 0.0f;
}

/* Generation's one-row steps: armt_dpfp_read_scale_row (dpfp.cl) in a launch of its own.
 * Global (ARMT_ROW_WG), local (ARMT_ROW_WG). */
__kernel void armt_dpfp_read_scale(__global float *mq, __global float *phi, __global const float *z,
                                   __global const int *written, const int dm, const int dh, const int dkh,
                                   const int normalized, const int no_denom, const int l) {
    __local float scratch[ARMT_ROW_WG];
    armt_dpfp_read_scale_row(mq, phi, z, written, dm, dh, dkh, normalized, no_denom, l, scratch);
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

/* Per memory row and head h (features [h*dkh, (h+1)*dkh)): den = phi(k).z[l] + 1e-5 (1 with no_denom),
 * gamma = clip(1 - den / (|phi(k)|^2 + 1e-5), 0, 1) in the paper; the normalised variants (normalized = 1)
 * divide by |phi(k)|^2 alone (gamma = 0 where phi(k) = 0, the reference's 1 - den / 0 clipped); gamma = 1
 * without correction or for a first write; beta = sigmoid(m . wmb[l][h] + bmb[l][h]) (nb = H rows of W_mb
 * per layer; with gating the betas are per channel and computed apart: beta = 0 here).
 * wstat (G, M, H, 4) = (den, gamma, beta, written). Global (ARMT_ROW_WG, M, G). */
__kernel void armt_mem_write_prep(__global const float *phi, __global const float *mrows,
                                  __global const float *z, __global const int *written,
                                  __global const float *wmb, const ulong wmb_off, __global const float *bmb,
                                  const ulong bmb_off, __global float *wstat, const int M, const int dk,
                                  const int d, const int l0, const int correction, const int dkh,
                                  const int normalized, const int no_denom, const int gating) {
    __local float scratch[ARMT_ROW_WG];
    const int lid = get_local_id(0), r = get_group_id(1), j = get_group_id(2);
    const int l = l0 + j, H = dk / dkh;
    const int wr = written[l];
    __global const float *mr = mrows + ((ulong)j * M + r) * (ulong)d;
    for (int h = 0; h < H; h++) {
        __global const float *kr = phi + ((ulong)j * M + r) * (ulong)dk + (ulong)h * dkh;
        __global const float *zl = z + (ulong)l * dk + (ulong)h * dkh;
        float kz = 0.0f, kk = 0.0f;
        for (int c = lid; c < dkh; c += ARMT_ROW_WG) {
            kz += kr[c] * zl[c];
            kk += kr[c] * kr[c];
        }
        kz = armt_wg_sum(kz, scratch);
        kk = armt_wg_sum(kk, scratch);
        float mb = 0.0f;
        if (!gating) {
            __global const float *wb = wmb + wmb_off + ((ulong)l * H + h) * d;
            for (int c = lid; c < d; c += ARMT_ROW_WG)
                mb += mr[c] * wb[c];
            mb = armt_wg_sum(mb, scratch);
        }
        if (lid == 0) {
            const float den = no_denom ? 1.0f : kz + 1e-5f;
            float gamma = 1.0f;
            if (wr && correction && !no_denom) {
                if (!normalized)
                    gamma = clamp(1.0f - den / (kk + 1e-5f), 0.0f, 1.0f);
                else
                    gamma = kk > 0.0f ? clamp(1.0f - den / kk, 0.0f, 1.0f) : 0.0f;
            }
            const float beta = gating ? 0.0f : 1.0f / (1.0f + exp(-(mb + bmb[bmb_off + (ulong)l * H + h])));
            __global float *ws = wstat + (((ulong)j * M + r) * H + h) * 4;
            ws[0] = den;
            ws[1] = gamma;
            ws[2] = beta;
            ws[3] = (float)wr;
        }
    }
}

/* delta = beta * (vnew - vprev / den), or beta * vnew for a first write; in place in vnew. Channel c belongs
 * to head c / dvh. With gating, beta = sigmoid(mb[c] + bmb[l][c]) per channel, mb (G, M, d) the W_mb
 * products. Global (d, M, G). */
__kernel void armt_mem_delta(__global float *vnew, __global const float *vprev, __global const float *wstat,
                             const int M, const int d, const int dvh, const int gating,
                             __global const float *mb, __global const float *bmb, const ulong bmb_off,
                             const int l0) {
    const int c = get_global_id(0), r = get_global_id(1), j = get_global_id(2);
    if (c >= d) return;
    const int H = d / dvh;
    __global const float *ws = wstat + (((ulong)j * M + r) * H + c / dvh) * 4;
    const ulong i = ((ulong)j * M + r) * (ulong)d + c;
    const float prev = ws[3] != 0.0f ? vprev[i] / ws[0] : 0.0f;
    const float beta =
        gating ? 1.0f / (1.0f + exp(-(mb[i] + bmb[bmb_off + (ulong)(l0 + j) * d + c]))) : ws[2];
    vnew[i] = beta * (vnew[i] - prev);
}

/* z[l] += sum_r gamma_r phi(k_r) (gamma of the feature's head), then mark the layer written. With no_denom
 * z stays zero and only the mark is set. Global (dk, G). */
__kernel void armt_mem_z_update(__global float *z, __global int *written, __global const float *phi,
                                __global const float *wstat, const int M, const int dk, const int l0,
                                const int dkh, const int no_denom) {
    const int c = get_global_id(0), j = get_global_id(1);
    if (c >= dk) return;
    const int l = l0 + j, H = dk / dkh, h = c / dkh;
    if (!no_denom) {
        float s = 0.0f;
        for (int r = 0; r < M; r++)
            s += wstat[(((ulong)j * M + r) * H + h) * 4 + 1] * phi[((ulong)j * M + r) * (ulong)dk + c];
        z[(ulong)l * dk + c] += s;
    }
    if (c == 0) written[l] = 1;
}

/* Several memory heads: W_mem[l] is kept as one (dk, d) matrix whose off-diagonal blocks (features of head
 * h, channels of another head) are zero, so one product serves every head; the update phi^T delta fills
 * those blocks, and this puts them back to zero. Global (d, dk, G). */
__kernel void armt_mem_block_mask(__global float *w, const int dk, const int d, const int dkh, const int dvh,
                                  const int l0) {
    const int c = get_global_id(0), k = get_global_id(1), j = get_global_id(2);
    if (c >= d || k >= dk) return;
    if (k / dkh != c / dvh) w[((ulong)(l0 + j) * dk + k) * (ulong)d + c] = 0.0f;
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
