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
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/slack-go/slack"
	"github.com/slack-go/slack/slacktest"

	"github.com/cutoverhq/cutover/identity"
	"github.com/cutoverhq/cutover/providers"
	slackprov "github.com/cutoverhq/cutover/providers/slack"
	"github.com/cutoverhq/cutover/releases"
	"github.com/cutoverhq/cutover/slackbuttons"
	"github.com/cutoverhq/cutover/verdict"
	"github.com/cutoverhq/cutover/workflows"
)

const (
	secret   = "8f742231b10e8888abcd99yyyzzz85a5" // Slack's documentation's example
	botToken = "xoxb-test-token"
)

// --- fakes -----------------------------------------------------------------

type decideCall struct {
	App, Action, UpdateID string
	D                     workflows.Decision
}

// fakeReleases answers like the release workflow does.
type fakeReleases struct {
	mu       sync.Mutex
	status   workflows.Status
	statusFn func() (workflows.Status, error)
	decideFn func(decideCall) (string, error)
	statuses int
	decides  []decideCall
}

func (f *fakeReleases) Status(ctx context.Context, app string) (workflows.Status, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.statuses++
	if f.statusFn != nil {
		return f.statusFn()
	}
	if app != f.status.App {
		return workflows.Status{}, fmt.Errorf("%w for app %q", releases.ErrNotFound, app)
	}
	return f.status, nil
}

func (f *fakeReleases) Decide(ctx context.Context, app, action string, d workflows.Decision, updateID string) (string, error) {
	f.mu.Lock()
	c := decideCall{app, action, updateID, d}
	f.decides = append(f.decides, c)
	fn := f.decideFn
	f.mu.Unlock()
	if fn != nil {
		return fn(c)
	}
	switch action {
	case workflows.UpdateApprove:
		return fmt.Sprintf("approved by %s; the release goes on", d.By), nil
	case workflows.UpdateAbort:
		return fmt.Sprintf("aborted by %s (%s): all traffic is back on blue", d.By, d.Reason), nil
	}
	return action + "d by " + d.By, nil
}

func (f *fakeReleases) calls() (statuses int, decides []decideCall) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.statuses, append([]decideCall(nil), f.decides...)
}

// fakeSlack is slacktest's Web API server with usergroups.users.list and
// chat.update, and a response_url receiver.
type fakeSlack struct {
	srv *slacktest.Server

	mu         sync.Mutex
	groups     map[string][]string
	groupErr   string
	groupCalls int
	updates    []url.Values
	responses  []map[string]any
	got        chan struct{}
}

func newFakeSlack(t *testing.T) *fakeSlack {
	f := &fakeSlack{groups: map[string][]string{}, got: make(chan struct{}, 100)}
	f.srv = slacktest.NewTestServer(func(c slacktest.Customize) {
		c.Handle("/usergroups.users.list", func(w http.ResponseWriter, r *http.Request) {
			_ = r.ParseForm()
			f.mu.Lock()
			defer f.mu.Unlock()
			f.groupCalls++
			switch {
			case r.Form.Get("token") != botToken:
				_, _ = w.Write([]byte(`{"ok":false,"error":"invalid_auth"}`))
			case f.groupErr != "":
				fmt.Fprintf(w, `{"ok":false,"error":%q}`, f.groupErr)
			default:
				_ = json.NewEncoder(w).Encode(map[string]any{"ok": true, "users": f.groups[r.Form.Get("usergroup")]})
			}
		})
		c.Handle("/chat.update", func(w http.ResponseWriter, r *http.Request) {
			_ = r.ParseForm()
			f.mu.Lock()
			f.updates = append(f.updates, r.Form)
			f.mu.Unlock()
			_ = json.NewEncoder(w).Encode(map[string]any{"ok": true, "channel": r.Form.Get("channel"), "ts": r.Form.Get("ts")})
			f.got <- struct{}{}
		})
		// response_urls: Slack's hooks, here on the same fake.
		c.Handle("/actions/", func(w http.ResponseWriter, r *http.Request) {
			var m map[string]any
			_ = json.NewDecoder(r.Body).Decode(&m)
			f.mu.Lock()
			f.responses = append(f.responses, m)
			f.mu.Unlock()
			f.got <- struct{}{}
		})
	})
	f.srv.Start()
	t.Cleanup(f.srv.Stop)
	return f
}

func (f *fakeSlack) responseURL() string { return f.srv.GetAPIURL() + "actions/T1/123/abc" }

func (f *fakeSlack) takeResponses() []map[string]any {
	f.mu.Lock()
	defer f.mu.Unlock()
	r := f.responses
	f.responses = nil
	return r
}

// --- the server under test ------------------------------------------------

type env struct {
	t     *testing.T
	rel   *fakeReleases
	slack *fakeSlack
	h     http.Handler
	srv   *httptest.Server
	logs  *bytes.Buffer
	now   time.Time
	n     int // requests sent, for distinct trigger IDs
}

func defaultApps() map[string]AppConfig {
	return map[string]AppConfig{
		"shop":    {Channel: "C123", Approvers: []string{"U111", "U222"}, Groups: []string{"S333"}},
		AnyApp:    {Approvers: []string{"U999"}},
		"billing": {Approvers: []string{"U444"}},
	}
}

// waitingShop is shop's release, waiting for approval at 50% green.
func waitingShop() workflows.Status {
	return workflows.Status{
		App: "shop", Version: "1.5.0", PreviousVersion: "1.4.2", StartedBy: "ci (GitHub Actions run 7)",
		Stage: "approval", Step: 8, Steps: make([]workflows.StepRecord, 11), Weights: workflows.Weights{Blue: 50, Green: 50},
		Waiting: "approval", Outcome: workflows.OutcomeRunning,
		LastVerdict: &verdict.Verdict{Result: verdict.Pass, Summary: "all 1 metrics passed", Metrics: []verdict.Metric{
			{Name: "error rate", Result: verdict.Pass, Values: []verdict.Value{{Name: "green_error_rate", Value: 0.0012}, {Name: "p_value", Value: 0.6847}}}}},
	}
}

