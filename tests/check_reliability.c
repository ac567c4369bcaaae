/*
 * check_reliability.c - what a long-running program leans on (issue 26):
 *   - state files: a battery of broken files (truncated, bit-flipped, another model's, empty, trailing
 *     bytes, a directory, a FIFO, a missing file) each gives a clean status and leaves the state as it
 *     was; saves are atomic: two processes saving to one path while a third loads it never produce a
 *     partial file, two threads neither; a failed save leaves no temporary file behind;
 *   - misuse: NULL handles and pointers, out_count too small, zero tokens, bad enums, calls after a failed
 *     create: a documented status each, never a crash;
 *   - cancellation: a progress callback's non-zero return stops armt_forward and armt_generate with
 *     ARMT_STATUS_CANCELLED at every step, the memory state exactly as before, and the context then gives
 *     what a fresh context gives.
 * Results are compared with those of a fresh context fed the same inputs, never with constants.
 */
#include "config.h"

#include "testutil.h"

#include "common/util.h"
#include "io/state_file.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

/* ======================================================================================================= */
/* Helpers                                                                                                 */
/* ======================================================================================================= */

typedef struct state {
    size_t nw, nz, nl;
    float *w, *z;
    uint8_t *wr;
} state;

static state state_get(armt_ctx *ctx) {
    state s;
    s.nw = armt_ctx_memory_w_count(ctx);
    s.nz = armt_ctx_memory_z_count(ctx);
    s.nl = (size_t)armt_model_config(armt_ctx_model(ctx))->n_layers;
    s.w = malloc(s.nw * sizeof *s.w);
    s.z = malloc(s.nz * sizeof *s.z);
    s.wr = malloc(s.nl);
    ck_assert(s.w && s.z && s.wr);
    ck_assert_msg(armt_ctx_memory_get(ctx, s.w, s.z, s.wr) == ARMT_OK, "%s", armt_ctx_last_error(ctx));
    return s;
}

static int state_eq(const state *a, const state *b) {
    return a->nw == b->nw && memcmp(a->w, b->w, a->nw * 4) == 0 && memcmp(a->z, b->z, a->nz * 4) == 0 &&
           memcmp(a->wr, b->wr, a->nl) == 0;
}

static void state_free(state *s) {
    free(s->w);
    free(s->z);
    free(s->wr);
}

/* A tiny model whose memory path is active (W_mv drawn), so that states differ between inputs. */
static armt_model *tiny_model(armt_runtime *rt, uint64_t seed, int n_layers) {
    armt_config c;
    ck_assert_int_eq(armt_config_preset("tiny", &c), ARMT_OK);
    if (n_layers > 0) c.n_layers = n_layers;
    armt_model_params p = armt_model_default_params();
    p.wmv_std = 0.05f;
    p.seed = seed;
    p.segment_size = 8;
    armt_model *m = NULL;
    ck_assert_msg(armt_model_create_random(rt, &c, &p, &m) == ARMT_OK, "%s", armt_last_error());
    return m;
}

static armt_ctx *new_ctx(armt_model *m) {
    armt_ctx *ctx = NULL;
    ck_assert_msg(armt_ctx_create(m, NULL, &ctx) == ARMT_OK, "%s", armt_last_error());
    return ctx;
}

static void forward_ok(armt_ctx *ctx, const int32_t *ids, size_t n, armt_schedule s, float *logits) {
    armt_forward_params fp = armt_forward_default_params();
    fp.schedule = s;
    if (logits) {
        fp.output = ARMT_OUTPUT_LOGITS_ALL;
        fp.out = logits;
        fp.out_count = armt_output_count(armt_ctx_model(ctx), fp.output, n);
    }
    armt_status st = armt_forward(ctx, ids, n, &fp);
    ck_assert_msg(st == ARMT_OK, "forward: %s: %s", armt_status_str(st), armt_ctx_last_error(ctx));
}

static char tmpdir[256];

static void make_tmpdir(void) {
    snprintf(tmpdir, sizeof tmpdir, "%s/armt-rel-XXXXXX", getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
    ck_assert_ptr_nonnull(mkdtemp(tmpdir));
}

/* Removes the files of tmpdir (one level), then the directory. */
static void remove_tmpdir(void) {
    DIR *d = opendir(tmpdir);
    if (!d) return;
    struct dirent *e;
    char p[600];
    while ((e = readdir(d)) != NULL) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0) continue;
        snprintf(p, sizeof p, "%s/%s", tmpdir, e->d_name);
        if (rmdir(p) != 0) unlink(p);
    }
    closedir(d);
    rmdir(tmpdir);
}

/* Entries of tmpdir other than . and .. */
static int count_entries(void) {
    DIR *d = opendir(tmpdir);
    ck_assert_ptr_nonnull(d);
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL)
        n += strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0;
    closedir(d);
    return n;
}

static char *path_in(const char *name) {
    char *p = malloc(600);
    snprintf(p, 600, "%s/%s", tmpdir, name);
    return p;
}

static void write_bytes(const char *path, const void *p, size_t n) {
    FILE *f = fopen(path, "wb");
    ck_assert_ptr_nonnull(f);
    ck_assert_uint_eq(fwrite(p, 1, n, f), n);
    ck_assert_int_eq(fclose(f), 0);
}

/* ======================================================================================================= */
/* State files                                                                                             */
/* ======================================================================================================= */

typedef struct bad_case {
    const char *name;
    armt_status want;
} bad_case;

/* Every broken file: the status expected, a message, the state untouched; the good file still loads and
 * the context then computes what a fresh context given the same state computes. */
