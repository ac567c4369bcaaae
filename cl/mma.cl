/*
 * mma.cl - warp-level tensor-core primitives shared by the tensor-core kernels (gemm_mma*.cl, gemm_tf32.cl,
 * attention_mma.cl); the host builds it after common.cl into those programs only.
 * ARMT_NV_MMA=1: inline PTX (NVIDIA, compute capability >= 8.0; decided in lib/device/tune.c).
 * ARMT_MMA_EMULATE=1 (tests only): OpenCL C stand-ins with the same semantics, so that fragment layouts and
 * tilings can be checked on any device. A stand-in takes effect for the whole warp by exchanging through
 * local memory: the kernel declares __local uint xch[work-items * 6] and the variables warp and lane, and
 * every work-item of the work-group calls the primitives in the same order (the barriers inside are
 * uniform). */
#ifndef ARMT_NV_MMA
#define ARMT_NV_MMA 0
#endif
#ifndef ARMT_MMA_EMULATE
#define ARMT_MMA_EMULATE 0
#endif

#if ARMT_MMA_EMULATE
#define MMA_EMU_XCH(l, q) xch[(warp * 32 + (l)) * 6 + (q)]

/* two floats to a bf16 pair (round to nearest even), lo in the low half */
inline uint armt_mma_bf16x2(float lo, float hi) { return armt_bf16x2(lo, hi); }
/* element (bf16 as float) h (0 low, 1 high) of a packed pair */
#define MMA_EMU_HALF(u, h) as_float(((h) ? ((u)&0xffff0000u) : ((u) << 16)))

/* mma.m16n8k16.row.col: lane l (g = l/4, t = l%4) holds (in each pair, the low half is the lower index)
 *   a0 = A[g][2t..2t+1]  a1 = A[g+8][2t..2t+1]  a2 = A[g][2t+8..2t+9]  a3 = A[g+8][2t+8..2t+9]
 *   b0 = B[2t..2t+1][g]  b1 = B[2t+8..2t+9][g]
 *   c0, c1 = C[g][2t], C[g][2t+1]    c2, c3 = C[g+8][2t], C[g+8][2t+1]                                */
#define MMA_EMU_A(r, kk) \
    MMA_EMU_HALF(MMA_EMU_XCH(((r)&7) * 4 + (((kk)&7) >> 1), ((r) >> 3) + (((kk) >> 3) << 1)), (kk)&1)
#define MMA_EMU_B(kk, c) MMA_EMU_HALF(MMA_EMU_XCH((c)*4 + (((kk)&7) >> 1), 4 + ((kk) >> 3)), (kk)&1)
#define MMA_MMA(d, a, b)                                                                      \
    do {                                                                                      \
        for (int q_ = 0; q_ < 4; q_++)                                                        \
            MMA_EMU_XCH(lane, q_) = (a)[q_];                                                  \
        MMA_EMU_XCH(lane, 4) = (b)[0];                                                        \
        MMA_EMU_XCH(lane, 5) = (b)[1];                                                        \
        barrier(CLK_LOCAL_MEM_FENCE);                                                         \
        for (int q_ = 0; q_ < 4; q_++) {                                                      \
            const int r_ = (lane >> 2) + ((q_ >> 1) << 3), c_ = ((lane & 3) << 1) + (q_ & 1); \
            float s_ = (d)[q_];                                                               \
            for (int kk_ = 0; kk_ < 16; kk_++)                                                \
                s_ += MMA_EMU_A(r_, kk_) * MMA_EMU_B(kk_, c_);                                \
            (d)[q_] = s_;                                                                     \
        }                                                                                     \
        barrier(CLK_LOCAL_MEM_FENCE);                                                         \
    } while (0)
/* cvt.rna.tf32.f32: x rounded to TF32 (10 explicit mantissa bits), to nearest with ties away from zero; the
 * low 13 bits of the result are zero. Infinities and NaNs pass unchanged. */
inline uint armt_tf32(float x) {
    const uint u = as_uint(x);
    return (u & 0x7f800000u) == 0x7f800000u ? u : (u + 0x1000u) & 0xffffe000u;
}
/* mma.m16n8k8.row.col.f32.tf32.tf32.f32: lane l (g = l/4, t = l%4) holds
 *   a0 = A[g][t]  a1 = A[g+8][t]  a2 = A[g][t+4]  a3 = A[g+8][t+4]    b0 = B[t][g]  b1 = B[t+4][g]
 *   c0, c1 = C[g][2t], C[g][2t+1]    c2, c3 = C[g+8][2t], C[g+8][2t+1]   (as m16n8k16)
 * Operands are TF32 bit patterns (armt_tf32; the low 13 bits are not read), so every product is exact in
 * fp32 (11 x 11 significant bits); the stand-in adds the eight products to C one after the other, each sum
 * rounded to nearest fp32. (The hardware adds them in an order and with an internal rounding of its own,
 * which may differ in the last bits: the GPU's error is measured by bench/gemm_fp32_bench.) */
