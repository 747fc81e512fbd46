package tests

import (
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/cutoverhq/cutover/tests/harness"
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

// startServe starts `cutover serve` on a free loopback port with the
// cluster's environment plus env, and waits until its /healthz answers.
func (c *cluster) startServe(env []string, args ...string) string {
	c.t.Helper()
	addr := fmt.Sprintf("127.0.0.1:%d", harness.FreePort(c.t))
	serve := harness.Start(c.t, "cutover serve", append(append([]string{}, c.env...), env...), c.cli,
		append([]string{"serve", "--listen", addr}, args...)...)
	waitFor(c.t, 20*time.Second, "cutover serve", func() bool {
		resp, err := http.Get("http://" + addr + "/healthz")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK && !serve.Exited()
	})
	return addr
}
