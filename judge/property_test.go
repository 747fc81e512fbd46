package judge_test

import (
	"fmt"
	"math"
	"os"
	"strconv"
	"sync"
	"testing"
	"time"

	"gonum.org/v1/gonum/stat/distuv"

	"github.com/cutoverhq/cutover/judge"
	"github.com/cutoverhq/cutover/judge/scenario"
	"github.com/cutoverhq/cutover/verdict"
)

// The properties the judge promises, checked by simulation over many seeded
// runs rather than by one example. CUTOVER_SIM_SEED moves every seed, so the
// same properties can be checked on other draws:
//
//	CUTOVER_SIM_SEED=7 go test -run 'Soaks|FalseAlarm|Margin|Detectable' ./judge/

func seedBase(t testing.TB) uint64 {
	if s := os.Getenv("CUTOVER_SIM_SEED"); s != "" {
		n, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			t.Fatalf("CUTOVER_SIM_SEED=%q: %v", s, err)
		}
		return n * 1_000_003
	}
	return 0
}

// atMost fails when k of n runs had an event whose probability the judge
// promises is at most p: it allows the count a fair coin of probability p
// would exceed less than once in a thousand tries.
func atMost(t *testing.T, what string, k, n int, p float64) {
	t.Helper()
	b := distuv.Binomial{N: float64(n), P: p}
	limit := 0
	for b.CDF(float64(limit)) < 0.999 {
		limit++
	}
	t.Logf("%s: %d of %d (%.2f%%; promised at most %.2f%%, allowed %d)", what, k, n, 100*float64(k)/float64(n), 100*p, limit)
	if k > limit {
		t.Errorf("%s: %d of %d, more than the %d allowed at a rate of %g", what, k, n, limit, p)
	}
}

