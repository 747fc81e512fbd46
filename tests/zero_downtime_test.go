package tests

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/cutoverhq/cutover/router"
	"github.com/cutoverhq/cutover/tests/harness"
	"github.com/cutoverhq/cutover/workflows"
)

// The zero-downtime tests release the demo app through the real router under a
// constant load of 500 requests/s from the load generator (loopback only,
// bounded in count and time) and require that no request fails.

const routerToken = "zero-downtime-test-token"

const localSpec = `app: %[1]s
version: %[2]s
providers:
  environment:
    type: local
    settings:
      command: [%[3]q]
      instances: 2
      stateDir: %[4]q
      stopGrace: 5s
      router: {admin: "http://%[5]s", token: {env: CUTOVER_ROUTER_TOKEN}}
  traffic:
    type: local
    settings: {router: {admin: "http://%[5]s", token: {env: CUTOVER_ROUTER_TOKEN}}}
  analysis:
    type: local
    settings: {router: {admin: "http://%[5]s", token: {env: CUTOVER_ROUTER_TOKEN}}}
plan:
  - provision
  - validate: {smoke: [/]}
  - setWeight: 10
  - soak: {duration: 3s, interval: 1s}
  - setWeight: 50
  - soak: {duration: 4s, interval: 1s}
  - analysis: {window: 1s}
  - approval: {timeout: 5m}
  - promote
  - standby: {duration: 2s}
  - decommission
`

// localApp is one app behind its own router process, with blue running.
type localApp struct {
	c         *cluster
	name      string
	listen    string
	adminAddr string
	stateDir  string
	spec      func(version string) string
}

func startLocalApp(t *testing.T, c *cluster, name string) *localApp {
	return startLocalAppWith(t, c, name, appOptions{})
}

// appOptions vary the app for a scenario.
type appOptions struct {
	// spec renders the release spec (default: localSpec) from the demo app's
	// path and the app's addresses.
	spec func(a *localApp, demo, version string) string
	// blueEnv is extra environment for blue's instances (LATENCY=...).
	blueEnv []string
	// routerArgs are extra flags for `cutover router`.
	routerArgs []string
}

func startLocalAppWith(t *testing.T, c *cluster, name string, o appOptions) *localApp {
	demo := harness.Binary(t, "DEMO_APP_BIN", "./deploy/demo-app")
	a := &localApp{
		c: c, name: name,
		listen:    fmt.Sprintf("127.0.0.1:%d", harness.FreePort(t)),
		adminAddr: fmt.Sprintf("127.0.0.1:%d", harness.FreePort(t)),
		stateDir:  t.TempDir(),
	}
	if o.spec == nil {
		o.spec = func(a *localApp, demo, version string) string {
			return fmt.Sprintf(localSpec, a.name, version, demo, a.stateDir, a.adminAddr)
		}
	}
	dir := t.TempDir()
	a.spec = func(version string) string {
		path := filepath.Join(dir, "release-"+version+".yaml")
		if err := os.WriteFile(path, []byte(o.spec(a, demo, version)), 0o644); err != nil {
			t.Fatal(err)
		}
		return path
	}
	harness.Start(t, "router "+name, []string{"CUTOVER_ROUTER_TOKEN=" + routerToken}, c.cli,
		append([]string{"router", "--app", name, "--listen", a.listen, "--admin", a.adminAddr, "--health-interval", "200ms"}, o.routerArgs...)...)
	waitFor(t, 10*time.Second, "the router's admin API", func() bool {
		_, err := a.state()
		return err == nil
	})
	// Blue's instances inherit the environment of `cutover local start`.
	env := append(append([]string{}, a.c.env...), "CUTOVER_ROUTER_TOKEN="+routerToken)
	out, errOut, code := harness.Run(t, time.Minute, append(env, o.blueEnv...), c.cli, "local", "start", "-f", a.spec("1.0.0"), "--version", "1.0.0")
	if code != 0 {
		t.Fatalf("cutover local start: exit %d: %s %s", code, out, errOut)
	}
	// Every instance any release starts is stopped when the test ends.
	t.Cleanup(func() { a.cutover(t, "local", "stop", "-f", a.spec("1.0.0")) })
	waitFor(t, 10*time.Second, "blue to be healthy", func() bool {
		st, err := a.state()
		return err == nil && healthy(st.Pools[router.Blue]) == 2
	})
	return a
}

