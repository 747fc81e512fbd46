// Package cloudwatch is an analysis source that reads an Application Load
// Balancer's per-target-group metrics, and the app's own metrics, from Amazon
// CloudWatch (GetMetricData), one judge.Step per period. It only reads: the
// analysis package feeds the steps to the judge, handles gaps and keeps the
// evidence, the same way for every source.
//
// It implements analysis.Stepper rather than reading counters because
// CloudWatch has no counters to give: it publishes per-period statistics, so a
// period's Sum is already the step's increment.
//
// Latency is read as a histogram, not as CloudWatch's percentiles, because the
// judge compares distributions and adds steps together, and percentiles of
// separate periods cannot be added. CloudWatch has no histogram statistic, but
// its trimmed count with absolute bounds, TC(X:Y), is the number of samples in
// the period with X < value <= Y: the lower bound is exclusive, the upper one
// inclusive ("TC(80:500) uses only the values that are between 80 (exclusive)
// and 500 (inclusive)", "TC(:0.5) uses only the values that equal 0.5 or are
// lower"; Amazon CloudWatch User Guide, "CloudWatch statistics definitions",
// section Syntax). That is exactly a bucket (lower, upper] of
// judge.Histogram, so the buckets are TC(:b0), TC(b0:b1), ..., TC(bn:), the
// last being the overflow above the last bound (the guide's note that a fixed
// lower boundary is never included is read to hold for TC(X:) too; it matters
// only for a sample exactly on the last bound). The bounds are written with
// strconv's shortest round-trip form, so the number CloudWatch parses is the
// float64 in Histogram.Bounds, and a sample exactly on a bound is counted in
// the bucket the judge takes it to be in.
//
// A period is read only once a delay has passed after its end, because
// CloudWatch's newest datapoints arrive late: a half-published period would
// show too few requests and errors, and be judged as if that were so.
//
// Per color it makes one GetMetricData call (more only if CloudWatch pages the
// answer) with all its queries, so that every number of a step comes from the
// same answer; the colors are separate calls, which keeps each call's query
// count (2 + buckets + 1 + 2 per app metric) under CloudWatch's 500.
//
// Credentials come from the AWS SDK's default chain, never from release.yaml.
// The IAM policy it needs: cloudwatch:GetMetricData (which takes no resource
// ARN: Resource "*").
package cloudwatch

import (
	"context"
	"fmt"
	"math"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"text/template"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/arn"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	cw "github.com/aws/aws-sdk-go-v2/service/cloudwatch"

	"github.com/cutoverhq/cutover/judge"
	"github.com/cutoverhq/cutover/providers"
	"github.com/cutoverhq/cutover/providers/awsapi"
	"github.com/cutoverhq/cutover/spec"
)

// Type is the provider's name in release.yaml.
const Type = "cloudwatch"

// Defaults of the settings.
const (
	DefaultPeriod = 60 * time.Second
	DefaultDelay  = 60 * time.Second
)

// Limits of CloudWatch's GetMetricData (API reference, GetMetricData): at most
// 500 queries per call, and at most 100,800 datapoints in one answer (more
// are paged).
const (
	maxQueries    = 500
	maxDatapoints = 100800
)

const (
	namespace    = "AWS/ApplicationELB"
	dimLB        = "LoadBalancer"
	dimTG        = "TargetGroup"
	maxPeriod    = 24 * time.Hour
	maxDelay     = 15 * time.Minute
	maxDims      = 30 // dimensions per metric
	maxDecimals  = 10 // digits after the point in a statistic's bound
	highResHint  = "1s, 5s, 10s, 20s, 30s or a multiple of 60s"
	lbExample    = "app/<name>/<id>, like app/shop/50dc6c495c0c9188, or the load balancer's ARN"
	tgExample    = "targetgroup/<name>/<id>, like targetgroup/shop-blue/73e2d6bc24d8a067, or the target group's ARN"
	callTimeout  = 30 * time.Second // one GetMetricData page, the SDK's retries included
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
	// 1s, 5s, 10s, 20s or 30s for high-resolution metrics. ALB publishes
	// once a minute, so a shorter period only helps the app's own
	// high-resolution metrics.
	Period spec.Duration `json:"period,omitempty"`
	// Delay is how long after a period's end CloudWatch is taken to have all
	// of the period's datapoints (default 60s, up to 15m): a period is read
	// only once it has passed, so that a half-published period, whose counts
	// are too low, is never judged.
	Delay *spec.Duration `json:"delay,omitempty"`
	// LatencyBuckets are the upper bounds of TargetResponseTime's histogram
	// buckets, in seconds, ascending, at most 10 decimals (default
	// DefaultLatencyBuckets). An explicitly empty list, latencyBuckets: [],
	// reads no latency and turns the judge's latency off; a judge.latency
	// block that says how to judge latency is then refused rather than
	// ignored.
	LatencyBuckets []float64 `json:"latencyBuckets,omitempty"`
	// Metrics are the app's own metrics, each judged as its numerator over
	// its denominator.
	Metrics []Metric `json:"metrics,omitempty"`
	// Endpoint overrides the CloudWatch endpoint (tests, LocalStack).
	Endpoint string `json:"endpoint,omitempty"`
	// Judge is the judge's configuration; its metrics come from Metrics.
	Judge judge.Config `json:"judge,omitzero"`
}

