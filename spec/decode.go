package spec

import (
	"encoding/json"
	"fmt"
	"reflect"
	"regexp"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"
)

// decoder walks a YAML node tree against the Go types by reflection over their
// yaml tags, decoding as it goes. It never stops at the first problem: every
// unknown field, wrong type and bad duration is recorded with its field path, and
// the rest of the tree is still decoded so that validation can run on it.
type decoder struct {
	problems Problems
	// found holds where each problem is, for sorting.
	found []pos
	// at records where each field path was written.
	at map[string]pos
	// budget is how many more nodes the decoder may visit, counting a node
	// again each time an alias or a merge brings it in again; own is how
	// many the document has, for the message when it runs out.
	budget, own int
	// fields caches fieldsOf: merges bring the same mappings in again and
	// again, up to the budget, and each time their struct's fields are needed.
	fields map[reflect.Type]structFields
	// spent is set once the budget ran out: decoding has stopped, and what was
	// decoded is too incomplete to validate.
	spent bool
}

// newDecoder returns a decoder for the document (or part of one) under root.
func newDecoder(root *yaml.Node) *decoder {
	own := countNodes(root)
	return &decoder{at: map[string]pos{}, own: own, budget: expansionFactor*own + expansionAllowance, fields: map[reflect.Type]structFields{}}
}

// structFields is what fieldsOf returns.
type structFields struct {
	names []string
	index map[string]int
}

func (d *decoder) fieldsOf(t reflect.Type) ([]string, map[string]int) {
	f, ok := d.fields[t]
	if !ok {
		f.names, f.index = fieldsOf(t)
		d.fields[t] = f
	}
	return f.names, f.index
}

// maxDepth bounds the walk; release specs are shallow, and aliases could loop.
const maxDepth = 32

// Aliases and merges let a small document stand for a huge one (a "billion
// laughs"), so the nodes the decoder visits, each alias and merge expanded, may
// be at most expansionFactor times the nodes written plus expansionAllowance:
// enough for any spec that uses anchors to avoid repeating itself, and a
// bound on the time and memory a crafted one takes.
const (
	expansionFactor    = 4
	expansionAllowance = 10000
)

// maxSettingsDepth bounds how deep provider settings may nest; no provider
// needs more, and a deeper alias loop is refused before it costs much.
const maxSettingsDepth = 64

var (
	durationType = reflect.TypeFor[Duration]()
	stepType     = reflect.TypeFor[Step]()
)

func (d *decoder) problem(path string, n *yaml.Node, format string, args ...any) {
	var at pos
	if n != nil {
		at = pos{n.Line, n.Column}
	}
	d.problems = append(d.problems, Problem{Path: path, Line: at.line, Message: fmt.Sprintf(format, args...)})
	d.found = append(d.found, at)
}

func (d *decoder) mark(path string, n *yaml.Node) {
	if _, ok := d.at[path]; !ok {
		d.at[path] = pos{n.Line, n.Column}
	}
}

// written reports whether the file wrote the field at path.
func (d *decoder) written(path string) bool {
	_, ok := d.at[path]
	return ok
}

// countNodes counts the nodes written under n, each alias as one node: what the
// document holds before any alias or merge is expanded. Anchors can only point
// back, but an anchored node may hold an alias to itself, so aliases are not
// followed.
func countNodes(n *yaml.Node) int {
	if n == nil {
		return 0
	}
	c := 1
	if n.Kind != yaml.AliasNode {
		for _, child := range n.Content {
			c += countNodes(child)
		}
	}
	return c
}

// spend takes k nodes from the budget; when it runs out it records the one
// problem, at the field where it ran out, and the decoder stops.
func (d *decoder) spend(path string, n *yaml.Node, k int) bool {
	if d.spent {
		return false
	}
	d.budget -= k
	if d.budget >= 0 {
		return true
	}
	d.spent = true
	d.problem(path, n, "aliases and merges (*name, <<) expand the spec past %d nodes (%d times the %d it has, plus %d); write the repeated parts out instead",
		expansionFactor*d.own+expansionAllowance, expansionFactor, d.own, expansionAllowance)
	return false
}

