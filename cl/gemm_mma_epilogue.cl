/*
 * gemm_mma_epilogue.cl - the tensor-core GEMM's epilogue: the accumulators of a tile to C (beta, row scale),
 * or rounded to bf16 (with RoPE, SwiGLU, or two outputs for k and v). Pairs of columns go as one access
 * where aligned.
 */
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
inline __attribute__((always_inline)) void armt_mma_rope(float acc[MMA_MT][MMA_NT][4], const int m,
                                                         const int rbase, const int tc,
                                                         __global const float *tab, const int T,
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
                const float2 c = (float2)(cs[e], cs[e + 1]),
                             sn = (float2)(cs[HD / 2 + e], cs[HD / 2 + e + 1]);
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
inline __attribute__((always_inline)) void armt_mma_prefetch_tile(__global const float *P, const int ld,
                                                                  const int m, const int n, const int row0,
                                                                  const int col0, const int tid) {
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
inline __attribute__((always_inline)) void
armt_mma_epilogue(float acc[MMA_MT][MMA_NT][4], const int m, const int n, const int row0, const int col0,
                  const int wm0, const int wn0, const int lane, __global float *C, const int ldc,
                  const int beta, const ulong c_off, __global const float *Gt, __global ushort *Cb,
                  __global ushort *Cb2, const int dual, __global const float *rope, const int rope_hd,
                  const int rope_T, const int rope_pos0, __global const float *rowscale, const ulong s_row0) {
    __global float *Cj = C + c_off;
    const int g = lane >> 2, tc = (lane & 3) * 2;
    const int vec2 = ((c_off | (ulong)ldc) & 1) == 0;
    if (rope) {
        const int rb = row0 + wm0 + g;
        const int nq = dual ? MMA_NT / 2 : MMA_NT; /* (k and v in one tile: k's columns only) */
        if (rope_hd == 64)
            armt_mma_rope(acc, m, rb, tc, rope, rope_T, rope_pos0, 64, nq);
        else if (rope_hd == 128)
            armt_mma_rope(acc, m, rb, tc, rope, rope_T, rope_pos0, 128, nq);
        else if (rope_hd == 32)
            armt_mma_rope(acc, m, rb, tc, rope, rope_T, rope_pos0, 32, nq);
        else if (rope_hd == 16)
            armt_mma_rope(acc, m, rb, tc, rope, rope_T, rope_pos0, 16, nq);
    }
#if MMA_DUAL_OK
    /* The two dual modes keep loops of their own: a choice inside one loop slows the gate-and-up GEMM
     * (docs/perf/results/2026-11-28-h200-dual-epilogue-fold.txt). */
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
                    armt_store_bf16_pair(Bj, (ulong)r * ldc + c, c, n, vec2, acc[i][q][2 * h],
                                         acc[i][q][2 * h + 1]);
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
                    armt_swiglu_pair(Bj, (ulong)r * ldc + c, c, n, vec2, acc[i][q][2 * h],
                                     acc[i][q][2 * h + 1], acc[i][q + MMA_NT / 2][2 * h],
                                     acc[i][q + MMA_NT / 2][2 * h + 1]);
                }
            }
        }
        return;
    }
#endif
    if (Gt) {
        /* SwiGLU epilogue (the up projection): Cb = bf16(silu(Gt) * (A W^T)) at C's offsets; C is not written
         */
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
                    armt_store_bf16_pair(Bj, (ulong)r * ldc + c, c, n, vec2, acc[i][q][2 * h],
                                         acc[i][q][2 * h + 1]);
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
                    old[e] =
                        beta ? armt_load_pair(crow, col0 + wn0 + (q0 + e) * 8 + tc, n, vec2) : (float2)(0.0f);
#pragma unroll
                for (int e = 0; e < MMA_EPI_Q; e++) {
                    const float2 v = (float2)(acc[i][q0 + e][2 * h], acc[i][q0 + e][2 * h + 1]) * sc + old[e];
                    armt_store_pair(crow, col0 + wn0 + (q0 + e) * 8 + tc, n, vec2, v);
                }
            }
        }
    }
}
