package analysis

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/cutoverhq/cutover/providers"
	"github.com/cutoverhq/cutover/verdict"
)

func runCompare(t *testing.T, src Source, clk *fakeClock, c CompareSpec, saved []byte, sv *saves) (verdict.Verdict, error) {
	t.Helper()
	var save func([]byte)
	if sv != nil {
		save = sv.save
	}
	v, err := Compare(context.Background(), src, testRef, c, saved, save, clk.Clock())
	if errors.Is(err, errRunaway) {
		t.Fatalf("the comparison did not end: %v", err)
	}
	return v, err
}

// With EarlyStop, a comparison of a good green ends with a Pass as soon as
// the data allow, well inside the window; without it, it watches the whole
// window and then passes.
func TestCompareGoodGreen(t *testing.T) {
	window := 30 * time.Minute
	for _, k := range kinds {
		t.Run(k.name, func(t *testing.T) {
			clk := newClock(t0)
			svc := steady(40, busy, busy)
			v, err := runCompare(t, k.make(svc, clk, nil), clk, CompareSpec{Start: t0, Window: window, EarlyStop: true}, nil, nil)
			if err != nil {
				t.Fatal(err)
			}
			early := since(clk)
			t.Logf("early stop: %s after %s", v.Result, early)
			if v.Result != verdict.Pass {
				t.Fatalf("early stop: verdict %s, want Pass", v)
			}
			if early >= window/2 {
				t.Errorf("early stop passed after %s, want well inside the %s window", early, window)
			}
			w := svc.served(providers.Green, t0, t0.Add(early))
			if got := value(v, "error rate", "green_requests"); got != w.req {
				t.Errorf("early stop: green requests %v, want %v served until it stopped", got, w.req)
			}

			clk = newClock(t0)
			v, err = runCompare(t, k.make(svc, clk, nil), clk, CompareSpec{Start: t0, Window: window}, nil, nil)
			if err != nil {
				t.Fatal(err)
			}
			if v.Result != verdict.Pass || since(clk) != window {
				t.Errorf("without early stop: %s after %s, want a Pass at the window's end", v.Result, since(clk))
			}
			w = svc.served(providers.Green, t0, t0.Add(window))
			if got := value(v, "error rate", "green_requests"); got != w.req {
				t.Errorf("without early stop: green requests %v, want the window's %v", got, w.req)
			}
		})
	}
}

// A bad green fails at once, with or without EarlyStop: a Fail always ends
// the comparison.
func TestCompareBadGreenFailsEarly(t *testing.T) {
	for _, k := range kinds {
		for _, early := range []bool{false, true} {
			clk := newClock(t0)
			svc := steady(41, behaviour{RPS: 100, ErrRate: 0.002}, behaviour{RPS: 100, ErrRate: 0.2})
			v, err := runCompare(t, k.make(svc, clk, nil), clk, CompareSpec{Start: t0, Window: 10 * time.Minute, EarlyStop: early}, nil, nil)
			if err != nil {
				t.Fatal(err)
			}
			if v.Result != verdict.Fail {
				t.Errorf("%s, early stop %v: verdict %s, want Fail", k.name, early, v)
			}
			if since(clk) > 30*time.Second {
				t.Errorf("%s, early stop %v: failed after %s, want within the first steps", k.name, early, since(clk))
			}
		}
	}
}

