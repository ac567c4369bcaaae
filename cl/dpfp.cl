/*
 * dpfp.cl - one row's DPFP features and the read's row scale (docs/MATH.md section 3), shared by the memory
 * program (memory.cl, rows.cl) and the GEMM program (gemv_bf16.cl: generation's W_mq product with the row
 * scale in the launch's last work-group). The work-group helpers sum over ARMT_ROW_WG lanes in armt_wg_sum's
 * order whatever the work-group's size (armt_lanes_sum, common.cl): the same bits in a row-wise kernel's
 * work-group and in the GEMV's.
 */

/* DPFP, nu = 3, per memory head (H heads of dh = dm / H projections; one head in the paper): with x the
 * head's projections, x' = [relu(x), relu(-x)] (2*dh); phi_h[(p-1)*2dh + i] = x'[i] * x'[(i - p) mod 2dh],
 * head h's features at [h*6dh, (h+1)*6dh). Feature o of a row's DPFP (in_row: the row's dm projections), for
 * projections in global memory and (the _v form) for projections other work-groups wrote, read past any
 * stale cache line. */
#define ARMT_DPFP_FEATURE_FN(NAME, PTR)                                        \
    inline float NAME(PTR in_row, const int o, const int dh) {                 \
        const int n2 = 2 * dh, dkh = 3 * n2;                                   \
        const int h = o / dkh, oh = o % dkh;                                   \
        const int p = oh / n2 + 1, i = oh % n2;                                \
        const int i2 = (i - p + n2) % n2;                                      \
        PTR x = in_row + (ulong)h * dh;                                        \
        const float a = i < dh ? fmax(x[i], 0.0f) : fmax(-x[i - dh], 0.0f);    \
        const float b = i2 < dh ? fmax(x[i2], 0.0f) : fmax(-x[i2 - dh], 0.0f); \
        return a * b;                                                          \
    }
ARMT_DPFP_FEATURE_FN(armt_dpfp_feature, __global const float *)
ARMT_DPFP_FEATURE_FN(armt_dpfp_feature_v, volatile __global const float *)
#undef ARMT_DPFP_FEATURE_FN

/* A row's features L2-normalised per head (armt_phi_normalize's work-group). scratch: ARMT_ROW_WG floats. */
inline void armt_phi_normalize_row(__global float *pr, const int dk, const int dkh, __local float *scratch) {
    const int lid = get_local_id(0), wg = get_local_size(0);
    for (int h0 = 0; h0 < dk; h0 += dkh) {
        for (int ln = lid; ln < ARMT_ROW_WG; ln += wg) {
            float ss = 0.0f;
            for (int c = h0 + ln; c < h0 + dkh; c += ARMT_ROW_WG)
                ss += pr[c] * pr[c];
            scratch[ln] = ss;
        }
        const float n = fmax(sqrt(armt_lanes_sum(scratch)), 1e-12f);
        for (int ln = lid; ln < ARMT_ROW_WG; ln += wg)
            for (int c = h0 + ln; c < h0 + dkh; c += ARMT_ROW_WG)
                pr[c] = pr[c] / n;
    }
}

/* The read's denominator of one row, phi . z + 1e-5, summed over ARMT_ROW_WG lanes as armt_wg_sum sums.
 * scratch: ARMT_ROW_WG floats. */
inline float armt_read_den(__global const float *phi_row, __global const float *zl, const int dk,
                           __local float *scratch) {
    const int lid = get_local_id(0), wg = get_local_size(0);
    for (int ln = lid; ln < ARMT_ROW_WG; ln += wg) {
        float s = 0.0f;
        for (int c = ln; c < dk; c += ARMT_ROW_WG)
            s += phi_row[c] * zl[c];
        scratch[ln] = s;
    }
    return armt_lanes_sum(scratch) + 1e-5f;
}

/* Generation's one-row read (one cell, one row, layer l): armt_dpfp, armt_phi_normalize (normalized) and
 * armt_mem_read_scale of that row, each with its own kernel's arithmetic (the same bits): phi (1, 6 dm) from
 * mq's row, then the row scale 1 / (phi . z[l] + 1e-5) (1 with no_denom; 0 before the layer's first write)
 * into mq[0], after every item has read mq. scratch: ARMT_ROW_WG floats. */
inline void armt_dpfp_read_scale_row(volatile __global float *mq, __global float *phi,
                                     __global const float *z, __global const int *written, const int dm,
                                     const int dh, const int dkh, const int normalized, const int no_denom,
                                     const int l, __local float *scratch) {
    const int lid = get_local_id(0), dk = 6 * dm;
    for (int o = lid; o < dk; o += get_local_size(0))
        phi[o] = armt_dpfp_feature_v(mq, o, dh);
    barrier(CLK_GLOBAL_MEM_FENCE | CLK_LOCAL_MEM_FENCE);
    if (normalized) {
        armt_phi_normalize_row(phi, dk, dkh, scratch);
        barrier(CLK_GLOBAL_MEM_FENCE | CLK_LOCAL_MEM_FENCE);
    }
    const float den = no_denom ? 1.0f : armt_read_den(phi, z + (ulong)l * dk, dk, scratch);
    if (lid == 0) mq[0] = written[l] ? 1.0f / den : 0.0f;
}
