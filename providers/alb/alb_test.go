package alb

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/cutoverhq/cutover/providers"
	"github.com/cutoverhq/cutover/providers/alb/albfake"
	"github.com/cutoverhq/cutover/providers/awsapi/awstest"
	"github.com/cutoverhq/cutover/providers/providertest"
)

const (
	listenerARN = "arn:aws:elasticloadbalancing:eu-west-1:123456789012:listener/app/shop/50dc6c495c0c9188/f2f7dc8efc522ab2"
	ruleARN     = "arn:aws:elasticloadbalancing:eu-west-1:123456789012:listener-rule/app/shop/50dc6c495c0c9188/f2f7dc8efc522ab2/9683b2d02a6cabee"
	blueTG      = "arn:aws:elasticloadbalancing:eu-west-1:123456789012:targetgroup/shop-blue/73e2d6bc24d8a067"
	greenTG     = "arn:aws:elasticloadbalancing:eu-west-1:123456789012:targetgroup/shop-green/1f5e8a9c3d2b4e6f"
	app         = "shop"
)

func awsEnv(t *testing.T) { awstest.Env(t, "AWS_ENDPOINT_URL_ELASTIC_LOAD_BALANCING_V2") }

// fake returns a server with a listener and a rule forwarding all traffic to
// blue, and two healthy targets in each target group.
func fake(t *testing.T) *albfake.Server {
	t.Helper()
	awsEnv(t)
	s := albfake.New()
	t.Cleanup(s.Close)
	s.SetListener(listenerARN, albfake.Forward(blueTG, 100, greenTG, 0))
	s.SetRule(ruleARN, albfake.Forward(blueTG, 100, greenTG, 0))
	s.SetTargets(blueTG, albfake.Target{ID: "i-0blue1", Port: 8080, State: "healthy"}, albfake.Target{ID: "i-0blue2", Port: 8080, State: "healthy"})
	s.SetTargets(greenTG, albfake.Target{ID: "i-0green1", Port: 8080, State: "healthy"}, albfake.Target{ID: "i-0green2", Port: 8080, State: "healthy"})
	return s
}

