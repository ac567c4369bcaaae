/*
 * attention_mma.cl - the attention of attention.cl on tensor cores, for bf16 models. The host builds it
 * after mma.cl and attention.cl where the tuning chose tensor-core attention (lib/device/tune.c): mma.sync
 * through
 * inline PTX on NVIDIA, or mma.cl's OpenCL C stand-ins (ARMT_MMA_EMULATE) in tests.
 *
 * Flash-attention style: each warp owns AM_RT x 16 query rows of one head; the work-group (AM_WARPS warps)
 * shares key/value tiles of AM_BK rows, staged through local memory as bf16. Per tile and warp:
 *   S = Q K^T (16 x AM_BK, mma m16n8k16, fp32 accumulators), causal mask, online softmax in base 2 (Q was
 *   scaled by scale * log2 e), then O += P V with P taken straight from S's accumulators (the accumulator
 *   layout of two n8 tiles is the A-fragment layout of one k16 step) and rounded to bf16.
 * Operands are rounded to bf16 when staged (Q in registers, K and V in local memory); every sum is fp32.
 * Local layouts (32-bit words; the paddings make every fragment read and tile store free of bank conflicts):
 *   ks[key][AM_KSW]: K rows as bf16 pairs (hd 2c, 2c+1) - the B fragment of Q K^T is one word per register;
 *   vp[key pair][AM_VSW]: (V[2p][c], V[2p+1][c]) packed - the B fragment of P V is one word per register.
 * Global (nblocks * 32 * AM_WARPS, nh, G) with blocks of 16 AM_RT AM_WARPS rows, local (32 * AM_WARPS);
 * work-group x takes query block nblocks - 1 - x (the longest blocks start first). The blocks are aligned
 * to the cell's end, so the partial block is the first (the cheapest: causal rows see few keys). A row's
 * result does not depend on its block: key tiles are aligned to AM_BK in key positions, and a tile masked
 * for a row adds exact zeros to its sums. The host guarantees
 * kv_off % 4 == 0 (float4 loads).
 * AM_TF32=1 (fp32 models, where fp32 GEMMs run on tensor cores at fp32 accuracy): the same kernel on fp32
 * operands with 3xTF32 products (mma.cl's TF32_SPLIT; gemm_tf32.cl): Q in registers as TF32 high and low
 * parts, K and V tiles staged as fp32 (ksf[key][AM_KSF], vsf[key][AM_VSF]) and split as their fragments are
 * read, per k8 step lo hi, hi lo and hi hi (AM_SPLIT below: where each goes). The k order of an mma is
 * the kernel's choice when A and B agree: lane t's k of a k8 step are 2 t and 2 t + 1, so that Q's and K's
 * fragments are 8-byte loads and P's A fragment is S's accumulators as they are (s0, s2, s1, s3), with V's
 * rows 2 t and 2 t + 1 as its B fragment. Only armt_attention_mma exists in this build (fp32 K and V).
 * outb, when not NULL, receives the output rounded to bf16 (same element offsets, two per 32-bit word)
 * instead of out: it is the o projection's operand, which the GEMM would otherwise round in a pass of its
 * own. WIN_ARGS: the sliding window, as in attention.cl (each row's first key, the window's rows below its
 * cached ones staged as zeros).
 */
#ifndef AM_WARPS
#define AM_WARPS 4 /* warps per work-group */
#endif
#ifndef AM_RT
#define AM_RT 1 /* m16 row tiles per warp: each K/V fragment read from local memory serves AM_RT mma */
#endif
#ifndef AM_BK
#define AM_BK 64 /* keys per tile (a multiple of 16) */
#endif
#ifndef AM_TF32
#define AM_TF32 0
#endif
#ifndef TF32_PRODUCTS
#define TF32_PRODUCTS 3 /* AM_TF32: 1 = hi hi alone, a plain TF32 attention (tests) */
#endif
#ifndef AM_SPLIT
/* AM_TF32: 1 = each k8 step's hi hi product into four registers zeroed for it and added to S or O by fp32
 * adds (round to nearest), the small products (lo hi, hi lo) into accumulators of their own (S: per n8 tile,
 * O: beside O, rescaled with it), added at the tile's or the kernel's end: the tensor cores then accumulate
 * eight terms at a time and O's sum over all the keys is fp32's, as in gemm_tf32.cl's TF_SPLIT. 0: every
 * product straight into S and O (the small ones first): the tensor cores' own accumulation then runs over
 * every key of the row. */
#define AM_SPLIT 1
#endif
/* AM_TF32: one k8 step's three products of a (high ah, low al) and b (bh, bl) into acc, the small ones into
 * sm with AM_SPLIT (unused without) */
#if AM_SPLIT
#define AM_TF32_STEP(acc, sm, ah, al, bh, bl)    \
    do {                                         \
        if (TF32_PRODUCTS == 3) {                \
            MMA_TF32(sm, al, bh);                \
            MMA_TF32(sm, ah, bl);                \
        }                                        \
        float mn_[4] = {0.0f, 0.0f, 0.0f, 0.0f}; \
        MMA_TF32(mn_, ah, bh);                   \
        for (int e_ = 0; e_ < 4; e_++)           \
            (acc)[e_] += mn_[e_];                \
    } while (0)
