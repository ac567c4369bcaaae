/*
 * safetensors.c - safetensors reader (single file or sharded index) and F32 writer. See safetensors.h.
 *
 * Validation happens entirely in st_open: once it returns ARMT_OK, every tensor's byte range is known to
 * lie inside its file and to match its dtype and shape, so st_read_f32 only has to range-check the
 * caller's element window.
 */
#include "config.h"

/* pread, fsync, fileno, O_CLOEXEC: POSIX 2008. The autotools build defines _GNU_SOURCE in config.h. */
#if !defined(_GNU_SOURCE) && !defined(_POSIX_C_SOURCE)
#define _POSIX_C_SOURCE 200809L
#endif

#include "io/safetensors.h"
#include "common/util.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* ===================================================================================================== */
/* Small helpers                                                                                         */
/* ===================================================================================================== */

/* a * b into *out; returns 0 on overflow. Every size derived from a file goes through these two: a header
 * may claim any shape, and a wrapped product would pass the later range checks with a tiny value. */
static int mul_u64(uint64_t a, uint64_t b, uint64_t *out) { return !__builtin_mul_overflow(a, b, out); }
static int add_u64(uint64_t a, uint64_t b, uint64_t *out) { return !__builtin_add_overflow(a, b, out); }

/* The length prefix is little-endian whatever the host is. */
static uint64_t le64(const unsigned char *p) {
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--)
        v = (v << 8) | p[i];
    return v;
}

static char *xstrdup(const char *s) {
    size_t n = strlen(s) + 1;
    char *d = malloc(n);
    if (d) memcpy(d, s, n);
    return d;
}

static int ends_with(const char *s, const char *suffix) {
    size_t a = strlen(s), b = strlen(suffix);
    return a >= b && strcmp(s + a - b, suffix) == 0;
}

/* Reads exactly n bytes at offset, retrying on EINTR and short reads. A premature end of file is an error
 * (the file shrank after validation, or a length lied). */
static armt_status pread_full(int fd, void *buf, size_t n, uint64_t offset, const char *path, armt_err *err) {
    unsigned char *p = buf;
    while (n > 0) {
        ARMT_RETURN_IF(offset > (uint64_t)INT64_MAX, ARMT_STATUS_IO_ERROR, "%s: read offset too large", path);
        ssize_t r = pread(fd, p, n, (off_t)offset);
        if (r < 0 && errno == EINTR) continue;
        ARMT_RETURN_IF(r < 0, ARMT_STATUS_IO_ERROR, "%s: read failed at offset %llu: %s", path,
                       (unsigned long long)offset, strerror(errno));
        ARMT_RETURN_IF(r == 0, ARMT_STATUS_IO_ERROR, "%s: unexpected end of file at offset %llu", path,
                       (unsigned long long)offset);
        p += r;
        n -= (size_t)r;
        offset += (uint64_t)r;
    }
    return ARMT_OK;
}

/* One file of the checkpoint. The descriptor stays open so that reads later (perhaps much later, during
 * upload) need no reopen and see the same file even if the path is replaced meanwhile. */
typedef struct st_shard {
    char *path;
    int fd; /* open for the archive's lifetime (-1 when not yet opened) */
    uint64_t file_size;
} st_shard;

/* Everything is owned by the archive; st_close frees it whatever state a failed st_open left it in. */
struct st_archive {
    st_shard *shards;
    int n_shards;
    st_tensor *tensors; /* n_tensors entries, capacity cap_tensors */
    size_t n_tensors;
    size_t cap_tensors;
    size_t *slots; /* name hash table: tensor index + 1, 0 = empty; slot_mask + 1 entries */
    size_t slot_mask;
    json_t *metadata; /* "__metadata__" object of the first shard, or NULL */
};

static uint64_t hash_str(const char *s);

size_t st_count(const st_archive *a) { return a ? a->n_tensors : 0; }

const st_tensor *st_get(const st_archive *a, size_t i) {
    return (a && i < a->n_tensors) ? &a->tensors[i] : NULL;
}

