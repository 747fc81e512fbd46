// Package chatops lets people see, approve, abort, pause and resume releases
// from Slack: a slash command and the Approve and Abort buttons that the slack
// notifier (providers/slack) posts.
//
// The handler serves two paths (whatever the prefix it is mounted under):
//
//	…/commands   the slash command: /cutover status|approve|abort|pause|resume APP [reason]
//	…/actions    interactive payloads: the buttons
//
// # Trust
//
// Every request is verified before anything else is read from it: its body is
// at most Config.MaxBody bytes, its X-Slack-Request-Timestamp within
// Config.Window (5m) of the clock either way, its X-Slack-Signature Slack's v0
// HMAC-SHA256 of "v0:<timestamp>:<body>" with the signing secret, and its
// signature one not seen in the window (a replay cache, in memory, per
// process). Anything else is answered 401 and changes nothing.
//
// A decision then needs the Slack user to be allowed: on the app's (or "*")
// approvers list, or in one of its user groups (usergroups.users.list with the
// bot token, cached for Config.GroupCacheTTL), and, when the app names a
// channel, to act in that channel. A refusal is answered to the user alone and
// logged (slog, warn, "chatops refused"); nothing reaches the release. Status
// is answered to anyone who can run the command, for apps in the
// configuration.
//
// # What the release sees
//
// A decision is workflows.Decision{By: "<@U123> (alice)", Via: "slack",
// Reason}: the user ID in Slack's mention syntax (so that answers quoted back
// in Slack mention the user) and the Slack user name, which is not an identity.
// The release refuses an approve by whoever started it (separation of duties)
// and chatops relays its answer; in addition chatops refuses an approve from a
// user whose ID appears in the release's StartedBy.
//
// A reason typed after a slash command is at most MaxReasonLength characters,
// free of control characters but newlines and tabs, and UTF-8; any other is
// refused, to the user alone, before anything reaches the release.
//
// A slash command's update ID is "slack-cmd:<trigger_id>". A button's is
// "slack-btn:<channel>:<message ts>:<action>:<user>", so that a retried
// press is answered once by the release; it includes the user so that a
// second person pressing the same button is not answered with the first
// person's result.
//
// A button decides on the release its value names (app and version); a press
// on a message of an earlier release of the app is refused. After a decision
// from a button, the message is replaced (through the response_url) by its
// text without the buttons and with the outcome: who, when and the release's
// answer. Abort from a button needs no reason: it is "aborted from Slack by
// <user>".
//
// Slack waits 3 seconds for an answer: a request waits Config.AckTimeout for
// the release, then acknowledges, and the answer follows through the
// response_url.
//
// The replay cache lives in the process: behind several replicas, a replay
// sent to another replica within the window passes the signature check, and
// the update ID (the same for the same request) is what keeps the release from
// acting twice.
//
// # Setting up the Slack app
//
//   - Slash command /cutover, request URL https://HOST/slack/commands.
//   - Interactivity on, request URL https://HOST/slack/actions.
//   - Bot token scopes: commands, chat:write (the notifier), usergroups:read
//     (approver groups). Invite the bot to the release channel.
//   - The signing secret (Basic Information) goes in SLACK_SIGNING_SECRET or
//     the file the configuration names; see LoadConfig.
package chatops

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"path"
	"reflect"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/slack-go/slack"

	"github.com/cutoverhq/cutover/identity"
	slackprov "github.com/cutoverhq/cutover/providers/slack"
	"github.com/cutoverhq/cutover/releases"
	"github.com/cutoverhq/cutover/workflows"
)

// Releases is what chatops needs of releases.Client.
type Releases interface {
	Status(ctx context.Context, app string) (workflows.Status, error)
	Decide(ctx context.Context, app, action string, d workflows.Decision, updateID string) (string, error)
}

var _ Releases = (*releases.Client)(nil)

// SlackAPI is what chatops needs of the Slack Web API; *slack.Client has it.
type SlackAPI interface {
	GetUserGroupMembersContext(ctx context.Context, userGroup string, options ...slack.GetUserGroupMembersOption) ([]string, error)
	UpdateMessageContext(ctx context.Context, channelID, timestamp string, options ...slack.MsgOption) (string, string, string, error)
}

