package cloudwatch

import (
	"context"
	"errors"
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

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

// t0 is the fake clock's start: on a minute boundary, plus a few seconds.
var t0 = time.Date(2026, 11, 23, 12, 0, 5, 0, time.UTC)

func awsEnv(t *testing.T) { awstest.Env(t, "AWS_ENDPOINT_URL_CLOUDWATCH") }

// clock is a test clock: sleeping moves it on at once.
type clock struct {
	mu    sync.Mutex
	t     time.Time
	slept time.Duration
}

func (c *clock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) sleep(ctx context.Context, d time.Duration) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if d > 0 {
		c.t = c.t.Add(d)
		c.slept += d
	}
	return ctx.Err()
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
	p.backoff, p.now, p.sleep = awstest.FastBackoff{}, c.now, c.sleep
	return p, c
}

// traffic seeds a target group with one datapoint a minute from an hour before
// t0 to an hour after: requests a minute, the given error rate, latency around
// lat seconds.
func traffic(f *fakeCW, tg string, seed uint64, requests, errRate, lat float64) {
	r := rand.New(rand.NewPCG(seed, 1))
	for m := -60; m < 60; m++ {
		at := t0.Truncate(time.Minute).Add(time.Duration(m) * time.Minute)
		n := math.Round(requests * (0.9 + 0.2*r.Float64()))
		f.set(tg, "RequestCount", "Sum", at, n)
		if e := math.Round(n * errRate); e > 0 {
			f.set(tg, "HTTPCode_Target_5XX_Count", "Sum", at, e)
		}
		l := lat * (0.9 + 0.2*r.Float64())
		f.set(tg, "TargetResponseTime", "Average", at, l)
		f.set(tg, "TargetResponseTime", "p99", at, 4*l)
	}
}

func fake(t *testing.T) *fakeCW {
	f := newFake(lb)
	t.Cleanup(f.Close)
	t.Cleanup(func() {
		if bad := f.problems(); len(bad) > 0 {
			t.Errorf("the fake saw requests it did not expect: %v", bad)
		}
	})
	return f
}

