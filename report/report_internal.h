/* report_internal.h - what the renderers of report/ share: the wording (labels of kinds, reasons
 * and coverage statuses, the definitions, the sentences for a week without scans) so that html,
 * md and json say the same thing, the display limits, and UTF-8 checking for escapers. */
#ifndef EGRESSSCAN_REPORT_INTERNAL_H
#define EGRESSSCAN_REPORT_INTERNAL_H

#include <stddef.h>

#include "common/report_model.h"

/* Rows the html and md reports list before pointing to json/csv for the rest. */
#define REPORT_LIST_MAX 50
#define REPORT_ACCOUNTS_MAX 50
#define REPORT_CHART_OUS_MAX 25

/* What the report can say about its week. */
enum report_state {
    REPORT_STATE_OK,           /* a finalized scan in the week */
    REPORT_STATE_NO_SCAN_WEEK, /* scans exist, none finalized in this week */
    REPORT_STATE_NO_SCAN,      /* no finalized scan at all */
    REPORT_STATE_NO_SCHEMA     /* the database was never migrated */
};

enum report_state report_state_of(const struct report *r);
/* "ok", "no_scan_in_week", "no_scan", "no_schema" (JSON). */
const char *report_state_key(enum report_state s);
/* The sentence that says why there are no numbers (NULL for REPORT_STATE_OK). Plain text. */
const char *report_state_message(const struct report *r, char *buf, size_t cap);

/* "Non-compliant cluster", ...; the kind itself when unknown. */
const char *report_kind_label(const char *kind);
/* "predates the SCPs", ...; the reason itself when unknown; "" for NULL. */
const char *report_reason_label(const char *reason);
/* A ", "-separated list of reasons as labels joined with "; ". */
void report_reasons_text(const char *reasons, char *out, size_t cap);
/* "1 cluster not verified (its account or region could not be scanned): not in these numbers."
 * (n clusters: "their"). The sentence every format uses for clusters counted apart. */
void report_unverified_text(long n, char *out, size_t cap);
/* "2 of them carried over: not raised again by the week's last scan, which could not judge them
 * (...)". The sentence every format uses for open findings the last scan did not confirm. */
void report_carried_text(long n, char *out, size_t cap);
/* "1 of the resolved findings was not fixed: its target left the fleet." (n: "were", "their"). */
void report_left_text(long n, char *out, size_t cap);
/* How a finding was resolved, from finding.resolved_reason: "fixed (no longer raised)", "cluster
 * deleted", "not fixed: the account left the organization", ...; "fixed" for NULL. */
const char *report_resolution_label(const char *resolved_reason);
/* "fleet" / "targeted (--accounts or --ou)"; the scope itself when unknown. */
const char *report_scope_label(const char *scope);
/* "read", "not enabled (none apply)", "not read (by design)", "could not be read"; "not
 * recorded" for NULL or "". */
const char *report_scps_state_label(const char *scps_state);
/* "AssumeRole denied", ...; the status itself when unknown. */
const char *report_status_label(const char *status);
/* "AWS_MANAGED", ..., "not reported (AWS_MANAGED)", "other value". */
const char *report_mode_label(enum report_mode m);
/* Okabe-Ito colours, distinguishable with colour-blindness; charts also carry text. */
const char *report_mode_color(enum report_mode m);

/* "19 January 2026". */
void report_date_long(long day, char *out, size_t cap);
/* "Mon 19 Jan". */
void report_date_short(long day, char *out, size_t cap);
/* "19–25 January 2026", "29 December 2025 – 4 January 2026" (UTF-8 en dash). */
void report_range_text(long first, long last, char *out, size_t cap);
/* "2026-01-25 10:00 UTC" from an ISO 8601 stamp (copied as is when it is not one). */
void report_stamp_text(const char *stamp, char *out, size_t cap);

/* The definitions every format states (NULL-terminated). */
extern const char *const report_definitions[];

/* Length of the valid UTF-8 sequence at s (1..4), 0 when s does not start one. */
size_t report_utf8_len(const unsigned char *s);

#endif
