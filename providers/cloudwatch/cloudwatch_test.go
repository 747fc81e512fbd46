package cloudwatch

import (
	"context"
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	cw "github.com/aws/aws-sdk-go-v2/service/cloudwatch"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatch/types"
	"github.com/aws/smithy-go"

	"github.com/cutoverhq/cutover/judge"
	"github.com/cutoverhq/cutover/providers"
	"github.com/cutoverhq/cutover/providers/awsapi/awstest"
)

const (
	lb      = "app/shop/50dc6c495c0c9188"
	blueTG  = "targetgroup/shop-blue/73e2d6bc24d8a067"
	greenTG = "targetgroup/shop-green/1f5e8a9c3d2b4e6f"
)

var ref = providers.Ref{App: "shop", Version: "v2", PreviousVersion: "v1"}

// t0 is the test clock's time: a few seconds past a minute.
var t0 = time.Date(2026, 11, 23, 12, 0, 5, 0, time.UTC)

// minute is the start of the k-th minute from t0's (k < 0: before it).
func minute(k int) time.Time { return t0.Truncate(time.Minute).Add(time.Duration(k) * time.Minute) }

func awsEnv(t *testing.T) { awstest.Env(t, "AWS_ENDPOINT_URL_CLOUDWATCH") }

// clock is a test clock.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) set(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = t
}

func settings(endpoint string, extra map[string]any) map[string]any {
	m := map[string]any{
		"region":           "eu-west-1",
		"loadBalancer":     lb,
		"blueTargetGroup":  blueTG,
		"greenTargetGroup": greenTG,
		"endpoint":         endpoint,
	}
	for k, v := range extra {
		if v == nil {
			delete(m, k)
		} else {
			m[k] = v
		}
	}
	return m
}

func newProvider(t *testing.T, endpoint string, extra map[string]any) (*Provider, *clock) {
	t.Helper()
	awsEnv(t)
	p, err := New(settings(endpoint, extra))
	if err != nil {
		t.Fatal(err)
	}
	c := &clock{t: t0}
	p.backoff, p.now = awstest.FastBackoff{}, c.now
	return p, c
}

func fake(t *testing.T) *fakeCW {
	f := newFake()
	t.Cleanup(f.Close)
	t.Cleanup(func() {
		if bad := f.problems(); len(bad) > 0 {
			t.Errorf("the fake saw requests it did not expect: %v", bad)
		}
	})
	return f
}

func albDims(tg string) map[string]string { return map[string]string{dimLB: lb, dimTG: tg} }

// alb stores raw samples of one of a target group's ALB metrics.
func (f *fakeCW) alb(tg, metric string, at time.Time, values ...float64) {
	f.put(namespace, metric, albDims(tg), at, values...)
}

// steps calls Steps with the provider's period and fails the test on an error.
func steps(t *testing.T, p *Provider, r providers.Ref, from, to time.Time) []judge.Step {
	t.Helper()
	got, err := p.Steps(context.Background(), r, from, to, p.Step())
	if err != nil {
		t.Fatal(err)
	}
	return got
}

func ends(steps []judge.Step) []string {
	var out []string
	for _, s := range steps {
		out = append(out, s.End.Format("15:04:05"))
	}
	return out
}

// show prints steps so that two lists compare with NaNs equal.
func show(steps []judge.Step) string { return fmt.Sprintf("%+v", steps) }

// TestHistogramBoundsBothColors places samples exactly on bucket bounds and
// just above them: TC(X:Y) counts X < value <= Y, which is the judge's
// (lower, upper] bucket, so a sample on a bound is in the bucket below it.
func TestHistogramBoundsBothColors(t *testing.T) {
	f := fake(t)
	at := minute(-5)
	above := func(x float64) float64 { return math.Nextafter(x, math.Inf(1)) }
	f.alb(blueTG, metricReqs, at, 8)
	f.alb(blueTG, metricLat, at, 0, 0.1, above(0.1), 0.25, 0.5, 1, above(1), 7)
	f.alb(greenTG, metricReqs, at, 4)
	f.alb(greenTG, metricLat, at, 0.25, 0.25, above(0.5), 1)
	p, _ := newProvider(t, f.URL, map[string]any{"latencyBuckets": []any{0.1, 0.25, 0.5, 1}})
	got := steps(t, p, ref, minute(-5), minute(-4))
	if len(got) != 1 || !got[0].End.Equal(minute(-4)) {
		t.Fatalf("steps end %v, want one ending %s", ends(got), minute(-4).Format("15:04:05"))
	}
	for _, tc := range []struct {
		color string
		c     judge.Color
		want  []float64
	}{
		{"blue", got[0].Blue, []float64{2, 2, 1, 1, 2}},
		{"green", got[0].Green, []float64{0, 2, 0, 2, 0}},
	} {
		h := tc.c.Latency
		if !slices.Equal(h.Bounds, []float64{0.1, 0.25, 0.5, 1}) || !slices.Equal(h.Counts, tc.want) {
			t.Errorf("%s: histogram %v / %v, want counts %v", tc.color, h.Bounds, h.Counts, tc.want)
		}
	}
	var stats []string
	for _, q := range f.seen()[0].Queries {
		if q.MetricName == metricLat {
			stats = append(stats, q.Stat)
		}
	}
	if want := []string{"TC(:0.1)", "TC(0.1:0.25)", "TC(0.25:0.5)", "TC(0.5:1)", "TC(1:)"}; !slices.Equal(stats, want) {
		t.Errorf("statistics %q, want %q", stats, want)
	}
}

