/*
 * gemm_bf16.cl - batched GEMM with bf16 weights and fp32 activations (the diagonal schedule's call shape).
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
 *     Any m, k, lda, offsets (16-byte stores where 8-element aligned, else element by element). Any local size;
 *     suggested local size = (64, 4, 1), global size = (ceil(ceil(k / 8) / 64) * 64, ceil(m / 4) * 4, count).
 *     Costs m*k*6 bytes per entry (~57 us for 16 x 1152 x 2048 on the H200, ~210 us for k = 8192).
 *
 * (c) armt_gemm_bf16_mma - NVIDIA tensor cores (compute capability >= 8.0), built only with -DARMT_NV_MMA=1
 *     (inline PTX: mma.sync.m16n8k16 bf16 -> f32, ldmatrix, cp.async, cvt.rn.bf16x2.f32).
 *     Block tile MMA_BM x MMA_BN x MMA_BK (128 x 128 x 32), MMA_WARPS_M x MMA_WARPS_N warps (2 x 2): each
 *     warp owns 64 x 64 (4 x 8 mma tiles, 128 fp32 accumulators per lane). MMA_STAGES local-memory stages of
 *     bf16 tiles (default: as many as fit in 48 KiB, at most 4: 3 for the default tile), the 16-byte chunks of
 *     each row XOR-swizzled so that ldmatrix and the tile stores are free of bank conflicts. W tiles go global
 *     -> local by cp.async, STAGES-1 k-tiles ahead; A tiles through registers (the fp32 -> bf16x2 packing
 *     needs them), loaded one k-tile ahead and stored just before the barrier that ends each k-tile.
 *     local size  = (MMA_THREADS, 1, 1) = (32 * MMA_WARPS_M * MMA_WARPS_N, 1, 1)       = (128, 1, 1)
 *     global size = (ceil(n / MMA_BN) * MMA_THREADS, ceil(m / MMA_BM), count)           (unchanged from v1)
 *     Requirements (the host checks them; the kernel does not): k % 8 == 0, lda % 4 == 0, every
 *     a_off % 4 == 0, every w_off % 8 == 0 (16-byte aligned float4 and 16-byte chunk loads; a chunk of k is
 *     then wholly inside or wholly outside the matrix). m, n, ldc and c_off are arbitrary.
 *     Switches: ARMT_MMA_LDMATRIX (1; 0: fragments by 32-bit local loads), ARMT_MMA_CPASYNC (1; 0: bf16
 *     tiles staged through registers like A; with both 0 no shared-space address is ever formed: a fallback
 *     should a driver disagree with armt_mma_smem_base() below), MMA_FRAG_DB (0; 1: fragments double-buffered
 *     across k steps and across the barrier, +32 registers), MMA_STAGES (2..4). MMA_BK may be 16, 32 or 64;
 *     warp tiles may be any multiple of 16 x 16 (e.g. 48-row).
 *     H200 (docs/perf/results/2026-11-28-h200-gemm-bf16-v2.txt): the default is the fastest variant measured,
 *     242 / 174 / 250 / 263 TFLOP/s on the 1B cell shapes q/o, k/v, gate/up, down (v1: 201 / 152 / 202 /
 *     226); NVIDIA's compiler gives it 252 registers, no spills, 48 KiB + 16 B local memory (2 work-groups
 *     per SM). 128x256 / 256-thread tiles (1 work-group per SM) and BK = 16 were slower. Warps are assumed to
 *     be 32 consecutive local ids (NVIDIA).
 *     MMA_WGMMA=1 (compute capability 9.0): the multiply is Hopper wgmma from the local tiles, written as
 *     marked PTX comments that lib/nv_ptx.c makes live for sm_90a. The work-group is whole warpgroups that
 *     split the tile's rows (each: m64 x MMA_WG_N x k16 per instruction, MMA_WG_N 64, 128 or 256); the row
 *     swizzle of BK 16 / 32 / 64 is the hardware's 32 / 64 / 128-byte swizzle. MMA_WG_DEPTH 1 leaves a
 *     wgmma group in flight across each k-tile barrier (the loads of the next tile then go after it, so it
 *     needs 3+ stages). MMA_SMEM_MAX (49152) raises the local-memory cap: NVIDIA's OpenCL reports 48 KiB but
 *     builds and runs larger static arrays (bench/nv_probe). The library's Hopper tiles (lib/build_options.c):
 *     128 x 256 x 64, 2 x 4 warps, MMA_WG_N 256, 4 stages (192 KiB), MMA_WG_DEPTH 1; a second build of this
 *     file with 64 x 64 x 64, 1 x 4 warps, MMA_WG_N 64 takes the GEMMs of n <= 64 (W_mq, W_mk); with mma.sync
 *     that build has 64 x 64 x 32 tiles of 2 x 2 warps. MMA_RASTER 1 (the Hopper tiles) hands work-groups
 *     their tiles row tiles first in launch order (armt_mma_row_tile), so that those running together share
 *     the weights' column tiles in L2. MMA_DIAG builds
 *     timing-only variants whose results are wrong (benchmark diagnostics). See docs/perf/gemm_bf16_notes.md.
 *     Two more arguments after c_stride: __global const float *Gt, __global ushort *Cb. Both NULL: C as above.
 *     Set: the SwiGLU epilogue of an up projection, Cb = bf16(silu(Gt) * A W^T) at C's element offsets (Gt
 *     holds the gate projection there); C and beta are not used. Cb alone: Cb = bf16(A W^T) (after RoPE, if
 *     any) at C's element offsets, C and beta not used (the attention's bf16 K and V).
 *
 * (d) armt_gemm_bf16bf16_mma - as (c), built with it, but A is bf16 (__global const ushort *A, e.g. from (b));
 *     every other argument, the local and global sizes and the tile options are those of (c). Both operands go
 *     by cp.async, nothing is staged through registers (122-255 registers by tile). Requirements: k % 8 == 0,
 *     lda % 8 == 0, every a_off % 8 == 0, every w_off % 8 == 0. With mma.sync it ran at the speed of (c); with
 *     wgmma it is 1.65-1.8x faster, so the library rounds each GEMM input once and runs (d).
 *
 *     ARMT_MMA_EMULATE=1 (tests only) builds (c) and (d) with OpenCL C stand-ins for every PTX instruction
 *     (warp exchanges through local memory), so that the tiling, the swizzle, the pipeline and the fragment
 *     maps can be checked on any device.
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

#define GEMM_BF16_ARGS                                                                                       \
    const int m, const int n, const int k, __global const float *A, const int lda, __global const ushort *W, \
        __global float *C, const int ldc, const int beta, __global const ulong *offs, const ulong a_base,    \
        const ulong a_stride, const ulong w_base, const ulong w_stride, const ulong c_base,                  \
        const ulong c_stride

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

__kernel __attribute__((reqd_work_group_size(GEMM_LX, GEMM_LY, 1))) void armt_gemm_bf16(GEMM_BF16_ARGS,
                                                                                     const int last_row0) {
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
        for (int q = 0; q < GEMM_RN; q++) acc[i][q] = 0.0f;

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
            for (int i = 0; i < GEMM_RM; i++) a[i] = As[kk][ty + i * GEMM_LY];
            for (int q = 0; q < GEMM_RN; q++) w[q] = Ws[kk][tx + q * GEMM_LX];
            for (int i = 0; i < GEMM_RM; i++)
                for (int q = 0; q < GEMM_RN; q++) acc[i][q] = fma(a[i], w[q], acc[i][q]);
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
        *(__global uint4 *)(Ab + p) =
            (uint4)(armt_bf16x2(x.x, x.y), armt_bf16x2(x.z, x.w), armt_bf16x2(y.x, y.y), armt_bf16x2(y.z, y.w));
    } else {
        for (int c = 0; c < 8 && c0 + c < k; c++) Ab[p + c] = armt_to_bf16(A[p + c]);
    }
}

/* ======================================================================================================== */
/* (c), (d) NVIDIA tensor-core kernels                                                                      */
/* ======================================================================================================== */

#if ARMT_NV_MMA || ARMT_MMA_EMULATE

#ifndef MMA_BM
#define MMA_BM 128 /* rows of C per work-group */
#endif
#ifndef MMA_BN
#define MMA_BN 128 /* columns of C per work-group */
#endif
#ifndef MMA_BK
#define MMA_BK 32 /* k per stage: 16, 32 or 64 */
#endif
#ifndef MMA_WARPS_M
#define MMA_WARPS_M 2 /* warps along m */
#endif
#ifndef MMA_WARPS_N
#define MMA_WARPS_N 2 /* warps along n */
#endif
#ifndef ARMT_MMA_LDMATRIX
#define ARMT_MMA_LDMATRIX 1 /* fragments with ldmatrix.x4 (0: 32-bit local loads) */
#endif
#ifndef ARMT_MMA_CPASYNC
#define ARMT_MMA_CPASYNC 1 /* bf16 tiles (W; A of the bf16 x bf16 kernel) with cp.async (0: through registers) */
#endif
#ifndef MMA_FRAG_DB
#define MMA_FRAG_DB 0 /* 1: double-buffered fragments (32 more registers for a 64 x 64 warp tile) */
#endif

