/*
 * model.c - weights on the device: planning and allocating one buffer (or a few chunks) per role,
 * deterministic random models, loading checkpoints, saving, reading back, fingerprints.
 */
#include "config.h"

#include "io/armt_config.h"
#include "io/checkpoint.h"
#include "device/internal.h"
#include "io/safetensors.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Host staging size for uploads and read-backs (floats). */
#define STAGE_FLOATS ((size_t)1 << 22)

armt_model_params armt_model_default_params(void) {
    armt_model_params p;
    memset(&p, 0, sizeof p);
    p.correction = -1;
    p.seed = 0;
    p.wmv_std = 0.0f;
    return p;
}

const armt_config *armt_model_config(const armt_model *m) { return m ? &m->cfg : NULL; }
armt_precision armt_model_precision(const armt_model *m) { return m ? m->precision : ARMT_PRECISION_FP32; }
uint64_t armt_model_device_bytes(const armt_model *m) { return m ? m->bytes : 0; }
uint64_t armt_model_fingerprint(const armt_model *m) { return m ? m->fingerprint : 0; }
const char *armt_model_last_error(const armt_model *m) {
    return m ? armt_err_msg(&m->err) : armt_last_error();
}

const armt_weight *armt_model_lm_head(const armt_model *m) {
    return m->cfg.tie_word_embeddings ? &m->w[ARMT_ROLE_EMBED] : &m->w[ARMT_ROLE_LM_HEAD];
}

static int role_layers(const armt_model *m, armt_role r) {
    return armt_role_is_layer(r) ? m->cfg.n_layers : 1;
}

/* Roles stored in bf16 by a bf16 model: the GEMM weights and the embedding (also the tied lm_head). */
static int role_bf16(armt_precision prec, armt_role r) {
    if (prec != ARMT_PRECISION_BF16) return 0;
    switch (r) {
    case ARMT_ROLE_WQ:
    case ARMT_ROLE_WK:
    case ARMT_ROLE_WV:
    case ARMT_ROLE_WO:
    case ARMT_ROLE_WG:
    case ARMT_ROLE_WU:
    case ARMT_ROLE_WD:
    case ARMT_ROLE_WMQ:
    case ARMT_ROLE_WMK:
    case ARMT_ROLE_WMV:
    case ARMT_ROLE_EMBED:
    case ARMT_ROLE_LM_HEAD: return 1;
    default: return 0;
    }
}

static size_t elem_size(const armt_weight *w) { return w->bf16 ? 2 : 4; }

/* A role the model stores (LM_HEAD only when untied, SINK only with use_sink). */
static int role_stored(const armt_config *cfg, armt_role r) {
    return !(r == ARMT_ROLE_LM_HEAD && cfg->tie_word_embeddings) && !(r == ARMT_ROLE_SINK && !cfg->use_sink);
}

/* A role this model holds: stored, and (a pipeline stage's part) used by its stage. */
static int role_held(const armt_model *m, armt_role r) {
    return role_stored(&m->cfg, r) && !((m->skip_roles >> r) & 1u);
}

/* The global roles a part of layers [first, first + count) of n_layers does not hold (armt_model.skip_roles);
 * the whole model holds every one. */
static unsigned part_skip(const armt_config *whole, int first, int count) {
    if (count == 0 || (first == 0 && count == whole->n_layers)) return 0;
    const int head = first == 0, tail = first + count == whole->n_layers;
    unsigned skip = 0;
    if (!head && !(tail && whole->tie_word_embeddings)) skip |= 1u << ARMT_ROLE_EMBED;
    if (!head) skip |= (1u << ARMT_ROLE_MEM) | (1u << ARMT_ROLE_SINK);
    if (!tail) skip |= (1u << ARMT_ROLE_NORM_FINAL) | (1u << ARMT_ROLE_LM_HEAD);
    return skip;
}

/* ======================================================================================================= */
/* Fingerprint: FNV-1a-style 64-bit mixing of configuration and weight bytes                               */
/* ======================================================================================================= */

static uint64_t mix64(uint64_t h, uint64_t v) {
    h ^= v + 0x9E3779B97F4A7C15ULL + (h << 6) + (h >> 2);
    return h * 0x100000001B3ULL;
}

