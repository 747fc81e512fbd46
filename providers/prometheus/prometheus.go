// Package prometheus is an analysis source that reads an app's counters from a
// Prometheus server, for apps whose metrics Prometheus already collects (many
// instances, service discovery, long retention) where scraping the router
// directly would not do.
//
// It reads raw counters: each selector's series, cumulative, at every step,
// with a range query of the selector itself. It never asks Prometheus for
// increase() or rate(): those extrapolate to the edges of their window, so a
// step would count fractions of requests, and the judge's exact tests assume
// whole ones. Nor does it sum() the series: a counter reset (an instance that
// restarted) shows only in the series it happened to, and the analysis
// package, which takes the differences between steps for every source alike,
// must see it there to account for it and to name it in the verdict. That is
// also why the provider judges nothing itself.
//
// Selectors are Go templates that see {{.App}}, {{.Color}} and {{.Version}},
// and each is read once per color. Blue's {{.Version}} is the release's
// previous version, so that an app whose own metrics carry a version label
// rather than a color can still be told apart.
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
	"strconv"
	"strings"
	"sync"
	"text/template"
	"time"

	"github.com/prometheus/client_golang/api"
	v1 "github.com/prometheus/client_golang/api/prometheus/v1"
	"github.com/prometheus/common/model"

	"github.com/cutoverhq/cutover/analysis"
	"github.com/cutoverhq/cutover/judge"
	"github.com/cutoverhq/cutover/providers"
	"github.com/cutoverhq/cutover/spec"
)

// Type is the provider's name in release.yaml.
const Type = "prometheus"

// Defaults of the settings.
const (
	DefaultStep    = 2 * time.Second
	DefaultTimeout = 5 * time.Second
	DefaultRetries = 2

	DefaultRequests = `cutover_router_requests_total{color="{{.Color}}"}`
	DefaultErrors   = `cutover_router_requests_total{color="{{.Color}}",code=~"5.."}`
	DefaultLatency  = `cutover_router_request_duration_seconds_bucket{color="{{.Color}}"}`
)

// retryBackoff is the pause before the first retry of a query; it doubles.
var retryBackoff = 250 * time.Millisecond

// maxConcurrent bounds the queries one Range has in flight: a release with
// many app metrics should not hit Prometheus with dozens at once.
const maxConcurrent = 8

// maxPoints is how many steps one range query asks for at most; Prometheus
// refuses more than 11,000, so a longer range is read in pieces.
const maxPoints = 10_000

// Settings are the provider's release.yaml settings.
type Settings struct {
	// Address is Prometheus's base URL, like http://127.0.0.1:9090 (required).
	Address string `json:"address"`
	// Step is the resolution of the snapshots (default 2s, 1s..10m). It
	// should be at least Prometheus's scrape interval: a finer step only
	// repeats the same samples.
	Step spec.Duration `json:"step,omitempty"`
	// Timeout bounds one query (default 5s).
	Timeout spec.Duration `json:"timeout,omitempty"`
	// Retries is how many times a failed query is tried again, after a short
	// backoff (default 2; 0 turns retries off).
	Retries *int `json:"retries,omitempty"`
	// Series are the selectors of the router's (or the app's) request
	// counters.
	Series Selectors `json:"series,omitzero"`
	// Metrics are the app's own metrics, judged like the error rate.
	Metrics []Metric `json:"metrics,omitempty"`
	// Judge is the judge's configuration; its metrics are listed under
	// Metrics instead, with their selectors.
	Judge judge.Config `json:"judge,omitzero"`
}

// Selectors are PromQL series selectors of counters, as Go templates. A
// selector left out takes its default; an empty one ("") reads nothing, and
// the judge's metric that needs it must then be off.
type Selectors struct {
	// Requests counts requests (default DefaultRequests).
	Requests *string `json:"requests,omitempty"`
	// Errors counts failed requests (default DefaultErrors).
	Errors *string `json:"errors,omitempty"`
	// Latency is a latency histogram's cumulative buckets, with their le
	// label, in seconds (default DefaultLatency).
	Latency *string `json:"latency,omitempty"`
}

