package activities

import (
	"context"
	"time"

	"go.temporal.io/sdk/activity"

	"github.com/cutoverhq/cutover/analysis"
	"github.com/cutoverhq/cutover/providers"
	"github.com/cutoverhq/cutover/verdict"
)

// legacyGuardSpan is how long a guard started by an older workflow (which
// gives no soak duration and cancels its guard when the soak's timer fires)
// is planned to run: long enough never to end before it is cancelled.
const legacyGuardSpan = 24 * time.Hour

// Guard watches green through a soak. A metrics source is judged by the
// analysis package, which ends the soak itself and keeps its evidence in the
// heartbeat, so that a retry on another worker goes on from there; a provider
// that judges green by itself (instance health, the memory provider) is asked
// every interval.
func (a *Activities) Guard(ctx context.Context, in GuardInput) (verdict.Verdict, error) {
	const what = "soak guard"
	p, err := providers.Get[any](a.reg, "analysis", in.Provider)
	if err != nil {
		return verdict.Verdict{}, classify(what, err)
	}
	g := analysis.GuardSpec{Start: in.Start, Duration: in.Duration.D(), Extend: in.Extend.D(), Interval: in.Interval.D()}
	if g.Interval <= 0 {
		g.Interval = 10 * time.Second
	}
	if g.Start.IsZero() {
		g.Start = activityStart(ctx)
	}
	hb := newHeartbeat(ctx, "guarding green every "+g.Interval.String())
	defer hb.stop()
	var v verdict.Verdict
	switch src := p.(type) {
	case analysis.Source:
		if g.Duration == 0 {
			g.Duration = legacyGuardSpan
		}
		v, err = analysis.Guard(ctx, src, in.Ref, g, hb.saved(), hb.save, analysis.RealClock())
	case providers.Analyzer:
		v, err = analysis.GuardAnalyzer(ctx, src, in.Ref, g, analysis.RealClock())
	}
	if err == nil && v.Result == verdict.Inconclusive {
		a.log.Warn("soak guard inconclusive", "app", in.Ref.App, "summary", v.Summary)
	}
	return v, classify(what, err)
}

// Compare judges green against blue over the window.
func (a *Activities) Compare(ctx context.Context, in CompareInput) (verdict.Verdict, error) {
	const what = "compare blue and green"
	p, err := providers.Get[any](a.reg, "analysis", in.Provider)
	if err != nil {
		return verdict.Verdict{}, classify(what, err)
	}
	hb := newHeartbeat(ctx, "comparing blue and green")
	defer hb.stop()
	var v verdict.Verdict
	switch src := p.(type) {
	case analysis.Source:
		c := analysis.CompareSpec{Start: in.Start, Window: in.Window.D(), EarlyStop: in.EarlyStop}
		if c.Start.IsZero() {
			c.Start = activityStart(ctx)
		}
		v, err = analysis.Compare(ctx, src, in.Ref, c, hb.saved(), hb.save, analysis.RealClock())
	case providers.Analyzer:
		v, err = src.Compare(ctx, in.Ref, in.Window.D())
	}
	return v, classify(what, err)
}

// activityStart is when this activity was first scheduled (the same for
// every attempt), or now outside an activity.
func activityStart(ctx context.Context) time.Time {
	if activity.IsActivity(ctx) {
		if t := activity.GetInfo(ctx).ScheduledTime; !t.IsZero() {
			return t
		}
	}
	return time.Now()
}
