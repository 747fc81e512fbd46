package router

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/textproto"
	"strings"
	"sync"
	"time"
)

// The lean path proxies the common request (an idempotent method without a
// body, to a plain-http instance, no protocol upgrade) on the goroutine that
// serves it: it writes the request to a pooled connection and reads the
// answer itself. httputil.ReverseProxy and http.Transport hand every request
// to two goroutines per backend connection (one writes, one reads), clone the
// request and its headers and trace it: in the router's closed-loop profile
// the transport's two goroutines alone were a quarter of its CPU
// (docs/benchmarks.md, section 1), and BenchmarkProxy/plain against
// BenchmarkProxy/reverseproxy shows what the lean path saves. Everything else
// keeps going through ReverseProxy.

// leanIdleFor is how long a connection may wait in the pool. Apps close idle
// connections after a while (net/http's servers after their IdleTimeout); a
// request that meets a closed one costs a second attempt.
const leanIdleFor = 30 * time.Second

// leanMaxIdle is how many idle connections an instance keeps, as the
// transport's MaxIdleConnsPerHost.
const leanMaxIdle = 128

// leanConn is one connection to an instance.
type leanConn struct {
	net.Conn
	br     *bufio.Reader
	bw     *bufio.Writer
	idleAt time.Time
}

// idleConns is an instance's pool of idle connections, the most recent last.
type idleConns struct {
	mu    sync.Mutex
	conns []*leanConn
	// closed is set once the instance left both pools: a connection an
	// answer in flight gives back then is closed, not kept.
	closed bool
}

// get returns an idle connection idle for less than leanIdleFor, or nil.
func (p *idleConns) get(now time.Time) *leanConn {
	p.mu.Lock()
	defer p.mu.Unlock()
	for len(p.conns) > 0 {
		c := p.conns[len(p.conns)-1]
		p.conns = p.conns[:len(p.conns)-1]
		if now.Sub(c.idleAt) < leanIdleFor {
			return c
		}
		c.Close()
	}
	return nil
}

func (p *idleConns) put(c *leanConn, now time.Time) {
	c.idleAt = now
	p.mu.Lock()
	if !p.closed && len(p.conns) < leanMaxIdle {
		p.conns = append(p.conns, c)
		c = nil
	}
	p.mu.Unlock()
	if c != nil {
		c.Close()
	}
}

// closeAll closes every idle connection, and those given back later.
func (p *idleConns) closeAll() {
	p.mu.Lock()
	conns := p.conns
	p.conns, p.closed = nil, true
	p.mu.Unlock()
	for _, c := range conns {
		c.Close()
	}
}

// leanable says whether req may take the lean path to in.
func leanable(req *http.Request, in *instance) bool {
	if in.url.Scheme != "http" || req.ProtoMajor != 1 {
		return false
	}
	if req.ContentLength != 0 || (req.Body != nil && req.Body != http.NoBody) {
		return false // a body cannot be sent again when a pooled connection turns out closed
	}
	if !idempotent(req.Method) || req.URL.Opaque != "" || strings.Contains(req.URL.RawQuery, ";") {
		return false // ReverseProxy drops unparsable query parameters; it keeps that job
	}
	h := req.Header
	return len(h["Upgrade"]) == 0 && len(h["Expect"]) == 0
}

// hopHeader says whether k is a hop-by-hop header, which a proxy does not
// forward (RFC 9110, section 7.6.1); the list is ReverseProxy's.
func hopHeader(k string) bool {
	switch k {
	case "Connection", "Proxy-Connection", "Keep-Alive", "Proxy-Authenticate", "Proxy-Authorization",
		"Te", "Trailer", "Transfer-Encoding", "Upgrade":
		return true
	}
	return false
}

// forwardedHeader says whether k is set by the router alone, as
// ReverseProxy's Rewrite mode does: what a user sends in it is dropped.
func forwardedHeader(k string) bool {
	switch k {
	case "Forwarded", "X-Forwarded-For", "X-Forwarded-Host", "X-Forwarded-Proto", HeaderColor:
		return true
	}
	return false
}

// connectionTokens returns the headers named in h's Connection header, which
// are hop-by-hop too; nil (the usual case) when there are none.
func connectionTokens(h http.Header) map[string]bool {
	var m map[string]bool
	for _, v := range h["Connection"] {
		for f := range strings.SplitSeq(v, ",") {
			if f = textproto.TrimString(f); f != "" {
				if m == nil {
					m = make(map[string]bool)
				}
				m[http.CanonicalHeaderKey(f)] = true
			}
		}
	}
	return m
}