// spendTree takes from the budget every node under n as yaml.v3 will decode it,
// aliases and merges followed, before n.Decode runs: yaml.v3's own alias check
// starts afresh on each call, so it cannot bound a node used again and again.
func (d *decoder) spendTree(path string, n *yaml.Node, depth int) bool {
	if depth > maxSettingsDepth {
		d.problem(path, n, "nested too deeply; at most %d levels", maxSettingsDepth)
		return false
	}
	if !d.spend(path, n, 1) {
		return false
	}
	if n.Kind == yaml.AliasNode {
		return n.Alias == nil || d.spendTree(path, n.Alias, depth+1)
	}
	for _, child := range n.Content {
		if !d.spendTree(path, child, depth+1) {
			return false
		}
	}
	return true
}

func resolve(n *yaml.Node) *yaml.Node {
	for i := 0; n != nil && n.Kind == yaml.AliasNode && i < maxDepth; i++ {
		n = n.Alias
	}
	return n
}

func isNull(n *yaml.Node) bool {
	return n == nil || (n.Kind == yaml.ScalarNode && n.ShortTag() == "!!null")
}

// describe names what a node holds, for "found ..." messages.
func describe(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.ScalarNode:
		return fmt.Sprintf("%q", n.Value)
	}
	return "nothing"
}

// fieldsOf lists a struct's yaml field names, in declaration order.
func fieldsOf(t reflect.Type) (names []string, index map[string]int) {
	index = map[string]int{}
	for i := range t.NumField() {
		f := t.Field(i)
		if !f.IsExported() {
			continue
		}
		name, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
		if name == "-" {
			continue
		}
		if name == "" {
			name = strings.ToLower(f.Name)
		}
		names = append(names, name)
		index[name] = i
	}
	return names, index
}

// stepKinds lists the step kinds in the order Step declares them.
var stepKinds, stepKindIndex = fieldsOf(stepType)

func (d *decoder) decode(n *yaml.Node, v reflect.Value, path string, depth int) {
	n = resolve(n)
	if depth > maxDepth || (n != nil && n.Kind == yaml.AliasNode) {
		d.problem(path, n, "nested too deeply")
		return
	}
	if !d.spend(path, n, 1) {
		return
	}
	if isNull(n) {
		v.Set(reflect.Zero(v.Type()))
		return
	}
	switch t := v.Type(); {
	case t == durationType:
		d.decodeDuration(n, v, path)
	case t == stepType:
		d.decodeStep(n, v.Addr().Interface().(*Step), path, depth)
	case t.Kind() == reflect.Pointer:
		if v.IsNil() {
			v.Set(reflect.New(t.Elem()))
		}
		d.decode(n, v.Elem(), path, depth+1)
	case t.Kind() == reflect.Struct:
		d.decodeStruct(n, v, path, depth)
	case t.Kind() == reflect.Slice:
		d.decodeSlice(n, v, path, depth)
	case t.Kind() == reflect.Map:
		d.decodeFree(n, v, path)
	case t.Kind() == reflect.String:
		if n.Kind != yaml.ScalarNode {
			d.problem(path, n, "expected text; found %s", describe(n))
			return
		}
		v.SetString(n.Value)
	case t.Kind() == reflect.Int:
		d.decodeInt(n, v, path)
	case t.Kind() == reflect.Bool:
		d.decodeBool(n, v, path)
	default:
		// yaml.v3's own decoding is looser than the spec wants (yes and on
		// for true, 0x10 for 16), so a new kind of field needs a case above.
		d.problem(path, n, "cannot read a %s field; the spec decoder does not know this type", t)
	}
}

// decimal is how a whole number is written: yaml.v3 also reads 0x10, 0o17,
// 010 (octal) and 1_000, which a weight or a count should not be.
var decimal = regexp.MustCompile(`^-?[0-9]+$`)

// quoted reports whether a scalar was written in quotes or as a block: text,
// whatever it says.
func quoted(n *yaml.Node) bool {
	return n.Style&(yaml.DoubleQuotedStyle|yaml.SingleQuotedStyle|yaml.LiteralStyle|yaml.FoldedStyle) != 0
}

func (d *decoder) decodeInt(n *yaml.Node, v reflect.Value, path string) {
	if n.Kind != yaml.ScalarNode || n.ShortTag() != "!!int" || quoted(n) {
		d.problem(path, n, "%s is not a whole number", describe(n))
		return
	}
	if !decimal.MatchString(n.Value) {
		d.problem(path, n, "%s is not a whole number in decimal digits (like 10)", describe(n))
		return
	}
	i, err := strconv.Atoi(n.Value) // only out of range can fail here
	if err != nil {
		d.problem(path, n, "%s is too large", describe(n))
		return
	}
	v.SetInt(int64(i))
}

