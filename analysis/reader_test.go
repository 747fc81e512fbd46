package analysis

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/cutoverhq/cutover/judge"
	"github.com/cutoverhq/cutover/providers"
)

var steadyTraffic = func() *service {
	return steady(7, behaviour{RPS: 50, ErrRate: 0.01}, behaviour{RPS: 40, ErrRate: 0.02})
}

// A scrape's first read is the counters' baseline: no step, since nothing is
// known of what came before. Every later read is one step, ending at the
// scrape, with what was served since the one before.
func TestReaderSnapshotterBaselineThenSteps(t *testing.T) {
	clk := newClock(at(5 * time.Second))
	svc := steadyTraffic()
	src := &snapSource{fakeBase: base(svc, clk, errorsOnly, 10*time.Second)}
	rd := reader{src: src, Since: t0}
	ctx := context.Background()

	got, err := rd.read(ctx, testRef, clk.Now())
	if err != nil || len(got) != 0 {
		t.Fatalf("first read: %d steps, %v; want a baseline and no step", len(got), err)
	}
	if !rd.Primed || !rd.Since.Equal(at(5*time.Second)) {
		t.Errorf("after the baseline: primed %v, since %s; want primed at the scrape's time", rd.Primed, rd.Since)
	}
	clk.t = at(17 * time.Second)
	got, err = rd.read(ctx, testRef, clk.Now())
	if err != nil || len(got) != 1 {
		t.Fatalf("second read: %d steps, %v; want 1", len(got), err)
	}
	st := got[0]
	if !st.End.Equal(at(17 * time.Second)) {
		t.Errorf("step ends at %s, want the scrape's time", st.End)
	}
	wantB, wantG := svc.served(providers.Blue, at(5*time.Second), at(17*time.Second)), svc.served(providers.Green, at(5*time.Second), at(17*time.Second))
	wantColor(t, "blue", st.Blue, wantB.req, wantB.err)
	wantColor(t, "green", st.Green, wantG.req, wantG.err)
	if wantG.req < 300 || wantG.err == 0 {
		t.Fatalf("the synthetic traffic is too thin to test with: %+v", wantG)
	}
}

// A failed scrape changes nothing: the next one counts everything since the
// last good one.
func TestReaderSnapshotterFailedReadLosesNothing(t *testing.T) {
	clk := newClock(t0)
	svc := steadyTraffic()
	src := &snapSource{fakeBase: base(svc, clk, errorsOnly, 10*time.Second)}
	src.fail = failBetween(at(10*time.Second), at(20*time.Second))
	rd := reader{src: src, Since: t0}
	ctx := context.Background()
	if _, err := rd.read(ctx, testRef, clk.Now()); err != nil {
		t.Fatal(err)
	}
	clk.t = at(10 * time.Second)
	if _, err := rd.read(ctx, testRef, clk.Now()); !errors.Is(err, transient) {
		t.Fatalf("read during the outage: %v, want the source's error", err)
	}
	clk.t = at(20 * time.Second)
	got, err := rd.read(ctx, testRef, clk.Now())
	if err != nil || len(got) != 1 {
		t.Fatalf("read after the outage: %d steps, %v", len(got), err)
	}
	w := svc.served(providers.Green, t0, at(20*time.Second))
	wantColor(t, "green over both intervals", got[0].Green, w.req, w.err)
}

// A range source is asked from the last point read to now. The first point
// of the first answer is the baseline; on later calls the point at `from`
// (which Prometheus returns again) is skipped; Since moves to the newest point.
func TestReaderRanger(t *testing.T) {
	clk := newClock(t0)
	svc := steadyTraffic()
	src := &rangeSource{fakeBase: base(svc, clk, errorsOnly, 10*time.Second)}
	rd := reader{src: src, Since: t0}
	ctx := context.Background()

	// At the window's start there is nothing to ask for yet.
	if got, err := rd.read(ctx, testRef, clk.Now()); err != nil || len(got) != 0 || len(src.calls) != 0 {
		t.Fatalf("read at Since: %d steps, %v, %d calls; want no call", len(got), err, len(src.calls))
	}
	clk.t = at(35 * time.Second)
	got, err := rd.read(ctx, testRef, clk.Now())
	if err != nil {
		t.Fatal(err)
	}
	if c := src.calls[0]; !c[0].Equal(t0) || !c[1].Equal(at(35*time.Second)) {
		t.Errorf("first call %s..%s, want Since..now", c[0], c[1])
	}
	// Points at 0 (baseline), 10, 20, 30.
	if len(got) != 3 {
		t.Fatalf("first read: %d steps, want 3 after the baseline", len(got))
	}
	for i, st := range got {
		end := at(time.Duration(i+1) * 10 * time.Second)
		if !st.End.Equal(end) {
			t.Errorf("step %d ends at %s, want %s", i, st.End, end)
		}
		w := svc.served(providers.Green, end.Add(-10*time.Second), end)
		wantColor(t, "green step", st.Green, w.req, w.err)
	}
	if !rd.Since.Equal(at(30 * time.Second)) {
		t.Errorf("since %s, want the newest point 30s", rd.Since)
	}

	clk.t = at(52 * time.Second)
	got, err = rd.read(ctx, testRef, clk.Now())
	if err != nil {
		t.Fatal(err)
	}
	if c := src.calls[1]; !c[0].Equal(at(30*time.Second)) || !c[1].Equal(at(52*time.Second)) {
		t.Errorf("second call %s..%s, want 30s..52s", c[0].Sub(t0), c[1].Sub(t0))
	}
	// The point at 30s is returned again and skipped: steps end at 40 and 50.
	if len(got) != 2 || !got[0].End.Equal(at(40*time.Second)) || !got[1].End.Equal(at(50*time.Second)) {
		t.Fatalf("second read: %d steps %v, want 40s and 50s", len(got), ends(got))
	}
	w := svc.served(providers.Green, at(30*time.Second), at(40*time.Second))
	wantColor(t, "green 30s..40s", got[0].Green, w.req, w.err)
	if !rd.Since.Equal(at(50 * time.Second)) {
		t.Errorf("since %s, want 50s", rd.Since)
	}
}

