package procs

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"
)

func TestTailKeepsTheEnd(t *testing.T) {
	tl := NewTail(4)
	for _, s := range []string{"ab", "cde", "f"} {
		if _, err := tl.Write([]byte(s)); err != nil {
			t.Fatal(err)
		}
	}
	if got := tl.String(); got != "cdef" {
		t.Errorf("tail %q, want %q", got, "cdef")
	}
}

func TestExitCodeAndOutput(t *testing.T) {
	p, err := Start("sh", Options{Env: []string{"PROCS_TEST=hello"}}, "sh", "-c", `echo "$PROCS_TEST"; exit 3`)
	if err != nil {
		t.Fatal(err)
	}
	code, err := p.Wait(context.Background(), 10*time.Second)
	if err != nil || code != 3 {
		t.Fatalf("exit %d, %v; want 3", code, err)
	}
	if !strings.Contains(p.Output(), "hello") || p.Ended().Before(p.Started) {
		t.Errorf("output %q, started %s, ended %s", p.Output(), p.Started, p.Ended())
	}
}

// TestStopReachesTheGroup: SIGTERM goes to the whole process group, and a
// process that ignores it is killed after the grace period.
func TestStopReachesTheGroup(t *testing.T) {
	p, err := Start("sh", Options{}, "sh", "-c", `trap '' TERM; sleep 30 & wait`)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p.Wait(context.Background(), 100*time.Millisecond); !errors.Is(err, ErrTimeout) {
		t.Fatalf("a running process: %v, want ErrTimeout", err)
	}
	begin := time.Now()
	p.Stop(300 * time.Millisecond)
	if !p.Exited() || time.Since(begin) > 10*time.Second {
		t.Fatalf("not stopped after %s", time.Since(begin))
	}
}

func TestGroupStopsTheLastFirst(t *testing.T) {
	var g Group
	for _, name := range []string{"first", "second"} {
		if _, err := g.Start(name, nil, "sleep", "30"); err != nil {
			t.Fatal(err)
		}
	}
	var order []string
	g.StopAll(5*time.Second, func(p *Proc, _ time.Duration) {
		if !p.Exited() {
			t.Errorf("%s still runs", p.Name)
		}
		order = append(order, p.Name)
	})
	if strings.Join(order, " ") != "second first" {
		t.Errorf("stopped %v, want second then first", order)
	}
}
