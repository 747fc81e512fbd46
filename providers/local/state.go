package local

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"

	"github.com/cutoverhq/cutover/providers"
	"github.com/cutoverhq/cutover/spec"
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

// appDir is the app's directory under the state directory. The app name comes
// from a release; the spec checks it, and it is checked again here, since a
// name such as ../x would put files anywhere the worker may write.
func (s store) appDir(app string) (string, error) {
	if err := spec.CheckApp(app); err != nil {
		return "", providers.Invalid("app: %v", err)
	}
	return inside(s.dir, app)
}

// inside joins dir and name, and refuses a name that would leave dir.
func inside(dir, name string) (string, error) {
	p := filepath.Join(dir, name)
	if name == "" || filepath.Dir(p) != filepath.Clean(dir) {
		return "", providers.Invalid("%q is not a file name inside %s", name, dir)
	}
	return p, nil
}

// lock serializes changes to one app's pools across workers on this machine.
func (s store) lock(app string) (unlock func(), err error) {
	dir, err := s.appDir(app)
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("state dir: %w", err)
	}
	f, err := os.OpenFile(filepath.Join(dir, ".lock"), os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return nil, fmt.Errorf("lock %s: %w", app, err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX); err != nil {
		f.Close()
		return nil, fmt.Errorf("lock %s: %w", app, err)
	}
	return func() { _ = syscall.Flock(int(f.Fd()), syscall.LOCK_UN); f.Close() }, nil
}

func (s store) path(app, name string) (string, error) {
	dir, err := s.appDir(app)
	if err != nil {
		return "", err
	}
	return inside(dir, name+".json")
}

// load returns the named pool, or nil when there is none.
func (s store) load(app, name string) (*pool, error) {
	path, err := s.path(app, name)
	if err != nil {
		return nil, err
	}
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read %s pool state: %w", name, err)
	}
	var p pool
	if err := json.Unmarshal(b, &p); err != nil {
		return nil, fmt.Errorf("read %s pool state %s: %w", name, path, err)
	}
	return &p, nil
}

// save writes the pool atomically.
func (s store) save(name string, p pool) error {
	path, err := s.path(p.App, name)
	if err != nil {
		return err
	}
	b, err := json.MarshalIndent(p, "", "  ")
	if err != nil {
		return err
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, b, 0o644); err != nil {
		return fmt.Errorf("write %s pool state: %w", name, err)
	}
	return os.Rename(tmp, path)
}

// rename moves a pool's state file; a missing source is not an error.
func (s store) rename(app, from, to string) error {
	src, err := s.path(app, from)
	if err != nil {
		return err
	}
	dst, err := s.path(app, to)
	if err != nil {
		return err
	}
	err = os.Rename(src, dst)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	return err
}

func (s store) remove(app, name string) error {
	path, err := s.path(app, name)
	if err != nil {
		return err
	}
	err = os.Remove(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	return err
}

// logPath names an instance's log file in the app's state directory. The
// version is the release's: checked again here, as the app is, since the
// file is created and truncated.
func (s store) logPath(app, color, version string, i int) (string, error) {
	dir, err := s.appDir(app)
	if err != nil {
		return "", err
	}
	if color != string(providers.Blue) && color != string(providers.Green) {
		return "", providers.Invalid("color: %q is not blue or green", color)
	}
	if err := spec.CheckVersion(version); err != nil {
		return "", providers.Invalid("version: %v", err)
	}
	return inside(dir, fmt.Sprintf("%s-%s-%s-%d.log", app, color, version, i))
}

// retired lists the names of pools that are being stopped.
func (s store) retired(app string) ([]string, error) {
	dir, err := s.appDir(app)
	if err != nil {
		return nil, err
	}
	matches, err := filepath.Glob(filepath.Join(dir, "retired-*.json"))
	if err != nil {
		return nil, err
	}
	names := make([]string, 0, len(matches))
	for _, m := range matches {
		names = append(names, strings.TrimSuffix(filepath.Base(m), ".json"))
	}
	return names, nil
}
