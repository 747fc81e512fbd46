package api

import (
	"net/http"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/cutoverhq/cutover/spec/spectest"
)

// The review's parser bombs, sent as a start token holder would: a merge
// fan-out of under 614 bytes and an alias spec of about 21 KB. Before the
// parser had a budget the first ran for more than a minute and the second
// took seconds and more than a gigabyte, inside POST /v1/releases. Now each
// is refused, naming the budget, in under 100 ms and 50 MB.
func TestParserBombsAreRefusedOverHTTP(t *testing.T) {
	e := newEnv(t)
	for _, bomb := range []struct{ name, body string }{
		{"merge fan-out", spectest.MergeBomb(8, 10)},
		{"alias spec", spectest.AliasBomb()},
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
