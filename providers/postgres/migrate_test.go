package postgres

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/cutoverhq/cutover/providers"
	"github.com/cutoverhq/cutover/tests/harness"
)

// fixture is a test database and a migrations directory.
type fixture struct {
	t   *testing.T
	url string
	dir string
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	return &fixture{t: t, url: harness.PostgresDB(t), dir: t.TempDir()}
}

// write adds (or replaces) a migration file.
func (f *fixture) write(phase, name, sql string) {
	f.t.Helper()
	writeMigration(f.t, f.dir, phase, name, sql)
}

func writeMigration(t *testing.T, dir, phase, name, sql string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Join(dir, phase), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, phase, name), []byte(sql), 0o644); err != nil {
		t.Fatal(err)
	}
}

// provider returns a provider of the fixture's database and dir.
func (f *fixture) provider(extra map[string]any) *Provider {
	f.t.Helper()
	return newTestProvider(f.t, f.url, f.dir, extra)
}

func newTestProvider(t *testing.T, url, dir string, extra map[string]any) *Provider {
	t.Helper()
	secret := filepath.Join(t.TempDir(), "database-url")
	if err := os.WriteFile(secret, []byte(url), 0o600); err != nil {
		t.Fatal(err)
	}
	s := map[string]any{"url": map[string]any{"file": secret}, "dir": dir}
	for k, v := range extra {
		s[k] = v
	}
	p, err := New(s)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func (f *fixture) conn() *pgx.Conn {
	f.t.Helper()
	return connect(f.t, f.url)
}

func connect(t *testing.T, url string) *pgx.Conn {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close(context.Background()) })
	return c
}

func (f *fixture) migrate(p *Provider, app, phase string) (providers.MigrationReport, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	return p.Migrate(ctx, providers.Ref{App: app, Version: "1.0"}, phase)
}

func (f *fixture) mustMigrate(p *Provider, app, phase string) providers.MigrationReport {
	f.t.Helper()
	rep, err := f.migrate(p, app, phase)
	if err != nil {
		f.t.Fatalf("migrate %s: %v", phase, err)
	}
	return rep
}

func (f *fixture) version(app, phase string) int {
	f.t.Helper()
	var v int
	if err := f.conn().QueryRow(context.Background(), "select version from "+versionTable(app, phase)).Scan(&v); err != nil {
		f.t.Fatal(err)
	}
	return v
}

func (f *fixture) exec(sql string, args ...any) {
	f.t.Helper()
	if _, err := f.conn().Exec(context.Background(), sql, args...); err != nil {
		f.t.Fatalf("%s: %v", sql, err)
	}
}

func (f *fixture) strings(sql string, args ...any) []string {
	f.t.Helper()
	rows, err := f.conn().Query(context.Background(), sql, args...)
	if err != nil {
		f.t.Fatalf("%s: %v", sql, err)
	}
	out, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		f.t.Fatalf("%s: %v", sql, err)
	}
	return out
}

func permanent(err error) bool {
	for _, k := range []error{providers.ErrBadConfig, providers.ErrNotFound, providers.ErrInvalid, providers.ErrCheckFailed} {
		if errors.Is(err, k) {
			return true
		}
	}
	return false
}

func eq(t *testing.T, what string, got, want []string) {
	t.Helper()
	if !slices.Equal(got, want) {
		t.Errorf("%s = %q, want %q", what, got, want)
	}
}

