package workflows

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/cutoverhq/cutover/providers"
	"github.com/cutoverhq/cutover/verdict"
)

func TestPreflightRefusalChangesNothing(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	h.w.refuse = "plan[4] (soak at 10% green): 1s is shorter than the 1m0s TTL of the shop.example.com. A records"
	st := h.run(testRelease())
	if st.Outcome != OutcomeFailed {
		t.Fatalf("outcome = %s (%s), want failed", st.Outcome, st.Reason)
	}
	for _, want := range []string{"plan[4] (soak at 10% green)", "route53", "nothing was changed"} {
		if !strings.Contains(st.Reason, want) {
			t.Errorf("reason %q does not say %q", st.Reason, want)
		}
	}
	if calls := h.w.all(); len(calls) != 0 {
		t.Errorf("calls after a refused preflight = %v, want none", calls)
	}
	if st.Weights.Green != 0 || len(st.Rollback) != 0 {
		t.Errorf("weights %+v, rollback steps %d; want blue untouched and nothing to undo", st.Weights, len(st.Rollback))
	}
	for _, s := range st.Steps {
		if s.State != StatePending {
			t.Errorf("step %d (%s) is %s, want pending", s.Index, s.Description, s.State)
		}
	}
}

func TestCancelDuringPreflightIsAnAbort(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	h.w.hangOn = "Preflight"
	h.env.RegisterDelayedCallback(h.env.CancelWorkflow, time.Second)
	h.env.ExecuteWorkflow(WorkflowName, Input{Release: testRelease(), StartedBy: "ci"})
	var st Status
	if err := h.env.GetWorkflowResult(&st); err != nil {
		t.Fatalf("result: %v", err)
	}
	if st.Outcome != OutcomeAborted || st.Reason != cancelledInTemporal {
		t.Fatalf("outcome = %s (%s), want aborted: %s", st.Outcome, st.Reason, cancelledInTemporal)
	}
	if calls := h.w.all(); len(calls) != 0 {
		t.Errorf("calls = %v, want none", calls)
	}
}

func TestPreflightSeesTheWeightsAndHolds(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	h.approveAtGate()
	rel := testRelease()
	if st := h.run(rel); st.Outcome != OutcomePromoted {
		t.Fatalf("outcome = %s (%s), want promoted", st.Outcome, st.Reason)
	}
	in := h.w.preflight
	if in == nil {
		t.Fatal("Preflight was not called")
	}
	if in.App != "shop" || in.Traffic.Type != "memory" {
		t.Errorf("preflight input %+v names the wrong app or providers", in)
	}
	var got []string
	for _, s := range in.Plan {
		got = append(got, fmt.Sprintf("%d %s %d %s", s.Index, s.Kind, s.Green, s.Hold))
	}
	want := []string{"0 provision 0 0s", "1 migrate 0 0s", "2 validate 0 0s", "3 setWeight 10 0s", "4 soak 10 1s",
		"5 setWeight 50 0s", "6 analysis 50 1m0s", "7 approval 50 0s", "8 promote 100 0s", "9 standby 100 0s",
		"10 migrate 100 0s", "11 decommission 100 0s"}
	if !slices.Equal(got, want) {
		t.Errorf("plan as the providers see it:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

// A traffic provider whose changes linger counts from the moment a color's
// weight went to 0, so the decommission is told when that was.
func TestDecommissionKnowsWhenTheColorWentOff(t *testing.T) {
	t.Parallel()
	t.Run("blue after promote", func(t *testing.T) {
		t.Parallel()
		h := newHarness(t)
		h.approveAtGate()
		st := h.run(testRelease())
		promote := st.Steps[stepPromote-1]
		if off := h.w.off[providers.Blue]; off.Before(promote.Started) || off.After(promote.Ended) {
			t.Errorf("blue's Off = %s; want the promote's weight change, between %s and %s", off, promote.Started, promote.Ended)
		}
	})
	t.Run("green after a rollback", func(t *testing.T) {
		t.Parallel()
		h := newHarness(t)
		h.w.guard = verdict.Fail
		st := h.run(testRelease())
		back := st.Rollback[0]
		if off := h.w.off[providers.Green]; off.Before(back.Started) || off.After(back.Ended) {
			t.Errorf("green's Off = %s; want the rollback's weight change, between %s and %s", off, back.Started, back.Ended)
		}
	})
	t.Run("green that never had traffic", func(t *testing.T) {
		t.Parallel()
		h := newHarness(t)
		h.w.failOn = "Validate"
		st := h.run(testRelease())
		if off := h.w.off[providers.Green]; !off.Equal(st.StartedAt) {
			t.Errorf("green's Off = %s; want the release's start %s (it never had traffic)", off, st.StartedAt)
		}
	})
}
