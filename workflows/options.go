package workflows

import (
	"time"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/cutoverhq/cutover/activities"
)

// heartbeatTimeout is how long an activity may go without a heartbeat before
// Temporal takes its worker for dead and retries it elsewhere. Activities
// heartbeat every second while they wait.
const heartbeatTimeout = 5 * time.Second

// retry is the policy of forward steps: a few attempts with backoff, and never
// for the permanent error types, which fail the step at once.
func retry(attempts int32) *temporal.RetryPolicy {
	return &temporal.RetryPolicy{
		InitialInterval:        time.Second,
		BackoffCoefficient:     2,
		MaximumInterval:        30 * time.Second,
		MaximumAttempts:        attempts,
		NonRetryableErrorTypes: activities.PermanentErrorTypes,
	}
}

// stepOptions is for a step's provider call that may take up to timeout.
func stepOptions(ctx workflow.Context, timeout time.Duration, summary string) workflow.Context {
	return workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
		StartToCloseTimeout: timeout,
		HeartbeatTimeout:    heartbeatTimeout,
		RetryPolicy:         retry(5),
		// Wait for a cancelled call to stop before going on, so that a rollback
		// never races a weight change or a provisioning still under way.
		WaitForCancellation: true,
		Summary:             summary,
	})
}

// weightOptions is for traffic changes: quick calls, retried briskly.
func weightOptions(ctx workflow.Context, summary string) workflow.Context {
	return workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
		StartToCloseTimeout: time.Minute,
		HeartbeatTimeout:    heartbeatTimeout,
		RetryPolicy: &temporal.RetryPolicy{
			InitialInterval:        500 * time.Millisecond,
			BackoffCoefficient:     2,
			MaximumInterval:        10 * time.Second,
			MaximumAttempts:        8,
			NonRetryableErrorTypes: activities.PermanentErrorTypes,
		},
		WaitForCancellation: true,
		Summary:             summary,
	})
}

// rollbackOptions is for undoing: sending traffic back to blue matters more than
// anything else, so it is retried for much longer than a forward step.
func rollbackOptions(ctx workflow.Context, summary string) workflow.Context {
	return workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
		StartToCloseTimeout:    time.Minute,
		ScheduleToCloseTimeout: 30 * time.Minute,
		HeartbeatTimeout:       heartbeatTimeout,
		RetryPolicy: &temporal.RetryPolicy{
			InitialInterval:        500 * time.Millisecond,
			BackoffCoefficient:     2,
			MaximumInterval:        30 * time.Second,
			NonRetryableErrorTypes: activities.PermanentErrorTypes,
		},
		Summary: summary,
	})
}

// guardOptions is for the soak guard, which runs for the whole soak. A worker
// that dies is noticed by its missed heartbeats and the guard is retried on
// another one, from the evidence in its last heartbeat, for as long as the
// soak lasts and a little more; then the soak fails rather than go on
// unwatched. Nothing waits on its cancellation: it only reads.
func guardOptions(ctx workflow.Context, soak time.Duration, summary string) workflow.Context {
	return workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
		StartToCloseTimeout:    soak + time.Minute,
		ScheduleToCloseTimeout: soak + 10*time.Minute,
		HeartbeatTimeout:       heartbeatTimeout,
		RetryPolicy:            retry(0),
		Summary:                summary,
	})
}

// ledgerOptions is for ledger writes: they retry for a good while, because an
// auditor needs every event, but a ledger that stays down does not hold the
// release forever.
func ledgerOptions(ctx workflow.Context, summary string) workflow.Context {
	return workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
		StartToCloseTimeout:    30 * time.Second,
		ScheduleToCloseTimeout: 10 * time.Minute,
		RetryPolicy:            retry(0),
		Summary:                summary,
	})
}

// notifyOptions is for notifications, which never hold a release up for long.
func notifyOptions(ctx workflow.Context, summary string) workflow.Context {
	return workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
		StartToCloseTimeout: 30 * time.Second,
		RetryPolicy:         retry(3),
		Summary:             summary,
	})
}
