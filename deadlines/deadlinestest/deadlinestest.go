// Package deadlinestest checks an HTTP server's deadlines the way a slow or
// silent client meets them: through a real TCP connection to the server's
// listener, writing and reading raw HTTP/1.1. Only tests import it.
package deadlinestest

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/cutoverhq/cutover/deadlines"
)

// Slack is how much later than its deadline a busy machine may close a
// connection.
const Slack = 2 * time.Second

// tick is how often the slow checks send a byte.
const tick = 50 * time.Millisecond

// Short are deadlines short enough for a test to wait them out.
func Short() deadlines.Timeouts {
	return deadlines.Timeouts{ReadHeader: 300 * time.Millisecond, Read: 600 * time.Millisecond, Write: 400 * time.Millisecond, Idle: 400 * time.Millisecond}
}

// Request is a request without a body, for the checks.
func Request(t testing.TB, method, url string) *http.Request {
	t.Helper()
	req, err := http.NewRequest(method, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	return req
}

// CheckReads checks the read and idle deadlines of the server at addr, set
// to to: headers sent a byte at a time, body's request with its body sent a
// byte at a time, and a kept-alive connection idle after idle's answer are
// each closed within their deadline (and not much before).
func CheckReads(t testing.TB, addr string, to deadlines.Timeouts, body, idle *http.Request) {
	t.Helper()
	SlowHeaders(t, addr, tick, to.ReadHeader+Slack).Between(t, "headers sent a byte at a time", to.ReadHeader/2, to.ReadHeader+Slack)
	CheckSlowBody(t, addr, to, body)
	Idle(t, addr, idle, to.Idle+Slack).Between(t, "an idle kept-alive connection", to.Idle/2, to.Idle+Slack)
}

// CheckSlowBody checks that req, its body sent a byte at a time, is cut
// within the read deadline of to.
func CheckSlowBody(t testing.TB, addr string, to deadlines.Timeouts, req *http.Request) {
	t.Helper()
	SlowBody(t, addr, req, 1000, tick, to.Read+Slack).Between(t, req.Method+" "+req.URL.Path+" with its body sent a byte at a time", to.Read/2, to.Read+Slack)
}

// Result is how the server ended a connection.
type Result struct {
	// After is how long the server took to close the connection, from the
	// moment the check started waiting for it.
	After time.Duration
	// Got is what the server sent before it closed.
	Got string
}

// SlowHeaders sends a request's headers one byte every tick, as a slowloris
// client does, and returns once the server closes the connection: within
// `within` of the connect, or the test fails.
func SlowHeaders(t testing.TB, addr string, tick, within time.Duration) Result {
	t.Helper()
	c := dial(t, addr)
	head := "GET / HTTP/1.1\r\nHost: deadline.test\r\n" + strings.Repeat("X-Slow: x\r\n", 1000)
	return trickle(t, c, nil, []byte(head), tick, within)
}

// SlowBody sends req's headers at once, announcing a body of n bytes, then
// the body one byte every tick; it returns once the server closes the
// connection: within `within` of the end of the headers, or the test fails.
func SlowBody(t testing.TB, addr string, req *http.Request, n int, tick, within time.Duration) Result {
	t.Helper()
	c := dial(t, addr)
	return trickle(t, c, []byte(Head(req, n)), bytes.Repeat([]byte("a"), n), tick, within)
}

// Head is req's request line and headers with a Content-Length of n, ending
// with the blank line.
func Head(req *http.Request, n int) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s %s HTTP/1.1\r\nHost: %s\r\n", req.Method, req.URL.RequestURI(), req.Host)
	_ = req.Header.Write(&b)
	fmt.Fprintf(&b, "Content-Length: %d\r\n\r\n", n)
	return b.String()
}

// trickle writes head, then body a byte a tick, until the server closes.
func trickle(t testing.TB, c net.Conn, head, body []byte, tick, within time.Duration) Result {
	t.Helper()
	if _, err := c.Write(head); err != nil {
		t.Fatalf("write the request's head: %v", err)
	}
	start := time.Now()
	closed := readUntilClosed(c, start.Add(within))
	tk := time.NewTicker(tick)
	defer tk.Stop()
	for i := 0; ; i++ {
		select {
		case r := <-closed:
			if r.err != nil {
				t.Fatalf("the server kept the connection open past %s while the client sent a byte every %s (%d sent): %v", within, tick, i, r.err)
			}
			return Result{After: time.Since(start), Got: r.got}
		case <-tk.C:
			if i < len(body) {
				_, _ = c.Write(body[i : i+1]) // a failed write is the server closing: the reader sees it
			}
		}
	}
}

