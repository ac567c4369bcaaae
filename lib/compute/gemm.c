/*
 * gemm.c - the one door to the library's GEMMs (see gemm.h): the plan, the argument setter, the launches.
 *
 * fp32 weights go to the 3xTF32 tensor-core kernels where the runtime has them and the operands' alignment
 * allows (cl/gemm_tf32_wg.cl on Hopper's wgmma for row-major operands, cl/gemm_tf32.cl for the rest);
 * otherwise to CLBlast: one entry to its plain GEMM, equally spaced entries to the strided batched routine,
 * the rest (the residual stream's ring of slots) to the batched routine with per-entry offsets. bf16 weights go to our kernels (cl/gemm_bf16.cl): the tensor-core ones where the device
 * has them and the alignment allows, the portable one otherwise.
 */
#include "config.h"

#include "compute/gemm.h"

#include "device/clblast.h"

#include <clblast_c.h>
#include <stdlib.h>
#include <string.h>

/* ======================================================================================================= */
/* The plan                                                                                                */
/* ======================================================================================================= */

armt_gemm_env armt_gemm_env_of(const armt_ctx *ctx) {
    armt_gemm_env e = {&ctx->rt->tune,
                       ctx->rt->info.compute_units,
                       ctx->k[ARMT_K_GEMM_BF16_MMA] != NULL,
                       ctx->k[ARMT_K_GEMM_BF16BF16_MMA] != NULL,
                       ctx->k[ARMT_K_GEMM_BF16_MMA_NARROW] != NULL,
                       ctx->k[ARMT_K_GEMM_BF16BF16_MMA_NARROW] != NULL,
                       ctx->k[ARMT_K_GEMM_TF32] != NULL,
                       ctx->k[ARMT_K_GEMM_TF32_WG] != NULL};
    return e;
}

/* 1: a launch of wgs work-groups on the main tiles gives at most one to two compute units: the narrow tiles
 * (16x as many work-groups) fill more of the GPU there. */
static int few_workgroups(const armt_gemm_env *env, size_t wgs) {
    return 2 * wgs <= (size_t)env->compute_units;
}

/* The GEMV's lanes per output column pair (cl/gemv_bf16.cl): a function of the weight's shape and the device
 * only, so that one weight gives the same bits in every launch (one document or a batch). 32, doubled (up to
 * 128) while the launch would have fewer work-groups than the device has compute units (times the tuning's
 * gemv_wgs, 1 unless $ARMT_GEMV_WGS says otherwise) and a lane's round of
 * loads (GV_UNROLL = 2 chunks of 8) does not cover k: a narrow weight (W_mq, 64 outputs: 8 work-groups at
 * 32 lanes) then spreads over more of the GPU. More lanes where there are work-groups enough measured slower
 * on an H100 (docs/perf/results/2026-12-06-h100-decode-5.md: 128 lanes everywhere 328 tokens/s, 64 378, 32
 * 375). The tuning may force one value. */
/* output columns of a GEMV work-group (GV_WG = 128 work-items) at lanes per column pair */
static size_t gemv_cols(int lanes) { return (size_t)(2 * 128 / lanes); }

static int gemv_lanes(const armt_gemm_env *env, size_t n, size_t k) {
    if (env->tune->gemv_lanes) return env->tune->gemv_lanes;
    int lanes = 32;
    const size_t target =
        (size_t)env->compute_units * (size_t)(env->tune->gemv_wgs > 0 ? env->tune->gemv_wgs : 1);
    while (lanes < 128 && (n + gemv_cols(lanes) - 1) / gemv_cols(lanes) < target && (size_t)lanes * 16 < k)
        lanes *= 2;
    return lanes;
}

static int all_multiple(const size_t *off, size_t count, size_t q) {
    for (size_t j = 0; j < count; j++)
        if (off[j] % q) return 0;
    return 1;
}

/* The 3xTF32 kernel's 16-byte pieces: row strides and every offset of A and W multiples of 4 floats; sizes
 * within its int arguments. */
static int tf32_fits(const armt_gemm_op *op) {
    const size_t lim = (size_t)INT32_MAX;
    return op->lda % 4 == 0 && op->ldw % 4 == 0 && all_multiple(op->a_off, op->count, 4) &&
           all_multiple(op->w_off, op->count, 4) && op->m <= lim && op->n <= lim && op->k <= lim &&
           op->lda <= lim && op->ldw <= lim && op->ldc <= lim;
}

/* k per stage of the wgmma 3xTF32 kernel (cl/gemm_tf32_wg.cl's TW_BK: one 128-byte row of fp32) */
#define TW_BK 32
/* Least k of a slice that the shape rule cuts (a slice writes its m x n partial sums and the sum reads them
 * back: 8 S bytes an output element against 2 k FLOPs, so short slices turn a launch into traffic). */
#define SPLITK_MIN_K 128

