// Package releases starts, inspects and steers release workflows through a
// Temporal client. The CLI and the HTTP API are both thin layers over it.
package releases

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"go.temporal.io/api/enums/v1"
	"go.temporal.io/api/serviceerror"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/converter"
	"go.temporal.io/sdk/temporal"
	"go.uber.org/fx"

	"github.com/cutoverhq/cutover/identity"
	"github.com/cutoverhq/cutover/spec"
	"github.com/cutoverhq/cutover/temporalconn"
	"github.com/cutoverhq/cutover/workflows"
)

// ErrNotFound is an app with no release.
var ErrNotFound = errors.New("no release found")

// ErrRejected is a decision the release refused.
var ErrRejected = errors.New("rejected")

// AlreadyRunningError is a start for an app that has a release in progress.
type AlreadyRunningError struct {
	App, Version, Stage string
}

func (e *AlreadyRunningError) Error() string {
	return fmt.Sprintf("%s already has a release in progress: %s version %s at stage %s (workflow %s); wait for it or abort it with `cutover abort %s --reason ...`",
		e.App, e.App, e.Version, e.Stage, spec.WorkflowID(e.App), e.App)
}

// Client steers releases.
type Client struct {
	c         client.Client
	taskQueue string
}

// New returns a Client over a Temporal client.
func New(c client.Client, cfg temporalconn.Config) *Client {
	return &Client{c: c, taskQueue: cfg.TaskQueue}
}

// Module provides a *Client.
var Module = fx.Module("releases", fx.Provide(New))

// Started is a release that was started.
type Started struct {
	WorkflowID string `json:"workflowId"`
	RunID      string `json:"runId"`
}

// Origin says who started a release, through which door, from which CI run;
// the release ledger keeps it.
type Origin struct {
	// Principal is who the door authenticated; By is free text.
	Principal identity.Principal
	By        string
	Via       string // cli or api
	CIRun     string // a URL or an ID; "" outside CI
}

// Start starts a release of a resolved spec. A second release of the same app
// fails with an AlreadyRunningError rather than attaching to the first.
func (r *Client) Start(ctx context.Context, rel spec.Release, o Origin) (Started, error) {
	startedBy := o.By
	if rel.PreviousVersion == "" {
		rel.PreviousVersion = r.lastPromoted(ctx, rel.App)
	}
	summary := rel.App + " " + rel.Version
	if rel.PreviousVersion != "" {
		summary = fmt.Sprintf("%s %s -> %s", rel.App, rel.PreviousVersion, rel.Version)
	}
	var plan strings.Builder
	for i, s := range rel.Plan {
		fmt.Fprintf(&plan, "%d. %s\n", i+1, s.Describe())
	}
	id := spec.WorkflowID(rel.App)
	run, err := r.c.ExecuteWorkflow(ctx, client.StartWorkflowOptions{
		ID:                                       id,
		TaskQueue:                                r.taskQueue,
		WorkflowIDReusePolicy:                    enums.WORKFLOW_ID_REUSE_POLICY_ALLOW_DUPLICATE,
		WorkflowIDConflictPolicy:                 enums.WORKFLOW_ID_CONFLICT_POLICY_FAIL,
		WorkflowExecutionErrorWhenAlreadyStarted: true,
		StaticSummary:                            summary,
		StaticDetails:                            startDetails(o, plan.String()),
		TypedSearchAttributes: temporal.NewSearchAttributes(
			workflows.AttrApp.ValueSet(rel.App),
			workflows.AttrVersion.ValueSet(rel.Version),
			workflows.AttrStage.ValueSet(workflows.StageStarting),
			workflows.AttrTraffic.ValueSet(0),
			workflows.AttrOutcome.ValueSet(workflows.OutcomeRunning),
		),
	}, workflows.WorkflowName, workflows.Input{Release: rel, StartedBy: startedBy, Principal: o.Principal, Via: o.Via, CIRun: o.CIRun})
	var started *serviceerror.WorkflowExecutionAlreadyStarted
	if errors.As(err, &started) {
		e := &AlreadyRunningError{App: rel.App, Version: "?", Stage: "?"}
		if st, qerr := r.Status(ctx, rel.App); qerr == nil {
			e.Version, e.Stage = st.Version, st.Stage
		}
		return Started{}, e
	}
	if err != nil {
		return Started{}, fmt.Errorf("start release of %s: %w", rel.App, err)
	}
	return Started{WorkflowID: id, RunID: run.GetRunID()}, nil
}