func TestExpandAndContract(t *testing.T) {
	f := newFixture(t)
	p := f.provider(nil)

	// Release 1.0: the table blue uses.
	f.write("expand", "001_create_users.sql", "CREATE TABLE users (id bigint PRIMARY KEY, name text NOT NULL, legacy_flag boolean);\n")
	rep := f.mustMigrate(p, "shop-api", "expand")
	eq(t, "applied", rep.Applied, []string{"001_create_users.sql"})
	blue := func() {
		t.Helper()
		c := f.conn()
		ctx := context.Background()
		if _, err := c.Exec(ctx, "INSERT INTO users (id, name, legacy_flag) VALUES ((SELECT coalesce(max(id), 0) + 1 FROM users), 'ann', false)"); err != nil {
			t.Fatalf("blue's INSERT: %v", err)
		}
		var n int
		if err := c.QueryRow(ctx, "SELECT count(*) FROM (SELECT id, name, legacy_flag FROM users WHERE name = 'ann') s").Scan(&n); err != nil || n == 0 {
			t.Fatalf("blue's SELECT: %d, %v", n, err)
		}
	}
	blue()

	// Release 1.1 expands: new column, index built concurrently, a
	// constraint added NOT VALID then validated, a new table.
	f.write("expand", "002_add_email.sql", "-- green writes it, blue does not know it\nALTER TABLE users ADD COLUMN email text;\n")
	f.write("expand", "003_index_email.sql", "---- tern: disable-tx ----\nCREATE INDEX CONCURRENTLY IF NOT EXISTS users_email ON users (email);\n")
	f.write("expand", "004_check_email.sql", "ALTER TABLE users ADD CONSTRAINT email_has_at CHECK (email LIKE '%@%') NOT VALID;\n")
	f.write("expand", "005_validate.sql", "ALTER TABLE users VALIDATE CONSTRAINT email_has_at;\nCREATE TABLE orders (id bigint PRIMARY KEY, user_id bigint NOT NULL);\nCREATE INDEX orders_user ON orders (user_id);\n")
	rep = f.mustMigrate(p, "shop-api", "expand")
	eq(t, "applied", rep.Applied, []string{"002_add_email.sql", "003_index_email.sql", "004_check_email.sql", "005_validate.sql"})
	eq(t, "already", rep.Already, []string{"001_create_users.sql"})
	if f.version("shop-api", "expand") != 5 {
		t.Errorf("version %d, want 5", f.version("shop-api", "expand"))
	}
	blue()
	if got := f.strings("select indexname::text from pg_indexes where tablename = 'users' and indexname = 'users_email'"); len(got) != 1 {
		t.Errorf("index users_email: %q", got)
	}
	if got := f.strings("select convalidated::text from pg_constraint where conname = 'email_has_at'"); !slices.Equal(got, []string{"true"}) {
		t.Errorf("constraint validated: %q", got)
	}
	sums := f.strings("select seq || ' ' || name || ' ' || sha256 from cutover.migrations where app = 'shop-api' and phase = 'expand' order by seq")
	if len(sums) != 5 || !strings.HasPrefix(sums[2], "3 003_index_email.sql ") || len(strings.Fields(sums[2])[2]) != 64 {
		t.Errorf("checksums: %q", sums)
	}

	// Again: nothing to do.
	rep = f.mustMigrate(p, "shop-api", "expand")
	if len(rep.Applied) != 0 || len(rep.Already) != 5 {
		t.Errorf("rerun: %+v", rep)
	}

	// Contract may drop what blue needed.
	f.write("contract", "001_drop_legacy.sql", "ALTER TABLE users DROP COLUMN legacy_flag;\nDROP INDEX users_email;\n")
	rep = f.mustMigrate(p, "shop-api", "contract")
	eq(t, "contract applied", rep.Applied, []string{"001_drop_legacy.sql"})
	if f.version("shop-api", "contract") != 1 || f.version("shop-api", "expand") != 5 {
		t.Errorf("versions: expand %d contract %d", f.version("shop-api", "expand"), f.version("shop-api", "contract"))
	}
	// Another app of the same database has its own versions.
	other := t.TempDir()
	writeMigration(t, other, "expand", "001_create_invoices.sql", "CREATE TABLE invoices (id bigint);\n")
	rep = f.mustMigrate(newTestProvider(t, f.url, other, nil), "billing", "expand")
	eq(t, "another app applies its own", rep.Applied, []string{"001_create_invoices.sql"})
	if f.version("billing", "expand") != 1 || f.version("shop-api", "expand") != 5 {
		t.Errorf("versions: billing %d shop-api %d", f.version("billing", "expand"), f.version("shop-api", "expand"))
	}
}

