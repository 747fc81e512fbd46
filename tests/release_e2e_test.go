package tests

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.temporal.io/api/enums/v1"
	historypb "go.temporal.io/api/history/v1"
	"google.golang.org/protobuf/encoding/protojson"

	"github.com/cutoverhq/cutover/spec"
	"github.com/cutoverhq/cutover/tests/harness"
	"github.com/cutoverhq/cutover/workflows"
)

// releaseYAML is a short plan on the memory providers: every call takes 200ms,
// soaks and the standby window take seconds.
const releaseYAML = `app: %s
version: %s
providers:
  environment: {type: memory, settings: {delay: 200ms}}
  traffic: {type: memory}
  analysis: {type: memory}
  migrations: {type: memory}
  notifications: [{type: log}]
plan:
  - provision
  - migrate: {phase: expand}
  - validate
  - setWeight: 10
  - soak: {duration: 4s, interval: 1s}
  - setWeight: 50
  - analysis: {window: 1s}
  - approval: {timeout: 5m}
  - promote
  - standby: {duration: 2s}
  - migrate: {phase: contract}
  - decommission
`

// cluster is a dev server with two worker processes and the CLI.
type cluster struct {
	t       *testing.T
	server  *harness.DevServer
	cli     string
	env     []string
	workers []*harness.Proc
	http    []string // each worker's /metrics and /healthz address

	workerBin string
	workerEnv []string
}

func startCluster(t *testing.T, workerEnv ...string) *cluster {
	return startClusterWith(t, 2, workerEnv...)
}

// startClusterWith starts a dev server and n workers with workerEnv added to
// their environment.
func startClusterWith(t *testing.T, n int, workerEnv ...string) *cluster {
	cli, worker := harness.CutoverBinaries(t)
	srv := harness.StartTemporal(t, harness.DevServerOptions{})
	c := &cluster{t: t, server: srv, cli: cli, env: srv.Env("e2e"), workerBin: worker, workerEnv: workerEnv}
	for range n {
		c.addWorker()
	}
	return c
}

// addWorker starts one more worker process.
func (c *cluster) addWorker() {
	addr := fmt.Sprintf("127.0.0.1:%d", harness.FreePort(c.t))
	env := append(append(append([]string{}, c.env...), c.workerEnv...), "CUTOVER_HTTP_ADDR="+addr)
	c.workers = append(c.workers, harness.Start(c.t, fmt.Sprintf("worker %d", len(c.workers)), env, c.workerBin))
	c.http = append(c.http, addr)
}

func (c *cluster) spec(app, version string) string {
	path := filepath.Join(c.t.TempDir(), "release.yaml")
	if err := os.WriteFile(path, fmt.Appendf(nil, releaseYAML, app, version), 0o644); err != nil {
		c.t.Fatal(err)
	}
	return path
}

func (c *cluster) cutover(args ...string) (string, string, int) {
	return harness.Run(c.t, 30*time.Second, c.env, c.cli, args...)
}

// waitStatus polls `cutover status --json` until cond holds.
func (c *cluster) waitStatus(app string, within time.Duration, cond func(workflows.Status) bool) workflows.Status {
	c.t.Helper()
	deadline := time.Now().Add(within)
	var st workflows.Status
	for time.Now().Before(deadline) {
		out, _, code := c.cutover("status", app, "--json")
		if code == 0 && json.Unmarshal([]byte(out), &st) == nil && cond(st) {
			return st
		}
		time.Sleep(250 * time.Millisecond)
	}
	c.t.Fatalf("status of %s never matched within %s; last: %+v", app, within, st)
	return st
}

// listed runs `temporal workflow list --query` and returns the IDs it found.
func (c *cluster) listed(query string) []string {
	out, errOut, code := harness.Run(c.t, 30*time.Second, nil, c.server.CLI,
		"workflow", "list", "--address", c.server.Address, "--query", query, "-o", "json")
	if code != 0 {
		c.t.Fatalf("temporal workflow list: exit %d: %s", code, errOut)
	}
	var rows []struct {
		Execution struct {
			WorkflowID string `json:"workflowId"`
		} `json:"execution"`
	}
	if strings.TrimSpace(out) == "" {
		return nil
	}
	if err := json.Unmarshal([]byte(out), &rows); err != nil {
		c.t.Fatalf("temporal workflow list output: %v\n%s", err, out)
	}
	var ids []string
	for _, r := range rows {
		ids = append(ids, r.Execution.WorkflowID)
	}
	return ids
}

// waitListed waits for visibility, which lags the workflow by a moment.
func (c *cluster) waitListed(query string, want int) []string {
	c.t.Helper()
	var ids []string
	for range 40 {
		if ids = c.listed(query); len(ids) == want {
			return ids
		}
		time.Sleep(250 * time.Millisecond)
	}
	c.t.Fatalf("temporal workflow list --query %s found %v, want %d", query, ids, want)
	return nil
}

