package tests

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/cutoverhq/cutover/tests/harness"
	"github.com/cutoverhq/cutover/workflows"
)

// The migration tests release an app whose database is a real PostgreSQL: the
// machine's server (one database per scenario) or, where the test stops the
// server, a private one. Environment, traffic and analysis are the memory
// providers: what is under test is the database's part of the release and the
// ledger, which is a real PostgreSQL too.

const migrateSpec = `app: %[1]s
version: %[2]s
previousVersion: 1.0.0
providers:
  environment: {type: memory, settings: {delay: 100ms}}
  traffic: {type: memory}
  analysis: {type: memory, settings: {guard: %[3]s}}
  migrations:
    type: postgres
    settings: {url: {env: %[4]s}, dir: %[5]q, lockTimeout: 2s, statementTimeout: 1m}
  ledger:
    type: postgres
    settings: {url: {env: CUTOVER_LEDGER_URL}}
plan:
  - provision
  - migrate: {phase: expand, timeout: %[6]s}
  - validate
  - setWeight: 10
  - soak: {duration: 2s, interval: 1s}
  - promote
  - standby: {duration: 3s}
  - migrate: {phase: contract}
  - decommission
`

// Migrations of the shop app: 1.0.0 (blue) reads and writes orders(id, item,
// legacy_code); 2.0.0 adds a nullable note column and stops using
// legacy_code, which contract drops. applied_log counts each migration's runs.
var shopMigrations = map[string]string{
	"expand/001_orders.sql": `CREATE TABLE IF NOT EXISTS orders (id bigint PRIMARY KEY, item text NOT NULL, legacy_code text);
CREATE TABLE IF NOT EXISTS applied_log (name text NOT NULL, at timestamptz NOT NULL DEFAULT now());
INSERT INTO applied_log (name) VALUES ('001_orders');
`,
	"expand/002_note.sql": `-- 2.0.0 writes a note; blue never sees it.
ALTER TABLE orders ADD COLUMN note text;
INSERT INTO applied_log (name) VALUES ('002_note');
`,
	"contract/001_drop_legacy.sql": `ALTER TABLE orders DROP COLUMN legacy_code;
INSERT INTO applied_log (name) VALUES ('contract_001');
`,
}

// blueSQL is what version 1.0.0 runs: it must work before, during and after
// the expand migrations.
func blueSQL(ctx context.Context, db *pgx.Conn, id int) error {
	if _, err := db.Exec(ctx, `INSERT INTO orders (id, item, legacy_code) VALUES ($1, 'tea', 'L1')`, id); err != nil {
		return fmt.Errorf("blue's insert: %w", err)
	}
	var item string
	return db.QueryRow(ctx, `SELECT item FROM orders WHERE id = $1`, id).Scan(&item)
}

type dbApp struct {
	name, envVar, url, dir string
	pg                     *harness.PGServer // a private server, or nil
}