static uint64_t config_hash(const armt_config *c) {
    uint64_t h = 0xcbf29ce484222325ULL;
    const int ints[] = {c->hidden_size,         c->n_layers,       c->n_heads,
                        c->n_kv_heads,          c->head_dim,       c->intermediate_size,
                        c->vocab_size,          (int)c->rope_type, c->rope_original_max_pos,
                        c->tie_word_embeddings, c->num_mem_tokens, c->d_mem,
                        c->segment_size,        c->correction};
    for (size_t i = 0; i < sizeof ints / sizeof ints[0]; i++)
        h = mix64(h, (uint64_t)(uint32_t)ints[i]);
    const double dbl[] = {c->rms_norm_eps, c->rope_theta, c->rope_factor, c->rope_low_freq_factor,
                          c->rope_high_freq_factor};
    for (size_t i = 0; i < sizeof dbl / sizeof dbl[0]; i++) {
        uint64_t b;
        memcpy(&b, &dbl[i], sizeof b);
        h = mix64(h, b);
    }
    /* the variant fields, only when one is set: a paper model keeps the fingerprint it always had */
    const uint64_t var[] = {(uint64_t)c->variant, (uint64_t)c->mem_heads, (uint64_t)c->no_denom,
                            (uint64_t)c->gating,  (uint64_t)c->use_sink,  (uint64_t)c->sliding_window,
                            c->memory_off[0],     c->memory_off[1],       c->memory_off[2],
                            c->memory_off[3]};
    uint64_t any = 0;
    for (size_t i = 0; i < sizeof var / sizeof var[0]; i++)
        any |= var[i];
    if (any)
        for (size_t i = 0; i < sizeof var / sizeof var[0]; i++)
            h = mix64(h, var[i]);
    return h;
}

static uint64_t data_hash(uint64_t h, const float *x, size_t n) {
    const uint32_t *u = (const uint32_t *)(const void *)x;
    for (size_t i = 0; i < n; i++)
        h = (h ^ u[i]) * 0x100000001B3ULL;
    return h;
}

/* ======================================================================================================= */
/* Allocation                                                                                              */
/* ======================================================================================================= */

void armt_model_free(armt_model *m) {
    if (!m) return;
    for (int r = 0; r < ARMT_ROLE_COUNT; r++) {
        armt_weight *w = &m->w[r];
        for (int c = 0; c < w->n_chunks; c++)
            armt_buffer_release(m->rt, &w->chunks[c], w->chunk_bytes[c]);
        free(w->chunks);
        free(w->chunk_bytes);
    }
    armt_kernels_release(m->k);
    if (m->attention) clReleaseProgram(m->attention);
    armt_err_free(&m->err);
    free(m);
}

