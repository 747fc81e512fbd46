package postgres

import (
	"fmt"
	"strings"

	pg_query "github.com/pganalyze/pg_query_go/v6"
	pgquery "github.com/wasilibs/go-pgquery"
	"github.com/wasilibs/go-pgquery/parser"

	"github.com/cutoverhq/cutover/providers"
)

// The expand-safety checks. Each refuses, in an expand migration, statements
// that break the version still serving (blue) or lock a production table for
// long. Statements on a table that the same run's expand migrations create
// earlier are not checked: blue does not know that table, and it is empty.
const (
	// CheckDropTable refuses DROP TABLE, VIEW, MATERIALIZED VIEW, FOREIGN TABLE
	// and SEQUENCE: blue may still read them.
	CheckDropTable = "drop-table"
	// CheckDropObject refuses any other DROP (function, type, schema, trigger,
	// ...), except DROP INDEX CONCURRENTLY.
	CheckDropObject = "drop-object"
	// CheckDropColumn refuses ALTER TABLE ... DROP COLUMN.
	CheckDropColumn = "drop-column"
	// CheckRename refuses every RENAME (table, column, constraint, ...).
	CheckRename = "rename"
	// CheckAlterColumnType refuses ALTER COLUMN ... TYPE.
	CheckAlterColumnType = "alter-column-type"
	// CheckSetNotNull refuses ALTER COLUMN ... SET NOT NULL.
	CheckSetNotNull = "set-not-null"
	// CheckAddColumnNotNull refuses ADD COLUMN ... NOT NULL (or PRIMARY KEY)
	// without a DEFAULT.
	CheckAddColumnNotNull = "add-column-not-null-without-default"
	// CheckAddConstraintValidated refuses ADD CONSTRAINT CHECK or FOREIGN KEY
	// without NOT VALID, UNIQUE, PRIMARY KEY or EXCLUDE without USING INDEX,
	// and the same constraints written on an added column.
	CheckAddConstraintValidated = "add-constraint-validated"
	// CheckIndexNotConcurrent refuses CREATE INDEX without CONCURRENTLY.
	CheckIndexNotConcurrent = "index-not-concurrent"
	// CheckDropIndexNotConcurrent refuses DROP INDEX without CONCURRENTLY.
	CheckDropIndexNotConcurrent = "drop-index-not-concurrent"
	// CheckTruncate refuses TRUNCATE.
	CheckTruncate = "truncate"
)

// Checks lists the expand-safety checks, as waivers name them.
var Checks = []string{
	CheckDropTable, CheckDropObject, CheckDropColumn, CheckRename,
	CheckAlterColumnType, CheckSetNotNull, CheckAddColumnNotNull,
	CheckAddConstraintValidated, CheckIndexNotConcurrent,
	CheckDropIndexNotConcurrent, CheckTruncate,
}

// parsed is an expand migration's statements.
type parsed struct {
	m     *migration
	stmts []*pg_query.RawStmt
}

// parseAll parses expand migrations with PostgreSQL's parser.
func parseAll(ms []*migration) ([]parsed, error) {
	out := make([]parsed, 0, len(ms))
	for _, m := range ms {
		// PostgreSQL's own parser (libpg_query) compiled to WebAssembly and
		// run by wazero: the same parse trees as pg_query_go, without cgo, so
		// that every binary builds with CGO_ENABLED=0.
		res, err := pgquery.Parse(m.up)
		if err != nil {
			line := 0
			if pe, ok := err.(*parser.Error); ok && pe.Cursorpos > 0 {
				line = lineAt(m.up, byteOffset(m.up, pe.Cursorpos))
			}
			return nil, providers.Invalid("%s: %v", at(m, line), err)
		}
		out = append(out, parsed{m: m, stmts: res.Stmts})
	}
	return out, nil
}

// finding is one statement a check refuses.
type finding struct {
	m      *migration
	line   int
	check  string
	reason string
}