// startDetails is what the Temporal UI shows of who started a release: the
// principal the door authenticated, the door, and the free text, each apart.
func startDetails(o Origin, plan string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "Started by %s", o.By)
	if !o.Principal.IsZero() {
		fmt.Fprintf(&b, " (principal %s)", o.Principal)
	}
	if o.Via != "" {
		fmt.Fprintf(&b, " via %s", o.Via)
	}
	if plan == "" {
		plan = "the app definition's plan\n"
	}
	b.WriteString("\n\nPlan:\n\n" + plan)
	return b.String()
}

// lastPromoted finds the version of the app's last promoted release, or "".
func (r *Client) lastPromoted(ctx context.Context, app string) string {
	list, err := r.List(ctx, Filter{App: app, Outcome: workflows.OutcomePromoted, Limit: 1})
	if err != nil || len(list) == 0 {
		return ""
	}
	return list[0].Version
}

// Status returns the app's current or last release.
func (r *Client) Status(ctx context.Context, app string) (workflows.Status, error) {
	st, _, err := r.StatusRun(ctx, app, "")
	return st, err
}

// StatusRun returns one release run of the app and its run ID: the run runID,
// or with "" the app's current or last one. A run ID of another app's release
// is not found, since the workflow ID is the app's.
func (r *Client) StatusRun(ctx context.Context, app, runID string) (workflows.Status, string, error) {
	var st workflows.Status
	id := spec.WorkflowID(app)
	desc, err := r.c.DescribeWorkflowExecution(ctx, id, runID)
	if err != nil {
		return st, runID, notFoundRun(app, runID, err)
	}
	// Everything below reads the run that was described: with no run ID, a
	// release started meanwhile would be read instead, and GetWorkflow would
	// wait for that one to end.
	runID = desc.GetWorkflowExecutionInfo().GetExecution().GetRunId()
	if desc.GetWorkflowExecutionInfo().GetStatus() == enums.WORKFLOW_EXECUTION_STATUS_RUNNING {
		v, err := r.c.QueryWorkflow(ctx, id, runID, workflows.QueryStatus)
		if err != nil {
			return st, runID, fmt.Errorf("query %s: %w", id, err)
		}
		return st, runID, v.Get(&st)
	}
	// A closed release's result is in its history: no worker is needed to read it.
	if err := r.c.GetWorkflow(ctx, id, runID).Get(ctx, &st); err != nil {
		return st, runID, fmt.Errorf("release %s ended without a result (%s): %w", id, desc.GetWorkflowExecutionInfo().GetStatus(), err)
	}
	return st, runID, nil
}

// Decide sends a decision (approve, abort, pause, resume, rollback) as an update
// and returns the release's answer. updateID may be "" (one is made up); a retry
// with the same ID is answered once.
func (r *Client) Decide(ctx context.Context, app, action string, d workflows.Decision, updateID string) (string, error) {
	return r.DecideRun(ctx, app, "", action, d, updateID)
}

// DecideRun is Decide for one release run: with a run ID that is not the
// app's current run (another release started since), nothing is decided.
func (r *Client) DecideRun(ctx context.Context, app, runID, action string, d workflows.Decision, updateID string) (string, error) {
	h, err := r.c.UpdateWorkflow(ctx, client.UpdateWorkflowOptions{
		WorkflowID:   spec.WorkflowID(app),
		RunID:        runID,
		UpdateID:     updateID,
		UpdateName:   action,
		Args:         []any{d},
		WaitForStage: client.WorkflowUpdateStageCompleted,
	})
	if err == nil {
		var msg string
		if err = h.Get(ctx, &msg); err == nil {
			return msg, nil
		}
	}
	var nf *serviceerror.NotFound
	var app2 *temporal.ApplicationError
	switch {
	case errors.As(err, &nf) && strings.Contains(nf.Error(), "completed"):
		return "", fmt.Errorf("%s %s: the release has ended: %w", action, app, ErrRejected)
	case errors.As(err, &nf):
		return "", fmt.Errorf("%s %s: %w", action, app, notFoundRun(app, runID, err))
	case errors.As(err, &app2):
		return "", fmt.Errorf("%s %s: %s: %w", action, app, app2.Message(), ErrRejected)
	}
	return "", fmt.Errorf("%s %s: %w", action, app, err)
}

func notFoundRun(app, runID string, err error) error {
	var nf *serviceerror.NotFound
	if !errors.As(err, &nf) {
		return err
	}
	if runID != "" {
		return fmt.Errorf("%w for app %q with run ID %q (cutover list shows the releases)", ErrNotFound, app, runID)
	}
	return fmt.Errorf("%w for app %q (cutover list shows the releases)", ErrNotFound, app)
}

