/*
 * gemv_bf16.cl - the GEMMs of generation: few rows (one new token per sequence) against bf16 weights. Such a
 * product reads every weight once and does two FLOPs per weight and row: its speed is the rate at which the
 * device streams W, which wants many work-groups each with several loads in flight, not the tiles of
 * gemm_bf16.cl / gemm_mma*.cl (with m = 1 a 128-row tile computes 127 rows of padding and a launch has too
 * few work-groups to fill the memory system).
 *
 * The contract is gemm_bf16.cl's (C_j = A_j W_j^T (+ C_j), per-entry offsets in table or strided mode, the
 * argument list of gemm_args.h, last_row0), with the epilogues of the tensor-core kernels: SwiGLU (Gt), bf16
 * output (Cb), two weights in one pass (W2: gate and up into Cb as bf16(silu(P) P2), or k and v into Cb and
 * Cb2), RoPE of the product (for k and v: of k's only), row scales (C += s P, s = rowscale[a_off / lda + r]).
 * A is fp32 (armt_gemv_bf16; rounded to bf16 as it is read, like every bf16 GEMM) or bf16 (armt_gemv_bf16bf16).
 * A third product in the same launch (W3: generation's q next to k and v, one entry): the first work-groups
 * compute C3 = A W3^T (fp32, RoPE'd like k), the others the op's own products; same A, same norm.
 * Two more for generation's one-row steps, so that they need no launch of their own: the RMSNorm of A's rows
 * (norm_w: fp32 A; each work-group computes a row's 1/rms in armt_rmsnorm's order, armt_row_inv_rms, and reads
 * A as bf16((x inv) w), what armt_rmsnorm would have written: bit for bit the same products), and k and v
 * in fp32 (W2 with C2 and no Cb: the second product into C2, for a KV cache).
 *
 * Requirements (lib/compute/gemm.c checks them): m <= GV_ROWS, k % 8 == 0, W's offsets multiples of 8
 * elements, A's offsets and lda multiples of 4 (fp32 A) or 8 (bf16 A), so that every load is 16 bytes; with
 * RoPE, n a multiple of rope_hd.
 *
 * Work: a work-group of GV_WG work-items is GV_WG / lanes groups of lanes work-items (gv_lanes: 32, 64 or
 * 128, chosen per weight shape by lib/compute/gemm.c); group g owns two output columns (c0, c1) of every row:
 * c0 = 2p, c1 = 2p + 1 for the p-th group of the launch, or with RoPE the pair the rotation mixes,
 * c0 = h hd + i and c1 = c0 + hd/2 (p = h hd/2 + i), so that one work-item rotates both. Its lanes walk k in
 * chunks of 8 (lane, lane + lanes, ...), one 16-byte load of each weight row per chunk, GV_UNROLL chunks at
 * a time; the partial sums are added in local memory by a tree of a fixed order, so a result depends on the
 * lanes but not on the launch (a one-row step is latency-bound: many lanes per column keep the rounds of
 * loads few; k = 2048 at 128 lanes is one round). Global size: (ceil(n / (2 GV_WG / lanes)) GV_WG, 1, count).
 */

#define GV_WG 128 /* work-items per work-group */
#ifndef GV_UNROLL
#define GV_UNROLL 2 /* chunks of 8 per lane in flight (2 measured faster than 4 and 8 on an H100) */
#endif
#ifndef GV_ROWS
#define GV_ROWS 4 /* most rows of an entry */
#endif
#define GV_VALS (GV_ROWS * 4) /* partial sums per work-item: rows x (c0, c1) x (W, W2) */
#if ARMT_ROW_WG > 4 * GV_WG
#error "the GEMV's local memory is armt_row_inv_rms's scratch: ARMT_ROW_WG too large"
#endif

