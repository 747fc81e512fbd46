package api

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cutoverhq/cutover/api/apitest"
	"github.com/cutoverhq/cutover/apps"
	"github.com/cutoverhq/cutover/identity"
	"github.com/cutoverhq/cutover/providers/builtin"
	"github.com/cutoverhq/cutover/releases"
	"github.com/cutoverhq/cutover/workflows"
)

// The tokens of the unit tests, and the scopes they hold.
const (
	tokStarter  = "start-token-0123456789abcdef" // ci: start, read
	tokApprover = "approve-token-0123456789abcd" // ops: approve, read
	tokReader   = "read-token-0123456789abcdefg" // dashboard: read
)

func testTokens() []Token {
	return []Token{
		{Name: "ci", SHA256: HashToken(tokStarter), Scopes: []string{ScopeStart, ScopeRead}},
		{Name: "ops", SHA256: HashToken(tokApprover), Scopes: []string{ScopeApprove, ScopeRead}},
		{Name: "dashboard", SHA256: HashToken(tokReader), Scopes: []string{ScopeRead}},
	}
}

// shopDefinition is the operators' definition of shop, which the API checks
// requests against; shopYAML is a request.
const shopDefinition = `app: shop
providers:
  environment: {type: memory}
  traffic: {type: memory}
  analysis: {type: memory}
plan: [provision, validate, setWeight: 10, soak: {duration: 5s}, approval, promote]
requests: {plan: true}
`

const shopYAML = `app: shop
version: %s
plan:
  - provision
  - validate
  - setWeight: 10
  - soak: {duration: 5s}
  - approval: {timeout: 5m}
  - promote
`

func shop(version string) string { return fmt.Sprintf(shopYAML, version) }

