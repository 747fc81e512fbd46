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
	"reflect"
	"regexp"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cutoverhq/cutover/analysis"
	"github.com/cutoverhq/cutover/judge"
	"github.com/cutoverhq/cutover/providers"
	"github.com/cutoverhq/cutover/router"
)

var ref = providers.Ref{App: "shop", Version: "v2", PreviousVersion: "v1"}

func mustNew(t *testing.T, settings map[string]any) *Provider {
	t.Helper()
	p, err := New(settings)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return p
}

// pageServer serves the pages in turn (the last one from then on) and counts
// the scrapes.
func pageServer(t *testing.T, pages ...string) (*httptest.Server, *atomic.Int64) {
	t.Helper()
	var n atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		i := int(n.Add(1)) - 1
		w.Header().Set("Content-Type", "text/plain; version=0.0.4; charset=utf-8; escaping=underscores")
		_, _ = io.WriteString(w, pages[min(i, len(pages)-1)])
	}))
	t.Cleanup(srv.Close)
	return srv, &n
}

func snapshot(t *testing.T, p *Provider, r providers.Ref) analysis.Snapshot {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	s, err := p.Snapshot(ctx, r)
	if err != nil {
		t.Fatalf("Snapshot: %v", err)
	}
	return s
}

// byID indexes a snapshot's series, failing on an ID given twice.
func byID(t *testing.T, s analysis.Snapshot) map[string]analysis.Series {
	t.Helper()
	m := map[string]analysis.Series{}
	for _, x := range s.Series {
		if _, ok := m[x.ID]; ok {
			t.Errorf("ID %s is given twice", x.ID)
		}
		m[x.ID] = x
	}
	return m
}

func ids(s analysis.Snapshot) []string {
	var out []string
	for _, x := range s.Series {
		out = append(out, x.ID)
	}
	slices.Sort(out)
	return out
}

// sum adds the values of a color's series of a field (and app metric).
func sum(s analysis.Snapshot, c providers.Color, f analysis.Field, metric string) float64 {
	var v float64
	for _, x := range s.Series {
		if x.Color == c && x.Field == f && x.Metric == metric {
			v += x.Value
		}
	}
	return v
}

func count(s analysis.Snapshot, c providers.Color, f analysis.Field) int {
	n := 0
	for _, x := range s.Series {
		if x.Color == c && x.Field == f {
			n++
		}
	}
	return n
}

// routerPage is the router's admin /metrics as it looks mid-release, in the
// router's real format but with fewer duration buckets than its ladder (the
// scraper does not care how many), and without green's +Inf bucket, which
// the text format allows a page to leave out. Blue's one
// instance served 4120 requests, 3 of them 500s; green's two served 2050, 7
// of them 502s and 12 of them 404s (a client's mistake, not green's). The
// router answered 9 requests itself during maintenance (color none), and one
// green request took longer than the last bucket (10s).
const routerPage = `# HELP cutover_router_ejections_total Instances ejected after a failed connection, by color and instance.
# TYPE cutover_router_ejections_total counter
cutover_router_ejections_total{color="green",instance="http://10.0.2.8:8080"} 1
# HELP cutover_router_in_flight User requests in progress, by color and instance.
# TYPE cutover_router_in_flight gauge
cutover_router_in_flight{color="blue",instance="http://10.0.1.5:8080"} 2
cutover_router_in_flight{color="green",instance="http://10.0.2.7:8080"} 1
cutover_router_in_flight{color="green",instance="http://10.0.2.8:8080"} 0
# HELP cutover_router_request_duration_seconds Time to serve proxied user requests, by color.
# TYPE cutover_router_request_duration_seconds histogram
cutover_router_request_duration_seconds_bucket{color="blue",le="0.001"} 812
cutover_router_request_duration_seconds_bucket{color="blue",le="0.0025"} 2650
cutover_router_request_duration_seconds_bucket{color="blue",le="0.005"} 3710
cutover_router_request_duration_seconds_bucket{color="blue",le="0.01"} 3990
cutover_router_request_duration_seconds_bucket{color="blue",le="0.02"} 4080
cutover_router_request_duration_seconds_bucket{color="blue",le="0.03"} 4101
cutover_router_request_duration_seconds_bucket{color="blue",le="0.05"} 4110
cutover_router_request_duration_seconds_bucket{color="blue",le="0.075"} 4116
cutover_router_request_duration_seconds_bucket{color="blue",le="0.1"} 4119
cutover_router_request_duration_seconds_bucket{color="blue",le="0.15"} 4123
cutover_router_request_duration_seconds_bucket{color="blue",le="0.2"} 4123
cutover_router_request_duration_seconds_bucket{color="blue",le="0.3"} 4123
cutover_router_request_duration_seconds_bucket{color="blue",le="0.5"} 4123
cutover_router_request_duration_seconds_bucket{color="blue",le="0.75"} 4123
cutover_router_request_duration_seconds_bucket{color="blue",le="1"} 4123
cutover_router_request_duration_seconds_bucket{color="blue",le="1.5"} 4123
cutover_router_request_duration_seconds_bucket{color="blue",le="2.5"} 4123
cutover_router_request_duration_seconds_bucket{color="blue",le="5"} 4123
cutover_router_request_duration_seconds_bucket{color="blue",le="10"} 4123
cutover_router_request_duration_seconds_bucket{color="blue",le="+Inf"} 4123
cutover_router_request_duration_seconds_sum{color="blue"} 9.817
cutover_router_request_duration_seconds_count{color="blue"} 4123
cutover_router_request_duration_seconds_bucket{color="green",le="0.001"} 301
cutover_router_request_duration_seconds_bucket{color="green",le="0.0025"} 1200
cutover_router_request_duration_seconds_bucket{color="green",le="0.005"} 1800
cutover_router_request_duration_seconds_bucket{color="green",le="0.01"} 1950
cutover_router_request_duration_seconds_bucket{color="green",le="0.02"} 2010
cutover_router_request_duration_seconds_bucket{color="green",le="0.03"} 2030
cutover_router_request_duration_seconds_bucket{color="green",le="0.05"} 2040
cutover_router_request_duration_seconds_bucket{color="green",le="0.075"} 2045
cutover_router_request_duration_seconds_bucket{color="green",le="0.1"} 2047
cutover_router_request_duration_seconds_bucket{color="green",le="0.15"} 2048
cutover_router_request_duration_seconds_bucket{color="green",le="0.2"} 2049
cutover_router_request_duration_seconds_bucket{color="green",le="0.3"} 2049
cutover_router_request_duration_seconds_bucket{color="green",le="0.5"} 2049
cutover_router_request_duration_seconds_bucket{color="green",le="0.75"} 2049
cutover_router_request_duration_seconds_bucket{color="green",le="1"} 2049
cutover_router_request_duration_seconds_bucket{color="green",le="1.5"} 2049
cutover_router_request_duration_seconds_bucket{color="green",le="2.5"} 2049
cutover_router_request_duration_seconds_bucket{color="green",le="5"} 2049
cutover_router_request_duration_seconds_bucket{color="green",le="10"} 2049
cutover_router_request_duration_seconds_sum{color="green"} 21.402
cutover_router_request_duration_seconds_count{color="green"} 2050
# HELP cutover_router_requests_total User requests by the color and instance that served them and the status code (color and instance are none when the router answered itself).
# TYPE cutover_router_requests_total counter
cutover_router_requests_total{code="200",color="blue",instance="http://10.0.1.5:8080"} 4120
cutover_router_requests_total{code="200",color="green",instance="http://10.0.2.7:8080"} 1033
cutover_router_requests_total{code="200",color="green",instance="http://10.0.2.8:8080"} 998
cutover_router_requests_total{code="404",color="green",instance="http://10.0.2.8:8080"} 12
cutover_router_requests_total{code="500",color="blue",instance="http://10.0.1.5:8080"} 3
cutover_router_requests_total{code="502",color="green",instance="http://10.0.2.7:8080"} 7
cutover_router_requests_total{code="503",color="none",instance="none"} 9
# HELP cutover_router_retries_total Requests retried on another instance after a failed connection.
# TYPE cutover_router_retries_total counter
cutover_router_retries_total 2
# HELP cutover_router_weight Share of new user requests in percent, by color.
# TYPE cutover_router_weight gauge
cutover_router_weight{color="blue"} 90
cutover_router_weight{color="green"} 10
# HELP go_goroutines Number of goroutines that currently exist.
# TYPE go_goroutines gauge
go_goroutines 23
`

