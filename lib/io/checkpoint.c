/*
 * checkpoint.c - checkpoint files, configuration sources and key layouts resolved into weight roles.
 * See checkpoint.h for the rules.
 *
 * Every tensor name is classified on its own. A per-layer tensor is recognised by a path component
 * "layers.<N>." (preceded by the start of the name or a dot); what precedes it is the layout's prefix
 * (model., memory_cell., memory_cell.model.model., base_model.model.model., ...). What follows is an optional
 * "layer." (the ARMT wrapper's inner decoder layer), a module (self_attn.q_proj, W_mq, ...) and a suffix
 * (weight, bias, base_layer.weight, lora_A.<adapter>.weight, lora_B.<adapter>.weight). Global tensors are
 * recognised by their last components (embed_tokens.weight, lm_head.weight, norm.weight, memory, sink).
 */
#include "config.h"

#include "io/checkpoint_internal.h"

#include "io/checkpoint.h"

#include "io/armt_config.h"
#include "io/safetensors.h"
#include "common/util.h"

#include <errno.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define CK_MAX_ARCHIVES   2         /* the weights, and the optional memory.safetensors side file */
#define CK_MAX_LAYER      (1 << 20) /* a layer index above this is not a real model              */
#define CK_MAX_JSON_BYTES (64u << 20)
#define CK_N_GLOBAL       (ARMT_ROLE_COUNT - ARMT_ROLE_N_LAYER_ROLES)

/* ===================================================================================================== */
/* Small helpers                                                                                         */
/* ===================================================================================================== */

static int starts_with(const char *s, const char *p) { return strncmp(s, p, strlen(p)) == 0; }

/* s ends with the path components `suffix`: s == suffix, or s ends with "." suffix. */
static int ends_with_component(const char *s, const char *suffix) {
    size_t a = strlen(s), b = strlen(suffix);
    if (a < b || strcmp(s + a - b, suffix) != 0) return 0;
    return a == b || s[a - b - 1] == '.';
}

static int file_exists(const char *path) {
    struct stat sb;
    return stat(path, &sb) == 0 && S_ISREG(sb.st_mode);
}

/* ===================================================================================================== */
/* Configuration sources                                                                                 */
/* ===================================================================================================== */

static void mark_present_keys(const char *text, size_t len, ck_explicit *ex) {
    json_t *o = json_loadb(text, len, 0, NULL);
    if (!o) return;
    if (json_is_object(o)) {
        json_t *v;
        if ((v = json_object_get(o, "num_mem_tokens")) && !json_is_null(v)) ex->num_mem_tokens = 1;
        if ((v = json_object_get(o, "d_mem")) && !json_is_null(v)) ex->d_mem = 1;
        if ((v = json_object_get(o, "segment_size")) && !json_is_null(v)) ex->segment_size = 1;
        if ((v = json_object_get(o, "correction")) && !json_is_null(v)) ex->correction = 1;
    }
    json_decref(o);
}

