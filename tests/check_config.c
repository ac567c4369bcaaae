/*
 * check_config.c - presets, validation and the JSON forms of armt_config (lib/io/armt_config.c).
 *
 * Expected values are written out literally from the published configs (docs/MATH.md §1, HF config.json
 * files), not taken from the presets under test.
 */
#include "io/armt_config.h"

#include "testutil.h"

#include <check.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static armt_err err;

static void setup(void) { armt_err_init(&err); }
static void teardown(void) { armt_err_free(&err); }

#define EXPECT_MSG(substr)                                                                 \
    ck_assert_msg(strstr(armt_err_msg(&err), (substr)) != NULL, "message '%s' lacks '%s'", \
                  armt_err_msg(&err), (substr))

/* Field-by-field equality (struct padding makes memcmp unreliable). */
static void assert_cfg_eq(const armt_config *a, const armt_config *b) {
    ck_assert_int_eq(a->hidden_size, b->hidden_size);
    ck_assert_int_eq(a->n_layers, b->n_layers);
    ck_assert_int_eq(a->n_heads, b->n_heads);
    ck_assert_int_eq(a->n_kv_heads, b->n_kv_heads);
    ck_assert_int_eq(a->head_dim, b->head_dim);
    ck_assert_int_eq(a->intermediate_size, b->intermediate_size);
    ck_assert_int_eq(a->vocab_size, b->vocab_size);
    ck_assert(a->rms_norm_eps == b->rms_norm_eps);
    ck_assert(a->rope_theta == b->rope_theta);
    ck_assert_int_eq(a->rope_type, b->rope_type);
    if (a->rope_type == ARMT_ROPE_LLAMA3) {
        ck_assert(a->rope_factor == b->rope_factor);
        ck_assert(a->rope_low_freq_factor == b->rope_low_freq_factor);
        ck_assert(a->rope_high_freq_factor == b->rope_high_freq_factor);
        ck_assert_int_eq(a->rope_original_max_pos, b->rope_original_max_pos);
    }
    ck_assert_int_eq(a->tie_word_embeddings, b->tie_word_embeddings);
    ck_assert_int_eq(a->num_mem_tokens, b->num_mem_tokens);
    ck_assert_int_eq(a->d_mem, b->d_mem);
    ck_assert_int_eq(a->segment_size, b->segment_size);
    ck_assert_int_eq(a->correction, b->correction);
    ck_assert_int_eq(a->variant, b->variant);
    ck_assert_int_eq(a->mem_heads, b->mem_heads);
    ck_assert_int_eq(a->no_denom, b->no_denom);
    ck_assert_int_eq(a->gating, b->gating);
    ck_assert_int_eq(a->use_sink, b->use_sink);
    ck_assert_int_eq(a->sliding_window, b->sliding_window);
    for (int w = 0; w < 4; w++)
        ck_assert(a->memory_off[w] == b->memory_off[w]);
}

static armt_status hf(const char *json, armt_config *cfg) {
    return armt_config_from_hf_json(json, strlen(json), cfg, &err);
}

/* ===================================================================================================== */
/* Presets                                                                                               */
/* ===================================================================================================== */

/* Every listed preset exists and validates; an unknown name is refused and named. */
START_TEST(test_presets_valid) {
    const char *const *names = armt_config_preset_names();
    int n = 0;
    for (; names[n]; n++) {
        armt_config c;
        char why[256] = "untouched";
        ck_assert_int_eq(armt_config_preset(names[n], &c), ARMT_OK);
        ck_assert_msg(armt_config_validate(&c, why, sizeof why) == ARMT_OK, "%s: %s", names[n], why);
        ck_assert_str_eq(why, "");
    }
    ck_assert_int_eq(n, 7);
    armt_config c;
    ck_assert_int_eq(armt_config_preset("llama-7b", &c), ARMT_STATUS_INVALID_ARGUMENT);
    ck_assert_ptr_nonnull(strstr(armt_last_error(), "llama-7b"));
    ck_assert_int_eq(armt_config_preset(NULL, &c), ARMT_STATUS_INVALID_ARGUMENT);
}
END_TEST

