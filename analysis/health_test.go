package analysis

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/cutoverhq/cutover/providers"
	"github.com/cutoverhq/cutover/verdict"
)

// answer is one scripted reply of an Analyzer's Guard.
type answer struct {
	v   verdict.Verdict
	err error
}

var (
	pass = answer{v: verdict.Verdict{Result: verdict.Pass, Summary: "3 of 3 instances healthy"}}
	inc  = answer{v: verdict.Verdict{Result: verdict.Inconclusive, Summary: "no health data yet"}}
	fail = answer{v: verdict.Verdict{Result: verdict.Fail, Summary: "2 of 3 instances unhealthy"}}
	oops = answer{err: errors.New("GET http://10.0.0.9:8080/healthz: connection reset by peer")}
)

// scripted is an Analyzer that answers from a script, then with `then`.
type scripted struct {
	clk    *fakeClock
	script []answer
	then   answer
	calls  []time.Time
}

func (s *scripted) Type() string { return "memory" }

func (s *scripted) Guard(ctx context.Context, r providers.Ref) (verdict.Verdict, error) {
	s.calls = append(s.calls, s.clk.Now())
	a := s.then
	if i := len(s.calls) - 1; i < len(s.script) {
		a = s.script[i]
	}
	return a.v, a.err
}

func (s *scripted) Compare(ctx context.Context, r providers.Ref, window time.Duration) (verdict.Verdict, error) {
	return verdict.Verdict{}, errors.New("a guard does not compare")
}

func runAnalyzer(t *testing.T, an *scripted, g GuardSpec) (verdict.Verdict, error) {
	t.Helper()
	v, err := GuardAnalyzer(context.Background(), an, testRef, g, an.clk.Clock())
	if errors.Is(err, errRunaway) {
		t.Fatalf("the guard did not end: %v", err)
	}
	return v, err
}

func repeat(a answer, n int) []answer {
	out := make([]answer, n)
	for i := range out {
		out[i] = a
	}
	return out
}

// A Fail ends the guard at the check that saw it.
func TestGuardAnalyzerFailAtOnce(t *testing.T) {
	clk := newClock(t0)
	an := &scripted{clk: clk, script: append(repeat(pass, 7), inc, fail), then: pass}
	v, err := runAnalyzer(t, an, soak)
	if err != nil {
		t.Fatal(err)
	}
	if v.Result != verdict.Fail || v.Summary != fail.v.Summary {
		t.Fatalf("verdict %s, want the analyzer's Fail", v)
	}
	if len(an.calls) != 9 || since(clk) != 80*time.Second {
		t.Errorf("%d checks, ended at %s; want to stop at the 9th check, 80s", len(an.calls), since(clk))
	}
	// The check at the start judges no interval yet: 8 of the 9 judged one.
	if v.Judged != 8 || v.Intervals != 8 {
		t.Errorf("coverage %d of %d, want 8 of 8", v.Judged, v.Intervals)
	}
}

// Three checks in a row without a verdict end the guard Inconclusive: no data
// is never healthy for long. Failed checks count as checks without a verdict.
func TestGuardAnalyzerThreeInconclusive(t *testing.T) {
	for _, c := range []struct {
		name   string
		script []answer
		want   string
		judged int
	}{
		{"inconclusive", []answer{pass, pass, inc, inc, inc}, "3 checks in a row without a verdict: no health data yet", 5},
		{"errors", []answer{pass, pass, oops, oops, oops}, "3 checks in a row without a verdict: guard check failed: GET http://10.0.0.9:8080/healthz", 2},
		{"mixed", []answer{pass, pass, inc, oops, inc}, "3 checks in a row without a verdict", 4},
		{"unknown result", []answer{pass, pass, inc, {v: verdict.Verdict{Result: "Maybe"}}, inc}, "3 checks in a row without a verdict", 5},
	} {
		t.Run(c.name, func(t *testing.T) {
			clk := newClock(t0)
			an := &scripted{clk: clk, script: c.script, then: pass}
			v, err := runAnalyzer(t, an, soak)
			if err != nil {
				t.Fatal(err)
			}
			if v.Result != verdict.Inconclusive || !strings.Contains(v.Summary, c.want) {
				t.Fatalf("verdict %s, want Inconclusive: %q", v, c.want)
			}
			if len(an.calls) != 5 || since(clk) != 40*time.Second {
				t.Errorf("%d checks, ended at %s; want 5 checks, 40s", len(an.calls), since(clk))
			}
			// The check at the start judges no interval yet.
			if v.Judged != c.judged-1 {
				t.Errorf("judged %d, want %d", v.Judged, c.judged-1)
			}
		})
	}
}

