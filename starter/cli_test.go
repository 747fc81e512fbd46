package starter

import (
	"bytes"
	"os/user"
	"strings"
	"testing"
)

// Every decision's --as, and release's --by, default to the operating-system
// user, whatever $USER says; never "unknown".
func TestWhoDefaultsToTheOperatingSystemUser(t *testing.T) {
	u, err := user.Current()
	if err != nil || u.Username == "" {
		t.Skipf("no operating-system user here: %v", err)
	}
	t.Setenv("USER", "")
	t.Setenv("GITHUB_ACTOR", "")
	for _, args := range [][]string{
		{"approve", "--help"}, {"abort", "--help"}, {"pause", "--help"}, {"resume", "--help"}, {"rollback", "--help"},
		{"release", "--help"},
	} {
		var out, errOut bytes.Buffer
		if code := Main(args, &out, &errOut); code != 0 {
			t.Fatalf("cutover %s: exit %d, %s", strings.Join(args, " "), code, errOut.String())
		}
		want := `(default "` + u.Username + `")`
		if !strings.Contains(out.String(), want) || strings.Contains(out.String(), "unknown") {
			t.Errorf("cutover %s does not default to %s:\n%s", strings.Join(args, " "), want, out.String())
		}
	}
}

// A filter value the command cannot use is bad usage: exit 2, one line that
// names the flag and what it takes, before anything connects (the address
// here answers nothing).
func TestBadFiltersAreUsageErrors(t *testing.T) {
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"list", "--outcome", "bogus"}, `cutover: --outcome: "bogus" is not one of running, promoted, rolled_back, aborted, failed`},
		{[]string{"list", "--outcome", "Promoted"}, `cutover: --outcome: "Promoted" is not one of running, promoted, rolled_back, aborted, failed`},
		{[]string{"list", "--app", "Shop_API"}, `cutover: --app: "Shop_API" is not a valid app name`},
		{[]string{"list", "--limit", "0"}, `cutover: --limit: 0 is not 1 or more`},
		{[]string{"list", "--limit", "x"}, `cutover: invalid argument "x" for "--limit" flag`},
		{[]string{"history", "Shop_API"}, `cutover: APP: "Shop_API" is not a valid app name`},
		{[]string{"history", "shop", "1.0 beta"}, `cutover: VERSION: "1.0 beta" contains whitespace`},
		{[]string{"history", "shop", "--limit", "-5"}, `cutover: --limit: -5 is not 1 or more`},
	} {
		var out, errOut bytes.Buffer
		code := Main(append(c.args, "--address", "127.0.0.1:1"), &out, &errOut)
		line := errOut.String()
		if code != exitUsage || !strings.HasPrefix(line, c.want) || strings.Count(line, "\n") != 1 {
			t.Errorf("cutover %s: exit %d, stderr %q; want exit 2 and one line starting %q", strings.Join(c.args, " "), code, line, c.want)
		}
	}
}

func TestVersion(t *testing.T) {
	var out bytes.Buffer
	if code := Main([]string{"version"}, &out, &out); code != 0 || !strings.HasPrefix(out.String(), "cutover ") || strings.Count(out.String(), "\n") != 1 {
		t.Errorf("cutover version: exit %d, %q", code, out.String())
	}
}
