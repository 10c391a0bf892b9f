/* stop.h - how `scan` and `worker` stop on SIGTERM and SIGINT (a Kubernetes pod deleted or
 * evicted, systemctl stop, Ctrl-C): the first signal asks for a stop (no new account; the
 * requests under way get a grace of EGRESSSCAN_STOP_GRACE_SECONDS; what is done is written), a
 * second one exits at once. The exit code of a stopped process is 128 + the signal, the shell's
 * convention: 143 for SIGTERM, 130 for SIGINT. */
#ifndef EGRESSSCAN_CMD_STOP_H
#define EGRESSSCAN_CMD_STOP_H

#include <signal.h>

/* The grace for requests under way after a stop: well under Kubernetes' default
 * terminationGracePeriodSeconds (30 s), leaving time to write what finished and give back the
 * rest. */
#define STOP_GRACE_DEFAULT_S 20.0
#define STOP_GRACE_ENV "EGRESSSCAN_STOP_GRACE_SECONDS"

/* The signal that asked for a stop (SIGTERM, SIGINT), 0 while none did. Set by the handler. */
extern volatile sig_atomic_t stop_signal;

/* Reads the grace (EGRESSSCAN_STOP_GRACE_SECONDS, 0 to 3600, default STOP_GRACE_DEFAULT_S) into
 * *grace_s, installs the SIGTERM and SIGINT handlers and ignores SIGPIPE (a peer that closed a
 * TLS connection must not kill the process: libcurl runs with CURLOPT_NOSIGNAL, so it does not
 * ignore it itself). 0, or -1 with "egressscan CMD: why" on stderr (exit EXIT_USAGE). */
int stop_setup(const char *cmd, double *grace_s);

/* Ignores SIGPIPE alone (scan --enqueue, which keeps the default SIGTERM: it is short and writes
 * its queue in one transaction). */
void stop_ignore_sigpipe(void);

/* "SIGTERM", "SIGINT" or "signal N". */
const char *stop_signal_name(int sig);

/* 128 + sig. */
int stop_exit_code(int sig);

#endif
