package judge

import (
	"fmt"
	"math"
	"time"

	"github.com/cutoverhq/cutover/verdict"
)

// A mean metric (revenue per order: a sum over a count) is compared by the
// difference of the two colors' means, with the variance of one observation
// estimated from how much the steps' means scatter around the window's mean
// (weighted by each step's count: Var(step mean) = sigma^2 / count). Both its
// tests use the normal-mixture boundary of pass.go, so unlike the error rate
// and the latency quantiles its failure test is asymptotic too, and it needs a
// few steps of each color (minMeanSteps) before it says anything.

// minMeanSteps is how many steps with observations each color needs before a
// mean metric is judged: the variance comes from the scatter of their means.
const minMeanSteps = 5

// moments are a color's sums over steps.
type moments struct {
	Sum   float64 `json:"sum"`
	Count float64 `json:"count"`
	// SumSq is the sum over steps of sum^2/count.
	SumSq float64 `json:"sumSq"`
	Steps int     `json:"steps"`
}

func (m *moments) add(p Pair) {
	if p.Den <= 0 {
		return
	}
	m.Sum += p.Num
	m.Count += p.Den
	m.SumSq += p.Num * p.Num / p.Den
	m.Steps++
}

func (m moments) mean() float64 {
	if m.Count <= 0 {
		return math.NaN()
	}
	return m.Sum / m.Count
}

// variance of one observation.
func (m moments) variance() float64 {
	if m.Steps < 2 {
		return math.NaN()
	}
	return math.Max(0, m.SumSq-m.Sum*m.Sum/m.Count) / float64(m.Steps-1)
}

type meanBlock struct {
	G moments `json:"g"`
	B moments `json:"b"`
}

// meanState judges one of the app's means.
type meanState struct {
	Name         string      `json:"name"`
	G            moments     `json:"g"`
	B            moments     `json:"b"`
	Blocks       []meanBlock `json:"blocks,omitempty"`
	Failed       bool        `json:"failed,omitempty"`
	FailZ        float64     `json:"failZ,omitempty"`
	Steps        int         `json:"steps"`
	Corrupt      int         `json:"corrupt,omitempty"`
	FirstCorrupt string      `json:"firstCorrupt,omitempty"`
	GreenMissing int         `json:"greenMissing,omitempty"`
	BlueMissing  int         `json:"blueMissing,omitempty"`
}

func pairProblem(p Pair) string {
	switch {
	case math.IsNaN(p.Num) || math.IsNaN(p.Den) || math.IsInf(p.Num, 0) || math.IsInf(p.Den, 0):
		return "a value that is not a number"
	case p.Den < 0:
		return "a negative count"
	case p.Den == 0 && p.Num != 0:
		return "a sum without a count"
	}
	return ""
}

// badSign is +1 when an increase is bad, -1 when a decrease is.
func badSign(mc MetricConfig) float64 {
	if mc.Better == "higher" {
		return -1
	}
	return 1
}

// add judges one step, and checks the failure boundary after it.
func (s *meanState) add(block int, green, blue map[string]Pair, at time.Time, alphaFail float64, mc MetricConfig) {
	s.Steps++
	g, gok := green[s.Name]
	b, bok := blue[s.Name]
	for _, c := range []struct {
		color string
		p     Pair
		ok    bool
	}{{"green", g, gok}, {"blue", b, bok}} {
		if !c.ok {
			continue
		}
		if p := pairProblem(c.p); p != "" {
			s.Corrupt++
			if s.FirstCorrupt == "" {
				s.FirstCorrupt = fmt.Sprintf("%s reported %s at %s", c.color, p, at.UTC().Format("15:04:05"))
			}
			return
		}
	}
	if !gok {
		s.GreenMissing++
		return
	}
	for len(s.Blocks) <= block {
		s.Blocks = append(s.Blocks, meanBlock{})
	}
	s.G.add(g)
	s.Blocks[block].G.add(g)
	if !bok {
		s.BlueMissing++
		return
	}
	s.B.add(b)
	s.Blocks[block].B.add(b)
	if z, info, m := s.stat(mc); !math.IsNaN(z) {
		if z >= mixtureBoundary(info, optimalInformation(math.Max(m, 1e-12), alphaFail), alphaFail) {
			s.Failed = true
		}
		s.FailZ = math.Max(s.FailZ, z)
	}
}

// stat is the change for the worse in units of its standard error, its
// information, and the margin in the metric's units.
func (s *meanState) stat(mc MetricConfig) (z, info, margin float64) {
	if s.G.Steps < minMeanSteps || s.B.Steps < minMeanSteps {
		return math.NaN(), 0, 0
	}
	v := s.G.variance()/s.G.Count + s.B.variance()/s.B.Count
	if !(v > 0) {
		return math.NaN(), 0, 0
	}
	d := badSign(mc) * (s.G.mean() - s.B.mean())
	return d / math.Sqrt(v), 1 / v, mc.Margin * math.Abs(s.B.mean())
}

