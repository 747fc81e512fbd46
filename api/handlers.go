package api

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode"

	"go.temporal.io/api/serviceerror"

	"github.com/cutoverhq/cutover/identity"
	"github.com/cutoverhq/cutover/releases"
	"github.com/cutoverhq/cutover/spec"
	"github.com/cutoverhq/cutover/temporalconn"
	"github.com/cutoverhq/cutover/workflows"
)

// StartResponse is the answer to a start, and to its replays.
type StartResponse struct {
	App        string `json:"app"`
	Version    string `json:"version"`
	WorkflowID string `json:"workflowId"`
	RunID      string `json:"runId"`
	Links      Links  `json:"links"`
}

// Links point at a release run: self (its status) and events are paths on this
// API that follow this run only (a CI job that reconnects re-attaches to its own
// release, never a later one), ui is the run's page in the Temporal Web UI.
type Links struct {
	Self   string `json:"self"`
	Events string `json:"events"`
	UI     string `json:"ui"`
}

// DecisionRequest is the body of a decision. Both fields are optional but
// abort needs a reason.
type DecisionRequest struct {
	// By says who decided; the token's name is added to it (see actor).
	By     string `json:"by"`
	Reason string `json:"reason"`
}

// DecisionResponse is an accepted decision and the release's answer.
type DecisionResponse struct {
	App    string `json:"app"`
	Action string `json:"action"`
	By     string `json:"by"`
	Answer string `json:"answer"`
}

// ReleaseList is the answer of GET /v1/releases.
type ReleaseList struct {
	Releases []releases.Summary `json:"releases"`
}

// OutcomeEvent is the data of an event stream's last event.
type OutcomeEvent struct {
	App     string `json:"app"`
	Version string `json:"version"`
	Outcome string `json:"outcome"`
	Reason  string `json:"reason,omitempty"`
}

// Limits on what a caller may write into a release's record.
const (
	maxByLength     = 100
	maxReasonLength = 1000
	maxCIRunLength  = 500
	maxKeyLength    = 255
	maxListLimit    = 1000
	defaultLimit    = 50
)

// actor is who acted, as the release records it: the name the caller gave with
// the token's name, or the token's name alone. The token's name is always
// there, since only the token is authenticated.
func actor(by, token string) string {
	if by == "" {
		return "api token " + token
	}
	return by + " (api token " + token + ")"
}

// tokenPrincipal is who an API request acts as: the token, by its name.
func tokenPrincipal(t Token) identity.Principal {
	return identity.Principal{Door: identity.API, ID: t.Name}
}

func (s *Server) links(app, runID string) Links {
	self := "/v1/releases/" + app + "/runs/" + url.PathEscape(runID)
	return Links{
		Self:   self,
		Events: self + "/events",
		UI: fmt.Sprintf("%s/namespaces/%s/workflows/%s/%s/history", s.cfg.UIURL,
			url.PathEscape(s.cfg.Namespace), url.PathEscape(spec.WorkflowID(app)), url.PathEscape(runID)),
	}
}

func (s *Server) startResponse(app, version, workflowID, runID string) StartResponse {
	return StartResponse{App: app, Version: version, WorkflowID: workflowID, RunID: runID, Links: s.links(app, runID)}
}

var specTypes = []string{"application/yaml", "application/x-yaml", "text/yaml", "text/x-yaml", "application/json", "text/plain"}

