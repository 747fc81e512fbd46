package providertest_test

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/cutoverhq/cutover/providers"
	"github.com/cutoverhq/cutover/providers/providertest"
)

// fake is a traffic provider and Drainer in memory, whose "backend" fails on
// demand the way a provider should report it.
type fake struct {
	mu       sync.Mutex
	green    int
	fail     providertest.FailKind
	inFlight map[providers.Color]int
	// weights, when set, are the only weights SetWeight takes (a CNAME swap).
	weights []int
}

func (f *fake) Type() string { return "fake" }

func (f *fake) check() error {
	switch f.fail {
	case providertest.FailThrottle:
		return errors.New("429 slow down")
	case providertest.FailServer:
		return errors.New("500 internal error")
	case providertest.FailDenied:
		return providers.BadConfig("403 forbidden")
	case providertest.FailNotFound:
		return providers.NotFound("404 no such app")
	}
	return nil
}

func (f *fake) SetWeight(_ context.Context, _ string, green int) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.check(); err != nil {
		return err
	}
	if green < 0 || green > 100 {
		return providers.Invalid("weight %d is outside 0..100", green)
	}
	if f.weights != nil && !slices.Contains(f.weights, green) {
		return providers.Invalid("weight %d is not one of %v", green, f.weights)
	}
	f.green = green
	return nil
}

func (f *fake) Weight(context.Context, string) (int, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.check(); err != nil {
		return 0, err
	}
	return f.green, nil
}

func (f *fake) InFlight(_ context.Context, _ string, c providers.Color) (int, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.inFlight[c], nil
}

func (f *fake) set(fn func()) {
	f.mu.Lock()
	defer f.mu.Unlock()
	fn()
}

// target is a Target over a fake that takes only weights (nil: every weight),
// whose calls are recorded in calls.
func target(weights []int, calls *[]int) providertest.Target {
	var f *fake
	return providertest.Target{
		App:     "shop",
		Weights: weights,
		New: func(t *testing.T) providers.Traffic {
			f = &fake{inFlight: map[providers.Color]int{}, weights: weights}
			return recorder{f, calls}
		},
		Fail: func(t *testing.T, kind providertest.FailKind) func() {
			f.set(func() { f.fail = kind })
			return func() { f.set(func() { f.fail = "" }) }
		},
		Drain: func(t *testing.T, c providers.Color) func() {
			f.set(func() { f.inFlight[c] = 2 })
			return func() { f.set(func() { f.inFlight[c] = 0 }) }
		},
	}
}

// recorder records the weights its provider is asked to set.
type recorder struct {
	*fake
	calls *[]int
}

func (r recorder) SetWeight(ctx context.Context, app string, green int) error {
	if r.calls != nil {
		r.fake.set(func() { *r.calls = append(*r.calls, green) })
	}
	return r.fake.SetWeight(ctx, app, green)
}

func TestTheSuitePassesAConformingProvider(t *testing.T) {
	providertest.Traffic(t, target(nil, nil))
}

func TestTheSuitePassesASwapProvider(t *testing.T) {
	var calls []int
	providertest.Traffic(t, target([]int{0, 100}, &calls))
	// The suite asked for 10, 50 and 99 only to see them refused, once each.
	for _, w := range []int{10, 50, 99} {
		if n := count(calls, w); n != 1 {
			t.Errorf("SetWeight(%d) called %d times; want once, in the unsupported-weight check (calls: %v)", w, n, calls)
		}
	}
	for _, w := range []int{0, 100} {
		if count(calls, w) == 0 {
			t.Errorf("SetWeight(%d) never called (calls: %v)", w, calls)
		}
	}
}

func count(ws []int, w int) int {
	n := 0
	for _, x := range ws {
		if x == w {
			n++
		}
	}
	return n
}

// selfTestEnv names the case TestTheSuiteFails runs in a child process.
const selfTestEnv = "PROVIDERTEST_SELF_TEST"

// TestTheSuiteFails runs the suite in a child process (a failing suite fails
// its test, which cannot be undone in this one) against targets it must fail,
// and checks that exactly the expected subtest failed, for the expected reason.
func TestTheSuiteFails(t *testing.T) {
	// claiming is a target over a fake that takes every weight, which says
	// it takes only weights.
	claiming := func(weights []int) providertest.Target {
		tg := target(nil, nil)
		tg.Weights = weights
		return tg
	}
	cases := map[string]struct {
		target providertest.Target
		// failed is the subtest that must fail ("": the suite itself, before any subtest).
		failed string
		want   string
	}{
		"a provider that takes a weight it says it cannot set": {
			target: claiming([]int{0, 100}),
			failed: "an_unsupported_weight_is_refused_permanently",
			want:   "SetWeight(10) succeeded; want a permanent error",
		},
		"weights without 100": {
			target: claiming([]int{0, 50}),
			want:   "Target.Weights [0 50] must include 0 and 100",
		},
		"weights without 0": {
			target: claiming([]int{100}),
			want:   "Target.Weights [100] must include 0 and 100",
		},
		"weights outside 0..100": {
			target: claiming([]int{0, 100, 150}),
			want:   "holds 150, outside 0..100",
		},
	}
	if name := os.Getenv(selfTestEnv); name != "" {
		c, ok := cases[name]
		if !ok {
			t.Fatalf("no case %q", name)
		}
		providertest.Traffic(t, c.target)
		return
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			cmd := exec.Command(os.Args[0], "-test.run=^TestTheSuiteFails$", "-test.v", "-test.count=1")
			cmd.Env = append(os.Environ(), selfTestEnv+"="+name)
			out, err := cmd.CombinedOutput()
			var ee *exec.ExitError
			if !errors.As(err, &ee) {
				t.Fatalf("the suite passed or did not run (%v); want it to fail:\n%s", err, out)
			}
			if !strings.Contains(string(out), c.want) {
				t.Errorf("output does not say %q:\n%s", c.want, out)
			}
			var failed []string
			for _, line := range strings.Split(string(out), "\n") {
				line = strings.TrimSpace(line)
				if rest, ok := strings.CutPrefix(line, "--- FAIL: TestTheSuiteFails/"); ok {
					failed = append(failed, strings.Fields(rest)[0])
				}
			}
			var want []string
			if c.failed != "" {
				want = []string{c.failed}
			}
			if !slices.Equal(failed, want) {
				t.Errorf("failed subtests = %v; want %v:\n%s", failed, want, out)
			}
		})
	}
}

func TestPermanent(t *testing.T) {
	for _, c := range []struct {
		err  error
		want bool
	}{
		{providers.BadConfig("x"), true},
		{providers.NotFound("x"), true},
		{providers.Invalid("x"), true},
		{providers.CheckFailed("x"), true},
		{errors.New("timeout"), false},
		{nil, false},
	} {
		if got := providertest.Permanent(c.err); got != c.want {
			t.Errorf("Permanent(%v) = %v, want %v", c.err, got, c.want)
		}
	}
}
