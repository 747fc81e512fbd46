// Package slack is a notifier that tells a Slack channel what a release is
// doing, and asks for a decision with Approve and Abort buttons when a release
// waits for a person.
//
//	notifications:
//	  - type: slack
//	    settings:
//	      token: {env: SLACK_BOT_TOKEN}   # the bot token (env or file), scope chat:write
//	      channel: C0123456789            # a channel ID (or #name; updates need the bot in it)
//	      events: [approval-needed, decision-needed, rollback, promoted, rolled_back, aborted, failed]
//	      apiURL: http://127.0.0.1:9999/   # optional: another Slack Web API, for tests
//
// On approval-needed and decision-needed it posts a Block Kit message: the
// release (app, version, and the event's message: previous -> new version and
// the traffic split), the verdict's numbers (one line per metric; "no verdict
// yet" without one) and Approve and Abort buttons whose values carry the app
// and the version (see slackbuttons.Value); the chatops package handles the presses.
// It remembers the message (channel, ts) per app and version, in memory; a
// newer request for the same release closes the older one (its buttons go),
// and when the release ends it edits the message to show the outcome, without
// the buttons. When it knows no message (a worker that restarted in between,
// or Slack lost it) the outcome is posted as a new message. Every other event
// in events is a short line in the channel.
//
// events defaults to DefaultEvents. The edit of a request message on an
// outcome happens whatever events says, so that no stale buttons stay behind;
// an outcome is posted as a new message only when it is in events.
//
// Slack's errors are retried, except those no retry can fix: bad or revoked
// token, missing scope, unknown or archived channel (providers.BadConfig), and
// a message Slack refuses (providers.Invalid).
package slack

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/slack-go/slack"

	"github.com/cutoverhq/cutover/providers"
	"github.com/cutoverhq/cutover/slackbuttons"
	"github.com/cutoverhq/cutover/verdict"
)

// Type is the provider's name in release.yaml.
const Type = "slack"

// Event kinds the workflow sends.
const (
	KindStarted        = "started"
	KindApprovalNeeded = "approval-needed"
	KindDecisionNeeded = "decision-needed"
	KindVerdict        = "verdict"
	KindRollback       = "rollback"
	KindPromoted       = "promoted"
	KindRolledBack     = "rolled_back"
	KindAborted        = "aborted"
	KindFailed         = "failed"
)

// Kinds lists every event kind, in the order a release sends them.
var Kinds = []string{KindStarted, KindApprovalNeeded, KindDecisionNeeded, KindVerdict, KindRollback, KindPromoted, KindRolledBack, KindAborted, KindFailed}

// DefaultEvents are the kinds posted when settings name none: those where a
// person is asked to decide, the rollback and the outcomes.
var DefaultEvents = []string{KindApprovalNeeded, KindDecisionNeeded, KindRollback, KindPromoted, KindRolledBack, KindAborted, KindFailed}

// IsOutcome reports whether the kind is a release's outcome.
func IsOutcome(kind string) bool {
	switch kind {
	case KindPromoted, KindRolledBack, KindAborted, KindFailed:
		return true
	}
	return false
}

// asksForDecision reports whether the kind gets the message with buttons.
func asksForDecision(kind string) bool {
	return kind == KindApprovalNeeded || kind == KindDecisionNeeded
}

// Settings are the provider's release.yaml settings.
type Settings struct {
	// Token names the secret holding the bot token (required).
	Token providers.SecretRef `json:"token"`
	// Channel is where messages go: a channel ID like C0123456789 (required).
	Channel string `json:"channel"`
	// APIURL is the Slack Web API's base URL (default https://slack.com/api/).
	APIURL string `json:"apiURL,omitempty"`
	// Events are the kinds posted (default DefaultEvents).
	Events []string `json:"events,omitempty"`
}

// Notifier posts release events to a Slack channel.
type Notifier struct {
	s      Settings
	events map[string]bool

	mu     sync.Mutex
	client *slack.Client
	token  string // the client's
	// msgs are the request messages posted per release (app + version), to
	// edit when the release ends.
	msgs map[string][]posted
}

