package workflows

import (
	"fmt"
	"strings"

	"go.temporal.io/sdk/workflow"

	"github.com/cutoverhq/cutover/activities"
	"github.com/cutoverhq/cutover/providers"
)

// leanHistory is the workflow change from which a release's history holds
// what it did and little else:
//   - one version marker for the changes before it (app definitions,
//     preflight, the sequential judge), each of which wrote a marker and a
//     search-attribute upsert of its own;
//   - at most one search-attribute upsert per workflow task, and none for what
//     the start already set;
//   - ledger events and notifications in batches (the outbox), instead of an
//     activity per event and notifier.
//
// Releases recorded before it replay as they ran.
const leanHistory = "lean-history"

// leanVersion says whether this run has a lean history. It is asked first,
// before anything else writes to the history.
func leanVersion(ctx workflow.Context) bool {
	return workflow.GetVersion(ctx, leanHistory, workflow.DefaultVersion, 1) != workflow.DefaultVersion
}

// outbox holds the ledger events and notifications that have not gone out.
//
// A coroutine (startOutbox) takes everything gathered so far and sends it
// once the release's own code blocks, that is in the workflow task that
// gathered it: one RecordBatch for the ledger and one NotifyBatch per notifier.
// While a batch is on its way the next one gathers, so a release writes about
// one batch per step, not three activities per event. The batches are plain
// activities, started and not waited for: nothing the release does waits for
// a ledger write or a notification, and in particular not the rollback's
// SetWeight to blue (a local activity would hold back its task's commands
// until it completed). Their contents are workflow state until the batch is
// scheduled, so a worker dying loses none of them: the next worker replays to
// the same outbox.
type outbox struct {
	ledger []ledgerEvent
	notes  []providers.Event
	// sending is set while a batch is on its way.
	sending bool
}

func (o *outbox) empty() bool { return len(o.ledger) == 0 && len(o.notes) == 0 }

// startOutbox starts the coroutine that sends the outbox. It runs on a
// disconnected context: a release cancelled in Temporal still records why.
func (r *release) startOutbox(ctx workflow.Context) {
	ctx, _ = workflow.NewDisconnectedContext(ctx)
	workflow.Go(ctx, func(ctx workflow.Context) {
		for {
			if err := workflow.Await(ctx, func() bool { return !r.out.empty() }); err != nil {
				return
			}
			events, notes := r.out.ledger, r.out.notes
			r.out.ledger, r.out.notes, r.out.sending = nil, nil, true
			var sent []workflow.Future
			if l := r.in.Release.Providers.Ledger; l != nil && len(events) > 0 {
				sent = append(sent, workflow.ExecuteActivity(ledgerOptions(ctx, fmt.Sprintf("ledger: %d events", len(events))),
					activities.RecordBatchName, activities.RecordBatchInput{Ledger: *l, Events: events}))
			}
			if len(notes) > 0 {
				kinds := make([]string, len(notes))
				for i, n := range notes {
					kinds[i] = n.Kind
				}
				// One activity per notifier, so that a retry sends again only
				// to the one that failed.
				for _, n := range r.in.Release.Providers.Notifications {
					sent = append(sent, workflow.ExecuteActivity(notifyOptions(ctx, "notify "+n.Type+": "+strings.Join(kinds, ", ")),
						activities.NotifyBatchName, activities.NotifyBatchInput{Notifier: n, Events: notes}))
				}
			}
			for _, f := range sent {
				if err := f.Get(ctx, nil); err != nil {
					r.log.Error("ledger write or notification failed: the ledger or a notifier misses events of this release", "err", err)
				}
			}
			r.out.sending = false
		}
	})
}

// drainOutbox waits until everything gathered has gone out (or failed for
// good), so that the last events are delivered before the run ends.
func (r *release) drainOutbox(ctx workflow.Context) {
	ctx, _ = workflow.NewDisconnectedContext(ctx)
	_ = workflow.Await(ctx, func() bool { return r.out.empty() && !r.out.sending })
}

// startPublisher starts the coroutine that shows the release's state in the
// UI once per workflow task: every publish in a task marks it, and the
// coroutine runs once the release's own code blocks, so a step that ends and
// the next that starts upsert their search attributes together.
func (r *release) startPublisher(ctx workflow.Context) {
	ctx, _ = workflow.NewDisconnectedContext(ctx)
	workflow.Go(ctx, func(ctx workflow.Context) {
		for {
			if err := workflow.Await(ctx, func() bool { return r.dirty }); err != nil {
				return
			}
			r.dirty = false
			r.publishNow(ctx)
		}
	})
}

// seedPublished takes the search attributes the start set (the API and the
// CLI set them all) as published, so that the first publish upserts only what
// changed.
func (r *release) seedPublished(ctx workflow.Context) {
	sa := workflow.GetTypedSearchAttributes(ctx)
	app, okApp := sa.GetKeyword(AttrApp)
	version, okVersion := sa.GetKeyword(AttrVersion)
	stage, okStage := sa.GetKeyword(AttrStage)
	traffic, okTraffic := sa.GetInt64(AttrTraffic)
	outcome, okOutcome := sa.GetKeyword(AttrOutcome)
	if okApp && okVersion && okStage && okTraffic && okOutcome && app == r.ref.App && version == r.ref.Version {
		r.published = published{stage: stage, traffic: int(traffic), outcome: outcome, done: true}
	}
}
