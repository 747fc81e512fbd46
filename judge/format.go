package judge

import (
	"fmt"
	"math"
	"strconv"
	"strings"

	"github.com/cutoverhq/cutover/verdict"
)

// values collects a metric's numbers. It drops NaN and ±Inf because the verdict
// travels as JSON through the workflow history, where encoding/json refuses
// them; the metric's reason says in words what a missing number means.
type values []verdict.Value

func (vs *values) add(name string, v float64) {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return
	}
	*vs = append(*vs, verdict.Value{Name: name, Value: v})
}

// fmtCount prints a count with thousands separators: 4,100.
func fmtCount(x float64) string {
	if math.IsNaN(x) || math.IsInf(x, 0) {
		return fmt.Sprint(x)
	}
	s := strconv.FormatFloat(math.Round(x), 'f', 0, 64)
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimPrefix(s, "-")
	var b strings.Builder
	for i, r := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(r)
	}
	if neg {
		return "-" + b.String()
	}
	return b.String()
}

// fmtAbout rounds a count up to two significant digits, for "about 4,100 more".
func fmtAbout(x float64) string {
	if x < 100 {
		return fmtCount(math.Ceil(x))
	}
	e := math.Pow(10, math.Floor(math.Log10(x))-1)
	return fmtCount(math.Ceil(x/e) * e)
}

func fmtPct(x float64) string { return fmt.Sprintf("%.2f%%", x*100) }

// fmtPoints prints a difference of two rates in percentage points: +0.25 points.
func fmtPoints(x float64) string { return fmt.Sprintf("%+.2f points", x*100) }

func fmtRelative(x float64) string { return fmt.Sprintf("%+.0f%%", x*100) }

func fmtP(p float64) string {
	if p < 0.0001 {
		return "p<0.0001"
	}
	return "p=" + strconv.FormatFloat(p, 'g', 2, 64)
}

func fmtMs(seconds float64) string {
	ms := seconds * 1000
	switch {
	case math.IsNaN(ms):
		return "no value"
	case ms < 10:
		return fmt.Sprintf("%.2f ms", ms)
	case ms < 100:
		return fmt.Sprintf("%.1f ms", ms)
	default:
		return fmt.Sprintf("%.0f ms", ms)
	}
}

func fmtNumber(x float64) string { return strconv.FormatFloat(x, 'g', 4, 64) }

// confidence words 1-alpha: "99% confidence".
func confidence(alpha float64) string {
	return strconv.FormatFloat((1-alpha)*100, 'g', 4, 64) + "% confidence"
}

func andList(names []string) string {
	if len(names) <= 1 {
		return strings.Join(names, "")
	}
	return strings.Join(names[:len(names)-1], ", ") + " and " + names[len(names)-1]
}
