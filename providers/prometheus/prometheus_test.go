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
	"reflect"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/common/model"

	"github.com/cutoverhq/cutover/analysis"
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

func (f *fakeProm) texts() []string {
	var ts []string
	for _, q := range f.queries() {
		ts = append(ts, q.Get("query"))
	}
	slices.Sort(ts)
	return ts
}

// series is one series of a query_range answer: its labels (with __name__)
// and its [time, value] pairs.
type series struct {
	labels map[string]string
	values []sample
}

type sample struct {
	t float64 // seconds, with milliseconds, as Prometheus writes them
	v string
}

// matrix is a successful query_range answer with these series, in
// Prometheus's JSON: {"metric": {...}, "values": [[1700000000.5, "12"], ...]}.
func matrix(ss ...series) string {
	type stream struct {
		Metric map[string]string `json:"metric"`
		Values [][2]any          `json:"values"`
	}
	res := []stream{}
	for _, s := range ss {
		st := stream{Metric: s.labels, Values: [][2]any{}}
		for _, p := range s.values {
			st.Values = append(st.Values, [2]any{p.t, p.v})
		}
		res = append(res, st)
	}
	b, _ := json.Marshal(map[string]any{"status": "success", "data": map[string]any{"resultType": "matrix", "result": res}})
	return string(b)
}

// steps are the evaluation times of a range query, as Prometheus computes
// them: from start by step up to end, in milliseconds.
func steps(q url.Values) []float64 {
	ms := func(k string) int64 {
		f, _ := strconv.ParseFloat(q.Get(k), 64)
		return int64(math.Round(f * 1000))
	}
	start, end, step := ms("start"), ms("end"), ms("step")
	var ts []float64
	for t := start; t <= end; t += step {
		ts = append(ts, float64(t)/1000)
	}
	return ts
}

// everyStep is a series with the value v at every step of the query.
func everyStep(q url.Values, v string, labels ...string) series {
	s := series{labels: map[string]string{}}
	for i := 0; i+1 < len(labels); i += 2 {
		s.labels[labels[i]] = labels[i+1]
	}
	for _, t := range steps(q) {
		s.values = append(s.values, sample{t, v})
	}
	return s
}

func mustNew(t *testing.T, settings map[string]any) *Provider {
	t.Helper()
	p, err := New(settings)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return p
}

var (
	t0   = time.Unix(1_700_000_000, 0)
	ctx0 = context.Background()
)

func TestDefaults(t *testing.T) {
	p := mustNew(t, map[string]any{"address": "https://reader:s3cret@prometheus.example:9090/prefix"})
	if p.Type() != "prometheus" || p.Step() != 2*time.Second {
		t.Errorf("type %q step %s, want prometheus 2s", p.Type(), p.Step())
	}
	if w := p.Where(); w != "prometheus at https://reader:xxxxx@prometheus.example:9090/prefix" || strings.Contains(w, "s3cret") {
		t.Errorf("Where() = %q, want the address without its password", w)
	}
	if got, want := p.Judge(), (judge.Config{}).WithDefaults(); !reflect.DeepEqual(got, want) {
		t.Errorf("Judge() = %+v, want the defaults %+v", got, want)
	}
	var got []string
	for _, r := range p.readings {
		got = append(got, fmt.Sprintf("%s %s", r.name, r.field))
	}
	if want := []string{"series.requests requests", "series.errors errors", "series.latency bucket"}; !slices.Equal(got, want) {
		t.Errorf("readings %q, want %q", got, want)
	}
	p = mustNew(t, map[string]any{"address": "http://127.0.0.1:9090", "step": "15s", "judge": map[string]any{"alpha": 0.05}})
	if p.Step() != 15*time.Second || p.Judge().Alpha != 0.05 || p.Judge().Power != 0.8 {
		t.Errorf("step %s judge %+v, want 15s and alpha 0.05 with the other defaults", p.Step(), p.Judge())
	}
}

