package tests

import (
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/cutoverhq/cutover/api"
	"github.com/cutoverhq/cutover/temporalconn/tlstest"
	"github.com/cutoverhq/cutover/tests/harness"
)

// tlsReleaseYAML is the shortest plan the spec accepts, on the memory
// providers: the point is the connection, not the release.
const tlsReleaseYAML = `app: tlsapp
version: 1.0.0
providers:
  environment: {type: memory, settings: {delay: 50ms}}
  traffic: {type: memory}
  analysis: {type: memory}
  migrations: {type: memory}
  notifications: [{type: log}]
plan:
  - provision
  - validate
  - setWeight: 50
  - promote
  - decommission
`

// TestTemporalMutualTLS puts the dev server behind a TLS proxy that requires a
// client certificate, as an mTLS cluster or Temporal Cloud does (the dev server
// cannot require one itself), and drives the worker, the CLI and the API
// through it with the TEMPORAL_TLS_* variables of Temporal's own CLI. Without
// a certificate every one of them fails, saying TLS.
func TestTemporalMutualTLS(t *testing.T) {
	// The developer's own TEMPORAL_* settings and config file must not leak
	// into the processes this test starts.
	tlstest.CleanEnv(t)
	cli, worker := harness.CutoverBinaries(t)
	srv := harness.StartTemporal(t, harness.DevServerOptions{})
	pki := tlstest.New(t)
	proxy := tlstest.Proxy(t, pki.ServerConfig(), srv.Address)

	base := []string{"TEMPORAL_ADDRESS=" + proxy, "TEMPORAL_NAMESPACE=default", "CUTOVER_TASK_QUEUE=tls-e2e",
		"TEMPORAL_TLS_SERVER_CA_CERT_PATH=" + pki.CAFile}
	withCert := slices.Concat(base, []string{
		"TEMPORAL_TLS_CLIENT_CERT_PATH=" + pki.ClientCertFile, "TEMPORAL_TLS_CLIENT_KEY_PATH=" + pki.ClientKeyFile})
	// Plaintext to the proxy: what a setup without any TLS settings does.
	plain := []string{"TEMPORAL_ADDRESS=" + proxy, "CUTOVER_TASK_QUEUE=tls-e2e"}

	t.Run("worker connects with the client certificate", func(t *testing.T) {
		httpAddr := fmt.Sprintf("127.0.0.1:%d", harness.FreePort(t))
		w := harness.Start(t, "worker with certificate", slices.Concat(withCert, []string{"CUTOVER_HTTP_ADDR=" + httpAddr}), worker)
		// /healthz is healthy while the worker's client answers Temporal's
		// health check, through the proxy; the worker starts polling once it
		// has registered its search attributes, through the proxy too.
		waitHTTP(t, "http://"+httpAddr+"/healthz", 30*time.Second)
		waitFor(t, 30*time.Second, "the worker to start", func() bool { return strings.Contains(w.Output(), "worker started") })

		// A release runs end to end through the proxy: the CLI starts and
		// follows it, the worker runs it.
		spec := filepath.Join(t.TempDir(), "release.yaml")
		if err := os.WriteFile(spec, []byte(tlsReleaseYAML), 0o644); err != nil {
			t.Fatal(err)
		}
		out, errOut, code := harness.Run(t, 2*time.Minute, withCert, cli, "release", "-f", spec, "--wait")
		if code != 0 {
			t.Fatalf("cutover release --wait through mTLS: exit %d\n%s%s", code, out, errOut)
		}
		out, errOut, code = harness.Run(t, 30*time.Second, withCert, cli, "list")
		if code != 0 || !strings.Contains(out, "tlsapp") || !strings.Contains(out, "promoted") {
			t.Errorf("cutover list through mTLS: exit %d\n%s%s", code, out, errOut)
		}
	})

	t.Run("cutover serve connects with the client certificate", func(t *testing.T) {
		tok := randomToken(t)
		tokens := filepath.Join(t.TempDir(), "tokens.yaml")
		if err := os.WriteFile(tokens, fmt.Appendf(nil, "tokens:\n  - {name: ci, sha256: %s, scopes: [release:read]}\n", api.HashToken(tok)), 0o600); err != nil {
			t.Fatal(err)
		}
		addr := fmt.Sprintf("127.0.0.1:%d", harness.FreePort(t))
		harness.Start(t, "cutover serve with certificate", slices.Concat(withCert, []string{"CUTOVER_API_TOKENS_FILE=" + tokens}), cli, "serve", "--listen", addr)
		waitHTTP(t, "http://"+addr+"/healthz", 30*time.Second)
		req, err := http.NewRequest("GET", "http://"+addr+"/v1/releases", nil)
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Authorization", "Bearer "+tok)
		resp, err := (&http.Client{Timeout: 30 * time.Second}).Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Errorf("GET /v1/releases through mTLS: %d", resp.StatusCode)
		}
	})

	// Without a certificate the proxy refuses the handshake; a plaintext
	// client gets hung up on. Each says TLS, in one line.
	for _, tc := range []struct {
		name string
		env  []string
	}{
		{"without a client certificate", base},
		{"without TLS", plain},
	} {
		t.Run("cutover list "+tc.name, func(t *testing.T) {
			_, errOut, code := harness.Run(t, 30*time.Second, tc.env, cli, "list")
			msg := strings.TrimSpace(errOut)
			if code != 1 || !strings.Contains(msg, "TLS") || !strings.Contains(msg, proxy) || strings.Contains(msg, "\n") {
				t.Errorf("exit %d, %q; want 1 and one line that says TLS and the address", code, msg)
			}
		})
		t.Run("worker "+tc.name, func(t *testing.T) {
			w := harness.Start(t, "worker "+tc.name, slices.Concat(tc.env, []string{fmt.Sprintf("CUTOVER_HTTP_ADDR=127.0.0.1:%d", harness.FreePort(t))}), worker)
			if code := w.Wait(t, 30*time.Second); code == 0 || !strings.Contains(w.Output(), "TLS") {
				t.Errorf("exit %d; want a failure that says TLS:\n%s", code, w.Output())
			}
		})
	}

	t.Run("missing certificate file", func(t *testing.T) {
		missing := filepath.Join(t.TempDir(), "client.pem")
		env := slices.Concat(withCert, []string{"TEMPORAL_TLS_CLIENT_CERT_PATH=" + missing})
		_, errOut, code := harness.Run(t, 30*time.Second, env, cli, "list")
		want := "TLS client certificate " + missing + " (TEMPORAL_TLS_CLIENT_CERT_PATH): no such file or directory"
		if code != 1 || strings.TrimSpace(errOut) != "cutover: "+want {
			t.Errorf("exit %d, %q; want 1 and %q", code, errOut, want)
		}
	})
}
