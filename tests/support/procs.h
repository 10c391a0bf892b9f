/* procs.h - test helpers that start the real services integration tests need, and always stop
 * them by pid: a throwaway PostgreSQL (initdb/pg_ctl on a temp dir, loopback, free port) and a
 * moto server (HOME whose .aws/models holds tests/data/aws-models). */
#ifndef EGRESSSCAN_TESTS_PROCS_H
#define EGRESSSCAN_TESTS_PROCS_H

#include <sys/types.h>

/* A free TCP port on 127.0.0.1 (bound and released; good enough for tests). -1 on failure. */
int procs_free_port(void);

/* Runs argv (argv[0] looked up in PATH) with extra environment entries ("K=V", NULL-terminated,
 * may be NULL), waits, and returns its exit status (-1 if it could not run / was signalled).
 * Standard output is captured into *out (malloc'd, NUL-terminated) when out is not NULL;
 * standard error goes to the test's stderr. */
int procs_run(char *const argv[], char *const env[], char **out);

/* Like procs_run, and standard error captured into *errout (malloc'd) when errout is not NULL. */
int procs_run2(char *const argv[], char *const env[], char **out, char **errout);

/* Starts argv in the background (dies with the test process); returns its pid or -1. */
pid_t procs_spawn(char *const argv[], char *const env[]);

struct pgtest {
    char dir[256]; /* data directory (temp) */
    int port;
    pid_t pid;     /* postmaster pid, read from postmaster.pid */
    char url[512]; /* "postgresql://postgres@127.0.0.1:PORT/postgres" */
};

/* initdb + pg_ctl start as user postgres when run as root (as the current user otherwise), with
 * trust auth on loopback only. 0 on success; -1 with a message on stderr (nothing left running). */
int pgtest_start(struct pgtest *pg);
/* Stops the server (pg_ctl -m immediate, then SIGKILL by pid if needed) and removes the dir. */
void pgtest_stop(struct pgtest *pg);
/* pg_ctl restart -m mode ("fast", "immediate") on the same data directory and port; waits until
 * the server accepts connections again. 0, or -1 with a message on stderr. */
int pgtest_restart(struct pgtest *pg, const char *mode);
/* pg_ctl stop -m mode, keeping the data directory (pgtest_start_again starts it again on the
 * same port; pgtest_stop still removes it). 0 or -1. */
int pgtest_stop_keep(struct pgtest *pg, const char *mode);
int pgtest_start_again(struct pgtest *pg);

struct mototest {
    char home[256]; /* temp HOME with .aws/models */
    int port;
    pid_t pid;
    char url[128]; /* "http://127.0.0.1:PORT" */
};

/* Starts moto through tests/support/moto_launcher.py and waits until it answers (up to 30 s).
 * The server dies with the test process (PR_SET_PDEATHSIG) even if the test crashes. */
int mototest_start(struct mototest *m);
/* POST /moto-api/reset-auth with `0` (on: check signatures and IAM policies) or `inf` (off). */
int mototest_set_auth(struct mototest *m, int on);
/* POST /moto-api/reset: forget all state. */
int mototest_reset(struct mototest *m);
void mototest_stop(struct mototest *m);

/* Runs tests/support/moto_seed.py against m with the fleet file; *out gets its JSON output. */
int mototest_seed(struct mototest *m, const char *fleet_file, char **out);

#endif
