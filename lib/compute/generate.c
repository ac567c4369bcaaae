/*
 * generate.c - reading a prompt and producing new tokens (docs/MATH.md §3.6).
 *
 * The prompt's segments but the last go through armt_forward. The last one (the "tail", after the sink row
 * when the model has one) runs through the layers without memory tokens and without writes, every layer
 * reading the memory on every row; its keys and values are kept per layer in a KV cache of tail + max_new
 * rows, so each new token runs the layers on one row and attends to the cache. With a sliding window the
 * cache of each layer starts with that layer's window (the previous segment's text rows, as the forward
 * left them), which the tail attends to as the forward's text rows do.
 */
#include "config.h"

#include "compute/ops.h"
#include "compute/sample.h"
#include "compute/step.h"
#include "common/util.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

armt_generate_params armt_generate_default_params(void) {
    armt_generate_params p;
    memset(&p, 0, sizeof p);
    p.schedule = ARMT_SCHEDULE_DIAGONAL;
    p.max_new_tokens = 32;
    p.stop_id = -1;
    p.temperature = 0.0f;
    p.top_k = 0;
    p.top_p = 1.0f;
    return p;
}

/* ======================================================================================================= */
/* Sampling                                                                                                */
/* ======================================================================================================= */

static uint64_t rng_next(uint64_t *s) {
    uint64_t z = (*s += 0x9E3779B97F4A7C15ULL);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    return z ^ (z >> 31);
}

typedef struct cand {
    double p;
    int32_t id;
} cand;

static int cand_cmp(const void *a, const void *b) {
    const cand *x = a, *y = b;
    if (x->p != y->p) return x->p < y->p ? 1 : -1;
    return x->id < y->id ? -1 : (x->id > y->id);
}

/* Greedy (argmax, lowest id on ties) when temperature <= 0; else temperature, top-k, top-p, then a draw.
 * work: V candidates of scratch. */
static int32_t sample(const float *logits, int V, const armt_generate_params *p, uint64_t *rng, cand *work) {
    if (p->temperature <= 0.0f) {
        int32_t best = 0;
        for (int i = 1; i < V; i++)
            if (logits[i] > logits[best]) best = i;
        return best;
    }
    double mx = -INFINITY;
    for (int i = 0; i < V; i++)
        mx = fmax(mx, (double)logits[i]);
    for (int i = 0; i < V; i++) {
        work[i].id = i;
        work[i].p = exp(((double)logits[i] - mx) / (double)p->temperature);
    }
    qsort(work, (size_t)V, sizeof *work, cand_cmp);
    int n = V;
    if (p->top_k > 0 && p->top_k < n) n = p->top_k;
    double total = 0;
    for (int i = 0; i < n; i++)
        total += work[i].p;
    if (p->top_p > 0.0f && p->top_p < 1.0f) {
        double acc = 0;
        for (int i = 0; i < n; i++) {
            acc += work[i].p / total;
            if (acc >= p->top_p) {
                n = i + 1;
                break;
            }
        }
        total = 0;
        for (int i = 0; i < n; i++)
            total += work[i].p;
    }
    double u = (double)(rng_next(rng) >> 11) * (1.0 / 9007199254740992.0) * total;
    for (int i = 0; i < n; i++) {
        u -= work[i].p;
        if (u < 0) return work[i].id;
    }
    return work[n - 1].id;
}

/* ======================================================================================================= */
/* Generation                                                                                              */
/* ======================================================================================================= */

/* Runs rows [pos0, pos0 + ns + ntok) of the tail through every layer (read, then the layer with the KV
 * cache): the sink row when ns = 1, then the tokens seq[first .. first + ntok). Each layer's cache has
 * F->win + tmax rows. */
static armt_status tail_rows(armt_call *F, cl_mem kc, cl_mem vc, cl_mem part, cl_mem dcnt, size_t tmax,
                             int pos0, size_t first, int ntok, int ns) {
    armt_err *err = F->err;
    const int Lyr = F->cfg->n_layers;
    size_t kvd = (size_t)F->nkv * (size_t)F->hd, per = (size_t)F->win + tmax;
    armt_step st = {.l0 = 0,
                    .G = 1,
                    .s0 = 0,
                    .cap = 1,
                    .T = ns + ntok,
                    .s_short = -1,
                    .pos0 = pos0,
                    .kcache = kc,
                    .vcache = vc,
                    .cache_rows = (int)per,
                    .cache_bf16 = armt_kv_cache_bf16(F->ctx, F->hd),
                    .part = part,
                    .dcnt = dcnt};
    const int flush = F->ctx->rt->tune.decode_flush;
    ARMT_TRY(armt_step_upload_ids(F, first, (size_t)ntok));
    ARMT_TRY(armt_step_embed(F, &st, first, ntok, 0, ns));
    for (int l = 0; l < Lyr; l++) {
        st.l0 = l;
        st.cache_off = (size_t)l * per * kvd;
        ARMT_TRY(armt_step_read(F, &st));
        ARMT_TRY(armt_step_layer(F, &st));
        /* the device starts on the layers enqueued so far while the host enqueues the next ones (the
         * token's logits are read at its end: no flush would hold them all back until then) */
        if (flush > 0 && l % flush == 0) ARMT_CL_TRY(clFlush(F->ctx->queue));
    }
    return ARMT_OK;
}

