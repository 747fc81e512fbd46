package providers_test

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cutoverhq/cutover/providers"
	"github.com/cutoverhq/cutover/providers/logs"
	"github.com/cutoverhq/cutover/providers/memory"
	"github.com/cutoverhq/cutover/spec"
)

// counted is a traffic provider that remembers the settings it was built with.
type counted struct {
	settings map[string]any
	weight   int
}

func (c *counted) Type() string { return "counted" }
func (c *counted) SetWeight(_ context.Context, _ string, green int) error {
	c.weight = green
	return nil
}
func (c *counted) Weight(context.Context, string) (int, error) { return c.weight, nil }

// countingBuilder returns a builder of counted providers and the number of
// providers it built so far.
func countingBuilder() (providers.Builder, func() int) {
	var mu sync.Mutex
	n := 0
	b := providers.Builder{Type: "counted", New: func(settings map[string]any) (any, error) {
		var s struct {
			Region string `json:"region"`
			Port   int    `json:"port"`
		}
		if err := providers.DecodeSettings(settings, &s); err != nil {
			return nil, err
		}
		mu.Lock()
		n++
		mu.Unlock()
		return &counted{settings: settings}, nil
	}}
	return b, func() int { mu.Lock(); defer mu.Unlock(); return n }
}

func discard() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// TestGetBuildsOncePerSettings checks that a provider is built once per
// identical type and settings and kept, and that other settings get their own.
func TestGetBuildsOncePerSettings(t *testing.T) {
	b, built := countingBuilder()
	reg := providers.NewRegistry(b)
	get := func(settings map[string]any) *counted {
		t.Helper()
		tr, err := providers.Get[providers.Traffic](reg, "traffic", spec.Provider{Type: "counted", Settings: settings})
		if err != nil {
			t.Fatalf("Get(%v): %v", settings, err)
		}
		return tr.(*counted)
	}

	steps := []struct {
		settings  map[string]any
		sameAs    int // index of the step whose instance this one must be, or -1 for a new one
		wantBuilt int
	}{
		{map[string]any{"region": "eu", "port": 8080}, -1, 1},
		{map[string]any{"port": 8080, "region": "eu"}, 0, 1},   // same settings, written in another order
		{map[string]any{"region": "eu", "port": 8080.0}, 0, 1}, // a YAML number may decode as float
		{map[string]any{"region": "us", "port": 8080}, -1, 2},
		{nil, -1, 3},
		{map[string]any{}, 4, 3}, // empty settings are no settings
		{map[string]any{"region": "eu", "port": 8080}, 0, 3},
		{map[string]any{"region": "us", "port": 8080}, 3, 3},
	}
	var got []*counted
	for i, s := range steps {
		c := get(s.settings)
		got = append(got, c)
		if s.sameAs >= 0 && c != got[s.sameAs] {
			t.Errorf("step %d (%v): a new provider, want the one of step %d", i, s.settings, s.sameAs)
		}
		if s.sameAs < 0 && slices.Contains(got[:i], c) {
			t.Errorf("step %d (%v): reused an earlier provider, want a new one", i, s.settings)
		}
		if n := built(); n != s.wantBuilt {
			t.Errorf("step %d (%v): %d providers built, want %d", i, s.settings, n, s.wantBuilt)
		}
	}
}

// TestGetKeepsState checks that a memory provider fetched again is the same one:
// the weight set through it earlier reads back.
func TestGetKeepsState(t *testing.T) {
	ctx := context.Background()
	reg := providers.NewRegistry(memory.NewBuilder())
	p := spec.Provider{Type: "memory", Settings: map[string]any{"delay": "1ms"}}
	first, err := providers.Get[providers.Traffic](reg, "traffic", p)
	if err != nil {
		t.Fatal(err)
	}
	if err := first.SetWeight(ctx, "shop-api", 40); err != nil {
		t.Fatal(err)
	}
	again, err := providers.Get[providers.Traffic](reg, "traffic", spec.Provider{Type: "memory", Settings: map[string]any{"delay": "1ms"}})
	if err != nil {
		t.Fatal(err)
	}
	if again != first {
		t.Error("Get returned a new provider for identical settings")
	}
	if w, err := again.Weight(ctx, "shop-api"); err != nil || w != 40 {
		t.Errorf("Weight = %d, %v; want 40", w, err)
	}
	// The same provider serves every kind it implements.
	env, err := providers.Get[providers.Environment](reg, "environment", p)
	if err != nil {
		t.Fatal(err)
	}
	if any(env) != any(first) {
		t.Error("Get as environment returned another provider than Get as traffic for the same settings")
	}
	other, err := providers.Get[providers.Traffic](reg, "traffic", spec.Provider{Type: "memory", Settings: map[string]any{"delay": "2ms"}})
	if err != nil {
		t.Fatal(err)
	}
	if other == first {
		t.Error("Get returned the same provider for different settings")
	}
}

