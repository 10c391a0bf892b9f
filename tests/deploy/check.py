#!/usr/bin/env python3
"""check.py - tests of deploy/: every manifest, template, unit, policy and document there parses
and says what the deployment needs, against the binary it deploys (build/egressscan, or $BIN).

Checks: YAML (multi-document, CloudFormation tags) and JSON parse; kustomize structure and
builds; Kubernetes workloads (schedules, Forbid, pod and container security contexts, resources,
volumes, service accounts, commands and flags the binary knows); schema of every object (Debian's
python3-kubernetes models, when installed); NetworkPolicy egress; the ServiceAccount placeholder
and overlay; the scan configuration as the binary reads it; the Grafana dashboard (views only,
every query run as egressscan_reader on a real PostgreSQL with deploy/postgres/roles.sql); IAM
policies (exact actions, in sync with scanner/org.c); the StackSet template (cfn-lint, and
deployed into moto in-process); systemd units (systemd-analyze verify and security, the report's
shell line); the Dockerfile (the build stage builds from its context, the runtime packages cover
`ldd`); the man page (renders, documents every command and option of --help); `make install`.

Run from the repository root (`make itest` does): python3 tests/deploy/check.py [-k SUBSTRING]
Prints one line per check and, last, "N passed, M failed, K skipped"; exits 1 on a failure."""
import ast
import glob
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
os.chdir(ROOT)
BIN = os.path.abspath(os.environ.get("BIN", "build/egressscan"))
DEPLOY = "deploy"
K8S = os.path.join(DEPLOY, "kubernetes")
IMAGE = "registry.example.com/security/egressscan"

try:
    import yaml
except ImportError:  # the machine's Python has PyYAML; without it nothing here can be checked
    print("check.py: PyYAML is missing (python3 -m pip install pyyaml)")
    print("0 passed, 1 failed")
    sys.exit(1)


class Skip(Exception):
    pass


class Fail(Exception):
    pass


CHECKS = []


def check(fn):
    CHECKS.append(fn)
    return fn


def need(cond, msg):
    if not cond:
        raise Fail(msg)


def run(argv, **kw):
    kw.setdefault("capture_output", True)
    kw.setdefault("text", True)
    kw.setdefault("timeout", 300)
    return subprocess.run(argv, **kw)


# ---- YAML with CloudFormation's short tags (!Ref, !If, ...) --------------------------------


class CfnLoader(yaml.SafeLoader):
    pass


def _cfn_tag(loader, suffix, node):
    if isinstance(node, yaml.ScalarNode):
        value = loader.construct_scalar(node)
    elif isinstance(node, yaml.SequenceNode):
        value = loader.construct_sequence(node, deep=True)
    else:
        value = loader.construct_mapping(node, deep=True)
    name = "Ref" if suffix == "Ref" else "Fn::" + suffix
    return {name: value}


CfnLoader.add_multi_constructor("!", _cfn_tag)


def load_yaml_docs(path, text=None):
    if text is None:
        with open(path, encoding="utf-8") as f:
            text = f.read()
    return [d for d in yaml.load_all(text, Loader=CfnLoader) if d is not None]


def deploy_files(*exts):
    out = []
    for dirpath, _, files in os.walk(DEPLOY):
        for f in files:
            if f.endswith(exts):
                out.append(os.path.join(dirpath, f))
    return sorted(out)


def k8s_objects(paths):
    objs = []
    for p in paths:
        for d in load_yaml_docs(p):
            if isinstance(d, dict) and "kind" in d and d.get("kind") != "Kustomization":
                objs.append((p, d))
    return objs


def kustomize_dirs():
    return sorted(os.path.dirname(p) for p in glob.glob(f"{K8S}/**/kustomization.yaml",
                                                        recursive=True))


_built = {}


def kustomize_build(d):
    """The objects kubectl kustomize renders for d (None when kubectl is missing)."""
    if d not in _built:
        if not shutil.which("kubectl"):
            _built[d] = None
        else:
            r = run(["kubectl", "kustomize", d], timeout=120)
            if r.returncode != 0:
                raise Fail(f"kubectl kustomize {d}: {r.stderr.strip()}")
            _built[d] = [x for x in yaml.safe_load_all(r.stdout) if x]
    return _built[d]


# ---- the binary: its commands and options, as --help lists them -----------------------------

_help = {}


def help_text(*cmd):
    if cmd not in _help:
        r = run([BIN, *cmd, "--help"])
        _help[cmd] = r.stdout if r.returncode == 0 else None
    return _help[cmd]


def binary_commands():
    text = help_text()
    need(text, f"{BIN} --help failed")
    block = text.split("commands:", 1)[1].split("\n\n", 1)[0]
    return [line.split()[0] for line in block.strip().splitlines()]


def command_options(cmd):
    sub = ("policy", "check") if cmd == "policy" else (cmd,)
    text = help_text(*sub) or ""
    return set(re.findall(r"(--[a-z][a-z-]+)", text))


# Commands of later versions that deploy/ already uses (deploy/README.md says which version):
# checked as soon as the binary has them.
PENDING = {"report": "the weekly report"}
pending_seen = set()


def check_invocation(args, where):
    """args: an egressscan command line without the program name."""
    need(args, f"{where}: no egressscan command")
    cmd = args[0]
    commands = binary_commands()
    flags = [a.split("=", 1)[0] for a in args[1:] if a.startswith("--")]
    if cmd not in commands:
        need(cmd in PENDING, f"{where}: '{cmd}' is not an egressscan command ({commands})")
        pending_seen.add(cmd)
        return
    known = command_options(cmd)
    for f in flags:
        need(f in known or f == "--help", f"{where}: egressscan {cmd} has no option {f}")


def shell_invocations(script):
    """The egressscan command lines inside a shell script (one per line)."""
    out = []
    for line in script.splitlines():
        m = re.search(r"(?:^|\s|exec\s+)(?:/usr/bin/)?egressscan\s+(.*)$", line)
        if m:
            out.append(re.findall(r'"[^"]*"|\S+', m.group(1)))
    return [[a.strip('"') for a in inv] for inv in out]


# ---- YAML and kustomize ----------------------------------------------------------------------


@check
def yaml_files_parse():
    files = deploy_files(".yaml", ".yml")
    need(len(files) >= 15, f"expected the deploy/ YAML files, found {len(files)}")
    for p in files:
        try:
            docs = load_yaml_docs(p)
        except yaml.YAMLError as e:
            raise Fail(f"{p}: {e}")
        need(docs, f"{p}: no document")
        for d in docs:
            need(isinstance(d, dict), f"{p}: a document is not a mapping")
            if p.startswith(K8S) and "kind" in d and d["kind"] != "Kustomization":
                md = d.get("metadata") or {}
                need(d.get("apiVersion") and md.get("name"), f"{p}: {d['kind']} without "
                     "apiVersion or metadata.name")
    return f"{len(files)} files"


@check
def json_files_parse():
    files = deploy_files(".json")
    need(len(files) >= 7, f"expected the deploy/ JSON files, found {len(files)}")
    for p in files:
        try:
            with open(p, encoding="utf-8") as f:
                json.load(f)
        except ValueError as e:
            raise Fail(f"{p}: {e}")
    return f"{len(files)} files"


@check
def kustomizations_reference_existing_files_and_nothing_is_orphaned():
    dirs = kustomize_dirs()
    need({f"{K8S}/base", f"{K8S}/overlays/production", f"{K8S}/overlays/scale-out",
          f"{K8S}/overlays/report-webhook"} <= set(dirs), f"kustomizations: {dirs}")
    for d in dirs:
        (k,) = load_yaml_docs(os.path.join(d, "kustomization.yaml"))
        need(k.get("kind") == "Kustomization", f"{d}: kind {k.get('kind')}")
        used = set()
        for r in k.get("resources", []):
            p = os.path.normpath(os.path.join(d, r))
            need(os.path.isfile(p) or os.path.isfile(os.path.join(p, "kustomization.yaml")),
                 f"{d}: resource {r} does not exist")
            used.add(p)
        for patch in k.get("patches", []):
            need("path" in patch or "patch" in patch, f"{d}: a patch without path or patch")
            if "path" in patch:
                p = os.path.normpath(os.path.join(d, patch["path"]))
                need(os.path.isfile(p), f"{d}: patch {patch['path']} does not exist")
                used.add(p)
            else:
                yaml.safe_load_all(patch["patch"])
        for f in glob.glob(os.path.join(d, "*.yaml")):
            need(os.path.basename(f) == "kustomization.yaml" or os.path.normpath(f) in used,
                 f"{f} is not used by {d}/kustomization.yaml")
    return f"{len(dirs)} kustomizations"


