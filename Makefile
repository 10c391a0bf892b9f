# egressscan - build, test and tooling. Everything lands under $(BUILD)/.
# `make` builds build/egressscan; `make test` runs what CI runs; `make demo` runs the main job.

SHELL := /bin/bash
BUILD ?= build
CC ?= cc
PKGS := libcurl jansson libpq openssl libxml-2.0
DEB_PKGS := pkg-config libcurl4-openssl-dev libjansson-dev libpq-dev libssl-dev libxml2-dev \
            libcmocka-dev postgresql clang libclang-rt-14-dev clang-format man-db python3-kubernetes \
            tidy libxml2-utils valgrind
PYTHON ?= python3

WARN := -Wall -Wextra -Wpedantic -Wshadow -Wstrict-prototypes -Wmissing-prototypes -Wformat=2
OPT ?= -O2 -g
SAN ?=
ifeq ($(SAN),1)
OPT := -O1 -g -fno-omit-frame-pointer -fsanitize=address,undefined -fno-sanitize-recover=undefined
SANFLAGS := -fsanitize=address,undefined
endif
# pkg-config is asked only when it is there, so that `make` can say what is missing.
PKG_CFLAGS := $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
PKG_LIBS := $(shell pkg-config --libs $(PKGS) 2>/dev/null)
CPPFLAGS += -I. -D_POSIX_C_SOURCE=200809L -D_DEFAULT_SOURCE
CFLAGS += -std=c11 $(WARN) $(OPT) $(WERROR) $(PKG_CFLAGS) -MMD -MP
LDFLAGS += $(SANFLAGS)
LDLIBS += $(PKG_LIBS) -lpthread -lm

