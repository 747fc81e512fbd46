package providers

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
}

// Metric is one metric's outcome and its numbers.
type Metric struct {
	Name     string  `json:"name"`
	Result   Result  `json:"result"`
	Critical bool    `json:"critical,omitempty"`
	Reason   string  `json:"reason,omitempty"`
	Values   []Value `json:"values,omitempty"`
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
	return b.String()
}