const st_tensor *st_find(const st_archive *a, const char *name) {
    if (!a || !name || !a->slots) return NULL;
    for (size_t h = (size_t)hash_str(name) & a->slot_mask; a->slots[h]; h = (h + 1) & a->slot_mask) {
        const st_tensor *t = &a->tensors[a->slots[h] - 1];
        if (strcmp(t->name, name) == 0) return t;
    }
    return NULL;
}

const char *st_metadata(const st_archive *a, const char *key) {
    if (!a || !a->metadata || !key) return NULL;
    return json_string_value(json_object_get(a->metadata, key)); /* NULL if absent (values are strings) */
}

int st_shard_count(const st_archive *a) { return a ? a->n_shards : 0; }

const char *st_shard_path(const st_archive *a, int shard) {
    return (a && shard >= 0 && shard < a->n_shards) ? a->shards[shard].path : NULL;
}

void st_close(st_archive *a) {
    if (!a) return;
    for (int i = 0; i < a->n_shards; i++) {
        if (a->shards[i].fd >= 0) close(a->shards[i].fd);
        free(a->shards[i].path);
    }
    free(a->shards);
    for (size_t i = 0; i < a->n_tensors; i++)
        free(a->tensors[i].name);
    free(a->tensors);
    free(a->slots);
    json_decref(a->metadata);
    free(a);
}

/* Appends a zeroed tensor slot and returns it (NULL when out of memory). The array doubles, so a
 * 300-tensor header costs a handful of reallocations. */
static st_tensor *push_tensor(st_archive *a) {
    if (a->n_tensors == a->cap_tensors) {
        size_t cap = a->cap_tensors ? 2 * a->cap_tensors : 64;
        st_tensor *t = realloc(a->tensors, cap * sizeof *t);
        if (!t) return NULL;
        a->tensors = t;
        a->cap_tensors = cap;
    }
    st_tensor *t = &a->tensors[a->n_tensors++];
    memset(t, 0, sizeof *t);
    return t;
}

/* Reads a JSON integer that must be >= 0. Reals such as 2.0 are refused: the format writes integers, and
 * accepting reals would invite rounding questions for offsets above 2^53. */
static int json_u64(const json_t *v, uint64_t *out) {
    if (!json_is_integer(v)) return 0;
    json_int_t i = json_integer_value(v);
    if (i < 0) return 0;
    *out = (uint64_t)i;
    return 1;
}

/* Parses one header entry into a new tensor of shard si. data_len: size of that shard's data section,
 * data_start: its absolute offset. */
