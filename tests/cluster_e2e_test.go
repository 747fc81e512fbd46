package tests

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/cutoverhq/cutover/tests/harness"
	"github.com/cutoverhq/cutover/workflows"
)

// The production-shape test: releases of the demo app, through the real
// router under load, on a Temporal cluster as production runs one (the server
// built from go.temporal.io/server, PostgreSQL persistence and SQL visibility,
// two nodes behind one address), while the server, a node, PostgreSQL and the
// workers fail in turn. PostgreSQL is a private server, because the test
// restarts it; the ledger lives there too.

// clusterSpec is localSpec with the ledger and without the approval gate: the
// 8s soak at 10% (step 4) is where each fault strikes.
const clusterSpec = `app: %[1]s
version: %[2]s
providers:
  environment:
    type: local
    settings:
      command: [%[3]q]
      instances: 2
      stateDir: %[4]q
      stopGrace: 5s
      router: {admin: "http://%[5]s", token: {env: CUTOVER_ROUTER_TOKEN}}
  traffic:
    type: local
    settings: {router: {admin: "http://%[5]s", token: {env: CUTOVER_ROUTER_TOKEN}}}
  analysis:
    type: local
    settings: {router: {admin: "http://%[5]s", token: {env: CUTOVER_ROUTER_TOKEN}}}
  ledger:
    type: postgres
    settings: {url: {env: CUTOVER_LEDGER_URL}}
plan:
  - provision
  - validate: {smoke: [/]}
  - setWeight: 10
  - soak: {duration: 8s, interval: 1s}
  - setWeight: 50
  - soak: {duration: 3s, interval: 1s}
  - promote
  - standby: {duration: 2s}
  - decommission
`

const (
	clusterSoak     = 8 * time.Second // the soak's duration in clusterSpec
	clusterSoakStep = 4
	clusterSteps    = 9
	// clusterLoadRate is the load on each app, in requests/s: enough to see
	// any request fail, little enough for two shared CPUs that also run two
	// server nodes, PostgreSQL and two workers.
	clusterLoadRate = 100
)

