package judge

import (
	"encoding/json"
	"math"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"gonum.org/v1/gonum/stat/distuv"

	"github.com/cutoverhq/cutover/spec"
	"github.com/cutoverhq/cutover/verdict"
)

// TestRestrictedMLE checks Farrington and Manning's closed form against a
// direct maximization of the two-binomial likelihood on the line p1-p2=delta.
func TestRestrictedMLE(t *testing.T) {
	for _, c := range []struct{ x1, n1, x2, n2, d float64 }{
		{5, 1000, 3, 9000, 0.004}, {0, 2000, 0, 2000, 0.004}, {30, 6000, 28, 6000, 0.004},
		{120, 1000, 10, 1000, 0.05}, {3, 20, 1, 200, 0.1}, {500, 1000, 480, 1000, 0.02},
	} {
		p1, p2 := restrictedMLE(c.x1, c.n1, c.x2, c.n2, c.d)
		ll := func(a float64) float64 {
			b := a - c.d
			if a <= 0 || a >= 1 || b <= 0 || b >= 1 {
				return math.Inf(-1)
			}
			return c.x1*math.Log(a) + (c.n1-c.x1)*math.Log(1-a) + c.x2*math.Log(b) + (c.n2-c.x2)*math.Log(1-b)
		}
		best, bestLL := 0.0, math.Inf(-1)
		for i := 1; i < 200000; i++ {
			a := c.d + (1-c.d)*float64(i)/200000
			if l := ll(a); l > bestLL {
				best, bestLL = a, l
			}
		}
		if math.Abs(p1-best) > 1e-4 || math.Abs(p2-(best-c.d)) > 1e-4 {
			t.Errorf("%+v: closed form (%.6f, %.6f), numeric (%.6f, %.6f)", c, p1, p2, best, best-c.d)
		}
	}
}

// TestScoreStatistic: at the margin the statistic is centred on 0; far
// inside it is strongly negative; with no errors at all it still has a
// variance (the restricted estimate is the margin), so zero errors in a
// handful of requests is no evidence.
func TestScoreStatistic(t *testing.T) {
	if z, _ := nonInferiority(10, 1000, 10, 1000, 0.004); z > -0.5 || z < -2 {
		t.Errorf("equal rates, margin 0.4 points, 1000 each: z = %.3f, want mildly negative", z)
	}
	if z, _ := nonInferiority(0, 20, 0, 20, 0.004); z < -1 {
		t.Errorf("no errors in 20 requests each: z = %.3f, want no strong evidence", z)
	}
	if z, _ := nonInferiority(0, 100000, 0, 100000, 0.004); z > -10 {
		t.Errorf("no errors in 100000 requests each: z = %.3f, want strong evidence", z)
	}
}

// TestMixtureBoundary: the boundary is tightest where it was tuned, grows
// slowly (like sqrt(log)) beyond it, and is wide with little information.
func TestMixtureBoundary(t *testing.T) {
	const alpha = 0.01
	opt := 1000.0
	at := mixtureBoundary(opt, opt, alpha)
	if at < 2.6 || at > 4 {
		t.Errorf("boundary at the tuned information = %.3f, want between z(0.01) and 4", at)
	}
	for _, f := range []float64{0.01, 0.1, 10, 100} {
		if b := mixtureBoundary(opt*f, opt, alpha); b < at-1e-9 {
			t.Errorf("boundary at %g times the tuned information %.3f is below its minimum %.3f", f, b, at)
		}
	}
	if b := mixtureBoundary(opt*1e4, opt, alpha); b > 2*at {
		t.Errorf("boundary at 10000 times the tuned information = %.3f, want slow growth", b)
	}
}

// TestEProcessCeilingFalseAlarm: the exact one-color test of "green's error
// rate is above the ceiling" fails a green exactly at the ceiling in at most
// alpha of soaks, checked at every step, down to a handful of requests per
// step.
func TestEProcessCeilingFalseAlarm(t *testing.T) {
	const alpha, runs, steps = 0.05, 2000, 200
	rng := rand.New(rand.NewPCG(3, 4))
	for _, perStep := range []float64{2, 50} {
		fails := 0
		for range runs {
			e := newEProcess(steps, false)
			for range steps {
				x := distuv.Binomial{N: perStep, P: 0.01, Src: rng}.Rand()
				e.add(perStep, x, 0.01)
				if e.rejected(alpha) {
					fails++
					break
				}
			}
		}
		if rate := float64(fails) / runs; rate > alpha {
			t.Errorf("%g requests a step: failed %.2f%% of greens at the ceiling, want at most %g%%", perStep, rate*100, alpha*100)
		}
	}
}