// start is POST /v1/releases: the body is the release spec.
func (s *Server) start(w http.ResponseWriter, r *http.Request) {
	tok := tokenOf(r)
	key, ok := s.idempotencyKey(w, r)
	if !ok || !s.mediaType(w, r, specTypes) {
		return
	}
	by, ok := s.textHeader(w, r, "Cutover-By", maxByLength)
	if !ok {
		return
	}
	ciRun, ok := s.textHeader(w, r, "Cutover-CI-Run", maxCIRunLength)
	if !ok {
		return
	}
	body, ok := s.readBody(w, r)
	if !ok {
		return
	}
	rel, err := spec.ParseRequest(body)
	if err != nil {
		var ps spec.Problems
		if errors.As(err, &ps) {
			s.specProblem(w, r, ps)
			return
		}
		s.problem(w, r, http.StatusBadRequest, "bad-request", err.Error(), nil)
		return
	}
	if s.apps != nil {
		if _, err := s.apps.Resolve(rel); err != nil {
			s.log.Warn("release refused", "app", rel.App, "version", rel.Version, "principal", "api:"+tok.Name, "reason", err.Error())
			s.problem(w, r, http.StatusForbidden, "release-refused", err.Error(), nil)
			return
		}
	}
	if key != "" {
		if prev, ok := s.idem.get(tok.Name, key); ok {
			if prev.App != rel.App || prev.Version != rel.Version {
				s.problem(w, r, http.StatusUnprocessableEntity, "idempotency-key-reused",
					fmt.Sprintf("this Idempotency-Key started %s %s; use a new key for %s %s", prev.App, prev.Version, rel.App, rel.Version), nil)
				return
			}
			s.replay(w, prev)
			return
		}
	}
	ctx, cancel := context.WithTimeout(r.Context(), s.cfg.RequestTimeout)
	defer cancel()
	origin := releases.Origin{Principal: tokenPrincipal(tok), By: actor(by, tok.Name), Via: "api", CIRun: ciRun}
	// A start either starts the release or finds the app's release in
	// progress; when that one ends meanwhile, it starts again (at most twice).
	for range 3 {
		started, err := s.rc.Start(ctx, rel, origin)
		if err == nil {
			resp := s.startResponse(rel.App, rel.Version, started.WorkflowID, started.RunID)
			if key != "" {
				s.idem.put(tok.Name, key, resp)
			}
			s.log.Info("release started", "app", rel.App, "version", rel.Version, "run_id", started.RunID, "by", origin.By)
			w.Header().Set("Location", resp.Links.Self)
			writeJSON(w, http.StatusCreated, resp)
			return
		}
		var running *releases.AlreadyRunningError
		if !errors.As(err, &running) {
			s.releaseError(w, r, rel.App, err)
			return
		}
		run, err := s.rc.Current(ctx, rel.App)
		switch {
		case errors.Is(err, releases.ErrNotFound):
			continue
		case err != nil:
			s.releaseError(w, r, rel.App, err)
			return
		case !run.Running:
			continue
		case run.Version == rel.Version:
			resp := s.startResponse(rel.App, run.Version, run.WorkflowID, run.RunID)
			if key != "" {
				s.idem.put(tok.Name, key, resp)
			}
			s.replay(w, resp)
			return
		}
		stage := running.Stage
		if stage == "" || stage == "?" {
			stage = run.Stage
		}
		s.problem(w, r, http.StatusConflict, "release-in-progress",
			fmt.Sprintf("%s already has a release in progress: version %s at stage %s (workflow %s); wait for it to end or abort it (POST /v1/releases/%s/abort)",
				rel.App, run.Version, stage, run.WorkflowID, rel.App),
			func(p *Problem) {
				p.Running = &RunningRelease{App: rel.App, Version: run.Version, Stage: stage, WorkflowID: run.WorkflowID, RunID: run.RunID}
			})
		return
	}
	s.problem(w, r, http.StatusServiceUnavailable, "unavailable", "the app's releases kept starting and ending; try again", nil)
}

// replay answers a start that a release already answered.
func (s *Server) replay(w http.ResponseWriter, resp StartResponse) {
	w.Header().Set("Idempotent-Replayed", "true")
	w.Header().Set("Location", resp.Links.Self)
	writeJSON(w, http.StatusOK, resp)
}

// RunStatus is a release run's status and its run ID.
type RunStatus struct {
	workflows.Status
	RunID string `json:"runId"`
}

