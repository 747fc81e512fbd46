package workflows

import (
	"fmt"
	"strings"
	"time"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/cutoverhq/cutover/activities"
	"github.com/cutoverhq/cutover/providers"
	"github.com/cutoverhq/cutover/spec"
	"github.com/cutoverhq/cutover/verdict"
)

// Search attributes that operators filter releases by in the Temporal UI and in
// `temporal workflow list --query`. The worker registers them at start.
var (
	AttrApp     = temporal.NewSearchAttributeKeyKeyword("CutoverApp")
	AttrVersion = temporal.NewSearchAttributeKeyKeyword("CutoverVersion")
	AttrStage   = temporal.NewSearchAttributeKeyKeyword("CutoverStage")
	AttrTraffic = temporal.NewSearchAttributeKeyInt64("CutoverTrafficPercent")
	AttrOutcome = temporal.NewSearchAttributeKeyKeyword("CutoverOutcome")
)

// published is what the UI shows now, so that only changes are upserted and the
// history does not fill with repeats.
type published struct {
	stage, outcome, details string
	traffic                 int
	done                    bool
}

// publish shows the release's state in the Temporal UI: search attributes for
// filtering and the current details for reading. In a lean history it only
// marks the state changed, and the publisher (outbox.go) shows it once per
// workflow task.
func (r *release) publish(ctx workflow.Context) {
	if r.lean {
		r.dirty = true
		return
	}
	r.publishNow(ctx)
}

// publishNow upserts what changed since the last time and sets the details.
func (r *release) publishNow(ctx workflow.Context) {
	var ups []temporal.SearchAttributeUpdate
	p := &r.published
	if !p.done {
		ups = append(ups, AttrApp.ValueSet(r.ref.App), AttrVersion.ValueSet(r.ref.Version))
	}
	stage := r.searchStage()
	if !p.done || p.stage != stage {
		ups = append(ups, AttrStage.ValueSet(stage))
	}
	if !p.done || p.traffic != r.st.Weights.Green {
		ups = append(ups, AttrTraffic.ValueSet(int64(r.st.Weights.Green)))
	}
	if !p.done || p.outcome != r.st.Outcome {
		ups = append(ups, AttrOutcome.ValueSet(r.st.Outcome))
	}
	if len(ups) > 0 {
		if err := workflow.UpsertTypedSearchAttributes(ctx, ups...); err != nil {
			r.log.Warn("upsert search attributes", "err", err)
		}
	}
	p.stage, p.traffic, p.outcome, p.done = stage, r.st.Weights.Green, r.st.Outcome, true
	if d := r.details(workflow.Now(ctx)); d != p.details {
		workflow.SetCurrentDetails(ctx, d)
		p.details = d
	}
}

// searchStage is the stage the CutoverStage search attribute shows.
//
// In a lean history it changes only where a release starts to wait: its
// first step (the release is under way; provisioning usually takes a while),
// a soak, a comparison, an approval, a pause, the standby window; and when it
// rolls back or ends. Every upsert costs the server a visibility write, and at
// one per step they were most of what a release cost the server beyond a raw
// chain of the same activities (docs/benchmarks.md, section 8). The step
// under way is always in the status query, `cutover status` and the UI's
// details, which cost nothing; the traffic weight's search attribute changes
// with every shift.
func (r *release) searchStage() string {
	if !r.lean || r.st.Step <= 1 {
		return r.st.Stage
	}
	switch r.st.Stage {
	case spec.KindSoak, spec.KindAnalysis, spec.KindApproval, spec.KindPause, spec.KindStandby, StageRollback, StageDone:
		return r.st.Stage
	}
	return r.published.stage
}

// details renders the current state as the markdown the UI shows.
func (r *release) details(now time.Time) string {
	st := &r.st
	var b strings.Builder
	fmt.Fprintf(&b, "**%s** · stage **%s**", r.summary(), st.Stage)
	if st.Step > 0 {
		fmt.Fprintf(&b, " (step %d of %d)", st.Step, len(st.Steps))
	}
	fmt.Fprintf(&b, " · outcome **%s**\n\n", st.Outcome)
	if !st.Principal.IsZero() {
		fmt.Fprintf(&b, "Started by %s [principal %s, person %s]\n\n", orUnknown(st.StartedBy), st.Principal, st.Person)
	}
	fmt.Fprintf(&b, "Traffic: %s\n\n", st.Weights)
	if st.Paused {
		b.WriteString("⏸ Paused: send the `resume` update to go on.\n\n")
	}
	switch st.Waiting {
	case "":
	case "approval":
		b.WriteString("Waiting for approval: send the `approve` update with `{\"by\": \"your name\"}`.\n\n")
	default:
		fmt.Fprintf(&b, "Waiting for %s.\n\n", st.Waiting)
	}
	if st.Reason != "" {
		fmt.Fprintf(&b, "Reason: %s\n\n", st.Reason)
	}
	if v := st.LastVerdict; v != nil {
		fmt.Fprintf(&b, "Last verdict: **%s** %s\n\n", v.Result, v.Summary)
		writeMetrics(&b, v.Metrics)
	}
	if len(st.Decisions) > 0 {
		b.WriteString("Decisions:\n")
		for _, d := range st.Decisions {
			fmt.Fprintf(&b, "- %s by %s", d.Action, d.By)
			if !d.Principal.IsZero() {
				fmt.Fprintf(&b, " [principal %s, person %s]", d.Principal, d.Person)
			}
			if d.Via != "" {
				fmt.Fprintf(&b, " via %s", d.Via)
			}
			if d.Reason != "" {
				fmt.Fprintf(&b, ": %s", d.Reason)
			}
			b.WriteString("\n")
		}
		b.WriteString("\n")
	}
	b.WriteString("| # | step | state | took |\n|---|---|---|---|\n")
	for _, s := range append(append([]StepRecord{}, st.Steps...), st.Rollback...) {
		took := ""
		if !s.Started.IsZero() {
			took = s.Duration(now).Round(time.Second).String()
		}
		fmt.Fprintf(&b, "| %d | %s | %s | %s |\n", s.Index, s.Description, s.State, took)
	}
	return b.String()
}