// writeLeanRequest writes req, as forwarded to an instance, to bw.
func writeLeanRequest(bw *bufio.Writer, req *http.Request) error {
	bw.WriteString(req.Method)
	bw.WriteByte(' ')
	bw.WriteString(req.URL.RequestURI())
	bw.WriteString(" HTTP/1.1\r\nHost: ")
	bw.WriteString(req.Host) // apps see the host users asked for
	bw.WriteString("\r\n")
	drop := connectionTokens(req.Header)
	for k, vs := range req.Header {
		if hopHeader(k) || forwardedHeader(k) || drop[k] {
			continue
		}
		for _, v := range vs {
			bw.WriteString(k)
			bw.WriteString(": ")
			bw.WriteString(v)
			bw.WriteString("\r\n")
		}
	}
	for _, v := range req.Header["Te"] {
		if strings.Contains(strings.ToLower(v), "trailers") {
			bw.WriteString("Te: trailers\r\n")
			break
		}
	}
	if ip, _, err := net.SplitHostPort(req.RemoteAddr); err == nil {
		bw.WriteString("X-Forwarded-For: ")
		bw.WriteString(ip)
		bw.WriteString("\r\n")
	}
	bw.WriteString("X-Forwarded-Host: ")
	bw.WriteString(req.Host)
	if req.TLS == nil {
		bw.WriteString("\r\nX-Forwarded-Proto: http\r\n\r\n")
	} else {
		bw.WriteString("\r\nX-Forwarded-Proto: https\r\n\r\n")
	}
	return bw.Flush()
}

// cutter cuts the connection of a request whose user went away: its
// deadline moves to the past, which ends a write or read in progress. The
// connection is then not reused.
type cutter struct {
	mu   sync.Mutex
	conn net.Conn
	gone bool
}

// watch makes conn the one to cut.
func (c *cutter) watch(conn net.Conn) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.conn = conn
	if c.gone {
		_ = conn.SetDeadline(time.Unix(1, 0))
	}
}

func (c *cutter) cut() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.gone = true
	if c.conn != nil {
		_ = c.conn.SetDeadline(time.Unix(1, 0))
	}
}

// leanAttempt sends req to rt.inst once, on c (a pooled connection) or a new
// one, and reads the answer's head. On success the caller owns the returned
// connection.
func (r *Router) leanAttempt(req *http.Request, rt *route, c *leanConn, cut *cutter) (*http.Response, *leanConn, error) {
	if c == nil {
		conn, err := r.dialer.DialContext(req.Context(), "tcp", rt.inst.url.Host)
		if err != nil {
			return nil, nil, err
		}
		c = &leanConn{Conn: conn, br: bufio.NewReaderSize(conn, 4<<10), bw: bufio.NewWriterSize(conn, 4<<10)}
	}
	cut.watch(c.Conn)
	if err := writeLeanRequest(c.bw, req); err != nil {
		c.Close()
		return nil, nil, err
	}
	resp, err := http.ReadResponse(c.br, req)
	if err != nil {
		c.Close()
		return nil, nil, err
	}
	return resp, c, nil
}

// leanRoundTrip sends req to rt.inst and returns the answer's head, retrying
// as retryTransport does: a pooled connection that turns out closed is
// replaced by a new one to the same instance first, as http.Transport does.
func (r *Router) leanRoundTrip(req *http.Request, rt *route, cut *cutter) (*http.Response, *leanConn, error) {
	if c := rt.inst.idle.get(time.Now()); c != nil {
		resp, c, err := r.leanAttempt(req, rt, c, cut)
		if err == nil || !connectFailed(req.Context(), err) {
			return resp, c, err
		}
	}
	resp, c, err := r.leanAttempt(req, rt, nil, cut)
	if err == nil || !connectFailed(req.Context(), err) {
		return resp, c, err
	}
	r.eject(rt, err)
	cl, in := r.retryTarget(rt, time.Now())
	if in == nil || in.url.Scheme != "http" {
		return nil, nil, err // an https instance is for ReverseProxy, which has its own retry
	}
	r.metrics.retries.Inc()
	r.track(rt, -1)
	rt.color, rt.inst = cl, in
	r.track(rt, 1)
	resp, c, err = r.leanAttempt(req, rt, nil, cut) // a new connection: this is the last try
	if err != nil && connectFailed(req.Context(), err) {
		r.eject(rt, err)
	}
	return resp, c, err
}