/* What follows row x_off of the tail: greedy (tokb, one int on the device), the token picked on the device
 * into *next (by several work-groups, their pairs in part: the decode attention's, free by then; cnt: with
 * the fused decode, its counters); else the logits, for sample() */
static armt_status tail_next(armt_call *F, size_t x_off, cl_mem tokb, cl_mem part, cl_mem cnt, int32_t *next,
                             float *logits) {
    return tokb ? armt_step_row_token(F, x_off, tokb, part, cnt, next)
                : armt_step_row_logits(F, x_off, logits);
}

/* With a sliding window: each layer's window into the first F->win rows of its KV cache (the attention
 * reads only the rows it holds), rounded to bf16 where the cache holds bf16. */
static armt_status tail_window(armt_call *F, cl_mem kc, cl_mem vc, size_t tmax) {
    armt_ctx *ctx = F->ctx;
    const size_t kvd = (size_t)F->nkv * (size_t)F->hd, W = (size_t)F->win, n = W * kvd;
    const int bf = armt_kv_cache_bf16(ctx, F->hd);
    for (size_t l = 0; W && l < (size_t)F->cfg->n_layers; l++)
        ARMT_TRY(armt_op_kv_put(F, ctx->win_k, ctx->win_v, l * n, kc, vc, l * (W + tmax) * kvd, n, bf));
    return ARMT_OK;
}

/* Progress of a generation: the prompt forward's steps, then one per new token (see armt.h). */
typedef struct gen_progress {
    const armt_generate_params *gp;
    uint64_t offset, total;
} gen_progress;

static int forward_progress(uint64_t done, uint64_t total, void *user_data) {
    const gen_progress *g = user_data;
    (void)total;
    return g->gp->progress(g->offset + done, g->total, g->gp->progress_user_data);
}

static armt_status token_progress(const gen_progress *g, uint64_t done, armt_err *err) {
    if (g->gp->progress && g->gp->progress(g->offset + done, g->total, g->gp->progress_user_data) != 0)
        return armt_err_set(err, ARMT_STATUS_CANCELLED,
                            "armt_generate: cancelled by the progress callback after step %llu of %llu",
                            (unsigned long long)(g->offset + done), (unsigned long long)g->total);
    return ARMT_OK;
}

