/*
 * embed.cl - the layer-0 input of one segment: token embeddings, then the M memory tokens, then zero
 * padding up to T rows.   x[slot] (T, d) = concat(E[ids[first .. first+Ls)], MEM, 0)
 */
/* Row r, column c of the segment's input: the token's embedding e (rows below Ls), a memory token, or 0. */
inline void armt_embed_store(const int r, const int c, const int Ls, const float e, __global const float *mem,
                             const ulong mem_off, const int M, __global float *x, const ulong x_off,
                             const int d) {
    float v = 0.0f;
    if (r < Ls)
        v = e;
    else if (r < Ls + M)
        v = mem[mem_off + (ulong)(r - Ls) * (ulong)d + (ulong)c];
    x[x_off + (ulong)r * (ulong)d + (ulong)c] = v;
}

__kernel void armt_embed(__global const int *ids, const int first, const int Ls, __global const float *E,
                         const ulong e_off, __global const float *mem, const ulong mem_off, const int M,
                         __global float *x, const ulong x_off, const int d) {
    const int c = get_global_id(0), r = get_global_id(1);
    if (c >= d) return;
    const float e = r < Ls ? E[e_off + (ulong)ids[first + r] * (ulong)d + (ulong)c] : 0.0f;
    armt_embed_store(r, c, Ls, e, mem, mem_off, M, x, x_off, d);
}

/* The same with a bf16 embedding table. */
__kernel void armt_embed_bf16(__global const int *ids, const int first, const int Ls,
                              __global const ushort *E, const ulong e_off, __global const float *mem,
                              const ulong mem_off, const int M, __global float *x, const ulong x_off,
                              const int d) {
    const int c = get_global_id(0), r = get_global_id(1);
    if (c >= d) return;
    const float e = r < Ls ? armt_from_bf16(E[e_off + (ulong)ids[first + r] * (ulong)d + (ulong)c]) : 0.0f;
    armt_embed_store(r, c, Ls, e, mem, mem_off, M, x, x_off, d);
}
