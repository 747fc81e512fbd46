package workflows

import (
	"time"

	"go.temporal.io/sdk/workflow"

	"github.com/cutoverhq/cutover/activities"
	"github.com/cutoverhq/cutover/spec"
)

// resolveChange gates the resolve activity: releases started before app
// definitions existed replay with the spec their input held.
const resolveChange = "app-definitions"

// resolve turns the input's request into the release to run, through the
// worker's app definitions, before anything else happens. Nothing in the
// input's spec is used until then: a start straight through Temporal that
// names its own providers is refused like one through the API. ok is false for
// a release that a worker recorded before this change (the input is the spec).
func resolve(ctx workflow.Context, in Input, lean bool) (rel spec.Release, ok bool, err error) {
	if !lean && workflow.GetVersion(ctx, resolveChange, workflow.DefaultVersion, 1) == workflow.DefaultVersion {
		return in.Release, false, nil
	}
	ctx = workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
		StartToCloseTimeout: 30 * time.Second,
		RetryPolicy:         retry(5),
		Summary:             "resolve the request against the app's definition",
	})
	err = workflow.ExecuteActivity(ctx, activities.ResolveName, in.Release).Get(ctx, &rel)
	return rel, true, err
}

// refused ends a release whose request the worker refused. Nothing of the
// request's own spec is used: not its providers, not even its notifications.
// The status says why, for `cutover status`, the API and the UI.
func refused(ctx workflow.Context, in Input, err error, lean bool) (Status, error) {
	in.Release = spec.Release{App: in.Release.App, Version: in.Release.Version}
	r := newRelease(ctx, in, lean)
	r.st.Principal = in.Principal
	if qerr := r.registerHandlers(ctx); qerr != nil {
		return Status{}, qerr
	}
	r.finish(ctx, OutcomeFailed, errorText(err)+"; nothing was changed")
	r.end(ctx)
	return r.st, nil
}
