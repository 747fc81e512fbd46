package api

import (
	"encoding/json"
	"errors"
	"net/http"

	"github.com/cutoverhq/cutover/spec"
)

// ProblemTypeBase prefixes every problem type: the slug after it names the
// section of api/README.md that explains the problem.
const ProblemTypeBase = "https://github.com/cutoverhq/cutover/blob/main/api/README.md#"

// Problem is an RFC 9457 problem details object (application/problem+json).
type Problem struct {
	Type     string `json:"type"`
	Title    string `json:"title"`
	Status   int    `json:"status"`
	Detail   string `json:"detail,omitempty"`
	Instance string `json:"instance,omitempty"`
	// Errors lists every problem of an invalid spec, with its field path.
	Errors []FieldError `json:"errors,omitempty"`
	// Running is the release in progress that a start conflicts with.
	Running *RunningRelease `json:"running,omitempty"`
}

// FieldError is one problem of a spec: its field path (plan[3].setWeight; ""
// for the spec as a whole), its line (0 when unknown, then omitted) and what
// is wrong.
type FieldError struct {
	Field   string `json:"field"`
	Line    int    `json:"line,omitempty"`
	Message string `json:"message"`
}

// RunningRelease is the release in progress named by a 409 on start.
type RunningRelease struct {
	App        string `json:"app"`
	Version    string `json:"version"`
	Stage      string `json:"stage"`
	WorkflowID string `json:"workflowId,omitempty"`
	RunID      string `json:"runId,omitempty"`
}

// titles are the problem types' fixed titles.
var titles = map[string]string{
	"bad-request":            "The request is not valid",
	"invalid-spec":           "The release spec is not valid",
	"unauthorized":           "Authentication required",
	"forbidden":              "The token lacks a scope",
	"not-found":              "Not found",
	"method-not-allowed":     "Method not allowed",
	"body-too-large":         "Request body too large",
	"unsupported-media-type": "Unsupported media type",
	"release-in-progress":    "Another release of the app is in progress",
	"decision-rejected":      "The release rejected the decision",
	"idempotency-key-reused": "Idempotency-Key reused for another request",
	"timeout":                "The release did not answer in time",
	"unavailable":            "Temporal is unavailable",
	"too-many-streams":       "Too many event streams",
	"internal":               "Internal error",
}

func (s *Server) problem(w http.ResponseWriter, r *http.Request, status int, slug, detail string, extend func(*Problem)) {
	p := Problem{Type: ProblemTypeBase + slug, Title: titles[slug], Status: status, Detail: detail, Instance: r.URL.Path}
	if p.Title == "" {
		p.Title = http.StatusText(status)
	}
	if extend != nil {
		extend(&p)
	}
	w.Header().Set("Content-Type", "application/problem+json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(p)
}

// specProblem answers 400 with every problem of a spec.
// maxFieldErrors is how many problems an invalid spec's answer lists.
const maxFieldErrors = 50

func (s *Server) specProblem(w http.ResponseWriter, r *http.Request, ps spec.Problems) {
	detail := "1 problem; errors lists each with its field path"
	if len(ps) != 1 {
		detail = itoa(len(ps)) + " problems; errors lists each with its field path"
	}
	// A crafted body can have thousands of problems: the answer lists the
	// first ones, which is what a person fixes first anyway.
	if len(ps) > maxFieldErrors {
		detail = itoa(len(ps)) + " problems; errors lists the first " + itoa(maxFieldErrors) + " with their field paths"
		ps = ps[:maxFieldErrors]
	}
	errs := make([]FieldError, len(ps))
	for i, p := range ps {
		errs[i] = FieldError{Field: p.Path, Line: p.Line, Message: p.Message}
	}
	s.problem(w, r, http.StatusBadRequest, "invalid-spec", "the release spec has "+detail, func(p *Problem) {
		p.Errors = errs
	})
}

// bodyProblem answers an error from reading a request body: 413 past the limit.
func (s *Server) bodyProblem(w http.ResponseWriter, r *http.Request, err error) {
	var mbe *http.MaxBytesError
	if errors.As(err, &mbe) {
		s.problem(w, r, http.StatusRequestEntityTooLarge, "body-too-large",
			"the request body is larger than "+sizeText(mbe.Limit), nil)
		return
	}
	s.problem(w, r, http.StatusBadRequest, "bad-request", "cannot read the request body: "+err.Error(), nil)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}