func settings(s *albfake.Server, extra map[string]any) map[string]any {
	m := map[string]any{
		"region":              "eu-west-1",
		"listenerArn":         listenerARN,
		"blueTargetGroupArn":  blueTG,
		"greenTargetGroupArn": greenTG,
		"endpoint":            s.URL,
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

func newProvider(t *testing.T, s *albfake.Server, extra map[string]any) *Provider {
	t.Helper()
	p, err := New(settings(s, extra))
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	p.backoff = awstest.FastBackoff{}
	return p
}

func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	return c
}

func TestConformance(t *testing.T) {
	s := fake(t)
	providertest.Traffic(t, providertest.Target{
		App: app,
		New: func(t *testing.T) providers.Traffic {
			s.Restore()
			s.SetListener(listenerARN, albfake.Forward(blueTG, 100, greenTG, 0))
			return newProvider(t, s, nil)
		},
		Fail: func(t *testing.T, kind providertest.FailKind) func() {
			switch kind {
			case providertest.FailThrottle:
				s.Fail(albfake.Failure{Status: 400, Code: "Throttling", Message: "Rate exceeded"})
			case providertest.FailServer:
				s.Fail(albfake.Failure{Status: 503, Code: "ServiceUnavailable", Message: "Service is unavailable"})
			case providertest.FailDenied:
				s.Fail(albfake.Failure{Status: 403, Code: "AccessDenied", Message: "User: arn:aws:iam::123456789012:user/ci is not authorized to perform: elasticloadbalancing:DescribeTargetHealth"})
			case providertest.FailNotFound:
				s.FailNotFound()
			default:
				return nil
			}
			return s.Restore
		},
		Drain: func(t *testing.T, c providers.Color) func() {
			tg := blueTG
			if c == providers.Green {
				tg = greenTG
			}
			s.SetTargets(tg,
				albfake.Target{ID: "i-0old1", Port: 8080, State: "draining", Reason: "Target.DeregistrationInProgress", Description: "Target deregistration is in progress"},
				albfake.Target{ID: "i-0new1", Port: 8080, State: "healthy"})
			return func() { s.SetTargets(tg, albfake.Target{ID: "i-0new1", Port: 8080, State: "healthy"}) }
		},
	})
}

func TestSetWeightSendsForwardWeightsAndReadsBack(t *testing.T) {
	s := fake(t)
	p := newProvider(t, s, nil)
	if err := p.SetWeight(ctx(t), app, 10); err != nil {
		t.Fatal(err)
	}
	want := []string{"DescribeListeners", "DescribeTargetHealth", "ModifyListener", "DescribeListeners"}
	if got := s.Actions(); !slices.Equal(got, want) {
		t.Errorf("calls = %v; want %v", got, want)
	}
	var form map[string][]string
	for _, c := range s.Calls() {
		if c.Action == "ModifyListener" {
			form = c.Form
		}
	}
	for k, v := range map[string]string{
		"ListenerArn":                  listenerARN,
		"DefaultActions.member.1.Type": "forward",
		"DefaultActions.member.1.ForwardConfig.TargetGroups.member.1.TargetGroupArn": blueTG,
		"DefaultActions.member.1.ForwardConfig.TargetGroups.member.1.Weight":         "90",
		"DefaultActions.member.1.ForwardConfig.TargetGroups.member.2.TargetGroupArn": greenTG,
		"DefaultActions.member.1.ForwardConfig.TargetGroups.member.2.Weight":         "10",
		"DefaultActions.member.1.ForwardConfig.TargetGroupStickinessConfig.Enabled":  "false",
	} {
		if got := strings.Join(form[k], ","); got != v {
			t.Errorf("ModifyListener %s = %q; want %q", k, got, v)
		}
	}
}

func TestUnhealthyGreenIsRefusedWithTheReason(t *testing.T) {
	s := fake(t)
	s.SetTargets(greenTG,
		albfake.Target{ID: "i-0green1", Port: 8080, State: "unhealthy", Reason: "Target.FailedHealthChecks", Description: "Health checks failed"},
		albfake.Target{ID: "i-0green2", Port: 8080, State: "unused", Reason: "Target.InvalidState", Description: "Target is in the stopped state"})
	p := newProvider(t, s, nil)
	err := p.SetWeight(ctx(t), app, 10)
	if !errors.Is(err, providers.ErrCheckFailed) {
		t.Fatalf("SetWeight(10) = %v; want ErrCheckFailed", err)
	}
	for _, w := range []string{"set green weight to 10 on listener " + listenerARN, greenTG, "i-0green1:8080 unhealthy (Target.FailedHealthChecks: Health checks failed)", "i-0green2:8080 unused (Target.InvalidState: Target is in the stopped state)"} {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("error %q does not contain %q", err, w)
		}
	}
	if slices.Contains(s.Actions(), "ModifyListener") {
		t.Errorf("the listener was modified: %v", s.Actions())
	}

	// No targets at all.
	s.SetTargets(greenTG)
	if err := p.SetWeight(ctx(t), app, 10); !errors.Is(err, providers.ErrCheckFailed) || !strings.Contains(err.Error(), "no registered targets") {
		t.Fatalf("SetWeight(10) with an empty green = %v; want ErrCheckFailed saying no registered targets", err)
	}

	// One healthy target is enough.
	s.SetTargets(greenTG,
		albfake.Target{ID: "i-0green1", Port: 8080, State: "unhealthy", Reason: "Target.Timeout"},
		albfake.Target{ID: "i-0green2", Port: 8080, State: "healthy"})
	if err := p.SetWeight(ctx(t), app, 10); err != nil {
		t.Fatalf("SetWeight(10) with one healthy green target: %v", err)
	}
}

