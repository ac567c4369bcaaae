/*
 * fuzz_util.h - helpers shared by the libFuzzer harnesses of fuzz/ (header only, static functions).
 */
#ifndef ARMT_FUZZ_UTIL_H
#define ARMT_FUZZ_UTIL_H

#define _GNU_SOURCE 1
#include "armt.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FUZZ_CHECK(cond)                                                                                  \
    do {                                                                                                  \
        if (!(cond)) {                                                                                    \
            fprintf(stderr, "%s: invariant violated: %s (%s:%d)\n", __FILE__, #cond, __FILE__, __LINE__); \
            abort();                                                                                      \
        }                                                                                                 \
    } while (0)

/* The library never prints; its messages go through a callback that touches every byte, so a bad format
 * string or a dangling %s argument shows up under ASan. */
static size_t fuzz_log_sink;
static void fuzz_log_cb(armt_log_level level, const char *message, void *user) {
    (void)level;
    (void)user;
    fuzz_log_sink += strlen(message);
}

/* One memfd per process, rewritten for each input and opened through /proc/self/fd/N (the readers take a
 * path). Returns the path, or NULL when the memfd cannot be written (the input is then skipped). */
static const char *fuzz_memfd_path(const uint8_t *data, size_t size) {
    static int fd = -1;
    static char path[64];
    if (fd < 0) {
        fd = memfd_create("armt-fuzz", 0);
        if (fd < 0) return NULL;
        snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
    }
    if (ftruncate(fd, 0) != 0 || lseek(fd, 0, SEEK_SET) != 0) return NULL;
    size_t done = 0;
    while (done < size) {
        ssize_t w = write(fd, data + done, size - done);
        if (w <= 0) return NULL;
        done += (size_t)w;
    }
    return path;
}

#endif
