package activities_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"go.temporal.io/sdk/log"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/testsuite"

	"github.com/cutoverhq/cutover/activities"
	"github.com/cutoverhq/cutover/providers"
	"github.com/cutoverhq/cutover/providers/memory"
	"github.com/cutoverhq/cutover/spec"
	"github.com/cutoverhq/cutover/verdict"
)

var ref = providers.Ref{App: "shop-api", Version: "1.4.0", PreviousVersion: "1.3.2"}

func discard() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// newEnv returns a test activity environment running the activities over a
// registry of the given builders.
func newEnv(builders ...providers.Builder) *testsuite.TestActivityEnvironment {
	var s testsuite.WorkflowTestSuite
	s.SetLogger(log.NewStructuredLogger(discard()))
	env := s.NewTestActivityEnvironment()
	activities.New(providers.NewRegistry(builders...), discard()).Register(env)
	return env
}

// fixed is a builder that always returns v.
func fixed(typ string, v any) providers.Builder {
	return providers.Builder{Type: typ, New: func(map[string]any) (any, error) { return v, nil }}
}

func provider(typ string) spec.Provider { return spec.Provider{Type: typ} }

func seconds(n float64) spec.Duration { return spec.Duration(n * float64(time.Second)) }

// appError returns the application error an activity failed with.
func appError(t *testing.T, err error) *temporal.ApplicationError {
	t.Helper()
	if err == nil {
		t.Fatal("the activity succeeded, want an error")
	}
	var app *temporal.ApplicationError
	if !errors.As(err, &app) {
		t.Fatalf("error %v (%T) is not an application error", err, err)
	}
	return app
}

// events records what the fakes were asked to do, in order.
type events struct {
	mu   sync.Mutex
	list []string
	at   []time.Time
}

func (e *events) add(format string, args ...any) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.list = append(e.list, fmt.Sprintf(format, args...))
	e.at = append(e.at, time.Now())
}

func (e *events) get() ([]string, []time.Time) {
	e.mu.Lock()
	defer e.mu.Unlock()
	return slices.Clone(e.list), slices.Clone(e.at)
}

// failing is a provider of every kind whose every call fails with err.
type failing struct {
	typ string
	err error
}

func (f *failing) Type() string { return f.typ }
func (f *failing) Provision(context.Context, providers.Ref) (providers.Pool, error) {
	return providers.Pool{}, f.err
}
func (f *failing) Validate(context.Context, providers.Ref, []string) error { return f.err }
func (f *failing) Decommission(context.Context, providers.Ref, providers.Color) error {
	return f.err
}
func (f *failing) SetWeight(context.Context, string, int) error { return f.err }
func (f *failing) Weight(context.Context, string) (int, error)  { return 0, f.err }
func (f *failing) Guard(context.Context, providers.Ref) (verdict.Verdict, error) {
	return verdict.Verdict{}, f.err
}
func (f *failing) Compare(context.Context, providers.Ref, time.Duration) (verdict.Verdict, error) {
	return verdict.Verdict{}, f.err
}
func (f *failing) Migrate(context.Context, providers.Ref, string) (providers.MigrationReport, error) {
	return providers.MigrationReport{}, f.err
}
func (f *failing) Notify(context.Context, providers.Event) error { return f.err }

// environment is a fake environment provider.
type environment struct {
	ev    *events
	pool  providers.Pool
	mu    sync.Mutex
	ref   providers.Ref
	smoke []string
}

func (e *environment) Type() string { return "fakeenv" }
func (e *environment) Provision(_ context.Context, r providers.Ref) (providers.Pool, error) {
	e.mu.Lock()
	e.ref = r
	e.mu.Unlock()
	return e.pool, nil
}
func (e *environment) Validate(_ context.Context, r providers.Ref, smoke []string) error {
	e.mu.Lock()
	e.ref, e.smoke = r, smoke
	e.mu.Unlock()
	return nil
}
func (e *environment) Decommission(_ context.Context, r providers.Ref, c providers.Color) error {
	e.ev.add("decommission %s %s", r.App, c)
	return nil
}

// traffic is a fake traffic provider; readBack, when set, replaces the weight
// that Weight reports.
type traffic struct {
	mu       sync.Mutex
	weights  map[string]int
	readBack func(set int) int
	readErr  error
}

func newTraffic() *traffic { return &traffic{weights: map[string]int{}} }

func (tr *traffic) Type() string { return "faketraffic" }
func (tr *traffic) SetWeight(_ context.Context, app string, green int) error {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	tr.weights[app] = green
	return nil
}
func (tr *traffic) Weight(_ context.Context, app string) (int, error) {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	if tr.readErr != nil {
		return 0, tr.readErr
	}
	if tr.readBack != nil {
		return tr.readBack(tr.weights[app]), nil
	}
	return tr.weights[app], nil
}

// draining is a traffic provider that also reports the requests in flight: the
// scripted counts in turn, then the last one forever. With err set, it fails
// instead of reporting a count other than 0.
type draining struct {
	*traffic
	ev     *events
	mu     sync.Mutex
	counts []int
	err    error
}

