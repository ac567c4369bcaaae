/*
 * checkpoint_check.c - a checkpoint's tensors against the configuration (every role present, shapes
 * right, LoRA pairs whole), the configuration inferred from shapes, and the names of absent tensors.
 */
#include "config.h"

#include "io/checkpoint_internal.h"

#include "io/armt_config.h"

static void shape_str(const st_tensor *t, char *buf, size_t n) {
    size_t o = 0;
    o += (size_t)snprintf(buf + o, n - o, "[");
    for (int i = 0; i < t->ndim && o < n; i++)
        o += (size_t)snprintf(buf + o, n - o, "%s%llu", i ? ", " : "", (unsigned long long)t->shape[i]);
    if (o < n) snprintf(buf + o, n - o, "]");
}

/* HF suffix of a per-layer role, after "layers.N." (and "layer." for decoder roles in the ARMT wrapper). */
static const char *role_suffix(armt_role r) {
    switch (r) {
    case ARMT_ROLE_WQ: return "self_attn.q_proj.weight";
    case ARMT_ROLE_WK: return "self_attn.k_proj.weight";
    case ARMT_ROLE_WV: return "self_attn.v_proj.weight";
    case ARMT_ROLE_WO: return "self_attn.o_proj.weight";
    case ARMT_ROLE_WG: return "mlp.gate_proj.weight";
    case ARMT_ROLE_WU: return "mlp.up_proj.weight";
    case ARMT_ROLE_WD: return "mlp.down_proj.weight";
    case ARMT_ROLE_NORM_IN: return "input_layernorm.weight";
    case ARMT_ROLE_NORM_POST: return "post_attention_layernorm.weight";
    case ARMT_ROLE_WMQ: return "W_mq.weight";
    case ARMT_ROLE_WMK: return "W_mk.weight";
    case ARMT_ROLE_WMV: return "W_mv.weight";
    case ARMT_ROLE_WMB: return "W_mb.weight";
    case ARMT_ROLE_BMB: return "W_mb.bias";
    default: return "?";
    }
}

/* ===================================================================================================== */
/* Names of absent tensors (for messages)                                                                */
/* ===================================================================================================== */

static const char *expected_name(armt_ckpt *c, armt_role role, int layer) {
    char root[256];
    snprintf(root, sizeof root, "%s", c->root ? c->root : "");
    if (!c->root && c->dec_prefix) {
        /* derive it from the decoder prefix: "<root>model.layers." or the cell's "memory_cell.layers." */
        size_t n = strlen(c->dec_prefix);
        if (n >= 13 && strcmp(c->dec_prefix + n - 13, "model.layers.") == 0)
            snprintf(root, sizeof root, "%.*s", (int)(n - 13), c->dec_prefix);
        else if (strcmp(c->dec_prefix, "memory_cell.layers.") == 0)
            snprintf(root, sizeof root, "memory_cell.model.");
    }
    if (armt_role_is_layer(role)) {
        const char *prefix =
            armt_role_is_armt(role) ? (c->armt_prefix ? c->armt_prefix : c->dec_prefix) : c->dec_prefix;
        if (!prefix) prefix = "model.layers.";
        const char *inner = (!armt_role_is_armt(role) && c->dec_prefix) ? c->dec_inner : "";
        snprintf(c->namebuf, sizeof c->namebuf, "%s%d.%s%s", prefix, layer, inner, role_suffix(role));
    } else {
        switch (role) {
        case ARMT_ROLE_EMBED:
            snprintf(c->namebuf, sizeof c->namebuf, "%smodel.embed_tokens.weight", root);
            break;
        case ARMT_ROLE_LM_HEAD: snprintf(c->namebuf, sizeof c->namebuf, "%slm_head.weight", root); break;
        case ARMT_ROLE_NORM_FINAL:
            snprintf(c->namebuf, sizeof c->namebuf, "%smodel.norm.weight", root);
            break;
        case ARMT_ROLE_SINK: {
            /* beside the memory tensor: "sink", "armt.memory_cell.sink", ... */
            const char *mem = c->mem_name ? c->mem_name : "memory_cell.memory";
            size_t n = strlen(mem), k = n >= 6 && strcmp(mem + n - 6, "memory") == 0 ? n - 6 : n;
            snprintf(c->namebuf, sizeof c->namebuf, "%.*s%ssink", (int)k, mem, k == n ? "." : "");
            break;
        }
        default:
            snprintf(c->namebuf, sizeof c->namebuf, "%s", c->mem_name ? c->mem_name : "memory_cell.memory");
        }
    }
    return c->namebuf;
}

