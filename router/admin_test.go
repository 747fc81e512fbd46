package router

import (
	"encoding/json"
	"io"
	"net/http"
	"reflect"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

func TestAdminAuth(t *testing.T) {
	h := start(t, nil)
	for _, auth := range []string{"", "Bearer", "Bearer wrong", "Basic " + testToken, testToken, "Bearer " + testToken + "x"} {
		code, body := h.callAuth("GET", "/v1/state", nil, auth)
		if code != http.StatusUnauthorized {
			t.Errorf("Authorization %q: %d, want 401", auth, code)
		}
		var e ErrorResponse
		if json.Unmarshal(body, &e) != nil || e.Error == "" {
			t.Errorf("Authorization %q: body %q is not a JSON error", auth, body)
		}
	}
	if code, _ := h.callAuth("GET", "/v1/state", nil, "bearer "+testToken); code != http.StatusOK {
		t.Errorf("right token: %d", code)
	}
	if code, _ := h.callAuth("PUT", "/v1/weights", strings.NewReader(`{"green": 10}`), "Bearer nope"); code != http.StatusUnauthorized {
		t.Errorf("change with a wrong token: %d", code)
	}
	if h.state().Weights.Green != 0 {
		t.Error("an unauthorized change was applied")
	}
	code, body := h.callAuth("GET", "/healthz", nil, "")
	if code != http.StatusOK || strings.TrimSpace(string(body)) != "ok" {
		t.Errorf("/healthz without a token: %d %q", code, body)
	}
	if code, _ := h.callAuth("GET", "/metrics", nil, ""); code != http.StatusUnauthorized {
		t.Errorf("/metrics without a token: %d, want 401", code)
	}
	if code, _ := h.callAuth("GET", "/metrics", nil, "Bearer "+testToken); code != http.StatusOK {
		t.Errorf("/metrics with the token: %d", code)
	}
	if strings.Contains(h.logs.String(), testToken) {
		t.Error("the token appears in the logs")
	}

	open := start(t, func(c *Config) { c.MetricsOpen = true })
	if code, _ := open.callAuth("GET", "/metrics", nil, ""); code != http.StatusOK {
		t.Errorf("/metrics with MetricsOpen: %d", code)
	}
	if code, _ := open.callAuth("GET", "/v1/state", nil, ""); code != http.StatusUnauthorized {
		t.Errorf("/v1/state with MetricsOpen and no token: %d", code)
	}
}

// The JSON has exactly the documented shape.
func TestStateJSONShape(t *testing.T) {
	b := newBackend(t, "blue")
	h := start(t, func(c *Config) { c.Sticky = true })
	h.setPool(Blue, b)
	h.setGreen(10)
	_, raw := h.call("GET", "/v1/state", nil)
	var got map[string]any
	if err := json.Unmarshal(raw, &got); err != nil {
		t.Fatal(err)
	}
	want := map[string]any{
		"app":         "demo",
		"weights":     map[string]any{"blue": 90.0, "green": 10.0},
		"maintenance": false,
		"sticky":      true,
		"inFlight":    map[string]any{"blue": 0.0, "green": 0.0},
		"pools": map[string]any{
			"blue":  []any{map[string]any{"url": b.URL, "healthy": true, "inFlight": 0.0, "ejected": false}},
			"green": []any{}, // never null
		},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("state JSON:\n got %s\nwant %v", raw, want)
	}
}

func TestAdminWeights(t *testing.T) {
	h := start(t, nil)
	st := h.mustCall("PUT", "/v1/weights", `{"green": 10}`)
	if st.Weights != (Weights{Blue: 90, Green: 10}) {
		t.Fatalf("weights: %+v", st.Weights)
	}
	if again := h.mustCall("PUT", "/v1/weights", `{"green": 10}`); !reflect.DeepEqual(again, st) {
		t.Errorf("a repeated PUT changed the state: %+v then %+v", st, again)
	}
	if st := h.mustCall("PUT", "/v1/weights", `{"blue": 70}`); st.Weights.Green != 30 {
		t.Errorf(`{"blue": 70}: %+v`, st.Weights)
	}
	if st := h.mustCall("PUT", "/v1/weights", `{"blue": 0, "green": 100}`); st.Weights.Green != 100 {
		t.Errorf(`both: %+v`, st.Weights)
	}

	bad := map[string]string{
		`{"green": 120}`:              "green weight 120 is outside 0..100",
		`{"green": -1}`:               "green weight -1 is outside 0..100",
		`{"blue": 50, "green": 10}`:   "blue weight 50 and green weight 10 do not add up to 100",
		`{}`:                          `want {"green": 0..100}`,
		`{"green": 1`:                 "bad JSON body",
		`{"green": "10"}`:             "bad JSON body",
		`{"grene": 10}`:               "unknown field",
		`{"green": 10} {"green": 20}`: "unexpected data",
		``:                            "empty body",
	}
	for body, msg := range bad {
		code, raw := h.call("PUT", "/v1/weights", body)
		var e ErrorResponse
		if err := json.Unmarshal(raw, &e); err != nil || code != http.StatusBadRequest || !strings.Contains(e.Error, msg) {
			t.Errorf("PUT %s: %d %s, want 400 with %q", body, code, raw, msg)
		}
	}
	if code, raw := h.call("PUT", "/v1/weights", `{"green": 120}`); string(raw) != `{"error":"green weight 120 is outside 0..100"}`+"\n" {
		t.Errorf("error body: %d %s", code, raw)
	}
	if h.state().Weights.Green != 100 {
		t.Error("a refused change was applied")
	}

	huge := `{"green": 10` + strings.Repeat(" ", 1<<20) + `}`
	if code, _ := h.call("PUT", "/v1/weights", huge); code != http.StatusRequestEntityTooLarge {
		t.Errorf("body over 1 MiB: %d, want 413", code)
	}
	if !strings.Contains(h.logs.String(), `"msg":"weights set"`) {
		t.Error("no Info line for the weights change")
	}
}

func TestAdminPools(t *testing.T) {
	b1, b2 := newBackend(t, "blue-1"), newBackend(t, "blue-2")
	h := start(t, nil)

	bad := map[string]string{
		"/v1/pools/red":  `{"instances": []}`,
		"/v1/pools/blue": `{"instances": ["ftp://127.0.0.1:1"]}`,
		"/v1/pools/Blue": `{"instances": []}`,
	}
	for _, s := range []string{"127.0.0.1:9001", "http://", "http://127.0.0.1:1/app", "http://u:p@127.0.0.1:1", "http://127.0.0.1:1?x=1", "%zz"} {
		b, _ := json.Marshal(PoolRequest{Instances: []string{s}})
		bad["/v1/pools/green#"+s] = string(b)
	}
	bad["/v1/pools/green#dup"] = `{"instances": ["http://127.0.0.1:1", "http://127.0.0.1:1"]}`
	bad["/v1/pools/green#missing"] = `{}`
	for path, body := range bad {
		path, _, _ = strings.Cut(path, "#")
		code, raw := h.call("PUT", path, body)
		if code != http.StatusBadRequest || !strings.HasPrefix(string(raw), `{"error":`) {
			t.Errorf("PUT %s %s: %d %s, want 400", path, body, code, raw)
		}
	}

	st := h.setPool(Blue, b1, b2)
	if len(st.Pools[Blue]) != 2 || st.Pools[Blue][0].URL != b1.URL || st.Pools[Blue][1].URL != b2.URL {
		t.Fatalf("blue pool: %+v", st.Pools[Blue])
	}
	if again := h.setPool(Blue, b1, b2); !reflect.DeepEqual(again, st) {
		t.Errorf("a repeated PUT changed the state: %+v then %+v", st, again)
	}
	if st := h.mustCall("PUT", "/v1/pools/blue", `{"instances": ["`+b1.URL+`/"]}`); len(st.Pools[Blue]) != 1 || st.Pools[Blue][0].URL != b1.URL {
		t.Errorf("trailing slash: %+v", st.Pools[Blue])
	}
	if st := h.setPool(Blue); len(st.Pools[Blue]) != 0 {
		t.Errorf("emptied pool: %+v", st.Pools[Blue])
	}
	if !strings.Contains(h.logs.String(), `"msg":"pool set"`) {
		t.Error("no Info line for the pool change")
	}
}

// An instance removed from its pool finishes the requests it serves.
func TestRemovedInstanceFinishesInFlight(t *testing.T) {
	old, next := newBackend(t, "old"), newBackend(t, "next")
	h := start(t, nil)
	h.setPool(Blue, old)

	done := make(chan string, 1)
	go func() {
		resp, body, err := h.get("/slow")
		if err != nil {
			done <- err.Error()
			return
		}
		done <- resp.Status + " " + body
	}()
	eventually(t, "the slow request to reach old", func() bool { return old.hits.Load() == 1 })
	h.setPool(Blue, next)
	if got := h.mustGet("/"); got != "next" {
		t.Fatalf("new request went to %q", got)
	}
	old.unblock()
	if got := <-done; got != "200 OK old" {
		t.Fatalf("in-flight request on the removed instance: %s", got)
	}
}

func TestInFlightCounts(t *testing.T) {
	b, g := newBackend(t, "blue"), newBackend(t, "green")
	h := start(t, nil)
	h.setPool(Blue, b)
	h.setPool(Green, g)

	const n = 3
	var wg sync.WaitGroup
	var failed atomic.Int64
	for range n {
		wg.Go(func() {
			resp, _, err := h.get("/slow", HeaderColor, Green)
			if err != nil || resp.StatusCode != http.StatusOK {
				failed.Add(1)
			}
		})
	}
	eventually(t, "3 requests in flight on green", func() bool {
		st := h.state()
		return st.InFlight[Green] == n && st.Pools[Green][0].InFlight == n
	})
	if st := h.state(); st.InFlight[Blue] != 0 || st.Pools[Blue][0].InFlight != 0 {
		t.Errorf("blue in flight: %+v", st)
	}
	if m := scrape(t, h); !strings.Contains(m, `cutover_router_in_flight{color="green",instance="`+g.URL+`"} 3`) {
		t.Errorf("in-flight gauge missing:\n%s", m)
	}
	g.unblock()
	wg.Wait()
	eventually(t, "green to drain", func() bool {
		st := h.state()
		return st.InFlight[Green] == 0 && st.Pools[Green][0].InFlight == 0
	})
	if failed.Load() != 0 {
		t.Errorf("%d slow requests failed", failed.Load())
	}
}

func TestMaintenance(t *testing.T) {
	b := newBackend(t, "blue")
	h := start(t, nil)
	h.setPool(Blue, b)

	if st := h.mustCall("PUT", "/v1/maintenance", MaintenanceRequest{Enabled: true}); !st.Maintenance {
		t.Fatal("maintenance not on")
	}
	hits, checks := b.hits.Load(), b.healthHits.Load()
	resp, body, err := h.get("/anything", HeaderColor, Blue)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") != "30" ||
		!strings.HasPrefix(resp.Header.Get("Content-Type"), "text/html") || !strings.Contains(body, "maintenance") {
		t.Fatalf("maintenance answer: %d %v %q", resp.StatusCode, resp.Header, body)
	}
	if b.hits.Load() != hits {
		t.Error("a request reached the app during maintenance")
	}
	eventually(t, "health checks during maintenance", func() bool { return b.healthHits.Load() >= checks+2 })

	if code, _ := h.call("PUT", "/v1/maintenance", `{}`); code != http.StatusBadRequest {
		t.Errorf("maintenance without enabled: %d", code)
	}
	if st := h.mustCall("PUT", "/v1/maintenance", MaintenanceRequest{Enabled: false}); st.Maintenance {
		t.Fatal("maintenance still on")
	}
	if got := h.mustGet("/"); got != "blue" {
		t.Fatalf("after maintenance: %q", got)
	}
	if !strings.Contains(h.logs.String(), `"msg":"maintenance set"`) {
		t.Error("no Info line for maintenance")
	}
}

// After a promotion, swap makes green the blue pool with all the traffic, while
// requests keep flowing without an error.
func TestSwapUnderLoad(t *testing.T) {
	b, g1, g2 := newBackend(t, "old"), newBackend(t, "new-1"), newBackend(t, "new-2")
	h := start(t, func(c *Config) { c.HealthInterval = time.Hour })
	h.setPool(Blue, b)
	h.setPool(Green, g1, g2)
	h.setGreen(100)

	loadDone := make(chan map[string]int, 1)
	go func() { loadDone <- h.load(2000, 8, "/") }()
	eventually(t, "traffic on green", func() bool { return g1.hits.Load() >= 50 })
	st := h.mustCall("POST", "/v1/swap", nil)
	atSwap := g1.hits.Load() + g2.hits.Load()
	counts := <-loadDone
	if atSwap > 1900 {
		t.Logf("the swap came late: %d of 2000 requests had been served", atSwap)
	}
	if e := errorsIn(counts); len(e) > 0 {
		t.Fatalf("errors during the swap: %v", e)
	}
	if counts["old"] != 0 {
		t.Errorf("old blue served %d requests at weight 0", counts["old"])
	}
	if st.Weights != (Weights{Blue: 100, Green: 0}) || len(st.Pools[Green]) != 0 ||
		len(st.Pools[Blue]) != 2 || st.Pools[Blue][0].URL != g1.URL || st.Pools[Blue][1].URL != g2.URL {
		t.Fatalf("after swap: %+v", st)
	}
	if !st.Pools[Blue][0].Healthy || !st.Pools[Blue][1].Healthy {
		t.Errorf("swapped instances lost their health: %+v", st.Pools[Blue])
	}
	if c := h.load(20, 2, "/"); c["new-1"] != 10 || c["new-2"] != 10 {
		t.Errorf("after swap: %v", c)
	}
	// A retried swap is a no-op.
	urls := func(st State) []string {
		var out []string
		for _, c := range []string{Blue, Green} {
			for _, in := range st.Pools[c] {
				out = append(out, c+" "+in.URL)
			}
		}
		return out
	}
	if again := h.mustCall("POST", "/v1/swap", nil); !reflect.DeepEqual(urls(again), urls(st)) || again.Weights != st.Weights {
		t.Errorf("second swap changed the state: %+v", again)
	}
	// Nothing to swap while green has weight: refused.
	h.setGreen(10)
	if code, raw := h.call("POST", "/v1/swap", nil); code != http.StatusConflict {
		t.Errorf("swap of an empty green at weight 10: %d %s", code, raw)
	}
	if !strings.Contains(h.logs.String(), `"msg":"pools swapped"`) {
		t.Error("no Info line for the swap")
	}
}

func TestUnknownAdminPath(t *testing.T) {
	h := start(t, nil)
	if code, _ := h.call("GET", "/v1/nothing", nil); code != http.StatusNotFound {
		t.Errorf("unknown path: %d", code)
	}
	if code, _ := h.call("DELETE", "/v1/weights", nil); code != http.StatusMethodNotAllowed {
		t.Errorf("wrong method: %d", code)
	}
}

func scrape(t *testing.T, h *harness) string {
	t.Helper()
	req, err := http.NewRequest("GET", h.admin+"/metrics", nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+testToken)
	resp, err := h.client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("scrape: %v %d", err, resp.StatusCode)
	}
	return string(b)
}
