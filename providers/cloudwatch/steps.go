package cloudwatch

import (
	"context"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	cw "github.com/aws/aws-sdk-go-v2/service/cloudwatch"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatch/types"

	"github.com/cutoverhq/cutover/judge"
	"github.com/cutoverhq/cutover/providers"
	"github.com/cutoverhq/cutover/providers/awsapi"
)

// ALB's target group metrics.
const (
	metricReqs = "RequestCount"
	metricErrs = "HTTPCode_Target_5XX_Count"
	metricLat  = "TargetResponseTime"
	idRequests = "requests"
	idErrors   = "errors"
)

// latID is the query ID of latency bucket i; numID and denID those of app
// metric i's numerator and denominator. IDs start with a lower-case letter,
// as CloudWatch requires.
func latID(i int) string { return "lat" + strconv.Itoa(i) }
func numID(i int) string { return "m" + strconv.Itoa(i) + "num" }
func denID(i int) string { return "m" + strconv.Itoa(i) + "den" }

// series holds one color's answer: by query ID, then by period start.
type series map[string]map[time.Time]float64

// Steps reads both colors' periods that end after from and at or before to,
// one judge.Step each, oldest first; a period with no datapoint at all is
// still a step, of NaN counts, so that the caller sees the hole.
//
// It returns only periods that ended at least the delay ago (and at most one
// call's worth of them): CloudWatch's newest datapoints arrive late, and a
// period read before they have would be judged on part of its requests. The
// steps may therefore end before to, or be none yet; the caller reads on from
// the last step's End.
//
// step must be the provider's period (Step): CloudWatch computes each query's
// statistics per period, so there is no other resolution to read.
func (p *Provider) Steps(ctx context.Context, r providers.Ref, from, to time.Time, step time.Duration) ([]judge.Step, error) {
	if step != p.period {
		return nil, providers.Invalid("cloudwatch steps: the step %s is not the period %s", step, p.period)
	}
	first := p.align(from).Add(p.period) // the first period to end after from
	last := p.align(to)
	if done := p.align(p.now().Add(-p.delay)); done.Before(last) {
		last = done
	}
	if limit := first.Add(time.Duration(p.maxPeriods-1) * p.period); limit.Before(last) {
		last = limit
	}
	if last.Before(first) {
		return nil, nil
	}
	start, end := first.Add(-p.period), last
	type result struct {
		s   series
		err error
	}
	var blue, green result
	var wg sync.WaitGroup
	wg.Go(func() { blue.s, blue.err = p.read(ctx, r, providers.Blue, start, end) })
	wg.Go(func() { green.s, green.err = p.read(ctx, r, providers.Green, start, end) })
	wg.Wait()
	if ctx.Err() != nil {
		return nil, ctx.Err()
	}
	if err := firstErr(blue.err, green.err); err != nil {
		return nil, err
	}
	var steps []judge.Step
	for t := start; t.Before(end); t = t.Add(p.period) {
		steps = append(steps, judge.Step{End: t.Add(p.period), Blue: p.color(blue.s, t), Green: p.color(green.s, t)})
	}
	return steps, nil
}

// align rounds t down to a period boundary, counted from the Unix epoch.
func (p *Provider) align(t time.Time) time.Time {
	off := time.Duration(t.UnixNano() % int64(p.period))
	if off < 0 {
		off += p.period
	}
	return t.Add(-off).UTC()
}

// color assembles one color's numbers for the period that starts at t.
//
// Requests is NaN without a RequestCount datapoint: no data, never zero.
// Errors is NaN then too; with requests and no 5XX datapoint it is 0, since
// ALB publishes no zero counts.
func (p *Provider) color(s series, t time.Time) judge.Color {
	nan := math.NaN()
	c := judge.Color{Requests: nan, Errors: nan}
	if v, ok := s[idRequests][t]; ok {
		c.Requests, c.Errors = v, 0
		if e, ok := s[idErrors][t]; ok {
			c.Errors = e
		}
	}
	if p.bounds != nil {
		c.Latency = p.histogram(s, t)
	}
	if len(p.metrics) > 0 {
		c.Metrics = make(map[string]judge.Pair, len(p.metrics))
		get := func(id string) float64 {
			if v, ok := s[id][t]; ok {
				return v
			}
			return nan
		}
		for i, m := range p.metrics {
			pair := judge.Pair{Num: get(numID(i)), Den: get(denID(i))}
			// An app that publishes a datapoint per event publishes none
			// in a period without events: with trials, no events is 0.
			if math.IsNaN(pair.Num) && !math.IsNaN(pair.Den) {
				pair.Num = 0
			}
			c.Metrics[m.name] = pair
		}
	}
	return c
}

// histogram assembles the period's latency buckets from the TC queries.
//
// Without any TC datapoint the histogram is empty, no latency data, even when
// RequestCount has one: TargetResponseTime has no sample for the period
// (requests the load balancer answered itself, or its datapoint not published
// yet), and a histogram of zeros would claim the requests were seen and none
// was slow, where nothing is known.
//
// With some, a bucket without a datapoint counts 0: every TC query counts the
// same samples, so only a range that holds none can be missing, whether
// CloudWatch answers such a range with 0 or with nothing (its documentation
// does not say).
func (p *Provider) histogram(s series, t time.Time) judge.Histogram {
	counts := make([]float64, len(p.bounds)+1)
	seen := false
	for i := range counts {
		if v, ok := s[latID(i)][t]; ok {
			counts[i], seen = v, true
		}
	}
	if !seen {
		return judge.Histogram{}
	}
	return judge.Histogram{Bounds: p.bounds, Counts: counts}
}