/* GV_SHFL=1: the last five levels of the reduction's tree (inside a warp of 32 work-items) by butterfly
 * exchanges instead of local memory and barriers: on NVIDIA shfl.sync.bfly (inline PTX), elsewhere (the
 * emulation, tests) through local memory. The same sums, bit for bit: at the level of offset o, lane i < o
 * gets x_i + x_(i + o), the tree's sum, and lane i + o the same two values in the other order. */
#ifndef GV_SHFL
#if ARMT_NV_MMA && !ARMT_MMA_EMULATE
#define GV_SHFL 1
#else
#define GV_SHFL 0
#endif
#endif
#if GV_SHFL && ARMT_NV_MMA && !ARMT_MMA_EMULATE
inline float armt_gv_xor(const float x, const int m, __local float *xch) {
    float y;
    __asm__ __volatile__("shfl.sync.bfly.b32 %0, %1, %2, 0x1f, 0xffffffff;" : "=f"(y) : "f"(x), "r"(m));
    return y;
}
#elif GV_SHFL
/* (every work-item of the work-group calls it; xch: one float per work-item) */
inline float armt_gv_xor(const float x, const int m, __local float *xch) {
    const int lid = get_local_id(0);
    barrier(CLK_LOCAL_MEM_FENCE);
    xch[lid] = x;
    barrier(CLK_LOCAL_MEM_FENCE);
    return xch[lid ^ m];
}
#endif

#if GV_SHFL
/* armt_row_inv_rms (common.cl) for the GEMV's GV_WG work-items, bit for bit: its tree's levels of s >= GV_WG
 * inside each work-item (virtual lanes lid + j GV_WG), the levels down to 32 in local memory, the last five
 * by exchanges. scratch: GV_WG floats. Every work-item of the work-group calls it. */
#define GV_RL (ARMT_ROW_WG > GV_WG ? ARMT_ROW_WG / GV_WG : 1) /* virtual lanes per work-item */
inline float armt_gv_inv_rms(__global const float *xr, const int d, const float eps, __local float *scratch) {
    const int lid = get_local_id(0), top = min(ARMT_ROW_WG, GV_WG);
    float v[GV_RL];
    for (int j = 0; j < GV_RL; j++)
        v[j] = lid < ARMT_ROW_WG ? armt_row_lane_ss(xr, d, lid + j * GV_WG) : 0.0f;
    for (int s = GV_RL / 2; s > 0; s >>= 1) /* (the tree's levels s GV_WG) */
        for (int j = 0; j < s; j++)
            v[j] += v[j + s];
    barrier(CLK_LOCAL_MEM_FENCE); /* (scratch may still be read by the caller's last use) */
    scratch[lid] = v[0];
    barrier(CLK_LOCAL_MEM_FENCE);
    for (int s = top / 2; s >= 32; s >>= 1) {
        if (lid < s) scratch[lid] += scratch[lid + s];
        barrier(CLK_LOCAL_MEM_FENCE);
    }
    float x = scratch[lid & 31];
    for (int o = 16; o > 0; o >>= 1)
        x += armt_gv_xor(x, o, scratch);
    barrier(CLK_LOCAL_MEM_FENCE);
    return 1.0f / sqrt(x / (float)d + eps);
}
#endif

/* 8 bf16 weights (a uint4) dotted with 8 activations */
inline float armt_gv_dot8(const uint4 w, const float8 a) {
    float s = a.s0 * as_float(w.x << 16);
    s = fma(a.s1, as_float(w.x & 0xffff0000u), s);
    s = fma(a.s2, as_float(w.y << 16), s);
    s = fma(a.s3, as_float(w.y & 0xffff0000u), s);
    s = fma(a.s4, as_float(w.z << 16), s);
    s = fma(a.s5, as_float(w.z & 0xffff0000u), s);
    s = fma(a.s6, as_float(w.w << 16), s);
    s = fma(a.s7, as_float(w.w & 0xffff0000u), s);
    return s;
}

/* 8 activations of a row from element p (column ch of the row): fp32 rounded to bf16, or bf16; with g the
 * row's RMSNorm first (x inv g, as armt_rmsnorm computes it) */
