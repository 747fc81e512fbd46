package judge

import (
	"encoding/json"
	"fmt"
	"math"
	"strings"
	"time"

	"github.com/cutoverhq/cutover/verdict"
)

// Mode is what a Monitor judges.
type Mode string

// Modes.
const (
	// Soak is a guard over a soak: it is asked after every interval whether
	// green has failed, and at the end for the whole soak's verdict.
	Soak Mode = "soak"
	// Comparison is an analysis step's window; with earlyStop it ends as soon
	// as the verdict is Pass or Fail.
	Comparison Mode = "comparison"
)

// Plan is the shape of what a Monitor judges.
type Plan struct {
	Mode Mode `json:"mode"`
	// Steps is how many steps the window is planned to hold at most (a soak's
	// duration and extension over its interval). The failure tests spread
	// their start times over it, and the recency check cuts it in parts.
	Steps int `json:"steps"`
}

// Gap is a span in which the guard did not judge green on time: the source
// could not be read, or no worker was running the guard.
type Gap struct {
	From   time.Time `json:"from"`
	To     time.Time `json:"to"`
	Missed int       `json:"missed"`
}

// recencyBlocks is how many parts the planned window is cut into for the
// recency check: a pass also needs the newest third of the parts seen so far
// not to look worse than the margin.
const recencyBlocks = 12

// maxNotes bounds the lines of notes a verdict carries of one kind.
const maxNotes = 5

// corruptShare is the share of a metric's steps with impossible numbers above
// which none of its data is trusted.
const corruptShare = 0.1

// Monitor judges one soak or one comparison. It is not safe for concurrent
// use. Its state is JSON (MarshalJSON), so that a guard that moves to another
// worker picks up the evidence where the last one left it.
type Monitor struct {
	cfg       Config
	alphaFail float64
	st        State
}

// State is what a Monitor has learned.
type State struct {
	Plan      Plan          `json:"plan"`
	Steps     int           `json:"steps"`
	BlockSize int           `json:"blockSize"`
	Errors    *rateState    `json:"errors,omitempty"`
	Latency   *latencyState `json:"latency,omitempty"`
	Rates     []*rateState  `json:"rates,omitempty"`
	Means     []*meanState  `json:"means,omitempty"`
	Resets    []string      `json:"resets,omitempty"`
	NumResets int           `json:"numResets,omitempty"`
	Gaps      []Gap         `json:"gaps,omitempty"`
	Last      time.Time     `json:"last,omitzero"`
	Traffic   trafficTotals `json:"traffic"`
}

// trafficTotals counts each color's requests over the window, for the
// summary and for knowing whether blue had any traffic at all.
type trafficTotals struct {
	Blue, Green           float64
	BlueSteps, GreenSteps int // steps in which the color had a request count
}

// New returns a Monitor for cfg (completed with WithDefaults; an invalid
// config is an error) over plan.
func New(cfg Config, plan Plan) (*Monitor, error) {
	cfg = cfg.WithDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if plan.Steps < 1 {
		plan.Steps = 1
	}
	m := &Monitor{cfg: cfg}
	m.alphaFail = cfg.Alpha / float64(m.failureTests())
	m.st = State{Plan: plan, BlockSize: (plan.Steps + recencyBlocks - 1) / recencyBlocks}
	if !cfg.ErrorRate.Off {
		m.st.Errors = newRateState(metricErrorRate, false, plan.Steps, cfg.ErrorRate.Ceiling)
	}
	if !cfg.Latency.Off {
		m.st.Latency = newLatencyState(cfg.Latency, plan.Steps)
	}
	for _, mc := range cfg.Metrics {
		switch mc.Kind {
		case KindProportion:
			m.st.Rates = append(m.st.Rates, newRateState(mc.Name, mc.Better == "higher", plan.Steps, 0))
		case KindMean:
			m.st.Means = append(m.st.Means, &meanState{Name: mc.Name})
		}
	}
	return m, nil
}

// failureTests is how many failure tests share alpha (Bonferroni): a green as
// good as blue fails any of them in at most alpha of windows.
func (m *Monitor) failureTests() int {
	n := len(m.cfg.Metrics)
	if !m.cfg.ErrorRate.Off {
		n++
		if m.cfg.ErrorRate.Ceiling > 0 {
			n++
		}
	}
	if !m.cfg.Latency.Off {
		n += len(m.cfg.Latency.Quantiles)
		if m.cfg.Latency.MaxP99 > 0 {
			n++
		}
	}
	return max(n, 1)
}

// MarshalJSON is the Monitor's state.
func (m *Monitor) MarshalJSON() ([]byte, error) { return json.Marshal(m.st) }