#ifndef MMA_WGMMA
#define MMA_WGMMA 0 /* 1: Hopper wgmma (sm_90a): the work-group is one warpgroup that multiplies straight from the
                     * local tiles (no fragments in registers), m64 x MMA_WG_N x k16 per instruction */
#endif
#ifndef MMA_WG_N
#define MMA_WG_N 128 /* n of one wgmma instruction: 64, 128 or 256 */
#endif
#ifndef MMA_WG_DEPTH
#define MMA_WG_DEPTH 0 /* wgmma groups left in flight at the k-tile barrier: 0 (drained) or 1 */
#endif
/* Gate and up in one GEMM (W2 != NULL, wgmma with 256-wide tiles only): the tile's first 128 W rows come
 * from W (gate), the last 128 from W2 (up), both at the same output columns, so each thread holds gate and
 * up of the same elements and writes bf16(silu(gate) * up); see the bf16 x bf16 entry. */
#define MMA_DUAL_OK (MMA_WGMMA && MMA_BN == 256 && (MMA_BN / 2) % (MMA_THREADS / (MMA_BK / 8)) == 0)
#ifndef MMA_DIAG
#define MMA_DIAG 0 /* benchmark diagnostics only, results are wrong: 1 no loads after the prologue, 2 no A loads */
#endif

#define MMA_THREADS (32 * MMA_WARPS_M * MMA_WARPS_N)
#define MMA_WM (MMA_BM / MMA_WARPS_M) /* warp tile rows */
#define MMA_WN (MMA_BN / MMA_WARPS_N) /* warp tile columns */
#if MMA_WGMMA
#define MMA_SMEM_ALIGN 1024 /* swizzled tiles start on (8 x row bytes)-byte boundaries */
/* Warpgroups (4 warps each) split the tile's rows: warpgroup g owns rows g * MMA_WG_ROWS .. + MMA_WG_ROWS.
 * accumulators acc[i][q][e]: row MMA_WG_ROWS (warp / 4) + 64 i + 16 (warp % 4) + lane/4 + 8 (e >> 1),
 * column 8 q + 2 (lane % 4) + (e & 1) */
#define MMA_WGS (MMA_THREADS / 128)
#define MMA_WG_ROWS (MMA_BM / MMA_WGS)
#define MMA_MT (MMA_WG_ROWS / 64) /* m64 blocks of a warpgroup */
#define MMA_NT (MMA_BN / 8)       /* n8 columns groups */
#define MMA_ISTEP 64
#if MMA_THREADS % 128 || MMA_BM % MMA_WGS || MMA_WG_ROWS % 64 || MMA_BN % MMA_WG_N || (MMA_WG_N != 64 && MMA_WG_N != 128 && MMA_WG_N != 256) || MMA_FRAG_DB || MMA_WG_DEPTH < 0 || MMA_WG_DEPTH > 1
#error "MMA_WGMMA: whole warpgroups (4 warps), MMA_BM a multiple of 64 per warpgroup, MMA_BN of MMA_WG_N, MMA_WG_DEPTH 0 or 1"
#endif
#else
#define MMA_MT (MMA_WM / 16)          /* m16 tiles per warp */
#define MMA_NT (MMA_WN / 8)           /* n8 tiles per warp */
#define MMA_ISTEP 16
#define MMA_SMEM_ALIGN 16
#endif
/* MMA_RASTER 1: work-groups take their tiles row tiles first in launch order (armt_mma_row_tile). */
#ifndef MMA_RASTER
#define MMA_RASTER 0
#endif
/* The epilogue's reads (C with beta = 1: the residual stream; the SwiGLU gate Gt) are prefetched into L2
 * MMA_PF_DIST k-tiles before the mainloop ends (at its start when it is shorter), so that they come from
 * L2 rather than HBM once the accumulators are done: every work-group of a wave reaches its epilogue at the
 * same time, and reading C then left the tensor cores idle (docs/perf/gemm_bf16_notes.md, run 11). 0: off.
 * Off by default with MMA_RASTER 1, where it cost 1.7% of the diagonal forward (notes, run 12). */
#ifndef MMA_PF_C
#define MMA_PF_C (!MMA_RASTER)
#endif
#ifndef MMA_PF_DIST
#define MMA_PF_DIST 8
#endif
#ifndef MMA_EPI_Q /* column pairs of C (or of the SwiGLU gate) an epilogue thread reads before it stores */
#define MMA_EPI_Q (MMA_NT < 8 ? MMA_NT : 8)
#endif
#if MMA_NT % MMA_EPI_Q
#error "MMA_EPI_Q must divide the n8 tiles per thread"
#endif
#define MMA_KS (MMA_BK / 16)          /* k16 steps per stage */
#define MMA_ROWB (MMA_BK * 2)         /* bytes per local tile row (bf16) */
#define MMA_CHUNKS (MMA_BK / 8)       /* 16-byte chunks per row */
#define MMA_A_BYTES (MMA_BM * MMA_ROWB)
#define MMA_STAGE_BYTES ((MMA_BM + MMA_BN) * MMA_ROWB)
#ifndef MMA_STAGES /* local-memory stages: as many as 48 KiB hold, at most 4 */
#if MMA_WGMMA && MMA_WG_DEPTH && 3 * MMA_STAGE_BYTES > 49152
#error "MMA_WG_DEPTH 1 needs 3 stages (at least): set MMA_STAGES or smaller tiles"
#elif 4 * MMA_STAGE_BYTES <= 49152
#define MMA_STAGES 4
#elif 3 * MMA_STAGE_BYTES <= 49152
#define MMA_STAGES 3
#else
#define MMA_STAGES 2
#endif
#endif

#if MMA_WM % 16 || MMA_WN % 16 || MMA_BK % 16 || MMA_BM % MMA_WARPS_M || MMA_BN % MMA_WARPS_N
#error "MMA tile sizes: warp tile must be a multiple of 16 x 16, MMA_BK of 16"
#endif
#ifndef MMA_SMEM_MAX
#define MMA_SMEM_MAX 49152 /* local memory a work-group may declare (OpenCL on NVIDIA reports 48 KiB) */
#endif
#if MMA_STAGES < 2 || MMA_STAGES > 8 || (!MMA_WGMMA && MMA_STAGES > 4) || (MMA_WGMMA && MMA_WG_DEPTH && MMA_STAGES < 3)
#error "MMA_STAGES must be 2..4 (mma.sync), 2..8 (wgmma; 3..8 with MMA_WG_DEPTH 1), and fit in MMA_SMEM_MAX"
#endif
#if MMA_STAGES * MMA_STAGE_BYTES > MMA_SMEM_MAX
#error "MMA tiles x stages need more local memory than MMA_SMEM_MAX"
#endif
/* cp.async groups that may stay in flight at the barrier (a literal: it goes into the PTX text):
 * STAGES - 2 when the loads of a tile are issued before its barrier, STAGES - 3 when after it (WG_DEPTH 1) */
#define MMA_PEND_AFTER (MMA_WGMMA && MMA_WG_DEPTH)
#if MMA_STAGES - MMA_PEND_AFTER <= 2
#define MMA_PENDING 0
#elif MMA_STAGES - MMA_PEND_AFTER == 3
#define MMA_PENDING 1
#elif MMA_STAGES - MMA_PEND_AFTER == 4
#define MMA_PENDING 2
#elif MMA_STAGES - MMA_PEND_AFTER == 5
#define MMA_PENDING 3
#elif MMA_STAGES - MMA_PEND_AFTER == 6
#define MMA_PENDING 4
#elif MMA_STAGES - MMA_PEND_AFTER == 7
#define MMA_PENDING 5
#else
#define MMA_PENDING 6
#endif
/* the prologue's wait (tile 0 complete with tiles 1 .. STAGES - 2 in flight) */
#if MMA_STAGES == 2
#define MMA_PENDING0 0
#elif MMA_STAGES == 3
#define MMA_PENDING0 1
#elif MMA_STAGES == 4
#define MMA_PENDING0 2
#elif MMA_STAGES == 5
#define MMA_PENDING0 3
#elif MMA_STAGES == 6
#define MMA_PENDING0 4
#elif MMA_STAGES == 7
#define MMA_PENDING0 5
#else
#define MMA_PENDING0 6
#endif
#if MMA_THREADS % (MMA_BK / 4)
#error "MMA tile sizes: the work-group must cover whole rows of A (MMA_BK / 4 float4 each)"
#endif

/* XOR swizzle of the 16-byte chunks of a tile row: the 8 rows one ldmatrix phase reads (same logical chunk,
 * rows r..r+7) and the rows a warp stores land in 8 different 16-byte bank groups. */
#if MMA_BK == 16
#define MMA_SWZ(r, c) ((c) ^ (((r) >> 2) & 1)) /* 32-byte rows: four rows per 128-byte bank line */
#elif MMA_BK == 32
#define MMA_SWZ(r, c) ((c) ^ (((r) >> 1) & 3)) /* 64-byte rows: two rows per 128-byte bank line */
#elif MMA_BK == 64
#define MMA_SWZ(r, c) ((c) ^ ((r)&7)) /* 128-byte rows */
#else
#error "MMA_BK must be 16, 32 or 64"
#endif
/* byte offset of (row r, logical chunk c) inside a tile */
#define MMA_OFF(r, c) ((uint)(r)*MMA_ROWB + ((uint)MMA_SWZ(r, c) << 4))