/* The preset numbers, written out from the published configs. */
START_TEST(test_preset_values) {
    armt_config c;
    ck_assert_int_eq(armt_config_preset("tiny", &c), ARMT_OK);
    ck_assert_int_eq(c.hidden_size, 64);
    ck_assert_int_eq(c.n_layers, 3);
    ck_assert_int_eq(c.n_heads, 4);
    ck_assert_int_eq(c.n_kv_heads, 2);
    ck_assert_int_eq(c.head_dim, 16);
    ck_assert_int_eq(c.intermediate_size, 128);
    ck_assert_int_eq(c.vocab_size, 256);
    ck_assert(c.rms_norm_eps == 1e-5f);
    ck_assert(c.rope_theta == 500000.0);
    ck_assert_int_eq(c.rope_type, ARMT_ROPE_LLAMA3);
    ck_assert(c.rope_factor == 32.0 && c.rope_low_freq_factor == 1.0 && c.rope_high_freq_factor == 4.0);
    ck_assert_int_eq(c.rope_original_max_pos, 8192);
    ck_assert_int_eq(c.tie_word_embeddings, 1);
    ck_assert_int_eq(c.num_mem_tokens, 4);
    ck_assert_int_eq(c.d_mem, 8);
    ck_assert_int_eq(c.segment_size, 16);
    ck_assert_int_eq(c.correction, 1);
    ck_assert_int_eq(armt_config_d_key(&c), 48);

    ck_assert_int_eq(armt_config_preset("tiny-gqa", &c), ARMT_OK);
    ck_assert_int_eq(c.n_heads, 8);
    ck_assert_int_eq(c.n_kv_heads, 2);
    ck_assert_int_eq(c.head_dim, 8);
    ck_assert_int_eq(c.tie_word_embeddings, 0);

    ck_assert_int_eq(armt_config_preset("llama-160m", &c), ARMT_OK);
    ck_assert_int_eq(c.hidden_size, 768);
    ck_assert_int_eq(c.n_kv_heads, 12);
    ck_assert_int_eq(c.vocab_size, 32000);
    ck_assert(c.rms_norm_eps == 1e-6f);
    ck_assert(c.rope_theta == 10000.0);
    ck_assert_int_eq(c.rope_type, ARMT_ROPE_DEFAULT);
    ck_assert_int_eq(c.tie_word_embeddings, 0);
    ck_assert_int_eq(c.num_mem_tokens, 128);
    ck_assert_int_eq(c.segment_size, 1024);

    ck_assert_int_eq(armt_config_preset("llama-3.2-1b", &c), ARMT_OK);
    ck_assert_int_eq(c.hidden_size, 2048);
    ck_assert_int_eq(c.n_layers, 16);
    ck_assert_int_eq(c.n_heads, 32);
    ck_assert_int_eq(c.n_kv_heads, 8);
    ck_assert_int_eq(c.intermediate_size, 8192);
    ck_assert_int_eq(c.vocab_size, 128256);
    ck_assert_int_eq(c.tie_word_embeddings, 1);
    ck_assert_int_eq(armt_config_d_key(&c), 384);

    /* meta-llama/Llama-3.2-3B and Llama-3.1-8B config.json */
    ck_assert_int_eq(armt_config_preset("llama-3.2-3b", &c), ARMT_OK);
    ck_assert_int_eq(c.hidden_size, 3072);
    ck_assert_int_eq(c.n_layers, 28);
    ck_assert_int_eq(c.n_heads, 24);
    ck_assert_int_eq(c.n_kv_heads, 8);
    ck_assert_int_eq(c.head_dim, 128);
    ck_assert_int_eq(c.intermediate_size, 8192);
    ck_assert_int_eq(c.tie_word_embeddings, 1);
    ck_assert(c.rope_factor == 32.0);
    ck_assert_int_eq(armt_config_preset("llama-3.1-8b", &c), ARMT_OK);
    ck_assert_int_eq(c.hidden_size, 4096);
    ck_assert_int_eq(c.n_layers, 32);
    ck_assert_int_eq(c.n_heads, 32);
    ck_assert_int_eq(c.n_kv_heads, 8);
    ck_assert_int_eq(c.head_dim, 128);
    ck_assert_int_eq(c.intermediate_size, 14336);
    ck_assert_int_eq(c.vocab_size, 128256);
    ck_assert_int_eq(c.tie_word_embeddings, 0);
    ck_assert(c.rope_factor == 8.0 && c.rope_low_freq_factor == 1.0 && c.rope_high_freq_factor == 4.0);
    ck_assert_int_eq(c.rope_original_max_pos, 8192);
}
END_TEST

/* ===================================================================================================== */
/* Validation: one loop iteration per rule                                                               */
/* ===================================================================================================== */

typedef struct {
    void (*mutate)(armt_config *c);
    const char *msg;
} bad_case;

#define MUT(name, body) \
    static void name(armt_config *c) { body; }
