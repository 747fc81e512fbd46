package judge

import (
	"math"
	"testing"

	"github.com/aclements/go-moremath/stats"
)

// Reference values in this file come from published examples; each case says
// where, and which variant of the test (exact or normal approximation, with or
// without continuity correction) the published number belongs to.

func near(got, want, tol float64) bool {
	if math.IsNaN(want) {
		return math.IsNaN(got)
	}
	return math.Abs(got-want) <= tol
}

func TestTwoProportionPublished(t *testing.T) {
	tests := []struct {
		name string
		// be/bn is blue's errors/requests, ge/gn green's.
		be, bn, ge, gn float64
		wantZ, wantP   float64
		tolZ, tolP     float64
	}{
		{
			// statsmodels proportions_ztest docstring example and its test
			// test_proportion.py::test_default_values (GH 2969):
			// count=[5, 12], nobs=[83, 99] gives z=-1.4078304151258787 and
			// two-sided p=0.15918129181156992 (the docs print 0.159). statsmodels
			// takes prop1-prop2, we take green-blue, so with blue=5/83 and
			// green=12/99 z flips sign and the one-sided p is half the two-sided.
			name: "statsmodels docs, green worse",
			be:   5, bn: 83, ge: 12, gn: 99,
			wantZ: 1.4078304151258787, wantP: 0.15918129181156992 / 2,
			tolZ: 1e-12, tolP: 1e-12,
		},
		{
			// The same numbers the other way round: green better than blue is
			// no evidence against green, so p is large.
			name: "statsmodels docs, green better",
			be:   12, bn: 99, ge: 5, gn: 83,
			wantZ: -1.4078304151258787, wantP: 1 - 0.15918129181156992/2,
			tolZ: 1e-12, tolP: 1e-12,
		},
		{
			// R, prop.test(x = c(6, 12), n = c(50, 50), correct = FALSE):
			// X-squared = 2.439, p-value = 0.1183 (two-sided), next to the hand
			// computed zobs = -1.561738 and 2*(1-pnorm(abs(zobs))) = 0.1183498.
			// R's output as pasted into a public course-exercise solutions
			// file (exercise 7.4, two defect rates). X-squared is z², and our
			// one-sided p is half the two-sided one.
			name: "R prop.test correct=FALSE, two-sided",
			be:   6, bn: 50, ge: 12, gn: 50,
			wantZ: 1.561738, wantP: 0.1183498 / 2,
			tolZ: 1e-6, tolP: 1e-7,
		},
		{
			// R, prop.test(c(358, 225), c(900, 900), alternative = "greater",
			// correct = FALSE): X-squared = 44.876, p-value = 1.049e-11, as
			// pasted into a public course notebook. "greater" is prop 1 >
			// prop 2, so prop 1 is green; z = sqrt(X-squared) = 6.699.
			name: "R prop.test correct=FALSE, one-sided greater",
			be:   225, bn: 900, ge: 358, gn: 900,
			wantZ: math.Sqrt(44.876), wantP: 1.049e-11,
			tolZ: 1e-4, tolP: 0.001e-11,
		},
		{name: "no errors anywhere", be: 0, bn: 1000, ge: 0, gn: 1000, wantZ: 0, wantP: 1},
		{name: "nothing but errors", be: 10, bn: 10, ge: 7, gn: 7, wantZ: 0, wantP: 1},
		{name: "NaN in", be: math.NaN(), bn: 100, ge: 1, gn: 100, wantZ: math.NaN(), wantP: math.NaN()},
		{name: "no requests", be: 0, bn: 0, ge: 1, gn: 100, wantZ: math.NaN(), wantP: math.NaN()},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			z, p := TwoProportion(tt.be, tt.bn, tt.ge, tt.gn)
			if !near(z, tt.wantZ, tt.tolZ) || !near(p, tt.wantP, tt.tolP) {
				t.Errorf("TwoProportion(%g, %g, %g, %g) = z %.10g, p %.10g; want z %.10g, p %.10g",
					tt.be, tt.bn, tt.ge, tt.gn, z, p, tt.wantZ, tt.wantP)
			}
		})
	}
}

// SciPy's mannwhitneyu docs example (scipy.stats.mannwhitneyu, "Examples",
// after Shier 2004): ages at diagnosis.
var (
	scipyMales   = []float64{19, 22, 16, 29, 24}
	scipyFemales = []float64{20, 11, 17, 12}
)

