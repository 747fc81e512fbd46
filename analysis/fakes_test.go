package analysis

// Fakes for the analysis tests: a fake clock whose Sleep advances time at
// once, a deterministic synthetic service that serves blue and green traffic
// second by second, and in-memory sources that read it the three ways
// (Snapshotter like the scrape provider, Ranger like Prometheus, Stepper like
// CloudWatch).

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/cutoverhq/cutover/judge"
	"github.com/cutoverhq/cutover/providers"
	"github.com/cutoverhq/cutover/verdict"
)

// t0 is the start of every synthetic soak and window: a round time, so that
// step and period boundaries fall on it.
var t0 = time.Date(2026, 3, 14, 10, 0, 0, 0, time.UTC)

var testRef = providers.Ref{App: "shop", Version: "v2", PreviousVersion: "v1"}

// errorsOnly is a judge for sources without latency histograms.
var errorsOnly = judge.Config{Latency: judge.LatencyConfig{Off: true}}

// ---------------------------------------------------------------------------
// The fake clock.

// fakeClock is a Clock whose Sleep advances the time at once. Late adds to
// every sleep, as a real timer fires a little after it was due. When cancel is
// set, a sleep that would reach cancelAt cancels the context instead (the
// worker dies there) and the time stops at cancelAt.
type fakeClock struct {
	t      time.Time
	late   time.Duration
	sleeps int

	cancelAt time.Time
	cancel   context.CancelFunc
}

// maxSleeps bounds a loop under test: a loop that never ends fails the test
// instead of hanging it.
const maxSleeps = 200000

var errRunaway = errors.New("fake clock: too many sleeps, the loop does not end")

func newClock(at time.Time) *fakeClock { return &fakeClock{t: at} }

func (c *fakeClock) Now() time.Time { return c.t }

