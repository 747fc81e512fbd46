package chatops

import (
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cutoverhq/cutover/slackbuttons"
	"github.com/cutoverhq/cutover/workflows"
)

// FuzzVerifySignature: the signature check never panics, never accepts a
// request whose signature is not the HMAC of its timestamp and body with
// the secret, and accepts every one that is, within the window.
func FuzzVerifySignature(f *testing.F) {
	now := time.Unix(1531420618, 0).Add(time.Minute)
	f.Add(secret, slackDocTS, int64(0), slackDocSig, []byte(slackDocBody), uint8(0))
	f.Add(secret, slackDocTS, int64(0), slackDocSig, []byte(slackDocBody+"x"), uint8(0))
	f.Add(secret, "", int64(-301), "", []byte(slackDocBody), uint8(3))
	f.Add(secret, "", int64(299), "", []byte(""), uint8(3))
	f.Add("another-secret", "0"+slackDocTS, int64(0), "v1="+slackDocSig[3:], []byte(slackDocBody), uint8(2))
	f.Add(secret, slackDocTS+".5", int64(0), "v0="+strings.ToUpper(slackDocSig[3:]), []byte(slackDocBody), uint8(0))
	f.Add("", slackDocTS, int64(0), slackDocSig, []byte(slackDocBody), uint8(2))
	f.Fuzz(func(t *testing.T, key, ts string, skew int64, sig string, body []byte, mode uint8) {
		if mode&1 != 0 { // a well-formed timestamp skew seconds from now
			ts = strconv.FormatInt(now.Unix()+skew, 10)
		}
		if mode&2 != 0 { // signed with the secret
			sig = Sign(key, ts, body)
		}
		h := http.Header{}
		h.Set(HeaderTimestamp, ts)
		h.Set(HeaderSignature, sig)
		err := VerifySignature(key, h, body, now, DefaultWindow)
		want := Sign(key, ts, body)
		sec, perr := strconv.ParseInt(ts, 10, 64)
		fresh := perr == nil && strconv.FormatInt(sec, 10) == ts && sec > 0 && now.Sub(time.Unix(sec, 0)).Abs() <= DefaultWindow
		if err == nil && (key == "" || !strings.HasPrefix(sig, "v0=") || !strings.EqualFold(sig, want) || !fresh) {
			t.Fatalf("accepted timestamp %q, signature %q of %q with secret %q; the signature is %s", ts, sig, body, key, want)
		}
		if err != nil && key != "" && sig == want && fresh {
			t.Fatalf("refused a good request (timestamp %q, body %q): %v", ts, body, err)
		}
		if err != nil {
			return
		}
		// What was accepted is refused with one more byte, or another secret.
		if VerifySignature(key, h, append(body[:len(body):len(body)], 'x'), now, DefaultWindow) == nil {
			t.Fatalf("accepted %q and %q under one signature", body, append(body, 'x'))
		}
		if VerifySignature(key+"x", h, body, now, DefaultWindow) == nil {
			t.Fatalf("accepted %q under secrets %q and %q", body, key, key+"x")
		}
	})
}

// fuzzSlack is the handler the decoding fuzz targets drive with signed
// requests: a clock that moves a second a request (each is new to the replay
// cache), no bot token, and no response_url allowed (nothing leaves the
// process).
type fuzzSlack struct {
	h   http.Handler
	rel *fakeReleases
	sec atomic.Int64
}

func newFuzzSlack(f *testing.F) *fuzzSlack {
	fs := &fuzzSlack{rel: &fakeReleases{status: waitingShop()}}
	fs.sec.Store(1700000000)
	cfg := Config{
		SigningSecret: secret,
		Apps: map[string]AppConfig{
			"shop": {Channel: "C123", Approvers: []string{"U111", "U222"}},
			AnyApp: {Approvers: []string{"U999"}},
		},
		Now:              func() time.Time { return time.Unix(fs.sec.Load(), 0) },
		AllowResponseURL: func(*url.URL) bool { return false },
	}
	h, err := New(cfg, fs.rel, nil, nil)
	if err != nil {
		f.Fatal(err)
	}
	fs.h = h
	return fs
}

