/*
 * error.h - error records and the two propagation macros used everywhere inside the library.
 *
 * Every handle owns an armt_err. A failing function fills it (status, "where: what" text) and returns the
 * status; callers add nothing and return the same status (ARMT_TRY). The message is also copied to a
 * thread-local slot so armt_last_error() explains failed creates, which have no handle to ask.
 */
#ifndef ARMT_ERROR_H
#define ARMT_ERROR_H

#include "armt.h"

#include <stdarg.h>

typedef struct armt_err {
    armt_status status;
    char *msg; /* heap; may be long (kernel build logs); never NULL after armt_err_init */
} armt_err;

void armt_err_init(armt_err *e);
void armt_err_clear(armt_err *e);
void armt_err_free(armt_err *e);
/* Records status and a printf-style message; returns status. Also logs at ARMT_LOG_ERROR. */
armt_status armt_err_set(armt_err *e, armt_status status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
armt_status armt_err_setv(armt_err *e, armt_status status, const char *fmt, va_list ap);
/* Copies src's status/message into dst (used when a sub-object failed). */
armt_status armt_err_copy(armt_err *dst, const armt_err *src);
const char *armt_err_msg(const armt_err *e);

/* Internal diagnostics through the user's callback. */
void armt_log(armt_log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Records an OpenCL failure: "call: CL_NAME (code)". */
armt_status armt_err_cl(armt_err *e, const char *call, int cl_error);
/* Records a CLBlast failure: "call: CLBlastName (code)". */
armt_status armt_err_clblast(armt_err *e, const char *call, int clblast_status);

/* Return with the error recorded if cond holds.  Needs an armt_err *err in scope. */
#define ARMT_RETURN_IF(cond, status, ...)                          \
    do {                                                           \
        if (cond) return armt_err_set(err, (status), __VA_ARGS__); \
    } while (0)

/* Evaluate an armt_status expression; on failure return it (the callee already recorded the message). */
#define ARMT_TRY(expr)                                  \
    do {                                                \
        armt_status armt_try_s_ = (expr);               \
        if (armt_try_s_ != ARMT_OK) return armt_try_s_; \
    } while (0)

/* Same, but jump to a cleanup label with the status stored in `st`. */
#define ARMT_TRY_GOTO(expr, label)     \
    do {                               \
        st = (expr);                   \
        if (st != ARMT_OK) goto label; \
    } while (0)

/* An OpenCL call returning cl_int: on failure record it and return. */
#define ARMT_CL_TRY(call)                                                         \
    do {                                                                          \
        cl_int armt_cl_e_ = (call);                                               \
        if (armt_cl_e_ != CL_SUCCESS) return armt_err_cl(err, #call, armt_cl_e_); \
    } while (0)

#endif
