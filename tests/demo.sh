#!/usr/bin/env bash
# make demo: the main job end to end on this machine. Starts a local PostgreSQL (left running for
# your queries; `make demo-stop` stops it) and a moto server (stopped at the end) under .demo/,
# builds a sample organization in moto (4 OUs, 12 accounts, 3 regions, clusters in every egress
# mode and one without the field, SCPs, one account whose role is denied), then runs
# `egressscan migrate` and `egressscan scan` and shows a few queries.
set -euo pipefail
BIN=${1:-build/egressscan}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
DEMO=$ROOT/.demo
cd "$ROOT"
mkdir -p "$DEMO"

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
as_pg() { if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }
PGBIN=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -n 1)

# PostgreSQL: reuse a running demo server, else create one.
if [ -f "$DEMO/pg.port" ] && as_pg "$PGBIN/pg_ctl" -D "$DEMO/pg/data" status >/dev/null 2>&1; then
  PGPORT=$(cat "$DEMO/pg.port")
else
  rm -rf "$DEMO/pg"; mkdir -p "$DEMO/pg"
  [ "$(id -u)" = 0 ] && chown postgres: "$DEMO/pg"
  as_pg "$PGBIN/initdb" -D "$DEMO/pg/data" -U postgres --auth=trust -E UTF8 >/dev/null
  PGPORT=$(free_port)
  as_pg "$PGBIN/pg_ctl" -D "$DEMO/pg/data" -l "$DEMO/pg/server.log" -w \
    -o "-c listen_addresses=127.0.0.1 -p $PGPORT -k $DEMO/pg" start >/dev/null
  echo "$PGPORT" > "$DEMO/pg.port"
fi
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

echo "== egressscan migrate"
"$BIN" migrate
echo "== egressscan scan --regions eu-west-1,us-east-1,eu-central-1"
set +e
"$BIN" scan --regions eu-west-1,us-east-1,eu-central-1 --metrics-file "$DEMO/egressscan.prom"
rc=$?
set -e
echo "(exit code $rc: 3 means some targets could not be scanned, as planned for one account)"

PSQL="psql $DATABASE_URL"
echo
echo "== clusters by egress mode"
$PSQL -c "SELECT egress_mode_effective, count(*) FROM egressscan.current_clusters GROUP BY 1 ORDER BY 1"
echo "== clusters per OU that are not CUSTOMER_ROUTED"
$PSQL -c "SELECT ou_path, account_name, region, cluster_name, coalesce(egress_mode, '(absent)') AS egress_mode FROM egressscan.current_clusters WHERE egress_mode_effective <> 'CUSTOMER_ROUTED' ORDER BY 1, 2, 4"
echo "== targets that were not scanned, and why"
$PSQL -c "SELECT account_id, account_name, region, status, error_code FROM egressscan.coverage WHERE status <> 'ok'"
echo
echo "PostgreSQL keeps running for your own queries:  $PSQL"
echo "Stop it with:  make demo-stop"
