/*
 * embed.cl - the layer-0 input of one segment: token embeddings, then the M memory tokens, then zero
 * padding up to T rows.   x[slot] (T, d) = concat(E[ids[first .. first+Ls)], MEM, 0)
 */
__kernel void armt_embed(__global const int *ids, const int first, const int Ls,
                         __global const float *E, const ulong e_off,
                         __global const float *mem, const ulong mem_off, const int M,
                         __global float *x, const ulong x_off, const int d) {
    const int c = get_global_id(0), r = get_global_id(1);
    if (c >= d) return;
    float v = 0.0f;
    if (r < Ls)
        v = E[e_off + (ulong)ids[first + r] * (ulong)d + (ulong)c];
    else if (r < Ls + M)
        v = mem[mem_off + (ulong)(r - Ls) * (ulong)d + (ulong)c];
    x[x_off + (ulong)r * (ulong)d + (ulong)c] = v;
}

/* The same with a bf16 embedding table. */
__kernel void armt_embed_bf16(__global const int *ids, const int first, const int Ls,
                              __global const ushort *E, const ulong e_off,
                              __global const float *mem, const ulong mem_off, const int M,
                              __global float *x, const ulong x_off, const int d) {
    const int c = get_global_id(0), r = get_global_id(1);
    if (c >= d) return;
    float v = 0.0f;
    if (r < Ls)
        v = armt_from_bf16(E[e_off + (ulong)ids[first + r] * (ulong)d + (ulong)c]);
    else if (r < Ls + M)
        v = mem[mem_off + (ulong)(r - Ls) * (ulong)d + (ulong)c];
    x[x_off + (ulong)r * (ulong)d + (ulong)c] = v;
}
