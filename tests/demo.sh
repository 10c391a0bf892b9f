#!/usr/bin/env bash
# make demo: the main job end to end on this machine. Starts a local PostgreSQL (left running for
# your queries; `make demo-stop` stops it) and a moto server (stopped at the end) under .demo/,
# builds a sample organization in moto (4 OUs, 12 accounts, 3 regions, clusters in every egress
# mode and one without the field, SCPs, one account whose role is denied), then runs
# `egressscan migrate`, `egressscan scan` with a declared policy, `drift` and `scps`, shows a
# few queries, and ends by writing this week's compliance report to report.html.
set -euo pipefail
BIN=${1:-build/egressscan}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
DEMO=$ROOT/.demo
cd "$ROOT"
mkdir -p "$DEMO"

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
as_pg() { if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }
PGBIN=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -n 1)

# PostgreSQL: a fresh server each run (a previous demo's is stopped), so the demo's numbers are
# its own.
if [ -d "$DEMO/pg/data" ]; then as_pg "$PGBIN/pg_ctl" -D "$DEMO/pg/data" -m fast stop >/dev/null 2>&1 || true; fi
rm -rf "$DEMO/pg"; mkdir -p "$DEMO/pg"
[ "$(id -u)" = 0 ] && chown postgres: "$DEMO/pg"
as_pg "$PGBIN/initdb" -D "$DEMO/pg/data" -U postgres --auth=trust -E UTF8 >/dev/null
PGPORT=$(free_port)
as_pg "$PGBIN/pg_ctl" -D "$DEMO/pg/data" -l "$DEMO/pg/server.log" -w \
  -o "-c listen_addresses=127.0.0.1 -p $PGPORT -k $DEMO/pg" start >/dev/null
echo "$PGPORT" > "$DEMO/pg.port"
export DATABASE_URL="postgresql://postgres@127.0.0.1:$PGPORT/postgres"

# moto, with the AWS models that know controlPlaneEgressMode.
mkdir -p "$DEMO/moto-home/.aws"
ln -sfn "$ROOT/tests/data/aws-models" "$DEMO/moto-home/.aws/models"
MOTOPORT=$(free_port)
HOME="$DEMO/moto-home" python3 tests/support/moto_launcher.py -H 127.0.0.1 -p "$MOTOPORT" \
  > "$DEMO/moto.log" 2>&1 &
MOTOPID=$!
trap 'kill $MOTOPID 2>/dev/null || true' EXIT
MOTO="http://127.0.0.1:$MOTOPORT"
for _ in $(seq 100); do curl -fs "$MOTO/moto-api/data.json" >/dev/null 2>&1 && break; sleep 0.1; done

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
echo "== egressscan scan --regions eu-west-1,us-east-1,eu-central-1"
set +e
"$BIN" scan --regions eu-west-1,us-east-1,eu-central-1 --policy "$DEMO/policy.json" \
  --metrics-file "$DEMO/egressscan.prom"
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

# The weekly compliance report of this week (the week the scan above is in): one HTML file.
WEEK=$(date -u +%G-W%V)
"$BIN" report --week "$WEEK" --out "$ROOT/report.html"
echo
echo "Weekly compliance report for $WEEK:  $ROOT/report.html"
