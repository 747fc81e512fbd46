package starter

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"os/user"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"
	"go.uber.org/dig"
	"go.uber.org/fx"

	"github.com/cutoverhq/cutover/identity"
	"github.com/cutoverhq/cutover/providers/builtin"
	"github.com/cutoverhq/cutover/releases"
	"github.com/cutoverhq/cutover/spec"
	"github.com/cutoverhq/cutover/temporalconn"
	"github.com/cutoverhq/cutover/version"
	"github.com/cutoverhq/cutover/workflows"
)

type globals struct {
	temporal temporalconn.Config
	// operator is who the CLI acts as: its principal is cli:<operator>.
	operator string
}

// principal is who the CLI acts as. The CLI talks to Temporal itself, so
// this identity is as strong as Temporal's own authentication of the user:
// the threat model in the README says so.
func (g *globals) principal() (identity.Principal, error) {
	p := identity.Principal{Door: identity.CLI, ID: g.operator}
	if err := p.Check(); err != nil {
		return p, fmt.Errorf("--operator (CUTOVER_OPERATOR): %w", err)
	}
	return p, nil
}

// osUser is the operating-system user running the CLI (os/user, then $USER
// or %USERNAME% where the user database does not say), or "" when neither
// knows: the default of --operator, --as and --by.
func osUser() string {
	if u, err := user.Current(); err == nil && u.Username != "" {
		return u.Username
	}
	for _, v := range []string{"USER", "USERNAME"} {
		if u := os.Getenv(v); u != "" {
			return u
		}
	}
	return ""
}

func newRoot() *cobra.Command {
	g := &globals{temporal: temporalconn.FromEnv(), operator: temporalconn.Getenv("CUTOVER_OPERATOR", osUser())}
	root := &cobra.Command{
		Use:           "cutover",
		Short:         "Blue-green and progressive releases as durable Temporal workflows",
		Long:          "Blue-green and progressive releases as durable Temporal workflows.\n\n" + temporalconn.EnvHelp,
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	pf := root.PersistentFlags()
	pf.StringVar(&g.temporal.Address, "address", g.temporal.Address, "Temporal frontend host:port (TEMPORAL_ADDRESS; TLS and API key: TEMPORAL_TLS_*, TEMPORAL_API_KEY, see cutover --help)")
	pf.StringVar(&g.temporal.Namespace, "namespace", g.temporal.Namespace, "Temporal namespace (TEMPORAL_NAMESPACE)")
	pf.StringVar(&g.temporal.TaskQueue, "task-queue", g.temporal.TaskQueue, "task queue the workers poll (CUTOVER_TASK_QUEUE)")
	pf.StringVar(&g.operator, "operator", g.operator, "who you act as: your principal is cli:<operator> (CUTOVER_OPERATOR; default: your operating-system user)")
	root.AddCommand(
		planCmd(),
		releaseCmd(g),
		statusCmd(g),
		listCmd(g),
		historyCmd(),
		watchCmd(g),
		decideCmd(g, workflows.UpdateApprove, "Approve a release waiting at its approval gate (or on an inconclusive verdict)"),
		decideCmd(g, workflows.UpdateAbort, "Abort a release: all traffic back to blue, then undo the rest"),
		decideCmd(g, workflows.UpdatePause, "Hold a release before its next step"),
		decideCmd(g, workflows.UpdateResume, "Resume a paused release"),
		decideCmd(g, workflows.UpdateRollback, "Roll a release back, also during the standby window after promotion"),
		routerCmd(),
		localCmd(),
		serveCmd(g),
	)
	root.AddCommand(version.Command(root))
	return root
}

// connect dials Temporal through the same fx modules the worker uses and calls
// fn with a releases client; Ctrl-C cancels fn's context.
func (g *globals) connect(cmd *cobra.Command, fn func(ctx context.Context, rc *releases.Client) error) error {
	ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	var rc *releases.Client
	app := fx.New(
		fx.NopLogger,
		fx.Supply(g.temporal, slog.New(slog.NewTextHandler(io.Discard, nil))),
		temporalconn.Module,
		releases.Module,
		fx.Populate(&rc),
	)
	if err := app.Start(ctx); err != nil {
		// The constructor's own error (a one-line *temporalconn.Error), not
		// fx's account of where in the graph it failed: a person wants the cause.
		return dig.RootCause(err)
	}
	defer func() { _ = app.Stop(context.Background()) }()
	return fn(ctx, rc)
}

func loadSpec(path string) (spec.Release, error) {
	data, err := spec.ReadFile(path)
	if err != nil {
		return spec.Release{}, err
	}
	return parseSpec(path, data)
}

func parseSpec(path string, data []byte) (spec.Release, error) {
	reg := builtin.NewRegistry(slog.New(slog.NewTextHandler(io.Discard, nil)))
	rel, err := spec.Parse(data, reg.Check)
	if err != nil {
		if p, ok := err.(spec.Problems); ok {
			return rel, fmt.Errorf("%s is not a valid release spec:\n%s", path, indent(p.Error()))
		}
		return rel, err
	}
	return rel, nil
}

func indent(s string) string {
	return "  " + strings.ReplaceAll(strings.TrimSpace(s), "\n", "\n  ")
}

func planCmd() *cobra.Command {
	var file string
	cmd := &cobra.Command{
		Use:   "plan -f release.yaml",
		Short: "Check a release spec or an app definition and print the resolved plan",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			data, err := spec.ReadFile(file)
			if err != nil {
				return err
			}
			// An app definition is a spec without a version: check it the
			// way the worker loads it.
			rel, err := spec.ParseDefinition(data, builtin.NewRegistry(slog.New(slog.DiscardHandler)).Check)
			if err != nil {
				if p, ok := err.(spec.Problems); ok {
					return fmt.Errorf("%s is not a valid release spec:\n%s", file, indent(p.Error()))
				}
				return err
			}
			return spec.FormatPlan(cmd.OutOrStdout(), rel)
		},
	}
	cmd.Flags().StringVarP(&file, "file", "f", "release.yaml", "release spec (- for stdin)")
	return cmd
}

