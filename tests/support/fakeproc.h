/* fakeproc.h - build/fakeaws as a child process of an integration test: started with a fleet
 * and its --truth, its stats read, a throwaway TLS certificate for it, and what egressscan
 * stored in PostgreSQL compared with the truth. Shared by every test that scans the fake. */
#ifndef EGRESSSCAN_TESTS_FAKEPROC_H
#define EGRESSSCAN_TESTS_FAKEPROC_H

#include <stddef.h>
#include <sys/types.h>

#include <jansson.h>

struct fakeproc {
    pid_t pid;
    int port;
    int tls;
    char url[128];        /* http://127.0.0.1:PORT or https://localhost:PORT */
    char truth_path[320]; /* DIR/NAME-truth.json */
    json_t *truth;        /* new: the generated fleet */
    char ca_file[320];    /* the certificate a TLS fake serves (set after start) */
};

/* The fakeaws binary: $FAKEAWS, else fakeaws beside $BIN, else build/fakeaws. NULL (with a
 * message) when it is not built. */
const char *fakeproc_bin(void);

/* Starts fakeaws on a free port with the flags args (NULL-terminated: fleet, faults, TLS ...)
 * plus --port and --truth DIR/NAME-truth.json, waits until it listens and loads the truth. tls:
 * the URL is https://localhost (args must carry --tls-cert/--tls-key). 0, or -1 with a message
 * on stderr (nothing left running). */
int fakeproc_start(struct fakeproc *f, const char *dir, const char *name, int tls,
                   const char *const *args);

/* SIGTERM, waits, removes the truth file; the exit status (0: clean shutdown), -1 otherwise. */
int fakeproc_stop(struct fakeproc *f);

/* GET /fakeaws/stats (with ?accounts=1 when per_account), parsed (new), or NULL. */
json_t *fakeproc_stats(const struct fakeproc *f, int per_account);

/* stats[group][key] as a number (0 when absent). */
long fakeproc_stat(json_t *stats, const char *group, const char *key);

/* Writes a self-signed certificate for localhost/127.0.0.1 and its key into dir (cert.pem,
 * key.pem) with openssl(1); the paths go to cert and key. 0 or -1. */
int fakeproc_make_cert(const char *dir, char *cert, size_t cert_size, char *key, size_t key_size);

/* Compares egressscan.current_clusters in database_url (account, region, name, egress mode)
 * with the truth's clusters: returns how many rows differ (missing, extra, other mode, or the
 * same cluster twice), -1 when the database cannot be read. *diff (may be NULL) gets up to 20
 * lines naming them (malloc'd; the caller frees). */
long fakeproc_diff_db(const struct fakeproc *f, const char *database_url, char **diff);

#endif
