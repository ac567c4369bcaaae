/*
 * tokenizer_maps.c - the tokenizer's pool, UTF-8 and hashing helpers and its two open-addressing maps.
 */
#include "config.h"

#include "io/tokenizer_internal.h"

/* ======================================================================================================= */
/* Small helpers: pool, UTF-8, hashing                                                                     */
/* ======================================================================================================= */

armt_status armt_tok_pool_add(armt_tokenizer *t, const void *bytes, size_t n, size_t *off, armt_err *err) {
    if (t->pool_len + n + 1 > t->pool_cap) {
        size_t cap = t->pool_cap ? t->pool_cap : 4096;
        while (cap < t->pool_len + n + 1)
            cap *= 2;
        char *p = realloc(t->pool, cap);
        ARMT_RETURN_IF(!p, ARMT_STATUS_OUT_OF_HOST_MEMORY, "tokenizer: out of memory (string pool)");
        t->pool = p;
        t->pool_cap = cap;
    }
    *off = t->pool_len;
    if (n) memcpy(t->pool + t->pool_len, bytes, n);
    t->pool[t->pool_len + n] = '\0'; /* keeps every entry printable with %s */
    t->pool_len += n + 1;
    return ARMT_OK;
}

/* Length of the valid UTF-8 character at s[0..n) (1-4), or, if invalid, minus the length of the maximal
 * subpart to replace by one U+FFFD (-1..-3): the lead byte plus the continuation bytes that were still
 * acceptable. Rejects overlong forms, surrogates and code points above U+10FFFF. *cp gets the code point. */
int armt_tok_utf8_next(const unsigned char *s, size_t n, uint32_t *cp) {
    unsigned char b = s[0];
    if (b < 0x80) {
        *cp = b;
        return 1;
    }
    int need;
    unsigned char lo = 0x80, hi = 0xBF; /* allowed range of the second byte */
    uint32_t c;
    if (b >= 0xC2 && b <= 0xDF) {
        need = 1;
        c = b & 0x1F;
    } else if (b >= 0xE0 && b <= 0xEF) {
        need = 2;
        c = b & 0x0F;
        if (b == 0xE0) lo = 0xA0;
        if (b == 0xED) hi = 0x9F;
    } else if (b >= 0xF0 && b <= 0xF4) {
        need = 3;
        c = b & 0x07;
        if (b == 0xF0) lo = 0x90;
        if (b == 0xF4) hi = 0x8F;
    } else {
        return -1;
    }
    for (int i = 1; i <= need; i++) {
        if ((size_t)i >= n) return -i;
        unsigned char x = s[i];
        unsigned char l = (i == 1) ? lo : 0x80, h = (i == 1) ? hi : 0xBF;
        if (x < l || x > h) return -i;
        c = (c << 6) | (x & 0x3F);
    }
    *cp = c;
    return need + 1;
}

int armt_tok_utf8_put(uint32_t cp, unsigned char *out) {
    if (cp < 0x80) {
        out[0] = (unsigned char)cp;
        return 1;
    }
    if (cp < 0x800) {
        out[0] = (unsigned char)(0xC0 | (cp >> 6));
        out[1] = (unsigned char)(0x80 | (cp & 0x3F));
        return 2;
    }
    if (cp < 0x10000) {
        out[0] = (unsigned char)(0xE0 | (cp >> 12));
        out[1] = (unsigned char)(0x80 | ((cp >> 6) & 0x3F));
        out[2] = (unsigned char)(0x80 | (cp & 0x3F));
        return 3;
    }
    out[0] = (unsigned char)(0xF0 | (cp >> 18));
    out[1] = (unsigned char)(0x80 | ((cp >> 12) & 0x3F));
    out[2] = (unsigned char)(0x80 | ((cp >> 6) & 0x3F));
    out[3] = (unsigned char)(0x80 | (cp & 0x3F));
    return 4;
}

/* FNV-1a, folded to 32 bits. */
uint32_t armt_tok_hash_bytes(const void *p, size_t n) {
    const unsigned char *s = p;
    uint64_t h = 0xcbf29ce484222325ull;
    for (size_t i = 0; i < n; i++) {
        h ^= s[i];
        h *= 0x100000001b3ull;
    }
    return (uint32_t)(h ^ (h >> 32));
}

/* Streaming variant: the hash of the byte-level characters of raw bytes, without building that string. */
uint32_t armt_tok_hash_mapped(const armt_tokenizer *t, const unsigned char *p, size_t n) {
    uint64_t h = 0xcbf29ce484222325ull;
    for (size_t i = 0; i < n; i++) {
        const uint8_t *c = t->byte_chr[p[i]];
        for (int k = 0; k < t->byte_chr_len[p[i]]; k++) {
            h ^= c[k];
            h *= 0x100000001b3ull;
        }
    }
    return (uint32_t)(h ^ (h >> 32));
}

size_t armt_tok_mapped_len(const armt_tokenizer *t, const unsigned char *p, size_t n) {
    size_t m = 0;
    for (size_t i = 0; i < n; i++)
        m += t->byte_chr_len[p[i]];
    return m;
}