// One or two checks without a verdict between passes do not end the guard.
func TestGuardAnalyzerInterruptedInconclusives(t *testing.T) {
	clk := newClock(t0)
	var script []answer
	for range 10 {
		script = append(script, inc, oops, pass)
	}
	an := &scripted{clk: clk, script: script, then: pass}
	v, err := runAnalyzer(t, an, soak)
	if err != nil {
		t.Fatal(err)
	}
	if v.Result != verdict.Pass || since(clk) != 10*time.Minute {
		t.Errorf("verdict %s at %s, want the soak's last Pass at 10m", v, since(clk))
	}
}

// At the end of the soak the last check's verdict is returned, with the
// soak's coverage.
func TestGuardAnalyzerEnd(t *testing.T) {
	clk := newClock(t0)
	an := &scripted{clk: clk, then: pass}
	for i := range 100 {
		an.script = append(an.script, answer{v: verdict.Verdict{Result: verdict.Pass, Summary: fmt.Sprintf("check %d", i+1)}})
	}
	v, err := runAnalyzer(t, an, soak)
	if err != nil {
		t.Fatal(err)
	}
	if since(clk) != 10*time.Minute {
		t.Fatalf("ended at %s, want 10m", since(clk))
	}
	last := fmt.Sprintf("check %d", len(an.calls))
	if v.Result != verdict.Pass || v.Summary != last {
		t.Errorf("verdict %s, want the last check's (%s)", v, last)
	}
	// Every check after the one at the start judged an interval.
	if v.Judged != len(an.calls)-1 || v.Judged != v.Intervals || v.Intervals != 60 {
		t.Errorf("coverage %d of %d after %d checks, want the soak's 60 intervals all judged", v.Judged, v.Intervals, len(an.calls))
	}
	// The last check without a verdict: the soak's verdict is that, never a
	// pass.
	clk = newClock(t0)
	an = &scripted{clk: clk, script: append(repeat(pass, 60), inc), then: pass}
	if v, err := runAnalyzer(t, an, soak); err != nil || v.Result != verdict.Inconclusive {
		t.Errorf("last check inconclusive: %s, %v; want Inconclusive", v, err)
	}
	// A result nobody knows is never a pass, and is told as Inconclusive.
	clk = newClock(t0)
	an = &scripted{clk: clk, script: append(repeat(pass, 60), answer{v: verdict.Verdict{Result: "Healthy"}}), then: pass}
	if v, err := runAnalyzer(t, an, soak); err != nil || v.Result != verdict.Inconclusive {
		t.Errorf("last check %q: %s, %v; want Inconclusive", "Healthy", v, err)
	}
}

// A check that failed is an interval not judged: the coverage must show it,
// as the metrics guard's does (59 of 60 for one failed read).
func TestGuardAnalyzerCoverageShowsMissedCheck(t *testing.T) {
	clk := newClock(t0)
	an := &scripted{clk: clk, script: append(repeat(pass, 30), oops), then: pass}
	v, err := runAnalyzer(t, an, soak)
	if err != nil {
		t.Fatal(err)
	}
	if v.Result != verdict.Pass {
		t.Fatalf("verdict %s, want Pass", v)
	}
	if v.Judged >= v.Intervals {
		t.Errorf("BUG (health.go counts the check at the soak's start as an interval judged, and Intervals is "+
			"max(judged, Duration/Interval)): one of %d checks failed, yet the coverage is %d of %d",
			len(an.calls), v.Judged, v.Intervals)
	}
}

