#!/usr/bin/env bash
# make demo: a whole release on this machine, with the Temporal Web UI to watch
# it in. It starts a Temporal dev server (UI on http://127.0.0.1:8233) and a
# worker, releases deploy/demo/release.yaml, approves at the gate the way an
# operator would, and prints the summary. Every process it starts is stopped on
# exit and on Ctrl-C.
set -euo pipefail
cd "$(dirname "$0")/../.."
bin=$PWD/bin
port=${CUTOVER_DEMO_PORT:-7233}
ui=${CUTOVER_DEMO_UI_PORT:-8233}
keep=${CUTOVER_DEMO_KEEP:-}
work=$(mktemp -d)
pids=()

cleanup() {
  trap - EXIT INT TERM
  for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
  rm -rf "$work"
}
trap cleanup EXIT
trap 'echo; echo "interrupted: stopping everything"; exit 130' INT TERM

if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
  echo "demo: port $port is taken (another Temporal?); set CUTOVER_DEMO_PORT to another port" >&2
  exit 1
fi

mkdir -p .cache
echo "==> starting Temporal dev server on 127.0.0.1:$port (Web UI http://127.0.0.1:$ui)"
"$bin/temporal" server start-dev --ip 127.0.0.1 --port "$port" --ui-port "$ui" \
  --db-filename .cache/demo-temporal.db --log-level error \
  --search-attribute CutoverApp=Keyword --search-attribute CutoverVersion=Keyword \
  --search-attribute CutoverStage=Keyword --search-attribute CutoverTrafficPercent=Int \
  --search-attribute CutoverOutcome=Keyword >"$work/temporal.log" 2>&1 &
pids+=($!)

export TEMPORAL_ADDRESS=127.0.0.1:$port CUTOVER_TASK_QUEUE=cutover-demo
for _ in $(seq 100); do
  "$bin/temporal" operator cluster health --address "$TEMPORAL_ADDRESS" >/dev/null 2>&1 && break
  sleep 0.2
done

echo "==> starting a worker (log: $work/worker.log)"
CUTOVER_HTTP_ADDR=127.0.0.1:0 "$bin/cutover-worker" >"$work/worker.log" 2>&1 &
pids+=($!)

echo "==> the plan"
"$bin/cutover" plan -f deploy/demo/release.yaml

echo "==> releasing demo 2.0.0 (watch it at http://127.0.0.1:$ui/namespaces/default/workflows/release%2Fdemo)"
"$bin/cutover" release -f deploy/demo/release.yaml --wait --by "$(whoami) (make demo)" &
release=$!
pids+=($release)

until "$bin/cutover" status demo --json 2>/dev/null | grep -q '"waiting": "approval"'; do
  kill -0 "$release" 2>/dev/null || break
  sleep 1
done
if kill -0 "$release" 2>/dev/null; then
  echo "==> an operator approves: cutover approve demo --as demo-operator"
  "$bin/cutover" approve demo --as demo-operator --reason "the demo looks good"
fi

code=0
wait "$release" || code=$?
echo "==> release exited with code $code (0 promoted, 3 rolled back, 4 aborted)"
"$bin/cutover" status demo
echo "==> find it in the Temporal UI: http://127.0.0.1:$ui/namespaces/default/workflows?query=CutoverApp%3D%22demo%22"
if [ -n "$keep" ]; then
  echo "==> CUTOVER_DEMO_KEEP is set: the dev server and UI stay up until Ctrl-C"
  wait "${pids[0]}"
fi
exit "$code"
