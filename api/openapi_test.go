package api

import (
	"net/http"
	"net/http/httptest"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/cutoverhq/cutover/api/apitest"
)

var pathParam = regexp.MustCompile(`\{[^}]+\}`)

// TestOpenAPIMatchesRoutes checks the document against the real routes: every
// operation it describes is routed (neither 404 nor 405 from the router), with
// the scope it names, and every route is described.
func TestOpenAPIMatchesRoutes(t *testing.T) {
	e := newEnv(t)
	v := apitest.Load(t, OpenAPI())
	ops := v.Operations()
	if len(ops) < 10 {
		t.Fatalf("only %d operations in the document", len(ops))
	}
	for _, op := range ops {
		method, path, _ := strings.Cut(op, " ")
		concrete := pathParam.ReplaceAllString(path, "shop")
		req := httptest.NewRequest(method, concrete, nil)
		if _, pattern := e.s.mux.Handler(req); pattern == "" {
			t.Errorf("%s is in the document but not routed", op)
			continue
		}
		// Through the whole handler, too: no token answers 401 on a route
		// with a scope, never 404 or 405.
		rec := httptest.NewRecorder()
		e.s.Handler().ServeHTTP(rec, req)
		if rec.Code == http.StatusNotFound || rec.Code == http.StatusMethodNotAllowed {
			t.Errorf("%s (%s) answered %d", op, concrete, rec.Code)
		}
	}
	for _, r := range e.s.routes {
		op := r.method + " " + r.path
		if !slices.Contains(ops, op) {
			t.Errorf("route %s is not in the OpenAPI document", op)
			continue
		}
		if got := v.Scope(r.method, r.path); got != r.scope {
			t.Errorf("%s: the document says scope %q, the route needs %q", op, got, r.scope)
		}
	}
	if len(ops) != len(e.s.routes) {
		t.Errorf("%d operations in the document, %d routes", len(ops), len(e.s.routes))
	}
}
