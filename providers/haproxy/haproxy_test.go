package haproxy

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cutoverhq/cutover/providers"
	"github.com/cutoverhq/cutover/providers/providertest"
	"github.com/cutoverhq/cutover/tests/harness"
)

// fixture is a real haproxy in front of four httptest servers: blue1, blue2,
// green1, green2 in backend shop (green at weight 0), each counting the
// requests it serves and holding /hold requests until released.
type fixture struct {
	h        *harness.HAProxy
	frontend string
	served   map[string]*atomic.Int64

	mu   sync.Mutex
	hold chan struct{}
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	f := &fixture{served: map[string]*atomic.Int64{}, hold: make(chan struct{})}
	var servers strings.Builder
	for _, name := range []string{"blue1", "blue2", "green1", "green2"} {
		n := &atomic.Int64{}
		f.served[name] = n
		s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			n.Add(1)
			if r.URL.Path == "/hold" {
				f.mu.Lock()
				c := f.hold
				f.mu.Unlock()
				select {
				case <-c:
				case <-r.Context().Done():
				}
			}
			_, _ = io.WriteString(w, name+"\n")
		}))
		t.Cleanup(s.Close)
		w := 1
		if strings.HasPrefix(name, "green") {
			w = 0
		}
		fmt.Fprintf(&servers, "    server %s %s weight %d\n", name, strings.TrimPrefix(s.URL, "http://"), w)
	}
	f.frontend = fmt.Sprintf("127.0.0.1:%d", harness.FreePort(t))
	f.h = harness.StartHAProxy(t, fmt.Sprintf(`defaults
    mode http
    timeout connect 1s
    timeout client 30s
    timeout server 30s
    timeout queue 5s

frontend fe
    bind %s
    default_backend shop

backend shop
    balance roundrobin
%s`, f.frontend, servers.String()))
	return f
}

// provider builds a provider with the given settings on top of the fixture's
// unix socket.
func (f *fixture) provider(t *testing.T, extra map[string]any) *Provider {
	t.Helper()
	s := map[string]any{"socket": "unix:" + f.h.Socket}
	for k, v := range extra {
		s[k] = v
	}
	p, err := New(s)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// holdRequests sends n requests that the backends hold until finish.
func (f *fixture) holdRequests(t *testing.T, n int) (finish func()) {
	release := make(chan struct{})
	f.mu.Lock()
	f.hold = release
	f.mu.Unlock()
	var wg sync.WaitGroup
	for range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			resp, err := http.Get("http://" + f.frontend + "/hold")
			if err != nil {
				t.Errorf("held request: %v", err)
				return
			}
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				t.Errorf("held request: %s", resp.Status)
			}
		}()
	}
	return func() {
		close(release)
		wg.Wait()
	}
}

// socketProxy stands between the provider and haproxy's stats socket, and
// fails on demand: it drops connections (a server failure), sends commands to
// the socket at level user (denied), or renames the backend in each command
// (not found). HAProxy answers the last two with its own words.
type socketProxy struct {
	path    string
	mode    atomic.Value // providertest.FailKind, "" for none
	backend string
	admin   string
	user    string
}

func startSocketProxy(t *testing.T, h *harness.HAProxy, backend string) *socketProxy {
	t.Helper()
	dir, err := os.MkdirTemp("", "hap-proxy-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(dir) })
	sp := &socketProxy{path: filepath.Join(dir, "proxy.sock"), backend: backend, admin: h.Socket, user: h.UserSocket}
	sp.mode.Store(providertest.FailKind(""))
	ln, err := net.Listen("unix", sp.path)
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	t.Cleanup(func() { ln.Close(); wg.Wait() })
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Add(1)
			go func() { defer wg.Done(); sp.serve(c) }()
		}
	}()
	return sp
}

