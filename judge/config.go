package judge

import (
	"fmt"
	"math"
	"regexp"
	"strings"

	"github.com/cutoverhq/cutover/spec"
)

// Config is the `judge:` block of an analysis provider's settings. Zero fields
// take the defaults that WithDefaults documents.
type Config struct {
	// Alpha bounds the probability that a soak or a comparison fails a green
	// as good as blue, all metrics together, however often it looks
	// (default 0.01). Each metric's failure test gets an equal share.
	Alpha float64 `json:"alpha,omitempty"`
	// Power is the probability with which a change of the size a verdict
	// calls "detectable" would have been caught (default 0.8).
	Power float64 `json:"power,omitempty"`
	// ErrorRate configures the error-rate comparison.
	ErrorRate ErrorRateConfig `json:"errorRate,omitzero"`
	// Latency configures the latency comparison.
	Latency LatencyConfig `json:"latency,omitzero"`
	// Metrics are the app's own metrics: business and experiment metrics,
	// judged by the same rules. The source says where each one is read.
	Metrics []MetricConfig `json:"metrics,omitempty"`
}

// ErrorRateConfig configures the error-rate comparison.
type ErrorRateConfig struct {
	// Off turns the error-rate metric off (a source without error counts).
	Off bool `json:"off,omitempty"`
	// MaxIncrease is the allowed margin: green passes only once the data show
	// its error rate is at most this much above blue's, as a fraction
	// (default 0.004, four tenths of a percentage point: strictly less than the smallest regression worth stopping, +0.5 points).
	MaxIncrease *float64 `json:"maxIncrease,omitempty"`
	// Ceiling is an optional absolute limit on green's error rate, as a
	// fraction: green fails once its rate is above it with 1-alpha
	// confidence. When blue has no traffic, the ceiling is all that is
	// judged. 0 (the default): no ceiling.
	Ceiling float64 `json:"ceiling,omitempty"`
	// Critical makes a Fail end the release at once (default true); a
	// non-critical Fail asks a person.
	Critical *bool `json:"critical,omitempty"`
}

// LatencyConfig configures the latency comparison.
type LatencyConfig struct {
	// Off turns latency off (a source without latency histograms).
	Off bool `json:"off,omitempty"`
	// Quantiles are compared between the colors, each with its own allowed
	// slowdown (default: p50 +20%, p95 +30%, p99 +50%).
	Quantiles []QuantileConfig `json:"quantiles,omitempty"`
	// MaxP99 is an optional absolute ceiling on green's p99: green fails once
	// more than 1% of its requests are slower than this, with 1-alpha
	// confidence. 0 (the default): no ceiling.
	MaxP99 spec.Duration `json:"maxP99,omitempty"`
	// Critical makes a Fail end the release at once (default true).
	Critical *bool `json:"critical,omitempty"`
}

// QuantileConfig is one compared quantile.
type QuantileConfig struct {
	// Quantile is between 0 and 1 (0.99 is p99).
	Quantile float64 `json:"quantile"`
	// MaxSlowdown is how much slower green's quantile may be than blue's, as
	// a fraction (0.2 = 20% slower).
	MaxSlowdown float64 `json:"maxSlowdown"`
}

// Metric kinds.
const (
	KindProportion = "proportion" // events per trial: checkouts per session
	KindMean       = "mean"       // sum per count: revenue per order
)

// MetricConfig is one of the app's own metrics.
type MetricConfig struct {
	// Name is how verdicts name it, and how the source finds its queries.
	Name string `json:"name"`
	// Kind is proportion or mean.
	Kind string `json:"kind"`
	// Better is higher or lower: which way a change is good.
	Better string `json:"better"`
	// Margin is the allowed change for the worse, relative to blue's value
	// (0.02 = 2% of blue's value).
	Margin float64 `json:"margin"`
	// Critical makes a Fail end the release at once (default false: a
	// person decides).
	Critical *bool `json:"critical,omitempty"`
}

// Defaults.
const (
	defaultAlpha       = 0.01
	defaultPower       = 0.8
	defaultMaxIncrease = 0.004
)

// DefaultQuantiles are the latency quantiles compared when none are given:
// the median and the tail, each with an allowed slowdown wide enough for the
// noise of a healthy deploy.
func DefaultQuantiles() []QuantileConfig {
	return []QuantileConfig{{0.5, 0.2}, {0.95, 0.3}, {0.99, 0.5}}
}

