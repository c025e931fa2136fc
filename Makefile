GO ?= go
BIN := bin/ircd
FUZZTIME ?= 30s
E2E_TOOLS := irssi weechat tmux hexchat Xvfb xdotool dbus-daemon chromium

.PHONY: all build run test e2e fuzz vet clean

all: build

build:
	$(GO) build -o $(BIN) ./cmd/ircd

run: build
	./$(BIN) -config config.toml

# Every test, the Go suites under the race detector. The end-to-end tests
# (e2e/) drive real clients against the built binary and skip themselves
# when those are not installed; say so loudly here.
# The brief fuzz runs are budgeted in executions, not seconds: with a
# duration, Go 1.26's fuzz coordinator can fail a clean run with a bare
# "context deadline exceeded" when a starved worker misses the deadline
# (golang/go#75804, fixed in Go 1.27); a count has no deadline to race.
test:
	$(GO) vet ./...
	@echo "building for macOS and Windows (no epoll there: the reader-goroutine path; the load tool is Unix-only):"
	GOOS=darwin $(GO) build ./... && GOOS=windows $(GO) build ./cmd/ircd ./cmd/natsd
	@if command -v node >/dev/null; then node --test web/jstest/; \
	else echo "!!! WEB PAGE UNIT TESTS SKIPPED: node is not installed (see .ci/run) !!!"; fi
	@missing=""; for t in $(E2E_TOOLS); do command -v $$t >/dev/null || missing="$$missing $$t"; done; \
	if [ -n "$$missing" ]; then echo "!!! END-TO-END SUITE SKIPPED: not installed:$$missing (see .ci/run) !!!"; fi
	$(GO) test -race -count=1 $$($(GO) list ./... | grep -v /e2e)
	$(GO) test -count=1 ./e2e/
	@echo "ircd suite again with a reader goroutine per connection (the TLS and non-Linux path):"
	IRCD_TEST_NO_POLLER=1 $(GO) test -race -count=1 ./ircd/
	@echo "ircd suite again on one node of a cluster (the JetStream backends):"
	IRCD_TEST_BACKEND=cluster $(GO) test -race -count=1 ./ircd/
	$(GO) test -run '^$$' -fuzz '^FuzzLineReader$$' -fuzztime 100000x ./ircd/
	$(GO) test -run '^$$' -fuzz '^FuzzLineReaderPolled$$' -fuzztime 20000x ./ircd/
	$(GO) test -run '^$$' -fuzz '^FuzzSession$$' -fuzztime 10000x ./ircd/
	$(GO) test -run '^$$' -fuzz '^FuzzGlob$$' -fuzztime 50000x ./ircd/
	$(GO) test -run '^$$' -fuzz '^FuzzFastMessage$$' -fuzztime 100000x ./ircd/
	$(GO) test -run '^$$' -fuzz '^FuzzDecodeMessage$$' -fuzztime 20000x ./store/

# Only the real-client suite; a missing client is a failure.
e2e:
	E2E_REQUIRE=1 $(GO) test -count=1 -v ./e2e/

# Run each fuzz target for FUZZTIME (crashers land in testdata/fuzz and
# then run as regular tests). FUZZTIME may be a count such as 1000000x;
# with a duration, a bare "context deadline exceeded" that writes no
# crasher is golang/go#75804, not a finding.
fuzz:
	$(GO) test -run '^$$' -fuzz '^FuzzLineReader$$' -fuzztime $(FUZZTIME) ./ircd/
	$(GO) test -run '^$$' -fuzz '^FuzzLineReaderPolled$$' -fuzztime $(FUZZTIME) ./ircd/
	$(GO) test -run '^$$' -fuzz '^FuzzSession$$' -fuzztime $(FUZZTIME) ./ircd/
	$(GO) test -run '^$$' -fuzz '^FuzzGlob$$' -fuzztime $(FUZZTIME) ./ircd/
	$(GO) test -run '^$$' -fuzz '^FuzzFastMessage$$' -fuzztime $(FUZZTIME) ./ircd/
	$(GO) test -run '^$$' -fuzz '^FuzzDecodeMessage$$' -fuzztime $(FUZZTIME) ./store/

# The benchmark matrix: fresh server per run, table of results and
# targets (scripts/bench.sh; method in BENCHMARKS.md). From the
# environment: BENCH_ONLY=regex, BENCH_BASE=old-ircd-or-checkout, and
# BENCH_PEER=inspircd (the same scenarios on a fresh InspIRCd each, with
# ours/theirs ratios; config in scripts/inspircd-peer.sh).
.PHONY: bench
bench:
	GO=$(GO) bash scripts/bench.sh

# Regenerate the client guide's pictures (docs/img/*.png) with real
# irssi, WeeChat and HexChat; see scripts/screenshots.sh.
.PHONY: screenshots
screenshots:
	GO=$(GO) bash scripts/screenshots.sh

vet:
	$(GO) vet ./...
	gofmt -l .

clean:
	rm -rf bin data

# One room on three daemons with a three-server NATS cluster, all on
# loopback (see README, "Running a cluster"); Ctrl-C stops it.
.PHONY: cluster-demo
cluster-demo:
	GO=$(GO) bash scripts/cluster-demo.sh