func (sp *socketProxy) serve(c net.Conn) {
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	mode := sp.mode.Load().(providertest.FailKind)
	if mode == providertest.FailServer {
		return // dropped before any answer
	}
	cmd, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		return
	}
	upstream := sp.admin
	switch mode {
	case providertest.FailDenied:
		upstream = sp.user
	case providertest.FailNotFound:
		cmd = strings.ReplaceAll(cmd, " "+sp.backend+"/", " no-such-backend/")
		cmd = strings.ReplaceAll(cmd, "state "+sp.backend+"\n", "state no-such-backend\n")
	}
	u, err := net.Dial("unix", upstream)
	if err != nil {
		return
	}
	defer u.Close()
	_ = u.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.WriteString(u, cmd); err != nil {
		return
	}
	_, _ = io.Copy(c, u)
}

func TestConformance(t *testing.T) {
	f := newFixture(t)
	sp := startSocketProxy(t, f.h, "shop")
	providertest.Traffic(t, providertest.Target{
		App: "shop",
		New: func(t *testing.T) providers.Traffic {
			p := f.provider(t, map[string]any{"socket": "unix:" + sp.path})
			if err := p.SetWeight(context.Background(), "shop", 0); err != nil {
				t.Fatal(err)
			}
			return p
		},
		Fail: func(t *testing.T, kind providertest.FailKind) func() {
			if kind == providertest.FailThrottle {
				return nil // HAProxy does not throttle its runtime API
			}
			sp.mode.Store(kind)
			return func() { sp.mode.Store(providertest.FailKind("")) }
		},
		Drain: func(t *testing.T, _ providers.Color) func() {
			return f.holdRequests(t, 3)
		},
	})
}

// TestConformanceOverTCP runs the suite on the TCP stats socket, with lists
// of server names instead of prefixes and a smaller weight budget.
func TestConformanceOverTCP(t *testing.T) {
	f := newFixture(t)
	providertest.Traffic(t, providertest.Target{
		App: "shop",
		New: func(t *testing.T) providers.Traffic {
			p := f.provider(t, map[string]any{
				"socket": "tcp:" + f.h.TCPSocket,
				"blue":   []any{"blue1", "blue2"}, "green": []any{"green1", "green2"},
				"scale": 100,
			})
			if err := p.SetWeight(context.Background(), "shop", 0); err != nil {
				t.Fatal(err)
			}
			return p
		},
		Drain: func(t *testing.T, _ providers.Color) func() {
			return f.holdRequests(t, 2)
		},
	})
}

// TestTheSplitIsHAProxys checks that the weights do split real requests:
// at 10%, green's servers serve a tenth of them.
func TestTheSplitIsHAProxys(t *testing.T) {
	f := newFixture(t)
	p := f.provider(t, nil)
	ctx := context.Background()
	for _, green := range []int{10, 50, 100, 0} {
		if err := p.SetWeight(ctx, "shop", green); err != nil {
			t.Fatal(err)
		}
		before := map[string]int64{}
		for k, v := range f.served {
			before[k] = v.Load()
		}
		const n = 512 // two rounds of the 256 weight budget
		for range n {
			resp, err := http.Get("http://" + f.frontend + "/")
			if err != nil {
				t.Fatal(err)
			}
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				t.Fatalf("at %d%%: %s", green, resp.Status)
			}
		}
		var g int64
		for _, name := range []string{"green1", "green2"} {
			g += f.served[name].Load() - before[name]
		}
		if share := float64(100*g) / n; share < float64(green)-2 || share > float64(green)+2 {
			t.Errorf("at %d%% green served %d of %d requests (%.1f%%)", green, g, n, share)
		}
	}
}

