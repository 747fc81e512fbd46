// Package scrape is an analysis provider that reads a target's Prometheus text
// /metrics page directly, without a Prometheus server, so that a release can be
// judged with nothing but the app and Cutover's router running: it is the local
// demo's default, pointed at the router's admin /metrics.
//
// It only reads. Each Snapshot is one scrape: every relevant counter's
// cumulative value as the page shows it at that moment. Differences, counter
// resets, gaps and quantiles are the analysis package's work, done the same way
// for every source, so that a reset or a missed scrape is handled and named once
// and the evidence survives a worker restart; a provider that kept its own
// history would lose it with the worker.
//
// Series are named the way Prometheus names them, name{label="value",...}, so
// that a reset the analysis reports points at a line a person can find on the
// page. Latency histograms are handed over bucket by bucket, +Inf included even
// where the page leaves it out: a quantile is only right when taken from the
// buckets' increase over a step, never from their totals since the app started.
package scrape

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"regexp/syntax"
	"slices"
	"strings"
	"time"

	"github.com/cutoverhq/cutover/analysis"
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

// How a failed scrape is retried: a target that drops one connection or
// answers one request slowly should not cost the step.
const (
	scrapeRetries = 2 // extra attempts of a failed scrape
	retryPause    = 200 * time.Millisecond
)

// Settings are the provider's release.yaml settings.
type Settings struct {
	// URL is the metrics endpoint, like http://127.0.0.1:8081/metrics
	// (required).
	URL string `json:"url"`
	// Token is an optional bearer token; the router's admin /metrics needs it
	// unless the router serves its metrics open.
	Token *providers.SecretRef `json:"token,omitempty"`
	// Step is how often the page is read: a comparison judges one step at a
	// time (default 1s, 100ms..5m).
	Step spec.Duration `json:"step,omitempty"`
	// Timeout bounds one scrape (default 2s, 10ms..1m).
	Timeout spec.Duration `json:"timeout,omitempty"`
	// Series names the request counter and latency histogram the error rate
	// and latency are read from; the defaults are the router's.
	Series Series `json:"series,omitzero"`
	// Metrics are the app's own metrics (business and experiment metrics),
	// each read as a numerator and a denominator from the same page and judged
	// by the same rules as the error rate.
	Metrics []Metric `json:"metrics,omitempty"`
	// Judge is the judge's configuration. Its metrics come from Metrics, so
	// judge.metrics is not a setting here.
	Judge judge.Config `json:"judge,omitzero"`
}

// Series names the metrics and labels of the traffic the judge always looks
// at: requests, their errors and their latency.
type Series struct {
	// Requests is a counter of requests (default cutover_router_requests_total).
	Requests string `json:"requests,omitempty"`
	// Duration is a histogram of request durations in seconds (default
	// cutover_router_request_duration_seconds).
	Duration string `json:"duration,omitempty"`
	// ColorLabel is the label holding blue or green (default color); app
	// metrics without a versionLabel are told apart by it too.
	ColorLabel string `json:"colorLabel,omitempty"`
	// CodeLabel is the requests counter's status code label (default code).
	CodeLabel string `json:"codeLabel,omitempty"`
	// ErrorCodes is a regular expression matched against the whole code label
	// (like PromQL's =~); matching requests are errors (default 5..).
	ErrorCodes string `json:"errorCodes,omitempty"`
}

// Metric is one of the app's own metrics: the judge's fields (name, kind,
// better, margin, critical) and where on the page its two counters are.
type Metric struct {
	judge.MetricConfig
	// Numerator is the metric family counting the events (a proportion) or
	// summing the values (a mean): a counter or untyped family, or the _sum or
	// _count of a histogram or summary, like checkout_value_dollars_sum.
	Numerator string `json:"numerator"`
	// Denominator is the family counting the trials (a proportion) or the
	// values (a mean), like checkout_value_dollars_count.
	Denominator string `json:"denominator"`
	// VersionLabel, when set, tells the colors apart by this label instead of
	// series.colorLabel, for an app that knows its version but not its color:
	// the release's version is green, the previous version blue, and any other
	// version (or none) is left out. When the two versions are the same, the
	// colors cannot be told apart and nothing is read.
	VersionLabel string `json:"versionLabel,omitempty"`
}

// Provider is the scrape analysis provider.
type Provider struct {
	s      Settings
	cfg    judge.Config
	errRe  *regexp.Regexp
	where  string // the URL without a password, for verdicts
	client *http.Client
}

var (
	_ analysis.Source         = (*Provider)(nil)
	_ analysis.Snapshotter    = (*Provider)(nil)
	_ providers.MetricsSource = (*Provider)(nil)
)