// Metric is one of the app's own metrics: how the judge treats it, and the
// counters it is read from.
type Metric struct {
	judge.MetricConfig
	// Numerator selects the events of a proportion (checkouts), or the sum
	// of a mean (shop_order_value_sum).
	Numerator string `json:"numerator"`
	// Denominator selects the trials of a proportion (sessions), or the count
	// of a mean (shop_order_value_count).
	Denominator string `json:"denominator"`
}

// QueryData is what a selector template sees.
type QueryData struct {
	App   string
	Color string
	// Version is the version the color runs: the release's version for
	// green, its previous version for blue.
	Version string
}

// Provider is the Prometheus analysis source.
type Provider struct {
	s        Settings
	cfg      judge.Config
	retries  int
	readings []reading
	api      v1.API
	where    string // the address without a password, for verdicts
}

// reading is one selector, read once per color.
type reading struct {
	name   string // its path in the settings: series.requests, metrics[0].numerator
	field  analysis.Field
	metric string // the app metric's name, for num and den
	tmpl   *template.Template
}

var (
	_ analysis.Source         = (*Provider)(nil)
	_ analysis.Ranger         = (*Provider)(nil)
	_ providers.MetricsSource = (*Provider)(nil)
)

// New checks the settings, parses the selector templates and returns a
// provider. It does no I/O.
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
		return nil, providers.BadConfig("step: %s is outside 1s..10m (and should be at least Prometheus's scrape interval)", s.Step)
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

	if len(s.Judge.Metrics) > 0 {
		return nil, providers.BadConfig("judge.metrics: list the app's metrics under metrics: instead, each with its numerator and denominator selectors")
	}
	cfg := s.Judge
	cfg.Metrics = nil
	for _, m := range s.Metrics {
		cfg.Metrics = append(cfg.Metrics, m.MetricConfig)
	}
	cfg = cfg.WithDefaults()
	if err := cfg.Validate(); err != nil {
		// The metrics are written at the top level, not under judge:.
		return nil, providers.BadConfig("%s", strings.ReplaceAll(err.Error(), "judge.metrics[", "metrics["))
	}

	var rs []reading
	sel := &s.Series
	for _, f := range []struct {
		name  string
		text  **string
		def   string
		field analysis.Field
		judge string // the judge's metric that needs the field
		on    bool   // whether it is on
		read  bool   // whether the field is read: the judge uses it
	}{
		// Requests are read even without the error rate: the verdict reports the traffic.
		{"requests", &sel.Requests, DefaultRequests, analysis.FieldRequests, "errorRate", !cfg.ErrorRate.Off, true},
		{"errors", &sel.Errors, DefaultErrors, analysis.FieldErrors, "errorRate", !cfg.ErrorRate.Off, !cfg.ErrorRate.Off},
		{"latency", &sel.Latency, DefaultLatency, analysis.FieldBucket, "latency", !cfg.Latency.Off, !cfg.Latency.Off},
	} {
		if *f.text == nil {
			def := f.def
			*f.text = &def
		}
		text := strings.TrimSpace(**f.text)
		if text == "" {
			if f.on {
				return nil, providers.BadConfig("series.%s is empty but judge.%s is on; set judge: {%s: {off: true}}", f.name, f.judge, f.judge)
			}
			continue
		}
		name := "series." + f.name
		t, err := parseSelector(name, text)
		if err != nil {
			return nil, err
		}
		if f.read {
			rs = append(rs, reading{name: name, field: f.field, tmpl: t})
		}
	}
	for i, m := range s.Metrics {
		for _, part := range []struct {
			key   string
			text  string
			field analysis.Field
		}{
			{"numerator", m.Numerator, analysis.FieldNum},
			{"denominator", m.Denominator, analysis.FieldDen},
		} {
			name := fmt.Sprintf("metrics[%d].%s", i, part.key)
			text := strings.TrimSpace(part.text)
			if text == "" {
				return nil, providers.BadConfig("%s: is required (a counter selector, like shop_checkouts_total{version=\"{{.Version}}\"})", name)
			}
			t, err := parseSelector(name, text)
			if err != nil {
				return nil, err
			}
			rs = append(rs, reading{name: name, field: part.field, metric: m.Name, tmpl: t})
		}
	}

	c, err := api.NewClient(api.Config{Address: s.Address, Client: &http.Client{}})
	if err != nil {
		return nil, providers.BadConfig("address: %v", err)
	}
	return &Provider{s: s, cfg: cfg, retries: retries, readings: rs, api: v1.NewAPI(c), where: u.Redacted()}, nil
}

