package temporalconn

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strings"

	"go.temporal.io/sdk/contrib/envconfig"
	"google.golang.org/grpc/status"
)

// tlsFile is one of the files a TLS profile names, with where a person sets it.
type tlsFile struct {
	what string
	path string
	// env are the variables that set it, the one that wins first.
	env []string
	// key is its key in a config file profile.
	key string
}

func tlsFiles(t *envconfig.ClientConfigTLS) []tlsFile {
	return []tlsFile{
		{"client certificate", t.ClientCertPath, []string{"TEMPORAL_TLS_CERT", "TEMPORAL_TLS_CLIENT_CERT_PATH"}, "tls.client_cert_path"},
		{"client key", t.ClientKeyPath, []string{"TEMPORAL_TLS_KEY", "TEMPORAL_TLS_CLIENT_KEY_PATH"}, "tls.client_key_path"},
		{"server CA certificate", t.ServerCACertPath, []string{"TEMPORAL_TLS_CA", "TEMPORAL_TLS_SERVER_CA_CERT_PATH"}, "tls.server_ca_cert_path"},
	}
}

// applyLegacyTLSEnv reads the variables Temporal's CLI used before envconfig,
// over everything else, as that CLI still does: scripts written for it keep
// working here.
func applyLegacyTLSEnv(p *envconfig.ClientConfigProfile) {
	for _, v := range []struct {
		name string
		set  func(t *envconfig.ClientConfigTLS, v string)
	}{
		{"TEMPORAL_TLS_CERT", func(t *envconfig.ClientConfigTLS, v string) { t.ClientCertPath = v }},
		{"TEMPORAL_TLS_KEY", func(t *envconfig.ClientConfigTLS, v string) { t.ClientKeyPath = v }},
		{"TEMPORAL_TLS_CA", func(t *envconfig.ClientConfigTLS, v string) { t.ServerCACertPath = v }},
		{"TEMPORAL_TLS_CERT_DATA", func(t *envconfig.ClientConfigTLS, v string) { t.ClientCertData = []byte(v) }},
		{"TEMPORAL_TLS_KEY_DATA", func(t *envconfig.ClientConfigTLS, v string) { t.ClientKeyData = []byte(v) }},
		{"TEMPORAL_TLS_CA_DATA", func(t *envconfig.ClientConfigTLS, v string) { t.ServerCACertData = []byte(v) }},
	} {
		if s := os.Getenv(v.name); s != "" {
			if p.TLS == nil {
				p.TLS = &envconfig.ClientConfigTLS{}
			}
			v.set(p.TLS, s)
		}
	}
}

// setEnv is the process environment with empty variables taken as unset, as
// Cutover takes them everywhere: envconfig would turn TLS on for an empty
// TEMPORAL_TLS_SERVER_NAME, as a compose file's ${VAR:-} gives.
type setEnv struct{}

func (setEnv) Environ() []string { return os.Environ() }

func (setEnv) LookupEnv(name string) (string, bool) {
	v := os.Getenv(name)
	return v, v != ""
}

// checkFiles reads the files the TLS settings name, so that a missing one is
// reported with the file and the setting that names it, before envconfig
// reports it without the setting.
func (cfg Config) checkFiles() error {
	t := cfg.profile.TLS
	if t == nil || t.Disabled {
		return nil
	}
	for _, f := range tlsFiles(t) {
		if f.path == "" {
			continue
		}
		_, err := os.ReadFile(f.path)
		if err == nil {
			continue
		}
		var pe *fs.PathError
		if errors.As(err, &pe) {
			err = pe.Err
		}
		return fmt.Errorf("TLS %s %s (%s): %w", f.what, f.path, cfg.origin(f), err)
	}
	return nil
}

// origin names the variable or the config file key that set f.
func (cfg Config) origin(f tlsFile) string {
	for _, name := range f.env {
		if os.Getenv(name) == f.path {
			return name
		}
	}
	return fmt.Sprintf("%s of profile %q in %s", f.key, cfg.profileName, cfg.file)
}

// dialError words a failed dial: gRPC reports a TLS failure as "unavailable",
// which would send a person looking at the network instead of at certificates.
func dialError(addr string, tlsOn bool, err error) *Error {
	msg := status.Convert(err).Message()
	for _, sign := range []string{"tls:", "x509:", "authentication handshake failed"} {
		if strings.Contains(msg, sign) {
			return newError(ErrTLS, "TLS with Temporal at %s failed (check the TEMPORAL_TLS_* settings): %s", addr, handshakeCause(msg))
		}
	}
	hungUp := strings.Contains(msg, "server preface") || strings.Contains(msg, "connection reset") || strings.Contains(msg, "broken pipe")
	switch {
	case hungUp && tlsOn:
		// In TLS 1.3 the server checks the client's certificate after the
		// client has finished its handshake: a refusal often reaches the
		// client as a connection closed under its first request rather than
		// as the server's alert.
		return newError(ErrTLS, "TLS with Temporal at %s failed: the server closed the connection after the handshake, as one does that refuses or requires a client certificate (TEMPORAL_TLS_CLIENT_CERT_PATH, TEMPORAL_TLS_CLIENT_KEY_PATH)", addr)
	case hungUp:
		// A TLS server hangs up on the HTTP/2 preface of a plaintext client.
		return newError(ErrUnreachable, "cannot reach Temporal at %s: it closed the connection, as a server that requires TLS does (set TEMPORAL_TLS=true, TEMPORAL_API_KEY or TEMPORAL_TLS_CLIENT_CERT_PATH and TEMPORAL_TLS_CLIENT_KEY_PATH)", addr)
	}
	return newError(ErrUnreachable, "cannot reach Temporal at %s (set TEMPORAL_ADDRESS or --address)", addr)
}

// handshakeCause keeps the part of gRPC's message that says what TLS refused,
// dropping its layers of "connection error: desc = ...".
func handshakeCause(msg string) string {
	if i := strings.LastIndex(msg, "desc = "); i >= 0 {
		msg = msg[i+len("desc = "):]
	}
	msg = strings.Trim(msg, `"`)
	msg = strings.TrimPrefix(msg, "transport: ")
	return strings.ReplaceAll(msg, "\n", " ")
}
