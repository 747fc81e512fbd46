package workflows

import (
	"fmt"
	"strings"
	"time"

	"go.temporal.io/sdk/workflow"

	"github.com/cutoverhq/cutover/activities"
	"github.com/cutoverhq/cutover/providers"
	"github.com/cutoverhq/cutover/spec"
	"github.com/cutoverhq/cutover/verdict"
)

// errRollback is a step's decision that the release must roll back: a failed
// check, a failed comparison, an approval that timed out.
type errRollback struct{ reason string }

func (e errRollback) Error() string { return e.reason }

// execute carries out one step.
func (r *release) execute(ctx workflow.Context, s spec.Step) (stepResult, error) {
	p := r.in.Release.Providers
	switch {
	case s.Provision != nil:
		r.greenStarted = true
		var pool providers.Pool
		err := workflow.ExecuteActivity(stepOptions(ctx, s.Provision.Timeout.D(), "provision green "+r.ref.Version),
			activities.ProvisionName, activities.StepInput{Ref: r.ref, Provider: p.Environment}).Get(ctx, &pool)
		if err != nil {
			return stepResult{}, err
		}
		r.st.Green = &pool
		return stepResult{detail: fmt.Sprintf("%d instances", len(pool.Instances))}, nil

	case s.Migrate != nil:
		if s.Migrate.Phase == spec.PhaseContract {
			r.noReturn = true
		}
		if p.Migrations == nil {
			return stepResult{detail: "no migrations provider in the spec", skipped: true}, nil
		}
		var rep providers.MigrationReport
		err := workflow.ExecuteActivity(stepOptions(ctx, s.Migrate.Timeout.D(), "migrate ("+s.Migrate.Phase+")"),
			activities.MigrateName, activities.MigrateInput{StepInput: activities.StepInput{Ref: r.ref, Provider: *p.Migrations}, Phase: s.Migrate.Phase}).Get(ctx, &rep)
		if err != nil {
			return stepResult{}, err
		}
		return stepResult{detail: migrationLine(rep)}, nil

	case s.Validate != nil:
		err := workflow.ExecuteActivity(stepOptions(ctx, s.Validate.Timeout.D(), s.Describe()),
			activities.ValidateName, activities.ValidateInput{StepInput: activities.StepInput{Ref: r.ref, Provider: p.Environment}, Smoke: s.Validate.Smoke}).Get(ctx, nil)
		return stepResult{}, err

	case s.SetWeight != nil:
		if err := r.setWeight(weightOptions(ctx, s.Describe()), *s.SetWeight); err != nil {
			return stepResult{}, err
		}
		return stepResult{detail: "traffic: " + r.st.Weights.String()}, nil

	case s.Soak != nil:
		return r.soak(ctx, s.Soak)

	case s.Pause != nil:
		return stepResult{}, r.pauseStep(ctx, s.Pause.Duration.D())

	case s.Analysis != nil:
		return r.analyze(ctx, s.Analysis)

	case s.Approval != nil:
		return r.approval(ctx, s.Approval)

	case s.Promote != nil:
		if err := r.setWeight(weightOptions(ctx, "promote green to 100%"), 100); err != nil {
			return stepResult{}, err
		}
		return stepResult{detail: "traffic: " + r.st.Weights.String() + "; blue stays warm for rollback"}, nil

	case s.Standby != nil:
		d := s.Standby.Duration.D()
		err := workflow.NewTimerWithOptions(ctx, d, workflow.TimerOptions{Summary: "standby " + d.String() + ": rollback returns traffic to blue at once"}).Get(ctx, nil)
		if err != nil {
			return stepResult{}, err
		}
		r.noReturn = true
		return stepResult{}, nil

	case s.Decommission != nil:
		r.noReturn = true
		return stepResult{}, r.decommission(stepOptions(ctx, s.Decommission.Timeout.D(), "decommission blue"), providers.Blue, s.Decommission.Timeout.D()/2)
	}
	return stepResult{}, fmt.Errorf("step has no kind")
}

