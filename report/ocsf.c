/* ocsf.c - findings as OCSF 1.3.0 Compliance Finding events (class 2003): the finding's stable
 * uid, its lifecycle (status New / Resolved, activity Create / Update / Close), severity, the
 * cluster (or the account) as resource with its cloud account and region, the compliance verdict
 * and the remediation with its irreversibility warning. jansson escapes every string. */
#include "report/ocsf.h"

#include <jansson.h>
#include <string.h>

#include "common/version.h"

int ocsf_severity_id(const char *s)
{
    static const char *const names[] = {"info", "low", "medium", "high", "critical"};
    for (int i = 0; s && i < 5; i++)
        if (strcmp(s, names[i]) == 0)
            return i + 1;
    return 0;
}

static const char *severity_caption(int id)
{
    static const char *const captions[] = {"Unknown", "Informational", "Low",
                                           "Medium",  "High",          "Critical"};
    return id >= 0 && id <= 5 ? captions[id] : "Unknown";
}

static json_int_t ms(const char *iso)
{
    return (json_int_t)finding_time(iso) * 1000;
}

/* The cloud partition of a region, as in ARNs. */
static const char *partition_of(const char *region)
{
    if (strncmp(region, "cn-", 3) == 0)
        return "aws-cn";
    if (strncmp(region, "us-gov-", 7) == 0)
        return "aws-us-gov";
    return "aws";
}

static json_t *resource_of(const struct finding_record *r)
{
    json_t *res;
    const char *name = finding_cluster_name(r);
    if (name) {
        res = json_pack("{s:s, s:s, s:s, s:s}", "uid", r->f.cluster_arn, "name", name, "type",
                        "AwsEksCluster", "cloud_partition", partition_of(r->f.region));
        if (res && r->f.observed_mode)
            json_object_set_new(res, "data",
                                json_pack("{s:s}", "controlPlaneEgressMode", r->f.observed_mode));
    } else {
        char uid[64];
        snprintf(uid, sizeof uid, "AWS::::Account:%s", r->f.account_id);
        res = json_pack("{s:s, s:s, s:s, s:s}", "uid", uid, "name", r->f.account_id, "type",
                        "AwsAccount", "cloud_partition", partition_of(r->f.region));
    }
    if (res && strcmp(r->f.region, "*") != 0)
        json_object_set_new(res, "region", json_string(r->f.region));
    return res;
}

void *ocsf_compliance_finding(const struct finding_record *r)
{
    char uid[64], title[512], desc[2048], rem[2048];
    finding_uid(r, uid, sizeof uid);
    finding_title(r, title, sizeof title);
    finding_description(r, desc, sizeof desc);
    finding_remediation(r, rem, sizeof rem);
    int resolved = r->resolved_at != NULL;
    int activity = resolved ? 3 : strcmp(r->first_seen, r->last_seen) == 0 ? 1 : 2;
    static const char *const activities[] = {"Unknown", "Create", "Update", "Close"};
    int sev = ocsf_severity_id(r->f.severity);
    char type_name[64];
    snprintf(type_name, sizeof type_name, "Compliance Finding: %s", activities[activity]);
    const char *compliance_status = resolved ? "Pass" : "Fail";
    int compliance_status_id = resolved ? 1 : 3;

    json_t *account =
        json_pack("{s:s, s:i, s:s}", "uid", r->f.account_id, "type_id", 10, "type", "AWS Account");
    if (account && r->account_name)
        json_object_set_new(account, "name", json_string(r->account_name));
    json_t *cloud = json_pack("{s:s, s:o}", "provider", "AWS", "account", account);
    if (cloud && strcmp(r->f.region, "*") != 0)
        json_object_set_new(cloud, "region", json_string(r->f.region));

    json_t *requirements = json_pack("[s]", r->f.source);
    json_t *compliance =
        json_pack("{s:[s], s:s, s:o, s:i, s:s}", "standards",
                  "egressscan: EKS control plane egress mode policy (SCPs and declared policy)",
                  "control", r->f.kind, "requirements", requirements, "status_id",
                  compliance_status_id, "status", compliance_status);

    json_t *info =
        json_pack("{s:s, s:s, s:s, s:[s], s:I, s:I, s:I, s:I}", "uid", uid, "title", title, "desc",
                  desc, "types", r->f.kind, "created_time", ms(r->first_seen), "first_seen_time",
                  ms(r->first_seen), "last_seen_time", ms(r->last_seen), "modified_time",
                  ms(resolved ? r->resolved_at : r->last_seen));
    json_t *product = json_pack("{s:s, s:s, s:s}", "name", "egressscan", "vendor_name",
                                "egressscan", "version", EGRESSSCAN_VERSION);
    json_t *metadata = json_pack("{s:s, s:o, s:[s], s:s}", "version", OCSF_VERSION, "product",
                                 product, "profiles", "cloud", "uid", uid);
    json_t *remediation = json_pack("{s:s}", "desc", rem);

    json_t *ev = json_pack(
        "{s:i, s:s, s:i, s:s, s:i, s:s, s:i, s:s, s:i, s:s, s:i, s:s, s:I, s:s, s:o, s:o, "
        "s:o, s:o, s:[o], s:o}",
        "activity_id", activity, "activity_name", activities[activity], "category_uid",
        OCSF_CATEGORY_FINDINGS, "category_name", "Findings", "class_uid",
        OCSF_CLASS_COMPLIANCE_FINDING, "class_name", "Compliance Finding", "type_uid",
        OCSF_CLASS_COMPLIANCE_FINDING * 100 + activity, "type_name", type_name, "severity_id", sev,
        "severity", severity_caption(sev), "status_id", resolved ? 4 : 1, "status",
        resolved ? "Resolved" : "New", "time", ms(resolved ? r->resolved_at : r->last_seen),
        "message", title, "metadata", metadata, "finding_info", info, "compliance", compliance,
        "cloud", cloud, "resources", resource_of(r), "remediation", remediation);
    if (ev && resolved && r->resolved_reason)
        json_object_set_new(ev, "status_detail", json_string(r->resolved_reason));
    return ev;
}

int ocsf_write_line(FILE *out, const struct finding_record *r, struct err *err)
{
    json_t *ev = ocsf_compliance_finding(r);
    if (!ev)
        return err_set(err, ERR_NOMEM, "OCSF: cannot build the event of finding %lld",
                       r->finding_id);
    int rc =
        json_dumpf(ev, out, JSON_COMPACT | JSON_ENSURE_ASCII) < 0 || fputc('\n', out) == EOF
            ? err_set(err, ERR_IO, "OCSF: cannot write the event of finding %lld", r->finding_id)
            : 0;
    json_decref(ev);
    return rc;
}
