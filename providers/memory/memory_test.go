package memory

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/cutoverhq/cutover/providers"
	"github.com/cutoverhq/cutover/verdict"
)

var ref = providers.Ref{App: "shop-api", Version: "1.4.0", PreviousVersion: "1.3.2"}

func newProvider(t *testing.T, settings map[string]any) *Provider {
	t.Helper()
	p, err := New(NewStore(), settings)
	if err != nil {
		t.Fatalf("New(%v): %v", settings, err)
	}
	return p
}

// TestNewRefusesBadSettings checks that a mistake in release.yaml's memory
// settings is refused when the provider is built, with a message that names it,
// rather than silently doing nothing during the release.
func TestNewRefusesBadSettings(t *testing.T) {
	tests := []struct {
		name     string
		settings map[string]any
		want     []string // substrings of the error
	}{
		{"unknown operation", map[string]any{"failOn": []any{"validate", "reboot"}}, []string{`unknown operation "reboot"`, "setWeight:N"}},
		{"argument on an operation other than setWeight", map[string]any{"failOn": []any{"provision:3"}}, []string{`unknown operation "provision:3"`}},
		{"setWeight with a non-number", map[string]any{"failOn": []any{"setWeight:abc"}}, []string{`"setWeight:abc"`, `write the weight as a number 0..100`}},
		{"verdict Maybe", map[string]any{"verdict": "Maybe"}, []string{`not "Maybe"`}},
		{"guard Maybe", map[string]any{"guard": "Maybe"}, []string{`not "Maybe"`}},
		{"lower-case verdict", map[string]any{"verdict": "pass"}, []string{`not "pass"`}},
		{"unknown setting", map[string]any{"foo": 1}, []string{`unknown setting "foo"`}},
		{"delay is not a duration", map[string]any{"delay": "soon"}, []string{`"soon" is not a duration`}},
		{"failOn is not a list", map[string]any{"failOn": "validate"}, []string{"failOn"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := New(NewStore(), tt.settings)
			if err == nil {
				t.Fatalf("New(%v) = %+v, want an error", tt.settings, p.s)
			}
			if !errors.Is(err, providers.ErrBadConfig) {
				t.Errorf("error %q does not wrap ErrBadConfig", err)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not contain %q", err, w)
				}
			}
		})
	}
}

// TestNewAcceptsGoodSettings checks the settings the docs show are accepted and
// that verdict and guard default to Pass.
func TestNewAcceptsGoodSettings(t *testing.T) {
	tests := []struct {
		name        string
		settings    map[string]any
		wantVerdict verdict.Result
		wantGuard   verdict.Result
		wantDelay   time.Duration
	}{
		{"no settings", nil, verdict.Pass, verdict.Pass, 0},
		{"empty settings", map[string]any{}, verdict.Pass, verdict.Pass, 0},
		{"everything", map[string]any{
			"delay":   "250ms",
			"failOn":  []any{"provision", "validate", "decommission", "setWeight", "setWeight:50", "guard", "compare", "migrate", "notify"},
			"verdict": "Inconclusive",
			"guard":   "Fail",
		}, verdict.Inconclusive, verdict.Fail, 250 * time.Millisecond},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := newProvider(t, tt.settings)
			if p.s.Verdict != tt.wantVerdict || p.s.Guard != tt.wantGuard || p.s.Delay.D() != tt.wantDelay {
				t.Errorf("settings = verdict %q, guard %q, delay %v; want %q, %q, %v",
					p.s.Verdict, p.s.Guard, p.s.Delay.D(), tt.wantVerdict, tt.wantGuard, tt.wantDelay)
			}
			if p.Type() != "memory" {
				t.Errorf("Type() = %q, want memory", p.Type())
			}
		})
	}
}

