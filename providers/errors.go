package providers

import (
	"errors"
	"fmt"
)

// Kinds of permanent failure. A provider returns one of these (through BadConfig,
// NotFound, Invalid, CheckFailed below, or by wrapping with %w) when retrying
// cannot help; any other error is taken as passing (throttling, a timeout, a 5xx)
// and retried. The activities package turns these
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

// Permanent reports whether err is of one of the permanent kinds, which no
// retry or later look can fix.
func Permanent(err error) bool {
	return errors.Is(err, ErrBadConfig) || errors.Is(err, ErrNotFound) || errors.Is(err, ErrInvalid) || errors.Is(err, ErrCheckFailed)
}

// kindError gives an error one of the permanent kinds without adding the kind's
// words to its message, which people read.
type kindError struct{ err, kind error }

func (e kindError) Error() string   { return e.err.Error() }
func (e kindError) Unwrap() []error { return []error{e.err, e.kind} }

// BadConfig is an ErrBadConfig with its own message.
func BadConfig(format string, args ...any) error {
	return kindError{fmt.Errorf(format, args...), ErrBadConfig}
}

// NotFound is an ErrNotFound with its own message.
func NotFound(format string, args ...any) error {
	return kindError{fmt.Errorf(format, args...), ErrNotFound}
}

// Invalid is an ErrInvalid with its own message.
func Invalid(format string, args ...any) error {
	return kindError{fmt.Errorf(format, args...), ErrInvalid}
}

// CheckFailed is an ErrCheckFailed with its own message.
func CheckFailed(format string, args ...any) error {
	return kindError{fmt.Errorf(format, args...), ErrCheckFailed}
}
