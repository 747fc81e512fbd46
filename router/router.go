// Package router is Cutover's local traffic router: a long-running reverse proxy
// between an app's users and its blue and green pools of instances. A release
// drives it through a token-protected admin API (weights, pools, swap,
// maintenance) and watches its in-flight counts to know when a pool has drained.
//
// The split is deterministic (request n goes to green when floor((n+1)*W/100)
// moves), instances are health-checked actively and ejected passively, and a
// request that cannot connect is retried once when that is safe.
package router

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/httputil"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/cutoverhq/cutover/deadlines"
)

// Config is the router's configuration.
type Config struct {
	App            string        // the app it serves; the admin API reports it
	Listen         string        // user traffic, e.g. 127.0.0.1:8080 (the default)
	Admin          string        // admin API and /metrics, e.g. 127.0.0.1:8081 (the default); keep it on loopback
	Token          string        // admin bearer token; required
	Sticky         bool          // keep each user on one color by cookie
	HealthPath     string        // instances' health path, default /healthz
	HealthInterval time.Duration // active check period and timeout, default 1s
	EjectFor       time.Duration // passive ejection time, default 5s
	// StateFile, when set, keeps weights, pools and maintenance across restarts:
	// it is written on every change and read by New.
	StateFile string
	Logger    *slog.Logger
	// Registry receives the metrics. Default: a new registry (with Go and process
	// metrics) served on the admin listener's /metrics. A Registerer that is also
	// a prometheus.Gatherer is served there too; otherwise the caller serves it.
	Registry prometheus.Registerer
	// MetricsOpen serves /metrics without the token, for a scraper that cannot
	// send one.
	MetricsOpen bool
	// UserTimeouts are the user listener's deadlines; zero fields take
	// DefaultUserTimeouts. Its Write bounds how long one write to a user may
	// stall, not the whole answer.
	UserTimeouts deadlines.Timeouts
	// AdminTimeouts are the admin listener's deadlines; zero fields take
	// DefaultAdminTimeouts. Write must be longer than HealthInterval.
	AdminTimeouts deadlines.Timeouts
}

// DefaultUserTimeouts are the user listener's deadlines. The router stands
// in front of apps it knows nothing about, so only what no app needs is cut:
//
//   - headers: 10s. Browsers and clients send them at once; slower is a
//     slowloris client.
//   - the whole request: 5m, for uploads the apps take (tens of MB over a
//     slow mobile link) while a body trickled a byte at a time still ends.
//     Once the body is in, the deadline lifts: an app may think as long as
//     it likes.
//   - writing: 1m per write, not per answer. Downloads, long polls and
//     server-sent events run as long as the app streams them, so the router
//     moves the write deadline forward before each write to the user and
//     cuts only a user that has taken none of a write's bytes for 1m.
//   - idle: 2m between requests on a kept-alive connection.
func DefaultUserTimeouts() deadlines.Timeouts {
	return deadlines.Timeouts{ReadHeader: 10 * time.Second, Read: 5 * time.Minute, Write: time.Minute, Idle: 2 * time.Minute}
}

// DefaultAdminTimeouts are the admin listener's deadlines. Its requests are
// small JSON from the release's worker (Client), so a request gets 10s for
// its headers and 30s whole; an answer 30s more than the health interval,
// since PUT /v1/pools waits for the new instances' first health check; an
// idle connection 2m.
func DefaultAdminTimeouts(healthInterval time.Duration) deadlines.Timeouts {
	return deadlines.Timeouts{ReadHeader: 10 * time.Second, Read: 30 * time.Second, Write: 30*time.Second + healthInterval, Idle: 2 * time.Minute}
}

// Router is the local traffic router. Create it with New, then Start it.
type Router struct {
	cfg       Config // Token cleared: only its hash is kept
	tokenHash [sha256.Size]byte
	log       *slog.Logger
	metrics   *metrics
	gatherer  prometheus.Gatherer // nil when the caller's Registerer cannot be gathered
	proxy     *httputil.ReverseProxy
	dialer    *net.Dialer // to the instances, for both paths
	transport *http.Transport
	// reverseProxyOnly sends every request through ReverseProxy, none on the
	// lean path; BenchmarkProxy compares the two.
	reverseProxyOnly bool
	healthClient     *http.Client

	mu    sync.Mutex // serializes changes to the table and the state file
	table atomic.Pointer[table]

	split    atomic.Uint64    // position in the weighted sequence
	rr       [2]atomic.Uint64 // round robin position, by color
	inFlight [2]atomic.Int64  // by color

	life       sync.Mutex // guards what follows
	started    bool
	stopped    bool
	userSrv    *http.Server
	adminSrv   *http.Server
	addr       string
	adminAddr  string
	stopHealth context.CancelFunc
	healthDone chan struct{}
}

