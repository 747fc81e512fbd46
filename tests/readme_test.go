package tests

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"gopkg.in/yaml.v3"

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

// TestReadmePlanExamples runs every spec the README shows through `cutover
// plan`, as a reader would after copying it: a block with a plan as it is
// (with an app and a version where the README leaves them out), a block of
// providers alone with memory providers for the kinds it does not show. Every
// `cutover plan -f <file>` the README shows for a file in the repository runs
// too. Only bad.yaml (TestReadmeBadSpec) and blocks that elide lines ("...")
// are left out.
func TestReadmePlanExamples(t *testing.T) {
	readme, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	s := string(readme)
	cli, _ := harness.CutoverBinaries(t)
	dir := t.TempDir()
	ran := 0
	for _, m := range regexp.MustCompile("(?s)```yaml\n(.*?)```").FindAllStringSubmatchIndex(s, -1) {
		block := s[m[2]:m[3]]
		line := strings.Count(s[:m[0]], "\n") + 1
		var doc map[string]any
		if err := yaml.Unmarshal([]byte(block), &doc); err != nil {
			if strings.Contains(block, "\n  ...\n") {
				t.Logf("README.md:%d elides lines; not run", line)
				continue
			}
			t.Errorf("README.md:%d: the yaml block does not parse: %v", line, err)
			continue
		}
		providers, ok := doc["providers"].(map[string]any)
		if !ok || strings.Contains(block, "verdict: Maybe") {
			continue
		}
		if doc["app"] == nil {
			doc["app"], doc["version"] = "shop", "1.5.0"
		}
		if doc["plan"] == nil {
			for _, kind := range []string{"environment", "traffic", "analysis"} {
				if providers[kind] == nil {
					providers[kind] = map[string]any{"type": "memory"}
				}
			}
		}
		data, err := yaml.Marshal(doc)
		if err != nil {
			t.Fatal(err)
		}
		file := filepath.Join(dir, fmt.Sprintf("readme-%d.yaml", line))
		if err := os.WriteFile(file, data, 0o644); err != nil {
			t.Fatal(err)
		}
		stdout, stderr, code := harness.Run(t, 30*time.Second, nil, cli, "plan", "-f", file)
		if code != 0 || !strings.Contains(stdout, "Plan:") {
			t.Errorf("README.md:%d: cutover plan exited %d:\n%s%s\nfor\n%s", line, code, stdout, stderr, data)
		}
		ran++
	}
	root := harness.RepoRoot(t)
	for _, m := range regexp.MustCompile(`cutover plan -f ([\w./-]+\.ya?ml)`).FindAllStringSubmatch(s, -1) {
		if _, err := os.Stat(filepath.Join(root, m[1])); err != nil {
			continue // a reader's own file (release.yaml, bad.yaml)
		}
		stdout, stderr, code := harness.Run(t, 30*time.Second, nil, "/bin/sh", "-c", "cd "+root+" && exec "+cli+" plan -f "+m[1])
		if code != 0 {
			t.Errorf("README: cutover plan -f %s exited %d:\n%s%s", m[1], code, stdout, stderr)
		}
		ran++
	}
	t.Logf("%d README examples planned", ran)
	if ran < 10 {
		t.Errorf("only %d README examples found to plan", ran)
	}
}
