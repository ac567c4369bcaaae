/*
 * check_ref.c - validates the double-precision CPU reference (ref_armt.c) itself.
 *
 * Where possible the expected values are obtained independently of the code under test: literal
 * hand-computed examples (DPFP, a 2-token attention), the llama3 frequencies recomputed in log space,
 * and structural identities of ARMT that must hold exactly:
 *   - with W_mv = 0 the memory is inert, so each segment equals that segment run alone;
 *   - the token rows of one ARMT segment on a fresh state equal plain LLaMA (memory tokens come after the
 *     tokens and attention is causal);
 *   - one call equals calls split at segment boundaries (the state carries everything);
 *   - writing a key and reading it back with W_mq = W_mk retrieves beta * V (associative recall), and
 *     re-writing the same key gives gamma = 0 (the correction).
 * Models are tiny and random, from a splitmix64 + Box-Muller generator defined here.
 */
#include "config.h"

#include <check.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "ref_armt.h"

/* ------------------------------------------------------------------------------------------------- */
/* deterministic PRNG                                                                                */
/* ------------------------------------------------------------------------------------------------- */

typedef struct rng {
    uint64_t s;
    int have_spare;
    double spare;
} rng;

static uint64_t splitmix64(rng *r) {
    uint64_t z = (r->s += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

/* uniform in (0, 1) */
static double uniform01(rng *r) { return ((double)(splitmix64(r) >> 11) + 0.5) * (1.0 / 9007199254740992.0); }

/* standard normal, Box-Muller */
static double normal(rng *r) {
    if (r->have_spare) {
        r->have_spare = 0;
        return r->spare;
    }
    double u1 = uniform01(r), u2 = uniform01(r);
    double rad = sqrt(-2.0 * log(u1)), th = 2.0 * 3.14159265358979323846 * u2;
    r->spare = rad * sin(th);
    r->have_spare = 1;
    return rad * cos(th);
}

/* ------------------------------------------------------------------------------------------------- */
/* tiny random model                                                                                 */
/* ------------------------------------------------------------------------------------------------- */

static armt_config tiny_config(void) {
    armt_config c;
    memset(&c, 0, sizeof c);
    c.hidden_size = 32;
    c.n_layers = 3;
    c.n_heads = 4;
    c.n_kv_heads = 2; /* GQA: 2 query heads per KV head */
    c.head_dim = 8;
    c.intermediate_size = 48;
    c.vocab_size = 40;
    c.rms_norm_eps = 1e-5f;
    c.rope_theta = 500000.0;
    /* llama3 scaling; with head_dim 8 the 4 frequencies cover all three regions (high, medium, low) */
    c.rope_type = ARMT_ROPE_LLAMA3;
    c.rope_factor = 32.0;
    c.rope_low_freq_factor = 1.0;
    c.rope_high_freq_factor = 4.0;
    c.rope_original_max_pos = 8192;
    c.tie_word_embeddings = 1;
    c.num_mem_tokens = 3;
    c.d_mem = 4; /* d_key = 24 */
    c.segment_size = 5;
    c.correction = 1;
    return c;
}

typedef struct tmodel {
    float *buf[ARMT_ROLE_COUNT];
    ref_model m;
} tmodel;

/* Random weights. wmv_std = 0 makes the memory inert. tied = 0 adds a separate lm_head. */
static tmodel *tmodel_new(const armt_config *cfg, uint64_t seed, double wmv_std, int tied) {
    tmodel *t = calloc(1, sizeof *t);
    ck_assert_ptr_nonnull(t);
    rng r = {seed, 0, 0.0};
    for (int role = 0; role < ARMT_ROLE_COUNT; role++) {
        if (role == ARMT_ROLE_LM_HEAD && tied) continue;
        uint64_t rows, cols;
        armt_role_shape(cfg, (armt_role)role, &rows, &cols, NULL);
        uint64_t per = rows * cols, count = armt_role_is_layer((armt_role)role) ? per * cfg->n_layers : per;
        double mean = 0.0, sd;
        switch (role) {
        case ARMT_ROLE_NORM_IN: case ARMT_ROLE_NORM_POST: case ARMT_ROLE_NORM_FINAL: mean = 1.0; sd = 0.1; break;
        case ARMT_ROLE_WMV: sd = wmv_std; break;
        case ARMT_ROLE_BMB: sd = 0.1; break;
        case ARMT_ROLE_EMBED: case ARMT_ROLE_MEM: sd = 1.0; break;
        default: sd = 1.0 / sqrt((double)cols); break; /* projections: 1/sqrt(fan_in) */
        }
        t->buf[role] = malloc(count * sizeof(float));
        ck_assert_ptr_nonnull(t->buf[role]);
        for (uint64_t i = 0; i < count; i++) t->buf[role][i] = (float)(mean + sd * normal(&r));
    }
    armt_config c = *cfg;
    c.tie_word_embeddings = tied;
    ref_model_set_stacked(&t->m, &c, (const float *const *)t->buf);
    return t;
}

static void tmodel_free(tmodel *t) {
    for (int role = 0; role < ARMT_ROLE_COUNT; role++) free(t->buf[role]);
    free(t);
}

static void random_ids(uint64_t seed, int32_t *ids, size_t n, int vocab) {
    rng r = {seed, 0, 0.0};
    for (size_t i = 0; i < n; i++) ids[i] = (int32_t)(splitmix64(&r) % (uint64_t)vocab);
}

static double max_abs_diff(const double *a, const double *b, size_t n) {
    double m = 0.0;
    for (size_t i = 0; i < n; i++) {
        double e = fabs(a[i] - b[i]);
        if (!(e <= m)) m = e; /* also catches NaN */
    }
    return m;
}

static double max_abs(const double *a, size_t n) {
    double m = 0.0;
    for (size_t i = 0; i < n; i++)
        if (fabs(a[i]) > m) m = fabs(a[i]);
    return m;
}

static int all_finite(const double *a, size_t n) {
    for (size_t i = 0; i < n; i++)
        if (!isfinite(a[i])) return 0;
    return 1;
}

/* ------------------------------------------------------------------------------------------------- */
/* (1) DPFP                                                                                          */
/* ------------------------------------------------------------------------------------------------- */

START_TEST(test_dpfp_literal) {
    /* x = [1, 2, -3]: x' = [1, 2, 0, 0, 0, 3] (n = 6).
     * j=1: x'[i]*x'[i-1] = [1*3, 2*1, 0, 0, 0, 3*0] ; j=2: x'[i]*x'[i-2] = [1*0, 2*3, 0, 0, 0, 3*0] ;
     * j=3: x'[i]*x'[i-3] = [1*0, 2*0, 0, 0, 0, 3*0]. */
    const double x1[3] = {1.0, 2.0, -3.0};
    const double e1[18] = {3, 2, 0, 0, 0, 0, /**/ 0, 6, 0, 0, 0, 0, /**/ 0, 0, 0, 0, 0, 0};
    double o1[18];
    ref_dpfp(x1, 3, o1);
    for (int i = 0; i < 18; i++) ck_assert_msg(o1[i] == e1[i], "dpfp ex1 [%d] = %g, want %g", i, o1[i], e1[i]);

    /* x = [1, -2, 3, -0.5]: x' = [1, 0, 3, 0, 0, 2, 0, 0.5] (n = 8).
     * j=1: [1*0.5, 0, 3*0, 0, 0, 2*0, 0, 0.5*0]       = [0.5, 0, 0,   0, 0, 0, 0, 0]
     * j=2: [1*0,   0, 3*1, 0, 0, 2*0, 0, 0.5*2]       = [0,   0, 3,   0, 0, 0, 0, 1]
     * j=3: [1*2,   0, 3*0.5, 0, 0, 2*3, 0, 0.5*0]     = [2,   0, 1.5, 0, 0, 6, 0, 0] */
    const double x2[4] = {1.0, -2.0, 3.0, -0.5};
    const double e2[24] = {0.5, 0, 0, 0, 0, 0, 0, 0, /**/ 0, 0, 3, 0, 0, 0, 0, 1, /**/ 2, 0, 1.5, 0, 0, 6, 0, 0};
    double o2[24];
    ref_dpfp(x2, 4, o2);
    for (int i = 0; i < 24; i++) ck_assert_msg(o2[i] == e2[i], "dpfp ex2 [%d] = %g, want %g", i, o2[i], e2[i]);
}
END_TEST

/* ------------------------------------------------------------------------------------------------- */
/* (2) RoPE inverse frequencies                                                                      */
/* ------------------------------------------------------------------------------------------------- */

START_TEST(test_inv_freq_llama3) {
    /* LLaMA-3.2-1B: head_dim 64, theta 500000, factor 32, low 1, high 4, original 8192. */
    armt_config c = tiny_config();
    c.head_dim = 64;
    double got[32];
    ref_rope_inv_freq(&c, got);

    /* Independent derivation: in log space, wavelen_i = 2 pi theta^(i/32), so
     *   wavelen_i < 8192/4  <=>  i < 32 ln(2048 / 2pi) / ln theta  (~14.1: i <= 14 unchanged)
     *   wavelen_i > 8192/1  <=>  i > 32 ln(8192 / 2pi) / ln theta  (~17.5: i >= 18 divided by 32)
     * and in between f_i * ((1 - s)/32 + s) with s = (8192 f_i / (2 pi) - 1) / 3. */
    const double two_pi = 6.283185307179586;
    double lt = log(500000.0);
    double i_hi = 32.0 * log(2048.0 / two_pi) / lt, i_lo = 32.0 * log(8192.0 / two_pi) / lt;
    int n_high = 0, n_mid = 0, n_low = 0;
    for (int i = 0; i < 32; i++) {
        double f = exp(-(double)i * lt / 32.0), want;
        if (i < i_hi) {
            want = f;
            n_high++;
        } else if (i > i_lo) {
            want = f / 32.0;
            n_low++;
        } else {
            double s = (8192.0 * f / two_pi - 1.0) / 3.0;
            want = f * ((1.0 - s) / 32.0 + s);
            n_mid++;
        }
        ck_assert_msg(fabs(got[i] - want) <= 1e-12 * want, "llama3 inv_freq[%d] = %.17g, want %.17g", i, got[i], want);
    }
    ck_assert_int_eq(n_high, 15);
    ck_assert_int_eq(n_mid, 3);
    ck_assert_int_eq(n_low, 14);
    ck_assert(got[0] == 1.0);

    /* plain RoPE: theta^(-2i/64), no scaling */
    c.rope_type = ARMT_ROPE_DEFAULT;
    ref_rope_inv_freq(&c, got);
    for (int i = 0; i < 32; i++) {
        double want = exp(-(double)i * lt / 32.0);
        ck_assert_msg(fabs(got[i] - want) <= 1e-12 * want, "default inv_freq[%d] = %.17g, want %.17g", i, got[i], want);
    }
}
END_TEST

START_TEST(test_rope_literal) {
    /* head_dim 4 (half 2), inv_freq = [1, 0.5], two heads. HF: x cos + rotate_half(x) sin with
     * rotate_half([a, b, c, e]) = [-c, -e, a, b] and cos/sin of [p*1, p*0.5, p*1, p*0.5].
     * Row 0 (position 0) is unchanged. Row 1, head 0, x = [1, 0, 0, 0]  -> [cos 1, 0, sin 1, 0];
     * row 1, head 1, x = [0, 2, 0, 3] -> [0, 2 cos .5 - 3 sin .5, 0, 3 cos .5 + 2 sin .5]. */
    const double inv[2] = {1.0, 0.5};
    double x[16] = {1, 2, 3, 4, 5, 6, 7, 8, /* row 0 */ 1, 0, 0, 0, 0, 2, 0, 3 /* row 1 */};
    const double want[16] = {1, 2, 3, 4, 5, 6, 7, 8,
                             cos(1.0), 0, sin(1.0), 0,
                             0, 2 * cos(0.5) - 3 * sin(0.5), 0, 3 * cos(0.5) + 2 * sin(0.5)};
    ref_rope(x, 2, 2, 4, inv);
    for (int i = 0; i < 16; i++) ck_assert_msg(fabs(x[i] - want[i]) < 1e-15, "rope [%d] = %g want %g", i, x[i], want[i]);
}
END_TEST

/* ------------------------------------------------------------------------------------------------- */
/* (3) attention                                                                                     */
/* ------------------------------------------------------------------------------------------------- */

START_TEST(test_attention_single_token) {
    /* One token: softmax over one score is 1, so each query head returns the V of its KV head (GQA). */
    enum { NH = 4, NKV = 2, HD = 8 };
    double q[NH * HD], k[NKV * HD], v[NKV * HD], o[NH * HD];
    rng r = {42, 0, 0.0};
    for (int i = 0; i < NH * HD; i++) q[i] = 3.0 * normal(&r);
    for (int i = 0; i < NKV * HD; i++) k[i] = 3.0 * normal(&r), v[i] = normal(&r);
    ck_assert_int_eq(ref_attention(q, k, v, 1, NH, NKV, HD, o), 0);
    for (int h = 0; h < NH; h++)
        for (int i = 0; i < HD; i++) ck_assert(o[h * HD + i] == v[(h / (NH / NKV)) * HD + i]);
}
END_TEST

START_TEST(test_attention_hand_two_tokens) {
    /* head_dim 2, scale 1/sqrt 2. Row 1: q = [sqrt2, 0], k0 = [0, 0], k1 = [ln 3, 0]:
     * scores 0 and ln 3 -> weights 1/4, 3/4; v0 = [4, 0], v1 = [0, 8] -> [1, 6]. Row 0 -> v0. */
    double q[4] = {5.0, -7.0, sqrt(2.0), 0.0};
    double k[4] = {0.0, 0.0, log(3.0), 0.0};
    double v[4] = {4.0, 0.0, 0.0, 8.0};
    double o[4];
    ck_assert_int_eq(ref_attention(q, k, v, 2, 1, 1, 2, o), 0);
    ck_assert(o[0] == 4.0 && o[1] == 0.0);
    ck_assert_msg(fabs(o[2] - 1.0) < 1e-14 && fabs(o[3] - 6.0) < 1e-14, "got [%g, %g]", o[2], o[3]);
}
END_TEST

START_TEST(test_attention_equal_keys_prefix_mean) {
    /* All keys equal: every causal row t averages v[0..t] uniformly (per KV head). */
    enum { T = 6, NH = 6, NKV = 2, HD = 4 };
    double q[T * NH * HD], k[T * NKV * HD], v[T * NKV * HD], o[T * NH * HD];
    rng r = {7, 0, 0.0};
    double key[NKV * HD];
    for (int i = 0; i < NKV * HD; i++) key[i] = normal(&r);
    for (int i = 0; i < T * NH * HD; i++) q[i] = normal(&r);
    for (int t = 0; t < T; t++)
        for (int i = 0; i < NKV * HD; i++) k[t * NKV * HD + i] = key[i], v[t * NKV * HD + i] = normal(&r);
    ck_assert_int_eq(ref_attention(q, k, v, T, NH, NKV, HD, o), 0);
    for (int t = 0; t < T; t++)
        for (int h = 0; h < NH; h++)
            for (int i = 0; i < HD; i++) {
                int kh = h / (NH / NKV);
                double mean = 0.0;
                for (int u = 0; u <= t; u++) mean += v[u * NKV * HD + kh * HD + i];
                mean /= (t + 1);
                ck_assert_msg(fabs(o[(t * NH + h) * HD + i] - mean) < 1e-13, "t=%d h=%d i=%d", t, h, i);
            }
}
END_TEST

/* ------------------------------------------------------------------------------------------------- */
/* whole-model structural tests                                                                      */
/* ------------------------------------------------------------------------------------------------- */

enum { N_TOK = 17 }; /* 3 full segments of 5 and a short one of 2 */

/* Logits of segment s run alone on a fresh state. */
static void run_segment_alone(const tmodel *t, const int32_t *ids, size_t n, double *logits) {
    ref_state *st = ref_state_new(&t->m.cfg);
    ck_assert_ptr_nonnull(st);
    ck_assert_int_eq(ref_armt_forward(&t->m, st, ids, n, logits, NULL), 0);
    ref_state_free(st);
}

/* (4) W_mv = 0: memory inert, each segment equals that segment alone on a fresh state. */
START_TEST(test_inert_memory) {
    armt_config c = tiny_config();
    tmodel *t = tmodel_new(&c, 1001, 0.0, 1);
    int V = c.vocab_size, L = c.segment_size;
    int32_t ids[N_TOK];
    random_ids(5, ids, N_TOK, V);
    double *all = malloc(sizeof(double) * N_TOK * V), *one = malloc(sizeof(double) * N_TOK * V);
    ref_state *st = ref_state_new(&c);
    ck_assert_int_eq(ref_armt_forward(&t->m, st, ids, N_TOK, all, NULL), 0);
    ck_assert(all_finite(all, (size_t)N_TOK * V));
    for (int s0 = 0; s0 < N_TOK; s0 += L) {
        int Ls = N_TOK - s0 < L ? N_TOK - s0 : L;
        run_segment_alone(t, ids + s0, (size_t)Ls, one);
        double e = max_abs_diff(all + (size_t)s0 * V, one, (size_t)Ls * V);
        ck_assert_msg(e <= 1e-12, "segment at %d differs from a fresh run by %g", s0, e);
    }
    /* the writes did happen: every layer written, z > 0 somewhere, W_mem exactly 0 */
    int dk = 6 * c.d_mem;
    for (int l = 0; l < c.n_layers; l++) ck_assert_int_eq(st->written[l], 1);
    ck_assert(max_abs(st->z, (size_t)c.n_layers * dk) > 0.0);
    ck_assert(max_abs(st->w_mem, (size_t)c.n_layers * dk * c.hidden_size) == 0.0);
    ref_state_free(st);
    free(all), free(one);
    tmodel_free(t);
}
END_TEST

/* W_mv != 0: segment 0 equals a fresh run (nothing to read yet), later segments do not. */
START_TEST(test_memory_active) {
    armt_config c = tiny_config();
    tmodel *t = tmodel_new(&c, 1002, 0.05, 1);
    int V = c.vocab_size, L = c.segment_size;
    int32_t ids[N_TOK];
    random_ids(6, ids, N_TOK, V);
    double *all = malloc(sizeof(double) * N_TOK * V), *one = malloc(sizeof(double) * N_TOK * V);
    ref_state *st = ref_state_new(&c);
    ck_assert_int_eq(ref_armt_forward(&t->m, st, ids, N_TOK, all, NULL), 0);
    ck_assert(all_finite(all, (size_t)N_TOK * V));
    ck_assert(all_finite(st->w_mem, (size_t)c.n_layers * 6 * c.d_mem * c.hidden_size));
    for (int s0 = 0; s0 < N_TOK; s0 += L) {
        int Ls = N_TOK - s0 < L ? N_TOK - s0 : L;
        run_segment_alone(t, ids + s0, (size_t)Ls, one);
        double e = max_abs_diff(all + (size_t)s0 * V, one, (size_t)Ls * V);
        if (s0 == 0)
            ck_assert_msg(e <= 1e-12, "segment 0 differs from a fresh run by %g", e);
        else
            ck_assert_msg(e > 1e-6, "segment at %d: memory looks inert (diff %g)", s0, e);
    }
    ref_state_free(st);
    free(all), free(one);
    tmodel_free(t);
}
END_TEST

/* (5) one call == calls split at segment boundaries (logits, hidden and the final state). */
START_TEST(test_split_calls) {
    armt_config c = tiny_config();
    tmodel *t = tmodel_new(&c, 1003, 0.05, 0);
    int V = c.vocab_size, d = c.hidden_size;
    size_t nw = (size_t)c.n_layers * 6 * c.d_mem * d, nz = (size_t)c.n_layers * 6 * c.d_mem;
    int32_t ids[N_TOK];
    random_ids(7, ids, N_TOK, V);
    double *la = malloc(sizeof(double) * N_TOK * V), *lb = malloc(sizeof(double) * N_TOK * V);
    double *ha = malloc(sizeof(double) * N_TOK * d), *hb = malloc(sizeof(double) * N_TOK * d);
    ref_state *sa = ref_state_new(&c), *sb = ref_state_new(&c);
    ck_assert_int_eq(ref_armt_forward(&t->m, sa, ids, N_TOK, la, ha), 0);

    static const size_t splits[][3] = {{10, 7, 0}, {5, 5, 7}, {15, 2, 0}};
    for (size_t k = 0; k < sizeof splits / sizeof splits[0]; k++) {
        ref_state_reset(sb);
        memset(lb, 0, sizeof(double) * N_TOK * V);
        size_t off = 0;
        for (int p = 0; p < 3 && splits[k][p]; p++) {
            size_t n = splits[k][p];
            ck_assert_int_eq(ref_armt_forward(&t->m, sb, ids + off, n, lb + off * V, hb + off * d), 0);
            off += n;
        }
        ck_assert_int_eq((int)off, N_TOK);
        ck_assert_msg(max_abs_diff(la, lb, (size_t)N_TOK * V) <= 1e-12, "split %zu: logits differ", k);
        ck_assert_msg(max_abs_diff(ha, hb, (size_t)N_TOK * d) <= 1e-12, "split %zu: hidden differ", k);
        ck_assert_msg(max_abs_diff(sa->w_mem, sb->w_mem, nw) <= 1e-12, "split %zu: W_mem differs", k);
        ck_assert_msg(max_abs_diff(sa->z, sb->z, nz) <= 1e-12, "split %zu: z differs", k);
        ck_assert(memcmp(sa->written, sb->written, (size_t)c.n_layers) == 0);
    }
    /* and a split that is NOT at a segment boundary changes the segmentation, hence the result */
    ref_state_reset(sb);
    ck_assert_int_eq(ref_armt_forward(&t->m, sb, ids, 7, lb, NULL), 0);
    ck_assert_int_eq(ref_armt_forward(&t->m, sb, ids + 7, N_TOK - 7, lb + 7 * V, NULL), 0);
    ck_assert(max_abs_diff(la, lb, (size_t)N_TOK * V) > 1e-6);

    ref_state_free(sa), ref_state_free(sb);
    free(la), free(lb), free(ha), free(hb);
    tmodel_free(t);
}
END_TEST

/* (6) the token rows of one ARMT segment on a fresh state equal plain LLaMA over the same tokens:
 * memory tokens are appended after the tokens and attention is causal. Also checks the head: logits are
 * hidden . E^T when tied, hidden . lm_head^T when not. */
static void check_llama_equals_segment(int tied, int n) {
    armt_config c = tiny_config();
    tmodel *t = tmodel_new(&c, tied ? 1004 : 1005, 0.05, tied);
    int V = c.vocab_size, d = c.hidden_size;
    int32_t ids[8];
    random_ids(8 + (uint64_t)n, ids, (size_t)n, V);
    double la[8 * 40], lb[8 * 40], ha[8 * 32], hb[8 * 32];
    ck_assert_int_le(V, 40);
    ck_assert_int_le(d, 32);
    ref_state *st = ref_state_new(&c);
    ck_assert_int_eq(ref_armt_forward(&t->m, st, ids, (size_t)n, la, ha), 0);
    ck_assert_int_eq(ref_llama_forward(&t->m, ids, (size_t)n, lb, hb), 0);
    double el = max_abs_diff(la, lb, (size_t)n * V), eh = max_abs_diff(ha, hb, (size_t)n * d);
    ck_assert_msg(el <= 1e-12 && eh <= 1e-12, "tied=%d n=%d: logits diff %g, hidden diff %g", tied, n, el, eh);
    ck_assert(max_abs(la, (size_t)n * V) > 0.1);

    /* final RMSNorm: mean((h_i / w_i)^2) = ms / (ms + eps), just below 1 */
    for (int r = 0; r < n; r++) {
        double ss = 0.0;
        for (int i = 0; i < d; i++) {
            double u = hb[r * d + i] / (double)t->buf[ARMT_ROLE_NORM_FINAL][i];
            ss += u * u;
        }
        ss /= d;
        ck_assert_msg(ss <= 1.0 + 1e-12 && ss > 1.0 - 1e-4, "row %d: mean square %g", r, ss);
    }

    const float *headw = tied ? t->buf[ARMT_ROLE_EMBED] : t->buf[ARMT_ROLE_LM_HEAD];
    for (int r = 0; r < n; r++)
        for (int vv = 0; vv < V; vv++) {
            double acc = 0.0;
            for (int i = 0; i < d; i++) acc += hb[r * d + i] * (double)headw[(size_t)vv * d + i];
            ck_assert(fabs(acc - lb[r * V + vv]) <= 1e-12);
        }
    ref_state_free(st);
    tmodel_free(t);
}

START_TEST(test_llama_equals_first_segment) {
    check_llama_equals_segment(1, 5); /* n = L */
    check_llama_equals_segment(1, 3); /* n < L */
    check_llama_equals_segment(0, 5); /* separate lm_head */
}
END_TEST

/* The memory write/read in isolation: with W_mq = W_mk, writing one memory row m and reading it back
 * recalls beta * V (times |K|^2 / (|K|^2 + 1e-5)); writing the same row again gives gamma = 0. */
static void check_recall(int correction) {
    armt_config c = tiny_config();
    c.correction = correction;
    tmodel *t = tmodel_new(&c, 1006, 0.3, 1);
    t->m.cfg.correction = correction;
    int d = c.hidden_size, dm = c.d_mem, dk = 6 * dm;
    const int l = 1;
    memcpy(t->buf[ARMT_ROLE_WMQ] + (size_t)l * dm * d, t->m.w[ARMT_ROLE_WMK][l], sizeof(float) * (size_t)dm * d);

    rng r = {99, 0, 0.0};
    double mrow[32], H[32], kin[4], K[24], Vn[32];
    for (int i = 0; i < d; i++) mrow[i] = normal(&r);
    /* independent recomputation of K = phi(m W_mk^T), Vnew = m W_mv^T, beta */
    const float *wmk = t->m.w[ARMT_ROLE_WMK][l], *wmv = t->m.w[ARMT_ROLE_WMV][l];
    for (int o = 0; o < dm; o++) {
        kin[o] = 0.0;
        for (int i = 0; i < d; i++) kin[o] += (double)wmk[o * d + i] * mrow[i];
    }
    ref_dpfp(kin, dm, K);
    for (int o = 0; o < d; o++) {
        Vn[o] = 0.0;
        for (int i = 0; i < d; i++) Vn[o] += (double)wmv[o * d + i] * mrow[i];
    }
    double bl = (double)t->m.w[ARMT_ROLE_BMB][l][0];
    for (int i = 0; i < d; i++) bl += (double)t->m.w[ARMT_ROLE_WMB][l][i] * mrow[i];
    double beta = 1.0 / (1.0 + exp(-bl)), k2 = 0.0;
    for (int a = 0; a < dk; a++) k2 += K[a] * K[a];
    ck_assert(k2 > 1e-3);

    ref_state *st = ref_state_new(&c);
    ck_assert_int_eq(ref_mem_write(&t->m, st, l, mrow, 1), 0);
    ck_assert_int_eq(st->written[l], 1);
    ck_assert_int_eq(st->written[0], 0);
    const double *W = st->w_mem + (size_t)l * dk * d, *z = st->z + (size_t)l * dk;
    /* first segment: W_mem = beta K^T Vnew, z = K (gamma = 1), other layers untouched */
    for (int a = 0; a < dk; a++) {
        ck_assert(fabs(z[a] - K[a]) <= 1e-12);
        for (int i = 0; i < d; i++) ck_assert(fabs(W[a * d + i] - beta * K[a] * Vn[i]) <= 1e-12);
    }
    ck_assert(max_abs(st->z, (size_t)dk) == 0.0);

    /* read with H = m: H + beta |K|^2 / (|K|^2 + 1e-5) Vnew */
    double cf = beta * k2 / (k2 + 1e-5);
    memcpy(H, mrow, sizeof(double) * d);
    ck_assert_int_eq(ref_mem_read(&t->m, st, l, H, 1), 0);
    for (int i = 0; i < d; i++) ck_assert_msg(fabs(H[i] - (mrow[i] + cf * Vn[i])) <= 1e-12, "read [%d]", i);

    /* second write of the same key: Vprev = (K W_mem) / (K.z + 1e-5) = beta k2/(k2 + 1e-5) Vnew = cf Vnew;
     * W_mem += beta K^T (Vnew - Vprev) -> beta K^T Vnew (2 - cf);
     * gamma = 1 - (k2 + 1e-5)/(k2 + 1e-5) = 0 with correction (z unchanged), 1 without (z = 2K). */
    ck_assert_int_eq(ref_mem_write(&t->m, st, l, mrow, 1), 0);
    for (int a = 0; a < dk; a++) {
        double zw = correction ? K[a] : 2.0 * K[a];
        ck_assert_msg(fabs(z[a] - zw) <= 1e-12, "z[%d] after rewrite: %g want %g", a, z[a], zw);
        for (int i = 0; i < d; i++) {
            double want = beta * K[a] * Vn[i] * (2.0 - cf);
            ck_assert(fabs(W[a * d + i] - want) <= 1e-12);
        }
    }
    ref_state_free(st);
    tmodel_free(t);
}

START_TEST(test_mem_recall_and_correction) {
    check_recall(1);
    check_recall(0);
}
END_TEST

/* The memory tokens are appended after the segment tokens and the write uses their rows: changing MEM
 * leaves segment 0's token logits unchanged (causal attention) but changes what is written, hence the
 * later segments. */
START_TEST(test_mem_tokens_after_tokens) {
    armt_config c = tiny_config();
    tmodel *t = tmodel_new(&c, 1008, 0.05, 1);
    int V = c.vocab_size, L = c.segment_size;
    int32_t ids[N_TOK];
    random_ids(10, ids, N_TOK, V);
    double *a = malloc(sizeof(double) * N_TOK * V), *b = malloc(sizeof(double) * N_TOK * V);
    ref_state *st = ref_state_new(&c);
    ck_assert_int_eq(ref_armt_forward(&t->m, st, ids, N_TOK, a, NULL), 0);
    for (int i = 0; i < c.num_mem_tokens * c.hidden_size; i++) t->buf[ARMT_ROLE_MEM][i] *= -0.5f;
    ref_state_reset(st);
    ck_assert_int_eq(ref_armt_forward(&t->m, st, ids, N_TOK, b, NULL), 0);
    ck_assert(max_abs_diff(a, b, (size_t)L * V) == 0.0);
    ck_assert(max_abs_diff(a + (size_t)L * V, b + (size_t)L * V, (size_t)L * V) > 1e-6);
    ref_state_free(st);
    free(a), free(b);
    tmodel_free(t);
}
END_TEST

/* Reset, argument checks, n = 0. */
START_TEST(test_state_and_args) {
    armt_config c = tiny_config();
    tmodel *t = tmodel_new(&c, 1007, 0.05, 1);
    int V = c.vocab_size;
    int32_t ids[N_TOK];
    random_ids(9, ids, N_TOK, V);
    double *a = malloc(sizeof(double) * N_TOK * V), *b = malloc(sizeof(double) * N_TOK * V);
    ref_state *st = ref_state_new(&c);
    ck_assert_int_eq(ref_armt_forward(&t->m, st, ids, N_TOK, a, NULL), 0);
    ref_state_reset(st);
    ck_assert_int_eq(ref_armt_forward(&t->m, st, ids, N_TOK, b, NULL), 0);
    ck_assert(max_abs_diff(a, b, (size_t)N_TOK * V) == 0.0);

    /* a bad id is refused before anything changes */
    size_t nz = (size_t)c.n_layers * 6 * c.d_mem;
    double *z0 = malloc(sizeof(double) * nz);
    memcpy(z0, st->z, sizeof(double) * nz);
    int32_t bad[3] = {1, V, 2};
    ck_assert_int_eq(ref_armt_forward(&t->m, st, bad, 3, a, NULL), -1);
    bad[1] = -1;
    ck_assert_int_eq(ref_llama_forward(&t->m, bad, 3, a, NULL), -1);
    ck_assert(memcmp(z0, st->z, sizeof(double) * nz) == 0);
    ck_assert_int_eq(ref_armt_forward(&t->m, st, ids, 0, NULL, NULL), 0);
    ck_assert(memcmp(z0, st->z, sizeof(double) * nz) == 0);
    /* outputs may be NULL: the state still advances (W_mem; z may stay put when every gamma clips to 0) */
    size_t nw = nz * c.hidden_size;
    double *w0 = malloc(sizeof(double) * nw);
    memcpy(w0, st->w_mem, sizeof(double) * nw);
    ck_assert_int_eq(ref_armt_forward(&t->m, st, ids, 5, NULL, NULL), 0);
    ck_assert(max_abs_diff(w0, st->w_mem, nw) > 1e-9);
    free(w0);

    free(z0), free(a), free(b);
    ref_state_free(st);
    tmodel_free(t);
}
END_TEST

static Suite *ref_suite(void) {
    Suite *s = suite_create("ref_armt");
    TCase *tc = tcase_create("blocks");
    tcase_add_test(tc, test_dpfp_literal);
    tcase_add_test(tc, test_inv_freq_llama3);
    tcase_add_test(tc, test_rope_literal);
    tcase_add_test(tc, test_attention_single_token);
    tcase_add_test(tc, test_attention_hand_two_tokens);
    tcase_add_test(tc, test_attention_equal_keys_prefix_mean);
    tcase_add_test(tc, test_mem_recall_and_correction);
    suite_add_tcase(s, tc);
    tc = tcase_create("model");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_inert_memory);
    tcase_add_test(tc, test_memory_active);
    tcase_add_test(tc, test_split_calls);
    tcase_add_test(tc, test_llama_equals_first_segment);
    tcase_add_test(tc, test_mem_tokens_after_tokens);
    tcase_add_test(tc, test_state_and_args);
    suite_add_tcase(s, tc);
    return s;
}

int main(void) {
    SRunner *sr = srunner_create(ref_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
