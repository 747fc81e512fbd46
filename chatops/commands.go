package chatops

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/slack-go/slack"

	slackprov "github.com/cutoverhq/cutover/providers/slack"
	"github.com/cutoverhq/cutover/workflows"
)

// Usage is the slash command's help.
const Usage = "Usage: `/cutover status APP`, `/cutover approve APP [reason]`, `/cutover abort APP REASON`, " +
	"`/cutover pause APP [reason]`, `/cutover resume APP [reason]`"

// MaxReasonLength bounds the reason of a decision from Slack, in characters,
// as the API bounds its own (1000): the release records the reason, and
// Slack, the logs and the Temporal UI show it.
const MaxReasonLength = 1000

// checkReason says why a reason a person typed is refused, or "". Newlines
// and tabs are kept (Slack's message box sends them with shift-enter); other
// control characters and bytes that are not UTF-8 are refused, as the API
// refuses them: they could forge lines in the logs or hide text in the
// release's record.
func checkReason(reason string) string {
	if n := utf8.RuneCountInString(reason); n > MaxReasonLength {
		return fmt.Sprintf("the reason is %d characters long, more than the %d a release keeps", n, MaxReasonLength)
	}
	bad := strings.ContainsFunc(reason, func(c rune) bool {
		return c != '\n' && c != '\t' && unicode.IsControl(c) || c == utf8.RuneError
	})
	if bad {
		return "the reason contains control characters or bytes that are not UTF-8 (newlines and tabs are fine)"
	}
	return ""
}