func TestCompareGoodGreenPasses(t *testing.T) {
	f := fake(t)
	traffic(f, blueTG, 1, 1000, 0.002, 0.050)
	traffic(f, greenTG, 2, 1000, 0.002, 0.050)
	p, c := newProvider(t, f.URL, nil)
	v, err := p.Compare(context.Background(), ref, 10*time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	if v.Result != providers.Pass {
		t.Fatalf("verdict %s, want Pass", v)
	}
	t.Log(v)
	if got := f.count(); got != 2 {
		t.Errorf("GetMetricData calls = %d, want 2 (one per color)", got)
	}
	// It waited out the window and the default delay.
	if c.slept < 10*time.Minute+DefaultDelay-5*time.Second {
		t.Errorf("slept %s, want the window and the delay", c.slept)
	}
}

func TestCompareGreenWithErrorsFails(t *testing.T) {
	f := fake(t)
	traffic(f, blueTG, 1, 1000, 0.002, 0.050)
	traffic(f, greenTG, 2, 1000, 0.05, 0.050)
	p, _ := newProvider(t, f.URL, nil)
	v, err := p.Compare(context.Background(), ref, 10*time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	if v.Result != providers.Fail || !strings.Contains(v.Summary, "error rate") {
		t.Fatalf("verdict %s, want Fail on the error rate", v)
	}
	t.Log(v)
}

func TestCompareMissingDataInconclusive(t *testing.T) {
	f := fake(t)
	traffic(f, blueTG, 1, 1000, 0.002, 0.050)
	p, _ := newProvider(t, f.URL, nil)
	v, err := p.Compare(context.Background(), ref, 10*time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	if v.Result != providers.Inconclusive || !strings.Contains(v.Summary, "green has no data") {
		t.Fatalf("verdict %s, want Inconclusive: green has no data", v)
	}
}

func TestGuard(t *testing.T) {
	f := fake(t)
	traffic(f, greenTG, 2, 1000, 0.002, 0.050)
	p, _ := newProvider(t, f.URL, map[string]any{"judge": map[string]any{"guard": map[string]any{"maxP99": "1s"}}})
	v, err := p.Guard(context.Background(), ref)
	if err != nil {
		t.Fatal(err)
	}
	if v.Result != providers.Pass {
		t.Fatalf("verdict %s, want Pass", v)
	}
	if f.count() != 1 {
		t.Errorf("GetMetricData calls = %d, want 1", f.count())
	}

	// Green's errors jump over the guard's 1%.
	traffic(f, greenTG, 3, 1000, 0.04, 0.050)
	if v, err = p.Guard(context.Background(), ref); err != nil || v.Result != providers.Fail {
		t.Fatalf("verdict %s, %v; want Fail", v, err)
	}
}

func TestThrottlingRetried(t *testing.T) {
	f := fake(t)
	traffic(f, greenTG, 2, 1000, 0.002, 0.050)
	f.fail("throttle", "5xx")
	p, _ := newProvider(t, f.URL, nil)
	v, err := p.Guard(context.Background(), ref)
	if err != nil {
		t.Fatal(err)
	}
	if v.Result != providers.Pass {
		t.Fatalf("verdict %s, want Pass after the retries", v)
	}
	if got := f.count(); got != 3 {
		t.Errorf("GetMetricData calls = %d, want 3 (throttled, 5xx, OK)", got)
	}
}

func TestThrottlingForeverInconclusive(t *testing.T) {
	f := fake(t)
	traffic(f, greenTG, 2, 1000, 0.002, 0.050)
	f.fail("throttle", "throttle", "throttle", "throttle", "throttle")
	p, _ := newProvider(t, f.URL, nil)
	v, err := p.Guard(context.Background(), ref)
	if err != nil {
		t.Fatal(err)
	}
	if v.Result != providers.Inconclusive || !strings.Contains(v.Summary, "could not be read") {
		t.Fatalf("verdict %s, want Inconclusive", v)
	}
	if got := f.count(); got != 4 {
		t.Errorf("GetMetricData calls = %d, want 4 (the SDK's attempts)", got)
	}
}

func TestAccessDeniedPermanent(t *testing.T) {
	f := fake(t)
	f.fail("denied")
	p, _ := newProvider(t, f.URL, nil)
	_, err := p.Guard(context.Background(), ref)
	if !errors.Is(err, providers.ErrInvalid) {
		t.Fatalf("err = %v, want ErrInvalid", err)
	}
	if !strings.Contains(err.Error(), "AccessDenied") || !strings.Contains(err.Error(), "cloudwatch:GetMetricData") {
		t.Errorf("err = %v, want AccessDenied and the permission named", err)
	}
	if f.count() != 1 {
		t.Errorf("calls = %d, want 1: access denied is not retried", f.count())
	}
}

func TestAccessDeniedWithoutQueryHeader(t *testing.T) {
	f := fake(t)
	f.fail("denied-no-query-header")
	p, _ := newProvider(t, f.URL, nil)
	if _, err := p.Guard(context.Background(), ref); !errors.Is(err, providers.ErrInvalid) {
		t.Fatalf("err = %v, want ErrInvalid", err)
	}
}

func TestResourceNotFound(t *testing.T) {
	f := fake(t)
	f.fail("notfound", "notfound")
	p, _ := newProvider(t, f.URL, nil)
	_, err := p.Compare(context.Background(), ref, time.Minute)
	if !errors.Is(err, providers.ErrNotFound) {
		t.Fatalf("err = %v, want ErrNotFound", err)
	}
}

func TestUnreachableInconclusive(t *testing.T) {
	f := newFake(lb)
	url := f.URL
	f.Close()
	p, _ := newProvider(t, url, nil)
	v, err := p.Compare(context.Background(), ref, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	if v.Result != providers.Inconclusive || !strings.Contains(v.Summary, "could not be read") {
		t.Fatalf("verdict %s, want Inconclusive", v)
	}
}

func TestCancelled(t *testing.T) {
	p, _ := newProvider(t, "http://127.0.0.1:1", nil)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := p.Compare(ctx, ref, time.Minute); !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want context.Canceled", err)
	}
}

// TestCompareWindow checks which periods Compare reads: those inside the
// window, ending at each period's end.
func TestCompareWindow(t *testing.T) {
	f := fake(t)
	traffic(f, blueTG, 1, 1000, 0, 0.05)
	p, c := newProvider(t, f.URL, map[string]any{"delay": "0s"})
	start := c.now()
	got, err := p.points(context.Background(), providers.Blue, ceil(start, time.Minute), start.Add(5*time.Minute).Truncate(time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 4 {
		t.Fatalf("got %d points, want 4", len(got))
	}
	if want := t0.Truncate(time.Minute).Add(2 * time.Minute); !got[0].Time.Equal(want) {
		t.Errorf("first point ends %s, want %s", got[0].Time, want)
	}
	if !slices.IsSortedFunc(got, func(a, b judge.Point) int { return a.Time.Compare(b.Time) }) {
		t.Error("points are not oldest first")
	}
}

func TestAssemble(t *testing.T) {
	m := func(s int) time.Time { return t0.Truncate(time.Minute).Add(time.Duration(s) * time.Minute) }
	series := map[string]map[time.Time]float64{
		idRequests: {m(0): 100, m(1): 90},
		idErrors:   {m(1): 3, m(2): 1},
		idLatency:  {m(0): 0.05, m(2): 0.07},
		idP99:      {m(0): 0.2},
	}
	pts := assemble(series, time.Minute)
	if len(pts) != 3 {
		t.Fatalf("got %d points", len(pts))
	}
	if p := pts[0]; !p.Time.Equal(m(1)) || p.Requests != 100 || p.Errors != 0 || p.Latency != 0.05 || p.P99 != 0.2 {
		t.Errorf("point 0 = %+v: want 100 requests, 0 errors (no 5XX datapoint)", p)
	}
	if p := pts[1]; p.Requests != 90 || p.Errors != 3 || !math.IsNaN(p.Latency) || !math.IsNaN(p.P99) {
		t.Errorf("point 1 = %+v", p)
	}
	if p := pts[2]; !math.IsNaN(p.Requests) || p.Errors != 1 || p.Latency != 0.07 {
		t.Errorf("point 2 = %+v: want NaN requests (no RequestCount datapoint)", p)
	}
}

func TestBadSettings(t *testing.T) {
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
		{"lookback below period", map[string]any{"period": "5m", "lookback": "1m"}, "lookback"},
		{"delay too long", map[string]any{"delay": "20m"}, "delay"},
		{"bad endpoint", map[string]any{"endpoint": "localhost:4566"}, "endpoint"},
		{"unknown setting", map[string]any{"namespace": "AWS/ELB"}, "namespace"},
		{"judge", map[string]any{"judge": map[string]any{"alpha": 2}}, "judge.alpha"},
		{"region differs from ARN", map[string]any{"loadBalancer": "arn:aws:elasticloadbalancing:us-east-1:123456789012:loadbalancer/app/shop/50dc6c495c0c9188"}, "region"},
		{"target group ARN of another service", map[string]any{"blueTargetGroup": "arn:aws:s3:::bucket"}, "blueTargetGroup"},
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
		{"period": "1s", "lookback": "30s"},
		{"period": "5m", "lookback": "30m", "delay": "0s", "endpoint": nil},
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

func TestNoRegion(t *testing.T) {
	awsEnv(t)
	p, err := New(settings("http://127.0.0.1:4566", map[string]any{"region": nil}))
	if err != nil {
		t.Fatal(err)
	}
	_, err = p.Guard(context.Background(), ref)
	if !errors.Is(err, providers.ErrBadConfig) || !strings.Contains(err.Error(), "region") {
		t.Fatalf("err = %v, want a BadConfig naming region", err)
	}
}