armt_status armt_generate(armt_ctx *ctx, const int32_t *prompt, size_t n, const armt_generate_params *params,
                          int32_t *out, size_t out_cap, armt_generate_result *result) {
    if (!ctx) return armt_err_set(NULL, ARMT_STATUS_INVALID_ARGUMENT, "armt_generate: ctx is NULL");
    armt_err *err = &ctx->err;
    armt_generate_params gp = params ? *params : armt_generate_default_params();
    const armt_config *cfg = &ctx->model->cfg;
    ARMT_RETURN_IF(n == 0, ARMT_STATUS_EMPTY_INPUT, "armt_generate: empty prompt");
    ARMT_RETURN_IF(!prompt, ARMT_STATUS_INVALID_ARGUMENT, "armt_generate: prompt is NULL");
    ARMT_RETURN_IF(gp.max_new_tokens < 0, ARMT_STATUS_INVALID_ARGUMENT, "armt_generate: max_new_tokens < 0");
    ARMT_RETURN_IF(gp.schedule != ARMT_SCHEDULE_DIAGONAL && gp.schedule != ARMT_SCHEDULE_SEQUENTIAL,
                   ARMT_STATUS_INVALID_ARGUMENT,
                   "armt_generate: the schedule must be diagonal or sequential");
    ARMT_RETURN_IF(out && out_cap < (size_t)gp.max_new_tokens, ARMT_STATUS_INVALID_ARGUMENT,
                   "armt_generate: out holds %zu tokens, max_new_tokens is %d", out_cap, gp.max_new_tokens);
    ARMT_RETURN_IF(!out && !gp.on_token && gp.max_new_tokens > 0, ARMT_STATUS_INVALID_ARGUMENT,
                   "armt_generate: give out or on_token");
    ARMT_RETURN_IF(gp.temperature < 0.0f || !(gp.top_p >= 0.0f && gp.top_p <= 1.0f) || gp.top_k < 0,
                   ARMT_STATUS_INVALID_ARGUMENT,
                   "armt_generate: temperature must be >= 0, top_p in [0, 1], top_k >= 0");
    for (size_t i = 0; i < n; i++)
        ARMT_RETURN_IF(prompt[i] < 0 || prompt[i] >= cfg->vocab_size, ARMT_STATUS_TOKEN_OUT_OF_RANGE,
                       "armt_generate: prompt token %zu has id %d, outside [0, %d)", i, (int)prompt[i],
                       cfg->vocab_size);
    if (result) memset(result, 0, sizeof *result);

    const size_t L = (size_t)cfg->segment_size, ns = cfg->use_sink ? 1 : 0;
    const size_t W = cfg->sliding_window ? L : 0;
    const size_t cut = ((n + L - 1) / L - 1) * L; /* the last segment, full or partial, is the tail */
    /* tmax: the tail's rows (its sink, its tokens, the new ones); ntok: its tokens (the ids of seq) */
    const size_t R = n - cut, ntok = R + (size_t)gp.max_new_tokens, tmax = ns + ntok;
    ARMT_RETURN_IF(tmax + W > (size_t)INT32_MAX, ARMT_STATUS_INVALID_ARGUMENT,
                   "armt_generate: too many tokens");
    double t0 = armt_now();

    /* progress: the earlier segments' steps, then the new tokens */
    gen_progress prog = {&gp, 0, 0};
    if (cut > 0) {
        uint64_t S1 = cut / L, Lyr = (uint64_t)cfg->n_layers;
        prog.offset = gp.schedule == ARMT_SCHEDULE_DIAGONAL ? S1 + Lyr - 1 : S1 * Lyr;
    }
    prog.total = prog.offset + (uint64_t)gp.max_new_tokens;

    /* 1. the earlier segments: an ordinary forward (it snapshots the state first, and puts it back when it
     * fails or is cancelled) */
    if (cut > 0) {
        armt_forward_params fp = armt_forward_default_params();
        fp.schedule = gp.schedule;
        if (gp.progress) {
            gen_progress fwd = {&gp, 0, prog.total};
            fp.progress = forward_progress;
            fp.progress_user_data = &fwd;
            armt_status fst = armt_forward(ctx, prompt, cut, &fp);
            if (fst == ARMT_STATUS_CANCELLED)
                armt_err_set(err, fst, "armt_generate: cancelled by the progress callback in the prompt");
            ARMT_TRY(fst);
        } else {
            ARMT_TRY(armt_forward(ctx, prompt, cut, &fp));
        }
    } else {
        ARMT_TRY(armt_state_copy(ctx, 1, err));
    }

    /* 2. the tail with a KV cache */
    /* greedy: each token is picked on the device and only it is read back; else the logits are */
    const int greedy = gp.temperature <= 0.0f;
    int32_t *seq = malloc(ntok * sizeof *seq), next = 0;
    float *logits = greedy ? NULL : malloc((size_t)cfg->vocab_size * sizeof *logits);
    cand *work = greedy ? NULL : malloc((size_t)cfg->vocab_size * sizeof *work);
    size_t kvd = (size_t)cfg->n_kv_heads * (size_t)cfg->head_dim;
    /* (a bf16 cache: ushort elements, half the bytes) */
    size_t cache_bytes =
        (size_t)cfg->n_layers * (W + tmax) * kvd * (armt_kv_cache_bf16(ctx, cfg->head_dim) ? 2 : 4);
    cl_mem kc = NULL, vc = NULL, part = NULL, dcnt = NULL, tokb = NULL;
    const size_t dcnt_bytes = (size_t)cfg->n_heads * sizeof(cl_uint); /* (the fused combine's counters) */
    /* the decode attention's partial results: a chunk of ARMT_ATTN_DCHUNK keys per work-group and head */
    const size_t att_bytes = (size_t)cfg->n_heads * ((W + tmax + ARMT_ATTN_DCHUNK - 1) / ARMT_ATTN_DCHUNK) *
                             ((size_t)cfg->head_dim + 2) * sizeof(float);
    /* (the greedy token's pairs after the layers: armt_op_rows_argmax) */
    const size_t part_bytes = att_bytes > ARMT_ARGMAX_PARTS_MAX * 8 ? att_bytes : ARMT_ARGMAX_PARTS_MAX * 8;
    armt_call F;
    int began = 0;
    armt_status st = ARMT_OK;
    armt_forward_params none = armt_forward_default_params();
    if (!seq || (!greedy && (!logits || !work))) {
        st = armt_err_set(err, ARMT_STATUS_OUT_OF_HOST_MEMORY, "armt_generate: out of host memory");
        goto fail;
    }
    memcpy(seq, prompt + cut, R * sizeof *seq);
    {
        size_t sizes[3] = {cache_bytes, cache_bytes, part_bytes};
        ARMT_TRY_GOTO(armt_device_fits(ctx->rt, sizes, 3, "generation KV cache", err), fail);
    }
    ARMT_TRY_GOTO(armt_buffer_create(ctx->rt, cache_bytes, &kc, "KV cache", err), fail);
    ARMT_TRY_GOTO(armt_buffer_create(ctx->rt, cache_bytes, &vc, "KV cache", err), fail);
    ARMT_TRY_GOTO(armt_buffer_create(ctx->rt, part_bytes, &part, "decode attention", err), fail);
    if (ctx->rt->tune.decode_fuse) {
        ARMT_TRY_GOTO(armt_buffer_create(ctx->rt, dcnt_bytes, &dcnt, "decode attention", err), fail);
        ARMT_TRY_GOTO(armt_ctx_zero_buffer(ctx, dcnt, dcnt_bytes, err), fail);
    }
    if (greedy) ARMT_TRY_GOTO(armt_buffer_create(ctx->rt, sizeof next, &tokb, "greedy token", err), fail);
    ARMT_TRY_GOTO(armt_call_begin(&F, ctx, &none, seq, ntok), fail);
    began = 1;
    F.gemv = 1;
    ARMT_TRY_GOTO(armt_scratch_grow(&F, 1, ns + R, tmax, ntok, 1, 0), fail);
    ARMT_TRY_GOTO(tail_window(&F, kc, vc, tmax), fail);
    ARMT_TRY_GOTO(tail_rows(&F, kc, vc, part, dcnt, tmax, 0, 0, (int)R, (int)ns), fail);
    ARMT_TRY_GOTO(tail_next(&F, (ns + R - 1) * (size_t)F.d, tokb, part, dcnt, &next, logits), fail);
    double t1 = armt_now();
    if (result) {
        result->prompt_tokens = n;
        result->tail_tokens = R;
        result->prefill_seconds = t1 - t0;
    }

    /* 3. one token at a time (a profiling context's profile is then the decode's: the new tokens after the
     * first) */
    if (ctx->prof_on) armt_ctx_prof_restart(ctx);
    uint64_t rng = gp.seed ^ 0x5DEECE66DULL;
    size_t produced = 0;
    int stopped = 0;
    for (int i = 0; i < gp.max_new_tokens; i++) {
        int32_t tok = greedy ? next : sample(logits, cfg->vocab_size, &gp, &rng, work);
        if (out) out[i] = tok;
        produced++;
        if (gp.on_token && gp.on_token(tok, gp.user_data)) stopped = 2;
        if (tok == gp.stop_id) stopped = 1;
        ARMT_TRY_GOTO(token_progress(&prog, (uint64_t)i + 1, err), fail);
        if (stopped || i + 1 == gp.max_new_tokens) break;
        seq[R + (size_t)i] = tok;
        ARMT_TRY_GOTO(tail_rows(&F, kc, vc, part, dcnt, tmax, (int)(ns + R + (size_t)i), R + (size_t)i, 1, 0),
                      fail);
        ARMT_TRY_GOTO(tail_next(&F, 0, tokb, part, dcnt, &next, logits), fail);
    }
    if (ctx->prof_on) armt_ctx_prof_collect(ctx);
    if (result) {
        result->n_tokens = produced;
        result->decode_seconds = armt_now() - t1;
        result->stopped = stopped;
    }
    goto done;

fail:
    armt_state_rollback(ctx, st, err); /* put the state back as it was before the call */
done:
    if (began) armt_call_end(&F);
    armt_buffer_release(ctx->rt, &kc, cache_bytes);
    armt_buffer_release(ctx->rt, &vc, cache_bytes);
    armt_buffer_release(ctx->rt, &part, part_bytes);
    armt_buffer_release(ctx->rt, &dcnt, dcnt_bytes);
    armt_buffer_release(ctx->rt, &tokb, sizeof next);
    free(seq);
    free(logits);
    free(work);
    return st;
}

/* ======================================================================================================= */
/* The sampler for armt_generate_batch (sample.h)                                                          */
/* ======================================================================================================= */

uint64_t armt_sample_rng_init(uint64_t seed) { return seed ^ 0x5DEECE66DULL; /* (as armt_generate) */ }

size_t armt_sample_work_bytes(int V) { return (size_t)V * sizeof(cand); }

int32_t armt_sample_token(const float *logits, int V, const armt_generate_params *p, uint64_t *rng,
                          void *work) {
    return sample(logits, V, p, rng, work);
}
