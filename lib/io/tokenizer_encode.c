/*
 * tokenizer_encode.c - encoding (added tokens, pre-tokenizer steps, BPE by merge rank) and decoding.
 */
#include "config.h"

#include "io/tokenizer_internal.h"

/* ======================================================================================================= */
/* Encoding                                                                                                */
/* ======================================================================================================= */

typedef struct heap_item {
    uint32_t rank;
    uint32_t pos; /* left symbol                        */
    int32_t left; /* ids of the pair when it was pushed */
    int32_t right;
} heap_item;

/* Scratch of one encode call (the tokenizer itself stays read-only). */
typedef struct enc_state {
    const armt_tokenizer *t;
    armt_err *err;
    int parse_special;
    pcre2_match_data *md;
    int32_t *ids; /* output                                             */
    size_t n_ids, cap_ids;
    int32_t *sym;         /* BPE symbols [cap_sym]: id (-1 once absorbed) ...   */
    int32_t *prev, *next; /* ... and the doubly linked list of live symbols     */
    size_t cap_sym;
    heap_item *heap; /* candidate merges, min-heap on (rank, pos)          */
    size_t n_heap, cap_heap;
} enc_state;

static armt_status emit(enc_state *s, int32_t id) {
    if (s->n_ids == s->cap_ids) {
        size_t cap = s->cap_ids ? 2 * s->cap_ids : 256;
        int32_t *p = realloc(s->ids, cap * sizeof *p);
        if (!p) return armt_err_set(s->err, ARMT_STATUS_OUT_OF_HOST_MEMORY, "tokenizer: out of memory (ids)");
        s->ids = p;
        s->cap_ids = cap;
    }
    s->ids[s->n_ids++] = id;
    return ARMT_OK;
}

static int heap_less(const heap_item *a, const heap_item *b) {
    return a->rank < b->rank || (a->rank == b->rank && a->pos < b->pos);
}

static armt_status heap_push(enc_state *s, heap_item it) {
    if (s->n_heap == s->cap_heap) {
        size_t cap = s->cap_heap ? 2 * s->cap_heap : 64;
        heap_item *h = realloc(s->heap, cap * sizeof *h);
        if (!h)
            return armt_err_set(s->err, ARMT_STATUS_OUT_OF_HOST_MEMORY,
                                "tokenizer: out of memory (BPE heap)");
        s->heap = h;
        s->cap_heap = cap;
    }
    size_t i = s->n_heap++;
    while (i > 0) {
        size_t p = (i - 1) / 2;
        if (!heap_less(&it, &s->heap[p])) break;
        s->heap[i] = s->heap[p];
        i = p;
    }
    s->heap[i] = it;
    return ARMT_OK;
}

static heap_item heap_pop(enc_state *s) {
    heap_item top = s->heap[0], last = s->heap[--s->n_heap];
    size_t i = 0, n = s->n_heap;
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= n) break;
        if (c + 1 < n && heap_less(&s->heap[c + 1], &s->heap[c])) c++;
        if (!heap_less(&s->heap[c], &last)) break;
        s->heap[i] = s->heap[c];
        i = c;
    }
    if (n) s->heap[i] = last;
    return top;
}

/* Pushes the pair starting at symbol position a, if it is a known merge. */
static armt_status push_pair(enc_state *s, int32_t a) {
    int32_t b = s->next[a];
    if (a < 0 || b < 0) return ARMT_OK;
    const merge_slot *m = armt_tok_mergemap_get(&s->t->merges, s->sym[a], s->sym[b]);
    if (!m) return ARMT_OK;
    return heap_push(s,
                     (heap_item){.rank = m->rank, .pos = (uint32_t)a, .left = s->sym[a], .right = s->sym[b]});
}