// posted is a message with buttons that was posted.
type posted struct {
	channel, ts string
	blocks      []slack.Block // without the buttons
	text        string
}

var _ providers.Notifier = (*Notifier)(nil)

// New checks the settings; it does no I/O (the token is read on first use).
func New(settings map[string]any) (*Notifier, error) {
	var s Settings
	if err := providers.DecodeSettings(settings, &s); err != nil {
		return nil, err
	}
	if err := s.Token.Check(); err != nil {
		return nil, providers.BadConfig("token: %v", err)
	}
	s.Channel = strings.TrimSpace(s.Channel)
	if s.Channel == "" {
		return nil, providers.BadConfig("channel is required (a channel ID like C0123456789)")
	}
	if s.APIURL != "" {
		u, err := url.Parse(s.APIURL)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return nil, providers.BadConfig("apiURL %q is not an http(s) URL", s.APIURL)
		}
		if !strings.HasSuffix(s.APIURL, "/") {
			s.APIURL += "/"
		}
	}
	events := s.Events
	if len(events) == 0 {
		events = DefaultEvents
	}
	n := &Notifier{s: s, events: map[string]bool{}, msgs: map[string][]posted{}}
	for _, k := range events {
		if !slices.Contains(Kinds, k) {
			return nil, providers.BadConfig("events: unknown event %q (known: %s)", k, strings.Join(Kinds, ", "))
		}
		n.events[k] = true
	}
	return n, nil
}

// NewBuilder returns the registry entry for the Slack notifier.
func NewBuilder() providers.Builder {
	return providers.Builder{Type: Type, New: func(s map[string]any) (any, error) { return New(s) }}
}

// Type names the provider.
func (n *Notifier) Type() string { return Type }

