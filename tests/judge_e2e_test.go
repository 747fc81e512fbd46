package tests

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"regexp"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cutoverhq/cutover/loadgen"
	"github.com/cutoverhq/cutover/tests/harness"
	"github.com/cutoverhq/cutover/workflows"
)

// The judge's end-to-end tests release the demo app with the demo's own
// release.yaml (deploy/demo), rendered for each test's router, demo binary and
// state folder and without its database block, through the real router, demo
// app and worker, under load from the load generator on loopback. They check
// the decisions a user sees: a good green promoted when both colors fail
// 0.5% of requests, a green 3 points worse rolled back and how fast, and a
// green whose p99 is 20 times blue's never promoted.

// demoRelease renders deploy/demo/<file> for a test app: its app name,
// version, router, binary and state folder, with soak durations set to soak
// (when not empty), green's environment extended by greenEnv (`KEY: value,
// ...`), and the database block removed as demo.sh removes it without
// PostgreSQL.
func demoRelease(t *testing.T, file, soak, greenEnv string) func(a *localApp, demo, version string) string {
	raw, err := os.ReadFile("../deploy/demo/" + file)
	if err != nil {
		t.Fatal(err)
	}
	db := regexp.MustCompile(`(?s)\n  # >>> database.*# <<< database\n`)
	return func(a *localApp, demo, version string) string {
		s := db.ReplaceAllString(string(raw), "\n")
		for _, r := range []struct{ re, with string }{
			{`(?m)^app: .*$`, "app: " + a.name},
			{`(?m)^version: .*$`, "version: " + version},
			{`(?m)^previousVersion: .*$`, "previousVersion: 1.0.0"},
			{`127\.0\.0\.1:8081`, a.adminAddr},
			{`\./bin/demo-app`, demo},
			{`\.cache/demo/pools`, a.stateDir},
		} {
			s = regexp.MustCompile(r.re).ReplaceAllLiteralString(s, r.with)
		}
		if soak != "" {
			s = regexp.MustCompile(`soak: \{duration: \w+,`).ReplaceAllString(s, "soak: {duration: "+soak+",")
		}
		if greenEnv != "" {
			s = regexp.MustCompile(`(?m)^(      env: \{[^}]*)\}`).ReplaceAllString(s, "${1}, "+greenEnv+"}")
		}
		return s
	}
}

// demoLoad sends rate requests/s to the app for at most d (bounded in count
// too) in the test process, calling onResult for each answer, until stop.
func demoLoad(t testing.TB, a *localApp, rate int, d time.Duration, onResult func(loadgen.Result)) (stop func() loadgen.Summary) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan loadgen.Summary, 1)
	go func() {
		s, err := loadgen.Run(ctx, loadgen.Config{URL: "http://" + a.listen + "/", Rate: rate, Duration: d, MaxRequests: rate * int(d.Seconds())}, onResult)
		if err != nil && ctx.Err() == nil {
			t.Errorf("load: %v", err)
		}
		done <- s
	}()
	var once sync.Once
	var sum loadgen.Summary
	stopFn := func() loadgen.Summary {
		once.Do(func() { cancel(); sum = <-done })
		return sum
	}
	t.Cleanup(func() { stopFn() })
	return stopFn
}

// demoApp starts an app running the demo's release.yaml, with blue given
// blueEnv (`KEY=value`) besides the demo's latency.
func demoApp(t *testing.T, c *cluster, name string, spec func(a *localApp, demo, version string) string, blueEnv ...string) *localApp {
	return startLocalAppWith(t, c, name, appOptions{
		spec:    spec,
		blueEnv: append([]string{"LATENCY=5ms", "LATENCY_JITTER=2ms"}, blueEnv...),
	})
}

