package api

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/cutoverhq/cutover/releases"
	"github.com/cutoverhq/cutover/spec"
	"github.com/cutoverhq/cutover/workflows"
)

// fake is the releases client of the unit tests: one run per app, decisions
// recorded, and every call counted.
type fake struct {
	mu        sync.Mutex
	runs      map[string]*fakeRun // each app's current run
	byRunID   map[string]*fakeRun // every run, current or not
	nextRun   int
	calls     []string // "start shop 1.0.0", "status shop", "decide shop approve", ...
	decisions []fakeDecision
	origins   []releases.Origin
	lists     []releases.Filter
	// statuses, when set for an app, is what Status returns call after call
	// (the last one repeats).
	statuses map[string][]workflows.Status
}

type fakeRun struct {
	run Run
	st  workflows.Status
}

type fakeDecision struct {
	app, action, updateID string
	d                     workflows.Decision
}

func newFake() *fake {
	return &fake{runs: map[string]*fakeRun{}, byRunID: map[string]*fakeRun{}, statuses: map[string][]workflows.Status{}}
}

func (f *fake) called(c string) {
	f.calls = append(f.calls, c)
}

// callCount counts the calls that begin with prefix.
func (f *fake) callCount(prefix string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	n := 0
	for _, c := range f.calls {
		if len(c) >= len(prefix) && c[:len(prefix)] == prefix {
			n++
		}
	}
	return n
}

func (f *fake) Start(ctx context.Context, rel spec.Release, o releases.Origin) (releases.Started, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.called("start " + rel.App + " " + rel.Version)
	if r, ok := f.runs[rel.App]; ok && r.run.Running {
		return releases.Started{}, &releases.AlreadyRunningError{App: rel.App, Version: r.st.Version, Stage: r.st.Stage}
	}
	f.nextRun++
	id := spec.WorkflowID(rel.App)
	runID := fmt.Sprintf("run-%d", f.nextRun)
	r := &fakeRun{
		run: Run{WorkflowID: id, RunID: runID, Version: rel.Version, Stage: workflows.StageStarting, Running: true},
		st: workflows.Status{App: rel.App, Version: rel.Version, StartedBy: o.By, StartedAt: time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC),
			Stage: workflows.StageStarting, Weights: workflows.Weights{Blue: 100}, Outcome: workflows.OutcomeRunning,
			Steps: []workflows.StepRecord{{Index: 1, Kind: "provision", Description: "provision green", State: workflows.StatePending}}},
	}
	f.runs[rel.App], f.byRunID[runID] = r, r
	f.origins = append(f.origins, o)
	return releases.Started{WorkflowID: id, RunID: runID}, nil
}

// set changes an app's run (stage, waiting, ...).
func (f *fake) set(app string, fn func(r *fakeRun)) {
	f.mu.Lock()
	defer f.mu.Unlock()
	fn(f.runs[app])
}

// StatusRun finds a run by its run ID only under its own app, as Temporal
// finds it only under the app's workflow ID.
func (f *fake) StatusRun(ctx context.Context, app, runID string) (workflows.Status, string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.called("status " + app + " " + runID)
	r, ok := f.runs[app]
	if runID != "" {
		r, ok = f.byRunID[runID]
		ok = ok && r.st.App == app
	}
	if !ok {
		return workflows.Status{}, runID, fmt.Errorf("%w for app %q (cutover list shows the releases)", releases.ErrNotFound, app)
	}
	if seq := f.statuses[app]; len(seq) > 0 {
		st := seq[0]
		if len(seq) > 1 {
			f.statuses[app] = seq[1:]
		}
		return st, r.run.RunID, nil
	}
	st := r.st
	st.Decisions = slices.Clone(st.Decisions)
	return st, r.run.RunID, nil
}

func (f *fake) Decide(ctx context.Context, app, action string, d workflows.Decision, updateID string) (string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.called("decide " + app + " " + action)
	r, ok := f.runs[app]
	if !ok {
		return "", fmt.Errorf("%s %s: %w", action, app, fmt.Errorf("%w for app %q", releases.ErrNotFound, app))
	}
	if !r.run.Running {
		return "", fmt.Errorf("%s %s: the release has ended: %w", action, app, releases.ErrRejected)
	}
	if action == workflows.UpdateApprove {
		if a := r.st.LastApproval(); a != nil {
			return "", fmt.Errorf("%s %s: already approved by %s at step %d; no approval is pending: %w", action, app, a.By, a.Step, releases.ErrRejected)
		}
		if r.st.Waiting != "approval" {
			return "", fmt.Errorf("%s %s: no approval is pending: the release is at step %d (%s): %w", action, app, r.st.Step, r.st.Stage, releases.ErrRejected)
		}
		r.st.Waiting = ""
	}
	f.decisions = append(f.decisions, fakeDecision{app, action, updateID, d})
	r.st.Decisions = append(r.st.Decisions, workflows.DecisionRecord{Decision: d, Action: action, Step: r.st.Step, At: time.Date(2026, 5, 1, 12, 1, 0, 0, time.UTC)})
	return fmt.Sprintf("%sd by %s", action, d.By), nil
}

func (f *fake) List(ctx context.Context, flt releases.Filter) ([]releases.Summary, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.called("list")
	f.lists = append(f.lists, flt)
	var out []releases.Summary
	for app, r := range f.runs {
		if flt.App != "" && flt.App != app {
			continue
		}
		out = append(out, releases.Summary{App: app, Version: r.st.Version, Stage: r.st.Stage, Outcome: r.st.Outcome,
			Status: "Running", WorkflowID: r.run.WorkflowID, RunID: r.run.RunID, Started: r.st.StartedAt})
	}
	return out, nil
}

func (f *fake) Current(ctx context.Context, app string) (Run, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.called("current " + app)
	r, ok := f.runs[app]
	if !ok {
		return Run{}, fmt.Errorf("%w for app %q", releases.ErrNotFound, app)
	}
	run := r.run
	run.Stage = r.st.Stage
	return run, nil
}
