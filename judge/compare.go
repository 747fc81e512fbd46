package judge

import (
	"fmt"
	"math"
	"strings"

	"github.com/cutoverhq/cutover/providers"
)

// Metric names, as people see them in verdicts and as the summary names them.
const (
	metricErrorRate      = "error rate"
	metricLatency        = "latency"
	metricGuardErrorRate = "green error rate"
	metricGuardP99       = "green p99"
)

// Compare judges green against blue over the same window, so that what counts
// is the difference green makes and not the traffic both colors share (a bad
// hour for a dependency hurts both). It returns the error-rate metric, then the
// latency metric.
//
// A difference fails green only when it is both statistically significant
// (p < alpha) and larger than the allowed margin: significance alone would fail
// a green 1% slower once there are enough samples, a margin alone would fail a
// green that was merely unlucky. Too little traffic, NaN and a color without
// data make a metric Inconclusive rather than a pass.
//
// cfg is completed with WithDefaults here; a config that Validate rejects gives
// an Inconclusive verdict saying why instead of judging by settings nobody
// meant.
func Compare(cfg Config, blue, green []Point) providers.Verdict {
	cfg = cfg.WithDefaults()
	if err := cfg.Validate(); err != nil {
		return invalidConfig(err)
	}
	return verdict([]providers.Metric{
		compareErrorRate(cfg, blue, green),
		compareLatency(cfg, blue, green),
	})
}

func invalidConfig(err error) providers.Verdict {
	return providers.Verdict{Result: providers.Inconclusive, Summary: "the judge settings cannot work: " + err.Error()}
}

// traffic is a color's request and error counts summed over its usable steps.
type traffic struct {
	requests, errors float64
	steps            int
}

// countable is a request or error count a step can be summed with: a NaN is
// a step the source had no value for, and a negative or infinite count is a
// counter reset or a broken query, not traffic.
func countable(x float64) bool { return x >= 0 && !math.IsInf(x, 1) }

func sumTraffic(points []Point) traffic {
	var t traffic
	for _, p := range points {
		if !countable(p.Requests) || !countable(p.Errors) {
			continue
		}
		t.requests += p.Requests
		t.errors += p.Errors
		t.steps++
	}
	return t
}

// rate is errors per request; NaN when there were no requests, so that it is
// left out of the verdict's values rather than shown as a 0% error rate.
func (t traffic) rate() float64 {
	if t.requests <= 0 {
		return math.NaN()
	}
	return t.errors / t.requests
}

// shortfall says why a color's traffic cannot be judged yet, or "" when it
// can.
func (t traffic) shortfall(color string, minRequests int) string {
	switch {
	case t.steps == 0:
		return color + " has no data"
	case t.requests < float64(minRequests):
		return fmt.Sprintf("%s served %s requests, need %d", color, fmtCount(t.requests), minRequests)
	case t.errors > t.requests:
		// Counts from different scrapes or rate windows; no rate to compare.
		return fmt.Sprintf("%s reported %s errors out of %s requests", color, fmtCount(t.errors), fmtCount(t.requests))
	}
	return ""
}

func compareErrorRate(cfg Config, bluePoints, greenPoints []Point) providers.Metric {
	ec := cfg.ErrorRate
	m := providers.Metric{Name: metricErrorRate, Critical: *ec.Critical}
	blue, green := sumTraffic(bluePoints), sumTraffic(greenPoints)
	br, gr := blue.rate(), green.rate()
	diff := gr - br

	var vs values
	vs.add("blue_requests", blue.requests)
	vs.add("blue_errors", blue.errors)
	vs.add("blue_error_rate", br)
	vs.add("green_requests", green.requests)
	vs.add("green_errors", green.errors)
	vs.add("green_error_rate", gr)
	finish := func(result providers.Result, reason string, z, p float64) providers.Metric {
		vs.add("increase", diff)
		vs.add("z", z)
		vs.add("p_value", p)
		vs.add("alpha", cfg.Alpha)
		vs.add("max_increase", *ec.MaxIncrease)
		vs.add("min_requests", float64(ec.MinRequests))
		m.Result, m.Reason, m.Values = result, reason, vs
		return m
	}

	var short []string
	for _, s := range []string{blue.shortfall("blue", ec.MinRequests), green.shortfall("green", ec.MinRequests)} {
		if s != "" {
			short = append(short, s)
		}
	}
	if len(short) > 0 {
		return finish(providers.Inconclusive, strings.Join(short, "; "), math.NaN(), math.NaN())
	}

	z, p := TwoProportion(blue.errors, blue.requests, green.errors, green.requests)
	if math.IsNaN(p) {
		return finish(providers.Inconclusive, "the error rates could not be compared", z, p)
	}
	switch {
	case p < cfg.Alpha && diff > *ec.MaxIncrease:
		return finish(providers.Fail, fmt.Sprintf("green's error rate %s is %.2f points above blue's %s (%s)",
			fmtPct(gr), diff*100, fmtPct(br), fmtP(p)), z, p)
	case p < cfg.Alpha:
		return finish(providers.Pass, fmt.Sprintf("green's error rate %s is %.2f points above blue's %s, within the allowed %.2f (%s)",
			fmtPct(gr), diff*100, fmtPct(br), *ec.MaxIncrease*100, fmtP(p)), z, p)
	default:
		return finish(providers.Pass, fmt.Sprintf("no significant difference: green %s, blue %s (%s)",
			fmtPct(gr), fmtPct(br), fmtP(p)), z, p)
	}
}

