/*
 * roles.c - names and shapes of the weight roles (see roles.h).
 */
#include "config.h"

#include "common/roles.h"

const char *armt_role_name(armt_role r) {
    static const char *const names[ARMT_ROLE_COUNT] = {
        "wq",  "wk",  "wv",  "wo",  "wg",    "wu",      "wd",         "norm_in", "norm_post", "wmq",
        "wmk", "wmv", "wmb", "bmb", "embed", "lm_head", "norm_final", "mem",     "sink",
    };
    return (r >= 0 && r < ARMT_ROLE_COUNT) ? names[r] : "?";
}

void armt_role_shape(const armt_config *c, armt_role r, uint64_t *rows, uint64_t *cols, int *ndim) {
    uint64_t d = (uint64_t)c->hidden_size, q = (uint64_t)c->n_heads * (uint64_t)c->head_dim;
    uint64_t kv = (uint64_t)c->n_kv_heads * (uint64_t)c->head_dim, f = (uint64_t)c->intermediate_size;
    uint64_t R = 1, C = 1;
    int n = 2;
    switch (r) {
    case ARMT_ROLE_WQ:
        R = q;
        C = d;
        break;
    case ARMT_ROLE_WK:
    case ARMT_ROLE_WV:
        R = kv;
        C = d;
        break;
    case ARMT_ROLE_WO:
        R = d;
        C = q;
        break;
    case ARMT_ROLE_WG:
    case ARMT_ROLE_WU:
        R = f;
        C = d;
        break;
    case ARMT_ROLE_WD:
        R = d;
        C = f;
        break;
    case ARMT_ROLE_NORM_IN:
    case ARMT_ROLE_NORM_POST:
    case ARMT_ROLE_NORM_FINAL:
        R = d;
        C = 1;
        n = 1;
        break;
    case ARMT_ROLE_WMQ:
    case ARMT_ROLE_WMK:
        R = (uint64_t)c->d_mem;
        C = d;
        break;
    case ARMT_ROLE_WMV:
        R = d;
        C = d;
        break;
    case ARMT_ROLE_WMB: /* one beta per memory head, or per channel with gating */
        R = c->gating ? d : (uint64_t)(c->mem_heads > 1 ? c->mem_heads : 1);
        C = d;
        break;
    case ARMT_ROLE_BMB:
        R = c->gating ? d : (uint64_t)(c->mem_heads > 1 ? c->mem_heads : 1);
        C = 1;
        n = 1;
        break;
    case ARMT_ROLE_EMBED:
    case ARMT_ROLE_LM_HEAD:
        R = (uint64_t)c->vocab_size;
        C = d;
        break;
    case ARMT_ROLE_MEM:
        R = (uint64_t)c->num_mem_tokens;
        C = d;
        break;
    case ARMT_ROLE_SINK:
        R = 1;
        C = d;
        break;
    default:
        R = 0;
        C = 0;
        break;
    }
    if (rows) *rows = R;
    if (cols) *cols = C;
    if (ndim) *ndim = n;
}

uint64_t armt_role_numel(const armt_config *c, armt_role r) {
    uint64_t R, C;
    armt_role_shape(c, r, &R, &C, NULL);
    return R * C;
}
