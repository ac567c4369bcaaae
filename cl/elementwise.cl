/*
 * elementwise.cl - SwiGLU activation: g = silu(g) * u over n elements, except [skip0, skip1): rows nobody
 * needs, which the gate and up projections did not compute (the last cell's rows below its last_row0).
 */
__kernel void armt_swiglu(__global float *g, __global const float *u, const ulong n, const ulong skip0,
                          const ulong skip1) {
    const ulong i = get_global_id(0);
    if (i >= n || (i >= skip0 && i < skip1)) return;
    const float a = g[i];
    g[i] = a / (1.0f + exp(-a)) * u[i];
}