/* Does key (byte-level characters, in the pool) equal the mapping of raw bytes p[0..n)? */
int armt_tok_equal_mapped(const armt_tokenizer *t, const char *key, const unsigned char *p, size_t n) {
    size_t j = 0;
    for (size_t i = 0; i < n; i++) {
        int l = t->byte_chr_len[p[i]];
        if (memcmp(key + j, t->byte_chr[p[i]], (size_t)l) != 0) return 0;
        j += (size_t)l;
    }
    return 1;
}

/* ======================================================================================================= */
/* Maps                                                                                                    */
/* ======================================================================================================= */

armt_status armt_tok_strmap_init(strmap *m, size_t expected, armt_err *err) {
    size_t cap = 16;
    while (cap < 2 * expected + 2)
        cap *= 2;
    m->slots = malloc(cap * sizeof *m->slots);
    ARMT_RETURN_IF(!m->slots, ARMT_STATUS_OUT_OF_HOST_MEMORY, "tokenizer: out of memory (map of %zu)",
                   expected);
    for (size_t i = 0; i < cap; i++)
        m->slots[i].id = -1;
    m->cap = cap;
    m->count = 0;
    return ARMT_OK;
}

/* Inserts key (already in the pool at off) -> id; a key present already gets the new id (last one wins, as
 * in a JSON object read by HF). */
void armt_tok_strmap_put(strmap *m, const char *pool, size_t off, size_t len, int32_t id) {
    uint32_t h = armt_tok_hash_bytes(pool + off, len);
    size_t mask = m->cap - 1;
    for (size_t i = h & mask;; i = (i + 1) & mask) {
        strmap_slot *s = &m->slots[i];
        if (s->id < 0) {
            *s = (strmap_slot){.hash = h, .id = id, .off = off, .len = len};
            m->count++;
            return;
        }
        if (s->hash == h && s->len == len && memcmp(pool + s->off, pool + off, len) == 0) {
            s->id = id;
            return;
        }
    }
}

int32_t armt_tok_strmap_get(const strmap *m, const char *pool, const void *key, size_t len) {
    if (!m->slots) return -1;
    uint32_t h = armt_tok_hash_bytes(key, len);
    size_t mask = m->cap - 1;
    for (size_t i = h & mask;; i = (i + 1) & mask) {
        const strmap_slot *s = &m->slots[i];
        if (s->id < 0) return -1;
        if (s->hash == h && s->len == len && memcmp(pool + s->off, key, len) == 0) return s->id;
    }
}

/* Lookup of the byte-level mapping of raw bytes, in the vocab. */
int32_t armt_tok_vocab_get_mapped(const armt_tokenizer *t, const unsigned char *p, size_t n) {
    const strmap *m = &t->vocab;
    uint32_t h = armt_tok_hash_mapped(t, p, n);
    size_t len = armt_tok_mapped_len(t, p, n);
    size_t mask = m->cap - 1;
    for (size_t i = h & mask;; i = (i + 1) & mask) {
        const strmap_slot *s = &m->slots[i];
        if (s->id < 0) return -1;
        if (s->hash == h && s->len == len && armt_tok_equal_mapped(t, t->pool + s->off, p, n)) return s->id;
    }
}

size_t armt_tok_merge_hash(uint64_t key, size_t mask) {
    return (size_t)((key * 0x9E3779B97F4A7C15ull) >> 32) & mask;
}

armt_status armt_tok_mergemap_init(mergemap *m, size_t expected, armt_err *err) {
    size_t cap = 16;
    while (cap < 2 * expected + 2)
        cap *= 2;
    m->slots = malloc(cap * sizeof *m->slots);
    ARMT_RETURN_IF(!m->slots, ARMT_STATUS_OUT_OF_HOST_MEMORY, "tokenizer: out of memory (%zu merges)",
                   expected);
    for (size_t i = 0; i < cap; i++)
        m->slots[i].key = UINT64_MAX;
    m->cap = cap;
    m->count = 0;
    return ARMT_OK;
}

uint64_t armt_tok_merge_key(int32_t a, int32_t b) { return ((uint64_t)(uint32_t)a << 32) | (uint32_t)b; }

/* A repeated pair keeps the rank of its last occurrence, as HF does (its merges map is built in order). */
void armt_tok_mergemap_put(mergemap *m, int32_t a, int32_t b, uint32_t rank, int32_t merged) {
    uint64_t key = armt_tok_merge_key(a, b);
    size_t mask = m->cap - 1;
    for (size_t i = armt_tok_merge_hash(key, mask);; i = (i + 1) & mask) {
        merge_slot *s = &m->slots[i];
        if (s->key == UINT64_MAX) {
            *s = (merge_slot){.key = key, .rank = rank, .merged = merged};
            m->count++;
            return;
        }
        if (s->key == key) {
            s->rank = rank;
            s->merged = merged;
            return;
        }
    }
}

const merge_slot *armt_tok_mergemap_get(const mergemap *m, int32_t a, int32_t b) {
    uint64_t key = armt_tok_merge_key(a, b);
    size_t mask = m->cap - 1;
    for (size_t i = armt_tok_merge_hash(key, mask);; i = (i + 1) & mask) {
        const merge_slot *s = &m->slots[i];
        if (s->key == UINT64_MAX) return NULL;
        if (s->key == key) return s;
    }
}
