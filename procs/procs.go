// Package procs starts and stops child processes for the end-to-end tests'
// harness and the benchmark: each in its own process group (so that what it
// starts goes with it), its output kept in a bounded tail, stopped with SIGTERM
// to the group and SIGKILL after a grace period. A Group stops every process
// it started, the last started first.
package procs

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"sync"
	"syscall"
	"time"
)

// DefaultTail is how much output a process keeps when Options.Tail is 0: the
// end of a log, where a failure is.
const DefaultTail = 256 << 10

// ErrTimeout is a process that did not exit within Wait's timeout.
var ErrTimeout = errors.New("did not exit")

// Tail keeps the last bytes written to it; it is safe for concurrent use.
type Tail struct {
	mu  sync.Mutex
	b   []byte
	max int
}

// NewTail keeps the last max bytes.
func NewTail(max int) *Tail { return &Tail{max: max} }

func (t *Tail) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.b = append(t.b, p...)
	if len(t.b) > t.max {
		t.b = append([]byte(nil), t.b[len(t.b)-t.max:]...)
	}
	return len(p), nil
}

func (t *Tail) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return string(t.b)
}

// Options say how a process starts, beyond its command line.
type Options struct {
	// Env is added to this process's environment.
	Env []string
	// Tail is how many bytes of output (stdout and stderr) are kept
	// (DefaultTail when 0).
	Tail int
}

// Proc is a started process.
type Proc struct {
	Name    string
	Started time.Time
	cmd     *exec.Cmd
	out     *Tail
	done    chan struct{}
	err     error     // Wait's, once done is closed
	ended   time.Time // when Wait returned, once done is closed
}

// Start starts bin in its own process group.
func Start(name string, opts Options, bin string, args ...string) (*Proc, error) {
	p := &Proc{Name: name, out: NewTail(opts.Tail), done: make(chan struct{})}
	if p.out.max <= 0 {
		p.out.max = DefaultTail
	}
	p.cmd = exec.Command(bin, args...)
	p.cmd.Env = append(os.Environ(), opts.Env...)
	p.cmd.Stdout, p.cmd.Stderr = p.out, p.out
	p.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	p.cmd.WaitDelay = 5 * time.Second // a grandchild holding the output pipe must not block Wait
	p.Started = time.Now()
	if err := p.cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	go func() {
		p.err = p.cmd.Wait()
		p.ended = time.Now()
		close(p.done)
	}()
	return p, nil
}

// Pid is the process's ID, and its process group's.
func (p *Proc) Pid() int { return p.cmd.Process.Pid }

// Output is the tail of what the process printed so far.
func (p *Proc) Output() string { return p.out.String() }

// Ended is when the process exited; zero while it runs.
func (p *Proc) Ended() time.Time {
	if !p.Exited() {
		return time.Time{}
	}
	return p.ended
}

// Exited reports whether the process has exited.
func (p *Proc) Exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// Kill sends SIGKILL to the process group, as a crash would, and waits for
// the process.
func (p *Proc) Kill() {
	_ = syscall.Kill(-p.Pid(), syscall.SIGKILL)
	<-p.done
}

// Stop sends SIGTERM to the process group, SIGKILL after grace, and waits for
// the process.
func (p *Proc) Stop(grace time.Duration) {
	if p.Exited() {
		return
	}
	_ = syscall.Kill(-p.Pid(), syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(grace):
		p.Kill()
	}
}

// Wait waits up to timeout for the process to exit and returns its exit
// code. Past the timeout the error wraps ErrTimeout; the process runs on.
func (p *Proc) Wait(ctx context.Context, timeout time.Duration) (int, error) {
	select {
	case <-p.done:
	case <-time.After(timeout):
		return -1, fmt.Errorf("%s %w within %s", p.Name, ErrTimeout, timeout)
	case <-ctx.Done():
		return -1, ctx.Err()
	}
	var ee *exec.ExitError
	if errors.As(p.err, &ee) {
		return ee.ExitCode(), nil
	}
	if p.err != nil {
		return -1, fmt.Errorf("%s: %w", p.Name, p.err)
	}
	return 0, nil
}

// Group stops every process it started.
type Group struct {
	// Tail is Options.Tail for the processes the group starts.
	Tail int

	mu   sync.Mutex
	list []*Proc
}

// Start starts bin in its own process group with env added to the
// environment, and registers it to be stopped by StopAll.
func (g *Group) Start(name string, env []string, bin string, args ...string) (*Proc, error) {
	// Held across the start so that StopAll cannot miss a process that
	// is starting.
	g.mu.Lock()
	defer g.mu.Unlock()
	p, err := Start(name, Options{Env: env, Tail: g.Tail}, bin, args...)
	if err != nil {
		return nil, err
	}
	g.list = append(g.list, p)
	return p, nil
}

// StopAll stops the processes, the last started first (what started later
// may depend on what started earlier), each with grace before SIGKILL.
// stopped, when not nil, hears how long each took.
func (g *Group) StopAll(grace time.Duration, stopped func(p *Proc, took time.Duration)) {
	g.mu.Lock()
	list := g.list
	g.list = nil
	g.mu.Unlock()
	for i := len(list) - 1; i >= 0; i-- {
		begin := time.Now()
		list[i].Stop(grace)
		if stopped != nil {
			stopped(list[i], time.Since(begin))
		}
	}
}
