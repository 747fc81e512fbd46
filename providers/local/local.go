// Package local is the embedded default: blue and green are pools of processes
// of the app on this machine, and traffic is split between them by Cutover's own
// router (`cutover router`), whose admin API this provider drives. It needs no
// cloud account, no container runtime and no database.
//
// Pool state lives in files (settings.stateDir), so a worker that restarts, or
// another worker on the same machine, finds the instances already started
// instead of starting duplicates.
package local

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/cutoverhq/cutover/providers"
	"github.com/cutoverhq/cutover/spec"
)

// Type is the provider's name in release.yaml.
const Type = "local"

// Settings are the provider's release.yaml settings. A traffic provider needs
// only Router; an environment provider needs Command too.
type Settings struct {
	// Command starts one instance of the app; PORT and VERSION are set in its
	// environment.
	Command []string `json:"command,omitempty"`
	// Dir is the command's working directory (default: the worker's).
	Dir string `json:"dir,omitempty"`
	// Instances is the pool size (default 2).
	Instances int `json:"instances,omitempty"`
	// Env is extra environment for the release's (green's) instances, as NAME:
	// value; `cutover local start` does not apply it.
	Env map[string]string `json:"env,omitempty"`
	// HealthPath is what an instance answers 2xx on when ready (default /healthz).
	HealthPath string `json:"healthPath,omitempty"`
	// StartTimeout bounds how long an instance may take to become healthy (default 30s).
	StartTimeout spec.Duration `json:"startTimeout,omitempty"`
	// StopGrace is how long an instance gets to exit after SIGTERM (default 10s).
	StopGrace spec.Duration `json:"stopGrace,omitempty"`
	// StateDir holds the pools' state files and instance logs (default
	// $XDG_STATE_HOME/cutover/local or ~/.local/state/cutover/local).
	StateDir string `json:"stateDir,omitempty"`
	// Router is the router's admin API.
	Router RouterRef `json:"router"`
}

// RouterRef says where the router's admin API is and which secret holds its
// token.
type RouterRef struct {
	Admin string              `json:"admin"`
	Token providers.SecretRef `json:"token"`
}

// Provider is a local environment and traffic provider.
type Provider struct {
	s      Settings
	store  store
	health *http.Client
}

// New checks the settings and returns a provider. It does no I/O, so the CLI can
// call it to check a spec.
func New(settings map[string]any) (*Provider, error) {
	var s Settings
	if err := providers.DecodeSettings(settings, &s); err != nil {
		return nil, err
	}
	if s.Router.Admin == "" {
		return nil, providers.BadConfig("router.admin is required (the router's admin URL, like http://127.0.0.1:8081)")
	}
	if !strings.HasPrefix(s.Router.Admin, "http://") && !strings.HasPrefix(s.Router.Admin, "https://") {
		return nil, providers.BadConfig("router.admin %q is not an http:// or https:// URL", s.Router.Admin)
	}
	if err := s.Router.Token.Check(); err != nil {
		return nil, providers.BadConfig("router.token: %v", err)
	}
	if s.Instances == 0 {
		s.Instances = 2
	}
	if s.Instances < 1 || s.Instances > 64 {
		return nil, providers.BadConfig("instances %d is outside 1..64", s.Instances)
	}
	if s.HealthPath == "" {
		s.HealthPath = "/healthz"
	}
	if !strings.HasPrefix(s.HealthPath, "/") {
		return nil, providers.BadConfig("healthPath %q is not a path like /healthz", s.HealthPath)
	}
	if s.StartTimeout == 0 {
		s.StartTimeout = spec.Duration(30 * time.Second)
	}
	if s.StopGrace == 0 {
		s.StopGrace = spec.Duration(10 * time.Second)
	}
	if s.StateDir == "" {
		s.StateDir = defaultStateDir()
	}
	for k := range s.Env {
		if k == "" || strings.ContainsAny(k, "= ") || k == "PORT" || k == "VERSION" {
			return nil, providers.BadConfig("env %q: a variable name other than PORT and VERSION, which Cutover sets", k)
		}
	}
	return &Provider{s: s, store: store{dir: s.StateDir}, health: &http.Client{Timeout: 2 * time.Second}}, nil
}

// NewBuilder returns the registry entry for the local provider.
func NewBuilder() providers.Builder {
	return providers.Builder{Type: Type, New: func(s map[string]any) (any, error) { return New(s) }}
}

