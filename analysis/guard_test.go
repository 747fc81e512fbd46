package analysis

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/cutoverhq/cutover/judge"
	"github.com/cutoverhq/cutover/providers"
	"github.com/cutoverhq/cutover/verdict"
)

// A ten-minute soak judged every ten seconds: sixty intervals.
var soak = GuardSpec{Start: t0, Duration: 10 * time.Minute, Interval: 10 * time.Second}

// Traffic: a busy service (100 requests a second a color, 0.5% errors) gives
// enough evidence in ten minutes to pass at the default margin of 0.4
// points; 20 a second is short by about a third; 5 a second far short.
var (
	busy    = behaviour{RPS: 100, ErrRate: 0.005}
	quiet   = behaviour{RPS: 20, ErrRate: 0.005}
	trickle = behaviour{RPS: 5, ErrRate: 0.005}
)

// kind builds a fake source of one of the three ways of reading over svc.
type kind struct {
	name string
	make func(svc *service, clk *fakeClock, fail func(time.Time) error) Source
}

var kinds = []kind{
	{"scrape", func(svc *service, clk *fakeClock, fail func(time.Time) error) Source {
		s := &snapSource{fakeBase: base(svc, clk, errorsOnly, 10*time.Second)}
		s.fail = fail
		return s
	}},
	{"prometheus", func(svc *service, clk *fakeClock, fail func(time.Time) error) Source {
		s := &rangeSource{fakeBase: base(svc, clk, errorsOnly, 10*time.Second)}
		s.fail = fail
		return s
	}},
	{"cloudwatch", func(svc *service, clk *fakeClock, fail func(time.Time) error) Source {
		s := &stepSource{fakeBase: base(svc, clk, errorsOnly, 10*time.Second)}
		s.fail = fail
		return s
	}},
}

func runGuard(t *testing.T, src Source, clk *fakeClock, g GuardSpec, saved []byte, sv *saves) (verdict.Verdict, error) {
	t.Helper()
	var save func([]byte)
	if sv != nil {
		save = sv.save
	}
	v, err := Guard(context.Background(), src, testRef, g, saved, save, clk.Clock())
	if errors.Is(err, errRunaway) {
		t.Fatalf("the guard did not end: %v", err)
	}
	return v, err
}

// A green as good as blue with enough traffic passes at the end of the soak,
// and not before, with every interval judged, whichever way the source reads;
// the verdict counts every request of the soak exactly once.
func TestGuardGoodGreenPasses(t *testing.T) {
	for _, k := range kinds {
		t.Run(k.name, func(t *testing.T) {
			clk := newClock(t0)
			svc := steady(11, busy, busy)
			sv := &saves{clk: clk}
			v, err := runGuard(t, k.make(svc, clk, nil), clk, soak, nil, sv)
			if err != nil {
				t.Fatal(err)
			}
			if v.Result != verdict.Pass {
				t.Fatalf("verdict %s, want Pass", v)
			}
			if since(clk) != 10*time.Minute {
				t.Errorf("ended %s into the soak, want at its end, 10m", since(clk))
			}
			if v.Judged != 60 || v.Intervals != 60 {
				t.Errorf("coverage %d of %d, want 60 of 60", v.Judged, v.Intervals)
			}
			w := svc.served(providers.Green, t0, at(10*time.Minute))
			if got := value(v, "error rate", "green_requests"); got != w.req {
				t.Errorf("green requests %v, want the soak's %v", got, w.req)
			}
			if len(sv.b) != 61 {
				t.Errorf("%d progress saves, want one per check (61)", len(sv.b))
			}
			if len(v.Notes) != 0 {
				t.Errorf("notes %q, want none", v.Notes)
			}
		})
	}
}

// A clearly bad green (a fifth of its requests fail, none of blue's) fails
// at the first look, long before the soak's end.
func TestGuardBadGreenFailsEarly(t *testing.T) {
	for _, k := range kinds {
		t.Run(k.name, func(t *testing.T) {
			clk := newClock(t0)
			svc := steady(12, behaviour{RPS: 100}, behaviour{RPS: 100, ErrRate: 0.2})
			v, err := runGuard(t, k.make(svc, clk, nil), clk, soak, nil, nil)
			if err != nil {
				t.Fatal(err)
			}
			if v.Result != verdict.Fail || !strings.Contains(v.Summary, "error rate") {
				t.Fatalf("verdict %s, want an error rate Fail", v)
			}
			if since(clk) > 30*time.Second {
				t.Errorf("failed %s into the soak, want within the first intervals", since(clk))
			}
			if v.Judged < 1 || v.Judged != v.Intervals {
				t.Errorf("coverage %d of %d, want every interval until the failure", v.Judged, v.Intervals)
			}
		})
	}
}

