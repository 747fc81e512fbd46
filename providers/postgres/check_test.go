package postgres

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/cutoverhq/cutover/providers"
)

// expandFiles builds in-memory expand migrations numbered from 1.
func expandFiles(sqls ...string) []*migration {
	var ms []*migration
	for i, s := range sqls {
		name := fmt.Sprintf("%03d_m%d.sql", i+1, i+1)
		ms = append(ms, &migration{seq: i + 1, name: name, path: "expand/" + name, up: s, noTx: disableTx.MatchString(s)})
	}
	return ms
}

// findingsOf runs the checks and returns "file:line: check" of each finding.
func findingsOf(t *testing.T, waive map[waiverKey]Waiver, sqls ...string) (got []string, reasons []string, waived []string) {
	t.Helper()
	ps, err := parseAll(expandFiles(sqls...))
	if err != nil {
		t.Fatal(err)
	}
	refused, waived := check(ps, waive)
	for _, f := range refused {
		got = append(got, fmt.Sprintf("%s: %s", at(f.m, f.line), f.check))
		reasons = append(reasons, f.String())
	}
	return got, reasons, waived
}

func TestChecks(t *testing.T) {
	for _, tc := range []struct {
		name string
		sqls []string
		want []string // "expand/001_m1.sql:3: drop-column"; nil: passes
	}{
		// What passes.
		{"add nullable column", []string{"ALTER TABLE users ADD COLUMN email text;"}, nil},
		// IF NOT EXISTS may find blue's table there: it is not new.
		{"create table if not exists is not a new table", []string{
			"CREATE TABLE IF NOT EXISTS users (id bigint PRIMARY KEY, legacy text);\n\nALTER TABLE users DROP COLUMN legacy;",
		}, []string{"expand/001_m1.sql:3: drop-column"}},
		{"add column not null with default", []string{"ALTER TABLE users ADD COLUMN active boolean NOT NULL DEFAULT true;"}, nil},
		{"create table and everything on it", []string{
			"CREATE TABLE orders (id bigint PRIMARY KEY, user_id bigint NOT NULL);\nCREATE INDEX orders_user ON orders (user_id);",
			"ALTER TABLE orders ADD COLUMN total numeric NOT NULL;\nALTER TABLE orders ADD CONSTRAINT fk FOREIGN KEY (user_id) REFERENCES users (id);\nALTER TABLE orders RENAME COLUMN total TO amount;\nDROP INDEX orders_user;\nTRUNCATE orders;",
		}, nil},
		{"create index concurrently", []string{"---- tern: disable-tx ----\nCREATE INDEX CONCURRENTLY users_email ON users (email);"}, nil},
		{"create unique index concurrently", []string{"---- tern: disable-tx ----\nCREATE UNIQUE INDEX CONCURRENTLY IF NOT EXISTS users_email ON users (email);"}, nil},
		{"drop index concurrently", []string{"---- tern: disable-tx ----\nDROP INDEX CONCURRENTLY IF EXISTS users_old;"}, nil},
		{"check not valid", []string{"ALTER TABLE users ADD CONSTRAINT email_set CHECK (email IS NOT NULL) NOT VALID;"}, nil},
		{"foreign key not valid", []string{"ALTER TABLE orders ADD CONSTRAINT orders_user FOREIGN KEY (user_id) REFERENCES users (id) NOT VALID;"}, nil},
		{"validate constraint", []string{"ALTER TABLE users VALIDATE CONSTRAINT email_set;"}, nil},
		{"unique using index", []string{"ALTER TABLE users ADD CONSTRAINT users_email_key UNIQUE USING INDEX users_email;"}, nil},
		{"drop not null and defaults", []string{"ALTER TABLE users ALTER COLUMN name DROP NOT NULL, ALTER COLUMN active SET DEFAULT true;"}, nil},
		{"dml and functions", []string{"UPDATE users SET email = lower(name) WHERE email IS NULL;\nCREATE OR REPLACE FUNCTION f() RETURNS int LANGUAGE sql AS $$ SELECT 1 $$;\nCREATE VIEW v AS SELECT 1;"}, nil},

		// What is refused, with the statement's line.
		{"drop table after comments", []string{"CREATE TABLE users2 (id int);\n\n-- the old one goes\nDROP TABLE legacy;"},
			[]string{"expand/001_m1.sql:4: drop-table"}},
		{"drop view", []string{"DROP VIEW IF EXISTS report;"}, []string{"expand/001_m1.sql:1: drop-table"}},
		{"drop materialized view", []string{"DROP MATERIALIZED VIEW report;"}, []string{"expand/001_m1.sql:1: drop-table"}},
		{"drop sequence", []string{"DROP SEQUENCE s;"}, []string{"expand/001_m1.sql:1: drop-table"}},
		{"drop function", []string{"DROP FUNCTION f(int);"}, []string{"expand/001_m1.sql:1: drop-object"}},
		{"drop type", []string{"DROP TYPE mood;"}, []string{"expand/001_m1.sql:1: drop-object"}},
		{"drop trigger", []string{"DROP TRIGGER t ON users;"}, []string{"expand/001_m1.sql:1: drop-object"}},
		{"drop two tables", []string{"DROP TABLE a, b;"}, []string{"expand/001_m1.sql:1: drop-table", "expand/001_m1.sql:1: drop-table"}},
		{"drop column after block comments", []string{"/* expand */\nALTER TABLE users ADD COLUMN email text;\n\n-- bye\n/* multi\n   line /* nested */ comment */\nALTER TABLE users\n  DROP COLUMN legacy_flag;"},
			[]string{"expand/001_m1.sql:7: drop-column"}},
		{"rename column", []string{"ALTER TABLE users RENAME COLUMN name TO full_name;"}, []string{"expand/001_m1.sql:1: rename"}},
		{"rename table", []string{"ALTER TABLE users RENAME TO people;"}, []string{"expand/001_m1.sql:1: rename"}},
		{"rename constraint", []string{"ALTER TABLE users RENAME CONSTRAINT a TO b;"}, []string{"expand/001_m1.sql:1: rename"}},
		{"alter column type", []string{"ALTER TABLE users ALTER COLUMN id TYPE bigint;"}, []string{"expand/001_m1.sql:1: alter-column-type"}},
		{"set not null", []string{"ALTER TABLE users ALTER COLUMN email SET NOT NULL;"}, []string{"expand/001_m1.sql:1: set-not-null"}},
		{"add column not null", []string{"SELECT 1;\nALTER TABLE users ADD COLUMN tenant int NOT NULL;"}, []string{"expand/001_m1.sql:2: add-column-not-null-without-default"}},
		{"add column primary key", []string{"ALTER TABLE users ADD COLUMN uid int PRIMARY KEY;"},
			[]string{"expand/001_m1.sql:1: add-constraint-validated", "expand/001_m1.sql:1: add-column-not-null-without-default"}},
		{"add column references", []string{"ALTER TABLE orders ADD COLUMN user_id int REFERENCES users (id);"}, []string{"expand/001_m1.sql:1: add-constraint-validated"}},
		{"add check", []string{"ALTER TABLE users ADD CONSTRAINT c CHECK (id > 0);"}, []string{"expand/001_m1.sql:1: add-constraint-validated"}},
		{"add foreign key", []string{"ALTER TABLE orders ADD CONSTRAINT f FOREIGN KEY (user_id) REFERENCES users (id);"}, []string{"expand/001_m1.sql:1: add-constraint-validated"}},
		{"add unique", []string{"ALTER TABLE users ADD CONSTRAINT u UNIQUE (email);"}, []string{"expand/001_m1.sql:1: add-constraint-validated"}},
		{"add primary key", []string{"ALTER TABLE users ADD PRIMARY KEY (id);"}, []string{"expand/001_m1.sql:1: add-constraint-validated"}},
		{"create index", []string{"-- speed up lookups\nCREATE INDEX users_email ON users (email);"}, []string{"expand/001_m1.sql:2: index-not-concurrent"}},
		{"drop index", []string{"DROP INDEX users_email;"}, []string{"expand/001_m1.sql:1: drop-index-not-concurrent"}},
		{"truncate", []string{"TRUNCATE sessions;"}, []string{"expand/001_m1.sql:1: truncate"}},
		{"two statements on one line", []string{"SELECT 1; DROP TABLE t;"}, []string{"expand/001_m1.sql:1: drop-table"}},
		{"disable-tx line first", []string{"---- tern: disable-tx ----\nDROP INDEX i;"}, []string{"expand/001_m1.sql:2: drop-index-not-concurrent"}},
		{"dashes in a string", []string{"INSERT INTO t VALUES ('-- not a comment;');\n\nDROP TABLE t;"}, []string{"expand/001_m1.sql:3: drop-table"}},
		{"several in one alter", []string{"ALTER TABLE users\n  DROP COLUMN a,\n  ALTER COLUMN b TYPE bigint;"},
			[]string{"expand/001_m1.sql:1: drop-column", "expand/001_m1.sql:1: alter-column-type"}},
		{"across files", []string{"ALTER TABLE users ADD COLUMN email text;", "-- 2\n\nALTER TABLE users DROP COLUMN name;\nDROP TABLE x;"},
			[]string{"expand/002_m2.sql:3: drop-column", "expand/002_m2.sql:4: drop-table"}},
		{"a table created in a later file is not new before", []string{"CREATE INDEX i ON later (a);", "CREATE TABLE later (a int);"},
			[]string{"expand/001_m1.sql:1: index-not-concurrent"}},
		{"schema-qualified", []string{"CREATE TABLE app.t (a int);\nCREATE INDEX i ON app.t (a);\nCREATE INDEX j ON public.t (a);"},
			[]string{"expand/001_m1.sql:3: index-not-concurrent"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, reasons, _ := findingsOf(t, nil, tc.sqls...)
			if !slices.Equal(got, tc.want) {
				t.Errorf("findings\n got %q\nwant %q", got, tc.want)
			}
			for _, r := range reasons {
				if strings.Contains(r, "\n") {
					t.Errorf("finding is not one line: %q", r)
				}
			}
		})
	}
}

