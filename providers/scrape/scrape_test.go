package scrape

import (
	"context"
	"errors"
	"io"
	"math"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cutoverhq/cutover/providers"
	"github.com/cutoverhq/cutover/router"
)

const routerToken = "scrape-test-token"

var ref = providers.Ref{App: "demo", Version: "v2", PreviousVersion: "v1"}

// newBackend is a real instance on loopback: healthy, answering 200, or 500 on
// every tenth request when failEvery10.
func newBackend(t *testing.T, failEvery10 bool) *httptest.Server {
	t.Helper()
	var n atomic.Int64
	s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		if req.URL.Path == "/healthz" {
			_, _ = io.WriteString(w, "ok")
			return
		}
		if failEvery10 && n.Add(1)%10 == 0 {
			http.Error(w, "boom", http.StatusInternalServerError)
			return
		}
		_, _ = io.WriteString(w, "hello")
	}))
	t.Cleanup(s.Close)
	return s
}

// testRouter is a real router in this process with a blue and a green
// backend, half the traffic on each.
type testRouter struct {
	r          *router.Router
	metricsURL string
	tokenFile  string
}

func startRouter(t *testing.T, badGreen bool) *testRouter {
	t.Helper()
	blue, green := newBackend(t, false), newBackend(t, badGreen)
	r, err := router.New(router.Config{App: "demo", Listen: "127.0.0.1:0", Admin: "127.0.0.1:0",
		Token: routerToken, HealthInterval: 200 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	if err := r.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = r.Shutdown(ctx)
	})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c := router.NewClient("http://"+r.AdminAddr(), routerToken)
	for color, s := range map[string]*httptest.Server{router.Blue: blue, router.Green: green} {
		if err := c.SetPool(ctx, color, []string{s.URL}); err != nil {
			t.Fatal(err)
		}
	}
	if err := c.SetWeight(ctx, 50); err != nil {
		t.Fatal(err)
	}
	tokenFile := filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(tokenFile, []byte(routerToken+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return &testRouter{r: r, metricsURL: "http://" + r.AdminAddr() + "/metrics", tokenFile: tokenFile}
}

// settings are the provider's settings for the router, with a step.
func (tr *testRouter) settings(step string) map[string]any {
	return map[string]any{"url": tr.metricsURL, "token": map[string]any{"file": tr.tokenFile}, "step": step}
}

// drive sends user traffic through the router (about 200 requests a second,
// at most max) until the returned stop is called; stop waits for it and
// returns how many requests were sent.
func (tr *testRouter) drive(t *testing.T, max int64) (stop func() int64) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	client := &http.Client{Timeout: 2 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 8}}
	var sent atomic.Int64
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			for ctx.Err() == nil && sent.Add(1) <= max {
				req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+tr.r.Addr()+"/", nil)
				if resp, err := client.Do(req); err == nil {
					_, _ = io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
				}
				select {
				case <-ctx.Done():
				case <-time.After(20 * time.Millisecond):
				}
			}
		})
	}
	var once sync.Once
	stop = func() int64 {
		once.Do(func() { cancel(); wg.Wait(); client.CloseIdleConnections() })
		return min(sent.Load(), max)
	}
	t.Cleanup(func() { stop() })
	return stop
}

func mustNew(t *testing.T, settings map[string]any) *Provider {
	t.Helper()
	p, err := New(settings)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return p
}

func metric(v providers.Verdict, name string) *providers.Metric {
	for i := range v.Metrics {
		if v.Metrics[i].Name == name {
			return &v.Metrics[i]
		}
	}
	return nil
}

func TestGuardFailsGreenWithErrors(t *testing.T) {
	tr := startRouter(t, true)
	p := mustNew(t, tr.settings("1s"))
	stop := tr.drive(t, 1000)
	defer stop()
	time.Sleep(100 * time.Millisecond) // the traffic is flowing

	begin := time.Now()
	v, err := p.Guard(context.Background(), ref)
	if err != nil {
		t.Fatal(err)
	}
	if v.Result != providers.Fail {
		t.Fatalf("first guard: got %s, want Fail", v)
	}
	if d := time.Since(begin); d < time.Second {
		t.Errorf("first guard took %s: it should wait a step for its first point", d)
	}
	m := metric(v, "green error rate")
	if m == nil || m.Result != providers.Fail {
		t.Fatalf("no failing green error rate in %s", v)
	}
	t.Logf("first: %s", v)

	// The next call has history: it scrapes once and judges at once.
	time.Sleep(300 * time.Millisecond)
	begin = time.Now()
	v, err = p.Guard(context.Background(), ref)
	if err != nil {
		t.Fatal(err)
	}
	if d := time.Since(begin); d > 700*time.Millisecond {
		t.Errorf("second guard took %s, want one scrape", d)
	}
	if v.Result != providers.Fail {
		t.Fatalf("second guard: got %s, want Fail", v)
	}
	t.Logf("second: %s (%d requests sent)", v, stop())
}