func (d *draining) InFlight(_ context.Context, app string, c providers.Color) (int, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	n := d.counts[0]
	if len(d.counts) > 1 {
		d.counts = d.counts[1:]
	}
	if d.err != nil && n != 0 {
		d.ev.add("inflight %s %s: %v", app, c, d.err)
		return 0, d.err
	}
	d.ev.add("inflight %s %s: %d", app, c, n)
	return n, nil
}

// check is one scripted guard check.
type check struct {
	v   verdict.Verdict
	err error
}

func pass() check { return check{v: verdict.Verdict{Result: verdict.Pass, Summary: "healthy"}} }
func fail() check {
	return check{v: verdict.Verdict{Result: verdict.Fail, Summary: "error rate 7% above 5%"}}
}
func inconclusive() check {
	return check{v: verdict.Verdict{Result: verdict.Inconclusive, Summary: "no data"}}
}
func transient() check { return check{err: errors.New("503 throttled")} }

// analyzer is a fake analyzer: Guard plays the script, then fails loudly so that
// a guard that should have stopped does not run on; Compare returns verdict.
type analyzer struct {
	mu      sync.Mutex
	script  []check
	guards  int
	verdict verdict.Verdict
	window  time.Duration
	ref     providers.Ref
}

func (a *analyzer) Type() string { return "fakeanalysis" }
func (a *analyzer) Guard(context.Context, providers.Ref) (verdict.Verdict, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.guards++
	if a.guards > len(a.script) {
		return verdict.Verdict{Result: verdict.Fail, Summary: "script exhausted"}, nil
	}
	c := a.script[a.guards-1]
	return c.v, c.err
}
func (a *analyzer) Compare(_ context.Context, r providers.Ref, window time.Duration) (verdict.Verdict, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.window, a.ref = window, r
	return a.verdict, nil
}
func (a *analyzer) calls() int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.guards
}

// migrator is a fake migrator returning report.
type migrator struct {
	report providers.MigrationReport
	mu     sync.Mutex
	phase  string
	ref    providers.Ref
}

func (m *migrator) Type() string { return "fakemigrations" }
func (m *migrator) Migrate(_ context.Context, r providers.Ref, phase string) (providers.MigrationReport, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.phase, m.ref = phase, r
	return m.report, nil
}

// notifier is a fake notifier that records the events it was given and fails
// with err when set.
type notifier struct {
	typ string
	err error
	mu  sync.Mutex
	got []providers.Event
}

func (n *notifier) Type() string { return n.typ }
func (n *notifier) Notify(_ context.Context, e providers.Event) error {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.got = append(n.got, e)
	return n.err
}
func (n *notifier) events() []providers.Event {
	n.mu.Lock()
	defer n.mu.Unlock()
	return slices.Clone(n.got)
}

// step runs one activity with every provider set to p.
type step struct {
	name string
	what string // how the activity names the step in its errors
	run  func(env *testsuite.TestActivityEnvironment, p spec.Provider) error
}

var steps = []step{
	{"Provision", "provision green", func(env *testsuite.TestActivityEnvironment, p spec.Provider) error {
		_, err := env.ExecuteActivity(activities.ProvisionName, activities.StepInput{Ref: ref, Provider: p})
		return err
	}},
	{"Validate", "validate green", func(env *testsuite.TestActivityEnvironment, p spec.Provider) error {
		_, err := env.ExecuteActivity(activities.ValidateName, activities.ValidateInput{StepInput: activities.StepInput{Ref: ref, Provider: p}, Smoke: []string{"/healthz"}})
		return err
	}},
	{"SetWeight", "set green weight to 10", func(env *testsuite.TestActivityEnvironment, p spec.Provider) error {
		_, err := env.ExecuteActivity(activities.SetWeightName, activities.WeightInput{App: ref.App, Provider: p, Green: 10})
		return err
	}},
	{"Guard", "soak guard", func(env *testsuite.TestActivityEnvironment, p spec.Provider) error {
		_, err := env.ExecuteActivity(activities.GuardName, activities.GuardInput{StepInput: activities.StepInput{Ref: ref, Provider: p}, Interval: seconds(1)})
		return err
	}},
	{"Compare", "compare blue and green", func(env *testsuite.TestActivityEnvironment, p spec.Provider) error {
		_, err := env.ExecuteActivity(activities.CompareName, activities.CompareInput{StepInput: activities.StepInput{Ref: ref, Provider: p}, Window: seconds(60)})
		return err
	}},
	{"Migrate", "migrate (expand)", func(env *testsuite.TestActivityEnvironment, p spec.Provider) error {
		_, err := env.ExecuteActivity(activities.MigrateName, activities.MigrateInput{StepInput: activities.StepInput{Ref: ref, Provider: p}, Phase: "expand"})
		return err
	}},
	{"Decommission", "decommission blue", func(env *testsuite.TestActivityEnvironment, p spec.Provider) error {
		_, err := env.ExecuteActivity(activities.DecommissionName, activities.DecommissionInput{StepInput: activities.StepInput{Ref: ref, Provider: p}, Traffic: p, Color: providers.Blue})
		return err
	}},
	{"Notify", "notify " + "broken", func(env *testsuite.TestActivityEnvironment, p spec.Provider) error {
		_, err := env.ExecuteActivity(activities.NotifyName, activities.NotifyInput{Notifiers: []spec.Provider{p}, Event: providers.Event{App: ref.App, Kind: "started"}})
		return err
	}},
}

