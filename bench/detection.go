package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/cutoverhq/cutover/loadgen"
	"github.com/cutoverhq/cutover/workflows"
)

// Section 4: detection time. A green that starts answering every request with a
// 500 while its health checks stay green (demo-app ERROR_RATE=1 with
// ERROR_AFTER), at 10% of 200 requests/s, guarded every second by the scrape
// analysis provider reading the router's /metrics: the demo's setup. Only the
// metrics judge can catch this green; the router's health checks never do.

// detectProviders is providersYAML with the scrape analysis and a green that
// goes bad errorAfter after it starts: %[1]s the demo app, %[2]s the state
// directory, %[3]s the router's admin address, %[4]s ERROR_AFTER.
const detectProviders = `providers:
  environment:
    type: local
    settings:
      command: [%[1]q]
      instances: 2
      stateDir: %[2]q
      stopGrace: 5s
      env: {ERROR_RATE: "1", ERROR_AFTER: %[4]q}
      router: {admin: "http://%[3]s", token: {env: CUTOVER_ROUTER_TOKEN}}
  traffic:
    type: local
    settings: {router: {admin: "http://%[3]s", token: {env: CUTOVER_ROUTER_TOKEN}}}
  analysis:
    type: scrape
    settings:
      url: "http://%[3]s/metrics"
      token: {env: CUTOVER_ROUTER_TOKEN}
`

// detectPlan soaks at 10% far longer than green stays good.
const detectPlan = `plan:
  - provision
  - validate: {smoke: [/]}
  - setWeight: 10
  - soak: {duration: 10m, interval: 1s}
  - promote
`

// detectErrorAfter leaves provision, validate and the weight change time to
// finish before green goes bad, so that the guard is already watching.
const detectErrorAfter = 6 * time.Second

type detectSample struct {
	firstError time.Duration // green's first 500 → the router reports green weight 0
	lastGreen  time.Duration // green's first 500 → the last request green served
	greenErrs  int           // 500s users got from green
	verdict    string
}

func (c *cluster) benchDetection(ctx context.Context, cfg config) (string, error) {
	var samples []detectSample
	for i := 1; i <= cfg.detections; i++ {
		s, err := c.detectOnce(ctx, i)
		if err != nil {
			return "", fmt.Errorf("run %d: %w", i, err)
		}
		logf("detection %d/%d: traffic 100%% blue %s after green's first 500 (%d 500s from green; %s)", i, cfg.detections, fd(s.firstError), s.greenErrs, s.verdict)
		samples = append(samples, s)
	}
	return detectionReport(cfg, samples), nil
}

func (c *cluster) detectOnce(ctx context.Context, i int) (detectSample, error) {
	var s detectSample
	version := fmt.Sprintf("4.0.%d", i)
	// Green goes bad at a different point of the guard's 1s cycle in each run
	// (50ms apart), so that the figures cover every phase, not one.
	errorAfter := detectErrorAfter + time.Duration((i-1)%20)*50*time.Millisecond
	body := fmt.Sprintf("app: %s\nversion: %s\n", benchApp, version) +
		fmt.Sprintf(detectProviders, c.demo, c.stateDir, c.admin, errorAfter.String()) + detectPlan
	spec := filepath.Join(c.dir, "detect-"+version+".yaml")
	if err := os.WriteFile(spec, []byte(body), 0o644); err != nil {
		return s, err
	}

	// Load for the whole run; every answer names the version that served it
	// (demo-app puts it in the body, 500s included).
	loadCtx, stopLoad := context.WithCancel(ctx)
	defer stopLoad()
	var mu sync.Mutex
	var firstErr, lastGreen time.Time
	loadDone := make(chan error, 1)
	go func() {
		_, err := loadgen.Run(loadCtx, loadgen.Config{URL: "http://" + c.listen + "/", Rate: 200, Duration: 2 * time.Minute, MaxRequests: 24000},
			func(r loadgen.Result) {
				if r.Version != version {
					return
				}
				mu.Lock()
				defer mu.Unlock()
				end := r.Start.Add(r.Latency)
				if end.After(lastGreen) {
					lastGreen = end
				}
				if r.Status == 500 {
					s.greenErrs++
					if firstErr.IsZero() || end.Before(firstErr) {
						firstErr = end
					}
				}
			})
		loadDone <- err
	}()

	rel, err := c.ps.Start(fmt.Sprintf("cutover release (detection run %d)", i), c.env, c.cli, "release", "-f", spec, "--wait", "--by", "bench")
	if err != nil {
		return s, err
	}
	defer rel.Stop(10 * time.Second)
	if _, err := c.waitStatus(ctx, 2*time.Minute, "the 10% soak", rel, func(st workflows.Status) bool {
		return st.Stage == "soak" && st.Weights.Green == 10
	}); err != nil {
		return s, err
	}
	// Poll the router every millisecond until green is at 0.
	var zeroAt time.Time
	deadline := time.Now().Add(time.Minute)
	for zeroAt.IsZero() {
		st, err := c.router.State(ctx)
		if err == nil && st.Weights.Green == 0 {
			zeroAt = time.Now()
			break
		}
		if time.Now().After(deadline) {
			return s, fmt.Errorf("green never went back to 0%% within a minute; worker output:\n%s", tail(c.worker.Output(), 3000))
		}
		time.Sleep(time.Millisecond)
	}
	code, err := waitExit(ctx, rel, 2*time.Minute)
	if err != nil {
		return s, err
	}
	// Requests in flight at the weight change finish on green: give them a moment.
	time.Sleep(200 * time.Millisecond)
	stopLoad()
	if err := <-loadDone; err != nil && ctx.Err() == nil && !strings.Contains(err.Error(), "context canceled") {
		return s, fmt.Errorf("load: %w", err)
	}
	if code != 3 {
		return s, fmt.Errorf("cutover release --wait exited %d, want 3 (rolled back); output:\n%s", code, tail(rel.Output(), 3000))
	}
	mu.Lock()
	defer mu.Unlock()
	if firstErr.IsZero() {
		return s, fmt.Errorf("green never answered a 500: the run measured nothing")
	}
	s.firstError, s.lastGreen = zeroAt.Sub(firstErr), lastGreen.Sub(firstErr)
	st, err := c.status(ctx)
	if err != nil {
		return s, err
	}
	if st.Outcome != workflows.OutcomeRolledBack {
		return s, fmt.Errorf("outcome %s, want rolled_back (%s)", st.Outcome, st.Reason)
	}
	if st.LastVerdict != nil {
		s.verdict = st.LastVerdict.Summary
	}
	return s, nil
}