func (f finding) String() string {
	return fmt.Sprintf("%s: %s: %s", at(f.m, f.line), f.check, f.reason)
}

// checker walks the pending expand migrations in order, remembering the
// tables (and their indexes) they create, which blue does not use.
type checker struct {
	created  map[string]bool // schema.table
	newIndex map[string]bool // schema.index of created tables' indexes
	findings []finding
	cur      *migration
	line     int
}

// check runs the expand-safety checks over the migrations about to be
// applied, and returns the findings that no waiver covers, and the waivers
// used, as "<file>: <check> (<reason>)".
func check(ps []parsed, waive map[waiverKey]Waiver) (refused []finding, waived []string) {
	c := &checker{created: map[string]bool{}, newIndex: map[string]bool{}}
	for _, p := range ps {
		c.cur = p.m
		for _, s := range p.stmts {
			c.line = lineAt(p.m.up, statementStart(p.m.up, int(s.StmtLocation)))
			c.stmt(s.Stmt)
		}
	}
	used := map[waiverKey]bool{}
	for _, f := range c.findings {
		k := waiverKey{f.m.name, f.check}
		w, ok := waive[k]
		if !ok {
			refused = append(refused, f)
			continue
		}
		if !used[k] {
			used[k] = true
			waived = append(waived, fmt.Sprintf("%s: %s (%s)", w.File, w.Check, w.Reason))
		}
	}
	return refused, waived
}

func (c *checker) add(check, format string, args ...any) {
	c.findings = append(c.findings, finding{m: c.cur, line: c.line, check: check, reason: fmt.Sprintf(format, args...)})
}

// relKey names a table as schema.table; an unqualified name is taken as
// public's (the usual search_path).
func relKey(schema, name string) string {
	if schema == "" {
		schema = "public"
	}
	return schema + "." + name
}

func rangeVarKey(rv *pg_query.RangeVar) string {
	if rv == nil {
		return ""
	}
	return relKey(rv.Schemaname, rv.Relname)
}

func rangeVarName(rv *pg_query.RangeVar) string {
	if rv == nil {
		return "?"
	}
	if rv.Schemaname != "" {
		return rv.Schemaname + "." + rv.Relname
	}
	return rv.Relname
}

// nameList reads a DROP's object name ([schema, name] or [name]).
func nameList(n *pg_query.Node) (schema, name string) {
	var parts []string
	if l := n.GetList(); l != nil {
		for _, it := range l.Items {
			parts = append(parts, it.GetString_().GetSval())
		}
	} else if s := n.GetString_(); s != nil {
		parts = []string{s.Sval}
	}
	switch len(parts) {
	case 0:
		return "", "?"
	case 1:
		return "", parts[0]
	default:
		return parts[len(parts)-2], parts[len(parts)-1]
	}
}

func displayName(schema, name string) string {
	if schema != "" {
		return schema + "." + name
	}
	return name
}

func (c *checker) stmt(n *pg_query.Node) {
	switch {
	// A table created here is new: blue does not use it, so what follows may
	// change it freely. IF NOT EXISTS does not make it new: the table may be
	// blue's, already there.
	case n.GetCreateStmt() != nil:
		if !n.GetCreateStmt().IfNotExists {
			c.created[rangeVarKey(n.GetCreateStmt().Relation)] = true
		}
	case n.GetCreateTableAsStmt() != nil:
		if into := n.GetCreateTableAsStmt().Into; into != nil && !n.GetCreateTableAsStmt().IfNotExists {
			c.created[rangeVarKey(into.Rel)] = true
		}
	case n.GetSelectStmt() != nil:
		if into := n.GetSelectStmt().IntoClause; into != nil {
			c.created[rangeVarKey(into.Rel)] = true
		}
	case n.GetIndexStmt() != nil:
		c.index(n.GetIndexStmt())
	case n.GetDropStmt() != nil:
		c.drop(n.GetDropStmt())
	case n.GetRenameStmt() != nil:
		c.rename(n.GetRenameStmt())
	case n.GetAlterTableStmt() != nil:
		c.alterTable(n.GetAlterTableStmt())
	case n.GetTruncateStmt() != nil:
		var old []string
		for _, r := range n.GetTruncateStmt().Relations {
			if rv := r.GetRangeVar(); rv != nil && !c.created[rangeVarKey(rv)] {
				old = append(old, rangeVarName(rv))
			}
		}
		if len(old) > 0 {
			c.add(CheckTruncate, "TRUNCATE %s deletes rows that blue still serves and locks the table against reads and writes; move it to contract/", strings.Join(old, ", "))
		}
	}
}

