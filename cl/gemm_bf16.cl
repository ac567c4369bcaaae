/*
 * gemm_bf16.cl - batched GEMM with bf16 weights and fp32 activations (the diagonal schedule's call shape):
 * the contract shared by every GEMM kernel, the portable kernel and the fp32 -> bf16 pre-pass. The
 * tensor-core kernels (c), (d) follow in gemm_mma_*.cl, built after this file where the device has them.
 *
 *   for every batch entry j (0 .. count-1):
 *     C_j (m x n)  =  bf16(A_j) (m x k)  *  W_j^T  (+ C_j when beta = 1)
 *
 * Layouts (all row-major; all offsets and leading dimensions in ELEMENTS, not bytes):
 *   A_j  fp32, m x k, row stride lda, at A + a_off(j). Rounded to bf16 (round to nearest even) when staged,
 *        so the product is exactly that of the bf16-rounded activations; accumulation is fp32.
 *   W_j  bf16 stored as ushort (upper 16 bits of an IEEE float), n x k, row stride k (HF's (out, in)
 *        layout), at W + w_off(j). W_j^T is the k x n right operand: W_j is the "col" operand of mma.
 *   C_j  fp32, m x n, row stride ldc, at C + c_off(j). beta = 0: C is only written (never read, so a NaN
 *        poison cannot leak in); beta = 1: C += A W^T (residual add). Every element of the m x n block is
 *        written exactly once; nothing outside it (columns n .. ldc-1 included) is touched.
 *
 * Per-entry offsets, two modes chosen by the `offs` argument:
 *   offs != NULL: table mode. offs is a __global ulong[3 * count]; entry j uses
 *                 a_off = offs[3j], w_off = offs[3j + 1], c_off = offs[3j + 2]   (any order, any gaps)
 *   offs == NULL: strided mode (clSetKernelArg with a NULL cl_mem). Entry j uses
 *                 a_off = a_base + j*a_stride, w_off = w_base + j*w_stride, c_off = c_base + j*c_stride
 *                 (layer l's weights at l*n*k, cells on layers l0 + j: w_base = l0*n*k, w_stride = n*k).
 *   Entries must not write overlapping C blocks (they run concurrently); A and C may share a buffer when
 *   the regions are disjoint. count = the global size in dimension 2.
 *
 * The GEMM kernels (a), (c) take these arguments ((d): the same, A being __global const ushort *):
 *   (int m, int n, int k, __global const float *A, int lda, __global const ushort *W,
 *    __global float *C, int ldc, int beta, __global const ulong *offs,
 *    ulong a_base, ulong a_stride, ulong w_base, ulong w_stride, ulong c_base, ulong c_stride)
 * then (c) and (d) their epilogue arguments, and every GEMM kernel, as its LAST argument, int last_row0:
 *   0, or rows of the last entry (j = count - 1) that nobody reads: work-groups whose tile rows all lie below
 *   last_row0 return at once, so C rows below the tile holding row last_row0 are left untouched (the model's
 *   last layer when no output reads its token rows: only the memory tokens' rows go on).
 *
 * (a) armt_gemm_bf16 - portable, any OpenCL 1.2 device. Any m, n, k >= 1, lda >= k, ldc >= n, any offsets.
 *     Work-group tile GEMM_TM x GEMM_TN (64 x 64), k step GEMM_TK (16), GEMM_RM x GEMM_RN (4 x 4) per item
 *     (the library's tuning picks 128 x 128 with 8 x 8 on GPUs; RM, RN multiples of 4). Two local buffers of
 *     (TK x (TM + 4) + TK x (TN + 4)) floats: 17 KiB at 64 x 64, 33 KiB at 128 x 128. Each element of C is
 *     the fma chain over k in ascending order, whatever the tile: every tile shape gives the same bits.
 *     local size  = (GEMM_TN / GEMM_RN, GEMM_TM / GEMM_RM, 1)                          = (16, 16, 1)
 *     global size = (ceil(n / GEMM_TN) * (GEMM_TN / GEMM_RN), ceil(m / GEMM_TM) * (GEMM_TM / GEMM_RM), count)
 *
 * (b) armt_f32_to_bf16 - portable pre-pass for (d): Ab = bf16(A) (round to nearest even) over the same m x k
 *     blocks, at the SAME element offsets (Ab is a ushort buffer as long as A; nothing outside the blocks is
 *     written, so the GEMM's offsets table or strides serve both):
 *       (int m, int k, __global const float *A, int lda, __global ushort *Ab, __global const ulong *offs,
 *        ulong a_base, ulong a_stride)     a_off(j) = offs[3j] (offs != NULL, the GEMM's table) or
 *                                          a_base + j*a_stride (offs == NULL)
 *     Any m, k, lda, offsets (16-byte stores where 8-element aligned, else element by element). Any local
 *     size;
 *     suggested local size = (64, 4, 1), global size = (ceil(ceil(k / 8) / 64) * 64, ceil(m / 4) * 4, count).
 *     Costs m*k*6 bytes of memory traffic per entry.
 */

