package router

import (
	"bytes"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"reflect"
	"slices"
	"strconv"
	"strings"

	jsonv2 "github.com/go-json-experiment/json"
	"github.com/go-json-experiment/json/jsontext"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// maxBody bounds admin request bodies.
const maxBody = 1 << 20

// apiError is an error the caller made; it becomes a JSON error with its status.
type apiError struct {
	status int
	msg    string
}

func (e *apiError) Error() string { return e.msg }

func badRequest(format string, args ...any) error {
	return &apiError{http.StatusBadRequest, fmt.Sprintf(format, args...)}
}

func (r *Router) adminHandler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) { _, _ = io.WriteString(w, "ok\n") })
	mux.HandleFunc("GET /v1/state", func(w http.ResponseWriter, _ *http.Request) { writeJSON(w, http.StatusOK, r.State()) })
	mux.HandleFunc("PUT /v1/weights", r.putWeights)
	mux.HandleFunc("PUT /v1/pools/{color}", r.putPool)
	mux.HandleFunc("POST /v1/swap", r.postSwap)
	mux.HandleFunc("PUT /v1/maintenance", r.putMaintenance)
	if r.gatherer != nil {
		mux.Handle("GET /metrics", promhttp.HandlerFor(r.gatherer, promhttp.HandlerOpts{}))
	}
	return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		open := req.URL.Path == "/healthz" || (req.URL.Path == "/metrics" && r.cfg.MetricsOpen)
		if !open && !r.authorized(req) {
			r.log.Warn("admin request refused: missing or wrong token", "method", req.Method, "path", req.URL.Path, "remote", req.RemoteAddr)
			w.Header().Set("WWW-Authenticate", `Bearer realm="cutover-router"`)
			writeJSON(w, http.StatusUnauthorized, ErrorResponse{Error: "missing or wrong bearer token"})
			return
		}
		mux.ServeHTTP(w, req)
	})
}

// authorized checks the bearer token. Both sides are hashed first, so the
// comparison takes the same time whatever the token's length.
func (r *Router) authorized(req *http.Request) bool {
	scheme, tok, ok := strings.Cut(req.Header.Get("Authorization"), " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return false
	}
	got := sha256.Sum256([]byte(strings.TrimSpace(tok)))
	return subtle.ConstantTimeCompare(got[:], r.tokenHash[:]) == 1
}

// The admin API's request bodies as the server reads them: a field left out
// is nil, which a zero value could not tell.
type (
	weightsBody struct {
		Blue  *int `json:"blue"`
		Green *int `json:"green"`
	}
	poolBody struct {
		Instances *[]string `json:"instances"`
	}
	maintenanceBody struct {
		Enabled *bool `json:"enabled"`
	}
)

func (r *Router) putWeights(w http.ResponseWriter, req *http.Request) {
	var body weightsBody
	if err := decode(w, req, &body); err != nil {
		writeError(w, err)
		return
	}
	g, err := greenWeight(body.Blue, body.Green)
	if err != nil {
		writeError(w, err)
		return
	}
	var before int
	changed, err := r.change(func(t *table) (bool, error) {
		before = t.green
		t.green = g
		return before != g, nil
	})
	if err != nil {
		writeError(w, err)
		return
	}
	r.log.Info("weights set", "blue", 100-g, "green", g, "before_green", before, "changed", changed, "remote", req.RemoteAddr)
	writeJSON(w, http.StatusOK, r.State())
}

// greenWeight resolves a weights request to green's weight.
func greenWeight(b, g *int) (int, error) {
	switch {
	case g != nil && (*g < 0 || *g > 100):
		return 0, badRequest("green weight %d is outside 0..100", *g)
	case b != nil && (*b < 0 || *b > 100):
		return 0, badRequest("blue weight %d is outside 0..100", *b)
	case b != nil && g != nil && *b+*g != 100:
		return 0, badRequest("blue weight %d and green weight %d do not add up to 100", *b, *g)
	case g != nil:
		return *g, nil
	case b != nil:
		return 100 - *b, nil
	}
	return 0, badRequest(`want {"green": 0..100}`)
}

