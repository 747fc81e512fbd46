package scrape

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/cutoverhq/cutover/analysis"
	"github.com/cutoverhq/cutover/providers"
)

// maxBody bounds what one scrape reads, in whole MiB: a page cut short would
// silently lose the series after the cut. A variable for the tests.
var maxBody int64 = 32 << 20

// page is what one scrape read.
type page struct {
	at   time.Time // when the target answered
	fams map[string]*dto.MetricFamily
}

// scrape reads the endpoint once.
func (p *Provider) scrape(ctx context.Context) (page, error) {
	sctx, cancel := context.WithTimeout(ctx, p.s.Timeout.D())
	defer cancel()
	req, err := http.NewRequestWithContext(sctx, http.MethodGet, p.s.URL, nil)
	if err != nil {
		return page{}, providers.BadConfig("url: %v", err)
	}
	// Only the text format, which the parser reads.
	req.Header.Set("Accept", "text/plain;version=0.0.4;q=1,*/*;q=0.1")
	if p.s.Token != nil {
		tok, err := p.s.Token.Resolve()
		if err != nil {
			return page{}, providers.BadConfig("token: %v", err)
		}
		req.Header.Set("Authorization", "Bearer "+tok)
	}
	resp, err := p.client.Do(req)
	if err != nil {
		return page{}, p.cause(ctx, sctx, err)
	}
	// A Prometheus client gathers its metrics before it sends the headers:
	// this is the moment the page describes, as near as the scraper can tell.
	at := time.Now()
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 256))
		msg := strings.Join(strings.Fields(string(b)), " ")
		return page{}, fmt.Errorf("HTTP %d %s", resp.StatusCode, msg)
	}
	parser := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := parser.TextToMetricFamilies(http.MaxBytesReader(nil, resp.Body, maxBody))
	if err != nil {
		if _, ok := errors.AsType[*http.MaxBytesError](err); ok {
			return page{}, fmt.Errorf("the page is larger than %d MiB", maxBody>>20)
		}
		return page{}, fmt.Errorf("read the text format: %w", p.cause(ctx, sctx, err))
	}
	return page{at: at, fams: fams}, nil
}

// cause drops the URL an HTTP error repeats (Where names it already) and
// words the scrape's own timeout.
func (p *Provider) cause(ctx, sctx context.Context, err error) error {
	if ctx.Err() == nil && errors.Is(sctx.Err(), context.DeadlineExceeded) {
		return fmt.Errorf("no answer within %s", p.s.Timeout)
	}
	if ue, ok := errors.AsType[*url.Error](err); ok {
		return ue.Err
	}
	return err
}

// read picks out of a page the series of the requests counter, the duration
// histogram and the app metrics that belong to blue or green.
func (p *Provider) read(pg page, r providers.Ref) ([]analysis.Series, error) {
	sr := p.s.Series
	var out []analysis.Series
	reqs, err := counterSamples(pg.fams, sr.Requests)
	if err != nil {
		return nil, providers.BadConfig("series.requests: %v", err)
	}
	for _, s := range reqs {
		c, ok := colorOf(s.labels, sr.ColorLabel)
		if !ok {
			continue
		}
		id := seriesID(s.name, s.labels, "")
		out = append(out, analysis.Series{ID: id, Color: c, Field: analysis.FieldRequests, Value: s.value})
		if p.errRe.MatchString(label(s.labels, sr.CodeLabel)) {
			out = append(out, analysis.Series{ID: id + " (errors)", Color: c, Field: analysis.FieldErrors, Value: s.value})
		}
	}
	buckets, err := p.buckets(pg.fams)
	if err != nil {
		return nil, err
	}
	out = append(out, buckets...)
	for i, m := range p.s.Metrics {
		for _, part := range []struct {
			setting, name string
			field         analysis.Field
		}{
			{"numerator", m.Numerator, analysis.FieldNum},
			{"denominator", m.Denominator, analysis.FieldDen},
		} {
			samples, err := counterSamples(pg.fams, part.name)
			if err != nil {
				return nil, providers.BadConfig("metrics[%d].%s: %v", i, part.setting, err)
			}
			for _, s := range samples {
				c, ok := colorOf(s.labels, sr.ColorLabel)
				if m.VersionLabel != "" {
					c, ok = versionColor(label(s.labels, m.VersionLabel), r)
				}
				if !ok {
					continue
				}
				// The same family may serve two metrics (orders are one
				// metric's numerator and another's denominator): the suffix
				// keeps the IDs apart.
				id := fmt.Sprintf("%s (%s %s)", seriesID(s.name, s.labels, ""), m.Name, part.setting)
				out = append(out, analysis.Series{ID: id, Color: c, Field: part.field, Metric: m.Name, Value: s.value})
			}
		}
	}
	// The text parser keeps a series the page lists twice; Prometheus would
	// refuse the page, and the analysis could not tell the two apart.
	seen := make(map[string]bool, len(out))
	for _, s := range out {
		if seen[s.ID] {
			return nil, fmt.Errorf("the page lists %s twice", s.ID)
		}
		seen[s.ID] = true
	}
	return out, nil
}

