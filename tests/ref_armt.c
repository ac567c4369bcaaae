/*
 * ref_armt.c - double-precision CPU reference of the ARMT forward pass (see ref_armt.h).
 *
 * Straightforward loops, written for clarity: every formula maps to a line of docs/MATH.md.
 * Row-vector convention: a Linear with HF weight W (out, in) computes y = x W^T, i.e.
 * y[r][o] = sum_i x[r][i] * W[o][i].
 */
#include "ref_armt.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define MEM_EPS 1e-5 /* the 1e-5 of the associative read/write (docs/MATH.md §3.3, §3.5) */
#define NU      3    /* DPFP order, hard-coded in the reference */
#ifndef M_PI
#define M_PI 3.14159265358979323846
#endif

/* ------------------------------------------------------------------------------------------------- */
/* small helpers                                                                                     */
/* ------------------------------------------------------------------------------------------------- */

static int d_key_of(const armt_config *c) { return 2 * NU * c->d_mem; }

/* y[rows, out] = x[rows, in] W^T with W (out, in) float row-major. */
static void linear(const double *x, int rows, int in, const float *W, int out, double *y) {
    for (int r = 0; r < rows; r++) {
        const double *xr = x + (size_t)r * in;
        double *yr = y + (size_t)r * out;
        for (int o = 0; o < out; o++) {
            const float *wo = W + (size_t)o * in;
            double acc = 0.0;
            for (int i = 0; i < in; i++)
                acc += xr[i] * (double)wo[i];
            yr[o] = acc;
        }
    }
}

/* y = x / sqrt(mean(x^2) + eps) * w, row-wise over [rows, d]. x and y may alias. */
static void rmsnorm(const double *x, int rows, int d, const float *w, double eps, double *y) {
    for (int r = 0; r < rows; r++) {
        const double *xr = x + (size_t)r * d;
        double *yr = y + (size_t)r * d;
        double ss = 0.0;
        for (int i = 0; i < d; i++)
            ss += xr[i] * xr[i];
        double inv = 1.0 / sqrt(ss / d + eps);
        for (int i = 0; i < d; i++)
            yr[i] = xr[i] * inv * (double)w[i];
    }
}

static double silu(double g) { return g / (1.0 + exp(-g)); }
static double sigmoid(double x) { return 1.0 / (1.0 + exp(-x)); }

/* ------------------------------------------------------------------------------------------------- */
/* model / state                                                                                     */
/* ------------------------------------------------------------------------------------------------- */

void ref_model_set_stacked(ref_model *m, const armt_config *cfg,
                           const float *const role_bufs[ARMT_ROLE_COUNT]) {
    memset(m, 0, sizeof *m);
    m->cfg = *cfg;
    for (int r = 0; r < ARMT_ROLE_N_LAYER_ROLES; r++) {
        uint64_t numel = armt_role_numel(cfg, (armt_role)r);
        for (int l = 0; l < cfg->n_layers && l < REF_MAX_LAYERS; l++)
            m->w[r][l] = role_bufs[r] ? role_bufs[r] + (size_t)l * numel : NULL;
    }
    m->embed = role_bufs[ARMT_ROLE_EMBED];
    m->lm_head = role_bufs[ARMT_ROLE_LM_HEAD];
    m->norm_final = role_bufs[ARMT_ROLE_NORM_FINAL];
    m->mem = role_bufs[ARMT_ROLE_MEM];
    m->sink = cfg->use_sink ? role_bufs[ARMT_ROLE_SINK] : NULL;
}

ref_state *ref_state_new(const armt_config *cfg) {
    if (!cfg || cfg->n_layers <= 0 || cfg->d_mem <= 0 || cfg->hidden_size <= 0) return NULL;
    ref_state *s = calloc(1, sizeof *s);
    if (!s) return NULL;
    s->n_layers = cfg->n_layers;
    s->d_key = d_key_of(cfg);
    s->d = cfg->hidden_size;
    s->w_mem = calloc((size_t)s->n_layers * s->d_key * s->d, sizeof(double));
    s->z = calloc((size_t)s->n_layers * s->d_key, sizeof(double));
    s->written = calloc((size_t)s->n_layers, 1);
    if (!s->w_mem || !s->z || !s->written) {
        ref_state_free(s);
        return NULL;
    }
    if (cfg->sliding_window) {
        s->win_rows = cfg->segment_size;
        s->win_width = cfg->n_kv_heads * cfg->head_dim;
        size_t nx = (size_t)s->n_layers * (size_t)s->win_rows * (size_t)s->win_width;
        s->win_k = calloc(nx, sizeof(double));
        s->win_v = calloc(nx, sizeof(double));
        if (!s->win_k || !s->win_v) {
            ref_state_free(s);
            return NULL;
        }
    }
    return s;
}