// serveLean proxies req on the lean path; leanable(req, rt.inst) holds.
func (r *Router) serveLean(w http.ResponseWriter, req *http.Request, rt *route) {
	cut := &cutter{}
	stop := context.AfterFunc(req.Context(), cut.cut)
	resp, c, err := r.leanRoundTrip(req, rt, cut)
	if err != nil {
		stop()
		r.failed(w, req, rt, err)
		return
	}
	reusable := false
	defer func() {
		// stop is false once cut has run: the deadline it set spoilt c.
		if !stop() || !reusable {
			c.Close()
			return
		}
		rt.inst.idle.put(c, time.Now())
	}()
	reusable = r.relay(w, resp, c.br, rt)
}

// relay writes resp to w and reports whether resp's connection may be reused.
// It panics with http.ErrAbortHandler, as ReverseProxy does, when the answer
// cannot be finished: net/http then drops the user's connection, so that a
// cut answer does not pass for a whole one.
func (r *Router) relay(w http.ResponseWriter, resp *http.Response, br *bufio.Reader, rt *route) bool {
	for resp.StatusCode >= 100 && resp.StatusCode < 200 {
		if resp.StatusCode == http.StatusSwitchingProtocols {
			// No upgrade was asked for (those go through ReverseProxy).
			resp.Body.Close()
			r.failed(w, resp.Request, rt, errors.New("101 Switching Protocols to a request without Upgrade"))
			return false
		}
		// An informational answer (103 Early Hints) goes to the user as it came.
		h := w.Header()
		copyResponseHeader(h, resp.Header)
		w.WriteHeader(resp.StatusCode)
		clear(h) // net/http keeps them for the final answer otherwise
		next, err := http.ReadResponse(br, resp.Request)
		if err != nil {
			r.failed(w, resp.Request, rt, err)
			return false
		}
		resp = next
	}
	r.answered(rt, resp)
	h := w.Header()
	copyResponseHeader(h, resp.Header)
	announced := len(resp.Trailer)
	if announced > 0 {
		keys := make([]string, 0, len(resp.Trailer))
		for k := range resp.Trailer {
			keys = append(keys, k)
		}
		h.Add("Trailer", strings.Join(keys, ", "))
	}
	w.WriteHeader(resp.StatusCode)
	// A streamed answer (no length, or server-sent events) goes out as it
	// comes, as ReverseProxy sends it.
	flush := resp.ContentLength == -1 || eventStream(resp.Header.Get("Content-Type"))
	var rc *http.ResponseController
	if flush || announced > 0 {
		rc = http.NewResponseController(w)
	}
	if announced > 0 {
		_ = rc.Flush() // trailers need a chunked answer
	}
	bp := r.proxy.BufferPool
	buf := bp.Get()
	defer bp.Put(buf)
	for {
		n, rerr := resp.Body.Read(buf)
		if n > 0 {
			if _, err := w.Write(buf[:n]); err != nil {
				resp.Body.Close()
				panic(http.ErrAbortHandler)
			}
			if flush {
				if err := rc.Flush(); err != nil {
					resp.Body.Close()
					panic(http.ErrAbortHandler)
				}
			}
		}
		if rerr == io.EOF {
			break
		}
		if rerr != nil {
			resp.Body.Close()
			r.log.Warn("answer cut", "color", rt.color.String(), "instance", rt.inst.key, "err", rerr)
			panic(http.ErrAbortHandler)
		}
	}
	resp.Body.Close()
	// Trailers the instance announced go out under their names; when it sent
	// others too, all go with http.TrailerPrefix, as ReverseProxy does.
	prefix := ""
	if len(resp.Trailer) != announced {
		prefix = http.TrailerPrefix
	}
	for k, vs := range resp.Trailer {
		for _, v := range vs {
			h.Add(prefix+k, v)
		}
	}
	return !resp.Close
}

// eventStream says whether a Content-Type is text/event-stream, without
// mime.ParseMediaType's allocations on every answer.
func eventStream(ct string) bool {
	const es = "text/event-stream"
	return len(ct) >= len(es) && strings.EqualFold(ct[:len(es)], es) && (len(ct) == len(es) || ct[len(es)] == ';' || ct[len(es)] == ' ')
}

// copyResponseHeader copies an instance's answer headers to the user's,
// hop-by-hop ones aside. The values are shared, not copied: the answer is
// dropped once relayed.
func copyResponseHeader(dst, src http.Header) {
	drop := connectionTokens(src)
	for k, vs := range src {
		if hopHeader(k) || drop[k] {
			continue
		}
		if len(dst[k]) == 0 {
			dst[k] = vs
		} else {
			dst[k] = append(dst[k], vs...)
		}
	}
}
