/*
 * oclgrind_hostops.c - buffers as Oclgrind's uninitialised-value tracking can follow them, linked into
 * tests/oclgrind_driver only (make check-oclgrind).
 *
 * Oclgrind's Uninitialized plugin (Debian's 21.10; upstream's src/plugins/Uninitialized.cpp is unchanged
 * there as of 26.03) keeps a shadow per buffer that two things break:
 *  1. Every host store into a buffer replaces its shadow with a new one the size of that store
 *     (Uninitialized::hostMemoryStore allocates at the store's address). A clEnqueueFillBuffer stores its
 *     pattern n times and leaves a shadow of pattern size; a clEnqueueWriteBuffer or clEnqueueCopyBuffer
 *     into part of a buffer throws away what was known of the rest. Only a store of a whole buffer at
 *     offset 0 comes out right. The library zeroes its memory state by fills, writes its token ids per
 *     call at an offset and copies rows into the generation's KV cache: every kernel reading them would
 *     be reported.
 *  2. A freed buffer's shadow is never dropped (the plugin has no memoryDeallocated), and Oclgrind hands
 *     the freed buffer's index to the next clCreateBuffer: the new buffer inherits the old shadow, its
 *     size included, so stores past that size are not recorded and later reads report (the scratch the
 *     library grows and releases, CLBlast's temporary buffers).
 * Each is a wrong report about a correct kernel. So this file defines, for the driver's process (the
 * library and CLBlast in it included): clCreateBuffer, which keeps one extra reference to every buffer so
 * that none is freed and no index is reused (the driver's buffers are tiny); and clEnqueueFillBuffer,
 * clEnqueueWriteBuffer and clEnqueueCopyBuffer, where anything but a whole-buffer write at offset 0 (passed
 * to the real call, dlsym RTLD_NEXT) is done by small kernels, whose stores Oclgrind tracks exactly: a write
 * goes whole into a temporary buffer first and is copied from there, a copy carries its source's shadow
 * along. Nothing is marked initialised that the real call would not initialise, so the kernels' reads of
 * memory nobody wrote still report. ARMT_OCLGRIND_RAW_HOSTOPS=1 (or a list of "fill", "write", "copy",
 * "free") passes the calls through, to see the tool's wrong reports. It also records the kernels launched
 * (oclgrind_hostops_launched), for the driver's coverage report. Single-threaded use (the driver).
 */
#define _GNU_SOURCE
#include "config.h"

#ifndef CL_TARGET_OPENCL_VERSION
#define CL_TARGET_OPENCL_VERSION 120
#endif
#ifdef __APPLE__
#include <OpenCL/opencl.h>
#else
#include <CL/cl.h>
#endif

#include <dlfcn.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static const char *hostops_source =
    "__kernel void armt_hostops_copy4(__global uint *dst, const ulong doff, __global const uint *src,\n"
    "                                 const ulong soff, const ulong n) {\n"
    "    const ulong i = get_global_id(0);\n"
    "    if (i < n) dst[doff + i] = src[soff + i];\n"
    "}\n"
    "__kernel void armt_hostops_copy1(__global uchar *dst, const ulong doff, __global const uchar *src,\n"
    "                                 const ulong soff, const ulong n) {\n"
    "    const ulong i = get_global_id(0);\n"
    "    if (i < n) dst[doff + i] = src[soff + i];\n"
    "}\n"
    "__kernel void armt_hostops_fill(__global uchar *dst, const ulong off, __global const uchar *pat,\n"
    "                                const uint psize, const ulong n) {\n"
    "    const ulong i = get_global_id(0);\n"
    "    if (i < n) dst[off + i] = pat[i % psize];\n"
    "}\n";

typedef cl_int (*fill_fn)(cl_command_queue, cl_mem, const void *, size_t, size_t, size_t, cl_uint,
                          const cl_event *, cl_event *);
typedef cl_int (*write_fn)(cl_command_queue, cl_mem, cl_bool, size_t, size_t, const void *, cl_uint,
                           const cl_event *, cl_event *);
typedef cl_int (*launch_fn)(cl_command_queue, cl_kernel, cl_uint, const size_t *, const size_t *,
                            const size_t *, cl_uint, const cl_event *, cl_event *);
typedef cl_mem (*create_fn)(cl_context, cl_mem_flags, size_t, void *, cl_int *);
typedef cl_int (*copy_fn)(cl_command_queue, cl_mem, cl_mem, size_t, size_t, size_t, cl_uint, const cl_event *,
                          cl_event *);

static struct {
    cl_context context;
    cl_program program;
    cl_kernel copy4, copy1, fill;
} cache[4];