// status is GET /v1/releases/{app} (the app's current or last run) and GET
// /v1/releases/{app}/runs/{runID} (that run).
func (s *Server) status(w http.ResponseWriter, r *http.Request) {
	app, ok := s.appOf(w, r)
	if !ok {
		return
	}
	runID, ok := s.runOf(w, r)
	if !ok {
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), s.cfg.RequestTimeout)
	defer cancel()
	st, runID, err := s.rc.StatusRun(ctx, app, runID)
	if err != nil {
		s.releaseError(w, r, app, err)
		return
	}
	writeJSON(w, http.StatusOK, RunStatus{Status: st, RunID: runID})
}

var states = []string{workflows.OutcomeRunning, workflows.OutcomePromoted, workflows.OutcomeRolledBack, workflows.OutcomeAborted, workflows.OutcomeFailed}

// list is GET /v1/releases?app=&state=&limit=.
func (s *Server) list(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	for name := range q {
		if name != "app" && name != "state" && name != "limit" {
			s.problem(w, r, http.StatusBadRequest, "bad-request", fmt.Sprintf("unknown query parameter %q (known: app, state, limit)", name), nil)
			return
		}
	}
	f := releases.Filter{App: q.Get("app"), Limit: defaultLimit}
	if f.App != "" && !appName.MatchString(f.App) {
		s.problem(w, r, http.StatusBadRequest, "bad-request", fmt.Sprintf("app: %q is not a valid app name", f.App), nil)
		return
	}
	switch state := q.Get("state"); {
	case state == "":
	case state == workflows.OutcomeRunning:
		f.Running = true
	case slices.Contains(states, state):
		f.Outcome = state
	default:
		s.problem(w, r, http.StatusBadRequest, "bad-request", fmt.Sprintf("state: %q is not one of %s", state, strings.Join(states, ", ")), nil)
		return
	}
	if l := q.Get("limit"); l != "" {
		n, err := strconv.Atoi(l)
		if err != nil || n < 1 || n > maxListLimit {
			s.problem(w, r, http.StatusBadRequest, "bad-request", fmt.Sprintf("limit: %q is not a number from 1 to %d", l, maxListLimit), nil)
			return
		}
		f.Limit = n
	}
	ctx, cancel := context.WithTimeout(r.Context(), s.cfg.RequestTimeout)
	defer cancel()
	rows, err := s.rc.List(ctx, f)
	if err != nil {
		s.releaseError(w, r, f.App, err)
		return
	}
	if rows == nil {
		rows = []releases.Summary{}
	}
	writeJSON(w, http.StatusOK, ReleaseList{Releases: rows})
}

