/* fakeaws.c - the command line of the fast fake AWS used by benchmarks and fault tests: parses
 * the flags, generates the fleet (and --truth), starts the event loops and stops them cleanly on
 * SIGTERM/SIGINT with a one-line summary. See tests/fakeaws/README.md. */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/evp.h>

#include "tests/fakeaws/fakeaws.h"

static void usage(FILE *out)
{
    fprintf(out,
            "usage: fakeaws --port P [--bind ADDR] [--tls-cert F --tls-key F]\n"
            "               [--accounts N] [--regions R] [--clusters-per-account-region-mean X]\n"
            "               [--seed S] [--latency-ms L] [--faults SPEC] [--verify-sigv4]\n"
            "               [--truth FILE] [--threads N] [--base-access-key K]\n"
            "               [--base-secret-key S] [--credential-lifetime-s N] [--max-conns N]\n"
            "               [--credentials-log FILE] [--hostile INDEX:KIND,...]\n"
            "               [--updates INDEX:KIND,... [--before]]\n"
            "A fast fake of Organizations, STS AssumeRole, EC2 DescribeRegions and EKS\n"
            "ListClusters/DescribeCluster/ListUpdates/DescribeUpdate on one port. See\n"
            "tests/fakeaws/README.md.\n");
}

static int num(const char *s, const char *flag, double lo, double hi, double *out)
{
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (errno || end == s || *end || !(v >= lo && v <= hi)) {
        fprintf(stderr, "fakeaws: %s %s: expected a number in %g..%g\n", flag, s, lo, hi);
        return -1;
    }
    *out = v;
    return 0;
}

enum {
    O_PORT = 1,
    O_BIND,
    O_CERT,
    O_KEY,
    O_ACCOUNTS,
    O_REGIONS,
    O_MEAN,
    O_SEED,
    O_LATENCY,
    O_FAULTS,
    O_VERIFY,
    O_TRUTH,
    O_THREADS,
    O_BASE_KEY,
    O_BASE_SECRET,
    O_LIFETIME,
    O_MAX_CONNS,
    O_CREDS_LOG,
    O_HOSTILE,
    O_UPDATES,
    O_BEFORE,
    O_HELP
};

