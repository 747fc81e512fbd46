// Package alb splits an app's traffic between blue and green with an AWS
// Application Load Balancer: a listener's default action (or one listener
// rule's action) forwards to the blue and the green target group with weights
// that SetWeight changes.
//
// Credentials come from the AWS SDK's default chain (environment, shared config
// and credentials files, SSO, web identity, ECS and EC2 instance roles), never
// from release.yaml. The IAM policy it needs:
//
//	elasticloadbalancing:DescribeListeners, elasticloadbalancing:ModifyListener   (listenerArn)
//	elasticloadbalancing:DescribeRules, elasticloadbalancing:ModifyRule           (ruleArn)
//	elasticloadbalancing:DescribeTargetHealth
//	elasticloadbalancing:DescribeTargetGroupAttributes                           (Linger)
//
// The listener (or rule) must have exactly one action, a forward action; Cutover
// replaces it with a forward action to blue and green, and refuses a listener
// whose actions it would drop (authenticate-oidc, fixed-response, ...).
//
// Before sending traffic to green (weight > 0), SetWeight requires a healthy
// target in green's target group: none healthy and none still registering is a
// failed check (permanent); targets still in "initial" make it retryable. A
// listener that does not forward to green at all gets green attached at weight
// 0 first (ALB health-checks only target groups in use), and the call is
// retried. Moving the weight back to 0 checks nothing, so a rollback is never
// blocked by green's health.
//
// After the weight moves off a color, Linger tells the decommission how long
// that color may still have requests (its target group's deregistration
// delay), and InFlight how many of its targets are still draining.
package alb

import (
	"context"
	"fmt"
	"math"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/arn"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	elbv2 "github.com/aws/aws-sdk-go-v2/service/elasticloadbalancingv2"
	"github.com/aws/aws-sdk-go-v2/service/elasticloadbalancingv2/types"

	"github.com/cutoverhq/cutover/providers"
	"github.com/cutoverhq/cutover/providers/awsapi"
	"github.com/cutoverhq/cutover/spec"
)

// Type is the provider's name in release.yaml.
const Type = "alb"

// maxStickiness is the longest target group stickiness ALB accepts (7 days).
const maxStickiness = 7 * 24 * time.Hour

// Settings are the provider's release.yaml settings.
type Settings struct {
	// Region is the load balancer's AWS region (default: the ARN's region).
	Region string `json:"region,omitempty"`
	// ListenerArn is the listener whose default action splits the traffic.
	ListenerArn string `json:"listenerArn,omitempty"`
	// RuleArn is the listener rule whose action splits the traffic (instead
	// of ListenerArn).
	RuleArn string `json:"ruleArn,omitempty"`
	// BlueTargetGroupArn and GreenTargetGroupArn are the two pools.
	BlueTargetGroupArn  string `json:"blueTargetGroupArn,omitempty"`
	GreenTargetGroupArn string `json:"greenTargetGroupArn,omitempty"`
	// Stickiness, when set, keeps a client on the target group it first
	// reached for this long (target group stickiness, 1s..7d); unset: off.
	Stickiness spec.Duration `json:"stickiness,omitempty"`
	// Endpoint overrides the ELBv2 endpoint (tests, LocalStack).
	Endpoint string `json:"endpoint,omitempty"`
}

// Provider is an ALB traffic provider.
type Provider struct {
	s    Settings
	kind string // "listener" or "rule"
	arn  string // the listener's or rule's ARN

	mu     sync.Mutex
	client *elbv2.Client
	// drained caches InFlight's last answer per target group for
	// inFlightEvery: the decommission activity polls several times a second,
	// which ELBv2's API rate limits would not bear.
	drained map[string]drainCount
	// backoff replaces the SDK retryer's backoff (tests).
	backoff retry.BackoffDelayer
}

// Provider drains a color's targets and bounds how long its requests linger.
var (
	_ providers.Drainer  = (*Provider)(nil)
	_ providers.Lingerer = (*Provider)(nil)
)

// deregistrationDelayKey is the target group attribute Linger reads, and
// defaultDeregistrationDelay its value when a target group reports none (the
// default AWS gives every target group).
const (
	deregistrationDelayKey     = "deregistration_delay.timeout_seconds"
	defaultDeregistrationDelay = 300 * time.Second
)

