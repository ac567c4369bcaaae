/*
 * run_generate.c - armt-run's generation mode: the prompt (text through the tokenizer, or ids), the stop
 * tokens, armt_generate with a token callback that prints each new token as it comes (as text once the
 * text is whole, or as ids), and the timing on stderr. See run.h.
 */
#include "config.h"

#include "run.h"
#include "common/util.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Reads a whole file ("-": stdin) with the library's reader; *text is malloc'ed and NUL-terminated (the
 * text may hold NULs: *len counts them). */
static int read_text_file(const char *path, char **text, size_t *len) {
    armt_err err;
    armt_err_init(&err);
    armt_status st = strcmp(path, "-") == 0 ? armt_read_stream(stdin, "-", NULL, 0, text, len, &err)
                                            : armt_read_file(path, NULL, 0, 0, text, len, &err);
    if (st != ARMT_OK) cli_error("%s", armt_err_msg(&err));
    armt_err_free(&err);
    return st == ARMT_OK ? 0 : -1;
}

/* Decodes ids into *buf (grown as needed). Returns the status of armt_tokenizer_decode. */
static armt_status decode_grow(armt_tokenizer *tok, const int32_t *ids, size_t n, int skip_special,
                               char **buf, size_t *cap, size_t *len) {
    for (;;) {
        size_t need = 0;
        armt_status st = armt_tokenizer_decode(tok, ids, n, skip_special, *buf, *cap, &need);
        if (st == ARMT_OK) {
            *len = need;
            return ARMT_OK;
        }
        if (st != ARMT_STATUS_INVALID_ARGUMENT || need <= *cap) return st;
        size_t grown_cap = need + 64;
        char *grown = realloc(*buf, grown_cap);
        if (!grown) return ARMT_STATUS_OUT_OF_HOST_MEMORY;
        *buf = grown;
        *cap = grown_cap;
    }
}

/* What the token callback needs: the output mode, the tokens so far, the stop ids. */
typedef struct gen_stream {
    armt_tokenizer *tok; /* NULL: print ids                                                      */
    int skip_special;
    int32_t *ids; /* the new tokens so far (capacity max_new)                            */
    size_t n;
    size_t win; /* text mode: first token not printed yet; ids[0..win) end on a whole
                 * character, so ids[win..n) decode on their own to the rest of the text */
    char *buf;
    size_t buf_cap;
    const int32_t *stops;
    size_t n_stops;
    int32_t stop_hit;   /* the stop id that ended generation, -1 if none                       */
    armt_status failed; /* a decode error (the callback then stops generation)                 */
} gen_stream;

static int ends_with_replacement(const char *s, size_t len) {
    return len >= 3 && (unsigned char)s[len - 3] == 0xEF && (unsigned char)s[len - 2] == 0xBF &&
           (unsigned char)s[len - 1] == 0xBD;
}

/* Text mode: prints the text of ids[win..upto) when it ends on a whole character, or when force is set
 * (end of generation: an incomplete character then shows as U+FFFD, as the tokenizer decodes it). */
static armt_status stream_flush(gen_stream *g, size_t upto, int force) {
    if (upto <= g->win) return ARMT_OK;
    size_t len = 0;
    armt_status st =
        decode_grow(g->tok, g->ids + g->win, upto - g->win, g->skip_special, &g->buf, &g->buf_cap, &len);
    if (st != ARMT_OK) return st;
    /* A character split across tokens decodes to a trailing U+FFFD until its last byte arrives: hold the
     * text back until then. (A real U+FFFD in the output is only delayed by one token.) */
    if (!force && ends_with_replacement(g->buf, len)) return ARMT_OK;
    fwrite(g->buf, 1, len, stdout);
    g->win = upto;
    return ARMT_OK;
}

static int on_token(int32_t token, void *user_data) {
    gen_stream *g = user_data;
    g->ids[g->n++] = token;
    if (!g->tok) {
        printf("%s%" PRId32, g->n > 1 ? " " : "", token);
    } else {
        armt_status st = stream_flush(g, g->n, 0);
        if (st == ARMT_STATUS_TOKEN_OUT_OF_RANGE) {
            /* the model's vocabulary is larger than the tokenizer's: print the text before it, then [id] */
            st = stream_flush(g, g->n - 1, 1);
            if (st == ARMT_OK) {
                printf("[%" PRId32 "]", token);
                g->win = g->n;
            }
        }
        if (st != ARMT_OK) {
            g->failed = st;
            return 1;
        }
    }
    fflush(stdout);
    for (size_t i = 0; i < g->n_stops; i++)
        if (token == g->stops[i]) {
            g->stop_hit = token;
            return 1;
        }
    return 0;
}

