package main

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

func server(t *testing.T, failEvery int64) *httptest.Server {
	t.Helper()
	var n atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		if i := n.Add(1); failEvery > 0 && i%failEvery == 0 {
			w.WriteHeader(http.StatusInternalServerError)
		}
		fmt.Fprint(w, `{"version":"1.0.0"}`)
	}))
	t.Cleanup(srv.Close)
	return srv
}

func runCmd(t *testing.T, ctx context.Context, args ...string) (int, string, string) {
	t.Helper()
	var stdout, stderr bytes.Buffer
	code := run(ctx, args, &stdout, &stderr)
	return code, stdout.String(), stderr.String()
}

func TestAllOKExitsZero(t *testing.T) {
	srv := server(t, 0)
	code, out, errs := runCmd(t, context.Background(), "-url", srv.URL, "-rate", "500", "-max", "50", "-progress", "0")
	if code != 0 || !strings.HasPrefix(out, "sent=50 ok=50 failed=0 conn_errors=0 ") ||
		!strings.Contains(out, "by_version=1.0.0:50") || strings.Count(out, "\n") != 1 || errs != "" {
		t.Fatalf("exit %d\nstdout %q\nstderr %q", code, out, errs)
	}
}

func TestFailuresExitOne(t *testing.T) {
	srv := server(t, 10)
	code, out, _ := runCmd(t, context.Background(), "-url", srv.URL, "-rate", "500", "-max", "50", "-progress", "0")
	if code != 1 || !strings.HasPrefix(out, "sent=50 ok=45 failed=5 ") {
		t.Fatalf("exit %d, stdout %q", code, out)
	}
}

func TestNonLoopbackExitsTwo(t *testing.T) {
	for _, u := range []string{"http://10.0.0.1/", "http://example.com/"} {
		code, out, errs := runCmd(t, context.Background(), "-url", u)
		if code != 2 || out != "" || !strings.Contains(errs, "non-loopback") {
			t.Fatalf("%s: exit %d, stdout %q, stderr %q", u, code, out, errs)
		}
	}
}

func TestUsageErrorsExitTwo(t *testing.T) {
	for _, args := range [][]string{{}, {"-rate", "x"}, {"-url", "http://127.0.0.1:1/", "extra"}, {"-url", "http://127.0.0.1:1/", "-max", "0"}} {
		if code, _, _ := runCmd(t, context.Background(), args...); code != 2 {
			t.Errorf("%q: exit %d, want 2", args, code)
		}
	}
}

func TestProgressAndStopOnCancel(t *testing.T) {
	srv := server(t, 0)
	ctx, cancel := context.WithTimeout(context.Background(), 350*time.Millisecond) // as SIGINT would
	defer cancel()
	code, out, errs := runCmd(t, ctx, "-url", srv.URL, "-rate", "100", "-progress", "100ms")
	if code != 0 || !strings.HasPrefix(out, "sent=") {
		t.Fatalf("exit %d, stdout %q", code, out)
	}
	lines := strings.Split(strings.TrimSpace(errs), "\n")
	if len(lines) < 2 || len(lines) > 4 {
		t.Fatalf("progress lines %q", lines)
	}
	for _, l := range lines {
		if !strings.HasPrefix(l, "loadgen: t=") || !strings.Contains(l, " ok=") || !strings.Contains(l, " by_version=1.0.0:") {
			t.Fatalf("progress line %q", l)
		}
	}
}
