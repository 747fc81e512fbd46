package judge

import (
	"fmt"
	"math"
	"strings"
	"time"

	"github.com/cutoverhq/cutover/verdict"
)

// Metric names, as verdicts show them.
const (
	metricErrorRate      = "error rate"
	metricErrorCeiling   = "error rate ceiling"
	metricLatencyCeiling = "latency p99 ceiling"
)

// obs is one color's step of a proportion: X events of N trials.
type obs struct{ X, N float64 }

// counts are events and trials summed over steps.
type counts struct {
	X float64 `json:"x"`
	N float64 `json:"n"`
}

func (c counts) rate() float64 {
	if c.N <= 0 {
		return math.NaN()
	}
	return c.X / c.N
}

// blockCounts are both colors' counts in one part of the window.
type blockCounts struct {
	G counts `json:"g"`
	B counts `json:"b"`
}

// rateState judges a proportion, green against blue: the error rate, or one of
// the app's proportions (checkouts per session).
type rateState struct {
	Name string `json:"name"`
	// Down: fewer events is worse (higher is better).
	Down bool     `json:"down,omitempty"`
	Fail eProcess `json:"fail"`
	// Ceil and Below test green's rate against Ceiling on its own: above it
	// (a failure), below it (a pass when blue has no traffic).
	Ceiling float64       `json:"ceiling,omitempty"`
	Ceil    *eProcess     `json:"ceil,omitempty"`
	Below   *eProcess     `json:"below,omitempty"`
	G       counts        `json:"g"`
	B       counts        `json:"b"`
	Blocks  []blockCounts `json:"blocks,omitempty"`
	// Steps counts the steps seen; Corrupt those with impossible numbers
	// (more events than trials, negative counts); GreenMissing and
	// BlueMissing those where a color had no value.
	Steps        int    `json:"steps"`
	Corrupt      int    `json:"corrupt,omitempty"`
	FirstCorrupt string `json:"firstCorrupt,omitempty"`
	GreenMissing int    `json:"greenMissing,omitempty"`
	BlueMissing  int    `json:"blueMissing,omitempty"`
}

func newRateState(name string, down bool, horizon int, ceiling float64) *rateState {
	r := &rateState{Name: name, Down: down, Fail: newEProcess(horizon, down), Ceiling: ceiling}
	if ceiling > 0 {
		c, b := newEProcess(horizon, false), newEProcess(horizon, true)
		r.Ceil, r.Below = &c, &b
	}
	return r
}

// problem says what is impossible about a color's step, or "".
func (o obs) problem(events string) string {
	switch {
	case math.IsInf(o.N, 0) || math.IsInf(o.X, 0):
		return "an infinite count"
	case o.N < 0 || o.X < 0:
		return fmt.Sprintf("a negative count (%s %s of %s)", fmtNumber(o.X), events, fmtNumber(o.N))
	case o.X > o.N:
		return fmt.Sprintf("more %s than requests (%s of %s)", events, fmtNumber(o.X), fmtNumber(o.N))
	}
	return ""
}

func (o obs) missing() bool { return math.IsNaN(o.N) || math.IsNaN(o.X) }

// add judges one step of both colors.
func (r *rateState) add(block int, g, b obs, at time.Time) {
	r.Steps++
	events := "errors"
	if r.Name != metricErrorRate {
		events = "events"
	}
	for _, c := range []struct {
		color string
		o     obs
	}{{"green", g}, {"blue", b}} {
		if p := c.o.problem(events); p != "" && !c.o.missing() {
			r.Corrupt++
			if r.FirstCorrupt == "" {
				r.FirstCorrupt = fmt.Sprintf("%s reported %s at %s", c.color, p, at.UTC().Format("15:04:05"))
			}
			r.Fail.add(0, 0, 0)
			r.advanceCeilings(0, 0)
			return
		}
	}
	if g.missing() {
		r.GreenMissing++
		r.Fail.add(0, 0, 0)
		r.advanceCeilings(0, 0)
		return
	}
	for len(r.Blocks) <= block {
		r.Blocks = append(r.Blocks, blockCounts{})
	}
	r.G.X += g.X
	r.G.N += g.N
	r.Blocks[block].G.X += g.X
	r.Blocks[block].G.N += g.N
	r.advanceCeilings(g.N, g.X)
	if b.missing() {
		r.BlueMissing++
		r.Fail.add(0, 0, 0)
		return
	}
	r.B.X += b.X
	r.B.N += b.N
	r.Blocks[block].B.X += b.X
	r.Blocks[block].B.N += b.N
	// Given the step's events, green's share of them is compared with its
	// share of the requests.
	r.Fail.add(g.X+b.X, g.X, g.N/(g.N+b.N))
}

