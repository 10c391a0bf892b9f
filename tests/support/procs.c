/* procs.c - starting and always stopping the real PostgreSQL and moto servers that integration
 * tests use. Every started pid is registered so that a crash or early exit still stops it. */
#define _GNU_SOURCE /* execvpe, nftw */
#include "tests/support/procs.h"

#include <arpa/inet.h>
#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <glob.h>
#include <limits.h>
#include <netinet/in.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

/* Registry of live server pids, stopped on exit or on a fatal signal. */
#define MAX_TRACKED 16
static volatile pid_t tracked[MAX_TRACKED];
static int cleanup_installed;

static void kill_tracked(void)
{
    for (int i = 0; i < MAX_TRACKED; i++)
        if (tracked[i] > 0)
            kill(tracked[i], SIGKILL);
}

static void on_fatal(int sig)
{
    kill_tracked();
    signal(sig, SIG_DFL);
    raise(sig);
}

static void track(pid_t pid)
{
    if (!cleanup_installed) {
        atexit(kill_tracked);
        signal(SIGSEGV, on_fatal);
        signal(SIGABRT, on_fatal);
        signal(SIGBUS, on_fatal);
        signal(SIGINT, on_fatal);
        signal(SIGTERM, on_fatal);
        cleanup_installed = 1;
    }
    for (int i = 0; i < MAX_TRACKED; i++)
        if (tracked[i] <= 0) {
            tracked[i] = pid;
            return;
        }
}

static void untrack(pid_t pid)
{
    for (int i = 0; i < MAX_TRACKED; i++)
        if (tracked[i] == pid)
            tracked[i] = 0;
}

int procs_free_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0)
        return -1;
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof a;
    int port = -1;
    if (bind(fd, (struct sockaddr *)&a, sizeof a) == 0 &&
        getsockname(fd, (struct sockaddr *)&a, &len) == 0)
        port = ntohs(a.sin_port);
    close(fd);
    return port;
}

/* Builds environ + extra into a new NULL-terminated array (entries borrowed). */
static char **merged_env(char *const extra[])
{
    size_t n = 0, m = 0;
    while (environ[n])
        n++;
    while (extra && extra[m])
        m++;
    char **env = calloc(n + m + 1, sizeof *env);
    if (!env)
        return NULL;
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        int overridden = 0;
        const char *eq = strchr(environ[i], '=');
        size_t klen = eq ? (size_t)(eq - environ[i]) : strlen(environ[i]);
        for (size_t j = 0; j < m; j++)
            if (strncmp(extra[j], environ[i], klen) == 0 && extra[j][klen] == '=')
                overridden = 1;
        if (!overridden)
            env[k++] = environ[i];
    }
    for (size_t j = 0; j < m; j++)
        env[k++] = extra[j];
    return env;
}

/* fork + exec with optional uid switch, stdout capture, and death with the parent. */
static pid_t spawn(char *const argv[], char *const extra_env[], const struct passwd *as,
                   int die_with_parent, int *out_fd)
{
    int pipefd[2] = {-1, -1};
    if (out_fd && pipe(pipefd) < 0)
        return -1;
    char **env = merged_env(extra_env);
    if (!env)
        return -1;
    pid_t pid = fork();
    if (pid == 0) {
        if (die_with_parent)
            prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (out_fd) {
            dup2(pipefd[1], STDOUT_FILENO);
            close(pipefd[0]);
            close(pipefd[1]);
        }
        if (as && (setgid(as->pw_gid) < 0 || setuid(as->pw_uid) < 0)) {
            perror("setuid");
            _exit(127);
        }
        execvpe(argv[0], argv, env);
        fprintf(stderr, "exec %s: %s\n", argv[0], strerror(errno));
        _exit(127);
    }
    free(env);
    if (out_fd) {
        close(pipefd[1]);
        *out_fd = pipefd[0];
        if (pid < 0)
            close(pipefd[0]);
    }
    return pid;
}

