package activities

import (
	"context"
	"time"

	"go.temporal.io/sdk/activity"
)

// heartbeatEvery is how often a long provider call heartbeats. The workflow's
// heartbeat timeouts are a few times longer, so a dead worker is noticed within
// seconds and the activity is retried elsewhere.
const heartbeatEvery = time.Second

// withHeartbeat runs fn while heartbeating, so that provider calls that wait
// (provisioning, draining, migrating) show progress and a dead worker is noticed.
// The heartbeat also delivers the workflow's cancellation to ctx.
func withHeartbeat[T any](ctx context.Context, progress string, fn func(context.Context) (T, error)) (T, error) {
	if !activity.IsActivity(ctx) {
		return fn(ctx)
	}
	done := make(chan struct{})
	defer close(done)
	go func() {
		t := time.NewTicker(heartbeatEvery)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-ctx.Done():
				return
			case <-t.C:
				activity.RecordHeartbeat(ctx, progress)
			}
		}
	}()
	activity.RecordHeartbeat(ctx, progress)
	return fn(ctx)
}
