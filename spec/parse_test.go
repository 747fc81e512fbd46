package spec

import (
	"encoding/json"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"gopkg.in/yaml.v3"
)

func intp(i int) *int { return &i }

func dur(s string) Duration {
	d, err := time.ParseDuration(s)
	if err != nil {
		panic(err)
	}
	return Duration(d)
}

const fullSpec = `# a release with every kind of step
app: shop-api
version: 1.4.0
previousVersion: 1.3.2
providers:
  environment:
    type: memory
    settings:
      instances: 3
      image: shop-api:1.4.0
  traffic: {type: memory}
  migrations: {type: memory}
  analysis:
    type: memory
    settings: {maxErrorRate: 0.01, metrics: [errors, latency], labels: {team: shop}}
  notifications:
    - type: log
    - type: webhook
      settings: {urlEnv: HOOK_URL}
plan:
  - provision
  - migrate: {phase: expand}
  - validate:
      smoke: [/healthz, /api/products]
  - setWeight: 10
  - soak: {duration: 5m}
  - pause
  - setWeight: 25
  - pause: {duration: 2m}
  - analysis
  - approval
  - promote
  - standby
  - migrate: {phase: contract, timeout: 10m}
  - decommission
`

func fullRelease() Release {
	return Release{
		App:             "shop-api",
		Version:         "1.4.0",
		PreviousVersion: "1.3.2",
		Providers: Providers{
			Environment: Provider{Type: "memory", Settings: map[string]any{"instances": float64(3), "image": "shop-api:1.4.0"}},
			Traffic:     Provider{Type: "memory"},
			Migrations:  &Provider{Type: "memory"},
			Analysis: Provider{Type: "memory", Settings: map[string]any{
				"maxErrorRate": 0.01,
				"metrics":      []any{"errors", "latency"},
				"labels":       map[string]any{"team": "shop"},
			}},
			Notifications: []Provider{
				{Type: "log"},
				{Type: "webhook", Settings: map[string]any{"urlEnv": "HOOK_URL"}},
			},
		},
		Plan: []Step{
			{Provision: &ProvisionStep{Timeout: dur("15m")}},
			{Migrate: &MigrateStep{Phase: PhaseExpand, Timeout: dur("30m")}},
			{Validate: &ValidateStep{Smoke: []string{"/healthz", "/api/products"}, Timeout: dur("5m")}},
			{SetWeight: intp(10)},
			{Soak: &SoakStep{Duration: dur("5m"), Interval: dur("10s")}},
			{Pause: &PauseStep{}},
			{SetWeight: intp(25)},
			{Pause: &PauseStep{Duration: dur("2m")}},
			{Analysis: &AnalysisStep{Window: dur("10m"), OnInconclusive: ActionPause}},
			{Approval: &ApprovalStep{Timeout: dur("24h"), OnTimeout: ActionRollback}},
			{Promote: &PromoteStep{}},
			{Standby: &StandbyStep{Duration: dur("15m")}},
			{Migrate: &MigrateStep{Phase: PhaseContract, Timeout: dur("10m")}},
			{Decommission: &DecommissionStep{Timeout: dur("15m")}},
		},
	}
}

func TestParseFullSpec(t *testing.T) {
	got, err := Parse([]byte(fullSpec), nil)
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	want := fullRelease()
	if !reflect.DeepEqual(got, want) {
		gj, _ := json.MarshalIndent(got, "", "  ")
		wj, _ := json.MarshalIndent(want, "", "  ")
		t.Fatalf("resolved release differs\n got: %s\nwant: %s", gj, wj)
	}
}

// header is a valid spec up to its plan.
const header = `app: shop-api
version: 1.4.0
providers:
  environment: {type: memory}
  traffic: {type: memory}
  migrations: {type: memory}
  analysis: {type: memory}
`

// withPlan writes a spec whose plan has one line per step.
func withPlan(steps ...string) string {
	var b strings.Builder
	b.WriteString(header)
	b.WriteString("plan:\n")
	for _, s := range steps {
		b.WriteString("  - " + s + "\n")
	}
	return b.String()
}

// defaultCases are specs and the plans Parse resolves them to.
func defaultCases() []struct {
	name string
	src  string
	want []Step
} {
	return []struct {
		name string
		src  string
		want []Step
	}{
		{"no plan", header, DefaultPlan()},
		{"empty plan", header + "plan: []\n", DefaultPlan()},
		{"null plan", header + "plan:\n", DefaultPlan()},
		{
			"each default",
			withPlan("provision", "migrate: {phase: expand}", "validate", "setWeight: 10", "soak: {duration: 3m}",
				"analysis", "approval", "promote", "standby", "decommission"),
			[]Step{
				{Provision: &ProvisionStep{Timeout: dur("15m")}},
				{Migrate: &MigrateStep{Phase: PhaseExpand, Timeout: dur("30m")}},
				{Validate: &ValidateStep{Timeout: dur("5m")}},
				{SetWeight: intp(10)},
				{Soak: &SoakStep{Duration: dur("3m"), Interval: dur("10s")}},
				{Analysis: &AnalysisStep{Window: dur("10m"), OnInconclusive: ActionPause}},
				{Approval: &ApprovalStep{Timeout: dur("24h"), OnTimeout: ActionRollback}},
				{Promote: &PromoteStep{}},
				{Standby: &StandbyStep{Duration: dur("15m")}},
				{Decommission: &DecommissionStep{Timeout: dur("15m")}},
			},
		},
		{
			"written settings kept",
			withPlan("provision: {timeout: 20m}", "validate: {timeout: 1m}", "setWeight: 0", "soak: {duration: 90s, interval: 30s}",
				"setWeight: 5", "analysis: {window: 5m, onInconclusive: rollback}", "approval: {timeout: 1h, onTimeout: continue}",
				"promote: {}", "standby: {duration: 1h}", "decommission: {timeout: 2m}"),
			[]Step{
				{Provision: &ProvisionStep{Timeout: dur("20m")}},
				{Validate: &ValidateStep{Timeout: dur("1m")}},
				{SetWeight: intp(0)},
				{Soak: &SoakStep{Duration: dur("90s"), Interval: dur("30s")}},
				{SetWeight: intp(5)},
				{Analysis: &AnalysisStep{Window: dur("5m"), OnInconclusive: ActionRollback}},
				{Approval: &ApprovalStep{Timeout: dur("1h"), OnTimeout: ActionContinue}},
				{Promote: &PromoteStep{}},
				{Standby: &StandbyStep{Duration: dur("1h")}},
				{Decommission: &DecommissionStep{Timeout: dur("2m")}},
			},
		},
		{
			"a soak shorter than the default interval is guarded once",
			withPlan("provision", "validate", "soak: {duration: 5s}", "promote"),
			[]Step{
				{Provision: &ProvisionStep{Timeout: dur("15m")}},
				{Validate: &ValidateStep{Timeout: dur("5m")}},
				{Soak: &SoakStep{Duration: dur("5s"), Interval: dur("5s")}},
				{Promote: &PromoteStep{}},
			},
		},
	}
}