func TestBadSettings(t *testing.T) {
	const addr = "http://p:9090"
	for _, tc := range []struct {
		settings map[string]any
		want     string
	}{
		{map[string]any{}, "address: is required"},
		{map[string]any{"address": "localhost:9090"}, "address: must be an http(s) URL"},
		{map[string]any{"address": addr, "step": "500ms"}, "step: 500ms is outside 1s..10m"},
		{map[string]any{"address": addr, "step": "11m"}, "step: 11m0s is outside 1s..10m"},
		{map[string]any{"address": addr, "step": "1500100us"}, "step: 1.5001s is finer than a millisecond"},
		{map[string]any{"address": addr, "timeout": "1ms"}, "timeout: 1ms is outside 100ms..2m"},
		{map[string]any{"address": addr, "retries": -1}, "retries: -1 is outside 0..10"},
		{map[string]any{"address": addr, "retries": 11}, "retries: 11 is outside 0..10"},
		{map[string]any{"address": addr, "lookback": "30s"}, `unknown setting "lookback"`},
		{map[string]any{"address": addr, "queries": map[string]any{}}, `unknown setting "queries"`},
		{map[string]any{"address": addr, "series": map[string]any{"p99": "x"}}, `unknown setting "p99"`},
		{map[string]any{"address": addr, "series": map[string]any{"requests": `req{color="{{.Colour}}"}`}}, "series.requests: template: series.requests:1:13: executing"},
		{map[string]any{"address": addr, "series": map[string]any{"errors": "{{if}}"}}, "series.errors: template: series.errors:1: missing value for if"},
		{map[string]any{"address": addr, "series": map[string]any{"latency": `b{le!="",x="{{.Range}}"}`}}, "series.latency: template:"},
		{map[string]any{"address": addr, "series": map[string]any{"latency": ""}}, "series.latency is empty but judge.latency is on; set judge: {latency: {off: true}}"},
		{map[string]any{"address": addr, "series": map[string]any{"errors": " "}}, "series.errors is empty but judge.errorRate is on; set judge: {errorRate: {off: true}}"},
		{map[string]any{"address": addr, "series": map[string]any{"requests": ""}}, "series.requests is empty but judge.errorRate is on"},
		{map[string]any{"address": addr, "judge": map[string]any{"alpha": 0.5}}, "judge.alpha must be above 0 and at most 0.2, got 0.5"},
		{map[string]any{"address": addr, "judge": map[string]any{"guard": map[string]any{}}}, `unknown setting "guard"`},
		{map[string]any{"address": addr, "judge": map[string]any{"metrics": []any{map[string]any{"name": "x"}}}}, "judge.metrics: list the app's metrics under metrics: instead"},
		{map[string]any{"address": addr, "metrics": []any{checkout(nil)}, "judge": map[string]any{"errorRate": map[string]any{"off": true}, "latency": map[string]any{"off": true}}, "series": map[string]any{"latency": "", "errors": "", "requests": "{{"}}, "series.requests: template: series.requests:1: unclosed action"},
		{map[string]any{"address": addr, "metrics": []any{checkout(map[string]any{"margin": 2})}}, "metrics[0].margin must be above 0 and below 1"},
		{map[string]any{"address": addr, "metrics": []any{checkout(map[string]any{"name": "error rate"})}}, `metrics[0].name "error rate" is taken`},
		{map[string]any{"address": addr, "metrics": []any{checkout(nil), checkout(nil)}}, `metrics[1].name "checkout" is taken`},
		{map[string]any{"address": addr, "metrics": []any{checkout(map[string]any{"denominator": ""})}}, "metrics[0].denominator: is required"},
		{map[string]any{"address": addr, "metrics": []any{checkout(map[string]any{"numerator": "{{.Colr}}"})}}, "metrics[0].numerator: template:"},
		{map[string]any{"address": addr, "metrics": []any{checkout(map[string]any{"query": "x"})}}, `unknown setting "query"`},
		{map[string]any{"address": addr, "metrics": []any{checkout(map[string]any{"numerator": "rate(shop_checkouts_total[5m])"})}}, "metrics[0].numerator: rate(shop_checkouts_total[5m]) applies rate() to the counter"},
	} {
		_, err := New(tc.settings)
		if err == nil || !errors.Is(err, providers.ErrBadConfig) {
			t.Errorf("%v: got %v, want a bad configuration", tc.settings, err)
			continue
		}
		if !strings.Contains(err.Error(), tc.want) || strings.Contains(err.Error(), "\n") {
			t.Errorf("%v:\ngot  %q\nwant one line with %q", tc.settings, err, tc.want)
		}
	}
}

// checkout is a metrics: entry, with changes.
func checkout(change map[string]any) map[string]any {
	m := map[string]any{
		"name": "checkout", "kind": "proportion", "better": "higher", "margin": 0.02,
		"numerator":   `shop_checkouts_total{version="{{.Version}}"}`,
		"denominator": `shop_sessions_total{version="{{.Version}}"}`,
	}
	for k, v := range change {
		m[k] = v
	}
	return m
}

