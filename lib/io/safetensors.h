/*
 * safetensors.h - a validating reader and a streaming F32 writer for the safetensors format.
 *
 * File layout (https://github.com/huggingface/safetensors, "Format"):
 *
 *     [8 bytes]  N, the header length, unsigned little-endian
 *     [N bytes]  JSON object: { "__metadata__": {str: str}, "<name>": {"dtype", "shape", "data_offsets"}, ...
 * } [rest]     the data section; data_offsets = [begin, end) are relative to its start
 *
 * The reader trusts nothing in a file: every length is range-checked against the real file size, every
 * product is overflow-checked, and the tensors must tile the data section exactly (no holes, no
 * overlaps), before any tensor is handed out. It also opens sharded checkpoints through their
 * model.safetensors.index.json. Tensor data is never mapped or loaded whole: st_read_f32 reads any
 * element range with pread, so a loader can stream a 5 GB checkpoint through a small buffer.
 *
 * The writer produces F32 tensors (what armt_model_save needs) and I32 ones. Tensors are declared first, then
 * their data is streamed in declaration order in chunks of any size; the file appears under its final
 * name only once complete (written to "<path>.tmp", then rename()).
 */
#ifndef ARMT_SAFETENSORS_H
#define ARMT_SAFETENSORS_H

#include "common/error.h"

#include <stddef.h>
#include <stdint.h>

/* Largest header accepted (the limit of the reference implementation). */
#define ST_MAX_HEADER_BYTES 100000000ull
/* Largest tensor rank accepted. */
#define ST_MAX_DIMS 8

/* ST_I32 is for writing only (armt-run's input_ids): the reader refuses it as UNSUPPORTED, as it refuses
 * every dtype it does not convert to float. */
typedef enum st_dtype { ST_F32 = 0, ST_F16 = 1, ST_BF16 = 2, ST_I32 = 3 } st_dtype;

typedef struct st_tensor {
    char *name;
    st_dtype dtype;
    int ndim;
    uint64_t shape[ST_MAX_DIMS];
    uint64_t numel;       /* product of shape (1 for a scalar, ndim 0)      */
    uint64_t data_offset; /* absolute byte offset in its file               */
    uint64_t nbytes;      /* numel * st_dtype_size(dtype)                   */
    int shard;            /* index of the file holding it (0 if not sharded) */
} st_tensor;

typedef struct st_archive st_archive;

/* Bytes per element of a dtype; name as written in files ("F32", "F16", "BF16"). */
size_t st_dtype_size(st_dtype dt);
const char *st_dtype_name(st_dtype dt);
/* The dtype named name ("F32", "F16", "BF16", "I32"): 0, or -1 for another name. */
int st_dtype_parse(const char *name, st_dtype *out);

/* Opens and validates a checkpoint. path: a .safetensors file, a model.safetensors.index.json (sharded;
 * shards resolved relative to its directory; any path ending in ".json" is taken as an index), or a
 * directory holding model.safetensors or (else) model.safetensors.index.json.
 * Errors: IO_ERROR (cannot open/read, missing shard), BAD_FILE (malformed), UNSUPPORTED (dtype),
 * MISSING_TENSOR (an index entry absent from its shard), OUT_OF_HOST_MEMORY. */
armt_status st_open(const char *path, st_archive **out, armt_err *err);
void st_close(st_archive *a); /* accepts NULL */

/* Tensors in order: shard by shard (shards sorted by file name), header order inside a shard. */
size_t st_count(const st_archive *a);
const st_tensor *st_get(const st_archive *a, size_t i);          /* NULL if i >= count */
const st_tensor *st_find(const st_archive *a, const char *name); /* NULL if absent     */
/* A "__metadata__" string of the first shard; NULL if absent. */
const char *st_metadata(const st_archive *a, const char *key);
/* Number of files and the path of one (for messages). */
int st_shard_count(const st_archive *a);
const char *st_shard_path(const st_archive *a, int shard);

/* Reads elements [first, first + count) of the tensor (flattened row-major) into dst, converting F16 and
 * BF16 to float. t must come from this archive. */
armt_status st_read_f32(st_archive *a, const st_tensor *t, uint64_t first, uint64_t count, float *dst,
                        armt_err *err);

/* ----------------------------------------------------------------------------------------------------- */
/* Writer (F32 and I32 tensors)                                                                          */
/* ----------------------------------------------------------------------------------------------------- */

typedef struct st_writer st_writer;

/* Creates "<path>.tmp" at once (so an unwritable destination fails here, not at the end). */
armt_status st_writer_open(const char *path, st_writer **out, armt_err *err);
/* Declares the next F32 tensor, in data order. ndim 0..8. Only before the first write. */
armt_status st_writer_add(st_writer *w, const char *name, int ndim, const uint64_t *shape, armt_err *err);
/* The same for a tensor of dtype ST_F32 or ST_I32. */
armt_status st_writer_add_typed(st_writer *w, const char *name, st_dtype dtype, int ndim,
                                const uint64_t *shape, armt_err *err);
/* Sets a "__metadata__" entry (a later call with the same key replaces it). Only before the first write. */
armt_status st_writer_meta(st_writer *w, const char *key, const char *value, armt_err *err);
/* Appends count floats of data: the declared tensors back to back, in order, in chunks of any size. */
armt_status st_writer_write(st_writer *w, const float *data, uint64_t count, armt_err *err);
/* The same for I32 tensors. Writing floats into an I32 tensor, or ints into an F32 one, is refused. */
armt_status st_writer_write_i32(st_writer *w, const int32_t *data, uint64_t count, armt_err *err);
/* Checks that every declared element was written, flushes, fsyncs and renames the file into place.
 * Always frees w; on failure the temporary file is removed and nothing appears at path. */
armt_status st_writer_close(st_writer *w, armt_err *err);
/* Removes the temporary file and frees w. Accepts NULL. */
void st_writer_abort(st_writer *w);

/* Exposed for tests: half-precision bit patterns to float. */
float st_f16_to_f32(uint16_t h);
float st_bf16_to_f32(uint16_t h);

#endif