func TestGuardPassesGoodGreen(t *testing.T) {
	tr := startRouter(t, false)
	p := mustNew(t, tr.settings("1s"))
	stop := tr.drive(t, 1000)
	defer stop()
	time.Sleep(100 * time.Millisecond)
	v, err := p.Guard(context.Background(), ref)
	if err != nil {
		t.Fatal(err)
	}
	if v.Result != providers.Pass {
		t.Fatalf("got %s, want Pass", v)
	}
	t.Logf("%s (%d requests sent)", v, stop())
}

func TestGuardWithoutTrafficIsInconclusive(t *testing.T) {
	tr := startRouter(t, false)
	p := mustNew(t, tr.settings("300ms"))
	v, err := p.Guard(context.Background(), ref)
	if err != nil {
		t.Fatal(err)
	}
	if v.Result != providers.Inconclusive {
		t.Fatalf("got %s, want Inconclusive", v)
	}
	t.Log(v)
}

func TestGuardWithoutTokenIsInconclusive(t *testing.T) {
	tr := startRouter(t, false)
	p := mustNew(t, map[string]any{"url": tr.metricsURL})
	v, err := p.Guard(context.Background(), ref)
	if err != nil {
		t.Fatal(err)
	}
	if v.Result != providers.Inconclusive || !strings.Contains(v.Summary, "401") {
		t.Fatalf("got %s, want Inconclusive naming the 401", v)
	}
}

func TestCompareDetectsGreenErrors(t *testing.T) {
	tr := startRouter(t, true)
	p := mustNew(t, tr.settings("500ms"))
	stop := tr.drive(t, 1200)
	defer stop()
	time.Sleep(100 * time.Millisecond)
	begin := time.Now()
	v, err := p.Compare(context.Background(), ref, 2500*time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	if d := time.Since(begin); d < 2500*time.Millisecond || d > 4*time.Second {
		t.Errorf("compare took %s, want the 2.5s window", d)
	}
	t.Logf("%s (%d requests sent)", v, stop())
	if v.Result != providers.Fail {
		t.Fatalf("got %s, want Fail", v)
	}
	if m := metric(v, "error rate"); m == nil || m.Result != providers.Fail {
		t.Fatalf("error rate did not fail: %s", v)
	}
}

func TestCompareGoodGreenErrorRatePasses(t *testing.T) {
	tr := startRouter(t, false)
	p := mustNew(t, tr.settings("500ms"))
	stop := tr.drive(t, 1200)
	defer stop()
	time.Sleep(100 * time.Millisecond)
	v, err := p.Compare(context.Background(), ref, 2*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%s (%d requests sent)", v, stop())
	// Latency between two equal backends is noise; the error rate is not.
	if m := metric(v, "error rate"); m == nil || m.Result != providers.Pass {
		t.Fatalf("error rate did not pass: %s", v)
	}
}

// closedURL is a loopback URL nothing listens on.
func closedURL(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return "http://" + addr + "/metrics"
}

func TestUnreachableIsInconclusive(t *testing.T) {
	p := mustNew(t, map[string]any{"url": closedURL(t), "step": "200ms"})
	begin := time.Now()
	v, err := p.Guard(context.Background(), ref)
	if err != nil {
		t.Fatalf("Guard: %v, want a verdict", err)
	}
	if v.Result != providers.Inconclusive || !strings.Contains(v.Summary, "scrape http://") {
		t.Fatalf("Guard: got %s, want Inconclusive naming the source", v)
	}
	if d := time.Since(begin); d < 400*time.Millisecond || d > 3*time.Second {
		t.Errorf("Guard took %s, want two retries 200ms apart", d)
	}
	v, err = p.Compare(context.Background(), ref, time.Second)
	if err != nil {
		t.Fatalf("Compare: %v, want a verdict", err)
	}
	if v.Result != providers.Inconclusive {
		t.Fatalf("Compare: got %s, want Inconclusive", v)
	}
	t.Log(v)
}

func TestSlowTargetIsInconclusive(t *testing.T) {
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		select {
		case <-release:
		case <-req.Context().Done():
		}
	}))
	defer srv.Close()
	defer close(release)
	p := mustNew(t, map[string]any{"url": srv.URL + "/metrics", "timeout": "100ms"})
	v, err := p.Guard(context.Background(), ref)
	if err != nil {
		t.Fatal(err)
	}
	if v.Result != providers.Inconclusive || !strings.Contains(v.Summary, "no answer within 100ms") {
		t.Fatalf("got %s, want Inconclusive saying there was no answer", v)
	}
}