// TestSetWeightReadsBack checks that the weight set for an app is the weight read
// back, per app.
func TestSetWeightReadsBack(t *testing.T) {
	ctx := context.Background()
	p := newProvider(t, nil)
	steps := []struct {
		app    string
		weight int
	}{
		{"shop-api", 10},
		{"billing", 50},
		{"shop-api", 100},
		{"shop-api", 0},
	}
	want := map[string]int{}
	for _, s := range steps {
		if err := p.SetWeight(ctx, s.app, s.weight); err != nil {
			t.Fatalf("SetWeight(%s, %d): %v", s.app, s.weight, err)
		}
		want[s.app] = s.weight
		for app, w := range want {
			got, err := p.Weight(ctx, app)
			if err != nil || got != w {
				t.Fatalf("after SetWeight(%s, %d): Weight(%s) = %d, %v; want %d", s.app, s.weight, app, got, err, w)
			}
		}
	}
	if got, err := p.Weight(ctx, "never-set"); err != nil || got != 0 {
		t.Errorf("Weight of an app never set = %d, %v; want 0", got, err)
	}
}

// TestBuilderSharesStore checks that the memory providers of one builder share
// their state, as environment and traffic of one release need to.
func TestBuilderSharesStore(t *testing.T) {
	ctx := context.Background()
	b := NewBuilder()
	if b.Type != "memory" {
		t.Fatalf("builder type = %q, want memory", b.Type)
	}
	a, err := b.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	c, err := b.New(map[string]any{"verdict": "Fail"})
	if err != nil {
		t.Fatal(err)
	}
	if err := a.(providers.Traffic).SetWeight(ctx, "shop-api", 25); err != nil {
		t.Fatal(err)
	}
	if got, _ := c.(providers.Traffic).Weight(ctx, "shop-api"); got != 25 {
		t.Errorf("weight read through a second provider of the builder = %d, want 25", got)
	}
	other, _ := NewBuilder().New(nil)
	if got, _ := other.(providers.Traffic).Weight(ctx, "shop-api"); got != 0 {
		t.Errorf("weight read through another builder's provider = %d, want 0 (separate stores)", got)
	}
}

// TestFailOnSetWeightN checks that failOn "setWeight:50" fails the step to 50
// only, permanently, and leaves the previous weight in place.
func TestFailOnSetWeightN(t *testing.T) {
	ctx := context.Background()
	p := newProvider(t, map[string]any{"failOn": []any{"setWeight:50"}})
	tests := []struct {
		weight     int
		wantErr    bool
		wantWeight int
	}{
		{10, false, 10},
		{50, true, 10},
		{5, false, 5},
		{100, false, 100},
		{0, false, 0},
	}
	for _, tt := range tests {
		err := p.SetWeight(ctx, "shop-api", tt.weight)
		if tt.wantErr {
			if !errors.Is(err, providers.ErrInvalid) {
				t.Errorf("SetWeight(%d) = %v, want an error wrapping ErrInvalid", tt.weight, err)
			} else if !strings.Contains(err.Error(), "setWeight:50") {
				t.Errorf("SetWeight(%d) error %q does not name setWeight:50", tt.weight, err)
			}
		} else if err != nil {
			t.Errorf("SetWeight(%d) = %v, want no error", tt.weight, err)
		}
		if got, _ := p.Weight(ctx, "shop-api"); got != tt.wantWeight {
			t.Errorf("after SetWeight(%d): Weight = %d, want %d", tt.weight, got, tt.wantWeight)
		}
	}
}

