package analysis

import (
	"math"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/cutoverhq/cutover/judge"
	"github.com/cutoverhq/cutover/providers"
)

// ser is a series for hand-written snapshots.
func ser(id string, c providers.Color, f Field, v float64) Series {
	return Series{ID: id, Color: c, Field: f, Value: v}
}

func bucket(id string, c providers.Color, le, v float64) Series {
	return Series{ID: id, Color: c, Field: FieldBucket, Le: le, Value: v}
}

func app(id string, c providers.Color, f Field, metric string, v float64) Series {
	return Series{ID: id, Color: c, Field: f, Metric: metric, Value: v}
}

func snapAt(d time.Duration, s ...Series) Snapshot { return Snapshot{At: at(d), Series: s} }

// steps feeds the snapshots to fresh counters: the first is the baseline.
func steps(snaps ...Snapshot) []judge.Step {
	var c counters
	c.baseline(snaps[0])
	var out []judge.Step
	for _, s := range snaps[1:] {
		out = append(out, c.step(s))
	}
	return out
}

func near(a, b float64) bool { return math.Abs(a-b) <= 1e-9*math.Max(1, math.Abs(b)) }

func wantColor(t *testing.T, what string, got judge.Color, req, errs float64) {
	t.Helper()
	if !(near(got.Requests, req) || math.IsNaN(req) && math.IsNaN(got.Requests)) ||
		!(near(got.Errors, errs) || math.IsNaN(errs) && math.IsNaN(got.Errors)) {
		t.Errorf("%s: %v requests, %v errors; want %v, %v", what, got.Requests, got.Errors, req, errs)
	}
}

// Each color's increases are summed over its series, field by field: two
// instances' request counters add up, errors apart from requests, and one
// color's counters never leak into the other's.
func TestCountersSumByColorAndField(t *testing.T) {
	b, g := providers.Blue, providers.Green
	st := steps(
		snapAt(0,
			ser(`req{color="blue",pod="b1"}`, b, FieldRequests, 1000),
			ser(`req{color="blue",pod="b2"}`, b, FieldRequests, 2000),
			ser(`err{color="blue",pod="b1"}`, b, FieldErrors, 10),
			ser(`req{color="green",pod="g1"}`, g, FieldRequests, 5),
			ser(`err{color="green",pod="g1"}`, g, FieldErrors, 0),
		),
		snapAt(10*time.Second,
			ser(`req{color="blue",pod="b1"}`, b, FieldRequests, 1100),
			ser(`req{color="blue",pod="b2"}`, b, FieldRequests, 2250),
			ser(`err{color="blue",pod="b1"}`, b, FieldErrors, 12),
			ser(`req{color="green",pod="g1"}`, g, FieldRequests, 305),
			ser(`err{color="green",pod="g1"}`, g, FieldErrors, 7),
			// a series of no color the judge knows is left out
			ser(`req{color="canary"}`, providers.Color("canary"), FieldRequests, 1e6),
		),
		snapAt(20*time.Second,
			ser(`req{color="blue",pod="b1"}`, b, FieldRequests, 1100),
			ser(`req{color="blue",pod="b2"}`, b, FieldRequests, 2250),
			ser(`err{color="blue",pod="b1"}`, b, FieldErrors, 12),
			ser(`req{color="green",pod="g1"}`, g, FieldRequests, 400),
			ser(`err{color="green",pod="g1"}`, g, FieldErrors, 7),
		),
	)
	if len(st) != 2 {
		t.Fatalf("%d steps, want 2", len(st))
	}
	if !st[0].End.Equal(at(10*time.Second)) || !st[1].End.Equal(at(20*time.Second)) {
		t.Errorf("steps end at %s and %s, want the snapshots' times", st[0].End, st[1].End)
	}
	wantColor(t, "step 1 blue", st[0].Blue, 350, 2)
	wantColor(t, "step 1 green", st[0].Green, 300, 7)
	wantColor(t, "step 2 blue (idle)", st[1].Blue, 0, 0)
	wantColor(t, "step 2 green", st[1].Green, 95, 0)
	for i, s := range st {
		if len(s.Resets) != 0 {
			t.Errorf("step %d: resets %q, want none", i+1, s.Resets)
		}
	}
}