START_TEST(test_state_file_battery) {
    make_tmpdir();
    armt_runtime *rt = test_runtime();
    armt_model *m = tiny_model(rt, 1, 0), *other = tiny_model(rt, 2, 0), *other_shape = tiny_model(rt, 1, 2);
    armt_ctx *ctx = new_ctx(m), *octx = new_ctx(other), *sctx = new_ctx(other_shape);
    const int V = armt_model_config(m)->vocab_size;
    int32_t ids[20], next[12];
    test_random_ids(ids, 20, V, 11);
    test_random_ids(next, 12, V, 12);
    forward_ok(ctx, ids, 20, ARMT_SCHEDULE_DIAGONAL, NULL);
    forward_ok(octx, ids, 20, ARMT_SCHEDULE_DIAGONAL, NULL);
    forward_ok(sctx, ids, 20, ARMT_SCHEDULE_DIAGONAL, NULL);
    char *good = path_in("good.state");
    ck_assert_msg(armt_ctx_memory_save(ctx, good) == ARMT_OK, "%s", armt_ctx_last_error(ctx));
    char *data = NULL;
    size_t len = 0;
    armt_err err;
    armt_err_init(&err);
    ck_assert_int_eq(armt_read_file(good, NULL, 0, 0, &data, &len, &err), ARMT_OK);
    ck_assert_uint_gt(len, ARMT_STATE_HEADER_BYTES);

    /* the broken files */
    char *p;
    p = path_in("truncated");
    write_bytes(p, data, len - 7);
    free(p);
    p = path_in("header-only");
    write_bytes(p, data, ARMT_STATE_HEADER_BYTES);
    free(p);
    p = path_in("short-header");
    write_bytes(p, data, 20);
    free(p);
    p = path_in("trailing");
    {
        char *t = malloc(len + 1);
        memcpy(t, data, len);
        t[len] = 0;
        write_bytes(p, t, len + 1);
        free(t);
    }
    free(p);
    static const struct {
        const char *name;
        size_t off;
        unsigned char mask;
    } flips[] = {{"flip-magic", 3, 0x01},        {"flip-version", 8, 0x02},       {"flip-layers", 12, 0x01},
                 {"flip-fingerprint", 30, 0x80}, {"flip-payload-size", 33, 0x04}, {"flip-checksum", 45, 0x10},
                 {"flip-first-float", 64, 0x01}, {"flip-last-byte", 0, 0x01}};
    for (size_t i = 0; i < sizeof flips / sizeof flips[0]; i++) {
        char *t = malloc(len);
        memcpy(t, data, len);
        size_t off = flips[i].off ? flips[i].off : len - 1;
        t[off] = (char)(t[off] ^ flips[i].mask);
        p = path_in(flips[i].name);
        write_bytes(p, t, len);
        free(p);
        free(t);
    }
    p = path_in("other-model");
    ck_assert_int_eq(armt_ctx_memory_save(octx, p), ARMT_OK);
    free(p);
    p = path_in("other-shape");
    ck_assert_int_eq(armt_ctx_memory_save(sctx, p), ARMT_OK);
    free(p);
    p = path_in("empty");
    write_bytes(p, "", 0);
    free(p);
    p = path_in("directory");
    ck_assert_int_eq(mkdir(p, 0755), 0);
    free(p);
    p = path_in("fifo");
    ck_assert_int_eq(mkfifo(p, 0644), 0);
    free(p);
    p = path_in("text");
    write_bytes(p, "hello, this is not a state file at all; padding padding padding padding\n", 72);
    free(p);

    static const bad_case cases[] = {
        {"truncated", ARMT_STATUS_BAD_FILE},
        {"header-only", ARMT_STATUS_BAD_FILE},
        {"short-header", ARMT_STATUS_BAD_FILE},
        {"trailing", ARMT_STATUS_BAD_FILE},
        {"flip-magic", ARMT_STATUS_BAD_FILE},
        {"flip-version", ARMT_STATUS_UNSUPPORTED},
        {"flip-layers", ARMT_STATUS_MODEL_MISMATCH},
        {"flip-fingerprint", ARMT_STATUS_MODEL_MISMATCH},
        {"flip-payload-size", ARMT_STATUS_BAD_FILE},
        {"flip-checksum", ARMT_STATUS_BAD_FILE},
        {"flip-first-float", ARMT_STATUS_BAD_FILE},
        {"flip-last-byte", ARMT_STATUS_BAD_FILE},
        {"other-model", ARMT_STATUS_MODEL_MISMATCH},
        {"other-shape", ARMT_STATUS_MODEL_MISMATCH},
        {"empty", ARMT_STATUS_BAD_FILE},
        {"directory", ARMT_STATUS_IO_ERROR},
        {"fifo", ARMT_STATUS_IO_ERROR},
        {"text", ARMT_STATUS_BAD_FILE},
        {"does-not-exist", ARMT_STATUS_IO_ERROR},
    };
    /* a different state in the context than in the good file, so that a partial load would show */
    forward_ok(ctx, next, 12, ARMT_SCHEDULE_SEQUENTIAL, NULL);
    state before = state_get(ctx);
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        p = path_in(cases[i].name);
        armt_status st = armt_ctx_memory_load(ctx, p);
        ck_assert_msg(st == cases[i].want, "%s: %s (want %s): %s", cases[i].name, armt_status_str(st),
                      armt_status_str(cases[i].want), armt_ctx_last_error(ctx));
        ck_assert_msg(armt_ctx_last_error(ctx)[0] != '\0', "%s: no message", cases[i].name);
        state now = state_get(ctx);
        ck_assert_msg(state_eq(&before, &now), "%s changed the state", cases[i].name);
        state_free(&now);
        free(p);
    }
    /* nothing was written next to the files by the loads */
    ck_assert_int_eq(count_entries(), 1 + 4 + (int)(sizeof flips / sizeof flips[0]) + 6);

    /* the good file loads, and the context then agrees with a fresh one given the same file */
    ck_assert_msg(armt_ctx_memory_load(ctx, good) == ARMT_OK, "%s", armt_ctx_last_error(ctx));
    armt_ctx *fresh = new_ctx(m);
    ck_assert_int_eq(armt_ctx_memory_load(fresh, good), ARMT_OK);
    size_t nl = armt_output_count(m, ARMT_OUTPUT_LOGITS_ALL, 12);
    float *a = malloc(nl * 4), *b = malloc(nl * 4);
    forward_ok(ctx, next, 12, ARMT_SCHEDULE_DIAGONAL, a);
    forward_ok(fresh, next, 12, ARMT_SCHEDULE_DIAGONAL, b);
    ck_assert_msg(memcmp(a, b, nl * 4) == 0, "after the battery the context differs from a fresh one");
    /* and the state file is what a fresh context had: loading it into a third context gives its state */
    state sa = state_get(ctx), sb = state_get(fresh);
    ck_assert(state_eq(&sa, &sb));
    state_free(&sa);
    state_free(&sb);
    state_free(&before);
    free(a);
    free(b);
    free(data);
    free(good);
    armt_err_free(&err);
    armt_ctx_free(fresh);
    armt_ctx_free(ctx);
    armt_ctx_free(octx);
    armt_ctx_free(sctx);
    armt_model_free(m);
    armt_model_free(other);
    armt_model_free(other_shape);
    armt_runtime_free(rt);
    remove_tmpdir();
}
END_TEST

