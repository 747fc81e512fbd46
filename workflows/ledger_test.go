package workflows

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"go.temporal.io/sdk/activity"

	"github.com/cutoverhq/cutover/activities"
	"github.com/cutoverhq/cutover/providers"
	"github.com/cutoverhq/cutover/spec"
	"github.com/cutoverhq/cutover/verdict"
)

// ledgerFake keeps events by (release, seq), as the real ledger does, and
// fails each event's first write after storing it: the answer is lost, the
// activity is retried, and the event must still be there once.
type ledgerFake struct {
	mu      sync.Mutex
	events  map[string]providers.LedgerEvent
	writes  int
	batches int // RecordBatch calls that succeeded
}

func (l *ledgerFake) register(h *harness) {
	l.events = map[string]providers.LedgerEvent{}
	h.env.RegisterActivityWithOptions(func(ctx context.Context, in activities.RecordBatchInput) error {
		l.mu.Lock()
		defer l.mu.Unlock()
		for _, e := range in.Events {
			l.writes++
			key := fmt.Sprintf("%s/%d", e.Release, e.Seq)
			if _, ok := l.events[key]; !ok {
				l.events[key] = e
			}
		}
		if activity.GetInfo(ctx).Attempt == 1 {
			return errors.New("connection reset after the insert")
		}
		l.batches++
		return nil
	}, activity.RegisterOptions{Name: activities.RecordBatchName})
}

// ordered returns the events in Seq order as "seq kind step state" lines.
func (l *ledgerFake) ordered(t *testing.T) []providers.LedgerEvent {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := make([]providers.LedgerEvent, len(l.events))
	for _, e := range l.events {
		if e.Seq < 1 || e.Seq > len(out) || out[e.Seq-1].Seq != 0 {
			t.Fatalf("event numbers are not 1..%d without gaps or repeats: %+v", len(out), e)
		}
		out[e.Seq-1] = e
	}
	return out
}

func TestLedgerGetsEveryEventOnce(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	var l ledgerFake
	l.register(h)
	rel := testRelease()
	rel.Providers.Ledger = &spec.Provider{Type: "postgres"}
	h.approveAtGate()
	h.env.ExecuteWorkflow(WorkflowName, Input{Release: rel, StartedBy: "ci", Via: "cli", CIRun: "https://ci.example/run/7"})
	if err := h.env.GetWorkflowError(); err != nil {
		t.Fatal(err)
	}
	events := l.ordered(t)
	if l.writes != 2*len(events) {
		t.Errorf("%d writes for %d events; want each written twice (the first answer is lost)", l.writes, len(events))
	}
	// Batched: a step's end and the next step's start go out together, so
	// the ledger gets at most about one batch per step, not one per event.
	if max := len(rel.Plan) + 2; l.batches > max || l.batches*2 > len(events) {
		t.Errorf("%d batches for %d events of %d steps; want at most %d and at most one per two events", l.batches, len(events), len(rel.Plan), max)
	}
	t.Logf("%d events in %d batches", len(events), l.batches)
	var kinds []string
	for _, e := range events {
		if e.App != "shop" || e.Version != "1.5.0" || e.Release == "" || e.At.IsZero() {
			t.Errorf("event %d lacks its release: %+v", e.Seq, e)
		}
		kinds = append(kinds, e.Kind)
	}
	first, last := events[0], events[len(events)-1]
	if first.Kind != providers.LedgerStarted || first.Actor != "ci" || first.Via != "cli" || first.CIRun != "https://ci.example/run/7" {
		t.Errorf("first event = %+v, want started by ci via cli with the CI run", first)
	}
	if last.Kind != providers.LedgerOutcome || last.Outcome != OutcomePromoted {
		t.Errorf("last event = %+v, want the outcome promoted", last)
	}
	// Every step starts and ends; the approval and the comparison's verdict are there.
	steps := map[string]int{}
	var sawApproval, sawVerdict bool
	for _, e := range events {
		switch e.Kind {
		case providers.LedgerStep:
			steps[e.State]++
		case providers.LedgerDecision:
			sawApproval = e.Actor == "alice" && strings.HasPrefix(e.Message, "approve")
		case providers.LedgerVerdict:
			sawVerdict = e.State == "Pass" && strings.Contains(string(e.Data), `"error-rate"`)
		}
	}
	if n := len(rel.Plan); steps[StateRunning] != n || steps[StateDone] != n {
		t.Errorf("step events by state %v, want %d running and %d done (kinds: %v)", steps, n, n, kinds)
	}
	if !sawApproval || !sawVerdict {
		t.Errorf("approval recorded %t, verdict with its numbers recorded %t; kinds %v", sawApproval, sawVerdict, kinds)
	}
}

func TestLedgerRecordsTheRollback(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	var l ledgerFake
	l.register(h)
	h.w.guard = verdict.Fail
	rel := testRelease()
	rel.Providers.Ledger = &spec.Provider{Type: "postgres"}
	h.env.ExecuteWorkflow(WorkflowName, Input{Release: rel})
	events := l.ordered(t)
	var tail []string
	for _, e := range events[len(events)-4:] {
		tail = append(tail, fmt.Sprintf("%s %d %s", e.Kind, e.Step, e.State))
	}
	n := len(rel.Plan)
	want := []string{
		fmt.Sprintf("step %d done", n+1), // all traffic to blue
		fmt.Sprintf("step %d done", n+2), // decommission green
		"outcome 0 ",
	}
	if got := tail[1:]; strings.Join(got, "|") != strings.Join(want, "|") {
		t.Errorf("last events %v, want ... %v", tail, want)
	}
	if e := events[len(events)-1]; e.Outcome != OutcomeRolledBack || !strings.Contains(e.Message, "soak guard failed") {
		t.Errorf("outcome event %+v, want rolled back by the guard", e)
	}
}

// Notifications go out through the outbox in order, each to every notifier,
// and the one asking for approval is delivered while the release waits for
// it, not when the release ends.
func TestNotificationsReachEveryNotifierInOrder(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	rel := testRelease()
	rel.Providers.Notifications = []spec.Provider{{Type: "log"}, {Type: "webhook"}}
	var atGate []string
	h.when(waitingFor("approval"), func() {
		// Let the outbox's activity run before approving.
		h.env.RegisterDelayedCallback(func() {
			atGate = h.w.delivered()
			h.update(UpdateApprove, Decision{By: "alice", Reason: "ok", Via: "test"})
		}, time.Second)
	})
	st := h.run(rel)
	if st.Outcome != OutcomePromoted {
		t.Fatalf("outcome %s (%s)", st.Outcome, st.Reason)
	}
	kinds := []string{"started", "verdict", "approval-needed", OutcomePromoted}
	var want []string
	for _, k := range kinds {
		for _, n := range rel.Providers.Notifications {
			want = append(want, n.Type+":"+k)
		}
	}
	got := h.w.delivered()
	byNotifier := func(notes []string, notifier string) []string {
		var out []string
		for _, n := range notes {
			if strings.HasPrefix(n, notifier+":") {
				out = append(out, n)
			}
		}
		return out
	}
	for _, n := range rel.Providers.Notifications {
		if g, w := byNotifier(got, n.Type), byNotifier(want, n.Type); strings.Join(g, " ") != strings.Join(w, " ") {
			t.Errorf("%s got %v, want %v", n.Type, g, w)
		}
	}
	if !slices.Contains(atGate, "log:approval-needed") || !slices.Contains(atGate, "webhook:approval-needed") {
		t.Errorf("delivered while waiting for approval: %v; want the approval request among them", atGate)
	}
}
