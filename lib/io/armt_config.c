/*
 * armt_config.c - presets, validation and JSON forms of armt_config. See armt_config.h.
 */
#include "config.h"

#include "io/armt_config.h"
#include "io/json_read.h"

#include <jansson.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ===================================================================================================== */
/* Presets                                                                                               */
/* ===================================================================================================== */

/* llama3 frequency scaling as published with Llama 3.1 / 3.2. */
#define LLAMA3_ROPE                                                                  \
    .rope_type = ARMT_ROPE_LLAMA3, .rope_factor = 32.0, .rope_low_freq_factor = 1.0, \
    .rope_high_freq_factor = 4.0, .rope_original_max_pos = 8192

static const struct {
    const char *name;
    armt_config cfg;
} presets[] = {
    /* A few KB of weights: GQA (2 query heads per KV head), tied embeddings, llama3 rope: every code path. */
    {"tiny",
     {.hidden_size = 64,
      .n_layers = 3,
      .n_heads = 4,
      .n_kv_heads = 2,
      .head_dim = 16,
      .intermediate_size = 128,
      .vocab_size = 256,
      .rms_norm_eps = 1e-5f,
      .rope_theta = 500000.0,
      LLAMA3_ROPE,
      .tie_word_embeddings = 1,
      .num_mem_tokens = 4,
      .d_mem = 8,
      .segment_size = 16,
      .correction = 1}},
    /* Same size, 4 query heads per KV head and a separate lm_head. */
    {"tiny-gqa",
     {.hidden_size = 64,
      .n_layers = 3,
      .n_heads = 8,
      .n_kv_heads = 2,
      .head_dim = 8,
      .intermediate_size = 128,
      .vocab_size = 256,
      .rms_norm_eps = 1e-5f,
      .rope_theta = 500000.0,
      LLAMA3_ROPE,
      .tie_word_embeddings = 0,
      .num_mem_tokens = 4,
      .d_mem = 8,
      .segment_size = 16,
      .correction = 1}},
    /* JackFram/llama-160m with the paper's speed-run ARMT settings (docs/MATH.md §5.3). */
    {"llama-160m",
     {.hidden_size = 768,
      .n_layers = 12,
      .n_heads = 12,
      .n_kv_heads = 12,
      .head_dim = 64,
      .intermediate_size = 3072,
      .vocab_size = 32000,
      .rms_norm_eps = 1e-6f,
      .rope_theta = 10000.0,
      .rope_type = ARMT_ROPE_DEFAULT,
      .rope_factor = 1.0,
      .tie_word_embeddings = 0,
      .num_mem_tokens = 128,
      .d_mem = 64,
      .segment_size = 1024,
      .correction = 1}},
    /* meta-llama/Llama-3.2-1B (docs/MATH.md §1). */
    {"llama-3.2-1b",
     {.hidden_size = 2048,
      .n_layers = 16,
      .n_heads = 32,
      .n_kv_heads = 8,
      .head_dim = 64,
      .intermediate_size = 8192,
      .vocab_size = 128256,
      .rms_norm_eps = 1e-5f,
      .rope_theta = 500000.0,
      LLAMA3_ROPE,
      .tie_word_embeddings = 1,
      .num_mem_tokens = 128,
      .d_mem = 64,
      .segment_size = 1024,
      .correction = 1}},
    /* meta-llama/Llama-3.2-3B with the 1B's ARMT settings (random weights: where a pipeline matters). */
    {"llama-3.2-3b",
     {.hidden_size = 3072,
      .n_layers = 28,
      .n_heads = 24,
      .n_kv_heads = 8,
      .head_dim = 128,
      .intermediate_size = 8192,
      .vocab_size = 128256,
      .rms_norm_eps = 1e-5f,
      .rope_theta = 500000.0,
      LLAMA3_ROPE,
      .tie_word_embeddings = 1,
      .num_mem_tokens = 128,
      .d_mem = 64,
      .segment_size = 1024,
      .correction = 1}},
    /* meta-llama/Llama-3.1-8B (untied lm_head, llama3 rope factor 8) with the same ARMT settings. */
    {"llama-3.1-8b",
     {.hidden_size = 4096,
      .n_layers = 32,
      .n_heads = 32,
      .n_kv_heads = 8,
      .head_dim = 128,
      .intermediate_size = 14336,
      .vocab_size = 128256,
      .rms_norm_eps = 1e-5f,
      .rope_theta = 500000.0,
      .rope_type = ARMT_ROPE_LLAMA3,
      .rope_factor = 8.0,
      .rope_low_freq_factor = 1.0,
      .rope_high_freq_factor = 4.0,
      .rope_original_max_pos = 8192,
      .tie_word_embeddings = 0,
      .num_mem_tokens = 128,
      .d_mem = 64,
      .segment_size = 1024,
      .correction = 1}},
    /* HuggingFaceTB/SmolLM2-360M under the current reference's ARMT (src/armt.py defaults but d_mem 64):
     * normalised features, one memory head, 15 query / 5 KV heads (not a power of two). */
    {"smollm2-360m-armt",
     {.hidden_size = 960,
      .n_layers = 32,
      .n_heads = 15,
      .n_kv_heads = 5,
      .head_dim = 64,
      .intermediate_size = 2560,
      .vocab_size = 49152,
      .rms_norm_eps = 1e-5f,
      .rope_theta = 100000.0,
      .rope_type = ARMT_ROPE_DEFAULT,
      .rope_factor = 1.0,
      .tie_word_embeddings = 1,
      .num_mem_tokens = 16,
      .d_mem = 64,
      .segment_size = 1024,
      .correction = 1,
      .variant = ARMT_VARIANT_ARMT}},
};
#define N_PRESETS (sizeof presets / sizeof presets[0])

