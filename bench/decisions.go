package main

import (
	"fmt"
	"math"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/cutoverhq/cutover/judge"
	"github.com/cutoverhq/cutover/judge/scenario"
	"github.com/cutoverhq/cutover/verdict"
)

// Section 6: decision quality. Pure simulation, no servers: judge/scenario
// makes seeded traffic of both colors step by step, and the same steps are fed
// to the old judge (bench/oldjudge.go, as it was before issue 12) and to the
// new one (judge.Monitor), side by side.

// Section 6's sizes.
const (
	goodSoaks       = 1000 // (a) per base error rate
	goodSoakSteps   = 300
	detectSoaks     = 100 // (b) per regression and traffic
	detectSoakSteps = 600
	earlyRuns       = 50 // (c) per green
	earlyWindow     = 600
)

const (
	simMedian = 20 * time.Millisecond
	simSigma  = 0.3
)

// simWorkers is how many simulations run at once, as in the judge's tests.
const simWorkers = 2

// forEach runs f(0..n-1), simWorkers at a time.
func forEach(n int, f func(i int)) {
	var wg sync.WaitGroup
	sem := make(chan struct{}, simWorkers)
	for i := range n {
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			f(i)
		})
	}
	wg.Wait()
}

// outcome is how a scenario ended under one judge: the result, and the step
// (from 0) at which it was decided, -1 when it ran to the end undecided.
type outcome struct {
	result verdict.Result
	at     int
	// underpowered: an Inconclusive verdict only for want of traffic.
	underpowered bool
}

// never marks a guard that did not fail within the soak.
const never = -1

// oldSoak is the old soak: every 1s interval a judge.Guard check of green's
// last oldLookback steps with the default config; the first Fail rolls back,
// oldGuardInconclusiveLimit checks in a row without a verdict stop the soak
// as Inconclusive, and a soak the guard saw no breach in passes.
func oldSoak(green []oldPoint) outcome {
	if len(green) == 0 {
		// A source with nothing at all: every check is Inconclusive.
		return outcome{result: verdict.Inconclusive, at: oldGuardInconclusiveLimit - 1}
	}
	cfg := oldDefaults()
	missing := 0
	for i := range green {
		switch oldGuard(cfg, green[max(0, i+1-oldLookback):i+1]) {
		case verdict.Fail:
			return outcome{result: verdict.Fail, at: i}
		case verdict.Pass:
			missing = 0
		default:
			if missing++; missing >= oldGuardInconclusiveLimit {
				return outcome{result: verdict.Inconclusive, at: i}
			}
		}
	}
	return outcome{result: verdict.Pass, at: never}
}

// newSoak is the new soak guard: one step per interval, Failed after each,
// the first Fail rolls back; otherwise the soak's verdict at the end.
func newSoak(steps []judge.Step, gaps []judge.Gap, planned int) outcome {
	m := mustMonitor(judge.Soak, planned)
	for i, st := range steps {
		for _, g := range gaps {
			if g.To.Equal(st.End) {
				m.Gap(g)
			}
		}
		m.Add(st)
		if m.Failed() {
			return outcome{result: verdict.Fail, at: i}
		}
	}
	v := m.Verdict()
	return outcome{result: v.Result, at: never, underpowered: v.Underpowered}
}

// newComparison is a comparison without earlyStop: the whole window, a Fail
// on the way final.
func newComparison(steps []judge.Step, planned int) outcome {
	m := mustMonitor(judge.Comparison, planned)
	for i, st := range steps {
		m.Add(st)
		if m.Failed() {
			return outcome{result: verdict.Fail, at: i}
		}
	}
	return outcome{result: m.Verdict().Result, at: never}
}

func mustMonitor(mode judge.Mode, steps int) *judge.Monitor {
	m, err := judge.New(judge.Config{}, judge.Plan{Mode: mode, Steps: steps})
	if err != nil {
		panic(err) // the default config is valid
	}
	return m
}

