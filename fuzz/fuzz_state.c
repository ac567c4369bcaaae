/*
 * fuzz_state.c - libFuzzer harness for the memory-state file decoder (lib/io/state_file.c), the code behind
 * armt_ctx_memory_load. See fuzz/README.md.
 *
 * The input is decoded twice: once against a fixed small shape and fingerprint (what a context of a tiny
 * model would expect), and once against the shape its own header claims when that is small (so that the
 * fuzzer reaches the payload checks). Invariants: a failure leaves the outputs untouched and has a message;
 * a success re-encodes to exactly the input bytes (the reserved header bytes aside).
 */
#include "config.h"

#include "fuzz_util.h"
#include "io/state_file.h"

int LLVMFuzzerInitialize(int *argc, char ***argv) {
    (void)argc;
    (void)argv;
    armt_log_set(fuzz_log_cb, NULL);
    return 0;
}

#define MAX_FLOATS (1u << 16)

static void decode_as(const uint8_t *data, size_t size, const armt_state_shape *s) {
    size_t bytes = armt_state_file_bytes(s);
    if (bytes == 0 || bytes > 64 + 4 * (size_t)MAX_FLOATS * 4) return;
    size_t nw = (size_t)s->n_layers * s->d_key * s->d, nz = (size_t)s->n_layers * s->d_key, nl = s->n_layers;
    size_t nx = s->win_rows ? (size_t)s->n_layers * s->win_rows * s->win_width : 0;
    float *w = malloc((nw ? nw : 1) * sizeof *w), *z = malloc((nz ? nz : 1) * sizeof *z);
    uint8_t *wr = malloc(nl ? nl : 1);
    unsigned char *back = malloc(bytes);
    armt_state_window x = {malloc((nx ? nx : 1) * sizeof(float)), malloc((nx ? nx : 1) * sizeof(float)), 0};
    if (!w || !z || !wr || !back || !x.k || !x.v) goto out;
    memset(w, 0x5a, (nw ? nw : 1) * sizeof *w);
    memset(z, 0x5a, (nz ? nz : 1) * sizeof *z);
    memset(wr, 0x5a, nl ? nl : 1);
    /* a private copy of exactly size bytes: ASan catches any read past the end */
    unsigned char *copy = malloc(size ? size : 1);
    if (!copy) goto out;
    if (size) memcpy(copy, data, size);
    armt_err err;
    armt_err_init(&err);
    armt_status st = armt_state_decode(copy, size, s, "fuzz", w, z, wr, &x, &err);
    if (st != ARMT_OK) {
        FUZZ_CHECK(st < 0 && err.status == st && armt_err_msg(&err)[0] != '\0');
        for (size_t i = 0; i < nl; i++)
            FUZZ_CHECK(wr[i] == 0x5a);
        unsigned char probe[4];
        memset(probe, 0x5a, 4);
        FUZZ_CHECK(nw == 0 || memcmp(w, probe, 4) == 0);
    } else {
        FUZZ_CHECK(size == bytes);
        for (size_t i = 0; i < nl; i++)
            FUZZ_CHECK(wr[i] <= 1);
        FUZZ_CHECK(x.len <= s->win_rows);
        armt_state_encode(s, w, z, wr, &x, back);
        FUZZ_CHECK(memcmp(back, copy, 48) == 0 && memcmp(back + 56, copy + 56, 8) == 0);
        FUZZ_CHECK(memcmp(back + 64, copy + 64, bytes - 64) == 0);
    }
    armt_err_free(&err);
    free(copy);
out:
    free(x.k);
    free(x.v);
    free(w);
    free(z);
    free(wr);
    free(back);
}

static uint32_t le32(const uint8_t *p) {
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    /* the "tiny" preset: 3 layers, d_key 6 * 8 = 48, d 64; any fixed fingerprint */
    armt_state_shape tiny = {3, 48, 64, 0x0123456789abcdefULL};
    decode_as(data, size, &tiny);
    if (size >= 32) {
        armt_state_shape own = {le32(data + 12), le32(data + 16), le32(data + 20), 0};
        for (int i = 0; i < 8; i++)
            own.fingerprint |= (uint64_t)data[24 + i] << (8 * i);
        if (size >= 64) { /* the variant and the sliding window the header claims */
            own.variant = le32(data + 48);
            own.heads = le32(data + 52) + 1;
            own.win_rows = le32(data + 56);
            own.win_width = le32(data + 60);
        }
        uint64_t floats = (uint64_t)own.n_layers * own.d_key * (own.d + 1ull);
        uint64_t wfloats = (uint64_t)own.n_layers * own.win_rows * own.win_width;
        if (own.d_key <= MAX_FLOATS && own.d <= MAX_FLOATS && own.n_layers <= MAX_FLOATS &&
            floats <= MAX_FLOATS && own.win_rows <= MAX_FLOATS && own.win_width <= MAX_FLOATS &&
            wfloats <= MAX_FLOATS && own.heads >= 1 && own.heads <= MAX_FLOATS)
            decode_as(data, size, &own);
    }
    return 0;
}
