/*
 * gemm_tf32.cl - fp32 GEMMs on NVIDIA tensor cores at fp32 accuracy ("3xTF32"), for fp32 weights: the GEMM
 * door's op (gemm_bf16.cl's contract: batched entries at per-entry offsets, beta, last_row0) with fp32 W and
 * either operand transposed. Built after common.cl, mma.cl, gemm_args.h and gemm_bf16.cl.
 *
 *   C_j (m x n) = A_j W_j^T (+ C_j when beta = 1), j < count (global size dimension 2)
 *   A_j  m x k at A + a_off(j), row stride lda; trans_a = 1: stored k x m (A_j^T row-major), row stride lda
 *   W_j  n x k at W + w_off(j), row stride ldw; w_kn = 1: stored k x n, row stride ldw
 *   C_j  m x n at C + c_off(j), row stride ldc: every element written once, nothing else touched; with
 *        beta = 0 never read
 *
 * The split: every operand element x becomes two TF32 numbers (fp32's 8-bit exponent, 10 explicit mantissa
 * bits), hi = tf32(x) and lo = tf32(x - hi), each rounded to nearest with ties away from zero (cvt.rna;
 * x - hi is exact in fp32), so that hi + lo is x to within 2^-22 |x|. Per k8 step each 16 x 8 tile takes
 * three mma.sync TF32 products into fp32 accumulators: a_hi b_hi into the main ones, a_lo b_hi and a_hi b_lo
 * into accumulators of their own, added to the main ones at the end (TF32_ORDER below); a_lo b_lo, about
 * 2^-22 of a product, is left out. The tensor cores multiply TF32 exactly and add in fp32, so the error is
 * that of an fp32 GEMM; the measurements are in docs/DESIGN.md (the GEMM door).
 *
 * Tiles: a work-group computes TF_BM x TF_BN of C with TF_WARPS_M x TF_WARPS_N warps, each a TF_BM/TF_WARPS_M
 * x TF_BN/TF_WARPS_N block of m16 x n8 mma tiles, k in steps of TF_BK through TF_STAGES local-memory stages
 * filled by cp.async in 16-byte pieces (the pieces at the matrix's edges read what lies inside and zero-fill
 * the rest). A tile keeps the layout its operand has in global memory: along k (tile row r at r * (TF_BK + 4)
 * floats), or along the rows (k row kk at kk * (TF_BM + 8) or kk * (TF_BN + 8) floats); either padding puts
 * a warp's fragment reads on 32 different banks. Each lane reads its fragment elements one float at a time
 * and splits them in registers.
 *     local size  = (TF_THREADS, 1, 1) = (32 TF_WARPS_M TF_WARPS_N, 1, 1)
 *     global size = (ceil(n / TF_BN) TF_THREADS, ceil(m / TF_BM), count)
 *     Requirements (the host checks them; the kernel does not): lda, ldw, every a_off and every w_off
 *     multiples of 4 (16-byte aligned pieces). m, n, k, ldc and c_off are arbitrary.
 * ARMT_MMA_EMULATE=1 (tests): mma.cl's OpenCL C stand-ins. TF32_PRODUCTS=1 (tests): a_hi b_hi alone, i.e. a
 * plain TF32 GEMM, to show what the split buys.
 */