/* "<weight name minus .weight>.lora_X.default.weight" for a LoRA tensor whose partner is absent. */
static const char *lora_partner_name(armt_ckpt *c, const st_tensor *present, const char *want) {
    const char *p = strstr(present->name, ".lora_");
    if (!p) {
        snprintf(c->namebuf, sizeof c->namebuf, "%s", present->name);
        return c->namebuf;
    }
    const char *adapter = p + 8; /* after ".lora_A." */
    snprintf(c->namebuf, sizeof c->namebuf, "%.*s.%s.%s", (int)(p - present->name), present->name, want,
             adapter);
    return c->namebuf;
}

/* ===================================================================================================== */
/* Validation                                                                                            */
/* ===================================================================================================== */

static armt_status check_shape(const st_tensor *t, int ndim, uint64_t r, uint64_t cols, armt_err *err) {
    int ok = t->ndim == ndim && t->shape[0] == r && (ndim == 1 || t->shape[1] == cols);
    if (ok) return ARMT_OK;
    char found[128], expected[64];
    shape_str(t, found, sizeof found);
    if (ndim == 1)
        snprintf(expected, sizeof expected, "[%llu]", (unsigned long long)r);
    else
        snprintf(expected, sizeof expected, "[%llu, %llu]", (unsigned long long)r, (unsigned long long)cols);
    return armt_err_set(err, ARMT_STATUS_SHAPE_MISMATCH, "checkpoint: tensor '%s' has shape %s, expected %s",
                        t->name, found, expected);
}

static armt_status check_slot(armt_ckpt *c, armt_role role, int layer, const ck_slot *s, const ck_adapter *ad,
                              armt_err *err) {
    uint64_t R, C;
    int nd;
    armt_role_shape(&c->cfg, role, &R, &C, &nd);
    if (s->t) ARMT_TRY(check_shape(s->t, nd, R, C, err));
    if (!s->la && !s->lb) return ARMT_OK;
    /* LoRA: partners present, shapes (r, in) and (out, r) */
    if (!s->t)
        return armt_err_set(err, ARMT_STATUS_MISSING_TENSOR,
                            "checkpoint: tensor '%s' is missing (LoRA base of '%s')",
                            expected_name(c, role, layer), s->la ? s->la->name : s->lb->name);
    if (!s->lb)
        return armt_err_set(err, ARMT_STATUS_MISSING_TENSOR,
                            "checkpoint: tensor '%s' is missing (partner of '%s')",
                            lora_partner_name(c, s->la, "lora_B"), s->la->name);
    if (!s->la)
        return armt_err_set(err, ARMT_STATUS_MISSING_TENSOR,
                            "checkpoint: tensor '%s' is missing (partner of '%s')",
                            lora_partner_name(c, s->lb, "lora_A"), s->lb->name);
    uint64_t rank = s->la->ndim == 2 ? s->la->shape[0] : 0;
    ARMT_RETURN_IF(rank == 0, ARMT_STATUS_SHAPE_MISMATCH,
                   "checkpoint: LoRA tensor '%s' must be 2-D with rank > 0", s->la->name);
    ARMT_TRY(check_shape(s->la, 2, rank, C, err));
    ARMT_TRY(check_shape(s->lb, 2, R, rank, err));
    ARMT_RETURN_IF(ad->present && ad->r > 0 && (uint64_t)ad->r != rank, ARMT_STATUS_BAD_CONFIG,
                   "checkpoint: adapter_config.json has r = %d but '%s' has rank %llu", ad->r, s->la->name,
                   (unsigned long long)rank);
    return ARMT_OK;
}