func TestCheckReasons(t *testing.T) {
	_, reasons, _ := findingsOf(t, nil, "SELECT 1;\n\nALTER TABLE users DROP COLUMN legacy_flag;")
	want := "expand/001_m1.sql:3: drop-column: DROP COLUMN breaks blue, which still reads legacy_flag; move it to contract/"
	if len(reasons) != 1 || reasons[0] != want {
		t.Errorf("got %q, want %q", reasons, want)
	}
	_, reasons, _ = findingsOf(t, nil, "CREATE INDEX i ON users (email);")
	if len(reasons) != 1 || !strings.Contains(reasons[0], "CREATE INDEX CONCURRENTLY") || !strings.Contains(reasons[0], "disable-tx") {
		t.Errorf("index reason %q does not say what to do", reasons)
	}
}

func TestCheckWaiver(t *testing.T) {
	waive := map[waiverKey]Waiver{
		{"002_m2.sql", CheckDropColumn}: {File: "002_m2.sql", Check: CheckDropColumn, Reason: "legacy_flag unused since 1.2"},
	}
	got, _, waived := findingsOf(t, waive,
		"ALTER TABLE users DROP COLUMN a;",
		"ALTER TABLE users DROP COLUMN legacy_flag;\nALTER TABLE users DROP COLUMN other_flag;\nDROP TABLE t;")
	if want := []string{"expand/001_m1.sql:1: drop-column", "expand/002_m2.sql:3: drop-table"}; !slices.Equal(got, want) {
		t.Errorf("refused %q, want %q", got, want)
	}
	if want := []string{"002_m2.sql: drop-column (legacy_flag unused since 1.2)"}; !slices.Equal(waived, want) {
		t.Errorf("waived %q, want %q", waived, want)
	}
}

