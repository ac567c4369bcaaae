/*
 * check_checkpoint.c - key layouts, configuration sources and validation of lib/io/checkpoint.c (no OpenCL).
 *
 * The positive tests open the fixtures of tests/data (written by tools/make_fixtures.py from transformers,
 * the ARMT reference code and PEFT; see tests/data/README.md) and compare what armt_ckpt_read returns against
 * the raw tensors of the same files, read through the safetensors reader by their literal names, and against
 * the merged LoRA weights that PEFT computed. The rejection tests build small checkpoints in a temporary
 * directory with the library's safetensors writer and assert both the status and the key named in the
 * message.
 *
 * Fixtures are looked up in $ARMT_TEST_DATA, else in the compile-time ARMT_TEST_DATA_DIR.
 */
#define _GNU_SOURCE
#include "io/checkpoint.h"

#include "io/armt_config.h"
#include "io/safetensors.h"

#include "testutil.h"

#include <check.h>
#include <ftw.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#ifndef ARMT_TEST_DATA_DIR
#define ARMT_TEST_DATA_DIR "tests/data"
#endif

/* ===================================================================================================== */
/* Helpers                                                                                               */
/* ===================================================================================================== */

static char tmpdir[256];
static armt_err err;

static const char *data_dir(void) {
    const char *e = getenv("ARMT_TEST_DATA");
    return (e && *e) ? e : ARMT_TEST_DATA_DIR;
}

/* Path under the fixture directory (a few static slots so several can be alive at once). */
static const char *dpath(const char *rel) {
    static char buf[4][1024];
    static int slot;
    slot = (slot + 1) % 4;
    snprintf(buf[slot], sizeof buf[slot], "%s/%s", data_dir(), rel);
    return buf[slot];
}

static const char *tpath(const char *rel) {
    static char buf[4][1024];
    static int slot;
    slot = (slot + 1) % 4;
    snprintf(buf[slot], sizeof buf[slot], "%s/%s", tmpdir, rel);
    return buf[slot];
}

static void setup(void) {
    snprintf(tmpdir, sizeof tmpdir, "%s/check_ckpt_XXXXXX", getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
    ck_assert_ptr_nonnull(mkdtemp(tmpdir));
    armt_err_init(&err);
}

static int rm_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw) {
    (void)sb, (void)flag, (void)ftw;
    return remove(path);
}

