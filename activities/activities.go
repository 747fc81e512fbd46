// Package activities holds the release's activities. They are thin: each builds
// its provider from the spec, calls it, heartbeats while it waits, and classifies
// its errors as permanent or retryable (errors.go). The workflow decides what to do
// with the outcome.
package activities

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/worker"
	"go.uber.org/fx"

	"github.com/cutoverhq/cutover/providers"
	"github.com/cutoverhq/cutover/spec"
)

// Activity names, registered explicitly so that renaming a method never changes
// what recorded histories call.
const (
	ProvisionName    = "Provision"
	MigrateName      = "Migrate"
	ValidateName     = "Validate"
	SetWeightName    = "SetWeight"
	GuardName        = "Guard"
	CompareName      = "Compare"
	DecommissionName = "Decommission"
	NotifyName       = "Notify"
	RecordName       = "Record"
	// The batch forms carry every ledger event and notification a release
	// gathered in one workflow task (workflows/outbox.go). Record and Notify
	// stay for releases recorded before them; a worker without the batch
	// forms fails their tasks as unregistered, which Temporal retries until a
	// worker that has them takes them, so a rolling upgrade loses nothing.
	NotifyBatchName = "NotifyBatch"
	RecordBatchName = "RecordBatch"
)

// StepInput names the release and the provider a step uses.
type StepInput struct {
	Ref      providers.Ref `json:"ref"`
	Provider spec.Provider `json:"provider"`
}

// ValidateInput is Validate's input.
type ValidateInput struct {
	StepInput
	Smoke []string `json:"smoke,omitempty"`
}

// WeightInput is SetWeight's input: green's share in percent.
type WeightInput struct {
	App      string        `json:"app"`
	Provider spec.Provider `json:"provider"`
	Green    int           `json:"green"`
	// Ref is the release, for a provider whose blue and green depend on it
	// (providers.Scoped); histories from before it was added have none.
	Ref providers.Ref `json:"ref,omitzero"`
}

// GuardInput is Guard's input.
type GuardInput struct {
	StepInput
	Interval spec.Duration `json:"interval"`
	// Start, Duration and Extend are the soak's, from workflows that let the
	// guard end the soak itself (version sequentialJudge); older ones leave
	// them zero, guard until cancelled and time the soak themselves.
	Start    time.Time     `json:"start,omitzero"`
	Duration spec.Duration `json:"duration,omitempty"`
	Extend   spec.Duration `json:"extend,omitempty"`
}

// CompareInput is Compare's input.
type CompareInput struct {
	StepInput
	Window spec.Duration `json:"window"`
	// Start is when the window began (zero: when the activity starts).
	Start time.Time `json:"start,omitzero"`
	// EarlyStop ends the comparison as soon as it is decided.
	EarlyStop bool `json:"earlyStop,omitempty"`
}

// MigrateInput is Migrate's input.
type MigrateInput struct {
	StepInput
	Phase string `json:"phase"`
}

// DecommissionInput is Decommission's input: the pool to stop, and the traffic
// provider to wait on until that pool is idle.
type DecommissionInput struct {
	StepInput
	Traffic spec.Provider   `json:"traffic"`
	Color   providers.Color `json:"color"`
	Drain   spec.Duration   `json:"drain"`
	// Off is when the color's weight went to 0 (zero: unknown, counted from
	// now): a traffic provider whose changes linger (providers.Lingerer) may
	// send it requests until Off plus the linger.
	Off time.Time `json:"off,omitzero"`
}

// NotifyInput is Notify's input.
type NotifyInput struct {
	Notifiers []spec.Provider `json:"notifiers"`
	Event     providers.Event `json:"event"`
}

// NotifyBatchInput is NotifyBatch's input: events for one notifier, in order.
type NotifyBatchInput struct {
	Notifier spec.Provider     `json:"notifier"`
	Events   []providers.Event `json:"events"`
}

// RecordBatchInput is RecordBatch's input: ledger events, in order, and the
// ledger to write them to.
type RecordBatchInput struct {
	Ledger spec.Provider           `json:"ledger"`
	Events []providers.LedgerEvent `json:"events"`
}

// RecordInput is Record's input: one ledger event and the ledger to write it to.
type RecordInput struct {
	Ledger spec.Provider         `json:"ledger"`
	Event  providers.LedgerEvent `json:"event"`
}

// Activities carries out the release's steps through the providers.
type Activities struct {
	reg  *providers.Registry
	log  *slog.Logger
	apps Resolver
}