// A counter that went down was reset (the instance restarted): its increase
// counts from zero, so the new value is all of it, and the step names the
// counter, both values and the time.
func TestCountersResetCountsFromZero(t *testing.T) {
	g := providers.Green
	id := `http_requests_total{color="green",pod="green-7d9f-x2"}`
	st := steps(
		snapAt(0, ser(id, g, FieldRequests, 5000)),
		snapAt(10*time.Second, ser(id, g, FieldRequests, 5400)),
		snapAt(20*time.Second+500*time.Millisecond, ser(id, g, FieldRequests, 120)), // restarted
		snapAt(30*time.Second, ser(id, g, FieldRequests, 520)),
	)
	wantColor(t, "before the reset", st[0].Green, 400, 0)
	wantColor(t, "the reset's step", st[1].Green, 120, 0)
	wantColor(t, "after the reset", st[2].Green, 400, 0)
	if len(st[1].Resets) != 1 {
		t.Fatalf("the reset's step names %d resets (%q), want 1", len(st[1].Resets), st[1].Resets)
	}
	r := st[1].Resets[0]
	for _, want := range []string{id, "5400", "120", "10:00:20"} {
		if !strings.Contains(r, want) {
			t.Errorf("reset %q does not name %q", r, want)
		}
	}
	if len(st[0].Resets)+len(st[2].Resets) != 0 {
		t.Errorf("steps without a reset name resets: %q %q", st[0].Resets, st[2].Resets)
	}
}

// More than three resets in one step (a whole deployment restarted) are
// named three by one and the rest summed up in one line, with their number.
func TestCountersManyResetsSummarized(t *testing.T) {
	g := providers.Green
	var before, after []Series
	for _, pod := range []string{"a", "b", "c", "d", "e", "f"} {
		id := `req{color="green",pod="` + pod + `"}`
		before = append(before, ser(id, g, FieldRequests, 1000))
		after = append(after, ser(id, g, FieldRequests, 10))
	}
	st := steps(snapAt(0, before...), snapAt(10*time.Second, after...))[0]
	wantColor(t, "six restarted pods", st.Green, 60, 0)
	if len(st.Resets) != 4 {
		t.Fatalf("resets %q: want 3 named and one summary line", st.Resets)
	}
	for _, r := range st.Resets[:3] {
		if !strings.Contains(r, "went from 1000 to 10") {
			t.Errorf("reset %q does not give the values", r)
		}
	}
	if s := st.Resets[3]; !strings.Contains(s, "3 more") || !strings.Contains(s, "10:00:10") {
		t.Errorf("summary %q: want the 3 other resets and the time", s)
	}
}

// A series seen before that is missing from one snapshot (a scrape of a busy
// pod timed out) keeps its last value: when it comes back only its increase
// since the last time it was seen counts, not its whole history again.
func TestCountersMissingSeriesKeepsLastValue(t *testing.T) {
	b := providers.Blue
	p1, p2 := `req{color="blue",pod="p1"}`, `req{color="blue",pod="p2"}`
	st := steps(
		snapAt(0, ser(p1, b, FieldRequests, 100), ser(p2, b, FieldRequests, 50_000)),
		snapAt(10*time.Second, ser(p1, b, FieldRequests, 200)),
		snapAt(20*time.Second, ser(p1, b, FieldRequests, 300), ser(p2, b, FieldRequests, 50_200)),
	)
	wantColor(t, "p2 missing", st[0].Blue, 100, 0)
	wantColor(t, "p2 back", st[1].Blue, 100+200, 0)
	if len(st[1].Resets) != 0 {
		t.Errorf("a series coming back is not a reset: %q", st[1].Resets)
	}
}

// A series never seen before (a new pod, or the first 5xx of a color) counts
// from zero: its first requests are not lost.
func TestCountersNewSeriesCountsFromZero(t *testing.T) {
	g := providers.Green
	old, fresh := `req{color="green",pod="g1"}`, `req{color="green",pod="g2"}`
	e := `req{color="green",code="500"}`
	st := steps(
		snapAt(0, ser(old, g, FieldRequests, 700)),
		snapAt(10*time.Second, ser(old, g, FieldRequests, 800), ser(fresh, g, FieldRequests, 40),
			ser(e, g, FieldRequests, 3), ser(e, g, FieldErrors, 3)),
	)[0]
	wantColor(t, "a new pod and a first 5xx", st.Green, 100+40+3, 3)
}

// A NaN value (a counter the page could not give a number for) counts
// nothing and does not move the counter's last value.
func TestCountersNaNIsSkipped(t *testing.T) {
	g := providers.Green
	id := `req{color="green"}`
	st := steps(
		snapAt(0, ser(id, g, FieldRequests, 100)),
		snapAt(10*time.Second, ser(id, g, FieldRequests, math.NaN())),
		snapAt(20*time.Second, ser(id, g, FieldRequests, 150)),
	)
	// With only a NaN, green had no request counter in that step.
	wantColor(t, "NaN step", st[0].Green, math.NaN(), math.NaN())
	wantColor(t, "after NaN", st[1].Green, 50, 0)
	if len(st[1].Resets) != 0 {
		t.Errorf("a NaN is not a reset: %q", st[1].Resets)
	}
	// A NaN in the baseline is no value either: the counter counts from zero
	// when it first has one.
	st = steps(
		snapAt(0, ser(id, g, FieldRequests, math.NaN()), ser(`other{color="green"}`, g, FieldRequests, 10)),
		snapAt(10*time.Second, ser(id, g, FieldRequests, 40), ser(`other{color="green"}`, g, FieldRequests, 20)),
	)
	wantColor(t, "NaN baseline", st[0].Green, 40+10, 0)
}