MUT(m_hidden, c->hidden_size = 0)
MUT(m_layers, c->n_layers = -1)
MUT(m_heads, c->n_heads = 0)
MUT(m_kv, c->n_kv_heads = 0)
MUT(m_head_dim, c->head_dim = 0)
MUT(m_ffn, c->intermediate_size = 0)
MUT(m_vocab, c->vocab_size = 0)
MUT(m_mem, c->num_mem_tokens = 0)
MUT(m_dmem, c->d_mem = 0)
MUT(m_seg, c->segment_size = 0)
MUT(m_gqa, c->n_kv_heads = 3)
MUT(m_odd_head, c->head_dim = 15)
MUT(m_eps, c->rms_norm_eps = 0.0f)
MUT(m_eps_nan, c->rms_norm_eps = NAN)
MUT(m_theta, c->rope_theta = -1.0)
MUT(m_factor, c->rope_factor = 0.5)
MUT(m_low, c->rope_low_freq_factor = 0.0)
MUT(m_high, c->rope_high_freq_factor = 1.0) /* == low */
MUT(m_orig, c->rope_original_max_pos = 0)
MUT(m_rope_type, c->rope_type = (armt_rope_type)7)
MUT(m_tie, c->tie_word_embeddings = 2)
MUT(m_corr, c->correction = -1)
#undef MUT

static const bad_case bad_cases[] = {
    {m_hidden, "hidden_size = 0 must be > 0"},
    {m_layers, "n_layers = -1 must be > 0"},
    {m_heads, "n_heads = 0"},
    {m_kv, "n_kv_heads = 0"},
    {m_head_dim, "head_dim = 0"},
    {m_ffn, "intermediate_size = 0"},
    {m_vocab, "vocab_size = 0"},
    {m_mem, "num_mem_tokens = 0"},
    {m_dmem, "d_mem = 0"},
    {m_seg, "segment_size = 0"},
    {m_gqa, "not a multiple of n_kv_heads = 3"},
    {m_odd_head, "head_dim = 15 must be even"},
    {m_eps, "rms_norm_eps"},
    {m_eps_nan, "rms_norm_eps"},
    {m_theta, "rope_theta"},
    {m_factor, "rope_factor = 0.5"},
    {m_low, "rope_low_freq_factor"},
    {m_high, "rope_high_freq_factor"},
    {m_orig, "rope_original_max_pos"},
    {m_rope_type, "rope_type 7"},
    {m_tie, "tie_word_embeddings"},
    {m_corr, "correction"},
};

/* One iteration per validation rule: tiny with one field broken must fail with that field named. */
START_TEST(test_validate_rejects) {
    armt_config c;
    ck_assert_int_eq(armt_config_preset("tiny", &c), ARMT_OK);
    bad_cases[_i].mutate(&c);
    char why[256] = "";
    ck_assert_int_eq(armt_config_validate(&c, why, sizeof why), ARMT_STATUS_BAD_CONFIG);
    ck_assert_msg(strstr(why, bad_cases[_i].msg) != NULL, "why '%s' lacks '%s'", why, bad_cases[_i].msg);
    ck_assert_int_eq(armt_config_check(&c, &err), ARMT_STATUS_BAD_CONFIG);
    EXPECT_MSG(bad_cases[_i].msg);
    /* why may be NULL */
    ck_assert_int_eq(armt_config_validate(&c, NULL, 0), ARMT_STATUS_BAD_CONFIG);
}
END_TEST

/* The llama3 factors are only checked when llama3 scaling is on. */
START_TEST(test_validate_default_rope_ignores_llama3_fields) {
    armt_config c;
    ck_assert_int_eq(armt_config_preset("llama-160m", &c), ARMT_OK);
    c.rope_factor = 0; /* meaningless without llama3 scaling */
    ck_assert_int_eq(armt_config_validate(&c, NULL, 0), ARMT_OK);
    ck_assert_int_eq(armt_config_validate(NULL, NULL, 0), ARMT_STATUS_INVALID_ARGUMENT);
}
END_TEST

/* ===================================================================================================== */
/* HF config.json                                                                                        */
/* ===================================================================================================== */