#if ARMT_MMA_EMULATE
/* ---- OpenCL C stand-ins, same semantics as the PTX (PTX ISA: "Matrix fragments for mma.m16n8k16 with
 * floating point type", "ldmatrix"). Each takes effect for the whole warp, exchanging through local memory;
 * every work-item of the work-group calls them in the same order, so the barriers inside are uniform. ---- */
#define MMA_EMU_LOCALS __local uint xch[MMA_THREADS * 6];
#define MMA_EMU_ARG xch
#define MMA_EMU_PARAM , __local uint *xch


/* wgmma.mma_async m64nNk16 (both operands in local memory, K-major, 64-byte swizzle): the warpgroup's
 * D (64 x N) += A (64 x 16) B^T, A and B described by their start byte offsets in smem. The stand-in reads
 * the way the descriptor tells the hardware to: row r of an operand at start + (r / 8) * 512 (SBO) +
 * (r % 8) * 64, element kk at + 2 kk, then the 16-byte chunk bits [4, 6) of the address XORed with its bits
 * [7, 9) (64-byte swizzle). It completes at once, so fence, commit and wait are no-ops. */
#define MMA_WG_ELEM(start, r, kk)                                                                 \
    MMA_EMU_WG_HALF((uint)(start) + (uint)((r) >> 3) * (8u * MMA_ROWB) + (uint)((r)&7) * MMA_ROWB + \
                    (uint)(kk) * 2u)
inline float armt_emu_wg_half(__local uint *smem, uint addr) {
    const uint phys = addr ^ (((addr >> 7) & (uint)(MMA_ROWB / 16 - 1)) << 4);
    const uint w = smem[phys >> 2];
    return as_float((phys & 2u) ? (w & 0xffff0000u) : (w << 16));
}
#define MMA_EMU_WG_HALF(addr) armt_emu_wg_half(smem, addr)
#define MMA_WGMMA_OP(d, off_a, off_b)                                                              \
    do {                                                                                           \
        for (int j_ = 0; j_ < MMA_WG_N / 8; j_++)                                                  \
            for (int e_ = 0; e_ < 4; e_++) {                                                       \
                const int r_ = 16 * (warp & 3) + (lane >> 2) + 8 * (e_ >> 1);                      \
                const int c_ = 8 * j_ + 2 * (lane & 3) + (e_ & 1);                                 \
                float s_ = (d)[j_][e_];                                                            \
                for (int kk_ = 0; kk_ < 16; kk_++)                                                 \
                    s_ += MMA_WG_ELEM(off_a, r_, kk_) * MMA_WG_ELEM(off_b, c_, kk_);               \
                (d)[j_][e_] = s_;                                                                  \
            }                                                                                      \
    } while (0)
#define MMA_WG_FENCE() ((void)0)
#define MMA_WG_COMMIT() ((void)0)
#define MMA_WG_WAIT0() ((void)0)
#define MMA_WG_WAIT1() ((void)0)
#define MMA_PROXY_FENCE() ((void)0)
#define MMA_PF_L2(gptr) ((void)0) /* a hint: nothing to emulate */

#else /* ---- real PTX (NVIDIA, sm_80+) ---- */
#define MMA_EMU_LOCALS
#define MMA_EMU_ARG 0
#define MMA_EMU_PARAM , const int xch_unused_

/* bring the 128-byte line holding a global address into L2 (a hint: no fault, no effect on results) */
#define MMA_PF_L2(gptr) __asm__ __volatile__("prefetch.global.L2 [%0];" : : "l"((ulong)(gptr)))
#if MMA_WGMMA
/* wgmma is sm_90a-only and NVIDIA's OpenCL compiler targets sm_90: each wgmma instruction is written as a
 * PTX comment behind the mark below, which the host removes from the built program's PTX before rebuilding
 * it for sm_90a (lib/nv_ptx.c). -DARMT_SM90A_DIRECT=1 writes them live (for compilers that target sm_90a). */
#if ARMT_SM90A_DIRECT
#define MMA_SM90A ""
#else
#define MMA_SM90A "//@sm90a " /* = ARMT_SM90A_MARK in lib/nv_ptx.h */
#endif
/* wgmma (sm_90a). Descriptor of a K-major operand tile whose rows are swizzled like MMA_SWZ: start address
 * >> 4 (bits 0-13), leading byte offset 1 (unused when swizzled, bits 16-29), stride byte offset = 8 rows
 * (bits 32-45), base offset 0 (tiles start on 8-row boundaries), swizzle mode (bits 62-63) by row bytes:
 * 32 -> 3 (32-byte swizzle), 64 -> 2, 128 -> 1. The k16 steps inside a row advance the start by 32 bytes. */
