package workflows

import (
	"path/filepath"
	"testing"

	"go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"
)

// TestReplayRecordedHistories replays histories that real releases recorded on a
// Temporal server (make record-histories). A change to the workflow code that
// would break a release in flight (a reordered activity, a new timer, a removed
// step) fails here with a nondeterminism error.
func TestReplayRecordedHistories(t *testing.T) {
	files, err := filepath.Glob("testdata/*.json")
	if err != nil {
		t.Fatal(err)
	}
	if len(files) == 0 {
		t.Fatal("no recorded histories in workflows/testdata: run `make record-histories`")
	}
	r := worker.NewWorkflowReplayer()
	r.RegisterWorkflowWithOptions(Release, workflow.RegisterOptions{Name: WorkflowName})
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			if err := r.ReplayWorkflowHistoryFromJSONFile(nil, f); err != nil {
				t.Fatalf("replay %s: %v", f, err)
			}
		})
	}
}
