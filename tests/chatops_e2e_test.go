package tests

import (
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/cutoverhq/cutover/api"
	"github.com/cutoverhq/cutover/chatops"
	"github.com/cutoverhq/cutover/tests/harness"
	"github.com/cutoverhq/cutover/workflows"
)

// TestSlackThroughServe sends Slack's signed requests to `cutover serve` and
// checks what reaches the real workflow: a signed approval from an allowed
// user goes through with who and from where; unsigned, badly signed, stale,
// replayed and not-allowed requests change nothing.
func TestSlackThroughServe(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end")
	}
	const secret = "e2e-signing-secret"
	c := startCluster(t)

	dir := t.TempDir()
	tokens := filepath.Join(dir, "tokens.yaml")
	if err := os.WriteFile(tokens, fmt.Appendf(nil, "tokens:\n  - {name: ci, sha256: %s, scopes: [release:read]}\n", api.HashToken(randomToken(t))), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := filepath.Join(dir, "chatops.yaml")
	if err := os.WriteFile(cfg, []byte("signingSecret: {env: E2E_SLACK_SECRET}\napps:\n  chat-shop: {approvers: [U111]}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	addr := c.startServe([]string{"E2E_SLACK_SECRET=" + secret}, "--tokens-file", tokens, "--chatops-config", cfg)

	rel := harness.Start(t, "release", c.env, c.cli, "release", "-f", c.spec("chat-shop", "1.5.0"), "--wait", "--by", "ci")
	c.waitStatus("chat-shop", time.Minute, func(st workflows.Status) bool { return st.Waiting == "approval" })

	command := func(user, text string) []byte {
		return []byte(url.Values{
			"command": {"/cutover"}, "text": {text}, "user_id": {user}, "user_name": {"alice"},
			"channel_id": {"C1"}, "team_id": {"T1"}, "trigger_id": {"trig-" + user + "-" + text},
			"response_url": {"https://hooks.slack.com/commands/T1/1/x"},
		}.Encode())
	}
	post := func(body []byte, ts, sig string) (int, string) {
		req, _ := http.NewRequest(http.MethodPost, "http://"+addr+"/slack/commands", strings.NewReader(string(body)))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		if ts != "" {
			req.Header.Set("X-Slack-Request-Timestamp", ts)
		}
		if sig != "" {
			req.Header.Set("X-Slack-Signature", sig)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	now := strconv.FormatInt(time.Now().Unix(), 10)
	stale := strconv.FormatInt(time.Now().Add(-6*time.Minute).Unix(), 10)
	approve := command("U111", "approve chat-shop looks good")

	attacks := []struct {
		name     string
		body     []byte
		ts, sig  string
		wantCode int
	}{
		{"unsigned", approve, "", "", 401},
		{"signed with another secret", approve, now, chatops.Sign("guess", now, approve), 401},
		{"body changed after signing", command("U999", "approve chat-shop"), now, chatops.Sign(secret, now, approve), 401},
		{"stale timestamp", approve, stale, chatops.Sign(secret, stale, approve), 401},
		{"user not on the allow-list", command("U999", "approve chat-shop"), now, chatops.Sign(secret, now, command("U999", "approve chat-shop")), 200},
	}
	for _, a := range attacks {
		code, body := post(a.body, a.ts, a.sig)
		t.Logf("attack %q: %d %s", a.name, code, strings.TrimSpace(body))
		if code != a.wantCode {
			t.Errorf("%s: %d %s, want %d", a.name, code, body, a.wantCode)
		}
	}
	if st := c.waitStatus("chat-shop", 10*time.Second, func(workflows.Status) bool { return true }); len(st.Decisions) != 0 || st.Waiting != "approval" {
		t.Fatalf("after the attacks: decisions %+v, waiting %q; want none, still waiting", st.Decisions, st.Waiting)
	}

	// The real thing, then its replay.
	sig := chatops.Sign(secret, now, approve)
	code, body := post(approve, now, sig)
	if code != 200 || !strings.Contains(body, "approved") {
		t.Fatalf("signed approve: %d %s", code, body)
	}
	if code, body := post(approve, now, sig); code != 401 {
		t.Errorf("replayed approve: %d %s, want 401", code, body)
	}
	if code := rel.Wait(t, time.Minute); code != 0 {
		t.Fatalf("release exited %d, want 0 (promoted)\n%s", code, rel.Output())
	}
	st := c.waitStatus("chat-shop", 10*time.Second, func(workflows.Status) bool { return true })
	if len(st.Decisions) != 1 || st.Decisions[0].Via != "slack" || !strings.Contains(st.Decisions[0].By, "U111") || st.Decisions[0].Reason != "looks good" {
		t.Errorf("decisions %+v, want one approval by U111 via slack with its reason", st.Decisions)
	}
}
