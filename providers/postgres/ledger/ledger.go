// Package ledger keeps the release ledger in PostgreSQL: every release and its
// events (who started it and from which CI run, each step's start and end, each
// decision and the door it came through, each verdict with its numbers, the
// outcome), in the cutover schema, where it outlives the Temporal history and
// answers an auditor without it.
//
// The workflow numbers each release's events; Record stores each (release, seq)
// once, so a retried activity writes no duplicate, and it accepts events in any
// order, since the workflow writes them from activities that run in parallel.
//
// Tables (created and upgraded by Open, versioned in cutover.ledger_version):
//
//	cutover.releases  id (the workflow run ID), app, version, previous_version,
//	                  started_by, via, ci_run, started_at, ended_at, outcome, reason
//	cutover.events    release_id, seq, kind, at, step, state, actor, via, ci_run,
//	                  outcome, message, data (jsonb); primary key (release_id, seq)
//
// This package does not know Temporal: activities call it.
package ledger

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/cutoverhq/cutover/providers"
)

// Store is the ledger in one PostgreSQL database. It is safe for concurrent use.
type Store struct {
	pool *pgxpool.Pool
}

// Release is one release as the ledger has it.
type Release struct {
	// ID is the release's workflow run ID.
	ID              string `json:"id"`
	App             string `json:"app"`
	Version         string `json:"version"`
	PreviousVersion string `json:"previousVersion,omitempty"`
	// StartedBy, Via and CIRun come from the started event: who started the
	// release, through which door (cli, api, chat, ui), from which CI run.
	StartedBy string `json:"startedBy,omitempty"`
	Via       string `json:"via,omitempty"`
	CIRun     string `json:"ciRun,omitempty"`
	// Principal is who the door authenticated (door:id) and Person who that
	// is after the app definition's people.
	Principal string `json:"principal,omitempty"`
	Person    string `json:"person,omitempty"`
	// StartedAt is the started event's time (until it is recorded: the
	// earliest event's).
	StartedAt time.Time `json:"startedAt"`
	// EndedAt, Outcome and Reason come from the outcome event; EndedAt is nil
	// and Outcome empty until it is recorded.
	EndedAt *time.Time `json:"endedAt,omitempty"`
	Outcome string     `json:"outcome,omitempty"`
	Reason  string     `json:"reason,omitempty"`
}

// connectTimeout bounds each connection attempt when the URL does not say
// (connect_timeout): a worker or a CLI should not hang on a dead server.
const connectTimeout = 10 * time.Second

// Open connects (pgxpool) and creates or upgrades the cutover schema's ledger
// tables. Several processes may open the same database at once: the schema is
// changed under an advisory lock. A database whose ledger is already at this
// version (or newer) is only read, so a read-only role can open it.
func Open(ctx context.Context, url string) (*Store, error) {
	s, err := connect(ctx, url)
	if err != nil {
		return nil, err
	}
	if err := upgrade(ctx, s.pool); err != nil {
		s.pool.Close()
		return nil, fmt.Errorf("ledger at %s: %w", redact(url), err)
	}
	return s, nil
}

// OpenReadOnly connects to a database that already holds the ledger and never
// changes its schema (the history command uses it: pointing it at the wrong
// database must not create tables there). It fails with a providers.NotFound
// error when the database has no ledger, and when its ledger is older than this
// code (a worker of this version upgrades it when it starts).
func OpenReadOnly(ctx context.Context, url string) (*Store, error) {
	s, err := connect(ctx, url)
	if err != nil {
		return nil, err
	}
	v, err := currentVersion(ctx, s.pool)
	switch {
	case err != nil:
		err = fmt.Errorf("ledger at %s: read its schema version: %w", redact(url), err)
	case v == 0:
		err = providers.NotFound("no release ledger in the database %s (no %s table): a worker whose release spec has providers.ledger creates it", redact(url), versionTable)
	case v < schemaVersion:
		err = providers.NotFound("the release ledger in %s is at schema version %d and this cutover needs %d: start a worker of this version once to upgrade it", redact(url), v, schemaVersion)
	}
	if err != nil {
		s.pool.Close()
		return nil, err
	}
	return s, nil
}

func connect(ctx context.Context, raw string) (*Store, error) {
	if raw == "" {
		return nil, providers.BadConfig("no ledger database URL")
	}
	cfg, err := pgxpool.ParseConfig(raw)
	if err != nil {
		return nil, parseError(raw, err)
	}
	if cfg.ConnConfig.ConnectTimeout == 0 {
		cfg.ConnConfig.ConnectTimeout = connectTimeout
	}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("ledger at %s: %w", redact(raw), err)
	}
	if err := pool.Ping(ctx); err != nil {
		pool.Close()
		return nil, fmt.Errorf("ledger at %s: %w", redact(raw), err)
	}
	return &Store{pool: pool}, nil
}