static const char *const preset_names[N_PRESETS + 1] = {
    "tiny",         "tiny-gqa",     "llama-160m",        "llama-3.2-1b",
    "llama-3.2-3b", "llama-3.1-8b", "smollm2-360m-armt", NULL};

const char *const *armt_config_preset_names(void) { return preset_names; }

armt_status armt_config_preset(const char *name, armt_config *out) {
    if (!name || !out)
        return armt_err_set(NULL, ARMT_STATUS_INVALID_ARGUMENT, "armt_config_preset: NULL argument");
    for (size_t i = 0; i < N_PRESETS; i++) {
        if (strcmp(presets[i].name, name) == 0) {
            *out = presets[i].cfg;
            return ARMT_OK;
        }
    }
    return armt_err_set(NULL, ARMT_STATUS_INVALID_ARGUMENT,
                        "armt_config_preset: unknown preset '%s' (tiny, tiny-gqa, llama-160m, llama-3.2-1b, "
                        "smollm2-360m-armt)",
                        name);
}

/* nu = 3 (hard-coded in the reference): d_key = 2 * nu * d_mem. 0 for NULL or a d_mem so large that the
 * product overflows (possible on a config not yet validated; armt_config_check refuses such a d_mem). */
int armt_config_d_key(const armt_config *cfg) {
    if (!cfg || cfg->d_mem > INT_MAX / 6 || cfg->d_mem < INT_MIN / 6) return 0;
    return 6 * cfg->d_mem;
}

/* ===================================================================================================== */
/* Validation                                                                                            */
/* ===================================================================================================== */

/* The variant fields (docs/VARIANTS.md): heads divide d_mem and d, the paper's math has none of the later
 * options, and the features not implemented yet are refused as such. */
