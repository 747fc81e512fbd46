package scrape

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/url"
	"slices"
	"sort"
	"strings"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/cutoverhq/cutover/judge"
	"github.com/cutoverhq/cutover/providers"
)

// maxBody bounds what one scrape reads.
const maxBody = 32 << 20

// snapshot is what one scrape read, by series (its label signature).
type snapshot struct {
	at       time.Time
	counters map[string]counter
	hists    map[string]hist
}

// counter is one series of the requests counter.
type counter struct {
	color string
	value float64
	isErr bool // its code matches metrics.errorCodes
}

// hist is one series of the duration histogram.
type hist struct {
	color      string
	sum, count float64
	buckets    map[float64]float64 // upper bound → cumulative count, with +Inf
}

// scrape reads the endpoint once.
func (p *Provider) scrape(ctx context.Context) (snapshot, error) {
	ctx, cancel := context.WithTimeout(ctx, p.s.Timeout.D())
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, p.s.URL, nil)
	if err != nil {
		return snapshot{}, providers.BadConfig("url: %v", err)
	}
	// Only the text format, which the parser reads.
	req.Header.Set("Accept", "text/plain;version=0.0.4;q=1,*/*;q=0.1")
	if p.s.Token != nil {
		tok, err := p.s.Token.Resolve()
		if err != nil {
			return snapshot{}, providers.BadConfig("token: %v", err)
		}
		req.Header.Set("Authorization", "Bearer "+tok)
	}
	resp, err := p.client.Do(req)
	if err != nil {
		return snapshot{}, p.cause(ctx, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 256))
		msg := strings.Join(strings.Fields(string(b)), " ")
		return snapshot{}, fmt.Errorf("HTTP %d %s", resp.StatusCode, msg)
	}
	parser := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := parser.TextToMetricFamilies(io.LimitReader(resp.Body, maxBody))
	if err != nil {
		return snapshot{}, fmt.Errorf("read the text format: %w", p.cause(ctx, err))
	}
	return p.read(fams, time.Now()), nil
}

// cause drops the URL an HTTP error repeats (the verdict names it already)
// and words the scrape's own timeout.
func (p *Provider) cause(ctx context.Context, err error) error {
	if errors.Is(err, context.DeadlineExceeded) && ctx.Err() != nil {
		return fmt.Errorf("no answer within %s", p.s.Timeout)
	}
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err
	}
	return err
}

// read keeps the series of the two metrics that belong to blue or green.
func (p *Provider) read(fams map[string]*dto.MetricFamily, at time.Time) snapshot {
	m := p.s.Metrics
	s := snapshot{at: at, counters: map[string]counter{}, hists: map[string]hist{}}
	reqs := fams[m.Requests]
	if reqs == nil && !strings.HasSuffix(m.Requests, "_total") {
		reqs = fams[m.Requests+"_total"]
	}
	for _, met := range reqs.GetMetric() {
		color := label(met, m.ColorLabel)
		if color != string(providers.Blue) && color != string(providers.Green) {
			continue
		}
		var v float64
		switch {
		case met.Counter != nil:
			v = met.Counter.GetValue()
		case met.Untyped != nil:
			v = met.Untyped.GetValue()
		default:
			continue
		}
		s.counters[signature(met)] = counter{color: color, value: v, isErr: p.errRe.MatchString(label(met, m.CodeLabel))}
	}
	for _, met := range fams[m.Duration].GetMetric() {
		color := label(met, m.ColorLabel)
		h := met.GetHistogram()
		if h == nil || (color != string(providers.Blue) && color != string(providers.Green)) {
			continue
		}
		x := hist{color: color, sum: h.GetSampleSum(), count: float64(h.GetSampleCount()), buckets: map[float64]float64{}}
		if h.SampleCountFloat != nil {
			x.count = h.GetSampleCountFloat()
		}
		for _, b := range h.GetBucket() {
			c := float64(b.GetCumulativeCount())
			if b.CumulativeCountFloat != nil {
				c = b.GetCumulativeCountFloat()
			}
			x.buckets[b.GetUpperBound()] = c
		}
		if len(x.buckets) > 0 {
			x.buckets[math.Inf(1)] = x.count // the text format may leave it out
		}
		s.hists[signature(met)] = x
	}
	return s
}

func label(m *dto.Metric, name string) string {
	for _, l := range m.GetLabel() {
		if l.GetName() == name {
			return l.GetValue()
		}
	}
	return ""
}

