package starter

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/cutoverhq/cutover/providers"
	"github.com/cutoverhq/cutover/providers/postgres/ledger"
	"github.com/cutoverhq/cutover/spec"
	"github.com/cutoverhq/cutover/verdict"
)

// ledgerURLEnv names the variable holding the ledger's database URL.
const ledgerURLEnv = "CUTOVER_LEDGER_URL"

// historyCmd reads the release ledger straight from PostgreSQL: it answers
// "who released what, when, and what happened" without Temporal, and after
// the workflow history is gone.
func historyCmd() *cobra.Command {
	var dbURL string
	var limit int
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "history APP [VERSION]",
		Short: "List an app's releases, or show one release's events, from the release ledger (PostgreSQL, not Temporal)",
		Long: `history reads the release ledger that the workers write to PostgreSQL (the
release spec's providers.ledger): with APP, the app's releases, newest first;
with APP VERSION, the newest release of that version with every event: who
started it and from which CI run, each step's start and end, each approval or
abort and who gave it through which door, each verdict with its numbers, and the
outcome. It needs neither Temporal nor the workflow history.`,
		Args: cobra.RangeArgs(1, 2),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := spec.CheckApp(args[0]); err != nil {
				return &exitCode{exitUsage, "APP: " + err.Error()}
			}
			if len(args) == 2 {
				if err := spec.CheckVersion(args[1]); err != nil {
					return &exitCode{exitUsage, "VERSION: " + err.Error()}
				}
			}
			if err := checkLimit(limit); err != nil {
				return &exitCode{exitUsage, err.Error()}
			}
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			if dbURL == "" {
				dbURL = os.Getenv(ledgerURLEnv)
			}
			err := history(ctx, cmd.OutOrStdout(), dbURL, args, limit, asJSON)
			return flatten(err)
		},
	}
	// The default stays out of the flag itself: --help would print it, with
	// its password.
	cmd.Flags().StringVar(&dbURL, "database-url", "", "PostgreSQL URL of the release ledger, e.g. postgres://USER:PASSWORD@HOST:5432/DB (default $"+ledgerURLEnv+")")
	cmd.Flags().IntVar(&limit, "limit", ledger.DefaultLimit, "at most this many releases")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the ledger's records as JSON")
	return cmd
}

// history runs the command: args are APP [VERSION].
func history(ctx context.Context, out io.Writer, dbURL string, args []string, limit int, asJSON bool) error {
	if dbURL == "" {
		return fmt.Errorf("no ledger database: set %s or pass --database-url postgres://USER:PASSWORD@HOST:5432/DB", ledgerURLEnv)
	}
	s, err := ledger.OpenReadOnly(ctx, dbURL)
	if err != nil {
		return err
	}
	defer s.Close()
	app := args[0]
	if len(args) == 1 {
		list, err := s.Releases(ctx, app, limit)
		if err != nil {
			return err
		}
		if asJSON {
			if list == nil {
				list = []ledger.Release{}
			}
			return writeJSON(out, list)
		}
		printHistory(out, app, list)
		return nil
	}
	rel, events, err := s.Release(ctx, app, args[1])
	if errors.Is(err, providers.ErrNotFound) {
		return fmt.Errorf("%w (cutover history %s lists the releases it has)", err, app)
	}
	if err != nil {
		return err
	}
	if asJSON {
		if events == nil {
			events = []providers.LedgerEvent{}
		}
		return writeJSON(out, struct {
			Release ledger.Release          `json:"release"`
			Events  []providers.LedgerEvent `json:"events"`
		}{rel, events})
	}
	printLedgerRelease(out, rel, events)
	return nil
}

func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

var (
	colonBreak = regexp.MustCompile(`:\s*\n\s*`)
	lineBreak  = regexp.MustCompile(`\s*\n\s*`)
)

// flatten keeps an error on one line (pgx puts each address it tried on its
// own), keeping what it wraps for errors.Is.
func flatten(err error) error {
	if err == nil || !strings.Contains(err.Error(), "\n") {
		return err
	}
	msg := colonBreak.ReplaceAllString(strings.TrimSpace(err.Error()), ": ")
	return oneLineError{lineBreak.ReplaceAllString(msg, "; "), err}
}

type oneLineError struct {
	msg string
	err error
}

func (e oneLineError) Error() string { return e.msg }
func (e oneLineError) Unwrap() error { return e.err }

const ledgerTime = time.DateTime

// orDash fills an empty cell, so that a table's columns stay readable.
func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// releaseTook is how long a release ran; empty while it has no end.
func releaseTook(r ledger.Release) string {
	if r.EndedAt == nil {
		return ""
	}
	d := r.EndedAt.Sub(r.StartedAt)
	if d >= time.Second {
		return d.Round(time.Second).String()
	}
	return d.Round(time.Millisecond).String()
}

