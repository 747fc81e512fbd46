package tests

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/cutoverhq/cutover/router"
	"github.com/cutoverhq/cutover/tests/harness"
	"github.com/cutoverhq/cutover/workflows"
)

// The analysis tests release the demo app behind the real router while a real
// Prometheus (Debian's package) scrapes the router every second, and the
// release's guard and comparison read it through PromQL. Load is 200 requests/s
// on loopback, bounded by the load generator's own limits.

const promSpec = `app: %[1]s
version: %[2]s
providers:
  environment:
    type: local
    settings:
      command: [%[3]q]
      instances: 2
      stateDir: %[4]q
      stopGrace: 5s
      env: {%[7]s}
      router: {admin: "http://%[5]s", token: {env: CUTOVER_ROUTER_TOKEN}}
  traffic:
    type: local
    settings: {router: {admin: "http://%[5]s", token: {env: CUTOVER_ROUTER_TOKEN}}}
  analysis:
    type: prometheus
    settings:
      address: %[6]s
      step: 1s
plan:
  - provision
  - validate: {smoke: [/]}
  - setWeight: 10
  - soak: {duration: 8s, interval: 1s, onInconclusive: continue}
  - setWeight: 50
  - soak: {duration: 4s, interval: 1s, onInconclusive: continue}
  - analysis: {%[8]s}
  - promote
  - standby: {duration: 1s}
  - decommission
`

// analysisStep is the plan's analysis step, as status numbers it.
const analysisStep = 7

// promApp is an app whose router Prometheus scrapes.
type promApp struct {
	*localApp
	prom *harness.Prometheus
}

// startPromApp starts the app's router and blue (with blueEnv), and a
// Prometheus scraping the router; greenEnv is the spec's env for green
// (`KEY: value, ...`).
// analysisGood is the comparison of the tests that expect a decision: up to
// three minutes, ending as soon as it is decided (a green as good as blue at
// 200 requests/s a color passes in about 90s: p99 needs that many requests).
const analysisGood = "window: 3m, earlyStop: true"

func startPromApp(t *testing.T, c *cluster, name, greenEnv string, blueEnv ...string) *promApp {
	return startPromAppWith(t, c, name, analysisGood, greenEnv, blueEnv...)
}

// startPromAppWith is startPromApp with the analysis step's settings.
func startPromAppWith(t *testing.T, c *cluster, name, analysis, greenEnv string, blueEnv ...string) *promApp {
	p := &promApp{}
	p.localApp = startLocalAppWith(t, c, name, appOptions{
		blueEnv:    blueEnv,
		routerArgs: []string{"--metrics-open"},
		spec: func(a *localApp, demo, version string) string {
			// Blue's spec, written before Prometheus starts, is read only for
			// its environment settings.
			prom := "http://127.0.0.1:9"
			if p.prom != nil {
				prom = p.prom.URL()
			}
			return fmt.Sprintf(promSpec, a.name, version, demo, a.stateDir, a.adminAddr, prom, greenEnv, analysis)
		},
	})
	p.prom = harness.StartPrometheus(t, "http://"+p.adminAddr+"/metrics")
	p.prom.WaitForTarget(t, 20*time.Second)
	return p
}

// statusText is `cutover status` as a person reads it.
func (a *localApp) statusText(t *testing.T) string {
	out, errOut, code := a.cutover(t, "status", a.name)
	if code != 0 {
		t.Fatalf("cutover status: exit %d: %s", code, errOut)
	}
	return out
}

func requireContains(t *testing.T, text string, want ...string) {
	t.Helper()
	for _, w := range want {
		if !strings.Contains(text, w) {
			t.Errorf("missing %q in:\n%s", w, text)
		}
	}
}

