/*
 * tokenizer.c - byte-level BPE tokenizer for HF tokenizer.json files of the LLaMA-3 family.
 *
 * What a tokenizer.json must look like (anything else is refused with ARMT_STATUS_UNSUPPORTED naming it):
 *   normalizer      null (or an empty Sequence)
 *   pre_tokenizer   Split{Regex|String, Isolated|Removed, invert false}* then one ByteLevel{add_prefix_space,
 *                   use_regex} as the last step, alone or in a Sequence
 *   model           BPE: vocab, merges ("a b" strings or [a, b] pairs), ignore_merges, unk_token, fuse_unk;
 *                   no dropout, no byte_fallback, no subword prefix/suffix
 *   post_processor  null, ByteLevel, TemplateProcessing, Roberta/BertProcessing, or a Sequence of them; only
 *                   the special tokens that the single-sequence template puts *before* $A are used (add_bos)
 *   decoder         ByteLevel (alone or in a Sequence)
 *   added_tokens    special and non-special; single_word / lstrip / rstrip must be false
 *
 * Encoding follows HF `tokenizers` step by step:
 *   1. added tokens are cut out of the text, leftmost-longest, first the tokens with normalized=false, then
 *      (inside the remaining gaps) those with normalized=true (there is no normalizer, so the text is the
 *      same for both passes). With parse_special == 0, special tokens are not matched (as HF's
 *      encode_special_tokens = True).
 *   2. each gap goes through the pre-tokenizer steps. The regexes (Split patterns, and the GPT-2 pattern of
 *      ByteLevel use_regex=true) run on the raw text with PCRE2 (PCRE2_UTF | PCRE2_UCP, so \p{L}, \s, (?i)
 *      are Unicode-aware like Oniguruma in HF). ByteLevel maps every byte to a printable character (the GPT-2
 *      table) - done here on the fly while looking tokens up, so we never build the mapped text.
 *   3. each pre-token is looked up whole when ignore_merges is set, else split into bytes and merged by rank:
 *      a binary heap of candidate pairs ordered by (rank, position), stale entries dropped when popped, so a
 *      word of n bytes costs O(n log n).
 *
 * Invalid UTF-8: HF cannot receive it (Rust strings), so there is no reference behaviour. Here the text is
 * validated before every regex; the regex runs with PCRE2_NO_UTF_CHECK on each maximal valid run only, and
 * each maximal invalid subsequence (the Unicode "maximal subpart" rule: 1 to 3 bytes) becomes a pre-token of
 * its own, i.e. its bytes are encoded through their byte tokens (possibly merged). Nothing is dropped, so the
 * ids still decode to the same bytes; decode itself then shows each invalid subsequence as U+FFFD, exactly as
 * HF's String::from_utf8_lossy does.
 *
 * Thread safety: after load, encode and decode only read the tokenizer (all scratch is per call), except
 * that a failing call records its message in the tokenizer and the next call clears it. Threads may share
 * a tokenizer as long as their calls succeed; give each thread its own when errors are expected.
 */
#include "config.h"

#include "io/tokenizer_internal.h"

/* GPT-2's pre-tokenisation pattern, used by ByteLevel with use_regex = true. */
static const char GPT2_PATTERN[] =
    "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)|\\s+";

/* ======================================================================================================= */
/* Loading                                                                                                 */
/* ======================================================================================================= */

/* The GPT-2 byte <-> character table: printable Latin-1 bytes stand for themselves, the 68 others (controls,
 * space, DEL, NBSP, soft hyphen, ...) get U+0100 upwards in byte order. */
static void init_byte_table(armt_tokenizer *t) {
    for (int c = 0; c < 324; c++)
        t->chr_byte[c] = -1;
    int next = 256;
    for (int b = 0; b < 256; b++) {
        int printable = (b >= 0x21 && b <= 0x7E) || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF);
        int cp = printable ? b : next++;
        unsigned char u[4];
        int l = armt_tok_utf8_put((uint32_t)cp, u);
        memcpy(t->byte_chr[b], u, (size_t)l);
        t->byte_chr_len[b] = (uint8_t)l;
        t->chr_byte[cp] = (int16_t)b;
    }
}

static const char *json_type_name(const json_t *j) {
    switch (json_typeof(j)) {
    case JSON_OBJECT: return "object";
    case JSON_ARRAY: return "array";
    case JSON_STRING: return "string";
    case JSON_INTEGER: return "integer";
    case JSON_REAL: return "real";
    case JSON_TRUE:
    case JSON_FALSE: return "boolean";
    case JSON_NULL: return "null";
    }
    return "?";
}

/* The "type" member of a component, or "(no type)". */
static const char *type_of(const json_t *obj) {
    const char *s = json_is_object(obj) ? json_string_value(json_object_get(obj, "type")) : NULL;
    return s ? s : "(no type)";
}