// New checks the settings and returns a provider. It does no I/O.
func New(settings map[string]any) (*Provider, error) {
	if _, ok := settings["metrics"].(map[string]any); ok {
		return nil, providers.BadConfig("metrics: is now the list of the app's own metrics; the names of the request counter, duration histogram and labels moved to series:")
	}
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
	sr := &s.Series
	for _, f := range []struct {
		name string
		v    *string
		def  string
	}{
		{"requests", &sr.Requests, DefaultRequests},
		{"duration", &sr.Duration, DefaultDuration},
		{"colorLabel", &sr.ColorLabel, DefaultColorLabel},
		{"codeLabel", &sr.CodeLabel, DefaultCodeLabel},
	} {
		if *f.v == "" {
			*f.v = f.def
		}
		if !metricName.MatchString(*f.v) {
			return nil, providers.BadConfig("series.%s: %q is not a metric or label name", f.name, *f.v)
		}
	}
	if sr.ErrorCodes == "" {
		sr.ErrorCodes = DefaultErrorCodes
	}
	re, err := regexp.Compile("^(?:" + sr.ErrorCodes + ")$")
	if err != nil {
		return nil, providers.BadConfig("series.errorCodes: %q is not a regular expression: %v", sr.ErrorCodes, unwrapRegexp(err))
	}
	if len(s.Judge.Metrics) > 0 {
		return nil, providers.BadConfig("judge.metrics: list the app's metrics under metrics:, each with its numerator and denominator")
	}
	cfg, err := judgeConfig(s)
	if err != nil {
		return nil, err
	}
	return &Provider{s: s, cfg: cfg, errRe: re, where: u.Redacted(), client: &http.Client{}}, nil
}

// judgeConfig checks the app metrics and completes the judge's configuration
// with them, reporting every problem at once, each by its path in the
// provider's settings.
func judgeConfig(s Settings) (judge.Config, error) {
	var problems []string
	bad := func(format string, args ...any) { problems = append(problems, fmt.Sprintf(format, args...)) }
	cfg := s.Judge
	cfg.Metrics = make([]judge.MetricConfig, len(s.Metrics))
	for i, m := range s.Metrics {
		cfg.Metrics[i] = m.MetricConfig
		at := fmt.Sprintf("metrics[%d]", i)
		for _, f := range []struct{ name, v string }{{"numerator", m.Numerator}, {"denominator", m.Denominator}} {
			switch {
			case f.v == "":
				bad("%s.%s: is required (a counter's name on the page, or a histogram's or summary's _sum or _count)", at, f.name)
			case !metricName.MatchString(f.v):
				bad("%s.%s: %q is not a metric name", at, f.name, f.v)
			}
		}
		if m.Numerator != "" && m.Numerator == m.Denominator {
			bad("%s.denominator: %q is the numerator too", at, m.Denominator)
		}
		if m.VersionLabel != "" && !metricName.MatchString(m.VersionLabel) {
			bad("%s.versionLabel: %q is not a label name", at, m.VersionLabel)
		}
	}
	cfg = cfg.WithDefaults()
	if err := cfg.Validate(); err != nil {
		// The judge names the metrics by its own block; here they are the
		// provider's metrics list.
		problems = append(problems, strings.ReplaceAll(err.Error(), "judge.metrics[", "metrics["))
	}
	if len(problems) > 0 {
		return judge.Config{}, providers.BadConfig("%s", strings.Join(problems, "; "))
	}
	return cfg, nil
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

// Where names the page the provider reads, without a password.
func (p *Provider) Where() string { return "scrape " + p.where }

// Step is how often the page is read.
func (p *Provider) Step() time.Duration { return p.s.Step.D() }

// Judge is the judge's configuration, completed with its defaults; its
// Metrics are the settings' metrics, in order.
func (p *Provider) Judge() judge.Config {
	c := p.cfg
	c.Metrics = slices.Clone(c.Metrics)
	c.Latency.Quantiles = slices.Clone(c.Latency.Quantiles)
	return c
}

// Snapshot scrapes the page once, retrying a failed scrape twice 200ms apart,
// and returns every series the judge needs at the time of the scrape. A
// setting that cannot work (a secret that is not there, a metric of the wrong
// type) is a providers.ErrBadConfig and is not retried; a target that cannot
// be read is a plain error; a canceled ctx gives ctx's error.
func (p *Provider) Snapshot(ctx context.Context, r providers.Ref) (analysis.Snapshot, error) {
	for attempt := 0; ; attempt++ {
		page, err := p.scrape(ctx)
		if err == nil {
			series, err := p.read(page, r)
			if err != nil {
				return analysis.Snapshot{}, err
			}
			return analysis.Snapshot{At: page.at, Series: series}, nil
		}
		if ctx.Err() != nil {
			return analysis.Snapshot{}, ctx.Err()
		}
		if errors.Is(err, providers.ErrBadConfig) || attempt == scrapeRetries {
			return analysis.Snapshot{}, err
		}
		if err := sleep(ctx, retryPause); err != nil {
			return analysis.Snapshot{}, err
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
