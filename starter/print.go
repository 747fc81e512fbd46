package starter

import (
	"fmt"
	"io"
	"reflect"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/cutoverhq/cutover/releases"
	"github.com/cutoverhq/cutover/spec"
	"github.com/cutoverhq/cutover/verdict"
	"github.com/cutoverhq/cutover/workflows"
)

// printable returns a copy of v with every string in it, however deep, passed
// through spec.Printable. What the printers show comes from requests and the
// workflow (the app, the version, who decided and why, step details, verdict
// notes), and an escape sequence or a carriage return in any of it would
// reach the terminal. Going through every string of the value, rather than
// each field a printer happens to use, leaves none out, now or later.
func printable[T any](v T) T {
	return printableValue(reflect.ValueOf(v)).Interface().(T)
}

func printableValue(v reflect.Value) reflect.Value {
	switch v.Kind() {
	case reflect.String:
		out := reflect.New(v.Type()).Elem()
		out.SetString(spec.Printable(v.String()))
		return out
	case reflect.Pointer:
		if v.IsNil() {
			return v
		}
		out := reflect.New(v.Type().Elem())
		out.Elem().Set(printableValue(v.Elem()))
		return out
	case reflect.Interface:
		if v.IsNil() {
			return v
		}
		out := reflect.New(v.Type()).Elem()
		out.Set(printableValue(v.Elem()))
		return out
	case reflect.Slice:
		if v.IsNil() {
			return v
		}
		out := reflect.MakeSlice(v.Type(), v.Len(), v.Len())
		for i := range v.Len() {
			out.Index(i).Set(printableValue(v.Index(i)))
		}
		return out
	case reflect.Array:
		out := reflect.New(v.Type()).Elem()
		for i := range v.Len() {
			out.Index(i).Set(printableValue(v.Index(i)))
		}
		return out
	case reflect.Map:
		if v.IsNil() {
			return v
		}
		out := reflect.MakeMapWithSize(v.Type(), v.Len())
		for it := v.MapRange(); it.Next(); {
			out.SetMapIndex(printableValue(it.Key()), printableValue(it.Value()))
		}
		return out
	case reflect.Struct:
		// Unexported fields (a time.Time's) are copied as they are.
		out := reflect.New(v.Type()).Elem()
		out.Set(v)
		for i := range v.NumField() {
			if v.Type().Field(i).IsExported() {
				out.Field(i).Set(printableValue(v.Field(i)))
			}
		}
		return out
	}
	return v
}

// printProgress prints a timestamped line for each thing that happened since
// prev, in the order it happened, which reads well in a CI log. It works from
// the step records and decisions, so a poll that came late still prints every
// step that started or ended in between, with the time it did.
func printProgress(w io.Writer, prev *workflows.Status, st workflows.Status) {
	prev, st = printable(prev), printable(st)
	var before workflows.Status
	if prev != nil {
		before = *prev
	}
	type event struct {
		at   time.Time
		text string
	}
	var events []event
	add := func(at time.Time, format string, args ...any) {
		events = append(events, event{at, fmt.Sprintf(format, args...)})
	}
	steps := func(s workflows.Status) []workflows.StepRecord {
		return append(append([]workflows.StepRecord{}, s.Steps...), s.Rollback...)
	}
	old := steps(before)
	for i, s := range steps(st) {
		was := workflows.StepRecord{}
		if i < len(old) {
			was = old[i]
		}
		name := fmt.Sprintf("step %d/%d", s.Index, len(st.Steps))
		if i >= len(st.Steps) {
			name = "rollback"
		}
		if !s.Started.IsZero() && was.Started.IsZero() {
			add(s.Started, "%s %s", name, s.Description)
			if s.Kind == "approval" {
				add(s.Started, "waiting for approval: cutover approve %s --as NAME (or cutover abort %s --reason ...)", st.App, st.App)
			}
		}
		if !s.Ended.IsZero() && was.Ended.IsZero() {
			add(s.Ended, "%s %s in %s%s", name, s.State, took(s, st.EndedAt), reasonSuffix(s.Detail))
		}
	}
	for _, d := range st.Decisions[min(len(before.Decisions), len(st.Decisions)):] {
		add(d.At, "%s by %s%s", d.Action, d.By, reasonSuffix(d.Reason))
	}
	if st.Outcome != workflows.OutcomeRunning && before.Outcome != st.Outcome {
		add(st.EndedAt, "outcome: %s%s", st.Outcome, reasonSuffix(st.Reason))
	}
	now := time.Now()
	if st.Waiting != "" && st.Waiting != before.Waiting && st.Waiting != "approval" {
		add(now, "waiting for %s (cutover approve %s --as NAME, or cutover abort %s --reason ...)", st.Waiting, st.App, st.App)
	}
	if st.Paused && !before.Paused {
		add(now, "paused (cutover resume %s)", st.App)
	}
	// A passing verdict shows in its step's line; one that holds or ends the
	// release gets a line of its own.
	if v := st.LastVerdict; v != nil && v.Result != verdict.Pass && (before.LastVerdict == nil || before.LastVerdict.String() != v.String()) {
		add(now, "verdict: %s%s", v, verdictWhole(*v))
	}
	slices.SortStableFunc(events, func(a, b event) int { return a.at.Compare(b.at) })
	for _, e := range events {
		fmt.Fprintf(w, "%s %s\n", e.at.Local().Format("15:04:05"), e.text)
	}
}