/* ======================================================================================================== */
/* (a) portable kernel                                                                                      */
/* ======================================================================================================== */

#ifndef GEMM_TM
#define GEMM_TM 64 /* rows of C per work-group */
#endif
#ifndef GEMM_TN
#define GEMM_TN 64 /* columns of C per work-group */
#endif
#ifndef GEMM_TK
#define GEMM_TK 16 /* k per local-memory tile (a multiple of 8) */
#endif
#ifndef GEMM_RM
#define GEMM_RM 4 /* rows per work-item (register blocking; a multiple of 4) */
#endif
#ifndef GEMM_RN
#define GEMM_RN 4 /* columns per work-item (a multiple of 4) */
#endif
#define GEMM_LX (GEMM_TN / GEMM_RN) /* local size, dimension 0 */
#define GEMM_LY (GEMM_TM / GEMM_RM) /* local size, dimension 1 */
#define GEMM_WG (GEMM_LX * GEMM_LY)
/* global -> local staging: A in float4 chunks along k, W in chunks of 8 bf16 (one uint4); per work-item */
#define GEMM_ACH  (GEMM_TM * GEMM_TK / 4)
#define GEMM_WCH  (GEMM_TN * GEMM_TK / 8)
#define GEMM_APER ((GEMM_ACH + GEMM_WG - 1) / GEMM_WG)
#define GEMM_WPER ((GEMM_WCH + GEMM_WG - 1) / GEMM_WG)

#if GEMM_RM % 4 || GEMM_RN % 4 || GEMM_TK % 8 || GEMM_TM % GEMM_RM || GEMM_TN % GEMM_RN
#error "portable GEMM tile: RM, RN multiples of 4, TK of 8, RM | TM, RN | TN"
#endif

/* the GEMM kernels' parameter lists: ARMT_GEMM_PARAMS(A's type), gemm_args.h (shared with the host) */

/* bf16 rounding and expansion: armt_to_bf16, armt_from_bf16 and armt_bf16x2 in common.cl */

/* The launch's last entry does not need its rows below last_row0 (armt_rows_unneeded in common.cl). */
#define GEMM_SKIP_TILE(row_tile, tile_rows, last_row0) \
    armt_rows_unneeded(last_row0, (row_tile) * (tile_rows), tile_rows)

/* Element offsets of batch entry j (see the header). */
#define GEMM_ENTRY_OFFSETS(j, a_off, w_off, c_off) \
    ulong a_off, w_off, c_off;                     \
    if (offs) {                                    \
        a_off = offs[3 * (j)];                     \
        w_off = offs[3 * (j) + 1];                 \
        c_off = offs[3 * (j) + 2];                 \
    } else {                                       \
        a_off = a_base + (ulong)(j)*a_stride;      \
        w_off = w_base + (ulong)(j)*w_stride;      \
        c_off = c_base + (ulong)(j)*c_stride;      \
    }

/* One k tile of A (rows row0.., columns k0..) into registers, bf16-rounded: chunk e = tid + i * WG holds row
 * e / (TK / 4), columns 4 (e % (TK / 4)) .. + 3. Vector loads where the whole tile lies inside A and rows
 * are 16-byte aligned (avec), else element by element with zeros outside. */
inline void gemm_load_a(float4 *ra, __global const float *Aj, int lda, int m, int k, int row0, int k0,
                        int avec, int tid) {
    const int full = avec && row0 + GEMM_TM <= m && k0 + GEMM_TK <= k;
    for (int i = 0; i < GEMM_APER; i++) {
        const int e = tid + i * GEMM_WG, r = e / (GEMM_TK / 4), c = k0 + 4 * (e % (GEMM_TK / 4));
        const int gr = row0 + r;
        float4 v = (float4)(0.0f);
        if (e < GEMM_ACH) {
            __global const float *p = Aj + (ulong)gr * lda + c;
            if (full) {
                v = *(__global const float4 *)p; /* 16-byte aligned: avec */
            } else if (gr < m) {
                v.x = c < k ? p[0] : 0.0f;
                v.y = c + 1 < k ? p[1] : 0.0f;
                v.z = c + 2 < k ? p[2] : 0.0f;
                v.w = c + 3 < k ? p[3] : 0.0f;
            }
        }
        ra[i] = (float4)(armt_from_bf16(armt_to_bf16(v.x)), armt_from_bf16(armt_to_bf16(v.y)),
                         armt_from_bf16(armt_to_bf16(v.z)), armt_from_bf16(armt_to_bf16(v.w)));
    }
}