func TestMissingSecretIsAnError(t *testing.T) {
	p := mustNew(t, map[string]any{"url": closedURL(t), "token": map[string]any{"env": "CUTOVER_SCRAPE_TEST_UNSET_TOKEN"}})
	_, err := p.Guard(context.Background(), ref)
	if !errors.Is(err, providers.ErrBadConfig) || !strings.Contains(err.Error(), "token:") {
		t.Fatalf("got %v, want a bad configuration naming the token", err)
	}
}

func TestCancelReturnsPromptly(t *testing.T) {
	tr := startRouter(t, false)
	p := mustNew(t, tr.settings("5s"))
	for name, call := range map[string]func(context.Context) error{
		"compare": func(ctx context.Context) error { _, err := p.Compare(ctx, ref, time.Minute); return err },
		"guard":   func(ctx context.Context) error { _, err := p.Guard(ctx, providers.Ref{App: "other"}); return err },
	} {
		ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
		begin := time.Now()
		err := call(ctx)
		cancel()
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("%s: got %v, want the context's error", name, err)
		}
		if d := time.Since(begin); d > time.Second {
			t.Errorf("%s took %s after its context ended", name, d)
		}
	}
}

func TestBadSettings(t *testing.T) {
	for _, tc := range []struct {
		settings map[string]any
		want     string
	}{
		{map[string]any{}, "url: is required"},
		{map[string]any{"url": "ftp://x/metrics"}, "url: must be an http(s) URL"},
		{map[string]any{"url": "127.0.0.1:8081/metrics"}, "url: must be an http(s) URL"},
		{map[string]any{"url": "http://x/metrics", "bogus": 1}, `unknown setting "bogus"`},
		{map[string]any{"url": "http://x/metrics", "token": map[string]any{}}, "token: a secret needs env"},
		{map[string]any{"url": "http://x/metrics", "step": "10ms"}, "step: 10ms is outside"},
		{map[string]any{"url": "http://x/metrics", "step": "soon"}, "is not a duration"},
		{map[string]any{"url": "http://x/metrics", "timeout": "2h"}, "timeout: 2h0m0s is outside"},
		{map[string]any{"url": "http://x/metrics", "metrics": map[string]any{"requests": "a-b"}}, "metrics.requests:"},
		{map[string]any{"url": "http://x/metrics", "metrics": map[string]any{"errorCodes": "5(("}}, "metrics.errorCodes:"},
		{map[string]any{"url": "http://x/metrics", "judge": map[string]any{"alpha": 2}}, "judge.alpha"},
	} {
		_, err := New(tc.settings)
		if err == nil || !errors.Is(err, providers.ErrBadConfig) {
			t.Errorf("%v: got %v, want a bad configuration", tc.settings, err)
			continue
		}
		if !strings.Contains(err.Error(), tc.want) || strings.Contains(err.Error(), "\n") {
			t.Errorf("%v: got %q, want one line with %q", tc.settings, err, tc.want)
		}
	}
}

func TestHistogramQuantile(t *testing.T) {
	inf := math.Inf(1)
	std := []bucket{{0.1, 10}, {0.2, 30}, {0.5, 90}, {inf, 100}}
	for _, tc := range []struct {
		name    string
		q       float64
		buckets []bucket
		want    float64
	}{
		// rank 50 is in (0.2, 0.5]: 20 of its 60 → 0.2 + 0.3*20/60.
		{"median", 0.5, std, 0.3},
		// rank 5 is in the first bucket, interpolated from 0: 0.1*5/10.
		{"first bucket", 0.05, std, 0.05},
		// rank 30 is exactly the top of (0.1, 0.2].
		{"bucket edge", 0.3, std, 0.2},
		// rank 99 is in +Inf: the last finite bound.
		{"in +Inf", 0.99, std, 0.5},
		// rank 90 is the top of (0.2, 0.5].
		{"p90", 0.9, std, 0.5},
		{"unsorted", 0.5, []bucket{{inf, 100}, {0.5, 90}, {0.1, 10}, {0.2, 30}}, 0.3},
		// 0.2's count is below 0.1's: made monotonic (10), so rank 10 tops the first bucket.
		{"non-monotonic", 0.5, []bucket{{0.1, 10}, {0.2, 8}, {inf, 20}}, 0.1},
		// A first bucket whose bound is not positive is not interpolated from 0.
		{"non-positive first bound", 0.2, []bucket{{-1, 5}, {1, 10}, {inf, 10}}, -1},
		{"no +Inf", 0.5, []bucket{{0.1, 10}, {0.2, 20}}, math.NaN()},
		{"no observations", 0.5, []bucket{{0.1, 0}, {inf, 0}}, math.NaN()},
		{"only +Inf", 0.5, []bucket{{inf, 10}}, math.NaN()},
		{"none", 0.5, nil, math.NaN()},
		{"q above 1", 1.5, std, inf},
		{"q below 0", -0.5, std, math.Inf(-1)},
		// The router's buckets: 1000 requests, 985 by 30ms, 995 by 50ms:
		// rank 990 is 5 of 10 into (0.03, 0.05].
		{"router p99", 0.99, []bucket{{0.01, 900}, {0.02, 950}, {0.03, 985}, {0.05, 995}, {0.1, 1000}, {inf, 1000}}, 0.04},
	} {
		got := histogramQuantile(tc.q, tc.buckets)
		if !(math.Abs(got-tc.want) < 1e-12 || got == tc.want || (math.IsNaN(got) && math.IsNaN(tc.want))) {
			t.Errorf("%s: got %v, want %v", tc.name, got, tc.want)
		}
	}
}