// parseSelector parses a selector template and checks, with example data,
// that it runs and gives a plain series selector.
func parseSelector(name, text string) (*template.Template, error) {
	t, err := template.New(name).Option("missingkey=error").Parse(text)
	var b bytes.Buffer
	if err == nil {
		// A field that does not exist shows only when the template runs.
		err = t.Execute(&b, QueryData{App: "app", Color: "green", Version: "v2"})
	}
	if err != nil {
		return nil, providers.BadConfig("%s: %v", name, oneLine(err.Error()))
	}
	if why := notRaw(b.String()); why != "" {
		return nil, providers.BadConfig("%s: %s %s; give the raw counter's selector, like "+
			`http_requests_total{version="{{.Version}}"}: Cutover reads every series' cumulative value at each step and `+
			"takes the differences itself, so that a step counts whole requests (increase() and rate() extrapolate) "+
			"and a counter reset is seen in the series it happened to (sum() hides it)", name, text, why)
	}
	return t, nil
}

// notRaw says why a PromQL expression is not a plain series selector
// (name{label="value",...}), or returns "" when it is one.
func notRaw(q string) string {
	// A top-level scan, skipping strings and the matchers between braces,
	// finds functions, aggregations, ranges and operators.
	var (
		shape    strings.Builder // what is outside braces and strings: n for a name, {} for matchers
		prev     string          // the previous name outside braces
		fn       string          // the first function or aggregation applied
		hasRange bool
	)
	for i := 0; i < len(q); {
		c := q[i]
		switch {
		case c == '"' || c == '\'' || c == '`':
			i = skipString(q, i)
			shape.WriteByte('s')
		case c == '{':
			j := i + 1
			for j < len(q) && q[j] != '}' {
				if q[j] == '"' || q[j] == '\'' || q[j] == '`' {
					j = skipString(q, j)
					continue
				}
				j++
			}
			i = j + 1
			shape.WriteString("{}")
		case isNameStart(c):
			j := i
			for j < len(q) && isNameChar(q[j]) {
				j++
			}
			word := q[i:j]
			k := j
			for k < len(q) && (q[k] == ' ' || q[k] == '\t' || q[k] == '\n') {
				k++
			}
			if fn == "" {
				switch {
				case (word == "by" || word == "without") && prev != "":
					fn = prev
				case k < len(q) && q[k] == '(' && !slices.Contains([]string{"by", "without", "on", "ignoring", "group_left", "group_right", "bool"}, word):
					fn = word
				}
			}
			prev = word
			i = j
			shape.WriteByte('n')
		case c == ' ' || c == '\t' || c == '\n' || c == '\r':
			i++
		default:
			if c == '[' {
				hasRange = true
			}
			shape.WriteByte(c)
			i++
		}
	}
	switch sh := shape.String(); {
	case sh == "n" || sh == "{}" || sh == "n{}":
		return ""
	case fn != "":
		return "applies " + fn + "() to the counter"
	case hasRange:
		return "is a range vector, with [...]"
	case sh == "":
		return "is empty once its template runs"
	}
	return "is not a plain series selector (name{label=\"value\",...})"
}

// skipString returns the index just past the PromQL string that starts at i.
func skipString(q string, i int) int {
	quote := q[i]
	j := i + 1
	for j < len(q) && q[j] != quote {
		if q[j] == '\\' && quote != '`' {
			j++
		}
		j++
	}
	return j + 1
}

func isNameStart(c byte) bool {
	return c == '_' || c == ':' || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')
}

func isNameChar(c byte) bool { return isNameStart(c) || (c >= '0' && c <= '9') }

func oneLine(s string) string { return strings.Join(strings.Fields(s), " ") }

// NewBuilder returns the registry entry for the Prometheus provider.
func NewBuilder() providers.Builder {
	return providers.Builder{Type: Type, New: func(s map[string]any) (any, error) { return New(s) }}
}

// Type names the provider.
func (p *Provider) Type() string { return Type }