/* A boolean member: absent or null gives def; anything but a boolean is an error. */
static armt_status get_bool(const json_t *obj, const char *key, int def, int *out, const char *where,
                            armt_err *err) {
    const json_t *v = json_object_get(obj, key);
    if (!v || json_is_null(v)) {
        *out = def;
        return ARMT_OK;
    }
    ARMT_RETURN_IF(!json_is_boolean(v), ARMT_STATUS_BAD_FILE,
                   "tokenizer.json: %s.%s must be a boolean, not %s", where, key, json_type_name(v));
    *out = json_is_true(v);
    return ARMT_OK;
}

static armt_status compile_regex(const char *pattern, size_t len, int literal, pcre2_code **out,
                                 armt_err *err) {
    int code;
    PCRE2_SIZE at;
    uint32_t opts = literal ? (PCRE2_UTF | PCRE2_LITERAL) : (PCRE2_UTF | PCRE2_UCP); /* LITERAL forbids UCP */
    pcre2_code *re = pcre2_compile((PCRE2_SPTR)pattern, len, opts, &code, &at, NULL);
    if (!re) {
        PCRE2_UCHAR msg[256];
        pcre2_get_error_message(code, msg, sizeof msg);
        return armt_err_set(
            err, ARMT_STATUS_UNSUPPORTED,
            "tokenizer.json: pre-tokenizer regex /%s/ does not compile with PCRE2 at offset %zu: %s", pattern,
            (size_t)at, (const char *)msg);
    }
    /* JIT makes matching several times faster; without it (no JIT support) the interpreter is used. */
    (void)pcre2_jit_compile(re, PCRE2_JIT_COMPLETE);
    *out = re;
    return ARMT_OK;
}

static armt_status add_step(armt_tokenizer *t, const json_t *pt, int depth, armt_err *err);

static armt_status parse_split(armt_tokenizer *t, const json_t *pt, armt_err *err) {
    const json_t *pat = json_object_get(pt, "pattern");
    const json_t *rx = json_is_object(pat) ? json_object_get(pat, "Regex") : NULL;
    const json_t *lit = json_is_object(pat) ? json_object_get(pat, "String") : NULL;
    const json_t *ps = rx ? rx : lit;
    ARMT_RETURN_IF(!json_is_string(ps), ARMT_STATUS_BAD_FILE,
                   "tokenizer.json: Split pre-tokenizer needs pattern {\"Regex\": ...} or {\"String\": ...}");
    const char *behavior = json_string_value(json_object_get(pt, "behavior"));
    ARMT_RETURN_IF(!behavior, ARMT_STATUS_BAD_FILE, "tokenizer.json: Split pre-tokenizer without behavior");
    int removed = 0;
    if (strcmp(behavior, "Removed") == 0) {
        removed = 1;
    } else if (strcmp(behavior, "Isolated") != 0) {
        return armt_err_set(err, ARMT_STATUS_UNSUPPORTED,
                            "tokenizer.json: Split behavior '%s' is not supported (Isolated, Removed)",
                            behavior);
    }
    int invert;
    ARMT_TRY(get_bool(pt, "invert", 0, &invert, "Split", err));
    ARMT_RETURN_IF(invert, ARMT_STATUS_UNSUPPORTED,
                   "tokenizer.json: Split with invert = true is not supported");
    ARMT_RETURN_IF(t->n_steps >= TOK_MAX_STEPS, ARMT_STATUS_UNSUPPORTED,
                   "tokenizer.json: more than %d pre-tokenizer steps", TOK_MAX_STEPS);
    ARMT_RETURN_IF(
        t->n_steps > 0 && t->steps[t->n_steps - 1].kind == STEP_BYTELEVEL, ARMT_STATUS_UNSUPPORTED,
        "tokenizer.json: a Split after the ByteLevel pre-tokenizer is not supported (ByteLevel must be "
        "the last step)");
    pretok_step *s = &t->steps[t->n_steps];
    *s = (pretok_step){.kind = STEP_SPLIT, .removed = removed};
    ARMT_TRY(compile_regex(json_string_value(ps), json_string_length(ps), lit != NULL, &s->re, err));
    t->n_steps++;
    return ARMT_OK;
}

static armt_status parse_bytelevel(armt_tokenizer *t, const json_t *pt, armt_err *err) {
    int prefix, use_regex;
    ARMT_TRY(get_bool(pt, "add_prefix_space", 1, &prefix, "ByteLevel", err));
    ARMT_TRY(get_bool(pt, "use_regex", 1, &use_regex, "ByteLevel", err));
    ARMT_RETURN_IF(t->n_steps >= TOK_MAX_STEPS, ARMT_STATUS_UNSUPPORTED,
                   "tokenizer.json: more than %d pre-tokenizer steps", TOK_MAX_STEPS);
    ARMT_RETURN_IF(t->n_steps > 0 && t->steps[t->n_steps - 1].kind == STEP_BYTELEVEL, ARMT_STATUS_UNSUPPORTED,
                   "tokenizer.json: two ByteLevel pre-tokenizers are not supported");
    pretok_step *s = &t->steps[t->n_steps];
    *s = (pretok_step){.kind = STEP_BYTELEVEL, .add_prefix_space = prefix};
    if (use_regex) ARMT_TRY(compile_regex(GPT2_PATTERN, sizeof GPT2_PATTERN - 1, 0, &s->re, err));
    t->n_steps++;
    return ARMT_OK;
}