/* A failed save (the target is a directory, or in a directory that does not exist) reports IO_ERROR and
 * leaves no temporary file; a save over an existing file replaces it whole. */
START_TEST(test_state_save_errors) {
    make_tmpdir();
    armt_runtime *rt = test_runtime();
    armt_model *m = tiny_model(rt, 1, 0);
    armt_ctx *ctx = new_ctx(m);
    char *dirp = path_in("a-directory");
    ck_assert_int_eq(mkdir(dirp, 0755), 0);
    ck_assert_int_eq(armt_ctx_memory_save(ctx, dirp), ARMT_STATUS_IO_ERROR);
    ck_assert_int_eq(count_entries(), 1); /* the directory only: the temporary file is gone */
    char *missing = path_in("no-such-dir/state");
    ck_assert_int_eq(armt_ctx_memory_save(ctx, missing), ARMT_STATUS_IO_ERROR);
    ck_assert_msg(strstr(armt_ctx_last_error(ctx), "no-such-dir") != NULL, "%s", armt_ctx_last_error(ctx));
    ck_assert_int_eq(armt_ctx_memory_save(ctx, ""), ARMT_STATUS_IO_ERROR);
    /* over an existing, longer file */
    char *f = path_in("state");
    char junk[100000];
    memset(junk, 'x', sizeof junk);
    write_bytes(f, junk, sizeof junk);
    ck_assert_int_eq(armt_ctx_memory_save(ctx, f), ARMT_OK);
    ck_assert_int_eq(armt_ctx_memory_load(ctx, f), ARMT_OK);
    ck_assert_int_eq(count_entries(), 2);
    free(dirp);
    free(missing);
    free(f);
    armt_ctx_free(ctx);
    armt_model_free(m);
    armt_runtime_free(rt);
    remove_tmpdir();
}
END_TEST

/* Two writer processes, each replacing one path with its own complete state file again and again (through
 * armt_write_file_durable, the function armt_ctx_memory_save ends in), while this process loads the path
 * in a loop: every load succeeds and gives one of the two states exactly. The writers are forked before
 * any OpenCL object exists (a child of an OpenCL process may not use the library) and get their bytes
 * through a pipe. */
#define WRITES_PER_CHILD 150

static void writer_child(int fd, const char *path) {
    size_t len = 0;
    if (read(fd, &len, sizeof len) != (ssize_t)sizeof len) _exit(2);
    char *buf = malloc(len);
    size_t got = 0;
    while (buf && got < len) {
        ssize_t r = read(fd, buf + got, len - got);
        if (r <= 0) _exit(3);
        got += (size_t)r;
    }
    if (!buf) _exit(4);
    armt_err err;
    armt_err_init(&err);
    for (int i = 0; i < WRITES_PER_CHILD; i++)
        if (armt_write_file_durable(path, "writer", buf, len, &err) != ARMT_OK) _exit(5);
    armt_err_free(&err);
    free(buf);
    _exit(0);
}

START_TEST(test_state_save_two_processes) {
    make_tmpdir();
    char *path = path_in("shared.state");
    int pipes[2][2];
    pid_t pid[2];
    for (int i = 0; i < 2; i++) {
        ck_assert_int_eq(pipe(pipes[i]), 0);
        pid[i] = fork();
        ck_assert_int_ge(pid[i], 0);
        if (pid[i] == 0) {
            close(pipes[i][1]);
            writer_child(pipes[i][0], path);
        }
        close(pipes[i][0]);
    }
    armt_runtime *rt = test_runtime();
    armt_model *m = tiny_model(rt, 1, 0);
    armt_ctx *ctx = new_ctx(m);
    const int V = armt_model_config(m)->vocab_size;
    int32_t ids[24];
    state s[2];
    char *bytes[2];
    size_t len[2];
    armt_err err;
    armt_err_init(&err);
    for (int i = 0; i < 2; i++) {
        test_random_ids(ids, 24, V, 100 + (uint64_t)i);
        ck_assert_int_eq(armt_ctx_reset(ctx), ARMT_OK);
        forward_ok(ctx, ids, 24, ARMT_SCHEDULE_DIAGONAL, NULL);
        s[i] = state_get(ctx);
        char *p = path_in(i ? "b.state" : "a.state");
        ck_assert_int_eq(armt_ctx_memory_save(ctx, p), ARMT_OK);
        ck_assert_int_eq(armt_read_file(p, NULL, 0, 0, &bytes[i], &len[i], &err), ARMT_OK);
        free(p);
    }
    ck_assert(!state_eq(&s[0], &s[1]));
    /* the first complete file, so that the loads below never meet a missing path */
    ck_assert_int_eq(armt_write_file_durable(path, NULL, bytes[0], len[0], &err), ARMT_OK);
    signal(SIGPIPE, SIG_IGN);
    for (int i = 0; i < 2; i++) {
        ck_assert_int_eq(write(pipes[i][1], &len[i], sizeof len[i]), (ssize_t)sizeof len[i]);
        ck_assert_int_eq(write(pipes[i][1], bytes[i], len[i]), (ssize_t)len[i]);
        close(pipes[i][1]);
    }
    int loads = 0, seen[2] = {0, 0}, running = 2, status[2] = {0, 0}, done[2] = {0, 0};
    while (running > 0 || loads < 20) {
        armt_status st = armt_ctx_memory_load(ctx, path);
        ck_assert_msg(st == ARMT_OK, "load %d: %s: %s", loads, armt_status_str(st), armt_ctx_last_error(ctx));
        state now = state_get(ctx);
        int which = state_eq(&now, &s[0]) ? 0 : state_eq(&now, &s[1]) ? 1 : -1;
        ck_assert_msg(which >= 0, "load %d gave a state that neither writer saved", loads);
        seen[which]++;
        state_free(&now);
        loads++;
        for (int i = 0; i < 2; i++)
            if (!done[i] && waitpid(pid[i], &status[i], WNOHANG) == pid[i]) {
                done[i] = 1;
                running--;
            }
    }
    for (int i = 0; i < 2; i++)
        ck_assert_msg(WIFEXITED(status[i]) && WEXITSTATUS(status[i]) == 0, "writer %d failed (status %d)", i,
                      status[i]);
    /* the temporary files are all gone: a.state, b.state and shared.state are left */
    ck_assert_int_eq(count_entries(), 3);
    fprintf(stderr, "two writers x %d saves: %d loads, %d of state A, %d of state B\n", WRITES_PER_CHILD,
            loads, seen[0], seen[1]);
    for (int i = 0; i < 2; i++) {
        state_free(&s[i]);
        free(bytes[i]);
    }
    armt_err_free(&err);
    free(path);
    armt_ctx_free(ctx);
    armt_model_free(m);
    armt_runtime_free(rt);
    remove_tmpdir();
}
END_TEST

