package providertest_test

import (
	"context"
	"errors"
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

func TestTheSuitePassesAConformingProvider(t *testing.T) {
	var f *fake
	providertest.Traffic(t, providertest.Target{
		App: "shop",
		New: func(t *testing.T) providers.Traffic {
			f = &fake{inFlight: map[providers.Color]int{}}
			return f
		},
		Fail: func(t *testing.T, kind providertest.FailKind) func() {
			f.set(func() { f.fail = kind })
			return func() { f.set(func() { f.fail = "" }) }
		},
		Drain: func(t *testing.T, c providers.Color) func() {
			f.set(func() { f.inFlight[c] = 2 })
			return func() { f.set(func() { f.inFlight[c] = 0 }) }
		},
	})
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
