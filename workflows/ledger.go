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

// enter writes one event to the ledger, when the spec has one.
func (r *release) enter(ctx workflow.Context, e ledgerEvent) {
	l := r.in.Release.Providers.Ledger
	if l == nil {
		return
	}
	r.ledgerSeq++
	e.Release = workflow.GetInfo(ctx).WorkflowExecution.RunID
	e.App, e.Version, e.PreviousVersion = r.ref.App, r.ref.Version, r.ref.PreviousVersion
	e.Seq, e.At = r.ledgerSeq, workflow.Now(ctx)
	ctx, _ = workflow.NewDisconnectedContext(ctx)
	in := activities.RecordInput{Ledger: *l, Event: e}
	var f workflow.Future
	if r.localRecords(ctx) {
		f = workflow.ExecuteLocalActivity(ledgerLocalOptions(ctx), activities.RecordName, in)
	} else {
		f = workflow.ExecuteActivity(ledgerOptions(ctx), activities.RecordName, in)
	}
	r.ledgerWrites = append(r.ledgerWrites, f)
}

// localRecordsChange is the workflow change from which ledger writes and
// notifications are local activities: they run on the worker that runs the
// workflow, in the workflow task that asked for them, and leave one marker
// event in the history instead of three events and a line in the UI's
// timeline each. A worker that dies before the task completes leaves no
// marker, so the task's replay on another worker runs them again: the
// ledger keeps every event (it stores a (run, seq) once) and a notification
// may be sent twice, never lost. Releases started before it keep their
// Record and Notify activities.
const localRecordsChange = "local-records"

// localRecords says whether this run writes its ledger and notifications
// with local activities. The version is read once, at the first write, so
// that a release with neither ledger nor notifiers has no marker for it.
func (r *release) localRecords(ctx workflow.Context) bool {
	if r.local == nil {
		v := workflow.GetVersion(ctx, localRecordsChange, workflow.DefaultVersion, 1) == 1
		r.local = &v
	}
	return *r.local
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