// TestGoodReleaseWithErrorsOnBothColors is the release that the fixed-limit
// guard used to roll back: both colors answer 0.5% of requests with a 500,
// the demo's plan with 60s soaks, 300 requests/s. It must be promoted, three
// runs out of three: the soaks find no difference and go on (at 10% there is
// too little traffic to show green within +0.4 points), and the comparison at
// 50% passes. The three runs are independent apps released at the same time
// (go test runs only GOMAXPROCS parallel subtests, so they are goroutines).
func TestGoodReleaseWithErrorsOnBothColors(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end")
	}
	c := startCluster(t, "CUTOVER_ROUTER_TOKEN="+routerToken)
	const runs = 3
	apps := make([]*localApp, runs)
	for i := range apps {
		apps[i] = demoApp(t, c, fmt.Sprintf("judge-good-%d", i+1), demoRelease(t, "release.yaml", "60s", `ERROR_RATE: "0.005"`), "ERROR_RATE=0.005")
	}
	var wg sync.WaitGroup
	for i, a := range apps {
		wg.Go(func() { goodRelease(goroutineTB{t, fmt.Sprintf("run %d: ", i+1)}, c, a) })
	}
	wg.Wait()
}

// goodRelease releases a to promotion, approving at the gate, and checks
// what the person reading `cutover status` sees.
func goodRelease(t goroutineTB, c *cluster, a *localApp) {
	stop := demoLoad(t, a, 300, 10*time.Minute, nil)
	rel := harness.Start(t, "release "+a.name, c.env, c.cli, "release", "-f", a.spec("2.0.0"), "--wait")
	status := func() (workflows.Status, string) {
		var st workflows.Status
		out, _, code := harness.Run(t, 30*time.Second, c.env, c.cli, "status", a.name, "--json")
		if code == 0 {
			_ = json.Unmarshal([]byte(out), &st)
		}
		text, _, _ := harness.Run(t, 30*time.Second, c.env, c.cli, "status", a.name)
		return st, text
	}
	deadline := time.Now().Add(8 * time.Minute)
	for {
		st, text := status()
		if st.Waiting == "approval" {
			harness.Run(t, 30*time.Second, c.env, c.cli, "approve", a.name, "--operator", "operator", "--as", "operator", "--reason", "numbers look good")
			break
		}
		if st.Outcome != "" && st.Outcome != workflows.OutcomeRunning || st.Waiting != "" {
			t.Fatalf("%s (waiting %q) before the approval gate:\n%s", st.Outcome, st.Waiting, text)
		}
		if time.Now().After(deadline) {
			t.Fatalf("never reached the approval gate:\n%s", text)
		}
		time.Sleep(time.Second)
	}
	if code := rel.Wait(t, 2*time.Minute); code != 0 {
		_, text := status()
		t.Fatalf("release exited %d, want 0 (promoted)\n%s\n%s", code, rel.Output(), text)
	}
	sum := stop()
	_, out := status()
	t.Logf("load: %s\n%s", sum, out)
	for _, want := range []string{"verdict: Pass", "error rate: Pass", "latency p99: Pass", "within the allowed +0.40 points", "continuing as the plan says"} {
		if !strings.Contains(out, want) {
			t.Errorf("missing %q in:\n%s", want, out)
		}
	}
	if sum.Failed == 0 || sum.Failed > sum.Sent/50 {
		t.Errorf("%d of %d requests failed; want about 0.5%%: the test did not run what it says", sum.Failed, sum.Sent)
	}
}

// goroutineTB is the test's T for a goroutine the test started: a fatal
// error ends that goroutine (not the test's), after marking the test failed,
// and every message names the goroutine.
type goroutineTB struct {
	*testing.T
	prefix string
}

func (g goroutineTB) Fatalf(format string, args ...any) {
	g.T.Helper()
	g.T.Errorf(g.prefix+format, args...)
	runtime.Goexit()
}

func (g goroutineTB) Fatal(args ...any) {
	g.T.Helper()
	g.T.Error(append([]any{g.prefix}, args...)...)
	runtime.Goexit()
}

func (g goroutineTB) FailNow() {
	g.T.Fail()
	runtime.Goexit()
}

func (g goroutineTB) Errorf(format string, args ...any) {
	g.T.Helper()
	g.T.Errorf(g.prefix+format, args...)
}

func (g goroutineTB) Logf(format string, args ...any) {
	g.T.Helper()
	g.T.Logf(g.prefix+format, args...)
}