// decodeBool reads true or false and nothing else: yaml.v3 would also take
// yes, on, y and True, and a typo should not turn approval rules on or off.
func (d *decoder) decodeBool(n *yaml.Node, v reflect.Value, path string) {
	word := n.Kind == yaml.ScalarNode && (n.Value == "true" || n.Value == "false")
	switch {
	case word && n.ShortTag() == "!!bool" && !quoted(n):
		v.SetBool(n.Value == "true")
	case word:
		d.problem(path, n, "%s is text, not true or false; write it without quotes", describe(n))
	default:
		d.problem(path, n, "%s is not true or false", describe(n))
	}
}

func (d *decoder) decodeDuration(n *yaml.Node, v reflect.Value, path string) {
	if n.Kind != yaml.ScalarNode {
		d.problem(path, n, "expected a duration like 90s, 5m or 1h30m; found %s", describe(n))
		return
	}
	dur, err := ParseDuration(n.Value)
	if err != nil {
		d.problem(path, n, "%s", err.Error())
		return
	}
	v.SetInt(int64(dur))
}

func (d *decoder) decodeStruct(n *yaml.Node, v reflect.Value, path string, depth int) {
	d.decodeFields(n, v, path, depth, nil)
}

// decodeFields decodes a mapping into the struct v, leaving alone the fields in
// skip: those that a mapping merging this one (<<: *base) sets itself.
func (d *decoder) decodeFields(n *yaml.Node, v reflect.Value, path string, depth int, skip map[string]bool) {
	// Each mapping a merge brings in again is scanned again, so its keys count.
	if !d.spend(path, n, len(n.Content)/2) {
		return
	}
	names, index := d.fieldsOf(v.Type())
	if n.Kind != yaml.MappingNode {
		d.problem(path, n, "expected a mapping with fields %s; found %s", strings.Join(names, ", "), describe(n))
		return
	}
	// Fields written here win over merged ones, wherever the merge key stands.
	own := map[string]bool{}
	for k := range skip {
		own[k] = true
	}
	var merges []*yaml.Node
	for i := 0; i+1 < len(n.Content); i += 2 {
		key := resolve(n.Content[i])
		if key.Kind == yaml.ScalarNode && key.ShortTag() == "!!merge" {
			merges = append(merges, n.Content[i+1])
		} else if key.Kind == yaml.ScalarNode {
			own[key.Value] = true
		}
	}
	seen := map[string]int{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		key, val := resolve(n.Content[i]), n.Content[i+1]
		if key.Kind == yaml.ScalarNode && key.ShortTag() == "!!merge" {
			continue
		}
		if key.Kind != yaml.ScalarNode {
			d.problem(path, key, "a field name must be text; found %s", describe(key))
			continue
		}
		fp := joinPath(path, key.Value)
		if line, dup := seen[key.Value]; dup {
			d.problem(fp, key, "duplicate field; it is already set on line %d", line)
			continue
		}
		seen[key.Value] = key.Line
		if skip[key.Value] {
			continue
		}
		fi, ok := index[key.Value]
		if !ok {
			known := "none"
			if len(names) > 0 {
				known = strings.Join(names, ", ")
			}
			d.problem(fp, key, "unknown field; known fields: %s", known)
			continue
		}
		d.mark(fp, key)
		d.decode(val, v.Field(fi), fp, depth+1)
	}
	for _, m := range merges {
		d.merge(m, v, path, depth, own)
	}
}

// merge decodes the mappings of a YAML merge key (<<: *base, or <<: [*a, *b]
// where a wins over b) into v, except for the fields in own.
func (d *decoder) merge(n *yaml.Node, v reflect.Value, path string, depth int, own map[string]bool) {
	if depth > maxDepth {
		d.problem(path, n, "nested too deeply")
		return
	}
	n = resolve(n)
	sources := []*yaml.Node{n}
	if n != nil && n.Kind == yaml.SequenceNode {
		sources = n.Content
	}
	for _, m := range sources {
		m = resolve(m)
		if m == nil || m.Kind != yaml.MappingNode {
			d.problem(path, m, "a merge (<<) takes a mapping or a list of mappings")
			continue
		}
		d.decodeFields(m, v, path, depth+1, own)
		for i := 0; i+1 < len(m.Content); i += 2 {
			own[resolve(m.Content[i]).Value] = true
		}
	}
}