void ref_state_free(ref_state *s) {
    if (!s) return;
    free(s->w_mem);
    free(s->z);
    free(s->written);
    free(s->win_k);
    free(s->win_v);
    free(s);
}

void ref_state_reset(ref_state *s) {
    memset(s->w_mem, 0, (size_t)s->n_layers * s->d_key * s->d * sizeof(double));
    memset(s->z, 0, (size_t)s->n_layers * s->d_key * sizeof(double));
    memset(s->written, 0, (size_t)s->n_layers);
    s->win_len = 0;
}

/* ------------------------------------------------------------------------------------------------- */
/* building blocks                                                                                   */
/* ------------------------------------------------------------------------------------------------- */

void ref_dpfp(const double *x, int d_mem, double *out) {
    int n = 2 * d_mem;
    /* x' = [relu(x), relu(-x)], built on the fly: xp(i) */
    for (int j = 1; j <= NU; j++) {
        for (int i = 0; i < n; i++) {
            int k = ((i - j) % n + n) % n; /* torch.roll(x', j)[i] = x'[(i - j) mod n] */
            double a = i < d_mem ? fmax(x[i], 0.0) : fmax(-x[i - d_mem], 0.0);
            double b = k < d_mem ? fmax(x[k], 0.0) : fmax(-x[k - d_mem], 0.0);
            out[(size_t)(j - 1) * n + i] = a * b;
        }
    }
}

void ref_rope_inv_freq(const armt_config *c, double *inv_freq) {
    int half = c->head_dim / 2;
    for (int i = 0; i < half; i++) {
        double f = pow(c->rope_theta, -2.0 * i / c->head_dim);
        if (c->rope_type == ARMT_ROPE_LLAMA3) {
            /* modeling_rope_utils._compute_llama3_parameters */
            double factor = c->rope_factor, lo = c->rope_low_freq_factor, hi = c->rope_high_freq_factor;
            double old_len = (double)c->rope_original_max_pos;
            double low_freq_wavelen = old_len / lo, high_freq_wavelen = old_len / hi;
            double wavelen = 2.0 * M_PI / f;
            if (wavelen < high_freq_wavelen) {
                /* high frequency: unchanged */
            } else if (wavelen > low_freq_wavelen) {
                f = f / factor;
            } else {
                double s = (old_len / wavelen - lo) / (hi - lo);
                f = (1.0 - s) * f / factor + s * f;
            }
        }
        inv_freq[i] = f;
    }
}

/* out = x * cos + rotate_half(x) * sin, rotate_half(x) = [-x[half:], x[:half]], cos/sin = cat(freqs, freqs),
 * freqs[p][i] = p * inv_freq[i]. */
void ref_rope(double *x, int T, int nh, int head_dim, const double *inv_freq) {
    int half = head_dim / 2;
    for (int p = 0; p < T; p++) {
        for (int h = 0; h < nh; h++) {
            double *v = x + ((size_t)p * nh + h) * head_dim;
            for (int i = 0; i < half; i++) {
                double ang = (double)p * inv_freq[i];
                double c = cos(ang), s = sin(ang);
                double x1 = v[i], x2 = v[i + half];
                v[i] = x1 * c - x2 * s;
                v[i + half] = x2 * c + x1 * s;
            }
        }
    }
}

int ref_attention(const double *q, const double *k, const double *v, int T, int n_heads, int n_kv_heads,
                  int head_dim, double *out) {
    return ref_attention_mem(q, k, v, T, n_heads, n_kv_heads, head_dim, 0, out);
}

int ref_attention_mem(const double *q, const double *k, const double *v, int T, int n_heads, int n_kv_heads,
                      int head_dim, int mem_all, double *out) {
    int group = n_heads / n_kv_heads;
    size_t qs = (size_t)n_heads * head_dim, kvs = (size_t)n_kv_heads * head_dim;
    double scale = 1.0 / sqrt((double)head_dim);
    double *p = malloc((size_t)(T > 0 ? T : 1) * sizeof(double));
    if (!p) return -2;
    for (int h = 0; h < n_heads; h++) {
        int kh = h / group;
        for (int t = 0; t < T; t++) {
            const double *qt = q + t * qs + (size_t)h * head_dim;
            /* scores over the causal prefix 0..t (the whole block for the last mem_all rows), softmax with
             * the max subtracted */
            const int last = mem_all > 0 && t >= T - mem_all ? T - 1 : t;
            double mx = -INFINITY;
            for (int u = 0; u <= last; u++) {
                const double *ku = k + u * kvs + (size_t)kh * head_dim;
                double sdot = 0.0;
                for (int i = 0; i < head_dim; i++)
                    sdot += qt[i] * ku[i];
                p[u] = sdot * scale;
                if (p[u] > mx) mx = p[u];
            }
            double sum = 0.0;
            for (int u = 0; u <= last; u++) {
                p[u] = exp(p[u] - mx);
                sum += p[u];
            }
            double *ot = out + t * qs + (size_t)h * head_dim;
            for (int i = 0; i < head_dim; i++)
                ot[i] = 0.0;
            for (int u = 0; u <= last; u++) {
                const double *vu = v + u * kvs + (size_t)kh * head_dim;
                double w = p[u] / sum;
                for (int i = 0; i < head_dim; i++)
                    ot[i] += w * vu[i];
            }
        }
    }
    free(p);
    return 0;
}

