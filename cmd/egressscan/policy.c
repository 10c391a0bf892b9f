/* policy.c - `egressscan policy check FILE`: validates a declared policy file (SPEC.md section 6)
 * and prints what it means; every problem goes to stderr as FILE:LINE:COLUMN: message. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cmd/egressscan/commands.h"
#include "common/isotime.h"
#include "intent/policy.h"

static void usage(FILE *out)
{
    fprintf(out,
            "usage: egressscan policy check [--as-of TIME] FILE\n\n"
            "Validates a declared policy file (the --policy FILE of scan) and prints what it\n"
            "means: per rule its scope, region filter, allowed modes and require_scp; the\n"
            "default; the exceptions and whether they are still valid.\n\n"
            "Every problem is reported, one per line on stderr, as FILE:LINE:COLUMN: message.\n"
            "Exit status: 0 valid, 2 invalid or unreadable.\n\n"
            "options:\n"
            "  --as-of TIME  judge exception expiry at TIME (YYYY-MM-DD or\n"
            "                YYYY-MM-DDTHH:MM:SSZ) instead of now\n"
            "  -h, --help    this help\n");
}

/* "2027-01-31" (midnight UTC) or an ISO 8601 timestamp. */
static int parse_as_of(const char *s, time_t *out)
{
    char buf[32];
    if (strlen(s) == 10) {
        snprintf(buf, sizeof buf, "%sT00:00:00Z", s);
        s = buf;
    }
    return iso8601_parse(s, out);
}

static int policy_check(int argc, char **argv)
{
    enum { OPT_AS_OF = 256 };
    static const struct option opts[] = {{"as-of", required_argument, NULL, OPT_AS_OF},
                                         {"help", no_argument, NULL, 'h'},
                                         {NULL, 0, NULL, 0}};
    time_t now = time(NULL);
    int c;
    optind = 0;
    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        switch (c) {
        case OPT_AS_OF:
            if (parse_as_of(optarg, &now) < 0) {
                fprintf(stderr,
                        "egressscan policy check: --as-of: not a date or time "
                        "(YYYY-MM-DD or YYYY-MM-DDTHH:MM:SSZ): %s\n",
                        optarg);
                return EXIT_USAGE;
            }
            break;
        case 'h':
            usage(stdout);
            return EXIT_OK;
        default:
            usage(stderr);
            return EXIT_USAGE;
        }
    }
    if (optind >= argc) {
        fprintf(stderr, "egressscan policy check: which file? (egressscan policy check FILE)\n");
        return EXIT_USAGE;
    }
    if (optind + 1 < argc) {
        fprintf(stderr, "egressscan policy check: unexpected argument '%s'\n", argv[optind + 1]);
        return EXIT_USAGE;
    }
    const char *path = argv[optind];
    struct err e;
    err_clear(&e);
    struct policy *p = policy_load(path, stderr, &e); /* problems are written to stderr */
    if (!p)
        return strcmp(e.code, ERR_NOMEM) == 0 ? EXIT_FAILED : EXIT_USAGE;
    printf("%s: valid\n", path);
    policy_describe(p, now, stdout);
    policy_free(p);
    if (fflush(stdout) != 0 || ferror(stdout)) {
        fprintf(stderr, "egressscan policy check: cannot write the description\n");
        return EXIT_FAILED;
    }
    return EXIT_OK;
}

int cmd_policy(int argc, char **argv)
{
    static const struct option opts[] = {{"help", no_argument, NULL, 'h'}, {NULL, 0, NULL, 0}};
    int c;
    optind = 0;
    /* "+": stop at the subcommand, whose options are its own */
    while ((c = getopt_long(argc, argv, "+h", opts, NULL)) != -1) {
        switch (c) {
        case 'h':
            usage(stdout);
            return EXIT_OK;
        default:
            usage(stderr);
            return EXIT_USAGE;
        }
    }
    if (optind >= argc) {
        usage(stderr);
        return EXIT_USAGE;
    }
    if (strcmp(argv[optind], "check") == 0)
        return policy_check(argc - optind, argv + optind);
    fprintf(stderr, "egressscan policy: unknown subcommand '%s' (known: check)\n", argv[optind]);
    return EXIT_USAGE;
}