#ifndef TF_BM
#define TF_BM 128 /* rows of C per work-group */
#endif
#ifndef TF_BN
#define TF_BN 128 /* columns of C per work-group */
#endif
#ifndef TF_BK
#define TF_BK 16 /* k per stage: a multiple of 8 */
#endif
#ifndef TF_WARPS_M
#define TF_WARPS_M 2 /* warps along m */
#endif
#ifndef TF_WARPS_N
#define TF_WARPS_N 4 /* warps along n */
#endif
#ifndef TF_STAGES
#define TF_STAGES 2 /* local-memory stages (2..4): cp.async runs TF_STAGES - 1 k-tiles ahead */
#endif
#ifndef TF32_PRODUCTS
#define TF32_PRODUCTS 3 /* 3: 3xTF32; 1: a_hi b_hi alone (plain TF32; tests) */
#endif
#ifndef TF32_ORDER
/* Where the split's small products go (docs/DESIGN.md, the GEMM door, has the errors of each):
 * 2: into accumulators of their own, added to the main ones at the end (twice the accumulator registers);
 *    the main accumulators then take as many roundings as an fp32 GEMM's: as accurate as CLBlast.
 * 0: into the main accumulators, before a_hi b_hi; 1: after it. Three times the roundings: about twice
 *    CLBlast's error.
 * 3: summed apart per k8 step (four registers) and added after a_hi b_hi: close to 2. */
#define TF32_ORDER 2
#endif
#ifndef TF_SPLIT
/* 1 (with TF32_ORDER 2): each k8 step's a_hi b_hi into four registers zeroed for it, added to the main
 * accumulators by an fp32 add, so that the tensor cores' own accumulation (which on an H100 left 3xTF32
 * 2.7 times CLBlast's rms error at k = 384, and up to 11.8 times at k = 8192 in the wgmma kernel, TW_SPLIT)
 * covers eight terms and round-to-nearest adds the rest. 0: straight into the main accumulators. */
#define TF_SPLIT 1
#endif

#define TF_THREADS (32 * TF_WARPS_M * TF_WARPS_N)
#define TF_WM      (TF_BM / TF_WARPS_M) /* warp tile rows */
#define TF_WN      (TF_BN / TF_WARPS_N) /* warp tile columns */
#define TF_MT      (TF_WM / 16)         /* m16 tiles per warp */
#define TF_NT      (TF_WN / 8)          /* n8 tiles per warp */
#define TF_KS      (TF_BK / 8)          /* k8 steps per stage */
#if TF_BM % TF_WARPS_M || TF_BN % TF_WARPS_N || TF_WM % 16 || TF_WN % 8 || TF_BK % 8
#error "TF32 GEMM tiles: warp tiles of whole m16 x n8 tiles, TF_BK a multiple of 8"
#endif
#if TF_STAGES < 2 || TF_STAGES > 4
#error "TF_STAGES must be 2, 3 or 4"
#endif
#ifndef TF_KPAIR
/* 1: lane tq's k of a k8 step are 2 tq and 2 tq + 1 (mma's k order is the kernel's choice when A and B
 * agree), so a tile along k gives each lane its two k of a row as one 8-byte local load; 0: tq and tq + 4 */
#define TF_KPAIR 0
#endif
/* local tile layouts (floats): along k, tile row r at r * TF_KP; along the rows (R of them), k row kk at
 * kk * (R + 8). A stage holds A's tile, then W's, each in room for either layout. TF_KPAIR: TF_KP = 8 or 24
 * mod 32, so that the 8-byte loads of a half-warp's four rows fall in distinct banks. */
#if TF_KPAIR
#define TF_KP ((TF_BK + 8) % 32 == 16 ? TF_BK + 16 : TF_BK + 8)
#else
#define TF_KP (TF_BK + 4)
#endif
#define TF_TILE_FLOATS(R) ((R)*TF_KP > TF_BK * ((R) + 8) ? (R)*TF_KP : TF_BK * ((R) + 8))
#define TF_A_FLOATS       TF_TILE_FLOATS(TF_BM)
#define TF_STAGE_FLOATS   (TF_A_FLOATS + TF_TILE_FLOATS(TF_BN))
/* cp.async groups left in flight when a k-tile's own has landed (a literal: it goes into the PTX text) */
#if TF_STAGES == 2
#define TF_PENDING 0
#elif TF_STAGES == 3
#define TF_PENDING 1
#else
#define TF_PENDING 2
#endif