/* BPE of one pre-token (raw bytes; its byte-level characters are what the vocab holds). */
static armt_status bpe_word(enc_state *s, const unsigned char *p, size_t n) {
    const armt_tokenizer *t = s->t;
    if (n == 0) return ARMT_OK;
    if (t->ignore_merges) {
        int32_t id = armt_tok_vocab_get_mapped(t, p, n);
        if (id >= 0) return emit(s, id);
    }
    if (n > s->cap_sym) {
        size_t cap = n < 64 ? 64 : n;
        int32_t *a = realloc(s->sym, cap * sizeof *a);
        if (a) s->sym = a;
        int32_t *b = realloc(s->prev, cap * sizeof *b);
        if (b) s->prev = b;
        int32_t *c = realloc(s->next, cap * sizeof *c);
        if (c) s->next = c;
        if (!a || !b || !c)
            return armt_err_set(s->err, ARMT_STATUS_OUT_OF_HOST_MEMORY, "tokenizer: out of memory");
        s->cap_sym = cap;
    }
    /* Initial symbols: one per byte. A byte whose character is missing from the vocab becomes unk (fused
     * with a preceding unk if fuse_unk) or, without an unk token, is dropped - HF's BPE does the same. */
    int32_t m = 0;
    int last_unk = 0;
    for (size_t i = 0; i < n; i++) {
        int32_t id = t->byte_id[p[i]];
        if (id < 0) {
            if (t->unk_id < 0) continue;
            if (t->fuse_unk && last_unk) continue;
            id = t->unk_id;
            last_unk = 1;
        } else {
            last_unk = 0;
        }
        s->sym[m] = id;
        s->prev[m] = m - 1;
        s->next[m] = m + 1;
        m++;
    }
    if (m == 0) return ARMT_OK;
    s->next[m - 1] = -1;
    s->n_heap = 0;
    for (int32_t i = 0; i + 1 < m; i++)
        ARMT_TRY(push_pair(s, i));
    while (s->n_heap) {
        heap_item it = heap_pop(s);
        int32_t a = (int32_t)it.pos, b = s->next[a];
        /* Stale entry: the left symbol was absorbed (sym = -1) or one side has merged since the push. */
        if (s->sym[a] != it.left || b < 0 || s->sym[b] != it.right) continue;
        const merge_slot *mg = armt_tok_mergemap_get(&t->merges, it.left, it.right);
        s->sym[a] = mg->merged;
        s->sym[b] = -1;
        s->next[a] = s->next[b];
        if (s->next[a] >= 0) s->prev[s->next[a]] = a;
        if (s->prev[a] >= 0) ARMT_TRY(push_pair(s, s->prev[a]));
        ARMT_TRY(push_pair(s, a));
    }
    for (int32_t i = 0; i >= 0; i = s->next[i])
        ARMT_TRY(emit(s, s->sym[i]));
    return ARMT_OK;
}

static armt_status pretokenize(enc_state *s, int step, const unsigned char *p, size_t n);

/* Runs a step's regex over one valid UTF-8 run; gaps and (unless removed) matches go to the next step. */
static armt_status split_valid(enc_state *s, int step, const unsigned char *p, size_t n) {
    const pretok_step *ps = &s->t->steps[step];
    size_t start = 0, prev_end = 0;
    while (start < n) {
        int rc = pcre2_match(ps->re, p, n, start, PCRE2_NO_UTF_CHECK, s->md, NULL);
        if (rc == PCRE2_ERROR_NOMATCH) break;
        if (rc < 0) {
            PCRE2_UCHAR msg[256];
            pcre2_get_error_message(rc, msg, sizeof msg);
            return armt_err_set(s->err, ARMT_STATUS_UNSUPPORTED, "tokenizer: pre-tokenizer regex failed: %s",
                                (const char *)msg);
        }
        const PCRE2_SIZE *ov = pcre2_get_ovector_pointer(s->md);
        size_t ms = ov[0], me = ov[1];
        if (ms < prev_end || me < ms || me > n)
            return armt_err_set(s->err, ARMT_STATUS_UNSUPPORTED,
                                "tokenizer: regex match out of order (\\K?)");
        if (me == ms) { /* empty match: not a split point; step over one character */
            uint32_t cp;
            int l = (me < n) ? armt_tok_utf8_next(p + me, n - me, &cp) : 1;
            start = me + (size_t)(l > 0 ? l : 1);
            continue;
        }
        if (ms > prev_end) ARMT_TRY(pretokenize(s, step + 1, p + prev_end, ms - prev_end));
        if (!ps->removed) ARMT_TRY(pretokenize(s, step + 1, p + ms, me - ms));
        prev_end = start = me;
    }
    if (n > prev_end) ARMT_TRY(pretokenize(s, step + 1, p + prev_end, n - prev_end));
    return ARMT_OK;
}