// Summary is one release in a list.
type Summary struct {
	App        string    `json:"app"`
	Version    string    `json:"version"`
	Stage      string    `json:"stage"`
	Traffic    int64     `json:"traffic"`
	Outcome    string    `json:"outcome"`
	Status     string    `json:"status"`
	WorkflowID string    `json:"workflowId"`
	RunID      string    `json:"runId"`
	Started    time.Time `json:"started"`
	Closed     time.Time `json:"closed,omitzero"`
}

// Filter narrows a list.
type Filter struct {
	App, Outcome string
	Running      bool
	Limit        int
}

// Query is the visibility query for the filter.
func (f Filter) Query() string {
	q := []string{fmt.Sprintf("WorkflowType = %q", workflows.WorkflowName)}
	if f.App != "" {
		q = append(q, fmt.Sprintf("%s = %q", workflows.AttrApp.GetName(), f.App))
	}
	if f.Outcome != "" {
		q = append(q, fmt.Sprintf("%s = %q", workflows.AttrOutcome.GetName(), f.Outcome))
	}
	if f.Running {
		q = append(q, "ExecutionStatus = 'Running'")
	}
	return strings.Join(q, " AND ")
}

// List lists releases, newest first.
func (r *Client) List(ctx context.Context, f Filter) ([]Summary, error) {
	var out []Summary
	var token []byte
	for {
		resp, err := r.c.ListWorkflow(ctx, &workflowservice.ListWorkflowExecutionsRequest{Query: f.Query(), NextPageToken: token})
		if err != nil {
			return nil, fmt.Errorf("list releases: %w", err)
		}
		for _, e := range resp.GetExecutions() {
			s := Summary{
				Status:     strings.TrimPrefix(e.GetStatus().String(), "WorkflowExecutionStatus"),
				WorkflowID: e.GetExecution().GetWorkflowId(),
				RunID:      e.GetExecution().GetRunId(),
				Started:    e.GetStartTime().AsTime(),
			}
			if e.GetCloseTime() != nil {
				s.Closed = e.GetCloseTime().AsTime()
			}
			fields := e.GetSearchAttributes().GetIndexedFields()
			dc := converter.GetDefaultDataConverter()
			for name, into := range map[string]any{
				workflows.AttrApp.GetName():     &s.App,
				workflows.AttrVersion.GetName(): &s.Version,
				workflows.AttrStage.GetName():   &s.Stage,
				workflows.AttrOutcome.GetName(): &s.Outcome,
				workflows.AttrTraffic.GetName(): &s.Traffic,
			} {
				if p, ok := fields[name]; ok {
					_ = dc.FromPayload(p, into) // a value that does not decode stays empty in the list
				}
			}
			out = append(out, s)
			if f.Limit > 0 && len(out) >= f.Limit {
				return out, nil
			}
		}
		if token = resp.GetNextPageToken(); len(token) == 0 {
			return out, nil
		}
	}
}

// Wait follows a release until it ends, calling progress whenever its status
// changes, and returns the final status.
func (r *Client) Wait(ctx context.Context, app string, every time.Duration, progress func(workflows.Status)) (workflows.Status, error) {
	return r.WaitRun(ctx, app, "", every, progress)
}

// WaitRun is Wait for one release run ("" for the app's current one): a CI
// job that lost its connection re-attaches to exactly its own release.
func (r *Client) WaitRun(ctx context.Context, app, runID string, every time.Duration, progress func(workflows.Status)) (workflows.Status, error) {
	id := spec.WorkflowID(app)
	var final workflows.Status
	if runID != "" {
		// A run ID that is not the app's fails here, not after a wait.
		if _, _, err := r.StatusRun(ctx, app, runID); err != nil {
			return final, err
		}
	}
	done := make(chan error, 1)
	go func() { done <- r.c.GetWorkflow(ctx, id, runID).Get(ctx, &final) }()
	t := time.NewTicker(every)
	defer t.Stop()
	var last string
	for {
		if st, _, err := r.StatusRun(ctx, app, runID); err == nil {
			if k := fingerprint(st); k != last {
				last = k
				progress(st)
			}
		}
		select {
		case err := <-done:
			if err != nil {
				return final, fmt.Errorf("release %s: %w", id, err)
			}
			if k := fingerprint(final); k != last {
				progress(final)
			}
			return final, nil
		case <-ctx.Done():
			return final, ctx.Err()
		case <-t.C:
		}
	}
}

// fingerprint changes when something a person would notice changes.
func fingerprint(st workflows.Status) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s|%d|%d|%t|%s|%s|%d|%d", st.Stage, st.Step, st.Weights.Green, st.Paused, st.Waiting, st.Outcome, len(st.Decisions), len(st.Rollback))
	if st.LastVerdict != nil {
		b.WriteString(st.LastVerdict.String())
	}
	return b.String()
}