func reasonSuffix(r string) string {
	if r == "" {
		return ""
	}
	return ": " + r
}

// printSteps prints each step's state, time and detail.
func printSteps(w io.Writer, st workflows.Status, now time.Time) {
	st = printable(st)
	if !st.EndedAt.IsZero() {
		now = st.EndedAt
	}
	fmt.Fprintln(w, "steps:")
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	for _, s := range append(append([]workflows.StepRecord{}, st.Steps...), st.Rollback...) {
		fmt.Fprintf(tw, "  %d\t%s\t%s\t%s\t%s\n", s.Index, s.Description, s.State, took(s, now), s.Detail)
	}
	_ = tw.Flush()
}

func took(s workflows.StepRecord, now time.Time) string {
	if s.Started.IsZero() {
		return ""
	}
	return s.Duration(now).Round(100 * time.Millisecond).String()
}

// printStatus prints one release's state for a person.
func printStatus(w io.Writer, st workflows.Status, now time.Time) {
	st = printable(st)
	head := st.App + " " + st.Version
	if st.PreviousVersion != "" {
		head = fmt.Sprintf("%s %s -> %s", st.App, st.PreviousVersion, st.Version)
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "release\t%s (workflow %s)\n", head, spec.WorkflowID(st.App))
	fmt.Fprintf(tw, "outcome\t%s%s\n", st.Outcome, reasonSuffix(st.Reason))
	stage := st.Stage
	if st.Step > 0 && st.Outcome == workflows.OutcomeRunning {
		stage = fmt.Sprintf("%s (step %d of %d)", st.Stage, st.Step, len(st.Steps))
	}
	fmt.Fprintf(tw, "stage\t%s\n", stage)
	fmt.Fprintf(tw, "traffic\t%s\n", st.Weights)
	if st.Paused {
		fmt.Fprintf(tw, "paused\tyes (cutover resume %s)\n", st.App)
	}
	if st.Waiting != "" {
		fmt.Fprintf(tw, "waiting\tfor %s\n", st.Waiting)
	}
	if !st.Principal.IsZero() {
		fmt.Fprintf(tw, "started by\t%s [principal %s, person %s] at %s\n", st.StartedBy, st.Principal, st.Person, st.StartedAt.Local().Format(time.DateTime))
	} else if st.StartedBy != "" {
		fmt.Fprintf(tw, "started by\t%s at %s\n", st.StartedBy, st.StartedAt.Local().Format(time.DateTime))
	}
	if a := st.LastApproval(); a != nil {
		fmt.Fprintf(tw, "approved by\t%s%s\n", a.By, reasonSuffix(a.Reason))
	}
	for _, d := range st.Decisions {
		who := d.By
		if !d.Principal.IsZero() {
			who += fmt.Sprintf(" [principal %s, person %s]", d.Principal, d.Person)
		}
		fmt.Fprintf(tw, "decision\t%s by %s via %s at step %d%s\n", d.Action, who, d.Via, d.Step, reasonSuffix(d.Reason))
	}
	_ = tw.Flush()
	if v := st.LastVerdict; v != nil {
		printVerdict(w, *v)
	}
	printSteps(w, st, now)
}

