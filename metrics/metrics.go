// Package metrics serves the worker's /metrics and /healthz. Temporal SDK metrics
// and the release metrics (recorded by the workflow through the SDK's metrics
// handler, so replays do not count twice) reach Prometheus through OpenTelemetry's
// Prometheus exporter.
package metrics

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	otelprom "go.opentelemetry.io/otel/exporters/prometheus"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.temporal.io/sdk/client"
	temporalotel "go.temporal.io/sdk/contrib/opentelemetry"
	"go.uber.org/fx"

	"github.com/cutoverhq/cutover/deadlines"
)

// NewRegistry returns a Prometheus registry with the Go runtime and process
// collectors.
func NewRegistry() *prometheus.Registry {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return reg
}

// NewTemporalHandler returns a metrics handler for the Temporal SDK that exports
// to reg.
func NewTemporalHandler(reg prometheus.Registerer, log *slog.Logger) (client.MetricsHandler, error) {
	exp, err := otelprom.New(otelprom.WithRegisterer(reg), otelprom.WithoutScopeInfo(), otelprom.WithoutTargetInfo())
	if err != nil {
		return nil, fmt.Errorf("prometheus exporter: %w", err)
	}
	meter := sdkmetric.NewMeterProvider(sdkmetric.WithReader(exp)).Meter("cutover")
	return temporalotel.NewMetricsHandler(temporalotel.MetricsHandlerOptions{
		Meter:                meter,
		UseMonotonicCounters: true,
		OnError:              func(err error) { log.Warn("metric", "err", err) },
	}), nil
}

// HealthFunc says whether the process is healthy; nil means it is.
type HealthFunc func(ctx context.Context) error

// NewHandler serves /metrics from reg, /healthz from health (ready: Temporal
// answers) and /livez (alive: the process serves). Orchestrators should restart
// on /livez only: a Temporal outage is no reason to restart every worker.
func NewHandler(reg *prometheus.Registry, health HealthFunc) http.Handler {
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{Registry: reg}))
	mux.HandleFunc("GET /livez", func(w http.ResponseWriter, r *http.Request) { _, _ = w.Write([]byte("ok\n")) })
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		ctx, cancel := context.WithTimeout(r.Context(), 3*time.Second)
		defer cancel()
		if err := health(ctx); err != nil {
			http.Error(w, "unhealthy: "+err.Error(), http.StatusServiceUnavailable)
			return
		}
		_, _ = w.Write([]byte("ok\n"))
	})
	return mux
}

// DefaultTimeouts are the server's deadlines. Its clients are Prometheus
// (a 10s scrape timeout by default, one connection kept between scrapes 15s
// to 1m apart) and health probes: a request gets 5s for its headers and 10s
// whole (none has a body), an answer 30s (a large registry to a slow
// scraper; /healthz gives up on Temporal after 3s), and an idle connection
// 2m, longer than the usual scrape interval so that it is reused.
func DefaultTimeouts() deadlines.Timeouts {
	return deadlines.Timeouts{ReadHeader: 5 * time.Second, Read: 10 * time.Second, Write: 30 * time.Second, Idle: 2 * time.Minute}
}

// ServerParams are what the HTTP server needs.
type ServerParams struct {
	fx.In
	Lifecycle fx.Lifecycle
	Addr      string `name:"httpAddr"`
	// Timeouts are the server's deadlines; zero ones take DefaultTimeouts.
	Timeouts deadlines.Timeouts `name:"httpTimeouts" optional:"true"`
	Registry *prometheus.Registry
	Health   HealthFunc
	Log      *slog.Logger
}

// NewServer is the HTTP server of /metrics, /healthz and /livez, with its
// deadlines (zero ones take DefaultTimeouts).
func NewServer(h http.Handler, t deadlines.Timeouts) *http.Server {
	return t.Or(DefaultTimeouts()).Apply(&http.Server{Handler: h})
}

// Serve listens on p.Addr when the app starts and shuts down gracefully when it
// stops.
func Serve(p ServerParams) {
	srv := NewServer(NewHandler(p.Registry, p.Health), p.Timeouts)
	p.Lifecycle.Append(fx.Hook{
		OnStart: func(ctx context.Context) error {
			ln, err := net.Listen("tcp", p.Addr)
			if err != nil {
				return fmt.Errorf("listen on %s for /metrics and /healthz: %w", p.Addr, err)
			}
			p.Log.Info("serving /metrics and /healthz", "addr", ln.Addr().String())
			go func() {
				if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
					p.Log.Error("metrics server", "err", err)
				}
			}()
			return nil
		},
		OnStop: srv.Shutdown,
	})
}

// Module provides the registry and the SDK's metrics handler, and runs the
// server.
var Module = fx.Module("metrics",
	fx.Provide(NewRegistry, func(reg *prometheus.Registry, log *slog.Logger) (client.MetricsHandler, error) {
		return NewTemporalHandler(reg, log)
	}),
	fx.Invoke(Serve),
)
