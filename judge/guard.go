package judge

import (
	"fmt"
	"math"
	"time"

	"github.com/cutoverhq/cutover/providers"
)

// Guard checks green against absolute limits during a soak, when there may be
// no blue traffic to compare with. It judges only green's most recent steps
// (points are oldest first): walking back from the newest, it takes steps until
// they hold guard.minRequests requests. That keeps a guard that runs every
// minute about what green is doing now: an error burst that has passed does
// not fail green forever, and one quiet step does not decide alone.
//
// "green error rate" fails above guard.maxErrorRate (not checked when that is
// 1); "green p99", only when guard.maxP99 is set, fails when any judged step's
// p99 is above it. Too few requests in the whole slice, or no p99 value, is
// Inconclusive.
func Guard(cfg Config, green []Point) providers.Verdict {
	cfg = cfg.WithDefaults()
	if err := cfg.Validate(); err != nil {
		return invalidConfig(err)
	}
	gc := cfg.Guard
	checkRate := *gc.MaxErrorRate < 1
	checkP99 := gc.MaxP99 > 0

	// Walk newest to oldest until the span holds enough requests.
	var t traffic
	start, enough := 0, false
	for i := len(green) - 1; i >= 0; i-- {
		p := green[i]
		if !countable(p.Requests) || !countable(p.Errors) {
			continue
		}
		t.requests += p.Requests
		t.errors += p.Errors
		t.steps++
		if t.requests >= float64(gc.MinRequests) {
			start, enough = i, true
			break
		}
	}

	var metrics []providers.Metric
	if !enough {
		reason := fmt.Sprintf("green served %s requests%s, need %d", fmtCount(t.requests), inTheLast(green), gc.MinRequests)
		if checkRate {
			var vs values
			vs.add("requests", t.requests)
			vs.add("errors", t.errors)
			vs.add("error_rate", t.rate())
			vs.add("max_error_rate", *gc.MaxErrorRate)
			vs.add("steps", float64(t.steps))
			metrics = append(metrics, providers.Metric{Name: metricGuardErrorRate, Result: providers.Inconclusive,
				Critical: *gc.Critical, Reason: reason, Values: vs})
		}
		if checkP99 {
			// A p99 of a handful of requests is one slow request; it decides
			// nothing either way.
			var vs values
			vs.add("max_p99_ms", ms(gc.MaxP99.D()))
			metrics = append(metrics, providers.Metric{Name: metricGuardP99, Result: providers.Inconclusive,
				Critical: *gc.Critical, Reason: reason, Values: vs})
		}
		return verdict(metrics)
	}

	span := green[start:]
	over := fmt.Sprintf("the last %d steps (%s requests)", t.steps, fmtCount(t.requests))
	if t.steps == 1 {
		over = fmt.Sprintf("the last step (%s requests)", fmtCount(t.requests))
	}
	if checkRate {
		rate, limit := t.rate(), *gc.MaxErrorRate
		m := providers.Metric{Name: metricGuardErrorRate, Critical: *gc.Critical}
		var vs values
		vs.add("requests", t.requests)
		vs.add("errors", t.errors)
		vs.add("error_rate", rate)
		vs.add("max_error_rate", limit)
		vs.add("steps", float64(t.steps))
		m.Values = vs
		switch {
		case t.errors > t.requests:
			m.Result = providers.Inconclusive
			m.Reason = fmt.Sprintf("green reported %s errors out of %s requests over %s", fmtCount(t.errors), fmtCount(t.requests), over)
		case rate > limit:
			m.Result = providers.Fail
			m.Reason = fmt.Sprintf("green's error rate %s over %s is above the limit %s", fmtPct(rate), over, fmtPct(limit))
		default:
			m.Result = providers.Pass
			m.Reason = fmt.Sprintf("green's error rate %s over %s is within the limit %s", fmtPct(rate), over, fmtPct(limit))
		}
		metrics = append(metrics, m)
	}
	if checkP99 {
		limit := gc.MaxP99.D().Seconds()
		worst := math.NaN()
		for _, p := range span {
			if p.P99 >= 0 && !math.IsInf(p.P99, 1) && (math.IsNaN(worst) || p.P99 > worst) {
				worst = p.P99
			}
		}
		m := providers.Metric{Name: metricGuardP99, Critical: *gc.Critical}
		var vs values
		vs.add("p99_ms", worst*1000)
		vs.add("max_p99_ms", limit*1000)
		m.Values = vs
		switch {
		case math.IsNaN(worst):
			m.Result = providers.Inconclusive
			m.Reason = "green has no p99 value over " + over
		case worst > limit:
			m.Result = providers.Fail
			m.Reason = fmt.Sprintf("green's p99 reached %s over %s, above the limit %s", fmtMs(worst), over, fmtMs(limit))
		default:
			m.Result = providers.Pass
			m.Reason = fmt.Sprintf("green's highest p99 was %s over %s, within the limit %s", fmtMs(worst), over, fmtMs(limit))
		}
		metrics = append(metrics, m)
	}
	return verdict(metrics)
}

// inTheLast words how much time the points cover, " in the last 5m0s", or ""
// when their times do not say. Times are step ends, so one step is added to
// the distance between the first and the last.
func inTheLast(points []Point) string {
	n := len(points)
	if n < 2 {
		return ""
	}
	first, prev, last := points[0].Time, points[n-2].Time, points[n-1].Time
	if first.IsZero() || prev.IsZero() || !last.After(prev) || last.Before(first) {
		return ""
	}
	d := last.Sub(first) + last.Sub(prev)
	return " in the last " + d.Round(time.Second).String()
}

func ms(d time.Duration) float64 { return d.Seconds() * 1000 }
