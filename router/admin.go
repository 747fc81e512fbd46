package router

import (
	"crypto/sha256"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"

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

func (r *Router) putWeights(w http.ResponseWriter, req *http.Request) {
	var body struct {
		Blue  *int `json:"blue"`
		Green *int `json:"green"`
	}
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
	var body struct {
		Instances *[]string `json:"instances"`
	}
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
	var body struct {
		Enabled *bool `json:"enabled"`
	}
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
	r.table.Store(t)
	r.metrics.setWeights(t)
}

// decode reads a JSON body of at most maxBody bytes into v, refusing unknown
// fields so that a typo cannot pass for an empty value.
func decode(w http.ResponseWriter, req *http.Request, v any) error {
	dec := json.NewDecoder(http.MaxBytesReader(w, req.Body, maxBody))
	dec.DisallowUnknownFields()
	err := dec.Decode(v)
	switch {
	case err == nil && dec.Decode(&struct{}{}) != io.EOF:
		err = errors.New("unexpected data after the JSON value")
	case errors.Is(err, io.EOF):
		err = errors.New("empty body")
	}
	if err == nil {
		return nil
	}
	if mbe := (*http.MaxBytesError)(nil); errors.As(err, &mbe) {
		return &apiError{http.StatusRequestEntityTooLarge, fmt.Sprintf("request body is larger than %d bytes", maxBody)}
	}
	return badRequest("bad JSON body: %v", err)
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
