package router

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httputil"
	"sync"
	"syscall"
	"time"
)

type routeKey struct{}

func routeFrom(ctx context.Context) *route {
	rt, _ := ctx.Value(routeKey{}).(*route)
	return rt
}

// statusClientClosed records a request whose client went away before an
// answer (nginx's convention); it is never written.
const statusClientClosed = 499

const maintenancePage = `<!doctype html>
<html lang="en">
<head><meta charset="utf-8"><title>Down for maintenance</title></head>
<body><h1>Down for maintenance</h1><p>We'll be back shortly. Please try again in a minute.</p></body>
</html>
`

// newDialer returns the dialer to the instances. The dial timeout is short
// because instances are on loopback: a slow connect means a dead instance, and
// the retry should move on quickly.
func newDialer() *net.Dialer { return &net.Dialer{Timeout: time.Second, KeepAlive: 30 * time.Second} }

// newTransport returns ReverseProxy's transport to the instances.
func newTransport(d *net.Dialer) *http.Transport {
	return &http.Transport{
		Proxy:                 nil, // instances are local: never go through $HTTP_PROXY
		DialContext:           d.DialContext,
		MaxIdleConns:          512,
		MaxIdleConnsPerHost:   128,
		IdleConnTimeout:       90 * time.Second,
		TLSHandshakeTimeout:   5 * time.Second,
		ExpectContinueTimeout: time.Second,
		// The user's Accept-Encoding goes to the app as sent. Otherwise, for a
		// user that sent none, the transport asks the app for gzip and unzips
		// the answer itself: CPU spent on both sides for an answer the user
		// gets uncompressed anyway.
		DisableCompression: true,
	}
}

// bufferPool lends ReverseProxy and the lean path their copy buffers:
// without one ReverseProxy allocates 32 KiB for every answer, which was most
// of the router's garbage. It keeps array pointers, not slices: putting a
// slice in a sync.Pool allocates its header every time.
type bufferPool struct{ p sync.Pool }

const copyBufferSize = 32 << 10

func (b *bufferPool) Get() []byte {
	if buf, ok := b.p.Get().(*[copyBufferSize]byte); ok {
		return buf[:]
	}
	return make([]byte, copyBufferSize)
}

// Put keeps buf when it is one of Get's.
func (b *bufferPool) Put(buf []byte) {
	if cap(buf) >= copyBufferSize {
		b.p.Put((*[copyBufferSize]byte)(buf[:copyBufferSize]))
	}
}

func (r *Router) newProxy() *httputil.ReverseProxy {
	return &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			rt := routeFrom(pr.In.Context())
			// An instance's URL is a bare scheme and host (parseInstanceURL), so
			// the request keeps its path and query: what SetURL would do, without
			// its path joining.
			pr.Out.URL.Scheme, pr.Out.URL.Host = rt.inst.url.Scheme, rt.inst.url.Host
			pr.Out.Host = pr.In.Host // apps see the host users asked for
			pr.SetXForwarded()
			pr.Out.Header.Del(HeaderColor)
		},
		Transport:      &retryTransport{r: r, base: r.transport},
		ModifyResponse: r.modifyResponse,
		ErrorHandler:   r.proxyError,
		BufferPool:     &bufferPool{},
		ErrorLog:       slog.NewLogLogger(r.log.Handler(), slog.LevelWarn),
	}
}