/* The sliding window of src/armt_sw.py (docs/VARIANTS-reference.md) over one segment block of T rows
 * [ns sink rows, text rows, nmem memory rows] at positions 0..T-1: row t sees the block's rows 0..t and,
 * of the S cached rows kc, vc [S, n_kv_heads * head_dim] (the previous segment's text rows, oldest first,
 * keys rotated at their own positions), none for a sink row, all for a memory row, and for text row
 * i = t - ns the cached rows c >= i (the reference's triu mask). With S = 0 this is ref_attention. */
typedef struct ref_window {
    const double *kc, *vc;
    int S, ns, nmem;
} ref_window;

static int cached_visible(const ref_window *w, int T, int t, int c) {
    if (t < w->ns) return 0;
    if (t >= T - w->nmem) return 1;
    return c >= t - w->ns;
}

static int window_attention(const double *q, const double *k, const double *v, int T, const ref_window *w,
                            int n_heads, int n_kv_heads, int head_dim, double *out) {
    int group = n_heads / n_kv_heads, S = w->S;
    size_t qs = (size_t)n_heads * head_dim, kvs = (size_t)n_kv_heads * head_dim;
    double scale = 1.0 / sqrt((double)head_dim);
    double *p = malloc((size_t)(S + T > 0 ? S + T : 1) * sizeof(double));
    if (!p) return -2;
    for (int h = 0; h < n_heads; h++) {
        int kh = h / group;
        for (int t = 0; t < T; t++) {
            const double *qt = q + t * qs + (size_t)h * head_dim;
            /* keys u < S: cached row u; u >= S: the block's row u - S */
            double mx = -INFINITY;
            for (int u = 0; u < S + t + 1; u++) {
                p[u] = -INFINITY;
                if (u < S && !cached_visible(w, T, t, u)) continue;
                const double *ku = u < S ? w->kc + u * kvs : k + (u - S) * kvs;
                double sdot = 0.0;
                for (int i = 0; i < head_dim; i++)
                    sdot += qt[i] * ku[(size_t)kh * head_dim + i];
                p[u] = sdot * scale;
                if (p[u] > mx) mx = p[u];
            }
            double sum = 0.0;
            for (int u = 0; u < S + t + 1; u++) {
                p[u] = p[u] == -INFINITY ? 0.0 : exp(p[u] - mx);
                sum += p[u];
            }
            double *ot = out + t * qs + (size_t)h * head_dim;
            for (int i = 0; i < head_dim; i++)
                ot[i] = 0.0;
            for (int u = 0; u < S + t + 1; u++) {
                if (p[u] == 0.0) continue;
                const double *vu = (u < S ? w->vc + u * kvs : v + (u - S) * kvs) + (size_t)kh * head_dim;
                for (int i = 0; i < head_dim; i++)
                    ot[i] += p[u] / sum * vu[i];
            }
        }
    }
    free(p);
    return 0;
}

/* The window of layer l after a block whose text rows are k, v [n, width]: the last win_rows of its
 * `held` rows and these, oldest first. Returns the rows it now holds. */
static int window_push(ref_state *st, int l, int held, const double *k, const double *v, int n) {
    const size_t W = (size_t)st->win_rows, width = (size_t)st->win_width;
    double *wk = st->win_k + (size_t)l * W * width, *wv = st->win_v + (size_t)l * W * width;
    int total = held + n, keep = total < (int)W ? total : (int)W, drop = total - keep;
    /* rows drop .. held - 1 of the old window move to the front, then the new rows from max(0, drop - held) */
    if (drop < held) {
        memmove(wk, wk + (size_t)drop * width, (size_t)(held - drop) * width * sizeof(double));
        memmove(wv, wv + (size_t)drop * width, (size_t)(held - drop) * width * sizeof(double));
    }
    int kept_old = drop < held ? held - drop : 0, first_new = drop > held ? drop - held : 0;
    memcpy(wk + (size_t)kept_old * width, k + (size_t)first_new * width,
           (size_t)(n - first_new) * width * sizeof(double));
    memcpy(wv + (size_t)kept_old * width, v + (size_t)first_new * width,
           (size_t)(n - first_new) * width * sizeof(double));
    return keep;
}