func (c *checker) index(s *pg_query.IndexStmt) {
	table := rangeVarKey(s.Relation)
	if c.created[table] {
		if s.Idxname != "" {
			schema := s.Relation.Schemaname
			c.newIndex[relKey(schema, s.Idxname)] = true
		}
		return
	}
	if !s.Concurrent {
		c.add(CheckIndexNotConcurrent, "CREATE INDEX on %s without CONCURRENTLY blocks writes to it while the index builds; use CREATE INDEX CONCURRENTLY, in a file with the line ---- tern: disable-tx ----", rangeVarName(s.Relation))
	}
}

func (c *checker) drop(s *pg_query.DropStmt) {
	kind := objectWords(s.RemoveType)
	for _, o := range s.Objects {
		schema, name := nameList(o)
		switch s.RemoveType {
		case pg_query.ObjectType_OBJECT_INDEX:
			if !s.Concurrent && !c.newIndex[relKey(schema, name)] {
				c.add(CheckDropIndexNotConcurrent, "DROP INDEX %s without CONCURRENTLY locks its table against reads and writes; use DROP INDEX CONCURRENTLY, in a file with the line ---- tern: disable-tx ----", displayName(schema, name))
			}
		case pg_query.ObjectType_OBJECT_TABLE, pg_query.ObjectType_OBJECT_VIEW, pg_query.ObjectType_OBJECT_MATVIEW,
			pg_query.ObjectType_OBJECT_FOREIGN_TABLE, pg_query.ObjectType_OBJECT_SEQUENCE:
			if !c.created[relKey(schema, name)] {
				c.add(CheckDropTable, "DROP %s breaks blue, which may still use %s; move it to contract/", kind, displayName(schema, name))
			}
		default:
			c.add(CheckDropObject, "DROP %s breaks blue, which may still use %s; move it to contract/", kind, dropObjectName(s.RemoveType, o))
		}
	}
}

// dropObjectName names a dropped object that is not a relation, as far as
// its node shows it.
func dropObjectName(t pg_query.ObjectType, n *pg_query.Node) string {
	switch {
	case n.GetObjectWithArgs() != nil:
		var parts []string
		for _, it := range n.GetObjectWithArgs().Objname {
			parts = append(parts, it.GetString_().GetSval())
		}
		return strings.Join(parts, ".") + "()"
	case n.GetTypeName() != nil:
		var parts []string
		for _, it := range n.GetTypeName().Names {
			parts = append(parts, it.GetString_().GetSval())
		}
		return strings.Join(parts, ".")
	case n.GetList() != nil:
		// [table, trigger] for triggers, rules and policies; [schema, name] otherwise.
		var parts []string
		for _, it := range n.GetList().Items {
			parts = append(parts, it.GetString_().GetSval())
		}
		if t == pg_query.ObjectType_OBJECT_TRIGGER || t == pg_query.ObjectType_OBJECT_RULE || t == pg_query.ObjectType_OBJECT_POLICY {
			if len(parts) >= 2 {
				return parts[len(parts)-1] + " on " + strings.Join(parts[:len(parts)-1], ".")
			}
		}
		return strings.Join(parts, ".")
	case n.GetString_() != nil:
		return n.GetString_().Sval
	}
	return "it"
}