func releaseCmd(g *globals) *cobra.Command {
	var file, by string
	var wait, asJSON bool
	cmd := &cobra.Command{
		Use:   "release [APP VERSION | -f release.yaml] [--wait]",
		Short: "Start a release; with --wait, follow it and exit 0 promoted, 3 rolled back, 4 aborted",
		Long: `Start a release.

  cutover release shop 1.4.2           a request: the worker's app definition
                                       of shop says what the release may touch
  cutover release -f request.yaml      a request written in a file: app,
                                       version and, where the definition allows,
                                       plan and judge
  cutover release -f release.yaml      a whole spec, providers included: only a
                                       worker in development mode runs it`,
		Args: cobra.RangeArgs(0, 2),
		RunE: func(cmd *cobra.Command, args []string) error {
			rel, err := releaseInput(file, args, cmd.Flags().Changed("file"))
			if err != nil {
				return err
			}
			p, err := g.principal()
			if err != nil {
				return err
			}
			return g.connect(cmd, func(ctx context.Context, rc *releases.Client) error {
				started, err := rc.Start(ctx, rel, releases.Origin{Principal: p, By: by, Via: "cli", CIRun: ciRun()})
				if err != nil {
					return err
				}
				out := cmd.OutOrStdout()
				if asJSON {
					// For a script: the run ID re-attaches to this release
					// (status, watch and the decisions take --run).
					enc := json.NewEncoder(out)
					if err := enc.Encode(startedJSON{App: rel.App, Version: rel.Version, Started: started}); err != nil {
						return err
					}
				} else {
					fmt.Fprintf(out, "started release of %s %s (workflow %s, run %s)\n", rel.App, rel.Version, started.WorkflowID, started.RunID)
				}
				if !wait {
					return nil
				}
				if asJSON {
					out = cmd.ErrOrStderr() // standard output stays one JSON object
				}
				return follow(ctx, rc, rel.App, started.RunID, out)
			})
		},
	}
	cmd.Flags().StringVarP(&file, "file", "f", "release.yaml", "release request or spec (- for stdin)")
	cmd.Flags().BoolVar(&wait, "wait", false, "follow the release until it ends; the exit code tells the outcome")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print {app, version, workflowId, runId} as JSON (progress with --wait goes to standard error)")
	cmd.Flags().StringVar(&by, "by", startedBy(), "who starts the release, as free text (default: the CI run's actor, or your operating-system user)")
	return cmd
}

