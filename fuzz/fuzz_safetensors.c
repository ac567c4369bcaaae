/*
 * fuzz_safetensors.c - libFuzzer harness for the safetensors reader (lib/io/safetensors.c). See
 * fuzz/README.md.
 *
 * Two input forms, chosen by the first byte:
 *
 *   anything else   the input is one .safetensors file. It is written to a memfd and opened through
 *                   /proc/self/fd/N (st_open takes a path).
 *   '{'             a sharded checkpoint:  INDEX-JSON  [ '\0'  SHARD1  [ "\n#SHARD#\n"  SHARD2 ... ] ]
 *                   The bytes before the first NUL are written to DIR/model.safetensors.index.json and the
 *                   segments after it (split at the marker "\n#SHARD#\n", at most 4) to
 *                   DIR/model-00001.safetensors ... DIR/model-00004.safetensors, so an index whose
 *                   weight_map names those files reaches load_shard/build_index/the weight_map checks.
 *                   DIR is a private mkdtemp directory of this process; it also holds a FIFO,
 *                   DIR/pipe.safetensors, which an index may name (opening it must not block: the harness
 *                   runs with -timeout). When the input length is odd the checkpoint is also opened through
 *                   DIR itself (directory form), and both opens must agree.
 *
 * For every archive that opens, each tensor is checked against the invariants st_open promises (byte range
 * inside its file, nbytes = numel * dtype size, st_find finds it by name), then read whole with
 * st_read_f32, read again as its second half, and an out-of-range read must fail with INVALID_ARGUMENT.
 * Reads are bounded (FUZZ_READ_BUDGET bytes of floats per input). A violated invariant aborts, so libFuzzer
 * records it like a sanitizer report.
 */
#include "config.h"

#include "io/armt_config.h"
#include "io/safetensors.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define FUZZ_READ_BUDGET (4u << 20) /* floats' bytes read per input */
#define MAX_SHARDS       4
static const char SHARD_MARK[] = "\n#SHARD#\n";

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int memfd = -1;
static char memfd_path[64];
static char dir[4096];
static char index_path[4200];
static char shard_paths[MAX_SHARDS][4200];
static char fifo_path[4200];

#define CHECK(cond)                                                                                \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "fuzz_safetensors: invariant violated: %s (%s:%d)\n", #cond, __FILE__, \
                    __LINE__);                                                                     \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

/* The library never prints; route its messages through a callback that touches them, so a bad format
 * string or a dangling %s argument shows up under ASan. */
static void log_cb(armt_log_level level, const char *message, void *user) {
    (void)level;
    size_t *sink = user;
    *sink += strlen(message);
}
static size_t log_sink;

static void cleanup(void) {
    if (dir[0]) {
        unlink(index_path);
        for (int i = 0; i < MAX_SHARDS; i++)
            unlink(shard_paths[i]);
        unlink(fifo_path);
        rmdir(dir);
    }
}

int LLVMFuzzerInitialize(int *argc, char ***argv) {
    (void)argc;
    (void)argv;
    armt_log_set(log_cb, &log_sink);
    memfd = memfd_create("fuzz_safetensors", MFD_CLOEXEC);
    if (memfd < 0) {
        perror("memfd_create");
        abort();
    }
    snprintf(memfd_path, sizeof memfd_path, "/proc/self/fd/%d", memfd);
    const char *tmp = getenv("TMPDIR");
    snprintf(dir, sizeof dir, "%s/fuzz_st.XXXXXX", tmp && tmp[0] ? tmp : "/tmp");
    if (!mkdtemp(dir)) {
        perror("mkdtemp");
        abort();
    }
    snprintf(index_path, sizeof index_path, "%s/model.safetensors.index.json", dir);
    for (int i = 0; i < MAX_SHARDS; i++)
        snprintf(shard_paths[i], sizeof shard_paths[i], "%s/model-%05d.safetensors", dir, i + 1);
    snprintf(fifo_path, sizeof fifo_path, "%s/pipe.safetensors", dir);
    atexit(cleanup);
    if (mkfifo(fifo_path, 0600) != 0) {
        perror("mkfifo");
        abort();
    }
    return 0;
}

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* st_open with a time limit: on inputs of at most a few MB it takes milliseconds, so seconds mean it
 * blocked (e.g. opening a FIFO), which libFuzzer's own -timeout may not see: its SIGALRM interrupts a
 * blocked open() with EINTR and the call then just fails. */
