/*
 * gemm_tf32_wg.cl - 3xTF32 (gemm_tf32.cl's split and accuracy) on Hopper's wgmma, for the common layout: A
 * m x k and W n x k, both row-major (trans_a = w_kn = 0). Built after gemm_tf32.cl in its program, only with
 * TF_WGMMA=1 (lib/device/tune.c: compute capability 9.0, or the stand-ins when asked); the host checks the
 * built kernel on a product it knows before it uses it (lib/device/programs.c).
 *
 *   C_j (m x n) = A_j W_j^T (+ C_j when beta = 1), j < count: gemm_tf32.cl's contract and arguments.
 *
 * Why: mma.sync reaches a fraction of Hopper's TF32 rate, and every warp splits every fragment element it
 * reads (each A element once per warp column, each W element once per warp row). Here each element is split
 * once, on its way into local memory, and the tensor cores read the parts straight from there.
 *
 * Work-group: TW_WGM warpgroups (128 work-items each) on a TW_BM x TW_N tile of C (TW_BM = 64 TW_WGM);
 * warpgroup g owns the tile's rows 64 g .. 64 g + 63 and every column, one wgmma m64nTW_Nk8 per product and
 * k8 step. k goes in steps of TW_BK = 32 floats (one 128-byte row of a tile) through TW_STAGES local-memory
 * stages. A stage holds four tiles, each K-major with 128-byte rows swizzled as wgmma's 128-byte mode reads
 * them (the 16-byte chunk c of row r at chunk c ^ (r % 8)): A's high parts, A's low parts (TW_BM rows each),
 * W's high parts, W's low parts (TW_N rows each). The work-items load A and W as float4 (global ->
 * registers one k-tile ahead), split each element x into hi = tf32(x) and lo = tf32(x - hi) (gemm_tf32.cl's
 * TF32_SPLIT, rounded to nearest) and store both parts. Per k8 step: lo_A hi_W and hi_A lo_W into
 * accumulators of their own, then hi_A hi_W into the main ones (TF32_ORDER 2: the small products are added
 * to the main sums at the end). TF32_PRODUCTS=1 (tests): hi_A hi_W alone, a plain TF32 GEMM.
 * TW_SPLIT=1 (the default; 0 a build option): each k-tile's main products go to accumulators zeroed for the
 * tile (tacc), added to the main ones by fp32 adds once the tile's group is done, so that the tensor cores'
 * own accumulation (which on an H100 left 3xTF32 2.7-11.8 times CLBlast's rms error at the model's k)
 * covers TW_BK terms and round-to-nearest adds the rest; the groups then run one at a time (tacc is
 * reused), and tacc takes TW_NQ x 4 more registers. Measured on an H200 (docs/perf/results/
 * 2026-12-07-h200-fp32-split-and-decode.md): 0.19-0.25 times CLBlast's rms error at every model site, at
 * 2.3-3.2 times its speed (about 8% slower than without).
 *     local size  = (TW_THREADS, 1, 1),  global size = (ceil(n / TW_N) TW_THREADS, ceil(m / TW_BM), count)
 *     Requirements (the host checks them): lda, ldw and every a_off and w_off multiples of 4; TW_STAGES >= 3
 *     (a stage's stores and the wgmma that reads it are a barrier apart).
 */
