package local

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
)

// pool is what a state file records of one pool: enough for any worker, also one
// that restarted, to find the processes again instead of starting duplicates.
type pool struct {
	App       string     `json:"app"`
	Version   string     `json:"version"`
	Instances []Instance `json:"instances"`
}

// store keeps pool state files under dir/<app>/: blue.json, green.json, and
// retired-<version>.json for a pool being stopped.
type store struct{ dir string }

func (s store) appDir(app string) string { return filepath.Join(s.dir, app) }

// lock serializes changes to one app's pools across workers on this machine.
func (s store) lock(app string) (unlock func(), err error) {
	if err := os.MkdirAll(s.appDir(app), 0o755); err != nil {
		return nil, fmt.Errorf("state dir: %w", err)
	}
	f, err := os.OpenFile(filepath.Join(s.appDir(app), ".lock"), os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return nil, fmt.Errorf("lock %s: %w", app, err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX); err != nil {
		f.Close()
		return nil, fmt.Errorf("lock %s: %w", app, err)
	}
	return func() { _ = syscall.Flock(int(f.Fd()), syscall.LOCK_UN); f.Close() }, nil
}

func (s store) path(app, name string) string { return filepath.Join(s.appDir(app), name+".json") }

// load returns the named pool, or nil when there is none.
func (s store) load(app, name string) (*pool, error) {
	b, err := os.ReadFile(s.path(app, name))
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read %s pool state: %w", name, err)
	}
	var p pool
	if err := json.Unmarshal(b, &p); err != nil {
		return nil, fmt.Errorf("read %s pool state %s: %w", name, s.path(app, name), err)
	}
	return &p, nil
}

// save writes the pool atomically.
func (s store) save(name string, p pool) error {
	b, err := json.MarshalIndent(p, "", "  ")
	if err != nil {
		return err
	}
	tmp := s.path(p.App, name) + ".tmp"
	if err := os.WriteFile(tmp, b, 0o644); err != nil {
		return fmt.Errorf("write %s pool state: %w", name, err)
	}
	return os.Rename(tmp, s.path(p.App, name))
}

// rename moves a pool's state file; a missing source is not an error.
func (s store) rename(app, from, to string) error {
	err := os.Rename(s.path(app, from), s.path(app, to))
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	return err
}

func (s store) remove(app, name string) error {
	err := os.Remove(s.path(app, name))
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	return err
}

// retired lists the names of pools that are being stopped.
func (s store) retired(app string) ([]string, error) {
	matches, err := filepath.Glob(filepath.Join(s.appDir(app), "retired-*.json"))
	if err != nil {
		return nil, err
	}
	names := make([]string, 0, len(matches))
	for _, m := range matches {
		names = append(names, strings.TrimSuffix(filepath.Base(m), ".json"))
	}
	return names, nil
}
