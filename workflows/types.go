// Package workflows holds the release workflow. Everything here is deterministic:
// time comes from workflow.Now, waiting from timers and conditions, concurrency
// from workflow.Go and selectors, and every effect on the world from an activity.
package workflows

import (
	"fmt"
	"time"

	"github.com/cutoverhq/cutover/identity"
	"github.com/cutoverhq/cutover/providers"
	"github.com/cutoverhq/cutover/spec"
	"github.com/cutoverhq/cutover/verdict"
)

// WorkflowName is the release workflow's registered name.
const WorkflowName = "Release"

// Names of the updates (and of the signals that do the same without an answer)
// and of the query.
const (
	UpdateApprove  = "approve"
	UpdateAbort    = "abort"
	UpdatePause    = "pause"
	UpdateResume   = "resume"
	UpdateRollback = "rollback"
	QueryStatus    = "status"
)

// Outcomes of a release, as CutoverOutcome and Status.Outcome show them.
const (
	OutcomeRunning    = "running"
	OutcomePromoted   = "promoted"
	OutcomeRolledBack = "rolled_back"
	OutcomeAborted    = "aborted"
	OutcomeFailed     = "failed"
)

// Stages beyond the plan's step kinds.
const (
	StageStarting = "starting"
	StageRollback = "rollback"
	StageDone     = "done"
)

// Input is the workflow's input: a release request (app and version, and what
// the app's definition lets a request choose) or, for a worker in development
// mode, a whole spec. The workflow resolves it against the app's definition
// in its first activity, so that the history records exactly the release that
// was decided on.
type Input struct {
	Release spec.Release `json:"release"`
	// StartedBy says who or what started the release (a person, a CI run), as
	// free text.
	StartedBy string `json:"startedBy,omitempty"`
	// Principal is who the door that started the release authenticated.
	Principal identity.Principal `json:"principal,omitzero"`
	// Via is the door it was started through: cli or api.
	Via string `json:"via,omitempty"`
	// CIRun is the CI run that started it (a URL or an ID), when there is one.
	CIRun string `json:"ciRun,omitempty"`
}

// Decision is what a person sends with approve, abort, pause, resume and rollback.
type Decision struct {
	// By is who decided, as free text.
	By string `json:"by"`
	// Principal is who the door authenticated. A decision sent straight to
	// the workflow without one is taken as identity.Unchecked(By).
	Principal identity.Principal `json:"principal,omitzero"`
	// Reason says why; abort requires one.
	Reason string `json:"reason,omitempty"`
	// Via is the door it came through: cli, api, slack, ui.
	Via string `json:"via,omitempty"`
}

// DecisionRecord is a decision the release acted on.
type DecisionRecord struct {
	Decision
	// Person is who the principal is, after the app definition's people.
	Person string    `json:"person,omitempty"`
	Action string    `json:"action"`
	Step   int       `json:"step"`
	At     time.Time `json:"at"`
}

// Weights is the traffic split in percent.
type Weights struct {
	Blue  int `json:"blue"`
	Green int `json:"green"`
}

// String prints the split as people read it.
func (w Weights) String() string { return fmt.Sprintf("blue %d%% / green %d%%", w.Blue, w.Green) }

// Step states.
const (
	StatePending   = "pending"
	StateRunning   = "running"
	StateDone      = "done"
	StateFailed    = "failed"
	StateSkipped   = "skipped"
	StateCancelled = "cancelled"
)

// StepRecord is one step's progress.
type StepRecord struct {
	Index       int       `json:"index"`
	Kind        string    `json:"kind"`
	Description string    `json:"description"`
	State       string    `json:"state"`
	Detail      string    `json:"detail,omitempty"`
	Started     time.Time `json:"started,omitzero"`
	Ended       time.Time `json:"ended,omitzero"`
}

// Duration is how long the step took, or has taken until now.
func (s StepRecord) Duration(now time.Time) time.Duration {
	switch {
	case s.Started.IsZero():
		return 0
	case s.Ended.IsZero():
		return now.Sub(s.Started)
	}
	return s.Ended.Sub(s.Started)
}

// Status is what the status query returns and the workflow's result.
type Status struct {
	App             string `json:"app"`
	Version         string `json:"version"`
	PreviousVersion string `json:"previousVersion,omitempty"`
	StartedBy       string `json:"startedBy,omitempty"`
	// Principal and Person are who started the release, as the door
	// authenticated them and after the app definition's people.
	Principal   identity.Principal `json:"principal,omitzero"`
	Person      string             `json:"person,omitempty"`
	StartedAt   time.Time          `json:"startedAt"`
	EndedAt     time.Time          `json:"endedAt,omitzero"`
	Stage       string             `json:"stage"`
	Step        int                `json:"step"`
	Weights     Weights            `json:"weights"`
	Paused      bool               `json:"paused,omitempty"`
	Waiting     string             `json:"waiting,omitempty"`
	Green       *providers.Pool    `json:"green,omitempty"`
	LastVerdict *verdict.Verdict   `json:"lastVerdict,omitempty"`
	Decisions   []DecisionRecord   `json:"decisions,omitempty"`
	Steps       []StepRecord       `json:"steps"`
	Rollback    []StepRecord       `json:"rollback,omitempty"`
	Outcome     string             `json:"outcome"`
	Reason      string             `json:"reason,omitempty"`
}

// LastApproval returns the most recent approve, or nil.
func (s *Status) LastApproval() *DecisionRecord {
	for i := len(s.Decisions) - 1; i >= 0; i-- {
		if s.Decisions[i].Action == UpdateApprove {
			return &s.Decisions[i]
		}
	}
	return nil
}
