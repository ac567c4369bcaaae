/*
 * fuzz_ids.c - libFuzzer harness for armt-run's token-id text parser (cli_read_ids_file in
 * src/cli_common.c). See fuzz/README.md.
 *
 * The input is the text of an ids file (through a memfd); the first byte, when the input is not empty,
 * also picks the vocabulary size (1 + byte * 997). The result is compared with a reference reading of the
 * documented grammar written here independently: integers separated by whitespace and/or commas, '#' to
 * the end of the line a comment, each word an optional sign and decimal digits only (no length limit: a
 * long run of leading zeros is still a number), every value inside [0, vocab), at least one id. Both
 * must accept the same inputs and give the same ids.
 */
#include "config.h"

#include "cli_common.h"
#include "fuzz_util.h"

#include <ctype.h>

int LLVMFuzzerInitialize(int *argc, char ***argv) {
    (void)argc;
    (void)argv;
    armt_log_set(fuzz_log_cb, NULL);
    /* the parser reports errors on stderr (long runs: -close_fd_mask=2, sanitizer reports still show) */
    cli_init("fuzz_ids");
    return 0;
}

static int is_sep(int c) { return c == ' ' || (c >= '\t' && c <= '\r') || c == ','; }

/* Reference reading: returns the count (>= 1) or -1 when the text is not a valid ids file. */
static long reference(const uint8_t *d, size_t n, long vocab, int32_t *ids, size_t cap) {
    size_t i = 0;
    long count = 0;
    for (;;) {
        while (i < n && (is_sep(d[i]) || d[i] == '#')) {
            if (d[i] == '#')
                while (i < n && d[i] != '\n')
                    i++;
            else
                i++;
        }
        if (i == n) break;
        size_t s = i;
        while (i < n && !is_sep(d[i]) && d[i] != '#')
            i++;
        size_t p = s;
        int neg = 0;
        if (d[p] == '-' || d[p] == '+') neg = d[p++] == '-';
        if (p == i) return -1;
        long value = 0;
        int big = 0;
        for (size_t q = p; q < i; q++) {
            if (d[q] < '0' || d[q] > '9') return -1;
            if (!big) value = value * 10 + (d[q] - '0');
            if (value > 100000000L) big = 1;
        }
        if (neg && value != 0) return -1;
        if (big || value >= vocab) return -1;
        if ((size_t)count < cap) ids[count] = (int32_t)value;
        count++;
    }
    return count > 0 ? count : -1;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    long vocab = size ? 1 + (long)data[0] * 997 : 1000;
    const char *path = fuzz_memfd_path(data, size);
    if (!path) return 0;
    int32_t *ids = NULL;
    size_t count = 0;
    int rc = cli_read_ids_file(path, (int)vocab, &ids, &count);
    int32_t *want = malloc((size + 1) * sizeof *want);
    if (!want) {
        free(ids);
        return 0;
    }
    long ref = reference(data, size, vocab, want, size + 1);
    if (ref < 0) {
        if (rc == 0) fprintf(stderr, "accepted an invalid ids file (%zu ids)\n", count);
        FUZZ_CHECK(rc != 0);
        FUZZ_CHECK(ids == NULL && count == 0);
    } else {
        if (rc != 0) fprintf(stderr, "refused a valid ids file of %ld ids\n", ref);
        FUZZ_CHECK(rc == 0);
        FUZZ_CHECK(count == (size_t)ref);
        for (size_t i = 0; i < count; i++)
            FUZZ_CHECK(ids[i] == want[i]);
    }
    free(want);
    free(ids);
    return 0;
}
