/* main.c - the egressscan command table (like git's builtins): finds the subcommand, runs it,
 * and turns its result into the exit codes of SPEC.md section 2. Only cmd/ parses argv. */
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "cmd/egressscan/commands.h"
#include "common/log.h"
#include "storage/db.h"

static const struct command commands[] = {
    {"migrate", cmd_migrate, "apply pending database schema migrations"},
    {"scan", cmd_scan, "scan the fleet: discover, describe, store, evaluate drift"},
    {"worker", cmd_worker, "process the work items of enqueued scans (scan --enqueue)"},
    {"drift", cmd_drift, "the findings of the latest (or a given) scan"},
    {"report", cmd_report, "the weekly compliance report"},
    {"scps", cmd_scps, "what the organization's SCPs allow, per account and region"},
    {"policy", cmd_policy, "check a declared policy file: policy check FILE"},
    {"prune", cmd_prune, "delete raw observations older than a cutoff"},
    {"export", cmd_export, "send the findings to AWS Security Hub: export securityhub"},
    {"version", cmd_version, "print the version"},
};

#define N_COMMANDS (sizeof commands / sizeof commands[0])

static void usage(FILE *out)
{
    fprintf(out, "usage: egressscan COMMAND [OPTIONS]\n\n"
                 "Fleet-wide compliance scanner for the EKS control plane egress mode.\n\n"
                 "commands:\n");
    for (size_t i = 0; i < N_COMMANDS; i++)
        fprintf(out, "  %-10s %s\n", commands[i].name, commands[i].help);
    fprintf(out, "\n'egressscan COMMAND --help' describes a command's options.\n");
}

/* A password in --database-url is in the process's command line, which every user of the host
 * can read (/proc/PID/cmdline, ps): egressscan warns (it still runs, as libpq would) and points to
 * the places only its own user can read. The warning is a JSON line when the command line asks
 * for JSON logs. */
static void warn_password_in_argv(int argc, char **argv)
{
    static const char opt[] = "--database-url";
    const char *url = NULL;
    int json = 0;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], opt) == 0 && i + 1 < argc)
            url = argv[i + 1];
        else if (strncmp(argv[i], opt, sizeof opt - 1) == 0 && argv[i][sizeof opt - 1] == '=')
            url = argv[i] + sizeof opt;
        if ((strcmp(argv[i], "--log-format") == 0 && i + 1 < argc &&
             strcmp(argv[i + 1], "json") == 0) ||
            strcmp(argv[i], "--log-format=json") == 0)
            json = 1;
    }
    if (!db_url_has_password(url))
        return;
    log_setup(LOG_INFO, json ? LOG_JSON : LOG_TEXT, NULL);
    log_warn("egressscan",
             "--database-url carries a password, which any user of this host can read in "
             "/proc/%ld/cmdline: put the password in ~/.pgpass (or the file PGPASSFILE names, "
             "mode 0600) and leave it out of the URL, or pass the URL in DATABASE_URL",
             (long)getpid());
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        usage(stderr);
        return EXIT_USAGE;
    }
    if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0 ||
        strcmp(argv[1], "help") == 0) {
        usage(stdout);
        return EXIT_OK;
    }
    if (strcmp(argv[1], "--version") == 0)
        return cmd_version(argc - 1, argv + 1);
    warn_password_in_argv(argc, argv);
    for (size_t i = 0; i < N_COMMANDS; i++)
        if (strcmp(argv[1], commands[i].name) == 0)
            return commands[i].run(argc - 1, argv + 1);
    fprintf(stderr, "egressscan: unknown command '%s'\n\n", argv[1]);
    usage(stderr);
    return EXIT_USAGE;
}
