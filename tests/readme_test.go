package tests

import (
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/cutoverhq/cutover/tests/harness"
)

// TestReadmeBadSpec runs the README's example of a spec with mistakes through
// `cutover plan`, as a reader would copy it, and wants the output the README
// shows, line for line.
func TestReadmeBadSpec(t *testing.T) {
	readme, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	s := string(readme)
	i := strings.Index(s, "For this spec:")
	if i < 0 {
		t.Fatal(`README.md has no "For this spec:" example`)
	}
	m := regexp.MustCompile("(?s)```yaml\n(.*?)```\\s*```\n\\$ cutover plan -f bad.yaml; echo \\$\\?\n(.*?)```").FindStringSubmatch(s[i:])
	if m == nil {
		t.Fatal("README.md's bad.yaml example is not a yaml block followed by its `cutover plan` output")
	}
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "bad.yaml"), []byte(m[1]), 0o644); err != nil {
		t.Fatal(err)
	}
	cli, _ := harness.CutoverBinaries(t)
	// Run where the file is, so that the message names it as the README does.
	stdout, stderr, code := harness.Run(t, 30*time.Second, nil, "/bin/sh", "-c", "cd "+dir+" && exec "+cli+" plan -f bad.yaml")
	got := stdout + stderr + strconv.Itoa(code) + "\n"
	if want := m[2]; got != want {
		t.Errorf("cutover plan -f bad.yaml printed\n%s\nthe README shows\n%s", got, want)
	}
}
