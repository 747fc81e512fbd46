package slack

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/slack-go/slack"
	"github.com/slack-go/slack/slacktest"

	"github.com/cutoverhq/cutover/providers"
	"github.com/cutoverhq/cutover/slackbuttons"
	"github.com/cutoverhq/cutover/verdict"
)

const token = "xoxb-test-token"

// call is one Web API call the fake Slack saw.
type call struct {
	method string
	form   url.Values
}

// fakeSlack is slacktest's server with chat.postMessage and chat.update that
// remember what they were sent, hand out distinct timestamps and can answer
// with Slack's errors.
type fakeSlack struct {
	srv *slacktest.Server

	mu    sync.Mutex
	calls []call
	ts    int
	fail  map[string]string // method → Slack error to answer
}

func newFakeSlack(t *testing.T) *fakeSlack {
	f := &fakeSlack{fail: map[string]string{}}
	f.srv = slacktest.NewTestServer(func(c slacktest.Customize) {
		c.Handle("/chat.postMessage", f.handle("chat.postMessage"))
		c.Handle("/chat.update", f.handle("chat.update"))
	})
	f.srv.Start()
	t.Cleanup(f.srv.Stop)
	return f
}

func (f *fakeSlack) handle(method string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		form, _ := url.ParseQuery(string(b))
		w.Header().Set("Content-Type", "application/json")
		f.mu.Lock()
		defer f.mu.Unlock()
		f.calls = append(f.calls, call{method, form})
		if form.Get("token") != token && r.Header.Get("Authorization") != "Bearer "+token {
			_, _ = w.Write([]byte(`{"ok":false,"error":"invalid_auth"}`))
			return
		}
		if e := f.fail[method]; e != "" {
			fmt.Fprintf(w, `{"ok":false,"error":%q}`, e)
			return
		}
		ts := form.Get("ts")
		if method == "chat.postMessage" {
			f.ts++
			ts = fmt.Sprintf("1700000000.%06d", f.ts)
		}
		_ = json.NewEncoder(w).Encode(map[string]any{"ok": true, "channel": form.Get("channel"), "ts": ts, "text": form.Get("text")})
	}
}

func (f *fakeSlack) take() []call {
	f.mu.Lock()
	defer f.mu.Unlock()
	c := f.calls
	f.calls = nil
	return c
}

