package analysis

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"time"

	"github.com/cutoverhq/cutover/judge"
	"github.com/cutoverhq/cutover/providers"
	"github.com/cutoverhq/cutover/verdict"
)

// GuardSpec is one soak's guard.
type GuardSpec struct {
	// Start is when the soak began, as the workflow recorded it: a guard
	// resumed by another worker keeps the same schedule.
	Start time.Time
	// Duration is the soak's length; Extend is how much longer it may go on
	// while the guard could not yet have seen the allowed margins.
	Duration, Extend time.Duration
	// Interval is how often the guard judges green.
	Interval time.Duration
}

// intervals is how many intervals the soak may hold at most.
func (g GuardSpec) intervals() int {
	return int(math.Ceil(float64(g.Duration+g.Extend) / float64(g.Interval)))
}

// Clock is the time the loops run on; tests give their own.
type Clock struct {
	Now   func() time.Time
	Sleep func(ctx context.Context, d time.Duration) error
}

// RealClock is the wall clock.
func RealClock() Clock {
	return Clock{Now: time.Now, Sleep: func(ctx context.Context, d time.Duration) error {
		if d <= 0 {
			return ctx.Err()
		}
		t := time.NewTimer(d)
		defer t.Stop()
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
			return nil
		}
	}}
}

// Progress is what a guard or a comparison has learned, as JSON: the
// activities keep it in their heartbeats, and a retry on another worker
// starts from it.
type Progress struct {
	Judge  json.RawMessage `json:"judge,omitempty"`
	Reader reader          `json:"reader"`
	// LastJudged is when green was last judged; Judged counts the intervals
	// in which it was.
	LastJudged time.Time `json:"lastJudged"`
	LastIndex  int       `json:"lastIndex"`
	Judged     int       `json:"judged"`
}

// missedLimit is how many intervals in a row the guard may miss before it
// stops claiming anything for the span: more than two.
const missedLimit = 3

// Guard watches green through a soak: it reads the source every interval,
// feeds the judge, and returns at once when green fails; otherwise at the end
// of the soak, with the soak's verdict: Pass only when the data could have
// shown a regression as small as the margins and the guard judged every
// interval (or missed at most two in a row). While the verdict is only short
// of traffic, it soaks on for up to g.Extend.
//
// saved is the Progress of an earlier attempt (nil: none), and save is called
// with the progress after every check. A span of more than two intervals
// without a check (a dead worker, a source outage) is named in the verdict,
// which then is never a Pass; a source that stays unreadable for more than
// two intervals ends the guard at once with an Inconclusive verdict, so that
// nobody soaks blind.
func Guard(ctx context.Context, src Source, r providers.Ref, g GuardSpec, saved []byte, save func([]byte), clk Clock) (verdict.Verdict, error) {
	if g.Interval <= 0 || g.Duration <= 0 {
		return verdict.Verdict{}, providers.BadConfig("soak guard: duration %s and interval %s must be above 0", g.Duration, g.Interval)
	}
	m, err := judge.New(src.Judge(), judge.Plan{Mode: judge.Soak, Steps: g.intervals()})
	if err != nil {
		return verdict.Verdict{}, providers.BadConfig("%s judge: %v", src.Type(), err)
	}
	g.Start = notAfter(g.Start, clk.Now())
	p := Progress{Reader: reader{src: src, Since: g.Start}, LastJudged: g.Start}
	if err := resume(&p, m, saved); err != nil {
		return verdict.Verdict{}, err
	}
	end, hardEnd := g.Start.Add(g.Duration), g.Start.Add(g.Duration+g.Extend)
	// A source whose data arrive late (CloudWatch) is read on for that long
	// after the soak, so that its last steps are judged too.
	lag := lagOf(src)
	coverage := func(v verdict.Verdict, now time.Time) verdict.Verdict {
		if now.After(hardEnd) {
			now = hardEnd
		}
		if now.After(end) && !now.After(end.Add(lag)) {
			now = end
		}
		v.Judged = p.Judged
		v.Intervals = max(int(now.Sub(g.Start)/g.Interval), p.Judged)
		return v
	}
	var lastErr error
	for {
		now := clk.Now()
		steps, err := p.Reader.read(ctx, r, now)
		switch {
		case err != nil && ctx.Err() != nil:
			return verdict.Verdict{}, ctx.Err()
		case err != nil && permanent(err):
			return verdict.Verdict{}, err
		case err != nil:
			lastErr = err
			if missed := int(now.Sub(p.LastJudged)/g.Interval) - 1; missed >= missedLimit-1 {
				v := unavailable(src, err)
				v.Summary = fmt.Sprintf("the guard could not judge green for %d intervals in a row: %s", missed+1, v.Summary)
				return coverage(v, now), nil
			}
		default:
			lastErr = nil
			for _, s := range steps {
				m.Add(s)
			}
			if missed := int(now.Sub(p.LastJudged)/g.Interval) - 1; missed >= missedLimit {
				m.Gap(judge.Gap{From: p.LastJudged, To: now, Missed: missed})
			}
			// The check at the end of interval i judges it; one at the very
			// start judges none yet.
			if i := int(now.Sub(g.Start) / g.Interval); i > p.LastIndex {
				p.Judged++
				p.LastIndex = i
			}
			p.LastJudged = now
			if m.Failed() {
				return coverage(m.Verdict(), now), nil
			}
		}
		if err := checkpoint(&p, m, save); err != nil {
			return verdict.Verdict{}, err
		}
		if !now.Before(end.Add(lag)) {
			v := m.Verdict()
			if lastErr != nil && v.Result == verdict.Pass {
				// The last look failed: the end of the soak was not seen.
				v = unavailable(src, lastErr)
			}
			if v.Result != verdict.Inconclusive || !v.Underpowered || !now.Before(hardEnd.Add(lag)) {
				return coverage(v, now), nil
			}
		}
		next := g.Start.Add(time.Duration(int(now.Sub(g.Start)/g.Interval)+1) * g.Interval)
		for _, stop := range []time.Time{end.Add(lag), hardEnd.Add(lag)} {
			if now.Before(stop) && next.After(stop) {
				next = stop
			}
		}
		if err := clk.Sleep(ctx, next.Sub(clk.Now())); err != nil {
			return verdict.Verdict{}, err
		}
	}
}