/* Plans the chunks of every role, checks the whole model against the device, then allocates. */
static armt_status allocate_weights(armt_model *m, armt_err *err) {
    armt_runtime *rt = m->rt;
    const armt_config *cfg = &m->cfg;
    size_t sizes[ARMT_ROLE_COUNT * 8];
    size_t ns = 0;
    for (int r = 0; r < ARMT_ROLE_COUNT; r++) {
        armt_weight *w = &m->w[r];
        if (!role_held(m, (armt_role)r)) continue;
        int layers = role_layers(m, (armt_role)r);
        w->per_layer = armt_role_numel(cfg, (armt_role)r);
        w->bf16 = role_bf16(m->precision, (armt_role)r);
        uint64_t layer_bytes;
        if (__builtin_mul_overflow(w->per_layer, (uint64_t)elem_size(w), &layer_bytes) ||
            __builtin_mul_overflow(layer_bytes, (uint64_t)layers, &(uint64_t){0}))
            return armt_err_set(err, ARMT_STATUS_OUT_OF_DEVICE_MEMORY, "model: %s is too large to address",
                                armt_role_name((armt_role)r));
        uint64_t max_alloc = rt->info.max_alloc_bytes ? rt->info.max_alloc_bytes : UINT64_MAX;
        /* $ARMT_WEIGHT_CHUNK_BYTES caps a per-layer weight buffer below the device's limit (tests the chunked
         * layout; ignored for roles with a layer larger than the cap) */
        const char *cap_env = getenv("ARMT_WEIGHT_CHUNK_BYTES");
        if (armt_role_is_layer((armt_role)r) && cap_env && strtoull(cap_env, NULL, 10) >= layer_bytes &&
            strtoull(cap_env, NULL, 10) < max_alloc)
            max_alloc = strtoull(cap_env, NULL, 10);
        if (layer_bytes > max_alloc)
            return armt_err_set(err, ARMT_STATUS_OUT_OF_DEVICE_MEMORY,
                                "model: one layer of %s needs %llu bytes, more than the device's maximum "
                                "allocation of %llu bytes",
                                armt_role_name((armt_role)r), (unsigned long long)layer_bytes,
                                (unsigned long long)max_alloc);
        uint64_t per_chunk = layer_bytes ? max_alloc / layer_bytes : (uint64_t)layers;
        w->layers_per_chunk = per_chunk >= (uint64_t)layers ? layers : (int)per_chunk;
        w->n_chunks = (layers + w->layers_per_chunk - 1) / w->layers_per_chunk;
        if (ns + (size_t)w->n_chunks > sizeof sizes / sizeof sizes[0])
            return armt_err_set(
                err, ARMT_STATUS_OUT_OF_DEVICE_MEMORY,
                "model: %s would need %d buffers; the device's maximum allocation is too small",
                armt_role_name((armt_role)r), w->n_chunks);
        w->chunks = calloc((size_t)w->n_chunks, sizeof *w->chunks);
        w->chunk_bytes = calloc((size_t)w->n_chunks, sizeof *w->chunk_bytes);
        if (!w->chunks || !w->chunk_bytes)
            return armt_err_set(err, ARMT_STATUS_OUT_OF_HOST_MEMORY, "model: out of host memory");
        for (int c = 0; c < w->n_chunks; c++) {
            int nl = layers - c * w->layers_per_chunk;
            if (nl > w->layers_per_chunk) nl = w->layers_per_chunk;
            w->chunk_bytes[c] = (size_t)nl * (size_t)layer_bytes;
            sizes[ns++] = w->chunk_bytes[c];
        }
    }
    ARMT_TRY(armt_device_fits(rt, sizes, ns, "model weights", err));
    for (int r = 0; r < ARMT_ROLE_COUNT; r++) {
        armt_weight *w = &m->w[r];
        for (int c = 0; c < w->n_chunks; c++) {
            ARMT_TRY(
                armt_buffer_create(rt, w->chunk_bytes[c], &w->chunks[c], armt_role_name((armt_role)r), err));
            m->bytes += w->chunk_bytes[c];
        }
    }
    return ARMT_OK;
}

/* Shared start of every model constructor: validated config, attention program, kernels, buffers. */
static armt_status model_begin(armt_runtime *rt, const armt_config *cfg, armt_precision prec,
                               unsigned skip_roles, armt_model **out, armt_err *err) {
    *out = NULL;
    ARMT_TRY(armt_config_check(cfg, err));
    if (prec != ARMT_PRECISION_FP32 && prec != ARMT_PRECISION_BF16)
        return armt_err_set(err, ARMT_STATUS_INVALID_ARGUMENT, "model: unknown precision %d", (int)prec);
    if (cfg->head_dim > 256)
        return armt_err_set(err, ARMT_STATUS_UNSUPPORTED, "model: head_dim %d is larger than 256",
                            cfg->head_dim);
    armt_model *m = calloc(1, sizeof *m);
    if (!m) return armt_err_set(err, ARMT_STATUS_OUT_OF_HOST_MEMORY, "model: out of host memory");
    armt_err_init(&m->err);
    m->rt = rt;
    m->cfg = *cfg;
    m->precision = prec;
    m->skip_roles = skip_roles;
    armt_status st;
    armt_attention_tuning at;
    armt_tune_attention(&rt->tune, cfg->head_dim, prec == ARMT_PRECISION_BF16, &at);
    m->attn_warps = at.warps;
    m->attn_rt = at.rtiles;
    char opt[192];
    armt_tune_attention_options(&at, opt, sizeof opt);
    const armt_program_id pid = at.mma ? ARMT_P_ATTENTION_MMA : ARMT_P_ATTENTION;
    ARMT_TRY_GOTO(armt_program_build(rt, pid, opt, &m->attention, err), fail);
    int tf32_check = at.tf32 ? armt_attention_tf32_check(rt, m->attention, &at, rt->tune.attn_tf32_gate) : 0;
    if (tf32_check != 0) {
        /* the fp32 models' tensor-core attention disagrees with the fp32 kernel here (-1), or AUTO found it
         * less accurate (1): that kernel instead */
        if (tf32_check < 0)
            armt_log(ARMT_LOG_WARN, "fp32 attention: the 3xTF32 kernel is not used; the fp32 kernel instead");
        clReleaseProgram(m->attention);
        m->attention = NULL;
        at.tf32 = at.mma = 0;
        armt_tune_attention_options(&at, opt, sizeof opt);
        ARMT_TRY_GOTO(armt_program_build(rt, ARMT_P_ATTENTION, opt, &m->attention, err), fail);
    }
    ARMT_TRY_GOTO(armt_kernels_create(rt, m->attention, m->k, err), fail);
    ARMT_TRY_GOTO(allocate_weights(m, err), fail);
    *out = m;
    return ARMT_OK;
fail:
    armt_model_free(m);
    return st;
}