#define MMA_WG_SWMODE (MMA_BK == 16 ? 3 : MMA_BK == 32 ? 2 : 1)
inline ulong armt_wg_desc(uint saddr) {
    return (ulong)((saddr & 0x3ffffu) >> 4) | ((ulong)1 << 16) | ((ulong)(8 * MMA_ROWB >> 4) << 32) |
           ((ulong)MMA_WG_SWMODE << 62);
}
#define MMA_WGMMA_OP_64(d, off_a, off_b) __asm__ __volatile__(MMA_SM90A "{ .reg .pred armt_p; setp.ne.b32 armt_p, %34, 0; wgmma.mma_async.sync.aligned.m64n64k16.f32.bf16.bf16 {%0, %1, %2, %3, %4, %5, %6, %7, %8, %9, %10, %11, %12, %13, %14, %15, %16, %17, %18, %19, %20, %21, %22, %23, %24, %25, %26, %27, %28, %29, %30, %31}, %32, %33, armt_p, 1, 1, 0, 0; }" : "+f"((d)[0][0]), "+f"((d)[0][1]), "+f"((d)[0][2]), "+f"((d)[0][3]), "+f"((d)[1][0]), "+f"((d)[1][1]), "+f"((d)[1][2]), "+f"((d)[1][3]), "+f"((d)[2][0]), "+f"((d)[2][1]), "+f"((d)[2][2]), "+f"((d)[2][3]), "+f"((d)[3][0]), "+f"((d)[3][1]), "+f"((d)[3][2]), "+f"((d)[3][3]), "+f"((d)[4][0]), "+f"((d)[4][1]), "+f"((d)[4][2]), "+f"((d)[4][3]), "+f"((d)[5][0]), "+f"((d)[5][1]), "+f"((d)[5][2]), "+f"((d)[5][3]), "+f"((d)[6][0]), "+f"((d)[6][1]), "+f"((d)[6][2]), "+f"((d)[6][3]), "+f"((d)[7][0]), "+f"((d)[7][1]), "+f"((d)[7][2]), "+f"((d)[7][3]) : "l"(armt_wg_desc(sbase + (off_a))), "l"(armt_wg_desc(sbase + (off_b))), "r"(1))
#define MMA_WGMMA_OP_128(d, off_a, off_b) __asm__ __volatile__(MMA_SM90A "{ .reg .pred armt_p; setp.ne.b32 armt_p, %66, 0; wgmma.mma_async.sync.aligned.m64n128k16.f32.bf16.bf16 {%0, %1, %2, %3, %4, %5, %6, %7, %8, %9, %10, %11, %12, %13, %14, %15, %16, %17, %18, %19, %20, %21, %22, %23, %24, %25, %26, %27, %28, %29, %30, %31, %32, %33, %34, %35, %36, %37, %38, %39, %40, %41, %42, %43, %44, %45, %46, %47, %48, %49, %50, %51, %52, %53, %54, %55, %56, %57, %58, %59, %60, %61, %62, %63}, %64, %65, armt_p, 1, 1, 0, 0; }" : "+f"((d)[0][0]), "+f"((d)[0][1]), "+f"((d)[0][2]), "+f"((d)[0][3]), "+f"((d)[1][0]), "+f"((d)[1][1]), "+f"((d)[1][2]), "+f"((d)[1][3]), "+f"((d)[2][0]), "+f"((d)[2][1]), "+f"((d)[2][2]), "+f"((d)[2][3]), "+f"((d)[3][0]), "+f"((d)[3][1]), "+f"((d)[3][2]), "+f"((d)[3][3]), "+f"((d)[4][0]), "+f"((d)[4][1]), "+f"((d)[4][2]), "+f"((d)[4][3]), "+f"((d)[5][0]), "+f"((d)[5][1]), "+f"((d)[5][2]), "+f"((d)[5][3]), "+f"((d)[6][0]), "+f"((d)[6][1]), "+f"((d)[6][2]), "+f"((d)[6][3]), "+f"((d)[7][0]), "+f"((d)[7][1]), "+f"((d)[7][2]), "+f"((d)[7][3]), "+f"((d)[8][0]), "+f"((d)[8][1]), "+f"((d)[8][2]), "+f"((d)[8][3]), "+f"((d)[9][0]), "+f"((d)[9][1]), "+f"((d)[9][2]), "+f"((d)[9][3]), "+f"((d)[10][0]), "+f"((d)[10][1]), "+f"((d)[10][2]), "+f"((d)[10][3]), "+f"((d)[11][0]), "+f"((d)[11][1]), "+f"((d)[11][2]), "+f"((d)[11][3]), "+f"((d)[12][0]), "+f"((d)[12][1]), "+f"((d)[12][2]), "+f"((d)[12][3]), "+f"((d)[13][0]), "+f"((d)[13][1]), "+f"((d)[13][2]), "+f"((d)[13][3]), "+f"((d)[14][0]), "+f"((d)[14][1]), "+f"((d)[14][2]), "+f"((d)[14][3]), "+f"((d)[15][0]), "+f"((d)[15][1]), "+f"((d)[15][2]), "+f"((d)[15][3]) : "l"(armt_wg_desc(sbase + (off_a))), "l"(armt_wg_desc(sbase + (off_b))), "r"(1))
#define MMA_WGMMA_OP_256(d, off_a, off_b) __asm__ __volatile__(MMA_SM90A "{ .reg .pred armt_p; setp.ne.b32 armt_p, %130, 0; wgmma.mma_async.sync.aligned.m64n256k16.f32.bf16.bf16 {%0, %1, %2, %3, %4, %5, %6, %7, %8, %9, %10, %11, %12, %13, %14, %15, %16, %17, %18, %19, %20, %21, %22, %23, %24, %25, %26, %27, %28, %29, %30, %31, %32, %33, %34, %35, %36, %37, %38, %39, %40, %41, %42, %43, %44, %45, %46, %47, %48, %49, %50, %51, %52, %53, %54, %55, %56, %57, %58, %59, %60, %61, %62, %63, %64, %65, %66, %67, %68, %69, %70, %71, %72, %73, %74, %75, %76, %77, %78, %79, %80, %81, %82, %83, %84, %85, %86, %87, %88, %89, %90, %91, %92, %93, %94, %95, %96, %97, %98, %99, %100, %101, %102, %103, %104, %105, %106, %107, %108, %109, %110, %111, %112, %113, %114, %115, %116, %117, %118, %119, %120, %121, %122, %123, %124, %125, %126, %127}, %128, %129, armt_p, 1, 1, 0, 0; }" : "+f"((d)[0][0]), "+f"((d)[0][1]), "+f"((d)[0][2]), "+f"((d)[0][3]), "+f"((d)[1][0]), "+f"((d)[1][1]), "+f"((d)[1][2]), "+f"((d)[1][3]), "+f"((d)[2][0]), "+f"((d)[2][1]), "+f"((d)[2][2]), "+f"((d)[2][3]), "+f"((d)[3][0]), "+f"((d)[3][1]), "+f"((d)[3][2]), "+f"((d)[3][3]), "+f"((d)[4][0]), "+f"((d)[4][1]), "+f"((d)[4][2]), "+f"((d)[4][3]), "+f"((d)[5][0]), "+f"((d)[5][1]), "+f"((d)[5][2]), "+f"((d)[5][3]), "+f"((d)[6][0]), "+f"((d)[6][1]), "+f"((d)[6][2]), "+f"((d)[6][3]), "+f"((d)[7][0]), "+f"((d)[7][1]), "+f"((d)[7][2]), "+f"((d)[7][3]), "+f"((d)[8][0]), "+f"((d)[8][1]), "+f"((d)[8][2]), "+f"((d)[8][3]), "+f"((d)[9][0]), "+f"((d)[9][1]), "+f"((d)[9][2]), "+f"((d)[9][3]), "+f"((d)[10][0]), "+f"((d)[10][1]), "+f"((d)[10][2]), "+f"((d)[10][3]), "+f"((d)[11][0]), "+f"((d)[11][1]), "+f"((d)[11][2]), "+f"((d)[11][3]), "+f"((d)[12][0]), "+f"((d)[12][1]), "+f"((d)[12][2]), "+f"((d)[12][3]), "+f"((d)[13][0]), "+f"((d)[13][1]), "+f"((d)[13][2]), "+f"((d)[13][3]), "+f"((d)[14][0]), "+f"((d)[14][1]), "+f"((d)[14][2]), "+f"((d)[14][3]), "+f"((d)[15][0]), "+f"((d)[15][1]), "+f"((d)[15][2]), "+f"((d)[15][3]), "+f"((d)[16][0]), "+f"((d)[16][1]), "+f"((d)[16][2]), "+f"((d)[16][3]), "+f"((d)[17][0]), "+f"((d)[17][1]), "+f"((d)[17][2]), "+f"((d)[17][3]), "+f"((d)[18][0]), "+f"((d)[18][1]), "+f"((d)[18][2]), "+f"((d)[18][3]), "+f"((d)[19][0]), "+f"((d)[19][1]), "+f"((d)[19][2]), "+f"((d)[19][3]), "+f"((d)[20][0]), "+f"((d)[20][1]), "+f"((d)[20][2]), "+f"((d)[20][3]), "+f"((d)[21][0]), "+f"((d)[21][1]), "+f"((d)[21][2]), "+f"((d)[21][3]), "+f"((d)[22][0]), "+f"((d)[22][1]), "+f"((d)[22][2]), "+f"((d)[22][3]), "+f"((d)[23][0]), "+f"((d)[23][1]), "+f"((d)[23][2]), "+f"((d)[23][3]), "+f"((d)[24][0]), "+f"((d)[24][1]), "+f"((d)[24][2]), "+f"((d)[24][3]), "+f"((d)[25][0]), "+f"((d)[25][1]), "+f"((d)[25][2]), "+f"((d)[25][3]), "+f"((d)[26][0]), "+f"((d)[26][1]), "+f"((d)[26][2]), "+f"((d)[26][3]), "+f"((d)[27][0]), "+f"((d)[27][1]), "+f"((d)[27][2]), "+f"((d)[27][3]), "+f"((d)[28][0]), "+f"((d)[28][1]), "+f"((d)[28][2]), "+f"((d)[28][3]), "+f"((d)[29][0]), "+f"((d)[29][1]), "+f"((d)[29][2]), "+f"((d)[29][3]), "+f"((d)[30][0]), "+f"((d)[30][1]), "+f"((d)[30][2]), "+f"((d)[30][3]), "+f"((d)[31][0]), "+f"((d)[31][1]), "+f"((d)[31][2]), "+f"((d)[31][3]) : "l"(armt_wg_desc(sbase + (off_a))), "l"(armt_wg_desc(sbase + (off_b))), "r"(1))
#if MMA_WG_N == 256
#define MMA_WGMMA_OP(d, off_a, off_b) MMA_WGMMA_OP_256(d, off_a, off_b)
#elif MMA_WG_N == 128
#define MMA_WGMMA_OP(d, off_a, off_b) MMA_WGMMA_OP_128(d, off_a, off_b)
#else
#define MMA_WGMMA_OP(d, off_a, off_b) MMA_WGMMA_OP_64(d, off_a, off_b)
#endif
#define MMA_WG_FENCE() __asm__ __volatile__(MMA_SM90A "wgmma.fence.sync.aligned;" ::: "memory")
#define MMA_WG_COMMIT() __asm__ __volatile__(MMA_SM90A "wgmma.commit_group.sync.aligned;" ::: "memory")
#define MMA_WG_WAIT0() __asm__ __volatile__(MMA_SM90A "wgmma.wait_group.sync.aligned 0;" ::: "memory")
#define MMA_WG_WAIT1() __asm__ __volatile__(MMA_SM90A "wgmma.wait_group.sync.aligned 1;" ::: "memory")
/* local-memory writes of the threads (st.shared, cp.async) made visible to the tensor cores' async proxy */
#define MMA_PROXY_FENCE() __asm__ __volatile__(MMA_SM90A "fence.proxy.async.shared::cta;" ::: "memory")
#else
#define MMA_PROXY_FENCE() ((void)0)
#endif
#endif

#define MMA_LDS32(off) (smem[(off) >> 2])

/* Loads of one stage. 16-byte chunks (bf16 rows: W, and A in the bf16 x bf16 kernel): work-item tid takes
 * chunk tid % CHUNKS of rows tid / CHUNKS + it * CH_RSTEP. fp32 A (float4s): float4 tid % (BK/4) of rows
 * tid / (BK/4) + it * AF_RSTEP. A last partial sweep is guarded (e.g. 96 rows over 256 work-items). */
#define MMA_CH_RSTEP (MMA_THREADS / MMA_CHUNKS)
#if MMA_DUAL_OK && (MMA_BN / 2) % MMA_CH_RSTEP
#error "MMA_DUAL_OK: the W2 half of the tile must start on a row sweep (MMA_BN / 2 a multiple of MMA_CH_RSTEP)"
#endif
#define MMA_CH_ITERS(rows) (((rows) + MMA_CH_RSTEP - 1) / MMA_CH_RSTEP)
#define MMA_AF_F4 (MMA_BK / 4)
#define MMA_AF_RSTEP (MMA_THREADS / MMA_AF_F4)
#define MMA_AF_ITERS ((MMA_BM + MMA_AF_RSTEP - 1) / MMA_AF_RSTEP)
#define MMA_W_ITERS MMA_CH_ITERS(MMA_BN)
#define MMA_AB_ITERS MMA_CH_ITERS(MMA_BM)

