package workflows

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"go.temporal.io/sdk/activity"
	sdklog "go.temporal.io/sdk/log"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/testsuite"
	"go.temporal.io/sdk/workflow"

	"github.com/cutoverhq/cutover/activities"
	"github.com/cutoverhq/cutover/apps"
	"github.com/cutoverhq/cutover/providers"
	"github.com/cutoverhq/cutover/spec"
	"github.com/cutoverhq/cutover/verdict"
)

// world stands in for the providers: it records every activity call as a label
// (Provision, SetWeight:10, Decommission:green, ...), fails the calls it is told
// to, and hangs the call it is told to until the workflow cancels it.
type world struct {
	mu      sync.Mutex
	calls   []string
	failOn  string
	hangOn  string
	verdict verdict.Result
	guard   verdict.Result
	// underpowered makes an Inconclusive guard verdict one that is only short
	// of traffic, and gap one that names a gap in the guard's watch.
	underpowered bool
	gap          bool
	// guardIn is what the last Guard call got.
	guardIn activities.GuardInput
	// unhang lets a hanging call finish normally once closed.
	unhang chan struct{}
	// cancels carries the test environment's cancellations to a blocked call at
	// once; a real worker delivers them with the next heartbeat.
	cancels chan struct{}
	// preflight is what the Preflight call got, and refuse the provider's
	// refusal it answers with; it is not among the calls, which list what
	// touches the world.
	preflight *activities.PreflightInput
	refuse    string
	// off is the Off each Decommission call got, by color.
	off map[providers.Color]time.Time
	// notes is every notification delivered, as "notifier:kind", and
	// batches the NotifyBatch calls.
	notes   []string
	batches int
}

func (w *world) enter(ctx context.Context, label string) error {
	w.mu.Lock()
	w.calls = append(w.calls, label)
	fail, hang := w.failOn == label, w.hangOn == label
	w.mu.Unlock()
	if fail {
		return temporal.NewNonRetryableApplicationError("told to fail "+label, activities.ErrTypeInvalid, nil)
	}
	if hang {
		return w.block(ctx, w.unhang)
	}
	return nil
}

// block waits like a real activity: heartbeating, which is how a cancellation
// reaches it, until cancelled or until release is closed.
func (w *world) block(ctx context.Context, release <-chan struct{}) error {
	t := time.NewTicker(20 * time.Millisecond)
	defer t.Stop()
	for {
		activity.RecordHeartbeat(ctx)
		select {
		case <-ctx.Done():
			return temporal.NewCanceledError()
		case <-w.cancels:
			return temporal.NewCanceledError()
		case <-release:
			return nil
		case <-t.C:
		}
	}
}

func (w *world) mark(label string) {
	w.mu.Lock()
	w.calls = append(w.calls, label)
	w.mu.Unlock()
}

// after returns the calls after the first occurrence of marker.
func (w *world) after(marker string) []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	i := slices.Index(w.calls, marker)
	if i < 0 {
		return nil
	}
	return slices.Clone(w.calls[i+1:])
}

func (w *world) all() []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return slices.Clone(w.calls)
}

