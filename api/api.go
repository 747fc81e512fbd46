// Package api is Cutover's HTTP API for CI and tools: start a release, read its
// status, list releases, send decisions (approve, abort, pause, resume,
// rollback) and follow a release as server-sent events. It is a thin layer over
// the releases client, as the CLI is; `cutover serve` runs it.
//
// Every request but /healthz and /openapi.json needs a bearer token with a
// scope (release:start, release:approve, release:read); tokens are configured
// as SHA-256 hashes. Errors are RFC 9457 problem details. The document
// openapi.json (served at /openapi.json) describes every route; see README.md.
package api

import (
	"context"
	_ "embed"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"regexp"
	"strings"
	"sync"
	"time"

	"github.com/cutoverhq/cutover/releases"
	"github.com/cutoverhq/cutover/spec"
	"github.com/cutoverhq/cutover/workflows"
)

//go:embed openapi.json
var openapiJSON []byte

// OpenAPI returns the OpenAPI 3 document of the API (what /openapi.json serves).
func OpenAPI() []byte { return append([]byte(nil), openapiJSON...) }

// Releases is what the API needs from the releases client. *releases.Client
// has every method but Current; Temporal adds it.
type Releases interface {
	Start(ctx context.Context, rel spec.Release, o releases.Origin) (releases.Started, error)
	// StatusRun reads the run runID of the app's release ("" for the app's
	// current or last run) and returns its run ID.
	StatusRun(ctx context.Context, app, runID string) (workflows.Status, string, error)
	Decide(ctx context.Context, app, action string, d workflows.Decision, updateID string) (string, error)
	List(ctx context.Context, f releases.Filter) ([]releases.Summary, error)
	// Current describes the app's latest release run (running or not), or
	// returns an error wrapping releases.ErrNotFound.
	Current(ctx context.Context, app string) (Run, error)
}

// Run is one release run as Temporal describes it.
type Run struct {
	WorkflowID string
	RunID      string
	Version    string
	Stage      string
	Running    bool
}

// Config configures the API.
type Config struct {
	// Tokens are the accepted bearer tokens (LoadTokens reads them); at least one.
	Tokens []Token
	// UIURL is the Temporal Web UI's base URL, for the ui link of a release
	// (default http://127.0.0.1:8233).
	UIURL string
	// Namespace is the Temporal namespace, for the ui link (default "default").
	Namespace string
	// MaxBodyBytes limits request bodies (default 1 MiB); larger ones get 413.
	MaxBodyBytes int64
	// PollInterval is how often an event stream reads the status (default 500ms).
	PollInterval time.Duration
	// Heartbeat is how often an idle event stream sends a comment (default 15s).
	Heartbeat time.Duration
	// IdempotencyTTL is how long an Idempotency-Key is remembered (default 24h).
	IdempotencyTTL time.Duration
	// IdempotencyMax is how many keys are remembered at most (default 10000).
	IdempotencyMax int
	// DecideTimeout bounds a decision's wait for the release's answer (default
	// 2m: abort and rollback answer once traffic is back on blue).
	DecideTimeout time.Duration
	// RequestTimeout bounds the other calls to Temporal (default 30s).
	RequestTimeout time.Duration
	// MaxStreams is how many event streams may be open at once (default 200);
	// one more gets 503. Each reads its release's status every PollInterval.
	MaxStreams int
	// PublicURL is the API's base URL as clients reach it, for the OpenAPI
	// document's servers. Empty: the request's own scheme and Host.
	PublicURL string
	// TrustProxy lets X-Forwarded-Proto and X-Forwarded-Host name the
	// document's server when PublicURL is empty. Only behind a proxy that sets
	// them: otherwise any client could name another server.
	TrustProxy bool
}

func (c Config) withDefaults() Config {
	def := func(v *time.Duration, d time.Duration) {
		if *v <= 0 {
			*v = d
		}
	}
	if c.UIURL == "" {
		c.UIURL = "http://127.0.0.1:8233"
	}
	c.UIURL = strings.TrimRight(c.UIURL, "/")
	c.PublicURL = strings.TrimRight(c.PublicURL, "/")
	if c.Namespace == "" {
		c.Namespace = "default"
	}
	if c.MaxBodyBytes <= 0 {
		c.MaxBodyBytes = 1 << 20
	}
	def(&c.PollInterval, 500*time.Millisecond)
	def(&c.Heartbeat, 15*time.Second)
	def(&c.IdempotencyTTL, 24*time.Hour)
	def(&c.DecideTimeout, 2*time.Minute)
	def(&c.RequestTimeout, 30*time.Second)
	if c.IdempotencyMax <= 0 {
		c.IdempotencyMax = 10000
	}
	if c.MaxStreams <= 0 {
		c.MaxStreams = 200
	}
	return c
}