var _ SlackAPI = (*slack.Client)(nil)

// Via is Decision.Via for decisions from Slack.
const Via = "slack"

type handler struct {
	cfg    Config
	rel    Releases
	api    SlackAPI
	log    *slog.Logger
	replay *replayCache
	groups *groupCache
	wg     sync.WaitGroup // work that outlived its request
}

// New returns the handler. api may be nil: one is made from cfg.BotToken when
// there is one. log may be nil.
func New(cfg Config, rel Releases, api SlackAPI, log *slog.Logger) (http.Handler, error) {
	if cfg.SigningSecret == "" {
		return nil, errors.New("chatops: no signing secret")
	}
	if rel == nil {
		return nil, errors.New("chatops: no releases client")
	}
	if err := checkApps(cfg.Apps); err != nil {
		return nil, fmt.Errorf("chatops: %w", err)
	}
	if api != nil {
		if v := reflect.ValueOf(api); v.Kind() == reflect.Pointer && v.IsNil() {
			api = nil
		}
	}
	if api == nil && cfg.BotToken != "" {
		api = slack.New(cfg.BotToken)
	}
	if api == nil && usesGroups(cfg.Apps) {
		return nil, errors.New("chatops: user groups need a bot token (usergroups:read)")
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Window <= 0 || cfg.Window > DefaultWindow {
		cfg.Window = DefaultWindow
	}
	if cfg.MaxBody <= 0 {
		cfg.MaxBody = DefaultMaxBody
	}
	if cfg.ReplayCacheSize <= 0 {
		cfg.ReplayCacheSize = DefaultReplayCacheSize
	}
	if cfg.GroupCacheTTL <= 0 {
		cfg.GroupCacheTTL = DefaultGroupCacheTTL
	}
	if cfg.AckTimeout <= 0 {
		cfg.AckTimeout = DefaultAckTimeout
	}
	if cfg.DecideTimeout <= 0 {
		cfg.DecideTimeout = DefaultDecideTimeout
	}
	if cfg.HTTPClient == nil {
		cfg.HTTPClient = &http.Client{Timeout: 10 * time.Second}
	}
	if cfg.AllowResponseURL == nil {
		cfg.AllowResponseURL = slackResponseURL
	}
	return &handler{
		cfg:    cfg,
		rel:    rel,
		api:    api,
		log:    log,
		replay: newReplayCache(cfg.ReplayCacheSize),
		groups: newGroupCache(api, cfg.GroupCacheTTL, cfg.Now),
	}, nil
}

// slackResponseURL accepts Slack's own response URLs only.
func slackResponseURL(u *url.URL) bool {
	h := u.Hostname()
	return u.Scheme == "https" && (h == "hooks.slack.com" || strings.HasSuffix(h, ".slack.com") || h == "hooks.slack-gov.com")
}

func (h *handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	kind := path.Base(r.URL.Path)
	if kind != "commands" && kind != "actions" {
		http.NotFound(w, r)
		return
	}
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, h.cfg.MaxBody))
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			h.log.Warn("chatops request refused", "reason", "body too large", "remote", r.RemoteAddr, "path", kind)
			http.Error(w, "request too large", http.StatusRequestEntityTooLarge)
			return
		}
		http.Error(w, "cannot read the request", http.StatusBadRequest)
		return
	}
	if err := h.verify(r.Header, body); err != nil {
		h.log.Warn("chatops request refused", "reason", err.Error(), "remote", r.RemoteAddr, "path", kind)
		if errors.Is(err, ErrReplayCacheFull) {
			http.Error(w, "busy", http.StatusServiceUnavailable)
			return
		}
		http.Error(w, "unauthorized", http.StatusUnauthorized)
		return
	}
	form, err := url.ParseQuery(string(body))
	if err != nil {
		http.Error(w, "not a form", http.StatusBadRequest)
		return
	}
	if kind == "commands" {
		h.command(w, r, body)
		return
	}
	h.action(w, form)
}