static char *read_all(int fd)
{
    size_t cap = 4096, len = 0;
    char *s = malloc(cap);
    for (;;) {
        if (!s)
            return NULL;
        if (len + 1 == cap) {
            char *t = realloc(s, cap *= 2);
            if (!t) {
                free(s);
                return NULL;
            }
            s = t;
        }
        ssize_t n = read(fd, s + len, cap - len - 1);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;
        len += (size_t)n;
    }
    s[len] = '\0';
    return s;
}

static int wait_status(pid_t pid)
{
    int st;
    while (waitpid(pid, &st, 0) < 0)
        if (errno != EINTR)
            return -1;
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static int run_as(char *const argv[], char *const env[], const struct passwd *as, char **out)
{
    int fd = -1;
    pid_t pid = spawn(argv, env, as, 1, out ? &fd : NULL);
    if (pid < 0)
        return -1;
    if (out) {
        *out = read_all(fd);
        close(fd);
    }
    return wait_status(pid);
}

int procs_run(char *const argv[], char *const env[], char **out)
{
    return run_as(argv, env, NULL, out);
}

int procs_run2(char *const argv[], char *const env[], char **out, char **errout)
{
    if (!errout)
        return run_as(argv, env, NULL, out);
    char path[] = "/tmp/egressscan-stderr-XXXXXX";
    int fd = mkstemp(path);
    if (fd < 0)
        return -1;
    unlink(path);
    int saved = dup(STDERR_FILENO);
    dup2(fd, STDERR_FILENO);
    int outfd = -1;
    pid_t pid = spawn(argv, env, NULL, 1, out ? &outfd : NULL);
    dup2(saved, STDERR_FILENO);
    close(saved);
    int rc = -1;
    if (pid > 0) {
        if (out) {
            *out = read_all(outfd);
            close(outfd);
        }
        rc = wait_status(pid);
    }
    lseek(fd, 0, SEEK_SET);
    *errout = read_all(fd);
    close(fd);
    return rc;
}

pid_t procs_spawn(char *const argv[], char *const env[])
{
    return spawn(argv, env, NULL, 1, NULL);
}

static int rm_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb;
    (void)flag;
    (void)ftw;
    return remove(path);
}