func newNotifier(t *testing.T, f *fakeSlack, extra map[string]any) *Notifier {
	t.Helper()
	t.Setenv("TEST_SLACK_TOKEN", token)
	s := map[string]any{"token": map[string]any{"env": "TEST_SLACK_TOKEN"}, "channel": "C0RELEASES", "apiURL": f.srv.GetAPIURL()}
	for k, v := range extra {
		s[k] = v
	}
	n, err := New(s)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

var at = time.Date(2026, 11, 23, 15, 55, 13, 0, time.UTC)

func approvalNeeded() providers.Event {
	return providers.Event{
		App: "shop", Version: "1.5.0", Kind: KindApprovalNeeded, Time: at,
		Message: "shop 1.4.2 -> 1.5.0 is waiting for approval (at 50% green)",
		Verdict: &verdict.Verdict{Result: verdict.Pass, Summary: "all 2 metrics passed", Metrics: []verdict.Metric{
			{Name: "error rate", Result: verdict.Pass, Critical: true, Reason: "no significant difference",
				Values: []verdict.Value{{Name: "green_error_rate", Value: 0.00123456}, {Name: "blue_error_rate", Value: 0.001}, {Name: "p_value", Value: 0.6847}}},
			{Name: "latency", Result: verdict.Pass,
				Values: []verdict.Value{{Name: "green_median_ms", Value: 6.039}, {Name: "slowdown", Value: 3.709e-05}}},
		}},
	}
}

func blocksOf(t *testing.T, c call) slack.Blocks {
	t.Helper()
	var b slack.Blocks
	if err := json.Unmarshal([]byte(c.form.Get("blocks")), &b); err != nil {
		t.Fatalf("%s blocks: %v\n%s", c.method, err, c.form.Get("blocks"))
	}
	return b
}

func buttons(b slack.Blocks) []*slack.ButtonBlockElement {
	var out []*slack.ButtonBlockElement
	for _, bl := range b.BlockSet {
		if a, ok := bl.(*slack.ActionBlock); ok {
			for _, e := range a.Elements.ElementSet {
				if btn, ok := e.(*slack.ButtonBlockElement); ok {
					out = append(out, btn)
				}
			}
		}
	}
	return out
}

func TestApprovalMessageThenOutcomeUpdatesIt(t *testing.T) {
	f := newFakeSlack(t)
	n := newNotifier(t, f, nil)
	ctx := context.Background()
	if err := n.Notify(ctx, approvalNeeded()); err != nil {
		t.Fatal(err)
	}
	calls := f.take()
	if len(calls) != 1 || calls[0].method != "chat.postMessage" || calls[0].form.Get("channel") != "C0RELEASES" {
		t.Fatalf("calls = %+v", calls)
	}
	raw := calls[0].form.Get("blocks")
	for _, want := range []string{
		"shop 1.5.0 is waiting for approval",
		"shop 1.4.2 → 1.5.0 is waiting for approval (at 50% green)",
		"Verdict: Pass", "all 2 metrics passed",
		"error rate", "green_error_rate=0.001235", "blue_error_rate=0.001", "p_value=0.6847",
		"latency", "green_median_ms=6.039", "slowdown=3.709e-05",
	} {
		if !strings.Contains(raw, want) {
			t.Errorf("the message lacks %q:\n%s", want, raw)
		}
	}
	btns := buttons(blocksOf(t, calls[0]))
	if len(btns) != 2 {
		t.Fatalf("buttons = %d, want 2:\n%s", len(btns), raw)
	}
	if btns[0].ActionID != slackbuttons.ActionApprove || btns[0].Text.Text != "Approve" || btns[1].ActionID != slackbuttons.ActionAbort || btns[1].Text.Text != "Abort" {
		t.Errorf("buttons = %+v %+v", btns[0], btns[1])
	}
	for _, b := range btns {
		v, err := slackbuttons.Parse(b.Value)
		if err != nil || v != (slackbuttons.Value{App: "shop", Version: "1.5.0"}) {
			t.Errorf("button %s value %q: %+v %v", b.ActionID, b.Value, v, err)
		}
	}
	if btns[1].Confirm == nil {
		t.Error("Abort asks for no confirmation")
	}

	// The outcome edits the same message: the outcome in, the buttons out.
	if err := n.Notify(ctx, providers.Event{App: "shop", Version: "1.5.0", Kind: KindPromoted, Time: at.Add(time.Minute),
		Message: "release of shop 1.4.2 -> 1.5.0 ended: promoted"}); err != nil {
		t.Fatal(err)
	}
	calls = f.take()
	if len(calls) != 1 || calls[0].method != "chat.update" {
		t.Fatalf("calls = %+v", calls)
	}
	if calls[0].form.Get("channel") != "C0RELEASES" || calls[0].form.Get("ts") != "1700000000.000001" {
		t.Errorf("updated %s %s", calls[0].form.Get("channel"), calls[0].form.Get("ts"))
	}
	upd := blocksOf(t, calls[0])
	if len(buttons(upd)) != 0 {
		t.Errorf("the updated message still has buttons:\n%s", calls[0].form.Get("blocks"))
	}
	raw = calls[0].form.Get("blocks")
	for _, want := range []string{"*promoted* at 2026-11-23T15:56:13Z", "ended: promoted", "p_value=0.6847"} {
		if !strings.Contains(raw, want) {
			t.Errorf("the updated message lacks %q:\n%s", want, raw)
		}
	}

	// Once ended, the release is forgotten: a second outcome is a new message.
	if err := n.Notify(ctx, providers.Event{App: "shop", Version: "1.5.0", Kind: KindFailed, Time: at, Message: "ended: failed"}); err != nil {
		t.Fatal(err)
	}
	if calls = f.take(); len(calls) != 1 || calls[0].method != "chat.postMessage" {
		t.Fatalf("calls = %+v", calls)
	}
}

func TestOutcomeOfUnknownMessageIsPosted(t *testing.T) {
	f := newFakeSlack(t)
	n := newNotifier(t, f, nil) // a worker that restarted knows no message
	if err := n.Notify(context.Background(), providers.Event{App: "shop", Version: "1.5.0", Kind: KindRolledBack, Time: at,
		Message: "release of shop 1.5.0 ended: rolled_back (analysis failed)"}); err != nil {
		t.Fatal(err)
	}
	calls := f.take()
	if len(calls) != 1 || calls[0].method != "chat.postMessage" || !strings.Contains(calls[0].form.Get("blocks"), "rolled_back (analysis failed)") {
		t.Fatalf("calls = %+v", calls)
	}
}

func TestOutcomeWhenMessageIsGoneIsPosted(t *testing.T) {
	f := newFakeSlack(t)
	n := newNotifier(t, f, nil)
	ctx := context.Background()
	if err := n.Notify(ctx, approvalNeeded()); err != nil {
		t.Fatal(err)
	}
	f.take()
	f.fail["chat.update"] = "message_not_found"
	if err := n.Notify(ctx, providers.Event{App: "shop", Version: "1.5.0", Kind: KindAborted, Time: at, Message: "ended: aborted"}); err != nil {
		t.Fatal(err)
	}
	calls := f.take()
	if len(calls) != 2 || calls[0].method != "chat.update" || calls[1].method != "chat.postMessage" {
		t.Fatalf("calls = %+v", calls)
	}
}

func TestNoVerdictYet(t *testing.T) {
	f := newFakeSlack(t)
	n := newNotifier(t, f, nil)
	e := approvalNeeded()
	e.Kind, e.Verdict = KindDecisionNeeded, nil
	if err := n.Notify(context.Background(), e); err != nil {
		t.Fatal(err)
	}
	calls := f.take()
	if len(calls) != 1 || !strings.Contains(calls[0].form.Get("blocks"), "no verdict yet") || !strings.Contains(calls[0].form.Get("blocks"), "needs a decision") {
		t.Fatalf("calls = %+v", calls)
	}
	if len(buttons(blocksOf(t, calls[0]))) != 2 {
		t.Error("a decision-needed message has no buttons")
	}
}

func TestNewerRequestClosesTheOlder(t *testing.T) {
	f := newFakeSlack(t)
	n := newNotifier(t, f, nil)
	ctx := context.Background()
	e := approvalNeeded()
	e.Kind = KindDecisionNeeded
	if err := n.Notify(ctx, e); err != nil {
		t.Fatal(err)
	}
	if err := n.Notify(ctx, approvalNeeded()); err != nil {
		t.Fatal(err)
	}
	calls := f.take()
	if len(calls) != 3 || calls[1].method != "chat.postMessage" || calls[2].method != "chat.update" || calls[2].form.Get("ts") != "1700000000.000001" {
		t.Fatalf("calls = %+v", calls)
	}
	if len(buttons(blocksOf(t, calls[2]))) != 0 || !strings.Contains(calls[2].form.Get("blocks"), "request is closed") {
		t.Errorf("the older request keeps its buttons: %s", calls[2].form.Get("blocks"))
	}
	// The outcome edits the newer one only.
	if err := n.Notify(ctx, providers.Event{App: "shop", Version: "1.5.0", Kind: KindPromoted, Time: at, Message: "promoted"}); err != nil {
		t.Fatal(err)
	}
	calls = f.take()
	if len(calls) != 1 || calls[0].method != "chat.update" || calls[0].form.Get("ts") != "1700000000.000002" {
		t.Fatalf("calls = %+v", calls)
	}
}

func TestEvents(t *testing.T) {
	f := newFakeSlack(t)
	ctx := context.Background()
	n := newNotifier(t, f, nil)
	for _, kind := range []string{KindStarted, KindVerdict} {
		if err := n.Notify(ctx, providers.Event{App: "shop", Version: "1.5.0", Kind: kind, Message: "x"}); err != nil {
			t.Fatal(err)
		}
	}
	if calls := f.take(); len(calls) != 0 {
		t.Fatalf("default events posted %+v", calls)
	}
	if err := n.Notify(ctx, providers.Event{App: "shop", Version: "1.5.0", Kind: KindRollback, Message: "shop is rolling back: <!channel> guard failed & more"}); err != nil {
		t.Fatal(err)
	}
	calls := f.take()
	if len(calls) != 1 || calls[0].form.Get("text") != ":leftwards_arrow_with_hook: shop is rolling back: &lt;!channel&gt; guard failed &amp; more" {
		t.Fatalf("calls = %+v", calls)
	}

	n = newNotifier(t, f, map[string]any{"events": []any{"started"}})
	if err := n.Notify(ctx, approvalNeeded()); err != nil {
		t.Fatal(err)
	}
	if err := n.Notify(ctx, providers.Event{App: "shop", Version: "1.5.0", Kind: KindPromoted, Message: "promoted"}); err != nil {
		t.Fatal(err)
	}
	if err := n.Notify(ctx, providers.Event{App: "shop", Version: "1.5.0", Kind: KindStarted, Message: "started"}); err != nil {
		t.Fatal(err)
	}
	if calls := f.take(); len(calls) != 1 || calls[0].form.Get("text") != ":rocket: started" {
		t.Fatalf("events [started] posted %+v", calls)
	}
}

func TestSlackErrors(t *testing.T) {
	for _, c := range []struct {
		slackErr string
		kind     error // nil: retryable
	}{
		{"invalid_auth", providers.ErrBadConfig},
		{"channel_not_found", providers.ErrBadConfig},
		{"not_in_channel", providers.ErrBadConfig},
		{"missing_scope", providers.ErrBadConfig},
		{"token_revoked", providers.ErrBadConfig},
		{"invalid_blocks", providers.ErrInvalid},
		{"internal_error", nil},
		{"fatal_error", nil},
		{"service_unavailable", nil},
	} {
		t.Run(c.slackErr, func(t *testing.T) {
			f := newFakeSlack(t)
			f.fail["chat.postMessage"] = c.slackErr
			err := newNotifier(t, f, nil).Notify(context.Background(), approvalNeeded())
			if err == nil || !strings.Contains(err.Error(), c.slackErr) {
				t.Fatalf("Notify = %v", err)
			}
			permanent := errors.Is(err, providers.ErrBadConfig) || errors.Is(err, providers.ErrInvalid)
			if c.kind == nil && permanent || c.kind != nil && !errors.Is(err, c.kind) {
				t.Errorf("Notify = %v, want kind %v", err, c.kind)
			}
		})
	}
	t.Run("wrong token", func(t *testing.T) {
		f := newFakeSlack(t)
		n := newNotifier(t, f, nil)
		t.Setenv("TEST_SLACK_TOKEN", "xoxb-wrong")
		if err := n.Notify(context.Background(), approvalNeeded()); !errors.Is(err, providers.ErrBadConfig) || strings.Contains(err.Error(), "xoxb") {
			t.Errorf("Notify = %v", err)
		}
	})
	t.Run("rate limited", func(t *testing.T) {
		srv := slacktest.NewTestServer(func(c slacktest.Customize) {
			c.Handle("/chat.postMessage", func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Retry-After", "1")
				w.WriteHeader(http.StatusTooManyRequests)
			})
		})
		srv.Start()
		defer srv.Stop()
		t.Setenv("TEST_SLACK_TOKEN", token)
		n, err := New(map[string]any{"token": map[string]any{"env": "TEST_SLACK_TOKEN"}, "channel": "C1", "apiURL": srv.GetAPIURL()})
		if err != nil {
			t.Fatal(err)
		}
		err = n.Notify(context.Background(), approvalNeeded())
		if err == nil || errors.Is(err, providers.ErrBadConfig) || errors.Is(err, providers.ErrInvalid) {
			t.Errorf("Notify = %v, want retryable", err)
		}
	})
}