/* ======================================================================================================= */
/* Random weights                                                                                          */
/* ======================================================================================================= */

/* Fills elements [0, n) of layer `layer` of a role with fma(scale, u, shift), u uniform in [-1, 1). */
static armt_status fill_role(armt_model *m, armt_role r, int layer, uint64_t seed, float scale, float shift,
                             armt_err *err) {
    armt_weight *w = &m->w[r];
    size_t off;
    cl_mem buf = armt_weight_at(w, layer, &off);
    armt_kernel_id kid = w->bf16 ? ARMT_K_FILL_UNIFORM_BF16 : ARMT_K_FILL_UNIFORM;
    cl_kernel k = m->k[kid];
    /* a stage's part draws the values of the whole model's layer */
    const int global = armt_role_is_layer(r) ? layer + m->layer_first : layer;
    cl_ulong o = off, n = w->per_layer, s = seed, stream = ((cl_ulong)r << 32) | (cl_ulong)global, first = 0;
    ARMT_CL_TRY(ARMT_ARG(k, 0, buf));
    ARMT_CL_TRY(ARMT_ARG(k, 1, o));
    ARMT_CL_TRY(ARMT_ARG(k, 2, n));
    ARMT_CL_TRY(ARMT_ARG(k, 3, s));
    ARMT_CL_TRY(ARMT_ARG(k, 4, stream));
    ARMT_CL_TRY(ARMT_ARG(k, 5, first));
    ARMT_CL_TRY(ARMT_ARG(k, 6, scale));
    ARMT_CL_TRY(ARMT_ARG(k, 7, shift));
    size_t gws = ((size_t)n + 255) / 256 * 256;
    return armt_enqueue(m->rt->queue, k, 1, &gws, NULL, NULL, armt_kernel_name(kid), NULL, err);
}

static armt_status zero_role(armt_model *m, armt_role r, int layer, armt_err *err) {
    armt_weight *w = &m->w[r];
    size_t off;
    cl_mem buf = armt_weight_at(w, layer, &off);
    uint16_t zero = 0; /* zero bits in either precision */
    ARMT_CL_TRY(clEnqueueFillBuffer(m->rt->queue, buf, &zero, sizeof zero, off * elem_size(w),
                                    (size_t)w->per_layer * elem_size(w), 0, NULL, NULL));
    return ARMT_OK;
}

/* Initial value of a role the way a fresh model is built (uniform with the documented bounds):
 * linear layers like nn.Linear, U(+-1/sqrt(in)); norms 1 + U(+-0.1) (non-trivial, so tests see them);
 * embeddings U(+-1) ; memory tokens and the sink with the embeddings' spread (emb_std * sqrt(3)); W_mv zero unless
 * wmv_std > 0 (then uniform with that standard deviation). */