armt_status armt_ck_validate(armt_ckpt *c, const ck_adapter *ad, armt_err *err) {
    const armt_config *cfg = &c->cfg;
    ARMT_RETURN_IF(c->max_layer >= cfg->n_layers, ARMT_STATUS_BAD_CONFIG,
                   "checkpoint: the config has %d layers but the checkpoint holds tensors of layer %d",
                   cfg->n_layers, c->max_layer);
    ARMT_TRY(armt_ck_grow_layers(c, cfg->n_layers - 1, err)); /* every layer has slots, possibly empty */

    /* tied embedding stored only as lm_head */
    ck_slot *emb = &c->gslots[ARMT_ROLE_EMBED - ARMT_ROLE_N_LAYER_ROLES];
    ck_slot *head = &c->gslots[ARMT_ROLE_LM_HEAD - ARMT_ROLE_N_LAYER_ROLES];
    if (!emb->t && cfg->tie_word_embeddings && head->t) {
        *emb = *head;
        c->embed_from_lm_head = 1;
    }

    /* shapes of everything present */
    for (int l = 0; l < cfg->n_layers; l++)
        for (int r = 0; r < ARMT_ROLE_N_LAYER_ROLES; r++)
            ARMT_TRY(check_slot(c, (armt_role)r, l, armt_ck_layer_slot(c, l, (armt_role)r), ad, err));
    for (int g = 0; g < CK_N_GLOBAL; g++)
        ARMT_TRY(check_slot(c, (armt_role)(ARMT_ROLE_N_LAYER_ROLES + g), 0, &c->gslots[g], ad, err));

    /* required tensors */
    for (int l = 0; l < cfg->n_layers; l++)
        for (int r = ARMT_ROLE_WQ; r <= ARMT_ROLE_NORM_POST; r++)
            ARMT_RETURN_IF(!armt_ck_layer_slot(c, l, (armt_role)r)->t, ARMT_STATUS_MISSING_TENSOR,
                           "checkpoint: tensor '%s' is missing", expected_name(c, (armt_role)r, l));
    ARMT_RETURN_IF(!emb->t, ARMT_STATUS_MISSING_TENSOR, "checkpoint: tensor '%s' is missing%s",
                   expected_name(c, ARMT_ROLE_EMBED, 0),
                   cfg->tie_word_embeddings ? " (and no tied lm_head.weight either)" : "");
    ARMT_RETURN_IF(!cfg->tie_word_embeddings && !head->t, ARMT_STATUS_MISSING_TENSOR,
                   "checkpoint: tensor '%s' is missing (tie_word_embeddings is false)",
                   expected_name(c, ARMT_ROLE_LM_HEAD, 0));
    ARMT_RETURN_IF(!c->gslots[ARMT_ROLE_NORM_FINAL - ARMT_ROLE_N_LAYER_ROLES].t, ARMT_STATUS_MISSING_TENSOR,
                   "checkpoint: tensor '%s' is missing", expected_name(c, ARMT_ROLE_NORM_FINAL, 0));

    /* per-layer ARMT tensors: all or none, and with them the memory (memory alone is fine: the side file of a
     * plain checkpoint may supply just that) */
    int any_armt = 0;
    for (int l = 0; l < cfg->n_layers; l++)
        for (int r = ARMT_ROLE_WMQ; r <= ARMT_ROLE_BMB; r++) {
            const st_tensor *t = armt_ck_layer_slot(c, l, (armt_role)r)->t;
            /* wrap_layers = false: the reference builds no memory for that layer */
            ARMT_RETURN_IF(t && armt_config_memory_off(cfg, l), ARMT_STATUS_BAD_CONFIG,
                           "checkpoint: tensor '%s' belongs to layer %d, which wrap_layers leaves without "
                           "memory",
                           t->name, l);
            if (t) any_armt = 1;
        }
    if (any_armt) {
        for (int l = 0; l < cfg->n_layers; l++)
            for (int r = ARMT_ROLE_WMQ; r <= ARMT_ROLE_BMB && !armt_config_memory_off(cfg, l); r++)
                ARMT_RETURN_IF(!armt_ck_layer_slot(c, l, (armt_role)r)->t, ARMT_STATUS_MISSING_TENSOR,
                               "checkpoint: tensor '%s' is missing (the checkpoint has other ARMT tensors)",
                               expected_name(c, (armt_role)r, l));
        ARMT_RETURN_IF(!c->gslots[ARMT_ROLE_MEM - ARMT_ROLE_N_LAYER_ROLES].t, ARMT_STATUS_MISSING_TENSOR,
                       "checkpoint: tensor '%s' is missing (the checkpoint has other ARMT tensors)",
                       expected_name(c, ARMT_ROLE_MEM, 0));
        ARMT_RETURN_IF(cfg->use_sink && !c->gslots[ARMT_ROLE_SINK - ARMT_ROLE_N_LAYER_ROLES].t,
                       ARMT_STATUS_MISSING_TENSOR,
                       "checkpoint: tensor '%s' is missing (the configuration has use_sink = true)",
                       expected_name(c, ARMT_ROLE_SINK, 0));
    }
    /* a sink the configuration does not use: the files disagree (the reference makes no sink then) */
    const st_tensor *sink = c->gslots[ARMT_ROLE_SINK - ARMT_ROLE_N_LAYER_ROLES].t;
    ARMT_RETURN_IF(sink && !cfg->use_sink, ARMT_STATUS_BAD_CONFIG,
                   "checkpoint: tensor '%s' is a sink, but the configuration has use_sink = false",
                   sink->name);
    return ARMT_OK;
}

