/*
 * json_read.c - typed readers of JSON object fields for the configuration parsers, with messages that name
 * the field. See json_read.h.
 */
#include "config.h"

#include "io/json_read.h"

#include <limits.h>
#include <string.h>

/* ===================================================================================================== */
/* JSON field readers                                                                                    */
/* ===================================================================================================== */

/* Each reader looks up key in obj. Absent (or null) fields: error "missing" when required, else *present = 0
 * and *out untouched. where: a prefix for messages ("" or "rope_scaling."). */

/* For messages: "must be an integer, not a string". */
const char *armt_json_type_name(const json_t *v) {
    switch (json_typeof(v)) {
    case JSON_OBJECT: return "an object";
    case JSON_ARRAY: return "a list";
    case JSON_STRING: return "a string";
    case JSON_INTEGER: return "an integer";
    case JSON_REAL: return "a real number";
    case JSON_TRUE:
    case JSON_FALSE: return "a boolean";
    case JSON_NULL: return "null";
    }
    return "?";
}

/* Looks the field up; returns NULL (and ARMT_OK in *st) when absent and optional. */
json_t *armt_json_field(json_t *obj, const char *where, const char *key, int required, armt_status *st,
                        armt_err *err) {
    json_t *v = json_object_get(obj, key);
    *st = ARMT_OK;
    if (v && !json_is_null(v)) return v;
    if (required) *st = armt_err_set(err, ARMT_STATUS_BAD_CONFIG, "config: missing field '%s%s'", where, key);
    return NULL;
}

/* An integer that fits in int. Reals are refused even when integral (2.0): sizes in HF files are always
 * integers, and a real there usually means a wrong field. */
armt_status armt_json_get_int(json_t *obj, const char *where, const char *key, int required, int *out,
                              armt_err *err) {
    armt_status st;
    json_t *v = armt_json_field(obj, where, key, required, &st, err);
    if (!v) return st;
    ARMT_RETURN_IF(!json_is_integer(v), ARMT_STATUS_BAD_CONFIG,
                   "config: field '%s%s' must be an integer, not %s", where, key, armt_json_type_name(v));
    json_int_t i = json_integer_value(v);
    ARMT_RETURN_IF(i < INT_MIN || i > INT_MAX, ARMT_STATUS_BAD_CONFIG,
                   "config: field '%s%s' = %lld out of range", where, key, (long long)i);
    *out = (int)i;
    return ARMT_OK;
}

/* Integer or real: HF writes rope_theta as 500000.0 (4.x) or 500000 (5.x). */
armt_status armt_json_get_num(json_t *obj, const char *where, const char *key, int required, double *out,
                              armt_err *err) {
    armt_status st;
    json_t *v = armt_json_field(obj, where, key, required, &st, err);
    if (!v) return st;
    ARMT_RETURN_IF(!json_is_number(v), ARMT_STATUS_BAD_CONFIG,
                   "config: field '%s%s' must be a number, not %s", where, key, armt_json_type_name(v));
    *out = json_number_value(v);
    return ARMT_OK;
}

/* true/false, or the integers 0 and 1 (older configs write correction as 1). */
armt_status armt_json_get_bool(json_t *obj, const char *where, const char *key, int required, int *out,
                               armt_err *err) {
    armt_status st;
    json_t *v = armt_json_field(obj, where, key, required, &st, err);
    if (!v) return st;
    if (json_is_boolean(v)) {
        *out = json_is_true(v);
        return ARMT_OK;
    }
    ARMT_RETURN_IF(!json_is_integer(v) || (json_integer_value(v) != 0 && json_integer_value(v) != 1),
                   ARMT_STATUS_BAD_CONFIG, "config: field '%s%s' must be a boolean, not %s", where, key,
                   armt_json_type_name(v));
    *out = (int)json_integer_value(v);
    return ARMT_OK;
}

/* *out = NULL when absent. The string belongs to obj. */
armt_status armt_json_get_str(json_t *obj, const char *where, const char *key, int required, const char **out,
                              armt_err *err) {
    armt_status st;
    *out = NULL;
    json_t *v = armt_json_field(obj, where, key, required, &st, err);
    if (!v) return st;
    ARMT_RETURN_IF(!json_is_string(v), ARMT_STATUS_BAD_CONFIG,
                   "config: field '%s%s' must be a string, not %s", where, key, armt_json_type_name(v));
    *out = json_string_value(v);
    return ARMT_OK;
}

/* Parses text into an object; what names the document in messages. Duplicate keys are refused here too:
 * a config with two "hidden_size" entries is ambiguous, and Python's json keeps the last one silently. */
armt_status armt_json_parse_object(const char *text, size_t len, const char *what, json_t **out,
                                   armt_err *err) {
    json_error_t je;
    ARMT_RETURN_IF(!text, ARMT_STATUS_INVALID_ARGUMENT, "%s: NULL text", what);
    *out = json_loadb(text, len, JSON_REJECT_DUPLICATES, &je);
    ARMT_RETURN_IF(!*out, ARMT_STATUS_BAD_CONFIG, "%s: not valid JSON: %s (line %d, column %d)", what,
                   je.text, je.line, je.column);
    if (!json_is_object(*out)) {
        json_decref(*out);
        *out = NULL;
        return armt_err_set(err, ARMT_STATUS_BAD_CONFIG, "%s: not a JSON object", what);
    }
    return ARMT_OK;
}
