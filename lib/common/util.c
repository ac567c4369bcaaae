/*
 * util.c - whole-file reading, path joining and the monotonic clock. See util.h.
 */
#include "config.h"

#include "common/util.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

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

armt_status armt_read_regular_file(const char *path, const char *what, size_t max_bytes, char **out,
                                   size_t *len, armt_err *err) {
    const char *sep = what ? ": " : "";
    what = what ? what : "";
    *out = NULL;
    *len = 0;
    /* O_NONBLOCK: opening a FIFO for reading would otherwise wait for a writer */
    int fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0) {
        int e = errno;
        return armt_err_set(err, ARMT_STATUS_IO_ERROR, "%s%s%s: cannot open: %s", what, sep, path,
                            strerror(e));
    }
    struct stat sb;
    if (fstat(fd, &sb) != 0 || !S_ISREG(sb.st_mode)) {
        close(fd);
        return armt_err_set(err, ARMT_STATUS_IO_ERROR, "%s%s%s: not a regular file", what, sep, path);
    }
    size_t want = max_bytes < SIZE_MAX - 1 ? max_bytes + 1 : max_bytes;
    if (sb.st_size >= 0 && (uint64_t)sb.st_size < (uint64_t)want) want = (size_t)sb.st_size;
    char *buf = malloc(want + 1);
    if (!buf) {
        close(fd);
        return armt_err_set(err, ARMT_STATUS_OUT_OF_HOST_MEMORY, "%s%s%s: out of host memory", what, sep,
                            path);
    }
    size_t n = 0;
    while (n < want) {
        ssize_t got = read(fd, buf + n, want - n);
        if (got < 0 && errno == EINTR) continue;
        if (got < 0) {
            int e = errno;
            free(buf);
            close(fd);
            return armt_err_set(err, ARMT_STATUS_IO_ERROR, "%s%s%s: read error: %s", what, sep, path,
                                strerror(e));
        }
        if (got == 0) break; /* shorter than fstat said: it shrank meanwhile */
        n += (size_t)got;
    }
    close(fd);
    buf[n] = '\0';
    *out = buf;
    *len = n;
    return ARMT_OK;
}

static int write_all(int fd, const unsigned char *p, size_t n) {
    while (n > 0) {
        ssize_t put = write(fd, p, n);
        if (put < 0 && errno == EINTR) continue;
        if (put <= 0) return -1;
        p += put;
        n -= (size_t)put;
    }
    return 0;
}

armt_status armt_write_file_durable(const char *path, const char *what, const void *data, size_t len,
                                    armt_err *err) {
    const char *sep = what ? ": " : "";
    what = what ? what : "";
    const char *slash = strrchr(path, '/');
    const char *base = slash ? slash + 1 : path;
    ARMT_RETURN_IF(base[0] == '\0', ARMT_STATUS_IO_ERROR, "%s%s%s: not a file name", what, sep, path);
    char *dir = armt_path_dirname(path);
    char *tmp = dir ? malloc(strlen(dir) + strlen(base) + 16) : NULL;
    if (!tmp) {
        free(dir);
        return armt_err_set(err, ARMT_STATUS_OUT_OF_HOST_MEMORY, "%s%s%s: out of host memory", what, sep,
                            path);
    }
    /* a hidden name in the same directory, so that rename() stays within one file system */
    sprintf(tmp, "%s/.%s.XXXXXX", dir, base);
    armt_status st = ARMT_OK;
    const char *step = "create a temporary file";
    int e = 0;
    int fd = mkstemp(tmp);
    if (fd < 0) {
        e = errno;
        goto fail_nofile;
    }
    step = "write";
    if (fchmod(fd, 0644) != 0 || write_all(fd, data, len) != 0) goto fail;
    step = "fsync";
    if (fsync(fd) != 0) goto fail;
    step = "close";
    int rc = close(fd);
    fd = -1;
    if (rc != 0) goto fail;
    step = "rename the temporary file over it";
    if (rename(tmp, path) != 0) goto fail;
    /* the rename itself is durable once the directory is */
    int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd >= 0) {
        /* some file systems refuse fsync on a directory (EINVAL): the data is safe, nothing to report */
        if (fsync(dfd) != 0 && errno != EINVAL && errno != EROFS) {
            e = errno;
            close(dfd);
            st = armt_err_set(err, ARMT_STATUS_IO_ERROR, "%s%s%s: fsync of directory %s: %s", what, sep, path,
                              dir, strerror(e));
            goto out;
        }
        close(dfd);
    }
    goto out;
fail:
    e = errno;
    if (fd >= 0) close(fd);
    unlink(tmp);
fail_nofile:
    st = armt_err_set(err, ARMT_STATUS_IO_ERROR, "%s%s%s: cannot %s: %s", what, sep, path, step,
                      strerror(e ? e : EIO));
out:
    free(tmp);
    free(dir);
    return st;
}
