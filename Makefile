# Lanebridge — make help lists the targets.
.DEFAULT_GOAL := help
SHELL := /bin/bash
GO ?= go
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
# RELEASE_KEYS: minisign public keys the agent trusts for updates and config pushes
# (agent/internal/trust), comma-separated; empty by default (such a build refuses every update).
RELEASE_KEYS ?=
LDFLAGS := -s -w -X github.com/lanebridge/lanebridge/agent/internal/app.Version=$(VERSION) -X github.com/lanebridge/lanebridge/hub/internal/app.Version=$(VERSION) -X github.com/lanebridge/lanebridge/agent/internal/trust.Keys=$(RELEASE_KEYS)
BIN := bin

.PHONY: help build test test-short bench bench-quick soak chaos chaos-short fanin availsim cross dist lint demo demo-erp clean

help: ## list targets
	@grep -hE '^[a-zA-Z_-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-12s %s\n", $$1, $$2}'

build: ## build bin/lanebridge-agent, bin/lanebridge-hub and bin/lanebridge-sim
	@mkdir -p $(BIN)
	$(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $(BIN)/lanebridge-agent ./agent/cmd/lanebridge-agent
	$(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $(BIN)/lanebridge-hub ./hub/cmd/lanebridge-hub
	$(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $(BIN)/lanebridge-sim ./testharness/cmd/lanebridge-sim

test: ## run all tests; starts PostgreSQL, Mosquitto, a seeded Tryton and a seeded Vendure first (testharness/services.sh)
	$(GO) vet ./...
	@set -e; eval "$$(testharness/services.sh)"; \
	  trap 'testharness/tryton/stop.sh "$${TRYTON_DIR:-/nonexistent}" >/dev/null 2>&1 || true; testharness/vendure/stop.sh "$${VENDURE_DIR:-/nonexistent}" >/dev/null 2>&1 || true' EXIT; \
	  $(GO) test -count=1 -timeout 40m -p 2 ./...

test-short: ## unit tests only, no external services
	$(GO) test -short -count=1 ./...

# bench, bench-quick: testharness/cmd/benchreport runs each --run command (bash), keeps the raw
# output in .cache/bench-output.txt and writes testharness/bench/BENCHMARKS.md and latest.json
# (targets and headline figures: testharness/bench/targets.yaml). Repeats (-count) give a median
# and range. A benchmark added to a package below appears in the report with no other change.
BENCHREPORT = $(GO) run ./testharness/cmd/benchreport --out testharness/bench --keep .cache/bench-output.txt
bench: ## full benchmark report (hours): 1M-record drain ×3 with the NATS peer and raw QoS 1, peers' SIGKILL losses, all package benchmarks, 1,000-store close and fan-in
	@mkdir -p .cache
	$(BENCHREPORT) \
	  --run 'LANEBRIDGE_BENCH_N=1000000 $(GO) test -run ^$$ -bench "BenchmarkDrain|BenchmarkPGReplicas" -benchtime 1x -count 3 -timeout 180m ./testharness/e2e/' \
	  --run '$(GO) test -run ^$$ -bench BenchmarkPeers$$ -benchtime 1x -timeout 60m ./testharness/e2e/' \
	  --run 'LANEBRIDGE_BENCH_SPOOL_RECORDS=1000000 $(GO) test -run ^$$ -bench . -skip "BenchmarkCloseFleet|BenchmarkPostSale" -count 3 -timeout 180m ./protocol/... ./agent/... ./hub/...' \
	  --run 'LANEBRIDGE_BENCH_CLOSE_STORES=1000 LANEBRIDGE_BENCH_CLOSE_DAYS=30 $(GO) test -run ^$$ -bench BenchmarkCloseFleet -benchtime 1x -timeout 240m ./hub/internal/reconcile/' \
	  --run 'LANEBRIDGE_BENCH_FANIN_STORES=1000 LANEBRIDGE_BENCH_FANIN_DURATION=10m LANEBRIDGE_BENCH_FANIN_IDLE=10000 LANEBRIDGE_BENCH_FANIN_IDLE_DURATION=60s $(GO) test -run ^$$ -bench BenchmarkFanin -benchtime 1x -timeout 60m ./testharness/fanin/'

bench-quick: ## headline figures only (≤ 5 min): 100,000-record drain with NATS and raw, peers at 10,000, capture, spool, close, 200-store fan-in
	@mkdir -p .cache
	$(BENCHREPORT) \
	  --run 'LANEBRIDGE_BENCH_PEERS_N=10000 LANEBRIDGE_BENCH_AUTOSAVE_N=1000 $(GO) test -run ^$$ -bench "BenchmarkDrain|BenchmarkPGReplicas|BenchmarkPeers$$" -benchtime 1x -timeout 20m ./testharness/e2e/' \
	  --run '$(GO) test -run ^$$ -bench "BenchmarkTailCapture|BenchmarkCommitGrouped|BenchmarkSpoolOpen|BenchmarkSpoolDrain|BenchmarkSpoolCompact|BenchmarkCloseHistory" -timeout 10m ./agent/internal/capture/ ./agent/internal/spool/ ./hub/internal/reconcile/' \
	  --run 'LANEBRIDGE_BENCH_FANIN_DURATION=20s LANEBRIDGE_BENCH_FANIN_IDLE=1000 LANEBRIDGE_BENCH_FANIN_IDLE_DURATION=10s $(GO) test -run ^$$ -bench BenchmarkFanin -benchtime 1x -timeout 10m ./testharness/fanin/'

availsim: ## oversold orders over 30 simulated days, Lanebridge's feed vs a 30-minute batch sync (writes testharness/bench/OVERSELL.md); minutes
	@mkdir -p testharness/bench
	LANEBRIDGE_SIM_DAYS=30 LANEBRIDGE_SIM_REPORT=$(CURDIR)/testharness/bench/OVERSELL.md $(GO) test -count=1 -timeout 60m -run TestOversellSimulation -v ./hub/internal/availability/

soak: ## long soak: a time-compressed multi-day outage (300,000 records), then drain; minutes
	LANEBRIDGE_SOAK=1 $(GO) test -count=1 -timeout 60m -run TestSoakLongOutage -v ./testharness/e2e/

# chaos: the fault scenarios of testharness/chaos (and its sub-packages, e.g. the power cut),
# each checked by one history checker; every scenario prints its seed and, on failure, the
# command that replays it. Each writes CHAOS_OUT/<scenario>.json; `make chaos` then regenerates
# testharness/chaos/CHAOS.md from every *.json there. The short versions also run in `make test`.
# LANEBRIDGE_CHAOS_CYCLES=N overrides every scenario's cycle count; LANEBRIDGE_CHAOS_SEED=S replays.
CHAOS_OUT ?= $(CURDIR)/.cache/chaos
# The fault tests that live beside the e2e harness (power cut on the FUSE disk, disk full, corrupt
# hub database, clock jumps); testharness/chaos/... holds the rest.
CHAOS_E2E = ^(TestPowerCut|TestHubDiskFull|TestCorruptHubDatabaseRefused|TestAgentClockJumps|TestTerminalClockJumps|TestHubClockJumps)$$
chaos-short: ## the chaos scenarios, short (50 agent kills, a 35 s outage, …; under 5 min), results in CHAOS_OUT-short
	rm -rf $(CHAOS_OUT)-short
	LANEBRIDGE_CHAOS_OUT=$(CHAOS_OUT)-short $(GO) test -count=1 -v -timeout 15m ./testharness/chaos/...
	LANEBRIDGE_CHAOS_OUT=$(CHAOS_OUT)-short $(GO) test -count=1 -v -timeout 15m -run '$(CHAOS_E2E)' ./testharness/e2e/

chaos: ## the chaos scenarios, long (1,000 agent kills, …; an hour or more), then regenerate testharness/chaos/CHAOS.md
	rm -rf $(CHAOS_OUT) && mkdir -p $(CHAOS_OUT)
	@start=$$(date +%s); rc=0; \
	  LANEBRIDGE_CHAOS=long LANEBRIDGE_CHAOS_OUT=$(CHAOS_OUT) $(GO) test -count=1 -v -timeout 300m ./testharness/chaos/... || rc=$$?; \
	  LANEBRIDGE_CHAOS=long LANEBRIDGE_CHAOS_OUT=$(CHAOS_OUT) $(GO) test -count=1 -v -timeout 120m -run '$(CHAOS_E2E)' ./testharness/e2e/ || rc=$$?; \
	  $(GO) run ./testharness/chaos/report -in $(CHAOS_OUT) -out testharness/chaos/CHAOS.md -elapsed $$(( $$(date +%s) - start )) \
	    -mode "long$${LANEBRIDGE_CHAOS_CYCLES:+, LANEBRIDGE_CHAOS_CYCLES=$$LANEBRIDGE_CHAOS_CYCLES}" -status $$rc && exit $$rc

# fanin: FANIN_STORES emulated stores × FANIN_RATE records/s for FANIN_DURATION against one hub
# (capture→ack p50/p99, backlog, hub CPU and RSS, exactly-once check), then FANIN_IDLE idle
# connected agents (hub RSS). One process holds every connection; see testharness/fanin.
FANIN_STORES ?= 1000
FANIN_RATE ?= 10
FANIN_DURATION ?= 10m
FANIN_IDLE ?= 10000
fanin: build ## fan-in load: 1,000 stores × 10 records/s for 10 min, then 10,000 idle agents; prints the figures
	$(BIN)/lanebridge-sim fanin --hub $(BIN)/lanebridge-hub --stores $(FANIN_STORES) --rate $(FANIN_RATE) --duration $(FANIN_DURATION)
	$(BIN)/lanebridge-sim fanin --hub $(BIN)/lanebridge-hub --stores $(FANIN_IDLE) --rate 0 --duration 60s

cross: ## cross-compile the agent for windows/amd64, windows/386, linux/arm64, linux/arm (dist's flags: shares its build cache)
	CGO_ENABLED=0 GOOS=windows GOARCH=amd64 $(GO) build -trimpath -ldflags "$(LDFLAGS)" -o /dev/null ./agent/cmd/lanebridge-agent
	CGO_ENABLED=0 GOOS=windows GOARCH=386   $(GO) build -trimpath -ldflags "$(LDFLAGS)" -o /dev/null ./agent/cmd/lanebridge-agent
	CGO_ENABLED=0 GOOS=linux   GOARCH=arm64 $(GO) build -trimpath -ldflags "$(LDFLAGS)" -o /dev/null ./agent/cmd/lanebridge-agent
	CGO_ENABLED=0 GOOS=linux   GOARCH=arm GOARM=7 $(GO) build -trimpath -ldflags "$(LDFLAGS)" -o /dev/null ./agent/cmd/lanebridge-agent

# dist: the agent for 5 platforms and the hub for 2 (static, -trimpath, stamped with VERSION and
# RELEASE_KEYS; DIST_JOBS builds at a time, each itself parallel), then installers/pkg writes to
# dist/: .deb and .rpm (nfpm), the agent's .msi (wixl: apt-get install wixl msitools), .tar.gz/.zip
# and SHA256SUMS; it checks that the built agent reports exactly RELEASE_KEYS' key ids.
# Authenticode signing of the Windows .exe/.msi (osslsigncode): make dist SIGN_CERT=cert.pem
# SIGN_KEY=key.pem [SIGN_PASS_FILE=f]. DIST_AGENT/DIST_HUB narrow the targets (installers' tests).
# The builds cover `make cross`'s targets, so CI runs only dist.
DIST ?= dist
DIST_AGENT ?= linux/amd64 linux/arm64 linux/arm windows/amd64 windows/386
DIST_HUB ?= linux/amd64 linux/arm64
DIST_JOBS ?= 2
SIGN_CERT ?=
SIGN_KEY ?=
SIGN_PASS_FILE ?=
HOST_TARGET = $(shell $(GO) env GOOS)/$(shell $(GO) env GOARCH)
dist_bin = $(DIST)/bin/lanebridge-$(1)-$(subst /,-,$(2))$(if $(findstring windows/,$(2)),.exe)
DIST_BINS = $(foreach t,$(DIST_AGENT),$(call dist_bin,agent,$(t))) $(foreach t,$(DIST_HUB),$(call dist_bin,hub,$(t)))
# The packager runs an agent built for this machine to print its systemd unit and check its keys.
UNIT_AGENT = $(if $(filter $(HOST_TARGET),$(DIST_AGENT)),$(call dist_bin,agent,$(HOST_TARGET)),$(DIST)/bin/lanebridge-agent-host)
comma := ,
empty :=
space := $(empty) $(empty)

dist: ## packages for release in dist/: deb, rpm, msi, tar.gz, zip, SHA256SUMS (RELEASE_KEYS=…, SIGN_CERT/SIGN_KEY=…)
	@rm -rf $(DIST) && mkdir -p $(DIST)/bin
	@$(MAKE) --no-print-directory -j$(DIST_JOBS) $(sort $(DIST_BINS) $(UNIT_AGENT))
	$(GO) run ./installers/pkg --version '$(VERSION)' --bin $(DIST)/bin --out $(DIST) --src installers \
	  --targets '$(subst $(space),$(comma),$(strip $(addprefix agent/,$(DIST_AGENT)) $(addprefix hub/,$(DIST_HUB))))' \
	  --unit-agent $(UNIT_AGENT) --release-keys '$(RELEASE_KEYS)' --mtime $$(git log -1 --format=%ct 2>/dev/null || date +%s) \
	  --sign-cert '$(SIGN_CERT)' --sign-key '$(SIGN_KEY)' --sign-pass-file '$(SIGN_PASS_FILE)'
	@cd $(DIST) && sha256sum -c --quiet SHA256SUMS && ls -l --block-size=K $$(awk '{print $$2}' SHA256SUMS) SHA256SUMS

# One dist binary: lanebridge-COMPONENT-GOOS-GOARCH[.exe], or the host's agent (…-agent-host).
$(DIST)/bin/lanebridge-agent-host:
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags "$(LDFLAGS)" -o $@ ./agent/cmd/lanebridge-agent
$(DIST)/bin/lanebridge-%:
	@set -- $(subst -, ,$(basename $*)); echo "build $$1 $$2/$$3"; \
	  CGO_ENABLED=0 GOOS=$$2 GOARCH=$$3 GOARM=7 $(GO) build -trimpath -ldflags "$(LDFLAGS)" -o $@ ./$$1/cmd/lanebridge-$$1

# staticcheck is pinned and built by `make lint` itself from the module proxy into a
# project-local, per-version directory (.cache/, ignored by git), so every developer and CI run
# the same version whatever is on their PATH. `go install pkg@version` resolves the tool's own
# module graph (checked against go.sum's database) without touching our go.mod; a `tool`
# directive would pull its dependencies into the main module's go.mod and go.sum.
# Bump STATICCHECK_VERSION to upgrade; the new version installs into its own directory.
STATICCHECK_VERSION := v0.8.2
STATICCHECK := $(CURDIR)/.cache/staticcheck-$(STATICCHECK_VERSION)/staticcheck

$(STATICCHECK):
	GOBIN=$(@D) $(GO) install honnef.co/go/tools/cmd/staticcheck@$(STATICCHECK_VERSION)

lint: $(STATICCHECK) ## gofmt, go vet and staticcheck (pinned, installed on first use); fails on any finding
	@test -z "$$(gofmt -l $$(git ls-files '*.go'))" || { gofmt -l $$(git ls-files '*.go'); echo "gofmt needed"; exit 1; }
	$(GO) vet ./...
	$(STATICCHECK) ./...
	GOOS=windows $(STATICCHECK) ./agent/...

demo: build ## run a hub and three stores on embedded defaults; Ctrl-C stops everything
	@bash testharness/demo.sh

demo-erp: build ## the demo with a real Tryton ERP: postings, three-way close and stock pushed back to stores
	@DEMO_ERP=tryton bash testharness/demo.sh

clean: ## remove build output and demo data
	rm -rf $(BIN) $(DIST) .demo
