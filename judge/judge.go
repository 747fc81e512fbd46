// Package judge decides whether green is good enough from per-step traffic
// numbers: an error-rate comparison (two-proportion z-test), a latency comparison
// (Mann-Whitney U with an allowed slowdown) and absolute guards checked during
// soaks. It does no I/O: the analysis providers (providers/prometheus,
// providers/scrape) read the numbers and hand them here, so every source is
// judged by the same rules.
//
// The rule that matters most: missing data is never a pass. NaN, no data, too few
// requests, one color without traffic, a source that cannot be read: each makes
// a metric Inconclusive, and the verdict carries the numbers that led there.
package judge

import (
	"time"

	"github.com/cutoverhq/cutover/spec"
)

// Point is one step of one color's traffic, as a source read it. NaN in a field
// means the source had no value for it in that step.
type Point struct {
	// Time is the end of the step.
	Time time.Time
	// Requests is the number of requests the color served in the step.
	Requests float64
	// Errors is how many of them failed (5xx by default).
	Errors float64
	// Latency is the step's latency sample in seconds for the comparison (the
	// mean by default).
	Latency float64
	// P99 is the step's 99th percentile latency in seconds, for the guard.
	P99 float64
}

// Config is the `judge:` block of an analysis provider's settings. Zero fields
// take the defaults that WithDefaults documents.
type Config struct {
	// Alpha is the significance level of both comparisons (default 0.05).
	Alpha float64 `json:"alpha,omitempty"`
	// ErrorRate configures the blue-vs-green error-rate comparison.
	ErrorRate ErrorRateConfig `json:"errorRate,omitempty"`
	// Latency configures the blue-vs-green latency comparison.
	Latency LatencyConfig `json:"latency,omitempty"`
	// Guard configures the absolute limits checked during soaks.
	Guard GuardConfig `json:"guard,omitempty"`
}

// ErrorRateConfig configures the error-rate comparison.
type ErrorRateConfig struct {
	// MinRequests is how many requests each color must have served in the
	// window before the comparison decides (default 100).
	MinRequests int `json:"minRequests,omitempty"`
	// MaxIncrease is how far green's error rate may exceed blue's, as a
	// fraction (0.005 = half a percentage point), before a significant
	// difference fails green (default 0.005).
	MaxIncrease *float64 `json:"maxIncrease,omitempty"`
	// Critical makes a Fail end the release at once (default true); a
	// non-critical Fail asks a person.
	Critical *bool `json:"critical,omitempty"`
}

// LatencyConfig configures the latency comparison.
type LatencyConfig struct {
	// MinSamples is how many per-step latency samples each color needs before
	// the comparison decides (default 5).
	MinSamples int `json:"minSamples,omitempty"`
	// MaxSlowdown is how much slower green's median step latency may be than
	// blue's, as a fraction (0.10 = 10% slower), before a significant
	// difference fails green (default 0.10).
	MaxSlowdown *float64 `json:"maxSlowdown,omitempty"`
	// Critical makes a Fail end the release at once (default true).
	Critical *bool `json:"critical,omitempty"`
}

// GuardConfig configures the absolute limits on green checked during soaks.
type GuardConfig struct {
	// MaxErrorRate is the highest error rate green may show, as a fraction
	// (default 0.01; 1 turns the check off).
	MaxErrorRate *float64 `json:"maxErrorRate,omitempty"`
	// MaxP99 is the highest 99th percentile latency green may show (default 0:
	// not checked).
	MaxP99 spec.Duration `json:"maxP99,omitempty"`
	// MinRequests is how many of green's requests the guard needs before it
	// decides: it judges the most recent steps that together hold at least
	// this many (default 20).
	MinRequests int `json:"minRequests,omitempty"`
	// Critical makes a breach end the release at once (default true).
	Critical *bool `json:"critical,omitempty"`
}
