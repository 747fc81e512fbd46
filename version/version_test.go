package version

import (
	"runtime/debug"
	"testing"
)

func TestLdflagsWinAndBuildInfoFillsIn(t *testing.T) {
	bi := &debug.BuildInfo{
		GoVersion: "go1.26.8",
		Main:      debug.Module{Path: "github.com/cutoverhq/cutover", Version: "v0.3.0"},
		Settings: []debug.BuildSetting{
			{Key: "vcs.revision", Value: "0123456789abcdef0123"},
			{Key: "vcs.time", Value: "2026-12-01T10:00:00Z"},
			{Key: "vcs.modified", Value: "true"},
		},
	}
	for _, c := range []struct {
		name                  string
		version, commit, date string
		bi                    *debug.BuildInfo
		want                  string
	}{
		{"go install", "", "", "", bi, "v0.3.0 (commit 0123456789ab+modified, built 2026-12-01T10:00:00Z, go1.26.8)"},
		{"make dist", "v1.0.0", "feedfacefeedface", "2026-12-07T11:00:00Z", bi, "v1.0.0 (commit feedfacefeed, built 2026-12-07T11:00:00Z, go1.26.8)"},
		{"version only", "v1.0.0", "", "", bi, "v1.0.0 (commit 0123456789ab+modified, built 2026-12-01T10:00:00Z, go1.26.8)"},
		{"work tree without VCS", "", "", "", &debug.BuildInfo{GoVersion: "go1.26.8", Main: debug.Module{Version: "(devel)"}}, "devel (go1.26.8)"},
		{"nothing", "", "", "", nil, "devel"},
	} {
		if got := get(c.version, c.commit, c.date, c.bi).String(); got != c.want {
			t.Errorf("%s: %q, want %q", c.name, got, c.want)
		}
	}
}
