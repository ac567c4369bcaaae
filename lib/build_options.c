/*
 * build_options.c - the one place where device features and quirks become kernel build options and
 * tunables. Kernels never test vendors; they see -D feature macros decided here.
 */
#include "config.h"

#include "internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* An integer option "-DNAME=V" in the extra options, when there and within [lo, hi]: stored into *dst. */
static void extra_int(const char *extra, const char *name, int lo, int hi, int *dst) {
    const char *p = extra ? strstr(extra, name) : NULL;
    if (!p) return;
    int v = atoi(p + strlen(name));
    if (v >= lo && v <= hi) *dst = v;
}

/* The emulation's tiles (tests): the same code paths as the library's tiles (wgmma or mma.sync, k per stage,
 * stages, wgmma depth, raster, the 256 columns of the dual epilogues) on fewer fragments per warp, since
 * PoCL's compile time grows steeply with them (128 x 128 x 32: minutes per kernel). Every fragment loop
 * still runs twice or more somewhere: mma.sync 64 x 32 (two m16 tiles by two n8 tiles per warp) and narrow
 * 32 x 32; wgmma 64 x 256 on one warpgroup of 2 x 2 warps (the narrow tiles stay 64 x 64 x 64). */
static void emulation_tiles(armt_device_tuning *t) {
    if (t->mma_wgmma) {
        t->mma_bm = 64;
        t->mma_warps_n = 2;
    } else {
        t->mma_bm = 64;
        t->mma_bn = 32;
        t->nar_bm = 32;
        t->nar_bn = 32;
    }
    t->mma_threads = 32 * 2 * t->mma_warps_n;
}

char *armt_cl_build_options(const armt_device_info *info, armt_device_tuning *tune, const char *extra) {
    /* Tunables: a small table by device class, overridable per build with -D in ARMT_CL_BUILD_OPTIONS
     * (the kernels use #ifndef defaults, and the last -D wins). */
    tune->row_wg = 64;
    tune->attn_bq = 32;
    tune->attn_bk = 32;
    if (info->is_gpu) {
        /* measured on an H200 (bench/results/2026-11-28-h200-attention-tiles.txt): 128 x 16 beat 64 x 32,
         * 64 x 64 and 32 x 32 by 15-35% in attention time */
        tune->row_wg = 256;
        tune->attn_bq = 128;
        tune->attn_bk = 16;
    }
    /* bf16 GEMM: the portable tile everywhere; tensor cores on NVIDIA from compute capability 8.0 (mma.sync
     * m16n8k16 bf16 through inline PTX), where local memory must hold two 128 x 32 bf16 stages per operand */
    tune->gemm_tm = 64;
    tune->gemm_tn = 64;
    tune->gemm_rm = 4;
    tune->gemm_rn = 4;
    const int real_mma = info->nv_compute_capability >= 80 && info->local_mem_bytes >= 48 * 1024;
    /* -DARMT_MMA_EMULATE=1 in the extra options (tests): every tensor-core kernel runs anywhere, with OpenCL C
     * stand-ins for the PTX (slow: tiny models only) */
    const int emulate = !real_mma && extra && strstr(extra, "-DARMT_MMA_EMULATE=1");
    tune->nv_mma = real_mma || emulate;
    /* Hopper (sm_90a only: wgmma is not in later architectures): wgmma straight from local memory, with
     * tiles of its own (armt_gemm_mma_tiles); -DMMA_WGMMA=0 in the extra options falls back to mma.sync, and
     * -DMMA_WGMMA=1 with the emulation runs the wgmma tiles' stand-ins anywhere (tests) */
    int wgmma = real_mma && info->nv_compute_capability == 90;
    if (emulate && strstr(extra, "-DMMA_WGMMA=1")) wgmma = 1;
    if (extra && strstr(extra, "-DMMA_WGMMA=0")) wgmma = 0;
    armt_gemm_mma_tiles(tune, wgmma);
    if (emulate) emulation_tiles(tune);
    if (extra && strstr(extra, "-DARMT_GEMM_NARROW=0")) tune->nar_bn = 0; /* no narrow tiles (comparisons) */
    tune->kv_dual = !(extra && strstr(extra, "-DARMT_KV_DUAL=0")); /* 0: k and v apart (comparisons) */
    extra_int(extra, "-DMMA_RASTER=", 0, 1, &tune->mma_raster);
    /* attention of bf16 models on tensor cores wherever the GEMM has them; -DARMT_ATTN_MMA=0 in the extra
     * options turns it off (the fp32 kernel then runs) */
    tune->attn_mma = tune->nv_mma;
    if (extra && strstr(extra, "-DARMT_ATTN_MMA=0")) tune->attn_mma = 0;
    /* its tiles (warps per work-group, m16 row tiles per warp): 0 = each model picks by head dimension
     * (armt_attention_tiles), or set in the extra options */
    tune->attn_mma_warps = 0;
    extra_int(extra, "-DAM_WARPS=", 1, 8, &tune->attn_mma_warps);
    tune->attn_mma_rt = 0;
    extra_int(extra, "-DAM_RT=", 1, 2, &tune->attn_mma_rt);
    /* NVIDIA's compiler option -cl-nv-maxrregcount for the attention program (-DAM_MAXREG=N) */
    tune->attn_maxreg = 0;
    if (real_mma) extra_int(extra, "-DAM_MAXREG=", 32, 255, &tune->attn_maxreg);
    /* -DATTN_BQ=N / -DATTN_BK=N in the extra options (ARMT_CL_BUILD_OPTIONS) also change the launch and the
     * per-model clamp below: the kernel requires that work-group size */
    extra_int(extra, "-DATTN_BQ=", 8, 256, &tune->attn_bq);
    extra_int(extra, "-DATTN_BK=", 1, 256, &tune->attn_bk);
    tune->local_mem = info->local_mem_bytes;
    /* tensor cores for every program (attention too); the GEMM's tiles go to its program alone */
    const char *mma = real_mma ? "-DARMT_NV_MMA=1 " : "";
    char buf[4096];
    snprintf(buf, sizeof buf,
             "-cl-std=CL1.2 -DARMT_HAS_FP64=%d -DARMT_ROW_WG=%d -DATTN_BQ=%d -DATTN_BK=%d -DGEMM_TM=%d -DGEMM_TN=%d "
             "-DGEMM_RM=%d -DGEMM_RN=%d %s%s",
             info->has_fp64 ? 1 : 0, tune->row_wg, tune->attn_bq, tune->attn_bk, tune->gemm_tm, tune->gemm_tn,
             tune->gemm_rm, tune->gemm_rn, mma, extra ? extra : "");
    /* trim trailing blanks */
    size_t n = strlen(buf);
    while (n > 0 && buf[n - 1] == ' ') buf[--n] = '\0';
    char *out = malloc(n + 1);
    if (out) memcpy(out, buf, n + 1);
    return out;
}