func (r *Router) putPool(w http.ResponseWriter, req *http.Request) {
	name := req.PathValue("color")
	c, ok := parseColor(name)
	if !ok {
		writeError(w, badRequest("unknown color %q: want blue or green", name))
		return
	}
	var body poolBody
	if err := decode(w, req, &body); err != nil {
		writeError(w, err)
		return
	}
	if body.Instances == nil {
		writeError(w, badRequest(`want {"instances": [...]} (an empty list empties the pool)`))
		return
	}
	urls, err := parseInstanceURLs(*body.Instances)
	if err != nil {
		writeError(w, badRequest("%v", err))
		return
	}
	var fresh []*instance
	var added, removed []string
	changed, err := r.change(func(t *table) (bool, error) {
		fresh, added, removed = nil, nil, nil
		known := t.byURL() // reuse instances by URL, so they keep their health
		pool := make([]*instance, 0, len(urls))
		for _, u := range urls {
			in := known[u.String()]
			if in == nil {
				in = newInstance(u)
				fresh = append(fresh, in)
			}
			pool = append(pool, in)
		}
		for _, in := range pool {
			if !slices.Contains(t.pools[c], in) {
				added = append(added, in.key)
			}
		}
		for _, in := range t.pools[c] {
			if !slices.Contains(pool, in) {
				removed = append(removed, in.key)
			}
		}
		same := slices.Equal(pool, t.pools[c])
		t.pools[c] = pool
		return !same, nil
	})
	if err != nil {
		writeError(w, err)
		return
	}
	// New instances start unhealthy; check them now rather than leave them out of
	// rotation until the next round. Removed instances need nothing: requests
	// already sent to them finish on their own.
	r.checkAll(req.Context(), fresh)
	r.log.Info("pool set", "color", name, "instances", len(urls), "added", added, "removed", removed, "changed", changed, "remote", req.RemoteAddr)
	writeJSON(w, http.StatusOK, r.State())
}

func (r *Router) postSwap(w http.ResponseWriter, req *http.Request) {
	var moved []string
	changed, err := r.change(func(t *table) (bool, error) {
		if len(t.pools[green]) == 0 {
			if t.green == 0 {
				return false, nil // already swapped: a retried swap is a no-op
			}
			return false, &apiError{http.StatusConflict, fmt.Sprintf("green is empty but has weight %d: nothing to swap", t.green)}
		}
		for _, in := range t.pools[green] {
			moved = append(moved, in.key)
		}
		t.pools[blue], t.pools[green], t.green = t.pools[green], nil, 0
		return true, nil
	})
	if err != nil {
		writeError(w, err)
		return
	}
	r.log.Info("pools swapped", "blue", moved, "changed", changed, "remote", req.RemoteAddr)
	writeJSON(w, http.StatusOK, r.State())
}

func (r *Router) putMaintenance(w http.ResponseWriter, req *http.Request) {
	var body maintenanceBody
	if err := decode(w, req, &body); err != nil {
		writeError(w, err)
		return
	}
	if body.Enabled == nil {
		writeError(w, badRequest(`want {"enabled": true|false}`))
		return
	}
	on := *body.Enabled
	changed, err := r.change(func(t *table) (bool, error) {
		was := t.maintenance
		t.maintenance = on
		return was != on, nil
	})
	if err != nil {
		writeError(w, err)
		return
	}
	r.log.Info("maintenance set", "enabled", on, "changed", changed, "remote", req.RemoteAddr)
	writeJSON(w, http.StatusOK, r.State())
}

// change applies fn to a copy of the routing table, saves it and publishes it,
// so the state file never says less than the router does. fn reports whether it
// changed anything; an unchanged table is neither saved nor published.
func (r *Router) change(fn func(t *table) (bool, error)) (bool, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	next := r.table.Load().clone()
	changed, err := fn(next)
	if err != nil || !changed {
		return false, err
	}
	if r.cfg.StateFile != "" {
		if err := saveState(r.cfg.StateFile, next); err != nil {
			r.log.Error("change refused: cannot save state", "err", err)
			return false, fmt.Errorf("save state: %w", err)
		}
	}
	r.publish(next)
	return true, nil
}

func (r *Router) publish(t *table) {
	old := r.table.Swap(t)
	r.metrics.setWeights(t)
	if old == nil {
		return
	}
	// An instance that left both pools takes no new requests: its idle
	// connections would only wait for the app to close them.
	kept := t.byURL()
	for _, in := range old.all() {
		if kept[in.key] != in {
			in.idle.closeAll()
		}
	}
}