// TestGreenStillRegisteringIsRetryable: targets in "initial" (registration or
// the first health checks under way) may pass soon, so the refusal is retryable.
func TestGreenStillRegisteringIsRetryable(t *testing.T) {
	s := fake(t)
	s.SetTargets(greenTG,
		albfake.Target{ID: "i-0green1", Port: 8080, State: "unhealthy", Reason: "Target.Timeout", Description: "Request timed out"},
		albfake.Target{ID: "i-0green2", Port: 8080, State: "initial", Reason: "Elb.RegistrationInProgress", Description: "Target registration is in progress"})
	p := newProvider(t, s, nil)
	err := p.SetWeight(ctx(t), app, 10)
	if err == nil || providertest.Permanent(err) {
		t.Fatalf("SetWeight(10) = %v; want a retryable error", err)
	}
	if !strings.Contains(err.Error(), "i-0green2:8080 initial (Elb.RegistrationInProgress: Target registration is in progress)") {
		t.Errorf("error %q does not name the registering target", err)
	}
	if slices.Contains(s.Actions(), "ModifyListener") {
		t.Errorf("the listener was modified: %v", s.Actions())
	}
}

// TestGreenNotAttachedIsAttachedAtZero: ALB health-checks only target groups a
// listener uses, so a listener forwarding only to blue gets green at weight 0
// first, and the call is retried once green's targets are healthy.
func TestGreenNotAttachedIsAttachedAtZero(t *testing.T) {
	s := fake(t)
	s.SetListener(listenerARN, albfake.Action{Type: "forward", TargetGroupArn: blueTG})
	s.SetTargets(greenTG, albfake.Target{ID: "i-0green1", Port: 8080, State: "unused", Reason: "Target.NotInUse", Description: "Target group is not configured to receive traffic from the load balancer"})
	p := newProvider(t, s, nil)
	err := p.SetWeight(ctx(t), app, 10)
	if err == nil || providertest.Permanent(err) || !strings.Contains(err.Error(), "attached it at weight 0") {
		t.Fatalf("SetWeight(10) = %v; want a retryable error saying green was attached", err)
	}
	if tgs := s.Listener(listenerARN)[0].ForwardConfig.TargetGroups; len(tgs) != 2 || tgs[0].Weight != 100 || tgs[1].TargetGroupArn != greenTG || tgs[1].Weight != 0 {
		t.Fatalf("listener forwards to %+v; want blue 100, green 0", tgs)
	}
	if w, err := p.Weight(ctx(t), app); err != nil || w != 0 {
		t.Fatalf("Weight = %d, %v; want 0", w, err)
	}
	s.SetTargets(greenTG, albfake.Target{ID: "i-0green1", Port: 8080, State: "healthy"})
	if err := p.SetWeight(ctx(t), app, 10); err != nil {
		t.Fatalf("the retry: %v", err)
	}
}

func TestRollbackNeverChecksHealth(t *testing.T) {
	s := fake(t)
	p := newProvider(t, s, nil)
	if err := p.SetWeight(ctx(t), app, 50); err != nil {
		t.Fatal(err)
	}
	// Green breaks, and its health can no longer even be read.
	s.SetTargets(greenTG, albfake.Target{ID: "i-0green1", Port: 8080, State: "unhealthy", Reason: "Target.FailedHealthChecks"})
	s.Fail(albfake.Failure{Action: "DescribeTargetHealth", Status: 403, Code: "AccessDenied", Message: "denied"})
	n := len(s.Calls())
	if err := p.SetWeight(ctx(t), app, 0); err != nil {
		t.Fatalf("rollback SetWeight(0): %v", err)
	}
	if got := s.Actions()[n:]; slices.Contains(got, "DescribeTargetHealth") {
		t.Errorf("rollback called %v; want no DescribeTargetHealth", got)
	}
	if w, err := p.Weight(ctx(t), app); err != nil || w != 0 {
		t.Fatalf("Weight = %d, %v; want 0", w, err)
	}
}