// routerPageLater is the same router a moment later: every counter grew,
// and the lines and labels come in another order (a page's order is not part
// of a series' name).
const routerPageLater = `# TYPE cutover_router_requests_total counter
cutover_router_requests_total{instance="http://10.0.2.8:8080",code="404",color="green"} 13
cutover_router_requests_total{instance="http://10.0.2.8:8080",code="200",color="green"} 1010
cutover_router_requests_total{instance="http://10.0.2.7:8080",code="502",color="green"} 8
cutover_router_requests_total{instance="http://10.0.2.7:8080",code="200",color="green"} 1040
cutover_router_requests_total{instance="http://10.0.1.5:8080",code="500",color="blue"} 3
cutover_router_requests_total{instance="http://10.0.1.5:8080",code="200",color="blue"} 4200
# TYPE cutover_router_request_duration_seconds histogram
cutover_router_request_duration_seconds_bucket{color="green",le="0.001"} 305
cutover_router_request_duration_seconds_bucket{color="green",le="0.0025"} 1210
cutover_router_request_duration_seconds_bucket{color="green",le="0.005"} 1815
cutover_router_request_duration_seconds_bucket{color="green",le="0.01"} 1970
cutover_router_request_duration_seconds_bucket{color="green",le="0.02"} 2030
cutover_router_request_duration_seconds_bucket{color="green",le="0.03"} 2050
cutover_router_request_duration_seconds_bucket{color="green",le="0.05"} 2060
cutover_router_request_duration_seconds_bucket{color="green",le="0.075"} 2065
cutover_router_request_duration_seconds_bucket{color="green",le="0.1"} 2067
cutover_router_request_duration_seconds_bucket{color="green",le="0.15"} 2068
cutover_router_request_duration_seconds_bucket{color="green",le="0.2"} 2070
cutover_router_request_duration_seconds_bucket{color="green",le="0.3"} 2070
cutover_router_request_duration_seconds_bucket{color="green",le="0.5"} 2070
cutover_router_request_duration_seconds_bucket{color="green",le="0.75"} 2070
cutover_router_request_duration_seconds_bucket{color="green",le="1"} 2070
cutover_router_request_duration_seconds_bucket{color="green",le="1.5"} 2070
cutover_router_request_duration_seconds_bucket{color="green",le="2.5"} 2070
cutover_router_request_duration_seconds_bucket{color="green",le="5"} 2070
cutover_router_request_duration_seconds_bucket{color="green",le="10"} 2070
cutover_router_request_duration_seconds_bucket{color="green",le="+Inf"} 2071
cutover_router_request_duration_seconds_sum{color="green"} 21.9
cutover_router_request_duration_seconds_count{color="green"} 2071
cutover_router_request_duration_seconds_bucket{color="blue",le="0.001"} 830
cutover_router_request_duration_seconds_bucket{color="blue",le="0.0025"} 2700
cutover_router_request_duration_seconds_bucket{color="blue",le="0.005"} 3780
cutover_router_request_duration_seconds_bucket{color="blue",le="0.01"} 4070
cutover_router_request_duration_seconds_bucket{color="blue",le="0.02"} 4160
cutover_router_request_duration_seconds_bucket{color="blue",le="0.03"} 4181
cutover_router_request_duration_seconds_bucket{color="blue",le="0.05"} 4190
cutover_router_request_duration_seconds_bucket{color="blue",le="0.075"} 4196
cutover_router_request_duration_seconds_bucket{color="blue",le="0.1"} 4199
cutover_router_request_duration_seconds_bucket{color="blue",le="0.15"} 4203
cutover_router_request_duration_seconds_bucket{color="blue",le="0.2"} 4203
cutover_router_request_duration_seconds_bucket{color="blue",le="0.3"} 4203
cutover_router_request_duration_seconds_bucket{color="blue",le="0.5"} 4203
cutover_router_request_duration_seconds_bucket{color="blue",le="0.75"} 4203
cutover_router_request_duration_seconds_bucket{color="blue",le="1"} 4203
cutover_router_request_duration_seconds_bucket{color="blue",le="1.5"} 4203
cutover_router_request_duration_seconds_bucket{color="blue",le="2.5"} 4203
cutover_router_request_duration_seconds_bucket{color="blue",le="5"} 4203
cutover_router_request_duration_seconds_bucket{color="blue",le="10"} 4203
cutover_router_request_duration_seconds_bucket{color="blue",le="+Inf"} 4203
cutover_router_request_duration_seconds_sum{color="blue"} 10.01
cutover_router_request_duration_seconds_count{color="blue"} 4203
`

var pageBuckets = []float64{.001, .0025, .005, .01, .02, .03, .05, .075, .1, .15, .2, .3, .5, .75, 1, 1.5, 2.5, 5, 10}

