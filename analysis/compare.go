package analysis

import (
	"context"
	"math"
	"time"

	"github.com/cutoverhq/cutover/judge"
	"github.com/cutoverhq/cutover/providers"
	"github.com/cutoverhq/cutover/verdict"
)

// CompareSpec is one analysis step's comparison.
type CompareSpec struct {
	// Start is when the window began, as the workflow recorded it.
	Start time.Time
	// Window is how long the comparison watches at most.
	Window time.Duration
	// EarlyStop ends the comparison as soon as the verdict is Pass or Fail.
	EarlyStop bool
}

// endReads is how many times the read at the end of a window is tried before
// the comparison gives up on its last steps.
const endReads = 3

// Compare judges green against blue over the coming window, one source step at
// a time. A Fail ends it at once; with EarlyStop, so does a Pass. A read that
// fails inside the window is tried again at the next step (counters and
// ranged sources lose nothing); when the end of the window cannot be read,
// the verdict is Inconclusive and says why. saved and save carry the progress
// across attempts, as for Guard.
func Compare(ctx context.Context, src Source, r providers.Ref, c CompareSpec, saved []byte, save func([]byte), clk Clock) (verdict.Verdict, error) {
	step := src.Step()
	if step <= 0 || c.Window <= 0 {
		return verdict.Verdict{}, providers.BadConfig("comparison: window %s and step %s must be above 0", c.Window, step)
	}
	m, err := judge.New(src.Judge(), judge.Plan{Mode: judge.Comparison, Steps: int(math.Ceil(float64(c.Window) / float64(step)))})
	if err != nil {
		return verdict.Verdict{}, providers.BadConfig("%s judge: %v", src.Type(), err)
	}
	c.Start = notAfter(c.Start, clk.Now())
	p := Progress{Reader: reader{src: src, Since: c.Start}, LastJudged: c.Start}
	if err := resume(&p, m, saved); err != nil {
		return verdict.Verdict{}, err
	}
	end := c.Start.Add(c.Window)
	// The last steps of a source whose data arrive late are read after it.
	last := end.Add(lagOf(src))
	var lastErr error
	tries := 0
	for {
		now := clk.Now()
		if now.After(last) {
			now = last
		}
		steps, err := p.Reader.read(ctx, r, now)
		switch {
		case err != nil && ctx.Err() != nil:
			return verdict.Verdict{}, ctx.Err()
		case err != nil && permanent(err):
			return verdict.Verdict{}, err
		case err != nil:
			lastErr = err
		default:
			lastErr = nil
			for _, s := range steps {
				// The window's last read lands a moment after its end (a
				// scrape is stamped when it answers); a step ending more than
				// half a step after the end is the next window's.
				if s.End.After(end.Add(step / 2)) {
					break
				}
				m.Add(s)
			}
			p.LastJudged = now
			v := m.Verdict()
			if v.Result == verdict.Fail || c.EarlyStop && v.Result == verdict.Pass {
				return v, nil
			}
		}
		if err := checkpoint(&p, m, save); err != nil {
			return verdict.Verdict{}, err
		}
		if !now.Before(last) {
			if lastErr == nil {
				return m.Verdict(), nil
			}
			if tries++; tries >= endReads {
				return unavailable(src, lastErr), nil
			}
			if err := clk.Sleep(ctx, time.Second); err != nil {
				return verdict.Verdict{}, err
			}
			continue
		}
		next := c.Start.Add(time.Duration(int(now.Sub(c.Start)/step)+1) * step)
		if next.After(last) {
			next = last
		}
		if err := clk.Sleep(ctx, next.Sub(clk.Now())); err != nil {
			return verdict.Verdict{}, err
		}
	}
}