/* The variants (docs/VARIANTS.md), written head by head: head h reads and writes only its own block of
 * W_mem[l] (features [h*dkh, (h+1)*dkh), channels [h*dvh, (h+1)*dvh)) and of z[l]; the amt and armt variants
 * L2-normalise each head's features; no_denom drops z and the divisions. */
typedef struct mem_geo {
    int d, dm, dk, H, dh, dkh, dvh, normalized, no_denom, gating;
} mem_geo;

static mem_geo geo_of(const armt_config *c) {
    mem_geo g;
    g.d = c->hidden_size;
    g.dm = c->d_mem;
    g.dk = d_key_of(c);
    g.H = c->mem_heads > 1 ? c->mem_heads : 1;
    g.dh = g.dm / g.H;
    g.dkh = g.dk / g.H;
    g.dvh = g.d / g.H;
    g.normalized = c->variant != ARMT_VARIANT_PAPER;
    g.no_denom = c->no_denom;
    g.gating = c->gating;
    return g;
}

static int layer_has_memory(const armt_config *c, int l) {
    return !(l < 256 && ((c->memory_off[l / 64] >> (l % 64)) & 1u));
}

/* Features of one head: phi(x_h) (6 dh values), L2-normalised in the later variants. */
static void head_features(const mem_geo *g, const double *proj, int h, double *out) {
    ref_dpfp(proj + (size_t)h * g->dh, g->dh, out);
    if (!g->normalized) return;
    double ss = 0.0;
    for (int a = 0; a < g->dkh; a++)
        ss += out[a] * out[a];
    double n = sqrt(ss);
    if (n < 1e-12) n = 1e-12; /* torch.nn.functional.normalize */
    for (int a = 0; a < g->dkh; a++)
        out[a] /= n;
}

int ref_mem_read(const ref_model *m, const ref_state *st, int layer, double *H, int rows) {
    const armt_config *c = &m->cfg;
    if (!layer_has_memory(c, layer)) return 0;
    const mem_geo g = geo_of(c);
    const double *Wm = st->w_mem + (size_t)layer * g.dk * g.d; /* (dk, d), heads on the diagonal */
    const double *z = st->z + (size_t)layer * g.dk;
    double *qm = malloc((size_t)g.dm * sizeof(double));
    double *Q = malloc((size_t)g.dkh * sizeof(double));
    double *add = malloc((size_t)g.d * sizeof(double));
    if (!qm || !Q || !add) {
        free(qm), free(Q), free(add);
        return -2;
    }
    for (int r = 0; r < rows; r++) {
        double *x = H + (size_t)r * g.d;
        linear(x, 1, g.d, m->w[ARMT_ROLE_WMQ][layer], g.dm, qm); /* x W_mq^T */
        for (int h = 0; h < g.H; h++) {
            head_features(&g, qm, h, Q);
            double den = 1.0;
            if (!g.no_denom) {
                den = 0.0;
                for (int a = 0; a < g.dkh; a++)
                    den += Q[a] * z[h * g.dkh + a];
                den += MEM_EPS; /* Q . z + 1e-5 */
            }
            for (int i = 0; i < g.dvh; i++) {
                double num = 0.0;
                for (int a = 0; a < g.dkh; a++)
                    num += Q[a] * Wm[(size_t)(h * g.dkh + a) * g.d + (size_t)(h * g.dvh + i)];
                add[h * g.dvh + i] = num / den;
            }
        }
        /* the read uses the layer input x for every head, so add only after all heads */
        for (int i = 0; i < g.d; i++)
            x[i] += add[i];
    }
    free(qm), free(Q), free(add);
    return 0;
}