// Where names the Prometheus server, without a password, for verdicts.
func (p *Provider) Where() string { return "prometheus at " + p.where }

// Judge is the judge's configuration, with the defaults filled in; its
// Metrics are the entries of metrics:, in order.
func (p *Provider) Judge() judge.Config {
	c := p.cfg
	c.Metrics = slices.Clone(c.Metrics)
	c.Latency.Quantiles = slices.Clone(c.Latency.Quantiles)
	return c
}

// Step is the step setting.
func (p *Provider) Step() time.Duration { return p.s.Step.D() }

// Range reads every selector's series for both colors at each step from `from`
// to `to`, both included, and returns one snapshot per timestamp that any
// series has a value at, oldest first. A timestamp a series has no value at
// (not scraped yet, or gone for longer than Prometheus's lookback) lacks it.
//
// A series is read as it is: Value is the counter's cumulative value, ID its
// name and labels. Within a snapshot an ID is unique per color, field and app
// metric; the same counter can appear under two fields when two selectors
// match it (a 5xx counter is both requests and errors by default). A selector
// that matches the same series for blue and for green is refused: the colors
// would be the same data.
//
// Errors: a configuration error (a query Prometheus refused, a latency series
// without an le label) is providers.ErrBadConfig and comes first; other errors
// (Prometheus unreachable, a 5xx after the retries) are worth retrying later;
// ctx's error when ctx ends.
func (p *Provider) Range(ctx context.Context, r providers.Ref, from, to time.Time, step time.Duration) ([]analysis.Snapshot, error) {
	if step < time.Millisecond {
		return nil, fmt.Errorf("range step %s: must be at least 1ms", step)
	}
	if to.Before(from) {
		return nil, fmt.Errorf("range %s..%s ends before it starts", from.Format(time.RFC3339Nano), to.Format(time.RFC3339Nano))
	}
	type job struct {
		rd     *reading
		color  providers.Color
		promql string
		rng    v1.Range
	}
	var jobs []job
	for i := range p.readings {
		rd := &p.readings[i]
		for _, c := range []providers.Color{providers.Blue, providers.Green} {
			data := QueryData{App: r.App, Color: string(c), Version: r.Version}
			if c == providers.Blue {
				data.Version = r.PreviousVersion
			}
			var b bytes.Buffer
			if err := rd.tmpl.Execute(&b, data); err != nil {
				return nil, providers.BadConfig("%s: %v", rd.name, oneLine(err.Error()))
			}
			for _, rng := range pieces(from, to, step) {
				jobs = append(jobs, job{rd: rd, color: c, promql: b.String(), rng: rng})
			}
		}
	}

	// A configuration error settles the answer: the other queries stop.
	qctx, cancel := context.WithCancel(ctx)
	defer cancel()
	results := make([]model.Matrix, len(jobs))
	errs := make([]error, len(jobs))
	sem := make(chan struct{}, maxConcurrent)
	var wg sync.WaitGroup
	for i, j := range jobs {
		wg.Go(func() {
			results[i], errs[i] = p.query(qctx, sem, j.rd.name, j.promql, j.color, j.rng)
			if errors.Is(errs[i], providers.ErrBadConfig) {
				cancel()
			}
		})
	}
	wg.Wait()
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if err := firstErr(errs...); err != nil {
		return nil, err
	}

	byTime := map[model.Time]*analysis.Snapshot{}
	colorOf := map[string]providers.Color{} // by reading and series ID
	for i, j := range jobs {
		type named struct {
			id string
			ss *model.SampleStream
		}
		var ms []named
		for _, ss := range results[i] {
			ms = append(ms, named{seriesID(ss.Metric), ss})
		}
		slices.SortFunc(ms, func(a, b named) int { return strings.Compare(a.id, b.id) })
		for _, m := range ms {
			key := j.rd.name + "\x00" + m.id
			if c, ok := colorOf[key]; ok && c != j.color {
				return nil, providers.BadConfig("%s: blue and green both match %s; the selector must tell the colors apart, with {{.Color}} or {{.Version}} (blue's version is %q, green's %q)",
					j.rd.name, m.id, r.PreviousVersion, r.Version)
			}
			colorOf[key] = j.color
			if len(m.ss.Histograms) > 0 {
				return nil, providers.BadConfig("%s: %s is a native histogram; give a counter, or a classic histogram's _bucket series", j.rd.name, m.id)
			}
			s := analysis.Series{ID: m.id, Color: j.color, Field: j.rd.field, Metric: j.rd.metric}
			if j.rd.field == analysis.FieldBucket {
				le, err := strconv.ParseFloat(string(m.ss.Metric[model.BucketLabel]), 64)
				if err != nil || math.IsNaN(le) {
					return nil, providers.BadConfig("%s: %s returned %s, which has no bucket bound in an le label; give a histogram's _bucket series, like %s",
						j.rd.name, j.promql, m.id, DefaultLatency)
				}
				s.Le = le
			}
			for _, sp := range m.ss.Values {
				snap := byTime[sp.Timestamp]
				if snap == nil {
					snap = &analysis.Snapshot{At: sp.Timestamp.Time()}
					byTime[sp.Timestamp] = snap
				}
				s.Value = float64(sp.Value)
				snap.Series = append(snap.Series, s)
			}
		}
	}
	out := make([]analysis.Snapshot, 0, len(byTime))
	for _, s := range byTime {
		out = append(out, *s)
	}
	slices.SortFunc(out, func(a, b analysis.Snapshot) int { return a.At.Compare(b.At) })
	return out, nil
}

