package api

import (
	"bufio"
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/cutoverhq/cutover/releases"
	"github.com/cutoverhq/cutover/spec"
	"github.com/cutoverhq/cutover/workflows"
)

// TestRunsByID: a CI job re-attaches to the run its start answered, even
// after another release of the app has started, and a run ID reads nothing of
// another app.
func TestRunsByID(t *testing.T) {
	e := newEnv(t)
	r := e.start("1.0.0")
	want(t, r, http.StatusCreated)
	var first StartResponse
	r.decode(t, &first)
	e.f.set("shop", func(r *fakeRun) {
		r.run.Running = false
		r.st.Stage, r.st.Outcome = workflows.StageDone, workflows.OutcomePromoted
	})
	r = e.start("2.0.0")
	want(t, r, http.StatusCreated)
	var second StartResponse
	r.decode(t, &second)
	if first.RunID == second.RunID {
		t.Fatalf("both starts answered run %s", first.RunID)
	}

	var st RunStatus
	r = e.do("GET", first.Links.Self, tokReader, nil)
	want(t, r, http.StatusOK)
	r.decode(t, &st)
	if st.Version != "1.0.0" || st.RunID != first.RunID || st.Outcome != workflows.OutcomePromoted {
		t.Errorf("the first run's link read %s %s %s, want 1.0.0 %s promoted", st.Version, st.RunID, st.Outcome, first.RunID)
	}
	r = e.do("GET", "/v1/releases/shop", tokReader, nil)
	want(t, r, http.StatusOK)
	r.decode(t, &st)
	if st.Version != "2.0.0" || st.RunID != second.RunID {
		t.Errorf("the app's status is %s run %s, want 2.0.0 run %s", st.Version, st.RunID, second.RunID)
	}

	// The first run's stream ends with its own outcome, although 2.0.0 runs.
	events := e.stream(t, first.Links.Events, "")
	if len(events) != 2 || events[0].name != "status" || events[1].name != "outcome" || !strings.Contains(events[1].data, `"1.0.0"`) {
		t.Errorf("the first run's events: %+v", events)
	}

	// Another app's run ID under shop is not found; neither is garbage, which
	// never reaches Temporal.
	other, err := e.f.Start(context.Background(), spec.Release{App: "cart", Version: "9.9.9"}, releases.Origin{})
	if err != nil {
		t.Fatal(err)
	}
	for _, path := range []string{"/v1/releases/shop/runs/" + other.RunID, "/v1/releases/shop/runs/" + other.RunID + "/events"} {
		r = e.do("GET", path, tokReader, nil)
		want(t, r, http.StatusNotFound)
		if strings.Contains(string(r.body), "9.9.9") {
			t.Errorf("%s told of cart's release: %s", path, r.body)
		}
	}
	r = e.do("GET", "/v1/releases/cart/runs/"+other.RunID, tokReader, nil)
	want(t, r, http.StatusOK)
	before := e.f.callCount("status")
	for _, id := range []string{"a~b", "a%2Fb", "-x", strings.Repeat("a", 129)} {
		r = e.do("GET", "/v1/releases/shop/runs/"+id, tokReader, nil)
		want(t, r, http.StatusNotFound)
		r.problem(t)
	}
	if n := e.f.callCount("status"); n != before {
		t.Errorf("malformed run IDs were looked up (%d reads)", n-before)
	}
	// Reading a run needs release:read like the rest.
	want(t, e.do("GET", first.Links.Self, "", nil), http.StatusUnauthorized)
}

// TestEventsResume: events carry ids; a reconnect with Last-Event-ID gets no
// status it has seen, the next change when it comes, and after the outcome
// 204 No Content.
func TestEventsResume(t *testing.T) {
	e := newEnv(t)
	r := e.start("1.0.0")
	want(t, r, http.StatusCreated)
	var started StartResponse
	r.decode(t, &started)

	// Read the first status, then drop the connection.
	resp := e.open(t, started.Links.Events, "")
	first := nextEvent(bufio.NewScanner(resp.Body), nil)
	resp.Body.Close()
	if first.name != "status" || !strings.HasPrefix(first.id, started.RunID+"/") {
		t.Fatalf("first event %+v: want a status with an id of run %s", first, started.RunID)
	}

	// Reconnect with its id: nothing until the status changes, then the change.
	resp = e.open(t, started.Links.Events, first.id)
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	got := make(chan sseEvent, 1)
	go func() { got <- nextEvent(sc, nil) }()
	select {
	case ev := <-got:
		t.Fatalf("the reconnect sent %+v before anything changed", ev)
	case <-time.After(150 * time.Millisecond): // 15 polls
	}
	e.f.set("shop", func(r *fakeRun) { r.st.Stage, r.st.Step = "provision", 1 })
	var next sseEvent
	select {
	case next = <-got:
	case <-time.After(5 * time.Second):
		t.Fatal("no event after the status changed")
	}
	if next.name != "status" || next.id == first.id || !strings.Contains(next.data, `"provision"`) {
		t.Errorf("after the change: %+v", next)
	}

	// The release ends: the outcome has an id too; resuming after it is 204.
	e.f.set("shop", func(r *fakeRun) {
		r.run.Running = false
		r.st.Stage, r.st.Outcome = workflows.StageDone, workflows.OutcomePromoted
	})
	var outcome sseEvent
	for outcome.name != "outcome" {
		outcome = nextEvent(sc, nil)
	}
	if outcome.id != started.RunID+"/outcome" {
		t.Errorf("outcome id %q", outcome.id)
	}
	end := e.open(t, started.Links.Events, outcome.id)
	end.Body.Close()
	if end.StatusCode != http.StatusNoContent {
		t.Errorf("a reconnect after the outcome answered %d, want 204", end.StatusCode)
	}
	// An id of another run (or a stale one) replays this run from its start.
	events := e.stream(t, started.Links.Events, "some-other-run/0123")
	if len(events) != 2 || events[0].name != "status" || events[1].name != "outcome" {
		t.Errorf("with another run's id: %+v", events)
	}
}

func (e *env) open(t *testing.T, path, lastEventID string) *http.Response {
	t.Helper()
	req, _ := http.NewRequest("GET", e.srv.URL+path, nil)
	req.Header.Set("Authorization", "Bearer "+tokReader)
	if lastEventID != "" {
		req.Header.Set("Last-Event-ID", lastEventID)
	}
	resp, err := e.srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusOK && resp.StatusCode != http.StatusNoContent {
		t.Fatalf("GET %s: %d", path, resp.StatusCode)
	}
	return resp
}

// stream reads a whole event stream.
func (e *env) stream(t *testing.T, path, lastEventID string) []sseEvent {
	t.Helper()
	resp := e.open(t, path, lastEventID)
	defer resp.Body.Close()
	events, _ := readEvents(t, resp.Body)
	return events
}

// nextEvent reads up to the next event (the zero event at the stream's end),
// counting the comments it skips when comments is not nil.
func nextEvent(sc *bufio.Scanner, comments *int) sseEvent {
	var cur sseEvent
	for sc.Scan() {
		line := sc.Text()
		switch {
		case line == "" && (cur.name != "" || cur.data != ""):
			return cur
		case strings.HasPrefix(line, ":") && comments != nil:
			*comments++
		case strings.HasPrefix(line, "event: "):
			cur.name = strings.TrimPrefix(line, "event: ")
		case strings.HasPrefix(line, "id: "):
			cur.id = strings.TrimPrefix(line, "id: ")
		case strings.HasPrefix(line, "data: "):
			cur.data += strings.TrimPrefix(line, "data: ")
		}
	}
	return cur
}
