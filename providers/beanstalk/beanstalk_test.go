package beanstalk

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/cutoverhq/cutover/providers"
	"github.com/cutoverhq/cutover/providers/awsapi/awstest"
	"github.com/cutoverhq/cutover/providers/beanstalk/ebfake"
	"github.com/cutoverhq/cutover/providers/providertest"
)

const (
	application = "shop"
	blueEnv     = "shop-blue"
	greenEnv    = "shop-green"
	liveCNAME   = "shop.eu-west-1.elasticbeanstalk.com"
	greenCNAME  = "shop-green.eu-west-1.elasticbeanstalk.com"
)

func awsEnv(t *testing.T) { awstest.Env(t, "AWS_ENDPOINT_URL_ELASTIC_BEANSTALK") }

// fake returns a server with blue holding the live CNAME and running v1, green
// idle on its own CNAME, both Ready and Green, and versions v1 and v2.
func fake(t *testing.T) *ebfake.Server {
	t.Helper()
	awsEnv(t)
	s := ebfake.New()
	t.Cleanup(s.Close)
	s.AddVersion(application, "v1")
	s.AddVersion(application, "v2")
	s.SetEnv(ebfake.Env{Name: blueEnv, Application: application, CNAME: liveCNAME, VersionLabel: "v1", Status: "Ready", Health: "Green", HealthStatus: "Ok"})
	s.SetEnv(ebfake.Env{Name: greenEnv, Application: application, CNAME: greenCNAME, VersionLabel: "v1", Status: "Ready", Health: "Green", HealthStatus: "Ok"})
	return s
}

