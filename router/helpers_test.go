package router

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

const testToken = "s3cret-test-token"

// backend is a real HTTP instance on 127.0.0.1. It answers its name, counts
// hits, fails /healthz on demand, and holds /slow requests until released.
type backend struct {
	*httptest.Server
	name        string
	hits        atomic.Int64
	healthHits  atomic.Int64
	unhealthy   atomic.Bool
	sawOverride atomic.Bool // a request arrived with X-Cutover-Color
	drop        atomic.Bool // close user requests' connections without answering
	release     chan struct{}
	releaseOnce sync.Once
}

func newBackend(t *testing.T, name string) *backend {
	t.Helper()
	b := &backend{name: name, release: make(chan struct{})}
	b.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		if b.drop.Load() && req.URL.Path != "/healthz" {
			b.hits.Add(1)
			conn, _, err := http.NewResponseController(w).Hijack()
			if err == nil {
				conn.Close()
			}
			return
		}
		switch req.URL.Path {
		case "/healthz":
			b.healthHits.Add(1)
			if b.unhealthy.Load() {
				http.Error(w, "sick", http.StatusServiceUnavailable)
				return
			}
			_, _ = io.WriteString(w, "ok")
			return
		case "/slow":
			b.hits.Add(1)
			select {
			case <-b.release:
			case <-req.Context().Done():
				return
			}
		default:
			b.hits.Add(1)
		}
		if req.Header.Get(HeaderColor) != "" {
			b.sawOverride.Store(true)
		}
		_, _ = io.Copy(io.Discard, req.Body)
		_, _ = io.WriteString(w, b.name)
	}))
	// Released before Close, which waits for outstanding requests.
	t.Cleanup(func() { b.unblock(); b.Close() })
	return b
}

func (b *backend) unblock() { b.releaseOnce.Do(func() { close(b.release) }) }

// syncBuffer collects a router's logs; they are printed when a test fails.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

type harness struct {
	t      *testing.T
	r      *Router
	user   string // http://addr
	admin  string
	client *http.Client
	logs   *syncBuffer
}

// start runs a router on loopback ports with fast health checks; mod adjusts
// its config. The router is shut down when the test ends. Tests about routing
// under load set an hour between checks and rely on the check PUT of a pool
// makes: on a busy machine a check can miss its short timeout, and an instance
// that flaps unhealthy would blur the counts they assert.
func start(t *testing.T, mod func(*Config)) *harness {
	t.Helper()
	logs := &syncBuffer{}
	cfg := Config{
		App:            "demo",
		Listen:         "127.0.0.1:0",
		Admin:          "127.0.0.1:0",
		Token:          testToken,
		HealthInterval: 100 * time.Millisecond,
		Logger:         slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
	}
	if mod != nil {
		mod(&cfg)
	}
	r, err := New(cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	if err := r.Start(); err != nil {
		t.Fatalf("Start: %v", err)
	}
	h := &harness{
		t: t, r: r, logs: logs,
		user:   "http://" + r.Addr(),
		admin:  "http://" + r.AdminAddr(),
		client: &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}, Timeout: 10 * time.Second},
	}
	t.Cleanup(func() {
		if err := h.shutdown(); err != nil {
			t.Errorf("Shutdown: %v", err)
		}
		if t.Failed() {
			t.Logf("router logs:\n%s", logs.String())
		}
	})
	return h
}

// shutdown shuts the router down. The client's idle connections go first: the
// client may have dialed connections it never used, and http.Server.Shutdown
// waits up to 5s for such connections to send a request.
func (h *harness) shutdown() error {
	h.client.CloseIdleConnections()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	return h.r.Shutdown(ctx)
}

// call makes an admin API call with the token and returns the status and body.
func (h *harness) call(method, path string, body any) (int, []byte) {
	h.t.Helper()
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		rd = strings.NewReader(b)
	default:
		j, err := json.Marshal(b)
		if err != nil {
			h.t.Fatal(err)
		}
		rd = bytes.NewReader(j)
	}
	return h.callAuth(method, path, rd, "Bearer "+testToken)
}

func (h *harness) callAuth(method, path string, body io.Reader, auth string) (int, []byte) {
	h.t.Helper()
	req, err := http.NewRequest(method, h.admin+path, body)
	if err != nil {
		h.t.Fatal(err)
	}
	if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	resp, err := h.client.Do(req)
	if err != nil {
		h.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		h.t.Fatal(err)
	}
	return resp.StatusCode, b
}

// mustCall makes an admin call that must answer 200 with a State.
func (h *harness) mustCall(method, path string, body any) State {
	h.t.Helper()
	code, b := h.call(method, path, body)
	if code != http.StatusOK {
		h.t.Fatalf("%s %s: %d %s", method, path, code, b)
	}
	var st State
	if err := json.Unmarshal(b, &st); err != nil {
		h.t.Fatalf("%s %s: decode state: %v", method, path, err)
	}
	return st
}

func (h *harness) state() State { h.t.Helper(); return h.mustCall("GET", "/v1/state", nil) }

func (h *harness) setPool(color string, bs ...*backend) State {
	h.t.Helper()
	urls := []string{}
	for _, b := range bs {
		urls = append(urls, b.URL)
	}
	return h.mustCall("PUT", "/v1/pools/"+color, PoolRequest{Instances: urls})
}

func (h *harness) setGreen(w int) State {
	h.t.Helper()
	return h.mustCall("PUT", "/v1/weights", map[string]int{"green": w})
}

// get sends a user request through the router; hdr is name, value pairs.
func (h *harness) get(path string, hdr ...string) (*http.Response, string, error) {
	return h.do("GET", path, nil, hdr...)
}

func (h *harness) do(method, path string, body io.Reader, hdr ...string) (*http.Response, string, error) {
	req, err := http.NewRequest(method, h.user+path, body)
	if err != nil {
		return nil, "", err
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := h.client.Do(req)
	if err != nil {
		return nil, "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp, string(b), err
}

// mustGet sends a user request that must answer 200 and returns the body (the
// backend's name).
func (h *harness) mustGet(path string, hdr ...string) string {
	h.t.Helper()
	resp, body, err := h.get(path, hdr...)
	if err != nil {
		h.t.Fatalf("GET %s: %v", path, err)
	}
	if resp.StatusCode != http.StatusOK {
		h.t.Fatalf("GET %s: %d %s", path, resp.StatusCode, body)
	}
	return body
}

// load sends n GETs from workers goroutines and counts answers by body; any
// error or non-200 is counted under "error: ...".
func (h *harness) load(n, workers int, path string) map[string]int {
	var mu sync.Mutex
	counts := make(map[string]int)
	var next atomic.Int64
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			local := make(map[string]int)
			for next.Add(1) <= int64(n) {
				resp, body, err := h.get(path)
				switch {
				case err != nil:
					local["error: "+err.Error()]++
				case resp.StatusCode != http.StatusOK:
					local["error: "+resp.Status+" "+body]++
				default:
					local[body]++
				}
			}
			mu.Lock()
			for k, v := range local {
				counts[k] += v
			}
			mu.Unlock()
		})
	}
	wg.Wait()
	return counts
}

// eventually polls cond every 10ms for up to 5s.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func errorsIn(counts map[string]int) map[string]int {
	out := make(map[string]int)
	for k, v := range counts {
		if strings.HasPrefix(k, "error") {
			out[k] = v
		}
	}
	return out
}