func TestParseErrorLine(t *testing.T) {
	_, err := parseAll(expandFiles("SELECT 1;\n-- é\nSELEC 2;"))
	if err == nil || !errors.Is(err, providers.ErrInvalid) || !strings.HasPrefix(err.Error(), "expand/001_m1.sql:3: syntax error") {
		t.Errorf("got %v, want an Invalid error at expand/001_m1.sql:3", err)
	}
}

func TestStatementStart(t *testing.T) {
	for _, tc := range []struct {
		text string
		want int
	}{
		{"SELECT 1", 0},
		{"  \n\tSELECT", 4},
		{"-- a\n-- b\nSELECT", 10},
		{"/* a /* b */ c */ SELECT", 18},
		{"-- only a comment", 17},
		{"/* unterminated", 15},
	} {
		if got := statementStart(tc.text, 0); got != tc.want {
			t.Errorf("statementStart(%q) = %d, want %d", tc.text, got, tc.want)
		}
	}
	if byteOffset("é\nx", 3) != 3 {
		t.Errorf("byteOffset counts characters, not bytes")
	}
}

func TestVersionTable(t *testing.T) {
	if got, want := versionTable("my-app", "expand"), `"cutover"."version_my-app_expand"`; got != want {
		t.Errorf("got %s, want %s", got, want)
	}
	a := versionTable(strings.Repeat("a", 70)+"-one", "contract")
	b := versionTable(strings.Repeat("a", 70)+"-two", "contract")
	if a == b || len(a) > len(`"cutover".""`)+63 {
		t.Errorf("long app names: %s and %s", a, b)
	}
	if !strings.HasSuffix(a, `_contract"`) {
		t.Errorf("long app name lost its phase: %s", a)
	}
}