// verify checks the signature and the window, then remembers the request so
// that it is acted on once. Only a verified request enters the replay cache:
// a forged one cannot keep a real one out.
func (h *handler) verify(hd http.Header, body []byte) error {
	now := h.cfg.Now()
	if err := VerifySignature(h.cfg.SigningSecret, hd, body, now, h.cfg.Window); err != nil {
		return err
	}
	ts := hd.Get(HeaderTimestamp)
	sec, _ := strconv.ParseInt(ts, 10, 64) // checked above
	// The key is the signature as computed, not as sent: the same signature
	// in upper-case hex is the same request.
	return h.replay.add(Sign(h.cfg.SigningSecret, ts, body), now, time.Unix(sec, 0).Add(h.cfg.Window+time.Second))
}

// reply is an answer to a person.
type reply struct {
	Text         string        `json:"text"`
	ResponseType string        `json:"response_type,omitempty"` // ephemeral or in_channel
	Blocks       []slack.Block `json:"blocks,omitempty"`
	// ReplaceOriginal replaces the message whose button was pressed.
	ReplaceOriginal bool `json:"replace_original"`
}

func ephemeral(format string, args ...any) reply {
	return reply{Text: fmt.Sprintf(format, args...), ResponseType: slack.ResponseTypeEphemeral}
}

// run does the work behind a request. It waits AckTimeout for it; then, or if
// the answer comes later, deliver sends it. It returns the answer when it came
// in time.
func (h *handler) run(work func(ctx context.Context) reply, late func(reply)) (reply, bool) {
	ctx, cancel := context.WithTimeout(context.Background(), h.cfg.DecideTimeout)
	done := make(chan reply, 1)
	h.wg.Add(1)
	go func() {
		defer h.wg.Done()
		defer cancel()
		done <- work(ctx)
	}()
	t := time.NewTimer(h.cfg.AckTimeout)
	defer t.Stop()
	select {
	case rep := <-done:
		return rep, true
	case <-t.C:
	}
	h.wg.Add(1)
	go func() {
		defer h.wg.Done()
		late(<-done)
	}()
	return reply{}, false
}

// post sends a reply to a response_url.
func (h *handler) post(ctx context.Context, responseURL string, rep reply) error {
	u, err := url.Parse(responseURL)
	if err != nil || !h.cfg.AllowResponseURL(u) {
		return errors.New("response_url is not Slack's")
	}
	b, err := json.Marshal(rep)
	if err != nil {
		return err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, responseURL, bytes.NewReader(b))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := h.cfg.HTTPClient.Do(req)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err // the URL is a credential: keep it out of logs
		}
		return err
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<16))
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("response_url answered %s", resp.Status)
	}
	return nil
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(v)
}

// actor is who acts, from Slack.
type actor struct {
	id, name, channel, team string
}

// by is Decision.By: "<@U123> (alice)".
// principal is who Slack vouched for: the user ID of a request whose
// signature checked out. The display name is free text and plays no part.
func (a actor) principal() identity.Principal {
	return identity.Principal{Door: identity.Slack, ID: a.id}
}

func (a actor) by() string {
	name := cleanName(a.name)
	if name == "" {
		return "<@" + a.id + ">"
	}
	return "<@" + a.id + "> (" + name + ")"
}

// cleanName keeps a user name printable, UTF-8 and free of Slack's markup,
// and at most 64 bytes, cut between characters.
func cleanName(s string) string {
	s = strings.Map(func(r rune) rune {
		switch {
		case r == '<' || r == '>' || r == '&' || r == '@' || r == '(' || r == ')':
			return -1
		case unicode.IsControl(r) || r == utf8.RuneError: // and bytes that are not UTF-8, which Map reads as RuneError
			return -1
		}
		return r
	}, s)
	s = strings.TrimSpace(s)
	if len(s) > 64 {
		i := 64
		for i > 0 && !utf8.RuneStart(s[i]) {
			i--
		}
		s = strings.TrimSpace(s[:i])
	}
	return s
}

// appConfig is the app's entry, or "*"'s.
func (h *handler) appConfig(app string) (AppConfig, bool) {
	if a, ok := h.cfg.Apps[app]; ok {
		return a, true
	}
	a, ok := h.cfg.Apps[AnyApp]
	return a, ok
}