/* A regex step: valid runs through the regex, each invalid subsequence as its own piece (see top). */
static armt_status split_step(enc_state *s, int step, const unsigned char *p, size_t n) {
    size_t i = 0;
    while (i < n) {
        size_t j = i;
        int l = 0;
        while (j < n) {
            uint32_t cp;
            l = armt_tok_utf8_next(p + j, n - j, &cp);
            if (l < 0) break;
            j += (size_t)l;
        }
        if (j > i) ARMT_TRY(split_valid(s, step, p + i, j - i));
        if (j < n) {
            ARMT_TRY(pretokenize(s, step + 1, p + j, (size_t)-l));
            j += (size_t)-l;
        }
        i = j;
    }
    return ARMT_OK;
}

/* Applies pre-tokenizer step `step` to one piece, depth first; after the last step it is a pre-token. */
static armt_status pretokenize(enc_state *s, int step, const unsigned char *p, size_t n) {
    if (n == 0) return ARMT_OK;
    if (step == s->t->n_steps) return bpe_word(s, p, n);
    const pretok_step *ps = &s->t->steps[step];
    if (ps->kind == STEP_BYTELEVEL && ps->add_prefix_space && p[0] != ' ') {
        unsigned char *q = malloc(n + 1);
        if (!q) return armt_err_set(s->err, ARMT_STATUS_OUT_OF_HOST_MEMORY, "tokenizer: out of memory");
        q[0] = ' ';
        memcpy(q + 1, p, n);
        armt_status st = ps->re ? split_step(s, step, q, n + 1) : pretokenize(s, step + 1, q, n + 1);
        free(q);
        return st;
    }
    return ps->re ? split_step(s, step, p, n) : pretokenize(s, step + 1, p, n);
}

/* Cuts added tokens out of p[0..n): pass 0 (normalized = false) then, in its gaps, pass 1 (normalized =
 * true); the remaining gaps are pre-tokenized. Leftmost match wins, then the longest one at that position. */
static armt_status split_added(enc_state *s, int pass, const unsigned char *p, size_t n) {
    const armt_tokenizer *t = s->t;
    if (pass == 2) return pretokenize(s, 0, p, n);
    size_t gap = 0;
    for (size_t i = 0; i < n;) {
        size_t lo = t->first[pass][p[i]], hi = t->first[pass][p[i] + 1];
        const added_token *hit = NULL;
        for (size_t k = lo; k < hi; k++) {
            const added_token *a = &t->added[t->order[pass][k]];
            if (a->len > n - i || (a->special && !s->parse_special)) continue;
            if (memcmp(t->pool + a->off, p + i, a->len) == 0) {
                hit = a;
                break;
            }
        }
        if (!hit) {
            i++;
            continue;
        }
        if (i > gap) ARMT_TRY(split_added(s, pass + 1, p + gap, i - gap));
        ARMT_TRY(emit(s, hit->id));
        i += hit->len;
        gap = i;
    }
    if (n > gap) ARMT_TRY(split_added(s, pass + 1, p + gap, n - gap));
    return ARMT_OK;
}

