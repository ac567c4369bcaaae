/*
 * tokenizer_internal.h - the byte-level BPE tokenizer's structures and the helpers its three files share:
 * tokenizer_maps.c (pool, UTF-8, hashing, the vocab and merge maps), tokenizer.c (loading tokenizer.json),
 * tokenizer_encode.c (encoding and decoding).
 */
#ifndef ARMT_TOKENIZER_INTERNAL_H
#define ARMT_TOKENIZER_INTERNAL_H

#include "common/error.h"
#include "common/util.h"

#define PCRE2_CODE_UNIT_WIDTH 8
#include <errno.h>
#include <jansson.h>
#include <pcre2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Largest id accepted in a file: bounds the id-indexed tables (LLaMA-3 uses 128256). */
#define TOK_MAX_ID (1 << 24)
/* Largest number of pre-tokenizer steps (a Sequence may nest). */
#define TOK_MAX_STEPS 16

/* ======================================================================================================= */
/* Structures                                                                                              */
/* ======================================================================================================= */

/* Open-addressing map from a byte string (kept in a pool) to an id. */
typedef struct strmap_slot {
    uint32_t hash;
    int32_t id; /* -1: empty slot */
    size_t off; /* key bytes: pool[off, off + len) */
    size_t len;
} strmap_slot;

typedef struct strmap {
    strmap_slot *slots; /* [cap], cap a power of two, at most half full */
    size_t cap;
    size_t count;
} strmap;

/* Open-addressing map (left id, right id) -> (rank, merged id). */
typedef struct merge_slot {
    uint64_t key; /* left << 32 | right; UINT64_MAX: empty */
    uint32_t rank;
    int32_t merged;
} merge_slot;

typedef struct mergemap {
    merge_slot *slots; /* [cap] */
    size_t cap;
    size_t count;
} mergemap;

/* Per-id information; ids without a token (holes) have present = 0. */
typedef struct tok_entry {
    size_t text_off, text_len; /* token text as written in the file (UTF-8), in pool                 */
    size_t dec_off, dec_len;   /* bytes that decode produces for it (ByteLevel decoder rule), in pool */
    uint8_t present;
    uint8_t special; /* a special added token (skipped by decode when skip_special)        */
} tok_entry;

typedef struct added_token {
    int32_t id;
    size_t off, len; /* content in pool */
    uint8_t special;
    uint8_t normalized;
} added_token;

typedef enum step_kind { STEP_SPLIT, STEP_BYTELEVEL } step_kind;

typedef struct pretok_step {
    step_kind kind;
    pcre2_code *re;       /* the split regex; NULL for ByteLevel with use_regex = false */
    int removed;          /* Split behavior "Removed": matches are dropped               */
    int add_prefix_space; /* ByteLevel                                                     */
} pretok_step;

struct armt_tokenizer {
    armt_err err;
    char *pool; /* every string the tokenizer keeps                               */
    size_t pool_len, pool_cap;

    strmap vocab;     /* model vocab: token text (byte-level characters) -> id           */
    strmap added_map; /* added token content -> id                                        */
    mergemap merges;
    tok_entry *tokens; /* [n_ids]                                                          */
    int32_t n_ids;     /* max id + 1 over vocab and added tokens                           */

    added_token *added; /* [n_added]                                                        */
    size_t n_added;
    /* For each pass (0: normalized = false, 1: normalized = true): indices into added[], sorted by first
     * byte then longest first; first[pass][b] .. first[pass][b + 1] is the range starting with byte b. */
    size_t *order[2];
    size_t first[2][257];

    pretok_step steps[TOK_MAX_STEPS];
    int n_steps;

    int ignore_merges;
    int32_t unk_id; /* -1: none                                                         */
    int fuse_unk;
    int32_t byte_id[256];     /* id of the one-character token of each byte; -1 if not in vocab   */
    uint8_t byte_chr[256][2]; /* UTF-8 of the character that stands for each byte                 */
    uint8_t byte_chr_len[256];
    int16_t chr_byte[324]; /* inverse: code point (< 324) -> byte, -1 if none                  */
    int32_t *bos;          /* ids prepended by add_bos                                         */
    size_t n_bos;
};

armt_status armt_tok_pool_add(armt_tokenizer *t, const void *bytes, size_t n, size_t *off, armt_err *err);
int armt_tok_utf8_next(const unsigned char *s, size_t n, uint32_t *cp);
int armt_tok_utf8_put(uint32_t cp, unsigned char *out);
uint32_t armt_tok_hash_bytes(const void *p, size_t n);
uint32_t armt_tok_hash_mapped(const armt_tokenizer *t, const unsigned char *p, size_t n);
size_t armt_tok_mapped_len(const armt_tokenizer *t, const unsigned char *p, size_t n);
int armt_tok_equal_mapped(const armt_tokenizer *t, const char *key, const unsigned char *p, size_t n);
armt_status armt_tok_strmap_init(strmap *m, size_t expected, armt_err *err);
void armt_tok_strmap_put(strmap *m, const char *pool, size_t off, size_t len, int32_t id);
int32_t armt_tok_strmap_get(const strmap *m, const char *pool, const void *key, size_t len);
int32_t armt_tok_vocab_get_mapped(const armt_tokenizer *t, const unsigned char *p, size_t n);
size_t armt_tok_merge_hash(uint64_t key, size_t mask);
armt_status armt_tok_mergemap_init(mergemap *m, size_t expected, armt_err *err);
uint64_t armt_tok_merge_key(int32_t a, int32_t b);
void armt_tok_mergemap_put(mergemap *m, int32_t a, int32_t b, uint32_t rank, int32_t merged);
const merge_slot *armt_tok_mergemap_get(const mergemap *m, int32_t a, int32_t b);

#endif