static armt_status parse_adapter(const char *path, const char *text, size_t len, ck_adapter *ad,
                                 armt_err *err) {
    json_error_t je;
    json_t *o = json_loadb(text, len, 0, &je);
    ARMT_RETURN_IF(!o, ARMT_STATUS_BAD_CONFIG, "%s: not valid JSON: %s (line %d)", path, je.text, je.line);
    armt_status st = ARMT_OK;
    json_t *v;
    ad->present = 1;
    if (!json_is_object(o)) {
        st = armt_err_set(err, ARMT_STATUS_BAD_CONFIG, "%s: not a JSON object", path);
        goto done;
    }
    if ((v = json_object_get(o, "peft_type")) && !json_is_null(v) &&
        !(json_is_string(v) && strcmp(json_string_value(v), "LORA") == 0)) {
        st = armt_err_set(err, ARMT_STATUS_UNSUPPORTED, "%s: peft_type %s is not supported (LORA only)", path,
                          json_is_string(v) ? json_string_value(v) : "(not a string)");
        goto done;
    }
    if ((v = json_object_get(o, "r")) && !json_is_null(v)) {
        if (!json_is_integer(v) || json_integer_value(v) <= 0 || json_integer_value(v) > (1 << 24)) {
            st = armt_err_set(err, ARMT_STATUS_BAD_CONFIG, "%s: r must be a positive integer", path);
            goto done;
        }
        ad->r = (int)json_integer_value(v);
    }
    if ((v = json_object_get(o, "lora_alpha")) && !json_is_null(v)) {
        if (!json_is_number(v) || !isfinite(json_number_value(v))) {
            st = armt_err_set(err, ARMT_STATUS_BAD_CONFIG, "%s: lora_alpha must be a number", path);
            goto done;
        }
        ad->alpha = json_number_value(v);
        ad->has_alpha = 1;
    }
    if ((v = json_object_get(o, "use_rslora")) && json_is_true(v)) ad->rslora = 1;
    if ((v = json_object_get(o, "fan_in_fan_out")) && json_is_true(v)) {
        st = armt_err_set(err, ARMT_STATUS_UNSUPPORTED, "%s: fan_in_fan_out = true is not supported", path);
        goto done;
    }
    if ((v = json_object_get(o, "use_dora")) && json_is_true(v)) {
        st = armt_err_set(err, ARMT_STATUS_UNSUPPORTED, "%s: use_dora = true is not supported", path);
        goto done;
    }
    static const char *const patterns[] = {"rank_pattern", "alpha_pattern"};
    for (int i = 0; i < 2; i++) {
        v = json_object_get(o, patterns[i]);
        if (v && json_is_object(v) && json_object_size(v) > 0) {
            st = armt_err_set(err, ARMT_STATUS_UNSUPPORTED, "%s: a non-empty %s is not supported", path,
                              patterns[i]);
            goto done;
        }
    }
done:
    json_decref(o);
    return st;
}

/* ===================================================================================================== */
/* Name classification                                                                                   */
/* ===================================================================================================== */

static const struct {
    const char *module;
    armt_role role;
    int linear; /* LoRA allowed */
} layer_modules[] = {
    {"self_attn.q_proj", ARMT_ROLE_WQ, 1},
    {"self_attn.k_proj", ARMT_ROLE_WK, 1},
    {"self_attn.v_proj", ARMT_ROLE_WV, 1},
    {"self_attn.o_proj", ARMT_ROLE_WO, 1},
    {"mlp.gate_proj", ARMT_ROLE_WG, 1},
    {"mlp.up_proj", ARMT_ROLE_WU, 1},
    {"mlp.down_proj", ARMT_ROLE_WD, 1},
    {"input_layernorm", ARMT_ROLE_NORM_IN, 0},
    {"post_attention_layernorm", ARMT_ROLE_NORM_POST, 0},
    {"W_mq", ARMT_ROLE_WMQ, 1},
    {"W_mk", ARMT_ROLE_WMK, 1},
    {"W_mv", ARMT_ROLE_WMV, 1},
    {"W_mb", ARMT_ROLE_WMB, 1},
};

/* Finds "layers.<N>." at the start of name or after a dot. Sets the prefix length (up to and including
 * "layers."), the index and the rest after "<N>.". Returns 0 when absent, -1 when the index is too large. */
static int find_layer(const char *name, size_t *prefix_len, long *layer, const char **rest) {
    for (const char *p = name; (p = strstr(p, "layers.")) != NULL; p++) {
        if (p != name && p[-1] != '.') continue;
        const char *q = p + 7;
        if (*q < '0' || *q > '9') continue;
        long v = 0;
        while (*q >= '0' && *q <= '9') {
            v = v * 10 + (*q - '0');
            if (v > CK_MAX_LAYER) return -1;
            q++;
        }
        if (*q != '.') continue;
        *prefix_len = (size_t)(p + 7 - name);
        *layer = v;
        *rest = q + 1;
        return 1;
    }
    return 0;
}

