/*
 * state_file.c - encoding and decoding the memory-state file format. See state_file.h.
 */
#include "config.h"

#include "io/state_file.h"

#include <string.h>

#define STATE_MAGIC   "ARMTSTAT"
#define STATE_VERSION 1u

static void put_u32(unsigned char *p, uint32_t v) {
    for (int i = 0; i < 4; i++)
        p[i] = (unsigned char)(v >> (8 * i));
}
static void put_u64(unsigned char *p, uint64_t v) {
    for (int i = 0; i < 8; i++)
        p[i] = (unsigned char)(v >> (8 * i));
}
static uint32_t get_u32(const unsigned char *p) {
    uint32_t v = 0;
    for (int i = 0; i < 4; i++)
        v |= (uint32_t)p[i] << (8 * i);
    return v;
}
static uint64_t get_u64(const unsigned char *p) {
    uint64_t v = 0;
    for (int i = 0; i < 8; i++)
        v |= (uint64_t)p[i] << (8 * i);
    return v;
}
static uint64_t checksum(const unsigned char *b, size_t n) {
    uint64_t h = 0xcbf29ce484222325ULL;
    for (size_t i = 0; i < n; i++)
        h = (h ^ b[i]) * 0x100000001B3ULL;
    return h;
}

/* Element counts of the arrays (nx: floats of the window's keys, as many of its values); 0 in *payload when
 * a size overflows. */
static void counts(const armt_state_shape *s, size_t *nw, size_t *nz, size_t *nl, size_t *nx,
                   size_t *payload) {
    size_t l = s->n_layers, k = s->d_key, d = s->d;
    *nw = *nz = *nl = *nx = *payload = 0;
    if (k && l > SIZE_MAX / k) return;
    size_t lk = l * k;
    if (d && lk > SIZE_MAX / d) return;
    size_t lkd = lk * d / (s->heads > 1 ? s->heads : 1);
    if (lkd > (SIZE_MAX - ARMT_STATE_HEADER_BYTES) / 4 - lk - l) return;
    size_t x = 0, extra = 0;
    if (s->win_rows) {
        size_t rows = s->win_rows, width = s->win_width;
        if (width && (l > SIZE_MAX / rows || l * rows > SIZE_MAX / width)) return;
        x = l * rows * width;
        if (x > (SIZE_MAX - ARMT_STATE_HEADER_BYTES - 4 * lkd - 4 * lk - l - 4) / 8) return;
        extra = 4 + 8 * x;
    }
    *nw = lkd;
    *nz = lk;
    *nl = l;
    *nx = x;
    *payload = 4 * lkd + 4 * lk + l + extra;
}

size_t armt_state_file_bytes(const armt_state_shape *s) {
    size_t nw, nz, nl, nx, payload;
    counts(s, &nw, &nz, &nl, &nx, &payload);
    return payload ? ARMT_STATE_HEADER_BYTES + payload : 0;
}

void armt_state_encode(const armt_state_shape *s, const float *w, const float *z, const uint8_t *written,
                       const armt_state_window *win, unsigned char *buf) {
    size_t nw, nz, nl, nx, payload;
    counts(s, &nw, &nz, &nl, &nx, &payload);
    memset(buf, 0, ARMT_STATE_HEADER_BYTES);
    memcpy(buf, STATE_MAGIC, 8);
    put_u32(buf + 8, STATE_VERSION);
    put_u32(buf + 12, s->n_layers);
    put_u32(buf + 16, s->d_key);
    put_u32(buf + 20, s->d);
    put_u64(buf + 24, s->fingerprint);
    put_u64(buf + 32, (uint64_t)payload);
    put_u32(buf + 48, s->variant);
    put_u32(buf + 52, (s->heads > 1 ? s->heads : 1) - 1);
    put_u32(buf + 56, s->win_rows);
    put_u32(buf + 60, s->win_rows ? s->win_width : 0);
    /* floats in the host's byte order; the library targets little-endian hosts */
    unsigned char *p = buf + ARMT_STATE_HEADER_BYTES;
    memcpy(p, w, 4 * nw);
    memcpy(p + 4 * nw, z, 4 * nz);
    memcpy(p + 4 * nw + 4 * nz, written, nl);
    if (s->win_rows) {
        unsigned char *x = p + 4 * nw + 4 * nz + nl;
        put_u32(x, win->len);
        memcpy(x + 4, win->k, 4 * nx);
        memcpy(x + 4 + 4 * nx, win->v, 4 * nx);
    }
    put_u64(buf + 40, checksum(p, payload));
}

