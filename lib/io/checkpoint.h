/*
 * checkpoint.h - opening a checkpoint and resolving its key layout into weight roles (roles.h).
 *
 * Where the files are:
 *   - a directory: config.json (required), armt_config.json and adapter_config.json (optional), and the
 *     weights in model.safetensors or a sharded model.safetensors.index.json. An optional side file
 *     memory.safetensors in the same directory is read as well. It is meant for ARMT tensors
 *     (memory_cell.memory, W_m*) that go with a plain HF checkpoint. A tensor already found in the main
 *     weights wins over the side file.
 *   - one .safetensors file: the configuration is the "armt_config" entry of its __metadata__ (the full
 *     form that armt_model_save writes, armt_config_from_json_full). Without that entry, the config.json,
 *     armt_config.json and adapter_config.json next to the file are used, as for a directory. This is how
 *     a file such as tests/data/armt_ref/model_saved.safetensors, which has no embedded config, is opened.
 *
 * ARMT parameters, each source overriding the previous one: config.json top-level fields, armt_config.json,
 * the __metadata__ "armt_config" entry (directory mode: only its four ARMT fields), then params
 * (num_mem_tokens, d_mem, segment_size when > 0; correction when >= 0). d_mem and num_mem_tokens then
 * follow from the shapes of W_mq and memory when those tensors are present. If a source named a value
 * explicitly and the tensor disagrees: ARMT_STATUS_BAD_CONFIG. If num_mem_tokens or segment_size is still
 * unknown (a plain LLaMA without memory and without ARMT configuration): ARMT_STATUS_BAD_CONFIG. Give them
 * through armt_config.json or params.
 *
 * Key layouts (the prefix is found per tensor, so combinations such as ARMT around PEFT also resolve):
 *   hf          model.layers.{l}.self_attn.q_proj.weight, model.embed_tokens.weight, model.norm.weight,
 *               lm_head.weight
 *   armt-model  memory_cell.model.model.layers.{l}.layer.<hf suffix>, memory_cell.model.model.layers.{l}.W_m*
 *   armt-cell   memory_cell.layers.{l}.layer.<hf suffix>, memory_cell.layers.{l}.W_m* (what
 *               safetensors.torch.save_model writes, docs/MATH.md §5.1)
 *   +peft       base_model.model.<keys>. A LoRA target has <module>.base_layer.weight,
 *               <module>.lora_A.<adapter>.weight (r, in) and <module>.lora_B.<adapter>.weight (out, r).
 *               It is merged on read: W + scale * B A, scale = lora_alpha / r from adapter_config.json
 *               (lora_alpha / sqrt(r) with use_rslora). Without adapter_config.json, or without lora_alpha
 *               in it, alpha = r, so scale = 1. A warning is logged in that case, since PEFT's own default
 *               is lora_alpha = 8. rank_pattern / alpha_pattern entries, fan_in_fan_out, DoRA, several
 *               adapters, and LoRA on anything but the per-layer linear weights are UNSUPPORTED.
 * The embedding comes from embed_tokens. If that is absent and the model is tied, it comes from lm_head
 * (the form save_model writes for a tied model). Tensors with unknown names are ignored (for example
 * rotary_emb.inv_freq). Biases other than W_mb.bias are UNSUPPORTED.
 *
 * Validation in armt_ckpt_open:
 *   armt_config_check on the final config                                -> BAD_CONFIG
 *   a per-layer tensor with layer index >= n_layers                      -> BAD_CONFIG
 *   each present tensor's shape against the config (roles.h)             -> SHAPE_MISMATCH naming the key,
 *                                                                           the expected and found shapes
 *   every LLaMA tensor of every layer, embed (or a tied lm_head), norm, and lm_head when untied
 *                                                                        -> MISSING_TENSOR naming the key
 *   per-layer ARMT tensors: all or none (W_m{q,k,v}, W_mb weight and bias in every layer), and memory
 *   with them (memory alone is accepted)                                 -> MISSING_TENSOR
 *   a lora_A without its lora_B or base weight (or the reverse)          -> MISSING_TENSOR
 *   adapter_config.json r different from the tensors' rank               -> BAD_CONFIG
 */
#ifndef ARMT_CHECKPOINT_H
#define ARMT_CHECKPOINT_H

#include "armt.h"
#include "common/error.h"
#include "common/roles.h"

#include <stdint.h>

typedef struct armt_ckpt armt_ckpt;

/* Opens and validates a checkpoint (see above). params may be NULL. On failure *out is NULL and err says
 * why. */
armt_status armt_ckpt_open(const char *path, const armt_model_params *params, armt_ckpt **out, armt_err *err);

const armt_config *armt_ckpt_config(const armt_ckpt *c);

/* 1 when the checkpoint holds that role (for layer roles, in that layer). 0 for ARMT tensors absent from
 * a plain LLaMA checkpoint, for LM_HEAD when the model is tied (the embedding serves), and for bad
 * arguments. */
int armt_ckpt_has(const armt_ckpt *c, armt_role role, int layer);

/* 1 when the role's tensor in that layer carries a LoRA delta that armt_ckpt_read merges. */
int armt_ckpt_has_lora(const armt_ckpt *c, armt_role role, int layer);

/* The LoRA scale applied on read (alpha / r), 0 when the checkpoint has no LoRA tensors. */
double armt_ckpt_lora_scale(const armt_ckpt *c);

/* The detected layout: "hf", "armt-model", "armt-cell", each with "+peft" appended for the PEFT prefix or
 * LoRA tensors (for example "armt-model+peft"). Static storage inside c. */
const char *armt_ckpt_layout(const armt_ckpt *c);

/* Name of the tensor serving role/layer (the base_layer weight for a LoRA target), NULL if absent. */
const char *armt_ckpt_tensor_name(const armt_ckpt *c, armt_role role, int layer);

/* Reads elements [first, first + count) of the role's tensor for that layer (layer ignored for global
 * roles), flattened in the HF (out, in) row-major layout, converted to float, with LoRA merged
 * (W + scale * B A) for the rows requested. LM_HEAD of a tied model reads the embedding.
 * Errors: INVALID_ARGUMENT (role, layer or range out of bounds), MISSING_TENSOR (role absent), IO_ERROR,
 * OUT_OF_HOST_MEMORY. */
armt_status armt_ckpt_read(armt_ckpt *c, armt_role role, int layer, uint64_t first, uint64_t count,
                           float *dst, armt_err *err);

void armt_ckpt_close(armt_ckpt *c); /* accepts NULL */

#endif
