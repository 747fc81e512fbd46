// Package worker is cutover-worker (cmd/cutover-worker is its main): it runs release workflows and their activities. Run as many
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
// which override the profile's. `cutover-worker --help` lists them all.
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
// it is healthy (for container health checks); `cutover-worker version` prints
// the build.
//
// Exit codes: 0 stopped by a signal, 1 the worker failed, 2 bad usage or
// configuration.
package worker

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"go.temporal.io/sdk/client"
	sdkworker "go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"
	"go.uber.org/dig"
	"go.uber.org/fx"

	"github.com/cutoverhq/cutover/activities"
	"github.com/cutoverhq/cutover/apps"
	"github.com/cutoverhq/cutover/deadlines"
	"github.com/cutoverhq/cutover/logs"
	"github.com/cutoverhq/cutover/metrics"
	"github.com/cutoverhq/cutover/providers"
	"github.com/cutoverhq/cutover/providers/builtin"
	"github.com/cutoverhq/cutover/temporalconn"
	"github.com/cutoverhq/cutover/version"
	"github.com/cutoverhq/cutover/workflows"
)

// Exit codes.
const (
	exitFailed = 1
	exitUsage  = 2
)

// usageError is bad usage or configuration: exit code 2.
type usageError struct{ err error }

func (e usageError) Error() string { return e.err.Error() }
func (e usageError) Unwrap() error { return e.err }

type config struct {
	temporal     temporalconn.Config
	httpAddr     string
	httpTimeouts deadlines.Timeouts
	logs         logs.Config
	apps         string
	dev          bool
	// envErr is a variable behind a flag default that does not parse,
	// reported when the command runs.
	envErr error
	tuning tuning
}

// Main runs cutover-worker with args (without the program name) and returns
// the exit code.
func Main(args []string, stdout, stderr io.Writer) int {
	root := newRoot(run)
	root.SetArgs(args)
	root.SetOut(stdout)
	root.SetErr(stderr)
	err := root.Execute()
	if err == nil {
		return 0
	}
	var code exitCode
	if errors.As(err, &code) {
		return int(code)
	}
	fmt.Fprintln(stderr, "cutover-worker:", err)
	var ue usageError
	if errors.As(err, &ue) {
		return exitUsage
	}
	return exitFailed
}

// exitCode ends the program with a code and no further message: what went
// wrong is already logged or printed.
type exitCode int

func (c exitCode) Error() string { return fmt.Sprintf("exit code %d", int(c)) }

// newRoot is the command line; start runs the worker with what it says.
func newRoot(start func(context.Context, config, io.Writer) error) *cobra.Command {
	cfg := &config{temporal: temporalconn.FromEnv(), httpTimeouts: metrics.DefaultTimeouts(), tuning: defaultTuning()}
	root := &cobra.Command{
		Use:   "cutover-worker",
		Short: "Run release workflows and their activities",
		Long: `Run release workflows and their activities. Run as many as you like on one
task queue: they share the work, and any of them may die without losing a
release. One of --apps and --dev is required. SIGHUP reloads the app
definitions; SIGTERM stops polling and gives running activities 30s.

Flags default to the environment variables in brackets.

` + temporalconn.EnvHelp,
		Args: func(_ *cobra.Command, args []string) error {
			if len(args) > 0 {
				return usageError{fmt.Errorf("unknown command %q (the commands are healthcheck and version)", args[0])}
			}
			return nil
		},
		SilenceUsage:  true,
		SilenceErrors: true,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := cfg.check(); err != nil {
				return usageError{err}
			}
			return start(cmd.Context(), *cfg, cmd.ErrOrStderr())
		},
	}
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return usageError{err} })
	fl := root.Flags()
	fl.StringVar(&cfg.temporal.Address, "address", cfg.temporal.Address, "Temporal frontend host:port (TEMPORAL_ADDRESS)")
	fl.StringVar(&cfg.temporal.Namespace, "namespace", cfg.temporal.Namespace, "Temporal namespace (TEMPORAL_NAMESPACE)")
	fl.StringVar(&cfg.temporal.TaskQueue, "task-queue", cfg.temporal.TaskQueue, "task queue to poll (CUTOVER_TASK_QUEUE)")
	// Persistent: healthcheck asks the address a worker serves on.
	root.PersistentFlags().StringVar(&cfg.httpAddr, "http-addr", temporalconn.Getenv("CUTOVER_HTTP_ADDR", "127.0.0.1:9464"), "listen address for /metrics, /healthz and /livez (CUTOVER_HTTP_ADDR)")
	cfg.logs.Flags(fl)
	fl.StringVar(&cfg.apps, "apps", os.Getenv("CUTOVER_APPS"), "directory of app definitions, one <app>.yaml each; SIGHUP reloads it (CUTOVER_APPS)")
	dev, devErr := envBool("CUTOVER_DEV")
	fl.BoolVar(&cfg.dev, "dev", dev, "development mode: a release of an app without a definition brings its whole spec (CUTOVER_DEV)")
	cfg.envErr = errors.Join(devErr, cfg.httpTimeouts.Flags(fl, "http-", "CUTOVER_HTTP"), cfg.tuning.flags(fl))
	root.AddCommand(healthcheckCmd(cfg), version.Command(root))
	return root
}

