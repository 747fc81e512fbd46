package tests

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/cutoverhq/cutover/providers"
	"github.com/cutoverhq/cutover/providers/haproxy"
	"github.com/cutoverhq/cutover/tests/harness"
	"github.com/cutoverhq/cutover/workflows"
)

// The HAProxy end-to-end tests release through a real haproxy: the release's
// traffic steps set its servers' weights through the runtime API while the
// load generator sends 300 requests/s through its frontend, and no request may
// fail. The environment is the memory provider: the test itself starts blue's
// and green's demo-app instances, all four servers of one haproxy backend.

const haproxySpec = `app: %[1]s
version: %[2]s
providers:
  environment: {type: memory}
  traffic:
    type: haproxy
    settings: {socket: "unix:%[3]s", backend: %[1]s, bluePrefix: blue, greenPrefix: green}
  analysis: {type: memory}
plan:
  - provision
  - validate
  - setWeight: 10
  - soak: {duration: 2s, interval: 1s}
  - setWeight: 50
  - soak: {duration: 3s, interval: 1s}
  - promote
  - decommission
`

// haproxyApp is one app: haproxy in front of blue1, blue2 (1.0.0) and green1,
// green2 (2.0.0), green at weight 0.
type haproxyApp struct {
	name     string
	h        *harness.HAProxy
	frontend string
	specPath string
}

func startHAProxyApp(t *testing.T, name string) *haproxyApp {
	demo := harness.Binary(t, "DEMO_APP_BIN", "./deploy/demo-app")
	var servers strings.Builder
	for _, in := range []struct{ name, version string }{
		{"blue1", "1.0.0"}, {"blue2", "1.0.0"}, {"green1", "2.0.0"}, {"green2", "2.0.0"},
	} {
		port := harness.FreePort(t)
		harness.Start(t, name+" "+in.name, []string{"PORT=" + strconv.Itoa(port), "VERSION=" + in.version}, demo)
		addr := fmt.Sprintf("127.0.0.1:%d", port)
		waitFor(t, 10*time.Second, in.name+" to be healthy", func() bool {
			resp, err := http.Get("http://" + addr + "/healthz")
			if err != nil {
				return false
			}
			resp.Body.Close()
			return resp.StatusCode == http.StatusOK
		})
		w := 1
		if strings.HasPrefix(in.name, "green") {
			w = 0
		}
		fmt.Fprintf(&servers, "    server %s %s weight %d check inter 500ms\n", in.name, addr, w)
	}
	a := &haproxyApp{name: name, frontend: fmt.Sprintf("127.0.0.1:%d", harness.FreePort(t))}
	a.h = harness.StartHAProxy(t, fmt.Sprintf(`defaults
    mode http
    timeout connect 1s
    timeout client 30s
    timeout server 30s
    timeout queue 5s
    retries 3
    option redispatch

frontend fe
    bind %s
    default_backend %s

backend %s
    balance roundrobin
    option httpchk GET /healthz
%s`, a.frontend, name, name, servers.String()))
	a.specPath = filepath.Join(t.TempDir(), "release.yaml")
	if err := os.WriteFile(a.specPath, fmt.Appendf(nil, haproxySpec, name, "2.0.0", a.h.Socket), 0o644); err != nil {
		t.Fatal(err)
	}
	return a
}

// weight reads green's share back from haproxy, as the provider does.
func (a *haproxyApp) weight(t *testing.T) int {
	t.Helper()
	p, err := haproxy.New(map[string]any{"socket": "unix:" + a.h.Socket})
	if err != nil {
		t.Fatal(err)
	}
	w, err := p.Weight(context.Background(), a.name)
	if err != nil {
		t.Fatalf("haproxy weight: %v", err)
	}
	return w
}

