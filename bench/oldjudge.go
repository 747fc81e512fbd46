package main

import (
	"errors"
	"math"
	"sort"
	"time"

	"github.com/aclements/go-moremath/stats"

	"github.com/cutoverhq/cutover/judge"
	"github.com/cutoverhq/cutover/verdict"
)

// This file is the judge as it was before issue 12 (the fixed-limit soak guard
// and the fixed-window comparison), frozen here only so that the old and the
// new judge are measured side by side, on the same simulated traffic, in one
// run of section 6. It is not product code and nothing else uses it. It is
// trimmed to the decisions: the wording and numbers a verdict carried, the
// config validation and the Critical flags (all true by default) are gone;
// every rule that decided Pass, Fail or Inconclusive is as it was.

// oldPoint is one step of one color's traffic (the old judge.Point). NaN in a
// field means the source had no value for it in that step.
type oldPoint struct {
	Time     time.Time
	Requests float64
	Errors   float64
	// Latency is the step's mean latency in seconds, for the comparison.
	Latency float64
	// P99 is the step's 99th percentile latency in seconds, for the guard.
	P99 float64
}

// oldConfig is the old `judge:` block, as its WithDefaults completed it.
type oldConfig struct {
	Alpha float64
	// errorRate
	MinRequests int
	MaxIncrease float64
	// latency
	MinSamples  int
	MaxSlowdown float64
	// guard
	GuardMaxErrorRate float64
	GuardMaxP99       time.Duration
	GuardMinRequests  int
}

// oldDefaults are the old defaults: alpha 0.05; errorRate minRequests 100,
// maxIncrease 0.005; latency minSamples 5, maxSlowdown 0.10; guard
// maxErrorRate 0.01, maxP99 0 (not checked), minRequests 20.
func oldDefaults() oldConfig {
	return oldConfig{Alpha: 0.05, MinRequests: 100, MaxIncrease: 0.005, MinSamples: 5, MaxSlowdown: 0.10,
		GuardMaxErrorRate: 0.01, GuardMinRequests: 20}
}

// oldLookback is how far back the old Prometheus and scrape providers read
// green for each guard check (prometheus.DefaultLookback), in 1s steps.
const oldLookback = 30

// oldGuardInconclusiveLimit is how many checks in a row without a verdict
// stopped the old soak (activities.guardInconclusiveLimit).
const oldGuardInconclusiveLimit = 3

// oldGuard is the old judge.Guard: green's most recent steps (walking back
// from the newest until they hold GuardMinRequests requests) against the
// absolute limits. An error rate above GuardMaxErrorRate fails; too few
// requests is Inconclusive.
func oldGuard(cfg oldConfig, green []oldPoint) verdict.Result {
	checkRate := cfg.GuardMaxErrorRate < 1
	checkP99 := cfg.GuardMaxP99 > 0
	var t oldTraffic
	start, enough := 0, false
	for i := len(green) - 1; i >= 0; i-- {
		p := green[i]
		if !oldCountable(p.Requests) || !oldCountable(p.Errors) {
			continue
		}
		t.requests += p.Requests
		t.errors += p.Errors
		t.steps++
		if t.requests >= float64(cfg.GuardMinRequests) {
			start, enough = i, true
			break
		}
	}
	var results []verdict.Result
	if !enough {
		if checkRate {
			results = append(results, verdict.Inconclusive)
		}
		if checkP99 {
			results = append(results, verdict.Inconclusive)
		}
		return oldCombine(results)
	}
	if checkRate {
		switch rate := t.rate(); {
		case t.errors > t.requests:
			results = append(results, verdict.Inconclusive)
		case rate > cfg.GuardMaxErrorRate:
			results = append(results, verdict.Fail)
		default:
			results = append(results, verdict.Pass)
		}
	}
	if checkP99 {
		worst := math.NaN()
		for _, p := range green[start:] {
			if p.P99 >= 0 && !math.IsInf(p.P99, 1) && (math.IsNaN(worst) || p.P99 > worst) {
				worst = p.P99
			}
		}
		switch {
		case math.IsNaN(worst):
			results = append(results, verdict.Inconclusive)
		case worst > cfg.GuardMaxP99.Seconds():
			results = append(results, verdict.Fail)
		default:
			results = append(results, verdict.Pass)
		}
	}
	return oldCombine(results)
}

// oldCompare is the old judge.Compare: the error rates by a one-sided
// two-proportion z-test, the per-step latencies by a one-sided Mann-Whitney U
// test, each failing green only when the difference is significant at alpha
// AND above its margin (maxIncrease, maxSlowdown of the median step latency).
func oldCompare(cfg oldConfig, blue, green []oldPoint) verdict.Result {
	return oldCombine([]verdict.Result{oldCompareErrorRate(cfg, blue, green), oldCompareLatency(cfg, blue, green)})
}

// oldCombine is the old verdict rule with every metric critical: a Fail
// fails, anything else not a Pass is Inconclusive, nothing judged is
// Inconclusive.
func oldCombine(results []verdict.Result) verdict.Result {
	if len(results) == 0 {
		return verdict.Inconclusive
	}
	out := verdict.Pass
	for _, r := range results {
		switch {
		case r == verdict.Fail:
			return verdict.Fail
		case r != verdict.Pass:
			out = verdict.Inconclusive
		}
	}
	return out
}

type oldTraffic struct {
	requests, errors float64
	steps            int
}

func oldCountable(x float64) bool { return x >= 0 && !math.IsInf(x, 1) }

