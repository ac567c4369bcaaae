/*
 * json_read.h - typed readers of JSON object fields (jansson), shared by the configuration parsers.
 *
 * Each reader looks up key in obj. Absent (or null) fields: error "missing" when required, else *out is
 * left untouched and ARMT_OK is returned. where: a prefix for messages ("" or "rope_scaling."). Errors are
 * ARMT_STATUS_BAD_CONFIG naming the field.
 */
#ifndef ARMT_JSON_READ_H
#define ARMT_JSON_READ_H

#include "common/error.h"

#include <jansson.h>
#include <stddef.h>

/* "an object", "a string", ... for messages. */
const char *armt_json_type_name(const json_t *v);
/* The value, or NULL when absent or null (*st: ARMT_OK, or the "missing" error when required). */
json_t *armt_json_field(json_t *obj, const char *where, const char *key, int required, armt_status *st,
                        armt_err *err);
/* An integer that fits in int (reals refused, even integral ones). */
armt_status armt_json_get_int(json_t *obj, const char *where, const char *key, int required, int *out,
                              armt_err *err);
/* Integer or real. */
armt_status armt_json_get_num(json_t *obj, const char *where, const char *key, int required, double *out,
                              armt_err *err);
/* true/false, or the integers 0 and 1. */
armt_status armt_json_get_bool(json_t *obj, const char *where, const char *key, int required, int *out,
                               armt_err *err);
/* A string owned by obj; *out = NULL when absent. */
armt_status armt_json_get_str(json_t *obj, const char *where, const char *key, int required, const char **out,
                              armt_err *err);
/* Parses text into an object (duplicate keys refused); what names the document in messages. */
armt_status armt_json_parse_object(const char *text, size_t len, const char *what, json_t **out,
                                   armt_err *err);

#endif
