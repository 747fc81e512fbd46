package router

import (
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// echoHeaders is an instance that answers the request's headers as it got
// them, with a hop-by-hop header and one its Connection header names.
func echoHeaders(t *testing.T) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		_, _ = io.Copy(io.Discard, req.Body)
		w.Header().Set("Connection", "X-Private")
		w.Header().Set("X-Private", "hop")
		w.Header().Set("Keep-Alive", "timeout=5")
		w.Header().Set("X-App", "app")
		var b strings.Builder
		b.WriteString("Host: " + req.Host + "\n")
		for _, k := range []string{"X-Forwarded-For", "X-Forwarded-Host", "X-Forwarded-Proto", "Forwarded", HeaderColor, "X-Secret", "X-User", "Te"} {
			b.WriteString(k + ": " + strings.Join(req.Header[k], ",") + "\n")
		}
		_, _ = io.WriteString(w, b.String())
	}))
	t.Cleanup(srv.Close)
	return srv
}

// The lean path (a GET) forwards the same headers, both ways, as
// ReverseProxy (a POST with a body) does.
func TestLeanForwardsHeadersAsReverseProxy(t *testing.T) {
	app := echoHeaders(t)
	h := start(t, nil)
	h.mustCall("PUT", "/v1/pools/blue", PoolRequest{Instances: []string{app.URL}})
	hdr := []string{"Host", "shop.example", "X-Forwarded-For", "6.6.6.6", "Forwarded", "for=6.6.6.6", HeaderColor, Blue,
		"Connection", "X-Secret", "X-Secret", "s", "X-User", "u", "Te", "trailers"}
	want := "Host: shop.example\nX-Forwarded-For: 127.0.0.1\nX-Forwarded-Host: shop.example\nX-Forwarded-Proto: http\n" +
		"Forwarded: \n" + HeaderColor + ": \nX-Secret: \nX-User: u\nTe: trailers\n"
	for _, method := range []string{"GET", "POST"} {
		var body io.Reader
		if method == "POST" {
			body = strings.NewReader("a body")
		}
		req, err := http.NewRequest(method, h.user+"/", body)
		if err != nil {
			t.Fatal(err)
		}
		for i := 0; i < len(hdr); i += 2 {
			req.Header.Set(hdr[i], hdr[i+1])
		}
		req.Host = "shop.example"
		resp, err := h.client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if string(b) != want {
			t.Errorf("%s: the app got\n%s\nwant\n%s", method, b, want)
		}
		if resp.Header.Get("X-App") != "app" || resp.Header.Get("X-Private") != "" || resp.Header.Get("Keep-Alive") != "" {
			t.Errorf("%s: the user got headers %v", method, resp.Header)
		}
	}
}

// An app that closes idle connections costs the user nothing: the lean path
// meets a closed pooled connection, dials anew, and ejects nobody.
func TestLeanReplacesClosedPooledConnection(t *testing.T) {
	app := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		_, _ = io.WriteString(w, "ok")
	}))
	app.Config.IdleTimeout = 20 * time.Millisecond
	app.Start()
	t.Cleanup(app.Close)
	h := start(t, func(c *Config) { c.HealthInterval = time.Hour })
	h.mustCall("PUT", "/v1/pools/blue", PoolRequest{Instances: []string{app.URL}})
	for i := range 5 {
		if got := h.mustGet("/"); got != "ok" {
			t.Fatalf("request %d: %q", i, got)
		}
		time.Sleep(100 * time.Millisecond) // the app closes the connection meanwhile
	}
	if p := h.state().Pools[Blue]; p[0].Ejected {
		t.Errorf("the app was ejected: %+v", p)
	}
	if m := scrape(t, h); !strings.Contains(m, "cutover_router_retries_total 0") {
		t.Errorf("retries counted:\n%s", m)
	}
}

