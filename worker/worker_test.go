package worker

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cutoverhq/cutover/metrics"
	"github.com/cutoverhq/cutover/temporalconn"
	"github.com/cutoverhq/cutover/temporalconn/tlstest"
)

// The worker's --address and --namespace override the environment's; the
// environment's TLS still applies under them.
func TestWorkerFlagsOverrideEnvironmentAndKeepTLS(t *testing.T) {
	tlstest.CleanEnv(t)
	pki := tlstest.New(t)
	t.Setenv("TEMPORAL_ADDRESS", "env.example:7233")
	t.Setenv("TEMPORAL_NAMESPACE", "envns")
	t.Setenv("TEMPORAL_TLS_CLIENT_CERT_PATH", pki.ClientCertFile)
	t.Setenv("TEMPORAL_TLS_CLIENT_KEY_PATH", pki.ClientKeyFile)
	t.Setenv("TEMPORAL_TLS_SERVER_CA_CERT_PATH", pki.CAFile)

	for _, tc := range []struct {
		args               []string
		address, namespace string
	}{
		{nil, "env.example:7233", "envns"},
		{[]string{"--address", "flag.example:7233", "--namespace", "flagns"}, "flag.example:7233", "flagns"},
	} {
		cfg, _, err := parseFlags(tc.args)
		if err != nil {
			t.Fatal(err)
		}
		opts, err := temporalconn.ClientOptions(cfg.temporal)
		if err != nil {
			t.Fatal(err)
		}
		if opts.HostPort != tc.address || opts.Namespace != tc.namespace {
			t.Errorf("%v: HostPort %q, Namespace %q; want %q, %q", tc.args, opts.HostPort, opts.Namespace, tc.address, tc.namespace)
		}
		if conf := opts.ConnectionOptions.TLS; conf == nil || len(conf.Certificates) != 1 || !conf.RootCAs.Equal(pki.CAPool) {
			t.Errorf("%v: TLS %+v; want the environment's client certificate and CA", tc.args, conf)
		}
	}
}

func TestHTTPTimeoutFlags(t *testing.T) {
	t.Setenv("CUTOVER_HTTP_IDLE_TIMEOUT", "5m")
	cfg, _, err := parseFlags([]string{"--http-write-timeout", "1m"})
	if err != nil {
		t.Fatal(err)
	}
	want := metrics.DefaultTimeouts()
	want.Write, want.Idle = time.Minute, 5*time.Minute
	if cfg.httpTimeouts != want {
		t.Errorf("timeouts = %+v, want %+v", cfg.httpTimeouts, want)
	}
	if _, _, err := parseFlags([]string{"--http-read-timeout", "0s"}); err == nil || err.Error() != "--http-read-timeout must be above 0, got 0s" {
		t.Errorf("no read timeout: %v", err)
	}
	t.Setenv("CUTOVER_HTTP_READ_TIMEOUT", "10")
	if _, _, err := parseFlags(nil); err == nil || !strings.Contains(err.Error(), "CUTOVER_HTTP_READ_TIMEOUT") {
		t.Errorf("a bad variable: %v", err)
	}
}

// parseFlags is the configuration the worker would run with.
func parseFlags(args []string) (config, []string, error) {
	var got config
	root := newRoot(func(_ context.Context, cfg config, _ io.Writer) error { got = cfg; return nil })
	root.SetArgs(args)
	var out bytes.Buffer
	root.SetOut(&out)
	root.SetErr(&out)
	err := root.Execute()
	return got, nil, err
}

