package prometheus

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cutoverhq/cutover/judge"
	"github.com/cutoverhq/cutover/providers"
)

var ref = providers.Ref{App: "shop", Version: "v2", PreviousVersion: "v1"}

func init() { retryBackoff = 10 * time.Millisecond }

// fakeProm speaks Prometheus's /api/v1/query_range: answer decides each
// query's answer (a status and a JSON body).
type fakeProm struct {
	*httptest.Server
	mu     sync.Mutex
	got    []url.Values
	answer func(q url.Values) (int, string)
}

func newFake(t *testing.T, answer func(q url.Values) (int, string)) *fakeProm {
	t.Helper()
	f := &fakeProm{answer: answer}
	f.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/api/v1/query_range" {
			http.NotFound(w, r)
			return
		}
		if err := r.ParseForm(); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		f.mu.Lock()
		f.got = append(f.got, r.Form)
		f.mu.Unlock()
		code, body := f.answer(r.Form)
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(code)
		_, _ = fmt.Fprint(w, body)
	}))
	t.Cleanup(f.Close)
	return f
}

func (f *fakeProm) queries() []url.Values {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]url.Values(nil), f.got...)
}

// sample is one [time, value] pair of a series.
type sample struct {
	t float64
	v string
}

// matrix is a successful query_range answer with these series.
func matrix(series ...[]sample) string {
	type stream struct {
		Metric map[string]string `json:"metric"`
		Values [][2]any          `json:"values"`
	}
	res := []stream{}
	for i, s := range series {
		st := stream{Metric: map[string]string{"instance": strconv.Itoa(i)}, Values: [][2]any{}}
		for _, p := range s {
			st.Values = append(st.Values, [2]any{p.t, p.v})
		}
		res = append(res, st)
	}
	b, _ := json.Marshal(map[string]any{"status": "success", "data": map[string]any{"resultType": "matrix", "result": res}})
	return string(b)
}

// steps are the evaluation times of a range query, as Prometheus computes them.
func steps(q url.Values) []float64 {
	start, _ := strconv.ParseFloat(q.Get("start"), 64)
	end, _ := strconv.ParseFloat(q.Get("end"), 64)
	step, _ := strconv.ParseFloat(q.Get("step"), 64)
	var ts []float64
	for t := start; t <= end+1e-9; t += step {
		ts = append(ts, t)
	}
	return ts
}

// constant answers every step of every query with the value value(query).
func constant(value func(query string) string) func(url.Values) (int, string) {
	return func(q url.Values) (int, string) {
		v := value(q.Get("query"))
		if v == "" {
			return 200, matrix()
		}
		var s []sample
		for _, t := range steps(q) {
			s = append(s, sample{t, v})
		}
		return 200, matrix(s)
	}
}

func mustNew(t *testing.T, settings map[string]any) *Provider {
	t.Helper()
	p, err := New(settings)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return p
}

var tmplQueries = map[string]any{
	"requests": `req{app="{{.App}}",color="{{.Color}}",version="{{.Version}}"}[{{.Range}}]`,
	"errors":   `err{color="{{.Color}}"}[{{.Range}}]`,
	"latency":  `lat{color="{{.Color}}"}[{{.Range}}]`,
	"p99":      `p99{color="{{.Color}}"}[{{.Range}}]`,
}