// runMany runs f over n seeds, two at a time, and counts the true answers.
func runMany(n int, f func(i int) bool) int {
	var mu sync.Mutex
	var wg sync.WaitGroup
	sem := make(chan struct{}, 2)
	count := 0
	for i := range n {
		wg.Go(func() {
			sem <- struct{}{}
			defer func() { <-sem }()
			if f(i) {
				mu.Lock()
				count++
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	return count
}

// TestOneThousandGoodSoaks is the simulation: 1,000 soaks of 300
// checks, 20 requests/s to green (10% of 200), 0.5% errors on both colors and
// the same latency, with the default settings (error rate and three latency
// quantiles). At most alpha (1%) of them may roll back.
func TestOneThousandGoodSoaks(t *testing.T) {
	if testing.Short() {
		t.Skip("simulation")
	}
	base := seedBase(t)
	const soaks = 1000
	failed := runMany(soaks, func(i int) bool {
		s := scenario.Scenario{Label: scenario.Good, Rate: 200, Share: 0.1, Steps: 300, BlueErrors: 0.005,
			Median: 20 * time.Millisecond, Sigma: 0.3, Seed: base + uint64(i) + 1}
		return guard(t, s, judge.Config{}).result == verdict.Fail
	})
	atMost(t, "good soaks rolled back", failed, soaks, 0.01)
}

// TestFalseAlarmWhateverTheSoak: a green as good as blue is failed in at most
// alpha of soaks whatever the interval (requests per step), the soak's length
// and the base error rate, including rates so low that a step holds no error
// at all, and a base rate that changes during the soak for both colors (a
// dependency's bad minute).
func TestFalseAlarmWhateverTheSoak(t *testing.T) {
	if testing.Short() {
		t.Skip("simulation")
	}
	base := seedBase(t)
	cfg := judge.Config{Latency: judge.LatencyConfig{Off: true}, Alpha: 0.05}
	const runs = 300
	for _, c := range []struct {
		perStep float64 // requests per step, both colors
		steps   int
		rate    float64
		share   float64
	}{
		{20, 600, 0.005, 0.1}, // 1s interval at 20 req/s, 10 minutes
		{600, 30, 0.005, 0.1}, // 30s interval, 15 minutes
		{200, 300, 0.0005, 0.5},
		{200, 300, 0.02, 0.1},
		{2000, 120, 0.2, 0.5},  // a very high base rate
		{10, 1000, 0.001, 0.1}, // almost never an error in a step
	} {
		t.Run(fmt.Sprintf("%g per step x %d steps at %g%% errors, green %g%%", c.perStep, c.steps, c.rate*100, c.share*100), func(t *testing.T) {
			t.Parallel()
			failed := runMany(runs, func(i int) bool {
				s := scenario.Scenario{Rate: c.perStep, Share: c.share, Steps: c.steps, BlueErrors: c.rate, Seed: base + uint64(i)*7919 + 11}
				return guard(t, s, cfg).result == verdict.Fail
			})
			atMost(t, "failed", failed, runs, cfg.Alpha)
		})
	}
	t.Run("a bad minute for both colors", func(t *testing.T) {
		t.Parallel()
		failed := runMany(runs, func(i int) bool {
			m, _ := judge.New(cfg, judge.Plan{Mode: judge.Soak, Steps: 300})
			calm := scenario.Scenario{Rate: 200, Share: 0.1, Steps: 300, BlueErrors: 0.002, Seed: base + uint64(i) + 5}
			storm := calm
			storm.BlueErrors, storm.Seed = 0.3, calm.Seed+100000
			a, _ := calm.Generate()
			b, _ := storm.Generate()
			for j := range a {
				st := a[j]
				if j >= 100 && j < 160 {
					st = b[j]
				}
				m.Add(st)
				if m.Failed() {
					return true
				}
			}
			return false
		})
		atMost(t, "failed", failed, runs, cfg.Alpha)
	})
}

// TestPassAtTheMarginIsRare: a green exactly as much worse as allowed is
// given a Pass in at most alpha of comparisons, for the error rate
// (maxIncrease) and for a latency quantile (maxSlowdown), at traffic where a
// pass of a good green is common.
func TestPassAtTheMarginIsRare(t *testing.T) {
	if testing.Short() {
		t.Skip("simulation")
	}
	base := seedBase(t)
	const runs = 200
	errOnly := judge.Config{Latency: judge.LatencyConfig{Off: true}, Alpha: 0.05}
	for _, c := range []struct{ rate, share, blue float64 }{{2000, 0.5, 0}, {2000, 0.5, 0.005}, {2000, 0.1, 0.02}, {500, 0.5, 0.001}} {
		t.Run(fmt.Sprintf("error rate +0.4 points at %g req/s, green %g%%, blue %g%%", c.rate, c.share*100, c.blue*100), func(t *testing.T) {
			t.Parallel()
			passed := runMany(runs, func(i int) bool {
				g := c.blue + 0.004
				s := scenario.Scenario{Rate: c.rate, Share: c.share, Steps: 300, BlueErrors: c.blue, GreenErrors: &g, Seed: base + uint64(i) + 1}
				return compare(t, s, errOnly).result == verdict.Pass
			})
			good := runMany(20, func(i int) bool {
				s := scenario.Scenario{Rate: c.rate, Share: c.share, Steps: 300, BlueErrors: c.blue, Seed: base + uint64(i) + 9999}
				return compare(t, s, errOnly).result == verdict.Pass
			})
			t.Logf("a green as good as blue passed %d of 20 times at this traffic", good)
			atMost(t, "passed at the margin", passed, runs, errOnly.Alpha)
		})
	}
	t.Run("p50 20% slower at 2000 req/s", func(t *testing.T) {
		t.Parallel()
		cfg := judge.Config{ErrorRate: judge.ErrorRateConfig{Off: true}, Alpha: 0.05,
			Latency: judge.LatencyConfig{Quantiles: []judge.QuantileConfig{{Quantile: 0.5, MaxSlowdown: 0.2}}}}
		passed := runMany(runs, func(i int) bool {
			s := scenario.Scenario{Rate: 2000, Share: 0.5, Steps: 120, Median: 20 * time.Millisecond, Sigma: 0.3, Slower: 1.2, Seed: base + uint64(i) + 1}
			return compare(t, s, cfg).result == verdict.Pass
		})
		atMost(t, "passed at the margin", passed, runs, cfg.Alpha)
	})
}

// TestDetectableIsDetected: the change a verdict calls detectable is, when
// it is real, caught with about the configured power (0.8) in the same
// amount of traffic. The figure is a normal approximation of the failure
// test, so the test asks for at least 0.65 and at most 1.
func TestDetectableIsDetected(t *testing.T) {
	if testing.Short() {
		t.Skip("simulation")
	}
	base := seedBase(t)
	cfg := judge.Config{Latency: judge.LatencyConfig{Off: true}}
	for _, c := range []struct{ rate, share, blue float64 }{{200, 0.1, 0.005}, {2000, 0.5, 0.01}, {500, 0.5, 0}} {
		t.Run(fmt.Sprintf("%g req/s, green %g%%, blue %g%%", c.rate, c.share*100, c.blue*100), func(t *testing.T) {
			t.Parallel()
			good := scenario.Scenario{Rate: c.rate, Share: c.share, Steps: 300, BlueErrors: c.blue, Seed: base + 42}
			v := compare(t, good, cfg).v
			d := value(v, "error rate", "detectable")
			if math.IsNaN(d) {
				t.Fatalf("no detectable change in %v", v)
			}
			const runs = 200
			caught := runMany(runs, func(i int) bool {
				g := c.blue + d
				s := good
				s.GreenErrors, s.Seed = &g, base+uint64(i)+1
				return compare(t, s, cfg).result == verdict.Fail
			})
			t.Logf("detectable +%.3f points: caught %d of %d", d*100, caught, runs)
			if float64(caught) < 0.65*runs {
				t.Errorf("a real change of the detectable size +%.3f points was caught %d of %d times, want about 80%%", d*100, caught, runs)
			}
		})
	}
}

// value is a metric's named number, NaN when absent.
func value(v verdict.Verdict, metric, name string) float64 {
	for _, m := range v.Metrics {
		if m.Name != metric {
			continue
		}
		for _, x := range m.Values {
			if x.Name == name {
				return x.Value
			}
		}
	}
	return math.NaN()
}
