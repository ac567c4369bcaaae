/*
 * rope.cl - rotary position embedding (rotate_half form) of q and k, in place.
 * Row r of every cell has position pos0 + r (pos0 = 0 except when generating one token at a time). The table holds, per position, cos then sin of the hd/2
 * frequencies: tab[r * hd + i] = cos(r f_i), tab[r * hd + hd/2 + i] = sin(r f_i).
 * q: (G*T, nh*hd), k: (G*T, nkv*hd). Global (hd/2, nh + nkv, G*T).
 */
__kernel void armt_rope(__global float *q, __global float *k, __global const float *tab, const int T,
                        const int nh, const int nkv, const int hd, const int pos0) {
    const int i = get_global_id(0), h = get_global_id(1), row = get_global_id(2);
    const int half_hd = hd / 2;
    if (i >= half_hd) return;
    const int pos = pos0 + row % T;
    const float c = tab[(ulong)pos * hd + i], s = tab[(ulong)pos * hd + half_hd + i];
    __global float *p;
    if (h < nh)
        p = q + ((ulong)row * nh + h) * (ulong)hd;
    else
        p = k + ((ulong)row * nkv + (h - nh)) * (ulong)hd;
    const float x1 = p[i], x2 = p[i + half_hd];
    p[i] = x1 * c - x2 * s;
    p[i + half_hd] = x2 * c + x1 * s;
}