inline float8 armt_gv_load_a(__global const float *Af, __global const ushort *Ab, const ulong p,
                             __global const float *g, const int ch, const float inv) {
    if (Ab) {
        const uint4 u = *(__global const uint4 *)(Ab + p);
        return (float8)(as_float(u.x << 16), as_float(u.x & 0xffff0000u), as_float(u.y << 16),
                        as_float(u.y & 0xffff0000u), as_float(u.z << 16), as_float(u.z & 0xffff0000u),
                        as_float(u.w << 16), as_float(u.w & 0xffff0000u));
    }
    float4 x = *(__global const float4 *)(Af + p), y = *(__global const float4 *)(Af + p + 4);
    if (g) {
        x = x * inv * vload4(0, g + ch);
        y = y * inv * vload4(0, g + ch + 4);
    }
    return (float8)(armt_from_bf16(armt_to_bf16(x.x)), armt_from_bf16(armt_to_bf16(x.y)),
                    armt_from_bf16(armt_to_bf16(x.z)), armt_from_bf16(armt_to_bf16(x.w)),
                    armt_from_bf16(armt_to_bf16(y.x)), armt_from_bf16(armt_to_bf16(y.y)),
                    armt_from_bf16(armt_to_bf16(y.z)), armt_from_bf16(armt_to_bf16(y.w)));
}

inline float armt_gv_silu(const float g) { return g / (1.0f + exp(-g)); }

