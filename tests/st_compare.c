/*
 * st_compare.c - a small test helper: compares one tensor of a safetensors file with one of another, or
 * prints a tensor's values. Used by tests/test_armt_run.sh (no Python needed to check armt-run's files).
 *
 *   st_compare A.safetensors NAME_A B.safetensors NAME_B TOL
 *       prints the max abs difference of the two tensors (same element count, same shape up to leading
 *       or trailing 1s) and exits 0 when it is <= TOL, 1 when it is larger or a value is NaN in one only
 *   st_compare --print FILE.safetensors NAME
 *       prints the values one per line with %.9g (integral values come out as integers, so a token-id
 *       tensor stored as F32 becomes an ids file for armt-run --ids)
 *   exit status 2: usage error, unreadable or malformed file, missing tensor, unsupported dtype
 *
 * The library's reader (lib/io/safetensors.h) accepts F32, F16 and BF16 only, but armt-run --save-outputs
 * also
 * writes input_ids as I32, so a file is read here with its own bounds-checked reader: F32, F16, BF16 (through
 * the library's conversions), I32 and I64, little-endian, converted to double. Jansson parses the header.
 */
#include "config.h"

#include "io/safetensors.h"

#include <errno.h>
#include <inttypes.h>
#include <jansson.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>

typedef struct tensor {
    int ndim;
    uint64_t shape[ST_MAX_DIMS];
    uint64_t numel;
    double *v;
} tensor;

static void die(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));
static void die(const char *fmt, ...) {
    va_list ap;
    fprintf(stderr, "st_compare: ");
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    exit(2);
}

static uint64_t le_u64(const unsigned char *p, int bytes) {
    uint64_t v = 0;
    for (int i = bytes - 1; i >= 0; i--)
        v = (v << 8) | p[i];
    return v;
}

/* Reads tensor `name` of `path` into t (values as doubles); exits 2 on any problem. */
static void load(const char *path, const char *name, tensor *t) {
    FILE *f = fopen(path, "rb");
    if (!f) die("%s: %s", path, strerror(errno));
    if (fseeko(f, 0, SEEK_END) != 0) die("%s: cannot seek", path);
    off_t end = ftello(f);
    rewind(f);
    unsigned char len8[8];
    if (end < 8 || fread(len8, 1, 8, f) != 8) die("%s: shorter than 8 bytes", path);
    uint64_t hlen = le_u64(len8, 8);
    uint64_t fsize = (uint64_t)end;
    if (hlen == 0 || hlen > ST_MAX_HEADER_BYTES || hlen > fsize - 8) die("%s: bad header length", path);
    char *header = malloc((size_t)hlen);
    if (!header) die("%s: out of memory", path);
    if (fread(header, 1, (size_t)hlen, f) != hlen) die("%s: truncated header", path);
    json_error_t jerr;
    json_t *root = json_loadb(header, (size_t)hlen, JSON_REJECT_DUPLICATES, &jerr);
    free(header);
    if (!json_is_object(root)) die("%s: the header is not a JSON object", path);
    json_t *e = json_object_get(root, name);
    if (!json_is_object(e)) die("%s: no tensor '%s'", path, name);
    const char *dtype = json_string_value(json_object_get(e, "dtype"));
    json_t *shape = json_object_get(e, "shape"), *offs = json_object_get(e, "data_offsets");
    if (!dtype || !json_is_array(shape) || !json_is_array(offs) || json_array_size(offs) != 2 ||
        json_array_size(shape) > ST_MAX_DIMS)
        die("%s: tensor '%s': malformed entry", path, name);
    /* the dtype as an index: the string belongs to the JSON tree, freed below */
    static const char *const dtypes[] = {"F32", "F16", "BF16", "I32", "I64"};
    static const size_t sizes[] = {4, 2, 2, 4, 8};
    int dt = -1;
    for (int i = 0; i < 5; i++)
        if (strcmp(dtype, dtypes[i]) == 0) dt = i;
    if (dt < 0) die("%s: unsupported dtype %s (F32, F16, BF16, I32, I64)", path, dtype);
    size_t esize = sizes[dt];
    t->ndim = (int)json_array_size(shape);
    t->numel = 1;
    for (int d = 0; d < t->ndim; d++) {
        json_t *x = json_array_get(shape, (size_t)d);
        if (!json_is_integer(x) || json_integer_value(x) < 0) die("%s: tensor '%s': bad shape", path, name);
        t->shape[d] = (uint64_t)json_integer_value(x);
        if (t->shape[d] != 0 && t->numel > UINT64_MAX / 8 / t->shape[d])
            die("%s: tensor '%s': too large", path, name);
        t->numel *= t->shape[d];
    }
    json_t *b0 = json_array_get(offs, 0), *b1 = json_array_get(offs, 1);
    if (!json_is_integer(b0) || !json_is_integer(b1) || json_integer_value(b0) < 0 ||
        json_integer_value(b1) < json_integer_value(b0))
        die("%s: tensor '%s': bad data_offsets", path, name);
    uint64_t begin = (uint64_t)json_integer_value(b0), stop = (uint64_t)json_integer_value(b1);
    if (stop - begin != t->numel * esize || stop > fsize - 8 - hlen)
        die("%s: tensor '%s': data_offsets do not match dtype x shape or the file", path, name);
    json_decref(root);

    unsigned char *raw = malloc(t->numel * esize + 1);
    t->v = malloc((t->numel + 1) * sizeof *t->v);
    if (!raw || !t->v) die("%s: out of memory", path);
    if (fseeko(f, (off_t)(8 + hlen + begin), SEEK_SET) != 0 ||
        fread(raw, esize, (size_t)t->numel, f) != t->numel)
        die("%s: tensor '%s': read failed", path, name);
    fclose(f);
    for (uint64_t i = 0; i < t->numel; i++) {
        const unsigned char *p = raw + i * esize;
        uint64_t bits = le_u64(p, (int)esize);
        switch (dt) {
        case 0: {
            uint32_t b32 = (uint32_t)bits;
            float fl;
            memcpy(&fl, &b32, 4);
            t->v[i] = fl;
            break;
        }
        case 1: t->v[i] = st_f16_to_f32((uint16_t)bits); break;
        case 2: t->v[i] = st_bf16_to_f32((uint16_t)bits); break;
        case 3: t->v[i] = (double)(int32_t)(uint32_t)bits; break;
        default: t->v[i] = (double)(int64_t)bits; break;
        }
    }
    free(raw);
}