// migrationLine says what a migration step did, waivers included: they are on
// record in the status and the ledger.
func migrationLine(rep providers.MigrationReport) string {
	line := "nothing to apply"
	if len(rep.Applied) > 0 {
		line = "applied " + strings.Join(rep.Applied, ", ")
	}
	if len(rep.Already) > 0 {
		line += fmt.Sprintf(" (%d applied before)", len(rep.Already))
	}
	if len(rep.Waived) > 0 {
		line += "; waived: " + strings.Join(rep.Waived, "; ")
	}
	return line
}

// setWeight moves traffic and records the split the provider read back.
func (r *release) setWeight(ctx workflow.Context, green int) error {
	r.trafficTouched = true
	var got int
	err := workflow.ExecuteActivity(ctx, activities.SetWeightName,
		activities.WeightInput{App: r.ref.App, Provider: r.in.Release.Providers.Traffic, Green: green, Ref: r.ref}).Get(ctx, &got)
	if err != nil {
		return err
	}
	prev := r.st.Weights.Green
	r.st.Weights = Weights{Blue: 100 - got, Green: got}
	if prev > 0 && got == 0 {
		r.greenOff = workflow.Now(ctx)
	}
	if prev < 100 && got == 100 {
		r.blueOff = workflow.Now(ctx)
	}
	r.recordWeight(ctx)
	return nil
}

// decommission drains a color's pool for up to drain, then stops it.
func (r *release) decommission(ctx workflow.Context, c providers.Color, drain time.Duration) error {
	return workflow.ExecuteActivity(ctx, activities.DecommissionName, activities.DecommissionInput{
		StepInput: activities.StepInput{Ref: r.ref, Provider: r.in.Release.Providers.Environment},
		Traffic:   r.in.Release.Providers.Traffic,
		Color:     c,
		Drain:     spec.Duration(drain),
		Off:       r.off(c),
	}).Get(ctx, nil)
}

// off is when the color's weight last went to 0.
func (r *release) off(c providers.Color) time.Time {
	if c == providers.Blue {
		return r.blueOff
	}
	return r.greenOff
}

// sequentialJudge is the workflow change from which the guard ends a soak by
// itself (so that it can extend the soak for power and report how many
// intervals it judged) and a comparison can stop as soon as it is decided.
// Releases recorded before it keep the timed soak of soakTimed.
const sequentialJudge = "sequential-judge"

func (r *release) judgeVersion(ctx workflow.Context) workflow.Version {
	if r.lean {
		return 1
	}
	return workflow.GetVersion(ctx, sequentialJudge, workflow.DefaultVersion, 1)
}

// soak holds the weights while the guard judges green every interval. The
// guard returns at once when green fails, and otherwise at the end of the
// soak with its verdict for the whole soak; a worker dying mid-soak loses
// nothing: the guard is retried on another worker and goes on from the
// evidence in its last heartbeat.
func (r *release) soak(ctx workflow.Context, s *spec.SoakStep) (stepResult, error) {
	if r.judgeVersion(ctx) == workflow.DefaultVersion {
		return r.soakTimed(ctx, s)
	}
	d, ext := s.Duration.D(), s.Extend.D()
	summary := fmt.Sprintf("guard green every %s for %s at %d%% green", s.Interval, d, r.st.Weights.Green)
	var v verdict.Verdict
	err := workflow.ExecuteActivity(guardOptions(ctx, d+ext, summary), activities.GuardName, activities.GuardInput{
		StepInput: activities.StepInput{Ref: r.ref, Provider: r.in.Release.Providers.Analysis},
		Interval:  s.Interval,
		Start:     workflow.Now(ctx),
		Duration:  s.Duration,
		Extend:    s.Extend,
	}).Get(ctx, &v)
	if err != nil {
		if ctx.Err() != nil {
			return stepResult{}, err
		}
		return stepResult{}, errRollback{"soak guard could not watch green: " + errorText(err)}
	}
	r.st.LastVerdict = &v
	r.publish(ctx)
	r.enterVerdict(ctx, "soak guard", v)
	detail := fmt.Sprintf("%s: %s", v.Result, brief(v))
	if v.Intervals > 0 {
		detail = fmt.Sprintf("guard judged %d of %d intervals; %s", v.Judged, v.Intervals, detail)
	}
	onInconclusive := s.OnInconclusive
	if onInconclusive == spec.ActionContinue {
		if v.Result == verdict.Inconclusive && v.Underpowered {
			return stepResult{detail: detail + "; nothing failed, continuing as the plan says"}, nil
		}
		// A gap in the guard's watch or data it could not use is not a lack
		// of traffic: a person decides.
		onInconclusive = spec.ActionPause
	}
	return stepResult{detail: detail}, r.judge(ctx, "soak guard", v, onInconclusive)
}