static armt_status init_role(armt_model *m, armt_role r, int layer, uint64_t seed, float wmv_std,
                             double emb_std, armt_err *err) {
    uint64_t rows, cols;
    armt_role_shape(&m->cfg, r, &rows, &cols, NULL);
    /* a layer without memory (wrap_layers): zero W_m*, so its read adds exactly 0 and its write stores 0 */
    if (armt_role_is_layer(r) && armt_role_is_armt(r) && armt_config_memory_off(&m->cfg, layer))
        return zero_role(m, r, layer, err);
    switch (r) {
    case ARMT_ROLE_NORM_IN:
    case ARMT_ROLE_NORM_POST:
    case ARMT_ROLE_NORM_FINAL: return fill_role(m, r, layer, seed, 0.1f, 1.0f, err);
    case ARMT_ROLE_EMBED: return fill_role(m, r, layer, seed, 1.0f, 0.0f, err);
    case ARMT_ROLE_MEM:
    case ARMT_ROLE_SINK: return fill_role(m, r, layer, seed, (float)(emb_std * sqrt(3.0)), 0.0f, err);
    case ARMT_ROLE_WMV:
        if (wmv_std <= 0.0f) return zero_role(m, r, layer, err);
        return fill_role(m, r, layer, seed, (float)(wmv_std * sqrt(3.0)), 0.0f, err);
    case ARMT_ROLE_BMB:
        return fill_role(m, r, layer, seed, (float)(1.0 / sqrt((double)m->cfg.hidden_size)), 0.0f, err);
    default: return fill_role(m, r, layer, seed, (float)(1.0 / sqrt((double)cols)), 0.0f, err);
    }
}

/* Layers [first, first + count) of a configuration: n_layers = count, memory_off bits shifted down. */
static armt_status part_config(const armt_config *whole, int first, int count, armt_config *out,
                               armt_err *err) {
    if (first < 0 || count < 1 || first + count > whole->n_layers)
        return armt_err_set(err, ARMT_STATUS_INVALID_ARGUMENT,
                            "model: layers %d .. %d are not a part of a model of %d layers", first,
                            first + count - 1, whole->n_layers);
    *out = *whole;
    out->n_layers = count;
    memset(out->memory_off, 0, sizeof out->memory_off);
    for (int l = 0; l < count; l++)
        if (armt_config_memory_off(whole, first + l)) armt_config_set_memory_off(out, l);
    return ARMT_OK;
}

/* A random model, or layers [first, first + count) of it (count 0: all). */
static armt_status create_random(armt_runtime *rt, const armt_config *cfg, const armt_model_params *params,
                                 int first, int count, armt_model **out, armt_err *err) {
    *out = NULL;
    armt_model_params p = params ? *params : armt_model_default_params();
    armt_config c = *cfg, part;
    if (p.segment_size > 0) c.segment_size = p.segment_size;
    if (p.num_mem_tokens > 0) c.num_mem_tokens = p.num_mem_tokens;
    if (p.d_mem > 0) c.d_mem = p.d_mem;
    if (p.correction >= 0) c.correction = p.correction ? 1 : 0;
    ARMT_TRY(part_config(&c, first, count ? count : c.n_layers, &part, err));
    armt_model *m;
    ARMT_TRY(model_begin(rt, &part, p.precision, part_skip(&c, first, count), &m, err));
    m->layer_first = first;
    armt_status st;
    for (int r = 0; r < ARMT_ROLE_COUNT; r++) {
        if (!role_held(m, (armt_role)r)) continue;
        for (int l = 0; l < role_layers(m, (armt_role)r); l++)
            ARMT_TRY_GOTO(init_role(m, (armt_role)r, l, p.seed, p.wmv_std, 1.0 / sqrt(3.0), err), fail);
    }
    {
        cl_int e = clFinish(rt->queue);
        if (e != CL_SUCCESS) {
            st = armt_err_cl(err, "clFinish", e);
            goto fail;
        }
    }
    {
        uint64_t h = config_hash(&c); /* the whole model's, for a part too */
        uint32_t wbits;
        memcpy(&wbits, &p.wmv_std, sizeof wbits);
        m->fingerprint = mix64(mix64(mix64(h, p.seed), wbits), (uint64_t)p.precision);
    }
    *out = m;
    return ARMT_OK;
fail:
    armt_model_free(m);
    return st;
}

armt_status armt_model_create_random(armt_runtime *rt, const armt_config *cfg,
                                     const armt_model_params *params, armt_model **out) {
    if (out) *out = NULL; /* also on a NULL argument: never a stale handle */
    armt_err tmp;
    armt_err_init(&tmp);
    armt_err *err = rt ? &rt->err : &tmp;
    if (!rt || !cfg || !out) {
        armt_status s =
            armt_err_set(err, ARMT_STATUS_INVALID_ARGUMENT, "armt_model_create_random: NULL argument");
        armt_err_free(&tmp);
        return s;
    }
    return create_random(rt, cfg, params, 0, 0, out, err);
}