// serveUser serves user traffic.
func (r *Router) serveUser(w http.ResponseWriter, req *http.Request) {
	start := time.Now()
	// net/http set the write deadline to Write from now when it read the request.
	sw := &stallWriter{ResponseWriter: w, stall: r.cfg.UserTimeouts.Write, until: start.Add(r.cfg.UserTimeouts.Write)}
	// What net/http writes after the handler (the end of a chunked body) gets
	// a deadline of its own too.
	defer sw.extend()
	w = sw
	t := r.table.Load()
	if t.maintenance {
		h := w.Header()
		h.Set("Content-Type", "text/html; charset=utf-8")
		h.Set("Retry-After", "30")
		h.Set("Cache-Control", "no-store")
		w.WriteHeader(http.StatusServiceUnavailable)
		_, _ = io.WriteString(w, maintenancePage)
		r.metrics.unrouted(http.StatusServiceUnavailable)
		return
	}
	hc, set, ok := headerColor(req)
	if !ok {
		http.Error(w, "400 bad request: "+HeaderColor+" must be blue or green", http.StatusBadRequest)
		r.metrics.unrouted(http.StatusBadRequest)
		return
	}
	rt := r.choose(t, req, hc, set, start)
	if rt.inst == nil {
		http.Error(w, "502 bad gateway: no healthy instance", http.StatusBadGateway)
		r.metrics.unrouted(http.StatusBadGateway)
		return
	}
	r.track(&rt, 1)
	// Deferred: both paths panic with http.ErrAbortHandler when copying the
	// response body fails, and the in-flight counts must come down anyway.
	defer func() {
		r.track(&rt, -1)
		r.metrics.routed(&rt, time.Since(start))
	}()
	if !r.reverseProxyOnly && leanable(req, rt.inst) {
		r.serveLean(w, req, &rt)
		return
	}
	r.proxy.ServeHTTP(w, req.WithContext(context.WithValue(req.Context(), routeKey{}, &rt)))
}

// track counts a request in (d=1) or out (d=-1) of its route's color and instance.
func (r *Router) track(rt *route, d int64) {
	r.inFlight[rt.color].Add(d)
	rt.inst.inFlight.Add(d)
	r.metrics.bind(rt.color, rt.inst).inFlight.Add(float64(d))
}

func (r *Router) modifyResponse(resp *http.Response) error {
	r.answered(routeFrom(resp.Request.Context()), resp)
	return nil
}

// answered records the status of resp, the instance's answer, and adds the
// sticky cookie to it.
func (r *Router) answered(rt *route, resp *http.Response) {
	rt.code = resp.StatusCode
	// The cookie names the color that actually served, which after a fallback or
	// retry may not be the one the weights chose.
	if r.cfg.Sticky && !rt.pinned && rt.cookie != rt.color.String() {
		ck := &http.Cookie{Name: CookieName, Value: rt.color.String(), Path: "/", HttpOnly: true, SameSite: http.SameSiteLaxMode}
		resp.Header.Add("Set-Cookie", ck.String())
	}
}

func (r *Router) proxyError(w http.ResponseWriter, req *http.Request, err error) {
	r.failed(w, req, routeFrom(req.Context()), err)
}

// failed answers a request that no instance answered.
func (r *Router) failed(w http.ResponseWriter, req *http.Request, rt *route, err error) {
	if req.Context().Err() != nil {
		rt.code = statusClientClosed // nobody is left to answer
		return
	}
	rt.code = http.StatusBadGateway
	r.log.Warn("request failed", "color", rt.color.String(), "instance", rt.inst.key, "method", req.Method, "path", req.URL.Path, "err", err)
	http.Error(w, "502 bad gateway: the app did not answer", http.StatusBadGateway)
}

// retryTransport ejects an instance that fails to connect and retries the
// request once on another one. Only bodiless requests are retried: a body has
// been consumed by the first attempt and cannot be replayed.
type retryTransport struct {
	r    *Router
	base http.RoundTripper
}

