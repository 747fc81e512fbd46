package prometheus

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cutoverhq/cutover/providers"
	"github.com/cutoverhq/cutover/router"
	"github.com/cutoverhq/cutover/tests/harness"
)

// TestGuardWithRealPrometheus runs the default queries against a real
// Prometheus scraping a real router, with real traffic through it to a green
// that fails one request in ten.
func TestGuardWithRealPrometheus(t *testing.T) {
	if testing.Short() {
		t.Skip("starts Prometheus and sends traffic for several seconds")
	}
	backend := func(failEvery10 bool) string {
		var n atomic.Int64
		s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
			if req.URL.Path != "/healthz" && failEvery10 && n.Add(1)%10 == 0 {
				http.Error(w, "boom", http.StatusInternalServerError)
				return
			}
			_, _ = io.WriteString(w, "ok")
		}))
		t.Cleanup(s.Close)
		return s.URL
	}
	blue, green := backend(false), backend(true)

	const token = "prom-test-token"
	r, err := router.New(router.Config{App: "demo", Listen: "127.0.0.1:0", Admin: "127.0.0.1:0",
		Token: token, HealthInterval: 200 * time.Millisecond, MetricsOpen: true})
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
	c := router.NewClient("http://"+r.AdminAddr(), token)
	if err := c.SetPool(ctx, router.Blue, []string{blue}); err != nil {
		t.Fatal(err)
	}
	if err := c.SetPool(ctx, router.Green, []string{green}); err != nil {
		t.Fatal(err)
	}
	if err := c.SetWeight(ctx, 50); err != nil {
		t.Fatal(err)
	}

	prom := harness.StartPrometheus(t, "http://"+r.AdminAddr()+"/metrics")
	prom.WaitForTarget(t, 10*time.Second)

	// About 100 requests a second for 5s, half of them to green.
	tctx, stopTraffic := context.WithCancel(context.Background())
	client := &http.Client{Timeout: 2 * time.Second}
	var sent atomic.Int64
	var wg sync.WaitGroup
	for range 2 {
		wg.Go(func() {
			for tctx.Err() == nil && sent.Add(1) <= 1000 {
				if resp, err := client.Get("http://" + r.Addr() + "/"); err == nil {
					_, _ = io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
				}
				select {
				case <-tctx.Done():
				case <-time.After(20 * time.Millisecond):
				}
			}
		})
	}
	stop := sync.OnceFunc(func() { stopTraffic(); wg.Wait(); client.CloseIdleConnections() })
	defer stop()
	time.Sleep(5 * time.Second)

	p := mustNew(t, map[string]any{"address": prom.URL(), "step": "2s", "lookback": "6s"})
	v, err := p.Guard(context.Background(), providers.Ref{App: "demo", Version: "v2", PreviousVersion: "v1"})
	stop()
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%s (%d requests sent)", v, sent.Load())
	if v.Result != providers.Fail {
		t.Fatalf("got %s, want Fail", v)
	}

	// Prometheus gone: the guard cannot read it.
	prom.Stop()
	v, err = p.Guard(context.Background(), providers.Ref{App: "demo", Version: "v2"})
	if err != nil {
		t.Fatal(err)
	}
	if v.Result != providers.Inconclusive || !strings.Contains(v.Summary, "prometheus at "+prom.URL()) {
		t.Fatalf("after Stop: got %s, want Inconclusive", v)
	}
}