/* ARMT_OCLGRIND_RAW_HOSTOPS: "1" (every call) or a list naming "fill", "write", "copy" */
static int raw(const char *op) {
    const char *v = getenv("ARMT_OCLGRIND_RAW_HOSTOPS");
    return v && (strcmp(v, "1") == 0 || strstr(v, op) != NULL);
}

static void *real(const char *name) { return dlsym(RTLD_NEXT, name); }

static size_t mem_size(cl_mem m) {
    size_t n = 0;
    return clGetMemObjectInfo(m, CL_MEM_SIZE, sizeof n, &n, NULL) == CL_SUCCESS ? n : 0;
}

/* The kernels for the queue's context (built once). */
static int kernels(cl_command_queue q, cl_kernel *copy4, cl_kernel *copy1, cl_kernel *fill) {
    cl_context c = NULL;
    cl_device_id d = NULL;
    if (clGetCommandQueueInfo(q, CL_QUEUE_CONTEXT, sizeof c, &c, NULL) != CL_SUCCESS ||
        clGetCommandQueueInfo(q, CL_QUEUE_DEVICE, sizeof d, &d, NULL) != CL_SUCCESS)
        return -1;
    size_t i = 0;
    while (i < sizeof cache / sizeof cache[0] && cache[i].context && cache[i].context != c)
        i++;
    if (i == sizeof cache / sizeof cache[0]) return -1;
    if (!cache[i].context) {
        cl_int e;
        cl_program p = clCreateProgramWithSource(c, 1, &hostops_source, NULL, &e);
        if (e != CL_SUCCESS) return -1;
        if (clBuildProgram(p, 1, &d, "", NULL, NULL) != CL_SUCCESS) {
            clReleaseProgram(p);
            return -1;
        }
        cache[i].copy4 = clCreateKernel(p, "armt_hostops_copy4", &e);
        if (e == CL_SUCCESS) cache[i].copy1 = clCreateKernel(p, "armt_hostops_copy1", &e);
        if (e == CL_SUCCESS) cache[i].fill = clCreateKernel(p, "armt_hostops_fill", &e);
        if (e != CL_SUCCESS) return -1;
        cache[i].program = p;
        cache[i].context = c; /* (kept for the process's life, like the context it serves) */
    }
    *copy4 = cache[i].copy4;
    *copy1 = cache[i].copy1;
    *fill = cache[i].fill;
    return 0;
}

static cl_int launch(cl_command_queue q, cl_kernel k, size_t n, cl_uint nw, const cl_event *wait,
                     cl_event *ev) {
    size_t g = (n + 63) / 64 * 64;
    return clEnqueueNDRangeKernel(q, k, 1, NULL, &g, NULL, nw, wait, ev);
}

/* dst[doff, doff + n) = src[soff, soff + n) by a kernel */
static cl_int kernel_copy(cl_command_queue q, cl_mem src, cl_mem dst, size_t soff, size_t doff, size_t n,
                          cl_uint nw, const cl_event *wait, cl_event *ev) {
    cl_kernel copy4, copy1, fill;
    if (kernels(q, &copy4, &copy1, &fill) != 0) return CL_OUT_OF_RESOURCES;
    const int w4 = soff % 4 == 0 && doff % 4 == 0 && n % 4 == 0;
    cl_kernel k = w4 ? copy4 : copy1;
    const cl_ulong d = w4 ? doff / 4 : doff, s = w4 ? soff / 4 : soff, cnt = w4 ? n / 4 : n;
    cl_int e = clSetKernelArg(k, 0, sizeof dst, &dst);
    if (e == CL_SUCCESS) e = clSetKernelArg(k, 1, sizeof d, &d);
    if (e == CL_SUCCESS) e = clSetKernelArg(k, 2, sizeof src, &src);
    if (e == CL_SUCCESS) e = clSetKernelArg(k, 3, sizeof s, &s);
    if (e == CL_SUCCESS) e = clSetKernelArg(k, 4, sizeof cnt, &cnt);
    return e == CL_SUCCESS ? launch(q, k, (size_t)cnt, nw, wait, ev) : e;
}

/* A temporary buffer holding n host bytes, written whole at offset 0 (which Oclgrind records correctly). */
static cl_mem staged(cl_command_queue q, const void *ptr, size_t n, cl_uint nw, const cl_event *wait,
                     cl_int *e) {
    cl_context c = NULL;
    *e = clGetCommandQueueInfo(q, CL_QUEUE_CONTEXT, sizeof c, &c, NULL);
    if (*e != CL_SUCCESS) return NULL;
    cl_mem t = clCreateBuffer(c, CL_MEM_READ_ONLY, n, NULL, e);
    if (*e != CL_SUCCESS) return NULL;
    *e = ((write_fn)real("clEnqueueWriteBuffer"))(q, t, CL_TRUE, 0, n, ptr, nw, wait, NULL);
    if (*e != CL_SUCCESS) {
        clReleaseMemObject(t);
        return NULL;
    }
    return t;
}