func TestParseDefaults(t *testing.T) {
	for _, tt := range defaultCases() {
		t.Run(tt.name, func(t *testing.T) {
			r, err := Parse([]byte(tt.src), nil)
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			if !reflect.DeepEqual(r.Plan, tt.want) {
				t.Errorf("plan:\n%s\nwant:\n%s", describeAll(r.Plan), describeAll(tt.want))
			}
		})
	}
}

func describeAll(plan []Step) string {
	b, _ := json.Marshal(plan)
	return string(b)
}

func TestDefaultPlan(t *testing.T) {
	want := []string{
		"provision green",
		"migrate (expand)",
		"validate green (health)",
		"shift 10% of traffic to green",
		"soak 5m0s, guard every 10s (too little traffic: continue)",
		"shift 50% of traffic to green",
		"compare blue vs green for up to 10m0s, stopping once decided (inconclusive: pause)",
		"wait for approval (timeout 24h0m0s, then rollback)",
		"promote green to 100% (blue stays warm)",
		"standby 15m0s (rollback returns traffic to blue at once)",
		"migrate (contract)",
		"decommission blue",
	}
	plan := DefaultPlan()
	var got []string
	for _, s := range plan {
		got = append(got, s.Describe())
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("default plan:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	timeouts := []string{"15m0s", "30m0s", "5m0s", "0s", "0s", "0s", "0s", "24h0m0s", "0s", "0s", "30m0s", "15m0s"}
	for i, s := range plan {
		if s.Timeout().String() != timeouts[i] {
			t.Errorf("step %d timeout %s, want %s", i, s.Timeout(), timeouts[i])
		}
	}
	// Every default is filled in: filling them again changes nothing.
	if again := (Release{Plan: plan}).WithDefaults().Plan; !reflect.DeepEqual(again, plan) {
		t.Errorf("DefaultPlan is missing defaults: %s", describeAll(again))
	}
	// The default plan is valid.
	r := Release{App: "a", Version: "1", Providers: Providers{
		Environment: Provider{Type: "m"}, Traffic: Provider{Type: "m"}, Analysis: Provider{Type: "m"},
	}, Plan: plan}
	if ps := r.Validate(nil); ps != nil {
		t.Errorf("default plan has problems:\n%v", ps)
	}
	// Each call returns its own steps.
	*DefaultPlan()[3].SetWeight = 99
	if *DefaultPlan()[3].SetWeight != 10 {
		t.Error("DefaultPlan shares its steps between calls")
	}
}

// brief renders problems without lines: "path: message".
func brief(ps Problems) []string {
	out := make([]string, len(ps))
	for i, p := range ps {
		p.Line = 0
		out[i] = p.String()
	}
	return out
}

func problemsOf(t *testing.T, err error) Problems {
	t.Helper()
	if err == nil {
		t.Fatal("Parse accepted the spec; want problems")
	}
	ps, ok := err.(Problems)
	if !ok {
		t.Fatalf("error is %T (%v), want Problems", err, err)
	}
	return ps
}

// problemCases are specs with what is wrong with them, one rule each.
func problemCases() []struct {
	name string
	src  string
	want []string
} {
	valid := []string{"provision", "validate", "setWeight: 10", "promote"}
	return []struct {
		name string
		src  string
		want []string
	}{
		// The document.
		{"empty input", "", []string{"the spec is empty; write a mapping with app, version, providers and plan"}},
		{"only comments", "# nothing yet\n", []string{"the spec is empty; write a mapping with app, version, providers and plan"}},
		{"a list", "- provision\n", []string{"the spec must be a mapping with app, version, providers and plan; found a list"}},
		{"a scalar", "hello\n", []string{`the spec must be a mapping with app, version, providers and plan; found "hello"`}},
		{"not YAML", "app: [shop\n", []string{"the YAML is not well-formed: did not find expected ',' or ']'"}},
		{"two documents", withPlan(valid...) + "---\napp: other\n", []string{"a second YAML document; write one release per file"}},

		// Top-level fields.
		{"app missing", strings.Replace(withPlan(valid...), "app: shop-api\n", "", 1), []string{"app: required"}},
		{"app not a name", strings.Replace(withPlan(valid...), "app: shop-api", "app: Shop_API", 1), []string{
			`app: "Shop_API" is not a valid app name; use lower-case letters, digits and dashes, at most 63, starting and ending with a letter or digit (like shop-api)`}},
		{"app ends in a dash", strings.Replace(withPlan(valid...), "app: shop-api", "app: shop-", 1), []string{
			`app: "shop-" is not a valid app name; use lower-case letters, digits and dashes, at most 63, starting and ending with a letter or digit (like shop-api)`}},
		{"app too long", strings.Replace(withPlan(valid...), "app: shop-api", "app: "+strings.Repeat("a", 64), 1), []string{
			`app: "` + strings.Repeat("a", 64) + `" is not a valid app name; use lower-case letters, digits and dashes, at most 63, starting and ending with a letter or digit (like shop-api)`}},
		{"app a list", strings.Replace(withPlan(valid...), "app: shop-api", "app: [shop]", 1), []string{"app: expected text; found a list"}},
		{"version missing", strings.Replace(withPlan(valid...), "version: 1.4.0\n", "", 1), []string{"version: required"}},
		{"version with a space", strings.Replace(withPlan(valid...), "version: 1.4.0", "version: 1.4 beta", 1), []string{
			`version: "1.4 beta" contains whitespace; write the version without spaces, like 1.4.0`}},
		{"version too long", strings.Replace(withPlan(valid...), "version: 1.4.0", "version: "+strings.Repeat("1", 129), 1), []string{
			"version: 129 characters is too long; write at most 128"}},
		{"previous version with a tab", strings.Replace(withPlan(valid...), "version: 1.4.0", "version: 1.4.0\npreviousVersion: \"1.3\\t2\"", 1), []string{
			`previousVersion: "1.3\t2" contains whitespace; write the version without spaces, like 1.4.0`}},
		{"version naming another file", strings.Replace(withPlan(valid...), "version: 1.4.0", "version: ../../etc/x", 1), []string{
			`version: "../../etc/x" is not a valid version; use letters, digits and . _ + - only, starting with a letter or digit (like 1.4.0 or 2024.05.1-rc.1+b7)`}},
		{"version with an escape", strings.Replace(withPlan(valid...), "version: 1.4.0", `version: "1.0\e[31m"`, 1), []string{
			`version: "1.0\x1b[31m" is not a valid version; use letters, digits and . _ + - only, starting with a letter or digit (like 1.4.0 or 2024.05.1-rc.1+b7)`}},
		{"previous version naming another file", strings.Replace(withPlan(valid...), "version: 1.4.0", "version: 1.4.0\npreviousVersion: 1.3/../../x", 1), []string{
			`previousVersion: "1.3/../../x" is not a valid version; use letters, digits and . _ + - only, starting with a letter or digit (like 1.4.0 or 2024.05.1-rc.1+b7)`}},
		{"unknown top-level field", withPlan(valid...) + "colour: blue\n", []string{
			"colour: unknown field; known fields: app, version, previousVersion, providers, plan, allowSelfApproval, people, approvers, requests, judge"}},
		{"duplicate field", strings.Replace(withPlan(valid...), "version: 1.4.0", "version: 1.4.0\nversion: 1.5.0", 1), []string{
			"version: duplicate field; it is already set on line 2"}},

		// Booleans are true or false, numbers decimal digits: not YAML 1.1's
		// yes and on, nor yaml.v3's hex, octal and underscores.
		{"self-approval true", withPlan(valid...) + "allowSelfApproval: true\n", nil},
		{"self-approval false", withPlan(valid...) + "allowSelfApproval: false\n", nil},
		{"self-approval tagged as a boolean", withPlan(valid...) + "allowSelfApproval: !!bool true\n", nil},
		{"self-approval yes", withPlan(valid...) + "allowSelfApproval: yes\n", []string{`allowSelfApproval: "yes" is not true or false`}},
		{"self-approval on", withPlan(valid...) + "allowSelfApproval: on\n", []string{`allowSelfApproval: "on" is not true or false`}},
		{"self-approval Y", withPlan(valid...) + "allowSelfApproval: Y\n", []string{`allowSelfApproval: "Y" is not true or false`}},
		{"self-approval True", withPlan(valid...) + "allowSelfApproval: True\n", []string{`allowSelfApproval: "True" is not true or false`}},
		{"self-approval 1", withPlan(valid...) + "allowSelfApproval: 1\n", []string{`allowSelfApproval: "1" is not true or false`}},
		{"self-approval quoted", withPlan(valid...) + "allowSelfApproval: \"true\"\n", []string{
			`allowSelfApproval: "true" is text, not true or false; write it without quotes`}},
		{"self-approval tagged as text", withPlan(valid...) + "allowSelfApproval: !!str true\n", []string{
			`allowSelfApproval: "true" is text, not true or false; write it without quotes`}},
		{"self-approval a list", withPlan(valid...) + "allowSelfApproval: [true]\n", []string{"allowSelfApproval: a list is not true or false"}},
		{"earlyStop on", withPlan("provision", "validate", "setWeight: 10", "analysis: {earlyStop: on}", "promote"), []string{
			`plan[3].analysis.earlyStop: "on" is not true or false`}},
		{"earlyStop true", withPlan("provision", "validate", "setWeight: 10", "analysis: {earlyStop: true}", "promote"), nil},
		{"weight in hex", withPlan("provision", "validate", "setWeight: 0x10", "promote"), []string{
			`plan[2].setWeight: "0x10" is not a whole number in decimal digits (like 10)`}},
		{"weight in octal", withPlan("provision", "validate", "setWeight: 0o17", "promote"), []string{
			`plan[2].setWeight: "0o17" is not a whole number in decimal digits (like 10)`}},
		{"weight with underscores", withPlan("provision", "validate", "setWeight: 1_0", "promote"), []string{
			`plan[2].setWeight: "1_0" is not a whole number in decimal digits (like 10)`}},
		{"weight with a plus", withPlan("provision", "validate", "setWeight: +5", "promote"), []string{
			`plan[2].setWeight: "+5" is not a whole number in decimal digits (like 10)`}},
		{"weight quoted", withPlan("provision", "validate", `setWeight: "10"`, "promote"), []string{`plan[2].setWeight: "10" is not a whole number`}},
		{"weight huge", withPlan("provision", "validate", "setWeight: 99999999999999999999", "promote"), []string{
			`plan[2].setWeight: "99999999999999999999" is not a whole number`}},
		{"weight with a leading zero", withPlan("provision", "validate", "setWeight: 010", "promote"), nil},

		// Providers.
		{"provider types missing", "app: shop-api\nversion: 1.4.0\nproviders:\n  migrations: {}\n  notifications: [{type: log}, {settings: {a: 1}}]\nplan: [provision, validate, promote]\n", []string{
			// Missing providers sort at the providers line, before those written.
			"providers.environment.type: required",
			"providers.traffic.type: required",
			"providers.analysis.type: required",
			"providers.migrations.type: required",
			"providers.notifications[1].type: required",
		}},
		{"providers a list", "app: shop-api\nversion: 1.4.0\nproviders: [memory]\nplan: [provision, validate, promote]\n", []string{
			"providers: expected a mapping with fields environment, traffic, migrations, analysis, notifications, ledger; found a list"}},
		{"unknown provider kind", strings.Replace(withPlan(valid...), "providers:\n", "providers:\n  database: {type: pg}\n", 1), []string{
			"providers.database: unknown field; known fields: environment, traffic, migrations, analysis, notifications, ledger"}},
		{"unknown field in a provider", strings.Replace(withPlan(valid...), "traffic: {type: memory}", "traffic: {type: memory, port: 80}", 1), []string{
			"providers.traffic.port: unknown field; known fields: type, settings"}},
		{"settings are free-form", strings.Replace(withPlan(valid...), "traffic: {type: memory}", "traffic: {type: memory, settings: {anything: [goes, {here: 1}]}}", 1), nil},
		{"settings a list", strings.Replace(withPlan(valid...), "traffic: {type: memory}", "traffic: {type: memory, settings: [a]}", 1), []string{
			"providers.traffic.settings: expected a mapping; found a list"}},
		{"notifications a mapping", strings.Replace(withPlan(valid...), "providers:\n", "providers:\n  notifications: {type: log}\n", 1), []string{
			"providers.notifications: expected a list; found a mapping"}},

		// Step shapes.
		{"empty step mapping", withPlan("provision", "validate", "{}", "promote"), []string{"plan[2]: empty step"}},
		{"empty step", withPlan("provision", "validate", "", "promote"), []string{"plan[2]: empty step"}},
		{"two kinds", withPlan("provision", "validate", "{setWeight: 10, soak: {duration: 5m}}", "promote"), []string{
			"plan[2]: a step has exactly one kind; found setWeight and soak"}},
		{"unknown kind", withPlan("provision", "validate", "shift: 10", "promote"), []string{
			`plan[2]: unknown step kind "shift"; known kinds: provision, migrate, validate, setWeight, soak, pause, analysis, approval, promote, standby, decommission`}},
		{"unknown bare kind", withPlan("provision", "validate", "rollout", "promote"), []string{
			`plan[2]: unknown step kind "rollout"; known kinds: provision, migrate, validate, setWeight, soak, pause, analysis, approval, promote, standby, decommission`}},
		{"a step that is a list", withPlan("provision", "validate", "[promote]", "promote"), []string{
			"plan[2]: expected a step: a kind name (like promote) or a mapping with one kind (like setWeight: 10); found a list"}},
		{"plan a mapping", header + "plan: {provision: {}}\n", []string{"plan: expected a list; found a mapping"}},
		{"unknown field in a step", withPlan("provision", "validate", "setWeight: 10", "soak: {durration: 5m}", "promote"), []string{
			// The missing duration is reported at the soak key, which comes first.
			"plan[3].soak.duration: required",
			"plan[3].soak.durration: unknown field; known fields: duration, interval, extend, onInconclusive",
		}},
		{"unknown field in a promote", withPlan("provision", "validate", "promote: {force: true}"), []string{
			"plan[2].promote.force: unknown field; known fields: none"}},
		{"settings on a step written as text", withPlan("provision", "validate", "soak: 5m", "promote"), []string{
			`plan[2].soak: expected a mapping with fields duration, interval, extend, onInconclusive; found "5m"`}},

		// setWeight.
		{"weight not a number", withPlan("provision", "validate", "setWeight: ten", "promote"), []string{`plan[2].setWeight: "ten" is not a whole number`}},
		{"weight a fraction", withPlan("provision", "validate", "setWeight: 10.5", "promote"), []string{`plan[2].setWeight: "10.5" is not a whole number`}},
		{"weight missing", withPlan("provision", "validate", "setWeight", "promote"), []string{"plan[2].setWeight: required; write the weight, like setWeight: 10"}},
		{"weight above 100", withPlan("provision", "validate", "setWeight: 10", "setWeight: 120", "promote"), []string{"plan[3].setWeight: 120 is above 100"}},
		{"weight below 0", withPlan("provision", "validate", "setWeight: -5", "promote"), []string{"plan[2].setWeight: -5 is below 0"}},
		{"weight 100", withPlan("provision", "validate", "setWeight: 10", "setWeight: 50", "setWeight: 75", "setWeight: 100", "promote"), []string{
			"plan[5].setWeight: 100 sends all traffic to green; use a promote step"}},
		{"weight goes down", withPlan("provision", "validate", "setWeight: 10", "setWeight: 50", "pause", "soak: {duration: 1m}", "setWeight: 10", "promote"), []string{
			"plan[6].setWeight: 10 is below the previous weight 50 (weights only go down by rollback)"}},
		{"weight after promote", withPlan("provision", "validate", "promote", "setWeight: 10"), []string{
			"plan[3].setWeight: comes after promote, which already sent all traffic to green; remove it"}},
		{"weight before validate", withPlan("provision", "setWeight: 10", "validate", "promote"), []string{
			"plan[1].setWeight: shifts traffic before any validate step; validate green first"}},

		// soak and pause.
		{"bare soak", withPlan("provision", "validate", "setWeight: 10", "setWeight: 20", "soak", "promote"), []string{"plan[4].soak.duration: required"}},
		{"soak duration not a duration", withPlan("provision", "validate", "setWeight: 10", "setWeight: 20", `soak: {duration: 5 minutes}`, "promote"), []string{
			`plan[4].soak.duration: "5 minutes" is not a duration (write it like 90s, 5m or 1h30m)`}},
		{"soak duration without a unit", withPlan("provision", "validate", "soak: {duration: 90}", "promote"), []string{
			`plan[2].soak.duration: "90" is not a duration (write it like 90s, 5m or 1h30m)`}},
		{"soak duration a list", withPlan("provision", "validate", "soak: {duration: [5m]}", "promote"), []string{
			"plan[2].soak.duration: expected a duration like 90s, 5m or 1h30m; found a list"}},
		{"soak duration zero", withPlan("provision", "validate", "soak: {duration: 0s}", "promote"), []string{"plan[2].soak.duration: required"}},
		{"negative duration", withPlan("provision", "validate", "soak: {duration: -5m}", "promote"), []string{`plan[2].soak.duration: "-5m" is negative`}},
		{"soak interval too short", withPlan("provision", "validate", "soak: {duration: 5m, interval: 500ms}", "promote"), []string{
			"plan[2].soak.interval: 500ms is below 1s; guard every 1s to 1m"}},
		{"soak interval too long", withPlan("provision", "validate", "soak: {duration: 5m, interval: 2m}", "promote"), []string{
			"plan[2].soak.interval: 2m0s is above 1m0s; guard every 1s to 1m"}},
		{"soak interval longer than the soak", withPlan("provision", "validate", "soak: {duration: 20s, interval: 30s}", "promote"), []string{
			"plan[2].soak.interval: 30s is longer than the soak duration 20s; guard at least once during the soak"}},
		{"soak interval zero", withPlan("provision", "validate", "soak: {duration: 5m, interval: 0s}", "promote"), []string{
			"plan[2].soak.interval: 0s is below 1s; guard every 1s to 1m"}},
		{"pause until resumed", withPlan("provision", "validate", "pause", "pause: {duration: 0s}", "pause: {}", "promote"), nil},

		// migrate.
		{"bare migrate", withPlan("migrate", "provision", "validate", "promote"), []string{"plan[0].migrate.phase: required; write expand or contract"}},
		{"unknown phase", withPlan("migrate: {phase: up}", "provision", "validate", "promote"), []string{`plan[0].migrate.phase: "up" is not a phase; write expand or contract`}},
		{"two expands", withPlan("provision", "migrate: {phase: expand}", "migrate: {phase: expand}", "validate", "promote"), []string{
			"plan[2].migrate: a second expand phase; expand runs once"}},
		{"expand after traffic", withPlan("provision", "validate", "setWeight: 10", "migrate: {phase: expand}", "promote"), []string{
			"plan[3].migrate: expand runs after traffic reaches green at plan[2]; run expand before the first setWeight"}},
		{"expand after promote", withPlan("provision", "validate", "promote", "migrate: {phase: expand}"), []string{
			"plan[3].migrate: expand runs after promote; run expand before promote"}},
		{"contract before promote", withPlan("provision", "validate", "migrate: {phase: contract}", "promote", "standby"), []string{
			"plan[2].migrate: contract runs only after promote and the standby window"}},
		{"contract before standby", withPlan("provision", "validate", "promote", "migrate: {phase: contract}", "standby"), []string{
			"plan[3].migrate: contract runs only after promote and the standby window"}},
		{"two contracts", withPlan("provision", "validate", "promote", "standby", "migrate: {phase: contract}", "migrate: {phase: contract}"), []string{
			"plan[5].migrate: a second contract phase; contract runs once"}},

		// Timeouts and durations written as 0.
		{"zero timeouts", withPlan("provision: {timeout: 0s}", "migrate: {phase: expand, timeout: 0s}", "validate: {timeout: 0s}", "promote", "decommission: {timeout: 0s}"), []string{
			"plan[0].provision.timeout: 0s is not above 0; write a duration like 15m",
			"plan[1].migrate.timeout: 0s is not above 0; write a duration like 30m",
			"plan[2].validate.timeout: 0s is not above 0; write a duration like 5m",
			"plan[4].decommission.timeout: 0s is not above 0; write a duration like 15m",
		}},
		{"zero standby", withPlan("provision", "validate", "promote", "standby: {duration: 0s}"), []string{
			"plan[3].standby.duration: 0s is not above 0; write a duration like 15m"}},

		// analysis and approval.
		{"analysis settings", withPlan("provision", "validate", "setWeight: 10", "analysis: {window: 0s, onInconclusive: wait}", "promote"), []string{
			"plan[3].analysis.window: 0s is not above 0; write a duration like 1m",
			`plan[3].analysis.onInconclusive: "wait" is not allowed; write pause or rollback`,
		}},
		{"analysis onInconclusive empty", withPlan("provision", "validate", "setWeight: 10", `analysis: {onInconclusive: ""}`, "promote"), []string{
			"plan[3].analysis.onInconclusive: required; write pause or rollback"}},
		{"analysis before traffic", withPlan("provision", "validate", "analysis", "setWeight: 10", "promote"), []string{
			"plan[2].analysis: no traffic reaches green yet; put analysis after a setWeight step"}},
		{"analysis at weight 0", withPlan("provision", "validate", "setWeight: 0", "analysis", "promote"), []string{
			"plan[3].analysis: no traffic reaches green yet; put analysis after a setWeight step"}},
		{"analysis after promote", withPlan("provision", "validate", "setWeight: 10", "promote", "analysis"), []string{
			"plan[4].analysis: comes after promote; compare blue vs green before promote, while both serve traffic"}},
		{"approval settings", withPlan("provision", "validate", "approval: {timeout: 0s, onTimeout: abort}", "promote"), []string{
			"plan[2].approval.timeout: 0s is not above 0; write a duration like 24h",
			`plan[2].approval.onTimeout: "abort" is not allowed; write rollback or continue`,
		}},
		{"approval after promote is fine", withPlan("provision", "validate", "promote", "approval", "decommission"), nil},

		// validate.
		{"smoke path", withPlan("provision", "validate: {smoke: [/ok, healthz]}", "promote"), []string{
			`plan[1].validate.smoke[1]: "healthz" is not an HTTP path; write it like /healthz`}},

		// Order.
		{"no provision", withPlan("validate", "promote"), []string{"plan: no provision step; start the plan with provision"}},
		{"no promote", withPlan("provision", "validate", "setWeight: 10"), []string{"plan: no promote step; add promote after the traffic steps"}},
		{"no provision and no promote", withPlan("pause"), []string{
			"plan: no provision step; start the plan with provision",
			"plan: no promote step; add promote after the traffic steps",
		}},
		{"two provisions", withPlan("provision", "validate", "provision", "promote"), []string{
			"plan[2].provision: a second provision step; green is provisioned once, at plan[0]"}},
		{"validate before provision", withPlan("migrate: {phase: expand}", "validate", "provision", "promote"), []string{
			"plan[2].provision: comes after plan[1] (validate); provision green before any validate, setWeight, soak, analysis, approval or promote"}},
		{"pause before provision is fine", withPlan("pause", "provision", "validate", "promote"), nil},
		{"two promotes", withPlan("provision", "validate", "promote", "promote"), []string{
			"plan[3].promote: a second promote step; the plan promotes once, at plan[2]"}},
		{"promote before validate", withPlan("provision", "migrate: {phase: expand}", "pause", "approval", "promote", "validate"), []string{
			"plan[4].promote: promotes before any validate step"}},
		{"standby before promote", withPlan("provision", "validate", "standby", "promote"), []string{
			"plan[2].standby: comes before promote; standby keeps blue warm after promote"}},
		{"standby after decommission", withPlan("provision", "validate", "promote", "decommission", "standby"), []string{
			"plan[4].standby: comes after decommission, when blue is gone; put standby before decommission"}},
		{"decommission before promote", withPlan("provision", "validate", "decommission", "promote"), []string{
			"plan[2].decommission: comes before promote; decommission blue only after promote"}},
		{"two decommissions", withPlan("provision", "validate", "promote", "decommission", "decommission"), []string{
			"plan[4].decommission: a second decommission step; blue is decommissioned once"}},
	}
}

// TestParseProblems checks each rule's path and message.
func TestParseProblems(t *testing.T) {
	for _, tt := range problemCases() {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse([]byte(tt.src), nil)
			if tt.want == nil {
				if err != nil {
					t.Fatalf("Parse: %v", err)
				}
				return
			}
			got := brief(problemsOf(t, err))
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("problems:\n  %s\nwant:\n  %s", strings.Join(got, "\n  "), strings.Join(tt.want, "\n  "))
			}
		})
	}
}

