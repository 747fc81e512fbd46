package starter

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/signal"
	"strconv"
	"syscall"
	"time"

	"github.com/spf13/cobra"
	"go.uber.org/dig"
	"go.uber.org/fx"

	"github.com/cutoverhq/cutover/api"
	"github.com/cutoverhq/cutover/apps"
	"github.com/cutoverhq/cutover/chatops"
	"github.com/cutoverhq/cutover/deadlines"
	"github.com/cutoverhq/cutover/logs"
	"github.com/cutoverhq/cutover/providers/builtin"
	"github.com/cutoverhq/cutover/releases"
	"github.com/cutoverhq/cutover/temporalconn"
)

// serveFlags are cutover serve's settings.
type serveFlags struct {
	listen, tokensFile, uiURL string
	publicURL                 string
	trustProxy                bool
	tlsCert, tlsKey           string
	logs                      logs.Config
	chatopsConfig             string
	appsDir                   string
	printTokenHash            bool
	timeouts                  deadlines.Timeouts
	timeoutsErr               error // a CUTOVER_API_*_TIMEOUT that is not a duration
}

// decideTimeout bounds how long a decision waits for the release's answer
// (abort and rollback answer once traffic is back on blue): the longest an API
// handler works before it writes.
const decideTimeout = 2 * time.Minute

// apiTimeouts are cutover serve's default deadlines. Headers get 10s; a whole
// request 30s, which sends a release spec or a Slack payload (at most 1 MiB)
// over any link that works at all; a response 2m30s, since a decision may
// wait decideTimeout for the release before it answers (server-sent event
// streams move their own deadline forward with each event, so they are not
// cut); a kept-alive connection idles 2m between requests.
func apiTimeouts() deadlines.Timeouts {
	return deadlines.Timeouts{ReadHeader: 10 * time.Second, Read: 30 * time.Second, Write: decideTimeout + 30*time.Second, Idle: 2 * time.Minute}
}

func serveCmd(g *globals) *cobra.Command {
	f := serveFlags{timeouts: apiTimeouts()}
	cmd := &cobra.Command{
		Use:   "serve --tokens-file tokens.yaml",
		Short: "Serve the HTTP API for CI: start, follow and steer releases",
		Long: `Serve the HTTP API (GET /openapi.json describes it): POST /v1/releases starts a
release, GET /v1/releases/{app}[/runs/{runId}] reads its status, GET
/v1/releases/{app}[/runs/{runId}]/events follows it as server-sent events
(resumable with Last-Event-ID), POST /v1/releases/{app}/{approve|abort|pause|
resume|rollback} decides, GET /v1/releases lists. /openapi.json names the
server as --public-url, or as the request reached it.

Every call needs a bearer token; the tokens file holds their SHA-256 hashes and
scopes (release:start, release:approve, release:read):

  tokens:
    - {name: ci, sha256: <hex>, scopes: [release:start, release:read]}
    - {name: release-managers, sha256: <hex>, scopes: [release:approve, release:read]}

Make a token and its hash:

  head -c 32 /dev/urandom | base64 | tr -d '/+=' > token
  cutover serve --print-token-hash < token

Deadlines bound what a slow or silent client can hold: its headers 10s, its
whole request 30s, the answer 2m30s (an event stream moves its own deadline
forward with each event), an idle connection 2m (--read-header-timeout,
--read-timeout, --write-timeout, --idle-timeout).

SIGTERM stops accepting, ends event streams and lets calls in flight finish.

` + temporalconn.EnvHelp,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if f.printTokenHash {
				tok, err := api.ReadToken(cmd.InOrStdin())
				if err != nil {
					return err
				}
				fmt.Fprintln(cmd.OutOrStdout(), api.HashToken(tok))
				return nil
			}
			return serve(cmd, g, f)
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&f.listen, "listen", temporalconn.Getenv("CUTOVER_API_LISTEN", "127.0.0.1:8090"), "address to listen on (CUTOVER_API_LISTEN)")
	fl.StringVar(&f.tokensFile, "tokens-file", os.Getenv("CUTOVER_API_TOKENS_FILE"), "YAML or JSON file of token names, SHA-256 hashes and scopes (CUTOVER_API_TOKENS_FILE)")
	fl.StringVar(&f.uiURL, "ui-url", temporalconn.Getenv("CUTOVER_UI_URL", "http://127.0.0.1:8233"), "Temporal Web UI base URL, for links to a release (CUTOVER_UI_URL)")
	fl.StringVar(&f.publicURL, "public-url", os.Getenv("CUTOVER_API_PUBLIC_URL"), "the API's base URL as clients reach it, for /openapi.json's servers (default: the request's scheme and Host; CUTOVER_API_PUBLIC_URL)")
	fl.BoolVar(&f.trustProxy, "trust-proxy", false, "take /openapi.json's server from X-Forwarded-Proto and X-Forwarded-Host: only behind a proxy that sets them (CUTOVER_API_TRUST_PROXY=true)")
	fl.StringVar(&f.tlsCert, "tls-cert", os.Getenv("CUTOVER_API_TLS_CERT"), "serve HTTPS with this certificate (PEM; CUTOVER_API_TLS_CERT)")
	fl.StringVar(&f.tlsKey, "tls-key", os.Getenv("CUTOVER_API_TLS_KEY"), "the certificate's private key (PEM; CUTOVER_API_TLS_KEY)")
	f.logs.Flags(fl)
	fl.StringVar(&f.chatopsConfig, "chatops-config", os.Getenv(chatops.EnvConfig), "Slack chatops: YAML of the signing secret's and bot token's env vars and each app's channel and approvers; serves /slack/ (CUTOVER_CHATOPS_CONFIG)")
	fl.StringVar(&f.appsDir, "apps", os.Getenv("CUTOVER_APPS"), "the workers' app definitions directory: requests they would refuse are refused here, before anything starts (CUTOVER_APPS)")
	fl.BoolVar(&f.printTokenHash, "print-token-hash", false, "read a token on standard input, print its SHA-256 for the tokens file, and exit")
	f.timeoutsErr = f.timeouts.Flags(fl, "", "CUTOVER_API")
	return cmd
}

