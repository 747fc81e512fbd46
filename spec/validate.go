package spec

import (
	"fmt"
	"net/url"
	"strings"
)

// Validate checks an already-resolved Release (the release workflow's input)
// against the rules Parse applies, and calls check, when not nil, for each
// provider. Problems carry field paths but no line numbers, in path order.
func (r Release) Validate(check ProviderCheck) Problems {
	var ps Problems
	if err := CheckApp(r.App); err != nil {
		ps.add("app", "%s", err)
	}
	if err := CheckVersion(r.Version); err != nil {
		ps.add("version", "%s", err)
	}
	if r.PreviousVersion != "" {
		if err := CheckVersion(r.PreviousVersion); err != nil {
			ps.add("previousVersion", "%s", err)
		}
	}
	r.Providers.validate(&ps, check)
	validatePlan(&ps, r.Plan)
	r.validatePeople(&ps)
	return ps
}

func (p Providers) validate(ps *Problems, check ProviderCheck) {
	one := func(kind, path string, pr Provider) {
		if pr.Type == "" {
			ps.add(path+".type", "required")
			return
		}
		if check != nil {
			if err := check(kind, pr); err != nil {
				ps.add(path, "%s", err.Error())
			}
		}
	}
	one("environment", "providers.environment", p.Environment)
	one("traffic", "providers.traffic", p.Traffic)
	if p.Migrations != nil {
		one("migrations", "providers.migrations", *p.Migrations)
	}
	one("analysis", "providers.analysis", p.Analysis)
	for i, n := range p.Notifications {
		one("notifications", indexPath("providers.notifications", i), n)
	}
	if p.Ledger != nil {
		one("ledger", "providers.ledger", *p.Ledger)
	}
}

// kinds lists every kind set on the step, in declaration order.
func (s Step) kinds() []string {
	var ks []string
	for _, k := range []struct {
		set  bool
		kind string
	}{
		{s.Provision != nil, KindProvision},
		{s.Migrate != nil, KindMigrate},
		{s.Validate != nil, KindValidate},
		{s.SetWeight != nil, KindSetWeight},
		{s.Soak != nil, KindSoak},
		{s.Pause != nil, KindPause},
		{s.Analysis != nil, KindAnalysis},
		{s.Approval != nil, KindApproval},
		{s.Promote != nil, KindPromote},
		{s.Standby != nil, KindStandby},
		{s.Decommission != nil, KindDecommission},
	} {
		if k.set {
			ks = append(ks, k.kind)
		}
	}
	return ks
}

// andList joins names as "a", "a and b", "a, b and c".
func andList(names []string) string {
	if len(names) <= 1 {
		return strings.Join(names, "")
	}
	return strings.Join(names[:len(names)-1], ", ") + " and " + names[len(names)-1]
}

// positive checks a duration that must be above 0; example is what to write.
func positive(ps *Problems, path string, d Duration, example string) {
	if d <= 0 {
		ps.add(path, "%s is not above 0; write a duration like %s", d, example)
	}
}