// TestErrorClassification checks that every activity turns a provider's
// permanent error into a non-retryable error of the matching type, and any other
// error into a retryable one, with a message that names the step.
func TestErrorClassification(t *testing.T) {
	tests := []struct {
		name     string
		err      error
		wantType string // "" for retryable
	}{
		{"bad config", fmt.Errorf("region %q: %w", "mars", providers.ErrBadConfig), activities.ErrTypeBadConfig},
		{"not found", fmt.Errorf("service shop-api-green: %w", providers.ErrNotFound), activities.ErrTypeNotFound},
		{"invalid", fmt.Errorf("403 forbidden: %w", providers.ErrInvalid), activities.ErrTypeInvalid},
		{"check failed", fmt.Errorf("GET /healthz: 500: %w", providers.ErrCheckFailed), activities.ErrTypeCheckFailed},
		{"sentinel alone", providers.ErrNotFound, activities.ErrTypeNotFound},
		{"kind helper", providers.CheckFailed("GET /healthz on %s: 500", "shop-api-green-0"), activities.ErrTypeCheckFailed},
		{"throttled", errors.New("503 throttled"), ""},
		{"timeout", fmt.Errorf("dial tcp 10.0.0.7:443: %w", errors.New("i/o timeout")), ""},
	}
	for _, s := range steps {
		for _, tt := range tests {
			if s.name == "Guard" && tt.wantType == "" {
				continue // a guard counts a passing error as a check without a verdict (TestGuard)
			}
			t.Run(s.name+"/"+tt.name, func(t *testing.T) {
				t.Parallel()
				env := newEnv(fixed("broken", &failing{typ: "broken", err: tt.err}))
				app := appError(t, s.run(env, provider("broken")))
				if want := s.what + ": " + tt.err.Error(); app.Message() != want {
					t.Errorf("message = %q, want %q", app.Message(), want)
				}
				if tt.wantType == "" {
					if app.NonRetryable() {
						t.Errorf("error %v is non-retryable, want retryable", app)
					}
					if slices.Contains(activities.PermanentErrorTypes, app.Type()) {
						t.Errorf("type = %q, a permanent type, for a passing error", app.Type())
					}
					return
				}
				if !app.NonRetryable() {
					t.Errorf("error %v is retryable, want non-retryable", app)
				}
				if app.Type() != tt.wantType {
					t.Errorf("type = %q, want %q", app.Type(), tt.wantType)
				}
			})
		}
	}
}

// TestUnknownProvider checks that a provider type that is not registered, or
// that cannot serve the step, fails the activity at once as BadConfig and says
// which types exist.
func TestUnknownProvider(t *testing.T) {
	logOnly := &notifier{typ: "chat"}
	builders := []providers.Builder{
		fixed("chat", logOnly),
		fixed("fakeenv", &environment{ev: &events{}}),
		fixed("faketraffic", newTraffic()),
	}
	tests := []struct {
		step     string
		provider string
		want     []string
	}{
		{"Provision", "nginx", []string{`unknown provider type "nginx"`, "known: chat, fakeenv, faketraffic"}},
		{"Validate", "nginx", []string{`unknown provider type "nginx"`, "known: chat, fakeenv, faketraffic"}},
		{"SetWeight", "nginx", []string{`unknown provider type "nginx"`, "known: chat, fakeenv, faketraffic"}},
		{"Guard", "nginx", []string{`unknown provider type "nginx"`, "known: chat, fakeenv, faketraffic"}},
		{"Compare", "nginx", []string{`unknown provider type "nginx"`}},
		{"Migrate", "nginx", []string{`unknown provider type "nginx"`}},
		{"Decommission", "nginx", []string{`unknown provider type "nginx"`}},
		{"Notify", "nginx", []string{`unknown provider type "nginx"`}},
		{"Provision", "chat", []string{`provider type "chat" cannot serve as environment`}},
		{"SetWeight", "fakeenv", []string{`provider type "fakeenv" cannot serve as traffic`}},
		{"Guard", "faketraffic", []string{`provider type "faketraffic" cannot serve as analysis`}},
		{"Migrate", "chat", []string{`provider type "chat" cannot serve as migrations`}},
		{"Notify", "fakeenv", []string{`provider type "fakeenv" cannot serve as notifications`}},
	}
	for _, tt := range tests {
		t.Run(tt.step+"/"+tt.provider, func(t *testing.T) {
			i := slices.IndexFunc(steps, func(s step) bool { return s.name == tt.step })
			s := steps[i]
			what := s.what
			if tt.step == "Notify" {
				what = "notify " + tt.provider
			}
			app := appError(t, s.run(newEnv(builders...), provider(tt.provider)))
			if app.Type() != activities.ErrTypeBadConfig || !app.NonRetryable() {
				t.Errorf("error type %q, non-retryable %v; want BadConfig, non-retryable", app.Type(), app.NonRetryable())
			}
			if !strings.HasPrefix(app.Message(), what+": ") {
				t.Errorf("message %q does not start with %q", app.Message(), what+": ")
			}
			for _, w := range tt.want {
				if !strings.Contains(app.Message(), w) {
					t.Errorf("message %q does not contain %q", app.Message(), w)
				}
			}
		})
	}

	// Decommission needs both its providers: a bad traffic provider fails it
	// before the pool is stopped.
	t.Run("Decommission/bad traffic", func(t *testing.T) {
		ev := &events{}
		env := newEnv(fixed("fakeenv", &environment{ev: ev}))
		_, err := env.ExecuteActivity(activities.DecommissionName, activities.DecommissionInput{
			StepInput: activities.StepInput{Ref: ref, Provider: provider("fakeenv")},
			Traffic:   provider("istio"), Color: providers.Blue,
		})
		app := appError(t, err)
		if app.Type() != activities.ErrTypeBadConfig || !strings.Contains(app.Message(), `unknown provider type "istio"`) {
			t.Errorf("error = %v, want BadConfig naming istio", app)
		}
		if got, _ := ev.get(); len(got) != 0 {
			t.Errorf("the pool was stopped although traffic could not be checked: %v", got)
		}
	})
}

