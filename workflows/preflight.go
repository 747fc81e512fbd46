package workflows

import (
	"errors"
	"time"

	"go.temporal.io/sdk/workflow"

	"github.com/cutoverhq/cutover/activities"
	"github.com/cutoverhq/cutover/providers"
)

// preflightChange gates the preflight activity: releases started before it
// existed replay without it.
const preflightChange = "preflight"

// preflight asks the traffic provider whether the plan can work with it before
// anything is touched, so that a plan that cannot (a soak shorter than a DNS
// TTL, a partial weight on a CNAME swap) fails with nothing to undo.
func (r *release) preflight(ctx workflow.Context) error {
	if !r.lean && workflow.GetVersion(ctx, preflightChange, workflow.DefaultVersion, 1) == workflow.DefaultVersion {
		return nil
	}
	rel := r.in.Release
	ctx = workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
		StartToCloseTimeout: time.Minute,
		HeartbeatTimeout:    heartbeatTimeout,
		RetryPolicy:         retry(5),
		Summary:             "preflight: check the plan against the traffic provider",
	})
	err := workflow.ExecuteActivity(ctx, activities.PreflightName, activities.PreflightInput{
		App:     rel.App,
		Traffic: rel.Providers.Traffic,
		Plan:    providers.PlanSteps(rel.Plan),
	}).Get(ctx, nil)
	if err != nil {
		return errors.New(errorText(err) + "; nothing was changed")
	}
	return nil
}