func (a *localApp) cutover(t *testing.T, args ...string) (string, string, int) {
	return harness.Run(t, time.Minute, append(a.c.env, "CUTOVER_ROUTER_TOKEN="+routerToken), a.c.cli, args...)
}

func (a *localApp) state() (router.State, error) {
	return router.NewClient("http://"+a.adminAddr, routerToken).State(context.Background())
}

// kill sends SIGKILL to every instance of a pool, as a crash would, and returns
// how many it killed. The pool's state file says which processes they are.
func (a *localApp) kill(t *testing.T, color string) int {
	b, err := os.ReadFile(filepath.Join(a.stateDir, a.name, color+".json"))
	if err != nil {
		t.Fatalf("read the %s pool state: %v", color, err)
	}
	var pool struct {
		Instances []struct {
			PID int `json:"pid"`
		} `json:"instances"`
	}
	if err := json.Unmarshal(b, &pool); err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, in := range pool.Instances {
		if syscall.Kill(in.PID, syscall.SIGKILL) == nil {
			n++
		}
	}
	return n
}

func healthy(pool []router.Instance) int {
	n := 0
	for _, in := range pool {
		if in.Healthy && !in.Ejected {
			n++
		}
	}
	return n
}

// served returns how many user requests each color has answered so far, from
// the router's metrics.
func (a *localApp) served(t *testing.T) map[string]float64 {
	req, _ := http.NewRequest(http.MethodGet, "http://"+a.adminAddr+"/metrics", nil)
	req.Header.Set("Authorization", "Bearer "+routerToken)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("router metrics: %v", err)
	}
	defer resp.Body.Close()
	re := regexp.MustCompile(`^cutover_router_requests_total\{.*color="(\w+)".*\} (\S+)$`)
	out := map[string]float64{}
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		if m := re.FindStringSubmatch(sc.Text()); m != nil {
			v, _ := strconv.ParseFloat(m[2], 64)
			out[m[1]] += v
		}
	}
	return out
}

// load runs the load generator as a process at 500 requests/s (at most 120,000
// requests, at most four minutes) until stop is called, which returns its summary.
func (a *localApp) load(t *testing.T) (stop func() loadSummary) {
	return a.loadAt(t, 500)
}

// loadAt is load at rate requests/s, at most four minutes (a comparison that
// must see enough traffic to pass takes a minute or two).
func (a *localApp) loadAt(t *testing.T, rate int) (stop func() loadSummary) {
	bin := harness.Binary(t, "LOADGEN_BIN", "./loadgen/cmd/loadgen")
	p := harness.Start(t, "loadgen", nil, bin, "-url", "http://"+a.listen+"/", "-rate", strconv.Itoa(rate),
		"-duration", "4m", "-max", strconv.Itoa(rate*240), "-progress", "0")
	return func() loadSummary {
		p.Stop(10 * time.Second)
		p.Wait(t, 10*time.Second)
		return parseSummary(t, p.Output())
	}
}

type loadSummary struct {
	sent, ok, failed, connErrors int
	byVersion                    map[string]int
	line                         string
}

func parseSummary(t *testing.T, out string) loadSummary {
	re := regexp.MustCompile(`sent=(\d+) ok=(\d+) failed=(\d+) conn_errors=(\d+) .*by_version=(\S*)`)
	m := re.FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("no summary in the load generator's output:\n%s", out)
	}
	n := func(s string) int { v, _ := strconv.Atoi(s); return v }
	s := loadSummary{sent: n(m[1]), ok: n(m[2]), failed: n(m[3]), connErrors: n(m[4]), byVersion: map[string]int{}, line: m[0]}
	for kv := range strings.SplitSeq(m[5], ",") {
		if k, v, ok := strings.Cut(kv, ":"); ok {
			s.byVersion[k] = n(v)
		}
	}
	return s
}

func (s loadSummary) requireNoFailures(t *testing.T, minSent int) {
	t.Helper()
	t.Logf("load: %s", s.line)
	if s.failed != 0 || s.connErrors != 0 {
		t.Errorf("%d requests failed and %d could not connect, want 0: %s", s.failed, s.connErrors, s.line)
	}
	if s.sent < minSent || s.ok != s.sent {
		t.Errorf("sent %d, ok %d; want at least %d, all ok", s.sent, s.ok, minSent)
	}
}

