/*
 * common.cl - the first file of every program (lib/device/programs.c). Shared macros and helpers.
 *
 * Cell geometry of one schedule step (see lib/compute/forward.c): the step runs G cells; cell j (0..G-1) is
 * layer l0 + j on segment s0 - j. The residual stream of segment s lives in slot s % cap of the x
 * buffer (cap = cells the scratch holds), so a segment keeps its slot while it climbs the layers.
 * Every cell has T rows, except segment s_short, which has T_short valid rows (a partial last segment,
 * padded to T; padded rows are zeros at layer 0 and never feed a valid row).
 */
#ifndef ARMT_ROW_WG
#define ARMT_ROW_WG 64 /* work-group size of the row-wise kernels (a power of two) */
#endif

/* A fence that orders this work-item's global writes before its later global writes and atomics as other
 * work-groups see them (a launch's last work-group reading what the others wrote: the decode attention's
 * combine, the W_mq GEMV's row scale). membar.gl on NVIDIA; OpenCL 1.2 promises such an order nowhere, so
 * the host takes those fused forms on NVIDIA only (lib/device/tune.c, decode_fuse), the tests everywhere. */
#if ARMT_NV_MMA && !ARMT_MMA_EMULATE
#define ARMT_GL_FENCE() __asm__ __volatile__("membar.gl;" ::: "memory")
#else
#define ARMT_GL_FENCE() mem_fence(CLK_GLOBAL_MEM_FENCE)
#endif

/* A launch's last work-group to finish, counted on *cnt (n work-groups count there): called by every item of
 * every counting work-group after its global writes; 1 in the last one, which may then read the others'
 * writes (through volatile loads: past any stale L1 line) and puts *cnt back to zero when done; 0 in the
 * others. flag: a __local int of the kernel's. */
inline int armt_last_group(volatile __global uint *cnt, const uint n, __local int *flag) {
    ARMT_GL_FENCE(); /* this work-item's writes before the count */
    barrier(CLK_LOCAL_MEM_FENCE | CLK_GLOBAL_MEM_FENCE);
    if (get_local_id(0) == 0) *flag = atomic_inc(cnt) == n - 1;
    barrier(CLK_LOCAL_MEM_FENCE);
    if (!*flag) return 0;
    ARMT_GL_FENCE(); /* the count before the others' writes */
    return 1;
}

#define CELL_ARGS const int l0, const int s0, const int cap, const int T, const int s_short, const int T_short

#define CELL_LAYER(j) (l0 + (j))
#define CELL_SLOT(j)  ((s0 - (j)) % cap)
#define CELL_ROWS(j)  ((s0 - (j)) == s_short ? T_short : T)

/* Sum of v over the work-group (size ARMT_ROW_WG); every work-item gets the total. */
inline float armt_wg_sum(float v, __local float *scratch) {
    const int lid = get_local_id(0);
    scratch[lid] = v;
    barrier(CLK_LOCAL_MEM_FENCE);
    for (int s = ARMT_ROW_WG / 2; s > 0; s >>= 1) {
        if (lid < s) scratch[lid] += scratch[lid + s];
        barrier(CLK_LOCAL_MEM_FENCE);
    }
    float total = scratch[0];
    barrier(CLK_LOCAL_MEM_FENCE);
    return total;
}

/* virtual lane `lane`'s share of x^2 (armt_row_inv_rms below) */
inline float armt_row_lane_ss(__global const float *xr, const int d, const int lane) {
    const int vec = d % 4 == 0 && d <= 16 * ARMT_ROW_WG, n4 = d / 4;
    float ss = 0.0f;
    if (vec) {
        for (int u = 0; u < 4; u++) {
            const int c4 = lane + u * ARMT_ROW_WG;
            float4 v = (float4)(0.0f);
            if (c4 < n4) v = vload4(c4, xr);
            ss += dot(v, v);
        }
    } else {
        for (int c = lane; c < d; c += ARMT_ROW_WG)
            ss += xr[c] * xr[c];
    }
    return ss;
}

/* armt_wg_sum's tree over ARMT_ROW_WG virtual lanes whose values are in scratch[0 .. ARMT_ROW_WG), for a
 * work-group of any size (each item walks lanes lid, lid + size, ...): the same sum, bit for bit. Every item
 * calls it (after writing its lanes); every item gets the total. */
inline float armt_lanes_sum(__local float *scratch) {
    const int lid = get_local_id(0), wg = get_local_size(0);
    barrier(CLK_LOCAL_MEM_FENCE);
    for (int s = ARMT_ROW_WG / 2; s > 0; s >>= 1) {
        for (int ln = lid; ln < s; ln += wg)
            scratch[ln] += scratch[ln + s];
        barrier(CLK_LOCAL_MEM_FENCE);
    }
    const float total = scratch[0];
    barrier(CLK_LOCAL_MEM_FENCE);
    return total;
}

/* 1 / rms of a row of d floats as armt_rmsnorm (norm.cl) computes it, for a work-group of any size (the GEMV
 * of cl/gemv_bf16.cl): each of ARMT_ROW_WG virtual lanes sums its share of x^2 in armt_rmsnorm's order (float4
 * pieces lane + u ARMT_ROW_WG where it keeps the row in registers, else every ARMT_ROW_WG-th element), then
 * armt_wg_sum's tree. scratch: ARMT_ROW_WG floats. Every work-item of the group must call it. */
inline float armt_row_inv_rms(__global const float *xr, const int d, const float eps,
                              __local float *scratch) {
    const int lid = get_local_id(0), wg = get_local_size(0);
    barrier(CLK_LOCAL_MEM_FENCE); /* (scratch may still be read by the caller's last use) */
    for (int lane = lid; lane < ARMT_ROW_WG; lane += wg)
        scratch[lane] = armt_row_lane_ss(xr, d, lane);
    return 1.0f / sqrt(armt_lanes_sum(scratch) / (float)d + eps);
}

/* Rows nobody reads: lib/compute/step.c passes last_row0 > 0 to the GEMMs and the attention of the
 * model's last
 * layer when no output reads its token rows. 1 when this work-group belongs to the launch's last cell (the
 * one on the last layer: group dimension 2) and its rows first_row .. first_row + rows - 1 all lie below
 * last_row0; such a work-group returns at once (before any barrier), so the tile that holds row last_row0
 * is computed whole. */
inline int armt_rows_unneeded(const int last_row0, const int first_row, const int rows) {
    return last_row0 > 0 && get_group_id(2) == get_num_groups(2) - 1 && first_row + rows <= last_row0;
}
/* 1 when row `row` of the launch's last cell lies below last_row0. Its results are not needed, and its
 * inputs may never have been written: the GEMMs before skip those rows (CLBlast exactly, our kernels by
 * whole tiles), so a kernel that computes a tile holding such rows must not read their inputs. */
inline int armt_row_unneeded(const int last_row0, const int row) {
    return last_row0 > 0 && get_group_id(2) == get_num_groups(2) - 1 && row < last_row0;
}

/* bf16 storage (the upper 16 bits of an IEEE float), rounded to nearest even; finite inputs. */
inline ushort armt_to_bf16(float x) {
    const uint u = as_uint(x);
    return (ushort)((u + 0x7fffu + ((u >> 16) & 1u)) >> 16);
}
inline float armt_from_bf16(ushort h) { return as_float((uint)h << 16); }
/* two floats as a bf16 pair (each rounded as above), lo in the low half */
inline uint armt_bf16x2(float lo, float hi) {
    return (uint)armt_to_bf16(lo) | ((uint)armt_to_bf16(hi) << 16);
}
