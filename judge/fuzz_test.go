package judge

import (
	"encoding/binary"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/cutoverhq/cutover/verdict"
)

// The judge's fuzz target reads a window of steps from bytes. Each number
// takes three bytes, a tag and a 16-bit magnitude, so that the fuzzer
// reaches both plausible traffic and the values no source should send:
// NaN, ±Inf, negative counts.
const (
	numBytes     = 3
	fuzzBuckets  = 3                         // bounds of the histograms: 10ms, 50ms, 250ms
	numsPerStep  = 4 + 2*fuzzBuckets + 1 + 4 // counts, histograms, the proportion's events, the mean's pairs
	stepBytes    = numsPerStep * numBytes
	maxFuzzSteps = 200
)

func fuzzNum(b []byte) float64 {
	m := float64(binary.BigEndian.Uint16(b[1:]))
	switch b[0] % 16 {
	case 0:
		return math.NaN()
	case 1:
		return math.Inf(1)
	case 2:
		return math.Inf(-1)
	case 3:
		return -m - 1
	}
	return m * math.Pow(10, float64(b[0]%4))
}

// bad is a value no count may have: NaN, infinite or negative.
func bad(x float64) bool { return !(x >= 0) || math.IsInf(x, 1) }

// fuzzStep decodes one step, and which metrics it gives bad values.
func fuzzStep(b []byte, at time.Time) (s Step, badErrors, badLatency, badRate, badMean bool) {
	n := func() float64 { x := fuzzNum(b); b = b[numBytes:]; return x }
	hist := func() Histogram {
		h := Histogram{Bounds: []float64{0.01, 0.05, 0.25}, Counts: make([]float64, fuzzBuckets+1)}
		for i := range fuzzBuckets {
			h.Counts[i] = n()
		}
		return h
	}
	s.End = at
	s.Blue.Requests, s.Blue.Errors, s.Green.Requests, s.Green.Errors = n(), n(), n(), n()
	s.Blue.Latency, s.Green.Latency = hist(), hist()
	// The proportion: conversions of the requests; the mean: a sum over the
	// requests.
	conv := n()
	sumB, sumG := n(), n()
	countB, countG := n(), n()
	s.Blue.Metrics = map[string]Pair{"conversion": {conv / 2, s.Blue.Requests}, "revenue": {sumB, countB}}
	s.Green.Metrics = map[string]Pair{"conversion": {conv / 2, s.Green.Requests}, "revenue": {sumG, countG}}
	badErrors = bad(s.Blue.Requests) || bad(s.Blue.Errors) || bad(s.Green.Requests) || bad(s.Green.Errors)
	for _, h := range []Histogram{s.Blue.Latency, s.Green.Latency} {
		for _, c := range h.Counts {
			badLatency = badLatency || bad(c)
		}
	}
	badRate = bad(conv) || bad(s.Blue.Requests) || bad(s.Green.Requests)
	badMean = math.IsNaN(sumB) || math.IsInf(sumB, 0) || math.IsNaN(sumG) || math.IsInf(sumG, 0) || bad(countB) || bad(countG)
	return s, badErrors, badLatency, badRate, badMean
}

// fuzzConfig turns bits into a judge config: which metrics are on, a
// ceiling, and the mode.
func fuzzConfig(bits uint8) (Config, Plan) {
	// A median 5x slower at most: the fuzz histograms' bounds are 5x apart.
	cfg := Config{Alpha: 0.05, Latency: LatencyConfig{Off: bits&1 == 0, Quantiles: []QuantileConfig{{Quantile: 0.5, MaxSlowdown: 5}}}}
	if bits&2 != 0 {
		cfg.Metrics = append(cfg.Metrics, MetricConfig{Name: "conversion", Kind: KindProportion, Better: "higher", Margin: 0.05})
	}
	if bits&4 != 0 {
		cfg.Metrics = append(cfg.Metrics, MetricConfig{Name: "revenue", Kind: KindMean, Better: "higher", Margin: 0.05})
	}
	if bits&8 != 0 {
		cfg.ErrorRate.Ceiling = 0.05
	}
	if bits&16 != 0 && (!cfg.Latency.Off || len(cfg.Metrics) > 0) {
		cfg.ErrorRate.Off = true
	}
	mode := Soak
	if bits&32 != 0 {
		mode = Comparison
	}
	return cfg, Plan{Mode: mode}
}

