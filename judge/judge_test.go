package judge

import (
	"encoding/json"
	"errors"
	"math"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/cutoverhq/cutover/providers"
	"github.com/cutoverhq/cutover/spec"
)

var t0 = time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)

const step = 30 * time.Second

// series makes n steps 30s apart; f fills each from a generator seeded by
// seed, so every run sees the same "noise".
func series(n int, seed uint64, f func(i int, r *rand.Rand) Point) points {
	r := rand.New(rand.NewPCG(seed, 7))
	ps := make(points, n)
	for i := range ps {
		ps[i] = f(i, r)
		ps[i].Time = t0.Add(time.Duration(i+1) * step)
	}
	return ps
}

// steady is n steps of the given requests and errors per step, with step
// latencies around lat seconds (±5%) and p99 3x that.
func steady(n int, seed uint64, requests, errs, lat float64) points {
	return series(n, seed, func(_ int, r *rand.Rand) Point {
		l := lat * (0.95 + 0.1*r.Float64())
		return Point{Requests: requests, Errors: errs, Latency: l, P99: 3 * l}
	})
}

func ptr[T any](v T) *T { return &v }

func metric(t *testing.T, v providers.Verdict, name string) providers.Metric {
	t.Helper()
	for _, m := range v.Metrics {
		if m.Name == name {
			return m
		}
	}
	t.Fatalf("verdict has no metric %q: %s", name, v)
	return providers.Metric{}
}

func value(m providers.Metric, name string) (float64, bool) {
	for _, v := range m.Values {
		if v.Name == name {
			return v.Value, true
		}
	}
	return 0, false
}

func names(m providers.Metric) []string {
	var ns []string
	for _, v := range m.Values {
		ns = append(ns, v.Name)
	}
	return ns
}

// checkJSON: verdicts travel through the workflow history as JSON, which has
// no NaN or Inf.
func checkJSON(t *testing.T, v providers.Verdict) {
	t.Helper()
	if _, err := json.Marshal(v); err != nil {
		t.Errorf("verdict does not encode as JSON: %v\n%s", err, v)
	}
}

