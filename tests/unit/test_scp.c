/* test_scp.c - the SCP evaluator: a table of policies on the root / OU / account levels with the
 * verdict expected for each egress mode, every case naming the IAM or Organizations rule it
 * checks; then parsing errors, decision fields and the names. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "intent/scp.h"

/* Policies are written with single quotes (JSON wants double ones: sq() converts). */
#define V "'Version':'2012-10-17',"
#define FULL "{" V "'Statement':[{'Effect':'Allow','Action':'*','Resource':'*'}]}"
#define EKS2 "['eks:CreateCluster','eks:UpdateClusterConfig']"
/* A Deny of CreateCluster and UpdateClusterConfig on every resource under a condition. */
#define DENY_IF(cond)                                                                              \
    "{" V "'Statement':[{'Sid':'S1','Effect':'Deny','Action':" EKS2 ",'Resource':'*',"             \
    "'Condition':" cond "}]}"
/* The same with another Action/Resource part. */
#define DENY_AR(action_resource, cond)                                                             \
    "{" V "'Statement':[{'Sid':'S1','Effect':'Deny'," action_resource ",'Condition':" cond "}]}"
#define ALLOW(action_resource)                                                                     \
    "{" V "'Statement':[{'Sid':'A1','Effect':'Allow'," action_resource "}]}"
#define NOT_ROUTED "{'StringNotEquals':{'eks:controlPlaneEgressMode':'CUSTOMER_ROUTED'}}"
#define OFFICIAL DENY_IF(NOT_ROUTED)
#define EGRESS(op, value) "{'" op "':{'eks:controlPlaneEgressMode':" value "}}"

/* Levels whose FullAWSAccess is left out (allow-list strategies, levels without an SCP). */
#define NOFULL_ROOT 1
#define NOFULL_OU 2
#define NOFULL_ACCT 4

#define R_YES 1
#define R_NO 2

#define ROOT_ID "r-ab12"
#define OU_ID "ou-ab12-11111111"
#define ACCOUNT "111122223333"

struct scp_case {
    const char *rule;       /* the documented rule the case checks */
    const char *root[3];    /* documents besides FullAWSAccess, ids p-root1, p-root2, ... */
    const char *ou[3];      /* ids p-ou1, ... */
    const char *acct[3];    /* ids p-acct1, ... */
    unsigned nofull;        /* NOFULL_*: no FullAWSAccess on those levels */
    const char *action;     /* NULL: eks:CreateCluster */
    const char *region;     /* NULL: eu-west-1 */
    const char *want;       /* verdicts for AWS_MANAGED, CUSTOMER_ROUTED, CUSTOMER_ISOLATED,
                               omitted: A allowed, D denied, P principal-dependent, U unevaluable */
    int restricts;          /* R_YES / R_NO: expected restricts_mode; 0: unchecked */
    enum egress_mode check; /* the mode whose statements and reason are checked */
    const char *stmt;       /* one of the statements (exact), NULL unchecked */
    const char *reason;     /* substring of the reason, NULL unchecked */
};