func (t *retryTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := t.base.RoundTrip(req)
	rt := routeFrom(req.Context())
	if err == nil || rt == nil || !connectFailed(req.Context(), err) {
		return resp, err
	}
	t.r.eject(rt, err)
	if req.ContentLength != 0 || (req.Body != nil && req.Body != http.NoBody) {
		return nil, err
	}
	// A connection dropped after the request went out may have been acted on:
	// only methods that may run twice are retried then.
	if !dialFailed(err) && !idempotent(req.Method) {
		return nil, err
	}
	c, in := t.r.retryTarget(rt, time.Now())
	if in == nil {
		return nil, err
	}
	t.r.metrics.retries.Inc()
	t.r.track(rt, -1)
	rt.color, rt.inst = c, in
	t.r.track(rt, 1)

	again := req.Clone(req.Context())
	again.URL.Scheme, again.URL.Host = in.url.Scheme, in.url.Host
	resp, err = t.base.RoundTrip(again)
	if err != nil && connectFailed(req.Context(), err) {
		t.r.eject(rt, err)
	}
	return resp, err
}

// connectFailed says whether err means the instance could not be reached or
// dropped the connection before any response (as opposed to the user going
// away): the instance is then ejected.
func connectFailed(ctx context.Context, err error) bool {
	if ctx.Err() != nil {
		return false
	}
	return dialFailed(err) || errors.Is(err, syscall.ECONNRESET) ||
		errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF)
}

// dialFailed says whether the request never reached the instance.
func dialFailed(err error) bool {
	var op *net.OpError
	return (errors.As(err, &op) && op.Op == "dial") || errors.Is(err, syscall.ECONNREFUSED)
}

func idempotent(method string) bool {
	switch method {
	case http.MethodGet, http.MethodHead, http.MethodOptions, http.MethodTrace, http.MethodPut, http.MethodDelete:
		return true
	}
	return false
}

// eject keeps new requests away from rt.inst for EjectFor.
func (r *Router) eject(rt *route, err error) {
	now := time.Now()
	prev := rt.inst.ejectedUntil.Swap(now.Add(r.cfg.EjectFor).UnixNano())
	if prev > now.UnixNano() {
		return // already ejected: one ejection, not one per failed request
	}
	r.metrics.ejections.WithLabelValues(rt.color.String(), rt.inst.key).Inc()
	r.log.Warn("instance ejected", "color", rt.color.String(), "instance", rt.inst.key, "for", r.cfg.EjectFor.String(), "err", err)
}

// stallWriter moves the write deadline forward before each write, so that an
// answer may take as long as the app streams it while a user that stops
// reading is cut after stall. http.Server's WriteTimeout alone would bound
// the whole answer: a download or an event stream would end midway.
type stallWriter struct {
	http.ResponseWriter
	rc    *http.ResponseController // made when first needed: most answers never move the deadline
	stall time.Duration
	until time.Time // the write deadline last set
}

// extend moves the write deadline to stall from now, but only once a
// sixteenth of stall has passed since it last moved. Each move resets a timer
// in the runtime's poller, and extend runs several times per answer, while
// most answers are written in far less than a sixteenth of stall. A user that
// stops reading is so cut after between 15/16 of stall and stall.
func (w *stallWriter) extend() {
	now := time.Now()
	if w.until.Sub(now) > w.stall-w.stall/16 {
		return
	}
	w.until = now.Add(w.stall)
	_ = w.controller().SetWriteDeadline(w.until)
}

func (w *stallWriter) controller() *http.ResponseController {
	if w.rc == nil {
		w.rc = http.NewResponseController(w.ResponseWriter)
	}
	return w.rc
}

func (w *stallWriter) Write(b []byte) (int, error) {
	w.extend()
	return w.ResponseWriter.Write(b)
}

// WriteHeader extends too: an informational (1xx) answer is written at once.
func (w *stallWriter) WriteHeader(code int) {
	w.extend()
	w.ResponseWriter.WriteHeader(code)
}

// FlushError is what http.ResponseController (and so ReverseProxy) calls.
func (w *stallWriter) FlushError() error {
	w.extend()
	return w.controller().Flush()
}

// Unwrap gives ReverseProxy the connection for an upgrade (WebSocket):
// net/http lifts every deadline of a hijacked connection.
func (w *stallWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }
