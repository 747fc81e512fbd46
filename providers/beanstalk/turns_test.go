package beanstalk

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/cutoverhq/cutover/providers"
	"github.com/cutoverhq/cutover/providers/beanstalk/ebfake"
	"github.com/cutoverhq/cutover/providers/providertest"
)

// With environments, the same settings serve release after release: each
// release deploys to the environment not holding the live CNAME.

// turns changes the settings to name environments instead of blue and green.
func turns() map[string]any {
	return map[string]any{"blueEnvironment": nil, "greenEnvironment": nil, "environments": []any{blueEnv, greenEnv}}
}

// updated returns the environments UpdateEnvironment deployed to, in order.
func updated(s *ebfake.Server) []string {
	var out []string
	for _, c := range s.Calls() {
		if c.Action == "UpdateEnvironment" {
			out = append(out, c.Form.Get("EnvironmentName")+"="+c.Form.Get("VersionLabel"))
		}
	}
	return out
}

// holder returns the environment holding the live CNAME.
func holder(t *testing.T, s *ebfake.Server) string {
	t.Helper()
	for _, n := range []string{blueEnv, greenEnv} {
		if s.Env(n).CNAME == liveCNAME {
			return n
		}
	}
	t.Fatal("no environment holds the live CNAME")
	return ""
}

func TestEnvironmentsTakeTurns(t *testing.T) {
	s := fake(t) // shop-blue holds the live CNAME and runs v1
	s.AddVersion(application, "v3")
	p := newProvider(t, s, turns())
	ctx := context.Background()

	release := func(version string) providers.Traffic {
		t.Helper()
		r := providers.Ref{App: application, Version: version}
		if _, err := p.Provision(ctx, r); err != nil {
			t.Fatalf("provision %s: %v", version, err)
		}
		if err := p.Validate(ctx, r, nil); err != nil {
			t.Fatalf("validate %s: %v", version, err)
		}
		tr := p.For(r)
		if w, err := tr.Weight(ctx, application); err != nil || w != 0 {
			t.Fatalf("%s's weight before promote = %d, %v; want 0", version, w, err)
		}
		if err := tr.SetWeight(ctx, application, 100); err != nil {
			t.Fatalf("promote %s: %v", version, err)
		}
		if w, err := tr.Weight(ctx, application); err != nil || w != 100 {
			t.Fatalf("%s's weight after promote = %d, %v; want 100", version, w, err)
		}
		return tr
	}

	release("v2")
	if got := holder(t, s); got != greenEnv || s.Env(greenEnv).VersionLabel != "v2" {
		t.Fatalf("after v2: %s holds the live CNAME, running %s; want %s running v2", got, s.Env(got).VersionLabel, greenEnv)
	}
	// The next release, same settings: it deploys to shop-blue, now idle.
	v3 := release("v3")
	if got := holder(t, s); got != blueEnv || s.Env(blueEnv).VersionLabel != "v3" {
		t.Fatalf("after v3: %s holds the live CNAME, running %s; want %s running v3", got, s.Env(got).VersionLabel, blueEnv)
	}
	if got, want := updated(s), []string{greenEnv + "=v2", blueEnv + "=v3"}; strings.Join(got, " ") != strings.Join(want, " ") {
		t.Errorf("deployments %v; want %v", got, want)
	}
	// v3's rollback puts v2 back in front.
	if err := v3.SetWeight(ctx, application, 0); err != nil {
		t.Fatal(err)
	}
	if got := holder(t, s); got != greenEnv {
		t.Errorf("after v3's rollback %s holds the live CNAME; want %s (v2)", got, greenEnv)
	}
	// Releasing v2 again: it is live, so there is nothing to deploy it to.
	_, err := p.Provision(ctx, providers.Ref{App: application, Version: "v2"})
	if !errors.Is(err, providers.ErrInvalid) || !strings.Contains(err.Error(), `version "v2" is already live there`) {
		t.Errorf("provision of the live version = %v; want ErrInvalid saying it is already live", err)
	}
}

func TestEnvironmentsNeedTheRelease(t *testing.T) {
	s := fake(t)
	p := newProvider(t, s, turns())
	ctx := context.Background()
	if err := p.SetWeight(ctx, application, 100); !errors.Is(err, providers.ErrBadConfig) {
		t.Errorf("SetWeight without the release = %v; want ErrBadConfig", err)
	}
	if _, err := p.Weight(ctx, application); !errors.Is(err, providers.ErrBadConfig) {
		t.Errorf("Weight without the release = %v; want ErrBadConfig", err)
	}
	// Promoting a release that was not deployed would put the old version live.
	err := p.For(providers.Ref{App: application, Version: "v2"}).SetWeight(ctx, application, 100)
	if !errors.Is(err, providers.ErrCheckFailed) || !strings.Contains(err.Error(), "provision it first") {
		t.Errorf("promote before provision = %v; want ErrCheckFailed", err)
	}
	if got := holder(t, s); got != blueEnv {
		t.Errorf("%s holds the live CNAME; want it left on %s", got, blueEnv)
	}
}

func TestEnvironmentsSettings(t *testing.T) {
	awsEnv(t)
	s := fake(t)
	for name, tc := range map[string]map[string]any{
		"one":          {"environments": []any{blueEnv}},
		"twice":        {"environments": []any{blueEnv, blueEnv}},
		"and blue":     {"blueEnvironment": blueEnv},
		"no live name": {"liveCNAME": nil},
	} {
		m := settings(s, turns())
		for k, v := range tc {
			if v == nil {
				delete(m, k)
			} else {
				m[k] = v
			}
		}
		if _, err := New(m); !errors.Is(err, providers.ErrBadConfig) || strings.Contains(err.Error(), "\n") {
			t.Errorf("%s: err = %v; want a one-line ErrBadConfig", name, err)
		}
	}
}

// The release's view passes the conformance suite: green is the environment
// that runs the release's version.
func TestConformanceTakingTurns(t *testing.T) {
	var s *ebfake.Server
	providertest.Traffic(t, providertest.Target{
		App:     application,
		Weights: []int{0, 100},
		New: func(t *testing.T) providers.Traffic {
			s = fake(t)
			s.SetEnv(ebfake.Env{Name: greenEnv, Application: application, CNAME: greenCNAME, VersionLabel: "v2", Status: "Ready", Health: "Green", HealthStatus: "Ok"})
			return newProvider(t, s, turns()).For(providers.Ref{App: application, Version: "v2"})
		},
		Fail: inject(&s),
	})
}
