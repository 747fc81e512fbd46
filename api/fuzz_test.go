package api

import (
	"bytes"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cutoverhq/cutover/apps"
	"github.com/cutoverhq/cutover/providers/builtin"
	"github.com/cutoverhq/cutover/spec"
)

// FuzzStartRequest sends arbitrary bodies and media types to POST
// /v1/releases with a start token. Whatever comes in, the API never answers
// 5xx or panics, and it starts a release only for a request that parses as
// one, names no provider and names the one defined app.
func FuzzStartRequest(f *testing.F) {
	for _, seed := range []struct{ body, ct string }{
		{shop("1.0.0"), "application/yaml"},
		{`{"app": "shop", "version": "1.0.1"}`, "application/json"},
		{"app: shop\nversion: 1.0.2\nplan: [provision, validate, setWeight: 10, soak: {duration: 5s}, approval, promote]\n", "text/yaml"},
		{"app: shop\nversion: 6.6.6\nproviders:\n  environment: {type: local, settings: {command: [sh, -c, id]}}\n", "application/yaml"},
		{"app: cart\nversion: 1.0.0\n", "application/yaml"},
		{"app: shop\nversion: ../../etc/x\n", "application/yaml"},
		{"app: shop\nversion: 1.0.0\nallowSelfApproval: yes\n", "application/yaml"},
		{"app: shop\nversion: 1.0.0\njudge: {maxIncrease: 0.5}\n", "application/yaml"},
		{"a: &a [x, x]\nb: &b [*a, *a]\nc: [*b, *b]\napp: shop\nversion: 1\n", "application/yaml"},
		{"{\"app\": \"shop\",\n \"version\": \"1.0", "application/json"},
		{"", "text/plain"},
	} {
		f.Add([]byte(seed.body), seed.ct)
	}
	dir := f.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "shop.yaml"), []byte(shopDefinition), 0o644); err != nil {
		f.Fatal(err)
	}
	log := slog.New(slog.DiscardHandler)
	defs, err := apps.NewStore(dir, apps.Mode{}, builtin.NewRegistry(log).Check)
	if err != nil {
		f.Fatal(err)
	}
	fk := newFake()
	s, err := New(Config{Tokens: testTokens()}, fk, defs, log)
	if err != nil {
		f.Fatal(err)
	}
	h := s.Handler()
	f.Fuzz(func(t *testing.T, body []byte, contentType string) {
		before := fk.callCount("start")
		req := httptest.NewRequest(http.MethodPost, "/v1/releases", bytes.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+tokStarter)
		req.Header.Set("Content-Type", contentType)
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if rec.Code >= 500 {
			t.Fatalf("%d for %q: %s", rec.Code, body, rec.Body)
		}
		if fk.callCount("start") == before {
			return
		}
		rel, err := spec.ParseRequest(body)
		switch {
		case err != nil:
			t.Fatalf("started a release from %q, which is not a request: %v", body, err)
		case !rel.Providers.IsZero():
			t.Fatalf("started a release from %q, which names providers", body)
		case rel.App != "shop":
			t.Fatalf("started a release of %q, which has no definition", rel.App)
		case strings.ContainsAny(rel.Version, "/\\\x00\x1b"):
			t.Fatalf("started a release of version %q", rel.Version)
		}
	})
}