// decide is POST /v1/releases/{app}/{action}: a Temporal update, answered
// synchronously with the release's answer or its reason for refusing.
func (s *Server) decide(action string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		tok := tokenOf(r)
		app, ok := s.appOf(w, r)
		if !ok {
			return
		}
		key, ok := s.idempotencyKey(w, r)
		if !ok || !s.mediaType(w, r, []string{"application/json"}) {
			return
		}
		body, ok := s.readBody(w, r)
		if !ok {
			return
		}
		var req DecisionRequest
		if len(bytes.TrimSpace(body)) > 0 {
			dec := json.NewDecoder(bytes.NewReader(body))
			dec.DisallowUnknownFields()
			if err := dec.Decode(&req); err != nil {
				s.problem(w, r, http.StatusBadRequest, "bad-request", "the body is not a JSON object {by, reason}: "+err.Error(), nil)
				return
			}
			if _, err := dec.Token(); !errors.Is(err, io.EOF) {
				s.problem(w, r, http.StatusBadRequest, "bad-request", "the body has more after its JSON object", nil)
				return
			}
		}
		if msg := checkText("by", req.By, maxByLength, false); msg != "" {
			s.problem(w, r, http.StatusBadRequest, "bad-request", msg, nil)
			return
		}
		if msg := checkText("reason", req.Reason, maxReasonLength, true); msg != "" {
			s.problem(w, r, http.StatusBadRequest, "bad-request", msg, nil)
			return
		}
		if action == workflows.UpdateAbort && strings.TrimSpace(req.Reason) == "" {
			s.problem(w, r, http.StatusBadRequest, "bad-request", "abort needs a reason", nil)
			return
		}
		d := workflows.Decision{By: actor(strings.TrimSpace(req.By), tok.Name), Principal: tokenPrincipal(tok), Reason: strings.TrimSpace(req.Reason), Via: "api"}
		updateID := ""
		if key != "" {
			// Temporal answers a retried update with the same ID once.
			updateID = "api/" + tok.Name + "/" + action + "/" + key
		}
		ctx, cancel := context.WithTimeout(r.Context(), s.cfg.DecideTimeout)
		defer cancel()
		answer, err := s.rc.Decide(ctx, app, action, d, updateID)
		if errors.Is(err, releases.ErrRejected) {
			reason := strings.TrimSuffix(err.Error(), ": "+releases.ErrRejected.Error())
			reason = strings.TrimPrefix(reason, action+" "+app+": ")
			s.log.Info("decision rejected", "app", app, "action", action, "by", d.By, "reason", reason)
			s.problem(w, r, http.StatusConflict, "decision-rejected", reason, nil)
			return
		}
		if err != nil {
			s.releaseError(w, r, app, err)
			return
		}
		s.log.Info("decision accepted", "app", app, "action", action, "by", d.By)
		writeJSON(w, http.StatusOK, DecisionResponse{App: app, Action: action, By: d.By, Answer: answer})
	}
}

