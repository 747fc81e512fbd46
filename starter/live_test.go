package starter

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/cutoverhq/cutover/spec"
	"github.com/cutoverhq/cutover/verdict"
	"github.com/cutoverhq/cutover/workflows"
)

var live0 = time.Date(2026, 3, 4, 10, 0, 0, 0, time.UTC)

// liveStatus is a release of shop with the steps the workflow would record
// for this plan (the descriptions come from the spec, as the workflow's do),
// started at live0 and running step `step`, which started at `since`.
func liveStatus(t *testing.T, step int, since time.Time) workflows.Status {
	t.Helper()
	rel, err := spec.Parse([]byte(`app: shop
version: 1.5.0
previousVersion: 1.4.2
providers:
  environment: {type: memory}
  traffic: {type: memory}
  analysis: {type: memory}
plan:
  - provision
  - validate
  - setWeight: 10
  - soak: {duration: 5m, interval: 10s}
  - setWeight: 50
  - analysis: {window: 1m}
  - approval: {timeout: 24h}
  - promote
  - standby: {duration: 15m}
  - pause: {duration: 30s}
  - decommission
`), nil)
	if err != nil {
		t.Fatal(err)
	}
	st := workflows.Status{App: "shop", Version: "1.5.0", PreviousVersion: "1.4.2", StartedAt: live0,
		Weights: workflows.Weights{Blue: 100}, Outcome: workflows.OutcomeRunning, Step: step}
	at := live0
	for i, s := range rel.Plan {
		r := workflows.StepRecord{Index: i + 1, Kind: s.Kind(), Description: s.Describe(), State: workflows.StatePending}
		switch {
		case i+1 < step:
			r.State, r.Started, r.Ended = workflows.StateDone, at, at.Add(time.Second)
			at = at.Add(time.Second)
		case i+1 == step:
			r.State, r.Started = workflows.StateRunning, since
			st.Stage = s.Kind()
		}
		st.Steps = append(st.Steps, r)
	}
	return st
}

func TestTrafficBar(t *testing.T) {
	for _, c := range []struct {
		green int
		want  string
	}{
		{0, "blue ░░░░░░░░░░░░░░░░░░░░ green 0%"},
		{10, "blue ░░░░░░░░░░░░░░░░░░██ green 10%"},
		{50, "blue ░░░░░░░░░░██████████ green 50%"},
		{100, "blue ████████████████████ green 100%"},
		// A little green shows, and so does a little blue.
		{1, "blue ░░░░░░░░░░░░░░░░░░░█ green 1%"},
		{99, "blue ░███████████████████ green 99%"},
	} {
		if got := trafficBar(workflows.Weights{Blue: 100 - c.green, Green: c.green}, 80); got != c.want {
			t.Errorf("green %d%%:\n got %q\nwant %q", c.green, got, c.want)
		}
	}
	// Narrower: a shorter bar, then green's share alone.
	if got, want := trafficBar(workflows.Weights{Blue: 50, Green: 50}, 26), "blue ░░░░░██████ green 50%"; got != want {
		t.Errorf("width 26: got %q, want %q", got, want)
	}
	if got, want := trafficBar(workflows.Weights{Blue: 50, Green: 50}, 19), "green 50%"; got != want {
		t.Errorf("width 19: got %q, want %q", got, want)
	}
}