// Metric is one of the app's own metrics: how the judge judges it (name,
// kind, better, margin, critical) and where CloudWatch has it.
type Metric struct {
	judge.MetricConfig
	// Numerator is the events of a proportion or the sum of a mean.
	Numerator Query `json:"numerator"`
	// Denominator is the trials of a proportion or the count of a mean.
	Denominator Query `json:"denominator"`
}

// Query is one CloudWatch metric and the statistic read from it per period.
type Query struct {
	Namespace  string `json:"namespace"`
	MetricName string `json:"metricName"`
	// Dimensions must match the metric's exactly, as CloudWatch requires. A
	// value may hold {{.Color}} (blue or green) and {{.Version}} (the
	// color's version: blue's is the release's previous version), for a
	// metric published per color or per version.
	Dimensions map[string]string `json:"dimensions,omitempty"`
	// Stat is Sum (the default) or SampleCount (a count of samples): the
	// statistics that add up across periods, as the judge's steps do.
	Stat string `json:"stat,omitempty"`
}

// Provider is the CloudWatch analysis source.
type Provider struct {
	s       Settings
	cfg     judge.Config
	period  time.Duration
	delay   time.Duration
	lb      string // LoadBalancer dimension
	blueTG  string // TargetGroup dimensions
	greenTG string
	// bounds are the latency buckets' upper bounds; nil when latency is off.
	bounds []float64
	// metrics are the app metrics, with their dimensions parsed.
	metrics []appMetric
	// maxPeriods is how many periods one call reads: one page's worth.
	maxPeriods int

	mu     sync.Mutex
	client *cw.Client

	// Tests replace these.
	backoff retry.BackoffDelayer
	now     func() time.Time
}

// appMetric is a Metric ready to query.
type appMetric struct {
	name     string
	num, den appQuery
}

type appQuery struct {
	path       string // metrics[i].numerator, for errors
	namespace  string
	metricName string
	stat       string
	dims       []appDim // sorted by name
}

type appDim struct {
	name  string
	value *template.Template
	// version: the value depends on {{.Version}}, which blue may not have.
	version bool
}

// tmplData is what a dimension's template sees.
type tmplData struct {
	Color   string
	Version string
}

