package harness

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// HAProxy is an haproxy process a test started, with its runtime API on a unix
// socket and on a loopback TCP port, both at level admin; it is stopped when
// the test ends.
type HAProxy struct {
	Proc *Proc
	// Socket is the unix stats socket's path; UserSocket is one at level
	// user (which refuses every change: `Permission denied`).
	Socket, UserSocket string
	// TCPSocket is the TCP stats socket, host:port.
	TCPSocket string
	// Config is the path of the configuration haproxy runs.
	Config string
	// Binds are the addresses of the configuration's bind lines.
	Binds []string
}

// bindRE finds the configuration's `bind host:port` lines.
var bindRE = regexp.MustCompile(`(?m)^\s*bind\s+(\S+:\d+)`)

// StartHAProxy runs haproxy in the foreground (-db) on cfg: the defaults,
// frontend and backend sections, optionally after a global section of its
// own; the stats sockets are added to global. It waits until every bind
// address accepts connections. The binary is /usr/sbin/haproxy or haproxy on
// PATH; when there is none the test skips (fails when CI=true).
func StartHAProxy(t testing.TB, cfg string) *HAProxy {
	t.Helper()
	bin := haproxyBinary(t)
	// Unix socket paths are short (108 bytes): not under t.TempDir().
	dir, err := os.MkdirTemp("", "haproxy-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(dir) })
	h := &HAProxy{
		Socket:     filepath.Join(dir, "admin.sock"),
		UserSocket: filepath.Join(dir, "user.sock"),
		TCPSocket:  fmt.Sprintf("127.0.0.1:%d", FreePort(t)),
		Config:     filepath.Join(dir, "haproxy.cfg"),
	}
	stats := fmt.Sprintf("    stats socket %s mode 600 level admin\n    stats socket %s mode 600 level user\n    stats socket ipv4@%s level admin\n",
		h.Socket, h.UserSocket, h.TCPSocket)
	if hasGlobal(cfg) {
		cfg = regexp.MustCompile(`(?m)^global[ \t]*\n`).ReplaceAllLiteralString(cfg, "global\n"+stats)
	} else {
		cfg = "global\n" + stats + "\n" + cfg
	}
	if err := os.WriteFile(h.Config, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, m := range bindRE.FindAllStringSubmatch(cfg, -1) {
		h.Binds = append(h.Binds, strings.TrimPrefix(m[1], "ipv4@"))
	}
	if out, err := exec.Command(bin, "-c", "-f", h.Config).CombinedOutput(); err != nil {
		t.Fatalf("haproxy -c: %v\n%s\nconfig:\n%s", err, out, cfg)
	}
	h.Proc = Start(t, "haproxy", nil, bin, "-db", "-f", h.Config)
	deadline := time.Now().Add(10 * time.Second)
	for _, addr := range append([]string{h.TCPSocket}, h.Binds...) {
		for {
			c, err := net.DialTimeout("tcp", addr, time.Second)
			if err == nil {
				c.Close()
				break
			}
			if h.Proc.Exited() || time.Now().After(deadline) {
				t.Fatalf("haproxy does not accept on %s: %v\n%s", addr, err, h.Proc.Output())
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	for {
		if c, err := net.Dial("unix", h.Socket); err == nil {
			c.Close()
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("haproxy's stats socket %s does not accept\n%s", h.Socket, h.Proc.Output())
		}
		time.Sleep(20 * time.Millisecond)
	}
	return h
}

func hasGlobal(cfg string) bool {
	return regexp.MustCompile(`(?m)^global[ \t]*$`).MatchString(cfg)
}

func haproxyBinary(t testing.TB) string {
	t.Helper()
	if _, err := os.Stat("/usr/sbin/haproxy"); err == nil {
		return "/usr/sbin/haproxy"
	}
	if p, err := exec.LookPath("haproxy"); err == nil {
		return p
	}
	Missing(t, "haproxy", "apt-get install -y haproxy")
	return ""
}
