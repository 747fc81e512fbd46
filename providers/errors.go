package providers

import "errors"

// Kinds of permanent failure. A provider wraps one of these (fmt.Errorf("...: %w",
// ErrNotFound)) when retrying cannot help; any other error is taken as passing
// (throttling, a timeout, a 5xx) and retried. The activities package turns these
// into Temporal's non-retryable errors: that is the one place where the decision is
// made.
var (
	// ErrBadConfig is a provider setting that cannot work.
	ErrBadConfig = errors.New("bad configuration")
	// ErrNotFound is a thing the provider was told to use that does not exist.
	ErrNotFound = errors.New("not found")
	// ErrInvalid is a request the provider's API refused as invalid or forbidden.
	ErrInvalid = errors.New("invalid request")
	// ErrCheckFailed is a health or smoke check that green failed.
	ErrCheckFailed = errors.New("check failed")
)