func (d *decoder) decodeSlice(n *yaml.Node, v reflect.Value, path string, depth int) {
	if n.Kind != yaml.SequenceNode {
		d.problem(path, n, "expected a list; found %s", describe(n))
		return
	}
	if len(n.Content) == 0 {
		// Empty lists are nil, as after a JSON round trip (omitempty).
		v.Set(reflect.Zero(v.Type()))
		return
	}
	s := reflect.MakeSlice(v.Type(), len(n.Content), len(n.Content))
	for i, item := range n.Content {
		ip := indexPath(path, i)
		d.mark(ip, item)
		d.decode(item, s.Index(i), ip, depth+1)
	}
	v.Set(s)
}

// decodeFree decodes provider settings: free-form, not checked here, but stored
// exactly as a JSON round trip would leave them, since the release workflow's
// input goes through JSON (numbers become float64, empty settings nil).
func (d *decoder) decodeFree(n *yaml.Node, v reflect.Value, path string) {
	if n.Kind != yaml.MappingNode {
		d.problem(path, n, "expected a mapping; found %s", describe(n))
		return
	}
	if !d.spendTree(path, n, 0) {
		return
	}
	var raw any
	if err := n.Decode(&raw); err != nil {
		d.problem(path, n, "%s", yamlMessage(err))
		return
	}
	b, err := json.Marshal(raw)
	if err != nil {
		d.problem(path, n, "settings must be text, numbers, true/false, lists and mappings with text keys")
		return
	}
	m := reflect.New(v.Type())
	if err := json.Unmarshal(b, m.Interface()); err != nil {
		d.problem(path, n, "%s", err.Error())
		return
	}
	if m.Elem().Len() == 0 {
		v.Set(reflect.Zero(v.Type()))
		return
	}
	v.Set(m.Elem())
}

// decodeStep reads one plan step: a bare kind name (`- promote`) or a mapping
// with exactly one key, the kind (`- setWeight: 10`, `- soak: {duration: 5m}`).
// A step with no kind or several kinds is left for validation to report.
func (d *decoder) decodeStep(n *yaml.Node, s *Step, path string, depth int) {
	switch n.Kind {
	case yaml.ScalarNode:
		d.stepKind(n, nil, s, path, depth)
	case yaml.MappingNode:
		if !d.spend(path, n, len(n.Content)/2) {
			return
		}
		seen := map[string]int{}
		for i := 0; i+1 < len(n.Content); i += 2 {
			key := resolve(n.Content[i])
			if key.Kind != yaml.ScalarNode {
				d.problem(path, key, "a step kind must be text; found %s", describe(key))
				continue
			}
			if line, dup := seen[key.Value]; dup {
				d.problem(joinPath(path, key.Value), key, "duplicate field; it is already set on line %d", line)
				continue
			}
			seen[key.Value] = key.Line
			d.stepKind(key, n.Content[i+1], s, path, depth)
		}
	default:
		d.problem(path, n, "expected a step: a kind name (like promote) or a mapping with one kind (like setWeight: 10); found %s", describe(n))
	}
}

// stepKind sets the step field that key names, decoding val (nil for a bare name) into it.
func (d *decoder) stepKind(key, val *yaml.Node, s *Step, path string, depth int) {
	fi, ok := stepKindIndex[key.Value]
	if !ok {
		d.problem(path, key, "unknown step kind %q; known kinds: %s", key.Value, strings.Join(stepKinds, ", "))
		return
	}
	fp := joinPath(path, key.Value)
	d.mark(fp, key)
	f := reflect.ValueOf(s).Elem().Field(fi)
	// The kind is set even when its settings are wrong, so that validation still
	// sees which kind of step this is.
	f.Set(reflect.New(f.Type().Elem()))
	if isNull(resolve(val)) {
		if key.Value == KindSetWeight {
			d.problem(fp, key, "required; write the weight, like setWeight: 10")
		}
		return
	}
	d.decode(val, f.Elem(), fp, depth+1)
}

// yamlMessage strips yaml.v3's prefixes from an error.
func yamlMessage(err error) string {
	msg := err.Error()
	msg = strings.TrimPrefix(msg, "yaml: unmarshal errors:\n  ")
	msg = strings.TrimPrefix(msg, "yaml: ")
	return msg
}
