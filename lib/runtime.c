/*
 * runtime.c - platforms and devices, device choice, the OpenCL context, kernel programs compiled at load,
 * device-memory accounting and the one launch helper.
 */
#include "config.h"

#include "internal.h"
#include "nv_ptx.h"
#include "util.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <stb/stb_ds.h>

/* ======================================================================================================= */
/* Kernel table                                                                                            */
/* ======================================================================================================= */

static const struct {
    const char     *name;
    armt_program_id program;
    int             optional; /* present only with some build options */
    const char     *label;    /* name in profiles and messages when not the kernel's (NULL: name) */
} kernel_table[ARMT_K_COUNT] = {
    [ARMT_K_EMBED]          = {"armt_embed", ARMT_P_EMBED},
    [ARMT_K_FILL_UNIFORM]   = {"armt_fill_uniform", ARMT_P_INIT},
    [ARMT_K_RMSNORM]        = {"armt_rmsnorm", ARMT_P_NORM},
    [ARMT_K_RMSNORM_ROWS]   = {"armt_rmsnorm_rows", ARMT_P_NORM},
    [ARMT_K_ROPE]           = {"armt_rope", ARMT_P_ROPE},
    [ARMT_K_ATTENTION]      = {"armt_attention", ARMT_P_ATTENTION},
    [ARMT_K_SWIGLU]         = {"armt_swiglu", ARMT_P_ELEMENTWISE},
    [ARMT_K_DPFP]           = {"armt_dpfp", ARMT_P_MEMORY},
    [ARMT_K_MEM_READ]       = {"armt_mem_read", ARMT_P_MEMORY},
    [ARMT_K_MEM_READ_SCALE] = {"armt_mem_read_scale", ARMT_P_MEMORY},
    [ARMT_K_MEM_GATHER]     = {"armt_mem_gather", ARMT_P_MEMORY},
    [ARMT_K_MEM_WRITE_PREP] = {"armt_mem_write_prep", ARMT_P_MEMORY},
    [ARMT_K_MEM_DELTA]      = {"armt_mem_delta", ARMT_P_MEMORY},
    [ARMT_K_MEM_Z_UPDATE]   = {"armt_mem_z_update", ARMT_P_MEMORY},
    [ARMT_K_EMBED_BF16]     = {"armt_embed_bf16", ARMT_P_EMBED},
    [ARMT_K_FILL_UNIFORM_BF16] = {"armt_fill_uniform_bf16", ARMT_P_INIT},
    [ARMT_K_GEMM_BF16]      = {"armt_gemm_bf16", ARMT_P_GEMM_BF16},
    [ARMT_K_GEMM_BF16_MMA]  = {"armt_gemm_bf16_mma", ARMT_P_GEMM_BF16, 1},
    [ARMT_K_ATTENTION_MMA]  = {"armt_attention_mma", ARMT_P_ATTENTION, 1},
    [ARMT_K_MEM_BF16_T]     = {"armt_mem_bf16_t", ARMT_P_MEMORY},
    [ARMT_K_F32_TO_BF16]    = {"armt_f32_to_bf16", ARMT_P_GEMM_BF16, 1},
    [ARMT_K_GEMM_BF16BF16_MMA] = {"armt_gemm_bf16bf16_mma", ARMT_P_GEMM_BF16, 1},
    [ARMT_K_GEMM_BF16_MMA_NARROW] = {"armt_gemm_bf16_mma", ARMT_P_GEMM_NARROW, 1, "armt_gemm_bf16_mma/narrow"},
    [ARMT_K_GEMM_BF16BF16_MMA_NARROW] = {"armt_gemm_bf16bf16_mma", ARMT_P_GEMM_NARROW, 1,
                                         "armt_gemm_bf16bf16_mma/narrow"},
    [ARMT_K_ATTENTION_MMA_KVBF16] = {"armt_attention_mma_kvbf16", ARMT_P_ATTENTION, 1},
};

static const char *const program_files[ARMT_P_COUNT] = {
    [ARMT_P_EMBED] = "embed.cl",         [ARMT_P_INIT] = "init.cl",
    [ARMT_P_NORM] = "norm.cl",           [ARMT_P_ROPE] = "rope.cl",
    [ARMT_P_ATTENTION] = "attention.cl", [ARMT_P_ELEMENTWISE] = "elementwise.cl",
    [ARMT_P_MEMORY] = "memory.cl",       [ARMT_P_GEMM_BF16] = "gemm_bf16.cl",
    [ARMT_P_GEMM_NARROW] = "gemm_bf16.cl",
};

const char *armt_kernel_name(armt_kernel_id id) {
    if (id < 0 || id >= ARMT_K_COUNT) return "?";
    return kernel_table[id].label ? kernel_table[id].label : kernel_table[id].name;
}

/* ======================================================================================================= */
/* Small helpers                                                                                           */
/* ======================================================================================================= */

