package local

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cutoverhq/cutover/providers"
	"github.com/cutoverhq/cutover/router"
	"github.com/cutoverhq/cutover/tests/harness"
	"github.com/cutoverhq/cutover/verdict"
)

// fixture is a real router and the demo app's binary: the local provider is
// tested against the processes and the admin API it drives in production.
type fixture struct {
	t        *testing.T
	r        *router.Router
	settings map[string]any
	app      string
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	demo := harness.Binary(t, "DEMO_APP_BIN", "./deploy/demo-app")
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
	t.Setenv("LOCAL_TEST_ROUTER_TOKEN", "test-token")
	f := &fixture{t: t, r: r, app: "shop", settings: map[string]any{
		"command":   []any{demo},
		"instances": 2,
		"stateDir":  t.TempDir(),
		"stopGrace": "5s",
		"router":    map[string]any{"admin": "http://" + r.AdminAddr(), "token": map[string]any{"env": "LOCAL_TEST_ROUTER_TOKEN"}},
	}}
	return f
}

// provider builds a provider from the fixture's settings, as a worker (or a
// restarted one) does, and stops every pool when the test ends.
func (f *fixture) provider(extra map[string]any) *Provider {
	f.t.Helper()
	s := map[string]any{}
	for k, v := range f.settings {
		s[k] = v
	}
	for k, v := range extra {
		s[k] = v
	}
	p, err := New(s)
	if err != nil {
		f.t.Fatal(err)
	}
	f.t.Cleanup(func() { _ = p.Stop(context.Background(), f.app) })
	return p
}

