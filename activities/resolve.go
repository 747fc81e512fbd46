package activities

import (
	"context"
	"errors"

	"go.temporal.io/sdk/temporal"

	"github.com/cutoverhq/cutover/apps"
	"github.com/cutoverhq/cutover/spec"
)

// ResolveName is the activity that turns a release request into the release
// to run.
const ResolveName = "Resolve"

// ErrTypeRefused is a request the app definitions do not allow.
const ErrTypeRefused = "Refused"

// Resolver resolves requests against the worker's app definitions
// (*apps.Store).
type Resolver interface {
	Resolve(req spec.Release) (spec.Release, error)
}

// Resolve checks a release request against the app's definition on this
// worker and returns the release to run. It runs first in every release,
// whichever door started it: a start straight through Temporal is refused the
// same way as one through the API. A refusal is permanent.
func (a *Activities) Resolve(_ context.Context, req spec.Release) (spec.Release, error) {
	if a.apps == nil {
		return spec.Release{}, temporal.NewNonRetryableApplicationError("this worker has no app definitions", ErrTypeRefused, nil)
	}
	rel, err := a.apps.Resolve(req)
	var refused *apps.RefusedError
	if errors.As(err, &refused) {
		return spec.Release{}, temporal.NewNonRetryableApplicationError(refused.Error(), ErrTypeRefused, err)
	}
	return rel, err
}
