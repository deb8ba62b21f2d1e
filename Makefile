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

.PHONY: build test test-release test-tsan test-asan test-kqueue test-install test-fuzz demo stress deps clean

# $(call configure_build,PRESET)
define configure_build
	@echo "== $(1): configure and build =="
	cmake --preset $(1)
	cmake --build --preset $(1) --parallel $(JOBS)
endef

deps:
	@cmake/deps.sh

build: deps
	$(call configure_build,release)

test: test-release test-tsan test-asan test-kqueue test-install test-fuzz
	@echo "== make test: all checks passed =="

test-release: build
	@echo "== release: all tests =="
	ctest --preset release

test-tsan: deps
	$(call configure_build,tsan)
	@echo "== tsan: unit, reactor, multi-threaded tests and short stress =="
	ctest --preset tsan -L '^(unit|mt|stress)$$'

test-asan: deps
	$(call configure_build,asan)
	@echo "== asan+ubsan: unit, reactor, multi-threaded tests and short stress =="
	ctest --preset asan -L '^(unit|mt|stress|http)$$'

# The kqueue configuration: the kqueue backend on libkqueue (built from LIBKQUEUE_SOURCE into
# build/kqueue*), with the reactor, HTTP and stress suites on it, in release, under TSan and
# under ASan+UBSan, and the check that its objects call nothing only Linux has. Without the
# libkqueue source it is skipped, and says so. Under TSan the kqueue-tsan test preset reads
# libkqueue's own suppressions (tools/tsan.supp: one stack pattern, race:monitoring_thread_cleanup,
# for a pthread_cancel cleanup handler whose locking TSan cannot follow, in libkqueue's code;
# nothing of opreg's is suppressed).
LIBKQUEUE_SOURCE ?= $(abspath $(CURDIR)/../shared/vendor/libkqueue)
KQUEUE_SUITES := Reactor|ReactorEdges|ReactorDeadline|ReactorThreads|ReactorOnAPoller|Errors|Acceptor
test-kqueue: deps
	@if [ ! -f "$(LIBKQUEUE_SOURCE)/CMakeLists.txt" ]; then \
	  echo "== kqueue: SKIPPED: no libkqueue source at $(LIBKQUEUE_SOURCE) =="; exit 0; fi; \
	set -e; \
	for p in kqueue kqueue-tsan kqueue-asan; do \
	  echo "== $$p: configure and build =="; \
	  cmake --preset $$p -DOPREG_LIBKQUEUE_SOURCE="$(LIBKQUEUE_SOURCE)"; \
	  cmake --build --preset $$p --parallel $(JOBS); \
	done; \
	echo "== kqueue: every test, the HTTP suites and the symbol check on kqueue =="; \
	ctest --preset kqueue; \
	echo "== kqueue-tsan: reactor suites, multi-threaded tests and short stress =="; \
	ctest --preset kqueue-tsan -L '^(mt|stress|kqueue)$$'; \
	ctest --preset kqueue-tsan -R '^($(KQUEUE_SUITES))\.'; \
	echo "== kqueue-asan: reactor suites, HTTP suites and short stress =="; \
	ctest --preset kqueue-asan -L '^(mt|stress|http|kqueue)$$'; \
	ctest --preset kqueue-asan -R '^($(KQUEUE_SUITES))\.'

# A short libFuzzer run of the HTTP parser (clang), seeded from the shared corpus.
FUZZ_SECONDS ?= 15
test-fuzz: deps
	@echo "== fuzz: HTTP parser, $(FUZZ_SECONDS) s per target =="
	FUZZ_SECONDS=$(FUZZ_SECONDS) bash integrations/http/fuzz/run.sh

test-install: build
	@echo "== install: build/release -> $(PREFIX) =="
	rm -rf "$(PREFIX)"
	cmake --install build/release --prefix "$(PREFIX)"
	JOBS=$(JOBS) bash tests/consumer/run.sh "$(PREFIX)" $(CONSUMER_DIR)

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
	  build/asan/bin/opreg-stress \
	  --registry all --threads $(STRESS_THREADS) --seconds $(STRESS_SECONDS) --seed $(STRESS_SEED)

clean:
	rm -rf build