// buckets are the duration histogram's cumulative buckets, +Inf last with the
// histogram's count (the text format may leave the +Inf bucket out).
func (p *Provider) buckets(fams map[string]*dto.MetricFamily) ([]analysis.Series, error) {
	sr := p.s.Series
	f := fams[sr.Duration]
	if f == nil {
		return nil, nil
	}
	if f.GetType() != dto.MetricType_HISTOGRAM {
		return nil, providers.BadConfig("series.duration: %s is a %s, not a histogram", sr.Duration, typeName(f))
	}
	name := sr.Duration + "_bucket"
	var out []analysis.Series
	for _, m := range f.GetMetric() {
		c, ok := colorOf(m.GetLabel(), sr.ColorLabel)
		if !ok {
			continue
		}
		h := m.GetHistogram()
		inf, hasInf := 0.0, false
		bs := slices.Clone(h.GetBucket())
		slices.SortStableFunc(bs, func(a, b *dto.Bucket) int { return cmp.Compare(a.GetUpperBound(), b.GetUpperBound()) })
		for _, b := range bs {
			le := b.GetUpperBound()
			v := float64(b.GetCumulativeCount())
			if b.CumulativeCountFloat != nil {
				v = b.GetCumulativeCountFloat()
			}
			switch {
			case math.IsNaN(le):
				continue
			case math.IsInf(le, 1):
				inf, hasInf = v, true
				continue
			}
			out = append(out, analysis.Series{ID: seriesID(name, m.GetLabel(), formatLe(le)), Color: c, Field: analysis.FieldBucket, Le: le, Value: v})
		}
		switch {
		case h.SampleCountFloat != nil:
			inf, hasInf = h.GetSampleCountFloat(), true
		case h.SampleCount != nil:
			inf, hasInf = float64(h.GetSampleCount()), true
		}
		if hasInf {
			out = append(out, analysis.Series{ID: seriesID(name, m.GetLabel(), "+Inf"), Color: c, Field: analysis.FieldBucket, Le: math.Inf(1), Value: inf})
		}
	}
	return out, nil
}

// sample is one cumulative value on the page.
type sample struct {
	name   string // as on the page: foo_total, foo_sum
	labels []*dto.LabelPair
	value  float64
}