armt_status armt_tokenizer_encode(armt_tokenizer *tok, const char *text, size_t len, int add_bos,
                                  int parse_special, int32_t *ids, size_t cap, size_t *n_out) {
    armt_err *err = tok ? &tok->err : NULL;
    ARMT_RETURN_IF(!tok || !n_out || (!text && len) || (!ids && cap), ARMT_STATUS_INVALID_ARGUMENT,
                   "armt_tokenizer_encode: NULL argument");
    if (err->status != ARMT_OK) armt_err_clear(err); /* successful calls on a clean handle write nothing */
    *n_out = 0;
    enc_state s = {.t = tok, .err = err, .parse_special = parse_special};
    armt_status st = ARMT_OK;
    s.md = pcre2_match_data_create(1, NULL);
    if (!s.md) {
        st = armt_err_set(err, ARMT_STATUS_OUT_OF_HOST_MEMORY, "tokenizer: out of memory (match data)");
        goto done;
    }
    if (add_bos)
        for (size_t i = 0; i < tok->n_bos; i++)
            ARMT_TRY_GOTO(emit(&s, tok->bos[i]), done);
    if (len) ARMT_TRY_GOTO(split_added(&s, 0, (const unsigned char *)text, len), done);
    *n_out = s.n_ids;
    if (s.n_ids > cap) {
        st = armt_err_set(err, ARMT_STATUS_INVALID_ARGUMENT,
                          "armt_tokenizer_encode: %zu ids do not fit the capacity %zu", s.n_ids, cap);
        goto done;
    }
    if (s.n_ids) memcpy(ids, s.ids, s.n_ids * sizeof *ids);
done:
    pcre2_match_data_free(s.md);
    free(s.ids);
    free(s.sym);
    free(s.prev);
    free(s.next);
    free(s.heap);
    return st;
}

/* ======================================================================================================= */
/* Decoding                                                                                                */
/* ======================================================================================================= */

armt_status armt_tokenizer_decode(armt_tokenizer *tok, const int32_t *ids, size_t n, int skip_special,
                                  char *text, size_t cap, size_t *len_out) {
    armt_err *err = tok ? &tok->err : NULL;
    ARMT_RETURN_IF(!tok || !len_out || (!ids && n) || (!text && cap), ARMT_STATUS_INVALID_ARGUMENT,
                   "armt_tokenizer_decode: NULL argument");
    if (err->status != ARMT_OK) armt_err_clear(err);
    *len_out = 0;
    /* Pass 1: the raw bytes of the tokens, and their length after the U+FFFD substitution. */
    size_t raw = 0;
    for (size_t i = 0; i < n; i++) {
        int32_t id = ids[i];
        ARMT_RETURN_IF(id < 0 || id >= tok->n_ids || !tok->tokens[id].present, ARMT_STATUS_TOKEN_OUT_OF_RANGE,
                       "armt_tokenizer_decode: ids[%zu] = %d is not a token (vocab size %d)", i, (int)id,
                       (int)tok->n_ids);
        if (!(skip_special && tok->tokens[id].special)) raw += tok->tokens[id].dec_len;
    }
    unsigned char *buf = malloc(raw ? raw : 1);
    ARMT_RETURN_IF(!buf, ARMT_STATUS_OUT_OF_HOST_MEMORY, "tokenizer: out of memory (%zu bytes)", raw);
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        const tok_entry *e = &tok->tokens[ids[i]];
        if (skip_special && e->special) continue;
        memcpy(buf + k, tok->pool + e->dec_off, e->dec_len);
        k += e->dec_len;
    }
    /* Pass 2: invalid UTF-8 subsequences -> U+FFFD (EF BF BD), like String::from_utf8_lossy. */
    size_t need = 0;
    for (size_t i = 0; i < raw;) {
        uint32_t cp;
        int l = armt_tok_utf8_next(buf + i, raw - i, &cp);
        need += l > 0 ? (size_t)l : 3;
        i += (size_t)(l > 0 ? l : -l);
    }
    if (need + 1 > cap) {
        free(buf);
        *len_out = need + 1;
        return armt_err_set(err, ARMT_STATUS_INVALID_ARGUMENT,
                            "armt_tokenizer_decode: %zu bytes (NUL included) do not fit the capacity %zu",
                            need + 1, cap);
    }
    size_t o = 0;
    for (size_t i = 0; i < raw;) {
        uint32_t cp;
        int l = armt_tok_utf8_next(buf + i, raw - i, &cp);
        if (l > 0) {
            memcpy(text + o, buf + i, (size_t)l);
            o += (size_t)l;
            i += (size_t)l;
        } else {
            memcpy(text + o, "\xEF\xBF\xBD", 3);
            o += 3;
            i += (size_t)-l;
        }
    }
    text[o] = '\0';
    *len_out = o;
    free(buf);
    return ARMT_OK;
}