func TestReleaseEndToEnd(t *testing.T) {
	c := startCluster(t)

	t.Run("promotes with approval while a worker dies", func(t *testing.T) {
		c.t = t
		app := "shop"
		rel := harness.Start(t, "cutover release --wait", c.env, c.cli, "release", "-f", c.spec(app, "1.5.0"), "--wait", "--by", "ci-run-42")

		// A worker dies mid-soak; the other one carries the release on.
		c.waitStatus(app, time.Minute, func(st workflows.Status) bool { return st.Stage == "soak" })
		c.workers[0].Kill()

		// A second release of the same app is refused, naming the one in progress.
		_, errOut, code := c.cutover("release", "-f", c.spec(app, "1.6.0"))
		if code != 1 || !strings.Contains(errOut, "already has a release in progress: shop version 1.5.0") {
			t.Errorf("second release: exit %d, %q; want 1 naming the release in progress", code, errOut)
		}

		// An approve before the gate is rejected with the reason.
		st := c.waitStatus(app, time.Minute, func(st workflows.Status) bool { return st.Waiting == "approval" || st.Stage == "soak" })
		if st.Waiting != "approval" {
			_, errOut, code = c.cutover("approve", app, "--operator", "alice", "--as", "alice")
			if code != 1 || !strings.Contains(errOut, "no approval is pending") {
				t.Errorf("early approve: exit %d, %q; want rejected", code, errOut)
			}
		}

		c.waitStatus(app, 2*time.Minute, func(st workflows.Status) bool { return st.Waiting == "approval" })
		out, errOut, code := c.cutover("approve", app, "--operator", "alice", "--as", "alice", "--reason", "dashboards green")
		if code != 0 || !strings.Contains(out, "approved by alice") {
			t.Fatalf("approve: exit %d, %q %q", code, out, errOut)
		}
		_, errOut, code = c.cutover("approve", app, "--operator", "bob", "--as", "bob")
		if code != 1 || !strings.Contains(errOut, "already approved by alice") {
			t.Errorf("second approve: exit %d, %q; want rejected", code, errOut)
		}

		if code := rel.Wait(t, 2*time.Minute); code != 0 {
			t.Fatalf("release --wait exited %d, want 0 (promoted)\n%s", code, rel.Output())
		}
		for _, want := range []string{"step 5/12 soak 4s", "step 6/12 done in", "traffic: blue 50% / green 50%", "waiting for approval: cutover approve shop", "approve by alice", "outcome: promoted"} {
			if !strings.Contains(rel.Output(), want) {
				t.Errorf("release --wait output lacks %q:\n%s", want, rel.Output())
			}
		}
		out, _, _ = c.cutover("status", app)
		for _, want := range []string{"shop 1.5.0", "promoted", "blue 0% / green 100%", "alice", "ci-run-42"} {
			if !strings.Contains(out, want) {
				t.Errorf("status lacks %q:\n%s", want, out)
			}
		}
		c.waitListed(`CutoverApp="shop" AND CutoverStage="done" AND CutoverOutcome="promoted" AND CutoverTrafficPercent=100`, 1)
		recordHistory(t, c.server, app)

		// The surviving worker ran the end of the release: its metrics show it.
		metrics := httpGet(t, "http://"+c.http[1]+"/metrics")
		for _, want := range []string{
			`cutover_releases_total{`, `outcome="promoted"`,
			`cutover_stage_duration_seconds_bucket{`, `stage="standby"`,
			`cutover_traffic_weight{`, `app="shop"`,
			"temporal_workflow_completed_total", "go_goroutines",
		} {
			if !strings.Contains(metrics, want) {
				t.Errorf("worker /metrics lacks %s:\n%s", want, grepLines(metrics, "cutover"))
			}
		}
		if got := httpGet(t, "http://"+c.http[1]+"/healthz"); got != "ok\n" {
			t.Errorf("/healthz = %q", got)
		}
	})

	t.Run("abort sends traffic back to blue and exits 4", func(t *testing.T) {
		c.t = t
		app := "cart"
		rel := harness.Start(t, "cutover release --wait", c.env, c.cli, "release", "-f", c.spec(app, "2.0.0"), "--wait")
		c.waitStatus(app, time.Minute, func(st workflows.Status) bool { return st.Stage == "soak" && st.Weights.Green == 10 })
		c.waitListed(`CutoverApp="cart" AND CutoverStage="soak" AND CutoverOutcome="running"`, 1)

		_, errOut, code := c.cutover("abort", app)
		if code != 2 || !strings.Contains(errOut, "reason") {
			t.Errorf("abort without --reason: exit %d, %q; want usage error", code, errOut)
		}
		out, errOut, code := c.cutover("abort", app, "--reason", "pager went off", "--as", "oncall")
		if code != 0 || !strings.Contains(out, "back on blue") {
			t.Fatalf("abort: exit %d, %q %q", code, out, errOut)
		}
		if code := rel.Wait(t, time.Minute); code != 4 {
			t.Fatalf("release --wait exited %d, want 4 (aborted)\n%s", code, rel.Output())
		}
		st := c.waitStatus(app, 10*time.Second, func(st workflows.Status) bool { return st.Outcome == workflows.OutcomeAborted })
		if st.Weights != (workflows.Weights{Blue: 100}) || !strings.Contains(st.Reason, "pager went off") {
			t.Errorf("after abort: %+v, %q", st.Weights, st.Reason)
		}
		_, errOut, code = c.cutover("abort", app, "--reason", "again")
		if code != 1 || !strings.Contains(errOut, "the release has ended") {
			t.Errorf("abort after the end: exit %d, %q", code, errOut)
		}
		c.waitListed(`CutoverApp="cart" AND CutoverOutcome="aborted" AND CutoverTrafficPercent=0`, 1)
		recordHistory(t, c.server, app)
	})

	t.Run("operators approve from the Temporal CLI", func(t *testing.T) {
		c.t = t
		app := "search"
		out, errOut, code := c.cutover("release", "-f", c.spec(app, "3.1.0"))
		if code != 0 || !strings.Contains(out, "started release of search 3.1.0") {
			t.Fatalf("release: exit %d, %q %q", code, out, errOut)
		}
		c.waitStatus(app, time.Minute, func(st workflows.Status) bool { return st.Waiting == "approval" })
		_, errOut, code = harness.Run(t, 30*time.Second, nil, c.server.CLI, "workflow", "update", "execute",
			"--address", c.server.Address, "--workflow-id", "release/search", "--name", "approve",
			"--input", `{"by": "ops-lead", "reason": "checked in the UI", "via": "temporal-cli"}`)
		if code != 0 {
			t.Fatalf("temporal workflow update execute: exit %d: %s", code, errOut)
		}
		st := c.waitStatus(app, time.Minute, func(st workflows.Status) bool { return st.Outcome != workflows.OutcomeRunning })
		if a := st.LastApproval(); st.Outcome != workflows.OutcomePromoted || a == nil || a.By != "ops-lead" || a.Via != "temporal-cli" {
			t.Errorf("outcome %s, approval %+v; want promoted by ops-lead via temporal-cli", st.Outcome, a)
		}
	})

	t.Run("clear errors", func(t *testing.T) {
		c.t = t
		_, errOut, code := c.cutover("status", "nosuchapp")
		if code != 1 || !strings.Contains(errOut, `no release found for app "nosuchapp"`) {
			t.Errorf("unknown app: exit %d, %q", code, errOut)
		}
		_, errOut, code = harness.Run(t, 30*time.Second, []string{"TEMPORAL_ADDRESS=127.0.0.1:1"}, c.cli, "list")
		if code != 1 || !strings.Contains(errOut, "cannot reach Temporal at 127.0.0.1:1") || strings.Count(strings.TrimSpace(errOut), "\n") > 0 {
			t.Errorf("unreachable server: exit %d, %q; want one line", code, errOut)
		}
		out, _, code := c.cutover("list")
		if code != 0 || !strings.Contains(out, "shop") || !strings.Contains(out, "cart") {
			t.Errorf("list: exit %d\n%s", code, out)
		}
	})
}