func TestTemplatesAndRanges(t *testing.T) {
	f := newFake(t, constant(func(q string) string {
		switch {
		case strings.HasPrefix(q, "req"):
			return "100"
		case strings.HasPrefix(q, "err"):
			if strings.Contains(q, "green") {
				return "20"
			}
			return "0"
		case strings.HasPrefix(q, "lat"):
			return "0.01"
		}
		return "0.05"
	}))
	p := mustNew(t, map[string]any{"address": f.URL, "step": "1500ms", "lookback": "15s", "queries": tmplQueries})

	before := time.Now()
	v, err := p.Guard(context.Background(), ref)
	if err != nil {
		t.Fatal(err)
	}
	if v.Result != providers.Fail {
		t.Fatalf("guard: got %s, want Fail (20%% errors)", v)
	}
	got := f.queries()
	if len(got) != 4 {
		t.Fatalf("guard sent %d queries, want 4", len(got))
	}
	var texts []string
	for _, q := range got {
		texts = append(texts, q.Get("query"))
		start, _ := strconv.ParseFloat(q.Get("start"), 64)
		end, _ := strconv.ParseFloat(q.Get("end"), 64)
		if q.Get("step") != "1.5" || math.Abs(end-start-15) > 1e-6 || end < float64(before.Unix())-1 {
			t.Errorf("guard range: start %v end %v step %v, want the last 15s by 1.5s", start, end, q.Get("step"))
		}
		if q.Get("timeout") != "5s" {
			t.Errorf("guard query timeout %q, want 5s", q.Get("timeout"))
		}
	}
	want := `req{app="shop",color="green",version="v2"}[1s500ms]`
	if !contains(texts, want) || !contains(texts, `p99{color="green"}[1s500ms]`) {
		t.Errorf("guard queries %q, want %q among them", texts, want)
	}

	f.mu.Lock()
	f.got = nil
	f.mu.Unlock()
	begin := time.Now()
	v, err = p.Compare(context.Background(), ref, 500*time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	if d := time.Since(begin); d < 2*time.Second {
		t.Errorf("compare returned after %s, want the window and one step (2s)", d)
	}
	if v.Result != providers.Fail {
		t.Errorf("compare: got %s, want Fail", v)
	}
	texts = nil
	for _, q := range f.queries() {
		texts = append(texts, q.Get("query"))
		start, _ := strconv.ParseFloat(q.Get("start"), 64)
		end, _ := strconv.ParseFloat(q.Get("end"), 64)
		if start != end || start < float64(begin.UnixMilli())/1000 {
			t.Errorf("compare range %v..%v: want the window's end (it is shorter than a step)", start, end)
		}
	}
	for _, w := range []string{
		`req{app="shop",color="blue",version="v1"}[1s500ms]`,
		`req{app="shop",color="green",version="v2"}[1s500ms]`,
		`err{color="blue"}[1s500ms]`,
	} {
		if !contains(texts, w) {
			t.Errorf("compare queries %q, want %q among them", texts, w)
		}
	}
}

func contains(xs []string, x string) bool {
	for _, y := range xs {
		if y == x {
			return true
		}
	}
	return false
}

func TestCompareRange(t *testing.T) {
	f := newFake(t, constant(func(string) string { return "1" }))
	p := mustNew(t, map[string]any{"address": f.URL, "step": "1s"})
	begin := time.Now()
	if _, err := p.Compare(context.Background(), ref, 2*time.Second); err != nil {
		t.Fatal(err)
	}
	qs := f.queries()
	if len(qs) != 8 {
		t.Fatalf("compare sent %d queries, want 8", len(qs))
	}
	for _, q := range qs {
		start, _ := strconv.ParseFloat(q.Get("start"), 64)
		end, _ := strconv.ParseFloat(q.Get("end"), 64)
		b := float64(begin.UnixNano()) / 1e9
		// Points from start+step to start+window: the steps inside the window.
		if math.Abs(start-(b+1)) > 0.2 || math.Abs(end-(b+2)) > 0.2 {
			t.Errorf("compare range %.2f..%.2f, want %.2f..%.2f", start-b, end-b, 1.0, 2.0)
		}
		if !strings.Contains(q.Get("query"), `[1s]`) {
			t.Errorf("default query %q has no [1s] range", q.Get("query"))
		}
	}
}

func TestPointsWithMissingSteps(t *testing.T) {
	t0 := 1_700_000_000.0
	f := newFake(t, func(q url.Values) (int, string) {
		switch s := q.Get("query"); {
		case strings.HasPrefix(s, "req"):
			return 200, matrix([]sample{{t0, "10"}, {t0 + 2, "12"}, {t0 + 4, "14"}})
		case strings.HasPrefix(s, "err"):
			return 200, matrix([]sample{{t0, "1"}, {t0 + 4, "0"}})
		case strings.HasPrefix(s, "lat"):
			return 200, matrix() // no data at all
		}
		return 200, matrix([]sample{{t0 + 2, "0.25"}, {t0 + 6, "0.5"}})
	})
	p := mustNew(t, map[string]any{"address": f.URL, "queries": tmplQueries})
	start := time.Unix(int64(t0), 0)
	pts, err := p.points(context.Background(), ref, providers.Green, start, start.Add(6*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	nan := math.NaN()
	want := []judge.Point{
		{Time: start, Requests: 10, Errors: 1, Latency: nan, P99: nan},
		{Time: start.Add(2 * time.Second), Requests: 12, Errors: nan, Latency: nan, P99: 0.25},
		{Time: start.Add(4 * time.Second), Requests: 14, Errors: 0, Latency: nan, P99: nan},
		{Time: start.Add(6 * time.Second), Requests: nan, Errors: nan, Latency: nan, P99: 0.5},
	}
	if len(pts) != len(want) {
		t.Fatalf("got %d points %v, want %d", len(pts), pts, len(want))
	}
	same := func(a, b float64) bool { return a == b || (math.IsNaN(a) && math.IsNaN(b)) }
	for i, w := range want {
		g := pts[i]
		if !g.Time.Equal(w.Time) || !same(g.Requests, w.Requests) || !same(g.Errors, w.Errors) || !same(g.Latency, w.Latency) || !same(g.P99, w.P99) {
			t.Errorf("point %d: got %+v, want %+v", i, g, w)
		}
	}
}

func TestMoreThanOneSeriesIsInconclusive(t *testing.T) {
	f := newFake(t, func(q url.Values) (int, string) {
		ts := steps(q)
		one := []sample{{ts[0], "5"}}
		if strings.HasPrefix(q.Get("query"), "req") {
			return 200, matrix(one, one, one)
		}
		return 200, matrix(one)
	})
	p := mustNew(t, map[string]any{"address": f.URL, "queries": tmplQueries})
	v, err := p.Guard(context.Background(), ref)
	if err != nil {
		t.Fatal(err)
	}
	if v.Result != providers.Inconclusive || !strings.Contains(v.Summary, "query requests for green returned 3 series") || !strings.Contains(v.Summary, "sum(") {
		t.Fatalf("got %s, want Inconclusive saying the query returned 3 series", v)
	}
}

func closedAddress(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return "http://" + addr
}

func TestUnreachableIsInconclusive(t *testing.T) {
	p := mustNew(t, map[string]any{"address": closedAddress(t)})
	v, err := p.Guard(context.Background(), ref)
	if err != nil {
		t.Fatalf("got %v, want a verdict", err)
	}
	if v.Result != providers.Inconclusive || !strings.HasPrefix(v.Summary, "prometheus at http://127.0.0.1:") || !strings.Contains(v.Summary, "connection refused") {
		t.Fatalf("got %s, want Inconclusive naming the source", v)
	}
	t.Log(v.Summary)
}

func TestRetries(t *testing.T) {
	var mu sync.Mutex
	calls := map[string]int{}
	f := newFake(t, func(q url.Values) (int, string) {
		mu.Lock()
		calls[q.Get("query")]++
		n := calls[q.Get("query")]
		mu.Unlock()
		if n <= 2 {
			return 503, "overloaded"
		}
		return constant(func(string) string { return "50" })(q)
	})
	p := mustNew(t, map[string]any{"address": f.URL, "queries": tmplQueries})
	v, err := p.Guard(context.Background(), ref)
	if err != nil {
		t.Fatal(err)
	}
	// 50 errors of 50 requests: the data came through after two retries.
	if v.Result != providers.Fail {
		t.Fatalf("got %s, want Fail once the retries got the data", v)
	}
	if len(f.queries()) != 12 {
		t.Errorf("sent %d queries, want 4 queries x 3 attempts", len(f.queries()))
	}

	mu.Lock()
	clear(calls)
	mu.Unlock()
	p = mustNew(t, map[string]any{"address": f.URL, "queries": tmplQueries, "retries": 1})
	v, err = p.Guard(context.Background(), ref)
	if err != nil {
		t.Fatal(err)
	}
	if v.Result != providers.Inconclusive || !strings.Contains(v.Summary, "503") {
		t.Fatalf("with one retry: got %s, want Inconclusive naming the 503", v)
	}
}

func TestRefusedQueryIsBadConfig(t *testing.T) {
	var mu sync.Mutex
	n := 0
	f := newFake(t, func(url.Values) (int, string) {
		mu.Lock()
		n++
		mu.Unlock()
		return 400, `{"status":"error","errorType":"bad_data","error":"1:5: parse error: unexpected <EOF>"}`
	})
	p := mustNew(t, map[string]any{"address": f.URL, "queries": map[string]any{"p99": "sum("}})
	_, err := p.Guard(context.Background(), ref)
	if !errors.Is(err, providers.ErrBadConfig) || !strings.Contains(err.Error(), "queries.") || !strings.Contains(err.Error(), "parse error") {
		t.Fatalf("got %v, want a bad configuration naming the query", err)
	}
	if n != 4 {
		t.Errorf("sent %d queries, want 4 (no retry of a refused query)", n)
	}
}

func TestSlowPrometheusIsInconclusive(t *testing.T) {
	release := make(chan struct{})
	f := newFake(t, func(url.Values) (int, string) {
		<-release
		return 200, matrix()
	})
	defer close(release)
	p := mustNew(t, map[string]any{"address": f.URL, "timeout": "200ms", "retries": 0})
	begin := time.Now()
	v, err := p.Guard(context.Background(), ref)
	if err != nil {
		t.Fatal(err)
	}
	if v.Result != providers.Inconclusive || time.Since(begin) > 2*time.Second {
		t.Fatalf("got %s after %s, want Inconclusive after the timeout", v, time.Since(begin))
	}
}

func TestCancelReturnsPromptly(t *testing.T) {
	f := newFake(t, constant(func(string) string { return "1" }))
	p := mustNew(t, map[string]any{"address": f.URL})
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	begin := time.Now()
	_, err := p.Compare(ctx, ref, time.Minute)
	if !errors.Is(err, context.DeadlineExceeded) || time.Since(begin) > time.Second {
		t.Fatalf("got %v after %s, want the context's error at once", err, time.Since(begin))
	}
	// A query that hangs is cut by the context too.
	release := make(chan struct{})
	defer close(release)
	slow := newFake(t, func(url.Values) (int, string) { <-release; return 200, matrix() })
	p = mustNew(t, map[string]any{"address": slow.URL})
	ctx, cancel2 := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel2()
	begin = time.Now()
	if _, err := p.Guard(ctx, ref); !errors.Is(err, context.DeadlineExceeded) || time.Since(begin) > time.Second {
		t.Fatalf("guard: got %v after %s, want the context's error at once", err, time.Since(begin))
	}
}

func TestBadSettings(t *testing.T) {
	for _, tc := range []struct {
		settings map[string]any
		want     string
	}{
		{map[string]any{}, "address: is required"},
		{map[string]any{"address": "localhost:9090"}, "address: must be an http(s) URL"},
		{map[string]any{"address": "http://p:9090", "queries": map[string]any{"requests": "sum({{.Colour}})"}}, "queries.requests:"},
		{map[string]any{"address": "http://p:9090", "queries": map[string]any{"p99": "{{if}}"}}, "queries.p99:"},
		{map[string]any{"address": "http://p:9090", "queries": map[string]any{"latency2": "x"}}, `unknown setting "latency2"`},
		{map[string]any{"address": "http://p:9090", "step": "500ms"}, "step: 500ms is outside"},
		{map[string]any{"address": "http://p:9090", "retries": -1}, "retries: -1 is outside"},
		{map[string]any{"address": "http://p:9090", "timeout": "1ms"}, "timeout: 1ms is outside"},
		{map[string]any{"address": "http://p:9090", "step": "10s", "lookback": "5s"}, "lookback: 5s is outside"},
		{map[string]any{"address": "http://p:9090", "judge": map[string]any{"guard": map[string]any{"maxErrorRate": 0}}}, "judge.guard.maxErrorRate"},
	} {
		_, err := New(tc.settings)
		if err == nil || !errors.Is(err, providers.ErrBadConfig) {
			t.Errorf("%v: got %v, want a bad configuration", tc.settings, err)
			continue
		}
		if !strings.Contains(err.Error(), tc.want) || strings.Contains(err.Error(), "\n") {
			t.Errorf("%v: got %q, want one line with %q", tc.settings, err, tc.want)
		}
	}
	if _, err := New(map[string]any{"address": "https://prometheus.example:9090/prefix", "retries": 0}); err != nil {
		t.Errorf("good settings: %v", err)
	}
}