/* Columns c, c + 1 of a row (row points at column 0): one 8-byte access where aligned (vec2) and both are
 * inside (c + 1 < n), else each inside alone; a load gives 0 outside. */
inline float2 armt_load_pair(__global const float *row, const int c, const int n, const int vec2) {
    if (vec2 && c + 1 < n) return *(__global const float2 *)(row + c);
    return (float2)(c < n ? row[c] : 0.0f, c + 1 < n ? row[c + 1] : 0.0f);
}
inline void armt_store_pair(__global float *row, const int c, const int n, const int vec2, const float2 v) {
    if (vec2 && c + 1 < n) {
        *(__global float2 *)(row + c) = v;
    } else {
        if (c < n) row[c] = v.x;
        if (c + 1 < n) row[c + 1] = v.y;
    }
}

/* A pair of neighbouring elements (columns c, c + 1 at element offset o of Bj) rounded to bf16: one 32-bit
 * store where aligned (vec2) and both are inside, else each inside one alone. */
inline void armt_store_bf16_pair(__global ushort *Bj, const ulong o, const int c, const int n, const int vec2,
                                 const float v0, const float v1) {
    if (vec2 && c + 1 < n) {
        *(__global uint *)(Bj + o) = armt_bf16x2(v0, v1);
    } else {
        if (c < n) Bj[o] = armt_to_bf16(v0);
        if (c + 1 < n) Bj[o + 1] = armt_to_bf16(v1);
    }
}

/* SwiGLU of a pair: bf16(silu(g) * u) stored as above. */
inline void armt_swiglu_pair(__global ushort *Bj, const ulong o, const int c, const int n, const int vec2,
                             const float g0, const float g1, const float u0, const float u1) {
    armt_store_bf16_pair(Bj, o, c, n, vec2, g0 / (1.0f + exp(-g0)) * u0, g1 / (1.0f + exp(-g1)) * u1);
}

/* RoPE (rotate_half) of the tile's accumulators in place, for head dimension HD (a literal at each call, so
 * that every index below is a constant once inlined and unrolled): output column c is element c % HD of a
 * head, and element i < HD/2 pairs with i + HD/2, HD/16 n8 groups further on in the same thread (the host
 * uses this only where a thread's columns start on a head: (col0 + wn0) % HD == 0 and HD divides 8 MMA_NT).
 * Row r has position pos0 + r % T; tab holds cos then sin of the HD/2 frequencies per position (rope.cl). */
inline __attribute__((always_inline)) void armt_mma_rope(float acc[MMA_MT][MMA_NT][4], const int m, const int rbase,
                                                         const int tc, __global const float *tab, const int T,
                                                         const int pos0, const int HD, const int nq) {
#pragma unroll
    for (int i = 0; i < MMA_MT; i++) {
#pragma unroll
        for (int h = 0; h < 2; h++) {
            const int r = rbase + i * MMA_ISTEP + h * 8;
            if (r >= m) continue;
            __global const float *cs = tab + (ulong)(pos0 + r % T) * HD;
#pragma unroll
            for (int q = 0; q < MMA_NT; q++) {
                if ((q * 8) % HD >= HD / 2 || q + HD / 16 >= nq) continue; /* (nq: the n8 groups to rotate) */
                const int e = (q * 8) % HD + tc; /* element of the head (and e + 1) */
                const float2 c = (float2)(cs[e], cs[e + 1]), sn = (float2)(cs[HD / 2 + e], cs[HD / 2 + e + 1]);
                const float x0 = acc[i][q][2 * h], x1 = acc[i][q][2 * h + 1];
                const float y0 = acc[i][q + HD / 16][2 * h], y1 = acc[i][q + HD / 16][2 * h + 1];
                acc[i][q][2 * h] = x0 * c.x - y0 * sn.x;
                acc[i][q][2 * h + 1] = x1 * c.y - y1 * sn.y;
                acc[i][q + HD / 16][2 * h] = y0 * c.x + x0 * sn.x;
                acc[i][q + HD / 16][2 * h + 1] = y1 * c.y + x1 * sn.y;
            }
        }
    }
}

/* L2 prefetch of the tile's rows of an fp32 m x n matrix (row stride ld) that the epilogue will read: one
 * address per 32 floats (128 bytes) of each row, rows and columns past the matrix skipped. */
inline __attribute__((always_inline)) void armt_mma_prefetch_tile(__global const float *P, const int ld, const int m,
                                                                  const int n, const int row0, const int col0,
                                                                  const int tid) {
#define MMA_PF_ROW (MMA_BN / 32 > 0 ? MMA_BN / 32 : 1) /* prefetches per row */
#pragma unroll
    for (int e = tid; e < MMA_BM * MMA_PF_ROW; e += MMA_THREADS) {
        const int r = row0 + e / MMA_PF_ROW, c = col0 + (e % MMA_PF_ROW) * 32;
        if (r < m && c < n) MMA_PF_L2(P + (ulong)r * ld + c);
    }
#undef MMA_PF_ROW
}

/* Epilogue of one tile: c0,c1 -> (g, 2t..2t+1), c2,c3 -> (g+8, 2t..2t+1) of each 16 x 8 tile; one owner
 * each. Pairs go as float2 where C's offset and ldc are even (8-byte aligned), else as two floats. */
inline __attribute__((always_inline)) void armt_mma_epilogue(float acc[MMA_MT][MMA_NT][4], const int m,
                                                             const int n, const int row0, const int col0,
                                                             const int wm0, const int wn0, const int lane,
                                                             __global float *C, const int ldc, const int beta,
                                                             const ulong c_off, __global const float *Gt,
                                                             __global ushort *Cb, __global ushort *Cb2, const int dual,
                                                             __global const float *rope, const int rope_hd,
                                                             const int rope_T, const int rope_pos0,
                                                             __global const float *rowscale, const ulong s_row0) {
    __global float *Cj = C + c_off;
    const int g = lane >> 2, tc = (lane & 3) * 2;
    const int vec2 = ((c_off | (ulong)ldc) & 1) == 0;
    if (rope) {
        const int rb = row0 + wm0 + g;
        const int nq = dual ? MMA_NT / 2 : MMA_NT; /* (k and v in one tile: k's columns only) */
        if (rope_hd == 64) armt_mma_rope(acc, m, rb, tc, rope, rope_T, rope_pos0, 64, nq);
        else if (rope_hd == 128) armt_mma_rope(acc, m, rb, tc, rope, rope_T, rope_pos0, 128, nq);
        else if (rope_hd == 32) armt_mma_rope(acc, m, rb, tc, rope, rope_T, rope_pos0, 32, nq);
        else if (rope_hd == 16) armt_mma_rope(acc, m, rb, tc, rope, rope_T, rope_pos0, 16, nq);
    }
#if MMA_DUAL_OK
    /* The two dual modes keep loops of their own: one loop with the choice inside cost the gate-and-up GEMM
     * 5% on the H200 (docs/perf/results/2026-11-28-h200-dual-epilogue-fold.txt). */
    if (dual && Cb2) {
        /* k and v in one tile: columns q < NT/2 are k's, q + NT/2 v's, of output column col0 + 8q + tc, each
         * rounded to bf16 into its own output */
        __global ushort *Bj = Cb + c_off, *B2 = Cb2 + c_off;
#pragma unroll
        for (int i = 0; i < MMA_MT; i++) {
#pragma unroll
            for (int h = 0; h < 2; h++) {
                const int r = row0 + wm0 + i * MMA_ISTEP + g + h * 8;
                if (r >= m) continue;
#pragma unroll
                for (int q = 0; q < MMA_NT / 2; q++) {
                    const int c = col0 + q * 8 + tc;
                    armt_store_bf16_pair(Bj, (ulong)r * ldc + c, c, n, vec2, acc[i][q][2 * h], acc[i][q][2 * h + 1]);
                    armt_store_bf16_pair(B2, (ulong)r * ldc + c, c, n, vec2, acc[i][q + MMA_NT / 2][2 * h],
                                         acc[i][q + MMA_NT / 2][2 * h + 1]);
                }
            }
        }
        return;
    }
    if (dual) {
        /* gate and up in one tile: columns q < NT/2 are gate, q + NT/2 up, of output column col0 + 8q + tc */
        __global ushort *Bj = Cb + c_off;
#pragma unroll
        for (int i = 0; i < MMA_MT; i++) {
#pragma unroll
            for (int h = 0; h < 2; h++) {
                const int r = row0 + wm0 + i * MMA_ISTEP + g + h * 8;
                if (r >= m) continue;
#pragma unroll
                for (int q = 0; q < MMA_NT / 2; q++) {
                    const int c = col0 + q * 8 + tc;
                    armt_swiglu_pair(Bj, (ulong)r * ldc + c, c, n, vec2, acc[i][q][2 * h], acc[i][q][2 * h + 1],
                                     acc[i][q + MMA_NT / 2][2 * h], acc[i][q + MMA_NT / 2][2 * h + 1]);
                }
            }
        }
        return;
    }
#endif
    if (Gt) {
        /* SwiGLU epilogue (the up projection): Cb = bf16(silu(Gt) * (A W^T)) at C's offsets; C is not written */
        __global const float *Gj = Gt + c_off;
        __global ushort *Bj = Cb + c_off;
#pragma unroll
        for (int i = 0; i < MMA_MT; i++) {
#pragma unroll
            for (int h = 0; h < 2; h++) {
                const int r = row0 + wm0 + i * MMA_ISTEP + g + h * 8;
                if (r >= m) continue;
#pragma unroll
                for (int q0 = 0; q0 < MMA_NT; q0 += MMA_EPI_Q) {
                    float2 gv[MMA_EPI_Q]; /* read before any store, as C is below */
#pragma unroll
                    for (int e = 0; e < MMA_EPI_Q; e++)
                        gv[e] = armt_load_pair(Gj + (ulong)r * ldc, col0 + wn0 + (q0 + e) * 8 + tc, n, vec2);
#pragma unroll
                    for (int e = 0; e < MMA_EPI_Q; e++) {
                        const int c = col0 + wn0 + (q0 + e) * 8 + tc;
                        armt_swiglu_pair(Bj, (ulong)r * ldc + c, c, n, vec2, gv[e].x, gv[e].y,
                                         acc[i][q0 + e][2 * h], acc[i][q0 + e][2 * h + 1]);
                    }
                }
            }
        }
        return;
    }
    if (Cb) {
        /* bf16 output (the attention's K and V): Cb = bf16(A W^T) at C's element offsets; C is not written */
        __global ushort *Bj = Cb + c_off;
#pragma unroll
        for (int i = 0; i < MMA_MT; i++) {
#pragma unroll
            for (int h = 0; h < 2; h++) {
                const int r = row0 + wm0 + i * MMA_ISTEP + g + h * 8;
                if (r >= m) continue;
#pragma unroll
                for (int q = 0; q < MMA_NT; q++) {
                    const int c = col0 + wn0 + q * 8 + tc;
                    armt_store_bf16_pair(Bj, (ulong)r * ldc + c, c, n, vec2, acc[i][q][2 * h], acc[i][q][2 * h + 1]);
                }
            }
        }
        return;
    }
    /* C += A W^T (beta = 1) reads C first, MMA_EPI_Q pairs at a time: reads after stores into the same
     * buffer cannot be hoisted by the compiler, so loading and storing pair by pair would wait one memory
     * latency per pair (it halved the speed of the o projection in the forward) */
#pragma unroll
    for (int i = 0; i < MMA_MT; i++) {
#pragma unroll
        for (int h = 0; h < 2; h++) {
            const int r = row0 + wm0 + i * MMA_ISTEP + g + h * 8;
            if (r >= m) continue;
            __global float *crow = Cj + (ulong)r * ldc;
            const float sc = rowscale ? rowscale[s_row0 + r] : 1.0f; /* (the memory read's 1 / den) */
#pragma unroll
            for (int q0 = 0; q0 < MMA_NT; q0 += MMA_EPI_Q) {
                float2 old[MMA_EPI_Q];
#pragma unroll
                for (int e = 0; e < MMA_EPI_Q; e++)
                    old[e] = beta ? armt_load_pair(crow, col0 + wn0 + (q0 + e) * 8 + tc, n, vec2) : (float2)(0.0f);
#pragma unroll
                for (int e = 0; e < MMA_EPI_Q; e++) {
                    const float2 v = (float2)(acc[i][q0 + e][2 * h], acc[i][q0 + e][2 * h + 1]) * sc + old[e];
                    armt_store_pair(crow, col0 + wn0 + (q0 + e) * 8 + tc, n, vec2, v);
                }
            }
        }
    }
}

