/*
 * pipeline_state.c - the pipeline's memory state in one file of armt_ctx_memory_save's format
 * (io/state_file.c): W_mem, z and the written flags of every stage's layers (armt_pipeline_memory_get /
 * _set: gathered on rank 0 under MPI), and with a sliding window every layer's window, each stage's
 * layers at their place in [n_layers, W, width].
 */
#include "config.h"

#include "common/util.h"
#include "compute/pipeline.h"
#include "io/armt_config.h"
#include "io/state_file.h"

#include <stdlib.h>
#include <string.h>

/* The whole model's state shape; the fingerprint: the stages' when they agree (random weights: the whole
 * model's), else a mix of them (a checkpoint's parts: this split's). */
static armt_state_shape whole_shape(const armt_pipeline *pp, uint64_t fingerprint) {
    const armt_config *c = &pp->cfg;
    armt_state_shape s = {(uint32_t)c->n_layers,
                          (uint32_t)armt_config_d_key(c),
                          (uint32_t)c->hidden_size,
                          fingerprint,
                          (uint32_t)c->variant,
                          (uint32_t)armt_config_mem_heads(c),
                          c->sliding_window ? (uint32_t)c->segment_size : 0,
                          c->sliding_window ? (uint32_t)(c->n_kv_heads * c->head_dim) : 0};
    return s;
}

#ifdef ARMT_HAVE_MPI
/* Per-stage byte counts and offsets of a per-layer array of `per` bytes a layer. */
static void layer_bytes(const armt_pipeline *pp, size_t per, size_t *count, size_t *disp) {
    for (int r = 0; r < pp->P; r++) {
        count[r] = (size_t)(pp->firsts[r + 1] - pp->firsts[r]) * per;
        disp[r] = (size_t)pp->firsts[r] * per;
    }
}
#endif

/* Every stage's model fingerprint, on rank 0 (fp[P]). */
static armt_status fingerprints(armt_pipeline *pp, uint64_t *fp) {
    for (int i = 0; i < pp->n_local; i++)
        fp[pp->stage[i].index] = armt_model_fingerprint(pp->stage[i].model);
#ifdef ARMT_HAVE_MPI
    if (pp->mpi) {
        size_t count[256], disp[256];
        if (pp->P > 256)
            return armt_err_set(&pp->err, ARMT_STATUS_UNSUPPORTED, "pipeline: more than 256 ranks");
        for (int r = 0; r < pp->P; r++)
            count[r] = sizeof *fp, disp[r] = (size_t)r * sizeof *fp;
        uint64_t mine = fp[pp->rank];
        return armt_pmpi_gather(pp, &mine, sizeof mine, fp, count, disp, &pp->err);
    }
#endif
    return ARMT_OK;
}

static uint64_t whole_fingerprint(const armt_pipeline *pp, const uint64_t *fp) {
    int same = 1;
    for (int r = 1; r < pp->P; r++)
        same = same && fp[r] == fp[0];
    if (same) return fp[0];
    uint64_t h = 0xcbf29ce484222325ULL;
    for (int r = 0; r < pp->P; r++)
        h = (h ^ fp[r]) * 0x100000001B3ULL;
    return h;
}

/* The window of every layer (k, v: [n_layers, W, width] on rank 0, or the whole model in one process) from
 * the stages (get = 1) or to them; len: the rows held. */