/* ======================================================================================================= */
/* Loading                                                                                                 */
/* ======================================================================================================= */

/* A checkpoint, or layers [first, first + count) of it (count 0: all). */
static armt_status load_model(armt_runtime *rt, const char *path, const armt_model_params *params, int layer0,
                              int count, armt_model **out, armt_err *err) {
    *out = NULL;
    armt_model_params p = params ? *params : armt_model_default_params();
    armt_ckpt *ck = NULL;
    ARMT_TRY(armt_ckpt_open(path, &p, &ck, err));
    armt_config part;
    armt_model *m = NULL;
    float *stage = NULL;
    armt_status st;
    ARMT_TRY_GOTO(
        part_config(armt_ckpt_config(ck), layer0, count ? count : armt_ckpt_config(ck)->n_layers, &part, err),
        fail);
    ARMT_TRY_GOTO(
        model_begin(rt, &part, p.precision, part_skip(armt_ckpt_config(ck), layer0, count), &m, err), fail);
    m->layer_first = layer0;
    stage = malloc(STAGE_FLOATS * sizeof(float));
    if (!stage) {
        st = armt_err_set(err, ARMT_STATUS_OUT_OF_HOST_MEMORY, "model: out of host memory");
        goto fail;
    }
    uint64_t h = mix64(config_hash(&m->cfg), (uint64_t)m->precision);
    double emb_sum = 0.0, emb_sq = 0.0;
    uint64_t emb_n = 0;
    /* EMBED first: the memory tokens of a plain checkpoint are initialised from its spread */
    static const armt_role order[ARMT_ROLE_COUNT] = {
        ARMT_ROLE_EMBED, ARMT_ROLE_LM_HEAD, ARMT_ROLE_NORM_FINAL, ARMT_ROLE_MEM, ARMT_ROLE_WQ,
        ARMT_ROLE_WK,    ARMT_ROLE_WV,      ARMT_ROLE_WO,         ARMT_ROLE_WG,  ARMT_ROLE_WU,
        ARMT_ROLE_WD,    ARMT_ROLE_NORM_IN, ARMT_ROLE_NORM_POST,  ARMT_ROLE_WMQ, ARMT_ROLE_WMK,
        ARMT_ROLE_WMV,   ARMT_ROLE_WMB,     ARMT_ROLE_BMB,        ARMT_ROLE_SINK};
    for (int oi = 0; oi < ARMT_ROLE_COUNT; oi++) {
        armt_role r = order[oi];
        if (!role_held(m, r)) continue;
        for (int l = 0; l < role_layers(m, r); l++) {
            const int gl = armt_role_is_layer(r) ? l + layer0 : l; /* the checkpoint's layer index */
            if (!armt_ckpt_has(ck, r, gl) ||
                (armt_role_is_layer(r) && armt_role_is_armt(r) && armt_config_memory_off(&m->cfg, l))) {
                double var =
                    emb_n ? emb_sq / (double)emb_n - (emb_sum / (double)emb_n) * (emb_sum / (double)emb_n)
                          : 1.0;
                ARMT_TRY_GOTO(init_role(m, r, l, p.seed, p.wmv_std, sqrt(var > 0 ? var : 0), err), fail);
                h = mix64(h, ((uint64_t)r << 32) ^ (uint64_t)l ^ p.seed);
                continue;
            }
            size_t off;
            cl_mem buf = armt_weight_at(&m->w[r], l, &off);
            uint64_t n = m->w[r].per_layer;
            for (uint64_t first = 0; first < n; first += STAGE_FLOATS) {
                size_t cnt = (size_t)(n - first < STAGE_FLOATS ? n - first : STAGE_FLOATS);
                ARMT_TRY_GOTO(armt_ckpt_read(ck, r, gl, first, cnt, stage, err), fail);
                for (size_t i = 0; i < cnt; i++) {
                    if (!isfinite(stage[i])) {
                        st = armt_err_set(
                            err, ARMT_STATUS_BAD_FILE,
                            "model: tensor %s of layer %d holds a non-finite value at element %llu",
                            armt_role_name(r), l, (unsigned long long)(first + i));
                        goto fail;
                    }
                }
                if (r == ARMT_ROLE_EMBED)
                    for (size_t i = 0; i < cnt; i++) {
                        emb_sum += stage[i];
                        emb_sq += (double)stage[i] * stage[i];
                    }
                emb_n += r == ARMT_ROLE_EMBED ? cnt : 0;
                h = data_hash(h, stage, cnt);
                size_t es = elem_size(&m->w[r]);
                if (m->w[r].bf16) {
                    /* convert in place: the bf16 values fill the front half of the staging buffer */
                    uint16_t *b = (uint16_t *)(void *)stage;
                    for (size_t i = 0; i < cnt; i++)
                        b[i] = armt_bf16_bits(stage[i]);
                }
                cl_int e = clEnqueueWriteBuffer(rt->queue, buf, CL_TRUE, (off + first) * es, cnt * es, stage,
                                                0, NULL, NULL);
                if (e != CL_SUCCESS) {
                    st = armt_err_cl(err, "clEnqueueWriteBuffer (weights)", e);
                    goto fail;
                }
            }
        }
    }
    {
        cl_int e = clFinish(rt->queue);
        if (e != CL_SUCCESS) {
            st = armt_err_cl(err, "clFinish", e);
            goto fail;
        }
    }
    m->fingerprint = h;
    free(stage);
    armt_ckpt_close(ck);
    *out = m;
    return ARMT_OK;
fail:
    free(stage);
    armt_model_free(m);
    armt_ckpt_close(ck);
    return st;
}