/* One k tile of W (rows col0.., columns k0..) into registers: chunk e = tid + i * WG holds W row e / (TK / 8),
 * columns 8 (e % (TK / 8)) .. + 7 as bf16 pairs. */
inline void gemm_load_w(uint4 *rw, __global const ushort *Wj, int n, int k, int col0, int k0, int wvec,
                        int tid) {
    const int full = wvec && col0 + GEMM_TN <= n && k0 + GEMM_TK <= k;
    for (int i = 0; i < GEMM_WPER; i++) {
        const int e = tid + i * GEMM_WG, r = e / (GEMM_TK / 8), c = k0 + 8 * (e % (GEMM_TK / 8));
        const int gr = col0 + r;
        uint4 v = (uint4)(0u);
        if (e < GEMM_WCH) {
            __global const ushort *p = Wj + (ulong)gr * k + c;
            if (full) {
                v = *(__global const uint4 *)p;
            } else if (gr < n) {
                uint h[8];
                for (int q = 0; q < 8; q++)
                    h[q] = c + q < k ? (uint)p[q] : 0u;
                v = (uint4)(h[0] | h[1] << 16, h[2] | h[3] << 16, h[4] | h[5] << 16, h[6] | h[7] << 16);
            }
        }
        rw[i] = v;
    }
}

/* The registers into local memory, k-major: As[kk][r] (row stride TM + 4 floats), Ws[kk][c]. */
inline void gemm_store_tiles(__local float *As, __local float *Ws, const float4 *ra, const uint4 *rw,
                             int tid) {
    for (int i = 0; i < GEMM_APER; i++) {
        const int e = tid + i * GEMM_WG, r = e / (GEMM_TK / 4), c = 4 * (e % (GEMM_TK / 4));
        if (e < GEMM_ACH) {
            As[(c + 0) * (GEMM_TM + 4) + r] = ra[i].x;
            As[(c + 1) * (GEMM_TM + 4) + r] = ra[i].y;
            As[(c + 2) * (GEMM_TM + 4) + r] = ra[i].z;
            As[(c + 3) * (GEMM_TM + 4) + r] = ra[i].w;
        }
    }
    for (int i = 0; i < GEMM_WPER; i++) {
        const int e = tid + i * GEMM_WG, r = e / (GEMM_TK / 8), c = 8 * (e % (GEMM_TK / 8));
        if (e < GEMM_WCH) {
            const uint u[4] = {rw[i].x, rw[i].y, rw[i].z, rw[i].w};
            for (int q = 0; q < 4; q++) {
                Ws[(c + 2 * q) * (GEMM_TN + 4) + r] = as_float(u[q] << 16);
                Ws[(c + 2 * q + 1) * (GEMM_TN + 4) + r] = as_float(u[q] & 0xffff0000u);
            }
        }
    }
}

/* Work-item (tx, ty) owns rows 4 (i LY + ty) + 0..3 for i < RM / 4 and columns 4 (q LX + tx) + 0..3 for
 * q < RN / 4: its operands are float4 reads of local memory (a warp reads two As addresses and 16
 * consecutive float4 of Ws), and neighbouring work-items own neighbouring column quads. Every element of C
 * is the fma chain over k in ascending order from 0, the same in every tile shape. Two local buffers: the
 * next k tile's global loads are in flight while this one is multiplied, and one barrier per tile. */
