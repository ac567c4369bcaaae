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
 *     Work-group tile GEMM_TM x GEMM_TN (64 x 64), k step GEMM_TK (16), GEMM_RM x GEMM_RN (4 x 4) per item.
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
#define GEMM_TK 16 /* k per local-memory tile */
#endif
#ifndef GEMM_RM
#define GEMM_RM 4 /* rows per work-item (register blocking) */
#endif
#ifndef GEMM_RN
#define GEMM_RN 4 /* columns per work-item */
#endif
#define GEMM_LX (GEMM_TN / GEMM_RN) /* local size, dimension 0 */
#define GEMM_LY (GEMM_TM / GEMM_RM) /* local size, dimension 1 */
#define GEMM_WG (GEMM_LX * GEMM_LY)

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

__kernel __attribute__((reqd_work_group_size(GEMM_LX, GEMM_LY, 1))) void
armt_gemm_bf16(ARMT_GEMM_PARAMS(float)) {
    /* k-major tiles: the inner loop reads a row of As (broadcast within a warp) and a row of Ws
     * (consecutive); the +1 keeps the transposing stores free of bank conflicts. */
    __local float As[GEMM_TK][GEMM_TM + 1];
    __local float Ws[GEMM_TK][GEMM_TN + 1];
    if (GEMM_SKIP_TILE((int)get_group_id(1), GEMM_TM, last_row0)) return;
    const int tx = get_local_id(0), ty = get_local_id(1), tid = ty * GEMM_LX + tx;
    const int col0 = get_group_id(0) * GEMM_TN, row0 = get_group_id(1) * GEMM_TM, j = get_group_id(2);
    GEMM_ENTRY_OFFSETS(j, a_off, w_off, c_off)
    __global const float *Aj = A + a_off;
    __global const ushort *Wj = W + w_off;
    __global float *Cj = C + c_off;

    float acc[GEMM_RM][GEMM_RN];
    for (int i = 0; i < GEMM_RM; i++)
        for (int q = 0; q < GEMM_RN; q++)
            acc[i][q] = 0.0f;

    for (int k0 = 0; k0 < k; k0 += GEMM_TK) {
        /* consecutive work-items walk along k (contiguous in both A and W) */
        for (int e = tid; e < GEMM_TM * GEMM_TK; e += GEMM_WG) {
            const int r = e / GEMM_TK, c = e % GEMM_TK;
            const int gr = row0 + r, gc = k0 + c;
            As[c][r] = (gr < m && gc < k) ? armt_from_bf16(armt_to_bf16(Aj[(ulong)gr * lda + gc])) : 0.0f;
        }
        for (int e = tid; e < GEMM_TN * GEMM_TK; e += GEMM_WG) {
            const int r = e / GEMM_TK, c = e % GEMM_TK;
            const int gr = col0 + r, gc = k0 + c;
            Ws[c][r] = (gr < n && gc < k) ? armt_from_bf16(Wj[(ulong)gr * k + gc]) : 0.0f;
        }
        barrier(CLK_LOCAL_MEM_FENCE);
        for (int kk = 0; kk < GEMM_TK; kk++) {
            float a[GEMM_RM], w[GEMM_RN];
            for (int i = 0; i < GEMM_RM; i++)
                a[i] = As[kk][ty + i * GEMM_LY];
            for (int q = 0; q < GEMM_RN; q++)
                w[q] = Ws[kk][tx + q * GEMM_LX];
            for (int i = 0; i < GEMM_RM; i++)
                for (int q = 0; q < GEMM_RN; q++)
                    acc[i][q] = fma(a[i], w[q], acc[i][q]);
        }
        barrier(CLK_LOCAL_MEM_FENCE);
    }
    /* work-item (tx, ty) owns rows ty + i*LY and columns tx + q*LX: neighbouring work-items store
     * neighbouring columns (coalesced), and each element of the tile has exactly one owner */
    for (int i = 0; i < GEMM_RM; i++) {
        const int r = row0 + ty + i * GEMM_LY;
        if (r >= m) continue;
        for (int q = 0; q < GEMM_RN; q++) {
            const int c = col0 + tx + q * GEMM_LX;
            if (c >= n) continue;
            __global float *p = Cj + (ulong)r * ldc + c;
            *p = beta ? *p + acc[i][q] : acc[i][q];
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