@check
def kustomize_builds_every_overlay():
    if not shutil.which("kubectl"):
        raise Skip("kubectl is not installed (its kustomize builds the overlays)")
    for d in kustomize_dirs():
        objs = kustomize_build(d)
        need(objs, f"{d}: renders nothing")
        for o in objs:
            need(o["metadata"].get("namespace") == "egressscan" or o["kind"] == "Namespace",
                 f"{d}: {o['kind']}/{o['metadata']['name']} outside the namespace egressscan")
    names = {(o["kind"], o["metadata"]["name"]) for o in kustomize_build(f"{K8S}/overlays/scale-out")}
    need(("CronJob", "egressscan-scan") not in names, "scale-out still has the single scan")
    need({("CronJob", "egressscan-enqueue"), ("CronJob", "egressscan-worker")} <= names,
         "scale-out lacks enqueue or worker")
    hook = {o["metadata"]["name"]: o for o in kustomize_build(f"{K8S}/overlays/report-webhook")}
    spec = hook["egressscan-report"]["spec"]["jobTemplate"]["spec"]["template"]["spec"]
    need([c["name"] for c in spec.get("initContainers", [])] == ["report"] and
         [c["name"] for c in spec["containers"]] == ["post"],
         "report-webhook: the report must run first, then the post")
    post = spec["containers"][0]
    script = " ".join(post.get("command", []) + post.get("args", []))
    need("-K -" in script and "REPORT_WEBHOOK_URL" not in script and
         not any("secretKeyRef" in str(e) for e in post.get("env", [])),
         "report-webhook: the webhook URL must reach curl as a config on stdin (-K -), never as an "
         "argument or through the environment")
    return ", ".join(kustomize_dirs())


# ---- Kubernetes workloads --------------------------------------------------------------------

CRON_FIELD = [(0, 59), (0, 23), (1, 31), (1, 12), (0, 7)]


def valid_cron(expr):
    fields = expr.split()
    if len(fields) != 5:
        return False
    for f, (lo, hi) in zip(fields, CRON_FIELD):
        for part in f.split(","):
            m = re.fullmatch(r"(\*|(\d+)(?:-(\d+))?)(?:/(\d+))?", part)
            if not m:
                return False
            for g in (m.group(2), m.group(3)):
                if g is not None and not lo <= int(g) <= hi:
                    return False
    return True


def resource_files():
    """The manifests the kustomizations list as resources (patches are partial objects)."""
    out = set()
    for d in kustomize_dirs():
        (k,) = load_yaml_docs(os.path.join(d, "kustomization.yaml"))
        for r in k.get("resources", []):
            p = os.path.normpath(os.path.join(d, r))
            if os.path.isfile(p):
                out.add(p)
    return sorted(out)


def all_workload_objects():
    """(where, object) of every Job and CronJob: the raw files and every rendered overlay."""
    raw = k8s_objects(resource_files())
    out = [(p, o) for p, o in raw if o["kind"] in ("Job", "CronJob")]
    for d in kustomize_dirs():
        objs = kustomize_build(d)
        for o in objs or []:
            if o["kind"] in ("Job", "CronJob"):
                out.append((f"kustomize {d}", o))
    return out


def pod_spec(obj):
    if obj["kind"] == "CronJob":
        return obj["spec"]["jobTemplate"]["spec"]["template"]
    return obj["spec"]["template"]


def quantity(q):
    q = str(q)
    units = {"m": 1e-3, "Ki": 1024, "Mi": 1024 ** 2, "Gi": 1024 ** 3}
    for u, f in units.items():
        if q.endswith(u):
            return float(q[: -len(u)]) * f
    return float(q)


@check
def workloads_are_scheduled_hardened_and_sized():
    objs = all_workload_objects()
    need(len(objs) >= 8, f"found only {len(objs)} Jobs/CronJobs")
    base_sas = {o["metadata"]["name"] for _, o in k8s_objects([f"{K8S}/base/serviceaccount.yaml"])}
    (np,) = [o for _, o in k8s_objects([f"{K8S}/base/networkpolicy.yaml"])]
    selector = np["spec"]["podSelector"]["matchLabels"]
    for where, o in objs:
        name = f"{where}: {o['kind']}/{o['metadata']['name']}"
        if o["kind"] == "CronJob":
            s = o["spec"]
            need(valid_cron(s.get("schedule", "")), f"{name}: bad schedule {s.get('schedule')!r}")
            need(s.get("concurrencyPolicy") == "Forbid", f"{name}: concurrencyPolicy is not Forbid")
            need(s.get("timeZone"), f"{name}: no timeZone (schedules would follow the "
                 "controller's clock)")
            need(s.get("startingDeadlineSeconds"), f"{name}: no startingDeadlineSeconds")
        job = o["spec"]["jobTemplate"]["spec"] if o["kind"] == "CronJob" else o["spec"]
        need(job.get("activeDeadlineSeconds"), f"{name}: no activeDeadlineSeconds")
        tmpl = pod_spec(o)
        labels = tmpl.get("metadata", {}).get("labels", {})
        need(all(labels.get(k) == v for k, v in selector.items()),
             f"{name}: pod labels {labels} escape the NetworkPolicy selector {selector}")
        ps = tmpl["spec"]
        need(ps.get("restartPolicy") in ("Never", "OnFailure"), f"{name}: restartPolicy")
        need(ps.get("automountServiceAccountToken") is False,
             f"{name}: mounts a Kubernetes API token")
        need(ps.get("serviceAccountName") in base_sas,
             f"{name}: service account {ps.get('serviceAccountName')} is not defined")
        sc = ps.get("securityContext", {})
        need(sc.get("runAsNonRoot") is True, f"{name}: runAsNonRoot is not true")
        need(isinstance(sc.get("runAsUser"), int) and sc["runAsUser"] > 0,
             f"{name}: runAsUser must be a non-root uid")
        need(sc.get("seccompProfile", {}).get("type") == "RuntimeDefault",
             f"{name}: no RuntimeDefault seccomp profile")
        volumes = {v["name"] for v in ps.get("volumes", [])}
        containers = ps.get("initContainers", []) + ps["containers"]
        for c in containers:
            cn = f"{name} container {c['name']}"
            csc = c.get("securityContext", {})
            need(csc.get("readOnlyRootFilesystem") is True, f"{cn}: root filesystem writable")
            need(csc.get("allowPrivilegeEscalation") is False, f"{cn}: privilege escalation")
            need("ALL" in csc.get("capabilities", {}).get("drop", []),
                 f"{cn}: capabilities not dropped")
            res = c.get("resources", {})
            for kind in ("requests", "limits"):
                for r in ("cpu", "memory"):
                    need(r in res.get(kind, {}), f"{cn}: no {kind}.{r}")
            for r in ("cpu", "memory"):
                need(quantity(res["limits"][r]) >= quantity(res["requests"][r]),
                     f"{cn}: {r} limit below its request")
            for m in c.get("volumeMounts", []):
                need(m["name"] in volumes, f"{cn}: mounts unknown volume {m['name']}")
            if not c["image"].startswith(IMAGE) and "dkr.ecr" not in c["image"]:
                need(re.search(r":[\w.-]+$", c["image"]), f"{cn}: image {c['image']} not pinned")
                continue
            env = {e["name"]: e for e in c.get("env", [])}
            need("secretKeyRef" in env.get("DATABASE_URL", {}).get("valueFrom", {}),
                 f"{cn}: DATABASE_URL must come from a Secret")
            need(env.get("PGSSLMODE", {}).get("value") == "verify-full",
                 f"{cn}: PGSSLMODE is not verify-full")
            if c.get("command", [None])[0] == "/bin/sh":
                invs = shell_invocations(" ".join(c["args"]) if len(c["args"]) == 1 else
                                         "\n".join(c["args"]))
                need(invs, f"{cn}: the shell script runs no egressscan command")
                for inv in invs:
                    check_invocation(inv, cn)
            else:
                need(not c.get("command"), f"{cn}: overrides the entrypoint")
                check_invocation(c["args"], cn)
        for c in ps["containers"]:
            args = c.get("args") or []
            if args[:1] in (["scan"], ["worker"]) and "--enqueue" not in args:
                # the stop grace fits in the pod's: SIGKILL comes terminationGracePeriodSeconds
                # after SIGTERM, and what finished must be written before
                env = {e["name"]: e.get("value") for e in c.get("env", [])}
                grace = float(env.get("EGRESSSCAN_STOP_GRACE_SECONDS") or STOP_GRACE_DEFAULT_S)
                tgp = ps.get("terminationGracePeriodSeconds")
                need(isinstance(tgp, int) and tgp >= grace + STOP_MARGIN_S,
                     f"{name}: terminationGracePeriodSeconds {tgp} does not leave "
                     f"{STOP_MARGIN_S} s over the stop grace of {grace:g} s")
        if o["metadata"]["name"] in ("egressscan-scan", "egressscan-worker"):
            (c,) = ps["containers"]
            need(c["resources"] == {"requests": {"cpu": "250m", "memory": "128Mi"},
                                    "limits": {"cpu": "1", "memory": "256Mi"}},
                 f"{name}: resources differ from the sizing of SPEC section 9's targets")
        if o["metadata"]["name"] == "egressscan-worker":
            need(job.get("parallelism", 1) >= 2, f"{name}: parallelism below 2")
    note = f"{len(objs)} workloads"
    if pending_seen:
        note += "; commands of a later version: " + ", ".join(sorted(pending_seen))
    return note