static int ci_contains(const char *hay, const char *needle) {
    size_t n = strlen(needle);
    for (; *hay; hay++) {
        size_t i = 0;
        while (i < n && hay[i] && tolower((unsigned char)hay[i]) == tolower((unsigned char)needle[i])) i++;
        if (i == n) return 1;
    }
    return n == 0;
}

/* "3" -> 3; anything that is not a plain non-negative integer -> -1 (a name substring). */
static long parse_index(const char *s) {
    if (!s || !*s) return -1;
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || *end || v < 0) return -1;
    return v;
}

/* A platform or device string, cut to fit buf (drivers' version strings can be longer than expected). */
static void get_str(cl_platform_id p, cl_device_id d, cl_uint what, char *buf, size_t n) {
    buf[0] = '\0';
    size_t need = 0;
    cl_int e = d ? clGetDeviceInfo(d, what, 0, NULL, &need) : clGetPlatformInfo(p, what, 0, NULL, &need);
    if (e != CL_SUCCESS || need == 0) return;
    char *tmp = malloc(need + 1);
    if (!tmp) return;
    e = d ? clGetDeviceInfo(d, what, need, tmp, NULL) : clGetPlatformInfo(p, what, need, tmp, NULL);
    if (e == CL_SUCCESS) {
        tmp[need] = '\0';
        snprintf(buf, n, "%s", tmp);
    }
    free(tmp);
}

void armt_fill_device_info(cl_platform_id p, cl_device_id d, int pi, int di, armt_device_info *o) {
    memset(o, 0, sizeof *o);
    o->platform_index = pi;
    o->device_index = di;
    get_str(p, NULL, CL_PLATFORM_NAME, o->platform_name, sizeof o->platform_name);
    get_str(p, d, CL_DEVICE_NAME, o->name, sizeof o->name);
    get_str(p, d, CL_DEVICE_VENDOR, o->vendor, sizeof o->vendor);
    get_str(p, d, CL_DRIVER_VERSION, o->driver_version, sizeof o->driver_version);
    get_str(p, d, CL_DEVICE_VERSION, o->device_version, sizeof o->device_version);
    get_str(p, d, CL_DEVICE_OPENCL_C_VERSION, o->opencl_c_version, sizeof o->opencl_c_version);
    cl_device_type t = 0;
    cl_ulong u = 0;
    cl_uint cu = 0;
    clGetDeviceInfo(d, CL_DEVICE_TYPE, sizeof t, &t, NULL);
    o->is_gpu = (t & CL_DEVICE_TYPE_GPU) != 0;
    o->is_cpu = (t & CL_DEVICE_TYPE_CPU) != 0;
    if (clGetDeviceInfo(d, CL_DEVICE_MAX_COMPUTE_UNITS, sizeof cu, &cu, NULL) == CL_SUCCESS) o->compute_units = cu;
    if (clGetDeviceInfo(d, CL_DEVICE_GLOBAL_MEM_SIZE, sizeof u, &u, NULL) == CL_SUCCESS) o->global_mem_bytes = u;
    if (clGetDeviceInfo(d, CL_DEVICE_MAX_MEM_ALLOC_SIZE, sizeof u, &u, NULL) == CL_SUCCESS) o->max_alloc_bytes = u;
    if (clGetDeviceInfo(d, CL_DEVICE_LOCAL_MEM_SIZE, sizeof u, &u, NULL) == CL_SUCCESS) o->local_mem_bytes = u;
    o->nv_compute_capability = 0;
    size_t n = 0;
    if (clGetDeviceInfo(d, CL_DEVICE_EXTENSIONS, 0, NULL, &n) == CL_SUCCESS && n > 0) {
        char *ext = malloc(n + 1);
        if (ext && clGetDeviceInfo(d, CL_DEVICE_EXTENSIONS, n, ext, NULL) == CL_SUCCESS) {
            ext[n] = '\0';
            o->has_fp16 = strstr(ext, "cl_khr_fp16") != NULL;
            o->has_fp64 = strstr(ext, "cl_khr_fp64") != NULL;
            if (strstr(ext, "cl_nv_device_attribute_query")) {
                /* CL_DEVICE_COMPUTE_CAPABILITY_MAJOR_NV / _MINOR_NV */
                cl_uint maj = 0, min = 0;
                if (clGetDeviceInfo(d, 0x4000, sizeof maj, &maj, NULL) == CL_SUCCESS &&
                    clGetDeviceInfo(d, 0x4001, sizeof min, &min, NULL) == CL_SUCCESS)
                    o->nv_compute_capability = (int)(maj * 10 + min);
            }
        }
        free(ext);
    }
}

/* ======================================================================================================= */
/* Device listing and choice                                                                               */
/* ======================================================================================================= */

typedef struct found_device {
    cl_platform_id   platform;
    cl_device_id     device;
    armt_device_info info;
} found_device;

/* Every device of every platform, as an stb_ds array (arrfree it). Zero platforms (-1001 from the ICD
 * loader) is "none", not an error. */
