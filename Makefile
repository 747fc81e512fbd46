# Cutover's build, test and demo commands. `make test` is what CI runs.
GO       ?= go
BIN      := $(CURDIR)/bin
TEMPORAL := $(BIN)/temporal
# The Temporal server and its SQL schema tool, for the PostgreSQL cluster tests.
TEMPORAL_SERVER := $(BIN)/temporal-server $(BIN)/temporal-sql-tool

# Everything builds without a C compiler: the SQL safety checks parse with
# libpg_query compiled to WebAssembly (go-pgquery), and with cgo on, the
# pg_query_go types package would compile the C parser for nothing.
export CGO_ENABLED := 0

# The end-to-end tests use these prebuilt binaries instead of building their own.
export TEMPORAL_BIN       := $(TEMPORAL)
export CUTOVER_BIN        := $(BIN)/cutover
export CUTOVER_WORKER_BIN := $(BIN)/cutover-worker
export DEMO_APP_BIN       := $(BIN)/demo-app
export LOADGEN_BIN        := $(BIN)/loadgen
export TEMPORAL_SERVER_BIN   := $(BIN)/temporal-server
export TEMPORAL_SQL_TOOL_BIN := $(BIN)/temporal-sql-tool

.PHONY: all build test lint unit e2e record-histories dev-server demo demo-rollback demo-dev clean FORCE

all: build

build: $(BIN)/cutover $(BIN)/cutover-worker $(BIN)/demo-app $(BIN)/loadgen

$(BIN)/cutover: FORCE
	$(GO) build -o $@ ./cmd/cutover

$(BIN)/cutover-worker: FORCE
	$(GO) build -o $@ ./cmd/cutover-worker

$(BIN)/demo-app: FORCE
	$(GO) build -o $@ ./deploy/demo-app

$(BIN)/loadgen: FORCE
	$(GO) build -o $@ ./loadgen/cmd/loadgen

# The Temporal CLI (dev server and Web UI), pinned in tools/go.mod: its embedded
# server does not compile next to the product's current SDK. The first build takes
# minutes; later ones come from Go's build cache.
$(TEMPORAL): tools/go.mod tools/go.sum
	$(GO) build -modfile=tools/go.mod -o $@ github.com/temporalio/cli/cmd/temporal


.PHONY: temporal
temporal: $(TEMPORAL)

# The server the CLI embeds (go.temporal.io/server in tools/go.mod), built as
# production runs it, and its schema tool: tests/harness runs them on PostgreSQL.
$(BIN)/temporal-server: tools/go.mod tools/go.sum
	$(GO) build -modfile=tools/go.mod -o $@ go.temporal.io/server/cmd/server

$(BIN)/temporal-sql-tool: tools/go.mod tools/go.sum
	$(GO) build -modfile=tools/go.mod -o $@ go.temporal.io/server/cmd/tools/sql

.PHONY: temporal-server
temporal-server: $(TEMPORAL_SERVER)

# Release binaries of cutover and cutover-worker for linux and darwin on amd64
# and arm64, in $(DIST)/<program>_<os>_<arch>: static (CGO_ENABLED=0), without
# local paths (-trimpath), stamped with VERSION, the commit and its date (the
# commit's, so that a rebuild of one commit is the same binary).
DIST     ?= dist
VERSION  ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo devel)
COMMIT   ?= $(shell git rev-parse HEAD 2>/dev/null)
DATE     ?= $(shell git log -1 --format=%cI 2>/dev/null)
PLATFORMS := linux/amd64 linux/arm64 darwin/amd64 darwin/arm64
VERSION_LDFLAGS := -X github.com/cutoverhq/cutover/version.version=$(VERSION) \
  -X github.com/cutoverhq/cutover/version.commit=$(COMMIT) -X github.com/cutoverhq/cutover/version.date=$(DATE)

