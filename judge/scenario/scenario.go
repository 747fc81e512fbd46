// Package scenario generates labelled blue/green situations for judging the
// judge: synthetic traffic of both colors, step by step, whose truth is known
// because it was made that way. The labelled set (Labelled) covers what a
// release tool meets: traffic from 5 to 2,000 requests/s, green at 10% and
// 50%, base error rates from 0 to 2%, greens as good as blue, better and
// trivially slower, error regressions, median and tail-only slowdowns,
// regressions that start late, and data that is missing or broken. The tests
// in judge/scenario_test.go assert on it, and `make bench` uses it for the
// decision-quality figures.
//
// Everything is deterministic: a scenario's steps depend only on its
// parameters and Seed.
package scenario

import (
	"fmt"
	"math"
	"math/rand/v2"
	"time"

	"gonum.org/v1/gonum/stat/distuv"

	"github.com/cutoverhq/cutover/judge"
)

// Label is what a scenario's green truly is.
type Label string

// Labels.
const (
	// Good: green is as good as blue, better, or slower by less than the
	// judge's default allowances. It must not be failed (beyond alpha).
	Good Label = "good"
	// Bad: green is clearly worse. It must never pass.
	Bad Label = "bad"
	// BadData: the data cannot show what green is. It must never pass.
	BadData Label = "bad data"
)

// Scenario is one situation, with its parameters. Zero values are "as blue".
type Scenario struct {
	Name  string
	Label Label
	// Rate is the requests per second to both colors together, and Share
	// green's part of them.
	Rate, Share float64
	// Steps is how many steps (of Interval) the window holds.
	Steps    int
	Interval time.Duration
	// BlueErrors is blue's error rate; GreenErrors green's (by default the
	// same).
	BlueErrors  float64
	GreenErrors *float64
	// LateErrors is green's error rate in the last third of the window
	// instead, when set.
	LateErrors *float64
	// Latency: blue's is log-normal with Median and Sigma (the standard
	// deviation of its logarithm). Green's is Slower times blue's (1 when 0);
	// TailShare of green's requests are TailFactor times slower again; in the
	// last third of the window all of green's are LateSlower times slower.
	Median                time.Duration
	Sigma                 float64
	Slower                float64
	TailShare, TailFactor float64
	LateSlower            float64
	// Faults break the data.
	Faults Faults
	// Seed makes the traffic.
	Seed uint64
}

// Faults are what can go wrong with the data.
type Faults struct {
	// NoData: the source returns nothing for either color.
	NoData bool
	// NaNShare of steps have no value (NaN) for both colors.
	NaNShare float64
	// NoBlue, NoGreen: a color never has data.
	NoBlue, NoGreen bool
	// Resets counter resets are spread over the window: the counts between
	// the last read and the reset are lost, as with Prometheus's increase(),
	// and the step names the reset.
	Resets int
	// OverShare of steps report more errors than requests for green.
	OverShare float64
	// Gap marks steps [GapFrom, GapFrom+GapLen) as a span the guard missed:
	// their data arrive late, all in the step after the gap.
	GapFrom, GapLen int
}

// Buckets are the latency histogram bounds, in seconds: the router's ladder
// (router/metrics.go), 85 bounds from 0.5 ms to 60 s, each about 15% above
// the last.
func Buckets() []float64 {
	const n = 85
	lo, hi := 0.0005, 60.0
	r := math.Pow(hi/lo, 1/float64(n-1))
	b := make([]float64, n)
	for i := range b {
		v := lo * math.Pow(r, float64(i))
		p := math.Pow(10, math.Floor(math.Log10(v))-3)
		b[i] = math.Round(v/p) * p
	}
	return b
}

