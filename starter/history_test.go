package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/cutoverhq/cutover/ledger"
	"github.com/cutoverhq/cutover/providers"
	"github.com/cutoverhq/cutover/tests/harness"
	"github.com/cutoverhq/cutover/verdict"
)

// Fixtures are in local time, as the command prints them.
var h0 = time.Date(2026, 3, 4, 10, 0, 0, 0, time.Local)

func ledgerFixture(t *testing.T) (ledger.Release, []providers.LedgerEvent) {
	t.Helper()
	v := verdict.Verdict{Result: verdict.Pass, Summary: "all 2 metrics passed", Metrics: []verdict.Metric{
		{Name: "error rate", Result: verdict.Pass, Critical: true, Reason: "no significant difference",
			Values: []verdict.Value{{Name: "blue_requests", Value: 1000}, {Name: "green_error_rate", Value: 0.0012345678}, {Name: "p", Value: 1}}},
		{Name: "latency", Result: verdict.Pass, Values: []verdict.Value{{Name: "slowdown", Value: 3.709e-05}}},
	}}
	data, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	end := h0.Add(100 * time.Second)
	rel := ledger.Release{ID: "run-1", App: "web", Version: "1.1.0", PreviousVersion: "1.0.0", StartedBy: "alice", Via: "cli",
		CIRun: "https://ci.example/run/42", StartedAt: h0, EndedAt: &end, Outcome: "rolled_back", Reason: "aborted by bob: too slow"}
	base := providers.LedgerEvent{Release: "run-1", App: "web", Version: "1.1.0", PreviousVersion: "1.0.0"}
	ev := func(seq int, at time.Duration, f func(e *providers.LedgerEvent)) providers.LedgerEvent {
		e := base
		e.Seq, e.At = seq, h0.Add(at)
		f(&e)
		return e
	}
	events := []providers.LedgerEvent{
		ev(1, 0, func(e *providers.LedgerEvent) {
			e.Kind, e.Actor, e.Via, e.CIRun, e.Message = providers.LedgerStarted, "alice", "cli", "https://ci.example/run/42", "release of web 1.0.0 -> 1.1.0 started by alice"
		}),
		ev(2, time.Second, func(e *providers.LedgerEvent) {
			e.Kind, e.Step, e.State, e.Message = providers.LedgerStep, 1, "running", "provision"
		}),
		ev(3, 20*time.Second, func(e *providers.LedgerEvent) {
			e.Kind, e.Step, e.State, e.Message = providers.LedgerStep, 1, "done", "provision in 19s"
			e.Data = json.RawMessage(`{"phase":"expand","applied":["001.sql"]}`)
		}),
		ev(4, 80*time.Second, func(e *providers.LedgerEvent) {
			e.Kind, e.Step, e.State, e.Message, e.Data = providers.LedgerVerdict, 2, "Pass", "comparison: all 2 metrics passed", data
		}),
		ev(5, 90*time.Second, func(e *providers.LedgerEvent) {
			e.Kind, e.Step, e.Actor, e.Via, e.Message = providers.LedgerDecision, 3, "bob", "chat", "abort: too slow"
		}),
		ev(6, 95*time.Second, func(e *providers.LedgerEvent) {
			e.Kind, e.Step, e.State, e.Message = providers.LedgerStep, 5, "done", "rollback: traffic back to blue"
		}),
		ev(7, 100*time.Second, func(e *providers.LedgerEvent) {
			e.Kind, e.Outcome, e.Message = providers.LedgerOutcome, "rolled_back", "aborted by bob: too slow"
		}),
	}
	return rel, events
}

func TestPrintLedgerRelease(t *testing.T) {
	rel, events := ledgerFixture(t)
	var b bytes.Buffer
	printLedgerRelease(&b, rel, events)
	want := `release  web 1.0.0 -> 1.1.0
run      run-1
started  2026-03-04 10:00:00 by alice via cli
ci run   https://ci.example/run/42
outcome  rolled_back
reason   aborted by bob: too slow
ended    2026-03-04 10:01:40 (took 1m40s)

TIME                 STEP  KIND      STATE    BY           MESSAGE
2026-03-04 10:00:00        started            alice (cli)  release of web 1.0.0 -> 1.1.0 started by alice [CI run https://ci.example/run/42]
2026-03-04 10:00:01  1     step      running               provision
2026-03-04 10:00:20  1     step      done                  provision in 19s
                                                             data: {"phase":"expand","applied":["001.sql"]}
2026-03-04 10:01:20  2     verdict   Pass                  comparison: all 2 metrics passed
                                                             error rate: Pass, critical: blue_requests=1000 green_error_rate=0.001235 p=1 (no significant difference)
                                                             latency: Pass: slowdown=3.709e-05
2026-03-04 10:01:30  3     decision           bob (chat)   abort: too slow
2026-03-04 10:01:35  5     step      done                  rollback: traffic back to blue
2026-03-04 10:01:40        outcome                         rolled_back: aborted by bob: too slow
`
	if got := b.String(); got != want {
		t.Errorf("got:\n%s\nwant:\n%s", got, want)
	}

	// A release still going (or one that never recorded its outcome), whose
	// started event has not come yet.
	b.Reset()
	printLedgerRelease(&b, ledger.Release{ID: "run-2", App: "web", Version: "1.2.0", StartedAt: h0}, nil)
	want = `release  web 1.2.0
run      run-2
started  2026-03-04 10:00:00
outcome  none recorded (running, or it ended without recording one)

no events
`
	if got := b.String(); got != want {
		t.Errorf("got:\n%s\nwant:\n%s", got, want)
	}
}

