// Package memory is a simulated provider of every kind, kept in the worker's
// memory. It moves no real traffic and starts no process: it is for trying plans
// and for tests of the workflow, the worker and the CLI. Its settings can slow
// every call down and make chosen operations fail, so that a test or a demo can
// walk each branch of a release.
package memory

import (
	"context"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/cutoverhq/cutover/providers"
	"github.com/cutoverhq/cutover/spec"
	"github.com/cutoverhq/cutover/verdict"
)

// Type is the provider's name in release.yaml.
const Type = "memory"

// Operations that failOn may name. setWeight:N fails only when setting N.
var operations = []string{"provision", "validate", "decommission", "setWeight", "guard", "compare", "migrate", "notify"}

// Settings are the provider's release.yaml settings.
type Settings struct {
	// Delay makes every call take this long (default 0).
	Delay spec.Duration `json:"delay,omitempty"`
	// FailOn lists operations that fail permanently, e.g. [validate, "setWeight:50"].
	FailOn []string `json:"failOn,omitempty"`
	// Verdict is what compare returns: Pass (default), Fail or Inconclusive.
	Verdict verdict.Result `json:"verdict,omitempty"`
	// Guard is what a soak guard check returns: Pass (default), Fail or Inconclusive.
	Guard verdict.Result `json:"guard,omitempty"`
}

// Store is the state that the memory providers of one worker share.
type Store struct {
	mu      sync.Mutex
	weights map[string]int
	pools   map[string]providers.Pool
	applied map[string][]string
}

// NewStore returns an empty store.
func NewStore() *Store {
	return &Store{weights: map[string]int{}, pools: map[string]providers.Pool{}, applied: map[string][]string{}}
}

// Provider is a memory provider of every kind.
type Provider struct {
	store *Store
	s     Settings
}

// New returns a memory provider over store.
func New(store *Store, settings map[string]any) (*Provider, error) {
	var s Settings
	if err := providers.DecodeSettings(settings, &s); err != nil {
		return nil, err
	}
	for _, op := range s.FailOn {
		name, arg, hasArg := strings.Cut(op, ":")
		if !slices.Contains(operations, name) || (hasArg && name != "setWeight") {
			return nil, providers.BadConfig("failOn: unknown operation %q (known: %s, setWeight:N)", op, strings.Join(operations, ", "))
		}
		// setWeight:N must be written as SetWeight matches it: a plain 0..100.
		if n, err := strconv.Atoi(arg); hasArg && (err != nil || n < 0 || n > 100 || strconv.Itoa(n) != arg) {
			return nil, providers.BadConfig("failOn: %q: write the weight as a number 0..100, like setWeight:50", op)
		}
	}
	for _, r := range []*verdict.Result{&s.Verdict, &s.Guard} {
		switch *r {
		case "":
			*r = verdict.Pass
		case verdict.Pass, verdict.Fail, verdict.Inconclusive:
		default:
			return nil, providers.BadConfig("verdict and guard are Pass, Fail or Inconclusive, not %q", *r)
		}
	}
	return &Provider{store: store, s: s}, nil
}

// NewBuilder returns the registry entry for memory providers, all sharing one store.
func NewBuilder() providers.Builder {
	store := NewStore()
	return providers.Builder{Type: Type, New: func(settings map[string]any) (any, error) { return New(store, settings) }}
}

// Type names the provider.
func (p *Provider) Type() string { return Type }

// call waits for the configured delay and fails when op is in failOn.
func (p *Provider) call(ctx context.Context, op string) error {
	if p.s.Delay > 0 {
		t := time.NewTimer(p.s.Delay.D())
		defer t.Stop()
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
		}
	}
	if slices.Contains(p.s.FailOn, op) {
		return providers.Invalid("memory provider told to fail %s", op)
	}
	return nil
}

// Provision records a green pool of two simulated instances.
func (p *Provider) Provision(ctx context.Context, r providers.Ref) (providers.Pool, error) {
	if err := p.call(ctx, "provision"); err != nil {
		return providers.Pool{}, err
	}
	pool := providers.Pool{Color: providers.Green, Version: r.Version, Instances: []string{r.App + "-green-0", r.App + "-green-1"}}
	p.store.mu.Lock()
	p.store.pools[r.App+"/green"] = pool
	p.store.mu.Unlock()
	return pool, nil
}

// Validate passes unless told to fail.
func (p *Provider) Validate(ctx context.Context, r providers.Ref, smoke []string) error {
	err := p.call(ctx, "validate")
	if err != nil && ctx.Err() == nil {
		return providers.CheckFailed("%v", err)
	}
	return err
}

// Decommission forgets the color's pool.
func (p *Provider) Decommission(ctx context.Context, r providers.Ref, c providers.Color) error {
	if err := p.call(ctx, "decommission"); err != nil {
		return err
	}
	p.store.mu.Lock()
	delete(p.store.pools, r.App+"/"+string(c))
	p.store.mu.Unlock()
	return nil
}

// SetWeight records green's share.
func (p *Provider) SetWeight(ctx context.Context, app string, green int) error {
	if err := p.call(ctx, "setWeight"); err != nil {
		return err
	}
	if slices.Contains(p.s.FailOn, "setWeight:"+strconv.Itoa(green)) {
		return providers.Invalid("memory provider told to fail setWeight:%d", green)
	}
	p.store.mu.Lock()
	p.store.weights[app] = green
	p.store.mu.Unlock()
	return nil
}

// Weight reads green's share back.
func (p *Provider) Weight(ctx context.Context, app string) (int, error) {
	p.store.mu.Lock()
	defer p.store.mu.Unlock()
	return p.store.weights[app], nil
}

// InFlight is always zero: nothing is served.
func (p *Provider) InFlight(ctx context.Context, app string, c providers.Color) (int, error) {
	return 0, nil
}

// Guard returns the configured guard result.
func (p *Provider) Guard(ctx context.Context, r providers.Ref) (verdict.Verdict, error) {
	if err := p.call(ctx, "guard"); err != nil {
		return verdict.Verdict{}, err
	}
	return verdict.Verdict{Result: p.s.Guard, Summary: "simulated guard"}, nil
}

// Compare returns the configured verdict.
func (p *Provider) Compare(ctx context.Context, r providers.Ref, window time.Duration) (verdict.Verdict, error) {
	if err := p.call(ctx, "compare"); err != nil {
		return verdict.Verdict{}, err
	}
	return verdict.Verdict{Result: p.s.Verdict, Summary: "simulated comparison over " + window.String()}, nil
}

// Migrate records the phase as applied once.
func (p *Provider) Migrate(ctx context.Context, r providers.Ref, phase string) (providers.MigrationReport, error) {
	if err := p.call(ctx, "migrate"); err != nil {
		return providers.MigrationReport{}, err
	}
	name := r.Version + "_" + phase
	p.store.mu.Lock()
	defer p.store.mu.Unlock()
	key := r.App + "/" + phase
	if slices.Contains(p.store.applied[key], name) {
		return providers.MigrationReport{Phase: phase}, nil
	}
	p.store.applied[key] = append(p.store.applied[key], name)
	return providers.MigrationReport{Phase: phase, Applied: []string{name}}, nil
}

// Notify does nothing unless told to fail.
func (p *Provider) Notify(ctx context.Context, e providers.Event) error {
	return p.call(ctx, "notify")
}
