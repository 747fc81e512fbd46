package postgres

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cutoverhq/cutover/providers"
)

func TestNewSettings(t *testing.T) {
	url := map[string]any{"env": "DATABASE_URL"}
	for _, tc := range []struct {
		name     string
		settings map[string]any
		want     string // "": valid
	}{
		{"minimal ledger", map[string]any{"url": url}, ""},
		{"migrations", map[string]any{"url": url, "dir": "db/migrations", "lockTimeout": "2s", "statementTimeout": "1m",
			"waive": []any{map[string]any{"file": "003_drop_legacy.sql", "check": "drop-column", "reason": "legacy_flag unused since 1.2"}}}, ""},
		{"waiver with phase prefix", map[string]any{"url": url, "waive": []any{map[string]any{"file": "expand/003_x.sql", "check": "rename", "reason": "r"}}}, ""},
		{"no url", map[string]any{"dir": "db"}, "url: required"},
		{"url not a secret", map[string]any{"url": "postgres://u:p@h/db"}, "cannot unmarshal string into Go struct field"},
		{"url both", map[string]any{"url": map[string]any{"env": "A", "file": "/b"}}, "url: a secret takes env or file, not both"},
		{"unknown setting", map[string]any{"url": url, "dirs": "x"}, `unknown setting "dirs"`},
		{"bad duration", map[string]any{"url": url, "lockTimeout": "soon"}, `lockTimeout: "soon" is not a duration`},
		{"negative duration", map[string]any{"url": url, "statementTimeout": "-1s"}, "statementTimeout: \"-1s\" is negative"},
		{"huge duration", map[string]any{"url": url, "lockTimeout": "48h"}, "lockTimeout: 48h0m0s is more than 24h"},
		{"waiver without file", map[string]any{"url": url, "waive": []any{map[string]any{"check": "rename", "reason": "r"}}}, "waive[0].file: required"},
		{"waiver bad file", map[string]any{"url": url, "waive": []any{map[string]any{"file": "drop.sql", "check": "rename", "reason": "r"}}}, `waive[0].file: "drop.sql" is not a migration file name`},
		{"waiver unknown check", map[string]any{"url": url, "waive": []any{map[string]any{"file": "001_a.sql", "check": "drop-everything", "reason": "r"}}}, `waive[0].check: "drop-everything" is not a check (known: drop-table, `},
		{"waiver without reason", map[string]any{"url": url, "waive": []any{map[string]any{"file": "001_a.sql", "check": "rename", "reason": " "}}}, "waive[0].reason: required"},
		{"waiver twice", map[string]any{"url": url, "waive": []any{
			map[string]any{"file": "001_a.sql", "check": "rename", "reason": "r"},
			map[string]any{"file": "expand/001_a.sql", "check": "rename", "reason": "s"}}}, "waive[1]: rename is waived for 001_a.sql twice"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p, err := New(tc.settings)
			if tc.want == "" {
				if err != nil {
					t.Fatalf("New: %v", err)
				}
				if p.Type() != "postgres" {
					t.Errorf("Type() = %q", p.Type())
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %v, want an error containing %q", err, tc.want)
			}
			if !errors.Is(err, providers.ErrBadConfig) {
				t.Errorf("%v is not a BadConfig error", err)
			}
			if strings.Contains(err.Error(), "\n") {
				t.Errorf("error is not one line: %q", err)
			}
		})
	}
}

func TestDefaults(t *testing.T) {
	p, err := New(map[string]any{"url": map[string]any{"env": "X"}})
	if err != nil {
		t.Fatal(err)
	}
	if p.s.LockTimeout.D() != 5*time.Second || p.s.StatementTimeout.D() != 5*time.Minute {
		t.Errorf("defaults: lockTimeout %s, statementTimeout %s", p.s.LockTimeout, p.s.StatementTimeout)
	}
}

