package starter

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/cutoverhq/cutover/providers"
	"github.com/cutoverhq/cutover/providers/postgres/ledger"
	"github.com/cutoverhq/cutover/tests/harness"
	"github.com/cutoverhq/cutover/verdict"
)

// Fixtures are in local time, as the command prints them.
var h0 = time.Date(2026, 3, 4, 10, 0, 0, 0, time.Local)

func ledgerFixture(t *testing.T) (ledger.Release, []providers.LedgerEvent) {
	t.Helper()
	// A soak guard's Pass, two intervals short of its 30 (too few in a row
	// to be a gap).
	v := verdict.Verdict{Result: verdict.Pass, Summary: "green is within every margin (2 metrics)", Judged: 28, Intervals: 30, Metrics: []verdict.Metric{
		{Name: "error rate", Result: verdict.Pass, Critical: true,
			Reason: "green 0.12% of 48,600, blue 0.10% of 437,400: at most +0.09 points worse with 99% confidence, within the allowed +0.40 points; could detect +0.11 points",
			Values: []verdict.Value{{Name: "green_requests", Value: 48600}, {Name: "green_rate", Value: 0.0012345678}, {Name: "blue_requests", Value: 437400},
				{Name: "blue_rate", Value: 0.000999}, {Name: "p_value", Value: 1}, {Name: "upper_bound", Value: 0.000934}, {Name: "detectable", Value: 0.0011}},
			Detectable: "+0.11 points"},
		{Name: "latency p99", Result: verdict.Pass, Critical: true,
			Reason:     "green's p99 194 ms, blue's 188 ms: 0.41% of green's requests took over 304 ms (+62%), against 0.92% of blue's over 201 ms, so green's p99 is at most +34% slower with 99% confidence, within +50%; could detect +9%",
			Values:     []verdict.Value{{Name: "green_p99_ms", Value: 193.52254}, {Name: "blue_p99_ms", Value: 188.2}, {Name: "slowdown", Value: 0.028281}, {Name: "p_value", Value: 1}, {Name: "threshold_ms", Value: 201.3}},
			Detectable: "+9% at p99"},
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
			e.Kind, e.Step, e.State, e.Message, e.Data = providers.LedgerVerdict, 2, "Pass", "soak guard: green is within every margin (2 metrics)", data
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
2026-03-04 10:01:20  2     verdict   Pass                  soak guard: green is within every margin (2 metrics)
                                                             guard judged 28 of 30 intervals
                                                             error rate: Pass, critical: green_requests=4.86e+04 green_rate=0.001235 blue_requests=4.374e+05 blue_rate=0.000999 p_value=1 upper_bound=0.000934 detectable=0.0011 (green 0.12% of 48,600, blue 0.10% of 437,400: at most +0.09 points worse with 99% confidence, within the allowed +0.40 points; could detect +0.11 points)
                                                             latency p99: Pass, critical: green_p99_ms=193.5 blue_p99_ms=188.2 slowdown=0.02828 p_value=1 threshold_ms=201.3 (green's p99 194 ms, blue's 188 ms: 0.41% of green's requests took over 304 ms (+62%), against 0.92% of blue's over 201 ms, so green's p99 is at most +34% slower with 99% confidence, within +50%; could detect +9%)
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

// The ledger's verdict events show what status shows: the guard's coverage,
// a lack of traffic, the notes, and what each metric could detect.
func TestLedgerVerdictDetails(t *testing.T) {
	event := func(v verdict.Verdict, message string) providers.LedgerEvent {
		data, err := json.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		return providers.LedgerEvent{Kind: providers.LedgerVerdict, Step: 4, State: string(v.Result), Message: message, Data: data}
	}
	for _, c := range []struct {
		name string
		e    providers.LedgerEvent
		want []string
	}{
		{"inconclusive for lack of traffic", event(underpoweredVerdict(), "soak guard: "+underpoweredVerdict().Summary), []string{
			"guard judged 60 of 60 intervals",
			"inconclusive for lack of traffic alone: nothing failed and no data was missing",
			"error rate: Inconclusive, critical: green_requests=1200 green_errors=2.4 green_rate=0.002 blue_requests=1.08e+04 blue_errors=21.6 blue_rate=0.002 change=2.602e-18 margin=0.004 p_value=1 alpha=0.005 upper_bound=0.01929 detectable=0.02167 needed_green_requests=8138 (not enough traffic to see a +0.40 points change in error rate (green 0.20% of 1,200, blue 0.20% of 10,800); could detect +2.17 points; about 8,200 more green requests needed)",
			"latency p99: Inconclusive, critical: green_p99_ms=193.5 blue_p99_ms=193.5 slowdown=-3.442e-15 max_slowdown=0.5 green_requests=1200 blue_requests=1.08e+04 p_value=1 alpha=0.005 threshold_ms=208 detectable_slowdown=0.6035 needed_green_requests=1739 (not enough traffic to see a +50% slowdown at p99 (green's p99 194 ms, blue's 194 ms); could detect +60%; about 1,800 more green requests needed)",
		}},
		{"fail with a counter reset", event(failVerdict(), "soak guard: "+failVerdict().Summary), []string{
			"guard judged 30 of 30 intervals",
			`note: counter reset: http_requests_total{color="green",code="500"} went from 1843 to 12 at 10:03:30`,
			"error rate: Fail, critical: green_requests=6e+04 green_errors=1800 green_rate=0.03 blue_requests=5.4e+05 blue_errors=1080 blue_rate=0.002 change=0.028 margin=0.004 p_value=0 alpha=0.005 (green's error rate is higher than blue's (green 3.00% of 60,000, blue 0.20% of 540,000, always-valid p<0.0001 < 0.005))",
			"latency p99: Pass, critical: green_p99_ms=193.5 blue_p99_ms=193.5 slowdown=1.599e-14 max_slowdown=0.5 green_requests=6e+04 blue_requests=5.4e+05 p_value=1 alpha=0.005 threshold_ms=208 detectable_slowdown=0.0682 (green's p99 194 ms, blue's 194 ms: 0.19% of green's requests took over 304 ms (+46%), against 0.78% of blue's over 208 ms, so green's p99 is at most +46% slower with 99% confidence, within +50%; could detect +7%)",
		}},
		// A message without the summary (a ledger written by another
		// version): the summary comes first.
		{"summary not in the message", event(verdict.Verdict{Result: verdict.Inconclusive, Summary: "error rate: green has no data",
			Metrics: []verdict.Metric{{Name: "error rate", Result: verdict.Inconclusive, Critical: true, Reason: "green has no data", Detectable: ""}}}, "analysis"), []string{
			"Inconclusive: error rate: green has no data",
			"error rate: Inconclusive, critical (green has no data)",
		}},
		// A reason that does not say what the data could detect gets it.
		{"detectable added", event(verdict.Verdict{Result: verdict.Inconclusive,
			Metrics: []verdict.Metric{{Name: "checkout conversion", Result: verdict.Inconclusive,
				Reason:     "the window as a whole is within the margin, but its newest third is not (green 27.10%, blue 30.02%): green may have turned worse",
				Values:     []verdict.Value{{Name: "recent_change", Value: -0.0292}},
				Detectable: "-3%"}}}, "analysis: Inconclusive"), []string{
			"checkout conversion: Inconclusive: recent_change=-0.0292 (the window as a whole is within the margin, but its newest third is not (green 27.10%, blue 30.02%): green may have turned worse; could detect -3%)",
		}},
	} {
		if got := eventDetails(c.e); strings.Join(got, "\n") != strings.Join(c.want, "\n") {
			t.Errorf("%s:\n%s\nwant:\n%s", c.name, strings.Join(got, "\n"), strings.Join(c.want, "\n"))
		}
	}

	// In the events table, each line under the message, in its column.
	rel, _ := ledgerFixture(t)
	e := event(failVerdict(), "soak guard: "+failVerdict().Summary)
	e.At = h0.Add(5 * time.Minute)
	var b bytes.Buffer
	printLedgerRelease(&b, rel, []providers.LedgerEvent{e})
	_, table, _ := strings.Cut(b.String(), "\n\n")
	lines := strings.Split(strings.TrimSuffix(table, "\n"), "\n")
	col := strings.Index(lines[0], "MESSAGE")
	if len(lines) != 6 || lines[1][col:] != e.Message {
		t.Fatalf("events table:\n%s", table)
	}
	for i, want := range []string{
		"guard judged 30 of 30 intervals",
		`note: counter reset: http_requests_total{color="green",code="500"} went from 1843 to 12 at 10:03:30`,
		"error rate: Fail, critical: green_requests=6e+04 ",
		"latency p99: Pass, critical: ",
	} {
		if line := lines[2+i]; strings.TrimSpace(line[:col+2]) != "" || !strings.HasPrefix(line[col+2:], want) {
			t.Errorf("line %d under the verdict: %q, want %q two spaces into the message column", i+1, line, want)
		}
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
	var stderr bytes.Buffer
	code := Main(args, io.Discard, &stderr)
	return code, stderr.String()
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
	if err := json.Unmarshal(got.Events[3].Data, &v); err != nil || len(v.Metrics) != 2 || v.Metrics[0].Values[1].Value != 0.0012345678 || v.Intervals != 30 {
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
