package router

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"
)

// BenchmarkProxy drives the proxy path in process: GET / from parallel
// clients through the router's user listener to two loopback instances of
// the blue pool, each answering a small JSON body as the demo app does. The
// clients and instances run in the same process, so a -cpuprofile shows them
// too; the router's share is under serveUser and the transport's goroutines.
//
//	go test ./router -run '^$' -bench BenchmarkProxy -cpuprofile cpu.out -memprofile mem.out
func BenchmarkProxy(b *testing.B) {
	for _, bc := range []struct {
		name         string
		sticky       bool
		cookie       string
		reverseProxy bool // httputil.ReverseProxy for every request, no lean path
	}{
		{"plain", false, "", false},
		{"sticky", true, CookieName + "=" + Blue, false},
		{"reverseproxy", false, "", true},
	} {
		b.Run(bc.name, func(b *testing.B) { benchProxy(b, bc.sticky, bc.cookie, bc.reverseProxy) })
	}
}

func benchProxy(b *testing.B, sticky bool, cookie string, reverseProxy bool) {
	body := []byte(`{"version":"1.0.0","instance":"9001"}` + "\n")
	var urls []string
	for range 2 {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
			w.Header().Set("Content-Type", "application/json")
			_, _ = w.Write(body)
		}))
		b.Cleanup(srv.Close)
		urls = append(urls, srv.URL)
	}
	r, err := New(Config{Listen: "127.0.0.1:0", Admin: "127.0.0.1:0", Token: testToken, Sticky: sticky, HealthInterval: time.Minute})
	if err != nil {
		b.Fatal(err)
	}
	r.reverseProxyOnly = reverseProxy
	if err := r.Start(); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = r.Shutdown(ctx)
	})
	ctx := context.Background()
	if err := NewClient("http://"+r.AdminAddr(), testToken).SetPool(ctx, Blue, urls); err != nil {
		b.Fatal(err)
	}
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}}
	b.Cleanup(client.CloseIdleConnections)
	url := "http://" + r.Addr() + "/"
	b.SetParallelism(8) // 8 clients per CPU: the proxy, not the clients, sets the pace
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
			if err != nil {
				b.Error(err)
				return
			}
			if cookie != "" {
				req.Header.Set("Cookie", cookie)
			}
			resp, err := client.Do(req)
			if err != nil {
				b.Error(err)
				return
			}
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				b.Errorf("status %d", resp.StatusCode)
				return
			}
		}
	})
}