ck_slot *armt_ck_layer_slot(armt_ckpt *c, int layer, armt_role role) {
    return &c->lslots[(size_t)layer * ARMT_ROLE_N_LAYER_ROLES + (size_t)role];
}

armt_status armt_ck_grow_layers(armt_ckpt *c, int layer, armt_err *err) {
    if (layer < c->slot_layers) return ARMT_OK;
    int n = c->slot_layers ? c->slot_layers : 8;
    while (n <= layer)
        n *= 2;
    ck_slot *s = realloc(c->lslots, (size_t)n * ARMT_ROLE_N_LAYER_ROLES * sizeof *s);
    ARMT_RETURN_IF(!s, ARMT_STATUS_OUT_OF_HOST_MEMORY, "checkpoint: out of memory");
    memset(s + (size_t)c->slot_layers * ARMT_ROLE_N_LAYER_ROLES, 0,
           (size_t)(n - c->slot_layers) * ARMT_ROLE_N_LAYER_ROLES * sizeof *s);
    c->lslots = s;
    c->slot_layers = n;
    return ARMT_OK;
}

/* The adapter name of a LoRA tensor ("default" in "...lora_A.default.weight"), as a pointer and length. */
static const char *adapter_of(const st_tensor *t, size_t *n) {
    const char *p = strstr(t->name, ".lora_");
    if (!p) {
        *n = 0;
        return "";
    }
    const char *a = p + 8, *dot = strchr(a, '.');
    *n = dot ? (size_t)(dot - a) : strlen(a);
    return a;
}

static armt_status place_lora(const st_tensor **dst, int *dst_ar, const st_tensor *t, int ar, armt_err *err) {
    if (*dst) {
        size_t n1, n2;
        const char *a1 = adapter_of(*dst, &n1), *a2 = adapter_of(t, &n2);
        ARMT_RETURN_IF(n1 != n2 || strncmp(a1, a2, n1) != 0, ARMT_STATUS_UNSUPPORTED,
                       "checkpoint: '%s' and '%s': more than one LoRA adapter is not supported", (*dst)->name,
                       t->name);
        return ARMT_OK; /* the same tensor under another name */
    }
    *dst = t;
    *dst_ar = ar;
    return ARMT_OK;
}

/* Puts a tensor into a slot; the first one found wins (later aliases and the side file are ignored). */
static armt_status place(armt_ckpt *c, ck_slot *s, ck_part part, const st_tensor *t, int ar, armt_err *err) {
    switch (part) {
    case CK_WEIGHT:
        if (!s->t) {
            s->t = t;
            s->ar = ar;
        }
        return ARMT_OK;
    case CK_LORA_A: c->any_lora = 1; return place_lora(&s->la, &s->ar_la, t, ar, err);
    case CK_LORA_B: c->any_lora = 1; return place_lora(&s->lb, &s->ar_lb, t, ar, err);
    }
    return ARMT_OK;
}

/* Classifies the part of a module's suffix: "weight", "bias", "base_layer.weight", "lora_A.<x>.weight", ...
 * Returns 1 and sets *part and *is_bias when recognised, 0 otherwise. */
static int classify_suffix(const char *s, ck_part *part, int *is_bias) {
    *is_bias = 0;
    if (strcmp(s, "weight") == 0 || strcmp(s, "base_layer.weight") == 0) {
        *part = CK_WEIGHT;
        return 1;
    }
    if (strcmp(s, "bias") == 0 || strcmp(s, "base_layer.bias") == 0) {
        *part = CK_WEIGHT;
        *is_bias = 1;
        return 1;
    }
    int a = starts_with(s, "lora_A."), b = starts_with(s, "lora_B.");
    if (a || b) {
        const char *adapter = s + 7;
        const char *dot = strchr(adapter, '.');
        if (dot && dot != adapter && strcmp(dot, ".weight") == 0) {
            *part = a ? CK_LORA_A : CK_LORA_B;
            return 1;
        }
    }
    return 0;
}

