/*
 * config_armt.c - config.json as the ARMT reference's save_pretrained writes it (model_type "armt" or
 * "armt_sw"): the base LLaMA configuration nested in base_model_config (or named by base_model_name and read
 * from a local directory), the ARMT keys at top level. See armt_config.h and docs/VARIANTS.md.
 *
 * Every ARMT key of the reference's ARMTConfig classes is in the table below, with what it does here: it
 * sets a field, it is refused where its value changes inference in a way not implemented, or it has no
 * effect on inference (training switches, dtypes of the reference's own tensors). A key outside the table
 * and outside transformers' own bookkeeping is logged as a warning, never dropped silently.
 */
#include "config.h"

#include "io/armt_config.h"
#include "io/json_read.h"
#include "common/util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_BASE_CONFIG_BYTES (16u << 20)

typedef enum {
    K_INT,    /* an int field                                         */
    K_BOOL,   /* a 0/1 field                                          */
    K_NOT,    /* a 0/1 field holding the negation (use_denom)         */
    K_HEADS,  /* n_heads -> mem_heads                                 */
    K_WRAP,   /* wrap_layers: list of booleans, one per layer         */
    K_ALIGN,  /* segment_alignment: "left" (or null) only             */
    K_REFUSE, /* refused when true                                    */
    K_NONE,   /* no effect on inference                               */
    K_BASE,   /* base_model_name / base_model_config: read apart      */
} key_kind;

/* gen: 2 = modeling_amt (ARMTForCausalLM of model.py), 3 = src/armt.py, 0 = both. */
static const struct {
    const char *key;
    key_kind kind;
    size_t offset;
    int gen;
    const char *why; /* K_REFUSE: what is missing; K_NONE: why it does not matter */
} armt_keys[] = {
#define OFF(m) offsetof(armt_config, m)
    {"base_model_name", K_BASE, 0, 0, NULL},
    {"base_model_config", K_BASE, 0, 0, NULL},
    {"num_mem_tokens", K_INT, OFF(num_mem_tokens), 0, NULL},
    {"d_mem", K_INT, OFF(d_mem), 0, NULL},
    {"segment_size", K_INT, OFF(segment_size), 0, NULL},
    {"correction", K_BOOL, OFF(correction), 0, NULL},
    {"use_denom", K_NOT, OFF(no_denom), 0, NULL},
    {"segment_alignment", K_ALIGN, 0, 0, NULL},
    {"n_heads", K_HEADS, OFF(mem_heads), 2, NULL},
    {"gating", K_BOOL, OFF(gating), 2, NULL},
    {"use_sink", K_BOOL, OFF(use_sink), 0, NULL},
    {"sliding_window", K_BOOL, OFF(sliding_window), 2, NULL},
    {"wrap_layers", K_WRAP, 0, 3, NULL},
    {"act_on", K_REFUSE, 0, 2, "adaptive computation time (ACT) is not implemented"},
    {"attend_to_previous_input", K_REFUSE, 0, 2,
     "attending to the previous segment's input is not implemented (it fails inside the reference itself)"},
    {"wrap_pos", K_REFUSE, 0, 2, "wrap_pos re-indexes GPT-2 position embeddings; LLaMA has none"},
    {"layers_attr", K_NONE, 0, 0, "where the reference finds the layers; the tensor names say it here"},
    {"freeze_mem", K_NONE, 0, 0, "training only"},
    {"max_hop", K_NONE, 0, 2, "used only with act_on"},
    {"act_type", K_NONE, 0, 2, "used only with act_on"},
    {"act_format", K_NONE, 0, 2, "used only with act_on"},
    {"noisy_halting", K_NONE, 0, 2, "used only with act_on"},
    {"constant_depth", K_NONE, 0, 2, "used only with act_on"},
    {"time_penalty", K_NONE, 0, 2, "used only with act_on (training loss)"},
    {"model_dtype", K_NONE, 0, 3, "the weights' dtype is read from the files; precision is the caller's"},
    {"memory_dtype", K_NONE, 0, 3, "libarmt keeps the memory state in fp32"},
    {"attn_implementation", K_NONE, 0, 3, "eager and sdpa compute the same attention"},
    {"base_attn_implementation", K_NONE, 0, 3, "eager and sdpa compute the same attention"},
#undef OFF
};
#define N_ARMT_KEYS (sizeof armt_keys / sizeof armt_keys[0])

