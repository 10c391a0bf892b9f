/* policy.h - the declared policy file of SPEC.md section 6 (JSON, optional): which egress modes
 * clusters may have, by scope (default, OU, account; optional region filters), further
 * restricted by cluster-tag rules, with dated exceptions per cluster. Parsing reports
 * file:line:column; resolution says, for one cluster or one account x region, which modes are
 * allowed and which rule decided. No database, no network. */
#ifndef EGRESSSCAN_POLICY_H
#define EGRESSSCAN_POLICY_H

#include <stddef.h>
#include <stdio.h>
#include <time.h>

#include "common/err.h"
#include "common/model.h"

struct policy;

/* Parses text; name stands for the file in messages. Every problem found is reported (not only
 * the first): err gets the first as "NAME:LINE:COLUMN: message", and when errors is not NULL all
 * of them are written there, one per line. NULL on error (code ConfigError) or ENOMEM. */
struct policy *policy_parse(const char *text, size_t len, const char *name, FILE *errors,
                            struct err *err);
/* Reads and parses a file (at most 16 MiB). */
struct policy *policy_load(const char *path, FILE *errors, struct err *err);
void policy_free(struct policy *p);

/* What is being judged: a cluster (tags and arn set) or an account x region (tags NULL, arn
 * NULL: only scope rules apply; used for SCP enforcement findings). */
struct policy_subject {
    const char *account_id;
    const char *const *ou_ids; /* the account's path below the root, top-down: "ou-…", ... */
    size_t n_ous;
    const char *region;
    const char
        *tags_json; /* the cluster's tags as a JSON object text; NULL: none / not a cluster */
    const char *cluster_arn;
};

struct policy_resolution {
    unsigned allowed;      /* EGRESS_BIT() set of allowed modes (named modes only) */
    char rule_id[64];      /* the scope rule that decided ("default" when none matched) */
    char tag_rules[256];   /* ids of the tag rules that further restricted, comma-separated */
    int require_scp;       /* the deciding scope rule demands SCP enforcement */
    int exempt;            /* a valid exception covers the cluster */
    int exception_expired; /* an exception for the cluster has expired */
    char exception_reason[128];
    char exception_expires[16]; /* "2027-01-31" */
};

/* Resolves the policy for s at time now (exceptions expire at the end of their day, UTC).
 * Most specific scope wins: an account rule over an OU rule, a deeper OU over a shallower one,
 * over the default; among equally specific rules, one with a region filter over one without;
 * then every matching tag rule intersects the allowed set. */
void policy_resolve(const struct policy *p, const struct policy_subject *s, time_t now,
                    struct policy_resolution *out);

/* Rules marked require_scp, for unenforced_intent findings: the number of rules and the i-th
 * one's id (NULL past the end). */
size_t policy_rule_count(const struct policy *p);
const char *policy_rule_id(const struct policy *p, size_t i);

/* Exceptions, for exception_expired findings: count, and the i-th one's fields. */
size_t policy_exception_count(const struct policy *p);
void policy_exception_get(const struct policy *p, size_t i, const char **cluster_arn,
                          const char **reason, const char **expires);

/* Nonzero when exception i has expired at now (it holds through its expires day, UTC). */
int policy_exception_expired(const struct policy *p, size_t i, time_t now);

/* Writes what the policy means, rule by rule (scope, region filter, allowed modes, require_scp,
 * tags), then the exceptions with their state at now: `egressscan policy check`. */
void policy_describe(const struct policy *p, time_t now, FILE *out);

#endif
