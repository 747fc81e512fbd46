package starter

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/cutoverhq/cutover/providers/local"
	"github.com/cutoverhq/cutover/router"
	"github.com/cutoverhq/cutover/temporalconn"
)

// routerCmd runs the local router: a long-running process of its own, so that
// traffic keeps flowing while workers restart.
func routerCmd() *cobra.Command {
	cfg := router.Config{UserTimeouts: router.DefaultUserTimeouts()}
	var tokenFile, pprofAddr string
	var timeoutsErr error // a CUTOVER_ROUTER_*_TIMEOUT that is not a duration
	cmd := &cobra.Command{
		Use:   "router --app APP",
		Short: "Run the local traffic router between an app's blue and green pools",
		Long: `Run the local traffic router. Users reach the app on --listen; the release
workflow (the local traffic provider) drives it through the admin API on --admin,
which needs the token from CUTOVER_ROUTER_TOKEN or --token-file.

The user listener's deadlines stop clients that send or read slowly without
cutting what apps serve: headers 10s, a whole request 5m (uploads), one write
to a user 1m (an answer streams as long as the app sends it), an idle
connection 2m (--read-header-timeout, --read-timeout, --write-timeout,
--idle-timeout).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if timeoutsErr != nil {
				return timeoutsErr
			}
			token := os.Getenv("CUTOVER_ROUTER_TOKEN")
			if tokenFile != "" {
				b, err := os.ReadFile(tokenFile)
				if err != nil {
					return fmt.Errorf("--token-file: %w", err)
				}
				token = string(trimNewline(b))
			}
			if token == "" {
				return errors.New("the router needs an admin token: set CUTOVER_ROUTER_TOKEN or --token-file")
			}
			cfg.Token = token
			cfg.Logger = slog.New(slog.NewTextHandler(cmd.ErrOrStderr(), nil))
			gogc := tuneRouterGC(os.LookupEnv)
			if pprofAddr != "" {
				stopProfiler, err := serveProfiler(pprofAddr, cfg.Logger)
				if err != nil {
					return err
				}
				defer stopProfiler()
			}
			r, err := router.New(cfg)
			if err != nil {
				return err
			}
			if err := r.Start(); err != nil {
				return err
			}
			cfg.Logger.Info("router serving", "app", cfg.App, "listen", r.Addr(), "admin", r.AdminAddr(), "gogc", gogc)
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			<-ctx.Done()
			cfg.Logger.Info("router stopping: finishing in-flight requests")
			sctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			return r.Shutdown(sctx)
		},
	}
	f := cmd.Flags()
	f.StringVar(&cfg.App, "app", "", "the app it serves (required)")
	f.StringVar(&cfg.Listen, "listen", temporalconn.Getenv("CUTOVER_ROUTER_LISTEN", "127.0.0.1:8080"), "user traffic address (CUTOVER_ROUTER_LISTEN)")
	f.StringVar(&cfg.Admin, "admin", temporalconn.Getenv("CUTOVER_ROUTER_ADMIN", "127.0.0.1:8081"), "admin API and /metrics address, keep it on loopback (CUTOVER_ROUTER_ADMIN)")
	f.StringVar(&tokenFile, "token-file", "", "file holding the admin token (default: $CUTOVER_ROUTER_TOKEN)")
	f.BoolVar(&cfg.Sticky, "sticky", false, "keep each user on one color by cookie")
	f.StringVar(&cfg.HealthPath, "health-path", "/healthz", "instances' health path")
	f.DurationVar(&cfg.HealthInterval, "health-interval", time.Second, "how often instances are checked")
	f.StringVar(&cfg.StateFile, "state-file", "", "keep weights and pools here across restarts")
	f.BoolVar(&cfg.MetricsOpen, "metrics-open", false, "serve /metrics on the admin address without the token")
	f.StringVar(&pprofAddr, "pprof", temporalconn.Getenv("CUTOVER_ROUTER_PPROF", ""),
		"serve Go's profiler (/debug/pprof/) on this loopback address, e.g. 127.0.0.1:6060; off when empty (CUTOVER_ROUTER_PPROF)")
	timeoutsErr = cfg.UserTimeouts.Flags(f, "", "CUTOVER_ROUTER")
	f.Lookup("write-timeout").Usage = "how long one write to a user may stall; a whole answer may take longer (CUTOVER_ROUTER_WRITE_TIMEOUT)"
	_ = cmd.MarkFlagRequired("app")
	return cmd
}

// serveProfiler serves net/http/pprof's handlers on addr, which must be a
// loopback IP and port: a profile shows request paths and heap contents, and
// the endpoint has no token. It returns a function that stops serving.
func serveProfiler(addr string, log *slog.Logger) (func(), error) {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, fmt.Errorf("--pprof %q: %w", addr, err)
	}
	if ip := net.ParseIP(host); ip == nil || !ip.IsLoopback() {
		return nil, fmt.Errorf("--pprof %q: want a loopback address like 127.0.0.1:6060", addr)
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("--pprof: %w", err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	// A CPU profile or trace takes as long as asked (?seconds=N): the write
	// deadline leaves room for a minute's.
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second, WriteTimeout: 2 * time.Minute}
	go func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Warn("profiler stopped", "err", err)
		}
	}()
	log.Info("profiler serving", "addr", ln.Addr().String())
	return func() { _ = srv.Close() }, nil
}

func trimNewline(b []byte) []byte {
	for len(b) > 0 && (b[len(b)-1] == '\n' || b[len(b)-1] == '\r') {
		b = b[:len(b)-1]
	}
	return b
}

// localCmd starts and stops pools of the local environment outside a release:
// the first blue, and cleaning up.
func localCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "local", Short: "Start or stop the local environment's pools (the embedded default)"}
	var file, version, color string
	start := &cobra.Command{
		Use:   "start -f release.yaml --version V",
		Short: "Start a pool (blue by default) of the spec's app at a version and register it with the router",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			p, app, err := localProvider(file)
			if err != nil {
				return err
			}
			pool, err := p.Start(cmd.Context(), app, color, version)
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "%s %s of %s %s: %v\n", app, color, app, version, pool.Instances)
			return nil
		},
	}
	start.Flags().StringVarP(&file, "file", "f", "release.yaml", "release spec whose environment is local")
	start.Flags().StringVar(&version, "version", "", "version to start (required)")
	start.Flags().StringVar(&color, "color", "blue", "pool to start: blue or green")
	_ = start.MarkFlagRequired("version")
	stop := &cobra.Command{
		Use:   "stop -f release.yaml",
		Short: "Stop every pool of the spec's app",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			p, app, err := localProvider(file)
			if err != nil {
				return err
			}
			return p.Stop(cmd.Context(), app)
		},
	}
	stop.Flags().StringVarP(&file, "file", "f", "release.yaml", "release spec whose environment is local")
	cmd.AddCommand(start, stop)
	return cmd
}

func localProvider(file string) (*local.Provider, string, error) {
	rel, err := loadSpec(file)
	if err != nil {
		return nil, "", err
	}
	env := rel.Providers.Environment
	if env.Type != local.Type {
		return nil, "", fmt.Errorf("%s: providers.environment.type is %q, not local", file, env.Type)
	}
	p, err := local.New(env.Settings)
	if err != nil {
		return nil, "", fmt.Errorf("%s: providers.environment: %w", file, err)
	}
	return p, rel.App, nil
}
