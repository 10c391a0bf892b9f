/* model.h - the plain structs scanner/ and storage/ exchange (no third-party types): accounts,
 * organizational units, SCPs, targets (account x region) and what a target's scan found. */
#ifndef EGRESSSCAN_MODEL_H
#define EGRESSSCAN_MODEL_H

#include <stddef.h>
#include <stdint.h>

/* The egress modes a CreateCluster request can carry; OMITTED leaves the key out (EKS then uses
 * AWS_MANAGED). Bit i of a mode set is mode i. */
enum egress_mode {
    EGRESS_AWS_MANAGED = 0,
    EGRESS_CUSTOMER_ROUTED,
    EGRESS_CUSTOMER_ISOLATED,
    EGRESS_OMITTED,
    EGRESS_MODES
};
#define EGRESS_BIT(m) (1u << (m))
#define EGRESS_ALL_NAMED                                                                           \
    (EGRESS_BIT(EGRESS_AWS_MANAGED) | EGRESS_BIT(EGRESS_CUSTOMER_ROUTED) |                         \
     EGRESS_BIT(EGRESS_CUSTOMER_ISOLATED))

/* "AWS_MANAGED", ..., "omitted". */
const char *egress_mode_name(enum egress_mode m);
/* The mode of an API value: -1 for a value this version does not know; NULL is EGRESS_OMITTED
 * (the API did not report one). */
int egress_mode_parse(const char *value);

/* 1 when s is an AWS account id: exactly 12 ASCII digits (leading zeros are part of it). */
int account_id_valid(const char *s);

/* 1 when s[0..len) is an EKS cluster name by AWS's rules: 1-100 characters matching
 * ^[0-9A-Za-z][A-Za-z0-9_-]*$ (the cluster table checks the length only). */
int cluster_name_valid(const char *s, size_t len);

/* Coverage statuses of SPEC.md section 5. */
enum target_status {
    TARGET_OK = 0,
    TARGET_ASSUME_ROLE_DENIED,
    TARGET_ACCESS_DENIED,
    TARGET_REGION_DISABLED,
    TARGET_THROTTLED,
    TARGET_ERROR,
    TARGET_SCP_DENIED, /* an SCP denies the scanner's own calls there (region-deny SCPs) */
    TARGET_SUSPENDED,  /* account suspended or closed (account-level, region "*"): left the fleet */
    TARGET_STATUSES
};

/* 1 when a target of this status was meant to be scanned and was not (a suspended account is
 * not a failure: it left the fleet). */
int target_status_failed(enum target_status s);

/* "ok", "assume_role_denied", ... */
const char *target_status_name(enum target_status s);

/* How a scan came by the organization's SCPs (scans.scps_state). scps_known is READ or DISABLED. */
enum org_scps {
    ORG_SCPS_READ = 0, /* read completely */
    ORG_SCPS_DISABLED, /* SCPs not enabled in the organization (PolicyTypeNotEnabledException):
                          none apply, every mode allowed */
    ORG_SCPS_NOT_READ, /* not attempted by design: a fixed --accounts list without
                          --org-role-arn (the targeted scan judges with the latest read) */
    ORG_SCPS_FAILED,   /* should have been read and could not be (AccessDenied, throttling or
                          errors past the retries): the scan is partial */
    ORG_SCPS_STATES
};

/* "read", "disabled", "not_read", "failed". */
const char *org_scps_name(enum org_scps s);
/* The state of a name; -1 for an unknown one. */
int org_scps_parse(const char *name);
/* 1 when the scan knows which SCPs apply (read, or disabled: none). */
int org_scps_known(enum org_scps s);

/* The status a finished scan gets (SPEC section 2 and 5): "failed" when the run itself failed,
 * "partial" when some target could not be scanned or the SCPs could not be read, else
 * "succeeded". */
const char *scan_status_of(int run_failed, long targets_failed, enum org_scps scps);

/* An account as discovered (Organizations or the --accounts list). Strings are owned by whoever
 * built the struct; storage copies what it keeps. */
struct account {
    const char *id;         /* 12 digits, kept as text (leading zeros) */
    const char *name;       /* NULL when unknown (fixed --accounts list) */
    const char *email;      /* NULL when unknown */
    const char *status;     /* "ACTIVE", "SUSPENDED", ...; NULL when unknown */
    const char *ou_path;    /* "Root/Prod/Regulated" (names); NULL when unknown */
    const char *ou_id_path; /* "r-ab12/ou-ab12-1111/ou-ab12-2222"; NULL when unknown */
    const char *parent_id;  /* the OU (or root) directly above the account */
    int is_management;
};

struct org_unit {
    const char *id;        /* "ou-ab12-34cd56ef" or the root "r-ab12" */
    const char *parent_id; /* NULL for the root */
    const char *name;
};