/* meta-llama/Llama-3.2-1B as written by transformers 4.x ... */
static const char *llama32_v4 =
    "{\"architectures\":[\"LlamaForCausalLM\"],\"attention_bias\":false,\"attention_dropout\":0.0,"
    "\"bos_token_id\":128000,\"eos_token_id\":128001,\"head_dim\":64,\"hidden_act\":\"silu\","
    "\"hidden_size\":2048,\"initializer_range\":0.02,\"intermediate_size\":8192,"
    "\"max_position_embeddings\":131072,\"mlp_bias\":false,\"model_type\":\"llama\","
    "\"num_attention_heads\":32,\"num_hidden_layers\":16,\"num_key_value_heads\":8,"
    "\"pretraining_tp\":1,\"rms_norm_eps\":1e-05,"
    "\"rope_scaling\":{\"factor\":32.0,\"high_freq_factor\":4.0,\"low_freq_factor\":1.0,"
    "\"original_max_position_embeddings\":8192,\"rope_type\":\"llama3\"},"
    "\"rope_theta\":500000.0,\"tie_word_embeddings\":true,\"torch_dtype\":\"bfloat16\","
    "\"transformers_version\":\"4.45.0.dev0\",\"use_cache\":true,\"vocab_size\":128256}";

/* ... and by transformers 5.x (rope_parameters; integers where 4.x wrote reals). */
static const char *llama32_v5 =
    "{\"architectures\":[\"LlamaForCausalLM\"],\"attention_bias\":false,\"head_dim\":64,\"hidden_act\":"
    "\"silu\","
    "\"hidden_size\":2048,\"intermediate_size\":8192,\"max_position_embeddings\":131072,\"mlp_bias\":false,"
    "\"model_type\":\"llama\",\"num_attention_heads\":32,\"num_hidden_layers\":16,\"num_key_value_heads\":8,"
    "\"rms_norm_eps\":1e-05,\"rope_parameters\":{\"factor\":32,\"high_freq_factor\":4,\"low_freq_factor\":1,"
    "\"original_max_position_embeddings\":8192,\"rope_theta\":500000,\"rope_type\":\"llama3\"},"
    "\"tie_word_embeddings\":true,\"dtype\":\"bfloat16\",\"transformers_version\":\"5.0.0\","
    "\"vocab_size\":128256}";

/* The same model in the 4.x and 5.x spellings gives one armt_config. */
START_TEST(test_hf_both_rope_spellings) {
    armt_config a, b;
    ck_assert_int_eq(hf(llama32_v4, &a), ARMT_OK);
    ck_assert_int_eq(hf(llama32_v5, &b), ARMT_OK);
    assert_cfg_eq(&a, &b);

    /* the values themselves, written out */
    ck_assert_int_eq(a.hidden_size, 2048);
    ck_assert_int_eq(a.n_layers, 16);
    ck_assert_int_eq(a.n_heads, 32);
    ck_assert_int_eq(a.n_kv_heads, 8);
    ck_assert_int_eq(a.head_dim, 64);
    ck_assert_int_eq(a.intermediate_size, 8192);
    ck_assert_int_eq(a.vocab_size, 128256);
    ck_assert(a.rms_norm_eps == 1e-5f);
    ck_assert(a.rope_theta == 500000.0);
    ck_assert_int_eq(a.rope_type, ARMT_ROPE_LLAMA3);
    ck_assert(a.rope_factor == 32.0);
    ck_assert(a.rope_low_freq_factor == 1.0);
    ck_assert(a.rope_high_freq_factor == 4.0);
    ck_assert_int_eq(a.rope_original_max_pos, 8192);
    ck_assert_int_eq(a.tie_word_embeddings, 1);

    /* with the ARMT parameters it equals the preset */
    armt_config p;
    ck_assert_int_eq(armt_config_preset("llama-3.2-1b", &p), ARMT_OK);
    a.num_mem_tokens = 128;
    a.segment_size = 1024;
    assert_cfg_eq(&a, &p);
}
END_TEST

/* The older "type" key, 5.x default rope, and an explicit null rope_scaling. */
START_TEST(test_hf_older_type_key_and_plain_rope) {
    /* "type" instead of "rope_type" (early 4.x) */
    const char *j =
        "{\"hidden_size\":64,\"num_hidden_layers\":2,\"num_attention_heads\":4,\"intermediate_size\":128,"
        "\"vocab_size\":100,\"rope_theta\":1000,\"rope_scaling\":{\"type\":\"llama3\",\"factor\":8,"
        "\"low_freq_factor\":1,\"high_freq_factor\":4,\"original_max_position_embeddings\":2048}}";
    armt_config c;
    ck_assert_int_eq(hf(j, &c), ARMT_OK);
    ck_assert_int_eq(c.rope_type, ARMT_ROPE_LLAMA3);
    ck_assert(c.rope_factor == 8.0);
    ck_assert(c.rope_theta == 1000.0);
    ck_assert_int_eq(c.rope_original_max_pos, 2048);

    /* 5.x without scaling */
    j = "{\"hidden_size\":64,\"num_hidden_layers\":2,\"num_attention_heads\":4,\"intermediate_size\":128,"
        "\"vocab_size\":100,\"rope_parameters\":{\"rope_theta\":25000.0,\"rope_type\":\"default\"}}";
    ck_assert_int_eq(hf(j, &c), ARMT_OK);
    ck_assert_int_eq(c.rope_type, ARMT_ROPE_DEFAULT);
    ck_assert(c.rope_theta == 25000.0);

    /* 4.x with "rope_scaling": null */
    j = "{\"hidden_size\":64,\"num_hidden_layers\":2,\"num_attention_heads\":4,\"intermediate_size\":128,"
        "\"vocab_size\":100,\"rope_scaling\":null,\"rope_theta\":20000}";
    ck_assert_int_eq(hf(j, &c), ARMT_OK);
    ck_assert_int_eq(c.rope_type, ARMT_ROPE_DEFAULT);
    ck_assert(c.rope_theta == 20000.0);
}
END_TEST