func TestStickinessIsSentWhenSet(t *testing.T) {
	s := fake(t)
	p := newProvider(t, s, map[string]any{"stickiness": "10m"})
	if err := p.SetWeight(ctx(t), app, 25); err != nil {
		t.Fatal(err)
	}
	fc := s.Listener(listenerARN)[0].ForwardConfig
	if fc == nil || fc.Stickiness == nil || !fc.Stickiness.Enabled || fc.Stickiness.DurationSeconds != 600 {
		t.Fatalf("forward config = %+v; want stickiness enabled for 600s", fc)
	}
}

func TestRuleArn(t *testing.T) {
	s := fake(t)
	p := newProvider(t, s, map[string]any{"listenerArn": nil, "ruleArn": ruleARN})
	if err := p.SetWeight(ctx(t), app, 30); err != nil {
		t.Fatal(err)
	}
	if w, err := p.Weight(ctx(t), app); err != nil || w != 30 {
		t.Fatalf("Weight = %d, %v; want 30", w, err)
	}
	want := []string{"DescribeRules", "DescribeTargetHealth", "ModifyRule", "DescribeRules", "DescribeRules"}
	if got := s.Actions(); !slices.Equal(got, want) {
		t.Errorf("calls = %v; want %v", got, want)
	}
	if tgs := s.Rule(ruleARN)[0].ForwardConfig.TargetGroups; tgs[0].Weight != 70 || tgs[1].Weight != 30 {
		t.Errorf("rule's weights = %+v; want 70/30", tgs)
	}
	if tgs := s.Listener(listenerARN)[0].ForwardConfig.TargetGroups; tgs[1].Weight != 0 {
		t.Errorf("the listener changed: %+v", tgs)
	}
	s.FailNotFound()
	if err := p.SetWeight(ctx(t), app, 0); !errors.Is(err, providers.ErrNotFound) || !strings.Contains(err.Error(), "RuleNotFound") {
		t.Errorf("SetWeight on a missing rule = %v; want ErrNotFound naming RuleNotFound", err)
	}
}

func TestWeightNormalizesALBScale(t *testing.T) {
	s := fake(t)
	p := newProvider(t, s, nil)
	for _, tt := range []struct{ blue, green, want int }{{999, 0, 0}, {0, 999, 100}, {3, 1, 25}, {500, 500, 50}, {2, 1, 33}, {1, 2, 67}} {
		s.SetListener(listenerARN, albfake.Forward(blueTG, tt.blue, greenTG, tt.green))
		if w, err := p.Weight(ctx(t), app); err != nil || w != tt.want {
			t.Errorf("Weight with blue %d green %d = %d, %v; want %d", tt.blue, tt.green, w, err, tt.want)
		}
	}
	// A plain forward to blue (no weights).
	s.SetListener(listenerARN, albfake.Action{Type: "forward", TargetGroupArn: blueTG})
	if w, err := p.Weight(ctx(t), app); err != nil || w != 0 {
		t.Errorf("Weight of a plain forward to blue = %d, %v; want 0", w, err)
	}
}

func TestOtherActionsAreRefused(t *testing.T) {
	s := fake(t)
	p := newProvider(t, s, nil)
	s.SetListener(listenerARN, albfake.Action{Type: "authenticate-oidc"}, albfake.Forward(blueTG, 100, greenTG, 0))
	err := p.SetWeight(ctx(t), app, 0)
	if !errors.Is(err, providers.ErrInvalid) || !strings.Contains(err.Error(), "authenticate-oidc") {
		t.Fatalf("SetWeight = %v; want ErrInvalid naming authenticate-oidc", err)
	}
	if slices.Contains(s.Actions(), "ModifyListener") {
		t.Errorf("the listener was modified: %v", s.Actions())
	}
	s.SetListener(listenerARN, albfake.Forward(blueTG, 90, "arn:aws:elasticloadbalancing:eu-west-1:123456789012:targetgroup/other/0123456789abcdef", 10))
	if _, err := p.Weight(ctx(t), app); !errors.Is(err, providers.ErrInvalid) || !strings.Contains(err.Error(), "targetgroup/other") {
		t.Fatalf("Weight = %v; want ErrInvalid naming the other target group", err)
	}
}