// events is GET /v1/releases/{app}/events and GET
// /v1/releases/{app}/runs/{runID}/events: server-sent events, one "status"
// event per change of the status, a comment every Heartbeat, and a last
// "outcome" event once the release has ended. The stream follows the run it
// read first. Each event has an id (run ID/mark), so a client that reconnects
// with Last-Event-ID gets only what it has not seen: no status it already has,
// and, after the outcome, 204 No Content (which tells an EventSource to stop).
func (s *Server) events(w http.ResponseWriter, r *http.Request) {
	app, ok := s.appOf(w, r)
	if !ok {
		return
	}
	runID, ok := s.runOf(w, r)
	if !ok {
		return
	}
	ctx := r.Context()
	read := func() (workflows.Status, error) {
		ctx, cancel := context.WithTimeout(ctx, s.cfg.RequestTimeout)
		defer cancel()
		st, id, err := s.rc.StatusRun(ctx, app, runID)
		if err == nil {
			runID = id // later reads follow this run, even when another starts
		}
		return st, err
	}
	st, err := read()
	if err != nil {
		s.releaseError(w, r, app, err)
		return
	}
	ended := func(st workflows.Status) bool {
		return st.Outcome != "" && st.Outcome != workflows.OutcomeRunning
	}
	last, _ := json.Marshal(RunStatus{Status: st, RunID: runID})
	seenRun, seen, _ := strings.Cut(r.Header.Get("Last-Event-ID"), "/")
	if seenRun != runID {
		seen = "" // another run's event (or none): this run is all new
	}
	if seen == outcomeMark && ended(st) {
		w.WriteHeader(http.StatusNoContent)
		return
	}
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("X-Accel-Buffering", "no")
	if r.Method == http.MethodHead {
		w.WriteHeader(http.StatusOK)
		return
	}
	select {
	case s.streams <- struct{}{}:
		defer func() { <-s.streams }()
	default:
		h.Del("Content-Type")
		h.Set("Retry-After", "10")
		s.problem(w, r, http.StatusServiceUnavailable, "too-many-streams",
			fmt.Sprintf("%d event streams are open, the most this server follows at once; try again later", cap(s.streams)), nil)
		return
	}
	rc := http.NewResponseController(w)
	_ = rc.SetReadDeadline(time.Time{}) // the stream outlives any read timeout
	w.WriteHeader(http.StatusOK)
	write := func(text string) bool {
		_ = rc.SetWriteDeadline(time.Now().Add(30 * time.Second)) // a stuck client does not hold the stream forever
		if _, err := io.WriteString(w, text); err != nil {
			return false
		}
		return rc.Flush() == nil
	}
	send := func(event, id string, v any) bool {
		data, err := json.Marshal(v)
		if err != nil {
			s.log.Error("event stream: encode", "app", app, "error", err.Error())
			return false
		}
		idLine := ""
		if id != "" {
			idLine = "id: " + runID + "/" + id + "\n"
		}
		return write("event: " + event + "\n" + idLine + "data: " + string(data) + "\n\n")
	}
	if mark := statusMark(last); mark != seen && !send("status", mark, json.RawMessage(last)) {
		return
	}
	poll := time.NewTicker(s.cfg.PollInterval)
	defer poll.Stop()
	beat := time.NewTicker(s.cfg.Heartbeat)
	defer beat.Stop()
	var failing time.Time
	for !ended(st) {
		select {
		case <-ctx.Done():
			return
		case <-s.closing:
			write(": the server is shutting down; reconnect\n\n")
			return
		case <-beat.C:
			if !write(": keep-alive\n\n") {
				return
			}
		case <-poll.C:
			next, err := read()
			if err != nil {
				if ctx.Err() != nil {
					return
				}
				if failing.IsZero() {
					failing = time.Now()
				}
				if time.Since(failing) > time.Minute {
					send("error", "", Problem{Type: ProblemTypeBase + "unavailable", Title: titles["unavailable"],
						Status: http.StatusServiceUnavailable, Detail: "cannot read the release's status: " + err.Error(), Instance: r.URL.Path})
					return
				}
				continue
			}
			failing = time.Time{}
			b, _ := json.Marshal(RunStatus{Status: next, RunID: runID})
			st = next
			if !bytes.Equal(b, last) {
				last = b
				if !send("status", statusMark(b), json.RawMessage(b)) {
					return
				}
			}
		}
	}
	send("outcome", outcomeMark, OutcomeEvent{App: st.App, Version: st.Version, Outcome: st.Outcome, Reason: st.Reason})
}

// outcomeMark ends the id of a stream's outcome event.
const outcomeMark = "outcome"

// statusMark identifies a status by its content: a reconnect whose
// Last-Event-ID names the status that is still current gets no copy of it.
// (The stream reads snapshots; there is no backlog of statuses to replay.)
func statusMark(status []byte) string {
	sum := sha256.Sum256(status)
	return hex.EncodeToString(sum[:8])
}

// releaseError answers an error from the releases client.
func (s *Server) releaseError(w http.ResponseWriter, r *http.Request, app string, err error) {
	var unavailable *serviceerror.Unavailable
	var deadline *serviceerror.DeadlineExceeded
	switch {
	case errors.Is(err, releases.ErrNotFound):
		s.problem(w, r, http.StatusNotFound, "not-found", fmt.Sprintf("no release found for app %q (GET /v1/releases lists the releases)", app), nil)
	case errors.Is(err, releases.ErrRejected):
		s.problem(w, r, http.StatusConflict, "decision-rejected", err.Error(), nil)
	case errors.Is(err, context.DeadlineExceeded), errors.As(err, &deadline):
		s.log.Warn("Temporal call timed out", "app", app, "path", r.URL.Path, "error", err.Error())
		s.problem(w, r, http.StatusGatewayTimeout, "timeout", "no answer in time: "+err.Error(), nil)
	case errors.Is(err, temporalconn.ErrUnreachable), errors.As(err, &unavailable):
		s.log.Error("Temporal is unavailable", "app", app, "path", r.URL.Path, "error", err.Error())
		s.problem(w, r, http.StatusServiceUnavailable, "unavailable", err.Error(), nil)
	default:
		s.log.Error("Temporal call failed", "app", app, "path", r.URL.Path, "error", err.Error())
		s.problem(w, r, http.StatusInternalServerError, "internal", err.Error(), nil)
	}
}