/* Split-k of the 3xTF32 kernels (plan->splitk, issue 21): a function of one entry's shape (split_rows or m,
 * n, k), the kernel (its tiles and k per stage) and the device (its compute units, the tuning's splitk and
 * splitk_rule), never of the number of entries or the rows skipped, so that an entry gives the same bits in
 * every schedule (the diagonal's G cells in one launch, the sequential's one; a short last cell counted as a
 * full one in both: armt_step.split_rows). One work-group a compute unit (the kernels' local memory allows
 * no second). A slice keeps whole k stages and at least SPLITK_MIN_K of k. Forced (2..16): that S where a
 * slice keeps whole k stages; 1: never. Auto (splitk 0), by the tuning's splitk_rule:
 * - 0 (the default): none. The first GPU run (docs/perf/results/2026-12-07-h100-decode-fusions-and-splitk.md)
 *   measured both rules below slower than no split, with a launch per slice; the slices of one entry now go
 *   in one launch, which no GPU has timed yet.
 * - 1, the estimated time of one entry in units of a tile's whole-k time: the rounds its S x tiles
 *   work-groups take on the compute units, each 1/S of a tile, plus the slices' traffic (each slice's m x n
 *   partial sums written and read back, 8 bytes an element at the device's bandwidth, against
 *   6 x 128 x 128 x k FLOPs a tile at a compute unit's 3xTF32 rate; SPLITK_RATE_PER_BW: that rate over the
 *   bandwidth, about an H100's); the S of least time (the smallest among equal ones), kept only where it
 *   saves at least SPLITK_MIN_GAIN of the unsplit time. The diagonal's launches of many cells pay the
 *   traffic without the rounds' gain.
 * - 2: S doubles (up to 16) while S x tiles stays within the compute units (one wave). */
#define SPLITK_RATE_PER_BW 0.4
#define SPLITK_MIN_GAIN    0.15
static int tf32_splitk(const armt_gemm_env *env, const armt_gemm_op *op, const armt_gemm_plan *plan) {
    const size_t kt = plan->kernel == ARMT_K_GEMM_TF32_WG ? TW_BK : (size_t)env->tune->tf_bk;
    const int forced = env->tune->splitk;
    if (forced == 1 || kt == 0 || !plan->tile[0] || !plan->tile[1]) return 1;
    if (forced > 1) return op->k % ((size_t)forced * kt) == 0 ? forced : 1;
    if (env->tune->splitk_rule == 0) return 1;
    const size_t rows = op->split_rows ? op->split_rows : op->m,
                 cu = env->compute_units ? env->compute_units : 1;
    const size_t tiles =
        ((op->n + plan->tile[0] - 1) / plan->tile[0]) * ((rows + plan->tile[1] - 1) / plan->tile[1]);
    int S = 1;
    if (env->tune->splitk_rule == 2) {
        while (S < 16 && tiles * 2 * (size_t)S <= cu && op->k % (2 * (size_t)S * kt) == 0 &&
               op->k / (2 * (size_t)S) >= SPLITK_MIN_K)
            S *= 2;
        return S;
    }
    /* a slice's traffic in tile times: 8 rows n / bandwidth over 6 128 128 k / rate */
    const double tile_flops = 6.0 * (double)plan->tile[0] * (double)plan->tile[1] * (double)op->k;
    const double per_slice = 8.0 * (double)rows * (double)op->n * SPLITK_RATE_PER_BW / tile_flops;
    const double t1 = (double)((tiles + cu - 1) / cu);
    double best = t1;
    for (int s = 2; s <= 16; s *= 2) {
        if (op->k % ((size_t)s * kt) != 0 || op->k / (size_t)s < SPLITK_MIN_K) break;
        const double t = (double)((tiles * (size_t)s + cu - 1) / cu) / s + per_slice * s;
        if (t < best) {
            best = t;
            S = s;
        }
    }
    return best <= (1.0 - SPLITK_MIN_GAIN) * t1 ? S : 1;
}