func TestCompare(t *testing.T) {
	nonCritical := Config{Latency: LatencyConfig{Critical: ptr(false)}}
	tests := []struct {
		name        string
		cfg         Config
		blue, green []Point
		want        providers.Result
		// Per metric: result and words its reason must contain.
		errRate, latency     providers.Result
		errReason, latReason string
		summary              string
		check                func(t *testing.T, v providers.Verdict)
	}{
		{
			name:    "same traffic, no errors anywhere",
			blue:    steady(20, 1, 100, 0, 0.1),
			green:   steady(20, 2, 100, 0, 0.1),
			want:    providers.Pass,
			errRate: providers.Pass, latency: providers.Pass,
			errReason: "no significant difference",
			summary:   "all 2 metrics passed",
			check: func(t *testing.T, v providers.Verdict) {
				if p, _ := value(metric(t, v, "error rate"), "p_value"); p != 1 {
					t.Errorf("error rate p = %g, want 1 when neither color has errors", p)
				}
			},
		},
		{
			name:    "identical latency samples",
			blue:    steady(10, 1, 100, 0, 0).setLatency(0.1),
			green:   steady(10, 2, 100, 0, 0).setLatency(0.1),
			want:    providers.Pass,
			errRate: providers.Pass, latency: providers.Pass,
			latReason: "no significant slowdown",
			check: func(t *testing.T, v providers.Verdict) {
				m := metric(t, v, "latency")
				if p, _ := value(m, "p_value"); p != 1 {
					t.Errorf("latency p = %g, want 1 for identical samples", p)
				}
				if s, _ := value(m, "slowdown"); s != 0 {
					t.Errorf("slowdown = %g, want 0", s)
				}
			},
		},
		{
			name: "NaN steps are dropped, not counted",
			blue: append(steady(10, 1, 100, 1, 0.1),
				Point{Requests: math.NaN(), Errors: 50, Latency: math.NaN()},
				Point{Requests: 100, Errors: math.NaN(), Latency: math.Inf(1)}),
			green: append(steady(10, 2, 100, 1, 0.1),
				// No request count but a latency: the latency still counts.
				Point{Requests: math.NaN(), Errors: math.NaN(), Latency: 0.1}),
			want:    providers.Pass,
			errRate: providers.Pass, latency: providers.Pass,
			check: func(t *testing.T, v providers.Verdict) {
				er := metric(t, v, "error rate")
				if n, _ := value(er, "blue_requests"); n != 1000 {
					t.Errorf("blue_requests = %g, want 1000 (NaN steps skipped)", n)
				}
				if n, _ := value(er, "blue_errors"); n != 10 {
					t.Errorf("blue_errors = %g, want 10 (NaN steps skipped)", n)
				}
				lat := metric(t, v, "latency")
				if n, _ := value(lat, "blue_samples"); n != 10 {
					t.Errorf("blue_samples = %g, want 10", n)
				}
				if n, _ := value(lat, "green_samples"); n != 11 {
					t.Errorf("green_samples = %g, want 11", n)
				}
			},
		},
		{
			name:    "green without traffic",
			blue:    steady(10, 1, 100, 0, 0.1),
			green:   steady(10, 2, 0, 0, 0.1),
			want:    providers.Inconclusive,
			errRate: providers.Inconclusive, latency: providers.Inconclusive,
			errReason: "green served 0 requests, need 100",
			latReason: "green has 0 samples, need 5",
			summary:   "error rate inconclusive: green served 0 requests, need 100; latency inconclusive: green has 0 samples, need 5",
		},
		{
			name:    "no blue data at all",
			blue:    nil,
			green:   steady(10, 2, 100, 0, 0.1),
			want:    providers.Inconclusive,
			errRate: providers.Inconclusive, latency: providers.Inconclusive,
			errReason: "blue has no data",
			latReason: "blue has no data",
		},
		{
			name:    "too few requests",
			blue:    steady(10, 1, 100, 0, 0.1),
			green:   steady(4, 2, 3, 0, 0.1),
			want:    providers.Inconclusive,
			errRate: providers.Inconclusive, latency: providers.Inconclusive,
			errReason: "green served 12 requests, need 100",
			latReason: "green has 4 samples, need 5",
		},
		{
			// Errors and requests from different scrapes or rate windows.
			name:    "more errors than requests is not a rate",
			blue:    steady(10, 1, 100, 0, 0.1),
			green:   steady(10, 2, 100, 200, 0.1),
			want:    providers.Inconclusive,
			errRate: providers.Inconclusive, latency: providers.Pass,
			errReason: "green reported 2000 errors out of 1000 requests",
		},
		{
			name:    "5% green errors against none on blue",
			blue:    steady(10, 1, 100, 0, 0.1),
			green:   steady(10, 2, 100, 5, 0.1),
			want:    providers.Fail,
			errRate: providers.Fail, latency: providers.Pass,
			errReason: "green's error rate 5.00% is 5.00 points above blue's 0.00% (p<0.0001)",
			summary:   "error rate failed",
			check: func(t *testing.T, v providers.Verdict) {
				m := metric(t, v, "error rate")
				want := []string{"blue_requests", "blue_errors", "blue_error_rate", "green_requests", "green_errors",
					"green_error_rate", "increase", "z", "p_value", "alpha", "max_increase", "min_requests"}
				if got := names(m); strings.Join(got, ",") != strings.Join(want, ",") {
					t.Errorf("error rate values %v, want %v", got, want)
				}
				if inc, _ := value(m, "increase"); math.Abs(inc-0.05) > 1e-12 {
					t.Errorf("increase = %g, want 0.05", inc)
				}
			},
		},
		{
			name: "significantly more errors but within maxIncrease",
			// 0.1% against 0.4% over 100000 requests: p is tiny, but 0.3
			// points is inside the default allowance of 0.5.
			blue:    steady(100, 1, 1000, 1, 0.1),
			green:   steady(100, 2, 1000, 4, 0.1),
			want:    providers.Pass,
			errRate: providers.Pass, latency: providers.Pass,
			errReason: "within the allowed 0.50",
		},
		{
			name:    "green 50% slower over 20 steps",
			blue:    steady(20, 1, 100, 0, 0.100),
			green:   steady(20, 2, 100, 0, 0.150),
			want:    providers.Fail,
			errRate: providers.Pass, latency: providers.Fail,
			latReason: "above blue's",
			summary:   "latency failed",
			check: func(t *testing.T, v providers.Verdict) {
				m := metric(t, v, "latency")
				want := []string{"blue_samples", "green_samples", "blue_median_ms", "green_median_ms", "slowdown",
					"u", "p_value", "alpha", "max_slowdown"}
				if got := names(m); strings.Join(got, ",") != strings.Join(want, ",") {
					t.Errorf("latency values %v, want %v", got, want)
				}
				if s, _ := value(m, "slowdown"); s < 0.4 || s > 0.6 {
					t.Errorf("slowdown = %g, want about 0.5", s)
				}
				// Every green sample is above every blue one: U = 20*20.
				if u, _ := value(m, "u"); u != 400 {
					t.Errorf("u = %g, want 400", u)
				}
			},
		},
		{
			name: "green 3% slower, significant, within maxSlowdown",
			// 200 steps each with ±1% noise: the rank test is sure green is
			// slower, but 3% is within the allowed 10%.
			blue: series(200, 1, func(_ int, r *rand.Rand) Point {
				return Point{Requests: 100, Latency: 0.100 * (0.99 + 0.02*r.Float64())}
			}),
			green: series(200, 2, func(_ int, r *rand.Rand) Point {
				return Point{Requests: 100, Latency: 0.103 * (0.99 + 0.02*r.Float64())}
			}),
			want:    providers.Pass,
			errRate: providers.Pass, latency: providers.Pass,
			latReason: "within the allowed 10.0%",
			check: func(t *testing.T, v providers.Verdict) {
				if p, _ := value(metric(t, v, "latency"), "p_value"); p >= 0.05 {
					t.Errorf("latency p = %g, want a significant difference for this case to mean anything", p)
				}
			},
		},
		{
			name:    "non-critical failure asks a person",
			cfg:     nonCritical,
			blue:    steady(20, 1, 100, 0, 0.100),
			green:   steady(20, 2, 100, 0, 0.150),
			want:    providers.Inconclusive,
			errRate: providers.Pass, latency: providers.Fail,
			summary: "latency failed but is not critical, so a person decides",
		},
		{
			name:    "blue median 0, green slower",
			blue:    steady(10, 1, 100, 0, 0).setLatency(0),
			green:   steady(10, 2, 100, 0, 0.02),
			want:    providers.Fail,
			errRate: providers.Pass, latency: providers.Fail,
			latReason: "against blue's 0.00 ms",
			check: func(t *testing.T, v providers.Verdict) {
				// An infinite slowdown cannot travel as JSON; it is left out.
				if _, ok := value(metric(t, v, "latency"), "slowdown"); ok {
					t.Errorf("slowdown should be left out of the values when it is infinite")
				}
			},
		},
		{
			name:    "invalid settings are not judged",
			cfg:     Config{Alpha: 0.9},
			blue:    steady(20, 1, 100, 0, 0.1),
			green:   steady(20, 2, 100, 50, 0.1),
			want:    providers.Inconclusive,
			summary: "judge.alpha must be between 0 and 0.5, got 0.9",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v := Compare(tt.cfg, tt.blue, tt.green)
			checkJSON(t, v)
			if v.Result != tt.want {
				t.Errorf("result %s, want %s: %s", v.Result, tt.want, v)
			}
			if tt.summary != "" && !strings.Contains(v.Summary, tt.summary) {
				t.Errorf("summary %q, want it to contain %q", v.Summary, tt.summary)
			}
			if tt.errRate != "" {
				if len(v.Metrics) != 2 || v.Metrics[0].Name != "error rate" || v.Metrics[1].Name != "latency" {
					t.Fatalf("metrics are not [error rate, latency]: %s", v)
				}
				for _, c := range []struct {
					m      providers.Metric
					want   providers.Result
					reason string
				}{{v.Metrics[0], tt.errRate, tt.errReason}, {v.Metrics[1], tt.latency, tt.latReason}} {
					if c.m.Result != c.want {
						t.Errorf("%s: %s, want %s (%s)", c.m.Name, c.m.Result, c.want, c.m.Reason)
					}
					if !strings.Contains(c.m.Reason, c.reason) {
						t.Errorf("%s reason %q, want it to contain %q", c.m.Name, c.m.Reason, c.reason)
					}
				}
			}
			if tt.check != nil {
				tt.check(t, v)
			}
		})
	}
}

