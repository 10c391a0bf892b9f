#!/usr/bin/env bash
# make demo: the main job end to end on this machine. Starts a local PostgreSQL (left running for
# your queries; `make demo-stop` stops it) and a moto server (stopped at the end), builds a sample
# organization in moto (4 OUs, 12 accounts, 3 regions, clusters in every egress mode and one
# without the field, SCPs, one account whose role is denied), then runs `egressscan migrate`,
# four weeks of simulated history (nightly scans recorded with `scan --as-of`, clusters created,
# deleted and switched to CUSTOMER_ROUTED, days without a scan), today's `egressscan scan` with
# a declared policy, `drift` and `scps`, shows a few queries, and ends by writing this week's
# compliance report to report.html.
#
# State: .demo/ (git-ignored). PostgreSQL runs as `postgres` when the demo runs as root, and
# postgres may not be able to enter the clone (a clone in root's home, or in any 0700
# directory): its data directory is made with mktemp under /tmp and recorded in .demo/pg.dir,
# so that the next run and `make demo-stop` (tests/demo.sh --stop) stop exactly that server.
# Running the demo again stops the previous demo's servers first.
set -euo pipefail
BIN=${1:-build/egressscan}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
DEMO=$ROOT/.demo
cd "$ROOT"
mkdir -p "$DEMO"

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
as_pg() { if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }
PGBIN=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -n 1)

# What a previous run left running: its PostgreSQL (by its recorded data directory) and, if it
# was interrupted, its moto (by its recorded pid, if that process is still the launcher).
stop_previous_demo() {
  if [ -f "$DEMO/pg.dir" ]; then
    local dir
    dir=$(cat "$DEMO/pg.dir")
    case "$dir" in
      /tmp/egressscan-demo-pg.*|"${TMPDIR:-/tmp}"/egressscan-demo-pg.*)
        if [ -d "$dir/data" ] && as_pg "$PGBIN/pg_ctl" -D "$dir/data" -m fast stop >/dev/null 2>&1; then
          echo "stopped the demo's PostgreSQL ($dir)"
        fi
        rm -rf "$dir";;
    esac
    rm -f "$DEMO/pg.dir" "$DEMO/pg.port"
  fi
  # a data directory inside the clone (demos before .demo/pg.dir)
  if [ -d "$DEMO/pg/data" ]; then as_pg "$PGBIN/pg_ctl" -D "$DEMO/pg/data" -m fast stop >/dev/null 2>&1 || true; fi
  rm -rf "$DEMO/pg"
  if [ -f "$DEMO/moto.pid" ]; then
    local pid
    pid=$(cat "$DEMO/moto.pid")
    if [ -r "/proc/$pid/cmdline" ] && tr '\0' ' ' < "/proc/$pid/cmdline" | grep -q moto_launcher.py; then
      kill "$pid" 2>/dev/null || true
    fi
    rm -f "$DEMO/moto.pid"
  fi
}
# `make demo-stop`
if [ "${1:-}" = --stop ]; then stop_previous_demo; exit 0; fi
stop_previous_demo

# PostgreSQL: a fresh server each run, so the demo's numbers are its own. Its directory is one
# the postgres user can reach whatever the clone's permissions.
PGDIR=$(mktemp -d "${TMPDIR:-/tmp}/egressscan-demo-pg.XXXXXX")
echo "$PGDIR" > "$DEMO/pg.dir"
if [ "$(id -u)" = 0 ]; then chown postgres: "$PGDIR"; fi
as_pg "$PGBIN/initdb" -D "$PGDIR/data" -U postgres --auth=trust -E UTF8 >/dev/null
PGPORT=$(free_port)
if ! as_pg "$PGBIN/pg_ctl" -D "$PGDIR/data" -l "$PGDIR/server.log" -w \
  -o "-c listen_addresses=127.0.0.1 -p $PGPORT -k $PGDIR" start >/dev/null; then
  echo "PostgreSQL did not start; its log ($PGDIR/server.log):" >&2
  cat "$PGDIR/server.log" >&2 || true
  exit 1
fi
echo "$PGPORT" > "$DEMO/pg.port"
export DATABASE_URL="postgresql://postgres@127.0.0.1:$PGPORT/postgres"

# moto, with the AWS models that know controlPlaneEgressMode. A cold first start (Python
# imports, the models) can take a while: wait up to 120 s, and show moto's log if it fails.
mkdir -p "$DEMO/moto-home/.aws"
ln -sfn "$ROOT/tests/data/aws-models" "$DEMO/moto-home/.aws/models"
MOTOPORT=$(free_port)
HOME="$DEMO/moto-home" python3 tests/support/moto_launcher.py -H 127.0.0.1 -p "$MOTOPORT" \
  > "$DEMO/moto.log" 2>&1 &
