package ledger_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/cutoverhq/cutover/providers"
	"github.com/cutoverhq/cutover/providers/postgres/ledger"
	"github.com/cutoverhq/cutover/tests/harness"
	"github.com/cutoverhq/cutover/verdict"
)

var t0 = time.Date(2026, 3, 4, 10, 0, 0, 0, time.UTC)

func open(t *testing.T) (*ledger.Store, string) {
	t.Helper()
	url := harness.PostgresDB(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	s, err := ledger.Open(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	return s, url
}

func verdictData(t *testing.T) (verdict.Verdict, json.RawMessage) {
	v := verdict.Verdict{Result: verdict.Pass, Summary: "all 2 metrics passed", Metrics: []verdict.Metric{
		{Name: "error rate", Result: verdict.Pass, Critical: true, Reason: "no significant difference", Values: []verdict.Value{
			{Name: "blue_requests", Value: 1000}, {Name: "green_error_rate", Value: 0.0012345678}, {Name: "p", Value: 1e-12}}},
		{Name: "latency", Result: verdict.Pass, Values: []verdict.Value{{Name: "slowdown", Value: -0.25}}},
	}}
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return v, b
}

// events is a whole release as the workflow writes it.
func events(t *testing.T, run, app, version string) []providers.LedgerEvent {
	_, data := verdictData(t)
	e := func(seq int, kind string, at time.Duration, f func(*providers.LedgerEvent)) providers.LedgerEvent {
		ev := providers.LedgerEvent{Release: run, App: app, Version: version, PreviousVersion: "1.0.0", Seq: seq, Kind: kind, At: t0.Add(at)}
		if f != nil {
			f(&ev)
		}
		return ev
	}
	return []providers.LedgerEvent{
		e(1, providers.LedgerStarted, 0, func(e *providers.LedgerEvent) {
			e.Actor, e.Via, e.CIRun, e.Message = "alice", "cli", "https://ci.example/run/42", "release of web 1.0.0 -> "+version+" started by alice"
		}),
		e(2, providers.LedgerStep, time.Second, func(e *providers.LedgerEvent) { e.Step, e.State, e.Message = 1, "running", "provision" }),
		e(3, providers.LedgerStep, 20*time.Second, func(e *providers.LedgerEvent) { e.Step, e.State, e.Message = 1, "done", "provision in 19s" }),
		e(4, providers.LedgerVerdict, 80*time.Second, func(e *providers.LedgerEvent) {
			e.Step, e.State, e.Message, e.Data = 2, "Pass", "comparison: Pass", data
		}),
		e(5, providers.LedgerDecision, 90*time.Second, func(e *providers.LedgerEvent) {
			e.Step, e.Actor, e.Via, e.Message = 3, "bob", "chat", "approve: looks good"
		}),
		e(6, providers.LedgerOutcome, 100*time.Second, func(e *providers.LedgerEvent) { e.Outcome, e.Message = "promoted", "" }),
	}
}

func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), time.Minute)
	t.Cleanup(cancel)
	return c
}