// staleRanger answers with points from before `from` too (a source that
// rounds its range down): those are neither steps nor a new baseline.
type staleRanger struct{ rangeSource }

func (s *staleRanger) Range(ctx context.Context, r providers.Ref, from, to time.Time, step time.Duration) ([]Snapshot, error) {
	snaps, err := s.rangeSource.Range(ctx, r, from.Add(-2*step), to, step)
	return snaps, err
}

func TestReaderRangerSkipsOldPoints(t *testing.T) {
	clk := newClock(at(30 * time.Second))
	svc := steadyTraffic()
	src := &staleRanger{rangeSource{fakeBase: base(svc, clk, errorsOnly, 10*time.Second)}}
	rd := reader{src: src, Since: at(10 * time.Second)}
	ctx := context.Background()
	if _, err := rd.read(ctx, testRef, clk.Now()); err != nil {
		t.Fatal(err)
	}
	clk.t = at(50 * time.Second)
	got, err := rd.read(ctx, testRef, clk.Now())
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || !got[0].End.Equal(at(40*time.Second)) {
		t.Fatalf("steps %v, want 40s and 50s only", ends(got))
	}
	w := svc.served(providers.Green, at(30*time.Second), at(40*time.Second))
	wantColor(t, "green 30s..40s", got[0].Green, w.req, w.err)
}

// A step source's steps are kept only when they end after Since (one that
// returns a period twice does not count it twice); Since moves to the newest.
type overlapStepper struct{ stepSource }

func (s *overlapStepper) Steps(ctx context.Context, r providers.Ref, from, to time.Time, step time.Duration) ([]judge.Step, error) {
	return s.stepSource.Steps(ctx, r, from.Add(-3*step), to, step)
}

func TestReaderStepper(t *testing.T) {
	clk := newClock(t0)
	svc := steadyTraffic()
	src := &overlapStepper{stepSource{fakeBase: base(svc, clk, errorsOnly, time.Minute)}}
	rd := reader{src: src, Since: t0}
	ctx := context.Background()
	if got, err := rd.read(ctx, testRef, clk.Now()); err != nil || len(got) != 0 || len(src.calls) != 0 {
		t.Fatalf("read at Since: %d steps, %v, %d calls", len(got), err, len(src.calls))
	}
	clk.t = at(3*time.Minute + 20*time.Second)
	got, err := rd.read(ctx, testRef, clk.Now())
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 3 || !rd.Since.Equal(at(3*time.Minute)) {
		t.Fatalf("first read: steps %v since %s, want 1m 2m 3m since 3m", ends(got), rd.Since.Sub(t0))
	}
	clk.t = at(5 * time.Minute)
	got, err = rd.read(ctx, testRef, clk.Now())
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || !got[0].End.Equal(at(4*time.Minute)) || !got[1].End.Equal(at(5*time.Minute)) {
		t.Fatalf("second read: steps %v, want 4m and 5m only (the source repeated 2m and 3m)", ends(got))
	}
	w := svc.served(providers.Blue, at(4*time.Minute), at(5*time.Minute))
	wantColor(t, "blue 4m..5m", got[1].Blue, w.req, w.err)
}

// A source that implements no way of reading is a configuration error that
// no retry mends.
func TestReaderNoWayOfReading(t *testing.T) {
	clk := newClock(t0)
	b := base(steadyTraffic(), clk, errorsOnly, time.Second)
	rd := reader{src: &b, Since: t0}
	_, err := rd.read(context.Background(), testRef, at(time.Minute))
	if !errors.Is(err, providers.ErrBadConfig) || !providers.Permanent(err) {
		t.Errorf("error %v, want a permanent bad configuration", err)
	}
}

// The reader's state goes through a heartbeat as JSON; a reader restored from
// it on another worker goes on from the last counters it saw, and the traffic
// of the time no one read is counted in the next step, once.
func TestReaderResumesFromJSON(t *testing.T) {
	clk := newClock(t0)
	svc := steadyTraffic()
	src := &snapSource{fakeBase: base(svc, clk, errorsOnly, 10*time.Second)}
	rd := reader{src: src, Since: t0}
	ctx := context.Background()
	for _, d := range []time.Duration{0, 10 * time.Second} {
		clk.t = at(d)
		if _, err := rd.read(ctx, testRef, clk.Now()); err != nil {
			t.Fatal(err)
		}
	}
	back, err := jsonRoundTrip(rd)
	if err != nil {
		t.Fatal(err)
	}
	back.src = src
	clk.t = at(2 * time.Minute)
	got, err := back.read(ctx, testRef, clk.Now())
	if err != nil || len(got) != 1 {
		t.Fatalf("read after the restore: %d steps, %v; want one step, not a new baseline", len(got), err)
	}
	w := svc.served(providers.Green, at(10*time.Second), at(2*time.Minute))
	wantColor(t, "green since the last read", got[0].Green, w.req, w.err)
}

func ends(steps []judge.Step) []time.Duration {
	var out []time.Duration
	for _, s := range steps {
		out = append(out, s.End.Sub(t0))
	}
	return out
}
