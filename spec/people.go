package spec

import (
	"regexp"
	"slices"

	"github.com/cutoverhq/cutover/identity"
)

// personName is what a person may be called in People and Approvers.
var personName = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._@+-]{0,63}$`)

// PersonOf names the person a principal belongs to: the People entry that
// lists it, or the principal itself (door:id) when nobody claims it, so that
// two unmapped principals are never the same person.
func (r Release) PersonOf(p identity.Principal) string {
	s := p.String()
	for _, person := range r.People {
		if slices.Contains(person.Principals, s) {
			return person.Name
		}
	}
	return s
}

// validatePeople checks People, Approvers and Judge.
func (r Release) validatePeople(ps *Problems) {
	names := map[string]bool{}
	owner := map[string]string{}
	for i, person := range r.People {
		at := indexPath("people", i)
		switch {
		case person.Name == "":
			ps.add(at+".name", "required")
		case !personName.MatchString(person.Name):
			ps.add(at+".name", "%q is not a name: letters, digits and . _ @ + -, at most 64", person.Name)
		case names[person.Name]:
			ps.add(at+".name", "%q is listed twice", person.Name)
		}
		names[person.Name] = true
		if len(person.Principals) == 0 {
			ps.add(at+".principals", "required: list who %s authenticates as, like cli:alice or slack:U024BE7LH", person.Name)
		}
		for j, s := range person.Principals {
			pp := indexPath(at+".principals", j)
			if _, err := identity.Parse(s); err != nil {
				ps.add(pp, "%s", err.Error())
				continue
			}
			if prev, ok := owner[s]; ok && prev != person.Name {
				ps.add(pp, "%s already belongs to %s; a principal is one person", s, prev)
			}
			owner[s] = person.Name
		}
	}
	for i, a := range r.Approvers {
		if !names[a] {
			ps.add(indexPath("approvers", i), "%q is not in people; list the person there with their principals", a)
		}
	}
	if j := r.Judge; j != nil {
		if j.Power != 0 && !(j.Power >= 0.5 && j.Power < 1) {
			ps.add("judge.power", "%v is not at least 0.5 and below 1", j.Power)
		}
		if j.MaxIncrease != 0 && !(j.MaxIncrease > 0 && j.MaxIncrease < 1) {
			ps.add("judge.maxIncrease", "%v is not a fraction between 0 and 1", j.MaxIncrease)
		}
	}
}