// inFlightEvery is how often InFlight asks ELBv2 at most.
const inFlightEvery = time.Second

type drainCount struct {
	n  int
	at time.Time
}

// New checks the settings and returns a provider. It does no I/O: the AWS
// configuration and credentials are loaded on first use.
func New(settings map[string]any) (*Provider, error) {
	var s Settings
	if err := providers.DecodeSettings(settings, &s); err != nil {
		return nil, err
	}
	p := &Provider{s: s}
	var region string
	switch {
	case s.ListenerArn != "" && s.RuleArn != "":
		return nil, providers.BadConfig("listenerArn and ruleArn are both set; set one: the listener whose default action, or the rule whose action, splits the traffic")
	case s.ListenerArn != "":
		a, err := parseARN("listenerArn", s.ListenerArn, "listener/app/")
		if err != nil {
			return nil, err
		}
		p.kind, p.arn, region = "listener", s.ListenerArn, a.Region
	case s.RuleArn != "":
		a, err := parseARN("ruleArn", s.RuleArn, "listener-rule/app/")
		if err != nil {
			return nil, err
		}
		p.kind, p.arn, region = "rule", s.RuleArn, a.Region
	default:
		return nil, providers.BadConfig("listenerArn or ruleArn is required (the ALB listener or listener rule that forwards to blue and green)")
	}
	for _, tg := range []struct{ name, v string }{{"blueTargetGroupArn", s.BlueTargetGroupArn}, {"greenTargetGroupArn", s.GreenTargetGroupArn}} {
		if tg.v == "" {
			return nil, providers.BadConfig("%s is required (an ALB target group ARN)", tg.name)
		}
		if _, err := parseARN(tg.name, tg.v, "targetgroup/"); err != nil {
			return nil, err
		}
	}
	if s.BlueTargetGroupArn == s.GreenTargetGroupArn {
		return nil, providers.BadConfig("blueTargetGroupArn and greenTargetGroupArn are the same target group %s", s.BlueTargetGroupArn)
	}
	if s.Region == "" {
		p.s.Region = region
	} else if s.Region != region {
		return nil, providers.BadConfig("region %q differs from the %s ARN's region %q", s.Region, p.kind, region)
	}
	if d := s.Stickiness.D(); d != 0 && (d < time.Second || d > maxStickiness || d%time.Second != 0) {
		return nil, providers.BadConfig("stickiness %s is not a whole number of seconds in 1s..168h", d)
	}
	if s.Endpoint != "" {
		u, err := url.Parse(s.Endpoint)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return nil, providers.BadConfig("endpoint %q is not an http:// or https:// URL", s.Endpoint)
		}
	}
	return p, nil
}

func parseARN(setting, v, resourcePrefix string) (arn.ARN, error) {
	a, err := arn.Parse(v)
	if err != nil || a.Service != "elasticloadbalancing" || a.Region == "" || !strings.HasPrefix(a.Resource, resourcePrefix) {
		return arn.ARN{}, providers.BadConfig("%s %q is not an ALB ARN like arn:aws:elasticloadbalancing:<region>:<account>:%s...", setting, v, resourcePrefix)
	}
	return a, nil
}

// NewBuilder returns the registry entry for the ALB provider.
func NewBuilder() providers.Builder {
	return providers.Builder{Type: Type, New: func(s map[string]any) (any, error) { return New(s) }}
}

// Type names the provider.
func (p *Provider) Type() string { return Type }

// elb returns the ELBv2 client, loading the AWS configuration on first use; a
// failure is not kept, so the next call tries again.
func (p *Provider) elb(ctx context.Context) (*elbv2.Client, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.client != nil {
		return p.client, nil
	}
	cfg, err := awsapi.Config(ctx, p.s.Region, p.backoff)
	if err != nil {
		return nil, err
	}
	p.client = elbv2.NewFromConfig(cfg, func(o *elbv2.Options) {
		if p.s.Endpoint != "" {
			o.BaseEndpoint = aws.String(p.s.Endpoint)
		}
	})
	return p.client, nil
}