const char *armt_gemm_plan_make(const armt_gemm_env *env, const armt_gemm_op *op, armt_gemm_plan *plan) {
    const armt_device_tuning *t = env->tune;
    const armt_gemm_epi *e = &op->epi;
    memset(plan, 0, sizeof *plan);
    plan->splitk = 1;
    if (!op->w_bf16) {
        if (e->gate || e->w2 || e->bf16_out || e->rope || e->rowscale || e->norm_w || e->c2 || e->w3 ||
            e->dpfp)
            return "fp32 GEMM: no epilogue";
        if (env->have_tf32_wg && tf32_fits(op) && !op->trans_a && !op->w_kn) {
            plan->kernel = ARMT_K_GEMM_TF32_WG;
            plan->tensor_cores = 1;
            plan->lws[0] = (size_t)(128 * t->tw_wgm);
            plan->lws[1] = 1;
            plan->tile[0] = (size_t)t->tw_n;
            plan->tile[1] = (size_t)(64 * t->tw_wgm);
            plan->splitk = tf32_splitk(env, op, plan);
            return NULL;
        }
        if (env->have_tf32 && tf32_fits(op)) {
            plan->kernel = ARMT_K_GEMM_TF32;
            plan->tensor_cores = 1;
            plan->lws[0] = (size_t)t->tf_threads;
            plan->lws[1] = 1;
            plan->tile[0] = (size_t)t->tf_bn;
            plan->tile[1] = (size_t)t->tf_bm;
            plan->splitk = tf32_splitk(env, op, plan);
            return NULL;
        }
        plan->clblast = 1;
        plan->kernel = ARMT_K_COUNT;
        return NULL;
    }
    if (op->trans_a || op->w_kn) return "bf16 GEMM: transposed operands";
    /* generation's few rows: the GEMV kernel, 16-byte loads of W and A; A in bf16 where it is staged */
    const int ldw_k = op->ldw == 0 || op->ldw == op->k; /* (W's rows k apart: all but the tensor-core tiles
                                                         * need it) */
    if (op->gemv && ldw_k && op->m <= ARMT_GEMV_ROWS && op->k % 8 == 0 &&
        all_multiple(op->w_off, op->count, 8) &&
        (!e->rope || (e->rope_hd > 0 && e->rope_hd % 2 == 0 && op->n % (size_t)e->rope_hd == 0)) &&
        op->n <= (size_t)INT32_MAX && op->k <= (size_t)INT32_MAX) {
        /* (the RMSNorm prologue reads fp32 A, one entry) */
        const int ab = !e->norm_w && op->a_bf16 && op->lda % 8 == 0 && all_multiple(op->a_off, op->count, 8);
        const int af = !op->a_bf16_only && op->lda % 4 == 0 && all_multiple(op->a_off, op->count, 4) &&
                       (!e->norm_w || op->count == 1);
        /* (a third product: one entry, every row, RoPE on whole heads of it too) */
        const int third_ok = !e->w3 || (op->count == 1 && op->skip_last == 0 && e->c3 && e->n3 > 0 &&
                                        e->n3 <= (size_t)INT32_MAX && e->w3_off % 8 == 0 &&
                                        (!e->rope || e->n3 % (size_t)e->rope_hd == 0));
        if ((ab || af) && (!e->c2 || (e->w2 && !e->out)) && third_ok) {
            /* (one row an entry: the kernels of one row, whose partial sums are a quarter) */
            plan->kernel = op->m == 1 ? (ab ? ARMT_K_GEMV1_BF16BF16 : ARMT_K_GEMV1_BF16)
                                      : (ab ? ARMT_K_GEMV_BF16BF16 : ARMT_K_GEMV_BF16);
            if (e->dpfp) { /* (one launch of one row of fp32 A, no other epilogue) */
                if (plan->kernel != ARMT_K_GEMV1_BF16 || op->count != 1 || e->w2 || e->w3 || e->gate ||
                    e->rope || e->rowscale || e->bf16_out || op->beta != 0.0f)
                    return "the GEMV's DPFP tail: one entry of one fp32 row, no other epilogue";
                plan->kernel = ARMT_K_GEMV1_BF16_DPFP;
            }
            plan->a_bf16 = ab;
            plan->gemv = 1;
            plan->gv_lanes = gemv_lanes(env, e->w3 && e->n3 > op->n ? e->n3 : op->n, op->k);
            plan->lws[0] = 128; /* GV_WG */
            plan->lws[1] = 1;
            plan->tile[0] = gemv_cols(plan->gv_lanes); /* output columns per work-group */
            plan->tile[1] = ARMT_GEMV_ROWS;
            return NULL;
        }
    }
    if (e->norm_w || e->c2 || e->w3 || e->dpfp)
        return "bf16 GEMM: the RMSNorm prologue, fp32 k and v, a third product and the DPFP tail are the "
               "GEMV's only";
    /* tensor cores: 16-byte aligned operand chunks (fp32 A: float4 loads; bf16 A and W: 8 elements) */
    const int mma = env->have_mma && op->k % 8 == 0 && op->lda % 4 == 0 && op->ldw % 8 == 0 &&
                    all_multiple(op->a_off, op->count, 4) && all_multiple(op->w_off, op->count, 8);
    if (!mma && !ldw_k) return "bf16 GEMM: a row stride of W other than k needs the tensor-core kernels";
    const int bb =
        mma && op->a_bf16 && env->have_bb && op->lda % 8 == 0 && all_multiple(op->a_off, op->count, 8);
    /* an operand that exists only in bf16, or an epilogue only the tensor-core kernels have */
    if ((op->a_bf16_only && !bb) || ((e->gate || e->bf16_out) && !mma) ||
        ((e->w2 || e->rope || e->rowscale) && !bb))
        return "bf16 GEMM: operand layout not supported by the tensor-core kernels";
    plan->a_bf16 = bb;
    plan->tensor_cores = mma;
    plan->kernel = bb ? ARMT_K_GEMM_BF16BF16_MMA : mma ? ARMT_K_GEMM_BF16_MMA : ARMT_K_GEMM_BF16;
    if (!mma) {
        plan->lws[0] = (size_t)(t->gemm_tn / t->gemm_rn);
        plan->lws[1] = (size_t)(t->gemm_tm / t->gemm_rm);
        plan->tile[0] = (size_t)t->gemm_tn;
        plan->tile[1] = (size_t)t->gemm_tm;
        return NULL;
    }
    /* The narrow tiles: for narrow outputs (n <= nar_bn: W_mq, W_mk) and for launches that would give the
     * main tiles at most one work-group per two compute units (one cell of few rows: the sequential
     * schedule's k and v, the last layer's cell with its unread rows skipped, generation). Not for the
     * SwiGLU epilogues and the row scales (main tiles only), nor RoPE where a thread's columns do not hold
     * whole heads. */
    const size_t bm = (size_t)t->mma_bm, bn = (size_t)t->mma_bn;
    const size_t main_wgs =
        (op->n + bn - 1) / bn * (op->count * ((op->m + bm - 1) / bm) - op->skip_last / bm);
    const int nar_span = t->mma_wgmma ? t->nar_bn : t->nar_bn / (t->nar_warps_n ? t->nar_warps_n : 1);
    const int have_narrow = bb ? env->have_bb_narrow : env->have_mma_narrow;
    const int narrow =
        have_narrow && !e->gate && !e->w2 && !e->rowscale &&
        (op->n <= (size_t)t->nar_bn
             ? !e->rope && !e->bf16_out
             : few_workgroups(env, main_wgs) &&
                   (!e->rope || (nar_span > 0 && e->rope_hd > 0 && nar_span % e->rope_hd == 0)));
    if (narrow) plan->kernel = bb ? ARMT_K_GEMM_BF16BF16_MMA_NARROW : ARMT_K_GEMM_BF16_MMA_NARROW;
    plan->narrow = narrow;
    plan->lws[0] = (size_t)(narrow ? t->nar_threads : t->mma_threads);
    plan->lws[1] = 1;
    plan->tile[0] = narrow ? (size_t)t->nar_bn : e->w2 ? bn / 2 : bn;
    plan->tile[1] = (size_t)(narrow ? t->nar_bm : t->mma_bm);
    return NULL;
}