static armt_status add_step(armt_tokenizer *t, const json_t *pt, int depth, armt_err *err) {
    const char *type = type_of(pt);
    ARMT_RETURN_IF(depth > 4, ARMT_STATUS_UNSUPPORTED,
                   "tokenizer.json: pre-tokenizer Sequences nested too deep");
    if (strcmp(type, "Sequence") == 0) {
        const json_t *list = json_object_get(pt, "pretokenizers");
        ARMT_RETURN_IF(!json_is_array(list), ARMT_STATUS_BAD_FILE,
                       "tokenizer.json: pre-tokenizer Sequence without a pretokenizers array");
        for (size_t i = 0; i < json_array_size(list); i++)
            ARMT_TRY(add_step(t, json_array_get(list, i), depth + 1, err));
        return ARMT_OK;
    }
    if (strcmp(type, "Split") == 0) return parse_split(t, pt, err);
    if (strcmp(type, "ByteLevel") == 0) return parse_bytelevel(t, pt, err);
    return armt_err_set(err, ARMT_STATUS_UNSUPPORTED,
                        "tokenizer.json: pre-tokenizer '%s' is not supported (Sequence, Split, ByteLevel)",
                        type);
}

static armt_status parse_pre_tokenizer(armt_tokenizer *t, const json_t *root, armt_err *err) {
    const json_t *pt = json_object_get(root, "pre_tokenizer");
    if (pt && !json_is_null(pt)) ARMT_TRY(add_step(t, pt, 0, err));
    ARMT_RETURN_IF(
        t->n_steps == 0 || t->steps[t->n_steps - 1].kind != STEP_BYTELEVEL, ARMT_STATUS_UNSUPPORTED,
        "tokenizer.json: only byte-level BPE is supported: the pre-tokenizer must end with ByteLevel");
    return ARMT_OK;
}

static armt_status check_normalizer_and_decoder(const json_t *root, armt_err *err) {
    const json_t *n = json_object_get(root, "normalizer");
    if (n && !json_is_null(n)) {
        const json_t *list = json_object_get(n, "normalizers");
        int empty_seq =
            strcmp(type_of(n), "Sequence") == 0 && json_is_array(list) && json_array_size(list) == 0;
        ARMT_RETURN_IF(!empty_seq, ARMT_STATUS_UNSUPPORTED,
                       "tokenizer.json: normalizer '%s' is not supported", type_of(n));
    }
    const json_t *d = json_object_get(root, "decoder");
    ARMT_RETURN_IF(!d || json_is_null(d), ARMT_STATUS_UNSUPPORTED,
                   "tokenizer.json: no decoder; only the ByteLevel decoder is supported");
    if (strcmp(type_of(d), "Sequence") == 0) {
        const json_t *list = json_object_get(d, "decoders");
        ARMT_RETURN_IF(!json_is_array(list) || json_array_size(list) == 0, ARMT_STATUS_BAD_FILE,
                       "tokenizer.json: decoder Sequence without decoders");
        for (size_t i = 0; i < json_array_size(list); i++) {
            const char *ty = type_of(json_array_get(list, i));
            ARMT_RETURN_IF(strcmp(ty, "ByteLevel") != 0, ARMT_STATUS_UNSUPPORTED,
                           "tokenizer.json: decoder '%s' is not supported (ByteLevel only)", ty);
        }
    } else {
        ARMT_RETURN_IF(strcmp(type_of(d), "ByteLevel") != 0, ARMT_STATUS_UNSUPPORTED,
                       "tokenizer.json: decoder '%s' is not supported (ByteLevel only)", type_of(d));
    }
    return ARMT_OK;
}

static armt_status check_id(json_int_t id, const char *what, const char *name, armt_err *err) {
    ARMT_RETURN_IF(id < 0 || id >= TOK_MAX_ID, ARMT_STATUS_BAD_FILE,
                   "tokenizer.json: %s '%s' has id %lld, outside [0, %d)", what, name, (long long)id,
                   TOK_MAX_ID);
    return ARMT_OK;
}

