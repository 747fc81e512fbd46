// Package deadlines holds the read, write and idle deadlines of Cutover's HTTP
// servers. Without them a client keeps a connection, and the goroutine behind
// it, for as long as it likes by sending its request or reading the answer one
// byte at a time: a body sent at one byte a second held /slack/commands open
// indefinitely (issue 13). Each server picks defaults for what it serves and
// says why; Flags lets an operator change them.
package deadlines

import (
	"fmt"
	"net/http"
	"os"
	"strings"
	"time"
)

// Timeouts are an http.Server's deadlines. net/http measures them so:
//
//   - ReadHeader: from the connection's accept (or, on a kept-alive
//     connection, the next request's first byte) to the end of the headers.
//   - Read: from the same start to the end of the body. Once the body has
//     been read, net/http lifts the read deadline, so Read does not bound
//     how long the handler works.
//   - Write: from the end of the request's headers to the end of the
//     response. A handler that streams (server-sent events) moves it forward
//     with http.ResponseController.SetWriteDeadline as it goes.
//   - Idle: how long a kept-alive connection waits for its next request.
type Timeouts struct {
	ReadHeader time.Duration
	Read       time.Duration
	Write      time.Duration
	Idle       time.Duration
}

// Or fills t's zero fields from def.
func (t Timeouts) Or(def Timeouts) Timeouts {
	for _, f := range []struct{ v, d *time.Duration }{
		{&t.ReadHeader, &def.ReadHeader}, {&t.Read, &def.Read}, {&t.Write, &def.Write}, {&t.Idle, &def.Idle},
	} {
		if *f.v == 0 {
			*f.v = *f.d
		}
	}
	return t
}

// Check refuses a deadline that is not above zero (zero would be none at
// all), or a header deadline longer than the whole request's. prefix goes
// before each name in the message, as in Flags ("--" or "--http-" for a
// flag, "" for a field).
func (t Timeouts) Check(prefix string) error {
	for _, f := range t.fields() {
		if *f.v <= 0 {
			return fmt.Errorf("%s%s must be above 0, got %s", prefix, f.name, *f.v)
		}
	}
	if t.ReadHeader > t.Read {
		return fmt.Errorf("%sread-header-timeout %s is longer than %sread-timeout %s, which bounds the headers too", prefix, t.ReadHeader, prefix, t.Read)
	}
	return nil
}

// Apply sets the deadlines on srv and returns it.
func (t Timeouts) Apply(srv *http.Server) *http.Server {
	srv.ReadHeaderTimeout, srv.ReadTimeout, srv.WriteTimeout, srv.IdleTimeout = t.ReadHeader, t.Read, t.Write, t.Idle
	return srv
}

// FlagSet is what Flags needs of a flag set: the standard library's and
// pflag's (cobra's) both have it.
type FlagSet interface {
	DurationVar(p *time.Duration, name string, value time.Duration, usage string)
}

// Flags registers --<prefix>read-header-timeout, --<prefix>read-timeout,
// --<prefix>write-timeout and --<prefix>idle-timeout on fs, each defaulting to
// the environment variable <env>_READ_HEADER_TIMEOUT (and so on) when it is
// set, or else to t's value. A variable that is not a Go duration is an error
// naming it.
//
// Every flag is registered even then, so that the command line still parses
// and the caller can report the variable.
func (t *Timeouts) Flags(fs FlagSet, prefix, env string) error {
	var bad error
	for _, f := range t.fields() {
		name := env + "_" + strings.ToUpper(strings.ReplaceAll(f.name, "-", "_"))
		if s := os.Getenv(name); s != "" {
			d, err := time.ParseDuration(s)
			if err != nil && bad == nil {
				bad = fmt.Errorf("%s: %q is not a duration like 30s or 2m", name, s)
			}
			if err == nil {
				*f.v = d
			}
		}
		fs.DurationVar(f.v, prefix+f.name, *f.v, f.usage+" ("+name+")")
	}
	return bad
}

type field struct {
	name, usage string
	v           *time.Duration
}

func (t *Timeouts) fields() []field {
	return []field{
		{"read-header-timeout", "how long a client may take to send a request's headers", &t.ReadHeader},
		{"read-timeout", "how long a client may take to send a whole request, body included", &t.Read},
		{"write-timeout", "how long writing a response may take", &t.Write},
		{"idle-timeout", "how long a kept-alive connection may wait for its next request", &t.Idle},
	}
}
