/* export.c - `egressscan export securityhub`: the fleet's open findings, and those resolved
 * since --since (default: the last 7 days), to AWS Security Hub with BatchImportFindings in
 * batches of 100. Findings keep their Id across exports, so a second export updates them (never
 * duplicates) and a resolved one is archived. */
#include <getopt.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cmd/egressscan/commands.h"
#include "common/isotime.h"
#include "common/quote.h"
#include "scanner/creds.h"
#include "scanner/endpoint.h"
#include "scanner/http.h"
#include "scanner/securityhub.h"
#include "scanner/sts.h"
#include "storage/db.h"
#include "storage/finding_export.h"

#define DEFAULT_SINCE_DAYS 7

static void usage(FILE *out)
{
    fprintf(out,
            "usage: egressscan export securityhub [--account ID] [--region R] [--since TIME]\n"
            "                                     [--dry-run] [--database-url URL]\n\n"
            "Sends the fleet's open findings, and the findings resolved since TIME (ISO 8601;\n"
            "default: the last 7 days), to AWS Security Hub (BatchImportFindings, ASFF) in the\n"
            "account of the credentials (--account: without asking STS) and region R (default\n"
            "AWS_REGION). A finding keeps its Id (egressscan-finding-N): exporting again updates\n"
            "it, a resolved one is archived (RecordState ARCHIVED, Compliance PASSED).\n"
            "--dry-run prints the ASFF findings as JSON lines and sends nothing.\n"
            "Exit 0 when every finding was imported; 2 usage error; 4 when the database or AWS\n"
            "failed or Security Hub refused findings (listed on stderr).\n");
}

struct exporter {
    struct http_engine *engine;
    struct aws_credentials *creds;
    struct asff_context ctx;
    int dry_run;
    json_t *batch;
    long open, resolved;
    struct securityhub_result res;
    struct err e;
};

static int flush(struct exporter *x)
{
    if (json_array_size(x->batch) == 0)
        return 0;
    int rc = 0;
    if (!x->dry_run)
        rc = securityhub_batch_import(x->engine, x->creds, x->ctx.region, x->batch, &x->res, &x->e);
    json_array_clear(x->batch);
    return rc;
}

static int on_record(void *ud, const struct finding_record *r)
{
    struct exporter *x = ud;
    json_t *f = asff_finding(r, &x->ctx);
    if (!f) {
        err_set(&x->e, ERR_NOMEM, "cannot build the ASFF finding of finding %lld", r->finding_id);
        return -1;
    }
    if (r->resolved_at)
        x->resolved++;
    else
        x->open++;
    if (x->dry_run) {
        int bad =
            json_dumpf(f, stdout, JSON_COMPACT | JSON_ENSURE_ASCII) < 0 || putchar('\n') == EOF;
        json_decref(f);
        if (bad)
            err_set(&x->e, ERR_IO, "cannot write to standard output");
        return bad ? -1 : 0;
    }
    if (json_array_append_new(x->batch, f) < 0) {
        err_set(&x->e, ERR_NOMEM, "out of memory");
        return -1;
    }
    return json_array_size(x->batch) >= SECURITYHUB_BATCH_MAX ? flush(x) : 0;
}

/* --since: an ISO 8601 time, or the default (now - 7 days), as "YYYY-MM-DDTHH:MM:SSZ". */
static int since_of(const char *arg, char out[32])
{
    time_t t;
    if (arg) {
        if (iso8601_parse(arg, &t) < 0)
            return -1;
    } else {
        t = time(NULL) - (time_t)DEFAULT_SINCE_DAYS * 86400;
    }
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(out, 32, "%Y-%m-%dT%H:%M:%SZ", &tm);
    return 0;
}