// Server is the API's handlers.
type Server struct {
	cfg    Config
	rc     Releases
	apps   Resolver
	log    *slog.Logger
	keys   *keyring
	idem   *idemCache
	mux    *http.ServeMux
	routes []route

	streams   chan struct{} // one token per open event stream
	closeOnce sync.Once
	closing   chan struct{}
}

// route is one method and path the API serves, and the scope it needs ("" for
// none).
type route struct {
	method, path, scope string
}

// Resolver checks a release request against the app definitions (an
// *apps.Store over the same directory the workers load).
type Resolver interface {
	Resolve(req spec.Release) (spec.Release, error)
}

// New returns the API over a releases client. apps, when not nil, refuses a
// request the app definitions do not allow before anything starts; without
// it the workers refuse it, and the release ends failed with nothing changed.
func New(cfg Config, rc Releases, apps Resolver, log *slog.Logger) (*Server, error) {
	if rc == nil {
		return nil, errors.New("api: no releases client")
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	cfg = cfg.withDefaults()
	keys, err := newKeyring(cfg.Tokens)
	if err != nil {
		return nil, fmt.Errorf("api tokens: %w", err)
	}
	s := &Server{
		cfg: cfg, rc: rc, apps: apps, log: log, keys: keys,
		idem:    newIdemCache(cfg.IdempotencyTTL, cfg.IdempotencyMax),
		mux:     http.NewServeMux(),
		streams: make(chan struct{}, cfg.MaxStreams),
		closing: make(chan struct{}),
	}
	s.handle("POST", "/v1/releases", ScopeStart, s.start)
	s.handle("GET", "/v1/releases", ScopeRead, s.list)
	s.handle("GET", "/v1/releases/{app}", ScopeRead, s.status)
	s.handle("GET", "/v1/releases/{app}/events", ScopeRead, s.events)
	s.handle("GET", "/v1/releases/{app}/runs/{runId}", ScopeRead, s.status)
	s.handle("GET", "/v1/releases/{app}/runs/{runId}/events", ScopeRead, s.events)
	for _, action := range Actions {
		s.handle("POST", "/v1/releases/{app}/"+action, ScopeApprove, s.decide(action))
	}
	s.handle("GET", "/openapi.json", "", s.openapi)
	s.handle("GET", "/healthz", "", s.healthz)
	return s, nil
}

// Actions are the decisions the API sends, each at POST /v1/releases/{app}/{action}.
var Actions = []string{workflows.UpdateApprove, workflows.UpdateAbort, workflows.UpdatePause, workflows.UpdateResume, workflows.UpdateRollback}

func (s *Server) handle(method, path, scope string, h http.HandlerFunc) {
	s.routes = append(s.routes, route{method, path, scope})
	s.mux.Handle(method+" "+path, s.authorize(scope, h))
}

// Handler returns the API's handler: routing, authentication, problem details
// for every error and one structured log line per request.
func (s *Server) Handler() http.Handler { return http.HandlerFunc(s.serveHTTP) }

// Close ends the open event streams (each gets no outcome event; a client
// reconnects), so that http.Server.Shutdown does not wait for them. Register it
// with http.Server.RegisterOnShutdown.
func (s *Server) Close() { s.closeOnce.Do(func() { close(s.closing) }) }

// reqInfo is what the log line tells about a request beyond the request itself.
type reqInfo struct {
	token string
}

type infoKey struct{}

func info(r *http.Request) *reqInfo {
	if i, ok := r.Context().Value(infoKey{}).(*reqInfo); ok {
		return i
	}
	return &reqInfo{}
}

// statusWriter remembers the status code for the log line. Unwrap lets
// http.ResponseController reach the connection (Flush, deadlines).
type statusWriter struct {
	http.ResponseWriter
	status int
	bytes  int64
}

func (w *statusWriter) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	n, err := w.ResponseWriter.Write(b)
	w.bytes += int64(n)
	return n, err
}

func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