int ref_mem_write(const ref_model *m, ref_state *st, int layer, const double *mrows, int M) {
    const armt_config *c = &m->cfg;
    if (!layer_has_memory(c, layer)) return 0;
    const mem_geo g = geo_of(c);
    double *Wm = st->w_mem + (size_t)layer * g.dk * g.d;
    double *z = st->z + (size_t)layer * g.dk;
    const int first = !st->written[layer];
    const int nb = g.gating ? g.d : g.H; /* rows of W_mb */
    size_t Mr = (size_t)(M > 0 ? M : 1);
    double *km = malloc((size_t)g.dm * sizeof(double));
    double *K = malloc(Mr * g.dk * sizeof(double));    /* features, heads side by side   (M, dk) */
    double *D = malloc(Mr * g.d * sizeof(double));     /* Vnew - Vprev                   (M, d)  */
    double *beta = malloc(Mr * nb * sizeof(double));   /* sigmoid(m W_mb^T + b)          (M, nb) */
    double *gamma = malloc(Mr * g.H * sizeof(double)); /* correction per head            (M, H)  */
    if (!km || !K || !D || !beta || !gamma) {
        free(km), free(K), free(D), free(beta), free(gamma);
        return -2;
    }
    const float *wmb = m->w[ARMT_ROLE_WMB][layer], *bmb = m->w[ARMT_ROLE_BMB][layer];
    /* Phase 1: everything from the memory as it stood before this write. */
    for (int j = 0; j < M; j++) {
        const double *mj = mrows + (size_t)j * g.d;
        double *Dj = D + (size_t)j * g.d;
        linear(mj, 1, g.d, m->w[ARMT_ROLE_WMK][layer], g.dm, km);
        linear(mj, 1, g.d, m->w[ARMT_ROLE_WMV][layer], g.d, Dj); /* Vnew = m W_mv^T */
        for (int b = 0; b < nb; b++) {
            double bl = (double)bmb[b];
            for (int i = 0; i < g.d; i++)
                bl += mj[i] * (double)wmb[(size_t)b * g.d + i];
            beta[(size_t)j * nb + b] = sigmoid(bl);
        }
        for (int h = 0; h < g.H; h++) {
            double *Kh = K + (size_t)j * g.dk + (size_t)h * g.dkh;
            head_features(&g, km, h, Kh);
            double *gm = &gamma[(size_t)j * g.H + h];
            *gm = 1.0;
            if (first) continue; /* Vprev = 0, gamma = 1 */
            double den = 1.0, nk2 = 0.0;
            if (!g.no_denom) {
                den = 0.0;
                for (int a = 0; a < g.dkh; a++)
                    den += Kh[a] * z[h * g.dkh + a];
                den += MEM_EPS; /* K . z + 1e-5 */
            }
            for (int a = 0; a < g.dkh; a++)
                nk2 += Kh[a] * Kh[a];
            for (int i = 0; i < g.dvh; i++) {
                double prev = 0.0;
                for (int a = 0; a < g.dkh; a++)
                    prev += Kh[a] * Wm[(size_t)(h * g.dkh + a) * g.d + (size_t)(h * g.dvh + i)];
                Dj[h * g.dvh + i] -= prev / den; /* Vnew - (K W_mem) / den */
            }
            if (c->correction && !g.no_denom) {
                double q; /* the reference's 1 - den / x, clipped to [0, 1]; 1 - den / 0 = -inf -> 0 */
                if (!g.normalized)
                    q = 1.0 - den / (nk2 + MEM_EPS); /* den includes the 1e-5 */
                else
                    q = nk2 > 0.0 ? 1.0 - den / nk2 : 0.0;
                *gm = q < 0.0 ? 0.0 : (q > 1.0 ? 1.0 : q);
            }
        }
    }
    /* Phase 2: each head's block += sum_j beta K_j^T (Vnew_j - Vprev_j);  z_h += sum_j gamma_jh K_jh. */
    for (int j = 0; j < M; j++) {
        const double *Dj = D + (size_t)j * g.d;
        for (int h = 0; h < g.H; h++) {
            const double *Kh = K + (size_t)j * g.dk + (size_t)h * g.dkh;
            for (int a = 0; a < g.dkh; a++) {
                if (Kh[a] == 0.0) continue;
                double *wa = Wm + (size_t)(h * g.dkh + a) * g.d + (size_t)h * g.dvh;
                for (int i = 0; i < g.dvh; i++) {
                    double b = g.gating ? beta[(size_t)j * nb + h * g.dvh + i] : beta[(size_t)j * nb + h];
                    wa[i] += b * Kh[a] * Dj[h * g.dvh + i];
                }
            }
            if (!g.no_denom)
                for (int a = 0; a < g.dkh; a++)
                    z[h * g.dkh + a] += gamma[(size_t)j * g.H + h] * Kh[a];
        }
    }
    st->written[layer] = 1;
    free(km), free(K), free(D), free(beta), free(gamma);
    return 0;
}

/* ------------------------------------------------------------------------------------------------- */
/* decoder stack                                                                                     */
/* ------------------------------------------------------------------------------------------------- */

/* Scratch for up to Tmax rows. */
typedef struct ws {
    double *h, *q, *k, *v, *a, *tmp, *g, *u, *inv_freq;
} ws;

static void ws_free(ws *w) {
    free(w->h), free(w->q), free(w->k), free(w->v), free(w->a), free(w->tmp), free(w->g), free(w->u);
    free(w->inv_freq);
}

