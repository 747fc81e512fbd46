package starter

import "runtime/debug"

// routerGCPercent is the router's garbage-collection target (GOGC) when the
// environment sets none. The router's live heap is a few MB while every
// request allocates a few KB (net/http's request and header maps), so at
// Go's default of 100 it collects dozens of times a second under load. At 400
// it used 2% less CPU per request than at 100 in docs/benchmarks.md's section
// 1 (closed loop, two cores); its memory peaked at 95 MiB against 68 MiB,
// though it had served more there. The router's CPU is taken from the apps
// beside it on the same cores; a few tens of MiB rarely are.
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