static const struct scp_case cases[] = {
    /* Policy evaluation logic: permitted when every level has an Allow and nothing denies. */
    {.rule = "FullAWSAccess everywhere: allowed, the Allow per level listed",
     .want = "AAAA",
     .restricts = R_NO,
     .stmt = "p-FullAWSAccess#0"},

    /* ---- the official example of the EKS documentation, and its variants ---- */
    /* StringNotEquals: true when the value differs; negated operator on an absent key: true. */
    {.rule = "official example: only CUSTOMER_ROUTED may be created",
     .root = {OFFICIAL},
     .want = "DADD",
     .restricts = R_YES,
     .stmt = "p-root1#S1"},
    {.rule = "official example: the omitted mode is denied too (negated operator, absent key)",
     .acct = {OFFICIAL},
     .want = "DADD",
     .restricts = R_YES,
     .check = EGRESS_OMITTED,
     .stmt = "p-acct1#S1"},
    /* ...IfExists: true when the key is absent. */
    {.rule = "StringNotEqualsIfExists: absent key -> true -> the Deny applies",
     .root = {DENY_IF(EGRESS("StringNotEqualsIfExists", "'CUSTOMER_ROUTED'"))},
     .want = "DADD",
     .restricts = R_YES},
    /* Null false: true only when the key is present, so omitting it escapes the Deny. */
    {.rule = "official example guarded by Null false: the omitted mode is a gap",
     .root = {DENY_IF("{'StringNotEquals':{'eks:controlPlaneEgressMode':'CUSTOMER_ROUTED'},"
                      "'Null':{'eks:controlPlaneEgressMode':'false'}}")},
     .want = "DADA",
     .restricts = R_YES},
    /* StringEquals on an absent key: false. */
    {.rule = "Deny on StringEquals AWS_MANAGED only: omitted and CUSTOMER_ISOLATED get through",
     .root = {DENY_IF(EGRESS("StringEquals", "'AWS_MANAGED'"))},
     .want = "DAAA",
     .restricts = R_YES},
    {.rule = "UpdateClusterConfig under the official example: only CUSTOMER_ROUTED",
     .root = {OFFICIAL},
     .action = "eks:UpdateClusterConfig",
     .want = "DADD",
     .restricts = R_YES,
     .check = EGRESS_CUSTOMER_ROUTED,
     .stmt = "p-FullAWSAccess#0"},
    /* The condition key gates only the actions the statement names. */
    {.rule = "a Deny naming only CreateCluster leaves UpdateClusterConfig free",
     .root = {DENY_AR("'Action':'eks:CreateCluster','Resource':'*'", NOT_ROUTED)},
     .action = "eks:UpdateClusterConfig",
     .want = "AAAA",
     .restricts = R_NO},

    /* ---- String operators, their IfExists and negated forms, key present and absent ---- */
    {.rule = "StringEqualsIfExists: absent key -> true",
     .root = {DENY_IF(EGRESS("StringEqualsIfExists", "'AWS_MANAGED'"))},
     .want = "DAAD"},
    /* String values are case-sensitive for StringEquals. */
    {.rule = "StringEquals is case-sensitive",
     .root = {DENY_IF(EGRESS("StringEquals", "'aws_managed'"))},
     .want = "AAAA",
     .restricts = R_YES},
    {.rule = "StringEqualsIgnoreCase matches regardless of case; absent key -> false",
     .root = {DENY_IF(EGRESS("StringEqualsIgnoreCase", "'aws_managed'"))},
     .want = "DAAA"},
    {.rule = "StringNotEqualsIgnoreCase; absent key -> true",
     .root = {DENY_IF(EGRESS("StringNotEqualsIgnoreCase", "'customer_routed'"))},
     .want = "DADD"},
    {.rule = "StringEqualsIgnoreCaseIfExists; absent key -> true",
     .root = {DENY_IF(EGRESS("StringEqualsIgnoreCaseIfExists", "'Aws_Managed'"))},
     .want = "DAAD"},
    {.rule = "StringNotEqualsIgnoreCaseIfExists; absent key -> true",
     .root = {DENY_IF(EGRESS("StringNotEqualsIgnoreCaseIfExists", "'customer_routed'"))},
     .want = "DADD"},
    /* StringLike: * and ? wildcards; absent key -> false. */
    {.rule = "StringLike with *",
     .root = {DENY_IF(EGRESS("StringLike", "'CUSTOMER_*'"))},
     .want = "ADDA"},
    {.rule = "StringNotLike with *; absent key -> true",
     .root = {DENY_IF(EGRESS("StringNotLike", "'CUSTOMER_*'"))},
     .want = "DAAD"},
    {.rule = "StringLikeIfExists; absent key -> true",
     .root = {DENY_IF(EGRESS("StringLikeIfExists", "'AWS_*'"))},
     .want = "DAAD"},
    {.rule = "StringNotLikeIfExists with ?",
     .root = {DENY_IF(EGRESS("StringNotLikeIfExists", "'CUSTOMER_R?UTED'"))},
     .want = "DADD"},
    /* Multiple values: OR for positive operators, NOR for negated ones. */
    {.rule = "negated operator with two values: true when the value matches neither (NOR)",
     .root = {DENY_IF(EGRESS("StringNotLike", "['CUSTOMER_ROUTED','CUSTOMER_ISOLATED']"))},
     .want = "DAAD"},
    {.rule = "positive operator with two values: true when either matches (OR)",
     .root = {DENY_IF(EGRESS("StringEquals", "['AWS_MANAGED','CUSTOMER_ISOLATED']"))},
     .want = "DADA"},
    /* Set operators: ForAnyValue false on an absent key, ForAllValues true. */
    {.rule = "ForAnyValue:StringEquals: absent key -> false",
     .root = {DENY_IF(EGRESS("ForAnyValue:StringEquals", "'AWS_MANAGED'"))},
     .want = "DAAA"},
    {.rule = "ForAnyValue:StringNotEquals: absent key -> false (the set rule wins)",
     .root = {DENY_IF(EGRESS("ForAnyValue:StringNotEquals", "'CUSTOMER_ROUTED'"))},
     .want = "DADA"},
    {.rule = "ForAllValues:StringNotEquals: absent key -> true",
     .root = {DENY_IF(EGRESS("ForAllValues:StringNotEquals", "'CUSTOMER_ROUTED'"))},
     .want = "DADD"},
    {.rule = "ForAllValues:StringEquals: absent key -> true",
     .root = {DENY_IF(EGRESS("ForAllValues:StringEquals", "'AWS_MANAGED'"))},
     .want = "DAAD"},
    /* Null: "true" tests absence, "false" presence; JSON booleans are read as text. */
    {.rule = "Null true: the Deny hits only the omitted mode",
     .root = {DENY_IF(EGRESS("Null", "'true'"))},
     .want = "AAAD"},
    {.rule = "Null false: the Deny hits every named mode",
     .root = {DENY_IF(EGRESS("Null", "'false'"))},
     .want = "DDDA"},
    {.rule = "a JSON boolean value is its text (Null true)",
     .root = {DENY_IF(EGRESS("Null", "true"))},
     .want = "AAAD"},
    {.rule = "Null on aws:RequestedRegion, which every request carries",
     .root = {DENY_AR("'Action':'eks:*'", "{'Null':{'aws:RequestedRegion':'true'}}")},
     .want = "AAAA",
     .restricts = R_NO},
    /* Bool on a string key: type mismatch, not guessed; absent key -> false. */
    {.rule = "Bool on the egress key: cannot tell when present, false when absent",
     .root = {DENY_IF(EGRESS("Bool", "'true'"))},
     .want = "UUUA",
     .reason = "operator Bool does not apply"},
    {.rule = "BoolIfExists on the egress key: absent -> true",
     .root = {DENY_IF(EGRESS("BoolIfExists", "'true'"))},
     .want = "UUUD"},
    /* Principal keys: the statement holds for some principals only. */
    {.rule = "Bool on aws:MultiFactorAuthPresent: principal-dependent",
     .root = {DENY_AR("'Action':'eks:*','Resource':'*'",
                      "{'Bool':{'aws:MultiFactorAuthPresent':'false'}}")},
     .want = "PPPP",
     .stmt = "p-root1#S1",
     .reason = "Bool aws:MultiFactorAuthPresent false in p-root1#S1"},
    {.rule = "ArnNotLike aws:PrincipalArn alone: principal-dependent",
     .root = {DENY_AR("'Action':'eks:*','Resource':'*'",
                      "{'ArnNotLike':{'aws:PrincipalArn':'arn:aws:iam::*:role/Platform'}}")},
     .want = "PPPP",
     .restricts = R_NO},
    {.rule = "principal exemption: non-routed modes are principal-dependent, the ArnNotLike named",
     .root = {DENY_IF("{'StringNotEquals':{'eks:controlPlaneEgressMode':'CUSTOMER_ROUTED'},"
                      "'ArnNotLike':{'aws:PrincipalArn':'arn:aws:iam::*:role/BreakGlass'}}")},
     .want = "PAPP",
     .restricts = R_YES,
     .stmt = "p-root1#S1",
     .reason = "ArnNotLike aws:PrincipalArn arn:aws:iam::*:role/BreakGlass in p-root1#S1"},
    {.rule = "the same exemption, omitted mode",
     .acct = {DENY_IF("{'StringNotEqualsIfExists':{'eks:controlPlaneEgressMode':'CUSTOMER_ROUTED'},"
                      "'ArnNotEquals':{'aws:PrincipalArn':'arn:aws:iam::111122223333:role/BG'}}")},
     .want = "PAPP",
     .check = EGRESS_OMITTED,
     .reason = "ArnNotEquals aws:PrincipalArn arn:aws:iam::111122223333:role/BG"},
    {.rule = "an Allow for some principals only (ArnEquals aws:PrincipalArn) on an allow-list OU",
     .ou = {ALLOW("'Action':'eks:*','Resource':'*','Condition':{'ArnEquals':{'aws:PrincipalArn':"
                  "'arn:aws:iam::*:role/Platform'}}")},
     .nofull = NOFULL_OU,
     .want = "PPPP",
     .stmt = "p-ou1#A1",
     .reason = "ArnEquals aws:PrincipalArn arn:aws:iam::*:role/Platform in p-ou1#A1"},
    {.rule = "ArnLike on aws:PrincipalArn in a Deny: principal-dependent",
     .root = {DENY_AR("'Action':'eks:CreateCluster'",
                      "{'ArnLike':{'aws:PrincipalArn':'arn:aws:iam::*:role/Contractor*'}}")},
     .want = "PPPP"},
    {.rule = "NumericLessThan on aws:MultiFactorAuthAge (an operator we do not model, principal "
             "key): principal-dependent",
     .root = {DENY_AR("'Action':'eks:*'",
                      "{'NumericGreaterThan':{'aws:MultiFactorAuthAge':'3600'}}")},
     .want = "PPPP"},
    {.rule = "ForAnyValue:StringLike on aws:PrincipalOrgPaths: principal-dependent",
     .root = {DENY_AR("'Action':'eks:*'",
                      "{'ForAnyValue:StringLike':{'aws:PrincipalOrgPaths':'o-a/r-ab12/ou-x/*'}}")},
     .want = "PPPP"},
    /* Arn* on the (string) egress key: type mismatch; absent-key rules still hold. */
    {.rule = "ArnLike on the egress key: cannot tell when present, false when absent",
     .root = {DENY_IF(EGRESS("ArnLike", "'*'"))},
     .want = "UUUA"},
    {.rule = "ArnNotEqualsIfExists on the egress key: absent -> true",
     .root = {DENY_IF(EGRESS("ArnNotEqualsIfExists", "'x'"))},
     .want = "UUUD"},
    {.rule = "ArnNotLike on the egress key: negated operator, absent -> true",
     .root = {DENY_IF(EGRESS("ArnNotLike", "'x'"))},
     .want = "UUUD"},
    /* Unknown operators and keys are reported, never guessed. */
    {.rule = "unknown operator: unevaluable, naming operator and statement",
     .root = {DENY_IF(EGRESS("NumericFoo", "'1'"))},
     .want = "UUUU",
     .restricts = R_YES,
     .stmt = "p-root1#S1",
     .reason = "unknown operator NumericFoo in p-root1#S1"},
    {.rule = "operator names are spelt as the grammar does: a lower-case one is unknown",
     .root = {DENY_IF(EGRESS("stringnotequals", "'CUSTOMER_ROUTED'"))},
     .want = "UUUU",
     .reason = "unknown operator stringnotequals"},
    {.rule = "a key the scanner has no value for (aws:RequestTag/env): unevaluable",
     .root = {DENY_AR("'Action':'eks:*'", "{'StringEquals':{'aws:RequestTag/env':'prod'}}")},
     .want = "UUUU",
     .reason = "condition key aws:RequestTag/env is not evaluated"},
    {.rule = "conditions are ANDed: a false one decides over an unknown one",
     .root = {DENY_IF("{'StringEquals':{'eks:controlPlaneEgressMode':'AWS_MANAGED',"
                      "'aws:RequestTag/env':'prod'}}")},
     .want = "UAAA"},
    {.rule = "context key names are case-insensitive",
     .root = {DENY_IF("{'StringNotEquals':{'EKS:ControlPlaneEgressMode':'CUSTOMER_ROUTED'}}")},
     .want = "DADD",
     .restricts = R_YES},

    /* ---- aws:RequestedRegion ---- */
    {.rule = "Deny outside eu-* (StringNotLike aws:RequestedRegion): eu-west-1 allowed",
     .root = {DENY_AR("'Action':'eks:*','Resource':'*'",
                      "{'StringNotLike':{'aws:RequestedRegion':'eu-*'}}")},
     .want = "AAAA",
     .restricts = R_NO},
    {.rule = "Deny outside eu-*: us-east-1 denied",
     .root = {DENY_AR("'Action':'eks:*','Resource':'*'",
                      "{'StringNotLike':{'aws:RequestedRegion':'eu-*'}}")},
     .region = "us-east-1",
     .want = "DDDD",
     .stmt = "p-root1#S1"},

    /* ---- Action / NotAction ---- */
    {.rule = "NotAction: applies to every action not listed",
     .root = {DENY_AR("'NotAction':['eks:Describe*','eks:List*'],'Resource':'*'", NOT_ROUTED)},
     .want = "DADD",
     .restricts = R_YES},
    {.rule = "NotAction eks:*: the Deny does not apply to EKS at all",
     .root = {DENY_AR("'NotAction':'eks:*'", NOT_ROUTED)},
     .want = "AAAA",
     .restricts = R_NO},
    {.rule = "action wildcards are case-insensitive",
     .root = {DENY_AR("'Action':'EKS:create*'", NOT_ROUTED)},
     .want = "DADD"},
    {.rule = "action ? wildcard",
     .root = {DENY_AR("'Action':'eks:Cre?teCl*'", NOT_ROUTED)},
     .want = "DADD"},
    {.rule = "another service's actions do not match",
     .root = {DENY_AR("'Action':'ec2:*'", NOT_ROUTED)},
     .want = "AAAA",
     .restricts = R_NO},

    /* ---- Resource / NotResource: a cluster action (UpdateClusterConfig acts on the cluster's
     * ARN; Service Authorization Reference) ---- */
    {.rule = "Resource arn:aws:eks:*:*:cluster/* covers every cluster",
     .action = "eks:UpdateClusterConfig",
     .root = {DENY_AR("'Action':" EKS2 ",'Resource':'arn:aws:eks:*:*:cluster/*'", NOT_ROUTED)},
     .want = "DADD"},
    {.rule = "name-limited Deny (cluster/prod-*) leaves a gap: not counted",
     .action = "eks:UpdateClusterConfig",
     .root = {DENY_AR("'Action':" EKS2 ",'Resource':'arn:aws:eks:*:*:cluster/prod-*'", NOT_ROUTED)},
     .want = "AAAA",
     .restricts = R_YES,
     .reason = "p-root1#S1 would deny it but its Resource covers only some cluster names"},
    {.rule = "a Deny for one named cluster leaves a gap",
     .action = "eks:UpdateClusterConfig",
     .root = {DENY_AR("'Action':" EKS2
                      ",'Resource':['arn:aws:eks:*:*:cluster/legacy','arn:aws:eks:*:*:cluster/?']",
                      NOT_ROUTED)},
     .want = "AAAA"},
    {.rule = "another account's clusters: the Deny does not apply",
     .action = "eks:UpdateClusterConfig",
     .root = {DENY_AR("'Action':" EKS2 ",'Resource':'arn:aws:eks:*:999999999999:cluster/*'",
                      NOT_ROUTED)},
     .want = "AAAA"},
    {.rule = "another region's clusters: the Deny does not apply",
     .action = "eks:UpdateClusterConfig",
     .root = {DENY_AR("'Action':" EKS2 ",'Resource':'arn:aws:eks:us-east-1:*:cluster/*'",
                      NOT_ROUTED)},
     .want = "AAAA"},
    {.rule = "this account and region named explicitly",
     .action = "eks:UpdateClusterConfig",
     .root = {DENY_AR("'Action':" EKS2 ",'Resource':'arn:aws:eks:eu-west-1:111122223333:cluster/*'",
                      NOT_ROUTED)},
     .want = "DADD"},
    {.rule = "a * ending a segment expands beyond the colons (arn:aws:eks:*)",
     .action = "eks:UpdateClusterConfig",
     .root = {DENY_AR("'Action':" EKS2 ",'Resource':'arn:aws:eks:*'", NOT_ROUTED)},
     .want = "DADD"},
    {.rule = "? wildcards in the region and ?* covering every (non-empty) name",
     .action = "eks:UpdateClusterConfig",
     .root = {DENY_AR("'Action':" EKS2
                      ",'Resource':'arn:aws:eks:eu-west-?:111122223333:cluster/?*'",
                      NOT_ROUTED)},
     .want = "DADD"},
    {.rule = "another partition's ARN does not match",
     .action = "eks:UpdateClusterConfig",
     .root = {DENY_AR("'Action':" EKS2 ",'Resource':'arn:aws-cn:eks:*:*:cluster/*'", NOT_ROUTED)},
     .want = "AAAA"},
    {.rule = "resource matching is case-sensitive",
     .action = "eks:UpdateClusterConfig",
     .root = {DENY_AR("'Action':" EKS2 ",'Resource':'arn:aws:EKS:*:*:cluster/*'", NOT_ROUTED)},
     .want = "AAAA"},
    {.rule = "NotResource naming other services: covers every cluster",
     .action = "eks:UpdateClusterConfig",
     .root = {DENY_AR("'Action':" EKS2 ",'NotResource':['arn:aws:s3:::*','arn:aws:iam::*:role/*']",
                      NOT_ROUTED)},
     .want = "DADD"},
    {.rule = "NotResource excluding one cluster: a gap for that name, not counted",
     .action = "eks:UpdateClusterConfig",
     .root = {DENY_AR("'Action':" EKS2 ",'NotResource':'arn:aws:eks:*:*:cluster/legacy'",
                      NOT_ROUTED)},
     .want = "AAAA"},
    {.rule = "NotResource *: covers nothing",
     .action = "eks:UpdateClusterConfig",
     .root = {DENY_AR("'Action':" EKS2 ",'NotResource':'*'", NOT_ROUTED)},
     .want = "AAAA"},
    {.rule = "a policy variable in the cluster name: one name per principal, never every name",
     .action = "eks:UpdateClusterConfig",
     .root = {DENY_AR("'Action':" EKS2 ",'Resource':'arn:aws:eks:*:*:cluster/${aws:username}'",
                      NOT_ROUTED)},
     .want = "AAAA"},
    {.rule = "a policy variable in the account segment: unevaluable",
     .action = "eks:UpdateClusterConfig",
     .root = {DENY_AR("'Action':" EKS2
                      ",'Resource':'arn:aws:eks:*:${aws:PrincipalAccount}:cluster/*'",
                      NOT_ROUTED)},
     .want = "UAUU",
     .reason = "policy variable ${aws:PrincipalAccount} in Resource"},

    /* ---- Resource / NotResource: CreateCluster has no resource type (Service Authorization
     * Reference: "you must specify all resources (*)"), so IAM matches it against "*" ---- */
    {.rule = "CreateCluster: a Deny on cluster ARNs does not apply (issue 14, class 1)",
     .root = {"{'Statement':[{'Sid':'S1','Effect':'Deny','Action':['eks:CreateCluster',"
              "'eks:UpdateClusterConfig'],'Resource':'arn:aws:eks:*:*:cluster/*','Condition':"
              "{'StringNotEquals':{'eks:controlPlaneEgressMode':'CUSTOMER_ROUTED'}}}]}"},
     .want = "AAAA",
     .restricts = R_YES,
     .stmt = "p-FullAWSAccess#0"},
    {.rule = "CreateCluster: the same Deny on Resource * applies",
     .root = {DENY_AR("'Action':['eks:CreateCluster','eks:UpdateClusterConfig'],'Resource':'*'",
                      NOT_ROUTED)},
     .want = "DADD",
     .stmt = "p-root1#S1"},
    {.rule = "CreateCluster: Resource arn:aws:eks:* does not match \"*\"",
     .root = {DENY_AR("'Action':" EKS2 ",'Resource':'arn:aws:eks:*'", NOT_ROUTED)},
     .want = "AAAA"},
    {.rule = "CreateCluster: a NotResource naming cluster ARNs applies to \"*\"",
     .root = {DENY_AR("'Action':" EKS2 ",'NotResource':'arn:aws:eks:*:*:cluster/legacy'",
                      NOT_ROUTED)},
     .want = "DADD"},
    {.rule = "CreateCluster: an account Allow on cluster ARNs only allows nothing (issue 14, "
             "class 1, reversed)",
     .acct = {ALLOW("'Action':'eks:*','Resource':'arn:aws:eks:*:*:cluster/*'")},
     .nofull = NOFULL_ACCT,
     .want = "DDDD",
     .stmt = "no Allow at " ACCOUNT},
    {.rule = "CreateCluster: a policy variable in a cluster ARN Resource does not matter",
     .root = {DENY_AR("'Action':" EKS2
                      ",'Resource':'arn:aws:eks:*:${aws:PrincipalAccount}:cluster/*'",
                      NOT_ROUTED)},
     .want = "AAAA"},

    /* ---- every level needs an Allow (allow-list strategies) ---- */
    {.rule = "allow-list: an OU allowing only ec2:* denies CreateCluster",
     .ou = {ALLOW("'Action':'ec2:*','Resource':'*'")},
     .nofull = NOFULL_OU,
     .want = "DDDD",
     .restricts = R_NO,
     .stmt = "no Allow at " OU_ID},
    {.rule = "allow-list: eks:* allowed at every level",
     .root = {ALLOW("'Action':'eks:*','Resource':'*'")},
     .ou = {ALLOW("'Action':['ec2:*','eks:*']")},
     .acct = {ALLOW("'Action':'eks:*','Resource':'*'")},
     .nofull = NOFULL_ROOT | NOFULL_OU | NOFULL_ACCT,
     .want = "AAAA",
     .stmt = "p-ou1#A1"},
    {.rule = "allow-list conditioned on the mode: only CUSTOMER_ROUTED is allowed at the OU",
     .ou = {ALLOW("'Action':'eks:*','Resource':'*','Condition':" EGRESS("StringEquals",
                                                                        "'CUSTOMER_ROUTED'"))},
     .nofull = NOFULL_OU,
     .want = "DADD",
     .restricts = R_YES,
     .stmt = "no Allow at " OU_ID},
    /* AWS requires an SCP on every node; a level given without one allows nothing. */
    {.rule = "a level with no SCP attached allows nothing",
     .nofull = NOFULL_ACCT,
     .want = "DDDD",
     .stmt = "no Allow at " ACCOUNT},
    {.rule = "an Allow covering some cluster names counts",
     .action = "eks:UpdateClusterConfig",
     .ou = {ALLOW("'Action':'eks:*','Resource':'arn:aws:eks:*:*:cluster/dev-*'")},
     .nofull = NOFULL_OU,
     .want = "AAAA"},
    {.rule = "an Allow for another account's clusters does not count",
     .action = "eks:UpdateClusterConfig",
     .ou = {ALLOW("'Action':'eks:*','Resource':'arn:aws:eks:*:999999999999:cluster/*'")},
     .nofull = NOFULL_OU,
     .want = "DDDD"},
    {.rule = "several documents on one level: the second one's Allow counts",
     .ou = {ALLOW("'Action':'ec2:*'"), ALLOW("'Action':'eks:*'")},
     .nofull = NOFULL_OU,
     .want = "AAAA",
     .stmt = "p-ou2#A1"},
    {.rule = "several documents on one level: a Deny in the second one counts",
     .root = {ALLOW("'Action':'s3:*'"), OFFICIAL},
     .want = "DADD",
     .stmt = "p-root2#S1"},
    {.rule = "an Allow for everyone wins over one for some principals on the same level",
     .ou = {ALLOW(
                "'Action':'eks:*','Condition':{'ArnLike':{'aws:PrincipalArn':'arn:aws:iam::*:role/"
                "X'}}"),
            ALLOW("'Action':'eks:*'")},
     .nofull = NOFULL_OU,
     .want = "AAAA"},

    /* ---- malformed documents: unevaluable, naming the policy; certain denials still hold ---- */
    {.rule = "malformed: Statement is a number",
     .root = {"{" V "'Statement':3}"},
     .want = "UUUU",
     .stmt = "p-root1",
     .reason = "policy p-root1 is malformed: Statement must be an object or an array"},
    {.rule = "malformed: Effect Maybe",
     .ou = {"{'Statement':{'Effect':'Maybe','Action':'*','Resource':'*'}}"},
     .want = "UUUU",
     .reason = "p-ou1 is malformed: Statement[0]: Effect must be \"Allow\" or \"Deny\" (got "
               "\"Maybe\")"},
    {.rule = "malformed: Principal in an SCP",
     .acct = {"{" V "'Statement':[{'Effect':'Deny','Principal':'*','Action':'eks:*'}]}"},
     .want = "UUUU",
     .reason = "p-acct1 is malformed: Statement[0]: Principal is not allowed in an SCP"},
    {.rule = "malformed: duplicate keys (which one IAM reads is not guessed)",
     .root = {"{" V "'Statement':{'Effect':'Deny','Action':'eks:*','Action':'s3:*'}}"},
     .want = "UUUU",
     .reason = "duplicate"},
    {.rule = "a malformed document does not undo a Deny that holds for everyone",
     .root = {OFFICIAL},
     .acct = {"{" V "'Statement':[{'Effect':'Allow','Action':'*','Resource':'*'"},
     .want = "DUDD",
     .check = EGRESS_CUSTOMER_ROUTED,
     .reason = "p-acct1 is malformed: line 1"},
    {.rule = "an unknown Deny does not undo a level that allows nothing",
     .root = {DENY_IF(EGRESS("NumericFoo", "'1'"))},
     .ou = {ALLOW("'Action':'ec2:*'")},
     .nofull = NOFULL_OU,
     .want = "DDDD",
     .stmt = "no Allow at " OU_ID},
    {.rule = "unknown beats principal-dependent: the unknown Deny is listed and gives the reason",
     .root = {DENY_AR("'Action':'eks:*'",
                      "{'ArnNotLike':{'aws:PrincipalArn':'arn:aws:iam::*:*'}}")},
     .acct = {DENY_AR("'Action':'eks:*'", "{'StringEquals':{'aws:CurrentTime':'x'}}")},
     .want = "UUUU",
     .stmt = "p-acct1#S1",
     .reason = "aws:CurrentTime"},

    /* ---- document shapes and statement ids ---- */
    {.rule = "Statement as a single object; a statement without Sid is named by its index",
     .root = {"{'Statement':{'Effect':'Deny','Action':" EKS2 ",'Condition':" NOT_ROUTED "}}"},
     .want = "DADD",
     .stmt = "p-root1#0"},
    {.rule = "the second statement without Sid is #1",
     .acct = {"{" V "'Statement':[{'Effect':'Allow','Action':'*'},{'Effect':'Deny','Action':"
              "'eks:*','Condition':" NOT_ROUTED "}]}"},
     .want = "DADD",
     .stmt = "p-acct1#1"},
    /* Policy variables (Version 2012-10-17) in condition values; literal under 2008-10-17. */
    {.rule = "a principal policy variable as the value: principal-dependent",
     .root = {DENY_IF(EGRESS("StringNotEquals", "'${aws:PrincipalTag/egress-mode}'"))},
     .want = "PPPD",
     .reason = "StringNotEquals eks:controlPlaneEgressMode ${aws:PrincipalTag/egress-mode}"},
    {.rule = "under Version 2008-10-17 ${...} is literal text",
     .root = {"{'Version':'2008-10-17','Statement':{'Effect':'Deny','Action':'eks:*','Condition'"
              ":" EGRESS("StringNotEquals", "'${aws:PrincipalTag/egress-mode}'") "}}"},
     .want = "DDDD"},
    {.rule = "${*} is a literal *, not a wildcard",
     .root = {DENY_IF(EGRESS("StringLike", "'CUSTOMER_${*}'"))},
     .want = "AAAA"},
};

