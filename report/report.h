/* report.h - rendering of the weekly compliance report (SPEC.md section 7) from the plain data of
 * common/report_model.h: one self-contained HTML file (inline CSS and SVG, no script, no external
 * asset; prints to PDF), Markdown for GitLab/GitHub, JSON carrying every number the other formats
 * show, and CSV of the week's findings (RFC 4180). Every string from the database is escaped for
 * the format. The definitions the numbers follow are in common/report_model.h and in the
 * report's own footer. */
#ifndef EGRESSSCAN_REPORT_H
#define EGRESSSCAN_REPORT_H

#include <stdio.h>

#include "common/err.h"
#include "common/report_model.h"

enum report_format { REPORT_HTML, REPORT_MD, REPORT_JSON, REPORT_CSV };

/* "html", "md" (or "markdown"), "json", "csv". -1 for anything else. */
int report_format_parse(const char *name, enum report_format *out);

/* Writes r in format f to out. -1 with err when writing failed (ferror) or memory ran out. */
int report_render(const struct report *r, enum report_format f, FILE *out, struct err *err);

int report_render_html(const struct report *r, FILE *out, struct err *err);
int report_render_md(const struct report *r, FILE *out, struct err *err);
int report_render_json(const struct report *r, FILE *out, struct err *err);
int report_render_csv(const struct report *r, FILE *out, struct err *err);

#endif