// TestDefaultBucketsOnBounds checks that the default bounds, as written in the
// statistics, are the float64s in the histogram: a sample on a bound lands below it.
func TestDefaultBucketsOnBounds(t *testing.T) {
	f := fake(t)
	b := DefaultLatencyBuckets()
	at := minute(-3)
	f.alb(greenTG, metricReqs, at, 5)
	f.alb(greenTG, metricLat, at, b[10], math.Nextafter(b[10], 1), b[40], b[len(b)-1], math.Nextafter(b[len(b)-1], 100))
	p, _ := newProvider(t, f.URL, map[string]any{"delay": "0s"})
	got := steps(t, p, ref, minute(-3), minute(-2))
	h := got[0].Green.Latency
	want := make([]float64, len(b)+1)
	want[10], want[11], want[40], want[len(b)-1], want[len(b)] = 1, 1, 1, 1, 1
	if !slices.Equal(h.Counts, want) {
		t.Errorf("counts %v, want %v", h.Counts, want)
	}
	if h := got[0].Blue.Latency; len(h.Bounds) != 0 {
		t.Errorf("blue has no samples, histogram %v, want none", h)
	}
}

func TestDefaultLatencyBuckets(t *testing.T) {
	b := DefaultLatencyBuckets()
	if len(b) != 75 || b[0] != 0.001 || b[len(b)-1] != 30 {
		t.Fatalf("%d bounds from %g to %g, want 75 from 0.001 to 30", len(b), b[0], b[len(b)-1])
	}
	for i := 1; i < len(b); i++ {
		if r := b[i] / b[i-1]; r < 1.13 || r > 1.17 {
			t.Errorf("bound %d: %g / %g = %.3f, want about 1.15", i, b[i], b[i-1], r)
		}
	}
	for _, x := range b {
		if decimals(x) > maxDecimals {
			t.Errorf("%s has more than %d decimals", bound(x), maxDecimals)
		}
	}
	if n := queryCount(b, 0); n != 78 {
		t.Errorf("queries per call with the defaults = %d, want 78", n)
	}
}

// TestMissingBucketsCountZero: whether CloudWatch answers an empty range with 0
// or with no datapoint, the histogram is the same.
func TestMissingBucketsCountZero(t *testing.T) {
	var hs []string
	for _, omit := range []bool{false, true} {
		f := fake(t)
		f.omitZeroTC = omit
		f.alb(blueTG, metricReqs, minute(-2), 3)
		f.alb(blueTG, metricLat, minute(-2), 0.05, 0.05, 2)
		p, _ := newProvider(t, f.URL, map[string]any{"delay": "0s"})
		got := steps(t, p, ref, minute(-2), minute(-1))
		h := got[0].Blue.Latency
		if h.Total() != 3 || len(h.Counts) != 76 {
			t.Errorf("omit %v: histogram of %g samples in %d buckets, want 3 in 76", omit, h.Total(), len(h.Counts))
		}
		hs = append(hs, fmt.Sprint(h))
	}
	if hs[0] != hs[1] {
		t.Errorf("histograms differ:\n%s\n%s", hs[0], hs[1])
	}
}