func TestReadBackMismatchIsRetryable(t *testing.T) {
	s := fake(t)
	p := newProvider(t, s, nil)
	s.IgnoreWrites(true)
	err := p.SetWeight(ctx(t), app, 10)
	if err == nil || providertest.Permanent(err) {
		t.Fatalf("SetWeight with a read-back mismatch = %v; want a retryable error", err)
	}
	if !strings.Contains(err.Error(), "read back blue weight 100, green weight 0; want 90 and 10") {
		t.Errorf("error %q does not say what was read back", err)
	}
	s.IgnoreWrites(false)
	if err := p.SetWeight(ctx(t), app, 10); err != nil {
		t.Fatalf("the retry: %v", err)
	}
}

func TestErrorClassification(t *testing.T) {
	s := fake(t)
	p := newProvider(t, s, nil)
	for _, tt := range []struct {
		f    albfake.Failure
		kind error // nil: retryable
	}{
		{albfake.Failure{Status: 400, Code: "Throttling", Message: "Rate exceeded"}, nil},
		{albfake.Failure{Status: 400, Code: "RequestLimitExceeded", Message: "Request limit exceeded."}, nil},
		{albfake.Failure{Status: 429, Code: "TooManyRequests", Message: "slow down"}, nil},
		{albfake.Failure{Status: 500, Code: "InternalFailure", Message: "oops"}, nil},
		{albfake.Failure{Status: 503, Code: "ServiceUnavailable", Message: "Service is unavailable"}, nil},
		{albfake.Failure{Status: 403, Code: "AccessDenied", Message: "not authorized to perform: elasticloadbalancing:ModifyListener"}, providers.ErrInvalid},
		{albfake.Failure{Status: 403, Code: "UnauthorizedOperation", Message: "nope"}, providers.ErrInvalid},
		{albfake.Failure{Status: 400, Code: "ListenerNotFound", Message: "One or more listeners not found"}, providers.ErrNotFound},
		{albfake.Failure{Status: 400, Code: "TargetGroupNotFound", Message: "Target groups not found"}, providers.ErrNotFound},
		{albfake.Failure{Status: 400, Code: "ValidationError", Message: "bad"}, providers.ErrInvalid},
		{albfake.Failure{Status: 400, Code: "InvalidConfigurationRequest", Message: "bad config"}, providers.ErrInvalid},
	} {
		s.Fail(tt.f)
		err := p.SetWeight(ctx(t), app, 0)
		s.Restore()
		if err == nil {
			t.Errorf("%s: SetWeight succeeded", tt.f.Code)
			continue
		}
		if tt.kind == nil && providertest.Permanent(err) {
			t.Errorf("%s: %v is permanent; want retryable", tt.f.Code, err)
		}
		if tt.kind != nil && !errors.Is(err, tt.kind) {
			t.Errorf("%s: %v; want %v", tt.f.Code, err, tt.kind)
		}
		if !strings.HasPrefix(err.Error(), "set green weight to 0 on listener "+listenerARN+": ") {
			t.Errorf("%s: error %q lacks its context", tt.f.Code, err)
		}
		if tt.kind != nil && !strings.Contains(err.Error(), tt.f.Message) {
			t.Errorf("%s: error %q lacks AWS's message", tt.f.Code, err)
		}
	}
	// The SDK retried the throttling itself before giving up.
	s.Fail(albfake.Failure{Status: 400, Code: "Throttling", Message: "Rate exceeded"})
	n := len(s.Calls())
	_, _ = p.Weight(ctx(t), app)
	s.Restore()
	if got := len(s.Calls()) - n; got < 2 {
		t.Errorf("a throttled call was tried %d times; want the SDK to retry", got)
	}
}

