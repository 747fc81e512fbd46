// Package cloudwatch is an analysis provider that reads an Application Load
// Balancer's per-target-group metrics from Amazon CloudWatch (GetMetricData)
// and hands them to the judge package, one point per period.
//
// Per color it makes one GetMetricData call (more only if CloudWatch pages the
// answer) with four queries over namespace AWS/ApplicationELB and dimensions
// LoadBalancer and TargetGroup:
//
//	RequestCount              Sum      -> Point.Requests
//	HTTPCode_Target_5XX_Count Sum      -> Point.Errors (0 where RequestCount has a datapoint and it has none)
//	TargetResponseTime        Average  -> Point.Latency
//	TargetResponseTime        p99      -> Point.P99
//
// A period without a RequestCount datapoint has NaN requests: no data, never a
// pass. ALB publishes its metrics once a minute, so a period below 60s (1s, 5s,
// 10s, 20s, 30s are accepted, for high-resolution metrics) gains nothing for
// ALB metrics.
//
// Credentials come from the AWS SDK's default chain, never from release.yaml.
// The IAM policy it needs: cloudwatch:GetMetricData (which takes no resource
// ARN: Resource "*").
package cloudwatch

import (
	"context"
	"errors"
	"fmt"
	"math"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/arn"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	cw "github.com/aws/aws-sdk-go-v2/service/cloudwatch"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatch/types"

	"github.com/cutoverhq/cutover/judge"
	"github.com/cutoverhq/cutover/providers"
	"github.com/cutoverhq/cutover/providers/awsapi"
	"github.com/cutoverhq/cutover/spec"
)

// Type is the provider's name in release.yaml.
const Type = "cloudwatch"

// Defaults of the settings.
const (
	DefaultPeriod   = 60 * time.Second
	DefaultLookback = 5 * time.Minute
	DefaultDelay    = 60 * time.Second
)

// defaultWindow is Compare's window when it is given none.
const defaultWindow = 5 * time.Minute

// callTimeout bounds one GetMetricData page, the SDK's retries included.
const callTimeout = 30 * time.Second

// Namespace and metric names of ALB's target group metrics.
const (
	namespace    = "AWS/ApplicationELB"
	metricReqs   = "RequestCount"
	metricErrs   = "HTTPCode_Target_5XX_Count"
	metricLat    = "TargetResponseTime"
	idRequests   = "requests"
	idErrors     = "errors"
	idLatency    = "latency"
	idP99        = "p99"
	dimLB        = "LoadBalancer"
	dimTG        = "TargetGroup"
	maxPeriod    = 24 * time.Hour
	maxLookback  = 24 * time.Hour
	maxDelay     = 15 * time.Minute
	highResHint  = "1s, 5s, 10s, 20s, 30s or a multiple of 60s"
	lbExample    = "app/<name>/<id>, like app/shop/50dc6c495c0c9188, or the load balancer's ARN"
	tgExample    = "targetgroup/<name>/<id>, like targetgroup/shop-blue/73e2d6bc24d8a067, or the target group's ARN"
	maxNextPages = 20
)

var (
	lbDim = regexp.MustCompile(`^app/[A-Za-z0-9-]+/[0-9A-Za-z]+$`)
	tgDim = regexp.MustCompile(`^targetgroup/[A-Za-z0-9-]+/[0-9A-Za-z]+$`)
)

// Settings are the provider's release.yaml settings.
type Settings struct {
	// Region is the load balancer's AWS region (default: an ARN's region, or
	// the AWS configuration's).
	Region string `json:"region,omitempty"`
	// LoadBalancer is the LoadBalancer dimension, app/<name>/<id> (or the
	// load balancer's ARN).
	LoadBalancer string `json:"loadBalancer,omitempty"`
	// BlueTargetGroup and GreenTargetGroup are the TargetGroup dimensions,
	// targetgroup/<name>/<id> (or the target groups' ARNs).
	BlueTargetGroup  string `json:"blueTargetGroup,omitempty"`
	GreenTargetGroup string `json:"greenTargetGroup,omitempty"`
	// Period is the length of a step (default 60s): a multiple of 60s, or
	// 1s, 5s, 10s, 20s or 30s for high-resolution metrics.
	Period spec.Duration `json:"period,omitempty"`
	// Lookback is how far back Guard reads green's points (default 5m).
	Lookback spec.Duration `json:"lookback,omitempty"`
	// Delay is how long Compare waits after the window for CloudWatch to
	// have the window's last datapoints (default 60s; 0s reads at once).
	Delay *spec.Duration `json:"delay,omitempty"`
	// Endpoint overrides the CloudWatch endpoint (tests, LocalStack).
	Endpoint string `json:"endpoint,omitempty"`
	// Judge is the judge's configuration.
	Judge judge.Config `json:"judge,omitzero"`
}

