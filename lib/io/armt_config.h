/*
 * armt_config.h - model configuration: presets, validation, and the three JSON forms it is read from or
 * written to.
 *
 *   HF config.json     the base LLaMA's fields (transformers 4.x and 5.x rope spellings), plus any ARMT
 *                      fields found at top level                         -> armt_config_from_hf_json
 *   armt_config.json   ARMT fields only, applied on top of a base config -> armt_config_apply_armt_json
 *   full form          every armt_config field, written by the library into a saved checkpoint's
 *                      safetensors "__metadata__" under "armt_config"   -> armt_config_to_json /
 * _from_json_full
 *
 * The public functions armt_config_preset, armt_config_preset_names, armt_config_validate and
 * armt_config_d_key (include/armt.h) are implemented in armt_config.c as well.
 *
 * (Named armt_config.h, not config.h: lib/config.h would shadow the autoconf config.h that the library
 * sources include with #include "config.h".)
 */
#ifndef ARMT_CONFIG_INTERNAL_H
#define ARMT_CONFIG_INTERNAL_H

#include "common/error.h"

#include <stddef.h>

/* Value of "version" in the full form; bump when a field changes meaning. */
#define ARMT_CONFIG_JSON_VERSION 2 /* 2: the variant fields (version 1 reads them as zero) */

/* Parses a Hugging Face LLaMA config.json into *cfg (overwritten entirely).
 * Required: hidden_size, num_hidden_layers, num_attention_heads, intermediate_size, vocab_size.
 * Defaults: num_key_value_heads = num_attention_heads, head_dim = hidden_size / num_attention_heads,
 * rms_norm_eps = 1e-6, rope_theta = 10000, no rope scaling, tie_word_embeddings = false.
 * Rope: either rope_theta + rope_scaling {rope_type|type, factor, low_freq_factor, high_freq_factor,
 * original_max_position_embeddings} (transformers 4.x) or rope_parameters {rope_theta, rope_type, ...}
 * (5.x; takes precedence when present). Rope types "default" and "llama3" only (others: UNSUPPORTED).
 * hidden_act other than "silu" and attention_bias / mlp_bias = true are UNSUPPORTED.
 * ARMT fields read when present at top level: num_mem_tokens, d_mem, segment_size, correction; absent
 * ones get num_mem_tokens = 0 and segment_size = 0 ("not known yet": the loader fills them from the
 * tensors or the params), d_mem = 64, correction = 1.
 * Wrong JSON types or missing required fields: BAD_CONFIG naming the field. The result is not validated
 * (the ARMT fields may still be missing): call armt_config_check once everything is applied. */
armt_status armt_config_from_hf_json(const char *json_text, size_t len, armt_config *cfg, armt_err *err);

/* 1 when the text is a JSON object whose model_type is "armt" or "armt_sw" (the ARMT reference's
 * save_pretrained form), else 0. */
int armt_config_is_reference(const char *json_text, size_t len);

/* Parses the ARMT reference's config.json (config_armt.c; docs/VARIANTS.md): the base LLaMA from
 * base_model_config, or from base_dir/config.json when the file names it by base_model_name (NULL base_dir:
 * BAD_CONFIG naming base_model_name); the ARMT keys with the reference's defaults (num_mem_tokens 16,
 * d_mem 512, segment_size 512, correction, use_denom). Keys that change inference in a way not implemented
 * (act_on, attend_to_previous_input, wrap_pos, segment_alignment other than left) are UNSUPPORTED naming the
 * key. variant: ARMT_VARIANT_INNER when `architectures` names InnerLoopARMTForCausalLM, ARMT_VARIANT_AMT when
 * a modeling_amt-only key is present, else ARMT_VARIANT_ARMT. */
armt_status armt_config_from_reference_json(const char *json_text, size_t len, const char *base_dir,
                                            armt_config *cfg, armt_err *err);

/* The HF fields of a parsed LLaMA config object into *cfg (overwritten; see armt_config_from_hf_json). */
struct json_t;
armt_status armt_config_hf_fields(struct json_t *o, armt_config *cfg, armt_err *err);

/* Applies an ARMT config file: the present fields among num_mem_tokens, d_mem, segment_size, correction
 * replace those of *cfg; other fields are left alone. */
armt_status armt_config_apply_armt_json(const char *json_text, size_t len, armt_config *cfg, armt_err *err);

/* Compact JSON with every field and "version"; malloc'ed (free()); NULL when out of memory or when a
 * floating field is not finite. */
char *armt_config_to_json(const armt_config *cfg);

/* Inverse of armt_config_to_json: every field required, "version" must be ARMT_CONFIG_JSON_VERSION. */
armt_status armt_config_from_json_full(const char *json_text, size_t len, armt_config *cfg, armt_err *err);

/* "paper", "amt", "armt" or "inner" into *out; UNSUPPORTED naming anything else. */
armt_status armt_variant_parse(const char *name, armt_variant *out, armt_err *err);

/* Memory heads H (mem_heads, at least 1); whether a layer has no associative memory (wrap_layers); how
 * many layers have one. */
int armt_config_mem_heads(const armt_config *c);
int armt_config_memory_off(const armt_config *c, int layer);
int armt_config_memory_layers(const armt_config *c);
/* Marks layer (0 <= layer < ARMT_MAX_WRAP_LAYERS) as having no memory. */
void armt_config_set_memory_off(armt_config *c, int layer);

/* The checks of armt_config_validate, recorded in err with ARMT_STATUS_BAD_CONFIG. */
armt_status armt_config_check(const armt_config *cfg, armt_err *err);

#endif