func TestSnapshotRouterPage(t *testing.T) {
	srv, _ := pageServer(t, routerPage, routerPageLater)
	p := mustNew(t, map[string]any{"url": srv.URL + "/metrics"})
	before := time.Now()
	s := snapshot(t, p, ref)
	if s.At.Before(before) || s.At.After(time.Now()) {
		t.Errorf("At = %v, want the time of the scrape", s.At)
	}
	got := byID(t, s)

	const reqs = "cutover_router_requests_total"
	for _, want := range []analysis.Series{
		{ID: reqs + `{code="200",color="blue",instance="http://10.0.1.5:8080"}`, Color: providers.Blue, Field: analysis.FieldRequests, Value: 4120},
		{ID: reqs + `{code="500",color="blue",instance="http://10.0.1.5:8080"}`, Color: providers.Blue, Field: analysis.FieldRequests, Value: 3},
		{ID: reqs + `{code="500",color="blue",instance="http://10.0.1.5:8080"} (errors)`, Color: providers.Blue, Field: analysis.FieldErrors, Value: 3},
		{ID: reqs + `{code="200",color="green",instance="http://10.0.2.7:8080"}`, Color: providers.Green, Field: analysis.FieldRequests, Value: 1033},
		{ID: reqs + `{code="200",color="green",instance="http://10.0.2.8:8080"}`, Color: providers.Green, Field: analysis.FieldRequests, Value: 998},
		{ID: reqs + `{code="404",color="green",instance="http://10.0.2.8:8080"}`, Color: providers.Green, Field: analysis.FieldRequests, Value: 12},
		{ID: reqs + `{code="502",color="green",instance="http://10.0.2.7:8080"}`, Color: providers.Green, Field: analysis.FieldRequests, Value: 7},
		{ID: reqs + `{code="502",color="green",instance="http://10.0.2.7:8080"} (errors)`, Color: providers.Green, Field: analysis.FieldErrors, Value: 7},
		{ID: `cutover_router_request_duration_seconds_bucket{color="blue",le="0.0025"}`, Color: providers.Blue, Field: analysis.FieldBucket, Le: 0.0025, Value: 2650},
		{ID: `cutover_router_request_duration_seconds_bucket{color="blue",le="+Inf"}`, Color: providers.Blue, Field: analysis.FieldBucket, Le: math.Inf(1), Value: 4123},
		{ID: `cutover_router_request_duration_seconds_bucket{color="green",le="10"}`, Color: providers.Green, Field: analysis.FieldBucket, Le: 10, Value: 2049},
		// Not on the page: the histogram's count, one more than the last
		// finite bucket.
		{ID: `cutover_router_request_duration_seconds_bucket{color="green",le="+Inf"}`, Color: providers.Green, Field: analysis.FieldBucket, Le: math.Inf(1), Value: 2050},
	} {
		if g, ok := got[want.ID]; !ok {
			t.Errorf("no series %s", want.ID)
		} else if g != want {
			t.Errorf("got %+v\nwant %+v", g, want)
		}
	}
	// Requests: every blue and green line, and nothing the router answered
	// itself. Errors: the 5xx only, not green's 404s.
	if g, b := sum(s, providers.Green, analysis.FieldRequests, ""), sum(s, providers.Blue, analysis.FieldRequests, ""); g != 2050 || b != 4123 {
		t.Errorf("requests: green %v, blue %v, want 2050 and 4123", g, b)
	}
	if g, b := sum(s, providers.Green, analysis.FieldErrors, ""), sum(s, providers.Blue, analysis.FieldErrors, ""); g != 7 || b != 3 {
		t.Errorf("errors: green %v, blue %v, want 7 and 3", g, b)
	}
	for _, c := range []providers.Color{providers.Blue, providers.Green} {
		var les []float64
		for _, x := range s.Series {
			if x.Color == c && x.Field == analysis.FieldBucket {
				les = append(les, x.Le)
			}
		}
		if want := append(slices.Clone(pageBuckets), math.Inf(1)); !slices.Equal(les, want) {
			t.Errorf("%s buckets: got %v, want %v", c, les, want)
		}
	}
	if len(s.Series) != 8+2*20 {
		t.Errorf("got %d series, want 8 request and error series and 2×20 buckets", len(s.Series))
	}
	for _, x := range s.Series {
		if x.Metric != "" || strings.Contains(x.ID, "none") || strings.Contains(x.ID, "in_flight") || strings.Contains(x.ID, "weight") || strings.Contains(x.ID, "ejections") {
			t.Errorf("series %+v is not the judge's", x)
		}
	}

	// A moment later, in another order: the same IDs, the new values.
	later := snapshot(t, p, ref)
	if !slices.Equal(ids(later), ids(s)) {
		t.Errorf("IDs changed between scrapes:\n%v\n%v", ids(s), ids(later))
	}
	if !later.At.After(s.At) {
		t.Errorf("second snapshot at %v, not after the first at %v", later.At, s.At)
	}
	if g := byID(t, later)[reqs+`{code="502",color="green",instance="http://10.0.2.7:8080"} (errors)`].Value; g != 8 {
		t.Errorf("green 502s later: got %v, want 8", g)
	}
}

// TestSnapshotCustomSeries reads a page without TYPE lines (untyped
// samples), with its own names for the counter and labels.
func TestSnapshotCustomSeries(t *testing.T) {
	srv, _ := pageServer(t, `http_requests_total{pool="green",status="200",path="/cart"} 100
http_requests_total{pool="green",status="429",path="/cart"} 5
http_requests_total{pool="green",status="200",path="/say \"hi\"\\"} 1
http_requests_total{pool="blue",status="503",path="/cart"} 2
http_requests_total{pool="blue",status="404",path="/cart"} 4
http_requests_total{status="200",path="/cart"} 50
`)
	p := mustNew(t, map[string]any{"url": srv.URL, "series": map[string]any{
		"requests": "http_requests", "colorLabel": "pool", "codeLabel": "status", "errorCodes": "5..|429",
	}})
	s := snapshot(t, p, ref)
	got := byID(t, s)
	if g, b := sum(s, providers.Green, analysis.FieldRequests, ""), sum(s, providers.Blue, analysis.FieldRequests, ""); g != 106 || b != 6 {
		t.Errorf("requests: green %v, blue %v, want 106 and 6", g, b)
	}
	if g, b := sum(s, providers.Green, analysis.FieldErrors, ""), sum(s, providers.Blue, analysis.FieldErrors, ""); g != 5 || b != 2 {
		t.Errorf("errors: green %v, blue %v, want 5 (the 429s) and 2", g, b)
	}
	// Label values are escaped as on the page.
	if _, ok := got[`http_requests_total{path="/say \"hi\"\\",pool="green",status="200"}`]; !ok {
		t.Errorf("no escaped ID in %v", ids(s))
	}
	if count(s, providers.Green, analysis.FieldBucket)+count(s, providers.Blue, analysis.FieldBucket) != 0 {
		t.Error("buckets from a page without the histogram")
	}
}