/* Two contexts of one model on two threads, saving to the same path 40 times each: the file is then one
 * of the two states, whole. */
typedef struct saver {
    armt_ctx *ctx;
    const char *path;
    armt_status st;
} saver;

static void *save_loop(void *arg) {
    saver *s = arg;
    for (int i = 0; i < 40 && s->st == ARMT_OK; i++)
        s->st = armt_ctx_memory_save(s->ctx, s->path);
    return NULL;
}

START_TEST(test_state_save_two_threads) {
    make_tmpdir();
    armt_runtime *rt = test_runtime();
    armt_model *m = tiny_model(rt, 1, 0);
    const int V = armt_model_config(m)->vocab_size;
    armt_ctx *c[2] = {new_ctx(m), new_ctx(m)};
    state s[2];
    int32_t ids[16];
    for (int i = 0; i < 2; i++) {
        test_random_ids(ids, 16, V, 200 + (uint64_t)i);
        forward_ok(c[i], ids, 16, ARMT_SCHEDULE_DIAGONAL, NULL);
        s[i] = state_get(c[i]);
    }
    char *path = path_in("shared.state");
    saver sv[2] = {{c[0], path, ARMT_OK}, {c[1], path, ARMT_OK}};
    pthread_t t[2];
    for (int i = 0; i < 2; i++)
        ck_assert_int_eq(pthread_create(&t[i], NULL, save_loop, &sv[i]), 0);
    for (int i = 0; i < 2; i++)
        ck_assert_int_eq(pthread_join(t[i], NULL), 0);
    for (int i = 0; i < 2; i++)
        ck_assert_msg(sv[i].st == ARMT_OK, "thread %d: %s", i, armt_ctx_last_error(c[i]));
    ck_assert_int_eq(count_entries(), 1);
    armt_ctx *r = new_ctx(m);
    ck_assert_int_eq(armt_ctx_memory_load(r, path), ARMT_OK);
    state now = state_get(r);
    ck_assert(state_eq(&now, &s[0]) || state_eq(&now, &s[1]));
    state_free(&now);
    for (int i = 0; i < 2; i++) {
        state_free(&s[i]);
        armt_ctx_free(c[i]);
    }
    armt_ctx_free(r);
    free(path);
    armt_model_free(m);
    armt_runtime_free(rt);
    remove_tmpdir();
}
END_TEST

/* ======================================================================================================= */
/* Misuse                                                                                                  */
/* ======================================================================================================= */

/* NULL handles: every function that takes one returns INVALID_ARGUMENT (or its documented neutral value)
 * and explains it in armt_last_error(). */
START_TEST(test_misuse_null_handles) {
    armt_forward_params fp = armt_forward_default_params();
    int32_t id = 0;
    float f[4];
    uint8_t wr[4];
    ck_assert_int_eq(armt_forward(NULL, &id, 1, &fp), ARMT_STATUS_INVALID_ARGUMENT);
    ck_assert_str_ne(armt_last_error(), "");
    ck_assert_int_eq(armt_generate(NULL, &id, 1, NULL, &id, 1, NULL), ARMT_STATUS_INVALID_ARGUMENT);
    ck_assert_int_eq(armt_ctx_reset(NULL), ARMT_STATUS_INVALID_ARGUMENT);
    ck_assert_int_eq(armt_ctx_memory_get(NULL, f, f, wr), ARMT_STATUS_INVALID_ARGUMENT);
    ck_assert_int_eq(armt_ctx_memory_set(NULL, f, f, wr), ARMT_STATUS_INVALID_ARGUMENT);
    ck_assert_int_eq(armt_ctx_memory_save(NULL, "/tmp/x"), ARMT_STATUS_INVALID_ARGUMENT);
    ck_assert_int_eq(armt_ctx_memory_load(NULL, "/tmp/x"), ARMT_STATUS_INVALID_ARGUMENT);
    armt_stats stats;
    ck_assert_int_eq(armt_ctx_stats(NULL, &stats), ARMT_STATUS_INVALID_ARGUMENT);
    ck_assert_uint_eq(armt_ctx_memory_w_count(NULL), 0);
    ck_assert_uint_eq(armt_ctx_memory_z_count(NULL), 0);
    ck_assert_ptr_null(armt_ctx_model(NULL));
    ck_assert_ptr_nonnull(armt_ctx_last_error(NULL));
    ck_assert_uint_eq(armt_ctx_profile(NULL, NULL, NULL, 0), 0);
    ck_assert_uint_eq(armt_ctx_profile_gemm(NULL, NULL, NULL, NULL, 0), 0);
    armt_ctx *ctx = (armt_ctx *)0x1;
    ck_assert_int_eq(armt_ctx_create(NULL, NULL, &ctx), ARMT_STATUS_INVALID_ARGUMENT);
    ck_assert_ptr_null(ctx);
    armt_config c;
    ck_assert_int_eq(armt_config_preset("tiny", &c), ARMT_OK);
    armt_model *m = (armt_model *)0x1;
    ck_assert_int_eq(armt_model_create_random(NULL, &c, NULL, &m), ARMT_STATUS_INVALID_ARGUMENT);
    ck_assert_ptr_null(m);
    m = (armt_model *)0x1;
    ck_assert_int_eq(armt_model_load(NULL, "/nonexistent", NULL, &m), ARMT_STATUS_INVALID_ARGUMENT);
    ck_assert_ptr_null(m);
    ck_assert_ptr_null(armt_model_config(NULL));
    ck_assert_uint_eq(armt_model_device_bytes(NULL), 0);
    ck_assert_uint_eq(armt_model_fingerprint(NULL), 0);
    ck_assert_ptr_nonnull(armt_model_last_error(NULL));
    ck_assert_uint_eq(armt_output_count(NULL, ARMT_OUTPUT_LOGITS_ALL, 5), 0);
    armt_device_info info;
    ck_assert_int_eq(armt_runtime_device_info(NULL, &info), ARMT_STATUS_INVALID_ARGUMENT);
    ck_assert_ptr_nonnull(armt_runtime_last_error(NULL));
    ck_assert_ptr_nonnull(armt_runtime_build_options(NULL));
    size_t n = 7;
    ck_assert_int_eq(armt_tokenizer_encode(NULL, "a", 1, 0, 0, &id, 1, &n), ARMT_STATUS_INVALID_ARGUMENT);
    char text[8];
    ck_assert_int_eq(armt_tokenizer_decode(NULL, &id, 1, 0, text, sizeof text, &n),
                     ARMT_STATUS_INVALID_ARGUMENT);
    ck_assert_int_eq(armt_tokenizer_vocab_size(NULL), 0);
    ck_assert_int_eq(armt_tokenizer_token_id(NULL, "a"), -1);
    ck_assert_ptr_nonnull(armt_tokenizer_last_error(NULL));
    /* every free accepts NULL */
    armt_ctx_free(NULL);
    armt_model_free(NULL);
    armt_runtime_free(NULL);
    armt_tokenizer_free(NULL);
    armt_device_list_free(NULL);
    armt_log_set(NULL, NULL);
}
END_TEST

