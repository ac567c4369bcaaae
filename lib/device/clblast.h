/*
 * clblast.h - the one place that touches CLBlast's process-wide state: the lock every CLBlast call takes,
 * and the kernel parameters (tuning) the library gives CLBlast for the devices it knows.
 */
#ifndef ARMT_DEVICE_CLBLAST_H
#define ARMT_DEVICE_CLBLAST_H

#include "device/internal.h"

/* CLBlast before 1.6.1 is not thread-safe: two threads entering a routine at once can free a tuning-database
 * entry while the other copies it (CLBlast issue #486, fixed by its PR #495; Debian 12 ships 1.5.3). Every
 * CLBlast call of the library runs between these two (a call only enqueues after its first, which compiles,
 * so contexts on other threads wait microseconds). */
void armt_clblast_lock(void);
void armt_clblast_unlock(void);

/* Gives CLBlast the fp32 kernel parameters for rt's device: the built-in entries whose device pattern is
 * part of the device's name (lib/device/clblast_tuning.c, measured with CLBlast's own tuners), then, when
 * $ARMT_CLBLAST_TUNING names a file or a directory, the JSON files CLBlast's tuners wrote there
 * (clblast_tuner_xgemm and friends: `best_kernel`, `best_parameters`; where several files tune one kernel,
 * the fastest `best_time` wins). A file that cannot be read or parsed, or parameters CLBlast refuses, fail
 * with a message naming the file. *applied (may be NULL) receives the number of kernels overridden. */
armt_status armt_clblast_tune(armt_runtime *rt, int *applied, armt_err *err);

/* The built-in table (clblast_tuning.c). */
typedef struct armt_clblast_entry {
    const char *device;     /* a case-sensitive substring of CL_DEVICE_NAME ("H100")            */
    const char *kernel;     /* CLBlast's kernel name ("Xgemm", "XgemmDirect", "Copy", ...)      */
    const char *parameters; /* "NAME=VALUE NAME=VALUE ...", as the tuners' best_parameters      */
    const char *source;     /* the measurement it came from (bench/results/...)                 */
} armt_clblast_entry;
extern const armt_clblast_entry armt_clblast_table[];
extern const size_t armt_clblast_table_len;

#endif
