/*
 * status.c - status strings, OpenCL/CLBlast error names, error records, the log callback, the version.
 */
#include "config.h"

#include "common/error.h"

#include <CL/cl.h>
#include <clblast_c.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---------------------------------------------------------------------------------------------------- */
/* Status strings                                                                                       */
/* ---------------------------------------------------------------------------------------------------- */

const char *armt_status_str(armt_status s) {
    switch (s) {
    case ARMT_OK: return "success";
    case ARMT_STATUS_INVALID_ARGUMENT: return "invalid argument";
    case ARMT_STATUS_NO_DEVICE: return "no OpenCL device";
    case ARMT_STATUS_OPENCL_ERROR: return "OpenCL error";
    case ARMT_STATUS_CLBLAST_ERROR: return "CLBlast error";
    case ARMT_STATUS_KERNEL_BUILD_FAILED: return "kernel build failed";
    case ARMT_STATUS_OUT_OF_HOST_MEMORY: return "out of host memory";
    case ARMT_STATUS_OUT_OF_DEVICE_MEMORY: return "out of device memory";
    case ARMT_STATUS_IO_ERROR: return "I/O error";
    case ARMT_STATUS_BAD_FILE: return "malformed file";
    case ARMT_STATUS_BAD_CONFIG: return "invalid configuration";
    case ARMT_STATUS_MISSING_TENSOR: return "missing tensor";
    case ARMT_STATUS_SHAPE_MISMATCH: return "tensor shape mismatch";
    case ARMT_STATUS_UNSUPPORTED: return "unsupported";
    case ARMT_STATUS_TOKEN_OUT_OF_RANGE: return "token id out of range";
    case ARMT_STATUS_MODEL_MISMATCH: return "belongs to another model";
    case ARMT_STATUS_EMPTY_INPUT: return "empty input";
    case ARMT_STATUS_CANCELLED: return "cancelled";
    }
    return "unknown status";
}

/* clang-format off */
const char *armt_cl_error_str(int e) {
    switch (e) {
#define N(x) case x: return #x;
    N(CL_SUCCESS) N(CL_DEVICE_NOT_FOUND) N(CL_DEVICE_NOT_AVAILABLE) N(CL_COMPILER_NOT_AVAILABLE)
    N(CL_MEM_OBJECT_ALLOCATION_FAILURE) N(CL_OUT_OF_RESOURCES) N(CL_OUT_OF_HOST_MEMORY)
    N(CL_PROFILING_INFO_NOT_AVAILABLE) N(CL_MEM_COPY_OVERLAP) N(CL_IMAGE_FORMAT_MISMATCH)
    N(CL_IMAGE_FORMAT_NOT_SUPPORTED) N(CL_BUILD_PROGRAM_FAILURE) N(CL_MAP_FAILURE)
    N(CL_MISALIGNED_SUB_BUFFER_OFFSET) N(CL_EXEC_STATUS_ERROR_FOR_EVENTS_IN_WAIT_LIST)
    N(CL_COMPILE_PROGRAM_FAILURE) N(CL_LINKER_NOT_AVAILABLE) N(CL_LINK_PROGRAM_FAILURE)
    N(CL_DEVICE_PARTITION_FAILED) N(CL_KERNEL_ARG_INFO_NOT_AVAILABLE)
    N(CL_INVALID_VALUE) N(CL_INVALID_DEVICE_TYPE) N(CL_INVALID_PLATFORM) N(CL_INVALID_DEVICE)
    N(CL_INVALID_CONTEXT) N(CL_INVALID_QUEUE_PROPERTIES) N(CL_INVALID_COMMAND_QUEUE) N(CL_INVALID_HOST_PTR)
    N(CL_INVALID_MEM_OBJECT) N(CL_INVALID_IMAGE_FORMAT_DESCRIPTOR) N(CL_INVALID_IMAGE_SIZE)
    N(CL_INVALID_SAMPLER) N(CL_INVALID_BINARY) N(CL_INVALID_BUILD_OPTIONS) N(CL_INVALID_PROGRAM)
    N(CL_INVALID_PROGRAM_EXECUTABLE) N(CL_INVALID_KERNEL_NAME) N(CL_INVALID_KERNEL_DEFINITION)
    N(CL_INVALID_KERNEL) N(CL_INVALID_ARG_INDEX) N(CL_INVALID_ARG_VALUE) N(CL_INVALID_ARG_SIZE)
    N(CL_INVALID_KERNEL_ARGS) N(CL_INVALID_WORK_DIMENSION) N(CL_INVALID_WORK_GROUP_SIZE)
    N(CL_INVALID_WORK_ITEM_SIZE) N(CL_INVALID_GLOBAL_OFFSET) N(CL_INVALID_EVENT_WAIT_LIST)
    N(CL_INVALID_EVENT) N(CL_INVALID_OPERATION) N(CL_INVALID_GL_OBJECT) N(CL_INVALID_BUFFER_SIZE)
    N(CL_INVALID_MIP_LEVEL) N(CL_INVALID_GLOBAL_WORK_SIZE) N(CL_INVALID_PROPERTY)
    N(CL_INVALID_IMAGE_DESCRIPTOR) N(CL_INVALID_COMPILER_OPTIONS) N(CL_INVALID_LINKER_OPTIONS)
    N(CL_INVALID_DEVICE_PARTITION_COUNT)
#undef N
    case -1001: return "CL_PLATFORM_NOT_FOUND_KHR";
    }
    return "CL_UNKNOWN_ERROR";
}
/* clang-format on */

