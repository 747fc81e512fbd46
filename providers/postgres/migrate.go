package postgres

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/tern/v2/migrate"

	"github.com/cutoverhq/cutover/providers"
)

// ternLock is tern's advisory lock number (migrate.lockNum, which is not
// exported). MigrateTo takes it for the session; this provider takes it first,
// itself, so that the wait for it honours ctx and is not cut by lock_timeout.
// Session advisory locks are reentrant, so tern's own request then succeeds at
// once. The lock is one for the whole database: it serializes every app's
// migrations (and any other tern user's), which is what two releases, or two
// attempts of one release, racing need; a lock per app and phase would add
// nothing while tern takes the global one anyway.
const ternLock = int64(9628173550095224)

const checksumTable = "cutover.migrations"

// Migrate applies the phase's pending migrations, in order, each once.
//
// Before anything runs, and while holding the lock: applied migrations whose
// file changed or was renamed are refused, and, for expand, the pending
// migrations are checked for statements that break blue. Only the pending
// ones: which they are is known once the version table is read, so the check
// runs after connecting (the files are parsed before), applied migrations are
// not checked again (their waivers may leave the spec), and only a table
// created by a pending migration counts as new. A retry runs
// what the version table does not record as applied: a transactional migration
// cut off midway was rolled back by PostgreSQL. A disable-tx migration cut off
// midway is run again in full, so its statements must be safe to repeat
// (IF NOT EXISTS; and DROP INDEX CONCURRENTLY IF EXISTS before CREATE INDEX
// CONCURRENTLY, since a cut-off concurrent build leaves an invalid index).
func (p *Provider) Migrate(ctx context.Context, r providers.Ref, phase string) (providers.MigrationReport, error) {
	rep := providers.MigrationReport{Phase: phase}
	if phase != PhaseExpand && phase != PhaseContract {
		return rep, providers.Invalid("migration phase %q: the phases are expand and contract", phase)
	}
	if r.App == "" {
		return rep, providers.Invalid("migrate %s: the release names no app", phase)
	}
	if p.s.Dir == "" {
		return rep, providers.BadConfig("dir: required for migrations")
	}
	files, err := readPhase(p.s.Dir, phase)
	if err != nil {
		return rep, err
	}
	var parsedFiles []parsed
	if phase == PhaseExpand {
		// Waivers are checked whether or not the folder exists: a waiver for a
		// file that is not there is a mistake in the spec.
		have := map[string]bool{}
		for _, m := range files {
			have[m.name] = true
		}
		for i, w := range p.s.Waive {
			if !have[w.File] {
				return rep, providers.BadConfig("waive[%d].file: there is no %s/%s in %s", i, PhaseExpand, w.File, p.s.Dir)
			}
		}
		if parsedFiles, err = parseAll(files); err != nil {
			return rep, err
		}
	}
	if len(files) == 0 {
		return rep, nil
	}

	conn, err := p.connect(ctx, "cutover-migrate")
	if err != nil {
		return rep, err
	}
	defer closeConn(conn)
	return p.run(ctx, conn, r.App, phase, files, parsedFiles)
}

