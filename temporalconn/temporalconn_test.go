package temporalconn_test

import (
	"context"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"go.temporal.io/sdk/client"

	"github.com/cutoverhq/cutover/temporalconn"
	"github.com/cutoverhq/cutover/temporalconn/tlstest"
)

func options(t *testing.T, cfg temporalconn.Config) client.Options {
	t.Helper()
	opts, err := temporalconn.ClientOptions(cfg)
	if err != nil {
		t.Fatalf("ClientOptions: %v", err)
	}
	return opts
}

// apiKey is the key the credentials send. The SDK's API key credentials are a
// func returning the key; a test that breaks here means the SDK changed that.
func apiKey(t *testing.T, creds client.Credentials) string {
	t.Helper()
	if creds == nil {
		return ""
	}
	v := reflect.ValueOf(creds)
	if v.Kind() != reflect.Func || v.Type().NumIn() != 1 {
		t.Fatalf("credentials are a %T, not the SDK's API key func", creds)
	}
	out := v.Call([]reflect.Value{reflect.ValueOf(context.Background())})
	return out[0].String()
}

// dialFails dials with the settings of the environment, wants the one-line
// *temporalconn.Error a person reads, and returns it. Reading the settings
// never fails: commands that do not reach Temporal must run whatever they say.
func dialFails(t *testing.T) error {
	t.Helper()
	_, err := temporalconn.Dial(context.Background(), temporalconn.FromEnv(), nil, nil)
	if err == nil {
		t.Fatal("Dial succeeded")
	}
	t.Log(err)
	if strings.Contains(err.Error(), "\n") {
		t.Errorf("error %q is not one line", err)
	}
	var te *temporalconn.Error
	if !errors.As(err, &te) {
		t.Errorf("error is a %T, not a *temporalconn.Error", err)
	}
	return err
}

func TestDefaultsArePlaintextLocalhost(t *testing.T) {
	tlstest.CleanEnv(t)
	opts := options(t, temporalconn.FromEnv())
	if opts.HostPort != "127.0.0.1:7233" || opts.Namespace != "default" {
		t.Errorf("HostPort %q, Namespace %q; want Cutover's defaults 127.0.0.1:7233, default", opts.HostPort, opts.Namespace)
	}
	if opts.ConnectionOptions.TLS != nil || opts.Credentials != nil {
		t.Errorf("TLS %v, credentials %v; want plaintext without credentials", opts.ConnectionOptions.TLS, opts.Credentials)
	}
}

func TestEnvReachesClientOptions(t *testing.T) {
	tlstest.CleanEnv(t)
	pki := tlstest.New(t)
	t.Setenv("TEMPORAL_ADDRESS", "temporal.example:7233")
	t.Setenv("TEMPORAL_NAMESPACE", "prod")
	t.Setenv("TEMPORAL_API_KEY", "key-123")
	t.Setenv("TEMPORAL_TLS_CLIENT_CERT_PATH", pki.ClientCertFile)
	t.Setenv("TEMPORAL_TLS_CLIENT_KEY_PATH", pki.ClientKeyFile)
	t.Setenv("TEMPORAL_TLS_SERVER_CA_CERT_PATH", pki.CAFile)
	t.Setenv("TEMPORAL_TLS_SERVER_NAME", "frontend.internal")
	t.Setenv("TEMPORAL_GRPC_META_X_TENANT", "shop")

	cfg := temporalconn.FromEnv()
	if cfg.Address != "temporal.example:7233" || cfg.Namespace != "prod" {
		t.Errorf("Config %q %q; want the environment's address and namespace", cfg.Address, cfg.Namespace)
	}
	opts := options(t, cfg)
	if opts.HostPort != "temporal.example:7233" || opts.Namespace != "prod" {
		t.Errorf("HostPort %q, Namespace %q; want the environment's", opts.HostPort, opts.Namespace)
	}
	if got := apiKey(t, opts.Credentials); got != "key-123" {
		t.Errorf("API key %q; want key-123", got)
	}
	conf := opts.ConnectionOptions.TLS
	if conf == nil {
		t.Fatal("TLS is off; the certificate variables turn it on")
	}
	if len(conf.Certificates) != 1 || !conf.Certificates[0].Leaf.Equal(pki.Client.Leaf) {
		t.Errorf("client certificates %d; want the one in %s", len(conf.Certificates), pki.ClientCertFile)
	}
	if conf.RootCAs == nil || !conf.RootCAs.Equal(pki.CAPool) {
		t.Errorf("RootCAs do not hold just the CA in %s", pki.CAFile)
	}
	if conf.ServerName != "frontend.internal" || conf.InsecureSkipVerify {
		t.Errorf("ServerName %q, InsecureSkipVerify %v; want frontend.internal, false", conf.ServerName, conf.InsecureSkipVerify)
	}
	h, err := opts.HeadersProvider.GetHeaders(context.Background())
	if err != nil || h["x-tenant"] != "shop" {
		t.Errorf("gRPC headers %v, %v; want x-tenant: shop", h, err)
	}
}

