/*
 * safetensors_write.c - the safetensors writer (io/safetensors.h): declarations first, then the data streamed
 * to a temporary file in the same directory, renamed into place when the last tensor is complete.
 */
#include "config.h"

#include "io/safetensors.h"

#include "common/util.h"

#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static int st_mul_u64(uint64_t a, uint64_t b, uint64_t *out) { return !__builtin_mul_overflow(a, b, out); }
static int st_add_u64(uint64_t a, uint64_t b, uint64_t *out) { return !__builtin_add_overflow(a, b, out); }
static char *armt_strndup_z(const char *s) { return armt_strndup(s, strlen(s)); }

/* ===================================================================================================== */
/* Writer                                                                                                */
/* ===================================================================================================== */

/* The writer streams: only the declarations are kept in memory, never the data. The header is written
 * at the first data write, when all offsets are known, which is why declarations must come first. */
struct st_writer {
    char *path;
    char *tmp_path;
    FILE *f;
    json_t *meta;    /* "__metadata__" entries                                   */
    json_t *tensors; /* name -> {dtype, shape, data_offsets}, in declaration order */
    char **names;    /* declared names, for messages                             */
    uint64_t *numel; /* declared element counts                                  */
    st_dtype *dtype; /* declared dtypes (ST_F32 or ST_I32)                       */
    size_t n, cap;
    uint64_t total_bytes; /* data bytes declared                                      */
    int header_done;      /* header written: no more declarations                     */
    size_t cur;           /* tensor being filled                                      */
    uint64_t cur_done;    /* elements of it already written                           */
};

void st_writer_abort(st_writer *w) {
    if (!w) return;
    if (w->f) fclose(w->f);
    if (w->tmp_path) unlink(w->tmp_path);
    for (size_t i = 0; i < w->n; i++)
        free(w->names[i]);
    free(w->names);
    free(w->numel);
    free(w->dtype);
    json_decref(w->meta);
    json_decref(w->tensors);
    free(w->path);
    free(w->tmp_path);
    free(w);
}

armt_status st_writer_open(const char *path, st_writer **out, armt_err *err) {
    ARMT_RETURN_IF(!path || !out, ARMT_STATUS_INVALID_ARGUMENT, "st_writer_open: NULL argument");
    *out = NULL;
    st_writer *w = calloc(1, sizeof *w);
    ARMT_RETURN_IF(!w, ARMT_STATUS_OUT_OF_HOST_MEMORY, "%s: out of memory", path);
    size_t n = strlen(path);
    w->path = armt_strndup_z(path);
    w->tmp_path = malloc(n + 5);
    w->meta = json_object();
    w->tensors = json_object();
    if (!w->path || !w->tmp_path || !w->meta || !w->tensors) {
        free(w->tmp_path);
        w->tmp_path = NULL; /* nothing created yet: abort must not unlink */
        st_writer_abort(w);
        return armt_err_set(err, ARMT_STATUS_OUT_OF_HOST_MEMORY, "%s: out of memory", path);
    }
    memcpy(w->tmp_path, path, n);
    memcpy(w->tmp_path + n, ".tmp", 5);
    w->f = fopen(w->tmp_path, "wb");
    if (!w->f) {
        int e = errno;
        free(w->tmp_path);
        w->tmp_path = NULL;
        st_writer_abort(w);
        return armt_err_set(err, ARMT_STATUS_IO_ERROR, "%s.tmp: cannot create: %s", path, strerror(e));
    }
    *out = w;
    return ARMT_OK;
}

armt_status st_writer_add(st_writer *w, const char *name, int ndim, const uint64_t *shape, armt_err *err) {
    return st_writer_add_typed(w, name, ST_F32, ndim, shape, err);
}

