/*
 * checkpoint_internal.h - the checkpoint reader's structures, shared by checkpoint.c (finding and opening)
 * and checkpoint_check.c (validation and the names of absent tensors).
 */
#ifndef ARMT_CHECKPOINT_INTERNAL_H
#define ARMT_CHECKPOINT_INTERNAL_H

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

typedef struct ck_slot {
    const st_tensor *t;   /* the weight: <module>.weight or <module>.base_layer.weight */
    const st_tensor *la;  /* lora_A (r, in), or NULL                                     */
    const st_tensor *lb;  /* lora_B (out, r), or NULL                                    */
    int ar, ar_la, ar_lb; /* archive of each                                            */
} ck_slot;

struct armt_ckpt {
    armt_config cfg;
    st_archive *ar[CK_MAX_ARCHIVES];
    int n_ar;
    ck_slot *lslots; /* [slot_layers][ARMT_ROLE_N_LAYER_ROLES]                  */
    int slot_layers; /* allocated layers                                         */
    int max_layer;   /* highest layer index seen; -1 for none                    */
    ck_slot gslots[CK_N_GLOBAL];
    int embed_from_lm_head;
    int any_lora, any_peft_prefix;
    double lora_scale;
    char layout[32];
    /* for the names of missing tensors */
    char *dec_prefix;      /* "memory_cell.layers." etc. (decoder roles), with dec_inner */
    const char *dec_inner; /* "" or "layer."                                            */
    char *armt_prefix;     /* the prefix seen on W_m* tensors                          */
    char *root;            /* prefix of model.norm.weight / lm_head.weight                 */
    char *mem_name;        /* the name of the memory tensor                            */
    char *sink_name;       /* the name of the sink tensor                              */
    char namebuf[512];
};

/* Which of the four ARMT fields a source names explicitly. */
typedef struct ck_explicit {
    int num_mem_tokens, d_mem, segment_size, correction;
} ck_explicit;

typedef struct ck_adapter {
    int present;
    int r; /* 0 if not given */
    double alpha;
    int has_alpha;
    int rslora;
} ck_adapter;

typedef enum ck_part { CK_WEIGHT = 0, CK_LORA_A, CK_LORA_B } ck_part;

/* checkpoint.c */
armt_status armt_ck_grow_layers(armt_ckpt *c, int layer, armt_err *err);
ck_slot *armt_ck_layer_slot(armt_ckpt *c, int layer, armt_role role);

/* checkpoint_check.c */
armt_status armt_ck_validate(armt_ckpt *c, const ck_adapter *ad, armt_err *err);
armt_status armt_ck_infer_from_shapes(armt_ckpt *c, const ck_explicit *ex, armt_err *err);

#endif