func TestInFlightCountsDrainingTargets(t *testing.T) {
	s := fake(t)
	p := newProvider(t, s, nil)
	s.SetTargets(blueTG,
		albfake.Target{ID: "i-1", Port: 80, State: "draining"},
		albfake.Target{ID: "i-2", Port: 80, State: "draining"},
		albfake.Target{ID: "i-3", Port: 80, State: "healthy"})
	if n, err := p.InFlight(ctx(t), app, providers.Blue); err != nil || n != 2 {
		t.Errorf("InFlight(blue) = %d, %v; want 2", n, err)
	}
	if n, err := p.InFlight(ctx(t), app, providers.Green); err != nil || n != 0 {
		t.Errorf("InFlight(green) = %d, %v; want 0", n, err)
	}
	// Polled faster than once a second, ELBv2 is asked once a second.
	calls := len(s.Calls())
	for range 5 {
		if n, err := p.InFlight(ctx(t), app, providers.Blue); err != nil || n != 2 {
			t.Errorf("InFlight(blue) again = %d, %v; want 2", n, err)
		}
	}
	if got := len(s.Calls()) - calls; got != 0 {
		t.Errorf("5 quick InFlight calls made %d API calls; want 0 (cached)", got)
	}
	s.SetTargets(blueTG, albfake.Target{ID: "i-3", Port: 80, State: "healthy"})
	time.Sleep(inFlightEvery)
	if n, err := p.InFlight(ctx(t), app, providers.Blue); err != nil || n != 0 {
		t.Errorf("InFlight(blue) after the drain = %d, %v; want 0", n, err)
	}
}

func TestLingerIsTheTargetGroupsDeregistrationDelay(t *testing.T) {
	s := fake(t)
	p := newProvider(t, s, nil)
	s.SetAttributes(blueTG, map[string]string{"deregistration_delay.timeout_seconds": "45", "stickiness.enabled": "false"})
	s.SetAttributes(greenTG, map[string]string{"slow_start.duration_seconds": "30", "deregistration_delay.timeout_seconds": "120"})
	for _, tt := range []struct {
		c    providers.Color
		tg   string
		want time.Duration
	}{{providers.Blue, blueTG, 45 * time.Second}, {providers.Green, greenTG, 2 * time.Minute}} {
		n := len(s.Calls())
		if d, err := p.Linger(ctx(t), app, tt.c); err != nil || d != tt.want {
			t.Errorf("Linger(%s) = %v, %v; want %v", tt.c, d, err, tt.want)
		}
		calls := s.Calls()[n:]
		if len(calls) != 1 || calls[0].Action != "DescribeTargetGroupAttributes" || calls[0].Form.Get("TargetGroupArn") != tt.tg {
			t.Errorf("Linger(%s) called %+v; want one DescribeTargetGroupAttributes of %s", tt.c, calls, tt.tg)
		}
	}
	// 0 is a valid delay: nothing lingers.
	s.SetAttributes(blueTG, map[string]string{"deregistration_delay.timeout_seconds": "0"})
	if d, err := p.Linger(ctx(t), app, providers.Blue); err != nil || d != 0 {
		t.Errorf("Linger(blue) with a delay of 0 = %v, %v; want 0", d, err)
	}
}

func TestLingerDefaultsTo300s(t *testing.T) {
	s := fake(t)
	p := newProvider(t, s, nil)
	// AWS's default, as a target group reports it.
	if d, err := p.Linger(ctx(t), app, providers.Green); err != nil || d != 300*time.Second {
		t.Errorf("Linger(green) with AWS's default attributes = %v, %v; want 5m0s", d, err)
	}
	// A target group that reports no deregistration delay at all.
	s.SetAttributes(greenTG, map[string]string{"stickiness.enabled": "false"})
	if d, err := p.Linger(ctx(t), app, providers.Green); err != nil || d != 300*time.Second {
		t.Errorf("Linger(green) without the attribute = %v, %v; want 5m0s", d, err)
	}
	s.SetAttributes(greenTG, map[string]string{})
	if d, err := p.Linger(ctx(t), app, providers.Green); err != nil || d != 300*time.Second {
		t.Errorf("Linger(green) without any attribute = %v, %v; want 5m0s", d, err)
	}
}