static armt_status timed_open(const char *path, st_archive **out, armt_err *err) {
    double t0 = now_s();
    armt_status st = st_open(path, out, err);
    double dt = now_s() - t0;
    if (dt > 2.0)
        fprintf(stderr, "fuzz_safetensors: st_open(%s) took %.1f s: %s\n", path, dt, armt_err_msg(err));
    CHECK(dt <= 2.0);
    return st;
}

static void write_file(const char *path, const uint8_t *p, size_t n) {
    FILE *f = fopen(path, "wb");
    if (!f) {
        perror(path);
        abort();
    }
    if (n && fwrite(p, 1, n, f) != n) {
        perror(path);
        abort();
    }
    fclose(f);
}

/* Checks and reads every tensor of an archive that opened. file_sizes: size of each shard file. */
static void exercise(st_archive *a, const uint64_t *file_sizes, int n_files) {
    armt_err err;
    armt_err_init(&err);
    size_t n = st_count(a);
    int ns = st_shard_count(a);
    CHECK(ns >= 1 && ns <= n_files);
    for (int s = 0; s < ns; s++)
        CHECK(st_shard_path(a, s) != NULL);
    CHECK(st_shard_path(a, ns) == NULL);
    CHECK(st_get(a, n) == NULL);
    (void)st_metadata(a, "format");
    (void)st_metadata(a, "armt_config");
    (void)st_find(a, "");

    uint64_t budget = FUZZ_READ_BUDGET;
    for (size_t i = 0; i < n; i++) {
        const st_tensor *t = st_get(a, i);
        CHECK(t != NULL && t->name != NULL);
        CHECK(t->ndim >= 0 && t->ndim <= ST_MAX_DIMS);
        CHECK(t->shard >= 0 && t->shard < ns);
        uint64_t numel = 1;
        for (int d = 0; d < t->ndim; d++)
            numel *= t->shape[d];
        CHECK(numel == t->numel);
        CHECK(t->nbytes == t->numel * st_dtype_size(t->dtype));
        CHECK(t->data_offset >= 8 && t->data_offset <= file_sizes[t->shard] &&
              t->nbytes <= file_sizes[t->shard] - t->data_offset);
        CHECK(st_find(a, t->name) == t);
        (void)st_dtype_name(t->dtype);

        /* Out of range: must be refused, whatever the tensor. */
        float dummy;
        CHECK(st_read_f32(a, t, t->numel, 1, &dummy, &err) == ARMT_STATUS_INVALID_ARGUMENT);
        CHECK(st_read_f32(a, t, UINT64_MAX, 2, &dummy, &err) == ARMT_STATUS_INVALID_ARGUMENT);
        CHECK(st_read_f32(a, t, 0, 0, NULL, &err) == ARMT_OK);

        if (t->numel == 0 || t->numel * sizeof(float) > budget) continue;
        budget -= t->numel * sizeof(float);
        float *buf = malloc(t->numel * sizeof(float));
        CHECK(buf != NULL);
        /* The file is not changed behind the reader's back, so a read of a validated range succeeds. */
        CHECK(st_read_f32(a, t, 0, t->numel, buf, &err) == ARMT_OK);
        uint64_t half = t->numel / 2;
        float *buf2 = malloc((t->numel - half) * sizeof(float));
        CHECK(buf2 != NULL);
        CHECK(st_read_f32(a, t, half, t->numel - half, buf2, &err) == ARMT_OK);
        CHECK(memcmp(buf + half, buf2, (t->numel - half) * sizeof(float)) == 0);
        free(buf2);
        free(buf);
    }
    armt_err_free(&err);
}

