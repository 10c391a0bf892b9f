/* endpoint.h - where a service is reached: AWS_ENDPOINT_URL_<SERVICE>, AWS_ENDPOINT_URL, or the
 * service's regional (or global) AWS endpoint. The signing region always comes from the target. */
#ifndef EGRESSSCAN_ENDPOINT_H
#define EGRESSSCAN_ENDPOINT_H

#include "common/err.h"

struct endpoint {
    char url[512];           /* scheme://host[:port][/base], no trailing slash */
    char signing_region[32]; /* region for the credential scope */
    int is_override;         /* 1 when it came from AWS_ENDPOINT_URL* */
};

/* service is one of "eks", "sts", "organizations", "ec2", "securityhub". Organizations is global:
 * its endpoint and signing region are the partition's (us-east-1 for aws). Plain http:// is
 * accepted only from an override. -1 with err (ConfigError) on a malformed override or an invalid
 * region. */
int endpoint_resolve(const char *service, const char *region, struct endpoint *out,
                     struct err *err);

/* The partition a region belongs to, by its name: "aws-cn" for cn-*, "aws-us-gov" for us-gov-*,
 * "aws-iso" / "aws-iso-b" for us-iso-* / us-isob-*, else "aws". Never NULL. */
const char *endpoint_partition(const char *region);

/* Nonzero when region looks like an AWS region name ("eu-west-1", "us-gov-west-1"). */
int endpoint_region_valid(const char *region);

/* Checks the endpoint settings of the environment before anything uses them (so that a typo is a
 * configuration error up front, not a failed scan): AWS_ENDPOINT_URL and AWS_ENDPOINT_URL_{EKS,
 * STS,ORGANIZATIONS,EC2,SECURITYHUB}, when set and not ignored
 * (AWS_IGNORE_CONFIGURED_ENDPOINT_URLS), must be what endpoint_resolve accepts (absolute http(s)
 * URL with a host); the home region (AWS_REGION, else AWS_DEFAULT_REGION), when set, must be a
 * region name. -1 with err (ConfigError, naming the variable, never its value) on the first bad
 * one. */
int endpoint_check_env(struct err *err);

/* The region of calls that belong to no target (STS for the base credentials, Organizations'
 * partition, DescribeRegions): AWS_REGION, else AWS_DEFAULT_REGION, else "us-east-1". */
const char *endpoint_home_region(void);

#endif