func TestPrintHistory(t *testing.T) {
	rel, _ := ledgerFixture(t)
	running := ledger.Release{ID: "run-2", App: "web", Version: "1.2.0", PreviousVersion: "1.1.0", StartedBy: "carol (GitHub Actions run 7)", Via: "api", StartedAt: h0.Add(time.Hour)}
	var b bytes.Buffer
	printHistory(&b, "web", []ledger.Release{running, rel})
	want := `VERSION  OUTCOME      STARTED              BY                            VIA  CI RUN                     TOOK
1.2.0    -            2026-03-04 11:00:00  carol (GitHub Actions run 7)  api  -                          -
1.1.0    rolled_back  2026-03-04 10:00:00  alice                         cli  https://ci.example/run/42  1m40s
`
	if got := b.String(); got != want {
		t.Errorf("got:\n%s\nwant:\n%s", got, want)
	}
	b.Reset()
	printHistory(&b, "web", nil)
	if got := b.String(); got != "no releases of web in the ledger\n" {
		t.Errorf("empty history: %q", got)
	}
}

func TestVerdictDataThatIsNotAVerdict(t *testing.T) {
	e := providers.LedgerEvent{Kind: providers.LedgerVerdict, Data: json.RawMessage(`[1,2]`)}
	if got := eventDetails(e); len(got) != 1 || got[0] != "data: [1,2]" {
		t.Errorf("details %q", got)
	}
}

// runCLI runs the cutover command line in-process and returns its output.
func runCLI(t *testing.T, args ...string) (string, error) {
	t.Helper()
	root := newRoot()
	var out bytes.Buffer
	root.SetOut(&out)
	root.SetErr(&out)
	root.SetArgs(args)
	err := root.Execute()
	return out.String(), err
}

// runMain runs the command as main does and returns its exit status and what
// it wrote to stderr.
func runMain(t *testing.T, args ...string) (int, string) {
	t.Helper()
	f, err := os.CreateTemp(t.TempDir(), "stderr")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	saved := os.Stderr
	os.Stderr = f
	code := run(args)
	os.Stderr = saved
	b, err := os.ReadFile(f.Name())
	if err != nil {
		t.Fatal(err)
	}
	return code, string(b)
}