static armt_status set_prefix(char **dst, const char *name, size_t n, armt_err *err) {
    if (*dst) return ARMT_OK;
    *dst = armt_strndup(name, n);
    ARMT_RETURN_IF(!*dst, ARMT_STATUS_OUT_OF_HOST_MEMORY, "checkpoint: out of memory");
    return ARMT_OK;
}

static armt_status classify(armt_ckpt *c, const st_tensor *t, int ar, armt_err *err) {
    const char *name = t->name;
    if (starts_with(name, "base_model.model.") || strstr(name, ".base_model.model.")) c->any_peft_prefix = 1;

    size_t plen;
    long layer;
    const char *rest;
    int fl = find_layer(name, &plen, &layer, &rest);
    ARMT_RETURN_IF(fl < 0, ARMT_STATUS_BAD_CONFIG, "checkpoint: tensor '%s': layer index too large", name);
    if (fl > 0) {
        int inner = 0;
        if (starts_with(rest, "layer.")) {
            rest += 6;
            inner = 1;
        }
        for (size_t i = 0; i < sizeof layer_modules / sizeof layer_modules[0]; i++) {
            size_t ml = strlen(layer_modules[i].module);
            if (strncmp(rest, layer_modules[i].module, ml) != 0 || rest[ml] != '.') continue;
            ck_part part;
            int is_bias;
            armt_role role = layer_modules[i].role;
            if (!classify_suffix(rest + ml + 1, &part, &is_bias)) {
                ARMT_RETURN_IF(strstr(rest + ml, "lora_") != NULL, ARMT_STATUS_UNSUPPORTED,
                               "checkpoint: tensor '%s': this LoRA variant is not supported", name);
                return armt_err_set(err, ARMT_STATUS_UNSUPPORTED, "checkpoint: tensor '%s' is not supported",
                                    name);
            }
            if (is_bias) {
                ARMT_RETURN_IF(role != ARMT_ROLE_WMB, ARMT_STATUS_UNSUPPORTED,
                               "checkpoint: tensor '%s': biases are not supported for this weight", name);
                role = ARMT_ROLE_BMB;
            }
            ARMT_RETURN_IF(part != CK_WEIGHT && (!layer_modules[i].linear || role == ARMT_ROLE_BMB),
                           ARMT_STATUS_UNSUPPORTED,
                           "checkpoint: tensor '%s': LoRA on this weight is not supported", name);
            ARMT_TRY(armt_ck_grow_layers(c, (int)layer, err));
            if ((int)layer > c->max_layer) c->max_layer = (int)layer;
            if (armt_role_is_armt(role)) {
                ARMT_TRY(set_prefix(&c->armt_prefix, name, plen, err));
            } else if (!c->dec_prefix) {
                ARMT_TRY(set_prefix(&c->dec_prefix, name, plen, err));
                c->dec_inner = inner ? "layer." : "";
            }
            return place(c, armt_ck_layer_slot(c, (int)layer, role), part, t, ar, err);
        }
        ARMT_RETURN_IF(strstr(rest, "lora_") != NULL, ARMT_STATUS_UNSUPPORTED,
                       "checkpoint: tensor '%s': LoRA on this module is not supported", name);
        return ARMT_OK; /* unknown per-layer tensor (rotary inv_freq, ...) */
    }

    /* global tensors */
    static const struct {
        const char *suffix;
        armt_role role;
    } globals[] = {
        {"embed_tokens.weight", ARMT_ROLE_EMBED},
        {"embed_tokens.base_layer.weight", ARMT_ROLE_EMBED},
        {"lm_head.weight", ARMT_ROLE_LM_HEAD},
        {"lm_head.base_layer.weight", ARMT_ROLE_LM_HEAD},
        {"norm.weight", ARMT_ROLE_NORM_FINAL},
        {"memory", ARMT_ROLE_MEM},
        {"sink", ARMT_ROLE_SINK}, /* src/armt_sw.py `sink`, modeling_amt `armt.memory_cell.sink` */
    };
    ARMT_RETURN_IF(strstr(name, "lora_") != NULL &&
                       (strstr(name, "embed_tokens.") || strstr(name, "lm_head.") || strstr(name, "norm.")),
                   ARMT_STATUS_UNSUPPORTED, "checkpoint: tensor '%s': LoRA on this module is not supported",
                   name);
    for (size_t i = 0; i < sizeof globals / sizeof globals[0]; i++) {
        if (!ends_with_component(name, globals[i].suffix)) continue;
        armt_role role = globals[i].role;
        size_t n = strlen(name);
        if (role == ARMT_ROLE_LM_HEAD || role == ARMT_ROLE_NORM_FINAL) {
            const char *suf = role == ARMT_ROLE_LM_HEAD ? globals[i].suffix : "model.norm.weight";
            if (ends_with_component(name, suf)) ARMT_TRY(set_prefix(&c->root, name, n - strlen(suf), err));
        }
        if (role == ARMT_ROLE_MEM) ARMT_TRY(set_prefix(&c->mem_name, name, n, err));
        if (role == ARMT_ROLE_SINK) ARMT_TRY(set_prefix(&c->sink_name, name, n, err));
        return place(c, &c->gslots[role - ARMT_ROLE_N_LAYER_ROLES], CK_WEIGHT, t, ar, err);
    }
    return ARMT_OK;
}