func TestSnapshotFloatCounts(t *testing.T) {
	// Counts a client scaled (sampled traffic) are not whole numbers. The
	// +Inf bucket is left out: the count is the only place it is read.
	srv, _ := pageServer(t, `# TYPE cutover_router_request_duration_seconds histogram
cutover_router_request_duration_seconds_bucket{color="green",le="0.1"} 2.5
cutover_router_request_duration_seconds_sum{color="green"} 0.7
cutover_router_request_duration_seconds_count{color="green"} 4.5
`)
	p := mustNew(t, map[string]any{"url": srv.URL, "metrics": []any{map[string]any{
		"name": "latency mean", "kind": "mean", "better": "lower", "margin": 0.1,
		"numerator": "cutover_router_request_duration_seconds_sum", "denominator": "cutover_router_request_duration_seconds_count",
	}}})
	got := byID(t, snapshot(t, p, ref))
	for id, want := range map[string]float64{
		`cutover_router_request_duration_seconds_bucket{color="green",le="0.1"}`:                  2.5,
		`cutover_router_request_duration_seconds_bucket{color="green",le="+Inf"}`:                 4.5,
		`cutover_router_request_duration_seconds_sum{color="green"} (latency mean numerator)`:     0.7,
		`cutover_router_request_duration_seconds_count{color="green"} (latency mean denominator)`: 4.5,
	} {
		if g, ok := got[id]; !ok || g.Value != want {
			t.Errorf("%s: got %+v, want %v", id, g, want)
		}
	}
}

// appPage is an app's own /metrics, its instances labelled with their color
// by the deploy.
const appPage = `# HELP shop_checkouts_total Checkouts completed.
# TYPE shop_checkouts_total counter
shop_checkouts_total{color="blue",instance="10.0.1.5:8080"} 120
shop_checkouts_total{color="green",instance="10.0.2.7:8080"} 61
shop_checkouts_total{color="green",instance="10.0.2.8:8080"} 58
# HELP shop_refunds_total Checkouts refunded.
# TYPE shop_refunds_total counter
shop_refunds_total{color="blue",instance="10.0.1.5:8080"} 4
shop_refunds_total{color="green",instance="10.0.2.7:8080"} 1
# HELP shop_sessions_total Sessions started.
# TYPE shop_sessions_total counter
shop_sessions_total{color="blue",instance="10.0.1.5:8080"} 4000
shop_sessions_total{color="green",instance="10.0.2.7:8080"} 2100
shop_sessions_total{color="green",instance="10.0.2.8:8080"} 1950
shop_sessions_total{color="canary",instance="10.0.3.1:8080"} 5
shop_sessions_total{instance="10.0.9.9:8080"} 7
# HELP shop_carts_open Carts open now.
# TYPE shop_carts_open gauge
shop_carts_open{color="green",instance="10.0.2.7:8080"} 12
`

func TestAppMetricsByColorLabel(t *testing.T) {
	srv, _ := pageServer(t, appPage)
	p := mustNew(t, map[string]any{"url": srv.URL, "metrics": []any{
		map[string]any{"name": "checkout rate", "kind": "proportion", "better": "higher", "margin": 0.05,
			"numerator": "shop_checkouts_total", "denominator": "shop_sessions_total"},
		// Checkouts are this one's denominator: the same family twice.
		map[string]any{"name": "refund rate", "kind": "proportion", "better": "lower", "margin": 0.1,
			"numerator": "shop_refunds", "denominator": "shop_checkouts_total"},
	}})
	s := snapshot(t, p, ref)
	got := byID(t, s)
	for _, tc := range []struct {
		metric string
		field  analysis.Field
		blue   float64
		green  float64
	}{
		{"checkout rate", analysis.FieldNum, 120, 119},
		{"checkout rate", analysis.FieldDen, 4000, 4050},
		{"refund rate", analysis.FieldNum, 4, 1},
		{"refund rate", analysis.FieldDen, 120, 119},
	} {
		if b, g := sum(s, providers.Blue, tc.field, tc.metric), sum(s, providers.Green, tc.field, tc.metric); b != tc.blue || g != tc.green {
			t.Errorf("%s %s: blue %v, green %v, want %v and %v", tc.metric, tc.field, b, g, tc.blue, tc.green)
		}
	}
	want := analysis.Series{ID: `shop_checkouts_total{color="green",instance="10.0.2.8:8080"} (refund rate denominator)`,
		Color: providers.Green, Field: analysis.FieldDen, Metric: "refund rate", Value: 58}
	if g := got[want.ID]; g != want {
		t.Errorf("got %+v\nwant %+v", g, want)
	}
	if len(s.Series) != 3+3+2+3 {
		t.Errorf("got %d series, want 11 (no canary, no unlabelled instance, no gauge): %v", len(s.Series), ids(s))
	}
	for _, x := range s.Series {
		if x.Field != analysis.FieldNum && x.Field != analysis.FieldDen {
			t.Errorf("%+v: the app's page has no router series", x)
		}
	}
}

// versionPage is an app's own /metrics, labelled with the version each
// instance runs: v1 (blue), v2 (green) and a v0 instance still draining. The
// order value is a histogram, the cart size a summary, signups and visits
// untyped counters (no TYPE line).
const versionPage = `# HELP shop_order_value_dollars Order values.
# TYPE shop_order_value_dollars histogram
shop_order_value_dollars_bucket{version="v1",le="10"} 40
shop_order_value_dollars_bucket{version="v1",le="50"} 90
shop_order_value_dollars_bucket{version="v1",le="+Inf"} 100
shop_order_value_dollars_sum{version="v1"} 3120.5
shop_order_value_dollars_count{version="v1"} 100
shop_order_value_dollars_bucket{version="v2",le="10"} 20
shop_order_value_dollars_bucket{version="v2",le="50"} 47
shop_order_value_dollars_bucket{version="v2",le="+Inf"} 52
shop_order_value_dollars_sum{version="v2"} 1630.25
shop_order_value_dollars_count{version="v2"} 52
shop_order_value_dollars_bucket{version="v0",le="10"} 1
shop_order_value_dollars_bucket{version="v0",le="50"} 1
shop_order_value_dollars_bucket{version="v0",le="+Inf"} 1
shop_order_value_dollars_sum{version="v0"} 9.5
shop_order_value_dollars_count{version="v0"} 1
# HELP shop_cart_items Items per cart at checkout.
# TYPE shop_cart_items summary
shop_cart_items{version="v1",quantile="0.5"} 3
shop_cart_items_sum{version="v1"} 290
shop_cart_items_count{version="v1"} 100
shop_cart_items{version="v2",quantile="0.5"} 3
shop_cart_items_sum{version="v2"} 160
shop_cart_items_count{version="v2"} 52
shop_signups_total{version="v2"} 7
shop_signups_total{version="v1"} 11
shop_visits_total{version="v2"} 300
shop_visits_total{version="v1"} 650
shop_visits_total{version="v0"} 3
shop_visits_total 12
`