/* Converts a single-quoted policy into JSON (returns a static buffer: one at a time). */
static const char *sq(const char *s)
{
    static char buf[4096];
    size_t n = strlen(s);
    assert_true(n < sizeof buf);
    for (size_t i = 0; i <= n; i++)
        buf[i] = s[i] == '\'' ? '"' : s[i];
    return buf;
}

static struct scp_doc *parse_sq(const char *id, const char *policy)
{
    const char *json = sq(policy);
    struct scp_doc *d = scp_doc_parse(id, json, strlen(json));
    assert_non_null(d);
    return d;
}

struct built {
    struct scp_doc *docs[3][4];
    const struct scp_doc *views[3][4];
    size_t n[3];
    struct scp_level levels[3];
};

static void build_levels(const struct scp_case *c, struct scp_doc *full, struct built *b)
{
    static const char *const names[3] = {"root", "ou", "acct"};
    static const char *const ids[3] = {ROOT_ID, OU_ID, ACCOUNT};
    const char *const *lists[3] = {c->root, c->ou, c->acct};
    memset(b, 0, sizeof *b);
    for (int l = 0; l < 3; l++) {
        if (!(c->nofull & (1u << l)))
            b->views[l][b->n[l]++] = full;
        for (int i = 0; i < 3 && lists[l][i]; i++) {
            char id[32];
            snprintf(id, sizeof id, "p-%s%d", names[l], i + 1);
            b->docs[l][i] = parse_sq(id, lists[l][i]);
            b->views[l][b->n[l]++] = b->docs[l][i];
        }
        b->levels[l] =
            (struct scp_level){.target_id = ids[l], .docs = b->views[l], .n_docs = b->n[l]};
    }
}

