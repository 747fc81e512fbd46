package providers

import (
	"bytes"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"sync"

	"github.com/cutoverhq/cutover/spec"
)

// Builder makes a provider of one type from its release.yaml settings. New must
// not do I/O: the CLI calls it to check a spec before anything starts.
type Builder struct {
	// Type is the name release.yaml uses (`type: memory`).
	Type string
	// New builds the provider; the result implements one or more of this
	// package's interfaces.
	New func(settings map[string]any) (any, error)
}

// Registry builds providers from the spec and keeps them, so that a provider's
// clients and state live as long as the worker.
type Registry struct {
	builders map[string]Builder
	mu       sync.Mutex
	built    map[string]any
	gate     func(spec.Provider) error
}

// Gate sets what is asked before a provider is built or handed out for use: a
// worker that runs app definitions uses only the providers they name, whatever
// an activity's input says. Check is not gated: it is how definitions are
// checked before they are loaded.
func (r *Registry) Gate(allow func(spec.Provider) error) {
	r.mu.Lock()
	r.gate = allow
	r.mu.Unlock()
}

// NewRegistry returns a registry of the given builders.
func NewRegistry(builders ...Builder) *Registry {
	r := &Registry{builders: map[string]Builder{}, built: map[string]any{}}
	for _, b := range builders {
		r.builders[b.Type] = b
	}
	return r
}

// Types lists the registered provider types, sorted.
func (r *Registry) Types() []string {
	var ts []string
	for t := range r.builders {
		ts = append(ts, t)
	}
	slices.Sort(ts)
	return ts
}

// Check builds the provider without keeping it and checks that it can serve the
// kind of step (environment, traffic, analysis, migrations or notifications). Its
// signature fits spec.ProviderCheck.
func (r *Registry) Check(kind string, p spec.Provider) error {
	v, err := r.build(p)
	if err != nil {
		return err
	}
	return fits(kind, p.Type, v)
}

// Get returns the provider for p, building it on first use, as T.
func Get[T any](r *Registry, kind string, p spec.Provider) (T, error) {
	var zero T
	key, err := cacheKey(p)
	if err != nil {
		return zero, err
	}
	r.mu.Lock()
	v, ok := r.built[key]
	gate := r.gate
	r.mu.Unlock()
	if gate != nil {
		if err := gate(p); err != nil {
			return zero, BadConfig("%s provider %q refused: %v", kind, p.Type, err)
		}
	}
	if !ok {
		if v, err = r.build(p); err != nil {
			return zero, err
		}
		r.mu.Lock()
		if prev, ok := r.built[key]; ok {
			v = prev
		} else {
			r.built[key] = v
		}
		r.mu.Unlock()
	}
	if err := fits(kind, p.Type, v); err != nil {
		return zero, err
	}
	t, ok := v.(T)
	if !ok {
		return zero, BadConfig("provider type %q is not a %T", p.Type, (*T)(nil))
	}
	return t, nil
}

func (r *Registry) build(p spec.Provider) (any, error) {
	b, ok := r.builders[p.Type]
	if !ok {
		return nil, BadConfig("unknown provider type %q (known: %s)", p.Type, strings.Join(r.Types(), ", "))
	}
	v, err := b.New(p.Settings)
	if err != nil {
		return nil, fmt.Errorf("%s settings: %w", p.Type, err)
	}
	return v, nil
}

func fits(kind, typ string, v any) error {
	var ok bool
	switch kind {
	case "environment":
		_, ok = v.(Environment)
	case "traffic":
		_, ok = v.(Traffic)
	case "analysis":
		_, ok = v.(Analyzer)
		if !ok {
			_, ok = v.(MetricsSource)
		}
	case "migrations":
		_, ok = v.(Migrator)
	case "notifications":
		_, ok = v.(Notifier)
	case "ledger":
		_, ok = v.(Recorder)
	default:
		return BadConfig("unknown provider kind %q", kind)
	}
	if !ok {
		return BadConfig("provider type %q cannot serve as %s", typ, kind)
	}
	return nil
}

// cacheKey identifies a provider by its type and settings; json sorts map keys.
func cacheKey(p spec.Provider) (string, error) {
	b, err := json.Marshal(p)
	if err != nil {
		return "", fmt.Errorf("provider %q settings: %w", p.Type, err)
	}
	return string(b), nil
}

// DecodeSettings reads release.yaml settings into a provider's settings struct
// (json tags), refusing settings it does not know.
func DecodeSettings(settings map[string]any, out any) error {
	b, err := json.Marshal(settings)
	if err != nil {
		return BadConfig("%v", err)
	}
	d := json.NewDecoder(bytes.NewReader(b))
	d.DisallowUnknownFields()
	if err := d.Decode(out); err != nil {
		msg := strings.TrimPrefix(err.Error(), "json: ")
		msg = strings.Replace(msg, "unknown field", "unknown setting", 1)
		return BadConfig("%s", msg)
	}
	return nil
}