/* The id of a --stop text: a token's text (armt_tokenizer_token_id), else text that encodes to one token. */
static int resolve_stop_text(armt_tokenizer *tok, const char *text, int32_t *id) {
    int32_t found = armt_tokenizer_token_id(tok, text);
    if (found >= 0) {
        *id = found;
        return 0;
    }
    int32_t ids[2];
    size_t n = 0;
    armt_status st = armt_tokenizer_encode(tok, text, strlen(text), 0, 1, ids, 2, &n);
    if (st == ARMT_OK && n == 1) {
        *id = ids[0];
        return 0;
    }
    if (st == ARMT_OK || st == ARMT_STATUS_INVALID_ARGUMENT)
        cli_error("--stop '%s': not one token of the tokenizer (it encodes to %zu tokens); use --stop-id N",
                  text, n);
    else
        cli_report_status("--stop: encoding the text", st, armt_tokenizer_last_error(tok));
    return -1;
}

/* The prompt: text through the tokenizer, or ids from a file or random. *ids is malloc'ed. */
static int read_prompt(const run_opts *o, armt_tokenizer *tok, int vocab, int32_t **ids, size_t *n) {
    *ids = NULL;
    *n = 0;
    if (o->prompt_text || o->prompt_file) {
        char *owned = NULL;
        const char *text = o->prompt_text;
        size_t len = text ? strlen(text) : 0;
        if (o->prompt_file) {
            if (read_text_file(o->prompt_file, &owned, &len) != 0) return -1;
            text = owned;
        }
        int add_bos = o->bos != 0;
        size_t need = 0;
        armt_status st = armt_tokenizer_encode(tok, text, len, add_bos, 1, NULL, 0, &need);
        if (st == ARMT_STATUS_INVALID_ARGUMENT && need > 0) {
            *ids = malloc(need * sizeof **ids);
            if (!*ids) {
                free(owned);
                cli_error("out of host memory for %zu prompt tokens", need);
                return -1;
            }
            st = armt_tokenizer_encode(tok, text, len, add_bos, 1, *ids, need, n);
        } else if (st == ARMT_OK) {
            *n = need; /* nothing to hold: an empty text without BOS */
        }
        free(owned);
        if (st != ARMT_OK) {
            cli_report_status("encoding the prompt", st, armt_tokenizer_last_error(tok));
            free(*ids);
            *ids = NULL;
            return -1;
        }
        if (*n == 0) {
            cli_error("the prompt is empty (no tokens; the tokenizer defines no BOS or --no-bos was given)");
            return -1;
        }
        for (size_t i = 0; i < *n; i++)
            if ((*ids)[i] >= vocab) {
                cli_error("prompt token %zu has id %" PRId32 ", outside the model's vocabulary [0, %d): the "
                          "tokenizer does not belong to this model",
                          i, (*ids)[i], vocab);
                free(*ids);
                *ids = NULL;
                return -1;
            }
        return 0;
    }

    /* ids, with the BOS prepended on request (--bos: the ids the tokenizer's add_bos produces) */
    int32_t bos[8];
    size_t n_bos = 0;
    if (o->bos == 1) {
        armt_status st = armt_tokenizer_encode(tok, "", 0, 1, 0, bos, sizeof bos / sizeof bos[0], &n_bos);
        if (st != ARMT_OK) {
            cli_report_status("--bos: finding the BOS token", st, armt_tokenizer_last_error(tok));
            return -1;
        }
        if (n_bos == 0) {
            cli_error("--bos: the tokenizer defines no BOS token");
            return -1;
        }
    }
    int32_t *v = NULL;
    size_t count = 0;
    if (o->ids_path) {
        if (cli_read_ids_file(o->ids_path, vocab, &v, &count) != 0) return -1;
    } else {
        count = (size_t)o->random_ids;
        v = malloc(count * sizeof *v);
        if (!v) {
            cli_error("out of host memory for %zu ids", count);
            return -1;
        }
        cli_random_ids(o->common.seed, vocab, v, count);
    }
    if (n_bos > 0) {
        int32_t *all = malloc((count + n_bos) * sizeof *all);
        if (!all) {
            free(v);
            cli_error("out of host memory for %zu ids", count + n_bos);
            return -1;
        }
        memcpy(all, bos, n_bos * sizeof *all);
        memcpy(all + n_bos, v, count * sizeof *all);
        free(v);
        v = all;
        count += n_bos;
        for (size_t i = 0; i < n_bos; i++)
            if (bos[i] >= vocab) {
                cli_error("--bos: the BOS id %" PRId32 " is outside the model's vocabulary [0, %d)", bos[i],
                          vocab);
                free(v);
                return -1;
            }
    }
    *ids = v;
    *n = count;
    return 0;
}

static const char *stop_reason(const armt_generate_result *r, const gen_stream *g, char *buf, size_t len) {
    if (g->stop_hit >= 0)
        snprintf(buf, len, "stop token %" PRId32, g->stop_hit);
    else if (r->stopped == 1)
        snprintf(buf, len, "stop token");
    else
        snprintf(buf, len, "--max-new reached");
    return buf;
}

