// Command cutover-worker runs release workflows and their activities. Run as many
// as you like on one task queue: they share the work, and any of them may die at
// any moment without losing a release.
//
// Configuration comes from flags, each defaulting to an environment variable:
//
//	--address     TEMPORAL_ADDRESS     Temporal frontend (127.0.0.1:7233)
//	--namespace   TEMPORAL_NAMESPACE   namespace (default)
//	--task-queue  CUTOVER_TASK_QUEUE   task queue (cutover)
//	--http-addr   CUTOVER_HTTP_ADDR    /metrics and /healthz (127.0.0.1:9464)
//	--log-format  CUTOVER_LOG_FORMAT   text or json (text)
//	--log-level   CUTOVER_LOG_LEVEL    debug, info, warn, error (info)
//
// and the deadlines of the /metrics server (metrics.DefaultTimeouts says why
// they are what they are):
//
//	--http-read-header-timeout  CUTOVER_HTTP_READ_HEADER_TIMEOUT  (5s)
//	--http-read-timeout         CUTOVER_HTTP_READ_TIMEOUT         (10s)
//	--http-write-timeout        CUTOVER_HTTP_WRITE_TIMEOUT        (30s)
//	--http-idle-timeout         CUTOVER_HTTP_IDLE_TIMEOUT         (2m)
//
// `cutover-worker healthcheck` asks a running worker's /healthz and exits 0 when
// it is healthy (for container health checks).
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"strings"
	"time"

	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"
	"go.uber.org/fx"

	"github.com/cutoverhq/cutover/activities"
	"github.com/cutoverhq/cutover/deadlines"
	"github.com/cutoverhq/cutover/metrics"
	"github.com/cutoverhq/cutover/providers/builtin"
	"github.com/cutoverhq/cutover/temporalconn"
	"github.com/cutoverhq/cutover/workflows"
)

type config struct {
	temporal     temporalconn.Config
	httpAddr     string
	httpTimeouts deadlines.Timeouts
	logFormat    string
	logLevel     string
}

func parseFlags(args []string) (config, []string, error) {
	cfg := config{temporal: temporalconn.FromEnv(), httpTimeouts: metrics.DefaultTimeouts()}
	fs := flag.NewFlagSet("cutover-worker", flag.ContinueOnError)
	fs.StringVar(&cfg.temporal.Address, "address", cfg.temporal.Address, "Temporal frontend host:port (TEMPORAL_ADDRESS)")
	fs.StringVar(&cfg.temporal.Namespace, "namespace", cfg.temporal.Namespace, "Temporal namespace (TEMPORAL_NAMESPACE)")
	fs.StringVar(&cfg.temporal.TaskQueue, "task-queue", cfg.temporal.TaskQueue, "task queue to poll (CUTOVER_TASK_QUEUE)")
	fs.StringVar(&cfg.httpAddr, "http-addr", temporalconn.Getenv("CUTOVER_HTTP_ADDR", "127.0.0.1:9464"), "listen address for /metrics and /healthz (CUTOVER_HTTP_ADDR)")
	fs.StringVar(&cfg.logFormat, "log-format", temporalconn.Getenv("CUTOVER_LOG_FORMAT", "text"), "log format: text or json (CUTOVER_LOG_FORMAT)")
	fs.StringVar(&cfg.logLevel, "log-level", temporalconn.Getenv("CUTOVER_LOG_LEVEL", "info"), "log level: debug, info, warn, error (CUTOVER_LOG_LEVEL)")
	envErr := cfg.httpTimeouts.Flags(fs, "http-", "CUTOVER_HTTP")
	if err := fs.Parse(args); err != nil {
		return cfg, nil, err
	}
	// Like the flag package's own errors, printed here.
	err := envErr
	if err == nil {
		err = cfg.httpTimeouts.Check("--http-")
	}
	if err != nil {
		fmt.Fprintln(fs.Output(), "cutover-worker:", err)
		return cfg, nil, err
	}
	return cfg, fs.Args(), nil
}