func TestEditedMigrationRefused(t *testing.T) {
	f := newFixture(t)
	p := f.provider(nil)
	f.write("expand", "001_add_col.sql", "CREATE TABLE t (a int);\n")
	f.write("expand", "002_more.sql", "ALTER TABLE t ADD COLUMN b int;\n")
	f.mustMigrate(p, "app", "expand")

	f.write("expand", "001_add_col.sql", "CREATE TABLE t (a int, c int);\n")
	f.write("expand", "003_new.sql", "CREATE TABLE u (a int);\n")
	_, err := f.migrate(p, "app", "expand")
	if err == nil || !errors.Is(err, providers.ErrCheckFailed) {
		t.Fatalf("got %v, want CheckFailed", err)
	}
	want := "expand/001_add_col.sql was applied on "
	if !strings.HasPrefix(err.Error(), want) || !strings.Contains(err.Error(), ", the file now has ") ||
		!strings.HasSuffix(err.Error(), "applied migrations must not change: add a new migration instead") || strings.Contains(err.Error(), "\n") {
		t.Errorf("message: %q", err)
	}
	if got := f.strings("select coalesce(to_regclass('u')::text, '')"); got[0] != "" {
		t.Errorf("003 ran although 001 was refused")
	}
	if f.version("app", "expand") != 2 {
		t.Errorf("version moved")
	}

	// Renaming an applied file is a change too; several problems are
	// reported together.
	f.write("expand", "001_add_col.sql", "CREATE TABLE t (a int);\n")
	if err := os.Rename(filepath.Join(f.dir, "expand", "002_more.sql"), filepath.Join(f.dir, "expand", "002_renamed.sql")); err != nil {
		t.Fatal(err)
	}
	_, err = f.migrate(p, "app", "expand")
	if err == nil || !errors.Is(err, providers.ErrCheckFailed) || !strings.Contains(err.Error(), "expand/002_more.sql was applied on ") || !strings.Contains(err.Error(), "002_renamed.sql is number 2 now") {
		t.Errorf("renamed: %v", err)
	}

	// Back as they were: 003 runs.
	if err := os.Rename(filepath.Join(f.dir, "expand", "002_renamed.sql"), filepath.Join(f.dir, "expand", "002_more.sql")); err != nil {
		t.Fatal(err)
	}
	rep := f.mustMigrate(p, "app", "expand")
	eq(t, "applied", rep.Applied, []string{"003_new.sql"})
}

func TestUnsafeExpandRefused(t *testing.T) {
	f := newFixture(t)
	f.write("expand", "001_create.sql", "CREATE TABLE users (id int, legacy_flag boolean, name text);\n")
	f.mustMigrate(f.provider(nil), "app", "expand")

	f.write("expand", "002_x.sql", "ALTER TABLE users ADD COLUMN email text;\n\n/* the flag\n   is gone */\n-- really\n\nALTER TABLE users DROP COLUMN legacy_flag;\n")
	f.write("expand", "003_y.sql", "CREATE INDEX users_name ON users (name);\nALTER TABLE users RENAME COLUMN name TO full_name;\n")
	_, err := f.migrate(f.provider(nil), "app", "expand")
	if err == nil || !errors.Is(err, providers.ErrCheckFailed) {
		t.Fatalf("got %v, want CheckFailed", err)
	}
	lines := strings.Split(err.Error(), "\n")
	want := []string{
		"expand/002_x.sql:7: drop-column: DROP COLUMN breaks blue, which still reads legacy_flag; move it to contract/",
		"expand/003_y.sql:1: index-not-concurrent: ",
		"expand/003_y.sql:2: rename: ",
	}
	if len(lines) != 4 {
		t.Fatalf("got %q, want a header and 3 findings", err)
	}
	for i, w := range want {
		if !strings.HasPrefix(lines[i+1], w) {
			t.Errorf("line %d: %q, want it to start with %q", i+1, lines[i+1], w)
		}
	}
	if f.version("app", "expand") != 1 {
		t.Errorf("something ran")
	}

	// A waiver for each lets them through, and they are reported.
	p := f.provider(map[string]any{"waive": []any{
		map[string]any{"file": "002_x.sql", "check": "drop-column", "reason": "legacy_flag unused since 1.2"},
		map[string]any{"file": "003_y.sql", "check": "index-not-concurrent", "reason": "users has 10 rows"},
	}})
	_, err = f.migrate(p, "app", "expand")
	if err == nil || !strings.Contains(err.Error(), "1 statement(s)") || !strings.Contains(err.Error(), "expand/003_y.sql:2: rename: ") {
		t.Fatalf("one left: %v", err)
	}
	p = f.provider(map[string]any{"waive": []any{
		map[string]any{"file": "002_x.sql", "check": "drop-column", "reason": "legacy_flag unused since 1.2"},
		map[string]any{"file": "003_y.sql", "check": "index-not-concurrent", "reason": "users has 10 rows"},
		map[string]any{"file": "003_y.sql", "check": "rename", "reason": "blue reads full_name through a view"},
	}})
	rep := f.mustMigrate(p, "app", "expand")
	eq(t, "applied", rep.Applied, []string{"002_x.sql", "003_y.sql"})
	eq(t, "waived", rep.Waived, []string{
		"002_x.sql: drop-column (legacy_flag unused since 1.2)",
		"003_y.sql: index-not-concurrent (users has 10 rows)",
		"003_y.sql: rename (blue reads full_name through a view)",
	})
	// Applied migrations are not checked again: the waivers are not needed
	// any more.
	rep = f.mustMigrate(f.provider(nil), "app", "expand")
	if len(rep.Waived) != 0 || len(rep.Already) != 3 {
		t.Errorf("rerun: %+v", rep)
	}
}

