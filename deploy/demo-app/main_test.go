package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/cutoverhq/cutover/deadlines/deadlinestest"
)

// TestMain lets a test run the real main() in a child process (the test binary
// itself, re-executed with DEMO_APP_RUN_MAIN=1), to check exit statuses and
// signal handling without building the command.
func TestMain(m *testing.M) {
	if os.Getenv("DEMO_APP_RUN_MAIN") == "1" {
		main()
		return
	}
	os.Exit(m.Run())
}

func env(kv ...string) func(string) string {
	m := map[string]string{}
	for i := 0; i+1 < len(kv); i += 2 {
		m[kv[i]] = kv[i+1]
	}
	return func(k string) string { return m[k] }
}

func mustConfig(t *testing.T, kv ...string) config {
	t.Helper()
	cfg, err := parseConfig(env(append([]string{"PORT", "8080"}, kv...)...))
	if err != nil {
		t.Fatalf("parseConfig: %v", err)
	}
	return cfg
}

func get(h http.Handler, path string) *httptest.ResponseRecorder {
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, path, nil))
	return rec
}

func TestParseConfigDefaults(t *testing.T) {
	cfg := mustConfig(t)
	if cfg.Host != "127.0.0.1" || cfg.Port != "8080" || cfg.Version != "dev" || cfg.ErrorRate != 0 ||
		cfg.Latency != 0 || cfg.FailAfter != 0 || cfg.StartupDelay != 0 ||
		cfg.LatencyJitter != 0 || cfg.SlowRate != 0 || cfg.SlowLatency != 0 || cfg.SlowAfter != 0 {
		t.Fatalf("defaults: %+v", cfg)
	}
	cfg = mustConfig(t, "HOST", "::1", "VERSION", "2.0.0", "ERROR_RATE", "0.25",
		"LATENCY", "15ms", "FAIL_AFTER", "1m", "STARTUP_DELAY", "2s",
		"LATENCY_JITTER", "5ms", "SLOW_RATE", "0.1", "SLOW_LATENCY", "1.5s", "SLOW_AFTER", "30s")
	if cfg.Host != "::1" || cfg.Version != "2.0.0" || cfg.ErrorRate != 0.25 || cfg.Latency != 15*time.Millisecond ||
		cfg.FailAfter != time.Minute || cfg.StartupDelay != 2*time.Second ||
		cfg.LatencyJitter != 5*time.Millisecond || cfg.SlowRate != 0.1 || cfg.SlowLatency != 1500*time.Millisecond ||
		cfg.SlowAfter != 30*time.Second {
		t.Fatalf("set: %+v", cfg)
	}
	// SLOW_LATENCY is needed only with a SLOW_RATE above 0.
	mustConfig(t, "SLOW_RATE", "0")
	mustConfig(t, "SLOW_LATENCY", "1s")
}

