package spec

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"reflect"
	"regexp"
	"strconv"

	"gopkg.in/yaml.v3"
)

// ProviderCheck lets the caller check a provider's type and settings (kind is
// environment, traffic, migrations, analysis or notifications). May be nil.
type ProviderCheck func(kind string, p Provider) error

// Parse reads a release spec strictly, fills in the defaults and validates the
// result. It returns the resolved Release (the release workflow's input) and, when
// the spec is wrong, an error of type Problems listing everything wrong with it,
// in the order it appears in the file.
func Parse(data []byte, check ProviderCheck) (Release, error) {
	return parse(data, Release.withDefaults, func(r Release) Problems { return r.Validate(check) })
}

// parse decodes data into a Release, fills it in with fill (given whether the
// file wrote a field path) and reports the decoding problems, then those check
// finds that the decoding did not already say, in file order.
func parse(data []byte, fill func(r Release, written func(path string) bool) Release, check func(Release) Problems) (Release, error) {
	var r Release
	if len(data) > MaxSpecBytes {
		return r, tooBig(fmt.Sprintf("%d KiB", (len(data)+1023)/1024))
	}
	root, ps := parseDocument(data)
	if len(ps) > 0 {
		return r, ps
	}
	d := newDecoder(root)
	d.decode(root, reflect.ValueOf(&r).Elem(), "", 0)
	if d.spent {
		// What was decoded is a fragment; its validation would only add noise.
		return r, locate(d.problems, d.found, d.at)
	}
	r = fill(r, d.written)

	all := append(Problems{}, d.problems...)
	for _, p := range check(r) {
		if !shadowed(p, d.problems) {
			all = append(all, p)
		}
	}
	if len(all) == 0 {
		return r, nil
	}
	return r, locate(all, d.found, d.at)
}

// tooBig is the problem of a spec over MaxSpecBytes; size says how big it is.
func tooBig(size string) Problems {
	return Problems{{Message: fmt.Sprintf("the spec is %s; at most %d KiB", size, MaxSpecBytes>>10)}}
}

// ParseFile reads and parses a release spec file; "-" reads standard input. A
// file that cannot be read is a plain error naming it; a wrong spec is Problems.
func ParseFile(path string, check ProviderCheck) (Release, error) {
	data, err := ReadFile(path)
	if err != nil {
		return Release{}, err
	}
	return Parse(data, check)
}

// ReadFile reads a spec, request or app definition file; "-" reads standard
// input. It reads at most one byte more than MaxSpecBytes, so that a huge file
// or an endless pipe is refused (as Problems) without being read.
func ReadFile(path string) ([]byte, error) {
	in, name := os.Stdin, "from standard input"
	if path != "-" {
		f, err := os.Open(path)
		if err != nil {
			return nil, fmt.Errorf("cannot read the release spec %s: %w", path, unwrapPathError(err))
		}
		defer f.Close()
		in, name = f, path
	}
	data, err := io.ReadAll(io.LimitReader(in, MaxSpecBytes+1))
	if err != nil {
		return nil, fmt.Errorf("cannot read the release spec %s: %w", name, unwrapPathError(err))
	}
	if len(data) > MaxSpecBytes {
		if fi, err := in.Stat(); err == nil && fi.Mode().IsRegular() {
			return nil, tooBig(fmt.Sprintf("%d KiB", (fi.Size()+1023)/1024))
		}
		return nil, tooBig(fmt.Sprintf("over %d KiB", MaxSpecBytes>>10))
	}
	return data, nil
}

// unwrapPathError drops os's "open <path>: " so that the path is named once.
func unwrapPathError(err error) error {
	var pe *os.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}

// shadowed reports whether a validation problem only repeats what a decoding
// problem already said: same path, or inside a field that could not be decoded.
func shadowed(p Problem, decoding Problems) bool {
	for _, q := range decoding {
		if within(p.Path, q.Path) && (q.Path != "" || p.Path == "") {
			return true
		}
	}
	return false
}

var yamlLine = regexp.MustCompile(`^yaml: line (\d+): (.*)$`)

// parseDocument reads the YAML text into the mapping node of its one document.
func parseDocument(data []byte) (*yaml.Node, Problems) {
	syntax := func(err error) Problems {
		if m := yamlLine.FindStringSubmatch(err.Error()); m != nil {
			line, _ := strconv.Atoi(m[1])
			return Problems{{Line: line, Message: "the YAML is not well-formed: " + m[2]}}
		}
		return Problems{{Message: "the YAML is not well-formed: " + yamlMessage(err)}}
	}
	empty := Problems{{Message: "the spec is empty; write a mapping with app, version, providers and plan"}}

	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, empty
		}
		return nil, syntax(err)
	}
	var extra yaml.Node
	switch err := dec.Decode(&extra); {
	case errors.Is(err, io.EOF):
	case err != nil:
		return nil, syntax(err)
	default:
		return nil, Problems{{Line: extra.Line, Message: "a second YAML document; write one release per file"}}
	}

	root := &doc
	if root.Kind == yaml.DocumentNode {
		if len(root.Content) == 0 {
			return nil, empty
		}
		root = root.Content[0]
	}
	root = resolve(root)
	if isNull(root) {
		return nil, empty
	}
	if root.Kind != yaml.MappingNode {
		return nil, Problems{{Line: root.Line, Message: fmt.Sprintf("the spec must be a mapping with app, version, providers and plan; found %s", describe(root))}}
	}
	return root, nil
}

// UnmarshalYAML reads a step written either as its bare kind name (`- promote`) or
// as a mapping with one kind (`- setWeight: 10`), so that plain yaml.v3 decoding of
// a Release works too. It does not fill in defaults; Parse does.
func (s *Step) UnmarshalYAML(n *yaml.Node) error {
	d := newDecoder(n)
	*s = Step{}
	d.decode(n, reflect.ValueOf(s).Elem(), "step", 0)
	if len(d.problems) > 0 {
		return d.problems
	}
	return nil
}

// UnmarshalYAML reads duration text ("90s", "5m").
func (d *Duration) UnmarshalYAML(n *yaml.Node) error {
	var s string
	if err := n.Decode(&s); err != nil {
		return err
	}
	v, err := ParseDuration(s)
	if err != nil {
		return err
	}
	*d = v
	return nil
}
