package router

import (
	"fmt"
	"maps"
	"strconv"
	"sync"
	"sync/atomic"
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

	durationOf [2]atomic.Pointer[boundObserver] // duration's child by color, bound on first use
}

// The request path uses metrics children bound once rather than looked up
// by label values per request: a lookup hashes the values and takes the
// vector's lock, four times a request (in-flight up and down, the counter,
// the histogram). That was under 1% of the router's CPU in the closed-loop
// profile (docs/benchmarks.md, section 1), but a bound child costs nothing.
// A child is bound the first time its labels are used, as WithLabelValues
// would create it, so /metrics shows the same series as before.

type boundObserver struct{ o prometheus.Observer }

// bound is one color and instance's children.
type bound struct {
	color, instance string
	inFlight        prometheus.Gauge
	mu              sync.Mutex                                 // serializes additions to codes
	codes           atomic.Pointer[map[int]prometheus.Counter] // copied on write: reads take no lock
}

// bind returns in's children for color c, binding them on first use.
func (m *metrics) bind(c color, in *instance) *bound {
	if b := in.bound[c].Load(); b != nil {
		return b
	}
	b := &bound{color: c.String(), instance: in.key, inFlight: m.inFlight.WithLabelValues(c.String(), in.key)}
	b.codes.Store(&map[int]prometheus.Counter{})
	if !in.bound[c].CompareAndSwap(nil, b) {
		return in.bound[c].Load()
	}
	return b
}

// requestsWith returns the request counter for code.
func (b *bound) requestsWith(m *metrics, code int) prometheus.Counter {
	if ctr, ok := (*b.codes.Load())[code]; ok {
		return ctr
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	old := *b.codes.Load()
	if ctr, ok := old[code]; ok {
		return ctr
	}
	ctr := m.requests.WithLabelValues(b.color, b.instance, statusLabel(code))
	codes := maps.Clone(old)
	codes[code] = ctr
	b.codes.Store(&codes)
	return ctr
}

// durationFor returns the duration histogram's child for color c.
func (m *metrics) durationFor(c color) prometheus.Observer {
	if o := m.durationOf[c].Load(); o != nil {
		return o.o
	}
	o := &boundObserver{m.duration.WithLabelValues(c.String())}
	m.durationOf[c].CompareAndSwap(nil, o) // a lost race bound the same child
	return o.o
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
	m.bind(rt.color, rt.inst).requestsWith(m, rt.code).Inc()
	m.durationFor(rt.color).Observe(d.Seconds())
}

func (m *metrics) unrouted(code int) {
	m.requests.WithLabelValues(noRoute, noRoute, statusLabel(code)).Inc()
}

func statusLabel(code int) string { return strconv.Itoa(code) }

func (m *metrics) setWeights(t *table) {
	m.weight.WithLabelValues(Blue).Set(float64(t.weight(blue)))
	m.weight.WithLabelValues(Green).Set(float64(t.weight(green)))
}
