// Package prometheus is an analysis provider that reads per-step traffic
// numbers from a Prometheus server with PromQL range queries, and hands them
// to the judge package.
//
// Four queries make a color's points: requests, errors, latency and p99. Each
// is a Go text/template with the fields {{.App}}, {{.Color}} (blue or green),
// {{.Version}} (blue's is the release's previous version, green's the new one)
// and {{.Range}} (the step as a PromQL duration, like 2s), and must return one
// series: aggregate with sum(...). The defaults read Cutover's router metrics.
//
// The step must be at least twice Prometheus's scrape interval of the metrics:
// each step's increase() and rate() need two samples inside [{{.Range}}].
package prometheus

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"text/template"
	"time"

	"github.com/prometheus/client_golang/api"
	v1 "github.com/prometheus/client_golang/api/prometheus/v1"
	"github.com/prometheus/common/model"

	"github.com/cutoverhq/cutover/judge"
	"github.com/cutoverhq/cutover/providers"
	"github.com/cutoverhq/cutover/spec"
)

// Type is the provider's name in release.yaml.
const Type = "prometheus"

// Defaults of the settings.
const (
	DefaultStep     = 2 * time.Second
	DefaultTimeout  = 5 * time.Second
	DefaultRetries  = 2
	DefaultLookback = 30 * time.Second

	DefaultRequests = `sum(increase(cutover_router_requests_total{color="{{.Color}}"}[{{.Range}}]))`
	DefaultErrors   = `sum(increase(cutover_router_requests_total{color="{{.Color}}",code=~"5.."}[{{.Range}}])) or vector(0)`
	DefaultLatency  = `sum(rate(cutover_router_request_duration_seconds_sum{color="{{.Color}}"}[{{.Range}}])) / sum(rate(cutover_router_request_duration_seconds_count{color="{{.Color}}"}[{{.Range}}]))`
	DefaultP99      = `histogram_quantile(0.99, sum by (le) (rate(cutover_router_request_duration_seconds_bucket{color="{{.Color}}"}[{{.Range}}])))`
)

// retryBackoff is the pause before the first retry of a query; it doubles.
var retryBackoff = 250 * time.Millisecond

// defaultWindow is Compare's window when it is given none.
const defaultWindow = 30 * time.Second

// Settings are the provider's release.yaml settings.
type Settings struct {
	// Address is Prometheus's base URL, like http://127.0.0.1:9090 (required).
	Address string `json:"address"`
	// Step is the resolution of the points and the queries' {{.Range}}
	// (default 2s). It must be at least twice Prometheus's scrape interval.
	Step spec.Duration `json:"step,omitempty"`
	// Timeout bounds one query (default 5s).
	Timeout spec.Duration `json:"timeout,omitempty"`
	// Retries is how many times a failed query is tried again, after a short
	// backoff (default 2; 0 turns retries off).
	Retries *int `json:"retries,omitempty"`
	// Queries are the PromQL templates.
	Queries Queries `json:"queries,omitzero"`
	// Lookback is how far back Guard reads green's points (default 30s).
	Lookback spec.Duration `json:"lookback,omitempty"`
	// Judge is the judge's configuration.
	Judge judge.Config `json:"judge,omitzero"`
}

// Queries are the PromQL templates of a color's per-step numbers; each must
// return a single series.
type Queries struct {
	// Requests is the number of requests in each step.
	Requests string `json:"requests,omitempty"`
	// Errors is the number of failed requests in each step.
	Errors string `json:"errors,omitempty"`
	// Latency is the step's latency sample in seconds (the mean by default).
	Latency string `json:"latency,omitempty"`
	// P99 is the step's 99th percentile latency in seconds.
	P99 string `json:"p99,omitempty"`
}

// QueryData is what a query template sees.
type QueryData struct {
	App     string
	Color   string
	Version string
	Range   string
}

// Provider is the Prometheus analysis provider.
type Provider struct {
	s       Settings
	cfg     judge.Config
	retries int
	queries []query
	api     v1.API
	where   string // the address without a password, for verdicts
}

type query struct {
	name string
	tmpl *template.Template
	set  func(p *judge.Point, v float64)
}

var _ providers.Analyzer = (*Provider)(nil)

