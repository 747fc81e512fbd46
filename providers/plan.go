package providers

import "time"

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