// TestSetWeight checks that SetWeight returns the weight read back, and fails
// when the traffic provider reads back another weight than it was given.
func TestSetWeight(t *testing.T) {
	tests := []struct {
		name     string
		readBack func(int) int
		readErr  error
		green    int
		want     int
		wantErr  []string
		wantType string
	}{
		{"applied", nil, nil, 30, 30, nil, ""},
		{"zero", nil, nil, 0, 0, nil, ""},
		{"all traffic", nil, nil, 100, 100, nil, ""},
		{"not applied", func(int) int { return 0 }, nil, 30, 0, []string{"set green weight to 30: read back 0"}, ""},
		{"applied wrongly", func(w int) int { return w / 2 }, nil, 50, 0, []string{"set green weight to 50: read back 25"}, ""},
		{"read back fails", nil, fmt.Errorf("route shop-api: %w", providers.ErrNotFound), 10, 0, []string{"set green weight to 10: route shop-api: not found"}, activities.ErrTypeNotFound},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tr := newTraffic()
			tr.readBack, tr.readErr = tt.readBack, tt.readErr
			env := newEnv(fixed("faketraffic", tr))
			val, err := env.ExecuteActivity(activities.SetWeightName, activities.WeightInput{App: ref.App, Provider: provider("faketraffic"), Green: tt.green})
			if tt.wantErr == nil {
				if err != nil {
					t.Fatalf("SetWeight(%d) = %v", tt.green, err)
				}
				var got int
				if err := val.Get(&got); err != nil {
					t.Fatal(err)
				}
				if got != tt.want {
					t.Errorf("SetWeight(%d) = %d, want %d", tt.green, got, tt.want)
				}
				return
			}
			app := appError(t, err)
			for _, w := range tt.wantErr {
				if !strings.Contains(app.Message(), w) {
					t.Errorf("message %q does not contain %q", app.Message(), w)
				}
			}
			if tt.wantType != "" && app.Type() != tt.wantType {
				t.Errorf("type = %q, want %q", app.Type(), tt.wantType)
			}
		})
	}
}