func countRows(t *testing.T, url, query string, args ...any) int {
	t.Helper()
	conn, err := pgx.Connect(ctx(t), url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	var n int
	if err := conn.QueryRow(ctx(t), query, args...).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

func TestRecordAndReadBack(t *testing.T) {
	s, url := open(t)
	evs := events(t, "run-1", "web", "1.1.0")
	for _, e := range evs {
		if err := s.Record(ctx(t), e); err != nil {
			t.Fatal(err)
		}
	}
	rel, got, err := s.Release(ctx(t), "web", "1.1.0")
	if err != nil {
		t.Fatal(err)
	}
	end := t0.Add(100 * time.Second)
	want := ledger.Release{ID: "run-1", App: "web", Version: "1.1.0", PreviousVersion: "1.0.0", StartedBy: "alice", Via: "cli",
		CIRun: "https://ci.example/run/42", StartedAt: t0, EndedAt: &end, Outcome: "promoted"}
	checkRelease(t, rel, want)
	if len(got) != len(evs) {
		t.Fatalf("got %d events, want %d", len(got), len(evs))
	}
	for i := range evs {
		checkEvent(t, got[i], evs[i])
	}

	// The verdict's JSON comes back as the same verdict (jsonb keeps the
	// meaning, not the bytes).
	wantV, _ := verdictData(t)
	var gotV verdict.Verdict
	if err := json.Unmarshal(got[3].Data, &gotV); err != nil {
		t.Fatalf("verdict data %s: %v", got[3].Data, err)
	}
	if !reflect.DeepEqual(gotV, wantV) {
		t.Errorf("verdict round trip:\n got %+v\nwant %+v", gotV, wantV)
	}
	if n := countRows(t, url, "select count(*) from cutover.events where data is not null"); n != 1 {
		t.Errorf("%d events with data, want only the verdict", n)
	}
}

func checkRelease(t *testing.T, got, want ledger.Release) {
	t.Helper()
	if !got.StartedAt.Equal(want.StartedAt) {
		t.Errorf("started at %v, want %v", got.StartedAt, want.StartedAt)
	}
	if (got.EndedAt == nil) != (want.EndedAt == nil) || (got.EndedAt != nil && !got.EndedAt.Equal(*want.EndedAt)) {
		t.Errorf("ended at %v, want %v", got.EndedAt, want.EndedAt)
	}
	got.StartedAt, want.StartedAt, got.EndedAt, want.EndedAt = time.Time{}, time.Time{}, nil, nil
	if got != want {
		t.Errorf("release:\n got %+v\nwant %+v", got, want)
	}
}

func checkEvent(t *testing.T, got, want providers.LedgerEvent) {
	t.Helper()
	if !got.At.Equal(want.At) {
		t.Errorf("event %d at %v, want %v", want.Seq, got.At, want.At)
	}
	if (len(got.Data) == 0) != (len(want.Data) == 0) {
		t.Errorf("event %d data %s, want %s", want.Seq, got.Data, want.Data)
	}
	got.At, want.At, got.Data, want.Data = time.Time{}, time.Time{}, nil, nil
	if !reflect.DeepEqual(got, want) {
		t.Errorf("event %d:\n got %+v\nwant %+v", want.Seq, got, want)
	}
}

func TestRecordTwiceAndConcurrentlyStoresOnce(t *testing.T) {
	s, url := open(t)
	evs := events(t, "run-dup", "web", "1.2.0")
	for _, e := range evs {
		if err := s.Record(ctx(t), e); err != nil {
			t.Fatal(err)
		}
	}
	// A retried activity stores the same event again, possibly with
	// different contents (it must not change what was stored first).
	for _, e := range evs {
		e.Message += " (retried)"
		if e.Kind == providers.LedgerOutcome {
			e.Outcome, e.At = "aborted", e.At.Add(time.Hour)
		}
		if err := s.Record(ctx(t), e); err != nil {
			t.Fatal(err)
		}
	}
	// Many goroutines at once, each writing every event of a second release
	// in its own order.
	evs2 := events(t, "run-conc", "web", "1.3.0")
	var wg sync.WaitGroup
	errs := make(chan error, 8*len(evs2))
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range evs2 {
				e := evs2[(i+g)%len(evs2)]
				if g%2 == 1 {
					e = evs2[len(evs2)-1-(i+g)%len(evs2)]
				}
				if err := s.Record(ctx(t), e); err != nil {
					errs <- err
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}

	for _, run := range []string{"run-dup", "run-conc"} {
		if n := countRows(t, url, "select count(*) from cutover.events where release_id = $1", run); n != len(evs) {
			t.Errorf("%s: %d event rows, want %d", run, n, len(evs))
		}
		if n := countRows(t, url, "select count(*) from (select seq from cutover.events where release_id = $1 group by seq having count(*) > 1) d", run); n != 0 {
			t.Errorf("%s: %d duplicated seqs", run, n)
		}
	}
	if n := countRows(t, url, "select count(*) from cutover.releases"); n != 2 {
		t.Errorf("%d release rows, want 2", n)
	}
	rel, got, err := s.Release(ctx(t), "web", "1.2.0")
	if err != nil {
		t.Fatal(err)
	}
	if rel.Outcome != "promoted" || !rel.EndedAt.Equal(t0.Add(100*time.Second)) {
		t.Errorf("a duplicate outcome changed the release: %+v", rel)
	}
	for _, e := range got {
		if strings.Contains(e.Message, "retried") {
			t.Errorf("a duplicate changed event %d: %q", e.Seq, e.Message)
		}
	}
	rel, _, err = s.Release(ctx(t), "web", "1.3.0")
	if err != nil {
		t.Fatal(err)
	}
	end := t0.Add(100 * time.Second)
	checkRelease(t, rel, ledger.Release{ID: "run-conc", App: "web", Version: "1.3.0", PreviousVersion: "1.0.0", StartedBy: "alice", Via: "cli",
		CIRun: "https://ci.example/run/42", StartedAt: t0, EndedAt: &end, Outcome: "promoted"})
}

func TestEventsBeforeStarted(t *testing.T) {
	s, _ := open(t)
	evs := events(t, "run-early", "api", "2.0.0")
	// A step event and the verdict come first; the release shows up at once,
	// with the earliest time seen, and without who started it.
	for _, i := range []int{3, 2} {
		if err := s.Record(ctx(t), evs[i]); err != nil {
			t.Fatal(err)
		}
	}
	rel, got, err := s.Release(ctx(t), "api", "2.0.0")
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || got[0].Seq != 3 || got[1].Seq != 4 {
		t.Fatalf("events %+v, want seq 3 and 4", got)
	}
	checkRelease(t, rel, ledger.Release{ID: "run-early", App: "api", Version: "2.0.0", PreviousVersion: "1.0.0", StartedAt: evs[2].At})

	// The outcome before the start, too.
	if err := s.Record(ctx(t), evs[5]); err != nil {
		t.Fatal(err)
	}
	// Then the started event fills in the rest.
	for _, i := range []int{0, 1, 4} {
		if err := s.Record(ctx(t), evs[i]); err != nil {
			t.Fatal(err)
		}
	}
	rel, got, err = s.Release(ctx(t), "api", "2.0.0")
	if err != nil {
		t.Fatal(err)
	}
	end := t0.Add(100 * time.Second)
	checkRelease(t, rel, ledger.Release{ID: "run-early", App: "api", Version: "2.0.0", PreviousVersion: "1.0.0", StartedBy: "alice", Via: "cli",
		CIRun: "https://ci.example/run/42", StartedAt: t0, EndedAt: &end, Outcome: "promoted"})
	for i, e := range got {
		if e.Seq != i+1 {
			t.Fatalf("events not in seq order: %d at %d", e.Seq, i)
		}
	}
}

func TestOutcomeUpdatesRelease(t *testing.T) {
	s, _ := open(t)
	evs := events(t, "run-rb", "web", "1.4.0")
	for _, e := range evs[:5] {
		if err := s.Record(ctx(t), e); err != nil {
			t.Fatal(err)
		}
	}
	rel, _, err := s.Release(ctx(t), "web", "1.4.0")
	if err != nil {
		t.Fatal(err)
	}
	if rel.Outcome != "" || rel.EndedAt != nil || rel.Reason != "" {
		t.Fatalf("a release without its outcome event has outcome %q, ended %v", rel.Outcome, rel.EndedAt)
	}
	out := evs[5]
	out.Outcome, out.Message = "rolled_back", "error rate: Fail"
	if err := s.Record(ctx(t), out); err != nil {
		t.Fatal(err)
	}
	rel, _, err = s.Release(ctx(t), "web", "1.4.0")
	if err != nil {
		t.Fatal(err)
	}
	if rel.Outcome != "rolled_back" || rel.Reason != "error rate: Fail" || rel.EndedAt == nil || !rel.EndedAt.Equal(out.At) {
		t.Errorf("after the outcome: %+v", rel)
	}
}

func TestReleasesOrderAndLimit(t *testing.T) {
	s, _ := open(t)
	for i := 0; i < 60; i++ {
		e := providers.LedgerEvent{Release: fmt.Sprintf("run-%02d", i), App: "web", Version: fmt.Sprintf("1.%d.0", i), Seq: 1,
			Kind: providers.LedgerStarted, At: t0.Add(time.Duration(i) * time.Minute), Actor: "ci"}
		if err := s.Record(ctx(t), e); err != nil {
			t.Fatal(err)
		}
	}
	// Another app's releases stay out, even newer ones.
	if err := s.Record(ctx(t), providers.LedgerEvent{Release: "other", App: "api", Version: "9", Seq: 1, Kind: providers.LedgerStarted, At: t0.Add(time.Hour * 24)}); err != nil {
		t.Fatal(err)
	}
	list, err := s.Releases(ctx(t), "web", 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(list) != ledger.DefaultLimit {
		t.Fatalf("%d releases, want the default %d", len(list), ledger.DefaultLimit)
	}
	for i, r := range list {
		if want := fmt.Sprintf("1.%d.0", 59-i); r.Version != want || r.App != "web" {
			t.Fatalf("release %d is %s %s, want web %s (newest first)", i, r.App, r.Version, want)
		}
	}
	list, err = s.Releases(ctx(t), "web", 3)
	if err != nil {
		t.Fatal(err)
	}
	if len(list) != 3 || list[0].Version != "1.59.0" || list[2].Version != "1.57.0" {
		t.Errorf("limit 3: %+v", list)
	}
	list, err = s.Releases(ctx(t), "nope", 10)
	if err != nil || len(list) != 0 {
		t.Errorf("unknown app: %v, %v", list, err)
	}

	// The same version released twice: Release shows the newer one.
	if err := s.Record(ctx(t), providers.LedgerEvent{Release: "again", App: "web", Version: "1.3.0", Seq: 1, Kind: providers.LedgerStarted,
		At: t0.Add(100 * time.Hour), Actor: "carol"}); err != nil {
		t.Fatal(err)
	}
	rel, _, err := s.Release(ctx(t), "web", "1.3.0")
	if err != nil || rel.ID != "again" || rel.StartedBy != "carol" {
		t.Errorf("re-released version: %+v, %v", rel, err)
	}
}

func TestReleaseUnknown(t *testing.T) {
	s, _ := open(t)
	if err := s.Record(ctx(t), events(t, "r", "web", "1.0.1")[0]); err != nil {
		t.Fatal(err)
	}
	_, _, err := s.Release(ctx(t), "web", "7.7.7")
	if err == nil || !errors.Is(err, providers.ErrNotFound) || !strings.Contains(err.Error(), "web 7.7.7") {
		t.Fatalf("unknown version: %v, want a not-found error naming web 7.7.7", err)
	}
}

func TestRecordRejectsBadEvents(t *testing.T) {
	s, _ := open(t)
	good := events(t, "r", "web", "1.0.1")[0]
	for name, f := range map[string]func(*providers.LedgerEvent){
		"no release": func(e *providers.LedgerEvent) { e.Release = "" },
		"no seq":     func(e *providers.LedgerEvent) { e.Seq = 0 },
		"no kind":    func(e *providers.LedgerEvent) { e.Kind = "" },
		"bad json":   func(e *providers.LedgerEvent) { e.Data = json.RawMessage(`{"a":`) },
		"nul json":   func(e *providers.LedgerEvent) { e.Data = json.RawMessage(`{"a":"\u0000"}`) },
	} {
		e := good
		f(&e)
		if err := s.Record(ctx(t), e); !errors.Is(err, providers.ErrInvalid) {
			t.Errorf("%s: %v, want an invalid-request error (not retried)", name, err)
		}
	}
	// Text PostgreSQL cannot hold is stored with a replacement character.
	e := good
	e.Message = "nul\x00 and bad utf-8 \xff"
	if err := s.Record(ctx(t), e); err != nil {
		t.Fatal(err)
	}
	_, got, err := s.Release(ctx(t), "web", "1.0.1")
	if err != nil || len(got) != 1 || got[0].Message != "nul\uFFFD and bad utf-8 \uFFFD" {
		t.Errorf("cleaned message: %+v, %v", got, err)
	}
}

func TestOpenConcurrentlyAndAgain(t *testing.T) {
	url := harness.PostgresDB(t)
	var wg sync.WaitGroup
	const openers = 10
	errs := make(chan error, openers)
	for i := 0; i < openers; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s, err := ledger.Open(ctx(t), url)
			if err != nil {
				errs <- err
				return
			}
			defer s.Close()
			errs <- s.Record(ctx(t), providers.LedgerEvent{Release: fmt.Sprint("run-", i), App: "web", Version: "1", Seq: 1, Kind: providers.LedgerStarted, At: t0})
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Error(err)
		}
	}
	// Opening an up-to-date ledger again changes nothing; so does the
	// read-only open.
	s, err := ledger.Open(ctx(t), url)
	if err != nil {
		t.Fatal(err)
	}
	list, err := s.Releases(ctx(t), "web", 0)
	s.Close()
	if err != nil || len(list) != openers {
		t.Fatalf("after reopening: %d releases, %v", len(list), err)
	}
	if n := countRows(t, url, "select version from cutover.ledger_version"); n != 2 {
		t.Errorf("ledger_version is %d, want 2 (two migrations)", n)
	}
	ro, err := ledger.OpenReadOnly(ctx(t), url)
	if err != nil {
		t.Fatal(err)
	}
	ro.Close()
}

func TestOpenReadOnlyWithoutLedger(t *testing.T) {
	url := harness.PostgresDB(t)
	_, err := ledger.OpenReadOnly(ctx(t), url)
	if !errors.Is(err, providers.ErrNotFound) || !strings.Contains(err.Error(), "no release ledger") {
		t.Fatalf("read-only open of an empty database: %v", err)
	}
	if n := countRows(t, url, "select count(*) from pg_namespace where nspname = 'cutover'"); n != 0 {
		t.Errorf("the read-only open created the cutover schema")
	}
}

// The migrations provider's tables share the schema; the ledger must open
// next to them, and a newer ledger schema (a later worker) must not stop an
// older one.
func TestOpenNextToOtherTablesAndNewerSchema(t *testing.T) {
	url := harness.PostgresDB(t)
	conn, err := pgx.Connect(ctx(t), url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	if _, err := conn.Exec(ctx(t), `create schema cutover; create table cutover.migrations (x int); create table cutover."version_web_expand" (version int4)`); err != nil {
		t.Fatal(err)
	}
	s, err := ledger.Open(ctx(t), url)
	if err != nil {
		t.Fatal(err)
	}
	s.Close()
	if _, err := conn.Exec(ctx(t), `update cutover.ledger_version set version = 99`); err != nil {
		t.Fatal(err)
	}
	s, err = ledger.Open(ctx(t), url)
	if err != nil {
		t.Fatalf("open a ledger a newer worker upgraded: %v", err)
	}
	s.Close()
}

func TestOpenErrorsHidePassword(t *testing.T) {
	for _, url := range []string{
		"postgres://u:s3cret@127.0.0.1:1/db?sslmode=disable&connect_timeout=2",
		"postgres://u:s3cret@127.0.0.1:notaport/db",
		"host=127.0.0.1 port=1 password=s3cret connect_timeout=2",
		"postgres://u@127.0.0.1:1/db?password=s3cret&connect_timeout=2",
	} {
		_, err := ledger.Open(ctx(t), url)
		if err == nil {
			t.Fatalf("%s opened", url)
		}
		if strings.Contains(err.Error(), "s3cret") {
			t.Errorf("the error shows the password: %v", err)
		}
	}
}
