package prometheus

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cutoverhq/cutover/analysis"
	"github.com/cutoverhq/cutover/providers"
	"github.com/cutoverhq/cutover/router"
	"github.com/cutoverhq/cutover/tests/harness"
)

// backend is a color's app: it answers every request, failing one in
// failEvery (0: none), and counts what it served.
type backend struct {
	url            string
	served, failed atomic.Int64
}

func startBackend(t *testing.T, failEvery int64) *backend {
	b := &backend{}
	s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		if req.URL.Path == "/healthz" {
			_, _ = io.WriteString(w, "ok")
			return
		}
		n := b.served.Add(1)
		if failEvery > 0 && n%failEvery == 0 {
			b.failed.Add(1)
			http.Error(w, "boom", http.StatusInternalServerError)
			return
		}
		_, _ = io.WriteString(w, "ok")
	}))
	t.Cleanup(s.Close)
	b.url = s.URL
	return b
}

// counts is a backend's counters at one moment.
type counts struct{ served, failed int64 }

func (b *backend) counts() counts { return counts{b.served.Load(), b.failed.Load()} }

// key groups series as the analysis sums them.
type key struct {
	color  providers.Color
	field  analysis.Field
	metric string
}

// totals sums, per color and field, each series' growth from the first
// snapshot to the last (a series the first lacks counts from 0), or from 0
// when fromZero.
func totals(snaps []analysis.Snapshot, fromZero bool) map[key]float64 {
	out := map[key]float64{}
	if len(snaps) == 0 {
		return out
	}
	first := map[string]float64{}
	id := func(s analysis.Series) string {
		return fmt.Sprintf("%s %s %s %s", s.Color, s.Field, s.Metric, s.ID)
	}
	for _, s := range snaps[0].Series {
		if !fromZero {
			first[id(s)] = s.Value
		}
	}
	for _, s := range snaps[len(snaps)-1].Series {
		if s.Field == analysis.FieldBucket {
			if math.IsInf(s.Le, 1) {
				out[key{s.Color, "+Inf bucket", ""}] += s.Value - first[id(s)]
			}
			continue
		}
		out[key{s.Color, s.Field, s.Metric}] += s.Value - first[id(s)]
	}
	return out
}

