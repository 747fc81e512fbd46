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
//	--apps        CUTOVER_APPS         directory of app definitions (none)
//	--dev         CUTOVER_DEV          development mode: run whole specs (false)
//
// One of --apps and --dev is required. With --apps, a release request names an
// app defined there and a version; everything a release may touch comes from
// the definition, and a request that names providers, or an app without a
// definition, is refused. SIGHUP reloads the directory (a reload with a
// problem keeps the definitions in force and logs it). With --dev and no
// definition for the app, the release brings its whole spec: whoever can start
// a release can then run commands as the worker, so use it on your own
// machine only.
//
// TLS, mTLS and API keys come from the variables and the config file profile
// of Temporal's own CLI (go.temporal.io/sdk/contrib/envconfig), so that a
// worker reaches Temporal Cloud or a cluster with TLS as `temporal` does:
//
//	TEMPORAL_API_KEY                        API key (turns TLS on)
//	TEMPORAL_TLS                            true: TLS; false: no TLS at all
//	TEMPORAL_TLS_CLIENT_CERT_PATH           client certificate (PEM), for mTLS
//	TEMPORAL_TLS_CLIENT_KEY_PATH            its private key
//	TEMPORAL_TLS_SERVER_CA_CERT_PATH        CA of the server's certificate
//	TEMPORAL_TLS_SERVER_NAME                name the server's certificate must have
//	TEMPORAL_TLS_DISABLE_HOST_VERIFICATION  true: accept any server certificate
//	TEMPORAL_TLS_*_DATA                     PEM text instead of the files
//	TEMPORAL_TLS_CERT, _KEY, _CA            older names of the three paths
//	TEMPORAL_CLIENT_AUTHORITY               gRPC :authority header
//	TEMPORAL_GRPC_META_<NAME>               gRPC header on every call
//	TEMPORAL_PROFILE, TEMPORAL_CONFIG_FILE  profile of a TOML config file
//	                                        (~/.config/temporalio/temporal.toml)
//
// --address and --namespace override TEMPORAL_ADDRESS and TEMPORAL_NAMESPACE,
// which override the profile's. `cutover-worker -h` lists them all.
//
// how much work it takes on (tuning.go says why the sticky timeout is 1s):
//
//	--max-activities        CUTOVER_MAX_ACTIVITIES        (1000)
//	--max-local-activities  CUTOVER_MAX_LOCAL_ACTIVITIES  (1000)
//	--max-workflow-tasks    CUTOVER_MAX_WORKFLOW_TASKS    (1000)
//	--activity-pollers      CUTOVER_ACTIVITY_POLLERS      (2)
//	--workflow-pollers      CUTOVER_WORKFLOW_POLLERS      (2)
//	--sticky-schedule-to-start-timeout  CUTOVER_STICKY_SCHEDULE_TO_START_TIMEOUT  (1s)
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
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"
	"go.uber.org/fx"

	"github.com/cutoverhq/cutover/activities"
	"github.com/cutoverhq/cutover/apps"
	"github.com/cutoverhq/cutover/deadlines"
	"github.com/cutoverhq/cutover/metrics"
	"github.com/cutoverhq/cutover/providers"
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
	apps         string
	dev          bool
	tuning       tuning
}

