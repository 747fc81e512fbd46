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

// ServerParams are what the HTTP server needs.
type ServerParams struct {
	fx.In
	Lifecycle fx.Lifecycle
	Addr      string `name:"httpAddr"`
	Registry  *prometheus.Registry
	Health    HealthFunc
	Log       *slog.Logger
}

// Serve listens on p.Addr when the app starts and shuts down gracefully when it
// stops.
func Serve(p ServerParams) {
	srv := &http.Server{Handler: NewHandler(p.Registry, p.Health), ReadHeaderTimeout: 5 * time.Second}
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
