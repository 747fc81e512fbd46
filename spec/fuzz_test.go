package spec

import (
	"encoding/json"
	"errors"
	"reflect"
	"testing"
	"time"

	"github.com/cutoverhq/cutover/spec/spectest"
)

// fuzzTimeLimit is how long one Parse may take under the fuzzer. The decoder's
// budget keeps a spec of MaxSpecBytes to a fraction of this; the margin is for
// coverage instrumentation and a busy machine.
const fuzzTimeLimit = 2 * time.Second

// seedSpecs are the specs the other tests parse, and the bombs.
func seedSpecs() []string {
	seeds := []string{fullSpec, header, fileOrderSpec, anchorsSpec, spectest.MergeBomb(8, 10), spectest.AliasBomb(), spectest.SettingsBomb()}
	for _, c := range defaultCases() {
		seeds = append(seeds, c.src)
	}
	for _, c := range problemCases() {
		seeds = append(seeds, c.src)
	}
	for _, c := range lineCases() {
		seeds = append(seeds, c.src)
	}
	for _, src := range roundTripSpecs() {
		seeds = append(seeds, src)
	}
	return seeds
}

// FuzzParse feeds the parser and validator any text. Whatever it is, Parse
// does not panic, is quick, and says what is wrong in printable lines; what it
// accepts survives the JSON round trip to the release workflow unchanged,
// validates clean again, and has a version that is one.
func FuzzParse(f *testing.F) {
	for _, src := range seedSpecs() {
		f.Add([]byte(src))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		start := time.Now()
		r, err := Parse(data, nil)
		if took := time.Since(start); took > fuzzTimeLimit {
			t.Fatalf("Parse of %d bytes took %v", len(data), took)
		}
		if err != nil {
			var ps Problems
			if !errors.As(err, &ps) || len(ps) == 0 {
				t.Fatalf("Parse returned %T %v; want Problems", err, err)
			}
			for _, p := range ps {
				if s := p.String(); Printable(s) != s {
					t.Fatalf("problem %q is not printable", s)
				}
			}
			return
		}
		if err := CheckVersion(r.Version); err != nil || !versionText.MatchString(r.Version) {
			t.Fatalf("accepted version %q: %v", r.Version, err)
		}
		b, err := json.Marshal(r)
		if err != nil {
			t.Fatalf("Marshal: %v", err)
		}
		var back Release
		if err := json.Unmarshal(b, &back); err != nil {
			t.Fatalf("Unmarshal: %v\n%s", err, b)
		}
		if !reflect.DeepEqual(back, r) {
			t.Fatalf("the JSON round trip changed the release\nbefore: %#v\nafter:  %#v\njson: %s", r, back, b)
		}
		if ps := back.Validate(nil); len(ps) > 0 {
			t.Fatalf("the round-tripped release has problems: %v", ps)
		}
	})
}