// New checks the settings, parses the query templates and returns a provider.
// It does no I/O.
func New(settings map[string]any) (*Provider, error) {
	var s Settings
	if err := providers.DecodeSettings(settings, &s); err != nil {
		return nil, err
	}
	if s.Address == "" {
		return nil, providers.BadConfig("address: is required (Prometheus's URL, like http://127.0.0.1:9090)")
	}
	u, err := url.Parse(s.Address)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, providers.BadConfig("address: must be an http(s) URL, not %q", s.Address)
	}
	if s.Step == 0 {
		s.Step = spec.Duration(DefaultStep)
	}
	if s.Step.D() < time.Second || s.Step.D() > 10*time.Minute {
		return nil, providers.BadConfig("step: %s is outside 1s..10m (and must be at least twice the scrape interval)", s.Step)
	}
	if s.Step.D()%time.Millisecond != 0 {
		return nil, providers.BadConfig("step: %s is finer than a millisecond", s.Step)
	}
	if s.Timeout == 0 {
		s.Timeout = spec.Duration(DefaultTimeout)
	}
	if s.Timeout.D() < 100*time.Millisecond || s.Timeout.D() > 2*time.Minute {
		return nil, providers.BadConfig("timeout: %s is outside 100ms..2m", s.Timeout)
	}
	retries := DefaultRetries
	if s.Retries != nil {
		retries = *s.Retries
	}
	if retries < 0 || retries > 10 {
		return nil, providers.BadConfig("retries: %d is outside 0..10", retries)
	}
	if s.Lookback == 0 {
		s.Lookback = spec.Duration(DefaultLookback)
	}
	if s.Lookback.D() < s.Step.D() || s.Lookback.D() > 24*time.Hour {
		return nil, providers.BadConfig("lookback: %s is outside step (%s)..24h", s.Lookback, s.Step)
	}
	q := &s.Queries
	specs := []struct {
		name string
		text *string
		def  string
		set  func(p *judge.Point, v float64)
	}{
		{"requests", &q.Requests, DefaultRequests, func(p *judge.Point, v float64) { p.Requests = v }},
		{"errors", &q.Errors, DefaultErrors, func(p *judge.Point, v float64) { p.Errors = v }},
		{"latency", &q.Latency, DefaultLatency, func(p *judge.Point, v float64) { p.Latency = v }},
		{"p99", &q.P99, DefaultP99, func(p *judge.Point, v float64) { p.P99 = v }},
	}
	var qs []query
	for _, sp := range specs {
		if strings.TrimSpace(*sp.text) == "" {
			*sp.text = sp.def
		}
		t, err := template.New(sp.name).Option("missingkey=error").Parse(*sp.text)
		if err == nil {
			// A field that does not exist shows only when the template runs.
			err = t.Execute(&bytes.Buffer{}, QueryData{App: "app", Color: "green", Version: "v2", Range: "2s"})
		}
		if err != nil {
			return nil, providers.BadConfig("queries.%s: %v", sp.name, oneLine(err.Error()))
		}
		qs = append(qs, query{name: sp.name, tmpl: t, set: sp.set})
	}
	cfg := s.Judge.WithDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	c, err := api.NewClient(api.Config{Address: s.Address, Client: &http.Client{}})
	if err != nil {
		return nil, providers.BadConfig("address: %v", err)
	}
	return &Provider{s: s, cfg: cfg, retries: retries, queries: qs, api: v1.NewAPI(c), where: u.Redacted()}, nil
}

func oneLine(s string) string { return strings.Join(strings.Fields(s), " ") }

// NewBuilder returns the registry entry for the Prometheus provider.
func NewBuilder() providers.Builder {
	return providers.Builder{Type: Type, New: func(s map[string]any) (any, error) { return New(s) }}
}

// Type names the provider.
func (p *Provider) Type() string { return Type }

func (p *Provider) source() string { return "prometheus at " + p.where }

// Guard judges green's points of the last lookback against the absolute limits.
func (p *Provider) Guard(ctx context.Context, r providers.Ref) (providers.Verdict, error) {
	end := time.Now()
	green, err := p.points(ctx, r, providers.Green, end.Add(-p.s.Lookback.D()), end)
	if err != nil {
		return p.unavailable(ctx, err)
	}
	return judge.Guard(p.cfg, green), nil
}

// Compare observes the coming window: it waits until the window (and one more
// step, so that the last scrape lands) is over, then reads both colors' points
// of the window and judges green against blue.
func (p *Provider) Compare(ctx context.Context, r providers.Ref, window time.Duration) (providers.Verdict, error) {
	if window <= 0 {
		window = defaultWindow
	}
	step := p.s.Step.D()
	start := time.Now()
	end := start.Add(window)
	t := time.NewTimer(time.Until(end.Add(step)))
	defer t.Stop()
	select {
	case <-ctx.Done():
		return providers.Verdict{}, ctx.Err()
	case <-t.C:
	}
	// The first point covers (start, start+step]: one ending at start would
	// read the step before the window.
	first := start.Add(step)
	if first.After(end) {
		first = end
	}
	type result struct {
		pts []judge.Point
		err error
	}
	var blue, green result
	var wg sync.WaitGroup
	wg.Go(func() { blue.pts, blue.err = p.points(ctx, r, providers.Blue, first, end) })
	wg.Go(func() { green.pts, green.err = p.points(ctx, r, providers.Green, first, end) })
	wg.Wait()
	if err := firstErr(blue.err, green.err); err != nil {
		return p.unavailable(ctx, err)
	}
	return judge.Compare(p.cfg, blue.pts, green.pts), nil
}

