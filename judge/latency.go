package judge

import (
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/cutoverhq/cutover/verdict"
)

// Latency is compared from distributions, not from step averages. A quantile
// q with an allowed slowdown s is turned into a question about proportions,
// which binned data answer exactly, without interpolating inside a bucket:
//
//   - t is the bucket bound where blue's q-quantile lies (the smallest bound
//     above which at most 1-q of blue's requests fall), read from blue's
//     requests before each step, so the test stays predictable;
//   - if green is no more than s slower than blue (its latency is at most
//     (1+s) times blue's, in distribution), then the share of green's
//     requests above any bound T >= (1+s)t is at most the share of blue's
//     requests above t.
//
// The failure test is the conditional e-process (eprocess.go) on those
// exceedances: green's requests over T against blue's over t. It fires on a
// green slower than allowed at the median, or on a tail-only regression (2%
// of requests 20x slower puts green's p99 far past (1+s) times blue's), and
// never, beyond alpha, on a green no more than s slower. The pass test turns
// it around with the largest bound T' <= (1+s)t: the share of green's requests
// above T' must be shown smaller than blue's share above t (the score test and
// boundary of pass.go), which says green's q-quantile is at most T' <= (1+s)
// times blue's. The buckets limit what can be shown: when no bound lies
// between t and (1+s)t the verdict says so instead of passing.

// minTail is how many of blue's requests must lie above a quantile's bucket
// bound before that bound is used: with fewer, blue's p99 is its slowest
// handful of requests.
const minTail = 10

// latencyState judges the latency quantiles and the optional p99 ceiling.
type latencyState struct {
	Green       Histogram        `json:"green"`
	Blue        Histogram        `json:"blue"`
	GreenBlocks []Histogram      `json:"greenBlocks,omitempty"`
	BlueBlocks  []Histogram      `json:"blueBlocks,omitempty"`
	Quantiles   []*quantileState `json:"quantiles"`
	// MaxP99 is the ceiling in seconds (0: none); Ceil tests green's share
	// above it against 1%, Below the other way.
	MaxP99       float64   `json:"maxP99,omitempty"`
	Ceil         *eProcess `json:"ceil,omitempty"`
	Below        *eProcess `json:"below,omitempty"`
	Steps        int       `json:"steps"`
	Corrupt      int       `json:"corrupt,omitempty"`
	Changed      int       `json:"changed,omitempty"`
	FirstProblem string    `json:"firstProblem,omitempty"`
	GreenMissing int       `json:"greenMissing,omitempty"`
	BlueMissing  int       `json:"blueMissing,omitempty"`
}

// quantileState is one compared quantile.
type quantileState struct {
	Q        float64  `json:"q"`
	Slowdown float64  `json:"slowdown"`
	Fail     eProcess `json:"fail"`
}

func newLatencyState(cfg LatencyConfig, horizon int) *latencyState {
	l := &latencyState{MaxP99: cfg.MaxP99.D().Seconds()}
	for _, q := range cfg.Quantiles {
		l.Quantiles = append(l.Quantiles, &quantileState{Q: q.Quantile, Slowdown: q.MaxSlowdown, Fail: newEProcess(horizon, false)})
	}
	if l.MaxP99 > 0 {
		c, b := newEProcess(horizon, false), newEProcess(horizon, true)
		l.Ceil, l.Below = &c, &b
	}
	return l
}

// quantileName is how verdicts name a quantile: p50, p99, p99.9.
func quantileName(q float64) string {
	return "latency p" + strconv.FormatFloat(q*100, 'f', -1, 64)
}

// quantileIndex is the index of the smallest bound of h above which at most
// 1-q of its observations lie, or -1 when h has too few observations above
// it to say.
func quantileIndex(h Histogram, q float64) int {
	total := h.Total()
	if total*(1-q) < minTail {
		return -1
	}
	for i := range h.Bounds {
		if h.Above(i) <= (1-q)*total {
			return i
		}
	}
	return -1
}