func benchDecisions() string {
	var b strings.Builder
	b.WriteString("## 6. Decision quality\n\n")
	b.WriteString("Reproduce: `go run ./bench -sections decisions`\n\n")
	b.WriteString("How often each judge is right, rather than how fast it runs. This section is pure simulation: no server, " +
		"no network. `judge/scenario` generates seeded, deterministic traffic of both colors one step of 1s at a time " +
		"(Poisson request counts split between the colors by green's share, binomial errors, log-normal latencies with a " +
		"median of 20ms and sigma 0.3 for blue, counted in the router's 85 histogram buckets), and the same steps are given " +
		"to both judges:\n\n")
	b.WriteString("- **Old**: the judge as it was before issue 12, frozen in `bench/oldjudge.go` only for this comparison " +
		"(each step converted to its `Point`: the counts, the mean latency from the histogram's bucket midpoints, the " +
		"histogram's p99). As a soak guard, as the old soak ran it: every interval `judge.Guard` on green's last 30s " +
		"(the providers' default lookback) with the default `guard` settings: green's error rate over the newest steps " +
		"holding at least 20 requests must be at most 1% (p99 is not checked by default); the first Fail rolls back, " +
		"three checks in a row without a verdict stop the soak, and a soak with no breach passes. As a comparison: " +
		"`judge.Compare` once over the whole window (z-test of the error rates and Mann-Whitney U test of the per-step " +
		"mean latencies, each failing green only when significant at 0.05 and above its margin, +0.5 points and +10%).\n")
	b.WriteString("- **New**: `judge.Monitor` with the default config (alpha 0.01 shared by all metrics, error rate margin " +
		"+0.4 points, latency p50 +20%, p95 +30%, p99 +50%). As a soak guard: `Add` one step per interval, `Failed` after " +
		"each, the first Fail rolls back, and the soak's verdict is `Verdict` at the end. As a comparison: the whole " +
		"window, a Fail on the way final (as `analysis.Compare` ends it), or with earlyStop, `Verdict` after every step " +
		"until it is Pass or Fail.\n\n")
	fmt.Fprintf(&b, "Simulations run %d at a time, as in the judge's tests.\n\n", simWorkers)

	t := time.Now()
	b.WriteString(falseRollbacks())
	logf("decisions: false rollbacks in %s", time.Since(t).Round(time.Millisecond))
	t = time.Now()
	b.WriteString(detectionTimes())
	logf("decisions: detection times in %s", time.Since(t).Round(time.Millisecond))
	t = time.Now()
	b.WriteString(earlyStopSavings())
	logf("decisions: earlyStop in %s", time.Since(t).Round(time.Millisecond))
	t = time.Now()
	b.WriteString(labelledOutcomes())
	logf("decisions: labelled set in %s", time.Since(t).Round(time.Millisecond))
	return b.String()
}

// (a) False rollbacks.