// TestGuard checks the soak guard: it checks at once and then every interval,
// returns the first Fail, stops after three checks in a row without a verdict
// (passing errors count as such, a Pass starts the count again), and fails
// permanently on a permanent error. The interval is 1s, the spec's minimum.
func TestGuard(t *testing.T) {
	tests := []struct {
		name        string
		script      []check
		want        verdict.Result
		wantSummary []string
		wantErrType string
	}{
		{"fail after passes", []check{pass(), pass(), fail()}, verdict.Fail, []string{"error rate 7% above 5%"}, ""},
		{"fail at once", []check{fail()}, verdict.Fail, []string{"error rate 7% above 5%"}, ""},
		{"three without data", []check{inconclusive(), inconclusive(), inconclusive()}, verdict.Inconclusive, []string{"3 checks in a row", "no data"}, ""},
		{"three passing errors", []check{transient(), transient(), transient()}, verdict.Inconclusive, []string{"3 checks in a row", "503 throttled"}, ""},
		{"errors and missing data together", []check{transient(), inconclusive(), transient()}, verdict.Inconclusive, []string{"3 checks in a row", "503 throttled"}, ""},
		// Without the reset the fourth check would end the guard as Inconclusive.
		{"a pass starts the count again", []check{inconclusive(), transient(), pass(), transient(), fail()}, verdict.Fail, []string{"error rate 7% above 5%"}, ""},
		{"bad config", []check{pass(), {err: fmt.Errorf("query: %w", providers.ErrBadConfig)}}, "", nil, activities.ErrTypeBadConfig},
		{"metric not found", []check{{err: fmt.Errorf("metric http_requests_total: %w", providers.ErrNotFound)}}, "", nil, activities.ErrTypeNotFound},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			an := &analyzer{script: tt.script}
			env := newEnv(fixed("fakeanalysis", an))
			start := time.Now()
			val, err := env.ExecuteActivity(activities.GuardName, activities.GuardInput{
				StepInput: activities.StepInput{Ref: ref, Provider: provider("fakeanalysis")},
				Interval:  seconds(1),
			})
			elapsed := time.Since(start)
			if n := an.calls(); n != len(tt.script) {
				t.Errorf("%d guard checks, want %d", n, len(tt.script))
			}
			// Checks come at once and then one per interval.
			if lo, hi := time.Duration(len(tt.script)-1)*time.Second-100*time.Millisecond, time.Duration(len(tt.script))*time.Second+500*time.Millisecond; elapsed < lo || elapsed > hi {
				t.Errorf("guard took %v for %d checks at 1s, want between %v and %v", elapsed, len(tt.script), lo, hi)
			}
			if tt.wantErrType != "" {
				app := appError(t, err)
				if app.Type() != tt.wantErrType || !app.NonRetryable() {
					t.Errorf("error type %q, non-retryable %v; want %s, non-retryable", app.Type(), app.NonRetryable(), tt.wantErrType)
				}
				if !strings.HasPrefix(app.Message(), "soak guard: ") {
					t.Errorf("message %q does not name the soak guard", app.Message())
				}
				return
			}
			if err != nil {
				t.Fatalf("Guard = %v", err)
			}
			var v verdict.Verdict
			if err := val.Get(&v); err != nil {
				t.Fatal(err)
			}
			if v.Result != tt.want {
				t.Errorf("verdict = %+v, want %s", v, tt.want)
			}
			for _, w := range tt.wantSummary {
				if !strings.Contains(v.Summary, w) {
					t.Errorf("summary %q does not contain %q", v.Summary, w)
				}
			}
		})
	}
}

// TestDecommission checks that a pool is stopped once its traffic provider says
// it is idle, or once the drain deadline passes, whichever comes first.
func TestDecommission(t *testing.T) {
	tests := []struct {
		name       string
		drainer    bool
		counts     []int
		inFlightEr error
		drain      spec.Duration
		color      providers.Color
		wantBefore []string      // the InFlight reports before the pool is stopped
		wantMin    time.Duration // how long the drain takes at least
		wantMax    time.Duration // and at most
	}{
		{"drains", true, []int{2, 1, 0}, nil, seconds(10), providers.Blue,
			[]string{"inflight shop-api blue: 2", "inflight shop-api blue: 1", "inflight shop-api blue: 0"}, 300 * time.Millisecond, 2 * time.Second},
		{"already idle", true, []int{0}, nil, seconds(10), providers.Green,
			[]string{"inflight shop-api green: 0"}, 0, time.Second},
		// After 5s (25 polls) the pool does go idle, so that a drain that ignores
		// its deadline fails here instead of hanging.
		{"never drains", true, append(slices.Repeat([]int{5}, 25), 0), nil, seconds(1), providers.Blue, nil, time.Second, 2500 * time.Millisecond},
		{"cannot tell", true, append(slices.Repeat([]int{1}, 25), 0), errors.New("stats endpoint 503"), seconds(1), providers.Blue, nil, time.Second, 2500 * time.Millisecond},
		{"no drain time", true, append(slices.Repeat([]int{3}, 25), 0), nil, 0, providers.Blue, []string{"inflight shop-api blue: 3"}, 0, time.Second},
		{"traffic cannot drain", false, nil, nil, seconds(10), providers.Blue, []string{}, 0, time.Second},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			ev := &events{}
			var tr any = newTraffic()
			if tt.drainer {
				tr = &draining{traffic: newTraffic(), ev: ev, counts: tt.counts, err: tt.inFlightEr}
			}
			env := newEnv(fixed("fakeenv", &environment{ev: ev}), fixed("faketraffic", tr))
			start := time.Now()
			_, err := env.ExecuteActivity(activities.DecommissionName, activities.DecommissionInput{
				StepInput: activities.StepInput{Ref: ref, Provider: provider("fakeenv")},
				Traffic:   provider("faketraffic"),
				Color:     tt.color,
				Drain:     tt.drain,
			})
			if err != nil {
				t.Fatalf("Decommission = %v", err)
			}
			got, at := ev.get()
			want := "decommission shop-api " + string(tt.color)
			if len(got) == 0 || got[len(got)-1] != want || slices.Index(got, want) != len(got)-1 {
				t.Fatalf("events = %q, want one %q last", got, want)
			}
			before := got[:len(got)-1]
			if tt.wantBefore != nil && !slices.Equal(before, tt.wantBefore) {
				t.Errorf("before the pool was stopped: %q, want %q", before, tt.wantBefore)
			}
			if tt.wantBefore == nil && len(before) < 3 {
				t.Errorf("InFlight asked %d times before the deadline, want it polled: %q", len(before), before)
			}
			if stopped := at[len(at)-1].Sub(start); stopped < tt.wantMin || stopped > tt.wantMax {
				t.Errorf("pool stopped after %v, want between %v and %v", stopped, tt.wantMin, tt.wantMax)
			}
		})
	}
}