/* ===================================================================================================== */
/* Open / close                                                                                          */
/* ===================================================================================================== */

static void set_layout(armt_ckpt *c) {
    const char *base = "hf";
    const char *p = c->dec_prefix ? c->dec_prefix : c->armt_prefix;
    if (p) {
        if (strstr(p, "memory_cell.layers.") != NULL)
            base = "armt-cell";
        else if (strstr(p, "memory_cell.") != NULL)
            base = "armt-model";
    }
    snprintf(c->layout, sizeof c->layout, "%s%s", base, (c->any_lora || c->any_peft_prefix) ? "+peft" : "");
}

/* Base config from config.json in dir, then armt_config.json; records which ARMT fields were explicit. */
static armt_status load_dir_config(const char *dir, const char *base_dir, armt_config *cfg, ck_explicit *ex,
                                   int *found, int *reference, armt_err *err) {
    char *path = armt_path_join(dir, "config.json"), *text = NULL;
    size_t len;
    ARMT_RETURN_IF(!path, ARMT_STATUS_OUT_OF_HOST_MEMORY, "checkpoint: out of memory");
    armt_status st = armt_read_file(path, "checkpoint", CK_MAX_JSON_BYTES, 1, &text, &len, err);
    *found = text != NULL;
    *reference = 0;
    if (st == ARMT_OK && text && armt_config_is_reference(text, len)) {
        /* the ARMT reference's own form: every ARMT field is known (its defaults fill what is absent) */
        *reference = 1;
        st = armt_config_from_reference_json(text, len, base_dir, cfg, err);
        if (st == ARMT_OK) *ex = (ck_explicit){1, 1, 1, 1};
        free(text);
        free(path);
        return st;
    }
    if (st == ARMT_OK && text) {
        st = armt_config_from_hf_json(text, len, cfg, err);
        if (st == ARMT_OK) mark_present_keys(text, len, ex);
    }
    free(text);
    free(path);
    text = NULL;
    if (st != ARMT_OK || !*found) return st;

    path = armt_path_join(dir, "armt_config.json");
    ARMT_RETURN_IF(!path, ARMT_STATUS_OUT_OF_HOST_MEMORY, "checkpoint: out of memory");
    st = armt_read_file(path, "checkpoint", CK_MAX_JSON_BYTES, 1, &text, &len, err);
    if (st == ARMT_OK && text) {
        st = armt_config_apply_armt_json(text, len, cfg, err);
        if (st == ARMT_OK) mark_present_keys(text, len, ex);
    }
    free(text);
    free(path);
    return st;
}

