#!/usr/bin/env bash
# make demo / make demo-rollback: a whole blue-green release on this machine,
# with real traffic and the Temporal Web UI to watch it in. No cloud account,
# container runtime or database is needed.
#
# It starts a Temporal dev server (UI on http://127.0.0.1:8233), a worker, the
# router (users on 127.0.0.1:8080, admin API on 127.0.0.1:8081), blue 1.0.0 with
# two instances of the demo app, and a load generator at 200 requests/s that runs
# throughout. Then it releases deploy/demo/release.yaml (2.0.0), approves at the
# gate the way an operator would, and prints a summary. With `rollback` it
# releases release-bad.yaml instead: 3.0.0 starts answering errors at 50% and
# the metrics judge's soak guard rolls it back. Every process it starts is stopped on exit and on Ctrl-C.
#
# The worker runs app definitions, as in production: the spec is copied into
# its CUTOVER_APPS directory as the app definition of demo, and the release is
# a request that names the app and the version (cutover release demo 2.0.0).
# With CUTOVER_DEMO_DEV=1 (make demo-dev) the worker runs in development mode
# instead, and the release brings its whole spec (cutover release -f).
set -euo pipefail
cd "$(dirname "$0")/../.."
mode=${1:-good}
spec=deploy/demo/release.yaml
[ "$mode" = rollback ] && spec=deploy/demo/release-bad.yaml
bin=$PWD/bin
port=${CUTOVER_DEMO_PORT:-7233}
ui=${CUTOVER_DEMO_UI_PORT:-8233}
keep=${CUTOVER_DEMO_KEEP:-}
dev=${CUTOVER_DEMO_DEV:-}
state=.cache/demo
pids=()

cleanup() {
  trap - EXIT INT TERM
  echo "==> stopping everything the demo started"
  [ -f "$state/pools/demo/blue.json" ] || [ -f "$state/pools/demo/green.json" ] &&
    "$bin/cutover" local stop -f "$spec" >/dev/null 2>&1 || true
  for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
}
trap cleanup EXIT
trap 'echo; echo "interrupted"; exit 130' INT TERM