static armt_status parse_tensor(st_archive *a, int si, const char *name, json_t *entry, uint64_t data_start,
                                uint64_t data_len, armt_err *err) {
    const char *path = a->shards[si].path;
    ARMT_RETURN_IF(!json_is_object(entry), ARMT_STATUS_BAD_FILE,
                   "%s: tensor '%s': entry is not a JSON object", path, name);

    /* dtype: an unknown one is UNSUPPORTED rather than BAD_FILE, since the file may be perfectly valid
     * (I64 position ids, F8 weights) for a reader that supports more types. */
    json_t *jd = json_object_get(entry, "dtype");
    ARMT_RETURN_IF(!json_is_string(jd), ARMT_STATUS_BAD_FILE,
                   "%s: tensor '%s': missing or non-string \"dtype\"", path, name);
    const char *dname = json_string_value(jd);
    st_dtype dt = ST_F32;
    ARMT_RETURN_IF(st_dtype_parse(dname, &dt) != 0 || dt == ST_I32, ARMT_STATUS_UNSUPPORTED,
                   "%s: tensor '%s': unsupported dtype %s (supported: F32, F16, BF16)", path, name, dname);

    /* shape: a list of non-negative integers; numel and nbytes overflow-checked */
    json_t *js = json_object_get(entry, "shape");
    ARMT_RETURN_IF(!json_is_array(js), ARMT_STATUS_BAD_FILE, "%s: tensor '%s': \"shape\" is not a list", path,
                   name);
    size_t ndim = json_array_size(js);
    ARMT_RETURN_IF(ndim > ST_MAX_DIMS, ARMT_STATUS_BAD_FILE, "%s: tensor '%s': %zu dimensions (at most %d)",
                   path, name, ndim, ST_MAX_DIMS);
    uint64_t shape[ST_MAX_DIMS] = {0};
    uint64_t numel = 1;
    for (size_t i = 0; i < ndim; i++) {
        ARMT_RETURN_IF(!json_u64(json_array_get(js, i), &shape[i]), ARMT_STATUS_BAD_FILE,
                       "%s: tensor '%s': shape[%zu] is not a non-negative integer", path, name, i);
        ARMT_RETURN_IF(!mul_u64(numel, shape[i], &numel), ARMT_STATUS_BAD_FILE,
                       "%s: tensor '%s': element count overflows", path, name);
    }
    uint64_t nbytes;
    ARMT_RETURN_IF(!mul_u64(numel, st_dtype_size(dt), &nbytes), ARMT_STATUS_BAD_FILE,
                   "%s: tensor '%s': byte size overflows", path, name);

    /* data_offsets: [begin, end) inside the data section, exactly nbytes long */
    json_t *jo = json_object_get(entry, "data_offsets");
    uint64_t begin, end;
    ARMT_RETURN_IF(!json_is_array(jo) || json_array_size(jo) != 2 ||
                       !json_u64(json_array_get(jo, 0), &begin) || !json_u64(json_array_get(jo, 1), &end),
                   ARMT_STATUS_BAD_FILE,
                   "%s: tensor '%s': \"data_offsets\" is not a list of 2 non-negative integers", path, name);
    ARMT_RETURN_IF(end < begin, ARMT_STATUS_BAD_FILE, "%s: tensor '%s': data_offsets reversed (%llu > %llu)",
                   path, name, (unsigned long long)begin, (unsigned long long)end);
    ARMT_RETURN_IF(end > data_len, ARMT_STATUS_BAD_FILE,
                   "%s: tensor '%s': data_offsets end %llu outside the data section (%llu bytes)", path, name,
                   (unsigned long long)end, (unsigned long long)data_len);
    ARMT_RETURN_IF(end - begin != nbytes, ARMT_STATUS_BAD_FILE,
                   "%s: tensor '%s': data_offsets span %llu bytes but dtype %s x %llu elements needs %llu",
                   path, name, (unsigned long long)(end - begin), dname, (unsigned long long)numel,
                   (unsigned long long)nbytes);

    /* All checks passed: record it. The name is copied because the JSON tree is freed after parsing. */
    st_tensor *t = push_tensor(a);
    ARMT_RETURN_IF(!t, ARMT_STATUS_OUT_OF_HOST_MEMORY, "%s: out of memory for tensor list", path);
    t->name = xstrdup(name);
    if (!t->name) {
        a->n_tensors--; /* slot holds nothing to free */
        return armt_err_set(err, ARMT_STATUS_OUT_OF_HOST_MEMORY, "%s: out of memory", path);
    }
    t->dtype = dt;
    t->ndim = (int)ndim;
    memcpy(t->shape, shape, sizeof shape);
    t->numel = numel;
    t->nbytes = nbytes;
    t->data_offset = data_start + begin; /* cannot overflow: data_start + data_len == file size */
    t->shard = si;
    return ARMT_OK;
}

/* Order for the tiling check: by begin, then by end (empty tensors first at a shared offset). */
static int cmp_by_offset(const void *pa, const void *pb) {
    const st_tensor *a = *(st_tensor *const *)pa, *b = *(st_tensor *const *)pb;
    if (a->data_offset != b->data_offset) return a->data_offset < b->data_offset ? -1 : 1;
    if (a->nbytes != b->nbytes) return a->nbytes < b->nbytes ? -1 : 1;
    return 0;
}

/* The tensors [from, n_tensors) of one shard must cover [data_start, data_start + data_len) exactly.
 * Walking them in offset order with a cursor finds both faults: a tensor starting after the cursor leaves
 * a hole, one starting before it overlaps its predecessor. Overlaps would let two tensors alias the same
 * bytes; holes usually mean a truncated or hand-edited header. */