/* Only the required fields: LlamaConfig defaults fill the rest. */
START_TEST(test_hf_defaults) {
    const char *j = "{\"hidden_size\":96,\"num_hidden_layers\":2,\"num_attention_heads\":6,"
                    "\"intermediate_size\":128,\"vocab_size\":100}";
    armt_config c;
    ck_assert_int_eq(hf(j, &c), ARMT_OK);
    ck_assert_int_eq(c.n_kv_heads, 6);  /* = heads          */
    ck_assert_int_eq(c.head_dim, 16);   /* = 96 / 6         */
    ck_assert(c.rms_norm_eps == 1e-6f); /* LlamaConfig      */
    ck_assert(c.rope_theta == 10000.0);
    ck_assert_int_eq(c.rope_type, ARMT_ROPE_DEFAULT);
    ck_assert_int_eq(c.tie_word_embeddings, 0);
    ck_assert_int_eq(c.num_mem_tokens, 0); /* not known yet    */
    ck_assert_int_eq(c.segment_size, 0);
    ck_assert_int_eq(c.d_mem, 64);
    ck_assert_int_eq(c.correction, 1);
    /* so it does not validate until the ARMT fields are supplied */
    ck_assert_int_eq(armt_config_check(&c, &err), ARMT_STATUS_BAD_CONFIG);
    c.num_mem_tokens = 16;
    c.segment_size = 1008;
    ck_assert_int_eq(armt_config_check(&c, &err), ARMT_OK);
}
END_TEST

/* ARMT fields at the top level of config.json are taken. */
START_TEST(test_hf_armt_fields) {
    const char *j =
        "{\"hidden_size\":64,\"num_hidden_layers\":2,\"num_attention_heads\":4,\"intermediate_size\":128,"
        "\"vocab_size\":100,\"num_mem_tokens\":16,\"d_mem\":32,\"segment_size\":1008,\"correction\":false}";
    armt_config c;
    ck_assert_int_eq(hf(j, &c), ARMT_OK);
    ck_assert_int_eq(c.num_mem_tokens, 16);
    ck_assert_int_eq(c.d_mem, 32);
    ck_assert_int_eq(c.segment_size, 1008);
    ck_assert_int_eq(c.correction, 0);
}
END_TEST