// notAfter is start, or now when start is later: the workflow's clock and the
// worker's may disagree (a test environment skips workflow time ahead), and a
// schedule that starts in the future would never end.
func notAfter(start, now time.Time) time.Time {
	if start.After(now) {
		return now
	}
	return start
}

// resume loads an earlier attempt's progress into p and m.
func resume(p *Progress, m *judge.Monitor, saved []byte) error {
	if len(saved) == 0 {
		return nil
	}
	src := p.Reader.src
	// Progress that cannot be read back would fail every retry the same way:
	// it is permanent, and the step fails (traffic goes back to blue) rather
	// than judge on evidence it lost.
	var q Progress
	if err := json.Unmarshal(saved, &q); err != nil {
		return providers.Invalid("resume the analysis from its last heartbeat: %v", err)
	}
	if len(q.Judge) > 0 {
		if err := m.Restore(q.Judge); err != nil {
			return providers.Invalid("%v", err)
		}
	}
	q.Reader.src = src
	*p = q
	return nil
}

// checkpoint saves p with m's state.
func checkpoint(p *Progress, m *judge.Monitor, save func([]byte)) error {
	if save == nil {
		return nil
	}
	j, err := m.MarshalJSON()
	if err != nil {
		return fmt.Errorf("save the judge's state: %w", err)
	}
	p.Judge = j
	b, err := json.Marshal(p)
	if err != nil {
		return fmt.Errorf("save the analysis progress: %w", err)
	}
	save(b)
	return nil
}

// unavailable is the verdict of a source that could not be read: never a
// pass, with the error where the person deciding reads it.
func unavailable(src Source, err error) verdict.Verdict {
	reason := "unknown error"
	if err != nil {
		reason = err.Error()
	}
	return verdict.Verdict{
		Result:  verdict.Inconclusive,
		Summary: sourceError(src, reason),
		Metrics: []verdict.Metric{{Name: src.Where(), Result: verdict.Inconclusive, Reason: reason}},
	}
}