#if TF_WGMMA
#ifndef TW_WGM
#define TW_WGM 2 /* warpgroups along m */
#endif
#ifndef TW_N
#define TW_N 128 /* columns per tile: wgmma's n (128 or 64; 32 or 64 under the stand-ins) */
#endif
#ifndef TW_STAGES
#define TW_STAGES 3
#endif
#ifndef TW_SPLIT
#define TW_SPLIT 1
#endif
#define TW_BK          32 /* floats of k per stage: 128-byte tile rows */
#define TW_BM          (64 * TW_WGM)
#define TW_THREADS     (128 * TW_WGM)
#define TW_ROWB        128
#define TW_A_BYTES     (TW_BM * TW_ROWB) /* one part (hi or lo) of A's tile */
#define TW_W_BYTES     (TW_N * TW_ROWB)
#define TW_STAGE_BYTES (2 * (TW_A_BYTES + TW_W_BYTES))
#define TW_A_ITERS     (TW_BM * 8 / TW_THREADS) /* float4 loads per work-item and k-tile (= 4) */
#define TW_W_ITERS     (TW_N * 8 / TW_THREADS)
#define TW_NQ          (TW_N / 8) /* n8 groups of a warpgroup's accumulators */
#if TW_STAGES < 3 || TW_N % 32 || (TW_N * 8) % TW_THREADS
#error "gemm_tf32_wg: TW_STAGES >= 3, TW_N a multiple of 32 with whole float4 rounds"
#endif
/* byte offset of 16-byte chunk c of row r in a tile (128-byte swizzle) */
#define TW_OFF(r, c) ((uint)(r)*TW_ROWB + ((uint)((c) ^ ((r)&7)) << 4))

#if ARMT_MMA_EMULATE
/* The stand-in of wgmma m64nNk8 tf32 (both operands K-major in local memory, 128-byte swizzle): the
 * warpgroup's D (64 x N) += A (64 x 8) B^T, A and B given by their start byte offsets. It reads as the
 * descriptor tells the hardware to: row r at start + (r / 8) 1024 + (r % 8) 128, element kk at + 4 kk, then
 * the address's 16-byte chunk bits [4, 7) XORed with its bits [7, 10); the low 13 bits of each operand are
 * not read. Thread (warp w of its warpgroup, lane l) holds d[q][e]: row 16 w + l / 4 + 8 (e / 2), column
 * 8 q + 2 (l % 4) + e % 2. It completes at once: fence, commit and wait are no-ops. */
inline float armt_tw_elem(__local const uint *smem, uint start, int r, int kk) {
    const uint addr = start + (uint)(r >> 3) * 1024u + (uint)(r & 7) * 128u + 4u * (uint)kk;
    const uint phys = addr ^ (((addr >> 7) & 7u) << 4);
    return as_float(smem[phys >> 2] & 0xffffe000u);
}
#define TW_WGMMA(d, off_a, off_b)                                                                      \
    do {                                                                                               \
        for (int q_ = 0; q_ < TW_NQ; q_++)                                                             \
            for (int e_ = 0; e_ < 4; e_++) {                                                           \
                const int r_ = 16 * (warp & 3) + (lane >> 2) + 8 * (e_ >> 1);                          \
                const int c_ = 8 * q_ + 2 * (lane & 3) + (e_ & 1);                                     \
                float s_ = (d)[q_][e_];                                                                \
                for (int kk_ = 0; kk_ < 8; kk_++)                                                      \
                    s_ += armt_tw_elem(smem, (off_a), r_, kk_) * armt_tw_elem(smem, (off_b), c_, kk_); \
                (d)[q_][e_] = s_;                                                                      \
            }                                                                                          \
    } while (0)
#define TW_FENCE()       ((void)0)
#define TW_COMMIT()      ((void)0)
#define TW_WAIT0()       ((void)0)
#define TW_WAIT1()       ((void)0)
#define TW_PROXY_FENCE() ((void)0)
#else
/* Real wgmma (sm_90a): each instruction is a PTX comment behind the mark (= ARMT_SM90A_MARK in
 * lib/device/nv_ptx.h), which the host removes from the built program's PTX before rebuilding it for
 * sm_90a. Descriptor of a K-major tile with 128-byte swizzled rows: start address >> 4 (bits 0-13), leading
 * byte offset 1 (unused when swizzled), stride byte offset 1024 (8 rows, bits 32-45), swizzle mode 1
 * (128-byte, bits 62-63). The k8 steps inside a row advance the start by 32 bytes. */
