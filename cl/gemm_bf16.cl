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
 * Both kernels take the same arguments:
 *   (int m, int n, int k, __global const float *A, int lda, __global const ushort *W,
 *    __global float *C, int ldc, int beta, __global const ulong *offs,
 *    ulong a_base, ulong a_stride, ulong w_base, ulong w_stride, ulong c_base, ulong c_stride)
 *
 * (a) armt_gemm_bf16 - portable, any OpenCL 1.2 device. Any m, n, k >= 1, lda >= k, ldc >= n, any offsets.
 *     Work-group tile GEMM_TM x GEMM_TN (64 x 64), k step GEMM_TK (16), GEMM_RM x GEMM_RN (4 x 4) per item.
 *     local size  = (GEMM_TN / GEMM_RN, GEMM_TM / GEMM_RM, 1)                          = (16, 16, 1)
 *     global size = (ceil(n / GEMM_TN) * (GEMM_TN / GEMM_RN), ceil(m / GEMM_TM) * (GEMM_TM / GEMM_RM), count)
 *
 * (b) armt_gemm_bf16_mma - NVIDIA tensor cores (compute capability >= 8.0), built only with -DARMT_NV_MMA=1
 *     (inline PTX: mma.sync.m16n8k16 bf16 -> f32, ldmatrix, cp.async, cvt.rn.bf16x2.f32).
 *     Block tile MMA_BM x MMA_BN x MMA_BK (128 x 128 x 32), MMA_WARPS_M x MMA_WARPS_N warps (2 x 2): each
 *     warp owns 64 x 64 (4 x 8 mma tiles, 128 fp32 accumulators per lane). Two local-memory stages of bf16
 *     tiles (32 KiB), the 16-byte chunks of each row XOR-swizzled so that ldmatrix and the tile stores are
 *     free of bank conflicts. W tiles go global -> local by cp.async (no registers), A tiles through
 *     registers (the fp32 -> bf16x2 packing needs them); both run one k-tile ahead of the tensor cores.
 *     local size  = (MMA_THREADS, 1, 1) = (32 * MMA_WARPS_M * MMA_WARPS_N, 1, 1)       = (128, 1, 1)
 *     global size = (ceil(n / MMA_BN) * MMA_THREADS, ceil(m / MMA_BM), count)
 *     Requirements (the host checks them; the kernel does not): k % 8 == 0, lda % 4 == 0, every
 *     a_off % 4 == 0, every w_off % 8 == 0 (16-byte aligned float4 and 16-byte chunk loads; a chunk of k is
 *     then wholly inside or wholly outside the matrix). m, n, ldc and c_off are arbitrary.
 *     Switches (default 1): ARMT_MMA_LDMATRIX (0: fragments by 32-bit local loads), ARMT_MMA_CPASYNC (0: W
 *     staged through registers like A). With both 0 no shared-space address is ever formed: a fallback
 *     should a driver disagree with armt_mma_smem_base() below.
 *     Other tiles (-DMMA_BM/BN/BK/WARPS_M/WARPS_N): 128x256x32 with 2x4 warps and 256x128x32 with 4x2 use
 *     exactly 48 KiB; 128x128x32 with 2x4 warps gives 64 x 32 warp tiles. Through clang 15 -> PTX ->
 *     ptxas 13 for sm_90 (not NVIDIA's OpenCL compiler) the default uses 248 registers without spills
 *     (2 work-groups per SM); the register-staged variants spill a little. Warps are assumed to be 32
 *     consecutive local ids (NVIDIA).
 *     ARMT_MMA_EMULATE=1 (tests only) builds the same kernel with OpenCL C stand-ins for every PTX
 *     instruction (warp exchanges through local memory), so that the tiling, the swizzle and the fragment
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

/* fp32 -> bf16 bits, round to nearest even (finite inputs; a NaN may come out as a NaN or an infinity). */
inline uint armt_gemm_bf16_bits(float x) {
    const uint u = as_uint(x);
    return (u + 0x7fffu + ((u >> 16) & 1u)) >> 16;
}
inline float armt_gemm_bf16_round(float x) {
    return as_float(armt_gemm_bf16_bits(x) << 16);
}
inline float armt_gemm_bf16_to_float(ushort w) {
    return as_float((uint)w << 16);
}

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

__kernel __attribute__((reqd_work_group_size(GEMM_LX, GEMM_LY, 1))) void armt_gemm_bf16(GEMM_BF16_ARGS) {
    /* k-major tiles: the inner loop reads a row of As (broadcast within a warp) and a row of Ws
     * (consecutive); the +1 keeps the transposing stores free of bank conflicts. */
    __local float As[GEMM_TK][GEMM_TM + 1];
    __local float Ws[GEMM_TK][GEMM_TN + 1];
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
            As[c][r] = (gr < m && gc < k) ? armt_gemm_bf16_round(Aj[(ulong)gr * lda + gc]) : 0.0f;
        }
        for (int e = tid; e < GEMM_TN * GEMM_TK; e += GEMM_WG) {
            const int r = e / GEMM_TK, c = e % GEMM_TK;
            const int gr = col0 + r, gc = k0 + c;
            Ws[c][r] = (gr < n && gc < k) ? armt_gemm_bf16_to_float(Wj[(ulong)gr * k + gc]) : 0.0f;
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
/* (b) NVIDIA tensor-core kernel                                                                            */
/* ======================================================================================================== */

#ifndef ARMT_NV_MMA
#define ARMT_NV_MMA 0 /* 1: build armt_gemm_bf16_mma with inline PTX (NVIDIA, compute capability >= 8.0) */
#endif
#ifndef ARMT_MMA_EMULATE
#define ARMT_MMA_EMULATE 0 /* 1: build armt_gemm_bf16_mma with OpenCL C stand-ins for the PTX (tests only) */
#endif

#if ARMT_NV_MMA || ARMT_MMA_EMULATE

#ifndef MMA_BM
#define MMA_BM 128 /* rows of C per work-group */
#endif
#ifndef MMA_BN
#define MMA_BN 128 /* columns of C per work-group */
#endif
#ifndef MMA_BK
#define MMA_BK 32 /* k per stage: 32 or 64 */
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
#define ARMT_MMA_CPASYNC 1 /* W tiles with cp.async (0: through registers) */
#endif

#define MMA_THREADS (32 * MMA_WARPS_M * MMA_WARPS_N)
#define MMA_WM (MMA_BM / MMA_WARPS_M) /* warp tile rows */
#define MMA_WN (MMA_BN / MMA_WARPS_N) /* warp tile columns */
#define MMA_MT (MMA_WM / 16)          /* m16 tiles per warp */
#define MMA_NT (MMA_WN / 8)           /* n8 tiles per warp */
#define MMA_ROWB (MMA_BK * 2)         /* bytes per local tile row (bf16) */
#define MMA_CHUNKS (MMA_BK / 8)       /* 16-byte chunks per row */
#define MMA_A_BYTES (MMA_BM * MMA_ROWB)
#define MMA_STAGE_BYTES ((MMA_BM + MMA_BN) * MMA_ROWB)
#define MMA_A_ITERS (MMA_BM * MMA_BK / 4 / MMA_THREADS) /* float4 loads of A per thread per stage */
#define MMA_W_ITERS (MMA_BN * MMA_CHUNKS / MMA_THREADS) /* 16-byte chunks of W per thread per stage */

#if MMA_WM % 16 || MMA_WN % 16 || MMA_BK % 16
#error "MMA tile sizes: warp tile must be a multiple of 16 x 16, MMA_BK of 16"
#endif
#if (MMA_BM * MMA_BK / 4) % MMA_THREADS || (MMA_BN * MMA_CHUNKS) % MMA_THREADS
#error "MMA tile sizes: the A and W stage loads must divide evenly among the work-items"
#endif
#if 2 * MMA_STAGE_BYTES > 49152
#error "MMA tiles need more than 48 KiB of local memory"
#endif

/* XOR swizzle of the 16-byte chunks of a tile row: the 8 rows one ldmatrix phase reads (same logical chunk,
 * rows r..r+7) and the rows a warp stores land in 8 different 16-byte bank groups. */
#if MMA_BK == 32
#define MMA_SWZ(r, c) ((c) ^ (((r) >> 1) & 3)) /* 64-byte rows: two rows per 128-byte bank line */
#elif MMA_BK == 64
#define MMA_SWZ(r, c) ((c) ^ ((r)&7)) /* 128-byte rows */
#else
#error "MMA_BK must be 32 or 64"
#endif
/* byte offset of (row r, logical chunk c) inside a tile */
#define MMA_OFF(r, c) ((uint)(r)*MMA_ROWB + ((uint)MMA_SWZ(r, c) << 4))

#if ARMT_MMA_EMULATE
/* ---- OpenCL C stand-ins, same semantics as the PTX (PTX ISA: "Matrix fragments for mma.m16n8k16 with
 * floating point type", "ldmatrix"). Each takes effect for the whole warp, exchanging through local memory;
 * every work-item of the work-group calls them in the same order, so the barriers inside are uniform. ---- */
#define MMA_EMU_LOCALS __local uint xch[MMA_THREADS * 6];
#define MMA_EMU_XCH(l, q) xch[(warp * 32 + (l)) * 6 + (q)]

inline uint armt_mma_bf16x2(float lo, float hi) {
    return armt_gemm_bf16_bits(lo) | (armt_gemm_bf16_bits(hi) << 16);
}
/* element (bf16 as float) h (0 low, 1 high) of a packed pair */
#define MMA_EMU_HALF(u, h) as_float(((h) ? ((u)&0xffff0000u) : ((u) << 16)))

/* ldmatrix.x4: lane l supplies the row address for row l%8 of matrix l/8; register i of lane l receives the
 * 32-bit word l%4 of row l/4 of matrix i. */
#define MMA_LDSM_X4(r0, r1, r2, r3, off)                                 \
    do {                                                                 \
        MMA_EMU_XCH(lane, 0) = (off);                                    \
        barrier(CLK_LOCAL_MEM_FENCE);                                    \
        r0 = smem[(MMA_EMU_XCH(0 + (lane >> 2), 0) >> 2) + (lane & 3)];  \
        r1 = smem[(MMA_EMU_XCH(8 + (lane >> 2), 0) >> 2) + (lane & 3)];  \
        r2 = smem[(MMA_EMU_XCH(16 + (lane >> 2), 0) >> 2) + (lane & 3)]; \
        r3 = smem[(MMA_EMU_XCH(24 + (lane >> 2), 0) >> 2) + (lane & 3)]; \
        barrier(CLK_LOCAL_MEM_FENCE);                                    \
    } while (0)

/* mma.m16n8k16.row.col: lane l (g = l/4, t = l%4) holds (in each pair, the low half is the lower index)
 *   a0 = A[g][2t..2t+1]  a1 = A[g+8][2t..2t+1]  a2 = A[g][2t+8..2t+9]  a3 = A[g+8][2t+8..2t+9]
 *   b0 = B[2t..2t+1][g]  b1 = B[2t+8..2t+9][g]
 *   c0, c1 = C[g][2t], C[g][2t+1]    c2, c3 = C[g+8][2t], C[g+8][2t+1]                                */
#define MMA_EMU_A(r, kk) \
    MMA_EMU_HALF(MMA_EMU_XCH(((r)&7) * 4 + (((kk)&7) >> 1), ((r) >> 3) + (((kk) >> 3) << 1)), (kk)&1)
#define MMA_EMU_B(kk, c) MMA_EMU_HALF(MMA_EMU_XCH((c)*4 + (((kk)&7) >> 1), 4 + ((kk) >> 3)), (kk)&1)
#define MMA_MMA(d, a, b)                                                                      \
    do {                                                                                      \
        for (int q_ = 0; q_ < 4; q_++) MMA_EMU_XCH(lane, q_) = (a)[q_];                       \
        MMA_EMU_XCH(lane, 4) = (b)[0];                                                        \
        MMA_EMU_XCH(lane, 5) = (b)[1];                                                        \
        barrier(CLK_LOCAL_MEM_FENCE);                                                         \
        for (int q_ = 0; q_ < 4; q_++) {                                                      \
            const int r_ = (lane >> 2) + ((q_ >> 1) << 3), c_ = ((lane & 3) << 1) + (q_ & 1); \
            float s_ = (d)[q_];                                                               \
            for (int kk_ = 0; kk_ < 16; kk_++) s_ += MMA_EMU_A(r_, kk_) * MMA_EMU_B(kk_, c_); \
            (d)[q_] = s_;                                                                     \
        }                                                                                     \
        barrier(CLK_LOCAL_MEM_FENCE);                                                         \
    } while (0)

/* cp.async.cg 16 bytes (bytes = 16 or 0: zero fill), done at once */
#define MMA_CP16(off, gptr, bytes)                                                            \
    do {                                                                                      \
        const uint4 v_ = (bytes) ? *(__global const uint4 *)(gptr) : (uint4)(0u, 0u, 0u, 0u); \
        *(__local uint4 *)((__local uchar *)smem + (off)) = v_;                               \
    } while (0)
#define MMA_CP_COMMIT() ((void)0)
#define MMA_CP_WAIT_ALL() ((void)0)

#else /* ---- real PTX (NVIDIA, sm_80+) ---- */
#define MMA_EMU_LOCALS

/* Shared-state-space address (32-bit) of a __local pointer. Casting a __local pointer to an integer yields
 * the shared-window offset in NVPTX (LLVM ptrtoint of an addrspace(3) pointer); should a compiler hand back a
 * generic address instead, isspacep.shared recognises it and cvta.to.shared converts it. Either way the
 * result is right. */
inline uint armt_mma_smem_base(__local uint *p) {
    uint s;
    __asm__ __volatile__("{\n\t"
                         ".reg .pred armt_p;\n\t"
                         ".reg .u64 armt_a;\n\t"
                         "isspacep.shared armt_p, %1;\n\t"
                         "@armt_p cvta.to.shared.u64 armt_a, %1;\n\t"
                         "@!armt_p mov.u64 armt_a, %1;\n\t"
                         "cvt.u32.u64 %0, armt_a;\n\t"
                         "}"
                         : "=r"(s)
                         : "l"((ulong)p));
    return s;
}

/* pack two floats to bf16x2, round to nearest even: cvt puts its FIRST source in the UPPER half */
inline uint armt_mma_bf16x2(float lo, float hi) {
    uint r;
    __asm__("cvt.rn.bf16x2.f32 %0, %1, %2;" : "=r"(r) : "f"(hi), "f"(lo));
    return r;
}

#define MMA_LDSM_X4(r0, r1, r2, r3, off)                                                    \
    __asm__ __volatile__("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0, %1, %2, %3}, [%4];" \
                         : "=r"(r0), "=r"(r1), "=r"(r2), "=r"(r3)                           \
                         : "r"(sbase + (off))                                               \
                         : "memory")

#define MMA_MMA(d, a, b)                                                                                 \
    __asm__("mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 "                                       \
            "{%0, %1, %2, %3}, {%4, %5, %6, %7}, {%8, %9}, {%10, %11, %12, %13};"                        \
            : "=f"((d)[0]), "=f"((d)[1]), "=f"((d)[2]), "=f"((d)[3])                                     \
            : "r"((a)[0]), "r"((a)[1]), "r"((a)[2]), "r"((a)[3]), "r"((b)[0]), "r"((b)[1]), "f"((d)[0]), \
              "f"((d)[1]), "f"((d)[2]), "f"((d)[3]))

/* 16 bytes global -> shared, bypassing L1 (.cg); bytes = 0 reads nothing and writes zeros */
#define MMA_CP16(off, gptr, bytes)                                                    \
    __asm__ __volatile__("cp.async.cg.shared.global [%0], [%1], 16, %2;"              \
                         :                                                            \
                         : "r"(sbase + (off)), "l"((ulong)(gptr)), "r"((uint)(bytes)) \
                         : "memory")
#define MMA_CP_COMMIT() __asm__ __volatile__("cp.async.commit_group;" ::: "memory")
#define MMA_CP_WAIT_ALL() __asm__ __volatile__("cp.async.wait_group 0;" ::: "memory")
#endif

#define MMA_LDS32(off) (smem[(off) >> 2])

__kernel __attribute__((reqd_work_group_size(MMA_THREADS, 1, 1))) void armt_gemm_bf16_mma(GEMM_BF16_ARGS) {
    /* two stages of [A tile: MMA_BM rows][W tile: MMA_BN rows]; a row: MMA_BK bf16 in swizzled chunks */
    __local uint smem[2 * MMA_STAGE_BYTES / 4] __attribute__((aligned(16)));
    MMA_EMU_LOCALS
    const int tid = get_local_id(0), lane = tid & 31, warp = tid >> 5;
    const int col0 = get_group_id(0) * MMA_BN, row0 = get_group_id(1) * MMA_BM, j = get_group_id(2);
    const int wm0 = (warp / MMA_WARPS_N) * MMA_WM, wn0 = (warp % MMA_WARPS_N) * MMA_WN;
#if !ARMT_MMA_EMULATE && (ARMT_MMA_LDMATRIX || ARMT_MMA_CPASYNC)
    const uint sbase = armt_mma_smem_base(smem);
#endif
    GEMM_ENTRY_OFFSETS(j, a_off, w_off, c_off)

    /* A stage loads: work-item tid takes float4 a_q = tid % (BK/4) of rows tid / (BK/4) + it * A_RSTEP */
#define MMA_A_F4 (MMA_BK / 4)
#define MMA_A_RSTEP (MMA_THREADS / MMA_A_F4)
    const int a_q = tid % MMA_A_F4, a_r = tid / MMA_A_F4;
    __global const float *a_ptr = A + a_off + (ulong)(row0 + a_r) * lda + a_q * 4;
    /* W stage loads: chunk w_c = tid % CHUNKS of rows tid / CHUNKS + it * W_RSTEP */
#define MMA_W_RSTEP (MMA_THREADS / MMA_CHUNKS)
    const int w_c = tid % MMA_CHUNKS, w_r = tid / MMA_CHUNKS;
    __global const ushort *w_ptr = W + w_off + (ulong)(col0 + w_r) * k + w_c * 8;

    float4 ra[MMA_A_ITERS];
#if !ARMT_MMA_CPASYNC
    uint4 rw[MMA_W_ITERS];
#endif

    /* global -> registers (A, and W without cp.async) or -> local (W with cp.async) for the k-tile at k0 */
#define MMA_LOAD_A(k0)                                                                              \
    do {                                                                                            \
        const int kin_ = (k0) + a_q * 4 < k;                                                        \
        _Pragma("unroll") for (int it = 0; it < MMA_A_ITERS; it++) {                                \
            const int ok_ = kin_ && row0 + a_r + it * MMA_A_RSTEP < m;                              \
            ra[it] = ok_ ? *(__global const float4 *)(a_ptr + (ulong)(it * MMA_A_RSTEP) * lda + (k0)) \
                         : (float4)(0.0f);                                                          \
        }                                                                                           \
    } while (0)
#define MMA_STORE_A(stage)                                                                         \
    do {                                                                                           \
        _Pragma("unroll") for (int it = 0; it < MMA_A_ITERS; it++) {                               \
            const int r_ = a_r + it * MMA_A_RSTEP;                                                 \
            const uint off_ = (stage)*MMA_STAGE_BYTES + MMA_OFF(r_, a_q >> 1) + (a_q & 1) * 8;     \
            *(__local uint2 *)((__local uchar *)smem + off_) =                                     \
                (uint2)(armt_mma_bf16x2(ra[it].x, ra[it].y), armt_mma_bf16x2(ra[it].z, ra[it].w)); \
        }                                                                                          \
    } while (0)
#if ARMT_MMA_CPASYNC
#define MMA_LOAD_W(k0, stage)                                                                 \
    do {                                                                                      \
        const int kin_ = (k0) + w_c * 8 < k;                                                  \
        _Pragma("unroll") for (int it = 0; it < MMA_W_ITERS; it++) {                          \
            const int r_ = w_r + it * MMA_W_RSTEP;                                            \
            const int ok_ = kin_ && col0 + r_ < n;                                            \
            const uint off_ = (stage)*MMA_STAGE_BYTES + MMA_A_BYTES + MMA_OFF(r_, w_c);       \
            MMA_CP16(off_, ok_ ? w_ptr + (ulong)(it * MMA_W_RSTEP) * k + (k0) : W, ok_ ? 16 : 0); \
        }                                                                                     \
        MMA_CP_COMMIT();                                                                      \
    } while (0)
#define MMA_STORE_W(stage) ((void)0)
#define MMA_WAIT_W() MMA_CP_WAIT_ALL()
#else
#define MMA_LOAD_W(k0, stage)                                                                              \
    do {                                                                                                   \
        const int kin_ = (k0) + w_c * 8 < k;                                                               \
        _Pragma("unroll") for (int it = 0; it < MMA_W_ITERS; it++) {                                       \
            const int ok_ = kin_ && col0 + w_r + it * MMA_W_RSTEP < n;                                     \
            rw[it] =                                                                                       \
                ok_ ? *(__global const uint4 *)(w_ptr + (ulong)(it * MMA_W_RSTEP) * k + (k0)) : (uint4)(0u); \
        }                                                                                                  \
    } while (0)
#define MMA_STORE_W(stage)                                                                                  \
    do {                                                                                                    \
        _Pragma("unroll") for (int it = 0; it < MMA_W_ITERS; it++) {                                        \
            const uint off_ = (stage)*MMA_STAGE_BYTES + MMA_A_BYTES + MMA_OFF(w_r + it * MMA_W_RSTEP, w_c); \
            *(__local uint4 *)((__local uchar *)smem + off_) = rw[it];                                      \
        }                                                                                                   \
    } while (0)
#define MMA_WAIT_W() ((void)0)
#endif

    float acc[MMA_MT][MMA_NT][4];
#pragma unroll
    for (int i = 0; i < MMA_MT; i++)
#pragma unroll
        for (int q = 0; q < MMA_NT; q++)
#pragma unroll
            for (int e = 0; e < 4; e++) acc[i][q][e] = 0.0f;

    /* prologue: k-tile 0 into stage 0 */
    MMA_LOAD_A(0);
    MMA_LOAD_W(0, 0);
    MMA_STORE_A(0);
    MMA_STORE_W(0);
    MMA_WAIT_W();
    barrier(CLK_LOCAL_MEM_FENCE);

    const int ktiles = (k + MMA_BK - 1) / MMA_BK;
    for (int t = 0; t < ktiles; t++) {
        const uint st = t & 1;
        const int next = t + 1 < ktiles;
        /* start the next k-tile's loads; they land while the tensor cores work on this one */
        if (next) {
            MMA_LOAD_A((t + 1) * MMA_BK);
            MMA_LOAD_W((t + 1) * MMA_BK, st ^ 1);
        }
        const uint abase = st * MMA_STAGE_BYTES, bbase = abase + MMA_A_BYTES;
#pragma unroll
        for (int ks = 0; ks < MMA_BK / 16; ks++) {
            uint af[MMA_MT][4], bf[MMA_NT][2];
#if ARMT_MMA_LDMATRIX
            /* A, 16 x 16 per x4: lanes 0-15 address rows 0-15 at chunk 2ks, lanes 16-31 the same rows at
             * chunk 2ks+1 -> matrices (rows 0-7, k 0-7), (rows 8-15, k 0-7), (rows 0-7, k 8-15),
             * (rows 8-15, k 8-15) = a0..a3 */
#pragma unroll
            for (int i = 0; i < MMA_MT; i++) {
                const int r = wm0 + i * 16 + (lane & 15);
                MMA_LDSM_X4(af[i][0], af[i][1], af[i][2], af[i][3], abase + MMA_OFF(r, 2 * ks + (lane >> 4)));
            }
            /* W, two n8 tiles per x4: lane l addresses W row (l & 7) + 8 * (l >> 4) at chunk
             * 2ks + ((l >> 3) & 1) -> matrices (n 0-7, k 0-7), (n 0-7, k 8-15), (n 8-15, k 0-7),
             * (n 8-15, k 8-15) = b0, b1 of tile 2p, then of tile 2p+1 (W rows are B columns: no .trans) */
#pragma unroll
            for (int p = 0; p < MMA_NT / 2; p++) {
                const int r = wn0 + p * 16 + (lane & 7) + ((lane >> 4) << 3);
                MMA_LDSM_X4(bf[2 * p][0], bf[2 * p][1], bf[2 * p + 1][0], bf[2 * p + 1][1],
                            bbase + MMA_OFF(r, 2 * ks + ((lane >> 3) & 1)));
            }
#else
            {
                const int g = lane >> 2, tq = (lane & 3) * 4;
#pragma unroll
                for (int i = 0; i < MMA_MT; i++) {
                    const int r = wm0 + i * 16 + g;
                    af[i][0] = MMA_LDS32(abase + MMA_OFF(r, 2 * ks) + tq);
                    af[i][1] = MMA_LDS32(abase + MMA_OFF(r + 8, 2 * ks) + tq);
                    af[i][2] = MMA_LDS32(abase + MMA_OFF(r, 2 * ks + 1) + tq);
                    af[i][3] = MMA_LDS32(abase + MMA_OFF(r + 8, 2 * ks + 1) + tq);
                }
#pragma unroll
                for (int q = 0; q < MMA_NT; q++) {
                    const int r = wn0 + q * 8 + g;
                    bf[q][0] = MMA_LDS32(bbase + MMA_OFF(r, 2 * ks) + tq);
                    bf[q][1] = MMA_LDS32(bbase + MMA_OFF(r, 2 * ks + 1) + tq);
                }
            }
#endif
#pragma unroll
            for (int i = 0; i < MMA_MT; i++)
#pragma unroll
                for (int q = 0; q < MMA_NT; q++) MMA_MMA(acc[i][q], af[i], bf[q]);
        }
        /* registers -> the other stage (its last readers finished before the barrier ending the previous
         * iteration); then wait for this thread's cp.async and make everything visible */
        if (next) {
            MMA_STORE_A(st ^ 1);
            MMA_STORE_W(st ^ 1);
            MMA_WAIT_W();
        }
        barrier(CLK_LOCAL_MEM_FENCE);
    }

    /* epilogue: c0,c1 -> (g, 2t..2t+1), c2,c3 -> (g+8, 2t..2t+1) of each 16 x 8 tile; one owner each */
    __global float *Cj = C + c_off;
    const int g = lane >> 2, tc = (lane & 3) * 2;
#pragma unroll
    for (int i = 0; i < MMA_MT; i++) {
#pragma unroll
        for (int h = 0; h < 2; h++) {
            const int r = row0 + wm0 + i * 16 + g + h * 8;
            if (r >= m) continue;
            __global float *crow = Cj + (ulong)r * ldc;
#pragma unroll
            for (int q = 0; q < MMA_NT; q++) {
                const int c = col0 + wn0 + q * 8 + tc;
                if (c < n) crow[c] = beta ? crow[c] + acc[i][q][2 * h] : acc[i][q][2 * h];
                if (c + 1 < n) crow[c + 1] = beta ? crow[c + 1] + acc[i][q][2 * h + 1] : acc[i][q][2 * h + 1];
            }
        }
    }
}

#endif /* ARMT_NV_MMA || ARMT_MMA_EMULATE */
