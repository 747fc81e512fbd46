// Package spec holds the release spec (release.yaml): its types, strict parsing,
// validation with field paths, and the default plan.
//
// The resolved Release is the release workflow's input, so every type here must
// survive a JSON round trip unchanged: the workflow history is the record of what
// was decided.
package spec

import (
	"encoding/json"
	"fmt"
	"time"
)

// Release is one release of one app to one new version.
type Release struct {
	// App names the application; the workflow ID is release/<app>.
	App string `yaml:"app" json:"app"`
	// Version is the version being released (green).
	Version string `yaml:"version" json:"version"`
	// PreviousVersion is the version now live (blue); shown in summaries only.
	PreviousVersion string `yaml:"previousVersion,omitempty" json:"previousVersion,omitempty"`
	// Providers says which provider carries out each kind of step.
	Providers Providers `yaml:"providers" json:"providers"`
	// Plan is the list of steps; empty means DefaultPlan.
	Plan []Step `yaml:"plan,omitempty" json:"plan,omitempty"`
	// AllowSelfApproval lets whoever started the release approve it too. Off
	// by default: separation of duties.
	AllowSelfApproval bool `yaml:"allowSelfApproval,omitempty" json:"allowSelfApproval,omitempty"`
	// People maps the people who act on the app's releases to the principals
	// they authenticate as (cli:alice, api:ci-alice, slack:U024BE7LH), so that
	// separation of duties and Approvers are decided on people, whichever door
	// they use. A principal nobody claims is a person of its own.
	People []Person `yaml:"people,omitempty" json:"people,omitempty"`
	// Approvers, when set, are the only people (names from People) who may
	// approve the app's releases.
	Approvers []string `yaml:"approvers,omitempty" json:"approvers,omitempty"`
	// Requests says what a release request may choose for itself when this is
	// an app definition on the worker. Unset: a request names the version only.
	Requests *Requests `yaml:"requests,omitempty" json:"requests,omitempty"`
	// Judge tightens the analysis provider's judge for this one release. Only a
	// request to an app whose definition allows it (requests.judge) may set it,
	// and only to be stricter than the definition.
	Judge *JudgeRequest `yaml:"judge,omitempty" json:"judge,omitempty"`
}

// Person is someone who acts on an app's releases.
type Person struct {
	Name string `yaml:"name" json:"name"`
	// Principals are door:id pairs: cli:<operator or OS user>, api:<token
	// name>, slack:<Slack user ID>, temporal:<by text of a bare Temporal update>.
	Principals []string `yaml:"principals" json:"principals"`
}

// Requests bounds what a release request may choose in an app definition.
type Requests struct {
	// Plan lets a request bring its own plan instead of the definition's. It
	// must keep every kind of check the definition's plan holds (soak,
	// analysis, approval).
	Plan bool `yaml:"plan,omitempty" json:"plan,omitempty"`
	// MinSoak is the shortest soak a requested plan may hold.
	MinSoak Duration `yaml:"minSoak,omitempty" json:"minSoak,omitempty"`
	// MinAnalysis is the shortest comparison window a requested plan may hold.
	MinAnalysis Duration `yaml:"minAnalysis,omitempty" json:"minAnalysis,omitempty"`
	// Judge lets a request tighten the judge (see JudgeRequest).
	Judge bool `yaml:"judge,omitempty" json:"judge,omitempty"`
}

// JudgeRequest is what a release request may change of its judge: only what
// makes a Pass harder to earn, never what makes a Fail harder to reach. (Alpha
// is not here: a lower alpha also needs more data to fail a bad green, so a
// request could use it to quiet the soak guard.)
type JudgeRequest struct {
	// Power: a higher power than the definition's.
	Power float64 `yaml:"power,omitempty" json:"power,omitempty"`
	// MaxIncrease: a smaller allowed error-rate increase than the definition's.
	MaxIncrease float64 `yaml:"maxIncrease,omitempty" json:"maxIncrease,omitempty"`
}