static armt_status windows(armt_pipeline *pp, int get, float *k, float *v, uint32_t *len) {
    const size_t per = (size_t)pp->cfg.segment_size * (size_t)pp->cfg.n_kv_heads * (size_t)pp->cfg.head_dim;
    if (pp->P > 256) return armt_err_set(&pp->err, ARMT_STATUS_UNSUPPORTED, "pipeline: more than 256 stages");
    armt_status st = ARMT_OK;
    float *mk = k,
          *mv = v; /* the local stages' layers: in place in one process, a buffer of the rank's under MPI */
    if (pp->mpi) {
        const size_t n = (size_t)pp->stage[0].count * per;
        mk = malloc(n * sizeof(float));
        mv = malloc(n * sizeof(float));
        if (!mk || !mv)
            st = armt_err_set(&pp->err, ARMT_STATUS_OUT_OF_HOST_MEMORY, "pipeline: out of host memory");
    }
    const int base = pp->mpi ? pp->stage[0].first : 0;
    uint32_t lens[256] = {0};
    st = armt_pipeline_agree(pp, st);
#ifdef ARMT_HAVE_MPI
    size_t count[256], disp[256], lc[256], ld[256];
    if (st == ARMT_OK && pp->mpi) {
        layer_bytes(pp, per * sizeof(float), count, disp);
        for (int r = 0; r < pp->P; r++)
            lc[r] = sizeof *lens, ld[r] = (size_t)r * sizeof *lens;
        if (!get) {
            for (int r = 0; r < pp->P; r++)
                lens[r] = *len;
            st = armt_pmpi_scatter(pp, k, count, disp, mk, count[pp->rank], &pp->err);
            if (st == ARMT_OK) st = armt_pmpi_scatter(pp, v, count, disp, mv, count[pp->rank], &pp->err);
            uint32_t got = 0;
            if (st == ARMT_OK) st = armt_pmpi_scatter(pp, lens, lc, ld, &got, sizeof got, &pp->err);
            lens[pp->rank] = got;
        }
    }
#endif
    for (int i = 0; i < pp->n_local && st == ARMT_OK; i++) {
        armt_stage *g = &pp->stage[i];
        const size_t off = (size_t)(g->first - base) * per;
        armt_state_window x = {mk + off, mv + off, get ? 0 : (pp->mpi ? lens[pp->rank] : *len)};
        st = get ? armt_ctx_window_get(g->ctx, &x) : armt_ctx_window_set(g->ctx, &x);
        if (st != ARMT_OK)
            st = armt_err_set(&pp->err, st, "pipeline stage %d: %s", g->index, armt_ctx_last_error(g->ctx));
        else if (get)
            lens[g->index] = x.len;
    }
    st = armt_pipeline_agree(pp, st);
#ifdef ARMT_HAVE_MPI
    if (st == ARMT_OK && pp->mpi && get) {
        st = armt_pmpi_gather(pp, mk, count[pp->rank], k, count, disp, &pp->err);
        if (st == ARMT_OK) st = armt_pmpi_gather(pp, mv, count[pp->rank], v, count, disp, &pp->err);
        uint32_t mine = lens[pp->rank];
        if (st == ARMT_OK) st = armt_pmpi_gather(pp, &mine, sizeof mine, lens, lc, ld, &pp->err);
    }
#endif
    if (get) *len = lens[0];
    if (pp->mpi) {
        free(mk);
        free(mv);
    }
    return st;
}

/* Host arrays of the whole state (rank 0's under MPI; the others' are small placeholders). */
typedef struct whole_state {
    float *w, *z, *k, *v;
    uint8_t *written;
    size_t nw, nz, nwin;
} whole_state;

static armt_status state_alloc(armt_pipeline *pp, whole_state *s) {
    const armt_config *c = &pp->cfg;
    const size_t L = (size_t)c->n_layers, dk = (size_t)armt_config_d_key(c);
    memset(s, 0, sizeof *s);
    s->nw = L * dk * (size_t)c->hidden_size / (size_t)armt_config_mem_heads(c);
    s->nz = L * dk;
    s->nwin =
        c->sliding_window ? L * (size_t)c->segment_size * (size_t)c->n_kv_heads * (size_t)c->head_dim : 0;
    s->w = malloc(s->nw * sizeof(float));
    s->z = malloc(s->nz * sizeof(float));
    s->written = malloc(L);
    s->k = malloc((s->nwin ? s->nwin : 1) * sizeof(float));
    s->v = malloc((s->nwin ? s->nwin : 1) * sizeof(float));
    if (!s->w || !s->z || !s->written || !s->k || !s->v)
        return armt_err_set(&pp->err, ARMT_STATUS_OUT_OF_HOST_MEMORY,
                            "pipeline: out of host memory for the state");
    return ARMT_OK;
}

static void state_free(whole_state *s) {
    free(s->w);
    free(s->z);
    free(s->written);
    free(s->k);
    free(s->v);
}