// SetWeight sends green percent of the traffic to green: it checks that green
// has a healthy target (unless the weight goes back to 0: a rollback is never
// blocked), replaces the forward action, and reads the weights back.
//
// Calls: DescribeListeners (DescribeRules for a rule), DescribeTargetHealth
// (green's target group, only when green > 0), ModifyListener (ModifyRule),
// DescribeListeners (DescribeRules) to read back. When green is not attached
// yet: DescribeListeners, ModifyListener at weight 0, and a retryable error.
func (p *Provider) SetWeight(ctx context.Context, app string, green int) error {
	what := fmt.Sprintf("set green weight to %d on %s %s", green, p.kind, p.arn)
	if green < 0 || green > 100 {
		return providers.Invalid("%s: the weight is outside 0..100", what)
	}
	c, err := p.elb(ctx)
	if err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	// Read first: a listener with other actions than one forward would lose them.
	_, _, attached, err := p.split(ctx, c, what)
	if err != nil {
		return err
	}
	if green > 0 {
		if !attached {
			// ALB health-checks only the target groups a listener uses: attach
			// green at weight 0 (no traffic), so that its targets are checked
			// by the time the activity retries.
			if err := p.modify(ctx, c, 0); err != nil {
				return classify(err, what+": attach green at weight 0")
			}
			return fmt.Errorf("%s: green target group %s was not attached to the %s, so ALB was not health-checking it; attached it at weight 0, retry once its targets are healthy", what, p.s.GreenTargetGroupArn, p.kind)
		}
		if err := p.checkGreen(ctx, c, what); err != nil {
			return err
		}
	}
	if err := p.modify(ctx, c, green); err != nil {
		return classify(err, what)
	}
	blue, got, _, err := p.split(ctx, c, what+": read back")
	if err != nil {
		return err
	}
	if blue != 100-green || got != green {
		// Not permanent: a retry sets it again.
		return fmt.Errorf("%s: read back blue weight %d, green weight %d; want %d and %d", what, blue, got, 100-green, green)
	}
	return nil
}

// modify replaces the listener's default actions (or the rule's actions) with
// one forward action at the given green weight.
func (p *Provider) modify(ctx context.Context, c *elbv2.Client, green int) error {
	actions := []types.Action{p.forward(green)}
	var err error
	if p.kind == "listener" {
		_, err = c.ModifyListener(ctx, &elbv2.ModifyListenerInput{ListenerArn: aws.String(p.arn), DefaultActions: actions})
	} else {
		_, err = c.ModifyRule(ctx, &elbv2.ModifyRuleInput{RuleArn: aws.String(p.arn), Actions: actions})
	}
	return err
}

func (p *Provider) forward(green int) types.Action {
	fc := &types.ForwardActionConfig{TargetGroups: []types.TargetGroupTuple{
		{TargetGroupArn: aws.String(p.s.BlueTargetGroupArn), Weight: aws.Int32(int32(100 - green))},
		{TargetGroupArn: aws.String(p.s.GreenTargetGroupArn), Weight: aws.Int32(int32(green))},
	}}
	if d := p.s.Stickiness.D(); d > 0 {
		fc.TargetGroupStickinessConfig = &types.TargetGroupStickinessConfig{Enabled: aws.Bool(true), DurationSeconds: aws.Int32(int32(d / time.Second))}
	} else {
		fc.TargetGroupStickinessConfig = &types.TargetGroupStickinessConfig{Enabled: aws.Bool(false)}
	}
	return types.Action{Type: types.ActionTypeEnumForward, ForwardConfig: fc}
}

// checkGreen refuses unless green's target group has a healthy target.
func (p *Provider) checkGreen(ctx context.Context, c *elbv2.Client, what string) error {
	tg := p.s.GreenTargetGroupArn
	out, err := c.DescribeTargetHealth(ctx, &elbv2.DescribeTargetHealthInput{TargetGroupArn: aws.String(tg)})
	if err != nil {
		return classify(err, what+": check green's target health")
	}
	var bad []string
	pending := false
	for _, d := range out.TargetHealthDescriptions {
		if d.TargetHealth == nil {
			pending = true
			continue
		}
		switch d.TargetHealth.State {
		case types.TargetHealthStateEnumHealthy:
			return nil
		case types.TargetHealthStateEnumInitial:
			pending = true
		}
		if d.TargetHealth.Reason == types.TargetHealthReasonEnumInternalError {
			pending = true
		}
		bad = append(bad, describeTarget(d))
	}
	if len(out.TargetHealthDescriptions) == 0 {
		return providers.CheckFailed("%s: green target group %s has no registered targets", what, tg)
	}
	if pending {
		// Registration or the first health checks are under way: a retry may pass.
		return fmt.Errorf("%s: green target group %s has no healthy target yet: %s", what, tg, strings.Join(bad, "; "))
	}
	return providers.CheckFailed("%s: green target group %s has no healthy target: %s", what, tg, strings.Join(bad, "; "))
}