func newEnv(t *testing.T, change ...func(*Config)) *env {
	e := &env{t: t, slack: newFakeSlack(t), logs: &bytes.Buffer{}, now: time.Unix(1700000000, 0)}
	e.rel = &fakeReleases{status: waitingShop()}
	cfg := Config{
		SigningSecret:    secret,
		BotToken:         botToken,
		Apps:             defaultApps(),
		Now:              func() time.Time { return e.now },
		AllowResponseURL: func(u *url.URL) bool { return u.Hostname() == "127.0.0.1" },
	}
	for _, c := range change {
		c(&cfg)
	}
	api := slack.New(botToken, slack.OptionAPIURL(e.slack.srv.GetAPIURL()))
	log := slog.New(slog.NewJSONHandler(e.logs, nil))
	h, err := New(cfg, e.rel, api, log)
	if err != nil {
		t.Fatal(err)
	}
	e.h = h
	mux := http.NewServeMux()
	mux.Handle("/slack/", h)
	e.srv = httptest.NewServer(mux)
	t.Cleanup(e.srv.Close)
	t.Cleanup(func() { Wait(h) })
	return e
}

// signed is a request as Slack sends it.
type signed struct {
	path    string
	body    string
	ts      string
	sig     string
	noSig   bool
	headers map[string]string
}

func (e *env) sign(path, body string) signed {
	ts := strconv.FormatInt(e.now.Unix(), 10)
	return signed{path: path, body: body, ts: ts, sig: Sign(secret, ts, []byte(body))}
}

