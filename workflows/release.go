package workflows

import (
	"errors"
	"fmt"
	"time"

	"go.temporal.io/sdk/log"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/cutoverhq/cutover/providers"
	"github.com/cutoverhq/cutover/spec"
)

// stopKinds say why a release stops going forward.
const (
	stopAbort    = "abort"
	stopRollback = "rollback"
	stopFailure  = "failure"
)

// stop is a request to stop going forward and roll back.
type stop struct {
	kind   string
	reason string
}

// release is one run's state. Handlers and the main loop share it; Temporal
// runs them one at a time, so no locking is needed.
type release struct {
	in  Input
	ref providers.Ref
	st  Status
	log log.Logger

	// stepCancel cancels the step under way, so that an abort stops a wait or a
	// provider call at once.
	stepCancel workflow.CancelFunc
	// gate is where approve is accepted now: "" (nowhere), gateApproval or
	// gateVerdict.
	gate     string
	gateStep int
	approved bool
	// inPauseStep and resumed serve a plan's pause step.
	inPauseStep bool
	resumed     bool

	stop *stop
	// trafficTouched is set before the first weight change: from then on a
	// rollback starts by sending all traffic to blue.
	trafficTouched bool
	// trafficBack is set once a rollback has all traffic on blue; abort and
	// rollback updates answer then.
	trafficBack bool
	// greenStarted is set before provisioning: a failed provision may have left
	// instances behind, and a rollback removes them.
	greenStarted bool
	// noReturn is set once the standby window closed: contract migrations and
	// blue's decommission cannot be undone.
	noReturn bool
	ended    bool
	// greenOff and blueOff are when each color's weight last went to 0: a
	// traffic provider whose changes linger may send it requests for a while
	// after, and its decommission waits that out.
	greenOff, blueOff time.Time

	// lean is set for a run with a lean history (outbox.go): one version
	// marker, batched ledger events and notifications, one upsert per task.
	lean bool
	// dirty is set when the state changed since the publisher last showed it.
	dirty bool
	out   outbox

	published     published
	notifications []workflow.Future
	ledgerSeq     int
	ledgerWrites  []workflow.Future
}

// Gates at which approve is accepted.
const (
	gateApproval = "approval"
	gateVerdict  = "verdict"
)

// cancelledInTemporal is the reason of a release whose workflow an operator
// cancelled in Temporal: it is handled like an abort.
const cancelledInTemporal = "the workflow was cancelled in Temporal"

// errStopped marks a step that ended because a stop was requested.
var errStopped = errors.New("stopped")

// Release runs one release's plan: it provisions green, migrates, validates,
// shifts traffic, soaks, compares, waits for approval, promotes, keeps blue warm,
// contracts and decommissions blue. Any failure, abort or failed check first sends
// all traffic back to blue, then undoes the rest.
func Release(ctx workflow.Context, in Input) (Status, error) {
	// Until the request is resolved, status says the release is starting.
	// (Setting a query handler writes nothing to the history.)
	starting := Status{App: in.Release.App, Version: in.Release.Version, StartedBy: in.StartedBy, Principal: in.Principal,
		StartedAt: workflow.Now(ctx), Stage: StageStarting, Weights: Weights{Blue: 100}, Outcome: OutcomeRunning}
	if err := workflow.SetQueryHandler(ctx, QueryStatus, func() (Status, error) { return starting, nil }); err != nil {
		return Status{}, err
	}
	lean := leanVersion(ctx)
	rel, resolved, err := resolve(ctx, in, lean)
	if err != nil {
		return refused(ctx, in, err, lean)
	}
	in.Release = rel
	if problems := in.Release.Validate(nil); len(problems) > 0 {
		return Status{}, temporal.NewNonRetryableApplicationError("invalid release spec:\n"+problems.Error(), "InvalidSpec", nil)
	}
	r := newRelease(ctx, in, lean)
	if resolved {
		r.st.Principal, r.st.Person = in.Principal, in.Release.PersonOf(in.Principal)
	}
	if err := r.registerHandlers(ctx); err != nil {
		return Status{}, err
	}
	r.publish(ctx)
	r.notify(ctx, "started", fmt.Sprintf("release of %s started by %s", r.summary(), orUnknown(in.StartedBy)))
	r.enter(ctx, ledgerEvent{Kind: providers.LedgerStarted, Actor: in.StartedBy, Via: in.Via, CIRun: in.CIRun,
		Principal: r.st.Principal.String(), Person: r.st.Person,
		Message: fmt.Sprintf("release of %s started by %s", r.summary(), orUnknown(in.StartedBy))})

	if err := r.preflight(ctx); err != nil {
		// Nothing was touched: nothing to roll back.
		outcome, reason := OutcomeFailed, err.Error()
		if ctx.Err() != nil {
			outcome, reason = OutcomeAborted, cancelledInTemporal
			ctx, _ = workflow.NewDisconnectedContext(ctx)
		}
		r.finish(ctx, outcome, reason)
	} else {
		r.run(ctx)
	}
	// Let abort and rollback updates that wait for blue answer before the run ends.
	_ = workflow.Await(ctx, func() bool { return workflow.AllHandlersFinished(ctx) })
	r.end(ctx)
	return r.st, nil
}