// TestParseProblemsInFileOrder checks that every problem is reported, with its
// line, in the order the file has them.
func TestParseProblemsInFileOrder(t *testing.T) {
	_, err := Parse([]byte(fileOrderSpec), nil)
	if got := problemsOf(t, err).Error(); got != fileOrderProblems {
		t.Errorf("problems:\n%s\n\nwant:\n%s", got, fileOrderProblems)
	}
}

// fileOrderSpec has problems all through it.
const fileOrderSpec = `app: Shop API
version: 1.4.0
colour: blue
providers:
  environment: {type: memory}
  traffic: {typ: memory}
  analysis: {type: memory}
plan:
  - provision
  - validate
  - setWeight: 10
  - setWeight: 120
  - soak:
      durration: 5m
  - soak: {duration: 5 minutes}
  - {setWeight: 20, soak: {duration: 1m}}
  - shift: 20
  - promote
  - setWeight: 30
`

// fileOrderProblems is what Parse says of fileOrderSpec.
const fileOrderProblems = `app (line 1): "Shop API" is not a valid app name; use lower-case letters, digits and dashes, at most 63, starting and ending with a letter or digit (like shop-api)
colour (line 3): unknown field; known fields: app, version, previousVersion, providers, plan, allowSelfApproval, people, approvers, requests, judge
providers.traffic.type (line 6): required
providers.traffic.typ (line 6): unknown field; known fields: type, settings
plan[3].setWeight (line 12): 120 is above 100
plan[4].soak.duration (line 13): required
plan[4].soak.durration (line 14): unknown field; known fields: duration, interval, extend, onInconclusive
plan[5].soak.duration (line 15): "5 minutes" is not a duration (write it like 90s, 5m or 1h30m)
plan[6] (line 16): a step has exactly one kind; found setWeight and soak
plan[7] (line 17): unknown step kind "shift"; known kinds: provision, migrate, validate, setWeight, soak, pause, analysis, approval, promote, standby, decommission
plan[9].setWeight (line 19): comes after promote, which already sent all traffic to green; remove it`