armt_status armt_model_load(armt_runtime *rt, const char *path, const armt_model_params *params,
                            armt_model **out) {
    if (out) *out = NULL; /* also on a NULL argument: never a stale handle */
    armt_err tmp;
    armt_err_init(&tmp);
    armt_err *err = rt ? &rt->err : &tmp;
    if (!rt || !path || !out) {
        armt_status s = armt_err_set(err, ARMT_STATUS_INVALID_ARGUMENT, "armt_model_load: NULL argument");
        armt_err_free(&tmp);
        return s;
    }
    return load_model(rt, path, params, 0, 0, out, err);
}

armt_status armt_model_create_part(armt_runtime *rt, const armt_config *cfg, const char *path,
                                   const armt_model_params *params, int first, int count, armt_model **out,
                                   armt_err *err) {
    if (!path) return create_random(rt, cfg, params, first, count, out, err);
    ARMT_TRY(load_model(rt, path, params, first, count, out, err));
    (*out)->fingerprint = mix64((*out)->fingerprint, ((uint64_t)(uint32_t)first << 32) | (uint32_t)count);
    return ARMT_OK;
}

/* ======================================================================================================= */
/* Read-back and save                                                                                      */
/* ======================================================================================================= */

armt_status armt_model_read_role(armt_model *m, armt_role role, int layer, uint64_t first, uint64_t count,
                                 float *dst, armt_err *err) {
    if (role < 0 || role >= ARMT_ROLE_COUNT || layer < 0 || layer >= role_layers(m, role) ||
        (role != ARMT_ROLE_LM_HEAD && !role_stored(&m->cfg, role)))
        return armt_err_set(err, ARMT_STATUS_INVALID_ARGUMENT, "read_role: bad role %d / layer %d", role,
                            layer);
    const armt_weight *w = role == ARMT_ROLE_LM_HEAD ? armt_model_lm_head(m) : &m->w[role];
    if (first + count > w->per_layer)
        return armt_err_set(err, ARMT_STATUS_INVALID_ARGUMENT, "read_role: range beyond the tensor");
    size_t off;
    cl_mem buf = armt_weight_at(w, layer, &off);
    size_t es = elem_size(w);
    ARMT_CL_TRY(clEnqueueReadBuffer(m->rt->queue, buf, CL_TRUE, (off + first) * es, (size_t)count * es, dst,
                                    0, NULL, NULL));
    if (w->bf16) {
        /* expand in place, from the back so no value is overwritten before it is read */
        const uint16_t *b = (const uint16_t *)(const void *)dst;
        for (size_t i = (size_t)count; i-- > 0;) {
            uint32_t u = (uint32_t)b[i] << 16;
            memcpy(&dst[i], &u, sizeof u);
        }
    }
    return ARMT_OK;
}