// end shows the final state and waits for the last ledger events and
// notifications to go out.
func (r *release) end(ctx workflow.Context) {
	if r.lean {
		ctx, _ = workflow.NewDisconnectedContext(ctx)
		if r.dirty {
			r.dirty = false
			r.publishNow(ctx)
		}
		r.drainOutbox(ctx)
		return
	}
	r.flushNotifications(ctx)
	r.flushLedger(ctx)
}

// run runs the plan, then finishes the release: promoted, failed past the
// point of no return, or rolled back.
func (r *release) run(ctx workflow.Context) {
	err := r.runPlan(ctx)
	switch {
	case err == nil:
		r.finish(ctx, OutcomePromoted, "")
	case r.noReturn:
		// Past the standby window there is nothing to roll back to.
		r.finish(ctx, OutcomeFailed, err.Error())
	default:
		if r.stop == nil {
			r.stop = &stop{kind: stopFailure, reason: err.Error()}
			if ctx.Err() != nil {
				r.stop = &stop{kind: stopAbort, reason: cancelledInTemporal}
			}
		}
		r.rollback(ctx)
	}
}

func newRelease(ctx workflow.Context, in Input, lean bool) *release {
	rel := in.Release
	r := &release{
		in:   in,
		ref:  providers.Ref{App: rel.App, Version: rel.Version, PreviousVersion: rel.PreviousVersion},
		log:  workflow.GetLogger(ctx),
		lean: lean,
	}
	r.st = Status{
		App:             rel.App,
		Version:         rel.Version,
		PreviousVersion: rel.PreviousVersion,
		StartedBy:       in.StartedBy,
		StartedAt:       workflow.Now(ctx),
		Stage:           StageStarting,
		Weights:         Weights{Blue: 100},
		Outcome:         OutcomeRunning,
	}
	r.greenOff = r.st.StartedAt
	for i, s := range rel.Plan {
		r.st.Steps = append(r.st.Steps, StepRecord{Index: i + 1, Kind: s.Kind(), Description: s.Describe(), State: StatePending})
	}
	if lean {
		r.seedPublished(ctx)
		r.startPublisher(ctx)
		r.startOutbox(ctx)
	}
	return r
}

// runPlan runs the steps in order until one fails or a stop is requested.
func (r *release) runPlan(ctx workflow.Context) error {
	for i, s := range r.in.Release.Plan {
		if err := r.holdWhilePaused(ctx); err != nil {
			return err
		}
		if r.stop != nil {
			return errStopped
		}
		if err := r.runStep(ctx, i, s); err != nil {
			return err
		}
	}
	return nil
}