/* The GEMM of both mma entries (inlined into each with abf constant: 0 = fp32 A staged through registers and
 * rounded there, 1 = bf16 A copied like W). Pipeline over k-tiles t (STAGES local-memory slots; slot of tile
 * t = t % STAGES; barrier B_t at the end of tile t):
 *   - cp.async loads of tile t + STAGES - 1 are issued at the start of tile t, into the slot tile t - 1 used
 *     (free: every fragment of tile t - 1 was read into registers before B_{t-1});
 *   - register-staged loads (fp32 A; any bf16 operand when ARMT_MMA_CPASYNC = 0) for tile t + STAGES - 1
 *     were issued one k-tile earlier and are stored just before B_t, and those for the tile after are issued;
 *   - fragments are double-buffered: step ks + 1's ldmatrix run while step ks's mma do; the next tile's
 *     first step is read right after B_t, before this tile's last mma are issued.
 * cp.async.wait_group STAGES - 2 before B_t leaves tile t + 1 complete (one group is committed per tile,
 * empty ones too, so the count is uniform). */
/* A work-group's tile of an entry: (column tile, row tile) = (group 0, group 1) as launched (MMA_RASTER 0), or
 * (MMA_RASTER 1) from the work-group's place in the launch order (dimension 0 fastest), row tiles fastest:
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

inline __attribute__((always_inline)) void armt_mma_gemm(const int m, const int n, const int k, __global const float *Af, __global const ushort *Ab,
                          const int lda, __global const ushort *W, __global float *C, const int ldc, const int beta,
                          const ulong a_off, const ulong w_off, const ulong c_off, const int abf,
                          __global const float *Gt, __global ushort *Cb, __global const ushort *W2,
                          const ulong w2_shift, __global ushort *Cb2, __global const float *rope, const int rope_hd, const int rope_T,
                          const int rope_pos0, __global const float *rowscale, __local uint *smem MMA_EMU_PARAM) {
    const int tid = get_local_id(0), lane = tid & 31, warp = tid >> 5;
    const int dual = MMA_DUAL_OK && W2 != 0;
    /* dual: a tile covers BN/2 output columns (gate and up of each) */
    const int col0 = armt_mma_col_tile() * (dual ? MMA_BN / 2 : MMA_BN), row0 = armt_mma_row_tile() * MMA_BM;
#if MMA_WGMMA
    const int wm0 = (warp >> 2) * MMA_WG_ROWS + (warp & 3) * 16, wn0 = 0; /* the accumulator layout at MMA_MT */
#else
    const int wm0 = (warp / MMA_WARPS_N) * MMA_WM, wn0 = (warp % MMA_WARPS_N) * MMA_WN;
#endif
#if !ARMT_MMA_EMULATE && (ARMT_MMA_LDMATRIX || ARMT_MMA_CPASYNC || MMA_WGMMA)
    const uint sbase = armt_mma_smem_base(smem);
#endif
    /* chunk loads (W, bf16 A) */
    const int ch_c = tid % MMA_CHUNKS, ch_r = tid / MMA_CHUNKS;
    __global const ushort *w_ptr = W + w_off + (ulong)(col0 + ch_r) * k + ch_c * 8;
    /* the upper half of the W tile: W2 in the dual mode, else W's next BN/2 rows (see MMA_ISSUE_CP) */
    __global const ushort *w_hi = dual ? W2 + w_off + w2_shift + (ulong)(col0 + ch_r) * k + ch_c * 8
                                       : w_ptr + (ulong)(MMA_BN / 2) * k;
    const int w_hi_rows = dual ? MMA_BN / 2 : 0;
    __global const ushort *ab_ptr = W; /* set below (bf16 A only) */
    __global const float *af_ptr = 0;  /* set below (fp32 A only) */
    const int af_q = tid % MMA_AF_F4, af_r = tid / MMA_AF_F4;
    if (abf)
        ab_ptr = Ab + a_off + (ulong)(row0 + ch_r) * lda + ch_c * 8;
    else
        af_ptr = Af + a_off + (ulong)(row0 + af_r) * lda + af_q * 4;

    float4 ra[MMA_AF_ITERS]; /* fp32 A of the next tile to store */
#if !ARMT_MMA_CPASYNC
    uint4 rw[MMA_W_ITERS], rab[MMA_AB_ITERS];
#endif

    /* -- cp.async part of tile kt (k0 = kt * BK) into slot sl -- */
#if ARMT_MMA_CPASYNC
#define MMA_ISSUE_CP(kt, sl)                                                                                \
    do {                                                                                                    \
        const int k0_ = (kt)*MMA_BK, kin_ = k0_ + ch_c * 8 < k;                                             \
        const uint sb_ = (uint)(sl)*MMA_STAGE_BYTES;                                                        \
        _Pragma("unroll") for (int it = 0; it < MMA_W_ITERS; it++) {                                        \
            const int r_ = ch_r + it * MMA_CH_RSTEP;                                                        \
            if (MMA_BN % MMA_CH_RSTEP == 0 || r_ < MMA_BN) {                                                \
                /* rows BN/2.. of the tile (it >= W_ITERS/2 exactly there) start at w_hi: W's row col0 +   \
                 * BN/2, or in the dual mode W2's row col0 (then their bound is shifted by w_hi_rows) */    \
                const int hi_ = MMA_DUAL_OK && it >= MMA_W_ITERS / 2;                                       \
                const int ok_ = kin_ && col0 + r_ - (hi_ ? w_hi_rows : 0) < n;                              \
                __global const ushort *src_ =                                                               \
                    hi_ ? w_hi + (ulong)((it - MMA_W_ITERS / 2) * MMA_CH_RSTEP) * k + k0_                   \
                        : w_ptr + (ulong)(it * MMA_CH_RSTEP) * k + k0_;                                     \
                MMA_CP16(sb_ + MMA_A_BYTES + MMA_OFF(r_, ch_c), ok_ ? src_ : W, ok_ ? 16 : 0);              \
            }                                                                                               \
        }                                                                                                   \
        if (abf && MMA_DIAG != 2) {                                                                         \
            _Pragma("unroll") for (int it = 0; it < MMA_AB_ITERS; it++) {                                   \
                const int r_ = ch_r + it * MMA_CH_RSTEP;                                                    \
                if (MMA_BM % MMA_CH_RSTEP == 0 || r_ < MMA_BM) {                                            \
                    const int ok_ = kin_ && row0 + r_ < m;                                                  \
                    MMA_CP16(sb_ + MMA_OFF(r_, ch_c), ok_ ? ab_ptr + (ulong)(it * MMA_CH_RSTEP) * lda + k0_ \
                                                          : W,                                              \
                             ok_ ? 16 : 0);                                                                 \
                }                                                                                           \
            }                                                                                               \
        }                                                                                                   \
    } while (0)