static void free_levels(struct built *b)
{
    for (int l = 0; l < 3; l++)
        for (int i = 0; i < 4; i++)
            scp_doc_free(b->docs[l][i]);
}

static enum scp_verdict letter_verdict(char c)
{
    switch (c) {
    case 'A':
        return SCP_ALLOWED;
    case 'D':
        return SCP_DENIED;
    case 'P':
        return SCP_PRINCIPAL_DEPENDENT;
    default:
        return SCP_UNEVALUABLE;
    }
}

static int has_statement(const struct scp_decision *d, const char *want)
{
    for (size_t i = 0; i < d->n_statements; i++)
        if (strcmp(d->statements[i], want) == 0)
            return 1;
    return 0;
}

static void print_decision(const struct scp_decision *d)
{
    print_message("    verdict %s, restricts_mode %d, reason \"%s\", statements:",
                  scp_verdict_name(d->verdict), d->restricts_mode, d->reason);
    for (size_t i = 0; i < d->n_statements; i++)
        print_message(" \"%s\"", d->statements[i]);
    print_message("\n");
}

static void test_table(void **state)
{
    (void)state;
    struct scp_doc *full = parse_sq("p-FullAWSAccess", FULL);
    assert_null(scp_doc_error(full));
    int failures = 0;
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const struct scp_case *c = &cases[i];
        assert_int_equal(strlen(c->want), EGRESS_MODES);
        struct built b;
        build_levels(c, full, &b);
        for (int m = 0; m < EGRESS_MODES; m++) {
            struct scp_request req = {.action = c->action ? c->action : "eks:CreateCluster",
                                      .account_id = ACCOUNT,
                                      .region = c->region ? c->region : "eu-west-1",
                                      .mode = (enum egress_mode)m};
            struct scp_decision d;
            scp_evaluate(b.levels, 3, &req, NULL, &d);
            const char *problem = NULL;
            if (d.verdict != letter_verdict(c->want[m]))
                problem = "verdict";
            else if (c->restricts && d.restricts_mode != (c->restricts == R_YES))
                problem = "restricts_mode";
            else if (m == (int)c->check && c->stmt && !has_statement(&d, c->stmt))
                problem = "statements";
            else if (m == (int)c->check && c->reason && !strstr(d.reason, c->reason))
                problem = "reason";
            if (problem) {
                print_message("case %zu (%s), mode %s: wrong %s (want %c)\n", i, c->rule,
                              egress_mode_name((enum egress_mode)m), problem, c->want[m]);
                print_decision(&d);
                failures++;
            }
        }
        free_levels(&b);
    }
    scp_doc_free(full);
    print_message("%zu cases x %d modes\n", sizeof cases / sizeof cases[0], EGRESS_MODES);
    assert_int_equal(failures, 0);
}

static void test_verdict_names(void **state)
{
    (void)state;
    assert_string_equal(scp_verdict_name(SCP_ALLOWED), "allowed");
    assert_string_equal(scp_verdict_name(SCP_DENIED), "denied");
    assert_string_equal(scp_verdict_name(SCP_PRINCIPAL_DEPENDENT), "principal-dependent");
    assert_string_equal(scp_verdict_name(SCP_UNEVALUABLE), "unevaluable");
    assert_string_equal(scp_verdict_name((enum scp_verdict)42), "unknown");
}

static void test_doc_id_and_error(void **state)
{
    (void)state;
    struct scp_doc *d = parse_sq("p-abcd1234", FULL);
    assert_string_equal(scp_doc_id(d), "p-abcd1234");
    assert_null(scp_doc_error(d));
    scp_doc_free(d);
    scp_doc_free(NULL);
    assert_non_null(scp_doc_error(NULL));

    /* A JSON syntax error names line and column. */
    const char *bad = "{\n  \"Statement\": [\n    {\"Effect\": \"Deny\",}\n  ]\n}";
    d = scp_doc_parse("p-syntax", bad, strlen(bad));
    assert_non_null(d);
    assert_string_equal(scp_doc_id(d), "p-syntax");
    assert_non_null(scp_doc_error(d));
    assert_non_null(strstr(scp_doc_error(d), "line 3"));
    scp_doc_free(d);

    /* Only len bytes are read. */
    const char *text = "{\"Statement\":{\"Effect\":\"Allow\",\"Action\":\"*\"}}garbage";
    d = scp_doc_parse("p-len", text, strlen(text) - strlen("garbage"));
    assert_null(scp_doc_error(d));
    scp_doc_free(d);

    d = scp_doc_parse("p-null", NULL, 0);
    assert_non_null(d);
    assert_non_null(scp_doc_error(d));
    scp_doc_free(d);
}

