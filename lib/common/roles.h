/*
 * roles.h - the named weight tensors ("roles") of an ARMT model and their shapes.
 *
 * Per-layer roles are stored, on the device and in every host interface, in the HF layout (out, in)
 * row-major; a model holds one device buffer per role for all layers: [n_layers, out, in], so layer l
 * starts at element l * out * in. Global roles have no layer dimension.
 */
#ifndef ARMT_ROLES_H
#define ARMT_ROLES_H

#include "armt.h"

#include <stdint.h>

typedef enum armt_role {
    /* per layer */
    ARMT_ROLE_WQ = 0,    /* (n_heads * head_dim, d)         self_attn.q_proj.weight          */
    ARMT_ROLE_WK,        /* (n_kv_heads * head_dim, d)      self_attn.k_proj.weight          */
    ARMT_ROLE_WV,        /* (n_kv_heads * head_dim, d)      self_attn.v_proj.weight          */
    ARMT_ROLE_WO,        /* (d, n_heads * head_dim)         self_attn.o_proj.weight          */
    ARMT_ROLE_WG,        /* (ffn, d)                        mlp.gate_proj.weight             */
    ARMT_ROLE_WU,        /* (ffn, d)                        mlp.up_proj.weight               */
    ARMT_ROLE_WD,        /* (d, ffn)                        mlp.down_proj.weight             */
    ARMT_ROLE_NORM_IN,   /* (d)                             input_layernorm.weight           */
    ARMT_ROLE_NORM_POST, /* (d)                             post_attention_layernorm.weight  */
    ARMT_ROLE_WMQ,       /* (d_mem, d)                      W_mq.weight                      */
    ARMT_ROLE_WMK,       /* (d_mem, d)                      W_mk.weight                      */
    ARMT_ROLE_WMV,       /* (d, d)                          W_mv.weight                      */
    ARMT_ROLE_WMB,       /* (nb, d)                         W_mb.weight                      */
    ARMT_ROLE_BMB,       /* (nb)                            W_mb.bias                        */
                         /*   nb: memory heads H (1 in the paper), or d with gating              */
    ARMT_ROLE_N_LAYER_ROLES,
    /* global */
    ARMT_ROLE_EMBED = ARMT_ROLE_N_LAYER_ROLES, /* (vocab, d)  model.embed_tokens.weight        */
    ARMT_ROLE_LM_HEAD,    /* (vocab, d)                      lm_head.weight (absent if tied)  */
    ARMT_ROLE_NORM_FINAL, /* (d)                             model.norm.weight                */
    ARMT_ROLE_MEM,        /* (M, d)                          memory_cell.memory               */
    ARMT_ROLE_SINK,       /* (1, d)                          sink (use_sink only)             */
    ARMT_ROLE_COUNT
} armt_role;

static inline int armt_role_is_layer(armt_role r) { return r < ARMT_ROLE_N_LAYER_ROLES; }
/* 1 for the ARMT-specific roles (absent from a plain LLaMA checkpoint). */
static inline int armt_role_is_armt(armt_role r) {
    return (r >= ARMT_ROLE_WMQ && r <= ARMT_ROLE_BMB) || r == ARMT_ROLE_MEM || r == ARMT_ROLE_SINK;
}

/* Short stable name ("wq", "norm_in", "embed", ...). */
const char *armt_role_name(armt_role r);
/* Shape of one layer's tensor (or of the global tensor): rows x cols (cols = 1 for vectors written as
 * (n), rows = 1 for (1, d)). ndim is the HF tensor rank (1 or 2). */
void armt_role_shape(const armt_config *cfg, armt_role r, uint64_t *rows, uint64_t *cols, int *ndim);
/* Elements of one layer's (or the global) tensor. */
uint64_t armt_role_numel(const armt_config *cfg, armt_role r);

#endif
