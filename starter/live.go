package starter

import (
	"fmt"
	"io"
	"os"
	"regexp"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"golang.org/x/term"

	"github.com/cutoverhq/cutover/workflows"
)

// progress shows a release's progress while `release --wait` or `watch`
// follows it: a live view redrawn in place on a terminal, timestamped lines in
// a CI log.
type progress interface {
	// update takes a new status (the poll saw a change).
	update(st workflows.Status)
	// finish shows the release's final state and its steps.
	finish(final workflows.Status)
	// stop stops redrawing and leaves what is on screen (following failed).
	stop()
}

// newProgress picks the live view when w is a terminal.
func newProgress(w io.Writer) progress {
	if width, ok := terminalWidth(w); ok {
		return startLive(w, width, time.Now, liveRedraw)
	}
	return &plainProgress{w: w}
}

// terminalWidth reports whether w is a terminal and, if so, a function that
// returns its current width. A writer may say so itself (tests do); a file is
// asked through its descriptor.
func terminalWidth(w io.Writer) (func() int, bool) {
	switch t := w.(type) {
	case interface{ TerminalWidth() (int, bool) }:
		if _, ok := t.TerminalWidth(); ok {
			return func() int { n, _ := t.TerminalWidth(); return n }, true
		}
	case *os.File:
		fd := int(t.Fd())
		if term.IsTerminal(fd) {
			return func() int {
				if n, _, err := term.GetSize(fd); err == nil && n > 0 {
					return n
				}
				return 80
			}, true
		}
	}
	return nil, false
}

// plainProgress prints a timestamped line for each thing that happened, as it
// always has: CI logs and pipes read these.
type plainProgress struct {
	w    io.Writer
	prev *workflows.Status
}

func (p *plainProgress) update(st workflows.Status) {
	printProgress(p.w, p.prev, st)
	p.prev = &st
}

func (p *plainProgress) finish(final workflows.Status) { printSteps(p.w, final, time.Now()) }

func (p *plainProgress) stop() {}

// liveRedraw is how often the live view is redrawn between status changes, so
// that elapsed and remaining times tick.
const liveRedraw = 250 * time.Millisecond

// liveView redraws liveFrame in place: it moves the cursor up over the frame it
// drew last and clears each line as it writes the new one. It never takes the
// screen over: what was printed before stays above it.
type liveView struct {
	w     io.Writer
	width func() int
	now   func() time.Time

	mu    sync.Mutex
	st    *workflows.Status
	lines int // lines of the frame on screen

	once sync.Once
	quit chan struct{}
	done chan struct{}
}

// startLive starts redrawing every so often; update draws at once.
func startLive(w io.Writer, width func() int, now func() time.Time, every time.Duration) *liveView {
	l := &liveView{w: w, width: width, now: now, quit: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(l.done)
		t := time.NewTicker(every)
		defer t.Stop()
		for {
			select {
			case <-l.quit:
				return
			case <-t.C:
				l.mu.Lock()
				l.draw()
				l.mu.Unlock()
			}
		}
	}()
	return l
}

func (l *liveView) update(st workflows.Status) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.st = &st
	l.draw()
}

func (l *liveView) stop() {
	l.once.Do(func() { close(l.quit) })
	<-l.done
}

func (l *liveView) finish(final workflows.Status) {
	l.stop()
	l.mu.Lock()
	defer l.mu.Unlock()
	l.st = &final
	l.draw()
	printSteps(l.w, final, l.now())
}

// draw replaces the frame on screen with the current one. The lines are one
// column short of the width, so that no terminal wraps them and the cursor
// moves back up exactly as many lines as were written.
func (l *liveView) draw() {
	if l.st == nil {
		return
	}
	frame := liveFrame(*l.st, l.now(), l.width()-1)
	var b strings.Builder
	if l.lines > 0 {
		fmt.Fprintf(&b, "\x1b[%dA", l.lines)
	}
	for _, line := range frame {
		b.WriteString("\r\x1b[2K")
		b.WriteString(line)
		b.WriteString("\n")
	}
	if len(frame) < l.lines {
		b.WriteString("\x1b[J") // what is left of a longer frame below
	}
	l.lines = len(frame)
	_, _ = io.WriteString(l.w, b.String())
}

// liveBar is the traffic bar's width at most.
const liveBar = 20

// liveNotes is how many lines about the last verdict (its coverage, its
// notes) the live view shows at most; cutover status shows them all.
const liveNotes = 4

