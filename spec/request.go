package spec

import (
	"slices"
	"strings"
)

// requestFields are the fields a release request may write: which app, which
// version and, where the app's definition allows, a plan and a tighter judge.
// Everything that reaches outside the release (providers and their settings,
// commands, hosts, secrets, directories) and everything that decides who may do
// what (people, approvers, allowSelfApproval, requests) is the app definition's,
// which operators keep on the worker.
var requestFields = []string{"app", "version", "previousVersion", "plan", "judge"}

// ParseRequest reads a release request (YAML or JSON) strictly: the app, the
// version and optionally a plan and judge settings, nothing else. The plan's
// steps get their defaults; an empty plan stays empty (the app definition's
// plan is used). Whether the app's definition allows the plan and the judge is
// for the worker to decide.
func ParseRequest(data []byte) (Release, error) {
	fill := func(r Release, written func(string) bool) Release {
		if len(r.Plan) == 0 {
			return r
		}
		return r.withDefaults(written)
	}
	return parse(data, fill, Release.CheckRequest)
}

// IsRequest reports whether a YAML or JSON document writes only the fields a
// request may: the CLI sends such a file as a request and anything else as a
// whole spec (which only a worker in development mode runs).
func IsRequest(data []byte) bool {
	if len(data) > MaxSpecBytes {
		return false
	}
	root, ps := parseDocument(data)
	if len(ps) > 0 {
		return false
	}
	for i := 0; i+1 < len(root.Content); i += 2 {
		if !slices.Contains(requestFields, resolve(root.Content[i]).Value) {
			return false
		}
	}
	return true
}

// CheckRequest reports what is wrong with r as a release request: a field a
// request may not write, or a bad app, version, plan or judge setting.
func (r Release) CheckRequest() Problems {
	var ps Problems
	why := "; a release request names the app and the version (and, where the app's definition allows, a plan and judge settings): an operator sets the rest in the app's definition on the worker"
	if !r.Providers.IsZero() {
		ps.add("providers", "a request cannot name providers%s", why)
	}
	if r.AllowSelfApproval {
		ps.add("allowSelfApproval", "a request cannot allow self-approval%s", why)
	}
	if len(r.People) > 0 {
		ps.add("people", "a request cannot name people%s", why)
	}
	if len(r.Approvers) > 0 {
		ps.add("approvers", "a request cannot name approvers%s", why)
	}
	if r.Requests != nil {
		ps.add("requests", "a request cannot set what requests may do%s", why)
	}
	rest := r
	rest.Providers, rest.AllowSelfApproval, rest.People, rest.Approvers, rest.Requests = Providers{}, false, nil, nil, nil
	for _, p := range rest.Validate(nil) {
		// A request has no providers, and without a plan it takes the
		// definition's: neither absence is its problem.
		if !strings.HasPrefix(p.Path, "providers.") && (len(r.Plan) > 0 || p.Path != "plan") {
			ps = append(ps, p)
		}
	}
	return ps
}

// IsZero reports whether no provider is named.
func (p Providers) IsZero() bool {
	return p.Environment.Type == "" && p.Environment.Settings == nil &&
		p.Traffic.Type == "" && p.Traffic.Settings == nil &&
		p.Analysis.Type == "" && p.Analysis.Settings == nil &&
		p.Migrations == nil && p.Ledger == nil && len(p.Notifications) == 0
}
