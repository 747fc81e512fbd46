package apps_test

import (
	"os"
	"strings"
	"testing"

	"github.com/cutoverhq/cutover/apps"
	"github.com/cutoverhq/cutover/providers/builtin"
	"github.com/cutoverhq/cutover/spec"
)

// The README's app definition is deploy/apps/example.yaml, word for word, and
// the directory loads as a worker loads it: what the README shows, a test
// runs.
func TestReadmeAppDefinition(t *testing.T) {
	readme, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	file, err := os.ReadFile("../deploy/apps/example.yaml")
	if err != nil {
		t.Fatal(err)
	}
	_, after, ok := strings.Cut(string(readme), "`deploy/apps/example.yaml`:\n\n```yaml\n")
	block, _, closed := strings.Cut(after, "```")
	if !ok || !closed {
		t.Fatal("README.md shows no deploy/apps/example.yaml block")
	}
	if block != string(file) {
		t.Errorf("README.md's example differs from deploy/apps/example.yaml:\n%s", block)
	}
	defs, err := apps.Load("../deploy/apps", builtin.NewRegistry(nil).Check)
	if err != nil {
		t.Fatal(err)
	}
	rel, err := defs.Resolve(spec.Release{App: "example", Version: "1.4.2"}, apps.Mode{}, builtin.NewRegistry(nil).Check)
	if err != nil || rel.Version != "1.4.2" || len(rel.People) != 2 {
		t.Fatalf("the README's request for example 1.4.2: %+v, %v", rel, err)
	}
}
