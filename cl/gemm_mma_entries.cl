/*
 * gemm_mma_entries.cl - the tensor-core GEMM kernels (contract in gemm_bf16.cl and gemm_mma_params.cl).
 * Every GEMM kernel takes the argument list of gemm_args.h, which the host sets by name (lib/gemm_args.c).
 */
/* fp32 A, rounded to bf16 as it is staged (contract: gemm_mma_params.cl); W2 .. Cb2 are not used. Gt, Cb:
 * NULL, or the SwiGLU
 * epilogue (Cb = bf16(silu(Gt) * A W^T) at C's offsets, C untouched; beta ignored), or Cb alone: the product
 * rounded to bf16 into Cb instead of C. */
__kernel __attribute__((reqd_work_group_size(MMA_THREADS, 1, 1))) void
armt_gemm_bf16_mma(ARMT_GEMM_PARAMS(float)) {
    __local uint smem[MMA_STAGES * MMA_STAGE_BYTES / 4] __attribute__((aligned(MMA_SMEM_ALIGN)));
    MMA_EMU_LOCALS
    if (GEMM_SKIP_TILE(armt_mma_row_tile(), MMA_BM, last_row0)) return;
    const int j = get_group_id(2);
    GEMM_ENTRY_OFFSETS(j, a_off, w_off, c_off)
    armt_mma_gemm(m, n, k, A, 0, lda, W, C, ldc, beta, a_off, w_off, c_off, 0, Gt, Cb, 0, 0, 0, 0, 0, 1, 0, 0,
                  ldw, smem, MMA_EMU_ARG);
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
__kernel __attribute__((reqd_work_group_size(MMA_THREADS, 1, 1))) void
armt_gemm_bf16bf16_mma(ARMT_GEMM_PARAMS(ushort)) {
    __local uint smem[MMA_STAGES * MMA_STAGE_BYTES / 4] __attribute__((aligned(MMA_SMEM_ALIGN)));
    MMA_EMU_LOCALS
    if (GEMM_SKIP_TILE(armt_mma_row_tile(), MMA_BM, last_row0)) return;
    const int j = get_group_id(2);
    GEMM_ENTRY_OFFSETS(j, a_off, w_off, c_off)
    armt_mma_gemm(m, n, k, 0, A, lda, W, C, ldc, beta, a_off, w_off, c_off, 1, Gt, Cb, W2, w2_shift, Cb2,
                  rope, rope_hd, rope_T, rope_pos0, rowscale, ldw, smem, MMA_EMU_ARG);
}