#else
#define AM_TF32_STEP(acc, sm, ah, al, bh, bl) \
    do {                                      \
        if (TF32_PRODUCTS == 3) {             \
            MMA_TF32(acc, al, bh);            \
            MMA_TF32(acc, ah, bl);            \
        }                                     \
        MMA_TF32(acc, ah, bh);                \
    } while (0)
#endif
/* AM_TF32's fragment loops: unrolled on the GPU (registers); rolled under the stand-ins, whose unrolled
 * 3xTF32 loops take PoCL minutes to compile (the bf16 build's are unrolled everywhere) */
#if ARMT_MMA_EMULATE && AM_TF32
#define AM_TF_UNROLL _Pragma("unroll 1")
#else
#define AM_TF_UNROLL _Pragma("unroll")
#endif
#define AM_THREADS (32 * AM_WARPS)
#define AM_WR      (16 * AM_RT)       /* query rows per warp */
#define AM_BQ      (AM_WR * AM_WARPS) /* query rows per work-group */
#define AM_KSW     (ATTN_HD / 2 + 4)  /* words per K row (= 4 mod 8) */
#define AM_VSW     (ATTN_HD + 8)      /* words per V key-pair row (= 8 or 24 mod 32) */
#define AM_HK      (ATTN_HD / 16)     /* k16 steps of Q K^T */
#define AM_HN      (ATTN_HD / 8)      /* n8 tiles of O */
#define AM_SN      (AM_BK / 8)        /* n8 tiles of S */
#define AM_KSF     (ATTN_HD + 8)      /* AM_TF32: floats per K row (= 8 mod 32: conflict-free 8-byte reads) */
#define AM_VSF     (ATTN_HD + 4)      /* AM_TF32: floats per V row (= 4 mod 32) */
#define AM_HK8     (ATTN_HD / 8)      /* AM_TF32: k8 steps of Q K^T */
#if ATTN_HD % 16
#error "armt_attention_mma needs a head dimension that is a multiple of 16"
#endif
#if AM_BK % 16
#error "AM_BK must be a multiple of 16"
#endif
/* bf16 K and V (armt_attention_mma_kvbf16) go global -> local by cp.async into two buffers, the next tile's
 * copies in flight while the warps multiply the current one (one barrier per tile), and the warps read
 * their fragments with ldmatrix: K's as they are, V's transposed (.trans), so V needs no repacking.
 * Buffer b holds K rows at b * 2 AM_TILEB + key * AM_ROWB + 16 chunk, V rows AM_TILEB further; a row is
 * padded by 16 bytes, so the 8 rows one ldmatrix phase reads (same chunk) fall in 8 different 16-byte bank
 * groups (ATTN_HD / 8 + 1 is odd). Heads whose four tiles would not fit 40 KiB (head dim 128 with 64-key
 * tiles) stage through registers like the fp32 path. */
#define AM_ROWB     (ATTN_HD * 2 + 16)
#define AM_TILEB    (AM_BK * AM_ROWB)
#define AM_ASYNC_ON (4 * AM_TILEB <= 40960)
#if ARMT_MMA_EMULATE /* the shared-window address travels with smem where the PTX needs it */
#define AM_SB_PARAM
#define AM_SB
#else
#define AM_SB_PARAM , const uint sbase
#define AM_SB       , sbase
#endif

/* cp.async of the bf16 K and V rows kb .. kb + AM_BK - 1 into the buffer at byte offset buf (zeros for
 * keys past last or below kfirst, read from nowhere), committed as one group. */
inline __attribute__((always_inline)) void
armt_attention_kv_issue(__global const ushort *kbase16, __global const ushort *vbase16, const ulong kstride,
                        const int kb, const int last, const int kfirst, const uint buf,
                        __local uint *smem AM_SB_PARAM) {
    for (int e = get_local_id(0); e < AM_BK * (ATTN_HD / 8); e += AM_THREADS) {
        const int kr = e / (ATTN_HD / 8), c8 = e % (ATTN_HD / 8), in = kb + kr <= last && kb + kr >= kfirst;
        const uint off = buf + (uint)kr * AM_ROWB + 16u * (uint)c8;
        const ulong g = (ulong)(in ? kb + kr : 0) * kstride + 8 * (ulong)c8;
        MMA_CP16(off, kbase16 + g, in ? 16 : 0);
        MMA_CP16(off + AM_TILEB, vbase16 + g, in ? 16 : 0);
    }
    MMA_CP_COMMIT();
}

/* The kernel body; kvb (a constant at each entry): K and V are fp32 (0) or bf16 (1: ushort at the same
 * element offsets, as the k and v projections' bf16 epilogue writes them; kv_off % 8 == 0). Both give the
 * same bits: the fp32 path rounds K and V to bf16 exactly the way that epilogue does. */
