package ledger

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/jackc/tern/v2/migrate"
)

// The ledger's tables live in the cutover schema, next to the migrations
// provider's (cutover.migrations and cutover."version_<app>_<phase>"): the
// names below must not collide with those.
const versionTable = "cutover.ledger_version"

// migrations are the ledger schema's versions, in order. Append, never edit:
// a database at version N has run exactly the first N. Each one must keep the
// previous version's readers and writers working, since workers are upgraded
// one at a time.
var migrations = []struct{ name, up string }{
	{"releases and events", `
create table cutover.releases (
	id               text primary key,
	app              text not null,
	version          text not null,
	previous_version text not null default '',
	started_by       text not null default '',
	via              text not null default '',
	ci_run           text not null default '',
	started_at       timestamptz not null,
	ended_at         timestamptz,
	outcome          text not null default '',
	reason           text not null default ''
);
comment on table cutover.releases is 'Cutover release ledger: one row per release (id is the Temporal workflow run ID); outcome is empty until the release ends.';

create index ledger_releases_app_started_at on cutover.releases (app, started_at desc);

create table cutover.events (
	release_id text not null references cutover.releases (id),
	seq        int not null check (seq > 0),
	kind       text not null,
	at         timestamptz not null,
	step       int not null default 0,
	state      text not null default '',
	actor      text not null default '',
	via        text not null default '',
	ci_run     text not null default '',
	outcome    text not null default '',
	message    text not null default '',
	data       jsonb,
	primary key (release_id, seq)
);
comment on table cutover.events is 'Cutover release ledger: each release''s events (started, step, decision, verdict, outcome), numbered by the workflow from 1.';
`},
	{"principals and people", `
alter table cutover.releases add column principal text not null default '', add column person text not null default '';
alter table cutover.events add column principal text not null default '', add column person text not null default '';
comment on column cutover.events.principal is 'who the door authenticated (door:id); actor is the free text that came with it';
`},
}

// schemaVersion is the version this code reads and writes.
var schemaVersion = int32(len(migrations))

// lockKey is the advisory lock tern takes around its migrations. Holding the
// same one while the schema is created makes a concurrent Open (and any other
// tern user of this database) wait instead of racing. Session advisory locks
// nest, so tern taking it again on the same connection is fine.
const lockKey = int64(9628173550095224)

// currentVersion reads the ledger schema's version without writing anything:
// 0 when there is no ledger in the database.
func currentVersion(ctx context.Context, q interface {
	QueryRow(context.Context, string, ...any) pgx.Row
}) (int32, error) {
	var exists bool
	if err := q.QueryRow(ctx, "select to_regclass($1) is not null", versionTable).Scan(&exists); err != nil {
		return 0, err
	}
	if !exists {
		return 0, nil
	}
	var v int32
	err := q.QueryRow(ctx, "select version from "+versionTable).Scan(&v)
	if errors.Is(err, pgx.ErrNoRows) {
		return 0, nil
	}
	return v, err
}

// upgrade creates the cutover schema and brings the ledger's tables to
// schemaVersion. A database already there (or newer: a worker of a later
// release has upgraded it) is only read, so a role without CREATE can open it.
func upgrade(ctx context.Context, pool *pgxpool.Pool) error {
	c, err := pool.Acquire(ctx)
	if err != nil {
		return err
	}
	// A connection that fails half-way may still hold the advisory lock: close
	// it rather than give it back to the pool.
	ok := false
	defer func() {
		if ok {
			c.Release()
			return
		}
		_ = c.Hijack().Close(context.Background())
	}()
	conn := c.Conn()

	if v, err := currentVersion(ctx, conn); err != nil {
		return fmt.Errorf("read the ledger schema's version: %w", err)
	} else if v >= schemaVersion {
		ok = true
		return nil
	}

	if _, err := conn.Exec(ctx, "select pg_advisory_lock($1)", lockKey); err != nil {
		return err
	}
	if err := createSchema(ctx, conn); err != nil {
		return fmt.Errorf("create schema cutover: %w", err)
	}
	m, err := migrate.NewMigrator(ctx, conn, versionTable)
	if err != nil {
		return fmt.Errorf("create %s: %w", versionTable, err)
	}
	for _, mig := range migrations {
		m.AppendMigration(mig.name, mig.up, "")
	}
	v, err := m.GetCurrentVersion(ctx)
	if err != nil {
		return fmt.Errorf("read the ledger schema's version: %w", err)
	}
	if v < schemaVersion {
		if err := m.Migrate(ctx); err != nil {
			return fmt.Errorf("upgrade the ledger schema from version %d to %d: %w", v, schemaVersion, err)
		}
	}
	if _, err := conn.Exec(ctx, "select pg_advisory_unlock($1)", lockKey); err != nil {
		return err
	}
	ok = true
	return nil
}

// createSchema creates the cutover schema unless it is there. Another program
// creating it at the same moment without our lock makes "if not exists" fail
// with a duplicate: that is success too.
func createSchema(ctx context.Context, conn *pgx.Conn) error {
	_, err := conn.Exec(ctx, "create schema if not exists cutover")
	var pe *pgconn.PgError
	if errors.As(err, &pe) && (pe.Code == "23505" || pe.Code == "42P06") {
		return nil
	}
	return err
}
