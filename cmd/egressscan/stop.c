/* stop.c - the SIGTERM / SIGINT handling that `scan` and `worker` share: a first signal asks for
 * a stop that the scheduler and the commands' loops act on, a second one exits at once. */
#include "cmd/egressscan/stop.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/log.h"

volatile sig_atomic_t stop_signal;

static void on_stop_signal(int sig)
{
    if (stop_signal)
        _exit(128 + sig); /* asked twice: at once (leases expire, the next scan marks it aborted) */
    stop_signal = sig;
}

int stop_setup(const char *cmd, double *grace_s)
{
    *grace_s = STOP_GRACE_DEFAULT_S;
    const char *v = getenv(STOP_GRACE_ENV);
    if (v && *v) {
        char *end;
        errno = 0;
        double d = strtod(v, &end);
        if (errno || *end || end == v || !(d >= 0 && d <= 3600)) {
            log_command_error(cmd, "%s: not a number of seconds from 0 to 3600: %s", STOP_GRACE_ENV,
                              v);
            return -1;
        }
        *grace_s = d;
    }
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_stop_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    stop_ignore_sigpipe();
    return 0;
}

void stop_ignore_sigpipe(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = SIG_IGN;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGPIPE, &sa, NULL);
}

const char *stop_signal_name(int sig)
{
    static char other[32];
    if (sig == SIGTERM)
        return "SIGTERM";
    if (sig == SIGINT)
        return "SIGINT";
    snprintf(other, sizeof other, "signal %d", sig);
    return other;
}

int stop_exit_code(int sig)
{
    return 128 + sig;
}