func parseFlags(args []string) (config, []string, error) {
	cfg := config{temporal: temporalconn.FromEnv(), httpTimeouts: metrics.DefaultTimeouts(), tuning: defaultTuning()}
	fs := flag.NewFlagSet("cutover-worker", flag.ContinueOnError)
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "Usage: cutover-worker [flags] [healthcheck]\n\nFlags:\n")
		fs.PrintDefaults()
		fmt.Fprintf(fs.Output(), "\n%s\n", temporalconn.EnvHelp)
	}
	fs.StringVar(&cfg.temporal.Address, "address", cfg.temporal.Address, "Temporal frontend host:port (TEMPORAL_ADDRESS)")
	fs.StringVar(&cfg.temporal.Namespace, "namespace", cfg.temporal.Namespace, "Temporal namespace (TEMPORAL_NAMESPACE)")
	fs.StringVar(&cfg.temporal.TaskQueue, "task-queue", cfg.temporal.TaskQueue, "task queue to poll (CUTOVER_TASK_QUEUE)")
	fs.StringVar(&cfg.httpAddr, "http-addr", temporalconn.Getenv("CUTOVER_HTTP_ADDR", "127.0.0.1:9464"), "listen address for /metrics and /healthz (CUTOVER_HTTP_ADDR)")
	fs.StringVar(&cfg.logFormat, "log-format", temporalconn.Getenv("CUTOVER_LOG_FORMAT", "text"), "log format: text or json (CUTOVER_LOG_FORMAT)")
	fs.StringVar(&cfg.logLevel, "log-level", temporalconn.Getenv("CUTOVER_LOG_LEVEL", "info"), "log level: debug, info, warn, error (CUTOVER_LOG_LEVEL)")
	fs.StringVar(&cfg.apps, "apps", os.Getenv("CUTOVER_APPS"), "directory of app definitions, one <app>.yaml each (CUTOVER_APPS)")
	dev, err := envBool("CUTOVER_DEV")
	if err != nil {
		fmt.Fprintln(fs.Output(), "cutover-worker:", err)
		return cfg, nil, err
	}
	fs.BoolVar(&cfg.dev, "dev", dev, "development mode: a release of an app without a definition brings its whole spec (CUTOVER_DEV)")
	envErr := cfg.httpTimeouts.Flags(fs, "http-", "CUTOVER_HTTP")
	tuningErr := cfg.tuning.flags(fs)
	if err := fs.Parse(args); err != nil {
		return cfg, nil, err
	}
	// Like the flag package's own errors, printed here.
	err = errors.Join(envErr, tuningErr)
	if err == nil {
		err = cfg.httpTimeouts.Check("--http-")
	}
	if err == nil {
		err = cfg.tuning.check()
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
	// The app definitions first: a worker whose definitions are wrong says so
	// before it connects anywhere.
	reg := builtin.NewRegistry(log)
	store, err := newStore(appsConfig{dir: cfg.apps, mode: apps.Mode{Dev: cfg.dev}}, reg, log)
	if err != nil {
		fmt.Fprintln(os.Stderr, "cutover-worker:", err)
		os.Exit(2)
	}
	app := fx.New(
		fx.NopLogger,
		fx.Supply(cfg.temporal, log, fx.Annotate(cfg.httpAddr, fx.ResultTags(`name:"httpAddr"`)),
			fx.Annotate(cfg.httpTimeouts, fx.ResultTags(`name:"httpTimeouts"`))),
		fx.Supply(reg, store, cfg.tuning),
		fx.Invoke(reloadOnHangup),
		metrics.Module,
		temporalconn.Module,
		activities.Module,
		fx.Provide(health),
		fx.Invoke(runWorker),
	)
	if err := app.Start(context.Background()); err != nil {
		// fx's account of which constructor failed buries the cause.
		var te *temporalconn.Error
		if errors.As(err, &te) {
			err = te
		}
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
// queue while the app runs, as tuned.
func runWorker(lc fx.Lifecycle, c client.Client, cfg temporalconn.Config, tun tuning, acts *activities.Activities, store *apps.Store, log *slog.Logger) {
	acts = acts.WithApps(store)
	w := worker.New(c, cfg.TaskQueue, tun.options())
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
			log.Info("worker started", "address", cfg.Address, "namespace", cfg.Namespace, "task_queue", cfg.TaskQueue,
				"apps", store.Apps(), "dev", store.Dev(), "max_activities", tun.activities, "max_workflow_tasks", tun.workflowTasks,
				"activity_pollers", tun.activityPollers, "workflow_pollers", tun.workflowPollers, "sticky_schedule_to_start_timeout", tun.sticky)
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

// appsConfig is where the app definitions are and whether development mode is on.
type appsConfig struct {
	dir  string
	mode apps.Mode
}

// newStore loads the app definitions and gates the provider registry with
// them: outside development mode the worker builds no provider that no
// definition names, whatever an activity's input says.
func newStore(cfg appsConfig, reg *providers.Registry, log *slog.Logger) (*apps.Store, error) {
	store, err := apps.NewStore(cfg.dir, cfg.mode, reg.Check)
	if err != nil {
		return nil, err
	}
	reg.Gate(store.Allow)
	if cfg.mode.Dev {
		log.Warn("development mode: a release of an app without a definition runs its own spec, commands and hosts included")
	}
	return store, nil
}

// reloadOnHangup reloads the app definitions on SIGHUP.
func reloadOnHangup(lc fx.Lifecycle, store *apps.Store, log *slog.Logger) {
	hup := make(chan os.Signal, 1)
	lc.Append(fx.Hook{
		OnStart: func(context.Context) error {
			signal.Notify(hup, syscall.SIGHUP)
			go store.ReloadOn(hup, log)
			return nil
		},
		OnStop: func(context.Context) error { signal.Stop(hup); close(hup); return nil },
	})
}

// envBool reads a true/false environment variable; unset is false.
func envBool(name string) (bool, error) {
	switch v := os.Getenv(name); v {
	case "", "false":
		return false, nil
	case "true":
		return true, nil
	default:
		return false, fmt.Errorf("%s: %q is not true or false", name, v)
	}
}
