// Package judge decides whether green is as good as blue from what the analysis
// sources read, step by step: request and error counts, latency histograms and
// the app's own metrics, for each color. It is pure statistics: no I/O, no
// clocks, no imports of the providers. The analysis package feeds it and the
// workflow acts on its verdicts.
//
// One Monitor judges one soak or one comparison. Every step is added as it is
// read, and the Monitor can say at any moment whether green has failed, and,
// when asked for a final verdict, whether it passed. Its tests are sequential
// and anytime-valid: they hold their error rates however often they are
// looked at, so the guard may check every second for an hour.
//
//   - Fail: green is worse than blue, shown by an e-process (a nonnegative
//     supermartingale under "green is no worse") crossing 1/alpha; by Ville's
//     inequality that happens to a green as good as blue in at most alpha of
//     soaks. See eprocess.go for the test and its sources.
//   - Pass: the data rule out a change larger than the allowed margin, by a
//     time-uniform (asymptotic) confidence sequence, AND the change the data
//     could have detected at alpha and power is within the margin, AND the
//     newest part of the window does not look worse. See pass.go.
//   - Inconclusive: neither, with the reason: not enough traffic (and how much
//     more is needed), or data that cannot be used (and what was wrong).
//
// The rule that matters most: missing data is never a pass.
package judge

import (
	"math"
	"time"
)

// Step is what a source read for one step of time, for both colors.
type Step struct {
	// End is when the step ended.
	End time.Time
	// Blue and Green are each color's numbers in the step.
	Blue, Green Color
	// Resets names the counter resets the source saw in the step, one line
	// each; the verdict repeats them.
	Resets []string
}

// Color is one color's numbers in one step. A NaN count means the source had
// no value for it in this step; an empty histogram means no latency data.
type Color struct {
	// Requests is how many requests the color served in the step.
	Requests float64
	// Errors is how many of them failed (5xx by default).
	Errors float64
	// Latency is the step's request latency histogram, in seconds.
	Latency Histogram
	// Metrics are the app's own metrics in the step, by name: a proportion's
	// events and trials, or a mean's sum and count.
	Metrics map[string]Pair
}

// Pair is one step of an app metric: Num/Den is a proportion (checkouts per
// session) or a mean (revenue per order).
type Pair struct {
	Num, Den float64
}

// Histogram is a step's latency distribution, as classic (Prometheus) buckets
// give it: Counts[i] observations fell in (Bounds[i-1], Bounds[i]], and the
// last count, Counts[len(Bounds)], above the last bound. Bounds are finite and
// ascending; a histogram with no bounds is no data.
type Histogram struct {
	Bounds []float64 `json:"bounds,omitempty"`
	Counts []float64 `json:"counts,omitempty"`
}

// Total is the number of observations in the histogram.
func (h Histogram) Total() float64 {
	var t float64
	for _, c := range h.Counts {
		t += c
	}
	return t
}

// Above is how many observations lie above bound index i (that is, above
// Bounds[i]).
func (h Histogram) Above(i int) float64 {
	var t float64
	for _, c := range h.Counts[i+1:] {
		t += c
	}
	return t
}

// valid reports whether the histogram is usable: matching lengths, ascending
// finite bounds, counts that are finite and not negative.
func (h Histogram) valid() bool {
	if len(h.Bounds) == 0 || len(h.Counts) != len(h.Bounds)+1 {
		return false
	}
	for i, b := range h.Bounds {
		if math.IsNaN(b) || math.IsInf(b, 0) || (i > 0 && b <= h.Bounds[i-1]) {
			return false
		}
	}
	for _, c := range h.Counts {
		if !(c >= 0) || math.IsInf(c, 1) {
			return false
		}
	}
	return true
}

func (h Histogram) sameBounds(o Histogram) bool {
	if len(h.Bounds) != len(o.Bounds) {
		return false
	}
	for i := range h.Bounds {
		if h.Bounds[i] != o.Bounds[i] {
			return false
		}
	}
	return true
}

// add adds o's counts into h, which must have the same bounds (or none yet).
func (h *Histogram) add(o Histogram) {
	if len(h.Bounds) == 0 {
		h.Bounds = append([]float64(nil), o.Bounds...)
		h.Counts = make([]float64, len(o.Counts))
	}
	for i, c := range o.Counts {
		h.Counts[i] += c
	}
}

// Quantile estimates the q-quantile by linear interpolation inside the bucket
// that holds it, as PromQL's histogram_quantile does (from 0 for the first
// bucket); NaN without observations. A rank in the overflow bucket gives the
// last bound: the histogram cannot say more. The judge only shows it: its
// tests count requests above bounds and never interpolate.
func (h Histogram) Quantile(q float64) float64 {
	total := h.Total()
	if total <= 0 || len(h.Counts) != len(h.Bounds)+1 {
		return math.NaN()
	}
	rank := q * total
	var cum, lower float64
	for i, b := range h.Bounds {
		c := h.Counts[i]
		if cum+c >= rank && c > 0 {
			return lower + (b-lower)*(rank-cum)/c
		}
		cum += c
		lower = b
	}
	return h.Bounds[len(h.Bounds)-1]
}

// fractionAbove estimates the share of observations above x, interpolating
// linearly inside a bucket; NaN without observations.
func (h Histogram) fractionAbove(x float64) float64 {
	total := h.Total()
	if total <= 0 {
		return math.NaN()
	}
	var lower, above float64
	above = total
	for i, b := range h.Bounds {
		c := h.Counts[i]
		switch {
		case x >= b:
			above -= c
		case x > lower:
			above -= c * (x - lower) / (b - lower)
		}
		lower = b
	}
	return math.Max(0, above) / total
}