// Providers names a provider, with its settings, for each kind of step.
type Providers struct {
	Environment   Provider   `yaml:"environment" json:"environment"`
	Traffic       Provider   `yaml:"traffic" json:"traffic"`
	Migrations    *Provider  `yaml:"migrations,omitempty" json:"migrations,omitempty"`
	Analysis      Provider   `yaml:"analysis" json:"analysis"`
	Notifications []Provider `yaml:"notifications,omitempty" json:"notifications,omitempty"`
	// Ledger records the release and its events in a store that outlives the
	// workflow history (type postgres).
	Ledger *Provider `yaml:"ledger,omitempty" json:"ledger,omitempty"`
}

// Provider is a provider type and its settings. Settings never hold secrets
// themselves: a provider's settings name an environment variable or file that the
// worker reads.
type Provider struct {
	Type     string         `yaml:"type" json:"type"`
	Settings map[string]any `yaml:"settings,omitempty" json:"settings,omitempty"`
}

// Step is one step of the plan: exactly one field is set. In YAML a step without
// settings may be written as its bare name (`- promote`).
type Step struct {
	Provision    *ProvisionStep    `yaml:"provision,omitempty" json:"provision,omitempty"`
	Migrate      *MigrateStep      `yaml:"migrate,omitempty" json:"migrate,omitempty"`
	Validate     *ValidateStep     `yaml:"validate,omitempty" json:"validate,omitempty"`
	SetWeight    *int              `yaml:"setWeight,omitempty" json:"setWeight,omitempty"`
	Soak         *SoakStep         `yaml:"soak,omitempty" json:"soak,omitempty"`
	Pause        *PauseStep        `yaml:"pause,omitempty" json:"pause,omitempty"`
	Analysis     *AnalysisStep     `yaml:"analysis,omitempty" json:"analysis,omitempty"`
	Approval     *ApprovalStep     `yaml:"approval,omitempty" json:"approval,omitempty"`
	Promote      *PromoteStep      `yaml:"promote,omitempty" json:"promote,omitempty"`
	Standby      *StandbyStep      `yaml:"standby,omitempty" json:"standby,omitempty"`
	Decommission *DecommissionStep `yaml:"decommission,omitempty" json:"decommission,omitempty"`
}

// Step kinds, as written in release.yaml.
const (
	KindProvision    = "provision"
	KindMigrate      = "migrate"
	KindValidate     = "validate"
	KindSetWeight    = "setWeight"
	KindSoak         = "soak"
	KindPause        = "pause"
	KindAnalysis     = "analysis"
	KindApproval     = "approval"
	KindPromote      = "promote"
	KindStandby      = "standby"
	KindDecommission = "decommission"
)

// Migration phases.
const (
	PhaseExpand   = "expand"
	PhaseContract = "contract"
)

// What to do when an approval gate times out or an analysis is inconclusive.
const (
	ActionRollback = "rollback"
	ActionContinue = "continue"
	ActionPause    = "pause"
)

// ProvisionStep starts green next to blue.
type ProvisionStep struct {
	Timeout Duration `yaml:"timeout,omitempty" json:"timeout,omitempty"`
}

// MigrateStep applies one phase of the app's database migrations.
type MigrateStep struct {
	Phase   string   `yaml:"phase" json:"phase"`
	Timeout Duration `yaml:"timeout,omitempty" json:"timeout,omitempty"`
}

// ValidateStep checks green's health and runs smoke checks before any user
// traffic reaches it.
type ValidateStep struct {
	// Smoke lists HTTP paths that must answer 2xx on every green instance.
	Smoke   []string `yaml:"smoke,omitempty" json:"smoke,omitempty"`
	Timeout Duration `yaml:"timeout,omitempty" json:"timeout,omitempty"`
}