// A permanent error is returned as an error.
func TestGuardAnalyzerPermanentError(t *testing.T) {
	clk := newClock(t0)
	an := &scripted{clk: clk, script: []answer{pass, {err: providers.BadConfig("memory: unknown scenario %q", "flaky")}}, then: pass}
	_, err := runAnalyzer(t, an, soak)
	if !errors.Is(err, providers.ErrBadConfig) || len(an.calls) != 2 {
		t.Errorf("error %v after %d checks, want the bad configuration at the 2nd", err, len(an.calls))
	}
	if _, err := runAnalyzer(t, an, GuardSpec{Start: t0, Duration: time.Minute}); !errors.Is(err, providers.ErrBadConfig) {
		t.Errorf("no interval: error %v, want a bad configuration", err)
	}
}

// A zero Duration guards until the context ends (an older workflow cancels
// the guard at the soak's end); a Fail still ends it at once.
func TestGuardAnalyzerNoDuration(t *testing.T) {
	clk := newClock(t0)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	clk.cancel, clk.cancelAt = cancel, at(2*time.Hour)
	an := &scripted{clk: clk, then: pass}
	g := GuardSpec{Start: t0, Interval: 10 * time.Second}
	_, err := GuardAnalyzer(ctx, an, testRef, g, clk.Clock())
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("error %v, want the context's", err)
	}
	if len(an.calls) != 720 || since(clk) != 2*time.Hour {
		t.Errorf("%d checks until %s, want one every 10s until the cancel at 2h (720)", len(an.calls), since(clk))
	}

	clk = newClock(t0)
	an = &scripted{clk: clk, script: append(repeat(pass, 200), fail), then: pass}
	v, err := runAnalyzer(t, an, g)
	if err != nil || v.Result != verdict.Fail || since(clk) != 2000*time.Second {
		t.Errorf("%s, %v at %s; want the Fail of the 201st check at 2000s", v.Result, err, since(clk))
	}
}

// A canceled context during a check is the context's error, not a verdict.
func TestGuardAnalyzerCanceledDuringCheck(t *testing.T) {
	clk := newClock(t0)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	an := &cancelOnCall{scripted: scripted{clk: clk, script: []answer{pass, {err: context.Canceled}}, then: pass}, n: 2, cancel: cancel}
	_, err := GuardAnalyzer(ctx, an, testRef, soak, clk.Clock())
	if !errors.Is(err, context.Canceled) || len(an.calls) != 2 {
		t.Errorf("error %v after %d checks, want context.Canceled at the 2nd", err, len(an.calls))
	}
}

// cancelOnCall cancels the guard's context during its n-th check.
type cancelOnCall struct {
	scripted
	n      int
	cancel context.CancelFunc
}

func (c *cancelOnCall) Guard(ctx context.Context, r providers.Ref) (verdict.Verdict, error) {
	if len(c.calls)+1 == c.n {
		c.cancel()
	}
	return c.scripted.Guard(ctx, r)
}

// A soak that starts in the future by the worker's clock starts now.
func TestGuardAnalyzerStartInFuture(t *testing.T) {
	clk := newClock(t0)
	an := &scripted{clk: clk, then: pass}
	g := soak
	g.Start = at(time.Hour)
	v, err := runAnalyzer(t, an, g)
	if err != nil || v.Result != verdict.Pass || since(clk) != 10*time.Minute {
		t.Errorf("%s, %v at %s; want a Pass 10m after the worker's now", v.Result, err, since(clk))
	}
}