// Provider is the CloudWatch analysis provider.
type Provider struct {
	s       Settings
	cfg     judge.Config
	period  time.Duration
	delay   time.Duration
	lb      string // LoadBalancer dimension
	blueTG  string // TargetGroup dimensions
	greenTG string

	mu     sync.Mutex
	client *cw.Client

	// Tests replace these.
	backoff retry.BackoffDelayer
	now     func() time.Time
	sleep   func(ctx context.Context, d time.Duration) error
}

var _ providers.Analyzer = (*Provider)(nil)

// New checks the settings and returns a provider. It does no I/O: the AWS
// configuration and credentials are loaded on first use.
func New(settings map[string]any) (*Provider, error) {
	var s Settings
	if err := providers.DecodeSettings(settings, &s); err != nil {
		return nil, err
	}
	var regions []string // regions named by ARNs
	lb, r, err := dimension("loadBalancer", s.LoadBalancer, "loadbalancer/", lbDim, lbExample)
	if err != nil {
		return nil, err
	}
	regions = append(regions, r)
	blue, r, err := dimension("blueTargetGroup", s.BlueTargetGroup, "", tgDim, tgExample)
	if err != nil {
		return nil, err
	}
	regions = append(regions, r)
	green, r, err := dimension("greenTargetGroup", s.GreenTargetGroup, "", tgDim, tgExample)
	if err != nil {
		return nil, err
	}
	regions = append(regions, r)
	if blue == green {
		return nil, providers.BadConfig("blueTargetGroup and greenTargetGroup are the same target group %s", blue)
	}
	for _, r := range regions {
		switch {
		case r == "":
		case s.Region == "":
			s.Region = r
		case s.Region != r:
			return nil, providers.BadConfig("region: %q differs from an ARN's region %q", s.Region, r)
		}
	}
	if s.Period == 0 {
		s.Period = spec.Duration(DefaultPeriod)
	}
	period := s.Period.D()
	switch {
	case period == time.Second, period == 5*time.Second, period == 10*time.Second, period == 20*time.Second, period == 30*time.Second:
	case period >= time.Minute && period <= maxPeriod && period%time.Minute == 0:
	default:
		return nil, providers.BadConfig("period: %s must be %s (up to %s)", s.Period, highResHint, maxPeriod)
	}
	if s.Lookback == 0 {
		s.Lookback = spec.Duration(DefaultLookback)
	}
	if s.Lookback.D() < period || s.Lookback.D() > maxLookback {
		return nil, providers.BadConfig("lookback: %s is outside period (%s)..%s", s.Lookback, s.Period, maxLookback)
	}
	delay := DefaultDelay
	if s.Delay != nil {
		delay = s.Delay.D()
	}
	if delay < 0 || delay > maxDelay {
		return nil, providers.BadConfig("delay: %s is outside 0s..%s", delay, maxDelay)
	}
	if s.Endpoint != "" {
		u, err := url.Parse(s.Endpoint)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return nil, providers.BadConfig("endpoint: %q is not an http:// or https:// URL", s.Endpoint)
		}
	}
	cfg := s.Judge.WithDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	return &Provider{
		s: s, cfg: cfg, period: period, delay: delay, lb: lb, blueTG: blue, greenTG: green,
		now: time.Now, sleep: sleep,
	}, nil
}

// dimension reads a LoadBalancer or TargetGroup dimension, given as the
// dimension itself or as the resource's ARN, and returns the ARN's region.
func dimension(setting, v, arnPrefix string, re *regexp.Regexp, example string) (dim, region string, err error) {
	if v == "" {
		return "", "", providers.BadConfig("%s: is required (%s)", setting, example)
	}
	if strings.HasPrefix(v, "arn:") {
		a, err := arn.Parse(v)
		if err == nil && a.Service == "elasticloadbalancing" && strings.HasPrefix(a.Resource, arnPrefix) {
			if d := strings.TrimPrefix(a.Resource, arnPrefix); re.MatchString(d) {
				return d, a.Region, nil
			}
		}
		return "", "", providers.BadConfig("%s: %q is not %s", setting, v, example)
	}
	if !re.MatchString(v) {
		return "", "", providers.BadConfig("%s: %q is not %s", setting, v, example)
	}
	return v, "", nil
}