// parseError says what is wrong with a connection string without quoting it:
// pgx's own message redacts passwords only on a best-effort basis, and a
// net/url error quotes the whole URL.
func parseError(raw string, err error) error {
	detail := ""
	var pe *pgconn.ParseConfigError
	if errors.As(err, &pe) {
		inner := pe.Unwrap()
		var ue *url.Error
		if errors.As(inner, &ue) {
			inner = ue.Err
		}
		if inner != nil {
			detail = " (" + inner.Error() + ")"
		}
	}
	return providers.BadConfig("the ledger database URL %s is not a PostgreSQL connection string%s: want postgres://USER:PASSWORD@HOST:PORT/DATABASE", redact(raw), detail)
}

// redact prints a database URL without its password.
func redact(raw string) string {
	u, err := url.Parse(raw)
	if err != nil || u.Scheme == "" {
		return "(connection string not shown)"
	}
	if q := u.Query(); q.Has("password") {
		q.Set("password", "xxxxx")
		u.RawQuery = q.Encode()
	}
	return u.Redacted()
}

// Close closes the store's connections.
func (s *Store) Close() { s.pool.Close() }

// Record stores one event idempotently: (Release, Seq) is unique and storing an
// event again changes nothing, whatever the copy says. A started event also
// fills in the release's who, door, CI run and start time; an outcome event
// sets its outcome, reason and end time. Whichever of a release's events
// arrives first creates its row, so events may come in any order and from
// several goroutines or processes at once.
//
// An event that can never be stored (no release, no seq, JSON that is not
// JSON) is a providers.Invalid error; anything else is worth retrying.
func (s *Store) Record(ctx context.Context, e providers.LedgerEvent) error {
	if err := check(e); err != nil {
		return err
	}
	var data any // SQL NULL unless there is data
	if len(e.Data) > 0 {
		data = string(e.Data)
	}
	at := e.At
	if at.IsZero() {
		at = time.Now()
	}
	t := clean
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		// The release's row first: the event references it, and taking it
		// first in every transaction keeps concurrent Records from deadlocking.
		if _, err := tx.Exec(ctx, `
insert into cutover.releases (id, app, version, previous_version, started_at)
values ($1, $2, $3, $4, $5)
on conflict (id) do nothing`,
			t(e.Release), t(e.App), t(e.Version), t(e.PreviousVersion), at); err != nil {
			return err
		}
		tag, err := tx.Exec(ctx, `
insert into cutover.events (release_id, seq, kind, at, step, state, actor, via, ci_run, outcome, message, data, principal, person)
values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)
on conflict (release_id, seq) do nothing`,
			t(e.Release), e.Seq, t(e.Kind), at, e.Step, t(e.State), t(e.Actor), t(e.Via), t(e.CIRun), t(e.Outcome), t(e.Message), data, t(e.Principal), t(e.Person))
		if err != nil {
			return err
		}
		if tag.RowsAffected() == 0 {
			return nil // stored before: the release row has had this event's effect too
		}
		switch e.Kind {
		case providers.LedgerStarted:
			_, err = tx.Exec(ctx, `
update cutover.releases set
	app = $2, version = $3,
	previous_version = case when $4 <> '' then $4 else previous_version end,
	started_by = $5, via = $6, ci_run = $7, started_at = $8, principal = $9, person = $10
where id = $1`,
				t(e.Release), t(e.App), t(e.Version), t(e.PreviousVersion), t(e.Actor), t(e.Via), t(e.CIRun), at, t(e.Principal), t(e.Person))
		case providers.LedgerOutcome:
			_, err = tx.Exec(ctx, `
update cutover.releases set
	previous_version = case when previous_version = '' then $2 else previous_version end,
	started_at = least(started_at, $3),
	outcome = $4, reason = $5, ended_at = $3
where id = $1`,
				t(e.Release), t(e.PreviousVersion), at, t(e.Outcome), t(e.Message))
		default:
			// Until the started event comes, the release started no later
			// than its earliest event; the workflow stamps every other event
			// after the started one, so this never moves a recorded start.
			_, err = tx.Exec(ctx, `
update cutover.releases set
	previous_version = case when previous_version = '' then $2 else previous_version end,
	started_at = least(started_at, $3)
where id = $1 and (started_at > $3 or (previous_version = '' and $2 <> ''))`,
				t(e.Release), t(e.PreviousVersion), at)
		}
		return err
	})
	if err != nil {
		var pe *pgconn.PgError
		if errors.As(err, &pe) && (strings.HasPrefix(pe.Code, "22") || strings.HasPrefix(pe.Code, "23")) {
			// A data exception or a constraint the event breaks: a retry
			// would fail the same way.
			return providers.Invalid("ledger: record event %d (%s) of release %s: %w", e.Seq, e.Kind, e.Release, err)
		}
		return fmt.Errorf("ledger: record event %d (%s) of release %s: %w", e.Seq, e.Kind, e.Release, err)
	}
	return nil
}