// Prometheus's 5xx counter is both a request counter and an error counter:
// given twice under the same ID, it counts once as requests and once as
// errors, and neither field counts it twice.
func TestCountersSameSeriesAsRequestsAndErrors(t *testing.T) {
	g := providers.Green
	ok, fail := `http_requests_total{color="green",code="200"}`, `http_requests_total{color="green",code="503"}`
	st := steps(
		snapAt(0, ser(ok, g, FieldRequests, 1000), ser(fail, g, FieldRequests, 10), ser(fail, g, FieldErrors, 10)),
		snapAt(10*time.Second, ser(ok, g, FieldRequests, 1990), ser(fail, g, FieldRequests, 20), ser(fail, g, FieldErrors, 20)),
		snapAt(20*time.Second, ser(ok, g, FieldRequests, 2990), ser(fail, g, FieldRequests, 20), ser(fail, g, FieldErrors, 20)),
	)
	wantColor(t, "10 failed of 1000", st[0].Green, 1000, 10)
	wantColor(t, "none failed of 1000", st[1].Green, 1000, 0)
}

// A counter given both as requests and as errors is one counter: when it
// resets, the verdict should say so once, not twice, and the summary of many
// resets should count counters, not fields.
func TestCountersResetOfDoubleListedSeriesNamedOnce(t *testing.T) {
	g := providers.Green
	ok, fail := `http_requests_total{color="green",code="200"}`, `http_requests_total{color="green",code="500"}`
	st := steps(
		snapAt(0, ser(ok, g, FieldRequests, 900), ser(fail, g, FieldRequests, 9), ser(fail, g, FieldErrors, 9)),
		snapAt(10*time.Second, ser(ok, g, FieldRequests, 90), ser(fail, g, FieldRequests, 1), ser(fail, g, FieldErrors, 1)),
	)[0]
	wantColor(t, "restarted", st.Green, 91, 1)
	n := 0
	for _, r := range st.Resets {
		if strings.Contains(r, fail) {
			n++
		}
	}
	if n != 1 {
		t.Errorf("BUG (counters.go step, resets are counted per series key, which includes Field): "+
			"the 5xx counter %s reset once but is named %d times: %q", fail, n, st.Resets)
	}
}

// A color with request counters but no error counter yet (a 5xx series
// appears with the first 5xx) had 0 errors; a color with no request counter
// at all has no data (NaN), which is not the same as no traffic.
func TestCountersMissingErrorAndRequestCounters(t *testing.T) {
	b := providers.Blue
	st := steps(
		snapAt(0, ser(`req{color="blue"}`, b, FieldRequests, 10)),
		snapAt(10*time.Second, ser(`req{color="blue"}`, b, FieldRequests, 60)),
	)[0]
	wantColor(t, "blue without an error counter", st.Blue, 50, 0)
	wantColor(t, "green without any counter", st.Green, math.NaN(), math.NaN())
	if st.Green.Latency.Bounds != nil || st.Green.Metrics != nil {
		t.Errorf("green without counters has data: %+v", st.Green)
	}
}

// Cumulative latency buckets become one histogram per color: per-bucket
// counts (each bucket's increase minus the one below) and the overflow above
// the last finite bound from the +Inf bucket; instances' buckets add up.
func TestCountersHistogram(t *testing.T) {
	g := providers.Green
	les := []float64{0.05, 0.1, 0.25, 1, math.Inf(1)}
	// pod a: cumulative counts at 0 and 10s; pod b starts at 0 and is new.
	a0 := []float64{100, 150, 180, 195, 200}
	a1 := []float64{400, 600, 700, 790, 800}
	b1 := []float64{10, 20, 30, 40, 45}
	var s0, s1 []Series
	for i, le := range les {
		s0 = append(s0, bucket(`lat_bucket{pod="a",le="x"}`+leName(le), g, le, a0[i]))
		s1 = append(s1, bucket(`lat_bucket{pod="a",le="x"}`+leName(le), g, le, a1[i]),
			bucket(`lat_bucket{pod="b",le="x"}`+leName(le), g, le, b1[i]))
	}
	// Buckets in any order.
	slices.Reverse(s1)
	st := steps(snapAt(0, s0...), snapAt(10*time.Second, s1...))[0]
	h := st.Green.Latency
	if !slices.Equal(h.Bounds, []float64{0.05, 0.1, 0.25, 1}) {
		t.Fatalf("bounds %v, want the finite bounds in order", h.Bounds)
	}
	// increases: a: 300 450 520 595 600; b: 10 20 30 40 45 -> 310 470 550 635 645
	want := []float64{310, 160, 80, 85, 10}
	if !slices.Equal(h.Counts, want) {
		t.Errorf("counts %v, want %v (per bucket, then the overflow above 1s)", h.Counts, want)
	}
	if h.Total() != 645 {
		t.Errorf("total %v, want the +Inf bucket's increase 645", h.Total())
	}
	if !math.IsNaN(st.Green.Requests) {
		t.Errorf("buckets are not request counters: requests %v", st.Green.Requests)
	}
	if st.Blue.Latency.Bounds != nil {
		t.Errorf("blue has no buckets but a histogram %+v", st.Blue.Latency)
	}
}