armt_status st_writer_add_typed(st_writer *w, const char *name, st_dtype dtype, int ndim,
                                const uint64_t *shape, armt_err *err) {
    ARMT_RETURN_IF(!w || !name || (ndim > 0 && !shape), ARMT_STATUS_INVALID_ARGUMENT,
                   "st_writer_add: NULL argument");
    ARMT_RETURN_IF(dtype != ST_F32 && dtype != ST_I32, ARMT_STATUS_INVALID_ARGUMENT,
                   "%s: tensor '%s': the writer stores F32 and I32 only", w->path, name);
    ARMT_RETURN_IF(w->header_done, ARMT_STATUS_INVALID_ARGUMENT,
                   "%s: tensor '%s' declared after data was written", w->path, name);
    ARMT_RETURN_IF(ndim < 0 || ndim > ST_MAX_DIMS, ARMT_STATUS_INVALID_ARGUMENT,
                   "%s: tensor '%s': rank %d not in 0..%d", w->path, name, ndim, ST_MAX_DIMS);
    ARMT_RETURN_IF(strcmp(name, "__metadata__") == 0 || name[0] == '\0', ARMT_STATUS_INVALID_ARGUMENT,
                   "%s: '%s' cannot be a tensor name", w->path, name);
    ARMT_RETURN_IF(json_object_get(w->tensors, name) != NULL, ARMT_STATUS_INVALID_ARGUMENT,
                   "%s: tensor '%s' declared twice", w->path, name);

    uint64_t numel = 1, nbytes, end;
    for (int i = 0; i < ndim; i++) {
        ARMT_RETURN_IF(shape[i] > (uint64_t)INT64_MAX || !st_mul_u64(numel, shape[i], &numel),
                       ARMT_STATUS_INVALID_ARGUMENT, "%s: tensor '%s': size overflows", w->path, name);
    }
    ARMT_RETURN_IF(!st_mul_u64(numel, 4, &nbytes) || !st_add_u64(w->total_bytes, nbytes, &end) ||
                       end > (uint64_t)INT64_MAX,
                   ARMT_STATUS_INVALID_ARGUMENT, "%s: tensor '%s': size overflows", w->path, name);

    if (w->n == w->cap) {
        size_t cap = w->cap ? 2 * w->cap : 32;
        char **nn = realloc(w->names, cap * sizeof *nn);
        if (nn) w->names = nn;
        uint64_t *ne = nn ? realloc(w->numel, cap * sizeof *ne) : NULL;
        if (ne) w->numel = ne;
        st_dtype *nd = ne ? realloc(w->dtype, cap * sizeof *nd) : NULL;
        if (nd) w->dtype = nd;
        ARMT_RETURN_IF(!nd, ARMT_STATUS_OUT_OF_HOST_MEMORY, "%s: out of memory", w->path);
        w->cap = cap;
    }

    /* {"dtype":"F32" or "I32","shape":[...],"data_offsets":[begin,end]} */
    json_t *entry = json_object(), *js = json_array(), *jo = json_array();
    int bad = !entry || !js || !jo;
    for (int i = 0; i < ndim && !bad; i++)
        bad |= json_array_append_new(js, json_integer((json_int_t)shape[i]));
    bad = bad || json_array_append_new(jo, json_integer((json_int_t)w->total_bytes)) ||
          json_array_append_new(jo, json_integer((json_int_t)end)) ||
          json_object_set_new(entry, "dtype", json_string(st_dtype_name(dtype)));
    /* from here entry owns js and jo */
    if (!bad) {
        bad = json_object_set_new(entry, "shape", js);
        js = NULL;
        bad = json_object_set_new(entry, "data_offsets", jo) || bad;
        jo = NULL;
    }
    char *copy = bad ? NULL : armt_strndup_z(name);
    if (bad || !copy) {
        json_decref(js);
        json_decref(jo);
        json_decref(entry);
        return armt_err_set(err, ARMT_STATUS_OUT_OF_HOST_MEMORY, "%s: out of memory", w->path);
    }
    if (json_object_set_new(w->tensors, name, entry) != 0) { /* consumes entry even on failure */
        free(copy);
        return armt_err_set(err, ARMT_STATUS_INVALID_ARGUMENT,
                            "%s: cannot add tensor '%s' (not UTF-8, or out of memory)", w->path, name);
    }
    w->names[w->n] = copy;
    w->numel[w->n] = numel;
    w->dtype[w->n] = dtype;
    w->n++;
    w->total_bytes = end;
    return ARMT_OK;
}

armt_status st_writer_meta(st_writer *w, const char *key, const char *value, armt_err *err) {
    ARMT_RETURN_IF(!w || !key || !value, ARMT_STATUS_INVALID_ARGUMENT, "st_writer_meta: NULL argument");
    ARMT_RETURN_IF(w->header_done, ARMT_STATUS_INVALID_ARGUMENT,
                   "%s: metadata '%s' set after data was written", w->path, key);
    json_t *s = json_string(value);
    ARMT_RETURN_IF(!s, ARMT_STATUS_INVALID_ARGUMENT, "%s: metadata '%s' is not valid UTF-8", w->path, key);
    ARMT_RETURN_IF(json_object_set_new(w->meta, key, s) != 0, ARMT_STATUS_OUT_OF_HOST_MEMORY,
                   "%s: out of memory", w->path);
    return ARMT_OK;
}

/* Writes the length and the header, padded with spaces so the data section starts 8-byte aligned (what
 * the reference writer does; readers that map the file can then use the floats in place). */
static armt_status write_header(st_writer *w, armt_err *err) {
    json_t *root = json_object();
    ARMT_RETURN_IF(!root, ARMT_STATUS_OUT_OF_HOST_MEMORY, "%s: out of memory", w->path);
    int bad = json_object_size(w->meta) > 0 && json_object_set(root, "__metadata__", w->meta) != 0;
    bad = bad || json_object_update(root, w->tensors) != 0; /* keeps declaration order */
    char *text = bad ? NULL : json_dumps(root, JSON_COMPACT);
    json_decref(root);
    ARMT_RETURN_IF(!text, ARMT_STATUS_OUT_OF_HOST_MEMORY, "%s: out of memory", w->path);

    size_t len = strlen(text), padded = (len + 7) & ~(size_t)7;
    unsigned char lenbuf[8];
    for (int i = 0; i < 8; i++)
        lenbuf[i] = (unsigned char)((uint64_t)padded >> (8 * i));
    int ok = fwrite(lenbuf, 1, 8, w->f) == 8 && fwrite(text, 1, len, w->f) == len;
    for (size_t i = len; i < padded && ok; i++)
        ok = fputc(' ', w->f) != EOF;
    free(text);
    ARMT_RETURN_IF(!ok, ARMT_STATUS_IO_ERROR, "%s.tmp: write failed: %s", w->path, strerror(errno));
    w->header_done = 1;
    return ARMT_OK;
}