static armt_status check_tiling(st_archive *a, size_t from, const char *path, uint64_t data_start,
                                uint64_t data_len, armt_err *err) {
    size_t n = a->n_tensors - from; /* > 0 */
    /* Sort pointers, not the tensors: the archive keeps header order. */
    st_tensor **order = malloc(n * sizeof *order);
    ARMT_RETURN_IF(!order, ARMT_STATUS_OUT_OF_HOST_MEMORY, "%s: out of memory", path);
    for (size_t i = 0; i < n; i++)
        order[i] = &a->tensors[from + i];
    qsort(order, n, sizeof *order, cmp_by_offset);

    armt_status st = ARMT_OK;
    uint64_t cursor = data_start; /* end of the bytes covered so far */
    const char *prev = NULL;
    for (size_t i = 0; i < n && st == ARMT_OK; i++) {
        const st_tensor *t = order[i];
        if (t->data_offset > cursor)
            st = armt_err_set(
                err, ARMT_STATUS_BAD_FILE,
                "%s: hole in the data section: bytes [%llu, %llu) before tensor '%s' belong to no tensor",
                path, (unsigned long long)(cursor - data_start),
                (unsigned long long)(t->data_offset - data_start), t->name);
        else if (t->data_offset < cursor)
            st = armt_err_set(err, ARMT_STATUS_BAD_FILE,
                              "%s: tensor '%s' overlaps tensor '%s' in the data section", path, t->name,
                              prev ? prev : "?");
        cursor = t->data_offset + t->nbytes;
        prev = t->name;
    }
    if (st == ARMT_OK && cursor != data_start + data_len)
        st = armt_err_set(
            err, ARMT_STATUS_BAD_FILE,
            "%s: hole in the data section: %llu trailing bytes after tensor '%s' belong to no tensor", path,
            (unsigned long long)(data_start + data_len - cursor), prev);
    free(order);
    return st;
}

/* Parses a JSON text with duplicate keys rejected; *out owns the result. what: "header" or "index".
 * Without JSON_REJECT_DUPLICATES Jansson keeps the last value silently, and two readers of the same file
 * could then disagree on which tensor a name means. */
static armt_status parse_json(const char *text, size_t len, const char *path, const char *what, json_t **out,
                              armt_err *err) {
    json_error_t je;
    *out = json_loadb(text, len, JSON_REJECT_DUPLICATES, &je);
    if (*out) return ARMT_OK;
#if JANSSON_VERSION_HEX >= 0x020b00
    int dup = json_error_code(&je) == json_error_duplicate_key;
#else
    int dup = strstr(je.text, "duplicate") != NULL;
#endif
    if (dup)
        return armt_err_set(err, ARMT_STATUS_BAD_FILE, "%s: duplicate key in JSON %s: %s", path, what,
                            je.text);
    return armt_err_set(err, ARMT_STATUS_BAD_FILE, "%s: %s is not valid JSON: %s (line %d, column %d)", path,
                        what, je.text, je.line, je.column);
}

/* Opens shard si (path already set), validates its header and appends its tensors. keep_meta: store the
 * "__metadata__" object in the archive. */