func (w *world) register(env *testsuite.TestWorkflowEnvironment) {
	reg := func(name string, fn any) {
		env.RegisterActivityWithOptions(fn, activity.RegisterOptions{Name: name})
	}
	// The real Resolve over a development-mode store: the spec is the release.
	dev, err := apps.NewStore("", apps.Mode{Dev: true}, nil)
	if err != nil {
		panic(err)
	}
	reg(activities.ResolveName, activities.New(nil, nil).WithApps(dev).Resolve)
	reg(activities.ProvisionName, func(ctx context.Context, in activities.StepInput) (providers.Pool, error) {
		return providers.Pool{Color: providers.Green, Version: in.Ref.Version, Instances: []string{"g0", "g1"}}, w.enter(ctx, "Provision")
	})
	reg(activities.MigrateName, func(ctx context.Context, in activities.MigrateInput) (providers.MigrationReport, error) {
		return providers.MigrationReport{Phase: in.Phase, Applied: []string{"001_" + in.Phase}}, w.enter(ctx, "Migrate:"+in.Phase)
	})
	reg(activities.ValidateName, func(ctx context.Context, in activities.ValidateInput) error {
		return w.enter(ctx, "Validate")
	})
	reg(activities.SetWeightName, func(ctx context.Context, in activities.WeightInput) (int, error) {
		return in.Green, w.enter(ctx, fmt.Sprintf("SetWeight:%d", in.Green))
	})
	reg(activities.GuardName, func(ctx context.Context, in activities.GuardInput) (verdict.Verdict, error) {
		if err := w.enter(ctx, "Guard"); err != nil {
			return verdict.Verdict{}, err
		}
		w.mu.Lock()
		w.guardIn = in
		w.mu.Unlock()
		n := int(in.Duration.D() / in.Interval.D())
		switch {
		case w.guard == verdict.Inconclusive && w.gap:
			return verdict.Verdict{Result: w.guard, Summary: "the guard did not watch green all the time", Judged: n - 4, Intervals: n,
				Notes: []string{"missed 4 intervals from 12:00:01 to 12:00:05"}}, nil
		case w.guard == verdict.Inconclusive:
			return verdict.Verdict{Result: w.guard, Summary: "error rate: not enough traffic to see a +0.40 points change", Underpowered: w.underpowered,
				Judged: n, Intervals: n}, nil
		case w.guard != "" && w.guard != verdict.Pass:
			return verdict.Verdict{Result: w.guard, Summary: "error rate 5% above 1%"}, nil
		case in.Duration == 0:
			// A guard of a release recorded before the sequential judge
			// watches until the soak's timer cancels it.
			return verdict.Verdict{}, w.block(ctx, nil)
		}
		// A healthy guard watches until the soak ends (a fraction of a second
		// here, so that tests can act during the soak), then passes it.
		soakOver := make(chan struct{})
		time.AfterFunc(200*time.Millisecond, func() { close(soakOver) })
		if err := w.block(ctx, soakOver); err != nil {
			return verdict.Verdict{}, err
		}
		return verdict.Verdict{Result: verdict.Pass, Summary: "green is within every margin", Judged: n, Intervals: n}, nil
	})
	reg(activities.CompareName, func(ctx context.Context, in activities.CompareInput) (verdict.Verdict, error) {
		v := w.verdict
		if v == "" {
			v = verdict.Pass
		}
		return verdict.Verdict{Result: v, Metrics: []verdict.Metric{{Name: "error-rate", Result: v, Values: []verdict.Value{{Name: "green", Value: 0.01}}}}}, w.enter(ctx, "Compare")
	})
	reg(activities.DecommissionName, func(ctx context.Context, in activities.DecommissionInput) error {
		w.mu.Lock()
		if w.off == nil {
			w.off = map[providers.Color]time.Time{}
		}
		w.off[in.Color] = in.Off
		w.mu.Unlock()
		return w.enter(ctx, "Decommission:"+string(in.Color))
	})
	reg(activities.PreflightName, func(ctx context.Context, in activities.PreflightInput) error {
		if w.hangOn == "Preflight" {
			if err := w.block(ctx, w.unhang); err != nil {
				return err
			}
		}
		w.mu.Lock()
		defer w.mu.Unlock()
		w.preflight = &in
		if w.refuse != "" {
			return temporal.NewNonRetryableApplicationError("preflight: traffic provider route53: "+w.refuse, activities.ErrTypeBadConfig, nil)
		}
		return nil
	})
	reg(activities.NotifyName, func(ctx context.Context, in activities.NotifyInput) error { return nil })
	reg(activities.NotifyBatchName, func(ctx context.Context, in activities.NotifyBatchInput) error {
		w.mu.Lock()
		defer w.mu.Unlock()
		w.batches++
		for _, e := range in.Events {
			w.notes = append(w.notes, in.Notifier.Type+":"+e.Kind)
		}
		return nil
	})
}

func (w *world) delivered() []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return slices.Clone(w.notes)
}

func durationOf(d time.Duration) spec.Duration { return spec.Duration(d) }