__kernel __attribute__((reqd_work_group_size(GEMM_LX, GEMM_LY, 1))) void
armt_gemm_bf16(ARMT_GEMM_PARAMS(float)) {
    __local float4 As4[2][GEMM_TK][GEMM_TM / 4 + 1];
    __local float4 Ws4[2][GEMM_TK][GEMM_TN / 4 + 1];
    if (GEMM_SKIP_TILE((int)get_group_id(1), GEMM_TM, last_row0)) return;
    const int tx = get_local_id(0), ty = get_local_id(1), tid = ty * GEMM_LX + tx;
    const int col0 = get_group_id(0) * GEMM_TN, row0 = get_group_id(1) * GEMM_TM, j = get_group_id(2);
    GEMM_ENTRY_OFFSETS(j, a_off, w_off, c_off)
    __global const float *Aj = A + a_off;
    __global const ushort *Wj = W + w_off;
    __global float *Cj = C + c_off;
    const int avec = lda % 4 == 0 && a_off % 4 == 0, wvec = k % 8 == 0 && w_off % 8 == 0;

    float4 acc[GEMM_RM][GEMM_RN / 4];
    for (int i = 0; i < GEMM_RM; i++)
        for (int q = 0; q < GEMM_RN / 4; q++)
            acc[i][q] = (float4)(0.0f);

    float4 ra[GEMM_APER];
    uint4 rw[GEMM_WPER];
    const int tiles = (k + GEMM_TK - 1) / GEMM_TK;
    gemm_load_a(ra, Aj, lda, m, k, row0, 0, avec, tid);
    gemm_load_w(rw, Wj, n, k, col0, 0, wvec, tid);
    gemm_store_tiles((__local float *)As4[0], (__local float *)Ws4[0], ra, rw, tid);
    barrier(CLK_LOCAL_MEM_FENCE);
    for (int t = 0; t < tiles; t++) {
        const int b = t & 1;
        if (t + 1 < tiles) {
            gemm_load_a(ra, Aj, lda, m, k, row0, (t + 1) * GEMM_TK, avec, tid);
            gemm_load_w(rw, Wj, n, k, col0, (t + 1) * GEMM_TK, wvec, tid);
        }
        for (int kk = 0; kk < GEMM_TK; kk++) {
            float4 a[GEMM_RM / 4], w[GEMM_RN / 4];
            for (int i = 0; i < GEMM_RM / 4; i++)
                a[i] = As4[b][kk][i * GEMM_LY + ty];
            for (int q = 0; q < GEMM_RN / 4; q++)
                w[q] = Ws4[b][kk][q * GEMM_LX + tx];
            for (int i = 0; i < GEMM_RM / 4; i++) {
                const float ai[4] = {a[i].x, a[i].y, a[i].z, a[i].w};
                for (int ii = 0; ii < 4; ii++)
                    for (int q = 0; q < GEMM_RN / 4; q++)
                        acc[4 * i + ii][q] = fma((float4)(ai[ii]), w[q], acc[4 * i + ii][q]);
            }
        }
        if (t + 1 < tiles)
            gemm_store_tiles((__local float *)As4[b ^ 1], (__local float *)Ws4[b ^ 1], ra, rw, tid);
        barrier(CLK_LOCAL_MEM_FENCE);
    }
    const int cvec = ldc % 4 == 0 && c_off % 4 == 0;
    for (int i = 0; i < GEMM_RM / 4; i++)
        for (int ii = 0; ii < 4; ii++) {
            const int r = row0 + 4 * (i * GEMM_LY + ty) + ii;
            if (r >= m) continue;
            for (int q = 0; q < GEMM_RN / 4; q++) {
                const int c = col0 + 4 * (q * GEMM_LX + tx);
                __global float *p = Cj + (ulong)r * ldc + c;
                const float4 v = acc[4 * i + ii][q];
                if (cvec && c + 4 <= n) {
                    *(__global float4 *)p = beta ? *(__global float4 *)p + v : v;
                } else {
                    const float vs[4] = {v.x, v.y, v.z, v.w};
                    for (int cc = 0; cc < 4 && c + cc < n; cc++)
                        p[cc] = beta ? p[cc] + vs[cc] : vs[cc];
                }
            }
        }
}
/* ======================================================================================================== */
/* (b) fp32 -> bf16 pre-pass (portable, any OpenCL 1.2 device)                                              */
/* ======================================================================================================== */

/* Ab[a_off(j) + r*lda + c] = bf16(A[a_off(j) + r*lda + c]) for r < m, c < k: the same element offsets, so
 * the bf16 copy is addressed exactly like A (a ushort buffer as long as the float one; nothing else in it is
 * written). a_off(j) as in the GEMMs: offs[3j] in table mode (the GEMM's own table works), a_base +
 * j*a_stride when offs is NULL. Each work-item converts 8 consecutive elements of a row (two float4 loads,
 * one 16-byte store where aligned, else one element at a time). */
__kernel void armt_f32_to_bf16(const int m, const int k, __global const float *A, const int lda,
                               __global ushort *Ab, __global const ulong *offs, const ulong a_base,
                               const ulong a_stride) {
    const int c0 = get_global_id(0) * 8, r = get_global_id(1), j = get_global_id(2);
    if (r >= m || c0 >= k) return;
    const ulong a_off = offs ? offs[3 * j] : a_base + (ulong)j * a_stride;
    const ulong p = a_off + (ulong)r * lda + c0;
    if (c0 + 8 <= k && (p & 7) == 0) {
        const float4 x = *(__global const float4 *)(A + p), y = *(__global const float4 *)(A + p + 4);
        *(__global uint4 *)(Ab + p) = (uint4)(armt_bf16x2(x.x, x.y), armt_bf16x2(x.z, x.w),
                                              armt_bf16x2(y.x, y.y), armt_bf16x2(y.z, y.w));
    } else {
        for (int c = 0; c < 8 && c0 + c < k; c++)
            Ab[p + c] = armt_to_bf16(A[p + c]);
    }
}
