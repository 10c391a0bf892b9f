/* finding_record.c - the texts of a finding shared by the OCSF lines and the Security Hub export
 * (title, description, remediation), from its kind and stored details. Text from member accounts
 * (cluster names) is carried as is: each output escapes it for its own format. */
#include "common/finding_record.h"

#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "common/isotime.h"
#include "common/utf8.h"

/* snprintf, then a cut that never leaves half a character behind. */
__attribute__((format(printf, 3, 4))) static void put(char *out, size_t cap, const char *fmt, ...)
{
    if (!cap)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(out, cap, fmt, ap);
    va_end(ap);
    utf8_repair(out);
}

static const char *nz(const char *s)
{
    return s ? s : "";
}

void finding_uid(const struct finding_record *r, char *out, size_t cap)
{
    put(out, cap, FINDING_UID_PREFIX "%lld", r->finding_id);
}

const char *finding_cluster_name(const struct finding_record *r)
{
    const char *arn = r->f.cluster_arn;
    if (!arn || !*arn)
        return NULL;
    const char *slash = strrchr(arn, '/');
    return slash ? slash + 1 : arn;
}

time_t finding_time(const char *s)
{
    time_t t = 0;
    if (!s || iso8601_parse(s, &t) < 0)
        return 0;
    return t;
}

static json_t *details_of(const struct finding_record *r)
{
    return r->f.details_json ? json_loads(r->f.details_json, 0, NULL) : NULL; /* new */
}

static const char *dstr(const json_t *d, const char *key)
{
    return json_string_value(json_object_get(d, key)); /* borrowed */
}

static void where(const struct finding_record *r, char *out, size_t cap)
{
    if (strcmp(r->f.region, "*") == 0)
        put(out, cap, "account %s%s%s%s (every scanned region)", r->f.account_id,
            r->account_name ? " (" : "", nz(r->account_name), r->account_name ? ")" : "");
    else
        put(out, cap, "account %s%s%s%s, region %s", r->f.account_id, r->account_name ? " (" : "",
            nz(r->account_name), r->account_name ? ")" : "", r->f.region);
}

void finding_title(const struct finding_record *r, char *out, size_t cap)
{
    char w[320];
    where(r, w, sizeof w);
    const char *name = finding_cluster_name(r);
    const char *k = r->f.kind;
    if (strcmp(k, "noncompliant_cluster") == 0)
        put(out, cap, "EKS cluster %s runs control plane egress mode %s, which is not allowed (%s)",
            nz(name), r->f.observed_mode ? r->f.observed_mode : "AWS_MANAGED (absent)", w);
    else if (strcmp(k, "unenforced_intent") == 0)
        put(out, cap, "The SCPs do not enforce the declared EKS egress mode policy (%s)", w);
    else if (strcmp(k, "scp_conflict") == 0)
        put(out, cap, "The SCPs forbid every EKS egress mode the declared policy allows (%s)", w);
    else if (strcmp(k, "unscanned_target") == 0)
        put(out, cap, "EKS clusters could not be scanned (%s)", w);
    else if (strcmp(k, "mode_changed") == 0)
        put(out, cap, "EKS cluster %s changed its control plane egress mode to %s (%s)", nz(name),
            r->f.observed_mode ? r->f.observed_mode : "(absent)", w);
    else if (strcmp(k, "unknown_mode") == 0)
        put(out, cap, "EKS cluster %s reports no or an unknown control plane egress mode (%s)",
            nz(name), w);
    else if (strcmp(k, "exception_expired") == 0)
        put(out, cap, "An EKS egress mode exception has expired%s%s (%s)",
            name ? " for cluster " : "", nz(name), w);
    else
        put(out, cap, "egressscan finding %s (%s)", k, w);
}

static void allowed_text(unsigned bits, char *out, size_t cap)
{
    out[0] = '\0';
    size_t len = 0;
    for (int m = 0; m < EGRESS_OMITTED; m++)
        if (bits & EGRESS_BIT(m))
            len += (size_t)snprintf(out + len, len < cap ? cap - len : 0, "%s%s", len ? ", " : "",
                                    egress_mode_name((enum egress_mode)m));
}

void finding_description(const struct finding_record *r, char *out, size_t cap)
{
    json_t *d = details_of(r);
    char allowed[96];
    allowed_text(r->f.allowed_modes, allowed, sizeof allowed);
    const char *reason = dstr(d, "reason");
    const char *note = dstr(d, "note");
    if (!note)
        note = dstr(d, "scp_note");
    put(out, cap,
        "egressscan %s finding (severity %s). Cluster: %s. Observed egress mode: %s. Allowed "
        "modes: %s. Decided by: %s.%s%s%s%s%s%s First seen %s, last seen %s%s%s%s%s.",
        r->f.kind, r->f.severity, r->f.cluster_arn ? r->f.cluster_arn : "none",
        r->f.observed_mode ? r->f.observed_mode : (r->f.cluster_arn ? "(absent)" : "n/a"),
        allowed[0] ? allowed : (r->f.cluster_arn ? "none" : "n/a"), r->f.source,
        reason ? " Reason: " : "", nz(reason), reason ? "." : "", note ? " " : "", nz(note),
        dstr(d, "error_code") ? " (coverage error)" : "", r->first_seen, r->last_seen,
        r->resolved_at ? "; resolved " : "", nz(r->resolved_at),
        r->resolved_reason ? " because " : "", nz(r->resolved_reason));
    json_decref(d);
}

void finding_warning(const struct finding_record *r, char *out, size_t cap)
{
    json_t *d = details_of(r);
    put(out, cap, "%s", nz(dstr(d, "warning")));
    json_decref(d);
}

void finding_remediation(const struct finding_record *r, char *out, size_t cap)
{
    json_t *d = details_of(r);
    const char *rem = dstr(d, "remediation");
    const char *warning = dstr(d, "warning");
    const char *permitted = dstr(d, "remediation_permitted_by_scps");
    const char *fix = dstr(d, "fix");
    const char *k = r->f.kind;
    if (rem)
        put(out, cap, "%s%s%s%s%s%s", rem, warning ? "\nWarning: " : "", nz(warning),
            permitted ? "\nThe SCPs on the account's path: the update is " : "", nz(permitted),
            permitted ? "." : "");
    else if (fix)
        put(out, cap, "%s", fix);
    else if (strcmp(k, "unenforced_intent") == 0)
        put(out, cap,
            "Attach an SCP that denies eks:CreateCluster and eks:UpdateClusterConfig "
            "for every egress mode the policy does not allow, including requests that "
            "omit eks:controlPlaneEgressMode (a Null condition), with no principal "
            "exemption.");
    else if (strcmp(k, "scp_conflict") == 0)
        put(out, cap,
            "Amend the declared policy or the SCPs so that at least one egress mode "
            "is both allowed and permitted.");
    else if (strcmp(k, "unscanned_target") == 0)
        put(out, cap,
            "Make the target scannable (the scanner's role, its trust and permissions, "
            "the region's SCPs), or leave it out of the scan.");
    else if (strcmp(k, "exception_expired") == 0)
        put(out, cap, "Renew the exception in the policy file or make the cluster compliant.");
    else if (strcmp(k, "mode_changed") == 0)
        put(out, cap,
            "Check that the change was intended; a change away from CUSTOMER_ROUTED "
            "means the cluster was replaced.");
    else
        put(out, cap, "Review the cluster's control plane egress mode.");
    json_decref(d);
}