static armt_status enumerate(found_device **out, armt_err *err) {
    *out = NULL;
    cl_uint np = 0;
    cl_int e = clGetPlatformIDs(0, NULL, &np);
    if (e == -1001 /* CL_PLATFORM_NOT_FOUND_KHR */ || (e == CL_SUCCESS && np == 0)) return ARMT_OK;
    if (e != CL_SUCCESS) return armt_err_cl(err, "clGetPlatformIDs", e);
    cl_platform_id *ps = calloc(np, sizeof *ps);
    if (!ps) return armt_err_set(err, ARMT_STATUS_OUT_OF_HOST_MEMORY, "device list: out of host memory");
    e = clGetPlatformIDs(np, ps, NULL);
    if (e != CL_SUCCESS) {
        free(ps);
        return armt_err_cl(err, "clGetPlatformIDs", e);
    }
    found_device *list = NULL;
    for (cl_uint pi = 0; pi < np; pi++) {
        cl_uint nd = 0;
        if (clGetDeviceIDs(ps[pi], CL_DEVICE_TYPE_ALL, 0, NULL, &nd) != CL_SUCCESS || nd == 0) continue;
        cl_device_id *ds = calloc(nd, sizeof *ds);
        if (!ds) {
            arrfree(list);
            free(ps);
            return armt_err_set(err, ARMT_STATUS_OUT_OF_HOST_MEMORY, "device list: out of host memory");
        }
        if (clGetDeviceIDs(ps[pi], CL_DEVICE_TYPE_ALL, nd, ds, NULL) == CL_SUCCESS) {
            for (cl_uint di = 0; di < nd; di++) {
                found_device fd;
                fd.platform = ps[pi];
                fd.device = ds[di];
                armt_fill_device_info(ps[pi], ds[di], (int)pi, (int)di, &fd.info);
                arrput(list, fd);
            }
        }
        free(ds);
    }
    free(ps);
    *out = list;
    return ARMT_OK;
}

armt_status armt_device_list(armt_device_info **out, size_t *count) {
    armt_err e;
    armt_err_init(&e);
    if (!out || !count) {
        armt_err_set(&e, ARMT_STATUS_INVALID_ARGUMENT, "armt_device_list: out and count must not be NULL");
        armt_err_free(&e);
        return ARMT_STATUS_INVALID_ARGUMENT;
    }
    *out = NULL;
    *count = 0;
    found_device *list;
    armt_status st = enumerate(&list, &e);
    armt_err_free(&e);
    if (st != ARMT_OK) return st;
    size_t n = (size_t)arrlen(list);
    if (n == 0) return ARMT_OK;
    armt_device_info *infos = calloc(n, sizeof *infos);
    if (!infos) {
        arrfree(list);
        return ARMT_STATUS_OUT_OF_HOST_MEMORY;
    }
    for (size_t i = 0; i < n; i++) infos[i] = list[i].info;
    arrfree(list);
    *out = infos;
    *count = n;
    return ARMT_OK;
}

void armt_device_list_free(armt_device_info *list) { free(list); }

/* Rank for "best device": GPUs, then accelerators, then CPUs; then more global memory. */
static int device_rank(const armt_device_info *i) { return i->is_gpu ? 2 : (i->is_cpu ? 0 : 1); }

static int matches(const char *sel, long index, int value, const char *name) {
    if (!sel) return 1;
    if (index >= 0) return value == index;
    return ci_contains(name, sel);
}

static armt_status choose_device(const char *psel, const char *dsel, found_device *list, size_t n,
                                 size_t *chosen, armt_err *err) {
    long pidx = parse_index(psel), didx = parse_index(dsel);
    long best = -1;
    for (size_t i = 0; i < n; i++) {
        const armt_device_info *in = &list[i].info;
        if (!matches(psel, pidx, in->platform_index, in->platform_name)) continue;
        if (!matches(dsel, didx, in->device_index, in->name)) continue;
        if (best < 0) {
            best = (long)i;
            continue;
        }
        const armt_device_info *b = &list[best].info;
        if (device_rank(in) > device_rank(b) ||
            (device_rank(in) == device_rank(b) && in->global_mem_bytes > b->global_mem_bytes))
            best = (long)i;
    }
    if (best < 0)
        return armt_err_set(err, ARMT_STATUS_NO_DEVICE,
                            "no OpenCL device matches platform \"%s\" and device \"%s\" (%zu device%s found; "
                            "list them with clbench --list-devices)",
                            psel ? psel : "*", dsel ? dsel : "*", n, n == 1 ? "" : "s");
    *chosen = (size_t)best;
    return ARMT_OK;
}

/* ======================================================================================================= */
/* Programs                                                                                                */
/* ======================================================================================================= */