// signature identifies a series by its sorted labels.
func signature(m *dto.Metric) string {
	ls := make([]string, 0, len(m.GetLabel()))
	for _, l := range m.GetLabel() {
		ls = append(ls, l.GetName()+"\xff"+l.GetValue())
	}
	slices.Sort(ls)
	return strings.Join(ls, "\xfe")
}

// points turns consecutive snapshots into a color's points, oldest first. Two
// snapshots further apart than freshFor make no point: it would not be a step.
func points(snaps []snapshot, color providers.Color) []judge.Point {
	var out []judge.Point
	for i := 1; i < len(snaps); i++ {
		if snaps[i].at.Sub(snaps[i-1].at) > freshFor {
			continue
		}
		out = append(out, diff(snaps[i-1], snaps[i], string(color)))
	}
	return out
}

// increase is a counter's growth between two readings; a decrease is a reset,
// after which the counter counts from zero.
func increase(before, after float64) float64 {
	if after < before {
		return after
	}
	return after - before
}

// diff is a color's step between two snapshots.
func diff(prev, cur snapshot, color string) judge.Point {
	pt := judge.Point{Time: cur.at, Latency: math.NaN(), P99: math.NaN()}
	for k, c := range cur.counters {
		if c.color != color {
			continue
		}
		d := increase(prev.counters[k].value, c.value) // absent before: 0
		pt.Requests += d
		if c.isErr {
			pt.Errors += d
		}
	}
	var sum, count float64
	buckets := map[float64]float64{}
	for k, h := range cur.hists {
		if h.color != color {
			continue
		}
		o, ok := prev.hists[k]
		if !ok || h.count < o.count {
			o = hist{} // new series, or reset: from zero
		}
		count += h.count - o.count
		sum += h.sum - o.sum
		for le, c := range h.buckets {
			buckets[le] += increase(o.buckets[le], c)
		}
	}
	if count > 0 {
		pt.Latency = sum / count
		bs := make([]bucket, 0, len(buckets))
		for le, c := range buckets {
			bs = append(bs, bucket{upperBound: le, count: c})
		}
		pt.P99 = histogramQuantile(0.99, bs)
	}
	return pt
}

// bucket is one cumulative bucket of a classic histogram.
type bucket struct {
	upperBound float64
	count      float64
}

// histogramQuantile is PromQL's histogram_quantile over classic buckets: it
// finds the bucket holding the q-quantile's rank and interpolates linearly
// inside it (from 0 for the first bucket when its upper bound is positive).
// A rank in the +Inf bucket gives the upper bound of the last finite bucket.
// NaN when there is no +Inf bucket, fewer than two buckets or no observations.
func histogramQuantile(q float64, buckets []bucket) float64 {
	switch {
	case math.IsNaN(q):
		return math.NaN()
	case q < 0:
		return math.Inf(-1)
	case q > 1:
		return math.Inf(1)
	}
	if len(buckets) == 0 {
		return math.NaN()
	}
	bs := slices.Clone(buckets)
	slices.SortFunc(bs, func(a, b bucket) int {
		switch {
		case a.upperBound < b.upperBound:
			return -1
		case a.upperBound > b.upperBound:
			return 1
		}
		return 0
	})
	if !math.IsInf(bs[len(bs)-1].upperBound, 1) {
		return math.NaN()
	}
	// Coalesce equal bounds, and make the counts monotonic, as PromQL does.
	merged := bs[:1]
	for _, b := range bs[1:] {
		if b.upperBound == merged[len(merged)-1].upperBound {
			merged[len(merged)-1].count += b.count
		} else {
			merged = append(merged, b)
		}
	}
	bs = merged
	for i := 1; i < len(bs); i++ {
		if bs[i].count < bs[i-1].count {
			bs[i].count = bs[i-1].count
		}
	}
	if len(bs) < 2 {
		return math.NaN()
	}
	observations := bs[len(bs)-1].count
	if observations == 0 {
		return math.NaN()
	}
	rank := q * observations
	b := sort.Search(len(bs)-1, func(i int) bool { return bs[i].count >= rank })
	if b == len(bs)-1 {
		return bs[len(bs)-2].upperBound
	}
	if b == 0 && bs[0].upperBound <= 0 {
		return bs[0].upperBound
	}
	var start float64
	end, count := bs[b].upperBound, bs[b].count
	if b > 0 {
		start = bs[b-1].upperBound
		count -= bs[b-1].count
		rank -= bs[b-1].count
	}
	return start + (end-start)*(rank/count)
}