// command answers the slash command.
func (h *handler) command(w http.ResponseWriter, r *http.Request, body []byte) {
	req, err := http.NewRequestWithContext(r.Context(), http.MethodPost, "/", bytes.NewReader(body))
	if err != nil {
		http.Error(w, "bad request", http.StatusBadRequest)
		return
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	sc, err := slack.SlashCommandParse(req)
	if err != nil || !reUser.MatchString(sc.UserID) {
		http.Error(w, "not a slash command", http.StatusBadRequest)
		return
	}
	who := actor{id: sc.UserID, name: sc.UserName, channel: sc.ChannelID, team: sc.TeamID}
	action, app, reason := parseText(sc.Text)
	updateID := ""
	if sc.TriggerID != "" {
		updateID = "slack-cmd:" + sc.TriggerID
	} else {
		// Without a trigger ID, the verified signature is as unique.
		updateID = "slack-sig:" + Sign(h.cfg.SigningSecret, r.Header.Get(HeaderTimestamp), body)[3:35]
	}
	rep, inTime := h.run(func(ctx context.Context) reply {
		return h.doCommand(ctx, who, action, app, reason, updateID)
	}, func(rep reply) {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := h.post(ctx, sc.ResponseURL, rep); err != nil {
			h.log.Error("chatops: cannot send a late answer", "user_id", who.id, "app", app, "action", action, "err", err)
		}
	})
	if !inTime {
		rep = ephemeral("Working on it: the answer follows.")
	}
	writeJSON(w, rep)
}

// parseText splits "approve shop the numbers look good" into its action, app
// and reason.
func parseText(text string) (action, app, reason string) {
	action, rest := cutField(text)
	app, reason = cutField(rest)
	return strings.ToLower(action), app, strings.TrimSpace(reason)
}

// cutField cuts the first whitespace-separated field off s.
func cutField(s string) (field, rest string) {
	s = strings.TrimLeftFunc(s, unicode.IsSpace)
	i := strings.IndexFunc(s, unicode.IsSpace)
	if i < 0 {
		return s, ""
	}
	return s[:i], strings.TrimLeftFunc(s[i:], unicode.IsSpace)
}

func (h *handler) doCommand(ctx context.Context, who actor, action, app, reason, updateID string) reply {
	switch action {
	case "", "help":
		return ephemeral("%s", Usage)
	case "status", workflows.UpdateApprove, workflows.UpdateAbort, workflows.UpdatePause, workflows.UpdateResume:
	default:
		return ephemeral("Unknown command %q. %s", slackprov.Escape(action), Usage)
	}
	if app == "" {
		return ephemeral("Which app? %s", Usage)
	}
	if !reApp.MatchString(app) {
		return ephemeral("%q is not an app name. %s", slackprov.Escape(app), Usage)
	}
	if why := h.otherTeam(who); why != "" {
		return h.refuse(who, app, action, why)
	}
	if _, ok := h.appConfig(app); !ok {
		return h.refuse(who, app, action, app+" is not set up for Slack")
	}
	if action == "status" {
		st, err := h.rel.Status(ctx, app)
		if err != nil {
			return h.decideError(who, app, action, err)
		}
		return ephemeral("%s", FormatStatus(st))
	}
	// Before authorize, which may ask Slack for user groups.
	if why := checkReason(reason); why != "" {
		return h.refuse(who, app, action, why)
	}
	if why := h.authorize(ctx, who, app); why != "" {
		return h.refuse(who, app, action, why)
	}
	if action == workflows.UpdateAbort && reason == "" {
		return ephemeral("Abort needs a reason: `/cutover abort %s REASON`. Nothing was sent to the release.", app)
	}
	if action == workflows.UpdateApprove {
		_, why, err := h.selfApproval(ctx, who, app)
		if err != nil {
			return h.decideError(who, app, action, err)
		}
		if why != "" {
			return h.refuse(who, app, action, why)
		}
	}
	d := workflows.Decision{By: who.by(), Principal: who.principal(), Reason: reason, Via: Via}
	answer, err := h.rel.Decide(ctx, app, action, d, updateID)
	if err != nil {
		return h.decideError(who, app, action, err)
	}
	h.log.Info("chatops decision", "user_id", who.id, "user_name", cleanName(who.name), "channel", who.channel,
		"app", app, "action", action, "update_id", updateID, "answer", answer)
	return reply{
		Text:         fmt.Sprintf("%s by <@%s>: %s", pastTense[action], who.id, escapeAnswer(answer, d.By)),
		ResponseType: slack.ResponseTypeInChannel,
	}
}

// FormatStatus prints a release's status for Slack.
func FormatStatus(st workflows.Status) string {
	e := slackprov.Escape
	var b strings.Builder
	fmt.Fprintf(&b, "*%s* ", e(st.App))
	if st.PreviousVersion != "" {
		fmt.Fprintf(&b, "%s → ", e(st.PreviousVersion))
	}
	fmt.Fprintf(&b, "%s: stage `%s`", e(st.Version), e(st.Stage))
	if st.Step > 0 {
		fmt.Fprintf(&b, " (step %d of %d)", st.Step, len(st.Steps))
	}
	fmt.Fprintf(&b, ", traffic %s", st.Weights)
	if st.Paused {
		b.WriteString(", *paused*")
	}
	if st.Waiting != "" {
		fmt.Fprintf(&b, "\nWaiting for %s", e(st.Waiting))
	}
	if st.Outcome != "" && st.Outcome != workflows.OutcomeRunning {
		fmt.Fprintf(&b, "\nOutcome: *%s*", e(st.Outcome))
		if st.Reason != "" {
			fmt.Fprintf(&b, " (%s)", e(st.Reason))
		}
	}
	if st.StartedBy != "" || !st.StartedAt.IsZero() {
		b.WriteString("\nStarted")
		if st.StartedBy != "" {
			fmt.Fprintf(&b, " by %s", e(st.StartedBy))
		}
		if !st.StartedAt.IsZero() {
			fmt.Fprintf(&b, " at %s", st.StartedAt.UTC().Format(time.RFC3339))
		}
	}
	if n := len(st.Decisions); n > 0 {
		d := st.Decisions[n-1]
		fmt.Fprintf(&b, "\nLast decision: %s by %s", e(d.Action), e(d.By))
		if d.Reason != "" {
			fmt.Fprintf(&b, " (%s)", e(d.Reason))
		}
		if !d.At.IsZero() {
			fmt.Fprintf(&b, " at %s", d.At.UTC().Format(time.RFC3339))
		}
	}
	if st.LastVerdict != nil {
		b.WriteString("\n" + slackprov.VerdictText(st.LastVerdict))
	}
	return b.String()
}