/* Source text of a kernel file: from kernel_dir when given, else the embedded copy. */
static armt_status kernel_source(const char *dir, const char *file, char **text, size_t *len, armt_err *err) {
    if (dir) {
        char path[4096];
        snprintf(path, sizeof path, "%s/%s", dir, file);
        return armt_read_file(path, "kernel source", 0, 0, text, len, err);
    }
    for (size_t i = 0; i < armt_kernel_source_count; i++) {
        if (strcmp(armt_kernel_sources[i].name, file) == 0) {
            *text = malloc(armt_kernel_sources[i].size + 1);
            if (!*text) return armt_err_set(err, ARMT_STATUS_OUT_OF_HOST_MEMORY, "out of host memory");
            memcpy(*text, armt_kernel_sources[i].data, armt_kernel_sources[i].size);
            (*text)[armt_kernel_sources[i].size] = '\0';
            *len = armt_kernel_sources[i].size;
            return ARMT_OK;
        }
    }
    return armt_err_set(err, ARMT_STATUS_KERNEL_BUILD_FAILED, "kernel source %s is not embedded", file);
}

/* Builds one program from common.cl + file; a failure carries the full build log. */
armt_status armt_program_build(armt_runtime *rt, armt_program_id pid, const char *extra_options, cl_program *out,
                               armt_err *err) {
    const char *dir = rt->kernel_dir;
    char *common = NULL, *body = NULL;
    size_t lc = 0, lb = 0;
    armt_status st = kernel_source(dir, "common.cl", &common, &lc, err);
    if (st != ARMT_OK) return st;
    st = kernel_source(dir, program_files[pid], &body, &lb, err);
    if (st != ARMT_OK) {
        free(common);
        return st;
    }
    const char *srcs[2] = {common, body};
    size_t lens[2] = {lc, lb};
    cl_int e;
    cl_program p = clCreateProgramWithSource(rt->context, 2, srcs, lens, &e);
    free(common);
    free(body);
    if (e != CL_SUCCESS) return armt_err_cl(err, "clCreateProgramWithSource", e);
    size_t optlen = strlen(rt->build_options) + (extra_options ? strlen(extra_options) : 0) + 2;
    char *opts = malloc(optlen);
    if (!opts) {
        clReleaseProgram(p);
        return armt_err_set(err, ARMT_STATUS_OUT_OF_HOST_MEMORY, "out of host memory");
    }
    snprintf(opts, optlen, "%s %s", rt->build_options, extra_options ? extra_options : "");
    e = clBuildProgram(p, 1, &rt->device, opts, NULL, NULL);
    if (e != CL_SUCCESS) {
        size_t n = 0;
        clGetProgramBuildInfo(p, rt->device, CL_PROGRAM_BUILD_LOG, 0, NULL, &n);
        char *log = malloc(n + 1);
        if (log) {
            if (clGetProgramBuildInfo(p, rt->device, CL_PROGRAM_BUILD_LOG, n, log, NULL) != CL_SUCCESS) n = 0;
            log[n] = '\0';
        }
        armt_err_set(err, ARMT_STATUS_KERNEL_BUILD_FAILED,
                     "clBuildProgram of %s%s%s failed: %s (%d)\noptions: %s\nbuild log:\n%s", dir ? dir : "",
                     dir ? "/" : "(embedded) ", program_files[pid], armt_cl_error_str(e), e, opts,
                     log ? log : "(no log)");
        free(log);
        free(opts);
        clReleaseProgram(p);
        return ARMT_STATUS_KERNEL_BUILD_FAILED;
    }
    free(opts);
    *out = p;
    return ARMT_OK;
}

/* The GEMM program, with its tile options (armt_gemm_mma_options) after the common ones; narrow = 1: the
 * narrow tiles' program. */
static armt_status gemm_program_build(armt_runtime *rt, int narrow, cl_program *out, armt_err *err) {
    char opts[512];
    armt_gemm_mma_options(&rt->tune, narrow, opts, sizeof opts);
    return armt_program_build(rt, narrow ? ARMT_P_GEMM_NARROW : ARMT_P_GEMM_BF16, opts, out, err);
}

/* One tile of the wgmma GEMM on tiny buffers: C = A W^T for m = n = 1, k = 200 (small integers, so every
 * product and sum is exact in bf16 and fp32), compared with the exact value. A driver that refused the
 * tiles' local memory at launch, or a rewrite gone wrong, shows here; 0 = it ran and is right. */