func TestAnalysisWithPrometheus(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end")
	}
	c := startCluster(t, "CUTOVER_ROUTER_TOKEN="+routerToken)

	t.Run("a good green passes and is promoted", func(t *testing.T) {
		c.t = t
		a := startPromApp(t, c, "an-good", "LATENCY: 10ms", "LATENCY=10ms")
		stopLoad := a.loadAt(t, 400)
		rel := harness.Start(t, "release", a.c.env, c.cli, "release", "-f", a.spec("2.0.0"), "--wait")
		if code := rel.Wait(t, 4*time.Minute); code != 0 {
			t.Fatalf("release exited %d, want 0 (promoted)\n%s\n%s", code, rel.Output(), a.statusText(t))
		}
		stopLoad().requireNoFailures(t, 3000)
		out := a.statusText(t)
		requireContains(t, out, "verdict: Pass", "error rate: Pass", "latency p50: Pass", "latency p99: Pass", "upper_bound=", "could detect")
		if st, err := a.state(); err != nil || st.Weights.Green != 0 || healthy(st.Pools[router.Blue]) != 2 {
			// After decommission the router holds the new version as blue.
			t.Errorf("router after promotion: %+v, %v", st, err)
		}
	})

	t.Run("green with 5% errors at 10% traffic is rolled back", func(t *testing.T) {
		c.t = t
		a := startPromApp(t, c, "an-errors", "ERROR_RATE: \"0.05\"")
		stopLoad := a.loadAt(t, 200)
		rel := harness.Start(t, "release", a.c.env, c.cli, "release", "-f", a.spec("2.0.0"), "--wait")
		if code := rel.Wait(t, 2*time.Minute); code != 3 {
			t.Fatalf("release exited %d, want 3 (rolled back)\n%s", code, rel.Output())
		}
		sum := stopLoad()
		if sum.byVersion["2.0.0"] == 0 {
			t.Errorf("green served nothing (%s); the test did not test the guard", sum.line)
		}
		st := c.waitStatus(a.name, 10*time.Second, func(workflows.Status) bool { return true })
		if st.Weights.Green != 0 || st.Step > 4 {
			t.Errorf("rolled back at step %d with %s; want the 10%% soak (step 4) and all traffic on blue", st.Step, st.Weights)
		}
		requireContains(t, a.statusText(t), "verdict: Fail", "error rate: Fail, critical", "green's error rate is higher than blue's", "green_rate=", "p_value=")
	})

	t.Run("green 50% slower is rolled back on latency", func(t *testing.T) {
		c.t = t
		a := startPromApp(t, c, "an-slow", "LATENCY: 30ms", "LATENCY=20ms")
		stopLoad := a.loadAt(t, 200)
		rel := harness.Start(t, "release", a.c.env, c.cli, "release", "-f", a.spec("2.0.0"), "--wait")
		if code := rel.Wait(t, 2*time.Minute); code != 3 {
			t.Fatalf("release exited %d, want 3 (rolled back)\n%s", code, rel.Output())
		}
		// The guard of the 10% soak usually catches it within seconds: a few
		// hundred requests is enough to have tested something.
		stopLoad().requireNoFailures(t, 500)
		out := a.statusText(t)
		requireContains(t, out, "verdict: Fail", "latency p50: Fail, critical", "slower than blue's", "slowdown=", "blue_p50_ms=", "green_p50_ms=")
		// The guard watches latency too: it may catch green before the
		// comparison does.
		st := c.waitStatus(a.name, 10*time.Second, func(workflows.Status) bool { return true })
		if st.Step > analysisStep {
			t.Errorf("rolled back at step %d, want the analysis (step %d) at the latest", st.Step, analysisStep)
		}
	})

	t.Run("Prometheus stopped during the comparison pauses for a person", func(t *testing.T) {
		c.t = t
		// A window without earlyStop, so that the comparison needs the end
		// of its window, which Prometheus can no longer give.
		a := startPromAppWith(t, c, "an-promdown", "window: 20s", "LATENCY: 10ms", "LATENCY=10ms")
		stopLoad := a.loadAt(t, 200)
		rel := harness.Start(t, "release", a.c.env, c.cli, "release", "-f", a.spec("2.0.0"), "--wait")
		c.waitStatus(a.name, time.Minute, func(st workflows.Status) bool { return st.Step == analysisStep })
		a.prom.Stop()
		st := c.waitStatus(a.name, time.Minute, func(st workflows.Status) bool { return st.Waiting != "" })
		if st.Weights.Green != 50 || st.Outcome != workflows.OutcomeRunning {
			t.Errorf("while waiting: %s, outcome %s; want 50%% green, still running", st.Weights, st.Outcome)
		}
		requireContains(t, a.statusText(t), "verdict: Inconclusive", "could not be read")
		if _, errOut, code := a.cutover(t, "approve", a.name, "--operator", "tester", "--as", "tester"); code != 0 {
			t.Fatalf("approve: %s", errOut)
		}
		if code := rel.Wait(t, time.Minute); code != 0 {
			t.Fatalf("release exited %d, want 0 (promoted after approval)\n%s", code, rel.Output())
		}
		stopLoad().requireNoFailures(t, 3000)
	})

	t.Run("no traffic at all is inconclusive and never promoted", func(t *testing.T) {
		c.t = t
		a := startPromApp(t, c, "an-idle", "")
		rel := harness.Start(t, "release", a.c.env, c.cli, "release", "-f", a.spec("2.0.0"), "--wait")
		st := c.waitStatus(a.name, time.Minute, func(st workflows.Status) bool { return st.Waiting != "" })
		if st.Weights.Green != 10 || st.Outcome != workflows.OutcomeRunning {
			t.Errorf("while waiting: %s, outcome %s; want 10%% green, still running", st.Weights, st.Outcome)
		}
		requireContains(t, a.statusText(t), "verdict: Inconclusive", "error rate: Inconclusive", "has no data")
		// Nothing moves on its own: a few seconds later it still waits at 10%.
		time.Sleep(3 * time.Second)
		if st := c.waitStatus(a.name, 10*time.Second, func(workflows.Status) bool { return true }); st.Weights.Green != 10 || st.Waiting == "" {
			t.Errorf("after waiting: %s, waiting %q; want it still held at 10%%", st.Weights, st.Waiting)
		}
		if _, errOut, code := a.cutover(t, "abort", a.name, "--reason", "no traffic to judge"); code != 0 {
			t.Fatalf("abort: %s", errOut)
		}
		if code := rel.Wait(t, time.Minute); code != 4 {
			t.Fatalf("release exited %d, want 4 (aborted)\n%s", code, rel.Output())
		}
	})
}