// Two releases of one app racing, each from its own provider: the lock
// serializes them, each migration runs once, and neither fails.
func TestConcurrentReleasesSerialized(t *testing.T) {
	url := harness.PostgresDB(t)
	f := &fixture{t: t, url: url}
	f.exec("CREATE TABLE ran (name text)")
	v1, v2 := t.TempDir(), t.TempDir()
	for _, dir := range []string{v1, v2} {
		writeMigration(t, dir, "expand", "001_a.sql", "SELECT pg_sleep(0.3);\nINSERT INTO ran VALUES ('001');\n")
		writeMigration(t, dir, "expand", "002_b.sql", "SELECT pg_sleep(0.3);\nINSERT INTO ran VALUES ('002');\n")
	}
	writeMigration(t, v2, "expand", "003_c.sql", "SELECT pg_sleep(0.3);\nINSERT INTO ran VALUES ('003');\n")

	var wg sync.WaitGroup
	reps := make([]providers.MigrationReport, 4)
	errs := make([]error, 4)
	start := make(chan struct{})
	for i, dir := range []string{v1, v2, v1, v2} {
		p := newTestProvider(t, url, dir, map[string]any{"lockTimeout": "200ms"})
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
			defer cancel()
			reps[i], errs[i] = p.Migrate(ctx, providers.Ref{App: "shop-api", Version: fmt.Sprintf("1.%d", i)}, "expand")
		}()
	}
	close(start)
	wg.Wait()
	var applied []string
	for i := range reps {
		if errs[i] != nil {
			t.Errorf("release %d: %v", i, errs[i])
		}
		applied = append(applied, reps[i].Applied...)
	}
	slices.Sort(applied)
	eq(t, "applied by all", applied, []string{"001_a.sql", "002_b.sql", "003_c.sql"})
	eq(t, "ran", f.strings("SELECT name FROM ran ORDER BY name"), []string{"001", "002", "003"})
}

// lock_timeout applies to each migration, also after tern's `reset all`
// following one that changed the session's settings.
func TestLockTimeout(t *testing.T) {
	f := newFixture(t)
	p := f.provider(map[string]any{"lockTimeout": "1s"})
	f.write("expand", "001_t.sql", "CREATE TABLE t (a int);\n")
	f.mustMigrate(p, "app", "expand")

	f.write("expand", "002_settings.sql", "SET lock_timeout = 0;\nSET statement_timeout = 0;\nCREATE TABLE u (a int);\n")
	f.write("expand", "003_alter.sql", "ALTER TABLE t ADD COLUMN b int;\n")

	// Production holds a lock on t.
	holder := f.conn()
	ctx := context.Background()
	tx, err := holder.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tx.Exec(ctx, "LOCK TABLE t IN ACCESS SHARE MODE"); err != nil {
		t.Fatal(err)
	}
	began := time.Now()
	rep, err := f.migrate(p, "app", "expand")
	took := time.Since(began)
	if err == nil || permanent(err) || errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("got %v, want a retryable error", err)
	}
	if !strings.HasPrefix(err.Error(), "apply expand/003_alter.sql: ") || !strings.Contains(err.Error(), "55P03") {
		t.Errorf("message: %v", err)
	}
	if took > 4*time.Second {
		t.Errorf("took %s with lockTimeout 1s", took)
	}
	eq(t, "applied before the lock wait", rep.Applied, []string{"002_settings.sql"})
	if err := tx.Rollback(ctx); err != nil {
		t.Fatal(err)
	}

	rep = f.mustMigrate(p, "app", "expand")
	eq(t, "applied after the lock is gone", rep.Applied, []string{"003_alter.sql"})
}