/* The grammar's constraints (Grammar of the IAM JSON policy language; SCP syntax). */
static void test_malformed_messages(void **state)
{
    (void)state;
    static const struct {
        const char *policy, *message;
    } bad[] = {
        {"3", "the policy must be a JSON object"},
        {"{" V "'Statement':'x'}", "Statement must be an object or an array"},
        {"{" V "'Statement':[3]}", "Statement[0] must be an object"},
        {"{'Version':'2012-10-18','Statement':[]}", "Version must be"},
        {"{'Version':'2012-10-17'}", "Statement is missing"},
        {"{" V "'Statement':[],'Extra':1}", "unknown top-level element \"Extra\""},
        {"{'Id':5,'Statement':[]}", "Id must be a string"},
        {"{'Statement':[{'Action':'*'}]}", "Statement[0]: Effect is missing"},
        {"{'Statement':[{'Effect':'allow','Action':'*'}]}", "(got \"allow\")"},
        {"{'Statement':[{'Effect':true,'Action':'*'}]}", "Effect must be"},
        {"{'Statement':[{'Effect':'Deny','NotPrincipal':{'AWS':'*'},'Action':'*'}]}",
         "NotPrincipal is not allowed in an SCP"},
        {"{'Statement':[{'Effect':'Deny'}]}", "exactly one of Action and NotAction"},
        {"{'Statement':[{'Effect':'Deny','Action':'*','NotAction':'s3:*'}]}",
         "exactly one of Action and NotAction"},
        {"{'Statement':[{'Effect':'Deny','Action':[]}]}", "Action must be a string or a non-empty"},
        {"{'Statement':[{'Effect':'Deny','Action':['eks:*',1]}]}", "Action must contain only"},
        {"{'Statement':[{'Effect':'Deny','Action':'*','Resource':'*','NotResource':'*'}]}",
         "Resource and NotResource are exclusive"},
        {"{'Statement':[{'Effect':'Deny','Action':'*','Resource':{}}]}", "Resource must be"},
        {"{'Statement':[{'Effect':'Deny','Action':'*','Condition':[]}]}",
         "Condition must be an object"},
        {"{'Statement':[{'Effect':'Deny','Action':'*','Condition':{'StringEquals':'x'}}]}",
         "Condition StringEquals must map keys to values"},
        {"{'Statement':[{'Effect':'Deny','Action':'*','Condition':{'StringEquals':{'k':{}}}}]}",
         "values must be strings, numbers or booleans"},
        {"{'Statement':[{'Effect':'Deny','Action':'*','Condition':{'StringEquals':{'k':[]}}}]}",
         "has no value"},
        {"{'Statement':[{'Effect':'Deny','Action':'*','Condition':{'Null':{'k':[null]}}}]}",
         "values must be strings"},
        {"{'Statement':[{'Sid':1,'Effect':'Deny','Action':'*'}]}", "Sid must be a string"},
        {"{'Statement':[{'Effect':'Deny','Action':'*','Actions':'*'}]}",
         "unknown element \"Actions\""},
    };
    /* Resource patterns are bounded (an SCP is at most 5,120 characters). */
    char longres[3000] =
        "{'Statement':{'Effect':'Deny','Action':'*','Resource':'arn:aws:eks:*:*:cluster/";
    size_t at = strlen(longres);
    memset(longres + at, 'x', 2100);
    strcpy(longres + at + 2100, "'}}");
    struct scp_doc *d = parse_sq("p-long", longres);
    assert_non_null(strstr(scp_doc_error(d), "Statement[0]: Resource longer than 2048 characters"));
    scp_doc_free(d);

    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        d = parse_sq("p-bad", bad[i].policy);
        const char *e = scp_doc_error(d);
        if (!e || !strstr(e, bad[i].message))
            fail_msg("%s: error \"%s\", want \"%s\"", bad[i].policy, e ? e : "(none)",
                     bad[i].message);
        scp_doc_free(d);
    }
}

static void evaluate_one(const struct scp_doc *root_doc, const struct scp_doc *acct_doc,
                         const char *partition, const struct scp_request *req,
                         struct scp_decision *out)
{
    const struct scp_doc *root_docs[] = {root_doc};
    const struct scp_doc *acct_docs[] = {acct_doc};
    struct scp_level levels[] = {
        {.target_id = ROOT_ID, .docs = root_docs, .n_docs = 1},
        {.target_id = ACCOUNT, .docs = acct_docs, .n_docs = 1},
    };
    scp_evaluate(levels, 2, req, partition, out);
}

/* Allowed: the deciding Allow of each level, root first. */
static void test_allowed_lists_allow_per_level(void **state)
{
    (void)state;
    struct scp_doc *root = parse_sq("p-root", ALLOW("'Action':'eks:*'"));
    struct scp_doc *acct =
        parse_sq("p-acct", "{'Statement':[{'Sid':'Ec2','Effect':'Allow','Action':'ec2:*'},"
                           "{'Sid':'Eks','Effect':'Allow','Action':'eks:Create*'}]}");
    struct scp_request req = {"eks:CreateCluster", ACCOUNT, "eu-west-1", EGRESS_AWS_MANAGED, NULL};
    struct scp_decision d;
    evaluate_one(root, acct, NULL, &req, &d);
    assert_int_equal(d.verdict, SCP_ALLOWED);
    assert_int_equal(d.n_statements, 2);
    assert_string_equal(d.statements[0], "p-root#A1");
    assert_string_equal(d.statements[1], "p-acct#Eks");
    assert_string_equal(d.reason, "");
    assert_int_equal(d.restricts_mode, 0);

    /* DescribeCluster is allowed at the root but not at the account. */
    req.action = "eks:DescribeCluster";
    evaluate_one(root, acct, NULL, &req, &d);
    assert_int_equal(d.verdict, SCP_DENIED);
    assert_int_equal(d.n_statements, 1);
    assert_string_equal(d.statements[0], "no Allow at " ACCOUNT);
    scp_doc_free(root);
    scp_doc_free(acct);
}

/* Denied: every matching Deny, then every level without an Allow; at most SCP_MAX_STATEMENTS. */
static void test_statement_list_is_bounded(void **state)
{
    (void)state;
    char policy[2048] = "{'Statement':[";
    for (int i = 0; i < 12; i++) {
        char st[96];
        snprintf(st, sizeof st, "%s{'Sid':'D%d','Effect':'Deny','Action':'eks:*'}", i ? "," : "",
                 i);
        strcat(policy, st);
    }
    strcat(policy, "]}");
    struct scp_doc *full = parse_sq("p-full", FULL);
    struct scp_doc *deny = parse_sq("p-many", policy);
    assert_null(scp_doc_error(deny));
    struct scp_request req = {"eks:CreateCluster", ACCOUNT, "eu-west-1", EGRESS_CUSTOMER_ROUTED,
                              NULL};
    struct scp_decision d;
    evaluate_one(full, deny, NULL, &req, &d);
    assert_int_equal(d.verdict, SCP_DENIED);
    assert_int_equal(d.n_statements, SCP_MAX_STATEMENTS);
    assert_string_equal(d.statements[0], "p-many#D0");
    assert_string_equal(d.statements[SCP_MAX_STATEMENTS - 1], "p-many#D7");

    /* A long policy id and Sid are cut to fit, still terminated. */
    char longid[200];
    memset(longid, 'x', sizeof longid - 1);
    longid[sizeof longid - 1] = '\0';
    struct scp_doc *lng = parse_sq(longid, "{'Statement':{'Effect':'Deny','Action':'*'}}");
    evaluate_one(full, lng, NULL, &req, &d);
    assert_int_equal(d.verdict, SCP_DENIED);
    assert_int_equal(strlen(d.statements[0]), sizeof d.statements[0] - 1);
    scp_doc_free(full);
    scp_doc_free(deny);
    scp_doc_free(lng);
}

/* Resources of another partition; the partition argument defaults to "aws". */
static void test_partition(void **state)
{
    (void)state;
    struct scp_doc *full = parse_sq("p-full", FULL);
    struct scp_doc *cn =
        parse_sq("p-cn", "{'Statement':[{'Effect':'Allow','Action':'*'},{'Sid':'S1','Effect':"
                         "'Deny','Action':'eks:*','Resource':'arn:aws-cn:eks:*:*:cluster/*',"
                         "'Condition':" NOT_ROUTED "}]}");
    struct scp_request req = {"eks:UpdateClusterConfig", ACCOUNT, "cn-north-1", EGRESS_AWS_MANAGED,
                              NULL};
    struct scp_decision d;
    evaluate_one(full, cn, NULL, &req, &d);
    assert_int_equal(d.verdict, SCP_ALLOWED);
    evaluate_one(full, cn, "aws-cn", &req, &d);
    assert_int_equal(d.verdict, SCP_DENIED);
    assert_string_equal(d.statements[0], "p-cn#S1");
    scp_doc_free(full);
    scp_doc_free(cn);
}

/* A request or path the evaluator cannot judge is reported, not guessed. */
static void test_bad_requests(void **state)
{
    (void)state;
    struct scp_doc *full = parse_sq("p-full", FULL);
    struct scp_decision d;
    struct scp_request req = {NULL, ACCOUNT, "eu-west-1", EGRESS_AWS_MANAGED, NULL};
    evaluate_one(full, full, NULL, &req, &d);
    assert_int_equal(d.verdict, SCP_UNEVALUABLE);
    assert_string_equal(d.reason, "incomplete request");
    req =
        (struct scp_request){"eks:CreateCluster", ACCOUNT, "eu-west-1", (enum egress_mode)9, NULL};
    evaluate_one(full, full, NULL, &req, &d);
    assert_int_equal(d.verdict, SCP_UNEVALUABLE);
    req.mode = EGRESS_OMITTED;
    scp_evaluate(NULL, 0, &req, NULL, &d);
    assert_int_equal(d.verdict, SCP_UNEVALUABLE);
    assert_string_equal(d.reason, "no SCP levels on the path");
    /* A NULL document on a level is treated like a malformed one. */
    const struct scp_doc *docs[] = {NULL};
    struct scp_level lv = {.target_id = ROOT_ID, .docs = docs, .n_docs = 1};
    scp_evaluate(&lv, 1, &req, NULL, &d);
    assert_int_equal(d.verdict, SCP_UNEVALUABLE);
    /* An action whose resource type the evaluator does not know: its request cannot be built. */
    req.action = "eks:DeleteCluster";
    evaluate_one(full, full, NULL, &req, &d);
    assert_int_equal(d.verdict, SCP_UNEVALUABLE);
    assert_non_null(strstr(d.reason, "resource type"));
    scp_doc_free(full);
}

