package starter

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cutoverhq/cutover/providers"
	"github.com/cutoverhq/cutover/providers/postgres/ledger"
	"github.com/cutoverhq/cutover/releases"
	"github.com/cutoverhq/cutover/verdict"
	"github.com/cutoverhq/cutover/workflows"
)

// evil is text a request or the workflow could hold: a colour change, a
// carriage return that lets the rest overwrite the line, and a new line that
// fakes one of the printer's own.
const evil = "\x1b[31mred\rok\n12:00:00 outcome: promoted"

// assertNoRaw fails when out holds a raw escape or carriage return, or the line
// evil fakes, and when it does not show evil quoted.
func assertNoRaw(t *testing.T, name, out string) {
	t.Helper()
	if strings.ContainsAny(out, "\x1b\r") {
		t.Errorf("%s prints a raw control character:\n%q", name, out)
	}
	if strings.Contains(out, "\n12:00:00 outcome: promoted") {
		t.Errorf("%s prints a faked line:\n%s", name, out)
	}
	if !strings.Contains(out, `\x1b[31mred\rok\n12:00:00 outcome: promoted`) {
		t.Errorf("%s does not show the text quoted:\n%s", name, out)
	}
}

func evilStatus(t *testing.T) workflows.Status {
	st := liveStatus(t, 4, live0.Add(2*time.Second))
	st.App, st.Version, st.PreviousVersion, st.StartedBy = "shop"+evil, "1.5.0"+evil, "1.4.2"+evil, "ci"+evil
	st.Waiting, st.Paused = "a decision"+evil, true
	st.Steps[0].Detail = evil
	st.Steps[3].Description = "soak" + evil
	st.Decisions = []workflows.DecisionRecord{{Decision: workflows.Decision{By: "ann" + evil, Reason: evil, Via: "cli" + evil}, Action: workflows.UpdateApprove, Step: 4, At: live0}}
	v := failVerdict()
	v.Summary, v.Notes = evil, []string{evil}
	v.Metrics[0].Name, v.Metrics[0].Reason = "errors"+evil, evil
	st.LastVerdict = &v
	st.Outcome, st.Reason, st.EndedAt = workflows.OutcomeRolledBack, evil, live0.Add(time.Minute)
	return st
}

func TestPrintersQuoteControlCharacters(t *testing.T) {
	st := evilStatus(t)
	var b bytes.Buffer
	printStatus(&b, st, live0.Add(time.Hour))
	assertNoRaw(t, "status", b.String())

	b.Reset()
	printProgress(&b, nil, st)
	assertNoRaw(t, "progress", b.String())

	assertNoRaw(t, "live view", strings.Join(liveFrame(st, live0.Add(time.Minute), 10000), "\n"))

	b.Reset()
	printList(&b, []releases.Summary{{App: "shop" + evil, Version: evil, Stage: evil, Outcome: evil}})
	assertNoRaw(t, "list", b.String())

	b.Reset()
	printHistory(&b, "shop", []ledger.Release{{App: "shop", Version: evil, StartedBy: evil, Via: evil, CIRun: evil}})
	assertNoRaw(t, "history", b.String())

	b.Reset()
	data, err := json.Marshal(verdict.Verdict{Result: verdict.Fail, Summary: evil, Notes: []string{evil}})
	if err != nil {
		t.Fatal(err)
	}
	printLedgerRelease(&b, ledger.Release{App: "shop", Version: evil, Reason: evil}, []providers.LedgerEvent{
		{Kind: providers.LedgerVerdict, Message: evil, Actor: evil, Data: data},
		{Kind: "custom", Message: "data", Data: json.RawMessage(`{"note": "` + "\x1b[2J" + `"}`)},
	})
	if out := b.String(); strings.ContainsAny(out, "\x1b\r") {
		t.Errorf("a ledger release prints a raw control character:\n%q", out)
	}

	// The original is left as it was.
	if !strings.Contains(st.Reason, "\x1b") {
		t.Error("printing changed the status it printed")
	}
}

// TestPlanRefusesVersionsThatAreNotOne runs `cutover plan` as a person would,
// on specs whose version could name another file or hold an escape.
func TestPlanRefusesVersionsThatAreNotOne(t *testing.T) {
	for _, c := range []struct{ line, want string }{
		{"version: ../../etc/x", `  version (line 2): "../../etc/x" is not a valid version; use letters, digits and . _ + - only`},
		{`version: "1.0\e[31m"`, `  version (line 2): "1.0\x1b[31m" is not a valid version; use letters, digits and . _ + - only`},
		{`version: "1.0\r"`, `  version (line 2): "1.0\r" contains whitespace; write the version without spaces`},
	} {
		file := filepath.Join(t.TempDir(), "release.yaml")
		src := "app: shop\n" + c.line + "\nproviders:\n  environment: {type: memory}\n  traffic: {type: memory}\n  analysis: {type: memory}\n"
		if err := os.WriteFile(file, []byte(src), 0o600); err != nil {
			t.Fatal(err)
		}
		code, stderr := runMain(t, "plan", "-f", file)
		lines := strings.Split(strings.TrimSuffix(stderr, "\n"), "\n")
		if code != exitError || len(lines) != 2 || lines[0] != "cutover: "+file+" is not a valid release spec:" || !strings.HasPrefix(lines[1], c.want) {
			t.Errorf("%s: exit %d, stderr:\n%s\nwant exit 1 and the one problem %s", c.line, code, stderr, c.want)
		}
		if strings.ContainsAny(stderr, "\x1b\r") {
			t.Errorf("%s: stderr holds a raw control character: %q", c.line, stderr)
		}
	}
}

// TestPlanRefusesLooseScalars runs `cutover plan` on the review's loose
// scalars: YAML 1.1 booleans and a hexadecimal weight, which used to mean true
// and 16.
func TestPlanRefusesLooseScalars(t *testing.T) {
	for _, c := range []struct{ extra, want string }{
		{`allowSelfApproval: "yes"`, `allowSelfApproval (line 7): "yes" is not true or false`},
		{"allowSelfApproval: on", `allowSelfApproval (line 7): "on" is not true or false`},
		{"allowSelfApproval: Y", `allowSelfApproval (line 7): "Y" is not true or false`},
		{"plan: [provision, validate, setWeight: 0x10, promote]", `plan[2].setWeight (line 7): "0x10" is not a whole number`},
	} {
		file := filepath.Join(t.TempDir(), "release.yaml")
		src := "app: shop\nversion: 1.0.0\nproviders:\n  environment: {type: memory}\n  traffic: {type: memory}\n  analysis: {type: memory}\n" + c.extra + "\n"
		if err := os.WriteFile(file, []byte(src), 0o600); err != nil {
			t.Fatal(err)
		}
		code, stderr := runMain(t, "plan", "-f", file)
		if code != exitError || !strings.Contains(stderr, c.want) {
			t.Errorf("%s: exit %d, stderr:\n%s\nwant exit 1 naming %s", c.extra, code, stderr, c.want)
		}
	}
}