func describeTarget(d types.TargetHealthDescription) string {
	id := "?"
	if d.Target != nil {
		id = aws.ToString(d.Target.Id)
		if d.Target.Port != nil {
			id = fmt.Sprintf("%s:%d", id, *d.Target.Port)
		}
	}
	if d.TargetHealth == nil {
		return id + " (no health reported)"
	}
	s := fmt.Sprintf("%s %s", id, d.TargetHealth.State)
	if r, desc := string(d.TargetHealth.Reason), aws.ToString(d.TargetHealth.Description); r != "" || desc != "" {
		s += " (" + strings.TrimPrefix(r+": "+desc, ": ") + ")"
	}
	return s
}

// Weight reads green's share of the forward action's weights, in percent
// (weights on ALB's 0..999 scale are normalized).
//
// Calls: DescribeListeners (DescribeRules for a rule).
func (p *Provider) Weight(ctx context.Context, app string) (int, error) {
	what := fmt.Sprintf("read the weights of %s %s", p.kind, p.arn)
	c, err := p.elb(ctx)
	if err != nil {
		return 0, fmt.Errorf("%s: %w", what, err)
	}
	blue, green, _, err := p.split(ctx, c, what)
	if err != nil {
		return 0, err
	}
	total := blue + green
	if total == 0 {
		return 0, providers.Invalid("%s: blue and green both have weight 0", what)
	}
	return (green*100 + total/2) / total, nil
}

// split reads the listener's (or rule's) actions and returns blue's and green's
// weights, refusing actions Cutover cannot drive;
// attached says whether green's target group is in the forward action at all.
func (p *Provider) split(ctx context.Context, c *elbv2.Client, what string) (blue, green int, attached bool, err error) {
	var actions []types.Action
	if p.kind == "listener" {
		out, err := c.DescribeListeners(ctx, &elbv2.DescribeListenersInput{ListenerArns: []string{p.arn}})
		if err != nil {
			return 0, 0, false, classify(err, what)
		}
		if len(out.Listeners) == 0 {
			return 0, 0, false, providers.NotFound("%s: no such listener", what)
		}
		actions = out.Listeners[0].DefaultActions
	} else {
		out, err := c.DescribeRules(ctx, &elbv2.DescribeRulesInput{RuleArns: []string{p.arn}})
		if err != nil {
			return 0, 0, false, classify(err, what)
		}
		if len(out.Rules) == 0 {
			return 0, 0, false, providers.NotFound("%s: no such rule", what)
		}
		actions = out.Rules[0].Actions
	}
	if len(actions) != 1 || actions[0].Type != types.ActionTypeEnumForward {
		var ts []string
		for _, a := range actions {
			ts = append(ts, string(a.Type))
		}
		return 0, 0, false, providers.Invalid("%s: its actions are [%s]; Cutover drives a %s whose only action is forward, and would drop the others", what, strings.Join(ts, " "), p.kind)
	}
	a := actions[0]
	var tgs []types.TargetGroupTuple
	if a.ForwardConfig != nil && len(a.ForwardConfig.TargetGroups) > 0 {
		tgs = a.ForwardConfig.TargetGroups
	} else if a.TargetGroupArn != nil {
		tgs = []types.TargetGroupTuple{{TargetGroupArn: a.TargetGroupArn, Weight: aws.Int32(1)}}
	}
	for _, tg := range tgs {
		w := int(aws.ToInt32(tg.Weight))
		if tg.Weight == nil {
			w = 1 // ALB's default weight
		}
		switch arn := aws.ToString(tg.TargetGroupArn); arn {
		case p.s.BlueTargetGroupArn:
			blue += w
		case p.s.GreenTargetGroupArn:
			green += w
			attached = true
		default:
			if w > 0 {
				return 0, 0, false, providers.Invalid("%s: it forwards to target group %s, which is neither blueTargetGroupArn nor greenTargetGroupArn", what, arn)
			}
		}
	}
	return blue, green, attached, nil
}