static void rm_tree(const char *dir)
{
    if (dir[0])
        nftw(dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

/* ---- PostgreSQL ---- */

static int pg_bindir(char *out, size_t cap)
{
    const char *env = getenv("PG_BINDIR");
    if (env && *env) {
        snprintf(out, cap, "%s", env);
        return 0;
    }
    glob_t g;
    if (glob("/usr/lib/postgresql/*/bin/initdb", 0, NULL, &g) != 0 || g.gl_pathc == 0) {
        fprintf(stderr, "pgtest: no initdb under /usr/lib/postgresql (set PG_BINDIR)\n");
        return -1;
    }
    /* glob sorts; the last one is the newest major version (15 < 16 as strings of equal width) */
    snprintf(out, cap, "%s", g.gl_pathv[g.gl_pathc - 1]);
    globfree(&g);
    char *slash = strrchr(out, '/');
    if (slash)
        *slash = '\0';
    return 0;
}

/* The user the server runs as: postgres when the tests run as root, else ourselves (NULL). */
static int pg_user(const struct passwd **as)
{
    *as = NULL;
    if (geteuid() != 0)
        return 0;
    *as = getpwnam("postgres");
    if (!*as) {
        fprintf(stderr, "pgtest: running as root but there is no 'postgres' user\n");
        return -1;
    }
    return 0;
}

/* pg_ctl ACTION on pg's data directory, with the server options of pgtest_start (its port) and
 * -m mode when mode is not NULL; waits for it (-w). pg_ctl's exit status. */
static int pg_ctl(const struct pgtest *pg, const char *action, const char *mode)
{
    char bindir[PATH_MAX], pgctl[PATH_MAX + 16], data[300], logf[320], opts[600];
    const struct passwd *as;
    if (pg_bindir(bindir, sizeof bindir) < 0 || pg_user(&as) < 0)
        return -1;
    snprintf(pgctl, sizeof pgctl, "%s/pg_ctl", bindir);
    snprintf(data, sizeof data, "%s/data", pg->dir);
    snprintf(logf, sizeof logf, "%s/server.log", pg->dir);
    snprintf(opts, sizeof opts,
             "-c listen_addresses=127.0.0.1 -p %d -k %s -c fsync=off "
             "-c synchronous_commit=off -c full_page_writes=off -c max_connections=50",
             pg->port, pg->dir);
    char *argv[16] = {pgctl, "-D", data, "-l", logf, "-w", "-t", "60", "-o", opts};
    int n = 10;
    if (mode) {
        argv[n++] = "-m";
        argv[n++] = (char *)mode;
    }
    argv[n++] = (char *)action;
    argv[n] = NULL;
    char *o = NULL;
    int rc = run_as(argv, NULL, as, &o);
    free(o);
    return rc;
}

/* pg->pid from postmaster.pid (tracked, so that a crash of the test stops it). */
static int read_postmaster_pid(struct pgtest *pg)
{
    char pidfile[320];
    snprintf(pidfile, sizeof pidfile, "%s/data/postmaster.pid", pg->dir);
    FILE *f = fopen(pidfile, "r");
    long pid = 0;
    if (!f || fscanf(f, "%ld", &pid) != 1 || pid <= 0) {
        if (f)
            fclose(f);
        fprintf(stderr, "pgtest: cannot read %s\n", pidfile);
        return -1;
    }
    fclose(f);
    pg->pid = (pid_t)pid;
    track(pg->pid);
    return 0;
}

/* The end of the server's log on stderr, to explain a failed pg_ctl. */
static void show_log_tail(const struct pgtest *pg)
{
    char path[320];
    snprintf(path, sizeof path, "%s/server.log", pg->dir);
    FILE *f = fopen(path, "r");
    if (!f)
        return;
    char tail[4096];
    fseek(f, 0, SEEK_END);
    long size = ftell(f);
    fseek(f, size > (long)sizeof tail - 1 ? size - (long)sizeof tail + 1 : 0, SEEK_SET);
    size_t n = fread(tail, 1, sizeof tail - 1, f);
    tail[n] = '\0';
    fclose(f);
    fprintf(stderr, "pgtest: end of %s:\n%s\n", path, tail);
}

int pgtest_restart(struct pgtest *pg, const char *mode)
{
    if (pg->pid > 0)
        untrack(pg->pid);
    pg->pid = 0;
    if (pg_ctl(pg, "restart", mode) != 0) {
        fprintf(stderr, "pgtest: pg_ctl restart -m %s failed\n", mode);
        show_log_tail(pg);
        return -1;
    }
    return read_postmaster_pid(pg);
}

int pgtest_stop_keep(struct pgtest *pg, const char *mode)
{
    int rc = pg_ctl(pg, "stop", mode);
    if (rc != 0) {
        fprintf(stderr, "pgtest: pg_ctl stop -m %s failed\n", mode);
        show_log_tail(pg);
    }
    if (pg->pid > 0 && kill(pg->pid, 0) != 0) {
        untrack(pg->pid);
        pg->pid = 0;
    }
    return rc == 0 ? 0 : -1;
}

int pgtest_start_again(struct pgtest *pg)
{
    if (pg_ctl(pg, "start", NULL) != 0) {
        fprintf(stderr, "pgtest: pg_ctl start failed\n");
        show_log_tail(pg);
        return -1;
    }
    return read_postmaster_pid(pg);
}

int pgtest_start(struct pgtest *pg)
{
    memset(pg, 0, sizeof *pg);
    char bindir[PATH_MAX], initdb[PATH_MAX + 16];
    if (pg_bindir(bindir, sizeof bindir) < 0)
        return -1;
    snprintf(initdb, sizeof initdb, "%s/initdb", bindir);

    const struct passwd *as;
    if (pg_user(&as) < 0)
        return -1;
    snprintf(pg->dir, sizeof pg->dir, "/tmp/egressscan-pg-XXXXXX");
    if (!mkdtemp(pg->dir)) {
        perror("pgtest: mkdtemp");
        return -1;
    }
    if (as && chown(pg->dir, as->pw_uid, as->pw_gid) < 0) {
        perror("pgtest: chown");
        goto fail;
    }
    char data[300], logf[320];
    snprintf(data, sizeof data, "%s/data", pg->dir);
    snprintf(logf, sizeof logf, "%s/server.log", pg->dir);
    char *initdb_argv[] = {initdb, "-D",   data,        "-U", "postgres", "--auth=trust",
                           "-E",   "UTF8", "--no-sync", "-N", NULL};
    char *quiet = NULL;
    if (run_as(initdb_argv, NULL, as, &quiet) != 0) {
        free(quiet);
        fprintf(stderr, "pgtest: initdb failed\n");
        goto fail;
    }
    free(quiet);

    for (int tries = 0; tries < 5; tries++) {
        pg->port = procs_free_port();
        if (pg_ctl(pg, "start", NULL) == 0)
            break;
        pg->port = -1;
    }
    if (pg->port < 0) {
        fprintf(stderr, "pgtest: pg_ctl start failed (see %s)\n", logf);
        goto fail;
    }
    if (read_postmaster_pid(pg) < 0)
        goto fail;
    snprintf(pg->url, sizeof pg->url, "postgresql://postgres@127.0.0.1:%d/postgres", pg->port);
    return 0;
fail:
    rm_tree(pg->dir);
    pg->dir[0] = '\0';
    return -1;
}

void pgtest_stop(struct pgtest *pg)
{
    if (pg->pid > 0) {
        kill(pg->pid, SIGQUIT); /* immediate shutdown */
        for (int i = 0; i < 100 && kill(pg->pid, 0) == 0; i++) {
            struct timespec ts = {0, 50 * 1000 * 1000};
            nanosleep(&ts, NULL);
        }
        if (kill(pg->pid, 0) == 0)
            kill(pg->pid, SIGKILL);
        untrack(pg->pid);
        pg->pid = 0;
    }
    rm_tree(pg->dir);
    pg->dir[0] = '\0';
}

/* ---- moto ---- */

static size_t discard(char *p, size_t s, size_t n, void *ud)
{
    (void)p;
    (void)ud;
    return s * n;
}

/* POSTs body to url; returns the HTTP status or -1. */
static long post_text(const char *url, const char *body)
{
    CURL *c = curl_easy_init();
    if (!c)
        return -1;
    struct curl_slist *h = curl_slist_append(NULL, "Content-Type: text/plain");
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
    curl_easy_setopt(c, CURLOPT_POSTFIELDS, body ? body : "");
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, discard);
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, 10000L);
    long status = -1;
    if (curl_easy_perform(c) == CURLE_OK)
        curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
    curl_slist_free_all(h);
    curl_easy_cleanup(c);
    return status;
}