func TestTemporalClusterOnPostgres(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end")
	}
	began := time.Now()
	cli, worker := harness.CutoverBinaries(t)
	pg := harness.StartPostgres(t)
	tc := harness.StartTemporalCluster(t, harness.ClusterOptions{Nodes: 2, PostgresURL: pg.URL()})
	ledgerURL := harness.NewDatabase(t, pg.URL())

	// The workers and the CLI know the cluster by its front door only, as they
	// would know a load balancer in front of the frontends: a dead node's
	// connections break, and the next connection reaches a live node.
	env := append(tc.Env("pg-cluster"), "CUTOVER_LEDGER_URL="+ledgerURL)
	c := &cluster{t: t, server: &harness.DevServer{Address: tc.Address, CLI: tc.CLI}, cli: cli, env: env,
		workerBin: worker, workerEnv: []string{"CUTOVER_ROUTER_TOKEN=" + routerToken}}
	c.addWorker()
	c.addWorker()
	setup := time.Since(began)

	var timings []string
	note := func(format string, args ...any) {
		t.Helper()
		line := fmt.Sprintf(format, args...)
		t.Log(line)
		timings = append(timings, line)
	}

	// release runs one release of a new app under load, calls fault when the
	// release is in its 8s soak, and checks what a user would see: promoted,
	// every step in the ledger, no failed request, and the list queries.
	release := func(t *testing.T, app string, fault func(t *testing.T, soakStarted time.Time)) {
		c.t = t
		a := startLocalAppWith(t, c, app, appOptions{spec: func(a *localApp, demo, version string) string {
			return fmt.Sprintf(clusterSpec, a.name, version, demo, a.stateDir, a.adminAddr)
		}})
		stopLoad := a.loadAt(t, clusterLoadRate)
		start := time.Now()
		rel := harness.Start(t, "cutover release --wait", a.c.env, c.cli, "release", "-f", a.spec("2.0.0"), "--wait", "--by", "cluster-test")
		st := c.waitStatus(app, 2*time.Minute, func(st workflows.Status) bool { return st.Step == clusterSoakStep })
		soakStarted := time.Now()
		if s := stepRecord(st, clusterSoakStep); s != nil && !s.Started.IsZero() {
			soakStarted = s.Started
		}
		fault(t, soakStarted)
		if code := rel.Wait(t, 3*time.Minute); code != 0 {
			t.Fatalf("release --wait exited %d, want 0 (promoted)\n%s", code, rel.Output())
		}
		took := time.Since(start)
		sum := stopLoad()
		sum.requireNoFailures(t, clusterLoadRate*10)
		if sum.byVersion["1.0.0"] == 0 || sum.byVersion["2.0.0"] == 0 {
			t.Errorf("by version %v: want both versions to have served", sum.byVersion)
		}

		// Every step ran to done, once, and the ledger saw each start and end.
		st = c.waitStatus(app, 10*time.Second, func(st workflows.Status) bool { return st.Outcome == workflows.OutcomePromoted })
		for i := 1; i <= clusterSteps; i++ {
			if s := stepRecord(st, i); s == nil || s.State != "done" {
				t.Errorf("step %d: %+v, want done", i, s)
			}
		}
		rows := ledger(t, ledgerURL, app, "2.0.0")
		for i := 1; i <= clusterSteps; i++ {
			for _, state := range []string{"running", "done"} {
				if index(rows, "step", i, state) < 0 {
					t.Errorf("the ledger lacks step %d %s: %v", i, state, rows)
				}
			}
		}
		if len(rows) == 0 || rows[len(rows)-1].kind != "outcome" {
			t.Errorf("ledger %v: want the outcome last", rows)
		}

		// SQL visibility answers the custom search attributes, both through
		// Temporal's own list query and `cutover list`.
		c.waitListed(fmt.Sprintf(`CutoverApp=%q AND CutoverOutcome="promoted" AND CutoverTrafficPercent=100`, app), 1)
		out, errOut, code := c.cutover("list", "--app", app, "--outcome", "promoted", "--json")
		var list []json.RawMessage
		if code != 0 || json.Unmarshal([]byte(out), &list) != nil || len(list) != 1 || !strings.Contains(out, `"2.0.0"`) {
			t.Errorf("cutover list --app %s --outcome promoted: exit %d, %s %s; want the one release", app, code, out, errOut)
		}
		var steps []string
		for _, s := range st.Steps {
			steps = append(steps, fmt.Sprintf("%s %s", s.Kind, s.Duration(st.EndedAt).Round(100*time.Millisecond)))
		}
		note("%s: promoted in %s (%s); load %s", app, took.Round(100*time.Millisecond), strings.Join(steps, ", "), sum.line)
	}

	// nextStep waits for the step after the soak and returns when the
	// workflow started it; late is how much later than the soak's end.
	nextStep := func(app string, soakStarted time.Time) (at time.Time, late time.Duration) {
		st := c.waitStatus(app, time.Minute, func(st workflows.Status) bool { return st.Step > clusterSoakStep })
		at = time.Now()
		if s := stepRecord(st, clusterSoakStep+1); s != nil && !s.Started.IsZero() {
			at = s.Started
		}
		return at, at.Sub(soakStarted.Add(clusterSoak))
	}
	r := func(d time.Duration) time.Duration { return d.Round(100 * time.Millisecond) }

	t.Run("server SIGKILLed and restarted mid-soak", func(t *testing.T) {
		release(t, "pg-restart", func(t *testing.T, soakStarted time.Time) {
			time.Sleep(time.Until(soakStarted.Add(2 * time.Second)))
			killed := time.Now()
			for _, n := range tc.Nodes {
				n.Kill()
			}
			time.Sleep(2 * time.Second)
			tc.Nodes[0].Start(t)
			back := time.Now() // one node serves the whole cluster
			tc.Nodes[1].Start(t)
			next, late := nextStep("pg-restart", soakStarted)
			note("server: both nodes killed %s into the %s soak, restarted 2s later, the first SERVING %s after the kill; the next step started %s after that, %s after the soak's end",
				r(killed.Sub(soakStarted)), clusterSoak, r(back.Sub(killed)), r(next.Sub(back)), r(late))
		})
	})

	t.Run("one of two nodes SIGKILLed mid-release", func(t *testing.T) {
		release(t, "pg-node", func(t *testing.T, soakStarted time.Time) {
			time.Sleep(time.Until(soakStarted.Add(2 * time.Second)))
			killed := time.Now()
			tc.Nodes[0].Kill() // it stays down until the release has ended
			_, late := nextStep("pg-node", soakStarted)
			note("node: node 0 of 2 killed %s into the soak, left down; the next step started %s after the soak's end, on node 1",
				r(killed.Sub(soakStarted)), r(late))
		})
		tc.Nodes[0].Start(t)
	})

	t.Run("PostgreSQL restarted mid-release", func(t *testing.T) {
		release(t, "pg-db", func(t *testing.T, soakStarted time.Time) {
			time.Sleep(time.Until(soakStarted.Add(2 * time.Second)))
			stopped := time.Now()
			pg.Stop()
			time.Sleep(2 * time.Second)
			pg.Start()
			back := time.Now()
			_, late := nextStep("pg-db", soakStarted)
			note("postgres: stopped %s into the soak, started 2s later, accepting connections %s after the stop; the next step started %s after the soak's end",
				r(stopped.Sub(soakStarted)), r(back.Sub(stopped)), r(late))
		})
	})

	t.Run("both workers SIGKILLed and started again", func(t *testing.T) {
		release(t, "pg-workers", func(t *testing.T, soakStarted time.Time) {
			time.Sleep(time.Until(soakStarted.Add(2 * time.Second)))
			killed := time.Now()
			for _, w := range c.workers {
				w.Kill()
			}
			time.Sleep(2 * time.Second)
			c.addWorker()
			c.addWorker()
			_, late := nextStep("pg-workers", soakStarted)
			note("workers: both killed %s into the soak, two new ones started 2s later; the next step started %s after the soak's end",
				r(killed.Sub(soakStarted)), r(late))
		})
	})

	t.Logf("temporal cluster on PostgreSQL: setup %s, total %s\n  %s", setup.Round(100*time.Millisecond),
		time.Since(began).Round(100*time.Millisecond), strings.Join(timings, "\n  "))
}

func stepRecord(st workflows.Status, index int) *workflows.StepRecord {
	for i := range st.Steps {
		if st.Steps[i].Index == index {
			return &st.Steps[i]
		}
	}
	return nil
}
