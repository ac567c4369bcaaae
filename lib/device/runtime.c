/*
 * runtime.c - platforms and devices, device choice, the OpenCL context with its tuning and programs
 * (tune.c, programs.c), and device-memory accounting.
 */
#include "config.h"

#include "device/internal.h"
#include "device/clblast.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <stb/stb_ds.h>

/* ======================================================================================================= */
/* Small helpers                                                                                           */
/* ======================================================================================================= */

static int ci_contains(const char *hay, const char *needle) {
    size_t n = strlen(needle);
    for (; *hay; hay++) {
        size_t i = 0;
        while (i < n && hay[i] && tolower((unsigned char)hay[i]) == tolower((unsigned char)needle[i]))
            i++;
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
    if (clGetDeviceInfo(d, CL_DEVICE_MAX_COMPUTE_UNITS, sizeof cu, &cu, NULL) == CL_SUCCESS)
        o->compute_units = cu;
    if (clGetDeviceInfo(d, CL_DEVICE_GLOBAL_MEM_SIZE, sizeof u, &u, NULL) == CL_SUCCESS)
        o->global_mem_bytes = u;
    if (clGetDeviceInfo(d, CL_DEVICE_MAX_MEM_ALLOC_SIZE, sizeof u, &u, NULL) == CL_SUCCESS)
        o->max_alloc_bytes = u;
    if (clGetDeviceInfo(d, CL_DEVICE_LOCAL_MEM_SIZE, sizeof u, &u, NULL) == CL_SUCCESS)
        o->local_mem_bytes = u;
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
    cl_platform_id platform;
    cl_device_id device;
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
    for (size_t i = 0; i < n; i++)
        infos[i] = list[i].info;
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
/* Runtime create / free                                                                                   */
/* ======================================================================================================= */

armt_runtime_params armt_runtime_default_params(void) {
    armt_runtime_params p;
    memset(&p, 0, sizeof p);
    return p;
}

static const char *nonempty(const char *s) { return (s && *s) ? s : NULL; }

/* A tensor-core switch from the environment (auto, off, on, emulate), where the params left it AUTO. */
static armt_status env_switch(const char *name, armt_tensor_cores *v, armt_err *err) {
    static const char *const words[] = {"auto", "off", "on", "emulate"};
    const char *s = nonempty(getenv(name));
    if (!s || *v != ARMT_TC_AUTO) return ARMT_OK;
    for (int i = 0; i < 4; i++)
        if (strcmp(s, words[i]) == 0) {
            *v = (armt_tensor_cores)i;
            return ARMT_OK;
        }
    return armt_err_set(err, ARMT_STATUS_INVALID_ARGUMENT, "$%s is \"%s\": want auto, off, on or emulate",
                        name, s);
}

/* The fp32 GEMM choice from $ARMT_FP32_GEMM (auto, clblast, tf32x3), where the params left it AUTO. */
static armt_status env_fp32_gemm(armt_fp32_gemm *v, armt_err *err) {
    static const char *const words[] = {"auto", "clblast", "tf32x3"};
    const char *s = nonempty(getenv("ARMT_FP32_GEMM"));
    if (!s || *v != ARMT_FP32_GEMM_AUTO) return ARMT_OK;
    for (int i = 0; i < 3; i++)
        if (strcmp(s, words[i]) == 0) {
            *v = (armt_fp32_gemm)i;
            return ARMT_OK;
        }
    return armt_err_set(err, ARMT_STATUS_INVALID_ARGUMENT,
                        "$ARMT_FP32_GEMM is \"%s\": want auto, clblast or tf32x3", s);
}

/* The GEMV's lanes per column pair from $ARMT_GEMV_LANES (auto, 32, 64, 128): a measurement knob. */
static armt_status env_gemv_lanes(int *v, armt_err *err) {
    const char *s = nonempty(getenv("ARMT_GEMV_LANES"));
    if (!s || strcmp(s, "auto") == 0) return ARMT_OK;
    if (strcmp(s, "32") == 0 || strcmp(s, "64") == 0 || strcmp(s, "128") == 0) {
        *v = atoi(s);
        return ARMT_OK;
    }
    return armt_err_set(err, ARMT_STATUS_INVALID_ARGUMENT,
                        "$ARMT_GEMV_LANES is \"%s\": want auto, 32, 64 or 128", s);
}

/* The split of k in a batch's decode rounds (lib/compute/generate_batch.c) and in the 3xTF32 GEMMs
 * (lib/compute/gemm.c) from $ARMT_SPLITK (auto, the default: by the launch's work-groups, or one entry's
 * tiles; 1 = none; 2, 4, 8, 16 forced where a slice keeps whole k stages): a measurement and test knob. */
static armt_status env_splitk(int *v, armt_err *err) {
    const char *s = nonempty(getenv("ARMT_SPLITK"));
    if (!s) return ARMT_OK;
    if (strcmp(s, "auto") == 0) {
        *v = 0;
        return ARMT_OK;
    }
    if (strcmp(s, "1") == 0 || strcmp(s, "2") == 0 || strcmp(s, "4") == 0 || strcmp(s, "8") == 0 ||
        strcmp(s, "16") == 0) {
        *v = atoi(s);
        return ARMT_OK;
    }
    return armt_err_set(err, ARMT_STATUS_INVALID_ARGUMENT,
                        "$ARMT_SPLITK is \"%s\": want auto, 1, 2, 4, 8 or 16", s);
}

/* An integer knob from the environment: unset leaves *v; else a whole number from lo to hi ("want"
 * describes it in the error) */
static armt_status env_int(const char *name, long lo, long hi, const char *want, int *v, armt_err *err) {
    const char *s = nonempty(getenv(name));
    if (!s) return ARMT_OK;
    char *end = NULL;
    errno = 0;
    long r = strtol(s, &end, 10);
    if (errno || end == s || *end || r < lo || r > hi)
        return armt_err_set(err, ARMT_STATUS_INVALID_ARGUMENT, "$%s is \"%s\": want %s from %ld to %ld", name,
                            s, want, lo, hi);
    *v = (int)r;
    return ARMT_OK;
}

void armt_runtime_free(armt_runtime *rt) {
    if (!rt) return;
    for (int i = 0; i < ARMT_P_COUNT; i++)
        if (rt->programs[i]) clReleaseProgram(rt->programs[i]);
    if (rt->queue) clReleaseCommandQueue(rt->queue);
    if (rt->context) clReleaseContext(rt->context);
    free(rt->build_options);
    free(rt->cl_passthrough);
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
        st = armt_err_set(
            err, ARMT_STATUS_NO_DEVICE,
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
        armt_tune_options to = {p.tensor_cores, p.wgmma, p.attention, p.fp32_gemm, 0, 0, 0, 0, -1, -1, 0};
        ARMT_TRY_GOTO(env_switch("ARMT_TENSOR_CORES", &to.tensor_cores, err), fail);
        ARMT_TRY_GOTO(env_switch("ARMT_WGMMA", &to.wgmma, err), fail);
        ARMT_TRY_GOTO(env_fp32_gemm(&to.fp32_gemm, err), fail);
        ARMT_TRY_GOTO(env_gemv_lanes(&to.gemv_lanes, err), fail);
        /* (work-groups per compute unit the GEMV's lanes heuristic aims at: a measurement knob) */
        ARMT_TRY_GOTO(env_int("ARMT_GEMV_WGS", 1, 64, "work-groups per compute unit", &to.gemv_wgs, err),
                      fail);
        ARMT_TRY_GOTO(env_splitk(&to.splitk, err), fail);
        /* (the 3xTF32 GEMMs' auto split-k: none, by the estimated time, one wave; a measurement knob) */
        ARMT_TRY_GOTO(
            env_int("ARMT_SPLITK_RULE", 0, 2, "0 (none), 1 (time) or 2 (one wave)", &to.splitk_rule, err),
            fail);
        /* (rows per block of the full schedule's MLP) */
        ARMT_TRY_GOTO(env_int("ARMT_MLP_ROWS", 1, INT32_MAX, "a number of rows", &to.mlp_rows, err), fail);
        /* (layers of a decode token between queue flushes; 0: none) */
        ARMT_TRY_GOTO(env_int("ARMT_DECODE_FLUSH", 0, 4096, "a number of layers", &to.decode_flush, err),
                      fail);
        /* (a decode token's attention combine in its own launch (0) or the attention's (1)) */
        ARMT_TRY_GOTO(env_int("ARMT_DECODE_FUSE", 0, 1, "a switch", &to.decode_fuse, err), fail);
        ARMT_TRY_GOTO(armt_tune_device(&rt->info, &to, &rt->tune, err), fail);
        ARMT_TRY_GOTO(armt_clblast_tune(rt, &rt->clblast_tuned, err), fail);
        char opts[256];
        armt_tune_common_options(&rt->tune, opts, sizeof opts);
        rt->build_options = strdup(opts);
        /* developer pass-through: passed on to the compiler, never read here */
        const char *env_opts = nonempty(getenv("ARMT_CL_BUILD_OPTIONS")), *popts = nonempty(p.build_options);
        if (env_opts || popts) {
            const size_t len = (env_opts ? strlen(env_opts) : 0) + (popts ? strlen(popts) : 0) + 2;
            rt->cl_passthrough = malloc(len);
            if (rt->cl_passthrough)
                snprintf(rt->cl_passthrough, len, "%s%s%s", env_opts ? env_opts : "",
                         env_opts && popts ? " " : "", popts ? popts : "");
        }
        if (!rt->build_options || ((env_opts || popts) && !rt->cl_passthrough)) {
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
    ARMT_TRY_GOTO(armt_programs_build(rt, err), fail);
    armt_err_clear(err);
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
    if (!rt || !out)
        return armt_err_set(NULL, ARMT_STATUS_INVALID_ARGUMENT, "armt_runtime_device_info: NULL argument");
    *out = rt->info;
    return ARMT_OK;
}

const char *armt_runtime_build_options(const armt_runtime *rt) { return rt ? rt->build_options : ""; }
const char *armt_runtime_last_error(const armt_runtime *rt) {
    return rt ? armt_err_msg(&rt->err) : armt_last_error();
}

/* ======================================================================================================= */
/* Device memory accounting                                                                                */
/* ======================================================================================================= */

armt_status armt_device_fits(armt_runtime *rt, const size_t *sizes, size_t n, const char *what,
                             armt_err *err) {
    uint64_t total = 0;
    for (size_t i = 0; i < n; i++) {
        if (rt->info.max_alloc_bytes && sizes[i] > rt->info.max_alloc_bytes)
            return armt_err_set(
                err, ARMT_STATUS_OUT_OF_DEVICE_MEMORY,
                "%s: a buffer of %zu bytes exceeds the device's maximum allocation of %llu bytes", what,
                sizes[i], (unsigned long long)rt->info.max_alloc_bytes);
        total += sizes[i];
    }
    pthread_mutex_lock(&rt->lock);
    uint64_t have = rt->device_bytes;
    pthread_mutex_unlock(&rt->lock);
    if (rt->info.global_mem_bytes && have + total > rt->info.global_mem_bytes)
        return armt_err_set(err, ARMT_STATUS_OUT_OF_DEVICE_MEMORY,
                            "%s: needs %llu bytes of device memory, %llu of %llu available", what,
                            (unsigned long long)total, (unsigned long long)(rt->info.global_mem_bytes - have),
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
        armt_err_set(
            err,
            e == CL_OUT_OF_HOST_MEMORY ? ARMT_STATUS_OUT_OF_HOST_MEMORY : ARMT_STATUS_OUT_OF_DEVICE_MEMORY,
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
