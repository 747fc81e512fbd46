package scenario

import (
	"fmt"
	"time"
)

// The labelled set's parameters. Each scenario soaks or compares for
// LabelledSteps steps of one second; blue's latency is log-normal with a
// median of 20 ms and sigma 0.3 (p99 about 40 ms).
var (
	// LabelledRates are the total requests/s, LabelledShares green's part.
	LabelledRates  = []float64{5, 20, 100, 500, 2000}
	LabelledShares = []float64{0.1, 0.5}
	// LabelledBaseErrors are blue's error rates.
	LabelledBaseErrors = []float64{0, 0.001, 0.005, 0.02}
)

// LabelledSteps is the window of every labelled scenario, in one-second steps.
const LabelledSteps = 180

const (
	labelledMedian = 20 * time.Millisecond
	labelledSigma  = 0.3
)

func ptr(x float64) *float64 { return &x }

// Labelled is the labelled set: 400-odd scenarios, each with its label.
func Labelled() []Scenario {
	var out []Scenario
	seed := uint64(1)
	add := func(s Scenario) {
		s.Steps, s.Median, s.Sigma, s.Seed = LabelledSteps, labelledMedian, labelledSigma, seed
		seed++
		out = append(out, s)
	}
	traffic := func(rate, share float64) string { return fmt.Sprintf("%g req/s at %g%%", rate, share*100) }
	for _, rate := range LabelledRates {
		for _, share := range LabelledShares {
			tr := traffic(rate, share)
			for _, base := range LabelledBaseErrors {
				b := fmt.Sprintf("%s, blue %.1f%% errors", tr, base*100)
				// As good as blue, better, trivially slower.
				add(Scenario{Name: "equal: " + b, Label: Good, Rate: rate, Share: share, BlueErrors: base})
				add(Scenario{Name: "better: " + b, Label: Good, Rate: rate, Share: share, BlueErrors: base,
					GreenErrors: ptr(base / 2), Slower: 0.9})
				add(Scenario{Name: "5% slower: " + b, Label: Good, Rate: rate, Share: share, BlueErrors: base, Slower: 1.05})
				// Error regressions.
				for _, d := range []float64{0.005, 0.01, 0.03} {
					add(Scenario{Name: fmt.Sprintf("+%g points: %s", d*100, b), Label: Bad, Rate: rate, Share: share,
						BlueErrors: base, GreenErrors: ptr(base + d)})
				}
				if base > 0 {
					add(Scenario{Name: "5x errors: " + b, Label: Bad, Rate: rate, Share: share, BlueErrors: base, GreenErrors: ptr(5 * base)})
				}
			}
			// Latency regressions, on a 0.5% base error rate.
			const base = 0.005
			lat := func(name string, s Scenario) {
				s.Name, s.Label, s.Rate, s.Share, s.BlueErrors = name+": "+tr, Bad, rate, share, base
				add(s)
			}
			lat("median 30% slower", Scenario{Slower: 1.3})
			lat("median 2x slower", Scenario{Slower: 2})
			lat("2% of requests 25x slower", Scenario{TailShare: 0.02, TailFactor: 25})
			lat("1.5% of requests 5x slower", Scenario{TailShare: 0.015, TailFactor: 5})
			lat("2% of requests 5x slower", Scenario{TailShare: 0.02, TailFactor: 5})
			lat("1.5% of requests 10x slower", Scenario{TailShare: 0.015, TailFactor: 10})
			lat("1.5x slower in the last third", Scenario{LateSlower: 1.5})
			lat("3x slower in the last third", Scenario{LateSlower: 3})
			lat("+3 points in the last third", Scenario{LateErrors: ptr(base + 0.03)})
		}
	}
	// Broken data, at traffic that would otherwise be plenty.
	for _, share := range LabelledShares {
		const rate, base = 500.0, 0.005
		tr := traffic(rate, share)
		broken := func(name string, label Label, f Faults) {
			add(Scenario{Name: name + ": " + tr, Label: label, Rate: rate, Share: share, BlueErrors: base, Faults: f})
		}
		broken("no data", BadData, Faults{NoData: true})
		broken("NaN in 60% of steps", BadData, Faults{NaNShare: 0.6})
		broken("no blue", BadData, Faults{NoBlue: true})
		broken("no green", BadData, Faults{NoGreen: true})
		broken("errors above requests in 30% of steps", BadData, Faults{OverShare: 0.3})
		broken("guard missed 10 intervals", BadData, Faults{GapFrom: 60, GapLen: 10})
		// A reset loses a little data and is named; green is good.
		broken("3 counter resets", Good, Faults{Resets: 3})
		add(Scenario{Name: "3 counter resets, +3 points: " + tr, Label: Bad, Rate: rate, Share: share, BlueErrors: base,
			GreenErrors: ptr(base + 0.03), Faults: Faults{Resets: 3}})
	}
	return out
}
