package chatops

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"time"

	"github.com/slack-go/slack"

	slackprov "github.com/cutoverhq/cutover/providers/slack"
	"github.com/cutoverhq/cutover/slackbuttons"
	"github.com/cutoverhq/cutover/workflows"
)

// press is a button press, as the work behind it needs it.
type press struct {
	who         actor
	action      string // workflows.UpdateApprove or UpdateAbort
	value       slackbuttons.Value
	messageTs   string
	responseURL string
	original    slack.Message
	updateID    string
}

// action handles an interactive payload. Slack wants a 200 within 3 seconds;
// everything the user sees goes through the response_url.
func (h *handler) action(w http.ResponseWriter, form url.Values) {
	var cb slack.InteractionCallback
	if err := json.Unmarshal([]byte(form.Get("payload")), &cb); err != nil {
		http.Error(w, "not an interaction payload", http.StatusBadRequest)
		return
	}
	p, ok := h.parsePress(&cb)
	if !ok {
		w.WriteHeader(http.StatusOK) // not one of ours: nothing to do
		return
	}
	h.run(func(ctx context.Context) reply {
		rep := h.doPress(ctx, p)
		if err := h.answerPress(ctx, p, rep); err != nil {
			h.log.Error("chatops: cannot answer a button press", "user_id", p.who.id, "app", p.value.App, "action", p.action, "err", err)
		}
		return rep
	}, func(reply) {})
	w.WriteHeader(http.StatusOK)
}

// parsePress finds our button in a block_actions payload.
func (h *handler) parsePress(cb *slack.InteractionCallback) (press, bool) {
	if cb.Type != slack.InteractionTypeBlockActions || !reUser.MatchString(cb.User.ID) {
		return press{}, false
	}
	for _, a := range cb.ActionCallback.BlockActions {
		var action string
		switch a.ActionID {
		case slackbuttons.ActionApprove:
			action = workflows.UpdateApprove
		case slackbuttons.ActionAbort:
			action = workflows.UpdateAbort
		default:
			continue
		}
		v, err := slackbuttons.Parse(a.Value)
		if err != nil || !reApp.MatchString(v.App) {
			return press{}, false
		}
		channel := cb.Channel.ID
		if channel == "" {
			channel = cb.Container.ChannelID
		}
		ts := cb.Container.MessageTs
		if ts == "" {
			ts = cb.Message.Timestamp
		}
		name := cb.User.Name
		if name == "" {
			name = cb.User.Username
		}
		who := actor{id: cb.User.ID, name: name, channel: channel, team: cb.Team.ID}
		return press{
			who:         who,
			action:      action,
			value:       v,
			messageTs:   ts,
			responseURL: cb.ResponseURL,
			original:    cb.Message,
			updateID:    fmt.Sprintf("slack-btn:%s:%s:%s:%s", channel, ts, action, who.id),
		}, true
	}
	return press{}, false
}

// doPress decides; a reply with ReplaceOriginal set means the release took
// the decision.
func (h *handler) doPress(ctx context.Context, p press) reply {
	app := p.value.App
	if why := h.authorize(ctx, p.who, app); why != "" {
		return h.refuse(p.who, app, p.action, why)
	}
	st, why, err := h.selfApproval(ctx, p.who, app)
	if err != nil {
		return h.decideError(p.who, app, p.action, err)
	}
	if st.Version != p.value.Version {
		return h.refuse(p.who, app, p.action, fmt.Sprintf("this message is about %s %s, but the release of %s now is %s",
			app, slackprov.Escape(p.value.Version), app, slackprov.Escape(st.Version)))
	}
	if st.Outcome != "" && st.Outcome != workflows.OutcomeRunning {
		return ephemeral("%s %s has ended (%s). Nothing was sent to the release.", app, slackprov.Escape(st.Version), slackprov.Escape(st.Outcome))
	}
	if p.action == workflows.UpdateApprove && why != "" {
		return h.refuse(p.who, app, p.action, why)
	}
	d := workflows.Decision{By: p.who.by(), Principal: p.who.principal(), Via: Via}
	if p.action == workflows.UpdateAbort {
		d.Reason = "aborted from Slack by " + p.who.by()
	}
	answer, err := h.rel.Decide(ctx, app, p.action, d, p.updateID)
	if err != nil {
		return h.decideError(p.who, app, p.action, err)
	}
	h.log.Info("chatops decision", "user_id", p.who.id, "user_name", cleanName(p.who.name), "channel", p.who.channel,
		"app", app, "action", p.action, "update_id", p.updateID, "answer", answer)
	icon := ":white_check_mark:"
	if p.action == workflows.UpdateAbort {
		icon = ":octagonal_sign:"
	}
	outcome := fmt.Sprintf("%s *%s* by <@%s> at %s: %s", icon, pastTense[p.action], p.who.id,
		h.cfg.Now().UTC().Format(time.RFC3339), escapeAnswer(answer, d.By))
	return reply{
		Text:            fmt.Sprintf("%s %s %s by <@%s>", app, slackprov.Escape(p.value.Version), pastTense[p.action], p.who.id),
		Blocks:          withoutButtons(p.original, outcome),
		ResponseType:    slack.ResponseTypeInChannel,
		ReplaceOriginal: true,
	}
}

// withoutButtons is the pressed message without its actions blocks, and the
// outcome under it.
func withoutButtons(m slack.Message, outcome string) []slack.Block {
	var blocks []slack.Block
	for _, b := range m.Blocks.BlockSet {
		if b.BlockType() == slack.MBTAction {
			continue
		}
		blocks = append(blocks, b)
	}
	if len(blocks) == 0 && m.Text != "" {
		blocks = append(blocks, slack.NewSectionBlock(slack.NewTextBlockObject(slack.MarkdownType, m.Text, false, false), nil, nil))
	}
	return append(blocks, slack.NewSectionBlock(slack.NewTextBlockObject(slack.MarkdownType, outcome, false, false), nil, nil))
}

// answerPress shows the reply: the replaced message, or a note to the user
// alone. Without a usable response_url it edits the message with chat.update.
func (h *handler) answerPress(ctx context.Context, p press, rep reply) error {
	u, err := url.Parse(p.responseURL)
	var postErr error
	if p.responseURL != "" && err == nil && h.cfg.AllowResponseURL(u) {
		if !rep.ReplaceOriginal {
			rep.ResponseType = slack.ResponseTypeEphemeral
		}
		if postErr = h.post(ctx, p.responseURL, rep); postErr == nil {
			return nil
		}
	} else {
		postErr = errors.New("no usable response_url")
	}
	// An expired or missing response_url: edit the message with the bot token.
	if !rep.ReplaceOriginal {
		return fmt.Errorf("%w; cannot tell the user: %s", postErr, rep.Text)
	}
	if h.api == nil || p.who.channel == "" || p.messageTs == "" {
		return fmt.Errorf("%w, and no bot token to edit the message", postErr)
	}
	_, _, _, err = h.api.UpdateMessageContext(ctx, p.who.channel, p.messageTs,
		slack.MsgOptionText(rep.Text, false), slack.MsgOptionBlocks(rep.Blocks...))
	if err != nil {
		return fmt.Errorf("%w; chat.update: %w", postErr, err)
	}
	return nil
}
