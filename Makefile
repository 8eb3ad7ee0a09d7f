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

lint: ## gofmt, go vet, staticcheck if installed
	@test -z "$$(gofmt -l $$(git ls-files '*.go'))" || { gofmt -l $$(git ls-files '*.go'); echo "gofmt needed"; exit 1; }
	$(GO) vet ./...
	@if command -v staticcheck >/dev/null; then staticcheck ./...; fi

demo: build ## run a hub and three stores on embedded defaults; Ctrl-C stops everything
	@bash testharness/demo.sh

demo-erp: build ## the demo with a real Tryton ERP: postings, three-way close and stock pushed back to stores
	@DEMO_ERP=tryton bash testharness/demo.sh

clean: ## remove build output and demo data
	rm -rf $(BIN) .demo