static int get_ok(const char *url)
{
    CURL *c = curl_easy_init();
    if (!c)
        return 0;
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, discard);
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, 2000L);
    long status = 0;
    if (curl_easy_perform(c) == CURLE_OK)
        curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
    curl_easy_cleanup(c);
    return status == 200;
}

int mototest_start(struct mototest *m)
{
    memset(m, 0, sizeof *m);
    char cwd[PATH_MAX];
    if (!getcwd(cwd, sizeof cwd))
        return -1;
    snprintf(m->home, sizeof m->home, "/tmp/egressscan-moto-XXXXXX");
    if (!mkdtemp(m->home)) {
        perror("mototest: mkdtemp");
        return -1;
    }
    char awsdir[300], models[320], src[PATH_MAX + 32];
    snprintf(awsdir, sizeof awsdir, "%s/.aws", m->home);
    snprintf(models, sizeof models, "%s/models", awsdir);
    snprintf(src, sizeof src, "%s/tests/data/aws-models", cwd);
    if (mkdir(awsdir, 0700) < 0 || symlink(src, models) < 0) {
        perror("mototest: models");
        goto fail;
    }
    const char *python = getenv("PYTHON") ? getenv("PYTHON") : "python3";
    for (int tries = 0; tries < 3 && m->pid <= 0; tries++) {
        m->port = procs_free_port();
        char port[16], launcher[PATH_MAX + 48], home_env[300], logpath[300];
        snprintf(port, sizeof port, "%d", m->port);
        snprintf(launcher, sizeof launcher, "%s/tests/support/moto_launcher.py", cwd);
        snprintf(home_env, sizeof home_env, "HOME=%s", m->home);
        snprintf(logpath, sizeof logpath, "%s/moto.log", m->home);
        char *argv[] = {(char *)python, launcher, "-H", "127.0.0.1", "-p", port, NULL};
        char *env[] = {home_env, "PYTHONUNBUFFERED=1", NULL};
        /* moto logs every request on stderr; keep it in a file beside HOME */
        int saved = dup(STDERR_FILENO);
        int logfd = open(logpath, O_WRONLY | O_CREAT | O_TRUNC, 0600);
        if (logfd >= 0)
            dup2(logfd, STDERR_FILENO);
        pid_t pid = spawn(argv, env, NULL, 1, NULL);
        dup2(saved, STDERR_FILENO);
        close(saved);
        if (logfd >= 0)
            close(logfd);
        if (pid < 0)
            continue;
        track(pid);
        snprintf(m->url, sizeof m->url, "http://127.0.0.1:%d", m->port);
        char probe[200];
        snprintf(probe, sizeof probe, "%s/moto-api/data.json", m->url);
        for (int i = 0; i < 300; i++) {
            if (get_ok(probe)) {
                m->pid = pid;
                break;
            }
            if (waitpid(pid, NULL, WNOHANG) == pid)
                break; /* died: port taken, try another */
            struct timespec ts = {0, 100 * 1000 * 1000};
            nanosleep(&ts, NULL);
        }
        if (m->pid <= 0) {
            kill(pid, SIGKILL);
            waitpid(pid, NULL, 0);
            untrack(pid);
        }
    }
    if (m->pid <= 0) {
        fprintf(stderr, "mototest: moto server did not start (log in %s/moto.log)\n", m->home);
        goto fail;
    }
    return 0;
fail:
    rm_tree(m->home);
    m->home[0] = '\0';
    return -1;
}

