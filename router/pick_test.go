package router

import (
	"fmt"
	"math"
	"net/http"
	"strings"
	"testing"
	"time"
)

// Any window of the sequence starting at 0 sends floor(k*W/100) to green.
func TestToGreenIsExact(t *testing.T) {
	for w := 0; w <= 100; w++ {
		got := 0
		for n := range uint64(1000) {
			if toGreen(n, w) {
				got++
			}
			if want := int((n + 1) * uint64(w) / 100); got != want {
				t.Fatalf("w=%d after %d requests: %d to green, want %d", w, n+1, got, want)
			}
		}
	}
}

// The split through the router is exact over 10,000 real requests, and round
// robin shares each pool evenly.
func TestSplitOverRealRequests(t *testing.T) {
	for _, w := range []int{10, 50} {
		t.Run(fmt.Sprintf("green=%d", w), func(t *testing.T) {
			b1, b2 := newBackend(t, "blue-1"), newBackend(t, "blue-2")
			g1, g2 := newBackend(t, "green-1"), newBackend(t, "green-2")
			h := start(t, func(c *Config) { c.HealthInterval = time.Hour })
			h.setPool(Blue, b1, b2)
			h.setPool(Green, g1, g2)
			h.setGreen(w)

			const n = 10000
			counts := h.load(n, 8, "/")
			if errs := errorsIn(counts); len(errs) > 0 {
				t.Fatalf("errors: %v", errs)
			}
			green := counts["green-1"] + counts["green-2"]
			blue := counts["blue-1"] + counts["blue-2"]
			if green+blue != n {
				t.Fatalf("answers: %v", counts)
			}
			if got := float64(green) * 100 / n; math.Abs(got-float64(w)) > 1 {
				t.Errorf("green got %.2f%% of requests, want %d%% ±1: %v", got, w, counts)
			}
			if d := counts["green-1"] - counts["green-2"]; d < -1 || d > 1 {
				t.Errorf("green round robin uneven: %v", counts)
			}
			if d := counts["blue-1"] - counts["blue-2"]; d < -1 || d > 1 {
				t.Errorf("blue round robin uneven: %v", counts)
			}
		})
	}
}

// A pool at weight 0 gets no new requests.
func TestZeroWeightPoolDrains(t *testing.T) {
	b, g := newBackend(t, "blue"), newBackend(t, "green")
	h := start(t, func(c *Config) { c.HealthInterval = time.Hour })
	h.setPool(Blue, b)
	h.setPool(Green, g)

	h.setGreen(0)
	if c := h.load(200, 4, "/"); c["blue"] != 200 {
		t.Errorf("green=0: %v", c)
	}
	h.setGreen(100)
	if c := h.load(200, 4, "/"); c["green"] != 200 {
		t.Errorf("green=100: %v", c)
	}
}

// When the chosen color has no healthy instance the other one serves; with no
// healthy instance at all the router answers 502 with a short text.
func TestFallbackAndNoInstance(t *testing.T) {
	b, g := newBackend(t, "blue"), newBackend(t, "green")
	h := start(t, nil)

	resp, body, err := h.get("/")
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusBadGateway || !strings.Contains(body, "no healthy instance") || len(body) > 200 {
		t.Fatalf("empty pools: %d %q", resp.StatusCode, body)
	}

	h.setPool(Blue, b)
	h.setPool(Green, g)
	h.setGreen(100)
	g.unhealthy.Store(true)
	eventually(t, "green unhealthy", func() bool { return !h.state().Pools[Green][0].Healthy })
	if c := h.load(50, 2, "/"); c["blue"] != 50 {
		t.Errorf("green unhealthy at weight 100: want all on blue, got %v", c)
	}

	b.unhealthy.Store(true)
	eventually(t, "blue unhealthy", func() bool { return !h.state().Pools[Blue][0].Healthy })
	resp, body, err = h.get("/")
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusBadGateway || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/plain") {
		t.Fatalf("nothing healthy: %d %q", resp.StatusCode, body)
	}
}

