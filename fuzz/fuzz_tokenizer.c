/*
 * fuzz_tokenizer.c - libFuzzer harness for the tokenizer.json reader and the BPE encoder/decoder
 * (lib/io/tokenizer*.c). See fuzz/README.md.
 *
 * The input is a tokenizer.json (through a memfd). When armt_tokenizer_load accepts it:
 *   - a few fixed texts and the input itself (as text) are encoded, with and without BOS and special
 *     tokens: the capacity query (cap 0) and the real call must agree on the count, and every id must be
 *     inside [0, vocab_size);
 *   - the ids are decoded with the same capacity convention: query, then the exact size, which must give
 *     len_out = size - 1 and a NUL terminator;
 *   - token_id of every decoded special text is looked up (must not crash).
 * On failure the status must be an error with a message.
 */
#include "config.h"

#include "fuzz_util.h"

int LLVMFuzzerInitialize(int *argc, char ***argv) {
    (void)argc;
    (void)argv;
    armt_log_set(fuzz_log_cb, NULL);
    return 0;
}

static void roundtrip(armt_tokenizer *tok, const char *text, size_t len, int bos, int special) {
    size_t need = 0;
    armt_status st = armt_tokenizer_encode(tok, text, len, bos, special, NULL, 0, &need);
    if (st != ARMT_OK && st != ARMT_STATUS_INVALID_ARGUMENT) {
        FUZZ_CHECK(armt_tokenizer_last_error(tok)[0] != '\0');
        return;
    }
    if (st == ARMT_OK) FUZZ_CHECK(need == 0);
    int32_t *ids = malloc((need ? need : 1) * sizeof *ids);
    if (!ids) return;
    size_t n = 0;
    st = armt_tokenizer_encode(tok, text, len, bos, special, ids, need, &n);
    FUZZ_CHECK(st == ARMT_OK);
    FUZZ_CHECK(n == need);
    int32_t vocab = armt_tokenizer_vocab_size(tok);
    for (size_t i = 0; i < n; i++)
        FUZZ_CHECK(ids[i] >= 0 && ids[i] < vocab);
    for (int skip = 0; skip < 2; skip++) {
        size_t cap = 0;
        st = armt_tokenizer_decode(tok, ids, n, skip, NULL, 0, &cap);
        if (st == ARMT_STATUS_TOKEN_OUT_OF_RANGE) continue; /* an id the vocab maps to nothing */
        FUZZ_CHECK(st == ARMT_STATUS_INVALID_ARGUMENT || (st == ARMT_OK && n == 0));
        if (st == ARMT_OK) continue;
        FUZZ_CHECK(cap >= 1);
        char *out = malloc(cap);
        if (!out) break;
        size_t got = 0;
        st = armt_tokenizer_decode(tok, ids, n, skip, out, cap, &got);
        FUZZ_CHECK(st == ARMT_OK);
        FUZZ_CHECK(got + 1 == cap && out[got] == '\0');
        (void)armt_tokenizer_token_id(tok, out);
        free(out);
    }
    free(ids);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    const char *path = fuzz_memfd_path(data, size);
    if (!path) return 0;
    armt_tokenizer *tok = (armt_tokenizer *)0x1;
    armt_status st = armt_tokenizer_load(path, &tok);
    if (st != ARMT_OK) {
        FUZZ_CHECK(st < 0 && tok == NULL);
        FUZZ_CHECK(armt_last_error()[0] != '\0');
        return 0;
    }
    FUZZ_CHECK(tok != NULL && armt_tokenizer_vocab_size(tok) > 0);
    static const char *const texts[] = {"",
                                        "Hello, world!",
                                        "  two  spaces\n\nand lines",
                                        "caf\xc3\xa9 \xe2\x82\xac 123456",
                                        "<|begin_of_text|>hi<|eot_id|>",
                                        "\xff\xfe bad utf8 \xc3",
                                        "a"};
    for (size_t i = 0; i < sizeof texts / sizeof texts[0]; i++)
        for (int mode = 0; mode < 4; mode++)
            roundtrip(tok, texts[i], strlen(texts[i]), mode & 1, mode >> 1);
    /* the input itself, at most 512 bytes of it */
    roundtrip(tok, (const char *)data, size < 512 ? size : 512, 1, 1);
    (void)armt_tokenizer_token_id(tok, "<|eot_id|>");
    (void)armt_tokenizer_token_id(tok, "");
    armt_tokenizer_free(tok);
    return 0;
}