static int gemm_wgmma_selftest(armt_runtime *rt, cl_program p, size_t threads) {
    enum { K = 200 };
    uint16_t a[K], w[K];
    float want = 0.0f, got = -1.0f;
    for (int i = 0; i < K; i++) {
        const float x = (float)(i % 7 - 3), y = (float)(i % 5 - 2);
        a[i] = armt_bf16_bits(x), w[i] = armt_bf16_bits(y);
        want += x * y;
    }
    cl_int e;
    cl_kernel k = clCreateKernel(p, "armt_gemm_bf16bf16_mma", &e);
    if (e != CL_SUCCESS) return -1;
    cl_mem ba = clCreateBuffer(rt->context, CL_MEM_READ_ONLY | CL_MEM_COPY_HOST_PTR, sizeof a, a, &e);
    cl_mem bw = e == CL_SUCCESS ? clCreateBuffer(rt->context, CL_MEM_READ_ONLY | CL_MEM_COPY_HOST_PTR, sizeof w, w, &e) : NULL;
    cl_mem bc = e == CL_SUCCESS ? clCreateBuffer(rt->context, CL_MEM_READ_WRITE | CL_MEM_COPY_HOST_PTR, 4, &got, &e) : NULL;
    if (e == CL_SUCCESS) {
        const cl_int one = 1, kk = K, zero = 0;
        const cl_ulong z = 0;
        clSetKernelArg(k, 0, sizeof one, &one), clSetKernelArg(k, 1, sizeof one, &one);
        clSetKernelArg(k, 2, sizeof kk, &kk), clSetKernelArg(k, 3, sizeof ba, &ba);
        clSetKernelArg(k, 4, sizeof kk, &kk), clSetKernelArg(k, 5, sizeof bw, &bw);
        clSetKernelArg(k, 6, sizeof bc, &bc), clSetKernelArg(k, 7, sizeof one, &one);
        clSetKernelArg(k, 8, sizeof zero, &zero), clSetKernelArg(k, 9, sizeof(cl_mem), NULL);
        for (int i = 10; i < 16; i++) clSetKernelArg(k, (cl_uint)i, sizeof z, &z);
        clSetKernelArg(k, 16, sizeof(cl_mem), NULL), clSetKernelArg(k, 17, sizeof(cl_mem), NULL);
        clSetKernelArg(k, 18, sizeof(cl_mem), NULL), clSetKernelArg(k, 19, sizeof z, &z);
        clSetKernelArg(k, 20, sizeof(cl_mem), NULL), clSetKernelArg(k, 21, sizeof kk, &kk);
        clSetKernelArg(k, 22, sizeof one, &one), clSetKernelArg(k, 23, sizeof zero, &zero);
        clSetKernelArg(k, 24, sizeof(cl_mem), NULL), clSetKernelArg(k, 25, sizeof(cl_mem), NULL);
        e = clSetKernelArg(k, 26, sizeof zero, &zero); /* every row */
        size_t gws[3] = {threads, 1, 1}, lws[3] = {threads, 1, 1};
        if (e == CL_SUCCESS) e = clEnqueueNDRangeKernel(rt->queue, k, 3, NULL, gws, lws, 0, NULL, NULL);
        if (e == CL_SUCCESS) e = clEnqueueReadBuffer(rt->queue, bc, CL_TRUE, 0, 4, &got, 0, NULL, NULL);
    }
    if (bc) clReleaseMemObject(bc);
    if (bw) clReleaseMemObject(bw);
    if (ba) clReleaseMemObject(ba);
    clReleaseKernel(k);
    if (e != CL_SUCCESS) {
        armt_log(ARMT_LOG_WARN, "bf16 GEMM: the wgmma check did not run: %s (%d)", armt_cl_error_str(e), e);
        return -1;
    }
    if (got != want) {
        armt_log(ARMT_LOG_WARN, "bf16 GEMM: the wgmma check computed %g, want %g", (double)got, (double)want);
        return -1;
    }
    return 0;
}

/* Hopper: a GEMM program's wgmma lines are PTX comments until its PTX is rewritten for sm_90a and rebuilt
 * (lib/nv_ptx.c), and its tiles use more local memory than OpenCL reports; one tile (`threads` work-items)
 * is then checked. 0: *p is the rewritten program (the original released). Otherwise *p is unchanged and a
 * warning names the cause for the `tiles` and what happens `instead`. */
static int gemm_sm90a_checked(armt_runtime *rt, cl_program *p, size_t threads, const char *tiles,
                              const char *instead) {
    cl_program p2 = NULL;
    cl_int e = armt_nv_rebuild_sm90a(rt->context, rt->device, *p, "", &p2);
    if (e == CL_SUCCESS && gemm_wgmma_selftest(rt, p2, threads) == 0) {
        clReleaseProgram(*p);
        *p = p2;
        return 0;
    }
    if (p2) clReleaseProgram(p2);
    if (e != CL_SUCCESS)
        armt_log(ARMT_LOG_WARN, "bf16 GEMM: the sm_90a rebuild of the %s failed: %s (%d); %s", tiles,
                 armt_cl_error_str(e), e, instead);
    else
        armt_log(ARMT_LOG_WARN, "bf16 GEMM: %s unusable on this driver; %s", tiles, instead);
    return -1;
}

/* The main tiles on Hopper (gemm_sm90a_checked); should that fail, the program is built again with the
 * mma.sync tiles. */