/* An SCP document and where it is attached. */
struct scp_policy {
    const char *id; /* "p-abcd1234" */
    const char *name;
    const char *content;        /* the JSON document, verbatim */
    const char *const *targets; /* root / OU / account ids */
    size_t n_targets;
    int aws_managed; /* FullAWSAccess */
};

/* One cluster as DescribeCluster reported it. */
struct cluster {
    const char *name;
    const char *arn;
    const char *egress_mode; /* verbatim; NULL when the API did not report it */
    const char *status;
    const char *kubernetes_version;
    const char *platform_version;
    int endpoint_public_access;           /* -1 unknown */
    int endpoint_private_access;          /* -1 unknown */
    const char *public_access_cidrs_json; /* JSON array text, NULL when absent */
    const char *vpc_id;
    const char *tags_json;  /* JSON object text, NULL when absent */
    const char *created_at; /* ISO 8601 UTC (AWS sends epoch seconds); NULL when absent */
    const char *raw_json;   /* the whole DescribeCluster answer body, verbatim */
};

/* What scanning one target gave: its coverage and, when ok, every cluster in it. Account-level
 * failures (AssumeRole, DescribeRegions) are reported with region "*". */
struct target_result {
    const char *account_id;
    const char *region;
    enum target_status status;
    const char *error_code;    /* AWS error code when not ok */
    const char *error_message; /* never contains a secret */
    const struct cluster *clusters;
    size_t n_clusters;
    double scanned_at; /* unix time (seconds) when the target's scan finished */
};

/* ---- drift: what a scan's findings are computed from, and the findings ---- */

struct drift_account {
    const char *id;
    const char *name;       /* NULL when unknown */
    const char *ou_id_path; /* "r-ab12/ou-ab12-1111/ou-ab12-2222"; NULL when unknown */
    int is_management;
};

struct drift_cluster {
    const char *account_id;
    const char *region;
    const char *name;
    const char *arn;
    const char *egress_mode; /* verbatim; NULL when the API did not report it */
    const char *tags_json;   /* NULL when none */
    int unverified; /* its target was not scanned ok by this scan: last known state, not judged */
};

/* A coverage row of the scan (only the ones that are not ok are needed for findings; the ok ones
 * tell which account x region pairs were scanned). */
struct drift_target {
    const char *account_id;
    const char *region; /* "*" for account-level failures */
    enum target_status status;
    const char *error_code;
    const char *error_message;
};

/* The ok coverage rows of one account, without a record each: bit i of regions (word i / 64,
 * bit i % 64) says region i of a region table was scanned ok (struct drift_input.ok_regions). An
 * account whose only ok row is account-level has an entry with no bit set. */
struct drift_ok_account {
    const char *account_id;
    const uint64_t *regions; /* NULL when the region table is empty */
};

/* A cluster whose mode changed in this scan (from the history periods it closed and opened). */
struct drift_change {
    const char *account_id;
    const char *region;
    const char *arn;
    const char *from_mode; /* verbatim, may be NULL */
    const char *to_mode;
};

/* One finding. details_json is a JSON object text (reason, remediation, warning, statements,
 * ...). Valid during the callback only. */
struct finding {
    const char *kind;     /* noncompliant_cluster, unenforced_intent, scp_conflict,
                             unscanned_target, mode_changed, unknown_mode, exception_expired */
    const char *severity; /* critical, high, medium, low, info */
    const char *account_id;
    const char *region;        /* "*" when it holds in every scanned region of the account */
    const char *cluster_arn;   /* NULL unless about a cluster */
    const char *observed_mode; /* verbatim mode for cluster findings; NULL otherwise */
    unsigned allowed_modes;    /* EGRESS_BIT() set of the intended modes; 0 when not relevant */
    const char *source;        /* "scp:p-…", "policy:<rule id>", "coverage", "history" */
    const char *details_json;
};

struct drift_counts {
    long clusters; /* clusters judged */
    long compliant;
    long noncompliant;
    long exempt;     /* covered by a valid exception */
    long unknown;    /* neither: an unknown mode value or an unevaluable intent */
    long unverified; /* not judged: the cluster's target was not scanned ok (last known state) */
};

/* What a scan judged one cluster to be (current_clusters.compliance). */
enum cluster_judgement { JUDGED_COMPLIANT = 0, JUDGED_NONCOMPLIANT, JUDGED_EXEMPT, JUDGED_UNKNOWN };

/* "compliant", "noncompliant", "exempt", "unknown". */
const char *cluster_judgement_name(enum cluster_judgement j);

/* Deep copy of f and its strings in one allocation: free() it. NULL on ENOMEM. */
struct finding *finding_copy(const struct finding *f);

/* Deep copy of r (its clusters and every string) in one allocation: free() it. NULL on ENOMEM. */
struct target_result *target_result_copy(const struct target_result *r);

#endif
