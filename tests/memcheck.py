#!/usr/bin/env python3
"""memcheck.py - `make asan` / `make valgrind`: a small scan end to end under a memory checker.

fakeaws over TLS (20 accounts x 17 regions) and a throwaway PostgreSQL, started and checked as the
benchmark does (bench/bench.py: the stored clusters must equal fakeaws's --truth, every target ok,
the scan succeeded), then `drift`, `scps` and `report` on the same database. With --valgrind each
egressscan process runs under valgrind (memcheck, definite and indirect leaks are errors); without
it the binary is expected to be an ASan+UBSan build (leak detection on). A checker's finding exits
99, which no egressscan command uses, so it is told apart from egressscan's own exit codes.
"""
import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "bench"))
import bench  # noqa: E402

CHECKER_EXIT = 99
VALGRIND = ["valgrind", "-q", f"--error-exitcode={CHECKER_EXIT}", "--leak-check=full",
            "--errors-for-leak-kinds=definite,indirect", "--show-leak-kinds=definite,indirect",
            "--num-callers=30", f"--suppressions={os.path.join(ROOT, 'tests/valgrind.supp')}"]
SANITIZERS = {
    "ASAN_OPTIONS": f"detect_leaks=1:exitcode={CHECKER_EXIT}:abort_on_error=0:"
                    "strict_string_checks=1:detect_stack_use_after_return=1",
    "UBSAN_OPTIONS": f"print_stacktrace=1:halt_on_error=1:exitcode={CHECKER_EXIT}",
    "LSAN_OPTIONS": f"exitcode={CHECKER_EXIT}",
}


def run_checked(wrap, argv, env, what, ok_codes=(0,)):
    r = subprocess.run([*wrap, *argv], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                       text=True, cwd=ROOT)
    if r.returncode not in ok_codes:
        kind = "memory checker" if r.returncode == CHECKER_EXIT else "exit code"
        raise bench.BenchError(f"{what}: {kind} {r.returncode}:\n{r.stdout[-6000:]}")
    return r.stdout


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--egressscan", required=True)
    ap.add_argument("--valgrind", action="store_true")
    ap.add_argument("--accounts", type=int, default=20)
    args = ap.parse_args()
    binary = os.path.abspath(args.egressscan)
    if args.valgrind and not shutil.which("valgrind"):
        print("memcheck: valgrind not found (make deps)", file=sys.stderr)
        return 2
    wrap = VALGRIND if args.valgrind else []
    extra = {} if args.valgrind else SANITIZERS
    checker = "valgrind" if args.valgrind else "ASan+UBSan"
    tmp = tempfile.mkdtemp(prefix="egressscan-memcheck-")
    procs = bench.Procs(tmp)
    try:
        pg_port, _ = bench.start_postgres(procs)
        cert, key = bench.make_cert(tmp)
        fake = bench.Fake(procs, args.accounts, cert, key, 0)
        r = bench.egressscan_run(procs, binary, fake, pg_port, tmp, checker, 32, 0, wrap=wrap,
                                 env_extra=extra)
        # valgrind/ASan findings of migrate and scan fail egressscan_run (exit code 99)
        env = bench.aws_env(fake, dict(extra, DATABASE_URL=r["database_url"]))
        run_checked(wrap, [binary, "drift", "--format", "json"], env, "drift")
        run_checked(wrap, [binary, "scps"], env, "scps")
        out = os.path.join(tmp, "report.html")
        week = time.strftime("%G-W%V", time.gmtime())  # this week: the one with the scan
        run_checked(wrap, [binary, "report", "--week", week, "--out", out], env, "report")
        print(f"memcheck ({checker}): migrate, scan ({r['api_calls']} API calls, "
              f"{r['clusters']} clusters equal to the truth), drift, scps, report: clean "
              f"in {r['wall_s']:.1f} s of scan")
        return 0
    except bench.BenchError as e:
        print(f"memcheck ({checker}): FAILED: {e}", file=sys.stderr)
        print(f"memcheck: logs kept in {tmp}", file=sys.stderr)
        tmp = None
        return 1
    finally:
        procs.stop_all()
        if tmp:
            shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