// boundAtLeast is the index of the smallest bound >= x, or -1.
func boundAtLeast(bounds []float64, x float64) int {
	for i, b := range bounds {
		if b >= x*(1-1e-9) {
			return i
		}
	}
	return -1
}

// boundAtMost is the index of the largest bound <= x above index after, or -1.
func boundAtMost(bounds []float64, x float64, after int) int {
	found := -1
	for i := after + 1; i < len(bounds); i++ {
		if bounds[i] <= x*(1+1e-9) {
			found = i
		}
	}
	return found
}

func (l *latencyState) problem(at time.Time, format string, args ...any) {
	if l.FirstProblem == "" {
		l.FirstProblem = fmt.Sprintf(format, args...) + " at " + at.UTC().Format("15:04:05")
	}
}

// skip advances every test by a step that carries no evidence.
func (l *latencyState) skip() {
	for _, q := range l.Quantiles {
		q.Fail.add(0, 0, 0)
	}
	if l.Ceil != nil {
		l.Ceil.add(0, 0, 0)
		l.Below.add(0, 0, 0)
	}
}

// add judges one step of both colors' histograms.
func (l *latencyState) add(block int, g, b Histogram, at time.Time) {
	l.Steps++
	switch {
	case len(g.Bounds) == 0:
		l.GreenMissing++
		l.skip()
		return
	case !g.valid():
		l.Corrupt++
		l.problem(at, "green's latency histogram had negative, missing or unordered values")
		l.skip()
		return
	case len(b.Bounds) > 0 && !b.valid():
		l.Corrupt++
		l.problem(at, "blue's latency histogram had negative, missing or unordered values")
		l.skip()
		return
	case len(l.Green.Bounds) > 0 && !g.sameBounds(l.Green),
		len(b.Bounds) > 0 && !b.sameBounds(g),
		len(b.Bounds) > 0 && len(l.Blue.Bounds) > 0 && !b.sameBounds(l.Blue):
		l.Changed++
		l.problem(at, "the latency histograms' buckets changed")
		l.skip()
		return
	}
	blue := len(b.Bounds) > 0
	if !blue {
		l.BlueMissing++
	}
	gt := g.Total()
	for _, q := range l.Quantiles {
		// Thresholds from blue's requests before this step.
		t := quantileIndex(l.Blue, q.Q)
		if !blue || t < 0 {
			q.Fail.add(0, 0, 0)
			continue
		}
		T := boundAtLeast(g.Bounds, (1+q.Slowdown)*l.Blue.Bounds[t])
		bt := b.Total()
		if T < 0 || gt+bt == 0 {
			q.Fail.add(0, 0, 0)
			continue
		}
		q.Fail.add(g.Above(T)+b.Above(t), g.Above(T), gt/(gt+bt))
	}
	if l.Ceil != nil {
		if i := boundAtLeast(g.Bounds, l.MaxP99); i >= 0 {
			l.Ceil.add(gt, g.Above(i), 0.01)
		} else {
			l.Ceil.add(0, 0, 0)
		}
		if i := boundAtMost(g.Bounds, l.MaxP99, -1); i >= 0 {
			l.Below.add(gt, g.Above(i), 0.01)
		} else {
			l.Below.add(0, 0, 0)
		}
	}
	for len(l.GreenBlocks) <= block {
		l.GreenBlocks = append(l.GreenBlocks, Histogram{})
		l.BlueBlocks = append(l.BlueBlocks, Histogram{})
	}
	l.Green.add(g)
	l.GreenBlocks[block].add(g)
	if blue {
		l.Blue.add(b)
		l.BlueBlocks[block].add(b)
	}
}

// recent merges the blocks from `from` on.
func recentHist(blocks []Histogram, from int) Histogram {
	var h Histogram
	for i := max(from, 0); i < len(blocks); i++ {
		if len(blocks[i].Bounds) > 0 {
			h.add(blocks[i])
		}
	}
	return h
}

