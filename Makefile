# Cutover's build, test and demo commands. `make test` is what CI runs.
GO       ?= go
BIN      := $(CURDIR)/bin
TEMPORAL := $(BIN)/temporal

# The end-to-end tests use these prebuilt binaries instead of building their own.
export TEMPORAL_BIN       := $(TEMPORAL)
export CUTOVER_BIN        := $(BIN)/cutover
export CUTOVER_WORKER_BIN := $(BIN)/cutover-worker
export DEMO_APP_BIN       := $(BIN)/demo-app
export LOADGEN_BIN        := $(BIN)/loadgen

.PHONY: all build test lint unit e2e record-histories dev-server demo demo-rollback demo-dev clean FORCE

all: build

build: $(BIN)/cutover $(BIN)/cutover-worker $(BIN)/demo-app $(BIN)/loadgen

$(BIN)/cutover: FORCE
	$(GO) build -o $@ ./starter

$(BIN)/cutover-worker: FORCE
	$(GO) build -o $@ ./worker

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

lint:
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	  if [ -n "$$out" ]; then echo "not gofmt-formatted:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...

# Everything: unit tests, replay tests, and end-to-end tests against real servers.
test: lint build $(TEMPORAL)
	$(GO) test -count=1 -timeout 45m ./...

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

e2e: build $(TEMPORAL)
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
	rm -rf $(BIN) .cache

# Router overhead (against haproxy when it is installed), abort latency,
# promotion overhead, detection time of a failing green and the judge's verdict
# time on this machine, and Cutover next to a raw Temporal chain (one release,
# 100/300/1,000 at once, an approve after a worker SIGKILL), written to
# docs/benchmarks.md (~40 minutes). BENCHFLAGS="-sections chain" runs one part.
.PHONY: bench
bench: build $(TEMPORAL)
	$(GO) run ./bench -out docs/benchmarks.md $(BENCHFLAGS)
