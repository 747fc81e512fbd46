package analysis

import (
	"context"
	"fmt"
	"time"

	"github.com/cutoverhq/cutover/providers"
	"github.com/cutoverhq/cutover/verdict"
)

// GuardAnalyzer is the guard of a provider that judges green by itself rather
// than from metrics (the local provider's instance health, the memory
// provider's simulated verdicts): it asks the provider every interval, returns
// at once on a Fail, stops after missedLimit checks in a row without a verdict
// (no data is never healthy for long), and otherwise returns the last verdict
// at the end of the soak. A zero Duration guards until ctx ends (a soak
// started by an older workflow, which cancels its guard at the soak's end).
func GuardAnalyzer(ctx context.Context, an providers.Analyzer, r providers.Ref, g GuardSpec, clk Clock) (verdict.Verdict, error) {
	if g.Interval <= 0 {
		return verdict.Verdict{}, providers.BadConfig("soak guard: interval %s must be above 0", g.Interval)
	}
	g.Start = notAfter(g.Start, clk.Now())
	end := g.Start.Add(g.Duration)
	missing, judged := 0, 0
	var last verdict.Verdict
	for {
		now := clk.Now()
		v, err := an.Guard(ctx, r)
		switch {
		case err != nil && ctx.Err() != nil:
			return verdict.Verdict{}, ctx.Err()
		case err != nil && permanent(err):
			return verdict.Verdict{}, err
		case err != nil:
			v = verdict.Verdict{Result: verdict.Inconclusive, Summary: "guard check failed: " + err.Error()}
		case now.After(g.Start):
			// A check at the very start judges no interval yet.
			judged++
		}
		switch v.Result {
		case verdict.Pass:
			missing = 0
		case verdict.Fail:
			v.Judged, v.Intervals = judged, max(judged, int(now.Sub(g.Start)/g.Interval))
			return v, nil
		default: // Inconclusive, or a result nobody knows: never a pass
			v.Result = verdict.Inconclusive
			if missing++; missing >= missedLimit {
				v.Summary = fmt.Sprintf("%d checks in a row without a verdict: %s", missing, v.Summary)
				v.Judged, v.Intervals = judged, max(judged, int(now.Sub(g.Start)/g.Interval))
				return v, nil
			}
		}
		last = v
		if g.Duration > 0 && !now.Before(end) {
			last.Judged, last.Intervals = judged, max(judged, int(g.Duration/g.Interval))
			return last, nil
		}
		next := g.Start.Add(time.Duration(int(now.Sub(g.Start)/g.Interval)+1) * g.Interval)
		if g.Duration > 0 && next.After(end) {
			next = end
		}
		if err := clk.Sleep(ctx, next.Sub(clk.Now())); err != nil {
			return verdict.Verdict{}, err
		}
	}
}