static armt_status gemm_to_sm90a(armt_runtime *rt, armt_err *err) {
    cl_program *gp = &rt->programs[ARMT_P_GEMM_BF16];
    if (gemm_sm90a_checked(rt, gp, (size_t)rt->tune.mma_threads, "wgmma tiles", "using mma.sync") == 0)
        return ARMT_OK;
    const int narrow = rt->tune.nar_bn != 0; /* (0: -DARMT_GEMM_NARROW=0) */
    armt_gemm_mma_tiles(&rt->tune, 0);
    if (!narrow) rt->tune.nar_bn = 0;
    clReleaseProgram(*gp);
    *gp = NULL;
    return gemm_program_build(rt, 0, gp, err);
}

/* The narrow tiles' program: built, and with the wgmma tiles rewritten and checked like the main one.
 * They are an optimisation only: any failure logs a warning and leaves them out (nar_bn = 0). */
static void gemm_narrow_build(armt_runtime *rt) {
    static const char instead[] = "using the main tiles for every GEMM";
    cl_program p = NULL;
    armt_err e2;
    armt_err_init(&e2);
    if (gemm_program_build(rt, 1, &p, &e2) != ARMT_OK) {
        armt_log(ARMT_LOG_WARN, "bf16 GEMM: narrow tiles not built (%s); %s", armt_err_msg(&e2), instead);
    } else if (rt->tune.mma_wgmma && rt->info.nv_compute_capability == 90 &&
               gemm_sm90a_checked(rt, &p, (size_t)rt->tune.nar_threads, "narrow tiles", instead) != 0) {
        clReleaseProgram(p);
        p = NULL;
    }
    armt_err_free(&e2);
    if (!p) rt->tune.nar_bn = 0;
    rt->programs[ARMT_P_GEMM_NARROW] = p;
}

armt_status armt_kernels_create(armt_runtime *rt, cl_program attention, cl_kernel *k, armt_err *err) {
    for (int i = 0; i < ARMT_K_COUNT; i++) k[i] = NULL;
    for (int i = 0; i < ARMT_K_COUNT; i++) {
        cl_int e;
        cl_program p = kernel_table[i].program == ARMT_P_ATTENTION ? attention : rt->programs[kernel_table[i].program];
        if (!p) continue; /* the attention program belongs to a model (head_dim is fixed at its build) */
        if ((i == ARMT_K_GEMM_BF16_MMA || i == ARMT_K_GEMM_BF16BF16_MMA || i == ARMT_K_F32_TO_BF16) && !rt->tune.nv_mma)
            continue;
        k[i] = clCreateKernel(p, kernel_table[i].name, &e);
        if (e != CL_SUCCESS && kernel_table[i].optional) {
            k[i] = NULL;
            continue;
        }
        if (e != CL_SUCCESS) {
            armt_kernels_release(k);
            return armt_err_set(err, ARMT_STATUS_KERNEL_BUILD_FAILED, "clCreateKernel(%s) failed: %s (%d)",
                                kernel_table[i].name, armt_cl_error_str(e), e);
        }
    }
    return ARMT_OK;
}

void armt_kernels_release(cl_kernel *k) {
    for (int i = 0; i < ARMT_K_COUNT; i++) {
        if (k[i]) clReleaseKernel(k[i]);
        k[i] = NULL;
    }
}

/* ======================================================================================================= */
/* Runtime create / free                                                                                   */
/* ======================================================================================================= */

armt_runtime_params armt_runtime_default_params(void) {
    armt_runtime_params p;
    memset(&p, 0, sizeof p);
    return p;
}

static const char *nonempty(const char *s) { return (s && *s) ? s : NULL; }

void armt_runtime_free(armt_runtime *rt) {
    if (!rt) return;
    for (int i = 0; i < ARMT_P_COUNT; i++)
        if (rt->programs[i]) clReleaseProgram(rt->programs[i]);
    if (rt->queue) clReleaseCommandQueue(rt->queue);
    if (rt->context) clReleaseContext(rt->context);
    free(rt->build_options);
    free(rt->kernel_dir);
    pthread_mutex_destroy(&rt->lock);
    armt_err_free(&rt->err);
    free(rt);
}

