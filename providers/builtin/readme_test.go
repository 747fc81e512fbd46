package builtin_test

import (
	"bytes"
	"encoding/json"
	"io"
	"log/slog"
	"os"
	"regexp"
	"testing"

	"gopkg.in/yaml.v3"

	"github.com/cutoverhq/cutover/judge"
	"github.com/cutoverhq/cutover/providers/builtin"
	"github.com/cutoverhq/cutover/spec"
)

// TestReadmeAnalysisExamples builds every analysis provider that a yaml block
// of the README configures (scrape, prometheus, cloudwatch) through the
// worker's registry, and checks every `judge:` and app `metrics:` block
// against the judge's config, so that a reader who copies one gets a provider
// that starts, not an "unknown setting".
func TestReadmeAnalysisExamples(t *testing.T) {
	b, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	reg := builtin.NewRegistry(slog.New(slog.NewTextHandler(io.Discard, nil)))
	var built, judges int
	for _, m := range regexp.MustCompile("(?s)```yaml\n(.*?)```").FindAllStringSubmatch(string(b), -1) {
		var doc yaml.Node
		if err := yaml.Unmarshal([]byte(m[1]), &doc); err != nil {
			// Plans with "..." are sketches; an analysis example must parse.
			if analysisExample.MatchString(m[1]) {
				t.Errorf("a README analysis example does not parse: %v\n%s", err, m[1])
			}
			continue
		}
		walk(&doc, func(n *yaml.Node) {
			var p struct {
				Type     string         `yaml:"type"`
				Settings map[string]any `yaml:"settings"`
			}
			if n.Kind != yaml.MappingNode || n.Decode(&p) != nil {
				return
			}
			switch p.Type {
			case "scrape", "prometheus", "cloudwatch":
				if err := reg.Check("analysis", spec.Provider{Type: p.Type, Settings: p.Settings}); err != nil {
					t.Errorf("README's %s example: %v\n%s", p.Type, err, m[1])
				}
				built++
			}
			for i := 0; i+1 < len(n.Content); i += 2 {
				if n.Content[i].Value != "judge" {
					continue
				}
				var v any
				if err := n.Content[i+1].Decode(&v); err != nil {
					t.Fatal(err)
				}
				raw, _ := json.Marshal(v)
				var cfg judge.Config
				if err := strictJSON(raw, &cfg); err != nil {
					t.Errorf("README's judge block: %v\n%s", err, m[1])
				} else if err := cfg.Validate(); err != nil {
					t.Errorf("README's judge block: %v\n%s", err, m[1])
				}
				judges++
			}
		})
	}
	if built < 4 || judges < 1 {
		t.Errorf("found %d analysis provider examples and %d judge blocks in the README; the test reads the wrong thing", built, judges)
	}
}

var analysisExample = regexp.MustCompile(`type: (scrape|prometheus|cloudwatch)|judge:`)

func walk(n *yaml.Node, f func(*yaml.Node)) {
	f(n)
	for _, c := range n.Content {
		walk(c, f)
	}
}

func strictJSON(b []byte, v any) error {
	d := json.NewDecoder(bytes.NewReader(b))
	d.DisallowUnknownFields()
	return d.Decode(v)
}
