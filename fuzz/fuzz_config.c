/*
 * fuzz_config.c - libFuzzer harness for the configuration parsers (lib/io/armt_config.c). See fuzz/README.md.
 *
 * The input is fed, as text of exactly its length (not NUL-terminated), to all three JSON readers:
 *   armt_config_from_hf_json      (then armt_config_check, then the input applied again as an ARMT file)
 *   armt_config_apply_armt_json   (on top of the "tiny" preset; a failure must leave the config unchanged)
 *   armt_config_from_json_full    (then armt_config_check)
 * Every config that parses is written back with armt_config_to_json and read again with
 * armt_config_from_json_full: the round trip must succeed and give the same JSON text (a finite config
 * round-trips exactly; a non-finite one has no JSON form and to_json returns NULL).
 */
#include "config.h"

#include "io/armt_config.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(cond)                                                                                      \
    do {                                                                                                 \
        if (!(cond)) {                                                                                   \
            fprintf(stderr, "fuzz_config: invariant violated: %s (%s:%d)\n", #cond, __FILE__, __LINE__); \
            abort();                                                                                     \
        }                                                                                                \
    } while (0)

static void log_cb(armt_log_level level, const char *message, void *user) {
    (void)level;
    size_t *sink = user;
    *sink += strlen(message);
}
static size_t log_sink;

int LLVMFuzzerInitialize(int *argc, char ***argv) {
    (void)argc;
    (void)argv;
    armt_log_set(log_cb, &log_sink);
    return 0;
}

/* to_json -> from_json_full -> to_json must be the identity on the text. */
static void roundtrip(const armt_config *cfg) {
    (void)armt_config_d_key(cfg); /* public, takes any config: must not overflow on unvalidated ones */
    char *j1 = armt_config_to_json(cfg);
    if (!j1) return; /* not finite */
    armt_err err;
    armt_err_init(&err);
    armt_config back;
    memset(&back, 0xa5, sizeof back);
    armt_status st = armt_config_from_json_full(j1, strlen(j1), &back, &err);
    if (st != ARMT_OK) fprintf(stderr, "round trip of %s failed: %s\n", j1, armt_err_msg(&err));
    CHECK(st == ARMT_OK);
    char *j2 = armt_config_to_json(&back);
    CHECK(j2 != NULL);
    if (strcmp(j1, j2) != 0) fprintf(stderr, "round trip differs:\n  %s\n  %s\n", j1, j2);
    CHECK(strcmp(j1, j2) == 0);
    /* check gives the same verdict on both */
    armt_status c1 = armt_config_check(cfg, &err), c2 = armt_config_check(&back, &err);
    CHECK(c1 == c2);
    char why[64];
    CHECK(armt_config_validate(cfg, why, sizeof why) == c1);
    free(j2);
    free(j1);
    armt_err_free(&err);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    /* A private copy of exactly size bytes: ASan then catches any read past the end (the parsers take a
     * length and must not rely on a terminator). */
    char *text = malloc(size ? size : 1);
    if (!text) return 0;
    if (size) memcpy(text, data, size);

    armt_err err;
    armt_err_init(&err);

    /* HF config.json */
    armt_config cfg;
    memset(&cfg, 0x5a, sizeof cfg);
    armt_config before = cfg;
    armt_status st = armt_config_from_hf_json(text, size, &cfg, &err);
    if (st == ARMT_OK) {
        (void)armt_config_check(&cfg, &err);
        roundtrip(&cfg);
        armt_config c2 = cfg;
        if (armt_config_apply_armt_json(text, size, &c2, &err) == ARMT_OK) {
            (void)armt_config_check(&c2, &err);
            roundtrip(&c2);
        }
    } else {
        CHECK(memcmp(&cfg, &before, sizeof cfg) == 0); /* untouched on error */
        CHECK(err.status == st && armt_err_msg(&err)[0] != '\0');
    }

    /* armt_config.json on top of a preset */
    armt_config tiny;
    CHECK(armt_config_preset("tiny", &tiny) == ARMT_OK);
    armt_config t2 = tiny;
    st = armt_config_apply_armt_json(text, size, &t2, &err);
    if (st == ARMT_OK) {
        (void)armt_config_check(&t2, &err);
        roundtrip(&t2);
    } else {
        CHECK(memcmp(&t2, &tiny, sizeof t2) == 0);
    }

    /* full form */
    armt_config full;
    memset(&full, 0x5a, sizeof full);
    before = full;
    st = armt_config_from_json_full(text, size, &full, &err);
    if (st == ARMT_OK) {
        (void)armt_config_check(&full, &err);
        roundtrip(&full);
    } else {
        CHECK(memcmp(&full, &before, sizeof full) == 0);
    }

    armt_err_free(&err);
    free(text);
    return 0;
}