// readBody reads the request body up to the limit, answering 413 past it.
// The server's read timeout bounds how long the body may take: moving the
// read deadline here would lift it.
func (s *Server) readBody(w http.ResponseWriter, r *http.Request) ([]byte, bool) {
	limit := s.cfg.MaxBodyBytes
	if r.ContentLength > limit {
		s.problem(w, r, http.StatusRequestEntityTooLarge, "body-too-large", "the request body is larger than "+sizeText(limit), nil)
		return nil, false
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, limit))
	if err != nil {
		s.bodyProblem(w, r, err)
		return nil, false
	}
	return body, true
}

// mediaType answers 415 unless the body's Content-Type is one of allowed (or
// absent).
func (s *Server) mediaType(w http.ResponseWriter, r *http.Request, allowed []string) bool {
	ct := r.Header.Get("Content-Type")
	if ct == "" {
		return true
	}
	mt, _, err := mime.ParseMediaType(ct)
	if err == nil && slices.Contains(allowed, mt) {
		return true
	}
	w.Header().Set("Accept-Post", strings.Join(allowed, ", "))
	s.problem(w, r, http.StatusUnsupportedMediaType, "unsupported-media-type",
		fmt.Sprintf("Content-Type %q is not accepted here; send one of %s", ct, strings.Join(allowed, ", ")), nil)
	return false
}

// idempotencyKey returns the Idempotency-Key header, or "" without one.
func (s *Server) idempotencyKey(w http.ResponseWriter, r *http.Request) (string, bool) {
	vals := r.Header.Values("Idempotency-Key")
	if len(vals) == 0 {
		return "", true
	}
	key := strings.Trim(vals[0], `"`) // the draft standard writes it as a quoted string
	if len(vals) > 1 || key == "" || len(key) > maxKeyLength || strings.ContainsFunc(key, func(c rune) bool { return c < 0x21 || c > 0x7e }) {
		s.problem(w, r, http.StatusBadRequest, "bad-request", fmt.Sprintf("Idempotency-Key must be one value of 1 to %d printable ASCII characters", maxKeyLength), nil)
		return "", false
	}
	return key, true
}

// textHeader returns an optional header's value after checking it.
func (s *Server) textHeader(w http.ResponseWriter, r *http.Request, name string, max int) (string, bool) {
	v := strings.TrimSpace(r.Header.Get(name))
	if msg := checkText(name, v, max, false); msg != "" {
		s.problem(w, r, http.StatusBadRequest, "bad-request", msg, nil)
		return "", false
	}
	return v, true
}

// checkText says what is wrong with a caller's text that the release records
// (who decided, why), or "".
func checkText(name, v string, max int, multiline bool) string {
	if len(v) > max {
		return fmt.Sprintf("%s: longer than %d bytes", name, max)
	}
	bad := strings.ContainsFunc(v, func(c rune) bool {
		if multiline && (c == '\n' || c == '\t') {
			return false
		}
		return unicode.IsControl(c) || c == unicode.ReplacementChar
	})
	if bad {
		return name + ": control characters are not allowed"
	}
	return ""
}

func itoa(n int) string { return strconv.Itoa(n) }

func sizeText(n int64) string {
	if n >= 1<<20 && n%(1<<20) == 0 {
		return fmt.Sprintf("%d MiB", n>>20)
	}
	if n >= 1<<10 && n%(1<<10) == 0 {
		return fmt.Sprintf("%d KiB", n>>10)
	}
	return fmt.Sprintf("%d bytes", n)
}
