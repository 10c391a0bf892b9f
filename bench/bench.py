#!/usr/bin/env python3
"""bench.py - `make bench` / `make bench-quick`: egressscan against fakeaws over TLS, writing to a
real (throwaway) PostgreSQL, and the boto3 baseline (bench/baseline_boto3.py) against the same
fake fleet. Prints wall time, API calls, CPU, CPU per call, peak RSS, the latency bound and the
database write time, checks that the stored clusters equal fakeaws's --truth (and that the baseline
found them too), and fails loudly (exit 1) on any difference. Results go to build/bench/*.json.

Only the machine's python3 standard library; the PostgreSQL server binaries, psql and the openssl
CLI. Everything started here is stopped by pid when the driver ends, also on failure or signal.
"""
import argparse
import glob
import json
import os
import platform
import pwd
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
import ssl

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BASE_KEY = "AKIDFAKEAWSBASE0001"
BASE_SECRET = "fakeaws-base-secret"
REGIONS = 17
MEAN = "0.035"
SEED = "1"


class BenchError(Exception):
    pass


def log(msg):
    print(f"bench: {msg}", file=sys.stderr, flush=True)


# ---- processes: everything started is tracked and stopped by pid ----

class Procs:
    def __init__(self, tmp):
        self.tmp = tmp
        self.children = []  # Popen objects still running (fakeaws)
        self.pg = None      # (pg_ctl, data dir, run-as user, postmaster pid)

    def stop_all(self):
        for p in self.children:
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
                try:
                    p.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    p.kill()
                    p.wait()
        self.children = []
        if self.pg:
            pgctl, data, user, pid = self.pg
            self.pg = None
            run_as(user, [pgctl, "-D", data, "-m", "immediate", "-w", "stop"], check=False)
            try:
                os.kill(pid, 0)
                os.kill(pid, signal.SIGKILL)  # pg_ctl could not stop it
            except ProcessLookupError:
                pass


def run_as(user, argv, check=True, **kw):
    if user:
        argv = ["runuser", "-u", user, "--"] + argv
    r = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, **kw)
    if check and r.returncode != 0:
        raise BenchError(f"{' '.join(argv)} failed:\n{r.stdout}")
    return r


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_postgres(procs, extra_opts=""):
    initdbs = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"),
                     key=lambda p: int(p.split("/")[4]))
    if not initdbs:
        raise BenchError("no PostgreSQL server under /usr/lib/postgresql (make deps)")
    bindir = os.path.dirname(initdbs[-1])
    user = None
    pgdir = os.path.join(procs.tmp, "pg")
    os.mkdir(pgdir)
    if os.geteuid() == 0:
        user = "postgres"
        pw = pwd.getpwnam(user)
        os.chown(procs.tmp, pw.pw_uid, pw.pw_gid)
        os.chown(pgdir, pw.pw_uid, pw.pw_gid)
    data = os.path.join(pgdir, "data")
    run_as(user, [f"{bindir}/initdb", "-D", data, "-U", "postgres", "--auth=trust", "-E", "UTF8",
                  "-N"])
    for _ in range(5):
        port = free_port()
        # A real server with its default durability settings (fsync, synchronous_commit on).
        opts = (f"-c listen_addresses=127.0.0.1 -p {port} -k {pgdir} -c max_connections=20 "
                f"{extra_opts}").strip()
        r = run_as(user, [f"{bindir}/pg_ctl", "-D", data, "-l", f"{pgdir}/server.log", "-w",
                          "-t", "60", "-o", opts, "start"], check=False)
        if r.returncode == 0:
            with open(f"{data}/postmaster.pid") as f:
                pid = int(f.readline())
            procs.pg = (f"{bindir}/pg_ctl", data, user, pid)
            return port, bindir
    raise BenchError(f"pg_ctl start failed (see {pgdir}/server.log)")


def psql(port, sql, db="postgres"):
    r = subprocess.run(["psql", "-X", "-q", "-At", "-v", "ON_ERROR_STOP=1", "-h", "127.0.0.1",
                        "-p", str(port), "-U", "postgres", "-d", db, "-c", sql],
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    if r.returncode != 0:
        raise BenchError(f"psql: {sql[:80]}: {r.stderr.strip()}")
    return r.stdout


def make_cert(tmp):
    cert, key = os.path.join(tmp, "cert.pem"), os.path.join(tmp, "key.pem")
    # RSA-2048, as AWS's own endpoints serve; valid for localhost and 127.0.0.1.
    r = subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", key,
                        "-out", cert, "-days", "2", "-subj", "/CN=localhost", "-addext",
                        "subjectAltName=DNS:localhost,IP:127.0.0.1"],
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    if r.returncode != 0:
        raise BenchError(f"openssl req failed:\n{r.stdout}")
    os.chmod(key, 0o644)
    return cert, key


class Fake:
    """One fakeaws process with its fleet and truth."""

    def __init__(self, procs, accounts, cert, key, latency_ms, extra=(), tag=""):
        self.accounts = accounts
        self.cert = cert
        self.truth_path = os.path.join(procs.tmp, f"truth-{accounts}{tag}.json")
        self.log_path = os.path.join(procs.tmp, f"fakeaws-{accounts}{tag}.log")
        argv = [os.path.join(ROOT, "build/fakeaws"), "--port", "0", "--tls-cert", cert,
                "--tls-key", key, "--accounts", str(accounts), "--regions", str(REGIONS),
                "--clusters-per-account-region-mean", MEAN, "--seed", SEED,
                "--latency-ms", str(latency_ms), "--truth", self.truth_path] + list(extra)
        self.logf = open(self.log_path, "w")
        self.proc = subprocess.Popen(argv, stdout=self.logf, stderr=self.logf)
        procs.children.append(self.proc)
        self.port = None
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and self.port is None:
            if self.proc.poll() is not None:
                raise BenchError(f"fakeaws exited:\n{open(self.log_path).read()}")
            for line in open(self.log_path):
                if "listening on https://" in line:
                    self.port = int(line.split("listening on https://")[1].split()[0]
                                    .rsplit(":", 1)[1])
            time.sleep(0.05)
        if self.port is None:
            raise BenchError("fakeaws did not start listening")
        with open(self.truth_path) as f:
            self.truth = json.load(f)
        self.ctx = ssl.create_default_context(cafile=cert)

    def url(self):
        return f"https://localhost:{self.port}"

    def control(self, path, method="GET"):
        req = urllib.request.Request(self.url() + path, method=method,
                                     data=b"" if method == "POST" else None)
        with urllib.request.urlopen(req, context=self.ctx, timeout=30) as r:
            return json.loads(r.read() or b"{}")

    def stats(self):
        return self.control("/fakeaws/stats")

    def reset(self):
        self.control("/fakeaws/reset-stats", "POST")

    def expected(self):
        """The clusters every scanner must find: {(arn, mode or None)}."""
        return sorted((c["arn"], c["egress_mode"]) for c in self.truth["clusters"])

    def stop(self, procs):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            self.proc.wait(timeout=10)
        procs.children.remove(self.proc)
        self.logf.close()


def aws_env(fake, extra=None):
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.update({
        "AWS_ENDPOINT_URL": fake.url(),
        "AWS_CA_BUNDLE": fake.cert,
        "AWS_ACCESS_KEY_ID": BASE_KEY,
        "AWS_SECRET_ACCESS_KEY": BASE_SECRET,
        "AWS_REGION": "us-east-1",
        "AWS_CONFIG_FILE": "/nonexistent",
        "AWS_SHARED_CREDENTIALS_FILE": "/nonexistent",
        "AWS_EC2_METADATA_DISABLED": "true",
    })
    env.update(extra or {})
    return env


def measured(procs, argv, env, out_path, timeout_s, started=None):
    """Runs argv; returns (exit code, wall s, user+sys s, peak RSS KiB) of that process alone.
    started: a dict that gets the start on the wall clock ("epoch"), for its log's timestamps."""
    with open(out_path, "w") as out:
        if started is not None:
            started["epoch"] = time.time()
        t0 = time.monotonic()
        p = subprocess.Popen(argv, env=env, stdout=out, stderr=subprocess.STDOUT, cwd=ROOT)
        procs.children.append(p)  # stopped with the rest if the driver is interrupted
        deadline = t0 + timeout_s
        while True:
            pid, status, ru = os.wait4(p.pid, os.WNOHANG)
            if pid:
                break
            if time.monotonic() > deadline:
                p.kill()
                os.wait4(p.pid, 0)
                p.returncode = -9
                procs.children.remove(p)
                raise BenchError(f"{argv[0]} ran longer than {timeout_s} s (see {out_path})")
            time.sleep(0.005)
        wall = time.monotonic() - t0
    procs.children.remove(p)
    p.returncode = os.waitstatus_to_exitcode(status)
    return p.returncode, wall, ru.ru_utime + ru.ru_stime, ru.ru_maxrss