// lineCases are specs with the one problem Parse finds, line and all.
func lineCases() []struct {
	name string
	src  string
	want string
} {
	return []struct {
		name string
		src  string
		want string
	}{
		{"syntax", "app: shop-api\nversion: 1.4.0\n  bad: x\n", "line 3: the YAML is not well-formed: mapping values are not allowed in this context"},
		{"second document", "app: a\n---\napp: b\n", "line 2: a second YAML document; write one release per file"},
		{"not a mapping", "\n\n- a\n", "line 3: the spec must be a mapping with app, version, providers and plan; found a list"},
		{"bare soak points at the step", withPlan("provision", "validate", "soak", "promote"), "plan[2].soak.duration (line 11): required"},
		{"missing type points at the provider", strings.Replace(withPlan("provision", "validate", "promote"), "traffic: {type: memory}", "traffic: {}", 1),
			"providers.traffic.type (line 5): required"},
		{"missing top-level field has no line", strings.Replace(withPlan("provision", "validate", "promote"), "app: shop-api\n", "", 1), "app: required"},
		{"plan-wide problems point at plan", withPlan("provision", "validate"), "plan (line 8): no promote step; add promote after the traffic steps"},
	}
}

// TestParseLines checks the line of problems that point at the file.
func TestParseLines(t *testing.T) {
	for _, tt := range lineCases() {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse([]byte(tt.src), nil)
			if got := problemsOf(t, err).Error(); got != tt.want {
				t.Errorf("got  %s\nwant %s", got, tt.want)
			}
		})
	}
}