// judge is each quantile's outcome, then the ceiling's.
func (l *latencyState) judge(ctx judgeContext, cfg LatencyConfig, blueIdle bool) []outcome {
	critical := *cfg.Critical
	var outs []outcome
	for _, q := range l.Quantiles {
		o := l.judgeQuantile(ctx, q, critical)
		if blueIdle && l.Blue.Total() == 0 {
			o.Result, o.underpowered = verdict.Inconclusive, false
			o.Reason = "blue had no traffic to compare with"
			if l.Ceil != nil {
				o.Reason += ": green is judged against latency.maxP99 alone"
				continue
			}
		}
		outs = append(outs, o)
	}
	if l.Ceil != nil {
		outs = append(outs, l.judgeCeiling(ctx, critical))
	}
	return outs
}

func (l *latencyState) judgeQuantile(ctx judgeContext, q *quantileState, critical bool) outcome {
	name := quantileName(q.Q)
	o := outcome{Metric: verdict.Metric{Name: name, Critical: critical}}
	pn := strings.TrimPrefix(name, "latency ")
	gq, bq := l.Green.Quantile(q.Q), l.Blue.Quantile(q.Q)
	var vs values
	vs.add("green_"+pn+"_ms", gq*1000)
	vs.add("blue_"+pn+"_ms", bq*1000)
	vs.add("slowdown", gq/bq-1)
	vs.add("max_slowdown", q.Slowdown)
	vs.add("green_requests", l.Green.Total())
	vs.add("blue_requests", l.Blue.Total())
	vs.add("p_value", q.Fail.pValue())
	vs.add("alpha", ctx.alphaFail)
	if l.Corrupt+l.Changed > 0 {
		vs.add("corrupt_steps", float64(l.Corrupt+l.Changed))
	}
	both := fmt.Sprintf("green's %s %s, blue's %s", pn, fmtMs(gq), fmtMs(bq))
	finish := func(res verdict.Result, reason string) outcome {
		o.Result, o.Reason, o.Values = res, reason+l.dataNote(), vs
		return o
	}
	t := quantileIndex(l.Blue, q.Q)
	if q.Fail.rejected(ctx.alphaFail) {
		reason := fmt.Sprintf("green's %s is more than %s slower than blue's (%s; always-valid %s < %s)",
			pn, fmtRelative(q.Slowdown), both, fmtP(q.Fail.pValue()), fmtNumber(ctx.alphaFail))
		if t >= 0 {
			if T := boundAtLeast(l.Green.Bounds, (1+q.Slowdown)*l.Blue.Bounds[t]); T >= 0 {
				reason = fmt.Sprintf("green's %s is more than %s slower than blue's: %s of green's requests took over %s, against %s of blue's over %s (%s; always-valid %s < %s)",
					pn, fmtRelative(q.Slowdown), fmtPct(l.Green.Above(T)/l.Green.Total()), fmtMs(l.Green.Bounds[T]),
					fmtPct(l.Blue.Above(t)/l.Blue.Total()), fmtMs(l.Blue.Bounds[t]), both, fmtP(q.Fail.pValue()), fmtNumber(ctx.alphaFail))
			}
		}
		return finish(verdict.Fail, reason)
	}
	switch {
	case l.Steps == 0 || l.Green.Total() == 0 && l.GreenMissing+l.Corrupt+l.Changed == l.Steps:
		return finish(verdict.Inconclusive, "green has no latency data")
	case l.Blue.Total() == 0 && l.BlueMissing+l.Corrupt+l.Changed == l.Steps:
		return finish(verdict.Inconclusive, "blue has no latency data to compare with")
	case l.unusable() != "":
		return finish(verdict.Inconclusive, l.unusable())
	case l.Green.Total() == 0:
		return finish(verdict.Inconclusive, "green served no requests")
	}
	ng, nb := l.Green.Total(), l.Blue.Total()
	if t < 0 {
		o.underpowered = true
		need := math.Ceil(minTail / (1 - q.Q))
		vs.add("needed_blue_requests", need-nb)
		return finish(verdict.Inconclusive, fmt.Sprintf("not enough traffic to place blue's %s: it needs %s of blue's requests, has %s",
			pn, fmtCount(need), fmtCount(nb)))
	}
	tb := l.Blue.Bounds[t]
	vs.add("threshold_ms", tb*1000)
	T := boundAtMost(l.Green.Bounds, (1+q.Slowdown)*tb, t)
	if T < 0 {
		next := "none"
		if t+1 < len(l.Blue.Bounds) {
			next = fmtMs(l.Blue.Bounds[t+1])
		}
		return finish(verdict.Inconclusive, fmt.Sprintf("the histogram's buckets are too coarse to show %s within %s: blue's is at the bound %s, the next bound is %s",
			pn, fmtRelative(q.Slowdown), fmtMs(tb), next))
	}
	eb := l.Blue.Above(t) / nb
	iOpt := optimalInformation((1-q.Q)/2, ctx.alpha)
	passes := func(f float64) bool {
		z, info := nonInferiority(l.Green.Above(T)*f, ng*f, l.Blue.Above(t)*f, nb*f, 0)
		return z <= -mixtureBoundary(info, iOpt, ctx.alpha)
	}
	detect := func(f float64) float64 { return l.detectableSlowdown(tb, eb, ng*f, nb*f, ctx) }
	detectable := detect(1)
	vs.add("detectable_slowdown", detectable)
	if !math.IsInf(detectable, 1) {
		o.Detectable = fmtRelative(detectable)
	}
	shown := l.Green.Bounds[T]/tb - 1
	passed := passes(1) && detectable <= q.Slowdown
	if passed {
		rg, rb := recentHist(l.GreenBlocks, ctx.recentFrom), recentHist(l.BlueBlocks, ctx.recentFrom)
		if rg.Total() == 0 || rb.Total() == 0 || rg.Above(T)/rg.Total() > rb.Above(t)/rb.Total() {
			return finish(verdict.Inconclusive, fmt.Sprintf("the window as a whole is within %s at %s, but its newest third is not: green may have turned slower (%s)",
				fmtRelative(q.Slowdown), pn, both))
		}
		return finish(verdict.Pass, fmt.Sprintf("%s: %s of green's requests took over %s (%s), against %s of blue's over %s, so green's %s is at most %s slower with %s, within %s; could detect %s",
			both, fmtPct(l.Green.Above(T)/ng), fmtMs(l.Green.Bounds[T]), fmtRelative(shown), fmtPct(eb), fmtMs(tb), pn,
			fmtRelative(shown), confidence(ctx.alpha), fmtRelative(q.Slowdown), fmtRelative(detectable)))
	}
	o.underpowered = true
	reason := fmt.Sprintf("not enough traffic to see a %s slowdown at %s (%s)", fmtRelative(q.Slowdown), pn, both)
	if !math.IsInf(detectable, 1) {
		reason += "; could detect " + fmtRelative(detectable)
	}
	if f := scaleNeeded(func(f float64) bool { return detect(f) <= q.Slowdown && passes(f) }); !math.IsInf(f, 1) {
		more := (f - 1) * ng
		vs.add("needed_green_requests", math.Ceil(more))
		reason += fmt.Sprintf("; about %s more green requests needed", fmtAbout(more))
	}
	return finish(verdict.Inconclusive, reason)
}