static void fuzz_single(const uint8_t *data, size_t size) {
    if (ftruncate(memfd, 0) != 0 || (size && pwrite(memfd, data, size, 0) != (ssize_t)size)) {
        perror("memfd write");
        abort();
    }
    armt_err err;
    armt_err_init(&err);
    st_archive *a = NULL;
    armt_status st = timed_open(memfd_path, &a, &err);
    if (st == ARMT_OK) {
        CHECK(a != NULL);
        uint64_t fs = size;
        exercise(a, &fs, 1);
    } else {
        CHECK(a == NULL);
        CHECK(err.status == st && armt_err_msg(&err)[0] != '\0');
    }
    st_close(a);
    armt_err_free(&err);
}

static const uint8_t *find_mark(const uint8_t *p, size_t n) {
    size_t m = sizeof SHARD_MARK - 1;
    for (size_t i = 0; i + m <= n; i++)
        if (p[i] == '\n' && memcmp(p + i, SHARD_MARK, m) == 0) return p + i;
    return NULL;
}

static void fuzz_sharded(const uint8_t *data, size_t size) {
    for (int i = 0; i < MAX_SHARDS; i++)
        unlink(shard_paths[i]);
    const uint8_t *nul = memchr(data, 0, size);
    size_t ilen = nul ? (size_t)(nul - data) : size;
    write_file(index_path, data, ilen);

    uint64_t file_sizes[MAX_SHARDS] = {0};
    int n_files = 0;
    if (nul) {
        const uint8_t *p = nul + 1, *end = data + size;
        while (n_files < MAX_SHARDS) {
            const uint8_t *m = n_files < MAX_SHARDS - 1 ? find_mark(p, (size_t)(end - p)) : NULL;
            const uint8_t *seg_end = m ? m : end;
            write_file(shard_paths[n_files], p, (size_t)(seg_end - p));
            file_sizes[n_files++] = (uint64_t)(seg_end - p);
            if (!m) break;
            p = m + sizeof SHARD_MARK - 1;
        }
    }
    /* Shards are sorted by file name, and only files model-0000K exist, in order: shard index s of the
     * archive is file s, unless the index names other files (then sizes are unknown: use the largest). */
    uint64_t maxsz = 0;
    for (int i = 0; i < n_files; i++)
        if (file_sizes[i] > maxsz) maxsz = file_sizes[i];

    armt_err err;
    armt_err_init(&err);
    st_archive *a = NULL;
    armt_status st = timed_open(index_path, &a, &err);
    size_t count = 0;
    if (st == ARMT_OK) {
        CHECK(a != NULL);
        count = st_count(a);
        /* Map each archive shard to its file size by path. */
        int ns = st_shard_count(a);
        uint64_t sizes[64];
        if (ns <= 64) {
            for (int s = 0; s < ns; s++) {
                const char *sp = st_shard_path(a, s);
                struct stat sb;
                sizes[s] = (sp && stat(sp, &sb) == 0) ? (uint64_t)sb.st_size : maxsz;
            }
            exercise(a, sizes, ns);
        }
    } else {
        CHECK(a == NULL);
        CHECK(err.status == st && armt_err_msg(&err)[0] != '\0');
    }
    st_close(a);

    if (size & 1) {
        /* Directory form: no model.safetensors in DIR, so st_open must pick the index and agree. */
        st_archive *b = NULL;
        armt_status st2 = timed_open(dir, &b, &err);
        CHECK(st2 == st);
        CHECK(st2 != ARMT_OK || st_count(b) == count);
        st_close(b);
    }
    armt_err_free(&err);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size > (16u << 20)) return 0; /* keep file writes small */
    if (size > 0 && data[0] == '{')
        fuzz_sharded(data, size);
    else
        fuzz_single(data, size);
    return 0;
}