// TestRangeWithRealPrometheus reads a real Prometheus scraping a real router,
// with a bounded load through it to a blue that always answers and a green
// that fails one request in ten, and checks that the counters' growth adds up
// to exactly the requests each backend served.
func TestRangeWithRealPrometheus(t *testing.T) {
	if testing.Short() {
		t.Skip("starts Prometheus and sends traffic for several seconds")
	}
	began := time.Now()
	blue, green := startBackend(t, 0), startBackend(t, 10)

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
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	c := router.NewClient("http://"+r.AdminAddr(), token)
	if err := c.SetPool(ctx, router.Blue, []string{blue.url}); err != nil {
		t.Fatal(err)
	}
	if err := c.SetPool(ctx, router.Green, []string{green.url}); err != nil {
		t.Fatal(err)
	}
	if err := c.SetWeight(ctx, 50); err != nil {
		t.Fatal(err)
	}

	prom := harness.StartPrometheus(t, "http://"+r.AdminAddr()+"/metrics")
	prom.WaitForTarget(t, 15*time.Second)
	t.Logf("prometheus up after %s", time.Since(began).Round(time.Millisecond))

	// An app metric read from the router's counters too: the share of 200s.
	p := mustNew(t, map[string]any{"address": prom.URL(), "step": "1s", "metrics": []any{map[string]any{
		"name": "ok share", "kind": "proportion", "better": "higher", "margin": 0.02,
		"numerator":   `cutover_router_requests_total{color="{{.Color}}",code="200"}`,
		"denominator": `cutover_router_requests_total{color="{{.Color}}"}`,
	}}})
	demo := providers.Ref{App: "demo", Version: "v2", PreviousVersion: "v1"}

	client := &http.Client{Timeout: 2 * time.Second}
	defer client.CloseIdleConnections()
	// load sends n requests through the router from 3 clients, 10ms apart
	// each, and returns how many were answered.
	load := func(n int64) int64 {
		var next, answered atomic.Int64
		var wg sync.WaitGroup
		for range 3 {
			wg.Go(func() {
				for next.Add(1) <= n && ctx.Err() == nil {
					resp, err := client.Get("http://" + r.Addr() + "/")
					if err != nil {
						t.Errorf("request: %v", err)
						continue
					}
					_, _ = io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
					answered.Add(1)
					time.Sleep(10 * time.Millisecond)
				}
			})
		}
		wg.Wait()
		return answered.Load()
	}
	// until reads [from, now] until the counters grew by what the backends
	// served since the baseline (or, fromZero, until they are what the
	// backends served), and returns the snapshots.
	until := func(from time.Time, base map[providers.Color]counts, fromZero bool) []analysis.Snapshot {
		t.Helper()
		want := map[key]float64{}
		for color, b := range map[providers.Color]*backend{providers.Blue: blue, providers.Green: green} {
			now := b.counts()
			served, failed := float64(now.served-base[color].served), float64(now.failed-base[color].failed)
			want[key{color, analysis.FieldRequests, ""}] = served
			want[key{color, "+Inf bucket", ""}] = served
			want[key{color, analysis.FieldDen, "ok share"}] = served
			want[key{color, analysis.FieldNum, "ok share"}] = served - failed
			if failed > 0 {
				want[key{color, analysis.FieldErrors, ""}] = failed
			}
		}
		deadline := time.Now().Add(15 * time.Second)
		for {
			snaps, err := p.Range(ctx, demo, from, time.Now(), time.Second)
			if err != nil {
				t.Fatalf("Range: %v", err)
			}
			got := totals(snaps, fromZero)
			if fmt.Sprint(got) == fmt.Sprint(want) {
				return snaps
			}
			if time.Now().After(deadline) {
				t.Fatalf("the counters grew by\n%v\nwant\n%v", got, want)
			}
			time.Sleep(300 * time.Millisecond)
		}
	}

	// A first batch, so that the range starts with series already there.
	if n := load(60); n != 60 {
		t.Fatalf("warm-up: %d of 60 requests answered", n)
	}
	until(time.Now(), map[providers.Color]counts{}, true)
	from := time.Now()
	base := map[providers.Color]counts{providers.Blue: blue.counts(), providers.Green: green.counts()}

	loadBegan := time.Now()
	const sent = 600
	if n := load(sent); n != sent {
		t.Fatalf("%d of %d requests answered", n, sent)
	}
	t.Logf("%d requests sent in %s", sent, time.Since(loadBegan).Round(time.Millisecond))
	snaps := until(from, base, false)
	t.Logf("%d snapshots; blue served %d, green %d (%d failed)", len(snaps),
		blue.counts().served-base[providers.Blue].served, green.counts().served-base[providers.Green].served,
		green.counts().failed-base[providers.Green].failed)

	tot := totals(snaps, false)
	if b, g := tot[key{providers.Blue, analysis.FieldRequests, ""}], tot[key{providers.Green, analysis.FieldRequests, ""}]; b+g != sent || b == 0 || g == 0 {
		t.Errorf("blue's requests grew by %v and green's by %v, want %d in all, to both", b, g, sent)
	}
	// The snapshots are one a step from `from`, and every series only grows,
	// by whole requests.
	if d := snaps[0].At.Sub(from); d < -time.Millisecond || d > time.Millisecond {
		t.Errorf("first snapshot at %s, want `from` %s", snaps[0].At, from)
	}
	prev := map[string]float64{}
	grew := 0
	for i, s := range snaps {
		if i > 0 && s.At.Sub(snaps[i-1].At) != time.Second {
			t.Errorf("snapshot %d at %s, %s after the one before, want 1s", i, s.At, s.At.Sub(snaps[i-1].At))
		}
		ids := map[string]bool{}
		growth := false
		for _, se := range s.Series {
			k := fmt.Sprintf("%s %s %s %s", se.Color, se.Field, se.Metric, se.ID)
			if ids[k] {
				t.Errorf("snapshot %d has %s twice", i, k)
			}
			ids[k] = true
			if se.Value != math.Trunc(se.Value) || se.Value < prev[k] {
				t.Errorf("snapshot %d: %s is %v after %v: want whole, growing counts", i, k, se.Value, prev[k])
			}
			growth = growth || se.Value > prev[k]
			prev[k] = se.Value
		}
		if i > 0 && growth {
			grew++
		}
	}
	if grew < 2 {
		t.Errorf("the counters grew in %d steps, want the load spread over several", grew)
	}
	// Both colors' buckets: the bounds the router's own page shows, +Inf among them.
	last := snaps[len(snaps)-1]
	for _, color := range []providers.Color{providers.Blue, providers.Green} {
		want := routerBounds(t, "http://"+r.AdminAddr()+"/metrics", color)
		var les []float64
		for _, se := range last.Series {
			if se.Color == color && se.Field == analysis.FieldBucket {
				les = append(les, se.Le)
				if !strings.HasPrefix(se.ID, `cutover_router_request_duration_seconds_bucket{color="`+string(color)+`",`) || !strings.Contains(se.ID, `le="`) {
					t.Errorf("bucket ID %s", se.ID)
				}
			}
		}
		slices.Sort(les)
		if !slices.Equal(les, want) || len(les) < 2 || !math.IsInf(les[len(les)-1], 1) {
			t.Errorf("%s's bucket bounds %v, want the router's %v, +Inf last", color, les, want)
		}
	}
	t.Logf("request series: %v", func() (ids []string) {
		for _, se := range last.Series {
			if se.Field == analysis.FieldRequests {
				ids = append(ids, se.ID)
			}
		}
		return ids
	}())

	// Prometheus gone: Range fails, and the failure is worth retrying.
	prom.Stop()
	_, err = p.Range(ctx, demo, from, time.Now(), time.Second)
	if err == nil || errors.Is(err, providers.ErrBadConfig) || !strings.Contains(err.Error(), "connection refused") {
		t.Fatalf("after Stop: got %v, want a plain error", err)
	}
	if w := p.Where(); w != "prometheus at "+prom.URL() {
		t.Errorf("Where() = %q", w)
	}
	t.Logf("took %s", time.Since(began).Round(time.Millisecond))
}

// routerBounds reads a color's latency bucket bounds off the router's
// /metrics page, sorted.
func routerBounds(t *testing.T, url string, color providers.Color) []float64 {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	page, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	var les []float64
	for _, line := range strings.Split(string(page), "\n") {
		if !strings.HasPrefix(line, "cutover_router_request_duration_seconds_bucket{") || !strings.Contains(line, `color="`+string(color)+`"`) {
			continue
		}
		_, rest, _ := strings.Cut(line, `le="`)
		le, _, _ := strings.Cut(rest, `"`)
		v, err := strconv.ParseFloat(le, 64)
		if err != nil {
			t.Fatalf("router bucket %s: %v", line, err)
		}
		les = append(les, v)
	}
	slices.Sort(les)
	return les
}
