package loadgen

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// target is an httptest server on 127.0.0.1 that counts its requests.
type target struct {
	*httptest.Server
	hits atomic.Int64
}

func newTarget(t *testing.T, h http.HandlerFunc) *target {
	t.Helper()
	tg := &target{}
	tg.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		tg.hits.Add(1)
		h(w, r)
	}))
	t.Cleanup(tg.Close)
	return tg
}

func okHandler(version string) http.HandlerFunc {
	return func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprintf(w, `{"version": %q, "instance": "1"}`, version)
	}
}

// bounded is a context that ends a test that would otherwise hang.
func bounded(t *testing.T) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func TestRatePacing(t *testing.T) {
	tg := newTarget(t, okHandler("1.0.0"))
	var mu sync.Mutex
	var starts []time.Time
	sum, err := Run(bounded(t), Config{URL: tg.URL, Rate: 200, Duration: time.Second, MaxRequests: 10_000},
		func(r Result) { mu.Lock(); starts = append(starts, r.Start); mu.Unlock() })
	if err != nil {
		t.Fatal(err)
	}
	if sum.Sent < 190 || sum.Sent > 210 {
		t.Fatalf("200 rps for 1s sent %d, want 190..210 (%v)", sum.Sent, sum)
	}
	if sum.OK != sum.Sent || int(tg.hits.Load()) != sum.Sent || len(starts) != sum.Sent {
		t.Fatalf("sent %d, ok %d, target saw %d, onResult saw %d", sum.Sent, sum.OK, tg.hits.Load(), len(starts))
	}
	if sum.Elapsed < 990*time.Millisecond || sum.Elapsed > 1500*time.Millisecond {
		t.Fatalf("elapsed %v for a 1s run", sum.Elapsed)
	}
	// Paced, not bursted: about half go out in each half second.
	first := starts[0]
	for _, s := range starts {
		if s.Before(first) {
			first = s
		}
	}
	var firstHalf int
	for _, s := range starts {
		if s.Sub(first) < 500*time.Millisecond {
			firstHalf++
		}
	}
	if firstHalf < 85 || firstHalf > 115 {
		t.Fatalf("%d of %d requests in the first half second, want about 100", firstHalf, sum.Sent)
	}
}