func (r *rateState) advanceCeilings(n, x float64) {
	if r.Ceil != nil {
		r.Ceil.add(n, x, r.Ceiling)
		r.Below.add(n, x, r.Ceiling)
	}
}

// recent is the newest third of the window: both colors' counts in the blocks
// from ctx.recentFrom on.
func (r *rateState) recent(from int) blockCounts {
	var rc blockCounts
	for i := max(from, 0); i < len(r.Blocks); i++ {
		b := r.Blocks[i]
		rc.G.X, rc.G.N = rc.G.X+b.G.X, rc.G.N+b.G.N
		rc.B.X, rc.B.N = rc.B.X+b.B.X, rc.B.N+b.B.N
	}
	return rc
}

// judgeErrors is the error rate's outcome against blue, and against the
// ceiling when one is set. When blue had no traffic at all, the ceiling is
// all there is to judge by, and the verdict says so.
func (r *rateState) judgeErrors(ctx judgeContext, cfg ErrorRateConfig, blueIdle bool) []outcome {
	critical := *cfg.Critical
	var outs []outcome
	blueNone := blueIdle && r.B.N == 0
	if !blueNone || r.Ceil == nil {
		o := r.judgeRelative(ctx, *cfg.MaxIncrease, false, critical)
		if blueNone {
			o.Result, o.underpowered = verdict.Inconclusive, false
			o.Reason = "blue had no traffic to compare with, and no ceiling is set (judge.errorRate.ceiling)"
		}
		outs = append(outs, o)
	}
	if r.Ceil != nil {
		o := r.judgeCeiling(ctx, critical)
		if blueNone {
			o.Reason = "blue had no traffic, so green is judged against the ceiling alone: " + o.Reason
		}
		outs = append(outs, o)
	}
	return outs
}

// judgeRate is an app proportion's outcome; its margin is relative to blue's
// rate.
func (r *rateState) judgeRate(ctx judgeContext, mc MetricConfig) outcome {
	return r.judgeRelative(ctx, mc.Margin, true, *mc.Critical)
}