func TestParseConfigErrorsNameTheVariable(t *testing.T) {
	const (
		rate     = "must be a number from 0 to 1, got "
		duration = "must be a non-negative Go duration such as 250ms or 1m, got "
	)
	for _, tc := range []struct {
		variable string
		env      []string
		msg      string // in the error
	}{
		{"PORT", nil, "is required"},
		{"PORT", []string{"PORT", "abc"}, `must be a port number 1-65535, got "abc"`},
		{"PORT", []string{"PORT", "0"}, "1-65535"},
		{"PORT", []string{"PORT", "70000"}, "1-65535"},
		{"ERROR_RATE", []string{"PORT", "1", "ERROR_RATE", "2"}, rate + `"2"`},
		{"ERROR_RATE", []string{"PORT", "1", "ERROR_RATE", "-0.1"}, rate},
		{"ERROR_RATE", []string{"PORT", "1", "ERROR_RATE", "NaN"}, rate},
		{"ERROR_RATE", []string{"PORT", "1", "ERROR_RATE", "half"}, rate},
		{"LATENCY", []string{"PORT", "1", "LATENCY", "abc"}, duration + `"abc"`},
		{"LATENCY", []string{"PORT", "1", "LATENCY", "-1s"}, duration},
		{"LATENCY", []string{"PORT", "1", "LATENCY", "100"}, duration},
		{"FAIL_AFTER", []string{"PORT", "1", "FAIL_AFTER", "soon"}, duration},
		{"STARTUP_DELAY", []string{"PORT", "1", "STARTUP_DELAY", "5 s"}, duration},
		{"SLOW_RATE", []string{"PORT", "1", "SLOW_RATE", "1.5", "SLOW_LATENCY", "1s"}, rate + `"1.5"`},
		{"SLOW_RATE", []string{"PORT", "1", "SLOW_RATE", "-0.1", "SLOW_LATENCY", "1s"}, rate},
		{"SLOW_RATE", []string{"PORT", "1", "SLOW_RATE", "NaN", "SLOW_LATENCY", "1s"}, rate},
		{"SLOW_RATE", []string{"PORT", "1", "SLOW_RATE", "some"}, rate + `"some"`},
		{"SLOW_LATENCY", []string{"PORT", "1", "SLOW_RATE", "0.1"}, "is required when SLOW_RATE is above 0"},
		{"SLOW_LATENCY", []string{"PORT", "1", "SLOW_RATE", "0.1", "SLOW_LATENCY", "slow"}, duration + `"slow"`},
		{"SLOW_LATENCY", []string{"PORT", "1", "SLOW_RATE", "0.1", "SLOW_LATENCY", "-2s"}, duration},
		{"SLOW_LATENCY", []string{"PORT", "1", "SLOW_RATE", "0.1", "SLOW_LATENCY", "2000"}, duration},
		{"SLOW_AFTER", []string{"PORT", "1", "SLOW_RATE", "0.1", "SLOW_LATENCY", "1s", "SLOW_AFTER", "later"}, duration + `"later"`},
		{"SLOW_AFTER", []string{"PORT", "1", "SLOW_AFTER", "-1m"}, duration},
		{"LATENCY_JITTER", []string{"PORT", "1", "LATENCY_JITTER", "some"}, duration + `"some"`},
		{"LATENCY_JITTER", []string{"PORT", "1", "LATENCY_JITTER", "-5ms"}, duration},
		{"LATENCY_JITTER", []string{"PORT", "1", "LATENCY_JITTER", "5"}, duration},
	} {
		_, err := parseConfig(env(tc.env...))
		var ce *configError
		if !errors.As(err, &ce) || ce.Var != tc.variable || !strings.HasPrefix(err.Error(), tc.variable+": ") {
			t.Errorf("env %q: got %v, want an error naming %s", tc.env, err, tc.variable)
		} else if !strings.Contains(err.Error(), tc.msg) {
			t.Errorf("env %q: got %q, want it to say %q", tc.env, err, tc.msg)
		}
	}
}

func TestRootAnswersVersionAndInstance(t *testing.T) {
	h := newServer(mustConfig(t, "VERSION", "1.2.3"))
	rec := get(h, "/")
	if rec.Code != http.StatusOK || !strings.HasPrefix(rec.Header().Get("Content-Type"), "application/json") {
		t.Fatalf("GET /: %d %q", rec.Code, rec.Header().Get("Content-Type"))
	}
	var body map[string]string
	if err := json.Unmarshal(rec.Body.Bytes(), &body); err != nil {
		t.Fatal(err)
	}
	if body["version"] != "1.2.3" || body["instance"] != "8080" || len(body) != 2 {
		t.Fatalf("body %v", body)
	}
	if rec := get(h, "/healthz"); rec.Code != http.StatusOK || rec.Body.String() != "ok\n" {
		t.Fatalf("GET /healthz: %d %q", rec.Code, rec.Body.String())
	}
	if rec := get(h, "/nope"); rec.Code != http.StatusNotFound {
		t.Fatalf("GET /nope: %d", rec.Code)
	}
}

func TestErrorRateIsCountedNotRandom(t *testing.T) {
	for _, tc := range []struct {
		rate     string
		requests int
		failures int
	}{
		{"0.05", 1000, 50},
		{"0", 100, 0},
		{"1", 100, 100},
		{"0.5", 10, 5},
		{"0.3", 1000, 300},
	} {
		h := newServer(mustConfig(t, "ERROR_RATE", tc.rate))
		var failed []int
		for n := range tc.requests {
			switch code := get(h, "/").Code; code {
			case http.StatusInternalServerError:
				failed = append(failed, n)
			case http.StatusOK:
			default:
				t.Fatalf("rate %s: request %d answered %d", tc.rate, n, code)
			}
		}
		if len(failed) != tc.failures {
			t.Errorf("rate %s over %d requests: %d failed, want %d", tc.rate, tc.requests, len(failed), tc.failures)
		}
		if tc.rate == "0.05" {
			for i, n := range failed { // every 20th: requests 19, 39, ...
				if n != 20*i+19 {
					t.Fatalf("rate 0.05: failure %d was request %d, want %d", i, n, 20*i+19)
				}
			}
		}
	}
}

