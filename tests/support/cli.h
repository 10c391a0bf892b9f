/* cli.h - running the egressscan binary from integration tests, with the environment that points
 * it at a moto server (with the seeded scanner user's keys) and a throwaway PostgreSQL. */
#ifndef EGRESSSCAN_TESTS_CLI_H
#define EGRESSSCAN_TESTS_CLI_H

#include <jansson.h>

#include "tests/support/procs.h"

#define CLI_MAX_ENV 12

struct cli {
    const char *bin; /* $BIN, else build/egressscan */
    char strs[CLI_MAX_ENV][600];
    char *env[CLI_MAX_ENV + 1]; /* NULL-terminated "K=V" entries for procs_run2 */
    int n;
};

/* AWS_ACCESS_KEY_ID/SECRET (the seeded user), AWS_ENDPOINT_URL (moto), AWS_REGION us-east-1,
 * IMDS off, no shared config files, DATABASE_URL, AWS_MAX_ATTEMPTS 2. */
void cli_init(struct cli *c, const char *access_key_id, const char *secret_access_key,
              const char *endpoint_url, const char *database_url);

/* Adds (or replaces) one environment entry. */
void cli_setenv(struct cli *c, const char *key, const char *value);

/* Runs egressscan with the arguments (NULL-terminated) and returns its exit code; stdout and
 * stderr go to *out / *errout when not NULL (the caller frees). On an exit of 2 or 4 (usage,
 * failure) both are printed, to explain a failing test. */
int cli_run(struct cli *c, char **out, char **errout, ...);

/* The moto tests' set-up: starts moto and a throwaway PostgreSQL, builds the fleet of fleet_file in
 * moto (*seed: moto_seed.py's answer, the caller frees it), switches moto's signature and IAM
 * checks on and points c at both with the seeded scanner user's keys. 0 or -1. */
int cli_moto_fixture(struct mototest *moto, struct pgtest *pg, const char *fleet_file,
                     json_t **seed, struct cli *c);

#endif