@check
def kubernetes_objects_match_the_api_schema():
    py = "/usr/bin/python3"
    if not os.path.exists(py):
        raise Skip("no Debian python3")
    probe = run([py, "-c", "import kubernetes.client, yaml"])
    if probe.returncode != 0:
        raise Skip("Debian's python3-kubernetes is not installed (apt-get install "
                   "python3-kubernetes): field names and types are not checked")
    files = resource_files()
    with tempfile.TemporaryDirectory() as tmp:
        for d in kustomize_dirs():
            objs = kustomize_build(d)
            if objs:
                out = os.path.join(tmp, d.replace("/", "_") + ".yaml")
                with open(out, "w", encoding="utf-8") as f:
                    yaml.safe_dump_all(objs, f)
                files.append(out)
        r = run([py, "tests/deploy/k8s_schema.py", *files])
    need(r.returncode == 0, r.stdout.strip() + r.stderr.strip())
    return r.stdout.strip().splitlines()[-1]


@check
def networkpolicy_allows_only_dns_database_aws_and_pod_identity():
    (np,) = [o for _, o in k8s_objects([f"{K8S}/base/networkpolicy.yaml"])]
    s = np["spec"]
    need(set(s["policyTypes"]) == {"Ingress", "Egress"}, "policyTypes must be Ingress and Egress")
    need(not s.get("ingress"), "ingress must be empty (nothing connects to egressscan)")
    allowed = set()
    for rule in s["egress"]:
        need(rule.get("ports"), f"an egress rule opens every port: {rule}")
        need(rule.get("to"), f"an egress rule opens every destination: {rule}")
        ports = {(p.get("protocol", "TCP"), p["port"]) for p in rule["ports"]}
        allowed |= ports
        blocks = [t["ipBlock"] for t in rule["to"] if "ipBlock" in t]
        if ("TCP", 443) in ports:
            need(ports == {("TCP", 443)}, "the HTTPS rule opens other ports")
            for b in blocks:
                if b["cidr"] == "0.0.0.0/0":
                    need({"10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16",
                          "169.254.0.0/16"} <= set(b.get("except", [])),
                         "HTTPS to 0.0.0.0/0 must except the private and link-local ranges")
        if ("TCP", 5432) in ports:
            need(blocks and all(b["cidr"] != "0.0.0.0/0" for b in blocks),
                 "PostgreSQL must be limited to the database's range")
        if ("TCP", 80) in ports:
            need([b["cidr"] for b in blocks] == ["169.254.170.23/32"],
                 "port 80 is for the EKS Pod Identity agent only")
        if ("UDP", 53) in ports:
            need(all("ipBlock" not in t for t in rule["to"]), "DNS must go to kube-dns only")
    need(allowed == {("UDP", 53), ("TCP", 53), ("TCP", 5432), ("TCP", 443), ("TCP", 80)},
         f"egress ports {sorted(allowed)}")
    prod = kustomize_build(f"{K8S}/overlays/production")
    if prod:
        (p,) = [o for o in prod if o["kind"] == "NetworkPolicy"]
        need(p["spec"]["egress"][1]["ports"][0]["port"] == 5432 and
             p["spec"]["egress"][1]["to"][0]["ipBlock"]["cidr"] != "10.0.42.0/24",
             "the production overlay does not set the database range")
    return "DNS, 5432, 443, Pod Identity agent"


@check
def serviceaccount_placeholder_and_overlay():
    sas = {o["metadata"]["name"]: o for _, o in k8s_objects([f"{K8S}/base/serviceaccount.yaml"])}
    arn = sas["egressscan"]["metadata"]["annotations"]["eks.amazonaws.com/role-arn"]
    need("<TOOLING_ACCOUNT_ID>" in arn, f"the base's role ARN is not the placeholder: {arn}")
    need(sas["egressscan"].get("automountServiceAccountToken") is False, "SA mounts a token")
    need(not sas["egressscan-db"]["metadata"].get("annotations"),
         "egressscan-db must have no AWS identity")
    prod = kustomize_build(f"{K8S}/overlays/production")
    if prod is None:
        return "placeholder present (overlay not rendered: no kubectl)"
    (sa,) = [o for o in prod if o["kind"] == "ServiceAccount" and o["metadata"]["name"] ==
             "egressscan"]
    arn = sa["metadata"]["annotations"]["eks.amazonaws.com/role-arn"]
    need(re.fullmatch(r"arn:aws:iam::\d{12}:role/[\w+=,.@-]+", arn),
         f"the production overlay's role ARN is not an ARN: {arn}")
    images = {c["image"] for o in prod if o["kind"] in ("Job", "CronJob")
              for c in pod_spec(o)["spec"]["containers"]}
    need(all(IMAGE not in i for i in images), f"the overlay leaves the placeholder image: {images}")
    return arn


@check
def image_tag_is_the_binary_version():
    r = run([BIN, "version"])
    need(r.returncode == 0, "egressscan version failed")
    version = r.stdout.split()[1]
    tags = set()
    for _, o in all_workload_objects():
        for c in pod_spec(o)["spec"].get("initContainers", []) + pod_spec(o)["spec"]["containers"]:
            if c["image"].startswith(IMAGE):
                tags.add(c["image"].rsplit(":", 1)[1])
    need(tags == {version}, f"image tags {tags}, binary {version}")
    return version


@check
def scan_configuration_is_what_the_binary_accepts():
    configs = []
    for _, o in k8s_objects(glob.glob(f"{K8S}/**/*.yaml", recursive=True)):
        if o["kind"] == "ConfigMap" and "config.json" in o.get("data", {}):  # patches included
            configs.append((o["metadata"]["name"], o["data"]["config.json"]))
    need(len(configs) >= 2, "expected the base's and the production overlay's config.json")
    with tempfile.TemporaryDirectory() as tmp:
        bad = os.path.join(tmp, "bad.json")
        with open(bad, "w") as f:
            f.write('{"regions": "all", "no_such_key": 1}')
        for name, text in configs + [("deliberately bad", None)]:
            path = bad
            if text is not None:
                json.loads(text)
                path = os.path.join(tmp, "config.json")
                with open(path, "w") as f:
                    f.write(text)
            # a valid configuration gets as far as the (unreachable) database: exit 4, not 2
            r = run([BIN, "scan", "--config", path, "--database-url",
                     "postgresql://nobody@127.0.0.1:1/none?connect_timeout=2"],
                    env={**os.environ, "AWS_ACCESS_KEY_ID": "AKIDEXAMPLE",
                         "AWS_SECRET_ACCESS_KEY": "example", "AWS_EC2_METADATA_DISABLED": "true"})
            want = 2 if text is None else 4
            need(r.returncode == want, f"{name}: egressscan scan --config exited {r.returncode}, "
                 f"expected {want}: {r.stderr.strip()}")
    return f"{len(configs)} configurations"