// Restore replaces the Monitor's state with one that MarshalJSON gave, from a
// Monitor with the same config and plan.
func (m *Monitor) Restore(b []byte) error {
	var st State
	if err := json.Unmarshal(b, &st); err != nil {
		return fmt.Errorf("restore the judge's state: %w", err)
	}
	if st.Plan != m.st.Plan {
		return fmt.Errorf("restore the judge's state: it was for %+v, not %+v", st.Plan, m.st.Plan)
	}
	fresh := m.st
	if (st.Errors == nil) != (fresh.Errors == nil) || (st.Latency == nil) != (fresh.Latency == nil) ||
		len(st.Rates) != len(fresh.Rates) || len(st.Means) != len(fresh.Means) {
		return fmt.Errorf("restore the judge's state: it was for other metrics")
	}
	m.st = st
	return nil
}

// Steps is how many steps were added.
func (m *Monitor) Steps() int { return m.st.Steps }

// Last is the end of the newest step added.
func (m *Monitor) Last() time.Time { return m.st.Last }

// Gap records a span the guard did not judge on time. The data of that span
// may still arrive later (counters are cumulative), but a verdict can no
// longer say that nothing went wrong then: it is never a Pass.
func (m *Monitor) Gap(g Gap) { m.st.Gaps = append(m.st.Gaps, g) }

// Add judges one more step.
func (m *Monitor) Add(s Step) {
	block := m.st.Steps / m.st.BlockSize
	m.st.Steps++
	if s.End.After(m.st.Last) {
		m.st.Last = s.End
	}
	for _, r := range s.Resets {
		m.st.NumResets++
		if len(m.st.Resets) < maxNotes {
			m.st.Resets = append(m.st.Resets, r)
		}
	}
	t := &m.st.Traffic
	if countable(s.Blue.Requests) {
		t.Blue += s.Blue.Requests
		t.BlueSteps++
	}
	if countable(s.Green.Requests) {
		t.Green += s.Green.Requests
		t.GreenSteps++
	}
	if e := m.st.Errors; e != nil {
		e.add(block, obs{s.Green.Errors, s.Green.Requests}, obs{s.Blue.Errors, s.Blue.Requests}, s.End)
	}
	if l := m.st.Latency; l != nil {
		l.add(block, s.Green.Latency, s.Blue.Latency, s.End)
	}
	for _, r := range m.st.Rates {
		r.add(block, obsOf(r.Name, s.Green.Metrics), obsOf(r.Name, s.Blue.Metrics), s.End)
	}
	for i, mn := range m.st.Means {
		mn.add(block, s.Green.Metrics, s.Blue.Metrics, s.End, m.alphaFail, m.cfg.Metrics[m.meanConfig(i)])
	}
}

// obsOf is an app metric's step as events of trials; a metric the source did
// not report is NaN.
func obsOf(name string, ms map[string]Pair) obs {
	p, ok := ms[name]
	if !ok {
		return obs{math.NaN(), math.NaN()}
	}
	return obs{p.Num, p.Den}
}

// meanConfig is the index in cfg.Metrics of the i-th mean metric.
func (m *Monitor) meanConfig(i int) int {
	n := -1
	for j, mc := range m.cfg.Metrics {
		if mc.Kind == KindMean {
			n++
			if n == i {
				return j
			}
		}
	}
	return -1
}

// Failed reports whether a critical metric has failed: what a guard asks
// after every interval. It is cheap; Verdict then says why.
func (m *Monitor) Failed() bool {
	crit := func(c *bool) bool { return c != nil && *c }
	if e := m.st.Errors; e != nil && crit(m.cfg.ErrorRate.Critical) {
		if e.Fail.rejected(m.alphaFail) || e.Ceil != nil && e.Ceil.rejected(m.alphaFail) {
			return true
		}
	}
	if l := m.st.Latency; l != nil && crit(m.cfg.Latency.Critical) {
		for _, q := range l.Quantiles {
			if q.Fail.rejected(m.alphaFail) {
				return true
			}
		}
		if l.Ceil != nil && l.Ceil.rejected(m.alphaFail) {
			return true
		}
	}
	ri, mi := 0, 0
	for _, mc := range m.cfg.Metrics {
		switch mc.Kind {
		case KindProportion:
			if crit(mc.Critical) && m.st.Rates[ri].Fail.rejected(m.alphaFail) {
				return true
			}
			ri++
		case KindMean:
			if crit(mc.Critical) && m.st.Means[mi].Failed {
				return true
			}
			mi++
		}
	}
	return false
}

// outcome is one metric's judgement.
type outcome struct {
	verdict.Metric
	// underpowered: Inconclusive only because there was not enough traffic.
	underpowered bool
}

