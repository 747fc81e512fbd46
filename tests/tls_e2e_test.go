package tests

import (
	"fmt"
	"io"
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
	"github.com/cutoverhq/cutover/workflows"
)

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

	// Development mode: the release brings its whole spec.
	base := []string{"TEMPORAL_ADDRESS=" + proxy, "TEMPORAL_NAMESPACE=default", "CUTOVER_TASK_QUEUE=tls-e2e", "CUTOVER_DEV=true",
		"TEMPORAL_TLS_SERVER_CA_CERT_PATH=" + pki.CAFile}
	withCert := slices.Concat(base, []string{
		"TEMPORAL_TLS_CLIENT_CERT_PATH=" + pki.ClientCertFile, "TEMPORAL_TLS_CLIENT_KEY_PATH=" + pki.ClientKeyFile})
	// Plaintext to the proxy: what a setup without any TLS settings does.
	plain := []string{"TEMPORAL_ADDRESS=" + proxy, "CUTOVER_TASK_QUEUE=tls-e2e", "CUTOVER_DEV=true"}

	// The cluster's helpers, with the certificate in every process's environment.
	c := &cluster{t: t, server: srv, cli: cli, env: withCert, workerBin: worker}

	t.Run("worker and cutover run a release with the client certificate", func(t *testing.T) {
		c.t = t
		c.addWorker()
		// /healthz is healthy while the worker's client answers Temporal's
		// health check, through the proxy; the worker starts polling once it
		// has registered its search attributes, through the proxy too.
		waitHTTP(t, "http://"+c.http[0]+"/healthz", 30*time.Second)
		w := c.workers[0]
		waitFor(t, 30*time.Second, "the worker to start", func() bool { return strings.Contains(w.Output(), "worker started") })

		// A release runs end to end through the proxy: the CLI starts,
		// follows, approves and lists it; the worker runs it.
		app := "tlsapp"
		rel := harness.Start(t, "cutover release --wait", c.env, c.cli, "release", "-f", c.spec(app, "1.0.0"), "--wait")
		c.waitStatus(app, 2*time.Minute, func(st workflows.Status) bool { return st.Waiting == "approval" })
		if out, errOut, code := c.cutover("approve", app, "--operator", "alice", "--as", "alice"); code != 0 {
			t.Fatalf("cutover approve through mTLS: exit %d\n%s%s", code, out, errOut)
		}
		if code := rel.Wait(t, 2*time.Minute); code != 0 {
			t.Fatalf("cutover release --wait through mTLS: exit %d, want 0 (promoted)\n%s", code, rel.Output())
		}
		out, errOut, code := c.cutover("list")
		if code != 0 || !strings.Contains(out, app) || !strings.Contains(out, "promoted") {
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
		body, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil || resp.StatusCode != http.StatusOK || !strings.Contains(string(body), "tlsapp") {
			t.Errorf("GET /v1/releases through mTLS: %d, %v; want 200 listing tlsapp:\n%s", resp.StatusCode, err, body)
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