/* d_mem and num_mem_tokens from the W_mq and memory shapes, against what the configuration named explicitly.
 */
armt_status armt_ck_infer_from_shapes(armt_ckpt *c, const ck_explicit *ex, armt_err *err) {
    armt_config *cfg = &c->cfg;
    const st_tensor *wmq = NULL;
    for (int l = 0; l < c->slot_layers && !wmq; l++)
        wmq = armt_ck_layer_slot(c, l, ARMT_ROLE_WMQ)->t;
    if (wmq && wmq->ndim == 2 && wmq->shape[0] > 0 && wmq->shape[0] <= (uint64_t)(1 << 24)) {
        int d_mem = (int)wmq->shape[0];
        ARMT_RETURN_IF(ex->d_mem && cfg->d_mem > 0 && cfg->d_mem != d_mem, ARMT_STATUS_BAD_CONFIG,
                       "checkpoint: the configuration says d_mem = %d but '%s' has %d rows", cfg->d_mem,
                       wmq->name, d_mem);
        cfg->d_mem = d_mem;
    }
    const st_tensor *mem = c->gslots[ARMT_ROLE_MEM - ARMT_ROLE_N_LAYER_ROLES].t;
    if (mem && mem->ndim == 2 && mem->shape[0] > 0 && mem->shape[0] <= (uint64_t)(1 << 24)) {
        int m = (int)mem->shape[0];
        ARMT_RETURN_IF(ex->num_mem_tokens && cfg->num_mem_tokens > 0 && cfg->num_mem_tokens != m,
                       ARMT_STATUS_BAD_CONFIG,
                       "checkpoint: the configuration says num_mem_tokens = %d but '%s' has %d rows",
                       cfg->num_mem_tokens, mem->name, m);
        cfg->num_mem_tokens = m;
    }
    ARMT_RETURN_IF(cfg->num_mem_tokens <= 0, ARMT_STATUS_BAD_CONFIG,
                   "checkpoint: num_mem_tokens is unknown (no memory tensor, and neither config.json, "
                   "armt_config.json, the file's metadata nor the params give it)");
    ARMT_RETURN_IF(
        cfg->segment_size <= 0, ARMT_STATUS_BAD_CONFIG,
        "checkpoint: segment_size is unknown (neither config.json, armt_config.json, the file's metadata "
        "nor the params give it)");
    return ARMT_OK;
}