// testRelease is the default plan with a soak short enough for the test
// environment: a running guard activity keeps it from skipping time.
func testRelease() spec.Release {
	w := func(n int) *int { return &n }
	mem := spec.Provider{Type: "memory"}
	return spec.Release{
		App: "shop", Version: "1.5.0", PreviousVersion: "1.4.2",
		Providers: spec.Providers{Environment: mem, Traffic: mem, Analysis: mem, Migrations: &mem, Notifications: []spec.Provider{{Type: "log"}}},
		Plan: []spec.Step{
			{Provision: &spec.ProvisionStep{Timeout: durationOf(15 * time.Minute)}},
			{Migrate: &spec.MigrateStep{Phase: spec.PhaseExpand, Timeout: durationOf(30 * time.Minute)}},
			{Validate: &spec.ValidateStep{Timeout: durationOf(5 * time.Minute)}},
			{SetWeight: w(10)},
			{Soak: &spec.SoakStep{Duration: durationOf(time.Second), Interval: durationOf(time.Second)}},
			{SetWeight: w(50)},
			{Analysis: &spec.AnalysisStep{Window: durationOf(time.Minute), OnInconclusive: spec.ActionPause}},
			{Approval: &spec.ApprovalStep{Timeout: durationOf(time.Hour), OnTimeout: spec.ActionRollback}},
			{Promote: &spec.PromoteStep{}},
			{Standby: &spec.StandbyStep{Duration: durationOf(15 * time.Minute)}},
			{Migrate: &spec.MigrateStep{Phase: spec.PhaseContract, Timeout: durationOf(30 * time.Minute)}},
			{Decommission: &spec.DecommissionStep{Timeout: durationOf(15 * time.Minute)}},
		},
	}
}

// Plan step numbers (1-based) of testRelease.
const (
	stepProvision = iota + 1
	stepExpand
	stepValidate
	stepWeight10
	stepSoak
	stepWeight50
	stepAnalysis
	stepApproval
	stepPromote
	stepStandby
	stepContract
	stepDecommission
)

var happyCalls = []string{"Provision", "Migrate:expand", "Validate", "SetWeight:10", "Guard", "SetWeight:50", "Compare", "SetWeight:100", "Migrate:contract", "Decommission:blue"}

type harness struct {
	t   *testing.T
	env *testsuite.TestWorkflowEnvironment
	w   *world
}

func newHarness(t *testing.T) *harness {
	var s testsuite.WorkflowTestSuite
	s.SetLogger(sdklog.NewStructuredLogger(slog.New(slog.NewTextHandler(io.Discard, nil))))
	env := s.NewTestWorkflowEnvironment()
	env.RegisterWorkflowWithOptions(Release, workflow.RegisterOptions{Name: WorkflowName})
	env.SetTestTimeout(30 * time.Second)
	h := &harness{t: t, env: env, w: &world{unhang: make(chan struct{}), cancels: make(chan struct{}, 16)}}
	h.w.register(env)
	env.SetOnActivityCanceledListener(func(*activity.Info) { h.w.cancels <- struct{}{} })
	return h
}

func (h *harness) status() Status {
	v, err := h.env.QueryWorkflow(QueryStatus)
	if err != nil {
		h.t.Fatalf("query status: %v", err)
	}
	var st Status
	if err := v.Get(&st); err != nil {
		h.t.Fatalf("decode status: %v", err)
	}
	return st
}

// when polls the status every 100ms of workflow time and calls fn once cond
// holds. Polling in workflow time works both while timers are skipped and while
// an activity runs.
func (h *harness) when(cond func(Status) bool, fn func()) {
	var poll func()
	poll = func() {
		if cond(h.status()) {
			fn()
			return
		}
		h.env.RegisterDelayedCallback(poll, 100*time.Millisecond)
	}
	h.env.RegisterDelayedCallback(poll, 10*time.Millisecond)
}

// update sends an update and returns its answer or rejection through the
// returned function, which the test calls after the run.
func (h *harness) update(name string, d Decision) func() (string, error) {
	var msg string
	var err error
	done := false
	h.env.UpdateWorkflow(name, "", &testsuite.TestUpdateCallback{
		OnAccept: func() {},
		OnReject: func(e error) { err, done = e, true },
		OnComplete: func(v any, e error) {
			if s, ok := v.(string); ok {
				msg = s
			}
			err, done = e, true
		},
	}, d)
	return func() (string, error) {
		if !done {
			h.t.Fatalf("%s update got no answer", name)
		}
		return msg, err
	}
}

func atStep(n int) func(Status) bool { return func(st Status) bool { return st.Step == n } }

func waitingFor(what string) func(Status) bool {
	return func(st Status) bool { return st.Waiting == what }
}

func (h *harness) approveAtGate() {
	h.when(waitingFor("approval"), func() { h.update(UpdateApprove, Decision{By: "alice", Reason: "numbers look good", Via: "test"}) })
}

