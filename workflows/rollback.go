package workflows

import (
	"fmt"
	"time"

	"go.temporal.io/sdk/workflow"

	"github.com/cutoverhq/cutover/providers"
)

// rollback undoes a release that stopped going forward. All traffic goes back to
// blue before anything else; then green is removed. Database migrations are never
// reversed: expand migrations are backward compatible by design, and contract
// migrations only run once rollback is no longer possible.
//
// It runs on a disconnected context, so it completes even when the workflow
// itself was cancelled.
func (r *release) rollback(ctx workflow.Context) {
	ctx, _ = workflow.NewDisconnectedContext(ctx)
	began := workflow.Now(ctx)
	r.st.Stage, r.st.Waiting, r.gate = StageRollback, "", ""
	r.publish(ctx)
	r.notify(ctx, "rollback", fmt.Sprintf("%s is rolling back: %s", r.summary(), r.stop.reason))

	if r.trafficTouched {
		err := r.undo(ctx, "send all traffic to blue", func() error {
			return r.setWeight(rollbackOptions(ctx, "rollback: all traffic to blue"), 0)
		})
		if err != nil {
			r.finish(ctx, OutcomeFailed, fmt.Sprintf("%s; traffic could not be sent back to blue: %s", r.stop.reason, errorText(err)))
			return
		}
		r.recordRollbackTimes(ctx, began)
	}
	r.trafficBack = true
	r.publish(ctx)

	if r.greenStarted {
		err := r.undo(ctx, "decommission green", func() error {
			return r.decommission(rollbackOptions(ctx, "rollback: decommission green"), providers.Green, rollbackDrain)
		})
		if err != nil {
			r.finish(ctx, OutcomeFailed, fmt.Sprintf("%s; traffic is on blue but green could not be removed: %s", r.stop.reason, errorText(err)))
			return
		}
		r.st.Green = nil
	}

	outcome := OutcomeRolledBack
	if r.stop.kind == stopAbort {
		outcome = OutcomeAborted
	}
	r.finish(ctx, outcome, r.stop.reason)
}

// rollbackDrain is how long green's in-flight requests get to finish before it
// is stopped on a rollback.
const rollbackDrain = 30 * time.Second

// undo runs one compensation and records it.
func (r *release) undo(ctx workflow.Context, what string, fn func() error) error {
	r.st.Rollback = append(r.st.Rollback, StepRecord{Index: len(r.st.Rollback) + 1, Kind: StageRollback, Description: what, State: StateRunning, Started: workflow.Now(ctx)})
	rec := &r.st.Rollback[len(r.st.Rollback)-1]
	err := fn()
	rec.Ended = workflow.Now(ctx)
	rec.State = StateDone
	if err != nil {
		rec.State, rec.Detail = StateFailed, errorText(err)
	}
	r.publish(ctx)
	// Rollback steps are numbered after the plan's in the ledger.
	r.enter(ctx, ledgerEvent{Kind: providers.LedgerStep, Step: len(r.st.Steps) + rec.Index, State: rec.State, Message: "rollback: " + stepLine(*rec)})
	return err
}
