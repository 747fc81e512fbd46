package postgres

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/cutoverhq/cutover/providers"
)

// disableTx is tern's marker for a migration that runs outside a transaction;
// it is tern's own pattern (migrate.disableTxPattern), so that what this
// package thinks and what tern does agree.
var disableTx = regexp.MustCompile(`(?m)^---- tern: disable-tx ----$`)

// downMarker separates tern's up and down migrations; migrations never go
// down here, so the part below it is never run.
const downMarker = "---- create above / drop below ----"

// migration is one migration file.
type migration struct {
	seq  int
	name string // 002_add_col.sql
	path string // expand/002_add_col.sql, for messages
	up   string // the SQL that runs: the file, up to tern's down marker
	down string
	sum  string // hex SHA-256 of the file's bytes
	noTx bool
}

// readPhase reads <dir>/<phase>/*.sql, numbered 1..n. A missing phase folder
// holds no migrations; a missing dir is a configuration error.
func readPhase(dir, phase string) ([]*migration, error) {
	if st, err := os.Stat(dir); err != nil || !st.IsDir() {
		wd, _ := os.Getwd()
		return nil, providers.BadConfig("dir: %s is not a directory (relative to the worker's working directory %s)", dir, wd)
	}
	entries, err := os.ReadDir(filepath.Join(dir, phase))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, providers.BadConfig("dir: read %s: %v", filepath.Join(dir, phase), err)
	}
	var ms []*migration
	for _, e := range entries {
		name := e.Name()
		if e.IsDir() || strings.HasPrefix(name, ".") || !strings.HasSuffix(strings.ToLower(name), ".sql") {
			continue
		}
		path := phase + "/" + name
		match := fileNamePattern.FindStringSubmatch(name)
		if match == nil {
			return nil, providers.Invalid("%s: migration files are named NNN_name.sql, like 001_add_email.sql", path)
		}
		seq, err := strconv.Atoi(match[1])
		if err != nil || seq < 1 {
			return nil, providers.Invalid("%s: migration numbers start at 1", path)
		}
		ms = append(ms, &migration{seq: seq, name: name, path: path})
	}
	slices.SortFunc(ms, func(a, b *migration) int { return a.seq - b.seq })
	for i, m := range ms {
		if i > 0 && ms[i-1].seq == m.seq {
			return nil, providers.Invalid("%s and %s have the same number %d", ms[i-1].path, m.path, m.seq)
		}
		if m.seq != i+1 {
			return nil, providers.Invalid("%s: expected migration number %d next (migrations are numbered 1..n without gaps)", m.path, i+1)
		}
		b, err := os.ReadFile(filepath.Join(dir, phase, m.name))
		if err != nil {
			return nil, providers.BadConfig("dir: %v", err)
		}
		h := sha256.Sum256(b)
		m.sum = hex.EncodeToString(h[:])
		m.up, m.down, _ = strings.Cut(string(b), downMarker)
		m.noTx = disableTx.MatchString(m.up)
		if !utf8.ValidString(m.up) {
			return nil, providers.Invalid("%s is not UTF-8 text", m.path)
		}
		if !hasSQL(m.up) {
			return nil, providers.Invalid("%s holds no SQL", m.path)
		}
	}
	return ms, nil
}

// hasSQL says whether text holds more than whitespace and comments.
func hasSQL(text string) bool {
	return statementStart(text, 0) < len(text)
}

// statementStart skips whitespace and comments (-- to the end of the line,
// and /* */, which nest in PostgreSQL) from off, and returns where the
// statement itself starts.
func statementStart(text string, off int) int {
	for off < len(text) {
		switch {
		case strings.ContainsRune(" \t\r\n\f\v", rune(text[off])):
			off++
		case strings.HasPrefix(text[off:], "--"):
			nl := strings.IndexByte(text[off:], '\n')
			if nl < 0 {
				return len(text)
			}
			off += nl + 1
		case strings.HasPrefix(text[off:], "/*"):
			depth := 0
			for off < len(text) {
				if strings.HasPrefix(text[off:], "/*") {
					depth++
					off += 2
				} else if strings.HasPrefix(text[off:], "*/") {
					depth--
					off += 2
					if depth == 0 {
						break
					}
				} else {
					off++
				}
			}
		default:
			return off
		}
	}
	return off
}

// lineAt is the 1-based line of a byte offset.
func lineAt(text string, off int) int {
	off = min(max(off, 0), len(text))
	return 1 + strings.Count(text[:off], "\n")
}

// byteOffset turns PostgreSQL's 1-based character position (in characters,
// not bytes) into a byte offset in text.
func byteOffset(text string, pos int) int {
	if pos < 1 {
		return 0
	}
	n := 1
	for i := range text {
		if n == pos {
			return i
		}
		n++
	}
	return len(text)
}

// shortSum abbreviates a checksum for messages.
func shortSum(sum string) string {
	if len(sum) > 12 {
		return sum[:12] + "…"
	}
	return sum
}

func names(ms []*migration) []string {
	out := make([]string, 0, len(ms))
	for _, m := range ms {
		out = append(out, m.name)
	}
	return out
}

func at(m *migration, line int) string {
	if line > 0 {
		return fmt.Sprintf("%s:%d", m.path, line)
	}
	return m.path
}
