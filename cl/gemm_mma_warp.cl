/*
 * gemm_mma_warp.cl - the GEMM's own tensor-core primitives beyond mma.cl: Hopper wgmma (its operand
 * descriptors, fences and groups), the proxy fence and the L2 prefetch, each as inline PTX or, with
 * ARMT_MMA_EMULATE, as an OpenCL C stand-in of the same semantics.
 */
#if ARMT_MMA_EMULATE
/* ---- OpenCL C stand-ins, same semantics as the PTX (PTX ISA: "Matrix fragments for mma.m16n8k16 with
 * floating point type", "ldmatrix"). Each takes effect for the whole warp, exchanging through local memory;
 * every work-item of the work-group calls them in the same order, so the barriers inside are uniform. ---- */
#define MMA_EMU_LOCALS __local uint xch[MMA_THREADS * 6];
#define MMA_EMU_ARG    xch
#define MMA_EMU_PARAM  , __local uint *xch

/* wgmma.mma_async m64nNk16 (both operands in local memory, K-major, 64-byte swizzle): the warpgroup's
 * D (64 x N) += A (64 x 16) B^T, A and B described by their start byte offsets in smem. The stand-in reads
 * the way the descriptor tells the hardware to: row r of an operand at start + (r / 8) * 512 (SBO) +
 * (r % 8) * 64, element kk at + 2 kk, then the 16-byte chunk bits [4, 6) of the address XORed with its bits
 * [7, 9) (64-byte swizzle). It completes at once, so fence, commit and wait are no-ops. */
#define MMA_WG_ELEM(start, r, kk)                                                                   \
    MMA_EMU_WG_HALF((uint)(start) + (uint)((r) >> 3) * (8u * MMA_ROWB) + (uint)((r)&7) * MMA_ROWB + \
                    (uint)(kk)*2u)
inline float armt_emu_wg_half(__local uint *smem, uint addr) {
    const uint phys = addr ^ (((addr >> 7) & (uint)(MMA_ROWB / 16 - 1)) << 4);
    const uint w = smem[phys >> 2];
    return as_float((phys & 2u) ? (w & 0xffff0000u) : (w << 16));
}
#define MMA_EMU_WG_HALF(addr) armt_emu_wg_half(smem, addr)
#define MMA_WGMMA_OP(d, off_a, off_b)                                                \
    do {                                                                             \
        for (int j_ = 0; j_ < MMA_WG_N / 8; j_++)                                    \
            for (int e_ = 0; e_ < 4; e_++) {                                         \
                const int r_ = 16 * (warp & 3) + (lane >> 2) + 8 * (e_ >> 1);        \
                const int c_ = 8 * j_ + 2 * (lane & 3) + (e_ & 1);                   \
                float s_ = (d)[j_][e_];                                              \
                for (int kk_ = 0; kk_ < 16; kk_++)                                   \
                    s_ += MMA_WG_ELEM(off_a, r_, kk_) * MMA_WG_ELEM(off_b, c_, kk_); \
                (d)[j_][e_] = s_;                                                    \
            }                                                                        \
    } while (0)
/* the same with n = 128 (the half mode, gemm_mma.cl): d[0 .. 15] */
#define MMA_WGMMA_OP_HALF(d, off_a, off_b)                                           \
    do {                                                                             \
        for (int j_ = 0; j_ < 16; j_++)                                              \
            for (int e_ = 0; e_ < 4; e_++) {                                         \
                const int r_ = 16 * (warp & 3) + (lane >> 2) + 8 * (e_ >> 1);        \
                const int c_ = 8 * j_ + 2 * (lane & 3) + (e_ & 1);                   \
                float s_ = (d)[j_][e_];                                              \
                for (int kk_ = 0; kk_ < 16; kk_++)                                   \
                    s_ += MMA_WG_ELEM(off_a, r_, kk_) * MMA_WG_ELEM(off_b, c_, kk_); \
                (d)[j_][e_] = s_;                                                    \
            }                                                                        \
    } while (0)
#define MMA_WG_FENCE()    ((void)0)
#define MMA_WG_COMMIT()   ((void)0)
#define MMA_WG_WAIT0()    ((void)0)
#define MMA_WG_WAIT1()    ((void)0)
#define MMA_PROXY_FENCE() ((void)0)
#define MMA_PF_L2(gptr)   ((void)0) /* a hint: nothing to emulate */

#else /* ---- real PTX (NVIDIA, sm_80+) ---- */
#define MMA_EMU_LOCALS
#define MMA_EMU_ARG     0
#define MMA_EMU_PARAM   , const int xch_unused_