int run_generate(const run_opts *o, armt_ctx *ctx, armt_tokenizer *tok) {
    armt_model *model = armt_ctx_model(ctx);
    const armt_config *cfg = armt_model_config(model);
    int32_t *prompt = NULL, stops[CLI_MAX_STOPS];
    size_t n = 0, n_stops = 0;
    gen_stream g;
    memset(&g, 0, sizeof g);
    g.stop_hit = -1;
    int rc = -1;
    armt_status st;

    /* stops, checked against the model's vocabulary */
    for (size_t i = 0; i < o->n_stop_ids; i++)
        stops[n_stops++] = o->stop_ids[i];
    for (size_t i = 0; i < o->n_stop_texts; i++)
        if (resolve_stop_text(tok, o->stop_texts[i], &stops[n_stops++]) != 0) goto done;
    for (size_t i = 0; i < n_stops; i++)
        if (stops[i] >= cfg->vocab_size) {
            cli_error("stop id %" PRId32 " is outside the model's vocabulary [0, %d)", stops[i],
                      cfg->vocab_size);
            goto done;
        }

    if (read_prompt(o, tok, cfg->vocab_size, &prompt, &n) != 0) goto done;

    if (o->load_memory) {
        if (cli_memory_file(ctx, o->load_memory, 0) != 0) goto done;
    }
    if (o->verbosity > CLI_QUIET && o->temperature <= 0.0 && o->sampling_given)
        cli_error("note: --top-k/--top-p have no effect with greedy decoding (give --temperature T > 0)");

    g.tok = o->print_ids ? NULL : tok;
    g.skip_special = o->skip_special;
    g.stops = stops;
    g.n_stops = n_stops;
    g.ids = malloc(((size_t)o->max_new + 1) * sizeof *g.ids);
    if (!g.ids) {
        cli_error("out of host memory for %d tokens", o->max_new);
        goto done;
    }

    armt_generate_params gp = armt_generate_default_params();
    gp.schedule = o->schedule;
    gp.max_new_tokens = o->max_new;
    gp.stop_id = -1; /* every stop id is checked by the callback, so several can be given */
    gp.temperature = (float)o->temperature;
    gp.top_k = o->top_k;
    gp.top_p = (float)o->top_p;
    gp.seed = o->sample_seed;
    gp.on_token = on_token;
    gp.user_data = &g;
    gp.progress = run_cancel_progress; /* Ctrl-C */
    armt_generate_result res;
    memset(&res, 0, sizeof res);
    st = armt_generate(ctx, prompt, n, &gp, NULL, 0, &res);
    /* whatever came before an error is on stdout already: end it (and the held-back text) properly */
    if (g.tok && g.failed == ARMT_OK) {
        armt_status fs = stream_flush(&g, g.n, 1);
        if (fs != ARMT_OK && g.failed == ARMT_OK) g.failed = fs;
    }
    if (g.n > 0 || o->max_new > 0) putchar('\n');
    fflush(stdout);
    if (st != ARMT_OK) {
        run_report_status("generation", st, armt_ctx_last_error(ctx));
        goto done;
    }
    if (g.failed != ARMT_OK) {
        cli_report_status("decoding the new tokens", g.failed, armt_tokenizer_last_error(tok));
        goto done;
    }
    if (ferror(stdout)) {
        cli_error("writing to stdout failed");
        goto done;
    }

    if (o->verbosity > CLI_QUIET) {
        size_t earlier = res.prompt_tokens - res.tail_tokens;
        uint64_t L = (uint64_t)cfg->segment_size;
        char why[64];
        if (earlier == 0)
            fprintf(stderr, "prompt:   %zu tokens, all in the generation segment (segment size %d)\n",
                    res.prompt_tokens, cfg->segment_size);
        else
            fprintf(stderr,
                    "prompt:   %zu tokens: %zu in %" PRIu64 " earlier segment%s (%s schedule) + %zu in the "
                    "generation segment\n",
                    res.prompt_tokens, earlier, earlier / L, earlier / L == 1 ? "" : "s",
                    armt_schedule_name(o->schedule), res.tail_tokens);
        fprintf(stderr, "prefill:  %.4f s (%.1f tokens/s)\n", res.prefill_seconds,
                res.prefill_seconds > 0 ? (double)res.prompt_tokens / res.prefill_seconds : 0.0);
        if (res.n_tokens > 1)
            fprintf(stderr, "decode:   %zu tokens after the first in %.4f s (%.1f tokens/s)\n",
                    res.n_tokens - 1, res.decode_seconds,
                    res.decode_seconds > 0 ? (double)(res.n_tokens - 1) / res.decode_seconds : 0.0);
        else
            fprintf(stderr, "decode:   no tokens after the first (nothing to time)\n");
        fprintf(stderr, "generated: %zu token%s (%s)\n", res.n_tokens, res.n_tokens == 1 ? "" : "s",
                stop_reason(&res, &g, why, sizeof why));
        if (o->profile)
            cli_print_profile(ctx, "decode", res.n_tokens > 1 ? (double)(res.n_tokens - 1) : 0.0, "token");
    }

    if (o->save_memory) {
        if (cli_memory_file(ctx, o->save_memory, 1) != 0) goto done;
        if (o->verbosity > CLI_QUIET) fprintf(stderr, "saved:    memory state to %s\n", o->save_memory);
    }
    rc = 0;
done:
    free(prompt);
    free(g.ids);
    free(g.buf);
    return rc;
}
