/*
 * elementwise.cl - SwiGLU activation: g = silu(g) * u over n elements; where gb is not NULL (bf16 models on
 * tensor cores) the result is also written rounded to bf16 into gb, the A operand of the down projection.
 */
__kernel void armt_swiglu(__global float *g, __global const float *u, const ulong n, __global ushort *gb) {
    const ulong i = get_global_id(0);
    if (i >= n) return;
    const float a = g[i];
    const float r = a / (1.0f + exp(-a)) * u[i];
    g[i] = r;
    if (gb) gb[i] = armt_to_bf16(r);
}