// TestMannWhitneyExactPublished pins go-moremath against SciPy's exact
// results. go-moremath uses the exact U distribution here (no ties, both
// samples at most MannWhitneyExactLimit = 50), as SciPy's method="exact" does.
func TestMannWhitneyExactPublished(t *testing.T) {
	// mannwhitneyu(males, females, method="exact"): U1 = 17, p = 0.1111111111111111.
	r, err := stats.MannWhitneyUTest(scipyMales, scipyFemales, stats.LocationDiffers)
	if err != nil {
		t.Fatal(err)
	}
	if r.U != 17 || !near(r.P, 0.1111111111111111, 1e-12) {
		t.Errorf("two-sided: U %g, p %.16g; want U 17, p 0.1111111111111111", r.U, r.P)
	}

	// mannwhitneyu(females, males, alternative="less", method="exact"):
	// statistic 3, p = 0.05555555555555555. "Females less than males" is the
	// same hypothesis as "males greater than females", which is how the judge
	// asks "green slower than blue" (green first).
	u, p, err := slowerTest(scipyMales, scipyFemales)
	if err != nil {
		t.Fatal(err)
	}
	if u != 17 || !near(p, 0.05555555555555555, 1e-12) {
		t.Errorf("slowerTest(males, females) = U %g, p %.16g; want U 17, p 0.05555555555555555", u, p)
	}

	// Direction: asking whether the younger group is the "slower" one must
	// not find it so. P(U >= 3) for 4 against 5 is 1 - 4/126.
	u, p, err = slowerTest(scipyFemales, scipyMales)
	if err != nil {
		t.Fatal(err)
	}
	if u != 3 || !near(p, 1-4.0/126, 1e-12) {
		t.Errorf("slowerTest(females, males) = U %g, p %.16g; want U 3, p %.16g", u, p, 1-4.0/126)
	}
}

// TestMannWhitneyNormalApproxPublished checks the other branch go-moremath
// takes for more than 50 samples per color (25 with ties), which is where
// real soaks land: a normal approximation with tie and continuity correction.
// SciPy's method="asymptotic" (use_continuity=True, the default) is the same
// approximation, and its docs give p = 0.11134688653314041 two-sided for the
// same example. The exact limits are lowered for the duration of the test to
// reach that branch with the published data.
func TestMannWhitneyNormalApproxPublished(t *testing.T) {
	exact, tiesExact := stats.MannWhitneyExactLimit, stats.MannWhitneyTiesExactLimit
	stats.MannWhitneyExactLimit, stats.MannWhitneyTiesExactLimit = 0, 0
	t.Cleanup(func() { stats.MannWhitneyExactLimit, stats.MannWhitneyTiesExactLimit = exact, tiesExact })

	r, err := stats.MannWhitneyUTest(scipyMales, scipyFemales, stats.LocationDiffers)
	if err != nil {
		t.Fatal(err)
	}
	if !near(r.P, 0.11134688653314041, 1e-12) {
		t.Errorf("two-sided normal approximation p = %.17g, want 0.11134688653314041", r.P)
	}
	// The continuity correction moves U half a step towards the mean either
	// way, so the one-sided p is exactly half of the two-sided one.
	_, p, err := slowerTest(scipyMales, scipyFemales)
	if err != nil {
		t.Fatal(err)
	}
	if !near(p, 0.11134688653314041/2, 1e-12) {
		t.Errorf("one-sided normal approximation p = %.17g, want %.17g", p, 0.11134688653314041/2)
	}
}

// TestMannWhitneyTortoiseHare is Wikipedia's "Mann–Whitney U test",
// "Illustration of calculation methods": six tortoises and six hares finish
// T H H H H H T T T T T H. Ranking the first one home 12, U_T = 11 (the hares
// each tortoise beats: 6, 1, 1, 1, 1, 1) and U_H = 25 (5, 5, 5, 5, 5, 0).
func TestMannWhitneyTortoiseHare(t *testing.T) {
	tortoises := []float64{12, 6, 5, 4, 3, 2}
	hares := []float64{11, 10, 9, 8, 7, 1}
	for _, tt := range []struct {
		name   string
		x1, x2 []float64
		wantU  float64
	}{
		{"U_T", tortoises, hares, 11},
		{"U_H", hares, tortoises, 25},
	} {
		u, _, err := slowerTest(tt.x1, tt.x2)
		if err != nil {
			t.Fatal(err)
		}
		if u != tt.wantU {
			t.Errorf("%s = %g, want %g", tt.name, u, tt.wantU)
		}
	}
}

func TestSlowerTestAllEqual(t *testing.T) {
	// go-moremath refuses samples that are all equal (ErrSamplesEqual); for
	// the judge that is simply no evidence of a slowdown.
	u, p, err := slowerTest([]float64{0.1, 0.1, 0.1}, []float64{0.1, 0.1, 0.1, 0.1})
	if err != nil || p != 1 || u != 6 {
		t.Errorf("slowerTest(all equal) = %g, %g, %v; want 6, 1, nil", u, p, err)
	}
}

func TestMedian(t *testing.T) {
	for _, tt := range []struct {
		xs   []float64
		want float64
	}{
		{nil, math.NaN()},
		{[]float64{3}, 3},
		{[]float64{3, 1, 2}, 2},
		{[]float64{4, 1, 3, 2}, 2.5},
	} {
		if got := median(tt.xs); !near(got, tt.want, 0) {
			t.Errorf("median(%v) = %g, want %g", tt.xs, got, tt.want)
		}
	}
}