func TestSticky(t *testing.T) {
	b, g := newBackend(t, "blue"), newBackend(t, "green")
	h := start(t, func(c *Config) { c.Sticky = true })
	h.setPool(Blue, b)
	h.setPool(Green, g)
	h.setGreen(50)

	cookieOf := func(resp *http.Response) *http.Cookie {
		for _, c := range resp.Cookies() {
			if c.Name == CookieName {
				return c
			}
		}
		return nil
	}
	// The first response sets the cookie to the color that served.
	resp, first, err := h.get("/")
	if err != nil {
		t.Fatal(err)
	}
	ck := cookieOf(resp)
	if ck == nil || ck.Value != first || ck.Path != "/" || !ck.HttpOnly {
		t.Fatalf("first response: body %q, cookie %+v", first, ck)
	}
	// With the cookie, every request stays on that color and gets no new cookie.
	for range 20 {
		resp, body, err := h.get("/", "Cookie", CookieName+"="+first)
		if err != nil {
			t.Fatal(err)
		}
		if body != first || cookieOf(resp) != nil {
			t.Fatalf("sticky request went to %q (cookie %v), want %q", body, cookieOf(resp), first)
		}
	}
	// Once that color's weight is 0 the cookie is ignored and replaced.
	other := Green
	if first == Green {
		other = Blue
		h.setGreen(0)
	} else {
		h.setGreen(100)
	}
	resp, body, err := h.get("/", "Cookie", CookieName+"="+first)
	if err != nil {
		t.Fatal(err)
	}
	if ck := cookieOf(resp); body != other || ck == nil || ck.Value != other {
		t.Fatalf("after %s went to weight 0: served by %q, cookie %+v", first, body, ck)
	}
	// Likewise when its color has no healthy instance.
	h.setGreen(50)
	backendOf := map[string]*backend{Blue: b, Green: g}
	backendOf[first].unhealthy.Store(true)
	eventually(t, first+" unhealthy", func() bool { return !h.state().Pools[first][0].Healthy })
	resp, body, err = h.get("/", "Cookie", CookieName+"="+first)
	if err != nil {
		t.Fatal(err)
	}
	if ck := cookieOf(resp); body != other || ck == nil || ck.Value != other {
		t.Fatalf("after %s went unhealthy: served by %q, cookie %+v", first, body, ck)
	}
}

func TestNoCookieWithoutSticky(t *testing.T) {
	b := newBackend(t, "blue")
	h := start(t, nil)
	h.setPool(Blue, b)
	resp, _, err := h.get("/")
	if err != nil {
		t.Fatal(err)
	}
	if len(resp.Cookies()) != 0 {
		t.Fatalf("cookies without Sticky: %v", resp.Cookies())
	}
}

func TestHeaderOverride(t *testing.T) {
	b, g := newBackend(t, "blue"), newBackend(t, "green")
	h := start(t, func(c *Config) { c.Sticky = true })
	h.setPool(Blue, b)
	h.setPool(Green, g)
	h.setGreen(0)

	for range 10 {
		if got := h.mustGet("/", HeaderColor, "green"); got != "green" {
			t.Fatalf("override to green at weight 0 went to %q", got)
		}
	}
	if got := h.mustGet("/", HeaderColor, "Blue"); got != "blue" {
		t.Fatalf("override to blue went to %q", got)
	}
	if g.sawOverride.Load() || b.sawOverride.Load() {
		t.Error("the override header reached a backend")
	}
	resp, _, err := h.get("/", HeaderColor, "green")
	if err != nil {
		t.Fatal(err)
	}
	if len(resp.Cookies()) != 0 {
		t.Errorf("an override request got a sticky cookie: %v", resp.Cookies())
	}

	resp, _, err = h.get("/", HeaderColor, "purple")
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusBadRequest {
		t.Errorf("override to purple: %d, want 400", resp.StatusCode)
	}

	// No healthy green: 502, even though blue could serve.
	g.unhealthy.Store(true)
	eventually(t, "green unhealthy", func() bool { return !h.state().Pools[Green][0].Healthy })
	resp, _, err = h.get("/", HeaderColor, "green")
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusBadGateway {
		t.Errorf("override to an unhealthy green: %d, want 502", resp.StatusCode)
	}
}
