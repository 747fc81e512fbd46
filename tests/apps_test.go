package tests

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"
)

// writeApps writes app definitions, one <app>.yaml each, into a new
// directory for workers started with CUTOVER_APPS.
func writeApps(t *testing.T, defs map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for app, def := range defs {
		if err := os.WriteFile(filepath.Join(dir, app+".yaml"), []byte(def), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// request is a release request as CI sends it: an app and a version.
func request(app, version string) []byte {
	return fmt.Appendf(nil, "app: %s\nversion: %s\n", app, version)
}