func TestURL(t *testing.T) {
	f := filepath.Join(t.TempDir(), "url")
	if err := os.WriteFile(f, []byte("postgres://u:secret@db:5432/app\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	p, err := New(map[string]any{"url": map[string]any{"file": f}})
	if err != nil {
		t.Fatal(err)
	}
	if u, err := p.URL(); err != nil || u != "postgres://u:secret@db:5432/app" {
		t.Errorf("URL() = %q, %v", u, err)
	}
	cfg, err := p.connConfig("cutover-test")
	if err != nil {
		t.Fatal(err)
	}
	for k, want := range map[string]string{"lock_timeout": "5000ms", "statement_timeout": "300000ms", "client_connection_check_interval": "1s", "application_name": "cutover-test"} {
		if cfg.RuntimeParams[k] != want {
			t.Errorf("%s = %q, want %q", k, cfg.RuntimeParams[k], want)
		}
	}

	p, _ = New(map[string]any{"url": map[string]any{"env": "CUTOVER_TEST_UNSET_VARIABLE"}})
	if _, err := p.URL(); err == nil || !errors.Is(err, providers.ErrBadConfig) || !strings.HasPrefix(err.Error(), "url: secret variable CUTOVER_TEST_UNSET_VARIABLE is not set") {
		t.Errorf("unset variable: %v", err)
	}

	bad := filepath.Join(t.TempDir(), "url")
	if err := os.WriteFile(bad, []byte("postgres://u:secret@db:notaport/app"), 0o600); err != nil {
		t.Fatal(err)
	}
	p, _ = New(map[string]any{"url": map[string]any{"file": bad}, "dir": t.TempDir()})
	if _, err := p.connConfig("x"); err == nil || !errors.Is(err, providers.ErrBadConfig) || strings.Contains(err.Error(), "secret") {
		t.Errorf("bad URL: %v (must be BadConfig, without the URL)", err)
	}
}

// Errors that need no database: they come before connecting.
func TestMigrateBeforeConnecting(t *testing.T) {
	ctx := context.Background()
	// Nothing listens on port 1: an attempt to connect would fail.
	f := filepath.Join(t.TempDir(), "url")
	if err := os.WriteFile(f, []byte("postgres://u@127.0.0.1:1/db"), 0o600); err != nil {
		t.Fatal(err)
	}
	newP := func(extra map[string]any) *Provider {
		s := map[string]any{"url": map[string]any{"file": f}}
		for k, v := range extra {
			s[k] = v
		}
		p, err := New(s)
		if err != nil {
			t.Fatal(err)
		}
		return p
	}
	write := func(dir, phase, name, sql string) {
		if err := os.MkdirAll(filepath.Join(dir, phase), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, phase, name), []byte(sql), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	ref := providers.Ref{App: "shop", Version: "1.1"}

	p := newP(nil)
	if _, err := p.Migrate(ctx, ref, "expand"); err == nil || err.Error() != "dir: required for migrations" || !errors.Is(err, providers.ErrBadConfig) {
		t.Errorf("no dir: %v", err)
	}

	empty := t.TempDir()
	p = newP(map[string]any{"dir": empty})
	if _, err := p.Migrate(ctx, ref, "cleanup"); err == nil || !errors.Is(err, providers.ErrInvalid) {
		t.Errorf("bad phase: %v", err)
	}
	rep, err := p.Migrate(ctx, ref, "expand")
	if err != nil || rep.Phase != "expand" || len(rep.Applied)+len(rep.Already) != 0 {
		t.Errorf("missing phase folder: %+v, %v", rep, err)
	}

	p = newP(map[string]any{"dir": filepath.Join(empty, "nope")})
	if _, err := p.Migrate(ctx, ref, "expand"); err == nil || !errors.Is(err, providers.ErrBadConfig) || !strings.Contains(err.Error(), "is not a directory") {
		t.Errorf("missing dir: %v", err)
	}

	p = newP(map[string]any{"dir": empty, "waive": []any{map[string]any{"file": "004_x.sql", "check": "rename", "reason": "r"}}})
	if _, err := p.Migrate(ctx, ref, "expand"); err == nil || !errors.Is(err, providers.ErrBadConfig) || !strings.Contains(err.Error(), "waive[0].file: there is no expand/004_x.sql") {
		t.Errorf("waiver for a missing file: %v", err)
	}

	for _, tc := range []struct {
		files map[string]string
		want  string
	}{
		{map[string]string{"001_a.sql": "SELECT 1", "add_b.sql": "SELECT 1"}, "expand/add_b.sql: migration files are named NNN_name.sql"},
		{map[string]string{"001_a.sql": "SELECT 1", "003_c.sql": "SELECT 1"}, "expand/003_c.sql: expected migration number 2 next"},
		{map[string]string{"001_a.sql": "SELECT 1", "1_b.sql": "SELECT 1"}, "have the same number 1"},
		{map[string]string{"000_a.sql": "SELECT 1"}, "expand/000_a.sql: migration numbers start at 1"},
		{map[string]string{"001_a.sql": "-- nothing yet\n"}, "expand/001_a.sql holds no SQL"},
		{map[string]string{"001_a.sql": "SELECT 1;\n\nCREATE TABLE (;"}, "expand/001_a.sql:3: syntax error"},
	} {
		dir := t.TempDir()
		for name, sql := range tc.files {
			write(dir, "expand", name, sql)
		}
		write(dir, "expand", "README.md", "ignored")
		p := newP(map[string]any{"dir": dir})
		_, err := p.Migrate(ctx, ref, "expand")
		if err == nil || !strings.Contains(err.Error(), tc.want) || !errors.Is(err, providers.ErrInvalid) {
			t.Errorf("%v: got %v, want an Invalid error containing %q", tc.files, err, tc.want)
		}
	}
}