/* transformers' PretrainedConfig bookkeeping: none changes an ARMT forward. */
static const char *const hf_keys[] = {
    "model_type",
    "architectures",
    "transformers_version",
    "torch_dtype",
    "dtype",
    "auto_map",
    "_name_or_path",
    "return_dict",
    "output_hidden_states",
    "output_attentions",
    "use_cache",
    "tie_word_embeddings",
    "bos_token_id",
    "eos_token_id",
    "pad_token_id",
    "sep_token_id",
    "decoder_start_token_id",
    "id2label",
    "label2id",
    "problem_type",
    "tokenizer_class",
    "is_encoder_decoder",
    "chunk_size_feed_forward",
    "torchscript",
    "pruned_heads",
    "tf_legacy_loss",
    "use_bfloat16",
    "add_cross_attention",
    "cross_attention_hidden_size",
    "is_decoder",
    "finetuning_task",
    "prefix",
    "task_specific_params",
    "_attn_implementation_autoset",
    "num_labels",
    "output_scores",
    "return_dict_in_generate",
};

static int is_hf_key(const char *key) {
    for (size_t i = 0; i < sizeof hf_keys / sizeof hf_keys[0]; i++)
        if (strcmp(key, hf_keys[i]) == 0) return 1;
    return 0;
}

int armt_config_is_reference(const char *json_text, size_t len) {
    json_t *o = json_loadb(json_text, len, 0, NULL);
    int yes = 0;
    if (o && json_is_object(o)) {
        json_t *t = json_object_get(o, "model_type");
        yes = json_is_string(t) &&
              (strcmp(json_string_value(t), "armt") == 0 || strcmp(json_string_value(t), "armt_sw") == 0);
    }
    json_decref(o);
    return yes;
}

/* The base configuration: base_model_config (an object, or a string naming a model like
 * base_model_name) or base_model_name, read from base_dir/config.json. */
static armt_status read_base(json_t *o, const char *base_dir, armt_config *cfg, armt_err *err) {
    json_t *bc = json_object_get(o, "base_model_config");
    json_t *bn = json_object_get(o, "base_model_name");
    if (bc && json_is_null(bc)) bc = NULL;
    if (bn && json_is_null(bn)) bn = NULL;
    ARMT_RETURN_IF(
        bc && bn, ARMT_STATUS_BAD_CONFIG,
        "config: both base_model_config and base_model_name are set (the reference refuses that too)");
    if (bc && json_is_object(bc)) {
        json_t *mt = json_object_get(bc, "model_type");
        ARMT_RETURN_IF(!json_is_string(mt), ARMT_STATUS_BAD_CONFIG,
                       "config: base_model_config has no model_type");
        return armt_config_hf_fields(bc, cfg, err);
    }
    if (bc) {
        ARMT_RETURN_IF(!json_is_string(bc), ARMT_STATUS_BAD_CONFIG,
                       "config: base_model_config must be an object or a model name, not %s",
                       armt_json_type_name(bc));
        bn = bc;
    }
    ARMT_RETURN_IF(!bn, ARMT_STATUS_BAD_CONFIG,
                   "config: an ARMT config needs base_model_config or base_model_name; it has neither");
    ARMT_RETURN_IF(!json_is_string(bn), ARMT_STATUS_BAD_CONFIG, "config: base_model_name must be a string");
    ARMT_RETURN_IF(
        !base_dir, ARMT_STATUS_BAD_CONFIG,
        "config: the base model is named by base_model_name = '%s' and not stored in the checkpoint; "
        "give a local directory holding its config.json (armt_model_params.base_model_dir, "
        "armt-run --base-model DIR)",
        json_string_value(bn));
    char *path = armt_path_join(base_dir, "config.json"), *text = NULL;
    size_t len = 0;
    ARMT_RETURN_IF(!path, ARMT_STATUS_OUT_OF_HOST_MEMORY, "config: out of memory");
    armt_status st = armt_read_file(path, "base model", MAX_BASE_CONFIG_BYTES, 0, &text, &len, err);
    free(path);
    if (st != ARMT_OK) return st;
    st = armt_config_from_hf_json(text, len, cfg, err);
    free(text);
    return st;
}