func TestParseAnchorsAndMerges(t *testing.T) {
	r, err := Parse([]byte(anchorsSpec), nil)
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	want := Providers{
		Environment: Provider{Type: "memory", Settings: map[string]any{"zone": "a"}},
		Traffic:     Provider{Type: "memory", Settings: map[string]any{"zone": "a"}},
		Analysis:    Provider{Type: "memory", Settings: map[string]any{"zone": "b"}},
	}
	if !reflect.DeepEqual(r.Providers, want) {
		t.Errorf("providers %+v, want %+v", r.Providers, want)
	}
}

// anchorsSpec shares a provider by an alias and merges it into another.
const anchorsSpec = `app: shop-api
version: 1.4.0
providers:
  environment: &mem {type: memory, settings: {zone: a}}
  traffic: *mem
  analysis:
    <<: *mem
    settings: {zone: b}
plan: [provision, validate, promote]
`

func TestProviderCheck(t *testing.T) {
	type call struct{ kind, typ string }
	var calls []call
	check := func(kind string, p Provider) error {
		calls = append(calls, call{kind, p.Type})
		switch p.Type {
		case "nginx":
			return errors.New(`unknown provider type "nginx" (known: memory, webhook)`)
		case "webhook":
			if p.Settings["urlEnv"] == nil {
				return errors.New("webhook settings: urlEnv is required")
			}
		}
		return nil
	}
	_, err := Parse([]byte(fullSpec), check)
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	want := []call{{"environment", "memory"}, {"traffic", "memory"}, {"migrations", "memory"}, {"analysis", "memory"}, {"notifications", "log"}, {"notifications", "webhook"}}
	if !reflect.DeepEqual(calls, want) {
		t.Errorf("check calls %v, want %v", calls, want)
	}

	src := strings.Replace(fullSpec, "traffic: {type: memory}", "traffic: {type: nginx}", 1)
	src = strings.Replace(src, "settings: {urlEnv: HOOK_URL}", "settings: {url: http://x}", 1)
	_, err = Parse([]byte(src), check)
	got := problemsOf(t, err).Error()
	wantErr := `providers.traffic (line 11): unknown provider type "nginx" (known: memory, webhook)
providers.notifications[1] (line 18): webhook settings: urlEnv is required`
	if got != wantErr {
		t.Errorf("problems:\n%s\nwant:\n%s", got, wantErr)
	}

	// A provider without a type is reported as such, not passed to check.
	calls = nil
	src = strings.Replace(fullSpec, "traffic: {type: memory}", "traffic: {}", 1)
	_, err = Parse([]byte(src), check)
	if got := brief(problemsOf(t, err)); !reflect.DeepEqual(got, []string{"providers.traffic.type: required"}) {
		t.Errorf("problems %v", got)
	}
	for _, c := range calls {
		if c.kind == "traffic" {
			t.Errorf("check called for a traffic provider without a type")
		}
	}
}

