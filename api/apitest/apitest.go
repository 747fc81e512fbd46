// Package apitest checks HTTP responses of Cutover's API against its OpenAPI
// document, for the API's unit tests and the end-to-end tests. Only tests
// import it.
package apitest

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"mime"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
	"github.com/getkin/kin-openapi/routers/legacy"
)

// Validator validates responses against an OpenAPI document.
type Validator struct {
	Doc    *openapi3.T
	router routers.Router
}

// Load parses and validates the OpenAPI document.
func Load(t testing.TB, doc []byte) *Validator {
	t.Helper()
	l := openapi3.NewLoader()
	d, err := l.LoadFromData(doc)
	if err != nil {
		t.Fatalf("load the OpenAPI document: %v", err)
	}
	if err := d.Validate(context.Background()); err != nil {
		t.Fatalf("the OpenAPI document is not valid: %v", err)
	}
	// Route by path only: the test servers listen on other ports than the
	// document's server.
	d.Servers = nil
	r, err := legacy.NewRouter(d)
	if err != nil {
		t.Fatalf("route the OpenAPI document: %v", err)
	}
	return &Validator{Doc: d, router: r}
}

// Response checks one response (its status, headers and body) against the
// operation the request matches. A request that matches no operation must
// have been answered with a problem (404 or 405). An event stream's body is
// not checked here: check each event's data with Schema.
func (v *Validator) Response(t testing.TB, req *http.Request, resp *http.Response, body []byte) {
	t.Helper()
	mt, _, _ := mime.ParseMediaType(resp.Header.Get("Content-Type"))
	if mt == "application/problem+json" {
		v.Schema(t, "Problem", body)
	}
	r := req.Clone(context.Background())
	r.URL = &url.URL{Path: req.URL.Path, RawPath: req.URL.RawPath, RawQuery: req.URL.RawQuery}
	if r.Method == http.MethodHead {
		r.Method = http.MethodGet // HEAD is GET without a body
	}
	route, params, err := v.router.FindRoute(r)
	if err != nil {
		if resp.StatusCode != http.StatusNotFound && resp.StatusCode != http.StatusMethodNotAllowed {
			t.Errorf("%s %s matches no operation of the OpenAPI document (%v) but was answered %d", req.Method, req.URL.Path, err, resp.StatusCode)
		}
		return
	}
	if req.Method == http.MethodHead {
		return
	}
	in := &openapi3filter.ResponseValidationInput{
		RequestValidationInput: &openapi3filter.RequestValidationInput{
			Request: r, PathParams: params, Route: route,
			Options: &openapi3filter.Options{AuthenticationFunc: openapi3filter.NoopAuthenticationFunc},
		},
		Status: resp.StatusCode,
		Header: resp.Header,
		Body:   io.NopCloser(bytes.NewReader(body)),
		Options: &openapi3filter.Options{
			IncludeResponseStatus: true,
			ExcludeResponseBody:   mt == "text/event-stream",
			MultiError:            true,
		},
	}
	if err := openapi3filter.ValidateResponse(context.Background(), in); err != nil {
		t.Errorf("%s %s answered %d, which the OpenAPI document does not allow: %v\nbody: %s", req.Method, req.URL.Path, resp.StatusCode, err, clip(body))
	}
}

// Schema checks JSON data against a schema of components.schemas.
func (v *Validator) Schema(t testing.TB, name string, data []byte) {
	t.Helper()
	ref, ok := v.Doc.Components.Schemas[name]
	if !ok {
		t.Fatalf("the OpenAPI document has no schema %s", name)
	}
	var val any
	if err := json.Unmarshal(data, &val); err != nil {
		t.Errorf("not JSON, want a %s: %v: %s", name, err, clip(data))
		return
	}
	if err := ref.Value.VisitJSON(val, openapi3.MultiErrors()); err != nil {
		t.Errorf("not a valid %s: %v\n%s", name, err, clip(data))
	}
}

// Scope returns an operation's x-cutover-scope ("" when it has none).
func (v *Validator) Scope(method, path string) string {
	item := v.Doc.Paths.Value(path)
	if item == nil {
		return ""
	}
	op := item.GetOperation(method)
	if op == nil {
		return ""
	}
	s, _ := op.Extensions["x-cutover-scope"].(string)
	return s
}

// Operations lists the document's "METHOD /path" pairs.
func (v *Validator) Operations() []string {
	var out []string
	for path, item := range v.Doc.Paths.Map() {
		for method := range item.Operations() {
			out = append(out, strings.ToUpper(method)+" "+path)
		}
	}
	return out
}

func clip(b []byte) string {
	if len(b) > 2000 {
		return string(b[:2000]) + "..."
	}
	return string(b)
}