#else
#define MMA_ISSUE_CP(kt, sl) ((void)0)
#endif

    /* -- register-staged part of tile kt: global -> registers -- */
#define MMA_LOAD_AF(kt)                                                                                      \
    do {                                                                                                     \
        const int k0_ = (kt)*MMA_BK, kin_ = k0_ + af_q * 4 < k;                                              \
        _Pragma("unroll") for (int it = 0; it < MMA_AF_ITERS; it++) {                                        \
            const int r_ = af_r + it * MMA_AF_RSTEP;                                                         \
            const int ok_ = kin_ && (MMA_BM % MMA_AF_RSTEP == 0 || r_ < MMA_BM) && row0 + r_ < m;            \
            ra[it] = ok_ ? *(__global const float4 *)(af_ptr + (ulong)(it * MMA_AF_RSTEP) * lda + k0_)       \
                         : (float4)(0.0f);                                                                   \
        }                                                                                                    \
    } while (0)
#if ARMT_MMA_CPASYNC
#define MMA_LOAD_REGS(kt)                \
    do {                                 \
        if (!abf) MMA_LOAD_AF(kt);       \
    } while (0)
#else
#define MMA_LOAD_CH(regs, iters, ptr, ld, rows, lim, kt)                                                      \
    do {                                                                                                      \
        const int k0_ = (kt)*MMA_BK, kin_ = k0_ + ch_c * 8 < k;                                               \
        _Pragma("unroll") for (int it = 0; it < iters; it++) {                                                \
            const int r_ = ch_r + it * MMA_CH_RSTEP;                                                          \
            const int ok_ = kin_ && ((rows) % MMA_CH_RSTEP == 0 || r_ < (rows)) && (lim) + r_ < 0;            \
            regs[it] = ok_ ? *(__global const uint4 *)((ptr) + (ulong)(it * MMA_CH_RSTEP) * (ld) + k0_)       \
                           : (uint4)(0u);                                                                     \
        }                                                                                                     \
    } while (0)
#define MMA_LOAD_REGS(kt)                                                  \
    do {                                                                   \
        MMA_LOAD_CH(rw, MMA_W_ITERS, w_ptr, k, MMA_BN, col0 - n, kt);      \
        if (abf)                                                           \
            MMA_LOAD_CH(rab, MMA_AB_ITERS, ab_ptr, lda, MMA_BM, row0 - m, kt); \
        else                                                               \
            MMA_LOAD_AF(kt);                                               \
    } while (0)
#endif

    /* -- registers -> slot sl -- */
#define MMA_STORE_AF(sb)                                                                                 \
    do {                                                                                                 \
        _Pragma("unroll") for (int it = 0; it < MMA_AF_ITERS; it++) {                                    \
            const int r_ = af_r + it * MMA_AF_RSTEP;                                                     \
            if (MMA_BM % MMA_AF_RSTEP == 0 || r_ < MMA_BM) {                                             \
                const uint off_ = (sb) + MMA_OFF(r_, af_q >> 1) + (af_q & 1) * 8;                        \
                *(__local uint2 *)((__local uchar *)smem + off_) =                                       \
                    (uint2)(armt_mma_bf16x2(ra[it].x, ra[it].y), armt_mma_bf16x2(ra[it].z, ra[it].w));   \
            }                                                                                            \
        }                                                                                                \
    } while (0)
#if ARMT_MMA_CPASYNC
#define MMA_STORE_REGS(sl)                             \
    do {                                               \
        if (!abf) MMA_STORE_AF((uint)(sl)*MMA_STAGE_BYTES); \
    } while (0)
#else
#define MMA_STORE_CH(regs, iters, rows, sb)                                                   \
    do {                                                                                      \
        _Pragma("unroll") for (int it = 0; it < iters; it++) {                                \
            const int r_ = ch_r + it * MMA_CH_RSTEP;                                          \
            if ((rows) % MMA_CH_RSTEP == 0 || r_ < (rows))                                    \
                *(__local uint4 *)((__local uchar *)smem + (sb) + MMA_OFF(r_, ch_c)) = regs[it]; \
        }                                                                                     \
    } while (0)
#define MMA_STORE_REGS(sl)                                                      \
    do {                                                                        \
        const uint sb_ = (uint)(sl)*MMA_STAGE_BYTES;                            \
        MMA_STORE_CH(rw, MMA_W_ITERS, MMA_BN, sb_ + MMA_A_BYTES);               \
        if (abf)                                                                \
            MMA_STORE_CH(rab, MMA_AB_ITERS, MMA_BM, sb_);                       \
        else                                                                    \
            MMA_STORE_AF(sb_);                                                  \
    } while (0)
#endif

    /* -- fragments of step ks of the tile in slot sl -> fa, fb -- */
#if ARMT_MMA_LDMATRIX
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
#else
#define MMA_FRAGS(fa, fb, sl, ks)                                                      \
    do {                                                                               \
        const uint sb_ = (uint)(sl)*MMA_STAGE_BYTES;                                   \
        const int g = lane >> 2, tq = (lane & 3) * 4;                                  \
        _Pragma("unroll") for (int i = 0; i < MMA_MT; i++) {                           \
            const int r = wm0 + i * 16 + g;                                            \
            fa[i][0] = MMA_LDS32(sb_ + MMA_OFF(r, 2 * (ks)) + tq);                     \
            fa[i][1] = MMA_LDS32(sb_ + MMA_OFF(r + 8, 2 * (ks)) + tq);                 \
            fa[i][2] = MMA_LDS32(sb_ + MMA_OFF(r, 2 * (ks) + 1) + tq);                 \
            fa[i][3] = MMA_LDS32(sb_ + MMA_OFF(r + 8, 2 * (ks) + 1) + tq);             \
        }                                                                              \
        _Pragma("unroll") for (int q = 0; q < MMA_NT; q++) {                           \
            const int r = wn0 + q * 8 + g;                                             \
            fb[q][0] = MMA_LDS32(sb_ + MMA_A_BYTES + MMA_OFF(r, 2 * (ks)) + tq);       \
            fb[q][1] = MMA_LDS32(sb_ + MMA_A_BYTES + MMA_OFF(r, 2 * (ks) + 1) + tq);   \
        }                                                                              \
    } while (0)
#endif

    float acc[MMA_MT][MMA_NT][4];
#pragma unroll
    for (int i = 0; i < MMA_MT; i++)
#pragma unroll
        for (int q = 0; q < MMA_NT; q++)
#pragma unroll
            for (int e = 0; e < 4; e++) acc[i][q][e] = 0.0f;

    const int ktiles = (k + MMA_BK - 1) / MMA_BK;
    /* what the epilogue reads, to prefetch into L2 at k-tile pf_t (MMA_PF_C) */
    __global const float *pf = !MMA_PF_C || dual ? 0 : Gt ? Gt + c_off : beta ? (__global const float *)C + c_off : 0;
    const int pf_t = ktiles > MMA_PF_DIST ? ktiles - MMA_PF_DIST : 0;
#define MMA_PF_AT(t)                                                          \
    do {                                                                      \
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

#if MMA_DIAG == 1
#define MMA_DIAG_LOADS 0
#else
#define MMA_DIAG_LOADS 1
#endif
#if MMA_WGMMA
    /* this warpgroup's rows of the A tile */
    const uint wg_a = (uint)(warp >> 2) * (MMA_WG_ROWS * MMA_ROWB);
#define MMA_WG_ISSUE(sa)                                                                                      \
    do {                                                                                                      \
        MMA_WG_FENCE();                                                                                       \
        _Pragma("unroll") for (int ks = 0; ks < MMA_KS; ks++)                                                 \
            _Pragma("unroll") for (int i = 0; i < MMA_MT; i++)                                                \
                _Pragma("unroll") for (int nc = 0; nc < MMA_BN / MMA_WG_N; nc++)                              \
                    MMA_WGMMA_OP(acc[i] + nc * (MMA_WG_N / 8), (sa) + wg_a + (uint)(i * 64 * MMA_ROWB + ks * 32), \
                                 (sa) + (uint)(MMA_A_BYTES + nc * MMA_WG_N * MMA_ROWB + ks * 32));            \
        MMA_WG_COMMIT();                                                                                      \
    } while (0)
#endif

#if MMA_WGMMA && MMA_WG_DEPTH
    /* Tile t: issue its wgmma group on slot rd; wait until tile t - 1's group is done (tile t's stays in
     * flight) and tile t + 1 has landed; fence, barrier. After the barrier no warp reads slot wr (tile t - 1's)
     * any more: the loads of tile t + STAGES - 1 go there, while tile t's wgmma still runs. */
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
        if (nt < ktiles && MMA_DIAG_LOADS) {
            MMA_ISSUE_CP(nt, wr);
            MMA_STORE_REGS(wr);
            if (nt + 1 < ktiles) MMA_LOAD_REGS(nt + 1);
        }
        MMA_CP_COMMIT();
        wr = rd;
        rd = rd_next;
    }
    MMA_WG_WAIT0();
