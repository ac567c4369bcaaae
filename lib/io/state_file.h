/*
 * state_file.h - the memory-state file format (armt_ctx_memory_save / armt_ctx_memory_load), as pure
 * functions on bytes: no device, no file. ctx.c reads and writes the files; the fuzz harness
 * (fuzz/fuzz_state.c) feeds the decoder directly.
 *
 * Layout (little-endian): 64-byte header, then W_mem floats, z floats, written bytes, and with a sliding
 * window its state: u32 rows held (<= W), then the keys and the values [n_layers, W, width] floats, the rows
 * held right-aligned (the rows below them zero).
 *   0  char[8]  "ARMTSTAT"       8  u32 version (1)     12 u32 n_layers     16 u32 d_key   20 u32 d
 *   24 u64 model fingerprint    32 u64 payload bytes   40 u64 checksum of the payload
 *   48 u32 variant   52 u32 memory heads - 1   56 u32 window rows W (0: none)   60 u32 window width
 * (A model without a sliding window writes the files it always wrote: bytes 56..63 zero, no window.)
 */
#ifndef ARMT_STATE_FILE_H
#define ARMT_STATE_FILE_H

#include "common/error.h"

#include <stddef.h>
#include <stdint.h>

#define ARMT_STATE_HEADER_BYTES 64

typedef struct armt_state_shape {
    uint32_t n_layers, d_key, d;
    uint64_t fingerprint;
    uint32_t variant, heads; /* armt_variant and memory heads H (>= 1): W_mem holds d_key * d / H floats per
                              * layer ([H, d_key/H, d/H]); bytes 48 and 52 of the header (heads - 1), zero
                              * in files of the paper's one-head models */
    uint32_t win_rows, win_width; /* sliding window: W rows of n_kv_heads * head_dim floats per layer, keys
                                   * and values (0: no window); bytes 56 and 60 of the header */
} armt_state_shape;

/* The sliding window's part of a state (shape.win_rows > 0): k and v of n_layers * win_rows * win_width
 * floats each, and the rows held. */
typedef struct armt_state_window {
    float *k, *v;
    uint32_t len;
} armt_state_window;

/* Bytes of a whole file for that shape (header + payload); 0 when the size would overflow size_t. */
size_t armt_state_file_bytes(const armt_state_shape *s);

/* Writes the whole file (armt_state_file_bytes(s) bytes) into buf. win: the window (NULL without one). */
void armt_state_encode(const armt_state_shape *s, const float *w, const float *z, const uint8_t *written,
                       const armt_state_window *win, unsigned char *buf);

/* Checks data[0..len) as a state file for shape s and, only when every check passes, copies the payload to
 * w (n_layers * d_key * d / heads floats), z (n_layers * d_key), written (n_layers bytes, each 0 or 1) and,
 * with a window, win (its k and v arrays, and len). name is the file name of the messages. Statuses:
 * BAD_FILE (too short, bad magic, payload size, truncated, trailing bytes, checksum, a written flag other
 * than 0/1, more window rows than W), UNSUPPORTED (version), MODEL_MISMATCH (another model's shape, window
 * or fingerprint). On error the outputs are untouched. */
armt_status armt_state_decode(const unsigned char *data, size_t len, const armt_state_shape *s,
                              const char *name, float *w, float *z, uint8_t *written, armt_state_window *win,
                              armt_err *err);

#endif