void armt_attention_tiles(const armt_device_info *info, const armt_device_tuning *tune, int head_dim,
                          int *warps, int *rtiles) {
    /* GPUs: heads up to 64 get K/V tiles by cp.async (attention.cl, AM_ASYNC_ON), fastest with 4 warps of
     * two row tiles each (H200, 1B shapes: 0.054 s against 0.068 s for 8 warps of one row tile,
     * bench/results/2026-11-28-h200-attention-async.txt). Larger heads keep the register-staged tiles, where
     * two row tiles per warp were slower and 8 warps beat 4 by 13% (-attention-rowtiles.txt). The
     * emulation (CPUs, tests): 4 warps of one. */
    int w = 4, r = 1;
    if (info->is_gpu) {
        if (head_dim <= 64) r = 2;
        else w = 8;
    }
    *warps = tune->attn_mma_warps > 0 ? tune->attn_mma_warps : w;
    *rtiles = tune->attn_mma_rt > 0 ? tune->attn_mma_rt : r;
}

void armt_gemm_mma_tiles(armt_device_tuning *tune, int wgmma) {
    tune->mma_wgmma = wgmma;
    tune->mma_bm = 128;
    if (wgmma) {
        /* 128 x 256 tiles of two warpgroups (64 x 256 each: one m64n256k16 per k16 step), k 64 per stage, four
         * stages = 192 KiB of local memory, one wgmma group left in flight at each barrier. NVIDIA's OpenCL
         * reports 48 KiB of local memory but builds and runs larger static arrays, up to Hopper's 227 KiB
         * (bench/results/2026-11-28-h200-nv-probe.txt); the runtime checks the result once at load and falls
         * back to mma.sync otherwise. H200: 572 / 406 / 570 / 648 TFLOP/s on the 1B shapes, 0.72-0.82x
         * torch.bmm (bench/results/2026-11-28-h200-gemm-wgmma-v6.txt; the 48 KiB tiles: 494 / 366 / 474 / 547). */
        tune->mma_bn = 256;
        tune->mma_bk = 64;
        tune->mma_warps_n = 4;
        tune->mma_stages = 4;
        tune->mma_wg_n = 256;
        tune->mma_wg_depth = 1;
        tune->mma_smem_max = 227 * 1024;
        /* narrow tiles for the memory projections W_mq and W_mk (n = d_mem = 64): 64 x 64 x 64, one warpgroup,
         * four stages (66 KiB). H200, 16 cells: W_mq (1152 rows) 0.054 ms against 0.087 ms on the 128 x 256
         * tiles, W_mk (128 rows) 0.020 against 0.039 ms (bench/results/2026-11-28-h200-attention-double-buffer.txt,
         * part C) */
        tune->nar_bm = 64;
        tune->nar_bn = 64;
        tune->nar_warps_m = 1;
        tune->nar_warps_n = 4;
        /* work-groups in launch order take row tiles first, so that those running together share the
         * weights' column tiles: diagonal at 131k 0.807 -> 0.779 s on the H200 (alternating; alone, with
         * nothing else in L2, the GEMMs are unchanged: bench/results/2026-11-28-h200-raster.txt) */
        tune->mma_raster = 1;
    } else {
        /* mma.sync: 128 x 128 x 32, 2 x 2 warps, as many stages as 48 KiB hold (bench/gemm_bf16_notes.md) */
        tune->mma_bn = 128;
        tune->mma_bk = 32;
        tune->mma_warps_n = 2;
        tune->mma_stages = 0;
        tune->mma_wg_n = 0;
        tune->mma_wg_depth = 0;
        tune->mma_smem_max = 0;
        /* narrow tiles for W_mq and W_mk here too: 64 x 64 x 32, 2 x 2 warps of 32 x 32, 4 stages (32 KiB) */
        tune->nar_bm = 64;
        tune->nar_bn = 64;
        tune->nar_warps_m = 2;
        tune->nar_warps_n = 2;
        tune->mma_raster = 0; /* (not measured with these tiles) */
    }
    tune->mma_threads = 32 * 2 * tune->mma_warps_n;
    tune->nar_threads = 32 * tune->nar_warps_m * tune->nar_warps_n;
}

