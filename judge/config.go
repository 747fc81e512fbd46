package judge

import (
	"fmt"
	"math"
	"strings"

	"github.com/cutoverhq/cutover/providers"
)

// Defaults. They are strict enough to stop a release that clearly hurts users
// and loose enough that the noise of a healthy deploy does not stop it.
const (
	defaultAlpha                = 0.05
	defaultErrorRateMinRequests = 100
	defaultMaxIncrease          = 0.005
	defaultLatencyMinSamples    = 5
	defaultMaxSlowdown          = 0.10
	defaultGuardMaxErrorRate    = 0.01
	defaultGuardMinRequests     = 20
	// minLatencySamples is the floor for latency.minSamples: with two samples
	// per color the smallest one-sided p a rank test can give is 1/6, so at
	// any usual alpha the comparison could never fail green, a check that
	// only ever passes.
	minLatencySamples = 3
)

// WithDefaults fills the fields release.yaml left out, so that a provider that
// only names its query still gets a judge with sensible limits. It never
// changes a field that was set: a negative count stays negative for Validate
// to report rather than being silently replaced.
//
// Defaults: alpha 0.05; errorRate minRequests 100, maxIncrease 0.005,
// critical; latency minSamples 5, maxSlowdown 0.10, critical; guard
// maxErrorRate 0.01, maxP99 0 (not checked), minRequests 20, critical.
func (c Config) WithDefaults() Config {
	if c.Alpha == 0 {
		c.Alpha = defaultAlpha
	}
	if c.ErrorRate.MinRequests == 0 {
		c.ErrorRate.MinRequests = defaultErrorRateMinRequests
	}
	c.ErrorRate.MaxIncrease = orFloat(c.ErrorRate.MaxIncrease, defaultMaxIncrease)
	c.ErrorRate.Critical = orBool(c.ErrorRate.Critical, true)
	if c.Latency.MinSamples == 0 {
		c.Latency.MinSamples = defaultLatencyMinSamples
	}
	c.Latency.MaxSlowdown = orFloat(c.Latency.MaxSlowdown, defaultMaxSlowdown)
	c.Latency.Critical = orBool(c.Latency.Critical, true)
	c.Guard.MaxErrorRate = orFloat(c.Guard.MaxErrorRate, defaultGuardMaxErrorRate)
	if c.Guard.MinRequests == 0 {
		c.Guard.MinRequests = defaultGuardMinRequests
	}
	c.Guard.Critical = orBool(c.Guard.Critical, true)
	return c
}

// Validate reports settings that cannot work, when the release is submitted
// rather than when green is already taking traffic. It checks the config as
// WithDefaults completes it, so a field left out is never an error. Each
// problem names the field by its release.yaml path (judge.errorRate.maxIncrease)
// so that the person can find the line to fix; all problems are reported at
// once, on one line.
func (c Config) Validate() error {
	d := c.WithDefaults()
	var problems []string
	bad := func(format string, args ...any) {
		problems = append(problems, fmt.Sprintf(format, args...))
	}
	if !(d.Alpha > 0 && d.Alpha <= 0.5) {
		bad("judge.alpha must be between 0 and 0.5, got %g", d.Alpha)
	}
	if d.ErrorRate.MinRequests < 0 {
		bad("judge.errorRate.minRequests must not be negative, got %d", d.ErrorRate.MinRequests)
	}
	if v := *d.ErrorRate.MaxIncrease; !(v >= 0 && v <= 1) {
		bad("judge.errorRate.maxIncrease must be between 0 and 1, got %g", v)
	}
	if d.Latency.MinSamples < minLatencySamples {
		bad("judge.latency.minSamples must be at least %d, got %d", minLatencySamples, d.Latency.MinSamples)
	}
	if v := *d.Latency.MaxSlowdown; !(v >= 0) || math.IsInf(v, 1) {
		bad("judge.latency.maxSlowdown must be 0 or more (0.10 = 10%% slower), got %g", v)
	}
	if v := *d.Guard.MaxErrorRate; !(v > 0 && v <= 1) {
		bad("judge.guard.maxErrorRate must be above 0 and at most 1, got %g", v)
	}
	if d.Guard.MaxP99 < 0 {
		bad("judge.guard.maxP99 must not be negative, got %s", d.Guard.MaxP99)
	}
	if d.Guard.MinRequests < 0 {
		bad("judge.guard.minRequests must not be negative, got %d", d.Guard.MinRequests)
	}
	if len(problems) == 0 {
		return nil
	}
	return providers.BadConfig("%s", strings.Join(problems, "; "))
}

func orFloat(p *float64, def float64) *float64 {
	if p != nil {
		return p
	}
	return &def
}

func orBool(p *bool, def bool) *bool {
	if p != nil {
		return p
	}
	return &def
}