func TestLingerRefusesAValueThatDoesNotParse(t *testing.T) {
	s := fake(t)
	p := newProvider(t, s, nil)
	for _, v := range []string{"", "5m", "-1", "30.5"} {
		s.SetAttributes(blueTG, map[string]string{"deregistration_delay.timeout_seconds": v})
		_, err := p.Linger(ctx(t), app, providers.Blue)
		if err == nil || !strings.Contains(err.Error(), "deregistration_delay.timeout_seconds") || !strings.Contains(err.Error(), blueTG) {
			t.Errorf("Linger(blue) with the delay %q = %v; want an error naming the attribute and the target group", v, err)
		}
	}
}

func TestLingerErrors(t *testing.T) {
	s := fake(t)
	p := newProvider(t, s, nil)

	// An unknown target group is permanent.
	s.FailNotFound()
	_, err := p.Linger(ctx(t), app, providers.Green)
	s.Restore()
	if !errors.Is(err, providers.ErrNotFound) || !strings.Contains(err.Error(), "TargetGroupNotFound") || !strings.Contains(err.Error(), greenTG) {
		t.Errorf("Linger(green) of a missing target group = %v; want ErrNotFound naming TargetGroupNotFound and the target group", err)
	}
	other := "arn:aws:elasticloadbalancing:eu-west-1:123456789012:targetgroup/gone/0123456789abcdef"
	q := newProvider(t, s, map[string]any{"greenTargetGroupArn": other})
	if _, err := q.Linger(ctx(t), app, providers.Green); !errors.Is(err, providers.ErrNotFound) {
		t.Errorf("Linger(green) of a target group the fake does not have = %v; want ErrNotFound", err)
	}

	// Throttling is retryable, after the SDK's own retries.
	s.Fail(albfake.Failure{Action: "DescribeTargetGroupAttributes", Status: 400, Code: "Throttling", Message: "Rate exceeded"})
	n := len(s.Calls())
	_, err = p.Linger(ctx(t), app, providers.Blue)
	if err == nil || providertest.Permanent(err) {
		t.Errorf("Linger(blue) throttled = %v; want a retryable error", err)
	}
	if got := len(s.Calls()) - n; got < 2 {
		t.Errorf("a throttled Linger was tried %d times; want the SDK to retry", got)
	}
	s.Fail(albfake.Failure{Status: 503, Code: "ServiceUnavailable", Message: "Service is unavailable"})
	if _, err := p.Linger(ctx(t), app, providers.Blue); err == nil || providertest.Permanent(err) {
		t.Errorf("Linger(blue) on a 503 = %v; want a retryable error", err)
	}
	s.Fail(albfake.Failure{Status: 403, Code: "AccessDenied", Message: "not authorized to perform: elasticloadbalancing:DescribeTargetGroupAttributes"})
	if _, err := p.Linger(ctx(t), app, providers.Blue); !errors.Is(err, providers.ErrInvalid) || !strings.Contains(err.Error(), "DescribeTargetGroupAttributes") {
		t.Errorf("Linger(blue) denied = %v; want ErrInvalid with AWS's message", err)
	}
	s.Restore()
	if d, err := p.Linger(ctx(t), app, providers.Blue); err != nil || d != 300*time.Second {
		t.Errorf("Linger(blue) after Restore = %v, %v; want 5m0s", d, err)
	}
}

func TestNewDoesNoIO(t *testing.T) {
	awsEnv(t)
	// Nothing listens at this endpoint; New must not notice.
	if _, err := New(map[string]any{"listenerArn": listenerARN, "blueTargetGroupArn": blueTG, "greenTargetGroupArn": greenTG, "endpoint": "http://127.0.0.1:1"}); err != nil {
		t.Fatal(err)
	}
}

func TestOutOfRangeWeightIsRefusedBeforeAnyCall(t *testing.T) {
	s := fake(t)
	p := newProvider(t, s, nil)
	for _, w := range []int{-1, 101} {
		if err := p.SetWeight(ctx(t), app, w); !errors.Is(err, providers.ErrInvalid) {
			t.Errorf("SetWeight(%d) = %v; want ErrInvalid", w, err)
		}
	}
	if len(s.Calls()) != 0 {
		t.Errorf("calls = %v; want none", s.Actions())
	}
}

