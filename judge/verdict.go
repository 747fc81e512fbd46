package judge

import (
	"fmt"
	"math"
	"strconv"
	"strings"

	"github.com/cutoverhq/cutover/providers"
)

// Unavailable is the verdict for a source that could not be read. It exists so
// that every provider turns an unreachable Prometheus or a failed scrape into
// the same Inconclusive answer: missing data is never a pass, and the error is
// kept where the person deciding will read it.
func Unavailable(source string, err error) providers.Verdict {
	reason := "unknown error"
	if err != nil {
		reason = err.Error()
	}
	return providers.Verdict{
		Result:  providers.Inconclusive,
		Summary: source + " could not be read: " + reason,
		Metrics: []providers.Metric{{Name: source, Result: providers.Inconclusive, Reason: reason}},
	}
}

// verdict combines metrics under one rule shared by Compare and Guard, so that
// a metric's Critical flag means the same thing in both: a critical Fail ends
// the release; anything uncertain, or a non-critical Fail, stops and asks a
// person; only a clean sweep passes. No metrics at all is uncertain too.
func verdict(metrics []providers.Metric) providers.Verdict {
	v := providers.Verdict{Metrics: metrics}
	if len(metrics) == 0 {
		v.Result = providers.Inconclusive
		v.Summary = "nothing was judged: every check is turned off"
		return v
	}
	var failed, why, undecided []string
	for _, m := range metrics {
		switch {
		case m.Result == providers.Fail && m.Critical:
			failed = append(failed, m.Name)
			if m.Reason != "" {
				why = append(why, m.Reason)
			}
		case m.Result == providers.Fail:
			undecided = append(undecided, m.Name+" failed but is not critical, so a person decides: "+m.Reason)
		case m.Result == providers.Inconclusive:
			undecided = append(undecided, m.Name+" inconclusive: "+m.Reason)
		case m.Result != providers.Pass:
			// A result this package never sets is not a pass either.
			undecided = append(undecided, fmt.Sprintf("%s has unknown result %q", m.Name, m.Result))
		}
	}
	switch {
	case len(failed) > 0:
		v.Result = providers.Fail
		// The reasons make the one line that notifications carry worth reading.
		v.Summary = andList(failed) + " failed"
		if len(why) > 0 {
			v.Summary += ": " + strings.Join(why, "; ")
		}
	case len(undecided) > 0:
		v.Result = providers.Inconclusive
		v.Summary = strings.Join(undecided, "; ")
	case len(metrics) == 1:
		v.Result = providers.Pass
		v.Summary = metrics[0].Name + " passed"
	default:
		v.Result = providers.Pass
		v.Summary = fmt.Sprintf("all %d metrics passed", len(metrics))
	}
	return v
}

func andList(names []string) string {
	if len(names) <= 1 {
		return strings.Join(names, "")
	}
	return strings.Join(names[:len(names)-1], ", ") + " and " + names[len(names)-1]
}

// values collects a metric's numbers. It drops NaN and ±Inf because the verdict
// travels as JSON through the workflow history, where encoding/json refuses
// them; the metric's Reason says in words what a missing number means.
type values []providers.Value

func (vs *values) add(name string, v float64) {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return
	}
	*vs = append(*vs, providers.Value{Name: name, Value: v})
}

// Number formats for reasons people read.

func fmtCount(x float64) string {
	if x == math.Trunc(x) && math.Abs(x) < 1e15 {
		return strconv.FormatFloat(x, 'f', 0, 64)
	}
	return strconv.FormatFloat(x, 'f', 1, 64)
}

func fmtPct(x float64) string { return fmt.Sprintf("%.2f%%", x*100) }

func fmtP(p float64) string {
	if p < 0.0001 {
		return "p<0.0001"
	}
	return "p=" + strconv.FormatFloat(p, 'g', 4, 64)
}

func fmtMs(seconds float64) string {
	ms := seconds * 1000
	switch {
	case ms < 10:
		return fmt.Sprintf("%.2f ms", ms)
	case ms < 100:
		return fmt.Sprintf("%.1f ms", ms)
	default:
		return fmt.Sprintf("%.0f ms", ms)
	}
}