func settings(s *ebfake.Server, extra map[string]any) map[string]any {
	m := map[string]any{
		"region":           "eu-west-1",
		"application":      application,
		"blueEnvironment":  blueEnv,
		"greenEnvironment": greenEnv,
		"liveCNAME":        liveCNAME,
		"healthTimeout":    "5s",
		"endpoint":         s.URL,
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

func newProvider(t *testing.T, s *ebfake.Server, extra map[string]any) *Provider {
	t.Helper()
	p, err := New(settings(s, extra))
	if err != nil {
		t.Fatal(err)
	}
	p.backoff = awstest.FastBackoff{}
	p.poll = time.Millisecond
	return p
}

func count(actions []string, a string) int {
	n := 0
	for _, x := range actions {
		if x == a {
			n++
		}
	}
	return n
}

func TestProvisionUpdatesGreenAndWaits(t *testing.T) {
	s := fake(t)
	s.AfterUpdate(3, "Green", "Ok")
	p := newProvider(t, s, nil)
	pool, err := p.Provision(context.Background(), providers.Ref{App: "shop", Version: "v2", PreviousVersion: "v1"})
	if err != nil {
		t.Fatal(err)
	}
	if pool.Color != providers.Green || pool.Version != "v2" || !slices.Equal(pool.Instances, []string{greenCNAME}) {
		t.Fatalf("pool = %+v", pool)
	}
	g := s.Env(greenEnv)
	if g.VersionLabel != "v2" || g.Status != "Ready" || g.Health != "Green" {
		t.Fatalf("green = %+v", g)
	}
	if b := s.Env(blueEnv); b.VersionLabel != "v1" {
		t.Fatalf("blue changed: %+v", b)
	}
	acts := s.Actions()
	if count(acts, "UpdateEnvironment") != 1 || count(acts, "DescribeApplicationVersions") != 1 || count(acts, "DescribeEnvironments") < 4 {
		t.Fatalf("actions = %v", acts)
	}
	for _, c := range s.Calls() {
		if c.Action == "UpdateEnvironment" && (c.Form.Get("EnvironmentName") != greenEnv || c.Form.Get("VersionLabel") != "v2") {
			t.Fatalf("UpdateEnvironment form = %v", c.Form)
		}
	}
	// A retry finds v2 deployed and does not update again.
	if _, err := p.Provision(context.Background(), providers.Ref{App: "shop", Version: "v2"}); err != nil {
		t.Fatal(err)
	}
	if n := count(s.Actions(), "UpdateEnvironment"); n != 1 {
		t.Fatalf("UpdateEnvironment called %d times", n)
	}
	if err := p.Validate(context.Background(), providers.Ref{App: "shop", Version: "v2"}, []string{"/healthz"}); err != nil {
		t.Fatal(err)
	}
	if err := p.Decommission(context.Background(), providers.Ref{App: "shop", Version: "v2"}, providers.Blue); err != nil {
		t.Fatal(err)
	}
}

func TestProvisionMissingVersion(t *testing.T) {
	s := fake(t)
	p := newProvider(t, s, nil)
	_, err := p.Provision(context.Background(), providers.Ref{App: "shop", Version: "v9"})
	if !errors.Is(err, providers.ErrNotFound) || !strings.Contains(err.Error(), "create-application-version") {
		t.Fatalf("err = %v", err)
	}
	if slices.Contains(s.Actions(), "UpdateEnvironment") {
		t.Fatal("updated the environment")
	}
}

func TestProvisionRed(t *testing.T) {
	s := fake(t)
	s.AfterUpdate(2, "Red", "Severe", "100.0 % of the requests are failing with HTTP 5xx.")
	p := newProvider(t, s, nil)
	_, err := p.Provision(context.Background(), providers.Ref{App: "shop", Version: "v2"})
	if !errors.Is(err, providers.ErrCheckFailed) || !strings.Contains(err.Error(), "HTTP 5xx") {
		t.Fatalf("err = %v", err)
	}
	if err := p.Validate(context.Background(), providers.Ref{App: "shop", Version: "v2"}, nil); !errors.Is(err, providers.ErrCheckFailed) {
		t.Fatalf("validate err = %v", err)
	}
}

func TestProvisionTimeout(t *testing.T) {
	s := fake(t)
	s.AfterUpdate(1000000, "Green", "Ok")
	p := newProvider(t, s, map[string]any{"healthTimeout": "50ms"})
	_, err := p.Provision(context.Background(), providers.Ref{App: "shop", Version: "v2"})
	if !errors.Is(err, providers.ErrCheckFailed) || !strings.Contains(err.Error(), "healthTimeout") {
		t.Fatalf("err = %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	p = newProvider(t, s, nil)
	if _, err := p.Provision(ctx, providers.Ref{App: "shop", Version: "v2"}); err == nil || errors.Is(err, providers.ErrCheckFailed) {
		t.Fatalf("canceled: err = %v", err)
	}
}

func TestProvisionRefusesLiveGreen(t *testing.T) {
	s := fake(t)
	p := newProvider(t, s, map[string]any{"blueEnvironment": greenEnv, "greenEnvironment": blueEnv})
	_, err := p.Provision(context.Background(), providers.Ref{App: "shop", Version: "v2"})
	if !errors.Is(err, providers.ErrInvalid) || !strings.Contains(err.Error(), "live CNAME") {
		t.Fatalf("err = %v", err)
	}
}

func TestMissingEnvironment(t *testing.T) {
	s := fake(t)
	p := newProvider(t, s, map[string]any{"greenEnvironment": "shop-gone"})
	if _, err := p.Provision(context.Background(), providers.Ref{App: "shop", Version: "v2"}); !errors.Is(err, providers.ErrNotFound) {
		t.Fatalf("err = %v", err)
	}
}

func TestSwap(t *testing.T) {
	s := fake(t)
	p := newProvider(t, s, nil)
	ctx := context.Background()
	if w, err := p.Weight(ctx, "shop"); err != nil || w != 0 {
		t.Fatalf("weight = %d, %v", w, err)
	}
	if err := p.SetWeight(ctx, "shop", 100); err != nil {
		t.Fatal(err)
	}
	if g := s.Env(greenEnv); g.CNAME != liveCNAME || g.Status != "Ready" {
		t.Fatalf("green = %+v", g)
	}
	if w, err := p.Weight(ctx, "shop"); err != nil || w != 100 {
		t.Fatalf("weight = %d, %v", w, err)
	}
	// Again: nothing to swap.
	if err := p.SetWeight(ctx, "shop", 100); err != nil {
		t.Fatal(err)
	}
	if n := count(s.Actions(), "SwapEnvironmentCNAMEs"); n != 1 {
		t.Fatalf("swapped %d times", n)
	}
	if err := p.SetWeight(ctx, "shop", 0); err != nil {
		t.Fatal(err)
	}
	if w, err := p.Weight(ctx, "shop"); err != nil || w != 0 {
		t.Fatalf("weight = %d, %v", w, err)
	}
	if b := s.Env(blueEnv); b.CNAME != liveCNAME {
		t.Fatalf("blue = %+v", b)
	}
	if n := count(s.Actions(), "SwapEnvironmentCNAMEs"); n != 2 {
		t.Fatalf("swapped %d times", n)
	}
}

// inject makes the fake *s fail the way the conformance suite asks.
func inject(s **ebfake.Server) func(*testing.T, providertest.FailKind) func() {
	return func(t *testing.T, kind providertest.FailKind) func() {
		f := *s
		switch kind {
		case providertest.FailThrottle:
			f.Fail(ebfake.Failure{Status: 400, Code: "Throttling", Message: "Rate exceeded"})
		case providertest.FailServer:
			f.Fail(ebfake.Failure{Status: 503, Code: "ServiceUnavailable", Message: "Service is unavailable"})
		case providertest.FailDenied:
			f.Fail(ebfake.Failure{Status: 403, Code: "AccessDenied", Message: "User: arn:aws:iam::123456789012:user/ci is not authorized to perform: elasticbeanstalk:DescribeEnvironments"})
		case providertest.FailNotFound:
			f.Hide(greenEnv) // terminated, or never created
		default:
			return nil
		}
		return f.Restore
	}
}

func TestConformance(t *testing.T) {
	var s *ebfake.Server
	providertest.Traffic(t, providertest.Target{
		App: application,
		// A CNAME swap: blue or green holds the live CNAME.
		Weights: []int{0, 100},
		New: func(t *testing.T) providers.Traffic {
			s = fake(t) // blue holds the live CNAME: green at 0%
			return newProvider(t, s, nil)
		},
		Fail: inject(&s),
	})
}

func TestSwapInsufficientPrivileges(t *testing.T) {
	s := fake(t)
	p := newProvider(t, s, nil)
	s.Fail(ebfake.Failure{Action: "SwapEnvironmentCNAMEs", Status: 403, Code: "InsufficientPrivilegesException", Message: "Access Denied: elasticbeanstalk:SwapEnvironmentCNAMEs"})
	err := p.SetWeight(context.Background(), "shop", 100)
	if !providertest.Permanent(err) || !strings.Contains(err.Error(), "InsufficientPrivilegesException") {
		t.Fatalf("err = %v", err)
	}
	s.Restore()
	if w, err := p.Weight(context.Background(), "shop"); err != nil || w != 0 {
		t.Fatalf("weight = %d, %v", w, err)
	}
}

func TestMissingEnvironmentHidden(t *testing.T) {
	s := fake(t)
	p := newProvider(t, s, nil)
	s.Hide(blueEnv)
	if _, err := p.Weight(context.Background(), "shop"); !errors.Is(err, providers.ErrNotFound) || !strings.Contains(err.Error(), "no environment named "+blueEnv) {
		t.Fatalf("err = %v", err)
	}
	if err := p.SetWeight(context.Background(), "shop", 100); !errors.Is(err, providers.ErrNotFound) {
		t.Fatalf("err = %v", err)
	}
	if slices.Contains(s.Actions(), "SwapEnvironmentCNAMEs") {
		t.Fatal("swapped with an environment missing")
	}
	s.Restore()
	if err := p.SetWeight(context.Background(), "shop", 100); err != nil {
		t.Fatal(err)
	}
}

func TestCheckPlan(t *testing.T) {
	const partial = "beanstalk swaps the environments' CNAMEs all at once, so green is at 0% or 100%, never "
	for _, c := range []struct {
		name string
		plan []providers.PlanStep
		want string // "": accepted; else the whole message
	}{
		{name: "empty"},
		{name: "provision and promote", plan: []providers.PlanStep{
			{Index: 0, Kind: "provision"}, {Index: 1, Kind: "validate"}, {Index: 2, Kind: "promote", Green: 100}, {Index: 3, Kind: "soak", Green: 100, Hold: 10 * time.Minute},
		}},
		{name: "an analysis at 0% and at 100%", plan: []providers.PlanStep{
			{Index: 0, Kind: "analysis", Hold: time.Minute}, {Index: 1, Kind: "setWeight", Green: 100}, {Index: 2, Kind: "analysis", Green: 100, Hold: 5 * time.Minute},
		}},
		{name: "a canary", plan: []providers.PlanStep{
			{Index: 0, Kind: "provision"}, {Index: 1, Kind: "validate"}, {Index: 2, Kind: "setWeight", Green: 0},
			{Index: 3, Kind: "setWeight", Green: 10}, {Index: 4, Kind: "soak", Green: 10, Hold: 5 * time.Minute}, {Index: 5, Kind: "setWeight", Green: 50}, {Index: 6, Kind: "promote", Green: 100},
		}, want: "plan[3] (setWeight): " + partial + "10%: remove the steps between provision and promote that hold a partial weight, or split traffic with the route53 provider over the two environments' CNAMEs"},
		{name: "a soak at 50%", plan: []providers.PlanStep{
			{Index: 7, Kind: "soak", Green: 50, Hold: time.Minute}, {Index: 8, Kind: "analysis", Green: 99},
		}, want: "plan[7] (soak): " + partial + "50%: remove the steps between provision and promote that hold a partial weight, or split traffic with the route53 provider over the two environments' CNAMEs"},
		{name: "99%", plan: []providers.PlanStep{{Index: 1, Kind: "promote", Green: 100}, {Index: 2, Kind: "analysis", Green: 99}},
			want: "plan[2] (analysis): " + partial + "99%: remove the steps between provision and promote that hold a partial weight, or split traffic with the route53 provider over the two environments' CNAMEs"},
		{name: "1%", plan: []providers.PlanStep{{Index: 4, Kind: "setWeight", Green: 1}},
			want: "plan[4] (setWeight): " + partial + "1%: remove the steps between provision and promote that hold a partial weight, or split traffic with the route53 provider over the two environments' CNAMEs"},
	} {
		t.Run(c.name, func(t *testing.T) {
			s := fake(t)
			p := newProvider(t, s, nil)
			var pc providers.PlanChecker = p
			err := pc.CheckPlan(context.Background(), "shop", c.plan)
			switch {
			case c.want == "" && err != nil:
				t.Fatalf("CheckPlan = %v; want nil", err)
			case c.want != "" && !errors.Is(err, providers.ErrBadConfig):
				t.Fatalf("CheckPlan = %v; want ErrBadConfig", err)
			case c.want != "" && err.Error() != c.want:
				t.Fatalf("CheckPlan = %q\nwant %q", err, c.want)
			}
			if err != nil && strings.Contains(err.Error(), "\n") {
				t.Errorf("the message is not one line: %q", err)
			}
			if calls := s.Actions(); len(calls) != 0 {
				t.Errorf("CheckPlan called %v; want no call", calls)
			}
		})
	}
}

func TestSetWeightPartial(t *testing.T) {
	s := fake(t)
	p := newProvider(t, s, nil)
	for _, w := range []int{10, 50, -1, 101} {
		err := p.SetWeight(context.Background(), "shop", w)
		if !errors.Is(err, providers.ErrInvalid) || !strings.Contains(err.Error(), "Elastic Beanstalk swaps CNAMEs all at once: use setWeight only through promote, or the route53 provider over the two environment CNAMEs for 10/50") {
			t.Fatalf("%d: err = %v", w, err)
		}
	}
	if len(s.Calls()) != 0 {
		t.Fatalf("calls = %v", s.Actions())
	}
}

func TestNoLiveCNAME(t *testing.T) {
	s := fake(t)
	p := newProvider(t, s, map[string]any{"liveCNAME": "other.eu-west-1.elasticbeanstalk.com"})
	if _, err := p.Weight(context.Background(), "shop"); !errors.Is(err, providers.ErrInvalid) {
		t.Fatalf("err = %v", err)
	}
	p = newProvider(t, s, map[string]any{"liveCNAME": nil})
	if err := p.SetWeight(context.Background(), "shop", 100); !errors.Is(err, providers.ErrBadConfig) {
		t.Fatalf("err = %v", err)
	}
}

func TestThrottlingRetried(t *testing.T) {
	s := fake(t)
	s.Fail(ebfake.Failure{Action: "DescribeEnvironments", Status: 400, Code: "Throttling", Message: "Rate exceeded", Times: 2})
	p := newProvider(t, s, nil)
	if err := p.SetWeight(context.Background(), "shop", 100); err != nil {
		t.Fatal(err)
	}
	s.Fail(ebfake.Failure{Action: "SwapEnvironmentCNAMEs", Status: 503, Code: "ServiceUnavailable", Message: "try later", Times: 1})
	if err := p.SetWeight(context.Background(), "shop", 0); err != nil {
		t.Fatal(err)
	}
	// Throttled past the SDK's attempts: a retryable error, not a permanent one.
	s.Fail(ebfake.Failure{Status: 400, Code: "Throttling", Message: "Rate exceeded"})
	_, err := p.Weight(context.Background(), "shop")
	if err == nil || errors.Is(err, providers.ErrInvalid) || errors.Is(err, providers.ErrNotFound) || errors.Is(err, providers.ErrCheckFailed) {
		t.Fatalf("err = %v", err)
	}
	s.Restore()
}

func TestAccessDenied(t *testing.T) {
	s := fake(t)
	p := newProvider(t, s, nil)
	s.Fail(ebfake.Failure{Status: 403, Code: "AccessDenied", Message: "User is not authorized to perform: elasticbeanstalk:DescribeEnvironments"})
	if _, err := p.Weight(context.Background(), "shop"); !errors.Is(err, providers.ErrInvalid) || !strings.Contains(err.Error(), "not authorized") {
		t.Fatalf("err = %v", err)
	}
	s.Fail(ebfake.Failure{Action: "UpdateEnvironment", Status: 403, Code: "InsufficientPrivilegesException", Message: "no cloudformation:UpdateStack"})
	if _, err := p.Provision(context.Background(), providers.Ref{App: "shop", Version: "v2"}); !errors.Is(err, providers.ErrInvalid) {
		t.Fatalf("err = %v", err)
	}
}

func TestBadSettings(t *testing.T) {
	awsEnv(t)
	base := map[string]any{"region": "eu-west-1", "application": application, "blueEnvironment": blueEnv, "greenEnvironment": greenEnv}
	for name, tc := range map[string]map[string]any{
		"no region":      {"region": nil},
		"no application": {"application": nil},
		"no blue":        {"blueEnvironment": nil},
		"no green":       {"greenEnvironment": nil},
		"same":           {"greenEnvironment": blueEnv},
		"unknown":        {"listenerArn": "x"},
		"endpoint":       {"endpoint": "localhost:4566"},
		"cname":          {"liveCNAME": "https://shop.example.com/"},
		"timeout":        {"healthTimeout": "soon"},
		"fast poll":      {"pollInterval": "100ms"},
	} {
		m := map[string]any{}
		for k, v := range base {
			m[k] = v
		}
		for k, v := range tc {
			if v == nil {
				delete(m, k)
			} else {
				m[k] = v
			}
		}
		_, err := New(m)
		if !errors.Is(err, providers.ErrBadConfig) || strings.Contains(err.Error(), "\n") {
			t.Errorf("%s: err = %v", name, err)
		}
	}
	p, err := New(base)
	if err != nil || p.s.HealthTimeout.D() != defaultHealthTimeout {
		t.Fatalf("p = %+v, err = %v", p, err)
	}
	var _ providers.Environment = p
	var _ providers.Traffic = p
}