func writeMetrics(b *strings.Builder, ms []verdict.Metric) {
	if len(ms) == 0 {
		return
	}
	b.WriteString("| metric | result | numbers |\n|---|---|---|\n")
	for _, m := range ms {
		var nums []string
		for _, v := range m.Values {
			nums = append(nums, v.Name+"="+verdict.FormatValue(v.Value))
		}
		fmt.Fprintf(b, "| %s | %s | %s |\n", m.Name, m.Result, strings.Join(nums, ", "))
	}
	b.WriteString("\n")
}

// Release metrics, through the SDK's metrics handler so that replays do not count
// twice; the worker exports them on /metrics with the SDK's own.
const (
	metricReleases  = "cutover_releases"
	metricStage     = "cutover_stage_duration"
	metricWeight    = "cutover_traffic_weight"
	metricVerdicts  = "cutover_verdicts"
	metricDetection = "cutover_detection_duration"
	metricRollback  = "cutover_rollback_duration"
)

// Metrics emit no commands (the SDK's metrics handler does nothing on
// replay), so recording more of them changes no history: no GetVersion.

// countVerdict counts a verdict the release acted on: check is "soak guard"
// or "analysis".
func (r *release) countVerdict(ctx workflow.Context, check string, result verdict.Result) {
	workflow.GetMetricsHandler(ctx).WithTags(map[string]string{"app": r.ref.App, "check": check, "result": string(result)}).Counter(metricVerdicts).Inc(1)
}

// recordRollbackTimes records, once traffic is back on blue after a rollback
// that began at began, how long green had taken traffic before the release
// stopped (how long the problem took to be detected, for a failed check) and
// how long traffic took to get back to blue.
func (r *release) recordRollbackTimes(ctx workflow.Context, began time.Time) {
	h := workflow.GetMetricsHandler(ctx).WithTags(map[string]string{"app": r.ref.App})
	for _, s := range r.st.Steps {
		if s.Kind == spec.KindSetWeight && s.State == StateDone && !s.Ended.IsZero() {
			h.Timer(metricDetection).Record(began.Sub(s.Ended))
			break
		}
	}
	h.Timer(metricRollback).Record(workflow.Now(ctx).Sub(began))
}

func (r *release) recordWeight(ctx workflow.Context) {
	workflow.GetMetricsHandler(ctx).WithTags(map[string]string{"app": r.ref.App}).Gauge(metricWeight).Update(float64(r.st.Weights.Green))
	r.publish(ctx)
}

func (r *release) recordStageTime(ctx workflow.Context, stage string, d time.Duration) {
	workflow.GetMetricsHandler(ctx).WithTags(map[string]string{"app": r.ref.App, "stage": stage}).Timer(metricStage).Record(d)
}

func (r *release) countOutcome(ctx workflow.Context) {
	workflow.GetMetricsHandler(ctx).WithTags(map[string]string{"app": r.ref.App, "outcome": r.st.Outcome}).Counter(metricReleases).Inc(1)
}

// notify tells the spec's notifiers about an event without waiting: a slow or
// failing notifier never holds the release up.
func (r *release) notify(ctx workflow.Context, kind, msg string) {
	ns := r.in.Release.Providers.Notifications
	if len(ns) == 0 {
		return
	}
	ctx, _ = workflow.NewDisconnectedContext(ctx)
	event := providers.Event{App: r.ref.App, Version: r.ref.Version, Kind: kind, Message: msg, Time: workflow.Now(ctx)}
	switch kind {
	case "approval-needed", "decision-needed", "verdict":
		// Whoever is asked to decide sees the numbers in the message itself.
		event.Verdict = r.st.LastVerdict
	}
	if r.lean {
		r.out.notes = append(r.out.notes, event)
		return
	}
	// One activity per notifier, so that a retry re-sends only to the one that
	// failed.
	for _, n := range ns {
		f := workflow.ExecuteActivity(notifyOptions(ctx, "notify"), activities.NotifyName,
			activities.NotifyInput{Notifiers: []spec.Provider{n}, Event: event})
		r.notifications = append(r.notifications, f)
	}
}

// flushNotifications waits for the notifications still on their way, so that
// the last ones are delivered before the run ends.
func (r *release) flushNotifications(ctx workflow.Context) {
	for _, f := range r.notifications {
		if err := f.Get(ctx, nil); err != nil {
			r.log.Warn("notification failed", "err", err)
		}
	}
	r.notifications = nil
}