func (s *Server) serveHTTP(w http.ResponseWriter, r *http.Request) {
	began := time.Now()
	ri := &reqInfo{}
	r = r.WithContext(context.WithValue(r.Context(), infoKey{}, ri))
	sw := &statusWriter{ResponseWriter: w}
	defer func() {
		if v := recover(); v != nil {
			if v == http.ErrAbortHandler {
				panic(v)
			}
			s.log.Error("handler panicked", "method", r.Method, "path", r.URL.Path, "panic", fmt.Sprint(v))
			if sw.status == 0 {
				s.problem(sw, r, http.StatusInternalServerError, "internal", "the server failed; see its log", nil)
			}
		}
		status := sw.status
		if status == 0 {
			status = http.StatusOK
		}
		level := slog.LevelInfo
		switch {
		case status >= 500:
			level = slog.LevelError
		case status == http.StatusUnauthorized || status == http.StatusForbidden:
			level = slog.LevelWarn
		}
		attrs := []slog.Attr{
			slog.String("method", r.Method),
			slog.String("path", r.URL.Path),
			slog.Int("status", status),
			slog.Duration("duration", time.Since(began)),
			slog.Int64("bytes", sw.bytes),
			slog.String("remote", r.RemoteAddr),
		}
		if ri.token != "" {
			attrs = append(attrs, slog.String("token", ri.token))
		}
		s.log.LogAttrs(context.Background(), level, "request", attrs...)
	}()
	sw.Header().Set("X-Content-Type-Options", "nosniff")
	sw.Header().Set("Cache-Control", "no-store")
	if _, pattern := s.mux.Handler(r); pattern == "" {
		s.unrouted(sw, r)
		return
	}
	s.mux.ServeHTTP(sw, r)
}

// unrouted answers a request no route takes: 404, or 405 with Allow, as
// problem details rather than the mux's plain text.
func (s *Server) unrouted(w http.ResponseWriter, r *http.Request) {
	h, _ := s.mux.Handler(r)
	c := &captureWriter{header: http.Header{}}
	h.ServeHTTP(c, r)
	switch c.status {
	case http.StatusMethodNotAllowed:
		allow := c.header.Get("Allow")
		w.Header().Set("Allow", allow)
		s.problem(w, r, http.StatusMethodNotAllowed, "method-not-allowed",
			fmt.Sprintf("%s is not allowed on %s; allowed: %s", r.Method, r.URL.Path, allow), nil)
	default:
		s.problem(w, r, http.StatusNotFound, "not-found",
			fmt.Sprintf("no such resource: %s (GET /openapi.json describes the API)", r.URL.Path), nil)
	}
}

type captureWriter struct {
	header http.Header
	status int
}

func (c *captureWriter) Header() http.Header { return c.header }
func (c *captureWriter) Write(b []byte) (int, error) {
	if c.status == 0 {
		c.status = http.StatusOK
	}
	return len(b), nil
}
func (c *captureWriter) WriteHeader(code int) {
	if c.status == 0 {
		c.status = code
	}
}

// authorize checks the bearer token and its scope before h runs (and before
// any body is read).
func (s *Server) authorize(scope string, h http.HandlerFunc) http.Handler {
	if scope == "" {
		return h
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		presented, ok := bearer(r)
		if !ok {
			w.Header().Set("WWW-Authenticate", `Bearer realm="cutover"`)
			s.problem(w, r, http.StatusUnauthorized, "unauthorized", "this request needs a bearer token: Authorization: Bearer <token>", nil)
			return
		}
		tok, ok := s.keys.lookup(presented)
		if !ok {
			w.Header().Set("WWW-Authenticate", `Bearer realm="cutover", error="invalid_token"`)
			s.problem(w, r, http.StatusUnauthorized, "unauthorized", "the bearer token is not valid", nil)
			return
		}
		info(r).token = tok.Name
		if !tok.has(scope) {
			w.Header().Set("WWW-Authenticate", fmt.Sprintf(`Bearer realm="cutover", error="insufficient_scope", scope=%q`, scope))
			s.problem(w, r, http.StatusForbidden, "forbidden",
				fmt.Sprintf("the token %q lacks the scope %s, which %s %s needs", tok.Name, scope, r.Method, r.Pattern[strings.IndexByte(r.Pattern, ' ')+1:]), nil)
			return
		}
		h(w, r.WithContext(context.WithValue(r.Context(), tokenKey{}, tok)))
	})
}

type tokenKey struct{}

func tokenOf(r *http.Request) Token {
	t, _ := r.Context().Value(tokenKey{}).(Token)
	return t
}

