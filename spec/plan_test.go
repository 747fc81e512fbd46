package spec

import (
	"bytes"
	"errors"
	"strings"
	"testing"
)

func TestDescribe(t *testing.T) {
	tests := []struct {
		step Step
		want string
	}{
		{Step{Provision: &ProvisionStep{Timeout: dur("15m")}}, "provision green"},
		{Step{Migrate: &MigrateStep{Phase: PhaseExpand}}, "migrate (expand)"},
		{Step{Migrate: &MigrateStep{Phase: PhaseContract}}, "migrate (contract)"},
		{Step{Validate: &ValidateStep{Smoke: []string{"/healthz", "/api"}}}, "validate green (health + 2 smoke checks)"},
		{Step{Validate: &ValidateStep{Smoke: []string{"/healthz"}}}, "validate green (health + 1 smoke check)"},
		{Step{Validate: &ValidateStep{}}, "validate green (health)"},
		{Step{SetWeight: intp(10)}, "shift 10% of traffic to green"},
		{Step{Soak: &SoakStep{Duration: dur("5m"), Interval: dur("10s")}}, "soak 5m0s, guard every 10s"},
		{Step{Pause: &PauseStep{Duration: dur("2m")}}, "pause 2m0s"},
		{Step{Pause: &PauseStep{}}, "pause until resumed"},
		{Step{Analysis: &AnalysisStep{Window: dur("1m"), OnInconclusive: ActionPause}}, "compare blue vs green over 1m0s (inconclusive: pause)"},
		{Step{Approval: &ApprovalStep{Timeout: dur("24h"), OnTimeout: ActionRollback}}, "wait for approval (timeout 24h0m0s, then rollback)"},
		{Step{Promote: &PromoteStep{}}, "promote green to 100% (blue stays warm)"},
		{Step{Standby: &StandbyStep{Duration: dur("15m")}}, "standby 15m0s (rollback returns traffic to blue at once)"},
		{Step{Decommission: &DecommissionStep{}}, "decommission blue"},
		{Step{}, "empty step"},
	}
	for _, tt := range tests {
		if got := tt.step.Describe(); got != tt.want {
			t.Errorf("Describe() = %q, want %q", got, tt.want)
		}
	}
}

func TestFormatPlan(t *testing.T) {
	r, err := Parse([]byte(fullSpec), nil)
	if err != nil {
		t.Fatal(err)
	}
	var b bytes.Buffer
	if err := FormatPlan(&b, r); err != nil {
		t.Fatal(err)
	}
	want := `Release shop-api 1.4.0 (from 1.3.2)
Workflow ID: release/shop-api
Providers: environment=memory traffic=memory analysis=memory migrations=memory notifications=log,webhook
Plan:
  1   provision     provision green                                           timeout 15m0s
  2   migrate       migrate (expand)                                          timeout 30m0s
  3   validate      validate green (health + 2 smoke checks)                  timeout 5m0s
  4   setWeight     shift 10% of traffic to green
  5   soak          soak 5m0s, guard every 10s
  6   pause         pause until resumed
  7   setWeight     shift 25% of traffic to green
  8   pause         pause 2m0s
  9   analysis      compare blue vs green over 10m0s (inconclusive: pause)
  10  approval      wait for approval (timeout 24h0m0s, then rollback)        timeout 24h0m0s
  11  promote       promote green to 100% (blue stays warm)
  12  standby       standby 15m0s (rollback returns traffic to blue at once)
  13  migrate       migrate (contract)                                        timeout 10m0s
  14  decommission  decommission blue                                         timeout 15m0s
`
	if got := b.String(); got != want {
		t.Errorf("FormatPlan:\n%s\nwant:\n%s", got, want)
	}
}

func TestFormatPlanDefaults(t *testing.T) {
	r, err := Parse([]byte(header), nil)
	if err != nil {
		t.Fatal(err)
	}
	r.Providers.Migrations = nil
	var b bytes.Buffer
	if err := FormatPlan(&b, r); err != nil {
		t.Fatal(err)
	}
	out := b.String()
	for _, want := range []string{
		"Release shop-api 1.4.0\n",
		"Workflow ID: release/shop-api\n",
		"Providers: environment=memory traffic=memory analysis=memory migrations=none notifications=none\n",
		"  2   migrate       migrate (expand) - skipped: no migrations provider",
		"  9   promote       promote green to 100% (blue stays warm)\n",
		"  12  decommission  decommission blue",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "(from") {
		t.Errorf("header names a previous version that is not set:\n%s", out)
	}
	for _, line := range strings.Split(out, "\n") {
		if strings.TrimRight(line, " ") != line {
			t.Errorf("trailing spaces in %q", line)
		}
	}
}

type failingWriter struct{}

func (failingWriter) Write([]byte) (int, error) { return 0, errors.New("disk full") }

func TestFormatPlanWriteError(t *testing.T) {
	if err := FormatPlan(failingWriter{}, fullRelease()); err == nil {
		t.Error("FormatPlan ignored a write error")
	}
}
