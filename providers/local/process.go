package local

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// Instance is one running process of the app.
type Instance struct {
	PID     int       `json:"pid"`
	Port    int       `json:"port"`
	URL     string    `json:"url"`
	Log     string    `json:"log"`
	Started time.Time `json:"started"`
}

// alive reports whether the instance's process still runs. A process this
// worker started is reaped by its Wait goroutine, so a zombie does not count.
func (in Instance) alive() bool {
	if in.PID <= 0 {
		return false
	}
	if err := syscall.Kill(in.PID, 0); err != nil && !errors.Is(err, syscall.EPERM) {
		return false
	}
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", in.PID))
	if err != nil {
		return true // no procfs: trust kill(0)
	}
	// The state is the field after the command name in parentheses; Z is a zombie.
	if i := bytes.LastIndexByte(b, ')'); i >= 0 && i+2 < len(b) {
		return b[i+2] != 'Z'
	}
	return true
}

// freePort asks the kernel for a free loopback port.
func freePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("find a free port: %w", err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

// startInstance starts one process of the app with PORT and VERSION set. It runs
// in its own process group, so it outlives the worker that started it: a
// restarted worker finds it through the pool's state file.
func startInstance(command []string, dir string, env []string, logPath string) (Instance, error) {
	port, err := freePort()
	if err != nil {
		return Instance{}, err
	}
	logFile, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o644)
	if err != nil {
		return Instance{}, fmt.Errorf("open instance log: %w", err)
	}
	defer logFile.Close()
	cmd := exec.Command(command[0], command[1:]...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), env...)
	cmd.Env = append(cmd.Env, "PORT="+strconv.Itoa(port))
	cmd.Stdout, cmd.Stderr = logFile, logFile
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		return Instance{}, fmt.Errorf("start %s: %w", strings.Join(command, " "), err)
	}
	go func() { _ = cmd.Wait() }() // reap it, so that a stopped instance is not a zombie
	return Instance{
		PID:     cmd.Process.Pid,
		Port:    port,
		URL:     fmt.Sprintf("http://127.0.0.1:%d", port),
		Log:     logPath,
		Started: time.Now().UTC(),
	}, nil
}

// stopInstance sends SIGTERM to the instance's process group and SIGKILL after
// grace. It is a no-op for a process that is gone.
func stopInstance(ctx context.Context, in Instance, grace time.Duration) error {
	if !in.alive() {
		return nil
	}
	if err := syscall.Kill(-in.PID, syscall.SIGTERM); err != nil && !errors.Is(err, syscall.ESRCH) {
		return fmt.Errorf("stop instance %d (pid %d): %w", in.Port, in.PID, err)
	}
	deadline := time.Now().Add(grace)
	for in.alive() {
		if time.Now().After(deadline) || ctx.Err() != nil {
			_ = syscall.Kill(-in.PID, syscall.SIGKILL)
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	for i := 0; i < 100 && in.alive(); i++ {
		time.Sleep(20 * time.Millisecond)
	}
	return nil
}

// probe GETs path on the instance and returns nil on a 2xx answer.
func probe(ctx context.Context, client *http.Client, in Instance, path string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, in.URL+path, nil)
	if err != nil {
		return err
	}
	resp, err := client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return fmt.Errorf("GET %s answered %s", path, resp.Status)
	}
	return nil
}

// waitHealthy waits until the instance answers its health path, it exits, or the
// deadline passes. The error names the instance and shows its last output lines.
func waitHealthy(ctx context.Context, client *http.Client, in Instance, path string, deadline time.Time) error {
	var last error
	for {
		pctx, cancel := context.WithTimeout(ctx, time.Second)
		last = probe(pctx, client, in, path)
		cancel()
		switch {
		case last == nil:
			return nil
		case ctx.Err() != nil:
			return ctx.Err()
		case !in.alive():
			return fmt.Errorf("instance on port %d exited before it was healthy; last output:\n%s", in.Port, tail(in.Log, 10))
		case time.Now().After(deadline):
			return fmt.Errorf("instance on port %d not healthy in time (%v); last output:\n%s", in.Port, last, tail(in.Log, 10))
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// tail returns the last n lines of a file, indented, for error messages.
func tail(path string, n int) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return "  (no output: " + err.Error() + ")"
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	if len(lines) == 1 && lines[0] == "" {
		return "  (no output)"
	}
	return "  " + strings.Join(lines, "\n  ")
}