// objectWords spells an object type as SQL does (OBJECT_MATVIEW: MATERIALIZED VIEW).
func objectWords(t pg_query.ObjectType) string {
	switch t {
	case pg_query.ObjectType_OBJECT_MATVIEW:
		return "MATERIALIZED VIEW"
	case pg_query.ObjectType_OBJECT_FOREIGN_TABLE:
		return "FOREIGN TABLE"
	case pg_query.ObjectType_OBJECT_TABCONSTRAINT:
		return "CONSTRAINT"
	case pg_query.ObjectType_OBJECT_FDW:
		return "FOREIGN DATA WRAPPER"
	case pg_query.ObjectType_OBJECT_FOREIGN_SERVER:
		return "SERVER"
	case pg_query.ObjectType_OBJECT_STATISTIC_EXT:
		return "STATISTICS"
	case pg_query.ObjectType_OBJECT_EVENT_TRIGGER:
		return "EVENT TRIGGER"
	}
	w := strings.TrimPrefix(t.String(), "OBJECT_")
	return strings.ReplaceAll(w, "_", " ")
}

func (c *checker) rename(s *pg_query.RenameStmt) {
	if s.Relation != nil && c.created[rangeVarKey(s.Relation)] {
		if s.RenameType == pg_query.ObjectType_OBJECT_TABLE {
			c.created[relKey(s.Relation.Schemaname, s.Newname)] = true
		}
		return
	}
	var what string
	switch s.RenameType {
	case pg_query.ObjectType_OBJECT_COLUMN, pg_query.ObjectType_OBJECT_ATTRIBUTE:
		what = fmt.Sprintf("column %s.%s to %s", rangeVarName(s.Relation), s.Subname, s.Newname)
	case pg_query.ObjectType_OBJECT_TABCONSTRAINT, pg_query.ObjectType_OBJECT_TRIGGER, pg_query.ObjectType_OBJECT_POLICY, pg_query.ObjectType_OBJECT_RULE:
		what = fmt.Sprintf("%s %s on %s to %s", strings.ToLower(objectWords(s.RenameType)), s.Subname, rangeVarName(s.Relation), s.Newname)
	default:
		old := rangeVarName(s.Relation)
		if s.Relation == nil {
			old = dropObjectName(s.RenameType, s.Object)
		}
		what = fmt.Sprintf("%s %s to %s", strings.ToLower(objectWords(s.RenameType)), old, s.Newname)
	}
	c.add(CheckRename, "renaming %s breaks blue, which still uses the old name; add the new one in expand/ and drop the old one in contract/", what)
}

func (c *checker) alterTable(s *pg_query.AlterTableStmt) {
	if s.Objtype != pg_query.ObjectType_OBJECT_TABLE && s.Objtype != pg_query.ObjectType_OBJECT_FOREIGN_TABLE {
		return
	}
	if c.created[rangeVarKey(s.Relation)] {
		return
	}
	table := rangeVarName(s.Relation)
	for _, n := range s.Cmds {
		cmd := n.GetAlterTableCmd()
		if cmd == nil {
			continue
		}
		switch cmd.Subtype {
		case pg_query.AlterTableType_AT_DropColumn:
			c.add(CheckDropColumn, "DROP COLUMN breaks blue, which still reads %s; move it to contract/", cmd.Name)
		case pg_query.AlterTableType_AT_AlterColumnType:
			c.add(CheckAlterColumnType, "changing the type of %s.%s can break blue and rewrites the table under an exclusive lock; add a new column in expand/ and drop the old one in contract/", table, cmd.Name)
		case pg_query.AlterTableType_AT_SetNotNull:
			c.add(CheckSetNotNull, "SET NOT NULL on %s.%s scans the table under an exclusive lock and fails blue's writes that leave it empty; add CHECK (%s IS NOT NULL) NOT VALID and VALIDATE it in a later migration, or set it in contract/", table, cmd.Name, cmd.Name)
		case pg_query.AlterTableType_AT_AddColumn:
			c.addColumn(table, cmd.Def.GetColumnDef())
		case pg_query.AlterTableType_AT_AddConstraint:
			c.addConstraint(table, cmd.Def.GetConstraint())
		}
	}
}