// run does the work on the connection, under the lock.
func (p *Provider) run(ctx context.Context, conn *pgx.Conn, app, phase string, files []*migration, parsedFiles []parsed) (providers.MigrationReport, error) {
	rep := providers.MigrationReport{Phase: phase}
	if err := waitForLock(ctx, conn); err != nil {
		return rep, err
	}
	defer func() {
		if ctx.Err() == nil {
			_, _ = conn.Exec(ctx, "select pg_advisory_unlock($1)", ternLock)
		}
		// Otherwise closing the connection frees it.
	}()
	if err := setup(ctx, conn); err != nil {
		return rep, err
	}
	m, err := migrate.NewMigratorEx(ctx, conn, versionTable(app, phase), &migrate.MigratorOptions{})
	if err != nil {
		return rep, dbError(ctx, "create the version table", err)
	}
	v, err := m.GetCurrentVersion(ctx)
	if err != nil {
		return rep, dbError(ctx, "read the version table", err)
	}
	version := int(v)
	if err := verify(ctx, conn, app, phase, files, version); err != nil {
		return rep, err
	}
	applied := min(version, len(files))
	// A migration this release does not have (version > len(files)) was
	// applied by a newer release: the expand ones keep this version working,
	// and nothing is run. Should this release's files later be numbered over
	// it, the checksum check refuses them.
	rep.Already = names(files[:applied])
	pending := files[applied:]
	if phase == PhaseExpand {
		refused, waived := check(parsedFiles[applied:], p.waive)
		if len(refused) > 0 {
			lines := make([]string, 0, len(refused)+1)
			lines = append(lines, fmt.Sprintf("%d statement(s) in %s/ would break blue or lock production, so nothing was applied (when one is safe, waive it in the settings' waive list with file, check and reason):", len(refused), phase))
			for _, f := range refused {
				lines = append(lines, f.String())
			}
			return rep, providers.CheckFailed("%s", strings.Join(lines, "\n"))
		}
		rep.Waived = waived
	}
	if len(pending) == 0 {
		return rep, nil
	}

	// A disable-tx migration cannot have its checksum written in its own
	// transaction: its row is written now, before it runs. Rows are trusted
	// only for migrations the version table records as applied, so the row
	// of one that fails, or is cut off, stays ignored until it is applied (and
	// is rewritten then: a retry writes it again before running the file
	// again).
	for _, f := range pending {
		if f.noTx {
			if _, err := conn.Exec(ctx, upsertChecksum, app, phase, f.seq, f.name, f.sum); err != nil {
				return rep, dbError(ctx, "record "+f.path+"'s checksum", err)
			}
		}
	}

	for _, f := range files {
		m.AppendMigration(f.name, f.up, f.down)
	}
	var current *migration
	var hookErr error
	m.OnStart = func(seq int32, _, _, _ string) {
		// tern calls OnStart after it began the migration's transaction, on
		// this connection: the checksum row commits or rolls back with the
		// migration and the version table's update.
		current = files[seq-1]
		if current.noTx || hookErr != nil {
			return
		}
		if _, err := conn.Exec(ctx, upsertChecksum, app, phase, current.seq, current.name, current.sum); err != nil {
			// The transaction is aborted now, so tern's next statement fails
			// and MigrateTo returns; the cause is this error.
			hookErr = err
		}
	}
	start := time.Now()
	err = m.MigrateTo(ctx, int32(len(files)))
	if err != nil {
		if ctx.Err() != nil {
			rep.Applied = appliedBefore(pending, current)
			return rep, ctx.Err()
		}
		rep.Applied = appliedBefore(pending, current)
		if hookErr != nil {
			return rep, dbError(ctx, "record "+current.path+"'s checksum", hookErr)
		}
		return rep, migrationError(current, err, time.Since(start))
	}
	rep.Applied = names(pending)
	return rep, nil
}

// appliedBefore lists the pending migrations that tern finished before the
// one that failed.
func appliedBefore(pending []*migration, failed *migration) []string {
	var out []string
	for _, f := range pending {
		if f == failed {
			break
		}
		out = append(out, f.name)
	}
	return out
}

// versionTable is tern's version table for the app and phase. PostgreSQL cuts
// names at 63 bytes; a longer one keeps a hash of the app, so that two long
// app names never share a table.
func versionTable(app, phase string) string {
	name := "version_" + app + "_" + phase
	if len(name) > 63 {
		h := sha256.Sum256([]byte(app))
		suffix := "_" + hex.EncodeToString(h[:4]) + "_" + phase
		keep := 63 - len("version_") - len(suffix)
		cut := app[:keep]
		for len(cut) > 0 && !validUTF8End(cut) {
			cut = cut[:len(cut)-1]
		}
		name = "version_" + cut + suffix
	}
	return pgx.Identifier{"cutover", name}.Sanitize()
}

func validUTF8End(s string) bool {
	return strings.ToValidUTF8(s, "\uFFFD") == s
}

// waitForLock takes tern's advisory lock for the session, waiting as long as
// ctx allows: lock_timeout and statement_timeout are lifted for this one
// statement (SET LOCAL), since another release's migrations may well take
// longer than them. A session lock outlives the transaction.
func waitForLock(ctx context.Context, conn *pgx.Conn) error {
	err := pgx.BeginFunc(ctx, conn, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, "set local lock_timeout = 0; set local statement_timeout = 0"); err != nil {
			return err
		}
		_, err := tx.Exec(ctx, "select pg_advisory_lock($1)", ternLock)
		return err
	})
	if err != nil {
		return dbError(ctx, "wait for the migration lock", err)
	}
	return nil
}

// setup creates the cutover schema and the checksum table. It looks before it
// creates, so that a database user without CREATE privileges works once they
// exist.
func setup(ctx context.Context, conn *pgx.Conn) error {
	var schema, table bool
	err := conn.QueryRow(ctx, `select exists (select from pg_namespace where nspname = 'cutover'),
		to_regclass('cutover.migrations') is not null`).Scan(&schema, &table)
	if err != nil {
		return dbError(ctx, "look for the cutover schema", err)
	}
	if !schema {
		// The ledger creates the schema too, under its own lock: two
		// concurrent CREATE SCHEMA IF NOT EXISTS may fail with a unique
		// violation (23505), which is a race lost, not a problem.
		if _, err := conn.Exec(ctx, "create schema if not exists cutover"); err != nil && !isCode(err, "23505") {
			return dbError(ctx, "create schema cutover", err)
		}
	}
	if !table {
		if _, err := conn.Exec(ctx, `create table if not exists `+checksumTable+` (
			app text not null,
			phase text not null,
			seq int not null,
			name text not null,
			sha256 text not null,
			applied_at timestamptz not null default now(),
			primary key (app, phase, seq)
		)`); err != nil && !isCode(err, "23505") {
			return dbError(ctx, "create table "+checksumTable, err)
		}
	}
	return nil
}