/* Splits a merge entry into its two token texts: "a b" (legacy) or ["a", "b"]. */
static armt_status merge_parts(const json_t *m, size_t i, const char **a, size_t *al, const char **b,
                               size_t *bl, armt_err *err) {
    if (json_is_string(m)) {
        const char *s = json_string_value(m);
        size_t n = json_string_length(m);
        const char *sp = memchr(s, ' ', n);
        ARMT_RETURN_IF(!sp || memchr(sp + 1, ' ', n - (size_t)(sp + 1 - s)), ARMT_STATUS_BAD_FILE,
                       "tokenizer.json: merge %zu \"%s\" is not two tokens separated by one space", i, s);
        *a = s;
        *al = (size_t)(sp - s);
        *b = sp + 1;
        *bl = n - *al - 1;
        return ARMT_OK;
    }
    ARMT_RETURN_IF(!json_is_array(m) || json_array_size(m) != 2 || !json_is_string(json_array_get(m, 0)) ||
                       !json_is_string(json_array_get(m, 1)),
                   ARMT_STATUS_BAD_FILE, "tokenizer.json: merge %zu is neither \"a b\" nor [\"a\", \"b\"]",
                   i);
    *a = json_string_value(json_array_get(m, 0));
    *al = json_string_length(json_array_get(m, 0));
    *b = json_string_value(json_array_get(m, 1));
    *bl = json_string_length(json_array_get(m, 1));
    return ARMT_OK;
}

static armt_status parse_model(armt_tokenizer *t, const json_t *root, int32_t *max_id, armt_err *err) {
    const json_t *model = json_object_get(root, "model");
    ARMT_RETURN_IF(!json_is_object(model), ARMT_STATUS_BAD_FILE, "tokenizer.json: no \"model\" object");
    const char *type = json_string_value(json_object_get(model, "type"));
    ARMT_RETURN_IF(type && strcmp(type, "BPE") != 0, ARMT_STATUS_UNSUPPORTED,
                   "tokenizer.json: model type '%s' is not supported (BPE only)", type);
    const json_t *vocab = json_object_get(model, "vocab");
    const json_t *merges = json_object_get(model, "merges");
    ARMT_RETURN_IF(!json_is_object(vocab), ARMT_STATUS_BAD_FILE,
                   "tokenizer.json: model.vocab is not an object");
    ARMT_RETURN_IF(!json_is_array(merges), ARMT_STATUS_BAD_FILE,
                   "tokenizer.json: model.merges is not an array");

    /* Options that change the output and that a byte-level LLaMA-3 tokenizer does not use. */
    const json_t *dropout = json_object_get(model, "dropout");
    ARMT_RETURN_IF(dropout && !json_is_null(dropout) && json_number_value(dropout) != 0.0,
                   ARMT_STATUS_UNSUPPORTED, "tokenizer.json: BPE dropout is not supported");
    int byte_fallback;
    ARMT_TRY(get_bool(model, "byte_fallback", 0, &byte_fallback, "model", err));
    ARMT_RETURN_IF(byte_fallback, ARMT_STATUS_UNSUPPORTED,
                   "tokenizer.json: BPE byte_fallback is not supported");
    static const char *const affixes[] = {"continuing_subword_prefix", "end_of_word_suffix"};
    for (int i = 0; i < 2; i++) {
        const char *s = json_string_value(json_object_get(model, affixes[i]));
        ARMT_RETURN_IF(s && s[0], ARMT_STATUS_UNSUPPORTED, "tokenizer.json: BPE %s \"%s\" is not supported",
                       affixes[i], s);
    }
    ARMT_TRY(get_bool(model, "ignore_merges", 0, &t->ignore_merges, "model", err));
    ARMT_TRY(get_bool(model, "fuse_unk", 0, &t->fuse_unk, "model", err));

    /* Vocab */
    ARMT_TRY(armt_tok_strmap_init(&t->vocab, json_object_size(vocab), err));
    const char *key;
    const json_t *v;
    json_object_foreach((json_t *)vocab, key, v) {
        ARMT_RETURN_IF(!json_is_integer(v), ARMT_STATUS_BAD_FILE,
                       "tokenizer.json: vocab entry '%s' is not an integer id", key);
        json_int_t id = json_integer_value(v);
        ARMT_TRY(check_id(id, "vocab entry", key, err));
        size_t off;
        ARMT_TRY(armt_tok_pool_add(t, key, strlen(key), &off, err));
        armt_tok_strmap_put(&t->vocab, t->pool, off, strlen(key), (int32_t)id);
        if ((int32_t)id > *max_id) *max_id = (int32_t)id;
    }

    const char *unk = json_string_value(json_object_get(model, "unk_token"));
    t->unk_id = -1;
    if (unk) {
        t->unk_id = armt_tok_strmap_get(&t->vocab, t->pool, unk, strlen(unk));
        ARMT_RETURN_IF(t->unk_id < 0, ARMT_STATUS_BAD_FILE,
                       "tokenizer.json: unk_token '%s' is not in the vocab", unk);
    }

    /* Merges: rank = position in the list; the merged token must be in the vocab. */
    size_t n = json_array_size(merges);
    ARMT_RETURN_IF(n > UINT32_MAX / 2, ARMT_STATUS_BAD_FILE, "tokenizer.json: too many merges (%zu)", n);
    ARMT_TRY(armt_tok_mergemap_init(&t->merges, n, err));
    char *cat = NULL;
    size_t cat_cap = 0;
    for (size_t i = 0; i < n; i++) {
        const char *a = NULL, *b = NULL;
        size_t al = 0, bl = 0;
        armt_status st = merge_parts(json_array_get(merges, i), i, &a, &al, &b, &bl, err);
        if (st != ARMT_OK) {
            free(cat);
            return st;
        }
        if (al + bl + 1 > cat_cap) {
            cat_cap = 2 * (al + bl + 1);
            char *c = realloc(cat, cat_cap);
            if (!c) {
                free(cat);
                return armt_err_set(err, ARMT_STATUS_OUT_OF_HOST_MEMORY, "tokenizer: out of memory (merges)");
            }
            cat = c;
        }
        memcpy(cat, a, al);
        memcpy(cat + al, b, bl);
        int32_t ia = armt_tok_strmap_get(&t->vocab, t->pool, a, al);
        int32_t ib = armt_tok_strmap_get(&t->vocab, t->pool, b, bl);
        int32_t im = armt_tok_strmap_get(&t->vocab, t->pool, cat, al + bl);
        if (ia < 0 || ib < 0 || im < 0) {
            cat[al + bl] = '\0';
            const char *miss = ia < 0 ? a : ib < 0 ? b : cat;
            size_t miss_len = ia < 0 ? al : ib < 0 ? bl : al + bl;
            st = armt_err_set(err, ARMT_STATUS_BAD_FILE,
                              "tokenizer.json: merge %zu (\"%.*s\" + \"%.*s\"): \"%.*s\" is not in the vocab",
                              i, (int)al, a, (int)bl, b, (int)miss_len, miss);
            free(cat);
            return st;
        }
        armt_tok_mergemap_put(&t->merges, ia, ib, (uint32_t)i, im);
    }
    free(cat);
    return ARMT_OK;
}