func detectionReport(cfg config, samples []detectSample) string {
	var b strings.Builder
	fmt.Fprintf(&b, "## 4. Detection time\n\n")
	fmt.Fprintf(&b, "Reproduce: `make temporal && go run ./bench -sections detection -detections %d`\n\n", cfg.detections)
	fmt.Fprintf(&b, "The same cluster as section 2, with the demo's analysis: the `scrape` provider reading the router's `/metrics` "+
		"and the judge's defaults (green's error rate and its p50, p95 and p99 latency against blue's, with the sequential tests of section 6, "+
		"alpha 0.01 for all four together). "+
		"An in-process load generator sends 200 requests/s to the router, as `make demo` does, and notes which version answered each. "+
		"Each run releases a green (`ERROR_RATE=1`, `ERROR_AFTER=%s` plus 50ms more in each run, so that green goes bad at 20 different "+
		"points of the guard's 1s cycle) that answers 500 to every request from then on, "+
		"while its `/healthz` stays ok, and soaks at 10%% with `interval: 1s`. *Detection* runs from the moment the first 500 from green "+
		"reached the load generator to the first poll (every 1ms) of the router's admin API that shows green at 0%%: all traffic back "+
		"on blue.\n\n", detectErrorAfter)
	var det, last []time.Duration
	errs := 0
	for _, s := range samples {
		det, last = append(det, s.firstError), append(last, s.lastGreen)
		errs += s.greenErrs
	}
	b.WriteString("| from green's first 500 to | runs | min | p50 | p90 | p99 | max |\n|---|---:|---:|---:|---:|---:|---:|\n")
	row := func(name string, d []time.Duration) {
		s := slices.Clone(d)
		slices.Sort(s)
		fmt.Fprintf(&b, "| %s | %d | %s | %s | %s | %s | %s |\n", name, len(s), fd(s[0]), fd(percentile(s, 50)), fd(percentile(s, 90)),
			fd(percentile(s, 99)), fd(s[len(s)-1]))
	}
	row("**traffic 100% on blue**", det)
	row("the last response green served", last)
	fmt.Fprintf(&b, "\nPercentiles are nearest-rank (with fewer than 100 runs, p99 is the maximum). Users got %d 500s from green over the %d runs "+
		"(%.0f per run: 20 requests/s reach green).\n\n", errs, len(samples), float64(errs)/float64(len(samples)))
	if len(samples) <= 30 {
		b.WriteString("Each run in order: ")
		for i, s := range samples {
			if i > 0 {
				b.WriteString(", ")
			}
			b.WriteString(fd(s.firstError))
		}
		b.WriteString(".\n\n")
	}
	return b.String()
}