static armt_status check_variant(const armt_config *c, armt_err *err) {
    const armt_status B = ARMT_STATUS_BAD_CONFIG;
    ARMT_RETURN_IF(c->variant != ARMT_VARIANT_PAPER && c->variant != ARMT_VARIANT_AMT &&
                       c->variant != ARMT_VARIANT_ARMT && c->variant != ARMT_VARIANT_INNER,
                   B, "config: unknown variant %d", (int)c->variant);
    ARMT_RETURN_IF(c->no_denom != 0 && c->no_denom != 1, B, "config: no_denom = %d must be 0 or 1",
                   c->no_denom);
    ARMT_RETURN_IF(c->gating != 0 && c->gating != 1, B, "config: gating = %d must be 0 or 1", c->gating);
    const int H = armt_config_mem_heads(c);
    ARMT_RETURN_IF(c->mem_heads < 0, B, "config: mem_heads = %d must be >= 0", c->mem_heads);
    ARMT_RETURN_IF(c->d_mem % H != 0 || c->hidden_size % H != 0, B,
                   "config: n_heads (memory heads) = %d must divide d_mem = %d and hidden_size = %d", H,
                   c->d_mem, c->hidden_size);
    if (c->variant == ARMT_VARIANT_PAPER)
        ARMT_RETURN_IF(H != 1 || c->gating || c->no_denom, B,
                       "config: memory heads, gating and use_denom = false belong to the amt and armt "
                       "variants, not to the paper's");
    if (c->variant == ARMT_VARIANT_ARMT)
        ARMT_RETURN_IF(H != 1 || c->gating, B,
                       "config: the armt variant (src/armt.py) has one memory head "
                       "and no gating");
    ARMT_RETURN_IF(c->use_sink != 0 && c->use_sink != 1, B, "config: use_sink = %d must be 0 or 1",
                   c->use_sink);
    ARMT_RETURN_IF(c->sliding_window != 0 && c->sliding_window != 1, B,
                   "config: sliding_window = %d must be 0 or 1", c->sliding_window);
    ARMT_RETURN_IF(c->variant == ARMT_VARIANT_PAPER && (c->use_sink || c->sliding_window), B,
                   "config: use_sink and sliding_window belong to the later variants, not to the paper's");
    ARMT_RETURN_IF(c->variant == ARMT_VARIANT_INNER && c->sliding_window, ARMT_STATUS_UNSUPPORTED,
                   "config: sliding_window = true with the inner loop is not implemented (inner_loop.py's "
                   "sliding window does not run in the reference itself; docs/VARIANTS-reference.md)");
    ARMT_RETURN_IF(c->variant == ARMT_VARIANT_INNER && armt_config_memory_layers(c) != c->n_layers,
                   ARMT_STATUS_BAD_CONFIG,
                   "config: the inner loop has a memory in every layer (no wrap_layers)");
    /* modeling_amt's own sliding window never ran (docs/VARIANTS-reference.md): its 4-D integer mask is
     * refused by sdpa, and under eager attention it would be added to the scores, masking nothing; what its
     * code intends differs from src/armt_sw.py (text rows would see the memory rows). Nothing to follow. */
    ARMT_RETURN_IF(c->sliding_window && c->variant != ARMT_VARIANT_ARMT, ARMT_STATUS_UNSUPPORTED,
                   "config: sliding_window = true with the %s variant is not supported: the reference's "
                   "own sliding window (modeling_amt/language_modeling.py) fails to run (sdpa refuses its "
                   "integer mask, and eager attention would add it to the scores instead of masking), so it "
                   "defines no result (src/armt_sw.py's, model_type armt_sw, is supported)",
                   armt_variant_name(c->variant));
    for (int l = c->n_layers; l < ARMT_MAX_WRAP_LAYERS; l++)
        ARMT_RETURN_IF(armt_config_memory_off(c, l), B,
                       "config: wrap_layers turns off layer %d, but the model has %d layers", l, c->n_layers);
    return ARMT_OK;
}

int armt_config_mem_heads(const armt_config *c) { return c->mem_heads > 1 ? c->mem_heads : 1; }

int armt_config_memory_off(const armt_config *c, int layer) {
    if (layer < 0 || layer >= ARMT_MAX_WRAP_LAYERS) return 0;
    return (int)((c->memory_off[layer / 64] >> (layer % 64)) & 1u);
}

void armt_config_set_memory_off(armt_config *c, int layer) {
    c->memory_off[layer / 64] |= (uint64_t)1 << (layer % 64);
}

int armt_config_memory_layers(const armt_config *c) {
    int n = 0;
    for (int l = 0; l < c->n_layers; l++)
        n += !armt_config_memory_off(c, l);
    return n;
}

/* Checks every field that a later stage would otherwise trip over: a zero size would make empty device
 * buffers, a non-dividing head count would make GQA index out of range, an odd head_dim breaks the RoPE
 * pairing, and bad llama3 factors divide by zero (high - low) in the frequency ramp. The first failing
 * rule is reported. */