/* NULL pointers next to valid handles. */
START_TEST(test_misuse_null_pointers) {
    armt_runtime *rt = NULL;
    ck_assert_int_eq(armt_runtime_create(NULL, NULL), ARMT_STATUS_INVALID_ARGUMENT);
    rt = test_runtime();
    armt_model *m = tiny_model(rt, 1, 0);
    armt_ctx *ctx = new_ctx(m);
    const int V = armt_model_config(m)->vocab_size;
    int32_t ids[10];
    test_random_ids(ids, 10, V, 5);
    forward_ok(ctx, ids, 10, ARMT_SCHEDULE_DIAGONAL, NULL);
    state before = state_get(ctx);
    armt_forward_params fp = armt_forward_default_params();
    ck_assert_int_eq(armt_forward(ctx, NULL, 10, &fp), ARMT_STATUS_INVALID_ARGUMENT);
    ck_assert_int_eq(armt_forward(ctx, ids, 10, NULL), ARMT_STATUS_INVALID_ARGUMENT);
    fp.output = ARMT_OUTPUT_LOGITS_LAST;
    fp.out_count = 1000;
    ck_assert_int_eq(armt_forward(ctx, ids, 10, &fp), ARMT_STATUS_INVALID_ARGUMENT); /* out NULL */
    ck_assert_int_eq(armt_ctx_memory_save(ctx, NULL), ARMT_STATUS_INVALID_ARGUMENT);
    ck_assert_int_eq(armt_ctx_memory_load(ctx, NULL), ARMT_STATUS_INVALID_ARGUMENT);
    ck_assert_int_eq(armt_ctx_memory_get(ctx, NULL, NULL, NULL), ARMT_OK); /* documented: any may be NULL */
    ck_assert_int_eq(armt_ctx_memory_set(ctx, before.w, NULL, before.wr), ARMT_STATUS_INVALID_ARGUMENT);
    ck_assert_int_eq(armt_ctx_stats(ctx, NULL), ARMT_STATUS_INVALID_ARGUMENT);
    int32_t out[4];
    armt_generate_params gp = armt_generate_default_params();
    gp.max_new_tokens = 2;
    ck_assert_int_eq(armt_generate(ctx, NULL, 3, &gp, out, 4, NULL), ARMT_STATUS_INVALID_ARGUMENT);
    ck_assert_int_eq(armt_generate(ctx, ids, 3, &gp, NULL, 0, NULL), ARMT_STATUS_INVALID_ARGUMENT);
    armt_ctx *c2 = (armt_ctx *)0x1;
    ck_assert_int_eq(armt_ctx_create(m, NULL, NULL), ARMT_STATUS_INVALID_ARGUMENT);
    ck_assert_int_eq(armt_model_create_random(rt, NULL, NULL, (armt_model **)&c2),
                     ARMT_STATUS_INVALID_ARGUMENT);
    armt_config c;
    ck_assert_int_eq(armt_config_preset("tiny", &c), ARMT_OK);
    ck_assert_int_eq(armt_model_create_random(rt, &c, NULL, NULL), ARMT_STATUS_INVALID_ARGUMENT);
    ck_assert_int_eq(armt_config_preset(NULL, &c), ARMT_STATUS_INVALID_ARGUMENT);
    ck_assert_int_eq(armt_config_preset("tiny", NULL), ARMT_STATUS_INVALID_ARGUMENT);
    ck_assert_int_eq(armt_config_validate(NULL, NULL, 0), ARMT_STATUS_INVALID_ARGUMENT);
    ck_assert_int_eq(armt_runtime_device_info(rt, NULL), ARMT_STATUS_INVALID_ARGUMENT);
    ck_assert_int_eq(armt_tokenizer_load(NULL, NULL), ARMT_STATUS_INVALID_ARGUMENT);
    ck_assert_int_eq(armt_device_list(NULL, NULL), ARMT_STATUS_INVALID_ARGUMENT);
    state now = state_get(ctx);
    ck_assert(state_eq(&before, &now));
    state_free(&now);
    state_free(&before);
    armt_ctx_free(ctx);
    armt_model_free(m);
    armt_runtime_free(rt);
}
END_TEST

/* out_count one float short for each output: INVALID_ARGUMENT naming both sizes, out untouched, state
 * unchanged; the exact size works. */
