package spec

import (
	"errors"
	"fmt"
	"regexp"
	"strings"
	"unicode"
)

// Limits on what a release may be. They are exported so that every door that
// takes a release (the CLI, the API, chat) refuses the same things.
const (
	// MaxSpecBytes is the largest release spec read: a spec is a page or two,
	// and the decoder's work grows with the document.
	MaxSpecBytes = 256 << 10
	// MaxPlanSteps is the most steps a plan may have; each step is an entry
	// in the workflow history.
	MaxPlanSteps = 100
	// MaxVersionLength is the longest version text allowed.
	MaxVersionLength = 128
)

// appName is what an app may be called: it becomes the workflow ID release/<app>
// and often a DNS label.
var appName = regexp.MustCompile(`^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$`)

// versionText is what a version may be written as. Providers build file names,
// image tags and URLs from it, so it holds no slash, no space and no control
// character, and cannot be . or .. or start with a dash.
var versionText = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._+-]*$`)

// CheckApp says what is wrong with an app name, or returns nil. The message
// does not name the field; the caller does.
func CheckApp(app string) error {
	switch {
	case app == "":
		return errors.New("required")
	case !appName.MatchString(app):
		return fmt.Errorf("%s is not a valid app name; use lower-case letters, digits and dashes, at most 63, starting and ending with a letter or digit (like shop-api)", quote(app))
	}
	return nil
}

// CheckVersion says what is wrong with a version, or returns nil. The message
// does not name the field; the caller does.
func CheckVersion(v string) error {
	switch {
	case v == "":
		return errors.New("required")
	case len(v) > MaxVersionLength:
		return fmt.Errorf("%d characters is too long; write at most %d", len(v), MaxVersionLength)
	case strings.IndexFunc(v, unicode.IsSpace) >= 0:
		return fmt.Errorf("%s contains whitespace; write the version without spaces, like 1.4.0", quote(v))
	case !versionText.MatchString(v):
		return fmt.Errorf("%s is not a valid version; use letters, digits and . _ + - only, starting with a letter or digit (like 1.4.0 or 2024.05.1-rc.1+b7)", quote(v))
	}
	return nil
}

// quote shows a value in a message: Go-quoted, and cut short when it is long,
// since the value can be anything a file or a request held.
func quote(s string) string {
	const most = 64
	if len(s) > most {
		return fmt.Sprintf("%q...", s[:most])
	}
	return fmt.Sprintf("%q", s)
}