static int export_securityhub(int argc, char **argv)
{
    static const struct option opts[] = {{"account", required_argument, NULL, 'a'},
                                         {"region", required_argument, NULL, 'r'},
                                         {"since", required_argument, NULL, 's'},
                                         {"dry-run", no_argument, NULL, 'n'},
                                         {"database-url", required_argument, NULL, 'd'},
                                         {"help", no_argument, NULL, 'h'},
                                         {NULL, 0, NULL, 0}};
    const char *account = NULL, *region = NULL, *since_arg = NULL, *url = NULL;
    int dry_run = 0, c;
    optind = 0;
    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        switch (c) {
        case 'a':
            account = optarg;
            break;
        case 'r':
            region = optarg;
            break;
        case 's':
            since_arg = optarg;
            break;
        case 'n':
            dry_run = 1;
            break;
        case 'd':
            url = optarg;
            break;
        case 'h':
            usage(stdout);
            return EXIT_OK;
        default:
            usage(stderr);
            return EXIT_USAGE;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "egressscan export securityhub: unexpected argument '%s'\n", argv[optind]);
        return EXIT_USAGE;
    }
    if (account && (strlen(account) != 12 || strspn(account, "0123456789") != 12)) {
        fprintf(stderr, "egressscan export securityhub: --account must be a 12-digit account id\n");
        return EXIT_USAGE;
    }
    if (!region)
        region = endpoint_home_region();
    if (!endpoint_region_valid(region)) {
        fprintf(stderr, "egressscan export securityhub: --region: not a region name\n");
        return EXIT_USAGE;
    }
    char since[32];
    if (since_of(since_arg, since) < 0) {
        fprintf(stderr, "egressscan export securityhub: --since: not an ISO 8601 time "
                        "(e.g. 2026-11-30T00:00:00Z)\n");
        return EXIT_USAGE;
    }
    if (aws_settings_check("export securityhub") < 0)
        return EXIT_USAGE;
    struct http_engine_options eo;
    struct exporter x;
    memset(&x, 0, sizeof x);
    err_clear(&x.e);
    if (http_engine_options_init(&eo, &x.e) < 0) {
        fprintf(stderr, "egressscan export securityhub: %s\n", x.e.message);
        return EXIT_USAGE;
    }
    eo.max_in_flight = 4;
    int exit_code = EXIT_FAILED;
    struct creds_chain *chain = NULL;
    struct db *db = db_connect(url, &x.e);
    if (!db) {
        fprintf(stderr, "egressscan export securityhub: cannot connect to the database: %s\n",
                x.e.message);
        return EXIT_FAILED;
    }
    char caller[13] = "";
    x.dry_run = dry_run;
    x.batch = json_array();
    /* the importing account: --account, else the credentials' own (STS GetCallerIdentity) */
    if (!account || !dry_run) {
        x.engine = http_engine_new(&eo, &x.e);
        chain = x.engine ? creds_chain_new(NULL, &x.e) : NULL;
        x.creds = chain ? creds_chain_get(chain, &x.e) : NULL;
        if (!x.creds)
            goto fail;
        if (!account) {
            if (sts_get_caller_identity(x.engine, x.creds, region, caller, &x.e) < 0)
                goto fail;
            account = caller;
        }
    }
    x.ctx.account_id = account;
    x.ctx.region = region;
    long long scan_used = 0;
    if (db_export_findings(db, since, &scan_used, on_record, &x, &x.e) < 0 || flush(&x) < 0)
        goto fail;
    if (dry_run) {
        fprintf(stderr,
                "egressscan export securityhub: dry run: %ld open and %ld resolved (since %s) "
                "findings for account %s, region %s; nothing sent\n",
                x.open, x.resolved, since, account, region);
        exit_code = EXIT_OK;
        goto done;
    }
    struct http_engine_stats hs;
    http_engine_get_stats(x.engine, &hs);
    printf("exported %ld findings (%ld open, %ld resolved since %s) to Security Hub in account "
           "%s, region %s: %ld imported, %ld failed, %ld BatchImportFindings call%s "
           "(%lu HTTP attempts in all)\n",
           x.open + x.resolved, x.open, x.resolved, since, account, region, x.res.success,
           x.res.failed, x.res.calls, x.res.calls == 1 ? "" : "s", hs.attempts);
    for (size_t i = 0; i < x.res.n_kept; i++) {
        char id[200], code[100], msg[300];
        fprintf(stderr, "egressscan export securityhub: not imported: %s: %s: %s\n",
                quote_term_to(id, sizeof id, x.res.failures[i].id),
                quote_term_to(code, sizeof code, x.res.failures[i].code),
                quote_term_to(msg, sizeof msg, x.res.failures[i].message));
    }
    if (x.res.failed > (long)x.res.n_kept)
        fprintf(stderr, "egressscan export securityhub: and %ld more not imported\n",
                x.res.failed - (long)x.res.n_kept);
    exit_code = x.res.failed ? EXIT_FAILED : EXIT_OK;
    goto done;
fail:
    fprintf(stderr, "egressscan export securityhub: %s (%s)%s\n", x.e.message, x.e.code,
            x.res.calls ? "; the batches sent before stay imported" : "");
done:
    json_decref(x.batch);
    creds_unref(x.creds);
    creds_chain_free(chain);
    http_engine_free(x.engine);
    db_close(db);
    return exit_code;
}

int cmd_export(int argc, char **argv)
{
    if (argc < 2) {
        usage(stderr);
        return EXIT_USAGE;
    }
    if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
        usage(stdout);
        return EXIT_OK;
    }
    if (strcmp(argv[1], "securityhub") == 0)
        return export_securityhub(argc - 1, argv + 1);
    fprintf(stderr, "egressscan export: unknown destination '%s'\n\n", argv[1]);
    usage(stderr);
    return EXIT_USAGE;
}