.PHONY: dist
dist:
	@mkdir -p $(DIST)
	@for p in $(PLATFORMS); do \
	  os=$${p%/*}; arch=$${p#*/}; \
	  for prog in cutover cutover-worker; do \
	    echo "$(DIST)/$${prog}_$${os}_$${arch}"; \
	    GOOS=$$os GOARCH=$$arch $(GO) build -trimpath -ldflags '-s -w $(VERSION_LDFLAGS)' \
	      -o $(DIST)/$${prog}_$${os}_$${arch} ./cmd/$$prog || exit 1; \
	  done; \
	done

lint:
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	  if [ -n "$$out" ]; then echo "not gofmt-formatted:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...

# Everything: unit tests, replay tests, and end-to-end tests against real servers.
# .ci/deps installs the Debian packages the tests start (or names the command);
# gotestsum ends the run with every skipped test and its reason, so a suite
# whose component is missing cannot hide inside a passing package.
test: deps lint build $(TEMPORAL) $(TEMPORAL_SERVER)
	$(GO) tool gotestsum --format pkgname --format-hide-empty-pkg -- -count=1 -timeout 45m ./...

.PHONY: deps
deps:
	./.ci/deps

unit:
	$(GO) test -count=1 ./spec/... ./workflows/... ./activities/... ./providers/... ./router/... ./loadgen/... ./deploy/...

# Every native fuzz target in the module, FUZZTIME each (.ci/fuzz says how,
# and how it tells Go 1.26's fuzztime deadline race from a finding).
# FUZZPARALLEL workers: one per core of the 2-core machines. go test also
# minimizes each input that reaches new code, up to -fuzzminimizetime (60s by
# default), while its status line stands still at 0 execs/s; FUZZMINIMIZETIME
# keeps that short.
FUZZTIME         ?= 10m
FUZZPARALLEL     ?= 2
FUZZMINIMIZETIME ?= 10s
.PHONY: fuzz
fuzz:
	GO="$(GO)" FUZZTIME=$(FUZZTIME) FUZZPARALLEL=$(FUZZPARALLEL) FUZZMINIMIZETIME=$(FUZZMINIMIZETIME) ./.ci/fuzz

e2e: build $(TEMPORAL) $(TEMPORAL_SERVER)
	$(GO) test -count=1 -v -timeout 30m ./tests/...

# Re-record the histories the replay test replays (after an intended change to
# the workflow, behind a workflow.GetVersion branch).
record-histories: build $(TEMPORAL)
	CUTOVER_RECORD_HISTORIES=$(CURDIR)/workflows/testdata $(GO) test -count=1 -run TestReleaseEndToEnd ./tests/

# A local Temporal with its Web UI on http://127.0.0.1:8233, kept in .cache/.
dev-server: $(TEMPORAL)
	@mkdir -p .cache
	$(TEMPORAL) server start-dev --ip 127.0.0.1 --port 7233 --ui-port 8233 --db-filename .cache/temporal.db \
	  --search-attribute CutoverApp=Keyword --search-attribute CutoverVersion=Keyword \
	  --search-attribute CutoverStage=Keyword --search-attribute CutoverTrafficPercent=Int \
	  --search-attribute CutoverOutcome=Keyword

demo: build $(TEMPORAL)
	./deploy/demo/demo.sh

demo-rollback: build $(TEMPORAL)
	./deploy/demo/demo.sh rollback

# The demo with the worker in development mode: the release brings its whole spec.
demo-dev: build $(TEMPORAL)
	CUTOVER_DEMO_DEV=1 ./deploy/demo/demo.sh

clean:
	rm -rf $(BIN) .cache $(DIST)

# Router overhead (against haproxy when it is installed), abort latency,
# promotion overhead, detection time of a failing green and the judge's verdict
# time on this machine, and Cutover next to a raw Temporal chain (one release,
# 100/300/1,000 at once, an approve after a worker SIGKILL), written to
# docs/benchmarks.md (~40 minutes). BENCHFLAGS="-sections chain" runs one part.
.PHONY: bench
bench: build $(TEMPORAL)
	$(GO) run ./bench -out docs/benchmarks.md $(BENCHFLAGS)
