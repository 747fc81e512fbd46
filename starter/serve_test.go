package starter

import (
	"bufio"
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/cutoverhq/cutover/api"
	"github.com/cutoverhq/cutover/chatops"
	"github.com/cutoverhq/cutover/deadlines"
	"github.com/cutoverhq/cutover/deadlines/deadlinestest"
	"github.com/cutoverhq/cutover/releases"
	"github.com/cutoverhq/cutover/spec"
	"github.com/cutoverhq/cutover/workflows"
)

const serveToken = "serve-test-token"

// slowReleases answers like one running release of shop, and holds Status
// while hold is open.
type slowReleases struct {
	hold chan struct{}
}

func (s *slowReleases) Start(context.Context, spec.Release, releases.Origin) (releases.Started, error) {
	return releases.Started{}, errors.New("not in this test")
}

func (s *slowReleases) Status(ctx context.Context, app string) (workflows.Status, error) {
	select {
	case <-s.hold:
	case <-ctx.Done():
		return workflows.Status{}, ctx.Err()
	}
	return workflows.Status{App: app, Version: "1.5.0", Stage: "soak", Outcome: workflows.OutcomeRunning}, nil
}

func (s *slowReleases) StatusRun(ctx context.Context, app, _ string) (workflows.Status, string, error) {
	st, err := s.Status(ctx, app)
	return st, "run-1", err
}

func (s *slowReleases) Decide(context.Context, string, string, workflows.Decision, string) (string, error) {
	return "done", nil
}

func (s *slowReleases) List(context.Context, releases.Filter) ([]releases.Summary, error) {
	return nil, nil
}

func (s *slowReleases) Current(context.Context, string) (api.Run, error) {
	return api.Run{}, nil
}

// startServe serves the API and chatops as cutover serve does, with its
// deadlines set to t, on a loopback port.
func startServe(t *testing.T, rel *slowReleases, to deadlines.Timeouts) string {
	t.Helper()
	log := slog.New(slog.DiscardHandler)
	a, err := api.New(api.Config{
		Tokens:       []api.Token{{Name: "ci", SHA256: api.HashToken(serveToken), Scopes: api.Scopes}},
		PollInterval: 20 * time.Millisecond, Heartbeat: 50 * time.Millisecond,
	}, rel, nil, log)
	if err != nil {
		t.Fatal(err)
	}
	slack, err := chatops.New(chatops.Config{SigningSecret: "slack-secret", Apps: map[string]chatops.AppConfig{chatops.AnyApp: {Approvers: []string{"U111"}}}}, rel, nil, log)
	if err != nil {
		t.Fatal(err)
	}
	hs := apiServer(routes(a.Handler(), slack), to, log)
	hs.RegisterOnShutdown(a.Close)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = hs.Serve(ln) }()
	t.Cleanup(func() { _ = hs.Close() })
	return ln.Addr().String()
}

// request is a request with the test's token.
func request(t *testing.T, method, url string) *http.Request {
	t.Helper()
	req := deadlinestest.Request(t, method, url)
	req.Header.Set("Authorization", "Bearer "+serveToken)
	return req
}

// TestServeDeadlines exercises each deadline of cutover serve's server
// through a real connection, with short deadlines.
func TestServeDeadlines(t *testing.T) {
	t.Parallel()
	to := deadlinestest.Short()
	rel := &slowReleases{hold: make(chan struct{})}
	close(rel.hold)
	addr := startServe(t, rel, to)
	base := "http://" + addr

	t.Run("headers, bodies and idle connections", func(t *testing.T) {
		t.Parallel()
		abort := request(t, "POST", base+"/v1/releases/shop/abort")
		abort.Header.Set("Content-Type", "application/json")
		deadlinestest.CheckReads(t, addr, to, abort, request(t, "GET", base+"/healthz"))
	})
	// The finding of issue 13: Slack's paths read their body with no deadline.
	for _, path := range []string{"/slack/commands", "/slack/actions"} {
		t.Run(path+" with a body sent a byte at a time", func(t *testing.T) {
			t.Parallel()
			req := request(t, "POST", base+path)
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			deadlinestest.CheckSlowBody(t, addr, to, req)
		})
	}
	t.Run("an event stream outlives the write deadline", func(t *testing.T) {
		t.Parallel()
		resp, err := http.DefaultClient.Do(request(t, "GET", base+"/v1/releases/shop/events"))
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("events: %s", resp.Status)
		}
		// Keep-alive comments for four write deadlines.
		start, beats := time.Now(), 0
		br := bufio.NewReader(resp.Body)
		for time.Since(start) < 4*to.Write {
			line, err := br.ReadString('\n')
			if err != nil {
				t.Fatalf("the stream ended after %s (%d keep-alives): %v", time.Since(start).Round(time.Millisecond), beats, err)
			}
			if strings.HasPrefix(line, ": keep-alive") {
				beats++
			}
		}
		if beats < 10 {
			t.Errorf("%d keep-alives in %s", beats, 4*to.Write)
		}
	})
}