func (e *env) send(r signed) (int, string) {
	e.t.Helper()
	req, err := http.NewRequest(http.MethodPost, e.srv.URL+r.path, strings.NewReader(r.body))
	if err != nil {
		e.t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if !r.noSig {
		req.Header.Set(HeaderTimestamp, r.ts)
		req.Header.Set(HeaderSignature, r.sig)
	}
	for k, v := range r.headers {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// command is a slash command's form, as Slack sends it.
func command(user, name, channel, text, trigger string) string {
	return url.Values{
		"token": {"gIkuvaNzQIHg97ATvDxqgjtO"}, "team_id": {"T1"}, "team_domain": {"acme"},
		"channel_id": {channel}, "channel_name": {"releases"}, "user_id": {user}, "user_name": {name},
		"command": {"/cutover"}, "text": {text}, "api_app_id": {"A1"},
		"response_url": {"http://127.0.0.1:1/commands/T1/1/x"}, "trigger_id": {trigger},
	}.Encode()
}

type answer struct {
	Text         string `json:"text"`
	ResponseType string `json:"response_type"`
}

func (e *env) command(user, name, channel, text string) answer {
	e.t.Helper()
	e.n++
	code, body := e.send(e.sign("/slack/commands", command(user, name, channel, text, "trig-"+strconv.Itoa(e.n))))
	if code != http.StatusOK {
		e.t.Fatalf("%s: %d %s", text, code, body)
	}
	var a answer
	if err := json.Unmarshal([]byte(body), &a); err != nil {
		e.t.Fatalf("%s: %v: %s", text, err, body)
	}
	return a
}

// --- verification ------------------------------------------------------------

// slackDocBody is the example request of Slack's "Verifying requests from
// Slack", signed at 1531420618 with the secret above.
const (
	slackDocBody = "token=xyzz0WbapA4vBCDEFasx0q6G&team_id=T1DC2JH3J&team_domain=testteamnow&channel_id=G8PSS9T3V&channel_name=foobar&user_id=U2CERLKJA&user_name=roadrunner&command=%2Fwebhook-collect&text=&response_url=https%3A%2F%2Fhooks.slack.com%2Fcommands%2FT1DC2JH3J%2F397700885554%2F96rGlfmibIGlgcZRskXaIFfN&trigger_id=398738663015.47445629121.803a0bc887a14d10d2c447fce8b6703c"
	slackDocTS   = "1531420618"
	slackDocSig  = "v0=a2114d57b48eac39b9ad189dd8316235a7b4a8d21a10bd27519666489c69b503"
)

func TestSlackDocumentationVector(t *testing.T) {
	if got := Sign(secret, slackDocTS, []byte(slackDocBody)); got != slackDocSig {
		t.Fatalf("Sign = %s, want %s", got, slackDocSig)
	}
	h := http.Header{}
	h.Set(HeaderTimestamp, slackDocTS)
	h.Set(HeaderSignature, slackDocSig)
	if err := VerifySignature(secret, h, []byte(slackDocBody), time.Unix(1531420618, 0).Add(4*time.Minute), DefaultWindow); err != nil {
		t.Fatalf("VerifySignature = %v", err)
	}
	// slack-go checks against the real clock: the example is years old.
	if _, err := slack.NewSecretsVerifier(h, secret); !errors.Is(err, slack.ErrExpiredTimestamp) {
		t.Errorf("slack-go's verifier on the old example = %v, want ErrExpiredTimestamp", err)
	}
	// And the same body signed now: slack-go's verifier agrees with Sign.
	now := strconv.FormatInt(time.Now().Unix(), 10)
	h.Set(HeaderTimestamp, now)
	h.Set(HeaderSignature, Sign(secret, now, []byte(slackDocBody)))
	sv, err := slack.NewSecretsVerifier(h, secret)
	if err != nil {
		t.Fatal(err)
	}
	_, _ = sv.Write([]byte(slackDocBody))
	if err := sv.Ensure(); err != nil {
		t.Errorf("slack-go's verifier refuses Sign's signature: %v", err)
	}
	_, _ = sv.Write([]byte("x")) // the body with one more byte
	if sv.Ensure() == nil {
		t.Error("slack-go's verifier takes a changed body")
	}

	// The handler takes the example request at its time, once.
	e := newEnv(t, func(c *Config) { c.Apps = nil })
	e.now = time.Unix(1531420618, 0).Add(30 * time.Second)
	req := signed{path: "/slack/commands", body: slackDocBody, ts: slackDocTS, sig: slackDocSig}
	code, body := e.send(req)
	if code != http.StatusOK || !strings.Contains(body, "Usage") {
		t.Fatalf("the documented request: %d %s", code, body)
	}
	if code, _ := e.send(req); code != http.StatusUnauthorized {
		t.Errorf("the documented request again: %d, want 401", code)
	}
}

func TestAttacksAreRefusedBeforeAnything(t *testing.T) {
	e := newEnv(t)
	body := command("U111", "alice", "C123", "approve shop looks good", "trig-1")
	good := func() signed { return e.sign("/slack/commands", body) }
	payload := pressPayload(e, "U111", "alice", "C123", slackbuttons.ActionApprove, "1.5.0", "trig-2")
	ts := strconv.FormatInt(e.now.Unix(), 10)
	for _, c := range []struct {
		name string
		req  signed
		want int
	}{
		{"unsigned", signed{path: "/slack/commands", body: body, noSig: true}, 401},
		{"signature without timestamp", signed{path: "/slack/commands", body: body, headers: map[string]string{HeaderSignature: good().sig}, noSig: true}, 401},
		{"timestamp without signature", signed{path: "/slack/commands", body: body, headers: map[string]string{HeaderTimestamp: ts}, noSig: true}, 401},
		{"empty signature", signed{path: "/slack/commands", body: body, ts: ts, sig: ""}, 401},
		{"signed with another secret", signed{path: "/slack/commands", body: body, ts: ts, sig: Sign("another-secret", ts, []byte(body))}, 401},
		{"body changed after signing", func() signed {
			r := good()
			r.body = strings.Replace(r.body, "U111", "U666", 1)
			return r
		}(), 401},
		{"approve turned into abort", func() signed {
			r := good()
			r.body = strings.Replace(r.body, "approve", "abort", 1)
			return r
		}(), 401},
		{"timestamp changed after signing", func() signed {
			r := good()
			r.ts = strconv.FormatInt(e.now.Unix()-1, 10)
			return r
		}(), 401},
		{"stale: 5m01s old", signed{path: "/slack/commands", body: body, ts: strconv.FormatInt(e.now.Unix()-301, 10), sig: Sign(secret, strconv.FormatInt(e.now.Unix()-301, 10), []byte(body))}, 401},
		{"from the future: 5m01s ahead", signed{path: "/slack/commands", body: body, ts: strconv.FormatInt(e.now.Unix()+301, 10), sig: Sign(secret, strconv.FormatInt(e.now.Unix()+301, 10), []byte(body))}, 401},
		{"timestamp with a leading zero", signed{path: "/slack/commands", body: body, ts: "0" + ts, sig: Sign(secret, "0"+ts, []byte(body))}, 401},
		{"timestamp with a plus", signed{path: "/slack/commands", body: body, ts: "+" + ts, sig: Sign(secret, "+"+ts, []byte(body))}, 401},
		{"timestamp with a fraction", signed{path: "/slack/commands", body: body, ts: ts + ".5", sig: Sign(secret, ts+".5", []byte(body))}, 401},
		{"v1 scheme", func() signed { r := good(); r.sig = "v1=" + r.sig[3:]; return r }(), 401},
		{"signature cut short", func() signed { r := good(); r.sig = r.sig[:40]; return r }(), 401},
		{"signature not hex", func() signed { r := good(); r.sig = "v0=" + strings.Repeat("zz", 32); return r }(), 401},
		{"button payload unsigned", signed{path: "/slack/actions", body: payload, noSig: true}, 401},
		{"button payload with a command's signature", signed{path: "/slack/actions", body: payload, ts: ts, sig: good().sig}, 401},
		{"body over 64 KiB", func() signed {
			big := body + "&pad=" + strings.Repeat("a", 70<<10)
			return e.sign("/slack/commands", big)
		}(), 413},
	} {
		t.Run(c.name, func(t *testing.T) {
			code, _ := e.send(c.req)
			if code != c.want {
				t.Errorf("status %d, want %d", code, c.want)
			}
		})
	}
	if s, d := e.rel.calls(); s != 0 || len(d) != 0 {
		t.Fatalf("the releases saw %d status calls and decisions %+v", s, d)
	}
	if n := len(e.slack.takeResponses()); n != 0 {
		t.Fatalf("%d answers went to Slack", n)
	}
	if !strings.Contains(e.logs.String(), `"msg":"chatops request refused"`) || strings.Contains(e.logs.String(), secret) {
		t.Errorf("logs:\n%s", e.logs)
	}

	// GET and unknown paths are refused too.
	resp, err := http.Get(e.srv.URL + "/slack/commands")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("GET: %d", resp.StatusCode)
	}
	if code, _ := e.send(e.sign("/slack/other", body)); code != http.StatusNotFound {
		t.Errorf("other path: %d", code)
	}
}

func TestReplayIsRefused(t *testing.T) {
	e := newEnv(t)
	req := e.sign("/slack/commands", command("U111", "alice", "C123", "approve shop", "trig-1"))
	if code, body := e.send(req); code != http.StatusOK || !strings.Contains(body, "approved by") {
		t.Fatalf("first: %d %s", code, body)
	}
	// The same request again, a minute later: within the window.
	e.now = e.now.Add(time.Minute)
	if code, _ := e.send(req); code != http.StatusUnauthorized {
		t.Errorf("replay: %d, want 401", code)
	}
	// The same signature in upper-case hex is the same request.
	up := req
	up.sig = "v0=" + strings.ToUpper(req.sig[3:])
	if code, _ := e.send(up); code != http.StatusUnauthorized {
		t.Errorf("upper-case replay: %d, want 401", code)
	}
	// Past the window, the timestamp check refuses it.
	e.now = e.now.Add(5 * time.Minute)
	if code, _ := e.send(req); code != http.StatusUnauthorized {
		t.Errorf("late replay: %d, want 401", code)
	}
	if _, d := e.rel.calls(); len(d) != 1 {
		t.Fatalf("decisions %+v, want 1", d)
	}
	// A forged request carrying a real request's signature does not keep the
	// real one out.
	real := e.sign("/slack/commands", command("U111", "alice", "C123", "pause shop", "trig-9"))
	forged := real
	forged.body = command("U666", "mallory", "C123", "pause shop", "trig-9")
	if code, _ := e.send(forged); code != http.StatusUnauthorized {
		t.Fatalf("forged: %d", code)
	}
	if code, body := e.send(real); code != http.StatusOK || !strings.Contains(body, "paused by") {
		t.Errorf("real after forged: %d %s", code, body)
	}
}

func TestReplayCacheIsBounded(t *testing.T) {
	e := newEnv(t, func(c *Config) { c.ReplayCacheSize = 3 })
	for i := range 3 {
		if code, _ := e.send(e.sign("/slack/commands", command("U111", "alice", "C123", "help", "t"+strconv.Itoa(i)))); code != 200 {
			t.Fatalf("request %d: %d", i, code)
		}
	}
	// Full of unexpired signatures: a new request is refused rather than
	// one of them forgotten.
	if code, _ := e.send(e.sign("/slack/commands", command("U111", "alice", "C123", "help", "t4"))); code != http.StatusServiceUnavailable {
		t.Errorf("full cache: %d, want 503", code)
	}
	// Once they expire, there is room again.
	e.now = e.now.Add(DefaultWindow + 2*time.Second)
	if code, _ := e.send(e.sign("/slack/commands", command("U111", "alice", "C123", "help", "t5"))); code != 200 {
		t.Errorf("after expiry: %d", code)
	}
	if n := e.h.(*handler).replay.len(); n != 1 {
		t.Errorf("cache holds %d", n)
	}
}

// --- slash commands ---------------------------------------------------------

func TestApprove(t *testing.T) {
	e := newEnv(t)
	a := e.command("U111", "alice", "C123", "approve shop the numbers look good")
	if a.ResponseType != "in_channel" || a.Text != "approved by <@U111>: approved by <@U111> (alice); the release goes on" {
		t.Errorf("answer = %+v", a)
	}
	_, d := e.rel.calls()
	want := decideCall{App: "shop", Action: "approve", UpdateID: "slack-cmd:trig-1",
		D: workflows.Decision{By: "<@U111> (alice)", Principal: identity.Principal{Door: identity.Slack, ID: "U111"}, Reason: "the numbers look good", Via: "slack"}}
	if len(d) != 1 || d[0] != want {
		t.Fatalf("decisions = %+v, want %+v", d, want)
	}
	if !strings.Contains(e.logs.String(), `"msg":"chatops decision"`) {
		t.Errorf("logs:\n%s", e.logs)
	}
}

func TestAbortNeedsReason(t *testing.T) {
	e := newEnv(t)
	a := e.command("U222", "bob", "C123", "abort shop")
	if a.ResponseType != "ephemeral" || !strings.Contains(a.Text, "Abort needs a reason") {
		t.Errorf("answer = %+v", a)
	}
	if _, d := e.rel.calls(); len(d) != 0 {
		t.Fatalf("decisions = %+v", d)
	}
	a = e.command("U222", "bob", "C123", "abort   shop  customers see 500s on checkout")
	if a.ResponseType != "in_channel" || !strings.HasPrefix(a.Text, "aborted by <@U222>: aborted by <@U222> (bob) (customers see 500s on checkout)") {
		t.Errorf("answer = %+v", a)
	}
	_, d := e.rel.calls()
	if len(d) != 1 || d[0].Action != "abort" || d[0].D.Reason != "customers see 500s on checkout" || d[0].D.Via != "slack" {
		t.Fatalf("decisions = %+v", d)
	}
}

func TestPauseResumeStatusHelp(t *testing.T) {
	e := newEnv(t)
	if a := e.command("U111", "alice", "C123", "pause shop"); a.Text != "paused by <@U111>: paused by <@U111> (alice)" {
		t.Errorf("pause: %+v", a)
	}
	if a := e.command("U111", "alice", "C123", "RESUME shop go on"); a.Text != "resumed by <@U111>: resumed by <@U111> (alice)" {
		t.Errorf("resume: %+v", a)
	}
	// Status is answered to anyone, anywhere, for a configured app.
	a := e.command("U777", "eve", "C999", "status shop")
	for _, want := range []string{"*shop* 1.4.2 → 1.5.0: stage `approval` (step 8 of 11)", "blue 50% / green 50%", "Waiting for approval",
		"green_error_rate=0.0012", "p_value=0.6847", "Started by ci (GitHub Actions run 7)"} {
		if !strings.Contains(a.Text, want) || a.ResponseType != "ephemeral" {
			t.Errorf("status lacks %q: %+v", want, a)
		}
	}
	if a := e.command("U777", "eve", "C999", "status nosuchapp"); !strings.Contains(a.Text, "nosuchapp has no release") {
		t.Errorf("status of an unknown app: %+v", a)
	}
	for _, text := range []string{"", "help", "deploy shop", "approve", "approve Shop!"} {
		if a := e.command("U111", "alice", "C123", text); a.ResponseType != "ephemeral" || !strings.Contains(a.Text, "Usage") {
			t.Errorf("%q: %+v", text, a)
		}
	}
	_, d := e.rel.calls()
	if len(d) != 2 || d[0].Action != "pause" || d[1].Action != "resume" || d[1].D.Reason != "go on" {
		t.Errorf("decisions = %+v", d)
	}
}

func TestAllowList(t *testing.T) {
	e := newEnv(t, func(c *Config) {
		c.Apps = map[string]AppConfig{
			"shop":    {Channel: "C123", Approvers: []string{"U111"}, Groups: []string{"S333"}},
			"billing": {Approvers: []string{"U444"}},
		}
	})
	e.slack.groups["S333"] = []string{"U555"}
	for _, c := range []struct{ user, channel, text, why string }{
		{"U666", "C123", "approve shop", "<@U666> is not an approver of shop"},
		{"U666", "C123", "abort shop because I can", "<@U666> is not an approver of shop"},
		{"U666", "C123", "pause shop", "<@U666> is not an approver of shop"},
		{"U111", "C999", "approve shop", "decisions on shop are taken in <#C123> only"},
		{"U111", "D111", "approve shop", "decisions on shop are taken in <#C123> only"},
		{"U111", "C123", "approve billing", "<@U111> is not an approver of billing"},
		{"U111", "C123", "approve ledger", "ledger is not set up for Slack"}, // no "*"
		{"U111", "C123", "status ledger", "ledger is not set up for Slack"},
	} {
		a := e.command(c.user, "someone", c.channel, c.text)
		if a.ResponseType != "ephemeral" || !strings.Contains(a.Text, "Refused: "+c.why) || !strings.Contains(a.Text, "Nothing was sent") {
			t.Errorf("%s in %s %q: %+v", c.user, c.channel, c.text, a)
		}
	}
	if _, d := e.rel.calls(); len(d) != 0 {
		t.Fatalf("decisions = %+v", d)
	}
	// Each refusal is logged, with who, what and why, and no secret.
	logs := e.logs.String()
	if n := strings.Count(logs, `"msg":"chatops refused"`); n != 8 {
		t.Errorf("%d refusals logged:\n%s", n, logs)
	}
	if !strings.Contains(logs, `"user_id":"U666"`) || !strings.Contains(logs, `"action":"abort"`) || strings.Contains(logs, botToken) || strings.Contains(logs, secret) {
		t.Errorf("logs:\n%s", logs)
	}
	// A member of the group may act; the group is read once while cached.
	for range 2 {
		if a := e.command("U555", "gina", "C123", "pause shop"); a.ResponseType != "in_channel" {
			t.Errorf("group member: %+v", a)
		}
	}
	if e.slack.groupCalls != 1 {
		t.Errorf("usergroups.users.list called %d times", e.slack.groupCalls)
	}
	// When the group cannot be read, no one outside the list may act.
	e.now = e.now.Add(2 * DefaultGroupCacheTTL)
	e.slack.groupErr = "missing_scope"
	if a := e.command("U555", "gina", "C123", "pause shop"); !strings.Contains(a.Text, "could not check the approver groups of shop (missing_scope)") {
		t.Errorf("group unreadable: %+v", a)
	}
	if a := e.command("U111", "alice", "C123", "pause shop"); a.ResponseType != "in_channel" {
		t.Errorf("listed approver while groups fail: %+v", a)
	}
	// "*" applies to apps without their own entry.
	e2 := newEnv(t)
	e2.rel.status.App = "search"
	if a := e2.command("U999", "ivy", "C777", "approve search"); a.ResponseType != "in_channel" {
		t.Errorf("'*' approver: %+v", a)
	}
	if a := e2.command("U111", "alice", "C777", "approve search"); !strings.Contains(a.Text, "not an approver of search") {
		t.Errorf("shop's approver on search: %+v", a)
	}
}

func TestOtherWorkspaceIsRefused(t *testing.T) {
	e := newEnv(t, func(c *Config) { c.TeamID = "T2" })
	if a := e.command("U111", "alice", "C123", "approve shop"); !strings.Contains(a.Text, "workspace") {
		t.Errorf("answer = %+v", a)
	}
	if a := e.command("U111", "alice", "C123", "status shop"); !strings.Contains(a.Text, "workspace") {
		t.Errorf("answer = %+v", a)
	}
	if s, d := e.rel.calls(); s != 0 || len(d) != 0 {
		t.Fatalf("releases saw %d, %+v", s, d)
	}
}

func TestStarterMayNotApprove(t *testing.T) {
	for _, c := range []struct {
		startedBy string
		refused   bool
	}{
		{"<@U111> (alice)", true},
		{"slack:U111 alice", true},
		{"alice via U111", true},
		{"<@U1110> (al)", false},
		{"XU111", false},
		{"alice", false}, // the workflow compares names
	} {
		e := newEnv(t)
		e.rel.status.StartedBy = c.startedBy
		a := e.command("U111", "alice", "C123", "approve shop")
		_, d := e.rel.calls()
		if got := strings.Contains(a.Text, "started this release and may not approve it"); got != c.refused || got == (len(d) == 1) {
			t.Errorf("started by %q: %+v, decisions %+v", c.startedBy, a, d)
		}
		// The starter may still abort.
		if c.refused {
			if a := e.command("U111", "alice", "C123", "abort shop wrong build"); a.ResponseType != "in_channel" {
				t.Errorf("starter's abort: %+v", a)
			}
		}
	}
}

func TestReleaseRefusalIsRelayed(t *testing.T) {
	e := newEnv(t)
	e.rel.decideFn = func(c decideCall) (string, error) {
		return "", fmt.Errorf("approve shop: %s may not approve a release they started: %w", c.D.By, releases.ErrRejected)
	}
	a := e.command("U111", "alice", "C123", "approve shop")
	if a.ResponseType != "ephemeral" || a.Text != "The release refused: approve shop: <@U111> (alice) may not approve a release they started" {
		t.Errorf("answer = %+v", a)
	}
	e.rel.decideFn = func(c decideCall) (string, error) { return "", errors.New("context deadline exceeded") }
	if a := e.command("U111", "alice", "C123", "pause shop"); !strings.Contains(a.Text, "Could not pause shop: context deadline exceeded") {
		t.Errorf("answer = %+v", a)
	}
}

func TestMentionsInReasonsAreEscaped(t *testing.T) {
	e := newEnv(t)
	e.rel.decideFn = func(c decideCall) (string, error) {
		return fmt.Sprintf("approved by %s: %s", c.D.By, c.D.Reason), nil
	}
	a := e.command("U111", "alice", "C123", "approve shop <!channel> look <https://evil.example|here> & now")
	want := "approved by <@U111>: approved by <@U111> (alice): &lt;!channel&gt; look &lt;https://evil.example|here&gt; &amp; now"
	if a.Text != want {
		t.Errorf("answer = %q\nwant     %q", a.Text, want)
	}
	// A user name cannot smuggle markup into By.
	e.command("U222", "<!here>(bob)&", "C123", "pause shop")
	_, d := e.rel.calls()
	if d[1].D.By != "<@U222> (!herebob)" {
		t.Errorf("By = %q", d[1].D.By)
	}
}

func TestLateAnswerGoesToResponseURL(t *testing.T) {
	e := newEnv(t, func(c *Config) { c.AckTimeout = 50 * time.Millisecond })
	release := make(chan struct{})
	e.rel.decideFn = func(c decideCall) (string, error) {
		<-release
		return "approved by " + c.D.By, nil
	}
	body := url.Values{"team_id": {"T1"}, "channel_id": {"C123"}, "user_id": {"U111"}, "user_name": {"alice"},
		"command": {"/cutover"}, "text": {"approve shop"}, "response_url": {e.slack.responseURL()}, "trigger_id": {"t-late"}}.Encode()
	code, out := e.send(e.sign("/slack/commands", body))
	if code != 200 || !strings.Contains(out, "Working on it") {
		t.Fatalf("%d %s", code, out)
	}
	close(release)
	select {
	case <-e.slack.got:
	case <-time.After(5 * time.Second):
		t.Fatal("no late answer")
	}
	r := e.slack.takeResponses()
	if len(r) != 1 || r[0]["response_type"] != "in_channel" || r[0]["text"] != "approved by <@U111>: approved by <@U111> (alice)" {
		t.Errorf("late answer = %+v", r)
	}
}

// --- buttons ------------------------------------------------------------------

// pressPayload is a block_actions payload for a press on the notifier's message.
func pressPayload(e *env, user, name, channel, actionID, version, trigger string) string {
	return pressPayloadAt(e.now, e.rel.status.LastVerdict, e.slack.responseURL(), user, name, channel, actionID, version, trigger)
}

// pressPayloadAt is pressPayload without an env.
func pressPayloadAt(now time.Time, last *verdict.Verdict, responseURL, user, name, channel, actionID, version, trigger string) string {
	v := slackbuttons.Value{App: "shop", Version: version}
	ev := providers.Event{App: "shop", Version: version, Kind: "approval-needed", Time: now,
		Message: "shop 1.4.2 -> " + version + " is waiting for approval (at 50% green)", Verdict: last}
	blocks := append(slackprov.RequestBlocks(ev), slackprov.Buttons(v))
	msg := map[string]any{"type": "message", "ts": "1700000000.000001", "text": "shop " + version + ": waiting", "blocks": blocks}
	p := map[string]any{
		"type":         "block_actions",
		"user":         map[string]any{"id": user, "username": name, "name": name, "team_id": "T1"},
		"api_app_id":   "A1",
		"token":        "gIkuvaNzQIHg97ATvDxqgjtO",
		"container":    map[string]any{"type": "message", "message_ts": "1700000000.000001", "channel_id": channel, "is_ephemeral": false},
		"trigger_id":   trigger,
		"team":         map[string]any{"id": "T1", "domain": "acme"},
		"channel":      map[string]any{"id": channel, "name": "releases"},
		"message":      msg,
		"response_url": responseURL,
		"actions": []any{map[string]any{
			"action_id": actionID, "block_id": slackbuttons.BlockDecide, "type": "button",
			"value": v.Encode(), "action_ts": "1700000001.000002", "text": map[string]any{"type": "plain_text", "text": "Approve"},
		}},
	}
	b, err := json.Marshal(p)
	if err != nil {
		panic(err)
	}
	return url.Values{"payload": {string(b)}}.Encode()
}

func (e *env) press(user, name, channel, actionID, version, trigger string) []map[string]any {
	e.t.Helper()
	e.n++
	code, body := e.send(e.sign("/slack/actions", pressPayload(e, user, name, channel, actionID, version, trigger+"-"+strconv.Itoa(e.n))))
	if code != http.StatusOK {
		e.t.Fatalf("press: %d %s", code, body)
	}
	Wait(e.h)
	return e.slack.takeResponses()
}

func blocksJSON(m map[string]any) string {
	b, _ := json.Marshal(m["blocks"])
	return string(b)
}

func TestApproveButton(t *testing.T) {
	e := newEnv(t)
	r := e.press("U111", "alice", "C123", slackbuttons.ActionApprove, "1.5.0", "trig-a")
	_, d := e.rel.calls()
	want := decideCall{App: "shop", Action: "approve", UpdateID: "slack-btn:C123:1700000000.000001:approve:U111",
		D: workflows.Decision{By: "<@U111> (alice)", Principal: identity.Principal{Door: identity.Slack, ID: "U111"}, Via: "slack"}}
	if len(d) != 1 || d[0] != want {
		t.Fatalf("decisions = %+v, want %+v", d, want)
	}
	// The message is replaced: the buttons out, the outcome in (who, when).
	if len(r) != 1 || r[0]["replace_original"] != true {
		t.Fatalf("responses = %+v", r)
	}
	blocks := blocksJSON(r[0])
	if strings.Contains(blocks, slackbuttons.ActionApprove) || strings.Contains(blocks, `"actions"`) {
		t.Errorf("the buttons are still there: %s", blocks)
	}
	for _, w := range []string{"*approved* by \\u003c@U111\\u003e at 2023-11-14T22:13:20Z", "p_value=0.6847", "waiting for approval"} {
		if !strings.Contains(blocks, w) {
			t.Errorf("the message lacks %q: %s", w, blocks)
		}
	}

	// Slack (or an impatient user) sends the press again: the same update ID,
	// so the release answers it once.
	e.press("U111", "alice", "C123", slackbuttons.ActionApprove, "1.5.0", "trig-b")
	_, d = e.rel.calls()
	if len(d) != 2 || d[1].UpdateID != d[0].UpdateID {
		t.Fatalf("retry: decisions = %+v", d)
	}
	// Another approver pressing the same button is their own decision.
	e.press("U222", "bob", "C123", slackbuttons.ActionApprove, "1.5.0", "trig-c")
	_, d = e.rel.calls()
	if len(d) != 3 || d[2].UpdateID == d[0].UpdateID || d[2].D.By != "<@U222> (bob)" {
		t.Fatalf("second approver: decisions = %+v", d)
	}
}

func TestAbortButton(t *testing.T) {
	e := newEnv(t)
	r := e.press("U222", "bob", "C123", slackbuttons.ActionAbort, "1.5.0", "trig-a")
	_, d := e.rel.calls()
	if len(d) != 1 || d[0].Action != "abort" || d[0].D.Reason != "aborted from Slack by <@U222> (bob)" ||
		d[0].UpdateID != "slack-btn:C123:1700000000.000001:abort:U222" {
		t.Fatalf("decisions = %+v", d)
	}
	if len(r) != 1 || r[0]["replace_original"] != true || !strings.Contains(blocksJSON(r[0]), "*aborted* by") || strings.Contains(blocksJSON(r[0]), slackbuttons.ActionAbort) {
		t.Fatalf("responses = %+v", r)
	}
}

func TestButtonRefusals(t *testing.T) {
	e := newEnv(t)
	for _, c := range []struct{ user, channel, action, version, why string }{
		{"U666", "C123", slackbuttons.ActionApprove, "1.5.0", "<@U666> is not an approver of shop"},
		{"U666", "C123", slackbuttons.ActionAbort, "1.5.0", "<@U666> is not an approver of shop"},
		{"U111", "C999", slackbuttons.ActionApprove, "1.5.0", "decisions on shop are taken in <#C123> only"},
		{"U111", "C123", slackbuttons.ActionApprove, "1.4.0", "this message is about shop 1.4.0, but the release of shop now is 1.5.0"},
	} {
		r := e.press(c.user, "x", c.channel, c.action, c.version, "trig")
		if len(r) != 1 || r[0]["replace_original"] != false || r[0]["response_type"] != "ephemeral" || !strings.Contains(r[0]["text"].(string), c.why) {
			t.Errorf("%+v: responses = %+v", c, r)
		}
	}
	e.rel.status.StartedBy = "<@U111> (alice)"
	r := e.press("U111", "alice", "C123", slackbuttons.ActionApprove, "1.5.0", "trig")
	if len(r) != 1 || !strings.Contains(r[0]["text"].(string), "started this release") {
		t.Errorf("starter: %+v", r)
	}
	e.rel.status.StartedBy = ""
	e.rel.status.Outcome = workflows.OutcomePromoted
	r = e.press("U111", "alice", "C123", slackbuttons.ActionApprove, "1.5.0", "trig")
	if len(r) != 1 || !strings.Contains(r[0]["text"].(string), "has ended (promoted)") {
		t.Errorf("ended: %+v", r)
	}
	if _, d := e.rel.calls(); len(d) != 0 {
		t.Fatalf("decisions = %+v", d)
	}
	// The release's own refusal keeps the buttons and tells the presser.
	e.rel.status.Outcome = workflows.OutcomeRunning
	e.rel.decideFn = func(decideCall) (string, error) {
		return "", fmt.Errorf("approve shop: no approval is pending: the release is at step 5 (soak): %w", releases.ErrRejected)
	}
	r = e.press("U111", "alice", "C123", slackbuttons.ActionApprove, "1.5.0", "trig")
	if len(r) != 1 || r[0]["replace_original"] != false || !strings.Contains(r[0]["text"].(string), "The release refused: approve shop: no approval is pending") {
		t.Errorf("release refused: %+v", r)
	}
}

func TestButtonWithoutResponseURLEditsWithChatUpdate(t *testing.T) {
	e := newEnv(t)
	payload := pressPayload(e, "U111", "alice", "C123", slackbuttons.ActionApprove, "1.5.0", "trig")
	form, _ := url.ParseQuery(payload)
	var p map[string]any
	_ = json.Unmarshal([]byte(form.Get("payload")), &p)
	delete(p, "response_url")
	b, _ := json.Marshal(p)
	if code, _ := e.send(e.sign("/slack/actions", url.Values{"payload": {string(b)}}.Encode())); code != 200 {
		t.Fatal(code)
	}
	Wait(e.h)
	e.slack.mu.Lock()
	defer e.slack.mu.Unlock()
	if len(e.slack.updates) != 1 {
		t.Fatalf("chat.update calls: %d", len(e.slack.updates))
	}
	u := e.slack.updates[0]
	if u.Get("channel") != "C123" || u.Get("ts") != "1700000000.000001" || strings.Contains(u.Get("blocks"), slackbuttons.ActionApprove) || !strings.Contains(u.Get("blocks"), "approved") {
		t.Errorf("chat.update = %v", u)
	}
}

func TestOtherInteractionsAreIgnored(t *testing.T) {
	e := newEnv(t)
	for _, p := range []string{
		`{"type":"view_submission","user":{"id":"U111"}}`,
		`{"type":"block_actions","user":{"id":"U111"},"actions":[{"action_id":"something_else","type":"button","value":"x"}]}`,
		`{"type":"block_actions","user":{"id":"U111"},"actions":[{"action_id":"cutover_approve","type":"button","value":"not json"}]}`,
	} {
		if code, _ := e.send(e.sign("/slack/actions", url.Values{"payload": {p}}.Encode())); code != 200 {
			t.Errorf("%s: %d", p, code)
		}
	}
	if code, _ := e.send(e.sign("/slack/actions", url.Values{"payload": {"{"}}.Encode())); code != 400 {
		t.Errorf("broken payload: %d", code)
	}
	Wait(e.h)
	if s, d := e.rel.calls(); s != 0 || len(d) != 0 {
		t.Fatalf("releases saw %d, %+v", s, d)
	}
}

// --- configuration ----------------------------------------------------------

func TestLoadConfig(t *testing.T) {
	dir := t.TempDir()
	write := func(s string) string {
		p := filepath.Join(dir, "chatops.yaml")
		if err := os.WriteFile(p, []byte(s), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	t.Setenv("SLACK_SIGNING_SECRET", "sign-me")
	t.Setenv("SLACK_BOT_TOKEN", "xoxb-1")
	cfg, err := LoadConfig(write(`
apps:
  shop: {channel: C123, approvers: [U111, U222], groups: [S333]}
  "*": {approvers: [W999]}
groupCacheTTL: 30s
teamID: T1
`))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.SigningSecret != "sign-me" || cfg.BotToken != "xoxb-1" || cfg.GroupCacheTTL != 30*time.Second || cfg.TeamID != "T1" ||
		len(cfg.Apps) != 2 || cfg.Apps["shop"].Channel != "C123" || cfg.Apps["shop"].Groups[0] != "S333" || cfg.Apps["*"].Approvers[0] != "W999" {
		t.Errorf("cfg = %+v", cfg)
	}
	secretFile := filepath.Join(dir, "signing")
	_ = os.WriteFile(secretFile, []byte("from-file\n"), 0o600)
	cfg, err = LoadConfig(write("signingSecret: {file: " + secretFile + "}\nbotToken: {env: OTHER_TOKEN}\napps: {}\n"))
	if err == nil || !strings.Contains(err.Error(), "OTHER_TOKEN") {
		t.Errorf("named token unset: %v", err)
	}
	t.Setenv("OTHER_TOKEN", "xoxb-2")
	if cfg, err = LoadConfig(write("signingSecret: {file: " + secretFile + "}\nbotToken: {env: OTHER_TOKEN}\n")); err != nil || cfg.SigningSecret != "from-file" || cfg.BotToken != "xoxb-2" {
		t.Errorf("cfg = %+v, %v", cfg, err)
	}
	for _, c := range []struct{ file, want string }{
		{"apps: {shop: {approver: [U1]}}", "field approver not found"},
		{"apps: {Shop: {approvers: [U111]}}", `"Shop" is not an app name`},
		{"apps: {shop: {approvers: [alice]}}", `"alice" is not a user ID`},
		{"apps: {shop: {groups: [U111]}}", `"U111" is not a user group ID`},
		{"apps: {shop: {channel: releases}}", `"releases" is not a channel ID`},
		{"groupCacheTTL: soon", "groupCacheTTL"},
		{"signingSecret: {env: NOPE_UNSET}", "NOPE_UNSET"},
	} {
		if _, err := LoadConfig(write(c.file)); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v, want %q", c.file, err, c.want)
		}
	}
	// Groups need the bot token.
	os.Unsetenv("SLACK_BOT_TOKEN")
	if _, err := LoadConfig(write("apps: {shop: {groups: [S333]}}")); err == nil || !strings.Contains(err.Error(), "SLACK_BOT_TOKEN") {
		t.Errorf("groups without a token: %v", err)
	}
	if cfg, err := LoadConfig(write("apps: {shop: {approvers: [U111]}}")); err != nil || cfg.BotToken != "" {
		t.Errorf("no groups, no token: %+v %v", cfg, err)
	}
	if _, err := New(Config{SigningSecret: "x", Apps: map[string]AppConfig{"shop": {Groups: []string{"S1"}}}}, &fakeReleases{}, nil, nil); err == nil {
		t.Error("New took groups without a bot token")
	}
	if _, err := New(Config{}, &fakeReleases{}, nil, nil); err == nil {
		t.Error("New took no signing secret")
	}
}

// TestReasonIsBounded: a reason past MaxReasonLength, or with control
// characters other than newline and tab, is refused to the user alone, and
// nothing reaches the release.
func TestReasonIsBounded(t *testing.T) {
	e := newEnv(t)
	for _, c := range []struct {
		name, reason string
		refused      string // "" when taken
	}{
		{"1000 characters", strings.Repeat("r", MaxReasonLength), ""},
		{"1000 characters of two bytes", strings.Repeat("é", MaxReasonLength), ""},
		{"newlines and tabs", "broken checkout\n\tsee the dashboard", ""},
		{"1001 characters", strings.Repeat("r", MaxReasonLength+1), "the reason is 1001 characters long, more than the 1000 a release keeps"},
		{"a bell", "broken\x07", "the reason contains control characters"},
		{"a carriage return", "broken\r\nINFO forged log line", "the reason contains control characters"},
		{"an escape sequence", "\x1b[2Jbroken", "the reason contains control characters"},
		{"a C1 control", "bro\u009bken", "the reason contains control characters"},
		{"bytes that are not UTF-8", "broken \xff\xfe here", "the reason contains control characters or bytes that are not UTF-8"},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, before := e.rel.calls()
			for _, action := range []string{"abort", "pause"} {
				a := e.command("U111", "alice", "C123", action+" shop "+c.reason)
				_, after := e.rel.calls()
				if c.refused == "" {
					if a.ResponseType != "in_channel" || len(after) != len(before)+1 || after[len(after)-1].D.Reason != c.reason {
						t.Errorf("%s: %+v, decisions %d -> %d", action, a, len(before), len(after))
					}
				} else if a.ResponseType != "ephemeral" || !strings.Contains(a.Text, "Refused: "+c.refused) ||
					!strings.Contains(a.Text, "Nothing was sent to the release") || len(after) != len(before) {
					t.Errorf("%s: %+v, decisions %d -> %d", action, a, len(before), len(after))
				}
				before = after
			}
		})
	}
	if !strings.Contains(e.logs.String(), `"msg":"chatops refused"`) {
		t.Errorf("the refusals are not logged:\n%s", e.logs)
	}
}

// TestLongUserIDIsNotOneOfOurs: a user ID is bounded, so Decision.By and the
// reason of a button's abort are too.
func TestLongUserIDIsNotOneOfOurs(t *testing.T) {
	e := newEnv(t, func(c *Config) {
		c.Apps = map[string]AppConfig{AnyApp: {Approvers: []string{"U" + strings.Repeat("1", 32)}}}
	})
	long := "U" + strings.Repeat("1", 2000)
	if code, _ := e.send(e.sign("/slack/commands", command(long, "x", "C123", "abort shop r", "t1"))); code != http.StatusBadRequest {
		t.Errorf("a slash command from a 2001-character user ID: %d", code)
	}
	if r := e.press(long, "x", "C123", slackbuttons.ActionAbort, "1.5.0", "t2"); len(r) != 0 {
		t.Errorf("a press from a 2001-character user ID: %+v", r)
	}
	if _, d := e.rel.calls(); len(d) != 0 {
		t.Fatalf("decisions = %+v", d)
	}
}

// TestCleanName: a user name in By is printable UTF-8 without markup, cut
// between characters. FuzzSlashCommand found a name of one byte that is not
// UTF-8 reaching By as U+FFFD.
func TestCleanName(t *testing.T) {
	for in, want := range map[string]string{
		"alice":                               "alice",
		"<!here>(bob)&":                       "!herebob",
		"\xff":                                "",
		"al\xffice\u0085\x07":                 "alice",
		strings.Repeat("a", 63) + "é":         strings.Repeat("a", 63),
		strings.Repeat("a", 62) + "é" + "zzz": strings.Repeat("a", 62) + "é",
	} {
		if got := cleanName(in); got != want || !utf8.ValidString(got) || len(got) > 64 {
			t.Errorf("cleanName(%q) = %q, want %q", in, got, want)
		}
	}
}