func (h *harness) run(rel spec.Release) Status {
	h.env.ExecuteWorkflow(WorkflowName, Input{Release: rel, StartedBy: "ci"})
	if !h.env.IsWorkflowCompleted() {
		h.t.Fatal("workflow did not complete")
	}
	if err := h.env.GetWorkflowError(); err != nil {
		h.t.Fatalf("workflow failed: %v", err)
	}
	var st Status
	if err := h.env.GetWorkflowResult(&st); err != nil {
		h.t.Fatalf("result: %v", err)
	}
	return st
}

func TestHappyPathPromotes(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	h.approveAtGate()
	st := h.run(testRelease())

	if st.Outcome != OutcomePromoted {
		t.Fatalf("outcome = %s (%s), want promoted", st.Outcome, st.Reason)
	}
	if got := h.w.all(); !slices.Equal(got, happyCalls) {
		t.Errorf("calls = %v\nwant %v", got, happyCalls)
	}
	if st.Weights != (Weights{Blue: 0, Green: 100}) {
		t.Errorf("weights = %+v, want all on green", st.Weights)
	}
	if a := st.LastApproval(); a == nil || a.By != "alice" || a.Step != stepApproval {
		t.Errorf("approval = %+v, want alice at the approval step", a)
	}
	for _, s := range st.Steps {
		if s.State != StateDone || s.Started.IsZero() || s.Ended.IsZero() {
			t.Errorf("step %d %s: state %s, started %v, ended %v", s.Index, s.Kind, s.State, s.Started, s.Ended)
		}
	}
	if got := st.Steps[stepStandby-1].Duration(time.Time{}); got != 15*time.Minute {
		t.Errorf("standby took %s, want 15m", got)
	}
}

func TestApprovalTimeoutRollsBack(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	st := h.run(testRelease())

	if st.Outcome != OutcomeRolledBack || !strings.Contains(st.Reason, "no approval within 1h0m0s") {
		t.Fatalf("outcome = %s (%s), want rolled back for the timeout", st.Outcome, st.Reason)
	}
	want := []string{"Provision", "Migrate:expand", "Validate", "SetWeight:10", "Guard", "SetWeight:50", "Compare", "SetWeight:0", "Decommission:green"}
	if got := h.w.all(); !slices.Equal(got, want) {
		t.Errorf("calls = %v\nwant %v", got, want)
	}
	if st.Weights != (Weights{Blue: 100}) {
		t.Errorf("weights = %+v, want all on blue", st.Weights)
	}
}

func TestApprovalTimeoutMayContinue(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	rel := testRelease()
	rel.Plan[stepApproval-1].Approval.OnTimeout = spec.ActionContinue
	st := h.run(rel)
	if st.Outcome != OutcomePromoted {
		t.Fatalf("outcome = %s (%s), want promoted", st.Outcome, st.Reason)
	}
}

// undoCalls is what a rollback must do, in order, given how far the release got:
// traffic back to blue first, then green removed.
func undoCalls(trafficMoved bool) []string {
	if trafficMoved {
		return []string{"SetWeight:0", "Decommission:green"}
	}
	return []string{"Decommission:green"}
}

// hangLabel is the activity call of a plan step, which the abort test holds open
// so that the abort lands while the step is under way.
var hangLabel = map[int]string{
	stepProvision: "Provision",
	stepExpand:    "Migrate:expand",
	stepValidate:  "Validate",
	stepWeight10:  "SetWeight:10",
	stepWeight50:  "SetWeight:50",
	stepAnalysis:  "Compare",
	stepPromote:   "SetWeight:100",
}

func TestAbortAtEveryStageSendsTrafficToBlueFirst(t *testing.T) {
	t.Parallel()
	for step := stepProvision; step <= stepStandby; step++ {
		t.Run(fmt.Sprintf("step%d", step), func(t *testing.T) {
			t.Parallel()
			h := newHarness(t)
			h.w.hangOn = hangLabel[step]
			if step > stepApproval {
				h.approveAtGate()
			}
			var answer func() (string, error)
			h.when(atStep(step), func() {
				h.w.mark("ABORT")
				answer = h.update(UpdateAbort, Decision{By: "bob", Reason: "customer reports", Via: "test"})
			})
			st := h.run(testRelease())

			if st.Outcome != OutcomeAborted || !strings.Contains(st.Reason, "customer reports") {
				t.Fatalf("outcome = %s (%s), want aborted", st.Outcome, st.Reason)
			}
			if msg, err := answer(); err != nil || !strings.Contains(msg, "back on blue") {
				t.Errorf("abort answered %q, %v; want traffic back on blue", msg, err)
			}
			moved := step >= stepWeight10
			if got, want := h.w.after("ABORT"), undoCalls(moved); !slices.Equal(got, want) {
				t.Errorf("calls after abort = %v, want %v", got, want)
			}
			if st.Weights != (Weights{Blue: 100}) {
				t.Errorf("weights = %+v, want all on blue", st.Weights)
			}
			if got := st.Steps[step-1].State; got != StateCancelled {
				t.Errorf("step %d state = %s, want cancelled", step, got)
			}
			if slices.Contains(h.w.all(), "Migrate:contract") {
				t.Error("contract migration ran on a rollback path")
			}
		})
	}
}

