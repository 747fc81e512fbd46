package tests

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/cutoverhq/cutover/tests/harness"
	"github.com/cutoverhq/cutover/workflows"
)

// grafanaDashboard is the part of a Grafana dashboard JSON the test reads.
type grafanaDashboard struct {
	Title  string
	Panels []grafanaPanel
}

type grafanaPanel struct {
	Title   string
	Type    string
	Targets []struct {
		Expr  string
		RefID string `json:"refId"`
	}
	Panels []grafanaPanel // a row's panels
}

// grafanaVars are what Grafana puts for the dashboard's variables.
var grafanaVars = strings.NewReplacer(`$__rate_interval`, `1m`, `$__range`, `10m`, `$app`, `.*`, `$job`, `.*`)

// The releases of the dashboard test: one promoted, one rolled back by a
// failing soak guard, with the weights moving.
const (
	grafanaGood = `app: dash-good
version: 2.0.0
providers:
  environment: {type: memory, settings: {delay: 100ms}}
  traffic: {type: memory}
  analysis: {type: memory, settings: {guard: Pass, verdict: Pass}}
plan:
  - provision
  - validate
  - setWeight: 10
  - soak: {duration: 3s, interval: 1s}
  - setWeight: 50
  - analysis: {window: 1s}
  - promote
  - decommission
`
	grafanaBad = `app: dash-bad
version: 3.0.0
providers:
  environment: {type: memory, settings: {delay: 100ms}}
  traffic: {type: memory}
  analysis: {type: memory, settings: {guard: Fail}}
plan:
  - provision
  - validate
  - setWeight: 10
  - soak: {duration: 5s, interval: 1s}
  - promote
`
)

// TestGrafanaDashboard runs every query of deploy/grafana/cutover.json against
// a real Prometheus scraping two workers while they run releases (one
// promoted, one rolled back), and wants data from each: a panel whose query
// names a metric nobody exports, or a label it does not carry, fails here.
func TestGrafanaDashboard(t *testing.T) {
	path := filepath.Join(harness.RepoRoot(t), "deploy", "grafana", "cutover.json")
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var dash grafanaDashboard
	if err := json.Unmarshal(data, &dash); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	type query struct{ panel, expr string }
	var queries []query
	var walk func([]grafanaPanel)
	walk = func(ps []grafanaPanel) {
		for _, p := range ps {
			walk(p.Panels)
			for _, tg := range p.Targets {
				if tg.Expr == "" {
					t.Errorf("panel %q has a target without a query", p.Title)
					continue
				}
				queries = append(queries, query{p.Title, tg.Expr})
			}
		}
	}
	walk(dash.Panels)
	if len(queries) < 6 {
		t.Fatalf("only %d queries in the dashboard", len(queries))
	}

	c := startCluster(t)
	prom := harness.StartPrometheus(t, c.http...)
	prom.WaitForTarget(t, 30*time.Second)

	for _, s := range []string{grafanaGood, grafanaBad} {
		file := filepath.Join(t.TempDir(), "release.yaml")
		if err := os.WriteFile(file, []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
		if out, errOut, code := c.cutover("release", "-f", file); code != 0 {
			t.Fatalf("release: %d %s%s", code, out, errOut)
		}
	}
	// During the releases: the weight gauges move.
	c.waitStatus("dash-good", 60*time.Second, func(st workflows.Status) bool { return st.Weights.Green > 0 })
	for app, want := range map[string]string{"dash-good": workflows.OutcomePromoted, "dash-bad": workflows.OutcomeRolledBack} {
		st := c.waitStatus(app, 90*time.Second, func(st workflows.Status) bool { return st.Outcome != workflows.OutcomeRunning })
		if st.Outcome != want {
			t.Fatalf("%s ended %s (%s), want %s", app, st.Outcome, st.Reason, want)
		}
	}

	api := prom.URL() + "/api/v1/query"
	client := &http.Client{Timeout: 10 * time.Second}
	run := func(expr string) (int, string, error) {
		resp, err := client.Get(api + "?query=" + url.QueryEscape(expr))
		if err != nil {
			return 0, "", err
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		var r struct {
			Status string
			Error  string
			Data   struct {
				Result []struct {
					Value [2]any
				}
			}
		}
		if err := json.Unmarshal(body, &r); err != nil || r.Status != "success" {
			return 0, string(body), fmt.Errorf("query failed: %s %s", r.Error, body)
		}
		// A quantile or a division over nothing is NaN: a series, but no
		// data. Series with a number count.
		n := 0
		for _, res := range r.Data.Result {
			if v, _ := res.Value[1].(string); v != "NaN" && !strings.HasSuffix(v, "Inf") {
				n++
			}
		}
		return n, string(body), nil
	}
	// Scrapes every second; a rate needs two samples after the change.
	deadline := time.Now().Add(30 * time.Second)
	for _, q := range queries {
		expr := grafanaVars.Replace(q.expr)
		for {
			n, body, err := run(expr)
			if err != nil {
				t.Errorf("panel %q: %s: %v", q.panel, expr, err)
				break
			}
			if n > 0 {
				if len(body) > 600 {
					body = body[:600] + "..."
				}
				t.Logf("panel %q: %d series: %s", q.panel, n, body)
				break
			}
			if time.Now().After(deadline) {
				names, _, _ := run(`count by (__name__) ({__name__=~"cutover_.*|temporal_.*"})`)
				_, all, _ := run(`count by (__name__) ({__name__=~"cutover_.*|temporal_.*"})`)
				t.Errorf("panel %q: no data for %s (%s)\nthe workers export %d cutover/temporal metrics: %s", q.panel, expr, body, names, all)
				break
			}
			time.Sleep(time.Second)
		}
	}
	titles := make([]string, 0, len(queries))
	for _, q := range queries {
		titles = append(titles, q.panel)
	}
	slices.Sort(titles)
	t.Logf("%d queries in %d panels checked", len(queries), len(slices.Compact(titles)))
}