static armt_status load_adapter(const char *dir, ck_adapter *ad, armt_err *err) {
    char *path = armt_path_join(dir, "adapter_config.json"), *text = NULL;
    size_t len;
    ARMT_RETURN_IF(!path, ARMT_STATUS_OUT_OF_HOST_MEMORY, "checkpoint: out of memory");
    armt_status st = armt_read_file(path, "checkpoint", CK_MAX_JSON_BYTES, 1, &text, &len, err);
    if (st == ARMT_OK && text) st = parse_adapter(path, text, len, ad, err);
    free(text);
    free(path);
    return st;
}

static armt_status open_impl(armt_ckpt *c, const char *path, const armt_model_params *params, armt_err *err) {
    struct stat sb;
    ARMT_RETURN_IF(stat(path, &sb) != 0, ARMT_STATUS_IO_ERROR, "%s: cannot open: %s", path, strerror(errno));
    int is_dir = S_ISDIR(sb.st_mode);
    armt_status st = ARMT_OK;
    char *dir = is_dir ? armt_strndup(path, strlen(path)) : armt_path_dirname(path);
    char *side = NULL;
    ARMT_RETURN_IF(!dir, ARMT_STATUS_OUT_OF_HOST_MEMORY, "checkpoint: out of memory");

    /* weights */
    ARMT_TRY_GOTO(st_open(path, &c->ar[0], err), out);
    c->n_ar = 1;
    if (is_dir) {
        side = armt_path_join(dir, "memory.safetensors");
        if (!side) {
            st = armt_err_set(err, ARMT_STATUS_OUT_OF_HOST_MEMORY, "checkpoint: out of memory");
            goto out;
        }
        if (file_exists(side)) {
            ARMT_TRY_GOTO(st_open(side, &c->ar[1], err), out);
            c->n_ar = 2;
        }
    }

    /* configuration */
    ck_explicit ex = {0, 0, 0, 0};
    const char *meta = st_metadata(c->ar[0], "armt_config");
    int have_cfg = 0;
    if (!is_dir && meta) {
        ARMT_TRY_GOTO(armt_config_from_json_full(meta, strlen(meta), &c->cfg, err), out);
        ex = (ck_explicit){1, 1, 1, 1};
        have_cfg = 1;
    } else {
        int reference = 0;
        ARMT_TRY_GOTO(load_dir_config(dir, params ? params->base_model_dir : NULL, &c->cfg, &ex, &have_cfg,
                                      &reference, err),
                      out);
        if (!have_cfg) {
            st = armt_err_set(
                err, is_dir ? ARMT_STATUS_IO_ERROR : ARMT_STATUS_BAD_CONFIG,
                is_dir ? "%s: directory has no config.json"
                       : "%s: no \"armt_config\" in the file's metadata and no config.json beside it",
                path);
            goto out;
        }
        if (meta) { /* directory mode: the ARMT fields of the embedded full config */
            armt_config full;
            ARMT_TRY_GOTO(armt_config_from_json_full(meta, strlen(meta), &full, err), out);
            c->cfg.num_mem_tokens = full.num_mem_tokens;
            c->cfg.d_mem = full.d_mem;
            c->cfg.segment_size = full.segment_size;
            c->cfg.correction = full.correction;
            ex = (ck_explicit){1, 1, 1, 1};
        }
    }
    if (params) {
        if (params->num_mem_tokens > 0) {
            c->cfg.num_mem_tokens = params->num_mem_tokens;
            ex.num_mem_tokens = 1;
        }
        if (params->d_mem > 0) {
            c->cfg.d_mem = params->d_mem;
            ex.d_mem = 1;
        }
        if (params->segment_size > 0) {
            c->cfg.segment_size = params->segment_size;
            ex.segment_size = 1;
        }
        if (params->correction >= 0) {
            c->cfg.correction = params->correction ? 1 : 0;
            ex.correction = 1;
        }
    }
    ck_adapter ad = {0, 0, 0.0, 0, 0};
    ARMT_TRY_GOTO(load_adapter(dir, &ad, err), out);

    /* tensors */
    for (int a = 0; a < c->n_ar; a++)
        for (size_t i = 0; i < st_count(c->ar[a]); i++)
            ARMT_TRY_GOTO(classify(c, st_get(c->ar[a], i), a, err), out);
    set_layout(c);

    ARMT_TRY_GOTO(armt_ck_infer_from_shapes(c, &ex, err), out);
    ARMT_TRY_GOTO(armt_config_check(&c->cfg, err), out);
    ARMT_TRY_GOTO(armt_ck_validate(c, &ad, err), out);

    if (c->any_lora) {
        /* rank from the config, else from the first LoRA tensor (validate made them all agree with ad.r) */
        double r = ad.r;
        for (int l = 0; l < c->cfg.n_layers && r <= 0; l++)
            for (int k = 0; k < ARMT_ROLE_N_LAYER_ROLES && r <= 0; k++)
                if (armt_ck_layer_slot(c, l, (armt_role)k)->la)
                    r = (double)armt_ck_layer_slot(c, l, (armt_role)k)->la->shape[0];
        double alpha = ad.has_alpha ? ad.alpha : r;
        if (!ad.present || !ad.has_alpha)
            armt_log(
                ARMT_LOG_WARN,
                "%s: LoRA tensors without %s: assuming lora_alpha = r (scale 1); PEFT's default would be "
                "lora_alpha = 8",
                path, ad.present ? "lora_alpha in adapter_config.json" : "adapter_config.json");
        c->lora_scale = ad.rslora ? alpha / sqrt(r) : alpha / r;
    }
out:
    free(side);
    free(dir);
    return st;
}

