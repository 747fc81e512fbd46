package spec

import (
	"fmt"
	"sort"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Problem is one thing wrong with a spec, at a field path such as plan[3].setWeight.
type Problem struct {
	// Path is the field path (plan[3].setWeight); "" for the spec as a whole.
	Path string
	// Line is the line in release.yaml, 0 when unknown.
	Line int
	// Message says what is wrong and what to write instead.
	Message string
}

// String formats the problem as "plan[3].setWeight (line 14): 120 is above 100".
// It is one line, whatever the spec held: a field name or a provider's message
// with a control character in it is quoted.
func (p Problem) String() string {
	p.Path, p.Message = Printable(p.Path), Printable(p.Message)
	switch {
	case p.Path == "" && p.Line > 0:
		return fmt.Sprintf("line %d: %s", p.Line, p.Message)
	case p.Path == "":
		return p.Message
	case p.Line > 0:
		return fmt.Sprintf("%s (line %d): %s", p.Path, p.Line, p.Message)
	}
	return p.Path + ": " + p.Message
}

// Printable returns s as it is when every character in it is printable, and
// Go-quoted otherwise ("1.0\x1b[31m", "ok\r", "\u202eabc"). Text from a spec,
// a request or the workflow is shown through it, so that it cannot move a
// terminal's cursor, change its colours, fake a line or turn text around.
// Printable(Printable(s)) is Printable(s).
func Printable(s string) string {
	odd := func(r rune) bool { return r == utf8.RuneError || !unicode.IsPrint(r) }
	if !strings.ContainsFunc(s, odd) {
		return s
	}
	return strconv.Quote(s)
}

// Problems is everything wrong with a spec, in the order it appears in the file.
type Problems []Problem

// Error prints one problem per line.
func (ps Problems) Error() string {
	lines := make([]string, len(ps))
	for i, p := range ps {
		lines[i] = p.String()
	}
	return strings.Join(lines, "\n")
}

// Err returns ps as an error, or nil when there are no problems.
func (ps Problems) Err() error {
	if len(ps) == 0 {
		return nil
	}
	return ps
}

func (ps *Problems) add(path, format string, args ...any) {
	*ps = append(*ps, Problem{Path: path, Message: fmt.Sprintf(format, args...)})
}

// pos is where a path starts in the file.
type pos struct{ line, column int }

// locate gives each problem the line of its path, or of the nearest enclosing
// path that the file wrote (never the whole document: a missing top-level field
// has no line), and sorts problems by where they are in the file. found holds the
// positions of the first problems, those found while reading the file. Problems
// with no line come first, in the order they were found.
func locate(ps Problems, found []pos, at map[string]pos) Problems {
	keys := make([]pos, len(ps))
	for i := range ps {
		if i < len(found) {
			keys[i] = found[i]
			continue
		}
		for p := ps[i].Path; p != ""; p = parentPath(p) {
			if where, ok := at[p]; ok {
				keys[i] = where
				if ps[i].Line == 0 {
					ps[i].Line = where.line
				}
				break
			}
		}
	}
	idx := make([]int, len(ps))
	for i := range idx {
		idx[i] = i
	}
	sort.SliceStable(idx, func(a, b int) bool {
		ka, kb := keys[idx[a]], keys[idx[b]]
		if ka.line != kb.line {
			return ka.line < kb.line
		}
		return ka.column < kb.column
	})
	out := make(Problems, len(ps))
	for i, j := range idx {
		out[i] = ps[j]
	}
	return out
}

// parentPath strips the last element of a field path: plan[3].soak -> plan[3] -> plan -> "".
func parentPath(p string) string {
	if strings.HasSuffix(p, "]") {
		if i := strings.LastIndexByte(p, '['); i >= 0 {
			return p[:i]
		}
	}
	if i := strings.LastIndexByte(p, '.'); i >= 0 {
		return p[:i]
	}
	return ""
}

// within reports whether path p is q or lies inside q.
func within(p, q string) bool {
	return p == q || strings.HasPrefix(p, q+".") || strings.HasPrefix(p, q+"[")
}

func joinPath(base, name string) string {
	if base == "" {
		return name
	}
	return base + "." + name
}

func indexPath(base string, i int) string {
	return fmt.Sprintf("%s[%d]", base, i)
}