/* clang-format off */
const char *armt_clblast_error_str(int s) {
    switch (s) {
#define N(x) case x: return #x;
    N(CLBlastSuccess) N(CLBlastOpenCLCompilerNotAvailable) N(CLBlastTempBufferAllocFailure)
    N(CLBlastOpenCLOutOfResources) N(CLBlastOpenCLOutOfHostMemory) N(CLBlastOpenCLBuildProgramFailure)
    N(CLBlastInvalidValue) N(CLBlastInvalidCommandQueue) N(CLBlastInvalidMemObject) N(CLBlastInvalidBinary)
    N(CLBlastInvalidBuildOptions) N(CLBlastInvalidProgram) N(CLBlastInvalidProgramExecutable)
    N(CLBlastInvalidKernelName) N(CLBlastInvalidKernelDefinition) N(CLBlastInvalidKernel)
    N(CLBlastInvalidArgIndex) N(CLBlastInvalidArgValue) N(CLBlastInvalidArgSize) N(CLBlastInvalidKernelArgs)
    N(CLBlastInvalidLocalNumDimensions) N(CLBlastInvalidLocalThreadsTotal) N(CLBlastInvalidLocalThreadsDim)
    N(CLBlastInvalidGlobalOffset) N(CLBlastInvalidEventWaitList) N(CLBlastInvalidEvent)
    N(CLBlastInvalidOperation) N(CLBlastInvalidBufferSize) N(CLBlastInvalidGlobalWorkSize)
    N(CLBlastNotImplemented) N(CLBlastInvalidMatrixA) N(CLBlastInvalidMatrixB) N(CLBlastInvalidMatrixC)
    N(CLBlastInvalidVectorX) N(CLBlastInvalidVectorY) N(CLBlastInvalidDimension) N(CLBlastInvalidLeadDimA)
    N(CLBlastInvalidLeadDimB) N(CLBlastInvalidLeadDimC) N(CLBlastInvalidIncrementX)
    N(CLBlastInvalidIncrementY) N(CLBlastInsufficientMemoryA) N(CLBlastInsufficientMemoryB)
    N(CLBlastInsufficientMemoryC) N(CLBlastInsufficientMemoryX) N(CLBlastInsufficientMemoryY)
    N(CLBlastInsufficientMemoryTemp) N(CLBlastInvalidBatchCount) N(CLBlastInvalidOverrideKernel)
    N(CLBlastMissingOverrideParameter) N(CLBlastInvalidLocalMemUsage) N(CLBlastNoHalfPrecision)
    N(CLBlastNoDoublePrecision) N(CLBlastInvalidVectorScalar) N(CLBlastInsufficientMemoryScalar)
    N(CLBlastDatabaseError) N(CLBlastUnknownError) N(CLBlastUnexpectedError)
#undef N
    }
    return "CLBlastUnknownError";
}
/* clang-format on */

/* ---------------------------------------------------------------------------------------------------- */
/* Error records                                                                                        */
/* ---------------------------------------------------------------------------------------------------- */

static _Thread_local char tls_last_error[2048];

const char *armt_last_error(void) { return tls_last_error; }

void armt_err_init(armt_err *e) {
    e->status = ARMT_OK;
    e->msg = NULL;
}

void armt_err_clear(armt_err *e) {
    e->status = ARMT_OK;
    if (e->msg) e->msg[0] = '\0';
}

void armt_err_free(armt_err *e) {
    free(e->msg);
    e->msg = NULL;
    e->status = ARMT_OK;
}

const char *armt_err_msg(const armt_err *e) { return (e && e->msg) ? e->msg : ""; }