def read_metrics(path):
    m = {}
    with open(path) as f:
        for line in f:
            if line.startswith("#") or not line.strip():
                continue
            name, value = line.rsplit(" ", 1)
            m[name] = float(value)
    return m


def compare(what, got, want):
    """Fails loudly when the two multisets of (arn, mode) differ."""
    if got == want:
        return
    gs, ws = set(got), set(want)
    missing, extra = sorted(ws - gs), sorted(gs - ws)
    lines = [f"{what}: WRONG RESULT: {len(got)} clusters stored, {len(want)} expected"]
    lines += [f"  missing {a} {m}" for a, m in missing[:10]]
    lines += [f"  unexpected {a} {m}" for a, m in extra[:10]]
    if not missing and not extra:
        lines.append("  (duplicates)")
    raise BenchError("\n".join(lines))


# ---- the PostgreSQL server's side: its CPU, its counters, the database's size per table ----

CLK_TCK = os.sysconf("SC_CLK_TCK")


def _proc_times(pid):
    """(ppid, utime + stime + cutime + cstime in ticks) of a process, from /proc/PID/stat."""
    with open(f"/proc/{pid}/stat") as f:
        s = f.read()
    fields = s[s.rindex(")") + 2:].split()  # from field 3 (state) on; the name may hold spaces
    return int(fields[1]), sum(int(x) for x in fields[11:15])


def pg_server_cpu(procs, settle=0.3):
    """CPU seconds (user + sys) the PostgreSQL server has used so far: the postmaster's own, the
    backends it reaped (its cutime/cstime) and those still running (their own times). settle:
    waits first for the backend of a client that just ended to be reaped (no CPU is lost either
    way, but one read mid-reap could count it twice or not at all)."""
    if not procs.pg:
        return None
    time.sleep(settle)
    root = procs.pg[3]
    ticks = 0
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            ppid, t = _proc_times(int(d))
        except (OSError, ValueError, IndexError):
            continue  # ended meanwhile
        if int(d) == root or ppid == root:
            ticks += t
    return ticks / CLK_TCK


def pg_counters(port, db):
    """Cumulative counters of the database, to subtract: transactions, rows written, WAL bytes
    (of the whole server: nothing else writes to it during a run)."""
    row = psql(port, "SELECT xact_commit + xact_rollback, tup_inserted, tup_updated, tup_deleted,"
               " pg_current_wal_lsn() - '0/0'::pg_lsn FROM pg_stat_database"
               " WHERE datname = current_database()", db).strip().split("|")
    return dict(zip(("transactions", "rows_inserted", "rows_updated", "rows_deleted",
                     "wal_bytes"), (int(float(v)) for v in row)))


def counters_delta(before, after):
    return {k: after[k] - before[k] for k in after}


def db_sizes(port, db):
    """After a plain VACUUM: pg_database_size and, for every egressscan table, its
    pg_total_relation_size (heap, indexes, TOAST, free space and visibility maps) and rows."""
    psql(port, "VACUUM", db)
    tables = {}
    for line in psql(port, "SELECT c.relname, pg_total_relation_size(c.oid), pg_indexes_size(c.oid)"
                     " FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
                     " WHERE n.nspname = 'egressscan' AND c.relkind IN ('r', 'p', 'm')"
                     " ORDER BY 1", db).split("\n"):
        if line:
            name, total, idx = line.split("|")
            tables[name] = {"bytes": int(total), "index_bytes": int(idx)}
    if tables:
        counts = psql(port, " UNION ALL ".join(
            f"SELECT '{t}', count(*) FROM egressscan.{t}" for t in tables), db)
        for line in counts.split("\n"):
            if line:
                name, n = line.split("|")
                tables[name]["rows"] = int(n)
    size = int(psql(port, "SELECT pg_database_size(current_database())", db))
    return {"database_bytes": size, "tables": tables}


def sizes_delta(before, after):
    """Growth of the database and of each table between two db_sizes."""
    tables = {}
    for t, a in after["tables"].items():
        b = before["tables"].get(t, {"bytes": 0, "index_bytes": 0, "rows": 0})
        tables[t] = {"bytes": a["bytes"] - b["bytes"],
                     "index_bytes": a["index_bytes"] - b["index_bytes"],
                     "rows": a.get("rows", 0) - b.get("rows", 0),
                     "bytes_after": a["bytes"], "rows_after": a.get("rows", 0)}
    return {"database_bytes": after["database_bytes"] - before["database_bytes"],
            "tables": tables}


def fresh_database(pg_port, binary, fake, db="egressscan_bench", wrap=(), env_extra=None):
    """Drops and creates db and migrates it; returns (url, environment for egressscan)."""
    psql(pg_port, f"DROP DATABASE IF EXISTS {db} WITH (FORCE)")
    psql(pg_port, f"CREATE DATABASE {db}")
    url = f"postgresql://postgres@127.0.0.1:{pg_port}/{db}"
    env = aws_env(fake, dict(env_extra or {}, DATABASE_URL=url))
    r = subprocess.run([*wrap, binary, "migrate"], env=env, stdout=subprocess.PIPE,
                       stderr=subprocess.STDOUT, text=True)
    if r.returncode != 0:
        raise BenchError(f"egressscan migrate failed:\n{r.stdout}")
    return url, env


def check_results(what, fake, pg_port, db):
    """What is stored equals the truth, every active target is ok and was tried by the latest
    scan, and that scan succeeded. Returns (clusters, targets, scan id)."""
    rows = psql(pg_port, "SELECT cluster_arn || chr(9) || coalesce(egress_mode, '<null>')"
                " FROM egressscan.current_clusters", db).split("\n")
    got = sorted((a, None if m_ == "<null>" else m_)
                 for a, m_ in (r_.split("\t") for r_ in rows if r_))
    compare(what, got, fake.expected())
    cov = dict(line.split("|") for line in psql(
        pg_port, "SELECT status, count(*) FROM egressscan.coverage GROUP BY 1", db).split("\n")
        if line)
    counts = fake.truth["counts"]
    want_targets = counts["active_accounts"] * REGIONS
    want = {"ok": str(want_targets)}
    suspended = counts["accounts"] - counts["active_accounts"]
    if suspended:  # one account-level row each, not a failure
        want["suspended"] = str(suspended)
    if cov != want:
        raise BenchError(f"{what}: coverage {cov}, expected {want}")
    scan_id, status = psql(pg_port, "SELECT scan_id, status FROM egressscan.scans"
                           " ORDER BY scan_id DESC LIMIT 1", db).strip().split("|")
    if status != "succeeded":
        raise BenchError(f"{what}: scan status {status}")
    older = int(psql(pg_port, "SELECT count(*) FROM egressscan.coverage WHERE scan_id <> "
                     f"{scan_id}", db))
    if older:
        raise BenchError(f"{what}: {older} coverage rows not from the latest scan {scan_id}")
    return len(got), want_targets + suspended, int(scan_id)