// TestFailOnOperation checks that each operation named in failOn fails
// permanently while the others still work.
func TestFailOnOperation(t *testing.T) {
	ctx := context.Background()
	calls := map[string]func(p *Provider) error{
		"provision": func(p *Provider) error { _, err := p.Provision(ctx, ref); return err },
		"validate":  func(p *Provider) error { return p.Validate(ctx, ref, []string{"/healthz"}) },
		"decommission": func(p *Provider) error {
			return p.Decommission(ctx, ref, providers.Blue)
		},
		"setWeight": func(p *Provider) error { return p.SetWeight(ctx, ref.App, 10) },
		"guard":     func(p *Provider) error { _, err := p.Guard(ctx, ref); return err },
		"compare":   func(p *Provider) error { _, err := p.Compare(ctx, ref, time.Minute); return err },
		"migrate":   func(p *Provider) error { _, err := p.Migrate(ctx, ref, "expand"); return err },
		"notify":    func(p *Provider) error { return p.Notify(ctx, providers.Event{App: ref.App, Kind: "started"}) },
	}
	tests := []struct {
		failOn  string
		wantErr error
	}{
		{"provision", providers.ErrInvalid},
		{"validate", providers.ErrCheckFailed},
		{"decommission", providers.ErrInvalid},
		{"setWeight", providers.ErrInvalid},
		{"guard", providers.ErrInvalid},
		{"compare", providers.ErrInvalid},
		{"migrate", providers.ErrInvalid},
		{"notify", providers.ErrInvalid},
	}
	for _, tt := range tests {
		t.Run(tt.failOn, func(t *testing.T) {
			p := newProvider(t, map[string]any{"failOn": []any{tt.failOn}})
			for op, call := range calls {
				err := call(p)
				if op != tt.failOn {
					if err != nil {
						t.Errorf("%s failed although only %s should: %v", op, tt.failOn, err)
					}
					continue
				}
				if !errors.Is(err, tt.wantErr) {
					t.Errorf("%s = %v, want an error wrapping %v", op, err, tt.wantErr)
				} else if !strings.Contains(err.Error(), op) {
					t.Errorf("%s error %q does not name the operation", op, err)
				}
			}
		})
	}
}

// TestDelay checks that the delay slows calls down and that a cancelled or
// expired context ends the wait at once with the context's error.
func TestDelay(t *testing.T) {
	t.Run("slows calls down", func(t *testing.T) {
		p := newProvider(t, map[string]any{"delay": "150ms"})
		start := time.Now()
		if err := p.SetWeight(context.Background(), ref.App, 10); err != nil {
			t.Fatal(err)
		}
		if d := time.Since(start); d < 150*time.Millisecond {
			t.Errorf("SetWeight with a 150ms delay took %v", d)
		}
	})

	tests := []struct {
		name string
		ctx  func() (context.Context, context.CancelFunc)
		want error
	}{
		{"cancelled", func() (context.Context, context.CancelFunc) {
			ctx, cancel := context.WithCancel(context.Background())
			time.AfterFunc(50*time.Millisecond, cancel)
			return ctx, cancel
		}, context.Canceled},
		{"already cancelled", func() (context.Context, context.CancelFunc) {
			ctx, cancel := context.WithCancel(context.Background())
			cancel()
			return ctx, cancel
		}, context.Canceled},
		{"deadline", func() (context.Context, context.CancelFunc) {
			return context.WithTimeout(context.Background(), 50*time.Millisecond)
		}, context.DeadlineExceeded},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := newProvider(t, map[string]any{"delay": "10s"})
			ctx, cancel := tt.ctx()
			defer cancel()
			start := time.Now()
			pool, err := p.Provision(ctx, ref)
			if d := time.Since(start); d > 2*time.Second {
				t.Errorf("Provision returned after %v; the context ended after 50ms", d)
			}
			if !errors.Is(err, tt.want) || err != ctx.Err() {
				t.Errorf("Provision = %v, want ctx.Err() (%v)", err, tt.want)
			}
			if len(pool.Instances) != 0 {
				t.Errorf("Provision returned a pool %+v although it was cancelled", pool)
			}
			p.store.mu.Lock()
			n := len(p.store.pools)
			p.store.mu.Unlock()
			if n != 0 {
				t.Errorf("a cancelled Provision recorded %d pools", n)
			}
		})
	}
}