/* Each malformed field: status and the field named in the message. */
static const struct {
    const char *json;
    armt_status status;
    const char *msg;
} hf_bad[] = {
    {"{\"hidden_size\":\"64\",\"num_hidden_layers\":2,\"num_attention_heads\":4,\"intermediate_size\":128,"
     "\"vocab_size\":100}",
     ARMT_STATUS_BAD_CONFIG, "'hidden_size' must be an integer, not a string"},
    {"{\"hidden_size\":64,\"num_hidden_layers\":2.5,\"num_attention_heads\":4,\"intermediate_size\":128,"
     "\"vocab_size\":100}",
     ARMT_STATUS_BAD_CONFIG, "'num_hidden_layers' must be an integer"},
    {"{\"hidden_size\":64,\"num_hidden_layers\":2,\"num_attention_heads\":4,\"intermediate_size\":128}",
     ARMT_STATUS_BAD_CONFIG, "missing field 'vocab_size'"},
    {"{\"hidden_size\":64,\"num_hidden_layers\":2,\"num_attention_heads\":4,\"intermediate_size\":128,"
     "\"vocab_size\":100,\"num_key_value_heads\":[2]}",
     ARMT_STATUS_BAD_CONFIG, "'num_key_value_heads'"},
    {"{\"hidden_size\":64,\"num_hidden_layers\":2,\"num_attention_heads\":4,\"intermediate_size\":128,"
     "\"vocab_size\":100,\"head_dim\":true}",
     ARMT_STATUS_BAD_CONFIG, "'head_dim'"},
    {"{\"hidden_size\":64,\"num_hidden_layers\":2,\"num_attention_heads\":4,\"intermediate_size\":128,"
     "\"vocab_size\":100,\"rms_norm_eps\":\"1e-5\"}",
     ARMT_STATUS_BAD_CONFIG, "'rms_norm_eps' must be a number"},
    {"{\"hidden_size\":64,\"num_hidden_layers\":2,\"num_attention_heads\":4,\"intermediate_size\":128,"
     "\"vocab_size\":100,\"rope_theta\":\"big\"}",
     ARMT_STATUS_BAD_CONFIG, "'rope_theta'"},
    {"{\"hidden_size\":64,\"num_hidden_layers\":2,\"num_attention_heads\":4,\"intermediate_size\":128,"
     "\"vocab_size\":100,\"tie_word_embeddings\":\"yes\"}",
     ARMT_STATUS_BAD_CONFIG, "'tie_word_embeddings' must be a boolean"},
    {"{\"hidden_size\":64,\"num_hidden_layers\":2,\"num_attention_heads\":4,\"intermediate_size\":128,"
     "\"vocab_size\":100,\"rope_scaling\":{\"rope_type\":\"llama3\",\"factor\":\"32\",\"low_freq_factor\":1,"
     "\"high_freq_factor\":4,\"original_max_position_embeddings\":8192}}",
     ARMT_STATUS_BAD_CONFIG, "'rope_scaling.factor' must be a number"},
    {"{\"hidden_size\":64,\"num_hidden_layers\":2,\"num_attention_heads\":4,\"intermediate_size\":128,"
     "\"vocab_size\":100,\"rope_parameters\":{\"rope_type\":\"llama3\",\"factor\":32,\"low_freq_factor\":1,"
     "\"high_freq_factor\":4}}",
     ARMT_STATUS_BAD_CONFIG, "missing field 'rope_parameters.original_max_position_embeddings'"},
    {"{\"hidden_size\":64,\"num_hidden_layers\":2,\"num_attention_heads\":4,\"intermediate_size\":128,"
     "\"vocab_size\":100,\"rope_parameters\":{\"rope_theta\":[1]}}",
     ARMT_STATUS_BAD_CONFIG, "'rope_parameters.rope_theta'"},
    {"{\"hidden_size\":64,\"num_hidden_layers\":2,\"num_attention_heads\":4,\"intermediate_size\":128,"
     "\"vocab_size\":100,\"rope_scaling\":\"llama3\"}",
     ARMT_STATUS_BAD_CONFIG, "'rope_scaling' must be an object"},
    {"{\"hidden_size\":64,\"num_hidden_layers\":2,\"num_attention_heads\":4,\"intermediate_size\":128,"
     "\"vocab_size\":100,\"rope_scaling\":{\"rope_type\":\"yarn\",\"factor\":4}}",
     ARMT_STATUS_UNSUPPORTED, "rope type 'yarn'"},
    {"{\"hidden_size\":64,\"num_hidden_layers\":2,\"num_attention_heads\":4,\"intermediate_size\":128,"
     "\"vocab_size\":100,\"rope_parameters\":{\"rope_type\":\"dynamic\",\"rope_theta\":10000}}",
     ARMT_STATUS_UNSUPPORTED, "rope type 'dynamic'"},
    {"{\"hidden_size\":64,\"num_hidden_layers\":2,\"num_attention_heads\":4,\"intermediate_size\":128,"
     "\"vocab_size\":100,\"rope_scaling\":{\"type\":\"linear\",\"factor\":2}}",
     ARMT_STATUS_UNSUPPORTED, "rope type 'linear'"},
    {"{\"hidden_size\":64,\"num_hidden_layers\":2,\"num_attention_heads\":4,\"intermediate_size\":128,"
     "\"vocab_size\":100,\"hidden_act\":\"gelu\"}",
     ARMT_STATUS_UNSUPPORTED, "hidden_act 'gelu'"},
    {"{\"hidden_size\":64,\"num_hidden_layers\":2,\"num_attention_heads\":4,\"intermediate_size\":128,"
     "\"vocab_size\":100,\"attention_bias\":true}",
     ARMT_STATUS_UNSUPPORTED, "attention_bias"},
    {"{\"hidden_size\":65,\"num_hidden_layers\":2,\"num_attention_heads\":4,\"intermediate_size\":128,"
     "\"vocab_size\":100}",
     ARMT_STATUS_BAD_CONFIG, "hidden_size = 65 is not a multiple of num_attention_heads"},
    {"{\"hidden_size\":64,\"num_hidden_layers\":2,\"num_attention_heads\":4,\"intermediate_size\":128,"
     "\"vocab_size\":4294967296}",
     ARMT_STATUS_BAD_CONFIG, "'vocab_size' = 4294967296 out of range"},
    {"{\"hidden_size\":64,\"num_hidden_layers\":2,\"num_attention_heads\":4,\"intermediate_size\":128,"
     "\"vocab_size\":100,\"segment_size\":\"1024\"}",
     ARMT_STATUS_BAD_CONFIG, "'segment_size'"},
    {"{\"hidden_size\":64,\"num_hidden_layers\":2,\"num_attention_heads\":4,\"intermediate_size\":128,"
     "\"vocab_size\":100,\"correction\":2}",
     ARMT_STATUS_BAD_CONFIG, "'correction' must be a boolean"},
    {"{\"hidden_size\":64,", ARMT_STATUS_BAD_CONFIG, "not valid JSON"},
    {"[64]", ARMT_STATUS_BAD_CONFIG, "not a JSON object"},
    {"{\"hidden_size\":64,\"hidden_size\":64}", ARMT_STATUS_BAD_CONFIG, "duplicate"},
};