// TestNotify checks that every notifier hears of the event even when another
// fails, and that the activity then fails naming the first failing notifier.
func TestNotify(t *testing.T) {
	event := providers.Event{App: ref.App, Version: ref.Version, Kind: "rolledBack", Message: "guard failed", Time: time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)}
	tests := []struct {
		name      string
		notifiers []string
		failing   []string
		wantErr   []string // substrings; nil for success
	}{
		{"all deliver", []string{"chat", "email"}, nil, nil},
		{"none", nil, nil, nil},
		{"first fails", []string{"pager", "chat"}, []string{"pager"}, []string{"notify pager: webhook returned 500"}},
		{"last fails", []string{"chat", "pager"}, []string{"pager"}, []string{"notify pager: webhook returned 500"}},
		{"two fail", []string{"pager", "chat", "sms"}, []string{"pager", "sms"}, []string{"notify pager: webhook returned 500"}},
		{"unknown type", []string{"teams", "chat"}, nil, []string{"notify teams: ", `unknown provider type "teams"`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fakes := map[string]*notifier{}
			var builders []providers.Builder
			for _, typ := range []string{"chat", "email", "pager", "sms"} {
				n := &notifier{typ: typ}
				if slices.Contains(tt.failing, typ) {
					n.err = errors.New("webhook returned 500")
				}
				fakes[typ] = n
				builders = append(builders, fixed(typ, n))
			}
			var ps []spec.Provider
			for _, typ := range tt.notifiers {
				ps = append(ps, provider(typ))
			}
			env := newEnv(builders...)
			_, err := env.ExecuteActivity(activities.NotifyName, activities.NotifyInput{Notifiers: ps, Event: event})
			for typ, n := range fakes {
				got := n.events()
				if !slices.Contains(tt.notifiers, typ) {
					if len(got) != 0 {
						t.Errorf("%s was not configured but got %v", typ, got)
					}
					continue
				}
				if len(got) != 1 || !got[0].Time.Equal(event.Time) || got[0].Kind != event.Kind || got[0].Message != event.Message || got[0].App != event.App {
					t.Errorf("%s got %+v, want the event once", typ, got)
				}
			}
			if tt.wantErr == nil {
				if err != nil {
					t.Errorf("Notify = %v, want nil", err)
				}
				return
			}
			app := appError(t, err)
			for _, w := range tt.wantErr {
				if !strings.Contains(app.Message(), w) {
					t.Errorf("message %q does not contain %q", app.Message(), w)
				}
			}
			for _, typ := range tt.failing[min(1, len(tt.failing)):] {
				if strings.Contains(app.Message(), typ) {
					t.Errorf("message %q names %s, want only the first failing notifier", app.Message(), typ)
				}
			}
		})
	}
}

// TestCompare checks that Compare hands the window to the analyzer and returns
// its verdict, numbers included.
func TestCompare(t *testing.T) {
	tests := []struct {
		name   string
		window spec.Duration
		v      verdict.Verdict
	}{
		{"fail with numbers", seconds(90), verdict.Verdict{Result: verdict.Fail, Summary: "error rate up", Metrics: []verdict.Metric{
			{Name: "error_rate", Result: verdict.Fail, Critical: true, Reason: "green above blue", Values: []verdict.Value{{Name: "green", Value: 0.021}, {Name: "blue", Value: 0.003}, {Name: "p", Value: 0.0004}}},
			{Name: "latency_p99", Result: verdict.Pass, Values: []verdict.Value{{Name: "green", Value: 0.25}}},
		}}},
		{"pass", seconds(300), verdict.Verdict{Result: verdict.Pass, Summary: "no difference"}},
		{"inconclusive", seconds(60), verdict.Verdict{Result: verdict.Inconclusive, Summary: "too few requests", Metrics: []verdict.Metric{{Name: "error_rate", Result: verdict.Inconclusive, Reason: "12 requests"}}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			an := &analyzer{verdict: tt.v}
			env := newEnv(fixed("fakeanalysis", an))
			val, err := env.ExecuteActivity(activities.CompareName, activities.CompareInput{StepInput: activities.StepInput{Ref: ref, Provider: provider("fakeanalysis")}, Window: tt.window})
			if err != nil {
				t.Fatal(err)
			}
			var got verdict.Verdict
			if err := val.Get(&got); err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tt.v) {
				t.Errorf("Compare = %+v, want %+v", got, tt.v)
			}
			if an.window != tt.window.D() || an.ref != ref {
				t.Errorf("analyzer asked for %v over %v, want %+v over %v", an.ref, an.window, ref, tt.window.D())
			}
		})
	}
}