// roundTripSpecs are valid specs with odd values.
func roundTripSpecs() map[string]string {
	return map[string]string{
		"full":                     fullSpec,
		"default":                  header,
		"empty settings and lists": strings.Replace(header, "traffic: {type: memory}", "traffic: {type: memory, settings: {}}\n  notifications: []", 1),
		"odd values": withPlan("provision", "validate: {smoke: []}", "setWeight: 0", "soak: {duration: 1h30m, interval: 1500ms}",
			"pause", "setWeight: 1", "analysis: {window: 90s, onInconclusive: rollback}", "approval: {onTimeout: continue}", "promote: {}", "standby: {duration: 36h}", "decommission"),
	}
}

// TestJSONRoundTrip checks that a resolved Release, the release workflow's input,
// comes back from JSON unchanged.
func TestJSONRoundTrip(t *testing.T) {
	for name, src := range roundTripSpecs() {
		t.Run(name, func(t *testing.T) {
			r, err := Parse([]byte(src), nil)
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			b, err := json.Marshal(r)
			if err != nil {
				t.Fatalf("Marshal: %v", err)
			}
			var back Release
			if err := json.Unmarshal(b, &back); err != nil {
				t.Fatalf("Unmarshal: %v", err)
			}
			if !reflect.DeepEqual(back, r) {
				t.Errorf("round trip changed the release\nbefore: %+v\nafter:  %+v\njson: %s", r, back, b)
			}
			if ps := back.Validate(nil); ps != nil {
				t.Errorf("round-tripped release has problems: %v", ps)
			}
		})
	}
}