func falseRollbacks() string {
	type row struct {
		base     float64
		old, new []outcome
	}
	var rows []row
	for _, base := range []float64{0, 0.005, 0.02} {
		r := row{base: base, old: make([]outcome, goodSoaks), new: make([]outcome, goodSoaks)}
		forEach(goodSoaks, func(i int) {
			s := scenario.Scenario{Rate: 200, Share: 0.1, Steps: goodSoakSteps, BlueErrors: base,
				Median: simMedian, Sigma: simSigma, Seed: uint64(i) + 1}
			steps, gaps := s.Generate()
			_, green := oldPointsOf(steps)
			r.old[i] = oldSoak(green)
			r.new[i] = newSoak(steps, gaps, s.Steps)
		})
		logf("decisions: good soaks at %.1f%% errors: old rolled back %d, new %d", base*100, count(r.old, verdict.Fail), count(r.new, verdict.Fail))
		rows = append(rows, r)
	}

	var b strings.Builder
	b.WriteString("### False rollbacks on good greens\n\n")
	fmt.Fprintf(&b, "%d soaks of %d checks (1s interval) per row at 200 requests/s, 10%% to green (about 20 requests/s), "+
		"green exactly as good as blue: the same error rate and the same latency. *Rolled back* is the share of soaks the "+
		"guard failed, each one a good release rolled back. *Time* is the nearest-rank median of the check that rolled "+
		"back, over the soaks that were. The new guard's last columns are its verdict at the end of the soaks it did not "+
		"roll back; *underpowered* is an Inconclusive only for want of traffic (nothing failed, but the soak's traffic "+
		"could not yet show green within every margin: `onInconclusive` decides what happens next), never a "+
		"rollback.\n\n", goodSoaks, goodSoakSteps)
	b.WriteString("| error rate, both colors | soaks | old guard: rolled back | old: median time | new guard: rolled back | new: median time | new, at the end: Pass | Inconclusive (underpowered) |\n")
	b.WriteString("|---|---:|---:|---:|---:|---:|---:|---:|\n")
	for _, r := range rows {
		under := 0
		for _, o := range r.new {
			if o.underpowered {
				under++
			}
		}
		fmt.Fprintf(&b, "| %s | %d | %s | %s | %s | %s | %d | %d (%d) |\n", fmtPct(r.base), goodSoaks,
			share(count(r.old, verdict.Fail), goodSoaks), medianTime(r.old), share(count(r.new, verdict.Fail), goodSoaks),
			medianTime(r.new), count(r.new, verdict.Pass), count(r.new, verdict.Inconclusive), under)
	}
	b.WriteString("\nThe old guard judged green alone against a fixed 1% on about one second of traffic: at 20 requests/s " +
		"a single error in the newest 20 requests is a 5% error rate, so any green with errors at all was eventually rolled " +
		"back, and every green of a service whose normal error rate is above 1% at once. The new guard judges green " +
		"against blue over the whole soak and holds its false-rollback rate at alpha (1%) however often it looks.\n\n")
	return b.String()
}

// (b) Detection time.

func detectionTimes() string {
	const base = 0.005
	type row struct {
		increase float64
		green    float64 // requests/s to green
		old, new []outcome
	}
	var rows []row
	for gi, green := range []float64{20, 200} {
		for ii, inc := range []float64{0, 0.005, 0.01, 0.03} {
			r := row{increase: inc, green: green, old: make([]outcome, detectSoaks), new: make([]outcome, detectSoaks)}
			forEach(detectSoaks, func(i int) {
				g := base + inc
				s := scenario.Scenario{Rate: green * 10, Share: 0.1, Steps: detectSoakSteps, BlueErrors: base, GreenErrors: &g,
					Median: simMedian, Sigma: simSigma, Seed: 100_000 + uint64(gi*4+ii)*1000 + uint64(i)}
				steps, gaps := s.Generate()
				_, gp := oldPointsOf(steps)
				r.old[i] = oldSoak(gp)
				r.new[i] = newSoak(steps, gaps, s.Steps)
			})
			logf("decisions: +%g points at %g req/s to green: old caught %d, new %d", inc*100, green, count(r.old, verdict.Fail), count(r.new, verdict.Fail))
			rows = append(rows, r)
		}
	}

	var b strings.Builder
	b.WriteString("### Detection time\n\n")
	fmt.Fprintf(&b, "%d seeded soaks of up to %d checks (1s interval) per row, green at 10%% of the traffic, blue at a %s "+
		"error rate and green that much higher from the first second (t=0), latency the same. *Caught* is the share of "+
		"soaks the guard failed; the times are seconds from t=0 to the check that failed, nearest-rank over all soaks with "+
		"a miss counted as never (so a median is \"never\" when fewer than half were caught). The +0 rows are greens as "+
		"good as blue: what those rows catch are false rollbacks.\n\n", detectSoaks, detectSoakSteps, fmtPct(base))
	b.WriteString("| green's error rate | requests/s to green | soaks | old guard: caught | old: median | old: p90 | new guard: caught | new: median | new: p90 |\n")
	b.WriteString("|---|---:|---:|---:|---:|---:|---:|---:|---:|\n")
	for _, r := range rows {
		what := fmt.Sprintf("+%g points (%s)", r.increase*100, fmtPct(base+r.increase))
		if r.increase == 0 {
			what = fmt.Sprintf("+0 (%s, as good as blue)", fmtPct(base))
		}
		fmt.Fprintf(&b, "| %s | %g | %d | %s | %s | %s | %s | %s | %s |\n", what, r.green, detectSoaks,
			share(count(r.old, verdict.Fail), detectSoaks), timePct(r.old, 50), timePct(r.old, 90),
			share(count(r.new, verdict.Fail), detectSoaks), timePct(r.new, 50), timePct(r.new, 90))
	}
	b.WriteString("\nThe old guard is faster, but only because it fails green on the noise of a few dozen requests: its " +
		"speed is the same mechanism as its false rollbacks above, and the +0 rows show it \"catching\" greens that were " +
		"as good as blue about as fast as real regressions. The new guard waits until the difference from blue is beyond " +
		"what chance explains at alpha 0.01, which takes longer for small regressions at low traffic; at 20 requests/s to " +
		"green, a +0.5-point regression is about one extra error every 10 seconds.\n\n")
	return b.String()
}

