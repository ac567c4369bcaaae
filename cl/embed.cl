/*
 * embed.cl - the layer-0 input of one segment: the sink row (use_sink), the token embeddings, then the M
 * memory tokens, then zero padding up to T rows.
 *   x[slot] (T, d) = concat(SINK (ns rows, 0 or 1), E[ids[first .. first+Ls)], MEM, 0)
 */
/* Row r, column c of the segment's input: the sink, the token's embedding e (rows ns .. ns + Ls - 1), a
 * memory token, or 0. */
inline void armt_embed_store(const int r, const int c, const int ns, const int Ls, const float e,
                             __global const float *mem, const ulong mem_off, const int M,
                             __global const float *sink, const ulong sink_off, __global float *x,
                             const ulong x_off, const int d) {
    float v = 0.0f;
    if (r < ns)
        v = sink[sink_off + (ulong)c];
    else if (r < ns + Ls)
        v = e;
    else if (r < ns + Ls + M)
        v = mem[mem_off + (ulong)(r - ns - Ls) * (ulong)d + (ulong)c];
    x[x_off + (ulong)r * (ulong)d + (ulong)c] = v;
}

__kernel void armt_embed(__global const int *ids, const int first, const int Ls, __global const float *E,
                         const ulong e_off, __global const float *mem, const ulong mem_off, const int M,
                         __global float *x, const ulong x_off, const int d, __global const float *sink,
                         const ulong sink_off, const int ns) {
    const int c = get_global_id(0), r = get_global_id(1);
    if (c >= d) return;
    const int t = r - ns; /* token index in the segment */
    const float e = t >= 0 && t < Ls ? E[e_off + (ulong)ids[first + t] * (ulong)d + (ulong)c] : 0.0f;
    armt_embed_store(r, c, ns, Ls, e, mem, mem_off, M, sink, sink_off, x, x_off, d);
}

/* The same with a bf16 embedding table. */
__kernel void armt_embed_bf16(__global const int *ids, const int first, const int Ls,
                              __global const ushort *E, const ulong e_off, __global const float *mem,
                              const ulong mem_off, const int M, __global float *x, const ulong x_off,
                              const int d, __global const float *sink, const ulong sink_off, const int ns) {
    const int c = get_global_id(0), r = get_global_id(1);
    if (c >= d) return;
    const int t = r - ns;
    const float e =
        t >= 0 && t < Ls ? armt_from_bf16(E[e_off + (ulong)ids[first + t] * (ulong)d + (ulong)c]) : 0.0f;
    armt_embed_store(r, c, ns, Ls, e, mem, mem_off, M, sink, sink_off, x, x_off, d);
}
