/*
 * gemm_mma_params.cl - tunables and their checks for the tensor-core GEMM kernels (gemm_mma_*.cl, after
 * gemm_bf16.cl and mma.cl). The host (lib/device/tune.c) passes the tiles as -D options; the defaults below
 * are
 * the mma.sync tiles. Contract of the kernels (arguments as in gemm_bf16.cl, epilogue arguments in
 * gemm_mma_entries.cl):
 *
 * (c) armt_gemm_bf16_mma - NVIDIA tensor cores (compute capability >= 8.0; inline PTX: mma.sync.m16n8k16
 *     bf16 -> f32, ldmatrix, cp.async, cvt.rn.bf16x2.f32), or mma.cl's stand-ins with ARMT_MMA_EMULATE.
 *     Block tile MMA_BM x MMA_BN x MMA_BK (128 x 128 x 32), MMA_WARPS_M x MMA_WARPS_N warps (2 x 2): each
 *     warp owns 64 x 64 (4 x 8 mma tiles, 128 fp32 accumulators per lane). MMA_STAGES local-memory stages of
 *     bf16 tiles (default: as many as fit in 48 KiB, at most 4: 3 for the default tile), the 16-byte chunks
 *     of
 *     each row XOR-swizzled so that ldmatrix and the tile stores are free of bank conflicts. W tiles go
 *     global
 *     -> local by cp.async, STAGES-1 k-tiles ahead; A tiles through registers (the fp32 -> bf16x2 packing
 *     needs them), loaded one k-tile ahead and stored just before the barrier that ends each k-tile.
 *     local size  = (MMA_THREADS, 1, 1) = (32 * MMA_WARPS_M * MMA_WARPS_N, 1, 1)       = (128, 1, 1)
 *     global size = (ceil(n / MMA_BN) * MMA_THREADS, ceil(m / MMA_BM), count)
 *     Requirements (the host checks them; the kernel does not): k % 8 == 0, lda % 4 == 0, every
 *     a_off % 4 == 0, every w_off % 8 == 0 (16-byte aligned float4 and 16-byte chunk loads; a chunk of k is
 *     then wholly inside or wholly outside the matrix). m, n, ldc and c_off are arbitrary. MMA_BK may be 16,
 *     32 or 64; warp tiles may be any multiple of 16 x 16 (e.g. 48-row). Warps are assumed to be 32
 *     consecutive local ids (NVIDIA). Measurements: docs/perf/results/2026-11-28-h200-gemm-bf16-v2.txt.
 *     MMA_WGMMA=1 (compute capability 9.0): the multiply is Hopper wgmma from the local tiles, written as
 *     marked PTX comments that lib/device/nv_ptx.c makes live for sm_90a. The work-group is whole warpgroups
 *     that
 *     split the tile's rows (each: m64 x MMA_WG_N x k16 per instruction, MMA_WG_N 64, 128 or 256); the row
 *     swizzle of BK 16 / 32 / 64 is the hardware's 32 / 64 / 128-byte swizzle. One wgmma group stays in
 *     flight across each k-tile barrier (the loads of the next tile go after it, so it needs 3+ stages).
 *     MMA_SMEM_MAX (49152) raises the local-memory cap: NVIDIA's OpenCL reports 48 KiB but builds and runs
 *     larger static arrays (bench/nv_probe). MMA_RASTER 1 hands work-groups their tiles row tiles first in
 *     launch order (armt_mma_row_tile), so that those running together share the weights' column tiles in L2.
 *     The tiles the library picks per device are in lib/device/tune.c.
 *
 * (d) armt_gemm_bf16bf16_mma - as (c), built with it, but A is bf16 (__global const ushort *A, e.g. from
 * (b));
 *     every other argument, the local and global sizes and the tile options are those of (c). Both operands
 *     go
 *     by cp.async, nothing is staged through registers. Requirements: k % 8 == 0, lda % 8 == 0, every
 *     a_off % 8 == 0, every w_off % 8 == 0. With wgmma it is the faster of the two, so the library rounds
 *     each
 *     GEMM input once and runs (d).
 *
 *     ARMT_MMA_EMULATE=1 (tests only) builds (c) and (d) with OpenCL C stand-ins for every PTX instruction
 *     (warp exchanges through local memory), so that the tiling, the swizzle, the pipeline and the fragment
 *     maps can be checked on any device.
 */
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

#ifndef MMA_WGMMA
#define MMA_WGMMA \
    0 /* 1: Hopper wgmma (sm_90a): the work-group is one warpgroup that multiplies straight from the         \
       * local tiles (no fragments in registers), m64 x MMA_WG_N x k16 per instruction */
#endif
#ifndef MMA_WG_N
#define MMA_WG_N 128 /* n of one wgmma instruction: 64, 128 or 256 */
#endif
/* Gate and up in one GEMM (W2 != NULL, wgmma with 256-wide tiles only): the tile's first 128 W rows come
 * from W (gate), the last 128 from W2 (up), both at the same output columns, so each thread holds gate and
 * up of the same elements and writes bf16(silu(gate) * up); see the bf16 x bf16 entry. */
#define MMA_DUAL_OK (MMA_WGMMA && MMA_BN == 256 && (MMA_BN / 2) % (MMA_THREADS / (MMA_BK / 8)) == 0)
/* Row tiles with at most 64 rows inside m run in the half mode (gemm_mma.cl): the 128 x 256 tiles of two
 * warpgroups, one m64 block each, whole-tile wgmma n (the split gives each warpgroup n 128) */
#define MMA_HALF_OK (MMA_WGMMA && MMA_BM == 128 && MMA_THREADS == 256 && MMA_BN == 256 && MMA_WG_N == 256)

