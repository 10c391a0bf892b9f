#!/usr/bin/env bash
# make demo-check: the README's first command as a newcomer runs it. Clones this repository with
# `git clone` into a fresh `mktemp -d` directory (mode 0700: as root, the postgres user cannot
# enter it, as in root's home directory), runs `make demo` there twice in a row and
# `make demo-stop`, and checks that each run succeeded and wrote report.html with its simulated
# history, that the second run stopped the first run's PostgreSQL, and that after demo-stop
# nothing the demos started is left running. Prints how long each `make demo` took.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
TOP=$(mktemp -d)
chmod 0700 "$TOP"
CLONE=$TOP/egressscan
trap 'rm -rf "$TOP"' EXIT

fail() {
  echo "demo-check: $*" >&2
  exit 1
}

[ "$(id -u)" = 0 ] || echo "demo-check: not root: the clone's directory does not keep postgres out"
git clone -q "$ROOT" "$CLONE"
cd "$CLONE"

# The processes a demo left: its PostgreSQL (the postmaster of its recorded data directory) and
# anything whose working directory is the clone (moto, the script).
postmaster_of() { # data directory -> pid, or nothing
  [ -f "$1/data/postmaster.pid" ] && head -n 1 "$1/data/postmaster.pid" || true
}
in_clone() { # run from outside the clone: this shell is not one of them
  local p cwd
  for p in /proc/[0-9]*; do
    cwd=$(readlink "$p/cwd" 2>/dev/null) || continue
    case "$cwd" in
      "$CLONE" | "$CLONE"/*) echo "${p#/proc/} ($(tr '\0' ' ' < "$p/cmdline" 2>/dev/null))" ;;
    esac
  done
}

run_demo() { # $1: which run
  local start end
  start=$(date +%s)
  if ! make demo > "$TOP/demo$1.log" 2>&1; then
    tail -n 40 "$TOP/demo$1.log" >&2
    fail "make demo (run $1) failed in a clone under a 0700 directory"
  fi
  end=$(date +%s)
  echo "demo-check: make demo run $1 took $((end - start)) s"
  grep -q "SIMULATED HISTORY" "$TOP/demo$1.log" || fail "run $1 built no simulated history"
  grep -q '<!DOCTYPE html>' report.html || fail "run $1 wrote no report.html"
  [ -f .demo/pg.dir ] || fail "run $1 recorded no PostgreSQL directory"
}

run_demo 1
first_dir=$(cat .demo/pg.dir)
first_pid=$(postmaster_of "$first_dir")
[ -n "$first_pid" ] && kill -0 "$first_pid" 2>/dev/null || fail "the first demo's PostgreSQL is not running"

run_demo 2
second_dir=$(cat .demo/pg.dir)
second_pid=$(postmaster_of "$second_dir")
[ "$second_dir" != "$first_dir" ] || fail "the second demo reused the first one's directory"
! kill -0 "$first_pid" 2>/dev/null || fail "the second demo left the first one's PostgreSQL ($first_pid) running"
[ ! -e "$first_dir" ] || fail "the second demo left $first_dir behind"
[ -n "$second_pid" ] && kill -0 "$second_pid" 2>/dev/null || fail "the second demo's PostgreSQL is not running"
psql -X -q -At "postgresql://postgres@127.0.0.1:$(cat .demo/pg.port)/postgres" \
  -c "SELECT count(*) >= 4 FROM (SELECT DISTINCT date_trunc('week', day) FROM egressscan.daily_compliance) w" \
  | grep -qx t || fail "the demo's database holds fewer than four weeks with scans"

make demo-stop > "$TOP/stop.log" 2>&1 || { cat "$TOP/stop.log" >&2; fail "make demo-stop failed"; }
cd "$TOP"
for _ in $(seq 50); do kill -0 "$second_pid" 2>/dev/null || break; sleep 0.1; done
! kill -0 "$second_pid" 2>/dev/null || fail "make demo-stop left PostgreSQL ($second_pid) running"
[ ! -e "$second_dir" ] || fail "make demo-stop left $second_dir behind"
left=$(in_clone)
[ -z "$left" ] || fail "processes left running in the clone: $left"
make -C "$CLONE" demo-stop > /dev/null 2>&1 || fail "make demo-stop with nothing running failed"
echo "demo-check: ok (clone under a 0700 directory, as $(id -un); two demos, then demo-stop: nothing left)"