armt_status armt_ckpt_open(const char *path, const armt_model_params *params, armt_ckpt **out,
                           armt_err *err) {
    ARMT_RETURN_IF(!path || !out, ARMT_STATUS_INVALID_ARGUMENT, "armt_ckpt_open: NULL argument");
    *out = NULL;
    armt_ckpt *c = calloc(1, sizeof *c);
    ARMT_RETURN_IF(!c, ARMT_STATUS_OUT_OF_HOST_MEMORY, "armt_ckpt_open: out of memory");
    c->max_layer = -1;
    c->dec_inner = "";
    armt_status st = open_impl(c, path, params, err);
    if (st != ARMT_OK) {
        armt_ckpt_close(c);
        return st;
    }
    *out = c;
    return ARMT_OK;
}

void armt_ckpt_close(armt_ckpt *c) {
    if (!c) return;
    for (int a = 0; a < CK_MAX_ARCHIVES; a++)
        st_close(c->ar[a]);
    free(c->lslots);
    free(c->dec_prefix);
    free(c->armt_prefix);
    free(c->root);
    free(c->mem_name);
    free(c->sink_name);
    free(c);
}

/* ===================================================================================================== */
/* Queries and reads                                                                                     */
/* ===================================================================================================== */

const armt_config *armt_ckpt_config(const armt_ckpt *c) { return c ? &c->cfg : NULL; }
double armt_ckpt_lora_scale(const armt_ckpt *c) { return c && c->any_lora ? c->lora_scale : 0.0; }
const char *armt_ckpt_layout(const armt_ckpt *c) { return c ? c->layout : ""; }

static const ck_slot *find_slot(const armt_ckpt *c, armt_role role, int layer) {
    if (!c || role < 0 || role >= ARMT_ROLE_COUNT) return NULL;
    if (armt_role_is_layer(role)) {
        if (layer < 0 || layer >= c->cfg.n_layers) return NULL;
        return &c->lslots[(size_t)layer * ARMT_ROLE_N_LAYER_ROLES + (size_t)role];
    }
    return &c->gslots[role - ARMT_ROLE_N_LAYER_ROLES];
}

int armt_ckpt_has(const armt_ckpt *c, armt_role role, int layer) {
    if (c && role == ARMT_ROLE_LM_HEAD && c->cfg.tie_word_embeddings) return 0;
    const ck_slot *s = find_slot(c, role, layer);
    return s && s->t;
}

int armt_ckpt_has_lora(const armt_ckpt *c, armt_role role, int layer) {
    const ck_slot *s = find_slot(c, role, layer);
    return s && s->t && s->la && s->lb;
}