/* One iteration per malformed field. */
START_TEST(test_hf_bad_field) {
    armt_config c;
    ck_assert_int_eq(armt_config_preset("tiny", &c), ARMT_OK);
    ck_assert_int_eq(hf(hf_bad[_i].json, &c), hf_bad[_i].status);
    EXPECT_MSG(hf_bad[_i].msg);
    /* *cfg untouched on error */
    armt_config tiny;
    ck_assert_int_eq(armt_config_preset("tiny", &tiny), ARMT_OK);
    assert_cfg_eq(&c, &tiny);
}
END_TEST

/* ===================================================================================================== */
/* armt_config.json and the full form                                                                    */
/* ===================================================================================================== */

/* An ARMT config file changes only the fields it has, and nothing on error. */
START_TEST(test_apply_armt_json) {
    armt_config c;
    ck_assert_int_eq(armt_config_preset("llama-160m", &c), ARMT_OK);
    const char *j =
        "{\"num_mem_tokens\":16,\"segment_size\":1008,\"wrap_pos\":false}"; /* unknown keys ignored */
    ck_assert_int_eq(armt_config_apply_armt_json(j, strlen(j), &c, &err), ARMT_OK);
    ck_assert_int_eq(c.num_mem_tokens, 16);
    ck_assert_int_eq(c.segment_size, 1008);
    ck_assert_int_eq(c.d_mem, 64); /* absent: kept */
    ck_assert_int_eq(c.correction, 1);
    ck_assert_int_eq(c.hidden_size, 768); /* base fields untouched */

    j = "{\"d_mem\":32,\"correction\":0}";
    ck_assert_int_eq(armt_config_apply_armt_json(j, strlen(j), &c, &err), ARMT_OK);
    ck_assert_int_eq(c.d_mem, 32);
    ck_assert_int_eq(c.correction, 0);

    j = "{\"d_mem\":16,\"num_mem_tokens\":\"many\"}";
    ck_assert_int_eq(armt_config_apply_armt_json(j, strlen(j), &c, &err), ARMT_STATUS_BAD_CONFIG);
    EXPECT_MSG("'num_mem_tokens' must be an integer");
    ck_assert_int_eq(c.d_mem, 32); /* nothing applied on error */
}
END_TEST

/* to_json / from_json_full are exact inverses, floats included; non-finite values cannot be written. */
START_TEST(test_full_round_trip) {
    const char *const *names = armt_config_preset_names();
    for (int i = 0; names[i]; i++) {
        armt_config a, b;
        ck_assert_int_eq(armt_config_preset(names[i], &a), ARMT_OK);
        a.rms_norm_eps = 1.2345678e-5f; /* not a short decimal: must still come back bit-exact */
        a.rope_theta = 123456.789;
        char *text = armt_config_to_json(&a);
        ck_assert_ptr_nonnull(text);
        ck_assert_ptr_nonnull(strstr(text, "\"version\":2"));
        ck_assert_ptr_null(strchr(text, '\n')); /* compact */
        memset(&b, 0xff, sizeof b);
        ck_assert_int_eq(armt_config_from_json_full(text, strlen(text), &b, &err), ARMT_OK);
        assert_cfg_eq(&a, &b);
        free(text);
    }
    armt_config c;
    ck_assert_int_eq(armt_config_preset("tiny", &c), ARMT_OK);
    c.rope_theta = INFINITY;
    ck_assert_ptr_null(armt_config_to_json(&c));
}
END_TEST