// env is an API over a fake on a real HTTP server; every response is checked
// against the OpenAPI document.
type env struct {
	t    *testing.T
	f    *fake
	s    *Server
	srv  *httptest.Server
	v    *apitest.Validator
	logs *syncBuffer
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

func newEnv(t *testing.T, tune ...func(*Config)) *env {
	t.Helper()
	e := &env{t: t, f: newFake(), logs: &syncBuffer{}}
	cfg := Config{Tokens: testTokens(), PollInterval: 10 * time.Millisecond, Heartbeat: 30 * time.Millisecond, UIURL: "http://ui.test:8233/"}
	for _, fn := range tune {
		fn(&cfg)
	}
	log := slog.New(slog.NewJSONHandler(e.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "shop.yaml"), []byte(shopDefinition), 0o644); err != nil {
		t.Fatal(err)
	}
	defs, err := apps.NewStore(dir, apps.Mode{}, builtin.NewRegistry(log).Check)
	if err != nil {
		t.Fatal(err)
	}
	s, err := New(cfg, e.f, defs, log)
	if err != nil {
		t.Fatal(err)
	}
	e.s = s
	e.srv = httptest.NewServer(s.Handler())
	t.Cleanup(func() {
		s.Close()
		e.srv.Close()
		for _, tok := range []string{tokStarter, tokApprover, tokReader} {
			if strings.Contains(e.logs.String(), tok) {
				t.Errorf("a token is in the log:\n%s", e.logs.String())
			}
		}
	})
	e.v = apitest.Load(t, OpenAPI())
	return e
}

type response struct {
	*http.Response
	body []byte
}

// problem decodes a problem+json body, failing unless it is one.
func (r response) problem(t *testing.T) Problem {
	t.Helper()
	if ct := r.Header.Get("Content-Type"); ct != "application/problem+json" {
		t.Fatalf("Content-Type %q, want application/problem+json; body %s", ct, r.body)
	}
	var p Problem
	if err := json.Unmarshal(r.body, &p); err != nil {
		t.Fatalf("problem: %v: %s", err, r.body)
	}
	if p.Status != r.StatusCode || p.Title == "" || !strings.HasPrefix(p.Type, ProblemTypeBase) {
		t.Errorf("problem %+v does not match status %d or lacks type/title", p, r.StatusCode)
	}
	return p
}

func (r response) decode(t *testing.T, v any) {
	t.Helper()
	if err := json.Unmarshal(r.body, v); err != nil {
		t.Fatalf("decode %T: %v: %s", v, err, r.body)
	}
}

// do sends a request; headers are name, value pairs.
func (e *env) do(method, path, token string, body io.Reader, headers ...string) response {
	e.t.Helper()
	req, err := http.NewRequest(method, e.srv.URL+path, body)
	if err != nil {
		e.t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	resp, err := e.srv.Client().Do(req)
	if err != nil {
		e.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		e.t.Fatalf("%s %s: read: %v", method, path, err)
	}
	e.v.Response(e.t, req, resp, b)
	return response{resp, b}
}

func (e *env) start(version string, headers ...string) response {
	e.t.Helper()
	return e.do("POST", "/v1/releases", tokStarter, strings.NewReader(shop(version)), append([]string{"Content-Type", "application/yaml"}, headers...)...)
}

func want(t *testing.T, r response, status int) {
	t.Helper()
	if r.StatusCode != status {
		t.Fatalf("status %d, want %d: %s", r.StatusCode, status, r.body)
	}
}

func TestAuth(t *testing.T) {
	e := newEnv(t)
	want(t, e.start("1.0.0"), http.StatusCreated)
	before := len(e.f.calls)

	t.Run("no token", func(t *testing.T) {
		r := e.do("GET", "/v1/releases/shop", "", nil)
		want(t, r, http.StatusUnauthorized)
		if got := r.Header.Get("WWW-Authenticate"); got != `Bearer realm="cutover"` {
			t.Errorf("WWW-Authenticate %q", got)
		}
		r.problem(t)
	})
	for name, header := range map[string]string{
		"wrong token of the same length": "Bearer " + strings.Repeat("x", len(tokReader)),
		"wrong token of another length":  "Bearer " + tokReader + "x",
		"a prefix of a token":            "Bearer " + tokReader[:10],
		"the token's hash as the token":  "Bearer " + HashToken(tokReader),
		"another scheme":                 "Basic " + tokReader,
		"scheme without token":           "Bearer ",
		"two tokens in one header":       "Bearer " + tokReader + " " + tokReader,
		"token with a trailing NUL":      "Bearer " + tokReader + "\x00",
		"the token in upper case":        "Bearer " + strings.ToUpper(tokReader),
	} {
		t.Run(name, func(t *testing.T) {
			req, _ := http.NewRequest("GET", e.srv.URL+"/v1/releases/shop", nil)
			req.Header["Authorization"] = []string{header}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				// net/http refuses to send some header values: nothing reached the server.
				return
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			r := response{resp, b}
			e.v.Response(t, req, resp, b)
			want(t, r, http.StatusUnauthorized)
			if strings.HasPrefix(header, "Bearer ") && len(header) > len("Bearer ") && !strings.Contains(r.Header.Get("WWW-Authenticate"), "Bearer") {
				t.Errorf("WWW-Authenticate %q", r.Header.Get("WWW-Authenticate"))
			}
			r.problem(t)
		})
	}
	t.Run("token in the query string is not read", func(t *testing.T) {
		want(t, e.do("GET", "/v1/releases/shop?access_token="+tokReader, "", nil), http.StatusUnauthorized)
	})
	t.Run("two Authorization headers", func(t *testing.T) {
		req, _ := http.NewRequest("GET", e.srv.URL+"/v1/releases/shop", nil)
		req.Header["Authorization"] = []string{"Bearer " + tokReader, "Bearer " + tokApprover}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusUnauthorized {
			t.Errorf("status %d, want 401", resp.StatusCode)
		}
	})
	if got := len(e.f.calls); got != before {
		t.Errorf("unauthenticated requests reached the releases client: %v", e.f.calls[before:])
	}

	t.Run("wrong scope", func(t *testing.T) {
		for _, c := range []struct {
			method, path, token, scope string
			body                       string
		}{
			{"POST", "/v1/releases/shop/approve", tokReader, ScopeApprove, `{"by": "mallory"}`},
			{"POST", "/v1/releases/shop/abort", tokStarter, ScopeApprove, `{"by": "mallory", "reason": "x"}`},
			{"POST", "/v1/releases/shop/rollback", tokReader, ScopeApprove, `{}`},
			{"POST", "/v1/releases", tokReader, ScopeStart, shop("9.9.9")},
			{"POST", "/v1/releases", tokApprover, ScopeStart, shop("9.9.9")},
		} {
			r := e.do(c.method, c.path, c.token, strings.NewReader(c.body))
			want(t, r, http.StatusForbidden)
			p := r.problem(t)
			if !strings.Contains(p.Detail, c.scope) {
				t.Errorf("%s %s: detail %q does not name the scope %s", c.method, c.path, p.Detail, c.scope)
			}
			if got := r.Header.Get("WWW-Authenticate"); !strings.Contains(got, `error="insufficient_scope"`) || !strings.Contains(got, c.scope) {
				t.Errorf("WWW-Authenticate %q", got)
			}
		}
		if n := e.f.callCount("decide"); n != 0 {
			t.Errorf("%d decisions reached the release", n)
		}
		if n := e.f.callCount("start"); n != 1 {
			t.Errorf("%d starts, want only the first", n)
		}
	})

	t.Run("right scope", func(t *testing.T) {
		for _, tok := range []string{tokStarter, tokApprover, tokReader} {
			want(t, e.do("GET", "/v1/releases/shop", tok, nil), http.StatusOK)
		}
	})

	t.Run("logs name the token, never the token", func(t *testing.T) {
		logs := e.logs.String()
		for _, w := range []string{`"token":"dashboard"`, `"status":401`, `"status":403`, `"path":"/v1/releases/shop"`, `"duration"`} {
			if !strings.Contains(logs, w) {
				t.Errorf("the log lacks %s:\n%s", w, logs)
			}
		}
	})
}

func TestOpenRoutesNeedNoToken(t *testing.T) {
	e := newEnv(t)
	r := e.do("GET", "/healthz", "", nil)
	want(t, r, http.StatusOK)
	r = e.do("GET", "/openapi.json", "", nil)
	want(t, r, http.StatusOK)
	var served, embedded map[string]any
	if err := json.Unmarshal(r.body, &served); err != nil {
		t.Fatal(err)
	}
	_ = json.Unmarshal(OpenAPI(), &embedded)
	delete(served, "servers")
	delete(embedded, "servers")
	if !reflect.DeepEqual(served, embedded) {
		t.Error("/openapi.json is not the embedded document (servers aside)")
	}
}

// TestOpenAPIServers: the document names the server a client reached, not a
// fixed address; proxy headers only when trusted; --public-url over both.
func TestOpenAPIServers(t *testing.T) {
	servers := func(e *env, host string, headers ...string) string {
		t.Helper()
		req, _ := http.NewRequest("GET", e.srv.URL+"/openapi.json", nil)
		req.Host = host
		for i := 0; i+1 < len(headers); i += 2 {
			req.Header.Set(headers[i], headers[i+1])
		}
		resp, err := e.srv.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var doc struct {
			Servers []struct{ URL string }
		}
		if err := json.NewDecoder(resp.Body).Decode(&doc); err != nil || len(doc.Servers) != 1 {
			t.Fatalf("servers %+v, %v", doc.Servers, err)
		}
		if !strings.Contains(resp.Header.Get("Vary"), "Host") {
			t.Errorf("Vary %q: a cache would serve one host's document to another", resp.Header.Get("Vary"))
		}
		return doc.Servers[0].URL
	}
	fwd := []string{"X-Forwarded-Proto", "https", "X-Forwarded-Host", "cutover.example:443"}

	e := newEnv(t)
	if got := servers(e, "api.internal:8090"); got != "http://api.internal:8090" {
		t.Errorf("from the request: %s", got)
	}
	if got := servers(e, "api.internal:8090", fwd...); got != "http://api.internal:8090" {
		t.Errorf("untrusted proxy headers were used: %s", got)
	}
	trusting := newEnv(t, func(c *Config) { c.TrustProxy = true })
	if got := servers(trusting, "10.0.0.5:8090", fwd...); got != "https://cutover.example:443" {
		t.Errorf("behind a trusted proxy: %s", got)
	}
	if got := servers(trusting, "10.0.0.5:8090", "X-Forwarded-Proto", "gopher", "X-Forwarded-Host", "evil.example/path?"); got != "http://10.0.0.5:8090" {
		t.Errorf("malformed proxy headers were used: %s", got)
	}
	public := newEnv(t, func(c *Config) { c.PublicURL = "https://cutover.example.com/"; c.TrustProxy = true })
	if got := servers(public, "10.0.0.5:8090", fwd...); got != "https://cutover.example.com" {
		t.Errorf("with a public URL: %s", got)
	}
}

func TestProblems(t *testing.T) {
	e := newEnv(t)
	t.Run("unknown route", func(t *testing.T) {
		r := e.do("GET", "/v2/nothing", tokReader, nil)
		want(t, r, http.StatusNotFound)
		r.problem(t)
	})
	t.Run("method not allowed", func(t *testing.T) {
		for _, c := range []struct{ method, path, allow string }{
			{"DELETE", "/v1/releases", "GET, HEAD, POST"},
			{"GET", "/v1/releases/shop/approve", "POST"},
			{"POST", "/v1/releases/shop/events", "GET, HEAD"},
			{"PUT", "/v1/releases/shop", "GET, HEAD"},
		} {
			r := e.do(c.method, c.path, tokApprover, nil)
			want(t, r, http.StatusMethodNotAllowed)
			p := r.problem(t)
			if got := r.Header.Get("Allow"); got != c.allow {
				t.Errorf("%s %s: Allow %q, want %q", c.method, c.path, got, c.allow)
			}
			if !strings.Contains(p.Detail, c.method) {
				t.Errorf("detail %q", p.Detail)
			}
		}
	})
	t.Run("unknown app", func(t *testing.T) {
		for _, path := range []string{"/v1/releases/nosuchapp", "/v1/releases/nosuchapp/events"} {
			r := e.do("GET", path, tokReader, nil)
			want(t, r, http.StatusNotFound)
			if p := r.problem(t); !strings.Contains(p.Detail, `"nosuchapp"`) {
				t.Errorf("detail %q", p.Detail)
			}
		}
		r := e.do("POST", "/v1/releases/nosuchapp/approve", tokApprover, strings.NewReader(`{"by":"alice"}`))
		want(t, r, http.StatusNotFound)
		r.problem(t)
	})
	t.Run("invalid app name", func(t *testing.T) {
		before := e.f.callCount("")
		for _, path := range []string{"/v1/releases/Shop", "/v1/releases/..%2Fetc", "/v1/releases/a%20b/approve"} {
			method := "GET"
			if strings.HasSuffix(path, "approve") {
				method = "POST"
			}
			r := e.do(method, path, tokApprover, nil)
			want(t, r, http.StatusNotFound)
			r.problem(t)
		}
		if n := e.f.callCount(""); n != before {
			t.Errorf("an invalid app name reached the releases client: %v", e.f.calls[before:])
		}
	})
}

func TestStartAndSpecProblems(t *testing.T) {
	e := newEnv(t)
	t.Run("invalid spec lists every problem with its field path", func(t *testing.T) {
		bad := `app: shop
version: 1.5.0
providers:
  environment: {type: local, settings: {command: [sh, -c, "cat /etc/hostname"]}}
  traffic: {type: memroy}
plan:
  - provision
  - validate
  - setWeight: 10
  - setWeight: 120
  - soak: {durration: 5m}
  - promote
`
		r := e.do("POST", "/v1/releases", tokStarter, strings.NewReader(bad), "Content-Type", "application/yaml")
		want(t, r, http.StatusBadRequest)
		p := r.problem(t)
		var fields []string
		for _, fe := range p.Errors {
			fields = append(fields, fe.Field)
			if fe.Message == "" || fe.Line == 0 {
				t.Errorf("error %+v lacks a message or a line", fe)
			}
		}
		for _, f := range []string{"providers", "plan[3].setWeight", "plan[4].soak.duration", "plan[4].soak.durration"} {
			if !slices.Contains(fields, f) {
				t.Errorf("errors lack %s: %+v", f, p.Errors)
			}
		}
		if !strings.Contains(p.Detail, "4 problems") {
			t.Errorf("detail %q", p.Detail)
		}
	})
	t.Run("JSON request", func(t *testing.T) {
		r := e.do("POST", "/v1/releases", tokStarter, strings.NewReader(`{"app": "shop", "version": "1.0.1"}`),
			"Content-Type", "application/json")
		want(t, r, http.StatusCreated)
		e.f.set("shop", func(r *fakeRun) { r.run.Running = false; r.st.Outcome = workflows.OutcomePromoted })
	})
	t.Run("an app without a definition is refused, and nothing starts", func(t *testing.T) {
		before := e.f.callCount("")
		r := e.do("POST", "/v1/releases", tokStarter, strings.NewReader(`{"app": "cart", "version": "1.0.0"}`),
			"Content-Type", "application/json")
		want(t, r, http.StatusForbidden)
		if p := r.problem(t); !strings.Contains(p.Detail, `app: "cart" has no definition on the worker`) {
			t.Errorf("detail %q, want it to name the app without a definition", p.Detail)
		}
		if n := e.f.callCount(""); n != before {
			t.Errorf("a refused request reached Temporal: %v", e.f.calls[before:])
		}
	})
	t.Run("a plan the definition does not allow is refused", func(t *testing.T) {
		r := e.do("POST", "/v1/releases", tokStarter, strings.NewReader("app: shop\nversion: 1.0.2\nplan: [provision, validate, setWeight: 10, soak: {duration: 5s}, promote]\n"),
			"Content-Type", "application/yaml")
		want(t, r, http.StatusForbidden)
		if p := r.problem(t); !strings.Contains(p.Detail, "plan: the app's definition's plan has an approval step; a requested plan must keep one") {
			t.Errorf("detail %q", p.Detail)
		}
	})
	t.Run("malformed JSON", func(t *testing.T) {
		r := e.do("POST", "/v1/releases", tokStarter, strings.NewReader("{\"app\": \"cart\",\n \"version\": \"1.0"), "Content-Type", "application/json")
		want(t, r, http.StatusBadRequest)
		p := r.problem(t)
		if len(p.Errors) != 1 || !strings.Contains(p.Errors[0].Message, "not well-formed") {
			t.Errorf("errors %+v", p.Errors)
		}
	})
	t.Run("empty body", func(t *testing.T) {
		r := e.do("POST", "/v1/releases", tokStarter, nil)
		want(t, r, http.StatusBadRequest)
		if p := r.problem(t); len(p.Errors) != 1 || p.Errors[0].Field != "" {
			t.Errorf("errors %+v", p.Errors)
		}
	})
	t.Run("unsupported media type", func(t *testing.T) {
		r := e.do("POST", "/v1/releases", tokStarter, strings.NewReader(shop("1.0.0")), "Content-Type", "application/x-www-form-urlencoded")
		want(t, r, http.StatusUnsupportedMediaType)
		r.problem(t)
	})
	if n := e.f.callCount("start shop"); n != 1 {
		t.Errorf("%d starts, want only the JSON request's: a bad request started a release", n)
	}

	t.Run("started", func(t *testing.T) {
		r := e.start("1.0.0", "Cutover-By", "alice", "Cutover-CI-Run", "https://ci.test/runs/7")
		want(t, r, http.StatusCreated)
		var got StartResponse
		r.decode(t, &got)
		wantResp := StartResponse{App: "shop", Version: "1.0.0", WorkflowID: "release/shop", RunID: got.RunID, Links: Links{
			Self: "/v1/releases/shop/runs/" + got.RunID, Events: "/v1/releases/shop/runs/" + got.RunID + "/events",
			UI: "http://ui.test:8233/namespaces/default/workflows/release%2Fshop/" + got.RunID + "/history",
		}}
		if got != wantResp || got.RunID == "" {
			t.Errorf("start answered %+v, want %+v", got, wantResp)
		}
		if r.Header.Get("Location") != "/v1/releases/shop/runs/"+got.RunID || r.Header.Get("Idempotent-Replayed") != "" {
			t.Errorf("headers %v", r.Header)
		}
		o := e.f.origins[len(e.f.origins)-1]
		if o != (releases.Origin{Principal: identity.Principal{Door: "api", ID: "ci"}, By: "alice (api token ci)", Via: "api", CIRun: "https://ci.test/runs/7"}) {
			t.Errorf("origin %+v", o)
		}
	})
	t.Run("bad headers", func(t *testing.T) {
		want(t, e.start("1.0.0", "Cutover-By", strings.Repeat("a", 101)), http.StatusBadRequest)
		want(t, e.start("1.0.0", "Idempotency-Key", strings.Repeat("k", 256)), http.StatusBadRequest)
	})
}

func TestBodyTooLarge(t *testing.T) {
	e := newEnv(t)
	want(t, e.start("1.0.0"), http.StatusCreated)
	e.f.set("shop", func(r *fakeRun) { r.st.Waiting, r.st.Stage = "approval", "approval" })
	big := "# " + strings.Repeat("x", 1<<20) + "\n" + shop("2.0.0")

	r := e.do("POST", "/v1/releases", tokStarter, strings.NewReader(big), "Content-Type", "application/yaml")
	want(t, r, http.StatusRequestEntityTooLarge)
	if p := r.problem(t); !strings.Contains(p.Detail, "1 MiB") {
		t.Errorf("detail %q", p.Detail)
	}
	// Without a Content-Length (chunked), the limit is found while reading.
	r = e.do("POST", "/v1/releases", tokStarter, io.MultiReader(strings.NewReader(big)), "Content-Type", "application/yaml")
	want(t, r, http.StatusRequestEntityTooLarge)
	r = e.do("POST", "/v1/releases/shop/approve", tokApprover, io.MultiReader(strings.NewReader(`{"by": "`+strings.Repeat("a", 2<<20)+`"}`)))
	want(t, r, http.StatusRequestEntityTooLarge)
	r.problem(t)
	if e.f.callCount("start shop 2.0.0") != 0 || e.f.callCount("decide") != 0 {
		t.Errorf("an oversized body reached the releases client: %v", e.f.calls)
	}
	// Exactly at the limit is fine (and then a spec problem).
	at := "#" + strings.Repeat("x", 1<<20-2) + "\n"
	want(t, e.do("POST", "/v1/releases", tokStarter, strings.NewReader(at)), http.StatusBadRequest)
}

func TestIdempotentStart(t *testing.T) {
	e := newEnv(t)
	first := e.start("1.0.0", "Idempotency-Key", "build-42")
	want(t, first, http.StatusCreated)

	t.Run("same key", func(t *testing.T) {
		r := e.start("1.0.0", "Idempotency-Key", "build-42")
		want(t, r, http.StatusOK)
		if !bytes.Equal(r.body, first.body) || r.Header.Get("Idempotent-Replayed") != "true" {
			t.Errorf("replay %s (Idempotent-Replayed %q), want %s", r.body, r.Header.Get("Idempotent-Replayed"), first.body)
		}
		if n := e.f.callCount("start"); n != 1 {
			t.Errorf("%d starts, want 1: the key is answered from memory", n)
		}
	})
	t.Run("same app and version while it runs, no key", func(t *testing.T) {
		r := e.start("1.0.0")
		want(t, r, http.StatusOK)
		if !bytes.Equal(r.body, first.body) || r.Header.Get("Idempotent-Replayed") != "true" {
			t.Errorf("replay %s, want %s", r.body, first.body)
		}
	})
	t.Run("same key, other version", func(t *testing.T) {
		r := e.start("2.0.0", "Idempotency-Key", "build-42")
		want(t, r, http.StatusUnprocessableEntity)
		r.problem(t)
	})
	t.Run("keys are per token", func(t *testing.T) {
		e.s.keys.tokens[1].Scopes = append(e.s.keys.tokens[1].Scopes, ScopeStart)
		defer func() { e.s.keys.tokens[1].Scopes = e.s.keys.tokens[1].Scopes[:2] }()
		r := e.do("POST", "/v1/releases", tokApprover, strings.NewReader(shop("2.0.0")), "Idempotency-Key", "build-42")
		want(t, r, http.StatusConflict)
	})
	t.Run("another version while one runs", func(t *testing.T) {
		e.f.set("shop", func(r *fakeRun) { r.st.Stage = "soak" })
		r := e.start("2.0.0", "Idempotency-Key", "build-43")
		want(t, r, http.StatusConflict)
		p := r.problem(t)
		if p.Running == nil || p.Running.Version != "1.0.0" || p.Running.Stage != "soak" || !strings.Contains(p.Detail, "version 1.0.0 at stage soak") {
			t.Errorf("conflict %+v, running %+v; want it to name 1.0.0 at soak", p, p.Running)
		}
		// The refused key is not remembered: a retry after the release ends starts.
		e.f.set("shop", func(r *fakeRun) { r.run.Running = false; r.st.Outcome = workflows.OutcomePromoted })
		r = e.start("2.0.0", "Idempotency-Key", "build-43")
		want(t, r, http.StatusCreated)
	})
	t.Run("the key still answers after its release ended", func(t *testing.T) {
		r := e.start("1.0.0", "Idempotency-Key", "build-42")
		want(t, r, http.StatusOK)
		if !bytes.Equal(r.body, first.body) {
			t.Errorf("replay %s, want %s", r.body, first.body)
		}
	})
	t.Run("keys expire", func(t *testing.T) {
		e.s.idem.now = func() time.Time { return time.Now().Add(25 * time.Hour) }
		defer func() { e.s.idem.now = time.Now }()
		if _, ok := e.s.idem.get("ci", "build-42"); ok {
			t.Error("a key outlived its TTL")
		}
	})
}

func TestIdemCacheBounded(t *testing.T) {
	c := newIdemCache(time.Hour, 3)
	for i := range 5 {
		c.put("ci", fmt.Sprint(i), StartResponse{RunID: fmt.Sprint(i)})
	}
	if len(c.entries) != 3 {
		t.Errorf("%d entries, want 3", len(c.entries))
	}
	if _, ok := c.get("ci", "4"); !ok {
		t.Error("the newest key was dropped")
	}
}

func TestDecisions(t *testing.T) {
	e := newEnv(t)
	want(t, e.start("1.0.0"), http.StatusCreated)
	approve := func(body string, headers ...string) response {
		return e.do("POST", "/v1/releases/shop/approve", tokApprover, strings.NewReader(body), headers...)
	}
	t.Run("rejected before the gate, with the workflow's reason", func(t *testing.T) {
		e.f.set("shop", func(r *fakeRun) { r.st.Stage, r.st.Step = "soak", 4 })
		r := approve(`{"by": "alice"}`)
		want(t, r, http.StatusConflict)
		if p := r.problem(t); p.Detail != "no approval is pending: the release is at step 4 (soak)" {
			t.Errorf("detail %q", p.Detail)
		}
	})
	t.Run("bad bodies change nothing", func(t *testing.T) {
		for _, c := range []struct {
			body   string
			status int
			hdr    []string
		}{
			{`{"by": "alice"`, http.StatusBadRequest, nil},
			{`not json`, http.StatusBadRequest, nil},
			{`{"by": "alice", "via": "ui"}`, http.StatusBadRequest, nil},
			{`{"by": "alice"} {"by": "bob"}`, http.StatusBadRequest, nil},
			{`["alice"]`, http.StatusBadRequest, nil},
			{`{"by": "al\u0000ice"}`, http.StatusBadRequest, nil},
			{`{"by": "alice\nBy: root"}`, http.StatusBadRequest, nil},
			{`{"by": "alice"}`, http.StatusUnsupportedMediaType, []string{"Content-Type", "text/plain"}},
		} {
			r := approve(c.body, c.hdr...)
			if r.StatusCode != c.status {
				t.Errorf("%q: status %d, want %d: %s", c.body, r.StatusCode, c.status, r.body)
			}
			r.problem(t)
		}
		r := e.do("POST", "/v1/releases/shop/abort", tokApprover, strings.NewReader(`{"by": "alice"}`))
		want(t, r, http.StatusBadRequest)
		if n := e.f.callCount("decide"); n != 1 {
			t.Errorf("%d decisions reached the release, want only the first", n)
		}
	})
	t.Run("approved at the gate", func(t *testing.T) {
		e.f.set("shop", func(r *fakeRun) { r.st.Stage, r.st.Step, r.st.Waiting = "approval", 5, "approval" })
		r := approve(`{"by": "alice", "reason": "dashboards green"}`, "Content-Type", "application/json; charset=utf-8", "Idempotency-Key", "k1")
		want(t, r, http.StatusOK)
		var got DecisionResponse
		r.decode(t, &got)
		if got.Answer != "approved by alice (api token ops)" || got.By != "alice (api token ops)" || got.Action != "approve" || got.App != "shop" {
			t.Errorf("answer %+v", got)
		}
		d := e.f.decisions[len(e.f.decisions)-1]
		if d.d != (workflows.Decision{By: "alice (api token ops)", Principal: identity.Principal{Door: "api", ID: "ops"}, Reason: "dashboards green", Via: "api"}) || d.updateID != "api/ops/approve/k1" {
			t.Errorf("decision %+v", d)
		}
	})
	t.Run("approved again: rejected with the reason", func(t *testing.T) {
		r := approve(``)
		want(t, r, http.StatusConflict)
		if p := r.problem(t); !strings.Contains(p.Detail, "already approved by alice (api token ops)") {
			t.Errorf("detail %q", p.Detail)
		}
		d := e.f.calls[len(e.f.calls)-1]
		if d != "decide shop approve" {
			t.Errorf("last call %q", d)
		}
	})
	t.Run("without by, the token is who decided", func(t *testing.T) {
		r := e.do("POST", "/v1/releases/shop/pause", tokApprover, nil)
		want(t, r, http.StatusOK)
		if d := e.f.decisions[len(e.f.decisions)-1]; d.d.By != "api token ops" || d.action != "pause" {
			t.Errorf("decision %+v", d)
		}
	})
	t.Run("after the end", func(t *testing.T) {
		e.f.set("shop", func(r *fakeRun) { r.run.Running = false })
		r := e.do("POST", "/v1/releases/shop/abort", tokApprover, strings.NewReader(`{"reason": "x"}`))
		want(t, r, http.StatusConflict)
		if p := r.problem(t); p.Detail != "the release has ended" {
			t.Errorf("detail %q", p.Detail)
		}
	})
}

func TestList(t *testing.T) {
	e := newEnv(t)
	r := e.do("GET", "/v1/releases", tokReader, nil)
	want(t, r, http.StatusOK)
	if strings.TrimSpace(string(r.body)) != `{"releases":[]}` {
		t.Errorf("empty list %s", r.body)
	}
	want(t, e.start("1.0.0"), http.StatusCreated)
	r = e.do("GET", "/v1/releases?app=shop&state=running&limit=5", tokReader, nil)
	want(t, r, http.StatusOK)
	var got ReleaseList
	r.decode(t, &got)
	if len(got.Releases) != 1 || got.Releases[0].App != "shop" {
		t.Errorf("list %+v", got)
	}
	if f := e.f.lists[len(e.f.lists)-1]; f != (releases.Filter{App: "shop", Running: true, Limit: 5}) {
		t.Errorf("filter %+v", f)
	}
	e.do("GET", "/v1/releases?state=rolled_back", tokReader, nil)
	if f := e.f.lists[len(e.f.lists)-1]; f != (releases.Filter{Outcome: "rolled_back", Limit: 50}) {
		t.Errorf("filter %+v", f)
	}
	for _, q := range []string{"state=done", "limit=0", "limit=1001", "limit=x", "app=Bad!", "status=running"} {
		want(t, e.do("GET", "/v1/releases?"+q, tokReader, nil), http.StatusBadRequest)
	}
}

// sseEvent is one server-sent event.
type sseEvent struct{ name, id, data string }

// readEvents reads events until the stream ends, returning them and the
// comment lines seen.
func readEvents(t *testing.T, body io.Reader) (events []sseEvent, comments int) {
	t.Helper()
	sc := bufio.NewScanner(body)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for {
		ev := nextEvent(sc, &comments)
		if ev.name == "" && ev.data == "" {
			return events, comments
		}
		events = append(events, ev)
	}
}

func TestEvents(t *testing.T) {
	e := newEnv(t)
	want(t, e.start("1.0.0"), http.StatusCreated)
	st := func(stage string, green int, outcome string) workflows.Status {
		return workflows.Status{App: "shop", Version: "1.0.0", Stage: stage, Weights: workflows.Weights{Blue: 100 - green, Green: green}, Outcome: outcome, StartedAt: time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)}
	}
	seq := []workflows.Status{st("provision", 0, "running"), st("provision", 0, "running")}
	for range 6 { // ~60ms of the same status: heartbeats, no events
		seq = append(seq, st("soak", 10, "running"))
	}
	seq = append(seq, st("promote", 100, "running"), st("done", 100, "promoted"))
	e.f.statuses["shop"] = seq

	req, _ := http.NewRequest("GET", e.srv.URL+"/v1/releases/shop/events", nil)
	req.Header.Set("Authorization", "Bearer "+tokReader)
	resp, err := e.srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "text/event-stream" {
		t.Fatalf("status %d, Content-Type %q", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	e.v.Response(t, req, resp, nil)
	events, comments := readEvents(t, resp.Body)
	var names []string
	for _, ev := range events {
		names = append(names, ev.name)
		switch ev.name {
		case "status":
			e.v.Schema(t, "Status", []byte(ev.data))
		case "outcome":
			e.v.Schema(t, "OutcomeEvent", []byte(ev.data))
			var o OutcomeEvent
			_ = json.Unmarshal([]byte(ev.data), &o)
			if o.Outcome != "promoted" || o.App != "shop" {
				t.Errorf("outcome %+v", o)
			}
		}
	}
	if want := []string{"status", "status", "status", "status", "outcome"}; !slices.Equal(names, want) {
		t.Errorf("events %v, want %v (one per change, then the outcome)", names, want)
	}
	if comments == 0 {
		t.Error("no heartbeat comment")
	}
}

func TestEventsStopWhenTheClientGoes(t *testing.T) {
	e := newEnv(t)
	want(t, e.start("1.0.0"), http.StatusCreated)
	req, _ := http.NewRequest("GET", e.srv.URL+"/v1/releases/shop/events", nil)
	req.Header.Set("Authorization", "Bearer "+tokReader)
	resp, err := e.srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	br := bufio.NewReader(resp.Body)
	if line, _ := br.ReadString('\n'); line != "event: status\n" {
		t.Fatalf("first line %q", line)
	}
	resp.Body.Close()
	time.Sleep(100 * time.Millisecond)
	n := e.f.callCount("status")
	time.Sleep(200 * time.Millisecond)
	if m := e.f.callCount("status"); m != n {
		t.Errorf("the stream went on polling after its client left (%d -> %d status reads)", n, m)
	}
	// Close ends streams (http.Server.Shutdown calls it).
	resp2, err := e.srv.Client().Do(req.Clone(req.Context()))
	if err != nil {
		t.Fatal(err)
	}
	defer resp2.Body.Close()
	done := make(chan struct{})
	go func() { _, _ = io.Copy(io.Discard, resp2.Body); close(done) }()
	time.Sleep(50 * time.Millisecond)
	e.s.Close()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Error("Close did not end the stream")
	}
}

func TestTokensFile(t *testing.T) {
	h := HashToken("s3cret")
	sum := sha256.Sum256([]byte("s3cret"))
	if h != hex.EncodeToString(sum[:]) {
		t.Fatalf("HashToken %s", h)
	}
	good := "tokens:\n  - {name: ci, sha256: " + h + ", scopes: [release:start, release:read]}\n"
	toks, err := ParseTokens([]byte(good))
	if err != nil || len(toks) != 1 || toks[0].Name != "ci" {
		t.Fatalf("ParseTokens: %+v, %v", toks, err)
	}
	js := `{"tokens": [{"name": "ci", "sha256": "` + strings.ToUpper(h) + `", "scopes": ["release:read"]}]}`
	if _, err := ParseTokens([]byte(js)); err != nil {
		t.Errorf("JSON tokens file: %v", err)
	}
	for name, bad := range map[string]string{
		"empty":          "",
		"no tokens":      "tokens: []\n",
		"unknown field":  "tokens:\n  - {name: ci, token: s3cret, sha256: " + h + ", scopes: [release:read]}\n",
		"short hash":     "tokens:\n  - {name: ci, sha256: abc, scopes: [release:read]}\n",
		"unknown scope":  "tokens:\n  - {name: ci, sha256: " + h + ", scopes: [release:*]}\n",
		"no scopes":      "tokens:\n  - {name: ci, sha256: " + h + "}\n",
		"duplicate name": "tokens:\n  - {name: ci, sha256: " + h + ", scopes: [release:read]}\n  - {name: ci, sha256: " + HashToken("other") + ", scopes: [release:read]}\n",
		"duplicate hash": "tokens:\n  - {name: ci, sha256: " + h + ", scopes: [release:read]}\n  - {name: cd, sha256: " + h + ", scopes: [release:read]}\n",
		"bad name":       "tokens:\n  - {name: 'c i', sha256: " + h + ", scopes: [release:read]}\n",
	} {
		if _, err := ParseTokens([]byte(bad)); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
	if _, err := New(Config{}, newFake(), nil, nil); err == nil {
		t.Error("New without tokens: no error")
	}
	for in, want := range map[string]string{"s3cret\n": "s3cret", "  s3cret \r\n": "s3cret", "s3cret": "s3cret"} {
		if got, err := ReadToken(strings.NewReader(in)); err != nil || got != want {
			t.Errorf("ReadToken(%q) = %q, %v", in, got, err)
		}
	}
	for _, in := range []string{"", "\n", "a b\n"} {
		if _, err := ReadToken(strings.NewReader(in)); err == nil {
			t.Errorf("ReadToken(%q): no error", in)
		}
	}
}

func TestEventsLimitsAndHEAD(t *testing.T) {
	e := newEnv(t, func(c *Config) { c.MaxStreams = 1 })
	want(t, e.start("1.0.0"), http.StatusCreated)

	// HEAD answers the headers and does not follow the release.
	r := e.do("HEAD", "/v1/releases/shop/events", tokReader, nil)
	want(t, r, http.StatusOK)
	if r.Header.Get("Content-Type") != "text/event-stream" {
		t.Errorf("HEAD Content-Type %q", r.Header.Get("Content-Type"))
	}

	req, _ := http.NewRequest("GET", e.srv.URL+"/v1/releases/shop/events", nil)
	req.Header.Set("Authorization", "Bearer "+tokReader)
	resp, err := e.srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if line, _ := bufio.NewReader(resp.Body).ReadString('\n'); line != "event: status\n" {
		t.Fatalf("first line %q", line)
	}
	r = e.do("GET", "/v1/releases/shop/events", tokReader, nil)
	want(t, r, http.StatusServiceUnavailable)
	if r.Header.Get("Retry-After") == "" {
		t.Error("503 without Retry-After")
	}
	r.problem(t)
}