armt_status armt_pipeline_memory_save(armt_pipeline *pp, const char *path) {
    if (!pp)
        return armt_err_set(NULL, ARMT_STATUS_INVALID_ARGUMENT,
                            "armt_pipeline_memory_save: pipeline is NULL");
    armt_status st = pp->rank == 0 && !path ? armt_err_set(&pp->err, ARMT_STATUS_INVALID_ARGUMENT,
                                                           "armt_pipeline_memory_save: path is NULL")
                                            : ARMT_OK;
    whole_state s;
    if (st == ARMT_OK)
        st = state_alloc(pp, &s);
    else
        memset(&s, 0, sizeof s);
    uint64_t *fp = calloc((size_t)pp->P, sizeof *fp);
    if (st == ARMT_OK && !fp)
        st = armt_err_set(&pp->err, ARMT_STATUS_OUT_OF_HOST_MEMORY, "pipeline: out of host memory");
    st = armt_pipeline_agree(pp, st);
    if (st == ARMT_OK) st = armt_pipeline_memory_get(pp, s.w, s.z, s.written);
    armt_state_window x = {s.k, s.v, 0};
    if (st == ARMT_OK && s.nwin) st = windows(pp, 1, s.k, s.v, &x.len);
    if (st == ARMT_OK) st = armt_pipeline_agree(pp, fingerprints(pp, fp));
    if (st == ARMT_OK) {
        armt_status mine = ARMT_OK;
        if (pp->rank == 0) {
            const armt_state_shape shape = whole_shape(pp, whole_fingerprint(pp, fp));
            const size_t bytes = armt_state_file_bytes(&shape);
            unsigned char *buf = bytes ? malloc(bytes) : NULL;
            if (!buf) {
                mine = armt_err_set(&pp->err, ARMT_STATUS_OUT_OF_HOST_MEMORY,
                                    "armt_pipeline_memory_save: out of host memory");
            } else {
                armt_state_encode(&shape, s.w, s.z, s.written, s.nwin ? &x : NULL, buf);
                mine = armt_write_file_durable(path, "armt_pipeline_memory_save", buf, bytes, &pp->err);
            }
            free(buf);
        }
        st = armt_pipeline_agree(pp, mine);
    }
    free(fp);
    state_free(&s);
    return st;
}

armt_status armt_pipeline_memory_load(armt_pipeline *pp, const char *path) {
    if (!pp)
        return armt_err_set(NULL, ARMT_STATUS_INVALID_ARGUMENT,
                            "armt_pipeline_memory_load: pipeline is NULL");
    armt_status st = pp->rank == 0 && !path ? armt_err_set(&pp->err, ARMT_STATUS_INVALID_ARGUMENT,
                                                           "armt_pipeline_memory_load: path is NULL")
                                            : ARMT_OK;
    whole_state s;
    if (st == ARMT_OK)
        st = state_alloc(pp, &s);
    else
        memset(&s, 0, sizeof s);
    uint64_t *fp = calloc((size_t)pp->P, sizeof *fp);
    if (st == ARMT_OK && !fp)
        st = armt_err_set(&pp->err, ARMT_STATUS_OUT_OF_HOST_MEMORY, "pipeline: out of host memory");
    st = armt_pipeline_agree(pp, st);
    if (st == ARMT_OK) st = armt_pipeline_agree(pp, fingerprints(pp, fp));
    armt_state_window x = {s.k, s.v, 0};
    if (st == ARMT_OK) { /* rank 0 reads and checks the whole file before any state changes */
        armt_status mine = ARMT_OK;
        if (pp->rank == 0) {
            const armt_state_shape shape = whole_shape(pp, whole_fingerprint(pp, fp));
            const size_t bytes = armt_state_file_bytes(&shape);
            char *data = NULL;
            size_t len = 0;
            mine = armt_read_regular_file(path, "armt_pipeline_memory_load", bytes, &data, &len, &pp->err);
            if (mine == ARMT_OK)
                mine = armt_state_decode((const unsigned char *)data, len, &shape, path, s.w, s.z, s.written,
                                         s.nwin ? &x : NULL, &pp->err);
            free(data);
        }
        st = armt_pipeline_agree(pp, mine);
    }
    /* W_mem and z first (armt_ctx_memory_set empties the window), then the window */
    if (st == ARMT_OK) st = armt_pipeline_memory_set(pp, s.w, s.z, s.written);
    if (st == ARMT_OK && s.nwin) st = windows(pp, 0, s.k, s.v, &x.len);
    free(fp);
    state_free(&s);
    return st;
}
