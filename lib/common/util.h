/*
 * util.h - small host helpers shared by the library's files (and armt-run): reading a whole file, joining
 * paths, a monotonic clock. Each was written several times before; one copy keeps the error messages and
 * edge cases (NULs in the data, a path without a directory) the same everywhere.
 */
#ifndef ARMT_UTIL_H
#define ARMT_UTIL_H

#include "common/error.h"

#include <stddef.h>
#include <stdio.h>

/* Reads the whole file at path into *out: malloc'ed, with a NUL after the last byte (the data may hold
 * NULs; *len counts the bytes without the added one). max_bytes > 0 refuses a larger file. With
 * missing_ok, a file that does not exist is not an error: ARMT_OK with *out NULL and *len 0.
 * Errors (messages start with "WHAT: " when what is not NULL, e.g. "tokenizer"): IO_ERROR "PATH: cannot
 * open: REASON" or "PATH: read error", BAD_FILE "PATH: larger than N bytes", OUT_OF_HOST_MEMORY. On
 * failure *out is NULL. */
armt_status armt_read_file(const char *path, const char *what, size_t max_bytes, int missing_ok, char **out,
                           size_t *len, armt_err *err);

/* The same for a stream that is already open (stdin), read to its end and not closed; name is the
 * PATH of the messages. */
armt_status armt_read_stream(FILE *f, const char *name, const char *what, size_t max_bytes, char **out,
                             size_t *len, armt_err *err);

/* Reads a regular file without blocking: a FIFO, a directory or a device is refused (IO_ERROR "PATH: not a
 * regular file") instead of being opened for reading, so a FIFO planted at a path cannot hang the caller. At
 * most max_bytes bytes are read (a longer file gives its first max_bytes + 1 bytes, so that the caller can
 * tell it is too long); *out is malloc'ed (NUL added, as armt_read_file), NULL on error. */
armt_status armt_read_regular_file(const char *path, const char *what, size_t max_bytes, char **out,
                                   size_t *len, armt_err *err);
/* Replaces the file at path with data[0..len) durably and atomically: the bytes go to a unique temporary
 * file in the same directory (mkstemp, mode 0644), which is fsync'ed, renamed over path, and then the
 * directory is fsync'ed. A reader of path sees the old file or the new one, never a mix or a partial file;
 * two writers leave one of the two complete files. On error the temporary file is removed and path is
 * unchanged (IO_ERROR naming the step). */
armt_status armt_write_file_durable(const char *path, const char *what, const void *data, size_t len,
                                    armt_err *err);
/* The first n bytes of s as a NUL-terminated malloc'ed string; NULL when out of memory. */
char *armt_strndup(const char *s, size_t n);

/* "dir/name", or a copy of name when name is absolute or dir is empty. malloc'ed; NULL when out of
 * memory. */
char *armt_path_join(const char *dir, const char *name);

/* The directory part of a path: "a/b" for "a/b/c", "/" for "/c", "." when there is no slash. malloc'ed;
 * NULL when out of memory. */
char *armt_path_dirname(const char *path);

/* Seconds on a monotonic clock (CLOCK_MONOTONIC: it never jumps with the wall clock), for durations. */
double armt_now(void);

#endif
