/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * json-c helpers shared by the report writer and the alerts: chained adds
 * that own their value, nulls, and floats that always read back as floats.
 * Every function returns 0 or -1 (json-c's only error is out-of-memory).
 */
#ifndef STRAY_JSON_UTIL_H
#define STRAY_JSON_UTIL_H

#include <stdint.h>
#include <json-c/json.h>
#include "report.h"

/* Add val under key, releasing val when the insert fails (a NULL val is
 * a failed allocation), so callers chain with ||. */
int json__add(struct json_object *obj, const char *key, struct json_object *val);
/* Append val to arr, with the same ownership rule. */
int json__push(struct json_object *arr, struct json_object *val);
/* JSON null: json-c's null is a NULL value, which json__add takes for a failure. */
int json__add_null(struct json_object *obj, const char *key);
/* NULL means unknown and is written as null. */
int json__add_str_or_null(struct json_object *obj, const char *key, const char *s);
int json__add_u64(struct json_object *obj, const char *key, uint64_t v);
/*
 * A double in its shortest round-tripping form (0.1, not
 * 0.10000000000000001), always with a fraction or exponent so typed readers
 * see a float even for 60.0. JSON has no NaN or infinity: those are null.
 */
int json__add_float(struct json_object *obj, const char *key, double d);

/* One stack frame: {address "0x..", module, function|null, offset|null,
 * file|null, line|null}. NULL when json-c cannot allocate. */
struct json_object *json__frame(const struct report_frame *f);
/* An array of frames. */
struct json_object *json__stack(const struct report_frame *frames, size_t n);

#endif /* STRAY_JSON_UTIL_H */
