package metrics

import (
	"context"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/cutoverhq/cutover/deadlines"
	"github.com/cutoverhq/cutover/deadlines/deadlinestest"
)

// TestServerDeadlines exercises each deadline of the worker's /metrics
// server through a real connection, with short deadlines.
func TestServerDeadlines(t *testing.T) {
	to := deadlinestest.Short()
	// /healthz answers late while slow is set: after the write deadline.
	slow := make(chan struct{})
	health := func(ctx context.Context) error {
		select {
		case <-slow:
			time.Sleep(to.Write + 300*time.Millisecond)
		default:
		}
		return nil
	}
	srv := NewServer(NewHandler(NewRegistry(), health), to)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Close() })
	addr := ln.Addr().String()
	get := func(path string) *http.Request {
		req, err := http.NewRequest("GET", "http://"+addr+path, nil)
		if err != nil {
			t.Fatal(err)
		}
		return req
	}
	const slack = 2 * time.Second // a busy machine's delay

	deadlinestest.SlowHeaders(t, addr, 50*time.Millisecond, 5*time.Second).Between(t, "headers a byte at a time", to.ReadHeader/2, to.ReadHeader+slack)
	deadlinestest.SlowBody(t, addr, get("/metrics"), 1000, 50*time.Millisecond, 5*time.Second).Between(t, "a body a byte at a time", to.Read/2, to.Read+slack)
	deadlinestest.Idle(t, addr, get("/metrics"), 5*time.Second).Between(t, "an idle connection", to.Idle/2, to.Idle+slack)

	close(slow)
	r := deadlinestest.Unanswered(t, addr, get("/healthz"), 5*time.Second)
	if strings.Contains(r.Got, "ok") {
		t.Errorf("the late answer went out: %q", r.Got)
	}
	r.Between(t, "an answer past the write deadline", to.Write, to.Write+deadlinestest.Slack)
}

func TestNewServerDefaults(t *testing.T) {
	srv := NewServer(http.NotFoundHandler(), deadlines.Timeouts{Idle: time.Minute})
	d := DefaultTimeouts()
	if srv.ReadHeaderTimeout != d.ReadHeader || srv.ReadTimeout != d.Read || srv.WriteTimeout != d.Write || srv.IdleTimeout != time.Minute {
		t.Errorf("server deadlines %s %s %s %s", srv.ReadHeaderTimeout, srv.ReadTimeout, srv.WriteTimeout, srv.IdleTimeout)
	}
	if err := d.Check("--http-"); err != nil {
		t.Error(err)
	}
}
