package slackbuttons

import "testing"

func TestValueRoundTrip(t *testing.T) {
	v := Value{App: "shop", Version: "1.5.0+build.7"}
	got, err := Parse(v.Encode())
	if err != nil || got != v {
		t.Fatalf("Parse(Encode(%+v)) = %+v, %v", v, got, err)
	}
	if v.Encode() != `{"app":"shop","version":"1.5.0+build.7"}` {
		t.Errorf("encoded %s: the format in messages already posted changed", v.Encode())
	}
	for _, bad := range []string{"", "shop 1.5.0", `{"app":"shop"}`, `{"version":"1"}`, `{"app":1,"version":"1"}`} {
		if _, err := Parse(bad); err == nil {
			t.Errorf("Parse(%q): no error", bad)
		}
	}
}
