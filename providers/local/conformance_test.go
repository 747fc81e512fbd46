package local

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cutoverhq/cutover/providers"
	"github.com/cutoverhq/cutover/providers/providertest"
	"github.com/cutoverhq/cutover/router"
)

// TestConformance runs the traffic providers' conformance suite against the
// local provider and an in-process router. The provider talks to the router's
// admin API through a reverse proxy that can answer 429, 500, 403 or 404
// instead, and blue and green are httptest servers whose /hold requests wait
// until the suite lets them finish.
func TestConformance(t *testing.T) {
	r, err := router.New(router.Config{
		App: "shop", Listen: "127.0.0.1:0", Admin: "127.0.0.1:0", Token: "test-token",
		HealthInterval: 100 * time.Millisecond,
		Logger:         slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := r.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = r.Shutdown(ctx)
	})

	// The admin API, behind a proxy that fails on demand.
	var fail atomic.Value // int: the status to answer with, 0 for none
	fail.Store(0)
	adminURL, _ := url.Parse("http://" + r.AdminAddr())
	rp := httputil.NewSingleHostReverseProxy(adminURL)
	admin := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		if status := fail.Load().(int); status != 0 {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(status)
			fmt.Fprintf(w, `{"error": "injected %d"}`+"\n", status)
			return
		}
		rp.ServeHTTP(w, req)
	}))
	t.Cleanup(admin.Close)

	// Blue and green: one instance each, holding /hold requests.
	var holdMu sync.Mutex
	hold := make(chan struct{})
	backend := func() *httptest.Server {
		s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
			if req.URL.Path == "/hold" {
				holdMu.Lock()
				c := hold
				holdMu.Unlock()
				select {
				case <-c:
				case <-req.Context().Done():
				}
			}
			_, _ = io.WriteString(w, "ok\n")
		}))
		t.Cleanup(s.Close)
		return s
	}
	blue, green := backend(), backend()
	c := router.NewClient("http://"+r.AdminAddr(), "test-token")
	ctx := context.Background()
	if err := c.SetPool(ctx, "blue", []string{blue.URL}); err != nil {
		t.Fatal(err)
	}
	if err := c.SetPool(ctx, "green", []string{green.URL}); err != nil {
		t.Fatal(err)
	}

	t.Setenv("LOCAL_CONFORMANCE_TOKEN", "test-token")
	stateDir := t.TempDir()
	providertest.Traffic(t, providertest.Target{
		App: "shop",
		New: func(t *testing.T) providers.Traffic {
			p, err := New(map[string]any{
				"stateDir": stateDir,
				"router":   map[string]any{"admin": admin.URL, "token": map[string]any{"env": "LOCAL_CONFORMANCE_TOKEN"}},
			})
			if err != nil {
				t.Fatal(err)
			}
			if err := p.SetWeight(context.Background(), "shop", 0); err != nil {
				t.Fatal(err)
			}
			return p
		},
		Fail: func(t *testing.T, kind providertest.FailKind) func() {
			status := map[providertest.FailKind]int{
				providertest.FailThrottle: http.StatusTooManyRequests,
				providertest.FailServer:   http.StatusInternalServerError,
				providertest.FailDenied:   http.StatusForbidden,
				providertest.FailNotFound: http.StatusNotFound,
			}[kind]
			if status == 0 {
				return nil
			}
			fail.Store(status)
			return func() { fail.Store(0) }
		},
		Drain: func(t *testing.T, _ providers.Color) func() {
			// The suite has put all the weight on the color.
			release := make(chan struct{})
			holdMu.Lock()
			hold = release
			holdMu.Unlock()
			var wg sync.WaitGroup
			for range 3 {
				wg.Add(1)
				go func() {
					defer wg.Done()
					resp, err := http.Get("http://" + r.Addr() + "/hold")
					if err != nil {
						t.Errorf("held request: %v", err)
						return
					}
					_, _ = io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
				}()
			}
			return func() {
				close(release)
				wg.Wait()
			}
		},
	})
}
