package router

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"
)

// TestAdminJSONIsStrict: names match exactly, and a name given twice, an
// unknown name or trailing data is refused with 400 and a message naming the
// field; nothing changes.
func TestAdminJSONIsStrict(t *testing.T) {
	h := start(t, nil)
	h.setGreen(20)
	for _, c := range []struct{ path, body, msg string }{
		{"/v1/weights", `{"Green": 10}`, `bad JSON body: unknown field "Green" (names are case-sensitive)`},
		{"/v1/weights", `{"Weight": 10}`, `bad JSON body: unknown field "Weight" (names are case-sensitive)`},
		{"/v1/weights", `{"green": 10, "green": 90}`, `bad JSON body: duplicate field "green"`},
		{"/v1/weights", `{"green": 10, "gr\u0065en": 90}`, `bad JSON body: duplicate field "green"`},
		{"/v1/weights", `{"green": 10, "blue": 90, "red": 0}`, `bad JSON body: unknown field "red"`},
		{"/v1/weights", `{"green": 10} {"green": 20}`, `bad JSON body: unexpected data after the JSON value at byte 14`},
		{"/v1/weights", `{"green": 10} x`, `bad JSON body: unexpected data after the JSON value`},
		{"/v1/weights", `{"green": "10"}`, `bad JSON body: field "green": want an integer, got a string`},
		{"/v1/weights", `{"green": 10.5}`, `bad JSON body: field "green": want an integer, got 10.5`},
		{"/v1/weights", `{"green": 1e400}`, `bad JSON body: field "green": want an integer, got 1e400`},
		{"/v1/weights", `[10]`, `bad JSON body: want a JSON object, got a list`},
		{"/v1/weights", `{"green": 1`, `bad JSON body`},
		{"/v1/weights", "  \n", `empty body: want a JSON object`},
		{"/v1/maintenance", `{"Enabled": true}`, `bad JSON body: unknown field "Enabled" (names are case-sensitive)`},
		{"/v1/maintenance", `{"enabled": true, "enabled": false}`, `bad JSON body: duplicate field "enabled"`},
		{"/v1/maintenance", `{"enabled": "yes"}`, `bad JSON body: field "enabled": want true or false, got a string`},
		{"/v1/pools/green", `{"Instances": []}`, `bad JSON body: unknown field "Instances" (names are case-sensitive)`},
		{"/v1/pools/green", `{"instances": [], "instances": ["http://127.0.0.1:1"]}`, `bad JSON body: duplicate field "instances"`},
		{"/v1/pools/green", `{"instances": ["http://127.0.0.1:1", 2]}`, `bad JSON body: field "instances[1]": want a string, got a number`},
		{"/v1/pools/green", "{\"instances\": [\"http://127.0.0.1:1/\xff\"]}", `bad JSON body: field "instances[0]" at byte`},
	} {
		code, raw := h.call("PUT", c.path, c.body)
		var e ErrorResponse
		if err := json.Unmarshal(raw, &e); err != nil || code != http.StatusBadRequest || !strings.HasPrefix(e.Error, c.msg) || strings.Contains(e.Error, "\n") {
			t.Errorf("PUT %s %s: %d %s, want 400 with %q", c.path, c.body, code, raw, c.msg)
		}
	}
	if st := h.state(); st.Weights.Green != 20 || st.Maintenance || len(st.Pools[Green]) != 0 {
		t.Errorf("a refused change was applied: %+v", st)
	}
	// What the router's Client sends is taken.
	if st := h.setGreen(30); st.Weights.Green != 30 {
		t.Errorf("the client's weights: %+v", st.Weights)
	}
	if st := h.mustCall("PUT", "/v1/maintenance", MaintenanceRequest{Enabled: true}); !st.Maintenance {
		t.Errorf("the client's maintenance: %+v", st)
	}
}
