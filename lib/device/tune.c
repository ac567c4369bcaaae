/*
 * tune.c - the one owner of device tuning: device info and the typed runtime options in, the tuning
 * (armt_device_tuning) and the kernels' -D options out. Kernels never test vendors; they see -D features and
 * tiles decided here. Nothing reads the -D strings back: the host uses the tuning struct.
 * The measurements behind the table are in docs/perf/results/ (file names below).
 */
#include "config.h"

#include "device/internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The tensor-core GEMM tiles: Hopper wgmma (wgmma = 1) or mma.sync (0), with their narrow tiles. */
static void gemm_tiles(armt_device_tuning *tune, int wgmma) {
    tune->mma_wgmma = wgmma;
    tune->mma_bm = 128;
    if (wgmma) {
        /* 128 x 256 tiles of two warpgroups (64 x 256 each: one m64n256k16 per k16 step), k 64 per stage,
         * four stages = 192 KiB of local memory, one wgmma group left in flight at each barrier. NVIDIA's
         * OpenCL reports 48 KiB of local memory but builds and runs larger static arrays, up to Hopper's 227
         * KiB (2026-11-28-h200-nv-probe.txt); the runtime checks one tile at load and falls back to mma.sync
         * otherwise (armt_tune_wgmma_failed). 2026-11-28-h200-gemm-wgmma-v6.txt. */
        tune->mma_bn = 256;
        tune->mma_bk = 64;
        tune->mma_warps_n = 4;
        tune->mma_stages = 4;
        tune->mma_wg_n = 256;
        tune->mma_smem_max = 227 * 1024;
        /* narrow tiles for the memory projections W_mq and W_mk (n = d_mem = 64): 64 x 64 x 64, one
         * warpgroup, four stages (66 KiB): a 128 x 256 tile would be mostly empty there
         * (2026-11-28-h200-attention-double-buffer.txt, part C) */
        tune->nar_bm = 64;
        tune->nar_bn = 64;
        tune->nar_warps_m = 1;
        tune->nar_warps_n = 4;
        /* row tiles first in launch order: work-groups running together share the weights' column tiles in
         * L2 (2026-11-28-h200-raster.txt) */
        tune->mma_raster = 1;
    } else {
        /* mma.sync: 128 x 128 x 32, 2 x 2 warps, as many stages as 48 KiB hold (the kernel's defaults) */
        tune->mma_bn = 128;
        tune->mma_bk = 32;
        tune->mma_warps_n = 2;
        tune->mma_stages = 0;
        tune->mma_wg_n = 0;
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

/* The emulation's tiles (tests): the same code paths as the library's tiles (wgmma or mma.sync, k per stage,
 * stages, raster, the 256 columns of the dual epilogues) on fewer fragments per warp, since PoCL's compile
 * time grows steeply with them (128 x 128 x 32: minutes per kernel). Every fragment loop still runs twice or
 * more somewhere: mma.sync 64 x 32 (two m16 by two n8 tiles per warp), narrow 32 x 32; wgmma 64 x 256 on one
 * warpgroup of 2 x 2 warps (the narrow tiles stay 64 x 64 x 64). */
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

/* The fp32 tensor-core GEMM's tiles (cl/gemm_tf32.cl): 128 x 128 x 16 on 2 x 4 warps of 64 x 32, two
 * stages (40 KiB of local memory); 217 to 229 registers without spills (ptxas, sm_90a and sm_80): 2 x 2 warps
 * of 64 x 64 spill with the small products' own accumulators. Not yet timed against other tiles on a GPU:
 * bench/gemm_fp32_bench --tiles does. The emulation: 64 x 32 x 16 on 2 x 2 warps (two m16 by two n8 tiles
 * each), since PoCL's compile time grows with the fragments. */
static void tf32_tiles(armt_device_tuning *t, int wgmma) {
    t->tf_bm = t->mma_emulate ? 64 : 128;
    t->tf_bn = t->mma_emulate ? 32 : 128;
    t->tf_bk = 16;
    t->tf_warps_m = 2;
    t->tf_warps_n = t->mma_emulate ? 2 : 4;
    t->tf_stages = 2;
    t->tf_threads = 32 * t->tf_warps_m * t->tf_warps_n;
    /* Hopper: the row-major GEMMs (all but the memory update's) on wgmma (cl/gemm_tf32_wg.cl), 128 x 128
     * tiles of two warpgroups, three stages of 64 KiB; the stand-ins (when asked, as for the bf16 tiles): one
     * warpgroup of 64 x 32 */
    t->tf_wgmma = wgmma;
    t->tw_wgm = t->mma_emulate ? 1 : 2;
    t->tw_n = t->mma_emulate ? 32 : 128;
    t->tw_stages = 3;
}

void armt_tune_tf32_wgmma_failed(armt_device_tuning *t) { t->tf_wgmma = 0; }

armt_status armt_tune_device(const armt_device_info *info, const armt_tune_options *opt,
                             armt_device_tuning *tune, armt_err *err) {
    memset(tune, 0, sizeof *tune);
    tune->local_mem = info->local_mem_bytes;
    /* row-wise kernels and the fp32 attention: 128 x 16 attention tiles beat 64 x 32, 64 x 64 and 32 x 32 on
     * the H200 (2026-11-28-h200-attention-tiles.txt) */
    tune->row_wg = info->is_gpu ? 256 : 64;
    tune->attn_bq = info->is_gpu ? 128 : 32;
    tune->attn_bk = info->is_gpu ? 16 : 32;
    /* the portable bf16 GEMM's tile: 128 x 64 with 8 x 4 per work-item on GPUs with the 25 KiB of local
     * memory its two buffers take (with tensor cores off on an H100 it was the fastest of 64 x 64, 128 x 128
     * and 128 x 64 at three of the four model sites, 33-35 TFLOP/s against 31-32: docs/perf/results/
     * 2026-12-07-h100-issue21-measurements.md), else 64 x 64 with 4 x 4 (17 KiB); every tile gives the same
     * bits */
    const int big_tile = info->is_gpu && info->local_mem_bytes >= 28 * 1024;
    tune->gemm_tm = big_tile ? 128 : 64;
    tune->gemm_tn = 64;
    tune->gemm_rm = big_tile ? 8 : 4;
    tune->gemm_rn = 4;

    /* tensor cores: NVIDIA from compute capability 8.0 (mma.sync m16n8k16 bf16 through inline PTX), where
     * local memory holds two 128 x 32 bf16 stages per operand; or the OpenCL C stand-ins (tests) */
    const int has_mma = info->nv_compute_capability >= 80 && info->local_mem_bytes >= 48 * 1024;
    const int has_wgmma = has_mma && info->nv_compute_capability == 90; /* sm_90a only, not later ones */
    if (opt->tensor_cores == ARMT_TC_ON && !has_mma)
        return armt_err_set(err, ARMT_STATUS_UNSUPPORTED,
                            "tensor cores requested, but %s has none the kernels use (NVIDIA compute "
                            "capability >= 8.0)",
                            info->name);
    tune->mma_emulate = opt->tensor_cores == ARMT_TC_EMULATE;
    tune->nv_mma = tune->mma_emulate || (opt->tensor_cores != ARMT_TC_OFF && has_mma);
    int wgmma = 0;
    if (tune->nv_mma && opt->wgmma != ARMT_TC_OFF) {
        if ((opt->wgmma == ARMT_TC_ON || opt->wgmma == ARMT_TC_EMULATE) && !has_wgmma && !tune->mma_emulate)
            return armt_err_set(err, ARMT_STATUS_UNSUPPORTED,
                                "wgmma requested, but %s has none (NVIDIA compute capability 9.0)",
                                info->name);
        /* the emulation runs the wgmma tiles' stand-ins only when asked (they are slow to compile) */
        wgmma = tune->mma_emulate ? opt->wgmma != ARMT_TC_AUTO : has_wgmma;
    }
    gemm_tiles(tune, wgmma);
    if (tune->mma_emulate) emulation_tiles(tune);
    /* fp32 weights' GEMMs on tensor cores (3xTF32, cl/gemm_tf32.cl): mma.sync m16n8k8 on TF32 exists
     * wherever the bf16 kernels' mma.sync does. AUTO takes it there, because the fp32 default must be at
     * least as accurate as CLBlast's SGEMM and, with each k step's (mma.sync) or k tile's (wgmma) sums added
     * by fp32 adds (TF_SPLIT, TW_SPLIT), it is more so at every GEMM site of the 1B model: rms error 0.19 to
     * 0.44 times CLBlast's on an H100 and an H200 (bench/gemm_fp32_bench,
     * docs/perf/results/2026-12-07-h200-fp32-split-and-decode.md; without the split the tensor cores' own
     * accumulation had made it 2.7 to 11.8 times). The emulation (tests) runs it only when asked (TF32X3):
     * its stand-ins are slow. */
    if (opt->fp32_gemm < ARMT_FP32_GEMM_AUTO || opt->fp32_gemm > ARMT_FP32_GEMM_TF32X3)
        return armt_err_set(err, ARMT_STATUS_INVALID_ARGUMENT, "fp32_gemm: %d is not an armt_fp32_gemm",
                            (int)opt->fp32_gemm);
    if (opt->fp32_gemm == ARMT_FP32_GEMM_TF32X3 && !tune->nv_mma)
        return armt_err_set(err, ARMT_STATUS_UNSUPPORTED,
                            "3xTF32 fp32 GEMMs requested, but %s has no tensor cores the kernels use (NVIDIA "
                            "compute capability >= 8.0, tensor cores not off)",
                            info->name);
    tune->tf32 = tune->nv_mma && (opt->fp32_gemm == ARMT_FP32_GEMM_TF32X3 ||
                                  (opt->fp32_gemm == ARMT_FP32_GEMM_AUTO && !tune->mma_emulate));
    if (tune->tf32) tf32_tiles(tune, wgmma);
    /* attention of bf16 models on tensor cores wherever the GEMM has them */
    tune->attn_mma = tune->nv_mma && opt->attention != ARMT_TC_OFF;
    /* and of fp32 models on 3xTF32 (attention_mma.cl's AM_TF32) wherever their GEMMs run 3xTF32, unless
     * attention is OFF. Its main products are added by fp32 adds, a k8 step at a time (AM_SPLIT), so that
     * its sums over the keys are fp32's; where AUTO chose it (neither TF32X3 nor attention ON asked), a model
     * keeps it only if the check at its load finds it at least as accurate against fp64 as the fp32 kernel
     * on this device (attn_tf32_gate, lib/device/attention_check.c) */
    tune->attn_tf32 = tune->tf32 && opt->attention != ARMT_TC_OFF;
    tune->attn_tf32_gate =
        tune->attn_tf32 && opt->fp32_gemm == ARMT_FP32_GEMM_AUTO && opt->attention == ARMT_TC_AUTO;
    /* its tiles (warps per work-group x m16 row tiles per warp). GPUs: heads up to 64 stage K and V by
     * cp.async, fastest with 4 warps of two row tiles (2026-11-28-h200-attention-async.txt); larger heads
     * stage through registers, where 8 warps of one row tile are faster
     * (2026-11-28-h200-attention-rowtiles.txt). The emulation: 4 warps of one. */
    tune->am_warps_small = 4;
    tune->am_rt_small = info->is_gpu ? 2 : 1;
    tune->am_warps_large = info->is_gpu ? 8 : 4;
    tune->am_rt_large = 1;
    /* the GEMV's lanes: by the weight's shape unless forced (a measurement knob) */
    if (opt->gemv_lanes != 0 && opt->gemv_lanes != 32 && opt->gemv_lanes != 64 && opt->gemv_lanes != 128)
        return armt_err_set(err, ARMT_STATUS_INVALID_ARGUMENT, "GEMV lanes: %d is not 32, 64 or 128",
                            opt->gemv_lanes);
    tune->gemv_lanes = opt->gemv_lanes;
    if (opt->gemv_wgs < 0 || opt->gemv_wgs > 64)
        return armt_err_set(err, ARMT_STATUS_INVALID_ARGUMENT, "GEMV work-groups per compute unit: %d",
                            opt->gemv_wgs);
    tune->gemv_wgs = opt->gemv_wgs ? opt->gemv_wgs : 1;
    if (opt->splitk != 0 && opt->splitk != 1 && opt->splitk != 2 && opt->splitk != 4 && opt->splitk != 8 &&
        opt->splitk != 16)
        return armt_err_set(err, ARMT_STATUS_INVALID_ARGUMENT, "split-k: %d is not 1, 2, 4, 8 or 16",
                            opt->splitk);
    tune->splitk = opt->splitk;
    if (opt->splitk_rule < 0 || opt->splitk_rule > 2)
        return armt_err_set(err, ARMT_STATUS_INVALID_ARGUMENT, "split-k rule: %d is not 0, 1 or 2",
                            opt->splitk_rule);
    tune->splitk_rule = opt->splitk_rule;
    if (opt->mlp_rows < 0)
        return armt_err_set(err, ARMT_STATUS_INVALID_ARGUMENT, "MLP rows: %d is negative", opt->mlp_rows);
    tune->mlp_rows = opt->mlp_rows ? opt->mlp_rows : ARMT_MLP_ROWS_DEFAULT;
    tune->decode_flush = opt->decode_flush < 0 ? ARMT_DECODE_FLUSH_DEFAULT : opt->decode_flush;
    tune->decode_fuse = opt->decode_fuse < 0 ? tune->nv_mma && !tune->mma_emulate : opt->decode_fuse;
    return ARMT_OK;
}

void armt_tune_wgmma_failed(armt_device_tuning *tune) {
    const int narrow = tune->nar_bn != 0;
    gemm_tiles(tune, 0);
    if (!narrow) tune->nar_bn = 0;
}

void armt_tune_narrow_failed(armt_device_tuning *tune) { tune->nar_bn = 0; }

void armt_tune_attention(const armt_device_tuning *tune, int head_dim, int bf16, armt_attention_tuning *out) {
    /* the fp32 kernel's key/value tiles (2 x ATTN_BK x head_dim floats) must fit local memory, with room */
    int bk = tune->attn_bk;
    while (bk > 1 && (uint64_t)bk * (uint64_t)head_dim * 8u + 1024u > tune->local_mem)
        bk /= 2;
    out->head_dim = head_dim;
    out->bk = bk;
    /* tensor cores: head_dim a multiple of 16, its bf16 tiles within local memory */
    const int fits = head_dim % 16 == 0 && head_dim <= 128;
    out->tf32 = !bf16 && tune->attn_tf32 && fits;
    out->mma = (bf16 && tune->attn_mma && fits) || out->tf32;
    out->warps = head_dim <= 64 ? tune->am_warps_small : tune->am_warps_large;
    out->rtiles = head_dim <= 64 ? tune->am_rt_small : tune->am_rt_large;
    out->am_bk = 0;
    if (out->tf32) {
        /* fp32 tiles (K and V: 2 x 64 keys x 68-72 floats for heads of 64); the high and low parts of Q take
         * the registers a second row tile would; heads over 64 in tiles of 32 keys */
        out->rtiles = 1;
        out->am_bk = head_dim > 64 ? 32 : 64;
    }
}

void armt_tune_attention_options(const armt_attention_tuning *at, char *buf, size_t n) {
    int o = snprintf(buf, n, "-DATTN_HD=%d -DATTN_BK=%d -DAM_WARPS=%d -DAM_RT=%d", at->head_dim, at->bk,
                     at->warps, at->rtiles);
    if (at->tf32 && o >= 0 && (size_t)o < n)
        snprintf(buf + o, n - (size_t)o, " -DAM_TF32=1 -DAM_BK=%d", at->am_bk);
}

void armt_tune_common_options(const armt_device_tuning *tune, char *buf, size_t n) {
    const char *mma = tune->mma_emulate ? " -DARMT_MMA_EMULATE=1" : tune->nv_mma ? " -DARMT_NV_MMA=1" : "";
    snprintf(
        buf, n,
        "-cl-std=CL1.2 -DARMT_ROW_WG=%d -DATTN_BQ=%d -DATTN_BK=%d -DGEMM_TM=%d -DGEMM_TN=%d -DGEMM_RM=%d "
        "-DGEMM_RN=%d%s",
        tune->row_wg, tune->attn_bq, tune->attn_bk, tune->gemm_tm, tune->gemm_tn, tune->gemm_rm,
        tune->gemm_rn, mma);
}

void armt_tune_gemm_options(const armt_device_tuning *tune, int narrow, char *buf, size_t n) {
    if (!tune->nv_mma || (narrow && !tune->nar_bn)) {
        if (n) buf[0] = '\0';
        return;
    }
    /* the narrow tiles share k per stage, stages and the local-memory cap; their wgmma n is their n */
    const int bm = narrow ? tune->nar_bm : tune->mma_bm, bn = narrow ? tune->nar_bn : tune->mma_bn;
    const int wm = narrow ? tune->nar_warps_m : 2, wn = narrow ? tune->nar_warps_n : tune->mma_warps_n;
    const int wg_n = narrow ? tune->nar_bn : tune->mma_wg_n;
    int o = snprintf(buf, n,
                     "-DMMA_BM=%d -DMMA_BN=%d -DMMA_BK=%d -DMMA_WARPS_M=%d -DMMA_WARPS_N=%d -DMMA_WGMMA=%d",
                     bm, bn, tune->mma_bk, wm, wn, tune->mma_wgmma);
    if (o >= 0 && (size_t)o < n && tune->mma_stages)
        o += snprintf(buf + o, n - (size_t)o, " -DMMA_STAGES=%d", tune->mma_stages);
    if (o >= 0 && (size_t)o < n && tune->mma_wgmma)
        o += snprintf(buf + o, n - (size_t)o, " -DMMA_WG_N=%d", wg_n);
    if (o >= 0 && (size_t)o < n && tune->mma_smem_max)
        o += snprintf(buf + o, n - (size_t)o, " -DMMA_SMEM_MAX=%d", tune->mma_smem_max);
    if (o >= 0 && (size_t)o < n && tune->mma_raster) snprintf(buf + o, n - (size_t)o, " -DMMA_RASTER=1");
}

void armt_tune_tf32_options(const armt_device_tuning *t, char *buf, size_t n) {
    if (!t->tf32) {
        if (n) buf[0] = '\0';
        return;
    }
    int o =
        snprintf(buf, n, "-DTF_BM=%d -DTF_BN=%d -DTF_BK=%d -DTF_WARPS_M=%d -DTF_WARPS_N=%d -DTF_STAGES=%d",
                 t->tf_bm, t->tf_bn, t->tf_bk, t->tf_warps_m, t->tf_warps_n, t->tf_stages);
    if (t->tf_wgmma && o >= 0 && (size_t)o < n)
        snprintf(buf + o, n - (size_t)o, " -DTF_WGMMA=1 -DTW_WGM=%d -DTW_N=%d -DTW_STAGES=%d", t->tw_wgm,
                 t->tw_n, t->tw_stages);
}