/* bring the 128-byte line holding a global address into L2 (a hint: no fault, no effect on results) */
#define MMA_PF_L2(gptr) __asm__ __volatile__("prefetch.global.L2 [%0];" : : "l"((ulong)(gptr)))
#if MMA_WGMMA
/* wgmma is sm_90a-only and NVIDIA's OpenCL compiler targets sm_90: each wgmma instruction is written as a
 * PTX comment behind the mark below, which the host removes from the built program's PTX before rebuilding
 * it for sm_90a (lib/device/nv_ptx.c). */
#define MMA_SM90A       "//@sm90a " /* = ARMT_SM90A_MARK in lib/device/nv_ptx.h */
/* wgmma (sm_90a). Descriptor of a K-major operand tile whose rows are swizzled like MMA_SWZ: start address
 * >> 4 (bits 0-13), leading byte offset 1 (unused when swizzled, bits 16-29), stride byte offset = 8 rows
 * (bits 32-45), base offset 0 (tiles start on 8-row boundaries), swizzle mode (bits 62-63) by row bytes:
 * 32 -> 3 (32-byte swizzle), 64 -> 2, 128 -> 1. The k16 steps inside a row advance the start by 32 bytes. */
#define MMA_WG_SWMODE   (MMA_BK == 16 ? 3 : MMA_BK == 32 ? 2 : 1)
inline ulong armt_wg_desc(uint saddr) {
    return (ulong)((saddr & 0x3ffffu) >> 4) | ((ulong)1 << 16) | ((ulong)(8 * MMA_ROWB >> 4) << 32) |
           ((ulong)MMA_WG_SWMODE << 62);
}
/* The wgmma operand lists: accumulators (d)[q][0..3] of n8 group q as "+f" operands, 8 groups per macro,
 * and the register list "{%0, ..., %N-1}" of the instruction text, 16 registers per line. */
#define MMA_WG_D4(d, q) "+f"((d)[q][0]), "+f"((d)[q][1]), "+f"((d)[q][2]), "+f"((d)[q][3])
#define MMA_WG_D0(d)                                                                                      \
    MMA_WG_D4(d, 0), MMA_WG_D4(d, 1), MMA_WG_D4(d, 2), MMA_WG_D4(d, 3), MMA_WG_D4(d, 4), MMA_WG_D4(d, 5), \
        MMA_WG_D4(d, 6), MMA_WG_D4(d, 7)
#define MMA_WG_D1(d)                                                                        \
    MMA_WG_D4(d, 8), MMA_WG_D4(d, 9), MMA_WG_D4(d, 10), MMA_WG_D4(d, 11), MMA_WG_D4(d, 12), \
        MMA_WG_D4(d, 13), MMA_WG_D4(d, 14), MMA_WG_D4(d, 15)
#define MMA_WG_D2(d)                                                                          \
    MMA_WG_D4(d, 16), MMA_WG_D4(d, 17), MMA_WG_D4(d, 18), MMA_WG_D4(d, 19), MMA_WG_D4(d, 20), \
        MMA_WG_D4(d, 21), MMA_WG_D4(d, 22), MMA_WG_D4(d, 23)
#define MMA_WG_D3(d)                                                                          \
    MMA_WG_D4(d, 24), MMA_WG_D4(d, 25), MMA_WG_D4(d, 26), MMA_WG_D4(d, 27), MMA_WG_D4(d, 28), \
        MMA_WG_D4(d, 29), MMA_WG_D4(d, 30), MMA_WG_D4(d, 31)
#define MMA_WG_R0 "%0, %1, %2, %3, %4, %5, %6, %7, %8, %9, %10, %11, %12, %13, %14, %15"
#define MMA_WG_R1 "%16, %17, %18, %19, %20, %21, %22, %23, %24, %25, %26, %27, %28, %29, %30, %31"
#define MMA_WG_R2 "%32, %33, %34, %35, %36, %37, %38, %39, %40, %41, %42, %43, %44, %45, %46, %47"
#define MMA_WG_R3 "%48, %49, %50, %51, %52, %53, %54, %55, %56, %57, %58, %59, %60, %61, %62, %63"
#define MMA_WG_R4 "%64, %65, %66, %67, %68, %69, %70, %71, %72, %73, %74, %75, %76, %77, %78, %79"
#define MMA_WG_R5 "%80, %81, %82, %83, %84, %85, %86, %87, %88, %89, %90, %91, %92, %93, %94, %95"
#define MMA_WG_R6 "%96, %97, %98, %99, %100, %101, %102, %103, %104, %105, %106, %107, %108, %109, %110, %111"
#define MMA_WG_R7 \
    "%112, %113, %114, %115, %116, %117, %118, %119, %120, %121, %122, %123, %124, %125, %126, %127"