func TestErrors(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()

	t.Run("an unknown backend is NotFound", func(t *testing.T) {
		p := f.provider(t, map[string]any{"backend": "nosuch"})
		if err := p.SetWeight(ctx, "shop", 10); !errors.Is(err, providers.ErrNotFound) {
			t.Errorf("SetWeight = %v; want ErrNotFound", err)
		}
		if _, err := p.Weight(ctx, "shop"); !errors.Is(err, providers.ErrNotFound) {
			t.Errorf("Weight = %v; want ErrNotFound", err)
		}
		if _, err := p.InFlight(ctx, "shop", providers.Blue); !errors.Is(err, providers.ErrNotFound) {
			t.Errorf("InFlight = %v; want ErrNotFound", err)
		}
	})
	t.Run("an app that is not a backend is NotFound", func(t *testing.T) {
		p := f.provider(t, nil)
		if err := p.SetWeight(ctx, "cart", 10); !errors.Is(err, providers.ErrNotFound) {
			t.Errorf("SetWeight = %v; want ErrNotFound", err)
		}
	})
	t.Run("an unknown server is NotFound", func(t *testing.T) {
		p := f.provider(t, map[string]any{"blue": []any{"blue1", "blue9"}})
		if err := p.SetWeight(ctx, "shop", 10); !errors.Is(err, providers.ErrNotFound) || !strings.Contains(err.Error(), "blue9") {
			t.Errorf("SetWeight = %v; want ErrNotFound naming blue9", err)
		}
		p = f.provider(t, map[string]any{"greenPrefix": "canary"})
		if err := p.SetWeight(ctx, "shop", 10); !errors.Is(err, providers.ErrNotFound) {
			t.Errorf("SetWeight = %v; want ErrNotFound", err)
		}
	})
	t.Run("a socket below level admin is Invalid", func(t *testing.T) {
		p := f.provider(t, map[string]any{"socket": "unix:" + f.h.UserSocket})
		err := p.SetWeight(ctx, "shop", 10)
		if !errors.Is(err, providers.ErrInvalid) || !strings.Contains(err.Error(), "Permission denied") {
			t.Errorf("SetWeight = %v; want ErrInvalid with HAProxy's words", err)
		}
	})
	t.Run("an unreachable socket is retried", func(t *testing.T) {
		for _, sock := range []string{"unix:" + filepath.Join(t.TempDir(), "gone.sock"), fmt.Sprintf("tcp:127.0.0.1:%d", harness.FreePort(t))} {
			p := f.provider(t, map[string]any{"socket": sock, "timeout": "1s"})
			err := p.SetWeight(ctx, "shop", 10)
			if err == nil || providertest.Permanent(err) {
				t.Errorf("%s: SetWeight = %v; want a retryable error", sock, err)
			}
			if _, err := p.Weight(ctx, "shop"); err == nil || providertest.Permanent(err) {
				t.Errorf("%s: Weight = %v; want a retryable error", sock, err)
			}
		}
	})
	t.Run("a scale the servers cannot carry is BadConfig", func(t *testing.T) {
		p := f.provider(t, map[string]any{"scale": 600})
		if err := p.SetWeight(ctx, "shop", 10); !errors.Is(err, providers.ErrBadConfig) {
			t.Errorf("SetWeight = %v; want ErrBadConfig", err)
		}
	})
}

func TestSettingsAreChecked(t *testing.T) {
	for _, c := range []struct {
		name     string
		settings map[string]any
		want     string
	}{
		{"no socket", map[string]any{}, "socket is required"},
		{"a socket of no known kind", map[string]any{"socket": "/run/haproxy.sock"}, "neither unix"},
		{"a TCP socket without a port", map[string]any{"socket": "tcp:localhost"}, "tcp:host:port"},
		{"both a list and a prefix", map[string]any{"socket": "unix:/x", "blue": []any{"a"}, "bluePrefix": "b"}, "set one"},
		{"a server in both colors", map[string]any{"socket": "unix:/x", "blue": []any{"a"}, "green": []any{"a"}}, "both blue and green"},
		{"overlapping prefixes", map[string]any{"socket": "unix:/x", "bluePrefix": "s", "greenPrefix": "s1"}, "overlap"},
		{"a name that would split a command", map[string]any{"socket": "unix:/x", "backend": "shop; shutdown"}, "not an HAProxy backend name"},
		{"a scale below 100", map[string]any{"socket": "unix:/x", "scale": 50}, "below 100"},
		{"an unknown setting", map[string]any{"socket": "unix:/x", "weights": 3}, "unknown setting"},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, err := New(c.settings)
			if !errors.Is(err, providers.ErrBadConfig) || !strings.Contains(err.Error(), c.want) {
				t.Errorf("New = %v; want ErrBadConfig with %q", err, c.want)
			}
		})
	}
}