void armt_gemm_mma_options(const armt_device_tuning *tune, int narrow, char *buf, size_t n) {
    if (!tune->nv_mma || (narrow && !tune->nar_bn)) {
        if (n) buf[0] = '\0';
        return;
    }
    /* the narrow tiles share k per stage, stages, wgmma depth and the local-memory cap; wgmma n = their n */
    const int bm = narrow ? tune->nar_bm : tune->mma_bm, bn = narrow ? tune->nar_bn : tune->mma_bn;
    const int wm = narrow ? tune->nar_warps_m : 2, wn = narrow ? tune->nar_warps_n : tune->mma_warps_n;
    const int wg_n = narrow ? tune->nar_bn : tune->mma_wg_n;
    int o = snprintf(buf, n, "-DMMA_BM=%d -DMMA_BN=%d -DMMA_BK=%d -DMMA_WARPS_M=%d -DMMA_WARPS_N=%d -DMMA_WGMMA=%d",
                     bm, bn, tune->mma_bk, wm, wn, tune->mma_wgmma);
    if (o >= 0 && (size_t)o < n && tune->mma_stages) o += snprintf(buf + o, n - (size_t)o, " -DMMA_STAGES=%d", tune->mma_stages);
    if (o >= 0 && (size_t)o < n && tune->mma_wgmma)
        o += snprintf(buf + o, n - (size_t)o, " -DMMA_WG_N=%d -DMMA_WG_DEPTH=%d", wg_n, tune->mma_wg_depth);
    if (o >= 0 && (size_t)o < n && tune->mma_smem_max)
        o += snprintf(buf + o, n - (size_t)o, " -DMMA_SMEM_MAX=%d", tune->mma_smem_max);
    if (o >= 0 && (size_t)o < n && tune->mma_raster) snprintf(buf + o, n - (size_t)o, " -DMMA_RASTER=1");
}