func TestSettings(t *testing.T) {
	tok := map[string]any{"env": "X"}
	for _, c := range []struct {
		name string
		s    map[string]any
		want string
	}{
		{"no channel", map[string]any{"token": tok}, "channel is required"},
		{"no token", map[string]any{"channel": "C1"}, "token"},
		{"bad apiURL", map[string]any{"token": tok, "channel": "C1", "apiURL": "slack.com"}, "apiURL"},
		{"unknown event", map[string]any{"token": tok, "channel": "C1", "events": []any{"promotd"}}, `unknown event "promotd"`},
		{"unknown setting", map[string]any{"token": tok, "channel": "C1", "webhook": "x"}, "unknown setting"},
	} {
		t.Run(c.name, func(t *testing.T) {
			if _, err := New(c.s); !errors.Is(err, providers.ErrBadConfig) || !strings.Contains(err.Error(), c.want) {
				t.Errorf("New = %v, want %q", err, c.want)
			}
		})
	}
}

func TestVerdictText(t *testing.T) {
	got := VerdictText(approvalNeeded().Verdict)
	want := "*Verdict: Pass* — all 2 metrics passed\n" +
		"• *error rate*: Pass (critical) — `green_error_rate=0.001235 blue_error_rate=0.001 p_value=0.6847`\n" +
		"    _no significant difference_\n" +
		"• *latency*: Pass — `green_median_ms=6.039 slowdown=3.709e-05`"
	if got != want {
		t.Errorf("VerdictText =\n%s\nwant\n%s", got, want)
	}
	if VerdictText(nil) != "*Verdict:* no verdict yet" {
		t.Error(VerdictText(nil))
	}
}