func TestJSONKeepsDurationsReadable(t *testing.T) {
	r, err := Parse([]byte(withPlan("provision", "validate", "soak: {duration: 90s}", "promote")), nil)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := json.Marshal(r.Plan[2])
	if got, want := string(b), `{"soak":{"duration":"1m30s","interval":"10s"}}`; got != want {
		t.Errorf("json %s, want %s", got, want)
	}
}

// TestPlainYAML checks that yaml.v3 alone can read and write a Release too.
func TestPlainYAML(t *testing.T) {
	var r Release
	if err := yaml.Unmarshal([]byte(withPlan("provision", "validate", "setWeight: 10", "soak: {duration: 5m}", "promote")), &r); err != nil {
		t.Fatalf("yaml.Unmarshal: %v", err)
	}
	want := []Step{{Provision: &ProvisionStep{}}, {Validate: &ValidateStep{}}, {SetWeight: intp(10)}, {Soak: &SoakStep{Duration: dur("5m")}}, {Promote: &PromoteStep{}}}
	if !reflect.DeepEqual(r.Plan, want) {
		t.Fatalf("plan %s, want %s", describeAll(r.Plan), describeAll(want))
	}

	resolved := fullRelease()
	out, err := yaml.Marshal(resolved)
	if err != nil {
		t.Fatalf("yaml.Marshal: %v", err)
	}
	back, err := Parse(out, nil)
	if err != nil {
		t.Fatalf("Parse of marshalled release: %v\n%s", err, out)
	}
	if !reflect.DeepEqual(back, resolved) {
		t.Errorf("yaml round trip changed the release\n%s", out)
	}

	var s Step
	err = yaml.Unmarshal([]byte("shift: 10"), &s)
	if err == nil || !strings.Contains(err.Error(), `unknown step kind "shift"`) {
		t.Errorf("yaml.Unmarshal of an unknown kind: %v", err)
	}
}

