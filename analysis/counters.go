package analysis

import (
	"fmt"
	"hash/fnv"
	"math"
	"slices"
	"strconv"

	"github.com/cutoverhq/cutover/judge"
	"github.com/cutoverhq/cutover/providers"
)

// counters turns snapshots of cumulative counters into the judge's steps. It
// is the one place where counter resets are handled, the way Prometheus's
// increase() handles them: a counter that went down was reset, and counts
// from zero, so its new value is all of its increase. Every reset is named in
// the step so that the verdict can show it. A counter never seen before
// counts from zero too (a new instance's first requests are not lost); one
// that was seen before but is missing from a snapshot keeps its last value,
// so a scrape that misses a series for a step does not count its whole
// history again when it comes back.
type counters struct {
	// Last is each counter's last value, by a hash of its ID (kept short:
	// it travels in every heartbeat).
	Last map[string]float64 `json:"last,omitempty"`
}

// seriesKey identifies a counter by its color, field, metric and ID: a
// source may give one series twice (a 5xx request counter is both a request
// and an error counter).
func seriesKey(x Series) string {
	h := fnv.New64a()
	for _, s := range []string{string(x.Color), string(x.Field), x.Metric, x.ID} {
		h.Write([]byte(s))
		h.Write([]byte{0})
	}
	return strconv.FormatUint(h.Sum64(), 36)
}

// baseline records a snapshot's values without making a step of them.
func (c *counters) baseline(s Snapshot) {
	if c.Last == nil {
		c.Last = map[string]float64{}
	}
	for _, x := range s.Series {
		if !math.IsNaN(x.Value) {
			c.Last[seriesKey(x)] = x.Value
		}
	}
}

// step is what happened between the last values and snapshot s.
func (c *counters) step(s Snapshot) judge.Step {
	if c.Last == nil {
		c.Last = map[string]float64{}
	}
	acc := map[providers.Color]*colorAcc{providers.Blue: newColorAcc(), providers.Green: newColorAcc()}
	st := judge.Step{End: s.At}
	resets := 0
	named := map[string]bool{} // a series given under two fields resets once
	for _, x := range s.Series {
		a := acc[x.Color]
		if a == nil || math.IsNaN(x.Value) {
			continue
		}
		k := seriesKey(x)
		prev, seen := c.Last[k]
		d := x.Value - prev
		if seen && d < 0 {
			d = x.Value
			if !named[x.ID] {
				named[x.ID] = true
				resets++
			}
			if resets <= 3 && len(st.Resets) < resets {
				st.Resets = append(st.Resets, fmt.Sprintf("%s went from %s to %s at %s",
					x.ID, strconv.FormatFloat(prev, 'g', -1, 64), strconv.FormatFloat(x.Value, 'g', -1, 64), s.At.UTC().Format("15:04:05")))
			}
		}
		c.Last[k] = x.Value
		a.add(x, d)
	}
	if resets > 3 {
		st.Resets = append(st.Resets, fmt.Sprintf("and %d more counters reset at %s", resets-3, s.At.UTC().Format("15:04:05")))
	}
	st.Blue, st.Green = acc[providers.Blue].color(), acc[providers.Green].color()
	return st
}

// colorAcc sums one color's increases by field.
type colorAcc struct {
	requests, errors float64
	hasReq, hasErr   bool
	buckets          map[float64]float64 // le -> increase of the cumulative bucket
	metrics          map[string]*judge.Pair
}

func newColorAcc() *colorAcc {
	return &colorAcc{buckets: map[float64]float64{}, metrics: map[string]*judge.Pair{}}
}

func (a *colorAcc) add(x Series, d float64) {
	switch x.Field {
	case FieldRequests:
		a.requests += d
		a.hasReq = true
	case FieldErrors:
		a.errors += d
		a.hasErr = true
	case FieldBucket:
		a.buckets[x.Le] += d
	case FieldNum, FieldDen:
		p := a.metrics[x.Metric]
		if p == nil {
			p = &judge.Pair{}
			a.metrics[x.Metric] = p
		}
		if x.Field == FieldNum {
			p.Num += d
		} else {
			p.Den += d
		}
	}
}

// color is the color's step: NaN requests when the source had no request
// counter for it, 0 errors when it had requests but no error counter yet (a
// 5xx series appears with the first 5xx), and the latency histogram from the
// cumulative buckets, which needs the +Inf bucket.
func (a *colorAcc) color() judge.Color {
	c := judge.Color{Requests: math.NaN(), Errors: math.NaN()}
	if a.hasReq {
		c.Requests, c.Errors = a.requests, 0
	}
	if a.hasErr {
		c.Errors = a.errors
	}
	if inf, ok := a.buckets[math.Inf(1)]; ok && len(a.buckets) > 1 {
		les := make([]float64, 0, len(a.buckets))
		for le := range a.buckets {
			if !math.IsInf(le, 1) {
				les = append(les, le)
			}
		}
		slices.Sort(les)
		h := judge.Histogram{Bounds: les, Counts: make([]float64, len(les)+1)}
		prev := 0.0
		for i, le := range les {
			h.Counts[i] = a.buckets[le] - prev
			prev = a.buckets[le]
		}
		h.Counts[len(les)] = inf - prev
		c.Latency = h
	}
	if len(a.metrics) > 0 {
		c.Metrics = map[string]judge.Pair{}
		for n, p := range a.metrics {
			c.Metrics[n] = *p
		}
	}
	return c
}