func versionMetrics(url string) map[string]any {
	return map[string]any{"url": url, "metrics": []any{
		map[string]any{"name": "order value", "kind": "mean", "better": "higher", "margin": 0.05, "versionLabel": "version",
			"numerator": "shop_order_value_dollars_sum", "denominator": "shop_order_value_dollars_count"},
		map[string]any{"name": "cart size", "kind": "mean", "better": "higher", "margin": 0.05, "versionLabel": "version",
			"numerator": "shop_cart_items_sum", "denominator": "shop_cart_items_count"},
		map[string]any{"name": "signup rate", "kind": "proportion", "better": "higher", "margin": 0.1, "versionLabel": "version",
			"numerator": "shop_signups", "denominator": "shop_visits_total"},
	}}
}

func TestAppMetricsByVersionLabel(t *testing.T) {
	srv, _ := pageServer(t, versionPage)
	p := mustNew(t, versionMetrics(srv.URL))
	s := snapshot(t, p, ref)
	got := byID(t, s)
	for _, tc := range []struct {
		metric string
		field  analysis.Field
		blue   float64
		green  float64
	}{
		{"order value", analysis.FieldNum, 3120.5, 1630.25},
		{"order value", analysis.FieldDen, 100, 52},
		{"cart size", analysis.FieldNum, 290, 160},
		{"cart size", analysis.FieldDen, 100, 52},
		{"signup rate", analysis.FieldNum, 11, 7},
		{"signup rate", analysis.FieldDen, 650, 300},
	} {
		if b, g := sum(s, providers.Blue, tc.field, tc.metric), sum(s, providers.Green, tc.field, tc.metric); b != tc.blue || g != tc.green {
			t.Errorf("%s %s: blue %v, green %v, want %v and %v", tc.metric, tc.field, b, g, tc.blue, tc.green)
		}
	}
	if len(s.Series) != 12 {
		t.Errorf("got %d series, want 12 (v1 and v2 of 3 metrics × 2; v0 and unversioned left out): %v", len(s.Series), ids(s))
	}
	want := analysis.Series{ID: `shop_order_value_dollars_sum{version="v2"} (order value numerator)`,
		Color: providers.Green, Field: analysis.FieldNum, Metric: "order value", Value: 1630.25}
	if g := got[want.ID]; g != want {
		t.Errorf("got %+v\nwant %+v", g, want)
	}

	// The versions come from the release: the same page read for the
	// release of v1 after v0 sees v1 as green.
	s = snapshot(t, p, providers.Ref{App: "shop", Version: "v1", PreviousVersion: "v0"})
	if b, g := sum(s, providers.Blue, analysis.FieldDen, "signup rate"), sum(s, providers.Green, analysis.FieldDen, "signup rate"); b != 3 || g != 650 {
		t.Errorf("v1 after v0: visits blue %v, green %v, want 3 and 650", b, g)
	}
	// A first release has no previous version: a series without the label
	// is not blue.
	s = snapshot(t, p, providers.Ref{App: "shop", Version: "v2"})
	if b, g := sum(s, providers.Blue, analysis.FieldDen, "signup rate"), sum(s, providers.Green, analysis.FieldDen, "signup rate"); b != 0 || g != 300 {
		t.Errorf("first release: visits blue %v, green %v, want 0 and 300", b, g)
	}
	// The same version again: the colors cannot be told apart.
	if s = snapshot(t, p, providers.Ref{App: "shop", Version: "v2", PreviousVersion: "v2"}); len(s.Series) != 0 {
		t.Errorf("redeploy of v2: got %v, want nothing", ids(s))
	}
}

func TestWrongMetricTypeIsBadConfig(t *testing.T) {
	page := appPage + versionPage
	for _, tc := range []struct {
		name     string
		settings map[string]any
		want     string
	}{
		{"gauge", map[string]any{"metrics": []any{map[string]any{"name": "open carts", "kind": "proportion", "better": "higher", "margin": 0.1,
			"numerator": "shop_carts_open", "denominator": "shop_sessions_total"}}},
			"metrics[0].numerator: shop_carts_open is a gauge, not a counter"},
		{"histogram", map[string]any{"metrics": []any{map[string]any{"name": "order value", "kind": "mean", "better": "higher", "margin": 0.1,
			"numerator": "shop_order_value_dollars_sum", "denominator": "shop_order_value_dollars"}}},
			"metrics[0].denominator: shop_order_value_dollars is a histogram: name its shop_order_value_dollars_sum or shop_order_value_dollars_count"},
		{"requests", map[string]any{"series": map[string]any{"requests": "shop_carts_open"}},
			"series.requests: shop_carts_open is a gauge, not a counter"},
		{"duration", map[string]any{"series": map[string]any{"duration": "shop_cart_items"}},
			"series.duration: shop_cart_items is a summary, not a histogram"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv, hits := pageServer(t, page)
			tc.settings["url"] = srv.URL
			p := mustNew(t, tc.settings)
			_, err := p.Snapshot(context.Background(), ref)
			if !errors.Is(err, providers.ErrBadConfig) || err.Error() != tc.want {
				t.Fatalf("got %v, want a bad configuration: %s", err, tc.want)
			}
			if hits.Load() != 1 {
				t.Errorf("%d scrapes: a bad setting is not retried", hits.Load())
			}
		})
	}
}

func TestDuplicateSeriesIsAnError(t *testing.T) {
	srv, _ := pageServer(t, `# TYPE cutover_router_requests_total counter
cutover_router_requests_total{code="200",color="green",instance="a"} 10
cutover_router_requests_total{color="green",code="200",instance="a"} 12
`)
	p := mustNew(t, map[string]any{"url": srv.URL})
	_, err := p.Snapshot(context.Background(), ref)
	if err == nil || errors.Is(err, providers.ErrBadConfig) || !strings.Contains(err.Error(), `cutover_router_requests_total{code="200",color="green",instance="a"} twice`) {
		t.Fatalf("got %v, want an error naming the series", err)
	}
}