func leName(le float64) string {
	if math.IsInf(le, 1) {
		return "+Inf"
	}
	return time.Duration(le * float64(time.Second)).String()
}

// Without a +Inf bucket (or with nothing but it) there is no histogram: the
// overflow, and so every quantile's rank, would be unknown.
func TestCountersNoHistogramWithoutInf(t *testing.T) {
	g := providers.Green
	st := steps(
		snapAt(0, bucket("l1", g, 0.1, 10), bucket("l2", g, 0.5, 20), bucket("inf-only", providers.Blue, math.Inf(1), 5)),
		snapAt(10*time.Second, bucket("l1", g, 0.1, 30), bucket("l2", g, 0.5, 50), bucket("inf-only", providers.Blue, math.Inf(1), 25)),
	)[0]
	if len(st.Green.Latency.Bounds) != 0 || len(st.Green.Latency.Counts) != 0 {
		t.Errorf("green without +Inf: histogram %+v, want none", st.Green.Latency)
	}
	if len(st.Blue.Latency.Bounds) != 0 || len(st.Blue.Latency.Counts) != 0 {
		t.Errorf("blue with only +Inf: histogram %+v, want none", st.Blue.Latency)
	}
}

// App metrics sum their numerators and denominators per metric name and
// color.
func TestCountersAppMetrics(t *testing.T) {
	b, g := providers.Blue, providers.Green
	st := steps(
		snapAt(0,
			app("checkouts_b", b, FieldNum, "checkout", 10), app("sessions_b", b, FieldDen, "checkout", 100),
			app("checkouts_g", g, FieldNum, "checkout", 1), app("sessions_g", g, FieldDen, "checkout", 10),
			app("revenue_g", g, FieldNum, "order value", 1000), app("orders_g", g, FieldDen, "order value", 20),
			app("revenue_g2", g, FieldNum, "order value", 0), app("orders_g2", g, FieldDen, "order value", 0),
		),
		snapAt(10*time.Second,
			app("checkouts_b", b, FieldNum, "checkout", 40), app("sessions_b", b, FieldDen, "checkout", 400),
			app("checkouts_g", g, FieldNum, "checkout", 21), app("sessions_g", g, FieldDen, "checkout", 260),
			app("revenue_g", g, FieldNum, "order value", 1500), app("orders_g", g, FieldDen, "order value", 30),
			app("revenue_g2", g, FieldNum, "order value", 250), app("orders_g2", g, FieldDen, "order value", 4),
		),
	)[0]
	if got := st.Blue.Metrics["checkout"]; got != (judge.Pair{Num: 30, Den: 300}) {
		t.Errorf("blue checkout %+v, want 30/300", got)
	}
	if got := st.Green.Metrics["checkout"]; got != (judge.Pair{Num: 20, Den: 250}) {
		t.Errorf("green checkout %+v, want 20/250", got)
	}
	if got := st.Green.Metrics["order value"]; got != (judge.Pair{Num: 750, Den: 14}) {
		t.Errorf("green order value %+v, want 750/14 (two pods summed)", got)
	}
	if _, ok := st.Blue.Metrics["order value"]; ok {
		t.Errorf("blue has no order value counters, but the step has %+v", st.Blue.Metrics)
	}
	if !math.IsNaN(st.Green.Requests) {
		t.Errorf("app metrics are not requests: %v", st.Green.Requests)
	}
}

// The counters' state travels in heartbeats as JSON: counters restored from
// it go on without counting anything twice.
func TestCountersSurviveJSON(t *testing.T) {
	g := providers.Green
	id := `req{color="green"}`
	var c counters
	c.baseline(snapAt(0, ser(id, g, FieldRequests, 100)))
	c.step(snapAt(10*time.Second, ser(id, g, FieldRequests, 300)))
	var rd reader
	rd.C = c
	b, err := jsonRoundTrip(rd)
	if err != nil {
		t.Fatal(err)
	}
	st := b.C.step(snapAt(20*time.Second, ser(id, g, FieldRequests, 350)))
	wantColor(t, "after a restore", st.Green, 50, 0)
}