LIB_SRCS := $(wildcard common/*.c scanner/*.c intent/*.c storage/*.c report/*.c)
CMD_SRCS := $(wildcard cmd/egressscan/*.c)
SUPPORT_SRCS := $(wildcard tests/support/*.c)
UNIT_SRCS := $(wildcard tests/unit/test_*.c)
ITEST_SRCS := $(wildcard tests/integration/test_*.c)

LIB_OBJS := $(LIB_SRCS:%.c=$(BUILD)/obj/%.o)
CMD_OBJS := $(CMD_SRCS:%.c=$(BUILD)/obj/%.o)
SUPPORT_OBJS := $(SUPPORT_SRCS:%.c=$(BUILD)/obj/%.o)
UNIT_BINS := $(UNIT_SRCS:tests/unit/%.c=$(BUILD)/tests/unit/%)
ITEST_BINS := $(ITEST_SRCS:tests/integration/%.c=$(BUILD)/tests/integration/%)
LIB := $(BUILD)/libegressscan.a
BIN := $(BUILD)/egressscan

.PHONY: all check-deps deps ensure-deps unit itest test asan valgrind format format-check tidy \
        demo demo-stop clean

all: check-deps $(BIN)

# Names what is missing (plain `make`); `make deps` installs it.
check-deps:
	@missing=""; for p in $(PKGS) cmocka; do pkg-config --exists $$p 2>/dev/null || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then echo "missing development packages:$$missing"; \
	  echo "run 'make deps' (installs: $(DEB_PKGS))"; exit 1; fi

# Node.js and npm (for the SCP differential test's oracle only) come from Debian when the machine
# has none; a machine with another Node.js (NodeSource's includes npm) keeps it.
deps:
	@if [ "$$(id -u)" = 0 ]; then SUDO=; else SUDO=sudo; fi; \
	export DEBIAN_FRONTEND=noninteractive; \
	$$SUDO apt-get update -qq && $$SUDO apt-get install -y -qq --no-install-recommends $(DEB_PKGS) && \
	{ command -v node >/dev/null && command -v npm >/dev/null || \
	  $$SUDO apt-get install -y -qq --no-install-recommends nodejs npm; }

# Installs the packages only when something is missing (used by test and demo).
ensure-deps:
	@ok=1; for p in $(PKGS) cmocka; do pkg-config --exists $$p 2>/dev/null || ok=0; done; \
	ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || ok=0; \
	command -v node >/dev/null && command -v npm >/dev/null || ok=0; \
	if [ $$ok = 0 ]; then $(MAKE) --no-print-directory deps; fi

# Embedded migrations: migrations/NNNN_name.sql become byte arrays in $(BUILD)/gen/migrations.c
# (storage/embed_migrations.sh: POSIX sh, od, awk), compiled into the library. The directory is a
# prerequisite too, so that adding or removing a file regenerates it.
MIGRATION_SQLS := $(sort $(wildcard migrations/*.sql))
MIGRATIONS_C := $(BUILD)/gen/migrations.c
LIB_OBJS += $(BUILD)/obj/gen/migrations.o

$(MIGRATIONS_C): $(MIGRATION_SQLS) migrations storage/embed_migrations.sh
	@mkdir -p $(@D)
	sh storage/embed_migrations.sh $(MIGRATION_SQLS) > $@.tmp && mv $@.tmp $@

$(BUILD)/obj/gen/migrations.o: $(MIGRATIONS_C)
	@mkdir -p $(@D)
	$(CC) $(CPPFLAGS) $(CFLAGS) -c -o $@ $<

$(LIB): $(LIB_OBJS)
	@mkdir -p $(@D)
	$(AR) rcs $@ $^

$(BIN): $(CMD_OBJS) $(LIB)
	$(CC) $(LDFLAGS) -o $@ $(CMD_OBJS) $(LIB) $(LDLIBS)

# Objects are rebuilt when the compile command changes: an object built without WERROR=-Werror
# must not hide a warning from a later -Werror build. flags.stamp holds the command; it is
# rewritten (and so newer than every object) only when the command differs.
FLAGS_STAMP := $(BUILD)/flags.stamp
FLAGS_NOW := $(CC) $(CPPFLAGS) $(CFLAGS)
$(shell mkdir -p $(BUILD) && { echo '$(FLAGS_NOW)' | cmp -s - $(FLAGS_STAMP) || \
  echo '$(FLAGS_NOW)' > $(FLAGS_STAMP); })

$(BUILD)/obj/%.o: %.c $(FLAGS_STAMP)
	@mkdir -p $(@D)
	$(CC) $(CPPFLAGS) $(CFLAGS) -c -o $@ $<

$(BUILD)/tests/unit/%: $(BUILD)/obj/tests/unit/%.o $(SUPPORT_OBJS) $(LIB)
	@mkdir -p $(@D)
	$(CC) $(LDFLAGS) -o $@ $< $(SUPPORT_OBJS) $(LIB) $(LDLIBS) -lcmocka

$(BUILD)/tests/integration/%: $(BUILD)/obj/tests/integration/%.o $(SUPPORT_OBJS) $(LIB)
	@mkdir -p $(@D)
	$(CC) $(LDFLAGS) -o $@ $< $(SUPPORT_OBJS) $(LIB) $(LDLIBS) -lcmocka

# The fast fake AWS (tests/fakeaws/README.md): benchmarks and fault tests run against it.
FAKEAWS_SRCS := $(wildcard tests/fakeaws/*.c)
FAKEAWS_OBJS := $(FAKEAWS_SRCS:%.c=$(BUILD)/obj/%.o)
.PHONY: fakeaws
fakeaws: $(BUILD)/fakeaws

$(BUILD)/fakeaws: $(FAKEAWS_OBJS) $(LIB)
	$(CC) $(LDFLAGS) -o $@ $(FAKEAWS_OBJS) $(LIB) $(LDLIBS)

# The SCP differential test (tests/oracle/scp_diff.js): egressscan's evaluator, driven in-process by
# $(BUILD)/tests/scp_eval_driver, against the npm @cloud-copilot/iam-simulate (AGPL, test-only,
# pinned by tests/oracle/package-lock.json, installed into tests/oracle/node_modules by
# `make oracle-deps`). `make test` runs SCP_DIFF_CASES verdicts with the fixed seed;
# `make scp-diff SCP_DIFF_CASES=100000 SCP_DIFF_SEED=7` explores.
SCP_DIFF_CASES ?= 5000
SCP_DIFF_SEED ?= 1
ORACLE_DIR := tests/oracle
ORACLE_STAMP := $(ORACLE_DIR)/node_modules/.package-lock.json
.PHONY: scp-diff oracle-deps

$(BUILD)/tests/scp_eval_driver: $(BUILD)/obj/tests/oracle/scp_eval_driver.o $(LIB)
	@mkdir -p $(@D)
	$(CC) $(LDFLAGS) -o $@ $< $(LIB) $(LDLIBS)

oracle-deps: $(ORACLE_STAMP)

$(ORACLE_STAMP): $(ORACLE_DIR)/package.json $(ORACLE_DIR)/package-lock.json
	@command -v npm >/dev/null || { echo "npm is missing: run 'make deps'"; exit 1; }
	cd $(ORACLE_DIR) && npm ci --no-audit --no-fund --loglevel=error
	@touch $@

scp-diff: check-deps $(BUILD)/tests/scp_eval_driver $(ORACLE_STAMP)
	node $(ORACLE_DIR)/scp_diff.js --driver $(BUILD)/tests/scp_eval_driver \
	  --cases $(SCP_DIFF_CASES) --seed $(SCP_DIFF_SEED) --out $(BUILD)/scp-diff-disagreements.jsonl

# Each test binary runs from the repository root (tests find tests/data/ relative to it).
unit: check-deps $(BIN) $(UNIT_BINS)
	@fail=0; for t in $(UNIT_BINS); do echo "== $$t"; $$t || fail=1; done; exit $$fail

itest: check-deps $(BIN) $(BUILD)/fakeaws $(ITEST_BINS)
	@fail=0; for t in $(ITEST_BINS); do echo "== $$t"; BIN=$(BIN) $$t || fail=1; done; \
	echo "== tests/deploy/check.py"; BIN=$(BIN) $(PYTHON) tests/deploy/check.py || fail=1; exit $$fail

# Everything CI runs: format check, unit and integration tests, the unit tests and a small scan
# under ASan+UBSan and under valgrind, and each fuzz target briefly.
test: ensure-deps
	@$(MAKE) --no-print-directory format-check
	@$(MAKE) --no-print-directory unit itest
	@$(MAKE) --no-print-directory scp-diff SCP_DIFF_CASES=5000 SCP_DIFF_SEED=1
	@$(MAKE) --no-print-directory asan
	@$(MAKE) --no-print-directory valgrind
	@$(MAKE) --no-print-directory fuzz FUZZ_SECONDS=$(CI_FUZZ_SECONDS) FUZZ_SEED=$(CI_FUZZ_SEED) \
	  FUZZ_CORPUS=$(FUZZ_DIR)/ci-corpus FUZZ_FRESH=1

# The memory checks: the unit tests, then a small scan end to end (tests/memcheck.py: fakeaws over
# TLS, PostgreSQL, migrate + scan + drift + scps + report, results checked against the truth).
# `asan` runs an ASan+UBSan build (under build/asan) with leak detection; `valgrind` the normal
# build under valgrind's memcheck. Any finding fails the target.
MEMCHECK_SCAN = $(PYTHON) tests/memcheck.py
asan:
	@$(MAKE) --no-print-directory BUILD=build/asan SAN=1 unit
	@$(MAKE) --no-print-directory $(BUILD)/fakeaws
	@$(MAKE) --no-print-directory BUILD=build/asan SAN=1 build/asan/egressscan
	@echo "== small scan under ASan+UBSan"
	@$(MEMCHECK_SCAN) --egressscan build/asan/egressscan

valgrind: check-deps $(BIN) $(BUILD)/fakeaws $(UNIT_BINS)
	@for t in $(UNIT_BINS); do echo "== valgrind $$t"; \
	  valgrind -q --error-exitcode=1 --leak-check=full --errors-for-leak-kinds=definite,indirect \
	    --suppressions=tests/valgrind.supp \
	    $$t > $(BUILD)/valgrind-$$(basename $$t).log 2>&1 || { grep -m 80 -E "^==|FAILED" $(BUILD)/valgrind-$$(basename $$t).log; exit 1; }; \
	  grep -E "^\[  (PASSED|FAILED)" $(BUILD)/valgrind-$$(basename $$t).log; done
	@echo "== small scan under valgrind"
	@$(MEMCHECK_SCAN) --egressscan $(BIN) --valgrind

# libFuzzer targets: clang with the libFuzzer and sanitizer runtimes (Debian: clang and
# libclang-rt-14-dev), built from the sources they need only. New inputs go to
# $(BUILD)/fuzz/corpus/, crashes to $(BUILD)/fuzz/; tests/fuzz/corpus/ holds the seeds.
# `make fuzz FUZZ_SECONDS=300` runs longer.
FUZZ_CC ?= clang
FUZZ_SECONDS ?= 60
# `make test` runs every target this long: 14 targets x 15 s (8 took 2 min 20 s with
# its build from scratch on 2 cores). It starts from the seeds alone (a fresh corpus under
# $(FUZZ_DIR)/ci-corpus) with a fixed random seed, so that a run is the same on every machine
# (a slower one explores a prefix of what a faster one does) and a finding reproduces; `make fuzz`
# explores with a new seed each time (FUZZ_SEED=0) and keeps its corpus between runs.
CI_FUZZ_SECONDS ?= 15
CI_FUZZ_SEED ?= 1
FUZZ_SEED ?= 0
FUZZ_CORPUS ?= $(FUZZ_DIR)/corpus
FUZZ_FRESH ?= 0
FUZZ_DIR := $(BUILD)/fuzz
FUZZ_FLAGS := -g -O1 -fno-omit-frame-pointer -fsanitize=fuzzer,address,undefined \
              -fno-sanitize-recover=undefined
# The AWS answer parsers live next to the code that sends the requests: their targets link the
# request engine too (STS answers become credentials, every module submits through http.c).
FUZZ_ENGINE_SRCS := scanner/awserr.c scanner/creds.c scanner/endpoint.c scanner/http.c \
                    scanner/sigv4.c scanner/sts.c scanner/xmldoc.c
FUZZ_ENGINE_PKGS := libcurl jansson openssl libxml-2.0

# Every source is compiled once with the fuzzing flags (under $(FUZZ_DIR)/obj/) and shared by the
# targets that need it.
FUZZ_OBJ := $(FUZZ_DIR)/obj
FUZZ_COMMON_SRCS := $(wildcard common/*.c)
FUZZ_PKG_CFLAGS = $(shell pkg-config --cflags libcurl jansson openssl libxml-2.0 2>/dev/null)
FUZZ_FLAGS_STAMP := $(FUZZ_DIR)/flags.stamp
FUZZ_FLAGS_NOW := $(FUZZ_CC) $(CPPFLAGS) -std=c11 $(WARN) $(WERROR) $(FUZZ_FLAGS) $(FUZZ_PKG_CFLAGS)
$(shell mkdir -p $(FUZZ_DIR) && { echo '$(FUZZ_FLAGS_NOW)' | cmp -s - $(FUZZ_FLAGS_STAMP) || \
  echo '$(FUZZ_FLAGS_NOW)' > $(FUZZ_FLAGS_STAMP); })
$(FUZZ_OBJ)/%.o: %.c $(FUZZ_FLAGS_STAMP)
	@mkdir -p $(@D)
	$(FUZZ_CC) $(CPPFLAGS) -std=c11 $(WARN) $(WERROR) $(FUZZ_FLAGS) $(FUZZ_PKG_CFLAGS) -MMD -MP \
	  -c -o $@ $<

# fuzz_NAME from tests/fuzz/fuzz_NAME.c + $(2) (the sources it exercises) + common/, linked with
# the pkg-config packages $(3); its seeds are FUZZ_SEEDS_NAME.
define FUZZ_RULE
$(FUZZ_DIR)/fuzz_$(1): $(patsubst %.c,$(FUZZ_OBJ)/%.o,tests/fuzz/fuzz_$(1).c $(sort $(2)) $(FUZZ_COMMON_SRCS))
	$(FUZZ_CC) $(FUZZ_FLAGS) -o $$@ $$^ $$(shell pkg-config --libs $(3) 2>/dev/null) -lpthread -lm
endef
$(eval $(call FUZZ_RULE,scp,intent/scp.c,jansson))
$(eval $(call FUZZ_RULE,policy,intent/policy.c,jansson))
$(eval $(call FUZZ_RULE,sts,$(FUZZ_ENGINE_SRCS),$(FUZZ_ENGINE_PKGS)))
$(eval $(call FUZZ_RULE,ec2,scanner/ec2.c $(FUZZ_ENGINE_SRCS),$(FUZZ_ENGINE_PKGS)))
$(eval $(call FUZZ_RULE,eks,scanner/eks.c $(FUZZ_ENGINE_SRCS),$(FUZZ_ENGINE_PKGS)))
$(eval $(call FUZZ_RULE,org,scanner/org.c $(FUZZ_ENGINE_SRCS),$(FUZZ_ENGINE_PKGS)))
$(eval $(call FUZZ_RULE,awserr,scanner/awserr.c scanner/xmldoc.c,jansson libxml-2.0))
$(eval $(call FUZZ_RULE,config,,jansson))
$(eval $(call FUZZ_RULE,target_check,storage/target_check.c,jansson))
$(eval $(call FUZZ_RULE,utf8,,jansson))
$(eval $(call FUZZ_RULE,quote_shell,,jansson))
$(eval $(call FUZZ_RULE,quote_csv,,jansson))
$(eval $(call FUZZ_RULE,quote_term,,jansson))
$(eval $(call FUZZ_RULE,quote_json,,jansson))
FUZZ_SEEDS_scp := tests/fuzz/corpus/scp
FUZZ_SEEDS_policy := tests/data/policies
FUZZ_SEEDS_sts := tests/fuzz/corpus/sts
FUZZ_SEEDS_ec2 := tests/fuzz/corpus/ec2
FUZZ_SEEDS_eks := tests/fuzz/corpus/eks
FUZZ_SEEDS_org := tests/fuzz/corpus/org
FUZZ_SEEDS_awserr := tests/fuzz/corpus/awserr
FUZZ_SEEDS_config := tests/fuzz/corpus/config
FUZZ_SEEDS_target_check := tests/fuzz/corpus/target_check
FUZZ_SEEDS_utf8 := tests/fuzz/corpus/utf8
FUZZ_SEEDS_quote_shell := tests/fuzz/corpus/quote
FUZZ_SEEDS_quote_csv := tests/fuzz/corpus/quote
FUZZ_SEEDS_quote_term := tests/fuzz/corpus/quote
FUZZ_SEEDS_quote_json := tests/fuzz/corpus/quote
# `make fuzz FUZZ_TARGETS="sts ec2"` runs some of them.
FUZZ_TARGETS ?= scp policy sts ec2 eks org awserr config target_check utf8 quote_shell quote_csv \
                quote_term quote_json

.PHONY: fuzz
fuzz: $(FUZZ_TARGETS:%=$(FUZZ_DIR)/fuzz_%)
	@for spec in $(foreach t,$(FUZZ_TARGETS),$(t):$(FUZZ_SEEDS_$(t))); do \
	  t=$${spec%%:*}; seeds=$${spec#*:}; \
	  if [ "$(FUZZ_FRESH)" = 1 ]; then rm -rf $(FUZZ_CORPUS)/$$t $(FUZZ_DIR)/$$t-*; fi; \
	  mkdir -p $(FUZZ_CORPUS)/$$t; \
	  echo "== fuzz_$$t for $(FUZZ_SECONDS) s (seed $(FUZZ_SEED))"; \
	  $(FUZZ_DIR)/fuzz_$$t -max_total_time=$(FUZZ_SECONDS) -seed=$(FUZZ_SEED) -max_len=8192 \
	    -print_final_stats=1 -artifact_prefix=$(FUZZ_DIR)/$$t- $(FUZZ_CORPUS)/$$t $$seeds \
	    > $(FUZZ_DIR)/$$t.log 2>&1; rc=$$?; \
	  grep -E "^(#[0-9]+.*DONE|stat::number_of_executed_units|stat::peak_rss)" $(FUZZ_DIR)/$$t.log; \
	  if [ $$rc -ne 0 ]; then \
	    echo "fuzz_$$t failed (exit $$rc); the end of $(FUZZ_DIR)/$$t.log:"; \
	    grep -v -E "^#[0-9]+ +(NEW|REDUCE|pulse|INITED)" $(FUZZ_DIR)/$$t.log | tail -n 40; \
	    for a in $(FUZZ_DIR)/$$t-*; do [ -f "$$a" ] && { echo "input $$a:"; head -c 2048 "$$a" | od -c | head -n 40; }; done; \
	    exit 1; \
	  fi; \
	done

FORMAT_SRCS = $(shell git ls-files '*.c' '*.h' 2>/dev/null || find . -name '*.[ch]' -not -path './build/*')
format:
	clang-format -i $(FORMAT_SRCS)

format-check:
	clang-format --dry-run --Werror $(FORMAT_SRCS)

tidy:
	clang-tidy $(LIB_SRCS) $(CMD_SRCS) -- $(CPPFLAGS) -std=c11 $(PKG_CFLAGS)

# Benchmarks (SPEC.md section 9, bench/bench.py): egressscan against fakeaws over TLS into a
# throwaway PostgreSQL, and the boto3 baseline on the same fleet; fails when the stored clusters
# differ from fakeaws's --truth. `make bench`: 5,000 accounts, BENCH_RUNS runs (medians), plus
# 500 accounts for the peak-RSS comparison; BASELINE_ACCOUNTS=N measures the baseline on a
# smaller fleet and extrapolates it per API call (it takes ~20 min at 5,000 accounts).
# `make bench-quick`: 500 accounts, one run; BENCH_BASELINE=0 leaves out the baseline (CI).
# `make bench` also scans the first run's database a second time, fleet unchanged (its growth).
# `make bench-large`: 20,000 accounts (BENCH_LARGE_ACCOUNTS), one scan and a second, unchanged
# one on the same database (BENCH_MORE_SCANS more), with PostgreSQL's CPU and each table's growth.
# `make bench-workers`: scan --enqueue + 1, 2, 4 workers (BENCH_WORKERS) of --concurrency 64 at
# 20,000 accounts, beside a direct scan. `make bench-small`: 500 accounts, the phases of a scan.
BENCH_RUNS ?= 3
BASELINE_ACCOUNTS ?= 5000
BENCH_BASELINE ?= 1
BENCH_LARGE_ACCOUNTS ?= 20000
BENCH_MORE_SCANS ?= 0
BENCH_WORKERS ?= 1,2,4
.PHONY: bench bench-quick bench-large bench-workers bench-small
bench: ensure-deps
	@$(MAKE) --no-print-directory $(BIN) $(BUILD)/fakeaws
	$(PYTHON) bench/bench.py --accounts 5000 --runs $(BENCH_RUNS) --rss-accounts 500 --second-scan \
	  --baseline-accounts $(if $(filter 0,$(BENCH_BASELINE)),0,$(BASELINE_ACCOUNTS))

bench-large: ensure-deps
	@$(MAKE) --no-print-directory $(BIN) $(BUILD)/fakeaws
	$(PYTHON) bench/bench.py --accounts $(BENCH_LARGE_ACCOUNTS) --runs 1 --baseline-accounts 0 \
	  --second-scan --more-scans $(BENCH_MORE_SCANS) \
	  --name bench-large$(if $(filter 20000,$(BENCH_LARGE_ACCOUNTS)),,-$(BENCH_LARGE_ACCOUNTS))

bench-workers: ensure-deps
	@$(MAKE) --no-print-directory $(BIN) $(BUILD)/fakeaws
	$(PYTHON) bench/bench.py --accounts $(BENCH_LARGE_ACCOUNTS) --workers $(BENCH_WORKERS) \
	  --worker-concurrency 64

bench-small: ensure-deps
	@$(MAKE) --no-print-directory $(BIN) $(BUILD)/fakeaws
	$(PYTHON) bench/bench.py --accounts 500 --runs 3 --baseline-accounts 0 --phases \
	  --name bench-small

bench-quick: ensure-deps
	@$(MAKE) --no-print-directory $(BIN) $(BUILD)/fakeaws
	$(PYTHON) bench/bench.py --accounts 500 --runs 1 \
	  --baseline-accounts $(if $(filter 0,$(BENCH_BASELINE)),0,500)

demo: ensure-deps
	@$(MAKE) --no-print-directory $(BIN)
	@tests/demo.sh $(BIN)

# `make demo` as a newcomer runs it (tests/demo_check.sh): from a fresh `git clone` in a 0700
# directory, twice in a row, then `make demo-stop`, and nothing left running. .ci/run runs it.
.PHONY: demo-check
demo-check:
	@tests/demo_check.sh

# Stops what the last `make demo` left running (its PostgreSQL, recorded in .demo/pg.dir), nothing
# else.
demo-stop:
	@tests/demo.sh --stop

# A sample weekly report to look at: the report's integration test builds five weeks of history
# on moto into a throwaway PostgreSQL and saves the last week's report in every format under
# $(BUILD)/report-sample/; headless Chromium (installed when missing) screenshots the HTML into
# $(BUILD)/report.png.
REPORT_SAMPLE := $(BUILD)/report-sample
.PHONY: report-screenshot
report-screenshot: ensure-deps $(BIN) $(BUILD)/tests/integration/test_report
	@command -v chromium >/dev/null 2>&1 || { if [ "$$(id -u)" = 0 ]; then SUDO=; else SUDO=sudo; fi; \
	  export DEBIAN_FRONTEND=noninteractive; $$SUDO apt-get update -qq && \
	  $$SUDO apt-get install -y -qq --no-install-recommends chromium; }
	@rm -rf $(REPORT_SAMPLE) && mkdir -p $(REPORT_SAMPLE)
	@echo "== building five weeks of history and the report (build/tests/integration/test_report)"
	@REPORT_SAVE_DIR=$(REPORT_SAMPLE) BIN=$(BIN) $(BUILD)/tests/integration/test_report \
	  > $(REPORT_SAMPLE)/test.log 2>&1 || { tail -n 40 $(REPORT_SAMPLE)/test.log; exit 1; }
	@profile=$$(mktemp -d); \
	chromium --headless --no-sandbox --disable-gpu --disable-quic --no-first-run \
	  --disable-background-networking --disable-component-update --disable-sync \
	  --user-data-dir=$$profile --screenshot=$(BUILD)/report.png --window-size=1200,2400 \
	  file://$(CURDIR)/$(REPORT_SAMPLE)/report.html > $(REPORT_SAMPLE)/chromium.log 2>&1; \
	rc=$$?; rm -rf $$profile; \
	if [ $$rc != 0 ]; then cat $(REPORT_SAMPLE)/chromium.log; exit $$rc; fi
	@echo "report:     $(CURDIR)/$(REPORT_SAMPLE)/report.html (also .md, .json, .csv)"
	@echo "screenshot: $(CURDIR)/$(BUILD)/report.png"

# `make install DESTDIR=/tmp/stage PREFIX=/usr`: the binary and the man page (deploy/egressscan.1).
PREFIX ?= /usr/local
DESTDIR ?=
.PHONY: install uninstall
install: $(BIN)
	install -d $(DESTDIR)$(PREFIX)/bin $(DESTDIR)$(PREFIX)/share/man/man1
	install -m 0755 $(BIN) $(DESTDIR)$(PREFIX)/bin/egressscan
	install -m 0644 deploy/egressscan.1 $(DESTDIR)$(PREFIX)/share/man/man1/egressscan.1

uninstall:
	rm -f $(DESTDIR)$(PREFIX)/bin/egressscan $(DESTDIR)$(PREFIX)/share/man/man1/egressscan.1

clean:
	rm -rf $(BUILD)

.SECONDARY:

-include $(shell find $(BUILD)/obj $(FUZZ_OBJ) -name '*.d' 2>/dev/null)