func step(i int, gn, ge, bn, be float64) Step {
	return Step{End: time.Unix(1_700_000_000+int64(i), 0).UTC(), Green: Color{Requests: gn, Errors: ge}, Blue: Color{Requests: bn, Errors: be}}
}

func errorsOnly() Config { return Config{Latency: LatencyConfig{Off: true}} }

func TestCeilingAloneWhenBlueHasNoTraffic(t *testing.T) {
	cfg := errorsOnly()
	cfg.ErrorRate.Ceiling = 0.05
	m, err := New(cfg, Plan{Mode: Soak, Steps: 60})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 60 {
		m.Add(step(i, 100, 0, 0, 0))
	}
	v := m.Verdict()
	if v.Result != verdict.Pass || len(v.Metrics) != 1 || v.Metrics[0].Name != metricErrorCeiling {
		t.Fatalf("verdict %s, want a Pass judged by the ceiling alone", v)
	}
	if !strings.Contains(v.Metrics[0].Reason, "blue had no traffic, so green is judged against the ceiling alone") {
		t.Errorf("reason %q does not say the ceiling was all there was", v.Metrics[0].Reason)
	}

	m, _ = New(errorsOnly(), Plan{Mode: Soak, Steps: 60})
	for i := range 60 {
		m.Add(step(i, 100, 0, 0, 0))
	}
	if v := m.Verdict(); v.Result != verdict.Inconclusive || v.Underpowered || !strings.Contains(v.Summary, "no ceiling is set") {
		t.Errorf("without a ceiling: %s, want Inconclusive naming the missing ceiling", v)
	}

	m, _ = New(cfg, Plan{Mode: Soak, Steps: 60})
	for i := range 60 {
		m.Add(step(i, 100, 9, 0, 0))
		if m.Failed() {
			break
		}
	}
	if v := m.Verdict(); v.Result != verdict.Fail || !strings.Contains(v.Summary, "above the ceiling 5.00% with") {
		t.Errorf("9%% errors against a 5%% ceiling: %s, want a Fail by the ceiling", v)
	}
}

// TestVerdictWording is a verdict as people read it: its numbers, the change
// it could detect, how much more traffic it needs, and what was wrong with
// the data.
func TestVerdictWording(t *testing.T) {
	m, _ := New(errorsOnly(), Plan{Mode: Comparison, Steps: 60})
	for i := range 60 {
		m.Add(step(i, 20, 0, 180, 1))
	}
	v := m.Verdict()
	r := v.Metrics[0].Reason
	for _, want := range []string{"not enough traffic to see a +0.40 points change in error rate", "green 0.00% of 1,200", "could detect +", "more green requests needed"} {
		if !strings.Contains(r, want) {
			t.Errorf("reason %q lacks %q", r, want)
		}
	}
	if !v.Underpowered || v.Metrics[0].Detectable == "" {
		t.Errorf("verdict %+v: want underpowered with a detectable change", v)
	}

	m, _ = New(errorsOnly(), Plan{Mode: Comparison, Steps: 60})
	for i := range 60 {
		s := step(i, 2000, 2, 2000, 2)
		if i == 7 {
			s.Green.Errors = 3000
		}
		if i == 30 {
			s.Resets = []string{`cutover_router_requests_total{color="blue"} went from 90 to 4 at 12:00:30`}
		}
		m.Add(s)
	}
	v = m.Verdict()
	if v.Result != verdict.Pass {
		t.Fatalf("one bad step in 60 with plenty of data: %s, want Pass with a note", v)
	}
	if r := v.Metrics[0].Reason; !strings.Contains(r, "1 steps with impossible numbers left out, first: green reported more errors than requests (3000 of 2000)") {
		t.Errorf("reason %q does not name the impossible step", r)
	}
	if n := strings.Join(v.Notes, "; "); !strings.Contains(n, "counter reset: cutover_router_requests_total") {
		t.Errorf("notes %q do not name the reset", n)
	}
}

