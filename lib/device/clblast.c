/*
 * clblast.c - CLBlast's process-wide state (see clblast.h): the lock and the kernel parameters.
 */
#include "config.h"

#include "device/clblast.h"
#include "common/util.h"
#include "io/json_read.h"

#include <clblast_c.h>
#include <dirent.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define MAX_TUNING_FILE_BYTES (64u << 20) /* a tuner's JSON lists every configuration it tried */
#define MAX_PARAMS            32

static pthread_mutex_t clblast_mutex = PTHREAD_MUTEX_INITIALIZER;

void armt_clblast_lock(void) { pthread_mutex_lock(&clblast_mutex); }
void armt_clblast_unlock(void) { pthread_mutex_unlock(&clblast_mutex); }

/* CLBlast's database name of a tuner's kernel_family ("xgemm_2" -> "Xgemm"); NULL when not known. */
static const char *database_kernel(const char *family) {
    static const struct {
        const char *prefix, *kernel;
    } map[] = {{"xgemm_direct", "XgemmDirect"},
               {"xgemm", "Xgemm"},
               {"copy", "Copy"},
               {"padtranspose", "Padtranspose"},
               {"pad", "Pad"},
               {"transpose", "Transpose"},
               {"xgemv_fast_rot", "XgemvFastRot"},
               {"xgemv_fast", "XgemvFast"},
               {"xgemv", "Xgemv"},
               {"xaxpy", "Xaxpy"},
               {"xdot", "Xdot"},
               {"xger", "Xger"}};
    for (size_t i = 0; i < sizeof map / sizeof map[0]; i++)
        if (strncmp(family, map[i].prefix, strlen(map[i].prefix)) == 0) return map[i].kernel;
    return NULL;
}

/* Overrides one kernel's parameters: "NAME=VALUE ..." (PRECISION, which the tuners add, is left out). */
static armt_status apply(armt_runtime *rt, const char *kernel, const char *parameters, const char *from,
                         armt_err *err) {
    char *copy = strdup(parameters);
    ARMT_RETURN_IF(!copy, ARMT_STATUS_OUT_OF_HOST_MEMORY, "CLBlast tuning: out of host memory");
    const char *names[MAX_PARAMS];
    size_t values[MAX_PARAMS], n = 0;
    armt_status st = ARMT_OK;
    char *save = NULL;
    for (char *tok = strtok_r(copy, " \t", &save); tok && st == ARMT_OK; tok = strtok_r(NULL, " \t", &save)) {
        char *eq = strchr(tok, '='), *end = NULL;
        unsigned long long v = eq ? strtoull(eq + 1, &end, 10) : 0;
        if (!eq || eq == tok || !end || end == eq + 1 || *end)
            st = armt_err_set(err, ARMT_STATUS_BAD_FILE, "%s: CLBlast parameter '%s' is not NAME=VALUE", from,
                              tok);
        else if (strncmp(tok, "PRECISION=", 10) != 0) {
            if (n == MAX_PARAMS)
                st = armt_err_set(err, ARMT_STATUS_BAD_FILE, "%s: more than %d parameters for %s", from,
                                  MAX_PARAMS, kernel);
            else {
                *eq = '\0';
                names[n] = tok;
                values[n++] = (size_t)v;
            }
        }
    }
    if (st == ARMT_OK) {
        armt_clblast_lock();
        CLBlastStatusCode s =
            CLBlastOverrideParameters(rt->device, kernel, CLBlastPrecisionSingle, n, names, values);
        armt_clblast_unlock();
        if (s != CLBlastSuccess)
            st = armt_err_set(
                err, ARMT_STATUS_BAD_FILE,
                "%s: CLBlast refused the %zu parameters of %s (CLBlastOverrideParameters: %d; they "
                "must be exactly the kernel's tunables)",
                from, n, kernel, (int)s);
    }
    free(copy);
    return st;
}

/* The best result of one tuner file into *kernel, *params (owned by *doc), *ms. */
static armt_status read_tuner_json(const char *path, json_t **doc, const char **kernel, const char **params,
                                   double *ms, armt_err *err) {
    char *text = NULL;
    size_t len = 0;
    ARMT_TRY(armt_read_regular_file(path, "CLBlast tuning", MAX_TUNING_FILE_BYTES, &text, &len, err));
    armt_status st =
        len > MAX_TUNING_FILE_BYTES
            ? armt_err_set(err, ARMT_STATUS_BAD_FILE, "%s: larger than %u bytes", path, MAX_TUNING_FILE_BYTES)
            : armt_json_parse_object(text, len, path, doc, err);
    free(text);
    if (st == ARMT_STATUS_BAD_CONFIG) { /* the parser's status is for configs: this is a broken file */
        char *msg = strdup(armt_err_msg(err));
        st = armt_err_set(err, ARMT_STATUS_BAD_FILE, "%s", msg ? msg : path);
        free(msg);
    }
    ARMT_TRY(st);
    const char *family = NULL, *prec = NULL, *time = NULL;
    st = armt_json_get_str(*doc, path, "kernel_family", 1, &family, err);
    if (st == ARMT_OK) st = armt_json_get_str(*doc, path, "precision", 1, &prec, err);
    if (st == ARMT_OK) st = armt_json_get_str(*doc, path, "best_parameters", 1, params, err);
    if (st == ARMT_OK) st = armt_json_get_str(*doc, path, "best_time", 1, &time, err);
    if (st == ARMT_OK && strcmp(prec, "32") != 0)
        st = armt_err_set(err, ARMT_STATUS_BAD_FILE,
                          "%s: precision %s; libarmt calls CLBlast in single precision only (tune with "
                          "-precision 32)",
                          path, prec);
    if (st == ARMT_OK && !(*kernel = database_kernel(family)))
        st = armt_err_set(err, ARMT_STATUS_BAD_FILE, "%s: kernel_family '%s' is not a CLBlast tuner's", path,
                          family);
    if (st == ARMT_OK) {
        char *end = NULL;
        *ms = strtod(time, &end);
        if (end == time || *end || !(*ms >= 0))
            st = armt_err_set(err, ARMT_STATUS_BAD_FILE, "%s: best_time '%s' is not a time", path, time);
    }
    if (st != ARMT_OK) {
        json_decref(*doc);
        *doc = NULL;
    }
    return st;
}