// startedJSON is what release --json prints.
type startedJSON struct {
	App     string `json:"app"`
	Version string `json:"version"`
	releases.Started
}

// releaseInput is what `cutover release` sends: a request for APP VERSION, a
// request file, or a whole spec.
func releaseInput(file string, args []string, fileGiven bool) (spec.Release, error) {
	switch {
	case len(args) == 2 && fileGiven:
		return spec.Release{}, errors.New("give APP VERSION or -f, not both")
	case len(args) == 2:
		req := spec.Release{App: args[0], Version: args[1]}
		if ps := req.CheckRequest(); len(ps) > 0 {
			return req, fmt.Errorf("not a valid release request:\n%s", indent(ps.Error()))
		}
		return req, nil
	case len(args) == 1:
		return spec.Release{}, errors.New("give both APP and VERSION, like cutover release shop 1.4.2")
	}
	data, err := spec.ReadFile(file)
	if err != nil {
		return spec.Release{}, err
	}
	if !spec.IsRequest(data) {
		return parseSpec(file, data)
	}
	req, err := spec.ParseRequest(data)
	if err != nil {
		if p, ok := err.(spec.Problems); ok {
			return req, fmt.Errorf("%s is not a valid release request:\n%s", file, indent(p.Error()))
		}
		return req, err
	}
	return req, nil
}

// startedBy names whoever runs the command: a CI run when there is one.
func startedBy() string {
	if a := os.Getenv("GITHUB_ACTOR"); a != "" {
		return fmt.Sprintf("%s (GitHub Actions run %s)", a, os.Getenv("GITHUB_RUN_ID"))
	}
	return osUser()
}

// ciRun identifies the CI run the command runs in, for the release ledger: a
// link where the CI system gives one.
func ciRun() string {
	if id := os.Getenv("GITHUB_RUN_ID"); id != "" {
		return fmt.Sprintf("%s/%s/actions/runs/%s", os.Getenv("GITHUB_SERVER_URL"), os.Getenv("GITHUB_REPOSITORY"), id)
	}
	for _, v := range []string{"CI_JOB_URL", "BUILD_URL", "CIRCLE_BUILD_URL", "BUILDKITE_BUILD_URL", "CUTOVER_CI_RUN"} {
		if u := os.Getenv(v); u != "" {
			return u
		}
	}
	return ""
}

// follow shows the release's progress until it ends (a live view on a
// terminal, timestamped lines otherwise) and turns the outcome into the exit
// code.
func follow(ctx context.Context, rc *releases.Client, app, runID string, out io.Writer) error {
	p := newProgress(out)
	final, err := rc.WaitRun(ctx, app, runID, time.Second, p.update)
	if err != nil {
		p.stop()
		return err
	}
	p.finish(final)
	switch final.Outcome {
	case workflows.OutcomePromoted:
		return nil
	case workflows.OutcomeRolledBack:
		return &exitCode{exitRolledBack, "rolled back: " + spec.Printable(final.Reason)}
	case workflows.OutcomeAborted:
		return &exitCode{exitAborted, "aborted: " + spec.Printable(final.Reason)}
	}
	return &exitCode{exitError, fmt.Sprintf("release %s: %s", spec.Printable(final.Outcome), spec.Printable(final.Reason))}
}

// runFlag is --run: one release run of the app, as release --json names it.
func runFlag(cmd *cobra.Command, runID *string) {
	cmd.Flags().StringVar(runID, "run", "", "this release run only (its run ID, as release --json prints it), not the app's latest")
}

func watchCmd(g *globals) *cobra.Command {
	var runID string
	cmd := &cobra.Command{
		Use:   "watch APP [--run RUN_ID]",
		Short: "Follow an app's release until it ends (exit codes as release --wait)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return g.connect(cmd, func(ctx context.Context, rc *releases.Client) error {
				return follow(ctx, rc, args[0], runID, cmd.OutOrStdout())
			})
		},
	}
	runFlag(cmd, &runID)
	return cmd
}

