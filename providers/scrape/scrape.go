// Package scrape is an analysis provider that reads a target's Prometheus text
// /metrics directly, without a Prometheus server: the local demo's default,
// pointed at Cutover's router admin /metrics. It keeps the snapshots it scrapes,
// turns the differences between consecutive ones into per-step points, and hands
// them to the judge package.
//
// A snapshot holds, per series, the request counter and the latency
// histogram (sum, count and cumulative buckets). The difference between two
// snapshots is taken per series, as Prometheus does: a counter that went down
// was reset and counts from zero; a series absent from the earlier snapshot
// counts as zero there (so a new instance's first requests are not lost, which
// PromQL's increase() would miss).
package scrape

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"regexp"
	"regexp/syntax"
	"sync"
	"time"

	"github.com/cutoverhq/cutover/judge"
	"github.com/cutoverhq/cutover/providers"
	"github.com/cutoverhq/cutover/spec"
)

// Type is the provider's name in release.yaml.
const Type = "scrape"

// Defaults of the settings.
const (
	DefaultStep       = time.Second
	DefaultTimeout    = 2 * time.Second
	DefaultRequests   = "cutover_router_requests_total"
	DefaultDuration   = "cutover_router_request_duration_seconds"
	DefaultColorLabel = "color"
	DefaultCodeLabel  = "code"
	DefaultErrorCodes = "5.."
)

// How Guard keeps its history and retries a scrape.
const (
	historyMax    = 120              // snapshots kept per release
	historyMaxAge = 10 * time.Minute // older snapshots are dropped
	freshFor      = 5 * time.Minute  // an earlier snapshot this recent makes a step
	scrapeRetries = 2                // extra attempts of a failed scrape
	retryPause    = 200 * time.Millisecond
	defaultWindow = 30 * time.Second // Compare's window when it is given none
)

// Settings are the provider's release.yaml settings.
type Settings struct {
	// URL is the metrics endpoint, like http://127.0.0.1:8081/metrics
	// (required).
	URL string `json:"url"`
	// Token is an optional bearer token; the router's admin /metrics needs it
	// unless the router serves its metrics open.
	Token *providers.SecretRef `json:"token,omitempty"`
	// Step is the scrape period during Compare and Guard's first wait (default 1s).
	Step spec.Duration `json:"step,omitempty"`
	// Timeout bounds one scrape (default 2s).
	Timeout spec.Duration `json:"timeout,omitempty"`
	// Metrics names the metrics and labels to read.
	Metrics Metrics `json:"metrics,omitzero"`
	// Judge is the judge's configuration.
	Judge judge.Config `json:"judge,omitzero"`
}

// Metrics names the metrics and labels the provider reads; the defaults are the
// router's.
type Metrics struct {
	// Requests is a counter of requests (default cutover_router_requests_total).
	Requests string `json:"requests,omitempty"`
	// Duration is a histogram of request durations in seconds (default
	// cutover_router_request_duration_seconds).
	Duration string `json:"duration,omitempty"`
	// ColorLabel is the label holding blue or green (default color).
	ColorLabel string `json:"colorLabel,omitempty"`
	// CodeLabel is the requests counter's status code label (default code).
	CodeLabel string `json:"codeLabel,omitempty"`
	// ErrorCodes is a regular expression matched against the whole code label
	// (like PromQL's =~); matching requests are errors (default 5..).
	ErrorCodes string `json:"errorCodes,omitempty"`
}

// Provider is the scrape analysis provider.
type Provider struct {
	s      Settings
	cfg    judge.Config
	errRe  *regexp.Regexp
	where  string // the URL without a password, for verdicts
	client *http.Client

	mu      sync.Mutex
	history map[string][]snapshot // by app and version, oldest first
}

var _ providers.Analyzer = (*Provider)(nil)