// holdWhilePaused waits at a step boundary while the release is paused.
func (r *release) holdWhilePaused(ctx workflow.Context) error {
	if !r.st.Paused {
		return nil
	}
	r.st.Waiting = "resume"
	r.publish(ctx)
	err := workflow.Await(ctx, func() bool { return !r.st.Paused || r.stop != nil })
	r.st.Waiting = ""
	return err
}

// runStep runs one step with its own cancellable context and records it.
func (r *release) runStep(ctx workflow.Context, i int, s spec.Step) error {
	rec := &r.st.Steps[i]
	stepCtx, cancel := workflow.WithCancel(ctx)
	r.stepCancel = cancel
	defer func() { r.stepCancel = nil; cancel() }()

	rec.State, rec.Started = StateRunning, workflow.Now(ctx)
	r.st.Step, r.st.Stage = i+1, s.Kind()
	r.publish(ctx)
	r.enter(ctx, ledgerEvent{Kind: providers.LedgerStep, Step: rec.Index, State: rec.State, Message: rec.Description})

	res, err := r.execute(stepCtx, s)
	rec.Ended, rec.Detail = workflow.Now(ctx), res.detail
	if err != nil && r.stop == nil && ctx.Err() != nil {
		r.stop = &stop{kind: stopAbort, reason: cancelledInTemporal}
	}
	switch {
	case err == nil && res.skipped:
		rec.State = StateSkipped
	case err == nil:
		rec.State = StateDone
	case r.stop != nil && (temporal.IsCanceledError(err) || errors.Is(err, errStopped)):
		rec.State, rec.Detail = StateCancelled, r.stop.kind+": "+r.stop.reason
		err = errStopped
	default:
		rec.State, rec.Detail = StateFailed, errorText(err)
		err = fmt.Errorf("%s failed: %s", rec.Description, errorText(err))
	}
	r.recordStageTime(ctx, s.Kind(), rec.Ended.Sub(rec.Started))
	r.publish(ctx)
	r.enter(ctx, ledgerEvent{Kind: providers.LedgerStep, Step: rec.Index, State: rec.State, Message: stepLine(*rec)})
	return err
}

// stepResult is what a step did, for its record.
type stepResult struct {
	detail  string
	skipped bool
}

// errorText is an error's message without the SDK's wrapping.
func errorText(err error) string {
	var app *temporal.ApplicationError
	if errors.As(err, &app) {
		return app.Message()
	}
	var to *temporal.TimeoutError
	if errors.As(err, &to) {
		return "timed out (" + to.TimeoutType().String() + ")"
	}
	return err.Error()
}

// requestStop asks the release to stop going forward, and stops the step under
// way.
func (r *release) requestStop(kind, reason string) {
	r.stop = &stop{kind: kind, reason: reason}
	if r.stepCancel != nil {
		r.stepCancel()
	}
}

// finish records the outcome and tells everyone.
func (r *release) finish(ctx workflow.Context, outcome, reason string) {
	r.st.Outcome, r.st.Reason = outcome, reason
	r.st.Stage, r.st.Waiting = StageDone, ""
	r.st.EndedAt = workflow.Now(ctx)
	r.ended = true
	r.publish(ctx)
	r.countOutcome(ctx)
	msg := fmt.Sprintf("release of %s ended: %s", r.summary(), outcome)
	if reason != "" {
		msg += " (" + reason + ")"
	}
	r.notify(ctx, outcome, msg)
	r.enter(ctx, ledgerEvent{Kind: providers.LedgerOutcome, Outcome: outcome, Message: reason})
}

// stepLine is a step record as the ledger keeps it.
func stepLine(rec StepRecord) string {
	if rec.Detail == "" {
		return rec.Description
	}
	return rec.Description + ": " + rec.Detail
}

func (r *release) summary() string {
	if r.ref.PreviousVersion != "" {
		return fmt.Sprintf("%s %s -> %s", r.ref.App, r.ref.PreviousVersion, r.ref.Version)
	}
	return fmt.Sprintf("%s %s", r.ref.App, r.ref.Version)
}

func orUnknown(s string) string {
	if s == "" {
		return "(unknown)"
	}
	return s
}
