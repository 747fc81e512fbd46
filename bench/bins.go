package main

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
)

// binaries finds or builds the programs the benchmark runs. The Makefile
// exports prebuilt paths (CUTOVER_BIN, CUTOVER_WORKER_BIN, DEMO_APP_BIN,
// TEMPORAL_BIN); without them, the repo's own commands are built into a
// temporary directory (fast once Go's build cache is warm), and the Temporal CLI
// is taken from bin/temporal (`make temporal`, minutes the first time).
type binaries struct {
	root   string
	tmpDir string
	cache  map[string]string
}

func newBinaries() (*binaries, error) {
	root, err := repoRoot()
	if err != nil {
		return nil, err
	}
	return &binaries{root: root, cache: map[string]string{}}, nil
}

func (b *binaries) cleanup() {
	if b.tmpDir != "" {
		_ = os.RemoveAll(b.tmpDir)
	}
}

// get returns $env when it is set, otherwise builds args (go build arguments
// after -o) once, as name.
func (b *binaries) get(env, name string, args ...string) (string, error) {
	if p := os.Getenv(env); p != "" {
		if _, err := os.Stat(p); err != nil {
			return "", fmt.Errorf("%s=%s: %w", env, p, err)
		}
		return p, nil
	}
	key := fmt.Sprint(args)
	if p, ok := b.cache[key]; ok {
		return p, nil
	}
	if b.tmpDir == "" {
		d, err := os.MkdirTemp("", "cutover-bench-bin-")
		if err != nil {
			return "", err
		}
		b.tmpDir = d
	}
	out := filepath.Join(b.tmpDir, name)
	logf("building %s (set %s to use a prebuilt one)", args[len(args)-1], env)
	cmd := exec.Command("go", append([]string{"build", "-o", out}, args...)...)
	cmd.Dir = b.root
	if o, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go build %v: %w\n%s", args, err, o)
	}
	b.cache[key] = out
	return out, nil
}

func (b *binaries) cutover() (string, error) { return b.get("CUTOVER_BIN", "cutover", "./cmd/cutover") }
func (b *binaries) worker() (string, error) {
	return b.get("CUTOVER_WORKER_BIN", "cutover-worker", "./cmd/cutover-worker")
}
func (b *binaries) demoApp() (string, error) {
	return b.get("DEMO_APP_BIN", "demo-app", "./deploy/demo-app")
}

// temporal returns the Temporal CLI: $TEMPORAL_BIN, bin/temporal, or a build
// of the version pinned in tools/go.mod.
func (b *binaries) temporal() (string, error) {
	if os.Getenv("TEMPORAL_BIN") == "" {
		if p := filepath.Join(b.root, "bin", "temporal"); fileExists(p) {
			return p, nil
		}
	}
	return b.get("TEMPORAL_BIN", "temporal", "-modfile=tools/go.mod", "github.com/temporalio/cli/cmd/temporal")
}

func fileExists(p string) bool {
	st, err := os.Stat(p)
	return err == nil && !st.IsDir()
}

// repoRoot is the directory of Cutover's go.mod, at or above the working
// directory.
func repoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if b, err := os.ReadFile(filepath.Join(dir, "go.mod")); err == nil && bytes.Contains(b, []byte("module github.com/cutoverhq/cutover\n")) {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("cannot find Cutover's go.mod at or above the working directory")
		}
		dir = parent
	}
}