armt_status armt_err_setv(armt_err *e, armt_status status, const char *fmt, va_list ap) {
    va_list ap2;
    va_copy(ap2, ap);
    int n = vsnprintf(NULL, 0, fmt, ap2);
    va_end(ap2);
    char *m = (n >= 0) ? malloc((size_t)n + 1) : NULL;
    if (m) {
        vsnprintf(m, (size_t)n + 1, fmt, ap);
    }
    if (e) {
        e->status = status;
        free(e->msg);
        e->msg = m;
        m = NULL;
    }
    const char *text = e ? armt_err_msg(e) : (m ? m : "");
    snprintf(tls_last_error, sizeof tls_last_error, "%s", text ? text : "");
    armt_log(ARMT_LOG_ERROR, "%s: %s", armt_status_str(status), tls_last_error);
    free(m);
    return status;
}

armt_status armt_err_set(armt_err *e, armt_status status, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    armt_status s = armt_err_setv(e, status, fmt, ap);
    va_end(ap);
    return s;
}

armt_status armt_err_copy(armt_err *dst, const armt_err *src) {
    if (dst == src) return src->status;
    return armt_err_set(dst, src->status, "%s", armt_err_msg(src));
}

armt_status armt_err_cl(armt_err *e, const char *call, int cl_error) {
    armt_status s = ARMT_STATUS_OPENCL_ERROR;
    if (cl_error == CL_MEM_OBJECT_ALLOCATION_FAILURE || cl_error == CL_OUT_OF_RESOURCES ||
        cl_error == CL_INVALID_BUFFER_SIZE)
        s = ARMT_STATUS_OUT_OF_DEVICE_MEMORY;
    if (cl_error == CL_OUT_OF_HOST_MEMORY) s = ARMT_STATUS_OUT_OF_HOST_MEMORY;
    return armt_err_set(e, s, "%s failed: %s (%d)", call, armt_cl_error_str(cl_error), cl_error);
}

armt_status armt_err_clblast(armt_err *e, const char *call, int st) {
    armt_status s = ARMT_STATUS_CLBLAST_ERROR;
    if (st == CLBlastTempBufferAllocFailure || st == CLBlastOpenCLOutOfResources)
        s = ARMT_STATUS_OUT_OF_DEVICE_MEMORY;
    return armt_err_set(e, s, "%s failed: %s (%d)", call, armt_clblast_error_str(st), st);
}

/* ---------------------------------------------------------------------------------------------------- */
/* Log callback                                                                                         */
/* ---------------------------------------------------------------------------------------------------- */

static armt_log_fn log_fn;
static void *log_user;

void armt_log_set(armt_log_fn fn, void *user_data) {
    log_fn = fn;
    log_user = user_data;
}

void armt_log(armt_log_level level, const char *fmt, ...) {
    armt_log_fn fn = log_fn;
    if (!fn) return;
    char buf[4096];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    fn(level, buf, log_user);
}

unsigned armt_version_number(void) { return ARMT_VERSION_NUMBER; }

const char *armt_version_string(void) { return PACKAGE_VERSION; }

/* ======================================================================================================= */
/* Enum names                                                                                              */
/* ======================================================================================================= */

const char *armt_schedule_name(armt_schedule schedule) {
    switch (schedule) {
    case ARMT_SCHEDULE_SEQUENTIAL: return "sequential";
    case ARMT_SCHEDULE_DIAGONAL: return "diagonal";
    case ARMT_SCHEDULE_FULL: return "full";
    }
    return "unknown";
}

const char *armt_output_name(armt_output output) {
    switch (output) {
    case ARMT_OUTPUT_NONE: return "none";
    case ARMT_OUTPUT_LOGITS_ALL: return "logits";
    case ARMT_OUTPUT_LOGITS_LAST: return "last";
    case ARMT_OUTPUT_HIDDEN: return "hidden";
    }
    return "unknown";
}

const char *armt_precision_name(armt_precision precision) {
    switch (precision) {
    case ARMT_PRECISION_FP32: return "fp32";
    case ARMT_PRECISION_BF16: return "bf16";
    }
    return "unknown";
}

const char *armt_variant_name(armt_variant variant) {
    switch (variant) {
    case ARMT_VARIANT_PAPER: return "paper";
    case ARMT_VARIANT_AMT: return "amt";
    case ARMT_VARIANT_INNER: return "inner";
    case ARMT_VARIANT_ARMT: return "armt";
    }
    return "unknown";
}

const char *armt_build_info(void) {
    /* the commit is known when the tree was configured from a git checkout */
    static const char with_commit[] =
        "libarmt " PACKAGE_VERSION " (commit " ARMT_GIT_COMMIT "), CLBlast " ARMT_CLBLAST_VERSION;
    static const char without[] = "libarmt " PACKAGE_VERSION ", CLBlast " ARMT_CLBLAST_VERSION;
    return sizeof(ARMT_GIT_COMMIT) > 1 ? with_commit : without;
}