static armt_status parse_added_tokens(armt_tokenizer *t, const json_t *root, int32_t *max_id, armt_err *err) {
    const json_t *list = json_object_get(root, "added_tokens");
    if (!list || json_is_null(list)) return armt_tok_strmap_init(&t->added_map, 0, err);
    ARMT_RETURN_IF(!json_is_array(list), ARMT_STATUS_BAD_FILE,
                   "tokenizer.json: added_tokens is not an array");
    size_t n = json_array_size(list);
    ARMT_TRY(armt_tok_strmap_init(&t->added_map, n, err));
    if (n == 0) return ARMT_OK;
    t->added = calloc(n, sizeof *t->added);
    ARMT_RETURN_IF(!t->added, ARMT_STATUS_OUT_OF_HOST_MEMORY, "tokenizer: out of memory (added tokens)");
    for (size_t i = 0; i < n; i++) {
        const json_t *a = json_array_get(list, i);
        const json_t *c = json_object_get(a, "content");
        const json_t *id = json_object_get(a, "id");
        ARMT_RETURN_IF(!json_is_string(c) || json_string_length(c) == 0 || !json_is_integer(id),
                       ARMT_STATUS_BAD_FILE,
                       "tokenizer.json: added_tokens[%zu] needs a non-empty content and an integer id", i);
        const char *content = json_string_value(c);
        ARMT_TRY(check_id(json_integer_value(id), "added token", content, err));
        static const char *const flags[] = {"single_word", "lstrip", "rstrip"};
        for (int f = 0; f < 3; f++) {
            int on;
            ARMT_TRY(get_bool(a, flags[f], 0, &on, "added_tokens[]", err));
            ARMT_RETURN_IF(on, ARMT_STATUS_UNSUPPORTED,
                           "tokenizer.json: added token '%s': %s = true is not supported", content, flags[f]);
        }
        int special, normalized;
        ARMT_TRY(get_bool(a, "special", 0, &special, "added_tokens[]", err));
        ARMT_TRY(get_bool(a, "normalized", !special, &normalized, "added_tokens[]", err));
        added_token *at = &t->added[t->n_added++];
        at->id = (int32_t)json_integer_value(id);
        at->len = json_string_length(c);
        at->special = (uint8_t)special;
        at->normalized = (uint8_t)normalized;
        ARMT_TRY(armt_tok_pool_add(t, content, at->len, &at->off, err));
        armt_tok_strmap_put(&t->added_map, t->pool, at->off, at->len, at->id);
        if (at->id > *max_id) *max_id = at->id;
    }
    return ARMT_OK;
}

/* Sort key of the added-token index: first byte, then longest first, then id (a total order, so the
 * matcher does not depend on qsort's stability). */
typedef struct added_key {
    unsigned char first;
    size_t len;
    int32_t id;
    size_t index;
} added_key;

