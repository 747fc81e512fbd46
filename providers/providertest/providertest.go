// Package providertest is the conformance suite every traffic provider passes:
// the behaviour the release workflow relies on, whatever splits the traffic (the
// local router, HAProxy, a cloud load balancer).
//
// A provider's test builds a Target (how to get a provider whose blue and green
// are ready, and optionally how to break its backend and how to hold requests in
// flight) and calls Traffic:
//
//	func TestConformance(t *testing.T) {
//		providertest.Traffic(t, providertest.Target{
//			App: "shop",
//			New: func(t *testing.T) providers.Traffic { ... },
//		})
//	}
//
// A provider that cannot set every weight from 0 to 100 says which it can in
// Target.Weights: a CNAME swap (Elastic Beanstalk) moves all the traffic at
// once, so it sets Weights to []int{0, 100}. Weights must hold 0 and 100. The
// suite then sets only those weights where it would set others, and checks
// that the others are refused.
//
// What the suite checks (the weights not in Target.Weights left out):
//   - weights 0 → 10 → 50 → 100 → 0 are set and read back as set;
//   - setting the same weight twice is not an error and reads back the same;
//   - a rollback to 0 works from 10, 50, 99 and 100;
//   - out-of-range weights (-1, 101) fail with a permanent error
//     (providers.ErrBadConfig, ErrNotFound, ErrInvalid or ErrCheckFailed) and
//     leave the weight as it was;
//   - with Target.Weights: each of 10, 50 and 99 that is not in Weights fails
//     with a permanent error and leaves the weight as it was;
//   - with Target.Fail: throttling and server failures are retryable (not one
//     of the permanent kinds) and the call succeeds once the backend is
//     restored; a denied request and a missing resource are permanent
//     (ErrInvalid, ErrNotFound or ErrBadConfig);
//   - with Target.Drain, for a provider that implements providers.Drainer:
//     InFlight counts held requests on their color, and is 0 once they finish.
package providertest

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/cutoverhq/cutover/providers"
)

// Target is a traffic provider under test and how to break it.
type Target struct {
	// New returns a provider for App whose blue and green are ready, green at 0%.
	New func(t *testing.T) providers.Traffic
	App string
	// Fail, when set, makes the provider's backend fail its next calls in the
	// given way until restore is called. Returning a nil restore says the
	// provider's backend cannot fail that way: the suite skips the kind.
	Fail func(t *testing.T, kind FailKind) (restore func())
	// Drain, when set, puts some requests in flight on a color and returns a
	// function that finishes them; used to check Drainer.InFlight. The suite
	// has put all the traffic on that color (weight 0 for blue, 100 for
	// green) before it calls Drain, so requests sent through the provider's
	// front door land there.
	Drain func(t *testing.T, c providers.Color) (finish func())
	// Timeout bounds each provider call (default 10s).
	Timeout time.Duration
	// Settle, when set, is how long InFlight may take to see requests start
	// and finish (for providers whose counters lag; default 5s).
	Settle time.Duration
	// Weights are the weights the provider can set, for a provider that
	// cannot set every weight from 0 to 100 (a CNAME swap: []int{0, 100});
	// nil means every weight. They must include 0 and 100.
	Weights []int
}

// FailKind is a way the provider's backend fails.
type FailKind string

// The failures a Target.Fail can inject.
const (
	// FailThrottle is the backend refusing calls for now (HTTP 429, a rate limit).
	FailThrottle FailKind = "throttle"
	// FailServer is the backend failing (HTTP 5xx, a dropped connection).
	FailServer FailKind = "server"
	// FailDenied is the backend refusing the caller (HTTP 403, bad credentials).
	FailDenied FailKind = "denied"
	// FailNotFound is the backend not knowing the resource (HTTP 404, an unknown name).
	FailNotFound FailKind = "notfound"
)

// Permanent reports whether err is one of the permanent kinds that the
// activities do not retry.
func Permanent(err error) bool {
	return errors.Is(err, providers.ErrBadConfig) || errors.Is(err, providers.ErrNotFound) ||
		errors.Is(err, providers.ErrInvalid) || errors.Is(err, providers.ErrCheckFailed)
}