func TestTLSSwitches(t *testing.T) {
	for _, tc := range []struct {
		name    string
		env     map[string]string
		tlsOn   bool
		skipVer bool
	}{
		{"TEMPORAL_TLS=true", map[string]string{"TEMPORAL_TLS": "true"}, true, false},
		{"API key turns TLS on", map[string]string{"TEMPORAL_API_KEY": "k"}, true, false},
		{"TEMPORAL_TLS=false keeps an API key in the clear", map[string]string{"TEMPORAL_API_KEY": "k", "TEMPORAL_TLS": "false"}, false, false},
		{"host verification off", map[string]string{"TEMPORAL_TLS": "1", "TEMPORAL_TLS_DISABLE_HOST_VERIFICATION": "true"}, true, true},
		{"empty variables are unset", map[string]string{"TEMPORAL_TLS_SERVER_NAME": "", "TEMPORAL_ADDRESS": ""}, false, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tlstest.CleanEnv(t)
			for k, v := range tc.env {
				t.Setenv(k, v)
			}
			opts := options(t, temporalconn.FromEnv())
			if on := opts.ConnectionOptions.TLS != nil; on != tc.tlsOn {
				t.Fatalf("TLS on %v; want %v", on, tc.tlsOn)
			}
			if tc.tlsOn && opts.ConnectionOptions.TLS.InsecureSkipVerify != tc.skipVer {
				t.Errorf("InsecureSkipVerify %v; want %v", opts.ConnectionOptions.TLS.InsecureSkipVerify, tc.skipVer)
			}
			if !tc.tlsOn && tc.env["TEMPORAL_API_KEY"] != "" && !opts.ConnectionOptions.TLSDisabled {
				t.Error("TLSDisabled is false: the SDK would turn TLS back on for the API key")
			}
			if opts.HostPort == "" {
				t.Error("empty address; want the default")
			}
		})
	}
}

// The older variable names of Temporal's CLI still work, over the new ones.
func TestLegacyTLSVariables(t *testing.T) {
	tlstest.CleanEnv(t)
	pki := tlstest.New(t)
	t.Setenv("TEMPORAL_TLS_CERT", pki.ClientCertFile)
	t.Setenv("TEMPORAL_TLS_KEY", pki.ClientKeyFile)
	t.Setenv("TEMPORAL_TLS_CA", pki.CAFile)
	t.Setenv("TEMPORAL_TLS_SERVER_CA_CERT_PATH", "/nonexistent/ca.pem")
	conf := options(t, temporalconn.FromEnv()).ConnectionOptions.TLS
	if conf == nil || len(conf.Certificates) != 1 || conf.RootCAs == nil || !conf.RootCAs.Equal(pki.CAPool) {
		t.Fatalf("TLS %+v; want the client certificate and the CA of TEMPORAL_TLS_CERT, _KEY, _CA", conf)
	}
}