inline __attribute__((always_inline)) void
armt_attention_mma_body(__global const float *q, __global const float *k, __global const float *v,
                        __global float *out, const int T, const int nh, const int nkv, const float scale,
                        const ulong kv_off, const int Tk, const int q0, __global uint *outb,
                        const int last_row0, const int mem_all, const int j_short, const int T_short,
                        WIN_ARGS, const int kvb, __local uint *ks, __local uint *vp
#if ARMT_MMA_EMULATE
                        ,
                        __local uint *xch
#endif
) {
    const int tid = get_local_id(0), lane = tid & 31, warp = tid >> 5, g = lane >> 2, t = lane & 3;
    const int qb = get_num_groups(0) - 1 - get_group_id(0), h = get_group_id(1), j = get_group_id(2);
    /* the blocks end at row T - 1: the partial one (T % AM_BQ rows) is the first, rows b0 < 0 lie before
     * the cell and count as past it (a sink row, T = 1153, is a block of its own that sees one key, where a
     * block of one memory row at the end would see them all) */
    const int b0 = qb * AM_BQ - ((int)get_num_groups(0) * AM_BQ - T), bs = max(b0, 0);
    if (armt_rows_unneeded(last_row0, b0, AM_BQ)) return;
    const int kvh = h / (nh / nkv);
    const ulong qstride = (ulong)nh * ATTN_HD, kstride = (ulong)nkv * ATTN_HD;
    const ulong kv0 = kv_off + (ulong)j * Tk * kstride + (ulong)kvh * ATTN_HD;
    __global const float *kbase = k + kv0, *vbase = v + kv0;
    __global const ushort *kbase16 = (__global const ushort *)k + kv0,
                          *vbase16 = (__global const ushort *)v + kv0;
    const int async = AM_ASYNC_ON && kvb; /* (a constant at each entry) */
    __local uint *smem = ks;              /* the async path's two buffers (the entry passes them as ks) */
#if !ARMT_MMA_EMULATE
    const uint sbase = async ? armt_mma_smem_base(smem) : 0u;
#endif
    const int w0 = b0 + warp * AM_WR; /* this warp's first row; row tile rt: w0 + 16 rt .. + 15 */
    const int wlive = w0 + AM_WR > 0; /* some of its rows lie in the cell (w0 < T: every warp's do) */

    /* Q fragments (A of Q K^T), scaled for exp2; this lane's rows of tile rt: w0 + 16 rt + g and + 8 */
    const float qscale = scale * 1.4426950408889634f;
#if AM_TF32
    uint qh[AM_RT][AM_HK8][4], ql[AM_RT][AM_HK8][4]; /* high and low parts */
#else
    uint qa[AM_RT][AM_HK][4];
#endif
    AM_TF_UNROLL
    for (int rt = 0; rt < AM_RT; rt++) {
        const int r0 = w0 + 16 * rt + g;
        __global const float *qr0 = q + ((ulong)j * T + r0) * qstride + (ulong)h * ATTN_HD + 2 * t;
        __global const float *qr1 = qr0 + 8 * qstride;
        /* rows past T, and rows below last_row0 (not computed by the q projection), read as zeros */
        const int v0 = r0 >= 0 && r0 < T && !armt_row_unneeded(last_row0, r0),
                  v1 = r0 + 8 >= 0 && r0 + 8 < T && !armt_row_unneeded(last_row0, r0 + 8);
#if AM_TF32
        /* this lane's k of step kk are 8 kk + 2 t and + 1: a0 (row g), a1 (g + 8) at the first, a2, a3 at the
         * second */
        AM_TF_UNROLL
        for (int kk = 0; kk < AM_HK8; kk++) {
            const float2 a = v0 ? *(__global const float2 *)(qr0 + 8 * kk) : (float2)(0.0f, 0.0f);
            const float2 b = v1 ? *(__global const float2 *)(qr1 + 8 * kk) : (float2)(0.0f, 0.0f);
            TF32_SPLIT(a.x * qscale, qh[rt][kk][0], ql[rt][kk][0]);
            TF32_SPLIT(b.x * qscale, qh[rt][kk][1], ql[rt][kk][1]);
            TF32_SPLIT(a.y * qscale, qh[rt][kk][2], ql[rt][kk][2]);
            TF32_SPLIT(b.y * qscale, qh[rt][kk][3], ql[rt][kk][3]);
        }
#else
#pragma unroll
        for (int kk = 0; kk < AM_HK; kk++) {
            float2 a = v0 ? *(__global const float2 *)(qr0 + 16 * kk) : (float2)(0.0f, 0.0f);
            float2 b = v1 ? *(__global const float2 *)(qr1 + 16 * kk) : (float2)(0.0f, 0.0f);
            float2 c = v0 ? *(__global const float2 *)(qr0 + 16 * kk + 8) : (float2)(0.0f, 0.0f);
            float2 d = v1 ? *(__global const float2 *)(qr1 + 16 * kk + 8) : (float2)(0.0f, 0.0f);
            qa[rt][kk][0] = armt_mma_bf16x2(a.x * qscale, a.y * qscale);
            qa[rt][kk][1] = armt_mma_bf16x2(b.x * qscale, b.y * qscale);
            qa[rt][kk][2] = armt_mma_bf16x2(c.x * qscale, c.y * qscale);
            qa[rt][kk][3] = armt_mma_bf16x2(d.x * qscale, d.y * qscale);
        }
#endif
    }
    float o[AM_RT][AM_HN][4];
#if AM_TF32 && AM_SPLIT
    float osm[AM_RT][AM_HN][4]; /* the small products of P V, rescaled with O and added to it at the end */
#endif
    float m0[AM_RT], m1[AM_RT], l0[AM_RT], l1[AM_RT];
#pragma unroll
    for (int rt = 0; rt < AM_RT; rt++) {
#pragma unroll
        for (int n = 0; n < AM_HN; n++) {
            o[rt][n][0] = o[rt][n][1] = o[rt][n][2] = o[rt][n][3] = 0.0f;
#if AM_TF32 && AM_SPLIT
            osm[rt][n][0] = osm[rt][n][1] = osm[rt][n][2] = osm[rt][n][3] = 0.0f;
#endif
        }
        m0[rt] = m1[rt] = -INFINITY;
        l0[rt] = l1[rt] = 0.0f;
    }

    /* the last key any row of this block sees; keys past it are staged as zeros (see armt_attention) */
    const int last =
        min(Tk - 1, armt_attention_limit(min(T - 1, b0 + AM_BQ - 1), j, T, q0, mem_all, j_short, T_short));
    /* the last key this warp's rows see (none for a warp wholly before the cell) */
    const int wlast = wlive ? armt_attention_limit(w0 + AM_WR - 1, j, T, q0, mem_all, j_short, T_short) : -1;
    /* the window's rows below its cached ones are staged as zeros too (kfirst), and each lane's two rows of
     * every row tile see keys from lo on (0 without a window) */
    const int kfirst = win > 0 ? win - armt_attn_cached(j, win, win_first, j_first) : 0;
    /* tiles below the block's first visible key are masked for all its rows (armt_attn_block_lo): the
     * block starts at the tile that holds it; a warp skips the tiles below its own rows' first key */
    const int kb0 = max(kfirst, armt_attn_block_lo(bs, min(T, b0 + AM_BQ) - 1, q0, j, T, j_short, T_short,
                                                   win, win_first, j_first, ns, nmem)) /
                    AM_BK * AM_BK;
    const int wlo = wlive && w0 < T ? armt_attn_block_lo(max(w0, 0), min(T - 1, w0 + AM_WR - 1), q0, j, T,
                                                         j_short, T_short, win, win_first, j_first, ns, nmem)
                                    : 0;
    int lo[AM_RT][2];
#pragma unroll
    for (int rt = 0; rt < AM_RT; rt++) {
        const int r0 = w0 + 16 * rt + g;
        lo[rt][0] = armt_attn_lo(q0 + r0, j, T, j_short, T_short, win, win_first, j_first, ns, nmem);
        lo[rt][1] = armt_attn_lo(q0 + r0 + 8, j, T, j_short, T_short, win, win_first, j_first, ns, nmem);
    }
    if (async) armt_attention_kv_issue(kbase16, vbase16, kstride, kb0, last, kfirst, 0, smem AM_SB);
    for (int kb = kb0, it = 0; kb <= last; kb += AM_BK, it++) {
        const uint kbuf = (uint)(it & 1) * (2u * AM_TILEB), vbuf = kbuf + AM_TILEB; /* (async) */
        if (async) {
            MMA_CP_WAIT(0);
            barrier(CLK_LOCAL_MEM_FENCE); /* tile it has landed; every warp is done with tile it - 1 */
            if (kb + AM_BK <= last) /* the next tile into the other buffer, during this one's multiplies */
                armt_attention_kv_issue(kbase16, vbase16, kstride, kb + AM_BK, last, kfirst,
                                        kbuf ^ (2u * AM_TILEB), smem AM_SB);
        } else {
            barrier(CLK_LOCAL_MEM_FENCE); /* the previous tile is read */
            if (kvb) {
                /* bf16 rows: K as they are (16-byte chunks), V's rows 2p and 2p + 1 interleaved into pairs */
                for (int e = tid; e < AM_BK * ATTN_HD / 8; e += AM_THREADS) {
                    const int kr = e / (ATTN_HD / 8), c8 = e % (ATTN_HD / 8);
                    *(__local uint4 *)(ks + kr * AM_KSW + 4 * c8) =
                        kb + kr <= last && kb + kr >= kfirst
                            ? *(__global const uint4 *)(kbase16 + (ulong)(kb + kr) * kstride + 8 * c8)
                            : (uint4)(0u);
                }
                for (int e = tid; e < AM_BK / 2 * ATTN_HD / 8; e += AM_THREADS) {
                    const int kp = e / (ATTN_HD / 8), c8 = e % (ATTN_HD / 8), kr = kb + 2 * kp;
                    const uint4 x = kr <= last && kr >= kfirst
                                        ? *(__global const uint4 *)(vbase16 + (ulong)kr * kstride + 8 * c8)
                                        : (uint4)(0u);
                    const uint4 y =
                        kr + 1 <= last && kr + 1 >= kfirst
                            ? *(__global const uint4 *)(vbase16 + (ulong)(kr + 1) * kstride + 8 * c8)
                            : (uint4)(0u);
                    __local uint4 *d = (__local uint4 *)(vp + kp * AM_VSW + 8 * c8);
                    d[0] = (uint4)((x.x & 0xffffu) | (y.x << 16), (x.x >> 16) | (y.x & 0xffff0000u),
                                   (x.y & 0xffffu) | (y.y << 16), (x.y >> 16) | (y.y & 0xffff0000u));
                    d[1] = (uint4)((x.z & 0xffffu) | (y.z << 16), (x.z >> 16) | (y.z & 0xffff0000u),
                                   (x.w & 0xffffu) | (y.w << 16), (x.w >> 16) | (y.w & 0xffff0000u));
                }
            } else if (AM_TF32) {
                /* fp32 rows as they are */
                __local float *ksf = (__local float *)ks, *vsf = (__local float *)vp;
                for (int e = tid; e < AM_BK * ATTN_HD / 4; e += AM_THREADS) {
                    const int kr = e / (ATTN_HD / 4), c4 = e % (ATTN_HD / 4);
                    const int in = kb + kr <= last && kb + kr >= kfirst;
                    const ulong gi = (ulong)(kb + kr) * kstride + 4 * c4;
                    *(__local float4 *)(ksf + kr * AM_KSF + 4 * c4) =
                        in ? *(__global const float4 *)(kbase + gi) : (float4)(0.0f);
                    *(__local float4 *)(vsf + kr * AM_VSF + 4 * c4) =
                        in ? *(__global const float4 *)(vbase + gi) : (float4)(0.0f);
                }
            } else {
                for (int e = tid; e < AM_BK * ATTN_HD / 4; e += AM_THREADS) {
                    const int kr = e / (ATTN_HD / 4), c4 = e % (ATTN_HD / 4);
                    float4 x = kb + kr <= last && kb + kr >= kfirst
                                   ? *(__global const float4 *)(kbase + (ulong)(kb + kr) * kstride + 4 * c4)
                                   : (float4)(0.0f);
                    *(__local uint2 *)(ks + kr * AM_KSW + 2 * c4) =
                        (uint2)(armt_mma_bf16x2(x.x, x.y), armt_mma_bf16x2(x.z, x.w));
                }
                for (int e = tid; e < AM_BK / 2 * ATTN_HD / 4; e += AM_THREADS) {
                    const int kp = e / (ATTN_HD / 4), c4 = e % (ATTN_HD / 4), kr = kb + 2 * kp;
                    float4 x = kr <= last && kr >= kfirst
                                   ? *(__global const float4 *)(vbase + (ulong)kr * kstride + 4 * c4)
                                   : (float4)(0.0f);
                    float4 y = kr + 1 <= last && kr + 1 >= kfirst
                                   ? *(__global const float4 *)(vbase + (ulong)(kr + 1) * kstride + 4 * c4)
                                   : (float4)(0.0f);
                    *(__local uint4 *)(vp + kp * AM_VSW + 4 * c4) =
                        (uint4)(armt_mma_bf16x2(x.x, y.x), armt_mma_bf16x2(x.y, y.y),
                                armt_mma_bf16x2(x.z, y.z), armt_mma_bf16x2(x.w, y.w));
                }
            }
            barrier(CLK_LOCAL_MEM_FENCE);
        }
#if !ARMT_MMA_EMULATE
        if (kb > wlast) continue;        /* every key of the tile is in this warp's future (warp-uniform) */
        if (kb + AM_BK <= wlo) continue; /* or below its rows' window (warp-uniform) */
#endif
        /* S = Q K^T: each K fragment read once for the warp's AM_RT row tiles */
        float s[AM_RT][AM_SN][4];
#if AM_TF32
        {
            __local const float *ksf = (__local const float *)ks;
            AM_TF_UNROLL
            for (int n = 0; n < AM_SN; n++) {
#if AM_SPLIT
                float sm[AM_RT][4]; /* the small products of this n8 tile */
#endif
                AM_TF_UNROLL
                for (int rt = 0; rt < AM_RT; rt++) {
                    s[rt][n][0] = s[rt][n][1] = s[rt][n][2] = s[rt][n][3] = 0.0f;
#if AM_SPLIT
                    sm[rt][0] = sm[rt][1] = sm[rt][2] = sm[rt][3] = 0.0f;
#endif
                }
                AM_TF_UNROLL
                for (int kk = 0; kk < AM_HK8; kk++) {
                    const float2 x = *(__local const float2 *)(ksf + (8 * n + g) * AM_KSF + 8 * kk + 2 * t);
                    uint bh[2], bl[2];
                    TF32_SPLIT(x.x, bh[0], bl[0]);
                    TF32_SPLIT(x.y, bh[1], bl[1]);
                    AM_TF_UNROLL
                    for (int rt = 0; rt < AM_RT; rt++)
                        AM_TF32_STEP(s[rt][n], sm[rt], qh[rt][kk], ql[rt][kk], bh, bl);
                }
#if AM_SPLIT
                AM_TF_UNROLL
                for (int rt = 0; rt < AM_RT; rt++) {
                    AM_TF_UNROLL
                    for (int e = 0; e < 4; e++)
                        s[rt][n][e] += sm[rt][e];
                }
#endif
            }
        }
#else
        if (async) {
            /* ldmatrix.x4 over key groups n, n + 1 and chunks 2 kk, 2 kk + 1: b of (n, kk), then of (n + 1,
             * kk) */
            const int mi = lane >> 3;
#pragma unroll
            for (int n = 0; n < AM_SN; n += 2) {
#pragma unroll
                for (int rt = 0; rt < AM_RT; rt++)
                    s[rt][n][0] = s[rt][n][1] = s[rt][n][2] = s[rt][n][3] = s[rt][n + 1][0] =
                        s[rt][n + 1][1] = s[rt][n + 1][2] = s[rt][n + 1][3] = 0.0f;
                const uint row =
                    kbuf + (uint)(8 * (n + (mi >> 1)) + (lane & 7)) * AM_ROWB + 16u * (uint)(mi & 1);
#pragma unroll
                for (int kk = 0; kk < AM_HK; kk++) {
                    uint b0[2], b1[2];
                    MMA_LDSM_X4(b0[0], b0[1], b1[0], b1[1], row + 32u * (uint)kk);
#pragma unroll
                    for (int rt = 0; rt < AM_RT; rt++) {
                        MMA_MMA(s[rt][n], qa[rt][kk], b0);
                        MMA_MMA(s[rt][n + 1], qa[rt][kk], b1);
                    }
                }
            }
        } else
#pragma unroll
            for (int n = 0; n < AM_SN; n++) {
#pragma unroll
                for (int rt = 0; rt < AM_RT; rt++)
                    s[rt][n][0] = s[rt][n][1] = s[rt][n][2] = s[rt][n][3] = 0.0f;
#pragma unroll
                for (int kk = 0; kk < AM_HK; kk++) {
                    uint b[2];
                    b[0] = ks[(8 * n + g) * AM_KSW + 8 * kk + t];
                    b[1] = ks[(8 * n + g) * AM_KSW + 8 * kk + 4 + t];
#pragma unroll
                    for (int rt = 0; rt < AM_RT; rt++)
                        MMA_MMA(s[rt][n], qa[rt][kk], b);
                }
            }
#endif
#pragma unroll
        for (int rt = 0; rt < AM_RT; rt++) {
            /* the last keys this lane's two rows see (>= their positions) */
            const int p0 = armt_attention_limit(w0 + 16 * rt + g, j, T, q0, mem_all, j_short, T_short),
                      p1 = armt_attention_limit(w0 + 16 * rt + g + 8, j, T, q0, mem_all, j_short, T_short);
            /* causal mask (and keys past the last), where the tile reaches past the row tile's first row;
             * the window's first keys, where the tile starts inside the window */
            if (kb + AM_BK - 1 > q0 + w0 + 16 * rt || kb + AM_BK - 1 > last || kb < win) {
                const int a0 = lo[rt][0], a1 = lo[rt][1];
#pragma unroll
                for (int n = 0; n < AM_SN; n++) {
                    const int key = kb + 8 * n + 2 * t;
                    if (key > p0 || key > last || key < a0) s[rt][n][0] = -INFINITY;
                    if (key + 1 > p0 || key + 1 > last || key + 1 < a0) s[rt][n][1] = -INFINITY;
                    if (key > p1 || key > last || key < a1) s[rt][n][2] = -INFINITY;
                    if (key + 1 > p1 || key + 1 > last || key + 1 < a1) s[rt][n][3] = -INFINITY;
                }
            }
            /* online softmax: row maxima over the quad of lanes that shares a row */
            float x0 = -INFINITY, x1 = -INFINITY;
#pragma unroll
            for (int n = 0; n < AM_SN; n++) {
                x0 = fmax(x0, fmax(s[rt][n][0], s[rt][n][1]));
                x1 = fmax(x1, fmax(s[rt][n][2], s[rt][n][3]));
            }
            {
                float y0 = x0, y1 = x1;
                MMA_SHFL_XOR(y0, 1);
                MMA_SHFL_XOR(y1, 1);
                x0 = fmax(x0, y0);
                x1 = fmax(x1, y1);
                y0 = x0;
                y1 = x1;
                MMA_SHFL_XOR(y0, 2);
                MMA_SHFL_XOR(y1, 2);
                x0 = fmax(fmax(x0, y0), m0[rt]);
                x1 = fmax(fmax(x1, y1), m1[rt]);
            }
            /* x0 and x1 now hold max(m, this tile's row maximum) on all four lanes */
            const float b0 = x0 == -INFINITY ? 0.0f : x0, b1 = x1 == -INFINITY ? 0.0f : x1;
            const float c0 = native_exp2(m0[rt] - b0), c1 = native_exp2(m1[rt] - b1);
            m0[rt] = x0;
            m1[rt] = x1;
            l0[rt] *= c0;
            l1[rt] *= c1;
#pragma unroll
            for (int n = 0; n < AM_HN; n++) {
                o[rt][n][0] *= c0;
                o[rt][n][1] *= c0;
                o[rt][n][2] *= c1;
                o[rt][n][3] *= c1;
#if AM_TF32 && AM_SPLIT
                osm[rt][n][0] *= c0;
                osm[rt][n][1] *= c0;
                osm[rt][n][2] *= c1;
                osm[rt][n][3] *= c1;
#endif
            }
#pragma unroll
            for (int n = 0; n < AM_SN; n++) {
                s[rt][n][0] = native_exp2(s[rt][n][0] - b0);
                s[rt][n][1] = native_exp2(s[rt][n][1] - b0);
                s[rt][n][2] = native_exp2(s[rt][n][2] - b1);
                s[rt][n][3] = native_exp2(s[rt][n][3] - b1);
                l0[rt] += s[rt][n][0] + s[rt][n][1];
                l1[rt] += s[rt][n][2] + s[rt][n][3];
            }
        }
        /* O += P V: each V fragment read once for the AM_RT row tiles */
#if AM_TF32
        {
            __local const float *vsf = (__local const float *)vp;
            AM_TF_UNROLL
            for (int kk = 0; kk < AM_SN; kk++) { /* k8 step kk: S's n8 tile kk */
                uint ph[AM_RT][4], pl[AM_RT][4];
                AM_TF_UNROLL
                for (int rt = 0; rt < AM_RT; rt++) {
                    TF32_SPLIT(s[rt][kk][0], ph[rt][0], pl[rt][0]);
                    TF32_SPLIT(s[rt][kk][2], ph[rt][1], pl[rt][1]);
                    TF32_SPLIT(s[rt][kk][1], ph[rt][2], pl[rt][2]);
                    TF32_SPLIT(s[rt][kk][3], ph[rt][3], pl[rt][3]);
                }
                AM_TF_UNROLL
                for (int n = 0; n < AM_HN; n++) {
                    uint bh[2], bl[2];
                    TF32_SPLIT(vsf[(8 * kk + 2 * t) * AM_VSF + 8 * n + g], bh[0], bl[0]);
                    TF32_SPLIT(vsf[(8 * kk + 2 * t + 1) * AM_VSF + 8 * n + g], bh[1], bl[1]);
                    AM_TF_UNROLL
                    for (int rt = 0; rt < AM_RT; rt++)
                        AM_TF32_STEP(o[rt][n], osm[rt][n], ph[rt], pl[rt], bh, bl);
                }
            }
        }
#else
#pragma unroll
        for (int kk = 0; kk < AM_BK / 16; kk++) {
            uint a[AM_RT][4];
#pragma unroll
            for (int rt = 0; rt < AM_RT; rt++) {
                a[rt][0] = armt_mma_bf16x2(s[rt][2 * kk][0], s[rt][2 * kk][1]);
                a[rt][1] = armt_mma_bf16x2(s[rt][2 * kk][2], s[rt][2 * kk][3]);
                a[rt][2] = armt_mma_bf16x2(s[rt][2 * kk + 1][0], s[rt][2 * kk + 1][1]);
                a[rt][3] = armt_mma_bf16x2(s[rt][2 * kk + 1][2], s[rt][2 * kk + 1][3]);
            }
            if (async) {
                /* ldmatrix.x4.trans over keys 16 kk .. + 7, + 8 .. + 15 and chunks n, n + 1 of V's rows */
                const int mi = lane >> 3;
                const uint row =
                    vbuf + (uint)(16 * kk + 8 * (mi & 1) + (lane & 7)) * AM_ROWB + 16u * (uint)(mi >> 1);
#pragma unroll
                for (int n = 0; n < AM_HN; n += 2) {
                    uint b0[2], b1[2];
                    MMA_LDSM_X4_T(b0[0], b0[1], b1[0], b1[1], row + 16u * (uint)n);
#pragma unroll
                    for (int rt = 0; rt < AM_RT; rt++) {
                        MMA_MMA(o[rt][n], a[rt], b0);
                        MMA_MMA(o[rt][n + 1], a[rt], b1);
                    }
                }
                continue;
            }
#pragma unroll
            for (int n = 0; n < AM_HN; n++) {
                uint b[2];
                b[0] = vp[(8 * kk + t) * AM_VSW + 8 * n + g];
                b[1] = vp[(8 * kk + 4 + t) * AM_VSW + 8 * n + g];
#pragma unroll
                for (int rt = 0; rt < AM_RT; rt++)
                    MMA_MMA(o[rt][n], a[rt], b);
            }
        }
#endif
    }
#if AM_TF32 && AM_SPLIT
#pragma unroll
    for (int rt = 0; rt < AM_RT; rt++) {
#pragma unroll
        for (int n = 0; n < AM_HN; n++) {
#pragma unroll
            for (int e = 0; e < 4; e++)
                o[rt][n][e] += osm[rt][n][e];
        }
    }
#endif
#pragma unroll
    for (int rt = 0; rt < AM_RT; rt++) {
        /* row sums over the quad, then O / l */
        float y0 = l0[rt], y1 = l1[rt];
        MMA_SHFL_XOR(y0, 1);
        MMA_SHFL_XOR(y1, 1);
        float s0 = l0[rt] + y0, s1 = l1[rt] + y1;
        y0 = s0;
        y1 = s1;
        MMA_SHFL_XOR(y0, 2);
        MMA_SHFL_XOR(y1, 2);
        s0 += y0;
        s1 += y1;
        const float i0 = 1.0f / s0, i1 = 1.0f / s1;
        const int r0 = w0 + 16 * rt + g;
        const ulong e0 = ((ulong)j * T + r0) * qstride + (ulong)h * ATTN_HD + 2 * t; /* element of (r0, 2t) */
        if (outb) { /* bf16 output (the o projection's operand): pairs of elements as one word */
#pragma unroll
            for (int n = 0; n < AM_HN; n++) {
                if (r0 >= 0 && r0 < T)
                    outb[(e0 + 8 * n) / 2] = armt_bf16x2(o[rt][n][0] * i0, o[rt][n][1] * i0);
                if (r0 + 8 >= 0 && r0 + 8 < T)
                    outb[(e0 + 8 * qstride + 8 * n) / 2] = armt_bf16x2(o[rt][n][2] * i1, o[rt][n][3] * i1);
            }
        } else {
#pragma unroll
            for (int n = 0; n < AM_HN; n++) {
                if (r0 >= 0 && r0 < T)
                    *(__global float2 *)(out + e0 + 8 * n) = (float2)(o[rt][n][0] * i0, o[rt][n][1] * i0);
                if (r0 + 8 >= 0 && r0 + 8 < T)
                    *(__global float2 *)(out + e0 + 8 * qstride + 8 * n) =
                        (float2)(o[rt][n][2] * i1, o[rt][n][3] * i1);
            }
        }
    }
}