// FuzzMonitor feeds windows of steps to a Monitor. It never panics, its
// state restores to the same verdict, and it never passes a window in which
// more than the tolerated share (corruptShare) of a judged metric's steps
// had a NaN, infinite or negative value: what a source could not count is
// never a pass.
func FuzzMonitor(f *testing.F) {
	good := func(steps int, blueErr, greenErr uint16) []byte {
		var b []byte
		num := func(tag byte, m uint16) { b = append(b, tag, byte(m>>8), byte(m)) }
		for i := range steps {
			wobble := uint16(i%5) * 20
			num(6, 10000)    // blue requests: 10000 x 100
			num(4, blueErr)  // blue errors
			num(6, 10000)    // green requests
			num(4, greenErr) // green errors
			for range 2 {    // both histograms
				num(5, 5000) // x 10
				num(5, 4000)
				num(5, 900)
			}
			num(5, 20000)       // conversions x 10, half to each color
			num(6, 3000+wobble) // revenue sums x 100
			num(6, 3000-wobble)
			num(6, 1000) // counts x 100
			num(6, 1000)
		}
		return b
	}
	for _, bits := range []uint8{0, 1, 2, 4, 7, 8, 15, 16 | 1, 32 | 7} {
		f.Add(bits, good(60, 500, 500))
		f.Add(bits, good(60, 500, 900))
		f.Add(bits, good(3, 0, 0))
		withNaN := good(60, 500, 500)
		for i := 0; i < len(withNaN); i += 7 * stepBytes {
			withNaN[i] = 0 // blue requests NaN in every seventh step
		}
		f.Add(bits, withNaN)
		// Within the tolerated share: one step in twenty.
		rare := good(60, 500, 500)
		for i := 0; i < len(rare); i += 20 * stepBytes {
			rare[i] = 0
		}
		f.Add(bits, rare)
		// Two kinds of bad steps, each within the share, together past it:
		// blue without requests (NaN) in one step in fifteen, green with
		// negative errors in another one in fifteen.
		mixed := good(60, 500, 500)
		for i := 0; i < len(mixed); i += 15 * stepBytes {
			mixed[i] = 0
			mixed[i+stepBytes+3*numBytes] = 3
		}
		f.Add(bits, mixed)
	}
	f.Add(uint8(7), []byte{})
	f.Fuzz(func(t *testing.T, bits uint8, data []byte) {
		cfg, plan := fuzzConfig(bits)
		steps := min(len(data)/stepBytes, maxFuzzSteps)
		plan.Steps = max(steps, 1)
		m, err := New(cfg, plan)
		if err != nil {
			t.Fatalf("config %+v: %v", cfg, err)
		}
		start := time.Unix(1700000000, 0)
		var badCount [4]int
		for i := range steps {
			s, e, l, r, mn := fuzzStep(data[i*stepBytes:], start.Add(time.Duration(i+1)*time.Second))
			for j, b := range []bool{e, l, r, mn} {
				if b {
					badCount[j]++
				}
			}
			m.Add(s)
			m.Failed()
		}
		v := m.Verdict()
		if v.Result == verdict.Pass {
			judged := []bool{!cfg.ErrorRate.Off, !cfg.Latency.Off, bits&2 != 0, bits&4 != 0}
			for j, name := range []string{"error rate", "latency", "conversion", "revenue"} {
				if judged[j] && float64(badCount[j]) > corruptShare*float64(steps) {
					t.Fatalf("Pass with %d of %d steps of %s NaN, infinite or negative: %s", badCount[j], steps, name, v.Summary)
				}
			}
			if steps == 0 {
				t.Fatalf("Pass without data: %s", v.Summary)
			}
		}
		for _, mt := range v.Metrics {
			for _, x := range mt.Values {
				if math.IsNaN(x.Value) || math.IsInf(x.Value, 0) {
					t.Fatalf("%s has %s = %g", mt.Name, x.Name, x.Value)
				}
			}
		}
		// A guard that moves to another worker picks up the same evidence.
		state, err := m.MarshalJSON()
		if err != nil {
			t.Fatalf("marshal: %v", err)
		}
		again, _ := New(cfg, plan)
		if err := again.Restore(state); err != nil {
			t.Fatalf("restore: %v", err)
		}
		if w := again.Verdict(); w.Result != v.Result || w.Summary != v.Summary {
			t.Fatalf("restored: %s %q, was %s %q", w.Result, w.Summary, v.Result, v.Summary)
		}
	})
}

// TestBadStepsOfTwoKindsCountTogether: 4 steps without blue's numbers and 4
// with a negative count in 60, each kind under the tolerated tenth, are 13%
// together: no pass. FuzzMonitor found that they passed.
func TestBadStepsOfTwoKindsCountTogether(t *testing.T) {
	cfg := Config{Alpha: 0.05, Latency: LatencyConfig{Off: true}}
	run := func(bad func(i int, s *Step)) verdict.Verdict {
		m, err := New(cfg, Plan{Mode: Comparison, Steps: 60})
		if err != nil {
			t.Fatal(err)
		}
		for i := range 60 {
			s := Step{End: time.Unix(int64(1700000000+i), 0),
				Blue: Color{Requests: 1e6, Errors: 5000}, Green: Color{Requests: 1e6, Errors: 5000}}
			bad(i, &s)
			m.Add(s)
		}
		return m.Verdict()
	}
	if v := run(func(i int, s *Step) {}); v.Result != verdict.Pass {
		t.Fatalf("clean data: %s %s", v.Result, v.Summary)
	}
	v := run(func(i int, s *Step) {
		switch i % 15 {
		case 0:
			s.Blue.Requests = math.NaN()
		case 1:
			s.Green.Errors = -1
		}
	})
	if v.Result == verdict.Pass || v.Underpowered {
		t.Errorf("4 + 4 bad steps in 60: %s %s", v.Result, v.Summary)
	}
	if want := "4 of 60 steps had impossible numbers"; !strings.Contains(v.Summary, want) {
		t.Errorf("summary %q lacks %q", v.Summary, want)
	}
}