// A regression that begins halfway through the soak is caught soon after.
func TestGuardLateRegressionFails(t *testing.T) {
	clk := newClock(t0)
	svc := newService(13, func(c providers.Color, sec int) behaviour {
		if c == providers.Green && sec >= 300 {
			return behaviour{RPS: 100, ErrRate: 0.05}
		}
		return busy
	})
	v, err := runGuard(t, kinds[0].make(svc, clk, nil), clk, soak, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if v.Result != verdict.Fail {
		t.Fatalf("verdict %s, want Fail", v)
	}
	if d := since(clk); d <= 5*time.Minute || d > 7*time.Minute {
		t.Errorf("failed %s into the soak; the regression began at 5m", d)
	}
}

// A green with too little traffic cannot pass: the soak ends Inconclusive,
// marked as short of traffic only, after judging every interval.
func TestGuardUnderpowered(t *testing.T) {
	for _, k := range kinds {
		t.Run(k.name, func(t *testing.T) {
			clk := newClock(t0)
			svc := steady(14, trickle, trickle)
			v, err := runGuard(t, k.make(svc, clk, nil), clk, soak, nil, nil)
			if err != nil {
				t.Fatal(err)
			}
			if v.Result != verdict.Inconclusive || !v.Underpowered {
				t.Fatalf("verdict %s (underpowered %v), want an underpowered Inconclusive", v, v.Underpowered)
			}
			if !strings.Contains(v.Summary, "too little traffic yet") {
				t.Errorf("summary %q does not say why", v.Summary)
			}
			if since(clk) != 10*time.Minute || v.Judged != 60 || v.Intervals != 60 {
				t.Errorf("ended at %s with %d of %d, want 10m and 60 of 60", since(clk), v.Judged, v.Intervals)
			}
		})
	}
}

// With an extension, a soak short of traffic at its end goes on, and stops
// at the first check at which green passes.
func TestGuardExtendUntilPass(t *testing.T) {
	clk := newClock(t0)
	svc := steady(15, quiet, quiet)
	src := kinds[0].make(svc, clk, nil)
	g := soak
	g.Extend = 10 * time.Minute
	sv := &saves{clk: clk}
	v, err := runGuard(t, src, clk, g, nil, sv)
	if err != nil {
		t.Fatal(err)
	}
	end := since(clk)
	t.Logf("passed %s into the soak: %s", end, v.Summary)
	if v.Result != verdict.Pass {
		t.Fatalf("verdict %s, want a Pass in the extension", v)
	}
	if end <= 10*time.Minute || end >= 20*time.Minute {
		t.Fatalf("ended %s into the soak, want after 10m and before 20m", end)
	}
	n := int(end / (10 * time.Second))
	if v.Judged != n || v.Intervals != n {
		t.Errorf("coverage %d of %d, want %d of %d", v.Judged, v.Intervals, n, n)
	}
	// At the check before, green had not passed yet: it stopped as soon as
	// it could.
	prev := sv.b[len(sv.b)-2]
	if at := sv.at[len(sv.at)-2]; at.Sub(t0) != end-10*time.Second {
		t.Fatalf("the save before the last is from %s, want %s", at.Sub(t0), end-10*time.Second)
	}
	if pv := judgeOf(t, src, g, prev).Verdict(); pv.Result == verdict.Pass || !pv.Underpowered {
		t.Errorf("10s before the end the verdict was already %s (underpowered %v)", pv.Result, pv.Underpowered)
	}
}

// With an extension, a soak that stays short of traffic ends at Duration +
// Extend, Inconclusive and underpowered.
func TestGuardExtendEndsAtHardEnd(t *testing.T) {
	clk := newClock(t0)
	svc := steady(16, trickle, trickle)
	g := soak
	g.Duration, g.Extend = 5*time.Minute, 5*time.Minute
	v, err := runGuard(t, kinds[0].make(svc, clk, nil), clk, g, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if v.Result != verdict.Inconclusive || !v.Underpowered {
		t.Fatalf("verdict %s, want an underpowered Inconclusive", v)
	}
	if since(clk) != 10*time.Minute || v.Judged != 60 || v.Intervals != 60 {
		t.Errorf("ended %s into the soak with %d of %d, want 10m and 60 of 60", since(clk), v.Judged, v.Intervals)
	}
}

// A soak that could not pass for another reason than traffic is not
// extended: here a gap in the guard's watch (its worker died for a minute)
// makes the verdict Inconclusive but not underpowered, though traffic is short
// too.
func TestGuardExtendOnlyForTraffic(t *testing.T) {
	clk := newClock(t0)
	svc := steady(17, quiet, quiet)
	src := kinds[0].make(svc, clk, nil)
	g := soak
	g.Extend = 10 * time.Minute
	saved := attemptUntil(t, src, clk, g, 5*time.Minute+5*time.Second)
	clk.t = at(6 * time.Minute)
	v, err := runGuard(t, src, clk, g, saved, nil)
	if err != nil {
		t.Fatal(err)
	}
	if v.Result != verdict.Inconclusive || v.Underpowered || !hasNote(v, "missed 5 intervals") {
		t.Fatalf("verdict %s (underpowered %v), want an Inconclusive for the gap, not for traffic", v, v.Underpowered)
	}
	if since(clk) != 10*time.Minute {
		t.Errorf("ended %s into the soak: a gap is no reason to soak on, want 10m", since(clk))
	}
}

// A source that cannot be read for more than two intervals in a row ends the
// guard at the third failed read, Inconclusive, saying what could not be read
// and why: nobody soaks blind.
func TestGuardSourceDown(t *testing.T) {
	for _, k := range kinds {
		t.Run(k.name, func(t *testing.T) {
			clk := newClock(t0)
			svc := steady(18, busy, busy)
			src := k.make(svc, clk, failBetween(at(2*time.Minute), at(time.Hour)))
			v, err := runGuard(t, src, clk, soak, nil, nil)
			if err != nil {
				t.Fatal(err)
			}
			if v.Result != verdict.Inconclusive {
				t.Fatalf("verdict %s, want Inconclusive", v)
			}
			for _, want := range []string{"could not be read", src.Where(), transient.Error(), "3 intervals in a row"} {
				if !strings.Contains(v.Summary, want) {
					t.Errorf("summary %q does not say %q", v.Summary, want)
				}
			}
			if d := since(clk); d != 2*time.Minute+20*time.Second {
				t.Errorf("ended %s into the soak, want at the third failed read, 2m20s", d)
			}
			if v.Judged != 11 || v.Intervals != 14 {
				t.Errorf("coverage %d of %d, want 11 of 14", v.Judged, v.Intervals)
			}
		})
	}
}

// A source that cannot be read from the start ends the guard just the same.
func TestGuardSourceDownFromStart(t *testing.T) {
	clk := newClock(t0)
	src := kinds[0].make(steady(19, busy, busy), clk, failBetween(t0, at(time.Hour)))
	v, err := runGuard(t, src, clk, soak, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if v.Result != verdict.Inconclusive || !strings.Contains(v.Summary, "could not be read") {
		t.Fatalf("verdict %s, want Inconclusive, could not be read", v)
	}
	if since(clk) > 40*time.Second || v.Judged != 0 {
		t.Errorf("ended %s into the soak having judged %d intervals", since(clk), v.Judged)
	}
}

// A source that fails for one or two intervals and recovers does not end the
// guard, loses no traffic (counters are cumulative, ranges are read again),
// and can still pass; the missed intervals show in the coverage.
func TestGuardSourceBlipRecovers(t *testing.T) {
	for _, k := range kinds {
		for _, missed := range []int{1, 2} {
			t.Run(fmt.Sprintf("%s/%d missed", k.name, missed), func(t *testing.T) {
				clk := newClock(t0)
				svc := steady(20, busy, busy)
				from := at(4 * time.Minute)
				src := k.make(svc, clk, failBetween(from, from.Add(time.Duration(missed)*10*time.Second)))
				v, err := runGuard(t, src, clk, soak, nil, nil)
				if err != nil {
					t.Fatal(err)
				}
				if v.Result != verdict.Pass {
					t.Fatalf("%d failed reads: verdict %s, want Pass", missed, v)
				}
				if since(clk) != 10*time.Minute {
					t.Errorf("ended %s into the soak, want 10m", since(clk))
				}
				if v.Judged != 60-missed || v.Intervals != 60 {
					t.Errorf("coverage %d of %d, want %d of 60", v.Judged, v.Intervals, 60-missed)
				}
				w := svc.served(providers.Green, t0, at(10*time.Minute))
				if got := value(v, "error rate", "green_requests"); got != w.req {
					t.Errorf("green requests %v, want all %v of the soak", got, w.req)
				}
			})
		}
	}
}

// When the last read of the soak fails, its end was not seen: no Pass.
func TestGuardLastReadFails(t *testing.T) {
	clk := newClock(t0)
	src := kinds[0].make(steady(21, busy, busy), clk, failBetween(at(10*time.Minute), at(time.Hour)))
	v, err := runGuard(t, src, clk, soak, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if v.Result != verdict.Inconclusive || !strings.Contains(v.Summary, "could not be read") {
		t.Fatalf("verdict %s, want Inconclusive, could not be read", v)
	}
	if v.Judged != 59 || v.Intervals != 60 {
		t.Errorf("coverage %d of %d, want 59 of 60", v.Judged, v.Intervals)
	}
}

// A permanent error (a setting that cannot work) is returned as an error at
// once, not as a verdict after the soak.
func TestGuardPermanentError(t *testing.T) {
	clk := newClock(t0)
	bad := providers.BadConfig("query: unknown metric http_requests_totl")
	src := kinds[1].make(steady(22, busy, busy), clk, func(now time.Time) error {
		if now.Before(at(time.Minute)) {
			return nil
		}
		return bad
	})
	v, err := runGuard(t, src, clk, soak, nil, nil)
	if !errors.Is(err, providers.ErrBadConfig) {
		t.Fatalf("error %v (verdict %s), want the bad configuration", err, v)
	}
	if since(clk) != time.Minute {
		t.Errorf("returned %s into the soak, want at the first bad read, 1m", since(clk))
	}
}

// A spec that cannot work is a permanent error.
func TestGuardBadSpec(t *testing.T) {
	clk := newClock(t0)
	src := kinds[0].make(steady(23, busy, busy), clk, nil)
	for _, g := range []GuardSpec{{Start: t0, Duration: time.Minute}, {Start: t0, Interval: time.Second}} {
		if _, err := runGuard(t, src, clk, g, nil, nil); !errors.Is(err, providers.ErrBadConfig) {
			t.Errorf("spec %+v: error %v, want a bad configuration", g, err)
		}
	}
	bad := judge.Config{Alpha: 0.5}
	s := &snapSource{fakeBase: base(steady(23, busy, busy), clk, bad, 10*time.Second)}
	if _, err := runGuard(t, s, clk, soak, nil, nil); !errors.Is(err, providers.ErrBadConfig) {
		t.Errorf("judge alpha 0.5: error %v, want a bad configuration", err)
	}
}

// A guard canceled mid-soak (its worker died) and resumed later from its
// last heartbeat keeps its evidence: the traffic it judged before, and the
// traffic of the time nobody watched, counted once. More than two intervals
// without a check are a gap that the verdict names, and it is never a Pass.
func TestGuardResumeAfterGap(t *testing.T) {
	for _, k := range kinds {
		t.Run(k.name, func(t *testing.T) {
			clk := newClock(t0)
			svc := steady(24, busy, busy)
			src := k.make(svc, clk, nil)
			saved := attemptUntil(t, src, clk, soak, 5*time.Minute+5*time.Second)

			clk.t = at(6 * time.Minute) // the retry starts a minute later
			sv := &saves{clk: clk}
			v, err := runGuard(t, src, clk, soak, saved, sv)
			if err != nil {
				t.Fatal(err)
			}
			if v.Result == verdict.Pass {
				t.Fatalf("verdict %s: a soak with a minute nobody watched must not pass", v)
			}
			if !strings.Contains(v.Summary, "did not watch green all the time") {
				t.Errorf("summary %q does not say the guard missed time", v.Summary)
			}
			if !hasNote(v, "missed 5 intervals from 10:05:00 to 10:06:00") {
				t.Errorf("notes %q do not name the gap", v.Notes)
			}
			if since(clk) != 10*time.Minute {
				t.Errorf("ended %s into the soak, want on the original schedule, 10m", since(clk))
			}
			// 30 intervals judged before, the one that ends at 6m, and 24 after.
			if v.Judged != 55 || v.Intervals != 60 {
				t.Errorf("coverage %d of %d, want 55 of 60", v.Judged, v.Intervals)
			}
			w := svc.served(providers.Green, t0, at(10*time.Minute))
			if got := value(v, "error rate", "green_requests"); got != w.req {
				t.Errorf("green requests %v, want the whole soak's %v: evidence was lost or counted twice", got, w.req)
			}
			// The judge holds the first attempt's steps too: a scrape sees the
			// gap as one long step, the others read its steps afterwards.
			want := map[string]int{"scrape": 30 + 1 + 24, "prometheus": 60, "cloudwatch": 60}[k.name]
			if got := judgeOf(t, src, soak, sv.last(t)).Steps(); got != want {
				t.Errorf("the judge holds %d steps at the end, want %d", got, want)
			}
		})
	}
}

// A short break (at most two intervals without a check) is no gap: the
// resumed guard can still pass.
func TestGuardResumeAfterShortBreak(t *testing.T) {
	clk := newClock(t0)
	svc := steady(25, busy, busy)
	src := kinds[0].make(svc, clk, nil)
	saved := attemptUntil(t, src, clk, soak, 5*time.Minute+5*time.Second)
	clk.t = at(5*time.Minute + 25*time.Second)
	v, err := runGuard(t, src, clk, soak, saved, nil)
	if err != nil {
		t.Fatal(err)
	}
	if v.Result != verdict.Pass || len(v.Notes) != 0 {
		t.Fatalf("verdict %s, want a Pass without notes", v)
	}
	if v.Judged != 59 || v.Intervals != 60 {
		t.Errorf("coverage %d of %d, want 59 of 60", v.Judged, v.Intervals)
	}
	w := svc.served(providers.Green, t0, at(10*time.Minute))
	if got := value(v, "error rate", "green_requests"); got != w.req {
		t.Errorf("green requests %v, want %v", got, w.req)
	}
}

// A resumed guard keeps a failure's evidence too: green that began to fail
// before the worker died fails soon after the retry starts.
func TestGuardResumeKeepsJudgeState(t *testing.T) {
	clk := newClock(t0)
	svc := steady(26, busy, busy)
	src := kinds[0].make(svc, clk, nil)
	saved := attemptUntil(t, src, clk, soak, 3*time.Minute+5*time.Second)
	var p Progress
	if err := json.Unmarshal(saved, &p); err != nil {
		t.Fatal(err)
	}
	m := judgeOf(t, src, soak, saved)
	if m.Steps() != 18 {
		t.Errorf("the heartbeat's judge has %d steps, want 18 (3 minutes of 10s)", m.Steps())
	}
	if p.Judged != 18 || !p.LastJudged.Equal(at(3*time.Minute)) {
		t.Errorf("progress judged %d, last %s; want 18 at 3m", p.Judged, p.LastJudged.Sub(t0))
	}
	// Resume with the same saved bytes twice (a heartbeat replayed): the
	// result is the same.
	clk.t = at(3*time.Minute + 10*time.Second)
	v1, err := runGuard(t, src, clk, soak, saved, nil)
	if err != nil {
		t.Fatal(err)
	}
	clk.t = at(3*time.Minute + 10*time.Second)
	v2, err := runGuard(t, src, clk, soak, saved, nil)
	if err != nil {
		t.Fatal(err)
	}
	if v1.String() != v2.String() || v1.Result != verdict.Pass {
		t.Errorf("resumed twice from one heartbeat: %s / %s, want the same Pass", v1, v2)
	}
}

// A heartbeat that is not the guard's progress is an error, not a fresh start.
func TestGuardBadSavedProgress(t *testing.T) {
	clk := newClock(t0)
	src := kinds[0].make(steady(27, busy, busy), clk, nil)
	if _, err := runGuard(t, src, clk, soak, []byte("{not json"), nil); err == nil {
		t.Error("garbage progress: no error")
	}
}

// The workflow's clock may be ahead of the worker's: a soak that starts in
// the future starts now, and ends Duration later instead of never.
func TestGuardStartInFuture(t *testing.T) {
	clk := newClock(t0)
	g := soak
	g.Start = at(time.Hour)
	v, err := runGuard(t, kinds[0].make(steady(28, busy, busy), clk, nil), clk, g, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if since(clk) != 10*time.Minute || v.Result != verdict.Pass {
		t.Errorf("ended %s after the worker's now with %s, want a Pass after 10m", since(clk), v.Result)
	}
	if v.Judged != 60 || v.Intervals != 60 {
		t.Errorf("coverage %d of %d, want 60 of 60", v.Judged, v.Intervals)
	}
}

// A canceled context ends the guard with the context's error.
func TestGuardCanceled(t *testing.T) {
	clk := newClock(t0)
	ctx, cancel := context.WithCancel(context.Background())
	clk.cancel, clk.cancelAt = cancel, at(time.Minute)
	_, err := Guard(ctx, kinds[0].make(steady(29, busy, busy), clk, nil), testRef, soak, nil, nil, clk.Clock())
	if !errors.Is(err, context.Canceled) {
		t.Errorf("error %v, want context.Canceled", err)
	}
}

// A counter reset in green (an instance restarted) is named in the soak's
// verdict, and its traffic after the restart still counts.
func TestGuardNamesCounterResets(t *testing.T) {
	clk := newClock(t0)
	svc := steady(30, busy, busy)
	svc.restarts = map[providers.Color][]time.Time{providers.Green: {at(3*time.Minute + 500*time.Millisecond)}}
	v, err := runGuard(t, kinds[0].make(svc, clk, nil), clk, soak, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if !hasNote(v, `counter reset: http_requests_total{color="green",code="200"} went from`) || !hasNote(v, "at 10:03:10") {
		t.Errorf("notes %q do not name green's reset at 10:03:10", v.Notes)
	}
	w := svc.served(providers.Green, t0, at(10*time.Minute))
	if got := value(v, "error rate", "green_requests"); got != w.req {
		t.Errorf("green requests %v, want %v (the restart was right after a scrape, so nothing is lost)", got, w.req)
	}
	if v.Result != verdict.Pass {
		t.Errorf("verdict %s, want Pass: a restart is no regression", v)
	}
}

// attemptUntil runs a guard whose worker dies at `dies` and returns its last
// heartbeat.
func attemptUntil(t *testing.T, src Source, clk *fakeClock, g GuardSpec, dies time.Duration) []byte {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	clk.cancel, clk.cancelAt = cancel, at(dies)
	sv := &saves{clk: clk}
	_, err := Guard(ctx, src, testRef, g, nil, sv.save, clk.Clock())
	clk.cancel = nil
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("first attempt: %v, want canceled", err)
	}
	return sv.last(t)
}

// judgeOf is the judge of a guard's saved progress.
func judgeOf(t *testing.T, src Source, g GuardSpec, saved []byte) *judge.Monitor {
	t.Helper()
	var p Progress
	if err := json.Unmarshal(saved, &p); err != nil {
		t.Fatal(err)
	}
	m, err := judge.New(src.Judge(), judge.Plan{Mode: judge.Soak, Steps: g.intervals()})
	if err != nil {
		t.Fatal(err)
	}
	if err := m.Restore(p.Judge); err != nil {
		t.Fatal(err)
	}
	return m
}

// A soak whose length is not a whole number of intervals ends at its end,
// not at the next interval after it.
func TestGuardUnevenDuration(t *testing.T) {
	clk := newClock(t0)
	g := soak
	g.Duration = 9*time.Minute + 55*time.Second
	v, err := runGuard(t, kinds[0].make(steady(31, busy, busy), clk, nil), clk, g, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if since(clk) != g.Duration {
		t.Errorf("ended %s into the soak, want at its end, %s", since(clk), g.Duration)
	}
	if v.Judged > v.Intervals || v.Intervals != 59 {
		t.Errorf("coverage %d of %d, want at most 59 of 59", v.Judged, v.Intervals)
	}
}

// An extension that is not a whole number of intervals ends the soak at
// Duration + Extend, not up to an interval later.
func TestGuardUnevenExtension(t *testing.T) {
	clk := newClock(t0)
	g := soak
	g.Duration, g.Extend = 5*time.Minute, 25*time.Second
	v, err := runGuard(t, kinds[0].make(steady(32, trickle, trickle), clk, nil), clk, g, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if v.Result != verdict.Inconclusive || !v.Underpowered {
		t.Fatalf("verdict %s, want an underpowered Inconclusive", v)
	}
	if since(clk) != g.Duration+g.Extend {
		t.Errorf("BUG (guard.go: the next check is capped at the soak's end but not at Duration+Extend): "+
			"ended %s into the soak, want at Duration+Extend, %s", since(clk), g.Duration+g.Extend)
	}
	if v.Judged > v.Intervals {
		t.Errorf("coverage %d of %d: more intervals judged than there were", v.Judged, v.Intervals)
	}
}