inline void armt_gemv(const int m, const int n, const int k, __global const float *Af,
                      __global const ushort *Ab, const int lda, __global const ushort *W, __global float *C,
                      const int ldc, const int beta, __global const ulong *offs, const ulong a_base,
                      const ulong a_stride, const ulong w_base, const ulong w_stride, const ulong c_base,
                      const ulong c_stride, __global const float *Gt, __global ushort *Cb,
                      __global const ushort *W2, const ulong w2_shift, __global const float *rope,
                      const int rope_hd, const int rope_T, const int rope_pos0,
                      __global const float *rowscale, __global ushort *Cb2, __global const float *norm_w,
                      const ulong norm_off, const float norm_eps, __global float *C2, const int lanes,
                      const int last_row0, const int gx, __local float *red, __local float *sums,
                      const int R) {
    const int groups = GV_WG / lanes; /* (lanes: 32, 64 or 128, from GV_RUN) */
    const int lid = get_local_id(0), lane = lid % lanes, grp = lid / lanes;
    const int j = get_group_id(2);
    GEMM_ENTRY_OFFSETS(j, a_off, w_off, c_off)
    const int dual = W2 != 0;
    const int kv = dual && (Cb2 || C2);                   /* W2 is v's weight (else up's) */
    const int rot = rope && rope_hd > 0 && (!dual || kv); /* (gate and up are not rotated) */
    const int p = gx * groups + grp;                      /* this group's column pair */
    int c0, c1;
    if (rot) {
        const int hh = rope_hd / 2;
        c0 = (p / hh) * rope_hd + p % hh;
        c1 = c0 + hh;
    } else {
        c0 = 2 * p;
        c1 = c0 + 1;
    }
    const int first = j == get_num_groups(2) - 1 ? last_row0 : 0; /* rows below it: nobody reads them */

    __global const ushort *w0 = W + w_off + (ulong)c0 * k, *w1 = W + w_off + (ulong)c1 * k;
    __global const ushort *u0 = W2 + w_off + w2_shift + (ulong)c0 * k,
                          *u1 = W2 + w_off + w2_shift + (ulong)c1 * k;
    const int ok0 = c0 < n, ok1 = c1 < n;
    /* GV_UNROLL chunks per lane at a time: their weight loads are issued together (the loop is a chain of
     * memory latencies otherwise), and the next ones as soon as these are used; the first before the norm,
     * so that its sums overlap their latency */
    uint4 a0[GV_UNROLL], a1[GV_UNROLL], b0[GV_UNROLL], b1[GV_UNROLL];
#define GV_LOAD(ch0)                                                        \
    for (int u = 0; u < GV_UNROLL; u++) {                                   \
        const int ch = (ch0) + u * lanes * 8, in = ch < k;                  \
        const uint4 z = (uint4)(0u);                                        \
        a0[u] = in && ok0 ? *(__global const uint4 *)(w0 + ch) : z;         \
        a1[u] = in && ok1 ? *(__global const uint4 *)(w1 + ch) : z;         \
        b0[u] = in && dual && ok0 ? *(__global const uint4 *)(u0 + ch) : z; \
        b1[u] = in && dual && ok1 ? *(__global const uint4 *)(u1 + ch) : z; \
    }
#pragma unroll
    GV_LOAD(lane * 8)
    /* RMSNorm of the rows first: each row's 1/rms, in armt_rmsnorm's order (red as its scratch) */
    __global const float *nw = norm_w ? norm_w + norm_off : 0;
    float inv[GV_ROWS];
    for (int r = 0; r < R; r++) {
        inv[r] = 1.0f;
        if (nw && r < m) /* (uniform over the work-group: the barriers inside are reached by all) */
#if GV_SHFL
            inv[r] = armt_gv_inv_rms(Af + a_off + (ulong)r * lda, k, norm_eps, red);
#else
            inv[r] = armt_row_inv_rms(Af + a_off + (ulong)r * lda, k, norm_eps, red);
#endif
    }
    float acc[GV_VALS];
    for (int v = 0; v < 4 * R; v++)
        acc[v] = 0.0f;
    for (int ch0 = lane * 8; ch0 < k; ch0 += lanes * 8 * GV_UNROLL) {
#pragma unroll
        for (int u = 0; u < GV_UNROLL; u++) {
            const int ch = ch0 + u * lanes * 8;
            if (ch >= k) break;
#pragma unroll
            for (int r = 0; r < R; r++) {
                if (r >= m || r < first) continue;
                const float8 x = armt_gv_load_a(Af, Ab, a_off + (ulong)r * lda + ch, nw, ch, inv[r]);
                acc[4 * r] += armt_gv_dot8(a0[u], x);
                acc[4 * r + 1] += armt_gv_dot8(a1[u], x);
                if (dual) {
                    acc[4 * r + 2] += armt_gv_dot8(b0[u], x);
                    acc[4 * r + 3] += armt_gv_dot8(b1[u], x);
                }
            }
        }
#pragma unroll
        GV_LOAD(ch0 + lanes * 8 * GV_UNROLL)
    }
#undef GV_LOAD
    /* the group's sums: a tree over its lanes in local memory (a fixed order; only the values the op has) */
    /* (red[(group value) lanes + lane]: value v of group g is row g 4R + v) */
    const int nv = dual ? 4 : 2;
    /* the tree's levels w >= wlo in local memory: all of them, or with GV_SHFL those across warps (lanes 64
     * and 128), the last five then in every warp by exchanges (every warp of a group ends with its sums) */
    const int wlo = GV_SHFL ? 32 : 1;
    if (!GV_SHFL || lanes > 32) {
        for (int v = 0; v < 4 * R; v++) /* (all of them: the epilogue's reads below are then defined) */
            red[(grp * 4 * R + v) * lanes + lane] = acc[v];
        barrier(CLK_LOCAL_MEM_FENCE);
        for (int w = lanes / 2; w >= wlo; w >>= 1) {
            if (lane < w)
                for (int r = 0; r < R && r < m; r++)
                    for (int v = 0; v < nv; v++) {
                        __local float *rv = red + (grp * 4 * R + 4 * r + v) * lanes + lane;
                        rv[0] += rv[w];
                    }
            barrier(CLK_LOCAL_MEM_FENCE);
        }
    }
#if GV_SHFL
    if (lanes > 32)
        for (int r = 0; r < R && r < m; r++)
            for (int v = 0; v < nv; v++)
                acc[4 * r + v] = red[(grp * 4 * R + 4 * r + v) * lanes + (lane & 31)];
    for (int o = 16; o > 0; o >>= 1)
        for (int r = 0; r < R && r < m; r++)
            for (int v = 0; v < nv; v++)
                acc[4 * r + v] += armt_gv_xor(acc[4 * r + v], o, red);
    if (lane == 0) /* (all the values, as below) */
        for (int v = 0; v < 4 * R; v++)
            sums[grp * 4 * R + v] = acc[v];
#else
    if (lid < groups * 4 * R) sums[lid] = red[lid * lanes];
#endif
    barrier(CLK_LOCAL_MEM_FENCE);
    if (lid >= groups * R) return;
    const int g = lid / R, r = lid % R;
    const int q = gx * groups + g; /* that group's column pair */
    if (rot) {
        const int hh = rope_hd / 2;
        c0 = (q / hh) * rope_hd + q % hh;
        c1 = c0 + hh;
    } else {
        c0 = 2 * q;
        c1 = c0 + 1;
    }
    if (r >= m || r < first || c0 >= n) return;
    __local const float *s = sums + g * 4 * R + 4 * r;
    float P0 = s[0], P1 = s[1];
    const float Q0 = s[2], Q1 = s[3];
    if (rot) {
        const int i = c0 % rope_hd;
        __global const float *cs = rope + (ulong)(rope_pos0 + r % rope_T) * rope_hd;
        const float cv = cs[i], sv = cs[rope_hd / 2 + i], x = P0, y = P1;
        P0 = x * cv - y * sv;
        P1 = y * cv + x * sv;
    }
    const ulong o0 = c_off + (ulong)r * ldc + c0, o1 = c_off + (ulong)r * ldc + c1;
    const int has1 = c1 < n;
    if (dual && C2 && !Cb) { /* k and v in fp32 */
        C[o0] = P0;
        C2[o0] = Q0;
        if (has1) {
            C[o1] = P1;
            C2[o1] = Q1;
        }
    } else if (dual && Cb2) { /* k and v */
        Cb[o0] = armt_to_bf16(P0);
        Cb2[o0] = armt_to_bf16(Q0);
        if (has1) {
            Cb[o1] = armt_to_bf16(P1);
            Cb2[o1] = armt_to_bf16(Q1);
        }
    } else if (dual) { /* gate and up */
        Cb[o0] = armt_to_bf16(armt_gv_silu(P0) * Q0);
        if (has1) Cb[o1] = armt_to_bf16(armt_gv_silu(P1) * Q1);
    } else if (Gt) { /* the up projection, the gate read at C's offsets */
        const float g0 = Gt[o0], g1 = has1 ? Gt[o1] : 0.0f;
        Cb[o0] = armt_to_bf16(armt_gv_silu(g0) * P0);
        if (has1) Cb[o1] = armt_to_bf16(armt_gv_silu(g1) * P1);
    } else if (Cb) {
        Cb[o0] = armt_to_bf16(P0);
        if (has1) Cb[o1] = armt_to_bf16(P1);
    } else {
        const float sc = rowscale ? rowscale[a_off / (ulong)lda + r] : 1.0f;
        C[o0] = P0 * sc + (beta ? C[o0] : 0.0f);
        if (has1) C[o1] = P1 * sc + (beta ? C[o1] : 0.0f);
    }
}

