package workflows

import (
	"strings"
	"testing"

	"github.com/cutoverhq/cutover/identity"
	"github.com/cutoverhq/cutover/spec"
)

// Separation of duties is decided on people: the principals the doors
// authenticated, mapped through the app definition's people. The free text
// that comes with a decision plays no part.
func TestSelfApprovalIsDecidedOnPeople(t *testing.T) {
	t.Parallel()
	cliAlice := identity.Principal{Door: identity.CLI, ID: "alice"}
	tokenCarol := identity.Principal{Door: identity.API, ID: "ci-carol"}
	slackCarol := identity.Principal{Door: identity.Slack, ID: "U0CAROL"}
	slackDan := identity.Principal{Door: identity.Slack, ID: "U0DAN"}
	people := []spec.Person{
		{Name: "carol", Principals: []string{"api:ci-carol", "slack:U0CAROL"}},
		{Name: "dan", Principals: []string{"slack:U0DAN"}},
	}
	for _, tc := range []struct {
		name      string
		starter   identity.Principal
		approver  Decision
		approvers []string
		refused   string // "" when the approval is taken
	}{
		{"the CLI user approving under another name", cliAlice,
			Decision{By: "bob (alice)", Principal: cliAlice, Via: "cli"}, nil, "started this release"},
		{"a token's person approving from Slack", tokenCarol,
			Decision{By: "<@U0CAROL>", Principal: slackCarol, Via: "slack"}, nil, "carol started this release (as api:ci-carol) and may not approve it too (as slack:U0CAROL)"},
		{"someone else from Slack", tokenCarol,
			Decision{By: "<@U0DAN>", Principal: slackDan, Via: "slack"}, nil, ""},
		{"a bare Temporal update claiming the starter's name", cliAlice,
			Decision{By: "alice"}, nil, ""},
		{"someone not among the approvers", tokenCarol,
			Decision{By: "<@U0DAN>", Principal: slackDan, Via: "slack"}, []string{"carol"}, "is not among shop's approvers (carol)"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			h := newHarness(t)
			rel := testRelease()
			rel.People, rel.Approvers = people, tc.approvers
			var answer func() (string, error)
			h.when(waitingFor("approval"), func() {
				answer = h.update(UpdateApprove, tc.approver)
				if tc.refused != "" {
					h.update(UpdateAbort, Decision{By: "ops", Reason: "test over", Principal: identity.Principal{Door: identity.CLI, ID: "ops"}})
				}
			})
			h.env.ExecuteWorkflow(WorkflowName, Input{Release: rel, StartedBy: "ci", Principal: tc.starter})
			var st Status
			if err := h.env.GetWorkflowResult(&st); err != nil {
				t.Fatal(err)
			}
			_, err := answer()
			if tc.refused == "" {
				if err != nil || st.Outcome != OutcomePromoted {
					t.Fatalf("approval refused (%v); outcome %s, want promoted", err, st.Outcome)
				}
				a := st.LastApproval()
				if want := principalOf(tc.approver); a.Principal != want || a.Person != rel.PersonOf(want) {
					t.Errorf("approval recorded as %v / %q, want %v / %q", a.Principal, a.Person, want, rel.PersonOf(want))
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.refused) {
				t.Fatalf("approval answered %v, want refused with %q", err, tc.refused)
			}
			if st.Principal != tc.starter || st.Person != rel.PersonOf(tc.starter) {
				t.Errorf("status starter %v / %q, want %v", st.Principal, st.Person, tc.starter)
			}
		})
	}
}