func TestHistoryCommandAgainstPostgres(t *testing.T) {
	url := harness.PostgresDB(t)

	// Before any worker created the ledger, history says so and creates
	// nothing.
	t.Setenv(ledgerURLEnv, url)
	if _, err := runCLI(t, "history", "web"); err == nil || !strings.Contains(err.Error(), "no release ledger") {
		t.Fatalf("history without a ledger: %v", err)
	}

	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	s, err := ledger.Open(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	_, events := ledgerFixture(t)
	// Out of order, and twice, as parallel and retried activities write them.
	for _, i := range []int{3, 1, 0, 2, 4, 6, 5, 0, 3} {
		if err := s.Record(ctx, events[i]); err != nil {
			t.Fatal(err)
		}
	}
	other := providers.LedgerEvent{Release: "run-2", App: "web", Version: "1.2.0", PreviousVersion: "1.1.0", Seq: 1, Kind: providers.LedgerStarted,
		At: h0.Add(time.Hour), Actor: "carol", Via: "api"}
	if err := s.Record(ctx, other); err != nil {
		t.Fatal(err)
	}

	// The URL from the environment.
	out, err := runCLI(t, "history", "web")
	if err != nil {
		t.Fatal(err)
	}
	want := `VERSION  OUTCOME      STARTED              BY     VIA  CI RUN                     TOOK
1.2.0    -            2026-03-04 11:00:00  carol  api  -                          -
1.1.0    rolled_back  2026-03-04 10:00:00  alice  cli  https://ci.example/run/42  1m40s
`
	if out != want {
		t.Errorf("history web:\n%s\nwant:\n%s", out, want)
	}

	// The flag wins over the environment.
	t.Setenv(ledgerURLEnv, "postgres://nobody:secret@127.0.0.1:1/none")
	out, err = runCLI(t, "history", "web", "1.1.0", "--database-url", url)
	if err != nil {
		t.Fatal(err)
	}
	rel, _ := ledgerFixture(t)
	var b bytes.Buffer
	printLedgerRelease(&b, rel, events)
	if out != b.String() {
		t.Errorf("history web 1.1.0:\n%s\nwant:\n%s", out, b.String())
	}

	out, err = runCLI(t, "history", "web", "1.1.0", "--database-url", url, "--json")
	if err != nil {
		t.Fatal(err)
	}
	var got struct {
		Release ledger.Release          `json:"release"`
		Events  []providers.LedgerEvent `json:"events"`
	}
	if err := json.Unmarshal([]byte(out), &got); err != nil {
		t.Fatalf("--json: %v\n%s", err, out)
	}
	if got.Release.ID != "run-1" || got.Release.Outcome != "rolled_back" || len(got.Events) != len(events) {
		t.Errorf("--json: %+v", got)
	}
	var v verdict.Verdict
	if err := json.Unmarshal(got.Events[3].Data, &v); err != nil || len(v.Metrics) != 2 || v.Metrics[0].Values[1].Value != 0.0012345678 {
		t.Errorf("--json verdict data %s: %v", got.Events[3].Data, err)
	}

	out, err = runCLI(t, "history", "web", "--database-url", url, "--json", "--limit", "1")
	if err != nil {
		t.Fatal(err)
	}
	var list []ledger.Release
	if err := json.Unmarshal([]byte(out), &list); err != nil || len(list) != 1 || list[0].Version != "1.2.0" {
		t.Errorf("--json --limit 1: %v %s", err, out)
	}

	out, err = runCLI(t, "history", "nope", "--database-url", url)
	if err != nil || out != "no releases of nope in the ledger\n" {
		t.Errorf("unknown app: %q, %v", out, err)
	}

	_, err = runCLI(t, "history", "web", "9.9.9", "--database-url", url)
	if err == nil || !strings.Contains(err.Error(), "no release of web 9.9.9") {
		t.Errorf("unknown version: %v", err)
	}
}

func TestHistoryCommandErrors(t *testing.T) {
	t.Setenv(ledgerURLEnv, "")
	_, err := runCLI(t, "history", "web")
	if err == nil || !strings.Contains(err.Error(), ledgerURLEnv) || !strings.Contains(err.Error(), "--database-url") || strings.Contains(err.Error(), "\n") {
		t.Errorf("without a URL: %v", err)
	}
	code, stderr := runMain(t, "history", "web")
	if code != exitError || stderr != "cutover: "+err.Error()+"\n" {
		t.Errorf("exit status %d, stderr %q without a URL; want %d and the error on one line", code, stderr, exitError)
	}

	for _, url := range []string{
		"postgres://cutover:s3cret@127.0.0.1:1/ledger?sslmode=disable&connect_timeout=2",
		"postgres://cutover:s3cret@127.0.0.1:bad/ledger",
	} {
		_, err = runCLI(t, "history", "web", "--database-url", url)
		if err == nil || strings.Contains(err.Error(), "s3cret") || strings.Contains(err.Error(), "\n") {
			t.Errorf("unreachable ledger: %v (want one line, without the password)", err)
		}
	}

	// --help must not show the URL from the environment: it has a password.
	t.Setenv(ledgerURLEnv, "postgres://cutover:s3cret@db/ledger")
	out, err := runCLI(t, "history", "--help")
	if err != nil || strings.Contains(out, "s3cret") || !strings.Contains(out, ledgerURLEnv) {
		t.Errorf("help: %v\n%s", err, out)
	}
}

func TestFlatten(t *testing.T) {
	inner := providers.NotFound("x")
	err := flatten(fmt.Errorf("failed to connect to `user=u database=x`:\n\t127.0.0.1:1: refused\n\t[::1]:1: refused: %w", inner))
	if want := "failed to connect to `user=u database=x`: 127.0.0.1:1: refused; [::1]:1: refused: x"; err.Error() != want {
		t.Errorf("flatten: %q, want %q", err, want)
	}
	if !errors.Is(err, providers.ErrNotFound) {
		t.Errorf("flatten lost the wrapped error")
	}
}