// check is what the flags' own parsing cannot say.
func (c config) check() error {
	if c.envErr != nil {
		return c.envErr
	}
	if err := c.tuning.check(); err != nil {
		return err
	}
	return c.httpTimeouts.Check("--http-")
}

func healthcheckCmd(cfg *config) *cobra.Command {
	return &cobra.Command{
		Use:   "healthcheck",
		Short: "Ask a running worker's /healthz (--http-addr); exit 0 when it is healthy (for container health checks)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := healthcheck(cfg.httpAddr); err != nil {
				fmt.Fprintln(cmd.ErrOrStderr(), "unhealthy:", err)
				return exitCode(exitFailed)
			}
			return nil
		},
	}
}

// Module is the worker itself: it registers the workflow and the activities
// and polls the task queue while the app runs, and reloads the app
// definitions on SIGHUP. It needs a Temporal client (temporalconn.Module),
// the activities (activities.Module), the app definitions and the logger;
// it provides the health check that metrics.Module serves.
var Module = fx.Module("worker",
	fx.Provide(health),
	fx.Invoke(apps.ReloadOnHangup, runWorker),
)

// run runs the worker until SIGINT or SIGTERM.
func run(ctx context.Context, cfg config, stderr io.Writer) error {
	log, err := cfg.logs.New(stderr)
	if err != nil {
		return usageError{err}
	}
	// The app definitions first: a worker whose definitions are wrong says so
	// before it connects anywhere.
	reg := builtin.NewRegistry(log)
	store, err := newStore(appsConfig{dir: cfg.apps, mode: apps.Mode{Dev: cfg.dev}}, reg, log)
	if err != nil {
		return usageError{err}
	}
	app := fx.New(
		fx.NopLogger,
		fx.Supply(cfg.temporal, log, fx.Annotate(cfg.httpAddr, fx.ResultTags(`name:"httpAddr"`)),
			fx.Annotate(cfg.httpTimeouts, fx.ResultTags(`name:"httpTimeouts"`))),
		fx.Supply(reg, store, cfg.tuning),
		metrics.Module,
		temporalconn.Module,
		activities.Module,
		Module,
	)
	if err := app.Start(ctx); err != nil {
		// The constructor's or hook's own error, without fx's account of
		// where in the graph it failed.
		log.Error("worker did not start", "err", dig.RootCause(err))
		return exitCode(exitFailed)
	}
	sig := <-app.Wait()
	log.Info("stopping", "signal", sig.Signal.String())
	stopCtx, cancel := context.WithTimeout(context.Background(), 45*time.Second)
	defer cancel()
	if err := app.Stop(stopCtx); err != nil {
		log.Error("stop", "err", err)
		return exitCode(exitFailed)
	}
	return nil
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
	w := sdkworker.New(c, cfg.TaskQueue, tun.options())
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
func healthcheck(addr string) error {
	host := addr
	if strings.HasPrefix(host, "0.0.0.0:") || strings.HasPrefix(host, ":") {
		host = "127.0.0.1:" + host[strings.LastIndex(host, ":")+1:]
	}
	c := http.Client{Timeout: 5 * time.Second}
	resp, err := c.Get("http://" + host + "/healthz")
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
		return fmt.Errorf("%s: %s", resp.Status, strings.TrimSpace(string(b)))
	}
	return nil
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