// TestRequestsAndErrors checks the NaN rules, and that every period is a step.
func TestRequestsAndErrors(t *testing.T) {
	f := fake(t)
	f.alb(blueTG, metricReqs, minute(-6), 100)
	f.alb(blueTG, metricLat, minute(-6), 0.02)
	f.alb(blueTG, metricReqs, minute(-5), 60, 30) // two samples: Sum 90
	f.alb(blueTG, metricErrs, minute(-5), 3)
	f.alb(blueTG, metricErrs, minute(-4), 1) // errors without requests
	// minute -3: nothing at all
	f.alb(blueTG, metricReqs, minute(-2), 50) // requests, no latency samples
	f.alb(greenTG, metricReqs, minute(-6), 7)
	p, _ := newProvider(t, f.URL, map[string]any{"delay": "0s"})
	got := steps(t, p, ref, minute(-6), minute(-1))
	if want := []string{"11:55:00", "11:56:00", "11:57:00", "11:58:00", "11:59:00"}; !slices.Equal(ends(got), want) {
		t.Fatalf("steps end %v, want %v", ends(got), want)
	}
	nan := math.IsNaN
	b := func(i int) judge.Color { return got[i].Blue }
	if c := b(0); c.Requests != 100 || c.Errors != 0 || c.Latency.Total() != 1 {
		t.Errorf("step 0: %+v, want 100 requests, 0 errors (no 5XX datapoint), 1 latency sample", c)
	}
	if c := b(1); c.Requests != 90 || c.Errors != 3 {
		t.Errorf("step 1: %+v, want 90 requests, 3 errors", c)
	}
	if c := b(2); !nan(c.Requests) || !nan(c.Errors) {
		t.Errorf("step 2: %+v, want NaN requests and errors (no RequestCount datapoint)", c)
	}
	if c := b(3); !nan(c.Requests) || !nan(c.Errors) || len(c.Latency.Bounds) != 0 {
		t.Errorf("step 3: %+v, want NaN and no latency data", c)
	}
	if c := b(4); c.Requests != 50 || c.Errors != 0 || len(c.Latency.Bounds) != 0 {
		t.Errorf("step 4: %+v, want 50 requests and no latency data (no TC datapoint)", c)
	}
	if c := got[0].Green; c.Requests != 7 || c.Errors != 0 || len(c.Latency.Bounds) != 0 {
		t.Errorf("green step 0: %+v", c)
	}
	if c := got[1].Green; !nan(c.Requests) {
		t.Errorf("green step 1: %+v, want NaN requests", c)
	}
	if got[0].Blue.Metrics != nil {
		t.Errorf("metrics %v without app metrics", got[0].Blue.Metrics)
	}
	if n := f.count(); n != 2 {
		t.Errorf("GetMetricData calls = %d, want 2 (one per color)", n)
	}
}

var checkout = map[string]any{
	"name": "checkout", "kind": "proportion", "better": "higher", "margin": 0.05,
	"numerator": map[string]any{"namespace": "Shop", "metricName": "Checkouts",
		"dimensions": map[string]any{"Color": "{{.Color}}", "Service": "shop"}},
	"denominator": map[string]any{"namespace": "Shop", "metricName": "Sessions",
		"dimensions": map[string]any{"Version": "shop-{{.Version}}"}, "stat": "SampleCount"},
}

func TestAppMetrics(t *testing.T) {
	f := fake(t)
	at := minute(-3)
	f.put("Shop", "Checkouts", map[string]string{"Color": "blue", "Service": "shop"}, at, 3, 4)
	f.put("Shop", "Checkouts", map[string]string{"Color": "green", "Service": "shop"}, at, 5)
	f.put("Shop", "Sessions", map[string]string{"Version": "shop-v1"}, at, 1, 1, 1)
	f.put("Shop", "Sessions", map[string]string{"Version": "shop-v2"}, at, 9, 9)
	f.put("Shop", "Sessions", map[string]string{"Version": "shop-v1"}, minute(-2), 1) // no checkouts then
	p, _ := newProvider(t, f.URL, map[string]any{"delay": "0s", "metrics": []any{checkout}})
	got := steps(t, p, ref, minute(-3), minute(-1))
	if len(got) != 2 {
		t.Fatalf("steps end %v, want 2", ends(got))
	}
	if m := got[0].Blue.Metrics["checkout"]; m != (judge.Pair{Num: 7, Den: 3}) {
		t.Errorf("blue checkout = %+v, want 7 of 3", m)
	}
	if m := got[0].Green.Metrics["checkout"]; m != (judge.Pair{Num: 5, Den: 2}) {
		t.Errorf("green checkout = %+v, want 5 of 2 (SampleCount)", m)
	}
	if m := got[1].Blue.Metrics["checkout"]; m.Num != 0 || m.Den != 1 {
		t.Errorf("blue checkout, step 1 = %+v, want 0 of 1: no event datapoint in a period with trials is no events", m)
	}
	if m, ok := got[1].Green.Metrics["checkout"]; !ok || !math.IsNaN(m.Num) || !math.IsNaN(m.Den) {
		t.Errorf("green checkout, step 1 = %+v %v, want NaN of NaN", m, ok)
	}
	dims := map[string]string{}
	for _, r := range f.seen() {
		for _, q := range r.Queries {
			if q.Namespace == "Shop" {
				dims[q.ID+" "+r.Queries[0].Dims[dimTG]] = fmt.Sprint(q.Dims, " ", q.Stat)
			}
		}
	}
	want := map[string]string{
		"m0num " + blueTG:  "map[Color:blue Service:shop] Sum",
		"m0den " + blueTG:  "map[Version:shop-v1] SampleCount",
		"m0num " + greenTG: "map[Color:green Service:shop] Sum",
		"m0den " + greenTG: "map[Version:shop-v2] SampleCount",
	}
	if fmt.Sprint(dims) != fmt.Sprint(want) {
		t.Errorf("queries %v, want %v", dims, want)
	}
	mc := p.Judge().Metrics
	if len(mc) != 1 || mc[0].Name != "checkout" || mc[0].Margin != 0.05 || mc[0].Critical == nil || *mc[0].Critical {
		t.Errorf("judge metrics %+v, want checkout with its defaults", mc)
	}

	// A release without a previous version has no version for blue.
	_, err := p.Steps(context.Background(), providers.Ref{App: "shop", Version: "v1"}, minute(-3), minute(-1), time.Minute)
	if !errors.Is(err, providers.ErrInvalid) || !strings.Contains(err.Error(), "metrics[0].denominator.dimensions.Version") {
		t.Errorf("err = %v, want ErrInvalid naming metrics[0].denominator.dimensions.Version", err)
	}
}