func TestSnapshotSendsBearerToken(t *testing.T) {
	var auth atomic.Value
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		auth.Store(req.Header.Get("Authorization"))
		if req.Header.Get("Authorization") != "Bearer t0k" {
			http.Error(w, "missing or wrong token", http.StatusUnauthorized)
			return
		}
		_, _ = io.WriteString(w, routerPage)
	}))
	defer srv.Close()

	t.Setenv("CUTOVER_SCRAPE_TEST_TOKEN", "t0k")
	s := snapshot(t, mustNew(t, map[string]any{"url": srv.URL, "token": map[string]any{"env": "CUTOVER_SCRAPE_TEST_TOKEN"}}), ref)
	if len(s.Series) == 0 {
		t.Error("no series")
	}
	file := filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(file, []byte("t0k\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	snapshot(t, mustNew(t, map[string]any{"url": srv.URL, "token": map[string]any{"file": file}}), ref)
	if got := auth.Load(); got != "Bearer t0k" {
		t.Errorf("Authorization: %q, want the file's token without its newline", got)
	}

	_, err := mustNew(t, map[string]any{"url": srv.URL}).Snapshot(context.Background(), ref)
	if err == nil || errors.Is(err, providers.ErrBadConfig) || err.Error() != "HTTP 401 missing or wrong token" {
		t.Fatalf("without a token: got %v, want the 401 as a plain error", err)
	}
}

func TestSnapshotRetries(t *testing.T) {
	// The first scrape is refused, the second gets a page cut short, the
	// third reads the page.
	var n atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		switch n.Add(1) {
		case 1:
			http.Error(w, "starting", http.StatusServiceUnavailable)
		case 2:
			_, _ = io.WriteString(w, "# TYPE cutover_router_requests_total counter\ncutover_router_requests_total{code=")
		default:
			_, _ = io.WriteString(w, routerPage)
		}
	}))
	defer srv.Close()
	p := mustNew(t, map[string]any{"url": srv.URL})
	begin := time.Now()
	s := snapshot(t, p, ref)
	if n.Load() != 3 || len(s.Series) == 0 {
		t.Fatalf("%d scrapes, %d series: want the third to succeed", n.Load(), len(s.Series))
	}
	if d := time.Since(begin); d < 2*retryPause {
		t.Errorf("took %s: the retries should pause %s", d, retryPause)
	}

	// A target that keeps failing is tried three times, and its last answer
	// is the error.
	failing, hits := failingServer(t)
	p = mustNew(t, map[string]any{"url": failing.URL})
	_, err := p.Snapshot(context.Background(), ref)
	if err == nil || errors.Is(err, providers.ErrBadConfig) || err.Error() != "HTTP 500 boom" {
		t.Fatalf("got %v, want a plain error with the last answer", err)
	}
	if hits.Load() != 3 {
		t.Errorf("%d scrapes, want 3", hits.Load())
	}

	// A page that is not the text format is an error too.
	garbled, hits := pageServer(t, "<html>login</html>\n")
	_, err = mustNew(t, map[string]any{"url": garbled.URL}).Snapshot(context.Background(), ref)
	if err == nil || errors.Is(err, providers.ErrBadConfig) || !strings.HasPrefix(err.Error(), "read the text format: ") {
		t.Fatalf("got %v, want a plain error about the format", err)
	}
	if hits.Load() != 3 {
		t.Errorf("%d scrapes, want 3", hits.Load())
	}
}

func TestPageTooLarge(t *testing.T) {
	defer func(n int64) { maxBody = n }(maxBody)
	maxBody = 1 << 20
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		_, _ = io.WriteString(w, routerPage)
		line := strings.Repeat("#", 1023) + "\n"
		for range maxBody / int64(len(line)) {
			if _, err := io.WriteString(w, line); err != nil {
				return
			}
		}
		_, _ = io.WriteString(w, `cutover_router_requests_total{code="500",color="green",instance="http://10.0.2.7:8080"} 1000`+"\n")
	}))
	defer srv.Close()
	_, err := mustNew(t, map[string]any{"url": srv.URL}).Snapshot(context.Background(), ref)
	if err == nil || errors.Is(err, providers.ErrBadConfig) || err.Error() != "the page is larger than 1 MiB" {
		t.Fatalf("got %v, want an error: the page cut short would lose the series after the cut", err)
	}
}

func failingServer(t *testing.T) (*httptest.Server, *atomic.Int64) {
	t.Helper()
	var n atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		n.Add(1)
		http.Error(w, "boom", http.StatusInternalServerError)
	}))
	t.Cleanup(srv.Close)
	return srv, &n
}

func TestSnapshotTimeout(t *testing.T) {
	for _, tc := range []struct {
		name string
		send func(w http.ResponseWriter) // before the target stalls
		want string
	}{
		{"no answer", func(http.ResponseWriter) {}, "no answer within 100ms"},
		{"stalled page", func(w http.ResponseWriter) {
			_, _ = io.WriteString(w, routerPage[:2000])
			w.(http.Flusher).Flush()
		}, "read the text format: no answer within 100ms"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			release := make(chan struct{})
			var n atomic.Int64
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
				n.Add(1)
				tc.send(w)
				select {
				case <-release:
				case <-req.Context().Done():
				}
			}))
			defer srv.Close()
			defer close(release)
			p := mustNew(t, map[string]any{"url": srv.URL + "/metrics", "timeout": "100ms"})
			begin := time.Now()
			_, err := p.Snapshot(context.Background(), ref)
			if err == nil || errors.Is(err, providers.ErrBadConfig) || err.Error() != tc.want {
				t.Fatalf("got %v, want %q", err, tc.want)
			}
			if d := time.Since(begin); n.Load() != 3 || d < 700*time.Millisecond || d > 3*time.Second {
				t.Errorf("%d scrapes in %s, want 3 of 100ms, 200ms apart", n.Load(), d)
			}
		})
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

func TestSnapshotUnreachable(t *testing.T) {
	url := closedURL(t)
	p := mustNew(t, map[string]any{"url": url})
	begin := time.Now()
	_, err := p.Snapshot(context.Background(), ref)
	if err == nil || errors.Is(err, providers.ErrBadConfig) || !strings.Contains(err.Error(), "connection refused") {
		t.Fatalf("got %v, want a plain error saying the connection was refused", err)
	}
	if strings.Contains(err.Error(), url) {
		t.Errorf("%q repeats the URL, which Where names", err)
	}
	if d := time.Since(begin); d < 2*retryPause {
		t.Errorf("took %s, want two retries %s apart", d, retryPause)
	}
}

