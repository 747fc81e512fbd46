package spec

import (
	"os"
	"path/filepath"
	"reflect"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/cutoverhq/cutover/spec/spectest"
)

// TestBombsAreRefusedQuickly parses specs that expand to millions of nodes
// through aliases and merges. Before the decoder had a budget the merge bomb
// took over 15 s and 3 GB (at 508 bytes; ten times that per level more), the
// alias bomb 4 to 12 s and 600 MB. Now each takes a few milliseconds; the time
// is the best of up to five tries, so that a busy machine (these tests share
// their CPUs) does not fail it.
func TestBombsAreRefusedQuickly(t *testing.T) {
	const (
		maxTime  = 100 * time.Millisecond
		maxAlloc = 50 << 20
	)
	for _, c := range []struct {
		name, src string
		maxBytes  int
	}{
		{"merge fan-out", spectest.MergeBomb(8, 10), 614},
		{"aliases in settings and the plan", spectest.AliasBomb(), 22 << 10},
		{"aliases in one settings mapping", spectest.SettingsBomb(), 13 << 10},
	} {
		t.Run(c.name, func(t *testing.T) {
			if len(c.src) > c.maxBytes {
				t.Fatalf("the bomb is %d bytes, want at most %d", len(c.src), c.maxBytes)
			}
			var before, after runtime.MemStats
			runtime.ReadMemStats(&before)
			_, err := Parse([]byte(c.src), nil)
			runtime.ReadMemStats(&after)
			allocated := after.TotalAlloc - before.TotalAlloc

			ps := problemsOf(t, err)
			if len(ps) != 1 || !strings.HasPrefix(ps[0].Message, "aliases and merges (*name, <<) expand the spec past ") {
				t.Errorf("problems:\n%v\nwant the one about aliases and merges", ps)
			}
			if allocated > maxAlloc {
				t.Errorf("allocated %d MiB; want under %d", allocated>>20, maxAlloc>>20)
			}

			took := time.Duration(1<<63 - 1)
			for i := 0; i < 5 && took > maxTime; i++ {
				start := time.Now()
				_, _ = Parse([]byte(c.src), nil)
				took = min(took, time.Since(start))
			}
			t.Logf("%d bytes: refused in %v, %d KiB allocated", len(c.src), took, allocated>>10)
			if took > maxTime {
				t.Errorf("took %v; want under %v", took, maxTime)
			}
		})
	}
}

// TestAnchorsWithinTheBudget checks that reuse as a spec would use it passes:
// every provider shares one mapping, every soak one set of settings.
func TestAnchorsWithinTheBudget(t *testing.T) {
	var b strings.Builder
	b.WriteString("app: shop-api\nversion: 1.4.0\nproviders:\n")
	b.WriteString("  environment: &p {type: memory, settings: &s {zone: a, labels: {team: shop, tier: web}, metrics: [errors, latency]}}\n")
	b.WriteString("  traffic: *p\n  analysis: {<<: *p, settings: *s}\n  notifications: [*p, *p, *p]\n")
	b.WriteString("plan:\n  - provision\n  - validate\n")
	for range 40 {
		b.WriteString("  - soak: &soak {duration: 1m, interval: 10s}\n  - soak: *soak\n")
	}
	b.WriteString("  - promote\n")
	if _, err := Parse([]byte(b.String()), nil); err != nil {
		t.Fatalf("Parse: %v", err)
	}
}

func TestAliasLoop(t *testing.T) {
	src := strings.Replace(header, "analysis: {type: memory}", "analysis: {type: memory, settings: &a {self: [*a]}}", 1)
	_, err := Parse([]byte(src), nil)
	if got := brief(problemsOf(t, err)); len(got) != 1 || !strings.HasPrefix(got[0], "providers.analysis.settings: ") {
		t.Errorf("problems %q; want one at providers.analysis.settings", got)
	}
}