def egressscan_run(procs, binary, fake, pg_port, tmp, run, concurrency, latency_ms, wrap=(),
                   env_extra=None, fresh=True, sizes=False, extra_args=(), statements=False):
    """migrate + scan into a fresh database (fresh=False: scan again into the one there),
    checked against the truth. wrap: a command line that runs the binary (valgrind, for
    tests/memcheck.py); env_extra: more environment; sizes: the database's size and each
    table's, after VACUUM, before and after the scan (sizes_before/_after, growth);
    extra_args: more scan options (the log level of the phase breakdown); statements: count
    the statements run (pg_stat_statements, the server started with it)."""
    db = "egressscan_bench"
    if fresh:
        url, env = fresh_database(pg_port, binary, fake, db, wrap, env_extra)
    else:
        url = f"postgresql://postgres@127.0.0.1:{pg_port}/{db}"
        env = aws_env(fake, dict(env_extra or {}, DATABASE_URL=url))
    size_before = db_sizes(pg_port, db) if sizes else None
    if statements:
        psql(pg_port, "CREATE EXTENSION IF NOT EXISTS pg_stat_statements", db)
        psql(pg_port, "SELECT pg_stat_statements_reset()", db)
    psql(pg_port, "CHECKPOINT", db)
    metrics = os.path.join(tmp, f"metrics-{fake.accounts}-{run}.prom")
    out = os.path.join(tmp, f"scan-{fake.accounts}-{run}.log")
    fake.reset()
    before = fake.stats()
    pg_before = pg_counters(pg_port, db)
    pg_cpu_before = pg_server_cpu(procs)
    argv = [*wrap, binary, "scan", "--concurrency", str(concurrency), "--no-progress",
            "--metrics-file", metrics, *extra_args]
    started = {}
    rc, wall, cpu, rss = measured(procs, argv, env, out, 3600, started)
    pg_cpu = pg_server_cpu(procs) - pg_cpu_before
    pg = counters_delta(pg_before, pg_counters(pg_port, db))
    stmts = pg_statements(pg_port, db) if statements else None
    after = fake.stats()
    text = open(out).read()
    if rc != 0:
        raise BenchError(f"egressscan scan exited {rc}:\n{text[-4000:]}")
    m = read_metrics(metrics)
    calls = int(m["egressscan_api_calls"])
    served = after["requests"]  # counted from the reset before the scan
    retries = int(m.get("egressscan_api_retries", 0))
    if served != calls:  # api_calls counts every call, retries included
        log(f"note: fakeaws served {served} requests, egressscan counted {calls} calls "
            f"({retries} of them retries)")
    clusters, targets, scan_id = check_results(f"egressscan ({run})", fake, pg_port, db)
    r = {
        "wall_s": wall, "cpu_s": cpu, "peak_rss_kib": rss, "api_calls": calls,
        "fakeaws_requests": served, "retries": retries,
        "db_write_s": m.get("egressscan_database_write_seconds"),
        "drift_stage_s": m.get("egressscan_drift_stage_seconds"),
        "latency_bound_s": calls * latency_ms / 1000.0 / concurrency,
        "tls_handshakes": after.get("tls_handshakes", 0) - before.get("tls_handshakes", 0),
        "tls_resumed": after.get("tls_resumed", 0) - before.get("tls_resumed", 0),
        "connections": after.get("connections", 0) - before.get("connections", 0),
        "clusters": clusters, "targets": targets, "scan_id": scan_id,
        "pg_cpu_s": pg_cpu, "pg_cpu_per_target_us": pg_cpu / targets * 1e6 if targets else None,
        "pg_transactions": pg["transactions"], "pg_rows_written":
            pg["rows_inserted"] + pg["rows_updated"] + pg["rows_deleted"],
        "pg_wal_bytes": pg["wal_bytes"], "statements": stmts,
        "summary": text.strip().split("\n")[-12:], "database_url": url,
        "started_epoch": started["epoch"], "log": out,
        "operations": {k: v - before.get("operations", {}).get(k, 0)
                       for k, v in after.get("operations", {}).items()},
    }
    if sizes:
        r["sizes_before"] = size_before
        r["sizes_after"] = db_sizes(pg_port, db)
        r["growth"] = sizes_delta(size_before, r["sizes_after"])
    return r


def baseline_run(procs, fake, tmp):
    out = os.path.join(tmp, f"baseline-{fake.accounts}.log")
    clusters = os.path.join(tmp, f"baseline-{fake.accounts}.jsonl")
    env = aws_env(fake, {"AWS_DATA_PATH": os.path.join(ROOT, "tests/data/aws-models"),
                         "PYTHONDONTWRITEBYTECODE": "1"})
    fake.reset()
    argv = [sys.executable, os.path.join(ROOT, "bench/baseline_boto3.py"), "--clusters-out",
            clusters]
    rc, wall, cpu, rss = measured(procs, argv, env, out, 4 * 3600)
    text = open(out).read()
    if rc != 0:
        raise BenchError(f"baseline exited {rc}:\n{text[-4000:]}")
    served = fake.stats()["requests"]
    got = []
    with open(clusters) as f:
        for line in f:
            c = json.loads(line)
            got.append((c["arn"], c["egress_mode"]))
    compare("baseline", sorted(got), fake.expected())
    return {"wall_s": wall, "cpu_s": cpu, "peak_rss_kib": rss, "api_calls": served,
            "clusters": len(got), "accounts": fake.accounts}