START_TEST(test_misuse_out_count_too_small) {
    armt_runtime *rt = test_runtime();
    armt_model *m = tiny_model(rt, 1, 0);
    armt_ctx *ctx = new_ctx(m);
    const int V = armt_model_config(m)->vocab_size;
    int32_t ids[10];
    test_random_ids(ids, 10, V, 6);
    forward_ok(ctx, ids, 10, ARMT_SCHEDULE_DIAGONAL, NULL);
    state before = state_get(ctx);
    const armt_output outs[3] = {ARMT_OUTPUT_LOGITS_ALL, ARMT_OUTPUT_LOGITS_LAST, ARMT_OUTPUT_HIDDEN};
    for (int o = 0; o < 3; o++) {
        size_t need = armt_output_count(m, outs[o], 10);
        float *out = malloc(need * 4);
        memset(out, 0x7f, need * 4);
        armt_forward_params fp = armt_forward_default_params();
        fp.output = outs[o];
        fp.out = out;
        fp.out_count = need - 1;
        ck_assert_int_eq(armt_forward(ctx, ids, 10, &fp), ARMT_STATUS_INVALID_ARGUMENT);
        ck_assert_msg(strstr(armt_ctx_last_error(ctx), "needs") != NULL, "%s", armt_ctx_last_error(ctx));
        for (size_t i = 0; i < need; i++)
            ck_assert_msg(((unsigned char *)out)[4 * i] == 0x7f, "out[%zu] written", i);
        state now = state_get(ctx);
        ck_assert(state_eq(&before, &now));
        state_free(&now);
        free(out);
    }
    int32_t gen[2];
    armt_generate_params gp = armt_generate_default_params();
    gp.max_new_tokens = 3;
    ck_assert_int_eq(armt_generate(ctx, ids, 10, &gp, gen, 2, NULL), ARMT_STATUS_INVALID_ARGUMENT);
    armt_tokenizer *tok = NULL;
    char path[600];
    snprintf(path, sizeof path, "%s/tokenizer/tokenizer.json", test_data_dir());
    ck_assert_int_eq(armt_tokenizer_load(path, &tok), ARMT_OK);
    size_t need = 0;
    ck_assert_int_eq(armt_tokenizer_encode(tok, "hello world", 11, 0, 0, ids, 0, &need),
                     ARMT_STATUS_INVALID_ARGUMENT);
    ck_assert_uint_gt(need, 0);
    ck_assert_int_eq(armt_tokenizer_encode(tok, "hello world", 11, 0, 0, ids, need - 1, &need),
                     ARMT_STATUS_INVALID_ARGUMENT);
    char text[2];
    size_t tl = 0;
    ck_assert_int_eq(armt_tokenizer_decode(tok, ids, 0, 0, text, 0, &tl), ARMT_STATUS_INVALID_ARGUMENT);
    ck_assert_uint_eq(tl, 1);
    armt_tokenizer_free(tok);
    state_free(&before);
    armt_ctx_free(ctx);
    armt_model_free(m);
    armt_runtime_free(rt);
}
END_TEST

/* Zero tokens: EMPTY_INPUT for a forward (every schedule) and a generation, the state unchanged; an empty
 * text encodes to zero ids (not an error). Bad enums and out-of-range ids: their statuses. */
START_TEST(test_misuse_zero_tokens_and_bad_values) {
    armt_runtime *rt = test_runtime();
    armt_model *m = tiny_model(rt, 1, 0);
    armt_ctx *ctx = new_ctx(m);
    const int V = armt_model_config(m)->vocab_size;
    int32_t ids[10];
    test_random_ids(ids, 10, V, 7);
    forward_ok(ctx, ids, 10, ARMT_SCHEDULE_DIAGONAL, NULL);
    state before = state_get(ctx);
    armt_forward_params fp = armt_forward_default_params();
    for (int s = 0; s < 3; s++) {
        fp.schedule = (armt_schedule)s;
        ck_assert_int_eq(armt_forward(ctx, ids, 0, &fp), ARMT_STATUS_EMPTY_INPUT);
        ck_assert_int_eq(armt_forward(ctx, NULL, 0, &fp), ARMT_STATUS_EMPTY_INPUT);
    }
    int32_t out[4];
    ck_assert_int_eq(armt_generate(ctx, ids, 0, NULL, out, 32, NULL), ARMT_STATUS_EMPTY_INPUT);
    fp = armt_forward_default_params();
    fp.schedule = (armt_schedule)7;
    ck_assert_int_eq(armt_forward(ctx, ids, 10, &fp), ARMT_STATUS_INVALID_ARGUMENT);
    fp.schedule = (armt_schedule)-1;
    ck_assert_int_eq(armt_forward(ctx, ids, 10, &fp), ARMT_STATUS_INVALID_ARGUMENT);
    fp = armt_forward_default_params();
    fp.output = (armt_output)9;
    ck_assert_int_eq(armt_forward(ctx, ids, 10, &fp), ARMT_STATUS_INVALID_ARGUMENT);
    fp = armt_forward_default_params();
    int32_t bad[3] = {1, V, 2};
    ck_assert_int_eq(armt_forward(ctx, bad, 3, &fp), ARMT_STATUS_TOKEN_OUT_OF_RANGE);
    bad[1] = -1;
    ck_assert_int_eq(armt_forward(ctx, bad, 3, &fp), ARMT_STATUS_TOKEN_OUT_OF_RANGE);
    armt_generate_params gp = armt_generate_default_params();
    gp.max_new_tokens = -1;
    ck_assert_int_eq(armt_generate(ctx, ids, 3, &gp, out, 4, NULL), ARMT_STATUS_INVALID_ARGUMENT);
    gp = armt_generate_default_params();
    gp.max_new_tokens = 2;
    gp.top_p = 2.0f;
    ck_assert_int_eq(armt_generate(ctx, ids, 3, &gp, out, 4, NULL), ARMT_STATUS_INVALID_ARGUMENT);
    gp.top_p = 1.0f;
    gp.schedule = ARMT_SCHEDULE_FULL;
    ck_assert_int_eq(armt_generate(ctx, ids, 3, &gp, out, 4, NULL), ARMT_STATUS_INVALID_ARGUMENT);
    state now = state_get(ctx);
    ck_assert(state_eq(&before, &now));
    state_free(&now);
    ck_assert_str_eq(armt_schedule_name((armt_schedule)99), "unknown");
    ck_assert_str_eq(armt_output_name((armt_output)-5), "unknown");
    ck_assert_str_eq(armt_status_str((armt_status)-999), "unknown status");
    armt_tokenizer *tok = NULL;
    char path[600];
    snprintf(path, sizeof path, "%s/tokenizer/tokenizer.json", test_data_dir());
    ck_assert_int_eq(armt_tokenizer_load(path, &tok), ARMT_OK);
    size_t n = 99;
    ck_assert_int_eq(armt_tokenizer_encode(tok, "", 0, 0, 0, NULL, 0, &n), ARMT_OK);
    ck_assert_uint_eq(n, 0);
    char text[4];
    ck_assert_int_eq(armt_tokenizer_decode(tok, NULL, 0, 0, text, sizeof text, &n), ARMT_OK);
    ck_assert_uint_eq(n, 0);
    armt_tokenizer_free(tok);
    state_free(&before);
    armt_ctx_free(ctx);
    armt_model_free(m);
    armt_runtime_free(rt);
}
END_TEST