for p in "$port" "$ui" 8080 8081; do
  if (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then
    echo "demo: port $p is taken; stop what uses it (another demo?)" >&2
    exit 1
  fi
done

rm -rf "$state" && mkdir -p "$state"

# The database is part of the release when PostgreSQL is reachable: expand
# migrations before any traffic moves, contract after the standby window, and
# the release ledger. Without it, the migrate steps are skipped.
pg=${CUTOVER_DEMO_POSTGRES:-postgres://postgres@127.0.0.1:5432}
if command -v psql >/dev/null && psql "$pg/postgres?sslmode=disable" -qAtc 'select 1' >/dev/null 2>&1; then
  psql "$pg/postgres?sslmode=disable" -qc 'DROP DATABASE IF EXISTS cutover_demo WITH (FORCE)' -c 'CREATE DATABASE cutover_demo' >/dev/null
  export CUTOVER_DEMO_DATABASE_URL="$pg/cutover_demo?sslmode=disable" CUTOVER_LEDGER_URL="$pg/cutover_demo?sslmode=disable"
  echo "==> PostgreSQL at $pg: database cutover_demo (migrations in deploy/demo/migrations, release ledger in schema cutover)"
  db=yes
else
  echo "==> PostgreSQL is not reachable at $pg (set CUTOVER_DEMO_POSTGRES to use another):"
  echo "    the demo SKIPS its migrate steps and keeps no release ledger"
  sed '/# >>> database/,/# <<< database/d' "$spec" >"$state/release.yaml"
  spec=$state/release.yaml
  db=
fi
version=$(sed -n 's/^version: *//p' "$spec")
export TEMPORAL_ADDRESS=127.0.0.1:$port CUTOVER_TASK_QUEUE=cutover-demo
export CUTOVER_ROUTER_TOKEN=${CUTOVER_ROUTER_TOKEN:-demo-$RANDOM$RANDOM}

echo "==> Temporal dev server on $TEMPORAL_ADDRESS, Web UI on http://127.0.0.1:$ui"
"$bin/temporal" server start-dev --ip 127.0.0.1 --port "$port" --ui-port "$ui" \
  --db-filename "$state/temporal.db" --log-level error \
  --search-attribute CutoverApp=Keyword --search-attribute CutoverVersion=Keyword \
  --search-attribute CutoverStage=Keyword --search-attribute CutoverTrafficPercent=Int \
  --search-attribute CutoverOutcome=Keyword >"$state/temporal.log" 2>&1 &
pids+=($!)
for _ in $(seq 100); do
  "$bin/temporal" operator cluster health --address "$TEMPORAL_ADDRESS" >/dev/null 2>&1 && break
  sleep 0.2
done

echo "==> router: users on http://127.0.0.1:8080, admin API on 127.0.0.1:8081 (log: $state/router.log)"
"$bin/cutover" router --app demo --listen 127.0.0.1:8080 --admin 127.0.0.1:8081 >"$state/router.log" 2>&1 &
pids+=($!)

if [ -n "$dev" ]; then
  echo "==> worker in development mode: a release brings its whole spec (log: $state/worker.log)"
  export CUTOVER_DEV=true CUTOVER_APPS=
else
  mkdir -p "$state/apps" && cp "$spec" "$state/apps/demo.yaml"
  echo "==> worker with the app definitions in $state/apps: demo.yaml says what its releases may touch (log: $state/worker.log)"
  export CUTOVER_DEV=false CUTOVER_APPS=$state/apps
fi
CUTOVER_HTTP_ADDR=127.0.0.1:0 "$bin/cutover-worker" >"$state/worker.log" 2>&1 &
pids+=($!)

for _ in $(seq 50); do (exec 3<>/dev/tcp/127.0.0.1/8081) 2>/dev/null && break; sleep 0.1; done
echo "==> blue: demo 1.0.0, two instances (5-7ms of work per request, like green)"
LATENCY=5ms LATENCY_JITTER=2ms "$bin/cutover" local start -f "$spec" --version 1.0.0

echo "==> load: 200 requests/s to http://127.0.0.1:8080/ until the release ends (progress every 5s)"
"$bin/loadgen" -url http://127.0.0.1:8080/ -rate 200 -duration 10m -max 200000 -progress 5s \
  >"$state/load.out" 2> >(sed -u 's/^/           /' >&2) &
load=$!
pids+=($load)

echo "==> the plan"
"$bin/cutover" plan -f "$spec"
echo "==> releasing (watch it at http://127.0.0.1:$ui/namespaces/default/workflows/release%2Fdemo)"
if [ -n "$dev" ]; then
  echo "==> cutover release -f $spec --wait"
  "$bin/cutover" release -f "$spec" --wait --by "$(whoami) (make demo-dev)" &
else
  echo "==> cutover release demo $version --wait"
  "$bin/cutover" release demo "$version" --wait --by "$(whoami) (make demo)" &
fi
release=$!
pids+=($release)

# An operator approves at the gate. Should the judge end inconclusive (a
# busy machine, too little traffic), the release waits for a decision: the
# demo shows the verdict's numbers and decides as a person would after
# reading them.
while kill -0 "$release" 2>/dev/null; do
  waiting=$("$bin/cutover" status demo --json 2>/dev/null | sed -n 's/^ *"waiting": "\(.*\)",*$/\1/p' || true)
  case $waiting in
    approval)
      echo "==> an operator approves: cutover approve demo --operator demo-operator --as demo-operator"
      "$bin/cutover" approve demo --operator demo-operator --as demo-operator --reason "the numbers look good"
      break ;;
    "a decision on an inconclusive"*)
      echo "==> the judge could not decide ($waiting); its verdict:"
      "$bin/cutover" status demo | sed -n '/^verdict:/,/^steps:/p' | sed 's/^/    /'
      echo "==> an operator reads the numbers and approves: cutover approve demo --operator demo-operator --as demo-operator"
      "$bin/cutover" approve demo --operator demo-operator --as demo-operator --reason "read the verdict; approving in the demo" ;;
  esac
  sleep 1
done

code=0
wait "$release" || code=$?
sleep 1
kill -TERM "$load" 2>/dev/null || true
wait "$load" 2>/dev/null || true

echo
echo "==> summary"
case $code in
  0) echo "release: promoted (exit 0)" ;;
  3) echo "release: rolled back automatically (exit 3)" ;;
  4) echo "release: aborted (exit 4)" ;;
  *) echo "release: failed (exit $code)" ;;
esac
"$bin/cutover" status demo | sed 's/^/  /'
if [ -n "$db" ]; then
  echo "release ledger (cutover history demo $version):"
  "$bin/cutover" history demo "$version" | sed 's/^/  /'
fi
echo "load generator (requests served by each version, failed requests):"
sed 's/^/  /' "$state/load.out"
echo "find the release in the Temporal UI: http://127.0.0.1:$ui/namespaces/default/workflows?query=CutoverApp%3D%22demo%22"
if [ -n "$keep" ]; then
  echo "==> CUTOVER_DEMO_KEEP is set: everything stays up until Ctrl-C (users: http://127.0.0.1:8080/)"
  wait "${pids[0]}"
fi
case $mode in
  rollback) [ "$code" = 3 ] ;;
  *) exit "$code" ;;
esac