// New checks the settings and returns a provider. It does no I/O: the AWS
// configuration and credentials are loaded on first use.
func New(settings map[string]any) (*Provider, error) {
	// A duration the decoder refuses would be reported without its setting's name.
	for _, k := range []string{"period", "delay"} {
		if v, ok := settings[k].(string); ok {
			if _, err := spec.ParseDuration(v); err != nil {
				return nil, providers.BadConfig("%s: %v", k, err)
			}
		}
	}
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
	if !validPeriod(period) {
		return nil, providers.BadConfig("period: %s must be %s (up to %s)", s.Period, highResHint, maxPeriod)
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
	bounds, err := latencyBounds(s)
	if err != nil {
		return nil, err
	}
	metrics, err := appMetrics(s.Metrics)
	if err != nil {
		return nil, err
	}
	cfg, err := judgeConfig(s, bounds)
	if err != nil {
		return nil, err
	}
	n := queryCount(bounds, len(metrics))
	if n > maxQueries {
		return nil, providers.BadConfig("latencyBuckets and metrics: they need %d queries per GetMetricData call (2 + %d buckets + 2 per metric), CloudWatch takes at most %d; use fewer buckets or metrics",
			n, len(bounds)+1, maxQueries)
	}
	return &Provider{
		s: s, cfg: cfg, period: period, delay: delay, lb: lb, blueTG: blue, greenTG: green,
		bounds: bounds, metrics: metrics, maxPeriods: maxDatapoints / n,
		now: time.Now,
	}, nil
}

func validPeriod(d time.Duration) bool {
	switch {
	case d == time.Second, d == 5*time.Second, d == 10*time.Second, d == 20*time.Second, d == 30*time.Second:
		return true
	case d >= time.Minute && d <= maxPeriod && d%time.Minute == 0:
		return true
	}
	return false
}

// queryCount is how many queries one color's call holds.
func queryCount(bounds []float64, metrics int) int {
	n := 2 + 2*metrics
	if bounds != nil {
		n += len(bounds) + 1
	}
	return n
}

// DefaultLatencyBuckets are the bounds used when latencyBuckets is left out: a
// geometric ladder of 75 bounds from 1ms to 30s, each about 15% above the one
// before (rounded to three significant digits, so that the statistics stay
// short). 15% is finer than the judge's smallest default allowed slowdown
// (20%), so a slowdown worth stopping moves a quantile across a bucket; 1ms to
// 30s covers what an ALB target answers in (its idle timeout defaults to 60s).
func DefaultLatencyBuckets() []float64 {
	const lo, hi, steps = 0.001, 30.0, 74
	r := math.Pow(hi/lo, 1.0/steps)
	out := make([]float64, steps+1)
	for k := range out {
		out[k], _ = strconv.ParseFloat(strconv.FormatFloat(lo*math.Pow(r, float64(k)), 'g', 3, 64), 64)
	}
	return out
}

// latencyBounds checks latencyBuckets and returns the bounds to read, nil when
// latency is off.
func latencyBounds(s Settings) ([]float64, error) {
	switch {
	case s.LatencyBuckets == nil && s.Judge.Latency.Off:
		return nil, nil
	case s.LatencyBuckets == nil:
		return DefaultLatencyBuckets(), nil
	case len(s.LatencyBuckets) == 0:
		return nil, nil
	case s.Judge.Latency.Off:
		return nil, providers.BadConfig("latencyBuckets: is set but judge.latency.off is true; leave one of them out (latencyBuckets: [] alone turns latency off)")
	}
	for i, b := range s.LatencyBuckets {
		switch {
		case !(b > 0) || math.IsInf(b, 0):
			return nil, providers.BadConfig("latencyBuckets[%d]: %g must be a number of seconds above 0", i, b)
		case i > 0 && b <= s.LatencyBuckets[i-1]:
			return nil, providers.BadConfig("latencyBuckets[%d]: %g is not above latencyBuckets[%d] (%g); bounds must ascend", i, b, i-1, s.LatencyBuckets[i-1])
		case decimals(b) > maxDecimals:
			return nil, providers.BadConfig("latencyBuckets[%d]: %s has more than %d decimals, which CloudWatch's statistics do not take", i, bound(b), maxDecimals)
		}
	}
	return s.LatencyBuckets, nil
}

// bound writes a bucket bound as a statistic takes it: plain decimal, the
// shortest form that reads back as the same float64.
func bound(b float64) string { return strconv.FormatFloat(b, 'f', -1, 64) }

func decimals(b float64) int {
	s := bound(b)
	if i := strings.IndexByte(s, '.'); i >= 0 {
		return len(s) - i - 1
	}
	return 0
}

// judgeConfig is the judge's configuration: the judge block, with the app
// metrics from metrics: and latency off when no latency is read.
func judgeConfig(s Settings, bounds []float64) (judge.Config, error) {
	cfg := s.Judge
	if len(cfg.Metrics) > 0 {
		return judge.Config{}, providers.BadConfig("judge.metrics: list the app's metrics under metrics:, each with its numerator and denominator")
	}
	if bounds == nil && !cfg.Latency.Off {
		// latencyBuckets: [] turned latency off; a judge.latency block that
		// says how to judge it is a contradiction to point out, not to drop.
		l := cfg.Latency
		var set []string
		if l.Quantiles != nil {
			set = append(set, "quantiles")
		}
		if l.MaxP99 != 0 {
			set = append(set, "maxP99")
		}
		if l.Critical != nil {
			set = append(set, "critical")
		}
		if len(set) > 0 {
			return judge.Config{}, providers.BadConfig("latencyBuckets: [] turns latency off, but judge.latency sets %s; leave one of them out", strings.Join(set, ", "))
		}
		cfg.Latency.Off = true
	}
	for _, m := range s.Metrics {
		cfg.Metrics = append(cfg.Metrics, m.MetricConfig)
	}
	if err := cfg.Validate(); err != nil {
		// The judge names the metrics judge.metrics[i]; here they are metrics[i].
		return judge.Config{}, providers.BadConfig("%s", strings.ReplaceAll(err.Error(), "judge.metrics[", "metrics["))
	}
	return cfg.WithDefaults(), nil
}

// appMetrics checks the metrics' queries and parses their dimensions.
func appMetrics(ms []Metric) ([]appMetric, error) {
	var out []appMetric
	for i, m := range ms {
		num, err := appQueryOf(fmt.Sprintf("metrics[%d].numerator", i), m.Numerator)
		if err != nil {
			return nil, err
		}
		den, err := appQueryOf(fmt.Sprintf("metrics[%d].denominator", i), m.Denominator)
		if err != nil {
			return nil, err
		}
		out = append(out, appMetric{name: m.Name, num: num, den: den})
	}
	return out, nil
}

func appQueryOf(path string, q Query) (appQuery, error) {
	switch {
	case q.Namespace == "":
		return appQuery{}, providers.BadConfig("%s.namespace: is required, like MyApp or AWS/ApplicationELB", path)
	case q.MetricName == "":
		return appQuery{}, providers.BadConfig("%s.metricName: is required", path)
	case strings.Contains(q.Namespace, "{{"):
		return appQuery{}, providers.BadConfig("%s.namespace: %q: only dimension values take {{.Color}} and {{.Version}}", path, q.Namespace)
	case strings.Contains(q.MetricName, "{{"):
		return appQuery{}, providers.BadConfig("%s.metricName: %q: only dimension values take {{.Color}} and {{.Version}}", path, q.MetricName)
	case len(q.Dimensions) > maxDims:
		return appQuery{}, providers.BadConfig("%s.dimensions: %d dimensions, CloudWatch metrics have at most %d", path, len(q.Dimensions), maxDims)
	}
	aq := appQuery{path: path, namespace: q.Namespace, metricName: q.MetricName, stat: q.Stat}
	switch q.Stat {
	case "":
		aq.stat = "Sum"
	case "Sum", "SampleCount":
	default:
		return appQuery{}, providers.BadConfig("%s.stat: %q must be Sum or SampleCount: the judge adds steps up, and only those add up", path, q.Stat)
	}
	for name, v := range q.Dimensions {
		at := path + ".dimensions." + name
		if name == "" {
			return appQuery{}, providers.BadConfig("%s.dimensions: a dimension has no name", path)
		}
		t, err := template.New(at).Option("missingkey=error").Parse(v)
		var v1, v2 string
		if err == nil {
			// Executing finds the fields that do not exist, {{.Colour}};
			// two versions tell whether the value depends on the version.
			if v1, err = execute(t, tmplData{Color: string(providers.Green), Version: "v1"}); err == nil {
				v2, err = execute(t, tmplData{Color: string(providers.Green), Version: "v2"})
			}
			if err == nil && v1 == "" {
				err = fmt.Errorf("the value is empty")
			}
		}
		if err != nil {
			return appQuery{}, providers.BadConfig("%s: %q: %s (a value may use {{.Color}} and {{.Version}})", at, v, oneLine(err))
		}
		aq.dims = append(aq.dims, appDim{name: name, value: t, version: v1 != v2})
	}
	slices.SortFunc(aq.dims, func(a, b appDim) int { return strings.Compare(a.name, b.name) })
	return aq, nil
}

func execute(t *template.Template, data tmplData) (string, error) {
	var sb strings.Builder
	err := t.Execute(&sb, data)
	return sb.String(), err
}

// oneLine is err's message without the template package's location prefix.
func oneLine(err error) string {
	msg := strings.ReplaceAll(err.Error(), "\n", " ")
	if i := strings.LastIndex(msg, ": "); i >= 0 && strings.HasPrefix(msg, "template: ") {
		msg = msg[i+2:]
	}
	return strings.ReplaceAll(msg, "in type cloudwatch.tmplData", "(there are .Color and .Version)")
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

// NewBuilder returns the registry entry for the CloudWatch provider.
func NewBuilder() providers.Builder {
	return providers.Builder{Type: Type, New: func(s map[string]any) (any, error) { return New(s) }}
}

// Type names the provider.
func (p *Provider) Type() string { return Type }

// Where names what the provider reads, for verdicts.
func (p *Provider) Where() string { return "cloudwatch " + namespace + " " + p.lb }

// Judge is the judge's configuration, with its defaults and the app metrics;
// latency is off when latencyBuckets is empty.
func (p *Provider) Judge() judge.Config { return p.cfg }

// Step is the period: CloudWatch's resolution for every query.
func (p *Provider) Step() time.Duration { return p.period }

// Lag is how long after a period's end it is read (delay): a comparison reads
// on for that long after its window, so its last periods are judged too.
func (p *Provider) Lag() time.Duration { return p.delay }

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