// latencySamples keeps the steps whose latency says something about requests:
// a NaN or infinite latency is a step without a value, and a step that served
// no requests has a latency of nothing (often a stale 0). A NaN request count
// only means the source did not report it, so such a step's latency is kept.
func latencySamples(points []Point) []float64 {
	xs := make([]float64, 0, len(points))
	for _, p := range points {
		if math.IsNaN(p.Latency) || math.IsInf(p.Latency, 0) || p.Latency < 0 || p.Requests <= 0 {
			continue
		}
		xs = append(xs, p.Latency)
	}
	return xs
}

func compareLatency(cfg Config, bluePoints, greenPoints []Point) providers.Metric {
	lc := cfg.Latency
	m := providers.Metric{Name: metricLatency, Critical: *lc.Critical}
	blue, green := latencySamples(bluePoints), latencySamples(greenPoints)
	bm, gm := median(blue), median(green)
	slowdown := gm/bm - 1
	if bm == 0 {
		// A 0 s median is a clock too coarse for the service; green is only
		// "infinitely" slower if its median is not 0 too.
		slowdown = 0
		if gm != 0 {
			slowdown = math.Inf(1)
		}
	}

	var vs values
	vs.add("blue_samples", float64(len(blue)))
	vs.add("green_samples", float64(len(green)))
	vs.add("blue_median_ms", bm*1000)
	vs.add("green_median_ms", gm*1000)
	vs.add("slowdown", slowdown)
	finish := func(result providers.Result, reason string, u, p float64) providers.Metric {
		vs.add("u", u)
		vs.add("p_value", p)
		vs.add("alpha", cfg.Alpha)
		vs.add("max_slowdown", *lc.MaxSlowdown)
		m.Result, m.Reason, m.Values = result, reason, vs
		return m
	}

	var short []string
	for _, c := range []struct {
		color   string
		points  []Point
		samples []float64
	}{{"blue", bluePoints, blue}, {"green", greenPoints, green}} {
		switch {
		case len(c.points) == 0:
			short = append(short, c.color+" has no data")
		case len(c.samples) < lc.MinSamples:
			short = append(short, fmt.Sprintf("%s has %d samples, need %d", c.color, len(c.samples), lc.MinSamples))
		}
	}
	if len(short) > 0 {
		return finish(providers.Inconclusive, strings.Join(short, "; "), math.NaN(), math.NaN())
	}

	u, p, err := slowerTest(green, blue)
	if err != nil {
		return finish(providers.Inconclusive, "the latencies could not be compared: "+err.Error(), u, p)
	}
	how := fmt.Sprintf("green's median step latency %s against blue's %s", fmtMs(gm), fmtMs(bm))
	if !math.IsInf(slowdown, 1) {
		how = fmt.Sprintf("green's median step latency %s is %s blue's %s", fmtMs(gm), fmtChange(slowdown), fmtMs(bm))
	}
	switch {
	case p < cfg.Alpha && slowdown > *lc.MaxSlowdown:
		return finish(providers.Fail, fmt.Sprintf("%s (%s)", how, fmtP(p)), u, p)
	case p < cfg.Alpha:
		return finish(providers.Pass, fmt.Sprintf("%s, within the allowed %.1f%% (%s)", how, *lc.MaxSlowdown*100, fmtP(p)), u, p)
	default:
		return finish(providers.Pass, fmt.Sprintf("no significant slowdown: %s (%s)", how, fmtP(p)), u, p)
	}
}

// fmtChange words a relative change: "12.0% above", "3.5% below", "equal to".
func fmtChange(x float64) string {
	switch {
	case x > 0:
		return fmt.Sprintf("%.1f%% above", x*100)
	case x < 0:
		return fmt.Sprintf("%.1f%% below", -x*100)
	}
	return "equal to"
}