armt_status armt_runtime_create(const armt_runtime_params *params, armt_runtime **out) {
    armt_err tmp;
    armt_err_init(&tmp);
    armt_err *err = &tmp;
    if (!out) {
        armt_err_set(err, ARMT_STATUS_INVALID_ARGUMENT, "armt_runtime_create: out must not be NULL");
        armt_err_free(&tmp);
        return ARMT_STATUS_INVALID_ARGUMENT;
    }
    *out = NULL;
    armt_runtime_params p = params ? *params : armt_runtime_default_params();
    const char *psel = nonempty(p.platform) ? p.platform : nonempty(getenv("ARMT_PLATFORM"));
    const char *dsel = nonempty(p.device) ? p.device : nonempty(getenv("ARMT_DEVICE"));
    const char *kdir = nonempty(p.kernel_dir) ? p.kernel_dir : nonempty(getenv("ARMT_KERNEL_DIR"));

    armt_runtime *rt = calloc(1, sizeof *rt);
    if (!rt) {
        armt_err_set(err, ARMT_STATUS_OUT_OF_HOST_MEMORY, "armt_runtime_create: out of host memory");
        armt_err_free(&tmp);
        return ARMT_STATUS_OUT_OF_HOST_MEMORY;
    }
    armt_err_init(&rt->err);
    pthread_mutex_init(&rt->lock, NULL);
    rt->profile = p.profile || (getenv("ARMT_PROFILE") && atoi(getenv("ARMT_PROFILE")) > 0);
    err = &rt->err;
    armt_err_free(&tmp);

    found_device *list = NULL;
    size_t n = 0, chosen = 0;
    armt_status st;
    ARMT_TRY_GOTO(enumerate(&list, err), fail);
    n = (size_t)arrlen(list);
    if (n == 0) {
        st = armt_err_set(err, ARMT_STATUS_NO_DEVICE,
                          "no OpenCL platform or device found (install a driver, e.g. pocl-opencl-icd for CPUs)");
        goto fail;
    }
    ARMT_TRY_GOTO(choose_device(psel, dsel, list, n, &chosen, err), fail);
    rt->platform = list[chosen].platform;
    rt->device = list[chosen].device;
    rt->info = list[chosen].info;
    arrfree(list);

    cl_int e;
    cl_context_properties props[] = {CL_CONTEXT_PLATFORM, (cl_context_properties)rt->platform, 0};
    rt->context = clCreateContext(props, 1, &rt->device, NULL, NULL, &e);
    if (e != CL_SUCCESS) {
        st = armt_err_cl(err, "clCreateContext", e);
        goto fail;
    }
    rt->queue = clCreateCommandQueue(rt->context, rt->device, 0, &e);
    if (e != CL_SUCCESS) {
        st = armt_err_cl(err, "clCreateCommandQueue", e);
        goto fail;
    }
    {
        const char *env_opts = nonempty(getenv("ARMT_CL_BUILD_OPTIONS"));
        char extra[2048];
        snprintf(extra, sizeof extra, "%s %s", env_opts ? env_opts : "", p.build_options ? p.build_options : "");
        rt->build_options = armt_cl_build_options(&rt->info, &rt->tune, extra);
        if (!rt->build_options) {
            st = armt_err_set(err, ARMT_STATUS_OUT_OF_HOST_MEMORY, "out of host memory");
            goto fail;
        }
    }
    if (kdir) {
        rt->kernel_dir = strdup(kdir);
        if (!rt->kernel_dir) {
            st = armt_err_set(err, ARMT_STATUS_OUT_OF_HOST_MEMORY, "out of host memory");
            goto fail;
        }
    }
    for (int i = 0; i < ARMT_P_COUNT; i++) {
        if (i == ARMT_P_ATTENTION) continue; /* built per model, see armt_model_build_attention */
        if (i == ARMT_P_GEMM_BF16) {
            ARMT_TRY_GOTO(gemm_program_build(rt, 0, &rt->programs[i], err), fail);
            if (rt->tune.mma_wgmma && rt->info.nv_compute_capability == 90)
                ARMT_TRY_GOTO(gemm_to_sm90a(rt, err), fail);
            continue;
        }
        if (i == ARMT_P_GEMM_NARROW) { /* after the main program: its fallback may have dropped the tiles */
            if (rt->tune.nv_mma && rt->tune.nar_bn) gemm_narrow_build(rt);
            continue;
        }
        ARMT_TRY_GOTO(armt_program_build(rt, (armt_program_id)i, NULL, &rt->programs[i], err), fail);
    }
    {
        /* every kernel of the table must exist: create and drop one set now */
        cl_kernel k[ARMT_K_COUNT];
        ARMT_TRY_GOTO(armt_kernels_create(rt, NULL, k, err), fail);
        armt_kernels_release(k);
    }
    armt_err_clear(err);
    {
        char gopts[512], nopts[512];
        armt_gemm_mma_options(&rt->tune, 0, gopts, sizeof gopts);
        armt_gemm_mma_options(&rt->tune, 1, nopts, sizeof nopts);
        armt_log(ARMT_LOG_INFO, "runtime: %s / %s, options: %s; bf16 GEMM tiles: %s; narrow tiles: %s",
                 rt->info.platform_name, rt->info.name, rt->build_options, gopts[0] ? gopts : "portable",
                 nopts[0] ? nopts : "none");
    }
    *out = rt;
    return ARMT_OK;

fail:
    arrfree(list);
    /* keep the message in the thread-local slot for the caller that has no handle */
    armt_err_set(NULL, st, "%s", armt_err_msg(&rt->err));
    armt_runtime_free(rt);
    return st;
}

armt_status armt_runtime_device_info(const armt_runtime *rt, armt_device_info *out) {
    if (!rt || !out) return armt_err_set(NULL, ARMT_STATUS_INVALID_ARGUMENT, "armt_runtime_device_info: NULL argument");
    *out = rt->info;
    return ARMT_OK;
}