// Verdict is the judgement of everything added so far. A Fail is final the
// moment it happens; a Pass needs every metric to pass; anything else is
// Inconclusive with the reason, and Underpowered when that reason is only a
// lack of traffic.
func (m *Monitor) Verdict() verdict.Verdict {
	ctx := m.judgeContext()
	var outs []outcome
	blueIdle := m.st.Traffic.BlueSteps > 0 && m.st.Traffic.Blue == 0
	if e := m.st.Errors; e != nil {
		outs = append(outs, e.judgeErrors(ctx, m.cfg.ErrorRate, blueIdle)...)
	}
	if l := m.st.Latency; l != nil {
		outs = append(outs, l.judge(ctx, m.cfg.Latency, blueIdle)...)
	}
	ri, mi := 0, 0
	for _, mc := range m.cfg.Metrics {
		switch mc.Kind {
		case KindProportion:
			outs = append(outs, m.st.Rates[ri].judgeRate(ctx, mc))
			ri++
		case KindMean:
			outs = append(outs, m.st.Means[mi].judge(ctx, mc))
			mi++
		}
	}
	return m.combine(outs)
}

// judgeContext is what every metric's judgement needs.
type judgeContext struct {
	alpha, alphaFail float64
	zFail, zPow      float64
	steps, blockSize int
	recentFrom       int // first block of the newest third
}

func (m *Monitor) judgeContext() judgeContext {
	blocks := 0
	if m.st.Steps > 0 {
		blocks = (m.st.Steps-1)/m.st.BlockSize + 1
	}
	return judgeContext{
		alpha: m.cfg.Alpha, alphaFail: m.alphaFail,
		zFail: failBoundary(m.alphaFail), zPow: zPower(m.cfg.Power),
		steps: m.st.Steps, blockSize: m.st.BlockSize,
		recentFrom: blocks - max(1, (blocks+2)/3),
	}
}

// combine makes the verdict of the metrics' outcomes: a critical Fail ends the
// release; a non-critical Fail or an Inconclusive metric asks a person; only a
// clean sweep with no gap passes.
func (m *Monitor) combine(outs []outcome) verdict.Verdict {
	v := verdict.Verdict{}
	var failed, why, undecided, short []string
	underpowered := true
	for _, o := range outs {
		if o.Result == verdict.Inconclusive && o.underpowered {
			d := o.Detectable
			if d == "" {
				d = "nothing yet"
			}
			short = append(short, o.Name+" could detect "+d)
		}
		v.Metrics = append(v.Metrics, o.Metric)
		switch {
		case o.Result == verdict.Fail && o.Critical:
			failed = append(failed, o.Name)
			why = append(why, o.Reason)
		case o.Result == verdict.Fail:
			undecided = append(undecided, o.Name+" failed but is not critical, so a person decides: "+o.Reason)
			underpowered = false
		case o.Result == verdict.Inconclusive:
			undecided = append(undecided, o.Name+": "+o.Reason)
			underpowered = underpowered && o.underpowered
		}
	}
	v.Notes = m.notes()
	switch {
	case len(outs) == 0:
		v.Result, v.Summary = verdict.Inconclusive, "nothing was judged"
	case len(failed) > 0:
		v.Result = verdict.Fail
		v.Summary = andList(failed) + " failed: " + strings.Join(why, "; ")
	case len(m.st.Gaps) > 0:
		v.Result = verdict.Inconclusive
		v.Summary = "the guard did not watch green all the time, so it cannot say nothing went wrong: " + strings.Join(m.gapLines(), "; ")
		if len(undecided) > 0 {
			v.Summary += "; " + strings.Join(undecided, "; ")
		}
	case len(undecided) > 0 && underpowered:
		// Each metric's reason says how much more traffic it needs.
		v.Result, v.Underpowered = verdict.Inconclusive, true
		v.Summary = "too little traffic yet to show green within every margin: " + strings.Join(short, ", ")
	case len(undecided) > 0:
		v.Result = verdict.Inconclusive
		v.Summary = strings.Join(undecided, "; ")
	default:
		v.Result = verdict.Pass
		v.Summary = fmt.Sprintf("green is within every margin (%d metrics)", len(outs))
		if len(outs) == 1 {
			v.Summary = outs[0].Name + " is within its margin"
		}
	}
	return v
}

func (m *Monitor) gapLines() []string {
	var out []string
	for _, g := range m.st.Gaps {
		out = append(out, fmt.Sprintf("missed %d intervals from %s to %s", g.Missed,
			g.From.UTC().Format("15:04:05"), g.To.UTC().Format("15:04:05")))
	}
	return out
}

// notes are what the verdict says about the data beyond each metric.
func (m *Monitor) notes() []string {
	var out []string
	for _, r := range m.st.Resets {
		out = append(out, "counter reset: "+r)
	}
	if more := m.st.NumResets - len(m.st.Resets); more > 0 {
		out = append(out, fmt.Sprintf("and %d more counter resets", more))
	}
	out = append(out, m.gapLines()...)
	return out
}

// countable is a count that can be summed: not NaN, not infinite, not negative.
func countable(x float64) bool { return x >= 0 && !math.IsInf(x, 1) }