// get sends one user request through the router and returns the version that
// answered.
func (f *fixture) get(header string) string {
	f.t.Helper()
	req, _ := http.NewRequest(http.MethodGet, "http://"+f.r.Addr()+"/", nil)
	if header != "" {
		req.Header.Set(router.HeaderColor, header)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		f.t.Fatalf("GET through the router: %v", err)
	}
	defer resp.Body.Close()
	var body struct {
		Version string `json:"version"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil || resp.StatusCode != http.StatusOK {
		f.t.Fatalf("GET through the router: %d %v", resp.StatusCode, err)
	}
	return body.Version
}

func (f *fixture) pids(p *Provider, color string) []int {
	f.t.Helper()
	pl, err := p.store.load(f.app, color)
	if err != nil || pl == nil {
		f.t.Fatalf("no %s pool state: %v", color, err)
	}
	var out []int
	for _, in := range pl.Instances {
		out = append(out, in.PID)
	}
	return out
}

func alive(pid int) bool { return Instance{PID: pid}.alive() }

func TestReleaseThroughTheRouter(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	p := f.provider(nil)
	ref := providers.Ref{App: f.app, Version: "2.0.0"}

	if _, err := p.Start(ctx, f.app, router.Blue, "1.0.0"); err != nil {
		t.Fatalf("start blue: %v", err)
	}
	pool, err := p.Provision(ctx, ref)
	if err != nil {
		t.Fatalf("provision: %v", err)
	}
	if len(pool.Instances) != 2 {
		t.Fatalf("green pool = %+v, want 2 instances", pool)
	}
	greenPIDs := f.pids(p, "green")

	// Green gets no user traffic yet, but testers reach it with the header.
	for range 20 {
		if v := f.get(""); v != "1.0.0" {
			t.Fatalf("user request answered by %s at weight 0", v)
		}
	}
	if v := f.get("green"); v != "2.0.0" {
		t.Errorf("X-Cutover-Color: green answered by %s", v)
	}

	// A retried provision (or a restarted worker) keeps the running instances.
	again, err := f.provider(nil).Provision(ctx, ref)
	if err != nil || fmt.Sprint(f.pids(p, "green")) != fmt.Sprint(greenPIDs) || len(again.Instances) != 2 {
		t.Errorf("second provision: %v, pids %v -> %v: want the same instances", err, greenPIDs, f.pids(p, "green"))
	}

	if err := p.Validate(ctx, ref, []string{"/", "/metrics"}); err != nil {
		t.Errorf("validate: %v", err)
	}
	if err := p.Validate(ctx, ref, []string{"/nope"}); !errors.Is(err, providers.ErrCheckFailed) || !strings.Contains(err.Error(), "/nope") {
		t.Errorf("validate with a missing smoke path: %v, want a failed check naming it", err)
	}

	for _, w := range []int{10, 50, 100} {
		if err := p.SetWeight(ctx, f.app, w); err != nil {
			t.Fatalf("set weight %d: %v", w, err)
		}
		if got, err := p.Weight(ctx, f.app); err != nil || got != w {
			t.Fatalf("weight = %d, %v; want %d", got, err, w)
		}
	}
	bluePIDs := f.pids(p, "blue")

	// After promotion blue is decommissioned: green's instances become the blue
	// pool, the old version's processes stop, and a retry changes nothing.
	for range 2 {
		if err := p.Decommission(ctx, ref, providers.Blue); err != nil {
			t.Fatalf("decommission blue: %v", err)
		}
	}
	st := f.state()
	if st.Weights.Blue != 100 || len(st.Pools[router.Green]) != 0 || len(st.Pools[router.Blue]) != 2 {
		t.Errorf("router after decommission: %+v", st)
	}
	if v := f.get(""); v != "2.0.0" {
		t.Errorf("after decommission users reach %s, want 2.0.0", v)
	}
	for _, pid := range bluePIDs {
		if alive(pid) {
			t.Errorf("old blue pid %d still runs", pid)
		}
	}
	if got := fmt.Sprint(f.pids(p, "blue")); got != fmt.Sprint(greenPIDs) {
		t.Errorf("blue pool is %v, want the promoted instances %v", got, greenPIDs)
	}
}

func (f *fixture) state() router.State {
	f.t.Helper()
	st, err := router.NewClient("http://"+f.r.AdminAddr(), "test-token").State(context.Background())
	if err != nil {
		f.t.Fatal(err)
	}
	return st
}

func TestRollbackRemovesGreen(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	p := f.provider(nil)
	ref := providers.Ref{App: f.app, Version: "3.0.0"}
	if _, err := p.Start(ctx, f.app, router.Blue, "1.0.0"); err != nil {
		t.Fatal(err)
	}
	if _, err := p.Provision(ctx, ref); err != nil {
		t.Fatal(err)
	}
	green := f.pids(p, "green")
	if err := p.SetWeight(ctx, f.app, 0); err != nil {
		t.Fatal(err)
	}
	for range 2 {
		if err := p.Decommission(ctx, ref, providers.Green); err != nil {
			t.Fatalf("decommission green: %v", err)
		}
	}
	if st := f.state(); len(st.Pools[router.Green]) != 0 || len(st.Pools[router.Blue]) != 2 {
		t.Errorf("router after rollback: %+v", st)
	}
	for _, pid := range green {
		if alive(pid) {
			t.Errorf("green pid %d still runs", pid)
		}
	}
	if v := f.get(""); v != "1.0.0" {
		t.Errorf("after rollback users reach %s", v)
	}
}

func TestProvisionFailsClearlyWhenTheAppDoesNotStart(t *testing.T) {
	f := newFixture(t)
	p := f.provider(map[string]any{
		"env":          map[string]any{"ERROR_RATE": "2"}, // the demo app refuses this and exits
		"startTimeout": "5s",
	})
	// The env is the release's: the blue that `cutover local start` brings up
	// runs without it.
	if _, err := p.Start(context.Background(), f.app, router.Blue, "1.0.0"); err != nil {
		t.Fatalf("start blue with the release's env set: %v", err)
	}
	_, err := p.Provision(context.Background(), providers.Ref{App: f.app, Version: "4.0.0"})
	if !errors.Is(err, providers.ErrCheckFailed) || !strings.Contains(err.Error(), "exited before it was healthy") || !strings.Contains(err.Error(), "ERROR_RATE") {
		t.Fatalf("provision of a crashing app: %v; want a failed check with the app's last output", err)
	}
}

func TestGuardSeesAKilledInstance(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	p := f.provider(nil)
	ref := providers.Ref{App: f.app, Version: "2.0.0"}
	if _, err := p.Start(ctx, f.app, router.Blue, "1.0.0"); err != nil {
		t.Fatal(err)
	}
	if _, err := p.Provision(ctx, ref); err != nil {
		t.Fatal(err)
	}
	if v, err := p.Guard(ctx, ref); err != nil || v.Result != verdict.Pass {
		t.Fatalf("guard on a healthy green: %+v, %v", v, err)
	}
	pl, _ := p.store.load(f.app, "green")
	if err := stopInstance(ctx, pl.Instances[0], 0); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		v, err := p.Guard(ctx, ref)
		if err == nil && v.Result == verdict.Fail && strings.Contains(v.String(), "green health Fail healthy=1, instances=2") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("guard after killing a green instance: %+v, %v; want Fail with 1 of 2 healthy", v, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func TestSettingsAreChecked(t *testing.T) {
	for _, c := range []struct {
		settings map[string]any
		want     string
	}{
		{map[string]any{}, "router.admin is required"},
		{map[string]any{"router": map[string]any{"admin": "127.0.0.1:8081", "token": map[string]any{"env": "X"}}}, "not an http://"},
		{map[string]any{"router": map[string]any{"admin": "http://127.0.0.1:8081"}}, "router.token"},
		{map[string]any{"router": map[string]any{"admin": "http://127.0.0.1:8081", "token": map[string]any{"env": "X"}}, "env": map[string]any{"PORT": "1"}}, "PORT"},
		{map[string]any{"router": map[string]any{"admin": "http://127.0.0.1:8081", "token": map[string]any{"env": "X"}}, "instances": 0.5}, "instances"},
		{map[string]any{"router": map[string]any{"admin": "http://127.0.0.1:8081", "token": map[string]any{"env": "X"}}, "comand": []any{"x"}}, `unknown setting "comand"`},
	} {
		_, err := New(c.settings)
		if err == nil || !errors.Is(err, providers.ErrBadConfig) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("New(%v) = %v; want a bad-config error containing %q", c.settings, err, c.want)
		}
	}
}

func TestTheRouterRefusingTheTokenIsPermanent(t *testing.T) {
	f := newFixture(t)
	t.Setenv("LOCAL_TEST_ROUTER_TOKEN", "wrong")
	err := f.provider(nil).SetWeight(context.Background(), f.app, 10)
	if !errors.Is(err, providers.ErrBadConfig) || !strings.Contains(err.Error(), "refused the admin token") {
		t.Fatalf("set weight with a wrong token: %v", err)
	}
}

// TestNamesStayInsideTheStateDir checks that a version or an app that is not
// one cannot name a file outside the state directory: the instance log is
// created and truncated, and a version once held ../ to do just that.
func TestNamesStayInsideTheStateDir(t *testing.T) {
	root := t.TempDir()
	t.Setenv("LOCAL_TEST_ROUTER_TOKEN", "test-token")
	p, err := New(map[string]any{
		"command":  []any{"true"},
		"stateDir": filepath.Join(root, "state"),
		"router":   map[string]any{"admin": "http://127.0.0.1:1", "token": map[string]any{"env": "LOCAL_TEST_ROUTER_TOKEN"}},
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	for _, version := range []string{"../../x", "../x", "/etc/x", "1.0/../../../x", "..", "", "1.0\x1b[31m"} {
		_, err := p.Provision(ctx, providers.Ref{App: "shop", Version: version})
		if !errors.Is(err, providers.ErrInvalid) || !strings.HasPrefix(err.Error(), "version: ") {
			t.Errorf("provision of version %q: %v; want an invalid-request error naming the version", version, err)
		}
		_, err = p.Start(ctx, "shop", router.Blue, version)
		if !errors.Is(err, providers.ErrInvalid) || !strings.HasPrefix(err.Error(), "version: ") {
			t.Errorf("start of version %q: %v; want an invalid-request error naming the version", version, err)
		}
	}
	for _, app := range []string{"../x", "../../x", "/etc", "", "shop/../../x"} {
		ref := providers.Ref{App: app, Version: "1.0.0"}
		for name, err := range map[string]error{
			"provision":    func() error { _, err := p.Provision(ctx, ref); return err }(),
			"validate":     p.Validate(ctx, ref, nil),
			"decommission": p.Decommission(ctx, ref, providers.Blue),
			"stop":         p.Stop(ctx, app),
		} {
			if !errors.Is(err, providers.ErrInvalid) || !strings.HasPrefix(err.Error(), "app: ") {
				t.Errorf("%s of app %q: %v; want an invalid-request error naming the app", name, app, err)
			}
		}
	}
	if _, err := p.Start(ctx, "shop", "../x", "1.0.0"); !errors.Is(err, providers.ErrInvalid) || !strings.HasPrefix(err.Error(), "color: ") {
		t.Errorf("start of color ../x: %v; want an invalid-request error naming the color", err)
	}
	entries, err := os.ReadDir(root)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if e.Name() != "state" {
			t.Errorf("%s was written outside the state directory", filepath.Join(root, e.Name()))
		}
	}

	// The last line of defence: a name that leaves its directory.
	for _, name := range []string{"../x", "a/../../x", "", "/"} {
		if p, err := inside(root, name); err == nil {
			t.Errorf("inside(%q) = %s; want an error", name, p)
		}
	}
}
