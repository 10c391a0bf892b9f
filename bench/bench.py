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


def start_postgres(procs):
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
        opts = f"-c listen_addresses=127.0.0.1 -p {port} -k {pgdir} -c max_connections=20"
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


def measured(procs, argv, env, out_path, timeout_s):
    """Runs argv; returns (exit code, wall s, user+sys s, peak RSS KiB) of that process alone."""
    with open(out_path, "w") as out:
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


def egressscan_run(procs, binary, fake, pg_port, tmp, run, concurrency, latency_ms, wrap=(),
                   env_extra=None):
    """migrate + scan into a fresh database, checked against the truth. wrap: a command line
    that runs the binary (valgrind, for tests/memcheck.py); env_extra: more environment."""
    db = "egressscan_bench"
    psql(pg_port, f"DROP DATABASE IF EXISTS {db} WITH (FORCE)")
    psql(pg_port, f"CREATE DATABASE {db}")
    url = f"postgresql://postgres@127.0.0.1:{pg_port}/{db}"
    env = aws_env(fake, dict(env_extra or {}, DATABASE_URL=url))
    r = subprocess.run([*wrap, binary, "migrate"], env=env, stdout=subprocess.PIPE,
                       stderr=subprocess.STDOUT, text=True)
    if r.returncode != 0:
        raise BenchError(f"egressscan migrate failed:\n{r.stdout}")
    psql(pg_port, "CHECKPOINT", db)
    metrics = os.path.join(tmp, f"metrics-{fake.accounts}-{run}.prom")
    out = os.path.join(tmp, f"scan-{fake.accounts}-{run}.log")
    fake.reset()
    before = fake.stats()
    argv = [*wrap, binary, "scan", "--concurrency", str(concurrency), "--no-progress", "--metrics-file",
            metrics]
    rc, wall, cpu, rss = measured(procs, argv, env, out, 3600)
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
    # correctness: what is stored equals the truth, every active target is ok
    rows = psql(pg_port, "SELECT cluster_arn || chr(9) || coalesce(egress_mode, '<null>')"
                " FROM egressscan.current_clusters", db).split("\n")
    got = sorted((a, None if m_ == "<null>" else m_)
                 for a, m_ in (r_.split("\t") for r_ in rows if r_))
    compare("egressscan", got, fake.expected())
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
        raise BenchError(f"egressscan coverage {cov}, expected {want}")
    status = psql(pg_port, "SELECT status FROM egressscan.scans ORDER BY scan_id DESC LIMIT 1",
                  db).strip()
    if status != "succeeded":
        raise BenchError(f"egressscan scan status {status}")
    return {
        "wall_s": wall, "cpu_s": cpu, "peak_rss_kib": rss, "api_calls": calls,
        "fakeaws_requests": served, "retries": retries,
        "db_write_s": m.get("egressscan_database_write_seconds"),
        "drift_stage_s": m.get("egressscan_drift_stage_seconds"),
        "latency_bound_s": calls * latency_ms / 1000.0 / concurrency,
        "tls_handshakes": after.get("tls_handshakes", 0) - before.get("tls_handshakes", 0),
        "tls_resumed": after.get("tls_resumed", 0) - before.get("tls_resumed", 0),
        "connections": after.get("connections", 0) - before.get("connections", 0),
        "clusters": len(got), "summary": text.strip().split("\n")[-12:],
        "database_url": url,
    }


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
    rows.append(("wall / latency bound", f"{e['wall_s'] / e['latency_bound_s']:.2f}", "", ""))
    rows.append(("database writes", fmt_s(e["db_write_s"]) +
                 f" (drift stage {fmt_s(e['drift_stage_s'])})", "", ""))
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
    checks = [("wall <= 1.25 x latency bound", e["wall_s"] <= 1.25 * e["latency_bound_s"]),
              ("CPU per API call <= 80 µs", ecall <= 80),
              ("peak RSS <= 64 MiB", e["peak_rss_kib"] <= 64 * 1024)]
    if b:
        checks += [("wall >= 40x less than the baseline", b["wall_s"] >= 40 * e["wall_s"]),
                   ("CPU >= 100x less than the baseline", b["cpu_s"] >= 100 * e["cpu_s"])]
    scope = "" if a == 5000 else " (defined for 5,000 accounts; here for information)"
    print(f"   SPEC.md section 9{scope}: " + "; ".join(f"{n}: {'met' if ok else 'NOT met'}"
                                                       for n, ok in checks))
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
    ap.add_argument("--hot-account-throttle", type=float, default=None, metavar="RATE",
                    help="instead: scan the fleet without and with one account throttled at "
                         "RATE (fakeaws account=ID:throttle=RATE), in adaptive and standard "
                         "retry mode, and report when the other accounts finished")
    args = ap.parse_args()
    if args.hot_account_throttle is not None:
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
        pg_port, _ = start_postgres(procs)
        cert, key = make_cert(tmp)
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
            r = egressscan_run(procs, args.egressscan, fake, pg_port, tmp, i, args.concurrency,
                               args.latency_ms)
            log(f"egressscan run {i + 1}/{args.runs}: wall {r['wall_s']:.2f} s, cpu "
                f"{r['cpu_s']:.2f} s, {r['api_calls']} calls, rss {r['peak_rss_kib']} KiB, "
                f"db {r['db_write_s']:.2f} s: clusters match the truth")
            runs.append(r)
        res["egressscan_runs"] = runs
        res["egressscan"] = median_run(runs)
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