/* declared as uint4 for their 16-byte alignment (the tile stores are 8- and 16-byte vectors) */
#if AM_TF32
#define AM_KS_WORDS (AM_BK * AM_KSF)
#define AM_VP_WORDS (AM_BK * AM_VSF)
#else
#define AM_KS_WORDS (AM_BK * AM_KSW)
#define AM_VP_WORDS (AM_BK / 2 * AM_VSW)
#endif
#if ARMT_MMA_EMULATE
#define AM_LOCALS                       \
    __local uint4 ks4[AM_KS_WORDS / 4]; \
    __local uint4 vp4[AM_VP_WORDS / 4]; \
    __local uint xch[AM_THREADS * 6];
#define AM_XCH , xch
#else
#define AM_LOCALS                       \
    __local uint4 ks4[AM_KS_WORDS / 4]; \
    __local uint4 vp4[AM_VP_WORDS / 4];
#define AM_XCH
#endif

__kernel __attribute__((reqd_work_group_size(AM_THREADS, 1, 1))) void
armt_attention_mma(__global const float *q, __global const float *k, __global const float *v,
                   __global float *out, const int T, const int nh, const int nkv, const float scale,
                   const ulong kv_off, const int Tk, const int q0, __global uint *outb, const int last_row0,
                   const int mem_all, const int j_short, const int T_short, WIN_ARGS) {
    AM_LOCALS
    armt_attention_mma_body(q, k, v, out, T, nh, nkv, scale, kv_off, Tk, q0, outb, last_row0, mem_all,
                            j_short, T_short, win, win_first, j_first, ns, nmem, 0, (__local uint *)ks4,
                            (__local uint *)vp4 AM_XCH);
}