static armt_status load_shard(st_archive *a, int si, int keep_meta, armt_err *err) {
    st_shard *sh = &a->shards[si];
    const char *path = sh->path;

    /* O_NONBLOCK: opening a FIFO (a shard name in an index may point anywhere) would otherwise wait for a
     * writer forever; it then fails the S_ISREG check below. No effect on reads of a regular file. */
    sh->fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
    ARMT_RETURN_IF(sh->fd < 0, ARMT_STATUS_IO_ERROR, "%s: cannot open: %s", path, strerror(errno));
    struct stat sb;
    ARMT_RETURN_IF(fstat(sh->fd, &sb) != 0, ARMT_STATUS_IO_ERROR, "%s: cannot stat: %s", path,
                   strerror(errno));
    ARMT_RETURN_IF(!S_ISREG(sb.st_mode), ARMT_STATUS_IO_ERROR, "%s: not a regular file", path);
    sh->file_size = (uint64_t)sb.st_size;

    /* 8-byte header length, then the header: both must lie inside the file. The 100 MB cap bounds the
     * allocation below before the length is trusted any further. */
    ARMT_RETURN_IF(sh->file_size < 8, ARMT_STATUS_BAD_FILE,
                   "%s: truncated file (%llu bytes; a safetensors file has at least an 8-byte header length)",
                   path, (unsigned long long)sh->file_size);
    unsigned char lenbuf[8];
    ARMT_TRY(pread_full(sh->fd, lenbuf, 8, 0, path, err));
    uint64_t hlen = le64(lenbuf);
    ARMT_RETURN_IF(hlen == 0, ARMT_STATUS_BAD_FILE, "%s: header length is 0", path);
    ARMT_RETURN_IF(hlen > ST_MAX_HEADER_BYTES, ARMT_STATUS_BAD_FILE,
                   "%s: header length %llu exceeds the 100 MB limit", path, (unsigned long long)hlen);
    ARMT_RETURN_IF(hlen > sh->file_size - 8, ARMT_STATUS_BAD_FILE,
                   "%s: header length %llu extends beyond the end of the file (%llu bytes)", path,
                   (unsigned long long)hlen, (unsigned long long)sh->file_size);

    char *text = malloc((size_t)hlen);
    ARMT_RETURN_IF(!text, ARMT_STATUS_OUT_OF_HOST_MEMORY, "%s: out of memory for a %llu-byte header", path,
                   (unsigned long long)hlen);
    armt_status st = pread_full(sh->fd, text, (size_t)hlen, 8, path, err);
    json_t *root = NULL;
    if (st == ARMT_OK) st = parse_json(text, (size_t)hlen, path, "header", &root, err);
    free(text);
    ARMT_TRY(st);
    if (!json_is_object(root)) {
        json_decref(root);
        return armt_err_set(err, ARMT_STATUS_BAD_FILE, "%s: header is not a JSON object", path);
    }

    /* The data section is everything after the header; offsets in the header are relative to it. */
    uint64_t data_start = 8 + hlen, data_len = sh->file_size - data_start;
    size_t first = a->n_tensors;
    const char *key;
    json_t *val;
    /* Jansson iterates in file order, so tensors keep their header order. */
    json_object_foreach(root, key, val) {
        if (strcmp(key, "__metadata__") == 0) {
            /* a map of strings to strings */
            if (!json_is_object(val)) {
                st = armt_err_set(err, ARMT_STATUS_BAD_FILE, "%s: \"__metadata__\" is not a JSON object",
                                  path);
                break;
            }
            const char *mk;
            json_t *mv;
            json_object_foreach(val, mk, mv) {
                if (!json_is_string(mv)) {
                    st = armt_err_set(err, ARMT_STATUS_BAD_FILE,
                                      "%s: __metadata__ value of '%s' is not a string", path, mk);
                    break;
                }
            }
            if (st != ARMT_OK) break;
            if (keep_meta) a->metadata = json_incref(val);
            continue;
        }
        st = parse_tensor(a, si, key, val, data_start, data_len, err);
        if (st != ARMT_OK) break;
    }
    json_decref(root);
    ARMT_TRY(st);

    /* A header with no tensors is legal only with an empty data section. */
    if (a->n_tensors == first) {
        ARMT_RETURN_IF(data_len != 0, ARMT_STATUS_BAD_FILE,
                       "%s: hole in the data section: %llu bytes but no tensors", path,
                       (unsigned long long)data_len);
        return ARMT_OK;
    }
    return check_tiling(a, first, path, data_start, data_len, err);
}

/* FNV-1a, 64 bit. */
static uint64_t hash_str(const char *s) {
    uint64_t h = 1469598103934665603ull;
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 1099511628211ull;
    return h;
}

/* Builds the name table (open addressing, linear probing, load <= 1/2) over all tensors. A name seen
 * twice can only come from two shards (duplicates inside one header are rejected by the JSON parser). */
static armt_status build_index(st_archive *a, armt_err *err) {
    size_t cap = 16;
    while (cap < 2 * a->n_tensors)
        cap *= 2;
    a->slots = calloc(cap, sizeof *a->slots);
    ARMT_RETURN_IF(!a->slots, ARMT_STATUS_OUT_OF_HOST_MEMORY, "out of memory for the tensor name table");
    a->slot_mask = cap - 1;
    for (size_t i = 0; i < a->n_tensors; i++) {
        const st_tensor *t = &a->tensors[i];
        size_t h = (size_t)hash_str(t->name) & a->slot_mask;
        while (a->slots[h]) {
            const st_tensor *o = &a->tensors[a->slots[h] - 1];
            ARMT_RETURN_IF(strcmp(o->name, t->name) == 0, ARMT_STATUS_BAD_FILE,
                           "tensor '%s' appears in both %s and %s", t->name, a->shards[o->shard].path,
                           a->shards[t->shard].path);
            h = (h + 1) & a->slot_mask;
        }
        a->slots[h] = i + 1;
    }
    return ARMT_OK;
}