func statusCmd(g *globals) *cobra.Command {
	var asJSON bool
	var runID string
	cmd := &cobra.Command{
		Use:   "status APP [--run RUN_ID]",
		Short: "Show an app's current or last release",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return g.connect(cmd, func(ctx context.Context, rc *releases.Client) error {
				st, _, err := rc.StatusRun(ctx, args[0], runID)
				if err != nil {
					return err
				}
				if asJSON {
					enc := json.NewEncoder(cmd.OutOrStdout())
					enc.SetIndent("", "  ")
					return enc.Encode(st)
				}
				printStatus(cmd.OutOrStdout(), st, time.Now())
				return nil
			})
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the status as JSON")
	runFlag(cmd, &runID)
	return cmd
}

func listCmd(g *globals) *cobra.Command {
	var f releases.Filter
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List releases, newest first",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := checkFilter(f); err != nil {
				return &exitCode{exitUsage, err.Error()}
			}
			return g.connect(cmd, func(ctx context.Context, rc *releases.Client) error {
				list, err := rc.List(ctx, f)
				if err != nil {
					return err
				}
				if asJSON {
					return json.NewEncoder(cmd.OutOrStdout()).Encode(list)
				}
				printList(cmd.OutOrStdout(), list)
				return nil
			})
		},
	}
	cmd.Flags().StringVar(&f.App, "app", "", "only this app's releases")
	cmd.Flags().StringVar(&f.Outcome, "outcome", "", "only releases with this outcome ("+strings.Join(outcomes(), ", ")+")")
	cmd.Flags().BoolVar(&f.Running, "running", false, "only releases in progress")
	cmd.Flags().IntVar(&f.Limit, "limit", 50, "at most this many")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return cmd
}

// outcomes are the values of --outcome.
func outcomes() []string {
	return []string{workflows.OutcomeRunning, workflows.OutcomePromoted, workflows.OutcomeRolledBack, workflows.OutcomeAborted, workflows.OutcomeFailed}
}

// checkFilter refuses a filter that could only match nothing, or everything
// by mistake: one line naming the flag.
func checkFilter(f releases.Filter) error {
	if f.App != "" {
		if err := spec.CheckApp(f.App); err != nil {
			return fmt.Errorf("--app: %w", err)
		}
	}
	if f.Outcome != "" && !slices.Contains(outcomes(), f.Outcome) {
		return fmt.Errorf("--outcome: %s is not one of %s", strconv.Quote(spec.Printable(f.Outcome)), strings.Join(outcomes(), ", "))
	}
	return checkLimit(f.Limit)
}

// checkLimit refuses a --limit below 1.
func checkLimit(n int) error {
	if n < 1 {
		return fmt.Errorf("--limit: %d is not 1 or more", n)
	}
	return nil
}

func decideCmd(g *globals, action, short string) *cobra.Command {
	var d workflows.Decision
	var runID string
	cmd := &cobra.Command{
		Use:   action + " APP",
		Short: short,
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			d.Via = "cli"
			if d.By == "" {
				return &exitCode{exitUsage, "--as is required: the operating-system user is unknown here"}
			}
			p, err := g.principal()
			if err != nil {
				return err
			}
			d.Principal = p
			return g.connect(cmd, func(ctx context.Context, rc *releases.Client) error {
				msg, err := rc.DecideRun(ctx, args[0], runID, action, d, "")
				if err != nil {
					return err
				}
				fmt.Fprintf(cmd.OutOrStdout(), "%s: %s\n", spec.Printable(args[0]), spec.Printable(msg))
				return nil
			})
		},
	}
	fl := cmd.Flags()
	// Free text for the ledger and the people reading it: separation of
	// duties goes by the principal (--operator), not by this.
	fl.StringVar(&d.By, "as", osUser(), "who decides, as free text (default: your operating-system user)")
	fl.StringVar(&d.Reason, "reason", "", "why")
	runFlag(cmd, &runID)
	if action == workflows.UpdateAbort {
		_ = cmd.MarkFlagRequired("reason")
	}
	return cmd
}
