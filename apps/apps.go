// Package apps holds the app definitions operators keep on the worker: what
// each app's releases may touch (providers and their settings, secret
// references, commands, hosts, migration directories), who may approve, and
// what a release request may choose for itself. A request from any door names
// an app and a version; the definition supplies everything else.
package apps

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/cutoverhq/cutover/spec"
)

// MaxDefinitions bounds how many files a definitions directory may hold.
const MaxDefinitions = 1000

// Definitions are the app definitions of one directory, by app name.
type Definitions struct {
	byApp map[string]spec.Release
}

// Load reads every *.yaml and *.yml file of dir as an app definition (the
// release spec format; the version may be left out) and checks each provider
// with check. A file defines the app it is named after: shop.yaml defines
// shop. Any problem in any file fails the whole load, so that a half-read
// directory never replaces a good one.
func Load(dir string, check spec.ProviderCheck) (*Definitions, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("cannot read the app definitions directory: %w", err)
	}
	d := &Definitions{byApp: map[string]spec.Release{}}
	var problems []string
	for _, e := range entries {
		ext := filepath.Ext(e.Name())
		if e.IsDir() || (ext != ".yaml" && ext != ".yml") || strings.HasPrefix(e.Name(), ".") {
			continue
		}
		if len(d.byApp) >= MaxDefinitions {
			return nil, fmt.Errorf("app definitions %s: more than %d files", dir, MaxDefinitions)
		}
		path := filepath.Join(dir, e.Name())
		rel, err := loadFile(path, check)
		if err != nil {
			problems = append(problems, err.Error())
			continue
		}
		if want := strings.TrimSuffix(e.Name(), ext); rel.App != want {
			problems = append(problems, fmt.Sprintf("%s: app: %q, but the file defines %q (name the file after its app)", path, rel.App, want))
			continue
		}
		if _, dup := d.byApp[rel.App]; dup {
			problems = append(problems, fmt.Sprintf("%s: %s is defined twice (.yaml and .yml)", path, rel.App))
			continue
		}
		rel.Version = ""
		d.byApp[rel.App] = rel
	}
	if len(problems) > 0 {
		return nil, errors.New(strings.Join(problems, "\n"))
	}
	return d, nil
}

func loadFile(path string, check spec.ProviderCheck) (spec.Release, error) {
	data, err := spec.ReadFile(path)
	if err != nil {
		return spec.Release{}, definitionError(path, err)
	}
	rel, err := spec.ParseDefinition(data, check)
	if err != nil {
		return rel, definitionError(path, err)
	}
	return rel, nil
}

// definitionError names the file on each line of a definition's problems.
func definitionError(path string, err error) error {
	var ps spec.Problems
	if !errors.As(err, &ps) {
		return err
	}
	lines := make([]string, len(ps))
	for i, p := range ps {
		lines[i] = path + ": " + p.String()
	}
	return errors.New(strings.Join(lines, "\n"))
}

// Apps lists the defined apps, sorted.
func (d *Definitions) Apps() []string {
	if d == nil {
		return nil
	}
	names := make([]string, 0, len(d.byApp))
	for n := range d.byApp {
		names = append(names, n)
	}
	slices.Sort(names)
	return names
}

// Get returns an app's definition.
func (d *Definitions) Get(app string) (spec.Release, bool) {
	if d == nil {
		return spec.Release{}, false
	}
	r, ok := d.byApp[app]
	return r, ok
}

// Providers calls fn for every provider of every definition: the worker builds
// no provider that is not one of these.
func (d *Definitions) Providers(fn func(spec.Provider)) {
	if d == nil {
		return
	}
	for _, r := range d.byApp {
		p := r.Providers
		fn(p.Environment)
		fn(p.Traffic)
		fn(p.Analysis)
		if p.Migrations != nil {
			fn(*p.Migrations)
		}
		if p.Ledger != nil {
			fn(*p.Ledger)
		}
		for _, n := range p.Notifications {
			fn(n)
		}
	}
}
