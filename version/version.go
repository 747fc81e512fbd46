// Package version says which build of Cutover a binary is: the release build
// (make dist) injects it with -ldflags -X; `go install ...@version` and plain
// `go build` leave that empty, and the module version and VCS stamp Go records
// in every binary fill it in.
package version

import (
	"fmt"
	"runtime/debug"
	"strings"

	"github.com/spf13/cobra"
)

// Set with -ldflags "-X github.com/cutoverhq/cutover/version.version=v1.2.3
// -X ...commit=<sha> -X ...date=<RFC 3339>". The linker can only set
// package-level string variables, hence these three; nothing else writes them.
var (
	version string
	commit  string
	date    string
)

// Info is a binary's build.
type Info struct {
	Version  string `json:"version"`
	Commit   string `json:"commit,omitempty"`
	Date     string `json:"date,omitempty"`
	Modified bool   `json:"modified,omitempty"` // built from a work tree with uncommitted changes
	Go       string `json:"go,omitempty"`
}

// Get is this binary's build: what -ldflags set, filled in from the build
// information Go records.
func Get() Info {
	bi, _ := debug.ReadBuildInfo()
	return get(version, commit, date, bi)
}

func get(version, commit, date string, bi *debug.BuildInfo) Info {
	i := Info{Version: version, Commit: commit, Date: date}
	if bi != nil {
		i.Go = bi.GoVersion
		// (devel) is a build inside the module's own work tree without VCS
		// information: no version at all.
		if i.Version == "" && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
			i.Version = bi.Main.Version
		}
		for _, s := range bi.Settings {
			switch s.Key {
			case "vcs.revision":
				if i.Commit == "" {
					i.Commit = s.Value
				}
			case "vcs.time":
				if i.Date == "" {
					i.Date = s.Value
				}
			case "vcs.modified":
				// Only for the commit Go recorded: an injected commit says
				// what the release build says.
				i.Modified = commit == "" && s.Value == "true"
			}
		}
	}
	if i.Version == "" {
		i.Version = "devel"
	}
	return i
}

// String is one line: "v1.2.3 (commit 0123abc, built 2026-12-07T11:00:00Z, go1.26.8)".
func (i Info) String() string {
	var parts []string
	if i.Commit != "" {
		c := i.Commit
		if len(c) > 12 {
			c = c[:12]
		}
		if i.Modified {
			c += "+modified"
		}
		parts = append(parts, "commit "+c)
	}
	if i.Date != "" {
		parts = append(parts, "built "+i.Date)
	}
	if i.Go != "" {
		parts = append(parts, i.Go)
	}
	if len(parts) == 0 {
		return i.Version
	}
	return fmt.Sprintf("%s (%s)", i.Version, strings.Join(parts, ", "))
}

// Command is the `version` subcommand of root, and turns on root's --version
// flag, which prints the same line.
func Command(root *cobra.Command) *cobra.Command {
	line := root.Name() + " " + Get().String()
	root.Version = Get().String()
	root.SetVersionTemplate(line + "\n")
	return &cobra.Command{
		Use:   "version",
		Short: "Print the version, commit and build date of this binary",
		Args:  cobra.NoArgs,
		Run: func(cmd *cobra.Command, _ []string) {
			fmt.Fprintln(cmd.OutOrStdout(), line)
		},
	}
}
