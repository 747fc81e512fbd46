package apps_test

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cutoverhq/cutover/apps"
	"github.com/cutoverhq/cutover/providers"
	"github.com/cutoverhq/cutover/providers/builtin"
	"github.com/cutoverhq/cutover/spec"
)

const shopDef = `app: shop
providers:
  environment: {type: local, settings: {command: [./shop, --port, "{port}"], stateDir: /var/lib/cutover, router: {admin: "http://127.0.0.1:8081", token: {env: ROUTER_TOKEN}}}}
  traffic: {type: memory}
  analysis: {type: prometheus, settings: {address: "http://127.0.0.1:9090", judge: {alpha: 0.01}}}
people:
  - {name: carol, principals: [api:ci-carol, slack:U0CAROL]}
approvers: [carol]
requests: {plan: true, minSoak: 1m, judge: true}
`

func store(t *testing.T, files map[string]string, mode apps.Mode) (*apps.Store, *providers.Registry) {
	t.Helper()
	dir := t.TempDir()
	for name, text := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	reg := builtin.NewRegistry(nil)
	s, err := apps.NewStore(dir, mode, reg.Check)
	if err != nil {
		t.Fatal(err)
	}
	reg.Gate(s.Allow)
	return s, reg
}

func refusedWith(t *testing.T, err error, want string) {
	t.Helper()
	var r *apps.RefusedError
	if !errors.As(err, &r) || !strings.Contains(err.Error(), want) {
		t.Fatalf("err = %v, want a refusal naming %q", err, want)
	}
}

func TestResolveTakesEverythingButTheVersionFromTheDefinition(t *testing.T) {
	s, _ := store(t, map[string]string{"shop.yaml": shopDef}, apps.Mode{})
	rel, err := s.Resolve(spec.Release{App: "shop", Version: "1.4.2"})
	if err != nil {
		t.Fatal(err)
	}
	if rel.Version != "1.4.2" || rel.Providers.Environment.Type != "local" || len(rel.Plan) == 0 || rel.Approvers[0] != "carol" {
		t.Errorf("resolved %+v", rel)
	}
}

func TestResolveRefuses(t *testing.T) {
	s, _ := store(t, map[string]string{"shop.yaml": shopDef}, apps.Mode{})
	cmd := spec.Provider{Type: "local", Settings: map[string]any{"command": []any{"sh", "-c", "id > /tmp/owned"}}}
	for _, tc := range []struct {
		name string
		req  spec.Release
		want string
	}{
		{"an app without a definition", spec.Release{App: "cart", Version: "1.0.0"}, `app: "cart" has no definition on the worker`},
		{"a command", spec.Release{App: "shop", Version: "1.0.0", Providers: spec.Providers{Environment: cmd}}, "providers: a request cannot name providers"},
		{"self-approval", spec.Release{App: "shop", Version: "1.0.0", AllowSelfApproval: true}, "allowSelfApproval: a request cannot allow self-approval"},
		{"people", spec.Release{App: "shop", Version: "1.0.0", People: []spec.Person{{Name: "mallory", Principals: []string{"api:ci"}}}}, "people: a request cannot name people"},
		{"a soak shorter than the bound", spec.Release{App: "shop", Version: "1.0.0", Plan: []spec.Step{
			{Provision: &spec.ProvisionStep{}}, {Validate: &spec.ValidateStep{}}, {SetWeight: ptr(10)}, {Soak: &spec.SoakStep{Duration: spec.Duration(1e9)}}, {Approval: &spec.ApprovalStep{}}, {Promote: &spec.PromoteStep{}},
		}}.WithDefaults(), "plan[3].soak.duration: 1s is shorter than the app's definition allows (requests.minSoak: 1m0s)"},
		{"a plan without approval", spec.Release{App: "shop", Version: "1.0.0", Plan: []spec.Step{{Provision: &spec.ProvisionStep{}}, {Validate: &spec.ValidateStep{}}, {Promote: &spec.PromoteStep{}}}}.WithDefaults(),
			"plan: the app's definition's plan has a soak step; a requested plan must keep one"},
		{"a looser judge", spec.Release{App: "shop", Version: "1.0.0", Judge: &spec.JudgeRequest{MaxIncrease: 0.02}}, "judge.maxIncrease: 0.02 is looser than the app's definition (0.004)"},
		{"a lower power", spec.Release{App: "shop", Version: "1.0.0", Judge: &spec.JudgeRequest{Power: 0.6}}, "judge.power: 0.6 is lower than the app's definition (0.8)"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := s.Resolve(tc.req)
			refusedWith(t, err, tc.want)
		})
	}
	t.Run("a tighter judge is taken", func(t *testing.T) {
		rel, err := s.Resolve(spec.Release{App: "shop", Version: "1.0.0", Judge: &spec.JudgeRequest{Power: 0.9, MaxIncrease: 0.002}})
		if err != nil {
			t.Fatal(err)
		}
		j := rel.Providers.Analysis.Settings["judge"].(map[string]any)
		if j["power"] != 0.9 || j["alpha"] != 0.01 || j["errorRate"].(map[string]any)["maxIncrease"] != 0.002 {
			t.Errorf("judge settings %v", j)
		}
	})
}