func defaultStateDir() string {
	if d := os.Getenv("XDG_STATE_HOME"); d != "" {
		return filepath.Join(d, "cutover", "local")
	}
	if h, err := os.UserHomeDir(); err == nil {
		return filepath.Join(h, ".local", "state", "cutover", "local")
	}
	return filepath.Join(os.TempDir(), "cutover-local")
}

// Type names the provider.
func (p *Provider) Type() string { return Type }

// Provision starts the release's instances as the green pool, waits until each
// is healthy, and registers them with the router (at weight 0: no user traffic
// yet). A retry finds instances of the same version that are still running and
// keeps them.
func (p *Provider) Provision(ctx context.Context, r providers.Ref) (providers.Pool, error) {
	pl, err := p.start(ctx, r.App, string(providers.Green), r.Version, p.s.Env)
	if err != nil {
		return providers.Pool{}, err
	}
	if err := p.register(ctx, string(providers.Green), pl); err != nil {
		return providers.Pool{}, err
	}
	return providers.Pool{Color: providers.Green, Version: r.Version, Instances: urls(pl)}, nil
}

// Start starts a color's pool at version and registers it, without a release:
// `cutover local start` uses it to bring up the first blue. The settings' env is
// the release's, so it is not applied here.
func (p *Provider) Start(ctx context.Context, app, color, version string) (providers.Pool, error) {
	pl, err := p.start(ctx, app, color, version, nil)
	if err != nil {
		return providers.Pool{}, err
	}
	if err := p.register(ctx, color, pl); err != nil {
		return providers.Pool{}, err
	}
	return providers.Pool{Color: providers.Color(color), Version: version, Instances: urls(pl)}, nil
}

func (p *Provider) start(ctx context.Context, app, color, version string, extra map[string]string) (pool, error) {
	if len(p.s.Command) == 0 {
		return pool{}, providers.BadConfig("the local environment needs settings.command (the app's command line)")
	}
	// The names become file names: refuse them before anything is stopped.
	if _, err := p.store.logPath(app, color, version, 0); err != nil {
		return pool{}, err
	}
	unlock, err := p.store.lock(app)
	if err != nil {
		return pool{}, err
	}
	defer unlock()

	prev, err := p.store.load(app, color)
	if err != nil {
		return pool{}, err
	}
	if prev != nil && prev.Version == version && p.allHealthy(ctx, *prev) {
		return *prev, nil // a retry: the instances are up already
	}
	if prev != nil {
		p.stopAll(ctx, *prev)
	}
	env := []string{"VERSION=" + version}
	for _, k := range sortedKeys(extra) {
		env = append(env, k+"="+extra[k])
	}
	pl := pool{App: app, Version: version}
	for i := range p.s.Instances {
		logFile, err := p.store.logPath(app, color, version, i)
		if err != nil {
			p.stopAll(ctx, pl)
			return pool{}, err
		}
		in, err := startInstance(p.s.Command, p.s.Dir, env, logFile)
		if err != nil {
			p.stopAll(ctx, pl)
			return pool{}, providers.BadConfig("%v", err)
		}
		pl.Instances = append(pl.Instances, in)
		// Saved after each start, so that a worker dying here leaves no process
		// that nobody knows about.
		if err := p.store.save(color, pl); err != nil {
			p.stopAll(ctx, pl)
			return pool{}, err
		}
	}
	deadline := time.Now().Add(p.s.StartTimeout.D())
	for _, in := range pl.Instances {
		if err := waitHealthy(ctx, p.health, in, p.s.HealthPath, deadline); err != nil {
			return pool{}, providers.CheckFailed("%s %s %s: %v", app, color, version, err)
		}
	}
	return pl, nil
}

func (p *Provider) allHealthy(ctx context.Context, pl pool) bool {
	if len(pl.Instances) != p.s.Instances {
		return false
	}
	for _, in := range pl.Instances {
		if !in.alive() || probe(ctx, p.health, in, p.s.HealthPath) != nil {
			return false
		}
	}
	return true
}

func (p *Provider) register(ctx context.Context, color string, pl pool) error {
	a, err := p.admin()
	if err != nil {
		return err
	}
	if err := a.SetPool(ctx, color, urls(pl)); err != nil {
		return fmt.Errorf("register %s instances with the router: %w", color, err)
	}
	return nil
}