/* Tensor names of a saved model: the ARMT reference wrapper's module-tree form (docs/MATH.md §5.1). */
static void saved_name(armt_role r, int l, char *buf, size_t n) {
    static const char *const layer_names[ARMT_ROLE_N_LAYER_ROLES] = {"layer.self_attn.q_proj.weight",
                                                                     "layer.self_attn.k_proj.weight",
                                                                     "layer.self_attn.v_proj.weight",
                                                                     "layer.self_attn.o_proj.weight",
                                                                     "layer.mlp.gate_proj.weight",
                                                                     "layer.mlp.up_proj.weight",
                                                                     "layer.mlp.down_proj.weight",
                                                                     "layer.input_layernorm.weight",
                                                                     "layer.post_attention_layernorm.weight",
                                                                     "W_mq.weight",
                                                                     "W_mk.weight",
                                                                     "W_mv.weight",
                                                                     "W_mb.weight",
                                                                     "W_mb.bias"};
    if (armt_role_is_layer(r)) {
        snprintf(buf, n, "memory_cell.model.model.layers.%d.%s", l, layer_names[r]);
        return;
    }
    switch (r) {
    case ARMT_ROLE_EMBED: snprintf(buf, n, "memory_cell.model.model.embed_tokens.weight"); break;
    case ARMT_ROLE_LM_HEAD: snprintf(buf, n, "memory_cell.model.lm_head.weight"); break;
    case ARMT_ROLE_NORM_FINAL: snprintf(buf, n, "memory_cell.model.model.norm.weight"); break;
    case ARMT_ROLE_SINK: snprintf(buf, n, "memory_cell.sink"); break;
    default: snprintf(buf, n, "memory_cell.memory"); break;
    }
}

armt_status armt_model_save(armt_model *m, const char *path) {
    if (!m || !path)
        return armt_err_set(m ? &m->err : NULL, ARMT_STATUS_INVALID_ARGUMENT,
                            "armt_model_save: NULL argument");
    armt_err *err = &m->err;
    st_writer *w = NULL;
    float *stage = NULL;
    char *json = NULL;
    armt_status st;
    ARMT_TRY_GOTO(st_writer_open(path, &w, err), fail);
    json = armt_config_to_json(&m->cfg);
    if (!json) {
        st = armt_err_set(err, ARMT_STATUS_OUT_OF_HOST_MEMORY, "save: cannot serialise the configuration");
        goto fail;
    }
    ARMT_TRY_GOTO(st_writer_meta(w, "armt_config", json, err), fail);
    ARMT_TRY_GOTO(st_writer_meta(w, "format", "libarmt", err), fail);
    ARMT_TRY_GOTO(st_writer_meta(w, "precision", m->precision == ARMT_PRECISION_BF16 ? "bf16" : "fp32", err),
                  fail);
    char name[256];
    for (int r = 0; r < ARMT_ROLE_COUNT; r++) {
        if (!role_stored(&m->cfg, (armt_role)r)) continue;
        for (int l = 0; l < role_layers(m, (armt_role)r); l++) {
            uint64_t shape[2];
            int ndim;
            armt_role_shape(&m->cfg, (armt_role)r, &shape[0], &shape[1], &ndim);
            saved_name((armt_role)r, l, name, sizeof name);
            ARMT_TRY_GOTO(st_writer_add(w, name, ndim, shape, err), fail);
        }
    }
    stage = malloc(STAGE_FLOATS * sizeof(float));
    if (!stage) {
        st = armt_err_set(err, ARMT_STATUS_OUT_OF_HOST_MEMORY, "save: out of host memory");
        goto fail;
    }
    for (int r = 0; r < ARMT_ROLE_COUNT; r++) {
        if (!role_stored(&m->cfg, (armt_role)r)) continue;
        for (int l = 0; l < role_layers(m, (armt_role)r); l++) {
            uint64_t n = m->w[r].per_layer;
            for (uint64_t first = 0; first < n; first += STAGE_FLOATS) {
                size_t cnt = (size_t)(n - first < STAGE_FLOATS ? n - first : STAGE_FLOATS);
                ARMT_TRY_GOTO(armt_model_read_role(m, (armt_role)r, l, first, cnt, stage, err), fail);
                ARMT_TRY_GOTO(st_writer_write(w, stage, cnt, err), fail);
            }
        }
    }
    st = st_writer_close(w, err);
    w = NULL;
    if (st != ARMT_OK) goto fail;
    free(stage);
    free(json);
    return ARMT_OK;
fail:
    st_writer_abort(w);
    free(stage);
    free(json);
    return st;
}
