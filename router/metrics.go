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
			Name: "cutover_router_request_duration_seconds",
			Help: "Time to serve proxied user requests, by color.",
			// Finer than the defaults where guards usually sit (20ms-1s), so that
			// a p99 limit like 300ms is judged on a bucket edge, not interpolated
			// across 250ms-500ms.
			Buckets: []float64{.001, .0025, .005, .01, .02, .03, .05, .075, .1, .15, .2, .3, .5, .75, 1, 1.5, 2.5, 5, 10},
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
