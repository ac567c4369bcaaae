/*
 * build_options.c - the one place where device features and quirks become kernel build options and
 * tunables. Kernels never test vendors; they see -D feature macros decided here.
 */
#include "config.h"

#include "internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

char *armt_cl_build_options(const armt_device_info *info, armt_device_tuning *tune, const char *extra) {
    /* Tunables: a small table by device class, overridable per build with -D in ARMT_CL_BUILD_OPTIONS
     * (the kernels use #ifndef defaults, and the last -D wins). */
    tune->row_wg = 64;
    tune->attn_bq = 32;
    tune->attn_bk = 32;
    if (info->is_gpu) {
        tune->row_wg = 256;
        tune->attn_bq = 64;
        tune->attn_bk = 32;
    }
    /* Local memory must hold two key/value tiles of up to 256 floats per row (head_dim <= 256). */
    while (tune->attn_bk > 8 && (uint64_t)tune->attn_bk * 2 * 256 * 4 > info->local_mem_bytes / 2) tune->attn_bk /= 2;

    char buf[4096];
    snprintf(buf, sizeof buf,
             "-cl-std=CL1.2 -DARMT_HAS_FP64=%d -DARMT_ROW_WG=%d -DATTN_BQ=%d -DATTN_BK=%d %s",
             info->has_fp64 ? 1 : 0, tune->row_wg, tune->attn_bq, tune->attn_bk, extra ? extra : "");
    /* trim trailing blanks */
    size_t n = strlen(buf);
    while (n > 0 && buf[n - 1] == ' ') buf[--n] = '\0';
    char *out = malloc(n + 1);
    if (out) memcpy(out, buf, n + 1);
    return out;
}