func serve(cmd *cobra.Command, g *globals, f serveFlags) error {
	log, err := f.logs.New(cmd.ErrOrStderr())
	if err != nil {
		return &exitCode{exitUsage, err.Error()}
	}
	if f.tokensFile == "" {
		return &exitCode{exitUsage, "--tokens-file (or CUTOVER_API_TOKENS_FILE) is required: the API serves nobody without tokens"}
	}
	if (f.tlsCert == "") != (f.tlsKey == "") {
		return &exitCode{exitUsage, "--tls-cert and --tls-key go together"}
	}
	if err := checkServeTimeouts(f); err != nil {
		return &exitCode{exitUsage, err.Error()}
	}
	if f.publicURL != "" {
		if u, err := url.Parse(f.publicURL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.RawQuery != "" || u.Fragment != "" {
			return &exitCode{exitUsage, fmt.Sprintf("--public-url: %q is not an http(s) URL like https://cutover.example.com", f.publicURL)}
		}
	}
	if v := os.Getenv("CUTOVER_API_TRUST_PROXY"); v != "" && !cmd.Flags().Changed("trust-proxy") {
		b, err := strconv.ParseBool(v)
		if err != nil {
			return &exitCode{exitUsage, fmt.Sprintf("CUTOVER_API_TRUST_PROXY: %q is not true or false", v)}
		}
		f.trustProxy = b
	}
	tokens, err := api.LoadTokens(f.tokensFile)
	if err != nil {
		return err
	}

	var chat *chatops.Config
	if f.chatopsConfig != "" {
		cfg, err := chatops.LoadConfig(f.chatopsConfig)
		if err != nil {
			return fmt.Errorf("--chatops-config: %w", err)
		}
		chat = &cfg
	}

	ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	// Temporal through the same fx modules as the CLI and the worker; the
	// API and the Slack handler over them.
	opts := []fx.Option{
		fx.NopLogger,
		fx.Supply(g.temporal, log, f,
			api.Config{Tokens: tokens, UIURL: f.uiURL, Namespace: g.temporal.Namespace, DecideTimeout: decideTimeout,
				PublicURL: f.publicURL, TrustProxy: f.trustProxy}),
		fx.Module("temporal", fx.Decorate(sdkLogger), temporalconn.Module),
		releases.Module,
		api.Module,
		chatops.Module,
	}
	if chat != nil {
		opts = append(opts, fx.Supply(chat))
	}
	if f.appsDir != "" {
		// With the workers' app definitions, a request they would refuse is
		// refused here, before anything starts; without, the workers refuse
		// it. SIGHUP reloads them, as it does the workers'.
		opts = append(opts,
			fx.Provide(func() (*apps.Store, error) {
				return apps.NewStore(f.appsDir, apps.Mode{}, builtin.NewRegistry(log).Check)
			}, func(s *apps.Store) api.Resolver { return s }),
			fx.Invoke(apps.ReloadOnHangup))
	}
	var hs *httpServe
	opts = append(opts, fx.Provide(newHTTPServe), fx.Populate(&hs))
	app := fx.New(opts...)
	if err := app.Start(ctx); err != nil {
		return dig.RootCause(err)
	}
	select {
	case <-hs.done:
		// The server failed on its own: nothing to shut down gracefully.
		_ = app.Stop(context.Background())
		return fmt.Errorf("serve: %w", hs.err)
	case <-ctx.Done():
	}
	if err := app.Stop(context.Background()); err != nil {
		return err
	}
	log.Info("stopped")
	return nil
}

// sdkLogger is the Temporal SDK's logger: it logs only warnings and errors,
// unless debug logging is on.
func sdkLogger(log *slog.Logger) *slog.Logger {
	if !log.Enabled(context.Background(), slog.LevelDebug) {
		return slog.New(levelAtLeast{log.Handler(), slog.LevelWarn}).With("component", "temporal-sdk")
	}
	return slog.New(log.Handler()).With("component", "temporal-sdk")
}

// httpServeParams are what cutover serve's HTTP server needs.
type httpServeParams struct {
	fx.In
	Lifecycle fx.Lifecycle
	Flags     serveFlags
	Temporal  temporalconn.Config
	Config    api.Config
	API       *api.Server
	Slack     http.Handler `name:"slack"`
	Log       *slog.Logger
}

// httpServe is cutover serve's HTTP server in the app's lifecycle: it
// listens and serves when the app starts, and shuts down gracefully when it
// stops. done is closed when it stopped serving, with err why.
type httpServe struct {
	done chan struct{}
	err  error
}

func newHTTPServe(p httpServeParams) *httpServe {
	f, log := p.Flags, p.Log
	hs := apiServer(routes(p.API.Handler(), p.Slack), f.timeouts, log)
	hs.RegisterOnShutdown(p.API.Close)
	s := &httpServe{done: make(chan struct{})}
	p.Lifecycle.Append(fx.Hook{
		OnStart: func(context.Context) error {
			ln, err := net.Listen("tcp", f.listen)
			if err != nil {
				return fmt.Errorf("--listen %s: %w", f.listen, err)
			}
			names := make([]string, len(p.Config.Tokens))
			for i, t := range p.Config.Tokens {
				names[i] = t.Name
			}
			scheme := "http"
			if f.tlsCert != "" {
				scheme = "https"
			}
			log.Info("cutover API listening", "url", scheme+"://"+ln.Addr().String(), "temporal", p.Temporal.Address,
				"namespace", p.Temporal.Namespace, "task_queue", p.Temporal.TaskQueue, "tokens", names)
			if scheme == "http" && !isLoopback(ln.Addr()) {
				log.Warn("serving plain HTTP on a non-loopback address: bearer tokens cross the network in clear; use --tls-cert/--tls-key or a TLS-terminating proxy")
			}
			go func() {
				if f.tlsCert != "" {
					s.err = hs.ServeTLS(ln, f.tlsCert, f.tlsKey)
				} else {
					s.err = hs.Serve(ln)
				}
				close(s.done)
			}()
			return nil
		},
		// Not the stop context's deadline: calls in flight get 30s, however
		// long the rest of the app takes to stop.
		OnStop: func(context.Context) error {
			select {
			case <-s.done:
				return nil // it failed on its own; serve reports why
			default:
			}
			log.Info("shutting down: no new requests; event streams end; calls in flight get 30s")
			sctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			if err := hs.Shutdown(sctx); err != nil {
				log.Warn("shutdown: calls still in flight were cut off", "error", err.Error())
				_ = hs.Close()
			}
			<-s.done
			if !errors.Is(s.err, http.ErrServerClosed) {
				return fmt.Errorf("serve: %w", s.err)
			}
			return nil
		},
	})
	return s
}

// checkServeTimeouts refuses deadlines that would cut what the API does.
func checkServeTimeouts(f serveFlags) error {
	if f.timeoutsErr != nil {
		return f.timeoutsErr
	}
	if err := f.timeouts.Check("--"); err != nil {
		return err
	}
	if f.timeouts.Write <= decideTimeout {
		return fmt.Errorf("--write-timeout %s must be longer than %s, the longest a decision waits for the release's answer", f.timeouts.Write, decideTimeout)
	}
	return nil
}

// apiServer is cutover serve's HTTP server with its deadlines (apiTimeouts
// says why each default is what it is).
func apiServer(h http.Handler, t deadlines.Timeouts, log *slog.Logger) *http.Server {
	return t.Apply(&http.Server{
		Handler:        h,
		MaxHeaderBytes: 64 << 10,
		ErrorLog:       slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	})
}

// routes mounts Slack's slash command and buttons at /slack/ beside the API,
// on the same listener, when slack is not nil. The API owns every other path
// ("/"); the more specific pattern wins over it.
func routes(api, slack http.Handler) http.Handler {
	mux := http.NewServeMux()
	mux.Handle("/", api)
	if slack != nil {
		mux.Handle("/slack/", slack)
	}
	return mux
}

func isLoopback(a net.Addr) bool {
	tcp, ok := a.(*net.TCPAddr)
	return ok && tcp.IP.IsLoopback()
}

// levelAtLeast drops records below a level (the Temporal SDK's info lines).
type levelAtLeast struct {
	slog.Handler
	min slog.Level
}

func (h levelAtLeast) Enabled(ctx context.Context, l slog.Level) bool {
	return l >= h.min && h.Handler.Enabled(ctx, l)
}

func (h levelAtLeast) WithAttrs(as []slog.Attr) slog.Handler {
	return levelAtLeast{h.Handler.WithAttrs(as), h.min}
}

func (h levelAtLeast) WithGroup(name string) slog.Handler {
	return levelAtLeast{h.Handler.WithGroup(name), h.min}
}
