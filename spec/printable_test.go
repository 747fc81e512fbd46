package spec

import (
	"fmt"
	"strings"
	"testing"
)

func TestPrintable(t *testing.T) {
	for _, c := range []struct{ in, want string }{
		{"1.4.0", "1.4.0"},
		{"shop → café", "shop → café"},
		{`say "hi" \ bye`, `say "hi" \ bye`},
		{"\x1b[31mred", `"\x1b[31mred"`},
		{"a\rb", `"a\rb"`},
		{"a\nb", `"a\nb"`},
		{"a\tb", `"a\tb"`},
		{"\u202eabc", `"\u202eabc"`},
		{"bad \xff byte", `"bad \xff byte"`},
	} {
		got := Printable(c.in)
		if got != c.want {
			t.Errorf("Printable(%q) = %s, want %s", c.in, got, c.want)
		}
		if again := Printable(got); again != got {
			t.Errorf("Printable(%s) = %s; want it unchanged", got, again)
		}
	}
}

// TestProblemsAreOneLineEach checks that a field name or a provider's message
// holding control characters cannot reach a terminal raw.
func TestProblemsAreOneLineEach(t *testing.T) {
	src := withPlan("provision", "validate", "promote") + "\"\\e[31mcolour\\r\\nplan[0]\": blue\n"
	check := func(kind string, p Provider) error {
		if kind == "traffic" {
			return fmt.Errorf("refused:\n\x1b[2Jcleared")
		}
		return nil
	}
	_, err := Parse([]byte(src), check)
	out := problemsOf(t, err).Error()
	if strings.ContainsAny(out, "\x1b\r") || strings.Count(out, "\n") != 1 {
		t.Errorf("problems:\n%q\nwant two lines without control characters", out)
	}
	for _, want := range []string{`"\x1b[31mcolour\r\nplan[0]" (line 12): unknown field`, `providers.traffic (line 5): "refused:\n\x1b[2Jcleared"`} {
		if !strings.Contains(out, want) {
			t.Errorf("problems:\n%s\nwant %s", out, want)
		}
	}
}

func TestFormatPlanQuotesControlCharacters(t *testing.T) {
	r := Release{App: "shop\x1b[2J", Version: "1.0\r", PreviousVersion: "0.9\x1b[31m",
		Providers: Providers{Environment: Provider{Type: "mem\x1bory"}},
		Plan:      []Step{{Migrate: &MigrateStep{Phase: "up\x1b[1A"}}}}
	var b strings.Builder
	if err := FormatPlan(&b, r); err != nil {
		t.Fatal(err)
	}
	if out := b.String(); strings.ContainsAny(out, "\x1b\r") || !strings.Contains(out, `Release "shop\x1b[2J" "1.0\r" (from "0.9\x1b[31m")`) {
		t.Errorf("plan:\n%s", out)
	}
}