static int parse_args(int argc, char **argv, struct fa_options *o)
{
    static const struct option opts[] = {
        {"port", required_argument, NULL, O_PORT},
        {"bind", required_argument, NULL, O_BIND},
        {"tls-cert", required_argument, NULL, O_CERT},
        {"tls-key", required_argument, NULL, O_KEY},
        {"accounts", required_argument, NULL, O_ACCOUNTS},
        {"regions", required_argument, NULL, O_REGIONS},
        {"clusters-per-account-region-mean", required_argument, NULL, O_MEAN},
        {"seed", required_argument, NULL, O_SEED},
        {"latency-ms", required_argument, NULL, O_LATENCY},
        {"faults", required_argument, NULL, O_FAULTS},
        {"verify-sigv4", no_argument, NULL, O_VERIFY},
        {"truth", required_argument, NULL, O_TRUTH},
        {"threads", required_argument, NULL, O_THREADS},
        {"base-access-key", required_argument, NULL, O_BASE_KEY},
        {"base-secret-key", required_argument, NULL, O_BASE_SECRET},
        {"credential-lifetime-s", required_argument, NULL, O_LIFETIME},
        {"max-conns", required_argument, NULL, O_MAX_CONNS},
        {"credentials-log", required_argument, NULL, O_CREDS_LOG},
        {"hostile", required_argument, NULL, O_HOSTILE},
        {"updates", required_argument, NULL, O_UPDATES},
        {"before", no_argument, NULL, O_BEFORE},
        {"help", no_argument, NULL, O_HELP},
        {NULL, 0, NULL, 0}};
    memset(o, 0, sizeof *o);
    o->bind = "127.0.0.1";
    o->threads = 1;
    o->base_access_key = "AKIDFAKEAWSBASE0001";
    o->base_secret_key = "fakeaws-base-secret";
    o->max_conns = 20000;
    o->fleet.accounts = 20;
    o->fleet.regions = 3;
    o->fleet.clusters_mean = 0.5;
    o->fleet.seed = 1;
    int have_port = 0, c;
    double v;
    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (c) {
        case O_PORT:
            if (num(optarg, "--port", 0, 65535, &v) < 0)
                return -1;
            o->port = (int)v;
            have_port = 1;
            break;
        case O_BIND:
            o->bind = optarg;
            break;
        case O_CERT:
            o->tls_cert = optarg;
            break;
        case O_KEY:
            o->tls_key = optarg;
            break;
        case O_ACCOUNTS:
            if (num(optarg, "--accounts", 1, 2000000, &v) < 0)
                return -1;
            o->fleet.accounts = (size_t)v;
            break;
        case O_REGIONS:
            if (num(optarg, "--regions", 1, FA_ALL_REGIONS, &v) < 0)
                return -1;
            o->fleet.regions = (size_t)v;
            break;
        case O_MEAN:
            if (num(optarg, "--clusters-per-account-region-mean", 0, 1000, &v) < 0)
                return -1;
            o->fleet.clusters_mean = v;
            break;
        case O_SEED: {
            char *end;
            errno = 0;
            unsigned long long s = strtoull(optarg, &end, 10);
            if (errno || *end || optarg[0] == '-' || !*optarg) {
                fprintf(stderr, "fakeaws: --seed %s: expected an unsigned integer\n", optarg);
                return -1;
            }
            o->fleet.seed = s;
            break;
        }
        case O_LATENCY:
            if (num(optarg, "--latency-ms", 0, 3600000, &v) < 0)
                return -1;
            o->latency_ms = (long)v;
            break;
        case O_FAULTS:
            o->faults_spec = optarg;
            break;
        case O_VERIFY:
            o->verify_sigv4 = 1;
            break;
        case O_TRUTH:
            o->truth = optarg;
            break;
        case O_THREADS:
            if (num(optarg, "--threads", 1, 256, &v) < 0)
                return -1;
            o->threads = (int)v;
            break;
        case O_BASE_KEY:
            o->base_access_key = optarg;
            break;
        case O_BASE_SECRET:
            o->base_secret_key = optarg;
            break;
        case O_LIFETIME:
            if (num(optarg, "--credential-lifetime-s", 1, 43200, &v) < 0)
                return -1;
            o->credential_lifetime_s = (long)v;
            break;
        case O_MAX_CONNS:
            if (num(optarg, "--max-conns", 1, 1000000, &v) < 0)
                return -1;
            o->max_conns = (size_t)v;
            break;
        case O_CREDS_LOG:
            o->credentials_log = optarg;
            break;
        case O_HOSTILE:
            o->hostile_spec = optarg;
            break;
        case O_UPDATES:
            o->updates_spec = optarg;
            break;
        case O_BEFORE:
            o->before = 1;
            break;
        case O_HELP:
            usage(stdout);
            exit(0);
        default:
            usage(stderr);
            return -1;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "fakeaws: unexpected argument %s\n", argv[optind]);
        return -1;
    }
    if (!have_port) {
        fprintf(stderr, "fakeaws: --port is required (0 picks a free one)\n");
        return -1;
    }
    if (!o->tls_cert != !o->tls_key) {
        fprintf(stderr, "fakeaws: --tls-cert and --tls-key go together\n");
        return -1;
    }
    if (strlen(o->base_secret_key) >= 64) {
        fprintf(stderr, "fakeaws: --base-secret-key is too long\n");
        return -1;
    }
    return 0;
}