static int ws_alloc(ws *w, const armt_config *c, size_t Tmax) {
    size_t d = c->hidden_size, qd = (size_t)c->n_heads * c->head_dim,
           kvd = (size_t)c->n_kv_heads * c->head_dim;
    size_t f = c->intermediate_size;
    memset(w, 0, sizeof *w);
    w->h = malloc(Tmax * d * sizeof(double));
    w->q = malloc(Tmax * qd * sizeof(double));
    w->k = malloc(Tmax * kvd * sizeof(double));
    w->v = malloc(Tmax * kvd * sizeof(double));
    w->a = malloc(Tmax * qd * sizeof(double));
    w->tmp = malloc(Tmax * d * sizeof(double));
    w->g = malloc(Tmax * f * sizeof(double));
    w->u = malloc(Tmax * f * sizeof(double));
    w->inv_freq = malloc((size_t)(c->head_dim / 2 + 1) * sizeof(double));
    if (!w->h || !w->q || !w->k || !w->v || !w->a || !w->tmp || !w->g || !w->u || !w->inv_freq) {
        ws_free(w);
        return -2;
    }
    ref_rope_inv_freq(c, w->inv_freq);
    return 0;
}

/* One LLaMA decoder layer (docs/MATH.md §4.1), in place on X [T, d], positions 0..T-1; causal attention, the
 * last mem_all rows attending to all T rows (the inner loop's memory tokens), or with a sliding window (win
 * not NULL; the configuration check keeps it apart from mem_all). The rotated keys and the values stay in
 * w->k, w->v. */
static int decoder_layer(const ref_model *m, int l, double *X, int T, int mem_all, ws *w,
                         const ref_window *win) {
    const armt_config *c = &m->cfg;
    int d = c->hidden_size, hd = c->head_dim, nh = c->n_heads, nkv = c->n_kv_heads;
    int qd = nh * hd, kvd = nkv * hd, f = c->intermediate_size;
    double eps = (double)c->rms_norm_eps;

    /* attention block */
    rmsnorm(X, T, d, m->w[ARMT_ROLE_NORM_IN][l], eps, w->h);
    linear(w->h, T, d, m->w[ARMT_ROLE_WQ][l], qd, w->q);
    linear(w->h, T, d, m->w[ARMT_ROLE_WK][l], kvd, w->k);
    linear(w->h, T, d, m->w[ARMT_ROLE_WV][l], kvd, w->v);
    ref_rope(w->q, T, nh, hd, w->inv_freq);
    ref_rope(w->k, T, nkv, hd, w->inv_freq);
    if ((win && mem_all == 0 ? window_attention(w->q, w->k, w->v, T, win, nh, nkv, hd, w->a)
                             : ref_attention_mem(w->q, w->k, w->v, T, nh, nkv, hd, mem_all, w->a)) != 0)
        return -2;
    linear(w->a, T, qd, m->w[ARMT_ROLE_WO][l], d, w->tmp);
    for (size_t i = 0; i < (size_t)T * d; i++)
        X[i] += w->tmp[i];

    /* SwiGLU MLP block */
    rmsnorm(X, T, d, m->w[ARMT_ROLE_NORM_POST][l], eps, w->h);
    linear(w->h, T, d, m->w[ARMT_ROLE_WG][l], f, w->g);
    linear(w->h, T, d, m->w[ARMT_ROLE_WU][l], f, w->u);
    for (size_t i = 0; i < (size_t)T * f; i++)
        w->g[i] = silu(w->g[i]) * w->u[i];
    linear(w->g, T, f, m->w[ARMT_ROLE_WD][l], d, w->tmp);
    for (size_t i = 0; i < (size_t)T * d; i++)
        X[i] += w->tmp[i];
    return 0;
}

/* Final RMSNorm + lm_head of the first `rows` rows of X; writes hidden / logits rows (either may be NULL). */
static void head(const ref_model *m, const double *X, int rows, double *h, double *logits, double *hidden) {
    const armt_config *c = &m->cfg;
    int d = c->hidden_size;
    rmsnorm(X, rows, d, m->norm_final, (double)c->rms_norm_eps, h);
    if (hidden) memcpy(hidden, h, (size_t)rows * d * sizeof(double));
    if (logits) linear(h, rows, d, m->lm_head ? m->lm_head : m->embed, c->vocab_size, logits);
}

static int check_model(const ref_model *m, int need_armt) {
    const armt_config *c = &m->cfg;
    if (c->n_layers <= 0 || c->n_layers > REF_MAX_LAYERS || c->hidden_size <= 0 || c->n_heads <= 0 ||
        c->n_kv_heads <= 0 || c->n_heads % c->n_kv_heads != 0 || c->head_dim <= 0 || c->head_dim % 2 != 0 ||
        c->intermediate_size <= 0 || c->vocab_size <= 0)
        return -1;
    if (!m->embed || !m->norm_final) return -1;
    for (int r = 0; r < ARMT_ROLE_N_LAYER_ROLES; r++) {
        if (!need_armt && armt_role_is_armt((armt_role)r)) continue;
        for (int l = 0; l < c->n_layers; l++)
            if (!m->w[r][l]) return -1;
    }
    if (need_armt) {
        if (c->segment_size <= 0 || c->num_mem_tokens < 0 || c->d_mem <= 0) return -1;
        if (c->num_mem_tokens > 0 && !m->mem) return -1;
        if (c->use_sink && !m->sink) return -1;
    }
    return 0;
}

