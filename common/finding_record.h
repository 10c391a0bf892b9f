/* finding_record.h - one finding of the fleet as the exports see it (OCSF lines, Security Hub):
 * the stored finding with its lifetime (first and last seen, resolved or not). Plain data, no
 * third-party types: storage/ fills it, report/ocsf.c and scanner/securityhub.c render it. */
#ifndef EGRESSSCAN_FINDING_RECORD_H
#define EGRESSSCAN_FINDING_RECORD_H

#include <stddef.h>
#include <time.h>

#include "common/model.h"

/* The finding's stable identifier outside the database: "egressscan-finding-<finding_id>"
 * (OCSF finding_info.uid, Security Hub Id). */
#define FINDING_UID_PREFIX "egressscan-finding-"

struct finding_record {
    long long finding_id;
    long long scan_id; /* the scan that last confirmed it */
    struct finding f;
    const char *account_name;    /* NULL when unknown */
    const char *first_seen;      /* "YYYY-MM-DDTHH:MM:SSZ" (UTC) */
    const char *last_seen;       /* idem */
    const char *resolved_at;     /* idem; NULL while the finding is open */
    const char *resolved_reason; /* not_raised, cluster_gone, left_organization, ...; NULL */
};

/* The texts both exports show, written into out (capacity cap, always NUL-terminated, valid
 * UTF-8 when the record is, cut on a character boundary when it does not fit). */

/* FINDING_UID_PREFIX and the id. */
void finding_uid(const struct finding_record *r, char *out, size_t cap);
/* One line saying what is wrong and where ("EKS cluster NAME in ACCOUNT/REGION runs ..."). */
void finding_title(const struct finding_record *r, char *out, size_t cap);
/* What was observed against what was intended: kind, modes, source, reason, notes. */
void finding_description(const struct finding_record *r, char *out, size_t cap);
/* What to do: details.remediation (a shell-quoted command, or prose), with the warning that the
 * switch to CUSTOMER_ROUTED is irreversible and whether the SCPs permit it, else details.fix, else
 * a sentence per kind. */
void finding_remediation(const struct finding_record *r, char *out, size_t cap);
/* The irreversibility warning of the finding's details (details.warning); "" when none. */
void finding_warning(const struct finding_record *r, char *out, size_t cap);
/* The last path element of the cluster ARN; NULL when the finding is not about a cluster. */
const char *finding_cluster_name(const struct finding_record *r);
/* "YYYY-MM-DDTHH:MM:SSZ" to UTC seconds; 0 when s is NULL or not such a time. */
time_t finding_time(const char *s);

#endif