type points []Point

func (ps points) setLatency(l float64) []Point {
	for i := range ps {
		ps[i].Latency = l
	}
	return ps
}

func TestCompareCritical(t *testing.T) {
	v := Compare(Config{ErrorRate: ErrorRateConfig{Critical: ptr(false)}}, steady(10, 1, 100, 0, 0.1), steady(10, 2, 100, 0, 0.1))
	if metric(t, v, "error rate").Critical || !metric(t, v, "latency").Critical {
		t.Errorf("Critical flags do not follow the config: %+v", v.Metrics)
	}
}

func TestGuard(t *testing.T) {
	bad := func(n int) []Point { return steady(n, 3, 10, 5, 0.1) } // 50% errors
	tests := []struct {
		name     string
		cfg      Config
		green    []Point
		want     providers.Result
		metrics  []string
		results  []providers.Result
		reason   string
		summary  string
		requests float64
		steps    float64
	}{
		{
			name:  "newest step alone is enough and is judged alone",
			green: append(bad(5), steady(1, 4, 100, 0, 0.1)...),
			want:  providers.Pass, metrics: []string{"green error rate"}, results: []providers.Result{providers.Pass},
			reason:   "over the last step (100 requests)",
			requests: 100, steps: 1,
		},
		{
			name:  "walks back until enough requests",
			green: append(bad(5), steady(3, 4, 8, 0, 0.1)...),
			want:  providers.Pass, metrics: []string{"green error rate"}, results: []providers.Result{providers.Pass},
			requests: 24, steps: 3,
		},
		{
			name:  "bad recent steps fail",
			green: append(steady(5, 4, 100, 0, 0.1), bad(2)...),
			want:  providers.Fail, metrics: []string{"green error rate"}, results: []providers.Result{providers.Fail},
			reason:   "green's error rate 50.00% over the last 2 steps (20 requests) is above the limit 1.00%",
			summary:  "green error rate failed",
			requests: 20, steps: 2,
		},
		{
			name:  "NaN steps are skipped",
			green: append(steady(2, 4, 10, 0, 0.1), Point{Requests: math.NaN(), Errors: math.NaN(), Time: t0.Add(time.Hour)}),
			want:  providers.Pass, metrics: []string{"green error rate"}, results: []providers.Result{providers.Pass},
			requests: 20, steps: 2,
		},
		{
			name:  "more errors than requests is not a rate",
			green: steady(3, 4, 10, 20, 0.1),
			want:  providers.Inconclusive, metrics: []string{"green error rate"}, results: []providers.Result{providers.Inconclusive},
			reason: "green reported 40 errors out of 20 requests over the last 2 steps",
		},
		{
			name:  "not enough requests",
			green: steady(3, 4, 5, 0, 0.1),
			want:  providers.Inconclusive, metrics: []string{"green error rate"}, results: []providers.Result{providers.Inconclusive},
			reason:  "green served 15 requests in the last 1m30s, need 20",
			summary: "green error rate inconclusive: green served 15 requests in the last 1m30s, need 20",
		},
		{
			name:  "no data",
			green: nil,
			want:  providers.Inconclusive, metrics: []string{"green error rate"}, results: []providers.Result{providers.Inconclusive},
			reason: "green served 0 requests, need 20",
		},
		{
			name:  "p99 above maxP99",
			cfg:   Config{Guard: GuardConfig{MaxP99: spec.Duration(200 * time.Millisecond)}},
			green: append(steady(3, 4, 100, 0, 0.05), Point{Requests: 100, Latency: 0.1, P99: 0.25}),
			want:  providers.Fail, metrics: []string{"green error rate", "green p99"},
			results: []providers.Result{providers.Pass, providers.Fail},
			reason:  "green's p99 reached 250 ms over the last step (100 requests), above the limit 200 ms",
			summary: "green p99 failed",
		},
		{
			name:  "p99 only in older steps does not count",
			cfg:   Config{Guard: GuardConfig{MaxP99: spec.Duration(200 * time.Millisecond)}},
			green: append(steady(3, 4, 100, 0, 0.1).setP99(0.9), Point{Requests: 100, Latency: 0.1, P99: math.NaN()}),
			want:  providers.Inconclusive, metrics: []string{"green error rate", "green p99"},
			results: []providers.Result{providers.Pass, providers.Inconclusive},
			reason:  "green has no p99 value over the last step",
		},
		{
			name:  "maxErrorRate 1 turns the error-rate check off",
			cfg:   Config{Guard: GuardConfig{MaxErrorRate: ptr(1.0), MaxP99: spec.Duration(time.Second)}},
			green: bad(5),
			want:  providers.Pass, metrics: []string{"green p99"}, results: []providers.Result{providers.Pass},
		},
		{
			name:    "every check off",
			cfg:     Config{Guard: GuardConfig{MaxErrorRate: ptr(1.0)}},
			green:   bad(5),
			want:    providers.Inconclusive,
			summary: "nothing was judged",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v := Guard(tt.cfg, tt.green)
			checkJSON(t, v)
			if v.Result != tt.want {
				t.Errorf("result %s, want %s: %s", v.Result, tt.want, v)
			}
			if tt.summary != "" && !strings.Contains(v.Summary, tt.summary) {
				t.Errorf("summary %q, want it to contain %q", v.Summary, tt.summary)
			}
			if len(v.Metrics) != len(tt.metrics) {
				t.Fatalf("%d metrics, want %v: %s", len(v.Metrics), tt.metrics, v)
			}
			var reasons []string
			for i, m := range v.Metrics {
				if m.Name != tt.metrics[i] || m.Result != tt.results[i] {
					t.Errorf("metric %d: %s %s, want %s %s (%s)", i, m.Name, m.Result, tt.metrics[i], tt.results[i], m.Reason)
				}
				reasons = append(reasons, m.Reason)
			}
			if !strings.Contains(strings.Join(reasons, " | "), tt.reason) {
				t.Errorf("reasons %q, want one to contain %q", reasons, tt.reason)
			}
			if tt.steps > 0 {
				m := metric(t, v, "green error rate")
				if n, _ := value(m, "requests"); n != tt.requests {
					t.Errorf("requests = %g, want %g", n, tt.requests)
				}
				if n, _ := value(m, "steps"); n != tt.steps {
					t.Errorf("steps = %g, want %g", n, tt.steps)
				}
			}
		})
	}
}

