/*
 * pipeline_split.c - which layers each stage of a pipeline takes: contiguous ranges balanced by FLOPs.
 *
 * A layer's cost is its FLOPs on one full segment (T = L + M rows): the q, k, v, o and MLP products, the
 * attention (causal: about half of T x T per head), and with memory the read (W_mq, phi W_mem) and the
 * write (W_mk, W_mv, phi W_mem, the update) of the M memory rows. Layers without memory (wrap_layers) are
 * cheaper, so a model with them is not split by layer counts. The split minimising the most expensive stage
 * comes from a small dynamic programme (n_layers <= 256 and P <= n_layers).
 */
#include "config.h"

#include "compute/pipeline.h"
#include "io/armt_config.h"

#include <stdlib.h>

double armt_pipeline_layer_flops(const armt_config *c, int layer) {
    const double T = (double)(c->segment_size + c->num_mem_tokens), d = c->hidden_size,
                 qd = (double)c->n_heads * c->head_dim, kvd = (double)c->n_kv_heads * c->head_dim,
                 ffn = c->intermediate_size, M = c->num_mem_tokens, dm = c->d_mem, dk = armt_config_d_key(c);
    double f = 2.0 * T * (d * qd + 2.0 * d * kvd + qd * d + 3.0 * d * ffn); /* linear layers */
    f += 2.0 * T * T * qd;                                                  /* QK^T and PV, causal half */
    if (!armt_config_memory_off(c, layer)) {
        f += 2.0 * T * (d * dm + dk * d); /* read: W_mq, phi W_mem */
        f +=
            2.0 * M * (d * dm + d * d + dk * d) + 2.0 * M * dk * d; /* write: W_mk, W_mv, phi W_mem, update */
    }
    return f;
}

void armt_pipeline_split_balanced(const armt_config *cfg, int P, int *counts) {
    const int n = cfg->n_layers;
    double *pre = malloc(((size_t)n + 1) * sizeof *pre); /* prefix sums of the layer costs      */
    double *best = malloc(((size_t)n + 1) * (size_t)(P + 1) * sizeof *best); /* [p][i]: i layers, p stages */
    int *cut = malloc(((size_t)n + 1) * (size_t)(P + 1) * sizeof *cut);
    if (!pre || !best || !cut) { /* no memory for the plan: equal counts */
        for (int p = 0; p < P; p++)
            counts[p] = n / P + (p < n % P);
        free(pre);
        free(best);
        free(cut);
        return;
    }
#define AT(a, p, i) a[(size_t)(p) * ((size_t)n + 1) + (size_t)(i)]
    pre[0] = 0.0;
    for (int l = 0; l < n; l++)
        pre[l + 1] = pre[l] + armt_pipeline_layer_flops(cfg, l);
    for (int i = 0; i <= n; i++)
        AT(best, 1, i) = pre[i];
    for (int p = 2; p <= P; p++)
        for (int i = p; i <= n; i++) {
            AT(best, p, i) = -1.0;
            /* the last stage takes layers [j, i); ties keep the later stages no larger */
            for (int j = p - 1; j < i; j++) {
                double a = AT(best, p - 1, j), b = pre[i] - pre[j], m = a > b ? a : b;
                if (AT(best, p, i) < 0.0 || m < AT(best, p, i) * (1.0 - 1e-12)) {
                    AT(best, p, i) = m;
                    AT(cut, p, i) = j;
                }
            }
        }
    for (int p = P, i = n; p >= 1; p--) {
        int j = p == 1 ? 0 : AT(cut, p, i);
        counts[p - 1] = i - j;
        i = j;
    }
#undef AT
    free(pre);
    free(best);
    free(cut);
}