const char *armt_runtime_build_options(const armt_runtime *rt) { return rt ? rt->build_options : ""; }
const char *armt_runtime_last_error(const armt_runtime *rt) { return rt ? armt_err_msg(&rt->err) : armt_last_error(); }

/* ======================================================================================================= */
/* Device memory accounting                                                                                */
/* ======================================================================================================= */

armt_status armt_device_fits(armt_runtime *rt, const size_t *sizes, size_t n, const char *what, armt_err *err) {
    uint64_t total = 0;
    for (size_t i = 0; i < n; i++) {
        if (rt->info.max_alloc_bytes && sizes[i] > rt->info.max_alloc_bytes)
            return armt_err_set(err, ARMT_STATUS_OUT_OF_DEVICE_MEMORY,
                                "%s: a buffer of %zu bytes exceeds the device's maximum allocation of %llu bytes",
                                what, sizes[i], (unsigned long long)rt->info.max_alloc_bytes);
        total += sizes[i];
    }
    pthread_mutex_lock(&rt->lock);
    uint64_t have = rt->device_bytes;
    pthread_mutex_unlock(&rt->lock);
    if (rt->info.global_mem_bytes && have + total > rt->info.global_mem_bytes)
        return armt_err_set(err, ARMT_STATUS_OUT_OF_DEVICE_MEMORY,
                            "%s: needs %llu bytes of device memory, %llu of %llu available",
                            what, (unsigned long long)total,
                            (unsigned long long)(rt->info.global_mem_bytes - have),
                            (unsigned long long)rt->info.global_mem_bytes);
    return ARMT_OK;
}

armt_status armt_buffer_create(armt_runtime *rt, size_t bytes, cl_mem *out, const char *what, armt_err *err) {
    *out = NULL;
    if (bytes == 0) bytes = 4;
    ARMT_TRY(armt_device_fits(rt, &bytes, 1, what, err));
    cl_int e;
    cl_mem m = clCreateBuffer(rt->context, CL_MEM_READ_WRITE, bytes, NULL, &e);
    if (e != CL_SUCCESS) {
        armt_err_set(err, e == CL_OUT_OF_HOST_MEMORY ? ARMT_STATUS_OUT_OF_HOST_MEMORY : ARMT_STATUS_OUT_OF_DEVICE_MEMORY,
                     "clCreateBuffer(%zu bytes) for %s failed: %s (%d)", bytes, what, armt_cl_error_str(e), e);
        return err->status;
    }
    pthread_mutex_lock(&rt->lock);
    rt->device_bytes += bytes;
    if (rt->device_bytes > rt->peak_bytes) rt->peak_bytes = rt->device_bytes;
    pthread_mutex_unlock(&rt->lock);
    *out = m;
    return ARMT_OK;
}

void armt_buffer_release(armt_runtime *rt, cl_mem *buf, size_t bytes) {
    if (!*buf) return;
    if (bytes == 0) bytes = 4;
    clReleaseMemObject(*buf);
    *buf = NULL;
    pthread_mutex_lock(&rt->lock);
    rt->device_bytes -= bytes < rt->device_bytes ? bytes : rt->device_bytes;
    pthread_mutex_unlock(&rt->lock);
}

/* ======================================================================================================= */
/* Launch                                                                                                  */
/* ======================================================================================================= */

/* Fault injection for tests: after this many more launches, one launch fails with CL_OUT_OF_RESOURCES (as
 * a device does when memory runs out at enqueue time). -1: off. Set by armt_fault_inject. */
static long fault_launches_left = -1;

void armt_fault_inject(long launches) { __atomic_store_n(&fault_launches_left, launches, __ATOMIC_SEQ_CST); }

armt_status armt_enqueue(cl_command_queue q, cl_kernel k, cl_uint dims, const size_t *gws, const size_t *lws,
                         uint64_t *counter, const char *what, cl_event *ev, armt_err *err) {
    if (ev) *ev = NULL;
    for (cl_uint i = 0; i < dims; i++)
        if (gws[i] == 0) return ARMT_OK; /* nothing to do */
    cl_int e;
    if (__atomic_load_n(&fault_launches_left, __ATOMIC_RELAXED) >= 0 &&
        __atomic_fetch_sub(&fault_launches_left, 1, __ATOMIC_SEQ_CST) == 0)
        e = CL_OUT_OF_RESOURCES;
    else
        e = clEnqueueNDRangeKernel(q, k, dims, NULL, gws, lws, 0, NULL, ev);
    if (e != CL_SUCCESS) {
        armt_status s = armt_err_cl(err, "clEnqueueNDRangeKernel", e);
        return armt_err_set(err, s, "clEnqueueNDRangeKernel(%s) failed: %s (%d)", what, armt_cl_error_str(e), e);
    }
    if (counter) (*counter)++;
    return ARMT_OK;
}
