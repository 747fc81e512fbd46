package spec

import "time"

// Defaults for step settings left out of release.yaml.
const (
	DefaultProvisionTimeout    = Duration(15 * time.Minute)
	DefaultMigrateTimeout      = Duration(30 * time.Minute)
	DefaultValidateTimeout     = Duration(5 * time.Minute)
	DefaultDecommissionTimeout = Duration(15 * time.Minute)
	DefaultSoakInterval        = Duration(10 * time.Second)
	DefaultAnalysisWindow      = Duration(10 * time.Minute)
	DefaultOnInconclusive      = ActionPause
	DefaultApprovalTimeout     = Duration(24 * time.Hour)
	DefaultOnTimeout           = ActionRollback
	DefaultStandbyDuration     = Duration(15 * time.Minute)
)

// Soak guard intervals allowed.
const (
	MinSoakInterval = Duration(time.Second)
	MaxSoakInterval = Duration(time.Minute)
	// MaxSoakExtend bounds how long a soak may be extended for power.
	MaxSoakExtend = Duration(24 * time.Hour)
)

// DefaultPlan is the plan of a spec that gives none, with every default filled in:
// provision; migrate expand; validate; setWeight 10; soak 5m (too little traffic: continue); setWeight 50;
// analysis up to 10m, stopping once decided; approval; promote; standby 15m; migrate contract; decommission.
func DefaultPlan() []Step {
	w10, w50 := 10, 50
	return []Step{
		{Provision: &ProvisionStep{Timeout: DefaultProvisionTimeout}},
		{Migrate: &MigrateStep{Phase: PhaseExpand, Timeout: DefaultMigrateTimeout}},
		{Validate: &ValidateStep{Timeout: DefaultValidateTimeout}},
		{SetWeight: &w10},
		// The 10% soak guards: it rolls back a green that is clearly worse, and
		// goes on when it only lacked the traffic to show green within the
		// margins. The comparison at 50% must pass, and stops once decided.
		{Soak: &SoakStep{Duration: Duration(5 * time.Minute), Interval: DefaultSoakInterval, OnInconclusive: ActionContinue}},
		{SetWeight: &w50},
		{Analysis: &AnalysisStep{Window: DefaultAnalysisWindow, EarlyStop: true, OnInconclusive: DefaultOnInconclusive}},
		{Approval: &ApprovalStep{Timeout: DefaultApprovalTimeout, OnTimeout: DefaultOnTimeout}},
		{Promote: &PromoteStep{}},
		{Standby: &StandbyStep{Duration: DefaultStandbyDuration}},
		{Migrate: &MigrateStep{Phase: PhaseContract, Timeout: DefaultMigrateTimeout}},
		{Decommission: &DecommissionStep{Timeout: DefaultDecommissionTimeout}},
	}
}

// WithDefaults returns a copy of r with the defaults filled in: DefaultPlan for an
// empty plan, and the default for each step setting that is zero. Parse does this
// already (leaving alone zeros written in the file, which validation then reports).
func (r Release) WithDefaults() Release {
	return r.withDefaults(func(string) bool { return false })
}

// withDefaults fills in defaults for settings that are zero and that the file did
// not write; written reports whether it did.
func (r Release) withDefaults(written func(path string) bool) Release {
	if len(r.Plan) == 0 {
		r.Plan = DefaultPlan()
		return r
	}
	plan := make([]Step, len(r.Plan))
	for i, s := range r.Plan {
		s = s.clone()
		at := func(kind, field string) bool {
			return written(indexPath("plan", i) + "." + kind + "." + field)
		}
		if p := s.Provision; p != nil && p.Timeout == 0 && !at(KindProvision, "timeout") {
			p.Timeout = DefaultProvisionTimeout
		}
		if p := s.Migrate; p != nil && p.Timeout == 0 && !at(KindMigrate, "timeout") {
			p.Timeout = DefaultMigrateTimeout
		}
		if p := s.Validate; p != nil && p.Timeout == 0 && !at(KindValidate, "timeout") {
			p.Timeout = DefaultValidateTimeout
		}
		if p := s.Soak; p != nil && p.Interval == 0 && !at(KindSoak, "interval") {
			p.Interval = DefaultSoakInterval
			// A short soak is guarded over its whole length, once.
			if p.Duration >= MinSoakInterval && p.Duration < p.Interval {
				p.Interval = p.Duration
			}
		}
		if p := s.Analysis; p != nil {
			if p.Window == 0 && !at(KindAnalysis, "window") {
				p.Window = DefaultAnalysisWindow
			}
			if p.OnInconclusive == "" && !at(KindAnalysis, "onInconclusive") {
				p.OnInconclusive = DefaultOnInconclusive
			}
		}
		if p := s.Approval; p != nil {
			if p.Timeout == 0 && !at(KindApproval, "timeout") {
				p.Timeout = DefaultApprovalTimeout
			}
			if p.OnTimeout == "" && !at(KindApproval, "onTimeout") {
				p.OnTimeout = DefaultOnTimeout
			}
		}
		if p := s.Standby; p != nil && p.Duration == 0 && !at(KindStandby, "duration") {
			p.Duration = DefaultStandbyDuration
		}
		if p := s.Decommission; p != nil && p.Timeout == 0 && !at(KindDecommission, "timeout") {
			p.Timeout = DefaultDecommissionTimeout
		}
		plan[i] = s
	}
	r.Plan = plan
	return r
}

// clone copies the step's settings so that filling in defaults does not change
// the caller's steps.
func (s Step) clone() Step {
	c := s
	if s.Provision != nil {
		v := *s.Provision
		c.Provision = &v
	}
	if s.Migrate != nil {
		v := *s.Migrate
		c.Migrate = &v
	}
	if s.Validate != nil {
		v := *s.Validate
		v.Smoke = append([]string(nil), s.Validate.Smoke...)
		c.Validate = &v
	}
	if s.SetWeight != nil {
		v := *s.SetWeight
		c.SetWeight = &v
	}
	if s.Soak != nil {
		v := *s.Soak
		c.Soak = &v
	}
	if s.Pause != nil {
		v := *s.Pause
		c.Pause = &v
	}
	if s.Analysis != nil {
		v := *s.Analysis
		c.Analysis = &v
	}
	if s.Approval != nil {
		v := *s.Approval
		c.Approval = &v
	}
	if s.Promote != nil {
		v := *s.Promote
		c.Promote = &v
	}
	if s.Standby != nil {
		v := *s.Standby
		c.Standby = &v
	}
	if s.Decommission != nil {
		v := *s.Decommission
		c.Decommission = &v
	}
	return c
}