// TestMigrate checks that Migrate hands the phase to the migrator and returns its
// report.
func TestMigrate(t *testing.T) {
	tests := []struct {
		phase  string
		report providers.MigrationReport
	}{
		{"expand", providers.MigrationReport{Phase: "expand", Applied: []string{"0042_add_column", "0043_backfill"}}},
		{"contract", providers.MigrationReport{Phase: "contract"}},
	}
	for _, tt := range tests {
		t.Run(tt.phase, func(t *testing.T) {
			m := &migrator{report: tt.report}
			env := newEnv(fixed("fakemigrations", m))
			val, err := env.ExecuteActivity(activities.MigrateName, activities.MigrateInput{StepInput: activities.StepInput{Ref: ref, Provider: provider("fakemigrations")}, Phase: tt.phase})
			if err != nil {
				t.Fatal(err)
			}
			var got providers.MigrationReport
			if err := val.Get(&got); err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tt.report) {
				t.Errorf("Migrate = %+v, want %+v", got, tt.report)
			}
			if m.phase != tt.phase || m.ref != ref {
				t.Errorf("migrator asked for %q of %+v, want %q of %+v", m.phase, m.ref, tt.phase, ref)
			}
		})
	}
}

// TestProvisionAndValidate checks that Provision returns the provider's pool and
// Validate hands it the smoke paths.
func TestProvisionAndValidate(t *testing.T) {
	pool := providers.Pool{Color: providers.Green, Version: "1.4.0", Instances: []string{"10.0.0.7:8080", "10.0.0.8:8080"}}
	e := &environment{ev: &events{}, pool: pool}
	env := newEnv(fixed("fakeenv", e))
	val, err := env.ExecuteActivity(activities.ProvisionName, activities.StepInput{Ref: ref, Provider: provider("fakeenv")})
	if err != nil {
		t.Fatal(err)
	}
	var got providers.Pool
	if err := val.Get(&got); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, pool) || e.ref != ref {
		t.Errorf("Provision = %+v for %+v, want %+v for %+v", got, e.ref, pool, ref)
	}
	smoke := []string{"/healthz", "/api/v1/cart"}
	if _, err := env.ExecuteActivity(activities.ValidateName, activities.ValidateInput{StepInput: activities.StepInput{Ref: ref, Provider: provider("fakeenv")}, Smoke: smoke}); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(e.smoke, smoke) {
		t.Errorf("Validate ran smoke paths %v, want %v", e.smoke, smoke)
	}
}

// TestMemoryValidateFailureIsCheckFailed checks that the memory provider's
// simulated validation failure reaches the workflow as a failed check, as the
// provider means it to (it wraps ErrCheckFailed).
func TestMemoryValidateFailureIsCheckFailed(t *testing.T) {
	env := newEnv(memory.NewBuilder())
	_, err := env.ExecuteActivity(activities.ValidateName, activities.ValidateInput{
		StepInput: activities.StepInput{Ref: ref, Provider: spec.Provider{Type: "memory", Settings: map[string]any{"failOn": []any{"validate"}}}},
	})
	app := appError(t, err)
	if !app.NonRetryable() || !strings.HasPrefix(app.Message(), "validate green: ") {
		t.Errorf("error = %v, want a non-retryable validate green error", app)
	}
	if app.Type() != activities.ErrTypeCheckFailed {
		t.Errorf("type = %q, want %q", app.Type(), activities.ErrTypeCheckFailed)
	}
}

// lingering is a traffic provider whose changes linger for a fixed time, or
// that cannot tell how long (err).
type lingering struct {
	*traffic
	ev     *events
	linger time.Duration
	err    error
}

func (l *lingering) Linger(_ context.Context, app string, c providers.Color) (time.Duration, error) {
	l.ev.add("linger %s %s", app, c)
	return l.linger, l.err
}

func TestDecommissionWaitsOutLingeringTraffic(t *testing.T) {
	tests := []struct {
		name             string
		linger           time.Duration
		err              error
		offAgo           time.Duration // how long ago the color's weight went to 0; -1: unknown
		drain            spec.Duration
		wantMin, wantMax time.Duration
	}{
		{"lingers from when the weight went to 0", 1500 * time.Millisecond, nil, 500 * time.Millisecond, seconds(10), 800 * time.Millisecond, 1300 * time.Millisecond},
		{"already past", time.Second, nil, time.Hour, seconds(10), 0, 300 * time.Millisecond},
		{"unknown off counts from now", time.Second, nil, -1, seconds(10), time.Second, 1500 * time.Millisecond},
		{"the drain time bounds it", time.Minute, nil, 0, seconds(1), time.Second, 1500 * time.Millisecond},
		{"cannot tell waits the drain time", 0, errors.New("throttled"), 0, seconds(1), time.Second, 1500 * time.Millisecond},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			ev := &events{}
			tr := &lingering{traffic: newTraffic(), ev: ev, linger: tt.linger, err: tt.err}
			env := newEnv(fixed("fakeenv", &environment{ev: ev}), fixed("faketraffic", tr))
			start := time.Now()
			var off time.Time
			if tt.offAgo >= 0 {
				off = start.Add(-tt.offAgo)
			}
			_, err := env.ExecuteActivity(activities.DecommissionName, activities.DecommissionInput{
				StepInput: activities.StepInput{Ref: ref, Provider: provider("fakeenv")},
				Traffic:   provider("faketraffic"),
				Color:     providers.Blue,
				Drain:     tt.drain,
				Off:       off,
			})
			if err != nil {
				t.Fatalf("Decommission = %v", err)
			}
			got, at := ev.get()
			if want := []string{"linger shop-api blue", "decommission shop-api blue"}; !slices.Equal(got, want) {
				t.Fatalf("events = %q, want %q", got, want)
			}
			if stopped := at[len(at)-1].Sub(start); stopped < tt.wantMin || stopped > tt.wantMax {
				t.Errorf("pool stopped after %v, want between %v and %v", stopped, tt.wantMin, tt.wantMax)
			}
		})
	}
}