/* ---- a named principal (aws:PrincipalArn) and the scanner's own calls ---- */

#define SCANNER "arn:aws:iam::111122223333:role/EgressScanReadOnly"
#define PLATFORM "arn:aws:iam::111122223333:role/Platform"

/* The verdict letter of action in region for principal (NULL: any) with FullAWSAccess on the
 * root and FullAWSAccess plus policy (id p-x) on the account. */
static char verdict_for(const char *policy, const char *action, const char *region,
                        const char *principal, struct scp_decision *d)
{
    struct scp_doc *full = parse_sq("p-full", FULL);
    struct scp_doc *x = parse_sq("p-x", policy);
    if (scp_doc_error(x))
        fail_msg("%s: %s", policy, scp_doc_error(x));
    const struct scp_doc *root_docs[] = {full};
    const struct scp_doc *acct_docs[] = {full, x};
    struct scp_level levels[] = {
        {.target_id = ROOT_ID, .docs = root_docs, .n_docs = 1},
        {.target_id = ACCOUNT, .docs = acct_docs, .n_docs = 2},
    };
    struct scp_request req = {.action = action,
                              .account_id = ACCOUNT,
                              .region = region,
                              .mode = EGRESS_OMITTED,
                              .principal_arn = principal};
    scp_evaluate(levels, 2, &req, NULL, d);
    scp_doc_free(full);
    scp_doc_free(x);
    static const char letters[] = "ADPU";
    return letters[d->verdict];
}

#define DENY_EKS_IF(cond)                                                                          \
    "{" V "'Statement':[{'Sid':'S1','Effect':'Deny','Action':'eks:*','Resource':'*',"              \
    "'Condition':" cond "}]}"

/* aws:PrincipalArn conditions are evaluated against a named principal (String*, Arn*, IfExists,
 * negations, Null); without one, or for other principal keys, the statement depends on the
 * principal, as before. */
static void test_principal_arn(void **state)
{
    (void)state;
    static const struct {
        const char *rule, *policy, *principal;
        char want;
        const char *reason; /* substring, NULL unchecked */
    } pcases[] = {
        {"ArnNotLike exemption, no principal named: principal-dependent",
         DENY_EKS_IF("{'ArnNotLike':{'aws:PrincipalArn':'arn:aws:iam::*:role/Platform'}}"), NULL,
         'P', "ArnNotLike aws:PrincipalArn arn:aws:iam::*:role/Platform in p-x#S1"},
        {"ArnNotLike exemption, the exempted role: allowed",
         DENY_EKS_IF("{'ArnNotLike':{'aws:PrincipalArn':'arn:aws:iam::*:role/Platform'}}"),
         PLATFORM, 'A', NULL},
        {"ArnNotLike exemption, another role: denied",
         DENY_EKS_IF("{'ArnNotLike':{'aws:PrincipalArn':'arn:aws:iam::*:role/Platform'}}"), SCANNER,
         'D', NULL},
        {"ArnNotLike with a list: exempt when any value matches (NOR)",
         DENY_EKS_IF("{'ArnNotLike':{'aws:PrincipalArn':['arn:aws:iam::*:role/Platform',"
                     "'arn:aws:iam::*:role/EgressScan*']}}"),
         SCANNER, 'A', NULL},
        {"ArnLike: the Deny hits the matching role only",
         DENY_EKS_IF("{'ArnLike':{'aws:PrincipalArn':'arn:aws:iam::*:role/Egress*'}}"), SCANNER,
         'D', NULL},
        {"ArnLike: another role escapes it",
         DENY_EKS_IF("{'ArnLike':{'aws:PrincipalArn':'arn:aws:iam::*:role/Egress*'}}"), PLATFORM,
         'A', NULL},
        {"ArnEquals knows wildcards too, per component",
         DENY_EKS_IF("{'ArnEquals':{'aws:PrincipalArn':'arn:aws:iam::1111*:role/?latform'}}"),
         PLATFORM, 'D', NULL},
        {"Arn*: components are matched one by one",
         DENY_EKS_IF("{'ArnLike':{'aws:PrincipalArn':'arn:aws:iam::*3333:role/*'}}"), SCANNER, 'D',
         NULL},
        {"Arn*: a * does not cross a colon",
         DENY_EKS_IF("{'ArnLike':{'aws:PrincipalArn':'arn:aws:iam:*:role/EgressScanReadOnly:*'}}"),
         SCANNER, 'A', NULL},
        {"StringLike: a * does",
         DENY_EKS_IF("{'StringLike':{'aws:PrincipalArn':'arn:aws:iam:*:role/EgressScanReadOnly'}}"),
         SCANNER, 'D', NULL},
        {"Arn*: an account that differs does not match",
         DENY_EKS_IF("{'ArnLike':{'aws:PrincipalArn':'arn:aws:iam::999999999999:role/*'}}"),
         SCANNER, 'A', NULL},
        {"Arn*: a value that is no ARN pattern cannot be evaluated",
         DENY_EKS_IF("{'ArnNotLike':{'aws:PrincipalArn':'arn:aws:iam::*'}}"), SCANNER, 'U',
         "not an ARN pattern"},
        {"StringLike over the whole ARN: * crosses colons",
         DENY_EKS_IF("{'StringLike':{'aws:PrincipalArn':'arn:aws:*/EgressScanReadOnly'}}"), SCANNER,
         'D', NULL},
        {"StringEquals is case-sensitive",
         DENY_EKS_IF("{'StringEquals':{'aws:PrincipalArn':'ARN:AWS:IAM::111122223333:ROLE/"
                     "EGRESSSCANREADONLY'}}"),
         SCANNER, 'A', NULL},
        {"StringEqualsIgnoreCase is not",
         DENY_EKS_IF("{'StringEqualsIgnoreCase':{'aws:PrincipalArn':'ARN:AWS:IAM::111122223333:"
                     "ROLE/EGRESSSCANREADONLY'}}"),
         SCANNER, 'D', NULL},
        {"StringNotLikeIfExists: the key is present, evaluated as StringNotLike",
         DENY_EKS_IF("{'StringNotLikeIfExists':{'aws:PrincipalArn':'arn:aws:iam::*:role/Plat*'}}"),
         PLATFORM, 'A', NULL},
        {"StringNotLikeIfExists: another role is denied",
         DENY_EKS_IF("{'StringNotLikeIfExists':{'aws:PrincipalArn':'arn:aws:iam::*:role/Plat*'}}"),
         SCANNER, 'D', NULL},
        {"ArnNotLikeIfExists without a principal: principal-dependent",
         DENY_EKS_IF("{'ArnNotLikeIfExists':{'aws:PrincipalArn':'arn:aws:iam::*:role/Plat*'}}"),
         NULL, 'P', NULL},
        {"Null true: the key is present, so false",
         DENY_EKS_IF("{'Null':{'aws:PrincipalArn':'true'}}"), SCANNER, 'A', NULL},
        {"Null false: true", DENY_EKS_IF("{'Null':{'aws:PrincipalArn':'false'}}"), SCANNER, 'D',
         NULL},
        {"another operator on aws:PrincipalArn stays principal-dependent",
         DENY_EKS_IF("{'Bool':{'aws:PrincipalArn':'true'}}"), SCANNER, 'P', NULL},
        {"other principal keys stay principal-dependent",
         DENY_EKS_IF("{'StringNotEquals':{'aws:PrincipalTag/team':'platform'}}"), SCANNER, 'P',
         "aws:PrincipalTag/team"},
        {"an exempted role escapes a Deny that also names another principal key",
         DENY_EKS_IF("{'ArnNotLike':{'aws:PrincipalArn':'arn:aws:iam::*:role/Platform'},"
                     "'StringNotEquals':{'aws:PrincipalTag/team':'platform'}}"),
         PLATFORM, 'A', NULL},
        {"a role the exemption misses still depends on its tags",
         DENY_EKS_IF("{'ArnNotLike':{'aws:PrincipalArn':'arn:aws:iam::*:role/Platform'},"
                     "'StringNotEquals':{'aws:PrincipalTag/team':'platform'}}"),
         SCANNER, 'P', "aws:PrincipalTag/team"},
        {"a principal policy variable in the value stays principal-dependent",
         DENY_EKS_IF("{'ArnNotLike':{'aws:PrincipalArn':'arn:aws:iam::${aws:PrincipalAccount}:"
                     "role/Platform'}}"),
         SCANNER, 'P', NULL},
        {"a Deny of everything for all but one role: allowed for it",
         "{" V "'Statement':[{'Sid':'D1','Effect':'Deny','NotAction':'s3:*','Resource':'*',"
         "'Condition':{'ArnNotEquals':{'aws:PrincipalArn':'" SCANNER "'}}}]}",
         SCANNER, 'A', NULL},
    };
    int failures = 0;
    for (size_t i = 0; i < sizeof pcases / sizeof pcases[0]; i++) {
        struct scp_decision d;
        char got =
            verdict_for(pcases[i].policy, "eks:ListClusters", "eu-west-1", pcases[i].principal, &d);
        if (got != pcases[i].want || (pcases[i].reason && !strstr(d.reason, pcases[i].reason))) {
            print_message("case %zu (%s): %c, want %c\n", i, pcases[i].rule, got, pcases[i].want);
            print_decision(&d);
            failures++;
        }
        /* the same statement decides CreateCluster the same way for that principal */
        char create = verdict_for(pcases[i].policy, "eks:CreateCluster", "eu-west-1",
                                  pcases[i].principal, &d);
        if (create != pcases[i].want) {
            print_message("case %zu (%s), CreateCluster: %c, want %c\n", i, pcases[i].rule, create,
                          pcases[i].want);
            failures++;
        }
    }
    assert_int_equal(failures, 0);
}

