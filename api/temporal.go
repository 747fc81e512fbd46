package api

import (
	"context"
	"errors"
	"fmt"

	"go.temporal.io/api/enums/v1"
	"go.temporal.io/api/serviceerror"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/converter"

	"github.com/cutoverhq/cutover/releases"
	"github.com/cutoverhq/cutover/spec"
	"github.com/cutoverhq/cutover/workflows"
)

// Temporal is the API's Releases over Temporal: the releases client, and the
// Temporal client to describe an app's current run.
type Temporal struct {
	*releases.Client
	c client.Client
}

var _ Releases = (*Temporal)(nil)

// NewTemporal returns the Releases the API uses in production.
func NewTemporal(rc *releases.Client, c client.Client) *Temporal {
	return &Temporal{Client: rc, c: c}
}

// Current describes the app's latest release run from Temporal (no worker
// needed): its run ID, whether it runs, and its version and stage from the
// search attributes.
func (t *Temporal) Current(ctx context.Context, app string) (Run, error) {
	id := spec.WorkflowID(app)
	desc, err := t.c.DescribeWorkflowExecution(ctx, id, "")
	var nf *serviceerror.NotFound
	if errors.As(err, &nf) {
		return Run{}, fmt.Errorf("%w for app %q", releases.ErrNotFound, app)
	}
	if err != nil {
		return Run{}, fmt.Errorf("describe %s: %w", id, err)
	}
	info := desc.GetWorkflowExecutionInfo()
	run := Run{
		WorkflowID: id,
		RunID:      info.GetExecution().GetRunId(),
		Running:    info.GetStatus() == enums.WORKFLOW_EXECUTION_STATUS_RUNNING,
	}
	fields := info.GetSearchAttributes().GetIndexedFields()
	dc := converter.GetDefaultDataConverter()
	for name, into := range map[string]*string{
		workflows.AttrVersion.GetName(): &run.Version,
		workflows.AttrStage.GetName():   &run.Stage,
	} {
		if p, ok := fields[name]; ok {
			_ = dc.FromPayload(p, into) // a value that does not decode stays empty
		}
	}
	return run, nil
}

// Healthy reports whether Temporal answers, for /healthz.
func (t *Temporal) Healthy(ctx context.Context) error {
	_, err := t.c.CheckHealth(ctx, &client.CheckHealthRequest{})
	return err
}
