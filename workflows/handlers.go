package workflows

import (
	"errors"
	"fmt"
	"slices"
	"strings"

	"go.temporal.io/sdk/workflow"

	"github.com/cutoverhq/cutover/identity"
	"github.com/cutoverhq/cutover/providers"
)

// action is one of the decisions a person can send, as an update (validated,
// answered) and as a signal of the same name (fire and forget: a signal that its
// validator refuses is logged and dropped).
type action struct {
	name     string
	validate func(d Decision) error
	apply    func(ctx workflow.Context, d Decision) (string, error)
}

func (r *release) actions() []action {
	return []action{
		{UpdateApprove, r.validateApprove, r.applyApprove},
		{UpdateAbort, r.validateAbort, r.applyStop(stopAbort)},
		{UpdateRollback, r.validateRollback, r.applyStop(stopRollback)},
		{UpdatePause, r.validatePause, r.applyPause},
		{UpdateResume, r.validateResume, r.applyResume},
	}
}

// registerHandlers sets the status query, the updates and the signals.
func (r *release) registerHandlers(ctx workflow.Context) error {
	if err := workflow.SetQueryHandler(ctx, QueryStatus, func() (Status, error) { return r.st, nil }); err != nil {
		return fmt.Errorf("set status query: %w", err)
	}
	acts := r.actions()
	sel := workflow.NewSelector(ctx)
	for _, a := range acts {
		err := workflow.SetUpdateHandlerWithOptions(ctx, a.name, func(ctx workflow.Context, d Decision) (string, error) {
			return a.apply(ctx, d)
		}, workflow.UpdateHandlerOptions{Validator: func(ctx workflow.Context, d Decision) error { return a.validate(d) }})
		if err != nil {
			return fmt.Errorf("set %s update: %w", a.name, err)
		}
		sel.AddReceive(workflow.GetSignalChannel(ctx, a.name), func(c workflow.ReceiveChannel, more bool) {
			var d Decision
			c.Receive(ctx, &d)
			if err := a.validate(d); err != nil {
				r.log.Warn("signal refused", "signal", a.name, "by", d.By, "reason", err.Error())
				return
			}
			// Signals get no answer, so their apply runs in its own coroutine:
			// abort and rollback wait for traffic to be back on blue.
			workflow.Go(ctx, func(ctx workflow.Context) { _, _ = a.apply(ctx, d) })
		})
	}
	workflow.Go(ctx, func(ctx workflow.Context) {
		for {
			sel.Select(ctx)
		}
	})
	return nil
}

// refuseIfOver refuses any decision once the release has an outcome or is
// rolling back.
func (r *release) refuseIfOver() error {
	switch {
	case r.ended:
		return fmt.Errorf("the release has ended (%s)", r.st.Outcome)
	case r.stop != nil:
		return fmt.Errorf("the release is already rolling back (%s: %s)", r.stop.kind, r.stop.reason)
	}
	return nil
}

func (r *release) validateApprove(d Decision) error {
	if err := r.refuseIfOver(); err != nil {
		return err
	}
	if d.By == "" {
		return errors.New("approve needs who approves (by)")
	}
	if err := r.mayApprove(d); err != nil {
		return err
	}
	if r.gate != "" && !r.approved {
		return nil
	}
	if a := r.st.LastApproval(); a != nil && a.Step == r.gateStep {
		return fmt.Errorf("already approved by %s at step %d; no approval is pending", a.By, a.Step)
	}
	return fmt.Errorf("no approval is pending: the release is at step %d (%s)", r.st.Step, r.st.Stage)
}

// mayApprove decides separation of duties and the approver list on people:
// the principals the doors authenticated, mapped through the app definition's
// people, never the free text that came with them. Releases started before
// principals existed compare the texts, as they did then.
func (r *release) mayApprove(d Decision) error {
	rel := r.in.Release
	if r.in.Principal.IsZero() {
		if selfApproval(r.in.StartedBy, d.By) && !rel.AllowSelfApproval {
			return fmt.Errorf("%s started this release and may not approve it too; someone else must (or set allowSelfApproval: true in the spec)", d.By)
		}
		return nil
	}
	who := r.personOf(d)
	if who == r.st.Person && !rel.AllowSelfApproval {
		return fmt.Errorf("%s started this release (as %s) and may not approve it too (as %s); someone else must (or an operator sets allowSelfApproval: true in the app's definition)", who, r.in.Principal, principalOf(d))
	}
	if len(rel.Approvers) > 0 && !slices.Contains(rel.Approvers, who) {
		return fmt.Errorf("%s (%s) is not among %s's approvers (%s)", who, principalOf(d), rel.App, strings.Join(rel.Approvers, ", "))
	}
	return nil
}