// InFlight returns the number of the color's targets that are draining. ALB
// exposes no per-target count of requests in flight; a deregistered target
// stays "draining" until its requests finish or the target group's
// deregistration delay passes, so waiting for 0 waits those out. The answer is
// reused for up to a second (the caller polls faster than that).
//
// Calls: DescribeTargetHealth (the color's target group), at most once a
// second per target group.
func (p *Provider) InFlight(ctx context.Context, app string, col providers.Color) (int, error) {
	tg := p.targetGroup(col)
	what := fmt.Sprintf("count %s's draining targets in target group %s", col, tg)
	p.mu.Lock()
	last, ok := p.drained[tg]
	p.mu.Unlock()
	if ok && time.Since(last.at) < inFlightEvery {
		return last.n, nil
	}
	c, err := p.elb(ctx)
	if err != nil {
		return 0, fmt.Errorf("%s: %w", what, err)
	}
	out, err := c.DescribeTargetHealth(ctx, &elbv2.DescribeTargetHealthInput{TargetGroupArn: aws.String(tg)})
	if err != nil {
		return 0, classify(err, what)
	}
	n := 0
	for _, d := range out.TargetHealthDescriptions {
		if d.TargetHealth != nil && (d.TargetHealth.State == types.TargetHealthStateEnumDraining || d.TargetHealth.State == types.TargetHealthStateEnumUnhealthyDraining) {
			n++
		}
	}
	p.mu.Lock()
	if p.drained == nil {
		p.drained = map[string]drainCount{}
	}
	p.drained[tg] = drainCount{n, time.Now()}
	p.mu.Unlock()
	return n, nil
}

// Linger is how long the color's target group may still have requests after
// its weight went to 0: its deregistration delay, the target group attribute
// deregistration_delay.timeout_seconds (300s, AWS's default, when the target
// group reports none).
//
// With weighted forwarding, a target group at weight 0 gets no new requests,
// but the requests it already has run on; its targets are not deregistered, so
// none is draining and InFlight sees 0, and ALB reports no count of requests
// in flight per target group. The deregistration delay is the bound the
// operator set on how long a request may take (ALB cuts a deregistered
// target's requests off after it), so the decommission waits that long before
// stopping the color's pool.
//
// Calls: DescribeTargetGroupAttributes (TargetGroupArn: the color's target
// group), once per call; nothing is cached.
func (p *Provider) Linger(ctx context.Context, app string, col providers.Color) (time.Duration, error) {
	tg := p.targetGroup(col)
	what := fmt.Sprintf("read %s's deregistration delay from target group %s", col, tg)
	c, err := p.elb(ctx)
	if err != nil {
		return 0, fmt.Errorf("%s: %w", what, err)
	}
	out, err := c.DescribeTargetGroupAttributes(ctx, &elbv2.DescribeTargetGroupAttributesInput{TargetGroupArn: aws.String(tg)})
	if err != nil {
		return 0, classify(err, what)
	}
	for _, a := range out.Attributes {
		if aws.ToString(a.Key) != deregistrationDelayKey {
			continue
		}
		v := aws.ToString(a.Value)
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n < 0 || n > int64(math.MaxInt64/time.Second) {
			return 0, providers.Invalid("%s: %s is %q, not a whole number of seconds", what, deregistrationDelayKey, v)
		}
		return time.Duration(n) * time.Second, nil
	}
	return defaultDeregistrationDelay, nil
}

// targetGroup is the color's target group's ARN.
func (p *Provider) targetGroup(col providers.Color) string {
	if col == providers.Green {
		return p.s.GreenTargetGroupArn
	}
	return p.s.BlueTargetGroupArn
}

// classify gives an ELBv2 error its kind through awsapi.Classify, with the
// codes ELBv2 uses for things that do not exist.
func classify(err error, what string) error {
	return awsapi.Classify(err, what, "ListenerNotFound", "RuleNotFound", "TargetGroupNotFound")
}