// New returns the activities over a provider registry.
func New(reg *providers.Registry, log *slog.Logger) *Activities {
	return &Activities{reg: reg, log: log}
}

// WithApps returns the activities resolving release requests with r.
func (a *Activities) WithApps(r Resolver) *Activities {
	c := *a
	c.apps = r
	return &c
}

// Register registers every activity under its explicit name.
func (a *Activities) Register(r worker.ActivityRegistry) {
	for name, fn := range map[string]any{
		ProvisionName:    a.Provision,
		MigrateName:      a.Migrate,
		ValidateName:     a.Validate,
		SetWeightName:    a.SetWeight,
		GuardName:        a.Guard,
		CompareName:      a.Compare,
		DecommissionName: a.Decommission,
		NotifyName:       a.Notify,
		RecordName:       a.Record,
		NotifyBatchName:  a.NotifyBatch,
		RecordBatchName:  a.RecordBatch,
		PreflightName:    a.Preflight,
		ResolveName:      a.Resolve,
	} {
		r.RegisterActivityWithOptions(fn, activity.RegisterOptions{Name: name})
	}
}

// traffic returns the traffic provider as the release sees it: a Scoped
// provider's view of the release, when the release is known.
func (a *Activities) traffic(p spec.Provider, r providers.Ref) (providers.Traffic, error) {
	tr, err := providers.Get[providers.Traffic](a.reg, "traffic", p)
	if err != nil {
		return nil, err
	}
	if s, ok := tr.(providers.Scoped); ok && r.Version != "" {
		return s.For(r), nil
	}
	return tr, nil
}

// Provision starts green.
func (a *Activities) Provision(ctx context.Context, in StepInput) (providers.Pool, error) {
	env, err := providers.Get[providers.Environment](a.reg, "environment", in.Provider)
	if err != nil {
		return providers.Pool{}, classify("provision green", err)
	}
	pool, err := withHeartbeat(ctx, "provisioning green", func(ctx context.Context) (providers.Pool, error) {
		return env.Provision(ctx, in.Ref)
	})
	return pool, classify("provision green", err)
}

// Validate checks green without user traffic.
func (a *Activities) Validate(ctx context.Context, in ValidateInput) error {
	env, err := providers.Get[providers.Environment](a.reg, "environment", in.Provider)
	if err != nil {
		return classify("validate green", err)
	}
	_, err = withHeartbeat(ctx, "validating green", func(ctx context.Context) (struct{}, error) {
		return struct{}{}, env.Validate(ctx, in.Ref, in.Smoke)
	})
	return classify("validate green", err)
}

// SetWeight sends in.Green percent of traffic to green and reads it back, so a
// provider that accepted the call but did not apply it is caught here.
func (a *Activities) SetWeight(ctx context.Context, in WeightInput) (int, error) {
	what := fmt.Sprintf("set green weight to %d", in.Green)
	tr, err := a.traffic(in.Provider, in.Ref)
	if err != nil {
		return 0, classify(what, err)
	}
	got, err := withHeartbeat(ctx, what, func(ctx context.Context) (int, error) {
		if err := tr.SetWeight(ctx, in.App, in.Green); err != nil {
			return 0, err
		}
		return tr.Weight(ctx, in.App)
	})
	if err != nil {
		return 0, classify(what, err)
	}
	if got != in.Green {
		return got, classify(what, fmt.Errorf("read back %d after setting it", got))
	}
	return got, nil
}

// Migrate applies one phase of the database migrations.
func (a *Activities) Migrate(ctx context.Context, in MigrateInput) (providers.MigrationReport, error) {
	what := "migrate (" + in.Phase + ")"
	m, err := providers.Get[providers.Migrator](a.reg, "migrations", in.Provider)
	if err != nil {
		return providers.MigrationReport{}, classify(what, err)
	}
	rep, err := withHeartbeat(ctx, what, func(ctx context.Context) (providers.MigrationReport, error) {
		return m.Migrate(ctx, in.Ref, in.Phase)
	})
	return rep, classify(what, err)
}

// Decommission waits for the pool to drain (when the traffic provider can tell),
// then stops it.
func (a *Activities) Decommission(ctx context.Context, in DecommissionInput) error {
	what := fmt.Sprintf("decommission %s", in.Color)
	env, err := providers.Get[providers.Environment](a.reg, "environment", in.Provider)
	if err != nil {
		return classify(what, err)
	}
	tr, err := a.traffic(in.Traffic, in.Ref)
	if err != nil {
		return classify(what, err)
	}
	_, err = withHeartbeat(ctx, "draining and stopping "+string(in.Color), func(ctx context.Context) (struct{}, error) {
		a.drain(ctx, tr, in)
		return struct{}{}, env.Decommission(ctx, in.Ref, in.Color)
	})
	return classify(what, err)
}