// versions sends n requests through haproxy and counts the versions that
// answered.
func (a *haproxyApp) versions(t *testing.T, n int) map[string]int {
	t.Helper()
	out := map[string]int{}
	for range n {
		resp, err := http.Get("http://" + a.frontend + "/")
		if err != nil {
			t.Fatal(err)
		}
		var body struct {
			Version string `json:"version"`
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		_ = json.Unmarshal(b, &body)
		out[body.Version]++
	}
	return out
}

// load runs the load generator through haproxy at rate requests/s (at most two
// minutes) until stop is called, which returns its summary.
func (a *haproxyApp) load(t *testing.T, rate int) (stop func() loadSummary) {
	bin := harness.Binary(t, "LOADGEN_BIN", "./loadgen/cmd/loadgen")
	p := harness.Start(t, "loadgen", nil, bin, "-url", "http://"+a.frontend+"/", "-rate", strconv.Itoa(rate),
		"-duration", "2m", "-max", strconv.Itoa(rate*120), "-progress", "0")
	return func() loadSummary {
		p.Stop(10 * time.Second)
		p.Wait(t, 10*time.Second)
		return parseSummary(t, p.Output())
	}
}

func TestHAProxyRelease(t *testing.T) {
	c := startCluster(t)

	t.Run("full release under load drops no request", func(t *testing.T) {
		c.t = t
		a := startHAProxyApp(t, "hap-full")
		stopLoad := a.load(t, 300)
		time.Sleep(time.Second) // blue serves alone first
		rel := harness.Start(t, "release", c.env, c.cli, "release", "-f", a.specPath, "--wait")
		for _, step := range []int{10, 50} {
			c.waitStatus(a.name, 30*time.Second, func(st workflows.Status) bool { return st.Weights.Green == step })
			if w := a.weight(t); w != step {
				t.Errorf("haproxy's weight at the %d%% step: %d, want %d", step, w, step)
			}
		}
		if code := rel.Wait(t, 45*time.Second); code != 0 {
			t.Fatalf("release exited %d, want 0 (promoted)\n%s", code, rel.Output())
		}
		time.Sleep(time.Second) // green serves alone
		sum := stopLoad()
		sum.requireNoFailures(t, 2000)
		if sum.byVersion["1.0.0"] == 0 || sum.byVersion["2.0.0"] == 0 {
			t.Errorf("by version %v: want both versions to have served", sum.byVersion)
		}
		if w := a.weight(t); w != 100 {
			t.Errorf("haproxy's weight after the release: %d, want 100 (all on green)", w)
		}
		if v := a.versions(t, 20); v["2.0.0"] != 20 {
			t.Errorf("after the release, versions that answered: %v; want only 2.0.0", v)
		}
	})

	t.Run("abort at 50% under load drops no request", func(t *testing.T) {
		c.t = t
		a := startHAProxyApp(t, "hap-abort")
		stopLoad := a.load(t, 300)
		time.Sleep(time.Second)
		rel := harness.Start(t, "release", c.env, c.cli, "release", "-f", a.specPath, "--wait")
		c.waitStatus(a.name, 45*time.Second, func(st workflows.Status) bool { return st.Weights.Green == 50 })
		if w := a.weight(t); w != 50 {
			t.Errorf("haproxy's weight at the 50%% step: %d, want 50", w)
		}
		if _, errOut, code := c.cutover("abort", a.name, "--reason", "test abort"); code != 0 {
			t.Fatalf("abort: %s", errOut)
		}
		if code := rel.Wait(t, 45*time.Second); code != 4 {
			t.Fatalf("release exited %d, want 4 (aborted)\n%s", code, rel.Output())
		}
		time.Sleep(time.Second) // blue serves alone again
		sum := stopLoad()
		sum.requireNoFailures(t, 1200)
		if sum.byVersion["2.0.0"] == 0 {
			t.Errorf("by version %v: want green to have served before the abort", sum.byVersion)
		}
		if w := a.weight(t); w != 0 {
			t.Errorf("haproxy's weight after the abort: %d, want 0 (all on blue)", w)
		}
		if v := a.versions(t, 20); v["1.0.0"] != 20 {
			t.Errorf("after the abort, versions that answered: %v; want only 1.0.0", v)
		}
	})
}

// The provider the test reads weights with is the one the workers run.
var _ providers.Drainer = (*haproxy.Provider)(nil)