// Traffic runs the suite as subtests.
func Traffic(t *testing.T, target Target) {
	t.Helper()
	if target.New == nil {
		t.Fatal("providertest: Target.New is required")
	}
	if target.App == "" {
		t.Fatal("providertest: Target.App is required")
	}
	if target.Weights != nil {
		if !slices.Contains(target.Weights, 0) || !slices.Contains(target.Weights, 100) {
			t.Fatalf("providertest: Target.Weights %v must include 0 and 100 (every provider must be able to send all the traffic to blue or to green)", target.Weights)
		}
		for _, w := range target.Weights {
			if w < 0 || w > 100 {
				t.Fatalf("providertest: Target.Weights %v holds %d, outside 0..100", target.Weights, w)
			}
		}
	}
	s := suite{target: target}
	if s.target.Timeout == 0 {
		s.target.Timeout = 10 * time.Second
	}
	if s.target.Settle == 0 {
		s.target.Settle = 5 * time.Second
	}

	t.Run("starts at 0% green", func(t *testing.T) {
		p := s.fresh(t)
		s.expectWeight(t, p, 0)
	})
	seq := s.supported(0, 10, 50, 100, 0)
	t.Run("set and read back "+arrows(seq), func(t *testing.T) {
		p := s.fresh(t)
		for _, w := range seq {
			s.mustSet(t, p, w)
			s.expectWeight(t, p, w)
		}
	})
	t.Run("setting the same weight twice is idempotent", func(t *testing.T) {
		p := s.fresh(t)
		for _, w := range s.supported(0, 10, 50, 100) {
			s.mustSet(t, p, w)
			s.mustSet(t, p, w)
			s.expectWeight(t, p, w)
		}
	})
	for _, from := range s.supported(10, 50, 99, 100) {
		t.Run(fmt.Sprintf("rollback from %d to 0", from), func(t *testing.T) {
			p := s.fresh(t)
			s.mustSet(t, p, from)
			s.expectWeight(t, p, from)
			s.mustSet(t, p, 0)
			s.expectWeight(t, p, 0)
		})
	}
	for _, bad := range []int{-1, 101} {
		t.Run(fmt.Sprintf("out-of-range weight %d is refused permanently", bad), func(t *testing.T) {
			p := s.fresh(t)
			before := s.or(10, 100)
			s.mustSet(t, p, before)
			s.expectRefused(t, p, bad, before)
		})
	}
	t.Run("an unsupported weight is refused permanently", func(t *testing.T) {
		var unsupported []int
		for _, w := range []int{10, 50, 99} {
			if !s.supports(w) {
				unsupported = append(unsupported, w)
			}
		}
		if len(unsupported) == 0 {
			t.Skip("the provider sets every weight (Target.Weights is nil or holds 10, 50 and 99)")
		}
		p := s.fresh(t)
		// Green holds all the traffic: a refused weight must not move any of it.
		s.mustSet(t, p, 100)
		for _, w := range unsupported {
			s.expectRefused(t, p, w, 100)
		}
	})

	t.Run("backend failures", func(t *testing.T) {
		if target.Fail == nil {
			t.Skip("the target injects no failures (Target.Fail is nil)")
		}
		for _, kind := range []FailKind{FailThrottle, FailServer} {
			t.Run(fmt.Sprintf("%s is retryable and recovers", kind), func(t *testing.T) {
				// from and to differ, so that the call during the failure
				// has something to change.
				from, to := s.or(10, 0), s.or(50, 100)
				p := s.fresh(t)
				s.mustSet(t, p, from)
				restore := target.Fail(t, kind)
				if restore == nil {
					t.Skipf("the target cannot fail with %s", kind)
				}
				restored := false
				defer func() {
					if !restored {
						restore()
					}
				}()
				err := s.set(p, to)
				if err == nil {
					t.Fatalf("SetWeight(%d) during a %s failure succeeded; want an error", to, kind)
				}
				if Permanent(err) {
					t.Fatalf("SetWeight(%d) during a %s failure = %v; want a retryable error, not a permanent one", to, kind, err)
				}
				if _, err := s.weight(p); err == nil {
					t.Fatalf("Weight during a %s failure succeeded; want an error", kind)
				} else if Permanent(err) {
					t.Fatalf("Weight during a %s failure = %v; want a retryable error, not a permanent one", kind, err)
				}
				restore()
				restored = true
				// The retry the activity would make.
				s.mustSet(t, p, to)
				s.expectWeight(t, p, to)
			})
		}
		for _, kind := range []FailKind{FailDenied, FailNotFound} {
			t.Run(fmt.Sprintf("%s is permanent", kind), func(t *testing.T) {
				p := s.fresh(t)
				restore := target.Fail(t, kind)
				if restore == nil {
					t.Skipf("the target cannot fail with %s", kind)
				}
				defer restore()
				to := s.or(10, 100)
				err := s.set(p, to)
				if err == nil {
					t.Fatalf("SetWeight(%d) during a %s failure succeeded; want a permanent error", to, kind)
				}
				if !errors.Is(err, providers.ErrInvalid) && !errors.Is(err, providers.ErrNotFound) && !errors.Is(err, providers.ErrBadConfig) {
					t.Fatalf("SetWeight(%d) during a %s failure = %v; want ErrInvalid, ErrNotFound or ErrBadConfig", to, kind, err)
				}
			})
		}
	})

	t.Run("in-flight requests", func(t *testing.T) {
		p := s.fresh(t)
		d, ok := p.(providers.Drainer)
		if !ok {
			t.Skipf("%s does not implement providers.Drainer", p.Type())
		}
		if target.Drain == nil {
			t.Skip("the target cannot hold requests (Target.Drain is nil)")
		}
		for _, c := range []providers.Color{providers.Blue, providers.Green} {
			t.Run(string(c), func(t *testing.T) {
				// Requests go to the color being drained.
				w := 0
				if c == providers.Green {
					w = 100
				}
				s.mustSet(t, p, w)
				finish := target.Drain(t, c)
				finished := false
				defer func() {
					if !finished {
						finish()
					}
				}()
				s.eventually(t, func() (bool, string) {
					n, err := s.inFlight(d, c)
					if err != nil {
						return false, fmt.Sprintf("InFlight(%s): %v", c, err)
					}
					return n > 0, fmt.Sprintf("InFlight(%s) = %d while requests are held; want > 0", c, n)
				})
				finish()
				finished = true
				s.eventually(t, func() (bool, string) {
					n, err := s.inFlight(d, c)
					if err != nil {
						return false, fmt.Sprintf("InFlight(%s): %v", c, err)
					}
					return n == 0, fmt.Sprintf("InFlight(%s) = %d after the requests finished; want 0", c, n)
				})
			})
		}
	})
}