// pieces splits [from, to] into ranges of at most maxPoints steps each, on
// the same grid of steps from `from`.
func pieces(from, to time.Time, step time.Duration) []v1.Range {
	var rs []v1.Range
	for start := from; !start.After(to); start = start.Add(maxPoints * step) {
		end := start.Add((maxPoints - 1) * step)
		if end.After(to) {
			end = to
		}
		rs = append(rs, v1.Range{Start: start, End: end, Step: step})
	}
	return rs
}

// seriesID renders a series' labels as Prometheus shows a series: its name,
// then its other labels sorted by name, name{a="b",c="d"}.
func seriesID(m model.Metric) string {
	names := make([]string, 0, len(m))
	for k := range m {
		if k != model.MetricNameLabel {
			names = append(names, string(k))
		}
	}
	slices.Sort(names)
	var b strings.Builder
	b.WriteString(string(m[model.MetricNameLabel]))
	if len(names) == 0 && b.Len() > 0 {
		return b.String()
	}
	b.WriteByte('{')
	for i, k := range names {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(k)
		b.WriteString(`="`)
		b.WriteString(labelEscaper.Replace(string(m[model.LabelName(k)])))
		b.WriteByte('"')
	}
	b.WriteByte('}')
	return b.String()
}

// labelEscaper escapes a label value as Prometheus's text format does.
var labelEscaper = strings.NewReplacer(`\`, `\\`, `"`, `\"`, "\n", `\n`)

// query runs one range query, with retries, and returns its series. Each
// attempt takes a slot of sem while it is in flight; a query backing off
// leaves its slot to the others.
func (p *Provider) query(ctx context.Context, sem chan struct{}, name, promql string, c providers.Color, rng v1.Range) (model.Matrix, error) {
	var val model.Value
	var err error
	backoff := retryBackoff
	for attempt := 0; ; attempt++ {
		select {
		case sem <- struct{}{}:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
		qctx, cancel := context.WithTimeout(ctx, p.s.Timeout.D())
		val, _, _, err = p.api.QueryRange(qctx, promql, rng, v1.WithTimeout(p.s.Timeout.D()))
		cancel()
		<-sem
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
			return nil, providers.BadConfig("%s: Prometheus refused %s: %s", name, promql, ae.Msg)
		}
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err // the verdict names the address already
		}
		if errors.Is(err, context.DeadlineExceeded) {
			err = fmt.Errorf("no answer within %s", p.s.Timeout)
		}
		return nil, fmt.Errorf("%s for %s: %w", name, c, err)
	}
	m, ok := val.(model.Matrix)
	if !ok {
		return nil, fmt.Errorf("%s for %s: got a %s, want a matrix", name, c, val.Type())
	}
	return m, nil
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

// firstErr is the first error of several, keeping the reason to one line: the
// queries of one source mostly fail for the same reason. A configuration error
// comes first, since it is what must be fixed.
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