const char *armt_ckpt_tensor_name(const armt_ckpt *c, armt_role role, int layer) {
    if (c && role == ARMT_ROLE_LM_HEAD && c->cfg.tie_word_embeddings) role = ARMT_ROLE_EMBED;
    const ck_slot *s = find_slot(c, role, layer);
    return s && s->t ? s->t->name : NULL;
}

armt_status armt_ckpt_read(armt_ckpt *c, armt_role role, int layer, uint64_t first, uint64_t count,
                           float *dst, armt_err *err) {
    ARMT_RETURN_IF(!c, ARMT_STATUS_INVALID_ARGUMENT, "armt_ckpt_read: NULL checkpoint");
    ARMT_RETURN_IF(role < 0 || role >= ARMT_ROLE_COUNT, ARMT_STATUS_INVALID_ARGUMENT,
                   "armt_ckpt_read: bad role %d", (int)role);
    if (!armt_role_is_layer(role)) layer = 0;
    ARMT_RETURN_IF(armt_role_is_layer(role) && (layer < 0 || layer >= c->cfg.n_layers),
                   ARMT_STATUS_INVALID_ARGUMENT, "armt_ckpt_read: %s: layer %d out of range [0, %d)",
                   armt_role_name(role), layer, c->cfg.n_layers);
    if (role == ARMT_ROLE_LM_HEAD && c->cfg.tie_word_embeddings) role = ARMT_ROLE_EMBED;
    const ck_slot *s = find_slot(c, role, layer);
    ARMT_RETURN_IF(!s || !s->t, ARMT_STATUS_MISSING_TENSOR,
                   "armt_ckpt_read: the checkpoint has no %s for layer %d", armt_role_name(role), layer);
    uint64_t R, C;
    armt_role_shape(&c->cfg, role, &R, &C, NULL);
    uint64_t numel = R * C, end;
    ARMT_RETURN_IF(__builtin_add_overflow(first, count, &end) || end > numel, ARMT_STATUS_INVALID_ARGUMENT,
                   "armt_ckpt_read: %s: elements [%llu, +%llu) outside its %llu elements",
                   armt_role_name(role), (unsigned long long)first, (unsigned long long)count,
                   (unsigned long long)numel);
    if (count == 0) return ARMT_OK;
    ARMT_RETURN_IF(!dst, ARMT_STATUS_INVALID_ARGUMENT, "armt_ckpt_read: NULL destination");
    ARMT_TRY(st_read_f32(c->ar[s->ar], s->t, first, count, dst, err));
    if (!s->la || !s->lb) return ARMT_OK;

    /* LoRA: dst[e] += scale * sum_k B[row, k] A[k, col] for the rows the range touches */
    uint64_t rank = s->la->shape[0];
    uint64_t r0 = first / C, r1 = (end - 1) / C, nrows = r1 - r0 + 1;
    float *A = malloc((size_t)(rank * C) * sizeof *A);
    float *B = malloc((size_t)(nrows * rank) * sizeof *B);
    armt_status st = ARMT_OK;
    if (!A || !B) {
        st = armt_err_set(err, ARMT_STATUS_OUT_OF_HOST_MEMORY, "armt_ckpt_read: out of memory");
        goto done;
    }
    ARMT_TRY_GOTO(st_read_f32(c->ar[s->ar_la], s->la, 0, rank * C, A, err), done);
    ARMT_TRY_GOTO(st_read_f32(c->ar[s->ar_lb], s->lb, r0 * rank, nrows * rank, B, err), done);
    for (uint64_t e = first; e < end; e++) {
        uint64_t row = e / C, col = e % C;
        const float *b = B + (row - r0) * rank;
        double acc = 0.0;
        for (uint64_t k = 0; k < rank; k++)
            acc += (double)b[k] * (double)A[k * C + col];
        dst[e - first] = (float)((double)dst[e - first] + c->lora_scale * acc);
    }
done:
    free(A);
    free(B);
    return st;
}