/* The variant fields survive the full form; a version-1 text (written before they existed) reads them as
 * zero, the paper's math. */
START_TEST(test_full_variant_fields) {
    armt_config a, b;
    ck_assert_int_eq(armt_config_preset("tiny", &a), ARMT_OK);
    a.variant = ARMT_VARIANT_AMT;
    a.mem_heads = 4;
    a.gating = 1;
    a.no_denom = 1;
    a.memory_off[0] = 0x5; /* layers 0 and 2 */
    char *text = armt_config_to_json(&a);
    ck_assert_ptr_nonnull(text);
    ck_assert_ptr_nonnull(strstr(text, "\"variant\":\"amt\""));
    ck_assert_ptr_nonnull(strstr(text, "\"memory_off_layers\":[0,2]"));
    ck_assert_int_eq(armt_config_from_json_full(text, strlen(text), &b, &err), ARMT_OK);
    assert_cfg_eq(&a, &b);
    free(text);

    ck_assert_int_eq(armt_config_preset("tiny", &a), ARMT_OK);
    text = armt_config_to_json(&a);
    char *v = strstr(text, "\"version\":2");
    ck_assert_ptr_nonnull(v);
    v[10] = '1';
    char *cut = strstr(text, ",\"variant\""); /* drop every field of version 2 */
    ck_assert_ptr_nonnull(cut);
    strcpy(cut, "}");
    memset(&b, 0xff, sizeof b);
    ck_assert_int_eq(armt_config_from_json_full(text, strlen(text), &b, &err), ARMT_OK);
    assert_cfg_eq(&a, &b);
    free(text);

    const char *j = "{\"version\":2,\"variant\":\"rwkv\"}";
    ck_assert_int_ne(armt_config_from_json_full(j, strlen(j), &b, &err), ARMT_OK);
}
END_TEST

/* The full form is strict: every field, and a known version. */
START_TEST(test_full_rejects) {
    armt_config a, b;
    ck_assert_int_eq(armt_config_preset("tiny", &a), ARMT_OK);
    char *text = armt_config_to_json(&a);
    ck_assert_ptr_nonnull(text);

    /* a missing field */
    char *p = strstr(text, "\"d_mem\":8,");
    ck_assert_ptr_nonnull(p);
    memmove(p, p + strlen("\"d_mem\":8,"), strlen(p + strlen("\"d_mem\":8,")) + 1);
    ck_assert_int_eq(armt_config_from_json_full(text, strlen(text), &b, &err), ARMT_STATUS_BAD_CONFIG);
    EXPECT_MSG("missing field 'd_mem'");
    free(text);

    const char *j = "{\"version\":3}";
    ck_assert_int_eq(armt_config_from_json_full(j, strlen(j), &b, &err), ARMT_STATUS_UNSUPPORTED);
    EXPECT_MSG("version 3");
    j = "{\"n_layers\":3}";
    ck_assert_int_eq(armt_config_from_json_full(j, strlen(j), &b, &err), ARMT_STATUS_BAD_CONFIG);
    EXPECT_MSG("missing field 'version'");
}
END_TEST

/* ===================================================================================================== */

static Suite *suite(void) {
    Suite *s = suite_create("config");
    TCase *tc = tcase_create("preset");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, test_presets_valid);
    tcase_add_test(tc, test_preset_values);
    suite_add_tcase(s, tc);

    tc = tcase_create("validate");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_loop_test(tc, test_validate_rejects, 0, (int)(sizeof bad_cases / sizeof bad_cases[0]));
    tcase_add_test(tc, test_validate_default_rope_ignores_llama3_fields);
    suite_add_tcase(s, tc);

    tc = tcase_create("hf_json");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, test_hf_both_rope_spellings);
    tcase_add_test(tc, test_hf_older_type_key_and_plain_rope);
    tcase_add_test(tc, test_hf_defaults);
    tcase_add_test(tc, test_hf_armt_fields);
    tcase_add_loop_test(tc, test_hf_bad_field, 0, (int)(sizeof hf_bad / sizeof hf_bad[0]));
    suite_add_tcase(s, tc);

    tc = tcase_create("armt_json");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, test_apply_armt_json);
    tcase_add_test(tc, test_full_round_trip);
    tcase_add_test(tc, test_full_rejects);
    tcase_add_test(tc, test_full_variant_fields);
    suite_add_tcase(s, tc);
    return s;
}

int main(void) { return test_run_suite(suite(), 0); }