#define MMA_EMU_TF32(u) as_float((u)&0xffffe000u)
#define MMA_EMU_TF32_A(r, kk) \
    MMA_EMU_TF32(MMA_EMU_XCH(((r)&7) * 4 + ((kk)&3), ((r) >> 3) + (((kk) >> 2) << 1)))
#define MMA_EMU_TF32_B(kk, c) MMA_EMU_TF32(MMA_EMU_XCH((c)*4 + ((kk)&3), 4 + ((kk) >> 2)))
#define MMA_TF32(d, a, b)                                                                     \
    do {                                                                                      \
        for (int q_ = 0; q_ < 4; q_++)                                                        \
            MMA_EMU_XCH(lane, q_) = (a)[q_];                                                  \
        MMA_EMU_XCH(lane, 4) = (b)[0];                                                        \
        MMA_EMU_XCH(lane, 5) = (b)[1];                                                        \
        barrier(CLK_LOCAL_MEM_FENCE);                                                         \
        for (int q_ = 0; q_ < 4; q_++) {                                                      \
            const int r_ = (lane >> 2) + ((q_ >> 1) << 3), c_ = ((lane & 3) << 1) + (q_ & 1); \
            float s_ = (d)[q_];                                                               \
            for (int kk_ = 0; kk_ < 8; kk_++)                                                 \
                s_ += MMA_EMU_TF32_A(r_, kk_) * MMA_EMU_TF32_B(kk_, c_);                      \
            (d)[q_] = s_;                                                                     \
        }                                                                                     \
        barrier(CLK_LOCAL_MEM_FENCE);                                                         \
    } while (0)
/* shfl.sync.bfly: x becomes the value x had on lane (lane ^ m) */
#define MMA_SHFL_XOR(x, m)                          \
    do {                                            \
        MMA_EMU_XCH(lane, 0) = as_uint(x);          \
        barrier(CLK_LOCAL_MEM_FENCE);               \
        (x) = as_float(MMA_EMU_XCH(lane ^ (m), 0)); \
        barrier(CLK_LOCAL_MEM_FENCE);               \
    } while (0)

/* ---- Local-memory tile primitives (ldmatrix, cp.async), shared by the GEMM and the attention. The
 * kernel names its local tile memory `smem` (__local uint *) and, on real PTX, its 32-bit shared-window
 * address `sbase` (armt_mma_smem_base(smem)); offsets are in bytes. ---- */
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

/* ldmatrix.x4.trans: the same addresses; register i of lane l receives elements (2 (l%4), l/4) and
 * (2 (l%4) + 1, l/4) of matrix i (16-bit elements, row r at the address lane 8 i + r gave), the first in
 * the low half. */
inline uint armt_emu_b16(__local uint *s, uint byte) {
    const uint w = s[byte >> 2];
    return (byte & 2u) ? w >> 16 : w & 0xffffu;
}
#define MMA_EMU_LDSM_T(i)                                                             \
    (armt_emu_b16(smem, MMA_EMU_XCH(8 * (i) + 2 * (lane & 3), 0) + 2 * (lane >> 2)) | \
     (armt_emu_b16(smem, MMA_EMU_XCH(8 * (i) + 2 * (lane & 3) + 1, 0) + 2 * (lane >> 2)) << 16))
#define MMA_LDSM_X4_T(r0, r1, r2, r3, off) \
    do {                                   \
        MMA_EMU_XCH(lane, 0) = (off);      \
        barrier(CLK_LOCAL_MEM_FENCE);      \
        r0 = MMA_EMU_LDSM_T(0);            \
        r1 = MMA_EMU_LDSM_T(1);            \
        r2 = MMA_EMU_LDSM_T(2);            \
        r3 = MMA_EMU_LDSM_T(3);            \
        barrier(CLK_LOCAL_MEM_FENCE);      \
    } while (0)

/* cp.async.cg 16 bytes (bytes = 16 or 0: zero fill), done at once */
#define MMA_CP16(off, gptr, bytes)                                                            \
    do {                                                                                      \
        const uint4 v_ = (bytes) ? *(__global const uint4 *)(gptr) : (uint4)(0u, 0u, 0u, 0u); \
        *(__local uint4 *)((__local uchar *)smem + (off)) = v_;                               \
    } while (0)
/* the same with the first `bytes` (0, 4, 8, 12 or 16) read and the rest zero-filled (a matrix's edges) */
#define MMA_CP16_PART(off, gptr, bytes)                                                                \
    do {                                                                                               \
        const uint n_ = (uint)(bytes);                                                                 \
        __global const uint *s_ = (__global const uint *)(gptr);                                       \
        const uint4 v_ =                                                                               \
            n_ >= 16u ? *(__global const uint4 *)s_                                                    \
                      : (uint4)(n_ > 0u ? s_[0] : 0u, n_ > 4u ? s_[1] : 0u, n_ > 8u ? s_[2] : 0u, 0u); \
        *(__local uint4 *)((__local uchar *)smem + (off)) = v_;                                        \
    } while (0)