// (c) earlyStop.

func earlyStopSavings() string {
	ptr := func(x float64) *float64 { return &x }
	type green struct {
		name string
		s    scenario.Scenario
	}
	greens := []green{
		{"as good as blue (no errors on either color)", scenario.Scenario{}},
		{"+3 points of errors (3% against blue's 0%)", scenario.Scenario{GreenErrors: ptr(0.03)}},
		{"median 2x slower", scenario.Scenario{Slower: 2}},
		{"2% of requests 25x slower", scenario.Scenario{TailShare: 0.02, TailFactor: 25}},
	}
	type result struct {
		early, whole outcome // with earlyStop; without (the whole window, a Fail final)
		end          string  // the verdict of the whole window had nothing stopped it
	}
	var b strings.Builder
	b.WriteString("### What earlyStop saves on clear cases\n\n")
	fmt.Fprintf(&b, "Comparisons (an analysis step) with a %d-minute window at 200 requests/s in all, green at 50%%, "+
		"%d seeds per green. With earlyStop the comparison ends at the first step whose `Verdict` is Pass or Fail; "+
		"without it, it runs the whole window, but a Fail still ends it at once (`analysis.Compare` stops on a Fail "+
		"either way), so earlyStop only saves time on greens that pass. Times are seconds from the start of the window, "+
		"nearest-rank over the runs. *Whole window* is the verdict after all %d steps, had nothing stopped the "+
		"comparison: the verdict reached early must be the same kind.\n\n", earlyWindow/60, earlyRuns, earlyWindow)
	var goodEarly string
	b.WriteString("| green | runs | earlyStop: verdicts | earlyStop: median | earlyStop: p90 | without: verdicts | without: median | whole window: verdicts | same kind |\n")
	b.WriteString("|---|---:|---|---:|---:|---|---:|---|---:|\n")
	for gi, g := range greens {
		res := make([]result, earlyRuns)
		forEach(earlyRuns, func(i int) {
			s := g.s
			s.Rate, s.Share, s.Steps, s.Median, s.Sigma = 200, 0.5, earlyWindow, simMedian, simSigma
			s.Seed = 200_000 + uint64(gi)*1000 + uint64(i)
			steps, _ := s.Generate()
			m := mustMonitor(judge.Comparison, s.Steps)
			r := result{early: outcome{at: never}, whole: outcome{at: never}}
			for j, st := range steps {
				m.Add(st)
				if r.early.result == "" {
					if v := m.Verdict().Result; v == verdict.Pass || v == verdict.Fail {
						r.early = outcome{result: v, at: j}
					}
				}
				if r.whole.result == "" && m.Failed() {
					r.whole = outcome{result: verdict.Fail, at: j}
				}
			}
			v := m.Verdict().Result
			if r.early.result == "" {
				r.early = outcome{result: v, at: len(steps) - 1}
			}
			if r.whole.result == "" {
				r.whole = outcome{result: v, at: len(steps) - 1}
			}
			r.end = string(v)
			res[i] = r
		})
		var early, whole []outcome
		var ends []verdict.Result
		same := 0
		for _, r := range res {
			early, whole, ends = append(early, r.early), append(whole, r.whole), append(ends, verdict.Result(r.end))
			if r.early.result == verdict.Result(r.end) {
				same++
			}
		}
		logf("decisions: earlyStop on %q: %s at %s (median), without %s", g.name, results(early), decidedPct(early, 50), decidedPct(whole, 50))
		fmt.Fprintf(&b, "| %s | %d | %s | %s | %s | %s | %s | %s | %d of %d |\n", g.name, earlyRuns, results(early),
			decidedPct(early, 50), decidedPct(early, 90), results(whole), decidedPct(whole, 50), resultsOf(ends), same, earlyRuns)
		if gi == 0 {
			goodEarly = decidedPct(early, 50)
		}
	}
	fmt.Fprintf(&b, "\nOn the good green, earlyStop ended the comparison after a median of %s instead of the whole %ds; "+
		"the bad greens end at their Fail with or without it. The good green's time is set by its error rate: with no "+
		"errors on either color, its pass waits for enough green requests that a +0.4-point change would have been "+
		"detectable (at the configured power, 0.8), hence the narrow spread; its latency quantiles pass sooner.\n\n",
		goodEarly, earlyWindow)
	return b.String()
}