/* Control Tower's region deny (GRREGIONDENY shape): everything but global services outside the
 * allowed regions, with its own execution role exempt. */
#define REGION_DENY(exempt)                                                                        \
    "{" V "'Statement':[{'Sid':'DenyOutsideRegions','Effect':'Deny','NotAction':['iam:*',"         \
    "'sts:*','organizations:*','support:*','cloudfront:*','route53:*'],'Resource':'*',"            \
    "'Condition':{'StringNotEquals':{'aws:RequestedRegion':['us-east-1','eu-west-1']},"            \
    "'ArnNotLike':{'aws:PrincipalArn':[" exempt "]}}}]}"
#define CT_ROLE "'arn:aws:iam::*:role/AWSControlTowerExecution'"

/* eks:ListClusters has no resource type: it is a request on "*". A Deny with Resource "*" or
 * whose NotAction list leaves eks out matches it; a Resource naming clusters does not. */
static void test_list_clusters(void **state)
{
    (void)state;
    struct scp_decision d;
    assert_int_equal(
        verdict_for(REGION_DENY(CT_ROLE), "eks:ListClusters", "ap-south-1", SCANNER, &d), 'D');
    assert_int_equal(d.n_statements, 1);
    assert_string_equal(d.statements[0], "p-x#DenyOutsideRegions");
    assert_int_equal(
        verdict_for(REGION_DENY(CT_ROLE), "eks:ListClusters", "eu-west-1", SCANNER, &d), 'A');
    /* without a principal the exemption makes it principal-dependent */
    assert_int_equal(verdict_for(REGION_DENY(CT_ROLE), "eks:ListClusters", "ap-south-1", NULL, &d),
                     'P');
    /* the Control Tower role itself, and a scanner role exempted the same way, get through */
    assert_int_equal(verdict_for(REGION_DENY(CT_ROLE), "eks:ListClusters", "ap-south-1",
                                 "arn:aws:iam::111122223333:role/AWSControlTowerExecution", &d),
                     'A');
    assert_int_equal(verdict_for(REGION_DENY(CT_ROLE ",'arn:aws:iam::*:role/EgressScanReadOnly'"),
                                 "eks:ListClusters", "ap-south-1", SCANNER, &d),
                     'A');
    /* NotAction that lists eks: the Deny does not apply */
    assert_int_equal(verdict_for("{'Statement':[{'Sid':'N','Effect':'Deny','NotAction':'eks:*',"
                                 "'Resource':'*'}]}",
                                 "eks:ListClusters", "ap-south-1", SCANNER, &d),
                     'A');
    /* a Deny on cluster ARNs does not reach ListClusters (resource "*") ... */
    const char *on_clusters = "{'Statement':[{'Sid':'C','Effect':'Deny','Action':'eks:*',"
                              "'Resource':'arn:aws:eks:*:*:cluster/*'}]}";
    assert_int_equal(verdict_for(on_clusters, "eks:ListClusters", "ap-south-1", SCANNER, &d), 'A');
    /* ... nor CreateCluster (no resource type either), while UpdateClusterConfig acts on one */
    assert_int_equal(verdict_for(on_clusters, "eks:CreateCluster", "ap-south-1", SCANNER, &d), 'A');
    assert_int_equal(verdict_for(on_clusters, "eks:UpdateClusterConfig", "ap-south-1", SCANNER, &d),
                     'D');
    /* NotResource naming something else: the Deny applies to "*" */
    assert_int_equal(verdict_for("{'Statement':[{'Sid':'R','Effect':'Deny','Action':'eks:List*',"
                                 "'NotResource':'arn:aws:iam::*:role/*'}]}",
                                 "eks:ListClusters", "ap-south-1", SCANNER, &d),
                     'D');
    assert_int_equal(verdict_for("{'Statement':[{'Sid':'R','Effect':'Deny','Action':'eks:List*',"
                                 "'NotResource':'*'}]}",
                                 "eks:ListClusters", "ap-south-1", SCANNER, &d),
                     'A');

    /* An allow-list level whose only Allow names cluster ARNs does not allow ListClusters. */
    struct scp_doc *full = parse_sq("p-full", FULL);
    struct scp_doc *allow =
        parse_sq("p-allow", ALLOW("'Action':'eks:*','Resource':'arn:aws:eks:*:*:cluster/*'"));
    struct scp_request req = {.action = "eks:ListClusters",
                              .account_id = ACCOUNT,
                              .region = "eu-west-1",
                              .mode = EGRESS_OMITTED,
                              .principal_arn = SCANNER};
    evaluate_one(full, allow, NULL, &req, &d);
    assert_int_equal(d.verdict, SCP_DENIED);
    assert_string_equal(d.statements[0], "no Allow at " ACCOUNT);
    req.action = "eks:DescribeCluster";
    evaluate_one(full, allow, NULL, &req, &d);
    assert_int_equal(d.verdict, SCP_ALLOWED);
    scp_doc_free(full);
    scp_doc_free(allow);
}

/* CreateCluster verdicts for the four modes ("DADD"), any principal, region eu-west-1 unless
 * given, policy on the account next to FullAWSAccess; d gets the AWS_MANAGED decision. */
static void create_verdicts(const char *policy, const char *region, char out[5],
                            struct scp_decision *d)
{
    struct scp_doc *full = parse_sq("p-full", FULL);
    struct scp_doc *x = parse_sq("p-x", policy);
    if (scp_doc_error(x))
        fail_msg("%s: %s", policy, scp_doc_error(x));
    const struct scp_doc *root_docs[] = {full};
    const struct scp_doc *acct_docs[] = {full, x};
    struct scp_level levels[] = {
        {.target_id = ROOT_ID, .docs = root_docs, .n_docs = 1},
        {.target_id = ACCOUNT, .docs = acct_docs, .n_docs = 2},
    };
    for (int m = EGRESS_MODES - 1; m >= 0; m--) {
        struct scp_request req = {"eks:CreateCluster", ACCOUNT, region ? region : "eu-west-1",
                                  (enum egress_mode)m, NULL};
        scp_evaluate(levels, 2, &req, NULL, d);
        out[m] = "ADPU"[d->verdict];
    }
    out[EGRESS_MODES] = '\0';
    scp_doc_free(full);
    scp_doc_free(x);
}

/* An egress guard (only CUSTOMER_ROUTED) exempting the principals of cond. */
#define GUARD(sid, cond)                                                                           \
    "{'Sid':'" sid "','Effect':'Deny','Action':'eks:CreateCluster','Resource':'*','Condition':"    \
    "{'StringNotEquals':{'eks:controlPlaneEgressMode':'CUSTOMER_ROUTED'}," cond "}}"
#define NOT_ARN(op, arn) "'" op "':{'aws:PrincipalArn':'" arn "'}"
#define ORGADMIN "arn:aws:iam::*:role/OrgAdmin"

/* Principal exemptions are combined per principal, not per statement (issue 14, class 2): a
 * verdict is principal-dependent only when some principal of the account is allowed and another
 * denied; the example principals say which. */
static void test_principal_classes(void **state)
{
    (void)state;
    static const struct {
        const char *rule, *s1, *s2, *region;
        const char *want;
        const char *allowed; /* the allowed example for AWS_MANAGED, NULL: none expected */
    } ccases[] = {
        {"two Denies exempting different roles deny every principal (was PAPP)",
         GUARD("Egress", NOT_ARN("ArnNotLike", ORGADMIN)),
         GUARD("Guard2", NOT_ARN("ArnNotLike", "arn:aws:iam::*:role/break-glass-*")), NULL, "DADD",
         NULL},
        {"the same exemption written twice: only that role may",
         GUARD("Egress", NOT_ARN("ArnNotLike", ORGADMIN)),
         GUARD("Guard2", NOT_ARN("ArnNotLike", ORGADMIN)), NULL, "PAPP",
         "arn:aws:iam::111122223333:role/OrgAdmin"},
        {"Control Tower region deny (break-glass exempt) next to an egress guard (OrgAdmin "
         "exempt), in a denied region: no role is exempt from both",
         GUARD("Egress", NOT_ARN("ArnNotLike", ORGADMIN)),
         "{'Sid':'Region','Effect':'Deny','NotAction':['iam:*','sts:*'],'Resource':'*',"
         "'Condition':{'StringNotEquals':{'aws:RequestedRegion':['eu-west-1']},"
         "'ArnNotLike':{'aws:PrincipalArn':'arn:aws:iam::*:role/break-glass-*'}}}",
         "us-east-1", "DPDD", NULL},
        {"overlapping wildcards: role/a* and role/*b are both exempted by role/ab",
         GUARD("A", NOT_ARN("ArnNotLike", "arn:aws:iam::*:role/a*")),
         GUARD("B", NOT_ARN("StringNotLike", "arn:aws:iam::*:role/*b")), NULL, "PAPP",
         "arn:aws:iam::111122223333:role/ab"},
        {"an exemption for another account's roles exempts no principal of this one",
         GUARD("Egress", NOT_ARN("ArnNotLike", "arn:aws:iam::999999999999:role/*")), NULL, NULL,
         "DADD", NULL},
        {"IgnoreCase and case-sensitive exemptions meet in one spelling",
         GUARD("A",
               NOT_ARN("StringNotEqualsIgnoreCase", "arn:aws:iam::111122223333:role/ORGADMIN")),
         GUARD("B", NOT_ARN("ArnNotEquals", ORGADMIN)), NULL, "PAPP",
         "arn:aws:iam::111122223333:role/OrgAdmin"},
        {"a Deny for all but OrgAdmin and one for OrgAdmin: every principal",
         GUARD("A", NOT_ARN("ArnNotLike", ORGADMIN)), GUARD("B", NOT_ARN("ArnLike", ORGADMIN)),
         NULL, "DADD", NULL},
    };
    int failures = 0;
    for (size_t i = 0; i < sizeof ccases / sizeof ccases[0]; i++) {
        char got[5];
        struct scp_decision d;
        char policy[1024];
        snprintf(policy, sizeof policy, "{" V "'Statement':[%s%s%s]}", ccases[i].s1,
                 ccases[i].s2 ? "," : "", ccases[i].s2 ? ccases[i].s2 : "");
        create_verdicts(policy, ccases[i].region, got, &d);
        int bad = strcmp(got, ccases[i].want) != 0;
        if (!bad && ccases[i].allowed)
            bad = strcmp(d.allowed_principal, ccases[i].allowed) != 0 || !d.denied_principal[0];
        if (!bad && !ccases[i].allowed)
            bad = d.allowed_principal[0] != '\0';
        if (bad) {
            print_message("case %zu (%s): %s, want %s; allowed \"%s\", denied \"%s\"\n", i,
                          ccases[i].rule, got, ccases[i].want, d.allowed_principal,
                          d.denied_principal);
            print_decision(&d);
            failures++;
        }
    }
    assert_int_equal(failures, 0);
}