// A user that goes away while the app thinks ends the app's request too, is
// counted as 499, and leaves nothing in flight.
func TestLeanUserGoesAway(t *testing.T) {
	appGone := make(chan struct{})
	app := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		if req.URL.Path == "/healthz" {
			return
		}
		<-req.Context().Done()
		close(appGone)
	}))
	t.Cleanup(app.Close)
	h := start(t, func(c *Config) { c.HealthInterval = time.Hour })
	h.mustCall("PUT", "/v1/pools/blue", PoolRequest{Instances: []string{app.URL}})
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, "GET", h.user+"/think", nil)
	if err != nil {
		t.Fatal(err)
	}
	if resp, err := h.client.Do(req); err == nil {
		resp.Body.Close()
		t.Fatalf("the request answered %s", resp.Status)
	}
	select {
	case <-appGone:
	case <-time.After(5 * time.Second):
		t.Fatal("the app's request did not end with the user's")
	}
	eventually(t, "a 499 and nothing in flight", func() bool {
		m := scrape(t, h)
		return strings.Contains(m, `cutover_router_requests_total{code="499",color="blue",instance="`+app.URL+`"} 1`) &&
			strings.Contains(m, `cutover_router_in_flight{color="blue",instance="`+app.URL+`"} 0`)
	})
}

// Trailers an app announces reach the user after a streamed body.
func TestLeanTrailers(t *testing.T) {
	app := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		w.Header().Set("Trailer", "X-Checksum")
		_, _ = io.WriteString(w, "part one, ")
		http.NewResponseController(w).Flush()
		_, _ = io.WriteString(w, "part two")
		w.Header().Set("X-Checksum", "abc")
	}))
	t.Cleanup(app.Close)
	h := start(t, nil)
	h.mustCall("PUT", "/v1/pools/blue", PoolRequest{Instances: []string{app.URL}})
	resp, body, err := h.get("/")
	if err != nil {
		t.Fatal(err)
	}
	if body != "part one, part two" || resp.Trailer.Get("X-Checksum") != "abc" {
		t.Errorf("body %q, trailers %v", body, resp.Trailer)
	}
}

// Answers without a body (HEAD, 304, 204) keep their headers, and the
// connection stays usable for the next request.
func TestLeanBodilessAnswers(t *testing.T) {
	app := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		switch req.URL.Path {
		case "/cached":
			w.Header().Set("ETag", `"v1"`)
			w.WriteHeader(http.StatusNotModified)
		case "/none":
			w.WriteHeader(http.StatusNoContent)
		default:
			w.Header().Set("Content-Length", "5")
			_, _ = io.WriteString(w, "hello")
		}
	}))
	t.Cleanup(app.Close)
	h := start(t, func(c *Config) { c.HealthInterval = time.Hour })
	h.mustCall("PUT", "/v1/pools/blue", PoolRequest{Instances: []string{app.URL}})
	for range 2 {
		resp, body, err := h.do("HEAD", "/", nil)
		if err != nil || resp.StatusCode != http.StatusOK || body != "" || resp.ContentLength != 5 {
			t.Fatalf("HEAD: %v %v %q", resp, err, body)
		}
		resp, _, err = h.get("/cached")
		if err != nil || resp.StatusCode != http.StatusNotModified || resp.Header.Get("ETag") != `"v1"` {
			t.Fatalf("304: %v %v", resp, err)
		}
		resp, _, err = h.get("/none")
		if err != nil || resp.StatusCode != http.StatusNoContent {
			t.Fatalf("204: %v %v", resp, err)
		}
		if got := h.mustGet("/"); got != "hello" {
			t.Fatalf("GET: %q", got)
		}
	}
}

// A connection given back after its instance left both pools (an answer
// that was in flight then) is closed, not kept where nothing would use it.
func TestLeanPoolClosesWhatComesBackAfterTheInstanceLeft(t *testing.T) {
	client, server := net.Pipe()
	defer server.Close()
	var p idleConns
	kept := &leanConn{Conn: client}
	p.put(kept, time.Now())
	if c := p.get(time.Now()); c != kept {
		t.Fatalf("get = %v, want the connection put back", c)
	}
	p.closeAll()
	p.put(kept, time.Now())
	if c := p.get(time.Now()); c != nil {
		t.Fatal("a connection given back after closeAll was kept")
	}
	if _, err := client.Write([]byte("x")); err == nil {
		t.Error("the connection given back after closeAll is still open")
	}
}
