// Package awsapi is what Cutover's AWS providers (alb, route53, cloudwatch)
// share: the AWS configuration from the SDK's default credential chain, with
// one retry policy, and the one place where an AWS error is sorted into
// retryable or permanent.
package awsapi

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/smithy-go"

	"github.com/cutoverhq/cutover/providers"
)

// Config loads the AWS configuration for region: credentials from the
// environment, shared config or an instance or task role, never from the spec.
// The SDK retries throttling and 5xx answers a few times itself, briefly; the
// activity's own retries take over after that. backoff replaces the retryer's
// backoff (tests); nil keeps the SDK's.
func Config(ctx context.Context, region string, backoff retry.BackoffDelayer) (aws.Config, error) {
	cfg, err := config.LoadDefaultConfig(ctx,
		config.WithRegion(region),
		config.WithRetryer(func() aws.Retryer {
			return retry.NewStandard(func(o *retry.StandardOptions) {
				o.MaxAttempts = 4
				o.MaxBackoff = 5 * time.Second
				if backoff != nil {
					o.Backoff = backoff
				}
			})
		}))
	if err != nil {
		return aws.Config{}, fmt.Errorf("load the AWS configuration: %w", err)
	}
	return cfg, nil
}

// Error codes every AWS service uses the same way.
var (
	throttled = []string{"Throttling", "ThrottlingException", "RequestLimitExceeded", "TooManyRequests", "TooManyRequestsException", "PriorRequestNotComplete"}
	denied    = []string{"AccessDenied", "AccessDeniedException", "UnauthorizedOperation", "InvalidClientTokenId", "UnrecognizedClientException"}
	invalid   = []string{"ValidationError", "ValidationException", "InvalidConfigurationRequest", "InvalidChangeBatch", "InvalidInput",
		"InvalidParameterValue", "InvalidParameterValueException", "InvalidParameterCombination", "MissingParameter"}
)

// Classify wraps err with what was being done and decides whether a retry can
// help: throttling, 5xx answers and network errors are retryable; access
// denied and validation errors are permanent (Invalid) with AWS's message; the
// service's notFound codes are permanent (NotFound).
func Classify(err error, what string, notFound ...string) error {
	var re interface{ HTTPStatusCode() int }
	if errors.As(err, &re) && re.HTTPStatusCode() >= 500 {
		return fmt.Errorf("%s: %w", what, err) // the service failing: retry
	}
	var ae smithy.APIError
	if !errors.As(err, &ae) {
		return fmt.Errorf("%s: %w", what, err) // the network, a timeout: retry
	}
	code, msg := ae.ErrorCode(), ae.ErrorMessage()
	switch {
	case slices.Contains(throttled, code):
		return fmt.Errorf("%s: %w", what, err)
	case slices.Contains(denied, code), slices.Contains(invalid, code):
		return providers.Invalid("%s: %s: %s", what, code, msg)
	case slices.Contains(notFound, code):
		return providers.NotFound("%s: %s: %s", what, code, msg)
	}
	return fmt.Errorf("%s: %w", what, err)
}
