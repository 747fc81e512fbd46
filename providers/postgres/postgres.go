// Package postgres is the PostgreSQL provider: it applies an app's database
// migrations as part of a release (a Migrator), in two phases. `migrate:
// {phase: expand}` runs before any traffic moves to green, so its migrations
// must keep the old version (blue) working: they are checked statement by
// statement (pg_query_go, PostgreSQL's own parser) before anything runs.
// `migrate: {phase: contract}` runs after promotion and the standby window,
// when blue is gone, and may drop what blue needed.
//
// Migrations are plain SQL files, <dir>/expand/NNN_name.sql and
// <dir>/contract/NNN_name.sql, numbered 1..n. They are applied with
// github.com/jackc/tern/v2's migrate package, each in its own transaction
// unless the file holds tern's `---- tern: disable-tx ----` line (which CREATE
// INDEX CONCURRENTLY needs). The files' text is run as it is: tern's
// text/template evaluation (LoadMigrations) is not used.
//
// Everything the provider keeps lives in the database's `cutover` schema: tern's
// version table per app and phase (cutover."version_<app>_<phase>") and the
// checksum of every applied migration (cutover.migrations), so that an applied
// migration that was edited afterwards is refused instead of silently skipped.
//
//	migrations:
//	  type: postgres
//	  settings:
//	    url: {env: DATABASE_URL}   # the secret holding the URL (env or file)
//	    dir: db/migrations         # holds expand/ and contract/
//	    lockTimeout: 5s            # lock_timeout of the session (default 5s)
//	    statementTimeout: 5m       # statement_timeout of the session (default 5m)
//	    waive:                     # expand-safety checks waived, with the reason
//	      - {file: 003_drop_legacy.sql, check: drop-column, reason: "legacy_flag unused since 1.2"}
//
// The same type serves as the release ledger, which needs only url.
package postgres

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgconn/ctxwatch"

	"github.com/cutoverhq/cutover/providers"
	"github.com/cutoverhq/cutover/providers/postgres/ledger"
	"github.com/cutoverhq/cutover/spec"
)

// Type is the provider's name in release.yaml.
const Type = "postgres"

// The two migration phases.
const (
	PhaseExpand   = "expand"
	PhaseContract = "contract"
)

// Defaults of the settings.
const (
	DefaultLockTimeout      = 5 * time.Second
	DefaultStatementTimeout = 5 * time.Minute
)

// Settings are the provider's release.yaml settings. A ledger needs only URL;
// migrations need Dir too.
type Settings struct {
	// URL names the secret (an environment variable or a file of the worker)
	// that holds the database URL; the URL itself is never in the spec.
	URL providers.SecretRef `json:"url"`
	// Dir holds expand/ and contract/, relative to the worker's working
	// directory.
	Dir string `json:"dir,omitempty"`
	// LockTimeout bounds how long a migration's statement waits for a lock
	// (PostgreSQL's lock_timeout), so that a migration never queues behind
	// production's locks, and production behind it, for long (default 5s).
	LockTimeout spec.Duration `json:"lockTimeout,omitempty"`
	// StatementTimeout bounds each statement (default 5m).
	StatementTimeout spec.Duration `json:"statementTimeout,omitempty"`
	// Waive lets an expand migration through a safety check; the waiver and
	// its reason are in the migration report.
	Waive []Waiver `json:"waive,omitempty"`
}

// Waiver lets one expand migration file through one safety check.
type Waiver struct {
	// File is the migration's file name, like 003_drop_legacy.sql.
	File string `json:"file"`
	// Check is the check's name, like drop-column (see Checks).
	Check string `json:"check"`
	// Reason says why it is safe; it is recorded with the release.
	Reason string `json:"reason"`
}

// Provider applies migrations on PostgreSQL.
type Provider struct {
	s     Settings
	waive map[waiverKey]Waiver

	// ledger is opened on the first Record and kept: the registry keeps the
	// provider as long as the worker runs.
	ledgerMu sync.Mutex
	ledger   *ledger.Store
}