armt_status armt_config_check(const armt_config *c, armt_err *err) {
    ARMT_RETURN_IF(!c, ARMT_STATUS_INVALID_ARGUMENT, "armt_config_check: NULL config");
    const armt_status B = ARMT_STATUS_BAD_CONFIG;

    /* Sizes. Each must be positive; products used for buffer sizes must fit in an int. */
    static const char *const size_names[] = {
        "hidden_size",       "n_layers",   "n_heads",        "n_kv_heads", "head_dim",
        "intermediate_size", "vocab_size", "num_mem_tokens", "d_mem",      "segment_size"};
    const int sizes[] = {c->hidden_size, c->n_layers,          c->n_heads,    c->n_kv_heads,
                         c->head_dim,    c->intermediate_size, c->vocab_size, c->num_mem_tokens,
                         c->d_mem,       c->segment_size};
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++)
        ARMT_RETURN_IF(sizes[i] <= 0, B, "config: %s = %d must be > 0", size_names[i], sizes[i]);

    ARMT_RETURN_IF(c->n_heads % c->n_kv_heads != 0, B,
                   "config: n_heads = %d is not a multiple of n_kv_heads = %d", c->n_heads, c->n_kv_heads);
    ARMT_RETURN_IF(c->head_dim % 2 != 0, B, "config: head_dim = %d must be even (RoPE rotates pairs)",
                   c->head_dim);
    ARMT_RETURN_IF((long long)c->n_heads * c->head_dim > INT_MAX, B, "config: n_heads * head_dim too large");
    ARMT_RETURN_IF(c->d_mem > INT_MAX / 6, B, "config: d_mem = %d too large", c->d_mem);
    ARMT_RETURN_IF(c->segment_size > INT_MAX - c->num_mem_tokens, B,
                   "config: segment_size + num_mem_tokens too large");

    /* `!(x > 0)` also rejects NaN. */
    ARMT_RETURN_IF(!(c->rms_norm_eps > 0) || !isfinite(c->rms_norm_eps), B,
                   "config: rms_norm_eps = %g must be a finite number > 0", (double)c->rms_norm_eps);
    ARMT_RETURN_IF(!(c->rope_theta > 0) || !isfinite(c->rope_theta), B,
                   "config: rope_theta = %g must be a finite number > 0", c->rope_theta);
    if (c->rope_type == ARMT_ROPE_LLAMA3) {
        ARMT_RETURN_IF(!(c->rope_factor >= 1) || !isfinite(c->rope_factor), B,
                       "config: llama3 rope_factor = %g must be >= 1", c->rope_factor);
        ARMT_RETURN_IF(!(c->rope_low_freq_factor > 0) || !isfinite(c->rope_low_freq_factor), B,
                       "config: llama3 rope_low_freq_factor = %g must be > 0", c->rope_low_freq_factor);
        ARMT_RETURN_IF(!(c->rope_high_freq_factor > c->rope_low_freq_factor) ||
                           !isfinite(c->rope_high_freq_factor),
                       B, "config: llama3 rope_high_freq_factor = %g must be > rope_low_freq_factor = %g",
                       c->rope_high_freq_factor, c->rope_low_freq_factor);
        ARMT_RETURN_IF(c->rope_original_max_pos <= 0, B,
                       "config: llama3 rope_original_max_pos = %d must be > 0", c->rope_original_max_pos);
    } else {
        ARMT_RETURN_IF(c->rope_type != ARMT_ROPE_DEFAULT, B, "config: unknown rope_type %d",
                       (int)c->rope_type);
    }
    ARMT_RETURN_IF(c->tie_word_embeddings != 0 && c->tie_word_embeddings != 1, B,
                   "config: tie_word_embeddings = %d must be 0 or 1", c->tie_word_embeddings);
    ARMT_RETURN_IF(c->correction != 0 && c->correction != 1, B, "config: correction = %d must be 0 or 1",
                   c->correction);
    return check_variant(c, err);
}

/* Public wrapper: same checks, reason copied into the caller's buffer (the error record is local). */
armt_status armt_config_validate(const armt_config *cfg, char *why, size_t why_len) {
    armt_err e;
    armt_err_init(&e);
    armt_status st = armt_config_check(cfg, &e);
    if (why && why_len > 0) snprintf(why, why_len, "%s", st == ARMT_OK ? "" : armt_err_msg(&e));
    armt_err_free(&e);
    return st;
}