// Validate checks every green instance's health path and smoke paths directly,
// not through the router: no user sees green before it passes.
func (p *Provider) Validate(ctx context.Context, r providers.Ref, smoke []string) error {
	pl, err := p.store.load(r.App, string(providers.Green))
	if err != nil {
		return err
	}
	if pl == nil || pl.Version != r.Version {
		return providers.NotFound("no green pool of %s %s to validate", r.App, r.Version)
	}
	for _, in := range pl.Instances {
		for _, path := range append([]string{p.s.HealthPath}, smoke...) {
			if err := probe(ctx, p.health, in, path); err != nil {
				return providers.CheckFailed("green instance %s: %v", in.URL, err)
			}
		}
	}
	return nil
}

// Decommission stops a color's pool. For blue (after a promotion) the green
// pool first becomes the router's blue pool, so that the next release finds the
// live version as blue; every router call is idempotent, so a retry after a
// crash at any point finishes the job. For green (a rollback) green is removed
// from the router and stopped.
func (p *Provider) Decommission(ctx context.Context, r providers.Ref, c providers.Color) error {
	a, err := p.admin()
	if err != nil {
		return err
	}
	unlock, err := p.store.lock(r.App)
	if err != nil {
		return err
	}
	defer unlock()

	if c == providers.Green {
		if err := a.SetPool(ctx, string(providers.Green), nil); err != nil {
			return fmt.Errorf("remove green from the router: %w", err)
		}
		if err := p.store.rename(r.App, "green", "retired-green"); err != nil {
			return err
		}
		return p.stopRetired(ctx, r.App)
	}

	green, err := p.store.load(r.App, string(providers.Green))
	if err != nil {
		return err
	}
	if green != nil && green.Version == r.Version {
		// All traffic is on green: green's instances become the blue pool, then
		// the weight moves to blue (the same instances), then green is emptied.
		if err := a.SetPool(ctx, string(providers.Blue), urls(*green)); err != nil {
			return fmt.Errorf("make green the blue pool: %w", err)
		}
		if err := a.SetWeight(ctx, 0); err != nil {
			return fmt.Errorf("move the weight to the new blue: %w", err)
		}
		if err := a.SetPool(ctx, string(providers.Green), nil); err != nil {
			return fmt.Errorf("empty the green pool: %w", err)
		}
		if err := p.store.rename(r.App, "blue", "retired-blue"); err != nil {
			return err
		}
		if err := p.store.rename(r.App, "green", "blue"); err != nil {
			return err
		}
	}
	return p.stopRetired(ctx, r.App)
}

// stopRetired stops every retired pool and forgets it.
func (p *Provider) stopRetired(ctx context.Context, app string) error {
	names, err := p.store.retired(app)
	if err != nil {
		return err
	}
	for _, name := range names {
		pl, err := p.store.load(app, name)
		if err != nil {
			return err
		}
		if pl != nil {
			p.stopAll(ctx, *pl)
		}
		if err := p.store.remove(app, name); err != nil {
			return err
		}
	}
	return nil
}

func (p *Provider) stopAll(ctx context.Context, pl pool) {
	for _, in := range pl.Instances {
		_ = stopInstance(ctx, in, p.s.StopGrace.D())
	}
}

// Stop stops every pool of the app this provider knows of (`cutover local
// stop`, and tests cleaning up after themselves).
func (p *Provider) Stop(ctx context.Context, app string) error {
	unlock, err := p.store.lock(app)
	if err != nil {
		return err
	}
	defer unlock()
	for _, name := range []string{"blue", "green"} {
		if err := p.store.rename(app, name, "retired-"+name); err != nil {
			return err
		}
	}
	return p.stopRetired(ctx, app)
}

// SetWeight sends green percent of traffic to green.
func (p *Provider) SetWeight(ctx context.Context, app string, green int) error {
	a, err := p.admin()
	if err != nil {
		return err
	}
	return a.SetWeight(ctx, green)
}

// Weight reads green's share back from the router.
func (p *Provider) Weight(ctx context.Context, app string) (int, error) {
	st, err := p.routerState(ctx)
	if err != nil {
		return 0, err
	}
	return st.Weights.Green, nil
}

// InFlight returns the requests the color serves now, from the router.
func (p *Provider) InFlight(ctx context.Context, app string, c providers.Color) (int, error) {
	st, err := p.routerState(ctx)
	if err != nil {
		return 0, err
	}
	return int(st.InFlight[string(c)]), nil
}

func urls(pl pool) []string {
	out := make([]string, 0, len(pl.Instances))
	for _, in := range pl.Instances {
		out = append(out, in.URL)
	}
	return out
}

func sortedKeys(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}