/* ======================================================================================================= */
/* CLBlast (fp32 weights)                                                                                  */
/* ======================================================================================================= */

/* Equal steps between consecutive entries (stride >= 0)? */
static int uniform(const size_t *off, size_t count, size_t *stride) {
    *stride = count > 1 && off[1] >= off[0] ? off[1] - off[0] : 0;
    for (size_t j = 1; j < count; j++)
        if (off[j] < off[j - 1] || off[j] - off[j - 1] != *stride) return 0;
    return 1;
}

static armt_status gemm_clblast(armt_ctx *ctx, const armt_gemm_op *op, armt_err *err) {
    const size_t m = op->m, n = op->n, k = op->k, count = op->count;
    if (count == 0 || m == 0 || n == 0) return ARMT_OK;
    if (op->skip_last > 0 && op->skip_last < m && !op->trans_a) {
        /* the last entry's rows from skip_last on, in a call of its own */
        armt_gemm_op head = *op, tail = *op;
        head.count = count - 1;
        head.skip_last = 0;
        ARMT_TRY(gemm_clblast(ctx, &head, err));
        const size_t ao = op->a_off[count - 1] + op->skip_last * op->lda;
        const size_t co = op->c_off[count - 1] + op->skip_last * op->ldc;
        tail.m = m - op->skip_last;
        tail.count = 1;
        tail.skip_last = 0;
        tail.a_off = &ao;
        tail.w_off = op->w_off + count - 1;
        tail.c_off = &co;
        return gemm_clblast(ctx, &tail, err);
    }
    CLBlastTranspose ta = op->trans_a ? CLBlastTransposeYes : CLBlastTransposeNo;
    CLBlastTranspose tb = op->w_kn ? CLBlastTransposeNo : CLBlastTransposeYes;
    cl_command_queue *q = &ctx->queue;
    cl_event ev = NULL, *evp = ctx->prof_on ? &ev : NULL;
    size_t sa, sb, sc;
    CLBlastStatusCode s;
    const char *what;
    float *ab = NULL;
    if (count > 1 && !(uniform(op->a_off, count, &sa) && uniform(op->w_off, count, &sb) &&
                       uniform(op->c_off, count, &sc))) {
        ab = malloc(2 * count * sizeof *ab); /* the batched routine's alphas, then its betas */
        if (!ab) return armt_err_set(err, ARMT_STATUS_OUT_OF_HOST_MEMORY, "GEMM: out of host memory");
        for (size_t j = 0; j < count; j++) {
            ab[j] = 1.0f;
            ab[count + j] = op->beta;
        }
    }
    armt_clblast_lock(); /* (device/clblast.h: CLBlast 1.5 is not thread-safe) */
    if (count == 1) {
        what = "CLBlastSgemm";
        s = CLBlastSgemm(CLBlastLayoutRowMajor, ta, tb, m, n, k, 1.0f, op->a, op->a_off[0], op->lda, op->w,
                         op->w_off[0], op->ldw, op->beta, op->c, op->c_off[0], op->ldc, q, evp);
    } else if (!ab) {
        what = "CLBlastSgemmStridedBatched";
        s = CLBlastSgemmStridedBatched(CLBlastLayoutRowMajor, ta, tb, m, n, k, 1.0f, op->a, op->a_off[0],
                                       op->lda, sa, op->w, op->w_off[0], op->ldw, sb, op->beta, op->c,
                                       op->c_off[0], op->ldc, sc, count, q, evp);
    } else {
        what = "CLBlastSgemmBatched";
        s = CLBlastSgemmBatched(CLBlastLayoutRowMajor, ta, tb, m, n, k, ab, op->a, op->a_off, op->lda, op->w,
                                op->w_off, op->ldw, ab + count, op->c, op->c_off, op->ldc, count, q, evp);
    }
    armt_clblast_unlock();
    free(ab);
    if (s != CLBlastSuccess) return armt_err_clblast(err, what, s);
    armt_ctx_prof_add_gemm(ctx, ARMT_PROF_CLBLAST, ev, op->site,
                           2.0 * (double)m * (double)n * (double)k * (double)count);
    ctx->stats.gemm_calls++;
    return ARMT_OK;
}

/* ======================================================================================================= */
/* Our kernels (bf16 weights; fp32 weights on tensor cores)                                                */
/* ======================================================================================================= */

/* The DPFP tail's arguments, after the GEMM list (cl/gemv_bf16.cl armt_gemv1_bf16_dpfp) */
static cl_int gemv_dpfp_args(cl_kernel k, const armt_gemv_dpfp *t) {
    cl_uint i = armt_gemm_args_end();
    cl_int e = clSetKernelArg(k, i++, sizeof(cl_mem), &t->phi);
    if (e == CL_SUCCESS) e = clSetKernelArg(k, i++, sizeof(cl_mem), &t->z);
    if (e == CL_SUCCESS) e = clSetKernelArg(k, i++, sizeof(cl_mem), &t->written);
    const int iv[6] = {t->dm, t->dh, t->dkh, t->normalized, t->no_denom, t->l};
    for (int v = 0; v < 6 && e == CL_SUCCESS; v++)
        e = clSetKernelArg(k, i++, sizeof(int), &iv[v]);
    if (e == CL_SUCCESS) e = clSetKernelArg(k, i++, sizeof(cl_mem), &t->cnt);
    return e;
}

