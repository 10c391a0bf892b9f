/* report_query.h - what the weekly compliance report reads from PostgreSQL: the week's scans, the
 * daily_compliance rows of the week and the four before it, and the fleet at the week's end: its
 * clusters (verified or not), its open findings and the findings the week is about, its targets
 * not scanned ok. Everything in one read-only snapshot. */
#ifndef EGRESSSCAN_REPORT_QUERY_H
#define EGRESSSCAN_REPORT_QUERY_H

#include "common/err.h"
#include "common/report_model.h"

struct db;

/* Fills r (prepared by report_init for the week and the day "today") from the database and
 * finishes it (report_finish). A database without the egressscan schema is not an error: it
 * gives r->schema_missing = 1 and an otherwise empty report. A schema with pending migrations
 * is: -1 with code "SchemaOutdated". Other failures: -1 with the SQLSTATE. The strings and
 * arrays of r are owned by r (report_cleanup). */
int db_report_load(struct db *db, struct report *r, struct err *err);

#endif