// validatePlan checks each step's settings and the order of the steps. Problems
// about the plan as a whole come first, then each step's, in plan order.
func validatePlan(ps *Problems, plan []Step) {
	if len(plan) == 0 {
		ps.add("plan", "no steps; Parse and WithDefaults fill in the default plan")
		return
	}
	if len(plan) > MaxPlanSteps {
		// Each step's problems would bury this one.
		ps.add("plan", "%d steps; at most %d", len(plan), MaxPlanSteps)
		return
	}
	var (
		whole = Problems{}
		steps = make([]Problems, len(plan))

		provisionAt    = -1
		promoteAt      = -1
		firstWeightAt  = -1
		beforeProvAt   = -1 // first step that needs green before any provision
		validated      bool
		weight         int
		expanded       bool
		contracted     bool
		standbyAfter   bool // a standby step after promote
		decommissioned bool
	)
	for i, s := range plan {
		sp := &steps[i]
		base := indexPath("plan", i)
		ks := s.kinds()
		switch len(ks) {
		case 0:
			sp.add(base, "empty step")
			continue
		case 1:
		default:
			sp.add(base, "a step has exactly one kind; found %s", andList(ks))
		}
		validateSettings(sp, base, s)
		if len(ks) > 1 {
			continue
		}
		kind := ks[0]
		path := base + "." + kind
		switch kind {
		case KindValidate, KindSetWeight, KindSoak, KindAnalysis, KindApproval, KindPromote:
			if provisionAt < 0 && beforeProvAt < 0 {
				beforeProvAt = i
			}
		}
		switch kind {
		case KindProvision:
			if provisionAt >= 0 {
				sp.add(path, "a second provision step; green is provisioned once, at plan[%d]", provisionAt)
				break
			}
			provisionAt = i
			if beforeProvAt >= 0 {
				sp.add(path, "comes after plan[%d] (%s); provision green before any validate, setWeight, soak, analysis, approval or promote", beforeProvAt, plan[beforeProvAt].Kind())
			}

		case KindMigrate:
			switch s.Migrate.Phase {
			case PhaseExpand:
				switch {
				case expanded:
					sp.add(path, "a second expand phase; expand runs once")
				case firstWeightAt >= 0:
					sp.add(path, "expand runs after traffic reaches green at plan[%d]; run expand before the first setWeight", firstWeightAt)
				case promoteAt >= 0:
					sp.add(path, "expand runs after promote; run expand before promote")
				}
				expanded = true
			case PhaseContract:
				switch {
				case contracted:
					sp.add(path, "a second contract phase; contract runs once")
				case promoteAt < 0 || !standbyAfter:
					sp.add(path, "contract runs only after promote and the standby window")
				}
				contracted = true
			}

		case KindValidate:
			validated = true

		case KindSetWeight:
			w := *s.SetWeight
			inRange := w >= 0 && w < 100
			switch {
			case promoteAt >= 0:
				sp.add(path, "comes after promote, which already sent all traffic to green; remove it")
			case firstWeightAt < 0 && !validated:
				sp.add(path, "shifts traffic before any validate step; validate green first")
			case inRange && w < weight:
				sp.add(path, "%d is below the previous weight %d (weights only go down by rollback)", w, weight)
			}
			if firstWeightAt < 0 {
				firstWeightAt = i
			}
			if inRange && w > weight {
				weight = w
			}

		case KindAnalysis:
			switch {
			case promoteAt >= 0:
				sp.add(path, "comes after promote; compare blue vs green before promote, while both serve traffic")
			case weight == 0:
				sp.add(path, "no traffic reaches green yet; put analysis after a setWeight step")
			}

		case KindPromote:
			if promoteAt >= 0 {
				sp.add(path, "a second promote step; the plan promotes once, at plan[%d]", promoteAt)
				break
			}
			promoteAt = i
			if !validated {
				sp.add(path, "promotes before any validate step")
			}

		case KindStandby:
			switch {
			case promoteAt < 0:
				sp.add(path, "comes before promote; standby keeps blue warm after promote")
			case decommissioned:
				sp.add(path, "comes after decommission, when blue is gone; put standby before decommission")
			default:
				standbyAfter = true
			}

		case KindDecommission:
			switch {
			case decommissioned:
				sp.add(path, "a second decommission step; blue is decommissioned once")
			case promoteAt < 0:
				sp.add(path, "comes before promote; decommission blue only after promote")
			}
			decommissioned = true
		}
	}
	if provisionAt < 0 {
		whole.add("plan", "no provision step; start the plan with provision")
	}
	if promoteAt < 0 {
		whole.add("plan", "no promote step; add promote after the traffic steps")
	}
	*ps = append(*ps, whole...)
	for _, sp := range steps {
		*ps = append(*ps, sp...)
	}
}