func TestMissingSecretIsBadConfig(t *testing.T) {
	srv, hits := pageServer(t, routerPage)
	p := mustNew(t, map[string]any{"url": srv.URL, "token": map[string]any{"env": "CUTOVER_SCRAPE_TEST_UNSET_TOKEN"}})
	begin := time.Now()
	_, err := p.Snapshot(context.Background(), ref)
	if !errors.Is(err, providers.ErrBadConfig) || !strings.HasPrefix(err.Error(), "token: ") || !strings.Contains(err.Error(), "CUTOVER_SCRAPE_TEST_UNSET_TOKEN") {
		t.Fatalf("got %v, want a bad configuration naming the token's variable", err)
	}
	if d := time.Since(begin); hits.Load() != 0 || d > retryPause {
		t.Errorf("%d scrapes in %s: a missing secret is not retried", hits.Load(), d)
	}
}

func TestSnapshotCanceled(t *testing.T) {
	release := make(chan struct{})
	stalled := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		select {
		case <-release:
		case <-req.Context().Done():
		}
	}))
	defer stalled.Close()
	defer close(release)
	failing, _ := failingServer(t)
	for name, url := range map[string]string{"in a scrape": stalled.URL, "between retries": failing.URL} {
		p := mustNew(t, map[string]any{"url": url, "timeout": "30s"})
		ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
		begin := time.Now()
		_, err := p.Snapshot(ctx, ref)
		cancel()
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("%s: got %v, want the context's error", name, err)
		}
		if d := time.Since(begin); d > time.Second {
			t.Errorf("%s: took %s after its context ended", name, d)
		}
	}
}