func oldSum(points []oldPoint) oldTraffic {
	var t oldTraffic
	for _, p := range points {
		if !oldCountable(p.Requests) || !oldCountable(p.Errors) {
			continue
		}
		t.requests += p.Requests
		t.errors += p.Errors
		t.steps++
	}
	return t
}

func (t oldTraffic) rate() float64 {
	if t.requests <= 0 {
		return math.NaN()
	}
	return t.errors / t.requests
}

func (t oldTraffic) short(minRequests int) bool {
	return t.steps == 0 || t.requests < float64(minRequests) || t.errors > t.requests
}

func oldCompareErrorRate(cfg oldConfig, bluePoints, greenPoints []oldPoint) verdict.Result {
	blue, green := oldSum(bluePoints), oldSum(greenPoints)
	if blue.short(cfg.MinRequests) || green.short(cfg.MinRequests) {
		return verdict.Inconclusive
	}
	diff := green.rate() - blue.rate()
	_, p := oldTwoProportion(blue.errors, blue.requests, green.errors, green.requests)
	switch {
	case math.IsNaN(p):
		return verdict.Inconclusive
	case p < cfg.Alpha && diff > cfg.MaxIncrease:
		return verdict.Fail
	}
	return verdict.Pass
}

func oldLatencySamples(points []oldPoint) []float64 {
	xs := make([]float64, 0, len(points))
	for _, p := range points {
		if math.IsNaN(p.Latency) || math.IsInf(p.Latency, 0) || p.Latency < 0 || p.Requests <= 0 {
			continue
		}
		xs = append(xs, p.Latency)
	}
	return xs
}

func oldCompareLatency(cfg oldConfig, bluePoints, greenPoints []oldPoint) verdict.Result {
	blue, green := oldLatencySamples(bluePoints), oldLatencySamples(greenPoints)
	if len(bluePoints) == 0 || len(greenPoints) == 0 || len(blue) < cfg.MinSamples || len(green) < cfg.MinSamples {
		return verdict.Inconclusive
	}
	bm, gm := oldMedian(blue), oldMedian(green)
	slowdown := gm/bm - 1
	if bm == 0 {
		slowdown = 0
		if gm != 0 {
			slowdown = math.Inf(1)
		}
	}
	_, p, err := oldSlowerTest(green, blue)
	switch {
	case err != nil:
		return verdict.Inconclusive
	case p < cfg.Alpha && slowdown > cfg.MaxSlowdown:
		return verdict.Fail
	}
	return verdict.Pass
}

// oldTwoProportion is the pooled one-sided two-proportion z-test.
func oldTwoProportion(blueErrors, blueRequests, greenErrors, greenRequests float64) (z, p float64) {
	if math.IsNaN(blueErrors) || math.IsNaN(blueRequests) || math.IsNaN(greenErrors) || math.IsNaN(greenRequests) ||
		!(blueRequests > 0) || !(greenRequests > 0) {
		return math.NaN(), math.NaN()
	}
	pooled := (blueErrors + greenErrors) / (blueRequests + greenRequests)
	if !(pooled > 0 && pooled < 1) {
		return 0, 1
	}
	se := math.Sqrt(pooled * (1 - pooled) * (1/blueRequests + 1/greenRequests))
	z = (greenErrors/greenRequests - blueErrors/blueRequests) / se
	return z, stats.StdNormal.CDF(-z)
}

// oldSlowerTest is the one-sided Mann-Whitney U test, green greater.
func oldSlowerTest(green, blue []float64) (u, p float64, err error) {
	r, err := stats.MannWhitneyUTest(green, blue, stats.LocationGreater)
	if errors.Is(err, stats.ErrSamplesEqual) {
		return float64(len(green)*len(blue)) / 2, 1, nil
	}
	if err != nil {
		return math.NaN(), math.NaN(), err
	}
	return r.U, math.Min(1, math.Max(0, r.P)), nil
}

// oldMedian of xs, which it sorts in place; NaN when empty.
func oldMedian(xs []float64) float64 {
	if len(xs) == 0 {
		return math.NaN()
	}
	sort.Float64s(xs)
	n := len(xs)
	if n%2 == 1 {
		return xs[n/2]
	}
	return (xs[n/2-1] + xs[n/2]) / 2
}

// oldPointsOf converts a scenario's steps to the old judge's points, one
// slice per color: the counts as they are, Latency the step's mean latency
// estimated from the histogram's bucket midpoints (the old default query was
// the mean), P99 the histogram's 99th percentile.
func oldPointsOf(steps []judge.Step) (blue, green []oldPoint) {
	blue, green = make([]oldPoint, len(steps)), make([]oldPoint, len(steps))
	for i, s := range steps {
		blue[i] = oldPointOf(s.End, s.Blue)
		green[i] = oldPointOf(s.End, s.Green)
	}
	return blue, green
}

func oldPointOf(end time.Time, c judge.Color) oldPoint {
	return oldPoint{Time: end, Requests: c.Requests, Errors: c.Errors,
		Latency: histMean(c.Latency), P99: c.Latency.Quantile(0.99)}
}

// histMean is a histogram's mean from its bucket midpoints (the first bucket
// from 0, the overflow bucket at the last bound); NaN without observations.
func histMean(h judge.Histogram) float64 {
	if len(h.Bounds) == 0 || len(h.Counts) != len(h.Bounds)+1 {
		return math.NaN()
	}
	var sum, n, lower float64
	for i, c := range h.Counts {
		mid := h.Bounds[len(h.Bounds)-1]
		if i < len(h.Bounds) {
			mid = (lower + h.Bounds[i]) / 2
			lower = h.Bounds[i]
		}
		sum += c * mid
		n += c
	}
	if n <= 0 {
		return math.NaN()
	}
	return sum / n
}