/* k-tile k0 of one operand into local memory at byte offset `at`: rows r0 .. r0 + R - 1 (of rtot) and
 * k0 .. k0 + TF_BK - 1 (of k) of the matrix whose element (r, kk) lies at src + r * ld + kk (kcont = 1) or at
 * src + kk * ld + r (kcont = 0), in 16-byte pieces along the contiguous direction; what lies outside the
 * matrix is zero. */
inline __attribute__((always_inline)) void armt_tf32_load(__local uint *smem, const uint sbase, const uint at,
                                                          __global const float *src, const int ld,
                                                          const int kcont, const int r0, const int rtot,
                                                          const int k0, const int k, const int R,
                                                          const int tid) {
    if (kcont) {
        for (int c = tid; c < R * (TF_BK / 4); c += TF_THREADS) {
            const int r = c / (TF_BK / 4), q = c % (TF_BK / 4) * 4;
            const int nf = r0 + r < rtot ? min(max(k - k0 - q, 0), 4) : 0; /* floats inside */
            MMA_CP16_PART(at + (uint)(r * TF_KP + q) * 4u, nf ? src + (ulong)(r0 + r) * ld + k0 + q : src,
                          nf * 4);
        }
    } else {
        for (int c = tid; c < TF_BK * (R / 4); c += TF_THREADS) {
            const int kk = c / (R / 4), q = c % (R / 4) * 4;
            const int nf = k0 + kk < k ? min(max(rtot - r0 - q, 0), 4) : 0;
            MMA_CP16_PART(at + (uint)(kk * (R + 8) + q) * 4u, nf ? src + (ulong)(k0 + kk) * ld + r0 + q : src,
                          nf * 4);
        }
    }
}

