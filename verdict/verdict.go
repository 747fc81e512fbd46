// Package verdict holds the outcome of a judgement of green: the types that the
// judge produces, the analysis providers pass on, and the workflow, the CLI, the
// ledger and notifications show. It sits apart from both the judge and the
// providers so that each can use it without importing the other.
package verdict

import (
	"fmt"
	"strconv"
	"strings"
)

// Result is a metric's or a whole analysis' outcome.
type Result string

// Results. Inconclusive is never a pass: missing data, NaN, too few requests or an
// unreachable source all end here.
const (
	Pass         Result = "Pass"
	Fail         Result = "Fail"
	Inconclusive Result = "Inconclusive"
)

// Verdict is an analysis' outcome with the numbers behind it.
type Verdict struct {
	Result  Result   `json:"result"`
	Summary string   `json:"summary,omitempty"`
	Metrics []Metric `json:"metrics,omitempty"`
	// Underpowered is set on an Inconclusive verdict whose only shortcoming
	// is too little traffic: every interval was judged, no data was missing or
	// broken, nothing failed, but the data could not yet have shown green
	// within every allowed margin. A soak may go on from it
	// (onInconclusive: continue); a gap or broken data never is.
	Underpowered bool `json:"underpowered,omitempty"`
	// Judged and Intervals are a soak guard's coverage: how many of the
	// soak's intervals it judged on time, of how many there were.
	Judged    int `json:"judged,omitempty"`
	Intervals int `json:"intervals,omitempty"`
	// Notes name what the data could not show and what was wrong with it:
	// counter resets, steps with more errors than requests, gaps in the
	// guard's watch. Each is one line for people.
	Notes []string `json:"notes,omitempty"`
}

// Metric is one metric's outcome and its numbers.
type Metric struct {
	Name     string  `json:"name"`
	Result   Result  `json:"result"`
	Critical bool    `json:"critical,omitempty"`
	Reason   string  `json:"reason,omitempty"`
	Values   []Value `json:"values,omitempty"`
	// Detectable is the smallest change that the metric's data could have
	// detected at the judge's alpha and power, in words ("+0.62 points",
	// "+35% at p99"); empty when nothing could be detected at all.
	Detectable string `json:"detectable,omitempty"`
}

// Value is one named number behind a metric's result (a count, a rate, a p-value,
// a threshold). A slice rather than a map keeps the order stable for people and
// keeps map iteration out of workflow code.
type Value struct {
	Name  string  `json:"name"`
	Value float64 `json:"value"`
}

// FormatValue prints a verdict's number with four significant digits: enough
// for a p-value or a rate, short enough to read.
func FormatValue(v float64) string {
	return strconv.FormatFloat(v, 'g', 4, 64)
}

// String prints the verdict on one line with its numbers.
func (v Verdict) String() string {
	var b strings.Builder
	b.WriteString(string(v.Result))
	if v.Summary != "" {
		b.WriteString(": " + v.Summary)
	}
	for _, m := range v.Metrics {
		fmt.Fprintf(&b, "; %s %s", m.Name, m.Result)
		for i, val := range m.Values {
			sep := " "
			if i > 0 {
				sep = ", "
			}
			fmt.Fprintf(&b, "%s%s=%s", sep, val.Name, FormatValue(val.Value))
		}
		if m.Reason != "" {
			fmt.Fprintf(&b, " (%s)", m.Reason)
		}
	}
	for _, n := range v.Notes {
		fmt.Fprintf(&b, "; note: %s", n)
	}
	return b.String()
}