static armt_status read_wrap(json_t *v, armt_config *cfg, armt_err *err) {
    ARMT_RETURN_IF(!json_is_array(v), ARMT_STATUS_BAD_CONFIG,
                   "config: wrap_layers must be a list of booleans");
    ARMT_RETURN_IF((int)json_array_size(v) != cfg->n_layers, ARMT_STATUS_BAD_CONFIG,
                   "config: wrap_layers has %zu entries for %d layers", json_array_size(v), cfg->n_layers);
    ARMT_RETURN_IF(cfg->n_layers > ARMT_MAX_WRAP_LAYERS, ARMT_STATUS_UNSUPPORTED,
                   "config: wrap_layers on more than %d layers is not supported", ARMT_MAX_WRAP_LAYERS);
    for (size_t l = 0; l < json_array_size(v); l++) {
        json_t *b = json_array_get(v, l);
        ARMT_RETURN_IF(!json_is_boolean(b), ARMT_STATUS_BAD_CONFIG,
                       "config: wrap_layers[%zu] must be a boolean", l);
        if (json_is_false(b)) armt_config_set_memory_off(cfg, (int)l);
    }
    return ARMT_OK;
}

static armt_status read_key(json_t *o, const char *key, json_t *v, size_t i, armt_config *cfg, int *gen,
                            armt_err *err) {
    char *base = (char *)cfg;
    int b = 0;
    const char *s = NULL;
    if (armt_keys[i].gen) {
        ARMT_RETURN_IF(*gen && *gen != armt_keys[i].gen, ARMT_STATUS_BAD_CONFIG,
                       "config: '%s' belongs to the %s ARMT code, but other keys are of the %s one", key,
                       armt_keys[i].gen == 2 ? "modeling_amt" : "src/armt.py",
                       *gen == 2 ? "modeling_amt" : "src/armt.py");
        *gen = armt_keys[i].gen;
    }
    switch (armt_keys[i].kind) {
    case K_INT: return armt_json_get_int(o, "", key, 0, (int *)(base + armt_keys[i].offset), err);
    case K_BOOL: return armt_json_get_bool(o, "", key, 0, (int *)(base + armt_keys[i].offset), err);
    case K_NOT:
        ARMT_TRY(armt_json_get_bool(o, "", key, 0, &b, err));
        *(int *)(base + armt_keys[i].offset) = !b;
        return ARMT_OK;
    case K_HEADS:
        ARMT_TRY(armt_json_get_int(o, "", key, 0, &cfg->mem_heads, err));
        ARMT_RETURN_IF(cfg->mem_heads < 1, ARMT_STATUS_BAD_CONFIG, "config: n_heads = %d must be >= 1",
                       cfg->mem_heads);
        return ARMT_OK;
    case K_WRAP: return read_wrap(v, cfg, err);
    case K_ALIGN:
        ARMT_TRY(armt_json_get_str(o, "", key, 0, &s, err));
        ARMT_RETURN_IF(s && strcmp(s, "left") != 0, ARMT_STATUS_UNSUPPORTED,
                       "config: segment_alignment = '%s' is not supported (only left)", s);
        return ARMT_OK;
    case K_REFUSE:
        if (json_is_boolean(v) || json_is_integer(v))
            ARMT_TRY(armt_json_get_bool(o, "", key, 0, &b, err));
        else
            b = 1; /* a value of another type is not "off" */
        ARMT_RETURN_IF(b, ARMT_STATUS_UNSUPPORTED, "config: %s = true: %s", key, armt_keys[i].why);
        return ARMT_OK;
    case K_NONE:
    case K_BASE: return ARMT_OK;
    }
    return ARMT_OK;
}

