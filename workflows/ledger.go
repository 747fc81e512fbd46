package workflows

import (
	"encoding/json"

	"go.temporal.io/sdk/workflow"

	"github.com/cutoverhq/cutover/activities"
	"github.com/cutoverhq/cutover/providers"
	"github.com/cutoverhq/cutover/verdict"
)

// The release ledger (providers.ledger in the spec) gets one event for the
// start, each step's start and end, each decision, each verdict, each rollback
// step and the outcome. Each event is numbered here, in the workflow, so the
// number is the same on every replay and retry: the ledger keeps (run, number)
// unique and a retried write stores nothing twice. Writes go out in the
// background, like notifications, and the run waits for them before it ends.

// ledgerEvent is what the workflow fills in; enter adds the rest.
type ledgerEvent = providers.LedgerEvent

// enter writes one event to the ledger, when the spec has one: through the
// outbox (outbox.go) in a lean history, else an activity of its own.
//
// The writes are activities, not local activities, although a local one would
// leave one marker in the history instead of three events. A local activity
// holds back every command of the workflow task that started it until it
// completes, and the events a rollback writes (the verdict, the abort) share
// a task with the SetWeight that sends traffic back to blue: with PostgreSQL
// slow or down, traffic would stay on green for as long as the write retries
// (seen in a recorded history: the SetWeight and the local Notify's marker
// came in one task completion). Ledger writes and notifications must not be
// on the way back to blue.
func (r *release) enter(ctx workflow.Context, e ledgerEvent) {
	l := r.in.Release.Providers.Ledger
	if l == nil {
		return
	}
	r.ledgerSeq++
	e.Release = workflow.GetInfo(ctx).WorkflowExecution.RunID
	e.App, e.Version, e.PreviousVersion = r.ref.App, r.ref.Version, r.ref.PreviousVersion
	e.Seq, e.At = r.ledgerSeq, workflow.Now(ctx)
	if r.lean {
		r.out.ledger = append(r.out.ledger, e)
		return
	}
	ctx, _ = workflow.NewDisconnectedContext(ctx)
	f := workflow.ExecuteActivity(ledgerOptions(ctx, "ledger"), activities.RecordName, activities.RecordInput{Ledger: *l, Event: e})
	r.ledgerWrites = append(r.ledgerWrites, f)
}

// enterVerdict writes a verdict with all its numbers.
func (r *release) enterVerdict(ctx workflow.Context, what string, v verdict.Verdict) {
	if r.in.Release.Providers.Ledger == nil {
		return
	}
	data, err := json.Marshal(v)
	if err != nil {
		r.log.Warn("verdict for the ledger", "err", err)
	}
	r.enter(ctx, ledgerEvent{Kind: providers.LedgerVerdict, Step: r.st.Step, State: string(v.Result), Message: what + ": " + brief(v), Data: data})
}

// flushLedger waits for the ledger writes still on their way.
func (r *release) flushLedger(ctx workflow.Context) {
	for _, f := range r.ledgerWrites {
		if err := f.Get(ctx, nil); err != nil {
			r.log.Error("ledger write failed: the ledger misses an event of this release", "err", err)
		}
	}
	r.ledgerWrites = nil
}
