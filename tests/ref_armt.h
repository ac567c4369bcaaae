/*
 * ref_armt.h - plain C, double-precision CPU reference of the ARMT forward pass (tests only).
 *
 * This is the independent reference the OpenCL implementation is compared against. It follows
 * docs/MATH.md literally (§2 segmentation and memory tokens, §3 associative memory with
 * DPFP nu = 3, §4 LLaMA decoder layer with llama3 RoPE, §6 sequential order, §8.2 exact first-segment
 * rule). Every intermediate value is a double; weights are read as float and widened on the fly.
 * Nothing here is optimised: it is meant for tiny and small models.
 *
 * Weight layout (ref_model): one pointer per (role, layer), each pointing at that layer's tensor in the
 * HF layout (out, in) row-major, float32, with the shapes of lib/common/roles.h (armt_role_shape). Vectors
 * (norm_in, norm_post, bmb) are plain arrays. Use ref_model_set_stacked() when the weights live in
 * per-role buffers [n_layers, out, in] (the library's layout).
 *
 * Return values: 0 on success, -1 on a bad argument (NULL model/state where needed, token id out of
 * range, n_layers > REF_MAX_LAYERS, missing weight), -2 when out of memory. The state is untouched on
 * -1 from argument checks (they run before any computation).
 */
#ifndef REF_ARMT_H
#define REF_ARMT_H

#include <stddef.h>
#include <stdint.h>

#include "armt.h"
#include "common/roles.h"

#define REF_MAX_LAYERS 256

typedef struct ref_model {
    armt_config cfg;
    /* w[role][layer]: layer `layer`'s tensor of per-layer role `role`, HF (out, in) row-major float. */
    const float *w[ARMT_ROLE_N_LAYER_ROLES][REF_MAX_LAYERS];
    const float *embed;      /* (vocab, d)                                                   */
    const float *lm_head;    /* (vocab, d); NULL => tied: the embedding is used as lm_head   */
    const float *norm_final; /* (d)                                                          */
    const float *mem;        /* (M, d) memory-token embeddings, the same for every segment   */
    const float *sink;       /* (1, d) the sink row (use_sink), else NULL                    */
} ref_model;

/* Associative memory state of all layers (docs/MATH.md §3.1), double precision.
 * A fresh state (ref_state_new / ref_state_reset) is all zeros with written[l] = 0: the next segment of
 * every layer is a "first segment" (no read; write with Vprev = 0, gamma = 1). */
typedef struct ref_state {
    double *w_mem;          /* [n_layers, d_key, d]  */
    double *z;              /* [n_layers, d_key]     */
    unsigned char *written; /* [n_layers]            */
    int n_layers, d_key, d;
    /* sliding window (cfg.sliding_window; NULL otherwise): per layer the previous segments' last text rows,
     * keys after RoPE and values, oldest first, win_len of win_rows (= segment_size) held */
    double *win_k, *win_v; /* [n_layers, win_rows, win_width] */
    int win_rows, win_width, win_len;
} ref_state;

/* Points m->w[r][l] at role_bufs[r] + l * numel(r) for the per-layer roles and sets the global pointers
 * from role_bufs[ARMT_ROLE_EMBED ...] (ARMT_ROLE_LM_HEAD may be NULL: tied). role_bufs has
 * ARMT_ROLE_COUNT entries; m->cfg = *cfg. */
void ref_model_set_stacked(ref_model *m, const armt_config *cfg,
                           const float *const role_bufs[ARMT_ROLE_COUNT]);

ref_state *ref_state_new(const armt_config *cfg);
void ref_state_free(ref_state *s); /* accepts NULL */
void ref_state_reset(ref_state *s);

/* ARMT forward over ids[0..n). The ids are cut into segments of cfg.segment_size tokens starting at
 * ids[0] (the last may be shorter); each segment is X0 = concat(SINK (use_sink), E[ids_s], MEM), positions
 * 0..T_s-1; with a sliding window each layer's attention also sees the state's window (src/armt_sw.py), which
 * then keeps the last segment_size text rows;
 * segments run in the sequential order of docs/MATH.md §6 and update *st, which persists across calls (so a
 * call split at a segment boundary equals one call; a split elsewhere changes the segmentation).
 * Outputs (either may be NULL), token rows only:
 *   logits [n, vocab]: lm_head(RMSNorm_final(H)),
 *   hidden [n, d]    : RMSNorm_final(H) (the final-normed hidden states).
 * n == 0 does nothing and returns 0. */
int ref_armt_forward(const ref_model *m, ref_state *st, const int32_t *ids, size_t n, double *logits,
                     double *hidden);

/* Plain LLaMA over the whole sequence: positions 0..n-1, no memory tokens, no memory reads or writes.
 * The ARMT weights (wmq .. bmb, mem) are not used and may be NULL. */
int ref_llama_forward(const ref_model *m, const int32_t *ids, size_t n, double *logits, double *hidden);

/* ---- generation (docs/MATH.md §3.6) ------------------------------------------------------------------ */

/* Generation tail (docs/MATH.md §3.6): ids[0..n) run WITHOUT memory tokens (after the sink row with
 * use_sink), positions 0..n-1 (1..n after a sink), attending to the window with a sliding window, each layer
 * applies the memory read to every row when that layer has written (st->written[l]), and nothing is written
 * (state unchanged). logits [n, vocab] of every row (final norm + lm_head); NULL computes nothing useful
 * but still validates. There is no segmentation: n may exceed segment_size (the generated tokens extend the
 * tail past L, as in the reference, whose HF generate runs on with a KV cache).
 * For n <= segment_size the rows equal the token rows of ref_armt_forward over the same ids from a copy of
 * *st (the memory tokens come after the tokens, attention is causal, the write only affects later segments).
 * n == 0 does nothing and returns 0. */