static int cmp_str(const void *pa, const void *pb) {
    return strcmp(*(const char *const *)pa, *(const char *const *)pb);
}

/* Reads a whole small file (the index) into a malloc'ed buffer. The size comes from fstat on the open
 * descriptor, and pread_full fails if the file shrinks meanwhile. */
static armt_status slurp(const char *path, char **out, size_t *len, armt_err *err) {
    *out = NULL;
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK); /* a FIFO must not block (see load_shard) */
    ARMT_RETURN_IF(fd < 0, ARMT_STATUS_IO_ERROR, "%s: cannot open: %s", path, strerror(errno));
    struct stat sb;
    armt_status st = ARMT_OK;
    if (fstat(fd, &sb) != 0)
        st = armt_err_set(err, ARMT_STATUS_IO_ERROR, "%s: cannot stat: %s", path, strerror(errno));
    else if (!S_ISREG(sb.st_mode))
        st = armt_err_set(err, ARMT_STATUS_IO_ERROR, "%s: not a regular file", path);
    else if ((uint64_t)sb.st_size > ST_MAX_HEADER_BYTES)
        st = armt_err_set(err, ARMT_STATUS_BAD_FILE, "%s: index file larger than 100 MB", path);
    else if (!(*out = malloc((size_t)sb.st_size + 1)))
        st = armt_err_set(err, ARMT_STATUS_OUT_OF_HOST_MEMORY, "%s: out of memory", path);
    else
        st = pread_full(fd, *out, (size_t)sb.st_size, 0, path, err);
    close(fd);
    if (st != ARMT_OK) {
        free(*out);
        *out = NULL;
        return st;
    }
    *len = (size_t)sb.st_size;
    return ARMT_OK;
}