# ---- IAM, CloudFormation, SCPs ---------------------------------------------------------------

ORG_ACTIONS = None


def org_actions():
    """The Organizations operations egressscan calls, from scanner/org.c."""
    global ORG_ACTIONS
    if ORG_ACTIONS is None:
        with open("scanner/org.c", encoding="utf-8") as f:
            table = re.search(r"op_names\[\] = \{(.*?)\};", f.read(), re.S)
        ops = re.findall(r'\[(?:ORG_)?OP_[A-Z_]+\]\s*=\s*"(\w+)"', table.group(1) if table else "")
        need(len(ops) >= 5, "cannot read the operations of scanner/org.c")
        ORG_ACTIONS = {"organizations:" + o for o in ops}
    return ORG_ACTIONS


def member_actions():
    """What the scanner calls in a member account: the listing, and the cluster updates that date
    a mode change (scanner/eks.c builds their URLs) when it does."""
    with open("scanner/eks.c", encoding="utf-8") as f:
        src = f.read()
    dating = {"eks:ListUpdates", "eks:DescribeUpdate"} if '"/updates"' in src else set()
    return {"eks:ListClusters", "eks:DescribeCluster", "ec2:DescribeRegions"} | dating


MEMBER_ACTIONS = member_actions()


def securityhub_actions():
    """What `egressscan export securityhub` calls (scanner/securityhub.c), as the scanner: STS
    GetCallerIdentity needs no permission."""
    with open("scanner/securityhub.c", encoding="utf-8") as f:
        src = f.read()
    return {"securityhub:BatchImportFindings"} if '/findings/import"' in src else set()


def policy_actions(doc):
    acts = {}
    stmts = doc["Statement"] if isinstance(doc["Statement"], list) else [doc["Statement"]]
    for s in stmts:
        need(s["Effect"] == "Allow", f"unexpected {s['Effect']}")
        need("NotAction" not in s and "NotResource" not in s, "NotAction/NotResource")
        a = s["Action"] if isinstance(s["Action"], list) else [s["Action"]]
        r = s["Resource"] if isinstance(s["Resource"], list) else [s["Resource"]]
        for x in a:
            need("*" not in x, f"wildcard action {x}")
            acts.setdefault(x, set()).update(r)
    return acts


def read_json(path):
    with open(path, encoding="utf-8") as f:
        return json.load(f)


@check
def scanner_policies_grant_exactly_what_the_scanner_calls():
    p = read_json(f"{DEPLOY}/iam/scanner-policy.json")
    need(p["Version"] == "2012-10-17", "policy Version")
    acts = policy_actions(p)
    need(set(acts) == {"sts:AssumeRole"} | org_actions() | securityhub_actions(),
         f"scanner-policy.json actions {sorted(acts)}; the scanner calls "
         f"{sorted(org_actions() | securityhub_actions())} and sts:AssumeRole")
    need(acts["sts:AssumeRole"] == {"arn:aws:iam::*:role/EgressScanReadOnly"},
         f"AssumeRole on {acts['sts:AssumeRole']}")
    for a in securityhub_actions():
        need(acts[a] == {"arn:aws:securityhub:*:*:product/*/default"},
             f"{a} on {acts[a]}: only the default product (the importing account's own)")
    q = policy_actions(read_json(f"{DEPLOY}/iam/scanner-policy-org-role.json"))
    need(set(q) == {"sts:AssumeRole"} | securityhub_actions(),
         f"scanner-policy-org-role.json actions {sorted(q)}")
    need(len(q["sts:AssumeRole"]) == 2 and "arn:aws:iam::*:role/EgressScanReadOnly" in
         q["sts:AssumeRole"], f"AssumeRole on {q['sts:AssumeRole']}")
    irsa = read_json(f"{DEPLOY}/iam/scanner-trust-irsa.json")["Statement"][0]
    need(irsa["Action"] == "sts:AssumeRoleWithWebIdentity" and "Federated" in irsa["Principal"],
         "IRSA trust")
    cond = irsa["Condition"]["StringEquals"]
    need(any(k.endswith(":sub") and v == "system:serviceaccount:egressscan:egressscan"
             for k, v in cond.items()), "IRSA trust must name the ServiceAccount")
    need(any(k.endswith(":aud") and v == "sts.amazonaws.com" for k, v in cond.items()),
         "IRSA trust must check the audience")
    pi = read_json(f"{DEPLOY}/iam/scanner-trust-pod-identity.json")["Statement"][0]
    need(pi["Principal"] == {"Service": "pods.eks.amazonaws.com"} and
         set(pi["Action"]) == {"sts:AssumeRole", "sts:TagSession"}, "Pod Identity trust")
    return f"{len(acts)} actions"


def cfn_template():
    (t,) = load_yaml_docs(f"{DEPLOY}/iam/member-role-stackset.yaml")
    return t


@check
def stackset_template_trusts_the_scanner_only_and_reads_only():
    t = cfn_template()
    role = t["Resources"]["Role"]["Properties"]
    (st,) = role["AssumeRolePolicyDocument"]["Statement"]
    need(st["Effect"] == "Allow" and st["Action"] == "sts:AssumeRole", "trust statement")
    need(st["Principal"] == {"AWS": {"Ref": "ScannerRoleArn"}}, f"trusted {st['Principal']}")
    need(st["Condition"] == {"StringEquals": {"sts:ExternalId": {"Ref": "ExternalId"},
                                              "aws:PrincipalOrgID": {"Ref": "OrganizationId"}}},
         f"trust conditions {st['Condition']}")
    (pol,) = role["Policies"]
    member, reader = pol["Fn::If"][1], pol["Fn::If"][2]
    need(set(policy_actions(member["PolicyDocument"])) == MEMBER_ACTIONS,
         "member permissions must be exactly " + ", ".join(sorted(MEMBER_ACTIONS)))
    need(set(policy_actions(reader["PolicyDocument"])) == org_actions(),
         "org-reader permissions must be the Organizations calls the scanner makes")
    need(t["Parameters"]["RoleName"]["Default"] == "EgressScanReadOnly", "default role name")
    return "trust: scanner role + ExternalId + PrincipalOrgID"


@check
def stackset_template_passes_cfn_lint():
    exe = shutil.which("cfn-lint")
    if not exe:
        raise Skip("cfn-lint is not installed")
    r = run([exe, f"{DEPLOY}/iam/member-role-stackset.yaml"])
    need(r.returncode == 0, r.stdout + r.stderr)
    return run([exe, "--version"]).stdout.strip()