// New checks cfg, loads the state file if there is one, and returns a router
// that is not serving yet.
func New(cfg Config) (*Router, error) {
	if cfg.Token == "" {
		return nil, errors.New("router: an admin token is required")
	}
	if cfg.Listen == "" {
		cfg.Listen = "127.0.0.1:8080"
	}
	if cfg.Admin == "" {
		cfg.Admin = "127.0.0.1:8081"
	}
	if cfg.HealthPath == "" {
		cfg.HealthPath = "/healthz"
	}
	if !strings.HasPrefix(cfg.HealthPath, "/") {
		return nil, fmt.Errorf("router: health path %q must start with /", cfg.HealthPath)
	}
	if cfg.HealthInterval < 0 || cfg.EjectFor < 0 {
		return nil, errors.New("router: health interval and ejection time must not be negative")
	}
	if cfg.HealthInterval == 0 {
		cfg.HealthInterval = time.Second
	}
	if cfg.EjectFor == 0 {
		cfg.EjectFor = 5 * time.Second
	}
	cfg.UserTimeouts = cfg.UserTimeouts.Or(DefaultUserTimeouts())
	cfg.AdminTimeouts = cfg.AdminTimeouts.Or(DefaultAdminTimeouts(cfg.HealthInterval))
	if err := cfg.UserTimeouts.Check("user "); err != nil {
		return nil, fmt.Errorf("router: %w", err)
	}
	if err := cfg.AdminTimeouts.Check("admin "); err != nil {
		return nil, fmt.Errorf("router: %w", err)
	}
	if cfg.AdminTimeouts.Write <= cfg.HealthInterval {
		return nil, fmt.Errorf("router: admin write-timeout %s must be longer than the health interval %s: PUT /v1/pools waits for a health check",
			cfg.AdminTimeouts.Write, cfg.HealthInterval)
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	log = log.With("component", "router", "app", cfg.App)

	reg, gatherer := cfg.Registry, prometheus.Gatherer(nil)
	if reg == nil {
		r := prometheus.NewRegistry()
		r.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
		reg, gatherer = r, r
	} else if g, ok := reg.(prometheus.Gatherer); ok {
		gatherer = g
	}
	m, err := newMetrics(reg)
	if err != nil {
		return nil, fmt.Errorf("router: %w", err)
	}

	t := &table{}
	if cfg.StateFile != "" {
		if t, err = loadState(cfg.StateFile); err != nil {
			return nil, fmt.Errorf("router: %w", err)
		}
	}

	dialer := newDialer()
	r := &Router{
		tokenHash:    sha256.Sum256([]byte(cfg.Token)),
		log:          log,
		metrics:      m,
		gatherer:     gatherer,
		dialer:       dialer,
		transport:    newTransport(dialer),
		healthClient: newHealthClient(),
	}
	cfg.Token = "" // nothing can log what is not kept
	r.cfg = cfg
	r.proxy = r.newProxy()
	r.publish(t)
	return r, nil
}

// Start listens on both addresses, checks the instances once (so a restarted
// router serves its saved pools at once), and starts serving and checking.
func (r *Router) Start() error {
	r.life.Lock()
	defer r.life.Unlock()
	if r.started {
		return errors.New("router: already started")
	}
	userLn, err := net.Listen("tcp", r.cfg.Listen)
	if err != nil {
		return fmt.Errorf("router: listen for user traffic: %w", err)
	}
	adminLn, err := net.Listen("tcp", r.cfg.Admin)
	if err != nil {
		userLn.Close()
		return fmt.Errorf("router: listen for the admin API: %w", err)
	}
	if a, ok := adminLn.Addr().(*net.TCPAddr); ok && !a.IP.IsLoopback() {
		r.log.Warn("the admin API listens beyond loopback", "admin", a.String())
	}
	r.started = true
	r.addr, r.adminAddr = userLn.Addr().String(), adminLn.Addr().String()

	r.checkAll(context.Background(), r.table.Load().all())
	ctx, cancel := context.WithCancel(context.Background())
	r.stopHealth, r.healthDone = cancel, make(chan struct{})
	go r.healthLoop(ctx)

	errLog := slog.NewLogLogger(r.log.Handler(), slog.LevelWarn)
	r.userSrv = r.cfg.UserTimeouts.Apply(&http.Server{Handler: http.HandlerFunc(r.serveUser), ErrorLog: errLog})
	r.adminSrv = r.cfg.AdminTimeouts.Apply(&http.Server{Handler: r.adminHandler(), ErrorLog: errLog})
	go r.serve(r.userSrv, userLn, "user")
	go r.serve(r.adminSrv, adminLn, "admin")
	r.log.Info("router started", "listen", r.addr, "admin", r.adminAddr, "sticky", r.cfg.Sticky)
	return nil
}

func (r *Router) serve(srv *http.Server, ln net.Listener, name string) {
	if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
		r.log.Error("listener failed", "listener", name, "err", err)
	}
}

// Addr returns the user traffic address actually bound ("" before Start).
func (r *Router) Addr() string {
	r.life.Lock()
	defer r.life.Unlock()
	return r.addr
}

// AdminAddr returns the admin address actually bound ("" before Start).
func (r *Router) AdminAddr() string {
	r.life.Lock()
	defer r.life.Unlock()
	return r.adminAddr
}

// Shutdown stops accepting connections, waits for in-flight requests to finish
// (or ctx to end, then closes what is left), and stops the health checks.
func (r *Router) Shutdown(ctx context.Context) error {
	r.life.Lock()
	if !r.started || r.stopped {
		r.life.Unlock()
		return nil
	}
	r.stopped = true
	r.life.Unlock()

	var errs []error
	// User traffic first: the admin API stays up while users drain, so the
	// in-flight counts can be watched.
	if err := shutdownServer(ctx, r.userSrv); err != nil {
		errs = append(errs, fmt.Errorf("router: shut down user listener: %w", err))
	}
	if err := shutdownServer(ctx, r.adminSrv); err != nil {
		errs = append(errs, fmt.Errorf("router: shut down admin listener: %w", err))
	}
	r.stopHealth()
	<-r.healthDone
	r.transport.CloseIdleConnections()
	for _, in := range r.table.Load().all() {
		in.idle.closeAll()
	}
	r.healthClient.CloseIdleConnections()
	r.log.Info("router stopped")
	return errors.Join(errs...)
}

func shutdownServer(ctx context.Context, srv *http.Server) error {
	if err := srv.Shutdown(ctx); err != nil {
		_ = srv.Close() // out of time: drop what is left
		return err
	}
	return nil
}