/* Sharded checkpoint: {"metadata": {...}, "weight_map": {"tensor": "shard file", ...}}. */
static armt_status open_index(st_archive *a, const char *index_path, armt_err *err) {
    char *text = NULL, *dir = NULL;
    const char **names = NULL; /* unique shard file names, borrowed from root */
    json_t *root = NULL;
    size_t len = 0;
    armt_status st;

    ARMT_TRY_GOTO(slurp(index_path, &text, &len, err), done);
    ARMT_TRY_GOTO(parse_json(text, len, index_path, "index", &root, err), done);
    json_t *wm = json_is_object(root) ? json_object_get(root, "weight_map") : NULL;
    if (!json_is_object(wm) || json_object_size(wm) == 0) {
        st = armt_err_set(err, ARMT_STATUS_BAD_FILE, "%s: index has no non-empty \"weight_map\" object",
                          index_path);
        goto done;
    }

    /* Unique shard names, sorted: shard order does not depend on JSON key order. */
    size_t n_entries = json_object_size(wm), n_names = 0;
    names = malloc(n_entries * sizeof *names);
    if (!names) {
        st = armt_err_set(err, ARMT_STATUS_OUT_OF_HOST_MEMORY, "%s: out of memory", index_path);
        goto done;
    }
    const char *key;
    json_t *val;
    json_object_foreach(wm, key, val) {
        if (!json_is_string(val) || json_string_value(val)[0] == '\0') {
            st = armt_err_set(err, ARMT_STATUS_BAD_FILE,
                              "%s: weight_map entry of tensor '%s' is not a file name", index_path, key);
            goto done;
        }
        /* shards are plain file names next to the index: a path would let an index read any file */
        const char *v = json_string_value(val);
        if (strchr(v, '/') || strcmp(v, ".") == 0 || strcmp(v, "..") == 0) {
            st = armt_err_set(
                err, ARMT_STATUS_BAD_FILE,
                "%s: weight_map entry of tensor '%s' is '%s', not a plain file name next to the index",
                index_path, key, v);
            goto done;
        }
        names[n_names++] = v;
    }
    qsort(names, n_names, sizeof *names, cmp_str);
    size_t u = 0;
    for (size_t i = 0; i < n_names; i++)
        if (u == 0 || strcmp(names[u - 1], names[i]) != 0) names[u++] = names[i];
    n_names = u;
    if (n_names > INT_MAX) {
        st = armt_err_set(err, ARMT_STATUS_BAD_FILE, "%s: too many shards", index_path);
        goto done;
    }

    /* Open every shard; a.shards grows one by one so st_close frees exactly what was opened. */
    dir = armt_path_dirname(index_path);
    a->shards = calloc(n_names, sizeof *a->shards);
    if (!dir || !a->shards) {
        st = armt_err_set(err, ARMT_STATUS_OUT_OF_HOST_MEMORY, "%s: out of memory", index_path);
        goto done;
    }
    for (size_t i = 0; i < n_names; i++) {
        st_shard *sh = &a->shards[a->n_shards];
        sh->fd = -1;
        sh->path = armt_path_join(dir, names[i]);
        if (!sh->path) {
            st = armt_err_set(err, ARMT_STATUS_OUT_OF_HOST_MEMORY, "%s: out of memory", index_path);
            goto done;
        }
        a->n_shards++;
        /* A clearer message than the generic open failure: the index promises a file that is not there. */
        if (access(sh->path, F_OK) != 0) {
            st = armt_err_set(err, ARMT_STATUS_IO_ERROR, "%s: shard '%s' listed in the index is missing (%s)",
                              sh->path, names[i], index_path);
            goto done;
        }
        ARMT_TRY_GOTO(load_shard(a, (int)i, i == 0, err), done);
    }
    ARMT_TRY_GOTO(build_index(a, err), done);

    /* Every weight_map entry must be in the shard it names. Tensors present in a shard but absent from
     * the map are kept: transformers loads whole shards too, and the index is only a routing table. */
    json_object_foreach(wm, key, val) {
        const st_tensor *t = st_find(a, key);
        const char *want = json_string_value(val);
        if (!t) {
            st = armt_err_set(err, ARMT_STATUS_MISSING_TENSOR,
                              "%s: tensor '%s' listed in the index weight_map is absent from shard '%s'",
                              index_path, key, want);
            goto done;
        }
        if (strcmp(names[t->shard], want) != 0) {
            st = armt_err_set(err, ARMT_STATUS_MISSING_TENSOR,
                              "%s: tensor '%s' is mapped to shard '%s' but found in '%s'", index_path, key,
                              want, names[t->shard]);
            goto done;
        }
    }
    st = ARMT_OK;

done:
    free(names);
    json_decref(root);
    free(text);
    free(dir);
    return st;
}

static armt_status open_single(st_archive *a, const char *path, armt_err *err) {
    a->shards = calloc(1, sizeof *a->shards);
    ARMT_RETURN_IF(!a->shards, ARMT_STATUS_OUT_OF_HOST_MEMORY, "%s: out of memory", path);
    a->shards[0].fd = -1;
    a->shards[0].path = xstrdup(path);
    ARMT_RETURN_IF(!a->shards[0].path, ARMT_STATUS_OUT_OF_HOST_MEMORY, "%s: out of memory", path);
    a->n_shards = 1;
    ARMT_TRY(load_shard(a, 0, 1, err));
    return build_index(a, err);
}

armt_status st_open(const char *path, st_archive **out, armt_err *err) {
    ARMT_RETURN_IF(!path || !out, ARMT_STATUS_INVALID_ARGUMENT, "st_open: NULL argument");
    *out = NULL;
    struct stat sb;
    ARMT_RETURN_IF(stat(path, &sb) != 0, ARMT_STATUS_IO_ERROR, "%s: cannot open: %s", path, strerror(errno));

    st_archive *a = calloc(1, sizeof *a);
    ARMT_RETURN_IF(!a, ARMT_STATUS_OUT_OF_HOST_MEMORY, "%s: out of memory", path);
    armt_status st;
    char *file = NULL;
    if (S_ISDIR(sb.st_mode)) {
        /* A directory: prefer the single file, as transformers does. */
        file = armt_path_join(path, "model.safetensors");
        if (!file) {
            st = armt_err_set(err, ARMT_STATUS_OUT_OF_HOST_MEMORY, "%s: out of memory", path);
        } else if (access(file, F_OK) == 0) {
            st = open_single(a, file, err);
        } else {
            free(file);
            file = armt_path_join(path, "model.safetensors.index.json");
            if (!file)
                st = armt_err_set(err, ARMT_STATUS_OUT_OF_HOST_MEMORY, "%s: out of memory", path);
            else if (access(file, F_OK) == 0)
                st = open_index(a, file, err);
            else
                st = armt_err_set(
                    err, ARMT_STATUS_IO_ERROR,
                    "%s: directory holds neither model.safetensors nor model.safetensors.index.json", path);
        }
    } else if (ends_with(path, ".json")) {
        st = open_index(a, path, err);
    } else {
        st = open_single(a, path, err);
    }
    free(file);
    if (st != ARMT_OK) {
        st_close(a);
        return st;
    }
    *out = a;
    return ARMT_OK;
}

