/*
 * util.c - whole-file reading, path joining and the monotonic clock. See util.h.
 */
#include "config.h"

#include "common/util.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

armt_status armt_read_stream(FILE *f, const char *name, const char *what, size_t max_bytes, char **out,
                             size_t *len, armt_err *err) {
    const char *sep = what ? ": " : "";
    what = what ? what : "";
    *out = NULL;
    *len = 0;
    char *buf = NULL;
    size_t n = 0, cap = 0;
    for (;;) {
        /* room for one more read and the closing NUL; the buffer doubles, so reading is linear */
        if (cap - n < 4096 + 1) {
            size_t grown_cap = cap ? 2 * cap : 65536;
            char *grown = grown_cap > cap ? realloc(buf, grown_cap) : NULL;
            if (!grown) {
                free(buf);
                return armt_err_set(err, ARMT_STATUS_OUT_OF_HOST_MEMORY, "%s%s%s: out of host memory", what,
                                    sep, name);
            }
            buf = grown;
            cap = grown_cap;
        }
        size_t got = fread(buf + n, 1, cap - n - 1, f);
        n += got;
        if (max_bytes > 0 && n > max_bytes) {
            free(buf);
            return armt_err_set(err, ARMT_STATUS_BAD_FILE, "%s%s%s: larger than %zu bytes", what, sep, name,
                                max_bytes);
        }
        if (got == 0) break;
    }
    if (ferror(f)) {
        free(buf);
        return armt_err_set(err, ARMT_STATUS_IO_ERROR, "%s%s%s: read error", what, sep, name);
    }
    buf[n] = '\0';
    *out = buf;
    *len = n;
    return ARMT_OK;
}

armt_status armt_read_file(const char *path, const char *what, size_t max_bytes, int missing_ok, char **out,
                           size_t *len, armt_err *err) {
    *out = NULL;
    *len = 0;
    FILE *f = fopen(path, "rb");
    if (!f) {
        if (missing_ok && errno == ENOENT) return ARMT_OK;
        int e = errno;
        return armt_err_set(err, ARMT_STATUS_IO_ERROR, "%s%s%s: cannot open: %s", what ? what : "",
                            what ? ": " : "", path, strerror(e));
    }
    armt_status st = armt_read_stream(f, path, what, max_bytes, out, len, err);
    fclose(f);
    return st;
}

char *armt_strndup(const char *s, size_t n) {
    char *d = malloc(n + 1);
    if (!d) return NULL;
    memcpy(d, s, n);
    d[n] = '\0';
    return d;
}

char *armt_path_join(const char *dir, const char *name) {
    if (name[0] == '/' || dir[0] == '\0') return armt_strndup(name, strlen(name));
    size_t a = strlen(dir), b = strlen(name);
    char *p = malloc(a + b + 2);
    if (!p) return NULL;
    memcpy(p, dir, a);
    p[a] = '/';
    memcpy(p + a + 1, name, b + 1);
    return p;
}

char *armt_path_dirname(const char *path) {
    const char *slash = strrchr(path, '/');
    if (!slash) return armt_strndup(".", 1);
    if (slash == path) return armt_strndup("/", 1);
    return armt_strndup(path, (size_t)(slash - path));
}

double armt_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}