// TestServeWriteDeadline: an answer that is not written within the write
// deadline is not written at all; the connection closes.
func TestServeWriteDeadline(t *testing.T) {
	t.Parallel()
	to := deadlinestest.Short()
	rel := &slowReleases{hold: make(chan struct{})}
	addr := startServe(t, rel, to)
	go func() {
		time.Sleep(to.Write + 300*time.Millisecond)
		close(rel.hold)
	}()
	r := deadlinestest.Unanswered(t, addr, request(t, "GET", "http://"+addr+"/v1/releases/shop"), 5*time.Second)
	if r.Got != "" {
		t.Errorf("the late answer went out: %q", r.Got)
	}
	r.Between(t, "an answer past the write deadline", to.Write, to.Write+deadlinestest.Slack)
}

// TestServeTimeoutFlags: the deadlines come from flags and CUTOVER_API_*
// variables, and serve refuses ones that would cut what the API does.
func TestServeTimeoutFlags(t *testing.T) {
	run := func(args ...string) error {
		cmd := serveCmd(&globals{})
		cmd.SetArgs(append([]string{"--tokens-file", "/nonexistent/tokens.yaml"}, args...))
		cmd.SetOut(io.Discard)
		cmd.SetErr(io.Discard)
		return cmd.Execute()
	}
	// Good deadlines get as far as the tokens file.
	if err := run("--read-timeout", "45s", "--write-timeout", "5m"); err == nil || !strings.Contains(err.Error(), "/nonexistent/tokens.yaml") {
		t.Errorf("good deadlines: %v", err)
	}
	for _, c := range []struct {
		args []string
		env  string
		want string
	}{
		{[]string{"--write-timeout", "1m"}, "", "--write-timeout 1m0s must be longer than 2m0s"},
		{[]string{"--idle-timeout", "0s"}, "", "--idle-timeout must be above 0, got 0s"},
		{[]string{"--read-header-timeout", "1m"}, "", "--read-header-timeout 1m0s is longer than --read-timeout 30s"},
		{nil, "soon", `CUTOVER_API_IDLE_TIMEOUT: "soon" is not a duration`},
	} {
		t.Run(c.want, func(t *testing.T) {
			if c.env != "" {
				t.Setenv("CUTOVER_API_IDLE_TIMEOUT", c.env)
			}
			if err := run(c.args...); err == nil || !strings.Contains(err.Error(), c.want) {
				t.Errorf("%v: %v, want %q", c.args, err, c.want)
			}
		})
	}
}

// TestRouterTimeoutFlags: the router's user deadlines come from flags and
// CUTOVER_ROUTER_* variables.
func TestRouterTimeoutFlags(t *testing.T) {
	t.Setenv("CUTOVER_ROUTER_TOKEN", "")
	t.Setenv("CUTOVER_ROUTER_READ_TIMEOUT", "forever")
	cmd := routerCmd()
	cmd.SetArgs([]string{"--app", "shop", "--write-timeout", "2m"})
	cmd.SetOut(io.Discard)
	cmd.SetErr(io.Discard)
	if err := cmd.Execute(); err == nil || !strings.Contains(err.Error(), `CUTOVER_ROUTER_READ_TIMEOUT: "forever" is not a duration`) {
		t.Errorf("a bad variable: %v", err)
	}
}

// TestServePublicURLFlags: --public-url must be an http(s) URL and
// CUTOVER_API_TRUST_PROXY a boolean; good values get as far as the tokens
// file.
func TestServePublicURLFlags(t *testing.T) {
	run := func(args ...string) error {
		cmd := serveCmd(&globals{})
		cmd.SetArgs(append([]string{"--tokens-file", "/nonexistent/tokens.yaml"}, args...))
		cmd.SetOut(io.Discard)
		cmd.SetErr(io.Discard)
		return cmd.Execute()
	}
	if err := run("--public-url", "https://cutover.example.com/", "--trust-proxy"); err == nil || !strings.Contains(err.Error(), "/nonexistent/tokens.yaml") {
		t.Errorf("good flags: %v", err)
	}
	for _, bad := range []string{"cutover.example.com", "ftp://cutover.example.com", "https://", "https://x.example/?a=b"} {
		if err := run("--public-url", bad); err == nil || !strings.Contains(err.Error(), "--public-url") {
			t.Errorf("--public-url %q: %v", bad, err)
		}
	}
	t.Setenv("CUTOVER_API_TRUST_PROXY", "yes please")
	if err := run(); err == nil || !strings.Contains(err.Error(), "CUTOVER_API_TRUST_PROXY") {
		t.Errorf("CUTOVER_API_TRUST_PROXY=yes please: %v", err)
	}
}