/* ===================================================================================================== */
/* Reading                                                                                               */
/* ===================================================================================================== */

armt_status st_read_f32(st_archive *a, const st_tensor *t, uint64_t first, uint64_t count, float *dst,
                        armt_err *err) {
    ARMT_RETURN_IF(!a || !t, ARMT_STATUS_INVALID_ARGUMENT, "st_read_f32: NULL argument");
    ARMT_RETURN_IF(t < a->tensors || t >= a->tensors + a->n_tensors, ARMT_STATUS_INVALID_ARGUMENT,
                   "st_read_f32: tensor '%s' does not belong to this archive", t->name);
    uint64_t last;
    ARMT_RETURN_IF(!add_u64(first, count, &last) || last > t->numel, ARMT_STATUS_INVALID_ARGUMENT,
                   "st_read_f32: tensor '%s': elements [%llu, +%llu) outside its %llu elements", t->name,
                   (unsigned long long)first, (unsigned long long)count, (unsigned long long)t->numel);
    if (count == 0) return ARMT_OK;
    ARMT_RETURN_IF(!dst, ARMT_STATUS_INVALID_ARGUMENT, "st_read_f32: NULL destination");

    const st_shard *sh = &a->shards[t->shard];
    size_t esize = st_dtype_size(t->dtype);
    /* first * esize <= numel * esize == nbytes, validated at open: no overflow. */
    uint64_t off = t->data_offset + first * esize;

    /* A tensor's data section offset is arbitrary (no alignment promise), so reads go through pread into
     * the caller's buffer instead of through a mapping that would need aligned loads. */
    if (t->dtype == ST_F32) {
        /* Straight into dst, then fix the byte order if the host is big-endian. */
        ARMT_RETURN_IF(count > SIZE_MAX / 4, ARMT_STATUS_INVALID_ARGUMENT, "st_read_f32: count too large");
        ARMT_TRY(pread_full(sh->fd, dst, (size_t)count * 4, off, sh->path, err));
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
        for (uint64_t i = 0; i < count; i++) {
            uint32_t u;
            memcpy(&u, &dst[i], 4);
            u = __builtin_bswap32(u);
            memcpy(&dst[i], &u, 4);
        }
#endif
        return ARMT_OK;
    }

    /* 16-bit types: through a bounded staging buffer (128 KB), so that reading a whole embedding matrix
     * does not need a second copy of it in host memory. */
    enum { CHUNK = 1 << 16 };
    size_t chunk = count < CHUNK ? (size_t)count : CHUNK;
    unsigned char *buf = malloc(chunk * 2);
    ARMT_RETURN_IF(!buf, ARMT_STATUS_OUT_OF_HOST_MEMORY, "st_read_f32: out of memory");
    uint64_t done = 0;
    while (done < count) {
        size_t n = (count - done) < chunk ? (size_t)(count - done) : chunk;
        armt_status st = pread_full(sh->fd, buf, n * 2, off + done * 2, sh->path, err);
        if (st != ARMT_OK) {
            free(buf);
            return st;
        }
        for (size_t i = 0; i < n; i++) {
            uint16_t h = (uint16_t)(buf[2 * i] | (buf[2 * i + 1] << 8)); /* little-endian */
            dst[done + i] = t->dtype == ST_F16 ? st_f16_to_f32(h) : st_bf16_to_f32(h);
        }
        done += n;
    }
    free(buf);
    return ARMT_OK;
}
