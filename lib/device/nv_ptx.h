/* nv_ptx.h - PTX rewriting for Hopper wgmma from OpenCL (see nv_ptx.c). */
#ifndef ARMT_NV_PTX_H
#define ARMT_NV_PTX_H

#include <stddef.h>

#ifndef CL_TARGET_OPENCL_VERSION
#define CL_TARGET_OPENCL_VERSION 120
#endif
#include <CL/cl.h>

/* The prefix of a PTX comment that holds an sm_90a instruction (kernels: cl/gemm_mma_warp.cl). */
#define ARMT_SM90A_MARK "//@sm90a "
/* The prefix of a PTX comment, inside a kernel's body, that holds a performance directive of that kernel's
 * entry (e.g. ".maxnreg 168"): the rewrite moves it in front of the body's opening brace. */
#define ARMT_SM90A_ENTRY_MARK "//@sm90a-entry "

/* A malloc'd, NUL-terminated copy of ptx[0..len) with every ARMT_SM90A_MARK removed (the instructions
 * behind it become live), every ARMT_SM90A_ENTRY_MARK line's directive moved to its entry's header,
 * ".target sm_90" made ".target sm_90a" and a ".version" below 8.0 raised to 8.0.
 * NULL when there is no mark, the module does not target sm_90, or memory runs out. */
char *armt_ptx_to_sm90a(const char *ptx, size_t len, size_t *out_len);

/* From a program built from source (NVIDIA: its binary is PTX), a second program: that PTX rewritten by
 * armt_ptx_to_sm90a and built with options. *out is set when it was created (also when its build failed:
 * read its log, then release it). CL_INVALID_BINARY when the PTX has nothing to rewrite. */
cl_int armt_nv_rebuild_sm90a(cl_context ctx, cl_device_id dev, cl_program built, const char *options,
                             cl_program *out);

/* The build log of program p on device d, NUL-terminated and malloc'ed (the caller frees it); NULL when
 * there is none or memory ran out. */
char *armt_build_log(cl_program p, cl_device_id d);

#endif