// TestGetConcurrent checks that concurrent first uses end with one provider
// that every caller shares, even when the builds overlap.
func TestGetConcurrent(t *testing.T) {
	b, _ := countingBuilder()
	build := b.New
	b.New = func(settings map[string]any) (any, error) {
		time.Sleep(20 * time.Millisecond) // let every caller miss the cache
		return build(settings)
	}
	reg := providers.NewRegistry(b)
	p := spec.Provider{Type: "counted", Settings: map[string]any{"region": "eu"}}
	const n = 16
	got := make([]providers.Traffic, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			tr, err := providers.Get[providers.Traffic](reg, "traffic", p)
			if err != nil {
				t.Error(err)
			}
			got[i] = tr
		})
	}
	wg.Wait()
	for i := range got {
		if got[i] != got[0] {
			t.Fatalf("caller %d got another provider than caller 0", i)
		}
	}
}

// TestGetRefuses checks Get's errors: an unknown type, bad settings, and a
// provider used for a kind of step it cannot serve.
func TestGetRefuses(t *testing.T) {
	b, built := countingBuilder()
	reg := providers.NewRegistry(b, memory.NewBuilder(), logs.NewBuilder(discard()))
	tests := []struct {
		name string
		get  func() error
		want []string
	}{
		{"notifier as traffic", func() error {
			_, err := providers.Get[providers.Traffic](reg, "traffic", spec.Provider{Type: "log"})
			return err
		}, []string{`provider type "log" cannot serve as traffic`}},
		{"notifier as environment", func() error {
			_, err := providers.Get[providers.Environment](reg, "environment", spec.Provider{Type: "log"})
			return err
		}, []string{`provider type "log" cannot serve as environment`}},
		{"traffic-only as analysis", func() error {
			_, err := providers.Get[providers.Analyzer](reg, "analysis", spec.Provider{Type: "counted"})
			return err
		}, []string{`provider type "counted" cannot serve as analysis`}},
		{"traffic-only as migrations", func() error {
			_, err := providers.Get[providers.Migrator](reg, "migrations", spec.Provider{Type: "counted"})
			return err
		}, []string{`provider type "counted" cannot serve as migrations`}},
		{"traffic-only as notifications", func() error {
			_, err := providers.Get[providers.Notifier](reg, "notifications", spec.Provider{Type: "counted"})
			return err
		}, []string{`provider type "counted" cannot serve as notifications`}},
		{"unknown type", func() error {
			_, err := providers.Get[providers.Traffic](reg, "traffic", spec.Provider{Type: "nginx"})
			return err
		}, []string{`unknown provider type "nginx"`, "known: counted, log, memory"}},
		{"unknown setting", func() error {
			_, err := providers.Get[providers.Traffic](reg, "traffic", spec.Provider{Type: "counted", Settings: map[string]any{"foo": 1}})
			return err
		}, []string{"counted settings", `unknown setting "foo"`}},
		{"setting of the wrong type", func() error {
			_, err := providers.Get[providers.Traffic](reg, "traffic", spec.Provider{Type: "counted", Settings: map[string]any{"port": "eighty"}})
			return err
		}, []string{"counted settings", "port"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.get()
			if err == nil {
				t.Fatal("Get succeeded, want an error")
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
	// A failed build is not kept: fixing nothing, the same call fails again.
	before := built()
	for range 2 {
		if _, err := providers.Get[providers.Traffic](reg, "traffic", spec.Provider{Type: "counted", Settings: map[string]any{"foo": 1}}); err == nil {
			t.Error("a provider whose build failed was kept")
		}
	}
	if built() != before {
		t.Errorf("failed builds counted as built: %d -> %d", before, built())
	}
}

// TestCheck checks the CLI's check of a spec's providers: the same errors as Get,
// for each kind of step, without keeping the provider.
func TestCheck(t *testing.T) {
	b, built := countingBuilder()
	reg := providers.NewRegistry(memory.NewBuilder(), logs.NewBuilder(discard()), b)
	tests := []struct {
		name string
		kind string
		p    spec.Provider
		want []string // substrings of the error; nil for no error
	}{
		{"memory environment", "environment", spec.Provider{Type: "memory"}, nil},
		{"memory traffic", "traffic", spec.Provider{Type: "memory", Settings: map[string]any{"failOn": []any{"setWeight:50"}}}, nil},
		{"memory analysis", "analysis", spec.Provider{Type: "memory", Settings: map[string]any{"verdict": "Fail"}}, nil},
		{"memory migrations", "migrations", spec.Provider{Type: "memory"}, nil},
		{"log notifications", "notifications", spec.Provider{Type: "log"}, nil},
		{"unknown type", "traffic", spec.Provider{Type: "istio"}, []string{`unknown provider type "istio"`, "known: counted, log, memory"}},
		{"empty type", "environment", spec.Provider{}, []string{`unknown provider type ""`, "known: counted, log, memory"}},
		{"unknown setting", "traffic", spec.Provider{Type: "memory", Settings: map[string]any{"foo": true}}, []string{"memory settings", `unknown setting "foo"`}},
		{"setting the provider refuses", "analysis", spec.Provider{Type: "memory", Settings: map[string]any{"verdict": "Maybe"}}, []string{"memory settings", "Maybe"}},
		{"log takes no settings", "notifications", spec.Provider{Type: "log", Settings: map[string]any{"level": "debug"}}, []string{"log settings", `unknown setting "level"`}},
		{"log as traffic", "traffic", spec.Provider{Type: "log"}, []string{`"log" cannot serve as traffic`}},
		{"traffic-only as environment", "environment", spec.Provider{Type: "counted"}, []string{`"counted" cannot serve as environment`}},
		{"unknown kind", "dns", spec.Provider{Type: "memory"}, []string{`unknown provider kind "dns"`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := reg.Check(tt.kind, tt.p)
			if tt.want == nil {
				if err != nil {
					t.Fatalf("Check(%s, %+v) = %v, want nil", tt.kind, tt.p, err)
				}
				return
			}
			if err == nil {
				t.Fatalf("Check(%s, %+v) = nil, want an error", tt.kind, tt.p)
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

	// Check does not keep what it builds: a later Get builds the provider again.
	p := spec.Provider{Type: "counted", Settings: map[string]any{"region": "eu"}}
	before := built()
	if err := reg.Check("traffic", p); err != nil {
		t.Fatal(err)
	}
	if _, err := providers.Get[providers.Traffic](reg, "traffic", p); err != nil {
		t.Fatal(err)
	}
	if n := built() - before; n != 2 {
		t.Errorf("Check then Get built %d providers, want 2 (Check keeps nothing)", n)
	}
}

// TestTypes checks that the registered types are listed sorted.
func TestTypes(t *testing.T) {
	tests := []struct {
		builders []providers.Builder
		want     []string
	}{
		{nil, nil},
		{[]providers.Builder{logs.NewBuilder(discard()), memory.NewBuilder()}, []string{"log", "memory"}},
		{[]providers.Builder{memory.NewBuilder(), {Type: "zeta"}, {Type: "alpha"}, logs.NewBuilder(discard())}, []string{"alpha", "log", "memory", "zeta"}},
	}
	for _, tt := range tests {
		if got := providers.NewRegistry(tt.builders...).Types(); !slices.Equal(got, tt.want) {
			t.Errorf("Types() = %v, want %v", got, tt.want)
		}
	}
}

// TestDecodeSettings checks that settings decode into a provider's struct, and
// that unknown settings, wrong types and bad durations are refused as bad config.
func TestDecodeSettings(t *testing.T) {
	type settings struct {
		URL     string        `json:"url"`
		Timeout spec.Duration `json:"timeout"`
		Retries int           `json:"retries"`
		Tags    []string      `json:"tags"`
		Verbose bool          `json:"verbose"`
	}
	tests := []struct {
		name     string
		settings map[string]any
		want     settings
		wantErr  []string
	}{
		{"all set", map[string]any{"url": "http://prom:9090", "timeout": "250ms", "retries": 3, "tags": []any{"a", "b"}, "verbose": true},
			settings{URL: "http://prom:9090", Timeout: spec.Duration(250 * time.Millisecond), Retries: 3, Tags: []string{"a", "b"}, Verbose: true}, nil},
		{"duration in minutes", map[string]any{"timeout": "1m30s"}, settings{Timeout: spec.Duration(90 * time.Second)}, nil},
		{"nil settings", nil, settings{}, nil},
		{"empty settings", map[string]any{}, settings{}, nil},
		{"unknown setting", map[string]any{"url": "x", "foo": "bar"}, settings{}, []string{`unknown setting "foo"`}},
		{"number for a string", map[string]any{"url": 42}, settings{}, []string{"url"}},
		{"string for a number", map[string]any{"retries": "three"}, settings{}, []string{"retries"}},
		{"bad duration text", map[string]any{"timeout": "soon"}, settings{}, []string{`"soon" is not a duration`}},
		{"duration as a number", map[string]any{"timeout": 250}, settings{}, []string{"cannot unmarshal"}},
		{"negative duration", map[string]any{"timeout": "-1s"}, settings{}, []string{`"-1s" is negative`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got settings
			err := providers.DecodeSettings(tt.settings, &got)
			if tt.wantErr == nil {
				if err != nil {
					t.Fatalf("DecodeSettings(%v) = %v", tt.settings, err)
				}
				if got.URL != tt.want.URL || got.Timeout != tt.want.Timeout || got.Retries != tt.want.Retries ||
					!slices.Equal(got.Tags, tt.want.Tags) || got.Verbose != tt.want.Verbose {
					t.Errorf("DecodeSettings(%v) = %+v, want %+v", tt.settings, got, tt.want)
				}
				return
			}
			if err == nil {
				t.Fatalf("DecodeSettings(%v) = nil (decoded %+v), want an error", tt.settings, got)
			}
			if !errors.Is(err, providers.ErrBadConfig) {
				t.Errorf("error %q does not wrap ErrBadConfig", err)
			}
			if strings.HasPrefix(err.Error(), "json: ") {
				t.Errorf("error %q starts with json:, which means nothing to a release.yaml author", err)
			}
			for _, w := range tt.wantErr {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not contain %q", err, w)
				}
			}
		})
	}
}