/* Shapes equal once leading and trailing dimensions of size 1 are dropped ([1, 96] vs [96]). */
static int same_shape(const tensor *a, const tensor *b) {
    int a0 = 0, a1 = a->ndim, b0 = 0, b1 = b->ndim;
    while (a0 < a1 && a->shape[a0] == 1)
        a0++;
    while (a1 > a0 && a->shape[a1 - 1] == 1)
        a1--;
    while (b0 < b1 && b->shape[b0] == 1)
        b0++;
    while (b1 > b0 && b->shape[b1 - 1] == 1)
        b1--;
    if (a1 - a0 != b1 - b0) return 0;
    for (int i = 0; i < a1 - a0; i++)
        if (a->shape[a0 + i] != b->shape[b0 + i]) return 0;
    return 1;
}

static void print_shape(FILE *out, const tensor *t) {
    fputc('[', out);
    for (int d = 0; d < t->ndim; d++)
        fprintf(out, "%s%" PRIu64, d ? ", " : "", t->shape[d]);
    fputc(']', out);
}

int main(int argc, char **argv) {
    if (argc == 4 && strcmp(argv[1], "--print") == 0) {
        tensor t;
        load(argv[2], argv[3], &t);
        for (uint64_t i = 0; i < t.numel; i++)
            printf("%.9g\n", t.v[i]);
        free(t.v);
        return fflush(stdout) == 0 && !ferror(stdout) ? 0 : 2;
    }
    if (argc != 6) {
        fprintf(stderr, "usage: st_compare A.safetensors NAME_A B.safetensors NAME_B TOL\n"
                        "       st_compare --print FILE.safetensors NAME\n");
        return 2;
    }
    char *endp = NULL;
    errno = 0;
    double tol = strtod(argv[5], &endp);
    if (errno || !endp || *endp || !(tol >= 0)) die("TOL '%s' is not a number >= 0", argv[5]);
    tensor a, b;
    load(argv[1], argv[2], &a);
    load(argv[3], argv[4], &b);
    if (a.numel != b.numel || !same_shape(&a, &b)) {
        fprintf(stderr, "st_compare: shapes differ: %s:%s ", argv[1], argv[2]);
        print_shape(stderr, &a);
        fprintf(stderr, " vs %s:%s ", argv[3], argv[4]);
        print_shape(stderr, &b);
        fputc('\n', stderr);
        return 1;
    }
    double worst = 0.0;
    uint64_t at = 0;
    for (uint64_t i = 0; i < a.numel; i++) {
        double d;
        if (isnan(a.v[i]) || isnan(b.v[i]))
            d = isnan(a.v[i]) && isnan(b.v[i]) ? 0.0 : INFINITY;
        else
            d = fabs(a.v[i] - b.v[i]);
        if (d > worst || (i == 0 && d == 0)) {
            worst = d;
            at = i;
        }
    }
    int ok = worst <= tol;
    printf("%s:%s vs %s:%s: %" PRIu64 " values, max abs diff %.3g", argv[1], argv[2], argv[3], argv[4],
           a.numel, worst);
    if (a.numel > 0) printf(" (index %" PRIu64 ": %.9g vs %.9g)", at, a.v[at], b.v[at]);
    printf(", tolerance %.3g: %s\n", tol, ok ? "ok" : "FAILED");
    free(a.v);
    free(b.v);
    return ok ? 0 : 1;
}