static int check_ids(const armt_config *c, const int32_t *ids, size_t n) {
    for (size_t i = 0; i < n; i++)
        if (ids[i] < 0 || ids[i] >= c->vocab_size) return -1;
    return 0;
}

static void embed_rows(const ref_model *m, const int32_t *ids, size_t n, double *X) {
    int d = m->cfg.hidden_size;
    for (size_t t = 0; t < n; t++)
        for (int i = 0; i < d; i++)
            X[t * d + i] = (double)m->embed[(size_t)ids[t] * d + i];
}

int ref_armt_forward(const ref_model *m, ref_state *st, const int32_t *ids, size_t n, double *logits,
                     double *hidden) {
    if (!m || !st || (n > 0 && !ids)) return -1;
    if (check_model(m, 1) != 0) return -1;
    const armt_config *c = &m->cfg;
    if (st->n_layers != c->n_layers || st->d_key != d_key_of(c) || st->d != c->hidden_size) return -1;
    if (n == 0) return 0;
    if (check_ids(c, ids, n) != 0) return -1;

    int d = c->hidden_size, L = c->segment_size, M = c->num_mem_tokens, ns = c->use_sink ? 1 : 0;
    int kvd = c->n_kv_heads * c->head_dim;
    size_t Tmax = (size_t)ns + L + M;
    ws w;
    if (ws_alloc(&w, c, Tmax) != 0) return -2;
    double *X = malloc(Tmax * d * sizeof(double));
    if (!X) {
        ws_free(&w);
        return -2;
    }
    int rc = 0;
    for (size_t s0 = 0; s0 < n && rc == 0; s0 += (size_t)L) {
        int Ls = (int)((n - s0) < (size_t)L ? (n - s0) : (size_t)L);
        int T = ns + Ls + M, held = st->win_len;
        /* X0 = concat(SINK, E[ids_s], MEM) */
        for (int i = 0; i < ns * d; i++)
            X[i] = (double)m->sink[i];
        embed_rows(m, ids + s0, (size_t)Ls, X + (size_t)ns * d);
        for (size_t i = 0; i < (size_t)M * d; i++)
            X[(size_t)(ns + Ls) * d + i] = (double)m->mem[i];
        for (int l = 0; l < c->n_layers && rc == 0; l++) {
            if (st->written[l]) rc = ref_mem_read(m, st, l, X, T); /* read on all T rows (skipped on s=0) */
            ref_window win = {NULL, NULL, held, ns, M};
            if (c->sliding_window) {
                const size_t wo = (size_t)l * (size_t)st->win_rows * (size_t)st->win_width;
                win.kc = st->win_k + wo;
                win.vc = st->win_v + wo;
            }
            const int mem_all = c->variant == ARMT_VARIANT_INNER ? M : 0;
            if (rc == 0) rc = decoder_layer(m, l, X, T, mem_all, &w, c->sliding_window ? &win : NULL);
            if (rc == 0 && c->sliding_window) /* this block's text rows join the window */
                st->win_len = window_push(st, l, held, w.k + (size_t)ns * kvd, w.v + (size_t)ns * kvd, Ls);
            if (rc == 0) rc = ref_mem_write(m, st, l, X + (size_t)(ns + Ls) * d, M); /* memory rows' output */
        }
        if (rc == 0)
            head(m, X + (size_t)ns * d, Ls, w.h, logits ? logits + s0 * c->vocab_size : NULL,
                 hidden ? hidden + s0 * d : NULL);
    }
    free(X);
    ws_free(&w);
    return rc;
}

/* ids[0..n) as one block of rows, no memory tokens, no writes; with a state, the sink row first (use_sink,
 * position 0, the tokens from 1), each layer that has written reads the memory on every row first, and a
 * sliding window attends to the state's window (the generation tail, docs/MATH.md §3.6); without one, the
 * plain LLaMA at positions 0..n-1. Outputs: the token rows. No argument checks. */
