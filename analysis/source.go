// Package analysis is the one analyzer: it runs the soak guard and the
// blue-versus-green comparison for every metrics source, feeding what the
// source reads to the judge step by step, keeping the evidence across worker
// restarts, and accounting for every interval the guard did not judge.
//
// Sources only read (Flagger's metrics providers are the model): the scrape,
// prometheus and cloudwatch providers each implement Source and one of the
// three ways of reading below, and nothing else. Counter resets, gaps, broken
// numbers and the verdict are handled here and in the judge, the same way for
// all of them.
package analysis

import (
	"context"
	"time"

	"github.com/cutoverhq/cutover/judge"
	"github.com/cutoverhq/cutover/providers"
)

// Source is an analysis provider that reads metrics. It also implements
// exactly one of Snapshotter, Ranger or Stepper.
type Source interface {
	// Type names the provider as release.yaml does.
	Type() string
	// Where names what it reads, for verdicts: "scrape http://127.0.0.1:8081/metrics".
	Where() string
	// Judge is the judge's configuration, from the provider's settings,
	// completed with its defaults; its Metrics name the app metrics the
	// source reads.
	Judge() judge.Config
	// Step is the resolution at which the source reads: a comparison judges
	// one step at a time.
	Step() time.Duration
}

// Snapshotter reads every counter's current value, all at one moment: a
// /metrics page scraped directly.
type Snapshotter interface {
	Snapshot(ctx context.Context, r providers.Ref) (Snapshot, error)
}

// Ranger reads every counter's value at each step from `from` to `to` (both
// included): a Prometheus range query of the raw counters. Counters are read
// raw rather than through increase() so that each step's count is whole
// requests, as the judge's tests assume, and not Prometheus's extrapolation.
type Ranger interface {
	Range(ctx context.Context, r providers.Ref, from, to time.Time, step time.Duration) ([]Snapshot, error)
}

// Stepper reads per-step increments directly: CloudWatch's sums per period.
// Steps end after `from` and at or before `to`, oldest first.
type Stepper interface {
	Steps(ctx context.Context, r providers.Ref, from, to time.Time, step time.Duration) ([]judge.Step, error)
}

// Snapshot is a reading of cumulative counters at one moment.
type Snapshot struct {
	At     time.Time
	Series []Series
}

// Series is one counter's value in a snapshot.
type Series struct {
	// ID identifies the counter across snapshots: its metric name and labels,
	// as people read them (resets are named by it).
	ID string
	// Color is the color the counter counts for.
	Color providers.Color
	// Field is what it counts.
	Field Field
	// Le is a latency bucket's upper bound in seconds, for FieldBucket
	// (+Inf for the last bucket). Buckets are cumulative, as in Prometheus.
	Le float64
	// Metric names the app metric, for FieldNum and FieldDen.
	Metric string
	// Value is the counter's value: it only grows, but for a reset.
	Value float64
}

// Field is what a counter counts.
type Field string

// Fields.
const (
	// FieldRequests counts requests; a series that counts failed requests
	// (a 5xx code) is also given as FieldErrors.
	FieldRequests Field = "requests"
	// FieldErrors counts failed requests.
	FieldErrors Field = "errors"
	// FieldBucket counts requests no slower than Le (a cumulative bucket).
	FieldBucket Field = "bucket"
	// FieldNum and FieldDen are an app metric's numerator and denominator:
	// events and trials of a proportion, sum and count of a mean.
	FieldNum Field = "num"
	FieldDen Field = "den"
)