int ref_armt_tail_forward(const ref_model *m, const ref_state *st, const int32_t *ids, size_t n,
                          double *logits);

/* Greedy generation with the reference semantics, i.e. those of the ARMT authors'
 * AssociativeRecurrentWrapper.generate (modeling_amt/language_modeling.py at commit 98ea91b):
 *   - the prompt is cut into segments of segment_size tokens from the left (split_tensor, alignment None);
 *   - every segment but the last goes through the normal forward (memory read and written): here
 *     ref_armt_forward over prompt[0..cut), cut = (ceil(n / L) - 1) * L, updating *st;
 *   - the last segment, full or partial, is the tail: AssociativeMemoryCell.generate drops its memory tokens
 *     (inputs_embeds[:, :-M]), switches the layers to generate_mode (no writes) and hands it to HF generate.
 *     So when n is a multiple of L the last FULL segment is the tail (it is never written to memory, and the
 *     tail is never empty). The paper's universal executor (DB:universal_executor.py, "if cut == len, one
 *     segment is moved to the tail", docs/MATH.md §7.4) agrees. Its fast executor (DB:fast_executor.py)
 *     cuts at floor(n / L) * L when n > L, so for n = k L with k >= 2 its tail is empty and its
 *     segmented[-1] raises IndexError; for other n all three agree;
 *   - tokens are then generated greedily: token k is the argmax (ties: lowest id) of the last row of
 *     ref_armt_tail_forward(tail + out[0..k)), i.e. the HF KV-cache decode of the tail with the read applied
 *     to every new token using the memory left by the prefix.
 * Stops after max_new tokens or when stop_id (>= 0) is produced (the stop token is included in out).
 * Returns the number generated, or negative on error (-1 bad argument, including n == 0 — the reference
 * fails on an empty prompt — or max_new < 0 or out == NULL with max_new > 0; -2 out of memory).
 * State: the reference calls zero_mem() at the start and at the end of generate, so to reproduce it pass a
 * fresh (or reset) *st. On return *st holds the memory after the prefix segments (what the tail read); the
 * tail and the generated tokens are never written (the reference then discards the memory). */
int ref_armt_generate_greedy(const ref_model *m, ref_state *st, const int32_t *prompt, size_t n, int max_new,
                             int32_t stop_id, int32_t *out);
/* The same, and margin[k] (when not NULL): token k's logit minus the runner-up's, over the step's largest
 * |logit| (how far a perturbed computation may drift before its greedy choice can differ). */
int ref_armt_generate_greedy_margins(const ref_model *m, ref_state *st, const int32_t *prompt, size_t n,
                                     int max_new, int32_t stop_id, int32_t *out, double *margin);

/* ---- building blocks, exposed so that tests can check them in isolation ---------------------------- */

/* DPFP with nu = 3 (docs/MATH.md §3.2): x (d_mem) -> out (6 * d_mem).
 * x' = [relu(x), relu(-x)] (2 d_mem); out[(j-1)*2d_mem + i] = x'[i] * x'[(i - j) mod 2d_mem], j = 1..3. */
void ref_dpfp(const double *x, int d_mem, double *out);

/* RoPE inverse frequencies (head_dim / 2 values): theta^(-2i/head_dim), with the llama3 scaling of
 * docs/MATH.md §4.2 when cfg->rope_type == ARMT_ROPE_LLAMA3. */
void ref_rope_inv_freq(const armt_config *cfg, double *inv_freq);

/* RoPE in place on x [T, nh * head_dim], row p at position p, rotate_half style (HF LLaMA):
 * for i < head_dim/2, angle = p * inv_freq[i]: x[i] <- x[i] cos - x[i+half] sin,
 * x[i+half] <- x[i+half] cos + x[i] sin. */
void ref_rope(double *x, int T, int nh, int head_dim, const double *inv_freq);

/* Causal softmax attention with GQA, scale 1/sqrt(head_dim), no RoPE (apply it before).
 * q, out: [T, n_heads * head_dim]; k, v: [T, n_kv_heads * head_dim]. Query head h uses KV head
 * h / (n_heads / n_kv_heads). Returns -2 when out of memory, else 0. */
int ref_attention(const double *q, const double *k, const double *v, int T, int n_heads, int n_kv_heads,
                  int head_dim, double *out);
/* The same, the last mem_all rows attending to all T rows (the inner loop's memory tokens). */
int ref_attention_mem(const double *q, const double *k, const double *v, int T, int n_heads, int n_kv_heads,
                      int head_dim, int mem_all, double *out);

/* Associative read of layer `layer` (docs/MATH.md §3.3), in place on H [rows, d]:
 * H += (phi(H W_mq^T) W_mem) / (phi(H W_mq^T) . z + 1e-5). Applied regardless of st->written.
 * Returns -2 when out of memory, else 0. */
int ref_mem_read(const ref_model *m, const ref_state *st, int layer, double *H, int rows);

/* Associative write of layer `layer` (docs/MATH.md §3.5) from the memory-token rows mrows [M, d]; uses the
 * first-segment rule when !st->written[layer], then sets st->written[layer] = 1. cfg.correction selects
 * gamma. Returns -2 when out of memory, else 0. */
int ref_mem_write(const ref_model *m, ref_state *st, int layer, const double *mrows, int M);

#endif