/* The end of the longest run of entries from j (below lim) whose offsets in each of the n arrays offs[i] step
 * by a constant, step[i] (0 for a run of one); a step may be negative: the offsets are ulong and wrap, which
 * is what the residual stream's ring of slots needs. */
static size_t const_run(const size_t *const *offs, int n, size_t j, size_t lim, cl_ulong *step) {
    for (int i = 0; i < n; i++)
        step[i] = j + 1 < lim ? (cl_ulong)offs[i][j + 1] - (cl_ulong)offs[i][j] : 0;
    size_t end = j + 1 < lim ? j + 2 : j + 1;
    for (; end < lim; end++) {
        int same = 1;
        for (int i = 0; i < n && same; i++)
            same = (cl_ulong)offs[i][end] - (cl_ulong)offs[i][end - 1] == step[i];
        if (!same) break;
    }
    return end;
}

/* The kernels address entry j at base + j * stride: entries are cut into runs with constant steps
 * (const_run), one launch per run. */
static armt_status gemm_kernels(armt_ctx *ctx, const armt_gemm_op *op, const armt_gemm_plan *plan,
                                armt_err *err) {
    const armt_gemm_epi *e = &op->epi;
    cl_kernel kk = ctx->k[plan->kernel];
    armt_gemm_args a = {
        .m = (int)op->m,
        .n = (int)op->n,
        .k = (int)op->k,
        .lda = (int)op->lda,
        .ldc = (int)op->ldc,
        .beta = op->beta != 0.0f,
        .a = plan->a_bf16 ? op->a_bf16 : op->a,
        .w = op->w,
        .c = op->c,
        .ldw = (int)op->ldw,
        .trans_a = op->trans_a,
        .w_kn = op->w_kn,
    };
    if (plan->tensor_cores || plan->gemv) {
        a.gate = e->gate;
        a.out = e->gate || e->w2 || e->bf16_out ? e->out : NULL;
    }
    if (plan->a_bf16 || plan->gemv) {
        a.w2 = e->w2;
        a.rope = e->rope;
        a.rope_hd = e->rope_hd;
        a.rope_t = e->rope_T;
        a.rope_pos0 = e->rope_pos0;
        a.rowscale = e->rowscale;
        a.out2 = e->out2;
    }
    if (plan->gemv) {
        a.norm_w = e->norm_w;
        a.norm_off = e->norm_off;
        a.norm_eps = e->norm_eps;
        a.c2 = e->c2;
        a.gv_lanes = plan->gv_lanes;
        a.w3 = e->w3;
        a.w3_off = e->w3_off;
        a.n3 = (int)e->n3;
        a.c3 = e->c3;
        a.c3_off = e->c3_off;
        a.ldc3 = (int)e->ldc3;
    }
    const size_t *const offs[3] = {op->a_off, op->w_off, op->c_off};
    size_t j = 0;
    while (j < op->count) {
        cl_ulong step[3];
        const size_t end = const_run(offs, 3, j, op->count, step);
        a.a_base = offs[0][j];
        a.a_stride = step[0];
        a.w_base = offs[1][j];
        a.w_stride = step[1];
        a.c_base = offs[2][j];
        a.c_stride = step[2];
        /* the launch that holds the last entry skips its unneeded rows (their FLOPs are not counted) */
        a.last_row0 = end == op->count && op->skip_last < op->m ? (int)op->skip_last : 0;
        ARMT_CL_TRY(armt_gemm_set_args(kk, &a));
        if (e->dpfp) ARMT_CL_TRY(gemv_dpfp_args(kk, e->dpfp));
        const size_t wgs3 = e->w3 ? (e->n3 + plan->tile[0] - 1) / plan->tile[0] : 0; /* (the GEMV's) */
        size_t gws[3] = {((op->n + plan->tile[0] - 1) / plan->tile[0] + wgs3) * plan->lws[0],
                         (op->m + plan->tile[1] - 1) / plan->tile[1] * plan->lws[1], end - j};
        size_t lws[3] = {plan->lws[0], plan->lws[1], 1};
        cl_event ev = NULL;
        armt_status st = armt_enqueue(ctx->queue, kk, 3, gws, lws, &ctx->stats.kernel_launches,
                                      armt_kernel_name(plan->kernel), ctx->prof_on ? &ev : NULL, err);
        const double rows = (double)op->m * (double)(end - j) - (double)a.last_row0;
        armt_ctx_prof_add_gemm(ctx, plan->kernel, ev, op->site,
                               ((e->w2 ? 4.0 : 2.0) * (double)op->n + (e->w3 ? 2.0 * (double)e->n3 : 0.0)) *
                                   rows * (double)op->k);
        if (st != ARMT_OK) return st;
        j = end;
    }
    return ARMT_OK;
}

/* Split-k (plan->splitk = S > 1; the rule is tf32_splitk's): entries in groups whose slices fit
 * SPLITK_GROUP_BYTES (at least one entry). Slice s of a group's entry j multiplies A_j's and W_j's k range
 * s k/S .. (s + 1) k/S - 1 (A's columns, or its rows with trans_a; W's columns, or its rows with w_kn: the
 * same strides at other offsets) into P's block s e + j (e entries in the group, beta 0), one GEMM over the
 * group's entries per slice, so that the last entry's unneeded rows are skipped in every slice; then
 * armt_rows_splitk_sum adds the slices in order into C. An entry's bits depend on its shape and S alone,
 * not on its group. Every launch is booked to the op's site, the FLOPs once (the slices' k add up to k). */
