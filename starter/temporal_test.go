package starter

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cutoverhq/cutover/temporalconn/tlstest"
)

// The CLI's --address overrides TEMPORAL_ADDRESS, and the TLS settings of the
// environment still apply under it; a failure is one line that names the
// setting. Nothing here reaches a server: the missing certificate stops the
// dial first.
func TestCLIFlagsOverrideEnvironmentAndKeepTLS(t *testing.T) {
	tlstest.CleanEnv(t)
	pki := tlstest.New(t)
	missing := filepath.Join(t.TempDir(), "client.pem")
	t.Setenv("TEMPORAL_ADDRESS", "env.example:7233")
	t.Setenv("TEMPORAL_TLS_CLIENT_CERT_PATH", missing)
	t.Setenv("TEMPORAL_TLS_CLIENT_KEY_PATH", pki.ClientKeyFile)

	for _, args := range [][]string{
		{"list", "--address", "flag.example:7233", "--namespace", "flagns"},
		{"serve", "--address", "flag.example:7233", "--tokens-file", writeTokens(t)},
	} {
		root := newRoot()
		root.SetArgs(args)
		var out bytes.Buffer
		root.SetOut(&out)
		root.SetErr(&out)
		err := root.Execute()
		if err == nil {
			t.Fatalf("cutover %s succeeded with a missing client certificate", strings.Join(args, " "))
		}
		msg := err.Error()
		if !strings.Contains(msg, missing) || !strings.Contains(msg, "TEMPORAL_TLS_CLIENT_CERT_PATH") || strings.Contains(msg, "\n") {
			t.Errorf("cutover %s: %q; want one line naming %s and TEMPORAL_TLS_CLIENT_CERT_PATH", args[0], msg, missing)
		}
	}

	// With the certificate there, the same command dials the flag's
	// address.
	t.Setenv("TEMPORAL_TLS_CLIENT_CERT_PATH", pki.ClientCertFile)
	root := newRoot()
	root.SetArgs([]string{"list", "--address", "127.0.0.1:1"})
	err := root.Execute()
	if err == nil || !strings.Contains(err.Error(), "127.0.0.1:1") || strings.Contains(err.Error(), "env.example") {
		t.Errorf("list --address 127.0.0.1:1: %v; want a failure to reach 127.0.0.1:1", err)
	}
}

func writeTokens(t *testing.T) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "tokens.yaml")
	hash := strings.Repeat("ab", 32)
	if err := os.WriteFile(path, []byte("tokens:\n  - {name: ci, sha256: "+hash+", scopes: [release:read]}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}