__kernel __attribute__((reqd_work_group_size(TF_THREADS, 1, 1))) void
armt_gemm_tf32(ARMT_GEMM_PARAMS(float)) {
    __local uint smem[TF_STAGES * TF_STAGE_FLOATS] __attribute__((aligned(16)));
#if ARMT_MMA_EMULATE
    __local uint xch[TF_THREADS * 6]; /* the stand-ins' warp exchanges */
    const uint sbase = 0;
#else
    const uint sbase = armt_mma_smem_base(smem);
#endif
    const int row_tile = get_group_id(1);
    if (GEMM_SKIP_TILE(row_tile, TF_BM, last_row0)) return;
    const int j = get_group_id(2);
    GEMM_ENTRY_OFFSETS(j, a_off, w_off, c_off)
    const int tid = get_local_id(0), lane = tid & 31, warp = tid >> 5;
    const int g = lane >> 2, tq = lane & 3; /* the lane's row / column in a fragment, and its k */
    const int row0 = row_tile * TF_BM, col0 = get_group_id(0) * TF_BN;
    const int wm0 = (warp / TF_WARPS_N) * TF_WM, wn0 = (warp % TF_WARPS_N) * TF_WN;
    __global const float *Aj = A + a_off, *Wj = (__global const float *)W + w_off;

    /* element (r, kk) of a stage's A tile is at r * a_rs + kk * a_ks floats from the stage's start; W's
     * (column r of C) at TF_A_FLOATS + r * w_rs + kk * w_ks. a_frag, w_frag: this lane's first fragment
     * element, (wm0 + g, tq) and (wn0 + g, tq). */
    const int a_rs = trans_a ? 1 : TF_KP, a_ks = trans_a ? TF_BM + 8 : 1;
    const int w_rs = w_kn ? 1 : TF_KP, w_ks = w_kn ? TF_BN + 8 : 1;
    const int a_frag = (wm0 + g) * a_rs + tq * (TF_KPAIR ? 2 : 1) * a_ks;
    const int w_frag = TF_A_FLOATS + (wn0 + g) * w_rs + tq * (TF_KPAIR ? 2 : 1) * w_ks;
    const int kh = TF_KPAIR ? 1 : 4; /* k of a fragment's second half, from its first */

    float acc[TF_MT][TF_NT][4];
#if TF32_ORDER == 2 && TF32_PRODUCTS == 3
    float sacc[TF_MT][TF_NT][4];
#endif
#pragma unroll
    for (int i = 0; i < TF_MT; i++)
#pragma unroll
        for (int q = 0; q < TF_NT; q++)
#pragma unroll
            for (int e = 0; e < 4; e++) {
                acc[i][q][e] = 0.0f;
#if TF32_ORDER == 2 && TF32_PRODUCTS == 3
                sacc[i][q][e] = 0.0f;
#endif
            }

    const int ktiles = (k + TF_BK - 1) / TF_BK;
#define TF_ISSUE(kt, slot)                                                                                 \
    do {                                                                                                   \
        const uint at_ = (uint)(slot) * (TF_STAGE_FLOATS * 4u);                                            \
        armt_tf32_load(smem, sbase, at_, Aj, lda, !trans_a, row0, m, (kt)*TF_BK, k, TF_BM, tid);           \
        armt_tf32_load(smem, sbase, at_ + TF_A_FLOATS * 4u, Wj, ldw, !w_kn, col0, n, (kt)*TF_BK, k, TF_BN, \
                       tid);                                                                               \
    } while (0)
    /* Pipeline: k-tile t lives in slot t % TF_STAGES. Before tile t is read, its cp.async group has landed
     * (TF_PENDING later ones may still fly) and a barrier makes every thread's pieces visible; after that
     * barrier no warp reads tile t - 1 any more, so tile t + TF_STAGES - 1 is issued into its slot. One
     * group is committed per k-tile, empty ones too, so the count stays uniform. */
#pragma unroll
    for (int s = 0; s < TF_STAGES - 1; s++) {
        if (s < ktiles) TF_ISSUE(s, s);
        MMA_CP_COMMIT();
    }
    for (int t = 0; t < ktiles; t++) {
        MMA_CP_WAIT(TF_PENDING);
        barrier(CLK_LOCAL_MEM_FENCE);
        const int nt = t + TF_STAGES - 1;
        if (nt < ktiles) TF_ISSUE(nt, nt % TF_STAGES);
        MMA_CP_COMMIT();
        const int st = (t % TF_STAGES) * TF_STAGE_FLOATS;
#pragma unroll
        for (int ks = 0; ks < TF_KS; ks++) {
            /* fragments: a (rows +0, +8) x (k +0, +4) as a0..a3, b (k +0, +4) as b0, b1; split into hi, lo */
            uint ah[TF_MT][4], al[TF_MT][4], bh[TF_NT][2], bl[TF_NT][2];
            const int a0 = st + a_frag + ks * 8 * a_ks, w0 = st + w_frag + ks * 8 * w_ks;
#if TF_KPAIR
            if (a_ks == 1) { /* (warp-uniform) row g's k pair, then row g + 8's, as 8-byte loads */
#pragma unroll
                for (int i = 0; i < TF_MT; i++)
#pragma unroll
                    for (int h = 0; h < 2; h++) {
                        const float2 x = *(__local const float2 *)(smem + a0 + (i * 16 + h * 8) * a_rs);
                        TF32_SPLIT(x.x, ah[i][h], al[i][h]);
                        TF32_SPLIT(x.y, ah[i][h + 2], al[i][h + 2]);
                    }
            } else
#endif
#pragma unroll
                for (int i = 0; i < TF_MT; i++)
#pragma unroll
                    for (int e = 0; e < 4; e++) {
                        const int o = a0 + (i * 16 + (e & 1) * 8) * a_rs + (e >> 1) * kh * a_ks;
                        TF32_SPLIT(as_float(smem[o]), ah[i][e], al[i][e]);
                    }
#if TF_KPAIR
            if (w_ks == 1) {
#pragma unroll
                for (int q = 0; q < TF_NT; q++) {
                    const float2 x = *(__local const float2 *)(smem + w0 + q * 8 * w_rs);
                    TF32_SPLIT(x.x, bh[q][0], bl[q][0]);
                    TF32_SPLIT(x.y, bh[q][1], bl[q][1]);
                }
            } else
#endif
#pragma unroll
                for (int q = 0; q < TF_NT; q++)
#pragma unroll
                    for (int e = 0; e < 2; e++) {
                        const int o = w0 + q * 8 * w_rs + e * kh * w_ks;
                        TF32_SPLIT(as_float(smem[o]), bh[q][e], bl[q][e]);
                    }
#pragma unroll
            for (int i = 0; i < TF_MT; i++)
#pragma unroll
                for (int q = 0; q < TF_NT; q++) {
#if TF32_PRODUCTS == 1
                    MMA_TF32(acc[i][q], ah[i], bh[q]);
#elif TF32_ORDER == 1
                    MMA_TF32(acc[i][q], ah[i], bh[q]);
                    MMA_TF32(acc[i][q], al[i], bh[q]);
                    MMA_TF32(acc[i][q], ah[i], bl[q]);
#elif TF32_ORDER == 2 && TF_SPLIT
                    MMA_TF32(sacc[i][q], al[i], bh[q]);
                    MMA_TF32(sacc[i][q], ah[i], bl[q]);
                    float mn[4] = {0.0f, 0.0f, 0.0f, 0.0f};
                    MMA_TF32(mn, ah[i], bh[q]);
#pragma unroll
                    for (int e = 0; e < 4; e++)
                        acc[i][q][e] += mn[e];
#elif TF32_ORDER == 2
                    MMA_TF32(sacc[i][q], al[i], bh[q]);
                    MMA_TF32(sacc[i][q], ah[i], bl[q]);
                    MMA_TF32(acc[i][q], ah[i], bh[q]);
#elif TF32_ORDER == 3
                    float sm[4] = {0.0f, 0.0f, 0.0f, 0.0f};
                    MMA_TF32(sm, al[i], bh[q]);
                    MMA_TF32(sm, ah[i], bl[q]);
                    MMA_TF32(acc[i][q], ah[i], bh[q]);
#pragma unroll
                    for (int e = 0; e < 4; e++)
                        acc[i][q][e] += sm[e];
#else
                    MMA_TF32(acc[i][q], al[i], bh[q]);
                    MMA_TF32(acc[i][q], ah[i], bl[q]);
                    MMA_TF32(acc[i][q], ah[i], bh[q]);
#endif
                }
        }
    }
#undef TF_ISSUE

    /* Epilogue: acc[i][q] holds (rows g, g + 8) x (columns 2 tq, 2 tq + 1) of the warp's tile (i, q); pairs
     * of columns go as one 8-byte access where C's offset and ldc are even. */
    __global float *Cj = C + c_off;
    const int vec2 = ((c_off | (ulong)ldc) & 1) == 0;
#pragma unroll
    for (int i = 0; i < TF_MT; i++)
#pragma unroll
        for (int h = 0; h < 2; h++) {
            const int r = row0 + wm0 + i * 16 + h * 8 + g;
            if (r >= m) continue;
            __global float *row = Cj + (ulong)r * ldc;
#pragma unroll
            for (int q = 0; q < TF_NT; q++) {
                const int c = col0 + wn0 + q * 8 + 2 * tq;
                float2 v = (float2)(acc[i][q][2 * h], acc[i][q][2 * h + 1]);
#if TF32_ORDER == 2 && TF32_PRODUCTS == 3
                v += (float2)(sacc[i][q][2 * h], sacc[i][q][2 * h + 1]);
#endif
                if (vec2 && c + 1 < n) {
                    __global float2 *p = (__global float2 *)(row + c);
                    *p = beta ? *p + v : v;
                } else {
                    if (c < n) row[c] = beta ? row[c] + v.x : v.x;
                    if (c + 1 < n) row[c + 1] = beta ? row[c + 1] + v.y : v.y;
                }
            }
        }
}