/* The four ARMT fields, each only when present. */
static armt_status read_armt_fields(json_t *o, armt_config *cfg, armt_err *err) {
    ARMT_TRY(armt_json_get_int(o, "", "num_mem_tokens", 0, &cfg->num_mem_tokens, err));
    ARMT_TRY(armt_json_get_int(o, "", "d_mem", 0, &cfg->d_mem, err));
    ARMT_TRY(armt_json_get_int(o, "", "segment_size", 0, &cfg->segment_size, err));
    ARMT_TRY(armt_json_get_bool(o, "", "correction", 0, &cfg->correction, err));
    return ARMT_OK;
}

/* ===================================================================================================== */
/* HF config.json                                                                                        */
/* ===================================================================================================== */

/* Reads a rope description: the 4.x rope_scaling object or the 5.x rope_parameters object (where, which
 * also may hold rope_theta). Type key: "rope_type", or the older "type". */
static armt_status read_rope(json_t *r, const char *where, armt_config *cfg, armt_err *err) {
    ARMT_RETURN_IF(!json_is_object(r), ARMT_STATUS_BAD_CONFIG,
                   "config: field '%.*s' must be an object, not %s", (int)strlen(where) - 1, where,
                   armt_json_type_name(r));
    const char *type = NULL;
    ARMT_TRY(armt_json_get_str(r, where, "rope_type", 0, &type, err));
    if (!type) ARMT_TRY(armt_json_get_str(r, where, "type", 0, &type, err));
    ARMT_TRY(armt_json_get_num(r, where, "rope_theta", 0, &cfg->rope_theta, err));

    if (!type || strcmp(type, "default") == 0) {
        cfg->rope_type = ARMT_ROPE_DEFAULT;
        return ARMT_OK;
    }
    ARMT_RETURN_IF(strcmp(type, "llama3") != 0, ARMT_STATUS_UNSUPPORTED,
                   "config: rope type '%s' is not supported (only default and llama3)", type);
    /* llama3: all four parameters are required (transformers rejects the config without them). */
    int omp = 0;
    cfg->rope_type = ARMT_ROPE_LLAMA3;
    ARMT_TRY(armt_json_get_num(r, where, "factor", 1, &cfg->rope_factor, err));
    ARMT_TRY(armt_json_get_num(r, where, "low_freq_factor", 1, &cfg->rope_low_freq_factor, err));
    ARMT_TRY(armt_json_get_num(r, where, "high_freq_factor", 1, &cfg->rope_high_freq_factor, err));
    ARMT_TRY(armt_json_get_int(r, where, "original_max_position_embeddings", 1, &omp, err));
    cfg->rope_original_max_pos = omp;
    return ARMT_OK;
}

/* Fills *cfg from a parsed config.json. Unknown keys (architectures, torch_dtype, bos_token_id, ...) are
 * ignored: they do not affect the forward pass. */