#define TW_SM90A    "//@sm90a "
inline ulong armt_tw_desc(uint saddr) {
    return (ulong)((saddr & 0x3ffffu) >> 4) | ((ulong)1 << 16) | ((ulong)(1024 >> 4) << 32) |
           ((ulong)1 << 62);
}
#define TW_D4(d, q) "+f"((d)[q][0]), "+f"((d)[q][1]), "+f"((d)[q][2]), "+f"((d)[q][3])
#define TW_D8(d, b)                                                                                   \
    TW_D4(d, b), TW_D4(d, b + 1), TW_D4(d, b + 2), TW_D4(d, b + 3), TW_D4(d, b + 4), TW_D4(d, b + 5), \
        TW_D4(d, b + 6), TW_D4(d, b + 7)
#define TW_R0 "%0, %1, %2, %3, %4, %5, %6, %7, %8, %9, %10, %11, %12, %13, %14, %15"
#define TW_R1 "%16, %17, %18, %19, %20, %21, %22, %23, %24, %25, %26, %27, %28, %29, %30, %31"
#define TW_R2 "%32, %33, %34, %35, %36, %37, %38, %39, %40, %41, %42, %43, %44, %45, %46, %47"
#define TW_R3 "%48, %49, %50, %51, %52, %53, %54, %55, %56, %57, %58, %59, %60, %61, %62, %63"
#if TW_N == 128
#define TW_WGMMA(d, off_a, off_b)                                                                           \
    __asm__ __volatile__(TW_SM90A "{ .reg .pred armt_p; setp.ne.b32 armt_p, %66, 0; "                       \
                                  "wgmma.mma_async.sync.aligned.m64n128k8.f32.tf32.tf32 {" TW_R0 ", " TW_R1 \
                                  ", " TW_R2 ", " TW_R3 "}, %64, %65, armt_p, 1, 1; }"                      \
                         : TW_D8(d, 0), TW_D8(d, 8)                                                         \
                         : "l"(armt_tw_desc(sbase + (off_a))), "l"(armt_tw_desc(sbase + (off_b))), "r"(1))
#elif TW_N == 64
#define TW_WGMMA(d, off_a, off_b)                                                                          \
    __asm__ __volatile__(TW_SM90A "{ .reg .pred armt_p; setp.ne.b32 armt_p, %34, 0; "                      \
                                  "wgmma.mma_async.sync.aligned.m64n64k8.f32.tf32.tf32 {" TW_R0 ", " TW_R1 \
                                  "}, %32, %33, armt_p, 1, 1; }"                                           \
                         : TW_D8(d, 0)                                                                     \
                         : "l"(armt_tw_desc(sbase + (off_a))), "l"(armt_tw_desc(sbase + (off_b))), "r"(1))
#else
#error "gemm_tf32_wg: TW_N must be 64 or 128 on the GPU"
#endif
#define TW_FENCE()       __asm__ __volatile__(TW_SM90A "wgmma.fence.sync.aligned;" ::: "memory")
#define TW_COMMIT()      __asm__ __volatile__(TW_SM90A "wgmma.commit_group.sync.aligned;" ::: "memory")
#define TW_WAIT0()       __asm__ __volatile__(TW_SM90A "wgmma.wait_group.sync.aligned 0;" ::: "memory")
#define TW_WAIT1()       __asm__ __volatile__(TW_SM90A "wgmma.wait_group.sync.aligned 1;" ::: "memory")
#define TW_PROXY_FENCE() __asm__ __volatile__(TW_SM90A "fence.proxy.async.shared::cta;" ::: "memory")
#endif

/* float4 of row r (of rtot) at column c (of k) of a row-major matrix; zero past its edges (c % 4 == 0) */
inline float4 armt_tw_load(__global const float *src, const int ld, const int r, const int rtot, const int c,
                           const int k) {
    if (r >= rtot || c >= k) return (float4)(0.0f);
    __global const float *p = src + (ulong)r * ld + c;
    if (c + 4 <= k) return *(__global const float4 *)p;
    return (float4)(p[0], c + 1 < k ? p[1] : 0.0f, c + 2 < k ? p[2] : 0.0f, 0.0f);
}

