package activities

import (
	"context"
	"errors"
	"fmt"

	"go.temporal.io/sdk/temporal"

	"github.com/cutoverhq/cutover/providers"
)

// Error types of the permanent failures, as Temporal's retry policies name them.
const (
	ErrTypeBadConfig   = "BadConfig"
	ErrTypeNotFound    = "NotFound"
	ErrTypeInvalid     = "Invalid"
	ErrTypeCheckFailed = "CheckFailed"
)

// PermanentErrorTypes are the error types that no retry can fix; the workflow's
// retry policies list them as non-retryable.
var PermanentErrorTypes = []string{ErrTypeBadConfig, ErrTypeNotFound, ErrTypeInvalid, ErrTypeCheckFailed, ErrTypeRefused}

// classify is the one place that decides whether a provider's error is permanent
// (bad config, not found, refused, a failed check) or worth retrying (anything
// else: throttling, timeouts, 5xx, connection errors).
func classify(what string, err error) error {
	if err == nil {
		return nil
	}
	msg := fmt.Sprintf("%s: %v", what, err)
	for _, k := range []struct {
		err error
		typ string
	}{
		{providers.ErrBadConfig, ErrTypeBadConfig},
		{providers.ErrNotFound, ErrTypeNotFound},
		{providers.ErrInvalid, ErrTypeInvalid},
		{providers.ErrCheckFailed, ErrTypeCheckFailed},
	} {
		if errors.Is(err, k.err) {
			return temporal.NewNonRetryableApplicationError(msg, k.typ, err)
		}
	}
	if errors.Is(err, context.Canceled) {
		return temporal.NewCanceledError(msg)
	}
	return fmt.Errorf("%s: %w", what, err)
}
