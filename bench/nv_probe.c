/*
 * nv_probe.c - what NVIDIA's OpenCL lets a kernel have beyond OpenCL 1.2, asked of the device itself. The
 * bf16 GEMM (cl/gemm_bf16.cl) is held back by two limits of OpenCL on NVIDIA: 48 KiB of local memory per
 * work-group (cuBLAS uses up to 227 KiB) and no thread-block clusters (cuBLAS shares tiles between the SMs of
 * a cluster). This program tests both, so that the notes can say what is possible rather than guess:
 *
 *   1. dynamic local memory: a __local kernel argument of 48, 64, 96, 160 and 224 KiB; the kernel writes
 *      every word and reads it back reversed after a barrier (so the memory is really there);
 *   2. static local memory: a __local array of 64 KiB (build log);
 *   3. clusters: a kernel whose PTX gets ".reqnctapercluster 2, 1, 1" (lib/device/nv_ptx.c's entry
 *   directive) and
 *      that writes %cluster_ctarank, %clusterid.x and, through distributed shared memory (mapa +
 *      ld.shared::cluster after barrier.cluster), the value its peer stored in its own local memory.
 *
 *   nv_probe [--platform P] [--device D]     (exit 0: ran; each answer is printed as "yes" or "no" with why)
 */
#define CL_TARGET_OPENCL_VERSION 120
#include <CL/cl.h>

#include "device/nv_ptx.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *k_dyn =
    "__kernel void probe_dyn(__global uint *out, __local uint *buf, const uint n) {\n"
    "    const uint l = get_local_id(0), L = get_local_size(0);\n"
    "    for (uint i = l; i < n; i += L) buf[i] = i * 2654435761u;\n"
    "    barrier(CLK_LOCAL_MEM_FENCE);\n"
    "    uint bad = 0;\n"
    "    for (uint i = l; i < n; i += L) bad += buf[n - 1 - i] != (n - 1 - i) * 2654435761u;\n"
    "    out[get_global_id(0)] = bad;\n"
    "}\n";

static const char *k_static =
    "__kernel void probe_static(__global uint *out, const uint seed) {\n"
    "    __local uint buf[16384];\n"
    "    const uint l = get_local_id(0), L = get_local_size(0);\n"
    "    for (uint i = l; i < 16384; i += L) buf[i] = i * seed;\n"
    "    barrier(CLK_LOCAL_MEM_FENCE);\n"
    "    uint bad = 0;\n"
    "    for (uint i = l; i < 16384; i += L) bad += buf[16383 - i] != (16383 - i) * seed;\n"
    "    out[get_global_id(0)] = bad;\n"
    "}\n";

/* the marked lines become live in the rewrite (lib/device/nv_ptx.c); the fence is only there to have a
 * mark */
static const char *k_cluster =
    "__kernel __attribute__((reqd_work_group_size(64, 1, 1))) void probe_cluster(__global uint *out) {\n"
    "    __local uint mine[64];\n"
    "    uint rank = 77, cid = 77, peer = 77;\n"
    "    __asm__ __volatile__(\"//@sm90a-entry .reqnctapercluster 2, 1, 1\");\n"
    "    __asm__ __volatile__(\"//@sm90a fence.proxy.async.shared::cta;\" ::: \"memory\");\n"
    "    __asm__ __volatile__(\"//@sm90a mov.u32 %0, %%cluster_ctarank;\" : \"+r\"(rank));\n"
    "    __asm__ __volatile__(\"//@sm90a mov.u32 %0, %%clusterid.x;\" : \"+r\"(cid));\n"
    "    mine[get_local_id(0)] = 1000u * get_group_id(0) + get_local_id(0);\n"
    "    __asm__ __volatile__(\"//@sm90a barrier.cluster.arrive.release.aligned;\" ::: \"memory\");\n"
    "    __asm__ __volatile__(\"//@sm90a barrier.cluster.wait.acquire.aligned;\" ::: \"memory\");\n"
    "    __asm__ __volatile__(\"//@sm90a { .reg .u64 ga; .reg .u32 ra, rb; .reg .pred ps; mov.u64 ga, %1; "
    "isspacep.shared ps, ga; @ps cvta.to.shared.u64 ga, ga; cvt.u32.u64 ra, ga; "
    "mapa.shared::cluster.u32 rb, ra, %2; ld.shared::cluster.u32 %0, [rb]; }\" "
    ": \"+r\"(peer) : \"l\"((ulong)(mine + get_local_id(0))), \"r\"(rank ^ 1u) : \"memory\");\n"
    "    __asm__ __volatile__(\"//@sm90a barrier.cluster.arrive.release.aligned;\" ::: \"memory\");\n"
    "    __asm__ __volatile__(\"//@sm90a barrier.cluster.wait.acquire.aligned;\" ::: \"memory\");\n"
    "    const uint g = get_global_id(0);\n"
    "    out[3 * g] = rank, out[3 * g + 1] = cid, out[3 * g + 2] = peer;\n"
    "}\n";