#define MMA_CP_COMMIT() ((void)0)
#define MMA_CP_WAIT(n)  ((void)0)
#elif ARMT_NV_MMA
/* pack two floats to bf16x2, round to nearest even: cvt puts its FIRST source in the UPPER half */
inline uint armt_mma_bf16x2(float lo, float hi) {
    uint r;
    __asm__("cvt.rn.bf16x2.f32 %0, %1, %2;" : "=r"(r) : "f"(hi), "f"(lo));
    return r;
}
#define MMA_MMA(d, a, b)                                                                                 \
    __asm__("mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 "                                       \
            "{%0, %1, %2, %3}, {%4, %5, %6, %7}, {%8, %9}, {%10, %11, %12, %13};"                        \
            : "=f"((d)[0]), "=f"((d)[1]), "=f"((d)[2]), "=f"((d)[3])                                     \
            : "r"((a)[0]), "r"((a)[1]), "r"((a)[2]), "r"((a)[3]), "r"((b)[0]), "r"((b)[1]), "f"((d)[0]), \
              "f"((d)[1]), "f"((d)[2]), "f"((d)[3]))
/* cvt.rna.tf32.f32 and mma.m16n8k8 on TF32 operands (fragments: see the stand-ins above) */
inline uint armt_tf32(float x) {
    uint r;
    __asm__("cvt.rna.tf32.f32 %0, %1;" : "=r"(r) : "f"(x));
    return r;
}
#define MMA_TF32(d, a, b)                                                                                \
    __asm__("mma.sync.aligned.m16n8k8.row.col.f32.tf32.tf32.f32 "                                        \
            "{%0, %1, %2, %3}, {%4, %5, %6, %7}, {%8, %9}, {%10, %11, %12, %13};"                        \
            : "=f"((d)[0]), "=f"((d)[1]), "=f"((d)[2]), "=f"((d)[3])                                     \
            : "r"((a)[0]), "r"((a)[1]), "r"((a)[2]), "r"((a)[3]), "r"((b)[0]), "r"((b)[1]), "f"((d)[0]), \
              "f"((d)[1]), "f"((d)[2]), "f"((d)[3]))
#define MMA_SHFL_XOR(x, m)                                                      \
    do {                                                                        \
        float y_;                                                               \
        __asm__ __volatile__("shfl.sync.bfly.b32 %0, %1, %2, 0x1f, 0xffffffff;" \
                             : "=f"(y_)                                         \
                             : "f"(x), "r"(m));                                 \
        (x) = y_;                                                               \
    } while (0)

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

#define MMA_LDSM_X4(r0, r1, r2, r3, off)                                                    \
    __asm__ __volatile__("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0, %1, %2, %3}, [%4];" \
                         : "=r"(r0), "=r"(r1), "=r"(r2), "=r"(r3)                           \
                         : "r"(sbase + (off))                                               \
                         : "memory")

#define MMA_LDSM_X4_T(r0, r1, r2, r3, off)                                                        \
    __asm__ __volatile__("ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16 {%0, %1, %2, %3}, [%4];" \
                         : "=r"(r0), "=r"(r1), "=r"(r2), "=r"(r3)                                 \
                         : "r"(sbase + (off))                                                     \
                         : "memory")

/* 16 bytes global -> shared, bypassing L1 (.cg): the first `bytes` (0..16) are read, the rest zero-filled
 * (src-size); gptr is 16-byte aligned. MMA_CP16 passes 16 or 0, MMA_CP16_PART 0, 4, 8, 12 or 16 (the same
 * instruction). */
#define MMA_CP16_PART(off, gptr, bytes) MMA_CP16(off, gptr, bytes)
#define MMA_CP16(off, gptr, bytes)                                                    \
    __asm__ __volatile__("cp.async.cg.shared.global [%0], [%1], 16, %2;"              \
                         :                                                            \
                         : "r"(sbase + (off)), "l"((ulong)(gptr)), "r"((uint)(bytes)) \
                         : "memory")
#define MMA_CP_COMMIT() __asm__ __volatile__("cp.async.commit_group;" ::: "memory")
#define MMA_CP_WAIT_(n) __asm__ __volatile__("cp.async.wait_group " #n ";" ::: "memory")
#define MMA_CP_WAIT(n)  MMA_CP_WAIT_(n)
#endif

/* x = hi + lo, both TF32 bit patterns (armt_tf32: hi to nearest, lo = x - hi rounded again; x - hi is exact),
 * hi + lo within 2^-22 |x|: the split of the 3xTF32 products (gemm_tf32.cl, gemm_tf32_wg.cl and the fp32
 * attention of attention_mma.cl) */
#define TF32_SPLIT(x, hi, lo)                        \
    do {                                             \
        const float x_ = (x);                        \
        (hi) = armt_tf32(x_);                        \
        (lo) = armt_tf32(x_ - as_float((uint)(hi))); \
    } while (0)