func sleep(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// NewBuilder returns the registry entry for the CloudWatch provider.
func NewBuilder() providers.Builder {
	return providers.Builder{Type: Type, New: func(s map[string]any) (any, error) { return New(s) }}
}

// Type names the provider.
func (p *Provider) Type() string { return Type }

func (p *Provider) source() string { return "cloudwatch " + namespace + " " + p.lb }

// cloudwatch returns the client, loading the AWS configuration on first use; a
// failure is not kept, so the next call tries again.
func (p *Provider) cloudwatch(ctx context.Context) (*cw.Client, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.client != nil {
		return p.client, nil
	}
	// An empty region leaves it to AWS_REGION or the profile.
	cfg, err := awsapi.Config(ctx, p.s.Region, p.backoff)
	if err != nil {
		return nil, err
	}
	if cfg.Region == "" {
		return nil, providers.BadConfig("region: is not set and the AWS configuration (AWS_REGION, the profile) names none")
	}
	p.client = cw.NewFromConfig(cfg, func(o *cw.Options) {
		if p.s.Endpoint != "" {
			o.BaseEndpoint = aws.String(p.s.Endpoint)
		}
	})
	return p.client, nil
}

// Guard judges green's points of the last lookback against the absolute limits.
func (p *Provider) Guard(ctx context.Context, r providers.Ref) (providers.Verdict, error) {
	end := p.now()
	start := end.Add(-p.s.Lookback.D()).Truncate(p.period)
	green, err := p.points(ctx, providers.Green, start, ceil(end, p.period))
	if err != nil {
		return p.unavailable(ctx, err)
	}
	return judge.Guard(p.cfg, green), nil
}

// Compare observes the coming window: it waits until the window is over and
// CloudWatch has had the delay to publish its last datapoints, then reads both
// colors' periods that lie inside the window (the periods that overlap it, when
// the window is shorter than a period) and judges green against blue.
func (p *Provider) Compare(ctx context.Context, r providers.Ref, window time.Duration) (providers.Verdict, error) {
	if window <= 0 {
		window = defaultWindow
	}
	start := p.now()
	end := start.Add(window)
	qStart, qEnd := ceil(start, p.period), end.Truncate(p.period)
	if !qEnd.After(qStart) {
		qStart, qEnd = start.Truncate(p.period), ceil(end, p.period)
	}
	wake := end
	if qEnd.After(wake) {
		wake = qEnd
	}
	if err := p.sleep(ctx, wake.Add(p.delay).Sub(p.now())); err != nil {
		return providers.Verdict{}, err
	}
	type result struct {
		pts []judge.Point
		err error
	}
	var blue, green result
	var wg sync.WaitGroup
	wg.Go(func() { blue.pts, blue.err = p.points(ctx, providers.Blue, qStart, qEnd) })
	wg.Go(func() { green.pts, green.err = p.points(ctx, providers.Green, qStart, qEnd) })
	wg.Wait()
	if err := firstErr(blue.err, green.err); err != nil {
		return p.unavailable(ctx, err)
	}
	return judge.Compare(p.cfg, blue.pts, green.pts), nil
}

// ceil rounds t up to a multiple of d.
func ceil(t time.Time, d time.Duration) time.Time {
	if f := t.Truncate(d); !f.Equal(t) {
		return f.Add(d)
	}
	return t
}

// unavailable is the verdict for a source that cannot be read, ctx's error when
// the caller gave up, or a permanent error (configuration, access, a missing
// resource) as it is.
func (p *Provider) unavailable(ctx context.Context, err error) (providers.Verdict, error) {
	if ctx.Err() != nil {
		return providers.Verdict{}, ctx.Err()
	}
	if permanent(err) {
		return providers.Verdict{}, err
	}
	return judge.Unavailable(p.source(), err), nil
}

func permanent(err error) bool {
	return errors.Is(err, providers.ErrBadConfig) || errors.Is(err, providers.ErrInvalid) || errors.Is(err, providers.ErrNotFound)
}

// points reads a color's four series over [start, end) with one GetMetricData
// call (following NextToken) and assembles them into points.
func (p *Provider) points(ctx context.Context, c providers.Color, start, end time.Time) ([]judge.Point, error) {
	tg := p.blueTG
	if c == providers.Green {
		tg = p.greenTG
	}
	what := fmt.Sprintf("GetMetricData for %s (%s)", c, tg)
	client, err := p.cloudwatch(ctx)
	if err != nil {
		if permanent(err) {
			return nil, err
		}
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	dims := []types.Dimension{{Name: aws.String(dimLB), Value: aws.String(p.lb)}, {Name: aws.String(dimTG), Value: aws.String(tg)}}
	period := aws.Int32(int32(p.period / time.Second))
	q := func(id, metric, stat string) types.MetricDataQuery {
		return types.MetricDataQuery{
			Id: aws.String(id),
			MetricStat: &types.MetricStat{
				Metric: &types.Metric{Namespace: aws.String(namespace), MetricName: aws.String(metric), Dimensions: dims},
				Period: period,
				Stat:   aws.String(stat),
			},
			ReturnData: aws.Bool(true),
		}
	}
	in := &cw.GetMetricDataInput{
		StartTime: aws.Time(start),
		EndTime:   aws.Time(end),
		ScanBy:    types.ScanByTimestampAscending,
		MetricDataQueries: []types.MetricDataQuery{
			q(idRequests, metricReqs, "Sum"),
			q(idErrors, metricErrs, "Sum"),
			q(idLatency, metricLat, "Average"),
			q(idP99, metricLat, "p99"),
		},
	}
	series := map[string]map[time.Time]float64{}
	for page := 0; ; page++ {
		cctx, cancel := context.WithTimeout(ctx, callTimeout)
		out, err := client.GetMetricData(cctx, in)
		cancel()
		if err != nil {
			if ctx.Err() != nil {
				return nil, ctx.Err()
			}
			return nil, classify(err, what)
		}
		for _, res := range out.MetricDataResults {
			id := aws.ToString(res.Id)
			switch res.StatusCode {
			case types.StatusCodeForbidden:
				return nil, providers.Invalid("%s: query %s: access to the metric is forbidden%s", what, id, messages(res.Messages))
			case types.StatusCodeInternalError:
				return nil, fmt.Errorf("%s: query %s: CloudWatch reported an internal error%s", what, id, messages(res.Messages))
			}
			if len(res.Timestamps) != len(res.Values) {
				return nil, fmt.Errorf("%s: query %s returned %d timestamps and %d values", what, id, len(res.Timestamps), len(res.Values))
			}
			m := series[id]
			if m == nil {
				m = map[time.Time]float64{}
				series[id] = m
			}
			for i, t := range res.Timestamps {
				m[t.UTC()] = res.Values[i]
			}
		}
		if aws.ToString(out.NextToken) == "" {
			break
		}
		if page >= maxNextPages {
			return nil, fmt.Errorf("%s: still paging after %d pages", what, page+1)
		}
		in.NextToken = out.NextToken
	}
	return assemble(series, p.period), nil
}

func messages(ms []types.MessageData) string {
	var parts []string
	for _, m := range ms {
		parts = append(parts, strings.TrimPrefix(aws.ToString(m.Code)+": "+aws.ToString(m.Value), ": "))
	}
	if len(parts) == 0 {
		return ""
	}
	return " (" + strings.Join(parts, "; ") + ")"
}

// assemble turns the series (by query ID, then the period's start) into
// points ending at the period's end, oldest first. A period without a
// RequestCount datapoint has NaN requests and NaN errors; one with requests
// but no 5XX datapoint had no 5XX (ALB publishes no zero counts).
func assemble(series map[string]map[time.Time]float64, period time.Duration) []judge.Point {
	nan := math.NaN()
	var times []time.Time
	for _, m := range series {
		for t := range m {
			if !slices.ContainsFunc(times, t.Equal) {
				times = append(times, t)
			}
		}
	}
	slices.SortFunc(times, func(a, b time.Time) int { return a.Compare(b) })
	get := func(id string, t time.Time) (float64, bool) {
		v, ok := series[id][t]
		return v, ok
	}
	out := make([]judge.Point, 0, len(times))
	for _, t := range times {
		pt := judge.Point{Time: t.Add(period), Requests: nan, Errors: nan, Latency: nan, P99: nan}
		if v, ok := get(idRequests, t); ok {
			pt.Requests = v
			pt.Errors = 0
		}
		if v, ok := get(idErrors, t); ok {
			pt.Errors = v
		}
		if v, ok := get(idLatency, t); ok {
			pt.Latency = v
		}
		if v, ok := get(idP99, t); ok {
			pt.P99 = v
		}
		out = append(out, pt)
	}
	return out
}

// classify gives a CloudWatch error its kind through awsapi.Classify; the
// SDK's retryer has already retried throttling and 5xx by the time it gets
// here.
func classify(err error, what string) error {
	return awsapi.Classify(err, what, "ResourceNotFound", "ResourceNotFoundException")
}

// firstErr is the first error of several; a permanent one comes first, since
// it is what must be fixed.
func firstErr(errs ...error) error {
	var found error
	for _, err := range errs {
		if err != nil && permanent(err) {
			return err
		}
		if found == nil {
			found = err
		}
	}
	return found
}
