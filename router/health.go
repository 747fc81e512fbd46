package router

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"sync"
	"syscall"
	"time"
)

func newHealthClient() *http.Client {
	return &http.Client{
		Transport: &http.Transport{
			Proxy:               nil,
			DialContext:         (&net.Dialer{Timeout: time.Second}).DialContext,
			MaxIdleConnsPerHost: 2,
			IdleConnTimeout:     30 * time.Second,
		},
		// A redirect is not a 2xx: the instance is not ready.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}

// healthLoop checks every instance each HealthInterval until ctx ends. A round
// finishes before the next starts, so a hung instance cannot pile up probes.
func (r *Router) healthLoop(ctx context.Context) {
	defer close(r.healthDone)
	tick := time.NewTicker(r.cfg.HealthInterval)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
			r.checkAll(ctx, r.table.Load().all())
		}
	}
}

// checkAll checks instances concurrently and returns when all are done.
func (r *Router) checkAll(ctx context.Context, insts []*instance) {
	var wg sync.WaitGroup
	for _, in := range insts {
		wg.Go(func() { r.check(ctx, in) })
	}
	wg.Wait()
}

// check probes one instance and records the result, logging changes.
func (r *Router) check(ctx context.Context, in *instance) {
	pctx, cancel := context.WithTimeout(ctx, r.cfg.HealthInterval)
	defer cancel()
	err := r.probe(pctx, in)
	if ctx.Err() != nil {
		return // shutting down, or the admin caller left: the probe proves nothing
	}
	ok := err == nil
	if ok {
		in.failedChecks.Store(0)
	} else if n := in.failedChecks.Add(1); n < unhealthyAfter && !refused(err) {
		// One slow answer on a busy machine is no reason to pull an instance;
		// a refused connection (the process is gone) is.
		return
	}
	if was := in.healthy.Swap(ok); was == ok {
		return
	}
	color := r.table.Load().colorOf(in)
	if ok {
		r.log.Info("instance healthy", "color", color, "instance", in.key)
	} else {
		r.log.Warn("instance unhealthy", "color", color, "instance", in.key, "err", err)
	}
}

// unhealthyAfter is how many active checks in a row must fail before a
// listening instance counts as unhealthy.
const unhealthyAfter = 2

// refused says whether a probe found nothing listening.
func refused(err error) bool { return errors.Is(err, syscall.ECONNREFUSED) }

func (r *Router) probe(ctx context.Context, in *instance) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, in.key+r.cfg.HealthPath, nil)
	if err != nil {
		return fmt.Errorf("health request: %w", err)
	}
	resp, err := r.healthClient.Do(req)
	if err != nil {
		return fmt.Errorf("health check: %w", err)
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10)) // lets the connection be reused
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return fmt.Errorf("health check: %s answered %s", r.cfg.HealthPath, resp.Status)
	}
	return nil
}