type waiverKey struct{ file, check string }

var fileNamePattern = regexp.MustCompile(`\A(\d+)_(.+)\.sql\z`)

// New checks the settings and returns a provider. It does no I/O: the database
// URL is read, and the migration files are found, when they are needed.
func New(settings map[string]any) (*Provider, error) {
	// Durations first, so that their errors name the setting.
	for _, k := range []string{"lockTimeout", "statementTimeout"} {
		if v, ok := settings[k].(string); ok {
			if _, err := spec.ParseDuration(v); err != nil {
				return nil, providers.BadConfig("%s: %v", k, err)
			}
		}
	}
	var s Settings
	if err := providers.DecodeSettings(settings, &s); err != nil {
		return nil, err
	}
	if s.URL == (providers.SecretRef{}) {
		return nil, providers.BadConfig("url: required: the secret holding the database URL, like {env: DATABASE_URL} or {file: /run/secrets/database-url}")
	}
	if err := s.URL.Check(); err != nil {
		return nil, providers.BadConfig("url: %v", err)
	}
	for _, d := range []struct {
		name string
		v    *spec.Duration
		def  time.Duration
	}{
		{"lockTimeout", &s.LockTimeout, DefaultLockTimeout},
		{"statementTimeout", &s.StatementTimeout, DefaultStatementTimeout},
	} {
		switch {
		case *d.v == 0:
			*d.v = spec.Duration(d.def)
		case d.v.D() < time.Millisecond:
			return nil, providers.BadConfig("%s: %s is not a positive number of milliseconds or more", d.name, d.v)
		case d.v.D() > 24*time.Hour:
			return nil, providers.BadConfig("%s: %s is more than 24h", d.name, d.v)
		}
	}
	p := &Provider{s: s, waive: map[waiverKey]Waiver{}}
	for i, w := range s.Waive {
		w.File = strings.TrimPrefix(w.File, PhaseExpand+"/")
		switch {
		case w.File == "":
			return nil, providers.BadConfig("waive[%d].file: required (an expand migration's file name, like 003_drop_legacy.sql)", i)
		case !fileNamePattern.MatchString(w.File) || strings.ContainsAny(w.File, `/\`):
			return nil, providers.BadConfig("waive[%d].file: %q is not a migration file name like 003_drop_legacy.sql", i, w.File)
		case w.Check == "":
			return nil, providers.BadConfig("waive[%d].check: required (one of %s)", i, strings.Join(Checks, ", "))
		case !slices.Contains(Checks, w.Check):
			return nil, providers.BadConfig("waive[%d].check: %q is not a check (known: %s)", i, w.Check, strings.Join(Checks, ", "))
		case strings.TrimSpace(w.Reason) == "":
			return nil, providers.BadConfig("waive[%d].reason: required: say why %s is safe in %s, it is recorded with the release", i, w.Check, w.File)
		}
		k := waiverKey{w.File, w.Check}
		if _, dup := p.waive[k]; dup {
			return nil, providers.BadConfig("waive[%d]: %s is waived for %s twice", i, w.Check, w.File)
		}
		p.waive[k] = w
		p.s.Waive[i] = w
	}
	return p, nil
}

// NewBuilder returns the registry entry for the postgres provider.
func NewBuilder() providers.Builder {
	return providers.Builder{Type: Type, New: func(s map[string]any) (any, error) { return New(s) }}
}

// Type names the provider.
func (p *Provider) Type() string { return Type }

// URL reads the database URL from its secret.
func (p *Provider) URL() (string, error) {
	u, err := p.s.URL.Resolve()
	if err != nil {
		return "", providers.BadConfig("url: %v", err)
	}
	return u, nil
}

// secretName says where the URL comes from, for messages (never the URL).
func (p *Provider) secretName() string {
	if p.s.URL.Env != "" {
		return "variable " + p.s.URL.Env
	}
	return "file " + p.s.URL.File
}

// connConfig is the connection's configuration: the URL's, with the
// provider's session settings. They are sent in the startup packet, so they
// are the session's defaults: tern's `reset all` after each migration returns
// to them rather than to the server's.
func (p *Provider) connConfig(application string) (*pgx.ConnConfig, error) {
	u, err := p.URL()
	if err != nil {
		return nil, err
	}
	cfg, err := pgx.ParseConfig(u)
	if err != nil {
		// The parse error quotes the URL (best-effort redacted): leave it out.
		return nil, providers.BadConfig("url: the %s does not hold a valid PostgreSQL URL (postgres://user@host:5432/db)", p.secretName())
	}
	cfg.RuntimeParams["application_name"] = application
	cfg.RuntimeParams["lock_timeout"] = millis(p.s.LockTimeout.D())
	cfg.RuntimeParams["statement_timeout"] = millis(p.s.StatementTimeout.D())
	// When the worker dies mid-statement, the server notices the closed
	// connection within a second, rolls back and frees the advisory lock, so
	// that the activity's retry does not wait for the statement to end.
	cfg.RuntimeParams["client_connection_check_interval"] = "1s"
	if cfg.ConnectTimeout == 0 {
		cfg.ConnectTimeout = 10 * time.Second
	}
	// On ctx cancel, ask the server to cancel the statement at once (its locks
	// go with it), and cut the connection if it does not answer within a
	// second.
	cfg.BuildContextWatcherHandler = func(c *pgconn.PgConn) ctxwatch.Handler {
		return &pgconn.CancelRequestContextWatcherHandler{Conn: c, DeadlineDelay: time.Second}
	}
	return cfg, nil
}

func millis(d time.Duration) string { return fmt.Sprintf("%dms", d.Milliseconds()) }

// connect opens a connection with the provider's settings.
func (p *Provider) connect(ctx context.Context, application string) (*pgx.Conn, error) {
	cfg, err := p.connConfig(application)
	if err != nil {
		return nil, err
	}
	conn, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		var pgErr *pgconn.PgError
		if errors.As(err, &pgErr) {
			switch {
			case strings.HasPrefix(pgErr.Code, "28"), pgErr.Code == "3D000":
				return nil, providers.BadConfig("connect to PostgreSQL (url from the %s): %v", p.secretName(), err)
			case pgErr.Code == "42704":
				return nil, providers.BadConfig("connect to PostgreSQL: %v (PostgreSQL 14 or later is needed)", err)
			}
		}
		return nil, fmt.Errorf("connect to PostgreSQL: %w", err)
	}
	return conn, nil
}

// closeConn closes the connection, whatever state ctx and the connection are
// in; closing it ends the session, which frees its advisory locks.
func closeConn(conn *pgx.Conn) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	_ = conn.Close(ctx)
}

// retryable says whether a PostgreSQL error is passing: the connection, the
// server, a conflict with another transaction, or one of the timeouts.
func retryable(code string) bool {
	switch code {
	case "55P03", // lock_not_available: lock_timeout
		"55006": // object_in_use
		return true
	}
	switch code[:min(2, len(code))] {
	case "08", // connection exception
		"40", // transaction rollback: serialization failure, deadlock
		"53", // insufficient resources: too many connections, out of memory or disk
		"57", // operator intervention: statement_timeout, query canceled, shutdown
		"58": // system error
		return true
	}
	return false
}

// dbError classifies an error of the provider's own statements (not a
// migration's).
func dbError(ctx context.Context, what string, err error) error {
	if ctx.Err() != nil {
		return ctx.Err()
	}
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) && !retryable(pgErr.Code) {
		if pgErr.Code == "42501" || strings.HasPrefix(pgErr.Code, "28") {
			return providers.BadConfig("%s: %v (the database user needs the privilege)", what, err)
		}
		return providers.Invalid("%s: %v", what, err)
	}
	return fmt.Errorf("%s: %w", what, err)
}