static int cmp_added(const void *pa, const void *pb) {
    const added_key *a = pa, *b = pb;
    if (a->first != b->first) return a->first < b->first ? -1 : 1;
    if (a->len != b->len) return a->len > b->len ? -1 : 1;
    return (a->id > b->id) - (a->id < b->id);
}

/* Builds order[pass] and first[pass][] (see the struct). */
static armt_status index_added(armt_tokenizer *t, armt_err *err) {
    for (int pass = 0; pass < 2; pass++) {
        t->order[pass] = malloc((t->n_added + 1) * sizeof(size_t));
        ARMT_RETURN_IF(!t->order[pass], ARMT_STATUS_OUT_OF_HOST_MEMORY,
                       "tokenizer: out of memory (added index)");
        added_key *keys = malloc((t->n_added + 1) * sizeof *keys);
        ARMT_RETURN_IF(!keys, ARMT_STATUS_OUT_OF_HOST_MEMORY, "tokenizer: out of memory (added index)");
        size_t k = 0;
        for (size_t i = 0; i < t->n_added; i++) {
            const added_token *a = &t->added[i];
            if (a->normalized != pass) continue;
            keys[k++] = (added_key){(unsigned char)t->pool[a->off], a->len, a->id, i};
        }
        qsort(keys, k, sizeof *keys, cmp_added);
        for (size_t i = 0; i < k; i++)
            t->order[pass][i] = keys[i].index;
        free(keys);
        size_t j = 0;
        for (int b = 0; b <= 256; b++) {
            while (j < k && (unsigned char)t->pool[t->added[t->order[pass][j]].off] < b)
                j++;
            t->first[pass][b] = j;
        }
        t->first[pass][256] = k;
    }
    return ARMT_OK;
}

/* Appends the ids of a processor's special token `name` (TemplateProcessing special_tokens map). */
static armt_status template_ids(armt_tokenizer *t, const json_t *tp, const char *name, armt_err *err) {
    const json_t *sp = json_object_get(json_object_get(tp, "special_tokens"), name);
    const json_t *ids = json_object_get(sp, "ids");
    ARMT_RETURN_IF(!json_is_array(ids), ARMT_STATUS_BAD_FILE,
                   "tokenizer.json: TemplateProcessing special token '%s' has no ids", name);
    for (size_t i = 0; i < json_array_size(ids); i++) {
        const json_t *v = json_array_get(ids, i);
        ARMT_RETURN_IF(!json_is_integer(v), ARMT_STATUS_BAD_FILE,
                       "tokenizer.json: TemplateProcessing special token '%s': ids must be integers", name);
        ARMT_TRY(check_id(json_integer_value(v), "template token", name, err));
        int32_t *b = realloc(t->bos, (t->n_bos + 1) * sizeof *b);
        ARMT_RETURN_IF(!b, ARMT_STATUS_OUT_OF_HOST_MEMORY, "tokenizer: out of memory");
        t->bos = b;
        t->bos[t->n_bos++] = (int32_t)json_integer_value(v);
    }
    return ARMT_OK;
}

/* Reads the BOS prefix out of one post-processor; *found = 1 if it is one that decides special tokens. */
static armt_status parse_processor(armt_tokenizer *t, const json_t *pp, int depth, int *found,
                                   armt_err *err) {
    const char *type = type_of(pp);
    ARMT_RETURN_IF(depth > 4, ARMT_STATUS_UNSUPPORTED,
                   "tokenizer.json: post-processor Sequences nested too deep");
    if (strcmp(type, "ByteLevel") == 0) return ARMT_OK; /* offsets only */
    if (strcmp(type, "Sequence") == 0) {
        const json_t *list = json_object_get(pp, "processors");
        ARMT_RETURN_IF(!json_is_array(list), ARMT_STATUS_BAD_FILE,
                       "tokenizer.json: post-processor Sequence without processors");
        for (size_t i = 0; i < json_array_size(list); i++)
            ARMT_TRY(parse_processor(t, json_array_get(list, i), depth + 1, found, err));
        return ARMT_OK;
    }
    if (strcmp(type, "TemplateProcessing") == 0) {
        const json_t *single = json_object_get(pp, "single");
        ARMT_RETURN_IF(!json_is_array(single), ARMT_STATUS_BAD_FILE,
                       "tokenizer.json: TemplateProcessing without a single template");
        *found = 1;
        for (size_t i = 0; i < json_array_size(single); i++) {
            const json_t *piece = json_array_get(single, i);
            const json_t *sp = json_object_get(piece, "SpecialToken");
            if (!sp) break; /* $A: stop; tokens after the sequence are not part of add_bos */
            const char *name = json_string_value(json_object_get(sp, "id"));
            ARMT_RETURN_IF(!name, ARMT_STATUS_BAD_FILE,
                           "tokenizer.json: TemplateProcessing SpecialToken without id");
            ARMT_TRY(template_ids(t, pp, name, err));
        }
        return ARMT_OK;
    }
    if (strcmp(type, "RobertaProcessing") == 0 || strcmp(type, "BertProcessing") == 0) {
        const json_t *cls = json_object_get(pp, "cls");
        const json_t *id = json_array_get(cls, 1);
        ARMT_RETURN_IF(!json_is_integer(id), ARMT_STATUS_BAD_FILE,
                       "tokenizer.json: %s without a cls [token, id]", type);
        ARMT_TRY(check_id(json_integer_value(id), "cls token", type, err));
        *found = 1;
        int32_t *b = realloc(t->bos, (t->n_bos + 1) * sizeof *b);
        ARMT_RETURN_IF(!b, ARMT_STATUS_OUT_OF_HOST_MEMORY, "tokenizer: out of memory");
        t->bos = b;
        t->bos[t->n_bos++] = (int32_t)json_integer_value(id);
        return ARMT_OK;
    }
    return armt_err_set(err, ARMT_STATUS_UNSUPPORTED, "tokenizer.json: post-processor '%s' is not supported",
                        type);
}