// unavailable is the verdict for a source that cannot be read, ctx's error when
// the caller gave up, or a configuration error as it is.
func (p *Provider) unavailable(ctx context.Context, err error) (providers.Verdict, error) {
	if ctx.Err() != nil {
		return providers.Verdict{}, ctx.Err()
	}
	if errors.Is(err, providers.ErrBadConfig) {
		return providers.Verdict{}, err
	}
	return judge.Unavailable(p.source(), err), nil
}

// points runs a color's four queries over [start, end] and assembles the
// points by timestamp; a step that a query has no value for is NaN there.
func (p *Provider) points(ctx context.Context, r providers.Ref, c providers.Color, start, end time.Time) ([]judge.Point, error) {
	data := QueryData{App: r.App, Color: string(c), Version: r.Version, Range: model.Duration(p.s.Step.D()).String()}
	if c == providers.Blue {
		data.Version = r.PreviousVersion
	}
	rng := v1.Range{Start: start, End: end, Step: p.s.Step.D()}
	results := make([][]model.SamplePair, len(p.queries))
	errs := make([]error, len(p.queries))
	var wg sync.WaitGroup
	for i, q := range p.queries {
		var b bytes.Buffer
		if err := q.tmpl.Execute(&b, data); err != nil {
			return nil, providers.BadConfig("queries.%s: %v", q.name, oneLine(err.Error()))
		}
		wg.Go(func() { results[i], errs[i] = p.series(ctx, q.name, b.String(), c, rng) })
	}
	wg.Wait()
	if err := firstErr(errs...); err != nil {
		return nil, err
	}
	byTime := map[model.Time]*judge.Point{}
	for i, q := range p.queries {
		for _, sp := range results[i] {
			pt := byTime[sp.Timestamp]
			if pt == nil {
				nan := math.NaN()
				pt = &judge.Point{Time: sp.Timestamp.Time(), Requests: nan, Errors: nan, Latency: nan, P99: nan}
				byTime[sp.Timestamp] = pt
			}
			q.set(pt, float64(sp.Value))
		}
	}
	out := make([]judge.Point, 0, len(byTime))
	for _, pt := range byTime {
		out = append(out, *pt)
	}
	slices.SortFunc(out, func(a, b judge.Point) int { return a.Time.Compare(b.Time) })
	return out, nil
}

// series runs one range query, with retries, and returns its one series (none
// when the query returned nothing).
func (p *Provider) series(ctx context.Context, name, promql string, c providers.Color, rng v1.Range) ([]model.SamplePair, error) {
	var val model.Value
	var err error
	backoff := retryBackoff
	for attempt := 0; ; attempt++ {
		qctx, cancel := context.WithTimeout(ctx, p.s.Timeout.D())
		val, _, _, err = p.api.QueryRange(qctx, promql, rng, v1.WithTimeout(p.s.Timeout.D()))
		cancel()
		if err == nil || ctx.Err() != nil || attempt >= p.retries || !retryable(err) {
			break
		}
		t := time.NewTimer(backoff)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil, ctx.Err()
		case <-t.C:
		}
		backoff *= 2
	}
	if ctx.Err() != nil {
		return nil, ctx.Err()
	}
	if err != nil {
		var ae *v1.Error
		if errors.As(err, &ae) && ae.Type == v1.ErrBadData {
			// Prometheus refused the query itself: no retry or wait helps.
			return nil, providers.BadConfig("queries.%s: Prometheus refused %s: %s", name, promql, ae.Msg)
		}
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err // the verdict names the address already
		}
		if errors.Is(err, context.DeadlineExceeded) {
			err = fmt.Errorf("no answer within %s", p.s.Timeout)
		}
		return nil, fmt.Errorf("query %s for %s: %w", name, c, err)
	}
	m, ok := val.(model.Matrix)
	if !ok {
		return nil, fmt.Errorf("query %s for %s: got a %s, want a matrix", name, c, val.Type())
	}
	switch len(m) {
	case 0:
		return nil, nil
	case 1:
		return m[0].Values, nil
	}
	return nil, fmt.Errorf("query %s for %s returned %d series, want one: aggregate it, e.g. with sum(...): %s", name, c, len(m), promql)
}

// retryable reports whether another attempt of a failed query may succeed:
// not when Prometheus judged the query itself.
func retryable(err error) bool {
	var ae *v1.Error
	if errors.As(err, &ae) {
		switch ae.Type {
		case v1.ErrBadData, v1.ErrExec, v1.ErrClient:
			return false
		}
	}
	return true
}

// firstErr is the first error of several, keeping a verdict's reason to one line:
// the queries of one source mostly fail for the same reason. A configuration
// error comes first, since it is what must be fixed.
func firstErr(errs ...error) error {
	var found error
	for _, err := range errs {
		if errors.Is(err, providers.ErrBadConfig) {
			return err
		}
		if found == nil {
			found = err
		}
	}
	return found
}
