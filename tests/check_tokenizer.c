/*
 * check_tokenizer.c - the byte-level BPE tokenizer (lib/io/tokenizer.c) against HF `tokenizers`.
 *
 * Fixture: tests/data/tokenizer/{tokenizer.json, cases.json}, written by tools/make_tokenizer_fixture.py
 * (a small BPE trained with HF tokenizers using the LLaMA-3 pre-tokeniser). cases.json holds HF's ids and
 * decoded texts for a varied sample of texts, plus "variants": the same vocab under other pre-tokenizer /
 * ignore_merges settings, which the tests apply to a copy of tokenizer.json. Everything else (capacity
 * convention, bad files, invalid UTF-8, long inputs) is checked against values worked out by hand.
 *
 * No OpenCL here, so the suite never skips. Data directory: $ARMT_TEST_DATA, else ARMT_TEST_DATA_DIR.
 */
#define _GNU_SOURCE
#include "armt.h"

#include "testutil.h"

#include <check.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#ifndef ARMT_TEST_DATA_DIR
#define ARMT_TEST_DATA_DIR "tests/data"
#endif

/* ===================================================================================================== */
/* Fixture and helpers                                                                                   */
/* ===================================================================================================== */

static char tok_path[1024];
static char cases_path[1024];
static char tmpdir[256];
static armt_tokenizer *tok;
static json_t *cases;

static const char *data_dir(void) {
    const char *d = getenv("ARMT_TEST_DATA");
    return (d && d[0]) ? d : ARMT_TEST_DATA_DIR;
}

static json_t *load_json(const char *path) {
    json_error_t e;
    json_t *j = json_load_file(path, JSON_ALLOW_NUL, &e);
    ck_assert_msg(j != NULL, "%s: %s (line %d)", path, e.text, e.line);
    return j;
}

