package spec

import (
	"errors"
	"reflect"
	"strings"
	"testing"
)

func resolvedRelease(plan ...Step) Release {
	return Release{
		App:     "shop-api",
		Version: "1.4.0",
		Providers: Providers{
			Environment: Provider{Type: "memory"},
			Traffic:     Provider{Type: "memory"},
			Analysis:    Provider{Type: "memory"},
		},
		Plan: plan,
	}
}

// TestValidateResolved runs the rules on a Release built in Go, as the release
// workflow receives it: paths, no lines, in path order.
func TestValidateResolved(t *testing.T) {
	provision := Step{Provision: &ProvisionStep{Timeout: dur("15m")}}
	validate := Step{Validate: &ValidateStep{Timeout: dur("5m")}}
	promote := Step{Promote: &PromoteStep{}}
	tests := []struct {
		name string
		r    Release
		want []string
	}{
		{"valid", resolvedRelease(provision, validate, Step{SetWeight: intp(10)}, promote), nil},
		{"full spec", fullRelease(), nil},
		{"no plan", resolvedRelease(), []string{"plan: no steps; Parse and WithDefaults fill in the default plan"}},
		{"empty step", resolvedRelease(provision, validate, Step{}, promote), []string{"plan[2]: empty step"}},
		{"two kinds", resolvedRelease(provision, validate, Step{SetWeight: intp(10), Soak: &SoakStep{Duration: dur("5m"), Interval: dur("10s")}}, promote),
			[]string{"plan[2]: a step has exactly one kind; found setWeight and soak"}},
		{"zero settings are not defaulted", resolvedRelease(Step{Provision: &ProvisionStep{}}, validate, Step{SetWeight: intp(10)},
			Step{Soak: &SoakStep{Duration: dur("5m")}}, Step{Analysis: &AnalysisStep{}}, Step{Approval: &ApprovalStep{}}, promote, Step{Standby: &StandbyStep{}}),
			[]string{
				"plan[0].provision.timeout: 0s is not above 0; write a duration like 15m",
				"plan[3].soak.interval: 0s is below 1s; guard every 1s to 1m",
				"plan[4].analysis.window: 0s is not above 0; write a duration like 1m",
				"plan[4].analysis.onInconclusive: required; write pause or rollback",
				"plan[5].approval.timeout: 0s is not above 0; write a duration like 24h",
				"plan[5].approval.onTimeout: required; write rollback or continue",
				"plan[7].standby.duration: 0s is not above 0; write a duration like 15m",
			}},
		{"negative durations", resolvedRelease(provision, validate, Step{Pause: &PauseStep{Duration: -dur("1m")}}, Step{Soak: &SoakStep{Duration: -dur("1m"), Interval: dur("10s")}}, promote),
			[]string{
				"plan[2].pause.duration: -1m0s is below 0; write a duration like 10m, or leave it out to pause until resumed",
				"plan[3].soak.duration: -1m0s is not above 0; write a duration like 5m",
			}},
		{"several problems in path order", Release{
			App:             "Shop",
			Version:         "",
			PreviousVersion: "1 2",
			Providers:       Providers{Traffic: Provider{Type: "memory"}, Analysis: Provider{Type: "memory"}, Notifications: []Provider{{}}},
			Plan:            []Step{validate, {SetWeight: intp(100)}, provision},
		}, []string{
			`app: "Shop" is not a valid app name; use lower-case letters, digits and dashes, at most 63, starting and ending with a letter or digit (like shop-api)`,
			"version: required",
			`previousVersion: "1 2" contains whitespace; write the version without spaces, like 1.4.0`,
			"providers.environment.type: required",
			"providers.notifications[0].type: required",
			"plan: no promote step; add promote after the traffic steps",
			"plan[1].setWeight: 100 sends all traffic to green; use a promote step",
			"plan[2].provision: comes after plan[0] (validate); provision green before any validate, setWeight, soak, analysis, approval or promote",
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ps := tt.r.Validate(nil)
			for _, p := range ps {
				if p.Line != 0 {
					t.Errorf("%v has a line", p)
				}
			}
			got := brief(ps)
			if len(got) == 0 {
				got = nil
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("problems:\n  %s\nwant:\n  %s", strings.Join(got, "\n  "), strings.Join(tt.want, "\n  "))
			}
		})
	}
}

func TestValidateCheck(t *testing.T) {
	r := resolvedRelease(Step{Provision: &ProvisionStep{Timeout: dur("1m")}}, Step{Validate: &ValidateStep{Timeout: dur("1m")}}, Step{Promote: &PromoteStep{}})
	r.Providers.Migrations = &Provider{Type: "flyway"}
	r.Providers.Notifications = []Provider{{Type: "log"}, {Type: "slack"}}
	check := func(kind string, p Provider) error {
		if p.Type == "flyway" || p.Type == "slack" {
			return errors.New("unknown provider type " + p.Type)
		}
		return nil
	}
	want := []string{
		"providers.migrations: unknown provider type flyway",
		"providers.notifications[1]: unknown provider type slack",
	}
	if got := brief(r.Validate(check)); !reflect.DeepEqual(got, want) {
		t.Errorf("problems %q, want %q", got, want)
	}
	if got := r.Validate(nil); got != nil {
		t.Errorf("without a check: %v", got)
	}
}

func TestAppNames(t *testing.T) {
	tests := []struct {
		app string
		ok  bool
	}{
		{"a", true},
		{"shop-api", true},
		{"a1-b2", true},
		{"9lives", true},
		{strings.Repeat("a", 63), true},
		{strings.Repeat("a", 64), false},
		{"-shop", false},
		{"shop-", false},
		{"Shop", false},
		{"shop_api", false},
		{"shop/api", false},
		{"shop.api", false},
	}
	for _, tt := range tests {
		r := resolvedRelease(DefaultPlan()...)
		r.App = tt.app
		ps := r.Validate(nil)
		if ok := len(ps) == 0; ok != tt.ok {
			t.Errorf("app %q: ok=%v, want %v (%v)", tt.app, ok, tt.ok, ps)
		}
	}
}