// Generate makes the scenario's steps, oldest first, and the gaps the guard
// would have recorded (only when Faults.Gap is set).
func (s Scenario) Generate() ([]judge.Step, []judge.Gap) {
	rng := rand.New(rand.NewPCG(s.Seed, 0x5ce1a71))
	interval := s.Interval
	if interval == 0 {
		interval = time.Second
	}
	bounds := Buckets()
	t0 := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	greenErr := s.BlueErrors
	if s.GreenErrors != nil {
		greenErr = *s.GreenErrors
	}
	slower := s.Slower
	if slower == 0 {
		slower = 1
	}
	resetAt := map[int]bool{}
	for i := 1; i <= s.Faults.Resets; i++ {
		resetAt[i*s.Steps/(s.Faults.Resets+1)] = true
	}
	var steps []judge.Step
	var gaps []judge.Gap
	var heldG, heldB judge.Color
	for i := 0; i < s.Steps; i++ {
		end := t0.Add(time.Duration(i+1) * interval)
		late := i >= 2*s.Steps/3
		n := poisson(rng, s.Rate*interval.Seconds())
		ng := binomial(rng, n, s.Share)
		nb := n - ng
		ge, gs := greenErr, slower
		if late && s.LateErrors != nil {
			ge = *s.LateErrors
		}
		if late && s.LateSlower > 0 {
			gs *= s.LateSlower
		}
		blue := s.color(rng, nb, s.BlueErrors, 1, 0, 0, bounds)
		green := s.color(rng, ng, ge, gs, s.TailShare, s.TailFactor, bounds)
		st := judge.Step{End: end, Blue: blue, Green: green}
		f := s.Faults
		switch {
		case f.NoData:
			continue
		case f.NaNShare > 0 && rng.Float64() < f.NaNShare:
			st.Blue, st.Green = nanColor(), nanColor()
		}
		if f.NoBlue {
			st.Blue = nanColor()
		}
		if f.NoGreen {
			st.Green = nanColor()
		}
		if f.OverShare > 0 && rng.Float64() < f.OverShare && st.Green.Requests >= 0 {
			st.Green.Errors = st.Green.Requests + 1 + float64(rng.IntN(5))
		}
		if resetAt[i] {
			// The counters restarted a moment before this read: what was
			// counted since the last read and before the restart is lost.
			keep := rng.Float64()
			st.Blue = scaled(st.Blue, keep)
			st.Green = scaled(st.Green, keep)
			st.Resets = []string{fmt.Sprintf("cutover_router_requests_total{color=\"green\"} went from 1234 to %d at %s",
				int(st.Green.Requests), end.Format("15:04:05"))}
		}
		if f.GapLen > 0 && i >= f.GapFrom && i < f.GapFrom+f.GapLen {
			heldG, heldB = merge(heldG, st.Green), merge(heldB, st.Blue)
			continue
		}
		if f.GapLen > 0 && i == f.GapFrom+f.GapLen {
			st.Green, st.Blue = merge(heldG, st.Green), merge(heldB, st.Blue)
			gaps = append(gaps, judge.Gap{From: t0.Add(time.Duration(f.GapFrom) * interval), To: end, Missed: f.GapLen})
		}
		steps = append(steps, st)
	}
	return steps, gaps
}

// color is one color's step: n requests, each an error with probability
// errRate, with latencies log-normal around Median times slow, tail of them
// tailFactor times slower still.
func (s Scenario) color(rng *rand.Rand, n int, errRate, slow, tail, tailFactor float64, bounds []float64) judge.Color {
	c := judge.Color{Requests: float64(n), Errors: float64(binomial(rng, n, errRate))}
	h := judge.Histogram{Bounds: bounds, Counts: make([]float64, len(bounds)+1)}
	mu := math.Log(s.Median.Seconds() * slow)
	sigma := s.Sigma
	for range n {
		x := math.Exp(mu + sigma*rng.NormFloat64())
		if tail > 0 && rng.Float64() < tail {
			x *= tailFactor
		}
		h.Counts[bucketOf(bounds, x)]++
	}
	c.Latency = h
	return c
}

// bucketOf is the index of the bucket (lower, upper] that holds x.
func bucketOf(bounds []float64, x float64) int {
	lo, hi := 0, len(bounds)
	for lo < hi {
		m := (lo + hi) / 2
		if bounds[m] >= x {
			hi = m
		} else {
			lo = m + 1
		}
	}
	return lo
}

func nanColor() judge.Color { return judge.Color{Requests: math.NaN(), Errors: math.NaN()} }

// scaled keeps a share of a step's counts (a reset lost the rest).
func scaled(c judge.Color, keep float64) judge.Color {
	out := judge.Color{Requests: math.Floor(c.Requests * keep)}
	out.Errors = math.Min(out.Requests, math.Floor(c.Errors*keep))
	h := judge.Histogram{Bounds: c.Latency.Bounds, Counts: make([]float64, len(c.Latency.Counts))}
	left := out.Requests
	for i, n := range c.Latency.Counts {
		k := math.Min(left, math.Floor(n*keep))
		h.Counts[i] = k
		left -= k
	}
	out.Latency = h
	return out
}

// merge adds two steps of one color (data held back by a gap).
func merge(a, b judge.Color) judge.Color {
	if a.Latency.Bounds == nil {
		return b
	}
	out := judge.Color{Requests: a.Requests + b.Requests, Errors: a.Errors + b.Errors}
	h := judge.Histogram{Bounds: a.Latency.Bounds, Counts: make([]float64, len(a.Latency.Counts))}
	for i := range h.Counts {
		h.Counts[i] = a.Latency.Counts[i] + b.Latency.Counts[i]
	}
	out.Latency = h
	return out
}

func poisson(rng *rand.Rand, lambda float64) int {
	if lambda <= 0 {
		return 0
	}
	return int(distuv.Poisson{Lambda: lambda, Src: rng}.Rand())
}

func binomial(rng *rand.Rand, n int, p float64) int {
	if n <= 0 || p <= 0 {
		return 0
	}
	if p >= 1 {
		return n
	}
	return int(distuv.Binomial{N: float64(n), P: p, Src: rng}.Rand())
}
