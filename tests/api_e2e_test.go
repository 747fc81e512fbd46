package tests

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/cutoverhq/cutover/api"
	"github.com/cutoverhq/cutover/api/apitest"
	"github.com/cutoverhq/cutover/tests/harness"
	"github.com/cutoverhq/cutover/workflows"
)

// apiClient talks to a `cutover serve` process and checks every response
// against the OpenAPI document the server serves.
type apiClient struct {
	t    *testing.T
	base string
	http *http.Client
	v    *apitest.Validator
}

type apiResponse struct {
	status int
	header http.Header
	body   []byte
}

func (r apiResponse) problem(t *testing.T) api.Problem {
	t.Helper()
	var p api.Problem
	if ct := r.header.Get("Content-Type"); ct != "application/problem+json" {
		t.Errorf("Content-Type %q, want application/problem+json: %s", ct, r.body)
	}
	if err := json.Unmarshal(r.body, &p); err != nil {
		t.Fatalf("problem: %v: %s", err, r.body)
	}
	return p
}

// do sends a request; hdr holds name, value pairs.
func (c *apiClient) do(method, path, token string, body []byte, hdr ...string) apiResponse {
	c.t.Helper()
	req, err := http.NewRequest(method, c.base+path, bytes.NewReader(body))
	if err != nil {
		c.t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := c.http.Do(req)
	if err != nil {
		c.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		c.t.Fatalf("%s %s: read the answer: %v", method, path, err)
	}
	if c.v != nil {
		c.v.Response(c.t, req, resp, b)
	}
	return apiResponse{resp.StatusCode, resp.Header, b}
}

func (c *apiClient) status(token, app string) workflows.Status {
	c.t.Helper()
	r := c.do("GET", "/v1/releases/"+app, token, nil)
	if r.status != http.StatusOK {
		c.t.Fatalf("status of %s: %d %s", app, r.status, r.body)
	}
	var st workflows.Status
	if err := json.Unmarshal(r.body, &st); err != nil {
		c.t.Fatal(err)
	}
	return st
}

// eventStream reads server-sent events.
type eventStream struct {
	r    *bufio.Reader
	body io.Closer
}

// next returns the next event (name and data), or io.EOF when the stream
// ends.
func (s *eventStream) next() (string, []byte, error) {
	var name string
	var data []byte
	for {
		line, err := s.r.ReadString('\n')
		if err != nil {
			return "", nil, err
		}
		line = strings.TrimRight(line, "\n")
		switch {
		case line == "" && name != "":
			return name, data, nil
		case strings.HasPrefix(line, "event: "):
			name = strings.TrimPrefix(line, "event: ")
		case strings.HasPrefix(line, "data: "):
			data = append(data, strings.TrimPrefix(line, "data: ")...)
		}
	}
}

func randomToken(t *testing.T) string {
	b := make([]byte, 24)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(b)
}

// attack is one request an attacker tried and what it got.
type attack struct{ what, answer string }

func TestAPIEndToEnd(t *testing.T) {
	began := time.Now()
	// The workers run app definitions: requests name an app and a version.
	apps := writeApps(t, map[string]string{
		"api-shop": fmt.Sprintf(releaseYAML, "api-shop", "0"),
		"api-cart": fmt.Sprintf(releaseYAML, "api-cart", "0"),
	})
	c := startCluster(t, "CUTOVER_DEV=false", "CUTOVER_APPS="+apps)

	// Three tokens, configured by their hashes only.
	tokCI, tokOps, tokDash := randomToken(t), randomToken(t), randomToken(t)
	tokensFile := filepath.Join(t.TempDir(), "tokens.yaml")
	tokensYAML := fmt.Sprintf(`tokens:
  - {name: ci, sha256: %s, scopes: [release:start, release:read]}
  - {name: ops, sha256: %s, scopes: [release:approve, release:read]}
  - {name: dashboard, sha256: %s, scopes: [release:read]}
`, api.HashToken(tokCI), api.HashToken(tokOps), api.HashToken(tokDash))
	if err := os.WriteFile(tokensFile, []byte(tokensYAML), 0o600); err != nil {
		t.Fatal(err)
	}
	// --print-token-hash prints what the file holds.
	cmd := harness.Start(t, "cutover serve --print-token-hash", nil, "/bin/sh", "-c", fmt.Sprintf("printf '%%s\\n' %s | %s serve --print-token-hash", tokCI, c.cli))
	if code := cmd.Wait(t, 10*time.Second); code != 0 || strings.TrimSpace(cmd.Output()) != api.HashToken(tokCI) {
		t.Fatalf("--print-token-hash: exit %d, %q", code, cmd.Output())
	}

	addr := fmt.Sprintf("127.0.0.1:%d", harness.FreePort(t))
	serveEnv := append(append([]string{}, c.env...), "CUTOVER_API_TOKENS_FILE="+tokensFile, "CUTOVER_UI_URL=http://127.0.0.1:8233", "CUTOVER_APPS="+apps)
	serve := harness.Start(t, "cutover serve", serveEnv, c.cli, "serve", "--listen", addr, "--log-format", "json")
	cl := &apiClient{t: t, base: "http://" + addr, http: &http.Client{Timeout: 30 * time.Second}}
	for deadline := time.Now().Add(20 * time.Second); ; {
		resp, err := http.Get(cl.base + "/healthz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				break
			}
		}
		if serve.Exited() || time.Now().After(deadline) {
			t.Fatalf("cutover serve did not become healthy: %v\n%s", err, serve.Output())
		}
		time.Sleep(100 * time.Millisecond)
	}
	doc := cl.do("GET", "/openapi.json", "", nil)
	if doc.status != http.StatusOK {
		t.Fatalf("GET /openapi.json: %d", doc.status)
	}
	cl.v = apitest.Load(t, doc.body)
	var servers struct{ Servers []struct{ URL string } }
	if err := json.Unmarshal(doc.body, &servers); err != nil || len(servers.Servers) != 1 || servers.Servers[0].URL != cl.base {
		t.Errorf("/openapi.json servers %+v, want the address this request reached, %s", servers.Servers, cl.base)
	}

	app := "api-shop"
	spec := request(app, "1.5.0")
	yamlCT := []string{"Content-Type", "application/yaml"}

	// Start, with a key, naming who and which CI run.
	r := cl.do("POST", "/v1/releases", tokCI, spec, append(yamlCT, "Idempotency-Key", "build-1", "Cutover-By", "ci-job", "Cutover-CI-Run", "https://ci.test/runs/1")...)
	if r.status != http.StatusCreated {
		t.Fatalf("start: %d %s", r.status, r.body)
	}
	var started api.StartResponse
	if err := json.Unmarshal(r.body, &started); err != nil {
		t.Fatal(err)
	}
	if started.App != app || started.Version != "1.5.0" || started.WorkflowID != "release/"+app || started.RunID == "" ||
		started.Links.Events != "/v1/releases/"+app+"/runs/"+started.RunID+"/events" || !strings.HasSuffix(started.Links.UI, "/workflows/release%2F"+app+"/"+started.RunID+"/history") {
		t.Errorf("start answered %+v", started)
	}

	// A retry with the key, and one without it, get the same release.
	for _, hdr := range [][]string{{"Idempotency-Key", "build-1"}, nil} {
		r = cl.do("POST", "/v1/releases", tokCI, spec, append(yamlCT, hdr...)...)
		if r.status != http.StatusOK || r.header.Get("Idempotent-Replayed") != "true" || !bytes.Equal(r.body, mustJSON(t, started)) {
			t.Errorf("retry %v: %d %q %s; want 200, replayed, the same body", hdr, r.status, r.header.Get("Idempotent-Replayed"), r.body)
		}
	}
	// Another version while 1.5.0 runs: 409 naming it.
	r = cl.do("POST", "/v1/releases", tokCI, request(app, "1.6.0"), yamlCT...)
	if p := r.problem(t); r.status != http.StatusConflict || p.Running == nil || p.Running.Version != "1.5.0" || p.Running.RunID != started.RunID ||
		!strings.Contains(p.Detail, "version 1.5.0 at stage") {
		t.Errorf("second version: %d %s", r.status, r.body)
	}

	st := cl.status(tokDash, app)
	if st.Version != "1.5.0" || st.StartedBy != "ci-job (api token ci)" || st.Outcome != workflows.OutcomeRunning {
		t.Errorf("status %+v", st)
	}
	if r := cl.do("GET", "/v1/releases/nosuchapp", tokDash, nil); r.status != http.StatusNotFound {
		t.Errorf("unknown app: %d %s", r.status, r.body)
	}
	if r := cl.do("POST", "/v1/releases/nosuchapp/approve", tokOps, []byte(`{"by": "alice"}`)); r.status != http.StatusNotFound {
		t.Errorf("approve an unknown app: %d %s", r.status, r.body)
	}

	// Follow the release's events up to the approval gate.
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "GET", cl.base+started.Links.Events, nil)
	req.Header.Set("Authorization", "Bearer "+tokDash)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	cl.v.Response(t, req, resp, nil)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("events: %d", resp.StatusCode)
	}
	events := &eventStream{r: bufio.NewReader(resp.Body), body: resp.Body}
	var stages []string
	for {
		name, data, err := events.next()
		if err != nil {
			t.Fatalf("events ended before the approval gate: %v (stages %v)", err, stages)
		}
		if name != "status" {
			t.Fatalf("event %s before the gate: %s", name, data)
		}
		cl.v.Schema(t, "Status", data)
		var s workflows.Status
		_ = json.Unmarshal(data, &s)
		if len(stages) == 0 || stages[len(stages)-1] != s.Stage {
			stages = append(stages, s.Stage)
		}
		if s.Waiting == "approval" {
			break
		}
	}
	t.Logf("stages seen in the event stream up to the gate: %v", stages)
	if len(stages) < 2 || !slices.Contains(stages, "soak") {
		t.Errorf("the event stream showed the stages %v; want the soak, then the approval gate", stages)
	}

	// Attacks at the gate: none may change anything.
	before := cl.status(tokDash, app)
	big := append(bytes.Repeat([]byte("#"), 2<<20), spec...)
	var attacks []attack
	try := func(what string, wantStatus int, method, path, token string, body []byte, hdr ...string) apiResponse {
		t.Helper()
		r := cl.do(method, path, token, body, hdr...)
		answer := fmt.Sprintf("%d", r.status)
		if r.header.Get("Content-Type") == "application/problem+json" {
			var p api.Problem
			_ = json.Unmarshal(r.body, &p)
			answer += " " + p.Detail
		}
		attacks = append(attacks, attack{what, answer})
		if r.status != wantStatus {
			t.Errorf("%s: %d %s; want %d", what, r.status, r.body, wantStatus)
		}
		return r
	}
	approvePath := "/v1/releases/" + app + "/approve"
	wrongSameLength := randomToken(t)
	approve := []byte(`{"by": "mallory", "reason": "lgtm"}`)
	r = try("approve without a token", 401, "POST", approvePath, "", approve)
	if r.header.Get("WWW-Authenticate") == "" {
		t.Error("401 without WWW-Authenticate")
	}
	try("approve with a wrong token of the same length", 401, "POST", approvePath, wrongSameLength, approve)
	try("approve with a wrong token of another length", 401, "POST", approvePath, tokOps[:20], approve)
	try("approve with the token's SHA-256 as the token", 401, "POST", approvePath, api.HashToken(tokOps), approve)
	try("approve with the token under the Basic scheme", 401, "POST", approvePath, "", approve, "Authorization", "Basic "+tokOps)
	try("approve with the token in the query string", 401, "POST", approvePath+"?access_token="+tokOps, "", approve)
	r = try("approve with the read-only token", 403, "POST", approvePath, tokDash, approve)
	if p := r.problem(t); !strings.Contains(p.Detail, "release:approve") {
		t.Errorf("403 does not name the scope: %q", p.Detail)
	}
	try("approve with the start token (no approve scope)", 403, "POST", approvePath, tokCI, approve)
	try("abort with the read-only token", 403, "POST", "/v1/releases/"+app+"/abort", tokDash, []byte(`{"by": "mallory", "reason": "x"}`))
	try("rollback with the read-only token", 403, "POST", "/v1/releases/"+app+"/rollback", tokDash, nil)
	try("start another version with the read-only token", 403, "POST", "/v1/releases", tokDash, request(app, "6.6.6"), yamlCT...)
	try("approve with a 2 MiB body", 413, "POST", approvePath, tokOps, append([]byte(`{"by": "`), append(bytes.Repeat([]byte("a"), 2<<20), `"}`...)...))
	try("start with a 2 MiB spec", 413, "POST", "/v1/releases", tokCI, big, yamlCT...)
	try("approve with malformed JSON", 400, "POST", approvePath, tokOps, []byte(`{"by": "mallory"`))
	try("approve with a spoofed via field", 400, "POST", approvePath, tokOps, []byte(`{"by": "mallory", "via": "ui"}`))
	try("approve with a newline in by (log forging)", 400, "POST", approvePath, tokOps, []byte(`{"by": "mallory\napproved by: alice"}`))
	try("approve with a form body", 415, "POST", approvePath, tokOps, []byte(`by=mallory`), "Content-Type", "application/x-www-form-urlencoded")
	try("start with malformed JSON", 400, "POST", "/v1/releases", tokCI, []byte(`{"app": "`+app+`", "version": "6.6.6"`), "Content-Type", "application/json")
	try("approve another app through ../ in the path", 404, "POST", "/v1/releases/..%2F"+app+"/approve", tokOps, approve)
	try("DELETE the release", 405, "DELETE", "/v1/releases/"+app, tokOps, nil)
	after := cl.status(tokDash, app)
	if len(after.Decisions) != 0 || after.Waiting != "approval" || after.Stage != before.Stage || after.Step != before.Step ||
		after.Weights != before.Weights || after.Version != "1.5.0" || after.Outcome != workflows.OutcomeRunning {
		t.Errorf("an attack changed the release: before %+v\nafter %+v", before, after)
	}
	var table strings.Builder
	table.WriteString("\n| attack | answer |\n|---|---|\n")
	for _, a := range attacks {
		fmt.Fprintf(&table, "| %s | %s |\n", a.what, a.answer)
	}
	t.Log(table.String())

	// Approve, then approve again.
	r = cl.do("POST", approvePath, tokOps, []byte(`{"by": "alice", "reason": "dashboards green"}`), "Content-Type", "application/json")
	var dec api.DecisionResponse
	_ = json.Unmarshal(r.body, &dec)
	if r.status != http.StatusOK || !strings.Contains(dec.Answer, "approved by alice (api token ops)") {
		t.Fatalf("approve: %d %s", r.status, r.body)
	}
	r = cl.do("POST", approvePath, tokOps, []byte(`{"by": "bob"}`), "Content-Type", "application/json")
	if p := r.problem(t); r.status != http.StatusConflict || !strings.Contains(p.Detail, "already approved by alice (api token ops)") {
		t.Errorf("second approve: %d %s; want 409 with the workflow's reason", r.status, r.body)
	}

	// The stream goes on to the outcome, then closes.
	var outcome api.OutcomeEvent
	for {
		name, data, err := events.next()
		if err != nil {
			t.Fatalf("events ended without an outcome: %v", err)
		}
		if name == "outcome" {
			cl.v.Schema(t, "OutcomeEvent", data)
			_ = json.Unmarshal(data, &outcome)
			break
		}
		cl.v.Schema(t, "Status", data)
	}
	if outcome.Outcome != workflows.OutcomePromoted || outcome.Version != "1.5.0" {
		t.Errorf("outcome %+v", outcome)
	}
	if _, _, err := events.next(); err != io.EOF {
		t.Errorf("the stream did not close after the outcome: %v", err)
	}

	st = cl.status(tokDash, app)
	if a := st.LastApproval(); st.Outcome != workflows.OutcomePromoted || a == nil || a.By != "alice (api token ops)" || a.Via != "api" || a.Reason != "dashboards green" {
		t.Errorf("after the release: outcome %s, approval %+v", st.Outcome, a)
	}

	// The list, from visibility (which lags a moment).
	var list struct {
		Releases []struct{ App, Version, Outcome, RunID string }
	}
	for deadline := time.Now().Add(15 * time.Second); ; {
		r = cl.do("GET", "/v1/releases?app="+app+"&state=promoted&limit=10", tokDash, nil)
		_ = json.Unmarshal(r.body, &list)
		if r.status == http.StatusOK && len(list.Releases) == 1 && list.Releases[0].RunID == started.RunID && list.Releases[0].Version == "1.5.0" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("list never showed the promoted release: %d %s", r.status, r.body)
		}
		time.Sleep(250 * time.Millisecond)
	}
	r = cl.do("GET", "/v1/releases?state=running", tokDash, nil)
	if r.status != http.StatusOK {
		t.Errorf("list running: %d %s", r.status, r.body)
	}
	// The key still answers with the same release after it ended.
	r = cl.do("POST", "/v1/releases", tokCI, spec, append(yamlCT, "Idempotency-Key", "build-1")...)
	if r.status != http.StatusOK || !bytes.Equal(r.body, mustJSON(t, started)) {
		t.Errorf("retry after the end: %d %s", r.status, r.body)
	}

	// SIGTERM while a client follows another release: the stream ends, the
	// server stops cleanly; the log names tokens, never holds one.
	r = cl.do("POST", "/v1/releases", tokCI, request("api-cart", "2.0.0"), yamlCT...)
	if r.status != http.StatusCreated {
		t.Fatalf("start api-cart: %d %s", r.status, r.body)
	}
	var cart api.StartResponse
	_ = json.Unmarshal(r.body, &cart)

	// By run ID: the ended api-shop run re-attaches, a run ID of api-cart's
	// under api-shop is not found, and a stream resumed after its outcome
	// answers 204.
	r = cl.do("GET", started.Links.Self, tokDash, nil)
	var byRun api.RunStatus
	_ = json.Unmarshal(r.body, &byRun)
	if r.status != http.StatusOK || byRun.RunID != started.RunID || byRun.Outcome != workflows.OutcomePromoted {
		t.Errorf("GET %s: %d %s", started.Links.Self, r.status, r.body)
	}
	for _, path := range []string{"/v1/releases/" + app + "/runs/" + cart.RunID, "/v1/releases/" + app + "/runs/" + cart.RunID + "/events"} {
		if r := cl.do("GET", path, tokDash, nil); r.status != http.StatusNotFound || strings.Contains(string(r.body), "2.0.0") {
			t.Errorf("api-cart's run under %s: %d %s; want 404", app, r.status, r.body)
		}
	}
	r = cl.do("GET", started.Links.Events, tokDash, nil, "Last-Event-ID", started.RunID+"/outcome")
	if r.status != http.StatusNoContent {
		t.Errorf("events after the outcome with Last-Event-ID: %d %s; want 204", r.status, r.body)
	}
	req, _ = http.NewRequestWithContext(ctx, "GET", cl.base+"/v1/releases/api-cart/events", nil)
	req.Header.Set("Authorization", "Bearer "+tokDash)
	resp2, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp2.Body.Close()
	following := &eventStream{r: bufio.NewReader(resp2.Body), body: resp2.Body}
	if name, _, err := following.next(); err != nil || name != "status" {
		t.Fatalf("api-cart events: %q %v", name, err)
	}
	stopping := time.Now()
	serve.Stop(10 * time.Second)
	if code := serve.Wait(t, time.Second); code != 0 {
		t.Errorf("cutover serve exited %d after SIGTERM", code)
	}
	took := time.Since(stopping)
	t.Logf("cutover serve stopped %s after SIGTERM with a stream open", took.Round(time.Millisecond))
	if took > 5*time.Second {
		t.Errorf("cutover serve took %s to stop with a stream open", took)
	}
	for {
		name, _, err := following.next()
		if err != nil {
			break
		}
		if name == "outcome" {
			t.Error("a stream cut by the shutdown sent an outcome")
		}
	}
	logs := serve.Output()
	for _, tok := range []string{tokCI, tokOps, tokDash, wrongSameLength} {
		if strings.Contains(logs, tok) {
			t.Errorf("a token is in the server's log")
		}
	}
	for _, w := range []string{`"msg":"request"`, `"token":"ops"`, `"status":403`, `"status":401`, `"msg":"decision accepted"`, `"msg":"stopped"`} {
		if !strings.Contains(logs, w) {
			t.Errorf("the server's log lacks %s", w)
		}
	}
	t.Logf("API end-to-end took %s", time.Since(began).Round(time.Millisecond))
}

func mustJSON(t *testing.T, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return append(b, '\n')
}
