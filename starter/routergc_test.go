package starter

import (
	"runtime/debug"
	"testing"
)

// The router collects at routerGCPercent unless GOGC says otherwise: an
// operator who set GOGC keeps what they set.
func TestRouterGCPercent(t *testing.T) {
	was := debug.SetGCPercent(100)
	t.Cleanup(func() { debug.SetGCPercent(was) })

	unset := func(string) (string, bool) { return "", false }
	if got := tuneRouterGC(unset); got != routerGCPercent {
		t.Errorf("GOGC unset: reported %d, want %d", got, routerGCPercent)
	}
	if now := debug.SetGCPercent(100); now != routerGCPercent {
		t.Errorf("GOGC unset: the collector's percent is %d, want %d", now, routerGCPercent)
	}

	set := func(k string) (string, bool) { return "100", k == "GOGC" }
	if got := tuneRouterGC(set); got != 100 {
		t.Errorf("GOGC=100: reported %d, want 100", got)
	}
	if now := debug.SetGCPercent(100); now != 100 {
		t.Errorf("GOGC=100: the collector's percent is %d, want 100 (the operator's)", now)
	}
}