// decode reads a JSON body of at most maxBody bytes into v with decodeJSON.
func decode(w http.ResponseWriter, req *http.Request, v any) error {
	body, err := io.ReadAll(http.MaxBytesReader(w, req.Body, maxBody))
	if mbe := (*http.MaxBytesError)(nil); errors.As(err, &mbe) {
		return &apiError{http.StatusRequestEntityTooLarge, fmt.Sprintf("request body is larger than %d bytes", maxBody)}
	}
	if err != nil {
		return badRequest("cannot read the body: %v", err)
	}
	return decodeJSON(body, v)
}

// decodeJSON decodes a request body into v strictly: a name matches its
// field's exactly (case and all), and a name given twice, a name v lacks, or
// anything after the value is refused, in one line naming the field.
// encoding/json would take {"Green": 10} for "green" and the last of two
// "green"s, so a typo or a smuggled duplicate could pass for another value.
// github.com/go-json-experiment/json, the Go team's json/v2 as a public
// module (the standard library's encoding/json/v2 needs GOEXPERIMENT=jsonv2,
// which our build does not set), does all of this by default but the
// unknown names, which RejectUnknownMembers adds; it also refuses strings
// that are not UTF-8.
func decodeJSON(body []byte, v any) error {
	if len(bytes.TrimSpace(body)) == 0 {
		return badRequest("empty body: want a JSON object")
	}
	if err := jsonv2.Unmarshal(body, v, jsonv2.RejectUnknownMembers(true)); err != nil {
		return badRequest("bad JSON body: %s", jsonProblem(err))
	}
	return nil
}

// jsonProblem words a json/v2 error in one line, naming the field at fault.
func jsonProblem(err error) string {
	var sem *jsonv2.SemanticError
	var syn *jsontext.SyntacticError
	switch {
	case errors.As(err, &sem):
		field := fieldName(sem.JSONPointer)
		got := kindName(sem.JSONKind)
		if len(sem.JSONValue) > 0 && sem.JSONKind == '0' {
			got = string(sem.JSONValue)
		}
		switch {
		case errors.Is(sem.Err, jsonv2.ErrUnknownName):
			return fmt.Sprintf("unknown field %q (names are case-sensitive)", field)
		case field == "":
			return "want a JSON object, got " + got
		}
		return fmt.Sprintf("field %q: want %s, got %s", field, typeName(sem.GoType), got)
	case errors.As(err, &syn):
		field := fieldName(syn.JSONPointer)
		switch {
		case errors.Is(syn.Err, jsontext.ErrDuplicateName):
			return fmt.Sprintf("duplicate field %q", field)
		case strings.Contains(syn.Err.Error(), "after top-level value"):
			return fmt.Sprintf("unexpected data after the JSON value at byte %d", syn.ByteOffset)
		case field != "":
			return fmt.Sprintf("field %q at byte %d: %v", field, syn.ByteOffset, syn.Err)
		}
		return fmt.Sprintf("at byte %d: %v", syn.ByteOffset, syn.Err)
	case errors.Is(err, io.ErrUnexpectedEOF):
		return "the JSON value ends early"
	}
	return err.Error()
}

// fieldName is a JSON pointer as a field path: /instances/1 is instances[1].
func fieldName(p jsontext.Pointer) string {
	var b strings.Builder
	for tok := range p.Tokens() {
		if _, err := strconv.Atoi(tok); err == nil && b.Len() > 0 {
			b.WriteString("[" + tok + "]")
			continue
		}
		if b.Len() > 0 {
			b.WriteByte('.')
		}
		b.WriteString(tok)
	}
	return b.String()
}

func kindName(k jsontext.Kind) string {
	switch k {
	case '"':
		return "a string"
	case '0':
		return "a number"
	case 't', 'f':
		return "true or false"
	case 'n':
		return "null"
	case '{':
		return "an object"
	case '[':
		return "a list"
	}
	return "something else"
}

func typeName(t reflect.Type) string {
	for t != nil && t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	switch {
	case t == nil:
		return "something else"
	case t.Kind() >= reflect.Int && t.Kind() <= reflect.Int64:
		return "an integer"
	case t.Kind() == reflect.Bool:
		return "true or false"
	case t.Kind() == reflect.String:
		return "a string"
	case t.Kind() == reflect.Slice:
		return "a list"
	}
	return "an object"
}

func writeError(w http.ResponseWriter, err error) {
	var ae *apiError
	if errors.As(err, &ae) {
		writeJSON(w, ae.status, ErrorResponse{Error: ae.msg})
		return
	}
	writeJSON(w, http.StatusInternalServerError, ErrorResponse{Error: err.Error()})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}