func TestAbortAfterStandbyIsRefused(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	h.approveAtGate()
	h.w.hangOn = "Migrate:contract"
	var abort, rollback func() (string, error)
	h.when(atStep(stepContract), func() {
		abort = h.update(UpdateAbort, Decision{By: "bob", Reason: "late"})
		rollback = h.update(UpdateRollback, Decision{By: "bob"})
		close(h.w.unhang)
	})
	st := h.run(testRelease())
	if st.Outcome != OutcomePromoted {
		t.Fatalf("outcome = %s (%s), want promoted", st.Outcome, st.Reason)
	}
	for _, answer := range []func() (string, error){abort, rollback} {
		if _, err := answer(); err == nil || !strings.Contains(err.Error(), "standby window has closed") {
			t.Errorf("after standby: %v, want refused", err)
		}
	}
}

func TestPermanentFailureAtEveryStepCompensates(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		label string
		moved bool
	}{
		{"Provision", false}, {"Migrate:expand", false}, {"Validate", false},
		{"SetWeight:10", true}, {"SetWeight:50", true}, {"Compare", true}, {"SetWeight:100", true},
	} {
		t.Run(c.label, func(t *testing.T) {
			t.Parallel()
			h := newHarness(t)
			h.approveAtGate()
			h.w.failOn = c.label
			st := h.run(testRelease())
			if st.Outcome != OutcomeRolledBack || !strings.Contains(st.Reason, "told to fail "+c.label) {
				t.Fatalf("outcome = %s (%s), want rolled back naming the failure", st.Outcome, st.Reason)
			}
			if got, want := h.w.after(c.label), undoCalls(c.moved); !slices.Equal(got, want) {
				t.Errorf("calls after the failure = %v, want %v", got, want)
			}
			if st.Weights != (Weights{Blue: 100}) {
				t.Errorf("weights = %+v, want all on blue", st.Weights)
			}
		})
	}
	// Past the standby window nothing rolls back: the release fails loudly and
	// leaves traffic on green.
	for _, label := range []string{"Migrate:contract", "Decommission:blue"} {
		t.Run(label, func(t *testing.T) {
			t.Parallel()
			h := newHarness(t)
			h.approveAtGate()
			h.w.failOn = label
			st := h.run(testRelease())
			if st.Outcome != OutcomeFailed || !strings.Contains(st.Reason, "told to fail") {
				t.Fatalf("outcome = %s (%s), want failed", st.Outcome, st.Reason)
			}
			if got := h.w.after(label); len(got) != 0 {
				t.Errorf("calls after the failure = %v, want none", got)
			}
			if st.Weights.Green != 100 {
				t.Errorf("weights = %+v, want green kept", st.Weights)
			}
		})
	}
}

func TestGuardBreachRollsBack(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	h.w.guard = verdict.Fail
	st := h.run(testRelease())
	if st.Outcome != OutcomeRolledBack || !strings.Contains(st.Reason, "soak guard failed") {
		t.Fatalf("outcome = %s (%s), want rolled back by the guard", st.Outcome, st.Reason)
	}
	if got, want := h.w.after("Guard"), undoCalls(true); !slices.Equal(got, want) {
		t.Errorf("calls after the guard = %v, want %v", got, want)
	}
	if st.LastVerdict == nil || st.LastVerdict.Result != verdict.Fail {
		t.Errorf("last verdict = %+v, want the guard's Fail", st.LastVerdict)
	}
}

func TestGuardGetsTheSoak(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	rel := testRelease()
	rel.Plan[stepSoak-1].Soak.Extend = durationOf(time.Minute)
	h.approveAtGate()
	st := h.run(rel)
	if st.Outcome != OutcomePromoted {
		t.Fatalf("outcome = %s (%s), want promoted", st.Outcome, st.Reason)
	}
	in := h.w.guardIn
	if in.Duration.D() != time.Second || in.Extend.D() != time.Minute || in.Start.IsZero() {
		t.Errorf("guard input = %+v, want the soak's duration, extension and start", in)
	}
	if d := st.Steps[stepSoak-1].Detail; !strings.Contains(d, "guard judged 1 of 1 intervals; Pass") {
		t.Errorf("soak step detail = %q, want the guard's coverage and verdict", d)
	}
}

