/*
 * launch.c - the one launch helper (every kernel goes through armt_enqueue) and its fault injection for
 * tests.
 */
#include "config.h"

#include "device/internal.h"

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
        return armt_err_set(err, s, "clEnqueueNDRangeKernel(%s) failed: %s (%d)", what, armt_cl_error_str(e),
                            e);
    }
    if (counter) (*counter)++;
    return ARMT_OK;
}