// New checks the settings and returns a provider. It does no I/O.
func New(settings map[string]any) (*Provider, error) {
	var s Settings
	if err := providers.DecodeSettings(settings, &s); err != nil {
		return nil, err
	}
	if s.URL == "" {
		return nil, providers.BadConfig("url: is required (the metrics endpoint, like http://127.0.0.1:8081/metrics)")
	}
	u, err := url.Parse(s.URL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, providers.BadConfig("url: must be an http(s) URL, not %q", s.URL)
	}
	if s.Token != nil {
		if err := s.Token.Check(); err != nil {
			return nil, providers.BadConfig("token: %v", err)
		}
	}
	if s.Step == 0 {
		s.Step = spec.Duration(DefaultStep)
	}
	if s.Step.D() < 100*time.Millisecond || s.Step.D() > 5*time.Minute {
		return nil, providers.BadConfig("step: %s is outside 100ms..5m", s.Step)
	}
	if s.Timeout == 0 {
		s.Timeout = spec.Duration(DefaultTimeout)
	}
	if s.Timeout.D() < 10*time.Millisecond || s.Timeout.D() > time.Minute {
		return nil, providers.BadConfig("timeout: %s is outside 10ms..1m", s.Timeout)
	}
	m := &s.Metrics
	for _, f := range []struct {
		name string
		v    *string
		def  string
	}{
		{"requests", &m.Requests, DefaultRequests},
		{"duration", &m.Duration, DefaultDuration},
		{"colorLabel", &m.ColorLabel, DefaultColorLabel},
		{"codeLabel", &m.CodeLabel, DefaultCodeLabel},
	} {
		if *f.v == "" {
			*f.v = f.def
		}
		if !metricName.MatchString(*f.v) {
			return nil, providers.BadConfig("metrics.%s: %q is not a metric or label name", f.name, *f.v)
		}
	}
	if m.ErrorCodes == "" {
		m.ErrorCodes = DefaultErrorCodes
	}
	re, err := regexp.Compile("^(?:" + m.ErrorCodes + ")$")
	if err != nil {
		return nil, providers.BadConfig("metrics.errorCodes: %q is not a regular expression: %v", m.ErrorCodes, unwrapRegexp(err))
	}
	cfg := s.Judge.WithDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	return &Provider{
		s:       s,
		cfg:     cfg,
		errRe:   re,
		where:   u.Redacted(),
		client:  &http.Client{},
		history: map[string][]snapshot{},
	}, nil
}

// metricName accepts the classic metric and label names.
var metricName = regexp.MustCompile(`^[a-zA-Z_:][a-zA-Z0-9_:]*$`)

func unwrapRegexp(err error) string {
	var se *syntax.Error
	if errors.As(err, &se) {
		return string(se.Code)
	}
	return err.Error()
}

// NewBuilder returns the registry entry for the scrape provider.
func NewBuilder() providers.Builder {
	return providers.Builder{Type: Type, New: func(s map[string]any) (any, error) { return New(s) }}
}

// Type names the provider.
func (p *Provider) Type() string { return Type }

// source names what the provider reads, in verdicts.
func (p *Provider) source() string { return "scrape " + p.where }

// Guard judges green's recent steps against the absolute limits. Each call
// scrapes once and adds the snapshot to the release's history; the points are
// the differences between consecutive snapshots. When there is no earlier
// snapshot younger than 5 minutes, it waits a step and scrapes again, so the
// first call judges one step already.
func (p *Provider) Guard(ctx context.Context, r providers.Ref) (providers.Verdict, error) {
	key := r.App + "\x00" + r.Version
	snap, err := p.scrapeRetry(ctx)
	if err != nil {
		return p.unavailable(ctx, err)
	}
	if !p.record(key, snap) {
		if err := sleep(ctx, p.s.Step.D()); err != nil {
			return providers.Verdict{}, err
		}
		snap, err := p.scrapeRetry(ctx)
		if err != nil {
			return p.unavailable(ctx, err)
		}
		p.record(key, snap)
	}
	p.mu.Lock()
	green := points(p.history[key], providers.Green)
	p.mu.Unlock()
	return judge.Guard(p.cfg, green), nil
}

