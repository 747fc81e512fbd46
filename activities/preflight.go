package activities

import (
	"context"

	"github.com/cutoverhq/cutover/providers"
	"github.com/cutoverhq/cutover/spec"
)

// PreflightName is the preflight activity's registered name.
const PreflightName = "Preflight"

// PreflightInput is Preflight's input: the traffic provider to ask and the plan it checks.
type PreflightInput struct {
	App     string               `json:"app"`
	Traffic spec.Provider        `json:"traffic"`
	Plan    []providers.PlanStep `json:"plan"`
}

// Preflight asks the traffic provider whether the plan can work with it,
// before the release touches anything: a plan that cannot (a Route 53 soak
// shorter than the records' TTL, a 10% step on a CNAME swap) fails here, with
// nothing to undo, rather than halfway through. Only the traffic provider is
// asked: what a plan's weights and holds mean depends on how traffic moves.
func (a *Activities) Preflight(ctx context.Context, in PreflightInput) error {
	what := "preflight: traffic provider " + in.Traffic.Type
	tr, err := providers.Get[providers.Traffic](a.reg, "traffic", in.Traffic)
	if err != nil {
		return classify(what, err)
	}
	pc, ok := tr.(providers.PlanChecker)
	if !ok {
		return nil
	}
	_, err = withHeartbeat(ctx, "checking the plan against the traffic provider", func(ctx context.Context) (struct{}, error) {
		return struct{}{}, pc.CheckPlan(ctx, in.App, in.Plan)
	})
	return classify(what, err)
}