// judge is the metric's outcome.
func (s *meanState) judge(ctx judgeContext, mc MetricConfig) outcome {
	o := outcome{Metric: verdict.Metric{Name: s.Name, Critical: *mc.Critical}}
	gm, bm := s.G.mean(), s.B.mean()
	var vs values
	vs.add("green_mean", gm)
	vs.add("blue_mean", bm)
	vs.add("green_count", s.G.Count)
	vs.add("blue_count", s.B.Count)
	vs.add("change", gm/bm-1)
	vs.add("margin", mc.Margin)
	vs.add("alpha", ctx.alphaFail)
	both := fmt.Sprintf("green %s over %s, blue %s over %s", fmtNumber(gm), fmtCount(s.G.Count), fmtNumber(bm), fmtCount(s.B.Count))
	finish := func(res verdict.Result, reason string) outcome {
		if s.Corrupt > 0 {
			vs.add("corrupt_steps", float64(s.Corrupt))
			reason += fmt.Sprintf(" (%d steps with impossible values left out, first: %s)", s.Corrupt, s.FirstCorrupt)
		}
		o.Result, o.Reason, o.Values = res, reason, vs
		return o
	}
	worse := "higher"
	if mc.Better == "higher" {
		worse = "lower"
	}
	if s.Failed {
		return finish(verdict.Fail, fmt.Sprintf("green's %s is %s than blue's (%s; z reached %.2f)", s.Name, worse, both, s.FailZ))
	}
	switch {
	case s.G.Steps == 0:
		return finish(verdict.Inconclusive, "green has no data")
	case s.B.Steps == 0:
		return finish(verdict.Inconclusive, "blue has no data to compare with")
	case float64(s.Corrupt) > corruptShare*float64(s.Steps):
		return finish(verdict.Inconclusive, fmt.Sprintf("%d of %d steps had impossible values, so none is trusted", s.Corrupt, s.Steps))
	case float64(s.Corrupt+s.GreenMissing+s.BlueMissing) > corruptShare*float64(s.Steps):
		// As for the rates: bad steps of both kinds count together.
		return finish(verdict.Inconclusive, fmt.Sprintf("%d of %d steps had impossible values and %d no value for a color, so the window cannot be judged",
			s.Corrupt, s.Steps, s.GreenMissing+s.BlueMissing))
	}
	z, info, m := s.stat(mc)
	if math.IsNaN(z) {
		o.underpowered = true
		return finish(verdict.Inconclusive, fmt.Sprintf("not enough data yet: each color needs %d steps with observations (green %d, blue %d)",
			minMeanSteps, s.G.Steps, s.B.Steps))
	}
	sd := 1 / math.Sqrt(info)
	d := z * sd
	iOpt := optimalInformation(math.Max(m, 1e-12), ctx.alpha)
	passes := func(f float64) bool {
		return (d-m)*math.Sqrt(info*f) <= -mixtureBoundary(info*f, iOpt, ctx.alpha)
	}
	detect := func(f float64) float64 { return (ctx.zFail + ctx.zPow) * sd / math.Sqrt(f) }
	detectable := detect(1)
	vs.add("detectable", detectable/math.Abs(bm))
	o.Detectable = fmtChangeOf(mc.Better == "higher", detectable, true, math.Abs(bm))
	if passes(1) && detectable <= m {
		var rg, rb moments
		for i := max(ctx.recentFrom, 0); i < len(s.Blocks); i++ {
			b := s.Blocks[i]
			rg.Sum, rg.Count = rg.Sum+b.G.Sum, rg.Count+b.G.Count
			rb.Sum, rb.Count = rb.Sum+b.B.Sum, rb.Count+b.B.Count
		}
		if rd := badSign(mc) * (rg.mean() - rb.mean()); !(rd <= m) {
			return finish(verdict.Inconclusive, fmt.Sprintf("the window as a whole is within the margin, but its newest third is not: green %s, blue %s",
				fmtNumber(rg.mean()), fmtNumber(rb.mean())))
		}
		return finish(verdict.Pass, fmt.Sprintf("%s: within the allowed %s with %s; could detect %s",
			both, fmtChangeOf(mc.Better == "higher", mc.Margin, true, 1), confidence(ctx.alpha), fmtChangeOf(mc.Better == "higher", detectable, true, math.Abs(bm))))
	}
	o.underpowered = true
	reason := fmt.Sprintf("not enough data to see a %s change in %s (%s); could detect %s", fmtChangeOf(mc.Better == "higher", mc.Margin, true, 1), s.Name, both,
		fmtChangeOf(mc.Better == "higher", detectable, true, math.Abs(bm)))
	if f := scaleNeeded(func(f float64) bool { return detect(f) <= m && passes(f) }); !math.IsInf(f, 1) {
		reason += fmt.Sprintf("; about %s more green observations needed", fmtAbout((f-1)*s.G.Count))
	}
	return finish(verdict.Inconclusive, reason)
}
