package apps

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"os"
	"os/signal"
	"sync"
	"syscall"

	"go.uber.org/fx"

	"github.com/cutoverhq/cutover/spec"
)

// Store holds the worker's current app definitions and reloads them on
// request. A reload that fails keeps the definitions in force, so that a typo
// in one file never stops the releases of every app.
type Store struct {
	dir   string
	mode  Mode
	check spec.ProviderCheck

	mu      sync.RWMutex
	defs    *Definitions
	allowed map[string]bool
}

// NewStore loads the definitions of dir. dir may be empty only in development
// mode (every release then brings its own spec).
func NewStore(dir string, mode Mode, check spec.ProviderCheck) (*Store, error) {
	s := &Store{dir: dir, mode: mode, check: check}
	if dir == "" {
		if !mode.Dev {
			return nil, errors.New("no app definitions: give --apps DIR (CUTOVER_APPS), or --dev (CUTOVER_DEV=true) for development mode, where any spec may run anything the worker can")
		}
		return s, nil
	}
	if err := s.Reload(); err != nil {
		return nil, err
	}
	return s, nil
}

// Reload reads the directory again; on error the definitions in force stay.
func (s *Store) Reload() error {
	if s.dir == "" {
		return nil
	}
	defs, err := Load(s.dir, s.check)
	if err != nil {
		return err
	}
	allowed := map[string]bool{}
	var keyErr error
	defs.Providers(func(p spec.Provider) {
		k, err := gateKey(p)
		if err != nil {
			keyErr = err
		}
		allowed[k] = true
	})
	if keyErr != nil {
		return keyErr
	}
	s.mu.Lock()
	s.defs, s.allowed = defs, allowed
	s.mu.Unlock()
	return nil
}

// ReloadOn reloads the definitions each time c delivers (SIGHUP), logging
// what came of it, until c is closed.
func (s *Store) ReloadOn(c <-chan os.Signal, log *slog.Logger) {
	for range c {
		if err := s.Reload(); err != nil {
			log.Error("app definitions not reloaded; the ones in force stay", "err", err)
			continue
		}
		log.Info("app definitions reloaded", "apps", s.Apps())
	}
}

// ReloadOnHangup reloads the store's definitions on SIGHUP while the app
// runs: the worker and cutover serve read the same directory, and one signal
// brings both to the definitions in it.
func ReloadOnHangup(lc fx.Lifecycle, store *Store, log *slog.Logger) {
	hup := make(chan os.Signal, 1)
	lc.Append(fx.Hook{
		OnStart: func(context.Context) error {
			signal.Notify(hup, syscall.SIGHUP)
			go store.ReloadOn(hup, log)
			return nil
		},
		OnStop: func(context.Context) error { signal.Stop(hup); close(hup); return nil },
	})
}

// Apps lists the defined apps.
func (s *Store) Apps() []string {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.defs.Apps()
}

// Dev reports whether the worker runs in development mode.
func (s *Store) Dev() bool { return s.mode.Dev }

// Resolve resolves a request against the definitions in force (see
// Definitions.Resolve).
func (s *Store) Resolve(req spec.Release) (spec.Release, error) {
	s.mu.RLock()
	defs := s.defs
	s.mu.RUnlock()
	return defs.Resolve(req, s.mode, s.check)
}

// Allow is the provider registry's gate: outside development mode, only a
// provider that an app definition names (its type and settings, give or take
// the judge block a request may tighten) is ever built.
func (s *Store) Allow(p spec.Provider) error {
	if s.mode.Dev {
		return nil
	}
	k, err := gateKey(p)
	if err != nil {
		return err
	}
	s.mu.RLock()
	ok := s.allowed[k]
	s.mu.RUnlock()
	if !ok {
		return fmt.Errorf("no app definition names this %s provider with these settings", p.Type)
	}
	return nil
}

// gateKey identifies a provider by its type and settings without the judge
// block: statistics parameters that reach no host, command or secret.
func gateKey(p spec.Provider) (string, error) {
	if _, ok := p.Settings["judge"]; ok {
		p.Settings = maps.Clone(p.Settings)
		delete(p.Settings, "judge")
	}
	b, err := json.Marshal(p)
	if err != nil {
		return "", fmt.Errorf("provider %q settings: %w", p.Type, err)
	}
	return string(b), nil
}
