/*
 * elementwise.cl - SwiGLU activation: g = silu(g) * u over n elements.
 */
__kernel void armt_swiglu(__global float *g, __global const float *u, const ulong n) {
    const ulong i = get_global_id(0);
    if (i >= n) return;
    const float a = g[i];
    g[i] = a / (1.0f + exp(-a)) * u[i];
}