func check(e providers.LedgerEvent) error {
	var missing []string
	if e.Release == "" {
		missing = append(missing, "release (the run ID)")
	}
	if e.App == "" {
		missing = append(missing, "app")
	}
	if e.Version == "" {
		missing = append(missing, "version")
	}
	if e.Kind == "" {
		missing = append(missing, "kind")
	}
	if len(missing) > 0 {
		return providers.Invalid("ledger event %d without %s", e.Seq, strings.Join(missing, ", "))
	}
	if e.Seq < 1 {
		return providers.Invalid("ledger event %s of release %s has seq %d: events are numbered from 1", e.Kind, e.Release, e.Seq)
	}
	if len(e.Data) > 0 && !json.Valid(e.Data) {
		return providers.Invalid("ledger event %d (%s) of release %s: data is not valid JSON", e.Seq, e.Kind, e.Release)
	}
	return nil
}

// clean makes a string storable as PostgreSQL text, which takes neither NUL
// bytes nor invalid UTF-8: an event is better kept with a replaced character
// than lost.
func clean(s string) string {
	s = strings.ToValidUTF8(s, "\uFFFD")
	return strings.ReplaceAll(s, "\x00", "\uFFFD")
}

const releaseColumns = `id, app, version, previous_version, started_by, via, ci_run, started_at, ended_at, outcome, reason, principal, person`

func scanRelease(row pgx.Row) (Release, error) {
	var r Release
	err := row.Scan(&r.ID, &r.App, &r.Version, &r.PreviousVersion, &r.StartedBy, &r.Via, &r.CIRun, &r.StartedAt, &r.EndedAt, &r.Outcome, &r.Reason, &r.Principal, &r.Person)
	return r, err
}

// DefaultLimit is how many releases Releases returns when not told.
const DefaultLimit = 50

// Releases lists an app's releases, newest first: at most limit of them
// (limit <= 0: DefaultLimit).
func (s *Store) Releases(ctx context.Context, app string, limit int) ([]Release, error) {
	if limit <= 0 {
		limit = DefaultLimit
	}
	rows, err := s.pool.Query(ctx, `select `+releaseColumns+` from cutover.releases
where app = $1 order by started_at desc, id desc limit $2`, app, limit)
	if err != nil {
		return nil, fmt.Errorf("ledger: list the releases of %s: %w", app, err)
	}
	list, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (Release, error) { return scanRelease(row) })
	if err != nil {
		return nil, fmt.Errorf("ledger: list the releases of %s: %w", app, err)
	}
	return list, nil
}

// Release returns the newest release of app at version and its events in Seq
// order. It is a providers.NotFound error when the ledger has no such release.
func (s *Store) Release(ctx context.Context, app, version string) (Release, []providers.LedgerEvent, error) {
	r, err := scanRelease(s.pool.QueryRow(ctx, `select `+releaseColumns+` from cutover.releases
where app = $1 and version = $2 order by started_at desc, id desc limit 1`, app, version))
	if errors.Is(err, pgx.ErrNoRows) {
		return Release{}, nil, providers.NotFound("the ledger has no release of %s %s", app, version)
	}
	if err != nil {
		return Release{}, nil, fmt.Errorf("ledger: read the release of %s %s: %w", app, version, err)
	}
	events, err := s.Events(ctx, r)
	if err != nil {
		return Release{}, nil, err
	}
	return r, events, nil
}

// Events returns a release's events in Seq order.
func (s *Store) Events(ctx context.Context, r Release) ([]providers.LedgerEvent, error) {
	rows, err := s.pool.Query(ctx, `
select seq, kind, at, step, state, actor, via, ci_run, outcome, message, data, principal, person
from cutover.events where release_id = $1 order by seq`, r.ID)
	if err != nil {
		return nil, fmt.Errorf("ledger: read the events of %s %s: %w", r.App, r.Version, err)
	}
	events, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (providers.LedgerEvent, error) {
		e := providers.LedgerEvent{Release: r.ID, App: r.App, Version: r.Version, PreviousVersion: r.PreviousVersion}
		var data []byte
		err := row.Scan(&e.Seq, &e.Kind, &e.At, &e.Step, &e.State, &e.Actor, &e.Via, &e.CIRun, &e.Outcome, &e.Message, &data, &e.Principal, &e.Person)
		if len(data) > 0 {
			e.Data = json.RawMessage(data)
		}
		return e, err
	})
	if err != nil {
		return nil, fmt.Errorf("ledger: read the events of %s %s: %w", r.App, r.Version, err)
	}
	return events, nil
}
