package spec

import (
	"bytes"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
)

// workflowIDPrefix starts the ID of every release workflow: release/<app>.
const workflowIDPrefix = "release/"

// WorkflowID is the ID of the app's release workflow, release/<app>: an app
// has one release at a time.
func WorkflowID(app string) string { return workflowIDPrefix + app }

// WorkflowID is the ID of the release workflow for the app: release/<app>.
func (r Release) WorkflowID() string { return WorkflowID(r.App) }

// Describe says what the step does, in one line, such as "shift 10% of traffic
// to green". It reads the resolved step: defaults filled in.
func (s Step) Describe() string {
	switch {
	case s.Provision != nil:
		return "provision green"
	case s.Migrate != nil:
		return fmt.Sprintf("migrate (%s)", s.Migrate.Phase)
	case s.Validate != nil:
		switch n := len(s.Validate.Smoke); n {
		case 0:
			return "validate green (health)"
		case 1:
			return "validate green (health + 1 smoke check)"
		default:
			return fmt.Sprintf("validate green (health + %d smoke checks)", n)
		}
	case s.SetWeight != nil:
		return fmt.Sprintf("shift %d%% of traffic to green", *s.SetWeight)
	case s.Soak != nil:
		d := fmt.Sprintf("soak %s, guard every %s", s.Soak.Duration, s.Soak.Interval)
		if s.Soak.Extend > 0 {
			d += fmt.Sprintf(", up to %s more for power", s.Soak.Extend)
		}
		if s.Soak.OnInconclusive == ActionContinue {
			d += " (too little traffic: continue)"
		}
		return d
	case s.Pause != nil:
		if s.Pause.Duration == 0 {
			return "pause until resumed"
		}
		return fmt.Sprintf("pause %s", s.Pause.Duration)
	case s.Analysis != nil:
		d := fmt.Sprintf("compare blue vs green over %s", s.Analysis.Window)
		if s.Analysis.EarlyStop {
			d = fmt.Sprintf("compare blue vs green for up to %s, stopping once decided", s.Analysis.Window)
		}
		return d + fmt.Sprintf(" (inconclusive: %s)", s.Analysis.OnInconclusive)
	case s.Approval != nil:
		return fmt.Sprintf("wait for approval (timeout %s, then %s)", s.Approval.Timeout, s.Approval.OnTimeout)
	case s.Promote != nil:
		return "promote green to 100% (blue stays warm)"
	case s.Standby != nil:
		return fmt.Sprintf("standby %s (rollback returns traffic to blue at once)", s.Standby.Duration)
	case s.Decommission != nil:
		return "decommission blue"
	}
	return "empty step"
}

// Timeout is how long the step's work may take, or 0 for a step without a
// timeout (its length is set by its duration or by a person).
func (s Step) Timeout() Duration {
	switch {
	case s.Provision != nil:
		return s.Provision.Timeout
	case s.Migrate != nil:
		return s.Migrate.Timeout
	case s.Validate != nil:
		return s.Validate.Timeout
	case s.Approval != nil:
		return s.Approval.Timeout
	case s.Decommission != nil:
		return s.Decommission.Timeout
	}
	return 0
}

// FormatPlan prints the resolved release the way `cutover plan -f release.yaml`
// shows it: a header, the workflow ID, the providers and one numbered row per step.
// Text from the release goes through Printable: Parse checks it, but a caller
// may format a release that it did not parse.
func FormatPlan(w io.Writer, r Release) error {
	var b bytes.Buffer
	fmt.Fprintf(&b, "Release %s %s", Printable(r.App), Printable(r.Version))
	if r.PreviousVersion != "" {
		fmt.Fprintf(&b, " (from %s)", Printable(r.PreviousVersion))
	}
	fmt.Fprintf(&b, "\nWorkflow ID: %s\n", Printable(r.WorkflowID()))

	typ := func(t string) string {
		if t == "" {
			return "none"
		}
		return Printable(t)
	}
	migrations := "none"
	if r.Providers.Migrations != nil {
		migrations = typ(r.Providers.Migrations.Type)
	}
	var notes []string
	for _, n := range r.Providers.Notifications {
		notes = append(notes, typ(n.Type))
	}
	notifications := "none"
	if len(notes) > 0 {
		notifications = strings.Join(notes, ",")
	}
	ledger := ""
	if r.Providers.Ledger != nil {
		ledger = " ledger=" + typ(r.Providers.Ledger.Type)
	}
	fmt.Fprintf(&b, "Providers: environment=%s traffic=%s analysis=%s migrations=%s notifications=%s%s\n",
		typ(r.Providers.Environment.Type), typ(r.Providers.Traffic.Type), typ(r.Providers.Analysis.Type), migrations, notifications, ledger)

	b.WriteString("Plan:\n")
	var rows bytes.Buffer
	tw := tabwriter.NewWriter(&rows, 0, 0, 2, ' ', 0)
	for i, s := range r.Plan {
		desc := Printable(s.Describe())
		if s.Migrate != nil && r.Providers.Migrations == nil {
			desc += " - skipped: no migrations provider"
		}
		timeout := ""
		if t := s.Timeout(); t > 0 {
			timeout = "timeout " + t.String()
		}
		fmt.Fprintf(tw, "  %d\t%s\t%s\t%s\n", i+1, s.Kind(), desc, timeout)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	// Rows without a timeout end in the padding of the description column.
	for line := range strings.Lines(rows.String()) {
		b.WriteString(strings.TrimRight(line, " \n"))
		b.WriteByte('\n')
	}
	_, err := w.Write(b.Bytes())
	return err
}