#define SPLITK_GROUP_BYTES ((size_t)256 << 20)

/* The context's split-k scratch of at least `bytes` (a batch's document views share their runner's) */
static armt_status splitk_scratch(armt_ctx *ctx, size_t bytes, cl_mem *out, armt_err *err) {
    armt_ctx *o = ctx->splitk_owner ? ctx->splitk_owner : ctx;
    if (o->splitk_bytes < bytes) {
        armt_buffer_release(o->rt, &o->splitk, o->splitk_bytes);
        o->scratch_bytes -= o->splitk_bytes < o->scratch_bytes ? o->splitk_bytes : o->scratch_bytes;
        o->splitk_bytes = 0;
        ARMT_TRY(armt_buffer_create(o->rt, bytes, &o->splitk, "split-k GEMM slices", err));
        o->splitk_bytes = bytes;
        o->scratch_bytes += bytes;
    }
    *out = o->splitk;
    return ARMT_OK;
}

/* The sum of a group's slices (entries j0 .. j0 + e - 1 of op, P holding them as gemm_split lays them out):
 * one launch per run of C offsets with a constant step. */
static armt_status splitk_sums(armt_ctx *ctx, const armt_gemm_op *op, size_t S, cl_mem P, size_t j0, size_t e,
                               armt_err *err) {
    const size_t plane = op->m * op->n, *co = op->c_off;
    cl_kernel kk = ctx->k[ARMT_K_ROWS_SPLITK_SUM];
    size_t j = j0;
    while (j < j0 + e) {
        cl_ulong sc;
        const size_t end = const_run(&co, 1, j, j0 + e, &sc);
        const int last_row0 = end == op->count && op->skip_last < op->m ? (int)op->skip_last : 0;
        ARMT_CL_TRY(armt_splitk_sum_set_args(kk, P, (cl_ulong)((j - j0) * plane), (cl_ulong)(e * plane),
                                             op->c, co[j], sc, (int)op->ldc, (int)op->n, (int)op->m, (int)S,
                                             op->beta != 0.0f, last_row0));
        size_t gws[3] = {(op->n + 63) / 64 * 64, op->m, end - j}, lws[3] = {64, 1, 1};
        cl_event ev = NULL;
        armt_status st =
            armt_enqueue(ctx->queue, kk, 3, gws, lws, &ctx->stats.kernel_launches,
                         armt_kernel_name(ARMT_K_ROWS_SPLITK_SUM), ctx->prof_on ? &ev : NULL, err);
        armt_ctx_prof_add_gemm(ctx, ARMT_K_ROWS_SPLITK_SUM, ev, op->site, 0.0);
        if (st != ARMT_OK) return st;
        j = end;
    }
    return ARMT_OK;
}

static armt_status gemm_split(armt_ctx *ctx, const armt_gemm_op *op, const armt_gemm_plan *plan,
                              armt_err *err) {
    const size_t S = (size_t)plan->splitk, ks = op->k / S, plane = op->m * op->n;
    const size_t da = op->trans_a ? ks * op->lda : ks, dw = op->w_kn ? ks * op->ldw : ks;
    const size_t group_floats = SPLITK_GROUP_BYTES / (S * sizeof(float));
    size_t per = plane < group_floats ? group_floats / plane : 1; /* entries a group */
    if (per > op->count) per = op->count;
    size_t bytes;
    if (__builtin_mul_overflow(per * S, plane * sizeof(float), &bytes))
        return armt_err_set(err, ARMT_STATUS_OUT_OF_DEVICE_MEMORY,
                            "split-k GEMM slices: %zu slices of %zu x %zu are too large to address", S, op->m,
                            op->n);
    cl_mem P;
    ARMT_TRY(splitk_scratch(ctx, bytes, &P, err));
    const size_t nofs = per > S ? per : S;
    size_t *offs = malloc(3 * nofs * sizeof *offs);
    if (!offs) return armt_err_set(err, ARMT_STATUS_OUT_OF_HOST_MEMORY, "GEMM: out of host memory");
    armt_gemm_op sl = *op; /* (no epilogue: fp32 weights have none) */
    sl.k = ks;
    sl.c = P;
    sl.ldc = op->n;
    sl.beta = 0.0f;
    sl.a_off = offs;
    sl.w_off = offs + nofs;
    sl.c_off = offs + 2 * nofs;
    armt_status st = ARMT_OK;
    for (size_t j0 = 0; j0 < op->count && st == ARMT_OK; j0 += per) {
        const size_t e = op->count - j0 < per ? op->count - j0 : per;
        sl.skip_last = j0 + e == op->count ? op->skip_last : 0;
        if (e == 1 && sl.skip_last == 0) {
            /* one entry (the sequential schedule's cell): its S slices as S entries of constant steps, one
             * launch */
            for (size_t s = 0; s < S; s++) {
                offs[s] = op->a_off[j0] + s * da;
                offs[nofs + s] = op->w_off[j0] + s * dw;
                offs[2 * nofs + s] = s * plane;
            }
            sl.count = S;
            st = gemm_kernels(ctx, &sl, plan, err);
        } else {
            /* slice by slice over the group's entries (each slice's rows skipped as the entry's) */
            sl.count = e;
            for (size_t s = 0; s < S && st == ARMT_OK; s++) {
                for (size_t j = 0; j < e; j++) {
                    offs[j] = op->a_off[j0 + j] + s * da;
                    offs[nofs + j] = op->w_off[j0 + j] + s * dw;
                    offs[2 * nofs + j] = (s * e + j) * plane;
                }
                st = gemm_kernels(ctx, &sl, plan, err);
            }
        }
        if (st == ARMT_OK) st = splitk_sums(ctx, op, S, P, j0, e, err);
    }
    free(offs);
    return st;
}