// detectableSlowdown is the smallest slowdown (0.3 = 30% slower) of green at
// blue's bound tb that a one-sided test of green's share above tb against
// blue's share eb would catch with the configured power: with green's latency
// f times blue's, green's share above tb is blue's share above tb/f, read from
// blue's histogram. +Inf when not even 100x would be seen.
func (l *latencyState) detectableSlowdown(tb, eb, ng, nb float64, ctx judgeContext) float64 {
	need := ctx.zFail + ctx.zPow
	ok := func(lf float64) bool {
		eg := l.Blue.fractionAbove(tb / math.Exp(lf))
		sd := math.Sqrt(eb*(1-eb)/nb + eg*(1-eg)/ng)
		return sd > 0 && (eg-eb)/sd >= need
	}
	hi := math.Log(100)
	if !ok(hi) {
		return math.Inf(1)
	}
	return math.Exp(smallest(0, hi, ok)) - 1
}

// judgeCeiling is green's p99 against latency.maxP99 alone.
func (l *latencyState) judgeCeiling(ctx judgeContext, critical bool) outcome {
	o := outcome{Metric: verdict.Metric{Name: metricLatencyCeiling, Critical: critical}}
	var vs values
	vs.add("green_p99_ms", l.Green.Quantile(0.99)*1000)
	vs.add("max_p99_ms", l.MaxP99*1000)
	vs.add("green_requests", l.Green.Total())
	vs.add("p_value", l.Ceil.pValue())
	vs.add("alpha", ctx.alphaFail)
	o.Values = vs
	limit := fmtMs(l.MaxP99)
	switch {
	case l.Ceil.rejected(ctx.alphaFail):
		o.Result = verdict.Fail
		o.Reason = fmt.Sprintf("more than 1%% of green's requests took over %s, with %s (green's p99 %s)", limit, confidence(ctx.alphaFail), fmtMs(l.Green.Quantile(0.99)))
	case l.Green.Total() == 0:
		o.Result, o.Reason = verdict.Inconclusive, "green has no latency data"
	case l.unusable() != "":
		o.Result, o.Reason = verdict.Inconclusive, l.unusable()
	case boundAtMost(l.Green.Bounds, l.MaxP99, -1) < 0:
		o.Result, o.Reason = verdict.Inconclusive, fmt.Sprintf("no histogram bucket bound is at or below %s, so the buckets cannot show green under it", limit)
	case l.Below.rejected(ctx.alpha):
		o.Result = verdict.Pass
		o.Reason = fmt.Sprintf("fewer than 1%% of green's requests took over %s, with %s (green's p99 %s)", limit, confidence(ctx.alpha), fmtMs(l.Green.Quantile(0.99)))
	default:
		o.Result, o.underpowered = verdict.Inconclusive, true
		o.Reason = fmt.Sprintf("not enough traffic yet to show green's p99 under %s (green's p99 %s)", limit, fmtMs(l.Green.Quantile(0.99)))
	}
	o.Reason += l.dataNote()
	return o
}

