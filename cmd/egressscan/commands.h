/* commands.h - the subcommands of egressscan and the exit codes of SPEC.md section 2. */
#ifndef EGRESSSCAN_CMD_COMMANDS_H
#define EGRESSSCAN_CMD_COMMANDS_H

enum exit_code {
    EXIT_OK = 0,      /* done, nothing wrong */
    EXIT_DRIFT = 1,   /* done, drift found (only with --fail-on-drift or --fail-on SEVERITY) */
    EXIT_USAGE = 2,   /* usage or configuration error; nothing was written */
    EXIT_PARTIAL = 3, /* done, but some targets could not be scanned */
    EXIT_FAILED = 4   /* failed: database unreachable, no credentials, Organizations unreachable */
};

struct command {
    const char *name;
    int (*run)(int argc, char **argv); /* argv[0] is the command name */
    const char *help;
};

int cmd_version(int argc, char **argv);
int cmd_migrate(int argc, char **argv);
int cmd_scan(int argc, char **argv);
int cmd_drift(int argc, char **argv);
int cmd_report(int argc, char **argv);
int cmd_scps(int argc, char **argv);
int cmd_policy(int argc, char **argv);
int cmd_prune(int argc, char **argv);
int cmd_worker(int argc, char **argv);
int cmd_export(int argc, char **argv);

/* aws_settings.c: the AWS settings of the environment that http_engine_options_init does not
 * check (AWS_ENDPOINT_URL*, AWS_REGION / AWS_DEFAULT_REGION, a named AWS_PROFILE): 0, or -1 with
 * "egressscan CMD: why" on stderr (the caller exits EXIT_USAGE before writing anything). */
int aws_settings_check(const char *cmd);

struct scan_config;
/* `scan --enqueue` (enqueue.c): the scan, its discovery and one work item per account. */
int scan_enqueue(const struct scan_config *cfg, int targeted);

#endif