// With EarlyStop, an underpowered window is not stopped early: it runs to
// its end and is Inconclusive for traffic.
func TestCompareUnderpowered(t *testing.T) {
	clk := newClock(t0)
	v, err := runCompare(t, kinds[1].make(steady(42, trickle, trickle), clk, nil), clk,
		CompareSpec{Start: t0, Window: 5 * time.Minute, EarlyStop: true}, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if v.Result != verdict.Inconclusive || !v.Underpowered || since(clk) != 5*time.Minute {
		t.Errorf("verdict %s (underpowered %v) after %s, want an underpowered Inconclusive at 5m", v, v.Underpowered, since(clk))
	}
}

// A source that cannot be read at the end of the window gives an
// Inconclusive that says what could not be read, after a few retries.
func TestCompareUnreadableAtEnd(t *testing.T) {
	for _, k := range kinds {
		t.Run(k.name, func(t *testing.T) {
			clk := newClock(t0)
			src := k.make(steady(43, busy, busy), clk, failBetween(at(4*time.Minute), at(time.Hour)))
			v, err := runCompare(t, src, clk, CompareSpec{Start: t0, Window: 5 * time.Minute}, nil, nil)
			if err != nil {
				t.Fatal(err)
			}
			if v.Result != verdict.Inconclusive {
				t.Fatalf("verdict %s, want Inconclusive", v)
			}
			for _, want := range []string{"could not be read", src.Where(), transient.Error()} {
				if !strings.Contains(v.Summary, want) {
					t.Errorf("summary %q does not say %q", v.Summary, want)
				}
			}
			if d := since(clk); d < 5*time.Minute || d > 5*time.Minute+10*time.Second {
				t.Errorf("gave up %s into the window, want a few seconds after its end (5m)", d)
			}
		})
	}
}

// A read at the window's end that fails once and then works gives the
// window's verdict with all of its data.
func TestCompareEndReadRetried(t *testing.T) {
	for _, k := range kinds[1:] { // the scrape's retry is TestCompareScrapeJudgesLastStep's case
		t.Run(k.name, func(t *testing.T) {
			clk := newClock(t0)
			svc := steady(44, busy, busy)
			src := k.make(svc, clk, failBetween(at(10*time.Minute), at(10*time.Minute+time.Second)))
			v, err := runCompare(t, src, clk, CompareSpec{Start: t0, Window: 10 * time.Minute}, nil, nil)
			if err != nil {
				t.Fatal(err)
			}
			if v.Result != verdict.Pass {
				t.Fatalf("verdict %s, want Pass", v)
			}
			w := svc.served(providers.Green, t0, at(10*time.Minute))
			if got := value(v, "error rate", "green_requests"); got != w.req {
				t.Errorf("green requests %v, want the window's %v", got, w.req)
			}
		})
	}
}

// A source unreadable for a while inside the window is read again at the
// next step and loses nothing.
func TestCompareUnreadableMidWindowRecovers(t *testing.T) {
	for _, k := range kinds {
		t.Run(k.name, func(t *testing.T) {
			clk := newClock(t0)
			svc := steady(45, busy, busy)
			src := k.make(svc, clk, failBetween(at(2*time.Minute), at(3*time.Minute)))
			v, err := runCompare(t, src, clk, CompareSpec{Start: t0, Window: 10 * time.Minute}, nil, nil)
			if err != nil {
				t.Fatal(err)
			}
			if v.Result != verdict.Pass || since(clk) != 10*time.Minute {
				t.Fatalf("verdict %s after %s, want a Pass at 10m", v, since(clk))
			}
			w := svc.served(providers.Green, t0, at(10*time.Minute))
			if got := value(v, "error rate", "green_requests"); got != w.req {
				t.Errorf("green requests %v, want the window's %v: the outage lost data", got, w.req)
			}
		})
	}
}

// A source whose data arrive late (CloudWatch) is read on for its Lag after
// the window, so that the window's last steps are judged too. Without Lag,
// the steps published after the window's end would be lost.
func TestCompareLaggerReadsOn(t *testing.T) {
	const delay = 2 * time.Minute
	window := 10 * time.Minute
	svc := steady(46, busy, busy)

	clk := newClock(t0)
	src := &lagSource{stepSource: stepSource{fakeBase: base(svc, clk, errorsOnly, time.Minute), delay: delay}, lag: delay}
	v, err := runCompare(t, src, clk, CompareSpec{Start: t0, Window: window}, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if since(clk) != window+delay {
		t.Errorf("ended %s after the start, want the window and the lag, %s", since(clk), window+delay)
	}
	w := svc.served(providers.Green, t0, at(window))
	if got := value(v, "error rate", "green_requests"); got != w.req {
		t.Errorf("green requests %v, want the whole window's %v", got, w.req)
	}
	if v.Result != verdict.Pass {
		t.Errorf("verdict %s, want Pass", v)
	}

	// The same late source without Lag: the comparison ends with the window
	// and judges only what was published by then.
	clk = newClock(t0)
	plain := &stepSource{fakeBase: base(svc, clk, errorsOnly, time.Minute), delay: delay}
	v, err = runCompare(t, plain, clk, CompareSpec{Start: t0, Window: window}, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	w = svc.served(providers.Green, t0, at(window-delay))
	if got := value(v, "error rate", "green_requests"); since(clk) != window || got != w.req {
		t.Errorf("without Lag: ended at %s with %v green requests, want the window's end and %v (published by then)", since(clk), got, w.req)
	}
}

// Steps that end after the window are not judged, though a lagging source
// returns them: here green breaks right after the window, and the window's
// verdict must not see it.
func TestCompareStepsAfterWindowNotJudged(t *testing.T) {
	window := 5 * time.Minute
	svc := newService(47, func(c providers.Color, sec int) behaviour {
		if c == providers.Green && sec >= int(window/time.Second) {
			return behaviour{RPS: 100, ErrRate: 0.5}
		}
		return busy
	})
	clk := newClock(t0)
	// Its data are in at once, but it says they may be two minutes late.
	src := &lagSource{stepSource: stepSource{fakeBase: base(svc, clk, errorsOnly, time.Minute)}, lag: 2 * time.Minute}
	v, err := runCompare(t, src, clk, CompareSpec{Start: t0, Window: window}, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if v.Result == verdict.Fail {
		t.Fatalf("verdict %s: a step after the window was judged", v)
	}
	w := svc.served(providers.Green, t0, at(window))
	if got := value(v, "error rate", "green_requests"); got != w.req {
		t.Errorf("green requests %v, want the window's %v only", got, w.req)
	}
	var after bool
	for _, c := range src.calls {
		after = after || c[1].After(at(window))
	}
	if !after {
		t.Errorf("the source was never read past the window's end (calls %v): the test tests nothing", src.calls)
	}
}

// A range source is never asked for data past the window's end, though the
// worker wakes late.
func TestCompareRangeStopsAtWindowEnd(t *testing.T) {
	window := 5 * time.Minute
	clk := newClock(t0)
	clk.late = 3 * time.Millisecond
	svc := steady(48, busy, busy)
	src := &rangeSource{fakeBase: base(svc, clk, errorsOnly, 10*time.Second)}
	v, err := runCompare(t, src, clk, CompareSpec{Start: t0, Window: window}, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range src.calls {
		if c[1].After(at(window)) {
			t.Errorf("asked for %s..%s, past the window's end", c[0].Sub(t0), c[1].Sub(t0))
		}
	}
	w := svc.served(providers.Green, t0, at(window))
	if got := value(v, "error rate", "green_requests"); got != w.req {
		t.Errorf("green requests %v, want the window's %v", got, w.req)
	}
}

// A scrape reads the page at the moment it is served, a few milliseconds
// after the read began (and a real timer wakes a little late): the window's
// last scrape is then a hair after the window's end, and its step, the
// window's last, must still be judged. Otherwise a green that breaks in the
// last step of the window passes.
func TestCompareScrapeJudgesLastStep(t *testing.T) {
	window := time.Minute
	t.Run("counts", func(t *testing.T) {
		clk := newClock(t0)
		svc := steady(49, busy, busy)
		src := &snapSource{fakeBase: base(svc, clk, errorsOnly, 10*time.Second), latency: 3 * time.Millisecond}
		v, err := runCompare(t, src, clk, CompareSpec{Start: t0, Window: window}, nil, nil)
		if err != nil {
			t.Fatal(err)
		}
		w := svc.served(providers.Green, t0, at(window))
		if got := value(v, "error rate", "green_requests"); got != w.req {
			t.Errorf("BUG (compare.go: steps with End after the window's end are dropped, and a scrape's "+
				"snapshot is always taken after it): green requests %v, want the window's %v", got, w.req)
		}
	})
	t.Run("end read retried", func(t *testing.T) {
		// On time to the nanosecond, but the read at the end fails once:
		// the retry a second later is after the window's end.
		clk := newClock(t0)
		svc := steady(49, busy, busy)
		src := &snapSource{fakeBase: base(svc, clk, errorsOnly, 10*time.Second)}
		src.fail = failBetween(at(window), at(window+time.Second))
		v, err := runCompare(t, src, clk, CompareSpec{Start: t0, Window: window}, nil, nil)
		if err != nil {
			t.Fatal(err)
		}
		w := svc.served(providers.Green, t0, at(window))
		if got := value(v, "error rate", "green_requests"); got < w.req {
			t.Errorf("BUG (compare.go drops the retried end read's step): green requests %v, want at least the window's %v", got, w.req)
		}
	})
	t.Run("regression in the last step", func(t *testing.T) {
		svc := newService(50, func(c providers.Color, sec int) behaviour {
			if c == providers.Green && sec >= 50 {
				return behaviour{RPS: 100, ErrRate: 0.5}
			}
			return busy
		})
		clk := newClock(t0)
		clk.late = 2 * time.Millisecond
		src := &snapSource{fakeBase: base(svc, clk, errorsOnly, 10*time.Second)}
		v, err := runCompare(t, src, clk, CompareSpec{Start: t0, Window: window}, nil, nil)
		if err != nil {
			t.Fatal(err)
		}
		if v.Result != verdict.Fail {
			t.Errorf("BUG (compare.go drops the last scrape's step): half of green's requests failed in "+
				"the window's last 10s, verdict %s, want Fail", v)
		}
	})
}

// A comparison canceled mid-window and resumed from its last heartbeat goes
// on with its evidence: the verdict covers the whole window.
func TestCompareResume(t *testing.T) {
	for _, k := range kinds {
		t.Run(k.name, func(t *testing.T) {
			clk := newClock(t0)
			svc := steady(51, busy, busy)
			src := k.make(svc, clk, nil)
			spec := CompareSpec{Start: t0, Window: 10 * time.Minute}
			ctx, cancel := context.WithCancel(context.Background())
			clk.cancel, clk.cancelAt = cancel, at(4*time.Minute+5*time.Second)
			sv := &saves{clk: clk}
			_, err := Compare(ctx, src, testRef, spec, nil, sv.save, clk.Clock())
			cancel()
			clk.cancel = nil
			if !errors.Is(err, context.Canceled) {
				t.Fatalf("first attempt: %v, want canceled", err)
			}
			clk.t = at(6 * time.Minute)
			v, err := runCompare(t, src, clk, spec, sv.last(t), nil)
			if err != nil {
				t.Fatal(err)
			}
			if v.Result != verdict.Pass || since(clk) != 10*time.Minute {
				t.Errorf("verdict %s after %s, want a Pass at 10m", v, since(clk))
			}
			w := svc.served(providers.Green, t0, at(10*time.Minute))
			if got := value(v, "error rate", "green_requests"); got != w.req {
				t.Errorf("green requests %v, want the whole window's %v", got, w.req)
			}
		})
	}
}

// A window that starts in the future by the worker's clock starts now.
func TestCompareStartInFuture(t *testing.T) {
	clk := newClock(t0)
	v, err := runCompare(t, kinds[0].make(steady(52, busy, busy), clk, nil), clk,
		CompareSpec{Start: at(time.Hour), Window: 5 * time.Minute}, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if since(clk) != 5*time.Minute || v.Result == verdict.Fail {
		t.Errorf("%s after %s, want the window to end 5m after the worker's now", v.Result, since(clk))
	}
}

// A permanent error ends the comparison with the error; a bad spec is one.
func TestComparePermanentError(t *testing.T) {
	clk := newClock(t0)
	src := kinds[2].make(steady(53, busy, busy), clk, func(now time.Time) error {
		if now.Before(at(time.Minute)) {
			return nil
		}
		return providers.BadConfig("dimension LoadBalancer: no such load balancer")
	})
	if _, err := runCompare(t, src, clk, CompareSpec{Start: t0, Window: 5 * time.Minute}, nil, nil); !errors.Is(err, providers.ErrBadConfig) || since(clk) != time.Minute {
		t.Errorf("error %v after %s, want the bad configuration at 1m", err, since(clk))
	}
	if _, err := runCompare(t, src, clk, CompareSpec{Start: t0}, nil, nil); !errors.Is(err, providers.ErrBadConfig) {
		t.Errorf("no window: error %v, want a bad configuration", err)
	}
	s := &snapSource{fakeBase: base(steady(53, busy, busy), clk, errorsOnly, 0)}
	if _, err := runCompare(t, s, clk, CompareSpec{Start: t0, Window: time.Minute}, nil, nil); !errors.Is(err, providers.ErrBadConfig) {
		t.Errorf("no step: error %v, want a bad configuration", err)
	}
}