// recordHistory saves the release's history for the replay test when
// CUTOVER_RECORD_HISTORIES names a directory (make record-histories).
func recordHistory(t *testing.T, srv *harness.DevServer, app string) {
	dir := os.Getenv("CUTOVER_RECORD_HISTORIES")
	if dir == "" {
		return
	}
	c := srv.Client(t)
	it := c.GetWorkflowHistory(context.Background(), spec.WorkflowID(app), "", false, enums.HISTORY_EVENT_FILTER_TYPE_ALL_EVENT)
	hist := &historypb.History{}
	for it.HasNext() {
		ev, err := it.Next()
		if err != nil {
			t.Fatalf("history of %s: %v", app, err)
		}
		hist.Events = append(hist.Events, ev)
	}
	b, err := protojson.MarshalOptions{Indent: "  "}.Marshal(hist)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, app+".json"), b, 0o644); err != nil {
		t.Fatal(err)
	}
}

func httpGet(t *testing.T, url string) string {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %d %v: %s", url, resp.StatusCode, err, b)
	}
	return string(b)
}

// grepLines returns the lines of s that contain sub, for failure messages.
func grepLines(s, sub string) string {
	var out []string
	for l := range strings.SplitSeq(s, "\n") {
		if strings.Contains(l, sub) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}