func TestPaging(t *testing.T) {
	load := func(f *fakeCW) {
		for k := -12; k < 0; k++ {
			for _, tg := range []string{blueTG, greenTG} {
				f.alb(tg, metricReqs, minute(k), float64(100+k))
				f.alb(tg, metricErrs, minute(k), 1)
				f.alb(tg, metricLat, minute(k), 0.01, 0.1*float64(-k), 3)
			}
		}
	}
	whole, paged := fake(t), fake(t)
	load(whole)
	load(paged)
	paged.pageSize = 50
	p1, _ := newProvider(t, whole.URL, nil)
	p2, _ := newProvider(t, paged.URL, nil)
	want := steps(t, p1, ref, minute(-12), minute(0))
	got := steps(t, p2, ref, minute(-12), minute(0))
	if len(want) != 11 {
		t.Fatalf("steps end %v, want 11 (the newest is within the delay)", ends(want))
	}
	if show(got) != show(want) {
		t.Errorf("paged steps differ:\n%s\nwant\n%s", show(got), show(want))
	}
	if n := paged.count(); n < 4 {
		t.Errorf("GetMetricData calls = %d, want several pages per color", n)
	}
	tokens := 0
	for _, r := range paged.seen() {
		if r.NextToken != "" {
			tokens++
		}
	}
	if tokens == 0 {
		t.Error("no request carried a NextToken")
	}

	// An answer that never ends is an error, not a loop.
	paged.pageSize = 1
	if _, err := p2.Steps(context.Background(), ref, minute(-12), minute(0), time.Minute); err == nil || !strings.Contains(err.Error(), "still paging") {
		t.Errorf("err = %v, want still paging", err)
	}
}

// TestOnlyCompletePeriods: a period is read once the delay has passed after its end.
func TestOnlyCompletePeriods(t *testing.T) {
	f := fake(t)
	p, c := newProvider(t, f.URL, nil) // delay 60s, now 12:00:05
	got := steps(t, p, ref, minute(-10), minute(10))
	if e := ends(got); len(e) != 9 || e[0] != "11:51:00" || e[8] != "11:59:00" {
		t.Errorf("steps end %v, want 11:51..11:59: 12:00 ended only 5s ago", e)
	}
	// Nothing complete yet: no steps, and nothing read.
	calls := f.count()
	if got := steps(t, p, ref, minute(-1), minute(10)); len(got) != 0 {
		t.Errorf("steps end %v, want none", ends(got))
	}
	if f.count() != calls {
		t.Error("it called CloudWatch without a complete period to read")
	}
	c.set(minute(1)) // 12:01:00: the period that ended at 12:00 has had its 60s
	if got := steps(t, p, ref, minute(-1), minute(10)); !slices.Equal(ends(got), []string{"12:00:00"}) {
		t.Errorf("steps end %v, want 12:00:00", ends(got))
	}

	p0, _ := newProvider(t, f.URL, map[string]any{"delay": "0s"})
	if got := steps(t, p0, ref, minute(-2), minute(10)); !slices.Equal(ends(got), []string{"11:59:00", "12:00:00"}) {
		t.Errorf("delay 0s: steps end %v, want 11:59, 12:00", ends(got))
	}
}

// TestStepsRange: steps end after from and at or before to, one per period,
// oldest first, read with aligned times whatever the range.
func TestStepsRange(t *testing.T) {
	f := fake(t)
	p, _ := newProvider(t, f.URL, nil)
	got := steps(t, p, ref, minute(-10).Add(30*time.Second), minute(-5).Add(30*time.Second))
	if want := []string{"11:51:00", "11:52:00", "11:53:00", "11:54:00", "11:55:00"}; !slices.Equal(ends(got), want) {
		t.Errorf("steps end %v, want %v", ends(got), want)
	}
	r := f.seen()[0]
	if !r.Start.Equal(minute(-10)) || !r.End.Equal(minute(-5)) {
		t.Errorf("read %s..%s, want %s..%s", r.Start, r.End, minute(-10), minute(-5))
	}
	if got := steps(t, p, ref, minute(-5), minute(-5)); len(got) != 0 {
		t.Errorf("an empty range gave %v", ends(got))
	}

	// At most one page's worth of periods per call; the caller reads on.
	p.maxPeriods = 3
	if got := steps(t, p, ref, minute(-10), minute(-1)); !slices.Equal(ends(got), []string{"11:51:00", "11:52:00", "11:53:00"}) {
		t.Errorf("steps end %v, want the first 3", ends(got))
	}

	_, err := p.Steps(context.Background(), ref, minute(-10), minute(-1), 5*time.Minute)
	if !errors.Is(err, providers.ErrInvalid) {
		t.Errorf("a step other than the period: err = %v, want ErrInvalid", err)
	}
}