func (ps points) setP99(p float64) []Point {
	for i := range ps {
		ps[i].P99 = p
	}
	return ps
}

func TestWithDefaults(t *testing.T) {
	d := Config{}.WithDefaults()
	if d.Alpha != 0.05 || d.ErrorRate.MinRequests != 100 || *d.ErrorRate.MaxIncrease != 0.005 || !*d.ErrorRate.Critical ||
		d.Latency.MinSamples != 5 || *d.Latency.MaxSlowdown != 0.10 || !*d.Latency.Critical ||
		*d.Guard.MaxErrorRate != 0.01 || d.Guard.MaxP99 != 0 || d.Guard.MinRequests != 20 || !*d.Guard.Critical {
		t.Errorf("defaults: %+v", d)
	}
	// Values a person set, including zero and false, are kept.
	set := Config{
		Alpha:     0.01,
		ErrorRate: ErrorRateConfig{MinRequests: 7, MaxIncrease: ptr(0.0), Critical: ptr(false)},
		Latency:   LatencyConfig{MinSamples: 9, MaxSlowdown: ptr(0.0), Critical: ptr(false)},
		Guard:     GuardConfig{MaxErrorRate: ptr(0.5), MaxP99: spec.Duration(time.Second), MinRequests: 3, Critical: ptr(false)},
	}.WithDefaults()
	if set.Alpha != 0.01 || set.ErrorRate.MinRequests != 7 || *set.ErrorRate.MaxIncrease != 0 || *set.ErrorRate.Critical ||
		set.Latency.MinSamples != 9 || *set.Latency.MaxSlowdown != 0 || *set.Latency.Critical ||
		*set.Guard.MaxErrorRate != 0.5 || set.Guard.MaxP99 != spec.Duration(time.Second) || set.Guard.MinRequests != 3 || *set.Guard.Critical {
		t.Errorf("set values were changed: %+v", set)
	}
}