func TestNewRefusesBadSettings(t *testing.T) {
	base := map[string]any{"region": "eu-west-1", "listenerArn": listenerARN, "blueTargetGroupArn": blueTG, "greenTargetGroupArn": greenTG}
	with := func(kv ...any) map[string]any {
		m := map[string]any{}
		for k, v := range base {
			m[k] = v
		}
		for i := 0; i < len(kv); i += 2 {
			if kv[i+1] == nil {
				delete(m, kv[i].(string))
			} else {
				m[kv[i].(string)] = kv[i+1]
			}
		}
		return m
	}
	tests := []struct {
		name     string
		settings map[string]any
		want     []string
	}{
		{"no listener or rule", with("listenerArn", nil), []string{"listenerArn or ruleArn is required"}},
		{"both listener and rule", with("ruleArn", ruleARN), []string{"listenerArn and ruleArn are both set"}},
		{"missing blue", with("blueTargetGroupArn", nil), []string{"blueTargetGroupArn is required"}},
		{"missing green", with("greenTargetGroupArn", nil), []string{"greenTargetGroupArn is required"}},
		{"malformed listener ARN", with("listenerArn", "listener/app/shop"), []string{"listenerArn", `"listener/app/shop"`, "not an ALB ARN"}},
		{"rule ARN as listener", with("listenerArn", ruleARN), []string{"listenerArn", "not an ALB ARN"}},
		{"network load balancer", with("listenerArn", "arn:aws:elasticloadbalancing:eu-west-1:123456789012:listener/net/shop/50dc6c495c0c9188/f2f7dc8efc522ab2"), []string{"listenerArn", "listener/app/"}},
		{"malformed rule ARN", with("listenerArn", nil, "ruleArn", "arn:aws:ec2:eu-west-1:123456789012:instance/i-1"), []string{"ruleArn", "not an ALB ARN"}},
		{"malformed target group ARN", with("greenTargetGroupArn", "shop-green"), []string{"greenTargetGroupArn", `"shop-green"`}},
		{"same target group", with("greenTargetGroupArn", blueTG), []string{"same target group"}},
		{"region differs", with("region", "us-east-1"), []string{"region", "us-east-1", "eu-west-1"}},
		{"stickiness too long", with("stickiness", "200h"), []string{"stickiness"}},
		{"stickiness not whole seconds", with("stickiness", "1500ms"), []string{"stickiness"}},
		{"stickiness not a duration", with("stickiness", "long"), []string{"long"}},
		{"bad endpoint", with("endpoint", "localhost:4566"), []string{"endpoint", "localhost:4566"}},
		{"unknown setting", with("accessKeyId", "AKID"), []string{`unknown setting "accessKeyId"`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := New(tt.settings)
			if err == nil {
				t.Fatal("New succeeded; want an error")
			}
			if !errors.Is(err, providers.ErrBadConfig) {
				t.Errorf("error %q does not wrap ErrBadConfig", err)
			}
			if strings.Contains(err.Error(), "\n") {
				t.Errorf("error %q is not one line", err)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not contain %q", err, w)
				}
			}
		})
	}
}

func TestBuilderIsRegistered(t *testing.T) {
	b := NewBuilder()
	if b.Type != "alb" {
		t.Fatalf("builder type %q", b.Type)
	}
	v, err := b.New(map[string]any{"listenerArn": listenerARN, "blueTargetGroupArn": blueTG, "greenTargetGroupArn": greenTG})
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := v.(providers.Traffic); !ok {
		t.Error("not a providers.Traffic")
	}
	if _, ok := v.(providers.Drainer); !ok {
		t.Error("not a providers.Drainer")
	}
	if _, ok := v.(providers.Lingerer); !ok {
		t.Error("not a providers.Lingerer")
	}
}