func TestProfileFromConfigFile(t *testing.T) {
	tlstest.CleanEnv(t)
	pki := tlstest.New(t)
	file := filepath.Join(t.TempDir(), "temporal.toml")
	toml := `
[profile.default]
address = "localhost:7233"

[profile.cloud]
address = "shop.a1b2c.tmprl.cloud:7233"
namespace = "shop.a1b2c"

[profile.cloud.tls]
client_cert_path = "` + pki.ClientCertFile + `"
client_key_path = "` + pki.ClientKeyFile + `"
server_name = "shop.a1b2c.tmprl.cloud"
`
	if err := os.WriteFile(file, []byte(toml), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("TEMPORAL_CONFIG_FILE", file)

	opts := options(t, temporalconn.FromEnv())
	if opts.HostPort != "localhost:7233" || opts.ConnectionOptions.TLS != nil {
		t.Errorf("default profile: HostPort %q, TLS %v; want localhost:7233 in the clear", opts.HostPort, opts.ConnectionOptions.TLS)
	}

	t.Setenv("TEMPORAL_PROFILE", "cloud")
	opts = options(t, temporalconn.FromEnv())
	if opts.HostPort != "shop.a1b2c.tmprl.cloud:7233" || opts.Namespace != "shop.a1b2c" {
		t.Errorf("cloud profile: HostPort %q, Namespace %q", opts.HostPort, opts.Namespace)
	}
	if conf := opts.ConnectionOptions.TLS; conf == nil || len(conf.Certificates) != 1 || conf.ServerName != "shop.a1b2c.tmprl.cloud" {
		t.Errorf("cloud profile: TLS %+v; want the profile's client certificate and server name", conf)
	}

	// The environment overrides the profile, a flag overrides both.
	t.Setenv("TEMPORAL_NAMESPACE", "staging")
	cfg := temporalconn.FromEnv()
	if cfg.Namespace != "staging" {
		t.Errorf("Namespace %q; TEMPORAL_NAMESPACE should override the profile's", cfg.Namespace)
	}
	cfg.Address = "flag.example:7233"
	opts = options(t, cfg)
	if opts.HostPort != "flag.example:7233" || opts.ConnectionOptions.TLS == nil {
		t.Errorf("HostPort %q, TLS %v; want the flag's address and still the profile's TLS", opts.HostPort, opts.ConnectionOptions.TLS)
	}
}

func TestSettingErrorsNameTheSetting(t *testing.T) {
	pki := tlstest.New(t)
	missing := filepath.Join(t.TempDir(), "nope.pem")
	for _, tc := range []struct {
		name string
		env  map[string]string
		file string // a config file's profile, or none
		want []string
	}{
		{"missing client certificate", map[string]string{
			"TEMPORAL_TLS_CLIENT_CERT_PATH": missing, "TEMPORAL_TLS_CLIENT_KEY_PATH": pki.ClientKeyFile,
		}, "", []string{"TLS client certificate", missing, "(TEMPORAL_TLS_CLIENT_CERT_PATH)", "no such file"}},
		{"missing key", map[string]string{
			"TEMPORAL_TLS_CLIENT_CERT_PATH": pki.ClientCertFile, "TEMPORAL_TLS_CLIENT_KEY_PATH": missing,
		}, "", []string{"TLS client key", missing, "(TEMPORAL_TLS_CLIENT_KEY_PATH)"}},
		{"missing CA", map[string]string{"TEMPORAL_TLS_SERVER_CA_CERT_PATH": missing},
			"", []string{"TLS server CA certificate", missing, "(TEMPORAL_TLS_SERVER_CA_CERT_PATH)"}},
		{"missing certificate of a profile", map[string]string{"TEMPORAL_PROFILE": "prod"},
			"[profile.prod.tls]\nclient_cert_path = \"" + missing + "\"\nclient_key_path = \"" + pki.ClientKeyFile + "\"\n",
			[]string{"TLS client certificate", missing, `tls.client_cert_path of profile "prod" in `, "temporal.toml"}},
		{"certificate without key", map[string]string{"TEMPORAL_TLS_CLIENT_CERT_PATH": pki.ClientCertFile},
			"", []string{"TEMPORAL_TLS", "other must be present too"}},
		{"unknown profile", map[string]string{"TEMPORAL_PROFILE": "nope"},
			"[profile.default]\naddress = \"x:1\"\n", []string{"temporal.toml (TEMPORAL_CONFIG_FILE)", `profile "nope" (TEMPORAL_PROFILE)`}},
		{"config file named but missing", map[string]string{"TEMPORAL_CONFIG_FILE": missing},
			"", []string{missing + " (TEMPORAL_CONFIG_FILE): no such file"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tlstest.CleanEnv(t)
			if tc.file != "" {
				file := filepath.Join(t.TempDir(), "temporal.toml")
				if err := os.WriteFile(file, []byte(tc.file), 0o600); err != nil {
					t.Fatal(err)
				}
				t.Setenv("TEMPORAL_CONFIG_FILE", file)
			}
			for k, v := range tc.env {
				t.Setenv(k, v)
			}
			msg := dialFails(t).Error()
			for _, w := range tc.want {
				if !strings.Contains(msg, w) {
					t.Errorf("error %q does not say %q", msg, w)
				}
			}
		})
	}
}

// A handshake that fails says TLS failed, not that Temporal is unreachable;
// a plaintext client that a TLS server hangs up on is told TLS may be needed.
func TestHandshakeFailuresSayTLS(t *testing.T) {
	pki := tlstest.New(t)
	// Every case fails before the proxy dials its backend.
	addr := tlstest.Proxy(t, pki.ServerConfig(), "127.0.0.1:1")

	other := tlstest.New(t) // a CA the proxy does not trust
	for _, tc := range []struct {
		name  string
		env   map[string]string
		isTLS bool
		want  string
	}{
		{"no client certificate", map[string]string{"TEMPORAL_TLS_SERVER_CA_CERT_PATH": pki.CAFile}, true, "certificate"},
		{"server CA not trusted", map[string]string{"TEMPORAL_TLS": "true"}, true, "certificate signed by unknown authority"},
		{"client certificate of another CA", map[string]string{
			"TEMPORAL_TLS_SERVER_CA_CERT_PATH": pki.CAFile,
			"TEMPORAL_TLS_CLIENT_CERT_PATH":    other.ClientCertFile, "TEMPORAL_TLS_CLIENT_KEY_PATH": other.ClientKeyFile,
		}, true, "certificate"},
		{"plaintext", nil, false, "TEMPORAL_TLS=true"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tlstest.CleanEnv(t)
			t.Setenv("TEMPORAL_ADDRESS", addr)
			for k, v := range tc.env {
				t.Setenv(k, v)
			}
			err := dialFails(t)
			if errors.Is(err, temporalconn.ErrTLS) != tc.isTLS {
				t.Errorf("errors.Is(ErrTLS) = %v; want %v: %v", !tc.isTLS, tc.isTLS, err)
			}
			if msg := err.Error(); !strings.Contains(msg, "TLS") || !strings.Contains(msg, tc.want) || !strings.Contains(msg, addr) {
				t.Errorf("error %q does not say TLS, %q and the address", msg, tc.want)
			}
		})
	}
}

// The proxy lets a client with the right certificate through, byte for byte.
func TestProxyForwardsWithClientCertificate(t *testing.T) {
	pki := tlstest.New(t)
	backend, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer backend.Close()
	go func() {
		c, err := backend.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		buf := make([]byte, 4)
		if _, err := c.Read(buf); err == nil {
			_, _ = c.Write(append([]byte("re:"), buf...))
		}
	}()
	addr := tlstest.Proxy(t, pki.ServerConfig(), backend.Addr().String())
	c, err := tls.Dial("tcp", addr, &tls.Config{RootCAs: pki.CAPool, Certificates: []tls.Certificate{pki.Client}})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := c.Write([]byte("ping")); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 7)
	if _, err := io.ReadFull(c, buf); err != nil || string(buf) != "re:ping" {
		t.Fatalf("read %q, %v; want re:ping", buf, err)
	}
}