const exposition1 = `# HELP cutover_router_requests_total Requests.
# TYPE cutover_router_requests_total counter
cutover_router_requests_total{code="200",color="blue",instance="b1"} 100
cutover_router_requests_total{code="500",color="blue",instance="b1"} 1
cutover_router_requests_total{code="200",color="green",instance="g1"} 50
cutover_router_requests_total{code="200",color="green",instance="g2"} 70
cutover_router_requests_total{code="503",color="none",instance="none"} 9
# TYPE cutover_router_request_duration_seconds histogram
cutover_router_request_duration_seconds_bucket{color="green",le="0.1"} 100
cutover_router_request_duration_seconds_bucket{color="green",le="0.5"} 120
cutover_router_request_duration_seconds_bucket{color="green",le="+Inf"} 120
cutover_router_request_duration_seconds_sum{color="green"} 6
cutover_router_request_duration_seconds_count{color="green"} 120
`

// After: g1 was reset (restarted) to 5, g2 grew by 30 of which a new 500
// series holds 10, blue grew by 0; the histogram grew by 40 requests, 20 of
// them in (0.1, 0.5].
const exposition2 = `# TYPE cutover_router_requests_total counter
cutover_router_requests_total{code="200",color="blue",instance="b1"} 100
cutover_router_requests_total{code="500",color="blue",instance="b1"} 1
cutover_router_requests_total{code="200",color="green",instance="g1"} 5
cutover_router_requests_total{code="200",color="green",instance="g2"} 90
cutover_router_requests_total{code="500",color="green",instance="g2"} 10
cutover_router_requests_total{code="503",color="none",instance="none"} 20
# TYPE cutover_router_request_duration_seconds histogram
cutover_router_request_duration_seconds_bucket{color="green",le="0.1"} 120
cutover_router_request_duration_seconds_bucket{color="green",le="0.5"} 160
cutover_router_request_duration_seconds_bucket{color="green",le="+Inf"} 160
cutover_router_request_duration_seconds_sum{color="green"} 14
cutover_router_request_duration_seconds_count{color="green"} 160
`

func TestSnapshotDiff(t *testing.T) {
	var n atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		if req.Header.Get("Authorization") != "Bearer t0k" {
			http.Error(w, "no", http.StatusUnauthorized)
			return
		}
		if n.Add(1) == 1 {
			_, _ = io.WriteString(w, exposition1)
		} else {
			_, _ = io.WriteString(w, exposition2)
		}
	}))
	defer srv.Close()
	t.Setenv("CUTOVER_SCRAPE_TEST_TOKEN", "t0k")
	p := mustNew(t, map[string]any{"url": srv.URL, "token": map[string]any{"env": "CUTOVER_SCRAPE_TEST_TOKEN"}})
	s1, err := p.scrape(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	s2, err := p.scrape(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	g := points([]snapshot{s1, s2}, providers.Green)
	b := points([]snapshot{s1, s2}, providers.Blue)
	if len(g) != 1 || len(b) != 1 {
		t.Fatalf("got %d green and %d blue points, want 1 each", len(g), len(b))
	}
	// g1: reset, counts 5; g2 200: +20; g2 500: new series, +10.
	if g[0].Requests != 35 || g[0].Errors != 10 {
		t.Errorf("green: got %v requests, %v errors, want 35 and 10", g[0].Requests, g[0].Errors)
	}
	if !g[0].Time.Equal(s2.at) {
		t.Errorf("green point at %v, want the later scrape's time %v", g[0].Time, s2.at)
	}
	// 40 observations summing to 8s; rank 39.6 is 19.6 of 20 into (0.1, 0.5].
	if g[0].Latency != 0.2 || math.Abs(g[0].P99-(0.1+0.4*19.6/20)) > 1e-12 {
		t.Errorf("green: got latency %v, p99 %v, want 0.2 and 0.492", g[0].Latency, g[0].P99)
	}
	if b[0].Requests != 0 || b[0].Errors != 0 || !math.IsNaN(b[0].Latency) || !math.IsNaN(b[0].P99) {
		t.Errorf("blue: got %+v, want no requests and NaN latencies", b[0])
	}
}
