package deadlines

import (
	"flag"
	"net/http"
	"strings"
	"testing"
	"time"
)

func TestOrCheckApply(t *testing.T) {
	def := Timeouts{ReadHeader: time.Second, Read: 2 * time.Second, Write: 3 * time.Second, Idle: 4 * time.Second}
	got := Timeouts{Write: time.Minute}.Or(def)
	if want := (Timeouts{time.Second, 2 * time.Second, time.Minute, 4 * time.Second}); got != want {
		t.Errorf("Or = %+v, want %+v", got, want)
	}
	if err := got.Check("--"); err != nil {
		t.Error(err)
	}
	srv := got.Apply(&http.Server{})
	if srv.ReadHeaderTimeout != time.Second || srv.ReadTimeout != 2*time.Second || srv.WriteTimeout != time.Minute || srv.IdleTimeout != 4*time.Second {
		t.Errorf("Apply: %+v", srv)
	}
	for _, c := range []struct {
		t    Timeouts
		want string
	}{
		{Timeouts{Read: time.Second, Write: time.Second, Idle: time.Second}, "--http-read-header-timeout must be above 0, got 0s"},
		{Timeouts{ReadHeader: time.Second, Read: time.Second, Write: -time.Second, Idle: time.Second}, "--http-write-timeout must be above 0, got -1s"},
		{Timeouts{ReadHeader: 2 * time.Second, Read: time.Second, Write: time.Second, Idle: time.Second}, "--http-read-header-timeout 2s is longer than --http-read-timeout 1s"},
	} {
		if err := c.t.Check("--http-"); err == nil || !strings.HasPrefix(err.Error(), c.want) {
			t.Errorf("Check(%+v) = %v, want %q", c.t, err, c.want)
		}
	}
}

func TestFlags(t *testing.T) {
	t.Setenv("X_READ_TIMEOUT", "1m")
	to := Timeouts{ReadHeader: time.Second, Read: 2 * time.Second, Write: 3 * time.Second, Idle: 4 * time.Second}
	fs := flag.NewFlagSet("x", flag.ContinueOnError)
	if err := to.Flags(fs, "http-", "X"); err != nil {
		t.Fatal(err)
	}
	if err := fs.Parse([]string{"--http-idle-timeout", "90s"}); err != nil {
		t.Fatal(err)
	}
	if want := (Timeouts{time.Second, time.Minute, 3 * time.Second, 90 * time.Second}); to != want {
		t.Errorf("flags = %+v, want %+v", to, want)
	}
	if u := fs.Lookup("http-write-timeout").Usage; !strings.Contains(u, "(X_WRITE_TIMEOUT)") {
		t.Errorf("usage %q does not name the variable", u)
	}
	t.Setenv("X_WRITE_TIMEOUT", "soon")
	fs = flag.NewFlagSet("y", flag.ContinueOnError)
	err := (&Timeouts{}).Flags(fs, "", "X")
	if err == nil || err.Error() != `X_WRITE_TIMEOUT: "soon" is not a duration like 30s or 2m` {
		t.Errorf("a bad variable: %v", err)
	}
	if fs.Lookup("idle-timeout") == nil {
		t.Error("a bad variable left a flag unregistered")
	}
}