// soakTimed is the soak of releases recorded before sequentialJudge: a durable
// timer holds the weights while the guard checks green every interval, and
// the guard is cancelled when the timer fires.
func (r *release) soakTimed(ctx workflow.Context, s *spec.SoakStep) (stepResult, error) {
	d := s.Duration.D()
	guardCtx, stopGuard := workflow.WithCancel(ctx)
	defer stopGuard()
	guard := workflow.ExecuteActivity(guardOptions(guardCtx, d, fmt.Sprintf("guard green every %s", s.Interval)),
		activities.GuardName, activities.GuardInput{
			StepInput: activities.StepInput{Ref: r.ref, Provider: r.in.Release.Providers.Analysis},
			Interval:  s.Interval,
		})
	timer := workflow.NewTimerWithOptions(ctx, d, workflow.TimerOptions{
		Summary: fmt.Sprintf("soak %s at %d%% green", d, r.st.Weights.Green),
	})

	var res stepResult
	var err error
	sel := workflow.NewSelector(ctx)
	sel.AddFuture(timer, func(f workflow.Future) {
		err = f.Get(ctx, nil)
		res.detail = "guard saw no breach"
	})
	sel.AddFuture(guard, func(f workflow.Future) {
		var v verdict.Verdict
		if gerr := f.Get(ctx, &v); gerr != nil {
			err = gerr
			if ctx.Err() == nil {
				err = errRollback{"soak guard could not watch green: " + errorText(gerr)}
			}
			return
		}
		r.st.LastVerdict = &v
		r.publish(ctx)
		r.enterVerdict(ctx, "soak guard", v)
		err = r.judge(ctx, "soak guard", v, s.OnInconclusive)
	})
	sel.Select(ctx)
	return res, err
}

// analyze compares blue and green and acts on the verdict.
func (r *release) analyze(ctx workflow.Context, s *spec.AnalysisStep) (stepResult, error) {
	var v verdict.Verdict
	in := activities.CompareInput{
		StepInput: activities.StepInput{Ref: r.ref, Provider: r.in.Release.Providers.Analysis},
		Window:    s.Window,
	}
	timeout := s.Window.D() + 2*time.Minute
	if r.judgeVersion(ctx) != workflow.DefaultVersion {
		in.Start, in.EarlyStop = workflow.Now(ctx), s.EarlyStop
		// Sources whose data arrive late (CloudWatch) read on after the window.
		timeout = s.Window.D() + 5*time.Minute
	}
	opts := stepOptions(ctx, timeout, fmt.Sprintf("compare blue vs green over %s", s.Window))
	err := workflow.ExecuteActivity(opts, activities.CompareName, in).Get(ctx, &v)
	if err != nil {
		return stepResult{}, err
	}
	r.st.LastVerdict = &v
	r.publish(ctx)
	r.notify(ctx, "verdict", fmt.Sprintf("%s: comparison %s", r.summary(), v))
	r.enterVerdict(ctx, "analysis", v)
	// The numbers are in the verdict (status, UI, notifications); the step
	// line stays readable.
	return stepResult{detail: string(v.Result) + ": " + brief(v)}, r.judge(ctx, "analysis", v, s.OnInconclusive)
}