armt_status armt_config_hf_fields(json_t *o, armt_config *cfg, armt_err *err) {
    memset(cfg, 0, sizeof *cfg);

    /* Features this library does not implement: refuse rather than compute something else. */
    const char *act = NULL, *type = NULL;
    ARMT_TRY(armt_json_get_str(o, "", "model_type", 0, &type, err));
    ARMT_RETURN_IF(
        type && strcmp(type, "llama") != 0, ARMT_STATUS_UNSUPPORTED,
        "config: model_type '%s' is not supported (llama, and the ARMT reference's armt and armt_sw)", type);
    ARMT_TRY(armt_json_get_str(o, "", "hidden_act", 0, &act, err));
    ARMT_RETURN_IF(act && strcmp(act, "silu") != 0, ARMT_STATUS_UNSUPPORTED,
                   "config: hidden_act '%s' is not supported (only silu)", act);
    int bias = 0;
    ARMT_TRY(armt_json_get_bool(o, "", "attention_bias", 0, &bias, err));
    ARMT_RETURN_IF(bias, ARMT_STATUS_UNSUPPORTED, "config: attention_bias = true is not supported");
    ARMT_TRY(armt_json_get_bool(o, "", "mlp_bias", 0, &bias, err));
    ARMT_RETURN_IF(bias, ARMT_STATUS_UNSUPPORTED, "config: mlp_bias = true is not supported");

    /* Sizes every LLaMA config carries. */
    ARMT_TRY(armt_json_get_int(o, "", "hidden_size", 1, &cfg->hidden_size, err));
    ARMT_TRY(armt_json_get_int(o, "", "num_hidden_layers", 1, &cfg->n_layers, err));
    ARMT_TRY(armt_json_get_int(o, "", "num_attention_heads", 1, &cfg->n_heads, err));
    ARMT_TRY(armt_json_get_int(o, "", "intermediate_size", 1, &cfg->intermediate_size, err));
    ARMT_TRY(armt_json_get_int(o, "", "vocab_size", 1, &cfg->vocab_size, err));

    /* Optional: older configs predate GQA and explicit head_dim. */
    cfg->n_kv_heads = cfg->n_heads;
    ARMT_TRY(armt_json_get_int(o, "", "num_key_value_heads", 0, &cfg->n_kv_heads, err));
    /* head_dim defaults to hidden / heads, which must then divide evenly. */
    cfg->head_dim = 0;
    ARMT_TRY(armt_json_get_int(o, "", "head_dim", 0, &cfg->head_dim, err));
    if (cfg->head_dim == 0 && cfg->n_heads > 0) {
        ARMT_RETURN_IF(
            cfg->hidden_size % cfg->n_heads != 0, ARMT_STATUS_BAD_CONFIG,
            "config: hidden_size = %d is not a multiple of num_attention_heads = %d and head_dim is not "
            "given",
            cfg->hidden_size, cfg->n_heads);
        cfg->head_dim = cfg->hidden_size / cfg->n_heads;
    }

    double eps = 1e-6; /* LlamaConfig defaults */
    ARMT_TRY(armt_json_get_num(o, "", "rms_norm_eps", 0, &eps, err));
    cfg->rms_norm_eps = (float)eps;
    cfg->rope_theta = 10000.0;
    cfg->rope_type = ARMT_ROPE_DEFAULT;
    cfg->rope_factor = 1.0;

    json_t *params = json_object_get(o, "rope_parameters");
    if (params && !json_is_null(params)) {
        /* transformers 5.x; a top-level rope_theta (if any) is only the fallback */
        ARMT_TRY(armt_json_get_num(o, "", "rope_theta", 0, &cfg->rope_theta, err));
        ARMT_TRY(read_rope(params, "rope_parameters.", cfg, err));
    } else {
        ARMT_TRY(armt_json_get_num(o, "", "rope_theta", 0, &cfg->rope_theta, err));
        json_t *scaling = json_object_get(o, "rope_scaling");
        /* (late 4.x files may repeat rope_theta inside rope_scaling; read_rope then takes that one) */
        if (scaling && !json_is_null(scaling)) ARMT_TRY(read_rope(scaling, "rope_scaling.", cfg, err));
    }

    ARMT_TRY(armt_json_get_bool(o, "", "tie_word_embeddings", 0, &cfg->tie_word_embeddings, err));

    /* ARMT fields: "not known yet" unless given (see armt_config.h). */
    cfg->num_mem_tokens = 0;
    cfg->segment_size = 0;
    cfg->d_mem = 64;
    cfg->correction = 1;
    return read_armt_fields(o, cfg, err);
}

/* Parses into a temporary so that the caller's config is unchanged on failure. */
armt_status armt_config_from_hf_json(const char *json_text, size_t len, armt_config *cfg, armt_err *err) {
    ARMT_RETURN_IF(!cfg, ARMT_STATUS_INVALID_ARGUMENT, "armt_config_from_hf_json: NULL config");
    json_t *o;
    ARMT_TRY(armt_json_parse_object(json_text, len, "config.json", &o, err));
    armt_config tmp;
    armt_status st = armt_config_hf_fields(o, &tmp, err);
    json_decref(o);
    if (st == ARMT_OK) *cfg = tmp; /* *cfg untouched on error */
    return st;
}

armt_status armt_config_apply_armt_json(const char *json_text, size_t len, armt_config *cfg, armt_err *err) {
    ARMT_RETURN_IF(!cfg, ARMT_STATUS_INVALID_ARGUMENT, "armt_config_apply_armt_json: NULL config");
    json_t *o;
    ARMT_TRY(armt_json_parse_object(json_text, len, "ARMT config", &o, err));
    armt_config tmp = *cfg;
    armt_status st = read_armt_fields(o, &tmp, err);
    json_decref(o);
    if (st == ARMT_OK) *cfg = tmp;
    return st;
}