func TestInconclusiveSoak(t *testing.T) {
	t.Parallel()
	soakWith := func(onInconclusive string) spec.Release {
		rel := testRelease()
		rel.Plan[stepSoak-1].Soak.OnInconclusive = onInconclusive
		return rel
	}
	t.Run("too little traffic with continue goes on", func(t *testing.T) {
		t.Parallel()
		h := newHarness(t)
		h.w.guard, h.w.underpowered = verdict.Inconclusive, true
		h.approveAtGate()
		st := h.run(soakWith(spec.ActionContinue))
		if st.Outcome != OutcomePromoted {
			t.Fatalf("outcome = %s (%s), want promoted", st.Outcome, st.Reason)
		}
		if d := st.Steps[stepSoak-1].Detail; !strings.Contains(d, "not enough traffic") || !strings.Contains(d, "continuing as the plan says") {
			t.Errorf("soak step detail = %q, want the reason and that it continued", d)
		}
	})
	t.Run("a gap with continue still waits for a person", func(t *testing.T) {
		t.Parallel()
		h := newHarness(t)
		h.w.guard, h.w.gap = verdict.Inconclusive, true
		var seen Status
		h.when(waitingFor("a decision on an inconclusive soak guard"), func() {
			seen = h.status()
			h.update(UpdateAbort, Decision{By: "carol", Reason: "guard was blind"})
		})
		st := h.run(soakWith(spec.ActionContinue))
		if st.Outcome != OutcomeAborted {
			t.Fatalf("outcome = %s (%s), want aborted by the person", st.Outcome, st.Reason)
		}
		if seen.Weights.Green != 10 {
			t.Errorf("while waiting: %s, want held at 10%% green", seen.Weights)
		}
	})
	t.Run("too little traffic without continue waits for a person", func(t *testing.T) {
		t.Parallel()
		h := newHarness(t)
		h.w.guard, h.w.underpowered = verdict.Inconclusive, true
		h.when(waitingFor("a decision on an inconclusive soak guard"), func() {
			h.update(UpdateApprove, Decision{By: "carol", Reason: "enough"})
			h.approveAtGate()
		})
		if st := h.run(testRelease()); st.Outcome != OutcomePromoted {
			t.Fatalf("outcome = %s (%s), want promoted after the person approved", st.Outcome, st.Reason)
		}
	})
	t.Run("rollback rolls back", func(t *testing.T) {
		t.Parallel()
		h := newHarness(t)
		h.w.guard, h.w.underpowered = verdict.Inconclusive, true
		st := h.run(soakWith(spec.ActionRollback))
		if st.Outcome != OutcomeRolledBack || !strings.Contains(st.Reason, "soak guard inconclusive") {
			t.Fatalf("outcome = %s (%s), want rolled back", st.Outcome, st.Reason)
		}
	})
}

func TestFailedComparisonRollsBackWithItsNumbers(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	h.w.verdict = verdict.Fail
	st := h.run(testRelease())
	if st.Outcome != OutcomeRolledBack || !strings.Contains(st.Reason, "analysis failed: ") {
		t.Fatalf("outcome = %s (%s), want rolled back by the analysis", st.Outcome, st.Reason)
	}
	if v := st.LastVerdict; v == nil || !strings.Contains(v.String(), "error-rate Fail green=0.01") {
		t.Fatalf("last verdict = %v, want the comparison with its numbers", v)
	}
}