// (d) The labelled set.

func labelledOutcomes() string {
	all := scenario.Labelled()
	type outs struct{ newGuard, newCmp, oldGuard, oldCmp verdict.Result }
	res := make([]outs, len(all))
	forEach(len(all), func(i int) {
		s := all[i]
		steps, gaps := s.Generate()
		blue, green := oldPointsOf(steps)
		o := outs{newGuard: newSoak(steps, gaps, s.Steps).result, oldGuard: oldSoak(green).result}
		if s.Faults.GapLen == 0 {
			// A comparison reads a span the guard missed late but whole: there
			// is no gap to judge.
			o.newCmp = newComparison(steps, s.Steps).result
			o.oldCmp = oldCompare(oldDefaults(), blue, green)
		}
		res[i] = o
	})

	judges := []struct {
		name string
		get  func(outs) verdict.Result
	}{
		{"new guard", func(o outs) verdict.Result { return o.newGuard }},
		{"new comparison", func(o outs) verdict.Result { return o.newCmp }},
		{"old guard", func(o outs) verdict.Result { return o.oldGuard }},
		{"old comparison", func(o outs) verdict.Result { return o.oldCmp }},
	}
	labels := []scenario.Label{scenario.Good, scenario.Bad, scenario.BadData}
	perLabel := map[scenario.Label]int{}
	for _, s := range all {
		perLabel[s.Label]++
	}

	var b strings.Builder
	b.WriteString("### The labelled set\n\n")
	fmt.Fprintf(&b, "`scenario.Labelled()`: %d scenarios of %d one-second steps, each labelled with what its green truly is "+
		"(%d good: as good as blue, better, or 5%% slower; %d bad: error regressions of +0.5 to +3 points or 5x, median "+
		"and tail-only slowdowns, regressions in the last third; %d with data that cannot show what green is), at 5 to "+
		"2,000 requests/s, green at 10%% and 50%%, blue at 0 to 2%% errors. Each one is judged as a soak guard and as a "+
		"comparison of the whole window, by both judges, with the default settings. The %d scenarios whose guard missed "+
		"intervals are judged only as soaks (a comparison reads that span late but whole). A good green must not fail "+
		"(beyond alpha), and a bad green or bad data must never pass.\n\n",
		len(all), scenario.LabelledSteps, perLabel[scenario.Good], perLabel[scenario.Bad], perLabel[scenario.BadData],
		countIf(all, func(s scenario.Scenario) bool { return s.Faults.GapLen > 0 }))
	b.WriteString("| label | result |")
	for _, j := range judges {
		b.WriteString(" " + j.name + " |")
	}
	b.WriteString("\n|---|---|---:|---:|---:|---:|\n")
	for _, l := range labels {
		for _, r := range resultOrder {
			fmt.Fprintf(&b, "| %s | %s |", l, r)
			for _, j := range judges {
				n := 0
				for i, s := range all {
					if s.Label == l && j.get(res[i]) == r {
						n++
					}
				}
				if wrong(l, r) && n > 0 {
					fmt.Fprintf(&b, " **%d** |", n)
				} else {
					fmt.Fprintf(&b, " %d |", n)
				}
			}
			b.WriteString("\n")
		}
	}
	b.WriteString("\nIn bold: wrong decisions, a good green failed (a good release rolled back) or a bad green or bad data passed.\n\n")

	// The wrong decisions by kind of green.
	type kindRow struct {
		kind  string
		label scenario.Label
		n     int
		wrong [4]int
	}
	var kinds []*kindRow
	byKind := map[string]*kindRow{}
	for i, s := range all {
		kind, _, _ := strings.Cut(s.Name, ":")
		k := byKind[kind]
		if k == nil {
			k = &kindRow{kind: kind, label: s.Label}
			byKind[kind] = k
			kinds = append(kinds, k)
		}
		k.n++
		for ji, j := range judges {
			if wrong(s.Label, j.get(res[i])) {
				k.wrong[ji]++
			}
		}
	}
	b.WriteString("The wrong decisions by kind of green (kinds with none left out):\n\n")
	b.WriteString("| green | label | scenarios |")
	for _, j := range judges {
		b.WriteString(" " + j.name + " |")
	}
	b.WriteString("\n|---|---|---:|---:|---:|---:|---:|\n")
	var tot [4]int
	for _, k := range kinds {
		if k.wrong == [4]int{} {
			continue
		}
		what := "passed"
		if k.label == scenario.Good {
			what = "failed"
		}
		fmt.Fprintf(&b, "| %s | %s | %d |", k.kind, k.label, k.n)
		for ji := range judges {
			fmt.Fprintf(&b, " %d %s |", k.wrong[ji], what)
			tot[ji] += k.wrong[ji]
		}
		b.WriteString("\n")
	}
	fmt.Fprintf(&b, "| **all** | | %d |", len(all))
	for ji := range judges {
		fmt.Fprintf(&b, " **%d** |", tot[ji])
	}
	b.WriteString("\n\n")

	// The old guard checks no latency by default: the latency regressions it
	// failed, it failed on its error-rate limit, over blue's own 0.5%.
	latBad, latOldFail := 0, 0
	for i, s := range all {
		if s.Label == scenario.Bad && s.GreenErrors == nil && s.LateErrors == nil {
			latBad++
			if res[i].oldGuard == verdict.Fail {
				latOldFail++
			}
		}
	}
	fmt.Fprintf(&b, "The new judge's wrong decisions on the set: %d as a guard, %d as a comparison. The old guard rolled back "+
		"good greens and the old comparison passed bad ones: tail-only slowdowns that barely move a step's mean latency, "+
		"regressions confined to the last third of the window, and +0.5-point regressions, right at its +0.5-point margin. "+
		"The old guard's Fails on bad greens are not all catches either: it checks no latency by default, so each of the "+
		"%d latency-only regressions it failed (of %d, all on a 0.5%% base error rate) was failed on the same error-rate "+
		"noise that rolled back good greens. Where the new judge is Inconclusive, the scenario's traffic (as little as 0.5 requests/s to green for "+
		"3 minutes) could not show either way, and the verdict says so rather than guess.\n\n",
		tot[0], tot[1], latOldFail, latBad)
	for ji, j := range judges {
		logf("decisions: labelled set, %s: %d wrong", j.name, tot[ji])
	}
	return b.String()
}

