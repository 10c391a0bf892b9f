/* fuzz_ec2.c - libFuzzer target for the EC2 DescribeRegions answer parser: arbitrary bytes as the
 * XML answer. A success lists at least one region, each a valid region name; a failure is a
 * MalformedResponse error with a message and no list.
 * Built and run by `make fuzz` (clang -fsanitize=fuzzer,address,undefined). */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "scanner/ec2.h"
#include "scanner/endpoint.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check(int ok)
{
    if (!ok)
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct err e;
    err_clear(&e);
    char **regions = (char **)data; /* must be reset by the parser */
    size_t n = 1;
    if (ec2_parse_regions((const char *)data, size, &regions, &n, &e) < 0) {
        check(regions == NULL && n == 0);
        check(strcmp(e.code, ERR_PARSE) == 0 || strcmp(e.code, ERR_NOMEM) == 0);
        check(e.message[0] != '\0');
        return 0;
    }
    check(regions != NULL && n > 0);
    for (size_t i = 0; i < n; i++)
        check(regions[i] && endpoint_region_valid(regions[i]));
    ec2_regions_free(regions, n);
    return 0;
}