/* The local arrays of a kernel of R rows an entry (the reduction's and the group sums) */
#define GV_LOCALS(R)                  \
    __local float red[4 * (R)*GV_WG]; \
    __local float sums[4 * (R)*GV_WG / 32];

/* The work-group's product: the third one (W3) for the launch's first ceil(n3 / columns) work-groups, where
 * there is one, else the op's own (gx counted from the first of its work-groups). The lanes per column pair:
 * gv_lanes (a value the host never passes counts as 32). R: the rows of an entry the kernel holds. */
#define GV_RUN(Af, Ab, R)                                                                                   \
    do {                                                                                                    \
        const int lanes = gv_lanes == 64 || gv_lanes == 128 ? gv_lanes : 32, cols = 2 * (GV_WG / lanes);    \
        const int g3 = W3 ? (n3 + cols - 1) / cols : 0, gx = get_group_id(0), third = gx < g3;              \
        armt_gemv(m, third ? n3 : n, k, Af, Ab, lda, third ? W3 : W, third ? C3 : C, third ? ldc3 : ldc,    \
                  third ? 0 : beta, third ? 0 : offs, a_base, a_stride, third ? w3_off : w_base,            \
                  third ? 0 : w_stride, third ? c3_off : c_base, third ? 0 : c_stride, third ? 0 : Gt,      \
                  third ? 0 : Cb, third ? 0 : W2, w2_shift, rope, rope_hd, rope_T, rope_pos0,               \
                  third ? 0 : rowscale, third ? 0 : Cb2, norm_w, norm_off, norm_eps, third ? 0 : C2, lanes, \
                  last_row0, third ? gx : gx - g3, red, sums, R);                                           \
    } while (0)