typedef struct pick {
    const char *kernel;
    char *params, *path;
    double ms;
} pick;

static armt_status from_environment(armt_runtime *rt, const char *where, int *applied, armt_err *err) {
    struct stat sb;
    ARMT_RETURN_IF(stat(where, &sb) != 0, ARMT_STATUS_IO_ERROR, "$ARMT_CLBLAST_TUNING: %s: cannot open: %s",
                   where, strerror(errno));
    char **paths = NULL;
    size_t np = 0;
    armt_status st = ARMT_OK;
    if (S_ISDIR(sb.st_mode)) {
        DIR *d = opendir(where);
        ARMT_RETURN_IF(!d, ARMT_STATUS_IO_ERROR, "$ARMT_CLBLAST_TUNING: %s: cannot open: %s", where,
                       strerror(errno));
        for (struct dirent *e; st == ARMT_OK && (e = readdir(d));) {
            size_t l = strlen(e->d_name);
            if (l < 6 || strcmp(e->d_name + l - 5, ".json") != 0) continue;
            char *p = armt_path_join(where, e->d_name);
            char **grown = p ? realloc(paths, (np + 1) * sizeof *paths) : NULL;
            if (!grown) {
                free(p);
                st = armt_err_set(err, ARMT_STATUS_OUT_OF_HOST_MEMORY, "CLBlast tuning: out of host memory");
            } else {
                paths = grown;
                paths[np++] = p;
            }
        }
        closedir(d);
    } else {
        paths = malloc(sizeof *paths);
        if (paths && (paths[0] = strdup(where)))
            np = 1;
        else
            st = armt_err_set(err, ARMT_STATUS_OUT_OF_HOST_MEMORY, "CLBlast tuning: out of host memory");
    }
    /* the fastest file of each kernel */
    pick picks[16];
    size_t nk = 0;
    for (size_t i = 0; i < np && st == ARMT_OK; i++) {
        json_t *doc = NULL;
        const char *kernel = NULL, *params = NULL;
        double ms = 0;
        st = read_tuner_json(paths[i], &doc, &kernel, &params, &ms, err);
        if (st != ARMT_OK) break;
        size_t k = 0;
        while (k < nk && strcmp(picks[k].kernel, kernel) != 0)
            k++;
        if (k == nk && nk == sizeof picks / sizeof picks[0])
            st = armt_err_set(err, ARMT_STATUS_BAD_FILE, "%s: too many kernels", where);
        else if (k == nk || ms < picks[k].ms) {
            char *pc = strdup(params), *pp = strdup(paths[i]);
            if (!pc || !pp) {
                free(pc);
                free(pp);
                st = armt_err_set(err, ARMT_STATUS_OUT_OF_HOST_MEMORY, "CLBlast tuning: out of host memory");
            } else {
                if (k < nk) {
                    free(picks[k].params);
                    free(picks[k].path);
                } else {
                    nk++;
                }
                picks[k] = (pick){kernel, pc, pp, ms};
            }
        }
        json_decref(doc);
    }
    for (size_t k = 0; k < nk; k++) {
        if (st == ARMT_OK) st = apply(rt, picks[k].kernel, picks[k].params, picks[k].path, err);
        if (st == ARMT_OK) {
            armt_log(ARMT_LOG_INFO, "CLBlast tuning: %s from %s (%.3f ms)", picks[k].kernel, picks[k].path,
                     picks[k].ms);
            if (applied) ++*applied;
        }
        free(picks[k].params);
        free(picks[k].path);
    }
    for (size_t i = 0; i < np; i++)
        free(paths[i]);
    free(paths);
    return st;
}

armt_status armt_clblast_tune(armt_runtime *rt, int *applied, armt_err *err) {
    if (applied) *applied = 0;
    for (size_t i = 0; i < armt_clblast_table_len; i++) {
        const armt_clblast_entry *e = &armt_clblast_table[i];
        if (!strstr(rt->info.name, e->device)) continue;
        ARMT_TRY(apply(rt, e->kernel, e->parameters, e->source, err));
        armt_log(ARMT_LOG_INFO, "CLBlast tuning: %s for %s (%s)", e->kernel, e->device, e->source);
        if (applied) ++*applied;
    }
    const char *env = getenv("ARMT_CLBLAST_TUNING");
    if (env && *env) ARMT_TRY(from_environment(rt, env, applied, err));
    return ARMT_OK;
}
