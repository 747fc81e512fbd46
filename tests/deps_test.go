package tests

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// A newcomer's make test must never hide a missing component: .ci/deps names
// the exact command for what it cannot install, goes on without CI=true (the
// suites then skip and are listed), and fails with CI=true.
func TestDepsNamesWhatIsMissing(t *testing.T) {
	// A PATH with the shell's basics but none of the packages the tests start.
	bin := t.TempDir()
	for _, name := range []string{"bash", "id", "ls", "head", "pg_isready"} {
		p, err := exec.LookPath(name)
		if err != nil {
			continue
		}
		if err := os.Symlink(p, filepath.Join(bin, name)); err != nil {
			t.Fatal(err)
		}
	}
	script, err := filepath.Abs("../.ci/deps")
	if err != nil {
		t.Fatal(err)
	}
	run := func(ci string) (string, int) {
		cmd := exec.Command(filepath.Join(bin, "bash"), script)
		cmd.Env = []string{"PATH=" + bin, "CUTOVER_NO_INSTALL=1", "CI=" + ci}
		out, err := cmd.CombinedOutput()
		code := 0
		if ee, ok := err.(*exec.ExitError); ok {
			code = ee.ExitCode()
		} else if err != nil {
			t.Fatal(err)
		}
		return string(out), code
	}

	out, code := run("")
	if code != 0 {
		t.Fatalf("without CI=true .ci/deps exited %d, want 0 (the suites skip and are listed)\n%s", code, out)
	}
	for _, want := range []string{"missing prometheus", "chromium", "sudo apt-get update && sudo apt-get install -y --no-install-recommends prometheus"} {
		if !strings.Contains(out, want) {
			t.Errorf(".ci/deps output lacks %q:\n%s", want, out)
		}
	}

	out, code = run("true")
	if code == 0 || !strings.Contains(out, "CI=true") {
		t.Fatalf("with CI=true .ci/deps exited %d, want a failure that says why:\n%s", code, out)
	}
}