/* The plan of op on ctx's device (NULL, or why it cannot run) */
static const char *plan_of(const armt_ctx *ctx, const armt_gemm_op *op, armt_gemm_plan *plan) {
    const armt_gemm_env env = armt_gemm_env_of(ctx);
    return armt_gemm_plan_make(&env, op, plan);
}

armt_status armt_gemm(armt_ctx *ctx, const armt_gemm_op *op, armt_err *err) {
    armt_gemm_plan plan;
    const char *why = plan_of(ctx, op, &plan);
    if (why)
        return armt_err_set(err, ARMT_STATUS_UNSUPPORTED, "%s (m %zu, n %zu, k %zu, lda %zu)", why, op->m,
                            op->n, op->k, op->lda);
    if (op->count == 0 || op->m == 0 || op->n == 0) return ARMT_OK;
    if (plan.clblast) return gemm_clblast(ctx, op, err);
    ARMT_TRY(plan.splitk > 1 ? gemm_split(ctx, op, &plan, err) : gemm_kernels(ctx, op, &plan, err));
    ctx->stats.gemm_calls++; /* one batched call, however many launches its runs took (armt_stats) */
    return ARMT_OK;
}

/* ======================================================================================================= */
/* Weight roles and capabilities                                                                           */
/* ======================================================================================================= */

/* op's shape and weight fields for a role (pair: its second weight's site) */
static void role_shape(const armt_ctx *ctx, armt_gemm_op *op, armt_role role, int pair) {
    uint64_t out, in;
    armt_role_shape(&ctx->model->cfg, role, &out, &in, NULL);
    op->n = (size_t)out;
    op->k = (size_t)in;
    op->ldw = (size_t)in;
    op->w_bf16 = ctx->model->w[role].bf16;
    op->w_kn = 0;
    op->site = pair == ARMT_ROLE_WU   ? ARMT_GSITE_GATE_UP
               : op->epi.w3           ? ARMT_GSITE_QKV
               : pair == ARMT_ROLE_WV ? ARMT_GSITE_KV
                                      : (int)role;
}

/* op as one entry over layer l of a role: its shape and weight fields, *w_off the weight's offset */
static void one_layer(const armt_ctx *ctx, armt_gemm_op *op, armt_role role, int pair, int l, size_t *w_off) {
    role_shape(ctx, op, role, pair);
    op->w = armt_weight_at(&ctx->model->w[role], l, w_off);
    op->w_off = w_off;
    op->count = 1;
}

int armt_gemm_weights_gemv(armt_ctx *ctx, armt_gemm_op op, armt_role role, int pair, int l0) {
    size_t w_off, off2;
    one_layer(ctx, &op, role, pair, l0, &w_off);
    if (pair >= 0) {
        op.epi.w2 = armt_weight_at(&ctx->model->w[pair], l0, &off2);
        if (off2 != w_off || ctx->model->w[pair].bf16 != op.w_bf16) return 0;
    }
    armt_gemm_plan plan;
    return plan_of(ctx, &op, &plan) == NULL && plan.gemv;
}

int armt_gemm_weights_rows(armt_ctx *ctx, armt_gemm_op op, armt_role role, int l, size_t *offs,
                           armt_status *st, armt_err *err) {
    const size_t R = ARMT_GEMV_ROWS, m = op.m, nb = m / R, a0 = op.a_off[0], c0 = op.c_off[0];
    size_t w_off, *ao = offs, *wo = offs + nb + 1, *co = offs + 2 * (nb + 1);
    one_layer(ctx, &op, role, -1, l, &w_off);
    op.gemv = 1;
    op.skip_last = 0;
    for (size_t j = 0; j <= nb; j++) {
        ao[j] = a0 + j * R * op.lda;
        wo[j] = w_off;
        co[j] = c0 + j * R * op.ldc;
    }
    op.a_off = ao;
    op.w_off = wo;
    op.c_off = co;
    op.m = m < R ? m : R;
    armt_gemm_plan plan;
    if (plan_of(ctx, &op, &plan) != NULL || !plan.gemv) return 0;
    *st = ARMT_OK;
    if (nb) {
        op.count = nb;
        if ((*st = armt_gemm(ctx, &op, err)) != ARMT_OK) return 1;
    }
    if (m % R) {
        op.m = m % R;
        op.count = 1;
        op.a_off = ao + nb;
        op.w_off = wo + nb;
        op.c_off = co + nb;
        *st = armt_gemm(ctx, &op, err);
    }
    return 1;
}