// send signs body, posts it to path, waits for the work behind it, and
// checks what reached the release: every reason within the limits.
func (fs *fuzzSlack) send(t *testing.T, path, body string) {
	t.Helper()
	ts := strconv.FormatInt(fs.sec.Add(1), 10)
	req := httptest.NewRequest(http.MethodPost, path, strings.NewReader(body))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set(HeaderTimestamp, ts)
	req.Header.Set(HeaderSignature, Sign(secret, ts, []byte(body)))
	_, before := fs.rel.calls()
	rec := httptest.NewRecorder()
	fs.h.ServeHTTP(rec, req)
	Wait(fs.h)
	if rec.Code != http.StatusOK && rec.Code != http.StatusBadRequest && rec.Code != http.StatusRequestEntityTooLarge {
		t.Fatalf("%s %q: status %d: %s", path, body, rec.Code, rec.Body)
	}
	_, after := fs.rel.calls()
	for _, d := range after[len(before):] {
		if why := checkReason(d.D.Reason); why != "" {
			t.Fatalf("%s %q reached the release with a reason that %s: %q", path, body, why, d.D.Reason)
		}
		if len(d.D.By) > 120 || checkReason(d.D.By) != "" || d.D.Via != Via {
			t.Fatalf("%s %q reached the release as %+v", path, body, d.D)
		}
		if d.Action == workflows.UpdateAbort && strings.TrimSpace(d.D.Reason) == "" {
			t.Fatalf("%s %q aborted without a reason", path, body)
		}
	}
}

// FuzzSlashCommand: a signed slash command never panics, is answered 200 or
// 400, and any decision it sends has a reason within the limits.
func FuzzSlashCommand(f *testing.F) {
	for _, text := range []string{
		"approve shop looks good", "abort shop wrong build", "pause shop", "resume shop", "status shop", "help", "",
		"abort shop " + strings.Repeat("r", MaxReasonLength), "abort shop " + strings.Repeat("r", MaxReasonLength+1),
		"abort shop broken\x07", "abort shop broken\r\nforged", "abort shop \xff\xfe", "abort shop multi\nline\treason",
		"approve shop <!channel> look <https://evil.example|here> & now", "APPROVE shop", "approve Shop", "approve search",
	} {
		f.Add(command("U111", "alice", "C123", text, "trig-1"))
	}
	f.Add(command("U999", "ivy", "C777", "abort search bad", "t"))
	f.Add(command("U"+strings.Repeat("1", 40), "x", "C123", "abort shop r", "t"))
	f.Add(slackDocBody)
	f.Add("text=abort+shop+r&user_id=U111&channel_id=C123&text=pause+shop")
	f.Add("%zz")
	fs := newFuzzSlack(f)
	f.Fuzz(func(t *testing.T, body string) {
		fs.send(t, "/slack/commands", body)
	})
}

// FuzzInteractionPayload: a signed interactive payload never panics, is
// answered 200 or 400, and any decision it sends has a reason within the
// limits.
func FuzzInteractionPayload(f *testing.F) {
	now := time.Unix(1700000000, 0)
	last := waitingShop().LastVerdict
	for _, c := range []struct{ user, channel, action, version string }{
		{"U111", "C123", slackbuttons.ActionApprove, "1.5.0"},
		{"U222", "C123", slackbuttons.ActionAbort, "1.5.0"},
		{"U666", "C123", slackbuttons.ActionAbort, "1.5.0"},
		{"U111", "C999", slackbuttons.ActionApprove, "1.5.0"},
		{"U111", "C123", slackbuttons.ActionApprove, "1.4.0"},
		{"U" + strings.Repeat("2", 40), "C123", slackbuttons.ActionAbort, "1.5.0"},
	} {
		form, _ := url.ParseQuery(pressPayloadAt(now, last, "https://hooks.slack.com/actions/T1/1/x", c.user, "bob", c.channel, c.action, c.version, "trig"))
		f.Add(form.Get("payload"))
	}
	for _, p := range []string{
		`{"type":"view_submission","user":{"id":"U111"}}`,
		`{"type":"block_actions","user":{"id":"U111"},"actions":[{"action_id":"something_else","type":"button","value":"x"}]}`,
		`{"type":"block_actions","user":{"id":"U111"},"actions":[{"action_id":"cutover_approve","type":"button","value":"not json"}]}`,
		`{"type":"block_actions","user":{"id":"U222","name":"b\u0007ob"},"channel":{"id":"C123"},"actions":[{"action_id":"cutover_abort","value":"{\"app\":\"shop\",\"version\":\"1.5.0\"}"}]}`,
		`{`, `null`, `[]`,
	} {
		f.Add(p)
	}
	fs := newFuzzSlack(f)
	f.Fuzz(func(t *testing.T, payload string) {
		fs.send(t, "/slack/actions", url.Values{"payload": {payload}}.Encode())
	})
}
