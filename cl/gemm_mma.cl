/*
 * gemm_mma.cl - the tensor-core GEMM's main loop: the work-group's tile, the loads of one stage (cp.async
 * for bf16 rows, registers for fp32 A), and the two pipelines: mma.sync with ldmatrix fragments, or Hopper
 * wgmma straight from the local tiles.
 */
/* The GEMM of both mma entries (inlined into each with abf constant: 0 = fp32 A staged through registers and
 * rounded there, 1 = bf16 A copied like W). Pipeline over k-tiles t (STAGES local-memory slots; slot of tile
 * t = t % STAGES; barrier B_t at the end of tile t):
 *   - cp.async loads of tile t + STAGES - 1 are issued at the start of tile t, into the slot tile t - 1 used
 *     (free: every fragment of tile t - 1 was read into registers before B_{t-1});
 *   - register-staged loads (fp32 A) for tile t + STAGES - 1 were issued one k-tile earlier and are stored
 *     just before B_t, and those for the tile after are issued;
 *   - mma.sync: each k16 step reads its fragments with ldmatrix, then issues its mma; wgmma: see its loop.
 * cp.async.wait_group STAGES - 2 before B_t leaves tile t + 1 complete (one group is committed per tile,
 * empty ones too, so the count is uniform). */
/* A work-group's tile of an entry: (column tile, row tile) = (group 0, group 1) as launched (MMA_RASTER 0),
 * or (MMA_RASTER 1) from the work-group's place in the launch order (dimension 0 fastest), row tiles fastest:
 * work-groups that run together then share column tiles (weights) instead of row tiles. */
inline int armt_mma_row_tile(void) {
#if MMA_RASTER
    return (int)((get_group_id(0) + get_group_id(1) * get_num_groups(0)) % get_num_groups(1));
#else
    return (int)get_group_id(1);
#endif
}
inline int armt_mma_col_tile(void) {
#if MMA_RASTER
    return (int)((get_group_id(0) + get_group_id(1) * get_num_groups(0)) / get_num_groups(1));
#else
    return (int)get_group_id(0);
#endif
}