// judgeRelative judges green's rate against blue's: Fail when the failure
// e-process has rejected "green is no worse"; Pass when the data rule out a
// change for the worse beyond the margin (absolute, or relative to blue's
// rate), could have detected one that large, and the newest third agrees.
func (r *rateState) judgeRelative(ctx judgeContext, margin float64, relative, critical bool) outcome {
	o := outcome{Metric: verdict.Metric{Name: r.Name, Critical: critical}}
	gr, br := r.G.rate(), r.B.rate()
	// bad is the change for the worse: an increase, or a decrease when
	// higher is better.
	sign := 1.0
	if r.Down {
		sign = -1
	}
	change := sign * (gr - br)
	m := margin
	if relative {
		m = margin * br
	}
	var vs values
	events := "errors"
	if r.Name != metricErrorRate {
		events = "events"
	}
	vs.add("green_requests", r.G.N)
	vs.add("green_"+events, r.G.X)
	vs.add("green_rate", gr)
	vs.add("blue_requests", r.B.N)
	vs.add("blue_"+events, r.B.X)
	vs.add("blue_rate", br)
	vs.add("change", gr-br)
	vs.add("margin", m)
	vs.add("p_value", r.Fail.pValue())
	vs.add("alpha", ctx.alphaFail)
	if r.Corrupt > 0 {
		vs.add("corrupt_steps", float64(r.Corrupt))
	}
	if r.GreenMissing+r.BlueMissing > 0 {
		vs.add("missing_steps", float64(r.GreenMissing+r.BlueMissing))
	}
	rates := fmt.Sprintf("green %s of %s, blue %s of %s", fmtPct(gr), fmtCount(r.G.N), fmtPct(br), fmtCount(r.B.N))
	finish := func(res verdict.Result, reason string) outcome {
		o.Result, o.Reason, o.Values = res, reason+r.dataNote(), vs
		return o
	}

	if r.Fail.rejected(ctx.alphaFail) {
		return finish(verdict.Fail, fmt.Sprintf("green's %s is %s than blue's (%s, always-valid %s < %s)",
			r.rateWord(), r.worseWord(), rates, fmtP(r.Fail.pValue()), fmtNumber(ctx.alphaFail)))
	}
	switch {
	case r.Steps == 0 || r.G.N == 0 && r.GreenMissing+r.Corrupt == r.Steps:
		return finish(verdict.Inconclusive, "green has no data")
	case r.B.N == 0 && r.BlueMissing+r.Corrupt == r.Steps:
		return finish(verdict.Inconclusive, "blue has no data to compare with")
	case r.unusable() != "":
		return finish(verdict.Inconclusive, r.unusable())
	case r.G.N == 0:
		return finish(verdict.Inconclusive, "green served no requests")
	case r.B.N == 0:
		return finish(verdict.Inconclusive, "blue served no requests to compare with")
	}

	// The pass test: rule out a change beyond the margin.
	x1, n1, x2, n2 := r.G.X, r.G.N, r.B.X, r.B.N
	base := br
	if r.Down {
		x1, n1, x2, n2 = r.B.X, r.B.N, r.G.X, r.G.N
		base = 1 - br
	}
	iOpt := optimalInformation(math.Max(m, 1e-9), ctx.alpha)
	passes := func(f, delta float64) bool {
		z, info := nonInferiority(x1*f, n1*f, x2*f, n2*f, delta)
		return z <= -mixtureBoundary(info, iOpt, ctx.alpha)
	}
	detect := func(f float64) float64 { return detectableIncrease(base, r.G.N*f, r.B.N*f, ctx.zFail, ctx.zPow) }
	detectable := detect(1)
	bound := r.upperBound(change, passes)
	vs.add("upper_bound", bound)
	vs.add("detectable", detectable)
	if !math.IsInf(detectable, 1) {
		o.Detectable = fmtChangeOf(r.Down, detectable, relative, br)
	}
	passed := m > 0 && passes(1, m) && detectable <= m
	rc := r.recent(ctx.recentFrom)
	recentChange := sign * (rc.G.rate() - rc.B.rate())
	if passed && !(recentChange <= m) {
		vs.add("recent_change", rc.G.rate()-rc.B.rate())
		what := fmt.Sprintf("green %s, blue %s", fmtPct(rc.G.rate()), fmtPct(rc.B.rate()))
		if math.IsNaN(recentChange) {
			what = "no data from both colors"
		}
		return finish(verdict.Inconclusive, fmt.Sprintf("the window as a whole is within the margin, but its newest third is not (%s): green may have turned worse", what))
	}
	if passed {
		return finish(verdict.Pass, fmt.Sprintf("%s: at most %s worse with %s, within the allowed %s; could detect %s",
			rates, r.fmtChange(bound, relative, br), confidence(ctx.alpha), r.fmtChange(m, relative, br), r.fmtChange(detectable, relative, br)))
	}
	f := scaleNeeded(func(f float64) bool { return detect(f) <= m && passes(f, m) })
	o.underpowered = true
	reason := fmt.Sprintf("not enough traffic to see a %s change in %s (%s)", r.fmtChange(m, relative, br), r.rateWord(), rates)
	if !math.IsInf(detectable, 1) {
		reason += "; could detect " + r.fmtChange(detectable, relative, br)
	}
	if !math.IsInf(f, 1) {
		more := (f - 1) * r.G.N
		vs.add("needed_green_requests", math.Ceil(more))
		reason += fmt.Sprintf("; about %s more green requests needed", fmtAbout(more))
	}
	return finish(verdict.Inconclusive, reason)
}

// unusable says why the window's data cannot be judged, or "": more than
// corruptShare of its steps had impossible numbers or no value for a color.
// The two kinds count together, so that bad steps of each kind, each within
// the share, cannot add up to a pass.
func (r *rateState) unusable() string {
	missing := r.GreenMissing + r.BlueMissing
	share := corruptShare * float64(r.Steps)
	switch {
	case r.Corrupt > 0 && float64(r.Corrupt) > share:
		return fmt.Sprintf("%d of %d steps had impossible numbers, so none of them is trusted (first: %s)", r.Corrupt, r.Steps, r.FirstCorrupt)
	case float64(missing) > share:
		return fmt.Sprintf("%d of %d steps had no value for a color, so the window cannot be judged", missing, r.Steps)
	case float64(r.Corrupt+missing) > share:
		return fmt.Sprintf("%d of %d steps had impossible numbers (first: %s) and %d no value for a color, so the window cannot be judged",
			r.Corrupt, r.Steps, r.FirstCorrupt, missing)
	}
	return ""
}

