/* fakeaws.h - internal interfaces of the fast fake AWS: the deterministic fleet (fleet.c), the
 * fault plan (faults.c), the AWS answers (api.c) and the event loop that serves them (server.c).
 * Everything is read-only after start except the counters, which are atomics. */
#ifndef EGRESSSCAN_FAKEAWS_H
#define EGRESSSCAN_FAKEAWS_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <time.h>

#include "common/buf.h"
#include "common/err.h"
#include "scanner/sigv4.h"

/* ---- deterministic randomness (no rand()) ---- */

/* splitmix64: the next value of the stream *state. */
uint64_t fa_next(uint64_t *state);
/* Uniform in [0, 1). */
double fa_rand01(uint64_t *state);
/* Stateless 64-bit mix of x (the splitmix64 finalizer). */
uint64_t fa_mix(uint64_t x);

/* ---- the fleet ---- */

struct fa_updates;

#define FA_ALL_REGIONS 17
#define FA_NAME_MAX 101 /* EKS names are at most 100 characters */

enum fa_mode { FA_AWS_MANAGED = 0, FA_CUSTOMER_ROUTED, FA_CUSTOMER_ISOLATED, FA_MODE_ABSENT };

/* "AWS_MANAGED", ..., NULL for FA_MODE_ABSENT. */
const char *fa_mode_name(int mode);

/* The root (index 0) or an OU. */
struct fa_node {
    char id[40];       /* "r-ab12" / "ou-ab12-1a2b3c4d" */
    char name[32];     /* "Root" / "Prod" */
    int parent;        /* -1 for the root */
    int depth;         /* 0 for the root */
    char path[256];    /* "Root/Prod/Regulated" */
    char id_path[400]; /* "r-ab12/ou-.../ou-..." */
    /* children: OUs and accounts, as ranges of fa_fleet.child_ous / child_accounts */
    uint32_t ou_start, ou_count;
    uint32_t acct_start, acct_count;
};

struct fa_account {
    char id[13]; /* 12 digits, leading zeros kept */
    uint64_t id_num;
    char name[48];
    char email[80];
    int suspended;
    int node;       /* the root or OU directly above it */
    double joined;  /* epoch seconds */
    int mode_class; /* which egress-mode mix its clusters follow */
};

struct fa_cluster {
    char name[FA_NAME_MAX];
    uint8_t region;
    int8_t mode;    /* enum fa_mode */
    uint8_t hidden; /* --updates ... --before: a cluster created later, not served yet */
    uint32_t account;
    uint64_t h; /* drives every other field of the DescribeCluster answer */
};

enum fa_target_kind { FA_TARGET_ROOT_OR_OU = 0, FA_TARGET_ACCOUNT };

struct fa_scp_target {
    int kind;
    int idx; /* node or account index */
};

struct fa_scp {
    char id[24];
    char name[64];
    char description[128];
    char arn[160];
    int aws_managed;
    char *content; /* the policy document (JSON text) */
    struct fa_scp_target *targets;
    size_t n_targets;
    char *describe_body; /* the DescribePolicy answer, rendered once */
};

struct fa_fleet_params {
    size_t accounts;
    size_t regions;
    double clusters_mean; /* Poisson mean per account x region */
    uint64_t seed;
};

struct fa_fleet {
    struct fa_fleet_params p;
    char org_id[16];
    char root_suffix[8];
    const char *regions[FA_ALL_REGIONS];
    size_t n_regions;

    struct fa_node *nodes; /* [0] is the root */
    size_t n_nodes;
    uint32_t *child_ous;      /* node indices, grouped by parent */
    uint32_t *child_accounts; /* account indices, grouped by parent */

    struct fa_account *accounts; /* [0] is the management account */
    size_t n_accounts;
    struct {
        uint64_t id;
        uint32_t idx;
    } * by_id; /* sorted by id */

    struct fa_cluster *clusters; /* ordered by account, then region */
    size_t n_clusters;
    uint32_t *target_start; /* n_accounts * n_regions + 1 offsets into clusters */

    struct fa_scp *scps;
    size_t n_scps;

    const struct fa_updates *updates; /* --updates (NULL: none); written into --truth */

    char ca_data[1500]; /* base64 certificate authority data, ~1.4 KB */
    char *describe_org_body;
    char *list_roots_body;
    char *describe_regions_tail; /* the DescribeRegions XML after <requestId> */
};

