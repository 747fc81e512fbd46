// Package identity names who acts on a release: the principal a door
// authenticated, kept apart from the free text people write with it ("by",
// reasons). App definitions map principals to people, and separation of duties
// is decided on people, never on text a caller chose.
package identity

import (
	"fmt"
	"regexp"
	"slices"
	"strings"
)

// Doors a principal can come through.
const (
	// CLI is `cutover` run by a user with Temporal access: its ID is the
	// operator identity the CLI is configured with (CUTOVER_OPERATOR) or the
	// operating-system user. Temporal's own authentication is what stands
	// behind it.
	CLI = "cli"
	// API is the HTTP API: its ID is the name of the token presented.
	API = "api"
	// Slack is chatops: its ID is the Slack user ID of a signed request.
	Slack = "slack"
	// Temporal is a decision sent straight to the workflow (the Temporal UI,
	// `temporal workflow update`) without a principal: its ID is the "by" text,
	// which nobody checked.
	Temporal = "temporal"
)

// Doors lists the doors, in the order the docs name them.
var Doors = []string{CLI, API, Slack, Temporal}

// Principal is who a door authenticated.
type Principal struct {
	Door string `json:"door"`
	ID   string `json:"id"`
}

// idText is what an ID may hold: names, token names, Slack IDs, e-mail-like
// operator names. No spaces or control characters, so that a principal prints
// on one line and cannot pass for another.
var idText = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._@+-]{0,127}$`)

// Parse reads a principal written as door:id (cli:alice, api:ci,
// slack:U024BE7LH).
func Parse(s string) (Principal, error) {
	door, id, ok := strings.Cut(s, ":")
	p := Principal{Door: door, ID: id}
	if !ok {
		return p, fmt.Errorf("%q is not a principal; write door:id, like cli:alice, api:ci or slack:U024BE7LH", s)
	}
	return p, p.Check()
}

// Check reports what is wrong with the principal, if anything.
func (p Principal) Check() error {
	if !slices.Contains(Doors, p.Door) {
		return fmt.Errorf("%q is not a door; use one of %s", p.Door, strings.Join(Doors, ", "))
	}
	if !idText.MatchString(p.ID) {
		return fmt.Errorf("%q is not an identity: letters, digits and . _ @ + -, at most 128, starting with a letter or digit", p.ID)
	}
	return nil
}

// IsZero reports whether no door authenticated anyone.
func (p Principal) IsZero() bool { return p == Principal{} }

// String writes the principal as Parse reads it.
func (p Principal) String() string {
	if p.IsZero() {
		return ""
	}
	return p.Door + ":" + p.ID
}

// Unchecked is the principal of a decision that came straight to the
// workflow without one: the Temporal door, with the free text as its ID. It
// keeps the text apart from any authenticated principal (an ID that is not a
// valid identity never equals one).
func Unchecked(by string) Principal { return Principal{Door: Temporal, ID: by} }
