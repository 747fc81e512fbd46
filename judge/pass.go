package judge

import (
	"math"

	"github.com/aclements/go-moremath/stats"
)

// The pass test. Green passes a metric only when the data rule out a change
// for the worse larger than the allowed margin. For a difference of two
// proportions that is the non-inferiority score test of Farrington and
// Manning (1990), "Test statistics and sample size formulae for comparative
// binomial trials with null hypothesis of non-zero risk difference", Statistics
// in Medicine 9: Z = (d - margin) / sd, with sd computed at the maximum
// likelihood estimate restricted to the null (green exactly margin worse), so
// that a count of zero errors does not give a zero variance and a pass on no
// evidence. Z is monitored with the normal-mixture boundary of Robbins (1970),
// which makes it a time-uniform (asymptotic) confidence sequence: the
// "asymptotic confidence sequences" of Waudby-Smith, Arbour, Sinha, Kennedy and
// Ramdas (2024), "Time-uniform central limit theory and asymptotic confidence
// sequences", Annals of Statistics 52. Unlike the failure test this one is
// asymptotic; the restricted variance keeps it conservative at small counts,
// and the simulations in pass_test.go check its error rate where counts are
// smallest.

// mixtureBoundary is the normal-mixture boundary in z units at information I
// (1/variance of the estimate) for a one-sided level alpha, with the mixture
// tuned to be tightest at information iOpt:
//
//	b = sqrt(2 (1 + 1/(I rho2)) log(sqrt(1 + I rho2) / alpha)),  rho2 = c/iOpt,
//
// where c minimizes the boundary at I = iOpt (it depends on alpha only).
func mixtureBoundary(i, iOpt, alpha float64) float64 {
	if !(i > 0) {
		return math.Inf(1)
	}
	x := i * bestMixture(alpha) / iOpt
	return math.Sqrt((1 + 1/x) * math.Log((1+x)/(alpha*alpha)))
}

// bestMixture is the c that minimizes (1 + 1/c) log((1+c)/alpha^2), found by
// golden-section search on log c.
func bestMixture(alpha float64) float64 {
	f := func(lc float64) float64 {
		c := math.Exp(lc)
		return (1 + 1/c) * math.Log((1+c)/(alpha*alpha))
	}
	lo, hi := math.Log(1e-3), math.Log(1e7)
	g := (math.Sqrt(5) - 1) / 2
	a, b := hi-g*(hi-lo), lo+g*(hi-lo)
	fa, fb := f(a), f(b)
	for range 100 {
		if fa < fb {
			hi, b, fb = b, a, fa
			a = hi - g*(hi-lo)
			fa = f(a)
		} else {
			lo, a, fa = a, b, fb
			b = lo + g*(hi-lo)
			fb = f(b)
		}
	}
	return math.Exp((lo + hi) / 2)
}

// optimalInformation is where to tune the mixture for a test that must tell
// apart a change of size gap: where gap is about one boundary width.
func optimalInformation(gap, alpha float64) float64 {
	c := bestMixture(alpha)
	b2 := (1 + 1/c) * math.Log((1+c)/(alpha*alpha))
	return b2 / (gap * gap)
}

// restrictedMLE is Farrington and Manning's closed form of the maximum
// likelihood estimates of two proportions p1, p2 under p1 - p2 = delta, from x1
// of n1 and x2 of n2.
func restrictedMLE(x1, n1, x2, n2, delta float64) (p1, p2 float64) {
	if delta == 0 {
		p := (x1 + x2) / (n1 + n2)
		return p, p
	}
	h1, h2 := x1/n1, x2/n2
	theta := n2 / n1
	a := 1 + theta
	b := -(1 + theta + h1 + theta*h2 + delta*(theta+2))
	c := delta*delta + delta*(2*h1+theta+1) + h1 + theta*h2
	d := -h1 * delta * (1 + delta)
	v := b*b*b/(27*a*a*a) - b*c/(6*a*a) + d/(2*a)
	u := math.Sqrt(math.Max(0, b*b/(9*a*a)-c/(3*a)))
	if v < 0 {
		u = -u
	}
	r := 0.0
	if u != 0 {
		r = math.Max(-1, math.Min(1, v/(u*u*u)))
	}
	w := (math.Pi + math.Acos(r)) / 3
	p1 = 2*u*math.Cos(w) - b/(3*a)
	p1 = math.Max(delta, math.Min(1, p1))
	return p1, p1 - delta
}

// nonInferiority is the score statistic of "p1 - p2 >= delta" (the bad
// case) with its information: Pass when z <= -mixtureBoundary(info).
func nonInferiority(x1, n1, x2, n2, delta float64) (z, info float64) {
	if !(n1 > 0 && n2 > 0) {
		return math.NaN(), 0
	}
	p1, p2 := restrictedMLE(x1, n1, x2, n2, delta)
	v := p1*(1-p1)/n1 + p2*(1-p2)/n2
	if !(v > 0) {
		return math.NaN(), 0
	}
	return (x1/n1 - x2/n2 - delta) / math.Sqrt(v), 1 / v
}

// failBoundary approximates, in z units, where the failure e-process
// rejects: its best-matching term must reach 1/alpha after paying for the
// weights of the grid and of the first start time, so z^2/2 >= log(2K/alpha).
// The detectable change is computed with it.
func failBoundary(alpha float64) float64 {
	return math.Sqrt(2 * math.Log(2*float64(len(psiGrid))/alpha))
}

// zPower is the standard normal quantile of the power.
func zPower(power float64) float64 { return stats.StdNormal.InvCDF(power) }

// detectableIncrease is the smallest increase of green's rate over blue's p
// that the failure test would catch with the given power, with n1 of green's
// trials and n2 of blue's (a normal approximation of the e-process): the
// smallest delta with delta/sd(delta) >= zFail + zPower. +Inf when none is.
func detectableIncrease(p, n1, n2, zFail, zPow float64) float64 {
	if !(n1 > 0 && n2 > 0) || math.IsNaN(p) {
		return math.Inf(1)
	}
	need := zFail + zPow
	ok := func(d float64) bool {
		q := p + d
		sd := math.Sqrt(p*(1-p)/n2 + q*(1-q)/n1)
		return d/sd >= need
	}
	hi := 1 - p
	if hi <= 0 || !ok(hi) {
		return math.Inf(1)
	}
	return smallest(0, hi, ok)
}

// smallest is, to within 2^-50 of the span, the smallest x in [lo, hi] for
// which ok(x) holds, where ok is monotone and ok(hi) holds.
func smallest(lo, hi float64, ok func(float64) bool) float64 {
	for range 50 {
		mid := (lo + hi) / 2
		if ok(mid) {
			hi = mid
		} else {
			lo = mid
		}
	}
	return hi
}

// scaleNeeded is the smallest factor f >= 1 by which both colors' trials must
// grow for ok(f) to hold (ok is monotone in f); +Inf when even a million-fold
// will not do.
func scaleNeeded(ok func(f float64) bool) float64 {
	if ok(1) {
		return 1
	}
	hi := 2.0
	for !ok(hi) {
		hi *= 2
		if hi > 1e6 {
			return math.Inf(1)
		}
	}
	return smallest(hi/2, hi, ok)
}