func (n *Notifier) api() (*slack.Client, error) {
	// The token is read every time, so that a rotated secret is picked up
	// without a restart.
	token, err := n.s.Token.Resolve()
	if err != nil {
		return nil, fmt.Errorf("slack token: %w", err)
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.client != nil && n.token == token {
		return n.client, nil
	}
	var opts []slack.Option
	if n.s.APIURL != "" {
		opts = append(opts, slack.OptionAPIURL(n.s.APIURL))
	}
	n.client, n.token = slack.New(token, opts...), token
	return n.client, nil
}

func key(app, version string) string { return app + "\x00" + version }

// Notify delivers one event.
func (n *Notifier) Notify(ctx context.Context, e providers.Event) error {
	switch {
	case asksForDecision(e.Kind):
		if !n.events[e.Kind] {
			return nil
		}
		return n.ask(ctx, e)
	case IsOutcome(e.Kind):
		return n.outcome(ctx, e)
	case n.events[e.Kind]:
		return n.line(ctx, e)
	}
	return nil
}

// ask posts the message with the buttons, and closes earlier requests of the
// same release (their question was answered, or the release would not ask
// again).
func (n *Notifier) ask(ctx context.Context, e providers.Event) error {
	api, err := n.api()
	if err != nil {
		return err
	}
	blocks := RequestBlocks(e)
	text := fallbackText(e)
	ch, ts, err := api.PostMessageContext(ctx, n.s.Channel,
		slack.MsgOptionText(text, false),
		slack.MsgOptionBlocks(append(blocks, Buttons(slackbuttons.Value{App: e.App, Version: e.Version}))...))
	if err != nil {
		return classify("post the request for a decision", err)
	}
	k := key(e.App, e.Version)
	n.mu.Lock()
	earlier := n.msgs[k]
	n.msgs[k] = []posted{{channel: ch, ts: ts, blocks: blocks, text: text}}
	n.mu.Unlock()
	for _, p := range earlier {
		note := slack.NewContextBlock("", slack.NewTextBlockObject(slack.MarkdownType, "This request is closed: the release has moved on (see the newer message).", false, false))
		// A stale message keeps its buttons if this fails; chatops refuses a
		// press that does not match what the release waits for.
		_, _, _, _ = api.UpdateMessageContext(ctx, p.channel, p.ts,
			slack.MsgOptionText(p.text, false), slack.MsgOptionBlocks(append(p.blocks, note)...))
	}
	return nil
}

// outcome edits the request messages of the release with the outcome, or posts
// the outcome.
func (n *Notifier) outcome(ctx context.Context, e providers.Event) error {
	k := key(e.App, e.Version)
	n.mu.Lock()
	msgs := slices.Clone(n.msgs[k])
	n.mu.Unlock()
	if len(msgs) == 0 && !n.events[e.Kind] {
		return nil
	}
	api, err := n.api()
	if err != nil {
		return err
	}
	var edited bool
	for _, p := range msgs {
		blocks := append(slices.Clone(p.blocks), OutcomeBlock(e))
		_, _, _, err := api.UpdateMessageContext(ctx, p.channel, p.ts,
			slack.MsgOptionText(p.text+" — "+e.Kind, false), slack.MsgOptionBlocks(blocks...))
		var se slack.SlackErrorResponse
		switch {
		case err == nil:
			edited = true
		case errors.As(err, &se) && (se.Err == "message_not_found" || se.Err == "cant_update_message" || se.Err == "edit_window_closed"):
			// Gone or no longer editable: the outcome is posted below.
		default:
			return classify("update the request message", err)
		}
	}
	n.mu.Lock()
	delete(n.msgs, k)
	n.mu.Unlock()
	if edited {
		return nil
	}
	_, _, err = api.PostMessageContext(ctx, n.s.Channel,
		slack.MsgOptionText(fallbackText(e), false),
		slack.MsgOptionBlocks(OutcomeBlocks(e)...))
	return classify("post the outcome", err)
}

// line posts a short line.
func (n *Notifier) line(ctx context.Context, e providers.Event) error {
	api, err := n.api()
	if err != nil {
		return err
	}
	_, _, err = api.PostMessageContext(ctx, n.s.Channel, slack.MsgOptionText(emoji(e.Kind)+" "+Escape(e.Message), false))
	return classify("post "+e.Kind, err)
}

// Permanent Slack API errors: no retry can fix them.
var (
	badConfigErrors = []string{
		"invalid_auth", "not_authed", "account_inactive", "token_revoked", "token_expired",
		"no_permission", "missing_scope", "not_allowed_token_type", "ekm_access_denied",
		"channel_not_found", "not_in_channel", "is_archived", "team_access_not_granted",
		"restricted_action", "invalid_arguments", "invalid_arg_name",
	}
	invalidErrors = []string{"invalid_blocks", "invalid_blocks_format", "msg_too_long", "too_many_attachments", "no_text", "message_not_found", "cant_update_message", "edit_window_closed"}
)

// classify marks the Slack errors that no retry can fix; anything else
// (rate limits, 5xx, timeouts, connection errors) stays retryable.
func classify(what string, err error) error {
	if err == nil {
		return nil
	}
	var se slack.SlackErrorResponse
	if errors.As(err, &se) {
		switch {
		case slices.Contains(badConfigErrors, se.Err):
			return providers.BadConfig("slack: %s: %s", what, se.Err)
		case slices.Contains(invalidErrors, se.Err):
			return providers.Invalid("slack: %s: %s", what, se.Err)
		}
	}
	return fmt.Errorf("slack: %s: %w", what, err)
}

// Escape escapes the three characters Slack's mrkdwn gives a meaning to, so
// that text from a release (a reason, a message) cannot mention @channel or
// forge a link.
func Escape(s string) string {
	return strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;").Replace(s)
}

// truncate keeps a block's text within Slack's 3000 characters.
func truncate(s string, max int) string {
	if len(s) <= max {
		return s
	}
	cut := max - len("…")
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + "…"
}

func emoji(kind string) string {
	switch kind {
	case KindPromoted:
		return ":white_check_mark:"
	case KindRolledBack, KindRollback:
		return ":leftwards_arrow_with_hook:"
	case KindAborted:
		return ":octagonal_sign:"
	case KindFailed:
		return ":x:"
	case KindApprovalNeeded, KindDecisionNeeded:
		return ":raising_hand:"
	case KindVerdict:
		return ":bar_chart:"
	}
	return ":rocket:"
}

func fallbackText(e providers.Event) string {
	return fmt.Sprintf("%s %s: %s", e.App, e.Version, e.Message)
}

func mrkdwn(s string) *slack.TextBlockObject {
	return slack.NewTextBlockObject(slack.MarkdownType, truncate(s, 3000), false, false)
}

func plain(s string) *slack.TextBlockObject {
	return slack.NewTextBlockObject(slack.PlainTextType, truncate(s, 150), false, false)
}

// RequestBlocks is the body of a request for a decision, without the buttons:
// what waits, the release, and the verdict's numbers.
func RequestBlocks(e providers.Event) []slack.Block {
	msg := Escape(strings.ReplaceAll(e.Message, " -> ", " → "))
	if strings.TrimSpace(msg) == "" {
		msg = "(no message)" // Slack refuses an empty section
	}
	title := e.App + " " + e.Version + " is waiting for approval"
	if e.Kind == KindDecisionNeeded {
		title = e.App + " " + e.Version + " needs a decision"
	}
	return []slack.Block{
		slack.NewHeaderBlock(plain(title)),
		slack.NewSectionBlock(mrkdwn(msg), []*slack.TextBlockObject{
			mrkdwn("*App*\n" + Escape(e.App)),
			mrkdwn("*Version*\n" + Escape(e.Version)),
		}, nil),
		slack.NewSectionBlock(mrkdwn(VerdictText(e.Verdict)), nil, nil),
		slack.NewContextBlock("", mrkdwn(fmt.Sprintf("%s · `cutover status %s` · asked at %s", e.Kind, Escape(e.App), e.Time.UTC().Format(time.RFC3339)))),
	}
}

// Buttons is the actions block with Approve and Abort.
func Buttons(v slackbuttons.Value) *slack.ActionBlock {
	approve := slack.NewButtonBlockElement(slackbuttons.ActionApprove, v.Encode(), plain("Approve")).WithStyle(slack.StylePrimary)
	abort := slack.NewButtonBlockElement(slackbuttons.ActionAbort, v.Encode(), plain("Abort")).WithStyle(slack.StyleDanger).
		WithConfirm(slack.NewConfirmationBlockObject(plain("Abort the release?"),
			mrkdwn(fmt.Sprintf("All traffic goes back to blue and %s %s is removed.", Escape(v.App), Escape(v.Version))),
			plain("Abort"), plain("Cancel")))
	return slack.NewActionBlock(slackbuttons.BlockDecide, approve, abort)
}

// VerdictText prints a verdict for people: its result and summary, then one
// line per metric with its numbers.
func VerdictText(v *verdict.Verdict) string {
	if v == nil {
		return "*Verdict:* no verdict yet"
	}
	var b strings.Builder
	fmt.Fprintf(&b, "*Verdict: %s*", v.Result)
	if v.Summary != "" {
		b.WriteString(" — " + Escape(v.Summary))
	}
	for _, m := range v.Metrics {
		fmt.Fprintf(&b, "\n• *%s*: %s", Escape(m.Name), m.Result)
		if m.Critical {
			b.WriteString(" (critical)")
		}
		var vals []string
		for _, val := range m.Values {
			vals = append(vals, Escape(val.Name)+"="+verdict.FormatValue(val.Value))
		}
		if len(vals) > 0 {
			b.WriteString(" — `" + strings.Join(vals, " ") + "`")
		}
		if m.Reason != "" {
			b.WriteString("\n    _" + Escape(m.Reason) + "_")
		}
	}
	return b.String()
}

// OutcomeBlock is the line that replaces the buttons when the release ends.
func OutcomeBlock(e providers.Event) slack.Block {
	return slack.NewSectionBlock(mrkdwn(fmt.Sprintf("%s *%s* at %s: %s", emoji(e.Kind), e.Kind, e.Time.UTC().Format(time.RFC3339), Escape(e.Message))), nil, nil)
}

// OutcomeBlocks is an outcome posted on its own.
func OutcomeBlocks(e providers.Event) []slack.Block {
	return []slack.Block{
		slack.NewHeaderBlock(plain(fmt.Sprintf("%s %s: %s", e.App, e.Version, e.Kind))),
		OutcomeBlock(e),
	}
}