// printVerdict shows the last verdict with every metric's numbers: a person
// deciding whether to approve needs to see what the judge saw, how much of the
// soak it saw, and what it could have seen.
func printVerdict(w io.Writer, v verdict.Verdict) {
	v = printable(v)
	fmt.Fprintf(w, "verdict: %s", v.Result)
	if v.Summary != "" {
		fmt.Fprintf(w, ": %s", v.Summary)
	}
	fmt.Fprintln(w)
	for _, line := range verdictNotes(v) {
		fmt.Fprintf(w, "  %s\n", line)
	}
	for _, m := range v.Metrics {
		crit := ""
		if m.Critical {
			crit = ", critical"
		}
		fmt.Fprintf(w, "  %s: %s%s%s\n", m.Name, m.Result, crit, reasonSuffix(metricReason(m)))
		if len(m.Values) == 0 {
			continue
		}
		fmt.Fprintf(w, "    %s\n", metricValues(m))
	}
}

// verdictNotes are the lines about a verdict as a whole: how much of the soak
// the guard judged, whether only too little traffic kept it from a Pass, and
// the judge's notes (counter resets, gaps in the guard's watch).
func verdictNotes(v verdict.Verdict) []string {
	var lines []string
	if v.Intervals > 0 {
		lines = append(lines, fmt.Sprintf("guard judged %d of %d intervals", v.Judged, v.Intervals))
	}
	if v.Underpowered && v.Result == verdict.Inconclusive {
		lines = append(lines, underpoweredText)
	}
	for _, n := range v.Notes {
		lines = append(lines, "note: "+n)
	}
	return lines
}

// verdictWhole is what a verdict's one-line form (verdict.Verdict.String,
// which has its notes) leaves out about the verdict as a whole: the guard's
// coverage and whether only too little traffic kept it from a Pass.
func verdictWhole(v verdict.Verdict) string {
	var s string
	for _, line := range verdictNotes(verdict.Verdict{Result: v.Result, Underpowered: v.Underpowered, Judged: v.Judged, Intervals: v.Intervals}) {
		s += "; " + line
	}
	return s
}

// underpoweredText says what an Underpowered verdict means to a person.
const underpoweredText = "inconclusive for lack of traffic alone: nothing failed and no data was missing"

// metricReason is a metric's reason and, unless the reason says it already,
// the smallest change its data could have detected.
func metricReason(m verdict.Metric) string {
	if m.Detectable == "" || strings.Contains(m.Reason, m.Detectable) || strings.Contains(m.Reason, "could detect") {
		return m.Reason
	}
	if m.Reason == "" {
		return "could detect " + m.Detectable
	}
	return m.Reason + "; could detect " + m.Detectable
}

// metricValues prints a metric's numbers as name=value, in their order.
func metricValues(m verdict.Metric) string {
	parts := make([]string, len(m.Values))
	for i, val := range m.Values {
		parts[i] = val.Name + "=" + verdict.FormatValue(val.Value)
	}
	return strings.Join(parts, " ")
}

func printList(w io.Writer, list []releases.Summary) {
	list = printable(list)
	if len(list) == 0 {
		fmt.Fprintln(w, "no releases")
		return
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "APP\tVERSION\tSTAGE\tGREEN%\tOUTCOME\tSTARTED")
	for _, s := range list {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%s\t%s\n", s.App, s.Version, s.Stage, s.Traffic, s.Outcome, s.Started.Local().Format(time.DateTime))
	}
	_ = tw.Flush()
}