/* Skips over declared tensors that are complete (including empty ones). */
static void advance(st_writer *w) {
    while (w->cur < w->n && w->cur_done == w->numel[w->cur]) {
        w->cur++;
        w->cur_done = 0;
    }
}

/* Appends count 4-byte elements of the given dtype (host order; written little-endian). */
static armt_status write_elems(st_writer *w, const void *elems, st_dtype dtype, uint64_t count,
                               armt_err *err) {
    ARMT_RETURN_IF(!w || (count > 0 && !elems), ARMT_STATUS_INVALID_ARGUMENT,
                   "st_writer_write: NULL argument");
    const unsigned char *data = elems;
    if (!w->header_done) ARMT_TRY(write_header(w, err));
    /* Fill tensors one after another; a chunk may end inside a tensor or span several. The counting is
     * what lets st_writer_close prove that the declared shapes and the data agree. */
    while (count > 0) {
        advance(w);
        ARMT_RETURN_IF(w->cur >= w->n, ARMT_STATUS_INVALID_ARGUMENT,
                       "%s: %llu more elements written than the declared tensors hold", w->path,
                       (unsigned long long)count);
        ARMT_RETURN_IF(w->dtype[w->cur] != dtype, ARMT_STATUS_INVALID_ARGUMENT,
                       "%s: tensor '%s' is %s, written as %s", w->path, w->names[w->cur],
                       st_dtype_name(w->dtype[w->cur]), st_dtype_name(dtype));
        uint64_t room = w->numel[w->cur] - w->cur_done;
        uint64_t n = count < room ? count : room;
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
        for (uint64_t i = 0; i < n; i++) {
            uint32_t u;
            memcpy(&u, data + 4 * i, 4);
            u = __builtin_bswap32(u);
            ARMT_RETURN_IF(fwrite(&u, 4, 1, w->f) != 1, ARMT_STATUS_IO_ERROR, "%s.tmp: write failed: %s",
                           w->path, strerror(errno));
        }
#else
        ARMT_RETURN_IF(fwrite(data, 4, (size_t)n, w->f) != (size_t)n, ARMT_STATUS_IO_ERROR,
                       "%s.tmp: write failed (tensor '%s'): %s", w->path, w->names[w->cur], strerror(errno));
#endif
        data += 4 * n;
        count -= n;
        w->cur_done += n;
    }
    return ARMT_OK;
}

armt_status st_writer_write(st_writer *w, const float *data, uint64_t count, armt_err *err) {
    return write_elems(w, data, ST_F32, count, err);
}

armt_status st_writer_write_i32(st_writer *w, const int32_t *data, uint64_t count, armt_err *err) {
    return write_elems(w, data, ST_I32, count, err);
}

armt_status st_writer_close(st_writer *w, armt_err *err) {
    ARMT_RETURN_IF(!w, ARMT_STATUS_INVALID_ARGUMENT, "st_writer_close: NULL writer");
    armt_status st = ARMT_OK;
    if (!w->header_done) st = write_header(w, err); /* only empty tensors, or none */
    if (st == ARMT_OK) {
        advance(w);
        if (w->cur < w->n)
            st = armt_err_set(err, ARMT_STATUS_INVALID_ARGUMENT,
                              "%s: tensor '%s' incomplete: %llu of %llu elements written", w->path,
                              w->names[w->cur], (unsigned long long)w->cur_done,
                              (unsigned long long)w->numel[w->cur]);
    }
    if (st == ARMT_OK) {
        /* Data must be on disk before the rename makes the file visible. Keep the first errno. */
        int e = 0;
        if (fflush(w->f) != 0 || fsync(fileno(w->f)) != 0) e = errno;
        if (fclose(w->f) != 0 && e == 0) e = errno;
        w->f = NULL;
        if (e) st = armt_err_set(err, ARMT_STATUS_IO_ERROR, "%s.tmp: write failed: %s", w->path, strerror(e));
    }
    if (st == ARMT_OK && rename(w->tmp_path, w->path) != 0)
        st = armt_err_set(err, ARMT_STATUS_IO_ERROR, "%s: cannot rename %s into place: %s", w->path,
                          w->tmp_path, strerror(errno));
    if (st == ARMT_OK) {
        free(w->tmp_path); /* renamed: nothing to unlink */
        w->tmp_path = NULL;
    }
    st_writer_abort(w);
    return st;
}