/* A failed create leaves *out NULL and a message; everything called with that NULL afterwards returns
 * INVALID_ARGUMENT; the runtime and model that did work go on working. */
START_TEST(test_misuse_after_failed_create) {
    armt_runtime_params rp = armt_runtime_default_params();
    rp.platform = "no-such-platform-anywhere";
    armt_runtime *bad_rt = (armt_runtime *)0x1;
    ck_assert_int_eq(armt_runtime_create(&rp, &bad_rt), ARMT_STATUS_NO_DEVICE);
    ck_assert_ptr_null(bad_rt);
    ck_assert_str_ne(armt_last_error(), "");
    armt_config c;
    ck_assert_int_eq(armt_config_preset("tiny", &c), ARMT_OK);
    armt_model *m = (armt_model *)0x1;
    ck_assert_int_eq(armt_model_create_random(bad_rt, &c, NULL, &m), ARMT_STATUS_INVALID_ARGUMENT);
    ck_assert_ptr_null(m);
    armt_runtime_free(bad_rt);

    armt_runtime *rt = test_runtime();
    c.n_heads = 5; /* does not divide hidden_size = 64 with head_dim 16 */
    m = (armt_model *)0x1;
    armt_status st = armt_model_create_random(rt, &c, NULL, &m);
    ck_assert_int_eq(st, ARMT_STATUS_BAD_CONFIG);
    ck_assert_ptr_null(m);
    ck_assert_str_ne(armt_last_error(), "");
    armt_ctx *ctx = (armt_ctx *)0x1;
    ck_assert_int_eq(armt_ctx_create(m, NULL, &ctx), ARMT_STATUS_INVALID_ARGUMENT);
    ck_assert_ptr_null(ctx);
    armt_forward_params fp = armt_forward_default_params();
    int32_t id = 1;
    ck_assert_int_eq(armt_forward(ctx, &id, 1, &fp), ARMT_STATUS_INVALID_ARGUMENT);
    ck_assert_int_eq(armt_ctx_memory_save(ctx, "/tmp/never"), ARMT_STATUS_INVALID_ARGUMENT);
    armt_model_free(m);
    armt_ctx_free(ctx);
    m = (armt_model *)0x1;
    ck_assert_int_eq(armt_model_load(rt, "/nonexistent/checkpoint", NULL, &m), ARMT_STATUS_IO_ERROR);
    ck_assert_ptr_null(m);
    armt_tokenizer *tok = (armt_tokenizer *)0x1;
    ck_assert_int_eq(armt_tokenizer_load("/nonexistent/tokenizer.json", &tok), ARMT_STATUS_IO_ERROR);
    ck_assert_ptr_null(tok);
    size_t n = 0;
    ck_assert_int_eq(armt_tokenizer_encode(tok, "a", 1, 0, 0, &id, 1, &n), ARMT_STATUS_INVALID_ARGUMENT);
    /* the runtime still works */
    m = tiny_model(rt, 1, 0);
    ctx = new_ctx(m);
    forward_ok(ctx, &id, 1, ARMT_SCHEDULE_DIAGONAL, NULL);
    armt_ctx_free(ctx);
    armt_model_free(m);
    armt_runtime_free(rt);
}
END_TEST

/* ======================================================================================================= */
/* Cancellation                                                                                            */
/* ======================================================================================================= */

typedef struct cancel_at {
    uint64_t at, calls, last_done, total;
    int monotonic;
} cancel_at;

static int cancel_cb(uint64_t done, uint64_t total, void *user) {
    cancel_at *c = user;
    c->calls++;
    if (done <= c->last_done || done > total) c->monotonic = 0;
    c->last_done = done;
    c->total = total;
    return c->at != 0 && done >= c->at;
}

/* For each schedule and each step k: a forward cancelled after step k returns CANCELLED, has called the
 * callback k times, leaves the state unchanged, and the next forward equals a fresh context's. */