// TestGreenThreePointsWorseRollsBack: green answers 3.5% of requests with a
// 500 where blue answers 0.5%. The guard of the 10% soak rolls it back; the
// time from green's first error to all traffic on blue is recorded.
func TestGreenThreePointsWorseRollsBack(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end")
	}
	c := startCluster(t, "CUTOVER_ROUTER_TOKEN="+routerToken)
	a := demoApp(t, c, "judge-errors", demoRelease(t, "release.yaml", "60s", `ERROR_RATE: "0.035"`), "ERROR_RATE=0.005")
	var mu sync.Mutex
	var firstErr time.Time
	stop := demoLoad(t, a, 200, 5*time.Minute, func(r loadgen.Result) {
		if r.Version == "2.0.0" && r.Status == 500 {
			mu.Lock()
			if end := r.Start.Add(r.Latency); firstErr.IsZero() || end.Before(firstErr) {
				firstErr = end
			}
			mu.Unlock()
		}
	})
	rel := harness.Start(t, "release", c.env, c.cli, "release", "-f", a.spec("2.0.0"), "--wait")
	c.waitStatus(a.name, 2*time.Minute, func(st workflows.Status) bool { return st.Stage == "soak" && st.Weights.Green == 10 })
	var blueAt time.Time
	waitFor(t, 90*time.Second, "all traffic back on blue", func() bool {
		st, err := a.state()
		if err == nil && st.Weights.Green == 0 {
			blueAt = time.Now()
			return true
		}
		return false
	})
	if code := rel.Wait(t, time.Minute); code != 3 {
		t.Fatalf("release exited %d, want 3 (rolled back)\n%s", code, rel.Output())
	}
	sum := stop()
	mu.Lock()
	first := firstErr
	mu.Unlock()
	if first.IsZero() {
		t.Fatalf("green never answered a 500 (%s): the test measured nothing", sum)
	}
	t.Logf("from green's first 500 to all traffic on blue: %s (load: %s)", blueAt.Sub(first).Round(time.Millisecond), sum)
	out := a.statusText(t)
	t.Logf("%s", out)
	requireContains(t, out, "verdict: Fail", "error rate: Fail, critical", "green's error rate is higher than blue's", "p_value=")
	if st := c.waitStatus(a.name, 10*time.Second, func(workflows.Status) bool { return true }); st.Step != 5 {
		t.Errorf("rolled back at step %d, want the 10%% soak (step 5)\n%s", st.Step, out)
	}
}

// TestGreenWithASlowTailIsNeverPromoted: 2% of green's requests take 20
// times as long (100ms instead of 5ms); its median is blue's. It must never
// be promoted: rolled back, or held as Inconclusive (then aborted here).
func TestGreenWithASlowTailIsNeverPromoted(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end")
	}
	c := startCluster(t, "CUTOVER_ROUTER_TOKEN="+routerToken)
	a := demoApp(t, c, "judge-tail", demoRelease(t, "release.yaml", "60s", `SLOW_RATE: "0.02", SLOW_LATENCY: 100ms`))
	stop := demoLoad(t, a, 200, 6*time.Minute, nil)
	rel := harness.Start(t, "release", c.env, c.cli, "release", "-f", a.spec("2.0.0"), "--wait")
	st := c.waitStatus(a.name, 5*time.Minute, func(st workflows.Status) bool {
		return st.Outcome != workflows.OutcomeRunning || strings.HasPrefix(st.Waiting, "a decision") || st.Waiting == "approval"
	})
	if st.Outcome == workflows.OutcomeRunning {
		if st.Waiting == "approval" {
			t.Fatalf("the slow green reached the approval gate: %s\n%s", st.LastVerdict, a.statusText(t))
		}
		t.Logf("held for a decision: %s", st.Waiting)
		if _, errOut, code := a.cutover(t, "abort", a.name, "--reason", "slow tail"); code != 0 {
			t.Fatalf("abort: %s", errOut)
		}
	}
	code := rel.Wait(t, time.Minute)
	stop()
	out := a.statusText(t)
	t.Logf("%s", out)
	if code == 0 {
		t.Fatalf("a green with 2%% of requests 20x slower was promoted\n%s", out)
	}
	if code == 3 {
		requireContains(t, out, "latency p99: Fail")
	}
}