// TestSnapshotRealRouter reads a real router's admin /metrics with the
// defaults: they must name what the router exposes.
func TestSnapshotRealRouter(t *testing.T) {
	const token = "scrape-test-token"
	var greenServed atomic.Int64
	backend := func(green bool) *httptest.Server {
		s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
			if req.URL.Path == "/healthz" {
				_, _ = io.WriteString(w, "ok")
				return
			}
			if green && greenServed.Add(1)%10 == 0 {
				http.Error(w, "boom", http.StatusInternalServerError)
				return
			}
			_, _ = io.WriteString(w, "hello")
		}))
		t.Cleanup(s.Close)
		return s
	}
	blue, green := backend(false), backend(true)
	r, err := router.New(router.Config{App: "shop", Listen: "127.0.0.1:0", Admin: "127.0.0.1:0",
		Token: token, HealthInterval: 200 * time.Millisecond})
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
	for color, s := range map[string]*httptest.Server{router.Blue: blue, router.Green: green} {
		if err := c.SetPool(ctx, color, []string{s.URL}); err != nil {
			t.Fatal(err)
		}
	}
	if err := c.SetWeight(ctx, 50); err != nil {
		t.Fatal(err)
	}
	const sent = 200
	for range sent {
		resp, err := http.Get("http://" + r.Addr() + "/")
		if err != nil {
			t.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}
	tokenFile := filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(tokenFile, []byte(token+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	p := mustNew(t, map[string]any{"url": "http://" + r.AdminAddr() + "/metrics", "token": map[string]any{"file": tokenFile}})
	s := snapshot(t, p, ref)
	page := readPage(t, "http://"+r.AdminAddr()+"/metrics", token)
	byID(t, s)
	b, g := sum(s, providers.Blue, analysis.FieldRequests, ""), sum(s, providers.Green, analysis.FieldRequests, "")
	if b+g != sent || b == 0 || g == 0 {
		t.Errorf("requests: blue %v + green %v, want %d, both colors", b, g, sent)
	}
	if e, want := sum(s, providers.Green, analysis.FieldErrors, ""), float64(greenServed.Load()/10); e != want || e == 0 {
		t.Errorf("green errors: got %v, want %v (green's 500s)", e, want)
	}
	if e := sum(s, providers.Blue, analysis.FieldErrors, ""); e != 0 {
		t.Errorf("blue errors: got %v, want 0", e)
	}
	for _, x := range []struct {
		color providers.Color
		reqs  float64
	}{{providers.Blue, b}, {providers.Green, g}} {
		var got []string
		for _, y := range s.Series {
			if y.Color == x.color && y.Field == analysis.FieldBucket {
				got = append(got, y.ID)
			}
		}
		want := bucketLine.FindAllString(page, -1)
		for i, l := range want {
			want[i] = strings.TrimSuffix(l, " ")
		}
		want = slices.DeleteFunc(want, func(l string) bool { return !strings.Contains(l, `color="`+string(x.color)+`"`) })
		if len(want) < 10 || !slices.Equal(got, want) {
			t.Errorf("%s buckets:\n got %v\nwant the page's %v", x.color, got, want)
		}
		inf := byID(t, s)[`cutover_router_request_duration_seconds_bucket{color="`+string(x.color)+`",le="+Inf"}`]
		if inf.Value != x.reqs {
			t.Errorf("%s: +Inf bucket %v, want every request: %v", x.color, inf.Value, x.reqs)
		}
	}
}

// bucketLine matches a duration bucket's line on the router's page, up to
// its value.
var bucketLine = regexp.MustCompile(`(?m)^cutover_router_request_duration_seconds_bucket\{color="(blue|green)",le="[^"]+"\} `)

// readPage is the page as a person would read it.
func readPage(t *testing.T, url, token string) string {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestProvider(t *testing.T) {
	p := mustNew(t, map[string]any{"url": "http://scraper:s3cret@10.0.0.1:8081/metrics"})
	if p.Type() != "scrape" {
		t.Errorf("Type: %q", p.Type())
	}
	if w := p.Where(); w != "scrape http://scraper:xxxxx@10.0.0.1:8081/metrics" {
		t.Errorf("Where: %q, want the URL without its password", w)
	}
	if p.Step() != time.Second {
		t.Errorf("Step: %s, want the default 1s", p.Step())
	}
	if p = mustNew(t, map[string]any{"url": "http://x/metrics", "step": "250ms"}); p.Step() != 250*time.Millisecond {
		t.Errorf("Step: %s, want 250ms", p.Step())
	}
	var reg providers.Builder = NewBuilder()
	v, err := reg.New(map[string]any{"url": "http://x/metrics"})
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := v.(providers.MetricsSource); !ok {
		t.Error("the builder's provider is no MetricsSource")
	}
	if _, ok := v.(providers.Analyzer); ok {
		t.Error("the provider still judges by itself (providers.Analyzer)")
	}
}

func TestJudge(t *testing.T) {
	p := mustNew(t, map[string]any{"url": "http://x/metrics",
		"judge": map[string]any{"alpha": 0.05, "errorRate": map[string]any{"maxIncrease": 0.01}, "latency": map[string]any{"off": true}},
		"metrics": []any{
			map[string]any{"name": "checkout rate", "kind": "proportion", "better": "higher", "margin": 0.05,
				"numerator": "shop_checkouts_total", "denominator": "shop_sessions_total"},
			map[string]any{"name": "order value", "kind": "mean", "better": "higher", "margin": 0.02, "critical": true,
				"numerator": "shop_order_value_dollars_sum", "denominator": "shop_order_value_dollars_count", "versionLabel": "version"},
		}})
	cfg := p.Judge()
	if cfg.Alpha != 0.05 || cfg.Power != 0.8 || *cfg.ErrorRate.MaxIncrease != 0.01 || !*cfg.ErrorRate.Critical || !cfg.Latency.Off {
		t.Errorf("judge block not decoded or not completed: %+v", cfg)
	}
	f, tr := false, true
	want := []judge.MetricConfig{
		{Name: "checkout rate", Kind: judge.KindProportion, Better: "higher", Margin: 0.05, Critical: &f},
		{Name: "order value", Kind: judge.KindMean, Better: "higher", Margin: 0.02, Critical: &tr},
	}
	if !reflect.DeepEqual(cfg.Metrics, want) {
		t.Errorf("Metrics: got %+v, want %+v", cfg.Metrics, want)
	}
	cfg.Metrics[0].Name = "changed"
	if p.Judge().Metrics[0].Name != "checkout rate" {
		t.Error("a caller changed the provider's configuration through Judge's result")
	}

	// Without settings: the judge's defaults, and no app metrics.
	cfg = mustNew(t, map[string]any{"url": "http://x/metrics"}).Judge()
	if cfg.Alpha != 0.01 || len(cfg.Latency.Quantiles) != 3 || len(cfg.Metrics) != 0 {
		t.Errorf("defaults: %+v", cfg)
	}
}

func TestBadSettings(t *testing.T) {
	const u = "http://x/metrics"
	metric := func(kv ...any) map[string]any {
		m := map[string]any{"name": "checkout rate", "kind": "proportion", "better": "higher", "margin": 0.05,
			"numerator": "shop_checkouts_total", "denominator": "shop_sessions_total"}
		for i := 0; i < len(kv); i += 2 {
			if kv[i+1] == nil {
				delete(m, kv[i].(string))
			} else {
				m[kv[i].(string)] = kv[i+1]
			}
		}
		return m
	}
	for _, tc := range []struct {
		settings map[string]any
		want     []string
	}{
		{map[string]any{}, []string{"url: is required"}},
		{map[string]any{"url": "ftp://x/metrics"}, []string{"url: must be an http(s) URL"}},
		{map[string]any{"url": "127.0.0.1:8081/metrics"}, []string{"url: must be an http(s) URL"}},
		{map[string]any{"url": u, "bogus": 1}, []string{`unknown setting "bogus"`}},
		{map[string]any{"url": u, "token": map[string]any{}}, []string{"token: a secret needs env"}},
		{map[string]any{"url": u, "step": "10ms"}, []string{"step: 10ms is outside 100ms..5m"}},
		{map[string]any{"url": u, "step": "6m"}, []string{"step: 6m0s is outside 100ms..5m"}},
		{map[string]any{"url": u, "step": "soon"}, []string{"is not a duration"}},
		{map[string]any{"url": u, "timeout": "2h"}, []string{"timeout: 2h0m0s is outside 10ms..1m"}},
		{map[string]any{"url": u, "series": map[string]any{"requests": "a-b"}}, []string{`series.requests: "a-b" is not a metric or label name`}},
		{map[string]any{"url": u, "series": map[string]any{"colorLabel": "pool color"}}, []string{`series.colorLabel: "pool color"`}},
		{map[string]any{"url": u, "series": map[string]any{"errorCodes": "5(("}}, []string{"series.errorCodes: \"5((\" is not a regular expression: missing closing )"}},
		{map[string]any{"url": u, "series": map[string]any{"error": "5.."}}, []string{`unknown setting "error"`}},
		// The block of router names moved to series:.
		{map[string]any{"url": u, "metrics": map[string]any{"requests": "x_total"}}, []string{"metrics: is now the list of the app's own metrics", "moved to series:"}},
		{map[string]any{"url": u, "judge": map[string]any{"alpha": 2}}, []string{"judge.alpha must be above 0 and at most 0.2"}},
		{map[string]any{"url": u, "judge": map[string]any{"metrics": []any{map[string]any{"name": "x"}}}}, []string{"judge.metrics: list the app's metrics under metrics:"}},
		{map[string]any{"url": u, "metrics": []any{metric("numerator", nil)}}, []string{"metrics[0].numerator: is required"}},
		{map[string]any{"url": u, "metrics": []any{metric(), metric("name", "other", "denominator", "")}}, []string{"metrics[1].denominator: is required"}},
		{map[string]any{"url": u, "metrics": []any{metric("denominator", "shop-sessions")}}, []string{`metrics[0].denominator: "shop-sessions" is not a metric name`}},
		{map[string]any{"url": u, "metrics": []any{metric("denominator", "shop_checkouts_total")}}, []string{`metrics[0].denominator: "shop_checkouts_total" is the numerator too`}},
		{map[string]any{"url": u, "metrics": []any{metric("versionLabel", "app.version")}}, []string{`metrics[0].versionLabel: "app.version" is not a label name`}},
		{map[string]any{"url": u, "metrics": []any{metric("query", "sum(x)")}}, []string{`unknown setting "query"`}},
		// The judge's checks of a metric, named by their place in metrics:.
		{map[string]any{"url": u, "metrics": []any{metric("kind", "ratio")}}, []string{`metrics[0].kind must be proportion or mean, got "ratio"`}},
		{map[string]any{"url": u, "metrics": []any{metric(), metric("margin", 2)}}, []string{"metrics[1].margin must be above 0 and below 1"}},
		{map[string]any{"url": u, "metrics": []any{metric(), metric()}}, []string{`metrics[1].name "checkout rate" is taken`}},
		// Every problem at once.
		{map[string]any{"url": u, "metrics": []any{metric("numerator", nil), metric("name", "b", "better", "up")}},
			[]string{"metrics[0].numerator: is required", `metrics[1].better must be higher or lower, got "up"`}},
	} {
		_, err := New(tc.settings)
		if err == nil || !errors.Is(err, providers.ErrBadConfig) {
			t.Errorf("%v: got %v, want a bad configuration", tc.settings, err)
			continue
		}
		for _, w := range tc.want {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("%v: got %q, want %q", tc.settings, err, w)
			}
		}
		if msg := err.Error(); strings.Contains(msg, "\n") || strings.Contains(msg, "judge.metrics[") {
			t.Errorf("%v: got %q, want one line naming the provider's settings", tc.settings, msg)
		}
	}
}
