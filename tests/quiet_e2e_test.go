package tests

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cutoverhq/cutover/tests/harness"
)

// quietYAML is releaseYAML's plan without the approval gate, so that nobody
// has to act: a release that goes well from start to end.
const quietYAML = `app: %s
version: %s
providers:
  environment: {type: memory, settings: {delay: 200ms}}
  traffic: {type: memory}
  analysis: {type: memory}
  migrations: {type: memory}
  notifications: [{type: log}]
plan:
  - provision
  - migrate: {phase: expand}
  - validate
  - setWeight: 10
  - soak: {duration: 3s, interval: 1s}
  - setWeight: 50
  - analysis: {window: 1s}
  - promote
  - standby: {duration: 1s}
  - migrate: {phase: contract}
  - decommission
`

// Healthy releases leave no ERROR or WARN line in the workers' logs, so that
// an ERROR means something is wrong: soak guards end on their own at the
// soak's end rather than being cancelled, and no step is cancelled on the way.
// Several releases run at once on two workers, so that the workers are busy.
func TestHealthyReleasesLogNoErrors(t *testing.T) {
	c := startCluster(t)
	const n = 6
	var rels []*harness.Proc
	for i := range n {
		app := fmt.Sprintf("quiet%d", i)
		path := filepath.Join(t.TempDir(), app+".yaml")
		if err := os.WriteFile(path, fmt.Appendf(nil, quietYAML, app, "1.0.0"), 0o644); err != nil {
			t.Fatal(err)
		}
		rels = append(rels, harness.Start(t, "cutover release "+app, c.env, c.cli, "release", "-f", path, "--wait"))
	}
	for i, rel := range rels {
		if code := rel.Wait(t, 3*time.Minute); code != 0 {
			t.Fatalf("release quiet%d exited %d, want 0 (promoted)\n%s", i, code, rel.Output())
		}
	}
	// A graceful stop is part of a healthy life too.
	for _, w := range c.workers {
		w.Stop(40 * time.Second)
	}
	for i, w := range c.workers {
		for line := range strings.Lines(w.Output()) {
			if !strings.Contains(line, "level=ERROR") && !strings.Contains(line, "level=WARN") {
				continue
			}
			// The one warning a worker in development mode gives on purpose.
			if strings.Contains(line, "development mode:") {
				continue
			}
			t.Errorf("worker %d logged: %s", i, strings.TrimSpace(line))
		}
	}
}