// PostgreSQL down: a retryable error, quickly; back up: the next call works.
func TestPostgresDown(t *testing.T) {
	srv := harness.StartPostgres(t)
	dir := t.TempDir()
	p := newTestProvider(t, srv.URL(), dir, nil)
	writeMigration(t, dir, "expand", "001_t.sql", "CREATE TABLE t (a int);\n")
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	ref := providers.Ref{App: "app", Version: "1"}
	if _, err := p.Migrate(ctx, ref, "expand"); err != nil {
		t.Fatal(err)
	}

	srv.Stop()
	writeMigration(t, dir, "expand", "002_u.sql", "CREATE TABLE u (a int);\n")
	began := time.Now()
	_, err := p.Migrate(ctx, ref, "expand")
	if err == nil || permanent(err) || ctx.Err() != nil {
		t.Fatalf("server down: got %v, want a retryable error", err)
	}
	if time.Since(began) > 3*time.Second {
		t.Errorf("took %s", time.Since(began))
	}
	if !strings.HasPrefix(err.Error(), "connect to PostgreSQL: ") {
		t.Errorf("message: %v", err)
	}

	srv.Start()
	rep, err := p.Migrate(ctx, ref, "expand")
	if err != nil {
		t.Fatal(err)
	}
	eq(t, "applied after the restart", rep.Applied, []string{"002_u.sql"})
}

// ctx cancelled during a migration: Migrate returns at once with ctx.Err(),
// nothing of the migration is recorded, and a rerun applies it once.
func TestCancelDuringMigration(t *testing.T) {
	f := newFixture(t)
	p := f.provider(nil)
	f.write("expand", "001_t.sql", "CREATE TABLE ran (name text);\n")
	f.mustMigrate(p, "app", "expand")
	f.write("expand", "002_slow.sql", "INSERT INTO ran VALUES ('002');\nSELECT pg_sleep(1.5);\n")

	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(300*time.Millisecond, cancel)
	began := time.Now()
	rep, err := p.Migrate(ctx, providers.Ref{App: "app"}, "expand")
	if err != context.Canceled {
		t.Fatalf("got %v, want context.Canceled", err)
	}
	if took := time.Since(began); took > time.Second {
		t.Errorf("returned after %s", took)
	}
	if len(rep.Applied) != 0 {
		t.Errorf("applied %q", rep.Applied)
	}
	if got := f.strings("SELECT name FROM ran"); len(got) != 0 {
		t.Errorf("the cancelled migration left %q", got)
	}
	if got := f.strings("SELECT name FROM cutover.migrations WHERE app = 'app'"); !slices.Equal(got, []string{"001_t.sql"}) {
		t.Errorf("checksums recorded: %q", got)
	}

	rep = f.mustMigrate(p, "app", "expand")
	eq(t, "rerun", rep.Applied, []string{"002_slow.sql"})
	eq(t, "ran", f.strings("SELECT name FROM ran"), []string{"002"})
}

func TestStatementTimeoutRetryable(t *testing.T) {
	f := newFixture(t)
	p := f.provider(map[string]any{"statementTimeout": "200ms"})
	f.write("contract", "001_slow.sql", "SELECT 1;\nSELECT pg_sleep(2);\n")
	_, err := f.migrate(p, "app", "contract")
	if err == nil || permanent(err) || !strings.HasPrefix(err.Error(), "apply contract/001_slow.sql: ") || !strings.Contains(err.Error(), "57014") {
		t.Errorf("got %v, want a retryable statement timeout naming the file", err)
	}
}

// SQL errors of a migration are permanent, with the file and the line.
func TestSQLErrorsPermanent(t *testing.T) {
	f := newFixture(t)
	p := f.provider(nil)
	// Contract files are not parsed before they run: the server finds it.
	f.write("contract", "001_bad.sql", "SELECT 1;\n\nSELECT nope FROM\n  pg_class;\n")
	_, err := f.migrate(p, "app", "contract")
	if err == nil || !errors.Is(err, providers.ErrInvalid) || !strings.HasPrefix(err.Error(), "contract/001_bad.sql:3: column \"nope\" does not exist") {
		t.Errorf("got %v", err)
	}

	// In a disable-tx migration, the failing statement's own line.
	f.write("contract", "001_bad.sql", "---- tern: disable-tx ----\nCREATE TABLE a (x int);\n\n-- this one\nCREATE TABLE a (x int);\n")
	_, err = f.migrate(p, "app", "contract")
	if err == nil || !errors.Is(err, providers.ErrInvalid) || !strings.HasPrefix(err.Error(), "contract/001_bad.sql:5: relation \"a\" already exists (SQLSTATE 42P07)") {
		t.Errorf("got %v", err)
	}

	// CREATE INDEX CONCURRENTLY in a transaction: the message says what to do.
	f.exec("DROP TABLE a")
	f.write("contract", "001_bad.sql", "CREATE INDEX CONCURRENTLY i ON pg_class (relname);\n")
	_, err = f.migrate(p, "app", "contract")
	if err == nil || !errors.Is(err, providers.ErrInvalid) || !strings.Contains(err.Error(), "---- tern: disable-tx ----") {
		t.Errorf("got %v", err)
	}
	if f.version("app", "contract") != 0 {
		t.Errorf("a failed migration was recorded")
	}
}

