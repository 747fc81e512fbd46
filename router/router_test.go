package router

import (
	"context"
	"errors"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestNewValidates(t *testing.T) {
	for name, cfg := range map[string]Config{
		"no token":          {},
		"relative health":   {Token: "x", HealthPath: "healthz"},
		"negative interval": {Token: "x", HealthInterval: -time.Second},
	} {
		if _, err := New(cfg); err == nil {
			t.Errorf("%s: New accepted %+v", name, cfg)
		}
	}
	r, err := New(Config{Token: "x"})
	if err != nil {
		t.Fatal(err)
	}
	if r.cfg.Listen != "127.0.0.1:8080" || r.cfg.Admin != "127.0.0.1:8081" || r.cfg.HealthPath != "/healthz" ||
		r.cfg.HealthInterval != time.Second || r.cfg.EjectFor != 5*time.Second || r.cfg.Token != "" {
		t.Errorf("defaults: %+v", r.cfg)
	}
	if r.Addr() != "" || r.Shutdown(context.Background()) != nil {
		t.Error("a router that never started has an address or fails to shut down")
	}
}

func TestStartErrors(t *testing.T) {
	h := start(t, nil)
	if err := h.r.Start(); err == nil {
		t.Error("a second Start succeeded")
	}
	// The user address is taken: Start fails and leaves nothing listening.
	r, err := New(Config{Token: "x", Listen: h.r.Addr(), Admin: "127.0.0.1:0"})
	if err != nil {
		t.Fatal(err)
	}
	if err := r.Start(); err == nil || !strings.Contains(err.Error(), "listen for user traffic") {
		t.Errorf("Start on a taken address: %v", err)
	}
}

// Shutdown lets a request that started before it finish, and refuses new
// connections meanwhile.
func TestGracefulShutdown(t *testing.T) {
	b := newBackend(t, "blue")
	h := start(t, nil)
	h.setPool(Blue, b)

	done := make(chan string, 1)
	go func() {
		resp, body, err := h.get("/slow")
		if err != nil {
			done <- err.Error()
			return
		}
		done <- resp.Status + " " + body
	}()
	eventually(t, "the slow request to be in flight", func() bool { return h.r.State().InFlight[Blue] == 1 })

	shut := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		shut <- h.r.Shutdown(ctx)
	}()
	eventually(t, "the listener to close", func() bool {
		c, err := net.DialTimeout("tcp", h.r.Addr(), 100*time.Millisecond)
		if err == nil {
			c.Close()
		}
		return err != nil
	})
	select {
	case err := <-shut:
		t.Fatalf("Shutdown returned (%v) with a request in flight", err)
	default:
	}
	b.unblock()
	if got := <-done; got != "200 OK blue" {
		t.Fatalf("in-flight request: %s", got)
	}
	if err := <-shut; err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
}

// Shutdown gives up when its context ends, and says so.
func TestShutdownDeadline(t *testing.T) {
	b := newBackend(t, "blue")
	h := start(t, nil)
	h.setPool(Blue, b)
	done := make(chan error, 1)
	go func() {
		_, _, err := h.get("/slow")
		done <- err
	}()
	eventually(t, "the slow request to be in flight", func() bool { return h.r.State().InFlight[Blue] == 1 })
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	if err := h.r.Shutdown(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Shutdown past its deadline: %v", err)
	}
	if err := <-done; err == nil {
		t.Error("the cut request succeeded")
	}
}

// A restarted router with the same state file serves the same split at once.
func TestStateFileSurvivesRestart(t *testing.T) {
	path := filepath.Join(t.TempDir(), "router.json")
	b, g := newBackend(t, "blue"), newBackend(t, "green")

	first := start(t, func(c *Config) { c.StateFile = path })
	first.setPool(Blue, b)
	first.setPool(Green, g)
	first.setGreen(50)
	first.mustCall("PUT", "/v1/maintenance", MaintenanceRequest{Enabled: true})
	first.mustCall("PUT", "/v1/maintenance", MaintenanceRequest{Enabled: false})
	want := first.state()
	if err := first.shutdown(); err != nil {
		t.Fatal(err)
	}

	second := start(t, func(c *Config) { c.StateFile = path; c.HealthInterval = time.Hour })
	got := second.state()
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("restored state:\n got %+v\nwant %+v", got, want)
	}
	if c := second.load(100, 1, "/"); c["blue"] != 50 || c["green"] != 50 {
		t.Errorf("restored split: %v", c)
	}
	if info, err := os.Stat(path); err != nil || info.Mode().Perm() != 0o600 {
		t.Errorf("state file: %v %v", info, err)
	}
	if m, _ := filepath.Glob(filepath.Join(filepath.Dir(path), ".*")); len(m) != 0 {
		t.Errorf("temporary files left: %v", m)
	}
}

func TestBadStateFile(t *testing.T) {
	dir := t.TempDir()
	for name, content := range map[string]string{
		"garbage": "{",
		"weights": `{"weights": {"blue": 50, "green": 70}, "pools": {}}`,
		"color":   `{"weights": {"blue": 100, "green": 0}, "pools": {"red": []}}`,
		"url":     `{"weights": {"blue": 100, "green": 0}, "pools": {"blue": ["nope"]}}`,
	} {
		path := filepath.Join(dir, name+".json")
		if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		if _, err := New(Config{Token: "x", StateFile: path}); err == nil || !strings.Contains(err.Error(), path) {
			t.Errorf("%s: New: %v", name, err)
		}
	}
}

// A change that cannot be saved is refused and not applied.
func TestUnsavableChangeIsRefused(t *testing.T) {
	path := filepath.Join(t.TempDir(), "gone", "router.json")
	h := start(t, func(c *Config) { c.StateFile = path })
	code, raw := h.call("PUT", "/v1/weights", `{"green": 10}`)
	if code != http.StatusInternalServerError || !strings.Contains(string(raw), "save state") {
		t.Errorf("unsavable change: %d %s", code, raw)
	}
	if h.state().Weights.Green != 0 {
		t.Error("the unsaved change was applied")
	}
}

// The Client drives a real router.
func TestClient(t *testing.T) {
	b, g := newBackend(t, "blue"), newBackend(t, "green")
	h := start(t, nil)
	c := NewClient(h.admin+"/", testToken)
	ctx := context.Background()

	if err := c.SetPool(ctx, Blue, []string{b.URL}); err != nil {
		t.Fatal(err)
	}
	if err := c.SetPool(ctx, Green, []string{g.URL}); err != nil {
		t.Fatal(err)
	}
	if err := c.SetWeight(ctx, 100); err != nil {
		t.Fatal(err)
	}
	if err := c.Swap(ctx); err != nil {
		t.Fatal(err)
	}
	if err := c.SetMaintenance(ctx, false); err != nil {
		t.Fatal(err)
	}
	st, err := c.State(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if st.App != "demo" || st.Weights.Green != 0 || len(st.Pools[Blue]) != 1 || st.Pools[Blue][0].URL != g.URL || st.InFlight[Green] != 0 {
		t.Errorf("state: %+v", st)
	}
	if err := c.SetPool(ctx, Green, nil); err != nil {
		t.Errorf("emptying green: %v", err)
	}

	var ae *APIError
	if err := c.SetWeight(ctx, 120); !errors.As(err, &ae) || ae.Status != http.StatusBadRequest || ae.Message != "green weight 120 is outside 0..100" {
		t.Errorf("bad weight: %v", err)
	}
	if _, err := NewClient(h.admin, "wrong").State(ctx); !errors.As(err, &ae) || ae.Status != http.StatusUnauthorized {
		t.Errorf("wrong token: %v", err)
	}
}
