// Command demo-app is a tiny HTTP service for demos and tests of blue-green
// releases. Its behaviour is set by environment variables:
//
//	PORT           required; the port to listen on (1-65535)
//	HOST           the address to listen on (default 127.0.0.1)
//	VERSION        the version it reports (default "dev")
//	ERROR_RATE     0..1: that share of requests to / answer 500, counted
//	               deterministically: request n (from 0) fails when
//	               floor((n+1)*rate) > floor(n*rate), so 0.05 fails every 20th
//	ERROR_AFTER    a Go duration: ERROR_RATE applies only once this long has
//	               passed since it started listening, while /healthz stays
//	               ok: a version that goes bad under traffic and that only a
//	               metrics judge catches
//	LATENCY        a Go duration added to each request to /
//	LATENCY_JITTER a Go duration (default 0): each request to / waits a
//	               uniformly random extra in [0, LATENCY_JITTER) on top of
//	               LATENCY (or SLOW_LATENCY), so that latencies spread as real
//	               ones do instead of all being the same
//	SLOW_RATE      0..1: that share of requests to / wait SLOW_LATENCY instead
//	               of LATENCY, counted like ERROR_RATE (on its own counter):
//	               request n (from 0) is slow when
//	               floor((n+1)*rate) > floor(n*rate), so 0.05 slows every 20th
//	SLOW_LATENCY   a Go duration, required when SLOW_RATE is above 0: what a
//	               slow request waits instead of LATENCY
//	SLOW_AFTER     a Go duration (default 0): SLOW_RATE applies only once this
//	               long has passed since it started listening: a version that
//	               slows down under traffic, for a latency judge to catch
//	FAIL_AFTER     a Go duration: once this long has passed since it started
//	               listening, / answers 500 and /healthz answers 503
//	STARTUP_DELAY  a Go duration to wait before listening (a slow provision)
//
// Endpoints:
//
//	GET /         200 {"version": "...", "instance": "<PORT>"}
//	GET /healthz  200 "ok", 503 "failing" once FAIL_AFTER has passed
//	GET /metrics  Prometheus text: demo_requests_total{code} and the
//	              demo_request_duration_seconds histogram, both for /
//
// A bad value exits with status 2 and one line on stderr naming the variable.
// SIGTERM or SIGINT stops accepting, lets in-flight requests finish (up to
// 10s) and exits 0.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strconv"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/cutoverhq/cutover/deadlines"
)

// shutdownTimeout bounds how long a graceful shutdown waits for in-flight requests.
const shutdownTimeout = 10 * time.Second

// config is the service's behaviour, read from the environment by parseConfig.
type config struct {
	Host          string
	Port          string
	Version       string
	ErrorRate     float64
	Latency       time.Duration
	LatencyJitter time.Duration // a random extra in [0, LatencyJitter) on each request to /
	SlowRate      float64
	SlowLatency   time.Duration // instead of Latency for the SlowRate share
	SlowAfter     time.Duration // SLOW_RATE applies from then on
	FailAfter     time.Duration // 0 = never fail
	ErrorAfter    time.Duration // ERROR_RATE applies from then on
	StartupDelay  time.Duration

	// now is the clock (nil = time.Now); tests inject their own to move
	// past FAIL_AFTER without waiting.
	now func() time.Time
	// wait waits d for a request to / and reports false if ctx ended first
	// (nil = a timer); tests inject their own to see the waits without
	// sleeping.
	wait func(ctx context.Context, d time.Duration) bool
}

// configError is a bad or missing environment variable.
type configError struct {
	Var string
	Msg string
}

func (e *configError) Error() string { return e.Var + ": " + e.Msg }

