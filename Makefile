# SPDX-License-Identifier: Apache-2.0
# The README's commands: `make demo` and `make test`. Both install missing packages first.
SHELL := bash
.SHELLFLAGS := -euo pipefail -c
# Parallelism lives inside cmake --build; running the stages side by side would only
# oversubscribe the cores.
.NOTPARALLEL:
.DEFAULT_GOAL := build

JOBS ?= 2
PREFIX := $(CURDIR)/build/release/_prefix
CONSUMER_DIR := build/consumer
# Each stage runs through cmake/stage.sh, which keeps its minutes in build/stages.tsv:
# `make test` and `make check` print them as a table at their end (or at the first failure).
STAGE := bash cmake/stage.sh run

.PHONY: build test check stages-reset test-release test-tsan test-asan test-kqueue test-install \
        test-fuzz check-release check-tsan check-asan check-kqueue demo stress deps docs clean

# $(call configure_build,PRESET[,MATRIX,BUILD ARGS]): configure PRESET with the HTTP suites'
# MATRIX (quick, the default, or full), then build what its build preset names
# (CMakePresets.json: the binaries `make test` runs there), or BUILD ARGS' targets
# (`--target all` for `make check`).
define configure_build
	@echo "== $(1): configure and build =="
	$(STAGE) "$(1) configure" cmake --preset $(1) -DOPREG_TEST_MATRIX=$(or $(2),quick) \
	  $(CONFIGURE_ARGS)
	$(STAGE) "$(1) build" cmake --build --preset $(1) --parallel $(JOBS) $(3)
endef
# $(call run_tests,PRESET,CTEST ARGS): JOBS tests side by side, but for the HTTP attacks
# (RUN_SERIAL: they bound the server's CPU time), which run alone.
define run_tests
	$(STAGE) "$(1) test" ctest --preset $(1) --parallel $(JOBS) $(2) \
	  --output-junit $(CURDIR)/build/junit/$(1).xml --test-output-size-passed 65536
endef

deps:
	@cmake/deps.sh

build: deps
	$(call configure_build,release)

# `make docs`: the API reference from the headers' comments, build/docs/html/index.html. A
# warning (an undocumented public declaration among them) fails it.
docs: deps
	doxygen docs/Doxyfile
	@echo "== docs: build/docs/html/index.html =="

stages-reset:
	@bash cmake/stage.sh reset

# `make test`: every kind of check once, in its cheapest sufficient form (20 minutes or less
# on 2 cores from a clean clone). Each sanitizer build compiles only the binaries its run
# needs; the HTTP suites run their quick matrix. docs/testing.md says what runs where.
test: stages-reset test-release test-tsan test-asan test-kqueue test-install test-fuzz
	@echo "== make test: minutes per stage: =="
	@bash cmake/stage.sh table
	@bash cmake/stage.sh summary "make test"

# `make check`: the full matrix (about 35 minutes on 2 cores): every binary built in every
# preset, the HTTP suites' full matrix (every strategy on every backend), the registry,
# stress and HTTP suites again on the kqueue configuration and under its sanitizers. Run it
# before a change to include/, src/ or integrations/ lands.
check: stages-reset check-release check-tsan check-asan check-kqueue test-install test-fuzz
	@echo "== make check: minutes per stage: =="
	@bash cmake/stage.sh table
	@bash cmake/stage.sh summary "make check"

# Release (-O2): every binary and every test (the HTTP and reactor suites: their quick matrix).
test-release: build
	@echo "== release: all tests (HTTP suites: quick matrix) =="
	$(call run_tests,release)

# ThreadSanitizer: what runs threads, in one process per test binary. Not the HTTP parser
# (single-threaded: ASan and the fuzzer cover it) nor the compile checks (the compiler's
# answer, the same in every preset: release asks once).
test-tsan: deps
	$(call configure_build,tsan)
	@echo "== tsan: unit, reactor, multi-threaded tests, examples and short stress =="
	$(call run_tests,tsan,-L '^(unit|mt|stress)$$' -LE '^(parser|compile)$$')

# AddressSanitizer + UBSan: the same and the HTTP suites (quick matrix).
test-asan: deps
	$(call configure_build,asan)
	@echo "== asan+ubsan: unit, reactor, multi-threaded tests, short stress and HTTP suites =="
	$(call run_tests,asan,-L '^(unit|mt|stress|http)$$' -LE '^compile$$')

# The kqueue configuration: the kqueue backend on libkqueue (built from LIBKQUEUE_SOURCE into
# build/kqueue*). In release: the reactor suites, the HTTP server (quick matrix: two
# strategies on kqueue), the examples on kqueue, the README's first use in both forms, and the
# check that its objects call nothing only Linux has. Under ASan+UBSan: the reactor suites
# (quick matrix: slot_array and mpsc_queue). (The registry, multi-threaded and stress tests
# touch no backend: the runs above cover them; `make check` runs them here too, and the
# kqueue configuration under TSan, whose test preset reads libkqueue's own suppressions:
# tools/tsan.supp, one stack pattern, race:monitoring_thread_cleanup, for a pthread_cancel
# cleanup handler whose locking TSan cannot follow, in libkqueue's code; nothing of opreg's
# is suppressed.) Without the libkqueue source it is skipped, and says so.
LIBKQUEUE_SOURCE ?= $(abspath $(CURDIR)/../shared/vendor/libkqueue)
KQUEUE_CONFIGURE := -DOPREG_LIBKQUEUE_SOURCE="$(LIBKQUEUE_SOURCE)"
HAVE_LIBKQUEUE := $(wildcard $(LIBKQUEUE_SOURCE)/CMakeLists.txt)
test-kqueue: deps
ifeq ($(HAVE_LIBKQUEUE),)
	@bash cmake/stage.sh skip kqueue "no libkqueue source at $(LIBKQUEUE_SOURCE)"