cl_int clEnqueueWriteBuffer(cl_command_queue q, cl_mem buf, cl_bool blocking, size_t off, size_t n,
                            const void *ptr, cl_uint nw, const cl_event *wait, cl_event *ev) {
    write_fn f = (write_fn)real("clEnqueueWriteBuffer");
    if (raw("write") || (off == 0 && n == mem_size(buf)) || n == 0)
        return f(q, buf, blocking, off, n, ptr, nw, wait, ev);
    cl_int e;
    cl_mem t = staged(q, ptr, n, nw, wait, &e); /* blocking: the host data is copied once this returns */
    if (!t) return e;
    e = kernel_copy(q, t, buf, 0, off, n, 0, NULL, ev);
    if (e == CL_SUCCESS && blocking) e = clFinish(q);
    clReleaseMemObject(t);
    return e;
}

cl_int clEnqueueCopyBuffer(cl_command_queue q, cl_mem src, cl_mem dst, size_t soff, size_t doff, size_t n,
                           cl_uint nw, const cl_event *wait, cl_event *ev) {
    if (raw("copy") || n == 0)
        return ((copy_fn)real("clEnqueueCopyBuffer"))(q, src, dst, soff, doff, n, nw, wait, ev);
    return kernel_copy(q, src, dst, soff, doff, n, nw, wait, ev);
}

cl_int clEnqueueFillBuffer(cl_command_queue q, cl_mem buf, const void *pat, size_t psize, size_t off,
                           size_t n, cl_uint nw, const cl_event *wait, cl_event *ev) {
    if (raw("fill") || n == 0)
        return ((fill_fn)real("clEnqueueFillBuffer"))(q, buf, pat, psize, off, n, nw, wait, ev);
    cl_kernel copy4, copy1, fill;
    if (kernels(q, &copy4, &copy1, &fill) != 0) return CL_OUT_OF_RESOURCES;
    cl_int e;
    cl_mem t = staged(q, pat, psize, nw, wait, &e);
    if (!t) return e;
    const cl_ulong o = off, cnt = n;
    const cl_uint ps = (cl_uint)psize;
    e = clSetKernelArg(fill, 0, sizeof buf, &buf);
    if (e == CL_SUCCESS) e = clSetKernelArg(fill, 1, sizeof o, &o);
    if (e == CL_SUCCESS) e = clSetKernelArg(fill, 2, sizeof t, &t);
    if (e == CL_SUCCESS) e = clSetKernelArg(fill, 3, sizeof ps, &ps);
    if (e == CL_SUCCESS) e = clSetKernelArg(fill, 4, sizeof cnt, &cnt);
    if (e == CL_SUCCESS) e = launch(q, fill, n, 0, NULL, ev);
    clReleaseMemObject(t);
    return e;
}

cl_mem clCreateBuffer(cl_context c, cl_mem_flags flags, size_t n, void *host, cl_int *err) {
    cl_mem m = ((create_fn)real("clCreateBuffer"))(c, flags, n, host, err);
    if (m && !raw("free")) clRetainMemObject(m); /* never freed: its shadow is never handed to another */
    return m;
}

/* The kernels launched in this process (their function names), for the driver's coverage report: the
 * profile shows a forward's kernels only, not those of a generation's KV-cache steps. */
static char launched[64][64];
static size_t n_launched;

size_t oclgrind_hostops_launched(const char **names, size_t cap); /* (tests/oclgrind_driver.c) */

size_t oclgrind_hostops_launched(const char **names, size_t cap) {
    for (size_t i = 0; i < n_launched && i < cap; i++)
        names[i] = launched[i];
    return n_launched;
}

cl_int clEnqueueNDRangeKernel(cl_command_queue q, cl_kernel k, cl_uint dims, const size_t *off,
                              const size_t *gws, const size_t *lws, cl_uint nw, const cl_event *wait,
                              cl_event *ev) {
    char name[64] = "";
    if (clGetKernelInfo(k, CL_KERNEL_FUNCTION_NAME, sizeof name, name, NULL) == CL_SUCCESS) {
        size_t i = 0;
        while (i < n_launched && strcmp(launched[i], name) != 0)
            i++;
        if (i == n_launched && n_launched < sizeof launched / sizeof launched[0])
            memcpy(launched[n_launched++], name, sizeof name);
    }
    return ((launch_fn)real("clEnqueueNDRangeKernel"))(q, k, dims, off, gws, lws, nw, wait, ev);
}
