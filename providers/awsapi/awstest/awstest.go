// Package awstest prepares a test for the AWS providers' fakes.
package awstest

import (
	"path/filepath"
	"testing"
	"time"
)

// Env gives the SDK's default credential chain static test credentials
// through the environment, so that the chain itself runs, and keeps it away
// from the machine's AWS files, region, endpoint overrides and instance
// metadata. serviceEndpointVars names the service's own endpoint override
// (AWS_ENDPOINT_URL_ROUTE_53, ...), cleared too.
func Env(t *testing.T, serviceEndpointVars ...string) {
	dir := t.TempDir()
	t.Setenv("AWS_ACCESS_KEY_ID", "AKIDCUTOVERTEST")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "cutover-test-secret")
	t.Setenv("AWS_SESSION_TOKEN", "")
	t.Setenv("AWS_PROFILE", "")
	t.Setenv("AWS_REGION", "")
	t.Setenv("AWS_DEFAULT_REGION", "")
	t.Setenv("AWS_CONFIG_FILE", filepath.Join(dir, "config"))
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", filepath.Join(dir, "credentials"))
	t.Setenv("AWS_EC2_METADATA_DISABLED", "true")
	t.Setenv("AWS_ENDPOINT_URL", "")
	for _, v := range serviceEndpointVars {
		t.Setenv(v, "")
	}
}

// FastBackoff is a retry backoff of a millisecond: the SDK's retries, which
// the fakes' throttling and 5xx answers trigger, then do not sleep a second
// each.
type FastBackoff struct{}

// BackoffDelay waits a millisecond whatever the attempt.
func (FastBackoff) BackoffDelay(int, error) (time.Duration, error) { return time.Millisecond, nil }