func TestTemplatesNotEvaluated(t *testing.T) {
	f := newFixture(t)
	f.write("contract", "001_braces.sql", "CREATE TABLE t (s text);\nINSERT INTO t VALUES ('{{ .Data }} {{template \"x\"}}');\n")
	f.mustMigrate(f.provider(nil), "app", "contract")
	eq(t, "row", f.strings("SELECT s FROM t"), []string{`{{ .Data }} {{template "x"}}`})
}

// A release older than the database's migrations (a newer release applied
// more) finds its own applied and runs nothing.
func TestNewerReleaseApplied(t *testing.T) {
	f := newFixture(t)
	f.write("expand", "001_a.sql", "CREATE TABLE a (x int);\n")
	f.write("expand", "002_b.sql", "CREATE TABLE b (x int);\n")
	f.mustMigrate(f.provider(nil), "app", "expand")
	if err := os.Remove(filepath.Join(f.dir, "expand", "002_b.sql")); err != nil {
		t.Fatal(err)
	}
	rep := f.mustMigrate(f.provider(nil), "app", "expand")
	if len(rep.Applied) != 0 || !slices.Equal(rep.Already, []string{"001_a.sql"}) {
		t.Errorf("older release: %+v", rep)
	}
	// Numbering a new file over the applied one is refused.
	f.write("expand", "002_c.sql", "CREATE TABLE c (x int);\n")
	if _, err := f.migrate(f.provider(nil), "app", "expand"); err == nil || !errors.Is(err, providers.ErrCheckFailed) {
		t.Errorf("renumbered: %v", err)
	}
}

// A worker that dies mid-statement (killed: its socket closes without a
// goodbye or a cancel request) holds the migration lock only until the server
// notices, within about a second (client_connection_check_interval), not until
// the statement ends.
func TestDeadWorkerFreesLock(t *testing.T) {
	f := newFixture(t)
	p := f.provider(nil)
	f.write("expand", "001_t.sql", "CREATE TABLE t (a int);\n")

	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), dyingWorkerEnv+"="+f.url)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	line, err := bufio.NewReader(out).ReadString('\n')
	if err != nil || line != "locked\n" {
		t.Fatalf("helper: %q, %v", line, err)
	}
	time.Sleep(300 * time.Millisecond) // into pg_sleep
	if err := cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	_ = cmd.Wait()

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	began := time.Now()
	rep, err := p.Migrate(ctx, providers.Ref{App: "app"}, "expand")
	if err != nil {
		t.Fatal(err)
	}
	eq(t, "applied", rep.Applied, []string{"001_t.sql"})
	if took := time.Since(began); took > 3*time.Second {
		t.Errorf("waited %s for the dead session's lock", took)
	}
}

const dyingWorkerEnv = "CUTOVER_TEST_DYING_WORKER_URL"

// TestMain runs the dying worker of TestDeadWorkerFreesLock when the test
// binary is started as one: it takes the migration lock, says so, and sleeps
// in a statement until it is killed.
func TestMain(m *testing.M) {
	if os.Getenv(dyingWorkerEnv) == "" {
		os.Exit(m.Run())
	}
	p, err := New(map[string]any{"url": map[string]any{"env": dyingWorkerEnv}})
	if err != nil {
		panic(err)
	}
	ctx := context.Background()
	conn, err := p.connect(ctx, "cutover-migrate")
	if err != nil {
		panic(err)
	}
	if err := waitForLock(ctx, conn); err != nil {
		panic(err)
	}
	fmt.Println("locked")
	_, _ = conn.Exec(ctx, "select pg_sleep(30)")
	os.Exit(1)
}