#define MMA_WG_REGS_64  MMA_WG_R0 ", " MMA_WG_R1
#define MMA_WG_REGS_128 MMA_WG_R0 ", " MMA_WG_R1 ", " MMA_WG_R2 ", " MMA_WG_R3
#define MMA_WG_REGS_256                                                                                 \
    MMA_WG_R0 ", " MMA_WG_R1 ", " MMA_WG_R2 ", " MMA_WG_R3 ", " MMA_WG_R4 ", " MMA_WG_R5 ", " MMA_WG_R6 \
              ", " MMA_WG_R7
#define MMA_WGMMA_OP_64(d, off_a, off_b)                                                                   \
    __asm__ __volatile__(MMA_SM90A "{ .reg .pred armt_p; setp.ne.b32 armt_p, %34, 0; "                     \
                                   "wgmma.mma_async.sync.aligned.m64n64k16.f32.bf16.bf16 {" MMA_WG_REGS_64 \
                                   "}, %32, %33, armt_p, 1, 1, 0, 0; }"                                    \
                         : MMA_WG_D0(d)                                                                    \
                         : "l"(armt_wg_desc(sbase + (off_a))), "l"(armt_wg_desc(sbase + (off_b))), "r"(1))
#define MMA_WGMMA_OP_128(d, off_a, off_b)                                                                    \
    __asm__ __volatile__(MMA_SM90A "{ .reg .pred armt_p; setp.ne.b32 armt_p, %66, 0; "                       \
                                   "wgmma.mma_async.sync.aligned.m64n128k16.f32.bf16.bf16 {" MMA_WG_REGS_128 \
                                   "}, %64, %65, armt_p, 1, 1, 0, 0; }"                                      \
                         : MMA_WG_D0(d), MMA_WG_D1(d)                                                        \
                         : "l"(armt_wg_desc(sbase + (off_a))), "l"(armt_wg_desc(sbase + (off_b))), "r"(1))
#define MMA_WGMMA_OP_256(d, off_a, off_b)                                                                    \
    __asm__ __volatile__(MMA_SM90A "{ .reg .pred armt_p; setp.ne.b32 armt_p, %130, 0; "                      \
                                   "wgmma.mma_async.sync.aligned.m64n256k16.f32.bf16.bf16 {" MMA_WG_REGS_256 \
                                   "}, %128, %129, armt_p, 1, 1, 0, 0; }"                                    \
                         : MMA_WG_D0(d), MMA_WG_D1(d), MMA_WG_D2(d), MMA_WG_D3(d)                            \
                         : "l"(armt_wg_desc(sbase + (off_a))), "l"(armt_wg_desc(sbase + (off_b))), "r"(1))
#define MMA_WGMMA_OP_HALF(d, off_a, off_b) MMA_WGMMA_OP_128(d, off_a, off_b) /* the half mode (gemm_mma.cl) */
#if MMA_WG_N == 256
#define MMA_WGMMA_OP(d, off_a, off_b) MMA_WGMMA_OP_256(d, off_a, off_b)
#elif MMA_WG_N == 128
#define MMA_WGMMA_OP(d, off_a, off_b) MMA_WGMMA_OP_128(d, off_a, off_b)
#else
#define MMA_WGMMA_OP(d, off_a, off_b) MMA_WGMMA_OP_64(d, off_a, off_b)
#endif
#define MMA_WG_FENCE()    __asm__ __volatile__(MMA_SM90A "wgmma.fence.sync.aligned;" ::: "memory")
#define MMA_WG_COMMIT()   __asm__ __volatile__(MMA_SM90A "wgmma.commit_group.sync.aligned;" ::: "memory")
#define MMA_WG_WAIT0()    __asm__ __volatile__(MMA_SM90A "wgmma.wait_group.sync.aligned 0;" ::: "memory")
#define MMA_WG_WAIT1()    __asm__ __volatile__(MMA_SM90A "wgmma.wait_group.sync.aligned 1;" ::: "memory")
/* local-memory writes of the threads (st.shared, cp.async) made visible to the tensor cores' async proxy */
#define MMA_PROXY_FENCE() __asm__ __volatile__(MMA_SM90A "fence.proxy.async.shared::cta;" ::: "memory")
#else
#define MMA_PROXY_FENCE() ((void)0)
#endif
#endif
