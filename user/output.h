/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Report writers (one per format, chosen once) and atomic file output. */
#ifndef STRAY_OUTPUT_H
#define STRAY_OUTPUT_H

#include <stdio.h>
#include "report.h"

/* Write the JSON report (schema in README.md). Returns 0 or -errno. */
int report__write_json(const struct report *r, FILE *out);

/* Write the text report for people. top > 0 limits the suspects listed
 * (the JSON report is never shortened). Returns 0 or -errno. */
int report__write_text(const struct report *r, FILE *out, int top);

typedef int (*output_fill_fn)(FILE *out, void *ctx);

/*
 * Create or replace path atomically: fill() writes into a temporary file in
 * the same directory, which is flushed, fsync()ed and renamed over path.
 * On any failure the temporary file is removed and path is left untouched.
 * Returns 0 or -errno.
 */
int output__write_atomic(const char *path, output_fill_fn fill, void *ctx);

#endif /* STRAY_OUTPUT_H */
