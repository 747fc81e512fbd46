package tests

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// TestDockerfileBuildCommands runs the worker image's build commands, word for
// word, without Docker: the image is built with CGO_ENABLED=0, so every
// package it holds must build without a C compiler (the SQL safety checks
// parse with libpg_query compiled to WebAssembly, not through cgo).
func TestDockerfileBuildCommands(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binaries")
	}
	data, err := os.ReadFile("../deploy/docker/Dockerfile")
	if err != nil {
		t.Fatal(err)
	}
	cmds := regexp.MustCompile(`CGO_ENABLED=0 go build [^\n&]*?-o /out/\S+ \./\S+`).FindAllString(string(data), -1)
	if len(cmds) != 2 {
		t.Fatalf("the Dockerfile has %d CGO_ENABLED=0 go build commands, want the worker's and the CLI's: %q", len(cmds), cmds)
	}
	out := t.TempDir()
	for _, c := range cmds {
		c = strings.ReplaceAll(c, "/out/", out+"/")
		began := time.Now()
		cmd := exec.Command("sh", "-c", c)
		cmd.Dir = ".."
		// No C compiler either: a package that needs cgo fails here.
		cmd.Env = append(os.Environ(), "CC=/nonexistent/cc")
		if b, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("%s: %v\n%s", c, err, b)
		}
		t.Logf("%s (%s)", c, time.Since(began).Round(time.Second))
	}
	for _, bin := range []string{"cutover-worker", "cutover"} {
		if _, err := os.Stat(filepath.Join(out, bin)); err != nil {
			t.Errorf("the build made no %s: %v", bin, err)
		}
	}
	// The static CLI runs: a binary that needed libc would not start in the
	// distroless image.
	if b, err := exec.Command(filepath.Join(out, "cutover"), "--help").CombinedOutput(); err != nil || !strings.Contains(string(b), "cutover") {
		t.Errorf("cutover --help: %v\n%s", err, b)
	}
}