func TestInconclusiveComparisonWaitsForAPerson(t *testing.T) {
	t.Parallel()
	t.Run("approve goes on", func(t *testing.T) {
		t.Parallel()
		h := newHarness(t)
		h.w.verdict = verdict.Inconclusive
		var seen Status
		h.when(waitingFor("a decision on an inconclusive analysis"), func() {
			seen = h.status()
			h.update(UpdateApprove, Decision{By: "carol", Reason: "checked dashboards"})
			h.approveAtGate()
		})
		st := h.run(testRelease())
		if seen.Step != stepAnalysis || seen.Weights.Green != 50 {
			t.Errorf("held at step %d with %+v, want the analysis step at 50%%", seen.Step, seen.Weights)
		}
		if st.Outcome != OutcomePromoted {
			t.Fatalf("outcome = %s (%s), want promoted", st.Outcome, st.Reason)
		}
	})
	t.Run("abort rolls back", func(t *testing.T) {
		t.Parallel()
		h := newHarness(t)
		h.w.verdict = verdict.Inconclusive
		h.when(waitingFor("a decision on an inconclusive analysis"), func() {
			h.update(UpdateAbort, Decision{By: "carol", Reason: "no data"})
		})
		st := h.run(testRelease())
		if st.Outcome != OutcomeAborted {
			t.Fatalf("outcome = %s (%s), want aborted", st.Outcome, st.Reason)
		}
	})
	t.Run("spec says rollback", func(t *testing.T) {
		t.Parallel()
		h := newHarness(t)
		h.w.verdict = verdict.Inconclusive
		rel := testRelease()
		rel.Plan[stepAnalysis-1].Analysis.OnInconclusive = spec.ActionRollback
		st := h.run(rel)
		if st.Outcome != OutcomeRolledBack || !strings.Contains(st.Reason, "inconclusive") {
			t.Fatalf("outcome = %s (%s), want rolled back", st.Outcome, st.Reason)
		}
	})
}

func TestSelfApprovalNeedsTheSpecsConsent(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ startedBy, by string }{{"alice", "alice"}, {"alice (GitHub Actions run 7)", "Alice"}} {
		if !selfApproval(tc.startedBy, tc.by) {
			t.Errorf("selfApproval(%q, %q) = false", tc.startedBy, tc.by)
		}
	}
	if selfApproval("alice", "alicia") || selfApproval("", "") {
		t.Error("a different approver counted as the starter")
	}
	h := newHarness(t)
	rel := testRelease()
	rel.AllowSelfApproval = true
	var ok func() (string, error)
	h.when(waitingFor("approval"), func() { ok = h.update(UpdateApprove, Decision{By: "ci"}) })
	if st := h.run(rel); st.Outcome != OutcomePromoted {
		t.Fatalf("outcome %s (%s), want promoted on the starter's own approval", st.Outcome, st.Reason)
	}
	if _, err := ok(); err != nil {
		t.Errorf("self-approval with allowSelfApproval: %v", err)
	}
}

func TestApproveOutOfPhaseOrTwiceIsRejected(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	var early, anonymous, second, noReason func() (string, error)
	h.when(atStep(stepSoak), func() {
		early = h.update(UpdateApprove, Decision{By: "alice"})
		noReason = h.update(UpdateAbort, Decision{By: "alice"})
	})
	var self func() (string, error)
	h.when(waitingFor("approval"), func() {
		anonymous = h.update(UpdateApprove, Decision{})
		self = h.update(UpdateApprove, Decision{By: "CI"})
		h.update(UpdateApprove, Decision{By: "alice"})
		second = h.update(UpdateApprove, Decision{By: "dave"})
	})
	st := h.run(testRelease())
	if st.Outcome != OutcomePromoted {
		t.Fatalf("outcome = %s (%s), want promoted", st.Outcome, st.Reason)
	}
	for name, c := range map[string]struct {
		answer func() (string, error)
		want   string
	}{
		"approve during soak":    {early, "no approval is pending: the release is at step 5 (soak)"},
		"abort without reason":   {noReason, "abort needs a reason"},
		"approve without who":    {anonymous, "approve needs who approves"},
		"approve by the starter": {self, "CI started this release and may not approve it too"},
		"second approve":         {second, "already approved by alice at step 8"},
	} {
		if _, err := c.answer(); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: got %v, want rejection %q", name, err, c.want)
		}
	}
	if n := len(st.Decisions); n != 1 {
		t.Errorf("decisions = %+v, want only alice's approval", st.Decisions)
	}
}

