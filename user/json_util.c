// SPDX-License-Identifier: GPL-2.0-or-later
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "json_util.h"

int json__add(struct json_object *obj, const char *key, struct json_object *val)
{
	if (!val)
		return -1;
	if (json_object_object_add(obj, key, val)) {
		json_object_put(val);
		return -1;
	}
	return 0;
}

int json__push(struct json_object *arr, struct json_object *val)
{
	if (!val)
		return -1;
	if (json_object_array_add(arr, val)) {
		json_object_put(val);
		return -1;
	}
	return 0;
}

int json__add_null(struct json_object *obj, const char *key)
{
	return json_object_object_add(obj, key, NULL) ? -1 : 0;
}

int json__add_str_or_null(struct json_object *obj, const char *key, const char *s)
{
	return s ? json__add(obj, key, json_object_new_string(s)) : json__add_null(obj, key);
}

int json__add_u64(struct json_object *obj, const char *key, uint64_t v)
{
	return json__add(obj, key, json_object_new_uint64(v));
}

int json__add_float(struct json_object *obj, const char *key, double d)
{
	char buf[48];

	if (!isfinite(d))
		return json__add_null(obj, key);
	snprintf(buf, sizeof(buf), "%.15g", d);
	if (strtod(buf, NULL) != d)
		snprintf(buf, sizeof(buf), "%.17g", d);
	if (!strpbrk(buf, ".eE"))
		strcat(buf, ".0");
	return json__add(obj, key, json_object_new_double_s(d, buf));
}

struct json_object *json__frame(const struct report_frame *f)
{
	struct json_object *o = json_object_new_object();
	char addr[2 + 16 + 1];

	if (!o)
		return NULL;
	/* A string, not a number: JSON readers lose precision above 2^53 and
	 * people grep for addresses in hex. */
	snprintf(addr, sizeof(addr), "0x%" PRIx64, f->address);
	if (json__add(o, "address", json_object_new_string(addr)) ||
	    json__add(o, "module", json_object_new_string(f->module ? f->module : "[unknown]")) ||
	    json__add_str_or_null(o, "function", f->function) ||
	    /* An offset is only meaningful relative to a known symbol. */
	    (f->function && f->offset >= 0 ? json__add(o, "offset", json_object_new_int64(f->offset))
					   : json__add_null(o, "offset")) ||
	    json__add_str_or_null(o, "file", f->file) ||
	    (f->line > 0 ? json__add(o, "line", json_object_new_int(f->line))
			 : json__add_null(o, "line")) ||
	    /* only on inlined frames: the others keep their old shape */
	    (f->inlined && json__add(o, "inlined", json_object_new_boolean(1)))) {
		json_object_put(o);
		return NULL;
	}
	return o;
}

struct json_object *json__stack(const struct report_frame *frames, size_t n)
{
	struct json_object *arr = json_object_new_array();

	for (size_t i = 0; arr && frames && i < n; i++) {
		if (json__push(arr, json__frame(&frames[i]))) {
			json_object_put(arr);
			return NULL;
		}
	}
	return arr;
}
