/*
 * pipeline_mpi.c - the pipeline's stages as MPI ranks (./configure --enable-mpi): one stage per rank of
 * MPI_COMM_WORLD, the hand-over rows as non-blocking point-to-point messages between neighbours matched by
 * tick, the status agreement that keeps a failing rank from leaving the others waiting, and the gathers of
 * outputs, states and stats on rank 0 (docs/DESIGN.md, "Pipeline across devices").
 *
 * The caller initialises MPI (MPI_Init) and finalises it after armt_pipeline_free. Every function here is
 * collective: each rank calls it at the same point of the same pipeline call.
 */
#include "config.h"

#ifdef ARMT_HAVE_MPI

#include "compute/pipeline.h"

#include <limits.h>
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Messages of a failing rank are cut to this many bytes for the others. */
#define MSG_BYTES 1024

/* An MPI call's failure: its error string into err (and the call returns). */
static armt_status mpi_failed(armt_err *err, const char *call, int code) {
    char s[MPI_MAX_ERROR_STRING];
    int len = 0;
    if (MPI_Error_string(code, s, &len) != MPI_SUCCESS) snprintf(s, sizeof s, "error %d", code);
    return armt_err_set(err, ARMT_STATUS_IO_ERROR, "pipeline: %s failed: %s", call, s);
}
#define MPI_TRY(call)                                                     \
    do {                                                                  \
        int mpi_e_ = (call);                                              \
        if (mpi_e_ != MPI_SUCCESS) return mpi_failed(err, #call, mpi_e_); \
    } while (0)

armt_status armt_pmpi_world(int *rank, int *ranks, armt_err *err) {
    int init = 0;
    MPI_Initialized(&init);
    ARMT_RETURN_IF(!init, ARMT_STATUS_UNSUPPORTED,
                   "armt_pipeline_create: mpi = 1 but MPI is not initialised (call MPI_Init first)");
    /* errors come back as codes (MPI_ERRORS_RETURN), so the library never aborts the job itself */
    MPI_TRY(MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN));
    MPI_TRY(MPI_Comm_rank(MPI_COMM_WORLD, rank));
    MPI_TRY(MPI_Comm_size(MPI_COMM_WORLD, ranks));
    return ARMT_OK;
}

armt_status armt_pmpi_agree(armt_pipeline *pp, armt_status mine, armt_err *err) {
    /* the lowest failing rank: MINLOC over (0 failed / 1 ok, rank) */
    struct {
        int ok, rank;
    } in = {mine == ARMT_OK, pp->rank}, out;
    MPI_TRY(MPI_Allreduce(&in, &out, 1, MPI_2INT, MPI_MINLOC, MPI_COMM_WORLD));
    if (out.ok) return ARMT_OK;
    /* the failing rank tells the others its status and message */
    struct {
        int status;
        char msg[MSG_BYTES];
    } m;
    memset(&m, 0, sizeof m);
    if (pp->rank == out.rank) {
        m.status = (int)mine;
        snprintf(m.msg, sizeof m.msg, "%s", armt_err_msg(err));
    }
    MPI_TRY(MPI_Bcast(&m, (int)sizeof m, MPI_BYTE, out.rank, MPI_COMM_WORLD));
    if (pp->rank == out.rank) return mine;
    return armt_err_set(err, (armt_status)m.status, "rank %d: %s", out.rank, m.msg);
}

armt_status armt_pmpi_exchange(armt_pipeline *pp, uint64_t t, const float *out, size_t floats_out, float *in,
                               size_t floats_in, armt_err *err) {
    MPI_Request req[2];
    int nr = 0;
    const int tag = (int)(t % (uint64_t)INT_MAX);
    ARMT_RETURN_IF(floats_out > INT_MAX || floats_in > INT_MAX, ARMT_STATUS_UNSUPPORTED,
                   "pipeline: a segment's rows exceed one MPI message");
    if (in) MPI_TRY(MPI_Irecv(in, (int)floats_in, MPI_FLOAT, pp->rank - 1, tag, MPI_COMM_WORLD, &req[nr++]));
    if (out)
        MPI_TRY(MPI_Isend(out, (int)floats_out, MPI_FLOAT, pp->rank + 1, tag, MPI_COMM_WORLD, &req[nr++]));
    if (nr) MPI_TRY(MPI_Waitall(nr, req, MPI_STATUSES_IGNORE));
    return ARMT_OK;
}