#if !AM_TF32
/* The same with K and V in bf16 (ushort, at the element offsets of the fp32 layout; kv_off % 8 == 0): half
 * the bytes to load and nothing to round. */
__kernel __attribute__((reqd_work_group_size(AM_THREADS, 1, 1))) void
armt_attention_mma_kvbf16(__global const float *q, __global const ushort *k, __global const ushort *v,
                          __global float *out, const int T, const int nh, const int nkv, const float scale,
                          const ulong kv_off, const int Tk, const int q0, __global uint *outb,
                          const int last_row0, const int mem_all, const int j_short, const int T_short,
                          WIN_ARGS) {
#if AM_ASYNC_ON
    __local uint4 kv4[4 * AM_TILEB / 16]; /* two buffers of a K and a V tile */
#if ARMT_MMA_EMULATE
    __local uint xch[AM_THREADS * 6];
#endif
    armt_attention_mma_body(q, (__global const float *)k, (__global const float *)v, out, T, nh, nkv, scale,
                            kv_off, Tk, q0, outb, last_row0, mem_all, j_short, T_short, win, win_first,
                            j_first, ns, nmem, 1, (__local uint *)kv4, (__local uint *)kv4 AM_XCH);
#else
    AM_LOCALS
    armt_attention_mma_body(q, (__global const float *)k, (__global const float *)v, out, T, nh, nkv, scale,
                            kv_off, Tk, q0, outb, last_row0, mem_all, j_short, T_short, win, win_first,
                            j_first, ns, nmem, 1, (__local uint *)ks4, (__local uint *)vp4 AM_XCH);
#endif
}
#endif