// judge acts on a verdict: Pass goes on, Fail rolls back, Inconclusive rolls
// back or holds for a person, as the spec says. Nothing passes on missing data.
func (r *release) judge(ctx workflow.Context, what string, v verdict.Verdict, onInconclusive string) error {
	r.countVerdict(ctx, what, v.Result)
	switch v.Result {
	case verdict.Pass:
		return nil
	case verdict.Inconclusive:
		if onInconclusive == spec.ActionRollback {
			return errRollback{what + " inconclusive: " + brief(v)}
		}
		r.notify(ctx, "decision-needed", fmt.Sprintf("%s: %s is inconclusive; approve to go on, abort to roll back: %s", r.summary(), what, v))
		return r.waitForApproval(ctx, gateVerdict, "a decision on an inconclusive "+what, 0)
	}
	// The reason names what failed and why; every number stays in the
	// verdict, which status, the UI and notifications show in full.
	return errRollback{what + " failed: " + brief(v)}
}

// brief is a verdict's summary, or the whole verdict when it has none.
func brief(v verdict.Verdict) string {
	if v.Summary == "" {
		return v.String()
	}
	return v.Summary
}

// approval waits at the approval gate.
func (r *release) approval(ctx workflow.Context, s *spec.ApprovalStep) (stepResult, error) {
	r.notify(ctx, "approval-needed", fmt.Sprintf("%s is waiting for approval (at %d%% green)", r.summary(), r.st.Weights.Green))
	err := r.waitForApproval(ctx, gateApproval, "approval", s.Timeout.D())
	if _, timedOut := err.(errTimedOut); timedOut {
		if s.OnTimeout == spec.ActionContinue {
			return stepResult{detail: "no approval within " + s.Timeout.String() + "; continuing as the spec says"}, nil
		}
		return stepResult{}, errRollback{"no approval within " + s.Timeout.String()}
	}
	if err != nil {
		return stepResult{}, err
	}
	return stepResult{detail: "approved by " + r.st.LastApproval().By}, nil
}

// errTimedOut is an approval gate whose time ran out.
type errTimedOut struct{}

func (errTimedOut) Error() string { return "timed out" }

// waitForApproval opens a gate for approve and waits for it, a stop, or the
// timeout (0: none).
func (r *release) waitForApproval(ctx workflow.Context, gate, waiting string, timeout time.Duration) error {
	r.gate, r.gateStep, r.approved = gate, r.st.Step, false
	r.st.Waiting = waiting
	r.publish(ctx)
	defer func() { r.gate, r.st.Waiting = "", "" }()
	cond := func() bool { return r.approved || r.stop != nil }
	ok, err := true, error(nil)
	if timeout <= 0 {
		err = workflow.Await(ctx, cond)
	} else {
		ok, err = workflow.AwaitWithOptions(ctx, workflow.AwaitOptions{
			Timeout:      timeout,
			TimerOptions: workflow.TimerOptions{Summary: "approval times out after " + timeout.String()},
		}, cond)
	}
	switch {
	case r.stop != nil:
		return errStopped
	case err != nil:
		return err
	case !ok:
		return errTimedOut{}
	}
	return nil
}

// pauseStep holds the release for d, or until resumed when d is 0.
func (r *release) pauseStep(ctx workflow.Context, d time.Duration) error {
	r.inPauseStep, r.resumed = true, false
	r.st.Waiting = "resume"
	r.publish(ctx)
	defer func() { r.inPauseStep, r.st.Waiting = false, "" }()
	cond := func() bool { return r.resumed || r.stop != nil }
	var err error
	if d <= 0 {
		err = workflow.Await(ctx, cond)
	} else {
		_, err = workflow.AwaitWithOptions(ctx, workflow.AwaitOptions{
			Timeout:      d,
			TimerOptions: workflow.TimerOptions{Summary: "pause " + d.String()},
		}, cond)
	}
	if r.stop != nil {
		return errStopped
	}
	return err
}