// TestMigrateAppliesOnce checks that a version's phase is applied once: a retry
// reports nothing applied, while another phase, version or app applies again.
func TestMigrateAppliesOnce(t *testing.T) {
	ctx := context.Background()
	p := newProvider(t, nil)
	next := providers.Ref{App: ref.App, Version: "1.5.0"}
	other := providers.Ref{App: "billing", Version: ref.Version}
	tests := []struct {
		ref   providers.Ref
		phase string
		want  []string
	}{
		{ref, "expand", []string{"1.4.0_expand"}},
		{ref, "expand", nil},
		{ref, "contract", []string{"1.4.0_contract"}},
		{ref, "contract", nil},
		{next, "expand", []string{"1.5.0_expand"}},
		{other, "expand", []string{"1.4.0_expand"}},
		{ref, "expand", nil},
	}
	for i, tt := range tests {
		rep, err := p.Migrate(ctx, tt.ref, tt.phase)
		if err != nil {
			t.Fatalf("call %d: Migrate(%s %s, %s): %v", i, tt.ref.App, tt.ref.Version, tt.phase, err)
		}
		if rep.Phase != tt.phase || !slices.Equal(rep.Applied, tt.want) {
			t.Errorf("call %d: Migrate(%s %s, %s) = %+v, want phase %s applied %v", i, tt.ref.App, tt.ref.Version, tt.phase, rep, tt.phase, tt.want)
		}
	}
}

// TestProvisionDecommission checks that Provision starts a green pool of the
// release's version and Decommission stops it, and stopping it again is a no-op.
func TestProvisionDecommission(t *testing.T) {
	ctx := context.Background()
	p := newProvider(t, nil)
	pools := func() []string {
		p.store.mu.Lock()
		defer p.store.mu.Unlock()
		var ks []string
		for k := range p.store.pools {
			ks = append(ks, k)
		}
		slices.Sort(ks)
		return ks
	}

	pool, err := p.Provision(ctx, ref)
	if err != nil {
		t.Fatal(err)
	}
	if pool.Color != providers.Green || pool.Version != "1.4.0" || !slices.Equal(pool.Instances, []string{"shop-api-green-0", "shop-api-green-1"}) {
		t.Errorf("Provision = %+v, want green 1.4.0 with shop-api-green-0 and -1", pool)
	}
	if _, err := p.Provision(ctx, providers.Ref{App: "billing", Version: "2.0.0"}); err != nil {
		t.Fatal(err)
	}
	if got := pools(); !slices.Equal(got, []string{"billing/green", "shop-api/green"}) {
		t.Fatalf("pools after two provisions = %v", got)
	}
	if err := p.Validate(ctx, ref, []string{"/healthz"}); err != nil {
		t.Errorf("Validate = %v, want nil", err)
	}
	if err := p.Decommission(ctx, ref, providers.Blue); err != nil {
		t.Errorf("Decommission(blue) = %v, want nil (no-op)", err)
	}
	if got := pools(); !slices.Equal(got, []string{"billing/green", "shop-api/green"}) {
		t.Errorf("decommissioning blue removed a green pool: %v", got)
	}
	for i := range 2 {
		if err := p.Decommission(ctx, ref, providers.Green); err != nil {
			t.Errorf("Decommission(green) #%d = %v, want nil", i+1, err)
		}
		if got := pools(); !slices.Equal(got, []string{"billing/green"}) {
			t.Errorf("pools after Decommission(green) #%d = %v, want only billing/green", i+1, got)
		}
	}
	if n, err := p.InFlight(ctx, ref.App, providers.Green); n != 0 || err != nil {
		t.Errorf("InFlight = %d, %v; want 0, nil", n, err)
	}
}

// TestCompareAndGuardVerdicts checks that Compare and Guard return the configured
// results, Pass by default.
func TestCompareAndGuardVerdicts(t *testing.T) {
	ctx := context.Background()
	tests := []struct {
		settings    map[string]any
		wantCompare verdict.Result
		wantGuard   verdict.Result
	}{
		{nil, verdict.Pass, verdict.Pass},
		{map[string]any{"verdict": "Fail"}, verdict.Fail, verdict.Pass},
		{map[string]any{"verdict": "Inconclusive"}, verdict.Inconclusive, verdict.Pass},
		{map[string]any{"guard": "Fail"}, verdict.Pass, verdict.Fail},
		{map[string]any{"verdict": "Pass", "guard": "Inconclusive"}, verdict.Pass, verdict.Inconclusive},
	}
	for _, tt := range tests {
		p := newProvider(t, tt.settings)
		v, err := p.Compare(ctx, ref, 90*time.Second)
		if err != nil || v.Result != tt.wantCompare {
			t.Errorf("%v: Compare = %+v, %v; want %s", tt.settings, v, err, tt.wantCompare)
		}
		if !strings.Contains(v.Summary, "1m30s") {
			t.Errorf("%v: Compare summary %q does not mention the window", tt.settings, v.Summary)
		}
		g, err := p.Guard(ctx, ref)
		if err != nil || g.Result != tt.wantGuard {
			t.Errorf("%v: Guard = %+v, %v; want %s", tt.settings, g, err, tt.wantGuard)
		}
	}
}