// counterSamples reads the samples called name: a counter or untyped family
// (name_total too, when name has no _total), or the _sum or _count of a
// histogram or summary family. A family that is not on the page has no
// samples (an app exposes a labelled counter only once it counted something);
// one of a type that is not cumulative is an error.
func counterSamples(fams map[string]*dto.MetricFamily, name string) ([]sample, error) {
	if f := fams[name]; f != nil {
		switch f.GetType() {
		case dto.MetricType_COUNTER, dto.MetricType_UNTYPED:
			return values(f, name), nil
		case dto.MetricType_HISTOGRAM, dto.MetricType_SUMMARY:
			return nil, fmt.Errorf("%s is a %s: name its %s_sum or %s_count", name, typeName(f), name, name)
		default:
			return nil, fmt.Errorf("%s is a %s, not a counter", name, typeName(f))
		}
	}
	if !strings.HasSuffix(name, "_total") {
		if f := fams[name+"_total"]; f != nil && (f.GetType() == dto.MetricType_COUNTER || f.GetType() == dto.MetricType_UNTYPED) {
			return values(f, name+"_total"), nil
		}
	}
	for _, suffix := range []string{"_sum", "_count"} {
		base, ok := strings.CutSuffix(name, suffix)
		if !ok {
			continue
		}
		// The parser files a histogram's or summary's _sum and _count under
		// the family's own name.
		f := fams[base]
		var out []sample
		for _, m := range f.GetMetric() {
			var v *float64
			switch f.GetType() {
			case dto.MetricType_HISTOGRAM:
				h := m.GetHistogram()
				switch {
				case suffix == "_sum":
					v = h.SampleSum
				case h.SampleCountFloat != nil:
					v = h.SampleCountFloat
				case h.SampleCount != nil:
					v = new(float64(h.GetSampleCount()))
				}
			case dto.MetricType_SUMMARY:
				s := m.GetSummary()
				switch {
				case suffix == "_sum":
					v = s.SampleSum
				case s.SampleCount != nil:
					v = new(float64(s.GetSampleCount()))
				}
			default:
				return nil, nil
			}
			if v != nil {
				out = append(out, sample{name: name, labels: m.GetLabel(), value: *v})
			}
		}
		return out, nil
	}
	return nil, nil
}

// values are a counter or untyped family's samples.
func values(f *dto.MetricFamily, name string) []sample {
	out := make([]sample, 0, len(f.GetMetric()))
	for _, m := range f.GetMetric() {
		var v float64
		switch {
		case m.Counter != nil:
			v = m.Counter.GetValue()
		case m.Untyped != nil:
			v = m.Untyped.GetValue()
		default:
			continue
		}
		out = append(out, sample{name: name, labels: m.GetLabel(), value: v})
	}
	return out
}

func typeName(f *dto.MetricFamily) string { return strings.ToLower(f.GetType().String()) }

// colorOf is a series' color by its color label.
func colorOf(labels []*dto.LabelPair, colorLabel string) (providers.Color, bool) {
	switch c := providers.Color(label(labels, colorLabel)); c {
	case providers.Blue, providers.Green:
		return c, true
	}
	return "", false
}

// versionColor is the color of the version a series counts for: the
// release's version is green, the previous one blue.
func versionColor(v string, r providers.Ref) (providers.Color, bool) {
	switch {
	case v == "" || r.Version == r.PreviousVersion:
		return "", false
	case v == r.Version:
		return providers.Green, true
	case v == r.PreviousVersion:
		return providers.Blue, true
	}
	return "", false
}

func label(labels []*dto.LabelPair, name string) string {
	for _, l := range labels {
		if l.GetName() == name {
			return l.GetValue()
		}
	}
	return ""
}

// seriesID names a series as Prometheus does: name{a="1",b="2"}, labels
// sorted, empty ones left out (Prometheus treats them as absent), with le for
// a bucket.
func seriesID(name string, labels []*dto.LabelPair, le string) string {
	type pair struct{ name, value string }
	ps := make([]pair, 0, len(labels)+1)
	for _, l := range labels {
		if l.GetValue() != "" {
			ps = append(ps, pair{l.GetName(), l.GetValue()})
		}
	}
	if le != "" {
		ps = append(ps, pair{model.BucketLabel, le})
	}
	if len(ps) == 0 {
		return name
	}
	slices.SortFunc(ps, func(a, b pair) int { return strings.Compare(a.name, b.name) })
	var b strings.Builder
	b.WriteString(name)
	for i, l := range ps {
		if i == 0 {
			b.WriteByte('{')
		} else {
			b.WriteByte(',')
		}
		if model.LegacyValidation.IsValidLabelName(l.name) {
			b.WriteString(l.name)
		} else {
			b.WriteString(strconv.Quote(l.name))
		}
		b.WriteString(`="`)
		b.WriteString(valueEscaper.Replace(l.value))
		b.WriteByte('"')
	}
	b.WriteByte('}')
	return b.String()
}

// valueEscaper escapes a label value as the text format does.
var valueEscaper = strings.NewReplacer(`\`, `\\`, `"`, `\"`, "\n", `\n`)

// formatLe writes a bucket bound as Prometheus clients do.
func formatLe(le float64) string {
	if math.IsInf(le, 1) {
		return "+Inf"
	}
	return strconv.FormatFloat(le, 'g', -1, 64)
}