func writeMigrations(t *testing.T, files map[string]string) string {
	dir := t.TempDir()
	for name, body := range files {
		path := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func (a dbApp) spec(t *testing.T, version, guard, expandTimeout string) string {
	path := filepath.Join(t.TempDir(), "release.yaml")
	body := fmt.Sprintf(migrateSpec, a.name, version, guard, a.envVar, a.dir, expandTimeout)
	if err := os.WriteFile(path, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

func connect(t *testing.T, url string) *pgx.Conn {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	db, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatalf("connect: %v", err)
	}
	t.Cleanup(func() { db.Close(context.Background()) })
	return db
}

// appliedLog returns how many times each migration ran.
func appliedLog(t *testing.T, url string) map[string]int {
	db := connect(t, url)
	rows, err := db.Query(context.Background(), `SELECT name, count(*) FROM applied_log GROUP BY name`)
	if err != nil {
		t.Fatalf("read applied_log: %v", err)
	}
	out := map[string]int{}
	for rows.Next() {
		var n string
		var c int
		if err := rows.Scan(&n, &c); err != nil {
			t.Fatal(err)
		}
		out[n] = c
	}
	return out
}

func hasColumn(t *testing.T, db *pgx.Conn, table, column string) bool {
	var n int
	err := db.QueryRow(context.Background(),
		`SELECT count(*) FROM information_schema.columns WHERE table_name = $1 AND column_name = $2`, table, column).Scan(&n)
	if err != nil {
		t.Fatal(err)
	}
	return n == 1
}

// ledgerEvent is one row of the ledger as the tests read it.
type ledgerRow struct {
	seq, step   int
	kind, state string
	message     string
}

func (r ledgerRow) String() string { return fmt.Sprintf("%d %s %d %s", r.seq, r.kind, r.step, r.state) }

// ledger reads one release's events from the ledger's tables directly.
func ledger(t *testing.T, url, app, version string) []ledgerRow {
	db := connect(t, url)
	rows, err := db.Query(context.Background(), `
		SELECT e.seq, e.kind, coalesce(e.step, 0), coalesce(e.state, ''), coalesce(e.message, '')
		FROM cutover.events e JOIN cutover.releases r ON r.id = e.release_id
		WHERE r.app = $1 AND r.version = $2 ORDER BY e.seq`, app, version)
	if err != nil {
		t.Fatalf("read the ledger: %v", err)
	}
	var out []ledgerRow
	for rows.Next() {
		var r ledgerRow
		if err := rows.Scan(&r.seq, &r.kind, &r.step, &r.state, &r.message); err != nil {
			t.Fatal(err)
		}
		out = append(out, r)
	}
	return out
}

// index finds the first ledger row with the kind, step and state.
func index(rows []ledgerRow, kind string, step int, state string) int {
	for i, r := range rows {
		if r.kind == kind && r.step == step && r.state == state {
			return i
		}
	}
	return -1
}

func TestMigrationsAndLedger(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end")
	}
	ledgerURL := harness.PostgresDB(t)
	apps := map[string]*dbApp{}
	var env []string
	for i, name := range []string{"db-promote", "db-rollback", "db-unsafe", "db-edited", "db-pgdown", "db-killed"} {
		a := &dbApp{name: name, envVar: fmt.Sprintf("TEST_DB_%d", i)}
		if name == "db-pgdown" {
			// A private server this test may stop: the shared one stays up.
			a.pg = harness.StartPostgres(t)
			a.url = a.pg.URL()
		} else {
			a.url = harness.PostgresDB(t)
		}
		a.dir = writeMigrations(t, shopMigrations)
		apps[name] = a
		env = append(env, a.envVar+"="+a.url)
	}
	c := startClusterWith(t, 1, append(env, "CUTOVER_LEDGER_URL="+ledgerURL)...)
	c.env = append(c.env, "CUTOVER_LEDGER_URL="+ledgerURL)

	t.Run("expand before traffic, contract after standby, blue working throughout", func(t *testing.T) {
		c.t = t
		a := apps["db-promote"]
		// Blue's table exists before the release, made by hand before Cutover
		// (001 creates it only IF NOT EXISTS).
		blue := connect(t, a.url)
		if _, err := blue.Exec(context.Background(), `CREATE TABLE orders (id bigint PRIMARY KEY, item text NOT NULL, legacy_code text)`); err != nil {
			t.Fatal(err)
		}
		// Blue keeps writing and reading all along, on its own connection.
		ctx, stopBlue := context.WithCancel(context.Background())
		var blueErr error
		var blueOps int
		var wg sync.WaitGroup
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 1; ctx.Err() == nil; i++ {
				if err := blueSQL(ctx, blue, i); err != nil && ctx.Err() == nil {
					blueErr = err
					return
				}
				blueOps++
				time.Sleep(20 * time.Millisecond)
			}
		}()

		rel := harness.Start(t, "release", c.env, c.cli, "release", "-f", a.spec(t, "2.0.0", "Pass", "1m"), "--wait")
		// During the standby window blue could still take all traffic back:
		// contract has not run, legacy_code is still there, blue still works.
		c.waitStatus(a.name, time.Minute, func(st workflows.Status) bool { return st.Stage == "standby" })
		probe := connect(t, a.url)
		if !hasColumn(t, probe, "orders", "note") || !hasColumn(t, probe, "orders", "legacy_code") {
			t.Errorf("during standby: want note added and legacy_code kept")
		}
		time.Sleep(500 * time.Millisecond)
		// Once the standby window closes nothing can return to blue: it stops.
		stopBlue()
		wg.Wait()
		if blueErr != nil || blueOps < 20 {
			t.Errorf("blue's queries from before expand to the end of standby: %d ok, error %v; want all ok", blueOps, blueErr)
		}
		if code := rel.Wait(t, time.Minute); code != 0 {
			t.Fatalf("release exited %d, want 0\n%s", code, rel.Output())
		}
		if hasColumn(t, probe, "orders", "legacy_code") {
			t.Errorf("after the release: legacy_code is still there; contract did not run")
		}
		if got := appliedLog(t, a.url); got["001_orders"] != 1 || got["002_note"] != 1 || got["contract_001"] != 1 {
			t.Errorf("applied_log %v, want each migration once (001 by blue's release)", got)
		}

		// The ledger has the order of things: expand done before the first
		// weight change; contract started only after the standby ended.
		rows := ledger(t, ledgerURL, a.name, "2.0.0")
		expandDone, weightRunning := index(rows, "step", 2, "done"), index(rows, "step", 4, "running")
		standbyDone, contractRunning := index(rows, "step", 7, "done"), index(rows, "step", 8, "running")
		if expandDone < 0 || weightRunning < 0 || expandDone > weightRunning {
			t.Errorf("ledger %v: want expand (step 2) done before setWeight (step 4) starts", rows)
		}
		if standbyDone < 0 || contractRunning < 0 || standbyDone > contractRunning {
			t.Errorf("ledger %v: want standby (step 7) done before contract (step 8) starts", rows)
		}
		if !strings.Contains(rows[expandDone].message, "002_note") {
			t.Errorf("expand's ledger entry %q, want what it applied", rows[expandDone].message)
		}
		for i, r := range rows {
			if r.seq != i+1 {
				t.Fatalf("ledger seqs are not 1..n: %v", rows)
			}
		}
		if last := rows[len(rows)-1]; last.kind != "outcome" {
			t.Errorf("last ledger event %v, want the outcome", last)
		}

		// cutover history reads the ledger, not Temporal.
		out, errOut, code := c.cutover("history", a.name)
		if code != 0 || !strings.Contains(out, "2.0.0") || !strings.Contains(out, "promoted") {
			t.Errorf("cutover history: exit %d\n%s%s", code, out, errOut)
		}
		out, errOut, code = c.cutover("history", a.name, "2.0.0")
		if code != 0 || !strings.Contains(out, "002_note") || !strings.Contains(out, "promoted") {
			t.Errorf("cutover history %s 2.0.0: exit %d\n%s%s", a.name, code, out, errOut)
		}
	})

	t.Run("a rollback keeps expand and never runs contract", func(t *testing.T) {
		c.t = t
		a := apps["db-rollback"]
		rel := harness.Start(t, "release", c.env, c.cli, "release", "-f", a.spec(t, "2.0.0", "Fail", "1m"), "--wait")
		if code := rel.Wait(t, time.Minute); code != 3 {
			t.Fatalf("release exited %d, want 3 (rolled back)\n%s", code, rel.Output())
		}
		db := connect(t, a.url)
		if !hasColumn(t, db, "orders", "note") || !hasColumn(t, db, "orders", "legacy_code") {
			t.Errorf("after the rollback: want expand kept (note) and contract not run (legacy_code)")
		}
		if err := blueSQL(context.Background(), db, 1); err != nil {
			t.Errorf("blue after the rollback: %v", err)
		}
		if got := appliedLog(t, a.url); got["contract_001"] != 0 || got["002_note"] != 1 {
			t.Errorf("applied_log %v, want expand once and no contract", got)
		}
	})

	t.Run("an unsafe expand migration is refused with file, line and reason", func(t *testing.T) {
		c.t = t
		a := apps["db-unsafe"]
		a.dir = writeMigrations(t, map[string]string{
			"expand/001_orders.sql": shopMigrations["expand/001_orders.sql"],
			"expand/002_bad.sql":    "-- tidy up\nALTER TABLE orders ADD COLUMN note text;\n\nALTER TABLE orders DROP COLUMN legacy_code;\n",
		})
		rel := harness.Start(t, "release", c.env, c.cli, "release", "-f", a.spec(t, "2.0.0", "Pass", "1m"), "--wait")
		if code := rel.Wait(t, time.Minute); code != 3 {
			t.Fatalf("release exited %d, want 3 (rolled back)\n%s", code, rel.Output())
		}
		st := c.waitStatus(a.name, 10*time.Second, func(workflows.Status) bool { return true })
		if !strings.Contains(st.Reason, "expand/002_bad.sql:4") || !strings.Contains(st.Reason, "drop-column") || st.Weights.Green != 0 {
			t.Errorf("reason %q, traffic %s; want expand/002_bad.sql:4 drop-column, all traffic on blue", st.Reason, st.Weights)
		}
		// Nothing ran: the check comes before any SQL.
		db := connect(t, a.url)
		var n int
		if err := db.QueryRow(context.Background(), `SELECT count(*) FROM information_schema.tables WHERE table_name = 'orders'`).Scan(&n); err != nil || n != 0 {
			t.Errorf("orders exists (%d, %v): the unsafe phase ran partly", n, err)
		}
	})

	t.Run("an edited applied migration is refused", func(t *testing.T) {
		c.t = t
		a := apps["db-edited"]
		rel := harness.Start(t, "release", c.env, c.cli, "release", "-f", a.spec(t, "2.0.0", "Fail", "1m"), "--wait")
		if code := rel.Wait(t, time.Minute); code != 3 {
			t.Fatalf("first release exited %d, want 3 (rolled back by the guard)\n%s", code, rel.Output())
		}
		// Someone edits 002 after it was applied, and adds 003.
		if err := os.WriteFile(filepath.Join(a.dir, "expand/002_note.sql"), []byte("ALTER TABLE orders ADD COLUMN note varchar(200);\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(a.dir, "expand/003_more.sql"), []byte("INSERT INTO applied_log (name) VALUES ('003_more');\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		rel = harness.Start(t, "release", c.env, c.cli, "release", "-f", a.spec(t, "2.0.1", "Pass", "1m"), "--wait")
		if code := rel.Wait(t, time.Minute); code != 3 {
			t.Fatalf("second release exited %d, want 3\n%s", code, rel.Output())
		}
		st := c.waitStatus(a.name, 10*time.Second, func(workflows.Status) bool { return true })
		if !strings.Contains(st.Reason, "expand/002_note.sql") || !strings.Contains(st.Reason, "checksum") {
			t.Errorf("reason %q, want the edited file named with its checksum", st.Reason)
		}
		if got := appliedLog(t, a.url); got["003_more"] != 0 {
			t.Errorf("applied_log %v: 003 ran although an applied migration had changed", got)
		}
	})

	t.Run("PostgreSQL down during migrate fails safely with traffic on blue", func(t *testing.T) {
		c.t = t
		a := apps["db-pgdown"]
		a.dir = writeMigrations(t, map[string]string{
			"expand/001_orders.sql": shopMigrations["expand/001_orders.sql"],
			"expand/002_slow.sql":   "SELECT pg_sleep(5);\nINSERT INTO applied_log (name) VALUES ('002_slow');\n",
		})
		// Stop the private server in the middle of the expand step's 002.
		rel := harness.Start(t, "release", c.env, c.cli, "release", "-f", a.spec(t, "2.0.0", "Pass", "8s"), "--wait")
		c.waitStatus(a.name, time.Minute, func(st workflows.Status) bool { return st.Step == 2 })
		waitForSQL(t, a.url, `SELECT count(*) FROM pg_stat_activity WHERE query LIKE '%pg_sleep(5)%' AND pid <> pg_backend_pid()`)
		a.pg.Stop()
		if code := rel.Wait(t, time.Minute); code != 3 {
			t.Fatalf("release exited %d, want 3 (rolled back)\n%s", code, rel.Output())
		}
		st := c.waitStatus(a.name, 10*time.Second, func(workflows.Status) bool { return true })
		if st.Weights.Green != 0 || !strings.Contains(st.Reason, "migrate (expand)") {
			t.Errorf("traffic %s, reason %q; want all on blue and the migrate step named", st.Weights, st.Reason)
		}
	})

	t.Run("a worker killed during a long migration: applied exactly once", func(t *testing.T) {
		c.t = t
		a := apps["db-killed"]
		a.dir = writeMigrations(t, map[string]string{
			"expand/001_orders.sql": shopMigrations["expand/001_orders.sql"],
			"expand/002_slow.sql":   "INSERT INTO applied_log (name) VALUES ('002_slow');\nSELECT pg_sleep(4);\n",
		})
		rel := harness.Start(t, "release", c.env, c.cli, "release", "-f", a.spec(t, "2.0.0", "Pass", "2m"), "--wait")
		// One worker runs the migration; a second one joins, and the first dies
		// in the middle of 002's transaction.
		c.waitStatus(a.name, time.Minute, func(st workflows.Status) bool { return st.Step == 2 })
		waitForSQL(t, a.url, `SELECT count(*) FROM pg_stat_activity WHERE query LIKE '%pg_sleep(4)%' AND pid <> pg_backend_pid()`)
		c.addWorker()
		c.workers[0].Kill()
		if code := rel.Wait(t, 2*time.Minute); code != 0 {
			t.Fatalf("release exited %d, want 0\n%s", code, rel.Output())
		}
		if got := appliedLog(t, a.url); got["001_orders"] != 1 || got["002_slow"] != 1 {
			t.Errorf("applied_log %v, want each migration exactly once", got)
		}
		// The ledger has each event once although activities were retried.
		rows := ledger(t, ledgerURL, a.name, "2.0.0")
		seen := map[string]int{}
		for i, r := range rows {
			if r.seq != i+1 {
				t.Fatalf("ledger seqs are not 1..n: %v", rows)
			}
			if r.kind == "step" {
				seen[r.String()[len(fmt.Sprint(r.seq))+1:]]++
			}
		}
		for k, n := range seen {
			if n != 1 {
				t.Errorf("ledger has %q %d times", k, n)
			}
		}
		if seen["step 2 running"] != 1 || seen["step 2 done"] != 1 {
			t.Errorf("ledger steps %v, want step 2 running and done once each", seen)
		}
	})
}

// waitForSQL waits until the query's count is above 0.
func waitForSQL(t *testing.T, url, query string) {
	db := connect(t, url)
	waitFor(t, 30*time.Second, query, func() bool {
		var n int
		return db.QueryRow(context.Background(), query).Scan(&n) == nil && n > 0
	})
}
