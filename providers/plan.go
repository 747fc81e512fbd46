package providers

import (
	"time"

	"github.com/cutoverhq/cutover/spec"
)

// CheckTTL refuses a plan that judges green at a partial weight for less than
// ttl, the time DNS resolvers keep an answer: until cached answers expire,
// clients follow the old weights, so such a soak or analysis would judge a
// green that got hardly any of its share, and pass it on too little data.
// what names the cached thing ("the TTL of the shop.example.com. A records").
// Only the first step too short is named.
func CheckTTL(plan []PlanStep, ttl time.Duration, what string) error {
	for _, s := range plan {
		if s.Hold > 0 && s.Green > 0 && s.Green < 100 && s.Hold < ttl {
			return BadConfig("plan[%d] (%s at %d%% green): %s is shorter than %s (%s): resolvers keep the old weights for up to %s, so green would be judged on traffic it mostly never got; hold for at least %s or lower the TTL",
				s.Index, s.Kind, s.Green, s.Hold, what, ttl, ttl, ttl)
		}
	}
	return nil
}

// PlanSteps is what the providers' plan checks see of a resolved plan: each
// step with green's share while it runs (setWeight sets it, promote makes it
// 100) and how long soaks and analyses hold it.
func PlanSteps(plan []spec.Step) []PlanStep {
	out := make([]PlanStep, 0, len(plan))
	green := 0
	for i, s := range plan {
		ps := PlanStep{Index: i, Kind: s.Kind()}
		switch {
		case s.SetWeight != nil:
			green = *s.SetWeight
		case s.Promote != nil:
			green = 100
		case s.Soak != nil:
			ps.Hold = s.Soak.Duration.D()
		case s.Analysis != nil:
			ps.Hold = s.Analysis.Window.D()
		}
		ps.Green = green
		out = append(out, ps)
	}
	return out
}