/* ===================================================================================================== */
/* Full form                                                                                             */
/* ===================================================================================================== */

/* One table drives both directions, so the two cannot drift apart. */
typedef enum { F_INT, F_FLOAT, F_DOUBLE, F_ROPE, F_VARIANT, F_MEMOFF } field_kind;
static const struct {
    const char *key;
    field_kind kind;
    size_t offset;
    int since; /* the full form's version that added the field (older forms read it as zero) */
} full_fields[] = {
#define F(key, kind, member) \
    { key, kind, offsetof(armt_config, member), 1 }
#define F2(key, kind, member) \
    { key, kind, offsetof(armt_config, member), 2 }
    F("hidden_size", F_INT, hidden_size),
    F("n_layers", F_INT, n_layers),
    F("n_heads", F_INT, n_heads),
    F("n_kv_heads", F_INT, n_kv_heads),
    F("head_dim", F_INT, head_dim),
    F("intermediate_size", F_INT, intermediate_size),
    F("vocab_size", F_INT, vocab_size),
    F("rms_norm_eps", F_FLOAT, rms_norm_eps),
    F("rope_theta", F_DOUBLE, rope_theta),
    F("rope_type", F_ROPE, rope_type),
    F("rope_factor", F_DOUBLE, rope_factor),
    F("rope_low_freq_factor", F_DOUBLE, rope_low_freq_factor),
    F("rope_high_freq_factor", F_DOUBLE, rope_high_freq_factor),
    F("rope_original_max_pos", F_INT, rope_original_max_pos),
    F("tie_word_embeddings", F_INT, tie_word_embeddings),
    F("num_mem_tokens", F_INT, num_mem_tokens),
    F("d_mem", F_INT, d_mem),
    F("segment_size", F_INT, segment_size),
    F("correction", F_INT, correction),
    F2("variant", F_VARIANT, variant),
    F2("mem_heads", F_INT, mem_heads),
    F2("no_denom", F_INT, no_denom),
    F2("gating", F_INT, gating),
    F2("use_sink", F_INT, use_sink),
    F2("sliding_window", F_INT, sliding_window),
    F2("memory_off_layers", F_MEMOFF, memory_off),
#undef F
#undef F2
};
#define N_FULL (sizeof full_fields / sizeof full_fields[0])

char *armt_config_to_json(const armt_config *cfg) {
    if (!cfg) return NULL;
    json_t *o = json_object();
    if (!o) return NULL;
    const char *base = (const char *)cfg;
    int bad = json_object_set_new(o, "version", json_integer(ARMT_CONFIG_JSON_VERSION));
    for (size_t i = 0; i < N_FULL && !bad; i++) {
        const void *p = base + full_fields[i].offset;
        json_t *v = NULL;
        switch (full_fields[i].kind) {
        case F_INT: v = json_integer(*(const int *)p); break;
        /* a float printed with 17 significant digits reads back to the same float */
        case F_FLOAT: v = json_real((double)*(const float *)p); break;
        case F_DOUBLE: v = json_real(*(const double *)p); break;
        case F_ROPE:
            v = json_string(*(const armt_rope_type *)p == ARMT_ROPE_LLAMA3 ? "llama3" : "default");
            break;
        case F_VARIANT: v = json_string(armt_variant_name(*(const armt_variant *)p)); break;
        case F_MEMOFF:
            v = json_array();
            for (int l = 0; v && l < ARMT_MAX_WRAP_LAYERS; l++)
                if (armt_config_memory_off(cfg, l) && json_array_append_new(v, json_integer(l)) != 0) {
                    json_decref(v);
                    v = NULL;
                }
            break;
        }
        bad = json_object_set_new(o, full_fields[i].key, v) != 0; /* a NULL v (inf/nan) fails here */
    }
    char *text = bad ? NULL : json_dumps(o, JSON_COMPACT);
    json_decref(o);
    return text;
}