armt_status armt_state_decode(const unsigned char *data, size_t len, const armt_state_shape *s,
                              const char *name, float *w, float *z, uint8_t *written, armt_state_window *win,
                              armt_err *err) {
    size_t nw, nz, nl, nx, payload;
    counts(s, &nw, &nz, &nl, &nx, &payload);
    ARMT_RETURN_IF(len == 0, ARMT_STATUS_BAD_FILE, "%s: the memory state file is empty", name);
    ARMT_RETURN_IF(len < ARMT_STATE_HEADER_BYTES || memcmp(data, STATE_MAGIC, 8) != 0, ARMT_STATUS_BAD_FILE,
                   "%s is not a libarmt memory state (bad magic or too short)", name);
    uint32_t version = get_u32(data + 8);
    ARMT_RETURN_IF(version != STATE_VERSION, ARMT_STATUS_UNSUPPORTED,
                   "%s: memory state version %u is not supported", name, version);
    const uint32_t heads = s->heads > 1 ? s->heads : 1;
    ARMT_RETURN_IF(
        get_u32(data + 48) != s->variant || get_u32(data + 52) != heads - 1, ARMT_STATUS_MODEL_MISMATCH,
        "%s holds the memory of a %s-variant model with %u memory head(s); this model is %s with %u", name,
        armt_variant_name((armt_variant)get_u32(data + 48)), get_u32(data + 52) + 1,
        armt_variant_name((armt_variant)s->variant), heads);
    const uint32_t win_width = s->win_rows ? s->win_width : 0;
    ARMT_RETURN_IF(get_u32(data + 56) != s->win_rows || get_u32(data + 60) != win_width,
                   ARMT_STATUS_MODEL_MISMATCH,
                   "%s holds a sliding window of %u rows of %u (0: none); this model's is %u of %u", name,
                   get_u32(data + 56), get_u32(data + 60), s->win_rows, win_width);
    uint64_t fp = get_u64(data + 24);
    ARMT_RETURN_IF(
        fp != s->fingerprint || get_u32(data + 12) != s->n_layers || get_u32(data + 16) != s->d_key ||
            get_u32(data + 20) != s->d,
        ARMT_STATUS_MODEL_MISMATCH,
        "%s was saved for another model (fingerprint %016llx, %u layers, d_key %u, d %u; this model "
        "%016llx, %u layers, d_key %u, d %u)",
        name, (unsigned long long)fp, get_u32(data + 12), get_u32(data + 16), get_u32(data + 20),
        (unsigned long long)s->fingerprint, s->n_layers, s->d_key, s->d);
    ARMT_RETURN_IF(payload == 0 || get_u64(data + 32) != (uint64_t)payload, ARMT_STATUS_BAD_FILE,
                   "%s: payload size does not match the model", name);
    ARMT_RETURN_IF(len - ARMT_STATE_HEADER_BYTES < payload, ARMT_STATUS_BAD_FILE,
                   "%s is truncated (%zu of %zu bytes)", name, len, ARMT_STATE_HEADER_BYTES + payload);
    ARMT_RETURN_IF(len - ARMT_STATE_HEADER_BYTES > payload, ARMT_STATUS_BAD_FILE,
                   "%s has %zu bytes after the state", name, len - ARMT_STATE_HEADER_BYTES - payload);
    const unsigned char *p = data + ARMT_STATE_HEADER_BYTES;
    ARMT_RETURN_IF(checksum(p, payload) != get_u64(data + 40), ARMT_STATUS_BAD_FILE,
                   "%s: checksum mismatch (corrupted file)", name);
    for (size_t i = 0; i < nl; i++)
        ARMT_RETURN_IF(p[4 * nw + 4 * nz + i] > 1, ARMT_STATUS_BAD_FILE,
                       "%s: written flag of layer %zu is %u (0 or 1 expected)", name, i,
                       (unsigned)p[4 * nw + 4 * nz + i]);
    const unsigned char *x = p + 4 * nw + 4 * nz + nl;
    ARMT_RETURN_IF(s->win_rows && get_u32(x) > s->win_rows, ARMT_STATUS_BAD_FILE,
                   "%s: the sliding window holds %u rows, more than its %u", name, get_u32(x), s->win_rows);
    memcpy(w, p, 4 * nw);
    memcpy(z, p + 4 * nw, 4 * nz);
    memcpy(written, p + 4 * nw + 4 * nz, nl);
    if (s->win_rows) {
        win->len = get_u32(x);
        memcpy(win->k, x + 4, 4 * nx);
        memcpy(win->v, x + 4 + 4 * nx, 4 * nx);
    }
    return ARMT_OK;
}