int armt_gemm_weights_splitk(armt_ctx *ctx, armt_gemm_op op, armt_role role, int l, cl_mem P, size_t p_floats,
                             size_t *offs, armt_status *st, armt_err *err) {
    const armt_gemm_epi *e = &op.epi;
    if (op.skip_last || e->gate || e->w2 || e->out || e->out2 || e->bf16_out || e->rope || e->rowscale ||
        e->norm_w || e->c2 || e->w3)
        return 0;
    size_t w_off;
    one_layer(ctx, &op, role, -1, l, &w_off);
    op.gemv = 0; /* (the tiles: the GEMV has no use for a split) */
    armt_gemm_plan plan;
    if (plan_of(ctx, &op, &plan) != NULL || !plan.tensor_cores) return 0;
    const size_t cus = (size_t)ctx->rt->info.compute_units;
    const size_t wgs = (op.n + plan.tile[0] - 1) / plan.tile[0] * ((op.m + plan.tile[1] - 1) / plan.tile[1]);
    size_t S = (size_t)ctx->rt->tune.splitk;
    if (S == 0) /* doubled while the launch stays within two work-groups a compute unit and a slice keeps
                 * whole k steps of 64 and at least 128 of k */
        for (S = 1; S < 16 && wgs * 2 * S <= 2 * cus && op.k % (2 * S * 64) == 0 && op.k / (2 * S) >= 128;)
            S *= 2;
    if (S <= 1 || op.k % (S * 8) != 0 || S * op.m * op.n > p_floats) return 0;
    const size_t ks = op.k / S, a0 = op.a_off[0];
    size_t *ao = offs, *wo = offs + S, *co = offs + 2 * S;
    for (size_t j = 0; j < S; j++) {
        ao[j] = a0 + j * ks;
        wo[j] = w_off + j * ks;
        co[j] = j * op.m * op.n;
    }
    op.k = ks;
    op.count = S;
    op.a_off = ao;
    op.w_off = wo;
    op.c = P;
    op.c_off = co;
    op.ldc = op.n;
    op.beta = 0.0f;
    *st = armt_gemm(ctx, &op, err);
    return (int)S;
}

armt_status armt_gemm_weights(armt_ctx *ctx, armt_gemm_op op, armt_role role, int pair, int l0, int G,
                              size_t *w_off, armt_err *err) {
    const armt_weight *w = &ctx->model->w[role];
    const size_t skip = op.skip_last, *a_off = op.a_off, *c_off = op.c_off;
    role_shape(ctx, &op, role, pair);
    int j = 0;
    while (j < G) {
        const int chunk = (l0 + j) / w->layers_per_chunk;
        int j_end = j;
        while (j_end < G && (l0 + j_end) / w->layers_per_chunk == chunk) {
            op.w = armt_weight_at(w, l0 + j_end, &w_off[j_end]);
            j_end++;
        }
        if (pair >= 0) { /* the paired weights of the same layers: same chunking, so the same offsets */
            size_t off2;
            op.epi.w2 = armt_weight_at(&ctx->model->w[pair], l0 + j, &off2);
            if (off2 != w_off[j])
                return armt_err_set(err, ARMT_STATUS_UNSUPPORTED, "bf16 GEMM: paired weights laid out apart");
        }
        op.count = (size_t)(j_end - j);
        op.a_off = a_off + j;
        op.w_off = w_off + j;
        op.c_off = c_off + j;
        op.skip_last = j_end == G ? skip : 0;
        ARMT_TRY(armt_gemm(ctx, &op, err));
        j = j_end;
    }
    return ARMT_OK;
}

int armt_gemm_bf16_operands(const armt_ctx *ctx) {
    return ctx->model->precision == ARMT_PRECISION_BF16 && ctx->k[ARMT_K_GEMM_BF16BF16_MMA] != NULL &&
           ctx->abf;
}

/* RoPE in the epilogue: a head size the epilogue has (16, 32, 64, 128) that divides the columns each thread
 * holds (the 256-wide Hopper tiles; a warp's with mma.sync) and a width of whole 8-element chunks. */
int armt_gemm_rope_fits(const armt_ctx *ctx, int hd, int width) {
    const armt_device_tuning *t = &ctx->rt->tune;
    const int span = t->mma_wgmma ? t->mma_bn : t->mma_bn / t->mma_warps_n;
    return armt_gemm_bf16_operands(ctx) && (hd == 16 || hd == 32 || hd == 64 || hd == 128) &&
           span % hd == 0 && width % 8 == 0;
}

/* Two weights in one GEMM: the Hopper tiles (256 wide: 128 columns of each, each thread holding both of an
 * element) and bf16 weights of both roles chunked alike, so that a layer's offsets agree. */
int armt_gemm_pairs(const armt_ctx *ctx, armt_role a, armt_role b) {
    const armt_device_tuning *t = &ctx->rt->tune;
    const armt_weight *wa = &ctx->model->w[a], *wb = &ctx->model->w[b];
    return t->mma_wgmma && t->mma_bn == 256 && ctx->k[ARMT_K_GEMM_BF16BF16_MMA] && wa->bf16 && wb->bf16 &&
           wa->layers_per_chunk == wb->layers_per_chunk;
}

/* k and v in one GEMM, unless the launch has few work-groups: the narrow tiles then serve k and v better,
 * one GEMM each. */
int armt_gemm_kv_pair_pays(const armt_ctx *ctx, size_t kvd, size_t G, size_t T) {
    const armt_device_tuning *t = &ctx->rt->tune;
    const armt_gemm_env env = armt_gemm_env_of(ctx);
    const size_t half = (size_t)t->mma_bn / 2, bm = (size_t)(t->mma_bm > 0 ? t->mma_bm : 1);
    const size_t wgs = (kvd + half - 1) / half * G * ((T + bm - 1) / bm);
    return armt_gemm_pairs(ctx, ARMT_ROLE_WK, ARMT_ROLE_WV) && !few_workgroups(&env, wgs);
}