MOTOPID=$!
echo "$MOTOPID" > "$DEMO/moto.pid"
trap 'kill $MOTOPID 2>/dev/null || true; rm -f "$DEMO/moto.pid"' EXIT
MOTO="http://127.0.0.1:$MOTOPORT"
moto_up=0
for _ in $(seq 1200); do
  if curl -fs "$MOTO/moto-api/data.json" >/dev/null 2>&1; then moto_up=1; break; fi
  kill -0 "$MOTOPID" 2>/dev/null || break
  sleep 0.1
done
if [ "$moto_up" != 1 ]; then
  if kill -0 "$MOTOPID" 2>/dev/null; then echo "moto did not answer within 120 s; its log ($DEMO/moto.log):" >&2
  else echo "moto exited; its log ($DEMO/moto.log):" >&2; fi
  cat "$DEMO/moto.log" >&2
  exit 1
fi

echo "== building a sample organization in moto ($MOTO)"
AWS_DATA_PATH=tests/data/aws-models python3 tests/support/moto_seed.py --endpoint "$MOTO" \
  tests/data/fleets/demo.json > "$DEMO/seed.json"
# From here on moto checks every signature and IAM policy, as AWS would.
curl -fs -X POST -H 'Content-Type: text/plain' --data 0 "$MOTO/moto-api/reset-auth" >/dev/null

export AWS_ACCESS_KEY_ID=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["access_key_id"])' "$DEMO/seed.json")
export AWS_SECRET_ACCESS_KEY=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["secret_access_key"])' "$DEMO/seed.json")
export AWS_ENDPOINT_URL=$MOTO AWS_REGION=us-east-1 AWS_EC2_METADATA_DISABLED=true
unset AWS_SESSION_TOKEN AWS_PROFILE

# A declared policy for the demo organization (OU ids come from the seeding).
python3 - "$DEMO/seed.json" "$DEMO/policy.json" <<'PY'
import json, sys
seed = json.load(open(sys.argv[1]))
ous, accounts = seed["ous"], seed["accounts"]
policy = {
    "version": 1,
    "default": {"allowed_modes": ["CUSTOMER_ROUTED", "CUSTOMER_ISOLATED"]},
    "rules": [
        {"id": "regulated", "ou": ous["Regulated"], "allowed_modes": ["CUSTOMER_ROUTED"], "require_scp": True},
        {"id": "prod", "ou": ous["Prod"], "allowed_modes": ["CUSTOMER_ROUTED", "CUSTOMER_ISOLATED"], "require_scp": True},
        {"id": "sandbox", "ou": ous["Sandbox"], "allowed_modes": ["AWS_MANAGED", "CUSTOMER_ROUTED", "CUSTOMER_ISOLATED"]},
        {"id": "restricted-data", "cluster_tags": {"env": "prod"}, "allowed_modes": ["CUSTOMER_ROUTED", "CUSTOMER_ISOLATED"]}],
    "exceptions": [
        {"cluster_arn": "arn:aws:eks:us-east-1:%s:cluster/web-legacy" % accounts["web"],
         "reason": "SEC-123: migration planned", "expires": "2027-03-31"}]}
json.dump(policy, open(sys.argv[2], "w"), indent=2)
PY
echo "== egressscan policy check .demo/policy.json"
"$BIN" policy check "$DEMO/policy.json"

echo "== egressscan migrate"
"$BIN" migrate

