/* ocsf.h - a finding as an OCSF 1.3.0 Compliance Finding event (class_uid 2003, category
 * Findings), for `egressscan drift --format ocsf` (one JSON object per line). The schema it is
 * validated against is tests/data/ocsf/. */
#ifndef EGRESSSCAN_OCSF_H
#define EGRESSSCAN_OCSF_H

#include <stdio.h>

#include "common/err.h"
#include "common/finding_record.h"

#define OCSF_VERSION "1.3.0"
#define OCSF_CLASS_COMPLIANCE_FINDING 2003
#define OCSF_CATEGORY_FINDINGS 2

/* OCSF severity_id of an egressscan severity: critical 5, high 4, medium 3, low 2, info 1;
 * anything else 0 (Unknown). */
int ocsf_severity_id(const char *severity);

/* The event of r as a new jansson object (void *: the header stays free of jansson; the caller
 * json_decrefs it), NULL on out of memory. Open findings: activity Create (first seen by the scan
 * that last confirmed it) or Update, status New, compliance Fail; resolved ones: activity Close,
 * status Resolved, compliance Pass. time = when it was last confirmed, or resolved (ms). */
void *ocsf_compliance_finding(const struct finding_record *r);

/* Writes the event of r as one line of JSON (UTF-8, no newline inside). -1 with err on a write
 * error or out of memory. */
int ocsf_write_line(FILE *out, const struct finding_record *r, struct err *err);

#endif