#elif MMA_WGMMA
    /* Tile t: issue its wgmma (asynchronous) on slot rd, then - while the tensor cores work - the cp.async of
     * tile t + STAGES - 1 into slot wr (tile t - 1's, complete) and the register-staged stores; wait for the
     * wgmma group, make this thread's local writes visible to the async proxy, barrier. */
    int rd = 0, wr = MMA_STAGES - 1;
    for (int t = 0; t < ktiles; t++) {
        const int nt = t + MMA_STAGES - 1;
        const int rd_next = rd + 1 == MMA_STAGES ? 0 : rd + 1;
        MMA_WG_ISSUE((uint)rd * MMA_STAGE_BYTES);
        MMA_PF_AT(t);
        if (nt < ktiles && MMA_DIAG_LOADS) {
            MMA_ISSUE_CP(nt, wr);
            MMA_STORE_REGS(wr);
            if (nt + 1 < ktiles) MMA_LOAD_REGS(nt + 1);
        }
        MMA_CP_COMMIT();
        MMA_WG_WAIT0();
        MMA_CP_WAIT(MMA_PENDING);
        MMA_PROXY_FENCE();
        barrier(CLK_LOCAL_MEM_FENCE);
        wr = rd;
        rd = rd_next;
    }
#else

    uint fa[1 + MMA_FRAG_DB][MMA_MT][4], fb[1 + MMA_FRAG_DB][MMA_NT][2];
#if MMA_FRAG_DB
    MMA_FRAGS(fa[0], fb[0], 0, 0);
#endif
    int rd = 0, wr = MMA_STAGES - 1; /* slot of tile t, slot of tile t + STAGES - 1 (= slot of tile t - 1) */
    for (int t = 0; t < ktiles; t++) {
        const int nt = t + MMA_STAGES - 1;
        const int rd_next = rd + 1 == MMA_STAGES ? 0 : rd + 1;
        if (nt < ktiles) MMA_ISSUE_CP(nt, wr);
        MMA_CP_COMMIT();
        MMA_PF_AT(t);
#pragma unroll
        for (int ks = 0; ks < MMA_KS; ks++) {
#if MMA_FRAG_DB
#define MMA_CUR (ks & 1)
            if (ks + 1 < MMA_KS) MMA_FRAGS(fa[(ks + 1) & 1], fb[(ks + 1) & 1], rd, ks + 1);
#else
#define MMA_CUR 0
            MMA_FRAGS(fa[0], fb[0], rd, ks);
#endif
            if (ks + 1 == MMA_KS) {
                /* every fragment of this tile is in registers: after the barrier its slot may be refilled */
                if (nt < ktiles) {
                    MMA_STORE_REGS(wr);
                    if (nt + 1 < ktiles) MMA_LOAD_REGS(nt + 1);
                }
                MMA_CP_WAIT(MMA_PENDING);
                barrier(CLK_LOCAL_MEM_FENCE);
#if MMA_FRAG_DB
                if (t + 1 < ktiles) MMA_FRAGS(fa[(ks + 1) & 1], fb[(ks + 1) & 1], rd_next, 0);
#endif
            }
#pragma unroll
            for (int i = 0; i < MMA_MT; i++)
#pragma unroll
                for (int q = 0; q < MMA_NT; q++) MMA_MMA(acc[i][q], fa[MMA_CUR][i], fb[MMA_CUR][q]);
#undef MMA_CUR
        }
#if MMA_FRAG_DB && MMA_KS % 2
        /* odd steps per tile: the next tile's first fragments landed in buffer 1 */
#pragma unroll
        for (int i = 0; i < MMA_MT; i++)
#pragma unroll
            for (int e = 0; e < 4; e++) fa[0][i][e] = fa[1][i][e];
#pragma unroll
        for (int q = 0; q < MMA_NT; q++) fb[0][q][0] = fb[1][q][0], fb[0][q][1] = fb[1][q][1];
#endif
        wr = rd;
        rd = rd_next;
    }
#endif

    armt_mma_epilogue(acc, m, n, row0, col0, wm0, wn0, lane, C, ldc, beta, c_off, Gt, Cb, Cb2, dual, rope, rope_hd,
                      rope_T, rope_pos0, rowscale, rowscale ? a_off / (ulong)lda : 0);
}

/* fp32 A, rounded to bf16 as it is staged (the documented entry; see the header). Gt, Cb: NULL, or the SwiGLU
 * epilogue (Cb = bf16(silu(Gt) * A W^T) at C's offsets, C untouched; beta ignored), or Cb alone: the product
 * rounded to bf16 into Cb instead of C. */
__kernel __attribute__((reqd_work_group_size(MMA_THREADS, 1, 1))) void armt_gemm_bf16_mma(
    GEMM_BF16_ARGS, __global const float *Gt, __global ushort *Cb, const int last_row0) {
    __local uint smem[MMA_STAGES * MMA_STAGE_BYTES / 4] __attribute__((aligned(MMA_SMEM_ALIGN)));
    MMA_EMU_LOCALS
    if (GEMM_SKIP_TILE(armt_mma_row_tile(), MMA_BM, last_row0)) return;
    const int j = get_group_id(2);
    GEMM_ENTRY_OFFSETS(j, a_off, w_off, c_off)
    armt_mma_gemm(m, n, k, A, 0, lda, W, C, ldc, beta, a_off, w_off, c_off, 0, Gt, Cb, 0, 0, 0, 0, 0, 1, 0, 0, smem,
                  MMA_EMU_ARG);
}

/* bf16 A (ushort, e.g. from armt_f32_to_bf16): both operands by cp.async; otherwise the same arguments, plus
 * W2, w2_shift: NULL (and 0), or - where MMA_DUAL_OK (wgmma, MMA_BN 256) - gate and up in one GEMM: W holds
 * the gate weights and W2 the up weights of entry j at w_off(j) + w2_shift (same shape, n x k); Cb gets
 * bf16(silu(A W^T) * (A W2^T)) at C's offsets (n columns), C and Gt are not used. Global size dimension 0:
 * ceil(n / (MMA_BN / 2)) * MMA_THREADS.
 * rope, rope_hd, rope_T, rope_pos0: NULL (and anything), or RoPE applied to the product before it is stored
 * (the q and k projections; see armt_mma_rope): the rope.cl table, the head dimension (16, 32, 64 or 128; it
 * must divide the columns a thread holds, 8 MMA_NT, and n), rows per cell and the first position.
 * rowscale: NULL, or C = C (beta) + s_i (A W^T)_i with s_i = rowscale[a_off / lda + i] (the memory read's
 * 1 / den per row, laid out like A's rows; a_off must then be a multiple of lda).
 * Cb2: NULL, or - with W2 - k and v in one GEMM instead of gate and up: W holds the k weights and W2 the v
 * weights; A W^T (RoPE applied when rope is set) goes to Cb and A W2^T to Cb2, both rounded to bf16 at C's
 * offsets (n columns each). */
__kernel __attribute__((reqd_work_group_size(MMA_THREADS, 1, 1))) void armt_gemm_bf16bf16_mma(
    const int m, const int n, const int k, __global const ushort *A, const int lda, __global const ushort *W,
    __global float *C, const int ldc, const int beta, __global const ulong *offs, const ulong a_base,
    const ulong a_stride, const ulong w_base, const ulong w_stride, const ulong c_base, const ulong c_stride,
    __global const float *Gt, __global ushort *Cb, __global const ushort *W2, const ulong w2_shift,
    __global const float *rope, const int rope_hd, const int rope_T, const int rope_pos0,
    __global const float *rowscale, __global ushort *Cb2, const int last_row0) {
    __local uint smem[MMA_STAGES * MMA_STAGE_BYTES / 4] __attribute__((aligned(MMA_SMEM_ALIGN)));
    MMA_EMU_LOCALS
    if (GEMM_SKIP_TILE(armt_mma_row_tile(), MMA_BM, last_row0)) return;
    const int j = get_group_id(2);
    GEMM_ENTRY_OFFSETS(j, a_off, w_off, c_off)
    armt_mma_gemm(m, n, k, 0, A, lda, W, C, ldc, beta, a_off, w_off, c_off, 1, Gt, Cb, W2, w2_shift, Cb2, rope, rope_hd,
                  rope_T, rope_pos0, rowscale, smem, MMA_EMU_ARG);
}

#endif /* ARMT_NV_MMA || ARMT_MMA_EMULATE */