inline __attribute__((always_inline)) void
armt_mma_gemm(const int m, const int n, const int k, __global const float *Af, __global const ushort *Ab,
              const int lda, __global const ushort *W, __global float *C, const int ldc, const int beta,
              const ulong a_off, const ulong w_off, const ulong c_off, const int abf,
              __global const float *Gt, __global ushort *Cb, __global const ushort *W2, const ulong w2_shift,
              __global ushort *Cb2, __global const float *rope, const int rope_hd, const int rope_T,
              const int rope_pos0, __global const float *rowscale, const int ldw,
              __local uint *smem MMA_EMU_PARAM) {
    const int tid = get_local_id(0), lane = tid & 31, warp = tid >> 5;
    const int dual = MMA_DUAL_OK && W2 != 0;
    /* dual: a tile covers BN/2 output columns (gate and up of each) */
    const int col0 = armt_mma_col_tile() * (dual ? MMA_BN / 2 : MMA_BN), row0 = armt_mma_row_tile() * MMA_BM;
#if MMA_WGMMA
    const int wm0 = (warp >> 2) * MMA_WG_ROWS + (warp & 3) * 16,
              wn0 = 0; /* the accumulator layout at MMA_MT */
#else
    const int wm0 = (warp / MMA_WARPS_N) * MMA_WM, wn0 = (warp % MMA_WARPS_N) * MMA_WN;
#endif
#if !ARMT_MMA_EMULATE
    const uint sbase = armt_mma_smem_base(smem);
#endif
    /* chunk loads (W, bf16 A) */
    const int ch_c = tid % MMA_CHUNKS, ch_r = tid / MMA_CHUNKS;
    __global const ushort *w_ptr =
        W + w_off + (ulong)(col0 + ch_r) * ldw + ch_c * 8; /* (W's rows: ldw apart) */
    /* the upper half of the W tile: W2 in the dual mode, else W's next BN/2 rows (see MMA_ISSUE_CP) */
    __global const ushort *w_hi = dual ? W2 + w_off + w2_shift + (ulong)(col0 + ch_r) * ldw + ch_c * 8
                                       : w_ptr + (ulong)(MMA_BN / 2) * ldw;
    const int w_hi_rows = dual ? MMA_BN / 2 : 0;
    __global const ushort *ab_ptr = W; /* set below (bf16 A only) */
    __global const float *af_ptr = 0;  /* set below (fp32 A only) */
    const int af_q = tid % MMA_AF_F4, af_r = tid / MMA_AF_F4;
    if (abf)
        ab_ptr = Ab + a_off + (ulong)(row0 + ch_r) * lda + ch_c * 8;
    else
        af_ptr = Af + a_off + (ulong)(row0 + af_r) * lda + af_q * 4;

    float4 ra[MMA_AF_ITERS]; /* fp32 A of the next tile to store */

    /* -- cp.async part of tile kt (k0 = kt * BK) into slot sl -- */
#define MMA_ISSUE_CP(kt, sl)                                                                           \
    do {                                                                                               \
        const int k0_ = (kt)*MMA_BK, kin_ = k0_ + ch_c * 8 < k;                                        \
        const uint sb_ = (uint)(sl)*MMA_STAGE_BYTES;                                                   \
        _Pragma("unroll") for (int it = 0; it < MMA_W_ITERS; it++) {                                   \
            const int r_ = ch_r + it * MMA_CH_RSTEP;                                                   \
            if (MMA_BN % MMA_CH_RSTEP == 0 || r_ < MMA_BN) {                                           \
                /* rows BN/2.. of the tile (it >= W_ITERS/2) start at w_hi: W's row col0 + BN/2, \
                 * or in the dual mode W2's row col0 (bound shifted by w_hi_rows) */     \
                const int hi_ = MMA_DUAL_OK && it >= MMA_W_ITERS / 2;                                  \
                const int ok_ = kin_ && col0 + r_ - (hi_ ? w_hi_rows : 0) < n;                         \
                __global const ushort *src_ =                                                          \
                    hi_ ? w_hi + (ulong)((it - MMA_W_ITERS / 2) * MMA_CH_RSTEP) * ldw + k0_            \
                        : w_ptr + (ulong)(it * MMA_CH_RSTEP) * ldw + k0_;                              \
                MMA_CP16(sb_ + MMA_A_BYTES + MMA_OFF(r_, ch_c), ok_ ? src_ : W, ok_ ? 16 : 0);         \
            }                                                                                          \
        }                                                                                              \
        if (abf) {                                                                                     \
            _Pragma("unroll") for (int it = 0; it < MMA_AB_ITERS; it++) {                              \
                const int r_ = ch_r + it * MMA_CH_RSTEP;                                               \
                if (MMA_BM % MMA_CH_RSTEP == 0 || r_ < MMA_BM) {                                       \
                    const int ok_ = kin_ && row0 + r_ < m;                                             \
                    MMA_CP16(sb_ + MMA_OFF(r_, ch_c),                                                  \
                             ok_ ? ab_ptr + (ulong)(it * MMA_CH_RSTEP) * lda + k0_ : W, ok_ ? 16 : 0); \
                }                                                                                      \
            }                                                                                          \
        }                                                                                              \
    } while (0)

    /* -- register-staged part of tile kt: global -> registers -- */
#define MMA_LOAD_AF(kt)                                                                                \
    do {                                                                                               \
        const int k0_ = (kt)*MMA_BK, kin_ = k0_ + af_q * 4 < k;                                        \
        _Pragma("unroll") for (int it = 0; it < MMA_AF_ITERS; it++) {                                  \
            const int r_ = af_r + it * MMA_AF_RSTEP;                                                   \
            const int ok_ = kin_ && (MMA_BM % MMA_AF_RSTEP == 0 || r_ < MMA_BM) && row0 + r_ < m;      \
            ra[it] = ok_ ? *(__global const float4 *)(af_ptr + (ulong)(it * MMA_AF_RSTEP) * lda + k0_) \
                         : (float4)(0.0f);                                                             \
        }                                                                                              \
    } while (0)
#define MMA_LOAD_REGS(kt)          \
    do {                           \
        if (!abf) MMA_LOAD_AF(kt); \
    } while (0)

    /* -- registers -> slot sl -- */
#define MMA_STORE_AF(sb)                                                                               \
    do {                                                                                               \
        _Pragma("unroll") for (int it = 0; it < MMA_AF_ITERS; it++) {                                  \
            const int r_ = af_r + it * MMA_AF_RSTEP;                                                   \
            if (MMA_BM % MMA_AF_RSTEP == 0 || r_ < MMA_BM) {                                           \
                const uint off_ = (sb) + MMA_OFF(r_, af_q >> 1) + (af_q & 1) * 8;                      \
                *(__local uint2 *)((__local uchar *)smem + off_) =                                     \
                    (uint2)(armt_mma_bf16x2(ra[it].x, ra[it].y), armt_mma_bf16x2(ra[it].z, ra[it].w)); \
            }                                                                                          \
        }                                                                                              \
    } while (0)
#define MMA_STORE_REGS(sl)                                  \
    do {                                                    \
        if (!abf) MMA_STORE_AF((uint)(sl)*MMA_STAGE_BYTES); \
    } while (0)

    /* -- fragments of step ks of the tile in slot sl -> fa, fb -- */
    /* A, 16 x 16 per x4: lanes 0-15 address rows 0-15 at chunk 2ks, lanes 16-31 the same rows at chunk 2ks+1
     * -> matrices (rows 0-7, k 0-7), (rows 8-15, k 0-7), (rows 0-7, k 8-15), (rows 8-15, k 8-15) = a0..a3.
     * W, two n8 tiles per x4: lane l addresses W row (l & 7) + 8 * (l >> 4) at chunk 2ks + ((l >> 3) & 1) ->
     * matrices (n 0-7, k 0-7), (n 0-7, k 8-15), (n 8-15, k 0-7), (n 8-15, k 8-15) = b0, b1 of tile 2p, then
     * of tile 2p+1 (W rows are B columns: no .trans) */
#define MMA_FRAGS(fa, fb, sl, ks)                                                                          \
    do {                                                                                                   \
        const uint sb_ = (uint)(sl)*MMA_STAGE_BYTES;                                                       \
        _Pragma("unroll") for (int i = 0; i < MMA_MT; i++) {                                               \
            const int r = wm0 + i * 16 + (lane & 15);                                                      \
            MMA_LDSM_X4(fa[i][0], fa[i][1], fa[i][2], fa[i][3], sb_ + MMA_OFF(r, 2 * (ks) + (lane >> 4))); \
        }                                                                                                  \
        _Pragma("unroll") for (int p = 0; p < MMA_NT / 2; p++) {                                           \
            const int r = wn0 + p * 16 + (lane & 7) + ((lane >> 4) << 3);                                  \
            MMA_LDSM_X4(fb[2 * p][0], fb[2 * p][1], fb[2 * p + 1][0], fb[2 * p + 1][1],                    \
                        sb_ + MMA_A_BYTES + MMA_OFF(r, 2 * (ks) + ((lane >> 3) & 1)));                     \
        }                                                                                                  \
    } while (0)

    float acc[MMA_MT][MMA_NT][4];
#pragma unroll
    for (int i = 0; i < MMA_MT; i++)
#pragma unroll
        for (int q = 0; q < MMA_NT; q++)
#pragma unroll
            for (int e = 0; e < 4; e++)
                acc[i][q][e] = 0.0f;

    const int ktiles = (k + MMA_BK - 1) / MMA_BK;
    /* what the epilogue reads, to prefetch into L2 at k-tile pf_t (MMA_PF_C) */
    __global const float *pf = !MMA_PF_C || dual ? 0
                               : Gt              ? Gt + c_off
                               : beta            ? (__global const float *)C + c_off
                                                 : 0;
    const int pf_t = ktiles > MMA_PF_DIST ? ktiles - MMA_PF_DIST : 0;
#define MMA_PF_AT(t)                                                                               \
    do {                                                                                           \
        if (MMA_PF_C && pf && (t) == pf_t) armt_mma_prefetch_tile(pf, ldc, m, n, row0, col0, tid); \
    } while (0)
    /* prologue: tiles 0 .. STAGES-2 into slots 0 .. STAGES-2; registers then hold tile STAGES-1 */
#pragma unroll
    for (int s = 0; s < MMA_STAGES - 1; s++) {
        if (s < ktiles) {
            MMA_ISSUE_CP(s, s);
            MMA_LOAD_REGS(s);
            MMA_STORE_REGS(s);
        }
        MMA_CP_COMMIT();
    }
    if (MMA_STAGES - 1 < ktiles) MMA_LOAD_REGS(MMA_STAGES - 1);
    MMA_CP_WAIT(MMA_PENDING0);
    MMA_PROXY_FENCE();
    barrier(CLK_LOCAL_MEM_FENCE);

#if MMA_WGMMA
    /* this warpgroup's rows of the A tile */
    const uint wg_a = (uint)(warp >> 2) * (MMA_WG_ROWS * MMA_ROWB);
    /* Half mode (MMA_HALF_OK, gemm_mma_warp.cl), a row tile with at most 64 rows inside m (the cells' last
     * row tile when their rows are one past a multiple of 128: a sink row, 1153 = 9 x 128 + 1): both
     * warpgroups multiply the tile's first 64 rows, warpgroup g the W rows 128 g .. + 127, with m64n128k16
     * into acc[0][0 .. NT/2 - 1]; after the loop warpgroup 1 hands its columns to warpgroup 0 (acc[0][NT/2
     * ..]), whose accumulators then hold the whole tile's valid rows exactly as in the full mode (every
     * element sums the same k16 products in the same order), and the epilogue is unchanged (warpgroup 1's
     * rows lie past m). Half the tensor work of such a tile; the condition is the same for the whole
     * work-group, so the wgmma stay in one non-divergent pipeline. */
    const int halfm = MMA_HALF_OK && row0 + 64 >= m;
    const uint wg_bh = (uint)(warp >> 2) * (uint)(MMA_BN / 2 * MMA_ROWB);
#define MMA_WG_ISSUE(sa)                                                                               \
    do {                                                                                               \
        MMA_WG_FENCE();                                                                                \
        if (halfm) {                                                                                   \
            _Pragma("unroll") for (int ks = 0; ks < MMA_KS; ks++) MMA_WGMMA_OP_HALF(                   \
                acc[0], (sa) + (uint)(ks * 32), (sa) + wg_bh + (uint)(MMA_A_BYTES + ks * 32));         \
        } else {                                                                                       \
            _Pragma("unroll") for (int ks = 0; ks < MMA_KS; ks++)                                      \
                _Pragma("unroll") for (int i = 0; i < MMA_MT; i++)                                     \
                    _Pragma("unroll") for (int nc = 0; nc < MMA_BN / MMA_WG_N; nc++)                   \
                        MMA_WGMMA_OP(acc[i] + nc * (MMA_WG_N / 8),                                     \
                                     (sa) + wg_a + (uint)(i * 64 * MMA_ROWB + ks * 32),                \
                                     (sa) + (uint)(MMA_A_BYTES + nc * MMA_WG_N * MMA_ROWB + ks * 32)); \
        }                                                                                              \
        MMA_WG_COMMIT();                                                                               \
    } while (0)
#endif

#if MMA_WGMMA
    /* Tile t: issue its wgmma group on slot rd; wait until tile t - 1's group is done (tile t's stays in
     * flight) and tile t + 1 has landed; fence, barrier. After the barrier no warp reads slot wr (tile t -
     * 1's) any more: the loads of tile t + STAGES - 1 go there, while tile t's wgmma still runs. */
    int rd = 0, wr = MMA_STAGES - 1;
    for (int t = 0; t < ktiles; t++) {
        const int nt = t + MMA_STAGES - 1;
        const int rd_next = rd + 1 == MMA_STAGES ? 0 : rd + 1;
        MMA_WG_ISSUE((uint)rd * MMA_STAGE_BYTES);
        MMA_PF_AT(t);
        MMA_WG_WAIT1();
        MMA_CP_WAIT(MMA_PENDING);
        MMA_PROXY_FENCE();
        barrier(CLK_LOCAL_MEM_FENCE);
        if (nt < ktiles) {
            MMA_ISSUE_CP(nt, wr);
            MMA_STORE_REGS(wr);
            if (nt + 1 < ktiles) MMA_LOAD_REGS(nt + 1);
        }
        MMA_CP_COMMIT();
        wr = rd;
        rd = rd_next;
    }
    MMA_WG_WAIT0();
#if MMA_HALF_OK
    if (halfm) {
        /* warpgroup 1's columns (its acc[0][0 .. NT/2 - 1]) to the same thread of warpgroup 0 (acc[0][NT/2
         * ..]), through the tiles' local memory (every wgmma has completed: no one reads it any more) */
        __local float *xs = (__local float *)smem;
        const int slot = (warp & 3) * 32 + lane;
        barrier(CLK_LOCAL_MEM_FENCE);
        if (warp >= 4)
#pragma unroll
            for (int q = 0; q < MMA_NT / 2; q++)
#pragma unroll
                for (int e = 0; e < 4; e++)
                    xs[(q * 4 + e) * 128 + slot] = acc[0][q][e];
        barrier(CLK_LOCAL_MEM_FENCE);
        if (warp < 4)
#pragma unroll
            for (int q = 0; q < MMA_NT / 2; q++)
#pragma unroll
                for (int e = 0; e < 4; e++)
                    acc[0][MMA_NT / 2 + q][e] = xs[(q * 4 + e) * 128 + slot];
    }
#endif
#else

    uint fa[MMA_MT][4], fb[MMA_NT][2];
    int rd = 0, wr = MMA_STAGES - 1; /* slot of tile t, slot of tile t + STAGES - 1 (= slot of tile t - 1) */
    for (int t = 0; t < ktiles; t++) {
        const int nt = t + MMA_STAGES - 1;
        const int rd_next = rd + 1 == MMA_STAGES ? 0 : rd + 1;
        if (nt < ktiles) MMA_ISSUE_CP(nt, wr);
        MMA_CP_COMMIT();
        MMA_PF_AT(t);
#pragma unroll
        for (int ks = 0; ks < MMA_KS; ks++) {
            MMA_FRAGS(fa, fb, rd, ks);
            if (ks + 1 == MMA_KS) {
                /* every fragment of this tile is in registers: after the barrier its slot may be refilled */
                if (nt < ktiles) {
                    MMA_STORE_REGS(wr);
                    if (nt + 1 < ktiles) MMA_LOAD_REGS(nt + 1);
                }
                MMA_CP_WAIT(MMA_PENDING);
                barrier(CLK_LOCAL_MEM_FENCE);
            }
#pragma unroll
            for (int i = 0; i < MMA_MT; i++)
#pragma unroll
                for (int q = 0; q < MMA_NT; q++)
                    MMA_MMA(acc[i][q], fa[i], fb[q]);
        }
        wr = rd;
        rd = rd_next;
    }
#endif

    armt_mma_epilogue(acc, m, n, row0, col0, wm0, wn0, lane, C, ldc, beta, c_off, Gt, Cb, Cb2, dual, rope,
                      rope_hd, rope_T, rope_pos0, rowscale, rowscale ? a_off / (ulong)lda : 0);
}