func TestThrottlingRetried(t *testing.T) {
	f := fake(t)
	f.alb(greenTG, metricReqs, minute(-3), 10)
	f.fail("throttle", "5xx")
	p, _ := newProvider(t, f.URL, nil)
	got := steps(t, p, ref, minute(-3), minute(-2))
	if len(got) != 1 || got[0].Green.Requests != 10 {
		t.Fatalf("steps %+v", got)
	}
	if n := f.count(); n != 4 {
		t.Errorf("GetMetricData calls = %d, want 4 (each color: one failure, then OK)", n)
	}
}

func TestThrottlingForeverRetryable(t *testing.T) {
	f := fake(t)
	f.fail(slices.Repeat([]string{"throttle"}, 8)...)
	p, _ := newProvider(t, f.URL, nil)
	_, err := p.Steps(context.Background(), ref, minute(-3), minute(-2), time.Minute)
	if err == nil || permanent(err) || !strings.Contains(err.Error(), "GetMetricData") {
		t.Fatalf("err = %v, want a retryable GetMetricData error", err)
	}
	if n := f.count(); n != 8 {
		t.Errorf("GetMetricData calls = %d, want 8 (the SDK's 4 attempts per color)", n)
	}
}

func TestAccessDeniedPermanent(t *testing.T) {
	f := fake(t)
	f.fail("denied", "denied")
	p, _ := newProvider(t, f.URL, nil)
	_, err := p.Steps(context.Background(), ref, minute(-3), minute(-2), time.Minute)
	if !errors.Is(err, providers.ErrInvalid) {
		t.Fatalf("err = %v, want ErrInvalid", err)
	}
	if !strings.Contains(err.Error(), "AccessDenied") || !strings.Contains(err.Error(), "cloudwatch:GetMetricData") {
		t.Errorf("err = %v, want AccessDenied and the permission named", err)
	}
	if n := f.count(); n != 2 {
		t.Errorf("calls = %d, want 2: access denied is not retried", n)
	}
}

func TestAccessDeniedWithoutQueryHeader(t *testing.T) {
	f := fake(t)
	f.fail("denied-no-query-header", "denied-no-query-header")
	p, _ := newProvider(t, f.URL, nil)
	if _, err := p.Steps(context.Background(), ref, minute(-3), minute(-2), time.Minute); !errors.Is(err, providers.ErrInvalid) {
		t.Fatalf("err = %v, want ErrInvalid", err)
	}
}

func TestResourceNotFound(t *testing.T) {
	f := fake(t)
	f.fail("notfound", "notfound")
	p, _ := newProvider(t, f.URL, nil)
	if _, err := p.Steps(context.Background(), ref, minute(-3), minute(-2), time.Minute); !errors.Is(err, providers.ErrNotFound) {
		t.Fatalf("err = %v, want ErrNotFound", err)
	}
}

func TestForbiddenQuery(t *testing.T) {
	f := fake(t)
	f.forbidden[metricErrs] = true
	p, _ := newProvider(t, f.URL, nil)
	_, err := p.Steps(context.Background(), ref, minute(-3), minute(-2), time.Minute)
	if !errors.Is(err, providers.ErrInvalid) || !strings.Contains(err.Error(), "query errors") {
		t.Fatalf("err = %v, want ErrInvalid naming the query", err)
	}
}

// TestMalformedStatisticPermanent: a statistic CloudWatch refuses is a
// ValidationError, not retried.
func TestMalformedStatisticPermanent(t *testing.T) {
	f := fake(t)
	p, _ := newProvider(t, f.URL, map[string]any{"latencyBuckets": []any{0.5}})
	p.bounds = []float64{1e-11} // 11 decimals: New refuses it, CloudWatch would too
	_, err := p.Steps(context.Background(), ref, minute(-3), minute(-2), time.Minute)
	if !errors.Is(err, providers.ErrInvalid) || !strings.Contains(err.Error(),
		"ValidationError: The value TC(:0.00000000001) for parameter MetricDataQueries.member.3.MetricStat.Stat is not a valid statistic.") {
		t.Fatalf("err = %v, want ErrInvalid with CloudWatch's ValidationError", err)
	}
	if n := f.count(); n != 2 {
		t.Errorf("calls = %d, want 2: a validation error is not retried", n)
	}
}