#define MMA_THREADS (32 * MMA_WARPS_M * MMA_WARPS_N)
#define MMA_WM      (MMA_BM / MMA_WARPS_M) /* warp tile rows */
#define MMA_WN      (MMA_BN / MMA_WARPS_N) /* warp tile columns */
#if MMA_WGMMA
#define MMA_SMEM_ALIGN 1024 /* swizzled tiles start on (8 x row bytes)-byte boundaries */
/* Warpgroups (4 warps each) split the tile's rows: warpgroup g owns rows g * MMA_WG_ROWS .. + MMA_WG_ROWS.
 * accumulators acc[i][q][e]: row MMA_WG_ROWS (warp / 4) + 64 i + 16 (warp % 4) + lane/4 + 8 (e >> 1),
 * column 8 q + 2 (lane % 4) + (e & 1) */
#define MMA_WGS     (MMA_THREADS / 128)
#define MMA_WG_ROWS (MMA_BM / MMA_WGS)
#define MMA_MT      (MMA_WG_ROWS / 64) /* m64 blocks of a warpgroup */
#define MMA_NT      (MMA_BN / 8)       /* n8 columns groups */
#define MMA_ISTEP   64
#if MMA_THREADS % 128 || MMA_BM % MMA_WGS || MMA_WG_ROWS % 64 || MMA_BN % MMA_WG_N || \
    (MMA_WG_N != 64 && MMA_WG_N != 128 && MMA_WG_N != 256)
#error "MMA_WGMMA: whole warpgroups (4 warps), MMA_BM a multiple of 64 per warpgroup, MMA_BN of MMA_WG_N"
#endif
#else
#define MMA_MT         (MMA_WM / 16) /* m16 tiles per warp */
#define MMA_NT         (MMA_WN / 8)  /* n8 tiles per warp */
#define MMA_ISTEP      16
#define MMA_SMEM_ALIGN 16
#endif
/* MMA_RASTER 1: work-groups take their tiles row tiles first in launch order (armt_mma_row_tile). */
#ifndef MMA_RASTER
#define MMA_RASTER 0
#endif
/* The epilogue's reads (C with beta = 1: the residual stream; the SwiGLU gate Gt) are prefetched into L2
 * MMA_PF_DIST k-tiles before the mainloop ends (at its start when it is shorter), so that they come from
 * L2 rather than HBM once the accumulators are done: every work-group of a wave reaches its epilogue at the
 * same time, and reading C then would leave the tensor cores idle. 0: off. Off by default with MMA_RASTER 1,
 * where work-groups running together already share their tiles in L2 and the prefetch only adds traffic. */
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
#define MMA_KS          (MMA_BK / 16) /* k16 steps per stage */
#define MMA_ROWB        (MMA_BK * 2)  /* bytes per local tile row (bf16) */
#define MMA_CHUNKS      (MMA_BK / 8)  /* 16-byte chunks per row */
#define MMA_A_BYTES     (MMA_BM * MMA_ROWB)
#define MMA_STAGE_BYTES ((MMA_BM + MMA_BN) * MMA_ROWB)
#ifndef MMA_STAGES /* local-memory stages: as many as 48 KiB hold, at most 4 */
#if MMA_WGMMA && 3 * MMA_STAGE_BYTES > 49152
#error "wgmma needs 3 stages (at least): set MMA_STAGES or smaller tiles"
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
#if MMA_STAGES < 2 || MMA_STAGES > 8 || (!MMA_WGMMA && MMA_STAGES > 4) || (MMA_WGMMA && MMA_STAGES < 3)
#error "MMA_STAGES must be 2..4 (mma.sync), 2..8 (wgmma; 3..8 with MMA_WG_DEPTH 1), and fit in MMA_SMEM_MAX"
#endif
#if MMA_STAGES * MMA_STAGE_BYTES > MMA_SMEM_MAX
#error "MMA tiles x stages need more local memory than MMA_SMEM_MAX"
#endif
/* cp.async groups that may stay in flight at the barrier (a literal: it goes into the PTX text):
 * STAGES - 2 when the loads of a tile are issued before its barrier, STAGES - 3 when after it (WG_DEPTH 1) */
#define MMA_PEND_AFTER MMA_WGMMA
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

/* Loads of one stage. 16-byte chunks (bf16 rows: W, and A in the bf16 x bf16 kernel): work-item tid takes
 * chunk tid % CHUNKS of rows tid / CHUNKS + it * CH_RSTEP. fp32 A (float4s): float4 tid % (BK/4) of rows
 * tid / (BK/4) + it * AF_RSTEP. A last partial sweep is guarded (e.g. 96 rows over 256 work-items). */
#define MMA_CH_RSTEP (MMA_THREADS / MMA_CHUNKS)
#if MMA_DUAL_OK && (MMA_BN / 2) % MMA_CH_RSTEP
#error \
    "MMA_DUAL_OK: the W2 half of the tile must start on a row sweep (MMA_BN / 2 a multiple of MMA_CH_RSTEP)"
#endif
#define MMA_CH_ITERS(rows) (((rows) + MMA_CH_RSTEP - 1) / MMA_CH_RSTEP)
#define MMA_AF_F4          (MMA_BK / 4)
#define MMA_AF_RSTEP       (MMA_THREADS / MMA_AF_F4)
#define MMA_AF_ITERS       ((MMA_BM + MMA_AF_RSTEP - 1) / MMA_AF_RSTEP)
#define MMA_W_ITERS        MMA_CH_ITERS(MMA_BN)
#define MMA_AB_ITERS       MMA_CH_ITERS(MMA_BM)