@check
def stackset_template_deploys_in_moto():
    try:
        import boto3
        from moto import mock_aws
    except ImportError:
        raise Skip("moto/boto3 are not installed")
    with open(f"{DEPLOY}/iam/member-role-stackset.yaml", encoding="utf-8") as f:
        body = f.read()
    env = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
           "AWS_DEFAULT_REGION": "us-east-1"}
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    try:
        with mock_aws():
            cf = boto3.client("cloudformation", region_name="us-east-1")
            iam = boto3.client("iam", region_name="us-east-1")
            params = [{"ParameterKey": "ScannerRoleArn",
                       "ParameterValue": "arn:aws:iam::111122223333:role/EgressScanScanner"},
                      {"ParameterKey": "ExternalId", "ParameterValue": "egressscan-7f3c2a9e"},
                      {"ParameterKey": "OrganizationId", "ParameterValue": "o-exampleorg1"}]
            cf.create_stack(StackName="member", TemplateBody=body, Parameters=params,
                            Capabilities=["CAPABILITY_NAMED_IAM"])
            cf.create_stack(StackName="reader", TemplateBody=body, Capabilities=[
                "CAPABILITY_NAMED_IAM"], Parameters=params + [
                {"ParameterKey": "Purpose", "ParameterValue": "org-reader"},
                {"ParameterKey": "RoleName", "ParameterValue": "EgressScanOrgReader"}])
            for stack, role, acts in (("member", "EgressScanReadOnly", MEMBER_ACTIONS),
                                      ("reader", "EgressScanOrgReader", org_actions())):
                st = cf.describe_stacks(StackName=stack)["Stacks"][0]
                need(st["StackStatus"] == "CREATE_COMPLETE", f"{stack}: {st['StackStatus']}")
                r = iam.get_role(RoleName=role)["Role"]
                trust = r["AssumeRolePolicyDocument"]
                trust = json.loads(trust) if isinstance(trust, str) else trust
                cond = trust["Statement"][0]["Condition"]["StringEquals"]
                need(cond == {"sts:ExternalId": "egressscan-7f3c2a9e",
                              "aws:PrincipalOrgID": "o-exampleorg1"}, f"{role}: trust {cond}")
                (pname,) = iam.list_role_policies(RoleName=role)["PolicyNames"]
                doc = iam.get_role_policy(RoleName=role, PolicyName=pname)["PolicyDocument"]
                if isinstance(doc, str):  # moto gives a Python literal where AWS gives JSON
                    doc = json.loads(doc) if doc.startswith('{"') else ast.literal_eval(doc)
                need(set(policy_actions(doc)) == acts, f"{role}: {sorted(policy_actions(doc))}")
                out = {o["OutputKey"]: o["OutputValue"] for o in st.get("Outputs", [])}
                need(out.get("RoleArn", "").endswith(":role/" + role), f"{stack}: outputs {out}")
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
    return "member and org-reader stacks"


@check
def example_scps_are_what_the_readme_says():
    enf = read_json(f"{DEPLOY}/iam/scp-enforce-customer-routed.json")["Statement"]
    need([s["Effect"] for s in enf] == ["Deny", "Deny"], "the enforcing SCP denies")
    need(enf[0]["Condition"] == {"StringNotEquals": {"eks:controlPlaneEgressMode":
                                                     "CUSTOMER_ROUTED"}},
         "CreateCluster: StringNotEquals CUSTOMER_ROUTED, no Null guard")
    need("Null" in enf[1]["Condition"] and enf[1]["Action"] == "eks:UpdateClusterConfig",
         "the Null guard is on UpdateClusterConfig only")
    (pit,) = read_json(f"{DEPLOY}/iam/scp-pitfall-ifexists.json")["Statement"]
    need(pit["Condition"] == {"StringEquals": {"eks:controlPlaneEgressMode": "AWS_MANAGED"}},
         "the pitfall: a positive operator without IfExists")
    return "verdicts: tests/unit/test_deploy_scps.c"


# ---- systemd ---------------------------------------------------------------------------------


def unit_sections(path):
    sections, cur = {}, None
    with open(path, encoding="utf-8") as f:
        for line in f:
            line = line.strip()
            if not line or line.startswith(("#", ";")):
                continue
            if line.startswith("["):
                cur = sections.setdefault(line.strip("[]"), [])
                continue
            k, v = line.split("=", 1)
            cur.append((k.strip(), v.strip()))
    return sections


def systemd_unescape(s):
    return s.replace("$$", "$").replace("%%", "%")


_installed = None


def installed_tree():
    """`make install DESTDIR=<tmp> PREFIX=/usr` once; returns the DESTDIR."""
    global _installed
    if _installed is None:
        _installed = tempfile.mkdtemp(prefix="egressscan-install.")
        os.chmod(_installed, 0o755)  # systemd-analyze checks the binary as a service would
        r = run(["make", "--no-print-directory", "install", f"DESTDIR={_installed}",
                 "PREFIX=/usr", f"BIN={BIN}"], timeout=600)
        need(r.returncode == 0, f"make install: {r.stdout}{r.stderr}")
    return _installed


@check
def make_install_puts_the_binary_and_the_man_page():
    d = installed_tree()
    b, m = f"{d}/usr/bin/egressscan", f"{d}/usr/share/man/man1/egressscan.1"
    need(os.access(b, os.X_OK) and oct(os.stat(b).st_mode & 0o777) == "0o755", f"{b} 0755")
    need(os.path.isfile(m) and oct(os.stat(m).st_mode & 0o777) == "0o644", f"{m} 0644")
    need(run([b, "version"]).returncode == 0, "the installed binary does not run")
    with tempfile.TemporaryDirectory() as d2:
        r = run(["make", "--no-print-directory", "install", f"DESTDIR={d2}", f"BIN={BIN}"])
        need(r.returncode == 0 and os.path.isfile(f"{d2}/usr/local/bin/egressscan") and
             os.path.isfile(f"{d2}/usr/local/share/man/man1/egressscan.1"),
             "PREFIX does not default to /usr/local")
        r = run(["make", "--no-print-directory", "uninstall", f"DESTDIR={d2}"])
        need(r.returncode == 0 and not os.path.exists(f"{d2}/usr/local/bin/egressscan") and
             not os.path.exists(f"{d2}/usr/local/share/man/man1/egressscan.1"),
             "make uninstall leaves files")
    return "usr/bin/egressscan, usr/share/man/man1/egressscan.1"


UNITS = f"{DEPLOY}/systemd"
STOP_GRACE_DEFAULT_S = 20  # cmd/egressscan/stop.h
STOP_MARGIN_S = 5  # at least this long between the grace's end and SIGKILL
HARDENING = {"DynamicUser": "yes", "ProtectSystem": "strict", "NoNewPrivileges": "yes",
             "ProtectHome": "yes", "PrivateTmp": "yes", "PrivateDevices": "yes",
             "CapabilityBoundingSet": "", "RestrictSUIDSGID": "yes",
             "SystemCallArchitectures": "native", "MemoryDenyWriteExecute": "yes"}


@check
def systemd_units_are_hardened_timed_and_call_real_commands():
    services = sorted(glob.glob(f"{UNITS}/*.service"))
    timers = sorted(glob.glob(f"{UNITS}/*.timer"))
    need({os.path.basename(s) for s in services} >= {"egressscan-scan.service",
                                                      "egressscan-report.service"},
         f"services {services}")
    need(len(timers) == len(services), "a timer per service")
    for s in services:
        sec = unit_sections(s)
        svc = dict(sec["Service"])
        need(svc.get("Type") == "oneshot", f"{s}: Type")
        for k, v in HARDENING.items():
            need(svc.get(k) == v, f"{s}: {k}={svc.get(k)!r}, expected {v!r}")
        need("PGSSLMODE=verify-full" in [v for k, v in sec["Service"] if k == "Environment"],
             f"{s}: PGSSLMODE=verify-full")
        need("man:egressscan(1)" in dict(sec["Unit"]).get("Documentation", ""), f"{s}: docs")
        exec_start = systemd_unescape(svc["ExecStart"])
        if exec_start.startswith("/bin/sh -c "):
            invs = shell_invocations(exec_start[len("/bin/sh -c "):].strip("'"))
        else:
            need(exec_start.startswith("/usr/bin/egressscan "), f"{s}: ExecStart {exec_start}")
            invs = [exec_start.split()[1:]]
        need(invs, f"{s}: runs no egressscan command")
        for inv in invs:
            check_invocation(inv, s)
        if any(inv[:1] in (["scan"], ["worker"]) and "--enqueue" not in inv for inv in invs):
            env = dict(v.split("=", 1) for k, v in sec["Service"] if k == "Environment" and
                       "=" in v)
            grace = float(env.get("EGRESSSCAN_STOP_GRACE_SECONDS") or STOP_GRACE_DEFAULT_S)
            stop = svc.get("TimeoutStopSec", "90s")
            m = re.fullmatch(r"(\d+)(s|min)?", stop)
            stop_s = int(m.group(1)) * (60 if m.group(2) == "min" else 1) if m else 0
            need(stop_s >= grace + STOP_MARGIN_S,
                 f"{s}: TimeoutStopSec={stop} does not leave {STOP_MARGIN_S} s over the stop "
                 f"grace of {grace:g} s")
            need("143" in svc.get("SuccessExitStatus", "").split(),
                 f"{s}: a stop by SIGTERM (exit 143) leaves the unit failed")
        t = s[: -len(".service")] + ".timer"
        need(os.path.exists(t), f"{t} missing")
        tsec = unit_sections(t)
        timer = dict(tsec["Timer"])
        need(timer.get("OnCalendar") and timer.get("Persistent") == "true", f"{t}: OnCalendar, "
             "Persistent=true")
        need(dict(tsec["Install"]).get("WantedBy") == "timers.target", f"{t}: WantedBy")
        r = run(["systemd-analyze", "calendar", timer["OnCalendar"]]) if shutil.which(
            "systemd-analyze") else None
        need(r is None or r.returncode == 0, f"{t}: OnCalendar {timer['OnCalendar']}: "
             f"{r and r.stderr}")
    return f"{len(services)} services, {len(timers)} timers"


