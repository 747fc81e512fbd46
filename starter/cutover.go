// Package starter is the cutover CLI (cmd/cutover is its main): it starts and
// steers releases: `cutover release -f release.yaml
// --wait` in CI, `cutover approve APP --as NAME` for people.
//
// Every command that talks to Temporal takes --address (TEMPORAL_ADDRESS) and
// --namespace (TEMPORAL_NAMESPACE), and TLS, mTLS and API keys from the
// variables and config file profile of Temporal's own CLI (see
// temporalconn.EnvHelp, printed by `cutover --help`): TEMPORAL_API_KEY,
// TEMPORAL_TLS, TEMPORAL_TLS_CLIENT_CERT_PATH, TEMPORAL_TLS_CLIENT_KEY_PATH,
// TEMPORAL_TLS_SERVER_CA_CERT_PATH, TEMPORAL_TLS_SERVER_NAME,
// TEMPORAL_TLS_DISABLE_HOST_VERIFICATION, the TEMPORAL_TLS_*_DATA forms, the
// older TEMPORAL_TLS_CERT, _KEY and _CA, TEMPORAL_CLIENT_AUTHORITY,
// TEMPORAL_GRPC_META_<NAME>, TEMPORAL_PROFILE and TEMPORAL_CONFIG_FILE. The
// flags override the variables, which override the profile. `cutover serve`
// connects the same way.
//
// Exit codes: 0 success (with --wait: promoted), 1 error, 2 bad usage, 3 rolled
// back, 4 aborted.
package starter

import (
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/cutoverhq/cutover/spec"
	"github.com/cutoverhq/cutover/temporalconn"
)

// Exit codes a CI job can gate on.
const (
	exitOK         = 0
	exitError      = 1
	exitUsage      = 2
	exitRolledBack = 3
	exitAborted    = 4
)

// exitCode carries an exit code other than 1 out of a command.
type exitCode struct {
	code int
	msg  string
}

func (e *exitCode) Error() string { return e.msg }

// Main runs the CLI with args (without the program name) and returns the
// exit code.
func Main(args []string, stdout, stderr io.Writer) int {
	root := newRoot()
	root.SetArgs(args)
	root.SetOut(stdout)
	root.SetErr(stderr)
	err := root.Execute()
	if err == nil {
		return exitOK
	}
	var ec *exitCode
	if errors.As(err, &ec) {
		if ec.msg != "" {
			fmt.Fprintln(stderr, "cutover:", printableLines(ec.msg))
		}
		return ec.code
	}
	fmt.Fprintln(stderr, "cutover:", printableLines(oneLine(err)))
	if isUsage(err) {
		return exitUsage
	}
	return exitError
}

// oneLine keeps an error to one line, as a CI log or a terminal wants it;
// problem lists keep their lines.
func oneLine(err error) string {
	return strings.TrimSpace(err.Error())
}

// printableLines passes each line of an error through spec.Printable: an error
// can quote what a server, the workflow or a file said.
func printableLines(s string) string {
	lines := strings.Split(s, "\n")
	for i, l := range lines {
		lines[i] = spec.Printable(l)
	}
	return strings.Join(lines, "\n")
}

func isUsage(err error) bool {
	// A connection error is never usage, whatever its words ("a server that
	// requires TLS").
	var te *temporalconn.Error
	if errors.As(err, &te) {
		return false
	}
	msg := err.Error()
	for _, p := range []string{"unknown command", "unknown flag", "unknown shorthand", "accepts ", "requires ", "required flag", "invalid argument"} {
		if strings.Contains(msg, p) {
			return true
		}
	}
	return false
}