func TestMaxRequestsCaps(t *testing.T) {
	tg := newTarget(t, okHandler("1.0.0"))
	start := time.Now()
	sum, err := Run(bounded(t), Config{URL: tg.URL, Rate: 1000, MaxRequests: 25}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if sum.Sent != 25 || sum.OK != 25 || tg.hits.Load() != 25 {
		t.Fatalf("MaxRequests 25: sent %d ok %d, target saw %d", sum.Sent, sum.OK, tg.hits.Load())
	}
	if d := time.Since(start); d > time.Second {
		t.Fatalf("25 requests at 1000 rps took %v", d)
	}
}

func TestRefusesNonLoopbackWithoutSending(t *testing.T) {
	for _, u := range []string{
		"http://10.0.0.1/",
		"http://example.com/",
		"https://example.com:8443/x",
		"http://localhost.example.com/",
		"http://127.0.0.1.nip.io/",
		"http://0.0.0.0:8080/",
		"http://[::]:8080/",
		"http://[::ffff:10.0.0.1]/",
		"http://192.168.1.10:8080/",
		"http://user@10.0.0.1/",
	} {
		called := false
		start := time.Now()
		sum, err := Run(bounded(t), Config{URL: u, Rate: 100, MaxRequests: 10}, func(Result) { called = true })
		if !errors.Is(err, ErrNotLoopback) {
			t.Errorf("%s: err %v, want ErrNotLoopback", u, err)
		}
		if called || sum.Sent != 0 || time.Since(start) > 100*time.Millisecond {
			t.Errorf("%s: sent %d (onResult called: %v) in %v", u, sum.Sent, called, time.Since(start))
		}
	}
}

func TestLoopbackForms(t *testing.T) {
	for _, u := range []string{
		"http://127.0.0.1/", "http://127.0.0.1:8080/x?y=1", "http://127.1.2.3:9/", "http://[::1]:8080/",
		"http://localhost:8080/", "http://LOCALHOST/", "http://localhost./", "https://127.0.0.1/",
		"http://[::ffff:127.0.0.1]:80/",
	} {
		if _, err := CheckURL(u); err != nil {
			t.Errorf("%s: %v", u, err)
		}
	}
	for _, u := range []string{"ftp://127.0.0.1/", "127.0.0.1:8080", "http:///x", "://x"} {
		if _, err := CheckURL(u); err == nil {
			t.Errorf("%s: accepted", u)
		}
	}
}

func TestDialRefusesNonLoopbackAddresses(t *testing.T) {
	if err := dialLoopbackOnly("tcp", "127.0.0.1:80", nil); err != nil {
		t.Fatal(err)
	}
	if err := dialLoopbackOnly("tcp6", "[::1]:80", nil); err != nil {
		t.Fatal(err)
	}
	// localhost resolving off this machine is refused at connect time.
	if err := dialLoopbackOnly("tcp", "10.0.0.1:80", nil); !errors.Is(err, ErrNotLoopback) {
		t.Fatalf("10.0.0.1: %v", err)
	}
}

func TestBadConfig(t *testing.T) {
	u := "http://127.0.0.1:1/"
	for _, cfg := range []Config{
		{URL: u, Rate: 0, MaxRequests: 1},
		{URL: u, Rate: 10, MaxRequests: 0},
		{URL: u, Rate: 10, MaxRequests: 1, Duration: -time.Second},
		{URL: u, Rate: 10, MaxRequests: 1, Timeout: -time.Second},
		{URL: u, Rate: 10, MaxRequests: 1, Concurrency: -1},
	} {
		if _, err := Run(bounded(t), cfg, nil); err == nil {
			t.Errorf("%+v: accepted", cfg)
		}
	}
}

func TestCountsFailuresVersionsAndColors(t *testing.T) {
	var n atomic.Int64
	tg := newTarget(t, func(w http.ResponseWriter, _ *http.Request) {
		i := n.Add(1)
		version, color := "1.0.0", "blue"
		if i%5 == 0 { // every fifth goes to green
			version, color = "2.0.0", "green"
		}
		w.Header().Set(HeaderColorServed, color)
		if i%10 == 0 { // every tenth fails (a green one)
			w.WriteHeader(http.StatusBadGateway)
		}
		fmt.Fprintf(w, `{"version":%q}`, version)
	})
	var results atomic.Int64
	sum, err := Run(bounded(t), Config{URL: tg.URL, Rate: 1000, MaxRequests: 100, Concurrency: 1},
		func(r Result) {
			results.Add(1)
			if r.Err != nil || r.Status == 0 || r.Version == "" || r.Color == "" || r.Start.IsZero() || r.Latency <= 0 {
				t.Errorf("result %+v", r)
			}
		})
	if err != nil {
		t.Fatal(err)
	}
	if sum.Sent != 100 || sum.OK != 90 || sum.Failed != 10 || sum.ConnErrors != 0 || results.Load() != 100 {
		t.Fatalf("summary %v (results %d)", sum, results.Load())
	}
	if sum.ByVersion["1.0.0"] != 80 || sum.ByVersion["2.0.0"] != 20 || len(sum.ByVersion) != 2 {
		t.Fatalf("by version %v", sum.ByVersion)
	}
	if sum.ByColor["blue"] != 80 || sum.ByColor["green"] != 20 || len(sum.ByColor) != 2 {
		t.Fatalf("by color %v", sum.ByColor)
	}
	if sum.P50 <= 0 || sum.P99 < sum.P50 {
		t.Fatalf("p50 %v p99 %v", sum.P50, sum.P99)
	}
	s := sum.String()
	if !strings.HasPrefix(s, "sent=100 ok=90 failed=10 conn_errors=0 p50=") ||
		!strings.Contains(s, " by_version=1.0.0:80,2.0.0:20 by_color=blue:80,green:20 elapsed=") {
		t.Fatalf("String() = %q", s)
	}
}

func TestConnErrorsOnClosedPort(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	sum, err := Run(bounded(t), Config{URL: "http://" + addr + "/", Rate: 500, MaxRequests: 20},
		func(r Result) {
			if r.Err == nil || r.Status != 0 {
				t.Errorf("result %+v, want a connection error", r)
			}
		})
	if err != nil {
		t.Fatal(err)
	}
	if sum.Sent != 20 || sum.ConnErrors != 20 || sum.OK != 0 || sum.Failed != 0 {
		t.Fatalf("summary %v", sum)
	}
	if sum.P50 != 0 || len(sum.ByVersion) != 0 {
		t.Fatalf("percentiles or versions from no answer: %v", sum)
	}
}

func TestTimeoutIsAConnError(t *testing.T) {
	release := make(chan struct{})
	tg := newTarget(t, func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
	})
	defer close(release) // before tg.Close (cleanup), so no handler hangs it
	start := time.Now()
	sum, err := Run(bounded(t), Config{URL: tg.URL, Rate: 100, MaxRequests: 3, Timeout: 150 * time.Millisecond}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if sum.Sent != 3 || sum.ConnErrors != 3 {
		t.Fatalf("summary %v", sum)
	}
	if d := time.Since(start); d > time.Second {
		t.Fatalf("3 timeouts of 150ms took %v", d)
	}
}

func TestCancelStopsSendingAndWaitsForInFlight(t *testing.T) {
	tg := newTarget(t, func(w http.ResponseWriter, _ *http.Request) {
		time.Sleep(300 * time.Millisecond)
		okHandler("1.0.0")(w, nil)
	})
	ctx, cancel := context.WithCancel(bounded(t))
	time.AfterFunc(200*time.Millisecond, cancel)
	start := time.Now()
	sum, err := Run(ctx, Config{URL: tg.URL, Rate: 50, MaxRequests: 1000}, nil)
	if err != nil {
		t.Fatal(err)
	}
	// About 10 sent in 200ms, each answered 300ms later: none cut off by the cancel.
	if sum.Sent < 5 || sum.Sent > 15 || sum.OK != sum.Sent {
		t.Fatalf("summary %v", sum)
	}
	if d := time.Since(start); d < 450*time.Millisecond || d > 2*time.Second {
		t.Fatalf("returned after %v: did not wait for in-flight requests", d)
	}
}

func TestSlowTargetSkipsInsteadOfBursting(t *testing.T) {
	tg := newTarget(t, func(w http.ResponseWriter, _ *http.Request) {
		time.Sleep(100 * time.Millisecond)
	})
	sum, err := Run(bounded(t), Config{URL: tg.URL, Rate: 200, Duration: 500 * time.Millisecond, MaxRequests: 10_000, Concurrency: 2}, nil)
	if err != nil {
		t.Fatal(err)
	}
	// 2 in flight, 100ms each: about 10 sent in 500ms; the other ~90 skipped.
	if sum.Sent < 6 || sum.Sent > 14 || sum.OK != sum.Sent || sum.Skipped < 70 || sum.Sent+sum.Skipped > 105 {
		t.Fatalf("summary %v (skipped %d)", sum, sum.Skipped)
	}
	if !strings.Contains(sum.String(), fmt.Sprintf(" skipped=%d", sum.Skipped)) {
		t.Fatalf("String() = %q", sum.String())
	}
}

func TestRedirectIsNotFollowed(t *testing.T) {
	tg := newTarget(t, func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "http://10.0.0.1/", http.StatusFound)
	})
	sum, err := Run(bounded(t), Config{URL: tg.URL, Rate: 100, MaxRequests: 2}, func(r Result) {
		if r.Status != http.StatusFound {
			t.Errorf("result %+v, want the 302 itself", r)
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	if sum.Failed != 2 || sum.ConnErrors != 0 {
		t.Fatalf("summary %v", sum)
	}
}

func TestLocalhostTarget(t *testing.T) {
	tg := newTarget(t, okHandler("1.0.0"))
	sum, err := Run(bounded(t), Config{URL: strings.Replace(tg.URL, "127.0.0.1", "localhost", 1), Rate: 100, MaxRequests: 2}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if sum.OK != 2 || sum.ByVersion["1.0.0"] != 2 {
		t.Fatalf("summary %v", sum)
	}
}

func TestSummaryString(t *testing.T) {
	s := Summary{
		Sent: 5000, OK: 5000,
		ByVersion: map[string]int{"2.0.0": 500, "1.0.0": 4500},
		P50:       1234567 * time.Nanosecond, P99: 4 * time.Millisecond, Elapsed: 25*time.Second + 3*time.Millisecond,
	}
	want := "sent=5000 ok=5000 failed=0 conn_errors=0 p50=1.2ms p99=4ms by_version=1.0.0:4500,2.0.0:500 elapsed=25s"
	if got := s.String(); got != want {
		t.Fatalf("got  %q\nwant %q", got, want)
	}
	if got := (Summary{}).String(); got != "sent=0 ok=0 failed=0 conn_errors=0 p50=0s p99=0s by_version=- elapsed=0s" {
		t.Fatalf("empty: %q", got)
	}
}

func TestPercentile(t *testing.T) {
	var d []time.Duration
	for i := 1; i <= 100; i++ {
		d = append(d, time.Duration(i)*time.Millisecond)
	}
	if p := percentile(d, 50); p != 50*time.Millisecond {
		t.Fatalf("p50 %v", p)
	}
	if p := percentile(d, 99); p != 99*time.Millisecond {
		t.Fatalf("p99 %v", p)
	}
	if p := percentile(d[:1], 99); p != time.Millisecond {
		t.Fatalf("p99 of one %v", p)
	}
}