// The worker's command line follows cutover's: --help exits 0 and lists the
// commands and double-dash flags; bad usage exits 2 with one line.
func TestCommandLine(t *testing.T) {
	t.Setenv("CUTOVER_DEV", "")
	var out, errOut bytes.Buffer
	if code := Main([]string{"--help"}, &out, &errOut); code != 0 {
		t.Fatalf("--help: exit %d\n%s", code, errOut.String())
	}
	for _, want := range []string{"healthcheck", "version", "--apps", "--dev", "--http-addr", "--log-format", "--http-idle-timeout", "TEMPORAL_API_KEY"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("--help does not mention %s:\n%s", want, out.String())
		}
	}
	for _, c := range []struct {
		args []string
		env  string
		want string
	}{
		{[]string{"-apps", "x"}, "", "unknown shorthand flag: 'a' in -apps"},
		{[]string{"--bogus"}, "", "unknown flag: --bogus"},
		{[]string{"serve"}, "", `unknown command "serve"`},
		{[]string{"--log-format", "xml"}, "", `--log-format: "xml" is not text or json`},
		{nil, "yes", `CUTOVER_DEV: "yes" is not true or false`},
		{nil, "", "--apps"}, // neither --apps nor --dev
	} {
		t.Setenv("CUTOVER_DEV", c.env)
		out.Reset()
		errOut.Reset()
		code := Main(c.args, &out, &errOut)
		line := strings.TrimSuffix(errOut.String(), "\n")
		if code != exitUsage || !strings.Contains(line, c.want) || strings.Contains(line, "\n") || !strings.HasPrefix(line, "cutover-worker: ") {
			t.Errorf("%v (CUTOVER_DEV=%q): exit %d, stderr %q; want exit 2 and one line with %q", c.args, c.env, code, errOut.String(), c.want)
		}
	}
}

// healthcheck exits 0 on a healthy worker's /healthz and 1 otherwise.
func TestHealthcheck(t *testing.T) {
	var healthy atomic.Bool
	healthy.Store(true)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/healthz" || !healthy.Load() {
			http.Error(w, "temporal is unreachable", http.StatusServiceUnavailable)
		}
	}))
	defer srv.Close()
	addr := strings.TrimPrefix(srv.URL, "http://")
	var errOut bytes.Buffer
	if code := Main([]string{"healthcheck", "--http-addr", addr}, io.Discard, &errOut); code != 0 {
		t.Errorf("healthy: exit %d, %s", code, errOut.String())
	}
	healthy.Store(false)
	errOut.Reset()
	t.Setenv("CUTOVER_HTTP_ADDR", addr)
	if code := Main([]string{"healthcheck"}, io.Discard, &errOut); code != 1 || !strings.Contains(errOut.String(), "unhealthy: 503 Service Unavailable: temporal is unreachable") {
		t.Errorf("unhealthy: exit %d, %q", code, errOut.String())
	}
}
func TestTuningFlags(t *testing.T) {
	t.Setenv("CUTOVER_MAX_ACTIVITIES", "50")
	t.Setenv("CUTOVER_STICKY_SCHEDULE_TO_START_TIMEOUT", "2s")
	cfg, _, err := parseFlags([]string{"--workflow-pollers", "8"})
	if err != nil {
		t.Fatal(err)
	}
	opts := cfg.tuning.options()
	if opts.MaxConcurrentActivityExecutionSize != 50 || opts.MaxConcurrentWorkflowTaskPollers != 8 ||
		opts.StickyScheduleToStartTimeout != 2*time.Second || opts.MaxConcurrentWorkflowTaskExecutionSize != 1000 {
		t.Errorf("options = %+v; want 50 activities, 8 workflow pollers, a 2s sticky timeout and the default 1000 workflow tasks", opts)
	}
	t.Setenv("CUTOVER_STICKY_SCHEDULE_TO_START_TIMEOUT", "")
	if cfg, _, err := parseFlags(nil); err != nil || cfg.tuning.sticky != time.Second {
		t.Errorf("default sticky timeout = %v, %v; want 1s", cfg.tuning.sticky, err)
	}
	// The SDK panics on one workflow poller; the worker says which flag is wrong.
	if _, _, err := parseFlags([]string{"--workflow-pollers", "1"}); err == nil || err.Error() != "--workflow-pollers must be at least 2, got 1" {
		t.Errorf("one workflow poller: %v", err)
	}
	t.Setenv("CUTOVER_ACTIVITY_POLLERS", "many")
	if _, _, err := parseFlags(nil); err == nil || !strings.Contains(err.Error(), "CUTOVER_ACTIVITY_POLLERS") {
		t.Errorf("a bad variable: %v", err)
	}
}
