package router

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// failingEvery is an instance that answers its name, with 500 for every nth
// user request (health checks aside).
func failingEvery(t *testing.T, name string, n int64) *httptest.Server {
	t.Helper()
	var count atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		if req.URL.Path == "/healthz" {
			_, _ = io.WriteString(w, "ok")
			return
		}
		if n > 0 && count.Add(1)%n == 0 {
			w.WriteHeader(http.StatusInternalServerError)
		}
		_, _ = io.WriteString(w, name)
	}))
	t.Cleanup(srv.Close)
	return srv
}

// The bound metrics children count every request by the color that served it
// and the code the user got, under concurrent load: with a weighted split, a
// sticky cookie on some requests, the override header on others, and an
// instance that fails some of its requests, /metrics sums to exactly what
// the clients saw, and nothing is left in flight.
func TestMetricsCountEveryRequestUnderLoad(t *testing.T) {
	b1, b2 := failingEvery(t, Blue, 0), failingEvery(t, Blue, 7)
	g := failingEvery(t, Green, 5)
	h := start(t, func(c *Config) { c.HealthInterval = time.Hour; c.Sticky = true })
	h.mustCall("PUT", "/v1/pools/blue", PoolRequest{Instances: []string{b1.URL, b2.URL}})
	h.mustCall("PUT", "/v1/pools/green", PoolRequest{Instances: []string{g.URL}})
	h.setGreen(30)

	const requests, workers = 3000, 32
	var (
		next atomic.Int64
		mu   sync.Mutex
		seen = map[string]int{} // "color code", as the clients saw it
		wg   sync.WaitGroup
	)
	for range workers {
		wg.Go(func() {
			mine := map[string]int{}
			for i := next.Add(1); i <= requests; i = next.Add(1) {
				var hdr []string
				switch i % 10 {
				case 3:
					hdr = []string{HeaderColor, Green}
				case 6:
					hdr = []string{"Cookie", CookieName + "=" + Blue}
				}
				resp, body, err := h.get("/", hdr...)
				if err != nil {
					mine["error "+err.Error()]++
					continue
				}
				mine[fmt.Sprintf("%s %d", body, resp.StatusCode)]++
			}
			mu.Lock()
			for k, v := range mine {
				seen[k] += v
			}
			mu.Unlock()
		})
	}
	wg.Wait()
	if seen["green 500"] == 0 || seen["blue 500"] == 0 || seen["green 200"] == 0 || seen["blue 200"] == 0 {
		t.Fatalf("the load did not reach every color and code: %v", seen)
	}

	parser := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := parser.TextToMetricFamilies(strings.NewReader(scrape(t, h)))
	if err != nil {
		t.Fatal(err)
	}
	counted := map[string]int{}
	for _, m := range fams["cutover_router_requests_total"].GetMetric() {
		l := map[string]string{}
		for _, p := range m.GetLabel() {
			l[p.GetName()] = p.GetValue()
		}
		counted[l["color"]+" "+l["code"]] += int(m.GetCounter().GetValue())
	}
	if fmt.Sprint(counted) != fmt.Sprint(seen) {
		t.Errorf("/metrics counted %v\nthe clients saw %v", counted, seen)
	}
	for _, m := range fams["cutover_router_request_duration_seconds"].GetMetric() {
		c := m.GetLabel()[0].GetValue()
		if got, want := int(m.GetHistogram().GetSampleCount()), seen[c+" 200"]+seen[c+" 500"]; got != want {
			t.Errorf("%s's duration histogram counted %d requests, want %d", c, got, want)
		}
	}
	for _, m := range fams["cutover_router_in_flight"].GetMetric() {
		if v := m.GetGauge().GetValue(); v != 0 {
			t.Errorf("in flight after the load: %v %v", m.GetLabel(), v)
		}
	}
}
