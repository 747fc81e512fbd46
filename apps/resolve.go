package apps

import (
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/cutoverhq/cutover/judge"
	"github.com/cutoverhq/cutover/spec"
)

// ErrNoDefinition is a request for an app the worker has no definition of.
var ErrNoDefinition = errors.New("no app definition")

// RefusedError is a request the app definitions do not allow. Its message
// names the field at fault and why.
type RefusedError struct {
	App     string
	Reasons []string
	err     error
}

func (e *RefusedError) Error() string {
	return fmt.Sprintf("release of %s refused: %s", e.App, strings.Join(e.Reasons, "; "))
}

func (e *RefusedError) Unwrap() error { return e.err }

func refuse(app string, err error, reasons ...string) *RefusedError {
	return &RefusedError{App: app, Reasons: reasons, err: err}
}

// Mode says what a worker accepts.
type Mode struct {
	// Dev accepts a whole spec for an app without a definition: development
	// mode, for one person on their own machine. Whoever can start a release
	// can then run anything the worker can.
	Dev bool
}

// Resolve turns a release request into the release to run: the app's
// definition with the request's version and, where the definition allows, its
// plan and tighter judge. check builds each provider to check it (the
// registry's Check). In development mode, a whole spec for an app without a
// definition is taken as it is.
func (d *Definitions) Resolve(req spec.Release, mode Mode, check spec.ProviderCheck) (spec.Release, error) {
	def, ok := d.Get(req.App)
	if !ok {
		if !mode.Dev {
			return spec.Release{}, refuse(req.App, ErrNoDefinition,
				fmt.Sprintf("app: %q has no definition on the worker; an operator adds %s.yaml to the app definitions directory", req.App, req.App))
		}
		if ps := req.Validate(check); len(ps) > 0 {
			return spec.Release{}, refuse(req.App, nil, problemLines(ps)...)
		}
		return req, nil
	}
	if ps := req.CheckRequest(); len(ps) > 0 {
		return spec.Release{}, refuse(req.App, nil, problemLines(ps)...)
	}
	out := def
	out.Version, out.PreviousVersion = req.Version, req.PreviousVersion
	var reasons []string
	if len(req.Plan) > 0 {
		reasons = append(reasons, checkPlan(def, req.Plan)...)
		out.Plan = req.Plan
	}
	if req.Judge != nil {
		analysis, why := tighten(def, *req.Judge)
		reasons = append(reasons, why...)
		out.Providers.Analysis = analysis
	}
	if len(reasons) > 0 {
		return spec.Release{}, refuse(req.App, nil, reasons...)
	}
	if ps := out.Validate(check); len(ps) > 0 {
		return spec.Release{}, refuse(req.App, nil, problemLines(ps)...)
	}
	return out, nil
}

func problemLines(ps spec.Problems) []string {
	lines := make([]string, len(ps))
	for i, p := range ps {
		lines[i] = p.String()
	}
	return lines
}

// guardKinds are the steps that check green or wait for a person: a requested
// plan keeps each kind the definition's plan holds, so that a start token
// cannot release without the checks operators chose.
var guardKinds = []string{spec.KindSoak, spec.KindAnalysis, spec.KindApproval}

// checkPlan checks a requested plan against the definition's bounds.
func checkPlan(def spec.Release, plan []spec.Step) []string {
	q := def.Requests
	if q == nil || !q.Plan {
		return []string{"plan: the app's definition does not let a request choose its plan (an operator sets requests.plan: true to allow it)"}
	}
	var reasons []string
	has := map[string]bool{}
	for i, s := range plan {
		at := fmt.Sprintf("plan[%d]", i)
		has[s.Kind()] = true
		switch {
		case s.Soak != nil && s.Soak.Duration < q.MinSoak:
			reasons = append(reasons, fmt.Sprintf("%s.soak.duration: %s is shorter than the app's definition allows (requests.minSoak: %s)", at, s.Soak.Duration, q.MinSoak))
		case s.Analysis != nil && s.Analysis.Window < q.MinAnalysis:
			reasons = append(reasons, fmt.Sprintf("%s.analysis.window: %s is shorter than the app's definition allows (requests.minAnalysis: %s)", at, s.Analysis.Window, q.MinAnalysis))
		}
	}
	for _, k := range guardKinds {
		if !has[k] && slices.ContainsFunc(def.Plan, func(s spec.Step) bool { return s.Kind() == k }) {
			reasons = append(reasons, fmt.Sprintf("plan: the app's definition's plan has %s step; a requested plan must keep one", map[string]string{
				spec.KindSoak: "a soak", spec.KindAnalysis: "an analysis", spec.KindApproval: "an approval"}[k]))
		}
	}
	return reasons
}

// tighten applies a request's judge settings to the definition's analysis
// provider, refusing any that would loosen it.
func tighten(def spec.Release, j spec.JudgeRequest) (spec.Provider, []string) {
	p := def.Providers.Analysis
	if def.Requests == nil || !def.Requests.Judge {
		return p, []string{"judge: the app's definition does not let a request change the judge (an operator sets requests.judge: true to allow it)"}
	}
	block, _ := p.Settings["judge"].(map[string]any)
	var cfg judge.Config
	if raw, err := json.Marshal(block); err == nil {
		_ = json.Unmarshal(raw, &cfg) // a block that does not decode fails the provider check below
	}
	cfg = cfg.WithDefaults()
	var reasons []string
	next := maps.Clone(block)
	if next == nil {
		next = map[string]any{}
	}
	if j.Power != 0 {
		if j.Power < cfg.Power {
			reasons = append(reasons, fmt.Sprintf("judge.power: %g is lower than the app's definition (%g); a request may only raise it", j.Power, cfg.Power))
		}
		next["power"] = j.Power
	}
	if j.MaxIncrease != 0 {
		if max := cfg.ErrorRate.MaxIncrease; max != nil && j.MaxIncrease > *max {
			reasons = append(reasons, fmt.Sprintf("judge.maxIncrease: %g is looser than the app's definition (%g); a request may only lower it", j.MaxIncrease, *max))
		}
		er, _ := next["errorRate"].(map[string]any)
		er = maps.Clone(er)
		if er == nil {
			er = map[string]any{}
		}
		er["maxIncrease"] = j.MaxIncrease
		next["errorRate"] = er
	}
	settings := maps.Clone(p.Settings)
	if settings == nil {
		settings = map[string]any{}
	}
	settings["judge"] = next
	p.Settings = settings
	return p, reasons
}