// TestFakeStatistics checks the fake's reading of the statistic syntax, and
// that a real client sees CloudWatch's error for the malformed ones.
func TestFakeStatistics(t *testing.T) {
	for _, s := range []string{"Sum", "SampleCount", "Average", "Minimum", "Maximum", "p99", "p99.9", "tm90", "tc99",
		"IQM", "TC(0.005:0.030)", "TC(:0.5)", "TC(30:)", "TC(80:500)", "TM(10%:90%)", "TM(:95%)", "TS(80%:)", "PR(:300)", "PR(100:2000)",
		"TC(0.0000000001:1)"} {
		if _, ok := parseStat(s); !ok {
			t.Errorf("%s: refused, CloudWatch takes it", s)
		}
	}
	bad := []string{"sum", "Avg", "p", "p101", "tc(1:2)", "TC(1)", "TC(2:1)", "TC(1:1)", "TC(:)", "TC(1e-3:)", "TC(-1:2)",
		"TC(0.00000000001:1)", "TC(10%:200)", "TM(10%:120%)", "PR(10%:90%)", "TC 1:2", ""}
	for _, s := range bad {
		if _, ok := parseStat(s); ok {
			t.Errorf("%q: taken, CloudWatch refuses it", s)
		}
	}
	if st, _ := parseStat("TC(0.1:0.25)"); !st.computable() || *st.lo != 0.1 || *st.hi != 0.25 {
		t.Errorf("TC(0.1:0.25) = %+v", st)
	}

	f := fake(t)
	awsEnv(t)
	client := cw.New(cw.Options{
		Region: "eu-west-1", BaseEndpoint: aws.String(f.URL),
		Credentials: aws.AnonymousCredentials{},
	})
	var qs []types.MetricDataQuery
	for i, s := range []string{"Sum", "tc(1:2)", "TC(2:1)"} {
		qs = append(qs, types.MetricDataQuery{Id: aws.String(fmt.Sprintf("q%d", i)), MetricStat: &types.MetricStat{
			Metric: &types.Metric{Namespace: aws.String("Shop"), MetricName: aws.String("Sessions")},
			Period: aws.Int32(60), Stat: aws.String(s),
		}})
	}
	_, err := client.GetMetricData(context.Background(), &cw.GetMetricDataInput{
		StartTime: aws.Time(minute(-2)), EndTime: aws.Time(minute(0)), MetricDataQueries: qs,
	})
	var ae smithy.APIError
	if !errors.As(err, &ae) || ae.ErrorCode() != "ValidationError" || ae.ErrorMessage() !=
		"The value tc(1:2) for parameter MetricDataQueries.member.2.MetricStat.Stat is not a valid statistic.\n"+
			"The value TC(2:1) for parameter MetricDataQueries.member.3.MetricStat.Stat is not a valid statistic." {
		t.Errorf("err = %v, want CloudWatch's ValidationError for members 2 and 3", err)
	}
	f.mu.Lock()
	f.bad = nil // the anonymous client's request is unsigned on purpose
	f.mu.Unlock()
}

// TestRealSDKClient: what talks to the fake is aws-sdk-go-v2's CloudWatch
// client, signing with the credentials of the default chain.
func TestRealSDKClient(t *testing.T) {
	f := fake(t)
	p, _ := newProvider(t, f.URL, nil)
	steps(t, p, ref, minute(-3), minute(-2))
	hs := f.seenHeaders()
	if len(hs) != 2 {
		t.Fatalf("%d requests, want 2", len(hs))
	}
	h := hs[0]
	auth := h.Get("Authorization")
	if !strings.HasPrefix(auth, "AWS4-HMAC-SHA256 Credential=AKIDCUTOVERTEST/") || !strings.Contains(auth, "/eu-west-1/monitoring/aws4_request") {
		t.Errorf("Authorization %q, want SigV4 for monitoring in eu-west-1 with the test key", auth)
	}
	if ua := h.Get("User-Agent"); !strings.Contains(ua, "aws-sdk-go-v2/") || !strings.Contains(ua, "api/cloudwatch") {
		t.Errorf("User-Agent %q, want aws-sdk-go-v2's CloudWatch client", ua)
	}
	if h.Get("X-Amzn-Query-Mode") != "true" || h.Get("Smithy-Protocol") != "rpc-v2-cbor" {
		t.Errorf("headers %v, want the query-compatible RPC v2 CBOR protocol", h)
	}
}

func TestUnreachableRetryable(t *testing.T) {
	f := newFake()
	url := f.URL
	f.Close()
	p, _ := newProvider(t, url, nil)
	_, err := p.Steps(context.Background(), ref, minute(-3), minute(-2), time.Minute)
	if err == nil || permanent(err) {
		t.Fatalf("err = %v, want a retryable error", err)
	}
}

func TestCancelled(t *testing.T) {
	p, _ := newProvider(t, "http://127.0.0.1:1", nil)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := p.Steps(ctx, ref, minute(-3), minute(-2), time.Minute); !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want context.Canceled", err)
	}
}

