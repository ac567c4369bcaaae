/*
 * check_safetensors.c - the safetensors reader and writer (lib/io/safetensors.c).
 *
 * Every file is crafted byte by byte in a fresh temporary directory: an 8-byte little-endian length, the
 * header text exactly as given, then the data bytes. One test per rejection rule asserts both the status
 * and a distinctive part of the message; the positive tests compare against values worked out by hand
 * (bit patterns of known numbers), not against the library's own conversion code.
 */
#define _GNU_SOURCE
#include "io/safetensors.h"

#include "testutil.h"

#include <check.h>
#include <ftw.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* ===================================================================================================== */
/* Fixture and helpers                                                                                   */
/* ===================================================================================================== */

static char tmpdir[256];
static armt_err err;

static void setup(void) {
    snprintf(tmpdir, sizeof tmpdir, "%s/check_st_XXXXXX", getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
    ck_assert_ptr_nonnull(mkdtemp(tmpdir));
    armt_err_init(&err);
}

static int rm_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw) {
    (void)sb, (void)flag, (void)ftw;
    return remove(path);
}

static void teardown(void) {
    nftw(tmpdir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
    armt_err_free(&err);
}

/* Path of a file in the temp dir (a static buffer per call slot, so two may be alive at once). */
static const char *tpath(const char *name) {
    static char buf[4][512];
    static int slot;
    slot = (slot + 1) % 4;
    snprintf(buf[slot], sizeof buf[slot], "%s/%s", tmpdir, name);
    return buf[slot];
}

static void write_raw(const char *name, const void *bytes, size_t n) {
    FILE *f = fopen(tpath(name), "wb");
    ck_assert_ptr_nonnull(f);
    ck_assert_uint_eq(fwrite(bytes, 1, n, f), n);
    ck_assert_int_eq(fclose(f), 0);
}

/* Writes [hlen as u64 LE][header][data]. hlen_override != 0 replaces the true header length. */
static const char *write_st_len(const char *name, const char *header, const void *data, size_t data_len,
                                uint64_t hlen_override) {
    size_t hl = strlen(header);
    uint64_t len = hlen_override ? hlen_override : hl;
    size_t n = 8 + hl + data_len;
    unsigned char *buf = malloc(n);
    ck_assert_ptr_nonnull(buf);
    for (int i = 0; i < 8; i++)
        buf[i] = (unsigned char)(len >> (8 * i));
    memcpy(buf + 8, header, hl);
    if (data_len) memcpy(buf + 8 + hl, data, data_len);
    write_raw(name, buf, n);
    free(buf);
    return tpath(name);
}

static const char *write_st(const char *name, const char *header, const void *data, size_t data_len) {
    return write_st_len(name, header, data, data_len, 0);
}

/* Zero bytes for data sections whose content does not matter. */
static const unsigned char zeros[256];

/* Opens path, expects failure with status and a message containing substr (and nothing returned). */
#define EXPECT_OPEN_FAIL(path, want, substr)                                                   \
    do {                                                                                       \
        st_archive *a_ = (st_archive *)0x1;                                                    \
        armt_status s_ = st_open((path), &a_, &err);                                           \
        ck_assert_int_eq(s_, (want));                                                          \
        ck_assert_int_eq(err.status, (want));                                                  \
        ck_assert_ptr_null(a_);                                                                \
        ck_assert_msg(strstr(armt_err_msg(&err), (substr)) != NULL, "message '%s' lacks '%s'", \
                      armt_err_msg(&err), (substr));                                           \
    } while (0)

#define EXPECT_MSG(substr)                                                                 \
    ck_assert_msg(strstr(armt_err_msg(&err), (substr)) != NULL, "message '%s' lacks '%s'", \
                  armt_err_msg(&err), (substr))

static void put_f32(unsigned char *p, float f) {
    uint32_t u;
    memcpy(&u, &f, 4);
    for (int i = 0; i < 4; i++)
        p[i] = (unsigned char)(u >> (8 * i));
}

static void put_u16(unsigned char *p, uint16_t h) {
    p[0] = (unsigned char)h;
    p[1] = (unsigned char)(h >> 8);
}

static int exists(const char *path) { return access(path, F_OK) == 0; }

/* Bitwise equality (distinguishes -0 and +0, and works for NaN). */
static int same_bits(float a, float b) { return memcmp(&a, &b, sizeof a) == 0; }

/* ===================================================================================================== */
/* Rejections: framing                                                                                   */
/* ===================================================================================================== */

/* Fewer than 8 bytes: not even the length prefix. */
START_TEST(test_truncated) {
    write_raw("t.safetensors", "\x10\x00\x00\x00\x00", 5);
    EXPECT_OPEN_FAIL(tpath("t.safetensors"), ARMT_STATUS_BAD_FILE, "truncated");
    EXPECT_MSG("t.safetensors"); /* names the file */
}
END_TEST

/* A zero length would leave no header at all (the smallest valid header is "{}"). */
START_TEST(test_header_len_zero) {
    write_raw("z.safetensors", "\0\0\0\0\0\0\0\0{}", 10);
    EXPECT_OPEN_FAIL(tpath("z.safetensors"), ARMT_STATUS_BAD_FILE, "header length is 0");
}
END_TEST

/* The length prefix may claim more bytes than the file has. */
START_TEST(test_header_beyond_file) {
    const char *p = write_st_len("b.safetensors", "{}", NULL, 0, 3); /* says 3, file holds 2 */
    EXPECT_OPEN_FAIL(p, ARMT_STATUS_BAD_FILE, "beyond the end of the file");
}
END_TEST

/* Refused before any allocation, even though the file is tiny. */
START_TEST(test_header_too_large) {
    const char *p = write_st_len("l.safetensors", "{}", NULL, 0, 100000001ull);
    EXPECT_OPEN_FAIL(p, ARMT_STATUS_BAD_FILE, "100 MB");
}
END_TEST

/* Truncated JSON. */
START_TEST(test_header_not_json) {
    const char *p = write_st("j.safetensors", "{\"a\": ", NULL, 0);
    EXPECT_OPEN_FAIL(p, ARMT_STATUS_BAD_FILE, "not valid JSON");
}
END_TEST

/* Valid JSON, wrong top-level type. */
START_TEST(test_header_not_object) {
    const char *p = write_st("o.safetensors", "[1, 2]", NULL, 0);
    EXPECT_OPEN_FAIL(p, ARMT_STATUS_BAD_FILE, "not a JSON object");
}
END_TEST

/* Two entries for "w": which one is the tensor? Must be refused, not resolved silently. */
START_TEST(test_duplicate_keys) {
    const char *p = write_st("d.safetensors",
                             "{\"w\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},"
                             "\"w\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}",
                             zeros, 8);
    EXPECT_OPEN_FAIL(p, ARMT_STATUS_BAD_FILE, "duplicate key");
}
END_TEST

/* A path that does not exist is an I/O error naming the path. */
START_TEST(test_missing_file) {
    EXPECT_OPEN_FAIL(tpath("nope.safetensors"), ARMT_STATUS_IO_ERROR, "nope.safetensors");
}
END_TEST

/* __metadata__ is a map of strings to strings. */
START_TEST(test_metadata_not_strings) {
    const char *p = write_st("m.safetensors", "{\"__metadata__\":{\"a\":1}}", NULL, 0);
    EXPECT_OPEN_FAIL(p, ARMT_STATUS_BAD_FILE, "__metadata__ value of 'a'");
}
END_TEST

/* ===================================================================================================== */
/* Rejections: tensor entries                                                                            */
/* ===================================================================================================== */

/* I64 is a valid safetensors dtype that this library does not read: UNSUPPORTED, with the name. */
START_TEST(test_unknown_dtype) {
    const char *p = write_st("i.safetensors",
                             "{\"ids\":{\"dtype\":\"I64\",\"shape\":[1],\"data_offsets\":[0,8]}}", zeros, 8);
    EXPECT_OPEN_FAIL(p, ARMT_STATUS_UNSUPPORTED, "I64");
    EXPECT_MSG("'ids'");
}
END_TEST

/* shape must be a list... */
START_TEST(test_shape_not_list) {
    const char *p =
        write_st("s.safetensors", "{\"w\":{\"dtype\":\"F32\",\"shape\":2,\"data_offsets\":[0,8]}}", zeros, 8);
    EXPECT_OPEN_FAIL(p, ARMT_STATUS_BAD_FILE, "\"shape\" is not a list");
    EXPECT_MSG("'w'");
}
END_TEST

/* ...of non-negative integers... */
START_TEST(test_shape_negative) {
    const char *p = write_st("s.safetensors",
                             "{\"w\":{\"dtype\":\"F32\",\"shape\":[2,-1],\"data_offsets\":[0,8]}}", zeros, 8);
    EXPECT_OPEN_FAIL(p, ARMT_STATUS_BAD_FILE, "shape[1] is not a non-negative integer");
}
END_TEST

/* ...and integers, not reals. */
START_TEST(test_shape_not_integer) {
    const char *p = write_st("s.safetensors",
                             "{\"w\":{\"dtype\":\"F32\",\"shape\":[2.0],\"data_offsets\":[0,8]}}", zeros, 8);
    EXPECT_OPEN_FAIL(p, ARMT_STATUS_BAD_FILE, "shape[0] is not a non-negative integer");
}
END_TEST

/* Products that wrap around 64 bits must not pass as small sizes. */
START_TEST(test_size_overflow) {
    /* 2^32 * 2^32 elements overflow 64 bits */
    const char *p = write_st(
        "o.safetensors",
        "{\"w\":{\"dtype\":\"F32\",\"shape\":[4294967296,4294967296],\"data_offsets\":[0,8]}}", zeros, 8);
    EXPECT_OPEN_FAIL(p, ARMT_STATUS_BAD_FILE, "element count overflows");
    /* 2^62 elements fit, but 2^64 bytes do not */
    p = write_st("o2.safetensors",
                 "{\"w\":{\"dtype\":\"F32\",\"shape\":[4611686018427387904],\"data_offsets\":[0,8]}}", zeros,
                 8);
    EXPECT_OPEN_FAIL(p, ARMT_STATUS_BAD_FILE, "byte size overflows");
}
END_TEST

/* data_offsets: exactly two integers (and present at all). */
START_TEST(test_offsets_not_pair) {
    const char *p =
        write_st("p.safetensors", "{\"w\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0]}}", zeros, 4);
    EXPECT_OPEN_FAIL(p, ARMT_STATUS_BAD_FILE, "not a list of 2");
    p = write_st("p2.safetensors", "{\"w\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,\"4\"]}}",
                 zeros, 4);
    EXPECT_OPEN_FAIL(p, ARMT_STATUS_BAD_FILE, "not a list of 2");
    p = write_st("p3.safetensors", "{\"w\":{\"dtype\":\"F32\",\"shape\":[1]}}", zeros, 4);
    EXPECT_OPEN_FAIL(p, ARMT_STATUS_BAD_FILE, "not a list of 2");
}
END_TEST

/* begin > end. */
START_TEST(test_offsets_reversed) {
    const char *p = write_st("r.safetensors",
                             "{\"w\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[8,4]}}", zeros, 8);
    EXPECT_OPEN_FAIL(p, ARMT_STATUS_BAD_FILE, "reversed");
}
END_TEST

/* end past the data section (the file holds 4 data bytes, the tensor claims 8). */
START_TEST(test_offsets_outside) {
    const char *p = write_st("x.safetensors",
                             "{\"w\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}", zeros, 4);
    EXPECT_OPEN_FAIL(p, ARMT_STATUS_BAD_FILE, "outside the data section");
    EXPECT_MSG("'w'");
}
END_TEST

/* The byte range must match dtype size x element count exactly. */
START_TEST(test_offsets_wrong_size) {
    /* 3 F16 elements are 6 bytes, not 8 */
    const char *p = write_st("w.safetensors",
                             "{\"w\":{\"dtype\":\"F16\",\"shape\":[3],\"data_offsets\":[0,8]}}", zeros, 8);
    EXPECT_OPEN_FAIL(p, ARMT_STATUS_BAD_FILE, "needs 6");
}
END_TEST

/* Bytes owned by no tensor: between two tensors, after the last, before the first. */
START_TEST(test_hole) {
    const char *p = write_st("h.safetensors",
                             "{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},"
                             "\"b\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[8,12]}}",
                             zeros, 12);
    EXPECT_OPEN_FAIL(p, ARMT_STATUS_BAD_FILE, "hole");
    EXPECT_MSG("'b'");
    /* trailing bytes that belong to nobody */
    p = write_st("h2.safetensors", "{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}", zeros,
                 6);
    EXPECT_OPEN_FAIL(p, ARMT_STATUS_BAD_FILE, "2 trailing bytes");
    /* a leading gap */
    p = write_st("h3.safetensors", "{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}", zeros,
                 8);
    EXPECT_OPEN_FAIL(p, ARMT_STATUS_BAD_FILE, "bytes [0, 4)");
}
END_TEST

/* Two tensors sharing bytes 4..8. */
START_TEST(test_overlap) {
    const char *p = write_st("v.safetensors",
                             "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
                             "\"b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[4,12]}}",
                             zeros, 12);
    EXPECT_OPEN_FAIL(p, ARMT_STATUS_BAD_FILE, "overlaps");
    EXPECT_MSG("'b' overlaps tensor 'a'");
}
END_TEST

/* ===================================================================================================== */
/* Rejections: sharded index                                                                             */
/* ===================================================================================================== */

static void write_text(const char *name, const char *text) { write_raw(name, text, strlen(text)); }

/* The index names a shard file that does not exist: an I/O error naming it. */
START_TEST(test_missing_shard) {
    write_st("s1.safetensors", "{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}", zeros, 4);
    write_text("model.safetensors.index.json",
               "{\"metadata\":{},\"weight_map\":{\"a\":\"s1.safetensors\",\"b\":\"s2.safetensors\"}}");
    EXPECT_OPEN_FAIL(tpath("model.safetensors.index.json"), ARMT_STATUS_IO_ERROR, "s2.safetensors");
    EXPECT_MSG("missing");
}
END_TEST

/* A shard name that is a path (absolute, or reaching out of the index's folder) is refused. */
START_TEST(test_index_shard_path) {
    write_st("s1.safetensors", "{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}", zeros, 4);
    write_text("abs.index.json", "{\"weight_map\":{\"a\":\"/etc/passwd\"}}");
    EXPECT_OPEN_FAIL(tpath("abs.index.json"), ARMT_STATUS_BAD_FILE, "/etc/passwd");
    EXPECT_MSG("plain file name");
    write_text("up.index.json", "{\"weight_map\":{\"a\":\"../s1.safetensors\"}}");
    EXPECT_OPEN_FAIL(tpath("up.index.json"), ARMT_STATUS_BAD_FILE, "../s1.safetensors");
}
END_TEST

/* The index maps a tensor to a shard whose header lacks it. */
START_TEST(test_index_tensor_absent) {
    write_st("s1.safetensors", "{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}", zeros, 4);
    write_text("model.safetensors.index.json",
               "{\"weight_map\":{\"a\":\"s1.safetensors\",\"ghost\":\"s1.safetensors\"}}");
    EXPECT_OPEN_FAIL(tpath("model.safetensors.index.json"), ARMT_STATUS_MISSING_TENSOR, "'ghost'");
    EXPECT_MSG("s1.safetensors");
}
END_TEST

/* An index without a weight_map object, and one with a duplicate key. */
START_TEST(test_index_bad) {
    write_text("bad.index.json", "{\"weight_map\":[]}");
    EXPECT_OPEN_FAIL(tpath("bad.index.json"), ARMT_STATUS_BAD_FILE, "weight_map");
    write_text("bad2.index.json", "{\"weight_map\":{\"a\":\"x\",\"a\":\"y\"}}");
    EXPECT_OPEN_FAIL(tpath("bad2.index.json"), ARMT_STATUS_BAD_FILE, "duplicate key");
}
END_TEST

/* The same tensor name in two shards is ambiguous. */
START_TEST(test_tensor_in_two_shards) {
    write_st("s1.safetensors", "{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}", zeros, 4);
    write_st("s2.safetensors", "{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}", zeros, 4);
    write_text("i.json", "{\"weight_map\":{\"a\":\"s1.safetensors\",\"x\":\"s2.safetensors\"}}");
    EXPECT_OPEN_FAIL(tpath("i.json"), ARMT_STATUS_BAD_FILE, "appears in both");
}
END_TEST

/* A directory with neither file. */
START_TEST(test_empty_dir) { EXPECT_OPEN_FAIL(tmpdir, ARMT_STATUS_IO_ERROR, "neither model.safetensors"); }
END_TEST

/* ===================================================================================================== */
/* Reading values                                                                                        */
/* ===================================================================================================== */

/* F32 values come back bit for bit; metadata and shape fields are reported; windows are range-checked. */
START_TEST(test_read_f32) {
    const float vals[5] = {1.0f, -2.5f, 3.14159f, 0.0f, 1e-30f};
    unsigned char data[20];
    for (int i = 0; i < 5; i++)
        put_f32(data + 4 * i, vals[i]);
    const char *p = write_st("f.safetensors",
                             "{\"__metadata__\":{\"format\":\"pt\",\"k\":\"v\"},"
                             "\"m\":{\"dtype\":\"F32\",\"shape\":[1,5],\"data_offsets\":[0,20]}}",
                             data, 20);
    st_archive *a = NULL;
    ck_assert_int_eq(st_open(p, &a, &err), ARMT_OK);
    ck_assert_uint_eq(st_count(a), 1);
    const st_tensor *t = st_find(a, "m");
    ck_assert_ptr_nonnull(t);
    ck_assert_ptr_eq(t, st_get(a, 0));
    ck_assert_ptr_null(st_get(a, 1));
    ck_assert_ptr_null(st_find(a, "n"));
    ck_assert_int_eq(t->dtype, ST_F32);
    ck_assert_int_eq(t->ndim, 2);
    ck_assert_uint_eq(t->shape[0], 1);
    ck_assert_uint_eq(t->shape[1], 5);
    ck_assert_uint_eq(t->numel, 5);
    ck_assert_uint_eq(t->nbytes, 20);
    /* header length field + header text */
    ck_assert_uint_eq(t->data_offset,
                      8 + strlen("{\"__metadata__\":{\"format\":\"pt\",\"k\":\"v\"},"
                                 "\"m\":{\"dtype\":\"F32\",\"shape\":[1,5],\"data_offsets\":[0,20]}}"));
    ck_assert_str_eq(st_metadata(a, "format"), "pt");
    ck_assert_str_eq(st_metadata(a, "k"), "v");
    ck_assert_ptr_null(st_metadata(a, "absent"));

    float out[5] = {0};
    ck_assert_int_eq(st_read_f32(a, t, 0, 5, out, &err), ARMT_OK);
    for (int i = 0; i < 5; i++)
        ck_assert(same_bits(out[i], vals[i]));
    /* a window in the middle */
    float mid[2] = {0};
    ck_assert_int_eq(st_read_f32(a, t, 2, 2, mid, &err), ARMT_OK);
    ck_assert(same_bits(mid[0], vals[2]) && same_bits(mid[1], vals[3]));
    /* out of range windows */
    ck_assert_int_eq(st_read_f32(a, t, 4, 2, out, &err), ARMT_STATUS_INVALID_ARGUMENT);
    EXPECT_MSG("'m'");
    ck_assert_int_eq(st_read_f32(a, t, UINT64_MAX, 2, out, &err), ARMT_STATUS_INVALID_ARGUMENT);
    ck_assert_int_eq(st_read_f32(a, t, 5, 0, out, &err), ARMT_OK);
    st_close(a);
}
END_TEST

START_TEST(test_read_f16) {
    /* bit patterns and their values, computed by hand from the binary16 definition */
    const uint16_t bits[] = {0x3C00, 0xC000, 0x0001, 0x03FF, 0x0400, 0x7BFF,
                             0x3555, 0x8000, 0x7C00, 0xFC00, 0x7E00};
    const float want[] = {1.0f,
                          -2.0f,
                          ldexpf(1.0f, -24),    /* smallest subnormal       */
                          ldexpf(1023.0f, -24), /* largest subnormal        */
                          ldexpf(1.0f, -14),    /* smallest normal          */
                          65504.0f,             /* largest finite           */
                          0.333251953125f,      /* 1365 / 4096              */
                          -0.0f,
                          INFINITY,
                          -INFINITY,
                          NAN};
    enum { N = sizeof bits / sizeof bits[0] };
    unsigned char data[2 * N];
    for (int i = 0; i < N; i++)
        put_u16(data + 2 * i, bits[i]);
    char header[128];
    snprintf(header, sizeof header, "{\"h\":{\"dtype\":\"F16\",\"shape\":[%d],\"data_offsets\":[0,%d]}}", N,
             2 * N);
    const char *p = write_st("h.safetensors", header, data, sizeof data);
    st_archive *a = NULL;
    ck_assert_int_eq(st_open(p, &a, &err), ARMT_OK);
    const st_tensor *t = st_find(a, "h");
    ck_assert_int_eq(t->dtype, ST_F16);
    float out[N];
    ck_assert_int_eq(st_read_f32(a, t, 0, N, out, &err), ARMT_OK);
    for (int i = 0; i < N - 1; i++)
        ck_assert_msg(same_bits(out[i], want[i]), "f16 0x%04x: got %a want %a", bits[i], (double)out[i],
                      (double)want[i]);
    ck_assert(isnan(out[N - 1]));
    st_close(a);
}
END_TEST

/* bf16 patterns: 1.5 = 0x3FC0, -5 = 0xC0A0, smallest subnormal 0x0001 = 2^-133. */
START_TEST(test_read_bf16) {
    const uint16_t bits[] = {0x3FC0, 0xC0A0, 0x3F80, 0x0001, 0x7F80, 0x8000};
    const float want[] = {1.5f, -5.0f, 1.0f, ldexpf(1.0f, -133), INFINITY, -0.0f};
    enum { N = sizeof bits / sizeof bits[0] };
    unsigned char data[2 * N];
    for (int i = 0; i < N; i++)
        put_u16(data + 2 * i, bits[i]);
    const char *p =
        write_st("b.safetensors", "{\"b\":{\"dtype\":\"BF16\",\"shape\":[2,3],\"data_offsets\":[0,12]}}",
                 data, sizeof data);
    st_archive *a = NULL;
    ck_assert_int_eq(st_open(p, &a, &err), ARMT_OK);
    const st_tensor *t = st_find(a, "b");
    ck_assert_int_eq(t->dtype, ST_BF16);
    float out[N];
    ck_assert_int_eq(st_read_f32(a, t, 0, N, out, &err), ARMT_OK);
    for (int i = 0; i < N; i++)
        ck_assert_msg(same_bits(out[i], want[i]), "bf16 0x%04x", bits[i]);
    st_close(a);
}
END_TEST

/* A BF16 tensor larger than the reader's staging buffer, read in odd windows. Values are small integers,
 * whose bf16 pattern is the top half of their float pattern (exact). */
START_TEST(test_chunked_reads) {
    enum { N = 150001 };
    unsigned char *data = malloc(2 * N + 4);
    ck_assert_ptr_nonnull(data);
    put_f32(data, 42.0f); /* a leading F32 scalar, so the BF16 tensor starts at an odd-ish offset */
    for (int i = 0; i < N; i++) {
        float f = (float)(i % 251) - 125.0f;
        uint32_t u;
        memcpy(&u, &f, 4);
        put_u16(data + 4 + 2 * i, (uint16_t)(u >> 16));
    }
    char header[256];
    snprintf(header, sizeof header,
             "{\"s\":{\"dtype\":\"F32\",\"shape\":[],\"data_offsets\":[0,4]},"
             "\"big\":{\"dtype\":\"BF16\",\"shape\":[%d],\"data_offsets\":[4,%d]}}",
             N, 4 + 2 * N);
    const char *p = write_st("c.safetensors", header, data, 2 * N + 4);
    free(data);

    st_archive *a = NULL;
    ck_assert_int_eq(st_open(p, &a, &err), ARMT_OK);
    const st_tensor *s = st_find(a, "s");
    ck_assert_int_eq(s->ndim, 0);
    ck_assert_uint_eq(s->numel, 1);
    float sv = 0;
    ck_assert_int_eq(st_read_f32(a, s, 0, 1, &sv, &err), ARMT_OK);
    ck_assert(sv == 42.0f);

    const st_tensor *t = st_find(a, "big");
    float *out = malloc(N * sizeof *out);
    ck_assert_ptr_nonnull(out);
    const uint64_t windows[][2] = {{0, N}, {1, 70000}, {65535, 65538}, {N - 1, 1}, {12345, 0}};
    for (size_t w = 0; w < sizeof windows / sizeof windows[0]; w++) {
        uint64_t first = windows[w][0], count = windows[w][1];
        ck_assert_int_eq(st_read_f32(a, t, first, count, out, &err), ARMT_OK);
        for (uint64_t i = 0; i < count; i++)
            ck_assert_msg(out[i] == (float)((first + i) % 251) - 125.0f, "element %llu",
                          (unsigned long long)(first + i));
    }
    free(out);
    st_close(a);
}
END_TEST

/* Two shards, opened through the index file and through the directory. */
START_TEST(test_sharded) {
    unsigned char d1[12], d2[4];
    put_f32(d1, 1.0f);
    put_f32(d1 + 4, 2.0f);
    put_f32(d1 + 8, 3.0f);
    put_u16(d2, 0x4000);     /* bf16 2.0 */
    put_u16(d2 + 2, 0xBF80); /* bf16 -1.0 */
    write_st("model-00001-of-00002.safetensors",
             "{\"__metadata__\":{\"format\":\"pt\"},"
             "\"x\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
             "\"y\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[8,12]}}",
             d1, sizeof d1);
    write_st("model-00002-of-00002.safetensors",
             "{\"__metadata__\":{\"format\":\"other\"},\"z\":{\"dtype\":\"BF16\",\"shape\":[2],\"data_"
             "offsets\":[0,4]}}",
             d2, sizeof d2);
    write_text("model.safetensors.index.json",
               "{\"metadata\":{\"total_size\":16},\"weight_map\":{\"z\":\"model-00002-of-00002.safetensors\","
               "\"x\":\"model-00001-of-00002.safetensors\",\"y\":\"model-00001-of-00002.safetensors\"}}");

    const char *paths[2] = {tpath("model.safetensors.index.json"), tmpdir};
    for (int k = 0; k < 2; k++) {
        st_archive *a = NULL;
        ck_assert_int_eq(st_open(paths[k], &a, &err), ARMT_OK);
        ck_assert_uint_eq(st_count(a), 3);
        ck_assert_int_eq(st_shard_count(a), 2);
        ck_assert_str_eq(st_metadata(a, "format"), "pt"); /* first shard's */
        const st_tensor *x = st_find(a, "x"), *y = st_find(a, "y"), *z = st_find(a, "z");
        ck_assert(x && y && z);
        ck_assert_int_eq(x->shard, y->shard);
        ck_assert_int_ne(x->shard, z->shard);
        ck_assert_ptr_nonnull(strstr(st_shard_path(a, z->shard), "model-00002-of-00002.safetensors"));
        float v[2];
        ck_assert_int_eq(st_read_f32(a, x, 0, 2, v, &err), ARMT_OK);
        ck_assert(v[0] == 1.0f && v[1] == 2.0f);
        ck_assert_int_eq(st_read_f32(a, y, 0, 1, v, &err), ARMT_OK);
        ck_assert(v[0] == 3.0f);
        ck_assert_int_eq(st_read_f32(a, z, 0, 2, v, &err), ARMT_OK);
        ck_assert(v[0] == 2.0f && v[1] == -1.0f);
        st_close(a);
    }
}
END_TEST

/* A directory with model.safetensors (no __metadata__ in it). */
START_TEST(test_directory_single) {
    unsigned char d[4];
    put_f32(d, 7.0f);
    write_st("model.safetensors", "{\"w\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}", d, 4);
    st_archive *a = NULL;
    ck_assert_int_eq(st_open(tmpdir, &a, &err), ARMT_OK);
    ck_assert_int_eq(st_shard_count(a), 1);
    ck_assert_ptr_null(st_metadata(a, "format")); /* no __metadata__ at all */
    float v = 0;
    ck_assert_int_eq(st_read_f32(a, st_find(a, "w"), 0, 1, &v, &err), ARMT_OK);
    ck_assert(v == 7.0f);
    st_close(a);
    st_close(NULL);
}
END_TEST

/* Empty tensors (numel 0) take no bytes and may share an offset with a neighbour. */
START_TEST(test_empty_tensor) {
    const char *p = write_st("e.safetensors",
                             "{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},"
                             "\"e\":{\"dtype\":\"F16\",\"shape\":[3,0],\"data_offsets\":[4,4]},"
                             "\"b\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}",
                             zeros, 8);
    st_archive *a = NULL;
    ck_assert_int_eq(st_open(p, &a, &err), ARMT_OK);
    ck_assert_uint_eq(st_find(a, "e")->numel, 0);
    st_close(a);
}
END_TEST

/* ===================================================================================================== */
/* Writer                                                                                                */
/* ===================================================================================================== */

/* Write four tensors (one empty, one scalar) in chunks that straddle tensor boundaries, read them back. */
START_TEST(test_writer_round_trip) {
    const char *path = tpath("out.safetensors");
    st_writer *w = NULL;
    ck_assert_int_eq(st_writer_open(path, &w, &err), ARMT_OK);
    ck_assert(exists(tpath("out.safetensors.tmp")));
    const uint64_t s1[2] = {3, 4}, s2[1] = {5}, s3[1] = {0};
    ck_assert_int_eq(st_writer_add(w, "layer.0.w", 2, s1, &err), ARMT_OK);
    ck_assert_int_eq(st_writer_add(w, "empty", 1, s3, &err), ARMT_OK);
    ck_assert_int_eq(st_writer_add(w, "bias", 1, s2, &err), ARMT_OK);
    ck_assert_int_eq(st_writer_add(w, "scalar", 0, NULL, &err), ARMT_OK);
    ck_assert_int_eq(st_writer_add(w, "bias", 1, s2, &err), ARMT_STATUS_INVALID_ARGUMENT);
    EXPECT_MSG("declared twice");
    ck_assert_int_eq(st_writer_meta(w, "armt_config", "{\"d\":1}", &err), ARMT_OK);
    ck_assert_int_eq(st_writer_meta(w, "format", "pt", &err), ARMT_OK);

    float data[18];
    for (int i = 0; i < 18; i++)
        data[i] = (float)i * 0.5f - 3.0f;
    /* chunks that straddle tensor boundaries: 5 | 9 | 4 */
    ck_assert_int_eq(st_writer_write(w, data, 5, &err), ARMT_OK);
    ck_assert_int_eq(st_writer_add(w, "late", 1, s2, &err), ARMT_STATUS_INVALID_ARGUMENT);
    EXPECT_MSG("after data");
    ck_assert_int_eq(st_writer_write(w, data + 5, 9, &err), ARMT_OK);
    ck_assert_int_eq(st_writer_write(w, data + 14, 4, &err), ARMT_OK);
    ck_assert_int_eq(st_writer_close(w, &err), ARMT_OK);
    ck_assert(exists(path));
    ck_assert(!exists(tpath("out.safetensors.tmp")));

    st_archive *a = NULL;
    ck_assert_int_eq(st_open(path, &a, &err), ARMT_OK);
    ck_assert_uint_eq(st_count(a), 4);
    ck_assert_str_eq(st_get(a, 0)->name, "layer.0.w"); /* declaration order kept */
    ck_assert_str_eq(st_get(a, 3)->name, "scalar");
    ck_assert_str_eq(st_metadata(a, "armt_config"), "{\"d\":1}");
    ck_assert_str_eq(st_metadata(a, "format"), "pt");
    const st_tensor *t = st_find(a, "layer.0.w");
    ck_assert_int_eq(t->ndim, 2);
    ck_assert_uint_eq(t->shape[0], 3);
    ck_assert_uint_eq(t->shape[1], 4);
    ck_assert_uint_eq(t->data_offset % 8, 0); /* header padded */
    float back[18];
    ck_assert_int_eq(st_read_f32(a, t, 0, 12, back, &err), ARMT_OK);
    ck_assert_int_eq(st_read_f32(a, st_find(a, "bias"), 0, 5, back + 12, &err), ARMT_OK);
    ck_assert_int_eq(st_read_f32(a, st_find(a, "scalar"), 0, 1, back + 17, &err), ARMT_OK);
    ck_assert_int_eq(st_find(a, "scalar")->ndim, 0);
    ck_assert_uint_eq(st_find(a, "empty")->numel, 0);
    for (int i = 0; i < 18; i++)
        ck_assert(back[i] == data[i]);
    st_close(a);
}
END_TEST

/* An I32 tensor after an F32 one: the file's bytes are exactly the safetensors layout written by hand
 * (compact JSON in declaration order, spaces to a multiple of 8, little-endian data); the reader refuses
 * I32, and each tensor takes only its own element type. */
START_TEST(test_writer_i32) {
    const char *path = tpath("i32.safetensors");
    st_writer *w = NULL;
    const uint64_t s2[1] = {2}, s3[1] = {3};
    ck_assert_int_eq(st_writer_open(path, &w, &err), ARMT_OK);
    ck_assert_int_eq(st_writer_add_typed(w, "x", ST_F32, 1, s2, &err), ARMT_OK);
    ck_assert_int_eq(st_writer_add_typed(w, "ids", ST_I32, 1, s3, &err), ARMT_OK);
    ck_assert_int_eq(st_writer_add_typed(w, "h", ST_BF16, 1, s3, &err), ARMT_STATUS_INVALID_ARGUMENT);
    ck_assert_int_eq(st_writer_meta(w, "generator", "test", &err), ARMT_OK);
    const float x[2] = {1.0f, -2.0f};
    const int32_t ids[3] = {7, -1, 65536};
    ck_assert_int_eq(st_writer_write_i32(w, ids, 1, &err), ARMT_STATUS_INVALID_ARGUMENT);
    EXPECT_MSG("tensor 'x' is F32, written as I32");
    ck_assert_int_eq(st_writer_write(w, x, 2, &err), ARMT_OK);
    ck_assert_int_eq(st_writer_write(w, x, 1, &err), ARMT_STATUS_INVALID_ARGUMENT);
    EXPECT_MSG("tensor 'ids' is I32, written as F32");
    ck_assert_int_eq(st_writer_write_i32(w, ids, 3, &err), ARMT_OK);
    ck_assert_int_eq(st_writer_close(w, &err), ARMT_OK);

    const char *json =
        "{\"__metadata__\":{\"generator\":\"test\"},\"x\":{\"dtype\":\"F32\",\"shape\":[2],"
        "\"data_offsets\":[0,8]},\"ids\":{\"dtype\":\"I32\",\"shape\":[3],\"data_offsets\":[8,20]}}";
    size_t hl = strlen(json), padded = (hl + 7) / 8 * 8;
    unsigned char want[512];
    ck_assert_uint_lt(8 + padded + 20, sizeof want);
    for (int i = 0; i < 8; i++)
        want[i] = (unsigned char)((uint64_t)padded >> (8 * i));
    memcpy(want + 8, json, hl);
    memset(want + 8 + hl, ' ', padded - hl);
    const uint32_t words[5] = {0x3f800000u, 0xc0000000u, 7u, 0xffffffffu, 0x10000u}; /* 1, -2; the ids */
    for (int k = 0; k < 5; k++)
        for (int i = 0; i < 4; i++)
            want[8 + padded + 4 * (size_t)k + (size_t)i] = (unsigned char)(words[k] >> (8 * i));
    unsigned char got[512];
    FILE *f = fopen(path, "rb");
    ck_assert_ptr_nonnull(f);
    size_t n = fread(got, 1, sizeof got, f);
    fclose(f);
    ck_assert_uint_eq(n, 8 + padded + 20);
    ck_assert_msg(memcmp(got, want, n) == 0, "file bytes differ from the hand-written layout");

    st_archive *a = NULL;
    ck_assert_int_eq(st_open(path, &a, &err), ARMT_STATUS_UNSUPPORTED);
    EXPECT_MSG("unsupported dtype I32");
}
END_TEST

/* Writing past the declared total is refused. */
START_TEST(test_writer_too_much_data) {
    st_writer *w = NULL;
    const uint64_t s[1] = {2};
    float data[3] = {1, 2, 3};
    ck_assert_int_eq(st_writer_open(tpath("x.safetensors"), &w, &err), ARMT_OK);
    ck_assert_int_eq(st_writer_add(w, "a", 1, s, &err), ARMT_OK);
    ck_assert_int_eq(st_writer_write(w, data, 3, &err), ARMT_STATUS_INVALID_ARGUMENT);
    EXPECT_MSG("more elements written than");
    st_writer_abort(w);
    ck_assert(!exists(tpath("x.safetensors")));
    ck_assert(!exists(tpath("x.safetensors.tmp")));
}
END_TEST

/* Closing with a tensor partly written fails and leaves nothing behind. */
START_TEST(test_writer_incomplete) {
    st_writer *w = NULL;
    const uint64_t s[1] = {4};
    float data[3] = {1, 2, 3};
    ck_assert_int_eq(st_writer_open(tpath("i.safetensors"), &w, &err), ARMT_OK);
    ck_assert_int_eq(st_writer_add(w, "a", 1, s, &err), ARMT_OK);
    ck_assert_int_eq(st_writer_write(w, data, 3, &err), ARMT_OK);
    ck_assert_int_eq(st_writer_close(w, &err), ARMT_STATUS_INVALID_ARGUMENT); /* frees w */
    EXPECT_MSG("tensor 'a' incomplete: 3 of 4");
    ck_assert(!exists(tpath("i.safetensors")));
    ck_assert(!exists(tpath("i.safetensors.tmp")));
}
END_TEST

/* Abort after a complete write still leaves neither the file nor the temporary. */
START_TEST(test_writer_abort) {
    st_writer *w = NULL;
    const uint64_t s[1] = {4};
    float data[4] = {1, 2, 3, 4};
    ck_assert_int_eq(st_writer_open(tpath("a.safetensors"), &w, &err), ARMT_OK);
    ck_assert_int_eq(st_writer_add(w, "a", 1, s, &err), ARMT_OK);
    ck_assert_int_eq(st_writer_write(w, data, 4, &err), ARMT_OK); /* complete, but aborted */
    ck_assert(exists(tpath("a.safetensors.tmp")));
    st_writer_abort(w);
    ck_assert(!exists(tpath("a.safetensors")));
    ck_assert(!exists(tpath("a.safetensors.tmp")));
    st_writer_abort(NULL);
}
END_TEST

/* An unwritable destination fails at open, naming the temporary file. */
START_TEST(test_writer_bad_dir) {
    st_writer *w = (st_writer *)0x1;
    ck_assert_int_eq(st_writer_open(tpath("no/such/dir/m.safetensors"), &w, &err), ARMT_STATUS_IO_ERROR);
    ck_assert_ptr_null(w);
    EXPECT_MSG("m.safetensors.tmp");
}
END_TEST

/* ===================================================================================================== */

static Suite *suite(void) {
    Suite *s = suite_create("safetensors");
    TCase *rej = tcase_create("reject");
    tcase_add_checked_fixture(rej, setup, teardown);
    tcase_add_test(rej, test_truncated);
    tcase_add_test(rej, test_header_len_zero);
    tcase_add_test(rej, test_header_beyond_file);
    tcase_add_test(rej, test_header_too_large);
    tcase_add_test(rej, test_header_not_json);
    tcase_add_test(rej, test_header_not_object);
    tcase_add_test(rej, test_duplicate_keys);
    tcase_add_test(rej, test_missing_file);
    tcase_add_test(rej, test_metadata_not_strings);
    tcase_add_test(rej, test_unknown_dtype);
    tcase_add_test(rej, test_shape_not_list);
    tcase_add_test(rej, test_shape_negative);
    tcase_add_test(rej, test_shape_not_integer);
    tcase_add_test(rej, test_size_overflow);
    tcase_add_test(rej, test_offsets_not_pair);
    tcase_add_test(rej, test_offsets_reversed);
    tcase_add_test(rej, test_offsets_outside);
    tcase_add_test(rej, test_offsets_wrong_size);
    tcase_add_test(rej, test_hole);
    tcase_add_test(rej, test_overlap);
    tcase_add_test(rej, test_missing_shard);
    tcase_add_test(rej, test_index_tensor_absent);
    tcase_add_test(rej, test_index_shard_path);
    tcase_add_test(rej, test_index_bad);
    tcase_add_test(rej, test_tensor_in_two_shards);
    tcase_add_test(rej, test_empty_dir);
    suite_add_tcase(s, rej);

    TCase *rd = tcase_create("read");
    tcase_add_checked_fixture(rd, setup, teardown);
    tcase_add_test(rd, test_read_f32);
    tcase_add_test(rd, test_read_f16);
    tcase_add_test(rd, test_read_bf16);
    tcase_add_test(rd, test_chunked_reads);
    tcase_add_test(rd, test_sharded);
    tcase_add_test(rd, test_directory_single);
    tcase_add_test(rd, test_empty_tensor);
    suite_add_tcase(s, rd);

    TCase *wr = tcase_create("write");
    tcase_add_checked_fixture(wr, setup, teardown);
    tcase_add_test(wr, test_writer_round_trip);
    tcase_add_test(wr, test_writer_i32);
    tcase_add_test(wr, test_writer_too_much_data);
    tcase_add_test(wr, test_writer_incomplete);
    tcase_add_test(wr, test_writer_abort);
    tcase_add_test(wr, test_writer_bad_dir);
    suite_add_tcase(s, wr);
    return s;
}

int main(void) { return test_run_suite(suite(), 0); }