// WithDefaults fills what release.yaml left out. It never changes a field that
// was set: a bad value stays for Validate to report.
func (c Config) WithDefaults() Config {
	if c.Alpha == 0 {
		c.Alpha = defaultAlpha
	}
	if c.Power == 0 {
		c.Power = defaultPower
	}
	if c.ErrorRate.MaxIncrease == nil {
		v := defaultMaxIncrease
		c.ErrorRate.MaxIncrease = &v
	}
	c.ErrorRate.Critical = orBool(c.ErrorRate.Critical, true)
	if c.Latency.Quantiles == nil {
		c.Latency.Quantiles = DefaultQuantiles()
	}
	c.Latency.Critical = orBool(c.Latency.Critical, true)
	ms := make([]MetricConfig, len(c.Metrics))
	for i, m := range c.Metrics {
		m.Critical = orBool(m.Critical, false)
		ms[i] = m
	}
	c.Metrics = ms
	return c
}

var metricNameRe = regexp.MustCompile(`^[a-z][a-z0-9 _-]{0,39}$`)

// Validate reports settings that cannot work, each by its release.yaml path,
// all at once on one line.
func (c Config) Validate() error {
	d := c.WithDefaults()
	var problems []string
	bad := func(format string, args ...any) { problems = append(problems, fmt.Sprintf(format, args...)) }
	if !(d.Alpha > 0 && d.Alpha <= 0.2) {
		bad("judge.alpha must be above 0 and at most 0.2, got %g", d.Alpha)
	}
	if !(d.Power >= 0.5 && d.Power < 1) {
		bad("judge.power must be at least 0.5 and below 1, got %g", d.Power)
	}
	if v := *d.ErrorRate.MaxIncrease; !(v > 0 && v < 1) {
		bad("judge.errorRate.maxIncrease must be above 0 and below 1 (0.004 = four tenths of a point), got %g", v)
	}
	if v := d.ErrorRate.Ceiling; !(v >= 0 && v < 1) {
		bad("judge.errorRate.ceiling must be 0 (none) or a fraction below 1 (0.05 = 5%%), got %g", v)
	}
	if !d.Latency.Off && len(d.Latency.Quantiles) == 0 {
		bad("judge.latency.quantiles is empty; leave it out for the defaults, or write latency: {off: true}")
	}
	seen := map[float64]bool{}
	for i, q := range d.Latency.Quantiles {
		if !(q.Quantile > 0 && q.Quantile < 1) {
			bad("judge.latency.quantiles[%d].quantile must be between 0 and 1 (0.99 is p99), got %g", i, q.Quantile)
		} else if seen[q.Quantile] {
			bad("judge.latency.quantiles[%d].quantile %g is listed twice", i, q.Quantile)
		}
		seen[q.Quantile] = true
		if !(q.MaxSlowdown > 0) || math.IsInf(q.MaxSlowdown, 1) {
			bad("judge.latency.quantiles[%d].maxSlowdown must be above 0 (0.2 = 20%% slower), got %g", i, q.MaxSlowdown)
		}
	}
	if d.Latency.MaxP99 < 0 {
		bad("judge.latency.maxP99 must not be negative, got %s", d.Latency.MaxP99)
	}
	names := map[string]bool{metricErrorRate: true, metricLatencyCeiling: true, metricErrorCeiling: true}
	for _, q := range d.Latency.Quantiles {
		names[quantileName(q.Quantile)] = true
	}
	for i, m := range d.Metrics {
		at := fmt.Sprintf("judge.metrics[%d]", i)
		switch {
		case !metricNameRe.MatchString(m.Name):
			bad("%s.name %q must be 1-40 lower-case letters, digits, spaces, _ or -, starting with a letter", at, m.Name)
		case names[m.Name]:
			bad("%s.name %q is taken", at, m.Name)
		}
		names[m.Name] = true
		if m.Kind != KindProportion && m.Kind != KindMean {
			bad("%s.kind must be proportion or mean, got %q", at, m.Kind)
		}
		if m.Better != "higher" && m.Better != "lower" {
			bad("%s.better must be higher or lower, got %q", at, m.Better)
		}
		if !(m.Margin > 0 && m.Margin < 1) {
			bad("%s.margin must be above 0 and below 1 (0.02 = 2%% of blue's value), got %g", at, m.Margin)
		}
	}
	if d.ErrorRate.Off && d.Latency.Off && len(d.Metrics) == 0 {
		bad("judge: every metric is off; nothing would be judged")
	}
	if len(problems) == 0 {
		return nil
	}
	return fmt.Errorf("%s", strings.Join(problems, "; "))
}

func orBool(p *bool, def bool) *bool {
	if p != nil {
		return p
	}
	return &def
}