// principalOf is who the door authenticated, or the unchecked text of a
// decision sent straight to the workflow.
func principalOf(d Decision) identity.Principal {
	if d.Principal.IsZero() {
		return identity.Unchecked(d.By)
	}
	return d.Principal
}

func (r *release) personOf(d Decision) string { return r.in.Release.PersonOf(principalOf(d)) }

// selfApproval reports whether the approver is who started the release:
// "alice" started "alice" or "alice (GitHub Actions run 7)". Only releases
// started without a principal use it.
func selfApproval(startedBy, by string) bool {
	s, b := strings.ToLower(strings.TrimSpace(startedBy)), strings.ToLower(strings.TrimSpace(by))
	return b != "" && (s == b || strings.HasPrefix(s, b+" ("))
}

func (r *release) applyApprove(ctx workflow.Context, d Decision) (string, error) {
	r.approved = true
	r.record(ctx, UpdateApprove, d)
	return fmt.Sprintf("approved by %s; the release goes on", d.By), nil
}

func (r *release) validateStop(name string, d Decision) error {
	if err := r.refuseIfOver(); err != nil {
		return err
	}
	if r.noReturn {
		return errors.New("the standby window has closed: the release can no longer roll back")
	}
	if d.By == "" {
		return fmt.Errorf("%s needs who asks for it (by)", name)
	}
	return nil
}

func (r *release) validateAbort(d Decision) error {
	if err := r.validateStop(UpdateAbort, d); err != nil {
		return err
	}
	if d.Reason == "" {
		return errors.New("abort needs a reason")
	}
	return nil
}

func (r *release) validateRollback(d Decision) error { return r.validateStop(UpdateRollback, d) }

// applyStop stops the release and answers once all traffic is back on blue (or
// the release ended some other way), so the caller knows users are safe.
func (r *release) applyStop(kind string) func(ctx workflow.Context, d Decision) (string, error) {
	return func(ctx workflow.Context, d Decision) (string, error) {
		r.record(ctx, kind, d)
		reason := fmt.Sprintf("%s by %s", kind, d.By)
		if d.Reason != "" {
			reason += ": " + d.Reason
		}
		r.requestStop(kind, reason)
		if err := workflow.Await(ctx, func() bool { return r.trafficBack || r.ended }); err != nil {
			return "", err
		}
		if !r.trafficBack {
			return "", fmt.Errorf("traffic could not be sent back to blue: %s", r.st.Reason)
		}
		return "all traffic is back on blue; undoing the rest", nil
	}
}

func (r *release) validatePause(d Decision) error {
	if err := r.refuseIfOver(); err != nil {
		return err
	}
	if r.st.Paused {
		return errors.New("the release is already paused")
	}
	if d.By == "" {
		return errors.New("pause needs who asks for it (by)")
	}
	return nil
}

func (r *release) applyPause(ctx workflow.Context, d Decision) (string, error) {
	r.st.Paused = true
	r.record(ctx, UpdatePause, d)
	return "paused: the release holds before its next step", nil
}

func (r *release) validateResume(d Decision) error {
	if err := r.refuseIfOver(); err != nil {
		return err
	}
	if !r.st.Paused && !r.inPauseStep {
		return errors.New("the release is not paused")
	}
	if d.By == "" {
		return errors.New("resume needs who asks for it (by)")
	}
	return nil
}

func (r *release) applyResume(ctx workflow.Context, d Decision) (string, error) {
	r.st.Paused, r.resumed = false, true
	r.record(ctx, UpdateResume, d)
	return "resumed", nil
}

// record keeps a decision in the status, where the query, the UI and the result
// show it.
func (r *release) record(ctx workflow.Context, action string, d Decision) {
	rec := DecisionRecord{Decision: d, Action: action, Step: r.st.Step, At: workflow.Now(ctx)}
	if !r.in.Principal.IsZero() {
		rec.Principal, rec.Person = principalOf(d), r.personOf(d)
	}
	r.st.Decisions = append(r.st.Decisions, rec)
	r.publish(ctx)
	msg := action
	if d.Reason != "" {
		msg += ": " + d.Reason
	}
	r.enter(ctx, ledgerEvent{Kind: providers.LedgerDecision, Step: r.st.Step, Actor: d.By, Via: d.Via,
		Principal: rec.Principal.String(), Person: rec.Person, Message: msg})
}