START_TEST(test_cancel_forward_every_step) {
    armt_runtime *rt = test_runtime();
    armt_model *m = tiny_model(rt, 3, 0);
    const int V = armt_model_config(m)->vocab_size;
    int32_t prime[12], ids[20], after[9];
    test_random_ids(prime, 12, V, 31);
    test_random_ids(ids, 20, V, 32);
    test_random_ids(after, 9, V, 33);
    size_t nl = armt_output_count(m, ARMT_OUTPUT_LOGITS_ALL, 9);
    float *want = malloc(nl * 4), *got = malloc(nl * 4),
          *junk = malloc(armt_output_count(m, ARMT_OUTPUT_LOGITS_ALL, 20) * 4);
    /* the reference: prime, then after (the cancelled call in between must change nothing) */
    armt_ctx *fresh = new_ctx(m);
    forward_ok(fresh, prime, 12, ARMT_SCHEDULE_DIAGONAL, NULL);
    forward_ok(fresh, after, 9, ARMT_SCHEDULE_DIAGONAL, want);
    armt_ctx_free(fresh);
    armt_ctx *ctx = new_ctx(m);
    for (int s = 0; s < 3; s++) {
        /* total steps, from an uncancelled run's callback */
        cancel_at probe = {0, 0, 0, 0, 1};
        armt_forward_params fp = armt_forward_default_params();
        fp.schedule = (armt_schedule)s;
        fp.progress = cancel_cb;
        fp.progress_user_data = &probe;
        ck_assert_int_eq(armt_ctx_reset(ctx), ARMT_OK);
        ck_assert_int_eq(armt_forward(ctx, ids, 20, &fp), ARMT_OK);
        ck_assert(probe.monotonic && probe.calls == probe.total && probe.total > 1);
        for (uint64_t k = 1; k <= probe.total; k++) {
            ck_assert_int_eq(armt_ctx_reset(ctx), ARMT_OK);
            forward_ok(ctx, prime, 12, ARMT_SCHEDULE_DIAGONAL, NULL);
            state before = state_get(ctx);
            cancel_at c = {k, 0, 0, 0, 1};
            fp.progress_user_data = &c;
            fp.output = (k & 1) ? ARMT_OUTPUT_LOGITS_ALL : ARMT_OUTPUT_NONE;
            fp.out = junk;
            fp.out_count = armt_output_count(m, ARMT_OUTPUT_LOGITS_ALL, 20);
            armt_status st = armt_forward(ctx, ids, 20, &fp);
            ck_assert_msg(st == ARMT_STATUS_CANCELLED, "schedule %d step %llu: %s", s, (unsigned long long)k,
                          armt_status_str(st));
            ck_assert_uint_eq(c.calls, k);
            ck_assert_msg(strstr(armt_ctx_last_error(ctx), "cancel") != NULL, "%s", armt_ctx_last_error(ctx));
            state now = state_get(ctx);
            ck_assert_msg(state_eq(&before, &now), "schedule %d: cancel after step %llu changed the state", s,
                          (unsigned long long)k);
            state_free(&now);
            state_free(&before);
            if (k == 1 || k == probe.total) {
                forward_ok(ctx, after, 9, ARMT_SCHEDULE_DIAGONAL, got);
                ck_assert_msg(memcmp(want, got, nl * 4) == 0,
                              "schedule %d: after a cancel at step %llu the "
                              "result differs from a fresh context's",
                              s, (unsigned long long)k);
            }
        }
    }
    free(want);
    free(got);
    free(junk);
    armt_ctx_free(ctx);
    armt_model_free(m);
    armt_runtime_free(rt);
}
END_TEST

/* A generation cancelled in the prompt's segments or among the new tokens: CANCELLED, the state as before,
 * and the next generation equals a fresh context's. A token callback's stop is no cancel. */
START_TEST(test_cancel_generate) {
    armt_runtime *rt = test_runtime();
    armt_model *m = tiny_model(rt, 4, 0);
    const int V = armt_model_config(m)->vocab_size;
    int32_t prime[10], prompt[21];
    test_random_ids(prime, 10, V, 41);
    test_random_ids(prompt, 21, V, 42); /* segment 8: two earlier segments + a tail of 5 */
    int32_t want[6], got[6];
    armt_generate_params gp = armt_generate_default_params();
    gp.max_new_tokens = 6;
    armt_ctx *fresh = new_ctx(m);
    forward_ok(fresh, prime, 10, ARMT_SCHEDULE_DIAGONAL, NULL);
    state state_ref = state_get(fresh);
    armt_generate_result r;
    ck_assert_int_eq(armt_generate(fresh, prompt, 21, &gp, want, 6, &r), ARMT_OK);
    ck_assert_uint_eq(r.n_tokens, 6);
    armt_ctx_free(fresh);

    armt_ctx *ctx = new_ctx(m);
    forward_ok(ctx, prime, 10, ARMT_SCHEDULE_DIAGONAL, NULL);
    cancel_at probe = {0, 0, 0, 0, 1};
    gp.progress = cancel_cb;
    gp.progress_user_data = &probe;
    state before = state_get(ctx);
    ck_assert(state_eq(&before, &state_ref));
    /* an uncancelled run to learn the total: restore the state afterwards */
    ck_assert_int_eq(armt_generate(ctx, prompt, 21, &gp, got, 6, NULL), ARMT_OK);
    ck_assert(probe.monotonic && probe.calls == probe.total);
    ck_assert_uint_eq(probe.total, 2 + 3 - 1 + 6); /* diagonal: S + Lyr - 1 steps for 2 segments, + tokens */
    ck_assert_int_eq(memcmp(want, got, sizeof want), 0);
    for (uint64_t k = 1; k <= probe.total; k++) {
        ck_assert_int_eq(armt_ctx_memory_set(ctx, before.w, before.z, before.wr), ARMT_OK);
        cancel_at c = {k, 0, 0, 0, 1};
        gp.progress_user_data = &c;
        armt_status st = armt_generate(ctx, prompt, 21, &gp, got, 6, NULL);
        ck_assert_msg(st == ARMT_STATUS_CANCELLED, "step %llu: %s", (unsigned long long)k,
                      armt_status_str(st));
        ck_assert_uint_eq(c.calls, k);
        state now = state_get(ctx);
        ck_assert_msg(state_eq(&before, &now), "cancel after step %llu changed the state",
                      (unsigned long long)k);
        state_free(&now);
    }
    /* then an uncancelled generation equals the fresh context's */
    gp.progress = NULL;
    ck_assert_int_eq(armt_generate(ctx, prompt, 21, &gp, got, 6, &r), ARMT_OK);
    ck_assert_int_eq(memcmp(want, got, sizeof want), 0);
    state_free(&before);
    state_free(&state_ref);
    armt_ctx_free(ctx);
    armt_model_free(m);
    armt_runtime_free(rt);
}
END_TEST

static Suite *suite(void) {
    Suite *s = suite_create("reliability");
    TCase *tc = test_tcase(s, "state files", 240);
    tcase_add_test(tc, test_state_file_battery);
    tcase_add_test(tc, test_state_save_errors);
    tcase_add_test(tc, test_state_save_two_processes);
    tcase_add_test(tc, test_state_save_two_threads);
    tc = test_tcase(s, "misuse", 240);
    tcase_add_test(tc, test_misuse_null_handles);
    tcase_add_test(tc, test_misuse_null_pointers);
    tcase_add_test(tc, test_misuse_out_count_too_small);
    tcase_add_test(tc, test_misuse_zero_tokens_and_bad_values);
    tcase_add_test(tc, test_misuse_after_failed_create);
    tc = test_tcase(s, "cancellation", 300);
    tcase_add_test(tc, test_cancel_forward_every_step);
    tcase_add_test(tc, test_cancel_generate);
    return s;
}

int main(void) { return test_run_suite(suite(), 1); }
