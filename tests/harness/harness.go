// Package harness starts the real components that end-to-end tests run against
// (the Temporal dev server, Cutover's own binaries) on free loopback ports, and
// stops every process it started when the test ends.
//
// A component that is missing makes the test skip with a message on a developer's
// machine, and fail when CI=true: CI must never pass by skipping.
package harness

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"go.temporal.io/sdk/client"

	"github.com/cutoverhq/cutover/procs"
)

// Missing skips the test because a component is not there, or fails it in CI.
func Missing(t testing.TB, what, how string) {
	t.Helper()
	if os.Getenv("CI") == "true" {
		t.Fatalf("%s is missing, and CI=true requires it: %s", what, how)
	}
	t.Skipf("%s is missing (%s); skipping. CI=true makes this a failure.", what, how)
}

// RepoRoot is the directory of Cutover's go.mod.
func RepoRoot(t testing.TB) string {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		if b, err := os.ReadFile(filepath.Join(dir, "go.mod")); err == nil && bytes.Contains(b, []byte("module github.com/cutoverhq/cutover\n")) {
			return dir
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatal("cannot find Cutover's go.mod above the working directory")
		}
		dir = parent
	}
}

// FreePort returns a loopback port that was free a moment ago.
func FreePort(t testing.TB) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("find a free port: %v", err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

var (
	buildMu sync.Mutex
	built   = map[string]string{}
)

// Binary returns the path of one of the repo's binaries, built once per test
// process: env names a variable that may hold a prebuilt path (the Makefile sets
// them), args are `go build` arguments after -o.
func Binary(t testing.TB, env string, args ...string) string {
	t.Helper()
	if p := os.Getenv(env); p != "" {
		if _, err := os.Stat(p); err != nil {
			t.Fatalf("%s=%s: %v", env, p, err)
		}
		return p
	}
	buildMu.Lock()
	defer buildMu.Unlock()
	key := strings.Join(args, " ")
	if p, ok := built[key]; ok {
		return p
	}
	if _, err := exec.LookPath("go"); err != nil {
		Missing(t, "the go command", "install Go to build "+key)
	}
	dir, err := os.MkdirTemp("", "cutover-bin-")
	if err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, filepath.Base(args[len(args)-1]))
	cmd := exec.Command("go", append([]string{"build", "-o", out}, args...)...)
	cmd.Dir = RepoRoot(t)
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build %s: %v\n%s", key, err, b)
	}
	built[key] = out
	return out
}

// CutoverBinaries returns the cutover CLI and the worker.
func CutoverBinaries(t testing.TB) (cli, worker string) {
	return Binary(t, "CUTOVER_BIN", "./cmd/cutover"), Binary(t, "CUTOVER_WORKER_BIN", "./cmd/cutover-worker")
}

// TemporalCLI returns the Temporal CLI pinned in tools/go.mod. Its first build
// takes minutes; the Makefile builds it once and sets TEMPORAL_BIN.
func TemporalCLI(t testing.TB) string {
	return Binary(t, "TEMPORAL_BIN", "-modfile=tools/go.mod", "github.com/temporalio/cli/cmd/temporal")
}

// Proc is a process a test started; it is stopped when the test ends.
type Proc struct {
	*procs.Proc
}

// outputKept is how much of a process's output a test keeps: all of it in
// practice (tests search it, and print it when they fail); the bound only
// stops a runaway process from filling the memory.
const outputKept = 64 << 20

// Start starts a process in its own process group; the test's cleanup stops it
// (SIGTERM, then SIGKILL after 10s) and prints its output when the test failed.
func Start(t testing.TB, name string, env []string, bin string, args ...string) *Proc {
	t.Helper()
	pp, err := procs.Start(name, procs.Options{Env: env, Tail: outputKept}, bin, args...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		pp.Stop(10 * time.Second)
		if t.Failed() {
			t.Logf("--- output of %s ---\n%s", name, pp.Output())
		}
	})
	return &Proc{pp}
}