// planChecker is a provider that refuses plans holding green below 100% for
// less than min.
type planChecker struct {
	*traffic
	min  time.Duration
	seen [][]providers.PlanStep
}

func (p *planChecker) CheckPlan(_ context.Context, app string, plan []providers.PlanStep) error {
	p.seen = append(p.seen, plan)
	for _, s := range plan {
		if s.Hold > 0 && s.Green < 100 && s.Hold < p.min {
			return providers.BadConfig("plan[%d] (%s at %d%% green): %s is shorter than %s", s.Index, s.Kind, s.Green, s.Hold, p.min)
		}
	}
	return nil
}

func TestPreflight(t *testing.T) {
	w := func(n int) *int { return &n }
	plan := providers.PlanSteps([]spec.Step{
		{Provision: &spec.ProvisionStep{}},
		{SetWeight: w(10)},
		{Soak: &spec.SoakStep{Duration: seconds(30)}},
		{Analysis: &spec.AnalysisStep{Window: seconds(600)}},
		{Promote: &spec.PromoteStep{}},
		{Soak: &spec.SoakStep{Duration: seconds(5)}},
	})
	ps := func(i int, kind string, green int, hold time.Duration) providers.PlanStep {
		return providers.PlanStep{Index: i, Kind: kind, Green: green, Hold: hold}
	}
	want := []providers.PlanStep{ps(0, "provision", 0, 0), ps(1, "setWeight", 10, 0), ps(2, "soak", 10, 30*time.Second),
		ps(3, "analysis", 10, 10*time.Minute), ps(4, "promote", 100, 0), ps(5, "soak", 100, 5*time.Second)}
	if !slices.Equal(plan, want) {
		t.Fatalf("PlanSteps = %+v\nwant %+v", plan, want)
	}

	t.Run("a plan the provider refuses fails permanently with its words", func(t *testing.T) {
		pc := &planChecker{traffic: newTraffic(), min: time.Minute}
		env := newEnv(fixed("checked", pc))
		_, err := env.ExecuteActivity(activities.PreflightName, activities.PreflightInput{
			App: "shop-api", Traffic: provider("checked"), Plan: plan,
		})
		app := appError(t, err)
		if !app.NonRetryable() || app.Type() != activities.ErrTypeBadConfig {
			t.Errorf("error type %s (non-retryable %t), want a permanent BadConfig", app.Type(), app.NonRetryable())
		}
		if want := "preflight: traffic provider checked: plan[2] (soak at 10% green): 30s is shorter than 1m0s"; app.Message() != want {
			t.Errorf("message %q, want %q", app.Message(), want)
		}
	})
	t.Run("a provider without a check passes", func(t *testing.T) {
		env := newEnv(fixed("faketraffic", newTraffic()))
		if _, err := env.ExecuteActivity(activities.PreflightName, activities.PreflightInput{
			App: "shop-api", Traffic: provider("faketraffic"), Plan: plan,
		}); err != nil {
			t.Fatalf("Preflight = %v", err)
		}
	})
}

// scoped is a traffic provider whose views keep each release's weight apart,
// keyed by version: the plain provider's own weight is under "".
type scoped struct {
	*traffic
	version string
}

func (s scoped) For(r providers.Ref) providers.Traffic { return scoped{s.traffic, r.Version} }
func (s scoped) SetWeight(ctx context.Context, app string, green int) error {
	return s.traffic.SetWeight(ctx, app+"@"+s.version, green)
}
func (s scoped) Weight(ctx context.Context, app string) (int, error) {
	return s.traffic.Weight(ctx, app+"@"+s.version)
}

func TestSetWeightGoesThroughTheReleasesView(t *testing.T) {
	tr := newTraffic()
	env := newEnv(fixed("scoped", scoped{traffic: tr}))
	if _, err := env.ExecuteActivity(activities.SetWeightName, activities.WeightInput{App: ref.App, Provider: provider("scoped"), Green: 100, Ref: ref}); err != nil {
		t.Fatal(err)
	}
	// A history from before WeightInput had Ref: the plain provider.
	if _, err := env.ExecuteActivity(activities.SetWeightName, activities.WeightInput{App: ref.App, Provider: provider("scoped"), Green: 10}); err != nil {
		t.Fatal(err)
	}
	want := map[string]int{"shop-api@1.4.0": 100, "shop-api@": 10}
	if fmt.Sprint(tr.weights) != fmt.Sprint(want) {
		t.Errorf("weights %v; want %v", tr.weights, want)
	}
}