static void setup(void) {
    snprintf(tok_path, sizeof tok_path, "%s/tokenizer/tokenizer.json", data_dir());
    snprintf(cases_path, sizeof cases_path, "%s/tokenizer/cases.json", data_dir());
    snprintf(tmpdir, sizeof tmpdir, "%s/check_tok_XXXXXX", getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
    ck_assert_ptr_nonnull(mkdtemp(tmpdir));
    armt_status st = armt_tokenizer_load(tok_path, &tok);
    ck_assert_msg(st == ARMT_OK, "load %s: %s", tok_path, armt_last_error());
    cases = load_json(cases_path);
}

static void teardown(void) {
    armt_tokenizer_free(tok);
    tok = NULL;
    json_decref(cases);
    cases = NULL;
    char cmd[512];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
    if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", tmpdir);
}

static const char *tpath(const char *name) {
    static char buf[4][512];
    static int slot;
    slot = (slot + 1) % 4;
    snprintf(buf[slot], sizeof buf[slot], "%s/%s", tmpdir, name);
    return buf[slot];
}

/* Encodes into a malloc'ed array (sized by a first query call). */
static int32_t *encode(armt_tokenizer *t, const char *s, size_t len, int bos, int special, size_t *n) {
    size_t need = 0;
    armt_status st = armt_tokenizer_encode(t, s, len, bos, special, NULL, 0, &need);
    ck_assert_msg(st == ARMT_OK || st == ARMT_STATUS_INVALID_ARGUMENT, "encode: %s",
                  armt_tokenizer_last_error(t));
    int32_t *ids = malloc((need ? need : 1) * sizeof *ids);
    ck_assert_ptr_nonnull(ids);
    st = armt_tokenizer_encode(t, s, len, bos, special, ids, need, n);
    ck_assert_msg(st == ARMT_OK, "encode: %s", armt_tokenizer_last_error(t));
    ck_assert_uint_eq(*n, need);
    return ids;
}

static char *decode(armt_tokenizer *t, const int32_t *ids, size_t n, int skip, size_t *len) {
    size_t need = 0;
    armt_status st = armt_tokenizer_decode(t, ids, n, skip, NULL, 0, &need);
    ck_assert_int_eq(st, ARMT_STATUS_INVALID_ARGUMENT); /* capacity 0 never fits (the NUL) */
    char *text = malloc(need);
    ck_assert_ptr_nonnull(text);
    st = armt_tokenizer_decode(t, ids, n, skip, text, need, len);
    ck_assert_msg(st == ARMT_OK, "decode: %s", armt_tokenizer_last_error(t));
    ck_assert_uint_eq(*len + 1, need);
    ck_assert_int_eq(text[*len], '\0');
    return text;
}

static void ids_from_json(const json_t *arr, int32_t **ids, size_t *n) {
    *n = json_array_size(arr);
    *ids = malloc((*n ? *n : 1) * sizeof **ids);
    ck_assert_ptr_nonnull(*ids);
    for (size_t i = 0; i < *n; i++)
        (*ids)[i] = (int32_t)json_integer_value(json_array_get(arr, i));
}

static void fmt_ids(char *buf, size_t cap, const int32_t *ids, size_t n) {
    size_t o = 0;
    buf[0] = '\0';
    for (size_t i = 0; i < n && o + 16 < cap; i++)
        o += (size_t)snprintf(buf + o, cap - o, "%s%d", i ? "," : "", ids[i]);
}

/* Asserts that encoding `text` gives the ids in json array `want`. */
static void check_ids(armt_tokenizer *t, const json_t *text, const json_t *want, int bos, int special,
                      const char *what, size_t idx) {
    size_t n;
    int32_t *got = encode(t, json_string_value(text), json_string_length(text), bos, special, &n);
    int32_t *exp;
    size_t m;
    ids_from_json(want, &exp, &m);
    int same = n == m && (n == 0 || memcmp(got, exp, n * sizeof *got) == 0);
    if (!same) {
        char a[2048], b[2048];
        fmt_ids(a, sizeof a, got, n);
        fmt_ids(b, sizeof b, exp, m);
        ck_abort_msg("%s case %zu (\"%.60s\"): got [%s], HF [%s]", what, idx, json_string_value(text), a, b);
    }
    free(got);
    free(exp);
}

static void check_text(const char *got, size_t n, const json_t *want, const char *what, size_t idx) {
    size_t m = json_string_length(want);
    ck_assert_msg(n == m && memcmp(got, json_string_value(want), n) == 0,
                  "%s case %zu: got \"%.*s\", HF \"%s\"", what, idx, (int)n, got, json_string_value(want));
}

/* ===================================================================================================== */
/* Agreement with HF                                                                                     */
/* ===================================================================================================== */

START_TEST(test_encode_matches_hf) {
    const json_t *enc = json_object_get(cases, "encode");
    ck_assert_uint_ge(json_array_size(enc), 30);
    for (size_t i = 0; i < json_array_size(enc); i++) {
        const json_t *c = json_array_get(enc, i);
        const json_t *text = json_object_get(c, "text");
        check_ids(tok, text, json_object_get(c, "ids"), 0, 1, "ids", i);
        check_ids(tok, text, json_object_get(c, "ids_bos"), 1, 1, "ids_bos", i);
        check_ids(tok, text, json_object_get(c, "ids_literal"), 0, 0, "ids_literal", i);
    }
}
END_TEST

START_TEST(test_decode_matches_hf) {
    const json_t *enc = json_object_get(cases, "encode");
    for (size_t i = 0; i < json_array_size(enc); i++) {
        const json_t *c = json_array_get(enc, i);
        int32_t *ids;
        size_t n, len;
        ids_from_json(json_object_get(c, "ids"), &ids, &n);
        char *s = decode(tok, ids, n, 0, &len);
        check_text(s, len, json_object_get(c, "decoded"), "decoded", i);
        free(s);
        s = decode(tok, ids, n, 1, &len);
        check_text(s, len, json_object_get(c, "decoded_skip"), "decoded_skip", i);
        free(s);
        free(ids);
    }
    const json_t *dec = json_object_get(cases, "decode");
    ck_assert_uint_ge(json_array_size(dec), 5);
    for (size_t i = 0; i < json_array_size(dec); i++) {
        const json_t *c = json_array_get(dec, i);
        int32_t *ids;
        size_t n, len;
        ids_from_json(json_object_get(c, "ids"), &ids, &n);
        char *s = decode(tok, ids, n, 0, &len);
        check_text(s, len, json_object_get(c, "text"), "decode list", i);
        free(s);
        s = decode(tok, ids, n, 1, &len);
        check_text(s, len, json_object_get(c, "text_skip"), "decode list (skip)", i);
        free(s);
        free(ids);
    }
}
END_TEST

START_TEST(test_round_trip) {
    const json_t *enc = json_object_get(cases, "encode");
    for (size_t i = 0; i < json_array_size(enc); i++) {
        const json_t *text = json_object_get(json_array_get(enc, i), "text");
        for (int special = 0; special <= 1; special++) {
            size_t n, len;
            int32_t *ids = encode(tok, json_string_value(text), json_string_length(text), 0, special, &n);
            char *s = decode(tok, ids, n, 0, &len);
            check_text(s, len, text, special ? "round trip" : "round trip (literal specials)", i);
            free(s);
            free(ids);
        }
    }
}
END_TEST

START_TEST(test_vocab_and_token_ids) {
    ck_assert_int_eq(armt_tokenizer_vocab_size(tok),
                     (int)json_integer_value(json_object_get(cases, "vocab_size")));
    ck_assert_int_eq(armt_tokenizer_token_id(tok, "<|begin_of_text|>"), 2000);
    ck_assert_int_eq(armt_tokenizer_token_id(tok, "<|end_of_text|>"), 2001);
    ck_assert_int_eq(armt_tokenizer_token_id(tok, "<|eot_id|>"), 2002);
    ck_assert_int_eq(armt_tokenizer_token_id(tok, "<|plain|>"), 2003);
    ck_assert_int_eq(armt_tokenizer_token_id(tok, "<|nope|>"), -1);
    ck_assert_int_eq(armt_tokenizer_token_id(tok, ""), -1);
    ck_assert_int_eq(armt_tokenizer_token_id(tok, NULL), -1);
    ck_assert_int_eq(armt_tokenizer_token_id(NULL, "a"), -1);
    ck_assert_int_eq(armt_tokenizer_vocab_size(NULL), 0);
    /* model vocab entries are in byte-level characters: "!" is byte 0x21, "\xc4\xa0" (U+0120) is the space */
    ck_assert_int_eq(armt_tokenizer_token_id(tok, "!"), 0);
    int32_t sp = armt_tokenizer_token_id(tok, "\xc4\xa0");
    ck_assert_int_ge(sp, 0);
    size_t n;
    int32_t *ids = encode(tok, " ", 1, 0, 1, &n);
    ck_assert_uint_eq(n, 1);
    ck_assert_int_eq(ids[0], sp);
    free(ids);
}
END_TEST

/* Writes tokenizer.json with `patch` applied: pre_tokenizer replaced, model.ignore_merges set, vocab keys
 * renamed (vocab_replace), merges turned into "a b" strings (legacy = 1). Returns the path. */
static const char *write_variant(const char *name, const json_t *patch, int legacy) {
    json_t *root = load_json(tok_path);
    json_t *model = json_object_get(root, "model");
    if (patch) {
        json_t *pt = json_object_get(patch, "pre_tokenizer");
        if (pt) json_object_set(root, "pre_tokenizer", pt);
        json_t *im = json_object_get(patch, "ignore_merges");
        if (im) json_object_set(model, "ignore_merges", im);
        json_t *vr = json_object_get(patch, "vocab_replace");
        json_t *vocab = json_object_get(model, "vocab");
        for (size_t i = 0; i < json_array_size(vr); i++) {
            const char *old = json_string_value(json_array_get(json_array_get(vr, i), 0));
            const char *nw = json_string_value(json_array_get(json_array_get(vr, i), 1));
            json_t *id = json_incref(json_object_get(vocab, old));
            ck_assert_ptr_nonnull(id);
            json_object_del(vocab, old);
            json_object_set_new(vocab, nw, id);
        }
    }
    if (legacy) {
        json_t *merges = json_object_get(model, "merges");
        json_t *out = json_array();
        for (size_t i = 0; i < json_array_size(merges); i++) {
            json_t *m = json_array_get(merges, i);
            char buf[512];
            snprintf(buf, sizeof buf, "%s %s", json_string_value(json_array_get(m, 0)),
                     json_string_value(json_array_get(m, 1)));
            json_array_append_new(out, json_string(buf));
        }
        json_object_set_new(model, "merges", out);
    }
    const char *path = tpath(name);
    ck_assert_int_eq(json_dump_file(root, path, JSON_COMPACT), 0);
    json_decref(root);
    return path;
}

START_TEST(test_legacy_merges) {
    armt_tokenizer *t2 = NULL;
    const char *path = write_variant("legacy.json", NULL, 1);
    ck_assert_msg(armt_tokenizer_load(path, &t2) == ARMT_OK, "%s", armt_last_error());
    const json_t *enc = json_object_get(cases, "encode");
    for (size_t i = 0; i < json_array_size(enc); i++) {
        const json_t *c = json_array_get(enc, i);
        check_ids(t2, json_object_get(c, "text"), json_object_get(c, "ids"), 0, 1, "legacy merges", i);
    }
    armt_tokenizer_free(t2);
}
END_TEST

START_TEST(test_variants_match_hf) {
    const json_t *vars = json_object_get(cases, "variants");
    ck_assert_uint_ge(json_array_size(vars), 4);
    for (size_t v = 0; v < json_array_size(vars); v++) {
        const json_t *var = json_array_get(vars, v);
        const char *name = json_string_value(json_object_get(var, "name"));
        armt_tokenizer *t2 = NULL;
        const char *path = write_variant(name, json_object_get(var, "patch"), 0);
        ck_assert_msg(armt_tokenizer_load(path, &t2) == ARMT_OK, "%s: %s", name, armt_last_error());
        const json_t *cs = json_object_get(var, "cases");
        for (size_t i = 0; i < json_array_size(cs); i++) {
            const json_t *c = json_array_get(cs, i);
            check_ids(t2, json_object_get(c, "text"), json_object_get(c, "ids"), 0, 1, name, i);
        }
        armt_tokenizer_free(t2);
    }
}
END_TEST

/* ===================================================================================================== */
/* API conventions                                                                                       */
/* ===================================================================================================== */

START_TEST(test_encode_capacity) {
    const char *s = "Hello, world! 12345678";
    size_t need = 0, n = 99;
    ck_assert_int_eq(armt_tokenizer_encode(tok, s, strlen(s), 1, 1, NULL, 0, &need),
                     ARMT_STATUS_INVALID_ARGUMENT);
    ck_assert_uint_gt(need, 3);
    ck_assert_ptr_nonnull(strstr(armt_tokenizer_last_error(tok), "capacity"));
    int32_t *ids = malloc((need + 1) * sizeof *ids);
    for (size_t i = 0; i <= need; i++)
        ids[i] = -7;
    ck_assert_int_eq(armt_tokenizer_encode(tok, s, strlen(s), 1, 1, ids, need - 1, &n),
                     ARMT_STATUS_INVALID_ARGUMENT);
    ck_assert_uint_eq(n, need);
    ck_assert_int_eq(ids[0], -7); /* nothing written on failure */
    ck_assert_int_eq(armt_tokenizer_encode(tok, s, strlen(s), 1, 1, ids, need, &n), ARMT_OK);
    ck_assert_uint_eq(n, need);
    ck_assert_int_eq(ids[0], 2000);
    ck_assert_int_eq(ids[need], -7);
    ck_assert_str_eq(armt_tokenizer_last_error(tok), "");
    /* empty text: nothing, or just BOS */
    ck_assert_int_eq(armt_tokenizer_encode(tok, "", 0, 0, 1, ids, need, &n), ARMT_OK);
    ck_assert_uint_eq(n, 0);
    ck_assert_int_eq(armt_tokenizer_encode(tok, NULL, 0, 1, 1, ids, need, &n), ARMT_OK);
    ck_assert_uint_eq(n, 1);
    ck_assert_int_eq(ids[0], 2000);
    /* len is honoured: the text need not be NUL-terminated */
    ck_assert_int_eq(armt_tokenizer_encode(tok, "abcdef", 1, 0, 1, ids, need, &n), ARMT_OK);
    ck_assert_uint_eq(n, 1);
    ck_assert_int_eq(ids[0], armt_tokenizer_token_id(tok, "a"));
    free(ids);
}
END_TEST

START_TEST(test_decode_capacity) {
    int32_t ids[3] = {armt_tokenizer_token_id(tok, "a"),
                      armt_tokenizer_token_id(tok, "\xc4\x80") /* byte 0 */,
                      armt_tokenizer_token_id(tok, "b")};
    ck_assert_int_ge(ids[1], 0);
    char buf[8];
    size_t len = 0;
    memset(buf, 'x', sizeof buf);
    ck_assert_int_eq(armt_tokenizer_decode(tok, ids, 3, 0, buf, 3, &len), ARMT_STATUS_INVALID_ARGUMENT);
    ck_assert_uint_eq(len, 4); /* "a\0b" + NUL */
    ck_assert_int_eq(buf[0], 'x');
    ck_assert_int_eq(armt_tokenizer_decode(tok, ids, 3, 0, buf, 4, &len), ARMT_OK);
    ck_assert_uint_eq(len, 3);
    ck_assert_int_eq(memcmp(buf, "a\0b\0", 4), 0);
    ck_assert_int_eq(buf[4], 'x');
    /* empty */
    ck_assert_int_eq(armt_tokenizer_decode(tok, NULL, 0, 0, buf, 1, &len), ARMT_OK);
    ck_assert_uint_eq(len, 0);
    ck_assert_int_eq(buf[0], '\0');
    /* special tokens only, skipped */
    int32_t sp[2] = {2000, 2002};
    ck_assert_int_eq(armt_tokenizer_decode(tok, sp, 2, 1, buf, 1, &len), ARMT_OK);
    ck_assert_uint_eq(len, 0);
}
END_TEST

START_TEST(test_bad_arguments) {
    size_t n;
    int32_t ids[4];
    char buf[16];
    ck_assert_int_eq(armt_tokenizer_encode(NULL, "a", 1, 0, 1, ids, 4, &n), ARMT_STATUS_INVALID_ARGUMENT);
    ck_assert_int_eq(armt_tokenizer_encode(tok, "a", 1, 0, 1, ids, 4, NULL), ARMT_STATUS_INVALID_ARGUMENT);
    ck_assert_int_eq(armt_tokenizer_encode(tok, NULL, 3, 0, 1, ids, 4, &n), ARMT_STATUS_INVALID_ARGUMENT);
    ck_assert_int_eq(armt_tokenizer_encode(tok, "a", 1, 0, 1, NULL, 4, &n), ARMT_STATUS_INVALID_ARGUMENT);
    ck_assert_int_eq(armt_tokenizer_decode(NULL, ids, 0, 0, buf, 16, &n), ARMT_STATUS_INVALID_ARGUMENT);
    ck_assert_int_eq(armt_tokenizer_decode(tok, NULL, 2, 0, buf, 16, &n), ARMT_STATUS_INVALID_ARGUMENT);
    ck_assert_int_eq(armt_tokenizer_decode(tok, ids, 0, 0, buf, 16, NULL), ARMT_STATUS_INVALID_ARGUMENT);
    int32_t bad[3] = {5, -1, 7};
    ck_assert_int_eq(armt_tokenizer_decode(tok, bad, 3, 0, buf, 16, &n), ARMT_STATUS_TOKEN_OUT_OF_RANGE);
    ck_assert_ptr_nonnull(strstr(armt_tokenizer_last_error(tok), "ids[1] = -1"));
    bad[1] = armt_tokenizer_vocab_size(tok);
    ck_assert_int_eq(armt_tokenizer_decode(tok, bad, 3, 0, buf, 16, &n), ARMT_STATUS_TOKEN_OUT_OF_RANGE);
    armt_tokenizer *t2 = (armt_tokenizer *)&n;
    ck_assert_int_eq(armt_tokenizer_load(NULL, &t2), ARMT_STATUS_INVALID_ARGUMENT);
    ck_assert_int_eq(armt_tokenizer_load(tok_path, NULL), ARMT_STATUS_INVALID_ARGUMENT);
    armt_tokenizer_free(NULL);
}
END_TEST

/* ===================================================================================================== */
/* Bad files                                                                                             */
/* ===================================================================================================== */

static void write_text(const char *name, const char *text) {
    FILE *f = fopen(tpath(name), "wb");
    ck_assert_ptr_nonnull(f);
    fputs(text, f);
    ck_assert_int_eq(fclose(f), 0);
}

/* Loads tpath(name); asserts the status, a NULL handle and that the message contains `needle`. */
static void expect_load_fails(const char *path, armt_status want, const char *needle) {
    armt_tokenizer *t2 = (armt_tokenizer *)&t2;
    armt_status st = armt_tokenizer_load(path, &t2);
    ck_assert_msg(st == want, "%s: status %s, want %s (%s)", path, armt_status_str(st), armt_status_str(want),
                  armt_last_error());
    ck_assert_ptr_null(t2);
    ck_assert_msg(strstr(armt_last_error(), needle) != NULL, "message \"%s\" lacks \"%s\"", armt_last_error(),
                  needle);
    ck_assert_str_eq(armt_tokenizer_last_error(NULL), armt_last_error());
}

/* A minimal valid tokenizer.json around a pre_tokenizer / model / extra text. */
static const char *mini(const char *name, const char *model, const char *pre, const char *extra) {
    char buf[4096];
    snprintf(buf, sizeof buf,
             "{\"version\":\"1.0\",\"added_tokens\":[],\"normalizer\":null,\"pre_tokenizer\":%s,"
             "\"post_processor\":null,\"decoder\":{\"type\":\"ByteLevel\"},\"model\":%s%s}",
             pre, model, extra);
    write_text(name, buf);
    return tpath(name);
}

#define BL  "{\"type\":\"ByteLevel\",\"add_prefix_space\":false,\"use_regex\":false}"
#define BPE "{\"type\":\"BPE\",\"vocab\":{\"a\":0,\"b\":1,\"ab\":2},\"merges\":[[\"a\",\"b\"]]}"

START_TEST(test_bad_files) {
    expect_load_fails(tpath("missing.json"), ARMT_STATUS_IO_ERROR, "cannot open");
    expect_load_fails(tpath("missing.json"), ARMT_STATUS_IO_ERROR, "missing.json");
    expect_load_fails(tmpdir, ARMT_STATUS_IO_ERROR, "tokenizer"); /* a directory */
    write_text("garbage.json", "this is not json {");
    expect_load_fails(tpath("garbage.json"), ARMT_STATUS_BAD_FILE, "not valid JSON");
    write_text("empty.json", "");
    expect_load_fails(tpath("empty.json"), ARMT_STATUS_BAD_FILE, "not valid JSON");
    write_text("array.json", "[1, 2]");
    expect_load_fails(tpath("array.json"), ARMT_STATUS_BAD_FILE, "not a JSON object");
    write_text("nomodel.json", "{\"pre_tokenizer\":" BL ",\"decoder\":{\"type\":\"ByteLevel\"}}");
    expect_load_fails(tpath("nomodel.json"), ARMT_STATUS_BAD_FILE, "model");

    /* the minimal file itself loads and works */
    armt_tokenizer *t2 = NULL;
    ck_assert_msg(armt_tokenizer_load(mini("ok.json", BPE, BL, ""), &t2) == ARMT_OK, "%s", armt_last_error());
    int32_t ids[4];
    size_t n;
    ck_assert_int_eq(armt_tokenizer_encode(t2, "abba", 4, 1, 1, ids, 4, &n), ARMT_OK);
    ck_assert_uint_eq(n, 3); /* ab b a; no BOS defined */
    ck_assert_int_eq(ids[0], 2);
    ck_assert_int_eq(ids[1], 1);
    ck_assert_int_eq(ids[2], 0);
    ck_assert_int_eq(armt_tokenizer_encode(t2, "a c", 3, 0, 1, ids, 4, &n), ARMT_OK);
    ck_assert_uint_eq(n, 1); /* bytes without a token (and no unk_token) are dropped, as in HF */
    armt_tokenizer_free(t2);

    expect_load_fails(mini("unigram.json", "{\"type\":\"Unigram\",\"vocab\":[]}", BL, ""),
                      ARMT_STATUS_UNSUPPORTED, "model type 'Unigram'");
    expect_load_fails(mini("wordpiece.json", "{\"type\":\"WordPiece\",\"vocab\":{}}", BL, ""),
                      ARMT_STATUS_UNSUPPORTED, "'WordPiece'");
    expect_load_fails(mini("meta.json", BPE, "{\"type\":\"Metaspace\",\"replacement\":\"_\"}", ""),
                      ARMT_STATUS_UNSUPPORTED, "pre-tokenizer 'Metaspace'");
    expect_load_fails(mini("seqws.json", BPE,
                           "{\"type\":\"Sequence\",\"pretokenizers\":[{\"type\":\"Whitespace\"}," BL "]}",
                           ""),
                      ARMT_STATUS_UNSUPPORTED, "'Whitespace'");
    expect_load_fails(mini("nobl.json", BPE, "null", ""), ARMT_STATUS_UNSUPPORTED, "ByteLevel");
    expect_load_fails(
        mini("behav.json", BPE,
             "{\"type\":\"Sequence\",\"pretokenizers\":[{\"type\":\"Split\",\"pattern\":{\"Regex\":\"a\"},"
             "\"behavior\":\"MergedWithNext\",\"invert\":false}," BL "]}",
             ""),
        ARMT_STATUS_UNSUPPORTED, "MergedWithNext");
    expect_load_fails(
        mini("badre.json", BPE,
             "{\"type\":\"Sequence\",\"pretokenizers\":[{\"type\":\"Split\",\"pattern\":{\"Regex\":\"(a\"},"
             "\"behavior\":\"Isolated\",\"invert\":false}," BL "]}",
             ""),
        ARMT_STATUS_UNSUPPORTED, "PCRE2");
    expect_load_fails(
        mini("dropout.json", "{\"type\":\"BPE\",\"dropout\":0.1,\"vocab\":{\"a\":0},\"merges\":[]}", BL, ""),
        ARMT_STATUS_UNSUPPORTED, "dropout");
    expect_load_fails(
        mini("badmerge.json", "{\"type\":\"BPE\",\"vocab\":{\"a\":0,\"b\":1},\"merges\":[\"a b\"]}", BL, ""),
        ARMT_STATUS_BAD_FILE, "\"ab\" is not in the vocab");
    expect_load_fails(
        mini("badmerge2.json", "{\"type\":\"BPE\",\"vocab\":{\"a\":0,\"b\":1},\"merges\":[\"ab\"]}", BL, ""),
        ARMT_STATUS_BAD_FILE, "merge 0");
    expect_load_fails(mini("badid.json", "{\"type\":\"BPE\",\"vocab\":{\"a\":-3},\"merges\":[]}", BL, ""),
                      ARMT_STATUS_BAD_FILE, "id -3");
    expect_load_fails(mini("norm.json", BPE, BL, ",\"normalizer\":{\"type\":\"NFC\"}"),
                      ARMT_STATUS_UNSUPPORTED, "normalizer 'NFC'");
    expect_load_fails(mini("dec.json", BPE, BL, ",\"decoder\":{\"type\":\"WordPiece\"}"),
                      ARMT_STATUS_UNSUPPORTED, "decoder 'WordPiece'");
    expect_load_fails(
        mini("lstrip.json", BPE, BL,
             ",\"added_tokens\":[{\"id\":3,\"content\":\"<m>\",\"lstrip\":true,\"special\":true}]"),
        ARMT_STATUS_UNSUPPORTED, "lstrip");
    expect_load_fails(
        mini("bos.json", BPE, BL,
             ",\"post_processor\":{\"type\":\"TemplateProcessing\",\"single\":[{\"SpecialToken\":"
             "{\"id\":\"<s>\",\"type_id\":0}},{\"Sequence\":{\"id\":\"A\",\"type_id\":0}}],"
             "\"special_tokens\":{\"<s>\":{\"id\":\"<s>\",\"ids\":[99],\"tokens\":[\"<s>\"]}}}"),
        ARMT_STATUS_BAD_FILE, "BOS id 99");
    expect_load_fails(mini("post.json", BPE, BL, ",\"post_processor\":{\"type\":\"Mystery\"}"),
                      ARMT_STATUS_UNSUPPORTED, "post-processor 'Mystery'");
}
END_TEST

/* ===================================================================================================== */
/* Robustness                                                                                            */
/* ===================================================================================================== */

/* Invalid UTF-8 is encoded through byte tokens: decoding gives the same bytes with each maximal invalid
 * subsequence replaced by U+FFFD. */
START_TEST(test_invalid_utf8) {
    static const struct {
        const char *in;
        const char *out;
    } cases_[] = {
        {"abc\xff def", "abc\xef\xbf\xbd def"},
        {"\xf0\x9f", "\xef\xbf\xbd"}, /* truncated emoji */
        {"x\xf0\x9f\x98", "x\xef\xbf\xbd"},
        {"\xe6\x41", "\xef\xbf\xbd"
                     "A"},
        {"\xed\xa0\x80", "\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd"}, /* surrogate */
        {"\xc0\xaf", "\xef\xbf\xbd\xef\xbf\xbd"},                 /* overlong '/' */
        {"\x80\x80 I'm \xfe<|eot_id|>\xc3",
         "\xef\xbf\xbd\xef\xbf\xbd I'm \xef\xbf\xbd<|eot_id|>\xef\xbf\xbd"},
        {"\xf4\x90\x80\x80", "\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd"}, /* > U+10FFFF */
    };
    for (size_t i = 0; i < sizeof cases_ / sizeof cases_[0]; i++) {
        size_t n, len;
        int32_t *ids = encode(tok, cases_[i].in, strlen(cases_[i].in), 0, 1, &n);
        char *s = decode(tok, ids, n, 0, &len);
        ck_assert_msg(len == strlen(cases_[i].out) && memcmp(s, cases_[i].out, len) == 0,
                      "case %zu: \"%.*s\"", i, (int)len, s);
        free(s);
        free(ids);
    }
}
END_TEST

/* Random bytes (biased towards UTF-8 lead/continuation bytes, spaces, digits and '<'): never fails, ids are
 * tokens, valid inputs round-trip. */
START_TEST(test_random_bytes) {
    static const unsigned char alphabet[] = {'a',  'Z',  ' ',  ' ',  '\n', '\t', '1',  '9',  '\'', 's',  '<',
                                             '|',  '>',  0x80, 0xbf, 0xc3, 0xa9, 0xe4, 0xb8, 0xad, 0xf0, 0x9f,
                                             0x98, 0x80, 0xff, 0xc0, 0xed, 0xa0, 0x00, '.',  '!'};
    uint64_t x = 0x9e3779b97f4a7c15ull;
    unsigned char buf[200];
    for (int it = 0; it < 3000; it++) {
        x = x * 6364136223846793005ull + 1442695040888963407ull;
        size_t len = (size_t)(x >> 33) % sizeof buf;
        for (size_t i = 0; i < len; i++) {
            x = x * 6364136223846793005ull + 1442695040888963407ull;
            buf[i] = alphabet[(x >> 33) % sizeof alphabet];
        }
        size_t n, out_len;
        int32_t *ids = encode(tok, (const char *)buf, len, it & 1, (it >> 1) & 1, &n);
        for (size_t i = 0; i < n; i++)
            ck_assert(ids[i] >= 0 && ids[i] < armt_tokenizer_vocab_size(tok));
        char *s = decode(tok, ids, n, it & 1, &out_len);
        free(s);
        free(ids);
    }
}
END_TEST

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* Long runs that stress the regex (whitespace lookahead) and the merge loop (one long word): must succeed,
 * round-trip, and stay roughly linear (generous bound, sanitizers included). */
START_TEST(test_long_inputs) {
    const size_t N = 200000;
    char *s = malloc(N + 1);
    static const char fill[] = {' ', 'a', '7', '\n', '!', 'x'};
    for (size_t k = 0; k < sizeof fill; k++) {
        for (size_t i = 0; i < N; i++)
            s[i] = fill[k];
        if (fill[k] == 'x') /* a word of alternating letters: no whole-word vocab hit, ~N/2 merges */
            for (size_t i = 0; i < N; i += 2)
                s[i] = 'y';
        s[N] = '\0';
        double t0 = now();
        size_t n, len;
        int32_t *ids = encode(tok, s, N, 0, 1, &n);
        double dt = now() - t0;
        ck_assert_msg(dt < 20.0, "fill '%c': %.1f s", fill[k], dt);
        ck_assert_uint_gt(n, 0);
        char *back = decode(tok, ids, n, 0, &len);
        ck_assert_uint_eq(len, N);
        ck_assert(memcmp(back, s, N) == 0);
        free(back);
        free(ids);
    }
    free(s);
}
END_TEST

/* ===================================================================================================== */
/* Runner                                                                                                */
/* ===================================================================================================== */

static Suite *tokenizer_suite(void) {
    Suite *s = suite_create("tokenizer");
    TCase *hf = tcase_create("hf");
    tcase_add_checked_fixture(hf, setup, teardown);
    tcase_add_test(hf, test_encode_matches_hf);
    tcase_add_test(hf, test_decode_matches_hf);
    tcase_add_test(hf, test_round_trip);
    tcase_add_test(hf, test_vocab_and_token_ids);
    tcase_add_test(hf, test_legacy_merges);
    tcase_add_test(hf, test_variants_match_hf);
    suite_add_tcase(s, hf);
    TCase *api = tcase_create("api");
    tcase_add_checked_fixture(api, setup, teardown);
    tcase_add_test(api, test_encode_capacity);
    tcase_add_test(api, test_decode_capacity);
    tcase_add_test(api, test_bad_arguments);
    tcase_add_test(api, test_bad_files);
    suite_add_tcase(s, api);
    TCase *rob = test_tcase(s, "robustness", 120);
    tcase_add_checked_fixture(rob, setup, teardown);
    tcase_add_test(rob, test_invalid_utf8);
    tcase_add_test(rob, test_random_bytes);
    tcase_add_test(rob, test_long_inputs);
    return s;
}

int main(void) { return test_run_suite(tokenizer_suite(), 0); }