// TestEveryPercentRoundTrips checks the arithmetic for every weight and the
// budgets and group sizes it allows, without HAProxy.
func TestEveryPercentRoundTrips(t *testing.T) {
	for _, scale := range []int{100, 101, 200, 255, 256, 512} {
		for _, n := range []int{1, 2, 3, 4, 7} {
			if scale > maxServerWeight*n {
				continue
			}
			for g := 0; g <= 100; g++ {
				gt := (scale*g + 50) / 100
				var sum, bsum int
				for _, w := range split(gt, n) {
					if w > maxServerWeight {
						t.Fatalf("scale %d, %d servers, %d%%: weight %d", scale, n, g, w)
					}
					sum += w
				}
				for _, w := range split(scale-gt, n) {
					bsum += w
				}
				if sum+bsum != scale {
					t.Fatalf("scale %d, %d servers, %d%%: weights add up to %d", scale, n, g, sum+bsum)
				}
				if got := int(float64(100*sum)/float64(scale) + 0.5); got != g {
					t.Errorf("scale %d, %d servers: %d%% reads back as %d%%", scale, n, g, got)
				}
			}
		}
	}
}

// The servers a weight change leaves with nothing are in HAProxy's drain
// state, the others are ready, and a server an operator put in maintenance
// stays there.
func TestIdleServersAreDrained(t *testing.T) {
	f := newFixture(t)
	p := f.provider(t, nil)
	ctx := context.Background()
	states := func() map[string]string {
		t.Helper()
		all, err := p.rt.servers(ctx, "shop")
		if err != nil {
			t.Fatal(err)
		}
		m := map[string]string{}
		for _, s := range all {
			switch {
			case s.admin&adminForcedMaint != 0:
				m[s.name] = "maint"
			case s.admin&adminForcedDrain != 0:
				m[s.name] = "drain"
			default:
				m[s.name] = "ready"
			}
		}
		return m
	}
	expect := func(want map[string]string) {
		t.Helper()
		if got := states(); fmt.Sprint(got) != fmt.Sprint(want) {
			t.Errorf("admin states %v; want %v", got, want)
		}
	}
	for _, step := range []struct {
		green int
		want  map[string]string
	}{
		{0, map[string]string{"blue1": "ready", "blue2": "ready", "green1": "drain", "green2": "drain"}},
		{10, map[string]string{"blue1": "ready", "blue2": "ready", "green1": "ready", "green2": "ready"}},
		{100, map[string]string{"blue1": "drain", "blue2": "drain", "green1": "ready", "green2": "ready"}},
		{0, map[string]string{"blue1": "ready", "blue2": "ready", "green1": "drain", "green2": "drain"}},
	} {
		if err := p.SetWeight(ctx, "shop", step.green); err != nil {
			t.Fatalf("SetWeight(%d): %v", step.green, err)
		}
		expect(step.want)
	}
	if _, err := p.rt.do(ctx, "set server shop/green2 state maint"); err != nil {
		t.Fatal(err)
	}
	for _, green := range []int{50, 0} {
		if err := p.SetWeight(ctx, "shop", green); err != nil {
			t.Fatalf("SetWeight(%d) with green2 in maintenance: %v", green, err)
		}
		if got := states()["green2"]; got != "maint" {
			t.Errorf("after SetWeight(%d) green2 is %s; want it left in maintenance", green, got)
		}
	}
	if w, err := p.Weight(ctx, "shop"); err != nil || w != 0 {
		t.Errorf("Weight = %d, %v; want 0", w, err)
	}
}