else
	$(call configure_build,kqueue)
	@echo "== kqueue: reactor suites, HTTP server, examples, first use, symbol check =="
	$(call run_tests,kqueue,-L '^(reactor|http|examples|first_use|kqueue)$$' -LE '^parser$$' \
	  -E '^examples\.clients\.echo_epoll$$')
	$(call configure_build,kqueue-asan)
	@echo "== kqueue-asan: reactor suites =="
	$(call run_tests,kqueue-asan,-L '^reactor$$')
endif
test-kqueue check-kqueue: CONFIGURE_ARGS = $(KQUEUE_CONFIGURE)

# `make check`'s stages: every binary built, every test of the preset's labels, the HTTP
# suites' full matrix instead of their quick one.
check-release: deps
	$(call configure_build,release,full,--target all)
	@echo "== release: all tests (HTTP suites: full matrix) =="
	$(call run_tests,release)

check-tsan: deps
	$(call configure_build,tsan,full,--target all)
	@echo "== tsan: unit, reactor, multi-threaded tests, examples and short stress =="
	$(call run_tests,tsan,-L '^(unit|mt|stress)$$')

check-asan: deps
	$(call configure_build,asan,full,--target all)
	@echo "== asan+ubsan: unit, reactor, multi-threaded tests, short stress and HTTP suites =="
	$(call run_tests,asan,-L '^(unit|mt|stress|http)$$')

check-kqueue: deps
ifeq ($(HAVE_LIBKQUEUE),)
	@bash cmake/stage.sh skip kqueue "no libkqueue source at $(LIBKQUEUE_SOURCE)"
else
	$(call configure_build,kqueue,full,--target all)
	@echo "== kqueue: every test, the HTTP suites (full matrix) and the symbol check =="
	$(call run_tests,kqueue)
	$(call configure_build,kqueue-tsan,full,--target all)
	@echo "== kqueue-tsan: reactor suites, multi-threaded tests and short stress =="
	$(call run_tests,kqueue-tsan,-L '^(mt|stress|kqueue|reactor)$$')
	$(call configure_build,kqueue-asan,full,--target all)
	@echo "== kqueue-asan: reactor suites, HTTP suites (full matrix) and short stress =="
	$(call run_tests,kqueue-asan,-L '^(mt|stress|http|kqueue|reactor)$$')
endif

# A short libFuzzer run of the HTTP parser (clang), seeded from the shared corpus.
FUZZ_SECONDS ?= 15
test-fuzz: deps
	@echo "== fuzz: HTTP parser, $(FUZZ_SECONDS) s per target =="
	FUZZ_SECONDS=$(FUZZ_SECONDS) $(STAGE) fuzz bash integrations/http/fuzz/run.sh

test-install: build
	@echo "== install: build/release -> $(PREFIX) =="
	rm -rf "$(PREFIX)"
	JOBS=$(JOBS) $(STAGE) install bash -c 'cmake --install build/release --prefix "$$1" && \
	  bash tests/consumer/run.sh "$$1" "$$2"' install "$(PREFIX)" $(CONSUMER_DIR)

# The main job: every registry strategy (and the original configuration's pitfalls, one at
# a time) in opreg-httpd under wrk, beside nginx when installed and the bare epoll floor.
# Prints the table (medians of 3 rounds: req/s, and server and wrk CPU per request), writes
# bench/results/<date>-<host>.csv, -runs.csv and .png. DEMO_ARGS: see bench/demo.sh --help (e.g. DEMO_ARGS=--quick).
DEMO_ARGS ?=
demo: build
	@cmake/deps.sh demo
	bash bench/demo.sh $(DEMO_ARGS)

# The long stress: every scenario x every strategy under TSan, then under ASan+UBSan+LSan.
# STRESS_SECONDS is per timed scenario and strategy (15 timed runs + 2 primitives each).
STRESS_SECONDS ?= 30
STRESS_THREADS ?= 4
STRESS_SEED ?= $(shell date +%s)
stress: deps
	$(call configure_build,tsan)
	$(call configure_build,asan)
	@echo "== tsan: opreg-stress, $(STRESS_SECONDS) s per scenario, seed $(STRESS_SEED) =="
	TSAN_OPTIONS="halt_on_error=1 second_deadlock_stack=1" build/tsan/bin/opreg-stress \
	  --registry all --threads $(STRESS_THREADS) --seconds $(STRESS_SECONDS) --seed $(STRESS_SEED)
	@echo "== asan+ubsan+lsan: opreg-stress, $(STRESS_SECONDS) s per scenario, seed $(STRESS_SEED) =="
	ASAN_OPTIONS="detect_leaks=1:abort_on_error=1" UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1" \
	  build/asan-clang/bin/opreg-stress \
	  --registry all --threads $(STRESS_THREADS) --seconds $(STRESS_SECONDS) --seed $(STRESS_SEED)

clean:
	rm -rf build
