package tests

import (
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/cutoverhq/cutover/tests/harness"
)

// The README's router section: `cutover router` collects garbage at GOGC=400
// unless GOGC is set, and `GOGC=100 cutover router ...` restores Go's
// default. The router says which in its "router serving" line.
func TestRouterGOGC(t *testing.T) {
	cli, _ := harness.CutoverBinaries(t)
	// The test's own environment must not decide the first case.
	if v, ok := os.LookupEnv("GOGC"); ok {
		t.Setenv("GOGC", v) // restored after the test
		os.Unsetenv("GOGC")
	}
	for _, tc := range []struct {
		env  []string
		want string
	}{
		{nil, "gogc=400"},
		{[]string{"GOGC=100"}, "gogc=100"},
	} {
		name := fmt.Sprintf("router %v", tc.env)
		p := harness.Start(t, name, append([]string{"CUTOVER_ROUTER_TOKEN=" + routerToken}, tc.env...), cli,
			"router", "--app", "gc", "--listen", fmt.Sprintf("127.0.0.1:%d", harness.FreePort(t)),
			"--admin", fmt.Sprintf("127.0.0.1:%d", harness.FreePort(t)))
		var line string
		waitFor(t, 10*time.Second, name+" serving", func() bool {
			for l := range strings.SplitSeq(p.Output(), "\n") {
				if strings.Contains(l, "router serving") {
					line = l
					return true
				}
			}
			return false
		})
		if !strings.Contains(line, tc.want) {
			t.Errorf("%s: %q, want %s in it", name, line, tc.want)
		}
	}
}
