package activities

import (
	"context"
	"encoding/json"
	"sync"
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
	hb := newHeartbeat(ctx, progress)
	defer hb.stop()
	return fn(ctx)
}

// heartbeat beats every second until stopped. Its details are the progress
// text, or, once save was called, the latest progress saved: an activity that
// can resume (the soak guard, the comparison) keeps its state there, and a
// retry reads it back with saved.
type heartbeat struct {
	ctx  context.Context
	done chan struct{}
	// exited is closed when the beating goroutine has returned.
	exited chan struct{}
	once   sync.Once

	mu     sync.Mutex
	detail any
}

func newHeartbeat(ctx context.Context, progress string) *heartbeat {
	hb := &heartbeat{ctx: ctx, done: make(chan struct{}), exited: make(chan struct{}), detail: progress}
	if !activity.IsActivity(ctx) {
		close(hb.exited)
		return hb
	}
	// The first beat is a second in, not at once: an activity that is done
	// within a second (most weight changes) never heartbeats. The SDK cancels
	// an activity whose heartbeat call fails or takes longer than 80% of
	// the heartbeat timeout, taking the server for having timed it out; on a
	// server slowed by load that cancelled quick SetWeight and Decommission
	// attempts (and logged them as errors) that had nothing to report. A
	// dead worker is noticed as soon either way: the heartbeat timeout runs
	// from the attempt's start.
	go func() {
		defer close(hb.exited)
		t := time.NewTicker(heartbeatEvery)
		defer t.Stop()
		for {
			select {
			case <-hb.done:
				return
			case <-ctx.Done():
				return
			case <-t.C:
				hb.beat()
			}
		}
	}()
	return hb
}

func (hb *heartbeat) beat() {
	hb.mu.Lock()
	d := hb.detail
	hb.mu.Unlock()
	activity.RecordHeartbeat(hb.ctx, d)
}

// stop ends the beats and waits for one under way: a heartbeat sent after
// the activity returned goes out on its cancelled context, and the SDK logs
// it as a failed heartbeat (context canceled).
func (hb *heartbeat) stop() {
	hb.once.Do(func() { close(hb.done) })
	<-hb.exited
}

// save makes b the details of the next heartbeats.
func (hb *heartbeat) save(b []byte) {
	hb.mu.Lock()
	hb.detail = json.RawMessage(b)
	hb.mu.Unlock()
}

// saved is the progress an earlier attempt saved, or nil.
func (hb *heartbeat) saved() []byte {
	if !activity.IsActivity(hb.ctx) || !activity.HasHeartbeatDetails(hb.ctx) {
		return nil
	}
	var b json.RawMessage
	if err := activity.GetHeartbeatDetails(hb.ctx, &b); err != nil {
		return nil
	}
	if len(b) == 0 || b[0] != '{' {
		// A progress text, not a saved state.
		return nil
	}
	return b
}