/* The index finds each target's documents in policy order; scp_levels_for builds root, OUs and
 * account from an OU id path and names the first level without an SCP. */
static void test_index_and_levels(void **state)
{
    (void)state;
    char full_json[256], deny_json[512];
    snprintf(full_json, sizeof full_json, "%s", sq(FULL));
    snprintf(deny_json, sizeof deny_json, "%s", sq(REGION_DENY(CT_ROLE)));
    const char *full_targets[] = {ROOT_ID, OU_ID, ACCOUNT, "222233334444"};
    const char *deny_targets[] = {OU_ID, ROOT_ID};
    const char *orphan_targets[] = {"ou-ab12-99999999"};
    struct scp_policy scps[] = {
        {"p-FullAWSAccess", "FullAWSAccess", full_json, full_targets, 4, 1},
        {"p-deny", "RegionDeny", deny_json, deny_targets, 2, 0},
        {"p-orphan", "Orphan", "not json", orphan_targets, 1, 0},
    };
    struct scp_index ix;
    struct err e;
    err_clear(&e);
    assert_int_equal(scp_index_build(&ix, scps, 3, NULL, 0, &e), 0);
    size_t n;
    const struct scp_doc *const *docs = scp_index_find(&ix, ROOT_ID, &n);
    assert_int_equal(n, 2);
    assert_string_equal(scp_doc_id(docs[0]), "p-FullAWSAccess");
    assert_string_equal(scp_doc_id(docs[1]), "p-deny");
    docs = scp_index_find(&ix, "ou-ab12-99999999", &n);
    assert_int_equal(n, 1);
    assert_non_null(scp_doc_error(docs[0])); /* kept, unevaluable */
    scp_index_find(&ix, "r-none", &n);
    assert_int_equal(n, 0);

    struct scp_path path;
    assert_int_equal(scp_levels_for(&ix, ROOT_ID "/" OU_ID, ACCOUNT, &path, &e), 0);
    assert_int_equal(path.n_levels, 3);
    assert_string_equal(path.levels[0].target_id, ROOT_ID);
    assert_string_equal(path.levels[1].target_id, OU_ID);
    assert_string_equal(path.levels[2].target_id, ACCOUNT);
    assert_int_equal(path.levels[0].n_docs, 2);
    assert_int_equal(path.levels[1].n_docs, 2);
    assert_int_equal(path.levels[2].n_docs, 1);
    assert_null(path.missing);
    struct scp_request req = {.action = "eks:ListClusters",
                              .account_id = ACCOUNT,
                              .region = "ap-south-1",
                              .mode = EGRESS_OMITTED,
                              .principal_arn = SCANNER};
    struct scp_decision d;
    scp_evaluate(path.levels, path.n_levels, &req, NULL, &d);
    assert_int_equal(d.verdict, SCP_DENIED);
    assert_int_equal(d.n_statements, 2); /* attached at the root and the OU */
    assert_string_equal(d.statements[0], "p-deny#DenyOutsideRegions");

    /* an account without its own SCP: the level is missing from the snapshot */
    assert_int_equal(scp_levels_for(&ix, "/" ROOT_ID "/" OU_ID "/", "555566667777", &path, &e), 0);
    assert_int_equal(path.n_levels, 3);
    assert_string_equal(path.missing, "555566667777");

    /* no path, or one deeper than an organization can be */
    assert_int_equal(scp_levels_for(&ix, NULL, ACCOUNT, &path, &e), -1);
    assert_int_equal(scp_levels_for(&ix, "", ACCOUNT, &path, &e), -1);
    assert_int_equal(scp_levels_for(&ix, "/", ACCOUNT, &path, &e), -1);
    assert_string_equal(e.code, ERR_INVALID);
    assert_int_equal(
        scp_levels_for(&ix, "r-1/ou-1/ou-2/ou-3/ou-4/ou-5/ou-6/ou-7", ACCOUNT, &path, &e), -1);
    assert_int_equal(scp_levels_for(&ix, "r-1/ou-1/ou-2/ou-3/ou-4/ou-5/ou-6", ACCOUNT, &path, &e),
                     0);
    assert_int_equal(path.n_levels, SCP_MAX_LEVELS);
    /* which documents could deny eks:ListClusters wherever they are attached */
    docs = scp_index_find(&ix, ROOT_ID, &n);
    assert_int_equal(scp_doc_may_deny(docs[0], "eks:ListClusters"), 0); /* FullAWSAccess */
    assert_int_equal(scp_doc_may_deny(docs[1], "eks:ListClusters"), 1); /* NotAction deny */
    assert_int_equal(scp_doc_may_deny(docs[1], "sts:AssumeRole"), 0);
    docs = scp_index_find(&ix, "ou-ab12-99999999", &n);
    assert_int_equal(scp_doc_may_deny(docs[0], "eks:ListClusters"), 1); /* malformed */
    assert_int_equal(scp_doc_may_deny(NULL, "eks:ListClusters"), 1);
    struct scp_doc *egress = parse_sq("p-egress", OFFICIAL);
    assert_int_equal(scp_doc_may_deny(egress, "eks:ListClusters"), 0);
    assert_int_equal(scp_doc_may_deny(egress, "eks:CreateCluster"), 1);
    scp_doc_free(egress);

    scp_index_free(&ix);
    scp_index_free(&ix); /* emptied: a second free is harmless */

    /* only_ids: the documents attached to the named targets only */
    const char *only[] = {ACCOUNT};
    assert_int_equal(scp_index_build(&ix, scps, 3, only, 1, &e), 0);
    scp_index_find(&ix, ACCOUNT, &n);
    assert_int_equal(n, 1);
    scp_index_find(&ix, ROOT_ID, &n);
    assert_int_equal(n, 0);
    scp_index_free(&ix);
}

/* Which documents may tell accounts apart: a literal digit in a pattern matched against the
 * cluster ARN or the principal's ARN (conservatively: wherever the digit sits). */
static void test_doc_reads_account(void **state)
{
    (void)state;
    static const struct {
        const char *policy;
        int reads;
    } docs_cases[] = {
        {"{'Version':'2012-10-17','Statement':{'Effect':'Allow','Action':'*','Resource':'*'}}", 0},
        {"{'Version':'2012-10-17','Statement':{'Effect':'Deny','Action':'eks:*','Resource':"
         "'arn:aws:eks:*:111122223333:cluster/*'}}",
         1},
        {"{'Version':'2012-10-17','Statement':{'Effect':'Deny','Action':'eks:*','NotResource':"
         "'arn:aws:eks:eu-west-1:*:cluster/*'}}",
         1},
        {"{'Version':'2012-10-17','Statement':{'Effect':'Deny','Action':'eks:*','Resource':"
         "'arn:aws:eks:*:????????????:cluster/prod-*'}}",
         0},
        {"{'Version':'2012-10-17','Statement':{'Effect':'Deny','Action':'eks:*','Resource':'*',"
         "'Condition':{'ArnNotLike':{'aws:PrincipalArn':'arn:aws:iam::*:role/Admin'}}}}",
         0},
        {"{'Version':'2012-10-17','Statement':{'Effect':'Deny','Action':'eks:*','Resource':'*',"
         "'Condition':{'StringNotLike':{'aws:PrincipalArn':['arn:aws:iam::*:role/A',"
         "'arn:aws:iam::111122223333:role/Admin']}}}}",
         1},
        /* the region is part of every request: its digits tell no account apart */
        {"{'Version':'2012-10-17','Statement':{'Effect':'Deny','Action':'eks:*','Resource':'*',"
         "'Condition':{'StringNotEquals':{'aws:RequestedRegion':'eu-west-1'}}}}",
         0},
        {"{'Version':'2012-10-17','Statement':42}", 0}, /* malformed: nothing is read */
    };
    for (size_t i = 0; i < sizeof docs_cases / sizeof docs_cases[0]; i++) {
        struct scp_doc *d = parse_sq("p-reads", docs_cases[i].policy);
        if (scp_doc_reads_account(d) != docs_cases[i].reads)
            fail_msg("case %zu: %s", i, docs_cases[i].policy);
        scp_doc_free(d);
    }
    assert_int_equal(scp_doc_reads_account(NULL), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_table),
        cmocka_unit_test(test_verdict_names),
        cmocka_unit_test(test_doc_id_and_error),
        cmocka_unit_test(test_malformed_messages),
        cmocka_unit_test(test_allowed_lists_allow_per_level),
        cmocka_unit_test(test_statement_list_is_bounded),
        cmocka_unit_test(test_partition),
        cmocka_unit_test(test_bad_requests),
        cmocka_unit_test(test_principal_arn),
        cmocka_unit_test(test_principal_classes),
        cmocka_unit_test(test_list_clusters),
        cmocka_unit_test(test_index_and_levels),
        cmocka_unit_test(test_doc_reads_account),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
