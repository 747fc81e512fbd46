package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// The process handling here is the tests/harness pattern without testing.TB:
// every process the benchmark starts is registered in a procs, which stops them
// all (SIGTERM to the process group, SIGKILL after a grace period, then waits)
// in reverse order before the benchmark exits, whatever happened.

// tailBuffer keeps the last max bytes a process printed.
type tailBuffer struct {
	mu  sync.Mutex
	b   []byte
	max int
}

func (t *tailBuffer) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.b = append(t.b, p...)
	if len(t.b) > t.max {
		t.b = append([]byte(nil), t.b[len(t.b)-t.max:]...)
	}
	return len(p), nil
}

func (t *tailBuffer) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return string(t.b)
}

// proc is a process the benchmark started.
type proc struct {
	name    string
	cmd     *exec.Cmd
	out     *tailBuffer
	done    chan struct{}
	err     error
	started time.Time
	ended   time.Time // when Wait returned
}

// procs stops every process it started.
type procs struct {
	mu   sync.Mutex
	list []*proc
}

// start starts bin in its own process group with env added to the environment.
func (ps *procs) start(name string, env []string, bin string, args ...string) (*proc, error) {
	p := &proc{name: name, out: &tailBuffer{max: 256 << 10}, done: make(chan struct{})}
	p.cmd = exec.Command(bin, args...)
	p.cmd.Env = append(os.Environ(), env...)
	p.cmd.Stdout, p.cmd.Stderr = p.out, p.out
	p.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	p.cmd.WaitDelay = 5 * time.Second // a grandchild holding the output pipe must not block Wait
	ps.mu.Lock()
	defer ps.mu.Unlock()
	p.started = time.Now()
	if err := p.cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	go func() {
		p.err = p.cmd.Wait()
		p.ended = time.Now()
		close(p.done)
	}()
	ps.list = append(ps.list, p)
	return p, nil
}

// stopAll stops the processes, the last started first.
func (ps *procs) stopAll() {
	ps.mu.Lock()
	list := ps.list
	ps.list = nil
	ps.mu.Unlock()
	for i := len(list) - 1; i >= 0; i-- {
		begin := time.Now()
		list[i].stop(10 * time.Second)
		if d := time.Since(begin); d > 2*time.Second {
			logf("stopping %s took %s", list[i].name, d.Round(time.Millisecond))
		}
	}
}

func (p *proc) pid() int { return p.cmd.Process.Pid }

func (p *proc) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// stop sends SIGTERM to the process group, SIGKILL after grace, and waits.
func (p *proc) stop(grace time.Duration) {
	if p.exited() {
		return
	}
	_ = syscall.Kill(-p.pid(), syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(grace):
		_ = syscall.Kill(-p.pid(), syscall.SIGKILL)
		<-p.done
	}
}

// wait waits up to timeout for the process to exit and returns its exit code.
func (p *proc) wait(ctx context.Context, timeout time.Duration) (int, error) {
	select {
	case <-p.done:
	case <-time.After(timeout):
		return -1, fmt.Errorf("%s did not exit within %s; output:\n%s", p.name, timeout, tail(p.out.String(), 3000))
	case <-ctx.Done():
		return -1, ctx.Err()
	}
	var ee *exec.ExitError
	if errors.As(p.err, &ee) {
		return ee.ExitCode(), nil
	}
	if p.err != nil {
		return -1, fmt.Errorf("%s: %w", p.name, p.err)
	}
	return 0, nil
}

// cpuTime is the CPU time (user + system) the process has used so far, from
// /proc/PID/stat, or 0 when it cannot be read.
func (p *proc) cpuTime() time.Duration { return cpuTimeOf(p.pid()) }

// cpuTimeOf is the CPU time (user + system) process pid has used so far.
func cpuTimeOf(pid int) time.Duration {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	// The command name (field 2) may hold spaces: count fields after its ')'.
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return 0
	}
	f := strings.Fields(s[i+1:])
	if len(f) < 13 {
		return 0
	}
	utime, _ := strconv.ParseInt(f[11], 10, 64) // field 14
	stime, _ := strconv.ParseInt(f[12], 10, 64) // field 15
	return time.Duration(utime+stime) * time.Second / clkTck
}

const clkTck = 100 // USER_HZ on Linux

// machineBusy is the CPU time all CPUs of the machine have spent running
// processes, or stolen by the hypervisor, so far (user, nice, system, steal
// from /proc/stat). Interrupt and softirq time is left out: loopback
// networking is accounted there rather than to the processes that cause it.
func machineBusy() time.Duration {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0
	}
	line, _, _ := strings.Cut(string(b), "\n")
	f := strings.Fields(line)
	if len(f) < 9 || f[0] != "cpu" {
		return 0
	}
	var busy int64
	for i, v := range f[1:9] { // user nice system idle iowait irq softirq steal
		if i == 3 || i == 4 || i == 5 || i == 6 { // idle, iowait, irq, softirq
			continue
		}
		n, _ := strconv.ParseInt(v, 10, 64)
		busy += n
	}
	return time.Duration(busy) * time.Second / clkTck
}

// run runs a command to completion and returns its combined output and exit code.
func run(ctx context.Context, timeout time.Duration, env []string, bin string, args ...string) (string, int, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Env = append(os.Environ(), env...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.WaitDelay = 5 * time.Second
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	var ee *exec.ExitError
	switch {
	case errors.As(err, &ee):
		return out.String(), ee.ExitCode(), nil
	case err != nil:
		return out.String(), -1, fmt.Errorf("%s %s: %w", filepath.Base(bin), strings.Join(args, " "), err)
	}
	return out.String(), 0, nil
}

func tail(s string, n int) string {
	if len(s) > n {
		return "..." + s[len(s)-n:]
	}
	return s
}

// freePort returns a loopback port that was free a moment ago.
func freePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("find a free port: %w", err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

func freeAddr() (string, error) {
	p, err := freePort()
	if err != nil {
		return "", err
	}
	return fmt.Sprintf("127.0.0.1:%d", p), nil
}

// waitFor polls cond every 50ms until it holds, within, ctx ends, or the
// process (if any) exits.
func waitFor(ctx context.Context, within time.Duration, what string, p *proc, cond func() bool) error {
	deadline := time.Now().Add(within)
	for !cond() {
		if p != nil && p.exited() {
			return fmt.Errorf("%s exited while waiting for %s; output:\n%s", p.name, what, tail(p.out.String(), 3000))
		}
		if time.Now().After(deadline) {
			msg := fmt.Sprintf("timed out after %s waiting for %s", within, what)
			if p != nil {
				msg += "; output of " + p.name + ":\n" + tail(p.out.String(), 3000)
			}
			return errors.New(msg)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
	return nil
}

// answers2xx reports whether GET url answers 2xx within a second.
func answers2xx(url string) bool {
	c := &http.Client{Timeout: time.Second, Transport: &http.Transport{Proxy: nil}}
	defer c.CloseIdleConnections()
	resp, err := c.Get(url)
	if err != nil {
		return false
	}
	resp.Body.Close()
	return resp.StatusCode >= 200 && resp.StatusCode < 300
}