armt_status armt_pmpi_to_root(armt_pipeline *pp, float *buf, size_t n, armt_err *err) {
    const int last = pp->ranks - 1, tag = INT_MAX - 1;
    for (size_t done = 0; done < n;) { /* in pieces of at most INT_MAX floats */
        size_t k = n - done < (size_t)INT_MAX ? n - done : (size_t)INT_MAX;
        if (pp->rank == last) MPI_TRY(MPI_Send(buf + done, (int)k, MPI_FLOAT, 0, tag, MPI_COMM_WORLD));
        if (pp->rank == 0)
            MPI_TRY(MPI_Recv(buf + done, (int)k, MPI_FLOAT, last, tag, MPI_COMM_WORLD, MPI_STATUS_IGNORE));
        done += k;
    }
    return ARMT_OK;
}

/* Byte counts and displacements as MPI's ints (states of very large models would need MPI's large-count
 * calls). */
static armt_status to_int(const size_t *a, int *b, int n, armt_err *err) {
    for (int i = 0; i < n; i++) {
        ARMT_RETURN_IF(a[i] > INT_MAX, ARMT_STATUS_UNSUPPORTED, "pipeline: %zu bytes exceed one MPI gather",
                       a[i]);
        b[i] = (int)a[i];
    }
    return ARMT_OK;
}

armt_status armt_pmpi_gather(armt_pipeline *pp, const void *mine, size_t bytes, void *all,
                             const size_t *count, const size_t *disp, armt_err *err) {
    int *c = malloc((size_t)pp->ranks * 2 * sizeof *c);
    ARMT_RETURN_IF(!c, ARMT_STATUS_OUT_OF_HOST_MEMORY, "pipeline: out of host memory");
    armt_status st = to_int(count, c, pp->ranks, err);
    if (st == ARMT_OK) st = to_int(disp, c + pp->ranks, pp->ranks, err);
    if (st == ARMT_OK && bytes > INT_MAX) st = to_int(&bytes, c, 1, err);
    if (st == ARMT_OK) {
        int e = MPI_Gatherv(mine, (int)bytes, MPI_BYTE, all, c, c + pp->ranks, MPI_BYTE, 0, MPI_COMM_WORLD);
        if (e != MPI_SUCCESS) st = mpi_failed(err, "MPI_Gatherv", e);
    }
    free(c);
    return st;
}

armt_status armt_pmpi_scatter(armt_pipeline *pp, const void *all, const size_t *count, const size_t *disp,
                              void *mine, size_t bytes, armt_err *err) {
    int *c = malloc((size_t)pp->ranks * 2 * sizeof *c);
    ARMT_RETURN_IF(!c, ARMT_STATUS_OUT_OF_HOST_MEMORY, "pipeline: out of host memory");
    armt_status st = to_int(count, c, pp->ranks, err);
    if (st == ARMT_OK) st = to_int(disp, c + pp->ranks, pp->ranks, err);
    if (st == ARMT_OK && bytes > INT_MAX) st = to_int(&bytes, c, 1, err);
    if (st == ARMT_OK) {
        int e = MPI_Scatterv(all, c, c + pp->ranks, MPI_BYTE, mine, (int)bytes, MPI_BYTE, 0, MPI_COMM_WORLD);
        if (e != MPI_SUCCESS) st = mpi_failed(err, "MPI_Scatterv", e);
    }
    free(c);
    return st;
}

armt_status armt_pmpi_bcast_status(armt_pipeline *pp, armt_status st, armt_err *err) {
    return armt_pmpi_agree(pp, pp->rank == 0 ? st : ARMT_OK, err);
}

#else
/* Built without MPI: nothing here (ISO C wants a declaration in every translation unit). */
typedef int armt_pipeline_mpi_unused;
#endif