// printHistory lists an app's releases, newest first, in local time.
func printHistory(w io.Writer, app string, list []ledger.Release) {
	app, list = printable(app), printable(list)
	if len(list) == 0 {
		fmt.Fprintf(w, "no releases of %s in the ledger\n", app)
		return
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "VERSION\tOUTCOME\tSTARTED\tBY\tVIA\tCI RUN\tTOOK")
	for _, r := range list {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", r.Version, orDash(r.Outcome), r.StartedAt.Local().Format(ledgerTime),
			orDash(r.StartedBy), orDash(r.Via), orDash(r.CIRun), orDash(releaseTook(r)))
	}
	_ = tw.Flush()
}

// printLedgerRelease prints one release as the ledger has it: a header, then
// every event in order, with each verdict's numbers.
func printLedgerRelease(w io.Writer, r ledger.Release, events []providers.LedgerEvent) {
	r, events = printable(r), printable(events)
	head := r.App + " " + r.Version
	if r.PreviousVersion != "" {
		head = fmt.Sprintf("%s %s -> %s", r.App, r.PreviousVersion, r.Version)
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "release\t%s\n", head)
	fmt.Fprintf(tw, "run\t%s\n", r.ID)
	started := r.StartedAt.Local().Format(ledgerTime)
	if r.StartedBy != "" {
		started += " by " + r.StartedBy
	}
	if r.Via != "" {
		started += " via " + r.Via
	}
	if r.Principal != "" {
		started += fmt.Sprintf(" [principal %s, person %s]", r.Principal, r.Person)
	}
	fmt.Fprintf(tw, "started\t%s\n", started)
	if r.CIRun != "" {
		fmt.Fprintf(tw, "ci run\t%s\n", r.CIRun)
	}
	if r.Outcome == "" {
		fmt.Fprintf(tw, "outcome\tnone recorded (running, or it ended without recording one)\n")
	} else {
		fmt.Fprintf(tw, "outcome\t%s\n", r.Outcome)
	}
	if r.Reason != "" {
		fmt.Fprintf(tw, "reason\t%s\n", r.Reason)
	}
	if r.EndedAt != nil {
		fmt.Fprintf(tw, "ended\t%s (took %s)\n", r.EndedAt.Local().Format(ledgerTime), releaseTook(r))
	}
	_ = tw.Flush()

	fmt.Fprintln(w)
	if len(events) == 0 {
		fmt.Fprintln(w, "no events")
		return
	}
	tw = tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "TIME\tSTEP\tKIND\tSTATE\tBY\tMESSAGE")
	for _, e := range events {
		step := ""
		if e.Step > 0 {
			step = strconv.Itoa(e.Step)
		}
		by := e.Actor
		if e.Via != "" {
			by = strings.TrimSpace(by + " (" + e.Via + ")")
		}
		if e.Principal != "" {
			by += " [" + e.Principal + "]"
		}
		msg := e.Message
		if e.Kind == providers.LedgerOutcome && e.Outcome != "" {
			msg = e.Outcome + reasonSuffix(e.Message)
		}
		if e.CIRun != "" {
			msg += " [CI run " + e.CIRun + "]"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", e.At.Local().Format(ledgerTime), step, e.Kind, e.State, by, msg)
		// Details under the message: a verdict's metrics, one a line, with
		// their numbers; other data as it is.
		// The details come from the event's JSON data, which printable
		// leaves as it is.
		for _, line := range eventDetails(e) {
			fmt.Fprintf(tw, "\t\t\t\t\t  %s\n", spec.Printable(line))
		}
	}
	_ = tw.Flush()
}

// eventDetails turns an event's data into lines: a verdict's metrics with
// their numbers, or the JSON as it is.
func eventDetails(e providers.LedgerEvent) []string {
	if len(e.Data) == 0 {
		return nil
	}
	if e.Kind == providers.LedgerVerdict {
		var v verdict.Verdict
		if err := json.Unmarshal(e.Data, &v); err == nil && v.Result != "" {
			// The message has said the summary when it holds it.
			return verdictLines(v, v.Summary != "" && !strings.Contains(e.Message, v.Summary))
		}
	}
	var b bytes.Buffer
	if err := json.Compact(&b, e.Data); err != nil {
		return []string{"data: " + string(e.Data)}
	}
	return []string{"data: " + b.String()}
}

// verdictLines are a verdict's details, one a line: its summary when asked
// for, what it says as a whole (the guard's coverage, a lack of traffic, its
// notes), then each metric with its numbers and its reason.
func verdictLines(v verdict.Verdict, summary bool) []string {
	var lines []string
	if summary {
		lines = append(lines, fmt.Sprintf("%s: %s", v.Result, v.Summary))
	}
	lines = append(lines, verdictNotes(v)...)
	for _, m := range v.Metrics {
		line := fmt.Sprintf("%s: %s", m.Name, m.Result)
		if m.Critical {
			line += ", critical"
		}
		if len(m.Values) > 0 {
			line += ": " + metricValues(m)
		}
		if r := metricReason(m); r != "" {
			line += " (" + r + ")"
		}
		lines = append(lines, line)
	}
	return lines
}