// wrong is a decision that harms: a good green failed, anything else passed.
func wrong(l scenario.Label, r verdict.Result) bool {
	return l == scenario.Good && r == verdict.Fail || l != scenario.Good && r == verdict.Pass
}

func countIf(all []scenario.Scenario, f func(scenario.Scenario) bool) int {
	n := 0
	for _, s := range all {
		if f(s) {
			n++
		}
	}
	return n
}

func count(rs []outcome, r verdict.Result) int {
	n := 0
	for _, x := range rs {
		if x.result == r {
			n++
		}
	}
	return n
}

// results words the results of runs: "50 Pass", "48 Fail, 2 Inconclusive".
func results(rs []outcome) string {
	var out []verdict.Result
	for _, r := range rs {
		out = append(out, r.result)
	}
	return resultsOf(out)
}

func resultsOf(rs []verdict.Result) string {
	var parts []string
	for _, r := range resultOrder {
		if c := countResult(rs, r); c > 0 {
			parts = append(parts, fmt.Sprintf("%d %s", c, r))
		}
	}
	return strings.Join(parts, ", ")
}

// resultOrder is the order in which tables list results.
var resultOrder = []verdict.Result{verdict.Pass, verdict.Fail, verdict.Inconclusive}

func countResult(rs []verdict.Result, r verdict.Result) int {
	n := 0
	for _, x := range rs {
		if x == r {
			n++
		}
	}
	return n
}

