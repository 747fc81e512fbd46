package local

import (
	"context"
	"fmt"
	"time"

	"github.com/cutoverhq/cutover/providers"
	"github.com/cutoverhq/cutover/router"
	"github.com/cutoverhq/cutover/verdict"
)

// The local provider can judge green by the health the router sees: its active
// checks and its passive ejections of instances that refuse connections. That
// catches a green that crashes or fails its health checks; a green that answers
// with errors or slowly needs a metrics analysis.

// Guard fails when any green instance is unhealthy or ejected, and is
// inconclusive when the router has no green instance at all.
func (p *Provider) Guard(ctx context.Context, r providers.Ref) (verdict.Verdict, error) {
	st, err := p.routerState(ctx)
	if err != nil {
		return verdict.Verdict{}, err
	}
	m := poolHealth("green health", st.Pools[router.Green])
	return verdict.Verdict{Result: m.Result, Summary: "instance health seen by the router", Metrics: []verdict.Metric{m}}, nil
}

// Compare judges both pools' health: Pass only when every instance of both is
// healthy.
func (p *Provider) Compare(ctx context.Context, r providers.Ref, window time.Duration) (verdict.Verdict, error) {
	st, err := p.routerState(ctx)
	if err != nil {
		return verdict.Verdict{}, err
	}
	green := poolHealth("green health", st.Pools[router.Green])
	blue := poolHealth("blue health", st.Pools[router.Blue])
	v := verdict.Verdict{Result: green.Result, Metrics: []verdict.Metric{blue, green}}
	if blue.Result != verdict.Pass && v.Result == verdict.Pass {
		v.Result = verdict.Inconclusive // nothing healthy to compare green with
	}
	v.Summary = "instance health seen by the router"
	return v, nil
}

func poolHealth(name string, pool []router.Instance) verdict.Metric {
	healthy := 0
	for _, in := range pool {
		if in.Healthy && !in.Ejected {
			healthy++
		}
	}
	m := verdict.Metric{Name: name, Critical: true, Values: []verdict.Value{
		{Name: "healthy", Value: float64(healthy)}, {Name: "instances", Value: float64(len(pool))},
	}}
	switch {
	case len(pool) == 0:
		m.Result, m.Reason = verdict.Inconclusive, "no instances"
	case healthy < len(pool):
		m.Result, m.Reason = verdict.Fail, fmt.Sprintf("%d of %d instances healthy", healthy, len(pool))
	default:
		m.Result = verdict.Pass
	}
	return m
}