func TestSelectorsMustBeRawCounters(t *testing.T) {
	for _, tc := range []struct{ sel, why string }{
		{`increase(cutover_router_requests_total{color="{{.Color}}"}[2s])`, "applies increase() to the counter"},
		{`rate(x[1m])`, "applies rate() to the counter"},
		{`sum(x{color="{{.Color}}"})`, "applies sum() to the counter"},
		{`sum (x)`, "applies sum() to the counter"},
		{`sum by (le) (x{color="{{.Color}}"})`, "applies sum() to the counter"},
		{`sum without(instance) (x)`, "applies sum() to the counter"},
		{`sum(increase(x[2s])) or vector(0)`, "applies sum() to the counter"},
		{`histogram_quantile(0.99, sum by (le) (rate(x_bucket[1m])))`, "applies histogram_quantile() to the counter"},
		{`x{color="{{.Color}}"}[5m]`, "is a range vector"},
		{`x / y`, "is not a plain series selector"},
		{`x offset 5m`, "is not a plain series selector"},
		{`x{a="b"} > 0`, "is not a plain series selector"},
		{`(x)`, "is not a plain series selector"},
		{`{{if false}}x{{end}}`, "is empty once its template runs"},
	} {
		_, err := New(map[string]any{"address": "http://p:9090", "series": map[string]any{"requests": tc.sel}})
		if !errors.Is(err, providers.ErrBadConfig) || !strings.Contains(err.Error(), "series.requests: "+tc.sel+" "+tc.why) ||
			!strings.Contains(err.Error(), "give the raw counter's selector") || !strings.Contains(err.Error(), "whole requests") {
			t.Errorf("%s: got %v, want a bad configuration saying it %s and why raw counters are needed", tc.sel, err, tc.why)
		}
	}
	for _, sel := range []string{
		`x`,
		`cutover_router_requests_total{color="{{.Color}}"}`,
		` x{ a = "b" , c=~"5.." } `,
		`{__name__="x",color="{{.Color}}"}`,
		`x{path=~"/(cart|sum)\\(x\\)[0-9]", q='}{'}`,
		"x{path=`rate(`}",
		`{"utf8.metric", color="green"}`,
		`shop:checkouts:total{version="{{.Version}}"}`,
	} {
		if _, err := New(map[string]any{"address": "http://p:9090", "series": map[string]any{"requests": sel}}); err != nil {
			t.Errorf("%s: %v, want it accepted", sel, err)
		}
	}
}

func TestJudgeMetrics(t *testing.T) {
	p := mustNew(t, map[string]any{"address": "http://p:9090", "metrics": []any{
		checkout(nil),
		map[string]any{"name": "order value", "kind": "mean", "better": "higher", "margin": 0.05, "critical": true,
			"numerator":   `shop_order_value_sum{version="{{.Version}}"}`,
			"denominator": `shop_order_value_count{version="{{.Version}}"}`},
	}})
	no, yes := false, true
	want := []judge.MetricConfig{
		{Name: "checkout", Kind: "proportion", Better: "higher", Margin: 0.02, Critical: &no},
		{Name: "order value", Kind: "mean", Better: "higher", Margin: 0.05, Critical: &yes},
	}
	if got := p.Judge().Metrics; !reflect.DeepEqual(got, want) {
		t.Errorf("Judge().Metrics = %+v, want %+v", got, want)
	}
	p.Judge().Metrics[0].Name = "changed"
	if p.Judge().Metrics[0].Name != "checkout" {
		t.Error("changing Judge()'s answer changed the provider")
	}
	var got []string
	for _, r := range p.readings {
		got = append(got, fmt.Sprintf("%s %s %q", r.name, r.field, r.metric))
	}
	wantReadings := []string{
		`series.requests requests ""`, `series.errors errors ""`, `series.latency bucket ""`,
		`metrics[0].numerator num "checkout"`, `metrics[0].denominator den "checkout"`,
		`metrics[1].numerator num "order value"`, `metrics[1].denominator den "order value"`,
	}
	if !slices.Equal(got, wantReadings) {
		t.Errorf("readings\n%q\nwant\n%q", got, wantReadings)
	}
}

func TestRangeQueries(t *testing.T) {
	f := newFake(t, func(url.Values) (int, string) { return 200, matrix() })
	p := mustNew(t, map[string]any{"address": f.URL, "step": "1500ms", "timeout": "3s",
		"series": map[string]any{
			"requests": `req{app="{{.App}}",color="{{.Color}}",version="{{.Version}}"}`,
			"errors":   `err{color="{{.Color}}"}`,
		},
		"metrics": []any{checkout(nil)},
	})
	from := t0.Add(250 * time.Millisecond)
	snaps, err := p.Range(ctx0, ref, from, from.Add(15*time.Second), 1500*time.Millisecond)
	if err != nil || len(snaps) != 0 {
		t.Fatalf("got %v, %v; want no snapshots and no error", snaps, err)
	}
	want := []string{
		`cutover_router_request_duration_seconds_bucket{color="blue"}`,
		`cutover_router_request_duration_seconds_bucket{color="green"}`,
		`err{color="blue"}`,
		`err{color="green"}`,
		`req{app="shop",color="blue",version="v1"}`,
		`req{app="shop",color="green",version="v2"}`,
		`shop_checkouts_total{version="v1"}`,
		`shop_checkouts_total{version="v2"}`,
		`shop_sessions_total{version="v1"}`,
		`shop_sessions_total{version="v2"}`,
	}
	if got := f.texts(); !slices.Equal(got, want) {
		t.Errorf("queries\n%q\nwant\n%q", got, want)
	}
	for _, q := range f.queries() {
		if q.Get("start") != "1700000000.25" || q.Get("end") != "1700000015.25" || q.Get("step") != "1.5" || q.Get("timeout") != "3s" {
			t.Errorf("%s: start %s end %s step %s timeout %s, want 1700000000.25, 1700000015.25, 1.5, 3s",
				q.Get("query"), q.Get("start"), q.Get("end"), q.Get("step"), q.Get("timeout"))
		}
	}
}