// Wait waits for the process to exit and returns its exit code.
func (p *Proc) Wait(t testing.TB, timeout time.Duration) int {
	t.Helper()
	code, err := p.Proc.Wait(context.Background(), timeout)
	if errors.Is(err, procs.ErrTimeout) {
		t.Fatalf("%s did not exit within %s; output:\n%s", p.Name, timeout, p.Output())
	}
	if err != nil {
		t.Fatal(err)
	}
	return code
}

// Run runs a command to completion and returns its stdout, stderr and exit code.
func Run(t testing.TB, timeout time.Duration, env []string, bin string, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Env = append(os.Environ(), env...)
	var o, e bytes.Buffer
	cmd.Stdout, cmd.Stderr = &o, &e
	err := cmd.Run()
	var ee *exec.ExitError
	switch {
	case errors.As(err, &ee):
		code = ee.ExitCode()
	case err != nil:
		t.Fatalf("%s %s: %v", bin, strings.Join(args, " "), err)
	}
	return o.String(), e.String(), code
}

// SearchAttributes are the attributes the dev server is started with, as the
// worker also registers them.
var SearchAttributes = []string{
	"CutoverApp=Keyword", "CutoverVersion=Keyword", "CutoverStage=Keyword",
	"CutoverTrafficPercent=Int", "CutoverOutcome=Keyword",
}

// DevServer is a running Temporal dev server.
type DevServer struct {
	Address string
	UIPort  int
	CLI     string
	Proc    *Proc
}

// DevServerOptions tune the dev server.
type DevServerOptions struct {
	// UI serves the Web UI on UIPort (headless otherwise).
	UI bool
}

// StartTemporal starts the Temporal CLI's dev server on free loopback ports and
// waits until it answers.
func StartTemporal(t testing.TB, opts DevServerOptions) *DevServer {
	t.Helper()
	cli := TemporalCLI(t)
	port, uiPort := FreePort(t), FreePort(t)
	args := []string{"server", "start-dev", "--ip", "127.0.0.1", "--port", fmt.Sprint(port),
		"--ui-port", fmt.Sprint(uiPort), "--db-filename", filepath.Join(t.TempDir(), "temporal.db"),
		"--log-level", "warn"}
	if !opts.UI {
		args = append(args, "--headless")
	}
	for _, sa := range SearchAttributes {
		args = append(args, "--search-attribute", sa)
	}
	s := &DevServer{Address: fmt.Sprintf("127.0.0.1:%d", port), UIPort: uiPort, CLI: cli}
	s.Proc = Start(t, "temporal dev server", nil, cli, args...)
	deadline := time.Now().Add(60 * time.Second)
	for {
		c, err := client.Dial(client.Options{HostPort: s.Address})
		if err == nil {
			_, err = c.CheckHealth(context.Background(), &client.CheckHealthRequest{})
			c.Close()
			if err == nil {
				return s
			}
		}
		if s.Proc.Exited() || time.Now().After(deadline) {
			t.Fatalf("temporal dev server did not become healthy: %v\n%s", err, s.Proc.Output())
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// Client returns a Go client of the dev server, closed when the test ends.
func (s *DevServer) Client(t testing.TB) client.Client {
	t.Helper()
	c, err := client.Dial(client.Options{HostPort: s.Address})
	if err != nil {
		t.Fatalf("dial %s: %v", s.Address, err)
	}
	t.Cleanup(c.Close)
	return c
}

// Env is the environment that points Cutover's binaries at the server.
func (s *DevServer) Env(taskQueue string) []string {
	// Development mode: most tests release whole specs; those of app
	// definitions override it with CUTOVER_DEV=false and CUTOVER_APPS.
	return []string{"TEMPORAL_ADDRESS=" + s.Address, "TEMPORAL_NAMESPACE=default", "CUTOVER_TASK_QUEUE=" + taskQueue, "CUTOVER_DEV=true"}
}
