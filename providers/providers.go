// Package providers holds the small interfaces that the release's activities call,
// the types they exchange, and the registry that builds a provider from the
// spec's type and settings. Each provider lives in its own package below this one
// (Argo Rollouts' trafficrouting layout) and never imports the Temporal SDK: the
// activities package is the only place that knows about heartbeats and retries.
package providers

import (
	"context"
	"encoding/json"
	"time"

	"github.com/cutoverhq/cutover/verdict"
)

// Color is one of the two pools of a blue-green release.
type Color string

// The two colors: blue is live, green is the new version.
const (
	Blue  Color = "blue"
	Green Color = "green"
)

// Ref names the release a provider acts for.
type Ref struct {
	App             string `json:"app"`
	Version         string `json:"version"`
	PreviousVersion string `json:"previousVersion,omitempty"`
}

// Pool describes a color's running instances.
type Pool struct {
	Color     Color    `json:"color"`
	Version   string   `json:"version"`
	Instances []string `json:"instances,omitempty"`
}

// Environment starts and stops an app's pools.
type Environment interface {
	// Type names the provider as release.yaml does.
	Type() string
	// Provision starts the release's version as the green pool and returns once it is ready.
	Provision(ctx context.Context, r Ref) (Pool, error)
	// Validate checks green's health and runs the smoke paths against it, without user traffic.
	Validate(ctx context.Context, r Ref, smoke []string) error
	// Decommission stops the pool of the given color; it is a no-op when the pool is gone.
	Decommission(ctx context.Context, r Ref, c Color) error
}

// Traffic splits an app's traffic between blue and green.
type Traffic interface {
	// Type names the provider as release.yaml does.
	Type() string
	// SetWeight sends green percent of the traffic to green and the rest to blue.
	SetWeight(ctx context.Context, app string, green int) error
	// Weight reads green's current share back.
	Weight(ctx context.Context, app string) (int, error)
}

// Scoped is a Traffic provider whose blue and green depend on the release (two
// Elastic Beanstalk environments that take turns): the activities move the
// release's traffic through the view For returns.
type Scoped interface {
	// For returns the provider as the release sees it.
	For(r Ref) Traffic
}

// Drainer is a Traffic provider that can tell how many requests a color still
// serves, so that a pool is stopped only once it is idle.
type Drainer interface {
	// InFlight returns the number of requests the color is serving now.
	InFlight(ctx context.Context, app string, c Color) (int, error)
}

// Lingerer is a Traffic provider whose weight change reaches every client only
// over time (DNS answers cached for their TTL, a load balancer letting requests
// finish for its deregistration delay): a color whose weight went to 0 may
// still get requests for up to Linger, so it is stopped only after that.
type Lingerer interface {
	// Linger is how long the color may still get requests after its weight went to 0.
	Linger(ctx context.Context, app string, c Color) (time.Duration, error)
}

// PlanStep is what a provider's plan check sees of one step of release.yaml's plan.
type PlanStep struct {
	// Index is the step's place in the plan, from 0, as errors name it: plan[3].
	Index int `json:"index"`
	// Kind is the step's kind as release.yaml writes it: setWeight, soak, analysis...
	Kind string `json:"kind"`
	// Green is green's share of the traffic, in percent, while the step runs.
	Green int `json:"green"`
	// Hold is how long the step judges green at that share: a soak's duration,
	// an analysis window; 0 for the other steps.
	Hold time.Duration `json:"hold,omitempty"`
}

// PlanChecker is a traffic provider that can tell, before a release touches
// anything, that the release's plan cannot work with it as written.
type PlanChecker interface {
	// CheckPlan returns an error that names the first step the provider cannot carry out as planned.
	CheckPlan(ctx context.Context, app string, plan []PlanStep) error
}

// MetricsSource is an analysis provider that only reads metrics (scrape,
// prometheus, cloudwatch): the analysis package reads them step by step and
// the judge decides. The full interface, with the reading methods, is
// analysis.Source; this is what the registry needs to tell one apart.
type MetricsSource interface {
	Type() string
	// Where names what the source reads, for verdicts.
	Where() string
}