func TestValidate(t *testing.T) {
	tests := []struct {
		name string
		cfg  Config
		want string // "" = valid
	}{
		{"empty takes defaults", Config{}, ""},
		{"alpha too large", Config{Alpha: 0.9}, "judge.alpha must be between 0 and 0.5, got 0.9"},
		{"alpha negative", Config{Alpha: -0.1}, "judge.alpha must be between 0 and 0.5, got -0.1"},
		{"alpha NaN", Config{Alpha: math.NaN()}, "judge.alpha must be between 0 and 0.5, got NaN"},
		{"maxIncrease above 1", Config{ErrorRate: ErrorRateConfig{MaxIncrease: ptr(1.5)}}, "judge.errorRate.maxIncrease must be between 0 and 1, got 1.5"},
		{"maxIncrease negative", Config{ErrorRate: ErrorRateConfig{MaxIncrease: ptr(-0.01)}}, "judge.errorRate.maxIncrease must be between 0 and 1"},
		{"errorRate minRequests negative", Config{ErrorRate: ErrorRateConfig{MinRequests: -1}}, "judge.errorRate.minRequests must not be negative, got -1"},
		{"latency minSamples below 3", Config{Latency: LatencyConfig{MinSamples: 2}}, "judge.latency.minSamples must be at least 3, got 2"},
		{"latency minSamples negative", Config{Latency: LatencyConfig{MinSamples: -5}}, "judge.latency.minSamples must be at least 3, got -5"},
		{"maxSlowdown negative", Config{Latency: LatencyConfig{MaxSlowdown: ptr(-0.1)}}, "judge.latency.maxSlowdown must be 0 or more"},
		{"guard maxErrorRate 0", Config{Guard: GuardConfig{MaxErrorRate: ptr(0.0)}}, "judge.guard.maxErrorRate must be above 0 and at most 1, got 0"},
		{"guard maxErrorRate above 1", Config{Guard: GuardConfig{MaxErrorRate: ptr(2.0)}}, "judge.guard.maxErrorRate must be above 0 and at most 1, got 2"},
		{"guard maxErrorRate 1 is off, not an error", Config{Guard: GuardConfig{MaxErrorRate: ptr(1.0)}}, ""},
		{"guard minRequests negative", Config{Guard: GuardConfig{MinRequests: -3}}, "judge.guard.minRequests must not be negative, got -3"},
		{"guard maxP99 negative", Config{Guard: GuardConfig{MaxP99: spec.Duration(-time.Second)}}, "judge.guard.maxP99 must not be negative, got -1s"},
		{"all problems at once", Config{Alpha: 1, Latency: LatencyConfig{MinSamples: 1}},
			"judge.alpha must be between 0 and 0.5, got 1; judge.latency.minSamples must be at least 3, got 1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.cfg.Validate()
			if tt.want == "" {
				if err != nil {
					t.Errorf("Validate() = %v, want nil", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Validate() = %v, want it to contain %q", err, tt.want)
			}
			if !errors.Is(err, providers.ErrBadConfig) {
				t.Errorf("Validate() error is not ErrBadConfig, so it would be retried: %v", err)
			}
			if strings.Contains(err.Error(), "\n") {
				t.Errorf("Validate() error spans lines: %q", err)
			}
		})
	}
}

func TestUnavailable(t *testing.T) {
	v := Unavailable("prometheus", errors.New("dial tcp 10.0.0.1:9090: connection refused"))
	checkJSON(t, v)
	if v.Result != providers.Inconclusive {
		t.Errorf("result %s, want Inconclusive: missing data is never a pass", v.Result)
	}
	if want := "prometheus could not be read: dial tcp 10.0.0.1:9090: connection refused"; v.Summary != want {
		t.Errorf("summary %q, want %q", v.Summary, want)
	}
	if len(v.Metrics) != 1 || v.Metrics[0].Name != "prometheus" || v.Metrics[0].Result != providers.Inconclusive {
		t.Errorf("metrics %+v, want one Inconclusive metric named prometheus", v.Metrics)
	}
}

func TestVerdictAssembly(t *testing.T) {
	m := func(name string, r providers.Result, critical bool, reason string) providers.Metric {
		return providers.Metric{Name: name, Result: r, Critical: critical, Reason: reason}
	}
	tests := []struct {
		name    string
		metrics []providers.Metric
		want    providers.Result
		summary string
	}{
		{"none", nil, providers.Inconclusive, "nothing was judged: every check is turned off"},
		{"all pass", []providers.Metric{m("a", providers.Pass, true, ""), m("b", providers.Pass, false, "")}, providers.Pass, "all 2 metrics passed"},
		{"one pass", []providers.Metric{m("a", providers.Pass, true, "")}, providers.Pass, "a passed"},
		{"critical fail wins over inconclusive", []providers.Metric{
			m("error rate", providers.Inconclusive, true, "x"), m("latency", providers.Fail, true, "slow")},
			providers.Fail, "latency failed: slow"},
		{"two critical fails", []providers.Metric{
			m("error rate", providers.Fail, true, ""), m("latency", providers.Fail, true, "")},
			providers.Fail, "error rate and latency failed"},
		{"inconclusive", []providers.Metric{
			m("error rate", providers.Pass, true, ""), m("latency", providers.Inconclusive, true, "green has 2 samples, need 5")},
			providers.Inconclusive, "latency inconclusive: green has 2 samples, need 5"},
		{"non-critical fail", []providers.Metric{m("latency", providers.Fail, false, "slow")},
			providers.Inconclusive, "latency failed but is not critical, so a person decides: slow"},
		{"unknown result is not a pass", []providers.Metric{m("a", "", true, "")}, providers.Inconclusive, `a has unknown result ""`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v := verdict(tt.metrics)
			if v.Result != tt.want || v.Summary != tt.summary {
				t.Errorf("verdict = %s %q, want %s %q", v.Result, v.Summary, tt.want, tt.summary)
			}
		})
	}
}

// BenchmarkCompare10k is the judge's time to a verdict for 10,000 steps per
// color (about 3.5 days of 30s steps): noisy request counts, a few errors and
// skewed step latencies, green 2% slower.
func BenchmarkCompare10k(b *testing.B) {
	gen := func(seed uint64, lat float64) []Point {
		return series(10000, seed, func(_ int, r *rand.Rand) Point {
			req := math.Round(200 + 40*r.NormFloat64())
			return Point{
				Requests: req,
				Errors:   math.Round(req * 0.002 * r.ExpFloat64()),
				Latency:  lat * math.Exp(0.25*r.NormFloat64()),
				P99:      4 * lat * math.Exp(0.4*r.NormFloat64()),
			}
		})
	}
	blue, green := gen(1, 0.080), gen(2, 0.0816)
	b.ReportAllocs()
	for b.Loop() {
		Compare(Config{}, blue, green)
	}
}
