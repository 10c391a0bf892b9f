/* cli.c - running egressscan from integration tests. */
#include "tests/support/cli.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tests/support/procs.h"

void cli_setenv(struct cli *c, const char *key, const char *value)
{
    size_t klen = strlen(key);
    int i = 0;
    while (i < c->n && !(strncmp(c->strs[i], key, klen) == 0 && c->strs[i][klen] == '='))
        i++;
    if (i == c->n) {
        if (c->n == CLI_MAX_ENV)
            return;
        c->n++;
    }
    snprintf(c->strs[i], sizeof c->strs[i], "%s=%s", key, value);
    c->env[i] = c->strs[i];
    c->env[c->n] = NULL;
}

void cli_init(struct cli *c, const char *access_key_id, const char *secret_access_key,
              const char *endpoint_url, const char *database_url)
{
    memset(c, 0, sizeof *c);
    c->bin = getenv("BIN") ? getenv("BIN") : "build/egressscan";
    cli_setenv(c, "AWS_ACCESS_KEY_ID", access_key_id);
    cli_setenv(c, "AWS_SECRET_ACCESS_KEY", secret_access_key);
    cli_setenv(c, "AWS_ENDPOINT_URL", endpoint_url);
    cli_setenv(c, "AWS_REGION", "us-east-1");
    cli_setenv(c, "AWS_EC2_METADATA_DISABLED", "true");
    cli_setenv(c, "AWS_CONFIG_FILE", "/nonexistent/egressscan");
    cli_setenv(c, "AWS_SHARED_CREDENTIALS_FILE", "/nonexistent/egressscan");
    cli_setenv(c, "DATABASE_URL", database_url);
    cli_setenv(c, "AWS_MAX_ATTEMPTS", "2");
}

int cli_run(struct cli *c, char **out, char **errout, ...)
{
    char *argv[40];
    int n = 0;
    argv[n++] = (char *)c->bin;
    va_list ap;
    va_start(ap, errout);
    for (char *a; n < 39 && (a = va_arg(ap, char *));)
        argv[n++] = a;
    va_end(ap);
    argv[n] = NULL;
    char *o = NULL, *e = NULL;
    int rc = procs_run2(argv, c->env, &o, &e);
    if (rc < 0 || rc == 2 || rc == 4)
        fprintf(stderr, "egressscan %s exited %d\nstdout: %.2000s\nstderr: %s\n",
                n > 1 ? argv[1] : "", rc, o ? o : "", e ? e : "");
    if (out)
        *out = o;
    else
        free(o);
    if (errout)
        *errout = e;
    else
        free(e);
    return rc;
}

int cli_moto_fixture(struct mototest *moto, struct pgtest *pg, const char *fleet_file,
                     json_t **seed, struct cli *c)
{
    *seed = NULL;
    if (mototest_start(moto) < 0 || pgtest_start(pg) < 0)
        return -1;
    char *out = NULL;
    if (mototest_seed(moto, fleet_file, &out) != 0) {
        free(out);
        return -1;
    }
    *seed = json_loads(out, 0, NULL);
    free(out);
    if (!*seed || mototest_set_auth(moto, 1) < 0)
        return -1;
    cli_init(c, json_string_value(json_object_get(*seed, "access_key_id")),
             json_string_value(json_object_get(*seed, "secret_access_key")), moto->url, pg->url);
    return 0;
}