@check
def systemd_analyze_verify_passes():
    exe = shutil.which("systemd-analyze")
    if not exe:
        raise Skip("systemd-analyze is not installed")
    probe = run([exe, "--version"])
    if probe.returncode != 0:
        raise Skip(f"systemd-analyze cannot run here: {probe.stderr.strip()}")
    d = installed_tree()
    with tempfile.TemporaryDirectory() as tmp:
        os.chmod(tmp, 0o755)
        for f in glob.glob(f"{UNITS}/*.service") + glob.glob(f"{UNITS}/*.timer"):
            with open(f, encoding="utf-8") as src:
                text = src.read()
            # the installed binary, wherever this test installed it
            text = text.replace("/usr/bin/egressscan", f"{d}/usr/bin/egressscan")
            with open(os.path.join(tmp, os.path.basename(f)), "w", encoding="utf-8") as out:
                out.write(text)
        units = sorted(glob.glob(f"{tmp}/*"))
        # Documentation=man:egressscan(1) must resolve: the installed man page
        env = {**os.environ, "MANPATH": f"{d}/usr/share/man:"}
        r = run([exe, "verify", *units], env=env)
        if r.returncode != 0 and ("Failed to initialize manager" in r.stderr or
                                  "Operation not permitted" in r.stderr):
            raise Skip(f"systemd-analyze verify cannot run in this container: {r.stderr.strip()}")
        need(r.returncode == 0 and not r.stderr.strip(), f"systemd-analyze verify: {r.stderr}")
        scores = []
        for u in units:
            if u.endswith(".service"):
                r = run([exe, "security", "--offline=yes", "--threshold=20", u], env=env)
                m = re.search(r"Overall exposure level for \S+: ([\d.]+)", r.stdout)
                need(r.returncode == 0 and m, f"systemd-analyze security {u}: {r.stdout[-400:]}"
                     f"{r.stderr}")
                scores.append(f"{os.path.basename(u)} {m.group(1)}")
    return "exposure " + ", ".join(scores)


@check
def report_unit_names_its_file_by_iso_week():
    svc = dict(unit_sections(f"{UNITS}/egressscan-report.service")["Service"])
    script = systemd_unescape(svc["ExecStart"])[len("/bin/sh -c '"):-1]
    with tempfile.TemporaryDirectory() as tmp:
        stub = os.path.join(tmp, "egressscan")
        with open(stub, "w") as f:
            f.write('#!/bin/sh\nprintf "%s\\n" "$@"\n')
        os.chmod(stub, 0o755)
        r = run(["/bin/sh", "-c", script.replace("/usr/bin/egressscan", stub)],
                env={"PATH": "/usr/bin:/bin", "STATE_DIRECTORY": "/var/lib/egressscan-reports",
                     "TZ": "UTC"})
        need(r.returncode == 0, f"the report's shell line fails: {r.stderr}")
        args = r.stdout.splitlines()
        week = run(["date", "-u", "-d", "7 days ago", "+%G-W%V"]).stdout.strip()
        need(args == ["report", "--week", week, "--format", "html", "--out",
                      f"/var/lib/egressscan-reports/egressscan-{week}.html"], f"args {args}")
    return args[2]


# ---- the container image ---------------------------------------------------------------------


def dockerfile_stages():
    stages, cur = [], None
    with open(f"{DEPLOY}/Dockerfile", encoding="utf-8") as f:
        text = re.sub(r"\\\n", " ", f.read())
    args = dict(re.findall(r"^ARG (\w+)=(\S+)$", text, re.M))
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        instr, _, rest = line.partition(" ")
        if instr == "FROM":
            image = re.sub(r"\$\{(\w+)\}", lambda m: args.get(m.group(1), ""), rest.split()[0])
            cur = {"from": image, "name": rest.split()[-1] if " AS " in rest else None,
                   "lines": []}
            stages.append(cur)
        elif cur is not None:
            cur["lines"].append((instr, rest))
    return stages


def apt_packages(stage):
    pkgs = []
    for instr, rest in stage["lines"]:
        if instr == "RUN" and "apt-get install" in rest:
            tail = rest.split("apt-get install", 1)[1].split("&&")[0]
            pkgs += [p for p in tail.split() if not p.startswith("-")]
    return pkgs


def dpkg_package_of(path):
    candidates = [path, os.path.realpath(path)]
    for p in list(candidates):
        if p.startswith("/lib/"):
            candidates.append("/usr" + p)
        elif p.startswith("/usr/lib/"):
            candidates.append(p[len("/usr"):])
    for p in candidates:
        r = run(["dpkg", "-S", p])
        if r.returncode == 0:
            return r.stdout.split(":")[0].strip()
    return None


def dependency_closure(pkgs):
    seen, todo = set(), list(pkgs)
    while todo:
        p = todo.pop()
        if p in seen:
            continue
        seen.add(p)
        r = run(["dpkg-query", "-W", "-f", "${Depends}, ${Pre-Depends}", p])
        if r.returncode != 0:
            continue
        for alt in r.stdout.split(","):
            for dep in alt.split("|"):
                name = dep.strip().split(" ")[0].split(":")[0]
                if name:
                    todo.append(name)
    return seen


@check
def dockerfile_stages_build_as_the_makefile_and_run_unprivileged():
    stages = dockerfile_stages()
    need(len(stages) == 2, f"{len(stages)} stages")
    build, runtime = stages
    with open("/etc/debian_version") as f:
        major = f.read().split(".")[0]
    for s in stages:
        need(s["from"] == f"debian:{major}-slim", f"FROM {s['from']}: the image must be the "
             f"Debian release the Makefile's package names are for (debian:{major}-slim)")
    with open("Makefile", encoding="utf-8") as f:
        mk = re.sub(r"\\\n", " ", f.read())
    deb = re.search(r"^DEB_PKGS := (.*)$", mk, re.M).group(1).split()
    libs = {p for p in deb if p.endswith("-dev") and p not in ("libcmocka-dev",)
            and not p.startswith("libclang")}
    bp = set(apt_packages(build))
    need(libs <= bp, f"the build stage lacks the Makefile's {sorted(libs - bp)}")
    need({"make", "gcc", "pkg-config"} <= bp, "the build stage lacks make, gcc or pkg-config")
    runs = " ".join(r for i, r in build["lines"] if i == "RUN")
    need(re.search(r"\bmake\b.*\bbuild/egressscan\b", runs), "the build stage does not run "
         "the Makefile's rule (make build/egressscan)")
    user = [r for i, r in runtime["lines"] if i == "USER"]
    need(user and re.fullmatch(r"[1-9]\d*(:\d+)?", user[-1]), f"USER {user}: numeric, non-root")
    entry = [r for i, r in runtime["lines"] if i == "ENTRYPOINT"]
    need(entry and json.loads(entry[-1]) == ["/usr/bin/egressscan"], f"ENTRYPOINT {entry}")
    copies = [r for i, r in runtime["lines"] if i == "COPY"]
    need(copies == ["--from=build /src/build/egressscan /usr/bin/egressscan"],
         f"the runtime stage copies {copies}: the binary only")
    rp = apt_packages(runtime)
    need(not [p for p in rp if p.endswith("-dev")], f"-dev packages at run time: {rp}")
    need("ca-certificates" in rp, "no CA bundle for TLS")
    return f"build {sorted(bp)}; runtime {rp}"


