/*
 * rope.cl - rotary position embedding (rotate_half form) of q and k, in place.
 * Row r of every cell has position pos0 + r % T (pos0 = 0 except when generating one token at a time). The
 * table holds, per position, cos then sin of the hd/2 frequencies: tab[p * hd + i] = cos(p f_i),
 * tab[p * hd + hd/2 + i] = sin(p f_i).
 * q: (G*T, nh*hd), k: (G*T, nkv*hd). One work-item per (row, head, i < hd/2), i fastest, flattened to one
 * dimension so that any work-group size fills the GPU: global >= rows * (nh + nkv) * hd/2.
 * last_row0 > 0: the q rows of the last cell below it are not needed and the q projection did not compute
 * them: they are left alone (its k rows are all needed).
 */
__kernel void armt_rope(__global float *q, __global float *k, __global const float *tab, const int T,
                        const int nh, const int nkv, const int hd, const int pos0, const ulong total,
                        const int last_row0) {
    const ulong gid = get_global_id(0);
    if (gid >= total) return;
    const int half_hd = hd / 2, heads = nh + nkv;
    const int i = (int)(gid % (ulong)half_hd);
    const ulong rh = gid / (ulong)half_hd;
    const int h = (int)(rh % (ulong)heads);
    const ulong row = rh / (ulong)heads;
    const ulong last_cell0 = (total / ((ulong)heads * half_hd) / T - 1) * T; /* first row of the last cell */
    if (h < nh && row >= last_cell0 && row < last_cell0 + last_row0) return;
    const int pos = pos0 + (int)(row % (ulong)T);
    const float c = tab[(ulong)pos * hd + i], s = tab[(ulong)pos * hd + half_hd + i];
    __global float *p;
    if (h < nh)
        p = q + (row * nh + h) * (ulong)hd;
    else
        p = k + (row * nkv + (h - nh)) * (ulong)hd;
    const float x1 = p[i], x2 = p[i + half_hd];
    p[i] = x1 * c - x2 * s;
    p[i + half_hd] = x2 * c + x1 * s;
}