// TestCancelEndsEveryOperation checks that a cancelled context ends every
// delayed operation with the context's error, so that the activity reports a
// cancellation rather than a failure.
func TestCancelEndsEveryOperation(t *testing.T) {
	calls := []struct {
		op   string
		call func(ctx context.Context, p *Provider) error
	}{
		{"provision", func(ctx context.Context, p *Provider) error { _, err := p.Provision(ctx, ref); return err }},
		{"validate", func(ctx context.Context, p *Provider) error { return p.Validate(ctx, ref, nil) }},
		{"decommission", func(ctx context.Context, p *Provider) error { return p.Decommission(ctx, ref, providers.Blue) }},
		{"setWeight", func(ctx context.Context, p *Provider) error { return p.SetWeight(ctx, ref.App, 10) }},
		{"guard", func(ctx context.Context, p *Provider) error { _, err := p.Guard(ctx, ref); return err }},
		{"compare", func(ctx context.Context, p *Provider) error { _, err := p.Compare(ctx, ref, time.Minute); return err }},
		{"migrate", func(ctx context.Context, p *Provider) error { _, err := p.Migrate(ctx, ref, "expand"); return err }},
		{"notify", func(ctx context.Context, p *Provider) error { return p.Notify(ctx, providers.Event{App: ref.App}) }},
	}
	for _, c := range calls {
		t.Run(c.op, func(t *testing.T) {
			if c.op == "validate" {
			}
			p := newProvider(t, map[string]any{"delay": "10s"})
			ctx, cancel := context.WithCancel(context.Background())
			time.AfterFunc(20*time.Millisecond, cancel)
			start := time.Now()
			err := c.call(ctx, p)
			if d := time.Since(start); d > 2*time.Second {
				t.Errorf("%s returned after %v; the context was cancelled after 20ms", c.op, d)
			}
			if !errors.Is(err, context.Canceled) {
				t.Errorf("%s = %v, want context.Canceled", c.op, err)
			}
			for _, kind := range []error{providers.ErrBadConfig, providers.ErrNotFound, providers.ErrInvalid, providers.ErrCheckFailed} {
				if errors.Is(err, kind) {
					t.Errorf("%s = %v: a cancellation reported as a permanent failure (%v)", c.op, err, kind)
				}
			}
		})
	}
}

// TestFailOnEntriesTakeEffect checks that a failOn entry that New accepts makes
// its operation fail: an entry that can never fire must be refused, not ignored.
func TestFailOnEntriesTakeEffect(t *testing.T) {
	ctx := context.Background()
	tests := []struct {
		entry string
		call  func(p *Provider) error
	}{
		{"validate:", func(p *Provider) error { return p.Validate(ctx, ref, nil) }},
		{"setWeight:", func(p *Provider) error { return p.SetWeight(ctx, ref.App, 50) }},
		{"setWeight:050", func(p *Provider) error { return p.SetWeight(ctx, ref.App, 50) }},
		{"setWeight:+50", func(p *Provider) error { return p.SetWeight(ctx, ref.App, 50) }},
	}
	for _, tt := range tests {
		t.Run(tt.entry, func(t *testing.T) {
			p, err := New(NewStore(), map[string]any{"failOn": []any{tt.entry}})
			if err != nil {
				if !errors.Is(err, providers.ErrBadConfig) || !strings.Contains(err.Error(), tt.entry) {
					t.Errorf("New refused %q with %v, want a bad config naming it", tt.entry, err)
				}
				return
			}
			if err := tt.call(p); err == nil {
				t.Errorf("failOn %q was accepted but the operation did not fail", tt.entry)
			}
		})
	}
}