type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *fakeClock) advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

func TestFailAfterFlipsRootAndHealthz(t *testing.T) {
	clock := &fakeClock{t: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
	cfg := mustConfig(t, "FAIL_AFTER", "30s", "VERSION", "2.0.0")
	cfg.now = clock.now
	h := newServer(cfg)

	clock.advance(29 * time.Second)
	if a, b := get(h, "/").Code, get(h, "/healthz").Code; a != 200 || b != 200 {
		t.Fatalf("before FAIL_AFTER: / %d, /healthz %d", a, b)
	}
	clock.advance(time.Second)
	for range 3 {
		rec := get(h, "/")
		if rec.Code != http.StatusInternalServerError || !strings.Contains(rec.Body.String(), `"version":"2.0.0"`) {
			t.Fatalf("after FAIL_AFTER: / %d %s", rec.Code, rec.Body.String())
		}
		if rec := get(h, "/healthz"); rec.Code != http.StatusServiceUnavailable {
			t.Fatalf("after FAIL_AFTER: /healthz %d", rec.Code)
		}
	}
}

func TestErrorAfterStartsErrorsButKeepsHealth(t *testing.T) {
	clock := &fakeClock{t: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
	cfg := mustConfig(t, "ERROR_RATE", "1", "ERROR_AFTER", "10s")
	cfg.now = clock.now
	h := newServer(cfg)
	clock.advance(9 * time.Second)
	if code := get(h, "/").Code; code != 200 {
		t.Fatalf("before ERROR_AFTER: / %d, want 200", code)
	}
	clock.advance(time.Second)
	if a, b := get(h, "/").Code, get(h, "/healthz").Code; a != 500 || b != 200 {
		t.Fatalf("after ERROR_AFTER: / %d, /healthz %d; want 500 and 200", a, b)
	}
}

// waits records what requests to / wait, instead of waiting.
type waits struct {
	mu sync.Mutex
	ds []time.Duration
}

func (w *waits) wait(_ context.Context, d time.Duration) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.ds = append(w.ds, d)
	return true
}

// recording returns a server for cfg whose waits are recorded, not waited.
func recording(cfg config) (http.Handler, *waits) {
	w := &waits{}
	cfg.wait = w.wait
	return newServer(cfg), w
}

func TestSlowRateIsCountedNotRandom(t *testing.T) {
	for _, tc := range []struct {
		rate     string
		requests int
		slow     int
	}{
		{"0.05", 1000, 50},
		{"0", 100, 0},
		{"1", 100, 100},
		{"0.5", 10, 5},
		{"0.3", 1000, 300},
	} {
		h, w := recording(mustConfig(t, "LATENCY", "10ms", "SLOW_RATE", tc.rate, "SLOW_LATENCY", "2s"))
		for n := range tc.requests {
			if code := get(h, "/").Code; code != http.StatusOK {
				t.Fatalf("rate %s: request %d answered %d", tc.rate, n, code)
			}
		}
		if len(w.ds) != tc.requests {
			t.Fatalf("rate %s: %d waits for %d requests", tc.rate, len(w.ds), tc.requests)
		}
		var slow []int
		for n, d := range w.ds {
			switch d {
			case 2 * time.Second:
				slow = append(slow, n)
			case 10 * time.Millisecond:
			default:
				t.Fatalf("rate %s: request %d waited %v, want LATENCY=10ms or SLOW_LATENCY=2s", tc.rate, n, d)
			}
		}
		if len(slow) != tc.slow {
			t.Errorf("rate %s over %d requests: %d slow, want %d", tc.rate, tc.requests, len(slow), tc.slow)
		}
		if tc.rate == "0.05" {
			for i, n := range slow { // every 20th: requests 19, 39, ...
				if n != 20*i+19 {
					t.Fatalf("rate 0.05: slow request %d was request %d, want %d", i, n, 20*i+19)
				}
			}
		}
	}
}

// SLOW_RATE and ERROR_RATE count on their own: a request can be slow, fail,
// both or neither.
func TestSlowRateAndErrorRateAreIndependent(t *testing.T) {
	h, w := recording(mustConfig(t, "SLOW_RATE", "0.5", "SLOW_LATENCY", "1s", "ERROR_RATE", "0.25"))
	var codes []int
	for range 8 {
		codes = append(codes, get(h, "/").Code)
	}
	wantCodes := []int{200, 200, 200, 500, 200, 200, 200, 500}
	wantWaits := []time.Duration{0, time.Second, 0, time.Second, 0, time.Second, 0, time.Second}
	for i := range 8 {
		if codes[i] != wantCodes[i] || w.ds[i] != wantWaits[i] {
			t.Fatalf("codes %v waits %v, want %v and %v", codes, w.ds, wantCodes, wantWaits)
		}
	}
}

func TestSlowAfterStartsSlowRequests(t *testing.T) {
	clock := &fakeClock{t: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
	cfg := mustConfig(t, "LATENCY", "10ms", "SLOW_RATE", "0.5", "SLOW_LATENCY", "3s", "SLOW_AFTER", "10s")
	cfg.now = clock.now
	h, w := recording(cfg)
	clock.advance(9 * time.Second)
	for range 3 {
		get(h, "/")
	}
	clock.advance(time.Second)
	for range 4 {
		get(h, "/")
	}
	// Before SLOW_AFTER nothing is slow and nothing is counted, so the counting
	// starts then: its requests 1 and 3 are slow.
	ms, s := 10*time.Millisecond, 3*time.Second
	want := []time.Duration{ms, ms, ms, ms, s, ms, s}
	if len(w.ds) != len(want) {
		t.Fatalf("waits %v, want %v", w.ds, want)
	}
	for i := range want {
		if w.ds[i] != want[i] {
			t.Fatalf("waits %v, want %v", w.ds, want)
		}
	}
	if code := get(h, "/healthz").Code; code != 200 {
		t.Fatalf("/healthz %d after SLOW_AFTER", code)
	}
}

func TestLatencyJitterBounds(t *testing.T) {
	const n = 2000
	for _, tc := range []struct {
		env  []string
		base time.Duration // every wait is in [base, base+jitter)
	}{
		{[]string{"LATENCY", "10ms", "LATENCY_JITTER", "5ms"}, 10 * time.Millisecond},
		{[]string{"LATENCY_JITTER", "5ms"}, 0},
		{[]string{"LATENCY", "10ms", "LATENCY_JITTER", "5ms", "SLOW_RATE", "1", "SLOW_LATENCY", "1s"}, time.Second},
	} {
		const jitter = 5 * time.Millisecond
		h, w := recording(mustConfig(t, tc.env...))
		for range n {
			get(h, "/")
		}
		lo, hi, sum := w.ds[0], w.ds[0], time.Duration(0)
		for _, d := range w.ds {
			if d < tc.base || d >= tc.base+jitter {
				t.Fatalf("%v: waited %v, want [%v, %v)", tc.env, d, tc.base, tc.base+jitter)
			}
			lo, hi, sum = min(lo, d), max(hi, d), sum+d
		}
		// Uniform over the whole range: the extremes near its ends, the mean near
		// its middle (its standard deviation over 2000 waits is 0.03ms).
		if lo-tc.base > jitter/20 || tc.base+jitter-hi > jitter/20 {
			t.Errorf("%v: waits from %v to %v, want them to span [%v, %v)", tc.env, lo, hi, tc.base, tc.base+jitter)
		}
		if mean := sum / n; mean < tc.base+jitter/2-jitter/20 || mean > tc.base+jitter/2+jitter/20 {
			t.Errorf("%v: mean wait %v, want about %v", tc.env, mean, tc.base+jitter/2)
		}
	}
	// Without LATENCY_JITTER every wait is exactly LATENCY.
	h, w := recording(mustConfig(t, "LATENCY", "7ms"))
	for range 100 {
		get(h, "/")
	}
	for _, d := range w.ds {
		if d != 7*time.Millisecond {
			t.Fatalf("no jitter: waited %v, want 7ms", d)
		}
	}
}

func TestWaitStopsWhenTheClientLeaves(t *testing.T) {
	start := time.Now()
	if !wait(context.Background(), 20*time.Millisecond) || time.Since(start) < 20*time.Millisecond {
		t.Fatalf("wait 20ms: returned after %v", time.Since(start))
	}
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(10*time.Millisecond, cancel)
	start = time.Now()
	if wait(ctx, time.Minute) {
		t.Fatal("wait reported done after its context ended")
	}
	if d := time.Since(start); d > 10*time.Second {
		t.Fatalf("wait took %v after its context ended", d)
	}
}

func TestLatencyIsAdded(t *testing.T) {
	h := newServer(mustConfig(t, "LATENCY", "40ms"))
	start := time.Now()
	if rec := get(h, "/"); rec.Code != 200 {
		t.Fatalf("GET /: %d", rec.Code)
	}
	if d := time.Since(start); d < 40*time.Millisecond {
		t.Fatalf("answered in %v, want at least LATENCY=40ms", d)
	}
	// /healthz is not slowed down.
	start = time.Now()
	get(h, "/healthz")
	if d := time.Since(start); d >= 40*time.Millisecond {
		t.Fatalf("/healthz took %v", d)
	}
}

func TestMetricsCountByCode(t *testing.T) {
	h := newServer(mustConfig(t, "ERROR_RATE", "0.25"))
	for range 20 {
		get(h, "/")
	}
	for range 5 {
		get(h, "/healthz") // not counted: only / is
	}
	rec := get(h, "/metrics")
	if rec.Code != 200 {
		t.Fatalf("GET /metrics: %d", rec.Code)
	}
	text := rec.Body.String()
	for _, want := range []string{
		`demo_requests_total{code="200"} 15`,
		`demo_requests_total{code="500"} 5`,
		`demo_request_duration_seconds_count 20`,
		`demo_request_duration_seconds_bucket{le="+Inf"} 20`,
		"# TYPE demo_request_duration_seconds histogram",
	} {
		if !strings.Contains(text, want) {
			t.Errorf("metrics lack %q:\n%s", want, text)
		}
	}
	// Its own registry: no Go runtime or process collectors.
	if strings.Contains(text, "go_goroutines") || strings.Contains(text, "process_") {
		t.Errorf("metrics come from the default registry:\n%s", text)
	}
}

func TestMetricsStartAtZero(t *testing.T) {
	text := get(newServer(mustConfig(t)), "/metrics").Body.String()
	for _, want := range []string{`demo_requests_total{code="200"} 0`, `demo_requests_total{code="500"} 0`} {
		if !strings.Contains(text, want) {
			t.Errorf("metrics lack %q:\n%s", want, text)
		}
	}
}

func TestServeFinishesInFlightRequestsOnShutdown(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	done := make(chan error, 1)
	cfg := mustConfig(t, "LATENCY", "300ms")
	go func() { done <- serve(ctx, ln, newServer(cfg), timeouts(cfg), logger) }()

	url := "http://" + ln.Addr().String() + "/"
	resc := make(chan int, 1)
	go func() {
		resp, err := http.Get(url)
		if err != nil {
			resc <- -1
			return
		}
		resp.Body.Close()
		resc <- resp.StatusCode
	}()
	time.Sleep(100 * time.Millisecond) // the request is in its LATENCY
	cancel()
	if code := <-resc; code != http.StatusOK {
		t.Fatalf("in-flight request during shutdown: %d", code)
	}
	if err := <-done; err != nil {
		t.Fatalf("serve: %v", err)
	}
	if _, err := http.Get(url); err == nil {
		t.Fatal("still accepting after shutdown")
	}
}

// TestServeDeadlines exercises each deadline of the server through a real
// connection, with short deadlines.
func TestServeDeadlines(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	to := deadlinestest.Short()
	// LATENCY past the write deadline: the answer to / is never written.
	h := newServer(mustConfig(t, "LATENCY", "600ms"))
	go func() { _ = serve(ctx, ln, h, to, slog.New(slog.DiscardHandler)) }()
	addr := ln.Addr().String()
	request := func(path string) *http.Request { return deadlinestest.Request(t, "GET", "http://"+addr+path) }
	deadlinestest.CheckReads(t, addr, to, request("/healthz"), request("/healthz"))
	r := deadlinestest.Unanswered(t, addr, request("/"), 5*time.Second)
	if r.Got != "" {
		t.Errorf("the late answer went out: %q", r.Got)
	}
	r.Between(t, "an answer past the write deadline", to.Write, 600*time.Millisecond+deadlinestest.Slack)
}

func TestTimeoutsCoverTheConfiguredLatency(t *testing.T) {
	to := timeouts(mustConfig(t, "LATENCY", "1m", "SLOW_RATE", "0.1", "SLOW_LATENCY", "2m", "LATENCY_JITTER", "10s"))
	if want := 2*time.Minute + 40*time.Second; to.Write != want {
		t.Errorf("write timeout %s, want %s", to.Write, want)
	}
	if err := to.Check(""); err != nil {
		t.Error(err)
	}
}

// child runs main() in a child process with env.
func child(t *testing.T, env ...string) (*exec.Cmd, *bytes.Buffer) {
	t.Helper()
	cmd := exec.Command(os.Args[0])
	// atexit_sleep_ms=0: a -race binary otherwise sleeps 1s before exiting.
	cmd.Env = append(os.Environ(), "DEMO_APP_RUN_MAIN=1", "GORACE="+strings.TrimSpace(os.Getenv("GORACE")+" atexit_sleep_ms=0"))
	cmd.Env = append(cmd.Env, env...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	return cmd, &stderr
}

func TestBadConfigExitsTwoWithOneLine(t *testing.T) {
	for _, tc := range []struct {
		variable string
		env      []string
	}{
		{"ERROR_RATE", []string{"PORT=18080", "ERROR_RATE=2"}},
		{"LATENCY", []string{"PORT=18080", "LATENCY=abc"}},
		{"SLOW_RATE", []string{"PORT=18080", "SLOW_RATE=2", "SLOW_LATENCY=1s"}},
		{"SLOW_LATENCY", []string{"PORT=18080", "SLOW_RATE=0.1"}},
		{"SLOW_AFTER", []string{"PORT=18080", "SLOW_AFTER=soon"}},
		{"LATENCY_JITTER", []string{"PORT=18080", "LATENCY_JITTER=-1ms"}},
		{"PORT", []string{"PORT="}},
	} {
		cmd, stderr := child(t, tc.env...)
		err := cmd.Run()
		var ee *exec.ExitError
		if !errors.As(err, &ee) || ee.ExitCode() != 2 {
			t.Errorf("%v: exit %v, want status 2", tc.env, err)
			continue
		}
		out := stderr.String()
		if strings.Count(out, "\n") != 1 || !strings.Contains(out, tc.variable+":") {
			t.Errorf("%v: stderr %q, want one line naming %s", tc.env, out, tc.variable)
		}
	}
}

func freePort(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return strconv.Itoa(ln.Addr().(*net.TCPAddr).Port)
}

func TestSIGTERMDrainsAndExitsZero(t *testing.T) {
	port := freePort(t)
	cmd, stderr := child(t, "PORT="+port, "VERSION=9.9.9", "LATENCY=300ms")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill()
	base := "http://127.0.0.1:" + port
	deadline := time.Now().Add(5 * time.Second)
	for {
		resp, err := http.Get(base + "/healthz")
		if err == nil {
			resp.Body.Close()
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("demo-app did not come up: %v\n%s", err, stderr)
		}
		time.Sleep(20 * time.Millisecond)
	}

	type answer struct {
		code int
		body string
		err  error
	}
	ansc := make(chan answer, 1)
	go func() {
		resp, err := http.Get(base + "/")
		if err != nil {
			ansc <- answer{err: err}
			return
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		ansc <- answer{code: resp.StatusCode, body: string(b)}
	}()
	time.Sleep(100 * time.Millisecond)
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	a := <-ansc
	if a.err != nil || a.code != 200 || !strings.Contains(a.body, `"version":"9.9.9"`) || !strings.Contains(a.body, `"instance":"`+port+`"`) {
		t.Fatalf("in-flight request: %d %q %v", a.code, a.body, a.err)
	}
	if err := cmd.Wait(); err != nil {
		t.Fatalf("exit: %v\n%s", err, stderr)
	}
	// One start line with version and port.
	var started int
	sc := bufio.NewScanner(strings.NewReader(stderr.String()))
	for sc.Scan() {
		if strings.Contains(sc.Text(), "version=9.9.9") && strings.Contains(sc.Text(), "port="+port) {
			started++
		}
	}
	if started != 1 {
		t.Fatalf("want one start line with version and port, log:\n%s", stderr)
	}
}

func TestStartupDelayHoldsListening(t *testing.T) {
	port := freePort(t)
	cmd, stderr := child(t, "PORT="+port, "STARTUP_DELAY=400ms")
	start := time.Now()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill()
	var upAfter time.Duration
	for time.Since(start) < 5*time.Second {
		resp, err := http.Get("http://127.0.0.1:" + port + "/healthz")
		if err == nil {
			resp.Body.Close()
			upAfter = time.Since(start)
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if upAfter < 400*time.Millisecond {
		t.Fatalf("listening after %v, want at least STARTUP_DELAY=400ms\n%s", upAfter, stderr)
	}
	_ = cmd.Process.Signal(syscall.SIGINT)
	if err := cmd.Wait(); err != nil {
		t.Fatalf("exit after SIGINT: %v\n%s", err, stderr)
	}
}