/* entries of up to GV_ROWS rows */
__kernel __attribute__((reqd_work_group_size(GV_WG, 1, 1))) void armt_gemv_bf16(ARMT_GEMM_PARAMS(float)) {
    GV_LOCALS(GV_ROWS)
    GV_RUN(A, 0, GV_ROWS);
}

__kernel __attribute__((reqd_work_group_size(GV_WG, 1, 1))) void
armt_gemv_bf16bf16(ARMT_GEMM_PARAMS(ushort)) {
    GV_LOCALS(GV_ROWS)
    GV_RUN(0, A, GV_ROWS);
}

/* entries of one row (a document's decode step): a quarter of the partial sums and local memory, the same
 * bits as the kernels above give that row (measured 4.6% more tokens a second on an H100 as a build option,
 * docs/perf/results/2026-12-06-h100-decode-7.md) */
__kernel __attribute__((reqd_work_group_size(GV_WG, 1, 1))) void armt_gemv1_bf16(ARMT_GEMM_PARAMS(float)) {
    GV_LOCALS(1)
    GV_RUN(A, 0, 1);
}

__kernel __attribute__((reqd_work_group_size(GV_WG, 1, 1))) void
armt_gemv1_bf16bf16(ARMT_GEMM_PARAMS(ushort)) {
    GV_LOCALS(1)
    GV_RUN(0, A, 1);
}

/* Generation's W_mq product (one row, one entry, fp32 A) with the read's row scale in the same launch
 * (tune.decode_fuse): each work-group counts itself done on cnt[0] after its columns of mq are stored (C, at
 * c_base); the launch's last one computes phi and the row scale from them (armt_dpfp_read_scale_row, the
 * arithmetic of the launch armt_dpfp_read_scale: the same bits) and puts the counter back to zero. The
 * ordering across work-groups: ARMT_GL_FENCE and volatile loads, as in armt_attention_decode. */
__kernel __attribute__((reqd_work_group_size(GV_WG, 1, 1))) void
armt_gemv1_bf16_dpfp(ARMT_GEMM_PARAMS(float), __global float *phi, __global const float *z,
                     __global const int *written, const int dm, const int dh, const int dkh,
                     const int normalized, const int no_denom, const int l, __global uint *cnt) {
    GV_LOCALS(1)
    __local int last_one;
    GV_RUN(A, 0, 1);
    if (!armt_last_group(cnt, (uint)get_num_groups(0), &last_one)) return;
    armt_dpfp_read_scale_row(C + c_base, phi, z, written, dm, dh, dkh, normalized, no_denom, l, red);
    if (get_local_id(0) == 0) cnt[0] = 0u; /* (every work-group has counted) */
}