/* The BOS ids named by a post-processor must be tokens of this tokenizer. */
static armt_status check_bos(const armt_tokenizer *t, armt_err *err) {
    for (size_t i = 0; i < t->n_bos; i++)
        ARMT_RETURN_IF(t->bos[i] >= t->n_ids || !t->tokens[t->bos[i]].present, ARMT_STATUS_BAD_FILE,
                       "tokenizer.json: the post-processor's BOS id %d is not a token", (int)t->bos[i]);
    return ARMT_OK;
}

static armt_status parse_bos(armt_tokenizer *t, const json_t *root, armt_err *err) {
    const json_t *pp = json_object_get(root, "post_processor");
    int found = 0;
    if (pp && !json_is_null(pp)) ARMT_TRY(parse_processor(t, pp, 0, &found, err));
    if (found) return check_bos(t, err);
    /* No template: fall back to a special added token with a conventional BOS name. */
    static const char *const names[] = {"<|begin_of_text|>", "<s>", "<bos>", "<|startoftext|>"};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        int32_t id = armt_tok_strmap_get(&t->added_map, t->pool, names[i], strlen(names[i]));
        if (id >= 0) {
            t->bos = malloc(sizeof *t->bos);
            ARMT_RETURN_IF(!t->bos, ARMT_STATUS_OUT_OF_HOST_MEMORY, "tokenizer: out of memory");
            t->bos[0] = id;
            t->n_bos = 1;
            return ARMT_OK;
        }
    }
    return ARMT_OK;
}

/* The bytes the ByteLevel decoder gives for one token text: each character mapped back to its byte, or, if
 * some character is not in the table (e.g. an added token with a space), the text's own UTF-8 bytes. */
static armt_status set_decoded(armt_tokenizer *t, tok_entry *e, armt_err *err) {
    const unsigned char *s = (const unsigned char *)t->pool + e->text_off;
    size_t n = e->text_len, k = 0;
    unsigned char *buf = malloc(n + 1);
    ARMT_RETURN_IF(!buf, ARMT_STATUS_OUT_OF_HOST_MEMORY, "tokenizer: out of memory");
    int mapped = 1;
    for (size_t i = 0; i < n;) {
        uint32_t cp;
        int l = armt_tok_utf8_next(s + i, n - i, &cp);
        if (l < 0 || cp >= 324 || t->chr_byte[cp] < 0) {
            mapped = 0;
            break;
        }
        buf[k++] = (unsigned char)t->chr_byte[cp];
        i += (size_t)l;
    }
    armt_status st;
    if (mapped) {
        st = armt_tok_pool_add(t, buf, k, &e->dec_off, err);
        e->dec_len = k;
    } else {
        /* pool_add may move the pool: copy the text first */
        memcpy(buf, s, n);
        st = armt_tok_pool_add(t, buf, n, &e->dec_off, err);
        e->dec_len = n;
    }
    free(buf);
    return st;
}

static armt_status build_tables(armt_tokenizer *t, int32_t max_id, armt_err *err) {
    t->n_ids = max_id + 1;
    t->tokens = calloc((size_t)t->n_ids, sizeof *t->tokens);
    ARMT_RETURN_IF(!t->tokens, ARMT_STATUS_OUT_OF_HOST_MEMORY, "tokenizer: out of memory (%d ids)", t->n_ids);
    for (size_t i = 0; i < t->vocab.cap; i++) {
        const strmap_slot *s = &t->vocab.slots[i];
        if (s->id < 0) continue;
        tok_entry *e = &t->tokens[s->id];
        /* Two vocab keys with one id: one of them is kept (HF's id -> token map keeps just one too). */
        if (e->present) continue;
        *e = (tok_entry){.text_off = s->off, .text_len = s->len, .present = 1};
    }
    /* Added tokens take precedence for decoding, as in HF (added vocabulary first, then the model). */
    for (size_t i = 0; i < t->n_added; i++) {
        const added_token *a = &t->added[i];
        t->tokens[a->id] =
            (tok_entry){.text_off = a->off, .text_len = a->len, .present = 1, .special = a->special};
    }
    for (int32_t id = 0; id < t->n_ids; id++)
        if (t->tokens[id].present) ARMT_TRY(set_decoded(t, &t->tokens[id], err));
    for (int b = 0; b < 256; b++)
        t->byte_id[b] = armt_tok_strmap_get(&t->vocab, t->pool, t->byte_chr[b], t->byte_chr_len[b]);
    return ARMT_OK;
}

