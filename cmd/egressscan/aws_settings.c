/* aws_settings.c - the AWS settings of the environment checked before scan, scan --enqueue and
 * worker touch the database (SPEC.md section 2: a malformed setting is exit 2 and nothing is
 * written): endpoint overrides, the home region and a named profile. */
#include <stdio.h>

#include "cmd/egressscan/commands.h"
#include "scanner/creds.h"
#include "scanner/endpoint.h"

int aws_settings_check(const char *cmd)
{
    struct err e;
    err_clear(&e);
    if (endpoint_check_env(&e) < 0 || creds_check_profile(NULL, &e) < 0) {
        fprintf(stderr, "egressscan %s: %s\n", cmd, e.message);
        return -1;
    }
    return 0;
}