armt_status armt_variant_parse(const char *name, armt_variant *out, armt_err *err) {
    static const armt_variant all[] = {ARMT_VARIANT_PAPER, ARMT_VARIANT_AMT, ARMT_VARIANT_ARMT,
                                       ARMT_VARIANT_INNER};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++)
        if (strcmp(name, armt_variant_name(all[i])) == 0) {
            *out = all[i];
            return ARMT_OK;
        }
    return armt_err_set(err, ARMT_STATUS_UNSUPPORTED, "variant '%s' is not known (paper, amt, armt, inner)",
                        name);
}

/* A list of layer indices: the layers without memory. */
static armt_status read_memory_off(json_t *o, const char *key, armt_config *cfg, armt_err *err) {
    json_t *a = json_object_get(o, key);
    ARMT_RETURN_IF(!a, ARMT_STATUS_BAD_CONFIG, "armt_config: field '%s' is missing", key);
    ARMT_RETURN_IF(!json_is_array(a), ARMT_STATUS_BAD_CONFIG, "armt_config: field '%s' must be an array",
                   key);
    memset(cfg->memory_off, 0, sizeof cfg->memory_off);
    for (size_t i = 0; i < json_array_size(a); i++) {
        json_t *v = json_array_get(a, i);
        ARMT_RETURN_IF(!json_is_integer(v) || json_integer_value(v) < 0 ||
                           json_integer_value(v) >= ARMT_MAX_WRAP_LAYERS,
                       ARMT_STATUS_BAD_CONFIG, "armt_config: '%s' must hold layer indices below %d", key,
                       ARMT_MAX_WRAP_LAYERS);
        int l = (int)json_integer_value(v);
        armt_config_set_memory_off(cfg, l);
    }
    return ARMT_OK;
}

/* Strict inverse of armt_config_to_json: every field must be present, so a checkpoint written by an older
 * library with fewer fields is caught by the version number or a "missing field" message, never read
 * with silent zeros. Unknown extra keys are ignored. */
armt_status armt_config_from_json_full(const char *json_text, size_t len, armt_config *cfg, armt_err *err) {
    ARMT_RETURN_IF(!cfg, ARMT_STATUS_INVALID_ARGUMENT, "armt_config_from_json_full: NULL config");
    json_t *o;
    ARMT_TRY(armt_json_parse_object(json_text, len, "armt_config", &o, err));
    armt_config tmp;
    memset(&tmp, 0, sizeof tmp);
    char *base = (char *)&tmp;
    int version = 0;
    armt_status st = armt_json_get_int(o, "", "version", 1, &version, err);
    if (st == ARMT_OK && (version < 1 || version > ARMT_CONFIG_JSON_VERSION))
        st = armt_err_set(err, ARMT_STATUS_UNSUPPORTED, "armt_config: version %d not supported (1 to %d)",
                          version, ARMT_CONFIG_JSON_VERSION);
    for (size_t i = 0; i < N_FULL && st == ARMT_OK; i++) {
        void *p = base + full_fields[i].offset;
        const char *key = full_fields[i].key;
        double d = 0;
        const char *s = NULL;
        if (full_fields[i].since > version) continue; /* zero: the paper's math */
        switch (full_fields[i].kind) {
        case F_VARIANT:
            st = armt_json_get_str(o, "", key, 1, &s, err);
            if (st != ARMT_OK) break;
            st = armt_variant_parse(s, (armt_variant *)p, err);
            break;
        case F_MEMOFF: st = read_memory_off(o, key, &tmp, err); break;
        case F_INT: st = armt_json_get_int(o, "", key, 1, (int *)p, err); break;
        case F_FLOAT:
            st = armt_json_get_num(o, "", key, 1, &d, err);
            *(float *)p = (float)d;
            break;
        case F_DOUBLE: st = armt_json_get_num(o, "", key, 1, (double *)p, err); break;
        case F_ROPE:
            st = armt_json_get_str(o, "", key, 1, &s, err);
            if (st != ARMT_OK) break;
            if (strcmp(s, "llama3") == 0)
                *(armt_rope_type *)p = ARMT_ROPE_LLAMA3;
            else if (strcmp(s, "default") == 0)
                *(armt_rope_type *)p = ARMT_ROPE_DEFAULT;
            else
                st = armt_err_set(err, ARMT_STATUS_UNSUPPORTED, "armt_config: rope_type '%s' not supported",
                                  s);
            break;
        }
    }
    json_decref(o);
    if (st == ARMT_OK) *cfg = tmp;
    return st;
}
