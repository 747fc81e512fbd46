package router

import (
	"math"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

func TestMetrics(t *testing.T) {
	b1, b2, g := newBackend(t, "blue-1"), newBackend(t, "blue-2"), newBackend(t, "green")
	h := start(t, func(c *Config) { c.HealthInterval = time.Hour })
	h.setPool(Blue, b1, b2)
	h.setPool(Green, g)
	h.setGreen(20)
	h.load(10, 1, "/")
	b2.Close()
	h.load(10, 1, "/") // blue-2 fails once: an ejection and a retry
	h.mustCall("PUT", "/v1/maintenance", MaintenanceRequest{Enabled: true})
	if resp, _, err := h.get("/"); err != nil || resp.StatusCode != http.StatusServiceUnavailable {
		t.Fatalf("maintenance: %v", err)
	}

	m := scrape(t, h)
	for _, want := range []string{
		`cutover_router_requests_total{code="200",color="green",instance="` + g.URL + `"} 4`,
		`cutover_router_requests_total{code="200",color="blue",instance="` + b1.URL + `"}`,
		`cutover_router_requests_total{code="503",color="none",instance="none"} 1`,
		`cutover_router_request_duration_seconds_count{color="blue"} 16`,
		`cutover_router_request_duration_seconds_bucket{color="green",le="+Inf"} 4`,
		`cutover_router_request_duration_seconds_bucket{color="green",le="60"} 4`,
		`cutover_router_request_duration_seconds_bucket{color="green",le="0.3023"} `,
		`cutover_router_in_flight{color="blue",instance="` + b1.URL + `"} 0`,
		`cutover_router_weight{color="blue"} 80`,
		`cutover_router_weight{color="green"} 20`,
		`cutover_router_retries_total 1`,
		`cutover_router_ejections_total{color="blue",instance="` + b2.URL + `"} 1`,
		`go_goroutines`, // the default registry has the Go collector
	} {
		if !strings.Contains(m, want) {
			t.Errorf("metrics lack %s", want)
		}
	}
	if n := strings.Count(m, `cutover_router_request_duration_seconds_bucket{color="blue",`); n != durationBucketCount+1 {
		t.Errorf("blue has %d duration buckets, want %d and +Inf", n, durationBucketCount)
	}
}

// The duration buckets resolve a change of 15% anywhere from 0.5ms to 60s (the
// latency judge sees a change only where a bound separates the two quantiles),
// and are no finer than that needs.
func TestDurationBuckets(t *testing.T) {
	b := durationBuckets()
	if len(b) != durationBucketCount || b[0] != 0.0005 || b[len(b)-1] != 60 {
		t.Fatalf("%d buckets from %v to %v, want %d from 0.0005 to 60", len(b), b[0], b[len(b)-1], durationBucketCount)
	}
	for i := 1; i < len(b); i++ {
		if r := b[i] / b[i-1]; r > 1.15 || r < 1.14 {
			t.Errorf("bound %d: %v/%v = %.4f, want 1.14-1.15", i, b[i], b[i-1], r)
		}
	}
	// One bound fewer could not keep the ratio at 1.15.
	if r := math.Pow(durationMax/durationMin, 1/float64(durationBucketCount-2)); r <= 1.15 {
		t.Errorf("%d bounds would do: ratio %.4f", durationBucketCount-1, r)
	}
	// Short le labels: at most four significant digits.
	for _, v := range b {
		if s := strconv.FormatFloat(v, 'g', -1, 64); len(strings.TrimLeft(strings.ReplaceAll(s, ".", ""), "0")) > 4 {
			t.Errorf("bound %s has more than four significant digits", s)
		}
	}
}

// A caller's registry gets the metrics; one that can be gathered is served.
func TestMetricsInCallersRegistry(t *testing.T) {
	reg := prometheus.NewRegistry()
	h := start(t, func(c *Config) { c.Registry = reg })
	h.setGreen(30)
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, mf := range mfs {
		if mf.GetName() != "cutover_router_weight" {
			continue
		}
		for _, m := range mf.GetMetric() {
			if m.GetLabel()[0].GetValue() == Green && m.GetGauge().GetValue() == 30 {
				found = true
			}
		}
	}
	if !found {
		t.Errorf("the caller's registry has no green weight of 30: %v", mfs)
	}
	if m := scrape(t, h); !strings.Contains(m, `cutover_router_weight{color="green"} 30`) {
		t.Errorf("served metrics:\n%s", m)
	}
	// A second router cannot register the same metrics in the same registry.
	if _, err := New(Config{Token: "x", Registry: reg}); err == nil || !strings.Contains(err.Error(), "register router metrics") {
		t.Errorf("second router in one registry: %v", err)
	}
}
