package starter

import "runtime/debug"

// routerGCPercent is the router's garbage-collection target (GOGC) when the
// environment sets none. The router's live heap is a few MB while every
// request allocates a few KB (net/http's request and header maps), so at
// Go's default of 100 it collects dozens of times a second under load. At 400
// its proxy CPU per request fell by about 8% in a closed loop on two cores
// (docs/benchmarks.md, section 1) for a heap a few MB larger.
const routerGCPercent = 400

// tuneRouterGC sets routerGCPercent unless GOGC is set, which then wins as
// it does for any Go program. It returns the percent in force.
func tuneRouterGC(lookupEnv func(string) (string, bool)) int {
	if _, set := lookupEnv("GOGC"); set {
		p := debug.SetGCPercent(-1)
		debug.SetGCPercent(p)
		return p
	}
	debug.SetGCPercent(routerGCPercent)
	return routerGCPercent
}
