package api

import (
	"fmt"
	"net/http"
	"runtime"
	"strings"
	"testing"
	"time"
)

// The review's parser bombs, sent as a start token holder would: a merge
// fan-out of under 614 bytes and an alias spec of about 21 KB. Before the
// parser had a budget the first ran for more than a minute and the second
// took seconds and more than a gigabyte, inside POST /v1/releases. Now each
// is refused, naming the budget, in under 100 ms and 50 MB.
func TestParserBombsAreRefusedOverHTTP(t *testing.T) {
	e := newEnv(t)
	merge := func(levels, fan int) string {
		node := "&a0 {type: memory}"
		for i := 1; i <= levels; i++ {
			node = fmt.Sprintf("&a%d {<<: [%s%s]}", i, node, strings.Repeat(fmt.Sprintf(",*a%d", i-1), fan-1))
		}
		return "app: shop\nversion: 1.4.0\nproviders:\n  environment: {<<: [" + node + "]}\n"
	}
	// The settings of one provider in the style of the billion laughs, used
	// again by hundreds of providers and a plan of hundreds of steps sharing
	// one long smoke list (spec/limits_test.go builds the same).
	alias := func() string {
		var b strings.Builder
		b.WriteString("app: shop\nversion: 1.4.0\nproviders:\n  environment:\n    type: memory\n    settings: &s\n")
		b.WriteString("      pad: [x" + strings.Repeat(", x", 299) + "]\n")
		b.WriteString("      l0: &l0 [lol, lol, lol, lol, lol, lol, lol, lol, lol, lol]\n")
		for i := 1; i <= 3; i++ {
			fmt.Fprintf(&b, "      l%d: &l%d [*l%d%s]\n", i, i, i-1, strings.Repeat(fmt.Sprintf(", *l%d", i-1), 9))
		}
		b.WriteString("  traffic: &p {type: memory, settings: *s}\n  analysis: {type: memory, settings: *s}\n")
		b.WriteString("  notifications: [*p" + strings.Repeat(", *p", 299) + "]\n")
		b.WriteString("plan:\n  - provision\n  - validate: {smoke: &smoke [/a" + strings.Repeat(", /a", 999) + "]}\n")
		for range 500 {
			b.WriteString("  - validate: {smoke: *smoke}\n")
		}
		b.WriteString("  - promote\n")
		return b.String()
	}
	for _, bomb := range []struct{ name, body string }{
		{"merge fan-out", merge(8, 10)},
		{"alias spec", alias()},
	} {
		t.Run(bomb.name, func(t *testing.T) {
			if bomb.name == "merge fan-out" && len(bomb.body) > 614 {
				t.Fatalf("the bomb is %d bytes; the review's was 614", len(bomb.body))
			}
			var before, after runtime.MemStats
			runtime.GC()
			runtime.ReadMemStats(&before)
			began := time.Now()
			r := e.do("POST", "/v1/releases", tokStarter, strings.NewReader(bomb.body), "Content-Type", "application/yaml")
			took := time.Since(began)
			runtime.ReadMemStats(&after)
			want(t, r, http.StatusBadRequest)
			if !strings.Contains(string(r.body), "aliases and merges") {
				t.Errorf("answer %s, want the budget named", r.body)
			}
			if alloc := after.TotalAlloc - before.TotalAlloc; took > 100*time.Millisecond || alloc > 50<<20 {
				t.Errorf("refused in %s with %d MB allocated; want under 100 ms and 50 MB", took, alloc>>20)
			}
			t.Logf("%d bytes refused in %s", len(bomb.body), took)
		})
	}
	if n := e.f.callCount("start"); n != 0 {
		t.Errorf("a bomb started %d releases", n)
	}
}

// A request is at most spec.MaxSpecBytes (256 KiB), however much of the 1 MiB
// body limit is left: a larger one is refused before it is parsed.
func TestOversizedRequestIsRefused(t *testing.T) {
	e := newEnv(t)
	body := "app: shop\nversion: 1.4.0\n#" + strings.Repeat("x", 300<<10) + "\n"
	r := e.do("POST", "/v1/releases", tokStarter, strings.NewReader(body), "Content-Type", "application/yaml")
	want(t, r, http.StatusBadRequest)
	if !strings.Contains(string(r.body), "at most 256 KiB") {
		t.Errorf("answer %s, want the size limit named", r.body)
	}
}