int mototest_set_auth(struct mototest *m, int on)
{
    char url[200];
    snprintf(url, sizeof url, "%s/moto-api/reset-auth", m->url);
    return post_text(url, on ? "0" : "inf") == 200 ? 0 : -1;
}

int mototest_reset(struct mototest *m)
{
    char url[200];
    snprintf(url, sizeof url, "%s/moto-api/reset", m->url);
    return post_text(url, "") == 200 ? 0 : -1;
}

void mototest_stop(struct mototest *m)
{
    if (m->pid > 0) {
        kill(m->pid, SIGTERM);
        for (int i = 0; i < 50 && waitpid(m->pid, NULL, WNOHANG) == 0; i++) {
            struct timespec ts = {0, 100 * 1000 * 1000};
            nanosleep(&ts, NULL);
        }
        kill(m->pid, SIGKILL);
        waitpid(m->pid, NULL, 0);
        untrack(m->pid);
        m->pid = 0;
    }
    rm_tree(m->home);
    m->home[0] = '\0';
}

int mototest_seed(struct mototest *m, const char *fleet_file, char **out)
{
    const char *python = getenv("PYTHON") ? getenv("PYTHON") : "python3";
    char models[PATH_MAX + 64], cwd[PATH_MAX];
    if (!getcwd(cwd, sizeof cwd))
        return -1;
    snprintf(models, sizeof models, "AWS_DATA_PATH=%s/tests/data/aws-models", cwd);
    char *argv[] = {(char *)python, "tests/support/moto_seed.py", "--endpoint",
                    m->url,         (char *)fleet_file,           NULL};
    char *env[] = {models, NULL};
    return procs_run(argv, env, out);
}