// unusable says why the window's histograms cannot be judged, or "": more
// than corruptShare of its steps had unusable histograms or none for a
// color, the two kinds counted together (see rateState.unusable).
func (l *latencyState) unusable() string {
	broken, missing := l.Corrupt+l.Changed, l.GreenMissing+l.BlueMissing
	share := corruptShare * float64(l.Steps)
	switch {
	case float64(broken) > share:
		return fmt.Sprintf("%d of %d steps had unusable histograms, so none is trusted (first: %s)", broken, l.Steps, l.FirstProblem)
	case float64(missing) > share:
		return fmt.Sprintf("%d of %d steps had no histogram for a color, so the window cannot be judged", missing, l.Steps)
	case float64(broken+missing) > share:
		return fmt.Sprintf("%d of %d steps had unusable histograms (first: %s) and %d none for a color, so the window cannot be judged",
			broken, l.Steps, l.FirstProblem, missing)
	}
	return ""
}

// dataNote names the steps left out, or "".
func (l *latencyState) dataNote() string {
	var parts []string
	if n := l.Corrupt + l.Changed; n > 0 {
		parts = append(parts, fmt.Sprintf("%d steps with unusable histograms left out, first: %s", n, l.FirstProblem))
	}
	if l.GreenMissing > 0 {
		parts = append(parts, fmt.Sprintf("%d steps without green's histogram", l.GreenMissing))
	}
	if l.BlueMissing > 0 {
		parts = append(parts, fmt.Sprintf("%d steps without blue's histogram", l.BlueMissing))
	}
	if len(parts) == 0 {
		return ""
	}
	return " (" + strings.Join(parts, "; ") + ")"
}