static void teardown(void) {
    nftw(tmpdir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
    armt_err_free(&err);
}

static void write_text(const char *path, const char *text) {
    FILE *f = fopen(path, "w");
    ck_assert_ptr_nonnull(f);
    ck_assert_int_ge(fputs(text, f), 0);
    ck_assert_int_eq(fclose(f), 0);
}

static void link_fixture(const char *fixture_rel, const char *name) {
    char full[PATH_MAX];
    ck_assert_msg(realpath(dpath(fixture_rel), full) != NULL, "fixture %s missing", dpath(fixture_rel));
    ck_assert_int_eq(symlink(full, tpath(name)), 0);
}

/* What armt_model_default_params gives (that lives in model.c, which needs OpenCL): nothing overridden. */
static armt_model_params no_params(void) {
    armt_model_params p;
    memset(&p, 0, sizeof p);
    p.correction = -1;
    return p;
}

static armt_ckpt *open_ok(const char *path, const armt_model_params *p) {
    armt_ckpt *c = NULL;
    armt_status st = armt_ckpt_open(path, p, &c, &err);
    ck_assert_msg(st == ARMT_OK, "armt_ckpt_open(%s): %s: %s", path, armt_status_str(st), armt_err_msg(&err));
    ck_assert_ptr_nonnull(c);
    return c;
}

/* Opens expecting `want`, and a message containing `needle` (when not NULL). */
static void open_fails(const char *path, const armt_model_params *p, armt_status want, const char *needle) {
    armt_ckpt *c = (armt_ckpt *)0x1;
    armt_status st = armt_ckpt_open(path, p, &c, &err);
    ck_assert_msg(st == want, "armt_ckpt_open(%s): got %s (%s), want %s", path, armt_status_str(st),
                  armt_err_msg(&err), armt_status_str(want));
    ck_assert_ptr_null(c);
    if (needle)
        ck_assert_msg(strstr(armt_err_msg(&err), needle) != NULL, "message '%s' lacks '%s'",
                      armt_err_msg(&err), needle);
}

/* A whole tensor of a safetensors file, by its literal name. */
static float *st_load(const char *file, const char *name, uint64_t *numel) {
    st_archive *a = NULL;
    armt_status st = st_open(file, &a, &err);
    ck_assert_msg(st == ARMT_OK, "st_open(%s): %s", file, armt_err_msg(&err));
    const st_tensor *t = st_find(a, name);
    ck_assert_msg(t != NULL, "%s: no tensor '%s'", file, name);
    float *v = malloc((size_t)t->numel * sizeof *v + 1);
    ck_assert_ptr_nonnull(v);
    ck_assert_int_eq(st_read_f32(a, t, 0, t->numel, v, &err), ARMT_OK);
    if (numel) *numel = t->numel;
    st_close(a);
    return v;
}

/* A whole role through the checkpoint. */
static float *ck_load(armt_ckpt *c, armt_role r, int layer, uint64_t *numel) {
    uint64_t n = armt_role_numel(armt_ckpt_config(c), r);
    float *v = malloc((size_t)n * sizeof *v + 1);
    ck_assert_ptr_nonnull(v);
    armt_status st = armt_ckpt_read(c, r, layer, 0, n, v, &err);
    ck_assert_msg(st == ARMT_OK, "read %s layer %d: %s", armt_role_name(r), layer, armt_err_msg(&err));
    if (numel) *numel = n;
    return v;
}

/* Role of a checkpoint == tensor of a file, bit for bit. */
static void assert_role_equals(armt_ckpt *c, armt_role r, int layer, const char *file, const char *name) {
    uint64_t n1, n2;
    float *a = ck_load(c, r, layer, &n1);
    float *b = st_load(file, name, &n2);
    ck_assert_uint_eq(n1, n2);
    ck_assert_msg(memcmp(a, b, (size_t)n1 * sizeof(float)) == 0, "%s layer %d differs from %s",
                  armt_role_name(r), layer, name);
    free(a);
    free(b);
}

/* --- synthetic checkpoints ---------------------------------------------------------------------------- */

/* Shapes of a tiny LLaMA: d 8, 1 layer, 2 heads of 4, 1 KV head, ffn 16, vocab 10 (tied unless stated). */
#define SYN_CONFIG                                                                                 \
    "{\"hidden_size\": 8, \"num_hidden_layers\": 1, \"num_attention_heads\": 2, "                  \
    "\"num_key_value_heads\": 1, \"head_dim\": 4, \"intermediate_size\": 16, \"vocab_size\": 10, " \
    "\"rms_norm_eps\": 1e-5, \"tie_word_embeddings\": %s, \"num_mem_tokens\": 2, \"segment_size\": 4%s}"

typedef struct syn_tensor {
    const char *name;
    int ndim;
    uint64_t shape[2];
} syn_tensor;

static const syn_tensor syn_llama[] = {
    {"model.embed_tokens.weight", 2, {10, 8}},
    {"model.layers.0.self_attn.q_proj.weight", 2, {8, 8}},
    {"model.layers.0.self_attn.k_proj.weight", 2, {4, 8}},
    {"model.layers.0.self_attn.v_proj.weight", 2, {4, 8}},
    {"model.layers.0.self_attn.o_proj.weight", 2, {8, 8}},
    {"model.layers.0.mlp.gate_proj.weight", 2, {16, 8}},
    {"model.layers.0.mlp.up_proj.weight", 2, {16, 8}},
    {"model.layers.0.mlp.down_proj.weight", 2, {8, 16}},
    {"model.layers.0.input_layernorm.weight", 1, {8, 0}},
    {"model.layers.0.post_attention_layernorm.weight", 1, {8, 0}},
    {"model.norm.weight", 1, {8, 0}},
};
#define SYN_N (sizeof syn_llama / sizeof syn_llama[0])

static void write_config(const char *dir_rel, int tied, const char *extra) {
    char text[1024];
    snprintf(text, sizeof text, SYN_CONFIG, tied ? "true" : "false", extra ? extra : "");
    char rel[256];
    snprintf(rel, sizeof rel, "%s/config.json", dir_rel);
    write_text(tpath(rel), text);
}

/* Writes the tensors (values i * 0.001 + tensor index) into path, with optional metadata. */
static void write_st(const char *path, const syn_tensor *ts, size_t n, const char *meta_key,
                     const char *meta) {
    st_writer *w = NULL;
    ck_assert_int_eq(st_writer_open(path, &w, &err), ARMT_OK);
    for (size_t i = 0; i < n; i++)
        ck_assert_int_eq(st_writer_add(w, ts[i].name, ts[i].ndim, ts[i].shape, &err), ARMT_OK);
    if (meta_key) ck_assert_int_eq(st_writer_meta(w, meta_key, meta, &err), ARMT_OK);
    for (size_t i = 0; i < n; i++) {
        uint64_t numel = ts[i].shape[0] * (ts[i].ndim == 2 ? ts[i].shape[1] : 1);
        for (uint64_t j = 0; j < numel; j++) {
            float v = (float)i + 0.001f * (float)j;
            ck_assert_int_eq(st_writer_write(w, &v, 1, &err), ARMT_OK);
        }
    }
    ck_assert_msg(st_writer_close(w, &err) == ARMT_OK, "%s", armt_err_msg(&err));
}

/* A directory "name" holding config.json and model.safetensors of syn_llama with `edit` applied:
 * drop (NULL new_name) or rename a tensor, or change its shape. */
typedef struct syn_edit {
    const char *name;     /* tensor to edit; NULL: none */
    const char *new_name; /* NULL: drop it              */
    uint64_t shape0;      /* != 0: new shape[0]         */
} syn_edit;

static const char *syn_dir(const char *dir_rel, int tied, const char *cfg_extra, const syn_edit *edit,
                           const syn_tensor *more, size_t n_more) {
    ck_assert_int_eq(mkdir(tpath(dir_rel), 0755), 0);
    write_config(dir_rel, tied, cfg_extra);
    syn_tensor ts[64];
    size_t n = 0;
    for (size_t i = 0; i < SYN_N; i++) {
        syn_tensor t = syn_llama[i];
        if (edit && edit->name && strcmp(edit->name, t.name) == 0) {
            if (!edit->new_name && !edit->shape0) continue;
            if (edit->new_name) t.name = edit->new_name;
            if (edit->shape0) t.shape[0] = edit->shape0;
        }
        ts[n++] = t;
    }
    for (size_t i = 0; i < n_more; i++)
        ts[n++] = more[i];
    char rel[256];
    snprintf(rel, sizeof rel, "%s/model.safetensors", dir_rel);
    write_st(tpath(rel), ts, n, NULL, NULL);
    return tpath(dir_rel);
}

/* ===================================================================================================== */
/* Fixtures: plain HF LLaMA                                                                              */
/* ===================================================================================================== */

START_TEST(test_hf_llama) {
    armt_model_params p = no_params();
    p.segment_size = 12;
    armt_ckpt *c = open_ok(dpath("hf_llama"), &p);
    const armt_config *cfg = armt_ckpt_config(c);
    ck_assert_str_eq(armt_ckpt_layout(c), "hf");
    ck_assert_int_eq(cfg->hidden_size, 64);
    ck_assert_int_eq(cfg->n_layers, 2);
    ck_assert_int_eq(cfg->n_heads, 4);
    ck_assert_int_eq(cfg->n_kv_heads, 2);
    ck_assert_int_eq(cfg->head_dim, 16);
    ck_assert_int_eq(cfg->intermediate_size, 96);
    ck_assert_int_eq(cfg->vocab_size, 128);
    ck_assert_int_eq(cfg->tie_word_embeddings, 0);
    ck_assert_int_eq(cfg->rope_type, ARMT_ROPE_LLAMA3);
    ck_assert(cfg->rope_factor == 8.0 && cfg->rope_low_freq_factor == 1.0 &&
              cfg->rope_high_freq_factor == 4.0);
    ck_assert_int_eq(cfg->rope_original_max_pos, 64);
    ck_assert(cfg->rope_theta == 10000.0);
    ck_assert_int_eq(cfg->segment_size, 12);
    ck_assert_int_eq(cfg->num_mem_tokens, 4); /* from memory.safetensors */
    ck_assert_int_eq(armt_ckpt_has(c, ARMT_ROLE_LM_HEAD, 0), 1);
    ck_assert_int_eq(armt_ckpt_has(c, ARMT_ROLE_MEM, 0), 1);
    for (int l = 0; l < 2; l++) {
        ck_assert_int_eq(armt_ckpt_has(c, ARMT_ROLE_WQ, l), 1);
        for (int r = ARMT_ROLE_WMQ; r <= ARMT_ROLE_BMB; r++)
            ck_assert_int_eq(armt_ckpt_has(c, (armt_role)r, l), 0);
    }
    ck_assert_int_eq(armt_ckpt_has(c, ARMT_ROLE_WQ, 2), 0); /* out of range */
    ck_assert_int_eq(armt_ckpt_has_lora(c, ARMT_ROLE_WQ, 0), 0);
    ck_assert(armt_ckpt_lora_scale(c) == 0.0);

    const char *m = dpath("hf_llama/model.safetensors");
    assert_role_equals(c, ARMT_ROLE_WQ, 1, m, "model.layers.1.self_attn.q_proj.weight");
    assert_role_equals(c, ARMT_ROLE_WK, 0, m, "model.layers.0.self_attn.k_proj.weight");
    assert_role_equals(c, ARMT_ROLE_WD, 1, m, "model.layers.1.mlp.down_proj.weight");
    assert_role_equals(c, ARMT_ROLE_NORM_POST, 0, m, "model.layers.0.post_attention_layernorm.weight");
    assert_role_equals(c, ARMT_ROLE_EMBED, 0, m, "model.embed_tokens.weight");
    assert_role_equals(c, ARMT_ROLE_LM_HEAD, 0, m, "lm_head.weight");
    assert_role_equals(c, ARMT_ROLE_NORM_FINAL, 0, m, "model.norm.weight");
    assert_role_equals(c, ARMT_ROLE_MEM, 0, dpath("hf_llama/memory.safetensors"), "memory_cell.memory");

    /* an element window in the middle */
    uint64_t n;
    float *all = st_load(m, "model.layers.0.mlp.gate_proj.weight", &n);
    float part[300];
    ck_assert_int_eq(armt_ckpt_read(c, ARMT_ROLE_WG, 0, 1001, 300, part, &err), ARMT_OK);
    ck_assert(memcmp(part, all + 1001, sizeof part) == 0);
    /* out of range, absent role */
    ck_assert_int_eq(armt_ckpt_read(c, ARMT_ROLE_WG, 0, n - 10, 11, part, &err),
                     ARMT_STATUS_INVALID_ARGUMENT);
    ck_assert_int_eq(armt_ckpt_read(c, ARMT_ROLE_WG, 2, 0, 1, part, &err), ARMT_STATUS_INVALID_ARGUMENT);
    ck_assert_int_eq(armt_ckpt_read(c, ARMT_ROLE_WMQ, 0, 0, 1, part, &err), ARMT_STATUS_MISSING_TENSOR);
    free(all);
    armt_ckpt_close(c);
}
END_TEST

START_TEST(test_hf_llama_needs_segment_size) {
    open_fails(dpath("hf_llama"), NULL, ARMT_STATUS_BAD_CONFIG, "segment_size");
}
END_TEST

/* Without the side file the memory is absent: M must come from the params. */
START_TEST(test_hf_llama_without_memory) {
    ck_assert_int_eq(mkdir(tpath("hf"), 0755), 0);
    link_fixture("hf_llama/config.json", "hf/config.json");
    link_fixture("hf_llama/model.safetensors", "hf/model.safetensors");
    armt_model_params p = no_params();
    p.segment_size = 12;
    open_fails(tpath("hf"), &p, ARMT_STATUS_BAD_CONFIG, "num_mem_tokens");
    p.num_mem_tokens = 3;
    armt_ckpt *c = open_ok(tpath("hf"), &p);
    ck_assert_int_eq(armt_ckpt_config(c)->num_mem_tokens, 3);
    ck_assert_int_eq(armt_ckpt_config(c)->d_mem, 64); /* the default */
    ck_assert_int_eq(armt_ckpt_has(c, ARMT_ROLE_MEM, 0), 0);
    armt_ckpt_close(c);
}
END_TEST

/* ===================================================================================================== */
/* Fixtures: the ARMT reference wrapper, both naming forms                                               */
/* ===================================================================================================== */

START_TEST(test_armt_forms_identical) {
    armt_ckpt *a = open_ok(dpath("armt_ref/model_saved.safetensors"), NULL);
    armt_ckpt *b = open_ok(dpath("armt_ref/model_modelform.safetensors"), NULL);
    ck_assert_str_eq(armt_ckpt_layout(a), "armt-cell");
    ck_assert_str_eq(armt_ckpt_layout(b), "armt-model");
    const armt_config *ca = armt_ckpt_config(a), *cb = armt_ckpt_config(b);
    ck_assert(memcmp(ca, cb, sizeof *ca) == 0);
    ck_assert_int_eq(ca->hidden_size, 32);
    ck_assert_int_eq(ca->n_layers, 3);
    ck_assert_int_eq(ca->n_heads, 4);
    ck_assert_int_eq(ca->n_kv_heads, 2);
    ck_assert_int_eq(ca->head_dim, 8);
    ck_assert_int_eq(ca->intermediate_size, 64);
    ck_assert_int_eq(ca->vocab_size, 96);
    ck_assert_int_eq(ca->tie_word_embeddings, 1);
    ck_assert_int_eq(ca->rope_type, ARMT_ROPE_LLAMA3);
    ck_assert_int_eq(ca->rope_original_max_pos, 16);
    ck_assert_int_eq(ca->num_mem_tokens, 4);
    ck_assert_int_eq(ca->d_mem, 8);
    ck_assert_int_eq(armt_config_d_key(ca), 48);
    ck_assert_int_eq(ca->segment_size, 8);
    ck_assert_int_eq(ca->correction, 1);

    for (int l = 0; l < ca->n_layers; l++)
        for (int r = 0; r < ARMT_ROLE_N_LAYER_ROLES; r++) {
            ck_assert_int_eq(armt_ckpt_has(a, (armt_role)r, l), 1);
            ck_assert_int_eq(armt_ckpt_has(b, (armt_role)r, l), 1);
            uint64_t n1, n2;
            float *x = ck_load(a, (armt_role)r, l, &n1), *y = ck_load(b, (armt_role)r, l, &n2);
            ck_assert_uint_eq(n1, n2);
            ck_assert_msg(memcmp(x, y, (size_t)n1 * sizeof(float)) == 0, "%s layer %d differs between forms",
                          armt_role_name((armt_role)r), l);
            free(x);
            free(y);
        }
    static const armt_role globals[] = {ARMT_ROLE_EMBED, ARMT_ROLE_NORM_FINAL, ARMT_ROLE_MEM,
                                        ARMT_ROLE_LM_HEAD};
    for (size_t i = 0; i < 4; i++) {
        uint64_t n1, n2;
        float *x = ck_load(a, globals[i], 0, &n1), *y = ck_load(b, globals[i], 0, &n2);
        ck_assert_uint_eq(n1, n2);
        ck_assert_msg(memcmp(x, y, (size_t)n1 * sizeof(float)) == 0, "%s differs between forms",
                      armt_role_name(globals[i]));
        free(x);
        free(y);
    }
    /* tied: LM_HEAD is not a tensor of its own */
    ck_assert_int_eq(armt_ckpt_has(a, ARMT_ROLE_LM_HEAD, 0), 0);
    ck_assert_int_eq(armt_ckpt_has(b, ARMT_ROLE_LM_HEAD, 0), 0);
    ck_assert_int_eq(armt_ckpt_has(a, ARMT_ROLE_EMBED, 0), 1);
    ck_assert_str_eq(armt_ckpt_tensor_name(a, ARMT_ROLE_EMBED, 0), "memory_cell.model.lm_head.weight");
    ck_assert_str_eq(armt_ckpt_tensor_name(b, ARMT_ROLE_EMBED, 0),
                     "memory_cell.model.model.embed_tokens.weight");
    armt_ckpt_close(a);
    armt_ckpt_close(b);
}
END_TEST

START_TEST(test_armt_literal_keys) {
    armt_ckpt *a = open_ok(dpath("armt_ref/model_saved.safetensors"), NULL);
    const char *f = dpath("armt_ref/model_saved.safetensors");
    /* the tied embedding exists only as lm_head in this form */
    assert_role_equals(a, ARMT_ROLE_EMBED, 0, f, "memory_cell.model.lm_head.weight");
    assert_role_equals(a, ARMT_ROLE_WMQ, 2, f, "memory_cell.layers.2.W_mq.weight");
    assert_role_equals(a, ARMT_ROLE_WMV, 1, f, "memory_cell.layers.1.W_mv.weight");
    assert_role_equals(a, ARMT_ROLE_BMB, 0, f, "memory_cell.layers.0.W_mb.bias");
    assert_role_equals(a, ARMT_ROLE_WO, 1, f, "memory_cell.layers.1.layer.self_attn.o_proj.weight");
    assert_role_equals(a, ARMT_ROLE_NORM_IN, 2, f, "memory_cell.layers.2.layer.input_layernorm.weight");
    assert_role_equals(a, ARMT_ROLE_MEM, 0, f, "memory_cell.memory");
    armt_ckpt_close(a);

    armt_ckpt *b = open_ok(dpath("armt_ref/model_modelform.safetensors"), NULL);
    const char *g = dpath("armt_ref/model_modelform.safetensors");
    assert_role_equals(b, ARMT_ROLE_EMBED, 0, g, "memory_cell.model.model.embed_tokens.weight");
    assert_role_equals(b, ARMT_ROLE_LM_HEAD, 0, g, "memory_cell.model.model.embed_tokens.weight");
    assert_role_equals(b, ARMT_ROLE_WMK, 1, g, "memory_cell.model.model.layers.1.W_mk.weight");
    assert_role_equals(b, ARMT_ROLE_WU, 2, g, "memory_cell.model.model.layers.2.layer.mlp.up_proj.weight");
    armt_ckpt_close(b);
}
END_TEST

/* Explicit values that disagree with the tensors; a partial set of ARMT tensors. */
START_TEST(test_armt_inconsistent) {
    armt_model_params p = no_params();
    p.d_mem = 16;
    open_fails(dpath("armt_ref/model_saved.safetensors"), &p, ARMT_STATUS_BAD_CONFIG, "d_mem");
    p = no_params();
    p.num_mem_tokens = 5;
    open_fails(dpath("armt_ref/model_saved.safetensors"), &p, ARMT_STATUS_BAD_CONFIG, "num_mem_tokens");
    /* params that agree, and an override of what the tensors do not fix */
    p = no_params();
    p.num_mem_tokens = 4;
    p.d_mem = 8;
    p.segment_size = 5;
    p.correction = 0;
    armt_ckpt *c = open_ok(dpath("armt_ref/model_saved.safetensors"), &p);
    ck_assert_int_eq(armt_ckpt_config(c)->segment_size, 5);
    ck_assert_int_eq(armt_ckpt_config(c)->correction, 0);
    armt_ckpt_close(c);

    /* armt_config.json naming another d_mem */
    ck_assert_int_eq(mkdir(tpath("a"), 0755), 0);
    link_fixture("armt_ref/config.json", "a/config.json");
    link_fixture("armt_ref/model_saved.safetensors", "a/model.safetensors");
    write_text(tpath("a/armt_config.json"), "{\"d_mem\": 64, \"segment_size\": 8}");
    open_fails(tpath("a"), NULL, ARMT_STATUS_BAD_CONFIG, "d_mem");
    /* without d_mem in any source, the shape decides (the default 64 is not "explicit") */
    write_text(tpath("a/armt_config.json"), "{\"segment_size\": 8}");
    c = open_ok(tpath("a"), NULL);
    ck_assert_int_eq(armt_ckpt_config(c)->d_mem, 8);
    ck_assert_int_eq(armt_ckpt_config(c)->num_mem_tokens, 4);
    armt_ckpt_close(c);
}
END_TEST

/* ===================================================================================================== */
/* Fixtures: PEFT LoRA                                                                                   */
/* ===================================================================================================== */

static void check_merged(armt_ckpt *c, armt_role r, int l, const char *expected_name) {
    uint64_t n1, n2;
    float *got = ck_load(c, r, l, &n1);
    float *want = st_load(dpath("lora/expected.safetensors"), expected_name, &n2);
    ck_assert_uint_eq(n1, n2);
    double d = test_max_abs_diff_ff(got, want, n1);
    ck_assert_msg(d <= 1e-6, "%s: max |merged - PEFT| = %g", expected_name, d);
    /* a window that starts and ends inside rows */
    uint64_t first = 37, count = n1 - 37 - 29;
    float *part = malloc((size_t)count * sizeof *part);
    ck_assert_int_eq(armt_ckpt_read(c, r, l, first, count, part, &err), ARMT_OK);
    ck_assert(memcmp(part, got + first, (size_t)count * sizeof(float)) == 0);
    free(part);
    free(got);
    free(want);
}

START_TEST(test_lora_merge) {
    armt_model_params p = no_params();
    p.segment_size = 8;
    p.num_mem_tokens = 4;
    armt_ckpt *c = open_ok(dpath("lora"), &p);
    ck_assert_str_eq(armt_ckpt_layout(c), "hf+peft");
    ck_assert_double_eq_tol(armt_ckpt_lora_scale(c), 4.0, 1e-12);
    const armt_config *cfg = armt_ckpt_config(c);
    ck_assert_int_eq(cfg->hidden_size, 32);
    ck_assert_int_eq(cfg->tie_word_embeddings, 1);
    for (int l = 0; l < cfg->n_layers; l++) {
        ck_assert_int_eq(armt_ckpt_has_lora(c, ARMT_ROLE_WQ, l), 1);
        ck_assert_int_eq(armt_ckpt_has_lora(c, ARMT_ROLE_WV, l), 1);
        ck_assert_int_eq(armt_ckpt_has_lora(c, ARMT_ROLE_WK, l), 0);
        ck_assert_int_eq(armt_ckpt_has_lora(c, ARMT_ROLE_WO, l), 0);
    }
    check_merged(c, ARMT_ROLE_WQ, 0, "layers.0.q_proj");
    check_merged(c, ARMT_ROLE_WQ, 1, "layers.1.q_proj");
    check_merged(c, ARMT_ROLE_WV, 0, "layers.0.v_proj");
    check_merged(c, ARMT_ROLE_WV, 1, "layers.1.v_proj");
    /* non-targets read as stored; the embedding comes from the tied lm_head */
    const char *m = dpath("lora/model.safetensors");
    assert_role_equals(c, ARMT_ROLE_WK, 1, m, "base_model.model.model.layers.1.self_attn.k_proj.weight");
    assert_role_equals(c, ARMT_ROLE_EMBED, 0, m, "base_model.model.lm_head.weight");
    ck_assert_int_eq(armt_ckpt_has(c, ARMT_ROLE_LM_HEAD, 0), 0);
    /* the merge really changed the weight */
    uint64_t n;
    float *base = st_load(m, "base_model.model.model.layers.0.self_attn.q_proj.base_layer.weight", &n);
    float *merged = ck_load(c, ARMT_ROLE_WQ, 0, NULL);
    ck_assert(test_max_abs_diff_ff(base, merged, n) > 1e-2);
    free(base);
    free(merged);
    armt_ckpt_close(c);
}
END_TEST

static int warned;
static void count_warn(armt_log_level level, const char *msg, void *ud) {
    (void)ud;
    if (level == ARMT_LOG_WARN && strstr(msg, "lora_alpha")) warned++;
}

/* No adapter_config.json: alpha = r (scale 1), with a warning. An r that disagrees with the tensors. */
START_TEST(test_lora_adapter_config) {
    ck_assert_int_eq(mkdir(tpath("l"), 0755), 0);
    link_fixture("lora/config.json", "l/config.json");
    link_fixture("lora/model.safetensors", "l/model.safetensors");
    write_text(tpath("l/armt_config.json"), "{\"segment_size\": 8, \"num_mem_tokens\": 4}");
    warned = 0;
    armt_log_set(count_warn, NULL);
    armt_ckpt *c = open_ok(tpath("l"), NULL);
    armt_log_set(NULL, NULL);
    ck_assert_int_eq(warned, 1);
    ck_assert_double_eq_tol(armt_ckpt_lora_scale(c), 1.0, 1e-12);
    armt_ckpt_close(c);

    write_text(tpath("l/adapter_config.json"), "{\"r\": 8, \"lora_alpha\": 16}");
    open_fails(tpath("l"), NULL, ARMT_STATUS_BAD_CONFIG, "r = 8");
    write_text(tpath("l/adapter_config.json"), "{\"r\": 4, \"lora_alpha\": 16, \"use_rslora\": true}");
    c = open_ok(tpath("l"), NULL);
    ck_assert_double_eq_tol(armt_ckpt_lora_scale(c), 8.0, 1e-12);
    armt_ckpt_close(c);
    write_text(tpath("l/adapter_config.json"),
               "{\"r\": 4, \"lora_alpha\": 16, \"rank_pattern\": {\"q_proj\": 2}}");
    open_fails(tpath("l"), NULL, ARMT_STATUS_UNSUPPORTED, "rank_pattern");
}
END_TEST

/* ===================================================================================================== */
/* Synthetic checkpoints: acceptance and rejection                                                       */
/* ===================================================================================================== */

START_TEST(test_syn_ok) {
    armt_ckpt *c = open_ok(syn_dir("ok", 1, NULL, NULL, NULL, 0), NULL);
    ck_assert_str_eq(armt_ckpt_layout(c), "hf");
    ck_assert_int_eq(armt_ckpt_config(c)->num_mem_tokens, 2); /* top-level ARMT fields of config.json */
    ck_assert_int_eq(armt_ckpt_config(c)->segment_size, 4);
    float v[3];
    ck_assert_int_eq(armt_ckpt_read(c, ARMT_ROLE_WK, 0, 5, 3, v, &err), ARMT_OK);
    ck_assert(v[0] == 2.0f + 0.005f && v[2] == 2.0f + 0.007f);
    armt_ckpt_close(c);
}
END_TEST

START_TEST(test_missing_tensor) {
    syn_edit e = {"model.layers.0.mlp.up_proj.weight", NULL, 0};
    open_fails(syn_dir("m", 1, NULL, &e, NULL, 0), NULL, ARMT_STATUS_MISSING_TENSOR,
               "'model.layers.0.mlp.up_proj.weight'");
}
END_TEST

START_TEST(test_missing_norm_and_embed) {
    syn_edit e = {"model.norm.weight", NULL, 0};
    open_fails(syn_dir("n", 1, NULL, &e, NULL, 0), NULL, ARMT_STATUS_MISSING_TENSOR, "'model.norm.weight'");
    syn_edit e2 = {"model.embed_tokens.weight", NULL, 0};
    open_fails(syn_dir("e", 1, NULL, &e2, NULL, 0), NULL, ARMT_STATUS_MISSING_TENSOR,
               "'model.embed_tokens.weight'");
    /* untied without lm_head */
    open_fails(syn_dir("u", 0, NULL, NULL, NULL, 0), NULL, ARMT_STATUS_MISSING_TENSOR, "'lm_head.weight'");
    /* tied with only lm_head: accepted, the embedding comes from it */
    syn_edit e3 = {"model.embed_tokens.weight", "lm_head.weight", 0};
    armt_ckpt *c = open_ok(syn_dir("t", 1, NULL, &e3, NULL, 0), NULL);
    ck_assert_str_eq(armt_ckpt_tensor_name(c, ARMT_ROLE_EMBED, 0), "lm_head.weight");
    armt_ckpt_close(c);
}
END_TEST

START_TEST(test_wrong_shape) {
    syn_edit e = {"model.layers.0.self_attn.k_proj.weight", NULL, 8};
    open_fails(syn_dir("s", 1, NULL, &e, NULL, 0), NULL, ARMT_STATUS_SHAPE_MISMATCH,
               "'model.layers.0.self_attn.k_proj.weight' has shape [8, 8], expected [4, 8]");
    syn_edit e2 = {"model.norm.weight", NULL, 9};
    open_fails(syn_dir("s2", 1, NULL, &e2, NULL, 0), NULL, ARMT_STATUS_SHAPE_MISMATCH, "expected [8]");
}
END_TEST

START_TEST(test_heads_not_dividing) {
    /* 2 query heads, 3 KV heads */
    ck_assert_int_eq(mkdir(tpath("h"), 0755), 0);
    syn_dir("h0", 1, NULL, NULL, NULL, 0);
    ck_assert_int_eq(rename(tpath("h0/model.safetensors"), tpath("h/model.safetensors")), 0);
    write_text(tpath("h/config.json"),
               "{\"hidden_size\": 8, \"num_hidden_layers\": 1, \"num_attention_heads\": 2, "
               "\"num_key_value_heads\": 3, \"head_dim\": 4, \"intermediate_size\": 16, \"vocab_size\": 10, "
               "\"tie_word_embeddings\": true, \"num_mem_tokens\": 2, \"segment_size\": 4}");
    open_fails(tpath("h"), NULL, ARMT_STATUS_BAD_CONFIG, "n_kv_heads");
}
END_TEST

START_TEST(test_too_many_layers) {
    static const syn_tensor extra[] = {{"model.layers.1.self_attn.q_proj.weight", 2, {8, 8}}};
    open_fails(syn_dir("x", 1, NULL, NULL, extra, 1), NULL, ARMT_STATUS_BAD_CONFIG, "layer 1");
}
END_TEST

START_TEST(test_partial_armt) {
    static const syn_tensor armt[] = {
        {"model.layers.0.W_mq.weight", 2, {3, 8}}, {"model.layers.0.W_mk.weight", 2, {3, 8}},
        {"model.layers.0.W_mv.weight", 2, {8, 8}}, {"model.layers.0.W_mb.weight", 2, {1, 8}},
        {"model.layers.0.W_mb.bias", 1, {1, 0}},   {"memory_cell.memory", 2, {2, 8}},
    };
    /* all present: d_mem follows from W_mq */
    armt_ckpt *c = open_ok(syn_dir("p0", 1, NULL, NULL, armt, 6), NULL);
    ck_assert_int_eq(armt_ckpt_config(c)->d_mem, 3);
    ck_assert_int_eq(armt_ckpt_has(c, ARMT_ROLE_BMB, 0), 1);
    armt_ckpt_close(c);
    /* memory absent */
    open_fails(syn_dir("p1", 1, NULL, NULL, armt, 5), NULL, ARMT_STATUS_MISSING_TENSOR,
               "'memory_cell.memory'");
    /* W_mb.bias absent */
    static const syn_tensor armt2[] = {
        {"model.layers.0.W_mq.weight", 2, {3, 8}}, {"model.layers.0.W_mk.weight", 2, {3, 8}},
        {"model.layers.0.W_mv.weight", 2, {8, 8}}, {"model.layers.0.W_mb.weight", 2, {1, 8}},
        {"memory_cell.memory", 2, {2, 8}},
    };
    open_fails(syn_dir("p2", 1, NULL, NULL, armt2, 5), NULL, ARMT_STATUS_MISSING_TENSOR,
               "'model.layers.0.W_mb.bias'");
    /* memory rows disagree with config.json's num_mem_tokens = 2 */
    static const syn_tensor armt3[] = {
        {"model.layers.0.W_mq.weight", 2, {3, 8}}, {"model.layers.0.W_mk.weight", 2, {3, 8}},
        {"model.layers.0.W_mv.weight", 2, {8, 8}}, {"model.layers.0.W_mb.weight", 2, {1, 8}},
        {"model.layers.0.W_mb.bias", 1, {1, 0}},   {"memory_cell.memory", 2, {5, 8}},
    };
    open_fails(syn_dir("p3", 1, NULL, NULL, armt3, 6), NULL, ARMT_STATUS_BAD_CONFIG, "num_mem_tokens");
    /* W_mk with another d_mem than W_mq */
    static const syn_tensor armt4[] = {
        {"model.layers.0.W_mq.weight", 2, {3, 8}}, {"model.layers.0.W_mk.weight", 2, {4, 8}},
        {"model.layers.0.W_mv.weight", 2, {8, 8}}, {"model.layers.0.W_mb.weight", 2, {1, 8}},
        {"model.layers.0.W_mb.bias", 1, {1, 0}},   {"memory_cell.memory", 2, {2, 8}},
    };
    open_fails(syn_dir("p4", 1, NULL, NULL, armt4, 6), NULL, ARMT_STATUS_SHAPE_MISMATCH,
               "'model.layers.0.W_mk.weight' has shape [4, 8], expected [3, 8]");
}
END_TEST

START_TEST(test_lora_partner_missing) {
    static const syn_tensor lo[] = {
        {"model.layers.0.self_attn.v_proj.lora_A.default.weight", 2, {2, 8}},
    };
    open_fails(syn_dir("la", 1, NULL, NULL, lo, 1), NULL, ARMT_STATUS_MISSING_TENSOR,
               "'model.layers.0.self_attn.v_proj.lora_B.default.weight'");
    static const syn_tensor lo2[] = {
        {"model.layers.0.self_attn.v_proj.lora_A.default.weight", 2, {2, 8}},
        {"model.layers.0.self_attn.v_proj.lora_B.default.weight", 2, {4, 3}},
    };
    open_fails(syn_dir("lb", 1, NULL, NULL, lo2, 2), NULL, ARMT_STATUS_SHAPE_MISMATCH, "expected [4, 2]");
    static const syn_tensor lo3[] = {
        {"model.layers.0.input_layernorm.lora_A.default.weight", 2, {2, 8}},
    };
    open_fails(syn_dir("lc", 1, NULL, NULL, lo3, 1), NULL, ARMT_STATUS_UNSUPPORTED, "LoRA");
    static const syn_tensor lo4[] = {
        {"model.layers.0.self_attn.q_proj.bias", 1, {8, 0}},
    };
    open_fails(syn_dir("ld", 1, NULL, NULL, lo4, 1), NULL, ARMT_STATUS_UNSUPPORTED, "bias");
}
END_TEST

/* ARMT around PEFT (the BABILong checkpoint, docs/MATH.md §5.2): prefixes combine, LoRA merges with the
 * scale of adapter_config.json. */
START_TEST(test_armt_peft_combined) {
    static char names[SYN_N][128];
    syn_tensor ts[SYN_N + 8];
    size_t n = 0;
    const char *P = "memory_cell.model.base_model.model.";
    for (size_t i = 0; i < SYN_N; i++) {
        const char *nm = syn_llama[i].name;
        if (strncmp(nm, "model.layers.0.", 15) == 0)
            snprintf(names[i], sizeof names[i], "%smodel.layers.0.layer.%s", P, nm + 15);
        else
            snprintf(names[i], sizeof names[i], "%s%s", P, nm);
        if (strstr(nm, "q_proj")) /* q_proj is a LoRA target: weight -> base_layer.weight */
            snprintf(names[i], sizeof names[i], "%smodel.layers.0.layer.self_attn.q_proj.base_layer.weight",
                     P);
        ts[n] = syn_llama[i];
        ts[n++].name = names[i];
    }
    /* tensor indices SYN_N.. : lora_A (2, 8), lora_B (8, 2), then the ARMT tensors */
    ts[n++] = (syn_tensor){
        "memory_cell.model.base_model.model.model.layers.0.layer.self_attn.q_proj.lora_A.default.weight",
        2,
        {2, 8}};
    ts[n++] = (syn_tensor){
        "memory_cell.model.base_model.model.model.layers.0.layer.self_attn.q_proj.lora_B.default.weight",
        2,
        {8, 2}};
    ts[n++] = (syn_tensor){"memory_cell.model.base_model.model.model.layers.0.W_mq.weight", 2, {3, 8}};
    ts[n++] = (syn_tensor){"memory_cell.model.base_model.model.model.layers.0.W_mk.weight", 2, {3, 8}};
    ts[n++] = (syn_tensor){"memory_cell.model.base_model.model.model.layers.0.W_mv.weight", 2, {8, 8}};
    ts[n++] = (syn_tensor){"memory_cell.model.base_model.model.model.layers.0.W_mb.weight", 2, {1, 8}};
    ts[n++] = (syn_tensor){"memory_cell.model.base_model.model.model.layers.0.W_mb.bias", 1, {1, 0}};
    ts[n++] = (syn_tensor){"memory_cell.memory", 2, {2, 8}};
    ck_assert_int_eq(mkdir(tpath("ap"), 0755), 0);
    write_config("ap", 1, NULL);
    write_text(tpath("ap/adapter_config.json"), "{\"r\": 2, \"lora_alpha\": 4}");
    write_st(tpath("ap/model.safetensors"), ts, n, NULL, NULL);

    armt_ckpt *c = open_ok(tpath("ap"), NULL);
    ck_assert_str_eq(armt_ckpt_layout(c), "armt-model+peft");
    ck_assert_double_eq_tol(armt_ckpt_lora_scale(c), 2.0, 1e-12);
    ck_assert_int_eq(armt_ckpt_config(c)->d_mem, 3);
    ck_assert_int_eq(armt_ckpt_has_lora(c, ARMT_ROLE_WQ, 0), 1);
    ck_assert_int_eq(armt_ckpt_has(c, ARMT_ROLE_WMB, 0), 1);
    /* values written by write_st: tensor i, element j -> i + 0.001 j */
    size_t iq = 1, ia = SYN_N, ib = SYN_N + 1;
    float *wq = ck_load(c, ARMT_ROLE_WQ, 0, NULL);
    for (int row = 0; row < 8; row++)
        for (int col = 0; col < 8; col++) {
            double w = (float)iq + 0.001f * (float)(row * 8 + col), acc = 0;
            for (int k = 0; k < 2; k++)
                acc += (double)((float)ib + 0.001f * (float)(row * 2 + k)) *
                       (double)((float)ia + 0.001f * (float)(k * 8 + col));
            ck_assert_double_eq_tol(wq[row * 8 + col], w + 2.0 * acc, 1e-4);
        }
    free(wq);
    float v;
    ck_assert_int_eq(armt_ckpt_read(c, ARMT_ROLE_WK, 0, 0, 1, &v, &err), ARMT_OK);
    ck_assert(v == 2.0f); /* k_proj: tensor index 2, not merged */
    armt_ckpt_close(c);
}
END_TEST

/* One .safetensors file carrying its configuration in __metadata__ "armt_config" (no config.json). */
START_TEST(test_single_file_metadata) {
    armt_config cfg;
    ck_assert_int_eq(armt_config_preset("tiny", &cfg), ARMT_OK);
    cfg.hidden_size = 8;
    cfg.n_layers = 1;
    cfg.n_heads = 2;
    cfg.n_kv_heads = 1;
    cfg.head_dim = 4;
    cfg.intermediate_size = 16;
    cfg.vocab_size = 10;
    cfg.tie_word_embeddings = 1;
    cfg.num_mem_tokens = 2;
    cfg.segment_size = 4;
    cfg.d_mem = 3;
    char *json = armt_config_to_json(&cfg);
    ck_assert_ptr_nonnull(json);
    write_st(tpath("one.safetensors"), syn_llama, SYN_N, "armt_config", json);
    free(json);
    armt_ckpt *c = open_ok(tpath("one.safetensors"), NULL);
    ck_assert(memcmp(armt_ckpt_config(c), &cfg, sizeof cfg) == 0);
    armt_ckpt_close(c);
    /* without metadata and without a config.json beside it */
    write_st(tpath("two.safetensors"), syn_llama, SYN_N, NULL, NULL);
    open_fails(tpath("two.safetensors"), NULL, ARMT_STATUS_BAD_CONFIG, "config.json");
    /* not there at all */
    open_fails(tpath("none.safetensors"), NULL, ARMT_STATUS_IO_ERROR, NULL);
    /* a directory without config.json */
    ck_assert_int_eq(mkdir(tpath("d"), 0755), 0);
    write_st(tpath("d/model.safetensors"), syn_llama, SYN_N, NULL, NULL);
    open_fails(tpath("d"), NULL, ARMT_STATUS_IO_ERROR, "config.json");
}
END_TEST

START_TEST(test_bad_arguments) {
    armt_ckpt *c = NULL;
    ck_assert_int_eq(armt_ckpt_open(NULL, NULL, &c, &err), ARMT_STATUS_INVALID_ARGUMENT);
    ck_assert_int_eq(armt_ckpt_open("x", NULL, NULL, &err), ARMT_STATUS_INVALID_ARGUMENT);
    ck_assert_int_eq(armt_ckpt_has(NULL, ARMT_ROLE_WQ, 0), 0);
    ck_assert_ptr_null(armt_ckpt_config(NULL));
    armt_ckpt_close(NULL);
    c = open_ok(syn_dir("b", 1, NULL, NULL, NULL, 0), NULL);
    float v;
    ck_assert_int_eq(armt_ckpt_read(c, ARMT_ROLE_COUNT, 0, 0, 1, &v, &err), ARMT_STATUS_INVALID_ARGUMENT);
    ck_assert_int_eq(armt_ckpt_read(c, ARMT_ROLE_WQ, -1, 0, 1, &v, &err), ARMT_STATUS_INVALID_ARGUMENT);
    ck_assert_int_eq(armt_ckpt_read(c, ARMT_ROLE_WQ, 0, 0, 1, NULL, &err), ARMT_STATUS_INVALID_ARGUMENT);
    ck_assert_int_eq(armt_ckpt_read(c, ARMT_ROLE_WQ, 0, UINT64_MAX, 2, &v, &err),
                     ARMT_STATUS_INVALID_ARGUMENT);
    ck_assert_int_eq(armt_ckpt_read(c, ARMT_ROLE_WQ, 0, 64, 0, NULL, &err), ARMT_OK);
    ck_assert_int_eq(armt_ckpt_read(c, ARMT_ROLE_MEM, 0, 0, 1, &v, &err), ARMT_STATUS_MISSING_TENSOR);
    armt_ckpt_close(c);
}
END_TEST

/* ===================================================================================================== */

static Suite *suite(void) {
    Suite *s = suite_create("checkpoint");
    TCase *f = tcase_create("fixtures");
    tcase_add_checked_fixture(f, setup, teardown);
    tcase_add_test(f, test_hf_llama);
    tcase_add_test(f, test_hf_llama_needs_segment_size);
    tcase_add_test(f, test_hf_llama_without_memory);
    tcase_add_test(f, test_armt_forms_identical);
    tcase_add_test(f, test_armt_literal_keys);
    tcase_add_test(f, test_armt_inconsistent);
    tcase_add_test(f, test_lora_merge);
    tcase_add_test(f, test_lora_adapter_config);
    suite_add_tcase(s, f);

    TCase *r = tcase_create("synthetic");
    tcase_add_checked_fixture(r, setup, teardown);
    tcase_add_test(r, test_syn_ok);
    tcase_add_test(r, test_missing_tensor);
    tcase_add_test(r, test_missing_norm_and_embed);
    tcase_add_test(r, test_wrong_shape);
    tcase_add_test(r, test_heads_not_dividing);
    tcase_add_test(r, test_too_many_layers);
    tcase_add_test(r, test_partial_armt);
    tcase_add_test(r, test_lora_partner_missing);
    tcase_add_test(r, test_armt_peft_combined);
    tcase_add_test(r, test_single_file_metadata);
    tcase_add_test(r, test_bad_arguments);
    suite_add_tcase(s, r);
    return s;
}

int main(void) {
    struct stat sb;
    if (stat(dpath("armt_ref/expected.safetensors"), &sb) != 0) {
        fprintf(stderr, "check_checkpoint: fixtures not found under %s (set ARMT_TEST_DATA)\n", data_dir());
        return 77; /* skipped */
    }
    return test_run_suite(suite(), 0);
}