func TestSpecSize(t *testing.T) {
	at := func(n int) []byte {
		b := []byte(header)
		b = append(b, '#')
		for len(b) < n-1 {
			b = append(b, 'x')
		}
		return append(b, '\n')
	}
	if _, err := Parse(at(MaxSpecBytes), nil); err != nil {
		t.Errorf("a spec of exactly %d bytes: %v", MaxSpecBytes, err)
	}
	_, err := Parse(at(MaxSpecBytes+1), nil)
	if got := brief(problemsOf(t, err)); !reflect.DeepEqual(got, []string{"the spec is 257 KiB; at most 256 KiB"}) {
		t.Errorf("problems %q", got)
	}

	// A file says how big it is without being read whole.
	big := filepath.Join(t.TempDir(), "release.yaml")
	if err := os.WriteFile(big, at(1<<20), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err = ParseFile(big, nil)
	if got := brief(problemsOf(t, err)); !reflect.DeepEqual(got, []string{"the spec is 1024 KiB; at most 256 KiB"}) {
		t.Errorf("problems %q", got)
	}
	// Something endless is refused once it passed the limit.
	if _, err := os.Stat("/dev/zero"); err == nil {
		_, err = ParseFile("/dev/zero", nil)
		if got := brief(problemsOf(t, err)); !reflect.DeepEqual(got, []string{"the spec is over 256 KiB; at most 256 KiB"}) {
			t.Errorf("problems %q", got)
		}
	}
}

func TestPlanSteps(t *testing.T) {
	steps := []string{"provision", "validate"}
	for len(steps) < MaxPlanSteps-1 {
		steps = append(steps, "pause: {duration: 1m}")
	}
	steps = append(steps, "promote")
	if _, err := Parse([]byte(withPlan(steps...)), nil); err != nil {
		t.Fatalf("a plan of %d steps: %v", len(steps), err)
	}
	steps = append(steps, "decommission")
	_, err := Parse([]byte(withPlan(steps...)), nil)
	if got := brief(problemsOf(t, err)); !reflect.DeepEqual(got, []string{"plan: 101 steps; at most 100"}) {
		t.Errorf("problems %q", got)
	}
}

func TestCheckVersion(t *testing.T) {
	for _, v := range []string{"1", "1.4.0", "v1.4.0", "2024.05.1-rc.1+b7", "1.0.0_beta", "a", "1..2", strings.Repeat("1", MaxVersionLength)} {
		if err := CheckVersion(v); err != nil {
			t.Errorf("CheckVersion(%q) = %v", v, err)
		}
	}
	for _, c := range []struct{ v, want string }{
		{"", "required"},
		{"../../x", `"../../x" is not a valid version; use letters, digits and . _ + - only, starting with a letter or digit (like 1.4.0 or 2024.05.1-rc.1+b7)`},
		{"..", `".." is not a valid version`},
		{".hidden", `".hidden" is not a valid version`},
		{"-rf", `"-rf" is not a valid version`},
		{"1/2", `"1/2" is not a valid version`},
		{`1\2`, `"1\\2" is not a valid version`},
		{"1.0\x1b[31m", `"1.0\x1b[31m" is not a valid version`},
		{"1.0\r", `"1.0\r" contains whitespace`},
		{"1.0\x00", `"1.0\x00" is not a valid version`},
		{"1.0é", `"1.0é" is not a valid version`},
		{"1:2", `"1:2" is not a valid version`},
		{strings.Repeat("1", MaxVersionLength+1), "129 characters is too long; write at most 128"},
	} {
		err := CheckVersion(c.v)
		if err == nil || !strings.HasPrefix(err.Error(), c.want) {
			t.Errorf("CheckVersion(%q) = %v; want %s", c.v, err, c.want)
		}
	}
}

// TestStrictScalars checks the values read where true, false and decimal
// numbers are the only booleans and numbers (problemCases has what is refused).
func TestStrictScalars(t *testing.T) {
	r, err := Parse([]byte(withPlan("provision", "validate", "setWeight: 010", "analysis: {earlyStop: true}", "promote")+"allowSelfApproval: true\n"), nil)
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	if *r.Plan[2].SetWeight != 10 || !r.Plan[3].Analysis.EarlyStop || !r.AllowSelfApproval {
		t.Errorf("read setWeight %d (want 10, in decimal), earlyStop %v, allowSelfApproval %v", *r.Plan[2].SetWeight, r.Plan[3].Analysis.EarlyStop, r.AllowSelfApproval)
	}
}
