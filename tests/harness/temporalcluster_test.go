package harness

import (
	"context"
	"testing"

	"go.temporal.io/api/operatorservice/v1"
	"go.temporal.io/api/workflowservice/v1"
)

// Two nodes on the machine's PostgreSQL form one cluster: both frontends
// answer list queries by Cutover's search attributes.
func TestTemporalCluster(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a Temporal cluster")
	}
	c := StartTemporalCluster(t, ClusterOptions{Nodes: 2})
	cl := c.Client(t)
	sas, err := cl.OperatorService().ListSearchAttributes(context.Background(), &operatorservice.ListSearchAttributesRequest{Namespace: "default"})
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"CutoverApp", "CutoverVersion", "CutoverStage", "CutoverTrafficPercent", "CutoverOutcome"} {
		if _, ok := sas.CustomAttributes[name]; !ok {
			t.Errorf("search attribute %s missing: %v", name, sas.CustomAttributes)
		}
	}
	if _, err := cl.ListWorkflow(context.Background(), &workflowservice.ListWorkflowExecutionsRequest{
		Namespace: "default", Query: `CutoverApp="x" AND CutoverOutcome="promoted"`}); err != nil {
		t.Errorf("list query: %v", err)
	}
}