func newLogger(cfg config, w io.Writer) (*slog.Logger, error) {
	var level slog.Level
	if err := level.UnmarshalText([]byte(cfg.logLevel)); err != nil {
		return nil, fmt.Errorf("--log-level: %q is not one of debug, info, warn, error", cfg.logLevel)
	}
	opts := &slog.HandlerOptions{Level: level}
	switch cfg.logFormat {
	case "text":
		return slog.New(slog.NewTextHandler(w, opts)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(w, opts)), nil
	}
	return nil, fmt.Errorf("--log-format: %q is not text or json", cfg.logFormat)
}

func main() {
	cfg, args, err := parseFlags(os.Args[1:])
	if err != nil {
		os.Exit(2)
	}
	if len(args) > 0 && args[0] == "healthcheck" {
		os.Exit(healthcheck(cfg.httpAddr))
	}
	if len(args) > 0 {
		fmt.Fprintf(os.Stderr, "cutover-worker: unknown command %q (the only command is healthcheck)\n", args[0])
		os.Exit(2)
	}
	log, err := newLogger(cfg, os.Stderr)
	if err != nil {
		fmt.Fprintln(os.Stderr, "cutover-worker:", err)
		os.Exit(2)
	}
	app := fx.New(
		fx.NopLogger,
		fx.Supply(cfg.temporal, log, fx.Annotate(cfg.httpAddr, fx.ResultTags(`name:"httpAddr"`)),
			fx.Annotate(cfg.httpTimeouts, fx.ResultTags(`name:"httpTimeouts"`))),
		metrics.Module,
		temporalconn.Module,
		builtin.Module,
		activities.Module,
		fx.Provide(health),
		fx.Invoke(runWorker),
	)
	if err := app.Start(context.Background()); err != nil {
		log.Error("worker did not start", "err", err)
		os.Exit(1)
	}
	sig := <-app.Wait()
	log.Info("stopping", "signal", sig.Signal.String())
	stopCtx, cancel := context.WithTimeout(context.Background(), 45*time.Second)
	defer cancel()
	if err := app.Stop(stopCtx); err != nil {
		log.Error("stop", "err", err)
		os.Exit(1)
	}
}

// health is healthy while Temporal answers.
func health(c client.Client) metrics.HealthFunc {
	return func(ctx context.Context) error {
		_, err := c.CheckHealth(ctx, &client.CheckHealthRequest{})
		return err
	}
}

// runWorker registers the workflow and the activities by name and polls the task
// queue while the app runs. On stop, running activities get WorkerStopTimeout to
// finish; whatever does not is retried by another worker.
func runWorker(lc fx.Lifecycle, c client.Client, cfg temporalconn.Config, acts *activities.Activities, log *slog.Logger) {
	w := worker.New(c, cfg.TaskQueue, worker.Options{WorkerStopTimeout: 30 * time.Second})
	w.RegisterWorkflowWithOptions(workflows.Release, workflow.RegisterOptions{Name: workflows.WorkflowName})
	acts.Register(w)
	lc.Append(fx.Hook{
		OnStart: func(ctx context.Context) error {
			err := temporalconn.EnsureSearchAttributes(ctx, c, cfg.Namespace,
				workflows.AttrApp, workflows.AttrVersion, workflows.AttrStage, workflows.AttrTraffic, workflows.AttrOutcome)
			if err != nil {
				return err
			}
			if err := w.Start(); err != nil {
				return fmt.Errorf("start worker: %w", err)
			}
			log.Info("worker started", "address", cfg.Address, "namespace", cfg.Namespace, "task_queue", cfg.TaskQueue)
			return nil
		},
		OnStop: func(context.Context) error { w.Stop(); return nil },
	})
}

// healthcheck asks a running worker's /healthz.
func healthcheck(addr string) int {
	host := addr
	if strings.HasPrefix(host, "0.0.0.0:") || strings.HasPrefix(host, ":") {
		host = "127.0.0.1:" + host[strings.LastIndex(host, ":")+1:]
	}
	c := http.Client{Timeout: 5 * time.Second}
	resp, err := c.Get("http://" + host + "/healthz")
	if err != nil {
		fmt.Fprintln(os.Stderr, "unhealthy:", err)
		return 1
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(resp.Body)
		fmt.Fprintf(os.Stderr, "unhealthy: %s", b)
		return 1
	}
	return 0
}