// TestLatencyVerdicts: a tail-only regression fails p99 with its numbers; a
// histogram too coarse to show the allowed slowdown is said to be.
func TestLatencyVerdicts(t *testing.T) {
	bounds := []float64{0.010, 0.011, 0.012, 0.0135, 0.015, 0.0175, 0.02, 0.025, 0.03, 0.05, 0.1, 0.3, 1}
	rng := rand.New(rand.NewPCG(1, 2))
	hist := func(n int, tail float64) Histogram {
		h := Histogram{Bounds: bounds, Counts: make([]float64, len(bounds)+1)}
		for range n {
			x := 0.012 * math.Exp(0.2*rng.NormFloat64())
			if rng.Float64() < tail {
				x *= 20
			}
			i := 0
			for i < len(bounds) && bounds[i] < x {
				i++
			}
			h.Counts[i]++
		}
		return h
	}
	cfg := Config{ErrorRate: ErrorRateConfig{Off: true}}
	m, _ := New(cfg, Plan{Mode: Soak, Steps: 120})
	for i := range 120 {
		m.Add(Step{End: time.Unix(int64(i), 0), Green: Color{Latency: hist(500, 0.02)}, Blue: Color{Latency: hist(500, 0)}})
		if m.Failed() {
			break
		}
	}
	v := m.Verdict()
	if v.Result != verdict.Fail || !strings.Contains(v.Summary, "latency p99 failed: green's p99 is more than +50% slower than blue's") {
		t.Fatalf("2%% of requests 20x slower: %s, want p99 to fail", v)
	}

	coarse := Config{ErrorRate: ErrorRateConfig{Off: true}, Latency: LatencyConfig{Quantiles: []QuantileConfig{{0.5, 0.05}}}}
	m, _ = New(coarse, Plan{Mode: Comparison, Steps: 30})
	for i := range 30 {
		m.Add(Step{End: time.Unix(int64(i), 0), Green: Color{Latency: hist(500, 0)}, Blue: Color{Latency: hist(500, 0)}})
	}
	if v := m.Verdict(); v.Result != verdict.Inconclusive || !strings.Contains(v.Summary, "too coarse to show p50 within +5%") || v.Underpowered {
		t.Errorf("buckets 10%% apart and a 5%% allowance: %s, want Inconclusive saying the buckets are too coarse", v)
	}
}

// TestStateRoundTrip: a Monitor restored from its JSON state (a guard that
// moved to another worker) judges exactly as the one that never stopped.
func TestStateRoundTrip(t *testing.T) {
	cfg := Config{ErrorRate: ErrorRateConfig{Ceiling: 0.05}, Latency: LatencyConfig{MaxP99: spec.Duration(time.Second)},
		Metrics: []MetricConfig{{Name: "checkout", Kind: KindProportion, Better: "higher", Margin: 0.05}, {Name: "order value", Kind: KindMean, Better: "higher", Margin: 0.05}}}
	plan := Plan{Mode: Soak, Steps: 100}
	a, err := New(cfg, plan)
	if err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(9, 9))
	mk := func(i int) Step {
		h := func() Histogram {
			h := Histogram{Bounds: []float64{0.01, 0.02, 0.04}, Counts: []float64{float64(rng.IntN(50)), 40, 5, 1}}
			return h
		}
		s := step(i, 100, float64(rng.IntN(2)), 900, float64(rng.IntN(5)))
		s.Green.Latency, s.Blue.Latency = h(), h()
		s.Green.Metrics = map[string]Pair{"checkout": {30, 100}, "order value": {float64(2000 + rng.IntN(500)), 40}}
		s.Blue.Metrics = map[string]Pair{"checkout": {270, 900}, "order value": {float64(18000 + rng.IntN(4000)), 360}}
		return s
	}
	var b *Monitor
	for i := range 100 {
		s := mk(i)
		a.Add(s)
		if i == 49 {
			state, err := json.Marshal(a)
			if err != nil {
				t.Fatal(err)
			}
			b, _ = New(cfg, plan)
			if err := b.Restore(state); err != nil {
				t.Fatal(err)
			}
			continue
		}
		if b != nil {
			b.Add(s)
		}
	}
	if va, vb := a.Verdict().String(), b.Verdict().String(); va != vb {
		t.Errorf("restored monitor judged\n%s\nthe original\n%s", vb, va)
	}
	other, _ := New(errorsOnly(), plan)
	if err := other.Restore(mustJSON(t, a)); err == nil {
		t.Error("restoring the state of other metrics was accepted")
	}
}