func waitFor(t *testing.T, within time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", within, what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func TestZeroDowntime(t *testing.T) {
	c := startCluster(t, "CUTOVER_ROUTER_TOKEN="+routerToken)

	t.Run("full release under load drops no request", func(t *testing.T) {
		c.t = t
		a := startLocalApp(t, c, "zd-full")
		stopLoad := a.load(t)
		rel := harness.Start(t, "release", a.c.env, c.cli, "release", "-f", a.spec("2.0.0"), "--wait")

		// The split at 50%, measured by the router over the 50% soak.
		c.waitStatus(a.name, time.Minute, func(st workflows.Status) bool { return st.Step == 6 })
		before := a.served(t)
		c.waitStatus(a.name, time.Minute, func(st workflows.Status) bool { return st.Step >= 7 })
		after := a.served(t)
		green, blue := after["green"]-before["green"], after["blue"]-before["blue"]
		if share := 100 * green / (green + blue); green+blue < 1000 || share < 45 || share > 55 {
			t.Errorf("during the 50%% soak green served %.0f of %.0f requests (%.1f%%), want 50%% ± 5", green, green+blue, share)
		}

		c.waitStatus(a.name, time.Minute, func(st workflows.Status) bool { return st.Waiting == "approval" })
		if _, errOut, code := a.cutover(t, "approve", a.name, "--operator", "tester", "--as", "tester"); code != 0 {
			t.Fatalf("approve: %s", errOut)
		}
		if code := rel.Wait(t, 2*time.Minute); code != 0 {
			t.Fatalf("release exited %d, want 0 (promoted)\n%s", code, rel.Output())
		}
		// Blue's old processes are gone; the new version serves everyone.
		time.Sleep(500 * time.Millisecond)
		sum := stopLoad()
		sum.requireNoFailures(t, 5000)
		if sum.byVersion["1.0.0"] == 0 || sum.byVersion["2.0.0"] == 0 {
			t.Errorf("by version %v: want both versions to have served", sum.byVersion)
		}
		st, err := a.state()
		if err != nil || st.Weights.Blue != 100 || len(st.Pools[router.Green]) != 0 || healthy(st.Pools[router.Blue]) != 2 {
			t.Errorf("router after the release: %+v, %v", st, err)
		}
	})

	t.Run("abort at 50% under load drops no request", func(t *testing.T) {
		c.t = t
		a := startLocalApp(t, c, "zd-abort")
		stopLoad := a.load(t)
		rel := harness.Start(t, "release", a.c.env, c.cli, "release", "-f", a.spec("2.0.0"), "--wait")
		c.waitStatus(a.name, time.Minute, func(st workflows.Status) bool { return st.Step == 6 && st.Weights.Green == 50 })
		if _, errOut, code := a.cutover(t, "abort", a.name, "--reason", "test abort"); code != 0 {
			t.Fatalf("abort: %s", errOut)
		}
		st, err := a.state()
		if err != nil || st.Weights.Green != 0 {
			t.Errorf("router when abort answered: %+v, %v; want all traffic on blue", st.Weights, err)
		}
		if code := rel.Wait(t, time.Minute); code != 4 {
			t.Fatalf("release exited %d, want 4 (aborted)\n%s", code, rel.Output())
		}
		sum := stopLoad()
		sum.requireNoFailures(t, 1500)
		if st, err := a.state(); err != nil || len(st.Pools[router.Green]) != 0 {
			t.Errorf("green pool after the abort: %+v, %v; want empty", st.Pools, err)
		}
	})

	t.Run("green killed at 50% drops no request and rolls back", func(t *testing.T) {
		c.t = t
		a := startLocalApp(t, c, "zd-kill")
		stopLoad := a.load(t)
		rel := harness.Start(t, "release", a.c.env, c.cli, "release", "-f", a.spec("2.0.0"), "--wait")
		c.waitStatus(a.name, time.Minute, func(st workflows.Status) bool { return st.Step == 6 && st.Weights.Green == 50 })
		if killed := a.kill(t, "green"); killed != 2 {
			t.Fatalf("killed %d green instances, want 2", killed)
		}
		if code := rel.Wait(t, time.Minute); code != 3 {
			t.Fatalf("release exited %d, want 3 (rolled back)\n%s", code, rel.Output())
		}
		sum := stopLoad()
		sum.requireNoFailures(t, 1500)
		out, _, _ := a.cutover(t, "status", a.name)
		if !strings.Contains(out, "green health: Fail") || !strings.Contains(out, " instances=2") {
			t.Errorf("status does not show the guard's numbers:\n%s", out)
		}
	})
}