func ptr[T any](v T) *T { return &v }

// The registry builds only the providers some definition names: an activity
// whose input was crafted to run a command gets a refusal, not a process.
func TestTheRegistryBuildsOnlyDefinedProviders(t *testing.T) {
	s, reg := store(t, map[string]string{"shop.yaml": shopDef}, apps.Mode{})
	def, _ := s.Resolve(spec.Release{App: "shop", Version: "1.0.0"})
	if _, err := providers.Get[providers.Environment](reg, "environment", def.Providers.Environment); err != nil {
		t.Fatalf("the definition's own provider: %v", err)
	}
	evil := spec.Provider{Type: "local", Settings: map[string]any{"command": []any{"sh", "-c", "id"}, "router": map[string]any{"admin": "http://127.0.0.1:8081", "token": map[string]any{"env": "ROUTER_TOKEN"}}}}
	_, err := providers.Get[providers.Environment](reg, "environment", evil)
	if err == nil || !strings.Contains(err.Error(), "no app definition names this local provider") {
		t.Fatalf("err = %v, want the crafted provider refused", err)
	}
	devStore, devReg := store(t, nil, apps.Mode{Dev: true})
	_ = devStore
	if _, err := providers.Get[providers.Environment](devReg, "environment", evil); err != nil {
		t.Errorf("development mode: %v", err)
	}
}

func TestLoadAndReload(t *testing.T) {
	dir := t.TempDir()
	write := func(name, text string) {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("shop.yaml", shopDef)
	write("README.txt", "not a definition")
	reg := builtin.NewRegistry(nil)
	s, err := apps.NewStore(dir, apps.Mode{}, reg.Check)
	if err != nil {
		t.Fatal(err)
	}
	write("cart.yaml", "app: kart\nproviders: {environment: {type: memory}, traffic: {type: memory}, analysis: {type: memory}}\n")
	if err := s.Reload(); err == nil || !strings.Contains(err.Error(), `cart.yaml: app: "kart", but the file defines "cart"`) {
		t.Fatalf("reload = %v, want the misnamed definition named", err)
	}
	if got := s.Apps(); len(got) != 1 || got[0] != "shop" {
		t.Errorf("after a failed reload: %v, want shop still in force", got)
	}
	write("cart.yaml", "app: cart\nproviders: {environment: {type: nosuch}, traffic: {type: memory}, analysis: {type: memory}}\n")
	if err := s.Reload(); err == nil || !strings.Contains(err.Error(), "providers.environment") {
		t.Fatalf("reload = %v, want the bad provider named", err)
	}
	write("cart.yaml", "app: cart\nproviders: {environment: {type: memory}, traffic: {type: memory}, analysis: {type: memory}}\n")
	if err := s.Reload(); err != nil {
		t.Fatal(err)
	}
	if got := s.Apps(); len(got) != 2 {
		t.Errorf("apps %v, want cart and shop", got)
	}
	if _, err := apps.NewStore("", apps.Mode{}, nil); err == nil || !strings.Contains(err.Error(), "--apps") {
		t.Errorf("no directory outside development mode: %v", err)
	}
}