// Idle sends req whole, reads its whole answer, and then sends nothing: the
// server must close the kept-alive connection within `within`. After counts
// from the end of the answer.
func Idle(t testing.TB, addr string, req *http.Request, within time.Duration) Result {
	t.Helper()
	c := dial(t, addr)
	br := bufio.NewReader(c)
	if err := req.Write(c); err != nil {
		t.Fatalf("write the request: %v", err)
	}
	_ = c.SetReadDeadline(time.Now().Add(within))
	resp, err := http.ReadResponse(br, req)
	if err != nil {
		t.Fatalf("read the answer: %v", err)
	}
	_, err = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if err != nil {
		t.Fatalf("read the answer's body: %v", err)
	}
	if resp.Close {
		t.Fatalf("the server closes the connection after the answer (%s): nothing idles", resp.Status)
	}
	start := time.Now()
	r := <-readUntilClosed(readerConn{c, br}, start.Add(within))
	if r.err != nil {
		t.Fatalf("the server kept an idle connection open past %s: %v", within, r.err)
	}
	return Result{After: time.Since(start), Got: r.got}
}

// Unanswered sends req whole and reads: the server must close the
// connection within `within`. A handler that worked past the write deadline
// closes it so, with nothing (or less than an answer) sent.
func Unanswered(t testing.TB, addr string, req *http.Request, within time.Duration) Result {
	t.Helper()
	c := dial(t, addr)
	if err := req.Write(c); err != nil {
		t.Fatalf("write the request: %v", err)
	}
	start := time.Now()
	r := <-readUntilClosed(c, start.Add(within))
	if r.err != nil {
		t.Fatalf("the server kept the connection open past %s: %v", within, r.err)
	}
	return Result{After: time.Since(start), Got: r.got}
}

// NotReading sends req whole and reads nothing for wait, as a client that
// stopped reading its answer; then it reads what is left: the server must
// have closed the connection by then, so the read ends within `within` (a
// server still writing would keep it going). After counts from the request.
func NotReading(t testing.TB, addr string, req *http.Request, wait, within time.Duration) Result {
	t.Helper()
	// The server must write enough to fill the buffers on the way (some MB on
	// loopback) for its writes to block. A smaller receive buffer here would
	// block them sooner, but then the bytes already sent drain slowly through
	// the small window after the server gives up.
	c := dial(t, addr)
	if err := req.Write(c); err != nil {
		t.Fatalf("write the request: %v", err)
	}
	start := time.Now()
	time.Sleep(wait)
	r := <-readUntilClosed(c, time.Now().Add(within))
	if r.err != nil {
		t.Fatalf("the server kept writing to a client that read nothing for %s: %v", wait, r.err)
	}
	return Result{After: time.Since(start), Got: r.got}
}

type readResult struct {
	got string
	err error // nil when the server closed the connection
}

// readUntilClosed reads c until the server closes it (EOF or a reset), or
// until the deadline, which is an error.
func readUntilClosed(c io.Reader, deadline time.Time) <-chan readResult {
	out := make(chan readResult, 1)
	if dc, ok := c.(interface{ SetReadDeadline(time.Time) error }); ok {
		_ = dc.SetReadDeadline(deadline)
	}
	go func() {
		var got bytes.Buffer
		buf := make([]byte, 32<<10)
		for {
			n, err := c.Read(buf)
			if got.Len() < 64<<10 {
				got.Write(buf[:n])
			}
			if err == nil {
				continue
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				out <- readResult{got.String(), err}
			} else {
				out <- readResult{got.String(), nil} // EOF or reset: closed
			}
			return
		}
	}()
	return out
}

// readerConn reads through a bufio.Reader that may hold bytes already, and
// sets deadlines on the connection under it.
type readerConn struct {
	net.Conn
	r *bufio.Reader
}

func (c readerConn) Read(p []byte) (int, error) { return c.r.Read(p) }

func dial(t testing.TB, addr string) net.Conn {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatalf("dial %s: %v", addr, err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// Between fails the test unless the server closed the connection between lo
// and hi: not before (another cause closed it), not after (the deadline did
// not hold).
func (r Result) Between(t testing.TB, what string, lo, hi time.Duration) {
	t.Helper()
	t.Logf("%s: closed after %s", what, r.After.Round(time.Millisecond))
	if r.After < lo || r.After > hi {
		t.Errorf("%s: closed after %s, want between %s and %s", what, r.After.Round(time.Millisecond), lo, hi)
	}
}