// upperBound is the smallest change for the worse that the pass test can
// already rule out at 1-alpha (a point of the confidence sequence).
func (r *rateState) upperBound(change float64, passes func(f, delta float64) bool) float64 {
	if !passes(1, 0.5) {
		return math.NaN()
	}
	return smallest(math.Max(0, change), 0.5, func(d float64) bool { return passes(1, d) })
}

// judgeCeiling is green's error rate against the ceiling alone.
func (r *rateState) judgeCeiling(ctx judgeContext, critical bool) outcome {
	o := outcome{Metric: verdict.Metric{Name: metricErrorCeiling, Critical: critical}}
	var vs values
	vs.add("green_requests", r.G.N)
	vs.add("green_errors", r.G.X)
	vs.add("green_rate", r.G.rate())
	vs.add("ceiling", r.Ceiling)
	vs.add("p_value", r.Ceil.pValue())
	vs.add("alpha", ctx.alphaFail)
	o.Values = vs
	rate := fmt.Sprintf("green %s of %s", fmtPct(r.G.rate()), fmtCount(r.G.N))
	switch {
	case r.Ceil.rejected(ctx.alphaFail):
		o.Result = verdict.Fail
		o.Reason = fmt.Sprintf("green's error rate is above the ceiling %s with %s (%s)", fmtPct(r.Ceiling), confidence(ctx.alphaFail), rate)
	case r.G.N == 0:
		o.Result = verdict.Inconclusive
		o.Reason = "green served no requests"
	case r.unusable() != "":
		o.Result, o.Reason = verdict.Inconclusive, r.unusable()
	case r.Below.rejected(ctx.alpha):
		o.Result = verdict.Pass
		o.Reason = fmt.Sprintf("green's error rate is below the ceiling %s with %s (%s)", fmtPct(r.Ceiling), confidence(ctx.alpha), rate)
	default:
		o.Result, o.underpowered = verdict.Inconclusive, true
		o.Reason = fmt.Sprintf("not enough traffic yet to show green's error rate below the ceiling %s (%s)", fmtPct(r.Ceiling), rate)
	}
	o.Reason += r.dataNote()
	return o
}

// dataNote names the steps that were left out, or "".
func (r *rateState) dataNote() string {
	var parts []string
	if r.Corrupt > 0 {
		parts = append(parts, fmt.Sprintf("%d steps with impossible numbers left out, first: %s", r.Corrupt, r.FirstCorrupt))
	}
	if r.GreenMissing > 0 {
		parts = append(parts, fmt.Sprintf("%d steps without green's numbers", r.GreenMissing))
	}
	if r.BlueMissing > 0 {
		parts = append(parts, fmt.Sprintf("%d steps without blue's numbers", r.BlueMissing))
	}
	if len(parts) == 0 {
		return ""
	}
	return " (" + strings.Join(parts, "; ") + ")"
}

func (r *rateState) rateWord() string {
	if r.Name == metricErrorRate {
		return "error rate"
	}
	return r.Name
}

func (r *rateState) worseWord() string {
	if r.Down {
		return "lower"
	}
	return "higher"
}

// fmtChange words a change for the worse of size x: points for an absolute
// margin, a percentage of blue's rate for a relative one.
func (r *rateState) fmtChange(x float64, relative bool, base float64) string {
	return fmtChangeOf(r.Down, x, relative, base)
}

// A change for the worse of a metric where higher is better is a drop, and
// is worded as its size ("2%", in "at most 2% worse"): a sign would read as a
// double negative.
func fmtChangeOf(down bool, x float64, relative bool, base float64) string {
	if math.IsNaN(x) {
		return "no"
	}
	switch {
	case relative && base > 0 && down:
		return fmt.Sprintf("%.0f%%", math.Abs(x/base)*100)
	case relative && base > 0:
		return fmtRelative(x / base)
	case down:
		return fmt.Sprintf("%.2f points", math.Abs(x)*100)
	}
	return fmtPoints(x)
}
