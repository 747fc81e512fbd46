package judge

import (
	"math"
)

// eProcess is the failure test: an anytime-valid sequential test of "the
// events fall on green no more often than q0 says", fed one step at a time.
//
// The method. Each step gives k trials of which x were events, where, if green
// is no worse, each trial is an event with probability at most q0 (q0 may
// change from step to step). It is used two ways:
//
//   - Relative to blue (errors, latency exceedances, an app's proportions): a
//     step's events are the failed requests of both colors, and x of them are
//     green's. If green's rate is no higher than blue's, then, given the
//     step's total, green's count is stochastically no larger than a
//     hypergeometric draw, which is smaller in convex order than
//     Binomial(k, q0) with q0 = green's share of the step's requests
//     (Hoeffding 1963, Theorem 4). This is the conditional test for
//     comparing two rates (Przyborowski and Wilenski 1940; Lehmann and
//     Romano, Testing Statistical Hypotheses, 4.5): it needs no estimate of
//     the base rate, is exact at any count, and a change that hits both colors
//     at once (a dependency's bad minute) does not move it.
//   - Against a ceiling (green's error rate above 1%): the trials are green's
//     requests and q0 is the ceiling.
//
// Against each alternative "odds multiplied by psi", the step's likelihood
// ratio LR(psi) = (q1/q0)^x ((1-q1)/(1-q0))^(k-x), q1 = psi q0/(psi q0 + 1 -
// q0), has expectation at most 1 under the null (the binomial family has a
// monotone likelihood ratio, and LR is increasing and convex in x), so its
// running product is a test supermartingale. The e-process mixes these
// products over a fixed grid of psi (Robbins 1970's method of mixtures, with a
// discrete mixing distribution as in Howard, Ramdas, McAuliffe and Sekhon
// 2021, "Time-uniform, nonparametric, nonasymptotic confidence sequences") and
// over a fixed set of start times, so that evidence that begins late in the
// window is not drowned by the good steps before it (the mixture over change
// points of Shin, Ramdas and Rinaldo 2024, "E-detectors"). Every term starts
// at 1 times its weight and the weights sum to at most 1, so the mixture is a
// nonnegative supermartingale starting at most at 1, and by Ville's
// inequality (1939) it ever reaches 1/alpha with probability at most alpha:
// the guarantee holds however many steps are looked at. This is the
// always-valid p-value of Johari, Koomen, Pekelis and Walsh (2017), "Peeking
// at A/B tests", with 1/max(E) as the p-value.
type eProcess struct {
	// Down tests for fewer events than q0 instead of more (an app metric
	// where higher is better, or "green is below the ceiling").
	Down bool `json:"down,omitempty"`
	// LogA holds, per psi of the grid, log of the sum over the opened start
	// times s of w_s times the product of LR(psi) from s to now.
	LogA []float64 `json:"logA"`
	// Steps is how many steps were added.
	Steps int `json:"steps"`
	// Horizon is how many steps the window was planned to hold; the start
	// times are spread over it.
	Horizon int `json:"horizon"`
	// MaxLogE is the largest log E seen: 1/exp(MaxLogE) is the always-valid
	// p-value.
	MaxLogE float64 `json:"maxLogE"`
}

// psiGrid are the alternatives mixed over: odds of an event this many times
// the null's. Equal weights; the spread covers a 10% worse green at high
// traffic and a broken one at low traffic. log(len) is the price in evidence
// of not knowing the effect size in advance.
var psiGrid = []float64{1.1, 1.2, 1.35, 1.6, 2, 2.7, 4, 7, 15, 40}

// changepointBlocks is how many parts the planned window is cut into for the
// start times: a start at step 0 with weight 1/2, and one at the start of
// each other part with weight 1/(2(changepointBlocks-1)). A regression that
// begins late is judged from the last start before it, at most a part late.
const changepointBlocks = 8

func newEProcess(horizon int, down bool) eProcess {
	if horizon < 1 {
		horizon = 1
	}
	logA := make([]float64, len(psiGrid))
	for i := range logA {
		logA[i] = logZero
	}
	return eProcess{Down: down, LogA: logA, Horizon: horizon, MaxLogE: 0}
}

// startWeight is the weight of a start time at step i, 0 when none starts
// there.
func (e *eProcess) startWeight(i int) float64 {
	if i == 0 {
		return 0.5
	}
	for b := 1; b < changepointBlocks; b++ {
		s := b * e.Horizon / changepointBlocks
		if s == i && s > (b-1)*e.Horizon/changepointBlocks {
			return 0.5 / (changepointBlocks - 1)
		}
	}
	return 0
}

// add feeds one step: k trials, x events, each an event with probability at
// most q0 (or at least, when Down) if green is no worse. A step with no
// trials, or a q0 of 0 or 1, carries no evidence but still counts as a step,
// so the start times stay where they were planned.
func (e *eProcess) add(k, x, q0 float64) {
	if w := e.startWeight(e.Steps); w > 0 {
		lw := math.Log(w)
		for j := range e.LogA {
			e.LogA[j] = logAddExp(e.LogA[j], lw)
		}
	}
	e.Steps++
	if !(k > 0) || !(q0 > 0 && q0 < 1) || x < 0 || x > k {
		return
	}
	for j, psi := range psiGrid {
		if e.Down {
			psi = 1 / psi
		}
		e.LogA[j] += binomialLogLR(k, x, q0, psi)
	}
	if l := e.logE(); l > e.MaxLogE {
		e.MaxLogE = l
	}
}

// logE is log of the current e-value.
func (e *eProcess) logE() float64 {
	l := logZero
	for _, a := range e.LogA {
		l = logAddExp(l, a)
	}
	return l - math.Log(float64(len(e.LogA)))
}

// rejected reports whether the e-process has ever reached 1/alpha.
func (e *eProcess) rejected(alpha float64) bool {
	return e.MaxLogE >= math.Log(1/alpha)
}

// pValue is the always-valid p-value: 1/max E, at most 1.
func (e *eProcess) pValue() float64 {
	return math.Min(1, math.Exp(-e.MaxLogE))
}

// binomialLogLR is log LR(psi) of x events in k trials against the null q0.
func binomialLogLR(k, x, q0, psi float64) float64 {
	q1 := psi * q0 / (psi*q0 + 1 - q0)
	l := 0.0
	if x > 0 {
		l += x * math.Log(q1/q0)
	}
	if k > x {
		l += (k - x) * math.Log((1-q1)/(1-q0))
	}
	return l
}

// logZero stands for log 0. It is finite because the state travels as JSON in
// heartbeats, which cannot hold infinities; exp of it is 0.
const logZero = -1e300

// logAddExp is log(exp(a) + exp(b)) without overflow.
func logAddExp(a, b float64) float64 {
	if a <= logZero {
		return b
	}
	if b <= logZero {
		return a
	}
	if a < b {
		a, b = b, a
	}
	return a + math.Log1p(math.Exp(b-a))
}