const upsertChecksum = `insert into ` + checksumTable + ` (app, phase, seq, name, sha256, applied_at)
values ($1, $2, $3, $4, $5, now())
on conflict (app, phase, seq) do update set name = excluded.name, sha256 = excluded.sha256, applied_at = excluded.applied_at`

type record struct {
	seq       int
	name, sum string
	at        time.Time
}

// verify refuses applied migrations whose file changed, was renamed or is
// gone, all in one error. It drops the rows of migrations that were not
// applied (a disable-tx migration's row written before it failed), and records
// the checksum of applied migrations that have none (a version table that was
// set by hand), as they are now.
func verify(ctx context.Context, conn *pgx.Conn, app, phase string, files []*migration, version int) error {
	if _, err := conn.Exec(ctx, "delete from "+checksumTable+" where app = $1 and phase = $2 and seq > $3", app, phase, version); err != nil {
		return dbError(ctx, "clean "+checksumTable, err)
	}
	rows, err := conn.Query(ctx, "select seq, name, sha256, applied_at from "+checksumTable+" where app = $1 and phase = $2 order by seq", app, phase)
	if err != nil {
		return dbError(ctx, "read "+checksumTable, err)
	}
	recs, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (record, error) {
		var r record
		err := row.Scan(&r.seq, &r.name, &r.sum, &r.at)
		return r, err
	})
	if err != nil {
		return dbError(ctx, "read "+checksumTable, err)
	}
	bySeq := map[int]record{}
	for _, r := range recs {
		bySeq[r.seq] = r
	}
	var problems []string
	for seq := 1; seq <= min(version, len(files)); seq++ {
		f := files[seq-1]
		r, ok := bySeq[seq]
		switch {
		case !ok:
			if _, err := conn.Exec(ctx, upsertChecksum, app, phase, f.seq, f.name, f.sum); err != nil {
				return dbError(ctx, "record "+f.path+"'s checksum", err)
			}
		case r.name != f.name:
			problems = append(problems, fmt.Sprintf("%s/%s was applied on %s as migration %d, and %s is number %d now; applied migrations must not change: add a new migration instead",
				phase, r.name, day(r.at), seq, f.path, seq))
		case r.sum != f.sum:
			problems = append(problems, fmt.Sprintf("%s was applied on %s with checksum %s, the file now has %s; applied migrations must not change: add a new migration instead",
				f.path, day(r.at), shortSum(r.sum), shortSum(f.sum)))
		}
	}
	if len(problems) > 0 {
		return providers.CheckFailed("%s", strings.Join(problems, "\n"))
	}
	return nil
}

func isCode(err error, code string) bool {
	var pgErr *pgconn.PgError
	return errors.As(err, &pgErr) && pgErr.Code == code
}

func day(t time.Time) string { return t.UTC().Format("2006-01-02 15:04 UTC") }

// migrationError reports a migration's failure with the file and, when
// PostgreSQL gives a position, the line. Timeouts, lock waits, conflicts and
// lost connections are retried; any other SQL error is the migration's own and
// permanent.
func migrationError(f *migration, err error, took time.Duration) error {
	if f == nil {
		return fmt.Errorf("migrate: %w", err)
	}
	var pgErr *pgconn.PgError
	if !errors.As(err, &pgErr) {
		return fmt.Errorf("apply %s: %w", f.path, err)
	}
	var mErr migrate.MigrationPgError
	line := 0
	if errors.As(err, &mErr) {
		line = errorLine(f, mErr.Sql, int(pgErr.Position))
	}
	if retryable(pgErr.Code) {
		hint := ""
		switch pgErr.Code {
		case "55P03":
			hint = fmt.Sprintf(" (after %s: another session holds a lock the migration needs)", took.Round(100*time.Millisecond))
		case "57014":
			hint = " (statement timeout, or the statement was cancelled)"
		}
		return fmt.Errorf("apply %s: %w%s", at(f, line), pgErr, hint)
	}
	msg := pgErr.Message
	if pgErr.Detail != "" {
		msg += ": " + pgErr.Detail
	}
	if pgErr.Code == "25001" && !f.noTx {
		msg += "; add the line ---- tern: disable-tx ---- to the file to run it outside a transaction"
	}
	return providers.Invalid("%s: %s (SQLSTATE %s)", at(f, line), msg, pgErr.Code)
}

// errorLine finds the file line of an error: sql is what ran (the file's
// text, or for a disable-tx migration one of its statements), pos
// PostgreSQL's 1-based character position in it (0: none).
func errorLine(f *migration, sql string, pos int) int {
	base := 0
	if sql != f.up {
		i := strings.Index(f.up, sql)
		if i < 0 {
			return 0
		}
		base = i
		if pos == 0 {
			// No position: the statement's own line.
			return lineAt(f.up, statementStart(f.up, base))
		}
	} else if pos == 0 {
		return 0
	}
	return lineAt(f.up, base+byteOffset(sql, pos))
}