func TestNoRegion(t *testing.T) {
	awsEnv(t)
	p, err := New(settings("http://127.0.0.1:4566", map[string]any{"region": nil}))
	if err != nil {
		t.Fatal(err)
	}
	p.now = func() time.Time { return t0 }
	_, err = p.Steps(context.Background(), ref, minute(-3), minute(-2), time.Minute)
	if !errors.Is(err, providers.ErrBadConfig) || !strings.Contains(err.Error(), "region") {
		t.Fatalf("err = %v, want a BadConfig naming region", err)
	}
}

// metricsN is n app metrics, each with its own name.
func metricsN(n int) []any {
	var out []any
	for i := range n {
		m := map[string]any{}
		for k, v := range checkout {
			m[k] = v
		}
		m["name"] = fmt.Sprintf("m%d", i)
		out = append(out, m)
	}
	return out
}

func TestBadSettings(t *testing.T) {
	with := func(k string, v any) map[string]any {
		m := map[string]any{}
		for k, v := range checkout {
			m[k] = v
		}
		m[k] = v
		return map[string]any{"metrics": []any{m}}
	}
	num := func(k string, v any) map[string]any {
		q := map[string]any{"namespace": "Shop", "metricName": "Checkouts"}
		q[k] = v
		return with("numerator", q)
	}
	for _, tc := range []struct {
		name    string
		extra   map[string]any
		setting string
	}{
		{"no load balancer", map[string]any{"loadBalancer": nil}, "loadBalancer"},
		{"bad load balancer", map[string]any{"loadBalancer": "shop"}, "loadBalancer"},
		{"bad blue", map[string]any{"blueTargetGroup": "shop-blue"}, "blueTargetGroup"},
		{"no green", map[string]any{"greenTargetGroup": nil}, "greenTargetGroup"},
		{"same groups", map[string]any{"greenTargetGroup": blueTG}, "greenTargetGroup"},
		{"period 45s", map[string]any{"period": "45s"}, "period"},
		{"period 90s", map[string]any{"period": "90s"}, "period"},
		{"delay too long", map[string]any{"delay": "20m"}, "delay"},
		{"negative delay", map[string]any{"delay": "-1s"}, "delay"},
		{"bad endpoint", map[string]any{"endpoint": "localhost:4566"}, "endpoint"},
		{"unknown setting", map[string]any{"namespace": "AWS/ELB"}, "namespace"},
		{"lookback is gone", map[string]any{"lookback": "5m"}, "lookback"},
		{"judge", map[string]any{"judge": map[string]any{"alpha": 2}}, "judge.alpha"},
		{"region differs from ARN", map[string]any{"loadBalancer": "arn:aws:elasticloadbalancing:us-east-1:123456789012:loadbalancer/app/shop/50dc6c495c0c9188"}, "region"},
		{"target group ARN of another service", map[string]any{"blueTargetGroup": "arn:aws:s3:::bucket"}, "blueTargetGroup"},
		{"bucket not positive", map[string]any{"latencyBuckets": []any{0, 1}}, "latencyBuckets[0]"},
		{"buckets not ascending", map[string]any{"latencyBuckets": []any{0.1, 0.5, 0.5}}, "latencyBuckets[2]"},
		{"bucket with 11 decimals", map[string]any{"latencyBuckets": []any{0.00000000001}}, "latencyBuckets[0]"},
		{"bucket not a number", map[string]any{"latencyBuckets": []any{"1s"}}, "latencyBuckets"},
		{"too many buckets", map[string]any{"latencyBuckets": func() []any {
			var bs []any
			for i := range 498 {
				bs = append(bs, float64(i+1)/100)
			}
			return bs
		}()}, "latencyBuckets"},
		{"latency off, judged", map[string]any{"latencyBuckets": []any{}, "judge": map[string]any{"latency": map[string]any{"maxP99": "1s"}}}, "judge.latency sets maxP99"},
		{"buckets, latency off", map[string]any{"latencyBuckets": []any{0.1}, "judge": map[string]any{"latency": map[string]any{"off": true}}}, "judge.latency.off"},
		{"judge metrics", map[string]any{"judge": map[string]any{"metrics": []any{map[string]any{"name": "x"}}}}, "judge.metrics"},
		{"too many metrics", map[string]any{"metrics": metricsN(212)}, "metrics"},
		{"metric name taken", map[string]any{"metrics": []any{checkout, checkout}}, "metrics[1].name"},
		{"metric kind", with("kind", "ratio"), "metrics[0].kind"},
		{"metric margin", with("margin", 2), "metrics[0].margin"},
		{"metric unknown field", with("query", "x"), "query"},
		{"no namespace", num("namespace", ""), "metrics[0].numerator.namespace"},
		{"no metric name", num("metricName", ""), "metrics[0].numerator.metricName"},
		{"stat average", num("stat", "Average"), "metrics[0].numerator.stat"},
		{"stat percentile", num("stat", "p99"), "metrics[0].numerator.stat"},
		{"templated namespace", num("namespace", "{{.Color}}"), "metrics[0].numerator.namespace"},
		{"unknown template field", num("dimensions", map[string]any{"Color": "{{.Colour}}"}), "metrics[0].numerator.dimensions.Color"},
		{"broken template", num("dimensions", map[string]any{"Color": "{{.Color"}), "metrics[0].numerator.dimensions.Color"},
		{"empty dimension", num("dimensions", map[string]any{"Color": ""}), "metrics[0].numerator.dimensions.Color"},
		{"no denominator", with("denominator", nil), "metrics[0].denominator.namespace"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := New(settings("http://127.0.0.1:4566", tc.extra))
			if !errors.Is(err, providers.ErrBadConfig) {
				t.Fatalf("err = %v, want ErrBadConfig", err)
			}
			if msg := err.Error(); strings.Contains(msg, "\n") || !strings.Contains(msg, tc.setting) {
				t.Errorf("err = %q, want one line naming %s", msg, tc.setting)
			}
		})
	}
}