// failSeconds are the runs' times to their Fail in seconds (the check at the
// end of step i is at i+1 seconds), +Inf for the runs that did not fail.
func failSeconds(rs []outcome) []float64 {
	xs := make([]float64, len(rs))
	for i, r := range rs {
		xs[i] = math.Inf(1)
		if r.result == verdict.Fail && r.at >= 0 {
			xs[i] = float64(r.at + 1)
		}
	}
	slices.Sort(xs)
	return xs
}

// nearestRank is the p-th percentile of sorted xs, nearest rank.
func nearestRank(xs []float64, p int) float64 {
	if len(xs) == 0 {
		return math.NaN()
	}
	k := int(math.Ceil(float64(p)/100*float64(len(xs)))) - 1
	return xs[max(0, min(k, len(xs)-1))]
}

// timePct is the p-th percentile of the time to Fail, misses counted as never.
func timePct(rs []outcome, p int) string {
	return fmtSeconds(nearestRank(failSeconds(rs), p))
}

// medianTime is the median time to Fail over the runs that failed.
func medianTime(rs []outcome) string {
	xs := failSeconds(rs)
	for len(xs) > 0 && math.IsInf(xs[len(xs)-1], 1) {
		xs = xs[:len(xs)-1]
	}
	if len(xs) == 0 {
		return "–"
	}
	return fmtSeconds(nearestRank(xs, 50))
}

// decidedPct is the p-th percentile of when the runs were decided (a run
// that was never decided early counts as the whole window).
func decidedPct(rs []outcome, p int) string {
	xs := make([]float64, len(rs))
	for i, r := range rs {
		xs[i] = float64(r.at + 1)
	}
	slices.Sort(xs)
	return fmtSeconds(nearestRank(xs, p))
}

func fmtSeconds(s float64) string {
	switch {
	case math.IsInf(s, 1):
		return "never"
	case math.IsNaN(s):
		return "–"
	}
	return fmt.Sprintf("%gs", s)
}

func share(k, n int) string {
	return fmt.Sprintf("%d (%s)", k, fmtPct(float64(k)/float64(n)))
}

func fmtPct(x float64) string {
	s := fmt.Sprintf("%.1f%%", x*100)
	return strings.Replace(s, ".0%", "%", 1)
}