static void print_log(cl_program p, cl_device_id d) {
    char *log = armt_build_log(p, d);
    if (!log) return;
    printf("    build log: %.600s\n", log);
    free(log);
}

static cl_program build(cl_context ctx, cl_device_id dev, const char *src, const char *opts, cl_int *err) {
    cl_program p = clCreateProgramWithSource(ctx, 1, &src, NULL, err);
    if (*err != CL_SUCCESS) return NULL;
    *err = clBuildProgram(p, 1, &dev, opts, NULL, NULL);
    return p;
}

int main(int argc, char **argv) {
    int pi = 0, di = 0;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--platform") && i + 1 < argc)
            pi = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--device") && i + 1 < argc)
            di = atoi(argv[++i]);
        else {
            printf("usage: nv_probe [--platform P] [--device D]\n");
            return strcmp(argv[i], "--help") ? 2 : 0;
        }
    }
    cl_platform_id ps[8];
    cl_uint np = 0;
    if (clGetPlatformIDs(8, ps, &np) != CL_SUCCESS || (cl_uint)pi >= np)
        return printf("no platform %d\n", pi), 77;
    cl_device_id ds[8];
    cl_uint nd = 0;
    if (clGetDeviceIDs(ps[pi], CL_DEVICE_TYPE_ALL, 8, ds, &nd) != CL_SUCCESS || (cl_uint)di >= nd)
        return printf("no device %d\n", di), 77;
    cl_device_id dev = ds[di];
    char name[256] = "";
    cl_ulong lmem = 0;
    clGetDeviceInfo(dev, CL_DEVICE_NAME, sizeof name, name, NULL);
    clGetDeviceInfo(dev, CL_DEVICE_LOCAL_MEM_SIZE, sizeof lmem, &lmem, NULL);
    printf("device: %s, CL_DEVICE_LOCAL_MEM_SIZE %llu bytes\n", name, (unsigned long long)lmem);
    cl_int e;
    cl_context ctx = clCreateContext(NULL, 1, &dev, NULL, NULL, &e);
    cl_command_queue q = clCreateCommandQueue(ctx, dev, 0, &e);
    cl_mem out = clCreateBuffer(ctx, CL_MEM_READ_WRITE, 3 * 4 * 1024, NULL, &e);
    uint32_t host[3 * 1024];

    /* 1. dynamic local memory */
    cl_program p = build(ctx, dev, k_dyn, "", &e);
    cl_kernel k = p && e == CL_SUCCESS ? clCreateKernel(p, "probe_dyn", &e) : NULL;
    const size_t kib[] = {48, 64, 96, 160, 224};
    for (size_t t = 0; k && t < sizeof kib / sizeof *kib; t++) {
        const cl_uint n = (cl_uint)(kib[t] * 256);
        size_t g = 256, l = 256;
        clSetKernelArg(k, 0, sizeof out, &out);
        e = clSetKernelArg(k, 1, kib[t] * 1024, NULL);
        clSetKernelArg(k, 2, sizeof n, &n);
        if (e == CL_SUCCESS) e = clEnqueueNDRangeKernel(q, k, 1, NULL, &g, &l, 0, NULL, NULL);
        if (e == CL_SUCCESS) e = clFinish(q);
        if (e == CL_SUCCESS) e = clEnqueueReadBuffer(q, out, CL_TRUE, 0, 4 * 256, host, 0, NULL, NULL);
        uint32_t bad = 0;
        for (int i = 0; e == CL_SUCCESS && i < 256; i++)
            bad += host[i];
        printf("dynamic __local argument of %3zu KiB: %s", kib[t], e == CL_SUCCESS && !bad ? "yes" : "no");
        if (e != CL_SUCCESS)
            printf(" (error %d)", e);
        else if (bad)
            printf(" (%u words read back wrong)", bad);
        printf("\n");
    }
    if (k) clReleaseKernel(k);
    if (p) clReleaseProgram(p);

    /* 2. static local memory over 48 KiB */
    p = build(ctx, dev, k_static, "", &e);
    printf("static __local array of 64 KiB: %s (build %d)\n", e == CL_SUCCESS ? "builds" : "refused", e);
    if (e != CL_SUCCESS && p) print_log(p, dev);
    if (e == CL_SUCCESS) {
        k = clCreateKernel(p, "probe_static", &e);
        size_t g = 256, l = 256;
        const cl_uint seed = 2654435761u;
        if (e == CL_SUCCESS) clSetKernelArg(k, 0, sizeof out, &out), clSetKernelArg(k, 1, sizeof seed, &seed);
        if (e == CL_SUCCESS) e = clEnqueueNDRangeKernel(q, k, 1, NULL, &g, &l, 0, NULL, NULL);
        if (e == CL_SUCCESS) e = clFinish(q);
        if (e == CL_SUCCESS) e = clEnqueueReadBuffer(q, out, CL_TRUE, 0, 4 * 256, host, 0, NULL, NULL);
        uint32_t bad = 0;
        for (int i = 0; e == CL_SUCCESS && i < 256; i++)
            bad += host[i];
        printf("  ... and runs, every word read back right: %s (%d, %u wrong)\n",
               e == CL_SUCCESS && !bad ? "yes" : "no", e, bad);
        if (k) clReleaseKernel(k);
    }
    if (p) clReleaseProgram(p);

    /* 3. clusters of 2 work-groups, distributed shared memory */
    p = build(ctx, dev, k_cluster, "", &e);
    if (e != CL_SUCCESS) {
        printf("cluster kernel: source build failed (%d)\n", e);
        if (p) print_log(p, dev);
    } else {
        cl_program p2 = NULL;
        e = armt_nv_rebuild_sm90a(ctx, dev, p, "", &p2);
        printf("cluster kernel: sm_90a rebuild with .reqnctapercluster 2,1,1: %s (%d)\n",
               e == CL_SUCCESS ? "built" : "failed", e);
        if (e != CL_SUCCESS && p2) print_log(p2, dev);
        if (e == CL_SUCCESS) {
            k = clCreateKernel(p2, "probe_cluster", &e);
            size_t g = 64 * 8, l = 64;
            if (e == CL_SUCCESS) clSetKernelArg(k, 0, sizeof out, &out);
            if (e == CL_SUCCESS) e = clEnqueueNDRangeKernel(q, k, 1, NULL, &g, &l, 0, NULL, NULL);
            if (e == CL_SUCCESS) e = clFinish(q);
            if (e == CL_SUCCESS)
                e = clEnqueueReadBuffer(q, out, CL_TRUE, 0, 3 * 4 * 64 * 8, host, 0, NULL, NULL);
            if (e != CL_SUCCESS) {
                printf("  launch: failed (%d)\n", e);
            } else {
                int ok = 1;
                for (int wg = 0; wg < 8; wg++) {
                    const uint32_t *r = host + 3 * 64 * wg;
                    const uint32_t want_peer = 1000u * (uint32_t)(wg ^ 1);
                    printf("  work-group %d: cluster rank %u, cluster id %u, peer's word %u (want %u)\n", wg,
                           r[0], r[1], r[2], want_peer);
                    ok &= r[0] == (uint32_t)(wg & 1) && r[1] == (uint32_t)(wg / 2) && r[2] == want_peer;
                }
                printf("clusters of 2 with distributed shared memory: %s\n", ok ? "yes" : "no");
            }
            if (k) clReleaseKernel(k);
        }
        if (p2) clReleaseProgram(p2);
    }
    if (p) clReleaseProgram(p);
    clReleaseMemObject(out);
    clReleaseCommandQueue(q);
    clReleaseContext(ctx);
    return 0;
}
