package webhook

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cutoverhq/cutover/providers"
	"github.com/cutoverhq/cutover/verdict"
)

const secret = "s3cret-for-tests"

// receiver is a webhook receiver that verifies every delivery as the package
// doc tells receivers to.
type receiver struct {
	mu       sync.Mutex
	got      []Payload
	headers  []http.Header
	refused  []error
	status   int
	seenSigs map[string]bool
}

func (rc *receiver) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, err := VerifyRequest(r, secret, 0)
	rc.mu.Lock()
	defer rc.mu.Unlock()
	if err == nil && rc.seenSigs[r.Header.Get(HeaderSignature)] {
		err = errors.New("replayed")
	}
	if err != nil {
		rc.refused = append(rc.refused, err)
		http.Error(w, err.Error(), http.StatusUnauthorized)
		return
	}
	rc.seenSigs[r.Header.Get(HeaderSignature)] = true
	var p Payload
	if err := json.Unmarshal(body, &p); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	rc.got = append(rc.got, p)
	rc.headers = append(rc.headers, r.Header.Clone())
	if rc.status != 0 {
		w.WriteHeader(rc.status)
	}
}

func newNotifier(t *testing.T, url string, extra map[string]any) *Notifier {
	t.Helper()
	t.Setenv("TEST_WEBHOOK_SECRET", secret)
	s := map[string]any{"url": url, "secret": map[string]any{"env": "TEST_WEBHOOK_SECRET"}}
	for k, v := range extra {
		s[k] = v
	}
	n, err := New(s)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func event() providers.Event {
	return providers.Event{
		App: "shop", Version: "1.5.0", Kind: "approval-needed",
		Message: "shop 1.4.2 -> 1.5.0 is waiting for approval (at 50% green)",
		Time:    time.Date(2026, 11, 23, 15, 55, 13, 0, time.UTC),
		Verdict: &verdict.Verdict{Result: verdict.Pass, Summary: "all 1 metrics passed", Metrics: []verdict.Metric{{
			Name: "error rate", Result: verdict.Pass, Critical: true,
			Values: []verdict.Value{{Name: "green_error_rate", Value: 0.001}, {Name: "p_value", Value: 0.61}},
		}}},
	}
}

func TestDeliversSignedEvent(t *testing.T) {
	rc := &receiver{seenSigs: map[string]bool{}}
	srv := httptest.NewServer(rc)
	defer srv.Close()
	n := newNotifier(t, srv.URL+"/hook?token=abc", nil)
	e := event()
	if err := n.Notify(context.Background(), e); err != nil {
		t.Fatal(err)
	}
	if len(rc.got) != 1 || len(rc.refused) != 0 {
		t.Fatalf("got %d deliveries, refused %v", len(rc.got), rc.refused)
	}
	p := rc.got[0]
	if p.App != "shop" || p.Version != "1.5.0" || p.Kind != "approval-needed" || p.Message != e.Message || !p.Time.Equal(e.Time) {
		t.Errorf("payload = %+v", p)
	}
	if p.Verdict == nil || p.Verdict.Metrics[0].Values[1].Value != 0.61 {
		t.Errorf("verdict = %+v", p.Verdict)
	}
	h := rc.headers[0]
	if h.Get(HeaderEvent) != "approval-needed" || h.Get(HeaderDelivery) != DeliveryID(e) || h.Get("Content-Type") != "application/json" {
		t.Errorf("headers = %v", h)
	}
	// A retry of the same event is a new attempt (new timestamp and
	// signature) of the same delivery.
	n.now = func() time.Time { return time.Now().Add(time.Second) }
	if err := n.Notify(context.Background(), e); err != nil {
		t.Fatal(err)
	}
	if len(rc.got) != 2 || rc.headers[1].Get(HeaderDelivery) != rc.headers[0].Get(HeaderDelivery) {
		t.Errorf("retry: %d deliveries, delivery IDs %q %q", len(rc.got), rc.headers[0].Get(HeaderDelivery), rc.headers[1].Get(HeaderDelivery))
	}
}

func TestSignatureFormat(t *testing.T) {
	// Computed independently: printf '1700000000.{"a":1}' | openssl dgst -sha256 -hmac key
	got := Sign("key", 1700000000, []byte(`{"a":1}`))
	want := "v1=a438e398bfafc57e4396bb7fc2304422f0f768e965d073ca313cb52e22e6ad03"
	if got != want {
		t.Fatalf("Sign = %q, want %q", got, want)
	}
	h := http.Header{}
	h.Set(HeaderTimestamp, "1700000000")
	h.Set(HeaderSignature, got)
	now := time.Unix(1700000000, 0)
	if err := Verify("key", h, []byte(`{"a":1}`), now, 0); err != nil {
		t.Fatal(err)
	}
}

func TestVerifyRefuses(t *testing.T) {
	body := []byte(`{"app":"shop"}`)
	now := time.Unix(1700000000, 0)
	good := func() http.Header {
		h := http.Header{}
		h.Set(HeaderTimestamp, "1700000000")
		h.Set(HeaderSignature, Sign(secret, 1700000000, body))
		return h
	}
	for _, c := range []struct {
		name   string
		change func(h http.Header) ([]byte, time.Time, string)
		want   error
	}{
		{"ok", func(h http.Header) ([]byte, time.Time, string) { return body, now, secret }, nil},
		{"rotation: second signature matches", func(h http.Header) ([]byte, time.Time, string) {
			h.Set(HeaderSignature, "v1=00,"+h.Get(HeaderSignature))
			return body, now, secret
		}, nil},
		{"no signature", func(h http.Header) ([]byte, time.Time, string) { h.Del(HeaderSignature); return body, now, secret }, ErrNoSignature},
		{"no timestamp", func(h http.Header) ([]byte, time.Time, string) { h.Del(HeaderTimestamp); return body, now, secret }, ErrNoSignature},
		{"wrong secret", func(h http.Header) ([]byte, time.Time, string) { return body, now, "other" }, ErrBadSignature},
		{"body changed", func(h http.Header) ([]byte, time.Time, string) { return []byte(`{"app":"shoq"}`), now, secret }, ErrBadSignature},
		{"timestamp changed", func(h http.Header) ([]byte, time.Time, string) {
			h.Set(HeaderTimestamp, "1700000001")
			return body, now, secret
		}, ErrBadSignature},
		{"stale", func(h http.Header) ([]byte, time.Time, string) {
			return body, now.Add(5*time.Minute + time.Second), secret
		}, ErrStale},
		{"from the future", func(h http.Header) ([]byte, time.Time, string) {
			return body, now.Add(-5*time.Minute - time.Second), secret
		}, ErrStale},
		{"v0 scheme", func(h http.Header) ([]byte, time.Time, string) {
			h.Set(HeaderSignature, strings.Replace(h.Get(HeaderSignature), "v1=", "v0=", 1))
			return body, now, secret
		}, ErrBadSignature},
		{"leading zero timestamp", func(h http.Header) ([]byte, time.Time, string) {
			h.Set(HeaderTimestamp, "01700000000")
			return body, now, secret
		}, ErrStale},
	} {
		t.Run(c.name, func(t *testing.T) {
			h := good()
			b, at, key := c.change(h)
			if err := Verify(key, h, b, at, 0); !errors.Is(err, c.want) {
				t.Errorf("Verify = %v, want %v", err, c.want)
			}
		})
	}
}

func TestClassifiesAnswers(t *testing.T) {
	for _, c := range []struct {
		code      int
		permanent error // nil: retryable (or delivered, for 2xx)
		delivered bool
	}{
		{200, nil, true},
		{202, nil, true},
		{204, nil, true},
		{400, providers.ErrInvalid, false},
		{401, providers.ErrBadConfig, false},
		{403, providers.ErrBadConfig, false},
		{404, providers.ErrBadConfig, false},
		{410, providers.ErrBadConfig, false},
		{422, providers.ErrInvalid, false},
		{408, nil, false},
		{429, nil, false},
		{500, nil, false},
		{502, nil, false},
		{503, nil, false},
		{302, providers.ErrBadConfig, false},
	} {
		t.Run(strconv.Itoa(c.code), func(t *testing.T) {
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				_, _ = io.Copy(io.Discard, r.Body)
				if c.code == 302 {
					w.Header().Set("Location", "http://127.0.0.1:1/elsewhere")
				}
				w.WriteHeader(c.code)
				_, _ = w.Write([]byte("receiver says no"))
			}))
			defer srv.Close()
			err := newNotifier(t, srv.URL+"/secret-path-token", nil).Notify(context.Background(), event())
			switch {
			case c.delivered:
				if err != nil {
					t.Fatalf("Notify = %v, want delivered", err)
				}
				return
			case err == nil:
				t.Fatal("Notify = nil, want an error")
			case c.permanent != nil && !errors.Is(err, c.permanent):
				t.Errorf("Notify = %v, want %v", err, c.permanent)
			case c.permanent == nil && (errors.Is(err, providers.ErrBadConfig) || errors.Is(err, providers.ErrInvalid) || errors.Is(err, providers.ErrNotFound)):
				t.Errorf("Notify = %v, want retryable", err)
			}
			if strings.Contains(err.Error(), "secret-path-token") {
				t.Errorf("the error shows the URL's path: %v", err)
			}
		})
	}
}