func (c *checker) addColumn(table string, col *pg_query.ColumnDef) {
	if col == nil {
		return
	}
	var notNull, hasValue bool
	for _, n := range col.Constraints {
		k := n.GetConstraint()
		if k == nil {
			continue
		}
		switch k.Contype {
		case pg_query.ConstrType_CONSTR_NOTNULL:
			notNull = true
		case pg_query.ConstrType_CONSTR_PRIMARY:
			notNull = true
			c.add(CheckAddConstraintValidated, "ADD COLUMN %s PRIMARY KEY builds an index on %s under a lock that blocks reads and writes; add the column, CREATE UNIQUE INDEX CONCURRENTLY, then ADD PRIMARY KEY USING INDEX", col.Colname, table)
		case pg_query.ConstrType_CONSTR_UNIQUE:
			c.add(CheckAddConstraintValidated, "ADD COLUMN %s UNIQUE builds an index on %s under a lock that blocks reads and writes; add the column, CREATE UNIQUE INDEX CONCURRENTLY, then ADD CONSTRAINT ... UNIQUE USING INDEX", col.Colname, table)
		case pg_query.ConstrType_CONSTR_CHECK, pg_query.ConstrType_CONSTR_FOREIGN:
			c.add(CheckAddConstraintValidated, "ADD COLUMN %s with a %s constraint checks every row of %s under a lock that blocks writes; add the column, then the constraint NOT VALID, and VALIDATE it in a later migration", col.Colname, constraintWords(k.Contype), table)
		case pg_query.ConstrType_CONSTR_DEFAULT, pg_query.ConstrType_CONSTR_IDENTITY, pg_query.ConstrType_CONSTR_GENERATED:
			hasValue = true
		}
	}
	if notNull && !hasValue {
		c.add(CheckAddColumnNotNull, "ADD COLUMN %s NOT NULL without DEFAULT fails on %s's existing rows and breaks blue's INSERTs, which do not set it; give it a DEFAULT, or add it nullable", col.Colname, table)
	}
}

func (c *checker) addConstraint(table string, k *pg_query.Constraint) {
	if k == nil {
		return
	}
	name := k.Conname
	if name == "" {
		name = "(unnamed)"
	}
	switch k.Contype {
	case pg_query.ConstrType_CONSTR_CHECK, pg_query.ConstrType_CONSTR_FOREIGN:
		if !k.SkipValidation {
			c.add(CheckAddConstraintValidated, "ADD CONSTRAINT %s %s checks every row of %s under a lock that blocks writes; add it NOT VALID, and VALIDATE CONSTRAINT in a later migration", name, constraintWords(k.Contype), table)
		}
	case pg_query.ConstrType_CONSTR_UNIQUE, pg_query.ConstrType_CONSTR_PRIMARY:
		if k.Indexname == "" {
			c.add(CheckAddConstraintValidated, "ADD CONSTRAINT %s %s builds an index on %s under a lock that blocks reads and writes; CREATE UNIQUE INDEX CONCURRENTLY first, then ADD CONSTRAINT ... %s USING INDEX", name, constraintWords(k.Contype), table, constraintWords(k.Contype))
		}
	case pg_query.ConstrType_CONSTR_EXCLUSION:
		c.add(CheckAddConstraintValidated, "ADD CONSTRAINT %s EXCLUDE builds an index on %s under a lock that blocks reads and writes", name, table)
	}
}

func constraintWords(t pg_query.ConstrType) string {
	switch t {
	case pg_query.ConstrType_CONSTR_CHECK:
		return "CHECK"
	case pg_query.ConstrType_CONSTR_FOREIGN:
		return "FOREIGN KEY"
	case pg_query.ConstrType_CONSTR_UNIQUE:
		return "UNIQUE"
	case pg_query.ConstrType_CONSTR_PRIMARY:
		return "PRIMARY KEY"
	}
	return strings.TrimPrefix(t.String(), "CONSTR_")
}