// validateSettings checks the settings of each kind set on the step.
func validateSettings(ps *Problems, base string, s Step) {
	if p := s.Provision; p != nil {
		positive(ps, base+".provision.timeout", p.Timeout, "15m")
	}
	if p := s.Migrate; p != nil {
		switch p.Phase {
		case PhaseExpand, PhaseContract:
		case "":
			ps.add(base+".migrate.phase", "required; write expand or contract")
		default:
			ps.add(base+".migrate.phase", "%q is not a phase; write expand or contract", p.Phase)
		}
		positive(ps, base+".migrate.timeout", p.Timeout, "30m")
	}
	if p := s.Validate; p != nil {
		for j, path := range p.Smoke {
			// A path on green's own instances, never another host: a request's
			// plan may name smoke paths.
			if u, err := url.Parse(path); err != nil || !strings.HasPrefix(path, "/") || strings.HasPrefix(path, "//") || u.Host != "" || Printable(path) != path || strings.Contains(path, " ") {
				ps.add(indexPath(base+".validate.smoke", j), "%q is not an HTTP path; write it like /healthz", path)
			}
		}
		positive(ps, base+".validate.timeout", p.Timeout, "5m")
	}
	if p := s.SetWeight; p != nil {
		switch w := *p; {
		case w < 0:
			ps.add(base+".setWeight", "%d is below 0", w)
		case w > 100:
			ps.add(base+".setWeight", "%d is above 100", w)
		case w == 100:
			ps.add(base+".setWeight", "100 sends all traffic to green; use a promote step")
		}
	}
	if p := s.Soak; p != nil {
		switch {
		case p.Duration == 0:
			ps.add(base+".soak.duration", "required")
		case p.Duration < 0:
			ps.add(base+".soak.duration", "%s is not above 0; write a duration like 5m", p.Duration)
		}
		switch {
		case p.Interval < MinSoakInterval:
			ps.add(base+".soak.interval", "%s is below %s; guard every 1s to 1m", p.Interval, MinSoakInterval)
		case p.Interval > MaxSoakInterval:
			ps.add(base+".soak.interval", "%s is above %s; guard every 1s to 1m", p.Interval, MaxSoakInterval)
		case p.Duration > 0 && p.Interval > p.Duration:
			ps.add(base+".soak.interval", "%s is longer than the soak duration %s; guard at least once during the soak", p.Interval, p.Duration)
		}
		switch {
		case p.Extend < 0:
			ps.add(base+".soak.extend", "%s is below 0; write a duration like 10m, or leave it out", p.Extend)
		case p.Extend > MaxSoakExtend:
			ps.add(base+".soak.extend", "%s is above %s", p.Extend, MaxSoakExtend)
		}
		switch p.OnInconclusive {
		case "", ActionPause, ActionRollback, ActionContinue: // "" pauses, as it did before the setting existed
		default:
			ps.add(base+".soak.onInconclusive", "%s; write pause, rollback or continue", notAllowed(p.OnInconclusive))
		}
	}
	if p := s.Pause; p != nil && p.Duration < 0 {
		ps.add(base+".pause.duration", "%s is below 0; write a duration like 10m, or leave it out to pause until resumed", p.Duration)
	}
	if p := s.Analysis; p != nil {
		positive(ps, base+".analysis.window", p.Window, "1m")
		switch p.OnInconclusive {
		case ActionPause, ActionRollback:
		default:
			ps.add(base+".analysis.onInconclusive", "%s; write pause or rollback", notAllowed(p.OnInconclusive))
		}
	}
	if p := s.Approval; p != nil {
		positive(ps, base+".approval.timeout", p.Timeout, "24h")
		switch p.OnTimeout {
		case ActionRollback, ActionContinue:
		default:
			ps.add(base+".approval.onTimeout", "%s; write rollback or continue", notAllowed(p.OnTimeout))
		}
	}
	if p := s.Standby; p != nil {
		positive(ps, base+".standby.duration", p.Duration, "15m")
	}
	if p := s.Decommission; p != nil {
		positive(ps, base+".decommission.timeout", p.Timeout, "15m")
	}
}

func notAllowed(v string) string {
	if v == "" {
		return "required"
	}
	return fmt.Sprintf("%q is not allowed", v)
}