/* Generates the fleet from p (deterministic in p). -1 with err on bad parameters or ENOMEM. */
int fleet_generate(struct fa_fleet *f, const struct fa_fleet_params *p, struct err *err);
void fleet_cleanup(struct fa_fleet *f);
/* Writes the fleet as JSON (accounts, ous, scps, clusters, regions) to path. */
int fleet_write_truth(const struct fa_fleet *f, const char *path, struct err *err);
/* The account with this 12-digit id, or -1. */
long fleet_find_account(const struct fa_fleet *f, const char *id, size_t len);
/* Renders the DescribeCluster answer of cluster c. */
int fleet_render_cluster(const struct fa_fleet *f, const struct fa_cluster *c, struct buf *out);
/* printf onto b (formats once when it fits the spare room). -1 on ENOMEM. */
int fa_printf(struct buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Appends s as a JSON string literal (quoted, escaped). */
int fa_json_str(struct buf *b, const char *s, size_t len);
/* Appends s with XML's five special characters escaped. */
int fa_xml_str(struct buf *b, const char *s, size_t len);

/* ---- cluster updates (--updates, --before) ---- */

/* What happened to a cluster between two scans (tests/fakeaws/README.md, "Updates"). */
enum fa_update_kind {
    FA_U_NONE = 0,
    FA_U_SUCCESSFUL,  /* the mode became CUSTOMER_ROUTED by a Successful egress update */
    FA_U_FAILED,      /* the mode reads CUSTOMER_ROUTED; the egress update towards it Failed */
    FA_U_IN_PROGRESS, /* the mode reads CUSTOMER_ROUTED; the egress update is InProgress */
    FA_U_REPLACED,    /* deleted and created again with another mode: no egress update */
    FA_U_CREATED,     /* a new cluster (absent --before), created with its mode: no update */
    FA_U_COUNT
};

extern const char *const fa_update_kind_names[FA_U_COUNT]; /* "", "successful", ... */

#define FA_CLUSTER_UPDATES_MAX 3

/* One update of a cluster, as DescribeUpdate renders it. */
struct fa_update {
    char id[40]; /* a UUID */
    const char *type;
    const char *status;
    const char *param_type;
    const char *value;
    long created_at; /* epoch seconds */
};

struct fa_updates {
    uint32_t *cluster;   /* cluster indices, ascending */
    unsigned char *kind; /* enum fa_update_kind */
    int8_t *before;      /* the mode before the change (enum fa_mode) */
    size_t n;
    int before_mode; /* --before: serve the fleet as it was before the changes */
};

/* Parses "INDEX:KIND[,INDEX:KIND...]" (INDEX: the cluster's position in --truth's clusters,
 * KIND successful|failed|in_progress|replaced|created) and applies it to f: the changed modes,
 * or with before the old ones and created clusters hidden. NULL/"none": no updates. -1 with err
 * on a malformed spec or a change that cannot be (successful, failed or in_progress of a cluster
 * already CUSTOMER_ROUTED). */
int updates_parse(const char *spec, int before, struct fa_fleet *f, struct fa_updates *out,
                  struct err *err);
void updates_cleanup(struct fa_updates *u);
/* The updates EKS lists for cluster index ci, oldest first (at most FA_CLUSTER_UPDATES_MAX):
 * none for a cluster without a scripted change (and for replaced and created ones). */
size_t updates_of(const struct fa_updates *u, const struct fa_fleet *f, uint32_t ci,
                  struct fa_update *out);

/* ---- faults ---- */

enum fa_fault { FA_F_THROTTLE = 0, FA_F_5XX, FA_F_RESET, FA_F_TRUNCATE, FA_F_SLOW, FA_F_COUNT };

extern const char *const fa_fault_names[FA_F_COUNT]; /* "throttle", "5xx", ... */

struct fa_fault_rates {
    double rate[FA_F_COUNT];
};

struct fa_fault_override {
    uint32_t account; /* account index */
    struct fa_fault_rates rates;
};

struct fa_faults {
    struct fa_fault_rates global;
    struct fa_fault_override *overrides;
    size_t n_overrides;
    long slow_ms;
    uint64_t seed;
    int any; /* some rate is nonzero */
};

/* Parses the --faults grammar (see README.md). Accounts named by overrides must be in f.
 * -1 with err (InvalidInput) on a malformed spec. */
int faults_parse(const char *spec, const struct fa_fleet *f, struct fa_faults *out,
                 struct err *err);
void faults_cleanup(struct fa_faults *x);
/* The rates that apply to account (index, or -1 when unknown). */
const struct fa_fault_rates *faults_for(const struct fa_faults *x, long account);
/* Draws the fault for one request: -1 for none, else an enum fa_fault. */
int faults_draw(const struct fa_fault_rates *r, uint64_t *rng);

/* ---- hostile accounts (--hostile) ---- */

/* How a hostile member account answers EKS (SPEC section 4: every answer is untrusted). */
enum fa_hostile_kind {
    FA_H_NONE = 0,
    FA_H_FOREIGN_ARN, /* DescribeCluster: the arn of another account's AWS_MANAGED cluster in the
                         same region, mode CUSTOMER_ROUTED */
    FA_H_NO_ARN,      /* DescribeCluster: no arn */
    FA_H_LONG_NAME,   /* ListClusters adds a 150-character name, which DescribeCluster answers */
    FA_H_BAD_CREATED, /* DescribeCluster: createdAt "yesterday-ish" */
    FA_H_ERROR_UTF8,  /* ListClusters: 400 with a message whose "é" straddles bytes 300/301 */
    FA_H_LOOP_TOKEN,  /* ListClusters: always nextToken "same" */
    FA_H_COUNT
};

extern const char *const fa_hostile_names[FA_H_COUNT]; /* "", "foreign_arn", ... */

struct fa_hostile {
    unsigned char *kind; /* per account index: enum fa_hostile_kind */
    size_t n_accounts;
};

/* Parses "INDEX:KIND[,INDEX:KIND...]" (INDEX: the account's position in the fleet, 1..N-1) or
 * NULL/"none". -1 with err on a malformed spec. */
int hostile_parse(const char *spec, const struct fa_fleet *f, struct fa_hostile *out,
                  struct err *err);
void hostile_cleanup(struct fa_hostile *h);
/* The kind of account index a (FA_H_NONE when a is out of range). */
int hostile_kind(const struct fa_hostile *h, long a);
/* Rewrites the DescribeCluster answer in b (rendered by fleet_render_cluster) as account a of
 * kind k sends it for a cluster of region index ri. -1 on ENOMEM. */
int hostile_patch_cluster(const struct fa_fleet *f, const struct fa_hostile *h, int k, long a,
                          size_t ri, struct buf *b);
/* The 150-character name FA_H_LONG_NAME lists, and its DescribeCluster answer. */
extern const char fa_hostile_long_name[];
int hostile_render_long(const struct fa_fleet *f, long a, size_t ri, struct buf *b);

/* ---- counters ---- */

enum fa_op {
    FA_OP_DESCRIBE_ORGANIZATION = 0,
    FA_OP_LIST_ROOTS,
    FA_OP_LIST_OUS,
    FA_OP_LIST_ACCOUNTS_FOR_PARENT,
    FA_OP_LIST_ACCOUNTS,
    FA_OP_LIST_POLICIES,
    FA_OP_DESCRIBE_POLICY,
    FA_OP_LIST_TARGETS,
    FA_OP_ASSUME_ROLE,
    FA_OP_DESCRIBE_REGIONS,
    FA_OP_LIST_CLUSTERS,
    FA_OP_DESCRIBE_CLUSTER,
    FA_OP_LIST_UPDATES,
    FA_OP_DESCRIBE_UPDATE,
    FA_OP_UNKNOWN,
    FA_OP_COUNT
};

extern const char *const fa_op_names[FA_OP_COUNT];

enum fa_errkind {
    FA_E_SIGNATURE = 0, /* SignatureDoesNotMatch / InvalidSignatureException */
    FA_E_BAD_TOKEN,     /* unknown key or session token */
    FA_E_EXPIRED,       /* expired session token */
    FA_E_ACCESS_DENIED, /* AssumeRole into a missing or suspended account, Organizations from a
                           member account */
    FA_E_NOT_FOUND,     /* unknown cluster, parent or policy */
    FA_E_INVALID,       /* malformed request */
    FA_E_COUNT
};

extern const char *const fa_errkind_names[FA_E_COUNT];

struct fa_stats {
    atomic_ulong requests;
    atomic_ulong ops[FA_OP_COUNT];
    atomic_ulong faults[FA_F_COUNT];
    atomic_ulong errors[FA_E_COUNT];
    atomic_ulong status_2xx, status_4xx, status_5xx;
    atomic_ulong connections, tls_handshakes, tls_resumed;
    atomic_ulong *acct_requests; /* per account (by the caller's credentials) */
    atomic_ulong *acct_throttles;
    size_t n_accounts;
};

/* ---- options and the request handler ---- */

struct fa_options {
    const char *bind;
    int port;
    const char *tls_cert, *tls_key;
    int threads;
    long latency_ms;
    int verify_sigv4;
    const char *base_access_key;
    const char *base_secret_key;
    long credential_lifetime_s; /* 0: DurationSeconds (default 3600) */
    size_t max_conns;           /* per thread */
    const char *truth;
    const char *credentials_log; /* test only: every issued credential appended here */
    const char *faults_spec;
    const char *hostile_spec;
    const char *updates_spec;
    int before; /* --before */
    struct fa_fleet_params fleet;
};

struct fa_app {
    struct fa_options opt;
    struct fa_fleet fleet;
    struct fa_faults faults;
    struct fa_hostile hostile;
    struct fa_updates updates;
    struct fa_stats stats;
    unsigned char token_key[32]; /* signs session tokens and derives secrets */
    atomic_uint akid_counter;
    int credentials_log_fd; /* -1: none */
};

#define FA_MAX_HEADERS 64

struct fa_header {
    const char *name;
    const char *value;
};

/* One parsed request; strings point into the connection's buffer (NUL-terminated in place). */
struct fa_request {
    const char *method;
    const char *path;  /* before '?' */
    const char *query; /* after '?', NULL when none */
    struct fa_header headers[FA_MAX_HEADERS];
    size_t n_headers;
    const char *body;
    size_t body_len;
};

enum fa_action {
    FA_ACT_RESPOND = 0, /* write the answer, keep the connection (unless close) */
    FA_ACT_RESET,       /* close with RST, nothing written */
    FA_ACT_TRUNCATE     /* write the head and half the body, then close */
};

struct fa_response {
    enum fa_action action;
    long delay_ms;   /* when to write it (latency or a slow fault) */
    int close;       /* Connection: close after this answer */
    size_t head_len; /* bytes of status line and headers in out */
};

/* What a thread knows about an access key it has seen: the session token it checked, the
 * secret, and the SigV4 signing keys derived from it. */
#define FA_CRED_SLOTS 512

struct fa_cred {
    char akid[24];
    char token_head[64]; /* the signed part of the session token */
    time_t expiry;
    char secret[64];
    struct sigv4_key_cache keys;
};

/* Per-thread state of the handler. */
struct fa_worker {
    struct fa_app *app;
    unsigned id;
    uint64_t rng;     /* fault draws */
    uint64_t req_seq; /* request ids */
    struct buf body;  /* scratch for rendering */
    time_t date_sec;
    char date[40];         /* the Date header of date_sec */
    struct fa_cred *creds; /* FA_CRED_SLOTS entries */
};

/* -1 on ENOMEM (worker_cleanup is still needed). */
int worker_init(struct fa_worker *w, struct fa_app *app, unsigned id);
void worker_cleanup(struct fa_worker *w);

/* Answers req: writes the whole HTTP response (head and body) into out (reset first) and fills
 * resp. Never fails: errors become AWS error answers (or a 500 when out of memory). */
void api_handle(struct fa_worker *w, const struct fa_request *req, struct buf *out,
                struct fa_response *resp);

/* Writes the stats as JSON (per-account counts when with_accounts). */
int stats_json(const struct fa_app *app, int with_accounts, struct buf *out);
/* One line: requests by operation, faults injected. */
void stats_summary(const struct fa_app *app, FILE *out);

/* The event loops: opt.threads threads, each with its own epoll and listening socket
 * (SO_REUSEPORT). server_start binds and starts serving; NULL with err when a socket or the TLS
 * setup failed. server_stop stops the loops, closes every connection and frees. */
struct fa_server;
struct fa_server *server_start(struct fa_app *app, struct err *err);
int server_port(const struct fa_server *s);
void server_stop(struct fa_server *s);

#endif