type suite struct{ target Target }

// supports says whether the provider can set weight w.
func (s suite) supports(w int) bool {
	return s.target.Weights == nil || slices.Contains(s.target.Weights, w)
}

// supported returns the weights of ws the provider can set, in order.
func (s suite) supported(ws ...int) []int {
	var out []int
	for _, w := range ws {
		if s.supports(w) {
			out = append(out, w)
		}
	}
	return out
}

// or returns w when the provider can set it, else alt (0 or 100, which every
// provider can set).
func (s suite) or(w, alt int) int {
	if s.supports(w) {
		return w
	}
	return alt
}

// arrows writes weights as 0→10→50.
func arrows(ws []int) string {
	var b strings.Builder
	for i, w := range ws {
		if i > 0 {
			b.WriteString("→")
		}
		b.WriteString(strconv.Itoa(w))
	}
	return b.String()
}

// fresh returns a provider with green at 0%, as New promises; a provider whose
// backend outlives the subtest is reset to 0.
func (s suite) fresh(t *testing.T) providers.Traffic {
	t.Helper()
	p := s.target.New(t)
	if p == nil {
		t.Fatal("Target.New returned nil")
	}
	if w, err := s.weight(p); err != nil {
		t.Fatalf("Weight on a new provider: %v", err)
	} else if w != 0 {
		s.mustSet(t, p, 0)
	}
	return p
}

func (s suite) ctx() (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.Background(), s.target.Timeout)
}

func (s suite) set(p providers.Traffic, w int) error {
	ctx, cancel := s.ctx()
	defer cancel()
	return p.SetWeight(ctx, s.target.App, w)
}

func (s suite) weight(p providers.Traffic) (int, error) {
	ctx, cancel := s.ctx()
	defer cancel()
	return p.Weight(ctx, s.target.App)
}

func (s suite) inFlight(d providers.Drainer, c providers.Color) (int, error) {
	ctx, cancel := s.ctx()
	defer cancel()
	return d.InFlight(ctx, s.target.App, c)
}

func (s suite) mustSet(t *testing.T, p providers.Traffic, w int) {
	t.Helper()
	if err := s.set(p, w); err != nil {
		t.Fatalf("SetWeight(%d): %v", w, err)
	}
}

// expectRefused sets weight bad, expects a permanent error, and expects the
// weight to still be want.
func (s suite) expectRefused(t *testing.T, p providers.Traffic, bad, want int) {
	t.Helper()
	err := s.set(p, bad)
	if err == nil {
		t.Fatalf("SetWeight(%d) succeeded; want a permanent error", bad)
	}
	if !Permanent(err) {
		t.Fatalf("SetWeight(%d) = %v; want a permanent error (ErrBadConfig, ErrNotFound, ErrInvalid or ErrCheckFailed)", bad, err)
	}
	s.expectWeight(t, p, want)
}

func (s suite) expectWeight(t *testing.T, p providers.Traffic, want int) {
	t.Helper()
	got, err := s.weight(p)
	if err != nil {
		t.Fatalf("Weight: %v", err)
	}
	if got != want {
		t.Fatalf("Weight = %d; want %d", got, want)
	}
}

func (s suite) eventually(t *testing.T, cond func() (bool, string)) {
	t.Helper()
	deadline := time.Now().Add(s.target.Settle)
	for {
		ok, msg := cond()
		if ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatal(msg)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