// parseConfig reads the configuration through getenv (os.Getenv in main).
// Its error names the offending variable.
func parseConfig(getenv func(string) string) (config, error) {
	cfg := config{
		Host:    getenv("HOST"),
		Port:    getenv("PORT"),
		Version: getenv("VERSION"),
	}
	if cfg.Host == "" {
		cfg.Host = "127.0.0.1"
	}
	if cfg.Version == "" {
		cfg.Version = "dev"
	}
	if cfg.Port == "" {
		return config{}, &configError{"PORT", "is required (the port to listen on, 1-65535)"}
	}
	if p, err := strconv.Atoi(cfg.Port); err != nil || p < 1 || p > 65535 {
		return config{}, &configError{"PORT", fmt.Sprintf("must be a port number 1-65535, got %q", cfg.Port)}
	}
	for _, r := range []struct {
		name string
		dst  *float64
	}{
		{"ERROR_RATE", &cfg.ErrorRate},
		{"SLOW_RATE", &cfg.SlowRate},
	} {
		s := getenv(r.name)
		if s == "" {
			continue
		}
		v, err := strconv.ParseFloat(s, 64)
		if err != nil || math.IsNaN(v) || v < 0 || v > 1 {
			return config{}, &configError{r.name, fmt.Sprintf("must be a number from 0 to 1, got %q", s)}
		}
		*r.dst = v
	}
	for _, d := range []struct {
		name string
		dst  *time.Duration
	}{
		{"LATENCY", &cfg.Latency},
		{"LATENCY_JITTER", &cfg.LatencyJitter},
		{"SLOW_LATENCY", &cfg.SlowLatency},
		{"SLOW_AFTER", &cfg.SlowAfter},
		{"FAIL_AFTER", &cfg.FailAfter},
		{"ERROR_AFTER", &cfg.ErrorAfter},
		{"STARTUP_DELAY", &cfg.StartupDelay},
	} {
		s := getenv(d.name)
		if s == "" {
			continue
		}
		v, err := time.ParseDuration(s)
		if err != nil || v < 0 {
			return config{}, &configError{d.name, fmt.Sprintf("must be a non-negative Go duration such as 250ms or 1m, got %q", s)}
		}
		*d.dst = v
	}
	if cfg.SlowRate > 0 && getenv("SLOW_LATENCY") == "" {
		return config{}, &configError{"SLOW_LATENCY", "is required when SLOW_RATE is above 0 (what a slow request waits, such as 2s)"}
	}
	return cfg, nil
}

// server is the service's http.Handler.
type server struct {
	cfg      config
	now      func() time.Time
	started  time.Time
	served   atomic.Uint64 // requests to / that reached the error-rate counter
	slowed   atomic.Uint64 // requests to / that reached the slow-rate counter
	mux      *http.ServeMux
	requests *prometheus.CounterVec
	duration prometheus.Histogram
}

// newServer returns the service's handler. FAIL_AFTER counts from this call.
func newServer(cfg config) http.Handler {
	s := &server{cfg: cfg, now: cfg.now}
	if s.now == nil {
		s.now = time.Now
	}
	if s.cfg.wait == nil {
		s.cfg.wait = wait
	}
	s.started = s.now()

	reg := prometheus.NewRegistry()
	s.requests = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "demo_requests_total",
		Help: "Requests to / by HTTP status code.",
	}, []string{"code"})
	s.duration = prometheus.NewHistogram(prometheus.HistogramOpts{
		Name:    "demo_request_duration_seconds",
		Help:    "Time to answer a request to /, LATENCY (or SLOW_LATENCY) and LATENCY_JITTER included.",
		Buckets: prometheus.DefBuckets,
	})
	reg.MustRegister(s.requests, s.duration)
	// Both codes exist from the start, so that a rate() over them never lacks a series.
	s.requests.WithLabelValues("200")
	s.requests.WithLabelValues("500")

	s.mux = http.NewServeMux()
	s.mux.HandleFunc("GET /{$}", s.root)
	s.mux.HandleFunc("GET /healthz", s.healthz)
	s.mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	return s
}

func (s *server) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.mux.ServeHTTP(w, r) }

// failing reports whether FAIL_AFTER has passed.
func (s *server) failing() bool {
	return s.cfg.FailAfter > 0 && s.now().Sub(s.started) >= s.cfg.FailAfter
}

// failNext advances the error-rate counter and reports whether this request is
// one of the ERROR_RATE share that fails.
func (s *server) failNext() bool {
	if s.cfg.ErrorRate <= 0 || s.now().Sub(s.started) < s.cfg.ErrorAfter {
		return false
	}
	n := float64(s.served.Add(1) - 1)
	return math.Floor((n+1)*s.cfg.ErrorRate) > math.Floor(n*s.cfg.ErrorRate)
}

// slowNext advances the slow-rate counter and reports whether this request is
// one of the SLOW_RATE share that waits SLOW_LATENCY.
func (s *server) slowNext() bool {
	if s.cfg.SlowRate <= 0 || s.now().Sub(s.started) < s.cfg.SlowAfter {
		return false
	}
	n := float64(s.slowed.Add(1) - 1)
	return math.Floor((n+1)*s.cfg.SlowRate) > math.Floor(n*s.cfg.SlowRate)
}