func TestGoodSettings(t *testing.T) {
	for _, extra := range []map[string]any{
		nil,
		{"period": "1s"},
		{"period": "5m", "delay": "0s", "endpoint": nil},
		{"metrics": metricsN(211)},
		{"latencyBuckets": []any{0.005, 0.05, 0.5, 5}, "judge": map[string]any{"latency": map[string]any{"maxP99": "1s"}}},
		{
			"region":           nil,
			"loadBalancer":     "arn:aws:elasticloadbalancing:eu-west-1:123456789012:loadbalancer/app/shop/50dc6c495c0c9188",
			"blueTargetGroup":  "arn:aws:elasticloadbalancing:eu-west-1:123456789012:" + blueTG,
			"greenTargetGroup": "arn:aws:elasticloadbalancing:eu-west-1:123456789012:" + greenTG,
		},
	} {
		p, err := New(settings("http://127.0.0.1:4566", extra))
		if err != nil {
			t.Fatalf("%v: %v", extra, err)
		}
		if p.lb != lb || p.blueTG != blueTG || p.greenTG != greenTG || p.s.Region != "eu-west-1" {
			t.Errorf("%v: dimensions %s %s %s region %q", extra, p.lb, p.blueTG, p.greenTG, p.s.Region)
		}
	}
}

func TestSource(t *testing.T) {
	p, err := New(settings("", map[string]any{"period": "5m"}))
	if err != nil {
		t.Fatal(err)
	}
	if p.Type() != "cloudwatch" || p.Where() != "cloudwatch AWS/ApplicationELB "+lb || p.Step() != 5*time.Minute {
		t.Errorf("Type %q, Where %q, Step %s", p.Type(), p.Where(), p.Step())
	}
	cfg := p.Judge()
	if cfg.Alpha != 0.01 || cfg.Latency.Off || len(cfg.Latency.Quantiles) != 3 || len(p.bounds) != 75 {
		t.Errorf("judge %+v with %d bounds, want the defaults and latency on", cfg, len(p.bounds))
	}
	if _, ok := any(p).(providers.Analyzer); ok {
		t.Error("the provider is an Analyzer: it must only read")
	}
}

func TestLatencyOff(t *testing.T) {
	for _, extra := range []map[string]any{
		{"latencyBuckets": []any{}},
		{"latencyBuckets": []any{}, "judge": map[string]any{"latency": map[string]any{"off": true}}},
		{"judge": map[string]any{"latency": map[string]any{"off": true}}},
	} {
		f := fake(t)
		f.alb(blueTG, metricReqs, minute(-3), 5)
		f.alb(blueTG, metricLat, minute(-3), 0.1)
		p, _ := newProvider(t, f.URL, extra)
		if !p.Judge().Latency.Off {
			t.Errorf("%v: judge latency on", extra)
		}
		got := steps(t, p, ref, minute(-3), minute(-2))
		if len(got[0].Blue.Latency.Bounds) != 0 || got[0].Blue.Requests != 5 {
			t.Errorf("%v: blue %+v, want requests and no latency", extra, got[0].Blue)
		}
		if qs := f.seen()[0].Queries; len(qs) != 2 {
			t.Errorf("%v: %d queries, want 2: no TC statistics", extra, len(qs))
		}
	}
}

// TestMostQueries: the default ladder and the most app metrics it leaves room
// for fill one call with CloudWatch's 500 queries, which the fake takes.
func TestMostQueries(t *testing.T) {
	f := fake(t)
	p, _ := newProvider(t, f.URL, map[string]any{"metrics": metricsN(211)})
	got := steps(t, p, ref, minute(-3), minute(-2))
	if len(got) != 1 || len(got[0].Green.Metrics) != 211 {
		t.Fatalf("steps %d, metrics %d", len(got), len(got[0].Green.Metrics))
	}
	if n := len(f.seen()[0].Queries); n != 500 {
		t.Errorf("%d queries, want 500", n)
	}
}