@check
def dockerfile_runtime_packages_cover_ldd():
    if not shutil.which("dpkg") or not shutil.which("ldd"):
        raise Skip("not a Debian machine (no dpkg or ldd)")
    _, runtime = dockerfile_stages()
    listed = set(apt_packages(runtime))
    closure = dependency_closure(listed | {"libc6"})
    needed = set(re.findall(r"NEEDED\s+(\S+)", run(["objdump", "-p", BIN]).stdout)) if \
        shutil.which("objdump") else set()
    r = run(["ldd", BIN])
    need(r.returncode == 0, f"ldd: {r.stderr}")
    missing, direct = [], []
    n = 0
    for line in r.stdout.splitlines():
        m = re.match(r"\s*(\S+) => (\S+)", line)
        if not m:
            continue
        n += 1
        soname, path = m.groups()
        pkg = dpkg_package_of(path)
        need(pkg, f"no Debian package ships {path}")
        if pkg not in closure:
            missing.append(f"{soname} ({pkg})")
        if soname in needed and pkg not in listed and pkg != "libc6":
            direct.append(f"{soname} ({pkg})")
    need(not missing, "the runtime stage does not install: " + ", ".join(missing))
    need(not direct, "libraries the binary links directly must be listed, not inherited: " +
         ", ".join(direct))
    return f"{n} libraries from {len(listed)} packages and their dependencies"


@check
def dockerfile_build_context_builds_the_binary():
    if not shutil.which("make") or not shutil.which("cc"):
        raise Skip("no make or cc")
    with open(f"{DEPLOY}/Dockerfile.dockerignore", encoding="utf-8") as f:
        rules = [line.strip() for line in f if line.strip() and not line.startswith("#")]
    need(rules[0] == "*", "the context must be an allow-list (first rule '*')")
    allowed = [r[1:].rstrip("/") for r in rules[1:] if r.startswith("!")]
    with tempfile.TemporaryDirectory() as tmp:
        for a in allowed:
            if os.path.isdir(a):
                shutil.copytree(a, os.path.join(tmp, a))
            elif os.path.isfile(a):
                shutil.copy2(a, os.path.join(tmp, a))
        r = run(["make", "-j2", "build/egressscan"], cwd=tmp, timeout=600)
        need(r.returncode == 0, "the Docker build context does not build:\n" + r.stderr[-2000:])
        v = run([os.path.join(tmp, "build/egressscan"), "version"])
        need(v.returncode == 0, "the binary built from the context does not run")
    return "from " + ", ".join(allowed)


# ---- the man page ----------------------------------------------------------------------------


@check
def man_page_renders_and_documents_every_command_and_option():
    if not shutil.which("man"):
        raise Skip("man is not installed (Debian: man-db)")
    r = run(["man", "--warnings", "-P", "cat", "-l", f"{DEPLOY}/egressscan.1"],
            env={**os.environ, "MANWIDTH": "100", "LC_ALL": "C.UTF-8"})
    need(r.returncode == 0, f"man -l: {r.stderr}")
    need(not r.stderr.strip(), f"man -l warnings: {r.stderr}")
    text = r.stdout
    flat = re.sub(r"‐\n\s*|-\n\s*", "-", text)  # words hyphenated at line ends
    flat = flat.replace("‐", "-")
    for section in ("NAME", "SYNOPSIS", "DESCRIPTION", "COMMANDS", "EXIT STATUS", "ENVIRONMENT",
                    "DATABASE", "SEE ALSO"):
        need(re.search(rf"^{section}$", text, re.M), f"no {section} section")
    missing = []
    for cmd in binary_commands():
        if not re.search(rf"^\s+{cmd}\b", text, re.M):
            missing.append(f"command {cmd}")
        for opt in sorted(command_options(cmd)):
            if opt != "--help" and not re.search(rf"(?<![\w-]){opt}(?![\w-])", flat):
                missing.append(f"{cmd} {opt}")
    need(not missing, "the man page does not describe: " + ", ".join(missing))
    return f"{len(text.splitlines())} lines"


# ---- PostgreSQL: roles.sql, the reader, and every dashboard query ---------------------------

VIEWS = None


def migration_views():
    global VIEWS
    if VIEWS is None:
        VIEWS = set()
        for p in sorted(glob.glob("migrations/*.sql")):
            with open(p, encoding="utf-8") as f:
                VIEWS |= set(re.findall(r"CREATE (?:OR REPLACE )?VIEW egressscan\.(\w+)", f.read()))
    return VIEWS


def dashboard():
    return read_json(f"{DEPLOY}/grafana/egressscan-dashboard.json")


def dashboard_queries():
    out = []
    for p in dashboard()["panels"]:
        for t in p.get("targets", []):
            out.append((p["title"], t["rawSql"]))
    return out


@check
def dashboard_reads_views_only_through_its_data_source():
    d = dashboard()
    need(d.get("uid") and d.get("title"), "dashboard uid/title")
    ds = [v for v in d["templating"]["list"] if v["type"] == "datasource"]
    need(ds and ds[0]["query"] in ("grafana-postgresql-datasource", "postgres"),
         "a PostgreSQL data source variable")
    views = migration_views()
    need({"scans", "coverage", "current_clusters", "cluster_history", "current_drift",
          "daily_compliance", "schema_versions", "target_results", "scan_accounts", "accounts",
          "findings", "scan_findings"} <= views, f"views of the migrations: {views}")
    titles = [p["title"] for p in d["panels"]]
    for want in ("Compliance trend", "Clusters by egress mode", "Open findings by kind",
                 "Coverage of the fleet", "Clusters not verified"):
        need(want in titles, f"no panel {want!r}")
    # compliance counts verified clusters only: a panel reading current_clusters says which
    for p in d["panels"]:
        for t in p["targets"]:
            if "current_clusters" in t["rawSql"]:
                need(re.search(r"\bverified\b", t["rawSql"]),
                     f"{p['title']}: current_clusters without verified")
    used = set()
    for p in d["panels"]:
        need(p["datasource"]["uid"] == "${datasource}", f"{p['title']}: data source")
        for t in p["targets"]:
            need(t.get("rawQuery") and t.get("rawSql"), f"{p['title']}: raw SQL")
            sql = re.sub(r"\bextract\s*\(\s*\w+\s+FROM\b", "extract(", t["rawSql"], flags=re.I)
            rels = re.findall(r"\b(?:FROM|JOIN)\s+([\w.\"]+)", sql, re.I)
            need(rels, f"{p['title']}: reads nothing")
            for rel in rels:
                m = re.fullmatch(r"egressscan\.(\w+)", rel)
                need(m and m.group(1) in views, f"{p['title']}: reads {rel}, not a view")
                used.add(m.group(1))
    ds_yaml = load_yaml_docs(f"{DEPLOY}/grafana/datasource.yaml")[0]["datasources"][0]
    need(ds_yaml["jsonData"]["sslmode"] == "verify-full", "datasource.yaml: sslmode")
    need(ds_yaml["type"] == ds[0]["query"], "datasource.yaml: type differs from the dashboard's")
    return f"{len(d['panels'])} panels over {sorted(used)}"