static armt_status load_into(armt_tokenizer *t, const char *path, armt_err *err) {
    char *text = NULL;
    size_t len = 0;
    ARMT_TRY(armt_read_file(path, "tokenizer", 0, 0, &text, &len, err));
    json_error_t jerr;
    json_t *root = json_loadb(text, len, JSON_ALLOW_NUL, &jerr);
    free(text);
    ARMT_RETURN_IF(!root, ARMT_STATUS_BAD_FILE, "tokenizer: %s is not valid JSON (line %d, column %d): %s",
                   path, jerr.line, jerr.column, jerr.text);
    armt_status st = ARMT_OK;
    int32_t max_id = -1;
    if (!json_is_object(root)) {
        st = armt_err_set(err, ARMT_STATUS_BAD_FILE, "tokenizer: %s: the top level is not a JSON object",
                          path);
        goto done;
    }
    /* Cheap structural checks first, so an unsupported file is named before the big vocab is read. */
    const json_t *model = json_object_get(root, "model");
    const char *mtype = json_string_value(json_object_get(model, "type"));
    if (mtype && strcmp(mtype, "BPE") != 0) {
        st = armt_err_set(err, ARMT_STATUS_UNSUPPORTED,
                          "tokenizer.json: model type '%s' is not supported (BPE only)", mtype);
        goto done;
    }
    ARMT_TRY_GOTO(check_normalizer_and_decoder(root, err), done);
    ARMT_TRY_GOTO(parse_pre_tokenizer(t, root, err), done);
    ARMT_TRY_GOTO(parse_model(t, root, &max_id, err), done);
    ARMT_TRY_GOTO(parse_added_tokens(t, root, &max_id, err), done);
    ARMT_TRY_GOTO(index_added(t, err), done);
    if (max_id < 0) {
        st = armt_err_set(err, ARMT_STATUS_BAD_FILE, "tokenizer.json: the vocab is empty");
        goto done;
    }
    ARMT_TRY_GOTO(build_tables(t, max_id, err), done);
    ARMT_TRY_GOTO(parse_bos(t, root, err), done);
done:
    json_decref(root);
    return st;
}

void armt_tokenizer_free(armt_tokenizer *t) {
    if (!t) return;
    for (int i = 0; i < t->n_steps; i++)
        pcre2_code_free(t->steps[i].re);
    free(t->vocab.slots);
    free(t->added_map.slots);
    free(t->merges.slots);
    free(t->tokens);
    free(t->added);
    free(t->order[0]);
    free(t->order[1]);
    free(t->bos);
    free(t->pool);
    armt_err_free(&t->err);
    free(t);
}

armt_status armt_tokenizer_load(const char *path, armt_tokenizer **out) {
    armt_err *err = NULL; /* no handle yet: messages go to the thread's armt_last_error() */
    ARMT_RETURN_IF(!path || !out, ARMT_STATUS_INVALID_ARGUMENT, "armt_tokenizer_load: NULL argument");
    *out = NULL;
    armt_tokenizer *t = calloc(1, sizeof *t);
    ARMT_RETURN_IF(!t, ARMT_STATUS_OUT_OF_HOST_MEMORY, "tokenizer: out of memory");
    armt_err_init(&t->err);
    init_byte_table(t);
    armt_status st = load_into(t, path, &t->err);
    if (st != ARMT_OK) {
        armt_tokenizer_free(t); /* the message stays in armt_last_error() */
        return st;
    }
    *out = t;
    return ARMT_OK;
}

const char *armt_tokenizer_last_error(const armt_tokenizer *t) {
    return t ? armt_err_msg(&t->err) : armt_last_error();
}

int32_t armt_tokenizer_vocab_size(const armt_tokenizer *t) { return t ? t->n_ids : 0; }

int32_t armt_tokenizer_token_id(const armt_tokenizer *t, const char *text) {
    if (!t || !text) return -1;
    size_t n = strlen(text);
    int32_t id = armt_tok_strmap_get(&t->added_map, t->pool, text, n);
    return id >= 0 ? id : armt_tok_strmap_get(&t->vocab, t->pool, text, n);
}