func (c *fakeClock) Sleep(ctx context.Context, d time.Duration) error {
	c.sleeps++
	if c.sleeps > maxSleeps {
		return errRunaway
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	to := c.t
	if d > 0 {
		to = to.Add(d + c.late)
	}
	if c.cancel != nil && !to.Before(c.cancelAt) {
		c.t = c.cancelAt
		c.cancel()
		return ctx.Err()
	}
	c.t = to
	return nil
}

func (c *fakeClock) Clock() Clock { return Clock{Now: c.Now, Sleep: c.Sleep} }

// ---------------------------------------------------------------------------
// The synthetic service.

// behaviour is how one color serves during one second.
type behaviour struct {
	// RPS is the mean number of requests per second.
	RPS float64
	// ErrRate is the probability that a request fails with a 5xx.
	ErrRate float64
	// Median is the median latency in seconds (log-normal, sigma 0.5); 0
	// means 50ms.
	Median float64
}

// second is what a color served in one second.
type second struct {
	req, err float64
	lat      []float64 // per bucket (not cumulative), the last one above every bound
}

// service is a blue and a green pool serving requests, second by second from
// origin. Every second's numbers come from its own seeded generator, so the
// same second always gives the same traffic, whatever order it is read in.
type service struct {
	origin time.Time
	seed   uint64
	// of gives each color's behaviour in the second that starts sec seconds
	// after origin.
	of func(c providers.Color, sec int) behaviour
	// bounds are the latency buckets' upper bounds; nil: no latency.
	bounds []float64
	// restarts are when a color's instance restarted: its counters start
	// again from zero.
	restarts map[providers.Color][]time.Time

	cum map[providers.Color][]second // cumulative after 0, 1, 2... seconds
}

func newService(seed uint64, of func(c providers.Color, sec int) behaviour) *service {
	return &service{origin: t0, seed: seed, of: of, cum: map[providers.Color][]second{}}
}

// steady is a service whose colors behave the same all the time.
func steady(seed uint64, blue, green behaviour) *service {
	return newService(seed, func(c providers.Color, _ int) behaviour {
		if c == providers.Blue {
			return blue
		}
		return green
	})
}

func (s *service) gen(c providers.Color, sec int) second {
	b := s.of(c, sec)
	ci := uint64(1)
	if c == providers.Green {
		ci = 2
	}
	rng := rand.New(rand.NewPCG(s.seed, uint64(sec)*4+ci))
	// Requests vary by ±20% around the mean, rounded at random.
	mean := b.RPS * (0.8 + 0.4*rng.Float64())
	n := math.Floor(mean)
	if rng.Float64() < mean-n {
		n++
	}
	out := second{req: n, lat: make([]float64, len(s.bounds)+1)}
	med := b.Median
	if med == 0 {
		med = 0.05
	}
	for range int(n) {
		if rng.Float64() < b.ErrRate {
			out.err++
		}
		if len(s.bounds) > 0 {
			l := med * math.Exp(0.5*rng.NormFloat64())
			i := 0
			for i < len(s.bounds) && l > s.bounds[i] {
				i++
			}
			out.lat[i]++
		}
	}
	return out
}

// total is what color c served from origin to at (whole seconds).
func (s *service) total(c providers.Color, at time.Time) second {
	secs := int(at.Sub(s.origin) / time.Second)
	if secs <= 0 {
		return second{lat: make([]float64, len(s.bounds)+1)}
	}
	cum := s.cum[c]
	if len(cum) == 0 {
		cum = append(cum, second{lat: make([]float64, len(s.bounds)+1)})
	}
	for len(cum) <= secs {
		prev, g := cum[len(cum)-1], s.gen(c, len(cum)-1)
		next := second{req: prev.req + g.req, err: prev.err + g.err, lat: make([]float64, len(prev.lat))}
		for i := range prev.lat {
			next.lat[i] = prev.lat[i] + g.lat[i]
		}
		cum = append(cum, next)
	}
	s.cum[c] = cum
	return cum[secs]
}

// served is what color c served in (from, to].
func (s *service) served(c providers.Color, from, to time.Time) second {
	a, b := s.total(c, from), s.total(c, to)
	out := second{req: b.req - a.req, err: b.err - a.err, lat: make([]float64, len(a.lat))}
	for i := range a.lat {
		out.lat[i] = b.lat[i] - a.lat[i]
	}
	return out
}

// counterAt is color c's counters as its instance reports them at `at`: what
// it served since its last restart.
func (s *service) counterAt(c providers.Color, at time.Time) second {
	from := s.origin
	for _, r := range s.restarts[c] {
		if !r.After(at) && r.After(from) {
			from = r
		}
	}
	return s.served(c, from, at)
}

// snapshot is the service's counters at `at`, as a /metrics page gives them:
// a request counter per status code (the 5xx one only once there was a 5xx,
// and given both as requests and as errors, as the Prometheus provider does)
// and the cumulative latency buckets.
func (s *service) snapshot(at time.Time) Snapshot {
	snap := Snapshot{At: at}
	for _, c := range []providers.Color{providers.Blue, providers.Green} {
		v := s.counterAt(c, at)
		id := func(code string) string {
			return fmt.Sprintf(`http_requests_total{color=%q,code=%q}`, c, code)
		}
		snap.Series = append(snap.Series, Series{ID: id("200"), Color: c, Field: FieldRequests, Value: v.req - v.err})
		if v.err > 0 {
			snap.Series = append(snap.Series,
				Series{ID: id("500"), Color: c, Field: FieldRequests, Value: v.err},
				Series{ID: id("500"), Color: c, Field: FieldErrors, Value: v.err})
		}
		if len(s.bounds) > 0 {
			cum := 0.0
			for i, le := range append(append([]float64(nil), s.bounds...), math.Inf(1)) {
				cum += v.lat[i]
				snap.Series = append(snap.Series, Series{
					ID:    fmt.Sprintf(`http_request_duration_seconds_bucket{color=%q,le="%g"}`, c, le),
					Color: c, Field: FieldBucket, Le: le, Value: cum,
				})
			}
		}
	}
	return snap
}

// stepOf is what both colors served in (from, to], as a Stepper gives it.
func (s *service) stepOf(from, to time.Time) judge.Step {
	st := judge.Step{End: to}
	for _, c := range []providers.Color{providers.Blue, providers.Green} {
		v := s.served(c, from, to)
		col := judge.Color{Requests: v.req, Errors: v.err}
		if len(s.bounds) > 0 {
			col.Latency = judge.Histogram{Bounds: s.bounds, Counts: v.lat}
		}
		if c == providers.Blue {
			st.Blue = col
		} else {
			st.Green = col
		}
	}
	return st
}

// ---------------------------------------------------------------------------
// Sources.

// fakeBase is what every fake source has: Source's methods, the service it
// reads, the clock it reads by, and the errors it fails with.
type fakeBase struct {
	svc  *service
	clk  *fakeClock
	cfg  judge.Config
	step time.Duration
	// fail, when set, is the error of a read at the given time (nil: it
	// works).
	fail  func(now time.Time) error
	reads int
	// readAt are the times of the reads that worked.
	readAt []time.Time
}

func (b *fakeBase) Type() string        { return "fake" }
func (b *fakeBase) Where() string       { return "fake http://shop.test/metrics" }
func (b *fakeBase) Judge() judge.Config { return b.cfg }
func (b *fakeBase) Step() time.Duration { return b.step }

func (b *fakeBase) check() error {
	b.reads++
	if b.fail != nil {
		if err := b.fail(b.clk.Now()); err != nil {
			return err
		}
	}
	b.readAt = append(b.readAt, b.clk.Now())
	return nil
}

// snapSource scrapes the service: a snapshot of its counters at the moment
// of the read, taken `latency` after the read begins (a scrape takes time).
type snapSource struct {
	fakeBase
	latency time.Duration
}

func (s *snapSource) Snapshot(ctx context.Context, r providers.Ref) (Snapshot, error) {
	if err := s.check(); err != nil {
		return Snapshot{}, err
	}
	return s.svc.snapshot(s.clk.Now().Add(s.latency)), nil
}

// rangeSource reads the service like a Prometheus range query: one snapshot
// per step from `from` to `to`, both included, on the grid of `from`.
type rangeSource struct {
	fakeBase
	calls [][2]time.Time
}

func (s *rangeSource) Range(ctx context.Context, r providers.Ref, from, to time.Time, step time.Duration) ([]Snapshot, error) {
	s.calls = append(s.calls, [2]time.Time{from, to})
	if err := s.check(); err != nil {
		return nil, err
	}
	if to.After(s.clk.Now()) {
		return nil, fmt.Errorf("fake range: asked up to %s, the future", to)
	}
	var out []Snapshot
	for at := from; !at.After(to); at = at.Add(step) {
		out = append(out, s.svc.snapshot(at))
	}
	return out, nil
}

// stepSource reads the service like CloudWatch: the periods on the grid of
// the service's origin that end after `from` and at or before `to`, but only
// those that ended at least `delay` ago (newer data are not published yet).
type stepSource struct {
	fakeBase
	delay time.Duration
	calls [][2]time.Time
}

func (s *stepSource) Steps(ctx context.Context, r providers.Ref, from, to time.Time, step time.Duration) ([]judge.Step, error) {
	s.calls = append(s.calls, [2]time.Time{from, to})
	if err := s.check(); err != nil {
		return nil, err
	}
	published := s.clk.Now().Add(-s.delay)
	k := int(from.Sub(s.svc.origin)/step) + 1
	var out []judge.Step
	for ; ; k++ {
		end := s.svc.origin.Add(time.Duration(k) * step)
		if end.After(to) || end.After(published) {
			return out, nil
		}
		out = append(out, s.svc.stepOf(end.Add(-step), end))
	}
}

// lagSource is a stepSource that says how late its data arrive.
type lagSource struct {
	stepSource
	lag time.Duration
}

func (s *lagSource) Lag() time.Duration { return s.lag }

func base(svc *service, clk *fakeClock, cfg judge.Config, step time.Duration) fakeBase {
	return fakeBase{svc: svc, clk: clk, cfg: cfg, step: step}
}

// ---------------------------------------------------------------------------
// Helpers.

// saves records every progress a loop saves, with the time it was saved.
type saves struct {
	clk *fakeClock
	b   [][]byte
	at  []time.Time
}

func (s *saves) save(b []byte) {
	s.b = append(s.b, bytes.Clone(b))
	s.at = append(s.at, s.clk.Now())
}

func (s *saves) last(t *testing.T) []byte {
	t.Helper()
	if len(s.b) == 0 {
		t.Fatal("nothing was saved")
	}
	return s.b[len(s.b)-1]
}

// value is a metric's named number in a verdict, NaN when it is not there.
func value(v verdict.Verdict, metric, name string) float64 {
	for _, m := range v.Metrics {
		if m.Name != metric {
			continue
		}
		for _, x := range m.Values {
			if x.Name == name {
				return x.Value
			}
		}
	}
	return math.NaN()
}

func hasNote(v verdict.Verdict, sub string) bool {
	for _, n := range v.Notes {
		if strings.Contains(n, sub) {
			return true
		}
	}
	return false
}

// transient is a read failure worth retrying.
var transient = errors.New("dial tcp 10.0.0.7:8081: connection refused")

// failBetween fails reads at times in [from, to).
func failBetween(from, to time.Time) func(time.Time) error {
	return func(now time.Time) error {
		if !now.Before(from) && now.Before(to) {
			return transient
		}
		return nil
	}
}

// at is t0 plus d.
func at(d time.Duration) time.Time { return t0.Add(d) }

// since is how long after t0 the clock is.
func since(c *fakeClock) time.Duration { return c.t.Sub(t0) }

// jsonRoundTrip is the reader as a heartbeat brings it back.
func jsonRoundTrip(rd reader) (reader, error) {
	b, err := json.Marshal(rd)
	if err != nil {
		return reader{}, err
	}
	var out reader
	err = json.Unmarshal(b, &out)
	return out, err
}