// TestRangeSnapshots gives each query series as Prometheus would return them
// and checks the snapshots: one per timestamp, every series as it is.
func TestRangeSnapshots(t *testing.T) {
	const ts = 1_700_000_000.0
	answers := map[string]string{
		`cutover_router_requests_total{color="blue"}`: matrix(
			series{map[string]string{"__name__": "cutover_router_requests_total", "color": "blue", "code": "200", "instance": "10.0.0.1:8080", "job": "router"},
				[]sample{{ts, "100"}, {ts + 2, "110"}, {ts + 4, "125"}}},
		),
		`cutover_router_requests_total{color="green"}`: matrix(
			// Prometheus's own order is by labels; the provider's is by ID.
			series{map[string]string{"__name__": "cutover_router_requests_total", "color": "green", "code": "500", "instance": "10.0.0.2:8080", "job": "router"},
				[]sample{{ts + 2, "1"}, {ts + 4, "3"}}},
			series{map[string]string{"__name__": "cutover_router_requests_total", "color": "green", "code": "200", "instance": "10.0.0.2:8080", "job": "router"},
				[]sample{{ts, "7"}, {ts + 2, "9"}, {ts + 4, "2"}}}, // reset: read as it is
		),
		`cutover_router_requests_total{color="blue",code=~"5.."}`: matrix(),
		`cutover_router_requests_total{color="green",code=~"5.."}`: matrix(
			series{map[string]string{"__name__": "cutover_router_requests_total", "color": "green", "code": "500", "instance": "10.0.0.2:8080", "job": "router"},
				[]sample{{ts + 2, "1"}, {ts + 4, "3"}}},
		),
		`cutover_router_request_duration_seconds_bucket{color="blue"}`: matrix(
			series{map[string]string{"__name__": "cutover_router_request_duration_seconds_bucket", "color": "blue", "le": "0.1"},
				[]sample{{ts, "90"}, {ts + 2, "99"}, {ts + 4, "110"}}},
			series{map[string]string{"__name__": "cutover_router_request_duration_seconds_bucket", "color": "blue", "le": "+Inf"},
				[]sample{{ts, "100"}, {ts + 2, "110"}, {ts + 4, "125"}}},
		),
		`cutover_router_request_duration_seconds_bucket{color="green"}`: matrix(
			series{map[string]string{"__name__": "cutover_router_request_duration_seconds_bucket", "color": "green", "le": "1e-3"},
				[]sample{{ts + 4, "0"}}},
		),
		`shop_checkouts_total{version="v1"}`: matrix(
			series{map[string]string{"__name__": "shop_checkouts_total", "version": "v1", "note": "a \"quoted\"\\value\nhere"},
				[]sample{{ts, "4"}}},
		),
		`shop_checkouts_total{version="v2"}`: matrix(),
		`shop_sessions_total{version="v1"}`:  matrix(),
		`shop_sessions_total{version="v2"}`:  matrix(series{map[string]string{"__name__": "shop_sessions_total", "version": "v2"}, []sample{{ts + 4, "12"}}}),
	}
	f := newFake(t, func(q url.Values) (int, string) {
		a, ok := answers[q.Get("query")]
		if !ok {
			return 400, `{"status":"error","errorType":"bad_data","error":"unexpected query"}`
		}
		return 200, a
	})
	p := mustNew(t, map[string]any{"address": f.URL, "metrics": []any{checkout(nil)}})
	snaps, err := p.Range(ctx0, ref, t0, t0.Add(4*time.Second), 2*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	blue, green := providers.Blue, providers.Green
	reqB := `cutover_router_requests_total{code="200",color="blue",instance="10.0.0.1:8080",job="router"}`
	reqG200 := `cutover_router_requests_total{code="200",color="green",instance="10.0.0.2:8080",job="router"}`
	reqG500 := `cutover_router_requests_total{code="500",color="green",instance="10.0.0.2:8080",job="router"}`
	bktB1 := `cutover_router_request_duration_seconds_bucket{color="blue",le="0.1"}`
	bktBInf := `cutover_router_request_duration_seconds_bucket{color="blue",le="+Inf"}`
	bktG := `cutover_router_request_duration_seconds_bucket{color="green",le="1e-3"}`
	chk := `shop_checkouts_total{note="a \"quoted\"\\value\nhere",version="v1"}`
	ses := `shop_sessions_total{version="v2"}`
	type S = analysis.Series
	want := []analysis.Snapshot{
		{At: t0, Series: []S{
			{ID: reqB, Color: blue, Field: analysis.FieldRequests, Value: 100},
			{ID: reqG200, Color: green, Field: analysis.FieldRequests, Value: 7},
			{ID: bktBInf, Color: blue, Field: analysis.FieldBucket, Le: math.Inf(1), Value: 100},
			{ID: bktB1, Color: blue, Field: analysis.FieldBucket, Le: 0.1, Value: 90},
			{ID: chk, Color: blue, Field: analysis.FieldNum, Metric: "checkout", Value: 4},
		}},
		{At: t0.Add(2 * time.Second), Series: []S{
			{ID: reqB, Color: blue, Field: analysis.FieldRequests, Value: 110},
			{ID: reqG200, Color: green, Field: analysis.FieldRequests, Value: 9},
			{ID: reqG500, Color: green, Field: analysis.FieldRequests, Value: 1},
			{ID: reqG500, Color: green, Field: analysis.FieldErrors, Value: 1},
			{ID: bktBInf, Color: blue, Field: analysis.FieldBucket, Le: math.Inf(1), Value: 110},
			{ID: bktB1, Color: blue, Field: analysis.FieldBucket, Le: 0.1, Value: 99},
		}},
		{At: t0.Add(4 * time.Second), Series: []S{
			{ID: reqB, Color: blue, Field: analysis.FieldRequests, Value: 125},
			{ID: reqG200, Color: green, Field: analysis.FieldRequests, Value: 2},
			{ID: reqG500, Color: green, Field: analysis.FieldRequests, Value: 3},
			{ID: reqG500, Color: green, Field: analysis.FieldErrors, Value: 3},
			{ID: bktBInf, Color: blue, Field: analysis.FieldBucket, Le: math.Inf(1), Value: 125},
			{ID: bktB1, Color: blue, Field: analysis.FieldBucket, Le: 0.1, Value: 110},
			{ID: bktG, Color: green, Field: analysis.FieldBucket, Le: 0.001, Value: 0},
			{ID: ses, Color: green, Field: analysis.FieldDen, Metric: "checkout", Value: 12},
		}},
	}
	if len(snaps) != len(want) {
		t.Fatalf("got %d snapshots, want %d: %+v", len(snaps), len(want), snaps)
	}
	for i, w := range want {
		g := snaps[i]
		if !g.At.Equal(w.At) {
			t.Errorf("snapshot %d at %s, want %s", i, g.At, w.At)
		}
		if !reflect.DeepEqual(g.Series, w.Series) {
			t.Errorf("snapshot %d:\ngot  %+v\nwant %+v", i, g.Series, w.Series)
		}
	}
}

// TestRangeVerbatimAnswer parses an answer exactly as Prometheus 2.42 wrote
// it for a range query of the router's buckets.
func TestRangeVerbatimAnswer(t *testing.T) {
	const body = `{"status":"success","data":{"resultType":"matrix","result":[` +
		`{"metric":{"__name__":"cutover_router_request_duration_seconds_bucket","color":"green","instance":"127.0.0.1:35121","job":"cutover","le":"+Inf"},"values":[[1700000000,"0"],[1700000001.5,"37"]]},` +
		`{"metric":{"__name__":"cutover_router_request_duration_seconds_bucket","color":"green","instance":"127.0.0.1:35121","job":"cutover","le":"0.0025"},"values":[[1700000000,"0"],[1700000001.5,"31"]]}]}}`
	f := newFake(t, func(q url.Values) (int, string) {
		if strings.Contains(q.Get("query"), "bucket") && strings.Contains(q.Get("query"), "green") {
			return 200, body
		}
		return 200, `{"status":"success","data":{"resultType":"matrix","result":[]}}`
	})
	p := mustNew(t, map[string]any{"address": f.URL})
	snaps, err := p.Range(ctx0, ref, t0, t0.Add(1500*time.Millisecond), 1500*time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	if len(snaps) != 2 || !snaps[1].At.Equal(t0.Add(1500*time.Millisecond)) || len(snaps[1].Series) != 2 {
		t.Fatalf("got %+v, want two snapshots of two series", snaps)
	}
	inf, fine := snaps[1].Series[0], snaps[1].Series[1]
	if inf.ID != `cutover_router_request_duration_seconds_bucket{color="green",instance="127.0.0.1:35121",job="cutover",le="+Inf"}` ||
		!math.IsInf(inf.Le, 1) || inf.Value != 37 || fine.Le != 0.0025 || fine.Value != 31 || fine.Color != providers.Green || fine.Field != analysis.FieldBucket {
		t.Errorf("got %+v and %+v", inf, fine)
	}
}

func TestSeriesID(t *testing.T) {
	for _, tc := range []struct {
		m    model.Metric
		want string
	}{
		{model.Metric{"__name__": "up"}, "up"},
		{model.Metric{"__name__": "x", "b": "2", "a": "1", "_c": "3"}, `x{_c="3",a="1",b="2"}`},
		{model.Metric{"b": "2", "a": "1"}, `{a="1",b="2"}`},
		{model.Metric{"__name__": "x", "path": `C:\dir "q"` + "\n"}, `x{path="C:\\dir \"q\"\n"}`},
		{model.Metric{"__name__": "x", "le": "+Inf"}, `x{le="+Inf"}`},
	} {
		if got := seriesID(tc.m); got != tc.want {
			t.Errorf("seriesID(%v) = %s, want %s", tc.m, got, tc.want)
		}
	}
}

func TestBucketWithoutLe(t *testing.T) {
	for _, le := range []string{"", "NaN", "fast"} {
		f := newFake(t, func(q url.Values) (int, string) {
			if strings.Contains(q.Get("query"), "_sum") {
				labels := []string{"__name__", "latency_sum", "color", "blue"}
				if le != "" {
					labels = append(labels, "le", le)
				}
				return 200, matrix(everyStep(q, "1", labels...))
			}
			return 200, matrix()
		})
		p := mustNew(t, map[string]any{"address": f.URL, "series": map[string]any{"latency": `latency_sum{color="{{.Color}}"}`}})
		_, err := p.Range(ctx0, ref, t0, t0.Add(4*time.Second), 2*time.Second)
		if !errors.Is(err, providers.ErrBadConfig) || !strings.HasPrefix(err.Error(), `series.latency: latency_sum{color="blue"} returned latency_sum{color="blue"`) ||
			!strings.Contains(err.Error(), "no bucket bound in an le label") {
			t.Errorf("le %q: got %v, want a bad configuration naming the query", le, err)
		}
	}
}

func TestNativeHistogramIsRefused(t *testing.T) {
	f := newFake(t, func(q url.Values) (int, string) {
		if strings.Contains(q.Get("query"), "bucket") {
			return 200, `{"status":"success","data":{"resultType":"matrix","result":[{"metric":{"__name__":"d_bucket"},` +
				`"histograms":[[1700000000,{"count":"2","sum":"0.5","buckets":[[0,"0.1","0.2","2"]]}]]}]}}`
		}
		return 200, matrix()
	})
	p := mustNew(t, map[string]any{"address": f.URL})
	_, err := p.Range(ctx0, ref, t0, t0, time.Second)
	if !errors.Is(err, providers.ErrBadConfig) || !strings.Contains(err.Error(), "native histogram") {
		t.Errorf("got %v, want a bad configuration about the native histogram", err)
	}
}

func TestSameSeriesForBothColors(t *testing.T) {
	f := newFake(t, func(q url.Values) (int, string) {
		if strings.HasPrefix(q.Get("query"), "shop_sessions") {
			return 200, matrix(everyStep(q, "5", "__name__", "shop_sessions_total", "version", "v1"))
		}
		return 200, matrix()
	})
	p := mustNew(t, map[string]any{"address": f.URL, "metrics": []any{checkout(map[string]any{"denominator": `shop_sessions_total`})}})
	_, err := p.Range(ctx0, ref, t0, t0.Add(2*time.Second), time.Second)
	if !errors.Is(err, providers.ErrBadConfig) || !strings.Contains(err.Error(),
		`metrics[0].denominator: blue and green both match shop_sessions_total{version="v1"}; the selector must tell the colors apart`) {
		t.Errorf("got %v, want a bad configuration naming the series", err)
	}
}

func TestOffFieldsAreNotRead(t *testing.T) {
	f := newFake(t, func(url.Values) (int, string) { return 200, matrix() })
	p := mustNew(t, map[string]any{"address": f.URL, "metrics": []any{checkout(nil)},
		"series": map[string]any{"latency": ""},
		"judge":  map[string]any{"latency": map[string]any{"off": true}, "errorRate": map[string]any{"off": true}},
	})
	if _, err := p.Range(ctx0, ref, t0, t0.Add(2*time.Second), time.Second); err != nil {
		t.Fatal(err)
	}
	// The errors selector is checked but not read: the judge would not look at it.
	want := []string{
		`cutover_router_requests_total{color="blue"}`, `cutover_router_requests_total{color="green"}`,
		`shop_checkouts_total{version="v1"}`, `shop_checkouts_total{version="v2"}`,
		`shop_sessions_total{version="v1"}`, `shop_sessions_total{version="v2"}`,
	}
	if got := f.texts(); !slices.Equal(got, want) {
		t.Errorf("queries %q, want %q", got, want)
	}
	if _, err := New(map[string]any{"address": f.URL, "series": map[string]any{"errors": "sum(x)"}, "judge": map[string]any{"errorRate": map[string]any{"off": true}}}); !errors.Is(err, providers.ErrBadConfig) {
		t.Error("an unread selector that is not a raw counter: no error")
	}
}

func TestLongRangeIsReadInPieces(t *testing.T) {
	var firsts, lasts []float64
	var mu sync.Mutex
	f := newFake(t, func(q url.Values) (int, string) {
		ts := steps(q)
		if q.Get("query") == `cutover_router_requests_total{color="green"}` {
			mu.Lock()
			firsts, lasts = append(firsts, ts[0]), append(lasts, ts[len(ts)-1])
			mu.Unlock()
			return 200, matrix(everyStep(q, "1", "__name__", "r", "color", "green"))
		}
		return 200, matrix()
	})
	p := mustNew(t, map[string]any{"address": f.URL, "step": "1s"})
	to := t0.Add(24_999 * time.Second)
	snaps, err := p.Range(ctx0, ref, t0, to, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if len(snaps) != 25_000 || !snaps[0].At.Equal(t0) || !snaps[24_999].At.Equal(to) {
		t.Fatalf("got %d snapshots, want 25000 from %s to %s", len(snaps), t0, to)
	}
	for i := 1; i < len(snaps); i++ {
		if snaps[i].At.Sub(snaps[i-1].At) != time.Second || len(snaps[i].Series) != 1 {
			t.Fatalf("snapshot %d at %s after %s with %d series", i, snaps[i].At, snaps[i-1].At, len(snaps[i].Series))
		}
	}
	slices.Sort(firsts)
	slices.Sort(lasts)
	s := float64(t0.Unix())
	if !slices.Equal(firsts, []float64{s, s + 10_000, s + 20_000}) || !slices.Equal(lasts, []float64{s + 9_999, s + 19_999, s + 24_999}) {
		t.Errorf("pieces start at %v and end at %v", firsts, lasts)
	}
}

func TestBadRangeArguments(t *testing.T) {
	p := mustNew(t, map[string]any{"address": "http://127.0.0.1:1"})
	if _, err := p.Range(ctx0, ref, t0, t0.Add(-time.Second), time.Second); err == nil || !strings.Contains(err.Error(), "ends before it starts") {
		t.Errorf("to before from: %v", err)
	}
	if _, err := p.Range(ctx0, ref, t0, t0.Add(time.Second), 0); err == nil || !strings.Contains(err.Error(), "step 0s") {
		t.Errorf("step 0: %v", err)
	}
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
		return 200, matrix(everyStep(q, "50", "__name__", "x", "q", q.Get("query")))
	})
	p := mustNew(t, map[string]any{"address": f.URL, "series": map[string]any{"latency": ""}, "judge": map[string]any{"latency": map[string]any{"off": true}}})
	snaps, err := p.Range(ctx0, ref, t0, t0.Add(2*time.Second), 2*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if len(snaps) != 2 || len(snaps[1].Series) != 4 {
		t.Errorf("got %+v, want the data once the retries got it", snaps)
	}
	if len(f.queries()) != 12 {
		t.Errorf("sent %d queries, want 4 queries x 3 attempts", len(f.queries()))
	}

	mu.Lock()
	clear(calls)
	mu.Unlock()
	p = mustNew(t, map[string]any{"address": f.URL, "retries": 1})
	_, err = p.Range(ctx0, ref, t0, t0.Add(2*time.Second), 2*time.Second)
	if err == nil || errors.Is(err, providers.ErrBadConfig) || !strings.Contains(err.Error(), "503") || !strings.HasPrefix(err.Error(), "series.") {
		t.Fatalf("with one retry: got %v, want a plain error naming the query and the 503", err)
	}
}

func TestRefusedQueryIsBadConfig(t *testing.T) {
	var n atomic.Int64
	f := newFake(t, func(url.Values) (int, string) {
		n.Add(1)
		return 400, `{"status":"error","errorType":"bad_data","error":"1:5: parse error: unexpected <EOF>"}`
	})
	p := mustNew(t, map[string]any{"address": f.URL, "retries": 3})
	_, err := p.Range(ctx0, ref, t0, t0.Add(2*time.Second), time.Second)
	if !errors.Is(err, providers.ErrBadConfig) || !strings.HasPrefix(err.Error(), "series.") || !strings.Contains(err.Error(), "Prometheus refused cutover_router_") || !strings.Contains(err.Error(), "parse error") {
		t.Fatalf("got %v, want a bad configuration naming the query", err)
	}
	if n.Load() > 6 {
		t.Errorf("sent %d queries, want at most 6 (no retry of a refused query)", n.Load())
	}
}

// TestBadConfigWins: one refused query decides, although the others fail
// with retryable errors, and Range does not wait out their retries.
func TestBadConfigWins(t *testing.T) {
	f := newFake(t, func(q url.Values) (int, string) {
		if strings.HasPrefix(q.Get("query"), "shop_sessions") {
			return 400, `{"status":"error","errorType":"bad_data","error":"unknown function"}`
		}
		return 502, "bad gateway"
	})
	retryBackoff = time.Second
	defer func() { retryBackoff = 10 * time.Millisecond }()
	p := mustNew(t, map[string]any{"address": f.URL, "metrics": []any{checkout(nil)}})
	begin := time.Now()
	_, err := p.Range(ctx0, ref, t0, t0.Add(2*time.Second), time.Second)
	if !errors.Is(err, providers.ErrBadConfig) || !strings.HasPrefix(err.Error(), "metrics[0].denominator: Prometheus refused shop_sessions_total{version=") {
		t.Fatalf("got %v, want the refused query's bad configuration", err)
	}
	if d := time.Since(begin); d > 900*time.Millisecond {
		t.Errorf("took %s: waited for the other queries' retries", d)
	}
}

func TestExecErrorIsNotRetried(t *testing.T) {
	var n atomic.Int64
	f := newFake(t, func(url.Values) (int, string) {
		n.Add(1)
		return 422, `{"status":"error","errorType":"execution","error":"query processing would load too many samples into memory"}`
	})
	p := mustNew(t, map[string]any{"address": f.URL})
	_, err := p.Range(ctx0, ref, t0, t0, time.Second)
	if err == nil || errors.Is(err, providers.ErrBadConfig) || !strings.Contains(err.Error(), "too many samples") || n.Load() != 6 {
		t.Errorf("got %v after %d queries, want a plain error after 6 (no retry)", err, n.Load())
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

func TestUnreachable(t *testing.T) {
	p := mustNew(t, map[string]any{"address": closedAddress(t)})
	_, err := p.Range(ctx0, ref, t0, t0.Add(time.Second), time.Second)
	if err == nil || errors.Is(err, providers.ErrBadConfig) || !strings.HasPrefix(err.Error(), "series.") || !strings.Contains(err.Error(), "connection refused") {
		t.Fatalf("got %v, want a plain error naming the query and the refused connection", err)
	}
	t.Log(err)
}

func TestSlowPrometheus(t *testing.T) {
	release := make(chan struct{})
	f := newFake(t, func(url.Values) (int, string) {
		<-release
		return 200, matrix()
	})
	defer close(release)
	p := mustNew(t, map[string]any{"address": f.URL, "timeout": "200ms", "retries": 0})
	begin := time.Now()
	_, err := p.Range(ctx0, ref, t0, t0.Add(time.Second), time.Second)
	if err == nil || errors.Is(err, providers.ErrBadConfig) || !strings.Contains(err.Error(), "no answer within 200ms") || time.Since(begin) > 2*time.Second {
		t.Fatalf("got %v after %s, want the timeout", err, time.Since(begin))
	}
}

func TestCancel(t *testing.T) {
	release := make(chan struct{})
	defer close(release)
	slow := newFake(t, func(url.Values) (int, string) { <-release; return 200, matrix() })
	p := mustNew(t, map[string]any{"address": slow.URL, "timeout": "1m"})
	ctx, cancel := context.WithTimeout(ctx0, 200*time.Millisecond)
	defer cancel()
	begin := time.Now()
	if _, err := p.Range(ctx, ref, t0, t0.Add(time.Second), time.Second); !errors.Is(err, context.DeadlineExceeded) || time.Since(begin) > time.Second {
		t.Fatalf("hanging queries: got %v after %s, want the context's error at once", err, time.Since(begin))
	}

	// Cut during a retry's backoff.
	retryBackoff = time.Minute
	defer func() { retryBackoff = 10 * time.Millisecond }()
	failing := newFake(t, func(url.Values) (int, string) { return 503, "down" })
	p = mustNew(t, map[string]any{"address": failing.URL})
	ctx, cancel2 := context.WithCancel(ctx0)
	time.AfterFunc(200*time.Millisecond, cancel2)
	begin = time.Now()
	if _, err := p.Range(ctx, ref, t0, t0.Add(time.Second), time.Second); !errors.Is(err, context.Canceled) || time.Since(begin) > time.Second {
		t.Fatalf("backing off: got %v after %s, want the context's error at once", err, time.Since(begin))
	}
}

func TestQueriesRunConcurrentlyBounded(t *testing.T) {
	var inFlight, most atomic.Int64
	f := newFake(t, func(url.Values) (int, string) {
		n := inFlight.Add(1)
		for {
			m := most.Load()
			if n <= m || most.CompareAndSwap(m, n) {
				break
			}
		}
		time.Sleep(30 * time.Millisecond)
		inFlight.Add(-1)
		return 200, matrix()
	})
	var ms []any
	for i := range 4 {
		ms = append(ms, checkout(map[string]any{"name": fmt.Sprintf("m%d", i)}))
	}
	p := mustNew(t, map[string]any{"address": f.URL, "metrics": ms})
	if _, err := p.Range(ctx0, ref, t0, t0.Add(time.Second), time.Second); err != nil {
		t.Fatal(err)
	}
	if n := len(f.queries()); n != 22 {
		t.Errorf("sent %d queries, want 2 colors x (3 + 2x4)", n)
	}
	if m := most.Load(); m < 2 || m > maxConcurrent {
		t.Errorf("at most %d queries in flight, want 2..%d", m, maxConcurrent)
	}
}