// latencyStat is bucket i's statistic: TC(lower:upper), samples with
// lower < value <= upper; the first has no lower bound, the last no upper.
func (p *Provider) latencyStat(i int) string {
	lo, hi := "", ""
	if i > 0 {
		lo = bound(p.bounds[i-1])
	}
	if i < len(p.bounds) {
		hi = bound(p.bounds[i])
	}
	return "TC(" + lo + ":" + hi + ")"
}

// queries are one color's queries.
func (p *Provider) queries(r providers.Ref, c providers.Color) ([]types.MetricDataQuery, error) {
	tg := p.blueTG
	version := r.PreviousVersion
	if c == providers.Green {
		tg, version = p.greenTG, r.Version
	}
	period := aws.Int32(int32(p.period / time.Second))
	q := func(id, ns, metric, stat string, dims []types.Dimension) types.MetricDataQuery {
		return types.MetricDataQuery{
			Id: aws.String(id),
			MetricStat: &types.MetricStat{
				Metric: &types.Metric{Namespace: aws.String(ns), MetricName: aws.String(metric), Dimensions: dims},
				Period: period,
				Stat:   aws.String(stat),
			},
			ReturnData: aws.Bool(true),
		}
	}
	alb := []types.Dimension{{Name: aws.String(dimLB), Value: aws.String(p.lb)}, {Name: aws.String(dimTG), Value: aws.String(tg)}}
	qs := []types.MetricDataQuery{
		q(idRequests, namespace, metricReqs, "Sum", alb),
		q(idErrors, namespace, metricErrs, "Sum", alb),
	}
	if p.bounds != nil {
		for i := range len(p.bounds) + 1 {
			qs = append(qs, q(latID(i), namespace, metricLat, p.latencyStat(i), alb))
		}
	}
	data := tmplData{Color: string(c), Version: version}
	for i, m := range p.metrics {
		for _, x := range []struct {
			id string
			q  appQuery
		}{{numID(i), m.num}, {denID(i), m.den}} {
			dims, err := x.q.dimensions(data)
			if err != nil {
				return nil, err
			}
			qs = append(qs, q(x.id, x.q.namespace, x.q.metricName, x.q.stat, dims))
		}
	}
	return qs, nil
}

// dimensions renders the query's dimensions for a color.
func (q appQuery) dimensions(data tmplData) ([]types.Dimension, error) {
	var out []types.Dimension
	for _, d := range q.dims {
		if d.version && data.Version == "" {
			return nil, providers.Invalid("%s.dimensions.%s: uses {{.Version}}, and %s has no version (the release names no previous version)", q.path, d.name, data.Color)
		}
		v, err := execute(d.value, data)
		if err == nil && v == "" {
			err = fmt.Errorf("the value for %s is empty", data.Color)
		}
		if err != nil {
			return nil, providers.Invalid("%s.dimensions.%s: %s", q.path, d.name, oneLine(err))
		}
		out = append(out, types.Dimension{Name: aws.String(d.name), Value: aws.String(v)})
	}
	return out, nil
}

// read makes a color's GetMetricData call over [start, end), following
// NextToken, and collects the datapoints by query.
func (p *Provider) read(ctx context.Context, r providers.Ref, c providers.Color, start, end time.Time) (series, error) {
	tg := p.blueTG
	if c == providers.Green {
		tg = p.greenTG
	}
	what := fmt.Sprintf("GetMetricData for %s (%s)", c, tg)
	qs, err := p.queries(r, c)
	if err != nil {
		return nil, err
	}
	client, err := p.cloudwatch(ctx)
	if err != nil {
		if permanent(err) {
			return nil, err
		}
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	in := &cw.GetMetricDataInput{
		StartTime:         aws.Time(start),
		EndTime:           aws.Time(end),
		ScanBy:            types.ScanByTimestampAscending,
		MetricDataQueries: qs,
	}
	out := series{}
	for page := 0; ; page++ {
		cctx, cancel := context.WithTimeout(ctx, callTimeout)
		res, err := client.GetMetricData(cctx, in)
		cancel()
		if err != nil {
			if ctx.Err() != nil {
				return nil, ctx.Err()
			}
			return nil, classify(err, what)
		}
		for _, res := range res.MetricDataResults {
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
			m := out[id]
			if m == nil {
				m = map[time.Time]float64{}
				out[id] = m
			}
			for i, t := range res.Timestamps {
				m[t.UTC()] = res.Values[i]
			}
		}
		if aws.ToString(res.NextToken) == "" {
			return out, nil
		}
		if page+1 >= maxNextPages {
			return nil, fmt.Errorf("%s: still paging after %d pages", what, page+1)
		}
		in.NextToken = res.NextToken
	}
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

// classify gives a CloudWatch error its kind through awsapi.Classify; the
// SDK's retryer has already retried throttling and 5xx by the time it gets
// here. A malformed statistic is CloudWatch's ValidationError: permanent.
func classify(err error, what string) error {
	return awsapi.Classify(err, what, "ResourceNotFound", "ResourceNotFoundException")
}

func permanent(err error) bool {
	return errors.Is(err, providers.ErrBadConfig) || errors.Is(err, providers.ErrInvalid) || errors.Is(err, providers.ErrNotFound)
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
