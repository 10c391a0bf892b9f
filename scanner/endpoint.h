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

/* service is one of "eks", "sts", "organizations", "ec2". Organizations is global: its endpoint
 * and signing region are the partition's (us-east-1 for aws). Plain http:// is accepted only from
 * an override. -1 with err (ConfigError) on a malformed override or an invalid region. */
int endpoint_resolve(const char *service, const char *region, struct endpoint *out,
                     struct err *err);

/* Nonzero when region looks like an AWS region name ("eu-west-1", "us-gov-west-1"). */
int endpoint_region_valid(const char *region);

/* The region of calls that belong to no target (STS for the base credentials, Organizations'
 * partition, DescribeRegions): AWS_REGION, else AWS_DEFAULT_REGION, else "us-east-1". */
const char *endpoint_home_region(void);

#endif
