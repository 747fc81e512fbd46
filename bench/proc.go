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
	"syscall"
	"time"

	"github.com/cutoverhq/cutover/procs"
)

// Every process the benchmark starts is registered in a procs.Group, which
// stops them all (SIGTERM to the process group, SIGKILL after a grace period,
// then waits) in reverse order before the benchmark exits, whatever happened.

// stopAll stops the group's processes, saying which took long.
func stopAll(ps *procs.Group) {
	ps.StopAll(10*time.Second, func(p *procs.Proc, took time.Duration) {
		if took > 2*time.Second {
			logf("stopping %s took %s", p.Name, took.Round(time.Millisecond))
		}
	})
}

// waitExit waits up to timeout for p to exit and returns its exit code; past
// the timeout the error holds the end of its output.
func waitExit(ctx context.Context, p *procs.Proc, timeout time.Duration) (int, error) {
	code, err := p.Wait(ctx, timeout)
	if errors.Is(err, procs.ErrTimeout) {
		return code, fmt.Errorf("%w; output:\n%s", err, tail(p.Output(), 3000))
	}
	return code, err
}

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
func waitFor(ctx context.Context, within time.Duration, what string, p *procs.Proc, cond func() bool) error {
	deadline := time.Now().Add(within)
	for !cond() {
		if p != nil && p.Exited() {
			return fmt.Errorf("%s exited while waiting for %s; output:\n%s", p.Name, what, tail(p.Output(), 3000))
		}
		if time.Now().After(deadline) {
			msg := fmt.Sprintf("timed out after %s waiting for %s", within, what)
			if p != nil {
				msg += "; output of " + p.Name + ":\n" + tail(p.Output(), 3000)
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
