package workflows

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"

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
	mu     sync.Mutex
	events map[string]providers.LedgerEvent
	writes int
}

func (l *ledgerFake) register(h *harness) {
	l.events = map[string]providers.LedgerEvent{}
	h.env.RegisterActivityWithOptions(func(ctx context.Context, in activities.RecordInput) error {
		l.mu.Lock()
		defer l.mu.Unlock()
		l.writes++
		key := fmt.Sprintf("%s/%d", in.Event.Release, in.Event.Seq)
		if _, ok := l.events[key]; !ok {
			l.events[key] = in.Event
		}
		if activity.GetInfo(ctx).Attempt == 1 {
			return errors.New("connection reset after the insert")
		}
		return nil
	}, activity.RegisterOptions{Name: activities.RecordName})
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