static int rows_forward(const ref_model *m, const ref_state *st, const int32_t *ids, size_t n, double *logits,
                        double *hidden) {
    const armt_config *c = &m->cfg;
    const int ns = st && c->use_sink ? 1 : 0;
    int d = c->hidden_size, T = (int)n + ns;
    ws w;
    if (ws_alloc(&w, c, (size_t)T) != 0) return -2;
    double *X = malloc((size_t)T * d * sizeof(double));
    if (!X) {
        ws_free(&w);
        return -2;
    }
    int rc = 0;
    for (int i = 0; i < ns * d; i++)
        X[i] = (double)m->sink[i];
    embed_rows(m, ids, n,
               X + (size_t)ns * d); /* no memory tokens: AssociativeMemoryCell.generate drops them */
    for (int l = 0; l < c->n_layers && rc == 0; l++) {
        if (st && st->written[l]) rc = ref_mem_read(m, st, l, X, T); /* generate_mode: read, never write */
        ref_window win = {NULL, NULL, 0, ns, 0};
        if (st && c->sliding_window) {
            const size_t wo = (size_t)l * (size_t)st->win_rows * (size_t)st->win_width;
            win = (ref_window){st->win_k + wo, st->win_v + wo, st->win_len, ns, 0};
        }
        if (rc == 0) rc = decoder_layer(m, l, X, T, 0, &w, st && c->sliding_window ? &win : NULL);
    }
    if (rc == 0) head(m, X + (size_t)ns * d, (int)n, w.h, logits, hidden);
    free(X);
    ws_free(&w);
    return rc;
}

int ref_llama_forward(const ref_model *m, const int32_t *ids, size_t n, double *logits, double *hidden) {
    if (!m || (n > 0 && !ids)) return -1;
    if (check_model(m, 0) != 0) return -1;
    const armt_config *c = &m->cfg;
    if (n == 0) return 0;
    if (check_ids(c, ids, n) != 0 || n > (size_t)INT32_MAX) return -1;
    return rows_forward(m, NULL, ids, n, logits, hidden);
}

/* ------------------------------------------------------------------------------------------------- */
/* generation (docs/MATH.md §3.6)                                                                    */
/* ------------------------------------------------------------------------------------------------- */

static int check_state(const ref_model *m, const ref_state *st) {
    const armt_config *c = &m->cfg;
    return (st->n_layers == c->n_layers && st->d_key == d_key_of(c) && st->d == c->hidden_size) ? 0 : -1;
}

int ref_armt_tail_forward(const ref_model *m, const ref_state *st, const int32_t *ids, size_t n,
                          double *logits) {
    if (!m || !st || (n > 0 && !ids)) return -1;
    if (check_model(m, 1) != 0 || check_state(m, st) != 0) return -1;
    if (n == 0) return 0;
    if (check_ids(&m->cfg, ids, n) != 0 || n > (size_t)INT32_MAX) return -1;
    return rows_forward(m, st, ids, n, logits, NULL);
}

int ref_armt_generate_greedy(const ref_model *m, ref_state *st, const int32_t *prompt, size_t n, int max_new,
                             int32_t stop_id, int32_t *out) {
    return ref_armt_generate_greedy_margins(m, st, prompt, n, max_new, stop_id, out, NULL);
}

int ref_armt_generate_greedy_margins(const ref_model *m, ref_state *st, const int32_t *prompt, size_t n,
                                     int max_new, int32_t stop_id, int32_t *out, double *margin) {
    if (!m || !st || !prompt || n == 0 || max_new < 0 || (max_new > 0 && !out)) return -1;
    if (check_model(m, 1) != 0 || check_state(m, st) != 0) return -1;
    const armt_config *c = &m->cfg;
    if (check_ids(c, prompt, n) != 0 || n > (size_t)INT32_MAX - (size_t)max_new) return -1;

    /* split_tensor cuts from the left; the last piece, full or partial, is the tail */
    size_t L = (size_t)c->segment_size;
    size_t cut = ((n + L - 1) / L - 1) * L, R = n - cut;
    int rc = ref_armt_forward(m, st, prompt, cut, NULL, NULL); /* n == 0 is a no-op */
    if (rc != 0 || max_new == 0) return rc;

    int V = c->vocab_size;
    size_t cap = R + (size_t)max_new;
    int32_t *seq = malloc(cap * sizeof *seq);
    double *logits = malloc(cap * (size_t)V * sizeof *logits);
    if (!seq || !logits) {
        free(seq), free(logits);
        return -2;
    }
    memcpy(seq, prompt + cut, R * sizeof *seq);
    int count = 0;
    while (count < max_new) {
        size_t len = R + (size_t)count;
        rc = rows_forward(m, st, seq, len, logits, NULL); /* re-run; equals a KV-cache decode */
        if (rc != 0) break;
        const double *last = logits + (len - 1) * (size_t)V;
        int32_t best = 0;
        for (int v = 1; v < V; v++)
            if (last[v] > last[best]) best = v; /* strict: ties keep the lowest id */
        if (margin) {                           /* (best - runner-up) / max |logit| */
            double second = -INFINITY, scale = 0;
            for (int v = 0; v < V; v++) {
                if (v != best && last[v] > second) second = last[v];
                if (fabs(last[v]) > scale) scale = fabs(last[v]);
            }
            margin[count] = scale > 0 ? (last[best] - second) / scale : 0;
        }
        out[count++] = best;
        seq[len] = best;
        if (stop_id >= 0 && best == stop_id) break;
    }
    free(seq), free(logits);
    return rc != 0 ? rc : count;
}
