/* ec2.h - EC2 DescribeRegions (query protocol, XML answer): the regions enabled in an account. */
#ifndef EGRESSSCAN_EC2_H
#define EGRESSSCAN_EC2_H

#include <stddef.h>

#include "common/err.h"

struct http_engine;
struct aws_credentials;

/* On success regions/n hold the enabled region names (valid during the callback only). */
typedef void (*ec2_regions_fn)(void *ud, const char *const *regions, size_t n, const struct err *e);

/* POST Action=DescribeRegions&Version=2016-11-15 to region's EC2 endpoint. */
int ec2_describe_regions_submit(struct http_engine *engine, struct aws_credentials *creds,
                                const char *region, const char *pace_key, ec2_regions_fn done,
                                void *ud, struct err *err);

/* Parser (tests, fuzzing): *regions is a malloc'd array of malloc'd strings; free with
 * ec2_regions_free. Regions whose optInStatus is "not-opted-in" are left out. */
int ec2_parse_regions(const char *xml, size_t len, char ***regions, size_t *n, struct err *err);
void ec2_regions_free(char **regions, size_t n);

#endif