func TestUnreachableAndTimeoutAreRetryable(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-time.After(500 * time.Millisecond):
		}
	}))
	defer srv.Close()
	err := newNotifier(t, srv.URL+"/p?token=abc", map[string]any{"timeout": "100ms"}).Notify(context.Background(), event())
	if err == nil || errors.Is(err, providers.ErrBadConfig) || errors.Is(err, providers.ErrInvalid) {
		t.Fatalf("timeout: Notify = %v, want retryable", err)
	}
	if strings.Contains(err.Error(), "token=abc") {
		t.Errorf("the error shows the URL's query: %v", err)
	}
	srv.Close()
	err = newNotifier(t, srv.URL, nil).Notify(context.Background(), event())
	if err == nil || errors.Is(err, providers.ErrBadConfig) {
		t.Fatalf("closed: Notify = %v, want retryable", err)
	}
}

func TestSettings(t *testing.T) {
	t.Setenv("TEST_WEBHOOK_SECRET", secret)
	sec := map[string]any{"env": "TEST_WEBHOOK_SECRET"}
	for _, c := range []struct {
		name string
		s    map[string]any
		want string
	}{
		{"no url", map[string]any{"secret": sec}, "url is required"},
		{"ftp", map[string]any{"url": "ftp://x/y", "secret": sec}, "not an http(s) URL"},
		{"no secret", map[string]any{"url": "http://127.0.0.1/"}, "secret"},
		{"long timeout", map[string]any{"url": "http://127.0.0.1/", "secret": sec, "timeout": "2m"}, "timeout"},
		{"unknown", map[string]any{"url": "http://127.0.0.1/", "secret": sec, "retries": 3}, "unknown setting"},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, err := New(c.s)
			if err == nil || !errors.Is(err, providers.ErrBadConfig) || !strings.Contains(err.Error(), c.want) {
				t.Errorf("New = %v, want a BadConfig naming %q", err, c.want)
			}
		})
	}
	// A secret that is not set is a BadConfig at delivery, named by its variable.
	n, err := New(map[string]any{"url": "http://127.0.0.1:1/", "secret": map[string]any{"env": "TEST_WEBHOOK_UNSET"}})
	if err != nil {
		t.Fatal(err)
	}
	if err := n.Notify(context.Background(), event()); !errors.Is(err, providers.ErrBadConfig) || !strings.Contains(err.Error(), "TEST_WEBHOOK_UNSET") {
		t.Errorf("Notify = %v", err)
	}
}