func TestPauseHoldsBeforeTheNextStepUntilResumed(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	var held Status
	var callsWhileHeld []string
	h.when(atStep(stepSoak), func() { h.update(UpdatePause, Decision{By: "erin", Reason: "lunch"}) })
	h.when(func(st Status) bool { return st.Paused && st.Waiting == "resume" }, func() {
		held = h.status()
		callsWhileHeld = h.w.all()
		// An hour later, still held; then resume.
		h.env.RegisterDelayedCallback(func() {
			if st := h.status(); !st.Paused || st.Step != stepSoak {
				t.Errorf("after an hour: paused=%v step=%d, want still held after the soak", st.Paused, st.Step)
			}
			h.update(UpdateResume, Decision{By: "erin"})
			h.approveAtGate()
		}, time.Hour)
	})
	st := h.run(testRelease())
	if st.Outcome != OutcomePromoted {
		t.Fatalf("outcome = %s (%s), want promoted", st.Outcome, st.Reason)
	}
	if held.Step != stepSoak || held.Weights.Green != 10 {
		t.Errorf("held at step %d with %+v, want after the soak at 10%%", held.Step, held.Weights)
	}
	if slices.Contains(callsWhileHeld, "SetWeight:50") {
		t.Errorf("calls while paused = %v: the next step ran", callsWhileHeld)
	}
}

func TestPauseStepWaitsForResume(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	rel := testRelease()
	rel.Plan = slices.Insert(rel.Plan, stepWeight50-1, spec.Step{Pause: &spec.PauseStep{}})
	h.when(waitingFor("resume"), func() {
		h.env.RegisterDelayedCallback(func() {
			h.update(UpdateResume, Decision{By: "erin"})
			h.approveAtGate()
		}, 3*time.Hour)
	})
	st := h.run(rel)
	if st.Outcome != OutcomePromoted {
		t.Fatalf("outcome = %s (%s), want promoted", st.Outcome, st.Reason)
	}
	if got := st.Steps[stepWeight50-1].Duration(time.Time{}); got < 3*time.Hour {
		t.Errorf("pause step took %s, want until resumed after 3h", got)
	}
}

func TestRollbackDuringStandbyReturnsTrafficToBlue(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	h.approveAtGate()
	var answer func() (string, error)
	h.when(atStep(stepStandby), func() {
		h.w.mark("ROLLBACK")
		answer = h.update(UpdateRollback, Decision{By: "frank", Reason: "latency alert"})
	})
	st := h.run(testRelease())
	if st.Outcome != OutcomeRolledBack || !strings.Contains(st.Reason, "latency alert") {
		t.Fatalf("outcome = %s (%s), want rolled back", st.Outcome, st.Reason)
	}
	if msg, err := answer(); err != nil || !strings.Contains(msg, "back on blue") {
		t.Errorf("rollback answered %q, %v", msg, err)
	}
	if got, want := h.w.after("ROLLBACK"), undoCalls(true); !slices.Equal(got, want) {
		t.Errorf("calls after rollback = %v, want %v", got, want)
	}
}

func TestCancellingTheWorkflowAbortsAndRollsBack(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	h.when(waitingFor("approval"), func() { h.w.mark("CANCEL"); h.env.CancelWorkflow() })
	st := h.run(testRelease())
	if st.Outcome != OutcomeAborted || !strings.Contains(st.Reason, "cancelled in Temporal") {
		t.Fatalf("outcome = %s (%s), want aborted", st.Outcome, st.Reason)
	}
	if got, want := h.w.after("CANCEL"), undoCalls(true); !slices.Equal(got, want) {
		t.Errorf("calls after cancel = %v, want %v", got, want)
	}
}

func TestSignalsActLikeUpdates(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	h.when(waitingFor("approval"), func() {
		h.env.SignalWorkflow(UpdateApprove, Decision{}) // refused: no one named
		h.env.SignalWorkflow(UpdateApprove, Decision{By: "gina", Via: "ui"})
	})
	st := h.run(testRelease())
	if st.Outcome != OutcomePromoted {
		t.Fatalf("outcome = %s (%s), want promoted", st.Outcome, st.Reason)
	}
	if a := st.LastApproval(); a == nil || a.By != "gina" || len(st.Decisions) != 1 {
		t.Errorf("decisions = %+v, want gina's approval only", st.Decisions)
	}
}

func TestInvalidInputFailsBeforeAnything(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	rel := testRelease()
	rel.App = ""
	h.env.ExecuteWorkflow(WorkflowName, Input{Release: rel})
	var st Status
	if err := h.env.GetWorkflowResult(&st); err != nil {
		t.Fatal(err)
	}
	if st.Outcome != OutcomeFailed || !strings.Contains(st.Reason, "app: required") || !strings.Contains(st.Reason, "nothing was changed") {
		t.Fatalf("outcome %s (%s), want failed naming the spec problem", st.Outcome, st.Reason)
	}
	if calls := h.w.all(); len(calls) != 0 {
		t.Errorf("calls = %v, want none", calls)
	}
}