def expected_baseline_calls(truth):
    """What the baseline asks for a fleet: ListAccounts pages, then per active account
    AssumeRole, DescribeRegions, one ListClusters per region, one DescribeCluster per cluster."""
    c = truth["counts"]
    return -(-c["accounts"] // 20) + c["active_accounts"] * (2 + c["regions"]) + c["clusters"]


def median_run(runs):
    keys = [k for k, v in runs[0].items() if isinstance(v, (int, float)) and v is not None]
    return {k: statistics.median(r[k] for r in runs) for k in keys}


def fmt_s(v):
    return f"{v:,.1f} s" if v >= 10 else f"{v:,.2f} s"


def ratio(v, bound):
    """v / bound to two places; a fake without latency (--latency-ms 0) has no bound."""
    return f"{v / bound:.2f}" if bound else "n/a"


def fmt_us(v):
    return f"{v:,.0f} µs"


def fmt_mib(kib):
    return f"{kib / 1024:,.1f} MiB"


def print_table(res):
    e, b = res["egressscan"], res.get("baseline")
    a = res["accounts"]
    print()
    print(f"== egressscan vs boto3 baseline: {a:,} accounts x {REGIONS} regions, "
          f"{res['clusters']:,} clusters, fakeaws over TLS, {res['latency_ms']} ms latency, "
          f"--concurrency {res['concurrency']}")
    print(f"   (egressscan: median of {len(res['egressscan_runs'])} run(s), each checked against "
          f"--truth; {platform.machine()}, {os.cpu_count()} CPUs)")
    rows = []
    ecall = e["cpu_s"] / e["api_calls"] * 1e6
    bcol = lambda f: "" if not b else f  # noqa: E731
    rows.append(("wall time", fmt_s(e["wall_s"]), bcol(b and fmt_s(b["wall_s"])),
                 bcol(b and f"{b['wall_s'] / e['wall_s']:,.0f}x less")))
    rows.append(("API calls", f"{e['api_calls']:,}", bcol(b and f"{b['api_calls']:,.0f}"), ""))
    rows.append(("CPU (user+sys)", fmt_s(e["cpu_s"]), bcol(b and fmt_s(b["cpu_s"])),
                 bcol(b and f"{b['cpu_s'] / e['cpu_s']:,.0f}x less")))
    rows.append(("CPU per API call", fmt_us(ecall),
                 bcol(b and fmt_us(b["cpu_s"] / b["api_calls"] * 1e6)), ""))
    rows.append(("peak RSS", fmt_mib(e["peak_rss_kib"]), bcol(b and fmt_mib(b["peak_rss_kib"])),
                 ""))
    rows.append(("latency bound", fmt_s(e["latency_bound_s"]), "", ""))
    rows.append(("wall / latency bound", ratio(e["wall_s"], e["latency_bound_s"]), "", ""))
    rows.append(("database writes", fmt_s(e["db_write_s"]) +
                 f" (drift stage {fmt_s(e['drift_stage_s'])})", "", ""))
    if e.get("pg_cpu_s") is not None:
        rows.append(("PostgreSQL CPU", fmt_s(e["pg_cpu_s"]) +
                     f" ({fmt_us(e['pg_cpu_per_target_us'])} per target)", "", ""))
    rows.append(("TLS handshakes", f"{e['tls_handshakes']:,.0f} "
                 f"({e['tls_resumed']:,.0f} resumed)", "", ""))
    w = [max(len(r[i]) for r in rows + [("", "egressscan", "boto3 baseline", "ratio")])
         for i in range(4)]
    head = ("", "egressscan", "boto3 baseline" if b else "", "ratio" if b else "")
    for r in [head] + rows:
        print("  " + "  ".join(c.ljust(w[i]) for i, c in enumerate(r)).rstrip())
    if b and b.get("extrapolated_from"):
        m = b["extrapolated_from"]
        print(f"   baseline: measured at {m['accounts']:,} accounts ({fmt_s(m['wall_s'])} wall, "
              f"{fmt_s(m['cpu_s'])} CPU, {m['api_calls']:,} calls), extrapolated per API call to "
              f"{b['api_calls']:,.0f} calls (a lower bound: its cost per call grows with the "
              f"fleet); its peak RSS is the measured one")
    if res.get("rss_small"):
        s = res["rss_small"]
        print(f"   peak RSS {fmt_mib(s['peak_rss_kib'])} at {s['accounts']:,} accounts vs "
              f"{fmt_mib(e['peak_rss_kib'])} at {a:,}")
    checks = [("wall <= 1.10 x latency bound", e["wall_s"] <= 1.10 * e["latency_bound_s"]),
              ("CPU per API call <= 70 µs", ecall <= 70),
              ("peak RSS <= 64 MiB", e["peak_rss_kib"] <= 64 * 1024)]
    if b:
        checks += [("wall >= 40x less than the baseline", b["wall_s"] >= 40 * e["wall_s"]),
                   ("CPU >= 100x less than the baseline", b["cpu_s"] >= 100 * e["cpu_s"])]
    scope = ("" if a in (5000, 20000) else
             " (defined for 5,000 and 20,000 accounts; here for information)")
    print(f"   SPEC.md section 9{scope}: " + "; ".join(f"{n}: {'met' if ok else 'NOT met'}"
                                                       for n, ok in checks))
    print()


# ---- a second, unchanged scan on the same database (--second-scan, make bench-large) ----

def fmt_bytes(n):
    sign = "-" if n < 0 else ""
    n = abs(n)
    if n >= 1 << 20:
        return f"{sign}{n / (1 << 20):,.1f} MiB"
    if n >= 1 << 10:
        return f"{sign}{n / 1024:,.0f} KiB"
    return f"{sign}{n} B"


def print_two_scans(res):
    """Every scan of one database side by side, then the growth per table sorted by the second
    scan's."""
    scans = [res["egressscan_runs"][0], res["second_scan"]] + res.get("later_scans", [])
    print(f"== {len(scans)} scans of an unchanged fleet on one database: {res['accounts']:,} "
          f"accounts x {REGIONS} regions, {res['clusters']:,} clusters, {res['latency_ms']} ms, "
          f"--concurrency {res['concurrency']}; sizes after VACUUM")
    rows = []
    for name, f in (("wall time", lambda r: fmt_s(r["wall_s"])),
                    ("latency bound", lambda r: fmt_s(r["latency_bound_s"])),
                    ("wall / latency bound", lambda r: ratio(r["wall_s"], r["latency_bound_s"])),
                    ("API calls", lambda r: f"{r['api_calls']:,}"),
                    ("scanner CPU (user+sys)", lambda r: fmt_s(r["cpu_s"])),
                    ("scanner CPU per API call",
                     lambda r: fmt_us(r["cpu_s"] / r["api_calls"] * 1e6)),
                    ("peak RSS", lambda r: fmt_mib(r["peak_rss_kib"])),
                    ("database writes (writer)", lambda r: fmt_s(r["db_write_s"]) +
                     f" ({r['db_write_s'] / r['wall_s'] * 100:.0f} % of wall)"),
                    ("  of it drift stage", lambda r: fmt_s(r["drift_stage_s"])),
                    ("PostgreSQL CPU", lambda r: fmt_s(r["pg_cpu_s"])),
                    ("PostgreSQL CPU per target", lambda r: fmt_us(r["pg_cpu_per_target_us"])),
                    ("PostgreSQL CPU per API call",
                     lambda r: fmt_us(r["pg_cpu_s"] / r["api_calls"] * 1e6)),
                    ("transactions", lambda r: f"{r['pg_transactions']:,}"),
                    ("rows written (ins+upd+del)", lambda r: f"{r['pg_rows_written']:,}"),
                    ("WAL written", lambda r: fmt_bytes(r["pg_wal_bytes"])),
                    ("database size before",
                     lambda r: fmt_bytes(r["sizes_before"]["database_bytes"])),
                    ("database size after",
                     lambda r: fmt_bytes(r["sizes_after"]["database_bytes"])),
                    ("database growth", lambda r: fmt_bytes(r["growth"]["database_bytes"]))):
        rows.append((name, *(f(r) for r in scans)))
    head = ("", "first scan", "second (unchanged)", *(f"scan {i + 3} (unchanged)"
                                                     for i in range(len(scans) - 2)))
    w = [max(len(r[i]) for r in rows + [head]) for i in range(len(head))]
    for r in [head] + rows:
        print("  " + "  ".join(c.ljust(w[i]) for i, c in enumerate(r)).rstrip())
    print(f"   ({scans[0]['targets']:,} targets; PostgreSQL CPU: the server's processes, "
          f"/proc, during the scan)")
    growth = [r["growth"]["tables"] for r in scans]
    g2 = growth[1]
    order = sorted(g2, key=lambda t: (-g2[t]["bytes"], -growth[-1][t]["bytes"], t))
    print("   growth per table (pg_total_relation_size after VACUUM: heap, indexes, TOAST, maps; "
          "rows by count(*)), sorted by the second scan's:")
    head = ("table", "2nd +bytes", "+rows", "bytes/row",
            *(x for i in range(2, len(scans)) for x in (f"scan {i + 1} +bytes", "+rows")),
            "1st +bytes", "+rows", "size after")
    rows = []
    for t in order:
        if not any(g[t]["bytes"] or g[t]["rows"] for g in growth):
            continue
        a = g2[t]
        rows.append((t, fmt_bytes(a["bytes"]), f"{a['rows']:,}",
                     f"{a['bytes'] / a['rows']:,.0f}" if a["rows"] > 0 else "",
                     *(x for g in growth[2:] for x in (fmt_bytes(g[t]["bytes"]),
                                                      f"{g[t]['rows']:,}")),
                     fmt_bytes(growth[0][t]["bytes"]), f"{growth[0][t]['rows']:,}",
                     fmt_bytes(growth[-1][t]["bytes_after"])))
    rows.append(("(database)", fmt_bytes(scans[1]["growth"]["database_bytes"]), "", "",
                 *(x for r in scans[2:] for x in (fmt_bytes(r["growth"]["database_bytes"]), "")),
                 fmt_bytes(scans[0]["growth"]["database_bytes"]), "",
                 fmt_bytes(scans[-1]["sizes_after"]["database_bytes"])))
    w = [max(len(r[i]) for r in rows + [head]) for i in range(len(head))]
    for r in [head] + rows:
        print("  " + "  ".join(c.rjust(w[i]) if i else c.ljust(w[i])
                               for i, c in enumerate(r)).rstrip())
    grown = [r["growth"]["database_bytes"] for r in scans[1:]]
    print(f"   SPEC.md section 9: an unchanged second scan adds <= 1 MiB: "
          f"{'met' if max(grown) <= 1 << 20 else 'NOT met'} "
          f"({', '.join(fmt_bytes(g) for g in grown)})")
    print()


# ---- scale-out: scan --enqueue, then N workers (--workers 1,2,4) ----

def pg_statements(port, db):
    """Statements run in db per pg_stat_statements (calls), and the most frequent ones; None when
    the server was not started with it."""
    try:
        total = psql(port, "SELECT coalesce(sum(calls), 0) FROM pg_stat_statements s JOIN "
                     "pg_database d ON d.oid = s.dbid WHERE d.datname = current_database()", db)
        top = psql(port, "SELECT calls, regexp_replace(left(query, 90), '\\s+', ' ', 'g') FROM "
                   "pg_stat_statements s JOIN pg_database d ON d.oid = s.dbid WHERE d.datname = "
                   "current_database() ORDER BY calls DESC LIMIT 12", db)
    except BenchError:
        return None
    return {"calls": int(total), "top": [(int(c), q) for c, q in
                                         (line.split("|", 1) for line in top.split("\n") if line)]}


def worker_curve_run(procs, binary, fake, pg_port, tmp, n_workers, concurrency, latency_ms,
                     enqueue_concurrency, statements):
    """scan --enqueue, then n_workers `egressscan worker --scan ID` at --concurrency each, all
    started when the enqueue ends; wall from the enqueue's start to the last worker's exit (the
    finalizer's), CPU summed over every process; checked against the truth."""
    db = "egressscan_bench"
    _url, env = fresh_database(pg_port, binary, fake, db)
    if statements:
        psql(pg_port, "CREATE EXTENSION IF NOT EXISTS pg_stat_statements", db)
    psql(pg_port, "CHECKPOINT", db)
    fake.reset()
    pg_before = pg_counters(pg_port, db)
    if statements:
        psql(pg_port, "SELECT pg_stat_statements_reset()", db)
    pg_cpu_before = pg_server_cpu(procs)
    t0 = time.monotonic()
    out = os.path.join(tmp, f"enqueue-{fake.accounts}-w{n_workers}.log")
    rc, e_wall, e_cpu, e_rss = measured(
        procs, [binary, "scan", "--enqueue", "--concurrency", str(enqueue_concurrency),
                "--no-progress"], env, out, 3600)
    text = open(out).read()
    if rc != 0:
        raise BenchError(f"egressscan scan --enqueue exited {rc}:\n{text[-4000:]}")
    ids = [line for line in text.split("\n") if line.strip().isdigit()]
    if not ids:
        raise BenchError(f"scan --enqueue printed no scan id:\n{text[-2000:]}")
    scan_id = ids[-1].strip()
    enqueue_calls = fake.stats()["requests"]
    t_workers = time.monotonic()
    workers = []
    for i in range(n_workers):
        wout = os.path.join(tmp, f"worker-{fake.accounts}-w{n_workers}-{i}.log")
        metrics = os.path.join(tmp, f"metrics-{fake.accounts}-w{n_workers}-{i}.prom")
        f = open(wout, "w")
        p = subprocess.Popen([binary, "worker", "--scan", scan_id, "--concurrency",
                              str(concurrency), "--no-progress", "--metrics-file", metrics],
                             env=env, stdout=f, stderr=subprocess.STDOUT, cwd=ROOT)
        procs.children.append(p)
        workers.append({"proc": p, "file": f, "log": wout, "metrics": metrics})
    running = list(workers)
    deadline = t_workers + 3600
    while running:
        for w in list(running):
            pid, status, ru = os.wait4(w["proc"].pid, os.WNOHANG)
            if pid:
                w["proc"].returncode = os.waitstatus_to_exitcode(status)
                w.update(wall_s=time.monotonic() - t_workers, cpu_s=ru.ru_utime + ru.ru_stime,
                         peak_rss_kib=ru.ru_maxrss, exit=w["proc"].returncode)
                procs.children.remove(w["proc"])
                w["file"].close()
                running.remove(w)
        if time.monotonic() > deadline:
            raise BenchError(f"workers ran longer than an hour (logs in {tmp})")
        time.sleep(0.005)
    t_end = time.monotonic()
    pg_cpu = pg_server_cpu(procs) - pg_cpu_before
    pg = counters_delta(pg_before, pg_counters(pg_port, db))
    stmts = pg_statements(pg_port, db) if statements else None
    served = fake.stats()["requests"]
    for w in workers:
        if w["exit"] != 0:
            raise BenchError(f"worker exited {w['exit']}:\n{open(w['log']).read()[-4000:]}")
    finalizers = [w for w in workers if os.path.exists(w["metrics"])]
    if len(finalizers) != 1:
        raise BenchError(f"{len(finalizers)} workers finalized the scan, expected 1")
    m = read_metrics(finalizers[0]["metrics"])
    calls = int(m["egressscan_api_calls"])  # the scan's: the enqueue's and every worker's
    if served != calls:
        log(f"note: fakeaws served {served} requests, the scan counted {calls} calls")
    clusters, targets, got_id = check_results(f"egressscan ({n_workers} workers)", fake, pg_port,
                                              db)
    if str(got_id) != scan_id:
        raise BenchError(f"the latest scan is {got_id}, not the enqueued {scan_id}")
    dur = float(psql(pg_port, "SELECT extract(epoch FROM finished_at - started_at) FROM "
                     f"egressscan.scans WHERE scan_id = {scan_id}", db))
    accounts = fake.truth["counts"]["active_accounts"]
    written = []
    for w in workers:
        n = 0
        for line in open(w["log"]):
            if " accounts written, " in line:
                n = int(line.split(" accounts written, ")[0].rsplit(" ", 1)[1])
        written.append(n)
    worker_calls = calls - enqueue_calls
    cpu = e_cpu + sum(w["cpu_s"] for w in workers)
    return {
        "workers": n_workers, "concurrency": concurrency, "scan_id": int(scan_id),
        "wall_s": t_end - t0, "scan_duration_s": dur,
        "enqueue_wall_s": e_wall, "enqueue_cpu_s": e_cpu, "enqueue_rss_kib": e_rss,
        "enqueue_api_calls": enqueue_calls,
        "workers_wall_s": t_end - t_workers,
        "workers_latency_bound_s": worker_calls * latency_ms / 1000.0 / (concurrency * n_workers),
        "api_calls": calls, "cpu_s": cpu,
        "worker_cpu_s": [w["cpu_s"] for w in workers],
        "worker_wall_s": [w["wall_s"] for w in workers],
        "worker_rss_kib": [w["peak_rss_kib"] for w in workers],
        "accounts_written": written, "accounts": accounts, "clusters": clusters,
        "targets": targets, "db_write_s": m.get("egressscan_database_write_seconds"),
        "drift_stage_s": m.get("egressscan_drift_stage_seconds"),
        "pg_cpu_s": pg_cpu, "pg_transactions": pg["transactions"],
        "pg_rows_written": pg["rows_inserted"] + pg["rows_updated"] + pg["rows_deleted"],
        "pg_wal_bytes": pg["wal_bytes"], "statements": stmts,
    }


def print_worker_curve(res):
    a = res["accounts"]
    print(f"== scale-out: scan --enqueue (--concurrency {res['enqueue_concurrency']}) then N "
          f"workers (--concurrency {res['worker_concurrency']} each), {a:,} accounts x {REGIONS} "
          f"regions, {res['latency_ms']} ms; one machine ({os.cpu_count()} CPUs)")
    d = res.get("direct")
    head = ("run", "wall", "enqueue", "workers", "w bound", "w/bound", "calls", "CPU/call",
            "PG CPU", "PG/account", "xacts/acct", "stmts/acct", "WAL/acct")
    rows = []

    def per_acct(r, k):
        return r[k] / res["active_accounts"]

    if d:
        st = d.get("statements")
        rows.append((f"direct scan (--concurrency {res['concurrency']})", fmt_s(d["wall_s"]), "",
                     fmt_s(d["wall_s"]), fmt_s(d["latency_bound_s"]),
                     ratio(d["wall_s"], d["latency_bound_s"]), f"{d['api_calls']:,}",
                     fmt_us(d["cpu_s"] / d["api_calls"] * 1e6), fmt_s(d["pg_cpu_s"]),
                     fmt_us(per_acct(d, "pg_cpu_s") * 1e6), f"{per_acct(d, 'pg_transactions'):.2f}",
                     f"{st['calls'] / res['active_accounts']:.1f}" if st else "",
                     fmt_bytes(per_acct(d, "pg_wal_bytes"))))
    for r in res["worker_runs"]:
        st = r.get("statements")
        rows.append((f"enqueue + {r['workers']} worker{'s' if r['workers'] > 1 else ''}",
                     fmt_s(r["wall_s"]), fmt_s(r["enqueue_wall_s"]), fmt_s(r["workers_wall_s"]),
                     fmt_s(r["workers_latency_bound_s"]),
                     ratio(r["workers_wall_s"], r["workers_latency_bound_s"]),
                     f"{r['api_calls']:,}", fmt_us(r["cpu_s"] / r["api_calls"] * 1e6),
                     fmt_s(r["pg_cpu_s"]), fmt_us(per_acct(r, "pg_cpu_s") * 1e6),
                     f"{per_acct(r, 'pg_transactions'):.2f}",
                     f"{st['calls'] / res['active_accounts']:.1f}" if st else "",
                     fmt_bytes(per_acct(r, "pg_wal_bytes"))))
    w = [max(len(r[i]) for r in rows + [head]) for i in range(len(head))]
    for r in [head] + rows:
        print("  " + "  ".join(c.ljust(w[i]) for i, c in enumerate(r)).rstrip())
    print("   (wall: from the enqueue's start to the last worker's exit; w bound: the workers' "
          "calls x latency / (N x concurrency); CPU/call: every process's CPU over every call; "
          "per account: over the active accounts; stmts: pg_stat_statements calls)")
    for r in res["worker_runs"]:
        print(f"   {r['workers']} worker(s): accounts written {r['accounts_written']}, "
              f"worker walls "
              f"{', '.join(fmt_s(x) for x in r['worker_wall_s'])}, CPU "
              f"{', '.join(fmt_s(x) for x in r['worker_cpu_s'])}, peak RSS "
              f"{', '.join(fmt_mib(x) for x in r['worker_rss_kib'])}; enqueue "
              f"{r['enqueue_api_calls']:,} calls, {fmt_s(r['enqueue_cpu_s'])} CPU")
    st = (res["worker_runs"][-1].get("statements") or {}).get("top")
    if st:
        print(f"   most frequent statements ({res['worker_runs'][-1]['workers']} workers, calls):")
        for c, q in st[:8]:
            print(f"     {c:>9,}  {q}")
    print()


def worker_curve(args, procs, pg_port, cert, key, statements):
    """--workers: a direct scan to compare, then scan --enqueue + N workers for each N."""
    counts = [int(x) for x in args.workers.split(",") if x.strip()]
    fake = Fake(procs, args.accounts, cert, key, args.latency_ms)
    res = {"accounts": args.accounts, "regions": REGIONS, "latency_ms": args.latency_ms,
           "concurrency": args.concurrency, "worker_concurrency": args.worker_concurrency,
           "enqueue_concurrency": args.enqueue_concurrency or args.worker_concurrency,
           "clusters": fake.truth["counts"]["clusters"],
           "active_accounts": fake.truth["counts"]["active_accounts"], "cpus": os.cpu_count(),
           "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "worker_runs": []}
    log(f"fleet: {args.accounts} accounts, {res['clusters']} clusters")
    if not args.no_direct:
        d = egressscan_run(procs, args.egressscan, fake, pg_port, procs.tmp, "direct",
                           args.concurrency, args.latency_ms, statements=statements)
        log(f"direct scan: wall {d['wall_s']:.2f} s, cpu {d['cpu_s']:.2f} s, PostgreSQL "
            f"{d['pg_cpu_s']:.2f} s: clusters match the truth")
        res["direct"] = d
    for n in counts:
        r = worker_curve_run(procs, args.egressscan, fake, pg_port, procs.tmp, n,
                             args.worker_concurrency, args.latency_ms,
                             res["enqueue_concurrency"], statements)
        log(f"enqueue + {n} workers: wall {r['wall_s']:.2f} s (enqueue {r['enqueue_wall_s']:.2f} "
            f"s), cpu {r['cpu_s']:.2f} s, PostgreSQL {r['pg_cpu_s']:.2f} s: clusters match the "
            f"truth")
        res["worker_runs"].append(r)
    fake.stop(procs)
    return res


# ---- small fleets: where the wall time goes (--phases) ----

def _epoch(ts):
    import datetime
    return datetime.datetime.strptime(ts, "%Y-%m-%dT%H:%M:%S.%fZ").replace(
        tzinfo=datetime.timezone.utc).timestamp()


def discovery_chain(truth):
    """The longest chain of dependent Organizations calls before the last account is listed:
    ListRoots, one ListOrganizationalUnitsForParent per level down to an OU, then its
    ListAccountsForParent pages (20 accounts each) one after the other."""
    ous = {o["id"]: o for o in truth["ous"]}
    per_parent = {}
    for a in truth["accounts"]:
        per_parent[a["parent_id"]] = per_parent.get(a["parent_id"], 0) + 1

    def depth(oid):
        d = 0
        while ous[oid]["parent_id"]:
            oid, d = ous[oid]["parent_id"], d + 1
        return d
    return max(1 + depth(p) + -(-n // 20) for p, n in per_parent.items())


def phase_breakdown(run, latency_ms, truth, concurrency):
    """Phases of one scan from its JSON debug log (timestamps to the millisecond) and the
    process's own start and end."""
    t_spawn = run["started_epoch"]
    t_exit = t_spawn + run["wall_s"]
    ev = {}
    first_of, last_of = {}, {}
    final_accounts = None
    progress = []
    for line in open(run["log"]):
        if not line.startswith("{"):
            continue
        j = json.loads(line)
        t, comp, msg = _epoch(j["ts"]), j["component"], j["msg"]
        if comp == "scan" and msg.startswith("scan ") and msg.endswith(" started"):
            ev["started"] = t
        elif comp == "http":
            w = msg.split()
            svc = w[0]
            if svc == "eks":
                path = w[2].split("/", 1)[1]
                svc = "eks DescribeCluster" if path.startswith("clusters/") else (
                    "eks ListClusters" if path.startswith("clusters") else "eks " + path[:20])
            first_of.setdefault(svc, t)
            last_of[svc] = t
        elif comp == "scan" and msg.startswith("progress: "):
            w = msg.split()
            a_done, a_total = (int(x) for x in w[2].split("/"))
            t_done, t_total = w[4].split("/")
            progress.append((t, a_done, a_total, int(t_done), int(t_total)))
        elif comp == "scan" and "accounts fan out" in msg:
            ev["scps_ready"] = t
        elif comp == "drift" and msg.endswith(" findings"):
            ev["drift_done"] = t
    if "started" not in ev or not progress or "drift_done" not in ev:
        raise BenchError(f"phases: the log lacks its landmarks ({run['log']})")
    final_accounts = progress[-1][2]
    ev["accounts_listed"] = next(p[0] for p in progress if p[2] == final_accounts)
    ev["targets_done"] = next(p[0] for p in progress if p[4] > 0 and p[3] == p[4])
    ev["first_answer"] = min(first_of.values())
    scan_svcs = [k for k in last_of if k.startswith("eks")]
    ev["last_scan_answer"] = max(last_of[k] for k in scan_svcs)
    lat = latency_ms / 1000.0
    chain = discovery_chain(truth)
    d = ev["drift_done"] - ev["targets_done"]
    phases = [
        ("start-up (exec, config, connect, scan row)", ev["started"] - t_spawn),
        ("to the first answer (engine, credentials, TLS, 1 call)",
         ev["first_answer"] - ev["started"]),
        ("discovery until every account is listed", ev["accounts_listed"] - ev["first_answer"]),
        ("the rest of the targets", ev["targets_done"] - ev["accounts_listed"]),
        ("finalization: writer flush, dating, SCP record, drift", d),
        ("exit (summary, metrics file, close)", t_exit - ev["drift_done"]),
    ]
    marks = {k: v - t_spawn for k, v in ev.items()}
    marks.update({f"first {k} answer": v - t_spawn for k, v in first_of.items()})
    marks.update({f"last {k} answer": v - t_spawn for k, v in last_of.items()})
    return {"phases": phases, "marks": marks, "wall_s": run["wall_s"],
            "discovery_chain_calls": chain,
            "chain_bound_s": (chain + 4) * lat,
            "latency_bound_s": run["latency_bound_s"], "drift_stage_s": run["drift_stage_s"],
            "db_write_s": run["db_write_s"], "operations": run.get("operations", {}),
            "progress": progress}


def print_phases(res):
    p = res["phases"]
    plain = res["egressscan"]
    print(f"== where the time goes: {res['accounts']:,} accounts x {REGIONS} regions, "
          f"{res['latency_ms']} ms, --concurrency {res['concurrency']} (a scan with --log-level "
          f"debug --log-format json; the progress lines come every 0.25 s)")
    w = max(len(n) for n, _ in p["phases"])
    for n, v in p["phases"]:
        print(f"  {n.ljust(w)}  {v:6.2f} s  {v / p['wall_s'] * 100:4.0f} %")
    print(f"  {'wall (this run, debug logs)'.ljust(w)}  {p['wall_s']:6.2f} s")
    print(f"  {'wall without debug logs (median)'.ljust(w)}  {plain['wall_s']:6.2f} s")
    print(f"   of the finalization, the drift stage (metrics): {fmt_s(p['drift_stage_s'])}; the "
          f"writer's database time over the scan: {fmt_s(p['db_write_s'])}")
    print(f"   inherent: the longest chain of dependent calls, {p['discovery_chain_calls']} "
          f"Organizations calls (ListRoots, the OU levels, the largest OU's pages) then "
          f"AssumeRole -> DescribeRegions -> ListClusters -> DescribeCluster: "
          f"{fmt_s(p['chain_bound_s'])}; the throughput bound (calls x latency / concurrency): "
          f"{fmt_s(p['latency_bound_s'])}")
    ops = p["operations"]
    if ops:
        print("   calls by operation: " + ", ".join(f"{k} {v:,}" for k, v in sorted(ops.items())
                                                    if v))
    print("   landmarks (s from the process's start): " + ", ".join(
        f"{k} {v:.2f}" for k, v in sorted(p["marks"].items(), key=lambda kv: kv[1])))
    print()


# ---- one hot account (--hot-account-throttle): does the rest of the fleet slow down? ----

def busiest_account(truth):
    """The active, non-management account with the most clusters: the most requests."""
    n = {}
    for c in truth["clusters"]:
        n[c["account_id"]] = n.get(c["account_id"], 0) + 1
    ids = [a["id"] for a in truth["accounts"]
           if a["status"] == "ACTIVE" and not a["is_management"]]
    return max(ids, key=lambda i: (n.get(i, 0), i))


def hot_run(procs, binary, fake, pg_port, tmp, name, hot, retry_mode, concurrency):
    """One scan; returns its wall time and when the other accounts and the hot one finished."""
    db = "egressscan_bench_hot"
    psql(pg_port, f"DROP DATABASE IF EXISTS {db} WITH (FORCE)")
    psql(pg_port, f"CREATE DATABASE {db}")
    url = f"postgresql://postgres@127.0.0.1:{pg_port}/{db}"
    env = aws_env(fake, {"DATABASE_URL": url, "AWS_RETRY_MODE": retry_mode})
    r = subprocess.run([binary, "migrate"], env=env, stdout=subprocess.PIPE,
                       stderr=subprocess.STDOUT, text=True)
    if r.returncode != 0:
        raise BenchError(f"egressscan migrate failed:\n{r.stdout}")
    metrics = os.path.join(tmp, f"metrics-hot-{name}.prom")
    out = os.path.join(tmp, f"scan-hot-{name}.log")
    fake.reset()
    argv = [binary, "scan", "--concurrency", str(concurrency), "--no-progress", "--metrics-file",
            metrics]
    rc, wall, cpu, rss = measured(procs, argv, env, out, 3600)
    if rc not in (0, 3):
        raise BenchError(f"egressscan scan exited {rc}:\n{open(out).read()[-4000:]}")
    stats = fake.control("/fakeaws/stats?accounts=1")
    m = read_metrics(metrics)
    # when each account's last target was stored, from the scan's start
    rows = psql(pg_port, "SELECT c.account_id = '" + hot + "', c.status = 'ok', "
                "extract(epoch FROM max(c.scanned_at) - s.started_at), count(*) "
                "FROM egressscan.coverage c JOIN egressscan.scans s USING (scan_id) "
                "GROUP BY 1, 2, s.started_at", db)
    done = {"others": 0.0, "hot": 0.0}
    others_failed = hot_failed = 0
    for line in rows.split("\n"):
        if not line:
            continue
        is_hot, ok, t, n = line.split("|")
        key = "hot" if is_hot == "t" else "others"
        done[key] = max(done[key], float(t))
        if ok != "t":
            if key == "hot":
                hot_failed += int(n)
            else:
                others_failed += int(n)
    if others_failed:
        raise BenchError(f"{name}: {others_failed} targets of other accounts not ok")
    # the other accounts' clusters equal the truth
    rows = psql(pg_port, "SELECT cluster_arn || chr(9) || coalesce(egress_mode, '<null>') FROM "
                "egressscan.current_clusters WHERE account_id <> '" + hot + "'", db).split("\n")
    got = sorted((a, None if m_ == "<null>" else m_)
                 for a, m_ in (r_.split("\t") for r_ in rows if r_))
    want = sorted((c["arn"], c["egress_mode"]) for c in fake.truth["clusters"]
                  if c["account_id"] != hot)
    compare(f"egressscan ({name}, other accounts)", got, want)
    acct = stats.get("accounts", {})
    thr_others = sum(v["throttle"] for k, v in acct.items() if k != hot)
    return {"name": name, "retry_mode": retry_mode, "wall_s": wall, "cpu_s": cpu,
            "others_done_s": done["others"], "hot_done_s": done["hot"],
            "hot_targets_not_ok": hot_failed, "api_calls": int(m["egressscan_api_calls"]),
            "throttled": int(m["egressscan_api_throttled"]),
            "hot_requests": acct.get(hot, {}).get("requests", 0),
            "hot_throttles": acct.get(hot, {}).get("throttle", 0),
            "other_throttles": thr_others}


def hot_account_bench(args, procs, pg_port, cert, key):
    clean = Fake(procs, args.accounts, cert, key, args.latency_ms, tag="-clean")
    hot = busiest_account(clean.truth)
    n_hot = sum(1 for c in clean.truth["clusters"] if c["account_id"] == hot)
    log(f"hot account {hot} ({n_hot} clusters), throttle={args.hot_account_throttle}")
    runs = [hot_run(procs, args.egressscan, clean, pg_port, procs.tmp, "no-hot-adaptive", hot,
                    "adaptive", args.concurrency),
            hot_run(procs, args.egressscan, clean, pg_port, procs.tmp, "no-hot-standard", hot,
                    "standard", args.concurrency)]
    truth = clean.truth
    clean.stop(procs)
    faulted = Fake(procs, args.accounts, cert, key, args.latency_ms, tag="-hot",
                   extra=["--faults", f"account={hot}:throttle={args.hot_account_throttle}"])
    if faulted.truth != truth:
        raise BenchError("the faulted fake generated another fleet")
    runs += [hot_run(procs, args.egressscan, faulted, pg_port, procs.tmp, "hot-adaptive", hot,
                     "adaptive", args.concurrency),
             hot_run(procs, args.egressscan, faulted, pg_port, procs.tmp, "hot-standard", hot,
                     "standard", args.concurrency)]
    faulted.stop(procs)
    for r in runs:
        if r["other_throttles"]:
            raise BenchError(f"{r['name']}: other accounts were throttled")
    print()
    print(f"== one hot account: {args.accounts:,} accounts x {REGIONS} regions, fakeaws over TLS, "
          f"{args.latency_ms} ms latency, --concurrency {args.concurrency}; account {hot} "
          f"({n_hot} clusters) throttled at {args.hot_account_throttle} of its requests")
    head = ("run", "wall", "others done", "hot done", "hot not ok", "api calls", "throttled")
    rows = [(r["name"], fmt_s(r["wall_s"]), fmt_s(r["others_done_s"]), fmt_s(r["hot_done_s"]),
             str(r["hot_targets_not_ok"]), f"{r['api_calls']:,}", f"{r['throttled']:,}")
            for r in runs]
    w = [max(len(x[i]) for x in rows + [head]) for i in range(len(head))]
    for r in [head] + rows:
        print("  " + "  ".join(c.ljust(w[i]) for i, c in enumerate(r)).rstrip())
    print("   (others done / hot done: when the last target of the other accounts / of the hot "
          "one was stored, from the scan's start; every other target ok and equal to the truth)")
    print()
    return {"accounts": args.accounts, "regions": REGIONS, "latency_ms": args.latency_ms,
            "concurrency": args.concurrency, "hot_account": hot, "hot_clusters": n_hot,
            "throttle": args.hot_account_throttle, "runs": runs}


def main():
    ap = argparse.ArgumentParser(description="egressscan benchmark (SPEC.md section 9)")
    ap.add_argument("--accounts", type=int, default=5000)
    ap.add_argument("--runs", type=int, default=3, help="egressscan runs (median reported)")
    ap.add_argument("--rss-accounts", type=int, default=0,
                    help="also run egressscan on this smaller fleet to compare peak RSS")
    ap.add_argument("--baseline-accounts", type=int, default=None,
                    help="fleet size the baseline is measured at (default: --accounts; smaller "
                         "is extrapolated per API call; 0 skips the baseline)")
    ap.add_argument("--concurrency", type=int, default=256)
    ap.add_argument("--latency-ms", type=int, default=50)
    ap.add_argument("--egressscan", default=os.path.join(ROOT, "build/egressscan"),
                    help="the binary to measure (e.g. an older build, for a before/after table)")
    ap.add_argument("--name", default=None, help="results file name (default bench-ACCOUNTS)")
    ap.add_argument("--out", default=os.path.join(ROOT, "build/bench"))
    ap.add_argument("--keep", action="store_true", help="keep the temporary directory")
    ap.add_argument("--second-scan", action="store_true",
                    help="after the first run, scan again into the same database with the fleet "
                         "unchanged; report both, the database's size and each table's growth "
                         "(after VACUUM)")
    ap.add_argument("--more-scans", type=int, default=0, metavar="N",
                    help="with --second-scan: N more unchanged scans (does the growth settle?)")
    ap.add_argument("--workers", default=None, metavar="N,...",
                    help="instead: scan --enqueue then N workers, for each N (e.g. 1,2,4), and a "
                         "direct scan to compare (--no-direct leaves it out)")
    ap.add_argument("--worker-concurrency", type=int, default=64)
    ap.add_argument("--enqueue-concurrency", type=int, default=None,
                    help="--concurrency of scan --enqueue (default --worker-concurrency)")
    ap.add_argument("--no-direct", action="store_true")
    ap.add_argument("--phases", action="store_true",
                    help="also one run with debug logs, broken down into phases (start-up, "
                         "discovery, targets, finalization, exit)")
    ap.add_argument("--hot-account-throttle", type=float, default=None, metavar="RATE",
                    help="instead: scan the fleet without and with one account throttled at "
                         "RATE (fakeaws account=ID:throttle=RATE), in adaptive and standard "
                         "retry mode, and report when the other accounts finished")
    args = ap.parse_args()
    if args.hot_account_throttle is not None or args.workers:
        args.baseline_accounts = 0
    if args.baseline_accounts is None:
        args.baseline_accounts = args.accounts
    for f in (args.egressscan, os.path.join(ROOT, "build/fakeaws")):
        if not os.access(f, os.X_OK):
            print(f"bench: {f} is not built (make)", file=sys.stderr)
            return 2
    args.egressscan = os.path.abspath(args.egressscan)
    missing = [t for t in ("openssl", "psql") if not shutil.which(t)]
    if missing:
        print(f"bench: {', '.join(missing)} not found (make deps)", file=sys.stderr)
        return 2
    if args.baseline_accounts:
        try:
            import boto3  # noqa: F401  (the baseline needs it; fail now, not after the scans)
        except ImportError:
            print("bench: the baseline needs python3 with boto3 (or BENCH_BASELINE=0)",
                  file=sys.stderr)
            return 2

    started = time.monotonic()
    tmp = tempfile.mkdtemp(prefix="egressscan-bench-")
    procs = Procs(tmp)

    def on_signal(sig, _frame):
        raise KeyboardInterrupt(f"signal {sig}")
    for s in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(s, on_signal)
    try:
        statements = bool(args.workers) and glob.glob(
            "/usr/lib/postgresql/*/lib/pg_stat_statements.so")
        pg_port, _ = start_postgres(
            procs, "-c shared_preload_libraries=pg_stat_statements" if statements else "")
        cert, key = make_cert(tmp)
        if args.workers:
            res = worker_curve(args, procs, pg_port, cert, key, bool(statements))
            os.makedirs(args.out, exist_ok=True)
            path = os.path.join(args.out,
                                f"{args.name or 'bench-workers-%d' % args.accounts}.json")
            with open(path, "w") as f:
                json.dump(res, f, indent=1)
            print_worker_curve(res)
            log(f"results in {os.path.relpath(path, ROOT)}; took "
                f"{time.monotonic() - started:.0f} s")
            return 0
        if args.hot_account_throttle is not None:
            res = hot_account_bench(args, procs, pg_port, cert, key)
            os.makedirs(args.out, exist_ok=True)
            path = os.path.join(args.out, f"{args.name or 'bench-hot-%d' % args.accounts}.json")
            with open(path, "w") as f:
                json.dump(res, f, indent=1)
            log(f"results in {os.path.relpath(path, ROOT)}; took "
                f"{time.monotonic() - started:.0f} s")
            return 0
        res = {"accounts": args.accounts, "regions": REGIONS, "concurrency": args.concurrency,
               "latency_ms": args.latency_ms, "cpus": os.cpu_count(),
               "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}

        fake = Fake(procs, args.accounts, cert, key, args.latency_ms)
        res["clusters"] = fake.truth["counts"]["clusters"]
        log(f"fleet: {args.accounts} accounts, {fake.truth['counts']['clusters']} clusters")
        runs = []
        for i in range(args.runs):
            second = args.second_scan and i == 0
            r = egressscan_run(procs, args.egressscan, fake, pg_port, tmp, i, args.concurrency,
                               args.latency_ms, sizes=second)
            log(f"egressscan run {i + 1}/{args.runs}: wall {r['wall_s']:.2f} s, cpu "
                f"{r['cpu_s']:.2f} s, {r['api_calls']} calls, rss {r['peak_rss_kib']} KiB, "
                f"db {r['db_write_s']:.2f} s, PostgreSQL {r['pg_cpu_s']:.2f} s: clusters match "
                f"the truth")
            runs.append(r)
            if second:
                r2 = egressscan_run(procs, args.egressscan, fake, pg_port, tmp, f"{i}-again",
                                    args.concurrency, args.latency_ms, fresh=False, sizes=True)
                log(f"second scan, fleet unchanged: wall {r2['wall_s']:.2f} s, cpu "
                    f"{r2['cpu_s']:.2f} s, PostgreSQL {r2['pg_cpu_s']:.2f} s, database "
                    f"+{fmt_bytes(r2['growth']['database_bytes'])}: clusters match the truth")
                res["second_scan"] = r2
                res["later_scans"] = []
                for k in range(args.more_scans):
                    r3 = egressscan_run(procs, args.egressscan, fake, pg_port, tmp,
                                        f"{i}-again{k + 2}", args.concurrency, args.latency_ms,
                                        fresh=False, sizes=True)
                    log(f"scan {k + 3}, fleet unchanged: wall {r3['wall_s']:.2f} s, database "
                        f"+{fmt_bytes(r3['growth']['database_bytes'])}: clusters match the truth")
                    res["later_scans"].append(r3)
        res["egressscan_runs"] = runs
        res["egressscan"] = median_run(runs)
        if args.phases:
            r = egressscan_run(procs, args.egressscan, fake, pg_port, tmp, "phases",
                               args.concurrency, args.latency_ms,
                               extra_args=("--log-level", "debug", "--log-format", "json"))
            res["phases"] = phase_breakdown(r, args.latency_ms, fake.truth, args.concurrency)
        full_truth = fake.truth

        if args.baseline_accounts == args.accounts:
            log(f"baseline at {args.accounts} accounts ...")
            res["baseline"] = baseline_run(procs, fake, tmp)
        fake.stop(procs)

        if 0 < args.baseline_accounts < args.accounts:
            small = Fake(procs, args.baseline_accounts, cert, key, args.latency_ms)
            log(f"baseline at {args.baseline_accounts} accounts (extrapolated) ...")
            m = baseline_run(procs, small, tmp)
            scale = expected_baseline_calls(full_truth) / expected_baseline_calls(small.truth)
            res["baseline"] = {"wall_s": m["wall_s"] * scale, "cpu_s": m["cpu_s"] * scale,
                               "api_calls": round(m["api_calls"] * scale),
                               "peak_rss_kib": m["peak_rss_kib"], "extrapolated_from": m}
            small.stop(procs)
        if res.get("baseline"):
            log(f"baseline: {res['baseline']}")

        if args.rss_accounts:
            small = Fake(procs, args.rss_accounts, cert, key, args.latency_ms)
            sruns = [egressscan_run(procs, args.egressscan, small, pg_port, tmp, f"rss{i}",
                                    args.concurrency, args.latency_ms) for i in range(args.runs)]
            small.stop(procs)
            res["rss_small_runs"] = sruns
            res["rss_small"] = dict(median_run(sruns), accounts=args.rss_accounts)

        res["bench_seconds"] = time.monotonic() - started
        os.makedirs(args.out, exist_ok=True)
        res["egressscan_binary"] = args.egressscan
        path = os.path.join(args.out, f"{args.name or 'bench-%d' % args.accounts}.json")
        with open(path, "w") as f:
            json.dump(res, f, indent=1)
        print_table(res)
        if res.get("second_scan"):
            print_two_scans(res)
        if res.get("phases"):
            print_phases(res)
        log(f"results in {os.path.relpath(path, ROOT)}; took {res['bench_seconds']:.0f} s")
        return 0
    except BenchError as e:
        print(f"\nbench: FAILED: {e}", file=sys.stderr)
        print(f"bench: logs kept in {tmp}", file=sys.stderr)
        args.keep = True
        return 1
    except KeyboardInterrupt as e:
        print(f"\nbench: interrupted ({e})", file=sys.stderr)
        return 130
    finally:
        procs.stop_all()
        if not args.keep:
            shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
