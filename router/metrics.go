package router

import (
	"fmt"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// noRoute labels requests the router answered itself (maintenance, no
// instance, a bad override header).
const noRoute = "none"

// The request-duration histogram's buckets: a geometric ladder of
// durationBucketCount bounds from durationMin to durationMax, each about 14.9%
// above the one before.
//
// They are this fine because the latency judge compares blue's and green's
// quantiles (p50, p95, p99) from the bucket counts alone, without
// interpolating inside a bucket: it counts the requests above each bound, so
// it sees a slowdown only when some bound lies between the old quantile and
// the new one. With bounds a factor r apart, every interval [q, q*r) holds a
// bound, so any change of more than r-1 anywhere in the range crosses one:
// at r ≈ 1.15 a 20% slowdown is told from none, where bounds twice apart (as
// most of the client's default buckets are) can hide one of almost 100%.
// 0.5ms-60s covers a fast cache hit to a request at a typical proxy timeout;
// below 0.5ms is one bucket, above 60s is +Inf.
//
// 85 is the fewest bounds that keep r at most 1.15 over that range (84 give
// 1.1513); each bound costs a series per color in Prometheus and a line per
// color on /metrics. The bounds are rounded to four significant digits, which
// keeps r within 1.1486-1.1498, the ends exact, and the le labels short
// (0.3023, not 0.3022918239181431).
const (
	durationMin         = 0.0005 // seconds
	durationMax         = 60
	durationBucketCount = 85
)

func durationBuckets() []float64 {
	b := prometheus.ExponentialBucketsRange(durationMin, durationMax, durationBucketCount)
	for i, v := range b {
		b[i], _ = strconv.ParseFloat(strconv.FormatFloat(v, 'g', 4, 64), 64)
	}
	return b
}

type metrics struct {
	requests  *prometheus.CounterVec   // color, instance, code
	duration  *prometheus.HistogramVec // color
	inFlight  *prometheus.GaugeVec     // color, instance
	weight    *prometheus.GaugeVec     // color
	retries   prometheus.Counter
	ejections *prometheus.CounterVec // color, instance
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "cutover_router_requests_total",
			Help: "User requests by the color and instance that served them and the status code (color and instance are none when the router answered itself).",
		}, []string{"color", "instance", "code"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "cutover_router_request_duration_seconds",
			Help:    "Time to serve proxied user requests, by color.",
			Buckets: durationBuckets(),
		}, []string{"color"}),
		inFlight: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "cutover_router_in_flight",
			Help: "User requests in progress, by color and instance.",
		}, []string{"color", "instance"}),
		weight: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "cutover_router_weight",
			Help: "Share of new user requests in percent, by color.",
		}, []string{"color"}),
		retries: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "cutover_router_retries_total",
			Help: "Requests retried on another instance after a failed connection.",
		}),
		ejections: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "cutover_router_ejections_total",
			Help: "Instances ejected after a failed connection, by color and instance.",
		}, []string{"color", "instance"}),
	}
	for _, c := range []prometheus.Collector{m.requests, m.duration, m.inFlight, m.weight, m.retries, m.ejections} {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("register router metrics: %w", err)
		}
	}
	return m, nil
}

func (m *metrics) routed(rt *route, d time.Duration) {
	m.requests.WithLabelValues(rt.color.String(), rt.inst.key, statusLabel(rt.code)).Inc()
	m.duration.WithLabelValues(rt.color.String()).Observe(d.Seconds())
}

func (m *metrics) unrouted(code int) {
	m.requests.WithLabelValues(noRoute, noRoute, statusLabel(code)).Inc()
}

func statusLabel(code int) string { return strconv.Itoa(code) }

func (m *metrics) setWeights(t *table) {
	m.weight.WithLabelValues(Blue).Set(float64(t.weight(blue)))
	m.weight.WithLabelValues(Green).Set(float64(t.weight(green)))
}