__kernel __attribute__((reqd_work_group_size(TW_THREADS, 1, 1))) void
armt_gemm_tf32_wg(ARMT_GEMM_PARAMS(float)) {
    __local uint smem[TW_STAGES * TW_STAGE_BYTES / 4] __attribute__((aligned(1024)));
#if !ARMT_MMA_EMULATE
    const uint sbase = armt_mma_smem_base(smem);
#endif
    const int row_tile = get_group_id(1);
    if (GEMM_SKIP_TILE(row_tile, TW_BM, last_row0)) return;
    const int j = get_group_id(2);
    GEMM_ENTRY_OFFSETS(j, a_off, w_off, c_off)
    const int tid = get_local_id(0), lane = tid & 31, warp = tid >> 5;
    const int row0 = row_tile * TW_BM, col0 = get_group_id(0) * TW_N;
    __global const float *Aj = A + a_off, *Wj = (__global const float *)W + w_off;
    /* the work-item's float4 pieces: row tid / 8 (+ THREADS / 8 per round), 16-byte chunk tid % 8 */
    const int lq = tid & 7, lr = tid >> 3;
    float4 ra[TW_A_ITERS], rw[TW_W_ITERS];

#define TW_LOAD(kt)                                                             \
    do {                                                                        \
        const int c_ = (kt)*TW_BK + 4 * lq;                                     \
        _Pragma("unroll") for (int it = 0; it < TW_A_ITERS; it++) ra[it] =      \
            armt_tw_load(Aj, lda, row0 + lr + it * (TW_THREADS / 8), m, c_, k); \
        _Pragma("unroll") for (int it = 0; it < TW_W_ITERS; it++) rw[it] =      \
            armt_tw_load(Wj, ldw, col0 + lr + it * (TW_THREADS / 8), n, c_, k); \
    } while (0)
#define TW_PUT(at, v4)                                                    \
    do {                                                                  \
        const float4 f_ = (v4);                                           \
        uint4 h_, l_;                                                     \
        TF32_SPLIT(f_.s0, h_.s0, l_.s0);                                  \
        TF32_SPLIT(f_.s1, h_.s1, l_.s1);                                  \
        TF32_SPLIT(f_.s2, h_.s2, l_.s2);                                  \
        TF32_SPLIT(f_.s3, h_.s3, l_.s3);                                  \
        *(__local uint4 *)((__local uchar *)smem + (at)) = h_;            \
        *(__local uint4 *)((__local uchar *)smem + (at) + lo_shift) = l_; \
    } while (0)
    /* registers -> stage sl: the high parts, and the low ones one tile further (A: TW_A_BYTES, W: TW_W_BYTES) */
#define TW_STORE(sl)                                                                       \
    do {                                                                                   \
        const uint sb_ = (uint)(sl)*TW_STAGE_BYTES;                                        \
        uint lo_shift = TW_A_BYTES;                                                        \
        _Pragma("unroll") for (int it = 0; it < TW_A_ITERS; it++)                          \
            TW_PUT(sb_ + TW_OFF(lr + it * (TW_THREADS / 8), lq), ra[it]);                  \
        lo_shift = TW_W_BYTES;                                                             \
        _Pragma("unroll") for (int it = 0; it < TW_W_ITERS; it++)                          \
            TW_PUT(sb_ + 2 * TW_A_BYTES + TW_OFF(lr + it * (TW_THREADS / 8), lq), rw[it]); \
    } while (0)

    float acc[TW_NQ][4], sacc[TW_NQ][4];
#pragma unroll
    for (int q = 0; q < TW_NQ; q++)
#pragma unroll
        for (int e = 0; e < 4; e++) {
            acc[q][e] = 0.0f;
            sacc[q][e] = 0.0f;
        }
#if TW_SPLIT
    float tacc[TW_NQ][4]; /* one k-tile's main products (zeroed before each tile's group) */
#define TW_MAIN tacc
#else
#define TW_MAIN acc
#endif
    /* this warpgroup's rows of A's tiles */
    const uint wg_a = (uint)(warp >> 2) * (64 * TW_ROWB);
    /* the wgmma group of the k-tile in stage sl: per k8 step the two small products, then the main one */
#define TW_ISSUE(sl)                                                                                         \
    do {                                                                                                     \
        const uint ah_ = (uint)(sl)*TW_STAGE_BYTES + wg_a, wh_ = (uint)(sl)*TW_STAGE_BYTES + 2 * TW_A_BYTES; \
        TW_FENCE();                                                                                          \
        _Pragma("unroll") for (int ks = 0; ks < TW_BK / 8; ks++) {                                           \
            if (TF32_PRODUCTS == 3) {                                                                        \
                TW_WGMMA(sacc, ah_ + TW_A_BYTES + 32 * ks, wh_ + 32 * ks);                                   \
                TW_WGMMA(sacc, ah_ + 32 * ks, wh_ + TW_W_BYTES + 32 * ks);                                   \
            }                                                                                                \
            TW_WGMMA(TW_MAIN, ah_ + 32 * ks, wh_ + 32 * ks);                                                 \
        }                                                                                                    \
        TW_COMMIT();                                                                                         \
    } while (0)

    /* Pipeline (k-tile t in stage t % TW_STAGES): the prologue stores tiles 0 .. STAGES - 2 and leaves tile
     * STAGES - 1 in registers. Tile t: issue its wgmma group; wait until tile t - 1's group is done (tile t's
     * stays in flight); barrier: no warpgroup reads tile t - 1's stage any more, so tile t + STAGES - 1 is
     * stored there and the loads of the next one issued. A stage's stores are fenced for the async proxy and
     * a barrier apart from the wgmma that reads them (STAGES >= 3). */
    const int ktiles = (k + TW_BK - 1) / TW_BK;
#pragma unroll
    for (int s = 0; s < TW_STAGES - 1; s++)
        if (s < ktiles) {
            TW_LOAD(s);
            TW_STORE(s);
        }
    if (TW_STAGES - 1 < ktiles) TW_LOAD(TW_STAGES - 1);
    TW_PROXY_FENCE();
    barrier(CLK_LOCAL_MEM_FENCE);
    int rd = 0, wr = TW_STAGES - 1;
    for (int t = 0; t < ktiles; t++) {
        const int nt = t + TW_STAGES - 1;
#if TW_SPLIT
#pragma unroll
        for (int q = 0; q < TW_NQ; q++)
#pragma unroll
            for (int e = 0; e < 4; e++)
                tacc[q][e] = 0.0f;
        TW_ISSUE(rd);
        TW_WAIT0();
#pragma unroll
        for (int q = 0; q < TW_NQ; q++)
#pragma unroll
            for (int e = 0; e < 4; e++)
                acc[q][e] += tacc[q][e];
#else
        TW_ISSUE(rd);
        TW_WAIT1();
#endif
        barrier(CLK_LOCAL_MEM_FENCE);
        if (nt < ktiles) {
            TW_STORE(wr);
            if (nt + 1 < ktiles) TW_LOAD(nt + 1);
        }
        TW_PROXY_FENCE();
        wr = rd;
        rd = rd + 1 == TW_STAGES ? 0 : rd + 1;
    }
    TW_WAIT0();
#undef TW_LOAD
#undef TW_PUT
#undef TW_STORE
#undef TW_ISSUE
#undef TW_MAIN

    /* Epilogue: acc[q][e] + sacc[q][e] is C's (row 64 (warp / 4) + 16 (warp % 4) + lane / 4 + 8 (e / 2),
     * column 8 q + 2 (lane % 4) + e % 2) of the tile; column pairs as one 8-byte access where C's offset and
     * ldc are even. */
    __global float *Cj = C + c_off;
    const int vec2 = ((c_off | (ulong)ldc) & 1) == 0;
#pragma unroll
    for (int h = 0; h < 2; h++) {
        const int r = row0 + 64 * (warp >> 2) + 16 * (warp & 3) + (lane >> 2) + 8 * h;
        if (r >= m) continue;
        __global float *row = Cj + (ulong)r * ldc;
#pragma unroll
        for (int q = 0; q < TW_NQ; q++) {
            const int c = col0 + 8 * q + 2 * (lane & 3);
            const float2 v =
                (float2)(acc[q][2 * h], acc[q][2 * h + 1]) + (float2)(sacc[q][2 * h], sacc[q][2 * h + 1]);
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
#endif
