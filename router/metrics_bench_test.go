package router

import (
	"bytes"
	"compress/gzip"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/http/httptest"
	"net/url"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// benchLatencies spreads observations log-uniformly over 0.5ms-60s, so that
// a bucket search costs what it costs on average, not at one end.
func benchLatencies() []time.Duration {
	ds := make([]time.Duration, 1024)
	for i := range ds {
		s := 0.0005 * math.Pow(60/0.0005, float64(i)/float64(len(ds)-1))
		ds[i] = time.Duration(s * float64(time.Second))
	}
	return ds
}

// BenchmarkRequestDurationObserve is the histogram's share of a request: one
// Observe on an already resolved child.
func BenchmarkRequestDurationObserve(b *testing.B) {
	m, err := newMetrics(prometheus.NewRegistry())
	if err != nil {
		b.Fatal(err)
	}
	o := m.duration.WithLabelValues(Blue)
	ds := benchLatencies()
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		o.Observe(ds[i%len(ds)].Seconds())
	}
}

// BenchmarkMetricsRouted is what the request path pays for metrics: the
// counter and the histogram, label lookups included.
func BenchmarkMetricsRouted(b *testing.B) {
	m, err := newMetrics(prometheus.NewRegistry())
	if err != nil {
		b.Fatal(err)
	}
	rt := &route{color: green, inst: newInstance(&url.URL{Scheme: "http", Host: "10.0.0.1:8080"}), code: 200}
	ds := benchLatencies()
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		m.routed(rt, ds[i%len(ds)])
	}
}

// BenchmarkMetricsPage renders the admin /metrics page of a router (its
// default registry, Go and process collectors included) serving two instances
// per color, and reports its size: page-bytes plain, gzip-bytes as a scraper
// that asks for gzip receives it, hist-bytes and hist-lines for the duration
// histogram's bucket lines (both colors, _sum and _count included in bytes).
func BenchmarkMetricsPage(b *testing.B) {
	r, err := New(Config{Token: "x"})
	if err != nil {
		b.Fatal(err)
	}
	ds := benchLatencies()
	for c := range 2 {
		for i := range 2 {
			in := newInstance(&url.URL{Scheme: "http", Host: fmt.Sprintf("10.0.%d.%d:8080", c, i+1)})
			for j, d := range ds {
				rt := &route{color: color(c), inst: in, code: 200}
				if j%50 == 0 {
					rt.code = 500
				}
				r.metrics.routed(rt, d)
			}
		}
	}
	r.metrics.setWeights(r.table.Load())
	h := promhttp.HandlerFor(r.gatherer, promhttp.HandlerOpts{})
	page := func(gz bool) *httptest.ResponseRecorder {
		req := httptest.NewRequest(http.MethodGet, "/metrics", nil)
		if gz {
			req.Header.Set("Accept-Encoding", "gzip")
		}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		return rec
	}

	plain := page(false).Body.Bytes()
	zipped := page(true)
	if zipped.Header().Get("Content-Encoding") != "gzip" {
		b.Fatalf("no gzip: %v", zipped.Header())
	}
	gzBytes := zipped.Body.Len()
	zr, err := gzip.NewReader(zipped.Body)
	if err != nil {
		b.Fatal(err)
	}
	if _, err := io.Copy(io.Discard, zr); err != nil {
		b.Fatal(err)
	}
	mfs, err := r.gatherer.Gather()
	if err != nil {
		b.Fatal(err)
	}
	lines, histBytes := 0, 0
	for _, l := range bytes.SplitAfter(plain, []byte("\n")) {
		if bytes.HasPrefix(l, []byte("cutover_router_request_duration_seconds")) {
			histBytes += len(l)
		}
	}
	for _, mf := range mfs {
		if mf.GetName() == "cutover_router_request_duration_seconds" {
			for _, m := range mf.GetMetric() {
				lines += len(m.GetHistogram().GetBucket()) + 1 // + the +Inf line
			}
		}
	}

	b.ResetTimer()
	for b.Loop() {
		page(true)
	}
	b.ReportMetric(float64(len(plain)), "page-bytes")
	b.ReportMetric(float64(gzBytes), "gzip-bytes")
	b.ReportMetric(float64(histBytes), "hist-bytes")
	b.ReportMetric(float64(lines), "hist-lines")
}