// bearer returns the request's bearer token. Only the Authorization header is
// read: never a query parameter, which would end up in logs.
func bearer(r *http.Request) (string, bool) {
	h := r.Header.Values("Authorization")
	if len(h) != 1 {
		return "", false
	}
	scheme, tok, ok := strings.Cut(strings.TrimSpace(h[0]), " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return "", false
	}
	tok = strings.TrimSpace(tok)
	return tok, tok != ""
}

// appName is the spec's rule for app names: anything else cannot have a release.
var appName = regexp.MustCompile(`^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$`)

// runIDPattern is what a run ID may look like (Temporal makes UUIDs): anything
// else is answered 404 without asking Temporal.
var runIDPattern = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$`)

// runOf returns the {runId} path value ("" on the routes without one), or
// answers 404 for a value no run has. A run ID is looked up under the app's
// workflow ID only, so one of another app's release is not found: a token
// reads no more by guessing run IDs than by naming apps.
func (s *Server) runOf(w http.ResponseWriter, r *http.Request) (string, bool) {
	id := r.PathValue("runId")
	if r.Pattern == "" || !strings.Contains(r.Pattern, "{runId}") {
		return "", true
	}
	if !runIDPattern.MatchString(id) {
		s.problem(w, r, http.StatusNotFound, "not-found", fmt.Sprintf("%q is not a run ID", id), nil)
		return "", false
	}
	return id, true
}

// appOf returns the {app} path value, or answers 404 for a name no release
// can have.
func (s *Server) appOf(w http.ResponseWriter, r *http.Request) (string, bool) {
	app := r.PathValue("app")
	if !appName.MatchString(app) {
		s.problem(w, r, http.StatusNotFound, "not-found",
			fmt.Sprintf("%q is not a valid app name, so it has no release (lower-case letters, digits and dashes)", app), nil)
		return "", false
	}
	return app, true
}

// forwardedHost is what an X-Forwarded-Host may be: a host name or address
// and a port, nothing that could break out of a URL.
var forwardedHost = regexp.MustCompile(`^(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9.-]+)(:[0-9]{1,5})?$`)

// serverURL is the API's base URL for this request: the configured public URL,
// or the request's scheme and Host (the proxy's, when trusted).
func (s *Server) serverURL(r *http.Request) string {
	if s.cfg.PublicURL != "" {
		return s.cfg.PublicURL
	}
	scheme, host := "http", r.Host
	if r.TLS != nil {
		scheme = "https"
	}
	if s.cfg.TrustProxy {
		// A proxy chain appends; the first value is the client's side.
		first := func(name string) string {
			v, _, _ := strings.Cut(r.Header.Get(name), ",")
			return strings.TrimSpace(v)
		}
		if p := strings.ToLower(first("X-Forwarded-Proto")); p == "http" || p == "https" {
			scheme = p
		}
		if h := first("X-Forwarded-Host"); forwardedHost.MatchString(h) {
			host = h
		}
	}
	return scheme + "://" + host
}

// openapiWith returns the document with one server: base.
func openapiWith(base string) ([]byte, error) {
	var doc map[string]json.RawMessage
	if err := json.Unmarshal(openapiJSON, &doc); err != nil {
		return nil, err
	}
	servers, err := json.Marshal([]map[string]string{{"url": base, "description": "this API"}})
	if err != nil {
		return nil, err
	}
	doc["servers"] = servers
	return json.MarshalIndent(doc, "", "  ")
}

func (s *Server) openapi(w http.ResponseWriter, r *http.Request) {
	doc, err := openapiWith(s.serverURL(r))
	if err != nil {
		s.problem(w, r, http.StatusInternalServerError, "internal", "the OpenAPI document does not encode: "+err.Error(), nil)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "public, max-age=300")
	// The servers entry depends on these.
	w.Header().Set("Vary", "Host, X-Forwarded-Proto, X-Forwarded-Host")
	_, _ = w.Write(doc)
}

// healther is a Releases that can tell whether Temporal answers.
type healther interface {
	Healthy(ctx context.Context) error
}

func (s *Server) healthz(w http.ResponseWriter, r *http.Request) {
	if h, ok := s.rc.(healther); ok {
		ctx, cancel := context.WithTimeout(r.Context(), 3*time.Second)
		defer cancel()
		if err := h.Healthy(ctx); err != nil {
			s.log.Warn("health check: Temporal does not answer", "error", err.Error())
			s.problem(w, r, http.StatusServiceUnavailable, "unavailable", "Temporal does not answer", nil)
			return
		}
	}
	writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
}