// refuse logs a refusal and returns what the user is told.
func (h *handler) refuse(who actor, app, action, why string) reply {
	h.log.Warn("chatops refused", "user_id", who.id, "user_name", cleanName(who.name), "channel", who.channel,
		"app", app, "action", action, "via", Via, "reason", why)
	return ephemeral("Refused: %s. Nothing was sent to the release.", why)
}

// authorize says why the user may not decide on the app, or "".
func (h *handler) authorize(ctx context.Context, who actor, app string) string {
	if why := h.otherTeam(who); why != "" {
		return why
	}
	cfg, ok := h.appConfig(app)
	if !ok {
		return fmt.Sprintf("%s is not set up for Slack", app)
	}
	if cfg.Channel != "" && who.channel != cfg.Channel {
		return fmt.Sprintf("decisions on %s are taken in <#%s> only", app, cfg.Channel)
	}
	for _, u := range cfg.Approvers {
		if u == who.id {
			return ""
		}
	}
	for _, g := range cfg.Groups {
		in, err := h.groups.member(ctx, g, who.id)
		if err != nil {
			h.log.Error("chatops: cannot read a user group", "group", g, "err", err)
			return fmt.Sprintf("could not check the approver groups of %s (%v)", app, err)
		}
		if in {
			return ""
		}
	}
	return fmt.Sprintf("<@%s> is not an approver of %s", who.id, app)
}

// otherTeam refuses a request from a workspace other than Config.TeamID.
func (h *handler) otherTeam(who actor) string {
	if h.cfg.TeamID != "" && who.team != h.cfg.TeamID {
		return "this Slack workspace is not the one Cutover takes decisions from"
	}
	return ""
}

// startedBy reports whether the release's StartedBy names the user ID as a
// whole word.
func startedBy(startedBy, userID string) bool {
	for i := 0; ; {
		j := strings.Index(startedBy[i:], userID)
		if j < 0 {
			return false
		}
		j += i
		end := j + len(userID)
		before := j == 0 || !isIDChar(startedBy[j-1])
		after := end == len(startedBy) || !isIDChar(startedBy[end])
		if before && after {
			return true
		}
		i = j + 1
	}
}

func isIDChar(c byte) bool {
	return c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c >= 'a' && c <= 'z'
}

var pastTense = map[string]string{
	workflows.UpdateApprove: "approved",
	workflows.UpdateAbort:   "aborted",
	workflows.UpdatePause:   "paused",
	workflows.UpdateResume:  "resumed",
}

// escapeAnswer escapes the release's answer for Slack, keeping the mention
// in our own By.
func escapeAnswer(answer, by string) string {
	return strings.ReplaceAll(slackprov.Escape(answer), slackprov.Escape(by), by)
}

// decideError is what the user is told when the release refused or could not
// be reached.
func (h *handler) decideError(who actor, app, action string, err error) reply {
	switch {
	case errors.Is(err, releases.ErrRejected):
		h.log.Info("chatops: the release refused", "user_id", who.id, "app", app, "action", action, "err", err)
		return ephemeral("The release refused: %s", escapeAnswer(strings.TrimSuffix(err.Error(), ": "+releases.ErrRejected.Error()), who.by()))
	case errors.Is(err, releases.ErrNotFound):
		return ephemeral("%s has no release.", slackprov.Escape(app))
	}
	h.log.Error("chatops: decision failed", "user_id", who.id, "app", app, "action", action, "err", err)
	return ephemeral("Could not %s %s: %s", action, slackprov.Escape(app), slackprov.Escape(err.Error()))
}

// selfApproval refuses an approve by the user who started the release; it
// reads the release's status, and refuses when it cannot.
func (h *handler) selfApproval(ctx context.Context, who actor, app string) (workflows.Status, string, error) {
	st, err := h.rel.Status(ctx, app)
	if err != nil {
		return st, "", err
	}
	if startedBy(st.StartedBy, who.id) {
		return st, fmt.Sprintf("<@%s> started this release and may not approve it", who.id), nil
	}
	return st, "", nil
}

// Wait waits for the work that outlived its requests (tests, shutdown).
func Wait(h http.Handler) {
	if hh, ok := h.(*handler); ok {
		hh.wg.Wait()
	}
}