// drain waits until the color can get no more requests and serves none, or
// the drain deadline passes: a stuck connection must not hold a release
// forever, so the deadline wins. A traffic provider whose changes linger
// (DNS caches, a load balancer's deregistration delay) is waited out first;
// one that counts requests in flight (providers.Drainer) is then polled to 0.
func (a *Activities) drain(ctx context.Context, tr providers.Traffic, in DecommissionInput) {
	deadline := time.Now().Add(in.Drain.D())
	log := a.log.With("app", in.Ref.App, "color", in.Color)
	if l, ok := tr.(providers.Lingerer); ok {
		until := deadline
		linger, err := l.Linger(ctx, in.Ref.App, in.Color)
		if err != nil {
			log.Warn("cannot tell how long traffic lingers; waiting the whole drain time", "drain", in.Drain, "err", err)
		} else {
			off := in.Off
			if off.IsZero() {
				off = time.Now()
			}
			if until = off.Add(linger); until.After(deadline) {
				log.Warn("traffic lingers longer than the drain time; stopping at the drain time", "linger", linger, "drain", in.Drain)
				until = deadline
			}
		}
		if d := time.Until(until); d > 0 {
			log.Info("waiting for lingering traffic", "linger", linger, "wait", d.Round(time.Millisecond))
			select {
			case <-ctx.Done():
				return
			case <-time.After(d):
			}
		}
	}
	d, ok := tr.(providers.Drainer)
	if !ok {
		return
	}
	for {
		n, err := d.InFlight(ctx, in.Ref.App, in.Color)
		if err == nil && n == 0 {
			return
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			log.Warn("drain deadline passed; stopping anyway", "in_flight", n, "err", err)
			return
		}
		select {
		case <-ctx.Done():
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// Notify delivers the event to every notifier; one failing notifier does not
// keep the others from hearing of it.
func (a *Activities) Notify(ctx context.Context, in NotifyInput) error {
	var firstErr error
	for _, p := range in.Notifiers {
		n, err := providers.Get[providers.Notifier](a.reg, "notifications", p)
		if err == nil {
			err = n.Notify(ctx, in.Event)
		}
		if err != nil {
			a.log.Warn("notification failed", "notifier", p.Type, "app", in.Event.App, "err", err)
			if firstErr == nil {
				firstErr = classify("notify "+p.Type, err)
			}
		}
	}
	return firstErr
}

// Record writes one event to the release ledger. The ledger ignores an event
// it already holds, so a retry after a lost answer writes no duplicate.
func (a *Activities) Record(ctx context.Context, in RecordInput) error {
	return a.RecordBatch(ctx, RecordBatchInput{Ledger: in.Ledger, Events: []providers.LedgerEvent{in.Event}})
}

// NotifyBatch delivers events to one notifier in order. A retry sends the
// whole batch again: the workflow sends a batch as soon as a notification is
// due, so a batch rarely holds more than one.
func (a *Activities) NotifyBatch(ctx context.Context, in NotifyBatchInput) error {
	n, err := providers.Get[providers.Notifier](a.reg, "notifications", in.Notifier)
	if err != nil {
		return classify("notify "+in.Notifier.Type, err)
	}
	for _, e := range in.Events {
		if err := n.Notify(ctx, e); err != nil {
			a.log.Warn("notification failed", "notifier", in.Notifier.Type, "app", e.App, "kind", e.Kind, "err", err)
			return classify("notify "+in.Notifier.Type+" of "+e.Kind, err)
		}
	}
	return nil
}

// RecordBatch writes ledger events in order. The ledger ignores an event it
// already holds, so a retry writes only what the last attempt did not.
func (a *Activities) RecordBatch(ctx context.Context, in RecordBatchInput) error {
	l, err := providers.Get[providers.Recorder](a.reg, "ledger", in.Ledger)
	if err != nil {
		return classify("record in the ledger", err)
	}
	for _, e := range in.Events {
		if err := l.Record(ctx, e); err != nil {
			return classify("record "+e.Kind+" in the ledger", err)
		}
	}
	return nil
}

// Module provides the activities.
var Module = fx.Module("activities", fx.Provide(New))