class Postgres:
    """A throwaway PostgreSQL on loopback (as tests/support/procs.c does)."""

    def __init__(self):
        bins = sorted(glob.glob("/usr/lib/postgresql/*/bin"),
                      key=lambda p: [int(x) for x in re.findall(r"\d+", p)])
        if not bins:
            raise Skip("PostgreSQL is not installed")
        self.bin = bins[-1]
        self.dir = tempfile.mkdtemp(prefix="egressscan-pg.")
        self.root = os.getuid() == 0
        if self.root:
            shutil.chown(self.dir, "postgres")
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        self.port = s.getsockname()[1]
        s.close()
        data = os.path.join(self.dir, "data")
        r = self.as_pg([f"{self.bin}/initdb", "-D", data, "-U", "postgres", "--auth=trust",
                        "-E", "UTF8"])
        if r.returncode != 0:
            raise Fail(f"initdb: {r.stderr}")
        # TLS with a certificate for "localhost" from a CA of our own: clients use verify-full
        self.ca = os.path.join(self.dir, "ca.crt")
        k = os.path.join(self.dir, "server.key")
        steps = [
            ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
             "-subj", "/CN=egressscan test CA", "-keyout", f"{self.dir}/ca.key", "-out", self.ca],
            ["openssl", "req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=localhost",
             "-keyout", k, "-out", f"{self.dir}/server.csr"],
            ["openssl", "x509", "-req", "-in", f"{self.dir}/server.csr", "-CA", self.ca,
             "-CAkey", f"{self.dir}/ca.key", "-CAcreateserial", "-days", "2",
             "-extfile", "/dev/stdin", "-out", f"{self.dir}/server.crt"]]
        for argv in steps:
            r = run(argv, input="subjectAltName=DNS:localhost\n" if "x509" in argv and
                    "-req" in argv else None)
            if r.returncode != 0:
                raise Fail(f"{' '.join(argv[:2])}: {r.stderr}")
        os.chmod(k, 0o600)
        if self.root:
            shutil.chown(k, "postgres")
        r = self.as_pg([f"{self.bin}/pg_ctl", "-D", data, "-l", f"{self.dir}/log", "-w", "-o",
                        f"-c listen_addresses=127.0.0.1 -p {self.port} -k {self.dir} -c ssl=on "
                        f"-c ssl_cert_file={self.dir}/server.crt -c ssl_key_file={k}", "start"])
        if r.returncode != 0:
            raise Fail(f"pg_ctl start: {r.stderr}")
        self.data = data

    def as_pg(self, argv):
        return run((["runuser", "-u", "postgres", "--"] if self.root else []) + argv)

    def url(self, user, db):
        return f"postgresql://{user}@127.0.0.1:{self.port}/{db}"

    def psql(self, user, db, sql=None, args=()):
        argv = ["psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", "-At", self.url(user, db), *args]
        if sql is not None:
            argv += ["-c", sql]
        return run(argv, env={**os.environ, "PGPASSWORD": ""})

    def stop(self):
        self.as_pg([f"{self.bin}/pg_ctl", "-D", self.data, "-m", "immediate", "stop"])
        shutil.rmtree(self.dir, ignore_errors=True)


GRAFANA_FROM = "2026-01-01T00:00:00Z"
GRAFANA_TO = "2026-12-31T00:00:00Z"


def grafana_macros(sql):
    return re.sub(r"\$__timeFilter\(([^)]+)\)",
                  lambda m: f"{m.group(1)} BETWEEN '{GRAFANA_FROM}' AND '{GRAFANA_TO}'", sql)


@check
def database_roles_and_every_dashboard_query_as_the_reader():
    if not shutil.which("psql"):
        raise Skip("psql is not installed")
    pg = Postgres()
    try:
        r = pg.psql("postgres", "postgres", args=["-v", "scanner_password=s3cret-scanner",
                                                  "-v", "grafana_password=s3cret-grafana",
                                                  "-f", f"{DEPLOY}/postgres/roles.sql"])
        need(r.returncode == 0, f"roles.sql: {r.stderr}")
        r = pg.psql("postgres", "postgres", args=["-v", "scanner_password=s3cret-scanner",
                                                  "-v", "grafana_password=s3cret-grafana",
                                                  "-f", f"{DEPLOY}/postgres/roles.sql"])
        need(r.returncode == 0, f"roles.sql a second time: {r.stderr}")
        # the scanner login (no CREATEROLE) migrates, and grants the reader its views, over TLS
        # verified as the README says (sslmode=verify-full, the database's CA)
        scanner = (f"postgresql://egressscan@localhost:{pg.port}/egressscan"
                   f"?sslmode=verify-full&sslrootcert={pg.ca}")
        r = run([BIN, "migrate", "--database-url", scanner])
        need(r.returncode == 0, f"egressscan migrate as egressscan: {r.stderr}")
        r = run([BIN, "migrate", "--database-url", scanner.replace("localhost", "127.0.0.1")])
        need(r.returncode == 4 and "127.0.0.1" in r.stderr,
             f"verify-full accepted a host name the certificate does not have: {r.stderr}")
        r = run([BIN, "prune", "--older-than", "90d", "--database-url", scanner])
        need(r.returncode == 0 and "0 scans pruned" in r.stdout, f"prune: {r.stdout}{r.stderr}")
        r = pg.psql("postgres", "egressscan", "SELECT count(*) FROM pg_views WHERE schemaname = "
                    "'egressscan' AND has_table_privilege('grafana_egressscan', "
                    "format('%I.%I', schemaname, viewname), 'SELECT')")
        need(r.stdout.strip() == str(len(migration_views())),
             f"grafana_egressscan reads {r.stdout.strip()} of {len(migration_views())} views")
        for title, sql in dashboard_queries():
            r = pg.psql("grafana_egressscan", "egressscan", grafana_macros(sql))
            need(r.returncode == 0, f"panel {title!r} fails as the reader: {r.stderr.strip()}")
        r = pg.psql("grafana_egressscan", "egressscan", "SELECT * FROM egressscan.scan")
        need(r.returncode != 0 and "permission denied" in r.stderr,
             "the reader can read a table")
        # every view, no table (the weekly report of any week reads the views alone: migration
        # 0005's history views and egressscan.findings_at)
        r = pg.psql("postgres", "egressscan", "SELECT string_agg(tablename, ',') FROM pg_tables "
                    "WHERE schemaname = 'egressscan' AND has_table_privilege('grafana_egressscan', "
                    "format('%I.%I', schemaname, tablename), 'SELECT')")
        need(r.returncode == 0 and r.stdout.strip() == "",
             f"the reader can read tables: {r.stdout.strip()}{r.stderr}")
        for view in sorted(migration_views()):
            r = pg.psql("grafana_egressscan", "egressscan",
                        f"SELECT count(*) FROM egressscan.{view}")
            need(r.returncode == 0, f"the reader cannot read {view}: {r.stderr.strip()}")
        r = pg.psql("grafana_egressscan", "egressscan",
                    "SELECT count(*) FROM egressscan.findings_at(now())")
        need(r.returncode == 0, f"the reader cannot call findings_at: {r.stderr.strip()}")
        r = pg.psql("grafana_egressscan", "egressscan",
                    "CREATE TABLE public.x (i int)")
        need(r.returncode != 0, "the reader can create tables")
        r = pg.psql("grafana_egressscan", "postgres", "SELECT 1")
        need(r.returncode == 0, "the reader cannot connect at all")  # trust auth here
    finally:
        pg.stop()
    return f"{len(dashboard_queries())} dashboard queries as grafana_egressscan"


# ---- main ------------------------------------------------------------------------------------


def main(argv):
    only = argv[argv.index("-k") + 1] if "-k" in argv else None
    global BIN
    if not os.access(BIN, os.X_OK):
        print(f"check.py: {BIN} is missing: run make first")
        print("0 passed, 1 failed")
        return 1
    # One binary for every check, even if a build replaces BIN meanwhile (a fresh mtime, so that
    # `make install BIN=...` finds it up to date).
    snapshot = tempfile.mkdtemp(prefix="egressscan-bin.")
    os.chmod(snapshot, 0o755)
    shutil.copy(BIN, os.path.join(snapshot, "egressscan"))
    BIN = os.path.join(snapshot, "egressscan")
    passed = failed = skipped = 0
    for fn in CHECKS:
        if only and only not in fn.__name__:
            continue
        t0 = time.monotonic()
        try:
            note = fn()
            passed += 1
            print(f"ok    {fn.__name__} ({time.monotonic() - t0:.1f} s){': ' + note if note else ''}")
        except Skip as e:
            skipped += 1
            print(f"skip  {fn.__name__}: {e}")
        except Fail as e:
            failed += 1
            print(f"FAIL  {fn.__name__}: {e}")
        except Exception as e:  # a check that breaks is a failure, with its cause
            failed += 1
            print(f"FAIL  {fn.__name__}: {type(e).__name__}: {e}")
        sys.stdout.flush()
    if _installed:
        shutil.rmtree(_installed, ignore_errors=True)
    shutil.rmtree(snapshot, ignore_errors=True)
    print(f"{passed} passed, {failed} failed" + (f", {skipped} skipped" if skipped else ""))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