// SoakStep holds the current weights for Duration while a guard checks health
// every Interval; a breach rolls the release back.
type SoakStep struct {
	Duration Duration `yaml:"duration" json:"duration"`
	Interval Duration `yaml:"interval,omitempty" json:"interval,omitempty"`
	// Extend lets the soak go on, up to this much longer, while the guard's
	// data could not yet have shown a regression as small as the margins.
	Extend Duration `yaml:"extend,omitempty" json:"extend,omitempty"`
	// OnInconclusive is what happens when the soak ends without a Pass (too
	// little traffic to show green within the margins, a gap in the guard's
	// watch, a source that cannot be read): pause (wait for a person: approve
	// continues, abort rolls back; the default), rollback, or continue, which
	// goes on to the next step when the only shortcoming was too little
	// traffic (a gap or unusable data still pauses).
	OnInconclusive string `yaml:"onInconclusive,omitempty" json:"onInconclusive,omitempty"`
}

// PauseStep holds the release for Duration, or until resumed when Duration is 0.
type PauseStep struct {
	Duration Duration `yaml:"duration,omitempty" json:"duration,omitempty"`
}

// AnalysisStep compares blue and green over Window.
type AnalysisStep struct {
	Window Duration `yaml:"window,omitempty" json:"window,omitempty"`
	// EarlyStop ends the comparison as soon as it is decided, Pass or Fail,
	// rather than at the end of the window.
	EarlyStop bool `yaml:"earlyStop,omitempty" json:"earlyStop,omitempty"`
	// OnInconclusive is pause (wait for a person: approve continues, abort rolls
	// back) or rollback.
	OnInconclusive string `yaml:"onInconclusive,omitempty" json:"onInconclusive,omitempty"`
}

// ApprovalStep waits for a person's approve.
type ApprovalStep struct {
	Timeout Duration `yaml:"timeout,omitempty" json:"timeout,omitempty"`
	// OnTimeout is rollback (the default) or continue.
	OnTimeout string `yaml:"onTimeout,omitempty" json:"onTimeout,omitempty"`
}

// PromoteStep sends 100% of traffic to green; blue stays warm.
type PromoteStep struct{}

// StandbyStep keeps blue warm after promotion so that a rollback is instant.
type StandbyStep struct {
	Duration Duration `yaml:"duration,omitempty" json:"duration,omitempty"`
}

// DecommissionStep drains and stops blue after promotion.
type DecommissionStep struct {
	Timeout Duration `yaml:"timeout,omitempty" json:"timeout,omitempty"`
}

// Kind names the step's kind; "" for a step with no field set.
func (s Step) Kind() string {
	switch {
	case s.Provision != nil:
		return KindProvision
	case s.Migrate != nil:
		return KindMigrate
	case s.Validate != nil:
		return KindValidate
	case s.SetWeight != nil:
		return KindSetWeight
	case s.Soak != nil:
		return KindSoak
	case s.Pause != nil:
		return KindPause
	case s.Analysis != nil:
		return KindAnalysis
	case s.Approval != nil:
		return KindApproval
	case s.Promote != nil:
		return KindPromote
	case s.Standby != nil:
		return KindStandby
	case s.Decommission != nil:
		return KindDecommission
	}
	return ""
}

// Duration is a time.Duration written as Go duration text ("90s", "5m").
type Duration time.Duration

// D returns the duration as a time.Duration.
func (d Duration) D() time.Duration { return time.Duration(d) }

// String prints the duration the way release.yaml writes it.
func (d Duration) String() string { return time.Duration(d).String() }

// MarshalJSON keeps durations readable in the workflow history.
func (d Duration) MarshalJSON() ([]byte, error) { return json.Marshal(d.String()) }

// UnmarshalJSON reads what MarshalJSON wrote.
func (d *Duration) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return err
	}
	v, err := ParseDuration(s)
	if err != nil {
		return err
	}
	*d = v
	return nil
}

// MarshalYAML writes the duration as text.
func (d Duration) MarshalYAML() (any, error) { return d.String(), nil }

// ParseDuration reads a duration as release.yaml writes it.
func ParseDuration(s string) (Duration, error) {
	v, err := time.ParseDuration(s)
	if err != nil {
		return 0, fmt.Errorf("%q is not a duration (write it like 90s, 5m or 1h30m)", s)
	}
	if v < 0 {
		return 0, fmt.Errorf("%q is negative", s)
	}
	return Duration(v), nil
}