func mustJSON(t *testing.T, v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestConfigErrorsNameTheField(t *testing.T) {
	for _, c := range []struct {
		cfg  Config
		want string
	}{
		{Config{Alpha: 0.5}, "judge.alpha must be above 0 and at most 0.2"},
		{Config{Power: 1}, "judge.power must be at least 0.5 and below 1"},
		{Config{ErrorRate: ErrorRateConfig{MaxIncrease: ptr(-1.0)}}, "judge.errorRate.maxIncrease must be above 0"},
		{Config{Latency: LatencyConfig{Quantiles: []QuantileConfig{{0.99, 0.5}, {0.99, 0.2}}}}, "judge.latency.quantiles[1].quantile 0.99 is listed twice"},
		{Config{Latency: LatencyConfig{Quantiles: []QuantileConfig{{1.5, 0.2}}}}, "judge.latency.quantiles[0].quantile must be between 0 and 1"},
		{Config{Metrics: []MetricConfig{{Name: "error rate", Kind: KindProportion, Better: "lower", Margin: 0.1}}}, `judge.metrics[0].name "error rate" is taken`},
		{Config{Metrics: []MetricConfig{{Name: "checkout", Kind: "ratio", Better: "up", Margin: 2}}}, `judge.metrics[0].kind must be proportion or mean, got "ratio"; judge.metrics[0].better must be higher or lower, got "up"; judge.metrics[0].margin must be above 0 and below 1`},
		{Config{ErrorRate: ErrorRateConfig{Off: true}, Latency: LatencyConfig{Off: true}}, "every metric is off"},
	} {
		err := c.cfg.Validate()
		if err == nil || !strings.Contains(err.Error(), c.want) || strings.Contains(err.Error(), "\n") {
			t.Errorf("%+v: %v, want one line containing %q", c.cfg, err, c.want)
		}
	}
	if err := (Config{}).Validate(); err != nil {
		t.Errorf("defaults: %v", err)
	}
}

func ptr[T any](v T) *T { return &v }

// TestAppMetrics: an app's proportion where higher is better fails on a drop
// and passes when steady; a mean metric passes a steady green.
func TestAppMetrics(t *testing.T) {
	cfg := Config{ErrorRate: ErrorRateConfig{Off: true}, Latency: LatencyConfig{Off: true}, Metrics: []MetricConfig{
		{Name: "checkout", Kind: KindProportion, Better: "higher", Margin: 0.1, Critical: ptr(true)},
		{Name: "order value", Kind: KindMean, Better: "higher", Margin: 0.1},
	}}
	rng := rand.New(rand.NewPCG(5, 6))
	run := func(greenRate float64) verdict.Verdict {
		m, _ := New(cfg, Plan{Mode: Comparison, Steps: 120})
		for i := range 120 {
			s := Step{End: time.Unix(int64(i), 0)}
			gs := distuv.Binomial{N: 1000, P: greenRate, Src: rng}.Rand()
			bs := distuv.Binomial{N: 1000, P: 0.2, Src: rng}.Rand()
			mean := func(n int) Pair {
				var sum float64
				for range n {
					sum += 50 + 10*rng.NormFloat64()
				}
				return Pair{sum, float64(n)}
			}
			s.Green.Metrics = map[string]Pair{"checkout": {gs, 1000}, "order value": mean(200)}
			s.Blue.Metrics = map[string]Pair{"checkout": {bs, 1000}, "order value": mean(200)}
			m.Add(s)
			if m.Failed() {
				break
			}
		}
		return m.Verdict()
	}
	if v := run(0.2); v.Result != verdict.Pass {
		t.Errorf("steady checkout rate: %s, want Pass", v)
	}
	if v := run(0.16); v.Result != verdict.Fail || !strings.Contains(v.Summary, "green's checkout is lower than blue's") {
		t.Errorf("checkout rate down from 20%% to 16%%: %s, want Fail", v)
	}
}