func TestWithDefaultsLeavesInputAlone(t *testing.T) {
	r := Release{Plan: []Step{{Soak: &SoakStep{Duration: dur("1m")}}, {Approval: &ApprovalStep{}}}}
	got := r.WithDefaults()
	if r.Plan[0].Soak.Interval != 0 || r.Plan[1].Approval.Timeout != 0 {
		t.Error("WithDefaults changed its input")
	}
	if got.Plan[0].Soak.Interval != dur("10s") || got.Plan[1].Approval.Timeout != dur("24h") || got.Plan[1].Approval.OnTimeout != ActionRollback {
		t.Errorf("defaults not filled in: %s", describeAll(got.Plan))
	}
}

func TestParseFile(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "release.yaml")
	if err := os.WriteFile(good, []byte(fullSpec), 0o600); err != nil {
		t.Fatal(err)
	}
	r, err := ParseFile(good, nil)
	if err != nil || r.App != "shop-api" {
		t.Fatalf("ParseFile: %v (app %q)", err, r.App)
	}

	missing := filepath.Join(dir, "nope.yaml")
	_, err = ParseFile(missing, nil)
	if err == nil {
		t.Fatal("ParseFile of a missing file succeeded")
	}
	if _, ok := err.(Problems); ok {
		t.Errorf("a missing file is reported as spec problems: %v", err)
	}
	if !errors.Is(err, fs.ErrNotExist) || strings.Count(err.Error(), missing) != 1 {
		t.Errorf("error %q should name %s once and be fs.ErrNotExist", err, missing)
	}

	bad := filepath.Join(dir, "bad.yaml")
	if err := os.WriteFile(bad, []byte(withPlan("provision", "promote")), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err = ParseFile(bad, nil)
	if got := brief(problemsOf(t, err)); !reflect.DeepEqual(got, []string{"plan[1].promote: promotes before any validate step"}) {
		t.Errorf("problems %v", got)
	}

	// "-" reads standard input.
	f, err := os.Open(good)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	stdin := os.Stdin
	os.Stdin = f
	defer func() { os.Stdin = stdin }()
	r, err = ParseFile("-", nil)
	if err != nil || !reflect.DeepEqual(r, fullRelease()) {
		t.Errorf("ParseFile(-): %v", err)
	}
}

func TestProblemString(t *testing.T) {
	tests := []struct {
		p    Problem
		want string
	}{
		{Problem{Path: "plan[3].setWeight", Line: 14, Message: "120 is above 100"}, "plan[3].setWeight (line 14): 120 is above 100"},
		{Problem{Path: "plan[3].setWeight", Message: "120 is above 100"}, "plan[3].setWeight: 120 is above 100"},
		{Problem{Line: 2, Message: "a second YAML document"}, "line 2: a second YAML document"},
		{Problem{Message: "the spec is empty"}, "the spec is empty"},
	}
	for _, tt := range tests {
		if got := tt.p.String(); got != tt.want {
			t.Errorf("String() = %q, want %q", got, tt.want)
		}
	}
	ps := Problems{tests[0].p, tests[1].p}
	if got, want := ps.Error(), tests[0].want+"\n"+tests[1].want; got != want {
		t.Errorf("Error() = %q, want %q", got, want)
	}
	if Problems(nil).Err() != nil || ps.Err() == nil {
		t.Error("Err() should be nil exactly when there are no problems")
	}
}
