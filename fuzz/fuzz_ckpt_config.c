/*
 * fuzz_ckpt_config.c - libFuzzer harness for the layered ("nested") ARMT configuration of a checkpoint
 * (lib/io/checkpoint.c: armt_ckpt_open's config resolution over lib/io/armt_config.c). See fuzz/README.md.
 *
 * A checkpoint's configuration comes from up to four JSON texts, each overriding the previous one:
 * config.json, armt_config.json, adapter_config.json, and the full armt_config nested as a JSON string in
 * the __metadata__ of model.safetensors. The input is cut at NUL bytes into those four parts:
 *
 *     METADATA-ARMT-CONFIG '\0' CONFIG.JSON '\0' ARMT_CONFIG.JSON '\0' ADAPTER_CONFIG.JSON
 *
 * (a missing part: that file is absent; an empty METADATA part: no "armt_config" entry). They are written
 * into a private mkdtemp directory next to a model.safetensors that holds one small tensor, and
 * armt_ckpt_open runs on the directory and on the .safetensors file. The weights never match, so a
 * success is rare; what matters is that every combination ends in a status with a message, *out NULL on
 * failure, no leak, no sanitizer report. The params of the open come from the input's last byte.
 */
#include "config.h"

#include "fuzz_util.h"
#include "io/checkpoint.h"

#include <jansson.h>
#include <sys/stat.h>

static char dir[4096];
static char paths[5][4200];
static const char *const names[5] = {"model.safetensors", "config.json", "armt_config.json",
                                     "adapter_config.json", "memory.safetensors"};

static void cleanup(void) {
    for (int i = 0; i < 5; i++)
        unlink(paths[i]);
    if (dir[0]) rmdir(dir);
}

int LLVMFuzzerInitialize(int *argc, char ***argv) {
    (void)argc;
    (void)argv;
    armt_log_set(fuzz_log_cb, NULL);
    const char *t = getenv("TMPDIR");
    snprintf(dir, sizeof dir, "%s/armt-fuzz-ckpt-XXXXXX", t && *t ? t : "/tmp");
    if (!mkdtemp(dir)) {
        perror("mkdtemp");
        abort();
    }
    for (int i = 0; i < 5; i++)
        snprintf(paths[i], sizeof paths[i], "%s/%s", dir, names[i]);
    atexit(cleanup);
    return 0;
}

static int write_file(const char *path, const void *p, size_t n) {
    FILE *f = fopen(path, "wb");
    if (!f) return -1;
    int ok = fwrite(p, 1, n, f) == n;
    return (fclose(f) == 0 && ok) ? 0 : -1;
}

/* model.safetensors: one F32 tensor "model.norm.weight" of 4 elements, and the metadata entry. */
static int write_safetensors(const char *meta, size_t meta_len) {
    json_t *h = json_object();
    json_t *t = json_pack("{s:s, s:[i], s:[i,i]}", "dtype", "F32", "shape", 4, "data_offsets", 0, 16);
    json_object_set_new(h, "model.norm.weight", t);
    if (meta) {
        json_t *m = json_object();
        json_object_set_new(m, "format", json_string("pt"));
        json_t *s = json_stringn_nocheck(meta, meta_len);
        if (s) json_object_set_new(m, "armt_config", s);
        json_object_set_new(h, "__metadata__", m);
    }
    char *text = json_dumps(h, JSON_COMPACT);
    json_decref(h);
    if (!text) return -1;
    size_t n = strlen(text);
    size_t pad = (8 - n % 8) % 8;
    size_t total = 8 + n + pad + 16;
    unsigned char *buf = calloc(1, total);
    if (!buf) {
        free(text);
        return -1;
    }
    uint64_t hl = n + pad;
    for (int i = 0; i < 8; i++)
        buf[i] = (unsigned char)(hl >> (8 * i));
    memcpy(buf + 8, text, n);
    memset(buf + 8 + n, ' ', pad);
    free(text);
    int rc = write_file(paths[0], buf, total);
    free(buf);
    return rc;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    const char *part[4] = {NULL, NULL, NULL, NULL};
    size_t len[4] = {0, 0, 0, 0};
    char *copy = malloc(size + 1);
    if (!copy) return 0;
    memcpy(copy, data, size);
    copy[size] = '\0';
    size_t start = 0;
    int np = 0;
    for (size_t i = 0; i <= size && np < 4; i++) {
        if (i == size || copy[i] == '\0') {
            part[np] = copy + start;
            len[np] = i - start;
            np++;
            start = i + 1;
            if (i == size) break;
        }
    }
    for (int i = 1; i < 5; i++)
        unlink(paths[i]);
    if (write_safetensors(len[0] ? part[0] : NULL, len[0]) != 0) goto out;
    for (int i = 1; i < 4; i++)
        if (part[i] && write_file(paths[i], part[i], len[i]) != 0) goto out;

    armt_model_params p = armt_model_default_params();
    uint8_t last = size ? data[size - 1] : 0;
    if (last & 1) p.segment_size = 1 + (last >> 4);
    if (last & 2) p.num_mem_tokens = 1 + ((last >> 2) & 3);
    if (last & 4) p.correction = (last >> 3) & 1;
    for (int which = 0; which < 2; which++) {
        armt_err err;
        armt_err_init(&err);
        armt_ckpt *c = (armt_ckpt *)0x1;
        armt_status st = armt_ckpt_open(which ? paths[0] : dir, (last & 7) ? &p : NULL, &c, &err);
        if (st == ARMT_OK) {
            FUZZ_CHECK(c != NULL);
            FUZZ_CHECK(armt_config_validate(armt_ckpt_config(c), NULL, 0) == ARMT_OK);
            armt_ckpt_close(c);
        } else {
            FUZZ_CHECK(st < 0 && c == NULL && err.status == st && armt_err_msg(&err)[0] != '\0');
        }
        armt_err_free(&err);
    }
out:
    free(copy);
    return 0;
}
