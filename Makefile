# Lanebridge — make help lists the targets.
.DEFAULT_GOAL := help
SHELL := /bin/bash
GO ?= go
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS := -s -w -X github.com/lanebridge/lanebridge/agent/internal/app.Version=$(VERSION) -X github.com/lanebridge/lanebridge/hub/internal/app.Version=$(VERSION)
BIN := bin

.PHONY: help build test test-short bench soak cross lint demo demo-erp clean

help: ## list targets
	@grep -hE '^[a-zA-Z_-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-12s %s\n", $$1, $$2}'

build: ## build bin/lanebridge-agent, bin/lanebridge-hub and bin/lanebridge-sim
	@mkdir -p $(BIN)
	$(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $(BIN)/lanebridge-agent ./agent/cmd/lanebridge-agent
	$(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $(BIN)/lanebridge-hub ./hub/cmd/lanebridge-hub
	$(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $(BIN)/lanebridge-sim ./testharness/cmd/lanebridge-sim

test: ## run all tests; starts PostgreSQL, Mosquitto and a seeded Tryton first (testharness/services.sh)
	$(GO) vet ./...
	@set -e; eval "$$(testharness/services.sh)"; \
	  trap 'testharness/tryton/stop.sh "$${TRYTON_DIR:-/nonexistent}" >/dev/null 2>&1 || true' EXIT; \
	  $(GO) test -count=1 -timeout 40m -p 2 ./...

test-short: ## unit tests only, no external services
	$(GO) test -short -count=1 ./...

bench: ## benchmarks (drain rate, spool commit, store apply, parsers)
	$(GO) test -run '^$$' -bench . -benchtime 1x -timeout 30m ./testharness/e2e/
	$(GO) test -run '^$$' -bench . -timeout 30m ./agent/... ./hub/...

soak: ## long soak: a time-compressed multi-day outage (300,000 records), then drain; minutes
	LANEBRIDGE_SOAK=1 $(GO) test -count=1 -timeout 60m -run TestSoakLongOutage -v ./testharness/e2e/

cross: ## cross-compile the agent for windows/amd64, windows/386, linux/arm64, linux/arm
	GOOS=windows GOARCH=amd64 $(GO) build -o /dev/null ./agent/cmd/lanebridge-agent
	GOOS=windows GOARCH=386   $(GO) build -o /dev/null ./agent/cmd/lanebridge-agent
	GOOS=linux   GOARCH=arm64 $(GO) build -o /dev/null ./agent/cmd/lanebridge-agent
	GOOS=linux   GOARCH=arm   $(GO) build -o /dev/null ./agent/cmd/lanebridge-agent

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
	rm -rf $(BIN) .demo
