/*
 * init.cl - deterministic pseudo-random weights, identical on every device: a counter-based hash
 * (splitmix64) of (seed, stream, index) gives 24 random bits u in [-1, 1); the value is fma(scale, u, shift),
 * computed with a correctly rounded fma so every conforming device produces the same bits.
 */
inline ulong armt_splitmix64(ulong z) {
    z += 0x9E3779B97F4A7C15UL;
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9UL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBUL;
    return z ^ (z >> 31);
}

inline float armt_uniform_value(const ulong seed, const ulong stream, const ulong index, const float scale,
                                const float shift) {
    ulong h = armt_splitmix64(seed ^ armt_splitmix64(stream) ^ armt_splitmix64(index + 0x632BE59BD9B4E019UL));
    float u = (float)(uint)(h >> 40) * (1.0f / 8388608.0f) - 1.0f; /* 24 bits -> [-1, 1) exactly */
    return fma(scale, u, shift);
}

__kernel void armt_fill_uniform(__global float *buf, const ulong off, const ulong n, const ulong seed,
                                const ulong stream, const ulong first_index, const float scale,
                                const float shift) {
    const ulong i = get_global_id(0);
    if (i >= n) return;
    buf[off + i] = armt_uniform_value(seed, stream, first_index + i, scale, shift);
}

/* The same values rounded to bf16 (weights of a bf16 model). */
__kernel void armt_fill_uniform_bf16(__global ushort *buf, const ulong off, const ulong n, const ulong seed,
                                     const ulong stream, const ulong first_index, const float scale,
                                     const float shift) {
    const ulong i = get_global_id(0);
    if (i >= n) return;
    buf[off + i] = armt_to_bf16(armt_uniform_value(seed, stream, first_index + i, scale, shift));
}