// Analyzer judges green by itself, without metrics for the judge: the local
// provider's instance health, the memory provider's simulated verdicts.
type Analyzer interface {
	// Type names the provider as release.yaml does.
	Type() string
	// Guard checks green against the spec's absolute limits, once per soak interval.
	Guard(ctx context.Context, r Ref) (verdict.Verdict, error)
	// Compare judges green against blue over the window.
	Compare(ctx context.Context, r Ref, window time.Duration) (verdict.Verdict, error)
}

// Migrator applies one phase of an app's database migrations.
type Migrator interface {
	// Type names the provider as release.yaml does.
	Type() string
	// Migrate applies the phase's pending migrations and reports what it did.
	Migrate(ctx context.Context, r Ref, phase string) (MigrationReport, error)
}

// Notifier tells people what a release is doing.
type Notifier interface {
	// Type names the provider as release.yaml does.
	Type() string
	// Notify delivers one event.
	Notify(ctx context.Context, e Event) error
}

// MigrationReport says which migrations a phase applied.
type MigrationReport struct {
	Phase string `json:"phase"`
	// Applied lists the migrations this call applied, in order.
	Applied []string `json:"applied,omitempty"`
	// Already lists the phase's migrations that were applied before (by an
	// earlier release, or by this step's earlier attempt).
	Already []string `json:"already,omitempty"`
	// Waived lists the safety checks the spec waived, as
	// "<file>: <check> (<reason>)", so that the waiver is on record.
	Waived []string `json:"waived,omitempty"`
}

// Recorder keeps the release ledger: every release and its events, in a store
// that outlives the workflow history.
type Recorder interface {
	// Type names the provider as release.yaml does.
	Type() string
	// Record stores one event; storing the same event again (same Release and
	// Seq) changes nothing, so a retried activity writes no duplicate.
	Record(ctx context.Context, e LedgerEvent) error
}

// Ledger event kinds.
const (
	LedgerStarted  = "started"  // the release started: Actor, Via, CIRun
	LedgerStep     = "step"     // a step (or rollback step) started or ended: Step, State, Message
	LedgerDecision = "decision" // approve, abort, pause, resume, rollback: Actor, Via, Message
	LedgerVerdict  = "verdict"  // an analysis verdict: Data holds it with its numbers
	LedgerOutcome  = "outcome"  // the release ended: Outcome, Message (the reason)
)

// LedgerEvent is one entry of the release ledger.
type LedgerEvent struct {
	// Release identifies the release: its workflow run ID.
	Release         string `json:"release"`
	App             string `json:"app"`
	Version         string `json:"version"`
	PreviousVersion string `json:"previousVersion,omitempty"`
	// Seq numbers the release's events from 1, in the order the workflow saw
	// them; (Release, Seq) is unique.
	Seq  int       `json:"seq"`
	Kind string    `json:"kind"`
	At   time.Time `json:"at"`
	// Step is the plan step the event belongs to (0: none); rollback steps
	// are numbered after the plan's.
	Step int `json:"step,omitempty"`
	// State is a step's state: running, done, failed, skipped.
	State string `json:"state,omitempty"`
	// Actor is who acted: the person or CI job that started, approved or
	// aborted; empty for the workflow's own events.
	Actor string `json:"actor,omitempty"`
	// Via is the door the actor used: cli, api, chat, ui.
	Via string `json:"via,omitempty"`
	// Principal is who the door authenticated (door:id), and Person who
	// that is after the app definition's people; empty for releases started
	// before principals were recorded.
	Principal string `json:"principal,omitempty"`
	Person    string `json:"person,omitempty"`
	// CIRun is the CI run that started the release (a URL or an ID).
	CIRun string `json:"ciRun,omitempty"`
	// Outcome is the release's outcome (outcome events only).
	Outcome string `json:"outcome,omitempty"`
	// Message says what happened, for people.
	Message string `json:"message,omitempty"`
	// Data holds the event's details as JSON: a verdict with its numbers, a
	// migration report.
	Data json.RawMessage `json:"data,omitempty"`
}

// Event is a stage change, verdict or outcome worth telling people about.
type Event struct {
	App     string    `json:"app"`
	Version string    `json:"version"`
	Kind    string    `json:"kind"`
	Message string    `json:"message"`
	Time    time.Time `json:"time"`
	// Verdict is the last verdict, with its numbers, on the events where a
	// person decides: approval-needed, decision-needed and verdict.
	Verdict *verdict.Verdict `json:"verdict,omitempty"`
}
