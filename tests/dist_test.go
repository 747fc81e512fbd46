package tests

import (
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/cutoverhq/cutover/tests/harness"
)

// TestMakeDist runs `make dist` as a release would: the four binaries of each
// program, static and stamped with the version, and the host's says which
// version, commit and date it is.
func TestMakeDist(t *testing.T) {
	if testing.Short() {
		t.Skip("cross-compiles both programs for four platforms")
	}
	if _, err := exec.LookPath("make"); err != nil {
		harness.Missing(t, "make", "apt-get install make")
	}
	root := harness.RepoRoot(t)
	commit, err := exec.Command("git", "-C", root, "rev-parse", "HEAD").Output()
	if err != nil {
		t.Skipf("not a git work tree: %v", err)
	}
	dist := t.TempDir()
	const version = "v9.8.7-test"
	began := time.Now()
	cmd := exec.Command("make", "-C", root, "dist", "DIST="+dist, "VERSION="+version, "DATE=2026-12-07T10:00:00Z")
	// No C compiler: every platform's binaries build without cgo.
	cmd.Env = append(os.Environ(), "CC=/nonexistent/cc")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("make dist: %v\n%s", err, out)
	}
	t.Logf("make dist took %s", time.Since(began).Round(time.Second))

	for _, prog := range []string{"cutover", "cutover-worker"} {
		for _, goos := range []string{"linux", "darwin"} {
			for _, goarch := range []string{"amd64", "arm64"} {
				bin := filepath.Join(dist, prog+"_"+goos+"_"+goarch)
				// Go records how it built a binary, for any platform.
				info, err := exec.Command("go", "version", "-m", bin).Output()
				if err != nil {
					t.Errorf("%s: %v", bin, err)
					continue
				}
				for _, want := range []string{"path\tgithub.com/cutoverhq/cutover/cmd/" + prog + "\n", "GOOS=" + goos + "\n", "GOARCH=" + goarch + "\n", "CGO_ENABLED=0\n", "-trimpath=true\n"} {
					if !strings.Contains(string(info), want) {
						t.Errorf("%s was not built with %q:\n%s", bin, want, info)
					}
				}
			}
		}
		if runtime.GOOS != "linux" && runtime.GOOS != "darwin" {
			continue
		}
		host := filepath.Join(dist, prog+"_"+runtime.GOOS+"_"+runtime.GOARCH)
		want := prog + " " + version + " (commit " + string(commit[:12]) + ", built 2026-12-07T10:00:00Z, " + runtime.Version() + ")\n"
		for _, args := range [][]string{{"version"}, {"--version"}} {
			out, err := exec.Command(host, args...).CombinedOutput()
			if err != nil || string(out) != want {
				t.Errorf("%s %s: %v, %q; want %q", filepath.Base(host), args[0], err, out, want)
			}
		}
	}
}
