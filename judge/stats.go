package judge

import (
	"errors"
	"math"
	"sort"

	"github.com/aclements/go-moremath/stats"
)

// TwoProportion is the pooled two-proportion z-test behind the error-rate
// comparison. It is one-sided because only a worse green should stop a release:
// a green with fewer errors than blue is good news, not a difference to act on.
// p is the probability of a z at least this large if both colors shared one
// error rate.
//
// When the pooled proportion is 0 or 1 (no errors anywhere, or nothing but
// errors) the two colors cannot differ, so the answer is z=0, p=1 instead of the
// 0/0 the formula would give. A NaN input, or a color with no requests, has no
// answer and gives NaN, so that a caller cannot mistake it for "no difference".
func TwoProportion(blueErrors, blueRequests, greenErrors, greenRequests float64) (z, p float64) {
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
	// Φ(-z) rather than 1-Φ(z): the subtraction would round small p-values
	// (a clearly broken green) to 0 and lose the number people read.
	return z, stats.StdNormal.CDF(-z)
}

// slowerTest asks whether green's latency samples tend to be larger than
// blue's: a one-sided Mann-Whitney U test with green as the first sample, so
// that u counts the (green, blue) pairs in which green was slower (ties count
// half). It is rank-based because step latencies are skewed and spiky, which a
// t-test's normality assumption does not survive.
//
// go-moremath uses the exact U distribution up to 50 samples per color (25 when
// values tie) and a normal approximation with tie and continuity correction
// above that. Samples that are all equal cannot show a difference: that is
// p=1 and u at the middle of its range, not an error.
func slowerTest(green, blue []float64) (u, p float64, err error) {
	r, err := stats.MannWhitneyUTest(green, blue, stats.LocationGreater)
	if errors.Is(err, stats.ErrSamplesEqual) {
		return float64(len(green)*len(blue)) / 2, 1, nil
	}
	if err != nil {
		return math.NaN(), math.NaN(), err
	}
	// The exact distribution's 1-CDF can land a rounding step outside [0, 1].
	return r.U, math.Min(1, math.Max(0, r.P)), nil
}

// median of xs, which it sorts in place. NaN when xs is empty.
func median(xs []float64) float64 {
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