// record adds a snapshot to a history, in time order, drops what is too old,
// and reports whether an earlier snapshot younger than freshFor was there.
func (p *Provider) record(key string, s snapshot) (hadFresh bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	h := p.history[key]
	i := len(h)
	for i > 0 && h[i-1].at.After(s.at) {
		i--
	}
	hadFresh = i > 0 && s.at.Sub(h[i-1].at) < freshFor
	h = append(h[:i], append([]snapshot{s}, h[i:]...)...)
	newest := h[len(h)-1].at
	drop := 0
	for drop < len(h) && (len(h)-drop > historyMax || newest.Sub(h[drop].at) > historyMaxAge) {
		drop++
	}
	h = append([]snapshot(nil), h[drop:]...)
	p.history[key] = h
	// Forget releases whose history is all too old, so the map does not grow
	// with every release the worker ever guarded.
	for k, o := range p.history {
		if k != key && (len(o) == 0 || s.at.Sub(o[len(o)-1].at) > historyMaxAge) {
			delete(p.history, k)
		}
	}
	return hadFresh
}

// Compare observes the coming window: it scrapes now and every step until the
// window ends, and judges green against blue on the differences between
// consecutive snapshots. A scrape that fails inside the window is skipped (the
// next difference spans both steps); the first and the last must succeed.
func (p *Provider) Compare(ctx context.Context, r providers.Ref, window time.Duration) (providers.Verdict, error) {
	if window <= 0 {
		window = defaultWindow
	}
	step := p.s.Step.D()
	deadline := time.Now().Add(window)
	first, err := p.scrapeRetry(ctx)
	if err != nil {
		return p.unavailable(ctx, err)
	}
	snaps := []snapshot{first}
	ticker := time.NewTicker(step)
	defer ticker.Stop()
	end := time.NewTimer(time.Until(deadline))
	defer end.Stop()
loop:
	for {
		select {
		case <-ctx.Done():
			return providers.Verdict{}, ctx.Err()
		case <-end.C:
			break loop
		case <-ticker.C:
			if time.Until(deadline) < step/2 {
				continue // the last scrape comes at the deadline
			}
			if s, err := p.scrape(ctx); err == nil {
				snaps = append(snaps, s)
			} else if ctx.Err() != nil {
				return providers.Verdict{}, ctx.Err()
			}
		}
	}
	last, err := p.scrapeRetry(ctx)
	if err != nil {
		return p.unavailable(ctx, err)
	}
	snaps = append(snaps, last)
	return judge.Compare(p.cfg, points(snaps, providers.Blue), points(snaps, providers.Green)), nil
}

// unavailable is the verdict for a source that cannot be read, or ctx's error
// when the caller gave up.
func (p *Provider) unavailable(ctx context.Context, err error) (providers.Verdict, error) {
	if ctx.Err() != nil {
		return providers.Verdict{}, ctx.Err()
	}
	if kindOf(err) {
		return providers.Verdict{}, err
	}
	return judge.Unavailable(p.source(), err), nil
}

// scrapeRetry scrapes, retrying a failure twice, 200ms apart. A bad
// configuration (a secret that is not there) is not retried.
func (p *Provider) scrapeRetry(ctx context.Context) (snapshot, error) {
	var err error
	for attempt := 0; ; attempt++ {
		var s snapshot
		if s, err = p.scrape(ctx); err == nil {
			return s, nil
		}
		if ctx.Err() != nil || kindOf(err) || attempt == scrapeRetries {
			return snapshot{}, err
		}
		if err := sleep(ctx, retryPause); err != nil {
			return snapshot{}, err
		}
	}
}

// sleep waits d or until ctx ends.
func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// kindOf reports whether err is a configuration error, which no retry helps.
func kindOf(err error) bool { return errors.Is(err, providers.ErrBadConfig) }