// liveFrame renders a release's state for a person watching it, in lines of at
// most width characters: the release, the stage and step, the traffic split as
// a bar, how long the step has run and how long it has left, what the release
// waits for, the last verdict (with the guard's coverage and the judge's
// notes) and decision, and the outcome once it ended.
func liveFrame(st workflows.Status, now time.Time, width int) []string {
	st = printable(st)
	if width <= 0 {
		width = 80
	}
	var lines []string
	add := func(label, format string, args ...any) {
		lines = append(lines, fit(fmt.Sprintf("%-9s", label)+fmt.Sprintf(format, args...), width))
	}

	head := st.App + " " + st.Version
	if st.PreviousVersion != "" {
		head = fmt.Sprintf("%s %s → %s", st.App, st.PreviousVersion, st.Version)
	}
	if !st.StartedAt.IsZero() {
		end := now
		if !st.EndedAt.IsZero() {
			end = st.EndedAt
		}
		verb := "running for"
		if st.Outcome != workflows.OutcomeRunning {
			verb = st.Outcome + " after"
		}
		head += fmt.Sprintf(" · %s %s", verb, short(end.Sub(st.StartedAt)))
	}
	add("release", "%s", head)

	cur, name := currentStep(st)
	switch {
	case cur != nil:
		add("stage", "%s · %s · %s", st.Stage, name, cur.Description)
	case st.Step > 0 && st.Outcome == workflows.OutcomeRunning:
		add("stage", "%s · step %d/%d", st.Stage, st.Step, len(st.Steps))
	default:
		add("stage", "%s", st.Stage)
	}

	add("traffic", "%s", trafficBar(st.Weights, width-9))

	if cur != nil && st.Outcome == workflows.OutcomeRunning {
		took := cur.Duration(now)
		switch d, timeout := stepLimit(*cur); {
		case d == 0:
			add("time", "step %s", short(took))
		case timeout:
			add("time", "step %s · times out in %s", short(took), short(max(d-took, 0)))
		default:
			add("time", "step %s of %s · %s left", short(took), short(d), short(max(d-took, 0)))
		}
	}

	if w := waitingText(st); w != "" {
		add("waiting", "%s", w)
	} else if st.Paused {
		add("paused", "holds before the next step: cutover resume %s", st.App)
	}
	if v := st.LastVerdict; v != nil {
		s := string(v.Result)
		if v.Summary != "" {
			s += ": " + v.Summary
		}
		add("verdict", "%s", s)
		notes := verdictNotes(*v)
		if len(notes) > liveNotes+1 {
			notes = append(notes[:liveNotes:liveNotes], fmt.Sprintf("and %d more notes: cutover status %s", len(notes)-liveNotes, st.App))
		}
		for _, n := range notes {
			add("", "%s", n)
		}
	}
	if n := len(st.Decisions); n > 0 {
		d := st.Decisions[n-1]
		add("decision", "%s by %s%s", d.Action, d.By, reasonSuffix(d.Reason))
	}
	if st.Outcome != workflows.OutcomeRunning && st.Outcome != "" {
		add("outcome", "%s%s", st.Outcome, reasonSuffix(st.Reason))
	}
	return lines
}

// currentStep is the step in progress, plan or rollback, and how to name it.
func currentStep(st workflows.Status) (*workflows.StepRecord, string) {
	for i := len(st.Rollback) - 1; i >= 0; i-- {
		if s := &st.Rollback[i]; !s.Started.IsZero() && s.Ended.IsZero() {
			return s, fmt.Sprintf("undo %d", s.Index)
		}
	}
	if st.Step > 0 && st.Step <= len(st.Steps) {
		if s := &st.Steps[st.Step-1]; !s.Started.IsZero() && s.Ended.IsZero() {
			return s, fmt.Sprintf("step %d/%d", st.Step, len(st.Steps))
		}
	}
	return nil, ""
}

// Durations in step descriptions (spec.Step.Describe): the status carries the
// plan's steps as records, and their descriptions hold the durations.
var stepDurations = map[string]*regexp.Regexp{
	"soak":     regexp.MustCompile(`^soak (\S+),`),
	"standby":  regexp.MustCompile(`^standby (\S+) `),
	"pause":    regexp.MustCompile(`^pause (\S+)$`),
	"approval": regexp.MustCompile(`\(timeout (\S+),`),
}

// stepLimit is how long a step lasts (a soak, a standby, a timed pause) or, for
// an approval, how long it waits before it times out; read from the step's
// description. 0 when the step has no such limit.
func stepLimit(s workflows.StepRecord) (d time.Duration, timeout bool) {
	re := stepDurations[s.Kind]
	if re == nil {
		return 0, false
	}
	m := re.FindStringSubmatch(s.Description)
	if m == nil {
		return 0, false
	}
	d, err := time.ParseDuration(m[1])
	if err != nil || d <= 0 {
		return 0, false
	}
	return d, s.Kind == "approval"
}

// waitingText says what the release waits for and the command that gives it.
func waitingText(st workflows.Status) string {
	switch st.Waiting {
	case "":
		return ""
	case "approval":
		return fmt.Sprintf("for approval: cutover approve %s --as NAME (or cutover abort %s --reason ...)", st.App, st.App)
	case "resume":
		if st.Paused {
			return fmt.Sprintf("paused: cutover resume %s", st.App)
		}
		return fmt.Sprintf("for resume: cutover resume %s", st.App)
	}
	return fmt.Sprintf("for %s: cutover approve %s --as NAME to go on, cutover abort %s --reason ... to roll back", st.Waiting, st.App, st.App)
}

// trafficBar draws the split in at most width characters: green's share fills
// the bar from the green side, so the bar fills up as traffic moves to green.
// Too narrow for a bar, it is green's share alone.
func trafficBar(w workflows.Weights, width int) string {
	label := fmt.Sprintf(" green %d%%", w.Green)
	n := min(liveBar, width-len("blue ")-len(label))
	if n < 5 {
		return label[1:]
	}
	g := (w.Green*n + 50) / 100
	// Any green traffic shows, and so does any left on blue.
	if w.Green > 0 && g == 0 {
		g = 1
	}
	if w.Green < 100 && g == n {
		g = n - 1
	}
	return "blue " + strings.Repeat("░", n-g) + strings.Repeat("█", g) + label
}

// short prints a duration to the second (tenths under ten seconds).
func short(d time.Duration) string {
	if d < 10*time.Second {
		return d.Round(100 * time.Millisecond).String()
	}
	return d.Round(time.Second).String()
}

// fit cuts s to width characters, ending with … when it was cut.
func fit(s string, width int) string {
	if utf8.RuneCountInString(s) <= width {
		return s
	}
	if width <= 1 {
		return string([]rune(s)[:max(width, 0)])
	}
	return string([]rune(s)[:width-1]) + "…"
}
