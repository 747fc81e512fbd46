package router

import (
	"bytes"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"testing"
)

// FuzzAdminBodies feeds bodies to the admin API's decoding: of PUT
// /v1/weights and PUT /v1/maintenance through their handlers, of PUT
// /v1/pools/{color} up to the parsed URLs (its handler would health-check
// whatever address the fuzzer makes up). It never panics; whatever it
// accepts, encoded again as a client would, decodes to the same value; and
// the weights it sets are 0..100 and are the ones the body asked for.
func FuzzAdminBodies(f *testing.F) {
	for _, seed := range []struct {
		kind uint8
		body string
	}{
		{0, `{"green": 10}`}, {0, `{"blue": 70}`}, {0, `{"blue": 0, "green": 100}`}, {0, `{"green": 120}`}, {0, `{"green": -1}`},
		{0, `{"blue": 50, "green": 10}`}, {0, `{}`}, {0, `{"green": 1`}, {0, `{"green": "10"}`}, {0, `{"grene": 10}`},
		{0, `{"green": 10} {"green": 20}`}, {0, ``}, {0, `{"Green": 10}`}, {0, `{"Weight": 10}`}, {0, `{"green": 10, "green": 90}`},
		{0, `{"green": 10, "gr\u0065en": 90}`}, {0, `{"green": 10.5}`}, {0, `{"green": 1e400}`}, {0, `[10]`}, {0, `null`},
		{1, `{"instances": ["http://127.0.0.1:9001", "http://127.0.0.1:9002"]}`}, {1, `{"instances": []}`},
		{1, `{"instances": ["http://127.0.0.1:9001/x"]}`}, {1, `{"Instances": []}`}, {1, `{"instances": ["http://127.0.0.1:1", 2]}`},
		{1, `{"instances": ["http://127.0.0.1:9001", "http://127.0.0.1:9001/"]}`},
		{2, `{"enabled": true}`}, {2, `{"enabled": false}`}, {2, `{"Enabled": true}`}, {2, `{"enabled": true, "enabled": false}`},
	} {
		f.Add(seed.kind, []byte(seed.body))
	}
	r, err := New(Config{Token: testToken, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, kind uint8, body []byte) {
		switch kind % 3 {
		case 0:
			var w weightsBody
			decoded := decodeJSON(body, &w) == nil
			if decoded {
				sameAfterRoundTrip(t, w)
			}
			before := r.State().Weights
			rec := serve(r.putWeights, "/v1/weights", body)
			after := r.State().Weights
			if rec.Code != http.StatusOK {
				badBody(t, rec, body)
				if after != before {
					t.Fatalf("%q was refused (%s) but the weights went from %+v to %+v", body, rec.Body, before, after)
				}
				return
			}
			if !decoded {
				t.Fatalf("%q was taken but does not decode", body)
			}
			if after.Green < 0 || after.Green > 100 || after.Blue+after.Green != 100 {
				t.Fatalf("%q set the weights to %+v", body, after)
			}
			if w.Green != nil && after.Green != *w.Green || w.Green == nil && (w.Blue == nil || after.Blue != *w.Blue) {
				t.Fatalf("%q set the weights to %+v", body, after)
			}
		case 1:
			var p poolBody
			if decodeJSON(body, &p) != nil {
				return
			}
			sameAfterRoundTrip(t, p)
			if p.Instances == nil {
				return
			}
			urls, err := parseInstanceURLs(*p.Instances)
			if err != nil {
				return
			}
			for _, u := range urls {
				again, err := parseInstanceURL(u.String())
				if err != nil || again.String() != u.String() {
					t.Fatalf("instance %q, taken as %q, reads back as %v, %v", *p.Instances, u, again, err)
				}
			}
		case 2:
			var m maintenanceBody
			decoded := decodeJSON(body, &m) == nil
			if decoded {
				sameAfterRoundTrip(t, m)
			}
			rec := serve(r.putMaintenance, "/v1/maintenance", body)
			if rec.Code != http.StatusOK {
				badBody(t, rec, body)
				return
			}
			if !decoded || m.Enabled == nil || r.State().Maintenance != *m.Enabled {
				t.Fatalf("%q was taken: maintenance %v", body, r.State().Maintenance)
			}
		}
	})
}

func serve(h http.HandlerFunc, path string, body []byte) *httptest.ResponseRecorder {
	rec := httptest.NewRecorder()
	h(rec, httptest.NewRequest(http.MethodPut, path, bytes.NewReader(body)))
	return rec
}

// badBody checks a refusal: 400 or 413, one line of JSON.
func badBody(t *testing.T, rec *httptest.ResponseRecorder, body []byte) {
	t.Helper()
	var e ErrorResponse
	if rec.Code != http.StatusBadRequest && rec.Code != http.StatusRequestEntityTooLarge {
		t.Fatalf("%q: status %d: %s", body, rec.Code, rec.Body)
	}
	if err := json.Unmarshal(rec.Body.Bytes(), &e); err != nil || e.Error == "" || strings.Contains(e.Error, "\n") {
		t.Fatalf("%q: the refusal is not one line of JSON: %q", body, rec.Body)
	}
}

// sameAfterRoundTrip encodes v as a client does (encoding/json) and decodes
// it again strictly: it must come back the same.
func sameAfterRoundTrip[T any](t *testing.T, v T) {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatalf("encode %+v: %v", v, err)
	}
	var again T
	if err := decodeJSON(b, &again); err != nil {
		t.Fatalf("%+v encodes to %s, which does not decode: %v", v, b, err)
	}
	if !reflect.DeepEqual(v, again) {
		t.Fatalf("%+v encodes to %s, which decodes to %+v", v, b, again)
	}
}
