/*
 * check_util.c - lib/common/util.c: whole-file reading, path joining, the monotonic clock (no device needed).
 */
#include "config.h"

#include "testutil.h"
#include "common/util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* A temporary file holding bytes[0..n); returns its path (static buffer). */
static const char *temp_file(const void *bytes, size_t n) {
    static char path[64];
    snprintf(path, sizeof path, "/tmp/check_util_%ld.bin", (long)getpid());
    FILE *f = fopen(path, "wb");
    ck_assert_ptr_nonnull(f);
    ck_assert_uint_eq(fwrite(bytes, 1, n, f), n);
    ck_assert_int_eq(fclose(f), 0);
    return path;
}

/* The bytes come back as written, NULs included, with one NUL added after them; sizes around the
 * reader's growth steps are read whole. */
START_TEST(test_read_file_bytes) {
    const size_t sizes[] = {0, 1, 4095, 4096, 65535 - 4096, 65535, 65536, 200001};
    for (size_t k = 0; k < sizeof sizes / sizeof sizes[0]; k++) {
        size_t n = sizes[k];
        unsigned char *data = malloc(n + 1);
        ck_assert_ptr_nonnull(data);
        for (size_t i = 0; i < n; i++)
            data[i] = (unsigned char)(i * 7 + 3); /* has NULs */
        const char *path = temp_file(data, n);
        armt_err err;
        armt_err_init(&err);
        char *text = NULL;
        size_t len = 12345;
        ck_assert_int_eq(armt_read_file(path, NULL, 0, 0, &text, &len, &err), ARMT_OK);
        ck_assert_uint_eq(len, n);
        ck_assert_ptr_nonnull(text);
        ck_assert_int_eq(memcmp(text, data, n), 0);
        ck_assert_int_eq(text[n], '\0');
        free(text);
        /* a limit equal to the size passes, one byte less fails */
        ck_assert_int_eq(armt_read_file(path, NULL, n ? n : 1, 0, &text, &len, &err), ARMT_OK);
        free(text);
        if (n > 1) {
            ck_assert_int_eq(armt_read_file(path, NULL, n - 1, 0, &text, &len, &err), ARMT_STATUS_BAD_FILE);
            ck_assert_ptr_null(text);
            ck_assert_ptr_nonnull(strstr(armt_err_msg(&err), "larger than"));
        }
        unlink(path);
        armt_err_free(&err);
        free(data);
    }
}
END_TEST

START_TEST(test_read_file_missing) {
    armt_err err;
    armt_err_init(&err);
    char *text = (char *)1;
    size_t len = 7;
    const char *path = "/nonexistent-dir-of-check-util/file.json";
    ck_assert_int_eq(armt_read_file(path, NULL, 0, 0, &text, &len, &err), ARMT_STATUS_IO_ERROR);
    ck_assert_ptr_null(text);
    ck_assert_ptr_nonnull(strstr(armt_err_msg(&err), path));
    ck_assert_ptr_nonnull(strstr(armt_err_msg(&err), "cannot open"));
    /* what names the reader at the start of every message */
    ck_assert_int_eq(armt_read_file(path, "tokenizer", 0, 0, &text, &len, &err), ARMT_STATUS_IO_ERROR);
    ck_assert_msg(strncmp(armt_err_msg(&err), "tokenizer: /nonexistent", 23) == 0, "%s", armt_err_msg(&err));
    /* missing_ok: not an error, nothing read */
    text = (char *)1;
    ck_assert_int_eq(armt_read_file(path, NULL, 0, 1, &text, &len, &err), ARMT_OK);
    ck_assert_ptr_null(text);
    ck_assert_uint_eq(len, 0);
    /* a directory opens but cannot be read: an error even with missing_ok */
    ck_assert_int_ne(armt_read_file("/", NULL, 0, 1, &text, &len, &err), ARMT_OK);
    ck_assert_ptr_null(text);
    armt_err_free(&err);
}
END_TEST

START_TEST(test_read_stream) {
    FILE *f = tmpfile();
    ck_assert_ptr_nonnull(f);
    fputs("abc\ndef", f);
    rewind(f);
    armt_err err;
    armt_err_init(&err);
    char *text = NULL;
    size_t len = 0;
    ck_assert_int_eq(armt_read_stream(f, "stream", "what", 0, &text, &len, &err), ARMT_OK);
    ck_assert_uint_eq(len, 7);
    ck_assert_str_eq(text, "abc\ndef");
    free(text);
    fclose(f);
    armt_err_free(&err);
}
END_TEST

START_TEST(test_paths) {
    const char *join[][3] = {
        {"dir", "name", "dir/name"}, {"/a/b", "c.json", "/a/b/c.json"},
        {"", "name", "name"},        {"dir", "/abs/name", "/abs/name"},
        {".", "x", "./x"},           {"/", "x", "//x"},
    };
    for (size_t i = 0; i < sizeof join / sizeof join[0]; i++) {
        char *p = armt_path_join(join[i][0], join[i][1]);
        ck_assert_ptr_nonnull(p);
        ck_assert_str_eq(p, join[i][2]);
        free(p);
    }
    const char *dir[][2] = {
        {"a/b/c", "a/b"}, {"/c", "/"}, {"c", "."}, {"a/", "a"}, {"/a/b.json", "/a"}, {"", "."},
    };
    for (size_t i = 0; i < sizeof dir / sizeof dir[0]; i++) {
        char *p = armt_path_dirname(dir[i][0]);
        ck_assert_ptr_nonnull(p);
        ck_assert_msg(strcmp(p, dir[i][1]) == 0, "dirname(\"%s\") = \"%s\", want \"%s\"", dir[i][0], p,
                      dir[i][1]);
        free(p);
    }
}
END_TEST

/* The clock moves forward, by about the time slept. */
START_TEST(test_clock) {
    double t0 = armt_now();
    usleep(20000);
    double t1 = armt_now();
    ck_assert_msg(t1 - t0 >= 0.019 && t1 - t0 < 5.0, "20 ms sleep measured as %g s", t1 - t0);
    ck_assert(armt_now() >= t1);
}
END_TEST

static Suite *suite(void) {
    Suite *s = suite_create("util");
    TCase *tc = tcase_create("util");
    tcase_add_test(tc, test_read_file_bytes);
    tcase_add_test(tc, test_read_file_missing);
    tcase_add_test(tc, test_read_stream);
    tcase_add_test(tc, test_paths);
    tcase_add_test(tc, test_clock);
    suite_add_tcase(s, tc);
    return s;
}

int main(void) { return test_run_suite(suite(), 0); }