int main(int argc, char **argv)
{
    static struct fa_app app; /* large; and the event loops refer to it until the end */
    struct err e;
    err_clear(&e);
    if (parse_args(argc, argv, &app.opt) < 0)
        return 2;
    if (fleet_generate(&app.fleet, &app.opt.fleet, &e) < 0) {
        fprintf(stderr, "fakeaws: %s\n", e.message);
        return 2;
    }
    if (faults_parse(app.opt.faults_spec, &app.fleet, &app.faults, &e) < 0) {
        fprintf(stderr, "fakeaws: %s\n", e.message);
        fleet_cleanup(&app.fleet);
        return 2;
    }
    if (hostile_parse(app.opt.hostile_spec, &app.fleet, &app.hostile, &e) < 0 ||
        updates_parse(app.opt.updates_spec, app.opt.before, &app.fleet, &app.updates, &e) < 0) {
        fprintf(stderr, "fakeaws: %s\n", e.message);
        faults_cleanup(&app.faults);
        hostile_cleanup(&app.hostile);
        fleet_cleanup(&app.fleet);
        return 2;
    }
    /* the key that derives secrets and signs session tokens follows the seed, so that a restart
     * with the same seed keeps issued credentials valid */
    char material[64];
    int ml = snprintf(material, sizeof material, "fakeaws-token-key:%llu",
                      (unsigned long long)app.opt.fleet.seed);
    unsigned int kl = sizeof app.token_key;
    EVP_Digest(material, (size_t)ml, app.token_key, &kl, EVP_sha256(), NULL);
    app.stats.n_accounts = app.fleet.n_accounts;
    app.stats.acct_requests = calloc(app.fleet.n_accounts, sizeof *app.stats.acct_requests);
    app.stats.acct_throttles = calloc(app.fleet.n_accounts, sizeof *app.stats.acct_throttles);
    int rc = 1;
    struct fa_server *srv = NULL;
    app.credentials_log_fd = -1;
    if (app.opt.credentials_log) {
        /* a test's list of the secrets in play, to search logs and databases for them */
        app.credentials_log_fd = open(app.opt.credentials_log,
                                      O_WRONLY | O_CREAT | O_TRUNC | O_APPEND | O_CLOEXEC, 0600);
        if (app.credentials_log_fd < 0) {
            fprintf(stderr, "fakeaws: --credentials-log %s: %s\n", app.opt.credentials_log,
                    strerror(errno));
            goto out;
        }
    }
    if (!app.stats.acct_requests || !app.stats.acct_throttles) {
        fprintf(stderr, "fakeaws: out of memory\n");
        goto out;
    }
    if (app.opt.truth && fleet_write_truth(&app.fleet, app.opt.truth, &e) < 0) {
        fprintf(stderr, "fakeaws: %s\n", e.message);
        goto out;
    }

    /* Signals are taken synchronously by this thread; the loops never see them. */
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &set, NULL);
    signal(SIGPIPE, SIG_IGN);

    srv = server_start(&app, &e);
    if (!srv) {
        fprintf(stderr, "fakeaws: %s\n", e.message);
        goto out;
    }
    fprintf(stderr,
            "fakeaws: listening on %s://%s:%d (%zu accounts, %zu regions, %zu clusters, %d "
            "thread%s%s%s)\n",
            app.opt.tls_cert ? "https" : "http", app.opt.bind, server_port(srv),
            app.fleet.n_accounts, app.fleet.n_regions, app.fleet.n_clusters, app.opt.threads,
            app.opt.threads == 1 ? "" : "s", app.opt.verify_sigv4 ? ", verifying SigV4" : "",
            app.faults.any ? ", faults on" : "");
    fflush(stderr);
    int sig = 0;
    sigwait(&set, &sig);
    server_stop(srv);
    stats_summary(&app, stderr);
    rc = 0;
out:
    if (app.credentials_log_fd >= 0)
        close(app.credentials_log_fd);
    free(app.stats.acct_requests);
    free(app.stats.acct_throttles);
    faults_cleanup(&app.faults);
    hostile_cleanup(&app.hostile);
    updates_cleanup(&app.updates);
    fleet_cleanup(&app.fleet);
    return rc;
}