# ---- Simulated history ----------------------------------------------------------------------
# The weekly report compares weeks, so the demo organization gets four weeks of past: nightly
# scans recorded as if they had run at 06:00 UTC on those days (`egressscan scan --as-of`, a
# hidden option for tests and demos), while its teams create, delete and reconfigure clusters.
# Nothing here is real history: moto only holds today's state.
REGIONS=eu-west-1,us-east-1,eu-central-1
acct() { python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["accounts"][sys.argv[2]])' "$DEMO/seed.json" "$1"; }
# A change to the organization (moto's checks off for the seeding tool, then on again).
moto_change() {
  curl -fs -X POST -H 'Content-Type: text/plain' --data inf "$MOTO/moto-api/reset-auth" >/dev/null
  AWS_DATA_PATH=tests/data/aws-models python3 tests/support/moto_seed.py --endpoint "$MOTO" "$@" >/dev/null
  curl -fs -X POST -H 'Content-Type: text/plain' --data 0 "$MOTO/moto-api/reset-auth" >/dev/null
}
TODAY=$(date -u +%F)
MONDAY=$(date -u -d "$TODAY -$(( $(date -u +%u) - 1 )) days" +%F) # this ISO week's Monday
day_of() { date -u -d "$MONDAY $1 days" +%F; }
label() { date -u -d "$1" '+%a %F'; }
history_scan() {
  local d out rc
  d=$(day_of "$1")
  set +e
  out=$("$BIN" scan --regions "$REGIONS" --policy "$DEMO/policy.json" --no-progress \
        --as-of "${d}T06:00:00Z" 2>/dev/null)
  rc=$?
  set -e
  if [ "$rc" != 0 ] && [ "$rc" != 3 ]; then echo "scan --as-of ${d}T06:00:00Z failed (exit $rc)" >&2; exit 1; fi
  printf '  %s  %s;%s\n' "$(label "$d")" "$(grep -m1 -E '^scan [0-9]+ ' <<<"$out" | sed 's/ in [0-9.]* s$//')" \
    "$(grep -m1 -E '^  compliance' <<<"$out" | sed 's/^  compliance//')"
}
no_scan() { printf '  %s  (no scan: the nightly job did not run that day)\n' "$(label "$(day_of "$1")")"; }
event() { printf '  %s  >> %s\n' "$(label "$(day_of "$1")")" "$2"; }

echo
echo "== SIMULATED HISTORY of the demo organization: four weeks of nightly scans (scan --as-of)"
echo "   (moto has no past: these scans are recorded as if they had run on these days at 06:00)"
WEB=$(acct web); RISK=$(acct risk)
for off in -28 -26 -24 -21; do history_scan $off; done
event -20 "team web creates web-canary in us-east-1 with AWS_MANAGED (the Prod policy does not allow it)"
moto_change --create "$WEB" us-east-1 web-canary AWS_MANAGED
for off in -20 -18 -16 -14 -12 -10 -7 -6 -5; do history_scan $off; done
event -4 "team web deletes web-canary"
moto_change --delete "$WEB" us-east-1 web-canary
for off in -4 -3; do history_scan $off; done
no_scan -2
history_scan -1
dow=$(date -u +%u)
if [ "$dow" -gt 1 ]; then
  no_scan 0
  for off in $(seq 1 $(( dow - 2 ))); do history_scan "$off"; done
fi
echo "  $(label "$TODAY")  >> team risk switches risk-2 (eu-west-1) from AWS_MANAGED to CUSTOMER_ROUTED"
moto_change --set-mode "$RISK" eu-west-1 risk-2 CUSTOMER_ROUTED
echo "== end of the simulated history; what follows is today's scan, for real"
echo

echo "== egressscan scan --regions eu-west-1,us-east-1,eu-central-1"
set +e
"$BIN" scan --regions "$REGIONS" --policy "$DEMO/policy.json" --metrics-file "$DEMO/egressscan.prom"
rc=$?
set -e
echo "(exit code $rc: 3 means some targets could not be scanned, as planned for one account)"

echo
echo "== egressscan drift: the findings"
"$BIN" drift
echo
echo "== egressscan scps: what the SCPs allow a new cluster, per account"
"$BIN" scps

PSQL="psql $DATABASE_URL"
echo
echo "== clusters by egress mode"
$PSQL -c "SELECT egress_mode_effective, count(*) FROM egressscan.current_clusters GROUP BY 1 ORDER BY 1"
echo "== clusters per OU that are not CUSTOMER_ROUTED"
$PSQL -c "SELECT ou_path, account_name, region, cluster_name, coalesce(egress_mode, '(absent)') AS egress_mode FROM egressscan.current_clusters WHERE egress_mode_effective <> 'CUSTOMER_ROUTED' ORDER BY 1, 2, 4"
echo "== open findings by kind (current_drift)"
$PSQL -c "SELECT kind, severity, count(*) FROM egressscan.current_drift GROUP BY 1, 2 ORDER BY 3 DESC"
echo "== targets that were not scanned, and why"
$PSQL -c "SELECT account_id, account_name, region, status, error_code FROM egressscan.coverage WHERE status <> 'ok'"
echo
echo "PostgreSQL keeps running for your own queries:  $PSQL"
echo "Stop it with:  make demo-stop"

# The weekly compliance report of this week (the week the scan above is in): one HTML file,
# with the simulated weeks before it as its trend and comparison.
WEEK=$(date -u +%G-W%V)
"$BIN" report --week "$WEEK" --out "$ROOT/report.html"
echo
echo "Weekly compliance report for $WEEK (with four weeks of simulated history):  $ROOT/report.html"
echo "  compliance and its daily trend against the previous four weeks, the week-over-week change,"
echo "  new and resolved findings (risk-2 fixed today), days without a scan, coverage, SCP gaps."
