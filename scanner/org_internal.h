/* org_internal.h - the Organizations answer parsers behind org.c, for tests and fuzzing: each
 * answer page becomes a struct org_page, checked whole (every member of the expected type)
 * before discovery acts on any of it. */
#ifndef EGRESSSCAN_ORG_INTERNAL_H
#define EGRESSSCAN_ORG_INTERNAL_H

#include <stddef.h>

#include "common/err.h"

/* The Organizations operations discovery calls (ListAccountsForParent answers have the shape of
 * ListAccounts answers). */
enum org_op {
    ORG_OP_DESCRIBE_ORGANIZATION,
    ORG_OP_LIST_ROOTS,
    ORG_OP_LIST_OUS,
    ORG_OP_LIST_ACCOUNTS,
    ORG_OP_LIST_POLICIES,
    ORG_OP_DESCRIBE_POLICY,
    ORG_OP_LIST_TARGETS,
    ORG_OP_COUNT
};

/* "DescribeOrganization", "ListRoots", ...; NULL for a value out of range. */
const char *org_op_name(enum org_op op);

/* One item of a listing: a root, an OU, an account, a policy summary or a policy target. */
struct org_entry {
    const char *id;     /* Id (TargetId for a target); never NULL or empty */
    const char *name;   /* NULL when absent or null */
    const char *email;  /* accounts; NULL when absent or null */
    const char *status; /* accounts: Status, else State; NULL when neither is there */
    int aws_managed;    /* policy summaries: AwsManaged (0 when absent) */
};

/* One parsed answer. Strings are borrowed from doc and live until org_page_cleanup. */
struct org_page {
    struct org_entry *entries; /* the listing's items (Roots, OrganizationalUnits, Accounts, ...) */
    size_t n;
    const char *next_token;    /* NULL on the last page (absent, null or empty) */
    const char *org_id;        /* DescribeOrganization: Organization.Id, NULL when absent */
    const char *management_id; /* DescribeOrganization: ManagementAccountId or MasterAccountId */
    const char *content;       /* DescribePolicy: Policy.Content, the policy document */
    const char *policy_name;   /* DescribePolicy: PolicySummary.Name, NULL when absent */
    int aws_managed;           /* DescribePolicy: PolicySummary.AwsManaged, -1 when absent */
    void *doc;                 /* the parsed answer (a json_t): owns the strings */
};

/* Parses the answer body of op into page (zeroed first). -1 with err (MalformedResponse, the
 * message naming the operation and the member, e.g. "ListAccountsForParent: Accounts[2].Id is a
 * number, expected a string") when the body is empty, not JSON, or a member has the wrong type
 * or is missing; page is then empty. Free with org_page_cleanup either way. */
int org_parse_page(enum org_op op, const char *body, size_t len, struct org_page *page,
                   struct err *err);
void org_page_cleanup(struct org_page *page);

#endif