func TestLiveFrameSoak(t *testing.T) {
	st := liveStatus(t, 4, live0.Add(2*time.Second))
	st.Weights = workflows.Weights{Blue: 90, Green: 10}
	now := live0.Add(2*time.Second + 1*time.Minute + 20*time.Second)
	want := []string{
		"release  shop 1.4.2 → 1.5.0 · running for 1m22s",
		"stage    soak · step 4/11 · soak 5m0s, guard every 10s",
		"traffic  blue ░░░░░░░░░░░░░░░░░░██ green 10%",
		"time     step 1m20s of 5m0s · 3m40s left",
	}
	if got := liveFrame(st, now, 100); strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("frame:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	// Past its end (the poll is late), nothing negative.
	got := liveFrame(st, live0.Add(10*time.Minute), 100)
	if !strings.Contains(strings.Join(got, "\n"), "step 9m58s of 5m0s · 0s left") {
		t.Errorf("soak past its end:\n%s", strings.Join(got, "\n"))
	}
	// Under ten seconds, tenths.
	got = liveFrame(st, live0.Add(3500*time.Millisecond), 100)
	if !strings.Contains(strings.Join(got, "\n"), "step 1.5s of 5m0s · 4m59s left") {
		t.Errorf("soak at its start:\n%s", strings.Join(got, "\n"))
	}
}

func TestLiveFrameStandbyAndPause(t *testing.T) {
	st := liveStatus(t, 9, live0.Add(10*time.Second))
	st.Weights = workflows.Weights{Green: 100}
	frame := strings.Join(liveFrame(st, live0.Add(70*time.Second), 100), "\n")
	for _, want := range []string{"standby · step 9/11 · standby 15m0s", "blue ████████████████████ green 100%", "time     step 1m0s of 15m0s · 14m0s left"} {
		if !strings.Contains(frame, want) {
			t.Errorf("standby frame lacks %q:\n%s", want, frame)
		}
	}
	st = liveStatus(t, 10, live0.Add(10*time.Second))
	st.Waiting = "resume"
	frame = strings.Join(liveFrame(st, live0.Add(20*time.Second), 100), "\n")
	for _, want := range []string{"time     step 10s of 30s · 20s left", "waiting  for resume: cutover resume shop"} {
		if !strings.Contains(frame, want) {
			t.Errorf("pause frame lacks %q:\n%s", want, frame)
		}
	}
}

func TestLiveFrameWaitingForApproval(t *testing.T) {
	st := liveStatus(t, 7, live0.Add(time.Minute))
	st.Weights = workflows.Weights{Blue: 50, Green: 50}
	st.Waiting = "approval"
	// The verdict of the comparison before the gate: no guard, so no coverage.
	st.LastVerdict = &verdict.Verdict{Result: verdict.Pass, Summary: "green is within every margin (2 metrics)",
		Metrics: []verdict.Metric{{Name: "error rate", Result: verdict.Pass, Critical: true, Detectable: "+0.08 points"}, {Name: "latency p99", Result: verdict.Pass, Critical: true}}}
	want := []string{
		"release  shop 1.4.2 → 1.5.0 · running for 3m0s",
		"stage    approval · step 7/11 · wait for approval (timeout 24h0m0s, then rollback)",
		"traffic  blue ░░░░░░░░░░██████████ green 50%",
		"time     step 2m0s · times out in 23h58m0s",
		"waiting  for approval: cutover approve shop --as NAME (or cutover abort shop --reason ...)",
		"verdict  Pass: green is within every margin (2 metrics)",
	}
	if got := liveFrame(st, live0.Add(3*time.Minute), 120); strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("frame:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}

	// An inconclusive verdict holds the release for a person.
	st = liveStatus(t, 6, live0.Add(time.Minute))
	st.Waiting = "a decision on an inconclusive analysis"
	st.LastVerdict = &verdict.Verdict{Result: verdict.Inconclusive, Summary: "error rate: green served no requests; latency p99: 6 of 6 steps had no histogram for a color, so the window cannot be judged"}
	frame := strings.Join(liveFrame(st, live0.Add(2*time.Minute), 200), "\n")
	for _, want := range []string{
		"waiting  for a decision on an inconclusive analysis: cutover approve shop --as NAME to go on, cutover abort shop --reason ... to roll back",
		"verdict  Inconclusive: error rate: green served no requests; latency p99: 6 of 6 steps had no histogram for a color, so the window cannot be judged\n",
		"time     step 1m0s\n", // no limit on an analysis
	} {
		if !strings.Contains(frame+"\n", want) {
			t.Errorf("frame lacks %q:\n%s", want, frame)
		}
	}

	// Paused: it holds before the next step.
	st.Waiting, st.Paused = "", true
	if frame := strings.Join(liveFrame(st, live0.Add(2*time.Minute), 200), "\n"); !strings.Contains(frame, "paused   holds before the next step: cutover resume shop") {
		t.Errorf("paused frame:\n%s", frame)
	}
}

func TestLiveFrameEnded(t *testing.T) {
	st := liveStatus(t, 5, live0.Add(40*time.Second))
	v := failVerdict()
	st.Stage, st.Outcome, st.Reason = workflows.StageRollback, workflows.OutcomeRunning, "soak guard failed: "+v.Summary
	st.Steps[4].State = workflows.StateCancelled
	st.Steps[4].Ended = live0.Add(41 * time.Second)
	st.Weights = workflows.Weights{Blue: 100}
	st.LastVerdict = &v
	st.Decisions = []workflows.DecisionRecord{{Decision: workflows.Decision{By: "alice", Reason: "pager"}, Action: "abort"}}
	st.Rollback = []workflows.StepRecord{
		{Index: 1, Kind: workflows.StageRollback, Description: "all traffic back to blue", State: workflows.StateDone, Started: live0.Add(41 * time.Second), Ended: live0.Add(42 * time.Second)},
		{Index: 2, Kind: workflows.StageRollback, Description: "decommission green", State: workflows.StateRunning, Started: live0.Add(42 * time.Second)},
	}
	frame := strings.Join(liveFrame(st, live0.Add(45*time.Second), 100), "\n")
	for _, want := range []string{
		"stage    rollback · undo 2 · decommission green",
		"time     step 3s\n",
		"verdict  Fail: error rate failed: green's error rate is higher than blue's (green 3.00% of 60,000, …",
		"         guard judged 30 of 30 intervals\n",
		"         note: counter reset: http_requests_total{color=\"green\",code=\"500\"} went from 1843 to 12 at…",
		"decision abort by alice: pager",
	} {
		if !strings.Contains(frame+"\n", want) {
			t.Errorf("rollback frame lacks %q:\n%s", want, frame)
		}
	}

	st.Stage, st.Outcome, st.EndedAt = workflows.StageDone, workflows.OutcomeRolledBack, live0.Add(50*time.Second)
	st.Rollback[1].State, st.Rollback[1].Ended = workflows.StateDone, st.EndedAt
	want := []string{
		"release  shop 1.4.2 → 1.5.0 · rolled_back after 50s",
		"stage    done",
		"traffic  blue ░░░░░░░░░░░░░░░░░░░░ green 0%",
		"verdict  Fail: error rate failed: green's error rate is higher than blue's (green 3.00% of 60,000, …",
		"         guard judged 30 of 30 intervals",
		"         note: counter reset: http_requests_total{color=\"green\",code=\"500\"} went from 1843 to 12 at…",
		"decision abort by alice: pager",
		"outcome  rolled_back: soak guard failed: error rate failed: green's error rate is higher than blue'…",
	}
	// The end stays as it was, whatever the clock says.
	if got := liveFrame(st, live0.Add(time.Hour), 100); strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("final frame:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

func TestLiveFrameNarrow(t *testing.T) {
	st := liveStatus(t, 7, live0.Add(time.Minute))
	st.Weights = workflows.Weights{Blue: 50, Green: 50}
	st.Waiting = "approval"
	v := passVerdict()
	st.LastVerdict = &v
	for width := 1; width <= 120; width++ {
		for _, line := range liveFrame(st, live0.Add(3*time.Minute), width) {
			if n := utf8.RuneCountInString(line); n > width {
				t.Fatalf("width %d: line of %d characters: %q", width, n, line)
			}
		}
	}
	got := liveFrame(st, live0.Add(3*time.Minute), 40)
	for i, want := range []string{
		"release  shop 1.4.2 → 1.5.0 · running f…",
		"stage    approval · step 7/11 · wait fo…",
		"traffic  blue ░░░░░░░░████████ green 50%",
	} {
		if got[i] != want {
			t.Errorf("width 40, line %d: %q, want %q", i, got[i], want)
		}
	}
	if got := liveFrame(st, live0.Add(3*time.Minute), 30)[2]; got != "traffic  blue ░░░███ green 50%" {
		t.Errorf("width 30: traffic line %q", got)
	}
	if got := liveFrame(st, live0.Add(3*time.Minute), 28)[2]; got != "traffic  green 50%" {
		t.Errorf("width 28: traffic line %q", got)
	}
	// No width known: 80 columns.
	if got := liveFrame(st, live0.Add(3*time.Minute), 0); len(got[4]) == 0 || utf8.RuneCountInString(got[4]) > 80 {
		t.Errorf("width 0: %q", got[4])
	}
}

// fakeTerm is a writer that says it is a terminal of some width.
type fakeTerm struct {
	mu    sync.Mutex
	b     bytes.Buffer
	width int
}

func (f *fakeTerm) Write(p []byte) (int, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.b.Write(p)
}

func (f *fakeTerm) String() string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.b.String()
}

func (f *fakeTerm) TerminalWidth() (int, bool) { return f.width, f.width > 0 }

func TestProgressPicksTheLiveViewOnATerminal(t *testing.T) {
	statuses := func() []workflows.Status {
		a := liveStatus(t, 4, live0.Add(2*time.Second))
		a.Weights = workflows.Weights{Blue: 90, Green: 10}
		b := liveStatus(t, 7, live0.Add(time.Minute))
		b.Weights, b.Waiting = workflows.Weights{Blue: 50, Green: 50}, "approval"
		c := liveStatus(t, 12, live0)
		c.Step = 11
		c.Weights, c.Stage, c.Outcome, c.EndedAt = workflows.Weights{Green: 100}, workflows.StageDone, workflows.OutcomePromoted, live0.Add(20*time.Minute)
		return []workflows.Status{a, b, c}
	}()

	// Not a terminal (a pipe, a CI log, a file): the timestamped lines, exactly
	// as printProgress and printSteps print them.
	var want bytes.Buffer
	var prev *workflows.Status
	for _, st := range statuses {
		printProgress(&want, prev, st)
		prev = &st
	}
	printSteps(&want, statuses[2], time.Now())
	f, err := os.Create(filepath.Join(t.TempDir(), "out"))
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	notTerm := &fakeTerm{width: 0}
	for _, c := range []struct {
		w    io.Writer
		read func() string
	}{
		{&buf, buf.String},
		{notTerm, notTerm.String},
		{f, func() string { b, _ := os.ReadFile(f.Name()); return string(b) }},
	} {
		p := newProgress(c.w)
		if _, ok := p.(*plainProgress); !ok {
			t.Fatalf("%T: progress is %T, want the plain lines", c.w, p)
		}
		for _, st := range statuses {
			p.update(st)
		}
		p.finish(statuses[2])
		if got := c.read(); got != want.String() {
			t.Errorf("%T: plain output:\n%s\nwant:\n%s", c.w, got, want.String())
		}
	}

	// A terminal: frames redrawn in place, then the final one and the steps.
	term := &fakeTerm{width: 100}
	if _, ok := newProgress(term).(*liveView); !ok {
		t.Fatal("a terminal does not get the live view")
	}
	term = &fakeTerm{width: 100}
	now := live0.Add(3 * time.Minute)
	l := startLive(term, func() int { n, _ := term.TerminalWidth(); return n }, func() time.Time { return now }, time.Hour)
	l.update(statuses[0])
	first := term.String()
	if !strings.HasPrefix(first, "\r\x1b[2Krelease  shop 1.4.2 → 1.5.0") {
		t.Errorf("first frame does not start with the header:\n%q", first)
	}
	if n := strings.Count(first, "\n"); n != 4 {
		t.Errorf("first frame has %d lines, want 4:\n%q", n, first)
	}
	l.update(statuses[1])
	second := strings.TrimPrefix(term.String(), first)
	if !strings.HasPrefix(second, "\x1b[4A\r\x1b[2Krelease") {
		t.Errorf("second frame does not move up over the first:\n%q", second)
	}
	if !strings.Contains(second, "waiting  for approval") {
		t.Errorf("second frame:\n%q", second)
	}
	l.finish(statuses[2])
	last := strings.TrimPrefix(term.String(), first+second)
	frame, steps, ok := strings.Cut(last, "steps:\n")
	if !ok {
		t.Fatalf("no steps table after the final frame:\n%q", last)
	}
	// The final frame is shorter: it clears what the last one left below.
	if !strings.HasPrefix(frame, "\x1b[5A") || !strings.HasSuffix(frame, "\x1b[J") || !strings.Contains(frame, "promoted after 20m0s") {
		t.Errorf("final frame:\n%q", frame)
	}
	if strings.Contains(steps, "\x1b") || !strings.Contains(steps, "decommission blue") {
		t.Errorf("steps table:\n%q", steps)
	}
	// Every frame's lines fit the terminal, one column to spare.
	for _, line := range strings.Split(term.String(), "\n") {
		if i := strings.LastIndex(line, "\x1b[2K"); i >= 0 {
			if n := utf8.RuneCountInString(line[i+len("\x1b[2K"):]); n > 99 {
				t.Errorf("line of %d characters on a terminal of 100: %q", n, line)
			}
		}
	}
}

func TestLiveViewRedrawsAsTimePasses(t *testing.T) {
	term := &fakeTerm{width: 100}
	var mu sync.Mutex
	now := live0.Add(10 * time.Second)
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	l := startLive(term, func() int { return 100 }, clock, 10*time.Millisecond)
	st := liveStatus(t, 4, live0.Add(2*time.Second))
	l.update(st)
	mu.Lock()
	now = now.Add(time.Minute)
	mu.Unlock()
	deadline := time.Now().Add(5 * time.Second)
	for !strings.Contains(term.String(), "step 1m8s of 5m0s · 3m52s left") {
		if time.Now().After(deadline) {
			t.Fatalf("the view was not redrawn as time passed:\n%q", term.String())
		}
		time.Sleep(5 * time.Millisecond)
	}
	l.stop()
	l.stop() // stopping twice is fine
	n := len(term.String())
	time.Sleep(50 * time.Millisecond)
	if len(term.String()) != n {
		t.Error("the view was redrawn after stop")
	}
}

func TestLiveFrameVerdictCoverageAndNotes(t *testing.T) {
	// A soak guard inconclusive for lack of traffic alone holds the release.
	st := liveStatus(t, 4, live0.Add(2*time.Second))
	st.Weights = workflows.Weights{Blue: 99, Green: 1}
	st.Steps[3].State, st.Steps[3].Ended = workflows.StateDone, live0.Add(5*time.Minute+2*time.Second)
	st.Waiting = "a decision on an inconclusive soak guard"
	v := underpoweredVerdict()
	st.LastVerdict = &v
	got := liveFrame(st, live0.Add(6*time.Minute), 120)
	want := []string{
		"release  shop 1.4.2 → 1.5.0 · running for 6m0s",
		"stage    soak · step 4/11",
		"traffic  blue ░░░░░░░░░░░░░░░░░░░█ green 1%",
		"waiting  for a decision on an inconclusive soak guard: cutover approve shop --as NAME to go on, cutover abort shop --re…",
		"verdict  Inconclusive: error rate: not enough traffic to see a +0.40 points change in error rate (green 0.20% of 1,200,…",
		"         guard judged 60 of 60 intervals",
		"         inconclusive for lack of traffic alone: nothing failed and no data was missing",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("frame:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}

	// Many notes: the first few, and where to read the rest.
	v = failVerdict()
	v.Notes = nil
	for i := range 5 {
		v.Notes = append(v.Notes, fmt.Sprintf(`counter reset: http_requests_total{color="green",code="200"} went from %d to 3 at 10:0%d:10`, 1000+i, i))
	}
	v.Notes = append(v.Notes, "and 3 more counter resets", "missed 4 intervals from 10:05:00 to 10:05:50")
	st.LastVerdict, st.Waiting = &v, ""
	frame := strings.Join(liveFrame(st, live0.Add(6*time.Minute), 120), "\n")
	for _, want := range []string{
		"\n         guard judged 30 of 30 intervals\n",
		"\n         note: counter reset: http_requests_total{color=\"green\",code=\"200\"} went from 1000 to 3 at 10:00:10\n",
		"\n         note: counter reset: http_requests_total{color=\"green\",code=\"200\"} went from 1002 to 3 at 10:02:10\n",
		"\n         and 4 more notes: cutover status shop",
	} {
		if !strings.Contains(frame, want) {
			t.Errorf("frame lacks %q:\n%s", want, frame)
		}
	}
	if strings.Contains(frame, "went from 1003") || strings.Contains(frame, "missed 4 intervals") {
		t.Errorf("frame shows more notes than it has room for:\n%s", frame)
	}
}