armt_status armt_config_from_reference_json(const char *json_text, size_t len, const char *base_dir,
                                            armt_config *cfg, armt_err *err) {
    ARMT_RETURN_IF(!cfg, ARMT_STATUS_INVALID_ARGUMENT, "armt_config_from_reference_json: NULL config");
    json_t *o;
    ARMT_TRY(armt_json_parse_object(json_text, len, "config.json", &o, err));
    armt_config tmp;
    memset(&tmp, 0, sizeof tmp);
    const char *mt = NULL;
    armt_status st = armt_json_get_str(o, "", "model_type", 1, &mt, err);
    int sw = 0, gen = 0, inner = 0;
    if (st == ARMT_OK) {
        sw = strcmp(mt, "armt_sw") == 0;
        if (!sw && strcmp(mt, "armt") != 0)
            st = armt_err_set(err, ARMT_STATUS_UNSUPPORTED, "config: model_type '%s' is not an ARMT config",
                              mt);
    }
    if (st == ARMT_OK) {
        /* the class that saved it: only `architectures` tells the inner loop (inner_loop.py) from
         * modeling_amt's ARMTForCausalLM; both write generation 2's ARMTConfig */
        json_t *arch = json_object_get(o, "architectures");
        for (size_t i = 0; json_is_array(arch) && i < json_array_size(arch); i++) {
            const char *a = json_string_value(json_array_get(arch, i));
            if (a && strcmp(a, "InnerLoopARMTForCausalLM") == 0) inner = 1;
        }
        if (inner) gen = 2;
    }
    if (st == ARMT_OK) st = read_base(o, base_dir, &tmp, err);
    if (st == ARMT_OK) {
        /* the reference's defaults (both generations): M 16, d_mem 512, L 512, correction, use_denom */
        tmp.num_mem_tokens = 16;
        tmp.d_mem = 512;
        tmp.segment_size = 512;
        tmp.correction = 1;
        tmp.no_denom = 0;
        tmp.mem_heads = 1;
        memset(tmp.memory_off, 0, sizeof tmp.memory_off);
        if (sw) {
            tmp.sliding_window = 1;
            gen = 3;
        }
    }
    const char *key;
    json_t *v;
    json_object_foreach(o, key, v) {
        if (st != ARMT_OK) break;
        size_t i = 0;
        while (i < N_ARMT_KEYS && strcmp(armt_keys[i].key, key) != 0)
            i++;
        if (i < N_ARMT_KEYS) {
            if (!json_is_null(v) || armt_keys[i].kind == K_BASE) st = read_key(o, key, v, i, &tmp, &gen, err);
        } else if (!is_hf_key(key)) {
            armt_log(ARMT_LOG_WARN, "config.json: key '%s' is not an ARMT key libarmt knows; ignored", key);
        }
    }
    json_decref(o);
    if (st != ARMT_OK) return st;
    /* modeling_amt's keys name generation 2; otherwise src/armt.py (whose math is generation 2's with one
     * head and no gating, so a config with only common keys means the same to both) */
    tmp.variant = inner ? ARMT_VARIANT_INNER : gen == 2 ? ARMT_VARIANT_AMT : ARMT_VARIANT_ARMT;
    *cfg = tmp;
    return ARMT_OK;
}
