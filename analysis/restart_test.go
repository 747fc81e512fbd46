package analysis_test

import (
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cutoverhq/cutover/analysis"
	"github.com/cutoverhq/cutover/judge"
	"github.com/cutoverhq/cutover/providers"
	"github.com/cutoverhq/cutover/providers/scrape"
	"github.com/cutoverhq/cutover/router"
)

// TestRouterRestartMidSoak guards a soak through the real scrape provider
// reading a real router, and restarts the router (its counters start again
// from zero) between two checks: the guard counts the requests after the
// restart from zero, as Prometheus's increase() would, loses none of the
// others, and the verdict names the reset.
func TestRouterRestartMidSoak(t *testing.T) {
	const token = "restart-test-token"
	backend := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		_, _ = io.WriteString(w, "ok")
	}))
	t.Cleanup(backend.Close)
	free := func() string {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer l.Close()
		return l.Addr().String()
	}
	listen, admin := free(), free()
	state := filepath.Join(t.TempDir(), "router.json")
	start := func() *router.Router {
		r, err := router.New(router.Config{App: "shop", Listen: listen, Admin: admin, Token: token,
			HealthInterval: 100 * time.Millisecond, StateFile: state})
		if err != nil {
			t.Fatal(err)
		}
		if err := r.Start(); err != nil {
			t.Fatal(err)
		}
		return r
	}
	stop := func(r *router.Router) {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = r.Shutdown(ctx)
	}
	r := start()
	defer func() { stop(r) }()
	ctx := context.Background()
	c := router.NewClient("http://"+admin, token)
	for _, color := range []string{router.Blue, router.Green} {
		if err := c.SetPool(ctx, color, []string{backend.URL}); err != nil {
			t.Fatal(err)
		}
	}
	if err := c.SetWeight(ctx, 50); err != nil {
		t.Fatal(err)
	}
	send := func(n int) {
		for range n {
			resp, err := http.Get("http://" + listen + "/")
			if err != nil {
				t.Fatal(err)
			}
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
		}
	}
	waitHealthy := func() {
		deadline := time.Now().Add(5 * time.Second)
		for time.Now().Before(deadline) {
			if st, err := c.State(ctx); err == nil && len(st.Pools[router.Green]) > 0 && st.Pools[router.Green][0].Healthy {
				return
			}
			time.Sleep(50 * time.Millisecond)
		}
		t.Fatal("the router's pools never became healthy")
	}
	waitHealthy()
	src, err := scrape.New(map[string]any{"url": "http://" + admin + "/metrics", "token": map[string]any{"env": "RESTART_TEST_TOKEN"}})
	if err != nil {
		t.Fatal(err)
	}
	t.Setenv("RESTART_TEST_TOKEN", token)

	// The guard's clock: each interval's traffic is sent while it "sleeps",
	// and before the third check the router restarts.
	now := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	sleeps := 0
	clk := analysis.Clock{
		Now: func() time.Time { return now },
		Sleep: func(ctx context.Context, d time.Duration) error {
			sleeps++
			if sleeps == 3 {
				stop(r)
				r = start()
				waitHealthy()
			}
			send(100)
			now = now.Add(d)
			return ctx.Err()
		},
	}
	send(100) // before the soak: in the baseline
	g := analysis.GuardSpec{Start: now, Duration: 5 * time.Second, Interval: time.Second}
	var saved []byte
	v, err := analysis.Guard(ctx, src, providers.Ref{App: "shop", Version: "2", PreviousVersion: "1"}, g, nil,
		func(b []byte) { saved = b }, clk)
	if err != nil {
		t.Fatal(err)
	}
	notes := strings.Join(v.Notes, "\n")
	if !strings.Contains(notes, "counter reset: cutover_router_requests_total{") || !strings.Contains(notes, `color="green"`) {
		t.Errorf("the verdict does not name the reset: %s\nnotes: %s", v, notes)
	}
	// Five intervals of 100 requests were sent during the soak; none was lost
	// to the reset, and the 100 before it were not counted again.
	var mon judgeState
	mon.read(t, saved)
	if got := mon.Traffic.Blue + mon.Traffic.Green; got != 500 {
		t.Errorf("the guard counted %g requests, want the 500 sent during the soak", got)
	}
	t.Logf("verdict: %s\nnotes:\n%s", v.Summary, notes)
}

// judgeState is the part of the saved progress this test reads.
type judgeState struct {
	Traffic struct{ Blue, Green float64 }
}

func (s *judgeState) read(t *testing.T, saved []byte) {
	var p analysis.Progress
	if err := jsonUnmarshal(saved, &p); err != nil {
		t.Fatal(err)
	}
	var st judge.State
	if err := jsonUnmarshal(p.Judge, &st); err != nil {
		t.Fatal(err)
	}
	s.Traffic.Blue, s.Traffic.Green = st.Traffic.Blue, st.Traffic.Green
}

func jsonUnmarshal(b []byte, v any) error { return json.Unmarshal(b, v) }