// delay is how long the next request to / waits: LATENCY, or SLOW_LATENCY for
// the SLOW_RATE share, plus a uniformly random extra in [0, LATENCY_JITTER).
func (s *server) delay() time.Duration {
	d := s.cfg.Latency
	if s.slowNext() {
		d = s.cfg.SlowLatency
	}
	if s.cfg.LatencyJitter > 0 {
		d += time.Duration(rand.Int64N(int64(s.cfg.LatencyJitter)))
	}
	return d
}

// wait is the real config.wait: a timer that gives up when ctx ends.
func wait(ctx context.Context, d time.Duration) bool {
	if d <= 0 {
		return true
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

func (s *server) root(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	if !s.cfg.wait(r.Context(), s.delay()) {
		return // the client left: nobody to answer
	}
	body := map[string]string{"version": s.cfg.Version, "instance": s.cfg.Port}
	code := http.StatusOK
	switch {
	case s.failing():
		code, body["error"] = http.StatusInternalServerError, "failing: FAIL_AFTER has passed"
	case s.failNext():
		code, body["error"] = http.StatusInternalServerError, "injected error (ERROR_RATE)"
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(body)
	s.requests.WithLabelValues(strconv.Itoa(code)).Inc()
	s.duration.Observe(time.Since(start).Seconds())
}

func (s *server) healthz(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	if s.failing() {
		w.WriteHeader(http.StatusServiceUnavailable)
		_, _ = io.WriteString(w, "failing\n")
		return
	}
	_, _ = io.WriteString(w, "ok\n")
}

// timeouts are the server's deadlines: headers 10s and a whole request 30s
// (its clients send no body: load generators and the router), an answer 30s
// more than the slowest a request to / is set to wait (LATENCY or
// SLOW_LATENCY, plus LATENCY_JITTER), so that a configured delay is never cut,
// and an idle connection 2m (the router keeps its connections 90s).
func timeouts(cfg config) deadlines.Timeouts {
	wait := max(cfg.Latency, cfg.SlowLatency) + cfg.LatencyJitter
	return deadlines.Timeouts{ReadHeader: 10 * time.Second, Read: 30 * time.Second, Write: 30*time.Second + wait, Idle: 2 * time.Minute}
}

// serve answers on ln until ctx is done, then shuts down gracefully: no new
// connections, in-flight requests get up to shutdownTimeout to finish.
func serve(ctx context.Context, ln net.Listener, h http.Handler, to deadlines.Timeouts, logger *slog.Logger) error {
	srv := to.Apply(&http.Server{Handler: h, ErrorLog: slog.NewLogLogger(logger.Handler(), slog.LevelWarn)})
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	logger.Info("shutting down: finishing in-flight requests", "timeout", shutdownTimeout)
	sctx, cancel := context.WithTimeout(context.Background(), shutdownTimeout)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		_ = srv.Close()
		return fmt.Errorf("graceful shutdown: %w", err)
	}
	if err := <-errc; err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	logger.Info("stopped")
	return nil
}

// realMain is main with its environment and outputs passed in; it returns the
// exit status: 0 after a graceful stop, 1 on a runtime failure, 2 on bad config.
func realMain(ctx context.Context, getenv func(string) string, stderr io.Writer) int {
	cfg, err := parseConfig(getenv)
	if err != nil {
		fmt.Fprintf(stderr, "demo-app: %v\n", err)
		return 2
	}
	logger := slog.New(slog.NewTextHandler(stderr, nil))

	if cfg.StartupDelay > 0 {
		logger.Info("delaying startup", "startup_delay", cfg.StartupDelay)
		t := time.NewTimer(cfg.StartupDelay)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			logger.Info("stopped before listening")
			return 0
		}
	}

	ln, err := net.Listen("tcp", net.JoinHostPort(cfg.Host, cfg.Port))
	if err != nil {
		logger.Error("cannot listen", "err", err)
		return 1
	}
	logger.Info("demo-app listening", "version", cfg.Version, "port", cfg.Port, "addr", ln.Addr().String(),
		"error_rate", cfg.ErrorRate, "latency", cfg.Latency, "latency_jitter", cfg.LatencyJitter,
		"slow_rate", cfg.SlowRate, "slow_latency", cfg.SlowLatency, "fail_after", cfg.FailAfter)
	if err := serve(ctx, ln, newServer(cfg), timeouts(cfg), logger); err != nil {
		logger.Error("server stopped", "err", err)
		return 1
	}
	return 0
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	code := realMain(ctx, os.Getenv, os.Stderr)
	stop()
	os.Exit(code)
}
